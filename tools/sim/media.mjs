// Twilio's side of a bidirectional Media Stream (<Connect><Stream>), over a real WebSocket.
//
// What Twilio sends (https://www.twilio.com/docs/voice/media-streams/websocket-messages):
//   {"event":"connected","protocol":"Call","version":"1.0.0"}
//   {"event":"start","sequenceNumber":"1","start":{"accountSid","streamSid","callSid",
//      "tracks":["inbound"],"customParameters":{...<Parameter>s...},
//      "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid"}
//   {"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1",
//      "timestamp":"5","payload":"<base64 mu-law>"},"streamSid"}
//   {"event":"dtmf","streamSid","sequenceNumber","dtmf":{"track":"inbound_track","digit":"1"}}
//   {"event":"mark","sequenceNumber","streamSid","mark":{"name":"..."}}
//   {"event":"stop","sequenceNumber","streamSid","stop":{"accountSid","callSid"}}
// sequenceNumber, chunk and timestamp are strings; sequenceNumber counts every message from
// start ("1"), chunk counts media messages from "1", timestamp is ms from the stream start.
//
// What the server may send (bidirectional streams only): media {"media":{"payload"}}, mark
// {"mark":{"name"}}, clear; each with "streamSid". Twilio's behaviour, mirrored here:
//   - "The media messages are buffered and played in the order received": agent audio goes
//     onto a play-out queue and plays in real time after whatever is already queued.
//   - mark: "When that media message's playback is complete, Twilio sends a mark message
//     to your server using the same mark.name": the echo waits until the audio queued
//     before it would have finished playing.
//   - clear: "empties all buffered audio and causes any mark messages to be sent back to
//     your WebSocket server": unplayed audio is dropped and every pending mark is echoed at
//     once.
// The upgrade carries X-Twilio-Signature over the wss:// URL as written in the TwiML, with
// no parameters (see signing.mjs).
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { newSid, wsSignature, DEFAULT_ACCOUNT_SID } from './signing.mjs';
import { FRAME_BYTES, FRAME_MS, MULAW_SILENCE, SAMPLE_RATE } from './wav.mjs';

const BYTES_PER_MS = SAMPLE_RATE / 1000; // 8 mu-law bytes per millisecond

export function percentile(values, p) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const round1 = (x) => Math.round(x * 10) / 10;

