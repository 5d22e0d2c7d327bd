// The admin page end to end, in headless Chromium, against a real leadbase server (started by
// tests/api/admin_page.rs, which passes BASE, ADMIN_TOKEN, RECEIVER and OUT).
//
// At 1280 px the whole story runs: sign in, tenant, key (the key then drives the public API),
// a 1,000-row CSV import through its preview, a lead's detail and a new interaction, a webhook
// to the HTTPS receiver with a test event, its attempt and a redelivery, pause (a held
// delivery), resume, a second webhook whose receiver answers 500 (its failed attempts and the
// overview's list of webhooks that need attention), the overview's charts, and the CSV export.
// Then by keyboard alone: sign in, a tenant, its tabs (arrow keys), a form. At 360 px the key
// views run again: overview, leads, an import preview, the delivery log; none may scroll
// sideways.
// Any console error, page error, or request to another origin fails the run.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const { BASE, ADMIN_TOKEN, RECEIVER, RECEIVER_DOWN, OUT } = process.env;
for (const [k, v] of Object.entries({ BASE, ADMIN_TOKEN, RECEIVER, RECEIVER_DOWN, OUT })) if (!v) throw new Error(`${k} is not set`);
const ORIGIN = new URL(BASE).origin;
const ROWS = 1000;
mkdirSync(OUT, { recursive: true });

const problems = [];
let expectedHttpErrors = 0; // a step that provokes an API error says so first
const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${msg}`);
function check(ok, msg) { if (!ok) throw new Error(msg); }

// Polls fn until it returns a truthy value.
async function until(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e.message; }
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

// ---- the public API, from node, with the key the page issued -------------------------------
async function publicApi(key, tenant, method, path, body) {
  const res = await fetch(BASE + path, {
    method, headers: { Authorization: 'Bearer ' + key, 'x-customer-id': tenant, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const json = await res.json();
  check(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// 1,000 rows: 3 match leads made through the API (updated), every 50th row from the 8th has a
// bad email and no phone, every 50th from the 24th has no contact at all (both failed).
function csv() {
  const lines = ['Full Name,Email,Phone,Budget,Lead Line'];
  let failed = 0;
  for (let i = 0; i < ROWS; i++) {
    const phone = `206555${String(i).padStart(4, '0')}`;
    if (i % 50 === 7) { lines.push(`"Bad, Email ${i}",not-an-email,,${i},buyer`); failed++; } else if (i % 50 === 23) { lines.push(`,,,${i},seller`); failed++; } else lines.push(`Person ${i},person${i}@e2e.test,${phone},${i * 10},${i % 2 ? 'seller' : 'buyer'}`);
  }
  return { text: lines.join('\r\n') + '\r\n', failed, updated: 3, created: ROWS - failed - 3 };
}

function watch(page, label) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expectedHttpErrors > 0 && /^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) { expectedHttpErrors--; return; }
    problems.push(`${label} console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${label} page error: ${e.message}`));
  page.on('request', (r) => {
    const url = r.url();
    let origin = 'null';
    try { origin = new URL(url).origin; } catch (_) { /* unparsable: another origin */ }
    if (origin !== ORIGIN) problems.push(`${label} request to another origin: ${url}`);
  });
  page.on('dialog', (d) => d.accept());
}
async function noSideScroll(page, view) {
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= inner, `${view}: the page scrolls sideways (${scroll} px wide in a ${inner} px window)`);
}
const shot = (page, name) => page.screenshot({ path: join(OUT, name), fullPage: true });
// At 360 px a whole page is many screens long: the view itself, then.
const shotOf = (page, selector, name) => page.locator(selector).screenshot({ path: join(OUT, name) });
const count = async (page, kind) => Number((await page.locator(`.import-counts [data-count=${kind}] dd`).last().textContent()).replace(/,/g, ''));

async function signIn(page) {
  await page.goto(BASE + '/admin');
  await page.fill('#signin-token', ADMIN_TOKEN);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#app-view:not([hidden])');
}
async function openTab(page, tab) {
  await page.click(`#tab-${tab}`);
  await page.waitForSelector(`#panel-${tab}:not([hidden])`);
}

