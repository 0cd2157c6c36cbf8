// The scanning desk: pick or create a dossier, upload files or scan, arrange the waiting pages, submit,
// and follow the packaging live until the pages come back with their OCR confidence and flags.

import * as api from './api.js';
import { byId, el, fill, saveBlob } from './dom.js';
import { t, onLanguageChange, formatDay } from './i18n.js';

const DOSSIER_CODE = /^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}-\d{6}-\d{1,6}$/;
const PROCEDURE_CODE = /^\d{1,2}\.\d{6}(\.\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})?$/;
/** Flags that ask the clerk to look again; the others say what was done to the page. */
const WARNING_FLAGS = new Set(['blank', 'low-confidence', 'low-resolution', 'orientation-uncertain', 'failed']);
/** Media types a browser shows as an image. */
const SHOWN_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

let context;
let started = false;
const state = {
  dossier: null, // the dossier view: record, documents, pending
  procedures: [],
  thumbnails: new Map(), // blake3 -> Promise<{url, type}>
  scanners: [],
  busy: false,
};

export function start(ctx) {
  context = ctx;
  if (started) return;
  started = true;
  byId('dossier-form').addEventListener('submit', (event) => {
    event.preventDefault();
    createDossier();
  });
  byId('dossier-open').addEventListener('click', () => openDossier());
  byId('dossier-code').addEventListener('blur', () => checkCode(false));
  let lookup;
  byId('procedure').addEventListener('input', () => {
    clearTimeout(lookup);
    lookup = setTimeout(findProcedures, 200);
  });
  byId('files').addEventListener('change', (event) => {
    const files = [...event.target.files];
    event.target.value = '';
    upload(files);
  });
  byId('rescan-file').addEventListener('change', (event) => {
    const [file] = event.target.files;
    const replace = rescan;
    rescan = null;
    event.target.value = '';
    if (file && replace) replace(file);
  });
  byId('submit').addEventListener('click', submit);
  byId('scanner-box').addEventListener('toggle', (event) => {
    if (event.target.open && state.scanners.length === 0) loadScanners();
  });
  byId('scanner').addEventListener('change', showSources);
  byId('scan-start').addEventListener('click', scan);
  onLanguageChange(render);
  findProcedures();
  loadRecent();
}

/** The newest dossiers of the clerk's units, to pick one with a click. */
async function loadRecent() {
  let list;
  try {
    list = await api.json('/v1/dossiers?limit=8');
  } catch (error) {
    context.report(error);
    return;
  }
  fill(
    byId('recent'),
    list.dossiers.length === 0
      ? el('li', { class: 'hint' }, t('desk.noRecent'))
      : list.dossiers.map((d) => el('li', {},
        el('button', {
          type: 'button',
          class: 'link',
          onclick: () => {
            byId('dossier-code').value = d.code;
            openDossier();
          },
        }, d.code), d.applicant ? ` · ${d.applicant}` : '')),
  );
}

function checkCode(required) {
  const input = byId('dossier-code');
  const code = input.value.trim();
  const ok = DOSSIER_CODE.test(code);
  const message = ok || (!code && !required) ? '' : t('desk.codeInvalid');
  byId('dossier-code-error').textContent = message;
  input.setAttribute('aria-invalid', message ? 'true' : 'false');
  if (message && required) input.focus();
  return ok ? code : null;
}

async function findProcedures() {
  const text = byId('procedure').value.trim();
  try {
    state.procedures = await api.json(`/v1/procedures${api.query({ q: text, limit: 30 })}`);
  } catch (error) {
    context.report(error);
    return;
  }
  fill(
    byId('procedure-list'),
    state.procedures.map((p) => el('option', { value: p.code, label: `${p.code} — ${p.name}` })),
  );
}

/** The procedure code the clerk picked: a code typed or chosen, or a name from the list. */
function pickedProcedure() {
  const input = byId('procedure');
  const text = input.value.trim();
  const byName = state.procedures.find((p) => p.name.toLowerCase() === text.toLowerCase());
  const code = PROCEDURE_CODE.test(text) ? text : byName?.code;
  byId('procedure-error').textContent = code ? '' : t('desk.procedureInvalid');
  input.setAttribute('aria-invalid', code ? 'false' : 'true');
  if (!code) input.focus();
  return code;
}

