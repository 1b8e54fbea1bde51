// Self-test of the fake Twilio REST API (tests/fakes/twilio_api.mjs): over real HTTPS with
// a fresh test CA, with node's own client. Auth with both credential kinds, each validation
// error, the call resource, updates, scripted faults (429, 500, delay, drop, hang) and the
// callee play-out, whose webhooks a local server checks with Twilio's own validateRequest.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import twilio from 'twilio';
import { makeTestPki } from '../fakes/tls.mjs';
import { startFakeTwilio, waitFor, basicAuth, rfc2822, CODES } from '../fakes/twilio_api.mjs';

const ACCOUNT = {
  sid: 'AC' + '0123456789abcdef'.repeat(2),
  authToken: 'auth-token-of-the-first-account',
  apiKeys: [{ sid: 'SK' + 'fedcba9876543210'.repeat(2), secret: 'api-key-secret-of-the-first' }],
};
const OTHER = { sid: 'AC' + '1'.repeat(32), authToken: 'auth-token-of-the-other-account', apiKeys: [] };
const FROM = '+14155550100';
const TO = '+14155550123';
const CALLS = `/2010-04-01/Accounts/${ACCOUNT.sid}/Calls.json`;
const callPath = (sid, account = ACCOUNT.sid) => `/2010-04-01/Accounts/${account}/Calls/${sid}.json`;

let dir, pki, fake, hooks;

// A local webhook receiver playing the app: records each request, checks its signature
// the way an app would, answers TwiML.
function startHooks() {
  const received = [];
  const server = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const url = `http://127.0.0.1:${server.address().port}${req.url}`;
    const params = req.method === 'POST' ? Object.fromEntries(new URLSearchParams(body)) : {};
    const valid = twilio.validateRequest(ACCOUNT.authToken, req.headers['x-twilio-signature'], url, params);
    received.push({ method: req.method, path: req.url, params, valid, headers: req.headers });
    res.writeHead(valid ? 200 : 403, { 'Content-Type': 'text/xml' });
    res.end(req.url.startsWith('/hangup')
      ? '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Bye</Say><Hangup/></Response>'
      : '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello</Say></Response>');
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, received, base: `http://127.0.0.1:${server.address().port}` })),
  );
}

// One request with node's https client, trusting only the test CA.
function api(method, path, { params, auth = [ACCOUNT.sid, ACCOUNT.authToken], body, contentType, timeoutMs = 5000 } = {}) {
  const payload = body ?? (params ? new URLSearchParams(params).toString() : '');
  const headers = { 'Content-Length': Buffer.byteLength(payload) };
  if (auth) headers.Authorization = basicAuth(...auth);
  if (payload) headers['Content-Type'] = contentType || 'application/x-www-form-urlencoded';
  const u = new URL(fake.url + path);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const req = https.request(u, { method, headers, ca: pki.ca, agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json, ms: Date.now() - t0 });
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.on('error', reject);
    req.end(payload);
  });
}

