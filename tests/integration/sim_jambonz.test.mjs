// `switchboard-sim jambonz` (tools/sim/cli.mjs) run as a child process against the real server,
// as a user would run the two: an inbound call through the signed hooks and the listen socket
// with the echo agent (exit 0, the caller's audio saved), a DTMF transfer through a busy target
// and an answering one (--json), and a wrong --secret (exit 3, nothing written).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, sqlRows, cleanup, tempDir } from './lib/harness.mjs';
import { parseWav } from '../../tools/sim/index.mjs';

const CLI = fileURLToPath(new URL('../../tools/sim/cli.mjs', import.meta.url));
const SECRET = 'jambonz-webhook-secret-for-the-sim';

const dir = tempDir();
after(() => cleanup(dir));

// Runs the CLI to its end: {code, stdout, stderr}. A clean environment: nothing leaks in.
function sim(args, { timeoutMs = 60000 } = {}) {
  const child = spawn(process.execPath, [CLI, 'jambonz', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? `signal ${signal}`, stdout, stderr });
    }),
  );
}
const show = (r) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

async function withServer(env, fn) {
  const srv = await startServer({ env: { TLS_PORT: 'off', AI_PROVIDER: 'echo', JAMBONZ_WEBHOOK_SECRET: SECRET, ...env } });
  try {
    return await fn(srv);
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0, srv.stderr.slice(-4000));
    cleanup(srv.dir);
  }
}
const sql = (srv, query) => sqlRows(join(srv.dir, 'data', 'switchboard.db'), query);
const eventTypes = (srv, sid) => sql(srv, `SELECT type FROM call_events JOIN calls ON calls.id = call_id WHERE call_sid='${sid}' ORDER BY call_events.id`).map((e) => e.type);

test('an inbound call through the real server: signed hooks, the listen socket both ways, exit 0, the agent audio saved', async () => {
  await withServer({}, async (srv) => {
    const out = join(dir, 'heard.wav');
    const r = await sim(['--url', srv.url, '--secret', SECRET, '--from', '+15551230001', '--to', '+15557650000', '--tail', '500ms', '--save', out]);
    assert.equal(r.code, 0, show(r));
    for (const re of [
      /→  POST \/jambonz\/call  call hook \(inbound, from \+15551230001 to \+15557650000\)\n.*←  200 OK \([\d.]+ ms\)  \[listen\]/,
      /←  101 Switching Protocols \(audio\.jambonz\.org\)/,
      /→  metadata  sampleRate 8000 mixType mono callSid [0-9a-f-]{36}.*session_id="[0-9a-f]/,
      /←  the app's audio starts \(\d+ bytes\)/,
      /·  the caller hangs up/,
      /→  POST \/jambonz\/status  status  call_status=completed sip_status=200 .*call_termination_by=caller/,
      /^listen 1 ws:\/\/127\.0\.0\.1:\d+\/jambonz\/listen: sent \d+ frames .*received \d+/m,
      /^result: completed as expected$/m,
    ])
      assert.match(r.stdout, re, show(r));
    assert.doesNotMatch(r.stdout + r.stderr, /✗/);
    const callSid = /call_sid ([0-9a-f-]{36})/.exec(r.stdout)[1];
    const [row] = sql(srv, `SELECT * FROM calls WHERE call_sid='${callSid}'`);
    assert.deepEqual([row.platform, row.status, row.from_number, row.to_number], ['jambonz', 'completed', '+15551230001', '+15557650000']);
    const t = eventTypes(srv, callSid);
    assert.ok(t.includes('stream.started') && t.includes('stream.stopped'), t.join(','));
    // what the caller heard: the echo of their own tones
    const w = parseWav(readFileSync(out));
    assert.deepEqual([w.format, w.sampleRate, w.bitsPerSample], [1, 8000, 16]);
    let loud = 0;
    for (let i = 0; i + 1 < w.data.length; i += 2) if (Math.abs(w.data.readInt16LE(i)) > 1000) loud++;
    assert.ok(loud > 4000, `${loud} loud samples heard`);
  });
});

test('a DTMF transfer: 0 ends the listen, the primary is busy, the secondary answers; --json reports it, exit 0', async () => {
  await withServer({ PRIMARY_TRANSFER_TARGET: '+14155550111', SECONDARY_TRANSFER_TARGET: 'sip:desk@pbx.example.com', TRANSFER_TIMEOUT: '5' }, async (srv) => {
    const r = await sim(['--url', srv.url, '--secret', SECRET, '--dtmf', '0@3s', '--dial-outcomes', 'busy,completed', '--speed', '10', '--json']);
    assert.equal(r.code, 0, show(r));
    const j = JSON.parse(r.stdout);
    assert.equal(j.ok, true, j.reason);
    assert.deepEqual(j.verbs.map((v) => v.verb), ['listen', 'say', 'dial', 'say', 'dial', 'hangup']);
    assert.deepEqual(j.dials.map((d) => [d.targets[0].number ?? d.targets[0].sipUri, d.results.dialCallStatus]), [['+14155550111', 'busy'], ['sip:desk@pbx.example.com', 'completed']]);
    assert.ok(j.hooks.every((h) => /^t=\d+,v1=[0-9a-f]{64}$/.test(h.signature)), 'every hook signed');
    assert.ok(j.hooks.every((h) => h.status === 200));
    assert.ok(j.agentAudioMs > 500, `${j.agentAudioMs} ms of agent audio`);
    const t = eventTypes(srv, j.callSid);
    assert.ok(t.includes('dtmf'), t.join(','));
    assert.deepEqual(t.filter((x) => x.startsWith('transfer.')), ['transfer.attempt', 'transfer.outcome', 'transfer.attempt', 'transfer.outcome']);
    assert.equal(sql(srv, `SELECT status FROM calls WHERE call_sid='${j.callSid}'`)[0].status, 'completed');
  });
});

test('a wrong --secret: the server refuses the call hook (403), the simulator exits 3, nothing is written', async () => {
  await withServer({}, async (srv) => {
    const r = await sim(['--url', srv.url, '--secret', 'not-the-secret', '--hangup-after', '1s']);
    assert.equal(r.code, 3, show(r));
    assert.match(r.stderr, /the server refused the call hook: HTTP 403/);
    assert.match(r.stdout, /480 Temporarily Unavailable to the caller/);
    assert.equal(sql(srv, 'SELECT count(*) AS n FROM calls')[0].n, 0);
    for (let i = 0; i < 100 && srv.logLines('jambonz.bad_signature').length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    assert.equal(srv.logLines('jambonz.bad_signature').length, 1);
  });
});
