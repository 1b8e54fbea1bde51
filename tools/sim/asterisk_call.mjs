// One inbound Asterisk call against switchboard, with the fake Asterisk (asterisk.mjs) in
// Asterisk's place: the trunk delivers a call to Stasis(app), the caller talks over the
// ExternalMedia RTP stream and presses keys, the transfer targets switchboard originates ring
// and end as asked, and everything switchboard asks of ARI is recorded as it happens.
//
//   const fake = await new SimAsterisk({ port: 8088, dialOutcomes: ['busy', 'answer'] }).start();
//   await fake.waitForApp('switchboard', 60000);
//   const r = await simulateAsteriskCall({ fake, from: '+14155550100', to: '+14155550199',
//                                          audio: tone(3000), dtmf: [{ digit: '0', atMs: 3000 }] });
//   const v = asteriskVerdict(r, { dtmf, dialOutcomes });
//   for (const line of asteriskSummary(r, v)) console.log(line);
//
// The timeline ({t, dir, event, ...}): dir 'out' is the simulator (Asterisk, the caller, the
// targets) to switchboard (ARI events, RTP), 'in' switchboard to the simulator (REST requests,
// RTP), 'local' what Asterisk does (ringing, outcomes, hang-ups).
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { CAUSE_TEXT, FakeAsterisk } from './asterisk.mjs';
import { percentile } from './media.mjs';
import { EXIT, abbreviate, fmtTime } from './report.mjs';
import { FRAME_BYTES, MULAW_SILENCE, durationMs, isSilent } from './wav.mjs';

const round1 = (x) => Math.round(x * 10) / 10;
const round2 = (x) => Math.round(x * 100) / 100;

// ---- the fake, with outcomes in order ------------------------------------------------------

/** What a transfer target does: answer, busy, noanswer (rings until the originate's timeout), failed (congestion), rejected. */
export const DIAL_OUTCOMES = ['answer', 'busy', 'noanswer', 'failed', 'rejected'];
const OUTCOME_ALIASES = { answered: 'answer', completed: 'answer', 'no-answer': 'noanswer', congestion: 'failed' };

/** "busy,no-answer,answer" -> ['busy', 'noanswer', 'answer']; throws on an unknown one. */
export function parseDialOutcomes(s) {
  if (s === undefined || s === null) return [];
  const list = String(s).split(',').map((x) => x.trim().toLowerCase()).filter(Boolean).map((x) => OUTCOME_ALIASES[x] ?? x);
  for (const x of list) if (!DIAL_OUTCOMES.includes(x)) throw new Error(`${JSON.stringify(x)} is not one of ${DIAL_OUTCOMES.join(', ')}`);
  return list;
}

/**
 * The fake Asterisk of `switchboard-sim asterisk`: each channel switchboard originates gets the
 * next of `dialOutcomes` (then `answer`), after `ringMs / speed` of ringing (a no-answer rings
 * for the originate's timeout / speed, a failure comes after 200 ms / speed); playbacks last
 * `playbackMs / speed`.
 */
export class SimAsterisk extends FakeAsterisk {
  constructor({ dialOutcomes = [], speed = 1, ringMs = 2000, playbackMs = 2000, ...opts } = {}) {
    super({ playbackMs: Math.max(1, Math.round(playbackMs / speed)), ...opts });
    this.speed = speed;
    this.ringMs = ringMs;
    this.dialQueue = [...dialOutcomes];
    this.dials = []; // { channelId, endpoint, result, afterMs, timeoutMs }
  }

  startDial(ch, opts) {
    const result = this.dialQueue.length ? this.dialQueue.shift() : 'answer';
    const ring = Math.max(1, Math.round(this.ringMs / this.speed));
    const scaledTimeout = opts.timeoutMs < 0 ? -1 : Math.max(1, Math.round(opts.timeoutMs / this.speed));
    let outcome;
    if (result === 'noanswer') outcome = { result, afterMs: scaledTimeout };
    else if (result === 'failed') outcome = { result, afterMs: Math.max(1, Math.round(200 / this.speed)), ringMs: false };
    else outcome = { result, afterMs: scaledTimeout >= 0 ? Math.min(ring, Math.max(0, scaledTimeout - 1)) : ring };
    const dial = { channelId: ch.id, endpoint: ch.endpoint, result, afterMs: outcome.afterMs, timeoutMs: opts.timeoutMs };
    this.dials.push(dial);
    this.emit('dial', dial);
    // the fake turns an answer at or after the timeout into a no-answer: the timeout is scaled too
    return super.startDial(ch, { ...opts, timeoutMs: scaledTimeout, outcome });
  }
}

// ---- one call ------------------------------------------------------------------------------

const ARI_PREFIX = /^\/ari/;

