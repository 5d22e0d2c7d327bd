// The page's shared kit: its state, the DOM builders, the API client and the small widgets every
// panel uses. Server data only ever reaches the page through textContent and attributes (never
// innerHTML), and the CSP allows no inline code or style attributes.

export const state = {
  token: null, meta: null, tenants: [], tenantId: null, tab: 'overview',
  catalog: null, // the selected tenant's {stages, custom_fields, owners}
  onSignedOut: () => {},
};
export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// ---- DOM builders ------------------------------------------------------------------------
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) if (kid != null && kid !== '') el.append(kid);
  return el;
}
const SVG_NS = 'http://www.w3.org/2000/svg';
// An SVG element; attributes only (the CSP refuses style attributes, classes carry the look).
export function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null) continue;
    if (k === 'text') el.textContent = v;
    else el.setAttribute(k, String(v));
  }
  for (const kid of kids.flat()) if (kid != null) el.append(kid);
  return el;
}
export const dash = () => h('span', { class: 'muted', text: '—' });
export const text = (v) => (v == null || v === '' ? dash() : String(v));
export function time(iso) {
  if (!iso) return dash();
  const d = new Date(iso);
  const local = isNaN(d) ? iso : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
  return h('time', { datetime: iso, title: iso, text: local });
}
export function swatch(color) {
  const el = h('span', { class: 'swatch', 'aria-hidden': 'true' });
  if (/^#[0-9a-f]{6}$/i.test(color || '')) el.style.backgroundColor = color; // CSSOM, CSP-safe
  else el.classList.add('none');
  return el;
}
export const badge = (label, kind) => h('span', { class: 'badge ' + (kind || label), text: label });
export const plainList = (items) => h('ul', { class: 'plain' }, items.map((i) => h('li', { text: i })));
export const plural = (n, one, many = one + 's') => `${n.toLocaleString('en')} ${n === 1 ? one : many}`;
export function statusCode(code) {
  if (code == null) return dash();
  return badge(String(code), code >= 200 && code < 300 ? 'ok' : 'bad');
}
export function options(values, selected, blank) {
  const opts = values.map((v) => (Array.isArray(v) ? v : [v, v]));
  return (blank == null ? [] : [h('option', { value: '', text: blank })])
    .concat(opts.map(([value, label]) => h('option', { value, text: label, selected: value === selected })));
}

// A table that turns into labelled cards on narrow screens (td[data-label]).
export function table(cols, rows, rowFn, empty) {
  if (!rows.length) return h('p', { class: 'muted empty', text: empty });
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', {}, rows.map((r) => {
      const tr = h('tr', {});
      rowFn(r, tr).forEach((cell, i) => tr.append(h('td', { 'data-label': cols[i] || null }, cell)));
      return tr;
    }))));
}
export const loading = (el) => el.replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));

