// What switchboard-sim prints about a call: a readable timeline as it happens, the verdict
// (did the call go as asked, and if not why), a summary, and the JSON form of the result.
//
//   const p = new TimelinePrinter({ publicBase: 'https://voice.example.com' });
//   const r = await simulateCall({ ..., onEvent: (e) => p.event(e) });
//   p.close();
//   const v = verdict(r, { authToken, publicUrl, dtmf, dialOutcomes });
//   for (const line of summary(r, v)) console.log(line);
import { MediaStream } from './media.mjs';

const round1 = (x) => Math.round(x * 10) / 10;

// ---- live streams ------------------------------------------------------------------------
// simulateCall does not hand out the MediaStream it runs, and the per-second counts need its
// counters while it runs: MediaStream.prototype.connect is wrapped once (by trackStreams) to
// keep every stream under its callSid until it ends.
const liveStreams = new Map();
let tracking = false;

export function trackStreams() {
  if (tracking) return;
  tracking = true;
  const connect = MediaStream.prototype.connect;
  if (typeof connect !== 'function') return; // counts are then left out
  MediaStream.prototype.connect = function (...args) {
    liveStreams.set(this.callSid, this);
    this.done.then(() => {
      if (liveStreams.get(this.callSid) === this) liveStreams.delete(this.callSid);
    });
    return connect.apply(this, args);
  };
}

/** The MediaStream of a call that is running now, or null. */
export function liveStream(callSid) {
  return liveStreams.get(callSid) || null;
}

// ---- the timeline ------------------------------------------------------------------------

const KIND_LABELS = {
  voice: 'voice webhook',
  'status-callback': 'status callback',
  'connect-action': '<Connect> action',
  'dial-action': '<Dial> action',
  'gather-action': '<Gather> action',
  'record-action': '<Record> action',
  redirect: '<Redirect>',
  'recording-status': 'recording status callback',
  'stream-status': '<Stream> status callback',
  'dial-leg-status': 'dialed party status callback',
};

const STATUS_TEXT = { 200: 'OK', 201: 'Created', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Payload Too Large', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' };

/** 32-hex ids (sids, session ids) cut to their first 8 characters, for reading. */
export function abbreviate(s) {
  return String(s).replace(/\b((?:CA|MZ|RE|AC|SK|PN)?[0-9a-f]{8})[0-9a-f]{24}\b/g, '$1…');
}

export function fmtTime(ms) {
  return `${(ms / 1000).toFixed(3)}s`.padStart(9);
}