export class MediaStream extends EventEmitter {
  /**
   * @param {object} o
   * @param {string} o.url            where to connect (the local ws:// URL)
   * @param {string} [o.signUrl]      the URL Twilio signs: the <Stream url> as written (wss://public/...)
   * @param {string} [o.authToken]    sign the upgrade (X-Twilio-Signature) when given
   * @param {string} [o.accountSid], [o.callSid], [o.streamSid]
   * @param {object} [o.customParameters]  the <Parameter name value> pairs
   * @param {Buffer} [o.audio]        caller audio, 8 kHz mu-law; sent in 20 ms frames, paced in real time
   * @param {{digit:string, atMs:number}[]} [o.dtmf]  key presses, ms from the stream start
   * @param {number} [o.tailMs=1000]  after the audio and the last digit: keep streaming silence this long, then stop
   * @param {boolean} [o.autoStop=true]  stop (caller hangs up) after audio + tail; false: run until the server closes or stop()
   * @param {number} [o.stopAtMs]     the caller hangs up at this ms from the stream start, whatever else
   * @param {boolean} [o.sendSilence=true]  keep sending silence frames when the audio is over (Twilio always streams)
   * @param {number} [o.clearWindowMs=500]  media arriving this soon after a clear counts as stale (stats.audioAfterClear)
   * @param {number} [o.epoch]        performance.now() value timeline times are measured from (default: construction)
   * @param {(entry)=>void} [o.onEvent]  called with every timeline entry
   */
  constructor(o = {}) {
    super();
    if (!o.url) throw new Error('MediaStream: url is required');
    this.url = o.url;
    this.signUrl = o.signUrl || o.url;
    this.authToken = o.authToken || null;
    this.accountSid = o.accountSid || DEFAULT_ACCOUNT_SID;
    this.callSid = o.callSid || newSid('CA');
    this.streamSid = o.streamSid || newSid('MZ');
    this.customParameters = { ...(o.customParameters || {}) };
    this.tracks = o.tracks || ['inbound'];
    this.audio = o.audio || Buffer.alloc(0);
    this.dtmf = (o.dtmf || []).map((d) => ({ digit: String(d.digit), atMs: Math.max(0, Number(d.atMs) || 0) })).sort((a, b) => a.atMs - b.atMs);
    this.tailMs = o.tailMs ?? 1000;
    this.autoStop = o.autoStop ?? true;
    this.stopAtMs = o.stopAtMs ?? null;
    this.sendSilence = o.sendSilence ?? true;
    this.clearWindowMs = o.clearWindowMs ?? 500;
    this.connectTimeoutMs = o.connectTimeoutMs ?? 5000;
    this.latencyWindowMs = o.latencyWindowMs ?? 10000;
    this.epoch = o.epoch ?? performance.now();
    this.onEvent = o.onEvent || null;

    this.timeline = [];
    this.ws = null;
    this.seq = 0; // sequenceNumber of the last message sent
    this.chunk = 0; // media chunks sent
    this.t0 = null; // performance.now() at `start`: the media clock's zero
    this.frameIndex = 0;
    this.nextDtmf = 0;
    this.timer = null;
    this.stopping = false; // we sent stop / are closing
    this.closedBy = null;
    this.closeCode = null;
    this.closeReason = '';
    this.handshakeStatus = null;
    this.error = null;

    // Play-out of the agent's audio (what the caller hears).
    this.playhead = 0; // when the queued agent audio will have finished playing
    this.played = []; // [{start, end, bytes}] in play order; truncated by clear
    this.pendingMarks = []; // marks waiting for their audio to play out, in order
    this.markTimer = null;
    this.lastClearAt = null;

    // Round-trip matching: payload of each frame sent -> send times (FIFO), pruned by age.
    this.sentByPayload = new Map();
    this.sentOrder = [];

    this.received = []; // [{at, bytes}] every media message from the server, arrival time
    this.sendTimes = []; // actual send time of each media frame (ms, stream clock)
    this.lateness = []; // how far behind its due time each paced frame went out (ms)
    this.marks = []; // [{name, receivedAt, echoedAt, due, onClear}]
    this.clears = []; // [{at, droppedMs, marksEchoed}]
    this.s = {
      framesSent: 0,
      bytesSent: 0,
      dtmfSent: 0,
      framesReceived: 0,
      bytesReceived: 0,
      marksReceived: 0,
      marksEchoed: 0,
      marksEchoedOnClear: 0,
      clears: 0,
      droppedOnClearMs: 0,
      audioAfterClear: 0, // bytes of media within clearWindowMs after a clear: must stay 0
      mediaAfterClear: 0, // media messages any time after the most recent clear
      protocolErrors: 0,
      latencies: [], // ms from sending a frame to receiving the same payload back
      maxBufferedBytes: 0,
    };
    this.done = new Promise((resolve) => (this._resolveDone = resolve));
  }

  now() {
    return performance.now() - this.epoch;
  }

  log(dir, event, detail = {}) {
    const e = { t: round1(this.now()), dir, event, ...detail };
    this.timeline.push(e);
    if (this.onEvent) this.onEvent(e);
    this.emit('event', e);
    return e;
  }

  /** Opens the WebSocket (signed upgrade). Resolves true when open, false when refused. */
  connect() {
    const headers = {};
    if (this.authToken) headers['X-Twilio-Signature'] = wsSignature(this.authToken, this.signUrl);
    this.log('out', 'ws-connect', { url: this.url, signed: !!this.authToken });
    return new Promise((resolve) => {
      const ws = new WebSocket(this.url, { headers, perMessageDeflate: false, handshakeTimeout: this.connectTimeoutMs });
      this.ws = ws;
      let opened = false;
      ws.on('unexpected-response', (req, res) => {
        // The server answered the upgrade with something other than 101 (a 403, say).
        this.refused = true;
        this.handshakeStatus = res.statusCode;
        this.error = `WebSocket upgrade refused: HTTP ${res.statusCode}`;
        this.log('in', 'ws-refused', { status: res.statusCode });
        res.resume();
        req.destroy();
        this._finish();
        resolve(false);
      });
      ws.on('open', () => {
        opened = true;
        this.log('in', 'ws-open');
        resolve(true);
      });
      ws.on('message', (data, isBinary) => this._onMessage(data, isBinary));
      ws.on('error', (err) => {
        if (this.refused) return;
        if (!this.error) this.error = err.message;
        if (!opened) {
          this.log('local', 'ws-error', { error: err.message });
          this._finish();
          resolve(false);
        }
      });
      ws.on('close', (code, reason) => {
        if (this.refused) return;
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.closedBy = this.stopping ? 'sim' : 'server';
        this.log(this.closedBy === 'server' ? 'in' : 'out', 'ws-close', { code, reason: this.closeReason, by: this.closedBy });
        this._finish();
        if (!opened) resolve(false);
      });
    });
  }

