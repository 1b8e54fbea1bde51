// jambonz against the real server, the edges: Jambonz-Signature (forged, stale, missing) and the
// listen socket's wsAuth; MAX_CONCURRENT_CALLS and a retried call hook; bad input on the hooks
// and on the listen socket (close codes); outbound calls and live control through the fake
// jambonz REST API, with the feature-server player as the callee. The conversations themselves
// are in jambonz.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import WebSocket from 'ws';
import verbSpecs from '@jambonz/verb-specifications';
import { startServer, sqlRows, cleanup, sleep, SANITIZED } from './lib/harness.mjs';
import { JWT_SECRET, api } from './lib/jwt.mjs';
import { placeInbound, playOutbound, postHook, jambonzSignature } from '../fakes/jambonz_fs.mjs';
import { startFakeJambonzApi, TEST_ACCOUNT } from '../fakes/jambonz_api.mjs';
import { tone } from '../../tools/sim/index.mjs';

const SECRET = 'jambonz-webhook-secret-for-calls';
const CALLER = '+15551230001';
const DID = '+15557650000';
const SLACK = SANITIZED ? 3 : 1;
const quiet = { info() {}, debug() {}, error() {}, warn() {} };

let jambonzApi;
const servers = [];
before(async () => {
  jambonzApi = await startFakeJambonzApi();
});
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr.slice(-4000));
    cleanup(s.dir);
  }
  await jambonzApi.close();
});

async function server(env = {}) {
  const srv = await startServer({
    env: { TLS_PORT: 'off', AI_PROVIDER: 'echo', JAMBONZ_WEBHOOK_SECRET: SECRET, PRIMARY_TRANSFER_TARGET: '+14155550111', TRANSFER_TIMEOUT: '5', ...env },
  });
  servers.push(srv);
  return srv;
}

const sql = (srv, query) => sqlRows(join(srv.dir, 'data', 'switchboard.db'), query);
const count = (srv, where = 'true') => sql(srv, `SELECT count(*) AS n FROM calls WHERE ${where}`)[0].n;
const callRow = (srv, session) => sql(srv, `SELECT * FROM calls WHERE session_id='${session}'`)[0];
const ofType = (srv, session, type) =>
  sql(srv, `SELECT detail FROM call_events JOIN calls ON calls.id = call_id WHERE session_id='${session}' AND type='${type}' ORDER BY call_events.id`).map((e) => (e.detail ? JSON.parse(e.detail) : null));

async function waitFor(fn, ms = 5000) {
  const deadline = Date.now() + ms * SLACK;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`not met in ${ms * SLACK} ms: ${fn}`);
    await sleep(20);
  }
}

let sidSeq = 0;
const newSid = () => `8c1e0d4a-0000-4000-8000-${String(++sidSeq).padStart(12, '0')}`;
// A call hook body as jambonz's feature server posts it (snake_case), trimmed to what matters.
const callBody = (extra = {}) => ({
  call_sid: newSid(), direction: 'inbound', from: CALLER, to: DID, call_id: 'a1b2c3d4@10.0.0.10', call_status: 'trying', sip_status: 100, sip_reason: 'Trying',
  account_sid: TEST_ACCOUNT.sid, application_sid: '0dddaabf-0a30-43e3-84e8-426873b1a78b', ...extra,
});

// One hook POST with the raw body as given; signature: a header value, null for none, or
// undefined for a valid one over the body.
async function hook(srv, path, body, { signature } = {}) {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const headers = { 'content-type': 'application/json' };
  const sig = signature === undefined ? jambonzSignature(SECRET, raw) : signature;
  if (sig !== null) headers['jambonz-signature'] = sig;
  const res = await fetch(srv.url + path, { method: 'POST', headers, body: raw });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, type: res.headers.get('content-type'), text, json };
}

// The verbs jambonz would accept (its own validator), as names.
function validVerbs(json) {
  assert.ok(Array.isArray(json), `not a verb array: ${JSON.stringify(json)}`);
  verbSpecs.validate(quiet, json);
  return json.map((v) => v.verb);
}

