// switchboard-sim-load --openai-port: the load generator also plays OpenAI's Realtime server
// (tools/sim/load_openai.c, on a thread of its own) for a switchboard with AI_PROVIDER=openai.
// Calls go through the real server both ways (Twilio in, Realtime out and back, Twilio out)
// and the report counts what the fake saw; the fake refuses what is not a WebSocket upgrade
// and closes a connection that breaks the protocol.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { get } from 'node:http';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startServer, cleanup, sleep, BIN } from './lib/harness.mjs';

// CTest sets SWITCHBOARD_SIM_LOAD; by hand, it is built next to the server
const LOAD = process.env.SWITCHBOARD_SIM_LOAD || join(dirname(BIN), 'switchboard-sim-load');

const servers = [];
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
});

// A loopback port nobody listens on (the kernel's pick, released at once)
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// The server under test, its Realtime socket pointed at the fake
async function server(fakePort) {
  const srv = await startServer({
    env: {
      AI_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', OPENAI_REALTIME_URL: `ws://127.0.0.1:${fakePort}/v1/realtime`,
      MAX_CONCURRENT_CALLS: '0', SILENCE_TIMEOUT_S: '3600', TLS_PORT: 'off', WORKERS: '1',
    },
  });
  servers.push(srv);
  return srv;
}

// The load generator as a child: `done` resolves {code, stdout, stderr}
function load(args) {
  const p = spawn(LOAD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const done = new Promise((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr })));
  return { proc: p, done };
}
const show = (r) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

// Resolves once something listens on the port
async function listening(port, ms = 10000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`nothing listens on ${port}`);
}

// Raw bytes to the fake and everything it answers until it closes
function exchange(port, chunks) {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const got = [];
    s.on('connect', async () => {
      for (const c of chunks) {
        s.write(c);
        await sleep(50);
      }
    });
    s.on('data', (d) => got.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(got)));
    s.setTimeout(5000, () => {
      s.destroy();
      reject(new Error('the fake did not close the connection'));
    });
  });
}

test('5 calls through switchboard and the fake OpenAI: every append echoed as a delta', async () => {
  assert.ok(existsSync(LOAD), `no load generator at ${LOAD} (SWITCHBOARD_SIM_LOAD)`);
  const port = await freePort();
  const srv = await server(port);
  const r = await load(['--url', srv.url, '--calls', '5', '--duration', '3', '--openai-port', String(port),
    '--pid', String(srv.proc.pid), '--json']).done;
  assert.equal(r.code, 0, show(r));
  const rep = JSON.parse(r.stdout);
  assert.equal(rep.calls.set_up, 5, show(r));
  assert.equal(rep.calls.failed, 0, show(r));
  assert.equal(rep.calls.dropped, 0, show(r));
  const o = rep.openai;
  assert.ok(o, show(r));
  assert.equal(o.port, port);
  assert.equal(o.delay_ms, 100); // the echo delay's default
  assert.equal(o.accepted, 5, show(r));
  assert.equal(o.upgraded, 5, show(r));
  assert.equal(o.bad_handshakes, 0, show(r));
  assert.equal(o.protocol_errors, 0, show(r));
  // about 50 appends a second per call over the window; each came back unless its call ended first
  assert.ok(o.appends >= 5 * 3 * 50 * 0.8, show(r));
  assert.ok(o.deltas > 0 && o.deltas + o.dropped + o.expired === o.appends, show(r));
  assert.equal(o.dropped, 0, show(r));
  assert.ok(o.other >= 10, show(r)); // at least a session.update and a response.create per call
  assert.ok(o.cpu_pct >= 0);
  // the echoed frames matched their tags, and the fake's delay is not in the latency
  assert.ok(rep.frames.window_echoed > 0, show(r));
  assert.ok(rep.frames.loss_pct < 1, show(r));
  assert.equal(rep.frames.unmatched, 0, show(r));
  const lat = rep.added_latency_ms;
  assert.ok(lat.n > 0 && Number.isFinite(lat.p50) && lat.p50 > -2 && lat.p50 < 50, JSON.stringify(lat));
  assert.equal(rep.ok, true);
  // the server found nothing wrong with what the fake said
  assert.doesNotMatch(srv.stderr, /event=openai\.(error|bad_message|response_failed)/, srv.stderr);
});

test('the fake refuses what is not an upgrade (400) and closes a connection that breaks the protocol', async () => {
  const port = await freePort();
  const srv = await server(port);
  const run = load(['--url', srv.url, '--calls', '1', '--duration', '2', '--openai-port', String(port), '--json']);
  try {
    await listening(port);
    // a plain GET: 400, and the connection closes
    const res = await new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/v1/realtime?model=x', agent: false }, (m) => {
        let body = '';
        m.on('data', (d) => (body += d));
        m.on('end', () => resolve({ status: m.statusCode, body }));
      }).on('error', reject);
    });
    assert.equal(res.status, 400);
    assert.match(res.body, /not a WebSocket upgrade/);
    // an upgrade, then an unmasked frame: close 1002
    const key = Buffer.from('0123456789abcdef').toString('base64');
    const out = await exchange(port, [
      `GET /v1/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
        'Sec-WebSocket-Version: 13\r\n\r\n',
      Buffer.from([0x81, 0x02, 0x7b, 0x7d]), // {} unmasked
    ]);
    const text = out.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(text, /Sec-WebSocket-Accept: BACScCJPNqyz\+UBoqMH89VmURoA=\r\n/i);
    assert.match(text, /"type":"session\.created"/);
    const close = out.subarray(out.length - 4);
    assert.deepEqual([...close], [0x88, 0x02, 0x03, 0xea]); // close, 1002
  } catch (e) {
    run.proc.kill();
    throw e;
  }
  // the run went on regardless, and counted both
  const r = await run.done;
  assert.equal(r.code, 0, show(r));
  const o = JSON.parse(r.stdout).openai;
  assert.equal(o.bad_handshakes, 1, show(r));
  assert.equal(o.protocol_errors, 1, show(r));
  assert.equal(o.upgraded, 2, show(r)); // the call's and ours
});
