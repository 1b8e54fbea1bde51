// GET /health and the generic HTTP behaviour (404, 405, 413, request ids) over plain
// HTTP/1.1, TLS HTTP/1.1 and TLS HTTP/2, against the real binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, curl, sqlite, cleanup, PG_MODE } from './lib/harness.mjs';

let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, srv.stderr);
  cleanup(srv.dir);
});

function checkHealth(r, version) {
  assert.equal(r.status, 200);
  assert.equal(r.version, version);
  assert.match(r.headers['content-type'], /^application\/json/);
  const h = JSON.parse(r.body);
  assert.equal(h.status, 'ok');
  assert.equal(h.db, 'ok');
  assert.match(h.version, /^\d+\.\d+\.\d+$/);
  assert.equal(typeof h.uptime_s, 'number');
  assert.equal(h.twilio_configured, false);
  assert.equal(h.ai_provider, 'echo');
  assert.equal(h.active_calls, 0);
  assert.equal(h.asterisk, 'off', 'no ARI_URL: Asterisk is off');
}

test('health over plain HTTP/1.1', () => {
  checkHealth(curl(['--http1.1', `${srv.url}/health`]), '1.1');
});

test('health over TLS with HTTP/1.1 and HTTP/2 (ALPN)', () => {
  checkHealth(curl(['-k', '--http1.1', `${srv.tlsUrl}/health`]), '1.1');
  checkHealth(curl(['-k', '--http2', `${srv.tlsUrl}/health`]), '2');
});

test('the generated self-signed certificate verifies for localhost and 127.0.0.1', () => {
  const ca = `${srv.dir}/data/tls-cert.pem`;
  assert.equal(curl(['--cacert', ca, `${srv.tlsUrl}/health`]).status, 200);
  assert.equal(curl(['--cacert', ca, `https://127.0.0.1:${srv.tlsPort}/health`]).status, 200);
});

test('unknown path is a 404 JSON error', () => {
  for (const args of [[`${srv.url}/nope`], ['-k', '--http2', `${srv.tlsUrl}/api/nothing/here`]]) {
    const r = curl(args);
    assert.equal(r.status, 404);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.equal(JSON.parse(r.body).error.code, 'not_found');
  }
});

test('wrong method is a 405 with Allow', () => {
  const r = curl(['-X', 'POST', '-d', 'x=1', `${srv.url}/health`]);
  assert.equal(r.status, 405);
  assert.equal(r.headers['allow'], 'GET');
  assert.equal(JSON.parse(r.body).error.code, 'method_not_allowed');
});

test('a body over the limit is refused with 413', () => {
  const big = 'a'.repeat(70 * 1024);
  const r = curl(['-X', 'POST', '--data-binary', big, '-H', 'Content-Type: text/plain', `${srv.url}/health`]);
  assert.equal(r.status, 413);
  const ok = curl(['-X', 'POST', '--data-binary', 'a'.repeat(1000), `${srv.url}/health`]);
  assert.equal(ok.status, 405); /* under the limit the request reaches the router */
});

test('every response carries a request id that the access log names', async () => {
  const r = curl([`${srv.url}/health`]);
  const rid = r.headers['x-request-id'];
  assert.match(rid, /^[0-9a-f]{16}$/);
  await new Promise((res) => setTimeout(res, 50));
  const line = srv.logLines('http.request').find((l) => l.includes(`rid=${rid}`));
  assert.ok(line, `no access log line for ${rid}`);
  assert.match(line, /method=GET path="\/health" status=200 dur_us=\d+$/);
});

test('health answers 503 when the database is unusable', () => {
  const db = srv.dir + '/data/switchboard.db';
  sqlite(db, `${PG_MODE ? '' : 'PRAGMA foreign_keys=OFF; '}ALTER TABLE calls RENAME TO calls_broken;`);
  try {
    const r = curl([`${srv.url}/health`]);
    assert.equal(r.status, 503);
    const h = JSON.parse(r.body);
    assert.equal(h.status, 'error');
    assert.equal(h.db, 'error');
  } finally {
    sqlite(db, 'ALTER TABLE calls_broken RENAME TO calls;');
  }
  assert.equal(curl([`${srv.url}/health`]).status, 200);
});
