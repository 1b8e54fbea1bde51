// The bridge with the ElevenLabs Conversational AI provider, against the fake ConvAI server: a
// whole call with transcripts, interruption, ping/pong, a client tool call and a format mismatch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sqlite, cleanup, sleep } from './lib/harness.mjs';
import { callSid, webhook, verbs } from './lib/twilio.mjs';
import { voiceCall, streamCall } from './lib/rawmedia.mjs';
import { startFakeConvai } from '../fakes/elevenlabs_convai.mjs';
import { MediaStream, tone } from '../../tools/sim/index.mjs';

const KEY = 'xi-test-0123456789';
const AGENT = 'agent_test01';
let fake;
const servers = [];
before(async () => {
  fake = await startFakeConvai({ apiKey: KEY, agentId: AGENT });
});
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
  await fake.close();
});
async function server(env = {}) {
  const srv = await startServer({
    env: { AI_PROVIDER: 'elevenlabs', ELEVENLABS_API_KEY: KEY, ELEVENLABS_AGENT_ID: AGENT, ELEVENLABS_CONVAI_URL: fake.url,
      TLS_PORT: 'off', PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com', AI_CONNECT_TIMEOUT_MS: '1500', ...env },
  });
  servers.push(srv);
  return srv;
}
const q = (srv, sql) => sqlite(srv.dir + '/data/switchboard.db', sql);
const nextAction = (srv, session) => q(srv, `SELECT COALESCE(next_action,'')||','||COALESCE(transfer_reason,'') FROM calls WHERE session_id='${session}'`);

// The caller side with the simulator's Twilio client: real-time frames, marks echoed, clear honoured.
async function simCall(srv, { ms = 3000, sid = callSid() } = {}) {
  const { session } = await voiceCall(srv, sid);
  const stream = new MediaStream({
    url: srv.url.replace('http', 'ws') + '/twilio/media', callSid: sid, customParameters: { session_id: session, tenant_id: '1' },
    audio: tone(ms, 300), tailMs: 0, autoStop: true,
  });
  const result = await stream.run();
  return { sid, session, stream, result };
}

// A raw caller streaming frames until the stream closes or `ms` pass.
const call = (srv, { sid = callSid(), ...o } = {}) => streamCall(srv, sid, o);

test('a whole call: key and agent id, initiation data, greeting to Twilio, caller audio byte for byte, transcripts', async () => {
  const srv = await server();
  q(srv, "UPDATE tenants SET greeting = 'Welcome to Acme, how can I help?', ai_instructions = 'You are Acme''s agent.' WHERE id = 1");
  fake.script([
    { do: 'speak', ms: 1500, text: 'Welcome to Acme, how can I help?' },
    { after: 'chunks', count: 90, do: 'user', text: 'I need an appointment' },
    { after: 'ms', ms: 50, do: 'speak', ms: 500, text: 'Sure, when?' },
  ]);
  const before = fake.sessions.length;
  const c = await simCall(srv, { ms: 3500 });
  const s = fake.sessions[before];
  assert.equal(s.headers['xi-api-key'], KEY);
  assert.equal(s.url.searchParams.get('agent_id'), AGENT);
  assert.deepEqual(s.errors, []);
  assert.equal(s.messages[0].type, 'conversation_initiation_client_data');
  const agent = s.init.conversation_config_override.agent;
  assert.match(agent.prompt.prompt, /Acme's agent/);
  assert.equal(agent.first_message, 'Welcome to Acme, how can I help?');
  assert.equal(s.init.dynamic_variables.session_id, c.session);
  // caller audio reached the agent byte for byte as user_audio_chunk
  assert.ok(s.chunks.length >= 100, `${s.chunks.length} chunks`);
  assert.deepEqual(s.chunks[5], tone(3500, 300).subarray(5 * 160, 6 * 160));
  assert.ok(c.result.stats.agentAudioMs >= 1500, `the caller heard ${c.result.stats.agentAudioMs} ms of the agent`);
  assert.ok(c.result.marks.length > 0);
  assert.equal(c.result.stats.protocolErrors ?? 0, 0);
  await sleep(200);
  const lines = q(srv, `SELECT group_concat(role || ':' || text, '|') FROM transcripts JOIN calls ON calls.id = call_id WHERE session_id='${c.session}'`);
  assert.match(lines, /agent:Welcome to Acme, how can I help\?/);
  assert.match(lines, /caller:I need an appointment/);
  assert.match(lines, /agent:Sure, when\?/);
});

test('interruption: Twilio gets a clear, no audio after it, late audio of the interrupted response dropped', async () => {
  const srv = await server();
  fake.script([
    { do: 'speak', ms: 6000, text: 'A very long greeting...' },
    { after: 'chunks', count: 60, do: 'interrupt', lateAudio: true },
  ]);
  const before = fake.sessions.length;
  const c = await simCall(srv, { ms: 3000 });
  const s = fake.sessions[before];
  assert.deepEqual(s.errors, []);
  assert.ok(c.result.clears.length >= 1, 'Twilio got a clear');
  assert.equal(c.result.stats.audioAfterClear, 0, 'no audio of the interrupted response after the clear');
  assert.ok(c.result.stats.agentAudioMs < 2500, `heard ${c.result.stats.agentAudioMs} ms: the response was cut`);
  // ElevenLabs stops the response itself: nothing to cancel or truncate is sent
  assert.deepEqual(s.messages.map((m) => m.type).filter((t) => t !== 'conversation_initiation_client_data'), []);
  await sleep(100);
  assert.match(q(srv, `SELECT group_concat(type) FROM call_events JOIN calls ON calls.id = call_id WHERE session_id='${c.session}'`), /barge_in/);
});

test('ping: answered with a pong carrying the same event_id, at once', async () => {
  const srv = await server();
  fake.script([
    { do: 'speak', ms: 300 },
    { after: 'ms', ms: 400, do: 'ping' },
    { after: 'ms', ms: 300, do: 'ping' },
  ]);
  const before = fake.sessions.length;
  const c = await call(srv, { ms: 1800 });
  const s = fake.sessions[before];
  await fake.waitFor(() => s.pongs.length >= 2, 2000);
  assert.deepEqual(s.pongs.map((p) => p.event_id), s.pings.map((p) => p.id));
  assert.deepEqual(s.errors, []);
  c.peer.ws.close();
});

test('client tool call: book_appointment writes a booking, the agent gets client_tool_result', async () => {
  const srv = await server();
  fake.script([
    { do: 'speak', ms: 300 },
    { after: 'ms', ms: 500, do: 'tool', id: 'tc_1', name: 'book_appointment', parameters: { name: 'Ada Lovelace', date: '2026-12-01', time: '14:30', notes: 'first visit' } },
    { on: 'client_tool_result', do: 'tool', id: 'tc_2', name: 'book_appointment', parameters: { name: 'Bad', date: 'next tuesday', time: '2pm' } },
    { on: 'client_tool_result', do: 'speak', ms: 300, text: 'Booked.' },
  ]);
  const before = fake.sessions.length;
  const c = await call(srv, { ms: 2500 });
  const s = fake.sessions[before];
  await fake.waitFor(() => s.toolResults.length >= 2, 3000);
  const [r1, r2] = s.toolResults;
  assert.equal(r1.tool_call_id, 'tc_1');
  assert.equal(r1.is_error, false);
  assert.equal(typeof r1.result, 'string');
  assert.equal(JSON.parse(r1.result).ok, true);
  assert.equal(r2.tool_call_id, 'tc_2');
  assert.equal(JSON.parse(r2.result).ok, false);
  assert.equal(q(srv, `SELECT name||','||date||','||time||','||notes FROM bookings JOIN calls ON calls.id = call_id WHERE session_id='${c.session}'`), 'Ada Lovelace,2026-12-01,14:30,first visit');
  c.peer.ws.close();
});

test('format mismatch: no audio either way, the stream closes and connect_action transfers', async () => {
  const srv = await server();
  fake.formats = { output: 'pcm_16000' };
  const before = fake.sessions.length;
  try {
    const c = await call(srv, { ms: 4000 });
    const closed = await c.peer.closed;
    assert.equal(closed.code, 1000);
    const s = fake.sessions[before];
    assert.equal(s.chunks.length, 0, 'no caller audio streamed to a mismatched agent');
    assert.ok(!c.peer.received.some((m) => m.event === 'media'), 'no agent audio to Twilio');
    await sleep(50);
    assert.equal(nextAction(srv, c.session), 'transfer,ai_failed');
    assert.match(q(srv, `SELECT group_concat(detail) FROM call_events JOIN calls ON calls.id = call_id WHERE session_id='${c.session}' AND type='ai.failed'`), /format mismatch/);
    const r = await webhook(srv, `/twilio/connect_action?session=${c.session}`, { CallSid: c.sid }, { signature: null });
    assert.deepEqual(verbs(r.xml), ['Say', 'Dial', 'Say', 'Hangup']);
  } finally {
    fake.formats = {};
  }
});
