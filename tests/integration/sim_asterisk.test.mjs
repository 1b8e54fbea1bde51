// `switchboard-sim asterisk` (tools/sim/cli.mjs) run as a child process against the real
// server, as a user would run the two: an echo call over ExternalMedia RTP with the agent audio
// saved, a DTMF transfer through a busy target and an answering one, the --json report, and the
// command's failures (no server, bad usage).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, sqlite, cleanup, tempDir } from './lib/harness.mjs';
import { readWavFile, durationMs, isSilent } from '../../tools/sim/index.mjs';

const CLI = fileURLToPath(new URL('../../tools/sim/cli.mjs', import.meta.url));
// RTP ports of these servers, apart from asterisk.test.mjs's (30000-37999); one server at a time
const RTP = { RTP_PORT_MIN: '42000', RTP_PORT_MAX: '42099' };

const dir = tempDir();
after(() => cleanup(dir));

// A port nobody listens on, for the simulator's --listen (the server is told it beforehand or after).
async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

// Starts the CLI; `done` resolves {code, stdout, stderr}. A clean environment: nothing leaks in.
function sim(args, { timeoutMs = 60000 } = {}) {
  const child = spawn(process.execPath, [CLI, 'asterisk', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = { child, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (p.stdout += d));
  child.stderr.on('data', (d) => (p.stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  p.done = new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? `signal ${signal}`, stdout: p.stdout, stderr: p.stderr });
    }),
  );
  return p;
}
const show = (r) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

async function waitFor(fn, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`not met in ${timeoutMs} ms: ${fn}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// The settings line the simulator prints ("  ARI_URL=... ASTERISK_TRUNK=...") as an environment.
async function printedEnv(p) {
  const line = (await waitFor(() => /^ {2}(ARI_URL=.*)$/m.exec(p.stdout + p.stderr), 15000))[1];
  return Object.fromEntries(line.trim().split(/\s+/).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

async function withServer(env, fn) {
  const srv = await startServer({ env: { TLS_PORT: 'off', WORKERS: '2', AI_PROVIDER: 'echo', ...RTP, ...env } });
  try {
    return await fn(srv);
  } finally {
    const r = await srv.stop();
    assert.equal(r.code, 0, srv.stderr);
    cleanup(srv.dir);
  }
}
const db = (srv) => join(srv.dir, 'data', 'switchboard.db');

test('an echo call: the simulator first, then the server with the settings it printed; RTP both ways, exit 0, agent audio saved', async () => {
  const port = await freePort();
  const out = join(dir, 'agent.wav');
  const p = sim(['--listen', `127.0.0.1:${port}`, '--hangup-after', '4s', '--save', out]);
  const env = await printedEnv(p);
  assert.deepEqual(env, {
    ARI_URL: `http://127.0.0.1:${port}`, ARI_USERNAME: 'switchboard', ARI_PASSWORD: 'switchboard-sim', ARI_APP: 'switchboard',
    RTP_ADDRESS: '127.0.0.1', ASTERISK_TRUNK: 'didww',
  });
  await withServer(env, async (srv) => {
    const r = await p.done;
    assert.equal(r.code, 0, show(r));
    const o = r.stdout;
    for (const re of [
      /switchboard connected: events socket for switchboard \(user switchboard\)/,
      /·  a call from \+14155550100 to \+14155550199 on the trunk didww: the dialplan runs Stasis\(switchboard\)/,
      /→  StasisStart  caller \d+\.\d+\n/,
      /←  POST \/channels\/\d+\.\d+\/answer  → 204 No Content/,
      /←  POST \/bridges  type=mixing bridgeId=sbb-[0-9a-f]{8}… name=[0-9a-f]{8}…  → 200 OK/,
      /←  POST \/bridges\/sbb-[0-9a-f]{8}…\/addChannel  channel=\d+\.\d+  → 204/,
      /←  POST \/channels\/externalMedia  external_host=127\.0\.0\.1:420\d\d format=ulaw rtp\/udp direction=both channelId=sbem-[0-9a-f]{8}…  → 200 OK, RTP from 127\.0\.0\.1:\d+/,
      /→  StasisStart  ExternalMedia sbem-[0-9a-f]{8}…/,
      /←  POST \/bridges\/sbb-[0-9a-f]{8}…\/addChannel  channel=sbem-[0-9a-f]{8}…  → 204/,
      /→  RTP  127\.0\.0\.1:\d+ → 127\.0\.0\.1:420\d\d  the caller starts talking \(PCMU, 20 ms packets\)/,
      /←  RTP  from 127\.0\.0\.1:420\d\d: pt 0, 160 bytes, SSRC 0x[0-9a-f]{8}\n/,
      /←  RTP  the agent talks/,
      /·  rtp  → \d+ packets \([\d.]+ s\)   ← \d+ packets \([\d.]+ s\) pt 0   jitter [\d.]+ ms/,
      /·  the caller hangs up\n.*→  ChannelHangupRequest  caller \d+\.\d+  cause 16/,
      /←  DELETE \/channels\/sbem-[0-9a-f]{8}…  reason=normal  → 204/,
      /←  DELETE \/bridges\/sbb-[0-9a-f]{8}…  → 204/,
      /·  call ended: the caller hung up, cause 16 Normal Clearing/,
      /^rtp sbem-[0-9a-f]{8}…: sent \d+ packets \(3 s of caller audio\) to 127\.0\.0\.1:420\d\d, received \d+ \(pt 0, 160 bytes, [\d.]+ s of agent audio\) from 127\.0\.0\.1:420\d\d; lost 0/m,
      /^echo: \d+ of \d+ caller frames came back, round trip p50 [\d.]+ ms p99 [\d.]+ ms$/m,
      /^agent audio: .*agent\.wav \([\d.]+ s\)$/m,
      /^result: completed as expected$/m,
    ])
      assert.match(o, re);
    // times run forward from 0
    const times = [...o.matchAll(/^ +(\d+\.\d{3})s  /gm)].map((m) => Number(m[1]));
    assert.ok(times.length > 15 && times.every((t, i) => i === 0 || t >= times[i - 1] - 0.002), o);
    // the agent's audio, as RTP brought it: the echo of the caller's tones
    const agent = readWavFile(out);
    assert.ok(durationMs(agent) > 2000, `agent audio ${durationMs(agent)} ms`);
    assert.ok(!isSilent(agent), 'the echo came back');
    const channel = /→  StasisStart  caller (\d+\.\d+)/.exec(o)[1];
    await waitFor(() => sqlite(db(srv), `SELECT platform || ',' || status FROM calls WHERE call_sid='${channel}'`) === 'asterisk,completed');
  });
});

