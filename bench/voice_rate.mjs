// Open-loop, fixed-rate load for bench/voice.sh (RATE=...): the pre-signed POST /twilio/voice
// bodies of bench/sign_bodies.mjs sent at RATE requests/s for DURATION s, request i to instance
// i mod n, over keep-alive connections (node's http Agent). Every latency is taken from the
// request's SCHEDULED send time, so a slow answer delays no later measurement (no coordinated
// omission); how late the client itself sent (its send lag) is reported apart, as are the
// latencies from the actual send. A warm-up (default 2 s, same rate) opens the connections and
// is left out of every figure.
//   node bench/voice_rate.mjs --bodies FILE --url http://127.0.0.1:P1[,http://127.0.0.1:P2]
//        --rate 1000 --duration 20 [--warmup 2] [--path /twilio/voice] [--sockets 64]
//        [--offset 0] [--json] [--dump FILE]
// --path - sends the reference's plain GET / instead (bench/bare_h2o, the bodies unused).
// Prints a summary (stderr) and, with --json, one JSON object on stdout; --dump writes one line
// per measured request: its scheduled time (ms from the first measured one), latency from then,
// send lag, instance (ms; latency empty when it failed).
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const opt = { warmup: 2, path: '/twilio/voice', sockets: 64, offset: 0, json: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--json') opt.json = true;
  else if (a.startsWith('--') && i + 1 < process.argv.length) opt[a.slice(2)] = process.argv[++i];
  else throw new Error(`voice_rate.mjs: bad argument ${a}`);
}
const rate = Number(opt.rate);
const duration = Number(opt.duration);
const warmup = Number(opt.warmup);
if (!(rate > 0) || !(duration > 0) || !(warmup >= 0) || !opt.url) {
  console.error('usage: node bench/voice_rate.mjs --bodies FILE --url URL[,URL] --rate R --duration S [--warmup S]');
  process.exit(2);
}
const plain = opt.path === '-';
const targets = String(opt.url).split(',').map((u) => new URL(u));

// The requests, pre-built: headers and body buffers.
let bodies = [];
if (!plain) {
  for (const line of readFileSync(opt.bodies, 'utf8').split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) bodies.push({ sig: line.slice(0, tab), body: Buffer.from(line.slice(tab + 1)) });
  }
}
const total = Math.round(rate * (warmup + duration));
const measuredFrom = Math.round(rate * warmup);
if (!plain && total > bodies.length) console.error(`voice_rate.mjs: ${total} requests, ${bodies.length} bodies: the last ones repeat`);

const agents = targets.map(() => new http.Agent({ keepAlive: true, maxSockets: Number(opt.sockets), scheduling: 'lifo' }));
// per request (measured ones): latency from scheduled time, from actual send, and send lag (ms)
const n = total - measuredFrom;
const lat = new Float64Array(n).fill(NaN);
const svc = new Float64Array(n).fill(NaN);
const lag = new Float64Array(n).fill(NaN);
let errors = 0, non2xx = 0, done = 0, ok = 0;
const errKinds = new Map();
const status = new Map();

