// Self-test of the fake jambonz REST API (tests/fakes/jambonz_api.mjs), with node's own client:
// it must accept what jambonz-api-server accepts and refuse what it refuses, with the same
// status, body and content type. Bearer auth (401/400/403), the create checks of the api-server
// and of the feature server behind it, applications, updates against the call table (404, 422,
// 202), express's body parsing, the rate limiter, scripted faults, inbound calls registered by
// a player, and HTTPS with a test CA. Needs no switchboard binary.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { startFakeJambonzApi, TEST_ACCOUNT, UUID_RE, bearer, waitFor } from '../fakes/jambonz_api.mjs';

const APP = {
  sid: '0dddaabf-0a30-43e3-84e8-426873b1a78b',
  call_hook: { url: 'https://sb.example.com/jambonz/app', method: 'POST' },
  call_status_hook: 'https://sb.example.com/jambonz/app-status',
  speech_synthesis_vendor: 'google',
  speech_synthesis_language: 'en-US',
  speech_synthesis_voice: 'en-US-Standard-C',
  speech_recognizer_vendor: 'google',
  speech_recognizer_language: 'en-US',
};
const ACCOUNT = { ...TEST_ACCOUNT, applications: [APP] };
const OTHER = { sid: 'b1a2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d', apiKey: 'other-account-key', applications: [] };
const ADMIN_KEY = 'admin-key-0123';
const CALLS = `/v1/Accounts/${ACCOUNT.sid}/Calls`;
const callPath = (sid, account = ACCOUNT.sid) => `/v1/Accounts/${account}/Calls/${sid}`;

let fake;

// One request as switchboard's client makes it: a JSON body, the API key as bearer token.
async function api(method, path, { json, body, contentType, auth = ACCOUNT.apiKey, authorization, base } = {}) {
  const headers = {};
  if (authorization !== undefined) headers.Authorization = authorization;
  else if (auth) headers.Authorization = bearer(auth);
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (contentType) headers['Content-Type'] = contentType;
  const r = await fetch(`${base || fake.url}${path}`, { method, headers, body });
  const text = await r.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {}
  return { status: r.status, headers: r.headers, text, json: parsed };
}

// A create that jambonz accepts: switchboard's shape (speech defaults, no application).
const good = (extra = {}) => ({
  from: '+14155550100',
  to: { type: 'phone', number: '+14155550123' },
  call_hook: { url: 'https://sb.example.com/jambonz/outbound', method: 'POST' },
  call_status_hook: { url: 'https://sb.example.com/jambonz/status', method: 'POST' },
  speech_synthesis_vendor: 'google',
  speech_synthesis_language: 'en-US',
  speech_synthesis_voice: 'en-US-Standard-C',
  speech_recognizer_vendor: 'google',
  speech_recognizer_language: 'en-US',
  ...extra,
});

function msgIs(r, status, msg) {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(r.json, { msg });
}

function textIs(r, status, text, type = /^text\/plain/) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.text, text);
  if (type) assert.match(r.headers.get('content-type') || '', type);
}

async function createCall(extra) {
  const r = await api('POST', CALLS, { json: good(extra) });
  assert.equal(r.status, 201, r.text);
  return fake.calls.get(r.json.sid);
}

before(async () => {
  fake = await startFakeJambonzApi({ accounts: [ACCOUNT, OTHER], adminKeys: [ADMIN_KEY] });
});

after(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
  fake.configure({ onCreate: null, onUpdate: null, featureServers: true, rateLimit: null });
});

