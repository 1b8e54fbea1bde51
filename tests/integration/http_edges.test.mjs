// The answers h2o would give by itself, on the wire (raw sockets: a library client would not
// send what is tested): a body over MAX_REQUEST_BODY is 413 in the route's own shape (JSON on
// the API, TwiML on Twilio's routes, verbs on jambonz's) with X-Request-Id and an access-log
// line; ambiguous framing (two Content-Length headers, Transfer-Encoding with Content-Length or
// twice) is 400 and the connection closed before a smuggled request behind it is read; a chunk
// announced longer than the limit is refused before any of its bytes come; nothing is written.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, cleanup, sqlRows } from './lib/harness.mjs';
import { AUTH_TOKEN, PUBLIC_BASE_URL } from './lib/twilio.mjs';

const LIMIT = 4096;
let srv;
after(async () => {
  if (!srv) return;
  const r = await srv.stop();
  assert.equal(r.code, 0, srv.stderr);
  cleanup(srv.dir);
});

async function server() {
  if (!srv)
    srv = await startServer({
      env: {
        TLS_PORT: 'off', MAX_REQUEST_BODY: String(LIMIT), TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        PUBLIC_BASE_URL, JAMBONZ_WEBHOOK_SECRET: 'jambonz-secret-0123456789', AI_PROVIDER: 'echo',
        PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com',
      },
    });
  return srv;
}

// Sends bytes (all at once, or the parts with a pause between them) and reads until the server
// closes or ms pass. Returns the responses parsed, whether the server closed, and the time.
async function raw(s, parts, { ms = 3000, gap = 50 } = {}) {
  const u = new URL(s.url);
  const sock = net.connect(+u.port, u.hostname);
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  const t0 = Date.now();
  let buf = Buffer.alloc(0), closed = false, closedAt = 0;
  sock.on('data', (d) => (buf = Buffer.concat([buf, d])));
  sock.on('error', () => {});
  const done = new Promise((r) => sock.on('close', () => { closed = true; closedAt = Date.now() - t0; r(); }));
  for (const [i, p] of [].concat(parts).entries()) {
    if (i > 0) await new Promise((r) => setTimeout(r, gap));
    if (!sock.destroyed) sock.write(p);
  }
  await Promise.race([done, new Promise((r) => setTimeout(r, ms))]);
  sock.destroy();
  return { responses: parse(buf), closed, closedAt };
}

function parse(buf) {
  const out = [];
  let rest = buf.toString('latin1');
  while (rest.startsWith('HTTP/1.')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = rest.slice(0, end).split('\r\n');
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = Number(headers['content-length'] ?? 0);
    out.push({ status: Number(lines[0].split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + len) });
    rest = rest.slice(end + 4 + len);
  }
  return out;
}