/**
 * Plays one inbound call through `fake` (a started FakeAsterisk whose app switchboard holds).
 * @param {object} o
 * @param {FakeAsterisk} o.fake
 * @param {string} [o.from='+14155550100'], [o.to='+14155550199'] caller and DID (dialplan exten)
 * @param {Buffer} [o.audio]          what the caller says (8 kHz mu-law), streamed over RTP once
 *                                    the ExternalMedia channel is bridged
 * @param {{digit, atMs}[]} [o.dtmf]  key presses, ms from the start of the call
 * @param {number} [o.hangupAfterMs]  the caller hangs up this long after the call starts; without
 *                                    it, --tail after their audio and last key unless a transfer,
 *                                    a prompt or a recording is under way (then the call ends on
 *                                    its own: the target hangs up after talkMs, switchboard after
 *                                    the apology, the caller after recordMs of message)
 * @param {number} [o.tailMs=1000], [o.talkMs=5000], [o.recordMs=3000], [o.speed=1]
 * @param {number} [o.answerTimeoutMs=15000]  the caller gives up on a call never answered
 * @param {number} [o.maxDurationMs=600000]   hang up and fail a call still running after this long
 * @param {number} [o.cleanupMs=3000]  how long switchboard has, after the caller's channel is gone,
 *                                     to delete the call's bridge and its other channels
 * @param {(entry)=>void} [o.onEvent]  every timeline entry as it happens
 */
export async function simulateAsteriskCall(o) {
  return new AsteriskCall(o).run();
}

class AsteriskCall {
  constructor(o) {
    this.o = o;
    this.fake = o.fake;
    this.speed = o.speed || 1;
    this.timeline = [];
    this.requests = [];
    this.events = [];
    this.dials = []; // { channelId, endpoint, callerId, timeout, outcome, status, cause, causeTxt, answeredAt, endedAt }
    this.dtmfLog = []; // { digit, atMs, sent, t }
    this.legs = []; // { leg, channelId, started, firstPacket, agentTalked }
    this.bridges = new Set();
    this.warnings = [];
    this.timers = new Set();
    this.answered = false;
    this.hungUpByCaller = false;
    this.endedBy = null;
    this.handedOver = false; // a transfer, a prompt or a recording began: the call ends on its own
    this.audioDone = !(o.audio && o.audio.length);
    this.keysDone = !(o.dtmf && o.dtmf.length);
  }

  now() {
    return performance.now() - this.t0;
  }

  log(dir, event, fields = {}) {
    const e = { t: round1(this.now()), dir, event, ...fields };
    this.timeline.push(e);
    if (this.o.onEvent) {
      try {
        this.o.onEvent(e);
      } catch {}
    }
    return e;
  }