// A listen socket opened by hand: {opened: {ok, status}, closed: {code, reason}, texts, ws}.
function rawListen(url, { protocols = ['audio.jambonz.org'], auth } = {}) {
  const headers = auth ? { Authorization: 'Basic ' + Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } : {};
  const ws = new WebSocket(url, protocols, { headers, perMessageDeflate: false, maxPayload: 1 << 20 });
  const s = { ws, texts: [], binary: 0 };
  ws.on('error', () => {});
  s.opened = new Promise((resolve) => {
    ws.once('open', () => resolve({ ok: true }));
    ws.once('unexpected-response', (req, res) => {
      res.resume();
      resolve({ ok: false, status: res.statusCode, headers: res.headers });
      ws.terminate();
    });
    ws.once('error', (e) => resolve({ ok: false, error: e.message }));
  });
  s.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('message', (d, isBinary) => (isBinary ? s.binary++ : s.texts.push(d.toString())));
  return s;
}
const metadata = (session, extra = {}) => JSON.stringify({ sampleRate: 8000, mixType: 'mono', callSid: 'x', session_id: session, tenant_id: '1', ...extra });
const withTimeout = (p, ms, what) => Promise.race([p, sleep(ms * SLACK).then(() => assert.fail(`${what}: nothing in ${ms * SLACK} ms`))]);

// ---------------------------------------------------------------------------------------------

test('signatures: forged, stale (301 s) and missing Jambonz-Signature get 403 and write nothing; a valid one works', async () => {
  const srv = await server();
  const body = callBody();
  const raw = JSON.stringify(body);
  // timestamps are taken right before each request: a slow run moves the server's clock on, so
  // the future case keeps a margin (301 s ahead could read as 300 a second later)
  const now = () => Math.floor(Date.now() / 1000);
  for (const [name, sig] of [
    ['forged', () => jambonzSignature('not-the-secret', raw)],
    ['stale', () => jambonzSignature(SECRET, raw, now() - 301)],
    ['from the future', () => jambonzSignature(SECRET, raw, now() + 310)],
    ['missing', () => null],
    ['malformed', () => 'v1=abc'],
    ['for another body', () => jambonzSignature(SECRET, raw.replace(CALLER, '+15559999999'))],
  ]) {
    const r = await hook(srv, '/jambonz/call', raw, { signature: sig() });
    assert.equal(r.status, 403, `${name}: ${r.status} ${r.text}`);
    assert.equal(count(srv), 0, `${name}: a call row was written`);
  }
  await waitFor(() => srv.logLines('jambonz.bad_signature').length === 6, 2000);
  // the other hooks check it too
  for (const path of ['/jambonz/status', `/jambonz/action?session=x&step=listen`]) {
    const r = await hook(srv, path, { ...body, call_status: 'completed' }, { signature: jambonzSignature('wrong', raw) });
    assert.equal(r.status, 403, path);
  }
  assert.equal(sql(srv, 'SELECT count(*) AS n FROM call_events')[0].n, 0);
  // a valid one (290 s old is inside the tolerance): the listen, one row
  const ok = await hook(srv, '/jambonz/call', raw, { signature: jambonzSignature(SECRET, raw, now() - 290) });
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(validVerbs(ok.json), ['listen']);
  assert.equal(count(srv, `call_sid='${body.call_sid}' AND platform='jambonz'`), 1);
});

test('the listen socket: without or with wrong wsAuth credentials 401; credentials of another session 1008; the right ones carry the call', async () => {
  const srv = await server();
  const a = await hook(srv, '/jambonz/call', callBody());
  const b = await hook(srv, '/jambonz/call', callBody({ from: '+15551230002' }));
  const la = a.json[0], lb = b.json[0];
  const sa = la.metadata.session_id, sb = lb.metadata.session_id;
  assert.notEqual(sa, sb);
  assert.equal(la.wsAuth.username, sa);
  assert.notEqual(la.wsAuth.password, lb.wsAuth.password);
  for (const [name, auth] of [
    ['none', null],
    ['wrong password', { username: sa, password: '0'.repeat(32) }],
    ['another session\'s password', { username: sa, password: lb.wsAuth.password }],
    ['password of the right length, wrong case', { username: sa, password: la.wsAuth.password.toUpperCase() }],
  ]) {
    const s = rawListen(la.url, { auth });
    const o = await s.opened;
    assert.equal(o.status, 401, `${name}: ${JSON.stringify(o)}`);
    assert.match(o.headers['www-authenticate'], /^Basic /);
  }
  await waitFor(() => srv.logLines('jambonz.bad_listen_auth').length === 4, 2000);
  // session A's credentials, session B's metadata: refused with 1008, B untouched
  const x = rawListen(la.url, { auth: la.wsAuth });
  assert.equal((await x.opened).ok, true);
  x.ws.send(metadata(sb, { callSid: callRow(srv, sb).call_sid }));
  assert.equal((await withTimeout(x.closed, 3000, 'close')).code, 1008);
  assert.equal(ofType(srv, sb, 'stream.started').length, 0);
  // the right credentials: the echo agent answers the caller's audio
  const y = rawListen(la.url, { auth: la.wsAuth });
  assert.equal((await y.opened).ok, true);
  y.ws.send(metadata(sa, { callSid: callRow(srv, sa).call_sid }));
  const frame = Buffer.alloc(320);
  for (let i = 0; i < 160; i++) frame.writeInt16LE(i % 16 < 8 ? 3000 : -3000, i * 2);
  for (let i = 0; i < 30; i++) {
    y.ws.send(frame);
    await sleep(20);
  }
  await waitFor(() => y.binary > 5, 3000);
  assert.equal(ofType(srv, sa, 'stream.started').length, 1);
  y.ws.close(1000);
  await y.closed;
  await waitFor(() => ofType(srv, sa, 'stream.stopped').length === 1, 3000);
});

