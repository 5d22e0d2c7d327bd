// A tenant's API keys, pipeline stages, custom fields and owners.
import { state, h, $, api, tpath, enc, table, time, text, badge, swatch, dash, plainList, loading, listError,
  onSubmit, action, stale, secretBox } from './admin.ui.js';

// ---- keys --------------------------------------------------------------------------------
function keyStatus(k) {
  if (k.revoked_at) return 'revoked';
  if (k.expires_at && new Date(k.expires_at) <= new Date()) return 'expired';
  return 'active';
}
export async function loadKeys() {
  const tid = state.tenantId, list = $('#panel-keys .list');
  loading(list);
  try {
    const { keys } = await api('GET', tpath('/keys'));
    if (stale(tid)) return;
    list.replaceChildren(table(['Name', 'Prefix', 'Scopes', 'Created', 'Last used', 'Expires', 'Status', ''], keys, (k, tr) => {
      const st = keyStatus(k);
      if (st !== 'active') tr.className = 'dim';
      return [text(k.name), h('code', { text: k.prefix }), plainList(k.scopes), time(k.created_at),
        time(k.last_used_at), time(k.expires_at), k.revoked_at ? h('span', { title: 'revoked ' + new Date(k.revoked_at).toLocaleString() }, badge(st)) : badge(st),
        st === 'revoked' ? '' : action('Revoke', async () => {
          if (!confirm(`Revoke the key "${k.name}" (${k.prefix})? Clients using it stop working at once.`)) return;
          await api('DELETE', '/admin/api/keys/' + enc(k.id));
          await loadKeys();
        }, 'danger', `Revoke key ${k.name}`)];
    }, 'No keys yet.'));
  } catch (e) { listError(list, e); }
}
export const clearNewKey = () => $('#new-token').replaceChildren();
onSubmit($('#key-form'), async (f) => {
  const scopes = [...f.querySelectorAll('input[name=scope]:checked')].map((i) => i.value);
  if (!scopes.length) throw new Error('Choose at least one scope.');
  const body = { name: f.elements.name.value.trim(), scopes };
  // A date means "until the end of that day", local time.
  if (f.elements.expires.value) body.expires_at = new Date(f.elements.expires.value + 'T23:59:59').toISOString();
  const r = await api('POST', tpath('/keys'), body);
  const box = secretBox(`New key "${r.key.name}"`, r.token);
  $('#new-token').replaceChildren(box);
  $('input', box).select();
  f.reset();
  await loadKeys();
});

// ---- stages, custom fields, owners: one small CRUD table each ---------------------------
const CATALOG = {
  stages: {
    path: '/stages', list: 'stages', one: 'stage', empty: 'No stages.', order: true,
    fields: [
      { name: 'slug', label: 'Slug', edit: true, code: true, pattern: '[a-z][a-z0-9_]*' },
      { name: 'name', label: 'Name', edit: true },
      { name: 'color', label: 'Colour', edit: true, optional: true, pattern: '#[0-9a-fA-F]{6}' },
    ],
  },
  fields: {
    path: '/custom-fields', list: 'custom_fields', one: 'custom field', empty: 'No custom fields.',
    fields: [
      { name: 'slug', label: 'Slug', code: true },
      { name: 'name', label: 'Name', edit: true },
      { name: 'type', label: 'Type', edit: true, options: 'custom_field_types' },
    ],
  },
  owners: {
    path: '/owners', list: 'owners', one: 'owner', empty: 'No owners yet.',
    fields: [
      { name: 'name', label: 'Name', edit: true },
      { name: 'role_name', label: 'Role', edit: true, optional: true },
    ],
  },
};
function showValue(f, v) {
  if (f.name === 'color') return v ? h('span', {}, swatch(v), h('code', { text: v })) : dash();
  return f.code ? h('code', { text: v }) : text(v);
}
function editor(f, v) {
  const label = `${f.label} (editing)`;
  if (f.options) return h('select', { 'aria-label': label }, state.meta[f.options].map((o) => h('option', { text: o, selected: o === v })));
  const input = h('input', { 'aria-label': label, pattern: f.pattern, required: !f.optional, maxlength: f.code ? 64 : 200 });
  input.value = v == null ? '' : v;
  return input;
}
export async function loadCatalog(kind) {
  const cfg = CATALOG[kind], tid = state.tenantId, list = $(`#panel-${kind} .list`);
  loading(list);
  try {
    const items = (await api('GET', tpath(cfg.path)))[cfg.list];
    if (stale(tid)) return;
    if (cfg.order) items.sort((a, b) => a.position - b.position);
    const reload = () => { state.catalog = null; return loadCatalog(kind); };
    const itemPath = (it) => tpath(`${cfg.path}/${enc(it.id)}`);
    const cols = (cfg.order ? ['Order'] : []).concat(cfg.fields.map((f) => f.label), ['']);
    list.replaceChildren(table(cols, items, (it, tr) => {
      const idx = items.indexOf(it);
      const move = (to) => async () => { await api('PATCH', itemPath(it), { position: to }); await reload(); };
      const order = cfg.order ? [h('span', { class: 'order' },
        action('↑', move(idx > 0 && items[idx - 1].position), 'icon', `Move ${it.name} up`),
        action('↓', move(idx < items.length - 1 && items[idx + 1].position), 'icon', `Move ${it.name} down`))] : [];
      if (cfg.order) {
        const [up, down] = order[0].querySelectorAll('button');
        up.disabled = idx === 0;
        down.disabled = idx === items.length - 1;
      }
      const view = () => order.concat(cfg.fields.map((f) => showValue(f, it[f.name])), [it.reserved
        ? h('span', { title: 'Reserved: cannot be edited or deleted' }, badge('reserved'))
        : h('span', { class: 'actions' },
          action('Edit', async () => edit(), 'secondary', `Edit ${it.name}`),
          action('Delete', async () => {
            if (!confirm(`Delete the ${cfg.one} "${it.name}"?`)) return;
            await api('DELETE', itemPath(it));
            await reload();
          }, 'danger', `Delete ${it.name}`))]);
      const fill = (cells) => tr.replaceChildren(...cells.map((c, i) => h('td', { 'data-label': cols[i] || null }, c)));
      function edit() {
        const inputs = {};
        const cells = cfg.fields.map((f) => (f.edit ? (inputs[f.name] = editor(f, it[f.name])) : showValue(f, it[f.name])));
        const save = action('Save', async () => {
          const patch = {};
          for (const [name, el] of Object.entries(inputs)) {
            if (!el.checkValidity()) { el.reportValidity(); return; }
            const v = el.value.trim(), f = cfg.fields.find((x) => x.name === name);
            if (v !== (it[name] == null ? '' : String(it[name]))) patch[name] = v === '' && f.optional ? null : v;
          }
          if (Object.keys(patch).length) await api('PATCH', itemPath(it), patch);
          await reload();
        }, 'primary');
        fill(order.concat(cells, [h('span', { class: 'actions' }, save,
          h('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => fill(view()) }))]));
        Object.values(inputs)[0].focus();
      }
      return view();
    }, cfg.empty));
  } catch (e) { listError(list, e); }
}
for (const kind of Object.keys(CATALOG)) {
  onSubmit($(`#panel-${kind} .create-form`), async (f) => {
    const body = {};
    for (const el of f.elements) if (el.name && el.value.trim() !== '') body[el.name] = el.value.trim();
    await api('POST', tpath(CATALOG[kind].path), body);
    f.reset();
    state.catalog = null;
    await loadCatalog(kind);
  });
}

