// Webhooks: the list, create (secret shown once), and one webhook's panel: its settings, pause
// and resume (with the held count), rotate, test, delete, and its delivery log.
import { state, h, $, api, tpath, enc, table, time, text, badge, plainList, loading, listError, action, stale,
  statusCode, secretBox, plural } from './admin.ui.js';
import { webhookForm } from './admin.webhookform.js';
import { deliveryLog, recoverForm, stopLog } from './admin.deliveries.js';

let openId = null;
const panel = () => $('#panel-webhooks');

export function resetWebhooks() {
  openId = null;
  stopLog();
  for (const id of ['#webhook-secret', '#webhook-editor', '#webhook-detail']) $(id).replaceChildren();
}

function stateBadge(w) {
  if (w.disabled_reason) return h('span', {}, badge('disabled', 'bad'), h('small', { class: 'muted block', text: w.disabled_reason }));
  return w.is_active ? badge('active') : badge('paused', 'pending');
}

export async function loadWebhooks(params) {
  const tid = state.tenantId, list = $('.list', panel());
  loading(list);
  try {
    const { webhooks } = await api('GET', tpath('/webhooks'));
    if (stale(tid)) return;
    list.replaceChildren(table(['URL', 'Events', 'State', 'Held', 'Last delivery', 'Failures', 'Secret'], webhooks, (w) => [
      h('span', { class: 'url' }, h('button', { type: 'button', class: 'link', text: w.url, 'aria-pressed': String(openId === w.id), 'data-id': w.id,
        'aria-label': `Open webhook ${w.url}`, onclick: () => openWebhook(w.id) }),
      w.description ? h('small', { class: 'muted block', text: w.description }) : ''),
      plainList(w.event_types), stateBadge(w), String(w.held_count),
      w.last_delivery_at ? h('span', {}, time(w.last_delivery_at), ' ', statusCode(w.last_delivery_status)) : text(null),
      String(w.consecutive_failures), h('code', { text: w.signing_secret_prefix + '…' }),
    ], 'No webhooks yet.'));
    const want = params && params.get('w');
    if (want && want !== openId && webhooks.some((w) => w.id === want)) await openWebhook(want);
  } catch (e) { listError(list, e); }
}

$('#webhook-new').addEventListener('click', () => {
  const box = $('#webhook-editor');
  box.replaceChildren(webhookForm(null, async (r) => {
    box.replaceChildren();
    showSecret(`Signing secret of ${r.webhook.url}`, r.secret);
    await loadWebhooks();
    await openWebhook(r.webhook.id);
  }, () => box.replaceChildren()));
  $('input', box).focus();
});
function showSecret(title, secret) {
  const box = secretBox(title, secret);
  $('#webhook-secret').replaceChildren(box);
  $('input', box).select();
}

// ---- one webhook -------------------------------------------------------------------------
const hookPath = (id, suffix = '') => tpath(`/webhooks/${enc(id)}${suffix}`);

async function openWebhook(id) {
  const tid = state.tenantId, d = $('#webhook-detail');
  if (openId !== id) stopLog();
  openId = id;
  for (const b of panel().querySelectorAll('.list button[aria-pressed]')) b.setAttribute('aria-pressed', String(b.dataset.id === id));
  try {
    const { webhook: w } = await api('GET', hookPath(id));
    if (stale(tid) || openId !== id) return;
    const fresh = !d.firstChild || d.dataset.id !== id;
    d.dataset.id = id;
    const head = $('.webhook-head', d);
    if (fresh || !head) {
      d.replaceChildren(headView(w), h('div', { class: 'delivery-log' }), h('div', { class: 'recover' }));
      deliveryLog($('.delivery-log', d), id, () => refreshHead(id));
      $('.recover', d).append(recoverForm(id, () => deliveryLog($('.delivery-log', d), id, () => refreshHead(id), true)));
      $('h3', d).focus();
    } else head.replaceWith(headView(w));
  } catch (e) { listError(d, e); }
}
async function refreshHead(id) {
  if (openId !== id) return;
  await openWebhook(id);
}
// After an action: the list, the webhook's panel and its log (filters kept).
async function reloadAll(id) {
  await loadWebhooks();
  await openWebhook(id);
  const log = $('#webhook-detail .delivery-log');
  if (log && openId === id) await deliveryLog(log, id, () => refreshHead(id), true);
}

