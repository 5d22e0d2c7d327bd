// The overview: per-minute charts from /admin/api/stats (for the server, or the selected tenant),
// the delivery queue, and the webhooks that need attention.
import { state, h, api, tpath, table, badge, time, text, listError, $, stale, statusCode } from './admin.ui.js';
import { barChart } from './admin.chart.js';

const REFRESH_MS = 15000;
let timer = null;

export function stopOverview() {
  clearTimeout(timer);
  timer = null;
}

// root: the overview's container; it holds a minutes select, a refresh button and the parts.
export async function loadOverview(root) {
  stopOverview();
  const tid = state.tenantId;
  const minutes = $('select[name=minutes]', root).value;
  const charts = $('.charts', root), attention = $('.attention', root);
  const params = new URLSearchParams({ minutes });
  if (tid) params.set('tenant_id', tid);
  try {
    const { stats } = await api('GET', '/admin/api/stats?' + params);
    if (stale(tid) || !root.isConnected || root.hidden) return;
    charts.replaceChildren(...statCards(stats));
    root.dataset.loadedAt = new Date().toISOString();
  } catch (e) { listError(charts, e); }
  try {
    const hooks = await attentionHooks(tid);
    if (stale(tid)) return;
    const unseen = tid ? 0 : state.tenants.length - ATTENTION_TENANTS;
    attention.replaceChildren(attentionTable(hooks, !tid),
      unseen > 0 ? h('p', { class: 'muted', text: `Looked at the first ${ATTENTION_TENANTS} tenants; ${n(unseen)} more are not shown here (open a tenant to see its webhooks).` }) : '');
  } catch (e) { listError(attention, e); }
  if (!root.hidden) timer = setTimeout(() => { if (!root.hidden && !stale(tid)) loadOverview(root); }, REFRESH_MS);
}

const sum = (values) => values.reduce((a, b) => a + b, 0);
const n = (v) => v.toLocaleString('en');

function statCards(stats) {
  const m = stats.series.minute, sr = stats.series;
  return [
    card('Leads created', n(sum(sr.leads_created)),
      barChart('Leads created per minute', m, [{ key: 'leads', name: 'leads created', values: sr.leads_created, cls: 'bar-leads' }])),
    card('Delivery attempts', `${n(sum(sr.delivered))} delivered, ${n(sum(sr.failed))} failed`,
      barChart('Delivery attempts per minute', m, [
        { key: 'delivered', name: 'delivered', values: sr.delivered, cls: 'bar-ok' },
        { key: 'failed', name: 'failed', values: sr.failed, cls: 'bar-bad' }]),
      h('p', { class: 'legend', 'aria-hidden': 'true' }, h('span', { class: 'key key-ok', text: 'delivered' }), ' ', h('span', { class: 'key key-bad', text: 'failed' }))),
    card('Events', n(sum(sr.events)),
      barChart('Events per minute', m, [{ key: 'events', name: 'events', values: sr.events, cls: 'bar-events' }])),
    queueCard(stats.queue),
  ];
}
function card(title, total, svg, legend) {
  return h('figure', { class: 'card chart-card' },
    h('figcaption', {}, h('span', { class: 'block', text: title }), h('span', { class: 'muted total', text: total })), svg, legend);
}
function queueCard(q) {
  const age = q.oldest_due_age_seconds == null ? 'none due' : `${Math.round(q.oldest_due_age_seconds)} s`;
  return h('section', { class: 'card chart-card queue', 'aria-labelledby': 'queue-h' },
    h('h3', { id: 'queue-h', text: 'Delivery queue, now' }),
    h('dl', { class: 'numbers' },
      h('div', {}, h('dt', { text: 'Due' }), h('dd', { 'data-queue': 'due', text: String(q.due) })),
      h('div', {}, h('dt', { text: 'Held (paused or disabled webhooks)' }), h('dd', { 'data-queue': 'held', text: String(q.held) })),
      h('div', {}, h('dt', { text: 'Oldest due waiting' }), h('dd', { text: age }))));
}

// Disabled or paused, failing, or holding deliveries; across the tenants for the server view
// (one request each, so at most ATTENTION_TENANTS of them).
const ATTENTION_TENANTS = 100;
async function attentionHooks(tid) {
  const tenants = tid ? state.tenants.filter((t) => t.id === tid) : state.tenants.slice(0, ATTENTION_TENANTS);
  const lists = await Promise.all(tenants.map(async (t) => {
    const { webhooks } = await api('GET', tpath('/webhooks', t.id));
    return webhooks.map((w) => ({ ...w, tenant: t }));
  }));
  return lists.flat().filter((w) => !w.is_active || w.consecutive_failures > 0 || w.held_count > 0);
}
function problem(w) {
  if (w.disabled_reason) return h('span', {}, badge('disabled', 'bad'), h('small', { class: 'muted block', text: w.disabled_reason }));
  if (!w.is_active) return badge('paused', 'pending');
  return badge('failing', 'bad');
}
function attentionTable(hooks, withTenant) {
  const cols = (withTenant ? ['Tenant'] : []).concat(['Webhook', 'Problem', 'Failures in a row', 'Held', 'Last delivery']);
  return table(cols, hooks, (w) => (withTenant ? [text(w.tenant.name)] : []).concat([
    h('a', { href: '#' + new URLSearchParams({ t: w.tenant.id, tab: 'webhooks', w: w.id }), class: 'url', text: w.url }),
    problem(w), String(w.consecutive_failures), String(w.held_count),
    w.last_delivery_at ? h('span', {}, time(w.last_delivery_at), ' ', statusCode(w.last_delivery_status)) : text(null),
  ]), 'No webhook needs attention.');
}

// The overview's controls, built once per container.
export function overviewView(id) {
  const root = h('div', { class: 'overview stack', id });
  const minutes = h('select', { name: 'minutes', 'aria-label': 'Time window' },
    [[15, 'last 15 minutes'], [60, 'last hour'], [360, 'last 6 hours'], [1440, 'last 24 hours']].map(([v, l]) =>
      h('option', { value: String(v), text: l, selected: v === 60 })));
  minutes.addEventListener('change', () => loadOverview(root));
  root.append(
    h('div', { class: 'row' }, h('h3', { class: 'grow', text: 'Activity' }), minutes,
      h('button', { type: 'button', class: 'secondary', text: 'Refresh', onclick: () => loadOverview(root) })),
    h('div', { class: 'charts' }),
    h('h3', { text: 'Webhooks that need attention' }),
    h('div', { class: 'attention' }));
  return root;
}
