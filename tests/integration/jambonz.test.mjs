// jambonz against the real server: the feature-server player (tests/fakes/jambonz_fs.mjs) posts
// signed hooks, runs the verbs the server answers and opens the listen socket with L16 audio; the
// fake OpenAI Realtime is the agent. A whole conversation, barge-in with marks, DTMF, the
// transfer chain under both caller-ID policies (busy, no answer, a voicemail recorded by the
// server; an Aircall SIP URI answered), no AI at all, the caller hanging up, and 16 kHz.
// Bad input, signatures, limits and the REST API are in jambonz_calls.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, sqlRows, cleanup, sleep, SANITIZED } from './lib/harness.mjs';
import { startFakeRealtime, mulawDecodeSample, mulawRms, mulawTone } from '../fakes/openai_realtime.mjs';
import { placeInbound } from '../fakes/jambonz_fs.mjs';
import { tone, parseWav } from '../../tools/sim/index.mjs';

const KEY = 'sk-test-jambonz';
const SECRET = 'jambonz-webhook-secret-0123456789';
const CALLER = '+15551230001';
const DID = '+15557650000';
const SLACK = SANITIZED ? 3 : 1; // the sanitized build answers slower

let realtime;
const servers = [];
const dirs = [];
before(async () => {
  realtime = await startFakeRealtime({ apiKey: KEY, keepAudio: true });
});
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr.slice(-4000));
    cleanup(s.dir);
  }
  for (const d of dirs) cleanup(d);
  await realtime.close();
});

async function server(env = {}) {
  const srv = await startServer({
    env: {
      TLS_PORT: 'off', AI_PROVIDER: 'openai', OPENAI_API_KEY: KEY, OPENAI_REALTIME_URL: realtime.url, AI_CONNECT_TIMEOUT_MS: '5000',
      JAMBONZ_WEBHOOK_SECRET: SECRET, PRIMARY_TRANSFER_TARGET: '+14155550111', TRANSFER_TIMEOUT: '5', ...env,
    },
  });
  servers.push(srv);
  return srv;
}

const sql = (srv, query) => sqlRows(join(srv.dir, 'data', 'switchboard.db'), query);
const callRow = (srv, session) => sql(srv, `SELECT * FROM calls WHERE session_id='${session}'`)[0];
// the call's events in order, detail parsed
const events = (srv, session) =>
  sql(srv, `SELECT type, detail FROM call_events JOIN calls ON calls.id = call_id WHERE session_id='${session}' ORDER BY call_events.id`).map((e) => ({
    type: e.type,
    detail: e.detail ? JSON.parse(e.detail) : null,
  }));
const types = (srv, session) => events(srv, session).map((e) => e.type);
const ofType = (srv, session, type) => events(srv, session).filter((e) => e.type === type).map((e) => e.detail);

async function waitFor(fn, ms = 5000) {
  const deadline = Date.now() + ms * SLACK;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`not met in ${ms * SLACK} ms: ${fn}`);
    await sleep(20);
  }
}

// The session the call hook answered (the listen's metadata, or the dial's actionHook).
function sessionOf(r) {
  const h = r.hooks.find((x) => x.kind === 'call');
  const m = /session=([0-9a-f]+)/.exec(JSON.stringify(h.json));
  assert.ok(m, `no session in ${JSON.stringify(h.json)}`);
  return m[1];
}
const hooksOf = (r, kind) => r.hooks.filter((h) => h.kind === kind);
const verbNames = (json) => json.map((v) => v.verb);
const commandTypes = (listen) => listen.commands.map((c) => c.type).filter((t) => t !== 'mark');
const fmt = (r) => r.timeline.filter((e) => !['listen-stats', 'mark'].includes(e.event)).map((e) => `${e.t} ${e.dir} ${e.event} ${JSON.stringify({ ...e, t: undefined, dir: undefined, event: undefined }).slice(0, 300)}`).join('\n');

