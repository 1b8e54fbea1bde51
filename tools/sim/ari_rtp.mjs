// The fake Asterisk's media side (asterisk.mjs): RTP packets (RFC 3550) and an RtpLeg per
// ExternalMedia (UnicastRTP) channel, as chan_rtp and res_rtp_asterisk run it.
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FORMATS, sleep } from './ari_wire.mjs';

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
