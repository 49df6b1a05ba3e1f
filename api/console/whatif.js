// What-if: every seller under a rulebook against a base one (GET /v1/whatif),
// as `trustledger whatif` reports it: a bar per level shift when the two
// rulebooks grade on one level scale, a bar per pair of level names when
// they do not (their numbers do not compare), and the sellers whose ranking
// multiplier changes most.

import { getJson } from './api.js';
import { facts, h, s } from './dom.js';
import * as f from './format.js';
import { go, hashOf } from './nav.js';
import { may } from './roles.js';

const BAR_HEIGHT = 22;
const BAR_GAP = 6;
const LABEL_WIDTH = 260;
const WIDTH = 640;

function controls(choice, rulebooks) {
  const apply = (event) => {
    event.preventDefault();
    const form = event.currentTarget.form ?? event.currentTarget;
    go(hashOf(['whatif'], {
      rulebook: form.elements.rulebook.value,
      base: form.elements.base.value,
      as_of: form.elements['as-of'].value,
    }), event.target.id || null);
  };
  const options = (chosen) => rulebooks.map((r) => h('option', { value: r.id, selected: r.id === chosen },
    `${r.title} (${r.scoring_stamp}${r.default ? ', default' : ''})`));
  return h('form', { class: 'controls', id: 'whatif-controls', onsubmit: apply },
    h('div', { class: 'field' },
      h('label', { for: 'base' }, 'Base rulebook'),
      h('select', { id: 'base', name: 'base', onchange: apply }, options(choice.base))),
    h('div', { class: 'field' },
      h('label', { for: 'rulebook' }, 'Compared with'),
      h('select', { id: 'rulebook', name: 'rulebook', onchange: apply }, options(choice.rulebook))),
    h('div', { class: 'field' },
      h('label', { for: 'as-of' }, 'As of (end of day, UTC)'),
      h('input', { id: 'as-of', name: 'as-of', type: 'date', value: choice.asOf, onchange: apply, 'aria-describedby': 'as-of-hint' }),
      h('small', { id: 'as-of-hint' }, 'Empty: now.')),
    h('button', { type: 'submit' }, 'Compare'));
}

function shiftLabel(levels) {
  if (levels === 0) return 'no change';
  const steps = Math.abs(levels);
  return `${levels > 0 ? 'up' : 'down'} ${steps} level${steps === 1 ? '' : 's'}`;
}

/** Horizontal bars: one per ``{label, sellers, attributes}``, as long as its share of the most. */
function histogram(title, bars) {
  const most = Math.max(1, ...bars.map((bar) => bar.sellers));
  const height = Math.max(1, bars.length) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP;
  const room = WIDTH - LABEL_WIDTH - 60;
  const svg = s('svg', {
    class: 'chart histogram', viewBox: `0 0 ${WIDTH} ${height}`, role: 'img', 'aria-labelledby': 'whatif-chart-title',
    'data-chart': 'levels', 'data-bars': bars.length,
  }, s('title', { id: 'whatif-chart-title' }, title));
  bars.forEach((bar, i) => {
    const y = BAR_GAP + i * (BAR_HEIGHT + BAR_GAP);
    const length = Math.max(1, (bar.sellers / most) * room);
    svg.append(s('g', { class: 'bar', 'data-sellers': bar.sellers, ...bar.attributes },
      s('text', { class: 'tick', x: LABEL_WIDTH - 8, y: y + BAR_HEIGHT * 0.7, 'text-anchor': 'end' }, bar.label),
      s('rect', { class: `fill ${bar.kind}`, x: LABEL_WIDTH, y, width: length.toFixed(1), height: BAR_HEIGHT }),
      s('text', { class: 'tick count', x: LABEL_WIDTH + length + 6, y: y + BAR_HEIGHT * 0.7 }, String(bar.sellers))));
  });
  const table = h('details', null,
    h('summary', null, 'The figures'),
    h('table', null,
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'levels'), h('th', { scope: 'col' }, 'sellers'))),
      h('tbody', null, bars.map((bar) => h('tr', null, h('th', { scope: 'row' }, bar.label), h('td', null, bar.sellers))))));
  return h('figure', { class: 'chart-figure' }, svg, table);
}