// L16 little-endian -> Int16Array
function l16(buf) {
  const out = new Int16Array(buf.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(i * 2);
  return out;
}
const rms = (s) => Math.sqrt(s.reduce((a, x) => a + x * x, 0) / Math.max(1, s.length));
const zeroCrossings = (s) => s.reduce((n, x, i) => n + (i > 0 && (s[i - 1] < 0) !== (x < 0) ? 1 : 0), 0);

// The transfer the AI asks for: a short answer, then transfer_to_agent (with a number the model
// makes up: it is never dialed), then the hand-off sentence.
const TRANSFER_SCRIPT = [
  { on: 'response.create', do: 'speak', ms: 300, transcript: 'How can I help?' },
  { after: 'response.done', do: 'tool', name: 'transfer_to_agent', arguments: { reason: 'wants a person', number: '+19005550000' } },
  { on: 'response.create', do: 'speak', ms: 400, transcript: 'Transferring you now.' },
];

// ---------------------------------------------------------------------------------------------

test('a whole conversation over the listen socket: signed hooks, wsAuth, L16 at 8 kHz both ways, mu-law to the AI, transcripts stored', async () => {
  const srv = await server();
  const n = realtime.sessions.length;
  const speech = tone(3500, 300);
  const r = await placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, callerName: 'Ada', audio: speech, autoHangupTailMs: 1500 }).done;
  assert.equal(r.ok, true, r.reason + '\n' + fmt(r));
  assert.deepEqual(r.hookErrors, [], 'every signed hook was answered 2xx');
  assert.deepEqual(r.warnings, []);
  const session = sessionOf(r);

  // the call hook's answer: the listen verb of the contract, with wsAuth (a secret is set)
  const [listen] = hooksOf(r, 'call')[0].json;
  assert.equal(hooksOf(r, 'call')[0].json.length, 1);
  assert.equal(listen.verb, 'listen');
  assert.equal(listen.url, `${srv.url.replace('http', 'ws')}/jambonz/listen`);
  assert.equal(listen.actionHook, `${srv.url}/jambonz/action?session=${session}&step=listen`);
  assert.equal(listen.mixType, 'mono');
  assert.equal(listen.sampleRate, 8000);
  assert.deepEqual(listen.bidirectionalAudio, { enabled: true, streaming: true, sampleRate: 8000 });
  assert.equal(listen.passDtmf, true);
  assert.deepEqual(listen.metadata, { session_id: session, tenant_id: '1' });
  assert.equal(listen.wsAuth.username, session);
  assert.match(listen.wsAuth.password, /^[0-9a-f]{32}$/);
  // every hook went signed, and the socket was opened with the listen's credentials
  assert.ok(r.hooks.every((h) => /^t=\d+,v1=[0-9a-f]{64}$/.test(h.headers['Jambonz-Signature'])), 'every hook signed');
  assert.deepEqual(r.timeline.filter((e) => e.event === 'ws-connect').map((e) => e.auth), [true]);
  assert.equal(srv.logLines('jambonz.bad_listen_auth').length, 0);
  assert.equal(srv.logLines('jambonz.bad_signature').length, 0);

  // the socket: the player used the credentials, the server took the metadata, audio both ways
  const L = r.listens[0];
  assert.equal(L.failure, null);
  assert.equal(L.protocol, 'audio.jambonz.org');
  assert.equal(L.frameBytes, 320, '20 ms of 8 kHz L16 a frame');
  assert.ok(L.sentFrames >= 200, `${L.sentFrames} caller frames sent`);
  // caller audio reached the AI as 20 ms mu-law frames, the very bytes the caller's line carried
  const s = realtime.sessions[n];
  assert.equal(s.shape, 'ga');
  assert.deepEqual(Object.keys(s.audio.sizes), ['160']);
  // (frames before the AI is ready are not sent: the caller hears silence then anyway)
  assert.ok(s.audio.frames >= L.sentFrames * 0.7 && s.audio.frames <= L.sentFrames, `${s.audio.frames} frames to the AI of ${L.sentFrames}`);
  const chunks = s.audio.chunks.map((c) => Buffer.from(c));
  for (const k of [20, 60, 120]) assert.ok(chunks.some((c) => c.equals(speech.subarray(k * 160, (k + 1) * 160))), `caller frame ${k} reached the AI unchanged`);
  // the agent's audio came back as binary L16 at 8 kHz: the fake's mu-law tone, decoded
  assert.equal(L.streaming, true);
  assert.equal(r.agentAudioRate, 8000);
  assert.ok(L.receivedMs >= 1900, `the agent spoke ${L.receivedMs} ms (greeting and reply)`);
  assert.equal(r.agentAudio.length % 2, 0);
  const agent = l16(r.agentAudio);
  const want = Int16Array.from(mulawTone(100, 440), mulawDecodeSample);
  assert.deepEqual(Array.from(agent.subarray(0, 800)), Array.from(want), 'G.711 decoded sample for sample');
  assert.ok(L.playedMs >= 1500, `the caller heard ${L.playedMs} ms`);
  assert.ok(L.marks.filter((m) => m.event === 'playout').length >= 10, 'marks came back as the audio played');
  assert.deepEqual(L.marks.filter((m) => m.event === 'dropped'), []);
  // the caller hung up: jambonz closed the socket
  assert.equal(L.closed.by, 'jambonz');
  assert.equal(L.closed.code, 1000);

  await waitFor(() => callRow(srv, session)?.ended_at);
  const row = callRow(srv, session);
  assert.deepEqual([row.platform, row.direction, row.status, row.from_number, row.to_number, row.call_sid], ['jambonz', 'inbound', 'completed', CALLER, DID, r.callSid]);
  const t = types(srv, session);
  for (const x of ['call.started', 'stream.started', 'ai.ready', 'stream.stopped']) assert.ok(t.includes(x), `${x} in ${t}`);
  assert.equal(ofType(srv, session, 'stream.started')[0].provider, 'openai');
  assert.deepEqual(ofType(srv, session, 'call.status').map((d) => d.status), ['in-progress', 'completed']);
  const lines = sql(srv, `SELECT role, text FROM transcripts JOIN calls ON calls.id = call_id WHERE session_id='${session}' ORDER BY transcripts.id`).map((x) => `${x.role}:${x.text}`);
  assert.ok(lines.includes('agent:Hello, thanks for calling.'), lines.join('|'));
  assert.ok(lines.includes('caller:caller said something'), lines.join('|'));
  assert.ok(lines.includes('agent:I see.'), lines.join('|'));
  await waitFor(() => s.closedAt, 3000);
});

