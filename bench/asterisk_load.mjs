// N concurrent Asterisk calls through switchboard's RTP leg to the echo agent, at real-time
// pace. The fake Asterisk (tests/fakes/asterisk_ari.mjs, which re-exports tools/sim/asterisk.mjs)
// plays Asterisk's ARI (REST + events)
// for each inbound call and creates its ExternalMedia channels; its own RTP streaming is off
// (rtp.send 'manual'). The RTP is this driver's: one 20 ms PCMU packet every 20 ms per call,
// sent from the socket switchboard was told about (strict RTP: it accepts only that source),
// the calls spread over the 20 ms period by index (a 1 ms tick sends each phase's frames), each
// payload tagged with (call, frame) so the echo can be matched. Two RTP engines:
//   --rtp c (default)  bench/rtp_load.c (built on first use next to the server binary): owns
//                      every ExternalMedia socket (the fake's RtpLeg.open is replaced so the
//                      channel reports its port), timerfd ticks, recvmmsg, and kernel arrival
//                      times (SO_TIMESTAMPNS): latency and jitter carry none of its own delays
//   --rtp node         the fake's own leg sockets, driven from node: arrival times are taken in
//                      the 'message' callback, so node's event-loop delays add to both. At 200
//                      calls on the quiet 2-core machine: send lag p99 4 ms, its own receive
//                      delay p99 1.2 ms, and a pacing jitter p99 of 2.9 ms where the C engine
//                      measured 1.2 ms in the next run, at twice the CPU (24 % against 12 %)
//
// Measured over a steady window once every call is up:
//   added latency   echo received - frame sent - 100 ms (the echo's own delay): switchboard's
//                   jitter buffer, its 20 ms tick and the loopback both ways
//   lost            frames sent in the window whose echo never came back
//   pacing jitter   |inter-arrival - 20 ms| of switchboard's consecutive packets on each leg
//                   (every packet it sends: the echo and the silence between); c also splits
//                   it: switchboard sends every call's packet from one 20 ms tick, so they
//                   arrive in bursts: how the burst's start strays from 20 ms (the tick's own
//                   jitter) and how long the burst lasts (the send loop)
//   server          CPU (utime + stime from /proc/PID/stat) per call-second, RSS (VmRSS
//                   before the calls and peak during the window) per call
//   driver          its own CPU (the RTP engine's and node's), how late it sent frames (send
//                   lag); c: how long packets sat in the socket before it read them (not part
//                   of any figure: arrival is the kernel's time); node: its own receive delay,
//                   a loopback probe every 20 ms timed from send to its 'message' callback
//   the machine     every other process's CPU over the window (kernel threads apart): this
//                   is a shared 2-core machine, and one late tick moves every call's packet
//
//   node bench/asterisk_load.mjs [calls=200] [seconds=10] [--bin build/bench/switchboard]
//        [--rtp c|node] [--server-cpu N] [--server-nice n] [--json] [--reference twilio.json]
//        [--out asterisk.json]
// --server-cpu runs the server under `taskset -c N`, --server-nice under `nice -n n`;
// --reference takes switchboard-sim-load's --json report of the Twilio leg and prints both
// side by side (bench/asterisk.sh does this).
// Environment: RAMP_S (seconds the calls' start is spread over, default 2), SETTLE_S (from the
// last call up to the window, default 0.5), WORKERS (default 1; Asterisk calls all run on
// worker 0 anyway). Exit 0 when every call was set up and under 1 % of the window's frames were
// lost. Not a test: figures depend on the machine.
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { FakeAsterisk, RtpLeg } from '../tests/fakes/asterisk_ari.mjs';

const ECHO_DELAY_MS = 100;
const FRAME_MS = 20;
const FRAME = 160;
const SETTLE_MS = Number(process.env.SETTLE_S || 0.5) * 1000; // after the last call is up, before the window opens
const DRAIN_MS = 600; // after the window: the last frames' echoes come home
const SLOTS = 1024; // frames remembered per call (20 s): a late echo is late, not lost
const MAGIC0 = 0xa5, MAGIC1 = 0x5a;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  if (i < 0) return def;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
};
const flag = (name) => {
  const i = argv.indexOf(name);
  if (i < 0) return false;
  argv.splice(i, 1);
  return true;
};
const BIN = resolve(opt('--bin', join(root, 'build/bench/switchboard')));
const SERVER_CPU = opt('--server-cpu', null);
const SERVER_NICE = opt('--server-nice', null);
const REFERENCE = opt('--reference', null);
const RTP = opt('--rtp', 'c');
const OUT = opt('--out', null);
const JSON_OUT = flag('--json');
const N = Number(argv[0] || 200), SECS = Number(argv[1] || 10);
const RAMP_MS = Number(process.env.RAMP_S || 2) * 1000;
const say = (...a) => console.error(...a);

