// Why a member's credit is what it is: every rating behind it, page by page,
// each counted or excluded by a named rule (docs/rules.md, §3), with filters
// over the ratings loaded so far.

import { getJson, segment } from './api.js';
import { facts, h, problemText } from './dom.js';
import * as f from './format.js';
import { asOfField, rulebookField, rulebooksFor } from './figures.js';
import { go, hashOf } from './nav.js';
import { may } from './roles.js';

// Each reason the API names (docs/api.md, "Pages of the credit explanation").
export const REASONS = {
  fake_trade: 'the trade was confirmed fake',
  shielded: 'shielded by the platform',
  withdrawn: 'withdrawn by its rater',
  amount_le_1: 'the trade\'s amount is at most 1 major unit',
  same_item_14d: 'a further rating of this score by the same pair on the same item within 14 days',
  pair_month_cap: 'it would take the pair\'s net score for the period beyond the cap',
  not_allowed_by_rulebook: 'the rulebook does not count this score',
  hidden: 'not visible yet: it counts nowhere until it is',
};
const PAGE_MAX = 1000;

function statusOf(rating) {
  if (rating.reason === null) return 'counted';
  return rating.reason === 'hidden' ? 'hidden' : 'excluded';
}

const STATUS_WORDS = { counted: 'counted', excluded: 'excluded', hidden: 'not yet visible' };

/** What corrected a rating by the answer's time (its rater revised or withdrew it), or null. */
export function correction(rating) {
  if (rating.withdrawn_at) return `withdrawn ${f.time(rating.withdrawn_at)}`;
  if (rating.revised_at) return `revised from ${rating.given_score} ${f.time(rating.revised_at)}`;
  return null;
}

function controls(id, choice, rulebooks) {
  const apply = (event) => {
    event.preventDefault();
    const form = event.currentTarget.form ?? event.currentTarget;
    const params = {
      role: form.elements.role.value,
      as_of: form.elements['as-of'].value,
      rulebook: form.elements.rulebook.value,
      limit: form.elements.limit.value,
    };
    go(hashOf(['explain', id], params), event.target.id || null);
  };
  return h('form', { class: 'controls', id: 'explain-controls', onsubmit: apply },
    h('div', { class: 'field' },
      h('label', { for: 'role' }, 'Credit as'),
      h('select', { id: 'role', name: 'role', onchange: apply },
        ['seller', 'buyer'].map((role) => h('option', { value: role, selected: role === choice.role }, `a ${role}`)))),
    asOfField(choice, apply),
    rulebookField(choice, rulebooks, apply),
    h('div', { class: 'field' },
      h('label', { for: 'limit' }, 'Ratings a page'),
      h('input', { id: 'limit', name: 'limit', type: 'number', min: 1, max: PAGE_MAX, step: 1, value: choice.limit, placeholder: '100', 'aria-describedby': 'limit-hint' }),
      h('small', { id: 'limit-hint' }, 'Empty: the server\'s default.')),
    h('button', { type: 'submit' }, 'Show'));
}

function row(rating, me) {
  const status = statusOf(rating);
  const corrected = correction(rating);
  return h('tr', { 'data-trade': rating.trade_id, 'data-status': status, 'data-reason': rating.reason ?? '', 'data-corrected': String(corrected !== null) },
    h('th', { scope: 'row' }, may(me, 'trades') ? h('a', { href: hashOf(['trade', rating.trade_id]) }, rating.trade_id) : rating.trade_id),
    h('td', null, rating.rater_id),
    h('td', null, rating.score, rating.default ? ' (default)' : null),
    h('td', { 'data-figure': 'points' }, rating.points),
    h('td', { class: `status ${status}`, 'data-figure': 'status' }, STATUS_WORDS[status]),
    h('td', { 'data-figure': 'why' }, rating.reason === null
      ? f.DASH
      : [h('code', null, rating.reason), ': ', REASONS[rating.reason] ?? 'a rule this console does not know']),
    h('td', { 'data-figure': 'correction' }, corrected ?? f.DASH),
    h('td', null, f.time(rating.order_created_at)),
    h('td', null, f.time(rating.visible_at)),
    h('td', null, rating.position));
}

