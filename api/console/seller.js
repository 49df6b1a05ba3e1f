// A seller: the credit badge, the four shop scores, the search penalty and
// their course over time, as of a date and under a chosen rulebook.

import { getJson, segment } from './api.js';
import { lineChart } from './chart.js';
import { addSection, facts, h, s } from './dom.js';
import * as f from './format.js';
import { asOfField, creditCard, rulebookField, rulebooksFor, stamp } from './figures.js';
import { go, hashOf } from './nav.js';
import { may } from './roles.js';

const DSR = [
  ['as_described', 'Item as described'],
  ['service', 'Seller service'],
  ['shipping_speed', 'Shipping speed'],
  ['logistics', 'Logistics'],
];
const DSR_MAX = 5;
// Each step's window, ending at the as-of time.
export const WINDOWS = {
  day: { label: 'Daily, last 30 days', days: 30 },
  week: { label: 'Weekly, last 13 weeks', days: 91 },
  month: { label: 'Monthly, last 12 months', months: 12 },
};
const DAY_MS = 86_400_000;

/** The series window ending at ``to`` for a step. */
export function seriesWindow(to, step) {
  const end = new Date(Date.parse(to));
  const window = WINDOWS[step];
  const start = window.months
    ? new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - window.months, end.getUTCDate(),
      end.getUTCHours(), end.getUTCMinutes(), end.getUTCSeconds()))
    : new Date(end.getTime() - window.days * DAY_MS);
  return { from: start.toISOString().replace(/\.\d+Z$/, 'Z'), to, step };
}

function controls(id, choice, rulebooks) {
  const apply = (event) => {
    event.preventDefault();
    const form = event.currentTarget.form ?? event.currentTarget;
    const params = {
      as_of: form.elements['as-of'].value,
      rulebook: form.elements.rulebook.value,
      step: form.elements.step.value === 'week' ? '' : form.elements.step.value,
    };
    go(hashOf(['seller', id], params), event.target.id || null);
  };
  return h('form', { class: 'controls', id: 'seller-controls', onsubmit: apply },
    asOfField(choice, apply),
    rulebookField(choice, rulebooks, apply),
    h('div', { class: 'field' },
      h('label', { for: 'step' }, 'Charts'),
      h('select', { id: 'step', name: 'step', onchange: apply },
        Object.entries(WINDOWS).map(([step, w]) => h('option', { value: step, selected: step === choice.step }, w.label)))),
    h('button', { type: 'submit' }, 'Show'));
}

function dsrBars(answer) {
  return [
    h('ul', { class: 'dsr' }, DSR.map(([key, name]) => {
      const mean = answer[key];
      const width = mean === null ? 0 : (mean / DSR_MAX) * 100;
      return h('li', { 'data-dsr': key },
        h('span', { class: 'dsr-name', id: `dsr-${key}` }, name),
        s('svg', { class: 'dsr-bar', viewBox: '0 0 100 10', preserveAspectRatio: 'none', role: 'img', 'aria-labelledby': `dsr-${key} dsr-${key}-value` },
          s('rect', { class: 'track', x: 0, y: 0, width: 100, height: 10 }),
          s('rect', { class: 'fill', x: 0, y: 0, width: width.toFixed(2), height: 10 })),
        h('span', { class: 'dsr-value', id: `dsr-${key}-value`, 'data-figure': `dsr_${key}` }, f.score(mean)));
    })),
    h('p', { class: 'muted' }, h('span', { 'data-figure': 'dsr_count' }, answer.count), ' rated trades in the window'),
    stamp(answer),
  ];
}

const SELLER_LEVELS = {
  top_rated: 'Top Rated',
  above_standard: 'Above Standard',
  below_standard: 'Below Standard',
};