function headView(w) {
  const pair = (k, v) => h('div', {}, h('dt', { text: k }), h('dd', {}, v));
  const filter = w.filter && Object.keys(w.filter).length
    ? Object.entries(w.filter).map(([k, v]) => `${k}: ${v.join(', ')}`).join('; ') : null;
  const headers = Object.keys(w.headers || {}).length ? Object.entries(w.headers).map(([k, v]) => `${k}: ${v}`).join('; ') : null;
  const patch = (body) => api('PATCH', hookPath(w.id), body);
  const actions = h('div', { class: 'actions' },
    w.is_active
      ? action('Pause', async () => { await patch({ is_active: false }); await reloadAll(w.id); })
      : action(w.held_count ? `Resume and deliver ${plural(w.held_count, 'held event')}` : 'Resume', async () => {
        await patch({ is_active: true });
        await reloadAll(w.id);
      }),
    !w.is_active && w.held_count ? action('Resume, discard held', async () => {
      if (!confirm(`Cancel the ${plural(w.held_count, 'held delivery', 'held deliveries')} and resume?`)) return;
      await patch({ is_active: true, discard_held: true });
      await reloadAll(w.id);
    }, 'danger') : '',
    action('Send test event', async () => {
      const r = await api('POST', hookPath(w.id, '/test'));
      $('.webhook-note').textContent = `Test event queued (delivery ${r.delivery_id}).`;
      deliveryLog($('#webhook-detail .delivery-log'), w.id, () => refreshHead(w.id), true);
    }),
    action('Edit', async () => editWebhook(w)),
    action('Rotate secret', async () => {
      const raw = prompt('Hours the previous secret keeps signing alongside the new one (0–168; empty: the server default).', '');
      if (raw === null) return;
      const r = await api('POST', hookPath(w.id, '/rotate-secret'), raw.trim() === '' ? {} : { overlap_hours: Number(raw) });
      showSecret(`New signing secret of ${w.url}`, r.secret);
      await reloadAll(w.id);
    }),
    action('Delete', async () => {
      if (!confirm(`Delete the webhook ${w.url}? Its pending and held deliveries are cancelled.`)) return;
      await api('DELETE', hookPath(w.id));
      resetWebhooks();
      await loadWebhooks();
    }, 'danger'),
    action('Refresh', async () => reloadAll(w.id)));
  return h('section', { class: 'card stack webhook-head', 'data-held': String(w.held_count), 'aria-labelledby': 'webhook-h' },
    h('div', { class: 'row' }, h('h3', { id: 'webhook-h', class: 'grow url-title', tabindex: '-1', text: w.url }),
      h('button', { type: 'button', class: 'secondary', text: 'Close', onclick: () => { resetWebhooks(); loadWebhooks(); } })),
    h('dl', { class: 'facts' },
      pair('State', stateBadge(w)), pair('Held deliveries', h('span', { class: 'held-count', text: String(w.held_count) })),
      pair('Events', w.event_types.join(', ')), pair('Description', text(w.description)),
      pair('Timeout', `${w.timeout_seconds} s`), pair('Retries', String(w.retry_attempts)),
      pair('Most at once', String(w.max_concurrency)), pair('Most a minute', text(w.rate_limit_per_minute)),
      pair('Filter', text(filter)), pair('Headers', text(headers)),
      pair('Failures in a row', String(w.consecutive_failures)),
      pair('Last delivery', w.last_delivery_at ? h('span', {}, time(w.last_delivery_at), ' ', statusCode(w.last_delivery_status)) : text(null)),
      pair('Secret', h('code', { text: w.signing_secret_prefix + '…' })),
      pair('Previous secret signs until', time(w.previous_secret_expires_at)),
      pair('Created', time(w.created_at)), pair('Id', h('code', { text: w.id }))),
    actions,
    h('p', { class: 'notice webhook-note', role: 'status' }));
}

function editWebhook(w) {
  const box = $('#webhook-editor');
  box.replaceChildren(webhookForm(w, async (r) => {
    box.replaceChildren();
    if (r.secret) showSecret(`New signing secret of ${w.url}`, r.secret);
    await reloadAll(w.id);
  }, () => box.replaceChildren()));
  box.scrollIntoView({ block: 'start' });
  $('input', box).focus();
}
