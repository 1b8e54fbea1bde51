// The adversarial suites' shared parts (adversarial_http.test.mjs, adversarial_ws.test.mjs): the
// servers, a raw keep-alive HTTP/1.1 client, what each route's answer must look like, signatures
// and tokens, the route tables and deterministic garbage. A batch of cases asserts: no 5xx, an
// X-Request-Id, the route's documented error shape, nothing written (every table's rows before
// and after), no database error logged, and the server alive.
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHmac } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import twilio from 'twilio';
import verbSpecs from '@jambonz/verb-specifications';
import { startServer, sqlite, sqlRows, cleanup, sleep } from './harness.mjs';
import { AUTH_TOKEN, PUBLIC_BASE_URL } from './twilio.mjs';
import { JWT_SECRET, token } from './jwt.mjs';
import { SLOW, bytes, bodyBytes, build, parseResponse } from './rawhttp.mjs';

export { SLOW };


export const JAMBONZ_SECRET = 'adversarial-jambonz-secret-0123';
export const ELEVENLABS_SECRET = 'adversarial-elevenlabs-secret-0123';
export const SMALL_BODY = 4096;
export const UNKNOWN = 'f'.repeat(32); // a session id no row has
export const SEEDED = 'a0'.repeat(16); // tenant 1's ended call
export const SEEDED_SID = 'CA' + 'e'.repeat(32);
export const now = () => Math.floor(Date.now() / 1000);


export const dbOf = (s) => s.dir + '/data/switchboard.db';
export const TABLES = ['calls', 'call_events', 'transcripts', 'bookings', 'tickets', 'customers', 'tenants', 'tenant_numbers', 'post_call_conversations'];
// Every table's row count, and what an update could change in tenants and calls: one query
// (on PostgreSQL each is a psql process).
export function snapshot(s) {
  const fp = (table, cols) => `(SELECT group_concat(x, ',') FROM (SELECT ${cols.map((c) => `coalesce(CAST(${c} AS TEXT), '-')`).join(` || ':' || `)} AS x FROM ${table} ORDER BY id) AS q) AS ${table}_fp`;
  return sqlRows(dbOf(s), `SELECT ${TABLES.map((t) => `(SELECT count(*) FROM ${t}) AS ${t}`).join(', ')}, ` +
    `${fp('tenants', ['id', 'name', 'greeting', 'primary_target', 'inbound_mode', 'max_concurrent_calls', 'updated_at'])}, ` +
    `${fp('calls', ['id', 'status', 'updated_at', 'ended_at', 'next_action', 'transfer_attempt', 'transfer_result'])}`)[0];
}