async function createDossier() {
  const code = checkCode(true);
  if (!code) return;
  const procedure = pickedProcedure();
  if (!procedure) return;
  try {
    await api.json('/v1/dossiers', 'POST', {
      code,
      procedure,
      applicant: byId('applicant').value.trim(),
      channel: Number(byId('channel').value),
    });
    await load(code);
    context.notify(t('desk.created', { code }));
    loadRecent();
  } catch (error) {
    context.report(error);
  }
}

async function openDossier() {
  const code = checkCode(true);
  if (!code) return;
  try {
    await load(code);
    context.notify(t('desk.opened', { code }));
  } catch (error) {
    context.report(error);
  }
}

async function load(code) {
  if (state.dossier?.code !== code) {
    for (const pending of state.thumbnails.values()) pending.then((thumb) => thumb.url && URL.revokeObjectURL(thumb.url));
    state.thumbnails.clear();
    byId('job-status').textContent = '';
    byId('job-progress').hidden = true;
  }
  state.dossier = await api.json(`/v1/dossiers/${encodeURIComponent(code)}`);
  byId('dossier-work').hidden = false;
  render();
}

/** Reloads only the waiting pages (after an upload, a move, a removal). */
async function reloadPending() {
  const { pages } = await api.json(`/v1/dossiers/${encodeURIComponent(state.dossier.code)}/pages`);
  state.dossier.pending = pages;
  renderPending();
}

function render() {
  const dossier = state.dossier;
  if (!dossier) return;
  fill(byId('current-dossier'), `${t('desk.dossier')} `, el('span', { class: 'code' }, dossier.code));
  byId('current-details').textContent = t('desk.details', {
    procedure: dossier.procedure,
    unit: dossier.unit,
    applicant: dossier.applicant || '–',
    received: formatDay(dossier.received_at),
    status: t(`status.${dossier.status}`),
  });
  renderPending();
  renderDocuments();
}

/** The page image as an object URL, fetched once with the token. */
function thumbnail(hash) {
  if (!state.thumbnails.has(hash)) {
    const loaded = api.blob(`/v1/objects/${hash}`).then(
      (blob) => (SHOWN_TYPES.has(blob.type) ? { url: URL.createObjectURL(blob), type: blob.type } : { url: null, type: blob.type }),
      () => ({ url: null, type: '?' }),
    );
    state.thumbnails.set(hash, loaded);
  }
  return state.thumbnails.get(hash);
}