test('create: 201 with a UUID sid and the SIP Call-ID; the call is recorded as sent', async () => {
  const created = [];
  fake.on('create', (c) => created.push(c));
  const body = good({ tag: { tenant: 'acme' }, timeout: 25, timeLimit: 3600, callerName: 'Switchboard' });
  const r = await api('POST', CALLS, { json: body });
  assert.equal(r.status, 201, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(Object.keys(r.json).sort(), ['callId', 'sid']);
  assert.match(r.json.sid, UUID_RE);
  const call = fake.calls.get(r.json.sid);
  assert.equal(call.direction, 'outbound');
  assert.equal(call.status, 'trying');
  assert.equal(call.from, '+14155550100');
  assert.deepEqual(call.to, { type: 'phone', number: '+14155550123' });
  assert.deepEqual(call.callHook, body.call_hook);
  assert.deepEqual(call.tag, { tenant: 'acme' });
  assert.equal(call.timeout, 25);
  assert.equal(call.request.account_sid, ACCOUNT.sid);
  const rec = fake.requests.at(-1);
  assert.equal(rec.method, 'POST');
  assert.equal(rec.path, CALLS);
  assert.equal(rec.headers.authorization, `Bearer ${ACCOUNT.apiKey}`);
  assert.deepEqual(JSON.parse(rec.body), body);
  assert.deepEqual(rec.auth, { token: ACCOUNT.apiKey, valid: true, scope: 'account', accountSid: ACCOUNT.sid });
  await waitFor(() => created.length === 1);
  assert.equal(created[0], call);
  fake.removeAllListeners('create');
});

test('create: every target type and hook form jambonz accepts', async () => {
  const accepted = [
    { to: { type: 'phone', number: '+4930123456', trunk: 'carrier-a' } },
    { to: { type: 'sip', sipUri: 'sip:agent@pbx.example.com' } },
    { to: { type: 'user', name: 'alice' } }, // the account's sip realm is appended
    { to: { type: 'user', name: 'alice@other.example.com' } },
    { call_hook: 'https://sb.example.com/x', call_status_hook: 'http://sb.example.com/y' }, // strings become {url, method: POST}
    { call_hook: { url: 'wss://sb.example.com/ws' } },
    { call_status_hook: null }, // nulls are dropped
    { from: 'switchboard' }, // any string: jambonz does not insist on E.164
    { timeout: '30' }, // express-validator's isInt reads strings
    { answerOnBridge: true, tag: {}, headers: { 'X-Foo': 'bar' } },
  ];
  for (const extra of accepted) {
    const r = await api('POST', CALLS, { json: good(extra) });
    assert.equal(r.status, 201, `${JSON.stringify(extra)}: ${r.text}`);
  }
  const withStrings = [...fake.calls.values()][4];
  assert.deepEqual(withStrings.callHook, { url: 'https://sb.example.com/x', method: 'POST' });
  assert.deepEqual(withStrings.callStatusHook, { url: 'http://sb.example.com/y', method: 'POST' });
});

test('create: the api-server refuses with 400 {msg} as jambonz words it', async () => {
  const speechless = good();
  for (const k of Object.keys(speechless)) if (k.startsWith('speech_')) delete speechless[k];
  const refused = [
    [{ ...good(), from: undefined }, 'missing from parameter'],
    [{ ...good(), from: '' }, 'missing from parameter'],
    [{ ...good(), to: undefined }, 'missing or invalid to property: undefined'],
    [good({ to: '+14155550123' }), 'missing or invalid to property: "+14155550123"'],
    [good({ to: { number: '+14155550123' } }), 'missing or invalid to property: {"number":"+14155550123"}'],
    [good({ to: { type: 'phone', sipUri: 'sip:a@b' } }), 'missing or invalid to property: {"type":"phone","sipUri":"sip:a@b"}'],
    [good({ to: { type: 'sip', number: '1' } }), 'missing or invalid to property: {"type":"sip","number":"1"}'],
    [good({ to: { type: 'user', number: '1' } }), 'missing or invalid to property: {"type":"user","number":"1"}'],
    [good({ to: { type: 'phone', number: 14155550123 } }), 'missing or invalid to property: {"type":"phone","number":14155550123}'],
    [speechless, 'either application_sid or set of speech_synthesis_vendor, speech_synthesis_language, ' +
      'speech_synthesis_voice, speech_recognizer_vendor, speech_recognizer_language required'],
    [good({ speech_synthesis_voice: '' }), 'either application_sid or set of speech_synthesis_vendor, ' +
      'speech_synthesis_language, speech_synthesis_voice, speech_recognizer_vendor, speech_recognizer_language required'],
    [{ ...good(), call_hook: undefined }, 'either call_hook or application_sid required'],
    [good({ call_hook: { method: 'POST' } }), 'call_hook must be string or an object containing a url property'],
    [good({ call_status_hook: { url: 5 } }), 'call_status_hook must be string or an object containing a url property'],
    [good({ call_hook: '/relative' }), 'call_hook url be an absolute url'],
    [good({ call_hook: { url: 'ftp://x/y' } }), 'call_hook url be an absolute url'],
    [good({ call_status_hook: 'sb.example.com/status' }), 'call_status_hook url be an absolute url'],
    [good({ application_sid: 'a0000000-0000-4000-8000-000000000000' }),
      'application_sid not found a0000000-0000-4000-8000-000000000000'],
  ];
  for (const [body, msg] of refused) {
    const r = await api('POST', CALLS, { json: body });
    msgIs(r, 400, msg);
  }
  assert.equal(fake.calls.size, 0);
});

test('create: an application supplies the hooks and speech settings', async () => {
  const r = await api('POST', CALLS, { json: { from: '+14155550100', to: { type: 'phone', number: '+14155550123' }, application_sid: APP.sid } });
  assert.equal(r.status, 201, r.text);
  const call = fake.calls.get(r.json.sid);
  assert.equal(call.applicationSid, APP.sid);
  assert.deepEqual(call.callHook, APP.call_hook);
  assert.deepEqual(call.callStatusHook, { url: APP.call_status_hook, method: 'POST' });
  assert.equal(call.request.speech_synthesis_voice, 'en-US-Standard-C');
});

test("create: what the feature server refuses comes back as a bare 500", async () => {
  const refused = [
    good({ from: 14155550100 }), // truthy for the api-server, not a string for the feature server
    good({ timeout: 'soon' }),
    good({ timeLimit: 1.5 }),
    good({ tag: ['a'] }),
    good({ tag: 'x' }),
    good({ answerOnBridge: 'yes' }),
    good({ callerName: 5 }),
    good({ speech_synthesis_vendor: 5 }),
    good({ application_sid: undefined, to: { type: 'teams', number: '1' } }), // no Teams tenant
  ];
  for (const body of refused) {
    const r = await api('POST', CALLS, { json: body });
    textIs(r, 500, 'Internal Server Error');
  }
  // a user name without a domain needs the account's sip realm
  const r = await api('POST', `/v1/Accounts/${OTHER.sid}/Calls`, { json: good({ to: { type: 'user', name: 'bob' } }), auth: OTHER.apiKey });
  textIs(r, 500, 'Internal Server Error');
  assert.equal(fake.requests.at(-1).refusal, 'no sip realm configured for account');
  assert.equal(fake.calls.size, 0);
});

test('auth: bearer keys as passport-http-bearer checks them', async () => {
  let r = await api('POST', CALLS, { json: good(), auth: null });
  textIs(r, 401, 'Unauthorized', null);
  assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="Users"');
  r = await api('POST', CALLS, { json: good(), auth: 'not-a-key' });
  textIs(r, 401, 'Unauthorized', null);
  assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="Users", error="invalid_token"');
  r = await api('POST', CALLS, { json: good(), authorization: 'Basic ' + Buffer.from('a:b').toString('base64') });
  assert.equal(r.status, 401);
  r = await api('POST', CALLS, { json: good(), authorization: `Bearer ${ACCOUNT.apiKey} extra` });
  textIs(r, 400, 'Bad Request', null);
  r = await api('POST', CALLS, { json: good(), authorization: `bearer ${ACCOUNT.apiKey}` }); // the scheme is case-insensitive
  assert.equal(r.status, 201, r.text);
  // an account's key does not reach another account, nor one that does not exist
  r = await api('POST', `/v1/Accounts/${OTHER.sid}/Calls`, { json: good() });
  msgIs(r, 403, 'insufficient permissions');
  r = await api('PUT', callPath(randomUUID(), randomUUID()), { json: { call_status: 'completed' } });
  msgIs(r, 403, 'insufficient permissions');
  // a sid that is not a UUID
  r = await api('POST', '/v1/Accounts/not-a-uuid/Calls', { json: good() });
  msgIs(r, 400, 'Bad request');
  // an admin key reaches any account; the feature server then fails on an unknown one
  r = await api('POST', `/v1/Accounts/${OTHER.sid}/Calls`, { json: good(), auth: ADMIN_KEY });
  assert.equal(r.status, 201, r.text);
  r = await api('POST', `/v1/Accounts/${randomUUID()}/Calls`, { json: good(), auth: ADMIN_KEY });
  textIs(r, 500, 'Internal Server Error');
  // the health check needs no key; unknown routes are express's 404 (after auth under /v1)
  textIs(await api('GET', '/health', { auth: null }), 200, 'OK');
  assert.equal((await api('GET', '/v1/Nope', { auth: null })).status, 401);
  r = await api('GET', '/v1/Nope');
  assert.equal(r.status, 404);
  assert.match(r.text, /<pre>Cannot GET \/v1\/Nope<\/pre>/);
});

test('bodies: only application/json is read; bad JSON is 400 {msg}', async () => {
  let r = await api('POST', CALLS, { body: JSON.stringify(good()), contentType: 'text/plain' });
  msgIs(r, 400, 'missing from parameter');
  r = await api('POST', CALLS, { body: '{"from": ', contentType: 'application/json' });
  assert.equal(r.status, 400);
  assert.equal(typeof r.json.msg, 'string');
  r = await api('POST', CALLS, { body: '"just a string"', contentType: 'application/json' });
  assert.equal(r.status, 400);
  r = await api('POST', CALLS, { body: JSON.stringify(good()), contentType: 'application/json; charset=utf-8' });
  assert.equal(r.status, 201, r.text);
  r = await api('POST', CALLS, { body: JSON.stringify(good({ pad: 'x'.repeat(101 * 1024) })), contentType: 'application/json' });
  msgIs(r, 413, 'request entity too large');
});

test('update: hang-up and redirect of an answered call, then 422 once it has ended', async () => {
  const call = await createCall();
  const updates = [];
  const ended = [];
  fake.on('update', (u) => updates.push(u));
  fake.on('call-ended', (c) => ended.push(c));
  // not answered yet: a hang-up is refused by the feature server
  let r = await api('PUT', callPath(call.sid), { json: { call_status: 'completed' } });
  textIs(r, 422, `current call state is incompatible with requested action for call_sid ${call.sid}`, /^text\/html/);
  fake.ring(call.sid);
  fake.answer(call.sid);
  r = await api('PUT', callPath(call.sid), { json: { call_hook: { url: 'https://sb.example.com/jambonz/transfer', method: 'POST' } } });
  textIs(r, 202, 'Accepted');
  // the legacy POST does the same
  r = await api('POST', callPath(call.sid), { json: { call_hook: 'https://sb.example.com/jambonz/transfer2' } });
  textIs(r, 202, 'Accepted');
  assert.deepEqual(call.callHooks, ['https://sb.example.com/jambonz/transfer', 'https://sb.example.com/jambonz/transfer2']);
  // a ringing-only cancel does not apply to an answered call
  r = await api('PUT', callPath(call.sid), { json: { call_status: 'no-answer' } });
  assert.equal(r.status, 422);
  r = await api('PUT', callPath(call.sid), { json: { call_status: 'completed' } });
  textIs(r, 202, 'Accepted');
  await waitFor(() => ended.length === 1);
  assert.equal(call.status, 'completed');
  assert.deepEqual(call.statuses, ['trying', 'ringing', 'in-progress', 'completed']);
  assert.equal(updates.length, 3);
  assert.deepEqual(updates[2].body, { call_status: 'completed' });
  // jambonz keeps the call's record for a while: the session is gone, not the call
  r = await api('PUT', callPath(call.sid), { json: { call_status: 'completed' } });
  textIs(r, 422, `call session is gone for call_sid ${call.sid}`, /^text\/html/);
  r = await api('GET', callPath(call.sid));
  assert.equal(r.status, 200);
  assert.equal(r.json.call_status, 'completed');
  assert.equal(r.json.call_sid, call.sid);
  fake.removeAllListeners('update');
  fake.removeAllListeners('call-ended');
});

test('update: a ringing outbound call is cancelled with no-answer', async () => {
  const call = await createCall();
  fake.ring(call.sid);
  const r = await api('PUT', callPath(call.sid), { json: { call_status: 'no-answer' } });
  textIs(r, 202, 'Accepted');
  await waitFor(() => call.status === 'no-answer');
});

test('update: the checks of the api-server and the feature server', async () => {
  const call = await createCall();
  fake.answer(call.sid);
  const refused = [
    [{}, 'no valid options supplied to updateCall'],
    [{ call_status: 'completed', call_hook: 'https://x/y' }, 'multiple options are not allowed in updateCall'],
    [{ call_status: 'canceled' }, 'invalid call_status'],
    [{ mute_status: 'loud' }, 'invalid mute_status'],
    [{ listen_status: 'stop' }, 'invalid listen_status'],
    [{ tag: ['x'] }, 'invalid tag data'],
    [{ dtmf: { duration: 100 } }, 'invalid dtmf'],
    [{ record: { action: 'startCallRecording' } }, 'record requires siprecServerURL property when starting recording'],
    [{ sip_request: { method: 'INFO' } }, 'sip_request requires method, content_type and content properties'],
    [{ media_path: 'some-media' }, 'invalid media_path'],
    [{ call_status_hook: 'https://x/status' }, 'no valid options supplied to updateCall'], // not an update kind
    [{ call_status: 'completed', call_status_hook: 'https://x/status' },
      `call_status_hook can be updated only when call_hook is also being updated for call_sid ${call.sid}`],
  ];
  for (const [body, msg] of refused) msgIs(await api('PUT', callPath(call.sid), { json: body }), 400, msg);
  // a body that is not JSON reads as no options at all
  let r = await api('PUT', callPath(call.sid), { body: 'call_status=completed', contentType: 'text/plain' });
  msgIs(r, 400, 'no valid options supplied to updateCall');
  // the accepted pairs
  r = await api('PUT', callPath(call.sid), { json: { call_hook: 'https://x/a', child_call_hook: 'https://x/b' } });
  assert.equal(r.status, 202);
  r = await api('PUT', callPath(call.sid), { json: { whisper: { verb: 'say', text: 'hi' } } });
  assert.equal(r.status, 202);
  r = await api('PUT', callPath(call.sid), { json: { sip_request: { method: 'INFO', content_type: 'text/plain', content: 'x' } } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 200, reason: 'OK' });
  assert.equal(call.status, 'in-progress');
  // path checks: a call sid that is not a UUID, an unknown call, a call of another account
  msgIs(await api('PUT', callPath('..%2F..%2Fx'), { json: { call_status: 'completed' } }), 400, 'Bad request');
  msgIs(await api('PUT', callPath('CA123'), { json: { call_status: 'completed' } }), 400, 'Bad request');
  msgIs(await api('PUT', `${callPath(call.sid)}?x=1`, { json: { call_status: 'completed' } }), 400, 'Bad request');
  textIs(await api('PUT', callPath(randomUUID()), { json: { call_status: 'completed' } }), 404, 'Not Found');
  const other = fake.addCall({ accountSid: OTHER.sid, from: '+1', to: '+2' });
  textIs(await api('PUT', callPath(other.sid, OTHER.sid), { json: { call_status: 'completed' }, auth: ADMIN_KEY }), 202, 'Accepted');
  textIs(await api('PUT', callPath(call.sid, OTHER.sid), { json: { call_status: 'completed' }, auth: ADMIN_KEY }), 404, 'Not Found');
});

test('inbound calls a player registers are updated like created ones', async () => {
  const seen = [];
  fake.configure({ onUpdate: (call, body) => seen.push([call.sid, body]) });
  const call = fake.addCall({ from: '+14155550123', to: '+14155550100', status: 'ringing' });
  assert.equal(call.direction, 'inbound');
  // not answered: a hang-up needs the answer first; no-answer rejects it
  assert.equal((await api('PUT', callPath(call.sid), { json: { call_status: 'completed' } })).status, 422);
  textIs(await api('PUT', callPath(call.sid), { json: { call_status: 'no-answer' } }), 202, 'Accepted');
  await waitFor(() => seen.length === 1);
  assert.equal(call.status, 'no-answer');
  const live = fake.addCall({ sid: randomUUID(), from: '+1', to: '+2' });
  assert.equal(live.status, 'in-progress');
  textIs(await api('PUT', callPath(live.sid), { json: { call_hook: { url: 'https://sb.example.com/next' } } }), 202, 'Accepted');
  await waitFor(() => seen.length === 2);
  assert.deepEqual(seen[1], [live.sid, { call_hook: { url: 'https://sb.example.com/next' } }]);
});

test('onCreate plays the callee; canned outcomes', async () => {
  fake.configure({
    onCreate: async (call, f) => {
      f.ring(call);
      await f.sleep(5);
      f.answer(call);
    },
  });
  const call = await createCall();
  await waitFor(() => call.status === 'in-progress');
  fake.end(call.sid);
  await call.done;
  assert.equal(call.status, 'completed');
  assert.equal(fake.end(call.sid, 'failed'), false); // ended once
  fake.configure({ onCreate: 'busy' });
  const busy = await createCall();
  await busy.done;
  assert.equal(busy.status, 'busy');
  // a script rule's onCreate wins
  fake.script({ match: { method: 'POST' }, onCreate: 'answer' });
  const answered = await createCall();
  await waitFor(() => answered.status === 'in-progress');
});

test('GET, list and DELETE of calls', async () => {
  const a = await createCall();
  fake.answer(a.sid);
  const b = fake.addCall({ from: '+1', to: '+2' });
  let r = await api('GET', CALLS);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.map((c) => c.call_sid).sort(), [a.sid, b.sid].sort());
  r = await api('GET', `${CALLS}?direction=outbound`);
  assert.deepEqual(r.json.map((c) => c.call_sid), [a.sid]);
  r = await api('GET', callPath(a.sid));
  assert.equal(r.json.to, '+14155550123');
  assert.equal(r.json.direction, 'outbound');
  assert.equal(r.json.call_status, 'in-progress');
  r = await api('DELETE', callPath(a.sid));
  assert.equal(r.status, 204);
  assert.equal(r.text, '');
  textIs(await api('DELETE', callPath(a.sid)), 404, 'Not Found');
  textIs(await api('GET', callPath(a.sid)), 404, 'Not Found');
});