const good = (extra = {}) => ({ To: TO, From: FROM, Url: `${hooks.base}/connect`, ...extra });
function errorIs(r, status, code, message) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json.code, code, r.text);
  assert.equal(r.json.status, status);
  assert.equal(r.json.more_info, `https://www.twilio.com/docs/errors/${code}`);
  if (message) assert.match(r.json.message, message);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fake-twilio-test-'));
  pki = makeTestPki(join(dir, 'pki'));
  hooks = await startHooks();
  fake = await startFakeTwilio({ accounts: [ACCOUNT, OTHER], pki });
});
after(async () => {
  await fake?.close();
  hooks?.server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the test PKI is reusable and the fake serves a certificate for 127.0.0.1 signed by it', async () => {
  const again = makeTestPki(join(dir, 'pki'));
  assert.equal(again.cert, pki.cert);
  assert.match(fake.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  // without the test CA the certificate is refused
  await assert.rejects(
    new Promise((resolve, reject) => https.get(fake.url + CALLS, { agent: false }, resolve).on('error', reject)),
    (e) => /self[- ]signed|unable to (get|verify)/i.test(e.message),
  );
});

test('Basic auth: account SID + auth token and API key + secret both work', async () => {
  fake.reset();
  const a = await api('POST', CALLS, { params: good() });
  assert.equal(a.status, 201, a.text);
  const k = await api('POST', CALLS, { params: good(), auth: [ACCOUNT.apiKeys[0].sid, ACCOUNT.apiKeys[0].secret] });
  assert.equal(k.status, 201, k.text);
  assert.deepEqual(
    fake.requests.map((r) => [r.auth.kind, r.auth.username, r.auth.accountSid]),
    [['account', ACCOUNT.sid, ACCOUNT.sid], ['apiKey', ACCOUNT.apiKeys[0].sid, ACCOUNT.sid]],
  );
});

test('Basic auth failures: 401 with Twilio\'s exact 20003 body', async () => {
  const twilio401 = { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 };
  for (const auth of [
    [ACCOUNT.sid, 'wrong-token'],
    [ACCOUNT.apiKeys[0].sid, 'wrong-secret'],
    ['AC' + '9'.repeat(32), ACCOUNT.authToken],
    null,
  ]) {
    const r = await api('POST', CALLS, { params: good(), auth });
    assert.equal(r.status, 401, `${auth}`);
    assert.deepEqual(r.json, twilio401);
    assert.match(r.headers['www-authenticate'], /^Basic realm=/);
  }
  // valid credentials of one account, the other account in the path
  const r = await api('POST', `/2010-04-01/Accounts/${OTHER.sid}/Calls.json`, { params: good() });
  assert.deepEqual(r.json, twilio401);
  const k = await api('GET', `/2010-04-01/Accounts/${OTHER.sid}/Calls.json`, { auth: [ACCOUNT.apiKeys[0].sid, ACCOUNT.apiKeys[0].secret] });
  assert.equal(k.status, 401);
});

test('create validation: each Twilio error', async () => {
  const long = '<Response>' + '<Say>x</Say>'.repeat(400) + '</Response>';
  const cases = [
    [{ To: undefined }, CODES.TO_MISSING, /No 'To' number/],
    [{ To: '4155550123' }, 21211, /The 'To' number 4155550123 is not a valid phone number/],
    [{ To: '+1415' }, 21211],
    [{ To: '+1415555012345678' }, 21211],
    [{ From: undefined }, CODES.FROM_MISSING, /No 'From' number/],
    [{ From: 'Switchboard' }, 21212, /The 'From' number Switchboard is not a valid phone number/],
    [{ From: 'sip:a@b.example.com' }, 21212],
    [{ Url: undefined }, 21205, /^Url parameter is required/],
    [{ Twiml: '<Response/>' }, 21205, /Only one of Url, Twiml or ApplicationSid/],
    [{ Url: '/twilio/connect/1' }, 21205, /^Url is not a valid URL: \/twilio\/connect\/1$/],
    [{ Url: 'ftp://example.com/x' }, 21205],
    [{ Url: undefined, Twiml: long }, 32018, /Twiml size exceeded maximum allowed value of 4000 characters/],
    [{ Url: undefined, ApplicationSid: 'AP123' }, 21218],
    [{ Method: 'PUT' }, 21209],
    [{ StatusCallbackMethod: 'DELETE' }, 21209],
    [{ StatusCallback: 'not a url' }, 21609, /StatusCallback is not a valid URL/],
    [{ AsyncAmdStatusCallback: 'example.com/amd' }, 21609, /AsyncAmdStatusCallback/],
    [{ StatusCallback: 'https://example.com/s', StatusCallbackEvent: ['initiated', 'picked-up'] }, 21626, /picked-up/],
    [{ Timeout: '4' }, 21208],
    [{ Timeout: '601' }, 21208],
    [{ Timeout: '30s' }, 21208],
    [{ MachineDetection: 'Yes' }, 21234],
    [{ MachineDetection: 'Enable', AsyncAmd: 'maybe' }, 21234],
    [{ Record: 'yes' }, CODES.INVALID_PARAMETER, /Record/],
  ];
  for (const [change, code, message] of cases) {
    const p = good(change);
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(p)) for (const x of [v].flat()) if (x !== undefined) form.append(k, x);
    const r = await api('POST', CALLS, { body: form.toString() });
    errorIs(r, 400, code, message);
  }
  // a JSON body is not read at all: Twilio sees no To
  const j = await api('POST', CALLS, { body: JSON.stringify(good()), contentType: 'application/json' });
  errorIs(j, 400, CODES.TO_MISSING);
  // the number must be one the account owns, when the fake is told which
  fake.configure({ ownedNumbers: [FROM] });
  try {
    errorIs(await api('POST', CALLS, { params: good({ From: '+14155550199' }) }), 400, 21210,
      /The source phone number provided, \+14155550199, is not yet verified for your account/);
    assert.equal((await api('POST', CALLS, { params: good() })).status, 201);
  } finally {
    fake.configure({ ownedNumbers: undefined });
  }
});

