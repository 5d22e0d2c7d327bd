// The tenant's event log (spec §11.4), oldest first as the API pages it, with a type filter.
import { state, h, $, api, tpath, table, time, text, badge, loading, listError, options, stale, action, ENUMS } from './admin.ui.js';

let cursor = null;

export function resetEvents() {
  cursor = null;
  $('#panel-events .list').replaceChildren();
}

function eventRow(e) {
  const lead = e.data && e.data.lead;
  const about = lead ? lead.contact_email || lead.contact_name || lead.id
    : e.data && e.data.webhook ? e.data.webhook.url : null;
  const raw = h('pre', { class: 'excerpt', hidden: true, text: JSON.stringify(e.data, null, 2) });
  return [badge(e.type, 'neutral'), time(e.occurred_at), text(about),
    h('span', {}, h('button', { type: 'button', class: 'secondary', text: 'Body', 'aria-expanded': 'false',
      onclick: (ev) => { raw.hidden = !raw.hidden; ev.target.setAttribute('aria-expanded', String(!raw.hidden)); } }), raw)];
}

export async function loadEvents(more) {
  const tid = state.tenantId, list = $('#panel-events .list');
  const type = $('#event-type').value;
  const p = new URLSearchParams({ limit: '50' });
  if (type) p.set('types', type);
  if (more && cursor) p.set('after', cursor);
  if (!more) loading(list);
  try {
    const r = await api('GET', tpath('/events?' + p));
    if (stale(tid)) return;
    cursor = r.next_cursor;
    const rows = table(['Type', 'Occurred', 'About', ''], r.events, eventRow, more ? '' : 'No events yet.');
    if (!more) list.replaceChildren();
    $('.more', list)?.remove();
    list.append(rows);
    if (r.has_more) list.append(h('p', { class: 'more' }, action('Show more', async () => loadEvents(true))));
  } catch (e) { listError(list, e); }
}

const select = $('#event-type');
select.append(...options(ENUMS.event_types, ''));
select.addEventListener('change', () => loadEvents(false));