test('barge-in: killAudio and clearMarks, and the truncation is what jambonz reported played through marks, not what was sent', async () => {
  const srv = await server();
  // 6 s of greeting sent at once: jambonz buffers it and plays it in real time
  realtime.script([
    { on: 'response.create', do: 'speak', ms: 6000, pace: 'burst', transcript: 'A very long greeting...' },
    { after: 'frames', count: 60, do: 'speech_started', stopAfterFrames: 20 },
  ]);
  const n = realtime.sessions.length;
  const call = placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, audio: tone(3000, 300), autoHangupTailMs: 500 });
  let atKill = null;
  let sock = null;
  call.on('listen', (l) => (sock = l));
  call.on('event', (e) => {
    if (e.event === 'ws-command' && e.type === 'killAudio' && !atKill)
      atKill = { playedMs: sock.playedMs, receivedMs: sock.counters().receivedMs, marks: sock.marks.filter((m) => m.event === 'playout').map((m) => m.name), commands: sock.commands.length };
  });
  const r = await call.done;
  assert.equal(r.ok, true, r.reason);
  const session = sessionOf(r);
  const s = realtime.sessions[n];
  const L = r.listens[0];
  assert.ok(atKill, `no killAudio:\n${fmt(r)}`);
  // killAudio, then clearMarks right after it
  const cmds = L.commands.map((c) => c.type);
  const k = cmds.indexOf('killAudio');
  assert.equal(cmds[k + 1], 'clearMarks');
  assert.equal(cmds.filter((c) => c === 'killAudio').length, 1);
  // the AI was told to truncate at what the caller had heard
  await realtime.waitFor(() => s.truncates.length > 0, 3000);
  const tr = s.truncates[0];
  assert.equal(tr.ok, true, JSON.stringify(tr));
  assert.ok(atKill.receivedMs >= 5900, `6 s were sent before the barge-in (${atKill.receivedMs})`);
  // the last mark jambonz reported played: mN stands for N * 100 ms of the greeting
  const last = Number(atKill.marks.at(-1).slice(1));
  assert.ok(tr.audio_end_ms === last * 100 || tr.audio_end_ms === (last - 1) * 100, `truncated at ${tr.audio_end_ms} ms; the last mark played was m${last}`);
  assert.ok(tr.audio_end_ms <= atKill.playedMs + 1, `truncated at ${tr.audio_end_ms} ms, heard ${atKill.playedMs}`);
  assert.ok(tr.audio_end_ms >= atKill.playedMs - 300, `truncated at ${tr.audio_end_ms} ms, heard ${atKill.playedMs}`);
  assert.ok(tr.audio_end_ms < 3000, 'not what was sent (6000 ms)');
  // nothing of the interrupted greeting played after the kill
  assert.ok(L.playedMs - atKill.playedMs <= 60, `played ${L.playedMs - atKill.playedMs} ms after the kill`);
  await waitFor(() => callRow(srv, session)?.ended_at);
  const b = ofType(srv, session, 'barge_in');
  assert.equal(b.length, 1);
  assert.equal(b[0].audio_end_ms, tr.audio_end_ms);
});