  at(ms, fn) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, ms - this.now()));
    this.timers.add(t);
    return t;
  }

  // Who a channel id is, for reading.
  label(id) {
    if (!id) return '?';
    if (id === this.callerId) return `caller ${id}`;
    if (id.startsWith('sbem-')) return `ExternalMedia ${abbreviate(id)}`;
    const d = this.dials.find((x) => x.channelId === id);
    if (d) return `${d.endpoint} (${abbreviate(id)})`;
    return abbreviate(id);
  }

  mine(id) {
    return id === this.callerId || this.legs.some((l) => l.channelId === id) || this.dials.some((d) => d.channelId === id) || /^sb[exo]-/.test(id || '');
  }

  async run() {
    const o = this.o;
    const fake = this.fake;
    this.from = o.from || '+14155550100';
    this.to = o.to || '+14155550199';
    this.callerId = o.channelId || `${fake.epoch}.${++fake.seq}`;
    this.startedAt = new Date().toISOString();
    this.t0 = performance.now();
    let finish;
    this.done = new Promise((r) => (finish = r));
    this.finish = finish;

    const onRequest = (rec) => this.onRequest(rec);
    const onEvent = (ev) => this.onAriEvent(ev);
    const onLeg = (leg) => this.onLeg(leg);
    const onDial = (d) => this.onDial(d);
    const onDestroyed = (ch) => {
      if (ch.id === this.callerId) this.onCallerGone(ch);
    };
    // switchboard's events socket closing mid-call (a crash, a restart): the call cannot go as asked
    const onDisconnect = (rec) => {
      if (this.ended || !rec.apps.includes(fake.app)) return;
      this.disconnected = { t: round1(this.now()), code: rec.closeCode };
      this.log('local', 'error', { reason: `switchboard's events socket for ${fake.app} closed (${rec.closeCode})` });
    };
    fake.on('request', onRequest);
    fake.on('event', onEvent);
    fake.on('leg', onLeg);
    fake.on('dial', onDial);
    fake.on('channel-destroyed', onDestroyed);
    fake.on('disconnect', onDisconnect);
    this.ticker = setInterval(() => this.tick(), 1000);

    try {
      this.log('local', 'call', { from: this.from, to: this.to, channel: this.callerId, app: fake.app, endpoint: fake.trunk });
      const ch = await fake.inboundCall({ from: this.from, to: this.to, channelId: this.callerId, callerName: o.callerName || '' });
      this.channelName = ch.name;
      const rec = fake.ended.get(this.callerId);
      if (rec && rec.stasisStatus === 'FAILED') {
        this.failure = `Stasis(${fake.app}) failed: no events socket holds the app ${fake.app} (is switchboard connected, with ARI_APP=${fake.app}?)`;
        this.log('local', 'error', { reason: this.failure });
        return this.result();
      }
      for (const k of o.dtmf || []) this.at(k.atMs, () => this.press(k));
      if (o.hangupAfterMs != null) this.at(o.hangupAfterMs, () => this.callerHangup('--hangup-after'));
      this.at(o.answerTimeoutMs ?? 15000, () => {
        if (!this.answered && !this.ended) {
          this.failure = `switchboard did not answer the call within ${(o.answerTimeoutMs ?? 15000) / 1000} s`;
          this.callerHangup('no answer');
        }
      });
      const maxMs = o.maxDurationMs ?? 600000;
      this.at(maxMs, () => {
        if (this.ended) return;
        this.failure = `the call was still running after ${maxMs / 1000} s (--max-duration): the caller hung up`;
        this.callerHangup('--max-duration');
      });
      this.maybeDone();
      await this.done;
      await this.cleanup();
    } finally {
      clearInterval(this.ticker);
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      fake.off('request', onRequest);
      fake.off('event', onEvent);
      fake.off('leg', onLeg);
      fake.off('dial', onDial);
      fake.off('channel-destroyed', onDestroyed);
      fake.off('disconnect', onDisconnect);
      for (const l of this.legs) {
        l.off?.();
        l.loopDelay?.disable();
      }
    }
    return this.result();
  }

  // ---- what switchboard asks ----

  onRequest(rec) {
    const path = rec.path.replace(ARI_PREFIX, '') || '/';
    const body = rec.body && typeof rec.body === 'object' ? rec.body : {};
    const params = { ...rec.query, ...body };
    const status = rec.status;
    const message = status >= 300 && rec.response && typeof rec.response === 'object' ? rec.response.message : undefined;
    const entry = { t: round1(this.now()), method: rec.method, path, params, status, message };
    this.requests.push(entry);
    const ok = status >= 200 && status < 300;
    const m = /^\/channels\/([^/]+)(?:\/(\w+))?$/.exec(path);
    let kind = 'other';
    let extra = {};
    if (rec.method === 'POST' && path === '/channels') {
      kind = 'originate';
      const d = {
        t: entry.t, channelId: (ok && rec.response?.id) || params.channelId || null, endpoint: params.endpoint, callerId: params.callerId,
        timeout: params.timeout, appArgs: params.appArgs, httpStatus: status, outcome: null, status: ok ? 'ringing' : 'refused',
      };
      this.handedOver = true;
      // the fake's dial event (its outcome) comes after this reply: it fills d.outcome in
      this.dials.push(d);
    } else if (rec.method === 'POST' && path === '/channels/externalMedia') {
      kind = 'externalMedia';
      const vars = rec.response?.channelvars || {};
      if (ok) extra = { rtpLocal: `${vars.UNICASTRTP_LOCAL_ADDRESS}:${vars.UNICASTRTP_LOCAL_PORT}` };
    } else if (rec.method === 'POST' && path === '/bridges') {
      kind = 'bridge';
      if (ok && rec.response?.id) this.bridges.add(rec.response.id);
    } else if (/^\/bridges\/[^/]+\/(addChannel|removeChannel)$/.test(path)) {
      kind = path.slice(path.lastIndexOf('/') + 1);
    } else if (rec.method === 'DELETE' && /^\/bridges\/[^/]+$/.test(path)) {
      kind = 'bridgeDestroy';
    } else if (m && m[1] === this.callerId) {
      const op = m[2] || '';
      if (rec.method === 'POST' && op === 'answer' && ok) {
        this.answered = true;
        this.answeredAt = this.now();
      }
      if (rec.method === 'DELETE' && op === '' && ok && !this.hungUpByCaller) this.endedBy ??= 'switchboard';
      if (rec.method === 'POST' && op === 'play') this.handedOver = true;
      if (rec.method === 'POST' && op === 'record') {
        this.handedOver = true;
        // the caller leaves a message, then hangs up
        this.at(this.now() + Math.round((this.o.recordMs ?? 3000) / this.speed), () => this.callerHangup('message left'));
      }
      kind = op || (rec.method === 'DELETE' ? 'hangup' : 'channel');
    }
    if (status === 501) {
      const w = `${rec.method} ${path} is not implemented by the fake Asterisk (answered 501)`;
      this.warnings.push(w);
    }
    entry.kind = kind;
    this.log('in', 'rest', { method: rec.method, path, params, status, message, kind, ...extra });
  }

  onDial(d) {
    const x = this.dials.findLast((y) => y.channelId === d.channelId) || this.dials.findLast((y) => y.endpoint === d.endpoint && !y.outcome);
    if (x) {
      x.outcome = d.result;
      x.channelId ??= d.channelId;
    }
    this.log('local', 'dial', { endpoint: d.endpoint, channel: d.channelId, outcome: d.result, afterMs: d.afterMs });
  }

  // ---- what the fake tells switchboard ----

  onAriEvent(ev) {
    const id = ev.channel?.id || ev.peer?.id || null;
    const forCall = (id && this.mine(id)) || (ev.bridge && this.bridges.has(ev.bridge.id)) || ev.playback;
    if (!forCall) return;
    const e = { type: ev.type, channel: id, delivered: ev.delivered };
    switch (ev.type) {
      case 'StasisStart':
        e.args = ev.args;
        break;
      case 'ChannelDtmfReceived':
        e.digit = ev.digit;
        break;
      case 'ChannelHangupRequest':
        e.cause = ev.cause;
        if (ev.soft) e.soft = true;
        break;
      case 'ChannelDestroyed':
        e.cause = ev.cause;
        e.causeTxt = ev.cause_txt;
        break;
      case 'ChannelStateChange':
        e.state = ev.channel.state;
        break;
      case 'ChannelEnteredBridge':
      case 'ChannelLeftBridge':
        e.bridge = ev.bridge.id;
        e.channels = ev.bridge.channels.length;
        break;
      case 'Dial':
        e.dialstatus = ev.dialstatus;
        break;
      case 'PlaybackStarted':
      case 'PlaybackFinished':
        e.media = ev.playback.media_uri;
        e.state = ev.playback.state;
        e.target = ev.playback.target_uri;
        break;
    }
    this.events.push({ t: round1(this.now()), ...e });
    this.log('out', 'ari-event', { ...e, label: id ? this.label(id) : undefined });

    const d = id ? this.dials.find((x) => x.channelId === id) : null;
    if (d && ev.type === 'StasisStart') {
      d.answeredAt = this.now();
      d.status = 'answered';
      this.log('local', 'dial-answered', { endpoint: d.endpoint, channel: id });
      // the target talks, then hangs up
      const talk = Math.round((this.o.talkMs ?? 5000) / this.speed);
      this.at(this.now() + talk, () => {
        if (!this.fake.channels.has(id) || this.ended) return;
        this.log('local', 'target-hangup', { endpoint: d.endpoint, channel: id, talkS: round1((this.o.talkMs ?? 5000) / 1000) });
        d.hungUp = true;
        this.fake.hangup(id);
      });
    }
    if (d && ev.type === 'ChannelDestroyed') {
      d.endedAt = this.now();
      d.cause = ev.cause;
      d.causeTxt = ev.cause_txt;
      d.status = d.answeredAt !== undefined ? 'answered' : ({ 17: 'busy', 19: 'no-answer', 21: 'rejected' })[ev.cause] ?? (ev.cause === 16 ? 'canceled' : 'failed');
      // the talk as simulated (at --speed N the real time is N times shorter)
      if (d.answeredAt !== undefined) d.talkS = d.hungUp ? round1((this.o.talkMs ?? 5000) / 1000) : round1(((d.endedAt - d.answeredAt) * this.speed) / 1000);
    }
  }

  // ---- media ----

  onLeg(leg) {
    const L = { leg, channelId: leg.channelId, started: false, firstPacket: null, agentTalked: false, audioQueued: false };
    const first = this.legs.length === 0;
    this.legs.push(L);
    const onStart = () => {
      if (L.started) return;
      L.started = true;
      L.loopDelay = monitorEventLoopDelay({ resolution: 10 });
      L.loopDelay.enable();
      L.startedAt = this.now();
      this.log('out', 'rtp-start', { channel: leg.channelId, local: `${leg.local.address}:${leg.local.port}`, remote: `${leg.remote.address}:${leg.remote.port}`, audio: first && !!this.o.audio?.length });
    };
    const onStop = () => {
      if (!L.started || L.stopLogged) return;
      L.stopLogged = true;
      this.log('local', 'rtp-stop', { channel: leg.channelId, closed: leg.closed });
    };
    const onPacket = (p) => {
      if (!L.firstPacket) {
        L.firstPacket = { from: `${p.from.address}:${p.from.port}`, pt: p.pt, bytes: p.bytes, ssrc: p.ssrc, accepted: p.accepted };
        this.log('in', 'rtp-first', { channel: leg.channelId, ...L.firstPacket, expected: `${leg.remote.address}:${leg.remote.port}` });
      }
      if (!L.agentTalked && p.accepted && p.pt === leg.pt && !isSilent(p.payload)) {
        L.agentTalked = true;
        this.log('in', 'agent-audio', { channel: leg.channelId });
      }
    };
    const onClose = () => {
      L.loopDelay?.disable();
      onStop();
      this.tickLeg(L, true);
    };
    leg.on('start', onStart);
    leg.on('stop', onStop);
    leg.on('packet', onPacket);
    leg.on('close', onClose);
    L.off = () => {
      leg.off('start', onStart);
      leg.off('stop', onStop);
      leg.off('packet', onPacket);
      leg.off('close', onClose);
    };
    if (first && this.o.audio?.length) {
      // queued now, streamed from the moment the bridge feeds the channel
      L.audioQueued = true;
      this.sentAudio = { leg, frames: Math.ceil(this.o.audio.length / FRAME_BYTES) };
      leg.sendAudio(this.o.audio).then((sent) => {
        if (!sent) return; // the leg closed first
        this.audioDone = true;
        this.maybeDone();
      });
    }
  }

  // The RTP counters, once a second while a leg streams, and a last time when it closes.
  tick() {
    for (const L of this.legs) if (L.started && !L.leg.closed) this.tickLeg(L);
  }

  tickLeg(L, final = false) {
    if (!L.started || L.finalTicked) return;
    if (final) L.finalTicked = true;
    const s = L.leg.stats();
    const sent = L.leg.sent.filter((x) => x.kind !== 'dropped').length;
    const key = `${sent}/${s.accepted}/${s.rejected}`;
    if (key === L.lastTick) return;
    L.lastTick = key;
    const pt = Object.keys(s.payloadTypes).join('/') || '-';
    this.log('local', 'rtp', { channel: L.channelId, sent, received: s.accepted, rejected: s.rejected, pt, jitterMs: round2(s.jitterMs), lost: s.lost });
  }

  press(k) {
    const alive = this.fake.channels.has(this.callerId) && !this.ended;
    this.dtmfLog.push({ digit: k.digit, atMs: k.atMs, sent: alive, t: round1(this.now()) });
    if (alive) this.fake.dtmf(this.callerId, k.digit);
    else this.log('local', 'warning', { warning: `key ${k.digit} not pressed: the call had ended` });
    if (this.dtmfLog.length >= (this.o.dtmf || []).length) {
      this.keysDone = true;
      this.maybeDone();
    }
  }

  // With no --hangup-after, the caller hangs up --tail after their audio and last key, unless a
  // transfer, a prompt or a recording began (the call then ends on its own). With no media leg
  // (yet), the caller's words last as long as the audio would have.
  maybeDone() {
    if (this.o.hangupAfterMs != null || this.ended || this.doneScheduled || !this.keysDone) return;
    if (this.legs.length && !this.audioDone) return;
    const audioMs = durationMs(this.o.audio || Buffer.alloc(0));
    if (!this.legs.length && this.now() < audioMs) {
      if (!this.audioWait) this.audioWait = this.at(audioMs, () => this.maybeDone());
      return;
    }
    this.doneScheduled = true;
    this.at(this.now() + (this.o.tailMs ?? 1000), () => {
      if (!this.handedOver && this.answered) this.callerHangup('done talking');
    });
  }

  callerHangup(why) {
    if (this.ended || this.hungUpByCaller || !this.fake.channels.has(this.callerId)) return;
    this.hungUpByCaller = true;
    this.endedBy ??= 'caller';
    this.log('local', 'caller-hangup', { why });
    this.fake.hangup(this.callerId);
  }

  onCallerGone(ch) {
    if (this.ended) return;
    this.ended = true;
    this.endedAt = this.now();
    this.cause = ch.cause;
    if (!this.endedBy) this.endedBy = this.dials.some((d) => d.hungUp) ? 'target' : 'switchboard';
    if (this.endedBy === 'switchboard' && this.dials.some((d) => d.hungUp)) this.endedBy = 'target';
    this.finish();
  }

  // After the caller's channel: switchboard deletes the bridge and its other channels.
  async cleanup() {
    const deadline = performance.now() + (this.o.cleanupMs ?? 3000);
    const left = () => [
      ...[...this.bridges].filter((id) => this.fake.bridges.has(id)).map((id) => ({ kind: 'bridge', id })),
      ...[...this.fake.channels.values()].filter((c) => c.id !== this.callerId && this.mine(c.id)).map((c) => ({ kind: 'channel', id: c.id, name: c.name })),
    ];
    while (left().length && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.leftovers = left();
    for (const L of this.legs) this.tickLeg(L, true);
    const dur = this.answeredAt !== undefined ? round1((this.endedAt - this.answeredAt) / 1000) : 0;
    this.log('local', 'call-ended', { endedBy: this.endedBy, cause: this.cause, causeTxt: CAUSE_TEXT[this.cause] ?? null, durationS: dur, answered: this.answered });
    for (const x of this.leftovers) this.log('local', 'leftover', x);
  }

  // ---- the result ----

  result() {
    const legs = this.legs.map((L) => {
      const s = L.leg.stats();
      return {
        channel: L.channelId,
        local: `${L.leg.local.address}:${L.leg.local.port}`,
        remote: `${L.leg.remote.address}:${L.leg.remote.port}`,
        startedAtMs: L.startedAt !== undefined ? round1(L.startedAt) : null,
        from: L.firstPacket?.from ?? null,
        sent: L.leg.sent.filter((x) => x.kind !== 'dropped').length,
        sentAudioMs: Math.round(L.leg.audioSent / 8),
        received: s.accepted,
        rejected: s.rejected,
        garbage: s.garbage,
        payloadTypes: s.payloadTypes,
        sizes: s.sizes,
        ssrcs: s.ssrcs,
        sources: s.sources,
        lost: s.lost,
        duplicates: s.duplicates,
        outOfOrder: s.outOfOrder,
        meanIntervalMs: round2(s.meanIntervalMs),
        maxIntervalDeviationMs: round2(s.maxIntervalDeviationMs),
        jitterMs: round2(s.jitterMs),
        agentAudioMs: Math.round(L.leg.received.filter((r) => r.accepted && r.pt === L.leg.pt && !isSilent(r.payload)).length * 20),
      };
    });
    const first = this.legs[0];
    const agentAudio = first ? first.leg.receivedAudio() : Buffer.alloc(0);
    return {
      ok: !this.failure,
      reason: this.failure || null,
      channel: this.callerId,
      channelName: this.channelName || null,
      from: this.from,
      to: this.to,
      app: this.fake.app,
      session: this.session(),
      startedAt: this.startedAt,
      answered: this.answered,
      answeredAtMs: this.answeredAt !== undefined ? round1(this.answeredAt) : null,
      ended: !!this.ended,
      disconnected: this.disconnected || null,
      endedBy: this.endedBy,
      cause: this.cause ?? null,
      causeTxt: CAUSE_TEXT[this.cause] ?? null,
      durationMs: round1(this.endedAt ?? this.now()),
      talkMs: this.answeredAt !== undefined && this.endedAt !== undefined ? round1(this.endedAt - this.answeredAt) : 0,
      legs,
      echo: this.echo(),
      // the simulator's own stalls (a busy machine) while RTP ran: they show up as pacing deviations and round trips
      simLoopDelayMaxMs: this.legs.reduce((m, L) => Math.max(m, L.loopDelay ? round1(L.loopDelay.max / 1e6) : 0), 0),
      dials: this.dials.map(({ hungUp, answeredAt, endedAt, ...d }) => ({ ...d, status: d.status === 'ringing' && this.ended ? 'canceled' : d.status })),
      dtmf: this.dtmfLog,
      requests: this.requests,
      restErrors: this.requests.filter((q) => typeof q.status === 'number' && (q.status < 200 || q.status >= 300)),
      events: this.events,
      warnings: this.warnings,
      leftovers: this.leftovers || [],
      agentAudio,
      timeline: this.timeline,
    };
  }

  session() {
    const b = [...this.bridges][0];
    const m = /^sbb-(.+)$/.exec(b || '') || /^sbem-(.+)$/.exec(this.legs[0]?.channelId || '');
    return m ? m[1] : null;
  }

  // The echo agent plays the caller back: each audible frame the caller sent, found again in
  // what came back (in order), gives one round trip.
  echo() {
    if (!this.sentAudio) return null;
    const { leg } = this.sentAudio;
    const audio = this.o.audio;
    const sentAt = leg.sent.filter((x) => x.kind === 'audio').map((x) => x.at);
    const frames = [];
    for (let i = 0; i < sentAt.length; i++) {
      const f = Buffer.alloc(FRAME_BYTES, MULAW_SILENCE);
      audio.copy(f, 0, i * FRAME_BYTES, Math.min(audio.length, (i + 1) * FRAME_BYTES));
      if (!isSilent(f)) frames.push({ key: f.toString('latin1'), at: sentAt[i] });
    }
    const got = leg.received.filter((r) => r.accepted && r.pt === leg.pt && !isSilent(r.payload));
    if (!frames.length || !got.length) return null;
    // in order; a frame switchboard dropped is skipped (the next match within 2 s is taken)
    const rtts = [];
    let i = 0;
    for (const r of got) {
      const key = r.payload.toString('latin1');
      for (let j = i; j < frames.length && r.at - frames[j].at < 2000; j++) {
        if (frames[j].key === key && r.at >= frames[j].at) {
          rtts.push(r.at - frames[j].at);
          i = j + 1;
          break;
        }
      }
      if (i >= frames.length) break;
    }
    if (rtts.length < 10 || rtts.length < got.length * 0.5) return { echoed: false, frames: rtts.length, of: frames.length };
    return { echoed: true, frames: rtts.length, of: frames.length, p50: round1(percentile(rtts, 50)), p99: round1(percentile(rtts, 99)), max: round1(Math.max(...rtts)) };
  }
}

