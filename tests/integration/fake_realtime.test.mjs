// Self-test of the fake OpenAI Realtime API (tests/fakes/openai_realtime.mjs), with the `ws`
// client: the upgrade's auth and model checks, session.update validation in the GA and beta
// shapes, the default greeting and caller turn, cancel during speech, truncate, a tool call,
// scripted errors, a stalled upstream, a dropped TCP connection and a close frame.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startFakeRealtime, waitFor, mulawSilence, mulawRms, EVENT_NAMES } from '../fakes/openai_realtime.mjs';

const KEY = 'sk-test-fake-realtime-0123456789';
const TOOLS = [{
  type: 'function', name: 'book_appointment', description: 'Book an appointment for the caller.',
  parameters: { type: 'object', properties: { day: { type: 'string' }, time: { type: 'string' } }, required: ['day'] },
}];
const GA_SESSION = {
  type: 'realtime', instructions: 'You answer the phone for a dental practice.', tools: TOOLS,
  audio: {
    input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad' } },
    output: { format: { type: 'audio/pcmu' }, voice: 'marin' },
  },
};
const BETA_SESSION = {
  input_audio_format: 'g711_ulaw', output_audio_format: 'g711_ulaw', voice: 'alloy',
  instructions: 'You answer the phone for a dental practice.', tools: TOOLS, turn_detection: { type: 'server_vad' },
};
const FRAME = mulawSilence(20).toString('base64'); // one Twilio media frame: 20 ms, 160 bytes

let fake;
const clients = [];

before(async () => { fake = await startFakeRealtime({ apiKey: KEY }); });
after(async () => {
  for (const c of clients) c.ws.terminate();
  await fake.close();
});

// Connects like switchboard would; resolves once open, rejects with { status, body } on a
// refused handshake.
function connect({ key = KEY, beta = false, model = 'gpt-realtime', noAuth = false } = {}) {
  const headers = {};
  if (!noAuth) headers.Authorization = `Bearer ${key}`;
  if (beta) headers['OpenAI-Beta'] = 'realtime=v1';
  const url = model === null ? fake.url : `${fake.url}?model=${encodeURIComponent(model)}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const c = { ws, events: [], closed: null, frames: 0 };
    c.send = (ev) => ws.send(JSON.stringify(ev));
    c.of = (type) => c.events.filter((e) => e.type === type);
    c.wait = (type, { ms = 3000, where = () => true, after = -1 } = {}) =>
      waitFor(() => c.events.find((e, i) => i > after && e.type === type && where(e)), ms);
    c.append = (n) => { for (let i = 0; i < n; i++) c.send({ type: 'input_audio_buffer.append', audio: FRAME }); c.frames += n; };
    ws.on('message', (d) => { const ev = JSON.parse(d); Object.defineProperty(ev, 'at', { value: Date.now() }); c.events.push(ev); });
    ws.on('close', (code, reason) => { c.closed = { code, reason: reason.toString() }; });
    ws.on('open', () => { clients.push(c); c.session = fake.sessions.at(-1); resolve(c); });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => reject(Object.assign(new Error(`handshake refused: ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(body) })));
    });
    ws.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function configured(opts = {}) {
  const c = await connect(opts);
  await c.wait('session.created');
  c.send({ type: 'session.update', session: opts.beta ? BETA_SESSION : GA_SESSION });
  await c.wait('session.updated');
  return c;
}

