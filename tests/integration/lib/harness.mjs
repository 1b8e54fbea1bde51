// Starts the real switchboard binary on ephemeral ports in a temp folder and talks to it
// with real clients (curl, raw sockets). Each server's stderr is kept for assertions and
// scanned for sanitizer reports when it stops.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = process.env.SWITCHBOARD_BIN;
if (!BIN) throw new Error('SWITCHBOARD_BIN is not set (run the tests through ctest)');
export const SANITIZED = process.env.SB_SANITIZE === '1' || process.env.SB_SANITIZE === 'ON';

const SANITIZER_MARKERS = [/ERROR: AddressSanitizer/, /ERROR: LeakSanitizer/, /runtime error:/];

// A test that fails half-way leaves its server running; never let one outlive the file:
// servers do not keep node alive (unref) and are killed when it exits.
const live = new Set();
process.on('exit', () => {
  for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});
function watch(proc) {
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  proc.unref();
  proc.stdout.unref();
  proc.stderr.unref();
}

export function tempDir() {
  return mkdtempSync(join(tmpdir(), 'sb-it-'));
}

// Settings every test server starts from; tests override what they exercise.
function baseEnv(dir, extra) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) if (process.env[k]) env[k] = process.env[k];
  Object.assign(env, {
    PORT: '0',
    TLS_PORT: '0',
    WORKERS: '2',
    BIND_ADDRESS: '127.0.0.1',
    DATABASE_PATH: join(dir, 'data', 'switchboard.db'),
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT_S: '5',
  });
  for (const [k, v] of Object.entries(extra || {})) {
    if (v === undefined || v === null) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

export class Server {
  constructor(proc, dir) {
    this.proc = proc;
    this.dir = dir;
    this.stderr = '';
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    proc.stderr.on('data', (d) => (this.stderr += d.toString()));
    proc.stdout.on('data', (d) => (this.stderr += d.toString()));
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get tlsUrl() {
    return `https://localhost:${this.tlsPort}`;
  }

  // Sends a signal and waits for the exit; fails on a sanitizer report.
  async stop(signal = 'SIGTERM') {
    this.proc.ref(); // keep node alive until the exit is seen
    this.proc.stdout.ref();
    this.proc.stderr.ref();
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    const r = await this.exited;
    this.checkSanitizers();
    return r;
  }

  checkSanitizers() {
    for (const m of SANITIZER_MARKERS)
      if (m.test(this.stderr)) throw new Error(`sanitizer report in server output:\n${this.stderr}`);
    // PostgreSQL: a database round trip that blocked a loop thread (the store reports it)
    if (/ event=store\.loop_wait /.test(this.stderr))
      throw new Error(`a database wait blocked the loop:\n${this.logLines('store.loop_wait').join('\n')}`);
  }

  logLines(event) {
    return this.stderr.split('\n').filter((l) => l.includes(` event=${event}`));
  }
}

// SB_TEST_DB=pg: every database file a test uses (DATABASE_PATH, by default the server's
// data/switchboard.db) stands for a PostgreSQL database of its own (DATABASE_URL), made when a
// server first starts on it (or by prepareDatabase) and used again by every later server on the
// same file, and sqlite(<that file>, sql) / sqlRows asks PostgreSQL through psql: the same
// tests, the other engine (CTest's integration_pg.* entries).
export const PG_MODE = process.env.SB_TEST_DB === 'pg';
const pgByFile = new Map();

const dbFile = (dir, env) => (env && env.DATABASE_PATH) || join(dir, 'data', 'switchboard.db');

// PG mode: the database of dbPath, made (with the compat layer) on first use; its URL.
// SQLite: null (the file is the database; the server or the sqlite3 CLI creates it).
export async function prepareDatabase(dbPath) {
  if (!PG_MODE) return null;
  if (!pgByFile.has(dbPath)) {
    const { pgDatabase } = await import('./pg.mjs');
    const url = await pgDatabase('sb_it');
    pgQuery(url, PG_COMPAT);
    pgByFile.set(dbPath, url);
  }
  return pgByFile.get(dbPath);
}

// Starts the server and resolves once it logs server.listening (ports parsed from the log).
export async function startServer({ env, dir, args = [], timeoutMs = 15000 } = {}) {
  dir = dir || tempDir();
  if (PG_MODE && !(env && 'DATABASE_URL' in env))
    env = { ...env, DATABASE_URL: await prepareDatabase(dbFile(dir, env)) };
  const proc = spawn(BIN, args, { cwd: dir, env: baseEnv(dir, env), stdio: ['ignore', 'pipe', 'pipe'] });
  const s = new Server(proc, dir);
  watch(proc);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = /event=server\.listening port=(\d+) tls_port=(-?\d+)/.exec(s.stderr);
    if (m) {
      s.port = Number(m[1]);
      s.tlsPort = Number(m[2]);
      return s;
    }
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}:\n${s.stderr}`);
    await sleep(20);
  }
  proc.kill('SIGKILL');
  throw new Error(`server did not start in time:\n${s.stderr}`);
}

// Runs the binary expecting it to fail at start; returns {code, stderr}.
// PG mode: on the database of its file when there is one already (prepareDatabase).
export function runExpectingFailure({ env, dir, args = [] } = {}) {
  dir = dir || tempDir();
  if (PG_MODE && !(env && 'DATABASE_URL' in env) && pgByFile.has(dbFile(dir, env)))
    env = { ...env, DATABASE_URL: pgByFile.get(dbFile(dir, env)) };
  const r = spawnSync(BIN, args, { cwd: dir, env: baseEnv(dir, env), encoding: 'utf8', timeout: 15000 });
  return { code: r.status, stderr: r.stderr + r.stdout, dir };
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Polls fn until pred(value) holds or ms pass; returns the last value either way, so the
// caller's assertion shows what was there. For writes the server makes after it answered.
export async function eventually(fn, pred, { ms = 5000, every = 50 } = {}) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (pred(v) || Date.now() >= end) return v;
    await sleep(every);
  }
}

// curl with a parsed result: {status, version, headers (lowercase names), body}.
export function curl(args) {
  const r = spawnSync('curl', ['-sS', '-i', '--max-time', '10', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`curl ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  // skip interim 1xx responses
  let raw = r.stdout;
  for (;;) {
    const m = /^HTTP\/[\d.]+ 1\d\d[^\n]*\n(?:[^\n]*\S[^\n]*\n)*\r?\n/.exec(raw);
    if (!m) break;
    raw = raw.slice(m[0].length);
  }
  const split = raw.search(/\r?\n\r?\n/);
  const head = raw.slice(0, split).split(/\r?\n/);
  const body = raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const [proto, code] = head[0].split(' ');
  const headers = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(code), version: proto.replace('HTTP/', ''), headers, body };
}

