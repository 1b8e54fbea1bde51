// The PostgreSQL test harness itself (lib/pg.mjs, tests/pg/pg.sh): databases are new, empty and
// apart, psql prints what the sqlite3 CLI prints, drop works, and a restart keeps the data.
// The restart runs on a private cluster: on the shared one it would cut the connections of the
// tests running beside this one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pgAvailable, pgCluster, pgDatabase, pgDrop, psql } from './lib/pg.mjs';

test('PostgreSQL is installed (tools/deps.sh test)', () => {
  assert.ok(pgAvailable(), 'psql or /usr/lib/postgresql/*/bin/{initdb,pg_ctl} missing');
});

test('a new database is empty, and psql prints as the sqlite3 CLI does', async () => {
  const url = await pgDatabase('harness');
  assert.match(url, /^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/harness_\d+_\d+_[0-9a-f]{6}$/);
  assert.equal(psql(url, "select count(*) from pg_tables where schemaname = 'public'"), '0');
  assert.equal(psql(url, "select 1, 'a'"), '1|a');
  assert.equal(psql(url, "select 1, null, 'b' union all select 2, 'x', null order by 1"), '1||b\n2|x|');
  assert.equal(psql(url, 'select 1 where false'), '');
  assert.throws(() => psql(url, 'select * from nowhere'), /relation "nowhere" does not exist/);
  pgDrop(url);
});

test('two databases are distinct, and a dropped one is gone', async () => {
  const a = await pgDatabase();
  const b = await pgDatabase();
  assert.notEqual(a, b);
  psql(a, "create table t (v text); insert into t values ('in a')");
  assert.equal(psql(a, 'select v from t'), 'in a');
  assert.throws(() => psql(b, 'select v from t'), /relation "t" does not exist/);
  pgDrop(a);
  assert.throws(() => psql(a, 'select 1'), /does not exist/);
  assert.equal(psql(b, 'select 1'), '1');
  pgDrop(b);
  pgDrop(b); // dropping twice is no error
});

test('a restarted cluster keeps the data, on the same URL', async () => {
  const cluster = pgCluster();
  try {
    const url = cluster.database('restart');
    psql(url, "create table t (id bigint primary key, v text); insert into t values (1, 'kept'), (2, 'too')");
    cluster.restart();
    assert.equal(psql(url, 'select id, v from t order by id'), '1|kept\n2|too');
    psql(url, "insert into t values (3, 'after')");
    assert.equal(psql(url, 'select count(*) from t'), '3');
  } finally {
    cluster.stop();
  }
});

test('pgRestart restarts the cluster SB_PG_URL_FILE names (here a private one)', async () => {
  const cluster = pgCluster();
  try {
    const url = cluster.database('pgrestart');
    psql(url, "create table t (v text); insert into t values ('kept')");
    const lib = new URL('./lib/pg.mjs', import.meta.url).href;
    const script = `import { pgRestart, psql } from ${JSON.stringify(lib)};
      const before = psql(${JSON.stringify(url)}, 'select pg_postmaster_start_time()');
      pgRestart();
      const after = psql(${JSON.stringify(url)}, 'select pg_postmaster_start_time()');
      if (before === after) throw new Error('not restarted: ' + before);
      console.log(psql(${JSON.stringify(url)}, 'select v from t'));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, SB_PG_URL_FILE: join(cluster.dir, 'url') },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'kept');
  } finally {
    cluster.stop();
  }
});