test('the upgrade is refused without a key, with a wrong key, and without a model', async () => {
  const before_ = fake.sessions.length;
  await assert.rejects(connect({ noAuth: true }), (e) => e.status === 401 && /didn't provide an API key/.test(e.body.error.message));
  await assert.rejects(connect({ key: 'sk-wrong-key-000000000000' }), (e) =>
    e.status === 401 && e.body.error.code === 'invalid_api_key' && e.body.error.type === 'invalid_request_error' && !e.body.error.message.includes('sk-wrong-key-0000'));
  await assert.rejects(connect({ model: null }), (e) => e.status === 400 && e.body.error.param === 'model');
  assert.equal(fake.sessions.length, before_, 'no session for a refused handshake');
  assert.deepEqual(fake.rejected.slice(-3).map((r) => r.status), [401, 401, 400]);
});

test('GA: session.created shape, headers recorded, session.update validated', async () => {
  fake.script([]);
  const c = await connect({ model: 'gpt-realtime' });
  const created = await c.wait('session.created');
  assert.equal(created.session.type, 'realtime');
  assert.equal(created.session.object, 'realtime.session');
  assert.equal(created.session.model, 'gpt-realtime');
  assert.match(created.session.id, /^sess_/);
  assert.match(created.event_id, /^event_/);
  assert.equal(created.session.audio.input.format.type, 'audio/pcm');
  assert.equal(created.session.audio.input.turn_detection.type, 'server_vad');
  const s = c.session;
  assert.equal(s.shape, 'ga');
  assert.equal(s.model, 'gpt-realtime');
  assert.equal(s.headers.authorization, `Bearer ${KEY}`);
  assert.equal(s.headers['openai-beta'], undefined);

  const bad = async (session, code, param) => {
    const n = c.of('error').length;
    c.send({ type: 'session.update', event_id: 'evt_client_1', session });
    const err = await waitFor(() => c.of('error')[n]);
    assert.equal(err.error.type, 'invalid_request_error');
    assert.equal(err.error.code, code, err.error.message);
    assert.equal(err.error.param, param);
    assert.equal(err.error.event_id, 'evt_client_1');
  };
  await bad({ ...GA_SESSION, type: undefined }, 'missing_required_parameter', 'session.type');
  await bad({ ...GA_SESSION, input_audio_format: 'g711_ulaw' }, 'unknown_parameter', 'session.input_audio_format');
  await bad({ ...GA_SESSION, audio: { ...GA_SESSION.audio, input: { ...GA_SESSION.audio.input, format: { type: 'audio/pcm', rate: 24000 } } } }, 'invalid_value', 'session.audio.input.format.type');
  await bad({ ...GA_SESSION, audio: { ...GA_SESSION.audio, output: { format: { type: 'g711_ulaw' }, voice: 'marin' } } }, 'invalid_value', 'session.audio.output.format.type');
  await bad({ ...GA_SESSION, audio: { ...GA_SESSION.audio, output: { format: { type: 'audio/pcmu' } } } }, 'missing_required_parameter', 'session.audio.output.voice');
  await bad({ ...GA_SESSION, instructions: undefined }, 'missing_required_parameter', 'session.instructions');
  await bad({ ...GA_SESSION, tools: [{ type: 'function', name: 'x', parameters: { type: 'object' } }] }, 'invalid_value', 'session.tools[0].description');
  await bad({ ...GA_SESSION, tools: [{ name: 'x', description: 'd', parameters: { type: 'object' } }] }, 'missing_required_parameter', 'session.tools[0].type');
  await bad({ ...GA_SESSION, audio: { ...GA_SESSION.audio, input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'semantic_vad' } } } }, 'invalid_value', 'session.audio.input.turn_detection.type');
  assert.equal(c.of('session.updated').length, 0);
  assert.equal(s.rejectedUpdates.length, 9);
  assert.equal(s.errors.length, 9);

  c.send({ type: 'session.update', session: GA_SESSION });
  const updated = await c.wait('session.updated');
  assert.equal(updated.session.audio.input.format.type, 'audio/pcmu');
  assert.equal(updated.session.audio.output.format.type, 'audio/pcmu');
  assert.equal(updated.session.audio.output.voice, 'marin');
  assert.equal(updated.session.tools[0].name, 'book_appointment');
  assert.equal(updated.session.audio.input.turn_detection.interrupt_response, true, 'merged onto the defaults');
  // later updates may be partial
  c.send({ type: 'session.update', session: { type: 'realtime', instructions: 'Be brief.' } });
  await waitFor(() => c.of('session.updated').length === 2);
  assert.equal(s.config.instructions, 'Be brief.');
  assert.equal(s.sessionUpdates.length, 2);
  assert.deepEqual(s.events.map((e) => e.type).filter((t) => t !== 'session.update'), []);
});

