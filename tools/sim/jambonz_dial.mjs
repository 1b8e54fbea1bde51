// The dial and sip:refer verbs as the feature server runs them (lib/tasks/dial.js,
// lib/utils/place-outdial.js, lib/tasks/sip_refer.js), with simulated far ends.
import { randomUUID } from 'node:crypto';
import { hex } from './jambonz_hooks.mjs';

const round1 = (x) => Math.round(x * 10) / 10;

export const DIAL_OUTCOMES = ['completed', 'busy', 'no-answer', 'failed'];
export const OUTCOME_ALIASES = { answer: 'completed', answered: 'completed', noanswer: 'no-answer', congestion: 'failed' };
/** "busy,no-answer,completed" -> ['busy', 'no-answer', 'completed']; throws on an unknown one. */
export function parseDialOutcomes(s) {
  if (s == null) return [];
  const list = (Array.isArray(s) ? s : String(s).split(',')).map((x) => String(x).trim().toLowerCase()).filter(Boolean).map((x) => OUTCOME_ALIASES[x] ?? x);
  for (const x of list) if (!DIAL_OUTCOMES.includes(x)) throw new Error(`${JSON.stringify(x)} is not one of ${DIAL_OUTCOMES.join(', ')}`);
  return list;
}
// place-outdial.js: 487 -> no-answer, 486/600 -> busy, any other failure -> failed
export const dialStatusOf = (sip) => (sip === 200 ? 'completed' : sip === 487 ? 'no-answer' : sip === 486 || sip === 600 ? 'busy' : 'failed');
function outcomeFor(call, target, index, attempt, dial) {
  let r = typeof call.o.dialOutcome === 'function' ? call.o.dialOutcome({ target, index, attempt, dial }) : call.dialQueue.length ? call.dialQueue.shift() : 'completed';
  if (typeof r === 'string') r = { outcome: r };
  const outcome = OUTCOME_ALIASES[r.outcome] ?? r.outcome ?? 'completed';
  return { ringMs: outcome === 'failed' ? 200 : call.o.ringMs ?? 2000, talkMs: call.o.talkMs ?? 5000, ...r, outcome };
}