test('DTMF: keys are recorded, 0 asks for a person: the server ends the listen with a disconnect, the actionHook answers the transfer', async () => {
  const srv = await server({ SECONDARY_TRANSFER_TARGET: '+14155550122' });
  const n = realtime.sessions.length;
  const call = placeInbound({
    base: srv.url, secret: SECRET, from: CALLER, to: DID, audio: tone(2500, 300), speed: 10,
    dialOutcomes: [{ outcome: 'completed', ringMs: 500, talkMs: 1000 }],
  });
  // the caller presses 5, then 0, while the agent listens
  call.once('listen', () => {
    setTimeout(() => call.dtmf('5'), 600);
    setTimeout(() => call.dtmf('0'), 1200);
  });
  const r = await call.done;
  assert.equal(r.ok, true, r.reason + '\n' + fmt(r));
  const session = sessionOf(r);
  assert.deepEqual(r.dtmf.map((d) => [d.digit, d.delivered]), [['5', true], ['0', true]]);
  const L = r.listens[0];
  // the server ended the listen itself (the caller did not hang up)
  assert.ok(['disconnect', 'closed'].includes(L.ended.why), `the listen ended: ${L.ended.why}`);
  assert.equal(L.closed.code, 1000);
  assert.ok(L.ended.t >= r.dtmf[1].t, `ended at ${L.ended.t} ms, before the 0 (${r.dtmf[1].t})`);
  // jambonz asked the listen's actionHook: the first stage of the chain
  const [act] = hooksOf(r, 'action');
  assert.match(act.url, new RegExp(`step=listen$`));
  assert.deepEqual(verbNames(act.json), ['say', 'dial']);
  assert.deepEqual(act.json[1].target, [{ type: 'phone', number: '+14155550111' }]);
  assert.deepEqual(r.verbs.map((v) => v.verb), ['listen', 'say', 'dial', 'hangup']);
  assert.equal(r.terminatedBy, 'jambonz');
  await waitFor(() => callRow(srv, session)?.ended_at);
  assert.deepEqual(ofType(srv, session, 'dtmf').map((d) => d.digit), ['5', '0']);
  const row = callRow(srv, session);
  assert.deepEqual([row.next_action, row.transfer_reason, row.status], ['transfer', 'caller pressed 0', 'completed']);
  assert.deepEqual(ofType(srv, session, 'transfer.outcome').map((d) => d.status), ['completed']);
  await waitFor(() => realtime.sessions[n].closedAt, 3000);
  // {"type":"disconnect"} ends jambonz's listen verb (README: "sends {"type":"disconnect"}")
  assert.ok(commandTypes(L).includes('disconnect'), `the server sent no disconnect before closing; it sent: ${JSON.stringify(commandTypes(L))}`);
  assert.equal(L.ended.why, 'disconnect');
  assert.equal(L.closed.by, 'jambonz', 'after the disconnect jambonz closes the socket');
});

