// Leads: the pull filters with search as you type, cursor paging, export of the current filter,
// and a lead's detail (custom fields, edit, delete, the interaction timeline).
import { state, h, $, api, tpath, enc, table, time, text, badge, swatch, dash, loading, listError, showErr,
  onSubmit, action, stale, pager, debounce, options, loadTenantCatalog, download, ENUMS, dayStart, plural } from './admin.ui.js';
import { leadForm } from './admin.leadform.js';
import { openImport, resetImport } from './admin.import.js';

const PAGE = 20;
const fresh = () => ({ search: '', status: '', stage_slug: '', lead_line: '', created_since: '', updated_since: '',
  sort: 'updated_at:desc', cursor: null, back: [], offset: 0 });
let query = fresh();
let loads = 0; // typing starts a load per pause: only the latest one may draw
const panel = () => $('#panel-leads');

export function resetLeads() {
  query = fresh();
  $('#lead-filters').reset();
  closeDetail();
  $('#lead-editor').replaceChildren();
  resetImport();
  $('#lead-import').hidden = true;
}

// The filter's query parameters (no paging): what the list and the export share.
function filterParams() {
  const p = new URLSearchParams();
  for (const k of ['search', 'status', 'stage_slug', 'lead_line']) if (query[k]) p.set(k, query[k]);
  for (const k of ['created_since', 'updated_since']) if (query[k]) p.set(k, dayStart(query[k]));
  const [by, dir] = query.sort.split(':');
  p.set('sort_by', by);
  p.set('sort_dir', dir);
  return p;
}
const filtered = () => ['search', 'status', 'stage_slug', 'lead_line', 'created_since', 'updated_since'].some((k) => query[k]);

export async function loadLeads() {
  const tid = state.tenantId, list = $('.list', panel()), load = ++loads;
  loading(list);
  const params = filterParams();
  params.set('limit', String(PAGE));
  // last_interaction_at sorts page by offset only (spec §4): no cursor.
  const byOffset = query.sort.startsWith('last_interaction_at');
  if (byOffset && query.offset) params.set('offset', String(query.offset));
  if (!byOffset && query.cursor) params.set('cursor', query.cursor);
  try {
    await fillFilterSelects();
    const r = await api('GET', tpath('/leads?' + params));
    if (stale(tid) || load !== loads) return;
    query.next = r.next_cursor;
    const stage = (st) => (st ? h('span', { class: 'nowrap' }, swatch(st.color), st.name) : dash());
    list.replaceChildren(
      h('p', { class: 'muted', role: 'status', 'data-total': String(r.total), text: `${plural(r.total, 'lead')}${filtered() ? ' match' : ''}` }),
      table(['Name', 'Email', 'Phone', 'Stage', 'Owner', 'Status', 'Source', 'Created', 'Updated'], r.leads, (l) => [
        h('button', { type: 'button', class: 'link', text: l.contact_name || l.contact_email || l.contact_phone || l.id,
          'aria-label': `Open lead ${l.contact_name || l.contact_email || l.id}`, onclick: () => openLead(l.id) }),
        text(l.contact_email), text(l.contact_phone), stage(l.current_stage),
        l.owner ? h('span', { title: l.owner.role_name || null, text: l.owner.name }) : dash(),
        badge(l.status), `${l.source_platform} / ${l.source_type}`, time(l.created_at), time(l.updated_at),
      ], filtered() ? 'No leads match.' : 'No leads yet.'),
      byOffset ? offsetPager(r.total) : pager(query, loadLeads));
  } catch (e) { if (!stale(tid) && load === loads) listError(list, e); }
}
function offsetPager(total) {
  const nav = h('div', { class: 'row pager' });
  const to = (offset) => () => { query.offset = offset; loadLeads(); };
  if (query.offset > 0) nav.append(h('button', { type: 'button', class: 'secondary', text: 'Previous page', onclick: to(Math.max(0, query.offset - PAGE)) }));
  if (query.offset + PAGE < total) nav.append(h('button', { type: 'button', class: 'secondary', text: 'Next page', onclick: to(query.offset + PAGE) }));
  return nav;
}

// The stage select lists the tenant's own stages; refilled when they (or the tenant) change.
let stagesShown = null;
async function fillFilterSelects() {
  const catalog = await loadTenantCatalog();
  if (stagesShown === catalog) return;
  $('#lead-stage').replaceChildren(...options(catalog.stages.map((st) => [st.slug, st.name]), query.stage_slug, 'any stage'));
  stagesShown = catalog;
}