test('beta: detected from OpenAI-Beta, session.created shape, session.update validated', async () => {
  fake.script([]);
  const c = await connect({ beta: true, model: 'gpt-4o-realtime-preview' });
  const created = await c.wait('session.created');
  assert.equal(created.session.type, undefined);
  assert.equal(created.session.object, 'realtime.session');
  assert.equal(created.session.input_audio_format, 'pcm16');
  assert.equal(created.session.voice, 'alloy');
  assert.equal(c.session.shape, 'beta');
  assert.equal(c.session.headers['openai-beta'], 'realtime=v1');

  c.send({ type: 'session.update', session: GA_SESSION });
  let err = await c.wait('error');
  assert.equal(err.error.code, 'unknown_parameter');
  assert.equal(err.error.param, 'session.type');
  c.send({ type: 'session.update', session: { ...BETA_SESSION, input_audio_format: 'pcm16' } });
  err = await c.wait('error', { where: (e) => e.error.param === 'session.input_audio_format' });
  assert.equal(err.error.code, 'invalid_value');
  c.send({ type: 'session.update', session: { ...BETA_SESSION, output_audio_format: 'ulaw' } });
  err = await c.wait('error', { where: (e) => e.error.param === 'session.output_audio_format' });
  assert.match(err.error.message, /Supported values are: 'pcm16', 'g711_ulaw', 'g711_alaw'/);
  c.send({ type: 'session.update', session: { ...BETA_SESSION, voice: undefined } });
  await c.wait('error', { where: (e) => e.error.param === 'session.voice' });

  c.send({ type: 'session.update', session: BETA_SESSION });
  const updated = await c.wait('session.updated');
  assert.equal(updated.session.input_audio_format, 'g711_ulaw');
  assert.equal(updated.session.output_audio_format, 'g711_ulaw');
  assert.equal(updated.session.turn_detection.type, 'server_vad');
  assert.equal(c.session.rejectedUpdates.length, 4);
});

async function checkGreeting(c, names) {
  const t0 = Date.now();
  c.send({ type: 'response.create' });
  const created = await c.wait('response.created');
  assert.equal(created.response.status, 'in_progress');
  const added = await c.wait('response.output_item.added');
  assert.equal(added.item.type, 'message');
  assert.equal(added.item.role, 'assistant');
  assert.equal(added.response_id, created.response.id);
  const done = await c.wait('response.done', { ms: 4000 });
  const elapsed = Date.now() - t0;
  assert.equal(done.response.status, 'completed');
  assert.equal(done.response.id, created.response.id);
  const deltas = c.of(names.audioDelta);
  assert.equal(deltas.length, 10, '1 s in 100 ms chunks');
  const audio = Buffer.concat(deltas.map((d) => Buffer.from(d.delta, 'base64')));
  assert.equal(audio.length, 8000, '1 s of 8 kHz mu-law');
  assert.ok(mulawRms(audio) > 1000, 'a tone, not silence');
  for (const d of deltas) {
    assert.equal(d.item_id, added.item.id);
    assert.equal(d.response_id, created.response.id);
    assert.equal(d.content_index, 0);
  }
  assert.ok(elapsed >= 850, `real-time pace: 1 s of audio took ${elapsed} ms`);
  const tr = c.of(names.transcriptDone)[0];
  assert.equal(tr.transcript, 'Hello, thanks for calling.');
  assert.equal(c.of(names.transcriptDelta).map((d) => d.delta).join(''), 'Hello, thanks for calling.');
  assert.equal(c.of(names.audioDone).length, 1);
  const itemDone = c.of('response.output_item.done')[0];
  assert.equal(itemDone.item.status, 'completed');
  assert.equal(done.response.output[0].id, added.item.id);
  return { created, added, done };
}