test('the transfer chain, CALLER_ID_POLICY=original: transfer_to_agent, primary busy, secondary (SIP) no answer, a voicemail recorded by switchboard, goodbye', async () => {
  const rec = mkdtempSync(join(tmpdir(), 'sb-jz-rec-'));
  dirs.push(rec);
  const srv = await server({
    CALLER_ID_POLICY: 'original', SECONDARY_TRANSFER_TARGET: 'sip:desk@pbx.example.com', FREEPBX_SIP_USERNAME: 'sbuser', FREEPBX_SIP_PASSWORD: 'sbpass',
    JAMBONZ_TRUNK: 'carrier-1', RECORDINGS_DIR: rec,
  });
  realtime.script(TRANSFER_SCRIPT);
  const n = realtime.sessions.length;
  const message = tone(1500, 500);
  const r = await placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, audio: tone(1000, 300), voicemailAudio: message, speed: 10, dialOutcomes: ['busy', 'no-answer'] }).done;
  assert.equal(r.ok, true, r.reason + '\n' + fmt(r));
  assert.deepEqual(r.hookErrors, []);
  const session = sessionOf(r);
  const s = realtime.sessions[n];
  assert.equal(s.toolOutputs[0]?.name, 'transfer_to_agent');
  // the AI's listen: the hand-off sentence played, then the server ended it
  const L = r.listens[0];
  assert.ok(['disconnect', 'closed'].includes(L.ended.why), `the listen ended: ${L.ended.why}`);
  assert.equal(L.closed.code, 1000);
  assert.ok(L.receivedMs >= 700, `the agent said ${L.receivedMs} ms (answer and hand-off)`);

  const acts = hooksOf(r, 'action');
  assert.deepEqual(acts.map((a) => new URL(a.url).searchParams.get('step') + (new URL(a.url).searchParams.get('attempt') ?? '')), ['listen', 'dial0', 'dial1', 'voicemail2']);
  // stage 0: the phone primary through the trunk, the caller's own number shown
  assert.deepEqual(verbNames(acts[0].json), ['say', 'dial']);
  assert.equal(acts[0].json[0].text, 'Please hold while I connect you.');
  const d0 = acts[0].json[1];
  assert.deepEqual(d0.target, [{ type: 'phone', number: '+14155550111', trunk: 'carrier-1' }]);
  assert.equal(d0.callerId, CALLER);
  assert.equal(d0.timeout, 5);
  assert.equal(d0.answerOnBridge, true);
  assert.equal(d0.actionHook, `${srv.url}/jambonz/action?session=${session}&step=dial&attempt=0`);
  // stage 1 (after busy): the SIP secondary with the FreePBX credentials, no trunk
  assert.deepEqual(verbNames(acts[1].json), ['say', 'dial']);
  assert.deepEqual(acts[1].json[1].target, [{ type: 'sip', sipUri: 'sip:desk@pbx.example.com', auth: { username: 'sbuser', password: 'sbpass' } }]);
  assert.equal(acts[1].json[1].callerId, CALLER);
  assert.equal(acts[1].json[1].actionHook, `${srv.url}/jambonz/action?session=${session}&step=dial&attempt=1`);
  // stage 2 (after no answer): the prompt and a voicemail listen to switchboard itself
  assert.deepEqual(verbNames(acts[2].json), ['say', 'listen']);
  const vm = acts[2].json[1];
  assert.deepEqual(vm.metadata, { session_id: session, voicemail: true });
  assert.deepEqual([vm.maxLength, vm.playBeep, vm.finishOnKey, vm.mixType, vm.sampleRate], [120, true, '#', 'mono', 8000]);
  assert.equal(vm.url, `${srv.url.replace('http', 'ws')}/jambonz/listen`);
  assert.equal(vm.wsAuth.username, session);
  assert.equal(vm.actionHook, `${srv.url}/jambonz/action?session=${session}&step=voicemail&attempt=2`);
  // the caller left the message and pressed #: the goodbye
  assert.deepEqual(verbNames(acts[3].json), ['say', 'hangup']);
  assert.deepEqual(r.verbs.map((v) => v.verb), ['listen', 'say', 'dial', 'say', 'dial', 'say', 'listen', 'say', 'hangup']);
  assert.deepEqual(r.dials.map((d) => d.results.dialCallStatus), ['busy', 'no-answer']);
  assert.equal(r.listens[1].ended.why, 'finishOnKey');
  assert.doesNotMatch(JSON.stringify(r.hooks.map((h) => h.json)), /9005550000/, 'the number the model named is never dialed');

  await waitFor(() => callRow(srv, session)?.ended_at);
  const t = types(srv, session);
  const order = ['tool.call', 'stream.closing', 'stream.ended', 'transfer.attempt', 'transfer.outcome', 'transfer.attempt', 'transfer.outcome', 'transfer.attempt', 'voicemail.recorded', 'voicemail.ended'];
  assert.deepEqual(t.filter((x) => order.includes(x)), order);
  assert.deepEqual(ofType(srv, session, 'transfer.attempt').map((d) => [d.attempt, d.stage, d.target]), [[0, 'dial', '+14155550111'], [1, 'dial', 'sip:desk@pbx.example.com'], [2, 'voicemail_record', null]]);
  assert.deepEqual(ofType(srv, session, 'transfer.outcome').map((d) => [d.attempt, d.status, d.sip_response_code]), [[0, 'busy', 486], [1, 'no-answer', 487]]);
  assert.ok(ofType(srv, session, 'transfer.outcome').every((d) => /^[0-9a-f-]{36}$/.test(d.dial_call_sid)));
  const row = callRow(srv, session);
  assert.deepEqual([row.next_action, row.transfer_reason, row.transfer_attempt, row.status], ['transfer', 'wants a person', 2, 'completed']);
  // the message: RECORDINGS_DIR/<tenant>/<session>-voicemail.wav, the caller's audio on the left
  const file = join(rec, '1', `${session}-voicemail.wav`);
  const [vr] = ofType(srv, session, 'voicemail.recorded');
  assert.equal(vr.file, file);
  assert.equal(vr.ok, true);
  assert.ok(vr.duration_ms >= 1500 && vr.duration_ms <= 3500, `${vr.duration_ms} ms recorded`);
  assert.ok(existsSync(file));
  const w = parseWav(readFileSync(file));
  assert.deepEqual([w.format, w.channels, w.sampleRate], [7, 2, 8000], 'stereo 8 kHz mu-law');
  const left = Buffer.from(Array.from({ length: w.data.length >> 1 }, (_, i) => w.data[2 * i]));
  assert.ok(left.includes(message.subarray(800, 960)), 'the message is in the file as the caller said it');
  // and the AI part was recorded as the call's own recording
  assert.ok(existsSync(join(rec, '1', `${session}.wav`)));
  // the AI's listen ends with {"type":"disconnect"} before the close (README)
  assert.ok(commandTypes(L).includes('disconnect'), `the server sent no disconnect before closing; it sent: ${JSON.stringify(commandTypes(L))}`);
  assert.equal(L.ended.why, 'disconnect');
  assert.equal(L.closed.by, 'jambonz', 'after the disconnect jambonz closes the socket');
});

