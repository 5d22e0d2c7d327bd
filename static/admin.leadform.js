// The lead form: create (POST, which may merge into an existing lead) or edit (PATCH of the
// changed fields only, with If-Match so a concurrent change is not overwritten).
import { state, h, api, tpath, enc, options, loadTenantCatalog, onSubmit, ENUMS } from './admin.ui.js';

const input = (label, name, value, attrs) => h('label', {}, label, h('input', { name, value: value ?? '', ...attrs }));
const select = (label, name, opts) => h('label', {}, label, h('select', { name }, opts));
const boolOpts = (v) => options([['true', 'yes'], ['false', 'no']], v == null ? '' : String(v), '—');

function customInput(def, value) {
  const name = 'cf:' + def.slug;
  if (def.type === 'boolean') return select(def.name, name, boolOpts(value));
  return input(def.name, name, value, def.type === 'number' ? { type: 'number', step: 'any' } : { maxlength: '1000' });
}
function customValue(def, raw) {
  if (raw === '') return null;
  if (def.type === 'number') return Number(raw);
  if (def.type === 'boolean') return raw === 'true';
  return raw;
}

// onDone(responseBody) after a successful write; onCancel() when the operator backs out.
export async function leadForm(lead, onDone, onCancel) {
  const { stages, owners, custom_fields: defs } = await loadTenantCatalog();
  const cf = (lead && lead.custom_fields) || {};
  const userDefs = defs.filter((d) => d.slug !== 'lead_line');
  const form = h('form', { class: 'card stack lead-form' },
    h('h3', { text: lead ? 'Edit lead' : 'New lead' }),
    h('div', { class: 'fields' },
      input('Name', 'contact_name', lead?.contact_name, { maxlength: '200' }),
      input('Email', 'contact_email', lead?.contact_email, { type: 'email', maxlength: '254' }),
      input('Phone', 'contact_phone', lead?.contact_phone, { type: 'tel', maxlength: '40' }),
      lead ? select('Status', 'status', options(state.meta.lead_statuses, lead.status)) : '',
      select('Stage', 'stage_slug', options(stages.map((s) => [s.slug, s.name]), lead?.current_stage?.slug ?? stages[0]?.slug)),
      select('Owner', 'owner_id', options(owners.map((o) => [o.id, o.name]), lead?.owner?.id ?? '', 'nobody')),
      select('Lead line', 'lead_line', options(ENUMS.lead_line, cf.lead_line ?? '', '—')),
      select('Source platform', 'source_platform', options(ENUMS.source_platform, lead?.source_platform ?? 'direct')),
      select('Source type', 'source_type', options(ENUMS.source_type, lead?.source_type ?? 'manual')),
      lead ? input('Score', 'score', lead.score, { type: 'number', step: '1' }) : '',
      lead ? select('Qualified', 'qualified', boolOpts(lead.qualified)) : '',
      userDefs.map((d) => customInput(d, cf[d.slug]))),
    h('div', { class: 'row' }, h('button', { type: 'submit', text: lead ? 'Save' : 'Create lead' }),
      h('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: onCancel })),
    h('p', { class: 'error', role: 'alert' }));
  onSubmit(form, async (f) => {
    const body = lead ? changes(f, lead, userDefs) : creation(f, userDefs);
    if (lead && !Object.keys(body).length) return onDone({ lead });
    const r = lead
      ? await api('PATCH', tpath('/leads/' + enc(lead.id)), body, { 'If-Match': `"${lead.version}"` })
      : await api('POST', tpath('/leads'), body);
    await onDone(r);
  });
  return form;
}

function creation(f, defs) {
  const body = {};
  for (const k of ['contact_name', 'contact_email', 'contact_phone', 'stage_slug', 'owner_id', 'lead_line', 'source_platform', 'source_type']) {
    const v = f.elements[k].value.trim();
    if (v) body[k] = v;
  }
  const custom = {};
  for (const d of defs) {
    const v = customValue(d, f.elements['cf:' + d.slug].value.trim());
    if (v != null) custom[d.slug] = v;
  }
  if (Object.keys(custom).length) body.custom_fields = custom;
  return body;
}

function changes(f, lead, defs) {
  const e = f.elements, body = {};
  const cf = lead.custom_fields || {};
  const set = (k, now, was) => { if ((now ?? null) !== (was ?? null)) body[k] = now; };
  for (const k of ['contact_name', 'contact_email', 'contact_phone']) set(k, e[k].value.trim() || null, lead[k]);
  set('status', e.status.value, lead.status);
  set('stage_slug', e.stage_slug.value, lead.current_stage?.slug);
  set('owner_id', e.owner_id.value || null, lead.owner?.id);
  set('lead_line', e.lead_line.value || null, cf.lead_line);
  set('source_platform', e.source_platform.value, lead.source_platform);
  set('source_type', e.source_type.value, lead.source_type);
  set('score', e.score.value === '' ? null : Math.trunc(Number(e.score.value)), lead.score);
  set('qualified', e.qualified.value === '' ? null : e.qualified.value === 'true', lead.qualified);
  const custom = {};
  for (const d of defs) {
    const v = customValue(d, e['cf:' + d.slug].value.trim());
    if (v !== (cf[d.slug] ?? null)) custom[d.slug] = v;
  }
  if (Object.keys(custom).length) body.custom_fields = custom;
  return body;
}
