// A fake of the jambonz REST API (jambonz-api-server 0.9.x, /v1) for the parts switchboard uses:
// create a call (POST /v1/Accounts/{account_sid}/Calls) and update a live one (PUT, and the legacy
// POST, /v1/Accounts/{account_sid}/Calls/{call_sid}), plus fetch, list and delete of the call
// table. It answers as jambonz-api-server does, with the feature server's part of the work folded
// in (the api-server forwards create and update to a feature server and relays its answer):
//
//   - API keys as bearer tokens (passport-http-bearer): no or unknown key -> 401 "Unauthorized"
//     with WWW-Authenticate: Bearer realm="Users"[, error="invalid_token"]; a malformed header ->
//     400 "Bad Request". An account key used on another (or an unknown) account -> 403
//     {"msg":"insufficient permissions"}; a sid in the path that is not a UUID -> 400
//     {"msg":"Bad request"}.
//   - create: the api-server's checks with its messages (400 {"msg"}), then the feature
//     server's schema (its refusal reaches the client as a bare 500), then 201 {sid, callId}.
//   - update: the api-server's checks (400 {"msg"}), an unknown call -> 404 "Not Found", then the
//     feature server's: 422 "call session is gone for call_sid ..." once the call has ended, 422
//     "current call state is incompatible ..." for a hang-up before answer; else 202 "Accepted".
//   - bodies are read as express does: JSON only with Content-Type application/json (else {}),
//     malformed JSON -> 400 {"msg": <parser message>}; an unknown route -> 404 "Cannot PUT /x".
//   - the rate limiter, when turned on (`rateLimit`), answers 429 "Too many requests, please try
//     again later." with Retry-After, as express-rate-limit does.
//
// The fake places no SIP call and sends no webhook: that is the feature server's side, which a
// test plays itself (or with the feature-server player) from onCreate(call) / the events. The
// call table follows what the test reports: ring(), answer(), end(); an inbound call the player
// starts is registered with addCall() so that updates on it find it.
//
// Tests can script faults for the next matching request(s): a delay, an error status with a body
// and Retry-After, a dropped connection, a request that is never answered. Everything received
// is recorded in `requests`, every call in `calls`.
//
//   const fake = await startFakeJambonzApi({ onCreate: (call) => ... });
//   env: JAMBONZ_API_BASE=fake.url, JAMBONZ_ACCOUNT_SID=TEST_ACCOUNT.sid,
//        JAMBONZ_API_KEY=TEST_ACCOUNT.apiKey, JAMBONZ_CA_FILE=fake.caFile
//   fake.failNext(2, 503);  fake.script({ match: { method: 'PUT' }, status: 429, retryAfter: 1 });
//   fake.on('create', (call) => ...); fake.on('update', ({ call, body }) => ...);
//   fake.on('call-ended', (call) => ...); fake.on('request', (rec) => ...)
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki } from './tls.mjs';

// A ready-made account: sids and API keys are UUIDs in jambonz.
export const TEST_ACCOUNT = Object.freeze({
  sid: '9351f46a-678c-43f5-b8a6-d4eb58d131af',
  apiKey: '3f9c1b7e-2d4a-4c8e-9f1a-0b6d5e7c8a21',
  sipRealm: 'sip.switchboard.test',
  applications: [],
});

// uuid@9 validate(): what the api-server accepts as a sid in a path.
export const UUID_RE = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|00000000-0000-0000-0000-000000000000)$/i;

export const CALL_STATUSES = ['trying', 'ringing', 'early-media', 'in-progress', 'completed', 'failed', 'busy', 'no-answer', 'queued'];
const TERMINAL = new Set(['completed', 'failed', 'busy', 'no-answer']);
const SPEECH = ['speech_synthesis_vendor', 'speech_synthesis_language', 'speech_synthesis_voice', 'speech_recognizer_vendor', 'speech_recognizer_language'];
// The properties of an update of which only one may come at a time (validateUpdateCall).
const UPDATE_KINDS = ['call_hook', 'child_call_hook', 'call_status', 'listen_status', 'transcribe_status', 'conf_hold_status',
  'conf_mute_status', 'mute_status', 'sip_request', 'record', 'tag', 'dtmf', 'conferenceParticipantAction', 'dub',
  'boostAudioSignal', 'media_path'];
