// A fake of OpenAI's Realtime API (WebSocket, wss://api.openai.com/v1/realtime?model=...) for
// what a phone bridge uses: a real WebSocket server (npm `ws`) that checks the bearer key and
// the `model` query parameter on the upgrade, answers in the GA shape, or in the beta shape
// when the client sends `OpenAI-Beta: realtime=v1`, validates session.update against what
// switchboard must send (mu-law both ways, voice, instructions, function tools, server VAD),
// records every client event, and plays scripted scenarios: spoken responses with real
// mu-law audio at real-time pace (or faster), caller turns (server-VAD events), function
// calls, errors, a stalled upstream, a dropped TCP connection, a close frame.
//
// Event names and fields follow openai-node's types: src/resources/realtime/realtime.ts (GA)
// and src/resources/beta/realtime/realtime.ts (beta). What differs between the two shapes:
//   GA    session.update {session:{type:"realtime", audio:{input:{format:{type:"audio/pcmu"},
//         turn_detection}, output:{format:{type:"audio/pcmu"}, voice}}, instructions, tools}}
//         response.output_audio.delta / .done, response.output_audio_transcript.delta / .done,
//         conversation.item.added + conversation.item.done, assistant content type "output_audio"
//   beta  session.update {session:{input_audio_format:"g711_ulaw", output_audio_format:"g711_ulaw",
//         voice, instructions, tools, turn_detection}}
//         response.audio.delta / .done, response.audio_transcript.delta / .done,
//         conversation.item.created, assistant content type "audio"
//   both  session.created, session.updated, error, response.created, response.done,
//         response.output_item.added / .done, response.content_part.added / .done,
//         response.function_call_arguments.delta / .done, input_audio_buffer.speech_started /
//         .speech_stopped / .committed / .cleared, conversation.item.input_audio_transcription
//         .completed, conversation.item.truncated
//
//   const fake = await startFakeRealtime({ apiKey: 'sk-test' });
//   env: OPENAI_REALTIME_URL=fake.url (ws://127.0.0.1:PORT/v1/realtime), OPENAI_API_KEY=sk-test
//   With tls: { cert, key } (PEM; e.g. makeTestPki(dir) from ./tls.mjs) the fake serves
//   https/wss and fake.url is wss://...; the server under test trusts the CA with
//   AI_CA_FILE. Handshakes are recorded in fake.tlsConnections (with the SNI name), those the
//   client gave up on in fake.tlsErrors.
//   fake.script([
//     { on: 'response.create', do: 'speak', ms: 2000, transcript: 'Hello, how can I help?' },
//     { after: 'frames', count: 50, do: 'speech_started', stopAfterFrames: 25 },
//     { after: 'conversation.item.input_audio_transcription.completed',
//       do: 'tool', name: 'transfer_call', arguments: { target: 'sales' } },
//   ]);
//   ... run a call ...
//   const s = await fake.waitFor(() => fake.sessions.find((x) => x.truncates.length));
//
// Scenario steps run in order. A step waits for its trigger, then fires its action (actions
// that take time, like `speak`, run on while the next step is armed at once). Triggers:
//   (none)                     fire as soon as the step is armed
//   on: '<client event type>'  the next client event of that type (optional where: (ev) => bool)
//   after: 'frames', count: N  N input_audio_buffer.append events since the step was armed
//   after: 'ms', ms: N         N ms after the step was armed
//   after: '<server event>'    the next server event of that type the fake sends (e.g.
//                              'response.done', 'input_audio_buffer.speech_stopped')
// Actions (do):
//   speak           { ms=1000, transcript='', pace, chunkMs=100, toneHz=440 (0: silence) }
//                   a response (the one response.create asked for, when that triggered it, or
//                   a server-initiated one): response.created, output_item.added, content_part
//                   .added, audio deltas of ~chunkMs of base64 mu-law (a tone) interleaved with
//                   transcript deltas, audio done, transcript done, content_part.done,
//                   output_item.done, response.done. pace: 'realtime' | 'burst' | speed factor.
//   speech_started  { transcript='caller said something', stopAfterFrames=25 (null: never),
//                   interrupt, reply }: input_audio_buffer.speech_started; if a response is in
//                   flight and interrupt (default: the session's turn_detection
//                   .interrupt_response, true unless set false) the fake cancels it itself
//                   (response.done status "cancelled", reason "turn_detected"), as the real
//                   server does. After stopAfterFrames more appended frames: speech_stopped,
//                   committed, the user item, transcription completed, then `reply` if given
//                   (a speak or tool action object, e.g. { do: 'speak', ms: 1000 }).
//   speech_stopped  { transcript, reply }: ends a caller turn started with stopAfterFrames: null
//   tool            { name, arguments (object or JSON string), callId }: a function call response
//   error           { code, message, errorType='invalid_request_error', param=null }
//   send            { event }: send a raw server event (event_id added if missing)
//   stall           { sessionCreated=true }: from now on answer nothing at all (not even
//                   session.updated); a response in flight freezes. As the first step with no
//                   trigger and sessionCreated: false, not even session.created is sent.
//   drop            { afterMs=0, rst=false }: destroy the TCP socket, no close frame
//   close           { code=1000, reason='', afterMs=0 }: a WebSocket close frame
// When the steps run out, the session goes on as `then` says: 'idle' (default; automatic
// answers only) or 'default' (the default scenario below). script() takes an array of steps
// or { steps, then }; each call queues one scenario for the next accepted connection.
//
// Default scenario (no script queued): the first response.create is answered with 1 s of
// audio, transcript "Hello, thanks for calling."; a simple VAD counts appended frames: after
// every 100 frames (since the last turn) speech_started, 25 frames later speech_stopped,
// committed, transcription "caller said something", then a 1 s spoken reply ("I see.").
// Any later response.create (e.g. after a function_call_output) gets 1 s, "Okay.".
//
// Automatic answers, in every scenario, as the real API does them: session.update is
// validated (error, or session.updated); response.create while a response is in flight ->
// error conversation_already_has_active_response; response.cancel -> the response in flight
// ends with response.done status "cancelled" (reason "client_cancelled"), or error
// response_cancel_not_active when none is; conversation.item.truncate is checked (known
// assistant audio item, content_index 0, audio_end_ms not past the audio sent) and answered
// with conversation.item.truncated; conversation.item.create is answered with the item
// (created / added + done); input_audio_buffer.commit / .clear with committed / cleared.
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, WebSocket } from 'ws';

