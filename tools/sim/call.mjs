// One inbound call, end to end, with the simulator in Twilio's place: the signed voice
// webhook, then the returned TwiML run verb by verb as Twilio runs it, following every
// action/Redirect answer, with status callbacks around it.
//
//   const r = await simulateCall({ url: 'http://127.0.0.1:8080', publicUrl: 'https://voice.example.com',
//                                  authToken, from: '+14155550100', to: '+14155550199',
//                                  audio: readWavFile('hello.wav'), dialOutcomes: ['busy', 'completed'] });
//   r.ok, r.reason, r.timeline, r.stream.stats, r.agentAudio
//
// Twilio behaviours mirrored here (TwiML Voice reference, twilio.com/docs/voice/twiml):
//  - Verbs run in order; a verb with an `action` (Connect, Dial, Gather, Record) requests it
//    when it ends and continues with the TwiML of the answer: verbs after it are never run.
//    <Connect>/<Dial> without an action fall through to the next verb; the end of the
//    document ends the call.
//  - <Connect><Stream> blocks until the WebSocket closes.
//  - <Dial> posts DialCallStatus (completed, busy, no-answer, failed, canceled), DialCallSid,
//    DialCallDuration (answered calls) and, for <Sip>, DialSipCallId and DialSipResponseCode.
//  - <Gather> without input continues with the next verb (unless actionOnEmptyResult).
//  - <Record> posts RecordingUrl, RecordingSid, RecordingDuration, Digits; an empty recording
//    requests no action.
//  - <Reject> as the first verb leaves the call unanswered, ending busy (reason="busy") or
//    no-answer (reason="rejected").
//  - Status callbacks carry CallbackSource=call-progress-events and a SequenceNumber from 0.
// Simplifications: no action URL is requested once the caller has hung up (the call just
// ends); <Gather> takes DTMF only; <Play> is not fetched; dialed parties are not streamed.
import { randomUUID } from 'node:crypto';
import { MediaStream } from './media.mjs';
import { DEFAULT_ACCOUNT_SID, inboundCallParams, newSid, rfc2822, sendWebhook, statusCallbackParams } from './signing.mjs';
import { UrlMap } from './urls.mjs';
import { VOICE_VERBS, attrs, elements, parseTwiml, text } from './twiml.mjs';
import { SAMPLE_RATE } from './wav.mjs';

const round1 = (x) => Math.round(x * 10) / 10;
const END = null; // a verb handler's answer: the call is over
const NEXT = undefined; // ... go on with the next verb; anything else is the next document

// SIP final response codes the simulator reports per dial outcome (RFC 3261).
const SIP_CODES = { completed: 200, busy: 486, 'no-answer': 480, failed: 503, canceled: 487 };
const OUTCOMES = new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled']);

/**
 * Plays Twilio's side of an inbound call.
 * @param {object} o
 * @param {string} o.url                 the server, e.g. http://127.0.0.1:8080
 * @param {string} [o.publicUrl]         what the server believes it is (PUBLIC_BASE_URL): signed, and rewritten to `url`
 * @param {string} [o.authToken]         sign every request (X-Twilio-Signature) with it
 * @param {string} [o.from], [o.to], [o.accountSid], [o.callSid], [o.callerName]
 * @param {string} [o.voicePath='/twilio/voice']  the number's voice webhook
 * @param {Buffer} [o.audio]             what the caller says (8 kHz mu-law), streamed into <Connect><Stream>
 * @param {{digit, atMs}[]} [o.dtmf]     key presses, ms from the start of the call; each goes to the first
 *                                       <Stream> or <Gather> running at or after its time
 * @param {string[]} [o.dialOutcomes]    outcome of each <Dial>, in order: completed, busy, no-answer, failed, canceled
 * @param {number} [o.hangupAfterMs]     the caller hangs up this long after the call starts
 * @param {number} [o.maxDurationMs=600000]  hang up and fail a call still running after this long
 * @param {string} [o.statusCallback]    status callback URL (absolute, or a path on the server)
 * @param {string[]} [o.statusCallbackEvents=['ringing','in-progress','completed']]
 * @param {number} [o.speed=1]           time factor for simulated waits (Say, Play, Pause, ringing, talk, record)
 * @param {number} [o.streamTailMs=1000] keep a stream open this long after the caller's audio and digits
 * @param {boolean} [o.streamAutoStop=true]  false: a stream runs until the server closes it (or hangup)
 * @param {number} [o.dialRingMs=2000], [o.dialTalkMs=5000], [o.playMs=2000], [o.recordMs]
 * @param {(entry)=>void} [o.onEvent]    every timeline entry as it happens
 * @param {object} [o.params]            parameters overriding the inbound webhook's (e.g. Direction)
 */
