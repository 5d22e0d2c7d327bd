// A webhook's delivery log: filters, cursor paging, each delivery's attempts (status, latency,
// response excerpt), redeliver, and recover with a dry-run count first.
import { state, h, $, api, tpath, enc, table, time, text, badge, dash, loading, listError, action, statusCode,
  pager, options, onSubmit, plural, dayStart, ENUMS } from './admin.ui.js';

const POLL_MS = 1500, POLLS = 40;
let log = null; // {root, id, filters, cursor, back, next, polls, timer, onChange}

export function stopLog() {
  if (log) clearTimeout(log.timer);
  log = null;
}

// Shows the log of webhook `id` in `root`; `onChange` runs when a delivery settles (the
// webhook's counts moved). `keep` keeps the filters and restarts the polling.
export function deliveryLog(root, id, onChange, keep) {
  const same = log && log.id === id && log.root === root;
  if (!(keep && same)) {
    stopLog();
    log = { root, id, filters: {}, cursor: null, back: [], polls: 0, onChange };
    root.replaceChildren(h('h4', { text: 'Deliveries' }), filterForm(), h('div', { class: 'log-list' }), h('div', { class: 'attempts' }));
  }
  log.polls = keep ? 1 : 0; // after an action, the webhook's counts refresh once the log settles
  return loadLog();
}

function filterForm() {
  const form = h('form', { class: 'filters log-filters', 'aria-label': 'Delivery filters' },
    h('label', {}, 'Status', h('select', { name: 'status' }, options(state.meta.delivery_statuses, '', 'any'))),
    h('label', {}, 'Event', h('select', { name: 'event' }, options(ENUMS.event_types.concat('webhook.test'), '', 'any'))),
    h('label', {}, 'HTTP status', h('input', { name: 'response_status', type: 'number', min: '100', max: '599', inputmode: 'numeric' })),
    h('label', {}, 'Since', h('input', { name: 'since', type: 'date' })),
    h('button', { type: 'submit', class: 'secondary', text: 'Filter' }));
  const apply = () => {
    const e = form.elements;
    log.filters = { status: e.status.value, event: e.event.value, response_status: e.response_status.value, since: dayStart(e.since.value) };
    log.cursor = null;
    log.back = [];
    return loadLog();
  };
  form.addEventListener('change', (ev) => { if (ev.target.tagName === 'SELECT') apply(); });
  onSubmit(form, apply);
  return form;
}

async function loadLog() {
  const cur = log;
  if (!cur) return;
  clearTimeout(cur.timer);
  const list = $('.log-list', cur.root);
  if (!list.firstChild) loading(list);
  const p = new URLSearchParams({ limit: '20' });
  for (const [k, v] of Object.entries(cur.filters)) if (v) p.set(k, v);
  if (cur.cursor) p.set('cursor', cur.cursor);
  try {
    const r = await api('GET', tpath(`/webhooks/${enc(cur.id)}/deliveries?${p}`));
    if (log !== cur) return;
    cur.next = r.next_cursor;
    list.replaceChildren(table(['Event', 'Status', 'Attempts', 'HTTP', 'Latency', 'Created', 'Delivered', 'Next attempt', ''], r.data, (d) => [
      text(d.event), h('span', { class: 'delivery-status', 'data-status': d.status }, badge(d.status)), String(d.attempts),
      statusCode(d.response_status), d.latency_ms == null ? dash() : h('span', { class: 'nowrap', text: `${d.latency_ms} ms` }),
      time(d.created_at), time(d.delivered_at), time(d.next_attempt_at),
      h('span', { class: 'actions' },
        action('Attempts', async () => showAttempts(cur, d.id), 'secondary', `Attempts of delivery ${d.id}`),
        ['delivered', 'failed', 'cancelled'].includes(d.status) ? action('Redeliver', async () => redeliver(cur, d.id), 'secondary', `Redeliver ${d.id}`) : ''),
    ], 'No deliveries.'), pager(cur, loadLog));
    // Deliveries in flight settle within seconds: watch them for a while, then stop.
    const moving = r.data.some((d) => d.status === 'pending' || d.status === 'delivering');
    if (moving && cur.polls++ < POLLS) cur.timer = setTimeout(loadLog, POLL_MS);
    else if (cur.polls > 0 && !moving) { cur.polls = 0; cur.onChange(); }
  } catch (e) { listError(list, e); }
}