function readFilters() {
  const f = $('#lead-filters').elements;
  query = { ...fresh(), search: f.search.value.trim(), status: f.status.value, stage_slug: f.stage_slug.value,
    lead_line: f.lead_line.value, created_since: f.created_since.value, updated_since: f.updated_since.value, sort: f.sort.value };
  return loadLeads();
}
const searchAsYouType = debounce(readFilters, 250);
$('#lead-filters').addEventListener('input', (ev) => { if (ev.target.name === 'search') searchAsYouType(); });
$('#lead-filters').addEventListener('change', (ev) => { if (ev.target.name !== 'search') readFilters(); });
onSubmit($('#lead-filters'), readFilters);
$('#lead-clear').addEventListener('click', () => { $('#lead-filters').reset(); readFilters(); });
$('#lead-import-open').addEventListener('click', () => openImport(loadLeads));

$('#lead-export').addEventListener('click', async (ev) => {
  const status = $('#lead-tools .error');
  status.textContent = '';
  ev.target.disabled = true;
  try {
    const p = filterParams();
    p.set('format', 'csv');
    await download(tpath('/leads/export?' + p), 'leads.csv');
  } catch (e) { showErr(status, e); } finally { ev.target.disabled = false; }
});
$('#lead-new').addEventListener('click', async () => {
  closeDetail();
  const box = $('#lead-editor'), err = $('#lead-tools .error');
  err.textContent = '';
  try {
    box.replaceChildren(await leadForm(null, async (r) => {
      box.replaceChildren();
      await loadLeads();
      await openLead(r.lead.id, r.merged ? `Merged into an existing lead (same ${r.matched_by}).` : 'Lead created.');
    }, () => box.replaceChildren()));
    $('input', box).focus();
  } catch (e) { showErr(err, e); }
});

// ---- one lead --------------------------------------------------------------------------
function closeDetail() {
  const d = $('#lead-detail');
  d.hidden = true;
  d.replaceChildren();
}
async function openLead(id, note) {
  const tid = state.tenantId, d = $('#lead-detail');
  $('#lead-editor').replaceChildren();
  d.hidden = false;
  loading(d);
  try {
    const { lead } = await api('GET', tpath('/leads/' + enc(id)));
    const catalog = await loadTenantCatalog();
    if (stale(tid)) return;
    d.replaceChildren(...detailView(lead, catalog, note));
    d.scrollIntoView({ block: 'start' });
    $('h3', d).focus();
    await loadInteractions(lead, $('.timeline', d));
  } catch (e) { listError(d, e); }
}

function detailView(lead, catalog, note) {
  const name = lead.contact_name || lead.contact_email || lead.contact_phone || lead.id;
  const cf = lead.custom_fields || {};
  const fieldName = (slug) => (catalog.custom_fields.find((f) => f.slug === slug) || {}).name || slug;
  const pair = (k, v) => h('div', {}, h('dt', { text: k }), h('dd', {}, v));
  return [
    h('div', { class: 'row' },
      h('h3', { class: 'grow', tabindex: '-1', text: name }),
      action('Edit', async () => editLead(lead)),
      action('Delete', async () => {
        if (!confirm(`Delete the lead "${name}"? Its interactions go too; this cannot be undone.`)) return;
        await api('DELETE', tpath('/leads/' + enc(lead.id)), undefined, { 'If-Match': `"${lead.version}"` });
        closeDetail();
        await loadLeads();
      }, 'danger', `Delete lead ${name}`),
      h('button', { type: 'button', class: 'secondary', text: 'Close', onclick: closeDetail })),
    note ? h('p', { class: 'notice', role: 'status', text: note }) : '',
    h('dl', { class: 'facts' },
      pair('Email', text(lead.contact_email)), pair('Phone', text(lead.contact_phone)),
      pair('Status', badge(lead.status)), pair('Stage', text(lead.current_stage && lead.current_stage.name)),
      pair('Owner', text(lead.owner && lead.owner.name)), pair('Score', text(lead.score)),
      pair('Qualified', text(lead.qualified == null ? null : lead.qualified ? 'yes' : 'no')),
      pair('Source', `${lead.source_platform} / ${lead.source_type}`),
      pair('Created', time(lead.created_at)), pair('Updated', time(lead.updated_at)),
      pair('Interactions', h('span', { class: 'interaction-count', text: String(lead.interaction_count) })),
      pair('Version', h('span', { class: 'lead-version', text: String(lead.version) })),
      pair('Id', h('code', { text: lead.id }))),
    h('h4', { text: 'Custom fields' }),
    Object.keys(cf).length
      ? h('dl', { class: 'facts' }, Object.entries(cf).map(([k, v]) => pair(fieldName(k), text(v == null ? null : String(v)))))
      : h('p', { class: 'muted', text: 'None set.' }),
    h('h4', { text: 'Interactions' }),
    interactionForm(lead),
    h('ol', { class: 'timeline', 'aria-label': 'Interactions, newest first' }),
  ];
}
async function editLead(lead) {
  const box = $('#lead-editor');
  $('#lead-detail').hidden = true;
  box.replaceChildren(await leadForm(lead, async () => {
    box.replaceChildren();
    await loadLeads();
    await openLead(lead.id, 'Saved.');
  }, () => { box.replaceChildren(); $('#lead-detail').hidden = false; }));
  $('input', box).focus();
}

