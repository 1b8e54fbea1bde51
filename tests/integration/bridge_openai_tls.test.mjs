// The bridge with the OpenAI Realtime provider over TLS (wss://), against the fake Realtime
// server serving the test PKI's certificate (DNS:localhost, IP:127.0.0.1, signed by a test
// CA the server trusts only through AI_CA_FILE): whole calls by host name (resolved on
// libuv's thread pool, SNI, the name check) and by IP literal (the IP SAN), and the caller
// handed to a person when the certificate is refused: an unknown CA, an IP or a name the
// certificate does not carry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, sqlite, cleanup, sleep } from './lib/harness.mjs';
import { callSid, webhook, verbs } from './lib/twilio.mjs';
import { voiceCall, streamCall } from './lib/rawmedia.mjs';
import { startFakeRealtime, PATH } from '../fakes/openai_realtime.mjs';
import { makeTestPki } from '../fakes/tls.mjs';
import { MediaStream, tone } from '../../tools/sim/index.mjs';

const KEY = 'sk-test-0123456789';
let pkiDir, pki;
let fake; // on 127.0.0.1: in the certificate (as an IP, and as localhost)
let other; // on 127.0.0.2 (Linux routes all of 127/8 to lo): not in the certificate
const servers = [];
before(async () => {
  pkiDir = mkdtempSync(join(tmpdir(), 'sb-ai-pki-'));
  pki = makeTestPki(pkiDir);
  fake = await startFakeRealtime({ apiKey: KEY, keepAudio: true, tls: { cert: pki.cert, key: pki.key } });
  other = await startFakeRealtime({ apiKey: KEY, host: '127.0.0.2', tls: { cert: pki.cert, key: pki.key } });
});
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
  await fake?.close();
  await other?.close();
  if (pkiDir) cleanup(pkiDir);
});
async function server(env = {}) {
  const srv = await startServer({
    env: { AI_PROVIDER: 'openai', OPENAI_API_KEY: KEY, TLS_PORT: 'off',
      PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com;transport=tcp', AI_CONNECT_TIMEOUT_MS: '3000', ...env },
  });
  servers.push(srv);
  return srv;
}
const wssUrl = (host, f) => `wss://${host}:${f.port}${PATH}`;
const db = (srv) => srv.dir + '/data/switchboard.db';
const q = (srv, sql) => sqlite(db(srv), sql);
const nextAction = (srv, session) => q(srv, `SELECT COALESCE(next_action,'')||','||COALESCE(transfer_reason,'') FROM calls WHERE session_id='${session}'`);

// A call whose caller streams frames until the stream closes or `ms` pass.
const call = (srv, { sid = callSid(), ...o } = {}) => streamCall(srv, sid, o);

// The caller side with the simulator's Twilio client: real-time frames, marks echoed when the
// audio before them has played.
async function simCall(srv, { ms = 3000, sid = callSid() } = {}) {
  const { session } = await voiceCall(srv, sid);
  const stream = new MediaStream({
    url: srv.url.replace('http', 'ws') + '/twilio/media', callSid: sid, customParameters: { session_id: session, tenant_id: '1' },
    audio: tone(ms, 300), tailMs: 0, autoStop: true,
  });
  const result = await stream.run();
  return { sid, session, stream, result };
}

// The certificate is refused: no WebSocket session at the fake (its handshake failed), the
// caller handed to a person (transfer, ai_failed; connect_action dials the chain), and the log
// says why: `openai.failed ... what="certificate refused: <why>"`.
async function refused(srv, f, why) {
  const sessions = f.sessions.length, tlsErrors = f.tlsErrors.length;
  const c = await call(srv, { ms: 5000 });
  const closed = await c.peer.closed;
  assert.equal(closed.code, 1000);
  await sleep(50);
  assert.equal(nextAction(srv, c.session), 'transfer,ai_failed');
  const r = await webhook(srv, `/twilio/connect_action?session=${c.session}`, { CallSid: c.sid }, { signature: null });
  assert.deepEqual(verbs(r.xml), ['Say', 'Dial', 'Say', 'Hangup']);
  const failed = srv.logLines('openai.failed');
  assert.equal(failed.length, 1, srv.stderr);
  assert.match(failed[0], new RegExp(`session=${c.session} what="certificate refused: ${why}"`), failed[0]);
  assert.equal(f.sessions.length, sessions, 'no WebSocket session was opened');
  await f.waitFor(() => f.tlsErrors.length > tlsErrors, 2000);
}

test('wss://localhost with AI_CA_FILE: a whole call (the name resolved, SNI and the name checked)', async () => {
  const srv = await server({ OPENAI_REALTIME_URL: wssUrl('localhost', fake), AI_CA_FILE: pki.caFile });
  const before = fake.sessions.length, handshakes = fake.tlsConnections.length;
  const c = await simCall(srv, { ms: 3500 });
  const s = fake.sessions[before];
  assert.ok(s, 'the fake accepted a session');
  assert.equal(s.headers.host, `localhost:${fake.port}`);
  assert.equal(s.headers.authorization, 'Bearer ' + KEY);
  assert.ok(s.ofType('session.update').length >= 1, 'session.update was sent');
  assert.equal(s.rejectedUpdates.length, 0);
  assert.ok(s.audio.frames >= 100, `${s.audio.frames} frames appended`);
  assert.deepEqual(s.audio.chunks[5], tone(3500, 300).subarray(5 * 160, 6 * 160));
  assert.ok(c.result.stats.agentAudioMs >= 1000, `the caller heard ${c.result.stats.agentAudioMs} ms of the agent`);
  assert.equal(c.result.stats.protocolErrors ?? 0, 0);
  // the server named the host in SNI
  assert.deepEqual(fake.tlsConnections.slice(handshakes).map((x) => x.servername), ['localhost']);
  assert.equal(srv.logLines('openai.failed').length, 0, srv.stderr);
});

test('wss://127.0.0.1 with AI_CA_FILE: a call works (the IP literal checked against the IP SAN)', async () => {
  const srv = await server({ OPENAI_REALTIME_URL: wssUrl('127.0.0.1', fake), AI_CA_FILE: pki.caFile });
  const before = fake.sessions.length, handshakes = fake.tlsConnections.length;
  const c = await call(srv, { ms: 2000 });
  const s = fake.sessions[before];
  assert.ok(s, 'the fake accepted a session');
  assert.equal(s.headers.host, `127.0.0.1:${fake.port}`);
  assert.ok(s.ofType('session.update').length >= 1, 'session.update was sent');
  assert.ok(s.audio.frames >= 50, `${s.audio.frames} frames appended`);
  assert.ok(c.peer.received.some((m) => m.event === 'media'), 'agent audio reached the caller');
  // no SNI for an IP literal (RFC 6066)
  assert.deepEqual(fake.tlsConnections.slice(handshakes).map((x) => x.servername), [false]);
  assert.equal(srv.logLines('openai.failed').length, 0, srv.stderr);
  c.peer.ws.close();
});

test('without AI_CA_FILE the test CA is unknown: refused, the caller is handed to a person', async () => {
  const srv = await server({ OPENAI_REALTIME_URL: wssUrl('localhost', fake) });
  await refused(srv, fake, 'unable to get local issuer certificate');
});

test('an IP the certificate does not carry (127.0.0.2): refused, the caller is handed to a person', async () => {
  const srv = await server({ OPENAI_REALTIME_URL: wssUrl('127.0.0.2', other), AI_CA_FILE: pki.caFile });
  await refused(srv, other, 'IP address mismatch');
});

// A host name the certificate does not carry: this machine's own name, when it resolves to
// one of the fakes' loopback addresses (e.g. through /etc/hosts); skipped elsewhere.
const own = hostname();
const ownAddr = await lookup(own, { family: 4 }).then((r) => r.address, () => null);
const nameSkip = own === 'localhost' || !['127.0.0.1', '127.0.0.2'].includes(ownAddr)
  ? `${own} resolves to ${ownAddr ?? 'nothing'}, not a fake's address` : false;
test(`a host name the certificate does not carry (${own}): refused, the caller is handed to a person`, { skip: nameSkip }, async () => {
  const f = ownAddr === '127.0.0.1' ? fake : other;
  const srv = await server({ OPENAI_REALTIME_URL: wssUrl(own, f), AI_CA_FILE: pki.caFile });
  await refused(srv, f, 'hostname mismatch');
});