test('limits: MAX_CONCURRENT_CALLS=1 declines a second live call with 486; a retried call_sid gets the same session and one row', async () => {
  const srv = await server({ MAX_CONCURRENT_CALLS: '1' });
  const first = placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, audio: tone(3000, 300) }); // hangs up below
  const sock = await withTimeout(new Promise((r) => first.on('listen', r)), 5000, 'the first call\'s listen');
  await waitFor(() => sock.received.length > 5, 3000);
  const session = JSON.parse(sock.metadataText).session_id;
  // jambonz retries the first call's hook (a timeout on its side): same session, not a second call
  const retry = await postHook({ url: `${srv.url}/jambonz/call` }, callBody({ call_sid: first.callSid }), { secret: SECRET });
  assert.equal(retry.status, 200, retry.error);
  assert.deepEqual(validVerbs(retry.json), ['listen']);
  assert.equal(retry.json[0].metadata.session_id, session);
  assert.equal(count(srv, `call_sid='${first.callSid}'`), 1);
  // a second caller while the first talks: declined busy before the answer
  const r2 = await placeInbound({ base: srv.url, secret: SECRET, from: '+15551230009', to: DID }).done;
  const answer = r2.hooks.find((h) => h.kind === 'call').json;
  assert.deepEqual(answer, [{ verb: 'sip:decline', status: 486, reason: 'Busy Here' }]);
  assert.equal(r2.sipStatus, 486);
  assert.equal(r2.answered, false);
  assert.deepEqual(r2.statuses.map((s) => s.callStatus), ['trying', 'failed']);
  assert.equal(r2.listens.length, 0);
  const declined = sql(srv, `SELECT * FROM calls WHERE call_sid='${r2.callSid}'`);
  assert.equal(declined.length, 1);
  assert.equal(declined[0].status, 'busy');
  assert.ok(declined[0].ended_at, 'the declined call is over');
  assert.deepEqual(ofType(srv, declined[0].session_id, 'call.rejected'), [{ reason: 'concurrency_limit' }]);
  await waitFor(() => srv.logLines('call.event').filter((l) => l.includes('type=call.rejected')).length === 1, 2000);
  // the retried hook of a declined call is declined again, with no second row
  const again = await postHook({ url: `${srv.url}/jambonz/call` }, callBody({ call_sid: r2.callSid, from: '+15551230009' }), { secret: SECRET });
  assert.deepEqual(again.json, [{ verb: 'sip:decline', status: 486, reason: 'Busy Here' }]);
  assert.equal(count(srv, `call_sid='${r2.callSid}'`), 1);
  first.hangup();
  const r1 = await first.done;
  assert.equal(r1.ok, true, r1.reason);
  await waitFor(() => callRow(srv, session)?.ended_at);
  // the first call over, the next caller gets the agent
  const r3 = await hook(srv, '/jambonz/call', callBody({ from: '+15551230010' }));
  assert.deepEqual(validVerbs(r3.json), ['listen']);
});