test('a good create: 201 with the call resource; params recorded with repeated keys as arrays', async () => {
  fake.reset();
  const form = new URLSearchParams(good({ Timeout: '30', Record: 'true', MachineDetection: 'DetectMessageEnd', AsyncAmd: 'true',
    AsyncAmdStatusCallback: 'https://example.com/amd', StatusCallback: 'https://example.com/status?session=abc' }));
  for (const e of ['initiated', 'ringing', 'answered', 'completed']) form.append('StatusCallbackEvent', e);
  const t0 = Date.now();
  const r = await api('POST', CALLS, { body: form.toString() });
  assert.equal(r.status, 201, r.text);
  assert.match(r.headers['content-type'], /^application\/json/);
  const c = r.json;
  assert.match(c.sid, /^CA[0-9a-f]{32}$/);
  assert.equal(c.account_sid, ACCOUNT.sid);
  assert.equal(c.to, TO);
  assert.equal(c.from, FROM);
  assert.equal(c.to_formatted, '(415) 555-0123');
  assert.equal(c.status, 'queued');
  assert.equal(c.direction, 'outbound-api');
  assert.equal(c.api_version, '2010-04-01');
  assert.match(c.date_created, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
  assert.ok(Math.abs(Date.parse(c.date_created) - t0) < 2000);
  assert.equal(c.uri, `/2010-04-01/Accounts/${ACCOUNT.sid}/Calls/${c.sid}.json`);
  assert.equal(c.subresource_uris.recordings, `/2010-04-01/Accounts/${ACCOUNT.sid}/Calls/${c.sid}/Recordings.json`);
  for (const k of ['start_time', 'end_time', 'duration', 'price', 'parent_call_sid', 'answered_by']) assert.equal(c[k], null, k);

  const rec = fake.requests.at(-1);
  assert.equal(rec.method, 'POST');
  assert.equal(rec.path, CALLS);
  assert.deepEqual(rec.params.StatusCallbackEvent, ['initiated', 'ringing', 'answered', 'completed']);
  assert.equal(rec.params.Timeout, '30');
  assert.equal(rec.status, 201);
  assert.ok(rec.time >= t0);
  assert.equal(fake.calls.get(c.sid).to, TO);

  // SIP and client: destinations are accepted as Twilio accepts them
  assert.equal((await api('POST', CALLS, { params: good({ To: 'sip:2000@pbx.example.com;transport=tcp' }) })).status, 201);
  assert.equal((await api('POST', CALLS, { params: good({ To: 'client:agent_7' }) })).status, 201);
  // fetch and list
  const g = await api('GET', callPath(c.sid));
  assert.equal(g.status, 200);
  assert.equal(g.json.sid, c.sid);
  const l = await api('GET', CALLS);
  assert.equal(l.json.calls.length, 3);
});

test('update: Twiml, Url, Status; 4000-character limit; 404; 21220 once ended', async () => {
  fake.reset();
  const { sid } = (await api('POST', CALLS, { params: good() })).json;
  const ok = await api('POST', callPath(sid), { params: { Twiml: '<Response><Say>Hi</Say></Response>' } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.sid, sid);
  assert.equal(fake.calls.get(sid).updates.length, 1);

  errorIs(await api('POST', callPath(sid), { params: { Twiml: 'x'.repeat(4001) } }), 400, 32018);
  assert.equal((await api('POST', callPath(sid), { params: { Twiml: 'x'.repeat(4000) } })).status, 200);
  errorIs(await api('POST', callPath(sid), { params: { Url: 'nope' } }), 400, 21205);
  errorIs(await api('POST', callPath(sid), { params: { Status: 'in-progress' } }), 400, CODES.INVALID_PARAMETER);

  const missing = 'CA' + 'f'.repeat(32);
  const nf = await api('POST', callPath(missing), { params: { Status: 'completed' } });
  errorIs(nf, 404, 20404);
  assert.equal(nf.json.message, `The requested resource ${callPath(missing)} was not found`);
  errorIs(await api('GET', callPath(missing)), 404, 20404);
  // another account's call is not found either
  const o = await api('GET', callPath(sid, OTHER.sid), { auth: [OTHER.sid, OTHER.authToken] });
  errorIs(o, 404, 20404);

  // hanging up a call that was never answered cancels it
  const done = await api('POST', callPath(sid), { params: { Status: 'completed' } });
  assert.equal(done.status, 200);
  assert.equal(done.json.status, 'canceled');
  errorIs(await api('POST', callPath(sid), { params: { Twiml: '<Response/>' } }), 400, 21220, /not in-progress/);
});

test('scripted 429 with Retry-After, then normal service', async () => {
  fake.reset();
  fake.script({ match: { method: 'POST', pathRegex: /\/Calls\.json$/ }, status: 429, retryAfter: 3 });
  const r = await api('POST', CALLS, { params: good() });
  errorIs(r, 429, 20429, /Too Many Requests/);
  assert.equal(r.headers['retry-after'], '3');
  assert.equal(fake.calls.size, 0);
  assert.equal((await api('POST', CALLS, { params: good() })).status, 201);
  assert.deepEqual(fake.requests.map((q) => q.status), [429, 201]);
});

test('scripted 500 (default and custom Twilio error), times: 2', async () => {
  fake.reset();
  fake.script({ match: { pathRegex: 'Calls/CA' }, status: 500, times: 2 });
  fake.script({ match: { method: 'POST' }, status: 503, twilioError: { code: 20503, message: 'Service is down for maintenance' } });
  const { sid } = (await api('POST', CALLS, { params: good() })).json ?? {};
  assert.equal(sid, undefined); // the 503 rule matched the create
  const c = (await api('POST', CALLS, { params: good() })).json;
  for (let i = 0; i < 2; i++) errorIs(await api('POST', callPath(c.sid), { params: { Status: 'completed' } }), 500, 20500, /Internal Server Error/);
  assert.equal((await api('POST', callPath(c.sid), { params: { Status: 'completed' } })).status, 200);
  assert.equal(fake.requests[0].status, 503);
});

test('scripted delay: the answer comes no sooner than delayMs', async () => {
  fake.reset();
  fake.script({ match: { method: 'POST' }, delayMs: 300 });
  const r = await api('POST', CALLS, { params: good() });
  assert.equal(r.status, 201);
  assert.ok(r.ms >= 300, `answered after ${r.ms} ms`);
  const fast = await api('POST', CALLS, { params: good() });
  assert.ok(fast.ms < 300, `second answered after ${fast.ms} ms`);
});

test('scripted drop: the client sees the connection reset; afterProcessing still creates the call', async () => {
  fake.reset();
  fake.script({ match: { method: 'POST' }, drop: true });
  await assert.rejects(api('POST', CALLS, { params: good() }), (e) => ['ECONNRESET', 'EPIPE'].includes(e.code) || /socket hang up/.test(e.message));
  assert.equal(fake.calls.size, 0);
  assert.equal(fake.requests[0].status, 'dropped');

  fake.script({ match: { method: 'POST' }, drop: true, afterProcessing: true });
  await assert.rejects(api('POST', CALLS, { params: good() }), (e) => ['ECONNRESET', 'EPIPE'].includes(e.code) || /socket hang up/.test(e.message));
  assert.equal(fake.calls.size, 1); // it reached Twilio: the call exists
});

test('scripted hang: no answer until the client gives up', async () => {
  fake.reset();
  fake.script({ match: { method: 'POST' }, hang: true });
  await assert.rejects(api('POST', CALLS, { params: good(), timeoutMs: 300 }), (e) => e.code === 'CLIENT_TIMEOUT');
  assert.equal(fake.requests[0].status, 'hung');
});

test('play-out of an answered call: signed Url webhook and status callbacks in order', async () => {
  fake.reset();
  hooks.received.length = 0;
  fake.configure({ onCreate: 'answer', ringMs: 5 });
  try {
    const form = new URLSearchParams(good({ Url: `${hooks.base}/connect/s1?x=1`, StatusCallback: `${hooks.base}/status/s1` }));
    for (const e of ['initiated', 'ringing', 'answered', 'completed']) form.append('StatusCallbackEvent', e);
    // created with an API key: the webhooks are still signed with the auth token
    const r = await api('POST', CALLS, { body: form.toString(), auth: [ACCOUNT.apiKeys[0].sid, ACCOUNT.apiKeys[0].secret] });
    assert.equal(r.status, 201);
    const sid = r.json.sid;
    const call = fake.calls.get(sid);
    await waitFor(() => call.status === 'in-progress' && hooks.received.length === 4, 3000);
    assert.equal(call.twiml, '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello</Say></Response>');
    assert.equal((await api('GET', callPath(sid))).json.status, 'in-progress');

    // the caller (switchboard) hangs up by update
    assert.equal((await api('POST', callPath(sid), { params: { Status: 'completed' } })).json.status, 'completed');
    await call.done;
    const got = hooks.received;
    assert.deepEqual(got.map((h) => [h.path, h.params.CallStatus, h.params.SequenceNumber]), [
      ['/status/s1', 'initiated', '0'],
      ['/status/s1', 'ringing', '1'],
      ['/connect/s1?x=1', 'in-progress', undefined],
      ['/status/s1', 'in-progress', '2'],
      ['/status/s1', 'completed', '3'],
    ]);
    for (const h of got) {
      assert.ok(h.valid, `signature of ${h.path}`);
      assert.equal(h.params.AccountSid, ACCOUNT.sid);
      assert.equal(h.params.CallSid, sid);
      assert.equal(h.params.Direction, 'outbound-api');
      assert.equal(h.params.ApiVersion, '2010-04-01');
      assert.equal(h.params.To, TO);
      assert.equal(h.params.Called, TO);
      assert.equal(h.params.From, FROM);
      assert.equal(h.params.Caller, FROM);
      assert.equal(h.headers['content-type'], 'application/x-www-form-urlencoded');
    }
    for (const h of got.filter((x) => x.path.startsWith('/status'))) {
      assert.equal(h.params.CallbackSource, 'call-progress-events');
      assert.ok(!Number.isNaN(Date.parse(h.params.Timestamp)), h.params.Timestamp);
    }
    assert.match(got[4].params.CallDuration, /^\d+$/);
    assert.equal(fake.webhooks.length, 5);
    assert.ok(fake.webhooks.every((w) => w.status === 200));
  } finally {
    fake.configure({ onCreate: null, ringMs: undefined });
  }
});

test('play-out per script: busy, no-answer, GET Url, TwiML hang-up, rewriteUrl, async AMD', async () => {
  fake.reset();
  hooks.received.length = 0;
  const status = `${hooks.base}/status`;
  const statusOf = (sid) => hooks.received.filter((h) => h.params.CallSid === sid).map((h) => h.params.CallStatus);

  // busy and no-answer: no Url request; only the completed callback by default
  fake.script({ match: { method: 'POST', pathRegex: /Calls\.json$/ }, onCreate: 'busy', ringMs: 1 });
  const busy = (await api('POST', CALLS, { params: good({ StatusCallback: status }) })).json.sid;
  fake.script({ match: { method: 'POST', pathRegex: /Calls\.json$/ }, onCreate: 'no-answer', ringMs: 1 });
  const noAnswer = (await api('POST', CALLS, { params: good({ StatusCallback: status }) })).json.sid;
  await fake.calls.get(busy).done;
  await fake.calls.get(noAnswer).done;
  assert.deepEqual(statusOf(busy), ['busy']);
  assert.deepEqual(statusOf(noAnswer), ['no-answer']);
  assert.equal(fake.calls.get(noAnswer).status, 'no-answer');

  // GET Url: the params travel in the query, signed as part of the URL
  fake.script({ match: { method: 'POST', pathRegex: /Calls\.json$/ }, onCreate: 'answer', ringMs: 1, holdMs: 20 });
  const get = (await api('POST', CALLS, { params: good({ Url: `${hooks.base}/get?a=b`, Method: 'GET', StatusCallback: status }) })).json.sid;
  await fake.calls.get(get).done;
  const g = hooks.received.find((h) => h.method === 'GET');
  assert.ok(g.valid);
  assert.match(g.path, /^\/get\?a=b&AccountSid=AC/);
  assert.deepEqual(statusOf(get), ['completed']);

  // TwiML that hangs up ends the call
  fake.script({ match: { method: 'POST', pathRegex: /Calls\.json$/ }, onCreate: 'answer', ringMs: 1 });
  const hung = (await api('POST', CALLS, { params: good({ Url: `${hooks.base}/hangup`, StatusCallback: status }) })).json.sid;
  await fake.calls.get(hung).done;
  assert.equal(fake.calls.get(hung).status, 'completed');

  // the app's public URL is signed; the request goes to where rewriteUrl says
  const PUBLIC = 'https://voice.example.com';
  fake.configure({ rewriteUrl: (u) => u.replace(PUBLIC, hooks.base) });
  try {
    fake.script({ match: { method: 'POST', pathRegex: /Calls\.json$/ }, onCreate: 'answer', ringMs: 1, answeredBy: 'machine_end_beep' });
    const amd = (await api('POST', CALLS, {
      params: good({ Url: `${PUBLIC}/twilio/connect/s9`, MachineDetection: 'DetectMessageEnd', AsyncAmd: 'true', AsyncAmdStatusCallback: `${PUBLIC}/twilio/amd/s9` }),
    })).json.sid;
    const cb = await waitFor(() => hooks.received.find((h) => h.path === '/twilio/amd/s9'), 3000);
    const connect = hooks.received.find((h) => h.path === '/twilio/connect/s9');
    // signed for the public URL, not the address it was delivered to
    assert.equal(twilio.validateRequest(ACCOUNT.authToken, connect.headers['x-twilio-signature'], `${PUBLIC}/twilio/connect/s9`, connect.params), true);
    assert.equal(connect.params.AnsweredBy, undefined); // async AMD: not in the Url request
    assert.equal(twilio.validateRequest(ACCOUNT.authToken, cb.headers['x-twilio-signature'], `${PUBLIC}/twilio/amd/s9`, cb.params), true);
    assert.deepEqual(Object.keys(cb.params).sort(), ['AccountSid', 'AnsweredBy', 'CallSid', 'MachineDetectionDuration']);
    assert.equal(cb.params.AnsweredBy, 'machine_end_beep');
    assert.equal(fake.calls.get(amd).answeredBy, 'machine_end_beep');
    // the callee hangs up
    await fake.hangup(amd);
    assert.equal(fake.calls.get(amd).status, 'completed');
  } finally {
    fake.configure({ rewriteUrl: undefined });
  }
});

test('live update with Url redirects the call: Twilio requests the new Url', async () => {
  fake.reset();
  hooks.received.length = 0;
  fake.script({ match: { method: 'POST', pathRegex: /Calls\.json$/ }, onCreate: 'answer', ringMs: 1 });
  const sid = (await api('POST', CALLS, { params: good() })).json.sid;
  await waitFor(() => fake.calls.get(sid).status === 'in-progress' && fake.calls.get(sid).twiml);
  assert.equal((await api('POST', callPath(sid), { params: { Url: `${hooks.base}/hangup?next=1` } })).status, 200);
  await fake.calls.get(sid).done; // the redirect's TwiML hangs up
  const redirect = fake.webhooks.find((w) => w.kind === 'redirect');
  assert.equal(redirect.status, 200);
  assert.ok(hooks.received.find((h) => h.path === '/hangup?next=1').valid);
  assert.match(fake.calls.get(sid).twiml, /<Hangup\/>/);
});

test('waitFor times out with an error', async () => {
  await assert.rejects(waitFor(() => false, 50), /not met in 50 ms/);
  assert.equal(await waitFor(() => 42, 50), 42);
  assert.match(rfc2822(new Date(0)), /^Thu, 01 Jan 1970 00:00:00 \+0000$/);
});
