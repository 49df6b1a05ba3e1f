// A buyer: the history and tier the rulebook gives them, their credit as a
// buyer, and their purchases, as of a date and under a chosen rulebook.

import { getJson, segment } from './api.js';
import { addSection, facts, h } from './dom.js';
import * as f from './format.js';
import { asOfField, creditCard, rulebookField, rulebooksFor, stamp } from './figures.js';
import { go, hashOf } from './nav.js';
import { may } from './roles.js';

/** An amount in minor units, without a currency: the buyer's answers name none. */
function amount(minor) {
  return f.money(minor, '').trimEnd();
}

function controls(id, choice, rulebooks) {
  const apply = (event) => {
    event.preventDefault();
    const form = event.currentTarget.form ?? event.currentTarget;
    const params = { as_of: form.elements['as-of'].value, rulebook: form.elements.rulebook.value };
    go(hashOf(['buyer', id], params), event.target.id || null);
  };
  return h('form', { class: 'controls', id: 'buyer-controls', onsubmit: apply },
    asOfField(choice, apply),
    rulebookField(choice, rulebooks, apply),
    h('button', { type: 'submit' }, 'Show'));
}

/** The rulebook's tiers, each with what it takes to reach it; the buyer's own marked. */
function thresholds(answer, book) {
  const tiers = book.scoring.buyer_tiers;
  return [
    h('table', { id: 'tier-thresholds', 'data-window-days': tiers.window_days },
      h('caption', null, `What each tier takes: purchases and net spend in the last ${tiers.window_days} days`),
      h('thead', null, h('tr', null, ['Tier', 'Purchases at least', 'Net spend at least'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, tiers.tiers.map((t) => h('tr', { 'data-tier': t.name, 'data-current': String(t.name === answer.tier), class: t.name === answer.tier ? 'current' : null },
        h('th', { scope: 'row' }, t.label, ' ', h('code', null, t.name), t.name === answer.tier ? h('span', { class: 'marker' }, ' (this buyer)') : null),
        h('td', { 'data-figure': 'min_purchases' }, t.min_purchases),
        h('td', { 'data-figure': 'min_net_spend' }, amount(t.min_net_spend_major * 100)))))),
  ];
}

async function tier(answer, rulebooks) {
  const entry = rulebooks?.find((r) => r.scoring_stamp === answer.rulebook);
  const book = entry ? await getJson(`/v1/rulebooks/${segment(entry.id)}`) : null;
  return [
    h('p', { class: 'big' }, h('span', { 'data-figure': 'tier_label' }, answer.tier_label),
      h('span', { class: 'unit' }, ' ', h('code', { 'data-figure': 'tier' }, answer.tier))),
    facts([
      ['Purchases in the tier\'s window', answer.window_purchases, { 'data-figure': 'window_purchases' }],
      ['Net spend in the tier\'s window', amount(answer.window_net_spend_minor), { 'data-figure': 'window_net_spend' }],
      ['Rulebook', entry ? `${entry.title} (${entry.scoring_stamp})` : answer.rulebook, { 'data-figure': 'rulebook' }],
    ]),
    book
      ? thresholds(answer, book)
      : h('p', { class: 'muted', 'data-figure': 'thresholds' }, 'The server no longer holds rulebook ', h('code', null, answer.rulebook), ': its thresholds cannot be shown.'),
    stamp(answer),
  ];
}

function history(answer) {
  const reasons = Object.entries(answer.refund_reasons);
  return [
    facts([
      ['Trades', answer.trades, { 'data-figure': 'trades' }],
      ['Purchases (succeeded)', answer.purchases, { 'data-figure': 'purchases' }],
      ['Net spend', amount(answer.net_spend_minor), { 'data-figure': 'net_spend' }],
      ['Refunds', `${answer.refunds}, ${amount(answer.refunded_minor)}`, { 'data-figure': 'refunds' }],
      ['Refund reasons', reasons.length ? reasons.map(([why, n]) => `${why.replaceAll('_', ' ')} ${n}`).join(', ') : f.DASH, { 'data-figure': 'refund_reasons' }],
      ['Disputes', `${answer.disputes}: ${answer.disputes_won} won, ${answer.disputes_lost} lost`, { 'data-figure': 'disputes' }],
      ['Complaints filed', `${answer.complaints_filed}: ${answer.complaints_upheld} upheld, ${answer.complaints_dismissed} dismissed`, { 'data-figure': 'complaints' }],
      ['Ratings given', answer.ratings_given, { 'data-figure': 'ratings_given' }],
      ['Of them negative', f.percent(answer.ratings_given_negative_share), { 'data-figure': 'ratings_given_negative_share' }],
      ['Ratings received', answer.ratings_received, { 'data-figure': 'ratings_received' }],
      ['Fake trades', answer.fake_trades, { 'data-figure': 'fake_trades' }],
    ]),
    stamp(answer),
  ];
}

function trades(page) {
  if (page.trades.length === 0) return h('p', { class: 'muted' }, 'No trades.');
  return [
    h('ul', { class: 'links', id: 'buyer-trades' }, page.trades.map((t) => h('li', { 'data-trade': t.trade_id },
      h('a', { href: hashOf(['trade', t.trade_id]) }, t.trade_id),
      ` · ${t.item_id} from ${t.seller_id} · ${amount(t.amount_minor)} · ${f.time(t.created_at)}`,
      [t.fake ? 'fake' : null, t.disputed ? 'disputed' : null, t.refunds.length ? `${t.refunds.length} refund${t.refunds.length > 1 ? 's' : ''}` : null,
        t.close_reason ? `closed: ${t.close_reason.replaceAll('_', ' ')}` : null].filter(Boolean).map((tag) => [' ', h('span', { class: 'tag' }, tag)])))),
    h('p', { class: 'muted', 'data-figure': 'trades_shown' }, page.next_cursor
      ? `The first ${page.trades.length} trades, in the order they were created; there are more.`
      : `All ${page.trades.length} trades, in the order they were created (as they stand now).`),
  ];
}

export async function render(view, me, id, params) {
  const choice = { asOf: params.get('as_of') ?? '', rulebook: params.get('rulebook') ?? '' };
  const asOf = choice.asOf ? f.endOfDay(choice.asOf) : null;
  const common = { as_of: asOf, rulebook: choice.rulebook || null };
  const path = segment(id);

  view.append(h('h1', { tabindex: '-1' }, 'Buyer ', h('span', { class: 'id' }, id)));
  const rulebooks = await rulebooksFor(view);
  view.append(controls(id, choice, rulebooks));

  const grid = h('div', { class: 'grid' });
  view.append(grid);
  const loads = [];
  const add = (title, key, allowed, load) => addSection({ into: grid, loads, me }, title, key, allowed, load);
  const figures = may(me, 'figures');
  const historyLoad = figures ? getJson(`/v1/buyers/${path}/history`, common) : null;
  historyLoad?.catch(() => {}); // each section shows the refusal
  add('Tier', 'tier', figures, async () => tier(await historyLoad, rulebooks));
  add('Credit as a buyer', 'buyer-credit', figures, async () => creditCard(
    await getJson(`/v1/members/${path}/credit`, { role: 'buyer', ...common }),
    hashOf(['explain', id], { role: 'buyer', as_of: choice.asOf, rulebook: choice.rulebook })));
  add('History', 'history', figures, async () => history(await historyLoad));
  add('Trades', 'trades', may(me, 'trades'), async () => trades(await getJson(`/v1/buyers/${path}/trades`)));
  await Promise.all(loads);
}
