// switchboard-sim's command line (tools/switchboard-sim) run as a child process against the
// real server: an AI call with the echo agent, a transfer with fallback outcomes, a DTMF
// transfer, an outbound call through `answer`, and a call signed with the wrong auth token.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, sqlite, cleanup, tempDir, sleep } from './lib/harness.mjs';
import { JWT_SECRET, api } from './lib/jwt.mjs';
import { readWavFile, durationMs, isSilent, encodeWavPcm16 } from '../../tools/sim/index.mjs';

const SIM = fileURLToPath(new URL('../../tools/switchboard-sim', import.meta.url));
const PUBLIC = 'https://voice.example.com';
const TOKEN = 'sim-cli-auth-token-0123456789abcdef';
const PRIMARY = 'sip:2000@pbx.example.com';
const SECONDARY = '+14155550123';

const dir = tempDir();
const servers = [];
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
  cleanup(dir);
});

async function server(env) {
  const srv = await startServer({ env: { TLS_PORT: 'off', PUBLIC_BASE_URL: PUBLIC, TWILIO_AUTH_TOKEN: TOKEN, ...env } });
  servers.push(srv);
  return srv;
}
const db = (srv) => join(srv.dir, 'data', 'switchboard.db');

// Starts the CLI; `done` resolves {code, stdout, stderr}. Its environment is clean: no
// TWILIO_AUTH_TOKEN or PUBLIC_BASE_URL leaks in as a default.
function start(args, { timeoutMs = 30000 } = {}) {
  const child = spawn(SIM, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] });
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
const run = (args, opts) => start(args, opts).done;
const show = (r) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
const signed = (srv) => ['--url', srv.url, '--public-url', PUBLIC, '--auth-token', TOKEN];

async function waitFor(fn, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`not met in ${timeoutMs} ms: ${fn}`);
    await sleep(20);
  }
}

// The echo server of three tests: AI echo, a primary transfer target for DTMF 0.
let echoSrv;
const echoServer = async () => (echoSrv ??= await server({ AI_PROVIDER: 'echo', PRIMARY_TRANSFER_TARGET: PRIMARY }));

test('an AI call with the echo agent: exit 0, the timeline shows the stream, the agent audio is saved', async () => {
  const srv = await echoServer();
  // 1.5 s of 440 Hz at 16 kHz PCM16: the CLI converts it to 8 kHz mu-law
  const rate = 16000;
  const pcm = Int16Array.from({ length: rate * 1.5 }, (_, i) => Math.round(12000 * Math.sin((2 * Math.PI * 440 * i) / rate)));
  writeFileSync(join(dir, 'in.wav'), encodeWavPcm16(pcm, { sampleRate: rate }));
  const out = join(dir, 'agent.wav');
  const r = await run(['call', ...signed(srv), '--audio', join(dir, 'in.wav'), '--save', out, '--hangup-after', '3s']);
  assert.equal(r.code, 0, show(r));
  const o = r.stdout;
  for (const re of [
    /→  POST \/twilio\/status  status callback \(ringing\)/,
    /→  POST \/twilio\/voice  voice webhook\n.*←  200 OK/,
    /·  <Connect><Stream> wss:\/\/voice\.example\.com\/twilio\/media  session_id=[0-9a-f]{32} tenant_id=1/,
    /→  GET \/twilio\/media  WebSocket upgrade, signed\n.*←  101 Switching Protocols/,
    /→  connected\n.*→  start  MZ/,
    /→  media  the caller starts talking/,
    /←  media  the agent talks/,
    /·  stream  → \d+ media \([\d.]+ s\)   ← \d+ media \([\d.]+ s\)   marks \d+ ← \/ \d+ →/,
    /·  the caller hangs up\n.*→  stop/,
    /·  call ended: completed/,
    /→  POST \/twilio\/status  status callback \(completed\)\n.*←  200 OK/,
    /result: completed as expected/,
  ])
    assert.match(o, re);
  // times run forward from 0
  const times = [...o.matchAll(/^ +(\d+\.\d{3})s  /gm)].map((m) => Number(m[1]));
  assert.ok(times.length > 15 && times.every((t, i) => i === 0 || t >= times[i - 1] - 0.002), o);
  const agent = readWavFile(out);
  assert.ok(durationMs(agent) > 1400, `agent audio ${durationMs(agent)} ms`);
  assert.ok(!isSilent(agent), 'the echo came back');
  const sid = /call (CA[0-9a-f]{32})/.exec(o)[1];
  await waitFor(() => sqlite(db(srv), `SELECT status FROM calls WHERE call_sid='${sid}'`) === 'completed');
});

