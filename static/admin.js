// leadbase admin page: sign in, tenants, and the route from the address's hash to a panel.
// No framework, no build step: plain ES modules from the same origin.
import { state, h, $, $$, api, tpath, time, onSubmit } from './admin.ui.js';
import { loadKeys, loadCatalog, clearNewKey } from './admin.catalog.js';
import { loadOverview, overviewView, stopOverview } from './admin.overview.js';
import { loadLeads, resetLeads } from './admin.leads.js';
import { loadWebhooks, resetWebhooks } from './admin.webhooks.js';
import { stopLog } from './admin.deliveries.js';
import { loadEvents, resetEvents } from './admin.events.js';

const TOKEN_KEY = 'leadbase.adminToken';
const TABS = ['overview', 'keys', 'stages', 'fields', 'owners', 'leads', 'webhooks', 'events'];
const serverOverview = overviewView('server-overview');
const tenantOverview = overviewView('tenant-overview');
$('#server-view').append(serverOverview);
$('#panel-overview').append(tenantOverview);

const LOADERS = {
  overview: () => loadOverview(tenantOverview), keys: loadKeys, stages: () => loadCatalog('stages'),
  fields: () => loadCatalog('fields'), owners: () => loadCatalog('owners'), leads: loadLeads, webhooks: loadWebhooks,
  events: () => loadEvents(false),
};

// ---- sign in / out -----------------------------------------------------------------------
function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(state, { token: null, tenants: [], tenantId: null, catalog: null });
  stopOverview();
  stopLog();
  $('#app-view').hidden = true;
  $('#signout').hidden = true;
  clearNewKey();
  $('#signin-view').hidden = false;
  $('#signin-form .error').textContent = message || '';
  const input = $('#signin-token');
  input.value = '';
  input.focus();
}
state.onSignedOut = signOut;

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
  for (const select of $$('select[data-meta]')) {
    select.append(...meta[select.dataset.meta].map((v) => h('option', { text: v })));
  }
  $('#key-scopes').append(...meta.scopes.map((sc) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'scope', value: sc, checked: true }), ' ' + sc)));
  state.meta = meta;
}

// ---- tenants -----------------------------------------------------------------------------
async function loadTenants() {
  const { tenants } = await api('GET', '/admin/api/tenants');
  state.tenants = tenants;
  renderTenants();
}
function renderTenants() {
  $('#tenants-status').textContent = state.tenants.length ? '' : 'No tenants yet.';
  $('#server-link').toggleAttribute('aria-current', !state.tenantId);
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

// The hash holds the selection (#t=<tenant id>&tab=<tab>[&w=<webhook id>]), so reload and back
// work; no tenant is the server overview.
function route() {
  if (!state.token) return;
  const p = new URLSearchParams(location.hash.slice(1));
  const tab = TABS.includes(p.get('tab')) ? p.get('tab') : 'overview';
  const changed = p.get('t') !== state.tenantId;
  state.tenantId = p.get('t');
  state.tab = tab;
  stopOverview();
  const t = currentTenant();
  if (!t) state.tenantId = null;
  renderTenants();
  $('#server-view').hidden = !!t;
  $('#tenant-detail').hidden = !t;
  serverOverview.hidden = !!t;
  if (changed) {
    clearNewKey();
    $('#rename-form').hidden = true;
    state.catalog = null;
    resetLeads();
    resetWebhooks();
    resetEvents();
  }
  if (!t) { loadOverview(serverOverview); return; }
  $('#tenant-name').textContent = t.name;
  $('#tenant-id').textContent = t.id;
  $('#tenant-created').replaceChildren('created ', time(t.created_at));
  for (const b of $$('[role=tab]')) {
    const on = b.dataset.tab === tab;
    b.setAttribute('aria-selected', String(on));
    b.tabIndex = on ? 0 : -1;
    $('#panel-' + b.dataset.tab).hidden = !on;
  }
  tenantOverview.hidden = tab !== 'overview';
  if (tab !== 'webhooks') stopLog();
  LOADERS[tab](p);
}

// ---- wiring ------------------------------------------------------------------------------
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
const tabs = $$('[role=tab]');
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