export async function render(view, me, id, params) {
  const limit = Number.parseInt(params.get('limit') ?? '', 10);
  const choice = {
    role: params.get('role') === 'buyer' ? 'buyer' : 'seller',
    asOf: params.get('as_of') ?? '',
    rulebook: params.get('rulebook') ?? '',
    limit: limit >= 1 && limit <= PAGE_MAX ? limit : '',
  };
  view.append(h('h1', { tabindex: '-1' }, 'Credit of ', h('span', { class: 'id' }, id), ` as a ${choice.role}, rating by rating`));
  if (!may(me, 'figures')) {
    view.append(h('p', { class: 'error', role: 'alert' }, `A ${me.role} key may not read credit.`));
    return;
  }
  const rulebooks = await rulebooksFor(view);
  view.append(controls(id, choice, rulebooks));
  const back = choice.role === 'seller' ? ['seller', id] : ['buyer', id];
  view.append(h('p', null, h('a', { href: hashOf(back, { as_of: choice.asOf, rulebook: choice.rulebook }) }, `Back to the ${choice.role}`)));

  const address = `/v1/members/${segment(id)}/credit/explanation`;
  const query = {
    role: choice.role,
    as_of: choice.asOf ? f.endOfDay(choice.asOf) : null,
    rulebook: choice.rulebook || null,
    limit: choice.limit || null,
  };
  let first;
  try {
    first = await getJson(address, query);
  } catch (error) {
    view.append(problemText(error));
    return;
  }
  // Every further page is read as of the first one's time, so the pages add up to one explanation.
  query.as_of = first.as_of;

  const loaded = [];
  const summary = h('div', { id: 'explain-summary' });
  const body = h('tbody');
  const shown = h('p', { class: 'muted', id: 'shown', role: 'status' });
  const excludedOnly = h('input', { id: 'excluded-only', name: 'excluded-only', type: 'checkbox', onchange: () => applyFilters() });
  const correctedOnly = h('input', { id: 'corrected-only', name: 'corrected-only', type: 'checkbox', onchange: () => applyFilters() });
  const reason = h('select', { id: 'reason', name: 'reason', onchange: () => applyFilters() },
    h('option', { value: '' }, 'any reason'),
    Object.entries(REASONS).map(([code]) => h('option', { value: code }, code.replaceAll('_', ' '))));
  const more = h('button', { type: 'button', id: 'more' }, 'More');
  const end = h('div', { id: 'pages' });

  function applyFilters() {
    let count = 0;
    for (const tr of body.children) {
      const visible = (!excludedOnly.checked || tr.dataset.status === 'excluded')
        && (!correctedOnly.checked || tr.dataset.corrected === 'true')
        && (!reason.value || tr.dataset.reason === reason.value);
      tr.hidden = !visible;
      if (visible) count++;
    }
    shown.textContent = `Showing ${count} of the ${loaded.length} ratings loaded.`;
    shown.dataset.count = String(count);
  }

  function drawSummary() {
    const counts = { counted: 0, excluded: 0, hidden: 0 };
    for (const rating of loaded) counts[statusOf(rating)]++;
    const corrected = loaded.filter((rating) => correction(rating) !== null).length;
    summary.replaceChildren(
      h('p', { class: 'big' }, h('span', { 'data-figure': 'score' }, first.score), h('span', { class: 'unit' }, ' points')),
      facts([
        ['Ratings loaded', loaded.length, { 'data-figure': 'loaded' }],
        ['Counted', counts.counted, { 'data-figure': 'counted' }],
        ['Excluded', counts.excluded, { 'data-figure': 'excluded' }],
        ['Corrected by their rater', corrected, { 'data-figure': 'corrected' }],
        may(me, 'audit') ? ['Not yet visible', counts.hidden, { 'data-figure': 'hidden' }] : null,
      ].filter(Boolean)),
      h('p', { class: 'stamp', 'data-as-of': first.as_of }, `${first.rulebook} · as of ${f.time(first.as_of)} · log position ${first.position}`));
  }

  function add(page) {
    loaded.push(...page.ratings);
    body.append(...page.ratings.map((rating) => row(rating, me)));
    drawSummary();
    applyFilters();
    if (page.next_cursor === null) {
      more.remove();
      end.dataset.state = 'complete';
      end.replaceChildren(h('p', { class: 'muted' }, `Every page loaded: ${loaded.length} ratings.`));
    } else {
      end.dataset.state = 'more';
      end.replaceChildren(more);
      more.dataset.cursor = page.next_cursor;
    }
  }

  more.addEventListener('click', async () => {
    more.disabled = true;
    end.dataset.state = 'loading';
    try {
      add(await getJson(address, { ...query, cursor: more.dataset.cursor }));
    } catch (error) {
      end.dataset.state = 'error';
      end.replaceChildren(problemText(error), more);
    }
    more.disabled = false;
    more.focus();
  });

  view.append(
    h('section', { class: 'card', id: 'explain', 'aria-labelledby': 'explain-title' },
      h('h2', { id: 'explain-title' }, 'The credit'), summary,
      h('p', { class: 'muted' }, 'A revised rating counts with its revised score from the revision on; a withdrawn one counts no more. ',
        'Ratings not yet visible are listed to auditors only.')),
    h('section', { class: 'card', id: 'ratings-card', 'aria-labelledby': 'ratings-title' },
      h('h2', { id: 'ratings-title' }, 'Ratings, in order of order creation'),
      h('div', { class: 'filters', role: 'group', 'aria-label': 'Filters over the ratings loaded' },
        h('div', { class: 'field check' }, excludedOnly, h('label', { for: 'excluded-only' }, 'Excluded only')),
        h('div', { class: 'field check' }, correctedOnly, h('label', { for: 'corrected-only' }, 'Corrected only')),
        h('div', { class: 'field' }, h('label', { for: 'reason' }, 'Reason'), reason)),
      shown,
      h('div', { class: 'scroll' }, h('table', { id: 'ratings' },
        h('thead', null, h('tr', null, ['Trade', 'Rater', 'Score', 'Points', 'Counts', 'Why', 'Correction', 'Order created', 'Visible from', 'Log position']
          .map((c) => h('th', { scope: 'col' }, c)))),
        body)),
      end));
  add(first);
}
