// A fake Asterisk, for switchboard's ARI tests (tests/fakes/asterisk_ari.mjs re-exports it) and
// `switchboard-sim asterisk` (asterisk_call.mjs): the REST interface (/ari/...), the events
// WebSocket (/ari/events?app=NAME) and, for every ExternalMedia channel, a UDP socket that
// speaks RTP to the gateway as Asterisk's UnicastRTP channel does. It keeps the state Asterisk
// keeps (channels, bridges, playbacks, which app owns what), so 400/404/409/422 come where
// Asterisk answers them, and plays the far end of calls: inbound callers, DTMF, remote hang-ups,
// originate outcomes (busy, no answer, failure, answer), a restart.
//
// Wire shapes and error texts follow asterisk/asterisk: rest-api/api-docs/{channels,bridges,
// events,playbacks}.json (paths, parameters, models) and the checks written by hand in
// res/res_ari.c (auth, 404/405), res/ari/resource_channels.c, res/ari/resource_bridges.c,
// res/ari/ari_websockets.c, main/dial.c (Dial events, dial timeout -> cause 19),
// main/channel.c (hang-up requests, cause texts), apps/app_stasis.c (Stasis args).
// Where Asterisk leaves the order open (threads racing: a REST reply and the events it causes,
// events inside one millisecond), the fake picks one fixed order, said at each place.
//
//   const fake = await new FakeAsterisk({ username: 'sb', password: 'pw' }).start();
//   env: ARI_URL=fake.url, ARI_USERNAME=sb, ARI_PASSWORD=pw, ARI_APP=switchboard
//   await fake.waitForApp('switchboard');                 // switchboard's events socket is up
//   const caller = await fake.inboundCall({ from: '+15551230001', to: '+15557650000' });
//   const leg = await fake.waitForLeg();                  // switchboard asked for ExternalMedia
//   await leg.sendAudio(mulaw);                           // the caller speaks (paced RTP)
//   await fake.waitFor(() => leg.stats().accepted >= 50); // what switchboard sent back
//   fake.setOutcome('PJSIP/2000', { result: 'busy', afterMs: 50 });
//   fake.dtmf(caller.id, '5'); fake.hangup(caller.id);    // far-end actions
//   await fake.restart({ downMs: 500 });                  // sockets closed 1001, state gone
//
// Scripting API (FakeAsterisk):
//   new FakeAsterisk({ username, password, users: [{ user, password, readOnly }], app, trunk,
//     inboundContext, asteriskId, version, registeredEvents, varsetEvents, channelvars, tzOffsetMinutes,
//     externalMediaStasisStart: 'after'|'before'|ms, rtp: { send: 'bridged'|'always'|'manual',
//     strictLearn: 4, bindHost }, defaultOutcome, playbackMs, restartDownMs })
//   start() / stop(); url, ariUrl, port, eventsUrl(app)
//   inboundCall({ from, to, callerName, args, app, endpoint, context, vars, channelId }) -> channel JSON
//   dtmf(channelId, digit, { durationMs }); hangup(channelId, cause = 16, { techCause })
//   setState(channelId, state); setOutcome(endpoint | RegExp, { result, afterMs, ringMs, cause } | null)
//   setPlayback(mediaUri | RegExp, { durationMs, fail }); script({ method, path, status, message, delayMs, drop, times })
//   restart({ downMs, closeCode = 1001, reason, abrupt }); resetLog()
//   waitFor(predicate | 'EventType', ms); waitForEvent(type, { where, since, timeoutMs });
//   nextEvent(type, opts); eventsFor(channelId); waitForApp(app, ms); waitForLeg({ index, timeoutMs }); rtp(channelId)
//   state: channels, ended, bridges, playbacks, legs (Maps); requests, events, connections, wsMessages (arrays)
//   emits 'event', 'request', 'connection', 'disconnect', 'channel-destroyed', 'leg' (a new RtpLeg,
//   its socket open), 'down', 'up'
// RtpLeg (one per ExternalMedia channel): local, remote, ssrc; sendAudio(buf) -> Promise;
//   emits 'start' / 'stop' (streaming to the gateway begins / ends), 'packet', 'garbage', 'close';
//   start(), stop(), pause(), resume(); dropNext(n), duplicateNext(n), reorderNext(n), delayNext(ms);
//   sendPacket({ pt, payload, seq, ts, ssrc, marker }); sendGarbage(buf);
//   sendFromOtherSocket({ count, pt, payload, ssrc, seq, ts, intervalMs }) -> { address, port };
//   received [{ seq, ts, ssrc, pt, marker, payload, bytes, at, from, accepted }], garbage, sent;
//   stats() -> { packets, accepted, rejected, garbage, bytes, payloadTypes, sizes, ssrcs, seqs,
//   duplicates, outOfOrder, lost, sources, intervalsMs, meanIntervalMs, maxIntervalDeviationMs,
//   jitterMs, firstAt, lastAt }; receivedAudio({ bySeq }). Times (`at`) are performance.now() ms.
//
// What Asterisk does that this fake models, in short (details at each handler):
// - Auth before anything else: 401 {"message":"Authentication required"} with
//   WWW-Authenticate: Basic realm="Asterisk REST Interface"; read-only users get 403 on writes.
// - Unknown path 404 "Resource not found"; a trailing slash 404 "ARI URLs do not end with a
//   slash. Try /ari/..."; a method the resource lacks 405 "Invalid method" with Allow.
//   Resources Asterisk has but the fake does not implement answer 501.
// - Parameters: query string, form body, or a JSON body (Content-Type: application/json), the
//   JSON body winning; in JSON a string parameter must be a JSON string (a number is ignored,
//   as ast_json_string_get returns NULL), integers go through atoi in the query.
// - Required parameters are checked by each handler with its own message, not generically:
//   originate "Endpoint must be specified", externalMedia "app cannot be empty" ...
// - find_control: unknown channel 404 "Channel not found", a channel that exists outside
//   Stasis (an originated channel still ringing) 409 "Channel not in Stasis application",
//   a Stasis channel in state Down/Ringing 412 "Channel in invalid state".
// - Bridges: addChannel/removeChannel answer an unknown channel with 400 "Channel not found"
//   and a channel outside Stasis with 422 (not 409); adding a channel that is already in a
//   bridge moves it (it leaves the old one), 204. A duplicate bridgeId or channelId is 409.
// - Hang-ups: DELETE /channels/{id} publishes ChannelHangupRequest {cause: 32, soft: true} (the
//   soft-hang-up flag, not a Q.850 cause), then ChannelLeftBridge, StasisEnd, ChannelDestroyed
//   {cause, cause_txt} with the reason's cause; a far-end hang-up sends ChannelHangupRequest
//   {cause} first. BridgeDestroyed goes only to apps that still have channels in the bridge.
// - Originate: the reply is the channel in state Down; Dial events (no caller: the dial is
//   async) while it rings; StasisStart only once answered; a dial timeout destroys the channel
//   with cause 19 and no NOANSWER Dial event.
import http from 'node:http';
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';

export const REALM = 'Asterisk REST Interface';

// Hang-up causes (include/asterisk/causes.h) and their texts (main/channel.c, ast_cause2str).
export const CAUSE = Object.freeze({
  UNALLOCATED: 1, NORMAL: 16, BUSY: 17, NO_USER_RESPONSE: 18, NO_ANSWER: 19, REJECTED: 21,
  ANSWERED_ELSEWHERE: 26, INVALID_NUMBER_FORMAT: 28, NORMAL_UNSPECIFIED: 31, CONGESTION: 34,
  FAILURE: 38, BEARERCAPABILITY_NOTAVAIL: 58, INTERWORKING: 127,
});
export const CAUSE_TEXT = Object.freeze({
  0: 'Unknown', 1: 'Unallocated (unassigned) number', 2: 'No route to specified transmit network',
  3: 'No route to destination', 16: 'Normal Clearing', 17: 'User busy', 18: 'No user responding',
  19: 'User alerting, no answer', 20: 'Subscriber absent', 21: 'Call Rejected', 22: 'Number changed',
  26: 'Answered elsewhere', 27: 'Destination out of order', 28: 'Invalid number format',
  31: 'Normal, unspecified', 34: 'Circuit/channel congestion', 38: 'Network out of order',
  41: 'Temporary failure', 42: 'Switching equipment congestion', 44: 'Requested channel not available',
  58: 'Bearer capability not available', 127: 'Interworking, unspecified',
});
// DELETE /channels/{id}?reason=... (resource_channels.c, convert_reason_to_hangup_code).
const HANGUP_REASONS = {
  normal: 16, busy: 17, congestion: 34, no_answer: 19, timeout: 18, rejected: 21, unallocated: 1,
  normal_unspecified: 31, number_incomplete: 28, codec_mismatch: 58, interworking: 127,
  failure: 38, answered_elsewhere: 26,
};
// main/dial.c, ast_hangup_cause_to_dial_status.
const dialStatusFor = (cause) => ({ 17: 'BUSY', 34: 'CONGESTION', 3: 'CHANUNAVAIL', 20: 'CHANUNAVAIL' })[cause] ?? 'NOANSWER';
// ast_softhangup publishes the soft-hang-up flag as "cause": AST_SOFTHANGUP_EXPLICIT is 1 << 5.
const SOFTHANGUP_EXPLICIT = 32;

// Formats the fake accepts (ast_format_cache_get); RTP payload type and bytes per 20 ms.
// (The fake streams any of them as opaque bytes; switchboard uses ulaw.)
const FORMATS = {
  ulaw: { pt: 0, frame: 160, tsStep: 160, silence: 0xff }, alaw: { pt: 8, frame: 160, tsStep: 160, silence: 0xd5 },
  g722: { pt: 9, frame: 160, tsStep: 160, silence: 0 }, gsm: { pt: 3, frame: 33, tsStep: 160, silence: 0 },
  slin: { pt: 118, frame: 320, tsStep: 160, silence: 0 }, slin16: { pt: 118, frame: 640, tsStep: 320, silence: 0 },
  g729: { pt: 18, frame: 20, tsStep: 160, silence: 0 }, opus: { pt: 107, frame: 160, tsStep: 960, silence: 0 },
};
const TECHS = new Set(['PJSIP', 'SIP', 'IAX2', 'DAHDI', 'Local', 'UnicastRTP']);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(pred, ms = 5000, interval = 5) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`waitFor: condition not met within ${ms} ms: ${pred}`);
    await sleep(interval);
  }
}

