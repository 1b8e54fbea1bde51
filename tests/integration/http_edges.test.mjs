// The answers h2o would give by itself, on the wire (raw sockets: a library client would not
// send what is tested): a body over MAX_REQUEST_BODY is 413 in the route's own shape (JSON on
// the API, TwiML on Twilio's routes, verbs on jambonz's) with X-Request-Id and an access-log
// line; ambiguous framing (two Content-Length headers, Transfer-Encoding with Content-Length or
// twice) is 400 and the connection closed before a smuggled request behind it is read; a chunk
// announced longer than the limit is refused before any of its bytes come; nothing is written.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, sqlRows } from './lib/harness.mjs';
import { AUTH_TOKEN, PUBLIC_BASE_URL } from './lib/twilio.mjs';
import { rawExchange } from './lib/rawhttp.mjs';

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

// One exchange on a connection of its own (lib/rawhttp.mjs): the first response with the body as
// text, whether the server closed, when, and how many bytes came after the first response.
async function raw(s, data, opts) {
  const r = await rawExchange(s, data, opts);
  return { ...r, body: r.body ? r.body.toString('latin1') : '', after: r.rest.length };
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
    assert.equal(a.after, 0, path); // one answer, nothing more read
    check(a);
    const rid = a.headers['x-request-id'];
    assert.match(rid, /^[0-9a-f]{16}$/, path);
    assert.equal(a.headers.connection, 'close');
    assert.ok(a.closed, `${path}: connection closed`);
    const line = await accessLine(s, rid);
    assert.match(line, new RegExp(`method=POST path="${path}" status=413 `));
    // chunked: the sum of the chunks goes over
    const chunks = `800\r\n${'y'.repeat(0x800)}\r\n800\r\n${'y'.repeat(0x800)}\r\n10\r\n${'y'.repeat(16)}\r\n0\r\n\r\n`;
    const b = await raw(s, req('POST', path, ['Transfer-Encoding: chunked'], chunks));
    assert.equal(b.after, 0, path); // one answer, nothing more read
    check(b);
    assert.match(b.headers['x-request-id'], /^[0-9a-f]{16}$/);
  }
  assert.deepEqual(written(s), before);
});

test('two Content-Length headers: 400, and the request smuggled behind is never read', async () => {
  const s = await server();
  const smuggled = req('GET', '/health', []);
  for (const [a, b] of [[5, 5 + smuggled.length], [5, 5], [5 + smuggled.length, 5]]) {
    const r = await raw(s, req('POST', '/api/calls/initiate', ['Content-Type: application/json', `Content-Length: ${a}`,
      `content-length: ${b}`], 'hello' + smuggled));
    assert.equal(r.after, 0, `Content-Length ${a} then ${b}`); // one answer, nothing more read
    apiError(r, 400, 'bad_request', 'Content-Length');
    assert.match(r.headers['x-request-id'], /^[0-9a-f]{16}$/);
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
    assert.equal(r.after, 0, hs.join(' + ')); // one answer, nothing more read
    apiError(r, 400, 'bad_request', 'Transfer-Encoding');
    assert.ok(r.closed);
  }
  // on Twilio's route: the apology, still 400
  const t = await raw(s, req('POST', '/twilio/voice', variants[0], body));
  assert.equal(t.status, 400);
  assert.match(t.body, /<Response><Say>/);
  assert.deepEqual(written(s), before);
});

test('a chunk announced over the limit is refused at once, before its bytes', async () => {
  const s = await server();
  for (const size of ['ffffffffffffffff', (LIMIT + 1).toString(16), '7fffffff']) {
    // the size line alone, then nothing: h2o would wait for the bytes until its timeout
    const r = await raw(s, req('POST', '/api/calls/initiate', ['Transfer-Encoding: chunked'], `${size}\r\n`), { ms: 5000 });
    assert.equal(r.after, 0, size); // one answer, nothing more read
    apiError(r, 400, 'bad_request', 'Transfer-Encoding');
    assert.ok(r.closed, `${size}: connection closed`);
    assert.ok(r.closedAt < 1000, `${size}: closed after ${r.closedAt} ms`);
  }
  // the size still arriving digit by digit: refused once it passes the limit
  const slow = await raw(s, [req('POST', '/jambonz/call', ['Transfer-Encoding: chunked']), 50, 'ff', 50, 'ff', 50, 'ff'], { ms: 5000 });
  assert.equal(slow.after, 0); // one answer, nothing more read
  assert.equal(slow.status, 400);
  assert.deepEqual(JSON.parse(slow.body).map((v) => v.verb), ['say', 'hangup']);
  // a chunked body within the limit reaches the handler (here: the API's 401 without a token)
  const ok = await raw(s, req('POST', '/api/calls/initiate', ['Transfer-Encoding: chunked', 'Connection: close'],
    `${(LIMIT - 100).toString(16)}\r\n${'z'.repeat(LIMIT - 100)}\r\n0\r\n\r\n`));
  assert.equal(ok.after, 0); // one answer, nothing more read
  apiError(ok, 401, 'unauthorized');
});

test('an Expect other than 100-continue: 417 JSON with an id', async () => {
  const s = await server();
  const r = await raw(s, req('POST', '/api/calls/initiate', ['Content-Length: 2', 'Expect: 200-ok'], '{}'));
  assert.equal(r.after, 0); // one answer, nothing more read
  apiError(r, 417, 'expectation_failed', 'Expect');
  assert.match(r.headers['x-request-id'], /^[0-9a-f]{16}$/);
  const ok = await fetch(s.url + '/health');
  assert.equal(ok.status, 200);
});

test('HTTP/2 only over TLS: an h2c upgrade stays HTTP/1.1, a prior-knowledge preface is refused', async () => {
  const s = await server();
  const up = await raw(s, req('GET', '/health', ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA']));
  assert.equal(up.status, 200);
  assert.match(up.headers['x-request-id'], /^[0-9a-f]{16}$/);
  const pri = await raw(s, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  assert.equal(pri.status, 400);
  assert.ok(pri.closed);
});
