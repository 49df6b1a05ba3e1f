// Operations (admin keys): how far each read model trails the log, the
// deadlines due by the ledger's clock, the API keys and the problems the
// server answered, from GET /v1/operations/status (one request per look).

import { getJson } from './api.js';
import { facts, fill, h, section } from './dom.js';
import * as f from './format.js';
import { go, hashOf } from './nav.js';
import { may } from './roles.js';

const READ_MODELS = {
  view: 'Figures view (credit, shop scores, penalties, buyers)',
  penalty_feed: 'Penalty change feed',
  log_tree: 'Verifiable log (Merkle tree)',
};

function table(columns, rows, attributes) {
  return h('table', attributes,
    h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows));
}

function readModels(status) {
  const rows = status.projections.map((p) => h('tr', { 'data-model': p.name },
    h('th', { scope: 'row' }, READ_MODELS[p.name] ?? p.name),
    h('td', { 'data-figure': 'position' }, p.position),
    h('td', { 'data-figure': 'lag_events', class: p.lag_events > 0 ? 'warn' : null }, p.lag_events)));
  return [
    facts([
      ['Log head (last position)', status.log_position, { 'data-figure': 'log_position' }],
      ['View behind by', `${status.view_lag_seconds.toFixed(1)} s of recording time`, { 'data-figure': 'view_lag_seconds' }],
      ['View version', status.view_version ?? 'in memory'],
    ]),
    table(['Read model', 'Reflects the log up to', 'Events behind'], rows, { id: 'ops-read-models' }),
  ];
}

function deadlines(status) {
  const d = status.deadlines;
  return [
    facts([
      ['Trades due now', d.more ? `more than ${d.due}` : d.due, { 'data-figure': 'due' }],
      ['Oldest due since', f.time(d.oldest_due_at), { 'data-figure': 'oldest_due_at' }],
      ['Next falls due', f.time(d.next_due_at), { 'data-figure': 'next_due_at' }],
    ]),
    h('p', { class: 'muted' }, 'The deadline worker fires what is due (auto-confirmations, default ratings, escrow releases, refunds agreed by silence); a due count that stays up means it is not running.'),
  ];
}

function keys(status) {
  const rows = status.keys.map((k) => h('tr', { 'data-key': k.id },
    h('th', { scope: 'row' }, h('code', null, k.id)),
    h('td', null, k.role),
    h('td', null, k.caller),
    h('td', { 'data-figure': 'state' }, k.state),
    h('td', null, f.time(k.created_at)),
    h('td', null, f.time(k.expires_at)),
    h('td', null, f.time(k.revoked_at)),
    h('td', null, k.state === 'valid' ? h('code', { class: 'command' }, `trustledger keys revoke ${k.id}`) : f.DASH)));
  return [
    h('p', { class: 'muted' }, 'The server only reads the keys file; keys are made, rotated and revoked on its host with the command line, and running servers pick the change up within seconds.'),
    table(['Key', 'Role', 'Caller', 'State', 'Created', 'Expires', 'Revoked', 'To revoke it'], rows, { id: 'ops-keys' }),
  ];
}

function refusals(status) {
  const counted = status.refusals.map((r) => h('tr', { 'data-code': r.code },
    h('th', { scope: 'row' }, h('code', null, r.code)),
    h('td', { 'data-figure': 'count' }, r.count)));
  const recent = status.recent_refusals.map((r) => h('tr', null,
    h('td', null, f.time(r.at)),
    h('td', null, r.status),
    h('th', { scope: 'row' }, h('code', null, r.code)),
    h('td', null, r.route ?? f.DASH),
    h('td', null, r.key_id ?? 'no valid key')));
  return [
    h('p', { class: 'muted' }, `Since the server started (${f.time(status.refusals_since)}), by code, all workers together.`),
    counted.length
      ? table(['Code', 'Answered'], counted, { id: 'ops-refusal-counts' })
      : h('p', { id: 'ops-refusal-counts' }, 'No problem answered yet.'),
    h('h3', null, 'The latest'),
    h('p', { class: 'muted' }, `As seen by the worker that answered (process ${status.worker}), newest first.`),
    recent.length
      ? table(['When', 'Status', 'Code', 'Route', 'Key'], recent, { id: 'ops-recent-refusals' })
      : h('p', { id: 'ops-recent-refusals' }, 'None.'),
  ];
}

export async function render(view, me) {
  view.append(h('h1', { tabindex: '-1' }, 'Operations'));
  if (!may(me, 'operations')) {
    view.append(h('p', { class: 'error', role: 'alert', 'data-refused': 'operations' }, `A ${me.role} key may not see the operations page; it needs an admin key.`));
    return;
  }
  const parts = {
    models: section('Read models', 'ops-models'),
    deadlines: section('Deadlines', 'ops-deadlines'),
    keys: section('API keys', 'ops-keys-section'),
    refusals: section('Problems answered', 'ops-refusals'),
  };
  const refresh = h('button', { type: 'button', id: 'ops-refresh', onclick: () => go(hashOf(['operations']), 'ops-refresh') }, 'Refresh');
  view.append(
    h('div', { class: 'controls' }, refresh),
    h('div', { class: 'grid' }, parts.models.element, parts.deadlines.element),
    parts.keys.element, parts.refusals.element,
  );
  const load = getJson('/v1/operations/status');
  load.catch(() => {}); // each section shows the refusal
  await Promise.all([
    fill(parts.models.body, async () => readModels(await load)),
    fill(parts.deadlines.body, async () => deadlines(await load)),
    fill(parts.keys.body, async () => keys(await load)),
    fill(parts.refusals.body, async () => refusals(await load)),
  ]);
  const status = await load.catch(() => null);
  if (status) view.dataset.at = status.at;
}
