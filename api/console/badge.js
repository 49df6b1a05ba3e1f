// The credit badge as the marketplace draws it: the level's icon (hearts,
// diamonds, crowns; stars under eBay-style rules) repeated as many times as
// the level's name counts ("3 hearts": three hearts), then its name.

import { h, s } from './dom.js';

const SHAPES = {
  heart: 'M12 21s-7.6-4.7-9.7-9.2C.9 8.5 3 5 6.4 5c2.1 0 3.7 1.2 4.6 2.8C12 6.2 13.6 5 15.6 5 19 5 21.1 8.5 19.7 11.8 17.6 16.3 12 21 12 21z',
  diamond: 'M12 2l10 8-10 12L2 10z',
  crown: 'M3 19l-1-12 6 5 4-8 4 8 6-5-1 12z',
  star: 'M12 2l2.9 6.6 7.1.6-5.4 4.7 1.6 7.1L12 17.3 5.8 21l1.6-7.1L2 9.2l7.1-.6z',
};

function shapeOf(icon) {
  if (icon === 'gold_crown') return ['crown', 'gold'];
  if (icon.startsWith('shooting_star_')) return ['star', icon.slice('shooting_star_'.length), 'shooting'];
  if (icon.startsWith('star_')) return ['star', icon.slice('star_'.length)];
  return [icon, icon];
}

function glyph(icon) {
  const [shape, colour, shooting] = shapeOf(icon);
  const path = SHAPES[shape] ?? SHAPES.star;
  return s('svg', { class: `glyph ${colour}`, viewBox: shooting ? '-8 0 32 24' : '0 0 24 24', 'aria-hidden': 'true', focusable: 'false' },
    shooting ? s('path', { class: 'tail', d: 'M-7 17l9-4M-6 21l9-5' }) : null,
    s('path', { d: path }));
}

/** The badge of a credit answer's ``level`` {index, name, icon}. */
export function badge(level) {
  const count = Math.min(Number.parseInt(level.name, 10) || 1, 5);
  const glyphs = level.icon ? Array.from({ length: count }, () => glyph(level.icon)) : [];
  return h('div', { class: 'badge', 'data-icon': level.icon, 'data-level': level.index },
    h('span', { class: 'glyphs' }, glyphs),
    h('span', { class: 'level-name', 'data-figure': 'level' }, level.name));
}
