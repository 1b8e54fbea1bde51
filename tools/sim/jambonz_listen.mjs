// The listen verb's WebSocket, as jambonz's media server runs it: FreeSWITCH's mod_audio_fork
// (jambonz/freeswitch-modules: lws_glue.cpp, audio_pipe.cpp) started by the feature server's
// lib/tasks/listen.js through drachtio-fsmrf's forkAudioStart.
//
//   const s = new ListenSocket({ url, metadata, sampleRate: 8000, bidirectional: {...}, callerPcm, log });
//   if (await s.open()) { ... s.dtmf('5'); ... await s.close(); }   // 'ended' tells why it stopped
//
// What it does as the real one does:
// - connects with the subprotocol audio.jambonz.org (mod_audio_fork's default audio.drachtio.org on
//   request), HTTP basic auth on the upgrade for wsAuth; a server that selects no subprotocol is
//   accepted, as libwebsockets does;
// - sends one text frame first, the metadata (listen.js: {sampleRate, mixType, ...callInfo,
//   ...verb.metadata}, passed through FreeSWITCH's argument parser and cut at 8191 bytes), then the
//   caller's audio: L16 little-endian at sampleRate, one frame per 20 ms media packet (fork_frame
//   writes what one read callback produced: 320 bytes at 8 kHz), paced in real time; frameMs
//   changes the size;
// - plays the app's binary L16 only with bidirectionalAudio {streaming: true, sampleRate}: the
//   Playout class (jambonz_playout.mjs) is a port of processIncomingBinary/dub_speech_frame
//   (pre-buffer, playout buffer, marks as in-band 0xFFFF samples, at most 30, killAudio,
//   clearMarks), run every 20 ms;
// - playAudio (non-streaming): played as a file, then {"type":"playDone"}; killAudio stops it;
// - DTMF as {"event":"dtmf","dtmf":"5","duration":"2000"} (FreeSWITCH's DTMF-Duration header: a
//   string, in 8 kHz samples);
// - jambonz closes with 1000 and no reason (lws_close_reason NORMAL) when the listen ends.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { decodeWav, downmix, resampleLinear } from './wav.mjs';
import { MAX_MARKS, Playout, TICK_MS, toInt16 } from './jambonz_playout.mjs';
import { callInfoJson } from './jambonz_hooks.mjs';

export { MAX_MARKS, Playout, TICK_MS };

export const SUBPROTOCOL = 'audio.jambonz.org';
export const DRACHTIO_SUBPROTOCOL = 'audio.drachtio.org';
const MAX_METADATA = 8191; // initialMetadata[8192], strncpy'd

const round1 = (x) => Math.round(x * 10) / 10;

/**
 * FreeSWITCH's argument parser (switch_utils.c separate_string/cleanup_separated_string) applied
 * to one '|'-separated argument: quotes removed, \\ \" \' \| unescaped, \n \r \t \s decoded. The
 * metadata goes through it; listen.js escapes the verb metadata's string values beforehand.
 */
export function fsArgument(s, delim = '|') {
  let out = '';
  let inQuotes = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) {
      const e = s[i + 1];
      const dec = { n: '\n', r: '\r', t: '\t', s: ' ' }[e];
      if (e === "'" || e === '"' || e === delim || e === '\\' || dec) {
        out += dec || e;
        i++;
        continue;
      }
    }
    if (c === "'" && (inQuotes || s.indexOf("'", i + 1) >= 0)) inQuotes = !inQuotes;
    else out += c;
  }
  return out;
}

// listen.js escapeString, applied to the verb metadata's (and customerData's) string values
export function escapeString(str) {
  return str.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/[\b]/g, '\\b').replace(/\f/g, '\\f').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
}

/** The metadata text frame exactly as mod_audio_fork sends it. */
export function metadataFrame(callInfoJson, { sampleRate, mixType, metadata }) {
  const esc = (o) => (o && typeof o === 'object' ? Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'string' ? escapeString(v) : v])) : o);
  const ci = structuredClone(callInfoJson);
  if (ci.customerData) ci.customerData = esc(ci.customerData);
  const text = fsArgument(`'${JSON.stringify(Object.assign({ sampleRate, mixType }, ci, esc(metadata)))}'`);
  return text.length > MAX_METADATA ? text.slice(0, MAX_METADATA) : text;
}