/** The seller's level from its defects, as buyers see it, where the rulebook grades one. */
function sellerLevel(answer) {
  const level = answer.level;
  if (level === null) {
    return [h('p', { class: 'muted', 'data-figure': 'seller_level', 'data-level': '' },
      'This rulebook grades no seller levels (ebay-style does, from defects).'), stamp(answer)];
  }
  return [
    h('p', { class: `big seller-level ${level.level}`, 'data-figure': 'seller_level', 'data-level': level.level }, SELLER_LEVELS[level.level] ?? level.level),
    facts([
      ['Window', `the last ${level.window_days} days`, { 'data-figure': 'window_days' }],
      ['Trades', level.trades, { 'data-figure': 'level_trades' }],
      ['Defects', level.defects, { 'data-figure': 'defects' }],
      ['Defect rate', f.percent(level.defect_rate), { 'data-figure': 'defect_rate' }],
      ['Buyers with a defect', level.defect_buyers, { 'data-figure': 'defect_buyers' }],
    ]),
    stamp(answer),
  ];
}

function penalty(answer) {
  const demoted = Object.entries(answer.demoted_items);
  return [
    facts([
      ['Found in search', f.yesNo(answer.searchable), { 'data-figure': 'searchable' }],
      ['Ranking multiplier', f.multiplier(answer.multiplier), { 'data-figure': 'multiplier' }],
      ['Hidden from sorted results', f.yesNo(answer.sort_hidden), { 'data-figure': 'sort_hidden' }],
      ['Identity verified', f.yesNo(answer.verified), { 'data-figure': 'verified' }],
      ['Demoted items', demoted.length + answer.demoted_items_unlisted, { 'data-figure': 'demoted_items' }],
    ]),
    answer.reasons.length === 0
      ? h('p', { class: 'muted', 'data-figure': 'no_reasons' }, 'No reason applies: the seller ranks at full weight.')
      : h('table', { class: 'reasons' },
        h('caption', null, 'Why'),
        h('thead', null, h('tr', null, ['Reason', 'Figure', 'Threshold', 'Until', 'Facts'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, answer.reasons.map((r) => h('tr', { 'data-reason': r.code },
          h('th', { scope: 'row' }, r.code.replaceAll('_', ' ')),
          h('td', { 'data-figure': 'figure' }, f.number(r.figure)),
          h('td', { 'data-figure': 'threshold' }, f.number(r.threshold)),
          h('td', null, f.time(r.until)),
          h('td', null, r.positions.length ? `positions ${r.positions.join(', ')}` : f.DASH))))),
    demoted.length
      ? h('ul', { class: 'demoted' }, demoted.map(([item, until]) => h('li', null, `${item} until ${f.time(until)}`)))
      : null,
    stamp(answer),
  ];
}

export async function render(view, me, id, params) {
  const choice = {
    asOf: params.get('as_of') ?? '',
    rulebook: params.get('rulebook') ?? '',
    step: WINDOWS[params.get('step')] ? params.get('step') : 'week',
  };
  const asOf = choice.asOf ? f.endOfDay(choice.asOf) : null;
  const common = { rulebook: choice.rulebook || null };
  const window = seriesWindow(asOf ?? f.now(), choice.step);
  const path = segment(id);

  view.append(h('h1', { tabindex: '-1' }, 'Seller ', h('span', { class: 'id' }, id)));
  const rulebooks = await rulebooksFor(view);
  view.append(controls(id, choice, rulebooks));

  const grid = h('div', { class: 'grid' });
  const charts = h('div', { class: 'charts' });
  view.append(grid, h('h2', { class: 'band' }, 'Over time'), charts);
  const loads = [];
  const add = (into, title, key, allowed, load) => addSection({ into, loads, me }, title, key, allowed, load);
  const figures = may(me, 'figures');
  add(grid, 'Credit', 'credit', figures, async () => creditCard(
    await getJson(`/v1/members/${path}/credit`, { role: 'seller', as_of: asOf, ...common }),
    hashOf(['explain', id], { role: 'seller', as_of: choice.asOf, rulebook: choice.rulebook })));
  add(grid, 'Shop scores', 'dsr', figures, async () => dsrBars(
    await getJson(`/v1/sellers/${path}/dsr`, { as_of: asOf, ...common })));
  add(grid, 'Seller level', 'seller-level', figures, async () => sellerLevel(
    await getJson(`/v1/sellers/${path}/level`, { as_of: asOf, ...common })));
  add(grid, 'Search penalty', 'penalty', may(me, 'penalty'), async () => penalty(
    await getJson(`/v1/sellers/${path}/penalty`, { as_of: asOf, ...common })));

  const query = { ...window, ...common };
  const span = WINDOWS[choice.step].label.toLowerCase();
  // One credit series draws three charts: the score, the level and the positive rates.
  const creditLoad = figures ? getJson(`/v1/members/${path}/credit/series`, { role: 'seller', ...query }) : null;
  creditLoad?.catch(() => {}); // each chart shows the refusal
  add(charts, 'Credit score', 'credit-series', figures, async () => {
    const series = await creditLoad;
    return lineChart({
      id: 'credit-series', title: `Credit score of ${id}, ${span}`,
      times: series.points.map((p) => p.as_of), domain: [0, 1], format: (v) => String(Math.round(v)),
      lines: [{ key: 'score', name: 'score', values: series.points.map((p) => p.score) }],
    });
  });
  add(charts, 'Credit level', 'level-series', figures, async () => {
    const series = await creditLoad;
    const names = new Map(series.points.map((p) => [p.level.index, p.level.name]));
    return lineChart({
      id: 'level-series', title: `Credit level of ${id}, ${span}`,
      times: series.points.map((p) => p.as_of), domain: [0, 1],
      format: (v) => names.get(Math.round(v)) ?? `level ${Math.round(v)}`,
      lines: [{ key: 'level', name: 'level', values: series.points.map((p) => p.level.index) }],
    });
  });
  add(charts, 'Positive rate', 'rate-series', figures, async () => {
    const series = await creditLoad;
    return lineChart({
      id: 'rate-series', title: `Positive rate of ${id}, ${span}`,
      times: series.points.map((p) => p.as_of), domain: [0, 1], format: f.percent,
      tick: (v) => `${Math.round(v * 100)} %`,
      lines: [
        { key: 'positive_rate_lifetime', name: 'all time', values: series.points.map((p) => p.positive_rate_lifetime) },
        { key: 'positive_rate_180d', name: 'last 180 days', values: series.points.map((p) => p.positive_rate_180d) },
      ],
    });
  });
  add(charts, 'Shop scores', 'dsr-series', figures, async () => {
    const series = await getJson(`/v1/sellers/${path}/dsr/series`, query);
    return lineChart({
      id: 'dsr-series', title: `Shop scores of ${id}, ${span}`,
      times: series.points.map((p) => p.as_of), domain: [1, DSR_MAX], format: (v) => v.toFixed(2),
      lines: DSR.map(([key, name]) => ({ key, name, values: series.points.map((p) => p[key]) })),
    });
  });
  add(charts, 'Violation points', 'violations-series', figures, async () => {
    const series = await getJson(`/v1/sellers/${path}/violations/series`, query);
    return lineChart({
      id: 'violations-series', title: `Violation points of ${id} this year, ${span}`,
      times: series.points.map((p) => p.as_of), domain: [0, 1], format: (v) => String(Math.round(v)),
      lines: [
        { key: 'general', name: 'general', values: series.points.map((p) => p.points.general) },
        { key: 'serious', name: 'serious', values: series.points.map((p) => p.points.serious) },
      ],
    });
  });
  add(charts, 'Search ranking multiplier', 'penalty-series', may(me, 'penalty'), async () => {
    const series = await getJson(`/v1/sellers/${path}/penalty/series`, query);
    return lineChart({
      id: 'penalty-series', title: `Ranking multiplier of ${id}, ${span}`,
      times: series.points.map((p) => p.as_of), domain: [0, 1], format: (v) => v.toFixed(2),
      lines: [{ key: 'multiplier', name: 'multiplier', values: series.points.map((p) => p.multiplier) }],
    });
  });
  charts.prepend(h('p', { class: 'muted', id: 'window', 'data-from': window.from, 'data-to': window.to, 'data-step': window.step },
    `From ${f.time(window.from)} to ${f.time(window.to)}, a point at the end of each ${window.step}.`));
  await Promise.all(loads);
}