function clip(s, n = 70) {
  s = String(s);
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

/**
 * Prints a call's timeline entries (simulateCall's onEvent) as lines:
 *   "   1.234s  →  POST /twilio/voice  voice webhook"
 * → the simulator (Twilio, the caller) to the server, ← the server to the simulator,
 * · what the simulator does (TwiML verbs, simulated outcomes), ✗ a failure.
 * While a stream runs, a line of its counters every `tickMs`.
 */
export class TimelinePrinter {
  constructor({ write = (s) => process.stdout.write(s), publicBase = null, prefix = '', verbose = false, tickMs = 1000, offsetMs = 0, callSid = null, role = 'caller' } = {}) {
    this.role = role; // who the simulator plays: the caller (call) or the callee (answer)
    this.write = write;
    this.publicBase = publicBase ? String(publicBase).replace(/\/+$/, '') : null;
    this.prefix = prefix;
    this.verbose = verbose;
    this.tickMs = tickMs;
    this.offsetMs = offsetMs; // added to every time (answer mode: times from the REST create)
    this.callSid = callSid;
    this.answered = false;
    this.ended = false;
    this.lastDial = null;
    this.ticker = null;
    this.epoch = null; // performance.now() of the call's t=0
    this.lastCounts = '';
  }

  line(t, sym, text) {
    this.write(`${this.prefix}${fmtTime(t + this.offsetMs)}  ${sym}  ${text}\n`);
  }

  // A URL as short as it reads well: the server's own URLs by path.
  url(u) {
    let s = String(u);
    if (this.publicBase && s.toLowerCase().startsWith(this.publicBase.toLowerCase())) s = s.slice(this.publicBase.length) || '/';
    else {
      try {
        const x = new URL(s);
        if (/^(https?|wss?):$/.test(x.protocol) && /^(127\.0\.0\.1|localhost|\[::1\])$/.test(x.hostname)) s = s.replace(/^[a-z]+:\/\/[^/]+/i, '') || '/';
      } catch {}
    }
    return abbreviate(s);
  }

  event(e) {
    if (this.epoch === null) this.epoch = performance.now() - e.t;
    const t = e.t;
    const L = (sym, text) => this.line(t, sym, text);
    switch (e.event) {
      case 'call':
        this.callSid = e.callSid;
        if (this.role === 'callee') return L('·', `${e.to} answers call ${e.callSid} from ${e.from}`);
        return L('·', `call ${e.callSid}  from ${e.from} to ${e.to}`);
      case 'http': {
        let label = KIND_LABELS[e.kind] || e.kind;
        if (e.kind === 'voice' && this.role === 'callee') label = "the call's Url (connect webhook)";
        if (e.kind === 'status-callback') label = `status callback (${this.ended ? 'completed' : this.answered ? 'in-progress' : 'ringing'})`;
        return L('→', `${e.method} ${this.url(e.url)}  ${label}`);
      }
      case 'http-response':
        if (e.status === 0) return L('✗', `${KIND_LABELS[e.kind] || e.kind}: no answer: ${e.error}`);
        if (e.status === 403) return L('←', `403 Forbidden  ${e.ms} ms  — the server refused the signature`);
        return L('←', `${e.status}${STATUS_TEXT[e.status] ? ' ' + STATUS_TEXT[e.status] : ''}  ${e.ms} ms`);
      case 'answered':
        this.answered = true;
        return L('·', 'answered: the TwiML runs');
      case 'Say':
        return L('·', `<Say> "${clip(e.text, 64)}"  (${round1(e.ms / 1000)} s)`);
      case 'Play':
        return L('·', e.digits ? `<Play digits="${e.digits}">` : `<Play> ${e.url}  (${round1(e.ms / 1000)} s, not fetched)`);
      case 'Pause':
        return L('·', `<Pause> ${e.s} s`);
      case 'Stream': {
        const params = Object.entries(e.parameters || {}).map(([k, v]) => `${k}=${v}`).join(' ');
        return L('·', `<Connect><Stream> ${this.url(e.url)}${params ? '  ' + params : ''}`);
      }
      case 'ws-connect':
        return L('→', `GET ${this.url(e.url)}  WebSocket upgrade${e.signed ? ', signed' : ', unsigned'}`);
      case 'ws-open':
        return L('←', '101 Switching Protocols: stream open');
      case 'ws-refused':
        return L('←', `${e.status}${STATUS_TEXT[e.status] ? ' ' + STATUS_TEXT[e.status] : ''}: WebSocket upgrade refused${e.status === 403 ? ' — the server refused the signature' : ''}`);
      case 'ws-error':
        return L('✗', `WebSocket: ${e.error}`);
      case 'connected':
        return L('→', 'connected');
      case 'start':
        this.startTicker();
        return L('→', `start  ${abbreviate(e.streamSid)}`);
      case 'media':
        return L('→', `media  the ${this.role} starts talking (20 ms frames)`);
      case 'agent-audio':
        return L('←', 'media  the agent talks');
      case 'mark':
        if (!this.verbose) return;
        if (e.dir === 'in') return L('←', `mark ${e.name}`);
        return L('→', `mark ${e.name}${e.onClear ? ' (on clear)' : ' (played out)'}`);
      case 'clear':
        return L('←', `clear  ${e.droppedMs} ms of agent audio dropped, ${e.marksEchoed} mark(s) returned`);
      case 'dtmf':
        return L('→', `dtmf ${e.digit}`);
      case 'stop':
        return L('→', 'stop');
      case 'ws-close':
        this.stopTicker(true);
        if (e.by === 'server') return L('←', `stream closed by the server (${e.code}${e.reason ? ' ' + e.reason : ''})`);
        return L('→', `stream closed (${e.code})`);
      case 'protocol-error':
        return L('✗', `from the server: ${e.error}`);
      case 'Dial': {
        const target = e.sip || e.number || e.client || e.conference || e.queue || Object.entries(e).find(([k]) => !['t', 'dir', 'event', 'outcome', 'callerId', 'answerOnBridge', 'timeout'].includes(k))?.[1];
        this.lastDial = target;
        const extras = [e.callerId && `callerId ${e.callerId}`, e.timeout && `timeout ${e.timeout} s`, e.answerOnBridge === 'true' && 'answerOnBridge'].filter(Boolean).join(', ');
        return L('·', `<Dial> ${target}${extras ? '  (' + extras + ')' : ''}  simulated outcome: ${e.outcome}`);
      }
      case 'dial-answered':
        return L('·', `${this.lastDial || 'the dialed party'} answers: bridged`);
      case 'dial-ended':
        return L('·', `dial ended: DialCallStatus=${e.DialCallStatus}${e.DialCallDuration !== undefined ? `, ${e.DialCallDuration} s` : ''}`);
      case 'Redirect':
        return L('·', `<Redirect> ${this.url(e.url)}`);
      case 'Gather':
        return L('·', `<Gather>${e.numDigits ? ` numDigits=${e.numDigits}` : ''} finishOnKey="${e.finishOnKey}" timeout ${e.timeout} s`);
      case 'key':
        return L('→', `key ${e.digit}`);
      case 'gather-timeout':
        return L('·', '<Gather>: no input, on with the next verb');
      case 'Record':
        return L('·', `<Record> ${round1(e.ms / 1000)} s`);
      case 'record-empty':
        return L('·', '<Record>: empty recording, no action');
      case 'Hangup':
        return L('·', '<Hangup>');
      case 'Reject':
        return L('·', `<Reject reason="${e.reason}">`);
      case 'skipped':
        return L('·', `<${e.verb}> skipped: ${e.note}`);
      case 'warning':
        return L('!', e.warning);
      case 'error':
        return L('✗', e.reason);
      case 'caller-hangup':
        return L('·', `the ${this.role} hangs up`);
      case 'call-ended':
        this.ended = true;
        this.stopTicker(false);
        return L('·', `call ended: ${e.status}, ${e.durationS} s`);
      // answer mode: the REST API and the fake's own webhooks
      case 'rest': {
        const sid = e.status === 201 && this.callSid ? `  ${this.callSid}` : '';
        return L('←', `${e.method} ${abbreviate(e.path)}  ${e.what}${e.fields.length ? ' ' + e.fields.join(' ') : ''}  → ${e.status}${STATUS_TEXT[e.status] ? ' ' + STATUS_TEXT[e.status] : ''}${sid}${e.error}`);
      }
      case 'twilio-webhook':
        if (e.status === 0) return L('✗', `${e.method} ${this.url(e.url)}  ${e.kind}: no answer: ${e.error}`);
        return L('→', `${e.method} ${this.url(e.url)}  ${e.kind}  ← ${e.status}${STATUS_TEXT[e.status] ? ' ' + STATUS_TEXT[e.status] : ''} ${e.ms} ms${e.status === 403 ? ' — the server refused the signature' : ''}`);
      case 'note':
        return L('!', e.text);
      default:
        if (this.verbose) return L(e.dir === 'out' ? '→' : e.dir === 'in' ? '←' : '·', `${e.event} ${JSON.stringify(e)}`);
    }
  }

  // A line of stream counters every tickMs, and a last one when the stream closes.
  startTicker() {
    this.stopTicker(false);
    this.lastCounts = '';
    this.ticker = setInterval(() => this.tick(), this.tickMs);
    this.ticker.unref?.();
  }

  stopTicker(final) {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    if (final) this.tick();
  }

  tick() {
    const s = this.callSid && liveStream(this.callSid);
    if (!s || !s.s) return;
    const c = s.s;
    const counts = `→ ${c.framesSent} media (${round1((c.framesSent * 20) / 1000)} s)   ← ${c.framesReceived} media (${round1(c.bytesReceived / 8000)} s)   marks ${c.marksReceived} ← / ${c.marksEchoed} →${c.clears ? `   clears ${c.clears}` : ''}${c.dtmfSent ? `   dtmf ${c.dtmfSent}` : ''}`;
    if (counts === this.lastCounts) return;
    this.lastCounts = counts;
    this.line(performance.now() - this.epoch, '·', `stream  ${counts}`);
  }

  close() {
    this.stopTicker(false);
  }
}

// ---- the verdict -------------------------------------------------------------------------

export const EXIT = Object.freeze({ OK: 0, FAILED: 1, USAGE: 2, SIGNATURE: 3 });

/**
 * Did the call go as asked? {ok, exitCode, reason, hints[]}.
 * Beyond simulateCall's own failures: the call must end `completed`, every request must be
 * answered 2xx (status callbacks included), every --dial-outcome must be used by a <Dial>
 * and every --dtmf key must reach the server. A 403 is reported as a refused signature.
 */
export function verdict(r, { authToken, publicUrl, url, dtmf = [], dialOutcomes = [] } = {}) {
  const hints = [];
  const reqs = r.requests || [];
  const refused = reqs.find((q) => q.status === 403 && q.kind === 'voice') || reqs.find((q) => q.status === 403);
  const wsRefused = (r.streams || []).find((s) => s.handshakeStatus === 403);
  if (refused || wsRefused) {
    const what = refused ? `${refused.method} ${refused.url}` : `the WebSocket upgrade of the <Stream>`;
    const signed = refused ? refused.url : 'the <Stream> url';
    if (!authToken) {
      hints.push('the request was not signed, and the server checks signatures (its TWILIO_AUTH_TOKEN is set):');
      hints.push('pass --auth-token with the server\'s TWILIO_AUTH_TOKEN, and --public-url with its PUBLIC_BASE_URL.');
      return { ok: false, exitCode: EXIT.SIGNATURE, reason: `the server refused the unsigned request: HTTP 403 on ${what}`, hints };
    }
    hints.push('check --auth-token: it must be the server\'s TWILIO_AUTH_TOKEN;');
    hints.push(`check --public-url: it must be the server's PUBLIC_BASE_URL, the URL Twilio calls it by (the URL signed was ${signed}${publicUrl ? '' : '; without --public-url, --url is signed'}).`);
    return { ok: false, exitCode: EXIT.SIGNATURE, reason: `the server refused the signature: HTTP 403 on ${what}`, hints };
  }
  const unreachable = reqs.find((q) => q.status === 0 && q.kind === 'voice');
  if (unreachable) hints.push(`nothing answered at ${unreachable.sentTo}: is the server running there (tools/run.sh), is --url right?`);
  if (!r.ok) return { ok: false, exitCode: EXIT.FAILED, reason: r.reason, hints };
  if (r.status !== 'completed') {
    const reject = (r.timeline || []).find((e) => e.event === 'Reject');
    return { ok: false, exitCode: EXIT.FAILED, reason: `the call ended ${r.status}${reject ? ` (the server answered <Reject reason="${reject.reason}">)` : ''}`, hints };
  }
  const bad = (r.httpErrors || [])[0];
  if (bad) return { ok: false, exitCode: EXIT.FAILED, reason: `${KIND_LABELS[bad.kind] || bad.kind} ${bad.url} answered ${bad.status ? 'HTTP ' + bad.status : bad.error}`, hints };
  const left = r.dialOutcomesLeft || [];
  if (dialOutcomes.length && left.length) {
    const used = dialOutcomes.length - left.length;
    return { ok: false, exitCode: EXIT.FAILED, reason: `--dial-outcome: ${dialOutcomes.length} outcome(s) given, but the call had ${used} <Dial> (unused: ${left.join(',')})`, hints };
  }
  const sent = (r.streams || []).reduce((n, s) => n + (s.stats ? s.stats.dtmfSent : 0), 0) + (r.timeline || []).filter((e) => e.event === 'key').length;
  if (dtmf.length > sent) {
    return { ok: false, exitCode: EXIT.FAILED, reason: `--dtmf: ${dtmf.length - sent} of ${dtmf.length} key press(es) never reached the server (no <Stream> or <Gather> running at or after their time)`, hints };
  }
  return { ok: true, exitCode: EXIT.OK, reason: 'completed as expected', hints };
}

// ---- summary and JSON --------------------------------------------------------------------

/** What the call did, in a few lines. */
export function summary(r, v, { saved } = {}) {
  const out = [];
  const docs = (r.twimlResponses || []).length;
  const reqs = r.requests || [];
  out.push(`call ${r.callSid}: ${r.status}, ${round1(r.durationMs / 1000)} s of real time; ${reqs.length} request(s), ${docs} TwiML document(s)`);
  for (const s of r.streams || []) {
    const st = s.stats;
    if (s.handshakeStatus) {
      out.push(`stream refused: HTTP ${s.handshakeStatus}`);
      continue;
    }
    const rt = st.roundTrip && st.roundTrip.n ? `, round trip p50 ${st.roundTrip.p50} ms p99 ${st.roundTrip.p99} ms` : '';
    out.push(`stream ${s.streamSid}: sent ${st.framesSent} media (${round1((st.framesSent * 20) / 1000)} s), received ${st.framesReceived} (${round1(st.agentAudioMs / 1000)} s of agent audio), marks ${st.marksReceived}/${st.marksEchoed} echoed, clears ${st.clears}, dtmf ${st.dtmfSent}${rt}; closed by ${s.closedBy || '-'} (${s.closeCode ?? '-'})`);
  }
  const dials = dialsOf(r);
  if (dials.length) out.push(`dials: ${dials.map((d) => `${d.target} ${d.status}${d.duration !== undefined ? ` (${d.duration} s)` : ''}`).join('; ')}`);
  if (saved) out.push(`agent audio: ${saved}`);
  out.push(v.ok ? `result: ${v.reason}` : `result: FAILED: ${v.reason}`);
  for (const h of v.hints) out.push(`  ${h}`);
  return out;
}

/** Every <Dial>: {target, outcome, status, duration}. */
export function dialsOf(r) {
  const dials = [];
  for (const e of r.timeline || []) {
    if (e.event === 'Dial') dials.push({ target: e.sip || e.number || e.client || '', kind: e.sip ? 'sip' : 'number', outcome: e.outcome, callerId: e.callerId });
    if (e.event === 'dial-ended' && dials.length) {
      const d = dials[dials.length - 1];
      d.status = e.DialCallStatus;
      if (e.DialCallDuration !== undefined) d.duration = e.DialCallDuration;
    }
  }
  return dials;
}

/** The result as plain JSON (no audio buffers, no per-frame arrays). */
export function resultJson(r, v, extra = {}) {
  return {
    ok: v.ok,
    exitCode: v.exitCode,
    reason: v.reason,
    hints: v.hints,
    callSid: r.callSid,
    status: r.status,
    startedAt: r.startedAt,
    durationMs: r.durationMs,
    params: r.params,
    dials: dialsOf(r),
    streams: (r.streams || []).map((s) => ({
      streamSid: s.streamSid,
      closedBy: s.closedBy,
      closeCode: s.closeCode,
      closeReason: s.closeReason,
      handshakeStatus: s.handshakeStatus,
      error: s.error,
      stats: s.stats,
      clears: s.clears,
    })),
    agentAudioMs: round1(((r.agentAudio && r.agentAudio.length) || 0) / 8),
    requests: r.requests,
    httpErrors: r.httpErrors,
    twimlResponses: r.twimlResponses,
    timeline: r.timeline,
    ...extra,
  };
}
