// The media stream's protocol edges, with a plain WebSocket peer: the upgrade (signature,
// HTTP/2), refused starts, oversized / binary / malformed frames, DTMF 0, a dropped socket,
// the silence timeout, the recording, and 100 concurrent calls through the echo agent.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import twilio from 'twilio';
import { startServer, sqlite, cleanup, curl, sleep } from './lib/harness.mjs';
import { callSid, webhook, verbs } from './lib/twilio.mjs';
import { JWT_SECRET, api } from './lib/jwt.mjs';
import { voiceCall, open, start, media, sendFrames } from './lib/rawmedia.mjs';

const servers = [];
async function server(env = {}) {
  const srv = await startServer({ env: { AI_PROVIDER: 'echo', JWT_SECRET, PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com', ...env } });
  servers.push(srv);
  return srv;
}
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
});
const db = (srv) => srv.dir + '/data/switchboard.db';
const events = (srv, session) => sqlite(db(srv), `SELECT group_concat(type, ',') FROM call_events JOIN calls ON calls.id = call_id WHERE session_id='${session}'`);
const nextAction = (srv, session) => sqlite(db(srv), `SELECT COALESCE(next_action,'')||','||COALESCE(transfer_reason,'') FROM calls WHERE session_id='${session}'`);

async function connectAction(srv, session, sid) {
  const r = await webhook(srv, `/twilio/connect_action?session=${session}`, { CallSid: sid }, { signature: null });
  return verbs(r.xml);
}

test('the echo agent plays the caller back; marks; DTMF 0 hands the call to a person', async () => {
  const srv = await server({ RECORDINGS_DIR: 'rec' });
  const sid = callSid();
  const { session } = await voiceCall(srv, sid);
  const peer = open(srv);
  await peer.opened;
  const stream = start(peer, { sid, session });
  const back = await sendFrames(peer, stream, { byte: 0x10 });
  assert.ok(back.length >= 20, `echoed ${back.length} frames`);
  assert.equal(back[0].streamSid, stream);
  assert.equal(Buffer.from(back[0].media.payload, 'base64')[0], 0x10);
  assert.ok(peer.received.some((m) => m.event === 'mark'));
  peer.ws.send(JSON.stringify({ event: 'dtmf', streamSid: stream, sequenceNumber: '99', dtmf: { track: 'inbound_track', digit: '0' } }));
  const closed = await peer.closed;
  assert.equal(closed.code, 1000);
  await sleep(50);
  assert.equal(nextAction(srv, session), 'transfer,caller pressed 0');
  assert.deepEqual(await connectAction(srv, session, sid), ['Say', 'Dial', 'Say', 'Hangup']);
  assert.match(events(srv, session), /stream.started,ai.ready,.*dtmf,stream.closing/);

  // the recording: a stereo mu-law WAV, served to the tenant
  const rec = await fetch(srv.url + `/api/calls/${session}/recording`, { headers: { Authorization: 'Bearer ' + (await import('./lib/jwt.mjs')).token() } });
  assert.equal(rec.status, 200);
  assert.equal(rec.headers.get('content-type'), 'audio/wav');
  const wav = Buffer.from(await rec.arrayBuffer());
  assert.equal(wav.toString('ascii', 0, 4), 'RIFF');
  assert.equal(wav.readUInt16LE(20), 7); // mu-law
  assert.equal(wav.readUInt16LE(22), 2); // caller left, agent right
  assert.equal(wav.readUInt32LE(54), wav.length - 58);
  assert.ok(wav.length - 58 >= 2 * 8 * 400, `${wav.length} bytes`); // at least the 500 ms the caller spoke
  assert.equal((await api(srv, 'GET', `/api/calls/${session}/recording`, { tok: (await import('./lib/jwt.mjs')).token({ tenant_id: 2 }) })).status, 404);
});

test('the upgrade: signature checked, HTTP/2 and plain requests refused', async () => {
  const token = 'media-auth-token-0123456789';
  const srv = await server({ TWILIO_AUTH_TOKEN: token, PUBLIC_BASE_URL: 'https://voice.example.com' });
  const bad = open(srv, { 'X-Twilio-Signature': 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' });
  await assert.rejects(bad.opened, (e) => e.status === 403);
  const none = open(srv);
  await assert.rejects(none.opened, (e) => e.status === 403);
  const sig = twilio.getExpectedTwilioSignature(token, 'wss://voice.example.com/twilio/media', {});
  const good = open(srv, { 'X-Twilio-Signature': sig });
  await good.opened;
  good.ws.close(1000);
  assert.equal(curl([`${srv.url}/twilio/media`]).status, 400); // not a WebSocket handshake
  const h2 = curl(['-k', '--http2', `${srv.tlsUrl}/twilio/media`]);
  assert.equal(h2.status, 400);
  assert.equal(h2.version, '2');
});

test('over wss (the server\'s own TLS): echoed audio, marks, and a clean close', async () => {
  const srv = await server();
  const sid = callSid();
  const { session } = await voiceCall(srv, sid);
  const peer = open(srv, {}, { tls: true });
  await peer.opened;
  const stream = start(peer, { sid, session });
  const back = await sendFrames(peer, stream, { byte: 0x30 });
  assert.ok(back.length >= 20, `echoed ${back.length} frames`);
  assert.equal(Buffer.from(back[0].media.payload, 'base64')[0], 0x30);
  assert.ok(peer.received.some((m) => m.event === 'mark'));
  peer.ws.close(1000);
  assert.equal((await peer.closed).code, 1000);
});

test('an unknown session or a call that does not match is refused with 1008', async () => {
  const srv = await server();
  const a = open(srv);
  await a.opened;
  start(a, { sid: callSid(), session: 'f'.repeat(32) });
  assert.equal((await a.closed).code, 1008);
  const sid = callSid();
  const { session } = await voiceCall(srv, sid);
  const b = open(srv);
  await b.opened;
  start(b, { sid: callSid() /* another call */, session });
  assert.equal((await b.closed).code, 1008);
  await sleep(50);
  assert.ok(srv.logLines('media.refused').length >= 2);
});

for (const [name, send, code] of [
  ['a text frame over 64 KiB', (ws) => ws.send('{"event":"media","x":"' + 'a'.repeat(70 * 1024) + '"}'), 1009],
  ['a binary frame', (ws) => ws.send(Buffer.from([1, 2, 3]), { binary: true }), 1003],
  ['bad JSON', (ws) => ws.send('{"event": media'), 1007],
]) {
  test(`${name}: the stream is closed cleanly and the call falls back to a person`, async () => {
    const srv = await server();
    const sid = callSid();
    const { session } = await voiceCall(srv, sid);
    const peer = open(srv);
    await peer.opened;
    const stream = start(peer, { sid, session });
    // the echo is playing audio back when the bad frame comes: the close code still goes out
    for (let i = 0; i < 10; i++) {
      media(peer, stream, i);
      await sleep(20);
    }
    send(peer.ws);
    const closed = await peer.closed;
    assert.equal(closed.code, code);
    assert.ok(peer.received.some((m) => m.event === 'media'), 'echoed audio before the close');
    await sleep(50);
    assert.match(events(srv, session), /stream.protocol_error/);
    assert.match(nextAction(srv, session), /^transfer,/);
    assert.deepEqual(await connectAction(srv, session, sid), ['Say', 'Dial', 'Say', 'Hangup']);
  });
}

test('Twilio dropping the socket closes the AI side and marks the call', async () => {
  const srv = await server();
  const sid = callSid();
  const { session } = await voiceCall(srv, sid);
  const peer = open(srv);
  await peer.opened;
  const stream = start(peer, { sid, session });
  for (let i = 0; i < 5; i++) media(peer, stream, i);
  await sleep(100);
  peer.ws._socket.destroy(); // no close frame, no stop
  await sleep(200);
  assert.match(events(srv, session), /stream.dropped/);
});

test('silence: one prompt, then goodbye and hang up', async () => {
  const srv = await server({ SILENCE_TIMEOUT_S: '1' });
  const sid = callSid();
  const { session } = await voiceCall(srv, sid);
  const peer = open(srv);
  await peer.opened;
  const stream = start(peer, { sid, session });
  let i = 0;
  const timer = setInterval(() => media(peer, stream, i++), 20); // silence (0xFF)
  const closed = await peer.closed;
  clearInterval(timer);
  assert.equal(closed.code, 1000);
  assert.match(events(srv, session), /silence.prompt,silence.timeout/);
  assert.equal(nextAction(srv, session), 'hangup,silence');
  assert.deepEqual(await connectAction(srv, session, sid), ['Hangup']);
});

test('100 concurrent calls through the echo agent', async () => {
  const srv = await server({ WORKERS: '2', MAX_CONCURRENT_CALLS: '0' });
  const calls = await Promise.all(Array.from({ length: 100 }, async () => {
    const sid = callSid();
    const { session } = await voiceCall(srv, sid);
    const peer = open(srv);
    await peer.opened;
    return { sid, session, peer, stream: start(peer, { sid, session }) };
  }));
  for (let i = 0; i < 50; i++) { // one second of audio each
    for (const c of calls) media(c.peer, c.stream, i, 0x20);
    await sleep(20);
  }
  await sleep(400);
  for (const c of calls) {
    const echoed = c.peer.received.filter((m) => m.event === 'media').length;
    assert.ok(echoed >= 40, `call ${c.session} echoed ${echoed} of 50`);
    c.peer.ws.send(JSON.stringify({ event: 'stop', streamSid: c.stream, sequenceNumber: '999', stop: { accountSid: 'AC', callSid: c.sid } }));
    c.peer.ws.close(1000);
  }
  // the server answers each caller's close frame with its own, after any audio still queued
  for (const closed of await Promise.all(calls.map((c) => c.peer.closed))) assert.equal(closed.code, 1000);
  await sleep(100);
  assert.equal(sqlite(db(srv), "SELECT COUNT(*) FROM call_events WHERE type = 'stream.stopped'"), '100');
});

test('the maximum call length ends the call with a goodbye and a hang-up', async () => {
  const srv = await server({ MAX_CALL_S: '2' });
  const sid = callSid();
  const { session } = await voiceCall(srv, sid);
  const peer = open(srv);
  await peer.opened;
  const stream = start(peer, { sid, session });
  let i = 0;
  const t0 = Date.now();
  const timer = setInterval(() => media(peer, stream, i++, 0x20), 20);
  const closed = await peer.closed;
  clearInterval(timer);
  assert.equal(closed.code, 1000);
  assert.ok(Date.now() - t0 >= 1900 && Date.now() - t0 < 4000, `closed after ${Date.now() - t0} ms`);
  assert.match(events(srv, session), /call.max_length/);
  assert.equal(nextAction(srv, session), 'hangup,max_call_length');
  assert.deepEqual(await connectAction(srv, session, sid), ['Hangup']);
});

test('SIGTERM during a call: the stream is told 1001, connect_action is still answered, clean exit', async () => {
  const { startServer: start2, cleanup: clean2 } = await import('./lib/harness.mjs');
  const srv = await start2({ env: { AI_PROVIDER: 'echo', TLS_PORT: 'off', WORKERS: '1', PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com' } });
  const sid = callSid();
  const { session } = await voiceCall(srv, sid);
  const peer = open(srv);
  await peer.opened;
  const stream = start(peer, { sid, session });
  let i = 0;
  const timer = setInterval(() => media(peer, stream, i++, 0x20), 20);
  await sleep(300);
  srv.proc.kill('SIGTERM');
  const closed = await peer.closed;
  clearInterval(timer);
  assert.equal(closed.code, 1001);
  // Twilio asks what next (here on the connection it already has) while the server drains: a person
  assert.deepEqual(await connectAction(srv, session, sid), ['Say', 'Dial', 'Say', 'Hangup']);
  const r = await srv.stop();
  assert.equal(r.code, 0, srv.stderr);
  assert.match(srv.stderr, /event=server\.stopped/);
  clean2(srv.dir);
});