// ---- the socket ----------------------------------------------------------------------------

/**
 * One listen's WebSocket. Options:
 *   url, subprotocol (SUBPROTOCOL), wsAuth {username, password}, metadataText (the first frame),
 *   sampleRate, mixType, bidirectional {enabled, streaming, sampleRate} (as the verb gave it),
 *   channelRate (the call's codec rate, 8000), frameMs (20), prebuffer (true), faithfulMarks (true),
 *   callerPcm (Int16Array at sampleRate: what the caller says from the start of this listen),
 *   log(dir, event, fields), t0 (performance.now() of the call's start, for timings).
 * Events: 'ended' {why: 'disconnect' (the app asked), 'closed' (the app closed the socket),
 *   'error' (an {"type":"error"} message: the listen ends, the socket stays), 'failed' (no
 *   connection)}.
 */
export class ListenSocket extends EventEmitter {
  constructor(o) {
    super();
    this.o = o;
    this.sampleRate = o.sampleRate || 8000;
    this.channels = o.mixType === 'stereo' ? 2 : 1;
    const b = o.bidirectional || {};
    // drachtio-fsmrf passes `enabled || 'true'`: the module always has playAudio on; streaming
    // needs streaming and a sampleRate (listen.js plays the files only if the verb's enabled holds)
    this.streaming = b.streaming === true && !!b.sampleRate;
    this.playFiles = b.enabled !== false && !this.streaming;
    this.frameMs = o.frameMs || TICK_MS;
    this.frameSamples = Math.max(1, Math.round((this.sampleRate * this.frameMs) / 1000));
    this.channelRate = o.channelRate || 8000;
    this.playout = this.streaming ? new Playout({ rate: b.sampleRate, channelRate: this.channelRate, prebuffer: o.prebuffer !== false, faithful: o.faithfulMarks !== false }) : null;
    this.sent = []; // {at, bytes} per binary frame
    this.texts = []; // text frames sent after the metadata: {t, text}
    this.received = []; // {t, bytes} per binary frame
    this.receivedAudio = []; // Buffers, as the app sent them
    this.commands = []; // {t, type, data}
    this.marks = []; // {t, name, event: 'queued'|'dropped'|'playout'|'cleared'}
    this.heard = []; // Int16Array per 20 ms tick: what the caller heard (channelRate)
    this.playedMs = 0;
    this.plays = []; // playAudio files: {t, ms, id, done}
    this.closed = null;
    this.ended = null;
    this.warnings = [];
  }

  now() {
    return performance.now() - (this.o.t0 ?? this.openedAt ?? 0);
  }

  log(dir, event, fields = {}) {
    this.o.log?.(dir, event, fields);
  }

  /** Connects and sends the metadata; false if no connection (mod_audio_fork::connect_failed). */
  async open() {
    const o = this.o;
    const protocol = o.subprotocol || SUBPROTOCOL;
    const headers = {};
    if (o.wsAuth?.username && o.wsAuth?.password) headers.Authorization = 'Basic ' + Buffer.from(`${o.wsAuth.username}:${o.wsAuth.password}`).toString('base64');
    this.log('out', 'ws-connect', { url: o.url, protocol, auth: !!headers.Authorization });
    const ws = new WebSocket(o.url, [protocol], { headers, perMessageDeflate: false, handshakeTimeout: 10000 });
    this.ws = ws;
    ws.on('error', () => {});
    const ok = await new Promise((resolve) => {
      ws.once('upgrade', (res) => {
        // libwebsockets takes a reply without Sec-WebSocket-Protocol (its first protocol); ws would refuse it
        if (res.headers['sec-websocket-protocol'] === undefined) {
          res.headers['sec-websocket-protocol'] = protocol;
          this.selected = null;
        } else this.selected = res.headers['sec-websocket-protocol'];
      });
      ws.once('unexpected-response', (req, res) => {
        this.failure = `HTTP ${res.statusCode}`;
        res.resume();
        ws.terminate();
        resolve(false);
      });
      ws.once('error', (e) => {
        this.failure ??= e.message;
        resolve(false);
      });
      ws.once('open', () => resolve(true));
    });
    if (!ok) {
      this.log('local', 'ws-failed', { url: o.url, reason: this.failure });
      this.end('failed');
      return false;
    }
    this.openedAt = performance.now();
    this.log('in', 'ws-open', { url: o.url, protocol: this.selected, ...(this.selected === null ? { note: 'the server selected no subprotocol (libwebsockets accepts that)' } : {}) });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
    ws.send(o.metadataText);
    this.metadataText = o.metadataText;
    this.log('out', 'ws-metadata', { metadata: safeJson(o.metadataText), bytes: Buffer.byteLength(o.metadataText) });
    this.startClocks();
    return true;
  }