export async function simulateCall(o = {}) {
  if (!o.url) throw new Error('simulateCall: url is required');
  const call = new SimulatedCall(o);
  return call.run();
}

class SimulatedCall {
  constructor(o) {
    this.o = o;
    this.map = new UrlMap(o.url, o.publicUrl || o.url);
    this.authToken = o.authToken || null;
    this.speed = o.speed || 1;
    // o.params overrides what an inbound call carries (an answered outbound-api call, say)
    this.params = {
      ...inboundCallParams({
        accountSid: o.accountSid || DEFAULT_ACCOUNT_SID,
        callSid: o.callSid || newSid('CA'),
        from: o.from || '+14155550100',
        to: o.to || '+14155550199',
        callerName: o.callerName,
      }),
      ...(o.params || {}),
    };
    this.callSid = this.params.CallSid;
    this.dtmf = (o.dtmf || []).map((d) => ({ digit: String(d.digit), atMs: Number(d.atMs) || 0, used: false })).sort((a, b) => a.atMs - b.atMs);
    this.dialOutcomes = [...(o.dialOutcomes || [])];
    this.audio = o.audio || Buffer.alloc(0);
    this.audioOffset = 0; // the caller's audio is consumed across streams
    this.statusCallback = o.statusCallback ? this.map.resolve(o.statusCallback, this.map.publicUrl('/')) : null;
    this.statusEvents = new Set(o.statusCallbackEvents || ['ringing', 'in-progress', 'completed']);
    this.statusSeq = 0;

    this.timeline = [];
    this.requests = []; // every HTTP request made: {kind, method, url, sentTo, params, signature, status, ms}
    this.twimlResponses = []; // every TwiML document received: {kind, url, status, contentType, body}
    this.httpErrors = [];
    this.streams = []; // MediaStream results
    this.agentParts = [];
    this.agentPartsGaps = [];
    this.background = []; // callbacks Twilio sends without waiting (stream status)
    this.failure = null;
    this.answeredAt = null;
    this.hungUp = false;
    this.finalStatus = null;
    this.verbsRun = 0;
    this.docs = 0;
  }

  now() {
    return performance.now() - this.epoch;
  }

  // Call time as the call would have lasted at speed 1 (what CallDuration reports).
  simNow() {
    return this.now() + this.simSkew;
  }

  log(dir, event, detail = {}) {
    const e = { t: round1(this.now()), dir, event, ...detail };
    this.timeline.push(e);
    if (this.o.onEvent) this.o.onEvent(e);
    return e;
  }

  fail(reason) {
    if (!this.failure) this.failure = reason;
    this.log('local', 'error', { reason });
  }

