// Asterisk (ARI + ExternalMedia RTP) against the fake Asterisk: the Stasis application's REST
// calls, the RTP media leg both ways, the AI conversation over it (echo and OpenAI Realtime with
// transcripts and barge-in), DTMF, the transfer chain with each caller-ID policy, hang-ups at
// every point, Asterisk restarting mid-call, bad input, 100 concurrent calls, an outbound call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sqlite, cleanup, sleep } from './lib/harness.mjs';
import { FakeAsterisk, waitFor, CAUSE } from '../fakes/asterisk_ari.mjs';
import { startFakeRealtime } from '../fakes/openai_realtime.mjs';
import { tone } from '../../tools/sim/index.mjs';
import { token, api, JWT_SECRET } from './lib/jwt.mjs';

const KEY = 'sk-test-asterisk';
let ast, realtime;
const servers = [];
// each server gets its own RTP ports: test files run side by side under ctest -j
let portBase = 20000 + Math.floor(Math.random() * 30) * 400; // below the kernel's ephemeral ports (32768-60999), where the fake binds

before(async () => {
  ast = await new FakeAsterisk({ username: 'sb', password: 'ari-secret', trunk: 'didww' }).start();
  realtime = await startFakeRealtime({ apiKey: KEY, keepAudio: true });
});
// One server at a time: they all register the same Stasis app, and Asterisk gives an app to the
// newest events socket (the older one would reconnect and take it back).
async function stopServers() {
  while (servers.length) {
    const s = servers.pop();
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
}
after(async () => {
  await stopServers();
  await ast.stop();
  await realtime.close();
});

async function server(env = {}) {
  await stopServers();
  const min = portBase;
  portBase += 200;
  const srv = await startServer({
    env: {
      TLS_PORT: 'off', WORKERS: '2', AI_PROVIDER: 'echo', ARI_URL: ast.url, ARI_USERNAME: 'sb', ARI_PASSWORD: 'ari-secret',
      ARI_APP: 'switchboard', RTP_ADDRESS: '127.0.0.1', RTP_PORT_MIN: String(min), RTP_PORT_MAX: String(min + 199),
      ASTERISK_TRUNK: 'didww', PRIMARY_TRANSFER_TARGET: 'PJSIP/2000', SECONDARY_TRANSFER_TARGET: '+14155550123',
      TWILIO_PHONE_NUMBER: '+14155550100', ...env,
    },
  });
  servers.push(srv);
  await ast.waitForApp('switchboard', 5000);
  ast.resetLog();
  return srv;
}
const q = (srv, sql) => sqlite(srv.dir + '/data/switchboard.db', sql);
const row = (srv, channel, cols) => q(srv, `SELECT ${cols} FROM calls WHERE call_sid='${channel}'`);
const events = (srv, channel) => q(srv, `SELECT group_concat(type, ',') FROM (SELECT type FROM call_events JOIN calls ON calls.id = call_id WHERE call_sid='${channel}' ORDER BY call_events.id) AS t`);
// the fake logs the whole path; ARI paths are written here relative to /ari
const reqs = (pred) => ast.requests.map((r) => ({ ...r, path: r.path.replace(/^\/ari/, '') })).filter(pred);
// A call from the trunk and the ExternalMedia leg switchboard asks for it (the fake keeps one per live channel).
async function inbound(opts) {
  const seen = new Set(ast.legs.values());
  const caller = await ast.inboundCall(opts);
  const leg = await waitFor(() => [...ast.legs.values()].find((l) => !seen.has(l)), 5000).catch((e) => {
    const log = servers.at(-1)?.stderr ?? '';
    throw new Error(`${e.message}\nserver log:\n${log.split('\n').filter((l) => !/http\.request|asterisk\.media /.test(l)).slice(-25).join('\n')}`);
  });
  return { caller, leg };
}
const health = async (srv) => (await fetch(srv.url + '/health')).json();

// A mu-law payload is speech-like when it is not all silence (0xFF / 0x7F).
const audible = (p) => p.some((b) => b !== 0xff && b !== 0x7f);

test('an inbound call: answer, mixing bridge, ExternalMedia, RTP both ways through the echo agent, clean end', async () => {
  const srv = await server();
  assert.equal((await health(srv)).asterisk, 'connected');
  const { caller, leg } = await inbound({ from: '+15551230001', to: '+15557650000' });
  // the REST calls Asterisk got, with the parameters ExternalMedia needs
  const em = reqs((r) => r.method === 'POST' && r.path === '/channels/externalMedia')[0];
  assert.equal(em.query.format, 'ulaw');
  assert.equal(em.query.encapsulation, 'rtp');
  assert.equal(em.query.transport, 'udp');
  assert.equal(em.query.direction, 'both');
  assert.equal(em.query.app, 'switchboard');
  assert.match(em.query.external_host, /^127\.0\.0\.1:\d+$/);
  assert.ok(reqs((r) => r.path === `/channels/${caller.id}/answer`).length === 1, 'answered');
  assert.ok(reqs((r) => r.method === 'POST' && r.path === '/bridges' && r.query.type === 'mixing').length >= 1);
  await waitFor(() => [...ast.bridges.values()].some((b) => b.channels.size === 2 || b.channels.length === 2), 5000);
  // the caller speaks for 2 s; the echo agent plays it back 100 ms later, as RTP from the socket Asterisk sends to
  const speech = tone(2000, 440);
  await leg.sendAudio(speech);
  await waitFor(() => leg.received.filter((p) => audible(p.payload)).length >= 60, 5000);
  const st = leg.stats();
  assert.deepEqual(Object.keys(st.payloadTypes).map(Number), [0], 'payload type 0 only');
  assert.deepEqual(Object.keys(st.sizes).map(Number), [160], '160-byte payloads');
  assert.equal(Object.keys(st.sources).length, 1, 'one source: the socket Asterisk sends to');
  assert.equal(Object.keys(st.ssrcs).length, 1, 'one SSRC');
  assert.ok(st.meanIntervalMs > 18 && st.meanIntervalMs < 22, `paced every ${st.meanIntervalMs} ms`);
  // what comes back is what was said (mu-law passed through, no transcoding)
  const back = Buffer.concat(leg.received.filter((p) => audible(p.payload)).map((p) => p.payload));
  assert.ok(back.includes(speech.subarray(1600, 1760)), 'the echoed audio is the caller\'s own');
  assert.equal(row(srv, caller.id, "platform||','||status||','||direction"), 'asterisk,in-progress,inbound');
  // the caller hangs up: AI closed, ExternalMedia and bridge deleted, the call ends completed
  ast.hangup(caller.id);
  await waitFor(() => row(srv, caller.id, 'ended_at IS NOT NULL') === '1', 5000);
  await waitFor(() => ast.bridges.size === 0 && ![...ast.channels.values()].some((c) => c.kind === 'externalMedia' || /UnicastRTP/.test(c.name)), 5000);
  assert.equal(row(srv, caller.id, 'status'), 'completed');
  assert.match(events(srv, caller.id), /call\.started.*stream\.started.*call\.ended/);
});

test('OpenAI over RTP: a conversation, caller audio passed to the AI byte for byte, transcripts stored', async () => {
  const srv = await server({ AI_PROVIDER: 'openai', OPENAI_API_KEY: KEY, OPENAI_REALTIME_URL: realtime.url });
  const before = realtime.sessions.length;
  const { caller, leg } = await inbound({ from: '+15551230012', to: '+15557650000' });
  await waitFor(() => realtime.sessions.length > before, 5000);
  const s = realtime.sessions[before];
  await waitFor(() => s.ofType('response.create').length > 0, 5000); // set up: the AI hears from here
  const speech = tone(3500, 300);
  await leg.sendAudio(speech);
  await waitFor(() => leg.received.filter((p) => audible(p.payload)).length >= 50, 5000);
  await sleep(500);
  // RTP payloads went to the AI as base64 of the same bytes: no transcoding (frames may shift by the playout delay)
  assert.ok(s.audio.frames >= 100, `${s.audio.frames} frames appended`);
  const sent = s.audio.chunks.map((c) => Buffer.from(c));
  assert.ok(sent.some((c) => c.equals(speech.subarray(10 * 160, 11 * 160))), 'a caller frame reached the AI unchanged');
  ast.hangup(caller.id);
  await waitFor(() => row(srv, caller.id, 'ended_at IS NOT NULL') === '1', 5000);
  const lines = q(srv, `SELECT group_concat(role || ':' || text, '|') FROM transcripts JOIN calls ON calls.id = call_id WHERE call_sid='${caller.id}'`);
  assert.match(lines, /agent:Hello, thanks for calling\./);
  assert.match(lines, /caller:caller said something/);
});

// An OpenAI call whose agent speaks as `speak` says and whose caller starts speaking after 60
// frames; resolves once the server has truncated the agent's item.
async function bargeIn(from, speak) {
  const srv = await server({ AI_PROVIDER: 'openai', OPENAI_API_KEY: KEY, OPENAI_REALTIME_URL: realtime.url });
  realtime.script([
    { on: 'response.create', do: 'speak', ms: 6000, ...speak },
    { after: 'frames', count: 60, do: 'speech_started', stopAfterFrames: 20 },
  ]);
  const before = realtime.sessions.length;
  const { caller, leg } = await inbound({ from, to: '+15557650000' });
  await waitFor(() => realtime.sessions.length > before, 5000);
  const s = realtime.sessions[before];
  // the caller speaks once the session is set up and the greeting asked for: frames before that
  // are not the AI's (a CI run under load set it up late, and too few of the 60 got through)
  await waitFor(() => s.ofType('response.create').length > 0, 5000);
  leg.sendAudio(tone(3000, 300));
  await realtime.waitFor(() => s.truncates.length > 0, 6000);
  return { srv, s, caller, leg };
}

test('OpenAI over RTP: barge-in stops the agent audio at once and truncates at what was sent', async () => {
  const { srv, s, caller, leg } = await bargeIn('+15551230002', { pace: 'realtime', transcript: 'A very long greeting...' });
  const sentAtTruncate = leg.received.filter((p) => audible(p.payload)).length;
  const tr = s.truncates[0];
  // 60 caller frames in (1.2 s + playout delay), the agent had been heard for about as long
  assert.ok(tr.audio_end_ms > 600 && tr.audio_end_ms < 2500, `audio_end_ms ${tr.audio_end_ms}`);
  // audio_end_ms counts what actually left as RTP, within one mark interval (100 ms)
  assert.ok(Math.abs(tr.audio_end_ms - sentAtTruncate * 20) <= 240, `truncate ${tr.audio_end_ms} ms vs ${sentAtTruncate * 20} ms sent`);
  await sleep(300);
  // after the clear only silence: the queued agent audio was dropped at once
  const late = leg.received.filter((p) => audible(p.payload)).length;
  assert.ok(late - sentAtTruncate <= 2, `${late - sentAtTruncate} agent frames after the barge-in`);
  assert.ok(s.audio.frames >= 50, `${s.audio.frames} caller frames reached the AI`);
  ast.hangup(caller.id);
  await waitFor(() => row(srv, caller.id, 'ended_at IS NOT NULL') === '1', 5000);
  assert.match(events(srv, caller.id), /barge_in/);
});

test('OpenAI over RTP: a barge-in between the agent\'s chunks (all of it played, the response going on) stops it too', async () => {
  // 100 ms of speech each second: the leg plays each chunk at once and then has nothing queued
  // (no mark pending) for 900 ms while the response goes on; the caller speaks in such a gap
  const { srv, s, caller, leg } = await bargeIn('+15551230012', { pace: 0.1, transcript: 'A slow greeting...' });
  const heard = leg.received.filter((p) => audible(p.payload)).length;
  // one or two chunks of 100 ms had played; the truncate says so
  assert.ok(s.truncates[0].audio_end_ms >= 100 && s.truncates[0].audio_end_ms <= 300, `audio_end_ms ${s.truncates[0].audio_end_ms}`);
  assert.ok(s.cancels.length > 0 || s.ofType('response.cancel').length > 0, 'the response was cancelled');
  await sleep(1500); // past the next chunk's time: none of the response plays any more
  const late = leg.received.filter((p) => audible(p.payload)).length;
  assert.ok(late - heard <= 2, `${late - heard} agent frames after the barge-in`);
  ast.hangup(caller.id);
  await waitFor(() => row(srv, caller.id, 'ended_at IS NOT NULL') === '1', 5000);
  assert.match(events(srv, caller.id), /barge_in/);
});

test('DTMF 0 asks for a person: busy, no answer, then answered, with the original caller ID', async () => {
  const srv = await server({ CALLER_ID_POLICY: 'original', TRANSFER_TIMEOUT: '5', VOICEMAIL_TARGET: 'sip:vm@pbx.example.com' });
  ast.setOutcome('PJSIP/2000', { result: 'busy', afterMs: 50 });
  ast.setOutcome('PJSIP/+14155550123@didww', { result: 'noanswer', afterMs: 300 });
  ast.setOutcome(/^PJSIP\/didww\/sip:vm@/, { result: 'answer', afterMs: 100 });
  const { caller } = await inbound({ from: '+15551230003', to: '+15557650000' });
  await sleep(300);
  ast.dtmf(caller.id, '0');
  await waitFor(() => row(srv, caller.id, 'transfer_attempt') === '2' && /transfer\.bridged/.test(events(srv, caller.id) ?? ''), 8000);
  const orig = reqs((r) => r.method === 'POST' && r.path === '/channels' && r.query.app === 'switchboard' && r.query.appArgs === 'transfer');
  assert.deepEqual(orig.map((r) => r.query.endpoint), ['PJSIP/2000', 'PJSIP/+14155550123@didww', 'PJSIP/didww/sip:vm@pbx.example.com']);
  assert.ok(orig.every((r) => r.query.callerId === '+15551230003'), 'the caller\'s own number is shown');
  assert.ok(orig.every((r) => r.query.timeout === '5'));
  // ringing for the caller while a target rings; the ExternalMedia channel is gone once the AI is
  assert.ok(reqs((r) => r.method === 'POST' && r.path === `/channels/${caller.id}/ring`).length >= 1);
  const outcomes = q(srv, `SELECT group_concat(json_extract(detail,'$.outcome'), ',') FROM (SELECT detail FROM call_events JOIN calls ON calls.id = call_id WHERE call_sid='${caller.id}' AND type = 'transfer.outcome' ORDER BY call_events.id) AS t`);
  assert.equal(outcomes, 'busy,no-answer,completed');
  // the answered target is in the caller's bridge
  const answered = [...ast.channels.values()].find((c) => c.id === orig[2].query.channelId);
  assert.ok(answered, 'the target channel lives');
  // the target hangs up: the caller is hung up too, the bridge destroyed
  ast.hangup(answered.id);
  await waitFor(() => row(srv, caller.id, 'ended_at IS NOT NULL') === '1', 5000);
  await waitFor(() => ast.bridges.size === 0, 5000);
});

test('business caller ID, the caller hanging up while a target rings, and the chain ending in the apology', async () => {
  const srv = await server({ CALLER_ID_POLICY: 'business', AI_PROVIDER: 'none' });
  ast.setOutcome('PJSIP/2000', { result: 'noanswer' });
  const caller = await ast.inboundCall({ from: '+15551230004', to: '+15557650000' });
  await waitFor(() => reqs((r) => r.path === '/channels' && r.query.endpoint === 'PJSIP/2000' && r.query.channelId?.includes('-0')).length > 0, 5000);
  const o = reqs((r) => r.path === '/channels' && r.query.endpoint === 'PJSIP/2000').at(-1);
  assert.equal(o.query.callerId, '+15557650000', 'the business number (the DID called) is shown');
  ast.hangup(caller.id);
  await waitFor(() => row(srv, caller.id, 'ended_at IS NOT NULL') === '1', 5000);
  await waitFor(() => !ast.channels.has(o.query.channelId), 5000);
  assert.match(events(srv, caller.id), /transfer/);
  // every stage failing: busy, failed, then no voicemail target → a recorded message prompt
  ast.setOutcome('PJSIP/2000', { result: 'busy', afterMs: 20 });
  ast.setOutcome('PJSIP/+14155550123@didww', { result: 'failed', afterMs: 20 });
  const c2 = await ast.inboundCall({ from: '+15551230005', to: '+15557650000' });
  await waitFor(() => reqs((r) => r.path === `/channels/${c2.id}/play`).length >= 1, 5000);
  assert.equal(reqs((r) => r.path === `/channels/${c2.id}/play`)[0].query.media, 'sound:vm-intro');
  ast.hangup(c2.id);
  await waitFor(() => row(srv, c2.id, 'ended_at IS NOT NULL') === '1', 5000);
});

test('Asterisk restarting mid-call: the call ends cleanly, /health follows, new calls work once it is back', async () => {
  const srv = await server();
  const { caller } = await inbound({ from: '+15551230006', to: '+15557650000' });
  await sleep(200);
  const down = ast.restart({ downMs: 800 });
  await waitFor(async () => (await health(srv)).asterisk !== 'connected', 3000);
  await down;
  await ast.waitForApp('switchboard', 10000);
  await waitFor(async () => (await health(srv)).asterisk === 'connected', 5000);
  await waitFor(() => row(srv, caller.id, 'ended_at IS NOT NULL') === '1', 5000);
  assert.match(events(srv, caller.id), /call\.ended/);
  const { caller: c2, leg } = await inbound({ from: '+15551230007', to: '+15557650000' });
  await leg.sendAudio(tone(600, 440));
  await waitFor(() => leg.received.some((p) => audible(p.payload)), 5000);
  ast.hangup(c2.id);
  await waitFor(() => row(srv, c2.id, 'ended_at IS NOT NULL') === '1', 5000).catch((e) => { console.log(srv.stderr.split('\n').filter((l) => /asterisk|call\.event/.test(l)).slice(-40).join('\n')); throw e; });
});

test('bad input: garbage, another payload type, another source and a malformed event are counted, the call goes on', async () => {
  const srv = await server();
  const { caller, leg } = await inbound({ from: '+15551230008', to: '+15557650000' });
  await sleep(200);
  leg.sendGarbage(Buffer.from('not rtp'));
  leg.sendPacket({ pt: 8, payload: Buffer.alloc(160, 0xd5) });
  await leg.sendFromOtherSocket({ count: 5 });
  ast.send('switchboard', { type: 'StasisStart', application: 'switchboard', timestamp: '2026-12-03T00:00:00.000+0000' });
  ast.send('switchboard', { type: 'ChannelDtmfReceived', application: 'switchboard', channel: { id: 'nobody' } });
  await leg.sendAudio(tone(1000, 440));
  await waitFor(() => leg.received.filter((p) => audible(p.payload)).length >= 20, 5000);
  await sleep(100);
  assert.ok(srv.logLines('asterisk.rtp_bad_input').length === 1, 'logged once per call');
  assert.ok(srv.logLines('asterisk.bad_event').length >= 1);
  ast.hangup(caller.id);
  await waitFor(() => row(srv, caller.id, 'ended_at IS NOT NULL') === '1', 5000);
});

test('100 concurrent calls, each with its own RTP leg, all echoed', async () => {
  const srv = await server({ MAX_CONCURRENT_CALLS: '0' });
  const n = 100;
  const seen = new Set(ast.legs.values());
  const callers = [];
  for (let i = 0; i < n; i++) callers.push(await ast.inboundCall({ from: `+1555200${String(i).padStart(4, '0')}`, to: '+15557650000' }));
  await waitFor(() => [...ast.legs.values()].filter((l) => !seen.has(l)).length >= n, 20000);
  const legs = [...ast.legs.values()].filter((l) => !seen.has(l));
  await Promise.all(legs.map((l) => l.sendAudio(tone(1000, 440))));
  await waitFor(() => legs.every((l) => l.received.filter((p) => audible(p.payload)).length >= 30), 15000);
  assert.equal(Number(q(srv, "SELECT count(*) FROM calls WHERE platform='asterisk' AND ended_at IS NULL")), n);
  for (const c of callers) ast.hangup(c.id);
  await waitFor(() => Number(q(srv, "SELECT count(*) FROM calls WHERE platform='asterisk' AND ended_at IS NULL")) === 0, 15000);
  await waitFor(() => ast.bridges.size === 0, 10000);
});

test('an outbound call for an Asterisk tenant: originated through the trunk into the app, then the agent', async () => {
  const srv = await server({ JWT_SECRET: 'asterisk-test-secret-0123456789abcdef' });
  q(srv, "UPDATE tenants SET platform = 'asterisk' WHERE id = 1");
  ast.setOutcome('PJSIP/+14155550188@didww', { result: 'answer', afterMs: 100 });
  const t = token({ tenant_id: 1, role: 'agent' }, { secret: 'asterisk-test-secret-0123456789abcdef' });
  const res = await fetch(srv.url + '/api/calls/initiate', {
    method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
    body: JSON.stringify({ customer_id: 'c-1', phone: '+14155550188', agent_type: 'sales' }),
  });
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  assert.equal(body.status, 'initiated');
  const o = await waitFor(() => reqs((r) => r.path === '/channels' && r.query.endpoint === 'PJSIP/+14155550188@didww')[0], 5000);
  assert.equal(o.query.app, 'switchboard');
  assert.equal(o.query.channelId, `sbo-${body.session_id}`);
  assert.equal(o.query.callerId, '+14155550100');
  const leg = await waitFor(() => [...ast.legs.values()].find((l) => l.channel?.id === `sbem-${body.session_id}` || l.id === `sbem-${body.session_id}`) ?? [...ast.legs.values()].at(-1), 5000);
  await leg.sendAudio(tone(600, 440));
  await waitFor(() => leg.received.some((p) => audible(p.payload)), 5000);
  assert.equal(q(srv, `SELECT platform||','||direction||','||status FROM calls WHERE session_id='${body.session_id}'`), 'asterisk,outbound,in-progress');
  ast.hangup(o.query.channelId);
  await waitFor(() => q(srv, `SELECT ended_at IS NOT NULL FROM calls WHERE session_id='${body.session_id}'`) === '1', 5000);
});

test('live control from the API on Asterisk calls: transfer to the secondary target, then hang up', async () => {
  const srv = await server({ JWT_SECRET });
  ast.setOutcome('PJSIP/+14155550123@didww', { result: 'answer', afterMs: 100 });
  const { caller } = await inbound({ from: '+15551230020', to: '+15557650000' });
  await sleep(300);
  const session = row(srv, caller.id, 'session_id');
  const listed = await api(srv, 'GET', '/api/calls?platform=asterisk');
  assert.equal(listed.status, 200);
  assert.ok(listed.json.calls.some((c) => c.id === session && c.platform === 'asterisk'), listed.text);
  const tr = await api(srv, 'POST', `/api/calls/${session}/transfer`, { body: { target: 'secondary' } });
  assert.equal(tr.status, 202, tr.text);
  // the chain starts at the secondary target: PJSIP/2000 is never dialed
  const o = await waitFor(() => reqs((r) => r.path === '/channels' && r.query.appArgs === 'transfer')[0], 5000);
  assert.equal(o.query.endpoint, 'PJSIP/+14155550123@didww');
  await waitFor(() => /transfer\.bridged/.test(events(srv, caller.id) ?? ''), 5000);
  assert.equal(q(srv, `SELECT count(*) FROM call_events JOIN calls ON calls.id = call_id WHERE call_sid='${caller.id}' AND type='transfer.attempt'`), '1', 'one attempt recorded, by the API');
  // a second transfer: the AI leg is gone already
  const again = await api(srv, 'POST', `/api/calls/${session}/transfer`, { body: { target: 'primary' } });
  assert.equal(again.status, 409, again.text);
  const hu = await api(srv, 'POST', `/api/calls/${session}/hangup`);
  assert.equal(hu.status, 202, hu.text);
  await waitFor(() => row(srv, caller.id, 'ended_at IS NOT NULL') === '1', 5000);
  await waitFor(() => ast.bridges.size === 0, 5000);
  const gone = await api(srv, 'POST', `/api/calls/${session}/hangup`);
  assert.equal(gone.status, 409);
});

test('RTP ports used up: the next caller goes straight to a person, and the server still stops cleanly', async () => {
  const srv = await server({ RTP_PORT_MAX: String(portBase) }); // one port: RTP_PORT_MIN = RTP_PORT_MAX
  ast.setOutcome('PJSIP/2000', { result: 'answer', afterMs: 50 });
  const { caller } = await inbound({ from: '+15551230030', to: '+15557650000' });
  const c2 = await ast.inboundCall({ from: '+15551230031', to: '+15557650000' });
  await waitFor(() => reqs((r) => r.path === '/channels' && r.query.channelId?.includes(row(srv, c2.id, 'session_id'))).length > 0, 5000);
  assert.equal(srv.logLines('asterisk.rtp_failed').length, 1);
  assert.match(events(srv, c2.id), /asterisk\.media_failed/);
  assert.equal(row(srv, caller.id, 'ended_at IS NULL'), '1', 'the first call goes on');
  const r = await srv.stop();
  servers.splice(servers.indexOf(srv), 1);
  assert.equal(r.code, 0, srv.stderr.slice(-3000));
  cleanup(srv.dir);
});

test('SIGTERM with calls live: their channels are hung up and the server exits 0', async () => {
  const srv = await server({ MAX_CONCURRENT_CALLS: '0' });
  const callers = [];
  for (let i = 0; i < 100; i++) callers.push((await inbound({ from: `+1555300${String(i).padStart(4, '0')}`, to: '+15557650000' })).caller);
  await sleep(300);
  const r = await srv.stop();
  servers.splice(servers.indexOf(srv), 1);
  assert.equal(r.code, 0, srv.stderr.split('\n').filter((l) => !/asterisk\.media |http\.request|call\.event/.test(l)).slice(-30).join('\n'));
  await waitFor(() => callers.every((c) => !ast.channels.has(c.id)), 5000);
  cleanup(srv.dir);
});

test('RTP faults from Asterisk: reordered, duplicated and lost packets, counted in the call\'s rtp.stats', async () => {
  const srv = await server();
  const { caller, leg } = await inbound({ from: '+15551230040', to: '+15557650000' });
  await sleep(200);
  const speech = tone(3000, 440);
  const sending = leg.sendAudio(speech);
  await sleep(400);
  leg.reorderNext(4);
  await sleep(300);
  leg.duplicateNext(3);
  await sleep(300);
  leg.dropNext(2);
  await sleep(300);
  leg.sendGarbage(Buffer.alloc(3000, 0x80)); // over 2048 bytes: oversized
  await sending;
  await waitFor(() => leg.received.filter((p) => audible(p.payload)).length >= 100, 5000);
  // the echo keeps the caller's order: a reordered stretch comes back in sequence
  const back = Buffer.concat(leg.received.filter((p) => audible(p.payload)).map((p) => p.payload));
  assert.ok(back.includes(speech.subarray(20 * 160, 24 * 160)), 'audio around the reordering came back in order');
  ast.hangup(caller.id);
  await waitFor(() => row(srv, caller.id, 'ended_at IS NOT NULL') === '1', 5000);
  const st = JSON.parse(q(srv, `SELECT detail FROM call_events JOIN calls ON calls.id = call_id WHERE call_sid='${caller.id}' AND type='rtp.stats'`));
  assert.ok(st.reordered >= 1, JSON.stringify(st));
  assert.ok(st.duplicates >= 1, JSON.stringify(st));
  assert.ok(st.lost >= 2, JSON.stringify(st));
  assert.ok(st.oversized + st.not_rtp >= 1, JSON.stringify(st));
  assert.ok(st.rx_packets >= 140 && st.tx_packets >= 140, JSON.stringify(st));
});
