// N concurrent calls through the media bridge to the echo agent, at real-time pace: each
// call streams 20 ms frames whose payload carries (call, sequence); the echo comes back
// ECHO_DELAY_MS later. Reports the added latency (Twilio-in to Twilio-out, minus the echo's
// own delay), frames lost, and the server's CPU and RSS per call (from /proc).
//   node bench/bridge_load.mjs [calls=1000] [seconds=10]
// (after cmake --build build/bench; needs tests/node_modules for ws)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from '../tests/node_modules/ws/index.js';

const ECHO_DELAY_MS = 100;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.argv[2] || 1000), SECS = Number(process.argv[3] || 10);
const dir = mkdtempSync(join(tmpdir(), 'sb-bridge-'));
const srv = spawn(join(root, 'build/bench/switchboard'), [], {
  cwd: dir, stdio: ['ignore', 'ignore', 'pipe'],
  env: { PATH: process.env.PATH, PORT: '0', TLS_PORT: 'off', WORKERS: '1', BIND_ADDRESS: '127.0.0.1', LOG_LEVEL: 'warn',
    AI_PROVIDER: 'echo', MAX_CONCURRENT_CALLS: '0', SILENCE_TIMEOUT_S: '3600' },
});
let log = '';
srv.stderr.on('data', (d) => (log += d));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let port = 0;
for (let i = 0; i < 200 && !port; i++) {
  await sleep(25);
  try {
    const tcp = readFileSync('/proc/net/tcp', 'utf8'); // find our listener by inode of the pid's sockets
    const inodes = new Set();
    for (const fd of (await import('node:fs')).readdirSync(`/proc/${srv.pid}/fd`)) {
      try { const l = (await import('node:fs')).readlinkSync(`/proc/${srv.pid}/fd/${fd}`); const m = /socket:\[(\d+)\]/.exec(l); if (m) inodes.add(m[1]); } catch {}
    }
    for (const line of tcp.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9])) port = parseInt(f[1].split(':')[1], 16);
    }
  } catch {}
}
if (!port) throw new Error('server did not start: ' + log);
const base = `http://127.0.0.1:${port}`;

function cpuTicks() {
  const f = readFileSync(`/proc/${srv.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}
function rssKiB() {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${srv.pid}/status`, 'utf8'))[1]);
}

const rss0 = rssKiB();
const calls = [];
const lat = [];
let sent = 0, received = 0;
for (let c = 0; c < N; c++) {
  const sid = 'CA' + c.toString(16).padStart(32, '0');
  const r = await fetch(base + '/twilio/voice', { method: 'POST', body: new URLSearchParams({ CallSid: sid, From: '+14155550111', To: '+14155550100' }) });
  const session = /name="session_id" value="([0-9a-f]{32})"/.exec(await r.text())[1];
  const ws = new WebSocket(base.replace('http', 'ws') + '/twilio/media', { perMessageDeflate: false });
  const call = { c, ws, sentAt: new Map(), stream: 'MZ' + c.toString(16).padStart(32, '0') };
  ws.on('message', (d) => {
    const s = d.toString();
    if (!s.startsWith('{"event":"media"')) return;
    const p = Buffer.from(JSON.parse(s).media.payload, 'base64');
    const seq = p.readUInt32BE(4);
    const t0 = call.sentAt.get(seq);
    if (t0 !== undefined) {
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6 - ECHO_DELAY_MS);
      call.sentAt.delete(seq);
      received++;
    }
  });
  await new Promise((res) => ws.on('open', res));
  ws.send(JSON.stringify({ event: 'start', streamSid: call.stream, start: { streamSid: call.stream, callSid: sid, customParameters: { session_id: session }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } }));
  calls.push(call);
}
const rss1 = rssKiB();
console.log(`${N} calls set up; RSS ${rss0} KiB idle, ${rss1} KiB with the calls open`);
await sleep(300);
const frame = Buffer.alloc(160, 0x7e);
const cpu0 = cpuTicks(), t0 = Date.now();
let seq = 0, rssMax = 0;
const start = process.hrtime.bigint();
for (let tick = 0; tick < SECS * 50; tick++) {
  for (const call of calls) {
    frame.writeUInt32BE(call.c, 0);
    frame.writeUInt32BE(seq, 4);
    call.sentAt.set(seq, process.hrtime.bigint());
    call.ws.send(`{"event":"media","streamSid":"${call.stream}","media":{"track":"inbound","chunk":"${seq}","timestamp":"${seq * 20}","payload":"${frame.toString('base64')}"}}`);
    sent++;
  }
  seq++;
  if (tick % 50 === 0) rssMax = Math.max(rssMax, rssKiB());
  const due = start + BigInt((tick + 1) * 20) * 1000000n; // drift-free 20 ms clock
  const wait = Number(due - process.hrtime.bigint()) / 1e6;
  if (wait > 0) await sleep(wait);
}
await sleep(500);
const secs = (Date.now() - t0) / 1000;
const cpu = (cpuTicks() - cpu0) / 100 / secs; // cores busy
lat.sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]?.toFixed(2);
console.log(`frames sent ${sent}, echoed back ${received} (${(100 * (sent - received) / sent).toFixed(2)} % lost)`);
console.log(`added latency Twilio-in to Twilio-out (echo delay removed): p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${lat.at(-1)?.toFixed(2)} ms`);
console.log(`server CPU ${(cpu * 100).toFixed(1)} % of a core (${((cpu * 1000) / N).toFixed(3)} ms per call-second); RSS peak ${rssMax} KiB, ${(((rssMax - rss0) * 1024) / N / 1024).toFixed(1)} KiB per call`);
for (const call of calls) call.ws.terminate();
srv.kill('SIGTERM');
await new Promise((r) => srv.on('exit', r));
if (process.env.KEEP) console.log("kept", dir); else rmSync(dir, { recursive: true, force: true });
