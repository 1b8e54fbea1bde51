// Bad requests on every route of every platform, generated from tables: bodies (wrong content
// types, broken form encoding, truncated or invalid JSON, deep nesting, huge strings, NUL bytes,
// invalid UTF-8, 10,000 fields or keys), headers (huge, too many, bytes they may not hold),
// bearer tokens (garbled, expired, alg none, HS512, other tenants), webhook signatures (missing,
// forged, stale), query values, odd paths and wrong methods, HTTP/1.1 framing on a raw socket,
// and garbage WebSocket frames after a valid signed upgrade of /twilio/media and /jambonz/listen.
// Every answer: no 5xx, an X-Request-Id, the route's documented error shape (JSON errors on the
// API and the pages; TwiML or 403 on /twilio/*; a verb array or 403 on /jambonz/*; 404 and 405
// are JSON everywhere, as README.md says), 400 naming the field for a bad query value; nothing
// written (every table's rows before and after each batch), no database error logged, and the
// server alive (/health) and clean (stop() fails on a sanitizer report).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash, createHmac } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import twilio from 'twilio';
import verbSpecs from '@jambonz/verb-specifications';
import { startServer, sqlite, sqlRows, cleanup, sleep, SANITIZED } from './lib/harness.mjs';
import { AUTH_TOKEN, PUBLIC_BASE_URL } from './lib/twilio.mjs';
import { JWT_SECRET, token } from './lib/jwt.mjs';
import { bytes, bodyBytes, build, parseResponse, rawExchange, rawUpgrade, until, frame } from './lib/rawhttp.mjs';

const JAMBONZ_SECRET = 'adversarial-jambonz-secret-0123';
const ELEVENLABS_SECRET = 'adversarial-elevenlabs-secret-0123';
const SMALL_BODY = 4096;
const SLOW = SANITIZED ? 4 : 1;
const UNKNOWN = 'f'.repeat(32); // a session id no row has
const SEEDED = 'a0'.repeat(16); // tenant 1's ended call
const SEEDED_SID = 'CA' + 'e'.repeat(32);
const now = () => Math.floor(Date.now() / 1000);

// ---- servers ---------------------------------------------------------------------------------

const servers = [];
let A; // every secret set, bodies up to 1 MiB: the garbage reaches the parsers and validators
let B; // MAX_REQUEST_BODY=4096: bodies over the limit and HTTP framing on raw sockets
const env = {
  TLS_PORT: 'off', JWT_SECRET, TWILIO_AUTH_TOKEN: AUTH_TOKEN, PUBLIC_BASE_URL, JAMBONZ_WEBHOOK_SECRET: JAMBONZ_SECRET,
  ELEVENLABS_WEBHOOK_SECRET: ELEVENLABS_SECRET, AI_PROVIDER: 'echo', PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com',
};
before(async () => {
  [A, B] = await Promise.all([
    startServer({ env: { ...env, MAX_REQUEST_BODY: String(1 << 20) } }),
    startServer({ env: { ...env, MAX_REQUEST_BODY: String(SMALL_BODY) } }),
  ]);
  servers.push(A, B);
  sqlite(dbOf(A), "INSERT INTO tenants (id, name) VALUES (2, 'other')");
  sqlite(dbOf(A), 'INSERT INTO calls (session_id, tenant_id, direction, call_sid, from_number, to_number, status, ended_at) ' +
    `VALUES ('${SEEDED}', 1, 'inbound', '${SEEDED_SID}', '+14155550111', '+14155550100', 'completed', '2026-01-01T00:00:00.000Z')`);
});
after(async () => {
  // our keep-alive connections go first, or the servers wait SHUTDOWN_TIMEOUT_S for them
  for (const p of pools.values()) p.closeAll();
  await sleep(200);
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr.slice(-4000));
    cleanup(s.dir);
  }
});

const dbOf = (s) => s.dir + '/data/switchboard.db';
const TABLES = ['calls', 'call_events', 'transcripts', 'bookings', 'tickets', 'customers', 'tenants', 'tenant_numbers', 'post_call_conversations'];
// Every table's row count, and what an update could change in tenants and calls: one query
// (on PostgreSQL each is a psql process).
function snapshot(s) {
  const fp = (table, cols) => `(SELECT group_concat(x, ',') FROM (SELECT ${cols.map((c) => `coalesce(CAST(${c} AS TEXT), '-')`).join(` || ':' || `)} AS x FROM ${table} ORDER BY id) AS q) AS ${table}_fp`;
  return sqlRows(dbOf(s), `SELECT ${TABLES.map((t) => `(SELECT count(*) FROM ${t}) AS ${t}`).join(', ')}, ` +
    `${fp('tenants', ['id', 'name', 'greeting', 'primary_target', 'inbound_mode', 'max_concurrent_calls', 'updated_at'])}, ` +
    `${fp('calls', ['id', 'status', 'updated_at', 'ended_at', 'next_action', 'transfer_attempt', 'transfer_result'])}`)[0];
}

