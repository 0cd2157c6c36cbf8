// The dashboard: the warehouse figures provinces publish (received, resolved early / on time / late,
// online share, digitized) per unit or level and period, as a table and an SVG bar chart.

import * as api from './api.js';
import { byId, el, fill, svg, saveBlob } from './dom.js';
import { t, onLanguageChange, formatDay, formatNumber } from './i18n.js';

const COLUMNS = [
  'carried_over', 'received', 'online', 'resolved', 'early', 'on_time', 'late', 'in_progress',
  'digitized', 'digitized_pages', 'on_time_rate', 'online_share',
];
/** The series the chart draws for each row, with their colour class. */
const SERIES = ['received', 'early', 'on_time', 'late', 'digitized'];

let context;
let started = false;
let stats = null;
/** Unit names by code, to show beside the codes. */
const unitNames = new Map();

export function start(ctx) {
  context = ctx;
  if (started) return;
  started = true;
  // The figures count days in Vietnam time (+07:00), whatever the PC's clock zone.
  const today = new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 10);
  byId('s-from').value = `${today.slice(0, 4)}-01-01`;
  byId('s-to').value = today;
  byId('stats-form').addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  byId('stats-csv').addEventListener('click', csv);
  onLanguageChange(render);
  api.json('/v1/units').then((units) => {
    for (const unit of units) unitNames.set(unit.code, unit.name);
    render();
  }, context.report);
  load();
}

function parameters(format) {
  return api.query({
    from: byId('s-from').value,
    to: byId('s-to').value,
    group: byId('s-group').value,
    format,
  });
}

async function load() {
  try {
    stats = await api.json(`/v1/stats${parameters()}`);
    render();
  } catch (error) {
    context.report(error);
  }
}

async function csv() {
  try {
    saveBlob(await api.blob(`/v1/stats${parameters('csv')}`), `sohoa-stats-${byId('s-from').value}-${byId('s-to').value}.csv`);
  } catch (error) {
    context.report(error);
  }
}

function keyLabel(key) {
  if (key === 'total') return t('total');
  if (['province', 'district', 'commune'].includes(key)) return t(`level.${key}`);
  return key || '–';
}

function render() {
  if (!stats) return;
  byId('stats-caption').textContent = t('dashboard.caption', { from: formatDay(stats.from), to: formatDay(stats.to) });
  const table = byId('stats-table');
  fill(table.tHead, el('tr', {}, el('th', { scope: 'col' }, t('col.key')), COLUMNS.map((c) => el('th', { scope: 'col' }, t(`col.${c}`)))));
  fill(
    table.tBodies[0],
    stats.rows.map((row) => el(
      'tr',
      { class: row.key === 'total' ? 'total' : undefined, dataset: { key: row.key } },
      el('th', { scope: 'row' }, keyLabel(row.key), unitNames.has(row.key) ? el('span', { class: 'unit-name' }, unitNames.get(row.key)) : null),
      COLUMNS.map((c) => el('td', { class: 'number' }, formatNumber(row[c]))),
    )),
  );
  renderChart();
}

/** A grouped bar chart, one group per unit or level (the total row left out), drawn as inline SVG. */
function renderChart() {
  const rows = stats.rows.filter((row) => row.key !== 'total');
  const box = byId('chart');
  if (rows.length === 0) {
    fill(box, el('p', { class: 'hint' }, t('dashboard.empty')));
    return;
  }
  const max = Math.max(1, ...rows.flatMap((row) => SERIES.map((s) => row[s] || 0)));
  const bar = 18;
  const gap = 28;
  const groupWidth = SERIES.length * bar + gap;
  const [left, top, bottom] = [48, 16, 56];
  const height = 150;
  const width = left + rows.length * groupWidth + 16;
  const y = (value) => top + height - (value / max) * height;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(max * f));
  const chart = svg(
    'svg',
    {
      class: 'chart',
      viewBox: `0 0 ${width} ${top + height + bottom}`,
      role: 'img',
      'aria-labelledby': 'chart-caption',
      width,
      height: top + height + bottom,
    },
    [...new Set(ticks)].map((tick) => [
      svg('line', { class: 'grid', x1: left, x2: width - 8, y1: y(tick), y2: y(tick) }),
      svg('text', { class: 'tick', x: left - 6, y: y(tick) + 4, 'text-anchor': 'end' }, formatNumber(tick)),
    ]),
    rows.map((row, i) => {
      const x0 = left + gap / 2 + i * groupWidth;
      return svg(
        'g',
        { class: 'group' },
        SERIES.map((series, j) => {
          const value = row[series] || 0;
          return svg(
            'rect',
            { class: `bar ${series}`, x: x0 + j * bar, y: y(value), width: bar - 2, height: top + height - y(value) },
            svg('title', {}, `${keyLabel(row.key)}: ${t(`col.${series}`)} ${formatNumber(value)}`),
          );
        }),
        svg('text', { class: 'label', x: x0 + (SERIES.length * bar) / 2, y: top + height + 18, 'text-anchor': 'middle' }, keyLabel(row.key)),
      );
    }),
  );
  const legend = el(
    'ul',
    { class: 'legend' },
    SERIES.map((series) => el('li', {}, el('span', { class: `swatch ${series}`, 'aria-hidden': 'true' }), t(`col.${series}`))),
  );
  fill(box, chart, legend);
}