test('no feature server: 480 before anything else', async () => {
  fake.configure({ featureServers: false });
  msgIs(await api('POST', CALLS, { json: good() }), 480, 'no available feature servers at this time');
  msgIs(await api('POST', '/v1/Accounts/not-a-uuid/Calls', { json: {} }), 480, 'no available feature servers at this time');
});

test('the rate limiter answers 429 with Retry-After', async () => {
  fake.configure({ rateLimit: { limit: 2, windowMs: 60000 } });
  assert.equal((await api('POST', CALLS, { json: good() })).status, 201);
  const second = await api('GET', CALLS);
  assert.equal(second.headers.get('ratelimit-remaining'), '0');
  const r = await api('POST', CALLS, { json: good() });
  textIs(r, 429, 'Too many requests, please try again later.', /^text\/html/);
  const wait = Number(r.headers.get('retry-after'));
  assert.ok(wait >= 59 && wait <= 60, `Retry-After ${wait}`);
  assert.equal(r.headers.get('ratelimit-limit'), '2');
  // even without a key: the limiter runs first
  assert.equal((await api('GET', CALLS, { auth: null })).status, 429);
  assert.equal(fake.calls.size, 1);
});

test('scripted faults: next N answers, delays, drops, hangs, after processing', async () => {
  const call = await createCall();
  fake.answer(call.sid);
  fake.failNext(2, 503, undefined, { match: { method: 'PUT' } });
  let r = await api('PUT', callPath(call.sid), { json: { call_hook: 'https://x/1' } });
  textIs(r, 503, 'Service Unavailable');
  r = await api('PUT', callPath(call.sid), { json: { call_hook: 'https://x/1' } });
  assert.equal(r.status, 503);
  r = await api('PUT', callPath(call.sid), { json: { call_hook: 'https://x/1' } });
  assert.equal(r.status, 202);
  assert.deepEqual(call.callHooks, ['https://x/1']); // the failed ones changed nothing

  fake.failNext(1, 429, undefined, { retryAfter: 2 });
  r = await api('POST', CALLS, { json: good() });
  textIs(r, 429, 'Too many requests, please try again later.', /^text\/html/);
  assert.equal(r.headers.get('retry-after'), '2');
  fake.failNext(1, 400, { msg: 'custom' });
  msgIs(await api('POST', CALLS, { json: good() }), 400, 'custom');
  fake.failNext(1, 422, 'plain words');
  textIs(await api('POST', CALLS, { json: good() }), 422, 'plain words', /^text\/html/);
  fake.failNext(1, 401);
  r = await api('GET', CALLS);
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /^Bearer realm="Users"/);

  fake.script({ delayMs: 150 });
  const t0 = Date.now();
  assert.equal((await api('GET', CALLS)).status, 200);
  assert.ok(Date.now() - t0 >= 140);

  fake.script({ drop: true });
  await assert.rejects(api('GET', CALLS));
  assert.equal(fake.requests.at(-1).status, 'dropped');

  // the create reached jambonz (the call exists), but the answer was lost
  const before = fake.calls.size;
  fake.script({ match: { method: 'POST' }, status: 500, afterProcessing: true });
  textIs(await api('POST', CALLS, { json: good() }), 500, 'Internal Server Error');
  assert.equal(fake.calls.size, before + 1);

  fake.script({ hang: true });
  const ctl = new AbortController();
  const pending = fetch(`${fake.url}${CALLS}`, { headers: { Authorization: bearer(ACCOUNT.apiKey) }, signal: ctl.signal });
  await waitFor(() => fake.requests.at(-1).status === 'hung');
  ctl.abort();
  await assert.rejects(pending);
  assert.equal(fake.rules.every((r) => r.times === 0), true);
});