// A batch of cases: all answered as their route documents, nothing written, no database error,
// the server still healthy.
async function batch(t, s, cases) {
  const before = snapshot(s);
  const errorsBefore = s.logLines('db.error').length;
  const failures = [];
  let bare = 0;
  await mapLimit(cases, 6, async (c) => {
    let res;
    try {
      res = await pool(s).send(c);
    } catch (e) {
      failures.push(`${c.name}: ${e.message}`);
      return;
    }
    if (res.status && !res.headers['x-request-id']) bare++;
    for (const e of check(c, res)) failures.push(`${c.name} (${c.method} ${String(c.path).slice(0, 120)}): ${e}; got ${describe(res)}`);
  });
  assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases failed`);
  assert.deepEqual(snapshot(s), before, 'something was written');
  await healthy(s, errorsBefore);
  t.diagnostic(`${cases.length} cases (${tally(cases)})${bare ? `, ${bare} answered by h2o alone (bare 400)` : ''}`);
}

// Cases by route group: json (the API, pages, anything not a platform's), twilio, jambonz, ws.
function tally(cases) {
  const n = {};
  for (const c of cases) n[c.group] = (n[c.group] ?? 0) + 1;
  return Object.entries(n).map(([k, v]) => `${k} ${v}`).join(', ');
}

async function healthy(s, errorsBefore) {
  const r = await pool(s).send({ path: '/health', headers: [['Connection', 'close']], fresh: true });
  assert.equal(r.status, 200, describe(r));
  // garbage never reaches the database as an error
  assert.deepEqual(s.logLines('db.error').slice(errorsBefore), []);
}

async function mapLimit(items, n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

// ---- a raw HTTP/1.1 client: any bytes out, keep-alive connections reused ---------------------

// One connection; exchange() sends a request and resolves with its response ({status: 0} when the
// server closed without answering).
class Conn {
  constructor(port) {
    this.sock = net.connect(port, '127.0.0.1');
    this.buf = Buffer.alloc(0);
    this.ended = false;
    this.used = 0;
    this.wake = null;
    this.ready = new Promise((r, j) => { this.sock.once('connect', r); this.sock.once('error', j); });
    this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake?.(); });
    this.sock.on('close', () => { this.ended = true; this.wake?.(); });
    this.sock.on('error', () => {});
  }

  async exchange(req, { head = false, ms = 15000 * SLOW } = {}) {
    await this.ready;
    this.used++;
    const t0 = Date.now();
    this.sock.write(req);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done({ status: 0, timedOut: true }), ms);
      const done = (res) => {
        clearTimeout(timer);
        this.wake = null;
        resolve({ ...res, ms: Date.now() - t0 });
      };
      this.wake = () => {
        const res = parseResponse(this.buf, { head, ended: this.ended });
        if (res) {
          this.buf = this.buf.subarray(res.used);
          if (res.headers.connection === 'close') this.close();
          return done({ ...res, closedAfter: res.headers.connection === 'close' || this.ended });
        }
        if (this.ended) done({ status: 0, closed: true, partial: this.buf.toString('latin1').slice(0, 200) });
      };
      this.wake();
    });
  }

  close() {
    this.ended = true;
    this.sock.destroy();
  }
}

// Keep-alive connections of one server, reused across cases (c.fresh: a connection of its own,
// closed after the answer); a request that finds its reused connection closed by the server
// (keep-alive) is sent once more on a new one.
const pools = new Map();
function pool(s) {
  if (!pools.has(s)) {
    const idle = [];
    pools.set(s, {
      async send(c) {
        const req = build(c);
        for (let attempt = 0; ; attempt++) {
          const conn = (c.fresh ? null : idle.pop()) || new Conn(s.port);
          const reused = conn.used > 0;
          const res = await conn.exchange(req, { head: c.method === 'HEAD' });
          if (!c.fresh && res.status && res.status !== 101 && !res.closedAfter && !conn.ended) idle.push(conn);
          else conn.close();
          if (res.status === 0 && reused && attempt === 0 && !res.timedOut) continue;
          return res;
        }
      },
      closeAll() {
        while (idle.length) idle.pop().close();
      },
    });
  }
  return pools.get(s);
}

// ---- what an answer must look like ----------------------------------------------------------

const quiet = { info() {}, debug() {}, error() {}, warn() {} };
const RID = /^[0-9a-f]{16}$/;

function describe(res) {
  if (!res.status) return res.timedOut ? 'no answer in time' : `connection closed without an answer ${JSON.stringify(res.partial ?? '')}`;
  return `${res.status} ${res.headers['content-type'] ?? '-'} rid=${res.headers['x-request-id'] ?? '-'} ${res.body.toString('utf8').slice(0, 300)}`;
}

// The JSON body, or a reason it is not one.
function jsonBody(res) {
  if (!/^application\/json/.test(res.headers['content-type'] ?? '')) return { why: 'not JSON' };
  try {
    return { v: JSON.parse(res.body.toString('utf8')) };
  } catch {
    return { why: 'body is not JSON' };
  }
}

function jsonError(res) {
  const { v: o, why } = jsonBody(res);
  if (why) return [why];
  const e = o?.error;
  const errs = [];
  if (!e || typeof e !== 'object' || Object.keys(o).length !== 1) return ['not {"error":{...}}'];
  if (typeof e.code !== 'string' || !e.code) errs.push('error.code missing');
  if (typeof e.message !== 'string' || !e.message) errs.push('error.message missing');
  if ('field' in e && typeof e.field !== 'string') errs.push('error.field not a string');
  const extra = Object.keys(e).filter((k) => !['code', 'message', 'field'].includes(k));
  if (extra.length) errs.push(`unexpected keys in error: ${extra}`);
  return errs;
}

function twiml(res, flow) {
  if (!/^text\/xml/.test(res.headers['content-type'] ?? '')) return ['not text/xml'];
  const text = res.body.toString('utf8');
  if (!text.startsWith('<?xml')) return ['no XML declaration'];
  let doc;
  const problems = [];
  try {
    doc = new DOMParser({ onError: (level, msg) => problems.push(`${level}: ${msg}`) }).parseFromString(text, 'text/xml');
  } catch (e) {
    return [`XML does not parse: ${e.message}`];
  }
  if (problems.length) return [`XML does not parse: ${problems[0]}`];
  const root = doc.documentElement;
  if (root?.nodeName !== 'Response') return ['root is not <Response>'];
  if (!flow) return [];
  // a call's flow gets the apology: something said, then the hang-up
  const kids = Array.from(root.childNodes).filter((n) => n.nodeType === 1).map((n) => n.nodeName);
  return kids[0] === 'Say' && kids.at(-1) === 'Hangup' && /sorry/i.test(text) ? [] : [`not the apology: ${kids}`];
}

function verbArray(res) {
  const { v, why } = jsonBody(res);
  if (why) return [why];
  if (!Array.isArray(v) || !v.every((x) => x && typeof x.verb === 'string')) return ['not a verb array'];
  try {
    verbSpecs.validate(quiet, v);
  } catch (e) {
    return [`jambonz refuses the verbs: ${e.message}`];
  }
  return [];
}

// The shape of an answer on its route: c.group is json (the API, the pages, anything not a
// platform's), twilio, jambonz, or ws (the two WebSocket endpoints asked without an upgrade).
function shape(c, res) {
  const type = res.headers['content-type'] ?? '';
  const body = res.body.toString('utf8');
  if (c.method === 'HEAD') return [];
  if (res.status === 404 || res.status === 405) return jsonError(res); // the router's, on every path
  if (c.group === 'json') return res.status >= 400 ? jsonError(res) : [];
  if (c.group === 'twilio') {
    if (res.status === 403) return /^text\/plain/.test(type) && /X-Twilio-Signature/.test(body) ? [] : ['403 without the signature text'];
    return twiml(res, c.flow);
  }
  if (c.group === 'jambonz') {
    if (res.status === 403) return /^text\/plain/.test(type) && /Jambonz-Signature/.test(body) ? [] : ['403 without the signature text'];
    return verbArray(res);
  }
  if (c.group === 'ws') {
    if (res.status === 403) return /^text\/plain/.test(type) && /X-Twilio-Signature/.test(body) ? [] : ['403 without the signature text'];
    return jsonError(res);
  }
  return [`unknown group ${c.group}`];
}

function check(c, res) {
  if (!res.status) return ['no answer'];
  const errs = [];
  if (res.status >= 500) errs.push('a 5xx');
  const rid = res.headers['x-request-id'];
  // The one exception: bytes h2o cannot parse as a request at all (a garbled request line or
  // header block, more than 100 header lines, a head over its size limit) get h2o's bare 400
  // before any request exists, so no handler or filter of ours runs: c.bare marks those.
  const bare = !rid && c.bare && res.status === 400 && res.body.toString() === 'Bad Request';
  if (!rid && !bare) errs.push('no X-Request-Id');
  else if (rid && !RID.test(rid)) errs.push(`bad X-Request-Id ${rid}`);
  if (c.bare === 'always' && !bare) errs.push('expected h2o\'s bare 400');
  if (!bare) errs.push(...shape(c, res));
  if (c.status !== undefined && ![].concat(c.status).includes(res.status)) errs.push(`status is not ${c.status}`);
  if (c.field !== undefined || c.code !== undefined) {
    let e;
    try {
      e = JSON.parse(res.body.toString('utf8')).error;
    } catch {}
    if (c.field !== undefined && (typeof e?.field !== 'string' || (c.fieldPrefix ? !c.field.startsWith(e.field) || !e.field : e.field !== c.field)))
      errs.push(`error.field is not ${JSON.stringify(c.field)}`);
    if (c.code !== undefined && e?.code !== c.code) errs.push(`error.code is not ${c.code}`);
  }
  if (c.also) errs.push(...(c.also(res) || []));
  return errs;
}

// ---- signatures and tokens ------------------------------------------------------------------

// The form as server/form.c decodes it (pairs of Buffers), or null where it refuses the body.
function decodeForm(buf) {
  const pairs = [];
  for (const seg of buf.toString('latin1').split('&')) {
    if (!seg) continue;
    const eq = seg.indexOf('=');
    const k = eq < 0 ? seg : seg.slice(0, eq), v = eq < 0 ? '' : seg.slice(eq + 1);
    if (!k) return null;
    const dec = (s) => {
      const out = [];
      for (let i = 0; i < s.length; i++) {
        let ch = s.charCodeAt(i);
        if (s[i] === '+') ch = 32;
        else if (s[i] === '%') {
          if (!/^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) return null;
          ch = parseInt(s.slice(i + 1, i + 3), 16);
          i += 2;
        }
        if (ch === 0) return null;
        out.push(ch);
      }
      return Buffer.from(out);
    };
    const kb = dec(k), vb = dec(v);
    if (!kb || !vb) return null;
    pairs.push([kb, vb]);
  }
  return pairs.length > 256 ? null : pairs;
}

// X-Twilio-Signature as server/sig.c checks it: the public URL with its query, then every pair
// sorted by name and value, bytewise.
function twilioSig(path, body) {
  const pairs = decodeForm(bodyBytes(body)) ?? [];
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]) || Buffer.compare(a[1], b[1]));
  const h = createHmac('sha1', AUTH_TOKEN).update(PUBLIC_BASE_URL + path);
  for (const [k, v] of pairs) h.update(k).update(v);
  return h.digest('base64');
}
const jambonzSig = (body, t = now(), secret = JAMBONZ_SECRET) =>
  `t=${t},v1=${createHmac('sha256', secret).update(`${t}.`).update(bodyBytes(body)).digest('hex')}`;
const elevenSig = (body, t = now(), secret = ELEVENLABS_SECRET) =>
  `t=${t},v0=${createHmac('sha256', secret).update(`${t}.`).update(bodyBytes(body)).digest('hex')}`;
const listenAuth = (session, secret = JAMBONZ_SECRET) =>
  'Basic ' + Buffer.from(`${session}:${createHmac('sha256', secret).update(`listen:${session}`).digest().subarray(0, 16).toString('hex')}`).toString('base64');

const b64url = (x) => Buffer.from(x).toString('base64url');
function rawToken(header, payload, sign = (h) => createHmac('sha256', JWT_SECRET).update(h).digest('base64url')) {
  const h = b64url(typeof header === 'string' ? header : JSON.stringify(header)) + '.' + b64url(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return h + '.' + (sign ? sign(h) : '');
}
const claims = (extra = {}) => ({ sub: 'agent@example.com', tenant_id: 1, role: 'admin', iat: now(), exp: now() + 3600, ...extra });
const bearer = (tok = token()) => ['Authorization', 'Bearer ' + tok];
const ADMIN = bearer();

// ---- the routes -----------------------------------------------------------------------------

// Every POST route, with what its error answers look like. sign: how a valid request is signed.
const POST_ROUTES = [
  { path: '/twilio/voice', group: 'twilio', flow: true, sign: 'twilio' },
  { path: `/twilio/connect_action?session=${UNKNOWN}`, group: 'twilio', flow: true, sign: 'twilio' },
  { path: `/twilio/transfer_callback?session=${UNKNOWN}&attempt=0`, group: 'twilio', flow: true, sign: 'twilio' },
  { path: '/twilio/status', group: 'twilio', sign: 'twilio' },
  { path: '/twilio/recording', group: 'twilio', sign: 'twilio' },
  { path: `/twilio/connect/${UNKNOWN}`, group: 'twilio', flow: true, sign: 'twilio' },
  { path: `/twilio/status/${UNKNOWN}`, group: 'twilio', sign: 'twilio' },
  { path: `/twilio/dial_status/${UNKNOWN}`, group: 'twilio', flow: true, sign: 'twilio' },
  { path: `/twilio/amd/${UNKNOWN}`, group: 'twilio', flow: true, sign: 'twilio' },
  { path: '/jambonz/call', group: 'jambonz', sign: 'jambonz' },
  { path: '/jambonz/status', group: 'jambonz', sign: 'jambonz' },
  { path: `/jambonz/action?session=${UNKNOWN}&step=listen`, group: 'jambonz', sign: 'jambonz' },
  { path: '/api/twilio/test', group: 'json' },
  { path: '/api/voice/post_call', group: 'json', sign: 'elevenlabs' },
  { path: '/api/calls/initiate', group: 'json', auth: true },
  { path: `/api/calls/${SEEDED}/hangup`, group: 'json', auth: true },
  { path: `/api/calls/${SEEDED}/transfer`, group: 'json', auth: true },
  { path: '/api/tenants', group: 'json', auth: true },
  { path: '/api/tenants/1', method: 'PUT', group: 'json', auth: true },
];
// Every route by its pattern, with a concrete path, for the method table.
const ALL_ROUTES = [
  { method: 'GET', path: '/', group: 'json' },
  { method: 'GET', path: '/assets/v1/app.js', group: 'json' },
  { method: 'GET', path: '/health', group: 'json' },
  { method: 'GET', path: '/metrics', group: 'json' },
  { method: 'GET', path: '/twilio/media', group: 'ws' },
  { method: 'GET', path: '/jambonz/listen', group: 'ws' },
  { method: 'GET', path: '/api/calls', group: 'json' },
  { method: 'GET', path: `/api/calls/${SEEDED}`, group: 'json' },
  { method: 'GET', path: `/api/calls/${SEEDED}/recording`, group: 'json' },
  { method: 'GET', path: '/api/live', group: 'json' },
  { method: 'GET', path: '/api/stats', group: 'json' },
  { method: 'GET', path: '/api/tenants', group: 'json' },
  { method: 'GET', path: '/api/tenants/1', group: 'json' },
  ...POST_ROUTES.map((r) => ({ method: r.method ?? 'POST', ...r })),
];

// The headers that make a request to route r valid but for what the case breaks.
function signedHeaders(r, body, path = r.path) {
  if (r.sign === 'twilio') return [['Content-Type', 'application/x-www-form-urlencoded'], ['X-Twilio-Signature', twilioSig(path, body)]];
  if (r.sign === 'jambonz') return [['Content-Type', 'application/json'], ['Jambonz-Signature', jambonzSig(body)]];
  if (r.sign === 'elevenlabs') return [['Content-Type', 'application/json'], ['ElevenLabs-Signature', elevenSig(body)]];
  return r.auth ? [ADMIN, ['Content-Type', 'application/json']] : [['Content-Type', 'application/json']];
}

// ---- deterministic garbage ------------------------------------------------------------------

function prng(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(20261204);
const randomBytes = (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));

const manyForm = Array.from({ length: 10000 }, (_, i) => `f${i}=${i}`).join('&');
const manyJson = '{' + Array.from({ length: 10000 }, (_, i) => `"k${i}":${i}`).join(',') + '}';
const u8 = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

// Bodies no route may take: [name, content type (null: none), body].
const BODIES = [
  ['empty', null, ''],
  ['form as text/plain', 'text/plain', 'a=1&b=2'],
  ['JSON as a form', 'application/x-www-form-urlencoded', '{"kind":"reject"}'],
  ['multipart', 'multipart/form-data; boundary=xx', '--xx\r\nContent-Disposition: form-data; name="CallSid"\r\n\r\nCA1\r\n--xx--\r\n'],
  ['XML', 'application/xml', '<?xml version="1.0"?><Response><Hangup/></Response>'],
  ['content type garbage', 'application/json; charset=\u00ff\u00fe', '{'],
  ['%zz', 'application/x-www-form-urlencoded', 'CallSid=%zz'],
  ['lone %', 'application/x-www-form-urlencoded', 'a=%'],
  ['%4 at the end', 'application/x-www-form-urlencoded', 'From=%4'],
  ['empty name', 'application/x-www-form-urlencoded', '=value'],
  ['only separators', 'application/x-www-form-urlencoded', '&&&=&&'],
  ['%00 in a name', 'application/x-www-form-urlencoded', 'Call%00Sid=CA1'],
  ['%00 in a value', 'application/x-www-form-urlencoded', 'CallSid=CA%001'],
  ['raw NUL bytes', 'application/x-www-form-urlencoded', u8('CallSid=', [0, 0], '&From=', [0])],
  ['raw invalid UTF-8', 'application/x-www-form-urlencoded', u8([0xff, 0xfe, 0xfd, 0x80, 0xc0, 0xaf])],
  ['%-encoded invalid UTF-8 values', 'application/x-www-form-urlencoded', 'CallSid=%ff%fe&From=%c3%28&To=%ed%a0%80'],
  ['form field name of 300 bytes', 'application/x-www-form-urlencoded', 'x'.repeat(300) + '=1'],
  ['form value of 9000 bytes', 'application/x-www-form-urlencoded', 'CallerName=' + 'x'.repeat(9000)],
  ['10,000 form fields', 'application/x-www-form-urlencoded', manyForm],
  ['truncated JSON', 'application/json', '{"customer_id":"c","phone":'],
  ['unterminated string', 'application/json', '{"kind":"rej'],
  ['trailing comma', 'application/json', '{"kind":"reject",}'],
  ['trailing garbage', 'application/json', '{"kind":"reject"} x'],
  ['two documents', 'application/json', '{}{}'],
  ['lone surrogate escape', 'application/json', '{"kind":"\\ud800"}'],
  ['escaped NUL in a value', 'application/json', '{"kind":"re\\u0000ject","call_sid":"a\\u0000b"}'],
  ['escaped NUL in a name', 'application/json', '{"ki\\u0000nd":"reject"}'],
  ['invalid UTF-8 in a JSON string', 'application/json', u8('{"kind":"', [0xc3, 0x28], '","call_sid":"', [0xff], '"}')],
  ['overlong UTF-8 in JSON', 'application/json', u8('{"name":"', [0xc0, 0xaf, 0xe0, 0x80, 0xaf], '"}')],
  ['UTF-8 BOM', 'application/json', u8([0xef, 0xbb, 0xbf], '{}')],
  ['JSON array', 'application/json', '[]'],
  ['JSON null', 'application/json', 'null'],
  ['JSON string', 'application/json', '"post_call_transcription"'],
  ['JSON number', 'application/json', '1e999'],
  ['nesting 5000 deep', 'application/json', '['.repeat(5000) + ']'.repeat(5000)],
  ['objects 3000 deep', 'application/json', '{"a":'.repeat(3000) + '1' + '}'.repeat(3000)],
  ['a 200 KB string', 'application/json', JSON.stringify({ customer_id: 'x'.repeat(200000), call_sid: 'y'.repeat(200000) })],
  ['a 5000-byte name', 'application/json', JSON.stringify({ ['k'.repeat(5000)]: 1 })],
  ['10,000 JSON keys', 'application/json', manyJson],
  ['duplicate keys', 'application/json', '{"kind":"reject","kind":"inbound","call_sid":"a","call_sid":"b"}'],
  ['numbers out of range', 'application/json', '{"attempt":1e999,"max_concurrent_calls":99999999999999999999999,"sip_status":-1}'],
  ['wrong types everywhere', 'application/json', '{"kind":[],"name":{},"customer_id":true,"call_sid":5,"type":null,"target":1.5}'],
  ['random bytes', 'application/octet-stream', randomBytes(2048)],
];

// ---- tests ----------------------------------------------------------------------------------

test('bodies: every POST route, unsigned and forged, then validly signed', async (t) => {
  const cases = [];
  for (const r of POST_ROUTES) {
    for (const [name, ct, body] of BODIES) {
      const h = ct ? [['Content-Type', ct]] : [];
      const method = r.method ?? 'POST';
      // as is: Twilio's routes parse before they check the signature (400 or 403), jambonz's
      // check first (403), the post-call webhook 401, the API 401 without a token; and
      // POST /api/twilio/test reads JSON whatever the content type (curl -d, as README.md shows)
      const status = { twilio: [400, 403], jambonz: 403, elevenlabs: 401 }[r.sign] ?? (r.auth ? 401 : name === 'JSON as a form' ? 200 : 400);
      cases.push({ ...r, method, name: `${r.path} ${name}, unsigned`, headers: h, body, status });
      // with what the route needs to look further: a valid signature (over these very bytes) or token
      if (!r.sign && !r.auth) continue;
      const signed = signedHeaders(r, body).filter(([k]) => k !== 'Content-Type');
      cases.push({ ...r, method, name: `${r.path} ${name}, signed`, headers: [...h, ...signed], body });
    }
    if (r.sign) {
      const body = r.sign === 'twilio' ? 'CallSid=CA123&From=%2B14155550111' : '{"call_sid":"abc","from":5}';
      const forged = {
        twilio: [null, '', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'x'.repeat(65000), twilioSig(r.path, body + '&x=1'), createHmac('sha1', 'wrong').update('x').digest('base64')],
        jambonz: [null, '', 'v1=abc', 't=1,v1=' + 'a'.repeat(64), jambonzSig(body, now() - 400), jambonzSig(body, now() + 400), jambonzSig(body, now(), 'wrong-secret'),
          `t=${now()},v1=${'A'.repeat(64)}`, `t=${now()},t=${now()},v1=${'a'.repeat(64)}`, 'x'.repeat(5000), jambonzSig(body + ' ')],
        elevenlabs: [null, '', 't=abc,v0=00', `t=${now()}`, elevenSig(body, now() - 3600), elevenSig(body, now() + 600), elevenSig(body, now(), 'wrong'), 'x'.repeat(5000)],
      }[r.sign];
      const header = { twilio: 'X-Twilio-Signature', jambonz: 'Jambonz-Signature', elevenlabs: 'ElevenLabs-Signature' }[r.sign];
      for (const [i, sig] of forged.entries())
        cases.push({ ...r, method: 'POST', name: `${r.path} forged signature #${i}`, body, status: r.sign === 'elevenlabs' ? 401 : 403,
          headers: [['Content-Type', r.sign === 'twilio' ? 'application/x-www-form-urlencoded' : 'application/json'], ...(sig === null ? [] : [[header, sig]])] });
    }
  }
  await batch(t, A, cases);
});