export const PATH = '/v1/realtime';

// Server event names that differ between the two API shapes.
export const EVENT_NAMES = Object.freeze({
  ga: Object.freeze({
    audioDelta: 'response.output_audio.delta',
    audioDone: 'response.output_audio.done',
    transcriptDelta: 'response.output_audio_transcript.delta',
    transcriptDone: 'response.output_audio_transcript.done',
  }),
  beta: Object.freeze({
    audioDelta: 'response.audio.delta',
    audioDone: 'response.audio.done',
    transcriptDelta: 'response.audio_transcript.delta',
    transcriptDone: 'response.audio_transcript.done',
  }),
});

// Client event types the API accepts (both shapes); anything else is answered with an error.
const CLIENT_EVENTS = new Set([
  'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit',
  'input_audio_buffer.clear', 'output_audio_buffer.clear', 'conversation.item.create',
  'conversation.item.retrieve', 'conversation.item.truncate', 'conversation.item.delete',
  'response.create', 'response.cancel', 'transcription_session.update',
]);

const ACTIONS = new Set(['speak', 'speech_started', 'speech_stopped', 'tool', 'error', 'send', 'stall', 'drop', 'close']);

const BYTES_PER_MS = 8; // G.711 mu-law, 8 kHz, one byte a sample

// ---- mu-law ------------------------------------------------------------------------------

// G.711 mu-law encoding of one 16-bit linear sample.
export function mulawEncodeSample(sample) {
  const BIAS = 0x84, CLIP = 32635;
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (sign) s = -s;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; exponent--, mask >>= 1);
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

export function mulawDecodeSample(u) {
  u = ~u & 0xff;
  const sign = u & 0x80, exponent = (u >> 4) & 7, mantissa = u & 0x0f;
  const s = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return sign ? -s : s;
}

// `ms` of mu-law audio at 8 kHz: a sine tone of `hz` (amplitude ~ -12 dBFS), or silence (0xFF)
// when hz is 0. `phase` (in samples) lets consecutive buffers continue the same wave.
export function mulawTone(ms, hz = 440, phase = 0) {
  const n = Math.round(ms * BYTES_PER_MS);
  const buf = Buffer.alloc(n, 0xff);
  if (hz) for (let i = 0; i < n; i++) buf[i] = mulawEncodeSample(8000 * Math.sin((2 * Math.PI * hz * (i + phase)) / 8000));
  return buf;
}

export const mulawSilence = (ms) => mulawTone(ms, 0);

// RMS level (linear) of a mu-law buffer: 0 for digital silence, ~5600 for mulawTone's tone.
export function mulawRms(buf) {
  if (!buf.length) return 0;
  let sum = 0;
  for (const u of buf) { const s = mulawDecodeSample(u); sum += s * s; }
  return Math.sqrt(sum / buf.length);
}

// ---- helpers -------------------------------------------------------------------------------

const rid = (prefix) => prefix + randomBytes(24).toString('base64url').replace(/[-_]/g, '').slice(0, 21);
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const clone = (v) => (v === undefined ? v : JSON.parse(JSON.stringify(v)));

// Strict base64 (what the API expects of `audio`): returns a Buffer, or null if not base64.
function decodeBase64Strict(s) {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  return Buffer.from(s, 'base64');
}

function deepMerge(target, patch) {
  for (const [k, v] of Object.entries(patch)) {
    if (isObj(v) && isObj(target[k])) deepMerge(target[k], v);
    else target[k] = clone(v);
  }
  return target;
}

export async function waitFor(pred, ms = 5000, interval = 10) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`waitFor: condition not met within ${ms} ms: ${pred}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

function validateSteps(steps) {
  if (!Array.isArray(steps)) throw new TypeError('script: steps must be an array');
  for (const [i, s] of steps.entries()) {
    if (!isObj(s) || !ACTIONS.has(s.do)) throw new TypeError(`script step ${i}: unknown action ${JSON.stringify(s?.do)}`);
    if (s.on !== undefined && typeof s.on !== 'string') throw new TypeError(`script step ${i}: on must be an event type`);
    if (s.after === 'frames' && !(s.count >= 0)) throw new TypeError(`script step ${i}: after 'frames' needs count`);
    if (s.after === 'ms' && !(s.ms >= 0)) throw new TypeError(`script step ${i}: after 'ms' needs ms`);
    if (s.on !== undefined && s.after !== undefined) throw new TypeError(`script step ${i}: give on or after, not both`);
    if (s.do === 'tool' && !s.name) throw new TypeError(`script step ${i}: tool needs name`);
    if (s.reply && !['speak', 'tool'].includes(s.reply.do ?? 'speak')) throw new TypeError(`script step ${i}: reply must be speak or tool`);
  }
}

// ---- session defaults (what session.created carries) ----------------------------------------

function initialSession(shape, id, model) {
  const expires_at = Math.floor(Date.now() / 1000) + 3600;
  const vad = { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 200, create_response: true, interrupt_response: true };
  if (shape === 'ga') {
    return {
      type: 'realtime', object: 'realtime.session', id, model, expires_at,
      output_modalities: ['audio'], instructions: '', tools: [], tool_choice: 'auto',
      max_output_tokens: 'inf', tracing: null, prompt: null, include: null, truncation: 'auto',
      audio: {
        input: { format: { type: 'audio/pcm', rate: 24000 }, transcription: null, noise_reduction: null, turn_detection: { ...vad, idle_timeout_ms: null } },
        output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy', speed: 1 },
      },
    };
  }
  return {
    id, object: 'realtime.session', model, expires_at, modalities: ['audio', 'text'], instructions: '',
    voice: 'alloy', input_audio_format: 'pcm16', output_audio_format: 'pcm16', input_audio_transcription: null,
    turn_detection: vad, tools: [], tool_choice: 'auto', temperature: 0.8, max_response_output_tokens: 'inf',
    speed: 1, tracing: null,
  };
}

// ---- session.update validation ---------------------------------------------------------------
// Returns null, or { code, message, param } in the API's style (invalid_request_error codes
// missing_required_parameter / unknown_parameter / invalid_value / invalid_type). Beyond what
// the API itself enforces, the fake checks switchboard's contract: mu-law both ways, a voice,
// non-empty instructions, function tools, server VAD; the first accepted update must carry
// all of them, later ones may be partial.

const GA_KEYS = new Set(['type', 'model', 'audio', 'instructions', 'tools', 'tool_choice', 'output_modalities', 'max_output_tokens', 'tracing', 'prompt', 'include', 'truncation', 'reasoning', 'parallel_tool_calls']);
const BETA_KEYS = new Set(['model', 'modalities', 'instructions', 'voice', 'input_audio_format', 'output_audio_format', 'input_audio_transcription', 'input_audio_noise_reduction', 'turn_detection', 'tools', 'tool_choice', 'temperature', 'max_response_output_tokens', 'speed', 'tracing', 'client_secret', 'include']);
const GA_FORMATS = ['audio/pcm', 'audio/pcmu', 'audio/pcma'];
const BETA_FORMATS = ['pcm16', 'g711_ulaw', 'g711_alaw'];

const missing = (param) => ({ code: 'missing_required_parameter', param, message: `Missing required parameter: '${param}'.` });
const unknown = (param) => ({ code: 'unknown_parameter', param, message: `Unknown parameter: '${param}'.` });
const badType = (param, want) => ({ code: 'invalid_type', param, message: `Invalid type for '${param}': expected ${want}.` });
const badValue = (param, value, allowed) => ({
  code: 'invalid_value', param,
  message: `Invalid value: '${value}'. Supported values are: ${allowed.map((a) => `'${a}'`).join(', ')}.`,
});
// Valid for the API, but not what switchboard must send.
const contract = (param, value, want) => ({
  code: 'invalid_value', param,
  message: `Invalid value: '${value}'. The fake expects ${want} for '${param}' (switchboard contract).`,
});

function checkTools(tools) {
  if (!Array.isArray(tools)) return badType('session.tools', 'an array');
  for (const [i, t] of tools.entries()) {
    const p = `session.tools[${i}]`;
    if (!isObj(t)) return badType(p, 'an object');
    if (t.type === undefined) return missing(`${p}.type`);
    if (t.type !== 'function') return contract(`${p}.type`, t.type, "'function'");
    for (const k of Object.keys(t)) if (!['type', 'name', 'description', 'parameters'].includes(k)) return unknown(`${p}.${k}`);
    if (typeof t.name !== 'string' || !t.name) return missing(`${p}.name`);
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(t.name)) return { code: 'invalid_value', param: `${p}.name`, message: `Invalid '${p}.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.` };
    if (typeof t.description !== 'string' || !t.description) return contract(`${p}.description`, t.description, 'a non-empty string');
    if (!isObj(t.parameters)) return missing(`${p}.parameters`);
    if (t.parameters.type !== 'object') return contract(`${p}.parameters.type`, t.parameters.type, "'object' (a JSON schema)");
  }
  return null;
}