test('DTMF 0 asks for a person: the server first; PJSIP/2000 busy, then +14155550123 through the trunk answers', async () => {
  const port = await freePort();
  await withServer({
    ARI_URL: `http://127.0.0.1:${port}`, ARI_USERNAME: 'switchboard', ARI_PASSWORD: 'switchboard-sim', ARI_APP: 'switchboard',
    RTP_ADDRESS: '127.0.0.1', ASTERISK_TRUNK: 'didww', PRIMARY_TRANSFER_TARGET: 'PJSIP/2000', SECONDARY_TRANSFER_TARGET: '+14155550123',
  }, async (srv) => {
    const r = await sim(['--listen', `127.0.0.1:${port}`, '--dtmf', '0@1s', '--dial-outcome', 'busy,answer', '--speed', '10']).done;
    assert.equal(r.code, 0, show(r));
    const o = r.stdout;
    assert.match(o, /→  ChannelDtmfReceived  0  caller \d+\.\d+\n/);
    assert.match(o, /←  DELETE \/channels\/sbem-[0-9a-f]{8}…  reason=normal  → 204/);
    assert.match(o, /←  POST \/channels\/\d+\.\d+\/ring  → 204/);
    // both originates, in order, each with the caller's number and the transfer timeout
    const originates = [...o.matchAll(/←  POST \/channels  endpoint=(\S+) callerId=(\S+) timeout=(\d+) appArgs=transfer channelId=sbx-[0-9a-f]{8}…-(\d)  → 200 OK/g)];
    assert.deepEqual(originates.map((m) => [m[1], m[2], m[4]]), [['PJSIP/2000', '+14155550100', '0'], ['PJSIP/+14155550123@didww', '+14155550100', '1']], o);
    assert.match(o, /·  PJSIP\/2000 rings  \(simulated outcome: busy after 0\.2 s\)\n.*→  ChannelDestroyed  PJSIP\/2000 \(sbx-[0-9a-f]{8}…-0\)  cause 17 User busy/);
    assert.match(o, /·  PJSIP\/\+14155550123@didww rings  \(simulated outcome: answer after 0\.2 s\)/);
    assert.match(o, /→  StasisStart  PJSIP\/\+14155550123@didww \(sbx-[0-9a-f]{8}…-1\)  args transfer\n.*·  PJSIP\/\+14155550123@didww answers/);
    assert.match(o, /←  DELETE \/channels\/\d+\.\d+\/ring  → 204/);
    assert.match(o, /←  POST \/bridges\/sbb-[0-9a-f]{8}…\/addChannel  channel=sbx-[0-9a-f]{8}…-1  → 204/);
    // the target hangs up after its (simulated) 5 s of talk: switchboard hangs the caller up
    assert.match(o, /·  PJSIP\/\+14155550123@didww hangs up \(after 5 s of talk\)\n(.*\n)*.*←  DELETE \/channels\/\d+\.\d+  reason=normal  → 204/);
    assert.match(o, /·  call ended: the transfer target hung up, then switchboard/);
    assert.match(o, /^transfers: PJSIP\/2000 busy; PJSIP\/\+14155550123@didww answered \(5 s\)$/m);
    assert.match(o, /^dtmf: 0@1s$/m);
    assert.match(o, /^result: completed as expected$/m);
    const channel = /→  StasisStart  caller (\d+\.\d+)/.exec(o)[1];
    await waitFor(() => sqlite(db(srv), `SELECT status FROM calls WHERE call_sid='${channel}'`) === 'completed');
    const outcomes = sqlite(db(srv), `SELECT group_concat(json_extract(detail, '$.outcome'), ',') FROM (SELECT detail FROM call_events JOIN calls ON calls.id = call_id WHERE call_sid='${channel}' AND type = 'transfer.outcome' ORDER BY call_events.id) AS t`);
    assert.equal(outcomes, 'busy,completed');
  });
});

