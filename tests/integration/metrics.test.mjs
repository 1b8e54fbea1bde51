// GET /metrics: the Prometheus text format, who may scrape it (METRICS_TOKEN, else loopback
// only), the series a signed Twilio call moves, the media, first audio and transfer series of a
// call through the echo agent, promtool's verdict, and a real Prometheus scraping the server
// with the token.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { writeFileSync } from 'node:fs';
import { startServer, curl, cleanup, tempDir, eventually, sleep } from './lib/harness.mjs';
import { AUTH_TOKEN, PUBLIC_BASE_URL, callSid, webhook, voiceParams, verbs } from './lib/twilio.mjs';
import { voiceCall, open, start, sendFrames } from './lib/rawmedia.mjs';

const TOKEN = 'metrics-token-0123456789abcdef';
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const servers = [];
async function server(env) {
  const srv = await startServer({ env: { TLS_PORT: 'off', ...env } });
  servers.push(srv);
  return srv;
}
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
});

// The test tools come from Debian's prometheus package: missing is a failure, never a skip.
function need(bin) {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} is not installed: run tools/deps.sh test (Debian's prometheus package)`);
  return r.stdout.trim();
}

// The exposition as {name -> {help, type}} and samples [{name, labels, value}]; throws on a line
// that is neither a comment nor a sample.
function parse(text) {
  const meta = {};
  const samples = [];
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  for (const line of text.split('\n').slice(0, -1)) {
    let m = /^# (HELP|TYPE) (\w+) (.+)$/.exec(line);
    if (m) {
      meta[m[2]] = { ...meta[m[2]], [m[1].toLowerCase()]: m[3] };
      continue;
    }
    m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const labels = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    const value = Number(m[3] === '+Inf' ? Infinity : m[3]);
    assert.ok(!Number.isNaN(value), line);
    samples.push({ name: m[1], labels, value });
  }
  return { meta, samples };
}

function value(parsed, name, labels = {}) {
  const hit = parsed.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(hit.length, 1, `one sample ${name}${JSON.stringify(labels)}, found ${hit.length}`);
  return hit[0].value;
}

function scrape(srv, headers = []) {
  return curl([...headers.flatMap((h) => ['-H', h]), `${srv.url}/metrics`]);
}

function scrapeOk(srv, headers) {
  const r = scrape(srv, headers);
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers['content-type'], CONTENT_TYPE);
  return { raw: r.body, ...parse(r.body) };
}

function unauthorized(r, message) {
  assert.equal(r.status, 401);
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.match(r.headers['x-request-id'], /^[0-9a-f]{16}$/);
  assert.match(r.headers['www-authenticate'], /^Bearer/);
  const e = JSON.parse(r.body).error;
  assert.equal(e.code, 'unauthorized');
  assert.match(e.message, message);
}

test('from loopback without METRICS_TOKEN: 200, the text format with HELP and TYPE', async () => {
  const srv = await server();
  const m = scrapeOk(srv);
  for (const [name, type] of [
    ['switchboard_build_info', 'gauge'], ['switchboard_workers', 'gauge'],
    ['switchboard_http_requests_total', 'counter'], ['switchboard_http_request_duration_seconds', 'histogram'],
    ['switchboard_calls_started_total', 'counter'], ['switchboard_calls_ended_total', 'counter'],
    ['switchboard_calls_active', 'gauge'],
    ['switchboard_media_frames_total', 'counter'], ['switchboard_media_frames_dropped_total', 'counter'],
    ['switchboard_ai_messages_total', 'counter'], ['switchboard_ai_errors_total', 'counter'],
    ['switchboard_ai_fallbacks_total', 'counter'],
    ['switchboard_transfer_attempts_total', 'counter'], ['switchboard_transfer_outcomes_total', 'counter'],
    ['switchboard_first_audio_seconds', 'histogram'], ['switchboard_store_commit_seconds', 'histogram'],
    ['switchboard_recording_bytes_total', 'counter'],
  ]) {
    assert.equal(m.meta[name]?.type, type, name);
    assert.ok(m.meta[name].help, name);
  }
  assert.equal(value(m, 'switchboard_workers'), 2);
  const health = JSON.parse(curl([`${srv.url}/health`]).body);
  assert.equal(value(m, 'switchboard_build_info', { version: health.version }), 1);
  assert.equal(value(m, 'switchboard_calls_active', { platform: 'twilio' }), 0);

  // an unmatched path counts as route "other", never as its raw path
  curl([`${srv.url}/no/such/path/12345`]);
  const after1 = scrapeOk(srv);
  assert.ok(value(after1, 'switchboard_http_requests_total', { route: 'other', status_class: '4xx' }) >= 1);
  assert.ok(!after1.raw.includes('12345'));
  // the earlier scrape was answered: its own route is timed
  assert.ok(value(after1, 'switchboard_http_request_duration_seconds_count', { route: '/metrics' }) >= 1);
});