test('bad input on the hooks: malformed JSON or no call_sid is 400 with say + hangup and no row; an unknown session or step gets the apology', async () => {
  const srv = await server();
  for (const [name, raw] of [
    ['malformed JSON', '{"call_sid": "abc", "from": '],
    ['not an object', '["call_sid"]'],
    ['no call_sid', JSON.stringify({ ...callBody(), call_sid: undefined })],
    ['call_sid of the wrong type', JSON.stringify({ ...callBody(), call_sid: 42 })],
    ['call_sid with a space', JSON.stringify({ ...callBody(), call_sid: 'a b' })],
  ]) {
    const r = await hook(srv, '/jambonz/call', raw);
    assert.equal(r.status, 400, `${name}: ${r.status} ${r.text}`);
    assert.match(r.type, /^application\/json/);
    assert.deepEqual(validVerbs(r.json), ['say', 'hangup'], name);
  }
  assert.equal(count(srv), 0);
  await waitFor(() => srv.logLines('jambonz.bad_request').length >= 5, 2000);
  // an actionHook for a session nobody has: the apology, and nothing written
  const unknown = await hook(srv, '/jambonz/action?session=0123456789abcdef0123456789abcdef&step=dial&attempt=0', callBody({ dial_call_status: 'busy' }));
  assert.equal(unknown.status, 200);
  assert.deepEqual(validVerbs(unknown.json), ['say', 'hangup']);
  assert.match(unknown.json[0].text, /sorry/i);
  await waitFor(() => srv.logLines('jambonz.unknown_session').length === 1, 2000);
  // a real session: another call's call_sid, an unknown step, no attempt on a dial step
  const c = await hook(srv, '/jambonz/call', callBody());
  const session = c.json[0].metadata.session_id;
  const mismatch = await hook(srv, `/jambonz/action?session=${session}&step=listen`, callBody());
  assert.deepEqual(validVerbs(mismatch.json), ['say', 'hangup']);
  const step = await hook(srv, `/jambonz/action?session=${session}&step=teleport`, callBody({ call_sid: callRow(srv, session).call_sid }));
  assert.equal(step.status, 400);
  assert.deepEqual(validVerbs(step.json), ['say', 'hangup']);
  const noAttempt = await hook(srv, `/jambonz/action?session=${session}&step=dial`, callBody({ call_sid: callRow(srv, session).call_sid, dial_call_status: 'busy' }));
  assert.equal(noAttempt.status, 400);
  assert.deepEqual(ofType(srv, session, 'transfer.outcome'), []);
  // a status hook with a call_status jambonz never sends
  const st = await hook(srv, '/jambonz/status', callBody({ call_sid: callRow(srv, session).call_sid, call_status: 'exploded' }));
  assert.equal(st.status, 400);
  assert.equal(callRow(srv, session).status, 'ringing');
  assert.equal(count(srv), 1);
});