test('default scenario (GA): greeting, then a caller turn answered', async () => {
  const c = await configured();
  assert.equal(c.session.scenario, 'default');
  const { added } = await checkGreeting(c, EVENT_NAMES.ga);
  assert.equal(added.item.id, c.session.responses[0].itemId);
  assert.equal(c.of('response.audio.delta').length, 0, 'no beta names in a GA session');
  assert.equal(c.of('conversation.item.added').length, 1);
  assert.equal(c.of('response.output_item.done')[0].item.content[0].type, 'output_audio');

  // the simple VAD: 100 frames, speech_started; 25 more, speech_stopped + transcript + reply
  const mark = c.events.length - 1;
  c.append(99);
  await sleep(100);
  assert.equal(c.of('input_audio_buffer.speech_started').length, 0);
  c.append(1);
  const started = await c.wait('input_audio_buffer.speech_started');
  assert.equal(started.audio_start_ms, 2000);
  c.append(25);
  const stopped = await c.wait('input_audio_buffer.speech_stopped');
  assert.equal(stopped.item_id, started.item_id);
  assert.equal(stopped.audio_end_ms, 2500);
  const committed = await c.wait('input_audio_buffer.committed');
  assert.equal(committed.item_id, started.item_id);
  const transcribed = await c.wait('conversation.item.input_audio_transcription.completed');
  assert.equal(transcribed.transcript, 'caller said something');
  assert.equal(transcribed.item_id, started.item_id);
  const reply = await c.wait('response.done', { after: mark, ms: 4000 });
  assert.equal(reply.response.status, 'completed');
  assert.equal(c.of('response.output_audio_transcript.done')[1].transcript, 'I see.');
  assert.equal(c.session.audio.frames, 125);
  assert.equal(c.session.audio.bytes, 125 * 160);
  assert.deepEqual(c.session.audio.sizes, { 160: 125 });
  const appends = c.session.ofType('input_audio_buffer.append');
  assert.equal(appends.length, 125);
  assert.equal(appends[0].json.audio, undefined, 'audio not kept');
  assert.equal(appends[0].audioBytes, 160);
});

test('default scenario (beta): beta event names', async () => {
  const c = await configured({ beta: true });
  await checkGreeting(c, EVENT_NAMES.beta);
  assert.equal(c.of('response.output_audio.delta').length, 0, 'no GA names in a beta session');
  assert.equal(c.of('conversation.item.created').length, 1);
  assert.equal(c.of('conversation.item.added').length, 0);
  assert.equal(c.of('response.output_item.done')[0].item.content[0].type, 'audio');
});

test('response.cancel during speech stops the deltas; cancel with nothing active is an error', async () => {
  fake.script([{ on: 'response.create', do: 'speak', ms: 3000, transcript: 'A long answer that will be interrupted.' }]);
  const c = await configured();
  c.send({ type: 'response.create' });
  await waitFor(() => c.of('response.output_audio.delta').length >= 3);
  c.send({ type: 'response.create' });
  const busy = await c.wait('error');
  assert.equal(busy.error.code, 'conversation_already_has_active_response');
  c.send({ type: 'response.cancel' });
  const done = await c.wait('response.done');
  assert.equal(done.response.status, 'cancelled');
  assert.deepEqual(done.response.status_details, { type: 'cancelled', reason: 'client_cancelled' });
  const n = c.of('response.output_audio.delta').length;
  assert.ok(n >= 3 && n < 30);
  await sleep(300);
  assert.equal(c.of('response.output_audio.delta').length, n, 'no deltas after the cancel');
  assert.equal(c.of('response.output_audio_transcript.done').length, 0);
  assert.equal(c.of('response.output_item.done')[0].item.status, 'incomplete');
  c.send({ type: 'response.cancel' });
  const err = await c.wait('error', { where: (e) => e.error.code === 'response_cancel_not_active' });
  assert.equal(err.error.message, 'Cancellation failed: no active response found.');
  assert.equal(c.session.cancels.length, 2);
  assert.equal(c.session.cancels[0].active, done.response.id);
  assert.equal(c.session.cancels[1].active, null);
  assert.equal(c.session.responses[0].status, 'cancelled');
});