test('without METRICS_TOKEN a request a proxy forwarded is refused, with a hint to set the token', async () => {
  const srv = await server();
  unauthorized(scrape(srv, ['X-Forwarded-For: 203.0.113.9']), /METRICS_TOKEN/);
});

test('without METRICS_TOKEN a client on another address is refused', async (t) => {
  const ip = Object.values(networkInterfaces()).flat().find((a) => a.family === 'IPv4' && !a.internal)?.address;
  if (!ip) {
    t.skip('this host has no non-loopback IPv4 address to connect from');
    return;
  }
  const srv = await server({ BIND_ADDRESS: '0.0.0.0' });
  unauthorized(curl([`http://${ip}:${srv.port}/metrics`]), /METRICS_TOKEN/);
  assert.equal(curl([`http://127.0.0.1:${srv.port}/metrics`]).status, 200);
});

test('with METRICS_TOKEN: 401 without it or with a wrong one, 200 with it', async () => {
  const srv = await server({ METRICS_TOKEN: TOKEN });
  unauthorized(scrape(srv), /METRICS_TOKEN/);
  unauthorized(scrape(srv, [`Authorization: Bearer ${TOKEN}x`]), /METRICS_TOKEN/);
  unauthorized(scrape(srv, [`Authorization: Bearer ${TOKEN.slice(0, -1)}`]), /METRICS_TOKEN/);
  unauthorized(scrape(srv, [`Authorization: Basic ${Buffer.from('u:' + TOKEN).toString('base64')}`]), /METRICS_TOKEN/);
  scrapeOk(srv, [`Authorization: Bearer ${TOKEN}`]);
  // the token is also what a forwarded request needs
  scrapeOk(srv, [`Authorization: Bearer ${TOKEN}`, 'X-Forwarded-For: 203.0.113.9']);
});

async function twilioServer() {
  return server({ TWILIO_AUTH_TOKEN: AUTH_TOKEN, PUBLIC_BASE_URL, TWILIO_PHONE_NUMBER: '+14155550100', AI_PROVIDER: 'echo', METRICS_TOKEN: TOKEN });
}
const AUTH = [`Authorization: Bearer ${TOKEN}`];

