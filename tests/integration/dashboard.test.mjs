// The dashboard in a real browser (Debian's chromium, headless, driven by playwright-core)
// against the real server: sign-in, a call placed in simulation mode, a validation error next
// to its field, a simulated inbound call appearing live with its transcript filling in, a
// transfer through the fake Twilio REST API, the day's chart, and which platform carried each
// call. In every test a JavaScript
// error, a console error or a request leaving localhost fails the test; each test saves a
// screenshot into SB_TEST_OUTPUT.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, cleanup, tempDir, sqlite } from './lib/harness.mjs';
import { JWT_SECRET, token } from './lib/jwt.mjs';
import { startFakeRealtime } from '../fakes/openai_realtime.mjs';
import { startFakeTwilio, TEST_ACCOUNT } from '../fakes/twilio_api.mjs';
import { makeTestPki } from '../fakes/tls.mjs';
import { simulateCall, tone } from '../../tools/sim/index.mjs';

const OUT = process.env.SB_TEST_OUTPUT || path.join(tmpdir(), 'sb-dashboard-test');
const PUBLIC = 'https://voice.example.com';
const FROM = '+14155550100';
const KEY = 'sk-test-0123456789';
const PRIMARY = 'sip:2000@pbx.example.com;transport=tcp';
const agentToken = () => token({ tenant_id: 1, role: 'agent' });

let browser, realtime, twilio, pkiDir, sim, tw;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  pkiDir = tempDir();
  [browser, realtime, twilio] = await Promise.all([
    chromium.launch({
      executablePath: '/usr/bin/chromium', headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }),
    startFakeRealtime({ apiKey: KEY }),
    startFakeTwilio({ pki: makeTestPki(pkiDir), ownedNumbers: [FROM] }),
  ]);
  const base = { TLS_PORT: 'off', JWT_SECRET, PUBLIC_BASE_URL: PUBLIC, PRIMARY_TRANSFER_TARGET: PRIMARY };
  const simDir = tempDir();
  [sim, tw] = await Promise.all([
    // no Twilio credentials: simulation mode; inbound calls answered by the fake Realtime API, recorded
    startServer({ dir: simDir, env: { ...base, AI_PROVIDER: 'openai', OPENAI_API_KEY: KEY, OPENAI_REALTIME_URL: realtime.url,
      RECORDINGS_DIR: path.join(simDir, 'recordings') } }),
    // Twilio's REST API is the fake, which answers outbound calls and takes live updates
    startServer({ env: { ...base, AI_PROVIDER: 'echo', TWILIO_ACCOUNT_SID: TEST_ACCOUNT.sid, TWILIO_AUTH_TOKEN: TEST_ACCOUNT.authToken,
      TWILIO_PHONE_NUMBER: FROM, TWILIO_API_BASE: twilio.url, TWILIO_CA_FILE: twilio.caFile } }),
  ]);
  twilio.configure({ rewriteUrl: (u) => u.replace(PUBLIC, tw.url) });
});

after(async () => {
  // the pages go first: a page left open would see its server vanish and retry. Everything is
  // closed even when something fails (a fake left open would keep node running), then the
  // first failure is reported.
  const failures = [];
  const attempt = async (fn) => {
    try {
      await fn();
    } catch (e) {
      failures.push(e);
    }
  };
  if (browser) await attempt(() => browser.close());
  for (const s of [sim, tw].filter(Boolean)) {
    await attempt(async () => {
      const r = await s.stop();
      assert.equal(r.code, 0, s.stderr);
    });
    cleanup(s.dir);
  }
  if (realtime) await attempt(() => realtime.close());
  if (twilio) await attempt(() => twilio.close());
  if (pkiDir) cleanup(pkiDir);
  if (failures.length) throw failures[0];
});

const isLocal = (url) => {
  const u = new URL(url);
  return !/^https?:|^wss?:/.test(u.protocol) || u.hostname === '127.0.0.1' || u.hostname === 'localhost';
};

