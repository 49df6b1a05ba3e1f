// A trade: where it stands, and every fact recorded about it in log order.

import { getJson, segment } from './api.js';
import { facts, fill, h, section } from './dom.js';
import * as f from './format.js';
import { hashOf } from './nav.js';
import { may } from './roles.js';

function state(trade) {
  if (trade.closed_at) return 'closed';
  if (trade.succeeded_at) return 'succeeded';
  if (trade.shipped_at) return 'shipped';
  if (trade.paid_at) return 'paid into escrow';
  return 'created';
}

function summary(trade) {
  return facts([
    ['State', state(trade), { 'data-figure': 'state' }],
    ['Buyer', trade.buyer_id],
    ['Seller', h('a', { href: hashOf(['seller', trade.seller_id]) }, trade.seller_id)],
    ['Item', trade.item_id],
    ['Amount', f.money(trade.amount_minor, trade.currency)],
    ['Left in escrow', f.money(trade.escrow_left_minor, trade.currency)],
    ['Refunded', f.money(trade.refunded_minor, trade.currency)],
    ['Goods, shipping', `${trade.goods_kind}, ${trade.shipping}`],
    ['Receipt due', f.time(trade.confirm_due_at)],
    ['Next deadline', f.time(trade.next_deadline_at)],
    ['Rating window closes', f.time(trade.rating_window_closes_at)],
  ]);
}

function ratings(trade) {
  if (trade.ratings.length === 0) return h('p', { class: 'muted' }, 'No ratings.');
  return h('table', null,
    h('thead', null, h('tr', null, ['By', 'Score', 'Given', 'Shop scores', 'Notes'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, trade.ratings.map((r) => h('tr', null,
      h('th', { scope: 'row' }, r.rater),
      h('td', null, r.score),
      h('td', null, f.time(r.given_at)),
      h('td', null, r.dsr ? `${r.dsr.as_described} / ${r.dsr.service} / ${r.dsr.shipping_speed} / ${r.dsr.logistics}` : f.DASH),
      h('td', null, ['default', 'revised', 'withdrawn', 'explained', 'shielded'].filter((k) => r[k]).join(', ') || f.DASH)))));
}

function refunds(trade) {
  const rows = trade.refunds.map((r) => h('tr', null,
    h('th', { scope: 'row' }, r.refund_id),
    h('td', null, f.money(r.amount_minor, trade.currency)),
    h('td', null, r.reason.replaceAll('_', ' ')),
    h('td', null, r.status.replaceAll('_', ' ')),
    h('td', null, f.time(r.due_at))));
  const dispute = trade.dispute
    ? h('p', null, `Dispute over ${trade.dispute.refund_id}: ${trade.dispute.outcome ? trade.dispute.outcome.replaceAll('_', ' ') : 'awaiting the ruling'}.`)
    : null;
  if (rows.length === 0) return [h('p', { class: 'muted' }, 'No refunds.'), dispute];
  return [h('table', null,
    h('thead', null, h('tr', null, ['Refund', 'Amount', 'Reason', 'Status', 'Due'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows)), dispute];
}

const DEADLINE_WORKER = 'trustledger:deadlines';

function recorder(name) {
  if (name === DEADLINE_WORKER) return 'the ledger\'s deadline worker';
  return name ?? 'not named (recorded before the log kept callers)';
}

function complaint(trade) {
  const c = trade.complaint;
  if (!c) return h('p', { class: 'muted', 'data-figure': 'complaint' }, 'No complaint.');
  return facts([
    ['Case', h('code', null, c.complaint_id), { 'data-figure': 'complaint' }],
    ['Type, severity', `${c.type.replaceAll('_', ' ')}, ${c.severity}`],
    ['Escalated', f.yesNo(c.escalated)],
    ['Ruling', c.outcome ?? 'not ruled yet', { 'data-figure': 'complaint_outcome' }],
    ['Cash paid', f.money(c.cash_paid_minor, trade.currency)],
  ]);
}

/** The trade's facts and its complaint's, in log order. */
function allFacts(trade) {
  const own = trade.facts.map((fact) => ({ ...fact, of: 'trade' }));
  const caseFacts = (trade.complaint?.facts ?? []).map((fact) => ({ ...fact, of: 'complaint' }));
  return [...own, ...caseFacts].sort((a, b) => a.position - b.position);
}

function timeline(trade, me) {
  const auditor = may(me, 'audit');
  const all = allFacts(trade);
  return [
    h('p', { class: 'muted' }, 'Each fact with its business time (when it happened), the time the ledger accepted it, who recorded it (the platform service whose key appended it, or the ledger\'s deadline worker) and its place in the log.'),
    h('ol', { class: 'timeline', 'data-facts': all.length }, all.map((fact) => h('li', { 'data-position': fact.position, 'data-topic': fact.topic, 'data-of': fact.of },
      h('p', { class: 'what' }, f.topic(fact.topic)),
      facts([
        ['Happened', h('time', { datetime: fact.occurred_at }, f.time(fact.occurred_at)), { 'data-figure': 'occurred_at' }],
        ['Recorded', h('time', { datetime: fact.recorded_at }, f.time(fact.recorded_at)), { 'data-figure': 'recorded_at' }],
        ['Recorded by', recorder(fact.recorded_by), { 'data-figure': 'recorded_by' }],
        ['Log position', auditor
          ? h('a', { href: hashOf(['audit'], { position: fact.position }), title: 'Check this fact\'s inclusion in the log' }, fact.position)
          : fact.position, { 'data-figure': 'position' }],
        [fact.of === 'trade' ? 'Fact of the trade' : `Fact of complaint ${trade.complaint.complaint_id}`, `#${fact.version}`, { 'data-figure': 'version' }],
        ['Topic', h('code', null, fact.topic)],
      ], { class: 'facts inline' })))),
  ];
}

export async function render(view, me, id) {
  view.append(h('h1', { tabindex: '-1' }, 'Trade ', h('span', { class: 'id' }, id)));
  const parts = {
    summary: section('Where it stands', 'trade-summary'),
    timeline: section('Timeline', 'trade-timeline'),
    ratings: section('Ratings', 'trade-ratings'),
    refunds: section('Refunds and dispute', 'trade-refunds'),
    complaint: section('Complaint', 'trade-complaint'),
  };
  view.append(h('div', { class: 'grid' }, parts.summary.element, parts.ratings.element, parts.refunds.element, parts.complaint.element), parts.timeline.element);
  const load = may(me, 'trades')
    ? getJson(`/v1/trades/${segment(id)}`)
    : Promise.reject(new Error(`A ${me.role} key may not read trades.`));
  load.catch(() => {}); // each section shows the refusal
  await Promise.all([
    fill(parts.summary.body, async () => summary(await load)),
    fill(parts.timeline.body, async () => timeline(await load, me)),
    fill(parts.ratings.body, async () => ratings(await load)),
    fill(parts.refunds.body, async () => refunds(await load)),
    fill(parts.complaint.body, async () => complaint(await load)),
  ]);
}