test('--json: one JSON object on stdout (the settings on stderr) with the RTP figures, the echo, the keys and every request', async () => {
  const port = await freePort();
  const p = sim(['--listen', `127.0.0.1:${port}`, '--json', '--hangup-after', '2s', '--dtmf', '5@500ms', '--username', 'sb', '--password', 'pw-1', '--trunk', 'carrier']);
  const env = await printedEnv(p);
  assert.deepEqual([env.ARI_USERNAME, env.ARI_PASSWORD, env.ASTERISK_TRUNK], ['sb', 'pw-1', 'carrier']);
  await withServer(env, async () => {
    const r = await p.done;
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /start the server with:/);
    const j = JSON.parse(r.stdout);
    assert.equal(j.ok, true);
    assert.equal(j.exitCode, 0);
    assert.equal(j.reason, 'completed as expected');
    assert.deepEqual(j.env, env);
    assert.equal(j.answered, true);
    assert.equal(j.endedBy, 'caller');
    assert.equal(j.cause, 16);
    assert.match(j.session, /^[0-9a-f]{32}$/);
    assert.equal(j.legs.length, 1);
    const l = j.legs[0];
    assert.equal(l.channel, `sbem-${j.session}`);
    assert.match(l.remote, /^127\.0\.0\.1:420\d\d$/);
    assert.equal(l.from, l.remote, 'RTP comes from the address switchboard gave as external_host');
    assert.ok(l.sent > 80 && l.received > 80, JSON.stringify(l));
    assert.deepEqual(Object.keys(l.payloadTypes), ['0']);
    assert.deepEqual(Object.keys(l.sizes), ['160']);
    assert.equal(l.lost, 0);
    assert.equal(j.echo.echoed, true);
    assert.ok(j.echo.p50 > 0 && j.echo.p99 >= j.echo.p50);
    assert.deepEqual(j.dtmf.map((k) => [k.digit, k.atMs, k.sent]), [['5', 500, true]]);
    assert.ok(j.events.some((e) => e.type === 'ChannelDtmfReceived' && e.digit === '5'));
    assert.deepEqual(j.requests.map((q) => `${q.method} ${q.kind}`).slice(0, 5), ['POST answer', 'POST bridge', 'POST addChannel', 'POST externalMedia', 'POST addChannel']);
    assert.equal(j.requests.find((q) => q.kind === 'externalMedia').params.format, 'ulaw');
    assert.deepEqual(j.restErrors, []);
    assert.deepEqual(j.leftovers, []);
    assert.ok(j.timeline.some((e) => e.event === 'rtp-start') && j.timeline.at(-1).event === 'call-ended');
  });
});

test('failures: nobody connects within --wait (exit 1, the settings repeated), a bad option (exit 2)', async () => {
  const port = await freePort();
  const r = await sim(['--listen', `127.0.0.1:${port}`, '--wait', '500ms']).done;
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /result: FAILED: switchboard did not register the application switchboard within 0\.5 s\n {2}start it with ARI_URL=http:\/\/127\.0\.0\.1:\d+ ARI_USERNAME=switchboard/);
  const u = await sim(['--dial-outcome', 'busy,maybe']).done;
  assert.equal(u.code, 2, show(u));
  assert.match(u.stderr, /--dial-outcome: "maybe" is not one of answer, busy, noanswer, failed, rejected/);
});