/** The dial verb (lib/tasks/dial.js with place-outdial.js): the targets ring at once, the outcomes come from the call's dialOutcome(s). */
export async function runDial(call, d, v) {
  if (call.inbound && !call.answered) d.answerOnBridge ? call.earlyMedia() : call.answer();
  const seen = [];
  for (const t of d.target) if (!seen.some((x) => x.type === t.type && (x.number ?? x.name ?? x.sipUri) === (t.number ?? t.name ?? t.sipUri))) seen.push(t);
  const targets = seen.slice(0, 10);
  const attempt = call.dials.length;
  const timeoutMs = (d.timeout || 60) * 1000;
  const results = {};
  const rec = { t: round1(call.now()), attempt, targets, callerId: d.callerId, timeout: d.timeout || 60, answerOnBridge: !!d.answerOnBridge, legs: [], results };
  call.dials.push(rec);
  if (d.listen || d.transcribe || d.dub || d.amd) call.warn('dial: nested listen/transcribe/dub/amd are not simulated');
  let finish;
  const done = new Promise((r) => (finish = r));
  const timers = new Set();
  const at = (ms, fn) => timers.add(call.after(ms / call.speed, fn));
  const update = (leg, callStatus, sipStatus) => {
    leg.events.push({ t: round1(call.now()), callStatus, sipStatus });
    leg.status = callStatus;
    if (results.dialCallStatus !== 'completed' && results.dialCallStatus !== 'no-answer') Object.assign(results, { dialCallStatus: callStatus, dialSipStatus: sipStatus, dialCallSid: leg.callSid, dialSbcCallid: leg.sbcCallid });
  };
  let winner = null;
  let stopping = null; // why the legs left are being canceled
  const live = () => rec.legs.filter((l) => ['trying', 'ringing'].includes(l.status));
  const end = (why) => {
    if (rec.ended) return;
    for (const t of timers) clearTimeout(t);
    rec.ended = why;
    finish(why);
  };
  const fail = (leg, sip) => {
    update(leg, dialStatusOf(sip), sip);
    call.log('local', 'dial-leg', { target: leg.label, status: dialStatusOf(sip), sipStatus: sip });
    if (!winner && !live().length) end(stopping || 'all failed');
  };
  const cancelAll = () => live().forEach((l) => fail(l, 487));
  targets.forEach((target, index) => {
    const oc = outcomeFor(call, target, index, attempt, d);
    const leg = { target, label: target.number || target.sipUri || target.name || target.type, callSid: randomUUID(), sbcCallid: undefined, outcome: oc, events: [], status: null };
    rec.legs.push(leg);
    update(leg, 'trying', 100);
    call.log('local', 'dial-leg', { target: leg.label, status: 'trying', outcome: oc.outcome, ringMs: oc.ringMs });
    if (oc.outcome !== 'failed')
      at(Math.min(50, oc.ringMs), () => {
        if (leg.status !== 'trying') return;
        leg.sbcCallid = `${hex(4)}-${hex(4)}-${hex(3)}`;
        update(leg, 'ringing', 180);
      });
    if (oc.outcome === 'completed')
      at(oc.ringMs, () => {
        if (leg.status !== 'ringing' && leg.status !== 'trying') return;
        winner = leg;
        for (const t of timers) clearTimeout(t); // the ring timer, and the others' outcomes
        timers.clear();
        update(leg, 'in-progress', 200);
        Object.assign(results, { dialCallStatus: 'completed', dialSipStatus: 200, dialCallSid: leg.callSid });
        call.log('local', 'dial-answered', { target: leg.label, talkMs: oc.talkMs });
        cancelAll();
        if (d.answerOnBridge) call.answer();
        const talk = d.timeLimit ? Math.min(oc.talkMs, d.timeLimit * 1000) : oc.talkMs;
        at(talk, () => {
          update(leg, 'completed', 200);
          call.log('local', talk < oc.talkMs ? 'dial-time-limit' : 'callee-hangup', { target: leg.label, talkS: round1(talk / 1000) });
          end(talk < oc.talkMs ? 'timeLimit' : 'callee hung up');
        });
      });
    else if (oc.outcome !== 'no-answer' || oc.sipStatus) at(oc.ringMs, () => fail(leg, oc.sipStatus ?? (oc.outcome === 'busy' ? 486 : oc.outcome === 'no-answer' ? 487 : 503)));
  });
  // the ring timer: no answer within the dial's timeout cancels every leg (487)
  at(timeoutMs, () => {
    call.log('local', 'dial-timeout', { timeoutS: d.timeout || 60 });
    stopping = 'timeout';
    cancelAll();
    end(stopping);
  });
  if (!targets.length) end('no targets');
  call.kill = () => {
    stopping = 'hangup';
    if (winner && winner.status === 'in-progress') update(winner, 'completed', 200);
    cancelAll();
    end(stopping);
  };
  if (call.gone) call.kill();
  await done;
  call.kill = null;
  v.results = { ...results };
  call.log('local', 'dial-end', { why: rec.ended, ...results });
  await call.action(d, results);
}

/** sip:refer (lib/tasks/sip_refer.js): 202, then a NOTIFY with the final status; the transferee then hangs up. */
export async function runRefer(call, d, v) {
  if (!call.answered && call.inbound) return call.warn('sip:refer: the call was not answered (precondition stable-call): skipped');
  const oc = { status: 202, finalStatus: 200, notifyMs: 1000, bye: true, ...(call.o.referOutcome?.(d) || {}) };
  call.log('out', 'refer', { referTo: d.referTo, referredBy: d.referredBy, status: oc.status });
  if (!(await call.wait(50 / call.speed))) return;
  if (oc.status !== 202) {
    v.results = { refer_status: oc.status };
    await call.action(d, v.results);
    return;
  }
  if (!(await call.wait((oc.finalStatus == null ? 15000 : oc.notifyMs) / call.speed))) return;
  v.results = oc.finalStatus == null ? { refer_status: 202 } : { refer_status: 202, final_referred_call_status: oc.finalStatus };
  if (oc.finalStatus != null) call.log('in', 'refer-notify', { status: oc.finalStatus });
  if (oc.finalStatus === 200 && oc.bye) call.after(100 / call.speed, () => call.hangup('the transferee hung up after the REFER'));
  await call.action(d, v.results);
}
