// What the seller, buyer and explanation pages show alike: the as-of and
// rulebook fields of their forms, and a member's credit card.

import { getJson } from './api.js';
import { badge } from './badge.js';
import { facts, h, problemText } from './dom.js';
import * as f from './format.js';

/** The as-of date field: the end of that day in UTC; empty means now. */
export function asOfField(choice, apply) {
  return h('div', { class: 'field' },
    h('label', { for: 'as-of' }, 'As of (end of day, UTC)'),
    h('input', { id: 'as-of', name: 'as-of', type: 'date', value: choice.asOf, onchange: apply, 'aria-describedby': 'as-of-hint' }),
    h('small', { id: 'as-of-hint' }, 'Empty: now.'));
}

/** The rulebook switch: every rulebook the server holds, the chosen (or default) one selected. */
export function rulebookField(choice, rulebooks, apply) {
  const chosen = choice.rulebook || rulebooks?.find((r) => r.default)?.id;
  const options = rulebooks
    ? rulebooks.map((r) => h('option', { value: r.id, selected: r.id === chosen },
      `${r.title} (${r.scoring_stamp}${r.default ? ', default' : ''})`))
    : [h('option', { value: '' }, 'the server\'s default')];
  return h('div', { class: 'field' },
    h('label', { for: 'rulebook' }, 'Rulebook'),
    h('select', { id: 'rulebook', name: 'rulebook', onchange: apply }, options));
}

/** A credit answer as the marketplace shows it, with a link to the ratings behind it. */
export function creditCard(answer, explain) {
  const ratings = answer.ratings;
  return [
    h('div', { class: 'credit-head' }, badge(answer.level),
      h('p', { class: 'big' }, h('span', { 'data-figure': 'score' }, answer.score), h('span', { class: 'unit' }, ' points'))),
    facts([
      ['Positive rate, all time', f.percent(answer.positive_rate_lifetime), { 'data-figure': 'positive_rate_lifetime' }],
      ['Positive rate, last 180 days', f.percent(answer.positive_rate_180d), { 'data-figure': 'positive_rate_180d' }],
      ['Ratings', `${ratings.positive} positive, ${ratings.neutral} neutral, ${ratings.negative} negative, ${ratings.unscored} not scored`, { 'data-figure': 'ratings' }],
    ]),
    h('p', null, h('a', { href: explain, id: 'explain-link' }, 'Each rating behind this credit, and why it counts')),
    stamp(answer),
  ];
}

/** Under which rulebook, as of when and at which log position a figure was read. */
export function stamp(answer) {
  return h('p', { class: 'stamp' }, `${answer.rulebook} · as of ${f.time(answer.as_of)} · log position ${answer.position}`);
}


/** The rulebooks the server holds, for the rulebook switch; null (and why, shown in ``view``) when they cannot be read. */
export async function rulebooksFor(view) {
  try {
    return (await getJson('/v1/rulebooks')).rulebooks;
  } catch (error) {
    view.append(problemText(error));
    return null;
  }
}