  // A simulated wait (scaled by `speed`) that ends early if the caller hangs up.
  // Resolves true when it ran its course.
  wait(ms) {
    const real = Math.max(0, ms / this.speed);
    if (this.hungUp) return Promise.resolve(false);
    const t0 = this.now();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters.delete(done);
        this.simSkew += Math.max(0, ms - (this.now() - t0));
        resolve(true);
      }, real);
      const done = () => {
        clearTimeout(t);
        this.simSkew += (this.now() - t0) * (this.speed - 1);
        resolve(false);
      };
      this.waiters.add(done);
    });
  }

  // A real-time wait (caller's own timing, e.g. until a key press), also cut short by hangup.
  waitReal(ms) {
    return this.wait(ms * this.speed);
  }

  hangup() {
    if (this.hungUp) return;
    this.hungUp = true;
    this.log('local', 'caller-hangup');
    for (const w of this.waiters) w();
    this.waiters.clear();
    if (this.activeStream) this.activeStream.stop();
  }

  async run() {
    this.epoch = performance.now();
    this.simSkew = 0;
    this.waiters = new Set();
    const startedAt = new Date();
    this.log('local', 'call', { callSid: this.callSid, from: this.params.From, to: this.params.To });
    const hangupTimer = this.o.hangupAfterMs != null ? setTimeout(() => this.hangup(), this.o.hangupAfterMs) : null;
    // A safety net: a call that nobody ends (a stream the server never closes, with
    // streamAutoStop false) is hung up and reported.
    const maxMs = this.o.maxDurationMs ?? 600000;
    const maxTimer = setTimeout(() => {
      this.fail(`the call was still running after ${maxMs} ms`);
      this.hangup();
    }, maxMs);

    await this.postStatus('ringing');
    const voiceUrl = this.map.publicUrl(this.o.voicePath || '/twilio/voice');
    const res = await this.request('voice', voiceUrl, this.o.voiceMethod || 'POST', this.params);
    let doc = this.documentOf('voice', voiceUrl, res);
    while (doc && !this.hungUp) {
      if (++this.docs > (this.o.maxDocuments || 50)) {
        this.fail(`more than ${this.o.maxDocuments || 50} TwiML documents: a loop?`);
        break;
      }
      doc = await this.execute(doc);
    }

    if (!this.finalStatus) this.finalStatus = this.answeredAt !== null ? 'completed' : this.failure ? 'failed' : 'no-answer';
    const durationS = this.answeredAt !== null ? (this.simNow() - this.answeredAt) / 1000 : 0;
    this.log('local', 'call-ended', { status: this.finalStatus, durationS: round1(durationS) });
    clearTimeout(hangupTimer);
    clearTimeout(maxTimer);
    // Twilio's `completed` event is sent for any final status (busy, no-answer, failed too).
    await this.postStatus('completed', { status: this.finalStatus, durationS });
    await Promise.allSettled(this.background);

    const last = this.streams[this.streams.length - 1] || null;
    return {
      ok: !this.failure,
      reason: this.failure || 'completed',
      callSid: this.callSid,
      params: this.params,
      startedAt,
      status: this.finalStatus,
      durationMs: round1(this.now()),
      timeline: this.timeline,
      twimlResponses: this.twimlResponses,
      requests: this.requests,
      httpErrors: this.httpErrors,
      streams: this.streams,
      stream: last,
      stats: last ? last.stats : null,
      agentAudio: Buffer.concat(this.agentParts),
      agentAudioWithGaps: Buffer.concat(this.agentPartsGaps),
      dialOutcomesLeft: this.dialOutcomes,
    };
  }

  // ---- HTTP ------------------------------------------------------------------------

  async request(kind, publicUrl, method, params) {
    const sentTo = this.map.toLocal(publicUrl);
    this.log('out', 'http', { kind, method: String(method).toUpperCase(), url: publicUrl });
    const res = await sendWebhook({ method, signUrl: publicUrl, sendUrl: sentTo, params, authToken: this.authToken, timeoutMs: this.o.httpTimeoutMs || 15000 });
    this.requests.push({ kind, method: String(method).toUpperCase(), url: res.url, sentTo, params, signature: res.signature, status: res.status, ms: round1(res.ms) });
    this.log('in', 'http-response', { kind, status: res.status, ms: round1(res.ms), ...(res.error ? { error: res.error } : {}) });
    if (res.status < 200 || res.status >= 300) this.httpErrors.push({ kind, url: publicUrl, status: res.status, error: res.error, body: res.text.slice(0, 500) });
    return res;
  }

  // The TwiML a request answered, or null (with the failure recorded) when there is none.
  documentOf(kind, url, res) {
    if (res.status === 403) {
      this.fail(`${kind === 'voice' ? 'webhook' : kind} refused: 403 (bad signature?)`);
      return null;
    }
    if (res.status === 0) {
      this.fail(`${kind} request failed: ${res.error}`);
      return null;
    }
    if (res.status < 200 || res.status >= 300) {
      // Twilio plays "an application error has occurred" and hangs up.
      this.fail(`${kind} answered HTTP ${res.status}`);
      return null;
    }
    this.twimlResponses.push({ kind, url, status: res.status, contentType: res.contentType, body: res.text });
    if (!/(text|application)\/xml/i.test(res.contentType)) this.log('local', 'warning', { warning: `${kind} answered Content-Type ${JSON.stringify(res.contentType)}, not XML` });
    return { url, text: res.text, kind };
  }

  // A request whose answer is TwiML to continue with (action, Redirect).
  async follow(kind, ref, doc, method, extra = {}) {
    const url = this.map.resolve(ref || doc.url, doc.url);
    const res = await this.request(kind, url, method || 'POST', { ...this.params, CallStatus: this.hungUp ? 'completed' : 'in-progress', ...extra });
    if (this.hungUp) return END; // the call is over: Twilio ignores the answer
    return this.documentOf(kind, url, res);
  }

  async postStatus(event, { status = event, durationS } = {}) {
    if (!this.statusCallback || !this.statusEvents.has(event)) return;
    const params = statusCallbackParams(this.params, { status, sequenceNumber: this.statusSeq++, durationS });
    await this.request('status-callback', this.statusCallback, this.o.statusCallbackMethod || 'POST', params);
  }

  answer() {
    if (this.answeredAt !== null) return Promise.resolve();
    this.answeredAt = this.simNow();
    this.log('local', 'answered');
    return this.postStatus('in-progress');
  }

  // ---- TwiML -----------------------------------------------------------------------

  async execute(doc) {
    const parsed = parseTwiml(doc.text);
    if (parsed.error) {
      this.fail(`invalid TwiML from ${doc.kind} (${doc.url}): ${parsed.error}`);
      return END;
    }
    for (const el of elements(parsed.root)) {
      if (this.hungUp) return END;
      const verb = el.nodeName;
      if (!VOICE_VERBS.has(verb)) {
        this.fail(`invalid TwiML: unknown verb <${verb}> in ${doc.url}`);
        return END;
      }
      // Any verb but a leading <Reject> answers the call.
      if (!(verb === 'Reject' && this.answeredAt === null)) await this.answer();
      this.verbsRun++;
      const handler = this[`verb${verb}`];
      if (!handler) {
        this.log('local', 'skipped', { verb, note: 'not simulated' });
        continue;
      }
      const next = await handler.call(this, el, doc);
      if (next === NEXT) continue;
      return next;
    }
    return END; // the end of the document ends the call
  }

  verbSay(el) {
    const a = attrs(el);
    const words = text(el).split(/\s+/).filter(Boolean).length;
    const loops = loopCount(a.loop);
    const ms = Math.max(500, (words / (this.o.wordsPerSecond || 2.5)) * 1000) * loops;
    this.log('local', 'Say', { text: text(el), ...(a.voice ? { voice: a.voice } : {}), ...(a.language ? { language: a.language } : {}), ms: Math.round(ms) });
    return this.wait(ms).then(() => NEXT);
  }

  verbPlay(el) {
    const a = attrs(el);
    if (a.digits) {
      this.log('local', 'Play', { digits: a.digits });
      return this.wait(a.digits.length * 100).then(() => NEXT);
    }
    const ms = (this.o.playMs ?? 2000) * loopCount(a.loop);
    this.log('local', 'Play', { url: text(el), ms });
    return this.wait(ms).then(() => NEXT);
  }

  verbPause(el) {
    const s = Number(attrs(el).length ?? 1);
    this.log('local', 'Pause', { s });
    return this.wait(s * 1000).then(() => NEXT);
  }

  async verbConnect(el, doc) {
    const a = attrs(el);
    const streamEl = elements(el).find((n) => n.nodeName === 'Stream');
    const others = elements(el).filter((n) => n.nodeName !== 'Stream').map((n) => n.nodeName);
    if (!streamEl) {
      this.log('local', 'skipped', { verb: 'Connect', note: `no <Stream> (${others.join(', ') || 'empty'}): not simulated` });
    } else {
      await this.runStream(streamEl, doc);
    }
    if (this.hungUp) return END;
    if (!a.action) return NEXT;
    return this.follow('connect-action', a.action, doc, a.method);
  }

  async runStream(streamEl, doc) {
    const sa = attrs(streamEl);
    const customParameters = {};
    for (const p of elements(streamEl).filter((n) => n.nodeName === 'Parameter')) {
      const pa = attrs(p);
      if (pa.name) customParameters[pa.name] = pa.value ?? '';
    }
    const signUrl = this.map.resolve(sa.url, doc.url, { ws: true });
    const localUrl = this.map.toLocal(signUrl);
    const startMs = this.now();
    const digits = this.dtmf.filter((d) => !d.used);
    const audio = this.audio.subarray(this.audioOffset);
    const streamSid = newSid('MZ');
    const stream = new MediaStream({
      url: localUrl,
      signUrl,
      authToken: this.authToken,
      accountSid: this.params.AccountSid,
      callSid: this.callSid,
      streamSid,
      customParameters,
      audio,
      dtmf: digits.map((d) => ({ digit: d.digit, atMs: Math.max(0, d.atMs - startMs) })),
      tailMs: this.o.streamTailMs ?? 1000,
      autoStop: this.o.streamAutoStop ?? true,
      stopAtMs: this.o.hangupAfterMs != null ? Math.max(0, this.o.hangupAfterMs - startMs) : null, // (maxDurationMs: via hangup())
      clearWindowMs: this.o.clearWindowMs,
      epoch: this.epoch,
      onEvent: (e) => {
        this.timeline.push(e);
        if (this.o.onEvent) this.o.onEvent(e);
      },
    });
    this.log('local', 'Stream', { url: signUrl, ...(localUrl !== signUrl ? { via: localUrl } : {}), parameters: customParameters });
    // <Stream statusCallback>: stream-started / stream-stopped / stream-error (not waited for).
    const streamStatus = (event, error) => {
      if (!sa.statusCallback) return;
      const p = { AccountSid: this.params.AccountSid, CallSid: this.callSid, StreamSid: streamSid, StreamName: sa.name || streamSid, StreamEvent: event, Timestamp: new Date().toISOString() };
      if (error) p.StreamError = error;
      this.background.push(this.request('stream-status', this.map.resolve(sa.statusCallback, doc.url), sa.statusCallbackMethod || 'POST', p));
    };
    stream.on('event', (e) => e.event === 'start' && streamStatus('stream-started'));
    this.activeStream = stream;
    const r = await stream.run();
    this.activeStream = null;
    streamStatus(r.handshakeStatus || (r.error && r.closeCode === null) ? 'stream-error' : 'stream-stopped', r.error || undefined);

    // The caller's audio and digits the stream used are spent.
    this.audioOffset += Math.min(audio.length, r.stats.framesSent * 160);
    for (let i = 0; i < r.stats.dtmfSent; i++) digits[i].used = true;
    this.streams.push(r);
    this.agentParts.push(stream.agentAudio());
    this.agentPartsGaps.push(stream.agentAudio({ gaps: true }));

    if (r.handshakeStatus) this.fail(`stream refused: HTTP ${r.handshakeStatus}${r.handshakeStatus === 403 ? ' (bad signature?)' : ''}`);
    else if (r.closeCode === null && r.error) this.fail(`stream failed: ${r.error}`);
    else if (r.closedBy === 'server' && r.closeCode !== 1000 && r.closeCode !== 1005) this.fail(`stream closed by the server with ${r.closeCode}${r.closeReason ? ' ' + r.closeReason : ''}`);
    if (r.stats.protocolErrors) this.fail(`stream: ${r.stats.protocolErrors} protocol error(s) from the server`);
    if (r.stats.audioAfterClear) this.fail(`stream: ${r.stats.audioAfterClear} bytes of agent audio right after a clear`);
  }

  async verbDial(el, doc) {
    const a = attrs(el);
    const nouns = elements(el);
    let target;
    let kind;
    if (!nouns.length) {
      kind = 'Number';
      target = text(el);
    } else {
      kind = nouns[0].nodeName;
      target = text(nouns[0]) || attrs(nouns[0]).name || '';
    }
    let outcome = this.dialOutcomes.length ? String(this.dialOutcomes.shift()) : 'completed';
    if (outcome === 'answered') outcome = 'completed';
    if (!OUTCOMES.has(outcome)) {
      this.fail(`unknown dial outcome ${JSON.stringify(outcome)}`);
      outcome = 'failed';
    }
    const childSid = newSid('CA');
    this.log('local', 'Dial', { [kind.toLowerCase()]: target, outcome, ...(a.callerId ? { callerId: a.callerId } : {}), ...(a.answerOnBridge ? { answerOnBridge: a.answerOnBridge } : {}), ...(a.timeout ? { timeout: a.timeout } : {}) });
    if (kind !== 'Number' && kind !== 'Sip') this.log('local', 'warning', { warning: `<Dial><${kind}> is simulated like a number` });

    const nounAttrs = nouns.length ? attrs(nouns[0]) : {};
    const legEvents = new Set(String(nounAttrs.statusCallbackEvent || 'completed').split(/[\s,]+/).filter(Boolean));
    let legSeq = 0;
    const legStatus = async (event, status, extra = {}) => {
      if (!nounAttrs.statusCallback || !legEvents.has(event)) return;
      const p = {
        ...this.params, CallSid: childSid, ParentCallSid: this.callSid, Direction: 'outbound-dial', To: target, Called: target,
        CallStatus: status, CallbackSource: 'call-progress-events', SequenceNumber: String(legSeq++), Timestamp: rfc2822(), ...extra,
      };
      await this.request('dial-leg-status', this.map.resolve(nounAttrs.statusCallback, doc.url), nounAttrs.statusCallbackMethod || 'POST', p);
    };

    // Simulated ringing and talking (scaled by `speed`).
    const timeoutS = Number(a.timeout || 30);
    const ringMs = outcome === 'no-answer' ? timeoutS * 1000 : outcome === 'failed' ? 200 : Math.min(this.o.dialRingMs ?? 2000, timeoutS * 1000);
    await legStatus('initiated', 'initiated');
    if (outcome !== 'failed') await legStatus('ringing', 'ringing');
    let talkS = 0;
    let status = outcome;
    if (!(await this.wait(ringMs))) status = 'canceled';
    else if (outcome === 'completed') {
      await legStatus('answered', 'in-progress');
      this.log('local', 'dial-answered', { sid: childSid });
      const t0 = this.now();
      const talkMs = this.o.dialTalkMs ?? 5000;
      // The nominal time when the talk ran its course (timer jitter times `speed` is noise);
      // the time actually simulated when the caller hung up during it.
      const full = await this.wait(talkMs);
      talkS = Math.max(1, Math.round((full ? talkMs : (this.now() - t0) * this.speed) / 1000));
    }
    await legStatus('completed', status, status === 'completed' ? { CallDuration: String(talkS) } : {});
    this.log('local', 'dial-ended', { DialCallStatus: status, ...(status === 'completed' ? { DialCallDuration: talkS } : {}) });
    if (this.hungUp) return END;

    if (!a.action) return NEXT; // no action: on with the next verb
    const extra = { DialCallStatus: status, DialCallSid: childSid, DialBridged: status === 'completed' ? 'true' : 'false' };
    if (status === 'completed') extra.DialCallDuration = String(talkS);
    if (kind === 'Sip') {
      extra.DialSipCallId = `${randomUUID()}@0.0.0.0`;
      extra.DialSipResponseCode = String(SIP_CODES[status]);
    }
    return this.follow('dial-action', a.action, doc, a.method, extra);
  }

  verbRedirect(el, doc) {
    const a = attrs(el);
    this.log('local', 'Redirect', { url: text(el) });
    return this.follow('redirect', text(el), doc, a.method);
  }

  async verbGather(el, doc) {
    const a = attrs(el);
    const numDigits = a.numDigits ? Number(a.numDigits) : Infinity;
    const finishOnKey = a.finishOnKey ?? '#';
    const timeoutMs = Number(a.timeout ?? 5) * 1000;
    if (a.input && !/dtmf/.test(a.input)) this.log('local', 'warning', { warning: `<Gather input="${a.input}">: only dtmf is simulated` });
    this.log('local', 'Gather', { numDigits: a.numDigits, finishOnKey, timeout: timeoutMs / 1000 });
    // The prompt (nested Say/Play/Pause) plays unless a key is already pressed.
    for (const n of elements(el)) {
      if (this.dtmf.some((d) => !d.used && d.atMs <= this.now())) break;
      const h = this[`verb${n.nodeName}`];
      if (h && ['Say', 'Play', 'Pause'].includes(n.nodeName)) await h.call(this, n, doc);
      if (this.hungUp) return END;
    }
    let digits = '';
    let finishedOnKey = '';
    for (;;) {
      const d = this.dtmf.find((x) => !x.used);
      if (!d || d.atMs - this.now() > timeoutMs) {
        // nothing within the timeout: Twilio waits it out, then submits what it has
        if (!(await this.wait(timeoutMs))) return END;
        break;
      }
      if (d.atMs > this.now() && !(await this.waitReal(d.atMs - this.now()))) return END;
      d.used = true;
      this.log('out', 'key', { digit: d.digit });
      if (finishOnKey && finishOnKey.includes(d.digit)) {
        finishedOnKey = d.digit;
        break;
      }
      digits += d.digit;
      if (digits.length >= numDigits) break;
    }
    if (!digits && !finishedOnKey && a.actionOnEmptyResult !== 'true') {
      this.log('local', 'gather-timeout');
      return NEXT;
    }
    return this.follow('gather-action', a.action, doc, a.method, { Digits: digits, FinishedOnKey: finishedOnKey });
  }

  async verbRecord(el, doc) {
    const a = attrs(el);
    const maxS = Number(a.maxLength ?? 3600);
    const finishOnKey = a.finishOnKey ?? '1234567890*#';
    const left = this.audio.length - this.audioOffset;
    let ms = Math.min(maxS * 1000, this.o.recordMs ?? (left > 0 ? (left * 1000) / SAMPLE_RATE : 3000));
    this.log('local', 'Record', { maxLength: maxS, ms: Math.round(ms) });
    let endDigit = '';
    const key = this.dtmf.find((d) => !d.used && finishOnKey.includes(d.digit) && d.atMs - this.now() <= ms / this.speed);
    if (key) ms = Math.max(0, (key.atMs - this.now()) * this.speed);
    const t0 = this.now();
    const full = await this.wait(ms);
    const recordedS = Math.round((full ? ms : (this.now() - t0) * this.speed) / 1000);
    if (key && full) {
      key.used = true;
      endDigit = key.digit;
    }
    this.audioOffset += Math.min(left, Math.round((recordedS * SAMPLE_RATE)));
    const recordingSid = newSid('RE');
    const recordingUrl = `https://api.twilio.com/2010-04-01/Accounts/${this.params.AccountSid}/Recordings/${recordingSid}`;
    const rec = { RecordingUrl: recordingUrl, RecordingSid: recordingSid, RecordingDuration: String(recordedS), Digits: this.hungUp ? 'hangup' : endDigit };
    let next = NEXT;
    if (recordedS > 0) next = await this.follow('record-action', a.action, doc, a.method, rec);
    else this.log('local', 'record-empty', { note: 'empty recording: no action request' });
    if (a.recordingStatusCallback && recordedS > 0) {
      const events = String(a.recordingStatusCallbackEvent || 'completed').split(/[\s,]+/);
      if (events.includes('completed')) {
        await this.request('recording-status', this.map.resolve(a.recordingStatusCallback, doc.url), a.recordingStatusCallbackMethod || 'POST', {
          AccountSid: this.params.AccountSid, CallSid: this.callSid, RecordingSid: recordingSid, RecordingUrl: recordingUrl,
          RecordingStatus: 'completed', RecordingDuration: String(recordedS), RecordingChannels: '1',
          RecordingStartTime: rfc2822(new Date(Date.now() - recordedS * 1000)), RecordingSource: 'RecordVerb',
        });
      }
    }
    return next;
  }

  verbHangup() {
    this.log('local', 'Hangup');
    this.finalStatus = 'completed';
    return END;
  }

  verbReject(el) {
    const reason = attrs(el).reason || 'rejected';
    this.log('local', 'Reject', { reason });
    this.finalStatus = this.answeredAt === null ? (reason === 'busy' ? 'busy' : 'no-answer') : 'completed';
    return END;
  }
}

// loop="0" repeats until the call ends; counted as 10 here.
function loopCount(v) {
  const n = v === undefined ? 1 : Number(v);
  return n === 0 ? 10 : Math.max(1, n || 1);
}
