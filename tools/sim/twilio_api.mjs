// A fake of Twilio's REST API (2010-04-01) for the parts switchboard uses: create, update,
// fetch (and list, delete) of Calls. Real HTTPS with a test CA (see tls.mjs), HTTP Basic
// auth with account or API-key credentials, Twilio's parameter validation and error JSON,
// and, when told to, the callee side of a call: the signed webhooks Twilio sends to the
// call's Url, StatusCallback and AsyncAmdStatusCallback. Shared by the integration tests
// (tests/fakes/twilio_api.mjs re-exports it) and `switchboard-sim answer`, which plugs the
// simulator's TwiML executor in as the callee (the `callee` option).
//
// Tests can script faults for the next matching request(s): a delay, an error status
// (429, 500, ...) with a Twilio error body and Retry-After, a dropped connection, a request
// that is never answered. Everything received is recorded in `requests`, every webhook sent
// in `webhooks`, every call created in `calls`.
//
//   const fake = await startFakeTwilio({ accounts: [TEST_ACCOUNT], pki: makeTestPki(dir) });
//   env: TWILIO_API_BASE=fake.url, TWILIO_CA_FILE=fake.caFile
//   fake.configure({ onCreate: 'answer', rewriteUrl: (u) => u.replace(PUBLIC_BASE_URL, srv.url) });
//   fake.script({ match: { method: 'POST', pathRegex: /Calls\.json$/ }, status: 429, retryAfter: 2 });
//   fake.on('request', (rec) => ...); fake.on('webhook', (entry) => ...); fake.on('call-ended', (call) => ...)
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import twilio from 'twilio';
import { makeTestPki } from './tls.mjs';

export const API_VERSION = '2010-04-01';

// A ready-made account for tests (sids have Twilio's shapes: AC/SK + 32 hex).
export const TEST_ACCOUNT = Object.freeze({
  sid: 'AC' + 'a1'.repeat(16),
  authToken: 'fake-twilio-auth-token-0123456789',
  apiKeys: [{ sid: 'SK' + 'b2'.repeat(16), secret: 'fake-twilio-api-key-secret-0123' }],
});

// Error codes the fake answers with. Codes and messages follow Twilio's error catalogue
// (https://www.twilio.com/docs/errors/NNNNN) and, where known, the exact message text the
// API returns; the ones marked "approx." have no documented API message.
export const CODES = Object.freeze({
  AUTHENTICATE: 20003, // 401 "Authenticate"
  INVALID_PARAMETER: 20001, // approx.: Twilio's generic code for a bad parameter value
  NOT_FOUND: 20404, // 404 "The requested resource ... was not found"
  METHOD_NOT_ALLOWED: 20004,
  TOO_MANY_REQUESTS: 20429,
  INTERNAL_ERROR: 20500,
  SERVICE_UNAVAILABLE: 20503,
  TO_MISSING: 21201, // "No 'To' number is specified"
  URL_INVALID: 21205, // "Url parameter is required..." / "Url is not a valid URL: ..."
  TIMEOUT_INVALID: 21208,
  METHOD_INVALID: 21209,
  FROM_NOT_VERIFIED: 21210,
  TO_INVALID: 21211,
  FROM_INVALID: 21212,
  FROM_MISSING: 21213,
  APPLICATION_SID_INVALID: 21218,
  CALL_STATE_INVALID: 21220, // update of a call that has ended
  MACHINE_DETECTION_INVALID: 21234,
  STATUS_CALLBACK_INVALID: 21609,
  STATUS_CALLBACK_EVENT_INVALID: 21626,
  TWIML_TOO_LONG: 32018, // "Twiml size exceeded maximum allowed value of 4000 characters"
});

// The default error body of a scripted failure status.
const DEFAULT_ERRORS = {
  400: [21000, 'Bad Request'],
  401: [CODES.AUTHENTICATE, 'Authenticate'],
  403: [20403, 'Forbidden'],
  404: [CODES.NOT_FOUND, 'Not Found'],
  429: [CODES.TOO_MANY_REQUESTS, 'Too Many Requests'],
  500: [CODES.INTERNAL_ERROR, 'Internal Server Error'],
  503: [CODES.SERVICE_UNAVAILABLE, 'Service Unavailable'],
};

const STATUS_EVENTS = ['initiated', 'ringing', 'answered', 'completed'];
const TERMINAL = new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled']);
const TWIML_MAX = 4000;
// Twilio's API takes E.164 (a '+', then up to 15 digits); 8 is the shortest real number.
const E164 = /^\+[1-9]\d{7,14}$/;

