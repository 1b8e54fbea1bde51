// What `switchboard-sim jambonz` prints about a call played by jambonz.mjs: the timeline as it
// happens, the verdict, a summary, and the result as JSON.
//
//   const p = new JambonzTimelinePrinter({ verbose });
//   const r = await placeInbound({ ..., onEvent: (e) => p.event(e) }).done;
//   const v = jambonzVerdict(r, { dtmf, dialOutcomes });
//   for (const line of jambonzSummary(r, v)) console.log(line);
import { EXIT, abbreviate, fmtTime } from './report.mjs';

const round1 = (x) => Math.round(x * 10) / 10;
const STATUS_TEXT = { 200: 'OK', 202: 'Accepted', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' };

function clip(s, n = 60) {
  s = String(s);
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

function pathOf(url) {
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

function verbLine(verb, d) {
  switch (verb) {
    case 'say':
      return `say "${clip([].concat(d.text ?? '').join(' '), 50)}"${d.earlyMedia ? ' (early media)' : ''}`;
    case 'pause':
      return `pause ${d.length} s`;
    case 'listen':
      return `listen ${d.url}  ${d.mixType || 'mono'} ${d.sampleRate || 8000} Hz${d.bidirectionalAudio?.streaming ? `, streaming back at ${d.bidirectionalAudio.sampleRate} Hz` : ''}${d.passDtmf ? ', passDtmf' : ''}${d.maxLength ? `, maxLength ${d.maxLength} s` : ''}${d.finishOnKey ? `, finishOnKey ${d.finishOnKey}` : ''}`;
    case 'dial':
      return `dial ${(d.target || []).map((t) => t.number || t.sipUri || t.name || t.type).join(', ')}${d.callerId ? `  callerId ${d.callerId}` : ''}  timeout ${d.timeout || 60} s${d.answerOnBridge ? '  answerOnBridge' : ''}`;
    case 'sip:decline':
      return `sip:decline ${d.status}${d.reason ? ` ${d.reason}` : ''}`;
    case 'sip:refer':
      return `sip:refer ${d.referTo}`;
    case 'redirect':
      return `redirect ${typeof d.actionHook === 'object' ? d.actionHook.url : d.actionHook}`;
    default:
      return `${verb} ${clip(JSON.stringify(d), 70)}`;
  }
}

function hookLine(e) {
  const b = e.body || {};
  const what = {
    call: `call hook (${b.direction}, from ${b.from} to ${b.to})`,
    status: `status  call_status=${b.call_status} sip_status=${b.sip_status}${b.duration !== undefined ? ` duration=${b.duration}` : ''}${b.call_termination_by ? ` call_termination_by=${b.call_termination_by}` : ''}`,
    redirect: 'redirect',
    action: `actionHook  ${Object.entries(b).filter(([k]) => /^(dial_|digits$|refer_status|final_referred)/.test(k)).map(([k, v]) => `${k}=${abbreviate(v)}`).join(' ') || '(call fields only)'}`,
  }[e.kind];
  return `${e.method} ${pathOf(e.url)}  ${what}${e.signed ? '' : '  (unsigned)'}`;
}

/** Prints jambonz.mjs timeline entries as lines (→ to the app, ← from the app, · jambonz, ✗ failure). */
export class JambonzTimelinePrinter {
  constructor({ write = (s) => process.stdout.write(s), verbose = false } = {}) {
    this.write = write;
    this.verbose = verbose;
  }

  event(e) {
    const L = (sym, text) => this.write(`${fmtTime(e.t)}  ${sym}  ${text}\n`);
    switch (e.event) {
      case 'call':
        return L('·', `${e.direction === 'inbound' ? 'an inbound call' : 'a REST API call'} from ${e.from} to ${e.to}  call_sid ${e.callSid}`);
      case 'hook':
        if (e.kind === 'status' && !this.verbose && e.body?.call_status === undefined) return;
        return L('→', hookLine(e));
      case 'hook-response': {
        if (e.error) return L('✗', `${pathOf(e.url)}: ${e.status ? `${e.status} ${STATUS_TEXT[e.status] || ''} ` : ''}${e.error} (${e.ms} ms)`);
        if (e.kind === 'status' && !this.verbose) return;
        const verbs = Array.isArray(e.response) ? `[${e.response.map((v) => v.verb ?? Object.keys(v)[0]).join(', ')}]` : e.response === '' ? '(no JSON)' : clip(JSON.stringify(e.response));
        return L('←', `${e.status} ${STATUS_TEXT[e.status] || ''} (${e.ms} ms)  ${verbs}`);
      }
      case 'verb':
        return L('·', verbLine(e.verb, e.data || {}));
      case 'answer':
        return L('·', '200 OK to the caller: the call is answered');
      case 'early-media':
        return L('·', '183 Session Progress to the caller (early media)');
      case 'sip-final':
        return L(e.status >= 300 ? '✗' : '·', `${e.status} ${e.reason || ''} to the caller${e.xReason ? `  X-Reason: ${e.xReason}` : ''}${e.why ? ` (${e.why})` : ''}`);
      case 'refused':
        return L('✗', `the ${e.kind} hook's answer is refused: ${e.reason}`);
      case 'app-replaced':
        return L('·', `new verbs: ${e.verbs.join(', ')}`);
      case 'ws-connect':
        return L('→', `WebSocket ${e.url}  subprotocol ${e.protocol}${e.auth ? ', basic auth' : ''}`);
      case 'ws-open':
        return L('←', `101 Switching Protocols${e.protocol ? ` (${e.protocol})` : ''}${e.note ? `  ${e.note}` : ''}`);
      case 'ws-failed':
        return L('✗', `WebSocket ${e.url}: no connection (${e.reason})`);
      case 'ws-metadata': {
        const m = e.metadata || {};
        const extra = typeof m === 'object' ? Object.keys(m).filter((k) => !['sampleRate', 'mixType', 'callSid', 'direction', 'from', 'to', 'callId', 'sbcCallid', 'sipStatus', 'sipReason', 'callStatus', 'accountSid', 'traceId', 'applicationSid', 'fsSipAddress', 'originatingSipIp', 'originatingSipTrunkName', 'fsPublicIp', 'customerData'].includes(k)) : [];
        return L('→', `metadata  sampleRate ${m.sampleRate} mixType ${m.mixType} callSid ${abbreviate(m.callSid || '-')}${extra.length ? `  + ${extra.map((k) => `${k}=${clip(JSON.stringify(m[k]), 30)}`).join(' ')}` : ''}`);
      }
      case 'ws-audio-first':
        return L('←', `the app's audio starts (${e.bytes} bytes${e.played ? '' : ', not played: no streaming'})`);
      case 'ws-command':
        if (e.type === 'mark' && !this.verbose) return;
        return L('←', `${e.type ?? '(no type)'}${e.data !== undefined && e.type !== 'killAudio' ? `  ${clip(JSON.stringify(e.data), 70)}` : ''}`);
      case 'mark':
        if (!this.verbose && e.status === 'playout') return;
        return L('→', `mark ${e.name} ${e.status}`);
      case 'mark-dropped':
        return L('!', `mark ${e.name} dropped: ${e.pending} marks pending already (mod_audio_fork's limit)`);
      case 'ws-dtmf':
        return L('→', `dtmf ${e.digit}`);
      case 'play-done':
        return L('→', `playDone${e.id !== undefined ? ` ${e.id}` : ''} (${e.ms} ms)`);
      case 'ws-close':
        return L(e.by === 'app' ? '←' : '→', `WebSocket closed by ${e.by === 'app' ? 'the app' : 'jambonz'}: ${e.code}${e.reason ? ` ${e.reason}` : ''}`);
      case 'listen-stats':
        return L('·', `listen  → ${e.sentFrames} frames (${round1(e.sentMs / 1000)} s)   ← ${e.receivedFrames} frames (${round1(e.receivedMs / 1000)} s), played ${round1(e.playedMs / 1000)} s, buffered ${e.bufferedMs} ms${e.marksPending ? `, ${e.marksPending} mark(s) pending` : ''}`);
      case 'listen-end':
        return L('·', `the listen ends: ${{ disconnect: 'the app sent disconnect', closed: 'the app closed the socket', hangup: 'the call is gone', maxLength: 'maxLength', finishOnKey: 'finishOnKey', error: 'the app sent an error (the socket stays open)', failed: 'no connection' }[e.why] || e.why}`);
      case 'dial-leg':
        if (e.status === 'trying') return L('·', `dialing ${e.target}  (simulated outcome: ${e.outcome}${e.outcome === 'no-answer' ? '' : ` after ${round1(e.ringMs / 1000)} s`})`);
        return L('·', `${e.target}: ${e.status} (${e.sipStatus})`);
      case 'dial-answered':
        return L('·', `${e.target} answers: bridged`);
      case 'callee-hangup':
        return L('·', `${e.target} hangs up after ${e.talkS} s`);
      case 'dial-time-limit':
        return L('·', `timeLimit: jambonz hangs up ${e.target} after ${e.talkS} s`);
      case 'dial-timeout':
        return L('·', `no answer within ${e.timeoutS} s: the dial is canceled`);
      case 'dial-end':
        return L('·', `the dial ends: ${e.dialCallStatus} (${e.dialSipStatus})`);
      case 'refer':
        return L('→', `REFER to ${e.referTo}: ${e.status}`);
      case 'refer-notify':
        return L('←', `NOTIFY: SIP/2.0 ${e.status}`);
      case 'dtmf':
        return L('·', `the caller presses ${e.digit}`);
      case 'caller-hangup':
        return L('·', `the caller hangs up${e.why && e.why !== 'caller' ? ` (${e.why})` : ''}`);
      case 'jambonz-hangup':
        return L('·', `jambonz hangs up (${e.why})`);
      case 'call-status':
        return this.verbose ? L('·', `status ${e.callStatus} (${e.sipStatus})`) : undefined;
      case 'call-ended':
        return L('·', `call ended: ${e.callStatus === 'trying' && e.sipStatus >= 300 ? 'not answered' : e.callStatus}${e.terminatedBy ? `, by ${e.terminatedBy}` : ''}${e.duration != null ? `, ${e.duration} s` : ''}${e.sipStatus && e.sipStatus !== 200 ? `, SIP ${e.sipStatus}` : ''}`);
      case 'warning':
        return L('!', e.warning);
      case 'error':
        return L('✗', e.reason);
      default:
        if (this.verbose) L(e.dir === 'out' ? '→' : e.dir === 'in' ? '←' : '·', `${e.event} ${clip(JSON.stringify(e), 100)}`);
    }
  }
}

/** Did the call go as asked? {ok, exitCode, reason, hints}. */
export function jambonzVerdict(r, { dtmf = [], dialOutcomes = [] } = {}) {
  const hints = [];
  const fail = (reason, exitCode = EXIT.FAILED) => ({ ok: false, exitCode, reason, hints });
  const call = r.hooks.find((h) => h.kind === 'call');
  if (call && [401, 403].includes(call.status)) {
    hints.push(call.headers['Jambonz-Signature'] ? 'check --secret against the server\'s webhook secret' : 'the hooks were not signed: give --secret');
    return fail(`the server refused the call hook: HTTP ${call.status}`, EXIT.SIGNATURE);
  }
  if (!r.ok) return fail(r.reason);
  if (!r.answered) return fail(r.sipStatus ? `the call was not answered: SIP ${r.sipStatus} to the caller` : 'the call was not answered');
  const bad = r.hookErrors[0];
  if (bad) return fail(`${bad.method} ${pathOf(bad.url)} (${bad.kind} hook): ${bad.error}`);
  for (const [i, l] of r.listens.entries()) {
    if (l.failure) return fail(`listen ${i + 1}: no WebSocket to ${l.url} (${l.failure})`);
    if (l.streaming && l.receivedFrames === 0 && l.sentFrames > 25) return fail(`listen ${i + 1}: no audio came back over ${l.url} (${l.sentFrames} frames sent)`);
  }
  const missed = r.dtmf.filter((k) => !k.delivered && !k.finished);
  if (missed.length || r.dtmf.length < dtmf.length) return fail(`--dtmf: ${Math.max(missed.length, dtmf.length - r.dtmf.length)} of ${dtmf.length} key press(es) reached no listen with passDtmf`);
  const legs = r.dials.reduce((n, d) => n + d.legs.length, 0);
  if (dialOutcomes.length > legs) return fail(`--dial-outcomes: ${dialOutcomes.length} outcome(s) given, but the app dialed ${legs} target(s)`);
  for (const w of r.warnings) hints.push(w);
  return { ok: true, exitCode: EXIT.OK, reason: 'completed as expected', hints };
}

/** The call in a few lines. */
export function jambonzSummary(r, v, { saved } = {}) {
  const out = [];
  const how = !r.answered ? `not answered (SIP ${r.sipStatus ?? '-'})` : r.terminatedBy === 'caller' ? 'the caller hung up' : r.terminatedBy === 'jambonz' ? 'jambonz hung up' : r.callStatus;
  const st = r.hooks.filter((h) => h.kind === 'status').length;
  out.push(`call ${r.callSid}: ${how}, ${round1(r.durationMs / 1000)} s; ${r.hooks.length} hook(s) (${st} status); verbs: ${r.verbs.map((x) => x.verb).join(', ') || '-'}`);
  r.listens.forEach((l, i) => {
    const m = (s) => l.marks.filter((x) => x.event === s).length;
    out.push(`listen ${i + 1} ${l.url}: sent ${l.sentFrames} frames (${round1(l.sentMs / 1000)} s, ${l.frameBytes} bytes each, pacing mean ${l.pacing.meanIntervalMs} ms, max deviation ${l.pacing.maxDeviationMs} ms), received ${l.receivedFrames} (${round1(l.receivedMs / 1000)} s), played ${round1(l.playedMs / 1000)} s; marks ${m('playout')} played out, ${m('cleared')} cleared, ${m('dropped')} dropped; ${l.closed ? `closed ${l.closed.code} by ${l.closed.by}` : 'left open'} (${l.ended?.why ?? '-'})`);
  });
  if (r.dials.length) out.push(`transfers: ${r.dials.map((d) => d.legs.map((x) => `${x.label} ${x.status}${x.events.at(-1) ? ` (${x.events.at(-1).sipStatus})` : ''}`).join(' + ') || '-').join('; ')}`);
  if (r.dtmf.length) out.push(`dtmf: ${r.dtmf.map((k) => `${k.digit}@${round1(k.t / 1000)}s${k.delivered ? '' : k.finished ? ' (finishOnKey)' : ' (not delivered)'}`).join(', ')}`);
  if (saved) out.push(`agent audio: ${saved}`);
  out.push(v.ok ? `result: ${v.reason}` : `result: FAILED: ${v.reason}`);
  for (const h of v.hints) out.push(`  ${h}`);
  return out;
}

/** The result as plain JSON (no audio, no sockets). */
export function jambonzResultJson(r, v, extra = {}) {
  const { agentAudio, heardAudio, listenSockets, ok, reason, ...rest } = r;
  return {
    ok: v.ok,
    exitCode: v.exitCode,
    reason: v.reason,
    hints: v.hints,
    ...rest,
    hooks: rest.hooks.map(({ headers, ...h }) => ({ ...h, signature: headers['Jambonz-Signature'] || null })),
    agentAudioMs: r.agentAudioRate ? Math.round((agentAudio.length / 2 / r.agentAudioRate) * 1000) : 0,
    ...extra,
  };
}