test('bad input on the listen socket: audio first 1002, odd bytes 1007, 11025 Hz 1003, unknown session 1008, over 64 KiB 1009, no subprotocol 400', async () => {
  // no webhook secret: the socket needs no credentials, so a made-up session reaches the bridge
  const srv = await server({ JAMBONZ_WEBHOOK_SECRET: undefined });
  const newCall = async () => {
    const r = await hook(srv, '/jambonz/call', callBody(), { signature: null });
    assert.equal(r.status, 200, r.text);
    const l = r.json[0];
    assert.equal(l.wsAuth, undefined, 'no wsAuth without a secret');
    return { url: l.url, session: l.metadata.session_id, callSid: callRow(srv, l.metadata.session_id).call_sid };
  };
  const cases = [
    ['binary before the metadata', 1002, (s, c) => s.ws.send(Buffer.alloc(320))],
    ['an odd number of bytes', 1007, (s, c) => (s.ws.send(metadata(c.session, { callSid: c.callSid })), s.ws.send(Buffer.alloc(321)))],
    ['sampleRate 11025', 1003, (s, c) => s.ws.send(metadata(c.session, { callSid: c.callSid, sampleRate: 11025 }))],
    ['mixType stereo', 1003, (s, c) => s.ws.send(metadata(c.session, { callSid: c.callSid, mixType: 'stereo' }))],
    ['an unknown session_id', 1008, (s, c) => s.ws.send(metadata('ffffffffffffffffffffffffffffffff', { callSid: c.callSid }))],
    ['another call\'s callSid', 1008, (s, c) => s.ws.send(metadata(c.session, { callSid: 'someone-else' }))],
    ['a frame over 64 KiB', 1009, (s, c) => (s.ws.send(metadata(c.session, { callSid: c.callSid })), s.ws.send(Buffer.alloc(64 * 1024 + 2)))],
    ['a text frame that is not JSON', 1007, (s, c) => s.ws.send('hello')],
  ];
  for (const [name, code, act] of cases) {
    const c = await newCall();
    const s = rawListen(c.url);
    assert.equal((await s.opened).ok, true, name);
    act(s, c);
    const closed = await withTimeout(s.closed, 3000, name);
    assert.equal(closed.code, code, `${name}: closed ${JSON.stringify(closed)}`);
  }
  // after a protocol error on a real call, the call goes to a person
  const c = await newCall();
  const s = rawListen(c.url);
  await s.opened;
  s.ws.send(metadata(c.session, { callSid: c.callSid }));
  s.ws.send(Buffer.alloc(320));
  s.ws.send(Buffer.alloc(3));
  assert.equal((await withTimeout(s.closed, 3000, 'odd bytes')).code, 1007);
  await waitFor(() => callRow(srv, c.session).next_action === 'transfer', 3000);
  assert.match(callRow(srv, c.session).transfer_reason, /odd number of bytes/);
  assert.deepEqual(ofType(srv, c.session, 'stream.protocol_error').map((d) => d.close_code), [1007]);
  const act = await hook(srv, `/jambonz/action?session=${c.session}&step=listen`, callBody({ call_sid: c.callSid, call_status: 'in-progress' }), { signature: null });
  assert.deepEqual(validVerbs(act.json), ['say', 'dial']);
  // no subprotocol offered (or only another one): 400, no socket
  for (const protocols of [[], ['audio.example.org']]) {
    const x = rawListen(c.url, { protocols });
    const o = await x.opened;
    assert.equal(o.status, 400, `${JSON.stringify(protocols)}: ${JSON.stringify(o)}`);
  }
  // mod_audio_fork's own name for it is accepted
  const d = await newCall();
  const y = rawListen(d.url, { protocols: ['audio.drachtio.org'] });
  assert.equal((await y.opened).ok, true);
  assert.equal(y.ws.protocol, 'audio.drachtio.org');
  y.ws.close(1000);
  await y.closed;
});

// ---- outbound and live control ----------------------------------------------------------------

async function outboundServer(env = {}) {
  jambonzApi.reset();
  jambonzApi.configure({ onCreate: null, onUpdate: null, featureServers: true, rateLimit: null });
  return server({
    JWT_SECRET, JAMBONZ_API_BASE: jambonzApi.url, JAMBONZ_ACCOUNT_SID: TEST_ACCOUNT.sid, JAMBONZ_API_KEY: TEST_ACCOUNT.apiKey,
    JAMBONZ_PHONE_NUMBER: '+14155550100', DEFAULT_PLATFORM: 'jambonz', JAMBONZ_TRUNK: 'carrier-1', CALLER_ID_POLICY: 'original', ...env,
  });
}
const initiate = (srv, body = {}) => api(srv, 'POST', '/api/calls/initiate', { body: { customer_id: 'c-1', phone: '+14155550123', agent_type: 'sales', ...body } });

// The callee of each created call: the feature-server player answers it, and the fake's call
// table follows the player's statuses (so that updates find it live).
function answerCreates() {
  const players = [];
  jambonzApi.configure({
    onCreate: (call, fake) => {
      const p = playOutbound({ ...call.request, callSid: call.sid, accountSid: call.accountSid, secret: SECRET, audio: tone(8000, 300), ringMs: 200, hangupAfterMs: 15000 });
      p.apiCall = call;
      p.on('event', (e) => {
        if (e.event === 'call-status' && e.callStatus !== 'trying') fake.setStatus(call, e.callStatus);
      });
      players.push(p);
    },
    onUpdate: (call, body) => {
      const p = players.find((x) => x.apiCall === call);
      if (p && body.call_status === 'completed') p.jambonzHangup('the REST API asked');
    },
  });
  return players;
}