const JSON_LIMIT = 100 * 1024; // express.json()'s default limit
const RATE_LIMITED = 'Too many requests, please try again later.';

export function bearer(token) {
  return `Bearer ${token}`;
}

// Polls predicate (sync or async) until it returns something truthy, and resolves with it.
export async function waitFor(predicate, timeoutMs = 5000, intervalMs = 10) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() >= deadline) throw new Error(`waitFor: condition not met in ${timeoutMs} ms: ${predicate}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// ---- answers, shaped as express sends them ----

// res.json(obj)
const json = (status, body, headers = {}) => ({ status, body: JSON.stringify(body), type: 'application/json; charset=utf-8', headers });
// res.sendStatus(status): the status text as text/plain
const sendStatus = (status, headers = {}) => ({ status, body: http.STATUS_CODES[status] || String(status), type: 'text/plain; charset=utf-8', headers });
// res.send(string)
const sendText = (status, text, headers = {}) => ({ status, body: text, type: 'text/html; charset=utf-8', headers });
// passport's failure: the status text with no Content-Type, and the challenge on a 401
const passportFail = (status, challenge) => ({
  status,
  body: http.STATUS_CODES[status],
  type: null,
  headers: status === 401 && challenge ? { 'WWW-Authenticate': challenge } : {},
});
// finalhandler's 404 for a route nobody serves
function cannot(method, path) {
  const html = `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot ${method} ${path}</pre>\n</body>\n</html>\n`;
  return { status: 404, body: html, type: 'text/html; charset=utf-8', headers: { 'Content-Security-Policy': "default-src 'none'" } };
}
const badRequest = (msg) => json(400, { msg });

// The default answer of a scripted failure status.
function scriptedAnswer(status, retryAfter) {
  switch (status) {
    case 400:
      return badRequest('Bad request');
    case 401:
      return passportFail(401, 'Bearer realm="Users", error="invalid_token"');
    case 403:
      return json(403, { msg: 'insufficient permissions' });
    case 429:
      return sendText(429, RATE_LIMITED, { 'Retry-After': String(retryAfter ?? 1) });
    case 480:
      return json(480, { msg: 'no available feature servers at this time' });
    default:
      return sendStatus(status);
  }
}

function matches(rule, rec) {
  const m = rule.match || {};
  if (m.method && m.method.toUpperCase() !== rec.method) return false;
  if (m.pathRegex && !new RegExp(m.pathRegex).test(rec.path)) return false;
  return true;
}

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
// express-validator (validator.js) checks on String(value)
const isInt = (v) => /^[-+]?(?:0|[1-9][0-9]*)$/.test(String(v));
const isBoolean = (v) => ['true', 'false', '1', '0'].includes(String(v));

export class FakeJambonzApi extends EventEmitter {
  constructor({ accounts = [TEST_ACCOUNT], adminKeys = [], pki = null, ...options } = {}) {
    super();
    this.accounts = accounts;
    this.adminKeys = adminKeys;
    this.pki = pki;
    this.caFile = pki ? pki.caFile : null;
    this.ca = pki ? pki.ca : null;
    // featureServers: false answers every create 480 (none registered); rateLimit {limit,
    // windowMs} turns the limiter on; onCreate / onUpdate: see startFakeJambonzApi.
    this.options = { featureServers: true, rateLimit: null, onCreate: null, onUpdate: null, ...options };
    this.requests = [];
    this.calls = new Map();
    this.rules = [];
    this.timers = new Set();
    this.hung = new Set();
    this.sockets = new Set();
    this.window = { start: Date.now(), hits: 0 };
    this.generation = 0;
  }

  configure(opts) {
    Object.assign(this.options, opts);
    return this;
  }

  // Queues a behaviour for the next matching request(s):
  //   match: {method, pathRegex}   (either optional; no match = every request)
  //   times: 1 (Infinity for always)
  //   delayMs                      wait before answering (or before failing)
  //   status, body, headers, retryAfter
  //                                answer this instead (body: an object as JSON, a string as
  //                                text; default: what jambonz sends with that status)
  //   drop: true                   destroy the socket without answering
  //   hang: true                   never answer (until reset/close)
  //   afterProcessing: true        handle the request first (a create DOES make the call),
  //                                then fail/drop/hang: "the request reached jambonz"
  //   onCreate                     the play-out of the call this create makes
  script(rule) {
    this.rules.push({ times: 1, ...rule });
    return this;
  }

  // The next n requests (matching `match`, if given) answer status with body.
  failNext(n, status, body, { match, headers, retryAfter, delayMs } = {}) {
    return this.script({ times: n, status, body, match, headers, retryAfter, delayMs });
  }

  reset() {
    this.generation++;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const res of this.hung) res.socket?.destroy();
    this.hung.clear();
    this.requests.length = 0;
    this.calls.clear();
    this.rules.length = 0;
    this.window = { start: Date.now(), hits: 0 };
  }

  async close() {
    this.reset();
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  waitFor(predicate, timeoutMs, intervalMs) {
    return waitFor(predicate, timeoutMs, intervalMs);
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  // ---- the call table (what the feature server would report to redis) ----

  // Registers a call the api-server did not create (an inbound call the feature-server player
  // started), so that updates find it. info: {sid?, accountSid?, direction?, from, to, status?,
  // callHook?}; the status defaults to in-progress.
  addCall(info = {}) {
    const call = this.newCall({
      sid: info.sid || randomUUID(),
      accountSid: info.accountSid || this.accounts[0].sid,
      direction: info.direction || 'inbound',
      from: info.from ?? null,
      to: info.to ?? null,
      callHook: info.callHook || null,
      callStatusHook: info.callStatusHook || null,
      request: null,
    });
    if (info.status) this.setStatus(call, info.status);
    else this.setStatus(call, 'in-progress');
    return call;
  }

  newCall(fields) {
    const now = new Date();
    const call = {
      callId: `${randomUUID()}@fake-jambonz`,
      applicationSid: null,
      tag: null,
      status: 'trying',
      sipStatus: 100,
      created: now,
      answered: null,
      ended: null,
      statuses: ['trying'],
      updates: [], // every accepted update body, in order
      callHooks: [], // the call_hook URLs of accepted updates: each a redirect to new instructions
      ...fields,
    };
    call.done = new Promise((r) => (call.resolveDone = r));
    this.calls.set(call.sid, call);
    return call;
  }

  call(sidOrCall) {
    const call = typeof sidOrCall === 'string' ? this.calls.get(sidOrCall) : sidOrCall;
    if (!call) throw new Error(`no call ${sidOrCall}`);
    return call;
  }

  // Moves the call to status (one of CALL_STATUSES); false when it had ended already.
  setStatus(sidOrCall, status, sipStatus) {
    const call = this.call(sidOrCall);
    if (!CALL_STATUSES.includes(status)) throw new Error(`unknown call status ${status}`);
    if (TERMINAL.has(call.status)) return false;
    call.status = status;
    call.sipStatus = sipStatus ?? { trying: 100, ringing: 180, 'early-media': 183, 'in-progress': 200, completed: 200,
      failed: 503, busy: 486, 'no-answer': 487, queued: 100 }[status];
    call.statuses.push(status);
    if (status === 'in-progress') call.answered = new Date();
    this.emit('status', { call, status });
    if (TERMINAL.has(status)) {
      call.ended = new Date();
      call.resolveDone(call);
      this.emit('call-ended', call);
    }
    return true;
  }

  ring(sid) {
    return this.setStatus(sid, 'ringing');
  }

  answer(sid) {
    return this.setStatus(sid, 'in-progress');
  }

  // The call ends (the callee hangs up, is busy, ...); updates on it now get 422.
  end(sid, status = 'completed') {
    return this.setStatus(sid, status);
  }

  live(call) {
    return !TERMINAL.has(call.status);
  }

  // ---- HTTP ----

  async handle(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    const u = new URL(req.url, 'http://jambonz.invalid');
    const contentType = req.headers['content-type'] || '';
    const rec = {
      method: req.method,
      url: req.url,
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      headers: req.headers,
      contentType,
      body: raw.toString('utf8'),
      json: null, // the body as the route read it
      auth: null, // {token, scope, accountSid, valid}
      time: Date.now(),
      status: null,
      response: null,
      rule: null,
    };
    this.requests.push(rec);

    const rule = this.rules.find((r) => r.times > 0 && matches(r, rec));
    if (rule) {
      rule.times--;
      rec.rule = rule;
    }
    const gen = this.generation;
    if (rule?.delayMs) await this.sleep(rule.delayMs);
    if (gen !== this.generation || res.destroyed || req.socket.destroyed) {
      rec.status = 'client-gone';
      return;
    }
    if (rule && !rule.afterProcessing && this.fault(rule, rec, res)) return this.emit('request', rec);
    const out = this.route(rec, raw, rule);
    if (!(rule && rule.afterProcessing && this.fault(rule, rec, res))) this.send(res, rec, out);
    this.emit('request', rec);
    out.then?.();
  }

  // Applies a scripted fault; false when the rule has none (delay or play-out only).
  fault(rule, rec, res) {
    if (rule.drop) {
      rec.status = 'dropped';
      res.socket.destroy();
      return true;
    }
    if (rule.hang) {
      rec.status = 'hung';
      this.hung.add(res);
      return true;
    }
    if (rule.status || rule.body !== undefined) {
      const status = rule.status || 500;
      let out = scriptedAnswer(status, rule.retryAfter);
      if (rule.body !== undefined)
        out = typeof rule.body === 'string' ? sendText(status, rule.body, out.headers) : json(status, rule.body, out.headers);
      if (rule.retryAfter !== undefined) out.headers = { ...out.headers, 'Retry-After': String(rule.retryAfter) };
      out.headers = { ...out.headers, ...(rule.headers || {}) };
      this.send(res, rec, out);
      return true;
    }
    return false;
  }

  send(res, rec, out) {
    if (out.status === 204 || out.status === 304) out = { ...out, body: '', type: null }; // express sends no body
    rec.status = out.status;
    rec.response = out.body;
    const headers = { 'Cache-Control': 'no-store, no-cache, must-revalidate, proxy-revalidate', ...out.headers };
    if (out.type) headers['Content-Type'] = out.type;
    headers['Content-Length'] = Buffer.byteLength(out.body);
    res.writeHead(out.status, headers);
    res.end(out.body);
  }

  // express-rate-limit (when on): every request counts, the 429 says when the window resets.
  rateLimited() {
    const rl = this.options.rateLimit;
    if (!rl) return null;
    const now = Date.now();
    const windowMs = rl.windowMs ?? 5 * 60 * 1000;
    if (now - this.window.start >= windowMs) this.window = { start: now, hits: 0 };
    this.window.hits++;
    const limit = rl.limit ?? 600;
    const reset = Math.max(0, Math.ceil((this.window.start + windowMs - now) / 1000));
    const headers = {
      'RateLimit-Policy': `${limit};w=${Math.ceil(windowMs / 1000)}`,
      'RateLimit-Limit': String(limit),
      'RateLimit-Remaining': String(Math.max(limit - this.window.hits, 0)),
      'RateLimit-Reset': String(reset),
    };
    if (this.window.hits <= limit) return { headers };
    return { answer: sendText(429, RATE_LIMITED, { ...headers, 'Retry-After': String(reset) }) };
  }

  // express.urlencoded() then express.json(): each reads only its own content type.
  parseBody(rec, raw) {
    const type = rec.contentType.split(';')[0].trim().toLowerCase();
    if (type === 'application/json') {
      if (raw.length > JSON_LIMIT) return { error: json(413, { msg: 'request entity too large' }) };
      const text = raw.toString('utf8');
      if (text.length === 0) return { body: {} };
      const first = text.trimStart()[0];
      try {
        // strict mode: only an object or an array at the top
        if (first !== '{' && first !== '[') JSON.parse('#' + text);
        return { body: JSON.parse(text) };
      } catch (e) {
        return { error: badRequest(e.message) };
      }
    }
    if (type === 'application/x-www-form-urlencoded') {
      // approx.: express reads nested keys (to[type]=phone) with qs; the fake only flat ones
      return { body: Object.fromEntries(new URLSearchParams(raw.toString('utf8'))) };
    }
    return { body: {} };
  }

  // passport-http-bearer: the token from the header, else access_token in the body or query.
  authenticate(rec, body) {
    const header = rec.headers.authorization;
    let token = null;
    if (header) {
      const parts = header.split(' ');
      if (parts.length !== 2) return { error: passportFail(400) };
      if (/^Bearer$/i.test(parts[0])) token = parts[1];
    }
    if (!token && body && typeof body.access_token === 'string' && body.access_token) token = body.access_token;
    if (!token && rec.query.access_token) token = rec.query.access_token;
    if (!token) {
      rec.auth = { token: null, valid: false };
      return { error: passportFail(401, 'Bearer realm="Users"') };
    }
    if (this.adminKeys.includes(token)) return { user: (rec.auth = { token, valid: true, scope: 'admin', accountSid: null }) };
    for (const a of this.accounts) {
      const keys = a.apiKeys || (a.apiKey ? [a.apiKey] : []);
      if (keys.includes(token)) return { user: (rec.auth = { token, valid: true, scope: 'account', accountSid: a.sid }) };
    }
    rec.auth = { token, valid: false };
    return { error: passportFail(401, 'Bearer realm="Users", error="invalid_token"') };
  }

  route(rec, raw, rule) {
    const limited = this.rateLimited();
    if (limited?.answer) return limited.answer;
    const withRate = (out) => (limited ? { ...out, headers: { ...limited.headers, ...out.headers } } : out);

    const parsed = this.parseBody(rec, raw);
    if (parsed.error) return withRate(parsed.error);
    const body = parsed.body;
    rec.json = body;
    if (!/^\/v1(\/|$)/i.test(rec.path)) {
      // the health checks answer without a key
      if (rec.method === 'GET' && (rec.path === '/' || rec.path === '/health')) return withRate(sendStatus(200));
      return withRate(cannot(rec.method, rec.path));
    }
    const auth = this.authenticate(rec, body);
    if (auth.error) return withRate(auth.error);

    // express matches routes case-insensitively, with or without a trailing slash
    const m = /^\/v1\/Accounts\/([^/]+)\/Calls(?:\/([^/]+))?\/?$/i.exec(rec.path);
    if (!m) return withRate(cannot(rec.method, rec.path));
    const one = m[2] !== undefined;
    const handlers = one
      ? { GET: () => this.fetchCall(rec, auth.user), DELETE: () => this.deleteCall(rec, auth.user),
        PUT: () => this.updateCall(rec, auth.user, body), POST: () => this.updateCall(rec, auth.user, body) }
      : { POST: () => this.createCall(rec, auth.user, body, rule), GET: () => this.listCalls(rec, auth.user) };
    const h = handlers[rec.method];
    return withRate(h ? h() : cannot(rec.method, rec.path));
  }

  // validateSid(): the sid after `model/` in the URL as sent (query included), a UUID or 400.
  sidIn(rec, model) {
    const m = new RegExp(`${model}/([^/]*)`).exec(rec.url);
    if (!m) return { sid: undefined };
    return UUID_RE.test(m[1]) ? { sid: m[1] } : { error: badRequest('Bad request') };
  }

  // validateRequest(): an account key only reaches its own account.
  permitted(user, accountSid) {
    if (user.scope === 'admin' || accountSid === user.accountSid) return null;
    return json(403, { msg: 'insufficient permissions' });
  }

  account(sid) {
    return this.accounts.find((a) => a.sid === sid) || null;
  }

  application(sid) {
    for (const a of this.accounts) {
      const app = (a.applications || []).find((x) => x.sid === sid || x.application_sid === sid);
      if (app) return app;
    }
    return null;
  }

  // ---- create ----

  createCall(rec, user, body, rule) {
    // the api-server looks for a feature server before anything else
    if (!this.options.featureServers) return json(480, { msg: 'no available feature servers at this time' });
    const a = this.sidIn(rec, 'Accounts');
    if (a.error) return a.error;
    const denied = this.permitted(user, a.sid);
    if (denied) return denied;
    const obj = isObject(body) ? { ...body } : {};
    const invalid = this.validateCreate(a.sid, obj);
    if (invalid) return invalid;
    obj.account_sid = a.sid;

    // the feature server: its refusals reach the client as a bare 500
    const refused = this.featureServerCreate(obj);
    if (refused) {
      rec.refusal = refused;
      return sendStatus(500);
    }
    const call = this.newCall({
      sid: randomUUID(),
      accountSid: a.sid,
      direction: 'outbound',
      from: obj.from,
      to: obj.to,
      callerName: obj.callerName ?? null,
      applicationSid: obj.application_sid ?? null,
      callHook: obj.call_hook || null,
      callStatusHook: obj.call_status_hook || null,
      timeout: obj.timeout !== undefined ? Number(obj.timeout) : 60,
      timeLimit: obj.timeLimit !== undefined ? Number(obj.timeLimit) : null,
      tag: obj.tag ?? null,
      request: obj, // the create as the feature server received it
    });
    const onCreate = rule && rule.onCreate !== undefined ? rule.onCreate : this.options.onCreate;
    return {
      ...json(201, { sid: call.sid, callId: call.callId }),
      then: () => {
        this.emit('create', call);
        this.playOut(call, onCreate);
      },
    };
  }

  // The api-server's validateCreateCall(), in its order and with its messages.
  validateCreate(accountSid, obj) {
    if (!obj.from) return badRequest('missing from parameter');
    const to = obj.to;
    const toOk = isObject(to) && (
      ((to.type === 'phone' || to.type === 'teams') && typeof to.number === 'string') ||
      (to.type === 'user' && typeof to.name === 'string') ||
      (to.type === 'sip' && typeof to.sipUri === 'string'));
    if (!toOk) return badRequest(`missing or invalid to property: ${JSON.stringify(to)}`);
    if (obj.application_sid) {
      const app = this.application(obj.application_sid);
      if (!app) return badRequest(`application_sid not found ${obj.application_sid}`);
      const hook = (h) => (typeof h === 'string' ? { url: h, method: 'POST' } : h ?? null);
      Object.assign(obj, {
        call_hook: hook(app.call_hook),
        call_status_hook: hook(app.call_status_hook),
        ...Object.fromEntries(SPEECH.map((k) => [k, app[k] ?? null])),
      });
    } else {
      delete obj.application_sid;
      if (SPEECH.some((k) => !obj[k]))
        return badRequest(`either application_sid or set of ${SPEECH.join(', ')} required`);
    }
    if (!obj.call_hook && !obj.application_sid) return badRequest('either call_hook or application_sid required');
    for (const k of ['call_hook', 'call_status_hook']) {
      if (typeof obj[k] === 'string') obj[k] = { url: obj[k], method: 'POST' };
    }
    for (const k of ['call_hook', 'call_status_hook']) {
      if (isObject(obj[k]) && typeof obj[k].url !== 'string')
        return badRequest(`${k} must be string or an object containing a url property`);
    }
    for (const k of ['call_hook', 'call_status_hook']) {
      if (obj[k] && !/^https?:/.test(obj[k].url) && !/^wss?:/.test(obj[k].url)) return badRequest(`${k} url be an absolute url`);
    }
    return null;
  }

  // The feature server's createCall: its schema (express-validator), then the target. Returns
  // why it refuses, or null.
  featureServerCreate(obj) {
    for (const k of Object.keys(obj)) if (obj[k] === null) delete obj[k];
    const optional = (k, ok, msg) => (obj[k] !== undefined && !ok(obj[k]) ? msg : null);
    const problems = [
      optional('application_sid', (v) => typeof v === 'string' && v.length === 36, 'Invalid application_sid'),
      optional('answerOnBridge', isBoolean, 'Invalid answerOnBridge'),
      typeof obj.from === 'string' && obj.from.length >= 1 && obj.from.length <= 256 ? null : 'Invalid from',
      optional('fromHost', (v) => typeof v === 'string', 'Invalid fromHost'),
      isObject(obj.to) ? null : 'Invalid to',
      optional('callerName', (v) => typeof v === 'string', 'Invalid callerName'),
      optional('amd', isObject, 'Invalid amd'),
      optional('tag', isObject, 'Invalid tag'),
      optional('app_json', (v) => typeof v === 'string', 'Invalid app_json'),
      optional('timeout', isInt, 'Invalid timeout'),
      optional('timeLimit', isInt, 'Invalid timeLimit'),
      optional('call_hook', isObject, 'Invalid call_hook'),
      optional('call_status_hook', isObject, 'Invalid call_status_hook'),
      ...SPEECH.map((k) => optional(k, (v) => typeof v === 'string', `Invalid ${k}`)),
    ].filter(Boolean);
    if (problems.length) return problems.join(', ');
    const account = this.account(obj.account_sid);
    if (!account) return `unknown account ${obj.account_sid}`;
    if (obj.to.type === 'teams' && !account.teams) return 'dial to ms teams not allowed; account must first be configured with teams info';
    if (obj.to.type === 'user' && !obj.to.name.includes('@') && !account.sipRealm) return 'no sip realm configured for account';
    return null;
  }

  // After the 201: onCreate(call, fake) plays the callee (or 'answer' / 'ring' / 'busy' /
  // 'no-answer' / 'failed' for a canned outcome); null leaves the call trying.
  playOut(call, onCreate) {
    if (!onCreate) return;
    if (typeof onCreate === 'function') {
      Promise.resolve()
        .then(() => onCreate(call, this))
        .catch((e) => {
          call.calleeError = e;
          this.emit('callee-error', { call, error: e });
        });
      return;
    }
    if (onCreate === 'ring') this.ring(call);
    else if (onCreate === 'answer') {
      this.ring(call);
      this.answer(call);
    } else if (['busy', 'no-answer', 'failed'].includes(onCreate)) this.end(call, onCreate);
    else throw new Error(`unknown onCreate ${onCreate}`);
  }

  // ---- update ----

  updateCall(rec, user, body) {
    const a = this.sidIn(rec, 'Accounts');
    if (a.error) return a.error;
    const denied = this.permitted(user, a.sid);
    if (denied) return denied;
    const c = this.sidIn(rec, 'Calls');
    if (c.error) return c.error;
    const opts = isObject(body) ? body : {};
    const invalid = this.validateUpdate(opts);
    if (invalid) return invalid;
    const call = this.calls.get(c.sid);
    if (!call || call.accountSid !== a.sid) return sendStatus(404);

    // the feature server (its 400 comes back as JSON, its 422 as text)
    if (opts.call_status_hook && !opts.call_hook)
      return badRequest(`call_status_hook can be updated only when call_hook is also being updated for call_sid ${c.sid}`);
    if (!this.live(call)) return sendText(422, `call session is gone for call_sid ${c.sid}`);
    const incompatible = () => sendText(422, `current call state is incompatible with requested action for call_sid ${c.sid}`);
    const answered = call.status === 'in-progress';
    if (opts.call_status === 'completed' && !answered) return incompatible();
    if (opts.call_status === 'no-answer' && answered) return incompatible();

    call.updates.push(opts);
    if (opts.call_hook) call.callHooks.push(typeof opts.call_hook === 'string' ? opts.call_hook : opts.call_hook.url);
    const then = () => {
      this.emit('update', { call, body: opts, rec });
      if (this.options.onUpdate) this.options.onUpdate(call, opts, this);
      if (opts.call_status) this.end(call, opts.call_status);
    };
    if (opts.sip_request) return { ...json(200, { status: 200, reason: 'OK' }), then };
    return { ...sendStatus(202), then };
  }

  // The api-server's validateUpdateCall(), with its messages.
  validateUpdate(opts) {
    const count = UPDATE_KINDS.filter((k) => opts[k]).length;
    if (count === 0 && !opts.whisper) return badRequest('no valid options supplied to updateCall');
    if (count === 2 && !(opts.call_hook && opts.child_call_hook) && !(opts.conf_hold_status && opts.waitHook))
      return badRequest('multiple options are not allowed in updateCall');
    if (count > 2) return badRequest('multiple options are not allowed in updateCall');
    const oneOf = (k, values) => opts[k] && !values.includes(opts[k]);
    if (oneOf('call_status', ['completed', 'no-answer'])) return badRequest('invalid call_status');
    if (oneOf('listen_status', ['pause', 'silence', 'resume'])) return badRequest('invalid listen_status');
    if (oneOf('mute_status', ['mute', 'unmute'])) return badRequest('invalid mute_status');
    if (oneOf('conf_hold_status', ['hold', 'unhold'])) return badRequest('invalid conf_hold_status');
    if (oneOf('conf_mute_status', ['mute', 'unmute'])) return badRequest('invalid conf_mute_status');
    const sr = opts.sip_request;
    if (sr && (!sr.method || !sr.content_type || !sr.content))
      return badRequest('sip_request requires method, content_type and content properties');
    if (opts.record && !opts.record.action) return badRequest('record requires action property');
    if (opts.dtmf && !opts.dtmf.digit) return badRequest('invalid dtmf');
    if (opts.record?.action && !opts.record.siprecServerURL && opts.record.type !== 'cloud')
      return badRequest('record requires siprecServerURL property when starting recording');
    if (opts.tag && !isObject(opts.tag)) return badRequest('invalid tag data');
    const cpa = opts.conferenceParticipantAction;
    if (cpa) {
      if (!['tag', 'untag', 'coach', 'uncoach', 'mute', 'unmute', 'hold', 'unhold'].includes(cpa.action))
        return badRequest(`conferenceParticipantAction invalid action property ${cpa.action}`);
      if ((cpa.action === 'tag' || cpa.action === 'coach') && !cpa.tag)
        return badRequest(`conferenceParticipantAction requires tag property when action is '${cpa.action}'`);
    }
    if (oneOf('media_path', ['no-media', 'partial-media', 'full-media'])) return badRequest('invalid media_path');
    return null;
  }

  // ---- fetch, list, delete ----

  // The call as GET returns it (the feature server's call info, snake_case).
  info(call) {
    const to = isObject(call.to) ? call.to.number || call.to.sipUri || call.to.name : call.to;
    const out = {
      call_sid: call.sid,
      call_id: call.callId,
      account_sid: call.accountSid,
      application_sid: call.applicationSid,
      direction: call.direction,
      from: call.from,
      to,
      caller_name: call.callerName ?? null,
      call_status: call.status,
      sip_status: call.sipStatus,
      duration: call.answered && call.ended ? Math.round((call.ended - call.answered) / 1000) : 0,
    };
    for (const k of Object.keys(out)) if (out[k] === null || out[k] === undefined) delete out[k];
    return out;
  }

  fetchCall(rec, user) {
    const a = this.sidIn(rec, 'Accounts');
    if (a.error) return a.error;
    const denied = this.permitted(user, a.sid);
    if (denied) return denied;
    const c = this.sidIn(rec, 'Calls');
    if (c.error) return c.error;
    const call = this.calls.get(c.sid);
    return call && call.accountSid === a.sid ? json(200, this.info(call)) : sendStatus(404);
  }

  listCalls(rec, user) {
    const a = this.sidIn(rec, 'Accounts');
    if (a.error) return a.error;
    const denied = this.permitted(user, a.sid);
    if (denied) return denied;
    const q = rec.query;
    const calls = [...this.calls.values()].filter((c) => c.accountSid === a.sid &&
      (!q.direction || c.direction === q.direction) && (!q.callStatus || c.status === q.callStatus));
    return json(200, calls.map((c) => this.info(c)));
  }

  deleteCall(rec, user) {
    const a = this.sidIn(rec, 'Accounts');
    if (a.error) return a.error;
    const denied = this.permitted(user, a.sid);
    if (denied) return denied;
    const c = this.sidIn(rec, 'Calls');
    if (c.error) return c.error;
    const call = this.calls.get(c.sid);
    if (!call || call.accountSid !== a.sid) return sendStatus(404);
    this.calls.delete(c.sid);
    return sendStatus(204);
  }
}

// Starts the fake on 127.0.0.1 (port 0: an ephemeral one).
//   accounts      [{sid (UUID), apiKey | apiKeys: [...], sipRealm?, teams?, applications?:
//                 [{sid, call_hook, call_status_hook, speech_*...}]}] (default [TEST_ACCOUNT])
//   adminKeys     API keys of admin scope (any account)
//   tls           true: HTTPS with a test CA (pki, default: a new one in a temp folder);
//                 false (default): plain HTTP
//   onCreate      (call, fake) => ...: plays the callee of each created call; or 'answer',
//                 'ring', 'busy', 'no-answer', 'failed'; null (default): the call stays trying
//   onUpdate      (call, body, fake) => ...: sees each accepted update (before a call_status
//                 update ends the call)
//   featureServers  false: every create answers 480
//   rateLimit     {limit, windowMs}: the api-server's limiter (off by default)
export async function startFakeJambonzApi({ port = 0, host = '127.0.0.1', tls = false, pki, ...options } = {}) {
  if (tls) pki = pki || makeTestPki(mkdtempSync(join(tmpdir(), 'fake-jambonz-pki-')));
  else pki = null;
  const fake = new FakeJambonzApi({ pki, ...options });
  const onRequest = (req, res) => {
    fake.handle(req, res).catch((e) => {
      if (!res.headersSent) fake.send(res, { status: null }, json(500, { msg: `fake jambonz: ${e.message}` }));
    });
  };
  const server = tls ? https.createServer({ key: pki.key, cert: pki.cert }, onRequest) : http.createServer(onRequest);
  server.on('connection', (s) => {
    fake.sockets.add(s);
    s.on('close', () => fake.sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  fake.server = server;
  fake.port = server.address().port;
  fake.url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${fake.port}`;
  return fake;
}