test('each route\'s own validation: 400 naming the field, nothing written', async (t) => {
  const cases = [];
  const add = (r, body, field, extra = {}) => {
    const raw = typeof body === 'string' ? body : JSON.stringify(body);
    cases.push({ method: r.method ?? 'POST', ...r, name: `${r.path} ${raw.slice(0, 80)}`, headers: signedHeaders(r, raw), body: raw, status: 400, field, ...extra });
  };
  const initiate = POST_ROUTES.find((r) => r.path === '/api/calls/initiate');
  const ok = { customer_id: 'c-1', phone: '+14155550100', agent_type: 'sales' };
  for (const [patch, field] of [
    [{ customer_id: undefined }, 'customer_id'], [{ customer_id: null }, 'customer_id'], [{ customer_id: [] }, 'customer_id'],
    [{ customer_id: -1 }, 'customer_id'], [{ customer_id: 1.5 }, 'customer_id'], [{ customer_id: '' }, 'customer_id'],
    [{ customer_id: 'x'.repeat(64) }, 'customer_id'], [{ phone: undefined }, 'phone'], [{ phone: 14155550100 }, 'phone'],
    [{ phone: '' }, 'phone'], [{ phone: 'call me maybe' }, 'phone'], [{ phone: '+' }, 'phone'], [{ phone: '1'.repeat(40) }, 'phone'],
    [{ phone: '+1415555\u00e90100' }, 'phone'], [{ phone: '+1 415 555 0100; DROP TABLE calls' }, 'phone'],
    [{ agent_type: undefined }, 'agent_type'], [{ agent_type: '' }, 'agent_type'], [{ agent_type: 'Sales' }, 'agent_type'],
    [{ agent_type: 'a'.repeat(33) }, 'agent_type'], [{ agent_type: 'a b' }, 'agent_type'], [{ agent_type: '\u00e9' }, 'agent_type'],
    [{ agent_type: 7 }, 'agent_type'], [{ extra: 1 }, 'extra'],
  ]) add(initiate, { ...ok, ...patch }, field);
  // an unknown name long enough to be cut where a UTF-8 character is split: still named
  const longKey = 'a'.repeat(62) + '\u00e9\u00e9';
  add(initiate, { ...ok, [longKey]: 1 }, longKey, { fieldPrefix: true });
  // a valid body, with an Idempotency-Key that is not one
  for (const key of ['x'.repeat(129), 'two words', u8('caf', [0xc3, 0xa9]), 'tab\there'])
    cases.push({ ...initiate, method: 'POST', name: `initiate Idempotency-Key ${String(key).slice(0, 20)}`, body: JSON.stringify(ok), headers: [...signedHeaders(initiate), ['Idempotency-Key', key]], status: 400, field: 'Idempotency-Key' });

  const tenants = [POST_ROUTES.find((r) => r.path === '/api/tenants'), POST_ROUTES.find((r) => r.path === '/api/tenants/1')];
  for (const r of tenants) {
    for (const [body, field] of [
      [{}, 'name'], [{ name: '' }, 'name'], [{ name: 5 }, 'name'], [{ name: 'x'.repeat(501) }, 'name'],
      [{ name: 'x', ai_provider: 'gpt' }, 'ai_provider'], [{ name: 'x', inbound_mode: 'maybe' }, 'inbound_mode'],
      [{ name: 'x', caller_id_policy: 'anyone' }, 'caller_id_policy'], [{ name: 'x', amd_action: 'explode' }, 'amd_action'],
      [{ name: 'x', amd_action: 'message' }, 'amd_message'], [{ name: 'x', max_concurrent_calls: -1 }, 'max_concurrent_calls'],
      [{ name: 'x', max_concurrent_calls: 1.5 }, 'max_concurrent_calls'], [{ name: 'x', max_concurrent_calls: '5' }, 'max_concurrent_calls'],
      [{ name: 'x', max_concurrent_calls: 100001 }, 'max_concurrent_calls'], [{ name: 'x', platform: 'skype' }, 'platform'],
      [{ name: 'x', primary_target: 'sip:' }, 'primary_target'], [{ name: 'x', secondary_target: 'PJSIP/a b' }, 'secondary_target'],
      [{ name: 'x', voicemail_target: 'call me' }, 'voicemail_target'], [{ name: 'x', primary_target: 'sip:a@b.c\r\nX: y' }, 'primary_target'],
      [{ name: 'x', numbers: 'x' }, 'numbers'], [{ name: 'x', numbers: [1] }, 'numbers'], [{ name: 'x', numbers: ['abc'] }, 'numbers'],
      [{ name: 'x', numbers: Array.from({ length: 65 }, (_, i) => `+1415555${String(i).padStart(4, '0')}`) }, 'numbers'],
      [{ name: 'x', numbers: ['+14155550999', '+14155550999'] }, 'numbers'], [{ name: 'x', agent_instructions: 'x' }, 'agent_instructions'],
      [{ name: 'x', agent_instructions: { sales: 5 } }, 'agent_instructions'], [{ name: 'x', agent_instructions: { ['k'.repeat(33)]: 'x' } }, 'agent_instructions'],
      [{ name: 'x', agent_instructions: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`a${i}`, 'x'])) }, 'agent_instructions'],
      [{ name: 'x', ai_instructions: 'x'.repeat(8001) }, 'ai_instructions'], [{ name: 'x', greeting: 'x'.repeat(501) }, 'greeting'],
      [{ name: 'x', colour: 'blue' }, 'colour'],
    ]) add(r, body, field);
    add(r, { name: 'x', [longKey]: 1 }, longKey, { fieldPrefix: true });
  }

  const preview = POST_ROUTES.find((r) => r.path === '/api/twilio/test');
  for (const [body, field] of [
    [{}, 'kind'], [{ kind: 5 }, 'kind'], [{ kind: '' }, 'kind'], [{ kind: 'teleport' }, 'kind'], [{ kind: 'x'.repeat(513) }, 'kind'],
    [{ kind: 'transfer' }, 'target'], [{ kind: 'transfer', target: 'sip:' }, 'target'], [{ kind: 'transfer', target: 'PJSIP/2000' }, 'target'],
    [{ kind: 'inbound', caller: 'abc' }, 'caller'], [{ kind: 'inbound', caller_id_policy: 'x' }, 'caller_id_policy'],
    [{ kind: 'fallback', attempt: -1 }, 'attempt'], [{ kind: 'fallback', attempt: 9 }, 'attempt'], [{ kind: 'fallback', attempt: '1' }, 'attempt'],
    [{ kind: 'fallback', attempt: 1.5 }, 'attempt'], [{ kind: 'inbound', to: 5 }, 'to'], [{ kind: 'reject', x: 1 }, 'x'],
  ]) add(preview, body, field);
  add(preview, { kind: 'reject', [longKey]: 1 }, longKey, { fieldPrefix: true });

  const transfer = POST_ROUTES.find((r) => r.path.endsWith('/transfer'));
  for (const body of [{}, { target: 5 }, { target: null }, { target: [] }, 'not json']) add(transfer, body, 'target');
  // Twilio: a signed webhook whose parameters are not UTF-8 (Twilio sends UTF-8 only)
  const sid = 'CallSid=CA' + 'b'.repeat(32);
  for (const [path, body, flow] of [['/twilio/voice', `${sid}&From=%c3%28&To=%2B14155550100`, true], ['/twilio/voice', `${sid}&CallerName=%ff%fe`, true],
    ['/twilio/status', `${sid}&CallStatus=%ed%a0%80`, false], [`/twilio/connect_action?session=%ff`, sid, true]])
    cases.push({ group: 'twilio', flow, method: 'POST', path, name: `${path} ${body}`, body, status: 400,
      headers: [['Content-Type', 'application/x-www-form-urlencoded'], ['X-Twilio-Signature', twilioSig(path, body)]] });
  cases.push({ ...transfer, method: 'POST', name: 'transfer of an ended call', headers: signedHeaders(transfer), body: '{"target":"primary"}', status: 409, code: 'not_in_progress' });

  const postCall = POST_ROUTES.find((r) => r.path === '/api/voice/post_call');
  const pc = (data, extra = {}) => ({ type: 'post_call_transcription', event_timestamp: now(), data, ...extra });
  for (const [body, field] of [
    ['x', 'body'], ['[]', 'body'], [{}, 'type'], [{ type: 5 }, 'type'], [pc({ conversation_id: 'c' }, { event_timestamp: 'x' }), 'event_timestamp'],
    [{ type: 'post_call_transcription', data: 5 }, 'data'], [pc({}), 'data.conversation_id'], [pc({ conversation_id: '' }), 'data.conversation_id'],
    [pc({ conversation_id: 'c'.repeat(129) }), 'data.conversation_id'], [pc({ conversation_id: 'a b' }), 'data.conversation_id'],
    [pc({ conversation_id: 'caf\u00e9' }), 'data.conversation_id'], [pc({ conversation_id: 'c1' }), 'data.transcript'],
    [pc({ conversation_id: 'c1', transcript: 5 }), 'data.transcript'], [pc({ conversation_id: 'c1', transcript: [5] }), 'data.transcript[0]'],
    [pc({ conversation_id: 'c1', transcript: [{ role: 5, message: 'x' }] }), 'data.transcript[0].role'],
    [pc({ conversation_id: 'c1', transcript: [{ role: 'user', message: 5 }] }), 'data.transcript[0].message'],
  ]) add(postCall, body, field);

  // jambonz: hook bodies its parser refuses (each with the call_sid a valid call hook would need)
  for (const r of POST_ROUTES.filter((x) => x.sign === 'jambonz')) {
    for (const body of [
      {}, { call_sid: 5 }, { call_sid: 'x y' }, { call_sid: 'a'.repeat(64) }, { call_sid: 'abc', from: 5 }, { call_sid: 'abc', from: '\u0001' },
      { call_sid: 'abc', to: 'x'.repeat(256) }, { call_sid: 'abc', sip_status: -1 }, { call_sid: 'abc', sip_status: 1.5 },
      { call_sid: 'abc', duration: '12345678901' }, { call_sid: 'abc', direction: true }, { call_sid: 'abc', caller_name: 'a\u007fb' },
    ]) {
      const raw = JSON.stringify(body);
      cases.push({ ...r, method: 'POST', name: `${r.path} ${raw}`, headers: signedHeaders(r, raw), body: raw, status: 400 });
    }
  }
  const status = POST_ROUTES.find((r) => r.path === '/jambonz/status');
  for (const st of ['exploded', '', 'COMPLETED', 'x'.repeat(31)]) {
    const raw = JSON.stringify({ call_sid: 'abc', call_status: st });
    cases.push({ ...status, method: 'POST', name: `jambonz status ${st}`, headers: signedHeaders(status, raw), body: raw, status: 400 });
  }
  await batch(t, A, cases);
});