// A fresh browser context (its own session storage) for one test. `allowStatus`: HTTP error
// statuses the test provokes on purpose (Chromium logs each as a console error), `allowConsole`
// other console errors it provokes (patterns). Runs fn,
// saves <name>.png, closes the context, then fails on any JavaScript error, console error or
// request to another host.
async function withPage(name, { allowStatus = [], allowConsole = [] } = {}, fn) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLocal(url)) return route.continue();
    problems.push('request to another host: ' + url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  const stats = { loads: 0, requests: [] };
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const status = /the server responded with a status of (\d+)/.exec(m.text());
    if (status && allowStatus.includes(Number(status[1]))) return;
    if (allowConsole.some((re) => re.test(m.text()))) return;
    problems.push('console error: ' + m.text());
  });
  page.on('load', () => stats.loads++);
  page.on('request', (r) => stats.requests.push(r.url()));
  try {
    await fn(page, stats);
  } finally {
    await page.screenshot({ path: path.join(OUT, name + '.png'), fullPage: true }).catch(() => {});
    await context.close();
  }
  assert.deepEqual(problems, [], problems.join('\n'));
}

async function signIn(page, srv, tok = agentToken()) {
  await page.goto(srv.url + '/');
  await page.getByTestId('token-input').fill(tok);
  await page.getByTestId('sign-in').click();
  await page.locator('[data-testid="calls-table"][data-state="ready"]').waitFor();
  await page.locator('[data-testid="live-status"][data-state="live"]').waitFor();
}

const row = (page, id) => page.locator(`[data-testid="call-row"][data-session="${id}"]`);

async function placeCall(page, { phone = '+14155550123', customer = 'c-1001', agent = 'sales' } = {}) {
  await page.getByTestId('phone-input').fill(phone);
  await page.getByTestId('customer-input').fill(customer);
  await page.getByTestId('agent-type-input').fill(agent);
  await page.getByTestId('call-submit').click();
}

test('sign in by pasting a token; a bad or expired token asks to sign in again', async () => {
  await withPage('sign-in', { allowStatus: [401] }, async (page) => {
    await page.goto(sim.url + '/');
    await page.getByText('switchboard token --tenant 1 --role agent').waitFor(); // how to get a token
    const again = /session has expired or the token is not valid\. Sign in again/;
    for (const bad of [token({ tenant_id: 1, role: 'agent', exp: Math.floor(Date.now() / 1000) - 60 }), token({}, { secret: 'not-the-secret' })]) {
      await page.getByTestId('token-input').fill(bad);
      await page.getByTestId('sign-in').click();
      await page.getByTestId('sign-in-message').filter({ hasText: again }).waitFor();
      assert.equal(await page.getByTestId('calls-table').count(), 0);
    }
    const tok = agentToken();
    await signIn(page, sim, tok);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('switchboard.token')), tok);
    assert.match(await page.getByTestId('who').textContent(), /tenant 1 · agent/);
    // the token expires while signed in (here: replaced by an expired one): back to sign-in, in words
    await page.evaluate((t) => sessionStorage.setItem('switchboard.token', t), token({ tenant_id: 1, role: 'agent', exp: Math.floor(Date.now() / 1000) - 1 }));
    await page.reload();
    await page.getByTestId('sign-in-message').filter({ hasText: again }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('switchboard.token')), null);
  });
});

test('"Call a customer" in simulation mode: the answer says so and the call appears in the list', async () => {
  await withPage('call-simulation', {}, async (page) => {
    await signIn(page, sim);
    await placeCall(page, { customer: 'c-sim-1' });
    const result = page.getByTestId('initiate-result');
    await result.filter({ hasText: 'Simulation mode: no real call was placed.' }).waitFor();
    assert.equal(await result.getAttribute('data-status'), 'simulation');
    const href = await page.getByTestId('initiate-open').getAttribute('href');
    const id = /^#\/calls\/([0-9a-f]{32})$/.exec(href)[1];
    await row(page, id).waitFor();
    assert.equal(await row(page, id).getAttribute('data-status'), 'simulation');
    assert.match(await row(page, id).textContent(), /\+14155550123.*Simulated, not placed/);
    assert.equal(await page.getByTestId('phone-error').textContent(), '');
  });
});