// ---- the whole story at 1280 px ------------------------------------------------------------
async function fullPass(browser, data) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  watch(page, '1280');
  await signIn(page);
  log('signed in');

  await page.fill('#new-tenant', 'Acme e2e');
  await page.click('#tenant-form button[type=submit]');
  await page.waitForSelector('#panel-keys:not([hidden])');
  const tenant = (await page.textContent('#tenant-id')).trim();
  await page.fill('#key-form input[name=name]', 'e2e key');
  await page.click('#key-form button[type=submit]');
  const key = await page.inputValue('#new-token .secret-value');
  check(/^mega_[0-9a-f]{64}$/.test(key), `the page showed a token: ${key}`);
  await page.click('#new-token button:text("Done")');
  log(`tenant ${tenant} and a key`);

  await openTab(page, 'fields');
  await page.fill('#panel-fields input[name=slug]', 'budget');
  await page.fill('#panel-fields input[name=name]', 'Budget');
  await page.selectOption('#panel-fields select[name=type]', 'number');
  await page.click('#panel-fields button[type=submit]');
  await page.waitForSelector('#panel-fields td:text("budget")');

  for (let i = 0; i < 3; i++) {
    await publicApi(key, tenant, 'POST', '/api/agents/crm/leads', { contact_name: `Early ${i}`, contact_email: `person${i}@e2e.test` });
  }
  log('3 leads through the public API');

  // Import: preview (dry run) first, then the real thing.
  await openTab(page, 'leads');
  await page.waitForSelector('#panel-leads [data-total="3"]');
  await page.click('#lead-import-open');
  await page.setInputFiles('#import-file', { name: 'leads.csv', mimeType: 'text/csv', buffer: Buffer.from(data.text) });
  await page.waitForSelector('#import-mapping');
  check(await page.inputValue('#import-mapping select[name=col0]') === 'contact_name', 'Full Name maps to the name');
  check(await page.inputValue('#import-mapping select[name=col3]') === 'cf:budget', 'Budget maps to the custom field');
  await page.click('#import-mapping button[type=submit]');
  await page.waitForSelector('[data-dry-run=true] .import-counts');
  const preview = { created: await count(page, 'created'), updated: await count(page, 'updated'), failed: await count(page, 'failed') };
  check(preview.created === data.created && preview.updated === data.updated && preview.failed === data.failed,
    `preview counts ${JSON.stringify(preview)}, expected ${JSON.stringify({ ...data, text: undefined })}`);
  check(await page.locator('[data-dry-run=true] tbody tr').count() === data.failed, 'the preview lists the failed rows');
  check((await page.textContent('[data-dry-run=true] tbody')).includes('email'), 'a failed row says why');
  const leadsBefore = await (await fetch(`${BASE}/api/agents/crm/leads?limit=1`, { headers: { Authorization: 'Bearer ' + key, 'x-customer-id': tenant } })).json();
  check(leadsBefore.total === 3, `the preview wrote nothing (total ${leadsBefore.total})`);
  await shot(page, 'import-preview-1280.png');
  log(`preview: ${JSON.stringify(preview)}`);

  await page.click('#import-confirm');
  await page.waitForSelector('[data-dry-run=false] .import-counts', { timeout: 30000 });
  const done = { created: await count(page, 'created'), updated: await count(page, 'updated'), failed: await count(page, 'failed') };
  check(JSON.stringify(done) === JSON.stringify(preview), `import counts ${JSON.stringify(done)} differ from the preview`);
  check(await page.getAttribute('progress[aria-label="Import progress"]', 'value') === String(ROWS), 'the progress bar is full');
  const total = data.created + 3;
  await page.waitForSelector(`#panel-leads .list [data-total="${total}"]`);
  check(await page.locator('#panel-leads .list tbody tr').count() === 20, 'a page of 20 leads');
  log(`imported: ${JSON.stringify(done)}`);
  await page.click('#lead-import button:text("Close")');
  await shot(page, 'leads-1280.png');
  const firstRow = await page.textContent('#panel-leads .list tbody tr');
  await page.click('#panel-leads button:text("Next page")');
  await page.waitForSelector('#panel-leads button:text("Previous page")');
  check(await page.textContent('#panel-leads .list tbody tr') !== firstRow, 'the next page holds other leads');
  await page.click('#panel-leads button:text("First page")');
  await page.waitForSelector('#panel-leads .list .pager:not(:has-text("Previous page"))');

  // Search as you type, then one lead's detail and a new interaction.
  await page.fill('#lead-q', 'person777@');
  await page.waitForSelector('#panel-leads .list [data-total="1"]');
  await page.click('#panel-leads .list tbody button.link');
  await page.waitForSelector('#lead-detail:not([hidden]) .timeline');
  check((await page.textContent('#lead-detail')).includes('7770'), 'the detail shows the custom field');
  await page.selectOption('#lead-detail select[name=type]', 'call');
  await page.fill('#lead-detail input[name=summary]', 'Called about the budget');
  await page.click('#lead-detail .interaction-form button[type=submit]');
  await page.waitForSelector('#lead-detail .timeline .interaction:has-text("Called about the budget")');
  check(await page.textContent('#lead-detail .interaction-count') === '1', 'the detail counts the interaction');
  log('lead detail and an interaction');

  await page.click('#lead-detail button:text-is("Edit")');
  await page.selectOption('.lead-form select[name=status]', 'won');
  await page.fill('.lead-form input[name="cf:budget"]', '1234');
  await page.click('.lead-form button[type=submit]');
  await page.waitForSelector('#lead-detail .notice:text("Saved.")');
  const edited = await page.textContent('#lead-detail');
  check(edited.includes('won') && edited.includes('1234'), 'the edit shows in the detail');

  await page.click('#lead-new');
  await page.fill('.lead-form input[name=contact_name]', 'Made on the page');
  await page.fill('.lead-form input[name=contact_email]', 'page@e2e.test');
  await page.click('.lead-form button[type=submit]');
  await page.waitForSelector('#lead-detail .notice:text("Lead created.")');
  await page.click('#lead-detail button:text-is("Delete")'); // the confirmation is accepted
  await page.waitForSelector('#lead-detail', { state: 'hidden' });
  log('edit, create and delete');

  // Export of the current filter (one lead) as CSV, through a Blob URL.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#lead-export')]);
  const exported = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  check(exported.length === 2 && exported[0].includes('cf_budget') && exported[1].includes('person777@e2e.test'),
    `the export holds the header and the one lead: ${exported.join(' | ')}`);
  log('export');

  // A webhook to the HTTPS receiver: test event, attempt, redeliver.
  await openTab(page, 'webhooks');
  await page.click('#webhook-new');
  // An API error reads as the API's own words, next to the form.
  expectedHttpErrors = 1;
  await page.fill('.webhook-form input[name=url]', 'http://127.0.0.1:9/plain-http');
  await page.click('.webhook-form button[type=submit]');
  await page.waitForSelector('.webhook-form .error:not(:empty)');
  const refused = await page.textContent('.webhook-form .error');
  check(/https/i.test(refused) && !/HTTP 400/.test(refused), `the refusal is in plain words: ${refused}`);
  // The console line of that 400 comes as it is answered; any other 4xx from here on fails.
  await until('the refused request reached the console', () => expectedHttpErrors === 0);
  expectedHttpErrors = 0;
  await page.fill('.webhook-form input[name=url]', RECEIVER);
  await page.fill('.webhook-form input[name=description]', 'e2e receiver');
  await page.click('.webhook-form button[type=submit]');
  const secret = await page.inputValue('#webhook-secret .secret-value');
  check(secret.startsWith('mega_whsec_'), `the secret is shown once: ${secret}`);
  await page.waitForSelector('#webhook-detail .webhook-head');
  await page.click('#webhook-detail button:text("Send test event")');
  await page.waitForSelector('#webhook-detail .log-list [data-status=delivered]');
  await page.click('#webhook-detail .log-list button:text("Attempts")');
  await page.waitForSelector('#webhook-detail .attempts tbody tr');
  const attempt = await page.textContent('#webhook-detail .attempts tbody tr');
  check(attempt.includes('200') && / ms/.test(attempt), `the attempt shows its status and latency: ${attempt}`);
  await shot(page, 'delivery-log-1280.png');
  await page.click('#webhook-detail .attempts button:text("Redeliver")');
  await until('a second attempt after redeliver', async () => {
    await page.click('#webhook-detail .log-list button:text("Attempts")');
    await page.waitForSelector('#webhook-detail .attempts tbody tr');
    return (await page.locator('#webhook-detail .attempts tbody tr').count()) >= 2;
  });
  log('test event delivered and redelivered');

  // Pause: a new lead is held; resume: it is delivered.
  await page.click('#webhook-detail button:text-is("Pause")');
  await page.waitForSelector('#webhook-detail .badge:text("paused")');
  await publicApi(key, tenant, 'POST', '/api/agents/crm/leads', { contact_name: 'While paused', contact_email: 'paused@e2e.test' });
  await until('the held count', async () => {
    await page.click('#webhook-detail button:text-is("Refresh")');
    return (await page.textContent('#webhook-detail .held-count')) === '1';
  });
  await page.click('#webhook-detail button:text("Resume and deliver 1 held event")');
  await page.waitForSelector('#webhook-detail .badge:text-is("active")');
  await until('the held delivery delivered', async () => {
    const rows = page.locator('#webhook-detail .log-list tbody tr', { hasText: 'lead.created' });
    return (await rows.count()) === 1 && (await rows.locator('[data-status=delivered]').count()) === 1;
  });
  log('paused, held, resumed, delivered');

  // Edit the limits and add a header; count what recover would re-queue (nothing failed).
  await page.click('#webhook-detail button:text-is("Edit")');
  await page.fill('.webhook-form input[name=rate_limit_per_minute]', '600');
  await page.click('.webhook-form summary');
  await page.fill('.webhook-form textarea[name=headers]', 'X-Team: e2e');
  await page.click('.webhook-form button[type=submit]');
  await page.waitForSelector('#webhook-detail .webhook-head:has-text("x-team: e2e")');
  check((await page.textContent('#webhook-detail .webhook-head')).includes('600'), 'the rate limit shows');
  await page.click('.recover-form button[type=submit]');
  await page.waitForSelector('.recover-result:has-text("0 deliveries would be re-queued")');
  await page.click('#webhook-detail button:text-is("Rotate secret")'); // the prompt is answered empty: the default overlap
  await until('a new secret', async () => {
    const now = await page.inputValue('#webhook-secret .secret-value');
    return now !== secret && now.startsWith('mega_whsec_');
  });
  await page.locator('#webhook-detail .facts > div', { hasText: 'Previous secret signs until' }).locator('time').waitFor();
  log('edited, rotated, recover counted');

  // A webhook whose receiver answers 500: the attempt shows the status and the body, and the
  // overview lists it as failing.
  await page.click('#webhook-new');
  await page.fill('.webhook-form input[name=url]', RECEIVER_DOWN);
  await page.click('.webhook-form button[type=submit]');
  await page.waitForSelector('#webhook-secret .secret-value');
  await page.click('#webhook-detail button:text("Send test event")');
  await until('a failed attempt', async () => {
    await page.click('#webhook-detail .log-list button:text("Attempts")');
    await page.waitForSelector('#webhook-detail .attempts tbody tr');
    return (await page.textContent('#webhook-detail .attempts tbody tr')).includes('receiver down');
  });
  check((await page.textContent('#webhook-detail .attempts tbody tr')).includes('500'), 'the failed attempt shows its status');
  log('a failing webhook');

  await openTab(page, 'events');
  await page.waitForSelector('#panel-events td:has-text("interaction.created")');
  await page.selectOption('#event-type', 'lead.deleted');
  await page.waitForSelector('#panel-events tbody tr:has-text("lead.deleted")');
  check(await page.locator('#panel-events tbody tr').count() === 1, 'the event log filters by type');
  log('event log');

  // The overview's charts count what happened.
  await openTab(page, 'overview');
  const chart = '#tenant-overview svg[data-total-delivered]';
  await until('the delivery chart', async () => {
    await page.click('#tenant-overview button:text("Refresh")');
    await page.waitForSelector(chart);
    return Number(await page.getAttribute(chart, 'data-total-delivered')) >= 3;
  });
  const label = await page.getAttribute(chart, 'aria-label');
  check(/delivered/.test(label) && (await page.getAttribute(chart, 'role')) === 'img', `the chart is labelled: ${label}`);
  check(Number(await page.getAttribute(chart, 'data-total-failed')) >= 1, 'the chart counts the failed attempt');
  await page.waitForSelector(`#tenant-overview .attention a:text-is("${RECEIVER_DOWN}")`);
  check((await page.textContent('#tenant-overview .attention tbody')).includes('failing'), 'the failing webhook needs attention');
  const leadsChart = '#tenant-overview svg[data-total-leads]';
  check(Number(await page.getAttribute(leadsChart, 'data-total-leads')) >= 4, 'the leads chart counts the new leads');
  await shot(page, 'overview-1280.png');
  log(`overview: ${label}`);
  await context.close();
  return { tenant, key };
}