test('query strings of the platforms\' hooks: bad sessions, steps and attempts', async (t) => {
  const cases = [];
  const tw = (path, body, status, flow = true) => cases.push({ group: 'twilio', flow, method: 'POST', name: path.slice(0, 100), path, body, status,
    headers: [['Content-Type', 'application/x-www-form-urlencoded'], ['X-Twilio-Signature', twilioSig(path, body)]] });
  const anySid = 'CallSid=CA123';
  for (const p of ['/twilio/connect_action', '/twilio/connect_action?session=', `/twilio/connect_action?session=${'f'.repeat(5000)}`,
    '/twilio/connect_action?session=..%2f..%2fetc', `/twilio/transfer_callback?session=${UNKNOWN}&attempt=0&voicemail=1`])
    tw(p, anySid, [200, 403]); // (a URL over 4 KB is not one Twilio signed: 403)
  for (const p of ['/twilio/connect_action?session=%ff', '/twilio/connect_action?session=%zz', '/twilio/transfer_callback?session=x',
    '/twilio/transfer_callback?session=x&attempt=-1', '/twilio/transfer_callback?session=x&attempt=99', '/twilio/transfer_callback?session=x&attempt=1e2',
    '/twilio/transfer_callback?session=x&attempt=', '/twilio/transfer_callback?attempt=0', '/twilio/voice?%zz', '/twilio/voice?bodySHA256=%zz',
    '/twilio/voice?a=%00'])
    tw(p, anySid, 400);
  tw('/twilio/recording?session=%ff', 'RecordingSid=RE' + '1'.repeat(32), 400, false);
  tw('/twilio/status?%zz', anySid, 400, false);
  // a JSON-bodied webhook (bodySHA256) with a signature that does not match
  cases.push({ group: 'twilio', flow: true, method: 'POST', name: 'bodySHA256 forged', path: `/twilio/voice?bodySHA256=${createHash('sha256').update('{}').digest('hex')}`,
    headers: [['Content-Type', 'application/json'], ['X-Twilio-Signature', 'AAAA']], body: '{}', status: 403 });
  // {session_id} captures nobody has, down to bytes no session id holds
  const valid = 'CallSid=CA' + 'c'.repeat(32) + '&CallStatus=completed&AnsweredBy=machine_end_beep&DialCallStatus=completed';
  for (const sid of ['%ff', '%00', 'f'.repeat(200), '%c3%28', 'a%20b', '..%2e'])
    for (const [route, flow] of [['connect', true], ['status', false], ['dial_status', true], ['amd', true]])
      tw(`/twilio/${route}/${sid}`, valid, [200, 400, 404], flow);

  const jb = (path, body, status) => cases.push({ group: 'jambonz', method: 'POST', name: path.slice(0, 100), path, body, status,
    headers: [['Content-Type', 'application/json'], ['Jambonz-Signature', jambonzSig(body)]] });
  const hook = JSON.stringify({ call_sid: 'abc', call_status: 'completed' });
  for (const p of ['/jambonz/action', '/jambonz/action?session=', '/jambonz/action?step=listen', `/jambonz/action?session=${UNKNOWN}&step=dial`,
    `/jambonz/action?session=${UNKNOWN}&step=dial&attempt=99`, `/jambonz/action?session=${UNKNOWN}&step=dial&attempt=-1`,
    '/jambonz/action?session=%ff&step=listen', '/jambonz/action?%zz', '/jambonz/call?session=%ff', '/jambonz/status?session=%ff&x=%zz'])
    jb(p, hook, [400, 200]);
  for (const p of [`/jambonz/action?session=${UNKNOWN}&step=teleport`, `/jambonz/action?session=${'f'.repeat(3000)}&step=listen`, `/jambonz/call?session=${UNKNOWN}`])
    jb(p, hook, [200, 400]);
  await batch(t, A, cases);
});