// ---- small helpers ----
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
function quant(arr, q) {
  if (!arr.length) return null;
  return arr[Math.min(arr.length - 1, Math.max(0, Math.ceil(q * arr.length) - 1))];
}
function summary(values) {
  const a = Float64Array.from(values).sort();
  return { n: a.length, p50: quant(a, 0.5), p99: quant(a, 0.99), max: a.length ? a[a.length - 1] : null };
}
// G.711 mu-law of a 16-bit sample (the caller's audio: a 440 Hz tone, cosmetic)
function mulaw(s) {
  const sign = s < 0 ? 0x80 : 0;
  let m = Math.min(Math.abs(s), 32635) + 0x84;
  let exp = 7;
  for (let mask = 0x4000; (m & mask) === 0 && exp > 0; mask >>= 1) exp--;
  return ~(sign | (exp << 4) | ((m >> (exp + 3)) & 0x0f)) & 0xff;
}
const TONE = Buffer.alloc(8000);
for (let i = 0; i < TONE.length; i++) TONE[i] = mulaw(Math.round(12000 * Math.sin((2 * Math.PI * 440 * i) / 8000)));
const r32 = () => (Math.random() * 0x100000000) >>> 0;

function procStat(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, clock ticks (100 Hz)
}
const CLK_TCK = 100;
// The CPU time of every other process (utime + stime + cutime + cstime, clock ticks; a process
// that ends shows in its parent's cutime once reaped). /proc/stat's busy time is sampled at the
// timer tick and undercounts timer-woken work like this benchmark's.
// Kernel threads (children of kthreadd) are counted apart: softirq work, ours included, lands there.
function othersTicks(exclude) {
  let sum = 0, kthreads = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || exclude.includes(Number(d))) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ');
      if (d === '2' || f[1] === '2') kthreads += Number(f[11]) + Number(f[12]);
      else sum += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {}
  }
  return { sum, kthreads };
}
function rssKiB(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

// ---- the C RTP engine: started before the fake, so every ExternalMedia channel gets one of its ports ----
let engine = null;
if (RTP === 'c') {
  const exe = resolve(process.env.RTP_LOAD_BIN || join(dirname(BIN), 'bench_rtp_load'));
  const src = join(root, 'bench/rtp_load.c');
  if (!existsSync(exe) || statSync(exe).mtimeMs < statSync(src).mtimeMs) {
    const cc = spawnSync(process.env.CC || 'cc', ['-O2', '-Wall', '-o', exe, src, '-lm'], { stdio: 'inherit' });
    if (cc.status !== 0) throw new Error('cannot build ' + exe);
  }
  const proc = spawn(exe, [String(N)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout });
  const waiting = [];
  const queued = [];
  lines.on('line', (l) => (waiting.length ? waiting.shift()(l) : queued.push(l)));
  const nextLine = () => new Promise((r) => (queued.length ? r(queued.shift()) : waiting.push(r)));
  const first = await nextLine();
  if (!first.startsWith('ports ')) throw new Error('bench_rtp_load: ' + first);
  const ports = first.slice(6).split(' ').map(Number);
  let next = 0;
  engine = { proc, nextLine, ports, exit: new Promise((r) => proc.on('exit', r)) };
  // The fake's ExternalMedia channel takes the next of the engine's sockets instead of binding
  // one of its own (with rtp.send 'manual' the fake never sends on it); the engine is told
  // switchboard's end (external_host) and starts streaming to it.
  RtpLeg.prototype.open = async function open() {
    if (next >= ports.length) throw new Error('more ExternalMedia channels than RTP sockets');
    this.benchIndex = next++;
    this.socket = null;
    this.local = { address: '127.0.0.1', port: ports[this.benchIndex] };
    proc.stdin.write(`leg ${this.benchIndex} ${this.remote.address} ${this.remote.port}\n`);
    return this;
  };
} else if (RTP !== 'node') {
  throw new Error('--rtp c or --rtp node');
}

// ---- the fake Asterisk and the server ----
const ast = await new FakeAsterisk({ username: 'sb', password: 'bench-secret', trunk: 'didww', rtp: { send: 'manual' } }).start();
const dir = mkdtempSync(join(tmpdir(), 'sb-asterisk-bench-'));
const portMin = 40000, portMax = Math.min(65535, portMin + N * 2 + 200);
const env = {
  PATH: process.env.PATH, PORT: '0', TLS_PORT: 'off', WORKERS: process.env.WORKERS || '1', BIND_ADDRESS: '127.0.0.1',
  LOG_LEVEL: 'warn', AI_PROVIDER: 'echo', MAX_CONCURRENT_CALLS: '0', SILENCE_TIMEOUT_S: '3600',
  DATABASE_PATH: join(dir, 'switchboard.db'), ARI_URL: ast.url, ARI_USERNAME: 'sb', ARI_PASSWORD: 'bench-secret',
  ARI_APP: 'switchboard', RTP_ADDRESS: '127.0.0.1', RTP_PORT_MIN: String(portMin), RTP_PORT_MAX: String(portMax),
  ASTERISK_TRUNK: 'didww', SHUTDOWN_TIMEOUT_S: '5',
};
// taskset and nice exec the server: the pid spawned is the server's
const argvSrv = [...(SERVER_CPU !== null ? ['taskset', '-c', String(SERVER_CPU)] : []), ...(SERVER_NICE !== null ? ['nice', '-n', String(SERVER_NICE)] : []), BIN];
const srv = spawn(argvSrv[0], argvSrv.slice(1), { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
let srvLog = '';
srv.stderr.on('data', (d) => { if (srvLog.length < 1 << 20) srvLog += d; });
const srvExit = new Promise((r) => srv.on('exit', (code, signal) => r({ code, signal })));
process.on('exit', () => { try { srv.kill('SIGKILL'); } catch {} try { engine?.proc.kill('SIGKILL'); } catch {} });
try {
  await ast.waitForApp('switchboard', 10000);
} catch {
  say('switchboard did not register its Stasis app:\n' + srvLog);
  process.exit(1);
}
const pid = srv.pid;
await sleep(300);
const rssBefore = rssKiB(pid);

// ---- the node RTP engine ----
const t0 = now();
const calls = []; // ExternalMedia legs in the order they appeared: { idx, leg, ... }
const phases = Array.from({ length: FRAME_MS }, () => []);
let winStart = Infinity, winEnd = Infinity, sending = RTP === 'node';
const lat = [], jit = [], lag = [];
let sentWin = 0, echoedWin = 0, lateEchoes = 0, unmatched = 0, gaps = 0, reordered = 0, rxWin = 0, silenceWin = 0;
let intervalSum = 0, intervalN = 0;

function onPacket(c, msg) {
  const t = now();
  if (msg.length < 12 || msg[0] >> 6 !== 2) return;
  const seq = msg.readUInt16BE(2);
  if (c.lastAt !== undefined) {
    const d = (seq - c.lastSeq) & 0xffff;
    if (d === 0 || d > 0x8000) reordered++;
    else if (t >= winStart && t <= winEnd) {
      if (d === 1) {
        const iv = t - c.lastAt;
        jit.push(Math.abs(iv - FRAME_MS));
        intervalSum += iv;
        intervalN++;
      } else gaps += d - 1;
    }
  }
  if (c.lastAt === undefined || ((seq - c.lastSeq) & 0xffff) < 0x8000) {
    c.lastAt = t;
    c.lastSeq = seq;
  }
  const inWin = t >= winStart && t <= winEnd + DRAIN_MS;
  if (t >= winStart && t <= winEnd) rxWin++;
  const p = 12 + (msg[0] & 0x0f) * 4;
  if (msg.length < p + FRAME || msg[p] !== MAGIC0 || msg[p + 1] !== MAGIC1) {
    if (t >= winStart && t <= winEnd) silenceWin++;
    return;
  }
  const idx = msg.readUInt32BE(p + 2), fseq = msg.readUInt32BE(p + 6);
  const s = fseq % SLOTS;
  if (idx !== c.idx || c.sentSeq[s] !== fseq + 1) {
    unmatched++;
    return;
  }
  c.sentSeq[s] = 0;
  const sentAt = c.sentAt[s];
  if (sentAt >= winStart && sentAt <= winEnd) {
    if (inWin) {
      lat.push(t - sentAt - ECHO_DELAY_MS);
      echoedWin++;
    } else lateEchoes++;
  }
}

async function adopt(c) {
  const leg = c.leg;
  Object.assign(c, { sock: leg.socket, ssrc: r32(), seq: r32() & 0xffff, ts: r32(), marker: true, frame: 0,
    sentSeq: new Uint32Array(SLOTS), sentAt: new Float64Array(SLOTS), nextDue: 0, live: true });
  // the fake records every datagram for its tests; the driver keeps only what it measures
  c.sock.removeAllListeners('message');
  c.sock.on('message', (msg) => onPacket(c, msg));
  await new Promise((res, rej) => {
    c.sock.once('error', rej);
    c.sock.connect(leg.remote.port, leg.remote.address, () => { c.sock.off('error', rej); res(); });
  });
  c.sock.on('error', () => {});
  // first frame a period from now, in this call's phase of the 20 ms period
  const first = Math.ceil(now() - t0) + FRAME_MS, phase = c.idx % FRAME_MS;
  c.nextDue = first + ((phase - (first % FRAME_MS) + FRAME_MS) % FRAME_MS);
  phases[phase].push(c);
}

function sendFrame(c, due) {
  const f = c.frame++;
  const b = Buffer.allocUnsafe(12 + FRAME);
  b[0] = 0x80;
  b[1] = c.marker ? 0x80 : 0;
  c.marker = false;
  b.writeUInt16BE(c.seq, 2);
  b.writeUInt32BE(c.ts, 4);
  b.writeUInt32BE(c.ssrc, 8);
  c.seq = (c.seq + 1) & 0xffff;
  c.ts = (c.ts + FRAME) >>> 0;
  TONE.copy(b, 12, (f * FRAME) % TONE.length, (f * FRAME) % TONE.length + FRAME);
  b[12] = MAGIC0;
  b[13] = MAGIC1;
  b.writeUInt32BE(c.idx, 14);
  b.writeUInt32BE(f, 18);
  const s = f % SLOTS, t = now();
  c.sentSeq[s] = f + 1;
  c.sentAt[s] = t;
  try {
    c.sock.send(b);
  } catch {
    c.live = false;
    return;
  }
  if (t >= winStart && t <= winEnd) {
    sentWin++;
    lag.push(t - t0 - due);
  }
}

// the clock: a 1 ms tick sends every frame that is due (drift-free: frame k at first + 20k)
let lastMs = -1;
function tick() {
  const ms = Math.floor(now() - t0);
  const from = ms - lastMs > FRAME_MS ? ms - FRAME_MS + 1 : lastMs + 1;
  for (let m = from; m <= ms; m++) {
    for (const c of phases[m % FRAME_MS]) {
      while (c.live && c.nextDue <= ms) {
        sendFrame(c, c.nextDue);
        c.nextDue += FRAME_MS;
      }
    }
  }
  lastMs = ms;
  if (sending) setTimeout(tick, 1);
}
if (RTP === 'node') setTimeout(tick, 1);

// the probe: the node engine's own receive delay, on loopback, under the same load
const probeRx = dgram.createSocket('udp4'), probeTx = dgram.createSocket('udp4');
const probe = [];
await new Promise((r) => probeRx.bind(0, '127.0.0.1', r));
await new Promise((r) => probeTx.bind(0, '127.0.0.1', r));
await new Promise((r) => probeTx.connect(probeRx.address().port, '127.0.0.1', r));
probeRx.on('message', (m) => {
  const t = now(), sent = m.readDoubleLE(0);
  if (sent >= winStart && sent <= winEnd) probe.push(t - sent);
});
const probeTimer = setInterval(() => {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleLE(now(), 0);
  probeTx.send(b);
}, FRAME_MS);

// ---- ramp: N inbound calls spread over RAMP_MS ----
const callers = [];
const adopting = [];
const seenLegs = new Set();
const legPoll = setInterval(() => {
  for (const leg of ast.legs.values()) {
    if (seenLegs.has(leg) || !leg.local) continue;
    seenLegs.add(leg);
    const c = { idx: RTP === 'c' ? leg.benchIndex : calls.length, leg };
    calls.push(c);
    if (RTP === 'node' && leg.socket) adopting.push(adopt(c));
  }
}, 2);
const rampT0 = now();
for (let i = 0; i < N; i++) {
  const due = rampT0 + (i * RAMP_MS) / N;
  if (due > now()) await sleep(due - now());
  try {
    callers.push(await ast.inboundCall({ from: `+1555${String(2000000 + i).padStart(7, '0')}`, to: '+15557650000' }));
  } catch (e) {
    say(`call ${i}: ${e.message}`);
  }
}
// up: the ExternalMedia channel in the caller's bridge (switchboard attaches the echo agent then)
const bridged = (c) => {
  const ch = ast.channels.get(c.leg.channelId);
  const b = ch?.bridge && ast.bridges.get(ch.bridge);
  return !!b && b.channels.length >= 2;
};
const setupDeadline = now() + 10000 + N * 20;
while (now() < setupDeadline && !(calls.length >= callers.length && calls.every(bridged))) await sleep(20);
clearInterval(legPoll);
await Promise.allSettled(adopting);
const setUp = calls.filter(bridged).length;
const setupMs = now() - rampT0;
say(`${setUp} of ${N} calls up in ${(setupMs / 1000).toFixed(1)} s (RTP engine: ${RTP}); server RSS ${rssBefore} KiB before the calls`);

// ---- the window ----
await sleep(SETTLE_MS);
const self0 = process.cpuUsage();
let r;
if (RTP === 'c') {
  const report = engine.nextLine();
  engine.proc.stdin.write(`window ${SECS * 1000} ${pid}\n`);
  const line = await report;
  const e = JSON.parse(line.replace(/^report /, ''));
  const self1 = process.cpuUsage(self0);
  const winS = e.window_s, callS = setUp * winS;
  r = {
    added_latency_ms: e.added_latency_ms, call_mean_latency_ms: e.call_mean_latency_ms, frames: e.frames, pacing: e.pacing, window_s: winS,
    others_pct: (100 * e.others_cpu_s) / winS, kernel_threads_pct: (100 * e.kernel_threads_cpu_s) / winS,
    server: {
      cpu_pct: (100 * e.server.cpu_s) / winS, cpu_ms_per_call_s: callS ? (1000 * e.server.cpu_s) / callS : null,
      rss_peak_kib: e.server.rss_peak_kib,
    },
    client: {
      cpu_pct: e.client.cpu_pct + (100 * (self1.user + self1.system)) / 1e6 / winS, engine_cpu_pct: e.client.cpu_pct,
      send_lag_ms: e.client.send_lag_ms, socket_wait_ms: e.client.socket_wait_ms, probe_rx_delay_ms: summary(probe),
    },
  };
} else {
  const cpu0 = procStat(pid), others0 = othersTicks([pid, process.pid]);
  winStart = now();
  winEnd = winStart + SECS * 1000;
  let rssPeak = rssKiB(pid);
  const rssTimer = setInterval(() => { try { rssPeak = Math.max(rssPeak, rssKiB(pid)); } catch {} }, 250);
  await sleep(winEnd - now());
  const cpu1 = procStat(pid), self1 = process.cpuUsage(self0), others1 = othersTicks([pid, process.pid]);
  const winS = (now() - winStart) / 1000;
  winEnd = winStart + winS * 1000;
  clearInterval(rssTimer);
  await sleep(DRAIN_MS);
  sending = false;
  const serverCpuS = (cpu1 - cpu0) / CLK_TCK, callS = setUp * winS, lost = sentWin - echoedWin;
  r = {
    added_latency_ms: summary(lat),
    frames: { window_sent: sentWin, window_echoed: echoedWin, lost, loss_pct: sentWin ? (100 * lost) / sentWin : 0, echoed_after_drain: lateEchoes, unmatched },
    pacing: {
      jitter_ms: summary(jit), mean_interval_ms: intervalN ? intervalSum / intervalN : null, packets_in_window: rxWin,
      silence_packets_in_window: silenceWin, seq_gaps: gaps, reordered,
    },
    window_s: winS, others_pct: (100 * (others1.sum - others0.sum)) / CLK_TCK / winS,
    kernel_threads_pct: (100 * (others1.kthreads - others0.kthreads)) / CLK_TCK / winS,
    server: { cpu_pct: (100 * serverCpuS) / winS, cpu_ms_per_call_s: callS ? (1000 * serverCpuS) / callS : null, rss_peak_kib: rssPeak },
    client: { cpu_pct: (100 * (self1.user + self1.system)) / 1e6 / winS, send_lag_ms: summary(lag), probe_rx_delay_ms: summary(probe) },
  };
}
clearInterval(probeTimer);
Object.assign(r.server, { pid, cpu: SERVER_CPU, nice: SERVER_NICE, rss_before_kib: rssBefore, rss_per_call_kib: setUp ? (r.server.rss_peak_kib - rssBefore) / setUp : null });
r = { driver: `fake Asterisk (node) + RTP engine ${RTP}`, calls: { requested: N, set_up: setUp, setup_s: setupMs / 1000, in_window: setUp }, echo_delay_ms: ECHO_DELAY_MS, ...r };
r.ok = setUp === N && r.frames.window_sent > 0 && r.frames.loss_pct < 1;

// ---- the calls end: the callers hang up, switchboard tears down bridges and ExternalMedia ----
for (const c of callers) try { ast.hangup(c.id); } catch {}
const endDeadline = now() + 5000;
while (now() < endDeadline && ast.channels.size > 0) await sleep(50);
srv.kill('SIGTERM');
const ex = await srvExit;
if (engine) {
  engine.proc.stdin.end();
  await engine.exit;
}
await ast.stop();
probeRx.close();
probeTx.close();
const errors = srvLog.split('\n').filter((l) => /level=error/.test(l));
r.server.exit = ex;
r.server.error_lines = errors.length;
if (errors.length) say('server errors:\n' + errors.slice(0, 5).join('\n'));
if (OUT) writeFileSync(OUT, JSON.stringify(r) + '\n');
if (process.env.KEEP) say('kept', dir); else rmSync(dir, { recursive: true, force: true });

// ---- the report ----
const f = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? '-' : Number(v).toFixed(d));
const q3 = (s) => `p50 ${f(s.p50)} / p99 ${f(s.p99)} / max ${f(s.max)} ms`;
const C = r.client, J = r.pacing, L = r.added_latency_ms, F = r.frames;
const driverLine = `asterisk driver (${r.driver}): CPU ${f(C.cpu_pct, 1)} %; send lag ${q3(C.send_lag_ms)}; ` +
  (RTP === 'c' ? `packets read from the socket ${q3(C.socket_wait_ms)} after arrival (kernel timestamps: not in the figures)`
    : `own receive delay (loopback probe) ${q3(C.probe_rx_delay_ms)}`);
const M = r.call_mean_latency_ms;
const latencyLine = M ? `asterisk latency: each call's mean added latency min ${f(M.min)} / p50 ${f(M.p50)} / max ${f(M.max)} ms ` +
  `(the frames': min ${f(L.min)} ms)` : null;
const pacingLine = `asterisk pacing: mean interval ${f(J.mean_interval_ms, 3)} ms over ${J.jitter_ms.n} intervals` +
  (J.jitter_ms.over_2ms !== undefined ? ` (p99.9 ${f(J.jitter_ms.p999)} ms; ${J.jitter_ms.over_1ms} over 1 ms, ${J.jitter_ms.over_2ms} over 2 ms)` : '') + '; ' +
  (J.tick_jitter_ms ? `the tick's own start ${q3(J.tick_jitter_ms)} off 20 ms (${J.tick_jitter_ms.over_2ms} of ${J.tick_jitter_ms.n} ticks over 2 ms), ` +
    `its burst of packets lasting ${q3(J.burst_ms)}; ` : '') +
  `${J.silence_packets_in_window} of ${J.packets_in_window} packets silence, ${J.seq_gaps} seq gaps, ${J.reordered} reordered`;
if (JSON_OUT) console.log(JSON.stringify(r));
else if (!REFERENCE) {
  console.log(`asterisk (RTP) load: ${N} calls, ${setUp} up; window ${f(r.window_s, 1)} s; echo delay ${ECHO_DELAY_MS} ms`);
  console.log(`added latency    ${q3(L)}   (${L.n} frames)`);
  console.log(`frames           sent ${F.window_sent}, echoed ${F.window_echoed}, lost ${F.lost} (${f(F.loss_pct, 3)} %)${F.unmatched ? `, ${F.unmatched} unmatched` : ''}`);
  console.log(`pacing jitter    ${q3(J.jitter_ms)}`);
  console.log(`server CPU       ${f(r.server.cpu_pct, 1)} % of a core, ${f(r.server.cpu_ms_per_call_s, 4)} ms per call-second (pid ${pid})`);
  console.log(`server RSS       ${f(rssBefore / 1024, 1)} MiB before, ${f(r.server.rss_peak_kib / 1024, 1)} MiB peak, ${f(r.server.rss_per_call_kib, 1)} KiB per call`);
  console.log(`other processes  ${f(r.others_pct, 1)} % of a core during the window (kernel threads ${f(r.kernel_threads_pct, 1)} %)`);
  console.log(driverLine);
  if (latencyLine) console.log(latencyLine);
  console.log(pacingLine);
}
if (REFERENCE) {
  const t = JSON.parse(readFileSync(REFERENCE, 'utf8'));
  const ts = t.server ?? {};
  const rows = [
    ['calls up (in window)', `${t.calls.in_window} of ${t.calls.requested}`, `${setUp} of ${N}`, null],
    ['window', `${f(t.window_s, 1)} s`, `${f(r.window_s, 1)} s`, null],
    ['server CPU, % of a core', f(ts.cpu_pct, 1), f(r.server.cpu_pct, 1), r.server.cpu_pct / ts.cpu_pct],
    ['CPU per call-second, ms', f(ts.cpu_ms_per_call_s, 3), f(r.server.cpu_ms_per_call_s, 3), r.server.cpu_ms_per_call_s / ts.cpu_ms_per_call_s],
    ['added latency p50, ms', f(t.added_latency_ms.p50), f(L.p50), L.p50 / t.added_latency_ms.p50],
    ['added latency p99, ms', f(t.added_latency_ms.p99), f(L.p99), L.p99 / t.added_latency_ms.p99],
    ['lost (window)', `${t.frames.window_sent - t.frames.window_echoed} of ${t.frames.window_sent}`, `${F.lost} of ${F.window_sent}`, null],
    ['pacing jitter p50, ms', 'n/a', f(J.jitter_ms.p50), null],
    ['pacing jitter p99, ms', 'n/a', f(J.jitter_ms.p99), null],
    ['pacing jitter max, ms', 'n/a', f(J.jitter_ms.max), null],
    ['  the tick itself, p99, ms', 'n/a', J.tick_jitter_ms ? f(J.tick_jitter_ms.p99) : '-', null],
    ['  its burst of packets p50, ms', 'n/a', J.burst_ms ? f(J.burst_ms.p50) : '-', null],
    ['RSS per call, KiB', f(ts.rss_per_call_kib, 1), f(r.server.rss_per_call_kib, 1), r.server.rss_per_call_kib / ts.rss_per_call_kib],
    ['load generator CPU, %', f(t.client.cpu_pct, 1), f(C.cpu_pct, 1), null],
    ['other processes, % of a core', process.env.REF_OTHERS_PCT ? f(Number(process.env.REF_OTHERS_PCT), 1) : '-', f(r.others_pct, 1), null],
    ['kernel threads, % of a core', process.env.REF_KTHREADS_PCT ? f(Number(process.env.REF_KTHREADS_PCT), 1) : '-', f(r.kernel_threads_pct, 1), null],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length)), w = 12;
  console.log(`N = ${N}, ${SECS} s`.padEnd(w0) + '  ' + 'twilio'.padStart(w) + '  ' + 'asterisk'.padStart(w) + '  ' + 'ast/twilio'.padStart(w));
  for (const [name, a, b, ratio] of rows) {
    console.log(name.padEnd(w0) + '  ' + String(a).padStart(w) + '  ' + String(b).padStart(w) + '  ' + (ratio === null || !Number.isFinite(ratio) ? '' : ratio.toFixed(2)).padStart(w));
  }
  console.log(`twilio: sim-load send lag p99 ${f(t.client_send_lag_ms?.p99)} ms; it records no arrival times, so no pacing figure ` +
    '(and switchboard does not pace that leg: Twilio plays the audio out)');
  console.log(driverLine);
  if (latencyLine) console.log(latencyLine);
  console.log(pacingLine);
  console.log(`targets: CPU per call-second <= twilio's: ${r.server.cpu_ms_per_call_s <= ts.cpu_ms_per_call_s ? 'met' : 'NOT met'}; ` +
    `p99 pacing jitter < 2 ms: ${J.jitter_ms.p99 < 2 ? 'met' : 'NOT met'}; RSS per call < 64 KiB: ${r.server.rss_per_call_kib < 64 ? 'met' : 'NOT met'}`);
}
process.exit(r.ok ? 0 : 1);