for (const policy of ['original', 'business']) {
  test(`Aircall over SIP, CALLER_ID_POLICY=${policy}: the primary SIP URI answers, the bridged call ends, jambonz hangs up`, async () => {
    const aircall = 'sip:acme-support@aircall-production.sip.twilio.com';
    const srv = await server({ CALLER_ID_POLICY: policy, PRIMARY_TRANSFER_TARGET: aircall, SECONDARY_TRANSFER_TARGET: '+14155550122', JAMBONZ_TRUNK: 'carrier-1' });
    realtime.script(TRANSFER_SCRIPT);
    // jambonz passes some carriers' numbers on without '+': read as E.164 with DEFAULT_COUNTRY_CODE
    const to = policy === 'business' ? DID.slice(1) : DID;
    const r = await placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to, audio: tone(1000, 300), speed: 10, dialOutcomes: [{ outcome: 'completed', ringMs: 1000, talkMs: 3000 }] }).done;
    assert.equal(r.ok, true, r.reason + '\n' + fmt(r));
    const session = sessionOf(r);
    const acts = hooksOf(r, 'action');
    assert.equal(acts.length, 2, fmt(r));
    const dial = acts[0].json[1];
    assert.equal(dial.verb, 'dial');
    assert.deepEqual(dial.target, [{ type: 'sip', sipUri: aircall }], 'the full URI, no credentials, no trunk');
    assert.equal(dial.callerId, policy === 'original' ? CALLER : DID);
    assert.equal(dial.answerOnBridge, true);
    // answered, talked, the agent hung up: completed -> hangup
    assert.equal(r.dials[0].results.dialCallStatus, 'completed');
    assert.equal(acts[1].body.dial_call_status, 'completed');
    assert.deepEqual(acts[1].json, [{ verb: 'hangup' }]);
    assert.deepEqual(r.verbs.map((v) => v.verb), ['listen', 'say', 'dial', 'hangup']);
    assert.equal(r.terminatedBy, 'jambonz');
    await waitFor(() => callRow(srv, session)?.ended_at);
    const row = callRow(srv, session);
    assert.deepEqual([row.to_number, row.status, row.transfer_target, row.transfer_result], [DID, 'completed', aircall, 'completed']);
    assert.deepEqual(ofType(srv, session, 'transfer.attempt').map((d) => [d.attempt, d.target]), [[0, aircall]]);
    const [out] = ofType(srv, session, 'transfer.outcome');
    assert.deepEqual([out.attempt, out.status, out.sip_response_code, out.dial_call_sid], [0, 'completed', 200, r.dials[0].legs[0].callSid]);
  });
}

test('AI_PROVIDER=none: the call hook answers the transfer at once, no listen, no AI session', async () => {
  const srv = await server({ AI_PROVIDER: 'none', CALLER_ID_POLICY: 'business' });
  const n = realtime.sessions.length;
  const r = await placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, speed: 10, dialOutcomes: [{ outcome: 'completed', ringMs: 500, talkMs: 1000 }] }).done;
  assert.equal(r.ok, true, r.reason + '\n' + fmt(r));
  const answer = hooksOf(r, 'call')[0].json;
  assert.deepEqual(verbNames(answer), ['say', 'dial']);
  assert.equal(answer[0].text, 'Please hold while I connect you.');
  assert.deepEqual(answer[1].target, [{ type: 'phone', number: '+14155550111' }]);
  assert.equal(answer[1].callerId, DID);
  const session = sessionOf(r);
  assert.equal(r.listens.length, 0);
  assert.deepEqual(r.verbs.map((v) => v.verb), ['say', 'dial', 'hangup']);
  await waitFor(() => callRow(srv, session)?.ended_at);
  assert.equal(realtime.sessions.length, n, 'no AI session');
  assert.deepEqual(types(srv, session).filter((x) => /^transfer|^stream|^ai\./.test(x)), ['transfer.attempt', 'transfer.outcome']);
  assert.equal(callRow(srv, session).status, 'completed');
});