test('outbound through the jambonz REST API: the create, the callee answers, the agent talks; transfer and hang-up as PUTs', async () => {
  const srv = await outboundServer();
  const players = answerCreates();
  const r = await initiate(srv);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.platform, 'jambonz');
  assert.equal(r.json.status, 'queued');
  const session = r.json.session_id;
  // the create as jambonz received it
  const creates = jambonzApi.requests.filter((q) => q.method === 'POST' && q.path === `/v1/Accounts/${TEST_ACCOUNT.sid}/Calls`);
  assert.equal(creates.length, 1);
  assert.equal(creates[0].headers.authorization, `Bearer ${TEST_ACCOUNT.apiKey}`);
  assert.equal(creates[0].status, 201);
  const body = JSON.parse(creates[0].body);
  assert.equal(body.from, '+14155550100');
  assert.deepEqual(body.to, { type: 'phone', number: '+14155550123', trunk: 'carrier-1' });
  assert.deepEqual(body.call_hook, { url: `${srv.url}/jambonz/call?session=${session}`, method: 'POST' });
  assert.deepEqual(body.call_status_hook, { url: `${srv.url}/jambonz/status?session=${session}`, method: 'POST' });
  const call = [...jambonzApi.calls.values()][0];
  assert.equal(r.json.call_sid, call.sid);
  assert.equal(JSON.stringify(r.json).includes(TEST_ACCOUNT.apiKey), false);
  // the callee answered: the call hook found the session and answered the listen
  const p = await waitFor(() => players[0]);
  const sock = await withTimeout(new Promise((res) => p.on('listen', res)), 5000, 'the outbound listen');
  await waitFor(() => sock.received.length > 10, 3000);
  const callHook = p.hooks.find((h) => h.kind === 'call');
  assert.equal(callHook.status, 200);
  assert.deepEqual(validVerbs(callHook.json), ['listen']);
  assert.equal(callHook.json[0].metadata.session_id, session);
  await waitFor(() => callRow(srv, session).status === 'in-progress');
  let row = callRow(srv, session);
  assert.deepEqual([row.platform, row.direction, row.call_sid, row.to_number, row.from_number], ['jambonz', 'outbound', call.sid, '+14155550123', '+14155550100']);
  assert.equal(ofType(srv, session, 'session.answered').length, 1);

  // Transfer from the dashboard: a PUT pointing the call at step=live of the chain
  const tr = await api(srv, 'POST', `/api/calls/${session}/transfer`, { body: { target: 'primary' } });
  assert.equal(tr.status, 202, tr.text);
  const put = jambonzApi.requests.filter((q) => q.method === 'PUT').at(-1);
  assert.equal(put.path, `/v1/Accounts/${TEST_ACCOUNT.sid}/Calls/${call.sid}`);
  const hookUrl = `${srv.url}/jambonz/action?session=${session}&step=live&attempt=0`;
  assert.deepEqual(JSON.parse(put.body), { call_hook: { url: hookUrl, method: 'POST' } });
  assert.deepEqual(call.callHooks, [hookUrl]);
  assert.deepEqual(ofType(srv, session, 'transfer.attempt').map((d) => [d.attempt, d.target, d.by]), [[0, '+14155550111', 'agent@example.com']]);
  // jambonz fetches the new instructions: that stage's dial (the customer's number shown: original)
  const live = await postHook({ url: hookUrl }, { call_sid: call.sid, direction: 'outbound', from: '+14155550100', to: '+14155550123', call_status: 'in-progress', account_sid: TEST_ACCOUNT.sid }, { secret: SECRET });
  assert.equal(live.status, 200, live.error);
  assert.deepEqual(validVerbs(live.json), ['say', 'dial']);
  assert.deepEqual(live.json[1].target, [{ type: 'phone', number: '+14155550111', trunk: 'carrier-1' }]);
  assert.equal(live.json[1].callerId, '+14155550123');
  assert.equal(live.json[1].actionHook, `${srv.url}/jambonz/action?session=${session}&step=dial&attempt=0`);
  // a target that is not the tenant's is refused before jambonz hears of it
  const bad = await api(srv, 'POST', `/api/calls/${session}/transfer`, { body: { target: '+19005550000' } });
  assert.equal(bad.status, 400);

  // Hang up from the dashboard: a PUT with call_status completed; the call ends
  const puts = jambonzApi.requests.filter((q) => q.method === 'PUT').length;
  const hu = await api(srv, 'POST', `/api/calls/${session}/hangup`);
  assert.equal(hu.status, 202, hu.text);
  const hput = jambonzApi.requests.filter((q) => q.method === 'PUT');
  assert.equal(hput.length, puts + 1);
  assert.deepEqual(JSON.parse(hput.at(-1).body), { call_status: 'completed' });
  const done = await p.done;
  assert.equal(done.ok, true, done.reason);
  assert.equal(done.terminatedBy, 'jambonz');
  await waitFor(() => callRow(srv, session).ended_at);
  row = callRow(srv, session);
  assert.equal(row.status, 'completed');
  assert.equal(ofType(srv, session, 'api.hangup').length, 1);
  // jambonz says the call is gone: 409
  jambonzApi.end(call);
  const gone = await api(srv, 'POST', `/api/calls/${session}/hangup`);
  assert.equal(gone.status, 409, gone.text);
});