  startClocks() {
    const start = this.openedAt;
    let frame = 0;
    const send = () => {
      if (!this.isOpen()) return;
      const n = this.frameSamples;
      const pcm = new Int16Array(n * this.channels);
      const src = this.o.callerPcm || new Int16Array(0);
      for (let i = 0; i < n; i++) {
        const k = frame * n + i;
        const caller = k < src.length ? src[k] : 0;
        if (this.channels === 2) {
          pcm[2 * i] = caller;
          pcm[2 * i + 1] = this.heardAt(k);
        } else pcm[i] = this.o.mixType === 'mixed' ? Math.max(-32768, Math.min(32767, caller + this.heardAt(k))) : caller;
      }
      const buf = Buffer.allocUnsafe(pcm.length * 2);
      for (let i = 0; i < pcm.length; i++) buf.writeInt16LE(pcm[i], i * 2);
      this.ws.send(buf, { binary: true });
      this.sent.push({ at: performance.now(), bytes: buf.length });
      frame++;
      this.sendTimer = setTimeout(send, Math.max(0, start + (frame + 1) * this.frameMs - performance.now()));
    };
    this.sendTimer = setTimeout(send, this.frameMs);
    let tick = 0;
    const play = () => {
      if (!this.isOpen()) return;
      if (this.playout) {
        const { out, played, events } = this.playout.tick();
        this.heard.push(out);
        this.playedMs += (played * 1000) / this.channelRate;
        for (const e of events) this.reportMark(e);
      } else this.heard.push(this.filePlayFrame());
      tick++;
      this.playTimer = setTimeout(play, Math.max(0, start + (tick + 1) * TICK_MS - performance.now()));
    };
    this.playTimer = setTimeout(play, TICK_MS);
    this.statsTimer = setInterval(() => this.log('local', 'listen-stats', this.counters()), 1000);
  }

  // what the caller heard at sample k of the listen's sampleRate (for stereo/mixed streams)
  heardAt(k) {
    const j = Math.floor((k * this.channelRate) / this.sampleRate);
    const f = this.heard[Math.floor(j / ((this.channelRate * TICK_MS) / 1000))];
    return f ? f[j % f.length] : 0;
  }

  isOpen() {
    return this.ws && this.ws.readyState === WebSocket.OPEN && !this.stopped;
  }

  reportMark({ name, event }) {
    // send_mark_event writes this string itself (spaces and all; the name is not escaped)
    const text = `{"type": "mark", "data": {"name":"${name}", "event": "${event}"}}`;
    this.sendText(text);
    this.marks.push({ t: round1(this.now()), name, event });
    this.log('out', 'mark', { name, status: event });
  }

  sendText(text) {
    if (!this.isOpen()) return false;
    this.ws.send(text);
    this.texts.push({ t: round1(this.now()), text });
    return true;
  }

  /** A key press (passDtmf): the text frame listen.js sends. */
  dtmf(digit, durationMs = 250) {
    const text = JSON.stringify({ event: 'dtmf', dtmf: String(digit), duration: String(Math.round(durationMs * 8)) });
    const ok = this.sendText(text);
    if (ok) this.log('out', 'ws-dtmf', { digit: String(digit), durationMs });
    return ok;
  }