// A batch of cases: all answered as their route documents, nothing written, no database error,
// the server still healthy.
export async function batch(t, s, cases) {
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
export function tally(cases) {
  const n = {};
  for (const c of cases) n[c.group] = (n[c.group] ?? 0) + 1;
  return Object.entries(n).map(([k, v]) => `${k} ${v}`).join(', ');
}

export async function healthy(s, errorsBefore) {
  const r = await pool(s).send({ path: '/health', headers: [['Connection', 'close']], fresh: true });
  assert.equal(r.status, 200, describe(r));
  // garbage never reaches the database as an error
  assert.deepEqual(s.logLines('db.error').slice(errorsBefore), []);
}

export async function mapLimit(items, n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

// ---- a raw HTTP/1.1 client: any bytes out, keep-alive connections reused ---------------------

// One connection; exchange() sends a request and resolves with its response ({status: 0} when the
// server closed without answering).
export class Conn {
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
export const pools = new Map();
export function pool(s) {
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

export const quiet = { info() {}, debug() {}, error() {}, warn() {} };
export const RID = /^[0-9a-f]{16}$/;

export function describe(res) {
  if (!res.status) return res.timedOut ? 'no answer in time' : `connection closed without an answer ${JSON.stringify(res.partial ?? '')}`;
  return `${res.status} ${res.headers['content-type'] ?? '-'} rid=${res.headers['x-request-id'] ?? '-'} ${res.body.toString('utf8').slice(0, 300)}`;
}

// The JSON body, or a reason it is not one.
export function jsonBody(res) {
  if (!/^application\/json/.test(res.headers['content-type'] ?? '')) return { why: 'not JSON' };
  try {
    return { v: JSON.parse(res.body.toString('utf8')) };
  } catch {
    return { why: 'body is not JSON' };
  }
}

export function jsonError(res) {
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

export function twiml(res, flow) {
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

export function verbArray(res) {
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
export function shape(c, res) {
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

export function check(c, res) {
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
    if (c.noField && e && 'field' in e) errs.push(`error.field ${JSON.stringify(e.field)} where no one field is at fault`);
  }
  if (c.also) errs.push(...(c.also(res) || []));
  return errs;
}

// ---- signatures and tokens ------------------------------------------------------------------

// The form as server/form.c decodes it (pairs of Buffers), or null where it refuses the body.
export function decodeForm(buf) {
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
export function twilioSig(path, body) {
  const pairs = decodeForm(bodyBytes(body)) ?? [];
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]) || Buffer.compare(a[1], b[1]));
  const h = createHmac('sha1', AUTH_TOKEN).update(PUBLIC_BASE_URL + path);
  for (const [k, v] of pairs) h.update(k).update(v);
  return h.digest('base64');
}
export const jambonzSig = (body, t = now(), secret = JAMBONZ_SECRET) =>
  `t=${t},v1=${createHmac('sha256', secret).update(`${t}.`).update(bodyBytes(body)).digest('hex')}`;
export const elevenSig = (body, t = now(), secret = ELEVENLABS_SECRET) =>
  `t=${t},v0=${createHmac('sha256', secret).update(`${t}.`).update(bodyBytes(body)).digest('hex')}`;
export const listenAuth = (session, secret = JAMBONZ_SECRET) =>
  'Basic ' + Buffer.from(`${session}:${createHmac('sha256', secret).update(`listen:${session}`).digest().subarray(0, 16).toString('hex')}`).toString('base64');

export const b64url = (x) => Buffer.from(x).toString('base64url');
export function rawToken(header, payload, sign = (h) => createHmac('sha256', JWT_SECRET).update(h).digest('base64url')) {
  const h = b64url(typeof header === 'string' ? header : JSON.stringify(header)) + '.' + b64url(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return h + '.' + (sign ? sign(h) : '');
}
export const claims = (extra = {}) => ({ sub: 'agent@example.com', tenant_id: 1, role: 'admin', iat: now(), exp: now() + 3600, ...extra });
export const bearer = (tok = token()) => ['Authorization', 'Bearer ' + tok];
export const ADMIN = bearer();

// ---- the routes -----------------------------------------------------------------------------

// Every POST route, with what its error answers look like. sign: how a valid request is signed.
export const POST_ROUTES = [
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
export const ALL_ROUTES = [
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
export function signedHeaders(r, body, path = r.path) {
  if (r.sign === 'twilio') return [['Content-Type', 'application/x-www-form-urlencoded'], ['X-Twilio-Signature', twilioSig(path, body)]];
  if (r.sign === 'jambonz') return [['Content-Type', 'application/json'], ['Jambonz-Signature', jambonzSig(body)]];
  if (r.sign === 'elevenlabs') return [['Content-Type', 'application/json'], ['ElevenLabs-Signature', elevenSig(body)]];
  return r.auth ? [ADMIN, ['Content-Type', 'application/json']] : [['Content-Type', 'application/json']];
}

// ---- deterministic garbage ------------------------------------------------------------------

export function prng(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export const rand = prng(20261204);
export const randomBytes = (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));

export const manyForm = Array.from({ length: 10000 }, (_, i) => `f${i}=${i}`).join('&');
export const manyJson = '{' + Array.from({ length: 10000 }, (_, i) => `"k${i}":${i}`).join(',') + '}';
export const u8 = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

// Bodies no route may take: [name, content type (null: none), body].
export const BODIES = [
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


// ---- servers ---------------------------------------------------------------------------------

// A: every secret set, bodies up to 1 MiB: the garbage reaches the parsers and validators.
// B (when asked for): MAX_REQUEST_BODY=4096: bodies over the limit and HTTP framing on raw sockets.
export const env = {
  TLS_PORT: 'off', JWT_SECRET, TWILIO_AUTH_TOKEN: AUTH_TOKEN, PUBLIC_BASE_URL, JAMBONZ_WEBHOOK_SECRET: JAMBONZ_SECRET,
  ELEVENLABS_WEBHOOK_SECRET: ELEVENLABS_SECRET, AI_PROVIDER: 'echo', PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com',
};
const started = [];
export async function startServers({ small = false } = {}) {
  const [A, B] = await Promise.all([
    startServer({ env: { ...env, MAX_REQUEST_BODY: String(1 << 20) } }),
    small ? startServer({ env: { ...env, MAX_REQUEST_BODY: String(SMALL_BODY) } }) : null,
  ]);
  started.push(A, ...(B ? [B] : []));
  sqlite(dbOf(A), "INSERT INTO tenants (id, name) VALUES (2, 'other')");
  sqlite(dbOf(A), 'INSERT INTO calls (session_id, tenant_id, direction, call_sid, from_number, to_number, status, ended_at) ' +
    `VALUES ('${SEEDED}', 1, 'inbound', '${SEEDED_SID}', '+14155550111', '+14155550100', 'completed', '2026-01-01T00:00:00.000Z')`);
  return { A, B };
}
export async function stopServers() {
  // our keep-alive connections go first, or the servers wait SHUTDOWN_TIMEOUT_S for them
  for (const p of pools.values()) p.closeAll();
  await sleep(200);
  for (const s of started) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr.slice(-4000));
    cleanup(s.dir);
  }
}
