// CSV import: read a file, map its columns to lead fields (matched by header name), preview the
// per-row results with dry-run bulk requests, then import through bulk, 500 rows a request.
import { h, $, api, tpath, table, badge, text, options, loadTenantCatalog, showErr, plural, randomId } from './admin.ui.js';

const CHUNK = 500; // the bulk route's most rows per request (spec §4)
const FIELDS = [
  ['contact_name', 'Name', ['name', 'contactname', 'fullname', 'contact']],
  ['contact_email', 'Email', ['email', 'emailaddress', 'contactemail', 'mail']],
  ['contact_phone', 'Phone', ['phone', 'phonenumber', 'contactphone', 'mobile', 'telephone', 'tel']],
  ['stage_slug', 'Stage (slug)', ['stage', 'stageslug', 'currentstage']],
  ['owner_id', 'Owner (id)', ['owner', 'ownerid']],
  ['lead_line', 'Lead line', ['leadline', 'line', 'cfleadline']],
  ['source_platform', 'Source platform', ['sourceplatform', 'platform']],
  ['source_type', 'Source type', ['sourcetype']],
];
const norm = (v) => v.toLowerCase().replace(/[^a-z0-9]/g, '');

// RFC 4180: quoted fields may hold commas, quotes ("") and line breaks; CRLF or LF rows. Each
// row keeps the file line it starts on (`row.line`), which the results name.
function parseCsv(src) {
  const rows = [];
  let row = [], field = '', quoted = false, line = 1, start = 1;
  const end = () => { row.push(field); row.line = start; rows.push(row); row = []; field = ''; start = line; };
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\n' || (c === '\r' && src[i + 1] !== '\n')) line++;
    if (quoted) {
      if (c === '"' && src[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') { row.push(field); field = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && src[i + 1] === '\n') { i++; line++; }
      end();
    } else field += c;
  }
  if (field !== '' || row.length) end();
  return rows.filter((r) => r.some((v) => v.trim() !== ''));
}

let job = null; // {header, rows, defs, preview}
let afterImport = () => {};

export function resetImport() {
  job = null;
  $('#lead-import').replaceChildren();
}

// onImported() runs after a real import has written rows.
export async function openImport(onImported) {
  afterImport = onImported;
  const box = $('#lead-import');
  const file = h('input', { type: 'file', accept: '.csv,text/csv', name: 'file', id: 'import-file' });
  const err = h('p', { class: 'error', role: 'alert' });
  file.addEventListener('change', async () => {
    err.textContent = '';
    try { await readFile(file.files[0]); } catch (e) { showErr(err, e); }
  });
  box.replaceChildren(h('div', { class: 'card stack' },
    h('div', { class: 'row' }, h('h3', { class: 'grow', text: 'Import leads from CSV' }),
      h('button', { type: 'button', class: 'secondary', text: 'Close', onclick: () => { resetImport(); box.hidden = true; } })),
    h('p', { class: 'muted', text: 'The first row names the columns. Nothing is written until you confirm the import after the preview.' }),
    h('label', { for: 'import-file', text: 'CSV file' }), file, err,
    h('div', { class: 'import-step' })));
  box.hidden = false;
  file.focus();
}

async function readFile(f) {
  if (!f) return;
  const rows = parseCsv((await f.text()).replace(/^\uFEFF/, '')); // spreadsheets often start with a BOM
  if (rows.length < 2) throw new Error('The file has no data rows (the first row must name the columns).');
  const { custom_fields: defs } = await loadTenantCatalog();
  job = { name: f.name, header: rows[0].map((c) => c.trim()), rows: rows.slice(1), defs: defs.filter((d) => d.slug !== 'lead_line') };
  showMapping();
}

function targets() {
  return FIELDS.map(([k, label]) => [k, label]).concat(job.defs.map((d) => ['cf:' + d.slug, `Custom: ${d.name}`]));
}
function autoMatch(header) {
  const n = norm(header);
  const field = FIELDS.find(([k, , names]) => norm(k) === n || names.includes(n));
  if (field) return field[0];
  const def = job.defs.find((d) => [norm(d.slug), norm(d.name), 'cf' + norm(d.slug)].includes(n));
  return def ? 'cf:' + def.slug : '';
}

function showMapping() {
  const step = $('#lead-import .import-step');
  const form = h('form', { class: 'stack', id: 'import-mapping' });
  const sample = (i) => (job.rows.find((r) => (r[i] || '').trim()) || [])[i] || '';
  form.append(
    h('p', { role: 'status', text: `${job.name}: ${plural(job.rows.length, 'row')}, ${plural(job.header.length, 'column')}.` }),
    table(['Column', 'Example', 'Imports as'], job.header.map((c, i) => ({ c, i })), ({ c, i }) => [
      h('code', { text: c || `(column ${i + 1})` }), text(sample(i)),
      h('select', { name: 'col' + i, 'aria-label': `Field for column ${c}` }, options(targets(), autoMatch(c), '(skip this column)')),
    ], ''),
    h('label', { class: 'inline' }, 'When a row matches an existing lead',
      h('select', { name: 'on_duplicate' }, options([['update', 'update the lead'], ['skip', 'skip the row']], 'update'))),
    h('div', {}, h('button', { type: 'submit', text: 'Preview (dry run)' })),
    h('p', { class: 'error', role: 'alert' }),
    h('div', { class: 'import-result' }));
  form.addEventListener('change', (ev) => { // a new mapping needs a new preview
    if (!ev.target.name) return;
    job.preview = null;
    job.batch = null; // and is another import: new idempotency keys
    $('.import-result', form).replaceChildren();
    $('button[type=submit]', form).disabled = false;
  });
  form.addEventListener('submit', (ev) => { ev.preventDefault(); run(form, true); });
  step.replaceChildren(form);
}

function buildRows(form) {
  const map = job.header.map((_, i) => form.elements['col' + i].value);
  if (!map.some((m) => m)) throw new Error('Map at least one column to a field.');
  return job.rows.map((r) => {
    const row = { row_ref: String(r.line) }; // the line in the file the row starts on
    map.forEach((target, i) => {
      // A leading ' is the export's guard against spreadsheet formulas (and a spreadsheet's
      // own "this is text" mark): taken off, as `leadbase import` does.
      const v = (r[i] || '').trim().replace(/^'/, '');
      if (!target || v === '') return;
      if (!target.startsWith('cf:')) { row[target] = v; return; }
      const def = job.defs.find((d) => 'cf:' + d.slug === target);
      (row.custom_fields ||= {})[def.slug] = typed(def, v);
    });
    return row;
  });
}
// Each 500-row dry run sees only its own rows: a row matching a row of an earlier batch (same
// email, or same last 10 phone digits) previews as created but will merge. Counted to say so.
function crossBatchRepeats(rows) {
  const seen = new Map();
  let repeats = 0;
  rows.forEach((row, i) => {
    const batch = Math.floor(i / CHUNK);
    const digits = (row.contact_phone || '').replace(/\D/g, '');
    const keys = [row.contact_email && 'e:' + row.contact_email.toLowerCase(), digits.length >= 10 && 'p:' + digits.slice(-10)].filter(Boolean);
    if (keys.some((k) => seen.has(k) && seen.get(k) < batch)) repeats++;
    keys.forEach((k) => { if (!seen.has(k)) seen.set(k, batch); });
  });
  return repeats;
}
function typed(def, v) {
  if (def.type === 'number' && v !== '' && !isNaN(Number(v))) return Number(v);
  if (def.type === 'boolean' && /^(true|yes|1)$/i.test(v)) return true;
  if (def.type === 'boolean' && /^(false|no|0)$/i.test(v)) return false;
  return v; // the server names the problem
}

// One pass over the rows in 500-row bulk requests; dry or real.
async function run(form, dry) {
  const out = $('.import-result', form), err = $('.error', form);
  err.textContent = '';
  let rows;
  try { rows = buildRows(form); } catch (e) { showErr(err, e); return; }
  const onDuplicate = form.elements.on_duplicate.value;
  const bar = h('progress', { max: String(rows.length), value: '0', 'aria-label': dry ? 'Preview progress' : 'Import progress' });
  const label = h('span', { class: 'muted', text: `0 of ${rows.length} rows` });
  const buttons = $$buttons(form);
  buttons.forEach((b) => { b.disabled = true; });
  out.replaceChildren(h('div', { class: 'row progress-row' }, bar, label));
  const results = [], summary = { total: 0, created: 0, updated: 0, skipped: 0, failed: 0 };
  const unknown = new Set();
  // One set of keys per file and mapping: importing again after a stop resends every chunk
  // with its key, so the chunks that were written are replayed, not applied twice.
  const batch = (job.batch ||= randomId());
  let stopped = null;
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    try {
      // A retried request with the same key is replayed, not applied twice (dry runs are not stored).
      const r = await api('POST', tpath('/leads/bulk'), { leads: chunk, on_duplicate: onDuplicate, dry_run: dry },
        dry ? {} : { 'Idempotency-Key': `admin-import-${batch}-${i / CHUNK}` });
      results.push(...r.results);
      for (const k of Object.keys(summary)) summary[k] += r.summary[k];
      (r.unknown_custom_fields || []).forEach((f) => unknown.add(f));
    } catch (e) { stopped = { at: i, e }; break; }
    bar.value = i + chunk.length;
    label.textContent = `${(i + chunk.length).toLocaleString('en')} of ${rows.length.toLocaleString('en')} rows`;
  }
  buttons.forEach((b) => { b.disabled = false; });
  const confirmRow = dry && !stopped ? h('div', { class: 'row' },
    h('button', { type: 'button', id: 'import-confirm', text: `Import ${plural(rows.length - summary.failed, 'row')}`, onclick: () => run(form, false) }),
    summary.failed ? h('span', { class: 'muted', text: `The ${plural(summary.failed, 'row')} that would fail are left out.` }) : '')
    : !dry && stopped ? h('div', { class: 'row' },
      h('button', { type: 'button', id: 'import-retry', text: 'Try the import again', onclick: () => run(form, false) }),
      h('span', { class: 'muted', text: 'Rows already written are not written twice.' })) : '';
  if (dry && !stopped) job.preview = summary;
  out.replaceChildren(h('div', { class: 'row progress-row' }, bar, label), report(dry, summary, results, unknown, stopped, rows.length, confirmRow));
  const repeats = dry ? crossBatchRepeats(rows) : 0;
  if (repeats) {
    const which = repeats === 1 ? '1 row repeats' : `${repeats.toLocaleString('en')} rows repeat`;
    $('.import-counts', out).after(h('p', { class: 'muted', text: `${which} the email or phone of a row in an earlier batch ` +
      `of ${CHUNK}: the preview checks ${CHUNK} rows at a time and counts them as new; the import merges them.` }));
  }
  if (!dry && !stopped) $('button[type=submit]', form).disabled = true; // imported: a second click would re-apply
  if (!dry && summary.total) afterImport();
  $('.import-summary', out).focus();
}
const $$buttons = (form) => [...form.querySelectorAll('button')];

function report(dry, summary, results, unknown, stopped, total, confirmRow) {
  const counts = h('dl', { class: 'numbers import-counts' },
    ['created', 'updated', 'skipped', 'failed'].map((k) => h('div', { 'data-count': k },
      h('dt', { text: dry ? (k === 'failed' ? 'would fail' : `would be ${k}`) : k }), h('dd', { text: summary[k].toLocaleString('en') }))));
  const title = dry ? `Preview of ${plural(summary.total, 'row')}: nothing has been written yet.`
    : `Imported ${plural(summary.total, 'row')}.`;
  const parts = [h('p', { class: 'import-summary', tabindex: '-1', role: 'status', text: title }), counts];
  if (stopped) {
    parts.push(h('p', { class: 'error', role: 'alert',
      text: `Stopped at row ${stopped.at + 1} of ${total}: ${stopped.e.message}` +
        (dry || !stopped.at ? '' : ` The first ${stopped.at} rows were imported.`) }));
  }
  if (unknown.size) parts.push(h('p', { class: 'muted', text: `Unknown custom fields, ignored: ${[...unknown].join(', ')}` }));
  parts.push(confirmRow, resultTable(results, summary.failed ? 'failed' : ''));
  return h('div', { class: 'stack', 'data-dry-run': String(dry) }, parts);
}

const SHOWN = 200;
function resultTable(results, initial) {
  const wrap = h('div', { class: 'stack' });
  const pick = h('select', { 'aria-label': 'Show rows' }, options(['created', 'updated', 'skipped', 'failed'], initial, 'every row'));
  const body = h('div', { class: 'import-rows' });
  const show = () => {
    const rows = results.filter((r) => !pick.value || r.status === pick.value);
    body.replaceChildren(
      rows.length > SHOWN ? h('p', { class: 'muted', text: `Showing the first ${SHOWN} of ${rows.length}.` }) : '',
      table(['Line', 'Result', 'Matched by', 'Problems'], rows.slice(0, SHOWN), (r) => [
        r.row_ref, badge(r.status), text(r.matched_by),
        r.errors.length || r.ignored_custom_fields.length
          ? h('span', {}, r.errors.join('; '), r.ignored_custom_fields.length ? ` (ignored: ${r.ignored_custom_fields.join(', ')})` : '')
          : text(null),
      ], 'No rows.'));
  };
  pick.addEventListener('change', show);
  show();
  wrap.append(h('label', { class: 'inline' }, 'Rows', pick), body);
  return wrap;
}