test('a signed Twilio call moves the started, ended and request series; promtool accepts the output', async () => {
  const promtool = need('promtool');
  const srv = await twilioServer();
  const before = scrapeOk(srv, AUTH);
  const voiceCount = (m) => value(m, 'switchboard_http_request_duration_seconds_count', { route: '/twilio/voice' });
  assert.equal(voiceCount(before), 0);

  const sid = callSid();
  assert.equal((await webhook(srv, '/twilio/voice', voiceParams(sid))).status, 200);
  assert.equal((await webhook(srv, '/twilio/voice', voiceParams(sid))).status, 200); // a retry: the same call
  // the access log line (and the observation) comes when the request is disposed, just after the answer
  const mid = await eventually(() => scrapeOk(srv, AUTH), (m) => voiceCount(m) === 2);
  assert.equal(voiceCount(mid), 2);
  assert.equal(value(mid, 'switchboard_http_request_duration_seconds_bucket', { route: '/twilio/voice', le: '+Inf' }), 2);
  assert.equal(value(mid, 'switchboard_http_requests_total', { route: '/twilio/voice', status_class: '2xx' }), 2);
  assert.ok(value(mid, 'switchboard_http_request_duration_seconds_sum', { route: '/twilio/voice' }) > 0);
  assert.equal(value(mid, 'switchboard_calls_started_total', { platform: 'twilio', direction: 'inbound' }), 1);
  assert.equal(value(mid, 'switchboard_calls_active', { platform: 'twilio' }), 1);

  await webhook(srv, '/twilio/status', { CallSid: sid, CallStatus: 'completed', SequenceNumber: '2', CallDuration: '12' });
  await webhook(srv, '/twilio/status', { CallSid: sid, CallStatus: 'completed', SequenceNumber: '3' }); // no second end
  const end = scrapeOk(srv, AUTH);
  assert.equal(value(end, 'switchboard_calls_ended_total', { platform: 'twilio', direction: 'inbound', outcome: 'completed' }), 1);
  assert.equal(value(end, 'switchboard_calls_active', { platform: 'twilio' }), 0);
  // buckets are cumulative
  const buckets = end.samples.filter((s) => s.name === 'switchboard_http_request_duration_seconds_bucket' && s.labels.route === '/twilio/status');
  assert.equal(buckets.length, 15);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value);

  const check = spawnSync(promtool, ['check', 'metrics'], { input: end.raw, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
});

test('a call through the echo agent moves the media and first audio series; a transfer its attempts and outcomes', async () => {
  const promtool = need('promtool');
  const srv = await server({ AI_PROVIDER: 'echo', PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com', RECORDINGS_DIR: 'rec' });
  const frames = (m, direction) => value(m, 'switchboard_media_frames_total', { provider: 'echo', direction });
  const before = scrapeOk(srv);
  assert.equal(frames(before, 'in'), 0);
  assert.equal(value(before, 'switchboard_first_audio_seconds_count'), 0);

  const sid = callSid();
  const { session } = await voiceCall(srv, sid);
  const peer = open(srv);
  await peer.opened;
  const stream = start(peer, { sid, session });
  const echoed = (await sendFrames(peer, stream, { byte: 0x10 })).length;
  assert.ok(echoed >= 20, `echoed ${echoed} frames`);
  // DTMF 0: the caller asks for a person (not a fallback); connect_action dials the primary
  peer.ws.send(JSON.stringify({ event: 'dtmf', streamSid: stream, sequenceNumber: '99', dtmf: { track: 'inbound_track', digit: '0' } }));
  assert.equal((await peer.closed).code, 1000);
  const connect = await webhook(srv, `/twilio/connect_action?session=${session}`, { CallSid: sid }, { signature: null });
  assert.ok(verbs(connect.xml).includes('Dial'));
  const busy = await webhook(srv, `/twilio/transfer_callback?session=${session}&attempt=0`,
    { CallSid: sid, DialCallStatus: 'busy' }, { signature: null });
  assert.equal(busy.status, 200);

  const m = scrapeOk(srv);
  assert.equal(frames(m, 'in'), 25);
  assert.equal(frames(m, 'out'), echoed);
  assert.equal(value(m, 'switchboard_media_frames_dropped_total', { provider: 'echo', reason: 'leg_full' }), 0);
  assert.equal(value(m, 'switchboard_first_audio_seconds_count'), 1);
  assert.equal(value(m, 'switchboard_first_audio_seconds_bucket', { le: '+Inf' }), 1);
  const fa = value(m, 'switchboard_first_audio_seconds_sum');
  assert.ok(fa > 0 && fa < 1, `first audio after ${fa} s`);
  for (const reason of ['ai_failed', 'ai_unreachable', 'no_ai', 'other'])
    assert.equal(value(m, 'switchboard_ai_fallbacks_total', { reason }), 0, reason);
  assert.equal(value(m, 'switchboard_ai_errors_total', { provider: 'echo' }), 0);
  // both channels: the caller's 25 frames and the echo, 160 bytes each
  assert.equal(value(m, 'switchboard_recording_bytes_total'), (25 + echoed) * 160);
  // SQLite's group commits, PostgreSQL's COMMIT of each unit
  assert.ok(value(m, 'switchboard_store_commit_seconds_count') >= 1);
  assert.ok(value(m, 'switchboard_store_commit_seconds_sum') > 0);
  // the primary was tried and was busy; the next stage (voicemail: a recording) began
  assert.equal(value(m, 'switchboard_transfer_attempts_total', { platform: 'twilio', stage: 'primary' }), 1);
  assert.equal(value(m, 'switchboard_transfer_attempts_total', { platform: 'twilio', stage: 'voicemail' }), 1);
  assert.equal(value(m, 'switchboard_transfer_outcomes_total', { platform: 'twilio', stage: 'primary', outcome: 'busy' }), 1);
  assert.equal(value(m, 'switchboard_transfer_outcomes_total', { platform: 'twilio', stage: 'primary', outcome: 'completed' }), 0);

  const check = spawnSync(promtool, ['check', 'metrics'], { input: m.raw, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
});

test('a media leg that breaks its protocol hands the call to a person: a fallback, reason other', async () => {
  const srv = await server({ AI_PROVIDER: 'echo', PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com' });
  const sid = callSid();
  const { session } = await voiceCall(srv, sid);
  const peer = open(srv);
  await peer.opened;
  start(peer, { sid, session });
  await sleep(100);
  peer.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  await peer.closed;
  const m = await eventually(() => scrapeOk(srv), (x) => value(x, 'switchboard_ai_fallbacks_total', { reason: 'other' }) === 1);
  assert.equal(value(m, 'switchboard_ai_fallbacks_total', { reason: 'other' }), 1);
  assert.equal(value(m, 'switchboard_ai_fallbacks_total', { reason: 'ai_failed' }), 0);
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test('a real Prometheus scrapes the server with the bearer token', async () => {
  const bin = need('prometheus');
  const srv = await twilioServer();
  const sid = callSid();
  assert.equal((await webhook(srv, '/twilio/voice', voiceParams(sid))).status, 200);

  const dir = tempDir();
  writeFileSync(`${dir}/prom.yml`, [
    'global:',
    '  scrape_interval: 1s',
    'scrape_configs:',
    '  - job_name: switchboard',
    '    metrics_path: /metrics',
    '    authorization:',
    `      credentials: ${TOKEN}`,
    '    static_configs:',
    `      - targets: ['127.0.0.1:${srv.port}']`,
    '',
  ].join('\n'));
  const port = await freePort();
  const prom = spawn(bin, [`--config.file=${dir}/prom.yml`, `--storage.tsdb.path=${dir}/data`,
    `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  prom.stdout.on('data', (d) => (log += d));
  prom.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => prom.on('exit', resolve));
  try {
    const query = async (q) => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
        return res.ok ? (await res.json()).data.result : [];
      } catch {
        return []; // not listening yet
      }
    };
    const started = 'switchboard_calls_started_total{platform="twilio",direction="inbound"}';
    const result = await eventually(() => query(started), (r) => r.length === 1 && r[0].value[1] === '1',
      { ms: 30000, every: 250 });
    assert.equal(result.length, 1, `Prometheus has no ${started}:\n${log}`);
    assert.equal(result[0].value[1], '1');
    assert.equal(result[0].metric.job, 'switchboard');
    const up = await query('up{job="switchboard"}');
    assert.equal(up[0]?.value[1], '1', `the target is not up:\n${log}`);
  } finally {
    if (prom.exitCode === null) prom.kill('SIGTERM');
    const stopped = await Promise.race([exited, sleep(15000).then(() => 'timeout')]);
    if (stopped === 'timeout') prom.kill('SIGKILL');
    cleanup(dir);
  }
});