test('a transfer with fallback: the primary is busy, the secondary answers', async () => {
  const srv = await server({ AI_PROVIDER: 'none', PRIMARY_TRANSFER_TARGET: PRIMARY, SECONDARY_TRANSFER_TARGET: SECONDARY });
  const r = await run(['call', ...signed(srv), '--dial-outcome', 'busy,completed', '--speed', '20', '--json']);
  assert.equal(r.code, 0, show(r));
  const j = JSON.parse(r.stdout);
  assert.equal(j.ok, true);
  assert.equal(j.status, 'completed');
  assert.deepEqual(j.dials.map((d) => [d.kind, d.target, d.status]), [['sip', PRIMARY, 'busy'], ['number', SECONDARY, 'completed']]);
  const actions = j.requests.filter((q) => q.kind === 'dial-action');
  assert.deepEqual(actions.map((q) => [q.status, q.params.DialCallStatus]), [[200, 'busy'], [200, 'completed']]);
  assert.equal(actions[0].params.DialSipResponseCode, '486');
  assert.ok(j.timeline.some((e) => e.event === 'Hangup'));
  // the human form says the same
  const h = await run(['call', ...signed(srv), '--dial-outcome', 'busy,completed', '--speed', '20']);
  assert.equal(h.code, 0, show(h));
  assert.match(h.stdout, /<Dial> sip:2000@pbx\.example\.com .*simulated outcome: busy\n(.*\n)*.*<Dial> \+14155550123 .*simulated outcome: completed/);
  assert.match(h.stdout, /dials: sip:2000@pbx\.example\.com busy; \+14155550123 completed/);
  // an outcome the call never used is not what was asked
  const u = await run(['call', ...signed(srv), '--dial-outcome', 'busy,completed,completed', '--speed', '20']);
  assert.equal(u.code, 1, show(u));
  assert.match(u.stderr, /--dial-outcome: 3 outcome\(s\) given, but the call had 2 <Dial>/);
});

test('DTMF transfer: the caller presses 0, the server closes the stream, the Dial follows', async () => {
  const srv = await echoServer();
  const r = await run(['call', ...signed(srv), '--dtmf', '0@1s', '--speed', '20', '--json']);
  assert.equal(r.code, 0, show(r));
  const j = JSON.parse(r.stdout);
  assert.equal(j.streams.length, 1);
  assert.equal(j.streams[0].closedBy, 'server');
  assert.equal(j.streams[0].stats.dtmfSent, 1);
  const ev = j.timeline.map((e) => e.event);
  const dtmfAt = ev.indexOf('dtmf');
  const closeAt = ev.indexOf('ws-close');
  const dialAt = ev.indexOf('Dial');
  assert.ok(dtmfAt >= 0 && dtmfAt < closeAt && closeAt < dialAt, ev.join(' '));
  const dtmf = j.timeline[dtmfAt];
  assert.ok(dtmf.t >= 1000 && dtmf.t < 1600, `dtmf at ${dtmf.t} ms`);
  assert.equal(j.requests.find((q) => q.kind === 'connect-action').status, 200);
  assert.deepEqual(j.dials.map((d) => [d.target, d.status]), [[PRIMARY, 'completed']]);
});

// A port nobody listens on, for a server that must be named before it starts.
async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

