// Line charts as inline SVG: one polyline per line, one vertex per point of
// the series where the line has a value (a shop score before any rating has
// none), placed by time; the figures are also in a table under the chart.

import { h, s } from './dom.js';

const WIDTH = 640;
const HEIGHT = 220;
const PAD = { top: 14, right: 16, bottom: 28, left: 52 };

function scale(value, [lo, hi], [from, to]) {
  return hi === lo ? (from + to) / 2 : from + ((value - lo) / (hi - lo)) * (to - from);
}

/**
 * A chart of ``lines`` ({name, key, values}) over ``times`` (RFC 3339 strings,
 * one per point), the y axis from ``domain`` [lo, hi] widened to the data;
 * ``format`` writes a figure, ``tick`` (default ``format``) the axis's ends.
 */
export function lineChart({ id, title, times, lines, domain, format, tick = format }) {
  const known = lines.flatMap((line) => line.values.filter((v) => v !== null && v !== undefined));
  const lo = Math.min(domain[0], ...known);
  const hi = Math.max(domain[1], ...known);
  const instants = times.map((t) => Date.parse(t));
  const xRange = [PAD.left, WIDTH - PAD.right];
  const yRange = [HEIGHT - PAD.bottom, PAD.top];
  const tRange = [instants[0], instants[instants.length - 1]];
  const x = (i) => scale(instants[i], tRange, xRange).toFixed(1);
  const y = (v) => scale(v, [lo, hi], yRange).toFixed(1);

  const titleId = `${id}-chart-title`;
  const svg = s('svg', {
    class: 'chart', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-labelledby': titleId,
    'data-chart': id, 'data-points': times.length,
  }, s('title', { id: titleId }, title));

  // The frame: the y axis's ends and the window's first and last days.
  svg.append(
    s('line', { class: 'axis', x1: PAD.left, x2: WIDTH - PAD.right, y1: yRange[0], y2: yRange[0] }),
    s('line', { class: 'axis', x1: PAD.left, x2: PAD.left, y1: yRange[0], y2: yRange[1] }),
    s('text', { class: 'tick', x: PAD.left - 6, y: yRange[1] + 4, 'text-anchor': 'end' }, tick(hi)),
    s('text', { class: 'tick', x: PAD.left - 6, y: yRange[0], 'text-anchor': 'end' }, tick(lo)),
  );
  if (times.length > 0) {
    svg.append(
      s('text', { class: 'tick', x: PAD.left, y: HEIGHT - 8 }, times[0].slice(0, 10)),
      s('text', { class: 'tick', x: WIDTH - PAD.right, y: HEIGHT - 8, 'text-anchor': 'end' },
        times[times.length - 1].slice(0, 10)),
    );
  }
  for (const line of lines) {
    const vertices = [];
    line.values.forEach((value, i) => {
      if (value !== null && value !== undefined) vertices.push([x(i), y(value)]);
    });
    if (vertices.length === 0) continue;
    svg.append(s('polyline', {
      class: `line ${line.key}`, 'data-line': line.key, fill: 'none',
      points: vertices.map(([vx, vy]) => `${vx},${vy}`).join(' '),
    }));
    if (vertices.length <= 60) {
      for (const [vx, vy] of vertices) svg.append(s('circle', { class: `dot ${line.key}`, cx: vx, cy: vy, r: 2.5 }));
    }
  }
  if (known.length === 0) {
    svg.append(s('text', { class: 'empty', x: WIDTH / 2, y: HEIGHT / 2, 'text-anchor': 'middle' },
      'no figures in this window'));
  }

  const legend = lines.length > 1
    ? h('ul', { class: 'legend' }, lines.map((line) => h('li', null, h('span', { class: `key ${line.key}`, 'aria-hidden': 'true' }), line.name)))
    : null;
  const table = h('details', null,
    h('summary', null, 'The figures'),
    h('table', null,
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'as of'), lines.map((l) => h('th', { scope: 'col' }, l.name)))),
      h('tbody', null, times.map((t, i) => h('tr', null,
        h('th', { scope: 'row' }, t),
        lines.map((line) => h('td', null, line.values[i] === null ? '—' : format(line.values[i]))))))));
  return h('figure', { class: 'chart-figure' }, svg, legend, table);
}