// ---- by keyboard alone ---------------------------------------------------------------------
// Presses Tab until the focus is on `selector`.
async function tabTo(page, selector, presses = 100) {
  for (let i = 0; i < presses; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => !!document.activeElement?.matches(s), selector)) return;
  }
  throw new Error(`${selector}: not reached by Tab in ${presses} presses`);
}
// Sign in, open the tenant, move between tabs and open a form with the keys only.
async function keyboardPass(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  watch(page, 'keyboard');
  // A key pressed, then what it must show.
  const press = async (key, shown) => {
    await page.keyboard.press(key);
    await page.waitForSelector(shown);
  };
  await page.goto(BASE + '/admin');
  await tabTo(page, '#signin-token');
  await page.keyboard.type(ADMIN_TOKEN);
  await press('Enter', '#app-view:not([hidden])');
  await tabTo(page, '#tenant-list a');
  await press('Enter', '#tenant-detail:not([hidden])');
  await tabTo(page, '[role=tab][aria-selected=true]');
  await press('End', '#panel-events:not([hidden])');
  await press('ArrowLeft', '#panel-webhooks:not([hidden])');
  await tabTo(page, '#webhook-new');
  await press('Enter', '.webhook-form');
  await tabTo(page, '.webhook-form input[name=url]');
  log('keyboard only: sign in, a tenant, its tabs, a form');
  await context.close();
}