test('bearer tokens: garbled, expired, wrong algorithm or key, missing claims: 401 on every API route', async (t) => {
  const hs512 = (key) => (h) => createHmac('sha512', key).update(h).digest('base64url');
  const TOKENS = [
    ['no header', null], ['empty', ''], ['Bearer alone', 'Bearer'], ['Bearer and a space', 'Bearer '], ['Basic', 'Basic YWRtaW46YWRtaW4='],
    ['not a token', 'Bearer not-a-token'], ['two parts', 'Bearer a.b'], ['four parts', 'Bearer a.b.c.d'], ['empty parts', 'Bearer ..'],
    ['base64 garbage', 'Bearer ' + randomBytes(90).toString('base64')], ['bytes JSON cannot hold', u8('Bearer ', [0xff, 0xfe, 0x2e, 0x80, 0x2e, 0xc0])],
    ['header not JSON', 'Bearer ' + rawToken('{"alg":', claims())], ['header not an object', 'Bearer ' + rawToken('[]', claims())],
    ['payload not JSON', 'Bearer ' + rawToken({ alg: 'HS256', typ: 'JWT' }, '{"sub":')], ['payload an array', 'Bearer ' + rawToken({ alg: 'HS256' }, '[1]')],
    ['expired', 'Bearer ' + token({ exp: now() - 3600 })], ['not yet valid', 'Bearer ' + token({ nbf: now() + 3600 })],
    ['issued in the future', 'Bearer ' + token({ iat: now() + 3600 })], ['exp as a string', 'Bearer ' + token({ exp: String(now() + 3600) })],
    ['wrong secret', 'Bearer ' + token({}, { secret: 'another-secret-0123456789abcdef' })],
    ['alg none, unsigned', 'Bearer ' + token({}, { header: { alg: 'none', typ: 'JWT' }, sign: false })],
    ['alg none, signed', 'Bearer ' + token({}, { header: { alg: 'none', typ: 'JWT' } })],
    ['alg NONE', 'Bearer ' + rawToken({ alg: 'NONE' }, claims(), null)],
    ['HS512 with a wrong key', 'Bearer ' + rawToken({ alg: 'HS512', typ: 'JWT' }, claims(), hs512('wrong-key'))],
    ['HS512 with the right key', 'Bearer ' + rawToken({ alg: 'HS512', typ: 'JWT' }, claims(), hs512(JWT_SECRET))],
    ['HS384 header', 'Bearer ' + token({}, { header: { alg: 'HS384', typ: 'JWT' } })],
    ['RS256 header', 'Bearer ' + token({}, { header: { alg: 'RS256', typ: 'JWT' } })],
    ['no alg', 'Bearer ' + token({}, { header: { typ: 'JWT' } })],
    ['signature of another token', 'Bearer ' + token({ role: 'agent' }).split('.').slice(0, 2).join('.') + '.' + token().split('.')[2]],
    ['signature cut short', 'Bearer ' + token().slice(0, -5)], ['signature with padding', 'Bearer ' + token() + '=='],
    ['no sub', 'Bearer ' + token({ sub: undefined })], ['empty sub', 'Bearer ' + token({ sub: '' })], ['sub of 200 bytes', 'Bearer ' + token({ sub: 'x'.repeat(200) })],
    ['no tenant_id', 'Bearer ' + token({ tenant_id: undefined })], ['tenant_id a word', 'Bearer ' + token({ tenant_id: '1; DROP TABLE calls' })],
    ['tenant_id negative', 'Bearer ' + token({ tenant_id: -1 })], ['tenant_id 1.5', 'Bearer ' + token({ tenant_id: 1.5 })],
    ['tenant_id huge', 'Bearer ' + token({ tenant_id: 1e30 })], ['no role', 'Bearer ' + token({ role: undefined })],
    ['role root', 'Bearer ' + token({ role: 'root' })], ['no exp', 'Bearer ' + token({ exp: undefined })],
    ['over 4096 bytes', 'Bearer ' + token({ pad: 'x'.repeat(5000) })], ['NUL in the signature', 'Bearer ' + token() + '%00'],
  ];
  const routes = ALL_ROUTES.filter((r) => r.path.startsWith('/api/') && !['/api/twilio/test', '/api/voice/post_call'].includes(r.path));
  const cases = [];
  for (const r of routes)
    for (const [name, value] of TOKENS) {
      const body = r.method === 'GET' ? undefined : JSON.stringify({ name: 'x', customer_id: 'c', phone: '+14155550100', agent_type: 'sales', target: 'primary' });
      const also = (res) => (/^Bearer realm="switchboard"/.test(res.headers['www-authenticate'] ?? '') ? [] : ['no WWW-Authenticate: Bearer']);
      cases.push({ ...r, name: `${r.method} ${r.path} ${name}`, headers: value === null ? [] : [['Authorization', value]], body, status: 401, code: 'unauthorized', also });
    }
  await batch(t, A, cases);
});

test('valid tokens of the wrong tenant or role: 403 or 404, another tenant\'s data never shown or changed', async (t) => {
  const t2 = ['tenant 2', bearer(token({ tenant_id: 2 }))];
  const agent = ['an agent', bearer(token({ role: 'agent' }))];
  const ghost = ['tenant 999 (none)', bearer(token({ tenant_id: 999 }))];
  const admin = ['tenant 1\'s admin', ADMIN];
  const tenantBody = JSON.stringify({ name: 'taken over', greeting: 'hi' });
  const call = JSON.stringify({ customer_id: 'c-9', phone: '+14155550100', agent_type: 'sales' });
  const cases = [
    ['GET', `/api/calls/${SEEDED}`, t2, undefined, 404], ['GET', `/api/calls/${SEEDED}/recording`, t2, undefined, 404],
    ['POST', `/api/calls/${SEEDED}/hangup`, t2, '', 404], ['POST', `/api/calls/${SEEDED}/transfer`, t2, '{"target":"primary"}', 404],
    ['GET', '/api/tenants/1', t2, undefined, 404], ['PUT', '/api/tenants/1', t2, tenantBody, 404], ['POST', '/api/tenants', t2, tenantBody, 403],
    ['GET', '/api/tenants', agent, undefined, 403], ['GET', '/api/tenants/1', agent, undefined, 403], ['PUT', '/api/tenants/1', agent, tenantBody, 403],
    ['POST', '/api/tenants', agent, tenantBody, 403], ['PUT', '/api/tenants/999', admin, tenantBody, 404],
    ['GET', `/api/calls/${SEEDED}`, ghost, undefined, 404], ['PUT', '/api/tenants/1', ghost, tenantBody, 404],
    // a token for a tenant that does not exist places no call for it
    ['POST', '/api/calls/initiate', ghost, call, [401, 403, 404]],
  ].map(([method, path, [who, auth], body, status]) => ({ method, path, name: `${method} ${path} as ${who}`, group: 'json', headers: [auth, ['Content-Type', 'application/json']], body, status }));
  // tenant 2 lists its own calls: tenant 1's seeded call is not among them
  cases.push({ method: 'GET', path: '/api/calls', name: 'list as tenant 2', group: 'json', headers: [t2[1]], status: 200, also: (res) => (res.body.includes(SEEDED) ? ['tenant 1\'s call listed'] : []) });
  await batch(t, A, cases);
});