// Asterisk's timestamps (ast_json_timeval): 2026-12-03T19:00:00.000+0000, in the server's local
// zone (ast_localtime with no zone), so the offset is whatever the host is set to.
export function ariTime(ms = Date.now(), offsetMinutes = 0) {
  const a = Math.abs(offsetMinutes);
  const zone = `${offsetMinutes < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}${String(a % 60).padStart(2, '0')}`;
  return new Date(ms + offsetMinutes * 60000).toISOString().replace('Z', zone);
}

export const basicAuth = (user, password) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');

// ---- RTP ---------------------------------------------------------------------------------

// RFC 3550 fixed header; CSRCs, extension and padding are skipped. null if not RTP version 2.
export function parseRtp(buf) {
  if (buf.length < 12 || buf[0] >> 6 !== 2) return null;
  const cc = buf[0] & 0x0f, hasExt = (buf[0] >> 4) & 1, hasPad = (buf[0] >> 5) & 1;
  let off = 12 + cc * 4;
  if (hasExt) {
    if (buf.length < off + 4) return null;
    off += 4 + buf.readUInt16BE(off + 2) * 4;
  }
  let end = buf.length;
  if (hasPad) end -= buf[end - 1];
  if (off > end) return null;
  return {
    marker: !!(buf[1] & 0x80), pt: buf[1] & 0x7f, seq: buf.readUInt16BE(2), ts: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8), payload: buf.subarray(off, end),
  };
}

export function buildRtp({ pt = 0, seq = 0, ts = 0, ssrc = 0, marker = false, payload = Buffer.alloc(0) }) {
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = (marker ? 0x80 : 0) | (pt & 0x7f);
  h.writeUInt16BE(seq & 0xffff, 2);
  h.writeUInt32BE(ts >>> 0, 4);
  h.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([h, payload]);
}

const rand32 = () => randomBytes(4).readUInt32BE(0);
const rand16 = () => randomBytes(2).readUInt16BE(0);

// The media side of one ExternalMedia (UnicastRTP) channel. Like chan_rtp it owns one UDP
// socket, sends to external_host from it and reads on it. Streaming (20 ms frames of the queued
// audio, else silence) runs while the channel is bridged with another channel, as Asterisk only
// writes frames to the channel when a bridge feeds it (`rtp.send` 'always' | 'manual' change
// that). Strict RTP: packets from external_host are accepted at once, from any other address
// only after `strictLearn` in-sequence packets (rejected ones are still recorded).
export class RtpLeg extends EventEmitter {
  constructor(fake, channel, { host, port, format, policy, strictLearn, bindHost }) {
    super();
    this.fake = fake;
    this.channel = channel;
    this.channelId = channel.id;
    this.format = format;
    const f = FORMATS[format] ?? FORMATS.ulaw;
    this.pt = f.pt;
    this.frameBytes = f.frame;
    this.tsStep = f.tsStep;
    this.silence = f.silence;
    this.remoteHost = host;
    this.remote = { address: host, port };
    this.policy = policy;
    this.strictLearn = strictLearn;
    this.bindHost = bindHost;
    this.ssrc = rand32();
    this.seq = rand16();
    this.ts = rand32();
    this.received = []; // { seq, ts, ssrc, pt, marker, payload, bytes, at, from, accepted }
    this.garbage = []; // datagrams that are not RTP: { data, bytes, at, from }
    this.sent = []; // { seq, ts, pt, marker, bytes, at, kind }
    this.learning = new Map(); // source -> { lastSeq, count }
    this.learned = new Set();
    this.audio = []; // queued Buffers waiting to be streamed
    this.audioQueued = 0;
    this.audioSent = 0;
    this.audioWaiters = [];
    this.mods = []; // transforms for the next streamed packets
    this.streaming = false;
    this.paused = false;
    this.closed = false;
    this.timer = null;
    this.marker = true;
  }

  async open() {
    const found = await dns.lookup(this.remoteHost, { family: 4 }).catch(() => null);
    if (found) this.remote.address = found.address;
    this.socket = dgram.createSocket('udp4');
    this.socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    this.socket.on('error', () => {}); // ICMP port unreachable etc.: Asterisk carries on
    await new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(0, this.bindHost, () => { this.socket.off('error', reject); resolve(); });
    });
    this.local = { address: this.socket.address().address, port: this.socket.address().port };
    return this;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    try { this.socket?.close(); } catch {}
    for (const w of this.audioWaiters) w.resolve(false);
    this.audioWaiters = [];
    this.emit('close');
  }

  // ---- sending ----
  start() {
    if (this.streaming || this.closed) return;
    this.streaming = true;
    this.marker = true;
    this.emit('start');
    const t0 = performance.now();
    let n = 0;
    // Drift-free pacing: frame n leaves at t0 + 20n, whatever the timer's lateness.
    const tick = () => {
      if (!this.streaming || this.closed) return;
      this.streamFrame();
      n++;
      this.timer = setTimeout(tick, Math.max(0, t0 + n * 20 - performance.now()));
    };
    tick();
  }

  stop() {
    const was = this.streaming;
    this.streaming = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (was) this.emit('stop');
  }

  // Silence suppression on the Asterisk side: no packets, the timestamp keeps running.
  pause() { this.paused = true; }
  resume() { this.paused = false; this.marker = true; }

  // Queue mu-law (or the leg's format) for the stream; resolves once the last byte is sent.
  sendAudio(buf) {
    this.audio.push(Buffer.from(buf));
    this.audioQueued += buf.length;
    const until = this.audioQueued;
    return new Promise((resolve) => this.audioWaiters.push({ until, resolve }));
  }

  nextPayload() {
    const out = Buffer.alloc(this.frameBytes, this.silence);
    let filled = 0;
    while (filled < this.frameBytes && this.audio.length) {
      const head = this.audio[0];
      const n = Math.min(head.length, this.frameBytes - filled);
      head.copy(out, filled, 0, n);
      filled += n;
      if (n === head.length) this.audio.shift();
      else this.audio[0] = head.subarray(n);
    }
    this.audioSent += filled;
    this.audioWaiters = this.audioWaiters.filter((w) => (this.audioSent >= w.until ? (w.resolve(true), false) : true));
    return { payload: out, kind: filled ? 'audio' : 'silence' };
  }

  streamFrame() {
    if (this.paused) { this.ts = (this.ts + this.tsStep) >>> 0; return; }
    const { payload, kind } = this.nextPayload();
    const pkt = { pt: this.pt, seq: this.seq, ts: this.ts, ssrc: this.ssrc, marker: this.marker, payload };
    this.marker = false;
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + this.tsStep) >>> 0;
    const mod = this.mods[0];
    if (!mod) return this.transmit(pkt, kind);
    switch (mod.kind) {
      case 'drop':
        this.sent.push({ seq: pkt.seq, ts: pkt.ts, pt: pkt.pt, marker: pkt.marker, bytes: payload.length, at: performance.now(), kind: 'dropped' });
        if (--mod.left <= 0) this.mods.shift();
        break;
      case 'duplicate':
        this.transmit(pkt, kind);
        this.transmit(pkt, 'duplicate');
        if (--mod.left <= 0) this.mods.shift();
        break;
      case 'reorder':
        mod.held.push([pkt, kind]);
        if (mod.held.length >= mod.count) {
          this.mods.shift();
          for (const [p] of mod.held.reverse()) this.transmit(p, 'reordered');
        }
        break;
      case 'delay':
        this.mods.shift();
        this.fake.timer(() => this.transmit(pkt, 'late'), mod.ms);
        break;
    }
  }

  // Resolves once the datagram has left (a socket closed right after send() would drop it).
  transmit(pkt, kind = 'extra', socket = this.socket, to = this.remote) {
    if (this.closed) return Promise.resolve();
    this.sent.push({ seq: pkt.seq, ts: pkt.ts, pt: pkt.pt, marker: pkt.marker, ssrc: pkt.ssrc, bytes: pkt.payload.length, at: performance.now(), kind });
    return new Promise((resolve) => socket.send(buildRtp(pkt), to.port, to.address, () => resolve()));
  }

  // The next `n` streamed packets are not sent (a gap in seq, as loss on the way).
  dropNext(n = 1) { this.mods.push({ kind: 'drop', left: n }); }
  // The next `n` streamed packets are each sent twice.
  duplicateNext(n = 1) { this.mods.push({ kind: 'duplicate', left: n }); }
  // The next `count` streamed packets are held and sent in reverse order with the last one.
  reorderNext(count = 2) { this.mods.push({ kind: 'reorder', count, held: [] }); }
  // The next streamed packet leaves `ms` later than its slot (after its successors).
  delayNext(ms = 60) { this.mods.push({ kind: 'delay', ms }); }

  // One packet now, outside the pacing: another payload type (13 comfort noise, 101 DTMF ...),
  // a chosen seq/ts/ssrc. By default it takes the next sequence number, as Asterisk would.
  sendPacket({ pt = this.pt, payload, seq, ts = this.ts, ssrc = this.ssrc, marker = false } = {}) {
    if (seq === undefined) { seq = this.seq; this.seq = (this.seq + 1) & 0xffff; }
    payload ??= Buffer.alloc(pt === this.pt ? this.frameBytes : 1, pt === this.pt ? this.silence : 0);
    this.transmit({ pt, seq, ts, ssrc, marker, payload: Buffer.from(payload) }, pt === this.pt ? 'extra' : 'other-pt');
  }

  // A datagram that is not RTP (or any raw bytes) from the leg's own socket.
  sendGarbage(buf = randomBytes(7)) {
    if (this.closed) return;
    this.socket.send(buf, this.remote.port, this.remote.address);
    this.sent.push({ bytes: buf.length, at: performance.now(), kind: 'garbage' });
  }

  // RTP to the gateway from another socket (another address:port than the one the gateway was
  // told about): `count` packets paced `intervalMs`. Resolves with that socket's address.
  async sendFromOtherSocket({ count = 1, pt = this.pt, payload, ssrc = rand32(), seq = rand16(), ts = rand32(), intervalMs = 20 } = {}) {
    const s = dgram.createSocket('udp4');
    s.on('error', () => {});
    await new Promise((r) => s.bind(0, this.bindHost, r));
    const from = { address: s.address().address, port: s.address().port };
    for (let i = 0; i < count && !this.closed; i++) {
      if (i) await sleep(intervalMs);
      const p = Buffer.from(payload ?? Buffer.alloc(this.frameBytes, this.silence));
      await this.transmit({ pt, seq: (seq + i) & 0xffff, ts: (ts + i * this.tsStep) >>> 0, ssrc, marker: i === 0, payload: p }, 'other-socket', s);
    }
    await new Promise((r) => s.close(r));
    return from;
  }

  // ---- receiving ----
  onDatagram(msg, rinfo) {
    const at = performance.now();
    const from = { address: rinfo.address, port: rinfo.port };
    const rtp = parseRtp(msg);
    if (!rtp) {
      this.garbage.push({ data: Buffer.from(msg), bytes: msg.length, at, from });
      this.emit('garbage', this.garbage.at(-1));
      return;
    }
    const key = `${from.address}:${from.port}`;
    let accepted = true;
    if (this.strictLearn && !(from.address === this.remote.address && from.port === this.remote.port) && !this.learned.has(key)) {
      const l = this.learning.get(key) ?? { lastSeq: -2, count: 0 };
      l.count = rtp.seq === ((l.lastSeq + 1) & 0xffff) ? l.count + 1 : 1;
      l.lastSeq = rtp.seq;
      this.learning.set(key, l);
      if (l.count >= this.strictLearn) this.learned.add(key);
      accepted = this.learned.has(key);
    }
    const rec = { seq: rtp.seq, ts: rtp.ts, ssrc: rtp.ssrc, pt: rtp.pt, marker: rtp.marker, payload: Buffer.from(rtp.payload), bytes: rtp.payload.length, at, from, accepted };
    this.received.push(rec);
    this.emit('packet', rec);
  }

  // Audio the gateway sent (what the caller hears): accepted packets of the leg's payload type,
  // in arrival order, or in sequence order with { bySeq: true }.
  receivedAudio({ bySeq = false } = {}) {
    const p = this.received.filter((r) => r.accepted && r.pt === this.pt);
    if (bySeq) p.sort((a, b) => a.seq - b.seq);
    return Buffer.concat(p.map((r) => r.payload));
  }

  // Figures for assertions over what the gateway sent. Intervals and jitter use accepted packets
  // of the leg's payload type; jitter is RFC 3550's interarrival jitter in ms.
  stats() {
    const all = this.received;
    const ok = all.filter((r) => r.accepted);
    const media = ok.filter((r) => r.pt === this.pt);
    const count = (arr, f) => arr.reduce((m, r) => ((m[f(r)] = (m[f(r)] ?? 0) + 1), m), {});
    const seen = new Set();
    let duplicates = 0, outOfOrder = 0, maxExt = null, minExt = null, lastExt = null;
    for (const r of media) {
      let ext = r.seq;
      if (lastExt !== null) {
        ext = r.seq + (lastExt & ~0xffff);
        if (ext - lastExt > 0x8000) ext -= 0x10000;
        else if (lastExt - ext > 0x8000) ext += 0x10000;
      }
      if (seen.has(ext)) duplicates++;
      else if (maxExt !== null && ext < maxExt) outOfOrder++;
      seen.add(ext);
      lastExt = ext;
      maxExt = maxExt === null ? ext : Math.max(maxExt, ext);
      minExt = minExt === null ? ext : Math.min(minExt, ext);
    }
    const intervals = media.slice(1).map((r, i) => r.at - media[i].at);
    let jitter = 0;
    for (let i = 1; i < media.length; i++) {
      const d = (media[i].at - media[i - 1].at) - ((media[i].ts - media[i - 1].ts) | 0) / 8;
      jitter += (Math.abs(d) - jitter) / 16;
    }
    const mean = intervals.length ? intervals.reduce((a, b) => a + b, 0) / intervals.length : 0;
    return {
      packets: all.length, accepted: ok.length, rejected: all.length - ok.length, garbage: this.garbage.length,
      bytes: ok.reduce((a, r) => a + r.bytes, 0), payloadTypes: count(ok, (r) => r.pt), sizes: count(media, (r) => r.bytes),
      ssrcs: [...new Set(media.map((r) => r.ssrc))], seqs: media.map((r) => r.seq), duplicates, outOfOrder,
      lost: maxExt === null ? 0 : maxExt - minExt + 1 - seen.size,
      sources: [...new Set(all.map((r) => `${r.from.address}:${r.from.port}`))],
      intervalsMs: intervals, meanIntervalMs: mean,
      maxIntervalDeviationMs: intervals.reduce((m, x) => Math.max(m, Math.abs(x - 20)), 0), jitterMs: jitter,
      firstAt: media[0]?.at ?? null, lastAt: media.at(-1)?.at ?? null,
    };
  }
}

