// The webhook form: create (the secret comes back once) or edit the settings, the filter, the
// custom headers and the limits (PATCH of what changed only).
import { h, api, tpath, enc, onSubmit, ENUMS } from './admin.ui.js';

const FILTER_KEYS = [
  ['source_platform', 'Source platforms'], ['source_type', 'Source types'], ['lead_line', 'Lead lines'],
  ['stage_slug', 'Stage slugs'], ['status', 'Lead statuses'], ['changed_fields', 'Changed fields (lead.updated)'],
];
const input = (label, name, value, attrs) => h('label', {}, label, h('input', { name, value: value ?? '', ...attrs }));
const list = (text) => text.split(',').map((v) => v.trim()).filter(Boolean);
const headersText = (headers) => Object.entries(headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n');

function parseHeaders(textValue) {
  const out = {};
  for (const line of textValue.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf(':');
    if (at < 1) throw new Error(`Headers: write each one as "Name: value" (got "${line}").`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}
function readFilter(e) {
  const filter = {};
  for (const [k] of FILTER_KEYS) if (list(e['filter_' + k].value).length) filter[k] = list(e['filter_' + k].value);
  return Object.keys(filter).length ? filter : null;
}
const sameFilter = (a, b) => JSON.stringify(a && Object.keys(a).length ? a : null) === JSON.stringify(b);

// onDone(responseBody) after the write; onCancel() to back out.
export function webhookForm(w, onDone, onCancel) {
  const events = new Set(w ? w.event_types : ['lead.created']);
  const filter = (w && w.filter) || {};
  const form = h('form', { class: 'card stack webhook-form' },
    h('h3', { text: w ? 'Edit webhook' : 'New webhook' }),
    input('URL (https)', 'url', w?.url, { type: 'url', required: true, maxlength: '2048', placeholder: 'https://example.com/hooks/leads' }),
    input('Description (optional)', 'description', w?.description, { maxlength: '200' }),
    h('fieldset', {}, h('legend', { text: 'Events' }),
      ENUMS.event_types.map((t) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'event', value: t, checked: events.has(t) }), ' ' + t))),
    h('div', { class: 'fields' },
      input('Timeout, seconds (1–60)', 'timeout_seconds', w?.timeout_seconds ?? 10, { type: 'number', min: '1', max: '60', required: true }),
      input('Retries (0–10)', 'retry_attempts', w?.retry_attempts ?? 5, { type: 'number', min: '0', max: '10', required: true }),
      input('Most attempts at once (1–64)', 'max_concurrency', w?.max_concurrency, { type: 'number', min: '1', max: '64', placeholder: 'server default' }),
      input('Most attempts a minute', 'rate_limit_per_minute', w?.rate_limit_per_minute, { type: 'number', min: '1', max: '600000', placeholder: 'no limit' })),
    h('details', { open: w && (Object.keys(filter).length || Object.keys(w.headers || {}).length) ? true : null },
      h('summary', { text: 'Filter and custom headers' }),
      h('p', { class: 'muted', text: 'Filter: only events whose lead matches every line you fill in are sent (comma-separated values, any of them).' }),
      h('div', { class: 'fields' }, FILTER_KEYS.map(([k, label]) => input(label, 'filter_' + k, (filter[k] || []).join(', ')))),
      h('label', {}, 'Custom headers, one "Name: value" a line (secret values show as [redacted]; leave them as they are to keep them)',
        h('textarea', { name: 'headers', rows: '3', spellcheck: 'false', value: headersText(w?.headers) }))),
    h('div', { class: 'row' }, h('button', { type: 'submit', text: w ? 'Save' : 'Create webhook' }),
      h('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: onCancel })),
    h('p', { class: 'error', role: 'alert' }));
  onSubmit(form, async (f) => {
    const body = w ? changes(f.elements, w) : creation(f.elements);
    if (w && !Object.keys(body).length) return onDone({ webhook: w });
    const r = w ? await api('PATCH', tpath('/webhooks/' + enc(w.id)), body) : await api('POST', tpath('/webhooks'), body);
    await onDone(r);
  });
  return form;
}

function common(e) {
  return {
    url: e.url.value.trim(),
    description: e.description.value.trim() || null,
    event_types: [...e.event].filter((c) => c.checked).map((c) => c.value),
    timeout_seconds: Number(e.timeout_seconds.value),
    retry_attempts: Number(e.retry_attempts.value),
    max_concurrency: e.max_concurrency.value === '' ? null : Number(e.max_concurrency.value),
    rate_limit_per_minute: e.rate_limit_per_minute.value === '' ? null : Number(e.rate_limit_per_minute.value),
  };
}
function creation(e) {
  const body = common(e);
  for (const k of ['description', 'max_concurrency', 'rate_limit_per_minute']) if (body[k] == null) delete body[k];
  const filter = readFilter(e);
  if (filter) body.filter = filter;
  const headers = parseHeaders(e.headers.value);
  if (Object.keys(headers).length) body.headers = headers;
  return body;
}
function changes(e, w) {
  const now = common(e), body = {};
  for (const [k, v] of Object.entries(now)) if (JSON.stringify(v) !== JSON.stringify(w[k] ?? null)) body[k] = v;
  // An unset max_concurrency reads as the server default: leaving the box empty changes nothing.
  if (now.max_concurrency == null) delete body.max_concurrency;
  const filter = readFilter(e);
  if (!sameFilter(w.filter, filter)) body.filter = filter;
  // Redacted values cannot be sent back as they read: headers go only when the text changed.
  if (e.headers.value.trim() !== headersText(w.headers).trim()) {
    const headers = parseHeaders(e.headers.value);
    body.headers = Object.keys(headers).length ? headers : null;
  }
  return body;
}