function validateUpdate(shape, s, first) {
  if (!isObj(s)) return missing('session');
  if (shape === 'ga') {
    for (const k of Object.keys(s)) if (!GA_KEYS.has(k)) return unknown(`session.${k}`);
    if (s.type === undefined) return missing('session.type');
    if (s.type !== 'realtime') return badValue('session.type', s.type, ['realtime', 'transcription']);
    if (s.audio !== undefined) {
      if (!isObj(s.audio)) return badType('session.audio', 'an object');
      for (const k of Object.keys(s.audio)) if (!['input', 'output'].includes(k)) return unknown(`session.audio.${k}`);
      const inp = s.audio.input, out = s.audio.output;
      if (inp !== undefined) {
        if (!isObj(inp)) return badType('session.audio.input', 'an object');
        for (const k of Object.keys(inp)) if (!['format', 'transcription', 'noise_reduction', 'turn_detection'].includes(k)) return unknown(`session.audio.input.${k}`);
        if (inp.format !== undefined) {
          const t = inp.format?.type;
          if (!GA_FORMATS.includes(t)) return badValue('session.audio.input.format.type', t, GA_FORMATS);
          if (t !== 'audio/pcmu') return contract('session.audio.input.format.type', t, "'audio/pcmu'");
        }
        if (inp.turn_detection !== undefined) {
          const td = inp.turn_detection;
          if (td === null) return contract('session.audio.input.turn_detection', 'null', "server_vad");
          if (td.type === undefined) return missing('session.audio.input.turn_detection.type');
          if (!['server_vad', 'semantic_vad'].includes(td.type)) return badValue('session.audio.input.turn_detection.type', td.type, ['server_vad', 'semantic_vad']);
          if (td.type !== 'server_vad') return contract('session.audio.input.turn_detection.type', td.type, "'server_vad'");
        }
      }
      if (out !== undefined) {
        if (!isObj(out)) return badType('session.audio.output', 'an object');
        for (const k of Object.keys(out)) if (!['format', 'voice', 'speed'].includes(k)) return unknown(`session.audio.output.${k}`);
        if (out.format !== undefined) {
          const t = out.format?.type;
          if (!GA_FORMATS.includes(t)) return badValue('session.audio.output.format.type', t, GA_FORMATS);
          if (t !== 'audio/pcmu') return contract('session.audio.output.format.type', t, "'audio/pcmu'");
        }
        if (out.voice !== undefined && (typeof out.voice !== 'string' || !out.voice)) return badType('session.audio.output.voice', 'a non-empty string');
      }
    }
    if (s.instructions !== undefined && typeof s.instructions !== 'string') return badType('session.instructions', 'a string');
    if (s.tools !== undefined) { const e = checkTools(s.tools); if (e) return e; }
    if (first) {
      if (!s.audio?.input?.format) return missing('session.audio.input.format');
      if (!s.audio?.output?.format) return missing('session.audio.output.format');
      if (!s.audio?.output?.voice) return missing('session.audio.output.voice');
      if (!s.audio?.input?.turn_detection) return missing('session.audio.input.turn_detection');
    }
  } else {
    for (const k of Object.keys(s)) if (!BETA_KEYS.has(k)) return unknown(`session.${k}`);
    for (const k of ['input_audio_format', 'output_audio_format']) {
      if (s[k] === undefined) continue;
      if (!BETA_FORMATS.includes(s[k])) return badValue(`session.${k}`, s[k], BETA_FORMATS);
      if (s[k] !== 'g711_ulaw') return contract(`session.${k}`, s[k], "'g711_ulaw'");
    }
    if (s.voice !== undefined && (typeof s.voice !== 'string' || !s.voice)) return badType('session.voice', 'a non-empty string');
    if (s.turn_detection !== undefined) {
      const td = s.turn_detection;
      if (td === null) return contract('session.turn_detection', 'null', 'server_vad');
      if (td.type === undefined) return missing('session.turn_detection.type');
      if (!['server_vad', 'semantic_vad'].includes(td.type)) return badValue('session.turn_detection.type', td.type, ['server_vad', 'semantic_vad']);
      if (td.type !== 'server_vad') return contract('session.turn_detection.type', td.type, "'server_vad'");
    }
    if (s.instructions !== undefined && typeof s.instructions !== 'string') return badType('session.instructions', 'a string');
    if (s.tools !== undefined) { const e = checkTools(s.tools); if (e) return e; }
    if (first) {
      for (const k of ['input_audio_format', 'output_audio_format', 'voice', 'turn_detection']) if (s[k] === undefined) return missing(`session.${k}`);
    }
  }
  if (first) {
    if (typeof s.instructions !== 'string' || !s.instructions.trim()) return s.instructions === undefined ? missing('session.instructions') : contract('session.instructions', s.instructions, 'non-empty instructions');
    if (s.tools === undefined) return missing('session.tools');
  }
  return null;
}