// ---- API ---------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, type, message) { super(message); this.status = status; this.type = type; }
}
async function send(method, path, body, headers) {
  const opts = { method, headers: { Authorization: 'Bearer ' + state.token, ...headers }, cache: 'no-store' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try { res = await fetch(path, opts); } catch (_) {
    throw new ApiError(0, 'network_error', 'Cannot reach the server.');
  }
  if (res.ok) return res;
  let data = null;
  try { data = await res.json(); } catch (_) { /* not JSON */ }
  if (res.status === 401) {
    state.onSignedOut('invalid admin token');
    throw new ApiError(401, 'authentication_error', 'invalid admin token');
  }
  const e = (data && data.error) || {};
  throw new ApiError(res.status, e.type, e.message || `HTTP ${res.status} ${res.statusText}`);
}
export async function api(method, path, body, headers) {
  const res = await send(method, path, body, headers);
  try { return await res.json(); } catch (_) { return null; }
}
// A file from the API, saved through a Blob URL: the token never appears in a URL.
export async function download(path, fallbackName) {
  const res = await send('GET', path);
  const disposition = res.headers.get('Content-Disposition') || '';
  const name = (/filename="?([^";]+)"?/.exec(disposition) || [])[1] || fallbackName;
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return name;
}
export const tpath = (suffix, tid = state.tenantId) => `/admin/api/tenants/${encodeURIComponent(tid)}${suffix}`;
export const enc = encodeURIComponent;
const notAvailable = (e) => e.status === 404 && /^no route for /.test(e.message);
export function showErr(el, e) {
  if (e.status === 401) return; // already back on the sign-in screen
  el.textContent = e.message || String(e);
}
export function listError(list, e) {
  if (e.status === 401) return;
  list.replaceChildren(notAvailable(e)
    ? h('p', { class: 'muted empty', text: 'Not available on this server.' })
    : h('p', { class: 'error', role: 'alert', text: e.message }));
}
// Submit handler: no native submission (form-action 'none'); errors shown in the form.
export function onSubmit(form, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('.error', form), btn = ev.submitter || $('button[type=submit]', form);
    if (err) err.textContent = '';
    if (btn) btn.disabled = true;
    try { await fn(form, ev.submitter); } catch (e) { if (err) showErr(err, e); } finally { if (btn) btn.disabled = false; }
  });
}
// A button whose failure is shown right next to it.
export function action(label, fn, cls, aria) {
  const err = h('span', { class: 'error', role: 'alert' });
  const btn = h('button', { type: 'button', class: cls || 'secondary', text: label, 'aria-label': aria });
  btn.addEventListener('click', async () => {
    err.textContent = '';
    btn.disabled = true;
    try { await fn(btn); } catch (e) { showErr(err, e); } finally { btn.disabled = false; }
  });
  return h('span', { class: 'action' }, btn, err);
}
export const stale = (tid) => tid !== state.tenantId;
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}
// Random hex for Idempotency-Key (crypto.randomUUID needs a secure context; this does not).
export function randomId() {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// Cursor paging: page = {cursor, next, back}; `reload` fetches page.cursor.
export function pager(page, reload) {
  const nav = h('div', { class: 'row pager' });
  const go = (fn) => () => { fn(); reload(); };
  if (page.cursor) {
    nav.append(h('button', { type: 'button', class: 'secondary', text: 'First page',
      onclick: go(() => { page.cursor = null; page.back = []; }) }));
    nav.append(h('button', { type: 'button', class: 'secondary', text: 'Previous page',
      onclick: go(() => { page.cursor = page.back.pop() || null; }) }));
  }
  if (page.next) {
    nav.append(h('button', { type: 'button', class: 'secondary', text: 'Next page',
      onclick: go(() => { page.back.push(page.cursor); page.cursor = page.next; }) }));
  }
  return nav;
}

// A value shown once (a key's token, a webhook's secret), with a copy button.
export function secretBox(title, value, onDone) {
  const input = h('input', { readonly: true, spellcheck: 'false', value, 'aria-label': title, class: 'secret-value' });
  const copy = h('button', { type: 'button', text: 'Copy' });
  copy.addEventListener('click', async () => {
    input.focus();
    input.select();
    let ok = false;
    try { await navigator.clipboard.writeText(input.value); ok = true; } catch (_) {
      try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    }
    copy.textContent = ok ? 'Copied' : 'Press Ctrl+C';
  });
  const box = h('div', { class: 'token-box', role: 'status' },
    h('p', {}, h('strong', { text: `${title}: copy it now, it will not be shown again.` })),
    h('div', { class: 'row' }, input, copy,
      h('button', { type: 'button', class: 'secondary', text: 'Done', onclick: () => { box.remove(); if (onDone) onDone(); } })));
  return box;
}

// The tenant's stages, custom fields and owners, for the lead forms and filters.
export async function loadTenantCatalog(force) {
  const tid = state.tenantId;
  if (!force && state.catalog && state.catalog.tid === tid) return state.catalog;
  const [st, cf, ow] = await Promise.all(['/stages', '/custom-fields', '/owners'].map((p) => api('GET', tpath(p, tid))));
  const catalog = { tid, stages: st.stages.sort((a, b) => a.position - b.position), custom_fields: cf.custom_fields, owners: ow.owners };
  if (!stale(tid)) state.catalog = catalog;
  return catalog;
}

// Values the API accepts that /admin/api/meta does not list (spec §4, §5, §11.3, §12.2); a test
// in src/http/page.rs holds each list to the API's own.
export const ENUMS = {
  source_platform: ['google_ads', 'meta_ads', 'google_organic', 'direct', 'referral', 'hubspot', 'zoho', 'ghl',
    'shopify', 'zenmaid', 'lead_docket', 'salesforce'],
  source_type: ['form', 'phone_call', 'email', 'chat', 'sms', 'manual', 'import'],
  lead_line: ['buyer', 'seller'],
  event_types: ['lead.created', 'lead.updated', 'lead.deleted', 'interaction.created', 'webhook.disabled', 'delivery.exhausted'],
  interaction_types: ['note', 'call', 'email', 'sms', 'meeting', 'chat'],
  directions: ['inbound', 'outbound'],
};
// A date input's value as the start of that day, local time, in ISO form.
export const dayStart = (value) => (value ? new Date(value + 'T00:00:00').toISOString() : '');