test('without RECORDINGS_DIR the voicemail goes under the data folder\'s voicemail/; VOICEMAIL_TARGET unset, no secondary', async () => {
  const srv = await server({ AI_PROVIDER: 'none' });
  const message = tone(1000, 600);
  const r = await placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, speed: 10, dialOutcomes: ['busy'], voicemailAudio: message }).done;
  assert.equal(r.ok, true, r.reason + '\n' + fmt(r));
  const session = sessionOf(r);
  assert.deepEqual(r.verbs.map((v) => v.verb), ['say', 'dial', 'say', 'listen', 'say', 'hangup']);
  assert.equal(r.listens[0].metadata.voicemail, true);
  assert.equal(r.listens[0].metadata.session_id, session);
  assert.equal(r.listens[0].failure, null, 'the voicemail socket took the listen\'s wsAuth');
  await waitFor(() => callRow(srv, session)?.ended_at);
  const file = join(srv.dir, 'data', 'voicemail', '1', `${session}-voicemail.wav`);
  const [vr] = ofType(srv, session, 'voicemail.recorded');
  assert.equal(vr.file, file);
  assert.ok(existsSync(file));
  const w = parseWav(readFileSync(file));
  const left = Buffer.from(Array.from({ length: w.data.length >> 1 }, (_, i) => w.data[2 * i]));
  assert.ok(left.includes(message.subarray(1600, 1760)), 'the message is in the file');
  assert.deepEqual(ofType(srv, session, 'transfer.attempt').map((d) => [d.attempt, d.stage]), [[0, 'dial'], [1, 'voicemail_record']]);
});

test('the caller hangs up mid-conversation: status completed, the stream stops, the AI session closes, nothing left open, no transfer recorded', async () => {
  const srv = await server();
  const n = realtime.sessions.length;
  const r = await placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, audio: tone(2500, 300), autoHangupTailMs: 0 }).done;
  assert.equal(r.ok, true, r.reason);
  const session = sessionOf(r);
  assert.equal(r.terminatedBy, 'caller');
  assert.deepEqual(r.statuses.map((x) => x.callStatus), ['trying', 'in-progress', 'completed']);
  const L = r.listens[0];
  assert.deepEqual([L.closed.by, L.closed.code], ['jambonz', 1000]);
  assert.ok(L.receivedMs >= 500, 'the agent was speaking');
  // the status hook ended the call; jambonz's closing the socket ended the AI session
  await waitFor(() => callRow(srv, session)?.ended_at);
  const row = callRow(srv, session);
  assert.equal(row.status, 'completed');
  const st = ofType(srv, session, 'call.status').at(-1);
  assert.deepEqual([st.status, st.termination_by], ['completed', 'caller']);
  const t = types(srv, session);
  assert.ok(t.includes('stream.started') && t.includes('stream.stopped'), t.join(','));
  assert.ok(!t.includes('stream.dropped'), t.join(','));
  const s = realtime.sessions[n];
  await waitFor(() => s.closedAt, 3000);
  const health = await (await fetch(srv.url + '/health')).json();
  assert.equal(health.active_calls, 0);
  // jambonz posts the listen's actionHook after the hang-up (call_status completed); its answer
  // is never run, and no transfer happened: none may be recorded on the call
  const act = hooksOf(r, 'action')[0];
  assert.equal(act.body.call_status, 'completed');
  assert.deepEqual(ofType(srv, session, 'transfer.attempt'), [], `a transfer recorded after the caller hung up; the actionHook answered ${JSON.stringify(act.json)}`);
  assert.equal(callRow(srv, session).transfer_target, null);
});

test('the caller hangs up while the primary rings: the attempt ends canceled, no next stage starts', async () => {
  const srv = await server({ AI_PROVIDER: 'none', SECONDARY_TRANSFER_TARGET: '+14155550122' });
  const call = placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, speed: 10, dialOutcomes: [{ outcome: 'no-answer' }] });
  call.on('event', (e) => e.event === 'dial-leg' && e.status === 'trying' && setTimeout(() => call.hangup(), 150)); // it rings 500 ms
  const r = await call.done;
  assert.equal(r.ok, true, r.reason);
  assert.equal(r.terminatedBy, 'caller');
  const session = sessionOf(r);
  const [act] = hooksOf(r, 'action');
  assert.deepEqual([act.body.call_status, act.body.dial_call_status], ['completed', 'no-answer']);
  await waitFor(() => callRow(srv, session)?.ended_at);
  assert.equal(callRow(srv, session).status, 'completed');
  // the dial's actionHook came after the hang-up: the attempt ends canceled (the caller went)
  assert.deepEqual(ofType(srv, session, 'transfer.outcome').map((d) => [d.attempt, d.status]), [[0, 'canceled']]);
  // the secondary was never dialed: the caller had gone
  assert.deepEqual(ofType(srv, session, 'transfer.attempt').map((d) => [d.attempt, d.target]), [[0, '+14155550111']], `after the hang-up the dial's actionHook answered ${JSON.stringify(act.json)}`);
});