// ---- one connection -------------------------------------------------------------------------

class Conn {
  constructor(fake, ws, socket, req, rec, scenario) {
    this.fake = fake;
    this.ws = ws;
    this.socket = socket;
    this.rec = rec;
    this.shape = rec.shape;
    this.names = EVENT_NAMES[rec.shape];
    this.t0 = performance.now();
    this.timers = new Set();
    this.active = null; // the response in flight
    this.stalled = false;
    this.ended = false;
    this.lastItemId = null;
    this.turn = null; // a caller turn between speech_started and speech_stopped
    this.steps = scenario.steps;
    this.then = scenario.then;
    this.mode = scenario.default ? 'default' : 'script';
    this.stepIdx = -1;
    this.armed = null;
    this.pace = fake.opts.pace;
    // default scenario state
    this.greeted = false;
    this.vadFrames = 0;
  }

  now() { return Math.round((performance.now() - this.t0) * 10) / 10; }

  later(ms, fn) {
    const t = setTimeout(() => { this.timers.delete(t); if (!this.ended) fn(); }, ms);
    this.timers.add(t);
    return t;
  }

  clearTimers() { for (const t of this.timers) clearTimeout(t); this.timers.clear(); }

  start() {
    const first = this.steps[0];
    const silent = first && first.do === 'stall' && first.on === undefined && first.after === undefined && first.sessionCreated === false;
    if (!silent) this.emit({ type: 'session.created', session: clone(this.rec.config) });
    this.ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.ws.on('close', (code, reason) => this.onClose(code, reason));
    this.ws.on('error', (err) => { this.rec.socketErrors.push(String(err?.message ?? err)); });
    this.armNext();
  }

  // -- sending --

  emit(ev) {
    if (this.ended || this.stalled) return null;
    const out = { event_id: rid('event_'), ...ev };
    if (this.ws.readyState !== WebSocket.OPEN) return null;
    this.ws.send(JSON.stringify(out));
    let json = out;
    if (out.type === this.names.audioDelta && !this.fake.opts.keepAudio) {
      json = { ...out, delta: undefined, deltaBytes: Buffer.byteLength(out.delta, 'base64') };
    }
    this.rec.sent.push({ type: out.type, json, t: this.now() });
    if (out.type === 'error') this.rec.errors.push(out);
    if (this.armed && this.armed.after === out.type) {
      const step = this.armed;
      queueMicrotask(() => { if (this.armed === step) this.fire(step, out); });
    }
    return out;
  }

  error(code, message, { param = null, clientEventId = null, errorType = 'invalid_request_error' } = {}) {
    return this.emit({ type: 'error', error: { type: errorType, code, message, param, event_id: clientEventId } });
  }

  // -- receiving --

  onMessage(data, isBinary) {
    const t = this.now();
    if (isBinary) {
      this.rec.events.push({ type: '(binary)', json: null, t, bytes: data.length });
      if (!this.stalled) this.error('invalid_json', 'Binary frames are not supported; send JSON text events.');
      return;
    }
    let ev;
    try { ev = JSON.parse(data.toString('utf8')); } catch {
      this.rec.events.push({ type: '(invalid json)', json: null, t, text: data.toString('utf8').slice(0, 200) });
      if (!this.stalled) this.error('invalid_json', "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)");
      return;
    }
    const type = isObj(ev) ? ev.type : undefined;
    let json = ev;
    if (type === 'input_audio_buffer.append' && !this.fake.opts.keepAudio && typeof ev.audio === 'string') {
      json = { ...ev, audio: undefined, audioChars: ev.audio.length };
    }
    const entry = { type: typeof type === 'string' ? type : '(no type)', json, t, at: Date.now() };
    this.rec.events.push(entry);
    if (this.stalled) {
      if (type === 'input_audio_buffer.append') this.countAudio(ev, entry);
      return;
    }
    if (!CLIENT_EVENTS.has(type)) {
      this.error('invalid_value', `Invalid value: '${type}'. Supported values are: ${[...CLIENT_EVENTS].map((x) => `'${x}'`).join(', ')}.`, { param: 'type', clientEventId: ev?.event_id ?? null });
      return;
    }
    const consumed = this.handle(type, ev, entry);
    if (this.mode === 'default' && !this.stalled) this.defaultOn(type, ev, consumed);
    if (this.armed && this.armed.on === type && !consumed && (!this.armed.where || this.armed.where(ev))) this.fire(this.armed, ev);
    if (type === 'input_audio_buffer.append' && entry.audioBytes !== undefined) this.onFrame();
  }

  countAudio(ev, entry) {
    const buf = decodeBase64Strict(ev.audio);
    const a = this.rec.audio;
    if (!buf) { a.badFrames++; return false; }
    a.frames++;
    a.bytes += buf.length;
    a.sizes[buf.length] = (a.sizes[buf.length] ?? 0) + 1;
    if (this.fake.opts.keepAudio) a.chunks.push(buf);
    entry.audioBytes = buf.length;
    return true;
  }

  audioMs() { return Math.floor(this.rec.audio.bytes / BYTES_PER_MS); }

