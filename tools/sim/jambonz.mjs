// jambonz's feature server and the caller, for calls against switchboard (or any jambonz app):
// the webhooks as lib/utils/http-requestor.js sends them (JSON, snake_case, Jambonz-Signature), the
// answer validated with @jambonz/verb-specifications, the verbs run in order as
// lib/session/call-session.js runs them, status hooks as lib/session/inbound-call-session.js
// posts them, actionHooks, and the listen verb's socket (jambonz_listen.mjs).
//
//   const call = placeInbound({ base: 'http://127.0.0.1:8080', secret, from, to, audio: tone(3000),
//                               dialOutcomes: ['busy', 'completed'] });
//   call.on('event', (e) => ...);  setTimeout(() => call.hangup(), 8000);
//   const r = await call.done;      // r.timeline, r.hooks, r.listens, r.dials, r.sipStatus ...
//
// playOutbound(restCreateBody) plays a call created with POST /v1/Accounts/{sid}/Calls.
// Timeline entries: {t (ms from the start), dir: 'out' (jambonz/the caller to the app) | 'in' (the
// app to jambonz) | 'local' (what jambonz does), event, ...}.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { runListen, SUBPROTOCOL, DRACHTIO_SUBPROTOCOL } from './jambonz_listen.mjs';
import { DEFAULTS, SIP_REASON, callInfoJson, hex, inviteOf, postHook, snakeKeys, verbsOf } from './jambonz_hooks.mjs';
import { OUTCOME_ALIASES, runDial, runRefer } from './jambonz_dial.mjs';
import { mulawToPcm16, resampleLinear } from './wav.mjs';

export { SUBPROTOCOL, DRACHTIO_SUBPROTOCOL };
export { jambonzSignature, verifyJambonzSignature, snakeKeys, postHook, verbsOf } from './jambonz_hooks.mjs';
export { DIAL_OUTCOMES, parseDialOutcomes, dialStatusOf } from './jambonz_dial.mjs';
const round1 = (x) => Math.round(x * 10) / 10;

// ---- the call ------------------------------------------------------------------------------

/**
 * One call, inbound (placeInbound) or created through the REST API (playOutbound). Options:
 *   base            where the app is (http://127.0.0.1:8080): relative hooks resolve against it
 *   callHook        '/jambonz/call' (absolute, relative, or {url, method, username, password})
 *   statusHook      '/jambonz/status'; null: none
 *   secret          the account's webhook secret: every hook is signed (none: not signed)
 *   from, to, callSid, callerName, accountSid, applicationSid, callId, sbcCallid,
 *   originatingSipIp, originatingSipTrunkName, sipHeaders, defaults, envVars, apiBaseUrl
 *   audio           what the caller says in the first listen: 8 kHz mu-law Buffer, or
 *                   {pcm: Int16Array, sampleRate}; voicemailAudio: in a listen whose metadata
 *                   has voicemail: true (default: audio); then the caller presses the listen's
 *                   finishOnKey (voicemailKey: false: stays silent until maxLength)
 *   dtmf            [{digit, atMs, durationMs}] from the start of the call (call.dtmf(): any time)
 *   hangupAfterMs   the caller hangs up; autoHangupTailMs: hangs up that long after their audio
 *                   and last key, while a listen runs; maxDurationMs (600000): hangs up, failure
 *   dialOutcome     ({target, index, attempt, dial}) => 'completed'|'busy'|'no-answer'|'failed' or
 *                   {outcome, ringMs, talkMs, sipStatus}; or dialOutcomes: a list used in order
 *                   (default completed); ringMs (2000), talkMs (5000)
 *   referOutcome    (verb) => {status: 202, finalStatus: 200, notifyMs: 1000, bye: true}
 *   sayMs           (text) => ms a say lasts (default 60 ms a character, at least 500); playMs 2000
 *   speed           simulated waits (say, pause, ringing, talk, dial timeouts) run N times faster
 *   frameMs (20), subprotocol (audio.jambonz.org), channelRate (8000: the call's codec),
 *   prebuffer (true), faithfulMarks (true): see jambonz_playout.mjs
 *   hookTimeoutMs   10000 (HTTP_TIMEOUT); onEvent(entry)
 * The call emits 'event' (each timeline entry) and 'listen' (a ListenSocket once it is open).
 */