  onMessage(data, isBinary) {
    if (this.stopped) return;
    const t = round1(this.now());
    if (isBinary) {
      if (!data.length) return; // discarded by audio_pipe
      this.received.push({ t, bytes: data.length });
      this.receivedAudio.push(Buffer.from(data));
      if (this.received.length === 1) this.log('in', 'ws-audio-first', { bytes: data.length, played: !!this.playout });
      if (this.playout) this.playout.binary(data);
      else if (!this.unplayedNoted) {
        this.unplayedNoted = true;
        const w = 'binary audio came, but the listen has no bidirectionalAudio {streaming: true, sampleRate}: mod_audio_fork buffers it and never plays it';
        this.warnings.push(w);
        this.log('local', 'warning', { warning: w });
      }
      return;
    }
    const text = data.toString();
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this.log('in', 'ws-text', { text, ignored: 'not JSON' });
      return;
    }
    const type = msg && typeof msg.type === 'string' ? msg.type : undefined;
    this.commands.push({ t, type, data: msg?.data });
    this.log('in', 'ws-command', { type, data: type === 'playAudio' ? { ...msg.data, audioContent: `(${String(msg.data?.audioContent || '').length} base64 chars)` } : msg?.data });
    switch (type) {
      case 'killAudio':
        this.playout?.killAudio();
        this.stopFile();
        return;
      case 'mark': {
        const name = msg.data?.name;
        if (typeof name !== 'string') return;
        const r = this.playout ? this.playout.mark(name) : 'queued';
        this.marks.push({ t, name, event: r });
        if (r === 'dropped') this.log('local', 'mark-dropped', { name, pending: MAX_MARKS });
        return;
      }
      case 'clearMarks':
        this.playout?.clearMarks();
        return;
      case 'disconnect':
        this.end('disconnect');
        return;
      case 'error':
        this.end('error');
        return;
      case 'playAudio':
        if (!this.streaming && this.playFiles) this.playFile(msg.data || {});
        return;
      case 'transcription':
      case 'transfer':
      case 'json':
        return; // events the feature server's listen does not act on
      default: {
        const w = `unsupported message type ${JSON.stringify(type)}: mod_audio_fork logs and ignores it`;
        this.warnings.push(w);
        this.log('local', 'warning', { warning: w });
      }
    }
  }

  // ---- playAudio: a file played by FreeSWITCH, one after another ----

  playFile(d) {
    let samples = null;
    try {
      const raw = Buffer.from(String(d.audioContent || ''), 'base64');
      if (d.audioContentType === 'raw') {
        const rate = [8000, 16000, 24000, 32000, 48000, 64000].includes(d.sampleRate) ? d.sampleRate : 16000;
        const s = new Int16Array(Math.floor(raw.length / 2));
        for (let i = 0; i < s.length; i++) s[i] = raw.readInt16LE(i * 2);
        samples = toInt16(resampleLinear(s, rate, this.channelRate));
      } else if (d.audioContentType === 'wave' || d.audioContentType === 'wav') {
        const w = decodeWav(raw);
        samples = toInt16(resampleLinear(downmix(w.channels).map((x) => x * 32768), w.sampleRate, this.channelRate));
      }
    } catch {}
    if (!samples || !samples.length) {
      this.log('local', 'warning', { warning: `playAudio: no playable audio (${d.audioContentType})` });
      return;
    }
    const item = { t: round1(this.now()), id: d.id, samples, pos: 0, ms: round1((samples.length * 1000) / this.channelRate) };
    this.plays.push(item);
    this.fileQueue ??= [];
    if (!d.queuePlay) this.fileQueue = this.fileQueue.filter((x) => x === this.fileQueue[0] && x.pos > 0);
    else if (this.fileQueue.length > 11) return; // MAX_PLAY_AUDIO_QUEUE_SIZE (10), checked with <=
    this.fileQueue.push(item);
  }

  filePlayFrame() {
    const N = (this.channelRate * TICK_MS) / 1000;
    const out = new Int16Array(N);
    const f = this.fileQueue?.[0];
    if (!f) return out;
    const n = Math.min(N, f.samples.length - f.pos);
    out.set(f.samples.subarray(f.pos, f.pos + n));
    f.pos += n;
    this.playedMs += (n * 1000) / this.channelRate;
    if (f.pos >= f.samples.length) this.fileDone(f);
    return out;
  }

  fileDone(f) {
    this.fileQueue.shift();
    f.done = round1(this.now());
    const ms = Math.round((f.pos * 1000) / this.channelRate);
    this.sendText(JSON.stringify({ type: 'playDone', data: { ...(f.id !== undefined ? { id: f.id } : {}), playbackSeconds: String(Math.floor(ms / 1000)), playbackMilliseconds: String(ms), playbackLastOffsetPos: String(f.pos) } }));
    this.log('out', 'play-done', { id: f.id, ms });
  }

  stopFile() {
    const f = this.fileQueue?.[0];
    if (f && f.pos > 0) this.fileDone(f); // uuid_break: the playback ends, the next one starts
  }

  // ---- the end ----

  onClose(code, reason) {
    this.closed ??= { t: round1(this.now()), code, reason, by: this.stopped ? 'jambonz' : 'app' };
    this.stopClocks();
    this.log(this.closed.by === 'app' ? 'in' : 'local', 'ws-close', { code, reason, by: this.closed.by });
    if (this.closed.by === 'app') this.end('closed');
  }

  end(why) {
    if (this.ended) return;
    this.ended = { t: round1(this.now()), why };
    this.emit('ended', this.ended);
  }

  stopClocks() {
    clearTimeout(this.sendTimer);
    clearTimeout(this.playTimer);
    clearInterval(this.statsTimer);
  }

  /** jambonz ends the fork (forkAudioStop): pending text goes out, then a close 1000. */
  async close() {
    if (!this.ws || this.stopped) return;
    this.stopped = true;
    this.stopClocks();
    if (this.ws.readyState === WebSocket.OPEN) {
      const closed = new Promise((r) => this.ws.once('close', r));
      this.ws.close(1000);
      const t = setTimeout(() => this.ws.terminate(), 2000);
      await closed;
      clearTimeout(t);
    } else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }

  counters() {
    const receivedBytes = this.received.reduce((a, r) => a + r.bytes, 0);
    const bidiRate = this.o.bidirectional?.sampleRate || this.sampleRate;
    return {
      sentFrames: this.sent.length,
      sentMs: round1((this.sent.length * this.frameSamples * 1000) / this.sampleRate),
      receivedFrames: this.received.length,
      receivedMs: round1((receivedBytes * 1000) / 2 / bidiRate),
      playedMs: round1(this.playedMs),
      bufferedMs: this.playout ? this.playout.bufferedMs() : 0,
      marksPending: this.playout ? this.playout.pendingMarks : 0,
    };
  }

  /** Figures for the result: counts, pacing, marks, the close. */
  stats() {
    const iv = [];
    for (let i = 1; i < this.sent.length; i++) iv.push(this.sent[i].at - this.sent[i - 1].at);
    const mean = iv.length ? iv.reduce((a, b) => a + b, 0) / iv.length : 0;
    return {
      url: this.o.url,
      protocol: this.selected ?? null,
      metadata: safeJson(this.metadataText),
      sampleRate: this.sampleRate,
      mixType: this.o.mixType || 'mono',
      streaming: this.streaming,
      bidirectionalRate: this.streaming ? this.o.bidirectional.sampleRate : null,
      frameMs: this.frameMs,
      frameBytes: this.frameSamples * 2 * this.channels,
      ...this.counters(),
      pacing: { meanIntervalMs: Math.round(mean * 100) / 100, maxDeviationMs: Math.round(Math.max(0, ...iv.map((x) => Math.abs(x - this.frameMs))) * 100) / 100 },
      firstAudioAtMs: this.received[0]?.t ?? null,
      marks: this.marks,
      commands: this.commands,
      texts: this.texts,
      plays: this.plays.map(({ samples, pos, ...p }) => p),
      closed: this.closed,
      ended: this.ended,
      failure: this.failure || null,
      warnings: this.warnings,
    };
  }

  /** What the app sent (L16 LE at the bidirectional rate), as one Buffer. */
  agentAudio() {
    return Buffer.concat(this.receivedAudio);
  }

  /** What the caller heard, 20 ms per tick from the socket's opening (Int16Array at channelRate). */
  heardAudio() {
    const out = new Int16Array(this.heard.reduce((a, f) => a + f.length, 0));
    let o = 0;
    for (const f of this.heard) out.set(f, (o += f.length) - f.length);
    return out;
  }
}