  // Automatic answers. Returns true when the event was refused (so no step fires on it).
  handle(type, ev, entry) {
    const rec = this.rec;
    const cid = ev.event_id ?? null;
    switch (type) {
      case 'session.update': {
        const err = validateUpdate(this.shape, ev.session, rec.sessionUpdates.length === 0);
        if (err) {
          rec.rejectedUpdates.push({ json: ev, error: err });
          this.error(err.code, err.message, { param: err.param, clientEventId: cid });
          return true;
        }
        rec.sessionUpdates.push(ev);
        deepMerge(rec.config, ev.session);
        this.emit({ type: 'session.updated', session: clone(rec.config) });
        return false;
      }
      case 'input_audio_buffer.append':
        if (!this.countAudio(ev, entry)) {
          this.error('invalid_value', "Invalid 'audio'. Expected base64-encoded audio bytes.", { param: 'audio', clientEventId: cid });
          return true;
        }
        rec.bufferBytes += entry.audioBytes;
        return false;
      case 'input_audio_buffer.commit': {
        if (rec.bufferBytes < 100 * BYTES_PER_MS) {
          this.error('input_audio_buffer_commit_empty', `Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has ${rec.bufferBytes / BYTES_PER_MS}ms of audio.`, { clientEventId: cid });
          return true;
        }
        this.commitUserItem(rid('item_'));
        return false;
      }
      case 'input_audio_buffer.clear':
        rec.bufferBytes = 0;
        this.emit({ type: 'input_audio_buffer.cleared' });
        return false;
      case 'response.create':
        if (this.active) {
          this.error('conversation_already_has_active_response', `Conversation already has an active response in progress: ${this.active.id}. Wait until the response is finished before creating a new one.`, { clientEventId: cid });
          return true;
        }
        return false;
      case 'response.cancel': {
        const had = !!this.active;
        rec.cancels.push({ t: entry.t, response_id: ev.response_id ?? null, active: had ? this.active.id : null });
        if (!had || (ev.response_id && ev.response_id !== this.active.id)) {
          this.error('response_cancel_not_active', 'Cancellation failed: no active response found.', { clientEventId: cid });
          return true;
        }
        this.active.finish('cancelled', 'client_cancelled');
        return false;
      }
      case 'conversation.item.truncate': {
        const tr = { item_id: ev.item_id, content_index: ev.content_index, audio_end_ms: ev.audio_end_ms, t: entry.t, ok: false };
        rec.truncates.push(tr);
        const item = rec.items.get(ev.item_id);
        let err = null;
        if (typeof ev.item_id !== 'string') err = missing('item_id');
        else if (!Number.isInteger(ev.content_index)) err = missing('content_index');
        else if (!Number.isInteger(ev.audio_end_ms) || ev.audio_end_ms < 0) err = badType('audio_end_ms', 'a non-negative integer');
        else if (!item) err = { code: 'item_truncate_invalid_item_id', param: 'item_id', message: `Item with item_id not found: ${ev.item_id}` };
        else if (item.role !== 'assistant' || item.audioMs === undefined) err = { code: 'invalid_value', param: 'item_id', message: `Only assistant messages with audio can be truncated: ${ev.item_id}` };
        else if (ev.content_index !== 0) err = { code: 'invalid_value', param: 'content_index', message: `Invalid content_index ${ev.content_index}: the item has one content part.` };
        else if (ev.audio_end_ms > item.audioMs) err = { code: 'invalid_value', param: 'audio_end_ms', message: `Audio content of ${item.audioMs}ms is already shorter than ${ev.audio_end_ms}ms` };
        if (err) { tr.error = err; this.error(err.code, err.message, { param: err.param, clientEventId: cid }); return true; }
        tr.ok = true;
        item.truncatedMs = ev.audio_end_ms;
        this.emit({ type: 'conversation.item.truncated', item_id: ev.item_id, content_index: ev.content_index, audio_end_ms: ev.audio_end_ms });
        return false;
      }
      case 'conversation.item.create': {
        const item = ev.item;
        if (!isObj(item)) { this.error('missing_required_parameter', "Missing required parameter: 'item'.", { param: 'item', clientEventId: cid }); return true; }
        if (!['message', 'function_call', 'function_call_output'].includes(item.type)) {
          this.error('invalid_value', `Invalid value: '${item.type}'. Supported values are: 'message', 'function_call', and 'function_call_output'.`, { param: 'item.type', clientEventId: cid });
          return true;
        }
        if (item.type === 'function_call_output') {
          const call = rec.toolCalls.find((c) => c.call_id === item.call_id);
          if (typeof item.call_id !== 'string') { this.error('missing_required_parameter', "Missing required parameter: 'item.call_id'.", { param: 'item.call_id', clientEventId: cid }); return true; }
          if (typeof item.output !== 'string') { this.error('invalid_type', "Invalid type for 'item.output': expected a string.", { param: 'item.output', clientEventId: cid }); return true; }
          if (!call) { this.error('invalid_value', `Tool call ID '${item.call_id}' not found in conversation.`, { param: 'item.call_id', clientEventId: cid }); return true; }
          let parsed; try { parsed = JSON.parse(item.output); } catch { parsed = undefined; }
          rec.toolOutputs.push({ call_id: item.call_id, name: call.name, output: item.output, parsed, t: entry.t });
        }
        const full = { id: item.id ?? rid('item_'), object: 'realtime.item', status: 'completed', ...clone(item) };
        rec.items.set(full.id, { type: full.type, role: full.role });
        const prev = ev.previous_item_id ?? this.lastItemId;
        this.lastItemId = full.id;
        this.announceItem(full, prev, true);
        return false;
      }
      default:
        return false;
    }
  }

  // conversation.item.created (beta) / conversation.item.added (+ .done when complete) (GA)
  announceItem(item, previous_item_id, complete) {
    if (this.shape === 'beta') this.emit({ type: 'conversation.item.created', previous_item_id, item: clone(item) });
    else {
      this.emit({ type: 'conversation.item.added', previous_item_id, item: clone(item) });
      if (complete) this.emit({ type: 'conversation.item.done', previous_item_id, item: clone(item) });
    }
  }

  commitUserItem(itemId) {
    const prev = this.lastItemId;
    this.rec.bufferBytes = 0;
    this.emit({ type: 'input_audio_buffer.committed', previous_item_id: prev, item_id: itemId });
    const item = { id: itemId, object: 'realtime.item', type: 'message', status: 'completed', role: 'user', content: [{ type: 'input_audio', transcript: null }] };
    this.rec.items.set(itemId, { type: 'message', role: 'user' });
    this.lastItemId = itemId;
    this.announceItem(item, prev, true);
  }