// ---- the verdict -----------------------------------------------------------------------------

/**
 * Did the call go as asked? {ok, exitCode, reason, hints[]}: the call was answered and ended,
 * every REST request switchboard made was answered 2xx (a 501 of the fake is only a warning),
 * RTP came back from switchboard on every ExternalMedia channel that streamed, every --dtmf key
 * was pressed, every --dial-outcome was used by an originate, and switchboard deleted the
 * call's bridge and channels once it ended.
 */
export function asteriskVerdict(r, { dtmf = [], dialOutcomes = [] } = {}) {
  const hints = [];
  const fail = (reason) => ({ ok: false, exitCode: EXIT.FAILED, reason, hints });
  if (!r.ok) return fail(r.reason);
  if (!r.answered) {
    const refused = r.requests.find((q) => q.method === 'DELETE' && q.path === `/channels/${r.channel}`);
    if (refused) return fail(`switchboard hung up without answering (reason ${refused.params.reason || refused.params.reason_code || '-'})`);
    return fail('switchboard never answered the call');
  }
  if (!r.ended) return fail('the call did not end');
  if (r.disconnected) return fail(`switchboard's events socket closed during the call (${r.disconnected.code}, at ${round1(r.disconnected.t / 1000)} s): did it crash or restart?`);
  const bad = r.restErrors.find((q) => q.status !== 501);
  if (bad) return fail(`${bad.method} ${bad.path} was answered ${bad.status}${bad.message ? ` "${bad.message}"` : ''}`);
  for (const l of r.legs) {
    if (l.startedAtMs !== null && l.received === 0) {
      if (l.rejected) hints.push(`RTP came from ${l.sources.join(', ')}, not from ${l.remote}, the external_host switchboard gave`);
      return fail(`no RTP came back from switchboard on ${abbreviate(l.channel)} (sent ${l.sent} packets to ${l.remote})`);
    }
  }
  const missed = r.dtmf.filter((k) => !k.sent);
  if (missed.length || r.dtmf.length < dtmf.length) return fail(`--dtmf: ${Math.max(missed.length, dtmf.length - r.dtmf.filter((k) => k.sent).length)} of ${dtmf.length} key press(es) came after the call had ended`);
  const used = r.dials.filter((d) => d.outcome).length;
  if (dialOutcomes.length > used) return fail(`--dial-outcome: ${dialOutcomes.length} outcome(s) given, but switchboard originated ${used} transfer target(s)`);
  if (r.leftovers.length) return fail(`switchboard left ${r.leftovers.map((x) => `${x.kind} ${abbreviate(x.id)}`).join(', ')} behind after the call ended`);
  return { ok: true, exitCode: EXIT.OK, reason: 'completed as expected', hints };
}

