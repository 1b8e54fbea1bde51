// Two switchboard instances sharing one PostgreSQL (a real server started by the tests' pg
// fixture): a call's voice webhook lands on one and its status callbacks on the other, a
// retried webhook finds the first instance's row, the tenant's limit holds across both, and
// an instance started before its database waits, answering /health with 503.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, sleep, curl } from './lib/harness.mjs';
import { pgDatabase, pgDrop, psql } from './lib/pg.mjs';
import { AUTH_TOKEN, PUBLIC_BASE_URL, callSid, webhook, find, voiceParams, sessionOf } from './lib/twilio.mjs';
import { JWT_SECRET, token, api } from './lib/jwt.mjs';
import { open, start, media } from './lib/rawmedia.mjs';
import twilio from 'twilio';

const servers = [];
const dbs = [];
async function server(url, env = {}) {
  const srv = await startServer({
    env: {
      DATABASE_URL: url, JWT_SECRET, TWILIO_AUTH_TOKEN: AUTH_TOKEN, PUBLIC_BASE_URL, TLS_PORT: 'off', AI_PROVIDER: 'echo',
      TWILIO_PHONE_NUMBER: '+14155550100', ...env,
    },
  });
  servers.push(srv);
  return srv;
}
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
  for (const d of dbs) pgDrop(d);
});

test('a call whose webhook goes to one instance and whose media stream and callbacks go to the other', async () => {
  const url = await pgDatabase('sb_two');
  dbs.push(url);
  const [a, b] = [await server(url), await server(url)];
  for (const s of [a, b]) {
    const h = curl([`http://127.0.0.1:${s.port}/health`]);
    assert.equal(h.status, 200, h.body);
    assert.match(h.body, /"db":"ok"/);
  }
  const sid = callSid();
  const r = await webhook(a, '/twilio/voice', voiceParams(sid));
  assert.equal(r.status, 200);
  const session = sessionOf(r.xml);
  assert.ok(find(r.xml, 'Stream'));
  // Twilio retries the webhook and the load balancer picks the other instance: same session
  const again = await webhook(b, '/twilio/voice', voiceParams(sid));
  assert.equal(sessionOf(again.xml), session);
  assert.equal(psql(url, `SELECT COUNT(*) FROM calls WHERE call_sid='${sid}'`), '1');
  // Twilio's media stream for it reaches b: b finds the session a wrote and bridges the echo agent
  const sig = twilio.getExpectedTwilioSignature(AUTH_TOKEN, 'wss://voice.example.com/twilio/media', {});
  const peer = open(b, { 'X-Twilio-Signature': sig });
  await peer.opened;
  const stream = start(peer, { sid, session });
  for (let i = 0; i < 25; i++) {
    media(peer, stream, i, 0x11);
    await sleep(20);
  }
  let echoed = 0;
  for (let i = 0; i < 50 && echoed < 10; i++) {
    await sleep(100);
    echoed = peer.received.filter((m) => m.event === 'media').length;
  }
  assert.ok(echoed >= 10, `b echoed ${echoed} frames`);
  assert.equal(psql(url, `SELECT stream_sid FROM calls WHERE call_sid='${sid}'`), stream);
  peer.ws.close();
  await peer.closed;
  // the callbacks land on b; a's view of the call moves with them
  const st = await webhook(b, '/twilio/status', { CallSid: sid, CallStatus: 'in-progress', SequenceNumber: '1', AccountSid: 'AC00000000000000000000000000000000' });
  assert.equal(st.status, 200);
  const done = await webhook(a, '/twilio/status', { CallSid: sid, CallStatus: 'completed', SequenceNumber: '2', CallDuration: '7', AccountSid: 'AC00000000000000000000000000000000' });
  assert.equal(done.status, 200);
  // a late, older callback on b changes nothing
  await webhook(b, '/twilio/status', { CallSid: sid, CallStatus: 'ringing', SequenceNumber: '0', AccountSid: 'AC00000000000000000000000000000000' });
  assert.equal(psql(url, `SELECT status||','||duration_s||','||CASE WHEN ended_at IS NOT NULL THEN 'ended' END FROM calls WHERE call_sid='${sid}'`), 'completed,7,ended');
  assert.equal(psql(url, `SELECT string_agg(type, ',' ORDER BY e.id) FROM call_events e JOIN calls c ON c.id = e.call_id WHERE call_sid='${sid}'`),
    'call.started,stream.started,ai.ready,stream.dropped,call.status,call.status,call.status_ignored');
});