test('conversation.item.truncate is acknowledged, and checked', async () => {
  fake.script([{ on: 'response.create', do: 'speak', ms: 2000, pace: 'burst', transcript: 'Two seconds of audio.' }]);
  const c = await configured();
  c.send({ type: 'response.create' });
  await c.wait('response.done');
  assert.equal(c.of('response.output_audio.delta').length, 20);
  const itemId = c.of('response.output_item.added')[0].item.id;
  c.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 2500 });
  let err = await c.wait('error');
  assert.equal(err.error.message, 'Audio content of 2000ms is already shorter than 2500ms');
  c.send({ type: 'conversation.item.truncate', item_id: 'item_nope', content_index: 0, audio_end_ms: 10 });
  err = await c.wait('error', { where: (e) => e.error.param === 'item_id' });
  c.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 740 });
  const tr = await c.wait('conversation.item.truncated');
  assert.deepEqual({ item_id: tr.item_id, content_index: tr.content_index, audio_end_ms: tr.audio_end_ms }, { item_id: itemId, content_index: 0, audio_end_ms: 740 });
  const recs = c.session.truncates;
  assert.equal(recs.length, 3);
  assert.deepEqual(recs.map((r) => r.ok), [false, false, true]);
  assert.deepEqual({ item_id: recs[2].item_id, content_index: recs[2].content_index, audio_end_ms: recs[2].audio_end_ms }, { item_id: itemId, content_index: 0, audio_end_ms: 740 });
});

test('barge-in: speech_started after N frames interrupts the response (server VAD)', async () => {
  fake.script([
    { on: 'response.create', do: 'speak', ms: 3000, transcript: 'Our opening hours are nine to five.' },
    { after: 'frames', count: 20, do: 'speech_started', stopAfterFrames: 10, transcript: 'wait, wait' },
    { after: 'conversation.item.input_audio_transcription.completed', do: 'speak', ms: 500, pace: 'burst', transcript: 'Yes?' },
  ]);
  const c = await configured();
  c.send({ type: 'response.create' });
  await c.wait('response.output_audio.delta');
  c.append(20);
  const started = await c.wait('input_audio_buffer.speech_started');
  const done = await c.wait('response.done');
  assert.equal(done.response.status, 'cancelled');
  assert.equal(done.response.status_details.reason, 'turn_detected');
  const itemId = c.of('response.output_item.added')[0].item.id;
  // the bridge truncates at what was played
  c.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: 100 });
  await c.wait('conversation.item.truncated');
  c.append(10);
  await c.wait('input_audio_buffer.speech_stopped', { where: (e) => e.item_id === started.item_id });
  const t = await c.wait('conversation.item.input_audio_transcription.completed');
  assert.equal(t.transcript, 'wait, wait');
  await waitFor(() => c.of('response.done').length === 2);
  assert.equal(c.of('response.done')[1].response.status, 'completed');
  assert.equal(c.of('response.output_audio_transcript.done')[0].transcript, 'Yes?');
  assert.deepEqual(c.session.firedSteps.map((s) => s.do), ['speak', 'speech_started', 'speak']);
});