function preview(hash, label) {
  const box = el('div', { class: 'thumb-image' });
  thumbnail(hash).then(({ url, type }) => {
    if (url) fill(box, el('img', { src: url, alt: label }));
    else fill(box, el('span', { class: 'no-preview' }, t('desk.noPreview', { type: type.replace(/^.*\//, '').toUpperCase() })));
  });
  return box;
}

function renderPending() {
  const pending = state.dossier.pending.filter((p) => p.kind === 'submitted');
  const list = byId('pending');
  fill(
    list,
    pending.map((page, index) => {
      const n = index + 1;
      const label = t('desk.page', { n });
      return el(
        'li',
        { class: 'thumb pending-page', dataset: { id: page.id } },
        el('figure', { class: `turn-${page.turn || 0}` }, preview(page.blake3, `${label}: ${page.origin}`),
          el('figcaption', {}, el('strong', {}, label), ' ', el('span', { class: 'origin' }, page.origin))),
        el('p', { class: 'badges' }, el('span', { class: 'badge waiting' }, t('desk.waitingOcr')),
          page.turn ? el('span', { class: 'badge turned' }, t('desk.turned', { degrees: page.turn * 90 })) : null),
        el('div', { class: 'actions', role: 'group', 'aria-label': label },
          el('button', { type: 'button', 'aria-label': t('desk.moveEarlier', { n }), title: t('desk.earlier'), disabled: n === 1, onclick: () => move(page, n - 1) }, '←'),
          el('button', { type: 'button', 'aria-label': t('desk.moveLater', { n }), title: t('desk.later'), disabled: n === pending.length, onclick: () => move(page, n + 1) }, '→'),
          el('button', { type: 'button', 'aria-label': t('desk.replacePage', { n }), onclick: () => pickRescan((file) => replaceWaiting(page, n, file)) }, t('desk.replace')),
          el('button', { type: 'button', class: 'rotate', 'aria-label': t('desk.rotatePage', { n }), title: t('desk.rotate'), onclick: () => rotate(page, n) }, '↻'),
          el('button', { type: 'button', class: 'danger', 'aria-label': t('desk.removePage', { n }), onclick: () => remove(page, n) }, t('desk.remove'))),
      );
    }),
  );
  byId('pending-empty').hidden = pending.length > 0;
  byId('submit').disabled = pending.length === 0 || state.busy;
}

function renderDocuments() {
  const documents = state.dossier.documents.filter((d) => !d.superseded_by);
  if (documents.length === 0) {
    fill(byId('documents'), el('p', { class: 'hint' }, t('desk.noDocuments')));
    return;
  }
  fill(
    byId('documents'),
    documents.map((doc) => {
      const notes = [doc.incomplete && t('desk.incomplete', { reason: doc.incomplete })].filter(Boolean);
      return el(
        'article',
        { class: 'document', dataset: { document: doc.document } },
        el('div', { class: 'document-head' },
          el('h4', {}, t('desk.document', { kind: t(`kind.${doc.kind}`), pages: doc.page_count, created: formatDay(doc.created_at) })),
          notes.length ? el('p', { class: 'hint' }, notes.join(' · ')) : null,
          el('button', { type: 'button', onclick: () => downloadPdf(doc.document) }, t('viewer.pdf'))),
        el('ol', { class: 'thumbs' },
          doc.pages.map((page) => {
            const label = t('desk.page', { n: page.n });
            return el(
              'li',
              { class: 'thumb page-card', dataset: { n: page.n } },
              el('figure', {}, preview(page.blake3, `${label}: ${page.origin}`),
                el('figcaption', {}, el('strong', {}, label), ' ', el('span', { class: 'origin' }, page.origin))),
              el('p', { class: 'badges' },
                el('span', { class: `badge confidence ${page.flags.some((f) => WARNING_FLAGS.has(f)) ? 'warn' : ''}` }, t('desk.confidence', { value: Math.round(page.confidence) })),
                el('span', { class: 'badge' }, t('desk.dpiValue', { value: Math.round(page.dpi) })),
                page.flags.map((flag) => el('span', { class: `badge flag ${WARNING_FLAGS.has(flag) ? 'warn' : 'info'}`, dataset: { flag } }, t(`flag.${flag}`)))),
              el('div', { class: 'actions' },
                el('button', { type: 'button', 'aria-label': t('desk.replacePage', { n: page.n }), onclick: () => pickRescan((file) => replacePackaged(doc.document, page.n, file)) }, t('desk.replace'))),
            );
          })),
      );
    }),
  );
}

/** What to do with the next rescanned file chosen (the page it replaces). */
let rescan = null;

/** Asks for one file, the rescan of a page, and hands it to `replace`. */
function pickRescan(replace) {
  rescan = replace;
  const input = byId('rescan-file');
  input.value = '';
  input.click();
}

async function sendFile(file) {
  const path = `/v1/dossiers/${encodeURIComponent(state.dossier.code)}/pages${api.query({ name: file.name })}`;
  const response = await api.request(path, {
    method: 'POST',
    headers: { 'Content-Type': file.type || 'application/octet-stream', 'Idempotency-Key': crypto.randomUUID() },
    body: file,
  });
  return (await response.json()).pages;
}

async function upload(files) {
  if (!state.dossier || files.length === 0) return;
  const status = byId('job-status');
  try {
    for (const file of files) {
      status.textContent = t('desk.uploading', { name: file.name });
      await sendFile(file);
      // Each page shows as soon as it is stored.
      await reloadPending();
    }
    status.textContent = t('desk.uploaded', { count: files.length });
  } catch (error) {
    status.textContent = '';
    context.report(error);
  }
}

async function move(page, position) {
  try {
    const { pages } = await api.json(`/v1/dossiers/${encodeURIComponent(state.dossier.code)}/pages/${page.id}`, 'PATCH', { position });
    state.dossier.pending = pages;
    renderPending();
    context.notify(t('desk.moved', { n: position }));
    // Keyboard users keep their place: focus follows the page.
    const card = byId('pending').querySelector(`[data-id="${page.id}"] button:not([disabled])`);
    card?.focus();
  } catch (error) {
    context.report(error);
  }
}

/** Turns a waiting page a quarter clockwise: it is read, and shown in the PDF, turned so. */
async function rotate(page, n) {
  try {
    const { pages } = await api.json(`/v1/dossiers/${encodeURIComponent(state.dossier.code)}/pages/${page.id}`, 'PATCH', { rotate: 90 });
    state.dossier.pending = pages;
    renderPending();
    const turned = pages.find((p) => p.id === page.id);
    context.notify(t('desk.rotated', { n, degrees: ((turned && turned.turn) || 0) * 90 }));
    byId('pending').querySelector(`[data-id="${page.id}"] button.rotate`)?.focus();
  } catch (error) {
    context.report(error);
  }
}

/** Sheets' small images by `scan/n`, fetched once each; one not stored yet is asked for again later. */
const scannedImages = new Map();

/** Lets go of the last scan's images (a desk stays open all day). */
function forgetScannedImages() {
  for (const loaded of scannedImages.values()) {
    loaded.then((url) => url && URL.revokeObjectURL(url));
  }
  scannedImages.clear();
}

function scannedImage(scan, n, label) {
  const key = `${scan}/${n}`;
  if (!scannedImages.has(key)) {
    const loaded = api.blob(`/v1/scans/${scan}/pages/${n}/thumbnail`).then(
      (blob) => URL.createObjectURL(blob),
      () => {
        scannedImages.delete(key);
        return null;
      },
    );
    scannedImages.set(key, loaded);
  }
  const box = el('div', { class: 'thumb-image' });
  scannedImages.get(key).then((url) => {
    if (url) fill(box, el('img', { src: url, alt: label }));
  });
  return box;
}

/** The sheets of a scan in progress, each as soon as it is read: its image, OCR confidence and flags. */
function renderScanned(scan, pages) {
  fill(
    byId('scanned'),
    pages.map((page) => el(
      'li',
      { class: 'thumb scanned-page', dataset: { n: page.n } },
      scannedImage(scan, page.n, t('desk.page', { n: page.n })),
      el('p', {}, el('strong', {}, t('desk.page', { n: page.n })), ' ', el('span', { class: 'origin' }, page.origin)),
      el('p', { class: 'badges' },
        el('span', { class: `badge confidence ${page.flags.some((f) => WARNING_FLAGS.has(f)) ? 'warn' : ''}` }, t('desk.confidence', { value: Math.round(page.confidence) })),
        page.flags.map((flag) => el('span', { class: `badge flag ${WARNING_FLAGS.has(flag) ? 'warn' : 'info'}`, dataset: { flag } }, t(`flag.${flag}`)))),
    )),
  );
}

async function remove(page, n) {
  try {
    await api.request(`/v1/dossiers/${encodeURIComponent(state.dossier.code)}/pages/${page.id}`, { method: 'DELETE' });
    await reloadPending();
    context.notify(t('desk.removed', { n }));
  } catch (error) {
    context.report(error);
  }
}

/** Replaces a waiting page in place: the rescan is uploaded, put in its place, and the old page removed. */
async function replaceWaiting(page, n, file) {
  const base = `/v1/dossiers/${encodeURIComponent(state.dossier.code)}/pages`;
  try {
    const [added] = await sendFile(file);
    await api.json(`${base}/${added.id}`, 'PATCH', { position: n });
    await api.request(`${base}/${page.id}`, { method: 'DELETE' });
    await reloadPending();
    context.notify(t('desk.replaced', { n }));
  } catch (error) {
    context.report(error);
  }
}

/** Replaces a packaged page with its rescan: the document is packaged again and replaces the old one. */
async function replacePackaged(document, n, file) {
  const form = new FormData();
  form.append('file', file, file.name);
  byId('job-status').textContent = t('desk.uploading', { name: file.name });
  try {
    await api.request(`/v1/documents/${document}/pages/${n}`, { method: 'PUT', body: form });
    await load(state.dossier.code);
    byId('job-status').textContent = t('desk.replaced', { n });
  } catch (error) {
    byId('job-status').textContent = '';
    context.report(error);
  }
}

async function submit() {
  if (!state.dossier || state.busy) return;
  const code = state.dossier.code;
  const status = byId('job-status');
  const bar = byId('job-progress');
  state.busy = true;
  byId('submit').disabled = true;
  try {
    const job = await api.json(`/v1/dossiers/${encodeURIComponent(code)}/finalize`, 'POST', { kind: 'submitted' });
    status.textContent = t('desk.queued');
    bar.hidden = false;
    bar.removeAttribute('value');
    const last = await api.followJob(job.id, (name, update) => {
      if (name !== 'progress' || !update.total) return;
      bar.max = update.total;
      bar.value = update.done;
      status.textContent = t('desk.progress', { done: update.done, total: update.total });
    });
    if (last.state === 'done') {
      bar.max = 1;
      bar.value = 1;
      const pages = last.result?.pages?.length ?? last.total ?? 0;
      await load(code);
      status.textContent = t('desk.done', { pages });
      status.dataset.state = 'done';
    } else {
      status.textContent = t('desk.failed', { error: last.error || '' });
      status.dataset.state = 'failed';
      await load(code);
    }
  } catch (error) {
    context.report(error);
  } finally {
    state.busy = false;
    renderPending();
  }
}

async function downloadPdf(document) {
  try {
    saveBlob(await api.blob(`/v1/objects/${document}`), `${state.dossier.code}-${document.slice(0, 8)}.pdf`);
  } catch (error) {
    context.report(error);
  }
}

async function loadScanners() {
  const select = byId('scanner');
  try {
    const { scanners } = await api.json('/v1/scanners');
    state.scanners = scanners.filter((s) => s.name && !s.error);
  } catch (error) {
    context.report(error);
    return;
  }
  if (state.scanners.length === 0) {
    fill(select, el('option', { value: '' }, t('desk.noScanner')));
    byId('scan-start').disabled = true;
  } else {
    fill(select, state.scanners.map((s) => {
      const model = [s.vendor, s.model].filter(Boolean).join(' ');
      return el('option', { value: s.name }, model ? `${model} (${s.name})` : s.name);
    }));
    byId('scan-start').disabled = false;
  }
  showSources();
}

function showSources() {
  const scanner = state.scanners.find((s) => s.name === byId('scanner').value);
  const sources = scanner?.capabilities?.sources || [];
  fill(
    byId('scan-source'),
    el('option', { value: '' }, t('desk.defaultSource')),
    sources.map((source) => el('option', { value: typeof source === 'string' ? source : source.name }, typeof source === 'string' ? source : source.name)),
  );
}

async function scan() {
  const dossier = state.dossier;
  const device = byId('scanner').value;
  if (!dossier || !device) return;
  const status = byId('scan-status');
  forgetScannedImages();
  try {
    let job = await api.json('/v1/scans', 'POST', {
      device,
      dossier: dossier.code,
      procedure: dossier.procedure,
      unit: dossier.unit,
      source: byId('scan-source').value || undefined,
      dpi: Number(byId('scan-dpi').value),
      mode: byId('scan-mode').value,
      duplex: byId('scan-duplex').checked,
    });
    while (job.state === 'scanning') {
      status.textContent = t('desk.scanning', { done: job.pages_done, failed: job.pages_failed });
      renderScanned(job.id, job.pages || []);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      job = await api.json(`/v1/scans/${job.id}`);
    }
    status.textContent = job.state === 'done' ? t('desk.scanDone', { done: job.pages_done }) : t('desk.scanFailed', { error: job.error || job.incomplete || '' });
    renderScanned(job.id, job.pages || []);
    await load(dossier.code);
  } catch (error) {
    status.textContent = '';
    context.report(error);
  }
}