test('an outbound call through answer: the callee answers the connect webhook with the stream, callbacks are accepted', async () => {
  // as a user would: answer first, then the server with the environment it prints
  const port = await freePort();
  const answer = start(['answer', '--json', '--pki-dir', join(dir, 'pki'), '--public-url', PUBLIC, '--server-url', `http://127.0.0.1:${port}`,
    '--ring', '50ms', '--hangup-after', '2s', '--calls', '1', '--timeout', '25s']);
  const listening = JSON.parse((await waitFor(() => /^(\{"type":"listening".*)$/m.exec(answer.stdout), 15000))[1]);
  assert.match(listening.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(listening.caFile, join(dir, 'pki', 'ca.pem'));
  const srv = await server({ ...listening.env, PORT: String(port), TWILIO_PHONE_NUMBER: '+14155550100', JWT_SECRET, AI_PROVIDER: 'echo' });
  const init = await api(srv, 'POST', '/api/calls/initiate', { body: { customer_id: 'c-1', phone: '+14155550123', agent_type: 'sales' } });
  assert.equal(init.status, 201, init.text);
  assert.equal(init.json.twilio_configured, true);
  const { session_id: session, call_sid: sid } = init.json;

  const r = await answer.done;
  assert.equal(r.code, 0, show(r));
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const events = lines.filter((l) => l.type === 'event' && l.callSid === sid);
  const create = events.find((e) => e.event === 'rest');
  assert.equal(create.status, 201);
  assert.ok(create.fields.includes('To=+14155550123'));
  // the connect webhook, answered with the AI stream carrying the session
  const hook = events.findIndex((e) => e.event === 'http' && e.kind === 'voice');
  assert.equal(events[hook].url, `${PUBLIC}/twilio/connect/${session}`);
  assert.equal(events.find((e, i) => i > hook && e.event === 'http-response').status, 200);
  const stream = events.find((e) => e.event === 'Stream');
  assert.equal(stream.url, 'wss://voice.example.com/twilio/media');
  assert.deepEqual(stream.parameters, { session_id: session, tenant_id: '1', agent_type: 'sales' });
  assert.ok(events.some((e) => e.event === 'agent-audio'), 'the echo agent talked');
  // status callbacks, in order, all accepted
  const ended = lines.find((l) => l.type === 'call-ended');
  assert.equal(ended.ok, true, ended.reason);
  assert.equal(ended.status, 'completed');
  const status = ended.webhooks.filter((w) => w.kind.startsWith('status:'));
  assert.deepEqual(status.map((w) => [w.kind, w.params.CallStatus, w.params.SequenceNumber, w.status]), [
    ['status:initiated', 'initiated', '0', 200],
    ['status:ringing', 'ringing', '1', 200],
    ['status:answered', 'in-progress', '2', 200],
    ['status:completed', 'completed', '3', 200],
  ]);
  assert.ok(ended.result.streams[0].stats.framesReceived > 50);
  await waitFor(() => sqlite(db(srv), `SELECT status FROM calls WHERE session_id='${session}'`) === 'completed');
  assert.equal(sqlite(db(srv), `SELECT call_sid FROM calls WHERE session_id='${session}'`), sid);
});

test('a server with another auth token: exit 3, the refused signature is reported clearly', async () => {
  const srv = await echoServer();
  const r = await run(['call', '--url', srv.url, '--public-url', PUBLIC, '--auth-token', 'not-the-servers-token']);
  assert.equal(r.code, 3, show(r));
  assert.match(r.stdout, /←  403 Forbidden .*the server refused the signature/);
  assert.match(r.stderr, /FAILED: the server refused the signature: HTTP 403 on POST https:\/\/voice\.example\.com\/twilio\/voice/);
  assert.match(r.stderr, /check --auth-token: it must be the server's TWILIO_AUTH_TOKEN/);
  assert.match(r.stderr, /check --public-url: it must be the server's PUBLIC_BASE_URL/);
  // and unsigned: told to sign
  const u = await run(['call', '--url', srv.url]);
  assert.equal(u.code, 3, show(u));
  assert.match(u.stderr, /refused the unsigned request: HTTP 403 .*\n.*not signed.*\n.*pass --auth-token/);
  // the server logged the refusals (the voice webhook, the status callbacks)
  assert.ok(srv.logLines('twilio.bad_signature').some((l) => /path="?\/twilio\/voice/.test(l)), srv.stderr);
});

test('load: concurrent simulated calls through the echo agent, reported as JSON', async () => {
  const { startServer: start2, cleanup: clean2 } = await import('./lib/harness.mjs');
  const { spawnSync: run } = await import('node:child_process');
  const srv = await start2({ env: { AI_PROVIDER: 'echo', TLS_PORT: 'off', WORKERS: '1', MAX_CONCURRENT_CALLS: '0' } });
  try {
    const sim = new URL('../../tools/switchboard-sim', import.meta.url).pathname;
    const r = run(sim, ['load', '--url', srv.url, '--calls', '20', '--ramp', '40', '--duration', '2', '--pid', String(srv.proc.pid), '--json'],
      { encoding: 'utf8', timeout: 60000, env: { ...process.env } });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    // every call set up, its frames echoed, latency and the server's CPU/RSS measured
    assert.equal(report.calls.set_up, 20);
    assert.equal(report.calls.failed, 0);
    assert.equal(report.ok, true);
    assert.ok(report.frames.window_sent >= 20 * 2 * 50 * 0.9, JSON.stringify(report.frames));
    assert.ok(report.frames.loss_pct < 1);
    assert.ok(report.added_latency_ms.n > 0 && report.added_latency_ms.p99 >= report.added_latency_ms.p50);
    assert.equal(report.server.pid, srv.proc.pid);
    assert.ok(report.server.rss_peak_kib > 0 && report.server.cpu_pct >= 0);
  } finally {
    assert.equal((await srv.stop()).code, 0);
    clean2(srv.dir);
  }
});