function finish() {
  clearTimeout(timer);
  const wall = (performance.now() - t0) / 1000 - warmup;
  const cpu = process.cpuUsage(cpu0);
  const pct = (a, p) => {
    const s = Array.from(a).filter((x) => !Number.isNaN(x)).sort((x, y) => x - y);
    if (s.length === 0) return null;
    if (p >= 100) return s[s.length - 1];
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
  };
  const dist = (a) => ({ p50: pct(a, 50), p90: pct(a, 90), p99: pct(a, 99), p999: pct(a, 99.9), max: pct(a, 100) });
  const answered = Array.from(lat).filter((x) => !Number.isNaN(x)).length;
  // achieved: answers in the measured part over the time from its first scheduled send to its last answer
  const r = {
    rate, duration, warmup, instances: targets.length, sent: n, answered, ok, errors, non2xx,
    unanswered: n - answered - errors,
    achieved_rps: answered / Math.max(lastDone - (t0 + warmup * 1000), 1) * 1000,
    latency_ms: dist(lat), from_send_ms: dist(svc), send_lag_ms: dist(lag),
    client_cpu_pct: ((cpu.user + cpu.system) / 1e4) / ((performance.now() - tWarm) / 1000),
    loop_delay_ms: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    status: Object.fromEntries(status), error_kinds: Object.fromEntries(errKinds), wall_s: wall,
    measured_from_epoch_ms: epoch0 + warmup * 1000,
  };
  const f = (x) => (x === null ? '-' : x.toFixed(2));
  const d = (x) => `p50 ${f(x.p50)}  p90 ${f(x.p90)}  p99 ${f(x.p99)}  p99.9 ${f(x.p999)}  max ${f(x.max)} ms`;
  console.error(`${targets.length} instance(s), ${rate}/s for ${duration} s (+${warmup} s warm-up): sent ${n}, ` +
    `answered ${answered} (${r.achieved_rps.toFixed(0)}/s), errors ${errors}, non-2xx ${non2xx}` +
    (r.unanswered ? `, unanswered ${r.unanswered}` : ''));
  console.error(`  latency from schedule: ${d(r.latency_ms)}`);
  console.error(`  latency from send:     ${d(r.from_send_ms)}`);
  console.error(`  client send lag:       ${d(r.send_lag_ms)}; client CPU ${r.client_cpu_pct.toFixed(1)} % of a core`);
  if (errKinds.size) console.error(`  errors: ${JSON.stringify(r.error_kinds)}`);
  if (opt.json) process.stdout.write(JSON.stringify(r) + '\n');
  if (opt.dump) {
    const lines = [];
    for (let k = 0; k < n; k++) {
      const l = Number.isNaN(lat[k]) ? '' : lat[k].toFixed(3);
      lines.push(`${(k * interval).toFixed(3)} ${l} ${Number.isNaN(lag[k]) ? '' : lag[k].toFixed(3)} ${(k + measuredFrom) % targets.length}`);
    }
    writeFileSync(opt.dump, lines.join('\n') + '\n');
  }
  for (const a of agents) a.destroy();
  process.exitCode = errors || r.unanswered ? 1 : 0;
}

let lastDone = 0;
function send(i, sched) {
  const k = i - measuredFrom;
  const tgt = targets[i % targets.length];
  const b = plain ? null : bodies[(Number(opt.offset) + i) % bodies.length];
  const headers = plain ? {} : {
    'Content-Type': 'application/x-www-form-urlencoded',
    'X-Twilio-Signature': b.sig,
    'Content-Length': b.body.length,
  };
  const req = http.request({
    host: tgt.hostname, port: tgt.port, method: plain ? 'GET' : 'POST', path: plain ? '/' : opt.path,
    headers, agent: agents[i % targets.length],
  });
  const sent = performance.now();
  if (k >= 0) lag[k] = sent - sched;
  let settled = false;
  const end = (err, code) => {
    if (settled) return;
    settled = true;
    const now = performance.now();
    done++;
    if (k >= 0) {
      if (err) {
        errors++;
        errKinds.set(err, (errKinds.get(err) || 0) + 1);
      } else {
        lat[k] = now - sched;
        svc[k] = now - sent;
        lastDone = now;
        status.set(code, (status.get(code) || 0) + 1);
        if (code >= 200 && code < 300) ok++;
        else non2xx++;
      }
    }
    if (done === total) finish();
  };
  req.on('response', (res) => {
    res.on('data', () => {});
    res.on('end', () => end(null, res.statusCode));
    res.on('error', (e) => end(e.code || e.message));
  });
  req.on('error', (e) => end(e.code || e.message));
  req.end(b ? b.body : undefined);
}

// The pacer: every wake-up sends all requests whose time has come, then sleeps until the next
// one's (node's timers have a millisecond's resolution: that shows in the send lag).
const interval = 1000 / rate;
let next = 0;
let timer = null;
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
let t0 = 0, tWarm = 0, cpu0 = null;
function pace() {
  const now = performance.now();
  while (next < total && t0 + next * interval <= now) {
    send(next, t0 + next * interval);
    next++;
  }
  if (next < total) timer = setTimeout(pace, Math.max(0, t0 + next * interval - performance.now()));
  else timer = setTimeout(() => {
    // requests still unanswered 30 s after the last send: reported as unanswered, the run ends
    console.error(`voice_rate.mjs: ${total - done} requests unanswered 30 s after the last send`);
    done = total;
    finish();
  }, 30000);
}
cpu0 = process.cpuUsage();
tWarm = performance.now();
t0 = performance.now() + 5;
const epoch0 = Date.now() + 5; // t0 on the wall clock (the dump's time 0 is epoch0 + warm-up)
loopDelay.enable();
timer = setTimeout(pace, 5);
