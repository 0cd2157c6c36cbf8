// The archive: one search box with filters, hits with highlighted snippets; an opened hit shows the page
// image with the matched words outlined on it (from the OCR word boxes), the dossier's details, and the
// PDF and certified copy to download.

import * as api from './api.js';
import { byId, el, fill, svg, saveBlob } from './dom.js';
import { t, onLanguageChange, formatDay } from './i18n.js';

const PAGE_SIZE = 20;
const SHOWN_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

let context;
let started = false;
const state = {
  parameters: null, // the last search
  results: null,
  hit: null, // the hit opened
  page: null, // its page text and boxes
  dossier: null,
  pageCount: 1,
  imageUrl: null,
  terms: [],
};

export function start(ctx) {
  context = ctx;
  if (started) return;
  started = true;
  const statuses = byId('f-status');
  for (let code = 1; code <= 10; code += 1) {
    statuses.append(el('option', { value: code, dataset: { i18n: `status.${code}` } }, t(`status.${code}`)));
  }
  loadUnits();
  byId('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    search(0);
  });
  byId('prev-results').addEventListener('click', () => search(Math.max(0, state.parameters.offset - PAGE_SIZE)));
  byId('next-results').addEventListener('click', () => search(state.parameters.offset + PAGE_SIZE));
  byId('viewer-back').addEventListener('click', () => {
    context.show('archive');
    byId('results').querySelector('button')?.focus();
  });
  byId('page-prev').addEventListener('click', () => turn(-1));
  byId('page-next').addEventListener('click', () => turn(1));
  byId('download-pdf').addEventListener('click', downloadPdf);
  byId('download-copy').addEventListener('click', downloadCopy);
  byId('page-image').addEventListener('load', drawHighlights);
  onLanguageChange(() => {
    if (state.results) renderResults();
    if (state.page) {
      renderMetadata();
      drawHighlights();
    }
  });
}

async function loadUnits() {
  try {
    const units = await api.json('/v1/units');
    const scope = context.me().units;
    const visible = scope.includes('*') ? units : units.filter((u) => scope.includes(u.code));
    byId('f-unit').append(...visible.map((u) => el('option', { value: u.code }, `${u.code} — ${u.name}`)));
    // Units in the account's scope that are not registered yet are still searchable.
    for (const code of scope.filter((c) => c !== '*' && !units.some((u) => u.code === c))) {
      byId('f-unit').append(el('option', { value: code }, code));
    }
  } catch (error) {
    context.report(error);
  }
}

async function search(offset) {
  const parameters = {
    q: byId('q').value.trim(),
    unit: byId('f-unit').value,
    procedure: byId('f-procedure').value.trim(),
    status: byId('f-status').value,
    from: byId('f-from').value,
    until: byId('f-until').value,
    offset,
    limit: PAGE_SIZE,
  };
  try {
    state.results = await api.json(`/v1/search${api.query(parameters)}`);
    state.parameters = parameters;
    context.notify('');
    renderResults();
  } catch (error) {
    context.report(error);
  }
}

/** `snippet` with its highlighted byte ranges in <mark>; returns the nodes and the marked words. */
function highlighted(snippet, ranges) {
  const bytes = new TextEncoder().encode(snippet);
  const decoder = new TextDecoder();
  const nodes = [];
  const marked = [];
  let at = 0;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (start < at || end > bytes.length) continue;
    nodes.push(decoder.decode(bytes.slice(at, start)));
    const word = decoder.decode(bytes.slice(start, end));
    nodes.push(el('mark', {}, word));
    marked.push(word);
    at = end;
  }
  nodes.push(decoder.decode(bytes.slice(at)));
  return { nodes, marked };
}

function renderResults() {
  const { total, offset, hits } = state.results;
  byId('results-summary').textContent = total === 0
    ? t('archive.none')
    : t('archive.summary', { total, first: offset + 1, last: offset + hits.length });
  fill(
    byId('results'),
    hits.map((hit) => {
      const { nodes } = highlighted(hit.snippet, hit.highlights);
      return el(
        'li',
        { class: 'hit' },
        el('h3', {},
          el('button', { type: 'button', class: 'link', onclick: () => open(hit) },
            t('archive.hit', { dossier: hit.dossier, page: hit.page }))),
        el('p', { class: 'hint' }, t('archive.hitMeta', {
          applicant: hit.applicant || '–',
          unit: hit.unit,
          received: formatDay(hit.received_at),
          status: t(`status.${hit.status}`),
        })),
        el('p', { class: 'snippet' }, nodes),
      );
    }),
  );
  byId('prev-results').hidden = offset === 0;
  byId('next-results').hidden = offset + hits.length >= total;
}

/** The folded words to outline on the page: those the index marked in the snippet, and the query's. */
function termsOf(hit, query) {
  const terms = new Set();
  const add = (text) => {
    for (const word of text.split(/[^\p{L}\p{N}]+/u)) if (word) terms.add(api.fold(word));
  };
  highlighted(hit.snippet, hit.highlights).marked.forEach(add);
  // Words left out with -word are not looked for.
  add(query.split(/\s+/).filter((w) => !w.startsWith('-')).join(' '));
  return terms;
}