  onClose(code, reason) {
    const rec = this.rec;
    rec.closedAt = this.now();
    rec.closeCode = code;
    rec.closeReason = reason?.toString('utf8') ?? '';
    rec.closedBy ??= 'client';
    this.ended = true;
    this.clearTimers();
    if (this.active) this.active.ended = true;
    this.fake.conns.delete(this);
  }

  // -- scenario engine --

  armNext() {
    for (;;) {
      this.stepIdx++;
      const step = this.steps[this.stepIdx];
      if (!step) {
        this.armed = null;
        if (this.mode === 'script' && this.then === 'default') this.mode = 'default';
        return;
      }
      this.armed = step;
      this.framesAtArm = this.rec.audio.frames;
      if (step.after === 'ms') { this.later(step.ms, () => { if (this.armed === step) this.fire(step, null); }); return; }
      if (step.after === 'frames' && step.count === 0) { this.fire(step, null, false); continue; }
      if (step.on !== undefined || step.after !== undefined) return;
      this.fire(step, null, false);
      if (this.ended) return;
    }
  }

  onFrame() {
    if (this.turn && this.turn.stopAfterFrames != null && ++this.turn.frames >= this.turn.stopAfterFrames) this.speechStopped({});
    else if (this.mode === 'default' && !this.stalled) this.defaultVad();
    const step = this.armed;
    if (step && step.after === 'frames' && this.rec.audio.frames - this.framesAtArm >= step.count) this.fire(step, null);
  }

  // Runs a step's action; then arms the next step (unless `advance` is false: armNext loops).
  fire(step, trigger, advance = true) {
    if (this.armed !== step) return;
    this.rec.firedSteps.push({ index: this.stepIdx, do: step.do, t: this.now() });
    this.armed = null;
    this.act(step, trigger);
    if (advance && !this.ended) this.armNext();
  }

  act(a, trigger) {
    if (this.stalled && a.do !== 'drop' && a.do !== 'close') return;
    switch (a.do) {
      case 'speak': return this.speak(a, trigger?.type === 'response.create' ? trigger : null);
      case 'tool': return this.tool(a, trigger?.type === 'response.create' ? trigger : null);
      case 'speech_started': return this.speechStarted(a);
      case 'speech_stopped': return this.speechStopped(a);
      case 'error':
        return this.error(a.code ?? 'server_error', a.message ?? 'The server had an error while processing your request. Sorry about that!', { param: a.param ?? null, errorType: a.errorType ?? (a.code ? 'invalid_request_error' : 'server_error') });
      case 'send': return this.emit(clone(a.event));
      case 'stall':
        this.stalled = true;
        this.rec.stalled = true;
        if (this.active) this.active.ended = true;
        this.clearTimers();
        return;
      case 'drop': {
        const go = () => {
          this.rec.closedBy = 'drop';
          this.ended = true;
          this.clearTimers();
          if (a.rst && this.socket.resetAndDestroy) this.socket.resetAndDestroy(); else this.socket.destroy();
        };
        return a.afterMs ? this.later(a.afterMs, go) : go();
      }
      case 'close': {
        const go = () => { this.rec.closedBy = 'server'; this.ws.close(a.code ?? 1000, a.reason ?? ''); };
        return a.afterMs ? this.later(a.afterMs, go) : go();
      }
    }
  }

  // -- responses --

  newResponse(kind, createEvent) {
    const conn = this;
    const cfg = this.rec.config;
    const id = rid('resp_');
    const r = {
      id, kind, items: [], ended: false, status: 'in_progress', audioMs: 0,
      record: { id, kind, t: this.now(), requested: !!createEvent, status: 'in_progress', reason: null, audioBytes: 0, transcript: '' },
      body(status, reason) {
        const base = { object: 'realtime.response', id, status, status_details: status === 'in_progress' || status === 'completed' ? null : { type: status, reason }, output: status === 'in_progress' ? [] : clone(r.items), conversation_id: conn.convId, max_output_tokens: 'inf', metadata: createEvent?.response?.metadata ?? null, usage: status === 'in_progress' ? null : { total_tokens: 0, input_tokens: 0, output_tokens: 0, input_token_details: { text_tokens: 0, audio_tokens: 0, cached_tokens: 0 }, output_token_details: { text_tokens: 0, audio_tokens: 0 } } };
        if (conn.shape === 'ga') return { ...base, output_modalities: ['audio'], audio: { output: { format: clone(cfg.audio?.output?.format), voice: cfg.audio?.output?.voice } } };
        return { ...base, modalities: ['audio', 'text'], voice: cfg.voice, output_audio_format: cfg.output_audio_format, temperature: cfg.temperature ?? 0.8 };
      },
      // Ends the response (status completed / cancelled / incomplete).
      finish(status, reason = null) {
        if (r.ended) return;
        r.ended = true;
        r.onEnd?.(status);
        conn.active = conn.active === r ? null : conn.active;
        r.record.status = status;
        r.record.reason = reason;
        r.record.doneT = conn.now();
        conn.emit({ type: 'response.done', response: r.body(status, reason) });
      },
    };
    this.convId ??= rid('conv_');
    this.active = r;
    this.rec.responses.push(r.record);
    this.emit({ type: 'response.created', response: r.body('in_progress') });
    return r;
  }

