// Process lifecycle: migrations once across restarts, a failed migration leaving the
// database untouched, the generated certificate kept, and graceful shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, runExpectingFailure, prepareDatabase, curl, sqlite, sleep, tempDir, cleanup, PG_MODE } from './lib/harness.mjs';

test('migrations run once; a restart applies none and keeps data and certificate', async () => {
  const dir = tempDir();
  const db = join(dir, 'data', 'switchboard.db');
  let srv = await startServer({ dir });
  const m = /event=db\.migrated applied=(\d+) schema_version=(\d+)/.exec(srv.stderr);
  assert.ok(m && Number(m[1]) >= 1 && m[1] === m[2], srv.stderr); // every migration, on a fresh file
  const version = m[2];
  assert.match(srv.stderr, /event=db\.tenant_created tenant=1/);
  assert.equal((await srv.stop()).code, 0);
  const cert = readFileSync(join(dir, 'data', 'tls-cert.pem'), 'utf8');
  sqlite(db, "UPDATE tenants SET greeting = 'hello' WHERE id = 1");

  srv = await startServer({ dir });
  assert.match(srv.stderr, new RegExp(`event=db\\.migrated applied=0 schema_version=${version}`));
  assert.doesNotMatch(srv.stderr, /tenant_created/);
  assert.equal(curl([`${srv.url}/health`]).status, 200);
  assert.equal((await srv.stop()).code, 0);
  assert.equal(sqlite(db, 'SELECT COUNT(*) FROM schema_migrations'), version);
  assert.equal(sqlite(db, 'SELECT greeting FROM tenants WHERE id = 1'), 'hello');
  if (!PG_MODE) assert.equal(sqlite(db, 'PRAGMA journal_mode'), 'wal'); // SQLite's file only
  assert.equal(readFileSync(join(dir, 'data', 'tls-cert.pem'), 'utf8'), cert);
  cleanup(dir);
});

test('a failed migration stops start-up and leaves the database as it was', async () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'data'));
  const db = join(dir, 'data', 'switchboard.db');
  await prepareDatabase(db); // PostgreSQL: the file's database, before any server
  // an older, foreign table in the way of the first migration
  sqlite(db, 'CREATE TABLE customers (legacy TEXT); INSERT INTO customers VALUES (\'keep me\');');
  const r = runExpectingFailure({ dir });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /migration 0001_init failed/);
  assert.equal(sqlite(db, "SELECT group_concat(name) FROM sqlite_master WHERE type = 'table'"), 'customers');
  assert.equal(sqlite(db, 'SELECT legacy FROM customers'), 'keep me');
  cleanup(dir);
});

test('SIGTERM lets a request in flight finish, refuses new connections, exits 0', async () => {
  const srv = await startServer({ env: { WORKERS: '1', TLS_PORT: 'off' } });
  const sock = connect(srv.port, '127.0.0.1');
  await new Promise((res) => sock.on('connect', res));
  let response = '';
  sock.on('data', (d) => (response += d));
  const closed = new Promise((res) => sock.on('close', res));
  // headers and half the body: the request is in flight when the signal comes
  sock.write('POST /api/nothing HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello');
  await sleep(100);
  srv.proc.kill('SIGTERM');
  await sleep(300);
  assert.equal(srv.proc.exitCode, null, 'server must wait for the request in flight');
  await assert.rejects(
    new Promise((res, rej) => {
      const c = connect(srv.port, '127.0.0.1');
      c.on('connect', () => {
        c.destroy();
        res();
      });
      c.on('error', rej);
    }),
    /ECONNREFUSED/,
  );
  sock.write('world');
  await closed; // HTTP/1 responses after shutdown close the connection
  assert.match(response, /^HTTP\/1\.1 404 /);
  assert.match(response, /connection: close/i);
  const r = await srv.stop();
  assert.equal(r.code, 0, srv.stderr);
  assert.match(srv.stderr, /event=server\.stopped/);
  cleanup(srv.dir);
});

test('an idle keep-alive connection is cut at the shutdown deadline', async () => {
  const srv = await startServer({ env: { WORKERS: '1', TLS_PORT: 'off', SHUTDOWN_TIMEOUT_S: '1' } });
  const sock = connect(srv.port, '127.0.0.1');
  await new Promise((res) => sock.on('connect', res));
  sock.on('data', () => {});
  sock.write('GET /health HTTP/1.1\r\nHost: t\r\n\r\n');
  await sleep(100);
  const t0 = Date.now();
  const r = await srv.stop();
  const took = Date.now() - t0;
  assert.equal(r.code, 0, srv.stderr);
  assert.ok(took >= 900 && took < 4000, `shutdown took ${took} ms`);
  assert.match(srv.stderr, /event=worker\.shutdown_deadline worker=0 connections=1/);
  sock.destroy();
  cleanup(srv.dir);
});

test('SIGINT stops the server as SIGTERM does', async () => {
  const srv = await startServer();
  assert.equal(curl([`${srv.url}/health`]).status, 200);
  const r = await srv.stop('SIGINT');
  assert.equal(r.code, 0);
  assert.match(srv.stderr, /signal=SIGINT/);
  cleanup(srv.dir);
});