export function sqlite(dbPath, sql) {
  if (pgByFile.has(dbPath)) return pgQuery(pgByFile.get(dbPath), sql);
  const r = spawnSync('sqlite3', [dbPath, sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr}`);
  return r.stdout.trim();
}

// The rows of one SELECT as objects, as `sqlite3 -json` gives them ([] for none): integers as
// numbers, NULL as null, text as strings. On PostgreSQL the same through psql's json_agg, a
// boolean read as SQLite's 1 or 0 and a json or array value as its JSON text.
export function sqlRows(dbPath, query) {
  if (pgByFile.has(dbPath)) {
    const out = pgQuery(pgByFile.get(dbPath), `SELECT coalesce(json_agg(sb_rows), '[]') FROM (${query}) AS sb_rows`);
    const cell = (v) => (typeof v === 'boolean' ? Number(v) : v !== null && typeof v === 'object' ? JSON.stringify(v) : v);
    return JSON.parse(out).map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, cell(v)])));
  }
  const r = spawnSync('sqlite3', ['-json', dbPath, query], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}

// What the tests' own SQL uses of SQLite, in the test database only: group_concat,
// json_extract of a '$.a.b' path (as text: '2' where SQLite gives 2), and sqlite_master's
// tables (type 'table', name).
const PG_COMPAT = `
CREATE FUNCTION sb_gc(acc text, v text, sep text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN v IS NULL THEN acc WHEN acc IS NULL THEN v ELSE acc || sep || v END $$;
CREATE FUNCTION sb_gc1(acc text, v text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT sb_gc(acc, v, ',') $$;
CREATE AGGREGATE group_concat(text) (SFUNC = sb_gc1, STYPE = text);
CREATE AGGREGATE group_concat(text, text) (SFUNC = sb_gc, STYPE = text);
CREATE FUNCTION json_extract(doc text, path text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT doc::jsonb #>> string_to_array(substr(path, 3), '.') $$;
CREATE VIEW sqlite_master AS SELECT 'table'::text AS type, table_name::text AS name, table_name::text AS tbl_name
  FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE';`;

// A row a test inserts with its own id: SQLite's next id is max(id) + 1, PostgreSQL's identity
// sequence does not move; moved here, so the server's next row does not take that id.
function pgIdentityCatchUp(sql) {
  const tables = new Set([...sql.matchAll(/\bINSERT\s+INTO\s+(\w+)\s*\(\s*id\s*[,)]/gi)].map((m) => m[1].toLowerCase()));
  return [...tables]
    .map((t) => `DO $$ BEGIN PERFORM setval(pg_get_serial_sequence('${t}', 'id'), (SELECT max(id) FROM ${t})); END $$;`)
    .join('\n');
}

// psql with the sqlite3 CLI's output; a boolean cell reads as SQLite's 1 or 0.
function pgQuery(url, sql) {
  const catchUp = pgIdentityCatchUp(sql);
  if (catchUp) sql = `${sql.trim().replace(/;?$/, ';')}\n${catchUp}`;
  const r = spawnSync('psql', ['-X', '-q', '-A', '-t', '-F', '|', '-v', 'ON_ERROR_STOP=1', '-c', sql, url], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
  const cell = (c) => (c === 't' ? '1' : c === 'f' ? '0' : c);
  return r.stdout.trim().split('\n').map((l) => l.split('|').map(cell).join('|')).join('\n');
}

export function cleanup(dir) {
  rmSync(dir, { recursive: true, force: true });
}