test("the tenant's concurrency limit holds across instances", async () => {
  const url = await pgDatabase('sb_limit');
  dbs.push(url);
  const [a, b] = [await server(url, { MAX_CONCURRENT_CALLS: '3' }), await server(url, { MAX_CONCURRENT_CALLS: '3' })];
  // twenty callers at once, alternating between the instances
  const sids = Array.from({ length: 20 }, () => callSid());
  const answers = await Promise.all(sids.map((sid, i) => webhook(i % 2 ? b : a, '/twilio/voice', voiceParams(sid))));
  for (const r of answers) assert.equal(r.status, 200);
  const admitted = answers.filter((r) => find(r.xml, 'Stream')).length;
  assert.equal(admitted, 3);
  assert.equal(psql(url, "SELECT COUNT(*) FROM calls WHERE ended_at IS NULL"), '3');
  assert.equal(psql(url, "SELECT COUNT(*) FROM calls WHERE status = 'busy'"), '17');
});

test('started before its database exists: /health is 503, then it comes up by itself', async () => {
  const url = await pgDatabase('sb_late');
  dbs.push(url);
  const missing = url.replace(/\/([^/]+)$/, '/$1_later');
  const srv = await server(missing);
  const h = curl([`http://127.0.0.1:${srv.port}/health`]);
  assert.equal(h.status, 503);
  // a webhook meanwhile gets valid TwiML (the apology and fallback), not an error page
  const r = await webhook(srv, '/twilio/voice', voiceParams(callSid()));
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/xml/);
  psql(url, `CREATE DATABASE ${missing.split('/').pop()}`);
  dbs.push(missing);
  let ok = false;
  for (let i = 0; i < 60 && !ok; i++) {
    await sleep(250);
    ok = curl([`http://127.0.0.1:${srv.port}/health`]).status === 200;
  }
  assert.ok(ok, srv.stderr);
  const sid = callSid();
  const again = await webhook(srv, '/twilio/voice', voiceParams(sid));
  assert.ok(find(again.xml, 'Stream'));
});

test("one instance's dashboard feed shows the calls another instance handles; Idempotency-Key across instances", async () => {
  const url = await pgDatabase('sb_live');
  dbs.push(url);
  const [a, b] = [await server(url), await server(url)];
  const tok = token({ tenant_id: 1 });
  const sid = callSid();
  // the page listens on b; the call goes to a
  const watch = (async () => {
    await new Promise((r) => setTimeout(r, 300)); // the stream is open before the call starts
    const r = await webhook(a, '/twilio/voice', voiceParams(sid));
    return sessionOf(r.xml);
  })();
  const ac = new AbortController();
  const res = await fetch(`http://127.0.0.1:${b.port}/api/live`, { headers: { Authorization: 'Bearer ' + tok }, signal: ac.signal });
  assert.equal(res.status, 200);
  const session = await watch;
  let found = null;
  const deadline = Date.now() + 5000;
  let buf = '';
  const reader = res.body.getReader();
  while (!found && Date.now() < deadline) {
    const { value, done } = await Promise.race([reader.read(), new Promise((r) => setTimeout(() => r({ value: null, done: false }), 500))]);
    if (done) break;
    if (value) buf += Buffer.from(value).toString();
    for (const block of buf.split('\n\n')) {
      if (block.startsWith('event: call\n') && block.includes(`"id":"${session}"`)) found = JSON.parse(block.split('data: ')[1]);
    }
  }
  ac.abort();
  assert.ok(found, `b's feed did not show the call a answered: ${buf}`);
  assert.equal(found.status, 'ringing');

  // an API client retries POST /api/calls/initiate with the same key, once to each instance
  const body = { customer_id: 'c-9', phone: '+14155550177', agent_type: 'sales' };
  const headers = { 'Idempotency-Key': 'retry-me-1' };
  const [r1, r2] = await Promise.all([
    api(a, 'POST', '/api/calls/initiate', { tok, body, headers }),
    api(b, 'POST', '/api/calls/initiate', { tok, body, headers }),
  ]);
  // one places the call; the other finds the key taken: the same answer, or 409 while the first
  // is still in flight (as on one instance)
  const ok = (r) => [200, 201, 202].includes(r.status);
  const busy = (r) => r.status === 409 && r.json?.error?.code === 'in_progress';
  assert.ok(ok(r1) || ok(r2), r1.text + r2.text);
  for (const r of [r1, r2]) assert.ok(ok(r) || busy(r), r.text);
  const first = ok(r1) ? r1 : r2;
  const later = await api(ok(r1) ? b : a, 'POST', '/api/calls/initiate', { tok, body, headers });
  assert.ok(ok(later), later.text + psql(url, "SELECT session_id, status, idempotent_response FROM calls WHERE idempotency_key = 'retry-me-1'") + a.stderr.slice(-1500) + b.stderr.slice(-1500));
  assert.deepEqual(later.json, first.json);
  assert.equal(psql(url, "SELECT COUNT(*) FROM calls WHERE idempotency_key = 'retry-me-1'"), '1');
});