test('query values of GET /api/calls and /api/stats: 400 naming the field', async (t) => {
  const BAD = {
    limit: ['0', '-1', '201', '1e3', 'abc', '', '99999999999999999999', '0x10', '1.5', '%ff', '5%20'],
    cursor: ['0', '-1', 'abc', '', '1e5', '99999999999999999999999', '1x', '%c3%28'],
    direction: ['sideways', '', 'INBOUND', 'inbound%20', '%ff'],
    platform: ['skype', '', 'TWILIO', '%ff'],
    since: ['2026-13-45', '2026-02-30', '2026-02-29', '2026-01-01T25:00', '2026-01-01T10:61', '2026-01-01T10:00:61', '2026-1-1',
      '20260101', '', 'yesterday', '2026-01-01T10:00:00.1234Z', '9999-99-99', '%ff', '2026-01-01T10:00+01:00', '2026-01-01Z', 'x'.repeat(5000)],
    until: ['2026-13-45', '2026-00-10', '2026-01-00', 'T10:00', '2026-01-01T', '2026-01-01T1:00'],
    status: ['%ff', '%c3%28', '%ed%a0%80', 'exploded', '', 'COMPLETED', 'completed%20'],
    from: ['%ff', '%c0%af'],
    to: ['%fe%ff'],
  };
  const cases = [];
  for (const [field, values] of Object.entries(BAD))
    for (const v of values) {
      const path = `/api/calls?${field}=${v.length > 100 ? v : v.replace(/ /g, '%20')}`;
      cases.push({ method: 'GET', path, name: `${field}=${v.slice(0, 40)}`, group: 'json', headers: [ADMIN], status: 400, field, code: 'invalid_query' });
    }
  const day = '2026-11-22T00:00:00Z';
  for (const [since, until, field] of [
    [undefined, day, 'since'], [day, undefined, 'until'], ['2026-13-45T00:00Z', day, 'since'], ['2026-11-22', day, 'since'],
    ['2026-02-30T00:00Z', day, 'since'], ['2026-11-22T24:00Z', day, 'since'], ['2026-11-22T00:00+24:00', day, 'since'],
    ['2026-11-22T00:00+01:60', day, 'since'], ['2026-11-22T00:00:00', day, 'since'], ['%ff', day, 'since'], ['x'.repeat(3000), day, 'since'],
    [day, '2026-11-22T00:00:00.5Zjunk', 'until'], [day, day, 'until'], [day, '2026-11-21T00:00:00Z', 'until'], [day, '2026-11-30T00:00:01Z', 'until'],
    ['0000-01-01T00:00Z', '9999-12-31T23:59Z', 'until'],
  ]) {
    const q = [since !== undefined && `since=${since}`, until !== undefined && `until=${until}`].filter(Boolean).join('&');
    cases.push({ method: 'GET', path: `/api/stats?${q}`, name: `stats ${q.slice(0, 80)}`, group: 'json', headers: [ADMIN], status: 400, field, code: 'invalid_query' });
  }
  // query strings that cannot be decoded at all (server/form.c refuses the whole string): 400,
  // with no field to name
  for (const q of ['%zz', '%', 'limit=%4', 'limit=5%00', 'direction=inbound%00', '=5', Array.from({ length: 300 }, (_, i) => `a${i}=1`).join('&'), 'x'.repeat(300) + '=1', `status=${'x'.repeat(9000)}`])
    for (const p of ['/api/calls', '/api/stats'])
      cases.push({ method: 'GET', path: `${p}?${q}`, name: `${p}?${q.slice(0, 30)}`, group: 'json', headers: [ADMIN], status: 400, code: 'invalid_query' });
  // values that are fine (to check the table above is about the values)
  for (const q of ['limit=1', 'status=no-answer', 'status=simulation', 'since=2026-11-22&until=2026-11-23T10:00:00.000Z', 'from=%2B14155550111', 'unknown=1&limit=200&limit=x'])
    cases.push({ method: 'GET', path: `/api/calls?${q}`, name: `fine: ${q}`, group: 'json', headers: [ADMIN], status: 200 });
  await batch(t, A, cases);
});

test('odd paths and wrong methods on every route', async (t) => {
  const cases = [];
  const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'FOO-BAR', 'get'];
  for (const r of ALL_ROUTES)
    for (const m of METHODS) {
      if (ALL_ROUTES.some((x) => x.path === r.path && x.method === m)) continue;
      const also = (res) => (res.status === 405 && !new RegExp(`\\b${r.method}\\b`).test(res.headers.allow ?? '') ? [`Allow: ${res.headers.allow}`] : []);
      cases.push({ ...r, method: m, name: `${m} ${r.path}`, headers: [ADMIN], body: m === 'GET' || m === 'HEAD' ? undefined : '{}', status: [404, 405], also });
    }
  // paths that climb out, hide bytes, or are odd
  const PATHS = [
    '/../../etc/passwd', '/assets/x/../../../etc/passwd', '/assets/x/..%2f..%2f..%2fetc%2fpasswd', '/assets/%2e%2e/%2e%2e/etc/passwd',
    '/assets/v/%2e%2e%2fapp.js', '/assets/v/index.html', '/assets//app.js', '/assets/v/app.js/x', `/assets/v/${'a'.repeat(5000)}`,
    '/assets/v/app.js%00.png', '//health', '/health/', '/HEALTH', '/health%00', '/health%2f', '/%', '/%zz', '/%ff', u8('/', [0xff, 0xfe]),
    '/api/calls/%00', '/api/calls/%ff', '/api/calls/%c3%28/hangup', `/api/calls/${'a'.repeat(8000)}`, '/api/calls/..', '/api/calls/x/y/z',
    '/api/tenants/-1', '/api/tenants/0', '/api/tenants/1.0', '/api/tenants/0x1', '/api/tenants/%201', '/api/tenants/99999999999999999999',
    '/api/tenants/1/extra', '/api/tenants/%ff', '/twilio/connect/%2e%2e', '/twilio/voice/', '/twilio', '/jambonz', '/jambonz/listen/x',
    '/twilio/media/..%2f..%2fapi%2ftenants', `/${'x/'.repeat(2000)}`, '/api/calls%3fstatus=x', '/api/calls#frag', '/api/%2e%2e/health',
  ];
  for (const p of PATHS)
    for (const m of ['GET', 'POST'])
      cases.push({ method: m, path: p, name: `${m} ${String(p).slice(0, 60)}`, group: 'json', headers: [ADMIN], body: m === 'POST' ? '{}' : undefined });
  // forms h2o takes without complaint: an absolute URI, no leading slash, OPTIONS *
  for (const [m, p] of [['GET', 'http://evil.example.com/health'], ['GET', 'health'], ['OPTIONS', '*'], ['GET', '/health?%zz'], ['CONNECT', '/health']])
    cases.push({ method: m, path: p, name: `${m} ${p}`, group: 'json' });
  await batch(t, A, cases);
});

test('headers: huge, many, and bytes they may not hold', async (t) => {
  const targets = [
    { method: 'GET', path: '/health', group: 'json' },
    { method: 'GET', path: '/api/calls', group: 'json', headers: [ADMIN] },
    { method: 'POST', path: '/twilio/voice', group: 'twilio', flow: true, body: 'From=x' },
    { method: 'POST', path: '/jambonz/call', group: 'jambonz', body: '{}' },
    { method: 'POST', path: '/api/twilio/test', group: 'json', body: '{"kind":"nope"}' },
    { method: 'GET', path: '/', group: 'json' },
  ];
  const many = (n) => Array.from({ length: n }, (_, i) => [`X-Junk-${i}`, 'v'.repeat(20)]);
  const HEADERS = [
    ['99 more headers', many(95)], ['a 64 KB value', [['X-Big', 'v'.repeat(65536)]]], ['a 8 KB name', [['X-' + 'n'.repeat(8192), '1']]],
    ['300 KB of headers', Array.from({ length: 60 }, (_, i) => [`X-Fill-${i}`, 'f'.repeat(5000)])], ['bytes over 0x7f', [['X-Latin', u8([0xff, 0xfe, 0xc3, 0x28])]]],
    ['a 64 KB Content-Type', [['Content-Type', 'application/json; x=' + 'y'.repeat(65536)]]], ['Host garbage', [['Host', 'evil.example.com/../<x>"']]],
    ['two Hosts', [['Host', 'a.example.com'], ['Host', 'b.example.com']]], ['X-Forwarded-Proto garbage', [['X-Forwarded-Proto', 'gopher' + 'x'.repeat(1000)]]],
    ['Authorization huge', [['Authorization', 'Bearer ' + 'x'.repeat(60000)]]], ['X-Twilio-Signature huge', [['X-Twilio-Signature', 's'.repeat(60000)]]],
    ['Jambonz-Signature huge', [['Jambonz-Signature', 't=1,' + 'v1=x,'.repeat(10000)]]], ['Accept-Encoding odd', [['Accept-Encoding', 'gzip;q=x, *;q=-1, br']]],
    ['Connection odd', [['Connection', 'keep-alive, Upgrade, x' + ',y'.repeat(1000)]]], ['Upgrade without a handshake', [['Upgrade', 'websocket'], ['Connection', 'Upgrade']]],
    ['If-None-Match huge', [['If-None-Match', '"' + 'e'.repeat(20000) + '"']]], ['Range', [['Range', 'bytes=99999999999-']]],
  ];
  const cases = [];
  for (const tg of targets) {
    for (const [name, hs] of HEADERS) cases.push({ ...tg, fresh: true, name: `${tg.method} ${tg.path} ${name}`, headers: [...(tg.headers || []), ...hs] });
    // h2o's bare 400 allowed (no request exists): more than 100 header lines, a head past its
    // limit, a NUL or a bare CR in a value, a line without a colon, a space in a name, a folded line
    for (const [name, hs] of [['101 more headers', many(101)], ['500 KB of headers', Array.from({ length: 100 }, (_, i) => [`X-F${i}`, 'f'.repeat(5000)])],
      ['NUL in a value', [['X-Nul', u8('a', [0], 'b')]]], ['CR in a value', [['X-Cr', 'a\rb']]], ['no colon', [['X-No-Colon\r\nbroken', 'x']]],
      ['space in a name', [['X Space', 'x']]], ['folded line', [['X-Fold', 'a\r\n b']]]])
      cases.push({ ...tg, fresh: true, name: `${tg.method} ${tg.path} ${name}`, headers: [...(tg.headers || []), ...hs], bare: true });
  }
  await batch(t, A, cases);
});