// ---- the key views at 360 px ---------------------------------------------------------------
async function narrowPass(browser, data) {
  const context = await browser.newContext({ viewport: { width: 360, height: 780 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  watch(page, '360');
  await signIn(page);
  await page.waitForSelector('#server-overview svg[data-total-delivered]');
  await noSideScroll(page, 'server overview');
  await page.click('#tenant-list a');
  await page.waitForSelector('#tenant-overview svg[data-total-delivered]');
  await noSideScroll(page, 'tenant overview');
  await shot(page, 'overview-360.png');

  await openTab(page, 'leads');
  await page.waitForSelector('#panel-leads .list tbody tr');
  await noSideScroll(page, 'leads');
  await page.$eval('#lead-filters', (el) => el.scrollIntoView());
  await page.screenshot({ path: join(OUT, 'leads-360.png') }); // the filters and the first leads

  await page.click('#lead-import-open');
  await page.setInputFiles('#import-file', { name: 'again.csv', mimeType: 'text/csv', buffer: Buffer.from(data.text) });
  await page.click('#import-mapping button[type=submit]');
  await page.waitForSelector('[data-dry-run=true] .import-counts');
  check(await count(page, 'failed') === data.failed && await count(page, 'updated') === ROWS - data.failed,
    'a second preview: every good row now matches a lead');
  await noSideScroll(page, 'import preview');
  await shotOf(page, '#lead-import', 'import-preview-360.png');

  await openTab(page, 'webhooks');
  await page.click(`#panel-webhooks .list button.link:text-is("${RECEIVER}")`);
  await page.waitForSelector('#webhook-detail .log-list [data-status=delivered]');
  await page.click('#webhook-detail .log-list button:text("Attempts")');
  await page.waitForSelector('#webhook-detail .attempts tbody tr');
  await noSideScroll(page, 'delivery log');
  await shotOf(page, '#webhook-detail .delivery-log', 'delivery-log-360.png');
  log('360 px views');
  await context.close();
}

// A hung step must not hang cargo test: the whole run has a deadline (Playwright closes the
// browser when the process exits).
// About 15 s alone; the limit allows for the rest of `cargo test` beside it on 2 cores.
setTimeout(() => { console.error('FAILED: the browser test took over 300 s'); process.exit(1); }, 300000).unref();

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failure = null;
try {
  const data = csv();
  await fullPass(browser, data);
  await keyboardPass(browser);
  await narrowPass(browser, data);
} catch (e) { failure = e; } finally { await browser.close(); }
if (failure) console.error(`FAILED: ${failure.stack || failure}`);
for (const p of problems) console.error(p);
if (failure || problems.length) process.exit(1);
log('all passed');