export class JambonzCall extends EventEmitter {
  constructor(o, direction) {
    super();
    this.o = o;
    this.direction = direction;
    this.inbound = direction === 'inbound';
    this.speed = o.speed || 1;
    this.t0 = performance.now();
    this.timeline = [];
    this.hooks = [];
    this.verbs = [];
    this.listens = [];
    this.dials = [];
    this.statuses = [];
    this.dtmfLog = [];
    this.warnings = [];
    this.pending = new Set();
    this.timers = new Set();
    this.wakers = new Set();
    this.dialQueue = [...(o.dialOutcomes || [])];
    this.statusHook = o.statusHook === undefined ? '/jambonz/status' : o.statusHook;
    this.answered = false;
    this.gone = false;
    this.sipStatus = null; // the final SIP response to the caller (inbound)
    const callHook = o.callHook ?? '/jambonz/call';
    const url = typeof callHook === 'object' ? callHook.url : callHook;
    this.base = /^https?:\/\//.test(url) ? new URL(url).origin : String(o.base || 'http://127.0.0.1:8080').replace(/\/+$/, '');
    this.callHook = typeof callHook === 'object' ? callHook : { url: callHook };
    this.ci = {
      direction, traceId: o.traceId || hex(16), hasRecording: false, callTerminationBy: undefined, callerName: o.callerName ?? '',
      callSid: o.callSid || randomUUID(), accountSid: o.accountSid || o.account_sid || randomUUID(), applicationSid: o.applicationSid || o.application_sid || randomUUID(),
      from: o.from || '+14155550100', to: o.to || '+14155550199', callId: o.callId || `${hex(4)}-${hex(2)}-${hex(2)}-${hex(2)}-${hex(6)}`,
      sipStatus: 100, sipReason: 'Trying', callStatus: 'trying', sbcCallid: o.sbcCallid || `${hex(4)}-${hex(4)}-${hex(3)}-${hex(6)}`,
      originatingSipIp: o.originatingSipIp || '198.51.100.7', originatingSipTrunkName: o.originatingSipTrunkName || 'carrier',
      localSipAddress: o.localSipAddress || '10.0.1.5:5060', publicIp: o.publicIp || '203.0.113.10', apiBaseUrl: o.apiBaseUrl,
    };
    this.callSid = this.ci.callSid;
    let resolve;
    this.done = new Promise((r) => (resolve = r));
    this.resolve = resolve;
  }

  now() {
    return performance.now() - this.t0;
  }

  log(dir, event, fields = {}) {
    const e = { t: round1(this.now()), dir, event, ...fields };
    this.timeline.push(e);
    try {
      this.o.onEvent?.(e);
      this.emit('event', e);
    } catch {}
    return e;
  }

  warn(w) {
    this.warnings.push(w);
    this.log('local', 'warning', { warning: w });
  }