test('outbound errors: jambonz 401 -> 502 jambonz_auth, 503 -> 503 jambonz_unavailable with Retry-After, 429 -> 503, 400 -> 502 jambonz_error', async () => {
  const srv = await outboundServer();
  for (const [status, extra, want, code, retryAfter] of [
    [401, {}, 502, 'jambonz_auth', null],
    [403, {}, 502, 'jambonz_auth', null],
    [503, { retryAfter: 7 }, 503, 'jambonz_unavailable', '7'],
    [429, { retryAfter: 2 }, 503, 'jambonz_unavailable', '2'],
    [500, {}, 503, 'jambonz_unavailable', '5'],
    [400, {}, 502, 'jambonz_error', null],
  ]) {
    jambonzApi.reset();
    jambonzApi.failNext(1, status, undefined, { match: { method: 'POST' }, ...extra });
    const r = await initiate(srv, { customer_id: `c-${status}` });
    assert.equal(r.status, want, `${status}: ${r.text}`);
    assert.equal(r.json.error.code, code, `${status}: ${r.text}`);
    assert.equal(r.headers.get('retry-after'), retryAfter, `${status}: Retry-After`);
    assert.equal(jambonzApi.requests.length, 1, `${status}: a create is never retried`);
    const row = callRow(srv, r.json.error.session_id);
    assert.equal(row.status, 'failed', `${status}`);
    assert.equal(row.platform, 'jambonz');
  }
});

test('live control of a ringing outbound call: hang-up is no-answer; an inbound jambonz call can be hung up too', async () => {
  const srv = await outboundServer();
  jambonzApi.configure({ onCreate: 'ring' });
  const r = await initiate(srv);
  assert.equal(r.status, 201, r.text);
  const session = r.json.session_id;
  // jambonz's refusals: a call it no longer knows is 409, a request it refuses 502 with its message
  jambonzApi.failNext(1, 404, 'Not Found', { match: { method: 'PUT' } });
  const gone = await api(srv, 'POST', `/api/calls/${session}/hangup`);
  assert.equal(gone.status, 409, gone.text);
  assert.equal(gone.json.error.code, 'not_in_progress');
  jambonzApi.failNext(1, 400, { msg: 'no such thing' }, { match: { method: 'PUT' } });
  const refused = await api(srv, 'POST', `/api/calls/${session}/hangup`);
  assert.equal(refused.status, 502, refused.text);
  assert.equal(refused.json.error.code, 'jambonz_error');
  assert.match(refused.json.error.message, /no such thing/);
  const hu = await api(srv, 'POST', `/api/calls/${session}/hangup`);
  assert.equal(hu.status, 202, hu.text);
  assert.deepEqual(JSON.parse(jambonzApi.requests.at(-1).body), { call_status: 'no-answer' });
  // an inbound call: registered with the fake as the feature server would report it
  const c = placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, audio: tone(8000, 300), hangupAfterMs: 15000, accountSid: TEST_ACCOUNT.sid });
  jambonzApi.configure({ onCreate: null, onUpdate: (call, body) => body.call_status && call.sid === c.callSid && c.jambonzHangup('the REST API asked') });
  jambonzApi.addCall({ sid: c.callSid, from: CALLER, to: DID });
  const sock = await withTimeout(new Promise((res) => c.on('listen', res)), 5000, 'the listen');
  const s2 = JSON.parse(sock.metadataText).session_id;
  await waitFor(() => callRow(srv, s2).status === 'in-progress');
  const h2 = await api(srv, 'POST', `/api/calls/${s2}/hangup`);
  assert.equal(h2.status, 202, h2.text);
  assert.deepEqual(JSON.parse(jambonzApi.requests.at(-1).body), { call_status: 'completed' });
  const done = await c.done;
  assert.equal(done.terminatedBy, 'jambonz');
  await waitFor(() => callRow(srv, s2).ended_at);
  assert.equal(callRow(srv, s2).status, 'completed');
});