  speak(a, createEvent) {
    if (this.active) { this.active.finish('cancelled', 'turn_detected'); }
    const ms = a.ms ?? 1000, chunkMs = a.chunkMs ?? 100, transcript = a.transcript ?? '';
    const pace = a.pace ?? this.pace;
    const hz = a.toneHz ?? 440;
    const audio = mulawTone(ms, hz);
    const r = this.newResponse('speak', createEvent);
    const itemId = a.itemId ?? rid('item_');
    const prev = this.lastItemId;
    const item = { id: itemId, object: 'realtime.item', type: 'message', status: 'in_progress', role: 'assistant', content: [] };
    const contentType = this.shape === 'ga' ? 'output_audio' : 'audio';
    const track = { type: 'message', role: 'assistant', audioMs: 0, responseId: r.id };
    this.rec.items.set(itemId, track);
    this.lastItemId = itemId;
    r.record.itemId = itemId;
    const ids = { response_id: r.id, item_id: itemId, output_index: 0, content_index: 0 };
    this.emit({ type: 'response.output_item.added', response_id: r.id, output_index: 0, item: clone(item) });
    this.announceItem(item, prev, false);
    this.emit({ type: 'response.content_part.added', ...ids, part: { type: 'audio', transcript: '' } });

    const chunkBytes = Math.max(1, Math.round(chunkMs * BYTES_PER_MS));
    const nChunks = Math.max(1, Math.ceil(audio.length / chunkBytes));
    const words = transcript ? transcript.split(/(?<=\s)/) : [];
    const wordsBy = (i) => Math.round(((i + 1) * words.length) / nChunks); // words sent once chunk i went
    let said = '';
    const finalItem = (status) => {
      const it = { ...item, status, content: [{ type: contentType, transcript: status === 'completed' ? transcript : said }] };
      r.items = [it];
      return it;
    };
    r.onEnd = (status) => {
      if (status === 'completed') return;
      // cancelled: no further deltas; the item ends incomplete
      const it = finalItem('incomplete');
      this.emit({ type: 'response.output_item.done', response_id: r.id, output_index: 0, item: it });
      if (this.shape === 'ga') this.emit({ type: 'conversation.item.done', previous_item_id: prev, item: clone(it) });
    };
    let i = 0;
    const sendChunk = () => {
      const buf = audio.subarray(i * chunkBytes, (i + 1) * chunkBytes);
      this.emit({ type: this.names.audioDelta, ...ids, delta: buf.toString('base64') });
      track.audioMs = Math.floor(((i * chunkBytes) + buf.length) / BYTES_PER_MS);
      r.record.audioBytes += buf.length;
      const upto = wordsBy(i), from = wordsBy(i - 1);
      if (upto > from) {
        const d = words.slice(from, upto).join('');
        said += d;
        this.emit({ type: this.names.transcriptDelta, ...ids, delta: d });
      }
      i++;
    };
    const complete = () => {
      r.record.transcript = transcript;
      this.emit({ type: this.names.audioDone, ...ids });
      this.emit({ type: this.names.transcriptDone, ...ids, transcript });
      this.emit({ type: 'response.content_part.done', ...ids, part: { type: 'audio', transcript } });
      const it = finalItem('completed');
      this.emit({ type: 'response.output_item.done', response_id: r.id, output_index: 0, item: it });
      if (this.shape === 'ga') this.emit({ type: 'conversation.item.done', previous_item_id: prev, item: clone(it) });
      r.finish('completed');
    };
    const chunkInterval = pace === 'burst' ? 0 : pace === 'realtime' ? chunkMs : chunkMs / Number(pace);
    if (!chunkInterval) {
      while (i < nChunks && !r.ended && !this.ended && !this.stalled) sendChunk();
      if (!r.ended && !this.ended && !this.stalled) complete();
      return;
    }
    const t0 = performance.now();
    const tick = () => {
      if (r.ended || this.ended || this.stalled) return;
      sendChunk();
      if (i >= nChunks) return complete();
      this.later(Math.max(0, t0 + i * chunkInterval - performance.now()), tick);
    };
    tick();
  }

  tool(a, createEvent) {
    if (this.active) this.active.finish('cancelled', 'turn_detected');
    const r = this.newResponse('tool', createEvent);
    const itemId = rid('item_'), callId = a.callId ?? rid('call_');
    const args = typeof a.arguments === 'string' ? a.arguments : JSON.stringify(a.arguments ?? {});
    const prev = this.lastItemId;
    const item = { id: itemId, object: 'realtime.item', type: 'function_call', status: 'in_progress', name: a.name, call_id: callId, arguments: '' };
    this.rec.items.set(itemId, { type: 'function_call' });
    this.lastItemId = itemId;
    this.rec.toolCalls.push({ call_id: callId, name: a.name, arguments: args, item_id: itemId, response_id: r.id, t: this.now() });
    r.record.itemId = itemId;
    this.emit({ type: 'response.output_item.added', response_id: r.id, output_index: 0, item: clone(item) });
    this.announceItem(item, prev, false);
    const half = Math.ceil(args.length / 2);
    for (const d of [args.slice(0, half), args.slice(half)]) {
      if (d) this.emit({ type: 'response.function_call_arguments.delta', response_id: r.id, item_id: itemId, output_index: 0, call_id: callId, delta: d });
    }
    this.emit({ type: 'response.function_call_arguments.done', response_id: r.id, item_id: itemId, output_index: 0, call_id: callId, name: a.name, arguments: args });
    const done = { ...item, status: 'completed', arguments: args };
    r.items = [done];
    this.emit({ type: 'response.output_item.done', response_id: r.id, output_index: 0, item: clone(done) });
    if (this.shape === 'ga') this.emit({ type: 'conversation.item.done', previous_item_id: prev, item: clone(done) });
    r.finish('completed');
  }

  // -- caller turns (server VAD) --

  speechStarted(a) {
    if (this.turn) this.speechStopped({});
    const itemId = rid('item_');
    const td = this.shape === 'ga' ? this.rec.config.audio?.input?.turn_detection : this.rec.config.turn_detection;
    const interrupt = a.interrupt ?? (td?.interrupt_response !== false);
    this.turn = { itemId, frames: 0, stopAfterFrames: a.stopAfterFrames === undefined ? 25 : a.stopAfterFrames, transcript: a.transcript, reply: a.reply };
    this.rec.turns.push({ item_id: itemId, startedT: this.now(), audio_start_ms: this.audioMs(), interrupted: interrupt && this.active ? this.active.id : null });
    this.emit({ type: 'input_audio_buffer.speech_started', audio_start_ms: this.audioMs(), item_id: itemId });
    if (interrupt && this.active) this.active.finish('cancelled', 'turn_detected');
  }

  speechStopped(a) {
    const turn = this.turn;
    if (!turn) return;
    this.turn = null;
    const transcript = a.transcript ?? turn.transcript ?? 'caller said something';
    const rt = this.rec.turns.find((x) => x.item_id === turn.itemId);
    const endMs = this.audioMs();
    if (rt) { rt.stoppedT = this.now(); rt.audio_end_ms = endMs; rt.transcript = transcript; }
    this.emit({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: endMs, item_id: turn.itemId });
    this.commitUserItem(turn.itemId);
    const secs = Math.max(0, (endMs - (rt?.audio_start_ms ?? endMs)) / 1000);
    this.emit({ type: 'conversation.item.input_audio_transcription.completed', item_id: turn.itemId, content_index: 0, transcript, usage: { type: 'duration', seconds: secs } });
    const reply = a.reply ?? turn.reply;
    if (reply) this.act({ do: 'speak', ...reply }, null);
  }

  // -- the default scenario --

