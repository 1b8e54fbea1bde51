// `switchboard-sim answer`: Twilio's REST API for a server's outbound calls
// (POST /api/calls/initiate), with the callee played by the simulator.
//
// It is the fake Twilio REST API of the integration tests (twilio_api.mjs: Calls.json with
// Basic auth, Twilio's validation and errors, call progress and status callbacks with
// SequenceNumber) with simulateCall plugged in as its callee: when a created call is
// answered, the callee requests the call's Url (the server's connect webhook, signed with the
// account's auth token) and runs the TwiML it gets with the same executor as
// `switchboard-sim call` (<Connect><Stream> streams `audio`, <Dial> takes `dialOutcomes`...),
// while the fake sends the initiated, ringing, answered and completed callbacks.
//
//   const a = await startAnswer({ accountSid, authToken, publicUrl: 'https://voice.example.com',
//                                 serverUrl: 'http://127.0.0.1:8080', audio });
//   server env: TWILIO_API_BASE=a.url TWILIO_CA_FILE=a.caFile TWILIO_ACCOUNT_SID TWILIO_AUTH_TOKEN
//   a.on('event', ({callSid, entry}) => ...); a.on('call-ended', ({callSid, ok, reason, result}) => ...)
//
// A difference from Twilio: a REST update that ends the call (Status=completed) is recorded
// and its completed callback sent, but the simulated callee plays on until its own hang-up.
import { EventEmitter } from 'node:events';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { simulateCall } from './call.mjs';
import { TEST_ACCOUNT, startFakeTwilio } from './twilio_api.mjs';
import { makeTestPki } from './tls.mjs';
import { UrlMap } from './urls.mjs';
import { durationMs, writeWavFile } from './wav.mjs';
import { EXIT, abbreviate, verdict } from './report.mjs';

export { TEST_ACCOUNT };

export function defaultPkiDir() {
  let who = 'user';
  try {
    who = userInfo().username;
  } catch {}
  return join(tmpdir(), `switchboard-sim-pki-${who}`);
}

/**
 * Starts the fake REST API and the callee.
 * @param {object} o
 * @param {string} [o.accountSid], [o.authToken]   the account the server uses (default TEST_ACCOUNT)
 * @param {{sid, secret}[]} [o.apiKeys]            API keys also accepted (with the test account, its key too)
 * @param {boolean} [o.tls=true]                   HTTPS with a test CA (written to o.pkiDir), or plain HTTP
 * @param {string} [o.pkiDir]                      where the CA lives (reused when complete)
 * @param {number} [o.port=0], [o.host='127.0.0.1']
 * @param {'answer'|'busy'|'no-answer'|'failed'} [o.outcome='answer']
 * @param {number} [o.ringMs=1000]                 pause between call progress steps
 * @param {string} [o.publicUrl]                   the server's PUBLIC_BASE_URL (what its callback URLs start with)
 * @param {string} [o.serverUrl]                   where the server really listens (default: its URLs as given)
 * @param {Buffer} [o.audio]                       what the callee says (8 kHz mu-law)
 * @param {{digit, atMs}[]} [o.dtmf], {string[]} [o.dialOutcomes], {number} [o.speed]
 * @param {number|null} [o.hangupAfterMs]          the callee hangs up this long after answering
 *                                                 (default: its audio + tailMs; null: when the TwiML ends)
 * @param {number} [o.tailMs=1000]
 * @param {string} [o.save]                        write the agent's audio of each call here ({call} → the call sid)
 */