// ---- printing ----------------------------------------------------------------------------------

const STATUS_TEXT = { 200: 'OK', 201: 'Created', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 409: 'Conflict', 412: 'Precondition Failed', 422: 'Unprocessable Entity', 500: 'Internal Server Error', 501: 'Not Implemented' };

function clip(s, n = 48) {
  s = String(s);
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

// The parameters of a request worth reading, per kind.
function restParams(e) {
  const p = { ...e.params };
  delete p.app;
  if (e.kind === 'externalMedia') {
    const x = `${p.encapsulation || 'rtp'}/${p.transport || 'udp'}`;
    return `external_host=${p.external_host} format=${p.format} ${x} direction=${p.direction || 'both'} channelId=${abbreviate(p.channelId || '-')}`;
  }
  if (e.kind === 'originate') {
    return `endpoint=${p.endpoint} callerId=${p.callerId ?? '-'} timeout=${p.timeout ?? '-'} appArgs=${p.appArgs ?? '-'} channelId=${abbreviate(p.channelId || '-')}`;
  }
  return Object.entries(p).map(([k, v]) => `${k}=${abbreviate(clip(Array.isArray(v) ? v.join(',') : v))}`).join(' ');
}

/** Prints the entries of simulateAsteriskCall's timeline as lines, like `switchboard-sim call`. */
export class AsteriskTimelinePrinter {
  constructor({ write = (s) => process.stdout.write(s), verbose = false } = {}) {
    this.write = write;
    this.verbose = verbose;
  }

  line(t, sym, text) {
    this.write(`${fmtTime(t)}  ${sym}  ${text}\n`);
  }

  event(e) {
    const L = (sym, text) => this.line(e.t, sym, text);
    switch (e.event) {
      case 'call':
        return L('·', `a call from ${e.from} to ${e.to} on the trunk ${e.endpoint}: the dialplan runs Stasis(${e.app})`);
      case 'rest': {
        const params = restParams(e);
        const st = `${e.status}${STATUS_TEXT[e.status] ? ' ' + STATUS_TEXT[e.status] : ''}${e.message ? ` "${e.message}"` : ''}`;
        const extra = e.rtpLocal ? `, RTP from ${e.rtpLocal}` : '';
        return L(e.status >= 200 && e.status < 300 ? '←' : '✗', `${e.method} ${abbreviate(e.path)}${params ? '  ' + params : ''}  → ${st}${extra}`);
      }
      case 'ari-event':
        return this.ariEvent(e, L);
      case 'dial':
        return L('·', `${e.endpoint} rings  (simulated outcome: ${e.outcome}${e.outcome === 'answer' || e.outcome === 'busy' ? ` after ${round1(e.afterMs / 1000)} s` : e.outcome === 'noanswer' ? ` after ${round1(e.afterMs / 1000)} s` : ''})`);
      case 'dial-answered':
        return L('·', `${e.endpoint} answers`);
      case 'target-hangup':
        return L('·', `${e.endpoint} hangs up (after ${e.talkS} s of talk)`);
      case 'rtp-start':
        return L('→', `RTP  ${e.local} → ${e.remote}  ${e.audio ? 'the caller starts talking' : 'silence'} (PCMU, 20 ms packets)`);
      case 'rtp-first':
        return L('←', `RTP  from ${e.from}${e.from !== e.expected ? ` (not ${e.expected}!)` : ''}: pt ${e.pt}, ${e.bytes} bytes, SSRC 0x${e.ssrc.toString(16).padStart(8, '0')}`);
      case 'agent-audio':
        return L('←', 'RTP  the agent talks');
      case 'rtp-stop':
        return L('·', `RTP to switchboard stops (${e.closed ? 'the ExternalMedia channel is gone' : 'the bridge no longer feeds the ExternalMedia channel'})`);
      case 'rtp':
        return L('·', `rtp  → ${e.sent} packets (${round1(e.sent / 50)} s)   ← ${e.received} packets (${round1(e.received / 50)} s) pt ${e.pt}${e.rejected ? `   ${e.rejected} rejected` : ''}   jitter ${e.jitterMs} ms${e.lost ? `   lost ${e.lost}` : ''}`);
      case 'caller-hangup':
        return L('·', `the caller hangs up${e.why === '--max-duration' || e.why === 'no answer' ? ` (${e.why})` : ''}`);
      case 'call-ended': {
        const who = { caller: 'the caller hung up', switchboard: 'switchboard hung up', target: 'the transfer target hung up, then switchboard' }[e.endedBy] || 'ended';
        return L('·', `call ended: ${who}${e.cause != null ? `, cause ${e.cause} ${e.causeTxt}` : ''}${e.answered ? `, ${e.durationS} s after the answer` : ', never answered'}`);
      }
      case 'leftover':
        return L('✗', `left behind: ${e.kind} ${abbreviate(e.id)}${e.name ? ` (${e.name})` : ''}`);
      case 'warning':
        return L('!', e.warning);
      case 'error':
        return L('✗', e.reason);
      default:
        if (this.verbose) return L(e.dir === 'out' ? '→' : e.dir === 'in' ? '←' : '·', `${e.event} ${JSON.stringify(e)}`);
    }
  }

  ariEvent(e, L) {
    const who = e.label || '';
    const undelivered = e.delivered === false ? '  (not delivered: no events socket)' : '';
    switch (e.type) {
      case 'StasisStart':
        return L('→', `StasisStart  ${who}${e.args && e.args.length ? `  args ${e.args.map((a) => abbreviate(a)).join(',')}` : ''}${undelivered}`);
      case 'ChannelDtmfReceived':
        return L('→', `ChannelDtmfReceived  ${e.digit}  ${who}${undelivered}`);
      case 'ChannelHangupRequest':
        if (e.soft && !this.verbose) return;
        return L('→', `ChannelHangupRequest  ${who}  cause ${e.cause}${e.soft ? ' (soft)' : ''}`);
      case 'ChannelDestroyed':
        return L('→', `ChannelDestroyed  ${who}  cause ${e.cause} ${e.causeTxt}`);
      case 'ChannelEnteredBridge':
        return L('→', `ChannelEnteredBridge  ${who} → ${abbreviate(e.bridge)} (${e.channels} channel${e.channels === 1 ? '' : 's'})`);
      case 'ChannelStateChange':
        if ((e.state !== 'Up' || String(e.channel).startsWith('sbem-')) && !this.verbose) return;
        return L('→', `ChannelStateChange  ${who}  ${e.state}`);
      case 'PlaybackStarted':
        return L('→', `PlaybackStarted  ${e.media} on ${abbreviate(String(e.target).replace(/^channel:/, ''))}`);
      case 'PlaybackFinished':
        return L('→', `PlaybackFinished  ${e.media} (${e.state})`);
      default:
        if (this.verbose) return L('→', `${e.type}  ${who}${e.dialstatus !== undefined ? `  dialstatus ${e.dialstatus || '""'}` : ''}${e.bridge ? ` ${abbreviate(e.bridge)}` : ''}`);
    }
  }
}

// ---- summary and JSON ---------------------------------------------------------------------------

/** What the call did, in a few lines. */
export function asteriskSummary(r, v, { saved } = {}) {
  const out = [];
  const how = !r.answered ? 'not answered' : { caller: 'the caller hung up', switchboard: 'switchboard hung up', target: 'the transfer target hung up' }[r.endedBy] || 'ended';
  out.push(`call ${r.channel}${r.session ? ` (session ${abbreviate(r.session)})` : ''}: ${how}, ${round1(r.durationMs / 1000)} s; ${r.requests.length} REST request(s) from switchboard, ${r.events.filter((e) => e.delivered !== false).length} event(s) to it`);
  for (const l of r.legs) {
    const pts = Object.keys(l.payloadTypes).join('/') || '-';
    const sizes = Object.keys(l.sizes).join('/') || '-';
    out.push(`rtp ${abbreviate(l.channel)}: sent ${l.sent} packets (${round1(l.sentAudioMs / 1000)} s of caller audio) to ${l.remote}, received ${l.received} (pt ${pts}, ${sizes} bytes, ${round1(l.agentAudioMs / 1000)} s of agent audio) from ${l.from || '-'}; lost ${l.lost}, duplicates ${l.duplicates}, out of order ${l.outOfOrder}${l.rejected ? `, rejected ${l.rejected}` : ''}; pacing mean ${l.meanIntervalMs} ms, max deviation ${l.maxIntervalDeviationMs} ms, jitter ${l.jitterMs} ms`);
  }
  if (r.echo?.echoed) out.push(`echo: ${r.echo.frames} of ${r.echo.of} caller frames came back, round trip p50 ${r.echo.p50} ms p99 ${r.echo.p99} ms`);
  if (r.simLoopDelayMaxMs > 20 && r.legs.length) out.push(`note: the simulator itself stalled up to ${r.simLoopDelayMaxMs} ms (a busy machine?): the pacing and round-trip figures include that`);
  if (r.dials.length) out.push(`transfers: ${r.dials.map((d) => `${d.endpoint} ${d.status}${d.talkS !== undefined ? ` (${d.talkS} s)` : ''}`).join('; ')}`);
  if (r.dtmf.length) out.push(`dtmf: ${r.dtmf.map((k) => `${k.digit}@${round1(k.atMs / 1000)}s${k.sent ? '' : ' (not pressed)'}`).join(', ')}`);
  for (const w of r.warnings) out.push(`warning: ${w}`);
  if (saved) out.push(`agent audio: ${saved}`);
  out.push(v.ok ? `result: ${v.reason}` : `result: FAILED: ${v.reason}`);
  for (const h of v.hints) out.push(`  ${h}`);
  return out;
}

/** The result as plain JSON (no audio buffers, no per-packet arrays). */
export function asteriskResultJson(r, v, extra = {}) {
  const { agentAudio, ok, reason, ...rest } = r;
  return {
    ok: v.ok,
    exitCode: v.exitCode,
    reason: v.reason,
    hints: v.hints,
    ...rest,
    agentAudioMs: rest.legs.reduce((n, l) => n + l.agentAudioMs, 0), // audible packets only
    receivedAudioMs: Math.round(((agentAudio && agentAudio.length) || 0) / 8), // what --save writes
    ...extra,
  };
}