async function open(hit) {
  state.hit = hit;
  state.terms = termsOf(hit, state.parameters?.q || '');
  try {
    const dossier = await api.json(`/v1/dossiers/${encodeURIComponent(hit.dossier)}`);
    state.dossier = dossier;
    const document = dossier.documents.find((d) => d.document === hit.document);
    state.pageCount = document?.page_count || hit.page;
    await showPage(hit.page);
    context.show('viewer');
  } catch (error) {
    context.report(error);
  }
}

async function showPage(n) {
  const page = await api.json(`/v1/documents/${state.hit.document}/pages/${n}`);
  state.page = page;
  const blob = await api.blob(`/v1/objects/${page.blake3}`);
  if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
  state.imageUrl = null;
  const image = byId('page-image');
  fill(byId('page-overlay'));
  if (SHOWN_TYPES.has(blob.type)) {
    state.imageUrl = URL.createObjectURL(blob);
    image.hidden = false;
    image.alt = t('desk.page', { n });
    image.src = state.imageUrl; // drawHighlights runs once it has loaded
  } else {
    image.hidden = true;
    image.removeAttribute('src');
    context.notify(t('viewer.noImage', { type: blob.type }), 'info');
  }
  byId('page-text').textContent = page.text;
  byId('page-prev').disabled = n <= 1;
  byId('page-next').disabled = n >= state.pageCount;
  renderMetadata();
}

function turn(step) {
  const next = state.page.n + step;
  if (next >= 1 && next <= state.pageCount) showPage(next).catch(context.report);
}

/** Maps a point of the OCR image onto the scan (the inverse of the turn, straightening and scaling). */
function toScan(geometry, x, y) {
  const scale = geometry.scale || 1;
  const turns = (geometry.quarter_turns || 0) % 4;
  const sw = geometry.scan_width * scale;
  const sh = geometry.scan_height * scale;
  const [w, h] = turns % 2 === 1 ? [sh, sw] : [sw, sh];
  const angle = (-(geometry.deskew_degrees || 0) * Math.PI) / 180;
  const [cx, cy] = [w / 2, h / 2];
  const [dx, dy] = [x - cx, y - cy];
  let px = cx + dx * Math.cos(angle) - dy * Math.sin(angle);
  let py = cy + dx * Math.sin(angle) + dy * Math.cos(angle);
  if (turns === 1) [px, py] = [py, sh - px];
  else if (turns === 2) [px, py] = [sw - px, sh - py];
  else if (turns === 3) [px, py] = [sw - py, px];
  return [px / scale, py / scale];
}

/** Outlines, on the page image, every OCR word that matches the search. */
function drawHighlights() {
  const page = state.page;
  const image = byId('page-image');
  const overlay = byId('page-overlay');
  if (!page || image.hidden || !image.naturalWidth) return;
  const geometry = page.geometry && page.geometry.scan_width
    ? page.geometry
    : { scan_width: image.naturalWidth, scan_height: image.naturalHeight, scale: 1, quarter_turns: 0, deskew_degrees: 0 };
  overlay.setAttribute('viewBox', `0 0 ${geometry.scan_width} ${geometry.scan_height}`);
  overlay.setAttribute('preserveAspectRatio', 'none');
  const words = Array.isArray(page.words) ? page.words : [];
  const matches = words.filter((word) => {
    const folded = api.fold(word.text).replace(/[^\p{L}\p{N}]+/gu, '');
    return folded && state.terms.has(folded);
  });
  fill(
    overlay,
    matches.map((word) => {
      const corners = [
        [word.x, word.y], [word.x + word.w, word.y], [word.x + word.w, word.y + word.h], [word.x, word.y + word.h],
      ].map(([x, y]) => toScan(geometry, x, y).map((v) => v.toFixed(1)).join(','));
      return svg('polygon', { class: 'hl', points: corners.join(' ') }, svg('title', {}, word.text));
    }),
  );
  overlay.setAttribute('aria-label', t('viewer.overlay', { marks: matches.length }));
  byId('page-caption').textContent = t('viewer.caption', { n: page.n, count: state.pageCount, marks: matches.length });
}

function renderMetadata() {
  const dossier = state.dossier;
  byId('viewer-title').textContent = t('viewer.title', { dossier: dossier.code });
  const rows = [
    ['meta.code', dossier.code],
    ['meta.procedure', dossier.procedure],
    ['meta.unit', dossier.unit],
    ['meta.applicant', dossier.applicant || '–'],
    ['meta.received', formatDay(dossier.received_at)],
    ['meta.due', formatDay(dossier.due_at) || '–'],
    ['meta.resolved', formatDay(dossier.resolved_at) || '–'],
    ['meta.status', t(`status.${dossier.status}`)],
    ['meta.channel', t(`channel.${dossier.channel}`)],
    ['meta.document', `${t(`kind.${state.hit.kind}`)} · ${state.hit.document.slice(0, 16)}…`],
  ];
  fill(byId('metadata'), rows.flatMap(([label, value]) => [el('dt', {}, t(label)), el('dd', {}, value)]));
}

async function downloadPdf() {
  try {
    saveBlob(await api.blob(`/v1/objects/${state.hit.document}`), `${state.hit.dossier}.pdf`);
  } catch (error) {
    context.report(error);
  }
}

async function downloadCopy() {
  try {
    saveBlob(await api.blob(`/v1/copies/${state.hit.document}`), `${state.hit.dossier}-ban-sao.pdf`);
  } catch (error) {
    context.report(error);
  }
}
