// jambonz when the database fails: the caller still gets a person (the transfer verbs of the
// settings' chain, valid by jambonz's own validator), and later hooks get the apology.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startServer, sqlite, cleanup } from './lib/harness.mjs';
import { jambonzSignature } from '../fakes/jambonz_fs.mjs';

const require = createRequire(import.meta.url);
const { validate } = require('@jambonz/verb-specifications');
const SECRET = 'wh-secret-for-store-tests';
const quiet = { info() {}, debug() {}, error() {}, warn() {} };

const servers = [];
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
});

async function hook(srv, path, body) {
  const raw = JSON.stringify(body);
  const r = await fetch(`http://127.0.0.1:${srv.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'jambonz-signature': jambonzSignature(SECRET, raw) },
    body: raw,
  });
  return { status: r.status, json: await r.json() };
}

test('a database failure on the call hook still answers the transfer to the primary', async () => {
  const srv = await startServer({
    env: { TLS_PORT: 'off', AI_PROVIDER: 'echo', JAMBONZ_WEBHOOK_SECRET: SECRET, JAMBONZ_TRUNK: 'carrier-1',
      PRIMARY_TRANSFER_TARGET: '+14155550199', CALLER_ID_POLICY: 'original' },
  });
  servers.push(srv);
  const db = srv.dir + '/data/switchboard.db';
  sqlite(db, 'ALTER TABLE calls RENAME TO calls_gone');
  try {
    const r = await hook(srv, '/jambonz/call', { call_sid: 'b1d1c0de-0000-4000-8000-000000000001', direction: 'inbound',
      from: '+14155550111', to: '+14155550100', call_status: 'trying' });
    assert.equal(r.status, 200);
    validate(quiet, r.json);
    const dial = r.json.find((v) => v.verb === 'dial');
    assert.ok(dial, JSON.stringify(r.json));
    assert.deepEqual(dial.target, [{ type: 'phone', number: '+14155550199', trunk: 'carrier-1' }]);
    assert.equal(dial.callerId, '+14155550111');
    // its actionHook names a session no row has: the apology, valid verbs again
    const next = await hook(srv, new URL(dial.actionHook).pathname + new URL(dial.actionHook).search,
      { call_sid: 'b1d1c0de-0000-4000-8000-000000000001', dial_call_status: 'busy', dial_sip_status: 486 });
    assert.equal(next.status, 200);
    validate(quiet, next.json);
    assert.deepEqual(next.json.map((v) => v.verb), ['say', 'hangup']);
    await new Promise((res) => setTimeout(res, 100));
    assert.ok(srv.logLines('db.error').length >= 1, srv.stderr);
  } finally {
    sqlite(db, 'ALTER TABLE calls_gone RENAME TO calls');
  }
  assert.equal(sqlite(db, 'SELECT COUNT(*) FROM calls'), '0');
});