function req(method, path, headers, body = '') {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.map((h) => h + '\r\n').join('')}\r\n${body}`;
}

// The one access-log line of the request, found by its id.
async function accessLine(s, rid) {
  for (let i = 0; i < 50; i++) {
    const l = s.logLines('http.request').find((x) => x.includes(`rid=${rid} `));
    if (l) return l;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`no access-log line for ${rid}`);
}

function written(s) {
  const db = s.dir + '/data/switchboard.db';
  return sqlRows(db, 'SELECT (SELECT COUNT(*) FROM calls) AS calls, (SELECT COUNT(*) FROM call_events) AS events');
}

function apiError(res, status, code, field) {
  assert.equal(res.status, status);
  assert.match(res.headers['content-type'], /^application\/json/);
  const e = JSON.parse(res.body).error;
  assert.equal(e.code, code);
  assert.equal(typeof e.message, 'string');
  if (field !== undefined) assert.equal(e.field, field);
}

test('a body over MAX_REQUEST_BODY gets 413 in each route\'s shape, with an id and a log line', async () => {
  const s = await server();
  const before = written(s);
  const big = 'x'.repeat(LIMIT + 1);
  const cases = [
    ['/api/calls/initiate', (r) => apiError(r, 413, 'body_too_large', 'body')],
    ['/api/tenants', (r) => apiError(r, 413, 'body_too_large', 'body')],
    ['/twilio/voice', (r) => {
      assert.equal(r.status, 413);
      assert.match(r.headers['content-type'], /^text\/xml/);
      assert.match(r.body, /^<\?xml[^>]*\?><Response><Say>[^<]*sorry[^<]*<\/Say><Hangup\/><\/Response>$/);
    }],
    ['/twilio/status', (r) => assert.match(r.body, /<Response>/)],
    ['/jambonz/call', (r) => {
      assert.equal(r.status, 413);
      assert.match(r.headers['content-type'], /^application\/json/);
      const verbs = JSON.parse(r.body);
      assert.deepEqual(verbs.map((v) => v.verb), ['say', 'hangup']);
    }],
  ];
  for (const [path, check] of cases) {
    // by Content-Length: refused before the body is read
    const a = await raw(s, req('POST', path, ['Content-Type: application/json', `Content-Length: ${big.length}`], big));
    assert.equal(a.responses.length, 1, path);
    check(a.responses[0]);
    const rid = a.responses[0].headers['x-request-id'];
    assert.match(rid, /^[0-9a-f]{16}$/, path);
    assert.equal(a.responses[0].headers.connection, 'close');
    assert.ok(a.closed, `${path}: connection closed`);
    const line = await accessLine(s, rid);
    assert.match(line, new RegExp(`method=POST path="${path}" status=413 `));
    // chunked: the sum of the chunks goes over
    const chunks = `800\r\n${'y'.repeat(0x800)}\r\n800\r\n${'y'.repeat(0x800)}\r\n10\r\n${'y'.repeat(16)}\r\n0\r\n\r\n`;
    const b = await raw(s, req('POST', path, ['Transfer-Encoding: chunked'], chunks));
    assert.equal(b.responses.length, 1, path);
    check(b.responses[0]);
    assert.match(b.responses[0].headers['x-request-id'], /^[0-9a-f]{16}$/);
  }
  assert.deepEqual(written(s), before);
});

test('two Content-Length headers: 400, and the request smuggled behind is never read', async () => {
  const s = await server();
  const smuggled = req('GET', '/health', []);
  for (const [a, b] of [[5, 5 + smuggled.length], [5, 5], [5 + smuggled.length, 5]]) {
    const r = await raw(s, req('POST', '/api/calls/initiate', ['Content-Type: application/json', `Content-Length: ${a}`,
      `content-length: ${b}`], 'hello' + smuggled));
    assert.equal(r.responses.length, 1, `Content-Length ${a} then ${b}`);
    apiError(r.responses[0], 400, 'bad_request', 'Content-Length');
    assert.match(r.responses[0].headers['x-request-id'], /^[0-9a-f]{16}$/);
    assert.ok(r.closed);
  }
});

test('Transfer-Encoding with Content-Length, or twice: 400 naming Transfer-Encoding, nothing behind read', async () => {
  const s = await server();
  const before = written(s);
  const smuggled = req('GET', '/health', []);
  const body = `5\r\nhello\r\n0\r\n\r\n`;
  const variants = [
    ['Content-Length: 5', 'Transfer-Encoding: chunked'],
    ['Transfer-Encoding: chunked', 'Content-Length: 5'],
    ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
    ['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'],
  ];
  for (const hs of variants) {
    const r = await raw(s, req('POST', '/api/calls/initiate', hs, body + smuggled));
    assert.equal(r.responses.length, 1, hs.join(' + '));
    apiError(r.responses[0], 400, 'bad_request', 'Transfer-Encoding');
    assert.ok(r.closed);
  }
  // on Twilio's route: the apology, still 400
  const t = await raw(s, req('POST', '/twilio/voice', variants[0], body));
  assert.equal(t.responses[0].status, 400);
  assert.match(t.responses[0].body, /<Response><Say>/);
  assert.deepEqual(written(s), before);
});

test('a chunk announced over the limit is refused at once, before its bytes', async () => {
  const s = await server();
  for (const size of ['ffffffffffffffff', (LIMIT + 1).toString(16), '7fffffff']) {
    // the size line alone, then nothing: h2o would wait for the bytes until its timeout
    const r = await raw(s, req('POST', '/api/calls/initiate', ['Transfer-Encoding: chunked'], `${size}\r\n`), { ms: 5000 });
    assert.equal(r.responses.length, 1, size);
    apiError(r.responses[0], 400, 'bad_request', 'Transfer-Encoding');
    assert.ok(r.closed, `${size}: connection closed`);
    assert.ok(r.closedAt < 1000, `${size}: closed after ${r.closedAt} ms`);
  }
  // the size still arriving digit by digit: refused once it passes the limit
  const slow = await raw(s, [req('POST', '/jambonz/call', ['Transfer-Encoding: chunked']), 'ff', 'ff', 'ff'], { ms: 5000 });
  assert.equal(slow.responses.length, 1);
  assert.equal(slow.responses[0].status, 400);
  assert.deepEqual(JSON.parse(slow.responses[0].body).map((v) => v.verb), ['say', 'hangup']);
  // a chunked body within the limit reaches the handler (here: the API's 401 without a token)
  const ok = await raw(s, req('POST', '/api/calls/initiate', ['Transfer-Encoding: chunked', 'Connection: close'],
    `${(LIMIT - 100).toString(16)}\r\n${'z'.repeat(LIMIT - 100)}\r\n0\r\n\r\n`));
  assert.equal(ok.responses.length, 1);
  apiError(ok.responses[0], 401, 'unauthorized');
});

test('an Expect other than 100-continue: 417 JSON with an id', async () => {
  const s = await server();
  const r = await raw(s, req('POST', '/api/calls/initiate', ['Content-Length: 2', 'Expect: 200-ok'], '{}'));
  assert.equal(r.responses.length, 1);
  apiError(r.responses[0], 417, 'expectation_failed', 'Expect');
  assert.match(r.responses[0].headers['x-request-id'], /^[0-9a-f]{16}$/);
  const ok = await fetch(s.url + '/health');
  assert.equal(ok.status, 200);
});
