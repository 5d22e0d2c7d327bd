// leadbase admin page. No framework, no build step. Server data only ever reaches the page
// through textContent / attributes (never innerHTML), and the CSP allows no inline code.
'use strict';
(() => {
  const TOKEN_KEY = 'leadbase.adminToken';
  const TABS = ['keys', 'stages', 'fields', 'owners', 'leads', 'webhooks'];
  const state = {
    token: null, meta: null, tenants: [], tenantId: null, tab: 'keys',
    leads: { search: '', status: '', cursor: null, back: [] },
    hook: null, // {id, url, status, cursor, back}
  };
  const $ = (sel, root = document) => root.querySelector(sel);

  // ---- DOM helpers ---------------------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) if (kid != null && kid !== '') el.append(kid);
    return el;
  }
  const dash = () => h('span', { class: 'muted', text: '—' });
  const text = (v) => (v == null || v === '' ? dash() : String(v));
  function time(iso) {
    if (!iso) return dash();
    const d = new Date(iso);
    const local = isNaN(d) ? iso : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
    return h('time', { datetime: iso, title: iso, text: local });
  }
  function swatch(color) {
    const s = h('span', { class: 'swatch', 'aria-hidden': 'true' });
    if (/^#[0-9a-f]{6}$/i.test(color || '')) s.style.backgroundColor = color; // CSSOM, CSP-safe
    else s.classList.add('none');
    return s;
  }
  const badge = (label, kind) => h('span', { class: 'badge ' + (kind || label), text: label });
  const plainList = (items) => h('ul', { class: 'plain' }, items.map((i) => h('li', { text: i })));

  // A table that turns into labelled cards on narrow screens (td[data-label]).
  function table(cols, rows, rowFn, empty) {
    if (!rows.length) return h('p', { class: 'muted empty', text: empty });
    return h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, rows.map((r) => {
        const tr = h('tr', {});
        rowFn(r, tr).forEach((cell, i) => tr.append(h('td', { 'data-label': cols[i] || null }, cell)));
        return tr;
      }))));
  }
  const loading = (el) => el.replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));

  // ---- API -------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, type, message) { super(message); this.status = status; this.type = type; }
  }
  async function api(method, path, body) {
    const opts = { method, headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try { res = await fetch(path, opts); } catch (_) {
      throw new ApiError(0, 'network_error', 'Cannot reach the server.');
    }
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (res.status === 401) {
      signOut('invalid admin token');
      throw new ApiError(401, 'authentication_error', 'invalid admin token');
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      throw new ApiError(res.status, e.type, e.message || `HTTP ${res.status} ${res.statusText}`);
    }
    return data;
  }
  const tpath = (suffix) => `/admin/api/tenants/${encodeURIComponent(state.tenantId)}${suffix}`;
  const notAvailable = (e) => e.status === 404 && /^no route for /.test(e.message);
  function showErr(el, e) {
    if (e.status === 401) return; // already back on the sign-in screen
    el.textContent = e.message || String(e);
  }
  function listError(list, e) {
    if (e.status === 401) return;
    list.replaceChildren(notAvailable(e)
      ? h('p', { class: 'muted empty', text: 'Not available on this server.' })
      : h('p', { class: 'error', role: 'alert', text: e.message }));
  }
  // Submit handler: no native submission (form-action 'none'); errors shown in the form.
  function onSubmit(form, fn) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const err = $('.error', form), btn = $('button[type=submit]', form);
      if (err) err.textContent = '';
      if (btn) btn.disabled = true;
      try { await fn(form); } catch (e) { if (err) showErr(err, e); } finally { if (btn) btn.disabled = false; }
    });
  }
  // A row button whose failure is shown right next to it.
  function action(label, fn, cls, aria) {
    const err = h('span', { class: 'error', role: 'alert' });
    const btn = h('button', { type: 'button', class: cls || 'secondary', text: label, 'aria-label': aria });
    btn.addEventListener('click', async () => {
      err.textContent = '';
      btn.disabled = true;
      try { await fn(); } catch (e) { showErr(err, e); } finally { btn.disabled = false; }
    });
    return h('span', { class: 'action' }, btn, err);
  }
  const stale = (tid) => tid !== state.tenantId;

  // ---- sign in / out ---------------------------------------------------------------------
  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.tenants = [];
    state.tenantId = null;
    $('#app-view').hidden = true;
    $('#signout').hidden = true;
    $('#new-token').hidden = true;
    $('#new-token-value').value = '';
    $('#signin-view').hidden = false;
    $('#signin-form .error').textContent = message || '';
    const input = $('#signin-token');
    input.value = '';
    input.focus();
  }
  async function enterApp() {
    await loadTenants(); // throws (and signs out) on a bad token
    await loadMeta();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $('#signin-view').hidden = true;
    $('#app-view').hidden = false;
    $('#signout').hidden = false;
    route();
  }

  // The values of the selects and scope checkboxes come from the server's enums, so the page
  // never offers a value the API would refuse. They do not change while the page is open.
  async function loadMeta() {
    if (state.meta) return;
    const meta = await api('GET', '/admin/api/meta');
    for (const select of document.querySelectorAll('select[data-meta]')) {
      select.append(...meta[select.dataset.meta].map((v) => h('option', { text: v })));
    }
    $('#key-scopes').append(...meta.scopes.map((s) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'scope', value: s, checked: true }), ' ' + s)));
    state.meta = meta;
  }

  // ---- tenants ---------------------------------------------------------------------------
  async function loadTenants() {
    const { tenants } = await api('GET', '/admin/api/tenants');
    state.tenants = tenants;
    renderTenants();
  }
  function renderTenants() {
    $('#tenants-status').textContent = state.tenants.length ? '' : 'No tenants yet.';
    $('#tenant-list').replaceChildren(...state.tenants.map((t) => h('li', {},
      h('a', { href: '#' + new URLSearchParams({ t: t.id, tab: state.tab }), class: 'tenant',
        'aria-current': t.id === state.tenantId ? 'page' : null },
      h('span', { text: t.name }), h('small', { text: t.id })))));
  }
  const currentTenant = () => state.tenants.find((t) => t.id === state.tenantId);
  function go(tid, tab) {
    const hash = '#' + new URLSearchParams({ t: tid, tab });
    if (location.hash === hash) route(); else location.hash = hash;
  }
  // The hash holds the selection (#t=<tenant id>&tab=<tab>), so reload and back work.
  function route() {
    if (!state.token) return;
    const p = new URLSearchParams(location.hash.slice(1));
    const tab = TABS.includes(p.get('tab')) ? p.get('tab') : 'keys';
    const changed = p.get('t') !== state.tenantId;
    state.tenantId = p.get('t');
    state.tab = tab;
    const t = currentTenant();
    renderTenants();
    $('#no-tenant').hidden = !!t;
    $('#tenant-detail').hidden = !t;
    if (!t) { state.tenantId = null; return; }
    if (changed) {
      $('#new-token').hidden = true;
      $('#new-token-value').value = '';
      $('#rename-form').hidden = true;
      state.leads = { search: '', status: '', cursor: null, back: [] };
      $('#lead-search').reset();
      closeDeliveries();
    }
    $('#tenant-name').textContent = t.name;
    $('#tenant-id').textContent = t.id;
    $('#tenant-created').replaceChildren('created ', time(t.created_at));
    for (const b of document.querySelectorAll('[role=tab]')) {
      const on = b.dataset.tab === tab;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
      $('#panel-' + b.dataset.tab).hidden = !on;
    }
    LOADERS[tab]();
  }

  // ---- keys ------------------------------------------------------------------------------
  function keyStatus(k) {
    if (k.revoked_at) return 'revoked';
    if (k.expires_at && new Date(k.expires_at) <= new Date()) return 'expired';
    return 'active';
  }
  async function loadKeys() {
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
            await api('DELETE', '/admin/api/keys/' + encodeURIComponent(k.id));
            await loadKeys();
          }, 'danger', `Revoke key ${k.name}`)];
      }, 'No keys yet.'));
    } catch (e) { listError(list, e); }
  }
  onSubmit($('#key-form'), async (f) => {
    const scopes = [...f.querySelectorAll('input[name=scope]:checked')].map((i) => i.value);
    if (!scopes.length) throw new Error('Choose at least one scope.');
    const body = { name: f.elements.name.value.trim(), scopes };
    // A date means "until the end of that day", local time.
    if (f.elements.expires.value) body.expires_at = new Date(f.elements.expires.value + 'T23:59:59').toISOString();
    const r = await api('POST', tpath('/keys'), body);
    $('#new-token-name').textContent = `"${r.key.name}"`;
    $('#new-token-value').value = r.token;
    $('#new-token').hidden = false;
    $('#new-token-copy').textContent = 'Copy';
    $('#new-token-value').select();
    f.reset();
    await loadKeys();
  });
  $('#new-token-copy').addEventListener('click', async (ev) => {
    const input = $('#new-token-value');
    input.focus();
    input.select();
    let ok = false;
    try { await navigator.clipboard.writeText(input.value); ok = true; } catch (_) {
      try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    }
    ev.target.textContent = ok ? 'Copied' : 'Press Ctrl+C';
  });
  $('#new-token-done').addEventListener('click', () => {
    $('#new-token').hidden = true;
    $('#new-token-value').value = '';
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
  async function loadCatalog(kind) {
    const cfg = CATALOG[kind], tid = state.tenantId, list = $(`#panel-${kind} .list`);
    loading(list);
    try {
      const items = (await api('GET', tpath(cfg.path)))[cfg.list];
      if (stale(tid)) return;
      if (cfg.order) items.sort((a, b) => a.position - b.position);
      const reload = () => loadCatalog(kind);
      const itemPath = (it) => tpath(`${cfg.path}/${encodeURIComponent(it.id)}`);
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
      await loadCatalog(kind);
    });
  }

  // ---- leads (read only) -----------------------------------------------------------------
  function pager(page, reload) {
    const nav = h('div', { class: 'row pager' });
    if (page.cursor) {
      nav.append(h('button', { type: 'button', class: 'secondary', text: 'First page',
        onclick: () => { page.cursor = null; page.back = []; reload(); } }));
      nav.append(h('button', { type: 'button', class: 'secondary', text: 'Previous page',
        onclick: () => { page.cursor = page.back.pop() || null; reload(); } }));
    }
    if (page.next) {
      nav.append(h('button', { type: 'button', class: 'secondary', text: 'Next page',
        onclick: () => { page.back.push(page.cursor); page.cursor = page.next; reload(); } }));
    }
    return nav;
  }
  async function loadLeads() {
    const tid = state.tenantId, list = $('#panel-leads .list'), q = state.leads;
    loading(list);
    const params = new URLSearchParams({ limit: '20' });
    if (q.search) params.set('search', q.search);
    if (q.status) params.set('status', q.status);
    if (q.cursor) params.set('cursor', q.cursor);
    try {
      const r = await api('GET', tpath('/leads?' + params));
      if (stale(tid)) return;
      q.next = r.next_cursor;
      const stage = (s) => (s ? h('span', { class: 'nowrap' }, swatch(s.color), s.name) : dash());
      list.replaceChildren(
        h('p', { class: 'muted', text: `${r.total} lead${r.total === 1 ? '' : 's'}${q.search || q.status ? ' match' : ''}` }),
        table(['Name', 'Email', 'Phone', 'Stage', 'Owner', 'Status', 'Source', 'Created', 'Updated'], r.leads, (l) => [
          text(l.contact_name), text(l.contact_email), text(l.contact_phone), stage(l.current_stage),
          l.owner ? h('span', { title: l.owner.role_name || null, text: l.owner.name }) : dash(),
          badge(l.status), `${l.source_platform} / ${l.source_type}`, time(l.created_at), time(l.updated_at),
        ], q.search || q.status ? 'No leads match.' : 'No leads yet.'),
        pager(q, loadLeads));
    } catch (e) { listError(list, e); }
  }
  onSubmit($('#lead-search'), async (f) => {
    state.leads = { search: f.elements.search.value.trim(), status: f.elements.status.value, cursor: null, back: [] };
    await loadLeads();
  });

  // ---- webhooks (read only) --------------------------------------------------------------
  async function loadWebhooks() {
    const tid = state.tenantId, list = $('#panel-webhooks > .list');
    loading(list);
    try {
      const { webhooks } = await api('GET', tpath('/webhooks'));
      if (stale(tid)) return;
      list.replaceChildren(table(['URL', 'Events', 'State', 'Last delivery', 'Failures', 'Secret', 'Created'], webhooks, (w) => [
        h('span', { class: 'url' }, h('button', { type: 'button', class: 'link', text: w.url, title: 'Show deliveries',
          'aria-pressed': String(state.hook?.id === w.id), onclick: () => openDeliveries(w) }), w.description ? h('small', { class: 'muted block', text: w.description }) : ''),
        plainList(w.event_types),
        w.is_active ? badge('active') : h('span', { title: w.disabled_reason || null }, badge('disabled', 'revoked'),
          w.disabled_reason ? h('small', { class: 'muted block', text: w.disabled_reason }) : ''),
        w.last_delivery_at ? h('span', {}, time(w.last_delivery_at), ' ', statusCode(w.last_delivery_status)) : dash(),
        String(w.consecutive_failures ?? 0),
        w.signing_secret_prefix ? h('code', { text: w.signing_secret_prefix + '…' }) : dash(),
        time(w.created_at),
      ], 'No webhooks.'));
    } catch (e) { listError(list, e); }
  }
  function statusCode(code) {
    if (code == null) return dash();
    return badge(String(code), code >= 200 && code < 300 ? 'ok' : 'bad');
  }
  function openDeliveries(w) {
    state.hook = { id: w.id, url: w.url, status: '', cursor: null, back: [] };
    for (const b of document.querySelectorAll('#panel-webhooks > .list button[aria-pressed]')) {
      b.setAttribute('aria-pressed', String(b.textContent === w.url));
    }
    $('#deliveries-url').textContent = w.url;
    $('#delivery-status').value = '';
    $('#deliveries').hidden = false;
    loadDeliveries().then(() => $('#deliveries').scrollIntoView({ block: 'nearest' }));
  }
  function closeDeliveries() {
    state.hook = null;
    for (const b of document.querySelectorAll('#panel-webhooks button[aria-pressed]')) b.setAttribute('aria-pressed', 'false');
    $('#deliveries').hidden = true;
    $('#deliveries .list').replaceChildren();
  }
  async function loadDeliveries() {
    const hook = state.hook, list = $('#deliveries .list');
    if (!hook) return;
    loading(list);
    const params = new URLSearchParams({ limit: '20' });
    if (hook.status) params.set('status', hook.status);
    if (hook.cursor) params.set('cursor', hook.cursor);
    try {
      const r = await api('GET', tpath(`/webhooks/${encodeURIComponent(hook.id)}/deliveries?${params}`));
      if (state.hook !== hook) return;
      hook.next = r.next_cursor;
      list.replaceChildren(table(['Event', 'Status', 'Attempts', 'HTTP', 'Latency', 'Created', 'Delivered', 'Next attempt'], r.data, (d) => [
        text(d.event), badge(d.status), String(d.attempts), statusCode(d.response_status),
        d.latency_ms == null ? dash() : h('span', { class: 'nowrap', text: `${d.latency_ms} ms` }), time(d.created_at), time(d.delivered_at), time(d.next_attempt_at),
      ], 'No deliveries.'), pager(hook, loadDeliveries));
    } catch (e) { listError(list, e); }
  }
  $('#delivery-status').addEventListener('change', (ev) => {
    if (!state.hook) return;
    Object.assign(state.hook, { status: ev.target.value, cursor: null, back: [] });
    loadDeliveries();
  });
  $('#deliveries-close').addEventListener('click', closeDeliveries);

  const LOADERS = {
    keys: loadKeys, stages: () => loadCatalog('stages'), fields: () => loadCatalog('fields'),
    owners: () => loadCatalog('owners'), leads: loadLeads,
    webhooks: () => { closeDeliveries(); return loadWebhooks(); },
  };

  // ---- wiring ----------------------------------------------------------------------------
  onSubmit($('#signin-form'), async (f) => {
    state.token = f.elements.token.value.trim();
    await enterApp();
    f.elements.token.value = '';
  });
  $('#signout').addEventListener('click', () => signOut(''));
  onSubmit($('#tenant-form'), async (f) => {
    const { tenant } = await api('POST', '/admin/api/tenants', { name: f.elements.name.value.trim() });
    state.tenants.push(tenant);
    f.reset();
    go(tenant.id, 'keys');
  });
  $('#rename-toggle').addEventListener('click', () => {
    const form = $('#rename-form');
    form.hidden = !form.hidden;
    $('.error', form).textContent = '';
    form.elements.name.value = currentTenant().name;
    if (!form.hidden) form.elements.name.focus();
  });
  $('#rename-cancel').addEventListener('click', () => { $('#rename-form').hidden = true; });
  onSubmit($('#rename-form'), async (f) => {
    const { tenant } = await api('PATCH', tpath(''), { name: f.elements.name.value.trim() });
    state.tenants = state.tenants.map((t) => (t.id === tenant.id ? tenant : t));
    f.hidden = true;
    $('#tenant-name').textContent = tenant.name;
    renderTenants();
  });
  const tabs = [...document.querySelectorAll('[role=tab]')];
  for (const b of tabs) b.addEventListener('click', () => go(state.tenantId, b.dataset.tab));
  $('[role=tablist]').addEventListener('keydown', (ev) => {
    const i = tabs.indexOf(document.activeElement);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[ev.key];
    if (i < 0 || to === undefined) return;
    ev.preventDefault();
    const b = tabs[(to + tabs.length) % tabs.length];
    b.focus();
    go(state.tenantId, b.dataset.tab);
  });
  window.addEventListener('hashchange', route);

  fetch('/healthz', { cache: 'no-store' }).then((r) => r.json()).then((v) => {
    $('#version').textContent = 'v' + v.version;
    $('#version').title = `schema version ${v.schema_version}, status ${v.status}`;
  }).catch(() => { $('#version').textContent = 'server unreachable'; });

  state.token = sessionStorage.getItem(TOKEN_KEY);
  if (!state.token) signOut('');
  else {
    enterApp().catch((e) => { // server down etc.: keep the token, let the operator retry
      if (e.status === 401) return;
      $('#signin-view').hidden = false;
      $('#signin-token').value = state.token;
      $('#signin-form .error').textContent = e.message;
    });
  }
})();