  after(ms, fn) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, ms));
    this.timers.add(t);
    return t;
  }

  // a simulated wait, cut short when the call goes
  wait(ms) {
    if (this.gone) return Promise.resolve(false);
    return new Promise((r) => {
      const done = (v) => {
        this.wakers.delete(done);
        clearTimeout(t);
        r(v);
      };
      const t = setTimeout(() => done(true), Math.max(0, ms));
      this.wakers.add(done);
    });
  }

  interrupt() {
    for (const w of [...this.wakers]) w(false);
    this.kill?.();
  }

  // ---- hooks ----

  resolveHook(h) {
    const spec = typeof h === 'object' && h ? h : { url: h };
    const url = /^(https?|wss?):\/\//.test(spec.url) ? spec.url : this.base + spec.url;
    return { ...spec, url };
  }

  /** One webhook, recorded: {kind, method, url, body, headers, status, json, error, ms}. kind: call, status, action, redirect. */
  async request(kind, hook, params) {
    const h = this.resolveHook(hook);
    const payload = snakeKeys(params);
    const rec = { t: round1(this.now()), kind, method: (h.method || 'POST').toUpperCase(), url: h.url, body: payload, headers: null, status: null, json: undefined, error: null, ms: null };
    this.hooks.push(rec);
    this.log('out', 'hook', { kind, method: rec.method, url: h.url, body: payload, signed: !!this.o.secret });
    const t = performance.now();
    Object.assign(rec, await postHook(h, payload, { secret: this.o.secret, timeoutMs: this.o.hookTimeoutMs ?? 10000 }));
    rec.ms = round1(performance.now() - t);
    this.log('in', 'hook-response', { kind, url: h.url, status: rec.status, ms: rec.ms, ...(rec.error ? { error: rec.error } : { response: rec.json }) });
    return rec;
  }

  notifyStatus(callStatus, { sipStatus, sipReason, duration } = {}) {
    if (callStatus === 'completed') {
      if (this.notifiedComplete) return;
      this.notifiedComplete = true;
    }
    Object.assign(this.ci, { callStatus }, sipStatus ? { sipStatus } : {}, sipReason ? { sipReason } : {});
    if (typeof duration === 'number') this.ci.duration = duration;
    this.statuses.push({ t: round1(this.now()), callStatus, sipStatus: this.ci.sipStatus });
    this.log('local', 'call-status', { callStatus, sipStatus: this.ci.sipStatus, ...(typeof duration === 'number' ? { duration } : {}), ...(this.ci.callTerminationBy ? { terminatedBy: this.ci.callTerminationBy } : {}) });
    if (!this.statusHook) return;
    const p = this.request('status', this.statusHook, callInfoJson(this.ci)).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** performAction: the verb's actionHook; true when the answer replaced the application. */
  async action(d, results, kind = 'action') {
    if (!d.actionHook) return false;
    const params = { ...callInfoJson(this.ci), ...results };
    if (d.id) params.verb_id = d.id;
    const r = await this.request(kind, d.actionHook, params);
    if (r.error) return this.warn(`the ${kind} hook failed (${r.error}): the verbs left run`), false;
    if (!Array.isArray(r.json)) return false;
    let tasks;
    try {
      tasks = verbsOf(r.json);
    } catch (e) {
      this.log('local', 'refused', { kind, reason: e.message });
      this.warn(`the ${kind} hook's answer was refused (${e.message}): the verbs left run`);
      return false;
    }
    if (!tasks.length) return false;
    if (this.gone) return this.log('local', 'ignored', { kind, why: 'the call is gone' }), false;
    this.tasks = tasks;
    this.log('local', 'app-replaced', { verbs: tasks.map((x) => x.name) });
    return true;
  }

  // ---- call state ----

  answer() {
    if (this.answered || !this.inbound) return;
    this.answered = true;
    this.sipStatus = 200;
    this.connectAt = this.now();
    this.log('local', 'answer', { sip: '200 OK' });
    this.notifyStatus('in-progress', { sipStatus: 200, sipReason: 'OK' });
  }

  earlyMedia() {
    if (this.answered || this.early || !this.inbound) return;
    this.early = true;
    this.log('local', 'early-media', { sip: '183 Session Progress' });
  }

  duration() {
    return Math.floor((this.now() - this.connectAt) / 1000);
  }

  /** The caller hangs up (a BYE, or a CANCEL before the answer). */
  hangup(why = 'caller') {
    if (this.gone || this.finished) return;
    this.log('local', 'caller-hangup', { why });
    if (this.inHook) return void (this.canceled = true); // handled when the call hook returns
    this.ci.callTerminationBy = 'caller';
    if (this.answered) this.notifyStatus('completed', { duration: this.duration() });
    else if (this.inbound && !this.sipStatus) {
      this.sipStatus = 487;
      this.notifyStatus('no-answer', { sipStatus: 487, sipReason: 'Request Terminated' });
    }
    this.gone = true;
    this.interrupt();
  }

  jambonzHangup(why) {
    if (this.gone) return;
    this.ci.callTerminationBy = 'jambonz';
    this.log('local', 'jambonz-hangup', { why });
    this.notifyStatus('completed', { duration: this.duration() });
    this.gone = true;
    this.interrupt();
  }

  dtmf(digit, { durationMs = 250 } = {}) {
    digit = String(digit);
    const l = this.activeListen;
    const rec = { t: round1(this.now()), digit, durationMs, delivered: false };
    this.dtmfLog.push(rec);
    this.log('local', 'dtmf', { digit });
    if (!l || this.gone) return false;
    if (l.d.passDtmf) rec.delivered = l.sock.dtmf(digit, durationMs);
    if (l.d.finishOnKey === digit) {
      l.digits = digit;
      rec.finished = true;
      l.stop('finishOnKey');
    }
    return rec.delivered;
  }

  // ---- running ----

  async runTasks() {
    while (this.tasks.length && !this.gone) {
      const task = this.tasks.shift();
      const v = { t: round1(this.now()), verb: task.name, data: task.data };
      this.verbs.push(v);
      this.log('local', 'verb', { verb: task.name, data: task.data });
      try {
        await this.runVerb(task.name, task.data, v);
      } catch (e) {
        this.warn(`${task.name}: ${e.message}`);
      }
      v.endT = round1(this.now());
      this.log('local', 'verb-end', { verb: task.name, ...(v.results ? { results: v.results } : {}) });
    }
  }

  async runVerb(name, d, v) {
    switch (name) {
      case 'say':
      case 'play': {
        if (this.inbound && !this.answered) d.earlyMedia ? this.earlyMedia() : this.answer();
        const texts = name === 'say' ? (Array.isArray(d.text) ? d.text : [d.text ?? '']) : [].concat(d.url);
        const one = (x) => (name === 'play' ? this.o.playMs ?? 2000 : typeof this.o.sayMs === 'function' ? this.o.sayMs(x) : this.o.sayMs ?? Math.max(500, String(x).length * 60));
        const ms = texts.reduce((a, x) => a + one(x), 0);
        v.ms = ms;
        if (d.loop === 'forever') while (await this.wait(ms / this.speed));
        else await this.wait((ms * (Number(d.loop) || 1)) / this.speed);
        return;
      }
      case 'pause':
        return void (await this.wait(((d.length || 0) * 1000) / this.speed));
      case 'hangup':
        if (!this.answered) return this.warn('hangup: the call was not answered (precondition stable-call): skipped');
        return this.jambonzHangup('hangup verb');
      case 'sip:decline':
        if (!this.inbound || this.answered || this.sipStatus) return this.warn('sip:decline: a final response was already sent (precondition unanswered-call): skipped');
        this.sipStatus = d.status;
        this.log('local', 'sip-final', { status: d.status, reason: d.reason || SIP_REASON[d.status] || '' });
        this.notifyStatus('failed', { sipStatus: d.status, sipReason: d.reason });
        this.gone = true;
        return;
      case 'redirect':
        if (d.statusHook) this.statusHook = d.statusHook;
        return void (await this.action(d, null, 'redirect'));
      case 'tag':
        this.ci.customerData = d.data;
        return;
      case 'answer':
        return this.answer();
      case 'config':
        for (const k of Object.keys(d)) if (!['id', 'synthesizer', 'recognizer'].includes(k)) this.warn(`config.${k} is not simulated`);
        return;
      case 'listen':
      case 'stream':
        return runListen(this, d, v);
      case 'dial':
        return runDial(this, d, v);
      case 'sip:refer':
        return runRefer(this, d, v);
      default:
        this.warn(`${name} is not simulated: it ends at once`);
    }
  }

  // ---- the caller ----

  callerPcm(rate, audio = this.o.audio) {
    if (!audio) return new Int16Array(0);
    const pcm = Buffer.isBuffer(audio) ? mulawToPcm16(audio) : audio.pcm;
    const from = Buffer.isBuffer(audio) ? 8000 : audio.sampleRate || 8000;
    // the caller's line is channelRate (G.711: 8 kHz); FreeSWITCH resamples to the listen's rate
    const line = resampleLinear(pcm, from, this.o.channelRate || 8000);
    return Int16Array.from(resampleLinear(line, this.o.channelRate || 8000, rate), (x) => Math.round(x));
  }

  // ---- the whole call ----

  startCallerClock() {
    const o = this.o;
    for (const k of o.dtmf || []) this.after(k.atMs, () => this.dtmf(k.digit, k));
    if (o.hangupAfterMs != null) this.after(o.hangupAfterMs, () => this.hangup('hangupAfterMs'));
    const maxMs = o.maxDurationMs ?? 600000;
    this.after(maxMs, () => {
      if (this.gone) return;
      this.failure = `the call was still running after ${maxMs / 1000} s: the caller hung up`;
      this.hangup('maxDuration');
    });
    if (o.autoHangupTailMs != null) {
      const keysDone = Math.max(0, ...(o.dtmf || []).map((k) => k.atMs));
      const check = setInterval(() => {
        if (this.gone || this.finished) return clearInterval(check);
        const l = this.activeListen;
        if (l && this.audioDoneAt !== undefined && !l.d.metadata?.voicemail && this.now() >= Math.max(this.audioDoneAt, keysDone) + o.autoHangupTailMs) this.hangup('done talking');
      }, 100);
      this.timers.add(check);
    }
  }

  async runInbound() {
    const ci = this.ci;
    this.log('local', 'call', { direction: 'inbound', from: ci.from, to: ci.to, callSid: ci.callSid });
    this.startCallerClock();
    // invokeWebCallback: {sip, ...the CallInfo's own fields, service_provider_sid, defaults, env_vars}
    const own = Object.fromEntries(Object.entries(ci).filter(([k]) => !['apiBaseUrl'].includes(k)));
    const params = Object.assign({ sip: inviteOf(ci, this.o) }, own, { serviceProviderSid: this.o.serviceProviderSid || randomUUID() }, { defaults: this.o.defaults || DEFAULTS }, this.o.envVars ? { env_vars: this.o.envVars } : {});
    this.inHook = true;
    const r = await this.request('call', this.callHook, params);
    this.inHook = false;
    let tasks;
    try {
      if (r.error) throw new Error(r.error);
      tasks = verbsOf(r.json);
      if (!tasks.length) throw new Error('no application provided');
    } catch (e) {
      // JAMBONES_WEBHOOK_ERROR_RETURN: 480, X-Reason; no session, so no status hooks
      this.sipStatus = 480;
      this.refused = e.message;
      this.failure = `the call hook's answer was refused: ${e.message}`;
      this.log('local', 'sip-final', { status: 480, reason: 'Temporarily Unavailable', xReason: e.message });
      return;
    }
    if (this.canceled) {
      // InboundCallSession's constructor: the cancel is handled first, then "trying"
      this.ci.callTerminationBy = 'caller';
      this.sipStatus = 487;
      this.notifyStatus('no-answer', { sipStatus: 487, sipReason: 'Request Terminated' });
      this.notifyStatus('trying', { sipStatus: 100, sipReason: 'Trying' });
      this.gone = true;
      return;
    }
    this.notifyStatus('trying', { sipStatus: 100, sipReason: 'Trying' });
    this.tasks = tasks;
    await this.runTasks();
    if (this.gone) return;
    if (this.answered) this.jambonzHangup('no verbs left');
    else if (!this.sipStatus) {
      // _onTasksDone: tasks completed without answering the call -> 603, with no status hook
      this.sipStatus = 603;
      this.log('local', 'sip-final', { status: 603, reason: 'Decline', why: 'the verbs ended without answering the call' });
    }
  }

  async runOutbound() {
    const o = this.o;
    const ci = this.ci;
    if (o.tag) ci.customerData = o.tag;
    this.log('local', 'call', { direction: 'outbound', from: ci.from, to: ci.to, callSid: ci.callSid });
    this.startCallerClock();
    this.notifyStatus('trying', { sipStatus: 100, sipReason: 'Trying' });
    const outcome = OUTCOME_ALIASES[o.answer] ?? o.answer ?? 'completed';
    const ringMs = o.ringMs ?? 2000;
    if (!(await this.wait(Math.min(100, ringMs) / this.speed))) return this.outboundGone();
    ci.sbcCallid = `${hex(4)}-${hex(4)}-${hex(3)}`;
    this.notifyStatus('ringing', { sipStatus: 180 }); // cbProvisional passes no reason
    const waitMs = outcome === 'no-answer' ? (o.timeout || 60) * 1000 : ringMs;
    if (!(await this.wait(waitMs / this.speed))) return this.outboundGone();
    if (outcome !== 'completed') {
      const sip = o.sipStatus ?? { busy: 486, 'no-answer': 487, failed: 503 }[outcome];
      // create-call.js: 486/603 busy, 487 no-answer, others failed
      const st = sip === 486 || sip === 603 ? 'busy' : sip === 487 ? 'no-answer' : 'failed';
      this.sipStatus = sip;
      return this.notifyStatus(st, { sipStatus: sip, sipReason: SIP_REASON[sip] });
    }
    this.answered = true;
    this.sipStatus = 200;
    this.connectAt = this.now();
    this.notifyStatus('in-progress', { sipStatus: 200, sipReason: 'OK' });
    const r = await this.request('call', this.callHook, { ...callInfoJson(ci), ...(o.envVars ? { env_vars: o.envVars } : {}), defaults: o.defaults || DEFAULTS });
    if (this.gone) return;
    try {
      if (r.error) throw new Error(r.error);
      this.tasks = Array.isArray(r.json) ? verbsOf(r.json) : [];
    } catch (e) {
      this.refused = e.message;
      this.log('local', 'refused', { kind: 'call', reason: e.message });
      this.tasks = [];
    }
    await this.runTasks();
    if (!this.gone) this.jambonzHangup('no verbs left');
  }

  outboundGone() {
    // the callee side never answered and the call was ended: jambonz cancels (487 no-answer)
    this.sipStatus = 487;
    this.notifyStatus('no-answer', { sipStatus: 487, sipReason: 'Request Terminated' });
    this.gone = true;
  }

  async run() {
    try {
      await (this.inbound ? this.runInbound() : this.runOutbound());
    } catch (e) {
      this.failure = `the simulator failed: ${e.stack || e.message}`;
      this.log('local', 'error', { reason: this.failure });
    }
    this.finished = true;
    this.gone = true;
    for (const t of this.timers) clearTimeout(t), clearInterval(t);
    if (this.orphan && !this.orphan.closed) await this.orphan.close();
    while (this.pending.size) await Promise.allSettled([...this.pending]);
    this.log('local', 'call-ended', { callStatus: this.ci.callStatus, sipStatus: this.sipStatus, duration: this.ci.duration ?? null, terminatedBy: this.ci.callTerminationBy ?? null });
    const r = this.result();
    this.resolve(r);
    return r;
  }

  result() {
    const listens = this.listens.map((s) => s.stats());
    return {
      ok: !this.failure,
      reason: this.failure || null,
      callSid: this.ci.callSid,
      direction: this.direction,
      from: this.ci.from,
      to: this.ci.to,
      accountSid: this.ci.accountSid,
      applicationSid: this.ci.applicationSid,
      sipStatus: this.sipStatus,
      refused: this.refused || null,
      answered: this.answered,
      answeredAtMs: this.connectAt !== undefined ? round1(this.connectAt) : null,
      callStatus: this.ci.callStatus,
      duration: this.ci.duration ?? null,
      terminatedBy: this.ci.callTerminationBy ?? null,
      durationMs: round1(this.now()),
      statuses: this.statuses,
      hooks: this.hooks,
      hookErrors: this.hooks.filter((h) => h.error),
      verbs: this.verbs,
      listens,
      listenSockets: this.listens,
      dials: this.dials,
      dtmf: this.dtmfLog,
      warnings: [...this.warnings, ...listens.flatMap((l) => l.warnings)],
      agentAudio: this.listens.length ? Buffer.concat(this.listens.map((s) => s.agentAudio())) : Buffer.alloc(0),
      agentAudioRate: listens.find((l) => l.bidirectionalRate)?.bidirectionalRate ?? listens[0]?.sampleRate ?? null,
      heardAudio: concatInt16(this.listens.map((s) => s.heardAudio())),
      heardAudioRate: this.o.channelRate || 8000,
      timeline: this.timeline,
    };
  }
}

function concatInt16(list) {
  const out = new Int16Array(list.reduce((a, x) => a + x.length, 0));
  let o = 0;
  for (const x of list) out.set(x, (o += x.length) - x.length);
  return out;
}

/** An inbound call: posts the call hook and plays the call. Returns the JambonzCall (await .done). */
export function placeInbound(opts = {}) {
  const call = new JambonzCall(opts, 'inbound');
  call.run();
  return call;
}

/**
 * A call created through the REST API (POST /v1/Accounts/{sid}/Calls): pass the request's body
 * (call_hook, call_status_hook, from, to ({type, number|sipUri|name} or a string), tag, timeout,
 * account_sid, application_sid) and the options of placeInbound, plus answer ('completed', 'busy',
 * 'no-answer', 'failed'), ringMs and sipStatus for the far end. Posts the call hook once answered.
 */
export function playOutbound(opts = {}) {
  const to = typeof opts.to === 'object' && opts.to ? opts.to.number || opts.to.sipUri || opts.to.name : opts.to;
  const call = new JambonzCall({ ...opts, to, callHook: opts.call_hook ?? opts.callHook, statusHook: opts.call_status_hook ?? opts.statusHook ?? null }, 'outbound');
  call.run();
  return call;
}