test('16 kHz: the listen verb asks 16000, caller audio reaches the AI as 8 kHz mu-law, the agent comes back as 16 kHz L16', async () => {
  const srv = await server({ JAMBONZ_SAMPLE_RATE: '16000' });
  realtime.script([{ on: 'response.create', do: 'speak', ms: 1000, transcript: 'Hello at sixteen.' }]);
  const n = realtime.sessions.length;
  const speech = tone(2500, 300);
  const r = await placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, audio: speech, autoHangupTailMs: 500 }).done;
  assert.equal(r.ok, true, r.reason);
  const [listen] = hooksOf(r, 'call')[0].json;
  assert.equal(listen.sampleRate, 16000);
  assert.deepEqual(listen.bidirectionalAudio, { enabled: true, streaming: true, sampleRate: 16000 });
  const L = r.listens[0];
  assert.equal(L.metadata.sampleRate, 16000);
  assert.equal(L.frameBytes, 640, '20 ms of 16 kHz L16 a frame');
  // one 20 ms mu-law frame to the AI per 20 ms from the caller, at the caller's level
  const s = realtime.sessions[n];
  assert.deepEqual(Object.keys(s.audio.sizes), ['160']);
  assert.ok(s.audio.frames >= L.sentFrames * 0.7 && s.audio.frames <= L.sentFrames, `${s.audio.frames} frames to the AI of ${L.sentFrames}`);
  const mid = s.audio.chunks.slice(40, 80).map((c) => mulawRms(Buffer.from(c)));
  const ref = mulawRms(speech.subarray(40 * 160, 80 * 160));
  assert.ok(mid.every((x) => Math.abs(20 * Math.log10(x / ref)) < 1), `levels ${mid.slice(0, 5)} vs ${ref}`);
  // the agent: 1 s of audio is 16000 samples, a 440 Hz tone (880 zero crossings a second)
  assert.equal(r.agentAudioRate, 16000);
  assert.equal(r.agentAudio.length, 32000, '1000 ms at 16 kHz, 16-bit');
  const agent = l16(r.agentAudio);
  const zc = zeroCrossings(agent.subarray(1600, 14400)); // 0.8 s away from the edges
  assert.ok(Math.abs(zc - 704) < 30, `${zc} zero crossings in 0.8 s: not 440 Hz`);
  assert.ok(rms(agent.subarray(1600, 14400)) > 3000);
  assert.ok(L.playedMs >= 900, `the caller heard ${L.playedMs} ms`);
  const session = sessionOf(r);
  await waitFor(() => callRow(srv, session)?.ended_at);
});

test('16 kHz barge-in: killAudio and clearMarks, the truncation follows what has played, not what was sent', async () => {
  const srv = await server({ JAMBONZ_SAMPLE_RATE: '16000' });
  realtime.script([
    { on: 'response.create', do: 'speak', ms: 6000, pace: 'burst', transcript: 'A very long greeting...' },
    { after: 'frames', count: 60, do: 'speech_started', stopAfterFrames: 20 },
  ]);
  const n = realtime.sessions.length;
  const call = placeInbound({ base: srv.url, secret: SECRET, from: CALLER, to: DID, audio: tone(3000, 300), autoHangupTailMs: 500 });
  let atKill = null;
  let sock = null;
  call.on('listen', (l) => (sock = l));
  call.on('event', (e) => {
    if (e.event === 'ws-command' && e.type === 'killAudio' && !atKill) atKill = { playedMs: sock.playedMs, receivedMs: sock.counters().receivedMs };
  });
  const r = await call.done;
  assert.equal(r.ok, true, r.reason);
  assert.ok(atKill, 'a killAudio');
  const cmds = r.listens[0].commands.map((c) => c.type);
  assert.equal(cmds[cmds.indexOf('killAudio') + 1], 'clearMarks');
  const s = realtime.sessions[n];
  await realtime.waitFor(() => s.truncates.length > 0, 3000);
  const tr = s.truncates[0];
  assert.equal(tr.ok, true, JSON.stringify(tr));
  assert.ok(atKill.receivedMs >= 5900, `${atKill.receivedMs} ms sent`);
  assert.ok(Math.abs(tr.audio_end_ms - atKill.playedMs) <= 250, `truncated at ${tr.audio_end_ms} ms, the caller had heard ${atKill.playedMs} ms`);
  assert.ok(r.listens[0].playedMs - atKill.playedMs <= 60, 'nothing played after the kill');
});