async function redeliver(cur, id) {
  await api('POST', tpath(`/webhooks/${enc(cur.id)}/deliveries/${enc(id)}/redeliver`));
  cur.polls = 1; // a settled redelivery refreshes the webhook's counts
  await loadLog();
}

async function showAttempts(cur, id) {
  const box = $('.attempts', cur.root);
  loading(box);
  const r = await api('GET', tpath(`/webhooks/${enc(cur.id)}/deliveries/${enc(id)}`));
  const d = r.delivery;
  box.replaceChildren(h('section', { class: 'card stack', 'aria-labelledby': 'attempts-h' },
    h('div', { class: 'row' }, h('h4', { id: 'attempts-h', class: 'grow', tabindex: '-1', text: `Delivery ${d.id}: ${d.event}, ${d.status}` }),
      action('Redeliver', async () => { await redeliver(cur, d.id); await showAttempts(cur, d.id); }),
      h('button', { type: 'button', class: 'secondary', text: 'Close', onclick: () => box.replaceChildren() })),
    table(['#', 'Started', 'Result', 'Latency', 'Response'], r.attempts, (a) => [
      String(a.number), time(a.started_at),
      a.error && a.error !== 'http_status' ? badge(a.error, 'bad') : statusCode(a.response_status),
      h('span', { class: 'nowrap attempt-latency', text: `${a.latency_ms} ms` }),
      a.response_body_excerpt ? h('pre', { class: 'excerpt', text: a.response_body_excerpt }) : dash(),
    ], 'No attempts yet.')));
  $('h4', box).focus();
}

// Recover: count first (dry run), then re-queue what was counted.
export function recoverForm(id, onDone) {
  const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const form = h('form', { class: 'card stack recover-form' },
    h('h4', { text: 'Recover failed deliveries' }),
    h('div', { class: 'fields' },
      h('label', {}, 'Since', h('input', { name: 'since', type: 'datetime-local', required: true, value: local(new Date(Date.now() - 86400000)) })),
      h('label', {}, 'Until (optional)', h('input', { name: 'until', type: 'datetime-local' }))),
    h('fieldset', {}, h('legend', { text: 'Deliveries that' }),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'statuses', value: 'failed', checked: true }), ' failed'),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'statuses', value: 'cancelled' }), ' were cancelled')),
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'secondary', text: 'Count (dry run)' })),
    h('p', { class: 'error', role: 'alert' }),
    h('div', { class: 'recover-result', role: 'status' }));
  const body = (dry) => {
    const e = form.elements, b = { since: new Date(e.since.value).toISOString(), dry_run: dry };
    if (e.until.value) b.until = new Date(e.until.value).toISOString();
    b.statuses = [...e.statuses].filter((c) => c.checked).map((c) => c.value);
    return b;
  };
  const path = tpath(`/webhooks/${enc(id)}/recover`);
  const result = $('.recover-result', form);
  onSubmit(form, async () => {
    const { would_requeue: n } = await api('POST', path, body(true));
    result.replaceChildren(h('p', { text: `${plural(n, 'delivery', 'deliveries')} would be re-queued.` }),
      n ? action(`Re-queue ${plural(n, 'delivery', 'deliveries')}`, async () => {
        const r = await api('POST', path, body(false));
        result.replaceChildren(h('p', { text: `${plural(r.requeued, 'delivery', 'deliveries')} re-queued.` }));
        await onDone();
      }) : '');
  });
  form.addEventListener('change', () => result.replaceChildren());
  return form;
}