test('bodies over MAX_REQUEST_BODY on every POST route: 413 in the route\'s shape', async (t) => {
  const big = 'x'.repeat(SMALL_BODY + 1);
  const cases = [];
  for (const r of POST_ROUTES) {
    // h2o's own errors get the apology on every Twilio route
    const base = { ...r, method: r.method ?? 'POST', fresh: true, status: 413, flow: r.group === 'twilio' };
    cases.push({ ...base, name: `${r.path} by Content-Length`, headers: signedHeaders(r, big), body: big });
    const chunked = `800\r\n${'y'.repeat(0x800)}\r\n800\r\n${'y'.repeat(0x800)}\r\n10\r\n${'y'.repeat(16)}\r\n0\r\n\r\n`;
    cases.push({ ...base, name: `${r.path} chunked`, headers: [['Transfer-Encoding', 'chunked'], ...signedHeaders(r, '')], body: chunked });
  }
  await batch(t, B, cases);
});

test('framing on a raw socket: ambiguous lengths, huge chunks, odd Expect, garbled request lines', async (t) => {
  const smuggled = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
  const post = (path, hs, body) => build({ method: 'POST', path, headers: hs, body, length: false });
  const closes = (res) => (res.closed ? [] : ['connection left open']);
  const nothingBehind = (res) => (res.rest.length ? [`more was answered: ${res.rest.toString().slice(0, 80)}`] : []);
  const cases = [];
  for (const [path, group, flow] of [['/api/calls/initiate', 'json'], ['/twilio/voice', 'twilio', true], ['/jambonz/call', 'jambonz'], ['/api/tenants', 'json'], ['/health', 'json']]) {
    const c = (name, data, extra) => cases.push({ group, flow, path, method: 'POST', name: `${path} ${name}`, data, ...extra });
    const framing = { status: 400, also: (r) => [...closes(r), ...nothingBehind(r)] };
    c('two Content-Length', post(path, [['Content-Length', 5], ['Content-Length', 5 + smuggled.length]], 'hello' + smuggled), framing);
    c('two equal Content-Length', post(path, [['Content-Length', 5], ['content-length', 5]], 'hello' + smuggled), framing);
    c('Content-Length then Transfer-Encoding', post(path, [['Content-Length', 5], ['Transfer-Encoding', 'chunked']], '5\r\nhello\r\n0\r\n\r\n' + smuggled), framing);
    c('Transfer-Encoding then Content-Length', post(path, [['Transfer-Encoding', 'chunked'], ['Content-Length', 5]], '5\r\nhello\r\n0\r\n\r\n' + smuggled), framing);
    c('Transfer-Encoding twice', post(path, [['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'chunked']], '5\r\nhello\r\n0\r\n\r\n' + smuggled), framing);
    c('Transfer-Encoding gzip, chunked', post(path, [['Transfer-Encoding', 'gzip, chunked']], '5\r\nhello\r\n0\r\n\r\n'), framing);
    c('Content-Length not a number', post(path, [['Content-Length', 'abc']], 'hello'), framing);
    c('Content-Length negative', post(path, [['Content-Length', '-1']], 'hello'), framing);
    c('Content-Length past 2^64', post(path, [['Content-Length', '99999999999999999999999']], 'hello'), { status: [400, 413], also: closes });
    for (const size of ['ffffffffffffffff', '7fffffffffffffff', String(SMALL_BODY + 1)])
      c(`chunk of 0x${size}`, post(path, [['Transfer-Encoding', 'chunked']], `${size}\r\n`), {
        status: [400, 413], also: (r) => [...closes(r), ...(r.closedAt < 1000 ? [] : [`closed after ${r.closedAt} ms`])] });
    c('chunk size not hex', post(path, [['Transfer-Encoding', 'chunked']], 'zz\r\nhello\r\n0\r\n\r\n'), framing);
    c('Expect 200-ok', post(path, [['Content-Length', 2], ['Expect', '200-ok']], '{}'), { status: 417, also: closes });
  }
  // bytes h2o cannot read as a request: its bare 400, and the connection closed
  for (const [name, data] of [
    ['garbled request line', 'GARBAGE\r\n\r\n'], ['binary', randomBytes(300)], ['three words and more', 'GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n'],
    ['NUL in the method', u8('G', [0], 'T /health HTTP/1.1\r\n\r\n')], ['control byte in the path', u8('GET /he', [1], 'alth HTTP/1.1\r\n\r\n')],
    ['HTTP/9.9', 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n'], ['no version', 'GET /health\r\n\r\n'], ['a 500 KB request line', `GET /${'a'.repeat(500000)} HTTP/1.1\r\n\r\n`],
    ['header without a colon', 'GET /health HTTP/1.1\r\nHost\r\n\r\n'], ['bare LF then junk', 'GET /health HTTP/1.1\nHost: x\n\x01\n\n'],
  ]) cases.push({ group: 'json', name, data, bare: true, status: 400, also: closes });
  // what h2o accepts: HTTP/1.0 without Host, LF line ends, Expect: 100-continue
  cases.push({ group: 'json', name: 'HTTP/1.0', data: 'GET /health HTTP/1.0\r\n\r\n', status: 200 });
  cases.push({ group: 'json', name: 'LF line ends', data: 'GET /health HTTP/1.1\nHost: x\nConnection: close\n\n', status: 200 });
  cases.push({ group: 'json', name: 'Expect 100-continue', data: [post('/api/calls/initiate', [['Content-Length', 2], ['Expect', '100-continue'], ['Connection', 'close']]), 50, '{}'], status: 401 });
  const failures = [];
  const before = snapshot(B);
  const errorsBefore = B.logLines('db.error').length;
  let bare = 0;
  await mapLimit(cases, 6, async (c) => {
    const res = await rawExchange(B, c.data);
    if (res.status && !res.headers['x-request-id']) bare++;
    for (const e of check({ method: 'POST', ...c }, res)) failures.push(`${c.name}: ${e}; got ${describe(res)}`);
  });
  assert.deepEqual(failures, []);
  assert.deepEqual(snapshot(B), before);
  await healthy(B, errorsBefore);
  t.diagnostic(`${cases.length} cases (${tally(cases)}), ${bare} answered by h2o alone (bare 400)`);
});

// ---- WebSockets -----------------------------------------------------------------------------

const text = (s) => frame(1, Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8'));
const closeCode = (f) => (f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005);

const twilioStart = (extra = {}) => JSON.stringify({ event: 'start', sequenceNumber: '1', streamSid: 'MZ' + 'a'.repeat(32),
  start: { accountSid: 'AC' + '0'.repeat(32), streamSid: 'MZ' + 'a'.repeat(32), callSid: 'CA' + 'd'.repeat(32), tracks: ['inbound'],
    customParameters: { session_id: UNKNOWN, tenant_id: '1' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 }, ...extra } });
const metadata = (extra = {}) => JSON.stringify({ sampleRate: 8000, mixType: 'mono', callSid: 'abc', session_id: UNKNOWN, tenant_id: '1', ...extra });
const ANY = [1000, 1002, 1003, 1007, 1008, 1009];

// What is sent after the upgrade, and what the server must do: close with one of the codes, or
// ('open') carry on and still answer a ping, or ('idle') wait for the rest of a frame the
// garbage began.
const COMMON_WS = [
  ['random bytes', randomBytes(512), [...ANY, 'idle']],
  ['random masked text', text(randomBytes(200)), [1007, 1002]],
  ['text that is not JSON', text('hello, is anyone there?'), [1007]],
  ['JSON array', text('[1,2,3]'), [1007, 1008]],
  ['JSON string', text('"start"'), [1007]],
  ['JSON null', text('null'), [1007]],
  ['truncated JSON', text('{"event":"sta'), [1007]],
  ['invalid UTF-8 text', text(u8('{"event":"', [0xff, 0xfe], '"}')), [1007]],
  ['NUL in JSON', text('{"event":"st\\u0000art"}'), [1007, 'open']],
  ['nesting 5000 deep', text('['.repeat(5000) + ']'.repeat(5000)), [1007]],
  ['unmasked frame', frame(1, '{"event":"connected"}', { mask: false }), [1002]],
  ['reserved opcode 3', frame(3, 'x'), [1002]],
  ['reserved opcode 11', frame(11, 'x'), [1002]],
  ['RSV1 set', frame(1, '{}', { rsv: 0x40 }), [1002]],
  ['ping of 126 bytes', frame(9, 'p'.repeat(126)), [1002]],
  ['fragmented ping', frame(9, 'p', { fin: false }), [1002]],
  ['continuation first', frame(0, 'x'), [1002]],
  ['a text inside a fragmented text', Buffer.concat([frame(1, '{"ev', { fin: false }), frame(1, 'x')]), [1002]],
  ['close of one byte', frame(8, 'x'), [1002]],
  ['close 1005', frame(8, Buffer.from([0x03, 0xed])), [1002]],
  ['close 999 with invalid UTF-8', frame(8, u8([0x03, 0xe7, 0xff, 0xfe])), [1002, 1007]],
  ['close 1004 (reserved)', frame(8, Buffer.from([0x03, 0xec])), [1002]],
  ['close 5000', frame(8, Buffer.from([0x13, 0x88])), [1002]],
  ['close 4000 (the application\'s own)', frame(8, Buffer.from([0x0f, 0xa0])), [4000]],
  ['close without a code', frame(8, Buffer.alloc(0)), [1000]],
  ['a header announcing 2^62 bytes', frame(1, Buffer.alloc(0), { len: 2 ** 62 }).subarray(0, 14), [1009]],
  ['a 70 KB message', text('{"event":"media","x":"' + 'x'.repeat(70000) + '"}'), [1009]],
  ['70 KB in fragments', Buffer.concat([frame(1, 'x'.repeat(40000), { fin: false }), frame(0, 'x'.repeat(40000))]), [1009]],
];
const TWILIO_WS = [
  ['binary frame', frame(2, randomBytes(160)), [1003]],
  ['no event', text('{"streamSid":"MZ1"}'), [1007]],
  ['event a number', text('{"event":42}'), [1007]],
  ['an event nobody knows', text('{"event":"explode","explode":{}}'), ['open']],
  ['a thousand unknown events', Buffer.concat(Array.from({ length: 1000 }, (_, i) => text(`{"event":"noise${i}"}`))), ['open']],
  ['connected twice', Buffer.concat([text('{"event":"connected"}'), text('{"event":"connected","protocol":5}')]), ['open']],
  ['media before start', text('{"event":"media","media":{"payload":"!!!notbase64"}}'), [...ANY, 'open']],
  ['media with base64 garbage', text('{"event":"media","streamSid":"x","media":{"payload":"' + '='.repeat(400) + '","timestamp":"-1"}}'), [...ANY, 'open']],
  ['mark before start', text('{"event":"mark","mark":{"name":"m99999999999999999999"}}'), [...ANY, 'open']],
  ['dtmf before start', text('{"event":"dtmf","dtmf":{"digit":"0"}}'), [...ANY, 'open']],
  ['stop before start', text('{"event":"stop"}'), [...ANY, 'open']],
  ['start without start', text('{"event":"start"}'), [1008, 1007]],
  ['start for an unknown session', text(twilioStart()), [1008]],
  ['start without a session', text(twilioStart({ customParameters: {} })), [1008]],
  ['start with another encoding', text(twilioStart({ mediaFormat: { encoding: 'audio/l16' } })), [1003]],
  ['start with a quote in streamSid', text(twilioStart({ streamSid: 'MZ"},"x":"' })), [1008]],
  ['start with wrong types', text('{"event":"start","start":{"customParameters":[],"callSid":5,"streamSid":{}}}'), [1008, 1007]],
];
const JAMBONZ_WS = [
  ['binary first', frame(2, Buffer.alloc(320)), [1002]],
  ['odd binary first', frame(2, Buffer.alloc(3)), [1002]],
  ['metadata without session_id', text('{"sampleRate":8000}'), [1008]],
  ['metadata with session_id a number', text(metadata({ session_id: 5 })), [1008]],
  ['metadata for another session', text(metadata({ session_id: 'e'.repeat(32) })), [1008]],
  ['metadata with a session too long', text(metadata({ session_id: 'f'.repeat(100) })), [1008]],
  ['metadata with 11025 Hz', text(metadata({ sampleRate: 11025 })), [1003]],
  ['metadata with sampleRate a string', text(metadata({ sampleRate: '8000' })), [1003]],
  ['metadata with stereo', text(metadata({ mixType: 'stereo' })), [1003]],
  ['metadata for an unknown session', text(metadata()), [1008]],
  ['voicemail for an unknown session', text(metadata({ voicemail: true })), [1008]],
  ['metadata under metadata', text(JSON.stringify({ sampleRate: 8000, metadata: { session_id: UNKNOWN } })), [1008]],
  ['a mark before the metadata', text('{"type":"mark","data":{"name":"m1","event":"playout"}}'), [1008]],
];

// Returns the failures and what happened (a close code, open or idle).
async function wsCase(s, path, headers, name, data, expect) {
  const c = await rawUpgrade(s, path, headers);
  if (c.res?.status !== 101) return { errs: [`${name}: upgrade refused: ${describe(c.res ?? { status: 0 })}`], outcome: 'refused' };
  const errs = RID.test(c.res.headers['x-request-id'] ?? '') ? [] : [`${name}: the 101 has no X-Request-Id`];
  c.sock.write(data);
  const isClosed = () => c.ended || c.frames.some((f) => f.op === 8);
  // a case that must close waits for it; one that may be ignored waits a moment, then pings
  const mustClose = expect.every((x) => typeof x === 'number');
  await until(c, isClosed, mustClose ? 3000 * SLOW : 600 * (SANITIZED ? 2 : 1));
  let outcome = 'idle';
  if (!isClosed() && expect.includes('open')) {
    const pings = c.frames.filter((f) => f.op === 10).length;
    c.sock.write(frame(9, 'still there?'));
    const pong = await until(c, () => c.frames.filter((f) => f.op === 10).length > pings || isClosed(), 2000 * SLOW);
    if (!isClosed()) {
      outcome = 'open';
      if (!pong) errs.push(`${name}: no pong after the garbage was ignored`);
    }
  }
  if (isClosed()) {
    const cf = c.frames.find((f) => f.op === 8);
    const code = cf ? closeCode(cf) : 'no close frame';
    outcome = code;
    if (!expect.includes(code)) errs.push(`${name}: closed with ${code}, expected ${expect.join('/')}`);
    // the server lets go of the connection after its close (ours answers it)
    if (!c.ended) c.sock.write(frame(8, Buffer.from([0x03, 0xe8])));
    if (!(await until(c, () => c.ended, 3000 * SLOW))) errs.push(`${name}: connection not closed after the close frame`);
  } else if (outcome === 'idle' && !expect.includes('idle')) {
    errs.push(`${name}: still open, expected close ${expect.join('/')}`);
  }
  c.sock.destroy();
  return { errs, outcome };
}

test('garbage WebSocket frames after a valid signed upgrade: a close code or ignored, the server unhurt', async (t) => {
  const twilioHeaders = [['X-Twilio-Signature', twilio.getExpectedTwilioSignature(AUTH_TOKEN, `wss://voice.example.com/twilio/media`, {})]];
  const jambonzHeaders = [['Sec-WebSocket-Protocol', 'audio.jambonz.org'], ['Authorization', listenAuth(UNKNOWN)]];
  const cases = [
    ...[...COMMON_WS, ...TWILIO_WS].map(([name, data, expect]) => ['/twilio/media', twilioHeaders, `twilio: ${name}`, data, expect]),
    // jambonz: everything before the metadata is the metadata (a non-object is 1007)
    ...[...COMMON_WS, ...JAMBONZ_WS].map(([name, data, expect]) => ['/jambonz/listen', jambonzHeaders, `jambonz: ${name}`, data, expect]),
  ];
  const before = snapshot(A);
  const errorsBefore = A.logLines('db.error').length;
  const failures = [];
  const outcomes = {};
  await mapLimit(cases, 6, async ([path, headers, name, data, expect]) => {
    const { errs, outcome } = await wsCase(A, path, headers, name, data, expect);
    failures.push(...errs);
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  });
  assert.deepEqual(failures, []);
  t.diagnostic(`${cases.length} cases (twilio media ${cases.filter((c) => c[0] === '/twilio/media').length}, jambonz listen ${cases.filter((c) => c[0] === '/jambonz/listen').length}); ` +
    `outcomes: ${Object.entries(outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  // what a closing bridge queues is written after the close: give it a moment, then nothing written
  await sleep(300 * SLOW);
  assert.deepEqual(snapshot(A), before);
  await healthy(A, errorsBefore);
});

test('refused upgrades: forged signatures, wrong credentials, not a handshake', async (t) => {
  const good = twilio.getExpectedTwilioSignature(AUTH_TOKEN, 'wss://voice.example.com/twilio/media', {});
  const cases = [];
  const ws = (name, path, headers, status, extra = {}) => cases.push({ method: 'GET', path, group: 'ws', name, fresh: true, status, headers, ...extra });
  const up = [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13']];
  for (const [name, sig] of [['no signature', null], ['forged', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='], ['of another URL', twilio.getExpectedTwilioSignature(AUTH_TOKEN, 'wss://evil.example.com/twilio/media', {})],
    ['with a parameter', twilio.getExpectedTwilioSignature(AUTH_TOKEN, 'wss://voice.example.com/twilio/media', { a: '1' })], ['huge', 'x'.repeat(60000)]])
    ws(`media ${name}`, '/twilio/media', [...up, ...(sig ? [['X-Twilio-Signature', sig]] : [])], 403);
  for (const [name, hs, method] of [['plain GET', []], ['no key', up.filter(([k]) => k !== 'Sec-WebSocket-Key')], ['version 8', [...up.slice(0, 3), ['Sec-WebSocket-Version', '8']]],
    ['no version', up.slice(0, 3)], ['a key of 10 bytes', [...up.slice(0, 2), ['Sec-WebSocket-Key', 'c2hvcnQ='], up[3]]], ['POST', up, 'POST'],
    ['Upgrade h2c', [['Upgrade', 'h2c'], ['Connection', 'Upgrade']]]]) {
    const extra = method ? { method, body: '' } : {};
    ws(`media ${name}`, '/twilio/media', [...hs, ['X-Twilio-Signature', good]], method ? 405 : 400, extra);
    ws(`listen ${name}`, '/jambonz/listen', [...hs, ['Sec-WebSocket-Protocol', 'audio.jambonz.org'], ['Authorization', listenAuth(UNKNOWN)]], method ? 405 : 400, extra);
  }
  ws('listen without a subprotocol', '/jambonz/listen', [...up, ['Authorization', listenAuth(UNKNOWN)]], 400, { field: 'Sec-WebSocket-Protocol' });
  ws('listen with another subprotocol', '/jambonz/listen', [...up, ['Sec-WebSocket-Protocol', 'chat, superchat'], ['Authorization', listenAuth(UNKNOWN)]], 400);
  const b64 = (s) => 'Basic ' + Buffer.from(s).toString('base64');
  for (const [name, auth] of [['no credentials', null], ['Bearer', 'Bearer x'], ['Basic garbage', 'Basic !!!!'], ['no colon', b64(UNKNOWN)],
    ['empty user', b64(':' + '0'.repeat(32))], ['wrong password', b64(`${UNKNOWN}:${'0'.repeat(32)}`)], ['another secret', listenAuth(UNKNOWN, 'wrong')],
    ['password upper case', b64(Buffer.from(listenAuth(UNKNOWN).slice(6), 'base64').toString().replace(/:(.*)$/, (_, pw) => ':' + pw.toUpperCase()))],
    ['user of 300 bytes', b64('u'.repeat(300) + ':x')], ['NUL in the user', b64(`a\0b:${'0'.repeat(32)}`)], ['huge', 'Basic ' + 'A'.repeat(60000)]])
    ws(`listen ${name}`, '/jambonz/listen', [...up, ['Sec-WebSocket-Protocol', 'audio.jambonz.org'], ...(auth ? [['Authorization', auth]] : [])], 401);
  await batch(t, A, cases);
});
