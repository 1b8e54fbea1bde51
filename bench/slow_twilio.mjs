// GET /health latency on one worker while Twilio (the fake, 5 s per create) holds 50
// initiates in flight: the REST client must never block the loop. Prints wrk's figures.
//   node bench/slow_twilio.mjs [seconds=5]   (after cmake --build build/bench; tests/node_modules installed)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeTwilio, TEST_ACCOUNT } from '../tests/fakes/twilio_api.mjs';
import { makeTestPki } from '../tests/fakes/tls.mjs';
import { token } from '../tests/integration/lib/jwt.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const secs = Number(process.argv[2] || 5);
const dir = mkdtempSync(join(tmpdir(), 'sb-bench-'));
const fake = await startFakeTwilio({ pki: makeTestPki(dir) });
fake.script({ match: { pathRegex: /Calls\.json$/ }, delayMs: 5000, times: Infinity });
const srv = spawn(join(root, 'build/bench/switchboard'), [], {
  cwd: dir,
  env: {
    PATH: process.env.PATH, PORT: '0', TLS_PORT: 'off', WORKERS: '1', BIND_ADDRESS: '127.0.0.1', LOG_LEVEL: 'warn',
    JWT_SECRET: 'integration-jwt-secret-0123456789abcdef', TWILIO_ACCOUNT_SID: TEST_ACCOUNT.sid,
    TWILIO_AUTH_TOKEN: TEST_ACCOUNT.authToken, TWILIO_PHONE_NUMBER: '+14155550100', TWILIO_API_BASE: fake.url,
    TWILIO_CA_FILE: fake.caFile, TWILIO_TIMEOUT_MS: '60000', PUBLIC_BASE_URL: 'https://voice.example.com',
  },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let log = '';
srv.stderr.on('data', (d) => (log += d));
// LOG_LEVEL=warn hides the listening line: find the port from /proc
let port = 0;
for (let i = 0; i < 200 && !port; i++) {
  await new Promise((r) => setTimeout(r, 25));
  const ss = spawnSync('ss', ['-ltnpH'], { encoding: 'utf8' }).stdout || '';
  const line = ss.split('\n').find((l) => l.includes(`pid=${srv.pid},`));
  if (line) port = Number(/127\.0\.0\.1:(\d+)/.exec(line)?.[1] || 0);
}
if (!port) throw new Error('server did not start: ' + log);
const url = `http://127.0.0.1:${port}`;
const tok = token();
const inflight = [];
for (let i = 0; i < 50; i++)
  inflight.push(fetch(url + '/api/calls/initiate', {
    method: 'POST', headers: { Authorization: 'Bearer ' + tok, 'Content-Type': 'application/json' },
    body: JSON.stringify({ customer_id: 'b' + i, phone: '+1415555' + String(1000 + i), agent_type: 'bench' }),
  }).then((r) => r.status));
await new Promise((r) => setTimeout(r, 300));
const wrk = spawnSync('wrk', ['-t1', '-c8', `-d${secs}s`, '--latency', url + '/health'], { encoding: 'utf8' });
const pending = fake.requests.filter((q) => /Calls\.json$/.test(q.path) && q.status === null).length;
console.log(wrk.stdout);
const p = (k) => (wrk.stdout.match(new RegExp(`${k}%\\s+(\\S+)`)) || [])[1];
console.log(`creates held by Twilio during the run: ${pending}`);
console.log(`GET /health on the same worker: p50 ${p(50)}  p99 ${p(99)}  (${(wrk.stdout.match(/Requests\/sec:\s+(\S+)/) || [])[1]} req/s)`);
const statuses = await Promise.all(inflight);
console.log(`initiates answered after the delay: ${statuses.filter((s) => s === 201).length}/50 with 201`);
srv.kill('SIGTERM');
await new Promise((r) => srv.on('exit', r));
await fake.close();
rmSync(dir, { recursive: true, force: true });