function levels(answer) {
  if (answer.level_shifts !== null) {
    return [
      h('p', { class: 'muted' }, 'Both rulebooks grade on the same levels: each bar counts the sellers that move by so many levels.'),
      histogram('Sellers by level shift', answer.level_shifts.map((shift) => ({
        label: shiftLabel(shift.levels),
        sellers: shift.sellers,
        kind: shift.levels > 0 ? 'up' : shift.levels < 0 ? 'down' : 'same',
        attributes: { 'data-levels': shift.levels },
      }))),
    ];
  }
  return [
    h('p', { class: 'muted', 'data-scales': 'different' },
      'The two rulebooks grade on different level scales, whose numbers do not compare: each bar counts the sellers at one level under the base rulebook and another under the other.'),
    histogram('Sellers by level under each rulebook', answer.level_moves.map((move) => ({
      label: `${move.before} → ${move.after}`,
      sellers: move.sellers,
      kind: 'move',
      attributes: { 'data-before': move.before, 'data-after': move.after },
    }))),
  ];
}

function multipliers(answer, me) {
  if (answer.multiplier_changes.length === 0) {
    return h('p', { class: 'muted', 'data-empty': 'multipliers' }, 'No seller\'s ranking multiplier changes.');
  }
  return h('table', { id: 'multiplier-changes' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'seller'),
      h('th', { scope: 'col' }, `under ${answer.base}`),
      h('th', { scope: 'col' }, `under ${answer.rulebook}`),
      h('th', { scope: 'col' }, 'change'))),
    h('tbody', null, answer.multiplier_changes.map((change) => h('tr', { 'data-seller': change.seller_id },
      h('th', { scope: 'row' }, may(me, 'figures')
        ? h('a', { href: hashOf(['seller', change.seller_id]), class: 'id' }, change.seller_id)
        : h('span', { class: 'id' }, change.seller_id)),
      h('td', { 'data-figure': 'base' }, f.multiplier(change.base)),
      h('td', { 'data-figure': 'rulebook' }, f.multiplier(change.rulebook)),
      h('td', { 'data-figure': 'change' }, `${change.change > 0 ? '+' : ''}${f.number(change.change)}`)))));
}

export async function render(view, me, params) {
  view.append(h('h1', { tabindex: '-1' }, 'What-if'));
  if (!may(me, 'audit')) {
    view.append(h('p', { class: 'error', role: 'alert', 'data-refused': 'whatif' },
      `A ${me.role} key may not compare rulebooks: this page needs an auditor's or an administrator's key.`));
    return;
  }
  const { rulebooks } = await getJson('/v1/rulebooks');
  const fallback = rulebooks.find((r) => r.default)?.id;
  const choice = {
    base: params.get('base') || fallback,
    rulebook: params.get('rulebook') || rulebooks.find((r) => r.id !== fallback)?.id || fallback,
    asOf: params.get('as_of') ?? '',
  };
  view.append(controls(choice, rulebooks));
  const answer = await getJson('/v1/whatif', {
    rulebook: choice.rulebook, base: choice.base, as_of: choice.asOf ? f.endOfDay(choice.asOf) : null,
  });
  const complete = answer.complete
    ? null
    : h('p', { class: 'error', role: 'status', 'data-incomplete': 'true' },
      `Only the first ${answer.sellers} sellers by id are counted: the server folds no more in one answer. `,
      'The command line counts them all: ', h('code', null, `trustledger --rulebook ${choice.base} whatif --vs ${choice.rulebook}`));
  view.append(
    complete ?? '',
    h('section', { class: 'card', id: 'whatif-summary', 'aria-labelledby': 'whatif-summary-title' },
      h('h2', { id: 'whatif-summary-title' }, `${answer.base} against ${answer.rulebook}`),
      facts([
        ['Sellers', answer.sellers, { 'data-figure': 'sellers' }],
        ['Level changed', answer.level_changed ?? 'levels on different scales', { 'data-figure': 'level_changed' }],
        ['Searchable changed', answer.searchable_changed, { 'data-figure': 'searchable_changed' }],
        ['Sort-hidden changed', answer.sort_hidden_changed, { 'data-figure': 'sort_hidden_changed' }],
        ['Multiplier changed', answer.multiplier_changed, { 'data-figure': 'multiplier_changed' }],
      ]),
      h('p', { class: 'stamp' }, `as of ${f.time(answer.as_of)} · log position ${answer.position}`)),
    h('div', { class: 'grid' },
      h('section', { class: 'card', id: 'whatif-levels', 'aria-labelledby': 'whatif-levels-title' },
        h('h2', { id: 'whatif-levels-title' }, 'Levels'), levels(answer)),
      h('section', { class: 'card', id: 'whatif-multipliers', 'aria-labelledby': 'whatif-multipliers-title' },
        h('h2', { id: 'whatif-multipliers-title' }, 'Largest multiplier changes'), multipliers(answer, me))),
  );
}