// ---- the verb ----------------------------------------------------------------------------

/**
 * The listen verb (lib/tasks/listen.js) on a JambonzCall: answers the call, opens the socket, ends
 * on disconnect, the app's close, maxLength, finishOnKey or the call's end, then the actionHook
 * with dial_call_duration (when the fork was killed) and digits.
 */
export async function runListen(call, d, v) {
  if (call.orphan && !call.orphan.closed) {
    // the bug of a listen ended by an {"type":"error"} is still attached: forkAudioStart fails
    return call.warn('listen: mod_audio_fork: bug audio_fork already attached (a listen ended by an error message still streams): the listen fails, no actionHook');
  }
  if (call.inbound && !call.answered) d.earlyMedia ? call.earlyMedia() : call.answer();
  if (call.gone) return;
  const sampleRate = d.sampleRate || 8000;
  const mixType = d.mixType || 'mono';
  // normalizeUrl: a relative url is the call hook's base, with the call hook's credentials
  const url = call.resolveHook(d.url).url.replace(/^http/, 'ws');
  const wsAuth = d.url.startsWith('/') && call.callHook.username && call.callHook.password ? { username: call.callHook.username, password: call.callHook.password } : d.wsAuth;
  const voicemail = !!d.metadata?.voicemail;
  const first = !call.callerSpoke && !voicemail;
  const audio = voicemail ? call.o.voicemailAudio || call.o.audio : first ? call.o.audio : null;
  const callerPcm = call.callerPcm(sampleRate, audio);
  if (first) call.callerSpoke = true;
  const sock = new ListenSocket({
    url, subprotocol: call.o.subprotocol || SUBPROTOCOL, wsAuth, sampleRate, mixType,
    bidirectional: { enabled: d.disableBidirectionalAudio !== true, ...d.bidirectionalAudio },
    metadataText: metadataFrame(callInfoJson(call.ci), { sampleRate, mixType, metadata: d.metadata }),
    channelRate: call.o.channelRate || 8000, frameMs: call.o.frameMs || 20, prebuffer: call.o.prebuffer, faithfulMarks: call.o.faithfulMarks,
    callerPcm, t0: call.t0, log: (dir, event, f) => call.log(dir, event, f),
  });
  const L = { d, sock, digits: null, stopped: null };
  call.listens.push(sock);
  v.listen = call.listens.length - 1;
  const startedAt = call.now(); // recordStartTime: forkAudioStart returned, before the socket opens
  let end;
  const ended = new Promise((r) => (end = r));
  L.stop = (why) => {
    L.stopped ??= why; // kill(): results get dial_call_duration
    end(why);
  };
  sock.once('ended', ({ why }) => (why === 'disconnect' || why === 'closed' ? L.stop(why) : end(why)));
  call.kill = () => L.stop('hangup');
  const maxT = d.maxLength ? call.after(d.maxLength * 1000, () => L.stop('maxLength')) : null;
  call.activeListen = L;
  const opened = await sock.open();
  if (opened) {
    call.emit('listen', sock);
    if (voicemail && call.o.voicemailKey !== false && d.finishOnKey) {
      const at = (callerPcm.length * 1000) / sampleRate + (call.o.voicemailTailMs ?? 500);
      call.after(at, () => !L.stopped && call.activeListen === L && call.dtmf(d.finishOnKey));
    }
    if (first) call.audioDoneAt = call.now() + (callerPcm.length * 1000) / sampleRate;
  }
  if (call.gone) L.stop('hangup');
  const why = await ended;
  clearTimeout(maxT);
  call.activeListen = null;
  call.kill = null;
  sock.ended ??= { t: round1(call.now()), why };
  if (why === 'error') call.orphan = sock; // the socket stays open until the call ends
  else await sock.close();
  const results = {};
  if (L.stopped) results.dialCallDuration = Math.floor((call.now() - startedAt) / 1000);
  if (L.digits) results.digits = L.digits;
  v.results = results;
  v.ended = why;
  call.log('local', 'listen-end', { why, ...sock.counters() });
  await call.action(d, results);
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text ?? null;
  }
}