test('a bad phone number: the server\'s validation message next to the phone field', async () => {
  await withPage('phone-validation', { allowStatus: [400] }, async (page) => {
    await signIn(page, sim);
    const before = await page.getByTestId('call-row').count();
    await placeCall(page, { phone: '12ab' });
    const err = page.locator('.field:has([data-testid="phone-input"]) [data-testid="phone-error"]');
    await err.filter({ hasText: /\S/ }).waitFor();
    // the API's own message for this number, as the page received it
    const api = await page.evaluate(async () => {
      const r = await fetch('/api/calls/initiate', { method: 'POST', headers: { Authorization: 'Bearer ' + sessionStorage.getItem('switchboard.token'), 'Content-Type': 'application/json' },
        body: JSON.stringify({ phone: '12ab', customer_id: 'c-1001', agent_type: 'sales' }) });
      return r.json();
    });
    assert.equal(api.error.field, 'phone');
    assert.equal((await err.textContent()).toLowerCase().replace(/\.$/, ''), api.error.message.toLowerCase());
    assert.equal(await page.getByTestId('phone-input').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByTestId('initiate-result').isVisible(), false);
    assert.equal(await page.getByTestId('call-row').count(), before);
  });
});

test('an inbound call appears live, without a reload, and its transcript fills in while it lasts', async () => {
  await withPage('inbound-live', {}, async (page, stats) => {
    await signIn(page, sim);
    const seen = stats.requests.length;
    // the agent greets, the caller says something at 2 s, the agent answers; the caller talks
    // for 7 s, then hangs up (the status callbacks tell the server)
    realtime.script([
      { on: 'response.create', do: 'speak', ms: 800, transcript: 'Hello, thanks for calling.' },
      { after: 'frames', count: 100, do: 'speech_started', stopAfterFrames: 25, reply: { do: 'speak', ms: 800, transcript: 'I see.' } },
    ]);
    const call = simulateCall({ url: sim.url, publicUrl: PUBLIC, from: '+14155550111', to: FROM, statusCallback: '/twilio/status',
      audio: tone(10000, 300), streamAutoStop: false, hangupAfterMs: 7000 });
    try {
      const inbound = page.locator('[data-testid="call-row"][data-direction="inbound"]');
      await inbound.first().waitFor({ timeout: 10000 });
      // it came over the live stream: no page load, no list request since the call started
      assert.equal(stats.loads, 1);
      assert.deepEqual(stats.requests.slice(seen).filter((u) => /\/api\/calls\?/.test(u)), []);
      assert.match(await inbound.first().textContent(), /\+14155550111/);
      await inbound.first().click();
      await page.getByTestId('call-page').waitFor();
      const lines = page.getByTestId('transcript-line');
      await lines.filter({ hasText: 'Hello, thanks for calling.' }).waitFor();
      assert.equal(await page.getByTestId('hangup-button').isVisible(), true, 'the call is still live');
      await lines.filter({ hasText: 'caller said something' }).waitFor();
      await lines.filter({ hasText: 'I see.' }).waitFor();
      assert.equal(await page.getByTestId('transfer-button').isVisible(), true, 'the transcript filled in while the call was live');
      assert.equal(await lines.first().getAttribute('data-role'), 'agent');
      assert.equal(await lines.filter({ hasText: 'caller said something' }).first().getAttribute('data-role'), 'caller');
      await page.screenshot({ path: path.join(OUT, 'inbound-live-transcript.png'), fullPage: true });
    } finally {
      const r = await call;
      assert.equal(r.status, 'completed', r.reason); // (the page is under test, not the bridge's timing: r.ok is not asked)
    }
    // the end of the call arrives live too: the buttons go, the status says so
    await page.getByTestId('call-page').getByTestId('status-badge').filter({ hasText: 'Completed' }).waitFor();
    assert.equal(await page.getByTestId('call-actions').count(), 0);
    // the recording plays from a blob fetched with the token (the page's CSP allows media from blob:)
    const player = page.getByTestId('recording-player');
    await player.waitFor();
    assert.match(await player.getAttribute('src'), /^blob:http:\/\/127\.0\.0\.1:\d+\//);
    await page.waitForFunction(() => document.querySelector('[data-testid="recording-player"]').duration > 5);
    assert.equal(stats.loads, 1);
  });
});

test('Transfer on a live call: "transfer requested", and Twilio gets the <Dial>', async () => {
  await withPage('transfer', {}, async (page) => {
    twilio.configure({ onCreate: 'answer' }); // answered, then in progress until updated
    await signIn(page, tw);
    await placeCall(page, { customer: 'c-transfer' });
    await page.getByTestId('initiate-result').filter({ hasText: /Calling \+14155550123/ }).waitFor();
    await page.getByTestId('initiate-open').click();
    await page.getByTestId('call-page').waitFor();
    const id = /#\/calls\/([0-9a-f]{32})$/.exec(page.url())[1];
    // answered: the page shows it live with its buttons (pushed by the server)
    await page.getByTestId('call-page').getByTestId('status-badge').filter({ hasText: 'Live' }).waitFor();
    const sid = await page.locator('dd[data-field="Call SID"]').textContent();
    assert.match(sid, /^CA[0-9a-f]{32}$/);
    await page.getByTestId('transfer-button').click();
    await page.getByTestId('action-result').filter({ hasText: /transfer requested/i }).waitFor();
    await page.screenshot({ path: path.join(OUT, 'transfer-requested.png'), fullPage: true });
    const update = twilio.requests.find((q) => q.method === 'POST' && q.path.endsWith(`/Calls/${sid}.json`) && q.params.Twiml);
    assert.ok(update, 'the call was updated');
    assert.match(update.params.Twiml, /<Dial\b[^>]*>.*<Sip>sip:2000@pbx\.example\.com;transport=tcp<\/Sip>/s);
    // the transfer shows up on the page: its timeline and the details
    await page.locator('[data-testid="timeline-event"][data-type="transfer.attempt"]').waitFor();
    await page.locator('dd[data-field="Transfer to"]').filter({ hasText: 'sip:2000@pbx.example.com' }).waitFor();
    // the transfer TwiML hangs up after the <Dial> (in the fake, at once): the call ends, live
    await page.getByTestId('call-page').getByTestId('status-badge').filter({ hasText: 'Completed' }).waitFor();
    assert.equal(await page.getByTestId('call-actions').count(), 0);
    await page.getByTestId('back').click();
    await row(page, id).waitFor();

    // Hang up on the next one
    await placeCall(page, { customer: 'c-hangup' });
    await page.getByTestId('initiate-result').filter({ hasText: /Calling \+14155550123/ }).waitFor();
    await page.getByTestId('initiate-open').click();
    await page.getByTestId('call-page').getByTestId('status-badge').filter({ hasText: 'Live' }).waitFor();
    const sid2 = await page.locator('dd[data-field="Call SID"]').textContent();
    await page.getByTestId('hangup-button').click();
    await page.getByTestId('action-result').filter({ hasText: /hang-up requested/i }).waitFor();
    assert.ok(twilio.requests.some((q) => q.path.endsWith(`/Calls/${sid2}.json`) && q.params.Status === 'completed'));
    await page.getByTestId('call-page').getByTestId('status-badge').filter({ hasText: 'Completed' }).waitFor();
  });
});

test('errors in words: Twilio busy (503), the server unreachable', async () => {
  await withPage('errors', { allowStatus: [503], allowConsole: [/net::ERR_CONNECTION_REFUSED/] }, async (page) => {
    await signIn(page, tw);
    twilio.script({ match: { method: 'POST', pathRegex: /Calls\.json$/ }, status: 500 });
    await placeCall(page, { customer: 'c-busy' });
    const result = page.getByTestId('initiate-result');
    await result.filter({ hasText: 'Twilio is busy or not reachable — try again in a moment.' }).waitFor();
    assert.doesNotMatch(await result.textContent(), /[{}]|twilio_unavailable/, 'no raw JSON or codes');
    await page.route('**/api/calls/initiate', (route) => route.abort('connectionrefused'));
    await page.getByTestId('customer-input').fill('c-unreachable');
    await page.getByTestId('call-submit').click();
    await result.filter({ hasText: 'The server cannot be reached' }).waitFor();
  });
});

test('the day\'s chart: calls per hour and outcome shares, as SVG', async () => {
  await withPage('chart', {}, async (page) => {
    await signIn(page, sim);
    const svg = page.getByTestId('chart');
    await svg.waitFor();
    const bars = page.getByTestId('chart-bar');
    const sum = async (loc) => (await loc.evaluateAll((els) => els.map((e) => Number(e.dataset.calls ?? e.dataset.count)))).reduce((a, b) => a + b, 0);
    const outcomes = page.locator('[data-testid^="outcome-"][data-count]');
    // the calls the earlier tests made on this server (all of them today)
    const rows = await page.getByTestId('call-row').count();
    assert.ok((await bars.count()) >= 23, 'a bar per hour of the day');
    assert.equal(await sum(bars), rows);
    assert.equal(Number(await svg.getAttribute('data-total')), rows);
    assert.equal(await page.getByTestId('chart-total').textContent(), `${rows} call${rows === 1 ? '' : 's'}`);
    assert.equal(await sum(outcomes), rows, 'every call has its outcome');
    assert.ok((await page.getByTestId('outcome-chart').locator('rect').count()) >= 1);
    for (const k of ['ai', 'transferred', 'voicemail', 'failed']) await page.getByTestId('outcome-' + k).waitFor();
    // a new call redraws it without a reload (a live event; at most every 5 s)
    await placeCall(page, { customer: 'c-chart' });
    await page.getByTestId('chart-total').filter({ hasText: `${rows + 1} calls` }).waitFor({ timeout: 8000 });
    const hour = String(new Date().getHours()).padStart(2, '0');
    const now = page.locator(`[data-testid="chart-bar"][data-hour="${hour}"]`);
    assert.ok(Number(await now.getAttribute('data-calls')) >= 1);
    assert.ok(Number(await now.getAttribute('height')) > 0);
    assert.equal(await sum(bars), rows + 1);
  });
});

test('the platform of each call: a column of the list (live rows too) and a line on the call page', async () => {
  await withPage('platform', {}, async (page) => {
    // Asterisk calls as the Asterisk leg writes them: a row and its first event
    const db = sim.dir + '/data/switchboard.db';
    const addAsteriskCall = (id, from) => sqlite(db,
      "INSERT INTO calls (session_id, tenant_id, direction, call_sid, from_number, to_number, status, answered_at, ended_at, duration_s, platform) " +
      `VALUES ('${id}', 1, 'inbound', '1712345678.${from.slice(-2)}', '${from}', '${FROM}', 'completed', ` +
      "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 minute'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 42, 'asterisk'); " +
      `INSERT INTO call_events (call_id, type, detail) SELECT id, 'call.started', '{"platform":"asterisk"}' FROM calls WHERE session_id = '${id}';`);
    const first = 'a'.repeat(31) + '1', second = 'a'.repeat(31) + '2';
    addAsteriskCall(first, '+14155550171');
    await signIn(page, sim);
    await row(page, first).waitFor();
    assert.equal(await row(page, first).getAttribute('data-platform'), 'asterisk');
    assert.equal(await row(page, first).getByTestId('platform').textContent(), 'Asterisk');
    assert.ok(await page.getByRole('columnheader', { name: 'Platform' }).isVisible());
    // the calls the earlier tests made came through Twilio (the simulator plays Twilio)
    const others = page.locator('[data-testid="call-row"]:not([data-platform="asterisk"])');
    assert.ok((await others.count()) >= 1);
    assert.deepEqual([...new Set(await others.getByTestId('platform').allTextContents())], ['Twilio']);

    // a new Asterisk call arrives over the live feed with its platform
    addAsteriskCall(second, '+14155550172');
    await row(page, second).waitFor({ timeout: 8000 });
    assert.equal(await row(page, second).getByTestId('platform').textContent(), 'Asterisk');
    await page.screenshot({ path: path.join(OUT, 'platform-list.png'), fullPage: true });

    await row(page, second).click();
    await page.getByTestId('call-page').waitFor();
    await page.locator('dd[data-field="Platform"]').filter({ hasText: 'Asterisk' }).waitFor();
    await page.getByTestId('back').click();
    await others.first().click();
    await page.locator('dd[data-field="Platform"]').filter({ hasText: 'Twilio' }).waitFor();
  });
});