  defaultOn(type, ev, refused) {
    if (type === 'response.create' && !refused) {
      if (!this.greeted) { this.greeted = true; this.speak({ ms: 1000, transcript: 'Hello, thanks for calling.' }, ev); }
      else this.speak({ ms: 1000, transcript: 'Okay.' }, ev);
    }
  }

  defaultVad() {
    if (this.turn) return; // counted by the turn itself
    if (++this.vadFrames >= 100) {
      this.vadFrames = 0;
      this.speechStarted({ stopAfterFrames: 25, transcript: 'caller said something', reply: { ms: 1000, transcript: 'I see.' } });
    }
  }
}

// ---- the server -----------------------------------------------------------------------------

function reject(socket, status, body) {
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
}

// tls: { cert, key } (PEM strings or Buffers): serve https/wss with that certificate.
export async function startFakeRealtime({ apiKey, port = 0, host = '127.0.0.1', keepAudio = false, pace = 'realtime', tls = null } = {}) {
  if (!apiKey) throw new TypeError('startFakeRealtime: apiKey is required');
  if (tls && (!tls.cert || !tls.key)) throw new TypeError('startFakeRealtime: tls needs cert and key');
  const sessions = [];
  const rejected = [];
  const queue = [];
  const conns = new Set();
  const fake = { opts: { keepAudio, pace }, conns };
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

  const onRequest = (req, res) => {
    res.writeHead(req.url.split('?')[0] === PATH ? 426 : 404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'Expected a WebSocket upgrade.', type: 'invalid_request_error', param: null, code: null } }));
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, onRequest) : http.createServer(onRequest);
  // handshakes done, { servername (the SNI, false without one), protocol, t }, and failed,
  // e.g. the client refusing the certificate: { code, message, t }
  const tlsConnections = [];
  const tlsErrors = [];
  if (tls) {
    server.on('secureConnection', (s) => tlsConnections.push({ servername: s.servername, protocol: s.getProtocol(), t: Date.now() }));
    server.on('tlsClientError', (err) => tlsErrors.push({ code: err.code ?? null, message: err.message, t: Date.now() }));
  }

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, `${tls ? 'https' : 'http'}://${req.headers.host ?? host}`);
    const rej = { url: req.url, headers: { ...req.headers }, status: 0, t: Date.now() };
    const auth = req.headers.authorization;
    if (url.pathname !== PATH) {
      rej.status = 404; rejected.push(rej);
      return reject(socket, 404, { error: { message: `Invalid URL (GET ${url.pathname})`, type: 'invalid_request_error', param: null, code: null } });
    }
    if (!auth || !/^Bearer /.test(auth)) {
      rej.status = 401; rejected.push(rej);
      return reject(socket, 401, { error: { message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", type: 'invalid_request_error', param: null, code: null } });
    }
    const key = auth.slice(7);
    if (key !== apiKey) {
      rej.status = 401; rejected.push(rej);
      const shown = key.length > 8 ? `${key.slice(0, 3)}*****${key.slice(-4)}` : '*****';
      return reject(socket, 401, { error: { message: `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
    }
    const model = url.searchParams.get('model');
    if (!model) {
      rej.status = 400; rejected.push(rej);
      return reject(socket, 400, { error: { message: "Missing required parameter: 'model'.", type: 'invalid_request_error', param: 'model', code: 'missing_required_parameter' } });
    }
    const beta = /(^|[,\s])realtime=v1($|[,\s])/.test(String(req.headers['openai-beta'] ?? ''));
    wss.handleUpgrade(req, socket, head, (ws) => {
      const shape = beta ? 'beta' : 'ga';
      const id = rid('sess_');
      const scenario = queue.shift() ?? { steps: [], then: 'default', default: true };
      const rec = {
        id, shape, model, url: req.url, query: Object.fromEntries(url.searchParams), headers: { ...req.headers },
        openedAt: Date.now(), closedAt: null, closeCode: null, closeReason: null, closedBy: null,
        scenario: scenario.default ? 'default' : 'script', stalled: false,
        config: initialSession(shape, id, model), // the effective session configuration
        events: [], // client events in order: { type, json, t (ms since open), at (epoch ms), audioBytes? }
        sent: [], // server events in order: { type, json, t }
        errors: [], // error events sent
        sessionUpdates: [], rejectedUpdates: [],
        audio: { frames: 0, bytes: 0, badFrames: 0, sizes: {}, chunks: [] }, bufferBytes: 0,
        responses: [], cancels: [], truncates: [], toolCalls: [], toolOutputs: [], turns: [], firedSteps: [],
        items: new Map(), socketErrors: [],
      };
      const conn = new Conn(fake, ws, socket, req, rec, scenario);
      Object.defineProperties(rec, {
        ofType: { value: (type) => rec.events.filter((e) => e.type === type) },
        sentOfType: { value: (type) => rec.sent.filter((e) => e.type === type) },
        send: { value: (ev) => conn.emit(ev) },
        audioBuffer: { value: () => Buffer.concat(rec.audio.chunks) },
        active: { get: () => (conn.active ? conn.active.id : null) },
      });
      sessions.push(rec);
      conns.add(conn);
      conn.start();
    });
  });

  await new Promise((resolve, reject_) => {
    server.once('error', reject_);
    server.listen(port, host, () => { server.off('error', reject_); resolve(); });
  });
  const actualPort = server.address().port;

  return {
    url: `${tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${actualPort}${PATH}`,
    port: actualPort,
    tls: !!tls,
    sessions,
    rejected,
    tlsConnections,
    tlsErrors,
    // Queue a scenario for the next accepted connection: an array of steps, or { steps, then }.
    script(s) {
      const sc = Array.isArray(s) ? { steps: s, then: 'idle' } : { steps: s?.steps ?? [], then: s?.then ?? 'idle' };
      if (!['idle', 'default'].includes(sc.then)) throw new TypeError(`script: then must be 'idle' or 'default'`);
      validateSteps(sc.steps);
      queue.push({ steps: sc.steps.map((x) => ({ ...x })), then: sc.then });
    },
    pending: () => queue.length,
    waitFor,
    async close() {
      queue.length = 0;
      for (const c of conns) { c.rec.closedBy ??= 'fake.close'; c.ended = true; c.clearTimers(); c.ws.terminate(); }
      conns.clear();
      wss.close();
      server.closeAllConnections?.();
      await new Promise((r) => server.close(() => r()));
    },
  };
}