// ---- interactions ------------------------------------------------------------------------
async function loadInteractions(lead, list, cursor) {
  const p = new URLSearchParams({ limit: '20' });
  if (cursor) p.set('cursor', cursor);
  const r = await api('GET', tpath(`/leads/${enc(lead.id)}/interactions?${p}`));
  if (!cursor) list.replaceChildren();
  $('.more', list.parentElement)?.remove();
  if (!r.interactions.length && !cursor) list.append(h('li', { class: 'muted', text: 'No interactions yet.' }));
  list.append(...r.interactions.map(interactionItem));
  if (r.next_cursor) {
    list.after(h('p', { class: 'more' }, action('Show older', async () => loadInteractions(lead, list, r.next_cursor))));
  }
}
function interactionItem(i) {
  return h('li', { class: 'interaction' },
    h('div', { class: 'row' }, badge(i.type, 'neutral'), i.direction ? h('span', { class: 'muted', text: i.direction }) : '',
      time(i.occurred_at), i.duration_seconds != null ? h('span', { class: 'muted', text: `${i.duration_seconds} s` }) : ''),
    i.summary ? h('p', { class: 'summary', text: i.summary }) : '',
    i.body ? h('p', { class: 'body', text: i.body }) : '');
}
function interactionForm(lead) {
  const form = h('form', { class: 'card stack interaction-form' },
    h('div', { class: 'fields' },
      h('label', {}, 'Type', h('select', { name: 'type' }, options(ENUMS.interaction_types, 'note'))),
      h('label', {}, 'Direction', h('select', { name: 'direction' }, options(ENUMS.directions, '', '—'))),
      h('label', {}, 'When (optional)', h('input', { name: 'occurred_at', type: 'datetime-local' })),
      h('label', {}, 'Duration, seconds', h('input', { name: 'duration_seconds', type: 'number', min: '0', max: '86400' }))),
    h('label', {}, 'Summary', h('input', { name: 'summary', maxlength: '500' })),
    h('label', {}, 'Details', h('textarea', { name: 'body', rows: '3', maxlength: '20000' })),
    h('div', {}, h('button', { type: 'submit', text: 'Add interaction' })),
    h('p', { class: 'error', role: 'alert' }));
  onSubmit(form, async (f) => {
    const e = f.elements, body = { type: e.type.value };
    if (e.direction.value) body.direction = e.direction.value;
    if (e.occurred_at.value) body.occurred_at = new Date(e.occurred_at.value).toISOString();
    if (e.duration_seconds.value !== '') body.duration_seconds = Number(e.duration_seconds.value);
    if (e.summary.value.trim()) body.summary = e.summary.value.trim();
    if (e.body.value.trim()) body.body = e.body.value.trim();
    const r = await api('POST', tpath(`/leads/${enc(lead.id)}/interactions`), body);
    f.reset();
    Object.assign(lead, r.lead); // the new version, for a later edit or delete's If-Match
    $('#lead-detail .interaction-count').textContent = String(lead.interaction_count);
    $('#lead-detail .lead-version').textContent = String(lead.version);
    await loadInteractions(lead, $('.timeline', $('#lead-detail')));
  });
  return form;
}