// ---- request parameters -------------------------------------------------------------------

// Asterisk's ast_app_separate_args (comma lists, Stasis args): quotes group, backslash escapes,
// brackets and parentheses nest.
export function separateArgs(s, delim = ',') {
  if (s === undefined || s === null) return [];
  const out = [];
  let cur = '', quote = false, depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) { cur += s[++i]; continue; }
    if (c === '"') { quote = !quote; continue; }
    if (!quote) {
      if (c === '(' || c === '[') depth++;
      else if ((c === ')' || c === ']') && depth) depth--;
      else if (c === delim && !depth) { out.push(cur); cur = ''; continue; }
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

const atoi = (v) => { const m = /^\s*[+-]?\d+/.exec(String(v)); return m ? parseInt(m[0], 10) : 0; };
const astTrue = (v) => /^(yes|true|y|t|1|on)$/i.test(String(v ?? '').trim());

// One handler's parameters: name -> type ('s' string, 'i' int, 'b' bool, 'l' comma list)
// with defaults the generated code sets before parsing (timeout 30, skipms 3000 ...).
function readParams(spec, query, json) {
  const p = {};
  for (const [name, [type, def]] of Object.entries(spec)) if (def !== undefined) p[name] = def;
  for (const [name, [type]] of Object.entries(spec)) {
    if (query[name] === undefined) continue;
    const v = query[name];
    p[name] = type === 'i' ? atoi(v) : type === 'b' ? astTrue(v) : type === 'l' ? (v === '' ? [''] : separateArgs(v)) : v;
  }
  if (json && typeof json === 'object' && !Array.isArray(json)) {
    for (const [name, [type]] of Object.entries(spec)) {
      if (!(name in json)) continue;
      const v = json[name];
      if (type === 's') { if (typeof v === 'string') p[name] = v; else delete p[name]; }
      else if (type === 'i') p[name] = Number.isInteger(v) ? v : 0;
      else if (type === 'b') p[name] = v === true;
      else if (type === 'l') p[name] = Array.isArray(v) ? v.filter((x) => typeof x === 'string') : typeof v === 'string' ? [v] : [];
    }
  }
  return p;
}

const S = ['s'], I = (d) => ['i', d], B = ['b', false], L = ['l'];
const PARAMS = {
  originate: { endpoint: S, extension: S, context: S, priority: I(0), label: S, app: S, appArgs: S, callerId: S, timeout: I(30), channelId: S, otherChannelId: S, originator: S, formats: S },
  externalMedia: { channelId: S, app: S, external_host: S, encapsulation: S, transport: S, connection_type: S, format: S, direction: S, data: S, transport_data: S },
  hangup: { reason_code: S, reason: S },
  play: { media: L, lang: S, offsetms: I(0), skipms: I(3000), playbackId: S, announcer_format: S },
  moh: { mohClass: S },
  createBridge: { type: S, bridgeId: S, name: S },
  addChannel: { channel: L, role: S, absorbDTMF: B, mute: B, inhibitConnectedLineUpdates: B },
  removeChannel: { channel: L },
  variable: { variable: S, value: S },
  none: {},
};

// The ARI resource tree (from rest-api/api-docs): path -> method -> handler name. null: the
// resource exists in Asterisk, the fake does not implement it (501).
const API = {
  'asterisk/info': { GET: 'asteriskInfo' },
  'asterisk/ping': { GET: 'asteriskPing' },
  'asterisk/variable': { GET: null, POST: null },
  applications: { GET: 'listApplications' },
  'applications/{applicationName}': { GET: 'getApplication' },
  'applications/{applicationName}/subscription': { POST: null, DELETE: null },
  channels: { GET: 'listChannels', POST: 'originate' },
  'channels/create': { POST: null },
  'channels/externalMedia': { POST: 'externalMedia' },
  'channels/{channelId}': { GET: 'getChannel', POST: 'originateWithId', DELETE: 'hangup' },
  'channels/{channelId}/continue': { POST: null },
  'channels/{channelId}/move': { POST: null },
  'channels/{channelId}/redirect': { POST: null },
  'channels/{channelId}/answer': { POST: 'answer' },
  'channels/{channelId}/ring': { POST: 'ring', DELETE: 'ringStop' },
  'channels/{channelId}/progress': { POST: null },
  'channels/{channelId}/dtmf': { POST: null },
  'channels/{channelId}/mute': { POST: null, DELETE: null },
  'channels/{channelId}/hold': { POST: null, DELETE: null },
  'channels/{channelId}/moh': { POST: 'startMoh', DELETE: 'stopMoh' },
  'channels/{channelId}/silence': { POST: null, DELETE: null },
  'channels/{channelId}/play': { POST: 'play' },
  'channels/{channelId}/play/{playbackId}': { POST: 'play' },
  'channels/{channelId}/record': { POST: null },
  'channels/{channelId}/variable': { GET: 'getVariable', POST: 'setVariable' },
  'channels/{channelId}/variables': { GET: null, POST: null },
  'channels/{channelId}/snoop': { POST: null },
  'channels/{channelId}/snoop/{snoopId}': { POST: null },
  'channels/{channelId}/dial': { POST: null },
  'channels/{channelId}/rtp_statistics': { GET: null },
  'channels/{channelId}/transfer_progress': { POST: null },
  bridges: { GET: 'listBridges', POST: 'createBridge' },
  'bridges/{bridgeId}': { GET: 'getBridge', POST: 'createBridge', DELETE: 'destroyBridge' },
  'bridges/{bridgeId}/variable': { GET: null, POST: null },
  'bridges/{bridgeId}/variables': { GET: null, POST: null },
  'bridges/{bridgeId}/addChannel': { POST: 'addChannel' },
  'bridges/{bridgeId}/removeChannel': { POST: 'removeChannel' },
  'bridges/{bridgeId}/videoSource/{channelId}': { POST: null },
  'bridges/{bridgeId}/videoSource': { DELETE: null },
  'bridges/{bridgeId}/moh': { POST: 'bridgeStartMoh', DELETE: 'bridgeStopMoh' },
  'bridges/{bridgeId}/play': { POST: 'bridgePlay' },
  'bridges/{bridgeId}/play/{playbackId}': { POST: 'bridgePlay' },
  'bridges/{bridgeId}/record': { POST: null },
  playbacks: {},
  'playbacks/{playbackId}': { GET: 'getPlayback', DELETE: 'stopPlayback' },
  'playbacks/{playbackId}/control': { POST: null },
  endpoints: { GET: null },
  recordings: {},
  sounds: { GET: null },
  events: { GET: 'events' },
};

// Resource tree with Asterisk's matching: per segment an explicit child first, else a wildcard.
function buildTree() {
  const root = { children: new Map(), wildcard: null, methods: null };
  for (const [path, methods] of Object.entries(API)) {
    let node = root;
    for (const seg of path.split('/')) {
      const wild = /^\{(.+)\}$/.exec(seg);
      if (wild) {
        node.wildcard ??= { name: wild[1], node: { children: new Map(), wildcard: null, methods: null } };
        node = node.wildcard.node;
      } else {
        if (!node.children.has(seg)) node.children.set(seg, { children: new Map(), wildcard: null, methods: null });
        node = node.children.get(seg);
      }
    }
    node.methods = methods;
  }
  return root;
}
const TREE = buildTree();

function route(segments) {
  let node = TREE;
  const vars = {};
  for (const seg of segments) {
    if (node.children.has(seg)) node = node.children.get(seg);
    else if (node.wildcard) { vars[node.wildcard.name] = seg; node = node.wildcard.node; }
    else return null;
  }
  return node.methods ? { methods: node.methods, vars } : null;
}

// ast_callerid_parse: "Name" <number>, Name <number>, a bare number, or a bare name.
function parseCallerId(s) {
  if (!s) return { name: '', number: '' };
  const m = /^\s*(.*?)\s*<([^>]*)>\s*$/.exec(s);
  let name, number;
  if (m) { name = m[1].replace(/^"(.*)"$/, '$1'); number = m[2]; }
  else if (/^[\s0-9+()*#.-]+$/.test(s)) { name = ''; number = s.trim(); }
  else { name = s.trim().replace(/^"(.*)"$/, '$1'); number = ''; }
  // ast_shrink_phone_number drops the punctuation of a number.
  if (/^[0-9+()\s.-]+$/.test(number)) number = number.replace(/[()\s.-]/g, '');
  return { name, number };
}

// ---- the fake -------------------------------------------------------------------------------

export class FakeAsterisk extends EventEmitter {
  constructor({
    username = 'switchboard', password = 'switchboard-secret', users = [], host = '127.0.0.1', port = 0,
    app = 'switchboard', trunk = 'didww', inboundContext = 'from-trunk', asteriskId = '02:42:ac:11:00:02',
    version = '22.5.2', registeredEvents = true, varsetEvents = true, channelvars = [], tzOffsetMinutes = 0,
    externalMediaStasisStart = 'after', // 'after' the REST reply, 'before' it, or a delay in ms
    rtp = {}, defaultOutcome = { result: 'answer', afterMs: 50 }, playbackMs = 100, restartDownMs = 300,
  } = {}) {
    super();
    this.users = [{ user: username, password, readOnly: false }, ...users.map((u) => ({ readOnly: false, ...u }))];
    this.username = username;
    this.password = password;
    this.host = host;
    this.port = port;
    this.app = app;
    this.trunk = trunk;
    this.inboundContext = inboundContext;
    this.asteriskId = asteriskId;
    this.version = version;
    this.registeredEvents = registeredEvents;
    this.varsetEvents = varsetEvents;
    this.tzOffsetMinutes = tzOffsetMinutes;
    this.reportedVars = new Set(channelvars);
    this.externalMediaStasisStart = externalMediaStasisStart;
    this.rtpOptions = { send: 'bridged', strictLearn: 4, bindHost: '127.0.0.1', ...rtp };
    this.defaultOutcome = defaultOutcome;
    this.playbackMs = playbackMs;
    this.restartDownMs = restartDownMs;

    this.channels = new Map(); // live channels by id (internal records; .json() for the ARI shape)
    this.ended = new Map(); // destroyed channels by id
    this.bridges = new Map();
    this.playbacks = new Map();
    this.legs = new Map(); // ExternalMedia channel id -> RtpLeg (kept after hang-up)
    this.requests = []; // every REST request: { method, path, query, body, params, auth, status, response, at }
    this.events = []; // every event generated, in order; non-enumerable .delivered (bool)
    this.connections = []; // events socket attempts: { apps, subscribeAll, auth, status (101 or the refusal), openedAt, closedAt, closeCode }
    this.wsMessages = []; // text frames clients sent on the events socket
    this.outcomes = []; // [{ match, outcome }] newest first
    this.playbackRules = []; // [{ match, durationMs, fail }]
    this.scripts = []; // REST fault injection
    this.timers = new Set();
    this.sockets = new Set(); // open events WebSockets
    this.owners = new Map(); // app -> the socket that receives its events
    this.up = false;
    this.restarts = 0;
    this.seq = 0;
    this.epoch = Math.floor(Date.now() / 1000);
    this.startedAt = Date.now();
  }

  time(ms = Date.now()) { return ariTime(ms, this.tzOffsetMinutes); }

  get url() { return `http://${this.host}:${this.port}`; }
  get ariUrl() { return `${this.url}/ari`; }
  eventsUrl(app = this.app, { auth = true } = {}) {
    const q = new URLSearchParams({ app });
    if (auth) q.set('api_key', `${this.username}:${this.password}`);
    return `ws://${this.host}:${this.port}/ari/events?${q}`;
  }

  async start() {
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    await this.listen();
    return this;
  }

  async stop() {
    this.up = false;
    this.clearState();
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    await this.closeServer();
    this.wss?.close();
  }

  async listen() {
    for (let attempt = 0; ; attempt++) {
      const server = http.createServer((req, res) => this.onRequest(req, res));
      server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
      try {
        await new Promise((resolve, reject) => {
          server.once('error', reject);
          server.listen(this.port, this.host, () => { server.off('error', reject); resolve(); });
        });
      } catch (e) {
        if (e.code === 'EADDRINUSE' && this.port && attempt < 50) { await sleep(20); continue; }
        throw e;
      }
      this.server = server;
      this.port = server.address().port;
      this.up = true;
      return;
    }
  }

  async closeServer() {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise((r) => server.close(r));
    server.closeAllConnections?.();
    // Upgraded sockets keep the server's close callback waiting; they are terminated elsewhere.
    await Promise.race([closed, sleep(200)]);
  }

  // Asterisk restarting: events sockets closed (1001 Going Away, or dropped without a close
  // frame with abrupt), every channel, bridge and RTP socket forgotten, connections refused for
  // downMs, then a fresh Asterisk on the same port. Resolves once it accepts again.
  async restart({ downMs = this.restartDownMs, closeCode = 1001, reason = 'Asterisk restarting', abrupt = false } = {}) {
    this.up = false;
    for (const ws of this.sockets) {
      if (abrupt) ws.terminate();
      else { ws.close(closeCode, reason); const t = setTimeout(() => ws.terminate(), 1000); ws.once('close', () => clearTimeout(t)); }
    }
    this.sockets.clear();
    this.owners.clear();
    this.clearState();
    await this.closeServer();
    this.restarts++;
    this.emit('down');
    await sleep(downMs);
    this.epoch = Math.floor(Date.now() / 1000);
    this.startedAt = Date.now();
    await this.listen();
    this.emit('up');
    return this;
  }

  clearState() {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const leg of this.legs.values()) leg.close();
    this.channels.clear();
    this.bridges.clear();
    this.playbacks.clear();
  }

  timer(fn, ms) {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
    return t;
  }

  cancel(t) { clearTimeout(t); this.timers.delete(t); }

  // Forget what was logged (requests, events, ended channels, legs); live state stays.
  resetLog() {
    this.requests.length = 0;
    this.events.length = 0;
    this.ended.clear();
    for (const [id, leg] of this.legs) if (leg.closed) this.legs.delete(id);
  }

  // ---- scripting -----------------------------------------------------------------------------

  // What happens to channels originated to `endpoint` (exact dial string, or a RegExp):
  //   result 'answer'   ringing, then Up and StasisStart (args from appArgs)
  //          'busy'     Dial BUSY, ChannelDestroyed cause 17
  //          'noanswer' ringing until the originate's timeout (or afterMs), ChannelDestroyed 19
  //          'failed'   ChannelHangupRequest, Dial CONGESTION, ChannelDestroyed 34 (or `cause`)
  //          'rejected' ChannelDestroyed 21
  //   afterMs (from the POST to the outcome), ringMs (ringing: ChannelStateChange Ringing and
  //   Dial RINGING; false: no ringing), cause (overrides the cause of a failure).
  // An answer that would come after the originate's timeout is a no-answer, as in Asterisk.
  setOutcome(match, outcome) {
    this.outcomes = this.outcomes.filter((o) => String(o.match) !== String(match));
    if (outcome) this.outcomes.unshift({ match, outcome: { ...outcome } });
  }

  outcomeFor(endpoint) {
    const o = this.outcomes.find(({ match }) => (match instanceof RegExp ? match.test(endpoint) : match === endpoint));
    return { ...(o ? o.outcome : this.defaultOutcome) };
  }

  // How long playbacks of a media URI (exact or RegExp) last, or that they fail.
  setPlayback(match, { durationMs, fail = false } = {}) {
    this.playbackRules.unshift({ match, durationMs, fail });
  }

  // Fault injection for the next matching REST request(s): { method, path (string: exact path
  // after /ari, or RegExp), status, message, delayMs, drop, times = 1 }. With only delayMs the
  // request is then handled normally.
  script(rule) { this.scripts.push({ times: 1, ...rule }); }

  // ---- waiting ---------------------------------------------------------------------------------

  // waitFor(predicate, ms) polls; waitFor('EventType', ms) finds the first such event logged.
  waitFor(what, ms = 5000) {
    if (typeof what === 'string') return this.waitForEvent(what, { timeoutMs: ms });
    return waitFor(what, ms);
  }

  // The first event of `type` at index >= since that `where` accepts.
  waitForEvent(type, { where = () => true, since = 0, timeoutMs = 5000 } = {}) {
    return waitFor(() => this.events.slice(since).find((e) => e.type === type && where(e)), timeoutMs);
  }

  // The next event of `type` from now on.
  nextEvent(type, opts = {}) { return this.waitForEvent(type, { ...opts, since: this.events.length }); }

  // Events about one channel (event.channel.id or a Dial's peer), in order.
  eventsFor(channelId) {
    return this.events.filter((e) => e.channel?.id === channelId || e.peer?.id === channelId);
  }

  waitForApp(app = this.app, ms = 5000) { return waitFor(() => this.owners.get(app)?.readyState === 1, ms); }

  // The n-th ExternalMedia leg created (default: the first not yet waited for).
  async waitForLeg({ index, timeoutMs = 5000 } = {}) {
    const i = index ?? (this.legWaited = (this.legWaited ?? 0) + 1) - 1;
    await waitFor(() => this.legs.size > i, timeoutMs);
    return [...this.legs.values()][i];
  }

  rtp(channelId) { return this.legs.get(channelId); }

  // ---- far-end actions ---------------------------------------------------------------------------

  // A call arrives from the trunk (DIDWW puts the DID in the Request-URI: dialplan.exten) and the
  // dialplan runs Stasis(app[,args]). If no events socket has the app, Stasis fails and the
  // channel is hung up without an event (its record ends up in `ended`, stasisStatus 'FAILED').
  async inboundCall({
    from = '+15551230001', to = '+15557650000', callerName = '', args = [], app = this.app,
    endpoint = this.trunk, context = this.inboundContext, language = 'en', vars = {}, channelId,
  } = {}) {
    const argv = [].concat(args).map(String);
    const ch = this.newChannel({
      id: channelId, kind: 'inbound', name: `PJSIP/${endpoint}-${this.nameSeq()}`, state: 'Ring',
      protocol_id: `${randomBytes(12).toString('hex')}@${this.host}`,
      caller: { name: callerName, number: from }, language,
      dialplan: { context, exten: to, priority: 1, app_name: 'Stasis', app_data: [app, ...argv].join(',') },
    });
    Object.assign(ch.vars, vars);
    this.enterStasis(ch, app, argv);
    return ch.json();
  }

  // The caller presses a key (ChannelDtmfReceived to the apps watching the channel).
  dtmf(channelId, digit, { durationMs = 100 } = {}) {
    const ch = this.mustChannel(channelId);
    if (!/^[0-9*#A-D]$/.test(digit)) throw new Error(`dtmf: bad digit ${digit}`);
    this.channelEvent(ch, { type: 'ChannelDtmfReceived', digit, duration_ms: durationMs, channel: ch.json() });
  }

  // The far end hangs up (a BYE): ChannelHangupRequest {cause}, ChannelLeftBridge when bridged,
  // StasisEnd when in the app, ChannelDestroyed {cause, cause_txt}. A channel still ringing
  // (originated) ends its dial with a Dial event first.
  hangup(channelId, cause = CAUSE.NORMAL, { techCause } = {}) {
    const ch = this.mustChannel(channelId);
    const request = { cause };
    if (techCause) request.tech_cause = techCause;
    this.destroyChannel(ch, { cause, request });
  }

  // The caller answers a channel that is ringing in the app (rarely needed: inbound calls are
  // answered by switchboard's POST .../answer).
  setState(channelId, state) {
    const ch = this.mustChannel(channelId);
    this.changeState(ch, state);
  }

  mustChannel(id) {
    const ch = this.channels.get(id);
    if (!ch) throw new Error(`no live channel ${id}`);
    return ch;
  }

  // ---- channels, bridges, events -------------------------------------------------------------------

  nameSeq() { return (++this.seq).toString(16).padStart(8, '0'); }

  newChannel({ id, kind, name, state = 'Down', protocol_id = '', caller, connected, dialplan, language = 'en' }) {
    const fake = this;
    const uid = id || `${this.epoch}.${++this.seq}`;
    const ch = {
      id: uid, kind, name, state, protocol_id, accountcode: '', language,
      caller: { name: '', number: '', ...caller }, connected: { name: '', number: '', ...connected },
      dialplan: { context: 'default', exten: 's', priority: 1, app_name: '', app_data: '', ...dialplan },
      creationtime: this.time(), createdAt: Date.now(), vars: {}, reported: new Set(),
      apps: new Set(), // apps subscribed to its events
      app: null, inStasis: false, stasisStatus: null, bridge: null, moh: null, ringing: false,
      dial: null, destroyed: false, cause: null, answeredAt: null,
      json() {
        const j = {
          id: this.id, name: this.name, state: this.state, protocol_id: this.protocol_id,
          caller: { ...this.caller }, connected: { ...this.connected }, accountcode: this.accountcode,
          dialplan: { ...this.dialplan }, creationtime: this.creationtime, language: this.language,
        };
        const vars = Object.entries(this.vars).filter(([k]) => fake.reportedVars.has(k) || this.reported.has(k));
        if (vars.length) j.channelvars = Object.fromEntries(vars);
        return j;
      },
    };
    this.channels.set(uid, ch);
    return ch;
  }

  findChannel(idOrName) {
    const ch = this.channels.get(idOrName);
    if (ch) return ch;
    for (const c of this.channels.values()) if (c.name === idOrName) return c;
    return null;
  }

  bridgeJson(b) {
    return {
      id: b.id, technology: b.bridge_type === 'holding' ? 'holding_bridge' : b.channels.length > 2 ? 'softmix' : 'simple_bridge',
      bridge_type: b.bridge_type, bridge_class: 'stasis', creator: 'Stasis', name: b.name,
      channels: [...b.channels], creationtime: b.creationtime, video_mode: b.video_mode,
    };
  }

  // One event to one app: delivered to the socket that owns the app, logged either way.
  send(app, body, ws = this.owners.get(app)) {
    const ev = { ...body, timestamp: body.timestamp ?? this.time(), asterisk_id: this.asteriskId, application: app };
    const delivered = !!ws && ws.readyState === 1;
    if (delivered) ws.send(JSON.stringify(ev));
    Object.defineProperty(ev, 'delivered', { value: delivered });
    this.events.push(ev);
    this.emit('event', ev);
    return ev;
  }

  channelEvent(ch, body, extraApps = []) {
    const apps = new Set([...ch.apps, ...extraApps]);
    for (const app of apps) this.send(app, body);
  }

  changeState(ch, state) {
    if (ch.state === state) return;
    ch.state = state;
    if (state === 'Up') ch.answeredAt ??= Date.now();
    this.channelEvent(ch, { type: 'ChannelStateChange', channel: ch.json() });
  }

  appRegistered(app) { return this.owners.get(app)?.readyState === 1; }

  // Stasis(app,args) on a channel: StasisStart, or, with no app registered, the failure.
  enterStasis(ch, app, args) {
    if (!this.appRegistered(app)) {
      ch.stasisStatus = 'FAILED';
      this.destroyChannel(ch, { cause: CAUSE.NORMAL, quiet: true });
      return false;
    }
    // app_stasis.c clears STASISSTATUS first: apps already watching the channel (originated and
    // ExternalMedia channels) see a ChannelVarset before StasisStart; switchboard must skip it.
    ch.vars.STASISSTATUS = '';
    if (this.varsetEvents) this.channelEvent(ch, { type: 'ChannelVarset', variable: 'STASISSTATUS', value: '', channel: ch.json() });
    ch.app = app;
    ch.inStasis = true;
    ch.stasisStatus = 'RUNNING';
    ch.apps.add(app);
    ch.dialplan.app_name = 'Stasis';
    ch.dialplan.app_data = [app, ...args].join(',');
    this.send(app, { type: 'StasisStart', args, channel: ch.json() });
    if (ch.kind === 'externalMedia' && this.rtpOptions.send === 'always') this.legs.get(ch.id)?.start();
    return true;
  }

  destroyChannel(ch, { cause = CAUSE.NORMAL, request = null, quiet = false } = {}) {
    if (ch.destroyed) return;
    ch.cause = cause;
    if (!quiet && request) this.channelEvent(ch, { type: 'ChannelHangupRequest', ...request, channel: ch.json() });
    if (ch.dial) {
      for (const t of ch.dial.timers) this.cancel(t);
      if (!quiet && request) this.channelEvent(ch, { type: 'Dial', dialstatus: dialStatusFor(cause), forward: '', dialstring: ch.dial.dialstring, peer: ch.json() });
      ch.dial = null;
    }
    for (const pb of [...this.playbacks.values()]) if (pb.target === `channel:${ch.id}`) this.finishPlayback(pb, 'done');
    if (ch.bridge) this.leaveBridge(ch, this.bridges.get(ch.bridge), { quiet });
    if (ch.inStasis) {
      ch.inStasis = false;
      ch.stasisStatus = 'SUCCESS';
      if (!quiet) this.send(ch.app, { type: 'StasisEnd', channel: ch.json() });
    }
    ch.destroyed = true;
    if (!quiet) this.channelEvent(ch, { type: 'ChannelDestroyed', cause, cause_txt: CAUSE_TEXT[cause] ?? 'Unknown', channel: ch.json() });
    this.legs.get(ch.id)?.close();
    this.channels.delete(ch.id);
    this.ended.set(ch.id, ch);
    this.emit('channel-destroyed', ch);
  }

  bridgeApps(b, ch) { return new Set([...b.subs.keys(), ...(ch ? ch.apps : [])]); }

  joinBridge(ch, b) {
    if (ch.bridge) this.leaveBridge(ch, this.bridges.get(ch.bridge));
    ch.bridge = b.id;
    b.channels.push(ch.id);
    if (ch.app) b.subs.set(ch.app, (b.subs.get(ch.app) ?? 0) + 1);
    const body = { type: 'ChannelEnteredBridge', bridge: this.bridgeJson(b), channel: ch.json() };
    for (const app of this.bridgeApps(b, ch)) this.send(app, body);
    this.updateStreams(b);
  }

  leaveBridge(ch, b, { quiet = false } = {}) {
    if (!b) { ch.bridge = null; return; }
    b.channels = b.channels.filter((id) => id !== ch.id);
    ch.bridge = null;
    if (!quiet) {
      const body = { type: 'ChannelLeftBridge', bridge: this.bridgeJson(b), channel: ch.json() };
      for (const app of this.bridgeApps(b, ch)) this.send(app, body);
    }
    const n = (b.subs.get(ch.app) ?? 0) - 1;
    if (n > 0) b.subs.set(ch.app, n);
    else b.subs.delete(ch.app);
    if (this.rtpOptions.send === 'bridged') this.legs.get(ch.id)?.stop();
    this.updateStreams(b);
  }

  // A bridge feeds an ExternalMedia channel while it has company.
  updateStreams(b) {
    if (this.rtpOptions.send !== 'bridged') return;
    for (const id of b.channels) {
      const leg = this.legs.get(id);
      if (!leg) continue;
      if (b.channels.length >= 2) leg.start();
      else leg.stop();
    }
  }

  // ---- originate ---------------------------------------------------------------------------------

  // The dial of an originated channel, as main/dial.c runs it (async: Dial events have no caller).
  startDial(ch, { timeoutMs, outcome, app, args }) {
    const o = outcome;
    const dial = { dialstring: ch.dial.dialstring, timers: [] };
    ch.dial = dial;
    const at = (ms, fn) => dial.timers.push(this.timer(fn, ms));
    const dialEvent = (status) => this.channelEvent(ch, { type: 'Dial', dialstatus: status, forward: '', dialstring: dial.dialstring, peer: ch.json() });
    dialEvent('');
    let result = o.result ?? 'answer';
    let afterMs = o.afterMs ?? 50;
    if (result === 'noanswer') afterMs = o.afterMs ?? timeoutMs;
    else if (timeoutMs >= 0 && afterMs >= timeoutMs) { result = 'noanswer'; afterMs = timeoutMs; }
    const ringMs = o.ringMs === false ? null : o.ringMs ?? Math.min(10, afterMs / 2);
    if (ringMs !== null && ['answer', 'noanswer', 'busy'].includes(result)) {
      at(ringMs, () => { this.changeState(ch, 'Ringing'); dialEvent('RINGING'); });
    }
    if (afterMs < 0) return; // timeout -1: rings for ever
    at(afterMs, () => {
      ch.dial = null;
      switch (result) {
        case 'answer':
          this.changeState(ch, 'Up');
          dialEvent('ANSWER');
          if (app) this.enterStasis(ch, app, args);
          break;
        case 'busy':
          dialEvent('BUSY');
          this.destroyChannel(ch, { cause: o.cause ?? CAUSE.BUSY });
          break;
        case 'noanswer':
          this.destroyChannel(ch, { cause: CAUSE.NO_ANSWER });
          break;
        case 'rejected':
        case 'failed': {
          const cause = o.cause ?? (result === 'rejected' ? CAUSE.REJECTED : CAUSE.CONGESTION);
          this.channelEvent(ch, { type: 'ChannelHangupRequest', cause, channel: ch.json() });
          dialEvent(dialStatusFor(cause));
          this.destroyChannel(ch, { cause });
          break;
        }
        default:
          throw new Error(`setOutcome: unknown result ${result}`);
      }
    });
  }

  // ---- HTTP ----------------------------------------------------------------------------------------

  authenticate(req, query) {
    let user = null, password = null, via = null;
    const h = req.headers.authorization;
    if (h && /^Basic\s+/i.test(h)) {
      const dec = Buffer.from(h.replace(/^Basic\s+/i, ''), 'base64').toString();
      const i = dec.indexOf(':');
      if (i >= 0) { user = dec.slice(0, i); password = dec.slice(i + 1); via = 'basic'; }
    }
    if (!via && query.api_key) {
      const i = query.api_key.indexOf(':');
      if (i >= 0 && query.api_key.slice(i + 1)) { user = query.api_key.slice(0, i); password = query.api_key.slice(i + 1); via = 'api_key'; }
    }
    const u = via ? this.users.find((x) => x.user === user && x.password === password) : null;
    return { user, password, via, ok: !!u, readOnly: !!u?.readOnly };
  }

  async onRequest(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://x');
    const query = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const rec = { method: req.method, path: url.pathname, query, body: null, params: null, auth: null, headers: { ...req.headers }, status: 0, response: null, at: Date.now() };
    this.requests.push(rec);
    const reply = (status, body, headers = {}) => {
      rec.status = status;
      rec.response = body;
      const h = { Server: `Asterisk/${this.version}`, 'Cache-Control': 'no-cache, no-store', ...headers };
      if (status === 204 || body === undefined) { res.writeHead(status, h); res.end(); }
      else {
        const text = JSON.stringify(body);
        res.writeHead(status, { ...h, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      }
      this.emit('request', rec);
    };
    const error = (status, message, headers) => reply(status, { message }, headers);

    if (!url.pathname.startsWith('/ari/') && url.pathname !== '/ari') {
      rec.status = 404;
      res.writeHead(404, { 'Content-Type': 'text/html' });
      return res.end(htmlError(404, 'Not Found', 'The requested URL was not found on this server.'));
    }
    // Form bodies are merged with the query (the query wins); a JSON body is read as such.
    const ctype = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    let json = null;
    if (raw.length && ctype === 'application/x-www-form-urlencoded') {
      const form = Object.fromEntries(new URLSearchParams(raw.toString()));
      for (const [k, v] of Object.entries(form)) if (!(k in query)) query[k] = v;
      rec.body = form;
    } else if (raw.length && ctype === 'application/json') {
      try { json = JSON.parse(raw.toString()); rec.body = json; } catch { rec.body = raw.toString(); }
    } else if (raw.length) rec.body = raw.toString();

    const auth = this.authenticate(req, query);
    rec.auth = { user: auth.user, password: auth.password, via: auth.via, ok: auth.ok };
    if (!auth.ok) return error(401, 'Authentication required', { 'WWW-Authenticate': `Basic realm="${REALM}"` });
    if (auth.readOnly && !['GET', 'OPTIONS'].includes(req.method)) return error(403, 'Write access denied');
    const rel = url.pathname.slice('/ari/'.length);
    if (rel.endsWith('/') || url.pathname === '/ari') return error(404, `ARI URLs do not end with a slash. Try /ari/${rel.replace(/\/+$/, '')}`);
    if (raw.length && ctype === 'application/json' && json === null) return error(400, 'Error parsing request body');

    for (const s of this.scripts) {
      if (s.times <= 0) continue;
      if (s.method && s.method !== req.method) continue;
      const p = '/' + rel;
      if (s.path && !(s.path instanceof RegExp ? s.path.test(p) : s.path === p)) continue;
      s.times--;
      if (s.delayMs) await sleep(s.delayMs);
      if (s.drop) { rec.status = 'dropped'; return req.socket.destroy(); }
      if (s.status) return error(s.status, s.message ?? http.STATUS_CODES[s.status]);
      break;
    }

    const segs = rel.split('/').map((s) => { try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch { return s; } });
    const r = route(segs);
    if (!r) return error(404, 'Resource not found');
    const allow = 'OPTIONS,' + Object.keys(r.methods).join(',');
    if (!(req.method in r.methods)) return error(405, 'Invalid method', { Allow: allow });
    const name = r.methods[req.method];
    if (name === 'events') { // a plain GET without the upgrade (res_http_websocket)
      rec.status = 426;
      res.writeHead(426, { 'Content-Type': 'text/html' });
      return res.end(htmlError(426, 'Upgrade Required', ''));
    }
    if (!name) return error(501, `${req.method} /ari/${rel} is not implemented by the fake Asterisk`);
    const ctx = { req, query, json, vars: r.vars, rec, reply, error, params: (spec) => (rec.params = readParams(PARAMS[spec], query, json)) };
    try {
      await this[`h_${name}`](ctx);
    } catch (e) {
      if (!res.headersSent) error(500, `fake Asterisk: ${e.message}`);
      this.emit('error-internal', e);
    }
  }

  // ---- REST handlers ---------------------------------------------------------------------------

  h_asteriskInfo({ reply }) {
    reply(200, {
      build: { os: 'Linux', kernel: '6.1.0', machine: 'x86_64', options: '', date: '2026-01-01 00:00:00 UTC', user: 'fake' },
      system: { version: this.version, entity_id: this.asteriskId },
      config: { name: '', default_language: 'en', setid: { user: '', group: '' } },
      status: { startup_time: this.time(this.startedAt), last_reload_time: this.time(this.startedAt) },
    });
  }

  h_asteriskPing({ reply }) { reply(200, { asterisk_id: this.asteriskId, ping: 'pong', timestamp: this.time() }); }

  h_listApplications({ reply }) { reply(200, [...this.owners.keys()].map((name) => this.appJson(name))); }

  h_getApplication({ vars, reply, error }) {
    if (!this.owners.has(vars.applicationName)) return error(404, 'Application not found');
    reply(200, this.appJson(vars.applicationName));
  }

  appJson(name) {
    const ch = [...this.channels.values()].filter((c) => c.apps.has(name)).map((c) => c.id);
    const br = [...this.bridges.values()].filter((b) => b.subs.has(name)).map((b) => b.id);
    return { name, channel_ids: ch, bridge_ids: br, endpoint_ids: [], device_names: [], events_allowed: [], events_disallowed: [] };
  }

  h_listChannels({ reply }) { reply(200, [...this.channels.values()].map((c) => c.json())); }

  h_getChannel({ vars, reply, error }) {
    const ch = this.channels.get(vars.channelId); // ast_channel_snapshot_get_latest: by id only
    if (!ch) return error(404, 'Channel not found');
    reply(200, ch.json());
  }

  // find_control + channel_state_invalid (resource_channels.c).
  control(ctx, { stateCheck = true } = {}) {
    const id = ctx.vars.channelId;
    const ch = this.channels.get(id);
    if (!ch || !ch.inStasis) {
      if (!this.findChannel(id)) { ctx.error(404, 'Channel not found'); return null; }
      ctx.error(409, 'Channel not in Stasis application');
      return null;
    }
    if (stateCheck && ['Down', 'Rsrvd', 'Ringing'].includes(ch.state)) { ctx.error(412, 'Channel in invalid state'); return null; }
    return ch;
  }

  h_answer(ctx) {
    ctx.params('none');
    const ch = this.control(ctx);
    if (!ch) return;
    ctx.reply(204);
    this.changeState(ch, 'Up');
  }

  h_ring(ctx) {
    const ch = this.control(ctx);
    if (!ch) return;
    ch.ringing = true;
    ctx.reply(204);
  }

  h_ringStop(ctx) {
    const ch = this.control(ctx);
    if (!ch) return;
    ch.ringing = false;
    ctx.reply(204);
  }

  h_startMoh(ctx) {
    const p = ctx.params('moh');
    const ch = this.control(ctx);
    if (!ch) return;
    ch.moh = p.mohClass || 'default';
    ctx.reply(204);
  }

  h_stopMoh(ctx) {
    const ch = this.control(ctx);
    if (!ch) return;
    ch.moh = null;
    ctx.reply(204);
  }

  h_getVariable(ctx) {
    const p = ctx.params('variable');
    if (!p.variable) return ctx.error(400, 'Variable name is required');
    const ch = this.findChannel(ctx.vars.channelId);
    if (!ch) return ctx.error(404, 'Provided channel was not found');
    if (!(p.variable in ch.vars)) return ctx.error(404, 'Provided variable was not found');
    ctx.reply(200, { value: ch.vars[p.variable] });
  }

  h_setVariable(ctx) {
    const p = ctx.params('variable');
    if (!p.variable) return ctx.error(400, 'Variable name is required');
    const ch = this.control(ctx, { stateCheck: false });
    if (!ch) return;
    ch.vars[p.variable] = p.value ?? '';
    ctx.reply(204);
  }

  // DELETE /channels/{id}: ast_channel_get_by_name (id or name), then reason checks.
  h_hangup(ctx) {
    const p = ctx.params('hangup');
    const ch = this.findChannel(ctx.vars.channelId);
    if (!ch) return ctx.error(404, 'Channel not found');
    if (p.reason && p.reason_code) return ctx.error(400, "The reason and reason_code can't both be specified");
    let cause = CAUSE.NORMAL;
    if (p.reason_code) {
      if (!/^\s*[+-]?\d/.test(p.reason_code)) return ctx.error(400, 'Invalid reason for hangup reason code provided');
      cause = atoi(p.reason_code);
    } else if (p.reason) {
      if (!(p.reason in HANGUP_REASONS)) return ctx.error(400, 'Invalid reason for hangup reason provided');
      cause = HANGUP_REASONS[p.reason];
    }
    // ast_softhangup publishes the hang-up request at once (its "cause" is the soft-hang-up
    // flag, 32); the channel then leaves its bridge, Stasis, and is destroyed.
    this.channelEvent(ch, { type: 'ChannelHangupRequest', cause: SOFTHANGUP_EXPLICIT, soft: true, channel: ch.json() });
    ctx.reply(204);
    this.timer(() => this.destroyChannel(ch, { cause }), 0);
    if (ch.dial) {
      // A ringing originated channel: its dial ends with a Dial event (status from the cause).
      for (const t of ch.dial.timers) this.cancel(t);
      const dialstring = ch.dial.dialstring;
      ch.dial = null;
      this.channelEvent(ch, { type: 'Dial', dialstatus: dialStatusFor(cause), forward: '', dialstring, peer: ch.json() });
    }
  }

  h_originateWithId(ctx) { return this.h_originate(ctx, ctx.vars.channelId); }

  // POST /channels (ari_channels_handle_originate_with_id): the reply is the new channel in state
  // Down; the dial runs afterwards (see setOutcome).
  h_originate(ctx, pathId) {
    const p = ctx.params('originate');
    if (pathId) p.channelId = pathId;
    if (p.channelId && p.channelId.length > 149) return ctx.error(400, 'Uniqueid length exceeds maximum of 149');
    if (p.otherChannelId && p.otherChannelId.length > 149) return ctx.error(400, 'Uniqueid length exceeds maximum of 149');
    if (!p.endpoint) return ctx.error(400, 'Endpoint must be specified');
    if (p.originator && p.formats) return ctx.error(400, "Originator and formats can't both be specified");
    const slash = p.endpoint.indexOf('/');
    const tech = slash < 0 ? p.endpoint : p.endpoint.slice(0, slash);
    const device = slash < 0 ? '' : p.endpoint.slice(slash + 1);
    if (!tech || !device) return ctx.error(400, 'Invalid endpoint specified');
    if (!p.app && !p.extension) return ctx.error(400, 'Application or extension must be specified');
    if (p.originator && !this.findChannel(p.originator)) return ctx.error(400, 'Provided originator channel was not found');
    if (p.formats) for (const f of p.formats.split(',').map((x) => x.trim())) if (!FORMATS[f]) return ctx.error(400, `Provided format (${f}) was not found`);
    if (p.channelId && this.channels.has(p.channelId)) return ctx.error(409, 'Channel with given unique ID already exists');
    if (!TECHS.has(tech)) return ctx.reply(500, { error: 'Allocation failed' });
    const cid = parseCallerId(p.callerId);
    // chan_pjsip names a channel after its endpoint: PJSIP/2000, PJSIP/+1555...@didww and
    // PJSIP/didww/sip:... give PJSIP/2000-..., PJSIP/didww-..., PJSIP/didww-...
    const endpointName = tech === 'PJSIP' ? (device.includes('@') ? device.slice(device.indexOf('@') + 1) : device.split('/')[0]) : device.split('/')[0];
    const ch = this.newChannel({
      id: p.channelId, kind: 'originated', state: 'Down',
      name: `${tech}/${endpointName}-${this.nameSeq()}`,
      protocol_id: tech === 'PJSIP' ? `${randomBytes(12).toString('hex')}@${this.host}` : '',
      caller: cid, connected: cid,
    });
    ch.endpoint = p.endpoint;
    ch.originate = { ...p };
    if (ctx.json?.variables && typeof ctx.json.variables === 'object') Object.assign(ch.vars, ctx.json.variables);
    if (p.app) ch.apps.add(p.app); // stasis_app_subscribe_channel before the dial
    ch.dial = { dialstring: device, timers: [] };
    ctx.reply(200, ch.json());
    const timeoutMs = p.timeout > 0 ? p.timeout * 1000 : p.timeout === -1 ? -1 : 30000;
    const args = p.appArgs ? separateArgs(p.appArgs) : [];
    this.timer(() => {
      if (ch.destroyed || !ch.dial) return; // hung up before the dial started
      this.startDial(ch, { timeoutMs, outcome: this.outcomeFor(p.endpoint), app: p.app, args });
    }, 0);
  }

  // POST /channels/externalMedia: the checks of ast_ari_channels_external_media in their order,
  // then, for rtp/udp, an originate of UnicastRTP/HOST:PORT/c(FORMAT) into the app. The reply
  // carries the channel's variables (UNICASTRTP_LOCAL_ADDRESS/PORT); its StasisStart (args
  // [data], split at commas as Stasis() does) follows.
  async h_externalMedia(ctx) {
    const p = ctx.params('externalMedia');
    if (!p.app) return ctx.error(400, 'app cannot be empty');
    const transport = p.transport || 'udp';
    const encapsulation = p.encapsulation || 'rtp';
    if (transport === 'websocket' && encapsulation !== 'none') return ctx.error(400, "encapsulation must be 'none' for websocket transport");
    if (encapsulation === 'rtp' && transport !== 'udp') return ctx.error(400, "transport must be 'udp' for rtp encapsulation");
    if (encapsulation === 'audiosocket' && transport !== 'tcp') return ctx.error(400, "transport must be 'tcp' for audiosocket encapsulation");
    const connectionType = p.connection_type || 'client';
    if (transport !== 'websocket' && connectionType === 'server') return ctx.error(400, "'server' connection_type can only be used with the websocket transport");
    if (!p.external_host && connectionType === 'client') return ctx.error(400, 'external_host is required for all but websocket server connections');
    let host, port;
    if (transport === 'websocket') {
      if (connectionType === 'client') return ctx.error(400, 'external_host must be a valid websocket_client connection id.');
    } else {
      const m = /^\[([^\]]+)\]:(\d+)$/.exec(p.external_host) ?? /^([^:[\]]+):(\d+)$/.exec(p.external_host);
      if (!m || +m[2] > 65535) return ctx.error(400, 'external_host must be <host>:<port> for all transports other than websocket');
      host = m[1];
      port = +m[2];
    }
    if (!p.format) return ctx.error(400, 'format cannot be empty');
    if (p.direction && !['both', 'in', 'out'].includes(p.direction)) return ctx.error(400, 'Invalid direction specified');
    if (encapsulation === 'audiosocket' && transport === 'tcp' && !p.data) return ctx.error(400, 'data can not be empty');
    if (!(encapsulation === 'rtp' && transport === 'udp')) {
      if (['audiosocket', 'none'].includes(encapsulation)) return ctx.error(501, `${encapsulation}/${transport} is not implemented by the fake Asterisk`);
      return ctx.error(501, 'The encapsulation and/or transport is not supported');
    }
    if (p.channelId && p.channelId.length > 149) return ctx.error(400, 'Uniqueid length exceeds maximum of 149');
    if (!FORMATS[p.format]) return ctx.error(400, `Provided format (${p.format}) was not found`);
    if (p.channelId && this.channels.has(p.channelId)) return ctx.error(409, 'Channel with given unique ID already exists');

    const ch = this.newChannel({
      id: p.channelId, kind: 'externalMedia', state: 'Down',
      name: `UnicastRTP/${p.external_host}-0x${randomBytes(6).toString('hex')}`,
    });
    const leg = new RtpLeg(this, ch, { host, port, format: p.format, policy: this.rtpOptions.send, strictLearn: this.rtpOptions.strictLearn, bindHost: this.rtpOptions.bindHost });
    this.legs.set(ch.id, leg);
    ch.rtp = leg;
    ch.externalMedia = { ...p, transport, encapsulation, connection_type: connectionType };
    try {
      await leg.open();
    } catch (e) {
      this.channels.delete(ch.id);
      this.legs.delete(ch.id);
      return ctx.error(500, 'An internal error prevented this request from being handled');
    }
    this.emit('leg', leg);
    if (ctx.json?.variables && typeof ctx.json.variables === 'object') Object.assign(ch.vars, ctx.json.variables);
    ch.vars.UNICASTRTP_LOCAL_ADDRESS = leg.local.address;
    ch.vars.UNICASTRTP_LOCAL_PORT = String(leg.local.port);
    ch.apps.add(p.app);
    ch.dial = { dialstring: `${p.external_host}/c(${p.format})`, timers: [] };
    const body = ch.json();
    body.channelvars = { ...ch.vars }; // the reply lists all the channel's variables
    const args = p.data ? separateArgs(p.data) : [];
    // chan_rtp answers at once: Dial, Up, Dial ANSWER, then Stasis.
    const run = () => {
      if (ch.destroyed || !ch.dial) return;
      const dialstring = ch.dial.dialstring;
      ch.dial = null;
      const dial = (status) => this.channelEvent(ch, { type: 'Dial', dialstatus: status, forward: '', dialstring, peer: ch.json() });
      dial('');
      this.changeState(ch, 'Up');
      dial('ANSWER');
      this.enterStasis(ch, p.app, args);
    };
    const when = this.externalMediaStasisStart;
    if (when === 'before') run();
    ctx.reply(200, body);
    if (when === 'after') this.timer(run, 0);
    else if (typeof when === 'number') this.timer(run, when);
  }

  // ---- playbacks ----

  h_play(ctx) {
    const p = ctx.params('play');
    if (ctx.vars.playbackId) p.playbackId = ctx.vars.playbackId;
    const ch = this.control(ctx);
    if (!ch) return;
    if (p.skipms < 0) return ctx.error(400, 'skipms cannot be negative');
    if (p.offsetms < 0) return ctx.error(400, 'offsetms cannot be negative');
    this.startPlayback(ctx, { ...p, target: `channel:${ch.id}`, apps: ch.apps, language: p.lang || ch.language });
  }

  h_bridgePlay(ctx) {
    const p = ctx.params('play');
    if (ctx.vars.playbackId) p.playbackId = ctx.vars.playbackId;
    const b = this.bridges.get(ctx.vars.bridgeId);
    if (!b) return ctx.error(404, 'Bridge not found');
    this.startPlayback(ctx, { ...p, target: `bridge:${b.id}`, apps: b.subs.keys(), language: p.lang || 'en' });
  }

  startPlayback(ctx, { media = [], playbackId, target, apps, language, skipms, offsetms }) {
    // stasis_app_control_play_uri returns NULL on no media: the handler answers 500.
    if (!media.length || media.some((m) => !m)) return ctx.error(500, 'Failed to queue media for playback');
    if (playbackId && this.playbacks.has(playbackId)) return ctx.error(500, 'Failed to queue media for playback');
    const id = playbackId || randomUUID();
    const pb = { id, medias: [...media], index: 0, target, language, state: 'queued', apps: new Set(apps), timers: [], skipms, offsetms, startedAt: null };
    pb.json = () => {
      const j = { id: pb.id, media_uri: pb.medias[pb.index] };
      if (pb.index < pb.medias.length - 1) j.next_media_uri = pb.medias[pb.index + 1];
      Object.assign(j, { target_uri: pb.target, language: pb.language, state: pb.state });
      return j;
    };
    this.playbacks.set(id, pb);
    ctx.reply(201, pb.json(), { Location: `/ari/playbacks/${id}` });
    const step = () => {
      if (!this.playbacks.has(id)) return;
      const uri = pb.medias[pb.index];
      const rule = this.playbackRules.find(({ match }) => (match instanceof RegExp ? match.test(uri) : match === uri));
      if (rule?.fail || !/^(sound|recording|number|digits|characters|tone):/.test(uri)) return this.finishPlayback(pb, 'failed');
      pb.state = pb.index === 0 ? 'playing' : 'continuing';
      pb.startedAt ??= Date.now();
      this.playbackEvent(pb, pb.index === 0 ? 'PlaybackStarted' : 'PlaybackContinuing');
      pb.timers.push(this.timer(() => {
        if (pb.index < pb.medias.length - 1) { pb.index++; step(); } else this.finishPlayback(pb, 'done');
      }, rule?.durationMs ?? this.playbackMs));
    };
    pb.timers.push(this.timer(step, 0));
  }

  playbackEvent(pb, type) {
    for (const app of pb.apps) this.send(app, { type, playback: pb.json() });
  }

  finishPlayback(pb, state) {
    for (const t of pb.timers) this.cancel(t);
    pb.state = state;
    this.playbacks.delete(pb.id);
    this.playbackEvent(pb, 'PlaybackFinished');
  }

  h_getPlayback({ vars, reply, error }) {
    const pb = this.playbacks.get(vars.playbackId);
    if (!pb) return error(404, 'Playback not found');
    reply(200, pb.json());
  }

  h_stopPlayback({ vars, reply, error }) {
    const pb = this.playbacks.get(vars.playbackId);
    if (!pb) return error(404, 'Playback not found');
    reply(204);
    this.finishPlayback(pb, 'done');
  }

  // ---- bridges ----

  h_listBridges({ reply }) { reply(200, [...this.bridges.values()].map((b) => this.bridgeJson(b))); }

  h_getBridge({ vars, reply, error }) {
    const b = this.bridges.get(vars.bridgeId);
    if (!b) return error(404, 'Bridge not found');
    reply(200, this.bridgeJson(b));
  }

  // POST /bridges and POST /bridges/{id}: type is a comma list (mixing by default); holding with
  // mixing, or nothing Asterisk knows, makes stasis_app_bridge_create fail (500).
  h_createBridge(ctx) {
    const p = ctx.params('createBridge');
    if (ctx.vars.bridgeId) p.bridgeId = ctx.vars.bridgeId;
    if (p.bridgeId && this.bridges.has(p.bridgeId)) return ctx.error(409, `Bridge with id '${p.bridgeId}' already exists`);
    const types = (p.type || 'mixing').split(',').map((t) => t.trim());
    const mixing = types.includes('mixing');
    const holding = types.includes('holding');
    if ((!mixing && !holding) || (mixing && holding)) return ctx.error(500, `Unable to create bridge. Possible duplicate bridge id '${p.bridgeId ?? '(null)'}'`);
    const id = p.bridgeId || randomUUID();
    const b = {
      id, name: p.name ?? '', bridge_type: holding ? 'holding' : 'mixing', types, channels: [], creationtime: this.time(),
      video_mode: types.includes('video_sfu') ? 'sfu' : types.includes('video_single') ? 'single' : 'talker',
      subs: new Map(), moh: null,
    };
    this.bridges.set(id, b);
    ctx.reply(200, this.bridgeJson(b));
  }

  // find_bridge + control_list_create (resource_bridges.c).
  bridgeAndChannels(ctx) {
    const p = ctx.params(ctx.rec.path.endsWith('/addChannel') ? 'addChannel' : 'removeChannel');
    const b = this.bridges.get(ctx.vars.bridgeId);
    if (!b) { ctx.error(404, 'Bridge not found'); return null; }
    const ids = (p.channel ?? []).filter((x) => x !== '');
    if (!ids.length) { ctx.error(400, 'Missing parameter channel'); return null; }
    const chans = [];
    for (const id of ids) {
      const ch = this.channels.get(id);
      if (!ch || !ch.inStasis) {
        if (!ch) { ctx.error(400, 'Channel not found'); return null; }
        ctx.error(422, 'Channel not in Stasis application');
        return null;
      }
      chans.push(ch);
    }
    return { b, chans, p };
  }

  h_addChannel(ctx) {
    const r = this.bridgeAndChannels(ctx);
    if (!r) return;
    for (const ch of r.chans) { ch.bridgeRole = r.p.role ?? null; ch.bridgeMute = r.p.mute; ch.absorbDTMF = r.p.absorbDTMF; }
    ctx.reply(204);
    // Each channel departs whatever bridge it is in (the same one included) and joins.
    for (const ch of r.chans) if (!ch.destroyed) this.joinBridge(ch, r.b);
  }

  h_removeChannel(ctx) {
    const r = this.bridgeAndChannels(ctx);
    if (!r) return;
    for (const ch of r.chans) if (ch.bridge !== r.b.id) return ctx.error(422, 'Channel not in this bridge');
    ctx.reply(204);
    for (const ch of r.chans) this.leaveBridge(ch, r.b);
  }

  // DELETE /bridges/{id}: every channel leaves (they stay in Stasis), then BridgeDestroyed, to
  // the apps subscribed to the bridge when it was destroyed. An app is subscribed to a bridge
  // while it has channels in it (control.c: app_subscribe_bridge on join, unsubscribe when the
  // channel leaves), so destroying a bridge that is already empty sends no BridgeDestroyed.
  h_destroyBridge(ctx) {
    const b = this.bridges.get(ctx.vars.bridgeId);
    if (!b) return ctx.error(404, 'Bridge not found');
    ctx.reply(204);
    const apps = [...b.subs.keys()];
    for (const id of [...b.channels]) {
      const ch = this.channels.get(id);
      if (ch) this.leaveBridge(ch, b);
    }
    this.bridges.delete(b.id);
    for (const app of apps) this.send(app, { type: 'BridgeDestroyed', bridge: this.bridgeJson(b) });
  }

  h_bridgeStartMoh(ctx) {
    const p = ctx.params('moh');
    const b = this.bridges.get(ctx.vars.bridgeId);
    if (!b) return ctx.error(404, 'Bridge not found');
    b.moh = p.mohClass || 'default';
    ctx.reply(204);
  }

  h_bridgeStopMoh(ctx) {
    const b = this.bridges.get(ctx.vars.bridgeId);
    if (!b) return ctx.error(404, 'Bridge not found');
    b.moh = null;
    ctx.reply(204);
  }

  // ---- events WebSocket ----------------------------------------------------------------------

  onUpgrade(req, socket, head) {
    const url = new URL(req.url, 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const rec = { apps: [], subscribeAll: false, auth: null, openedAt: Date.now(), closedAt: null, closeCode: null, status: 101 };
    this.connections.push(rec);
    const refuse = (status, body, headers = {}, html = false) => {
      rec.status = status;
      const text = html ? htmlError(status, http.STATUS_CODES[status], body) : JSON.stringify({ message: body });
      const hdrs = Object.entries({ 'Content-Type': html ? 'text/html' : 'application/json', 'Content-Length': Buffer.byteLength(text), Connection: 'close', ...headers })
        .map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${hdrs}\r\n${text}`);
    };
    if (!this.up) return socket.destroy();
    const auth = this.authenticate(req, query);
    rec.auth = { user: auth.user, via: auth.via, ok: auth.ok };
    if (!auth.ok) return refuse(401, 'Authentication required', { 'WWW-Authenticate': `Basic realm="${REALM}"` });
    if (url.pathname !== '/ari/events') return refuse(404, 'Resource not found');
    if (!query.app) return refuse(400, 'HTTP request is missing param: [app]', {}, true);
    rec.apps = query.app.split(',').map((a) => a.trim()).filter(Boolean);
    rec.subscribeAll = astTrue(query.subscribeAll);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onEventsSocket(ws, rec));
  }

  onEventsSocket(ws, rec) {
    this.sockets.add(ws);
    ws.rec = rec;
    ws.on('message', (data, binary) => {
      this.wsMessages.push({ data: binary ? data : data.toString(), at: Date.now() });
      if (binary) return;
      try { JSON.parse(data.toString()); } catch {
        ws.send(JSON.stringify({ type: 'RESTResponse', transaction_id: '', request_id: '', status_code: 400, reason_phrase: 'Failed to parse request message JSON', uri: '', timestamp: this.time(), asterisk_id: this.asteriskId, application: rec.apps[0] }));
      }
    });
    ws.on('close', (code) => {
      rec.closedAt = Date.now();
      rec.closeCode = code;
      this.sockets.delete(ws);
      for (const [app, owner] of this.owners) if (owner === ws) this.owners.delete(app);
      this.emit('disconnect', rec);
    });
    ws.on('error', () => {});
    for (const app of rec.apps) {
      const old = this.owners.get(app);
      if (old && old !== ws && old.readyState === 1) this.send(app, { type: 'ApplicationReplaced' }, old);
      this.owners.set(app, ws);
      if (this.registeredEvents) this.send(app, { type: 'ApplicationRegistered' });
    }
    this.emit('connection', rec);
  }
}

function htmlError(status, title, text) {
  return '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n' +
    `<title>${status} ${title}</title>\r\n</head><body>\r\n<h1>${title}</h1>\r\n<p>${text}</p>\r\n` +
    '<hr />\r\n<address>Asterisk Server</address>\r\n</body></html>\r\n';
}

export async function startFakeAsterisk(opts) {
  return new FakeAsterisk(opts).start();
}
