// A fake of ElevenLabs' Conversational AI WebSocket (wss://api.elevenlabs.io/v1/convai/conversation
// ?agent_id=...) for what a phone bridge uses: a real WebSocket server (npm `ws`) that checks the
// `xi-api-key` header and the `agent_id` query parameter on the upgrade, expects
// conversation_initiation_client_data first, answers conversation_initiation_metadata (formats
// ulaw_8000 unless told otherwise), records every client message, and plays scripted steps.
//
// Wire shapes follow ElevenLabs' Python SDK (src/elevenlabs/conversational_ai/conversation.py):
//   client  {type:"conversation_initiation_client_data", conversation_config_override, dynamic_variables}
//           {user_audio_chunk:"<base64>"}   (no type)
//           {type:"pong", event_id}  {type:"client_tool_result", tool_call_id, result, is_error}
//           {type:"contextual_update", text}  {type:"user_message", text}
//   server  {type:"conversation_initiation_metadata", conversation_initiation_metadata_event:
//             {conversation_id, agent_output_audio_format, user_input_audio_format}}
//           {type:"audio", audio_event:{audio_base_64, event_id}}
//           {type:"agent_response", agent_response_event:{agent_response}}
//           {type:"user_transcript", user_transcription_event:{user_transcript}}
//           {type:"interruption", interruption_event:{event_id}}
//           {type:"ping", ping_event:{event_id, ping_ms}}
//           {type:"client_tool_call", client_tool_call:{tool_name, tool_call_id, parameters}}
//
//   const fake = await startFakeConvai({ apiKey: 'xi-test', agentId: 'agent_1' });
//   env: ELEVENLABS_CONVAI_URL=fake.url
//   fake.script([...])          steps for the next session (default: greet)
//   fake.formats = { output: 'pcm_16000' }   a mismatch for the next sessions
// Steps run in order; each waits for its trigger, then acts (speak runs on while the next step
// is armed). Triggers: (none) | after: 'chunks', count: N (user_audio_chunk since armed) |
// after: 'ms', ms: N | on: '<client message type>' (e.g. 'client_tool_result', 'pong').
// Actions: speak {ms, text, hz} audio events of 100 ms mu-law at real-time pace + agent_response;
// interrupt {lateAudio} (interruption with the last event_id; stops the speech in flight; lateAudio:
// one more chunk of the interrupted response after it);
// user {text} (user_transcript); ping; tool {name, parameters}; close {code}.
import { WebSocketServer } from 'ws';
import { mulawTone } from './openai_realtime.mjs';

export const PATH = '/v1/convai/conversation';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(pred, ms = 5000, interval = 10) {
  const t0 = Date.now();
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error('waitFor: timed out');
    await sleep(interval);
  }
}

