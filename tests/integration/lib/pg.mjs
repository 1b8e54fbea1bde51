// PostgreSQL for the integration tests: a new empty database per test (or per server) on the
// run's shared throwaway cluster, and psql to look into it. ctest starts that cluster once
// (the pg fixture: tests/pg/pg.sh) and names the file holding its admin URL in SB_PG_URL_FILE;
// a test file run by hand without it gets a private cluster, started on first use and stopped
// when the process exits. psql's output is the sqlite3 CLI's (columns joined by '|', one row a
// line, NULL empty) so a test compares the same strings on both engines.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PG_SH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'pg', 'pg.sh');
const URL_RE = /^(postgres(?:ql)?:\/\/[^/?#]+)\/([^?#]*)(\?[^#]*)?$/;

// psql sees only the URL: a developer's PG* variables (PGHOST, PGOPTIONS, PGSSLMODE...) or
// ~/.psqlrc (-X) must not change what a test connects to or what psql prints.
function pgEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  env.PGCONNECT_TIMEOUT = '10';
  return env;
}

function serverBinaries() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return false;
  return readdirSync(root).some((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')));
}

// True when psql and the server binaries (for tests/pg/pg.sh) are installed.
export function pgAvailable() {
  const r = spawnSync('psql', ['--version'], { encoding: 'utf8' });
  return r.status === 0 && serverBinaries();
}

function pgsh(cmd, dir) {
  const r = spawnSync(PG_SH, [cmd, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tests/pg/pg.sh ${cmd} ${dir} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout.trim().split('\n').pop();
}

// Clusters this process started: stopped (and removed) when it ends, even on SIGINT/SIGTERM.
// The handlers are installed with the first one, so importing this module changes nothing.
const owned = new Set();
function stopOwned() {
  for (const c of owned) {
    try {
      c.stop();
    } catch (e) {
      process.stderr.write(`${e.message}\n`);
    }
  }
}
function own(c) {
  if (!own.hooked) {
    own.hooked = true;
    process.on('exit', stopOwned);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.once(sig, () => {
        stopOwned();
        process.kill(process.pid, sig); // the default action, now that this listener is gone
      });
    }
  }
  owned.add(c);
}

let counter = 0;

class Cluster {
  constructor(dir, url) {
    this.dir = dir;
    this.url = url; // admin URL: postgresql://postgres@127.0.0.1:PORT/postgres
  }

  // A new empty database; its URL.
  database(prefix = 'sb') {
    const p = String(prefix).toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30);
    const name = `${p}_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
    psql(this.url, `CREATE DATABASE "${name}"`);
    return withDatabase(this.url, name);
  }

  // Fast stop and start again: same port and data; open connections are cut.
  restart() {
    pgsh('restart', this.dir);
  }

  stop() {
    if (!owned.has(this)) return;
    owned.delete(this);
    pgsh('stop', this.dir);
  }
}

let shared = null;
function sharedCluster() {
  if (shared) return shared;
  const file = process.env.SB_PG_URL_FILE;
  if (file) {
    if (!existsSync(file)) throw new Error(`SB_PG_URL_FILE=${file} does not exist: did the ctest fixture pg.start run?`);
    shared = new Cluster(dirname(file), readFileSync(file, 'utf8').trim());
  } else {
    shared = pgCluster();
  }
  return shared;
}

// A private cluster of its own (initdb + start, about a second), stopped when the process
// exits or by its stop(): for a test that restarts or breaks the database, which on the shared
// cluster would cut the connections of every test running beside it (ctest -j).
// Returns { dir, url (admin), database(prefix) -> URL, restart(), stop() }.
export function pgCluster() {
  const dir = mkdtempSync(join(tmpdir(), 'sb-pg-'));
  let url;
  try {
    url = pgsh('start', dir);
  } catch (e) {
    spawnSync(PG_SH, ['stop', dir]); // what a failed start left
    throw e;
  }
  const c = new Cluster(dir, url);
  own(c);
  return c;
}

function withDatabase(url, name) {
  const m = URL_RE.exec(url);
  if (!m) throw new Error(`not a PostgreSQL URL: ${url}`);
  return `${m[1]}/${name}${m[3] || ''}`;
}

// The URL of a new empty database on the shared cluster (name: prefix_pid_counter_random).
export async function pgDatabase(prefix = 'sb') {
  return sharedCluster().database(prefix);
}

// Runs sql (one or more statements, one transaction) on url; trimmed stdout, as the sqlite3
// CLI prints it. Throws with psql's stderr on any error.
export function psql(url, sql) {
  const r = spawnSync('psql', ['-X', '-q', '-A', '-t', '-F', '|', '-v', 'ON_ERROR_STOP=1', '-c', sql, url], {
    encoding: 'utf8',
    env: pgEnv(),
  });
  if (r.error) throw new Error(`psql: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`psql failed (${r.status ?? r.signal}): ${r.stderr.trim()}\n  sql: ${sql}`);
  return r.stdout.trim();
}

// Drops the database of url, cutting its connections (a server still running on it too).
export function pgDrop(url) {
  const m = URL_RE.exec(url);
  if (!m) throw new Error(`not a PostgreSQL URL: ${url}`);
  const name = decodeURIComponent(m[2]);
  psql(withDatabase(url, 'postgres'), `DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
}

// Restarts the shared cluster (tests/pg/pg.sh restart on the folder of SB_PG_URL_FILE): every
// test connected to it at the moment loses its connections. See pgCluster for a private one.
export function pgRestart() {
  sharedCluster().restart();
}