  /** connect, then `connected` + `start`, then paced media until the end; resolves the result. */
  async run() {
    if (!(await this.connect())) return this.result();
    this.begin();
    await this.done;
    return this.result();
  }

  /** Sends `connected` and `start` and starts the paced media. */
  begin() {
    this._send({ event: 'connected', protocol: 'Call', version: '1.0.0' }, 'connected', false);
    this._send(
      {
        event: 'start',
        sequenceNumber: String(++this.seq),
        start: {
          accountSid: this.accountSid,
          streamSid: this.streamSid,
          callSid: this.callSid,
          tracks: this.tracks,
          customParameters: this.customParameters,
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: SAMPLE_RATE, channels: 1 },
        },
        streamSid: this.streamSid,
      },
      'start',
      { streamSid: this.streamSid, customParameters: this.customParameters },
    );
    this.t0 = performance.now();
    const lastDtmf = this.dtmf.length ? this.dtmf[this.dtmf.length - 1].atMs : 0;
    this.endMs = this.autoStop ? Math.max(this.audio.length / BYTES_PER_MS, lastDtmf) + this.tailMs : Infinity;
    if (this.stopAtMs !== null) this.endMs = Math.min(this.endMs, this.stopAtMs);
    this._tick();
  }

  // The media clock: frame k is due at t0 + 20k ms. Each tick sends every frame that is due
  // (catching up after a late timer) and sleeps until the next one: no drift accumulates.
  _tick() {
    this.timer = null;
    if (!this._open() || this.stopping) return;
    const elapsed = performance.now() - this.t0;
    while (this.frameIndex * FRAME_MS <= elapsed) {
      const at = this.frameIndex * FRAME_MS;
      while (this.nextDtmf < this.dtmf.length && this.dtmf[this.nextDtmf].atMs <= at) this.sendDtmf(this.dtmf[this.nextDtmf++].digit);
      if (at >= this.endMs) {
        this.stop();
        return;
      }
      this._sendFrame(this.frameIndex);
      this.frameIndex++;
    }
    this.timer = setTimeout(() => this._tick(), Math.max(0, this.t0 + this.frameIndex * FRAME_MS - performance.now()));
  }

  _sendFrame(k) {
    const off = k * FRAME_BYTES;
    let frame;
    if (off < this.audio.length) {
      frame = this.audio.subarray(off, off + FRAME_BYTES);
      if (frame.length < FRAME_BYTES) frame = Buffer.concat([frame, Buffer.alloc(FRAME_BYTES - frame.length, MULAW_SILENCE)]);
    } else if (this.sendSilence) {
      frame = Buffer.alloc(FRAME_BYTES, MULAW_SILENCE);
    } else {
      return;
    }
    if (this.sendMedia(frame.toString('base64'), k * FRAME_MS)) {
      this.lateness.push(this.sendTimes[this.sendTimes.length - 1] - k * FRAME_MS); // behind the media clock
    }
  }

  /** Sends one media message (base64 mu-law); `timestampMs` defaults to the media clock. */
  sendMedia(payload, timestampMs) {
    if (!this._open()) return false;
    const sentAt = performance.now() - (this.t0 ?? this.epoch);
    const msg = {
      event: 'media',
      sequenceNumber: String(++this.seq),
      media: { track: 'inbound', chunk: String(++this.chunk), timestamp: String(Math.round(timestampMs ?? sentAt)), payload },
      streamSid: this.streamSid,
    };
    this.ws.send(JSON.stringify(msg));
    this.s.framesSent++;
    this.s.bytesSent += Buffer.byteLength(payload, 'base64');
    this.sendTimes.push(sentAt);
    if (this.s.framesSent === 1) this.log('out', 'media', { note: 'first caller frame' });
    if (this.ws.bufferedAmount > this.s.maxBufferedBytes) this.s.maxBufferedBytes = this.ws.bufferedAmount;
    // remember for round-trip matching
    const now = performance.now();
    let q = this.sentByPayload.get(payload);
    if (!q) this.sentByPayload.set(payload, (q = []));
    q.push(now);
    this.sentOrder.push([payload, now]);
    while (this.sentOrder.length && now - this.sentOrder[0][1] > this.latencyWindowMs) {
      const [p, t] = this.sentOrder.shift();
      const list = this.sentByPayload.get(p);
      if (list && list[0] === t) list.shift();
      if (list && !list.length) this.sentByPayload.delete(p);
    }
    return true;
  }

  /** The caller presses a key. */
  sendDtmf(digit) {
    if (!this._open()) return false;
    this._send({ event: 'dtmf', streamSid: this.streamSid, sequenceNumber: String(++this.seq), dtmf: { track: 'inbound_track', digit: String(digit) } }, 'dtmf', { digit: String(digit) });
    this.s.dtmfSent++;
    return true;
  }

  /** The caller hangs up: Twilio sends `stop`, then closes the socket. */
  stop() {
    if (this.stopping) return;
    if (!this._open()) return this._finish();
    this._send({ event: 'stop', sequenceNumber: String(++this.seq), streamSid: this.streamSid, stop: { accountSid: this.accountSid, callSid: this.callSid } }, 'stop');
    this.close(1000);
  }

  /** Closes the socket with `code` (no `stop`: an abrupt end, as when Twilio drops). */
  close(code = 1000, reason = '') {
    this.stopping = true;
    this._clearTimers();
    if (this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)) {
      this.ws.close(code, reason);
      // A server that never answers the close handshake: drop the TCP connection.
      setTimeout(() => this.ws && this.ws.readyState !== WebSocket.CLOSED && this.ws.terminate(), 2000).unref();
    } else {
      this._finish();
    }
  }

  // ---- from the server -------------------------------------------------------------

  _onMessage(data, isBinary) {
    if (isBinary) return this._protocolError('binary frame');
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return this._protocolError('invalid JSON');
    }
    if (!msg || typeof msg !== 'object') return this._protocolError('message is not an object');
    if (msg.streamSid !== this.streamSid && ['media', 'mark', 'clear'].includes(msg.event)) {
      // Twilio routes by streamSid: a message for another stream does nothing here.
      return this._protocolError(`${msg.event} with streamSid ${JSON.stringify(msg.streamSid)} (ours is ${this.streamSid})`);
    }
    switch (msg.event) {
      case 'media':
        return this._onMedia(msg);
      case 'mark':
        return this._onMark(msg);
      case 'clear':
        return this._onClear();
      default:
        return this._protocolError(`unexpected event ${JSON.stringify(msg.event)} (a server may send only media, mark, clear)`);
    }
  }

  _protocolError(what) {
    this.s.protocolErrors++;
    this.log('in', 'protocol-error', { error: what });
  }

  _onMedia(msg) {
    const payload = msg.media && msg.media.payload;
    if (typeof payload !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(payload)) return this._protocolError('media without a base64 payload');
    const bytes = Buffer.from(payload, 'base64');
    const now = this.now();
    this.s.framesReceived++;
    this.s.bytesReceived += bytes.length;
    this.received.push({ at: now, bytes });
    if (this.lastClearAt !== null) {
      this.s.mediaAfterClear++;
      if (now - this.lastClearAt <= this.clearWindowMs) this.s.audioAfterClear += bytes.length;
    }
    // Queue for play-out: it starts when what is queued has played (or now, if idle).
    const start = Math.max(now, this.playhead);
    const end = start + bytes.length / BYTES_PER_MS;
    // One timeline entry per burst of agent speech (after 100 ms or more of nothing playing).
    if (!this.played.length || start - this.playhead >= 100) this.log('in', 'agent-audio', { playAt: round1(start) });
    this.played.push({ start, end, bytes });
    this.playhead = end;
    this._matchEcho(bytes);
    this.emit('media', { at: now, bytes });
  }

  // Round trip: each 160-byte piece of what came back, matched by content to the earliest
  // unmatched frame sent with the same bytes.
  _matchEcho(bytes) {
    const now = performance.now();
    for (let off = 0; off + FRAME_BYTES <= bytes.length; off += FRAME_BYTES) {
      const key = bytes.subarray(off, off + FRAME_BYTES).toString('base64');
      const q = this.sentByPayload.get(key);
      if (q && q.length) this.s.latencies.push(round1(now - q.shift()));
    }
  }

  _onMark(msg) {
    const name = msg.mark && msg.mark.name;
    if (typeof name !== 'string') return this._protocolError('mark without a name');
    const now = this.now();
    this.s.marksReceived++;
    const mark = { name, receivedAt: round1(now), due: round1(Math.max(now, this.playhead)), echoedAt: null, onClear: false };
    this.marks.push(mark);
    this.log('in', 'mark', { name, playsOutAt: mark.due });
    // Echoed when the audio queued before it has played; marks are due in arrival order.
    this.pendingMarks.push(mark);
    this._echoMarksDue();
  }

  // Echoes every mark that is due and sleeps until the next one (timers may fire up to a
  // millisecond early against performance.now(): re-armed rather than echoed early).
  _echoMarksDue() {
    if (this.markTimer) clearTimeout(this.markTimer);
    this.markTimer = null;
    while (this.pendingMarks.length && this.pendingMarks[0].due <= this.now()) this._echoMark(this.pendingMarks.shift(), false);
    if (this.pendingMarks.length && this._open()) {
      this.markTimer = setTimeout(() => this._echoMarksDue(), Math.max(1, Math.ceil(this.pendingMarks[0].due - this.now())));
    }
  }

  _echoMark(mark, onClear) {
    if (!this._open()) return;
    mark.echoedAt = round1(this.now());
    mark.onClear = onClear;
    this._send({ event: 'mark', sequenceNumber: String(++this.seq), streamSid: this.streamSid, mark: { name: mark.name } }, 'mark', { name: mark.name, onClear });
    this.s.marksEchoed++;
    if (onClear) this.s.marksEchoedOnClear++;
    this.emit('mark', mark);
  }

  _onClear() {
    const now = this.now();
    // Drop what has not played yet: whole chunks not started, the unplayed tail of the one playing.
    let droppedMs = 0;
    for (let i = this.played.length - 1; i >= 0; i--) {
      const p = this.played[i];
      if (p.end <= now) break;
      if (p.start >= now) {
        droppedMs += p.end - p.start;
        this.played.splice(i, 1);
      } else {
        const keep = Math.floor((now - p.start) * BYTES_PER_MS);
        droppedMs += p.end - now;
        p.bytes = p.bytes.subarray(0, keep);
        p.end = now;
      }
    }
    this.playhead = now;
    this.lastClearAt = now;
    this.s.clears++;
    this.s.droppedOnClearMs += droppedMs;
    const marks = this.pendingMarks.splice(0);
    if (this.markTimer) clearTimeout(this.markTimer);
    this.markTimer = null;
    this.clears.push({ at: round1(now), droppedMs: round1(droppedMs), marksEchoed: marks.length });
    this.log('in', 'clear', { droppedMs: round1(droppedMs), marksEchoed: marks.length });
    for (const m of marks) this._echoMark(m, true);
    this.emit('clear', this.clears[this.clears.length - 1]);
  }

  // ---- plumbing --------------------------------------------------------------------

  _open() {
    return this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  _send(obj, event, detail = {}) {
    if (!this._open()) return false;
    this.ws.send(JSON.stringify(obj));
    if (event) this.log('out', event, detail || {});
    return true;
  }

  _clearTimers() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.markTimer) clearTimeout(this.markTimer);
    this.markTimer = null;
  }

  _finish() {
    this._clearTimers();
    if (this._finished) return;
    this._finished = true;
    this._resolveDone();
  }

  /** What the caller heard of the agent, as mu-law. `gaps`: keep the silences between bursts. */
  agentAudio({ gaps = false } = {}) {
    if (!gaps) return Buffer.concat(this.played.map((p) => p.bytes));
    if (!this.played.length) return Buffer.alloc(0);
    const origin = this.played[0].start;
    const last = this.played[this.played.length - 1];
    const out = Buffer.alloc(Math.ceil((last.start - origin) * BYTES_PER_MS) + last.bytes.length, MULAW_SILENCE);
    for (const p of this.played) p.bytes.copy(out, Math.round((p.start - origin) * BYTES_PER_MS));
    return out;
  }

  get stats() {
    const intervals = this.sendTimes.slice(1).map((t, i) => t - this.sendTimes[i]);
    const late = this.lateness;
    const { latencies: lat, ...counters } = this.s;
    const max = (a) => a.reduce((m, x) => (x > m ? x : m), -Infinity);
    return {
      ...counters,
      marksPending: this.pendingMarks.length,
      pacing: {
        frames: this.sendTimes.length,
        meanIntervalMs: intervals.length ? round1(intervals.reduce((a, b) => a + b, 0) / intervals.length) : null,
        maxLateMs: late.length ? round1(max(late)) : null,
        p99LateMs: late.length ? round1(percentile(late, 99)) : null,
      },
      roundTrip: { n: lat.length, p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat.length ? max(lat) : null },
      agentAudioMs: round1(this.played.reduce((a, p) => a + p.bytes.length, 0) / BYTES_PER_MS),
    };
  }

  result() {
    return {
      streamSid: this.streamSid,
      closeCode: this.closeCode,
      closeReason: this.closeReason,
      closedBy: this.closedBy,
      handshakeStatus: this.handshakeStatus,
      error: this.error,
      stats: this.stats,
      marks: this.marks,
      clears: this.clears,
      latencies: this.s.latencies,
      sendTimes: this.sendTimes,
      timeline: this.timeline,
    };
  }
}