test('every request is recorded with what it was answered', async () => {
  const seen = [];
  fake.on('request', (rec) => seen.push(rec));
  await api('POST', CALLS, { json: good() });
  await api('PUT', callPath(randomUUID()), { json: { call_status: 'completed' } });
  assert.equal(fake.requests.length, 2);
  assert.deepEqual(fake.requests.map((r) => [r.method, r.status]), [['POST', 201], ['PUT', 404]]);
  assert.deepEqual(fake.requests[1].json, { call_status: 'completed' });
  assert.equal(fake.requests[1].response, 'Not Found');
  await waitFor(() => seen.length === 2);
  fake.removeAllListeners('request');
});

test('HTTPS with the test CA', async () => {
  const secure = await startFakeJambonzApi({ tls: true });
  try {
    assert.match(secure.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const body = JSON.stringify(good());
    const r = await new Promise((resolve, reject) => {
      const req = https.request(`${secure.url}${CALLS}`, {
        method: 'POST',
        ca: secure.ca,
        agent: false,
        headers: { Authorization: bearer(TEST_ACCOUNT.apiKey), 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(r.status, 201);
    assert.match(r.json.sid, UUID_RE);
    // without the CA the certificate is refused
    await assert.rejects(fetch(`${secure.url}/health`));
  } finally {
    await secure.close();
  }
});