test('a tool call: function_call item, arguments delta/done, output accepted', async () => {
  fake.script([
    { on: 'response.create', do: 'tool', name: 'book_appointment', arguments: { day: 'Tuesday', time: '10:00' } },
    { on: 'response.create', do: 'speak', ms: 300, pace: 'burst', transcript: 'You are booked for Tuesday.' },
  ]);
  const c = await configured();
  c.send({ type: 'response.create' });
  const done = await c.wait('response.done');
  const added = c.of('response.output_item.added')[0];
  assert.equal(added.item.type, 'function_call');
  assert.equal(added.item.name, 'book_appointment');
  assert.match(added.item.call_id, /^call_/);
  const deltas = c.of('response.function_call_arguments.delta');
  assert.ok(deltas.length >= 1);
  for (const d of deltas) assert.equal(d.call_id, added.item.call_id);
  const argsDone = c.of('response.function_call_arguments.done')[0];
  assert.equal(argsDone.name, 'book_appointment');
  assert.equal(argsDone.call_id, added.item.call_id);
  assert.equal(argsDone.item_id, added.item.id);
  assert.equal(typeof argsDone.arguments, 'string');
  assert.deepEqual(JSON.parse(argsDone.arguments), { day: 'Tuesday', time: '10:00' });
  assert.equal(deltas.map((d) => d.delta).join(''), argsDone.arguments);
  assert.equal(done.response.status, 'completed');
  assert.equal(done.response.output[0].type, 'function_call');
  assert.equal(done.response.output[0].arguments, argsDone.arguments);

  c.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: 'call_unknown', output: '{}' } });
  const err = await c.wait('error');
  assert.equal(err.error.param, 'item.call_id');
  c.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: added.item.call_id, output: JSON.stringify({ booked: true }) } });
  const itemAdded = await c.wait('conversation.item.added', { where: (e) => e.item.type === 'function_call_output' });
  assert.equal(itemAdded.item.call_id, added.item.call_id);
  await c.wait('conversation.item.done', { where: (e) => e.item.type === 'function_call_output' });
  c.send({ type: 'response.create' });
  await waitFor(() => c.of('response.done').length === 2);
  assert.equal(c.of('response.output_audio_transcript.done')[0].transcript, 'You are booked for Tuesday.');
  const s = c.session;
  assert.equal(s.toolCalls.length, 1);
  assert.deepEqual(s.toolOutputs.map((o) => [o.call_id, o.name, o.parsed]), [[added.item.call_id, 'book_appointment', { booked: true }]]);
  assert.deepEqual(s.events.map((e) => e.type), ['session.update', 'response.create', 'conversation.item.create', 'conversation.item.create', 'response.create']);
});

test('a scripted error event', async () => {
  fake.script([{ on: 'response.create', do: 'error', code: 'rate_limit_exceeded', errorType: 'rate_limit_error', message: 'Rate limit reached.' }]);
  const c = await configured();
  c.send({ type: 'response.create' });
  const err = await c.wait('error');
  assert.deepEqual(err.error, { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Rate limit reached.', param: null, event_id: null });
  assert.equal(c.session.errors.length, 1);
  assert.equal(c.of('response.created').length, 0);
});

test('stall: session.created, then nothing at all', async () => {
  fake.script([{ do: 'stall' }]);
  const c = await connect();
  await c.wait('session.created');
  c.send({ type: 'session.update', session: GA_SESSION });
  c.send({ type: 'response.create' });
  c.append(5);
  await sleep(500);
  assert.deepEqual(c.events.map((e) => e.type), ['session.created'], 'no session.updated within 500 ms');
  assert.equal(c.session.stalled, true);
  assert.deepEqual(c.session.events.map((e) => e.type).slice(0, 2), ['session.update', 'response.create']);
  assert.equal(c.session.audio.frames, 5);

  fake.script([{ do: 'stall', sessionCreated: false }]);
  const c2 = await connect();
  c2.send({ type: 'session.update', session: GA_SESSION });
  await sleep(300);
  assert.equal(c2.events.length, 0, 'not even session.created');
  assert.equal(c2.closed, null, 'the socket stays open');
});

test('drop: the TCP connection closes without a close frame', async () => {
  fake.script([{ on: 'session.update', do: 'drop' }]);
  const c = await connect();
  c.send({ type: 'session.update', session: GA_SESSION });
  await waitFor(() => c.closed);
  assert.equal(c.closed.code, 1006, 'abnormal closure: no close frame received');
  assert.equal(c.session.closedBy, 'drop');
  assert.ok(c.of('session.updated').length <= 1);

  fake.script([{ after: 'ms', ms: 100, do: 'drop' }]);
  const c2 = await connect();
  await waitFor(() => c2.closed);
  assert.equal(c2.closed.code, 1006);
});

test('close: a close frame with the scripted code', async () => {
  fake.script([{ after: 'session.updated', do: 'close', code: 1011, reason: 'upstream error' }]);
  const c = await configured();
  await waitFor(() => c.closed);
  assert.deepEqual(c.closed, { code: 1011, reason: 'upstream error' });
  await waitFor(() => c.session.closeCode !== null);
  assert.equal(c.session.closedBy, 'server');
});