export async function startAnswer(o = {}) {
  const account = {
    sid: o.accountSid || TEST_ACCOUNT.sid,
    authToken: o.authToken || TEST_ACCOUNT.authToken,
    apiKeys: [...(o.accountSid ? [] : TEST_ACCOUNT.apiKeys), ...(o.apiKeys || [])],
  };
  const outcome = o.outcome || 'answer';
  if (!['answer', 'busy', 'no-answer', 'failed'].includes(outcome)) throw new Error(`unknown outcome ${JSON.stringify(outcome)}`);
  const tls = o.tls !== false;
  const pki = tls ? makeTestPki(o.pkiDir || defaultPkiDir()) : null;
  const audio = o.audio || Buffer.alloc(0);
  const tailMs = o.tailMs ?? 1000;
  const hangupAfterMs = o.hangupAfterMs === undefined ? durationMs(audio) + tailMs : o.hangupAfterMs;
  const ev = new EventEmitter();
  const created = new Map(); // callSid -> Date.now() of the create
  const results = new Map(); // callSid -> {result, verdict, saved}
  const publicBase = o.publicUrl ? String(o.publicUrl).replace(/\/+$/, '') : null;

  // The server's URL as Twilio was given it -> {public base, path, where to send}.
  const mapFor = (url) => {
    let pub = publicBase;
    if (!pub || !url.toLowerCase().startsWith(pub.toLowerCase())) pub = new URL(url).origin;
    return { public: pub, path: url.slice(pub.length) || '/', local: o.serverUrl || pub };
  };
  const rewriteUrl = (u) => {
    const m = mapFor(u);
    return new UrlMap(m.local, m.public).toLocal(u);
  };
  const since = (sid) => Date.now() - (created.get(sid) ?? Date.now());
  const emit = (callSid, entry) => ev.emit('event', { callSid, entry });

  const callee = async (call, ctx) => {
    const m = mapFor(call.url);
    const offsetMs = since(call.sid);
    ctx.onEnd((status) =>
      emit(call.sid, { t: since(call.sid), dir: 'local', event: 'note', text: `the call was ended by a REST update (${status}): Twilio would stop the stream now; the simulated callee plays on until it hangs up` }),
    );
    const dialOutcomes = [...(o.dialOutcomes || [])];
    const r = await simulateCall({
      url: m.local,
      publicUrl: m.public,
      authToken: call.authToken,
      accountSid: call.accountSid,
      callSid: call.sid,
      from: call.from,
      to: call.to,
      voicePath: m.path,
      voiceMethod: call.method,
      // what Twilio posts to the Url of a call created through the REST API, once answered
      params: { Direction: 'outbound-api', CallStatus: 'in-progress' },
      audio,
      dtmf: o.dtmf,
      dialOutcomes,
      speed: o.speed,
      hangupAfterMs: hangupAfterMs ?? undefined,
      streamAutoStop: hangupAfterMs == null,
      streamTailMs: tailMs,
      onEvent: (e) => {
        if (e.event === 'http-response' && e.kind === 'voice') ctx.answered();
        emit(call.sid, { ...e, t: Math.round((e.t + offsetMs) * 10) / 10 });
      },
    });
    const v = verdict(r, { authToken: call.authToken, publicUrl: m.public, dtmf: o.dtmf || [], dialOutcomes: o.dialOutcomes || [] });
    let saved = null;
    if (o.save) {
      saved = o.save.includes('{call}') ? o.save.replaceAll('{call}', call.sid) : o.save;
      writeWavFile(saved, r.agentAudioWithGaps, { encoding: 'pcm16' });
    }
    results.set(call.sid, { result: r, verdict: v, saved });
    return { status: 'completed' };
  };

  const fake = await startFakeTwilio({
    accounts: [account],
    pki,
    tls,
    port: o.port ?? 0,
    host: o.host || '127.0.0.1',
    onCreate: outcome,
    ringMs: o.ringMs ?? 1000,
    holdMs: null,
    rewriteUrl,
    callee: outcome === 'answer' ? callee : null,
  });

  fake.on('request', (rec) => {
    const m = /\/Calls(?:\/([^/.]+))?\.json$/.exec(rec.path);
    let callSid = (m && m[1]) || null;
    if (!callSid && rec.method === 'POST' && rec.status === 201 && rec.response && rec.response.sid) {
      callSid = rec.response.sid;
      created.set(callSid, rec.time);
    }
    const p = rec.params || {};
    const what = !m ? 'unknown resource' : !m[1] ? (rec.method === 'POST' ? 'create a call' : 'list calls') : rec.method === 'POST' ? 'update' : rec.method === 'GET' ? 'fetch' : rec.method.toLowerCase();
    const fields = ['To', 'From', 'Url', 'Status', 'Twiml'].filter((k) => p[k] !== undefined).map((k) => `${k}=${abbreviate(String(p[k])).slice(0, 80)}`);
    const err = rec.status >= 400 && rec.response && rec.response.message ? ` ${rec.response.code}: ${rec.response.message}` : '';
    emit(callSid, {
      t: callSid ? since(callSid) : null,
      dir: 'in',
      event: 'rest',
      method: rec.method,
      path: rec.path,
      what,
      fields,
      status: rec.status,
      auth: rec.auth.kind || 'refused',
      error: err,
    });
  });
  fake.on('webhook', (w) => {
    const [kind, event] = String(w.kind).split(':');
    emit(w.callSid, {
      t: since(w.callSid),
      dir: 'out',
      event: 'twilio-webhook',
      kind:
        kind === 'status'
          ? `status callback (${event === w.params.CallStatus ? event : `${event}: ${w.params.CallStatus}`}, SequenceNumber ${w.params.SequenceNumber})`
          : kind === 'amd'
            ? `AMD result (${w.params.AnsweredBy})`
            : `${kind} webhook`,
      method: w.method,
      url: w.url,
      status: w.status,
      ms: Date.now() - w.time,
      error: w.error,
    });
  });
  fake.on('call-ended', (call) => {
    const got = results.get(call.sid);
    const refused = call.webhooks.find((w) => w.status === 403);
    const badHook = call.webhooks.find((w) => !(w.status >= 200 && w.status < 300));
    let v;
    if (got && !got.verdict.ok) v = got.verdict;
    else if (refused) {
      v = {
        ok: false,
        exitCode: EXIT.SIGNATURE,
        reason: `the server refused the signature: HTTP 403 on ${refused.method} ${refused.url}`,
        hints: ['check --auth-token: it must be the server\'s TWILIO_AUTH_TOKEN (the fake signs with the account\'s token);', 'check --public-url/--server-url against the server\'s PUBLIC_BASE_URL.'],
      };
    } else if (badHook) v = { ok: false, exitCode: EXIT.FAILED, reason: `${badHook.kind} ${badHook.url} answered ${badHook.status ? 'HTTP ' + badHook.status : badHook.error}`, hints: [] };
    else if (outcome !== 'answer' && call.status !== outcome) v = { ok: false, exitCode: EXIT.FAILED, reason: `the call ended ${call.status}, not ${outcome}`, hints: [] };
    else v = got ? got.verdict : { ok: true, exitCode: EXIT.OK, reason: `ended ${call.status} as asked`, hints: [] };
    ev.emit('call-ended', { callSid: call.sid, status: call.status, call, ok: v.ok, verdict: v, result: got ? got.result : null, saved: got ? got.saved : null, t: since(call.sid) });
  });

  return Object.assign(ev, {
    fake,
    url: fake.url,
    caFile: fake.caFile,
    accountSid: account.sid,
    authToken: account.authToken,
    hangupAfterMs,
    results,
    close: () => fake.close(),
  });
}