class Session {
  constructor(fake, ws, req, steps, formats) {
    this.fake = fake;
    this.ws = ws;
    this.headers = req.headers;
    this.url = new URL(req.url, 'http://x');
    this.messages = [];
    this.init = null;
    this.chunks = []; // decoded user_audio_chunk payloads
    this.pongs = [];
    this.pings = [];
    this.toolResults = [];
    this.contextual = [];
    this.errors = [];
    this.sentAudio = 0;
    this.eventId = 0;
    this.closed = false;
    this.speaking = null;
    this.formats = formats;
    this.steps = steps;
    this.listeners = [];
    ws.on('message', (data) => this.onMessage(String(data)));
    ws.on('close', () => { this.closed = true; });
  }
  send(o) { if (!this.closed && this.ws.readyState === 1) this.ws.send(JSON.stringify(o)); }
  ofType(t) { return this.messages.filter((m) => m.type === t); }
  onMessage(text) {
    let m;
    try { m = JSON.parse(text); } catch { this.errors.push('not JSON: ' + text.slice(0, 80)); return; }
    if (typeof m.user_audio_chunk === 'string') {
      if (!this.init) this.errors.push('user_audio_chunk before conversation_initiation_client_data');
      if (!this.ready) this.errors.push('user_audio_chunk before conversation_initiation_metadata');
      this.chunks.push(Buffer.from(m.user_audio_chunk, 'base64'));
      m = { type: 'user_audio_chunk' };
    } else {
      this.messages.push(m);
    }
    if (!this.init) {
      if (m.type !== 'conversation_initiation_client_data') { this.errors.push('first message: ' + m.type); return; }
      this.init = m;
      const out = this.formats.output ?? 'ulaw_8000', inp = this.formats.input ?? 'ulaw_8000';
      this.ready = out === 'ulaw_8000' && inp === 'ulaw_8000';
      this.send({ type: 'conversation_initiation_metadata', conversation_initiation_metadata_event: {
        conversation_id: 'conv_' + Math.random().toString(36).slice(2), agent_output_audio_format: out, user_input_audio_format: inp } });
      this.run();
      return;
    }
    if (m.type === 'pong') this.pongs.push(m);
    if (m.type === 'client_tool_result') this.toolResults.push(m);
    if (m.type === 'contextual_update') this.contextual.push(m);
    for (const l of [...this.listeners]) l(m);
  }
  next(pred) {
    return new Promise((res) => {
      const l = (m) => { if (pred(m)) { this.listeners.splice(this.listeners.indexOf(l), 1); res(m); } };
      this.listeners.push(l);
    });
  }
  async run() {
    for (const step of this.steps) {
      if (this.closed) return;
      if (step.after === 'chunks') {
        const target = this.chunks.length + step.count;
        await waitFor(() => this.closed || this.chunks.length >= target, 30000).catch(() => {});
      } else if (step.after === 'ms') {
        await sleep(step.ms);
      } else if (step.on) {
        await this.next((m) => m.type === step.on);
      }
      if (this.closed) return;
      this.act(step);
    }
  }
  act(step) {
    switch (step.do) {
      case 'speak': this.speaking = this.speak(step); break;
      case 'interrupt':
        this.interrupted = true;
        this.send({ type: 'interruption', interruption_event: { event_id: this.eventId } });
        // lateAudio: one more chunk of the interrupted response, as a real server may send
        if (step.lateAudio) this.send({ type: 'audio', audio_event: { audio_base_64: mulawTone(100, 440).toString('base64'), event_id: this.eventId } });
        break;
      case 'user': this.send({ type: 'user_transcript', user_transcription_event: { user_transcript: step.text ?? 'caller said something' } }); break;
      case 'ping': {
        const id = ++this.eventId;
        this.pings.push({ id, at: Date.now() });
        this.send({ type: 'ping', ping_event: { event_id: id, ping_ms: 20 } });
        break;
      }
      case 'tool':
        this.send({ type: 'client_tool_call', client_tool_call: { tool_name: step.name, tool_call_id: step.id ?? 'call_' + Math.random().toString(36).slice(2), parameters: step.parameters ?? {} } });
        break;
      case 'close': this.ws.close(step.code ?? 1000); break;
    }
  }
  async speak({ ms = 1000, text = 'Hello, thanks for calling.', hz = 440 }) {
    this.interrupted = false;
    const id = ++this.eventId;
    const audio = mulawTone(ms, hz);
    this.send({ type: 'agent_response', agent_response_event: { agent_response: text } });
    const t0 = Date.now();
    for (let off = 0, i = 0; off < audio.length && !this.closed && !this.interrupted; off += 800, i++) {
      this.send({ type: 'audio', audio_event: { audio_base_64: audio.subarray(off, off + 800).toString('base64'), event_id: id } });
      this.sentAudio++;
      const wait = t0 + (i + 1) * 100 - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }
}

export async function startFakeConvai({ apiKey, agentId, port = 0, host = '127.0.0.1' } = {}) {
  const wss = new WebSocketServer({ port, host, verifyClient: (info, cb) => {
    const u = new URL(info.req.url, 'http://x');
    if (u.pathname !== PATH) return cb(false, 404, 'Not Found');
    if (info.req.headers['xi-api-key'] !== apiKey) return cb(false, 401, 'Unauthorized');
    if (u.searchParams.get('agent_id') !== agentId) return cb(false, 404, 'agent not found');
    cb(true);
  } });
  await new Promise((r) => wss.once('listening', r));
  const fake = {
    url: `ws://${host}:${wss.address().port}${PATH}`,
    sessions: [],
    steps: null,
    formats: {},
    script(steps) { this.steps = steps; },
    waitFor,
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
  wss.on('connection', (ws, req) => {
    const steps = fake.steps ?? [{ do: 'speak', ms: 1500, text: 'Hello, thanks for calling.' }];
    fake.steps = null;
    fake.sessions.push(new Session(fake, ws, req, steps, { ...fake.formats }));
  });
  return fake;
}