// Twilio's error body: {code, message, more_info, status}.
export function twilioErrorBody(status, code, message) {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

// Twilio's date format (RFC 2822 with a numeric zone): "Tue, 31 Aug 2010 20:36:28 +0000".
export function rfc2822(date = new Date()) {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

export function basicAuth(user, password) {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
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

const sid = (prefix) => prefix + randomBytes(16).toString('hex');
const one = (v) => (Array.isArray(v) ? v[0] : v);
const many = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

// Form params with repeated keys kept as arrays (StatusCallbackEvent=a&StatusCallbackEvent=b).
function parseForm(text) {
  const out = {};
  for (const [k, v] of new URLSearchParams(text)) {
    if (!(k in out)) out[k] = v;
    else if (Array.isArray(out[k])) out[k].push(v);
    else out[k] = [out[k], v];
  }
  return out;
}

function isHttpUrl(s) {
  if (typeof s !== 'string' || !/^https?:\/\//i.test(s)) return false;
  try {
    return Boolean(new URL(s).hostname);
  } catch {
    return false;
  }
}

// "(415) 555-1212" for NANP numbers, as in Twilio's to_formatted/from_formatted.
function formatted(n) {
  const m = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(n || '');
  return m ? `(${m[1]}) ${m[2]}-${m[3]}` : n;
}

function country(n) {
  if (/^\+1\d{10}$/.test(n)) return 'US';
  for (const [p, c] of [['+44', 'GB'], ['+49', 'DE'], ['+33', 'FR'], ['+31', 'NL'], ['+61', 'AU']]) if (n.startsWith(p)) return c;
  return '';
}

function appendQuery(url, params) {
  const q = new URLSearchParams(params).toString();
  if (!q) return url;
  return url + (url.includes('?') ? '&' : '?') + q;
}

function matches(rule, rec) {
  const m = rule.match || {};
  if (m.method && m.method.toUpperCase() !== rec.method) return false;
  if (m.pathRegex && !new RegExp(m.pathRegex).test(rec.path)) return false;
  return true;
}

class FakeTwilio extends EventEmitter {
  constructor({ accounts, pki, ownedNumbers, onCreate, ringMs, holdMs, answeredBy, rewriteUrl, webhookCa, callee }) {
    super();
    this.accounts = accounts;
    this.pki = pki;
    this.caFile = pki ? pki.caFile : null;
    this.ca = pki ? pki.ca : null;
    // Play-out and validation settings; configure() changes them later (the fake is usually
    // started before the server whose address rewriteUrl needs).
    this.options = { ownedNumbers, onCreate, ringMs, holdMs, answeredBy, rewriteUrl, webhookCa, callee };
    this.requests = [];
    this.calls = new Map();
    this.webhooks = [];
    this.rules = [];
    this.timers = new Set();
    this.hung = new Set();
    this.sockets = new Set();
    this.generation = 0; // bumped by reset()/close(): play-outs of an older generation stop
  }

  configure(opts) {
    Object.assign(this.options, opts);
    return this;
  }

  // Queues a behaviour for the next matching request(s):
  //   match: {method, pathRegex}   (either optional; no match = every request)
  //   times: 1 (Infinity for always)
  //   delayMs                      wait before answering (or before failing)
  //   status, twilioError {code, message, status}, retryAfter, headers, rawBody
  //                                answer this error instead (default body by status)
  //   drop: true                   destroy the socket without answering
  //   hang: true                   never answer (until reset/close)
  //   afterProcessing: true        handle the request first (the call IS created), then
  //                                fail/drop/hang: "the request reached Twilio"
  //   onCreate, ringMs, holdMs, answeredBy
  //                                play-out of the call this create makes
  script(rule) {
    this.rules.push({ times: 1, ...rule });
    return this;
  }

  reset() {
    this.generation++;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const res of this.hung) res.socket?.destroy();
    this.hung.clear();
    this.requests.length = 0;
    this.webhooks.length = 0;
    this.calls.clear();
    this.rules.length = 0;
  }

  async close() {
    this.reset();
    this.generation++;
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  waitFor(predicate, timeoutMs, intervalMs) {
    return waitFor(predicate, timeoutMs, intervalMs);
  }

  // The callee hangs up (or the call ends otherwise) — status: completed, busy, failed...
  hangup(callSid, status = 'completed') {
    const call = this.calls.get(callSid);
    if (!call) throw new Error(`no call ${callSid}`);
    this.finishLater(call, status);
    return call.done;
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

  // ---- HTTP ----

  async handle(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url, 'https://api.twilio.com');
    const contentType = req.headers['content-type'] || '';
    const rec = {
      method: req.method,
      path: u.pathname,
      query: parseForm(u.search.slice(1)),
      headers: req.headers,
      contentType,
      body,
      // Twilio reads parameters only from a form body; anything else (JSON...) reads as none.
      params: /^application\/x-www-form-urlencoded\b/i.test(contentType) ? parseForm(body) : {},
      auth: this.authenticate(req.headers.authorization),
      time: Date.now(),
      status: null,
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
    const out = this.route(rec, rule);
    if (!(rule && rule.afterProcessing && this.fault(rule, rec, res))) this.send(res, rec, out.status, out.body, out.headers);
    rec.response = out.body;
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
    if (rule.status || rule.twilioError || rule.rawBody !== undefined) {
      const status = rule.status || rule.twilioError?.status || 500;
      const [dcode, dmsg] = DEFAULT_ERRORS[status] || [20000 + status, http.STATUS_CODES[status] || 'Error'];
      const headers = { ...(rule.headers || {}) };
      if (rule.retryAfter !== undefined) headers['Retry-After'] = String(rule.retryAfter);
      const body =
        rule.rawBody !== undefined
          ? rule.rawBody
          : twilioErrorBody(status, rule.twilioError?.code ?? dcode, rule.twilioError?.message ?? dmsg);
      this.send(res, rec, status, body, headers);
      return true;
    }
    return false;
  }

  send(res, rec, status, body, headers = {}) {
    rec.status = status;
    const text = typeof body === 'string' ? body : body === null ? '' : JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Twilio-Request-Id': sid('RQ'),
      ...headers,
    });
    res.end(text);
  }

  error(status, code, message, headers) {
    return { status, body: twilioErrorBody(status, code, message), headers };
  }

  // HTTP Basic: the account SID and auth token, or an API key SID (SK...) and its secret.
  // Returns the principal: {username, kind: 'account'|'apiKey'|null, accountSid, valid}.
  authenticate(header) {
    const m = /^Basic\s+(\S+)$/i.exec(header || '');
    if (!m) return { username: null, kind: null, accountSid: null, valid: false };
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    const [user, pass] = i < 0 ? [decoded, ''] : [decoded.slice(0, i), decoded.slice(i + 1)];
    for (const a of this.accounts) {
      if (a.sid === user && a.authToken === pass) return { username: user, kind: 'account', accountSid: a.sid, valid: true };
      for (const k of a.apiKeys || [])
        if (k.sid === user && k.secret === pass) return { username: user, kind: 'apiKey', accountSid: a.sid, valid: true };
    }
    return { username: user, kind: null, accountSid: null, valid: false };
  }

  route(rec, rule) {
    // Twilio's 401 answer to any request without valid credentials
    const unauthorized = () =>
      this.error(401, CODES.AUTHENTICATE, 'Authenticate', { 'WWW-Authenticate': 'Basic realm="Twilio API"' });
    if (!rec.auth.valid) return unauthorized();
    const notFound = () => this.error(404, CODES.NOT_FOUND, `The requested resource ${rec.path} was not found`);
    const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Calls(?:\/([^/]+?))?\.json$/.exec(rec.path);
    if (!m) return notFound();
    const [, accountSid, callSid] = m;
    // The credentials must belong to the account named in the path.
    if (accountSid !== rec.auth.accountSid) return unauthorized();
    const account = this.accounts.find((a) => a.sid === accountSid);
    const notAllowed = () => this.error(405, CODES.METHOD_NOT_ALLOWED, 'Method not allowed');

    if (!callSid) {
      if (rec.method === 'POST') return this.create(rec, account, rule);
      if (rec.method === 'GET') return this.list(rec, account);
      return notAllowed();
    }
    const call = this.calls.get(callSid);
    if (!call || call.accountSid !== accountSid) return notFound();
    if (rec.method === 'GET') return { status: 200, body: this.resource(call) };
    if (rec.method === 'POST') return this.update(rec, call);
    if (rec.method === 'DELETE') {
      this.calls.delete(callSid);
      return { status: 204, body: null };
    }
    return notAllowed();
  }

  // ---- Calls: create ----

  // Twilio's validation of a create, in roughly the order Twilio reports problems.
  validateCreate(p, account) {
    const bad = (code, message) => this.error(400, code, message);
    const to = one(p.To);
    const from = one(p.From);
    if (!to) return bad(CODES.TO_MISSING, "No 'To' number is specified");
    if (!(E164.test(to) || /^sip:[^@\s]+@[^\s]+$/i.test(to) || /^client:[\w.@-]+$/.test(to)))
      return bad(CODES.TO_INVALID, `The 'To' number ${to} is not a valid phone number.`);
    if (!from) return bad(CODES.FROM_MISSING, "No 'From' number is specified");
    if (!E164.test(from))
      return bad(CODES.FROM_INVALID, `The 'From' number ${from} is not a valid phone number, shortcode, or alphanumeric sender ID.`);
    const owned = account.ownedNumbers || this.options.ownedNumbers;
    if (owned && !owned.includes(from))
      return bad(
        CODES.FROM_NOT_VERIFIED,
        `The source phone number provided, ${from}, is not yet verified for your account. ` +
          "You may only make calls from phone numbers that you've verified or purchased from Twilio.",
      );

    // What to run when the call is answered: exactly one of Url, Twiml, ApplicationSid.
    const given = ['Url', 'Twiml', 'ApplicationSid'].filter((k) => one(p[k]));
    if (given.length === 0)
      return bad(CODES.URL_INVALID, 'Url parameter is required. For more information, see http://www.twilio.com/docs/api/twiml');
    if (given.length > 1) return bad(CODES.URL_INVALID, `Only one of Url, Twiml or ApplicationSid may be given (got ${given.join(', ')})`); // approx.
    if (one(p.Url) && !isHttpUrl(one(p.Url))) return bad(CODES.URL_INVALID, `Url is not a valid URL: ${one(p.Url)}`);
    if (one(p.Twiml) && one(p.Twiml).length > TWIML_MAX)
      return bad(CODES.TWIML_TOO_LONG, `Twiml size exceeded maximum allowed value of ${TWIML_MAX} characters`);
    if (one(p.ApplicationSid) && !/^AP[0-9a-f]{32}$/.test(one(p.ApplicationSid)))
      return bad(CODES.APPLICATION_SID_INVALID, `Invalid ApplicationSid: ${one(p.ApplicationSid)}`);
    for (const k of ['Method', 'FallbackMethod', 'StatusCallbackMethod', 'AsyncAmdStatusCallbackMethod'])
      if (p[k] !== undefined && !/^(GET|POST)$/i.test(one(p[k]))) return bad(CODES.METHOD_INVALID, `${k} must be either GET or POST`);
    if (p.FallbackUrl !== undefined && !isHttpUrl(one(p.FallbackUrl)))
      return bad(CODES.URL_INVALID, `FallbackUrl is not a valid URL: ${one(p.FallbackUrl)}`);

    for (const k of ['StatusCallback', 'AsyncAmdStatusCallback'])
      if (p[k] !== undefined && !isHttpUrl(one(p[k]))) return bad(CODES.STATUS_CALLBACK_INVALID, `${k} is not a valid URL: ${one(p[k])}`);
    // StatusCallbackEvent repeats, one event per value (Twilio also splits on spaces).
    const events = many(p.StatusCallbackEvent).flatMap((v) => v.split(' ').filter(Boolean));
    const wrong = events.filter((e) => !STATUS_EVENTS.includes(e));
    if (wrong.length)
      return bad(CODES.STATUS_CALLBACK_EVENT_INVALID, `One or more of the StatusCallbackEvents provided were invalid: ${wrong.join(', ')}`);

    // Twilio documents 600 s as the maximum ring time; below 5 s is not a useful ring (the
    // fake is stricter than Twilio, which clamps, so a nonsense value shows in tests).
    if (p.Timeout !== undefined) {
      const t = one(p.Timeout);
      if (!/^\d+$/.test(t) || Number(t) < 5 || Number(t) > 600)
        return bad(CODES.TIMEOUT_INVALID, `Invalid Timeout: ${t}. Timeout must be a whole number of seconds between 5 and 600`);
    }
    if (p.MachineDetection !== undefined && !['Enable', 'DetectMessageEnd'].includes(one(p.MachineDetection)))
      return bad(CODES.MACHINE_DETECTION_INVALID, `Invalid Machine Detection configuration value: MachineDetection=${one(p.MachineDetection)}`);
    if (p.AsyncAmd !== undefined && !/^(true|false)$/i.test(one(p.AsyncAmd)))
      return bad(CODES.MACHINE_DETECTION_INVALID, `Invalid Machine Detection configuration value: AsyncAmd=${one(p.AsyncAmd)}`);
    if (p.Record !== undefined && !/^(true|false)$/i.test(one(p.Record)))
      return bad(CODES.INVALID_PARAMETER, `Invalid value for parameter Record: ${one(p.Record)}`); // approx.
    return null;
  }

  create(rec, account, rule) {
    const p = rec.params;
    const invalid = this.validateCreate(p, account);
    if (invalid) return invalid;

    const now = new Date();
    const events = many(p.StatusCallbackEvent).flatMap((v) => v.split(' ').filter(Boolean));
    const call = {
      sid: sid('CA'),
      accountSid: account.sid,
      authToken: account.authToken,
      params: p, // everything the create sent
      to: one(p.To),
      from: one(p.From),
      url: one(p.Url) || null,
      method: (one(p.Method) || 'POST').toUpperCase(),
      twimlParam: one(p.Twiml) || null,
      statusCallback: one(p.StatusCallback) || null,
      statusCallbackMethod: (one(p.StatusCallbackMethod) || 'POST').toUpperCase(),
      // Without StatusCallbackEvent Twilio sends only the completed callback.
      statusEvents: events.length ? events : ['completed'],
      machineDetection: one(p.MachineDetection) || null,
      asyncAmd: /^true$/i.test(one(p.AsyncAmd) || ''),
      status: 'queued',
      dateCreated: now,
      dateUpdated: now,
      startTime: null,
      endTime: null,
      answeredBy: null,
      twiml: null, // the TwiML the call ran: the Url webhook's answer, or the Twiml param
      sequence: 0,
      updates: [],
      webhooks: [],
      queue: Promise.resolve(),
    };
    call.done = new Promise((r) => (call.resolveDone = r));
    this.calls.set(call.sid, call);

    // Per-call play-out: the script rule's settings, else the fake's.
    const o = this.options;
    const pick = (k, dflt) => (rule && rule[k] !== undefined ? rule[k] : o[k] !== undefined ? o[k] : dflt);
    const plan = {
      onCreate: pick('onCreate', null),
      ringMs: pick('ringMs', 10),
      holdMs: pick('holdMs', null),
      answeredBy: pick('answeredBy', 'human'),
      callee: pick('callee', null),
    };
    // Twilio answers 201 first; the call progresses afterwards.
    return { status: 201, body: this.resource(call), then: () => this.playOut(call, plan) };
  }

  list(rec, account) {
    const calls = [...this.calls.values()].filter((c) => c.accountSid === account.sid).reverse();
    const uri = rec.path;
    return {
      status: 200,
      body: {
        calls: calls.map((c) => this.resource(c)),
        start: 0,
        end: Math.max(calls.length - 1, 0),
        page: 0,
        page_size: 50,
        first_page_uri: `${uri}?PageSize=50&Page=0`,
        next_page_uri: null,
        previous_page_uri: null,
        uri: `${uri}?PageSize=50&Page=0`,
      },
    };
  }

  // The call resource as Twilio's JSON shows it.
  resource(c) {
    const base = `/${API_VERSION}/Accounts/${c.accountSid}/Calls/${c.sid}`;
    const sub = (name) => `${base}/${name}.json`;
    const duration = c.startTime && c.endTime ? String(Math.round((c.endTime - c.startTime) / 1000)) : c.endTime ? '0' : null;
    return {
      account_sid: c.accountSid,
      annotation: null,
      answered_by: c.answeredBy,
      api_version: API_VERSION,
      caller_name: null,
      date_created: rfc2822(c.dateCreated),
      date_updated: rfc2822(c.dateUpdated),
      direction: 'outbound-api',
      duration,
      end_time: c.endTime ? rfc2822(c.endTime) : null,
      forwarded_from: null,
      from: c.from,
      from_formatted: formatted(c.from),
      group_sid: null,
      parent_call_sid: null,
      phone_number_sid: null,
      price: null,
      price_unit: 'USD',
      queue_time: '0',
      sid: c.sid,
      start_time: c.startTime ? rfc2822(c.startTime) : null,
      status: c.status,
      subresource_uris: {
        feedback: sub('Feedback'),
        notifications: sub('Notifications'),
        recordings: sub('Recordings'),
        streams: sub('Streams'),
        payments: sub('Payments'),
        user_defined_message_subscriptions: sub('UserDefinedMessageSubscriptions'),
        transcriptions: sub('Transcriptions'),
        siprec: sub('Siprec'),
        events: sub('Events'),
        feedback_summaries: `/${API_VERSION}/Accounts/${c.accountSid}/Calls/FeedbackSummary.json`,
        user_defined_messages: sub('UserDefinedMessages'),
      },
      to: c.to,
      to_formatted: formatted(c.to),
      trunk_sid: null,
      uri: `${base}.json`,
    };
  }

  // ---- Calls: update (live call modification) ----

  update(rec, call) {
    const p = rec.params;
    const bad = (code, message) => this.error(400, code, message);
    const status = one(p.Status);
    const url = one(p.Url);
    const twiml = one(p.Twiml);
    if (status !== undefined && !['completed', 'canceled'].includes(status))
      return bad(CODES.INVALID_PARAMETER, `Invalid Status: ${status}. Status must be canceled or completed`); // approx.
    if (twiml !== undefined && twiml.length > TWIML_MAX)
      return bad(CODES.TWIML_TOO_LONG, `Twiml size exceeded maximum allowed value of ${TWIML_MAX} characters`);
    if (url !== undefined && !isHttpUrl(url)) return bad(CODES.URL_INVALID, `Url is not a valid URL: ${url}`);
    if (p.Method !== undefined && !/^(GET|POST)$/i.test(one(p.Method))) return bad(CODES.METHOD_INVALID, 'Method must be either GET or POST');
    if (TERMINAL.has(call.status) && (status || url || twiml))
      return bad(CODES.CALL_STATE_INVALID, 'Call is not in-progress. Cannot redirect.');

    call.updates.push({ params: p, time: Date.now() });
    call.dateUpdated = new Date();
    let then;
    if (status === 'completed') {
      // hangs up an in-progress call; a call not yet answered ends as canceled
      this.finishLater(call, call.status === 'in-progress' ? 'completed' : 'canceled');
    } else if (status === 'canceled') {
      // canceled only affects a call that is queued or ringing (no effect once answered)
      if (call.status === 'queued' || call.status === 'ringing') this.finishLater(call, 'canceled');
    } else if (twiml !== undefined) {
      call.twimlParam = twiml;
      if (call.status === 'in-progress') {
        call.twiml = twiml;
        then = () => this.afterTwiml(call, call.plan || {});
      }
    } else if (url !== undefined) {
      call.url = url;
      call.twimlParam = null;
      if (p.Method !== undefined) call.method = one(p.Method).toUpperCase();
      // an in-progress call is redirected: Twilio requests the new Url now
      if (call.status === 'in-progress')
        then = () => this.enqueue(call, async () => {
          await this.fetchTwiml(call, 'redirect');
          this.afterTwiml(call, call.plan || {});
        });
    }
    return { status: 200, body: this.resource(call), then };
  }

  // ---- the callee side ----

  enqueue(call, fn) {
    const gen = this.generation;
    call.queue = call.queue.then(() => (gen === this.generation ? fn() : undefined)).catch(() => {});
    return call.queue;
  }

  // What Twilio does after a create, by plan.onCreate:
  //   'answer'    initiated, ringing, the Url webhook (its TwiML kept in call.twiml),
  //               answered, [AMD callback]; the call then stays in-progress until it is
  //               updated to completed, hangup() is called, holdMs passes, or its TwiML hangs up
  //   'busy'      initiated, then completed with CallStatus=busy
  //   'no-answer' initiated, ringing, then completed with CallStatus=no-answer
  //   'failed'    completed with CallStatus=failed
  //   null        nothing: the call stays queued
  playOut(call, plan) {
    call.plan = plan;
    if (!plan.onCreate) return;
    const live = () => call.status === 'queued' || call.status === 'ringing';
    this.enqueue(call, async () => {
      await this.sleep(plan.ringMs);
      if (!live()) return;
      if (plan.onCreate === 'failed') return this.finish(call, 'failed');
      await this.statusCallback(call, 'initiated', 'initiated');
      if (plan.onCreate === 'busy') {
        await this.sleep(plan.ringMs);
        if (live()) await this.finish(call, 'busy');
        return;
      }
      if (!live()) return;
      this.setStatus(call, 'ringing');
      await this.statusCallback(call, 'ringing', 'ringing');
      await this.sleep(plan.ringMs);
      if (!live()) return;
      if (plan.onCreate === 'no-answer') return this.finish(call, 'no-answer');

      // answered
      this.setStatus(call, 'in-progress');
      call.startTime = new Date();
      if (call.machineDetection) call.answeredBy = plan.answeredBy;
      if (plan.callee && call.url && !call.twimlParam) return this.runCallee(call, plan);
      if (call.twimlParam) call.twiml = call.twimlParam;
      else if (call.url) await this.fetchTwiml(call, 'url');
      await this.answered(call);
      this.afterTwiml(call, plan);
    });
  }

  // The answered callback and, when asked for, the asynchronous AMD result.
  async answered(call) {
    if (call.status !== 'in-progress') return; // hung up meanwhile
    await this.statusCallback(call, 'answered', 'in-progress');
    if (call.machineDetection && call.asyncAmd && one(call.params.AsyncAmdStatusCallback)) {
      await this.webhook(call, 'amd', one(call.params.AsyncAmdStatusCallback),
        (one(call.params.AsyncAmdStatusCallbackMethod) || 'POST').toUpperCase(), {
          AccountSid: call.accountSid,
          AnsweredBy: call.answeredBy,
          CallSid: call.sid,
          MachineDetectionDuration: '2400',
        });
    }
  }

  // A pluggable callee (`callee` option; `switchboard-sim answer` runs the simulator's TwiML
  // executor here): callee(call, ctx) requests the call's Url itself (signed with
  // call.authToken, parameters of call.sid/from/to), runs the TwiML, and resolves when the
  // call is over, with {status} (default completed). It calls ctx.answered() once the Url
  // has answered: the answered callback (and AMD) go out then, while the TwiML runs.
  // ctx.onEnd(fn): fn(status) is called if the call is ended from outside meanwhile (an
  // update to Status=completed, hangup()). The completed callback follows the callee's end.
  async runCallee(call, plan) {
    let answered = null;
    const ctx = {
      fake: this,
      answered: () => (answered ??= this.answered(call)),
      onEnd: (fn) => (call.onEnd = fn),
      ended: () => TERMINAL.has(call.status),
    };
    let out = null;
    try {
      out = await plan.callee(call, ctx);
    } catch (e) {
      call.calleeError = e;
    }
    call.onEnd = null;
    await ctx.answered();
    call.callee = out;
    await this.finish(call, (out && out.status) || 'completed');
  }

  // A TwiML that hangs up ends the call; otherwise holdMs (if set) does.
  afterTwiml(call, plan) {
    if (call.status !== 'in-progress') return;
    const hangsUp = /<(Hangup|Reject)\b/.test(call.twiml || '');
    const hold = plan.holdMs ?? (hangsUp ? 0 : null);
    if (hold === null) return;
    const gen = this.generation;
    this.sleep(hold).then(() => {
      if (gen === this.generation) this.finishLater(call, 'completed');
    });
  }

  setStatus(call, status) {
    call.status = status;
    call.dateUpdated = new Date();
  }

  // Ends the call now (false if it had ended already).
  end(call, status) {
    if (TERMINAL.has(call.status)) return false;
    this.setStatus(call, status);
    call.endTime = new Date();
    if (call.onEnd) call.onEnd(status);
    return true;
  }

  // Ends the call and sends the completed callback (CallStatus = the final status); for use
  // inside the call's queue.
  async finish(call, status) {
    if (!this.end(call, status)) return;
    await this.statusCallback(call, 'completed', status);
    call.resolveDone(call);
    this.emit('call-ended', call);
  }

  // Ends the call now; the completed callback follows, after anything already queued.
  finishLater(call, status) {
    if (!this.end(call, status)) return;
    this.enqueue(call, async () => {
      await this.statusCallback(call, 'completed', status);
      call.resolveDone(call);
      this.emit('call-ended', call);
    });
  }

  // The parameters Twilio sends with every voice webhook of an outbound-api call.
  callParams(call, callStatus) {
    const p = {
      AccountSid: call.accountSid,
      ApiVersion: API_VERSION,
      CallSid: call.sid,
      CallStatus: callStatus,
      Called: call.to,
      CalledCity: '',
      CalledCountry: country(call.to),
      CalledState: '',
      CalledZip: '',
      Caller: call.from,
      CallerCity: '',
      CallerCountry: country(call.from),
      CallerState: '',
      CallerZip: '',
      Direction: 'outbound-api',
      From: call.from,
      FromCity: '',
      FromCountry: country(call.from),
      FromState: '',
      FromZip: '',
      To: call.to,
      ToCity: '',
      ToCountry: country(call.to),
      ToState: '',
      ToZip: '',
    };
    return p;
  }

  // The request for the call's TwiML (at answer, or after a redirect by update).
  async fetchTwiml(call, kind) {
    const params = this.callParams(call, 'in-progress');
    // synchronous AMD: the result comes with the Url request
    if (call.machineDetection && !call.asyncAmd && call.answeredBy) params.AnsweredBy = call.answeredBy;
    const r = await this.webhook(call, kind, call.url, call.method, params);
    if (r.status >= 200 && r.status < 300) call.twiml = r.body;
    return r;
  }

  // A call progress event, if the create asked for it (StatusCallbackEvent).
  async statusCallback(call, event, callStatus) {
    if (!call.statusCallback || !call.statusEvents.includes(event)) return;
    const params = {
      ...this.callParams(call, callStatus),
      CallbackSource: 'call-progress-events',
      SequenceNumber: String(call.sequence++),
      Timestamp: rfc2822(),
    };
    if (event === 'completed') {
      const secs = call.startTime ? Math.round((call.endTime - call.startTime) / 1000) : 0;
      params.CallDuration = String(secs);
      params.Duration = String(Math.ceil(secs / 60)); // billed minutes
      params.SipResponseCode = { completed: '200', busy: '486', 'no-answer': '487', canceled: '487', failed: '500' }[callStatus];
    }
    if (call.answeredBy) params.AnsweredBy = call.answeredBy;
    await this.webhook(call, `status:${event}`, call.statusCallback, call.statusCallbackMethod, params);
  }

  // Sends one webhook as Twilio does: form POST (or GET with the params in the query),
  // X-Twilio-Signature over the URL as given to Twilio (+ sorted params for POST), always
  // with the account's auth token, even when the call was created with an API key.
  // rewriteUrl(url) may send it elsewhere (the server's real address) without changing
  // what is signed. Never throws; the outcome is recorded in webhooks and call.webhooks.
  async webhook(call, kind, url, method, params) {
    const signedUrl = method === 'GET' ? appendQuery(url, params) : url;
    const signature = twilio.getExpectedTwilioSignature(call.authToken, signedUrl, method === 'GET' ? {} : params);
    const target = this.options.rewriteUrl ? this.options.rewriteUrl(signedUrl) : signedUrl;
    const body = method === 'GET' ? '' : new URLSearchParams(params).toString();
    const entry = { kind, callSid: call.sid, url, target, method, params, signature, time: Date.now(), status: null, body: null, error: null };
    this.webhooks.push(entry);
    call.webhooks.push(entry);
    try {
      const r = await this.httpRequest(target, method, body, {
        'Content-Type': 'application/x-www-form-urlencoded',
        'X-Twilio-Signature': signature,
        'User-Agent': 'TwilioProxy/1.1',
        'I-Twilio-Idempotency-Token': randomUUID(),
        Accept: '*/*',
      });
      entry.status = r.status;
      entry.headers = r.headers;
      entry.body = r.body;
    } catch (e) {
      entry.error = e.message;
      entry.status = 0;
    }
    this.emit('webhook', entry);
    return entry;
  }

  httpRequest(url, method, body, headers) {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const ca = this.options.webhookCa || [...(this.ca ? [this.ca] : []), ...rootCertificates];
    return new Promise((resolve, reject) => {
      const req = mod.request(u, { method, headers: { ...headers, 'Content-Length': Buffer.byteLength(body) }, ca, agent: false, timeout: 15000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
        res.on('error', reject);
      });
      // Twilio gives up on a webhook after 15 s
      req.on('timeout', () => req.destroy(new Error('webhook timed out (15 s)')));
      req.on('error', reject);
      req.end(body);
    });
  }
}

// Starts the fake on 127.0.0.1 (port 0: an ephemeral one).
//   accounts      [{sid: 'AC…', authToken, apiKeys: [{sid: 'SK…', secret}], ownedNumbers?}]
//                 (default [TEST_ACCOUNT])
//   pki           makeTestPki(dir) (default: a new one in a temp folder)
//   ownedNumbers  From numbers the accounts own; others get 21210 (default: any)
//   onCreate      'answer' | 'busy' | 'no-answer' | 'failed' | null (default null)
//   ringMs        pause between call progress steps (default 10)
//   holdMs        how long an answered call lasts (default null: until hung up)
//   answeredBy    AMD result when MachineDetection is asked for (default 'human')
//   rewriteUrl    (url) => where webhooks for url really go (signature unchanged)
//   webhookCa     CA(s) trusted for https webhooks (default the test CA + system roots)
//   callee        (call, ctx) => Promise<{status}>: plays the answered call (see runCallee)
//   tls           false: plain HTTP, no PKI (default true: HTTPS with the test CA)
export async function startFakeTwilio({ accounts = [TEST_ACCOUNT], pki, port = 0, host = '127.0.0.1', tls = true, ...options } = {}) {
  if (tls) pki = pki || makeTestPki(mkdtempSync(join(tmpdir(), 'fake-twilio-pki-')));
  else pki = null;
  const fake = new FakeTwilio({ accounts, pki, ...options });
  const onRequest = (req, res) => {
    fake.handle(req, res).catch((e) => {
      if (!res.headersSent) fake.send(res, { status: null }, 500, twilioErrorBody(500, CODES.INTERNAL_ERROR, `fake twilio: ${e.message}`));
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
