// Failures under load with PostgreSQL, on a private cluster (pgCluster) so that stopping it cuts
// no other test's connections:
//   - one of two instances sharing the database is killed with SIGKILL mid-load: every call it
//     or the other answered has its row (and its status callback applied), the requests it can
//     no longer take fail at the connection level and succeed when retried on the other, as a
//     load balancer would, and the other keeps answering throughout;
//   - the database restarts (pg.sh restart: fast stop + start, same port) and then stays down
//     for a few seconds: every webhook still gets TwiML (the store-failure fallback: a transfer
//     to PRIMARY_TRANSFER_TARGET, or the apology), /health says 503 while it is down, nothing
//     hangs, and the service comes back by itself once the database does.
// Requests go over node:http with a new connection each (no keep-alive), so a connection-level
// failure means the instance, not a stale pooled socket.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import twilio from 'twilio';
import { startServer, cleanup, sleep, SANITIZED } from './lib/harness.mjs';
import { pgCluster, psql } from './lib/pg.mjs';
import { AUTH_TOKEN, PUBLIC_BASE_URL, callSid, parseTwiml, find, voiceParams } from './lib/twilio.mjs';
import { JWT_SECRET, token } from './lib/jwt.mjs';

const PG_SH = join(dirname(fileURLToPath(import.meta.url)), '..', 'pg', 'pg.sh');
const TRANSFER_TO = '+14155550199';
const CALLER = '+14155550111';
const APOLOGY = 'We are sorry, we cannot take your call right now. Please try again later. Goodbye.';
// A request without an answer in this long is a hang (the server's own limits: connect 5 s).
const REQUEST_TIMEOUT_MS = SANITIZED ? 20000 : 10000;
// What "answered within a few seconds" means here.
const MAX_LATENCY_MS = SANITIZED ? 10000 : 5000;

let cluster = null;
function privateCluster() {
  cluster ??= pgCluster();
  return cluster;
}

const servers = [];
async function server(url, env = {}) {
  const srv = await startServer({
    env: {
      DATABASE_URL: url, JWT_SECRET, TWILIO_AUTH_TOKEN: AUTH_TOKEN, PUBLIC_BASE_URL, TLS_PORT: 'off', AI_PROVIDER: 'echo',
      TWILIO_PHONE_NUMBER: '+14155550100', WORKERS: SANITIZED ? '1' : '2', MAX_CONCURRENT_CALLS: '0', ...env,
    },
    timeoutMs: 30000,
  });
  servers.push(srv);
  return srv;
}

after(async () => {
  try {
    for (const s of servers) {
      const r = await s.stop();
      if (r.signal !== 'SIGKILL') assert.equal(r.code, 0, s.stderr);
      cleanup(s.dir);
    }
  } finally {
    cluster?.stop();
  }
});

// ---- HTTP: one connection per request, never a pooled one ----

// {ok, status, type, text, t0, t1} or {ok: false, error (errno code, or TIMEOUT), t0, t1}.
function request(srv, method, path, { headers = {}, body } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let done = false;
    const finish = (r) => {
      if (!done) {
        done = true;
        resolve({ t0, t1: Date.now(), ...r });
      }
    };
    const req = http.request(
      { host: '127.0.0.1', port: srv.port, method, path, agent: false, headers: { ...headers, Connection: 'close' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => finish({ ok: true, status: res.statusCode, type: res.headers['content-type'] || '', text }));
        res.on('error', (e) => finish({ ok: false, error: e.code || e.message }));
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => {
      finish({ ok: false, error: 'TIMEOUT' });
      req.destroy();
    });
    req.on('error', (e) => finish({ ok: false, error: e.code || e.message }));
    req.end(body);
  });
}

// A webhook signed as Twilio signs it.
function post(srv, path, params) {
  const sig = twilio.getExpectedTwilioSignature(AUTH_TOKEN, PUBLIC_BASE_URL + path, params);
  return request(srv, 'POST', path, {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': sig },
    body: new URLSearchParams(params).toString(),
  });
}

function statusParams(sid) {
  return { AccountSid: 'AC00000000000000000000000000000000', CallSid: sid, CallStatus: 'in-progress', SequenceNumber: '1' };
}

const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'socket hang up']);

// ---- what a voice answer is ----

// {kind: 'stream', session} (the normal answer), 'transfer' (voice.c answer_without_store:
// the settings' chain with a session no row has), 'apology' (twilio.c
// apology_on_store_failure: Say + Hangup), or {kind: 'bad', why}.
function classify(r) {
  if (!r.ok) return { kind: 'conn', why: r.error };
  if (r.status !== 200) return { kind: 'bad', why: `HTTP ${r.status}: ${r.text.slice(0, 200)}` };
  if (!/^text\/xml/.test(r.type)) return { kind: 'bad', why: `content-type ${r.type}` };
  const xml = parseTwiml(r.text);
  if (xml === null || xml.name !== 'Response') return { kind: 'bad', why: `not TwiML: ${r.text.slice(0, 200)}` };
  const verbs = xml.children.map((c) => c.name).join(',');
  const bad = (why) => ({ kind: 'bad', why: `${why}: ${r.text}` });
  if (verbs === 'Connect') {
    const stream = find(xml, 'Stream');
    if (!stream || stream.attrs.url !== 'wss://voice.example.com/twilio/media') return bad('no Stream to our media URL');
    const p = Object.fromEntries(stream.children.filter((c) => c.name === 'Parameter').map((c) => [c.attrs.name, c.attrs.value]));
    if (!/^[0-9a-f]{32}$/.test(p.session_id || '')) return bad('no session_id Parameter');
    if (xml.children[0].attrs.action !== `${PUBLIC_BASE_URL}/twilio/connect_action?session=${p.session_id}`) return bad('Connect action');
    return { kind: 'stream', session: p.session_id };
  }
  if (verbs === 'Say,Dial,Say,Hangup') {
    const [hold, dial, sorry] = xml.children;
    const number = dial.children.length === 1 && dial.children[0].name === 'Number' ? dial.children[0].text : null;
    if (hold.text !== 'Please hold while I connect you.') return bad('transfer notice');
    if (number !== TRANSFER_TO) return bad('transfer target');
    if (dial.attrs.action !== `${PUBLIC_BASE_URL}/twilio/transfer_callback?session=unavailable&attempt=0`) return bad('Dial action');
    if (dial.attrs.callerId !== CALLER || dial.attrs.answerOnBridge !== 'true') return bad('Dial attributes');
    if (sorry.text !== APOLOGY) return bad('apology after the Dial');
    return { kind: 'transfer' };
  }
  if (verbs === 'Say,Hangup' && xml.children[0].text === APOLOGY) return { kind: 'apology' };
  return bad('unexpected TwiML');
}

function sleepUntil(t) {
  return sleep(Math.max(0, t - Date.now()));
}

// ---- the cluster, without blocking node's loop (the load must go on meanwhile) ----

function pgsh(cmd, dir) {
  return new Promise((resolve, reject) => {
    const p = spawn(PG_SH, [cmd, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code, sig) =>
      code === 0 ? resolve(out.trim().split('\n').pop()) : reject(new Error(`pg.sh ${cmd} failed (${code ?? sig}): ${err}`)),
    );
  });
}

function dataDir(c) {
  const rd = existsSync(join(c.dir, 'rundir')) ? readFileSync(join(c.dir, 'rundir'), 'utf8').trim() : c.dir;
  return join(rd, 'data');
}

function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.replace(/^\d+ \(.*\) /, '')[0] !== 'Z';
  } catch {
    return false;
  }
}

// A fast shutdown (SIGINT to the postmaster, as pg_ctl stop -m fast sends), waited for.
async function stopPostmaster(c) {
  const pid = Number(readFileSync(join(dataDir(c), 'postmaster.pid'), 'utf8').split('\n')[0]);
  assert.ok(pid > 0 && alive(pid), 'the cluster is not running');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30000;
  while (alive(pid)) {
    assert.ok(Date.now() < deadline, 'the postmaster did not stop');
    await sleep(20);
  }
}

// ---- 1. kill -9 of one instance ----

test('kill -9 of one of two instances under load: nothing answered is lost, the other keeps serving', { timeout: 150000 }, async (t) => {
  const url = privateCluster().database('sb_kill');
  const a = await server(url);
  const b = await server(url);
  const name = (s) => (s === a ? 'a' : 'b');
  const other = (s) => (s === a ? b : a);
  const [survivor, victim] = [a, b];
  for (const s of [a, b]) {
    const h = await request(s, 'GET', '/health');
    assert.equal(h.status, 200, h.text);
  }

  const rate = SANITIZED ? 10 : 30; // webhooks a second, alternating between the instances
  const total = rate * 4;
  let killAt = Infinity;
  let exitAt = Infinity;
  const attempts = []; // every request: {what, to, sid, ...answer}
  const calls = [];

  async function send(what, to, sid, params) {
    const r = await post(to, what === 'voice' ? '/twilio/voice' : '/twilio/status', params);
    const rec = { what, to: name(to), sid, ...r, kind: what === 'voice' ? classify(r) : null };
    attempts.push(rec);
    return rec;
  }
  // one call: its webhook, retried on the survivor when the first instance cannot be reached,
  // then its status callback to the other instance than the one that answered (same retry)
  async function call(first) {
    const sid = callSid();
    const c = { sid };
    calls.push(c);
    let at = first;
    let v = await send('voice', at, sid, voiceParams(sid, CALLER));
    if (!v.ok && at === victim) {
      at = survivor;
      v = await send('voice', at, sid, voiceParams(sid, CALLER));
    }
    c.answer = v;
    if (v.kind.kind !== 'stream') return;
    let to = other(at);
    let s = await send('status', to, sid, statusParams(sid));
    if (!s.ok && to === victim) {
      to = survivor;
      s = await send('status', to, sid, statusParams(sid));
    }
    c.status = s;
  }

  // the survivor's /health, all along
  const health = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      health.push(await request(survivor, 'GET', '/health'));
      await sleep(200);
    }
  })();

  const start = Date.now();
  const flows = [];
  for (let i = 0; i < total; i++) {
    await sleepUntil(start + (i * 1000) / rate);
    if (i === total / 2) {
      // a few webhooks on their way into the victim when it dies: cut mid-request, their
      // rows may or may not be there, and the retry on the survivor must find the same call
      for (let k = 0; k < 4; k++) flows.push(call(victim));
      await sleep(SANITIZED ? 25 : 8);
      victim.proc.kill('SIGKILL');
      killAt = Date.now();
      victim.exited.then(() => (exitAt = Date.now()));
    }
    flows.push(call(i % 2 ? b : a));
  }
  await Promise.all(flows);
  polling = false;
  await poller;
  const ex = await victim.exited;
  assert.equal(ex.signal, 'SIGKILL');
  assert.ok(exitAt < Infinity);

  // no request hung, whichever instance it went to
  const hung = attempts.filter((r) => r.error === 'TIMEOUT');
  assert.deepEqual(hung, [], 'requests without an answer');

  // the survivor answered everything sent to it: 200, the normal answer (or an empty Response)
  for (const r of attempts.filter((x) => x.to === name(survivor))) {
    assert.ok(r.ok, `survivor: ${r.what} ${r.sid} failed: ${r.error}`);
    assert.equal(r.status, 200, `survivor: ${r.what} ${r.sid}: ${r.text}`);
    if (r.what === 'voice') assert.equal(r.kind.kind, 'stream', `survivor: voice ${r.sid}: ${r.kind.why || r.kind.kind}`);
    else assert.match(r.text, /^<\?xml[^>]*>\s*<Response\s*\/>\s*$/, `survivor: status ${r.sid}`);
  }
  assert.ok(health.length >= 5, `only ${health.length} /health answers`);
  for (const h of health) {
    assert.ok(h.ok, `survivor /health failed: ${h.error}`);
    assert.equal(h.status, 200, `survivor /health: ${h.text}`);
    assert.match(h.text, /"db":"ok"/);
  }

  // the victim: answered normally until the kill; then refused (or cut, in flight) at the
  // connection level, never an HTTP error, and nothing sent once it was gone was answered
  const toVictim = attempts.filter((x) => x.to === name(victim));
  const refused = toVictim.filter((r) => !r.ok);
  for (const r of toVictim) {
    if (r.ok) {
      assert.equal(r.status, 200, `victim: ${r.what} ${r.sid}: ${r.text}`);
      if (r.what === 'voice') assert.equal(r.kind.kind, 'stream', `victim: voice ${r.sid}: ${r.kind.why || r.kind.kind}`);
      assert.ok(r.t0 < exitAt, `victim answered ${r.what} ${r.sid} sent after it exited`);
    } else {
      assert.ok(CONNECTION_ERRORS.has(r.error), `victim: ${r.what} ${r.sid}: ${r.error}`);
      assert.ok(r.t1 >= killAt, `victim: ${r.what} ${r.sid} failed (${r.error}) before the kill`);
    }
  }
  assert.ok(toVictim.some((r) => r.ok && r.what === 'voice'), 'the victim answered nothing before the kill');
  assert.ok(refused.length > 0, 'no request met the killed instance');

  // every call was answered in the end (the refused ones by the survivor, on the retry)
  for (const c of calls) {
    assert.equal(c.answer.kind.kind, 'stream', `call ${c.sid}: ${c.answer.kind.why || c.answer.error}`);
    assert.ok(c.status?.ok && c.status.status === 200, `status of ${c.sid}: ${c.status?.error || c.status?.text}`);
  }

  // and the database has each one once, with the session it was answered with and its status
  const rows = new Map(
    psql(url, 'SELECT call_sid, session_id, status FROM calls')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [sid, session, status] = l.split('|');
        return [sid, { session, status }];
      }),
  );
  assert.equal(rows.size, calls.length);
  for (const r of attempts.filter((x) => x.what === 'voice' && x.kind.kind === 'stream')) {
    const row = rows.get(r.sid);
    assert.ok(row, `${r.sid} answered by ${r.to} has no row`);
    assert.equal(row.session, r.kind.session, `${r.sid}: answered with another session than its row's`);
  }
  for (const r of attempts.filter((x) => x.what === 'status' && x.ok && x.status === 200))
    assert.equal(rows.get(r.sid).status, 'in-progress', `${r.sid}: status callback answered by ${r.to} not applied`);

  assert.equal(survivor.proc.exitCode, null, 'the survivor exited');
  const retriedVoice = refused.filter((r) => r.what === 'voice').length;
  const sameCall = survivor.logLines('call.event').filter((l) => l.includes('type=call.retried')).length;
  t.diagnostic(
    `${calls.length} calls in ${((Date.now() - start) / 1000).toFixed(1)} s, kill after ${killAt - start} ms (exit seen ${exitAt - killAt} ms later); ` +
      `victim answered ${toVictim.filter((r) => r.ok).length} requests, ${refused.length} failed at the connection level ` +
      `(${retriedVoice} webhooks, ${refused.length - retriedVoice} status callbacks; ${Object.entries(refused.reduce((m, r) => ({ ...m, [r.error]: (m[r.error] || 0) + 1 }), {})).map(([e, n]) => `${n} ${e}`).join(', ')}), ` +
      `all retried on the survivor (${sameCall} found the victim's row); survivor /health ${health.length}x 200`,
  );
});

// ---- 2. the database restarts, then goes away for a while ----

test('database restart and outage under load: TwiML throughout, /health 503 while down, resumes by itself', { timeout: 150000 }, async (t) => {
  const c = privateCluster();
  const url = c.database('sb_restart');
  const a = await server(url, { PRIMARY_TRANSFER_TARGET: TRANSFER_TO });
  const b = await server(url, { PRIMARY_TRANSFER_TARGET: TRANSFER_TO });
  const name = (s) => (s === a ? 'a' : 'b');
  const tok = token({ tenant_id: 1 });

  const records = []; // {what: voice|health|api, to, ...answer, kind}
  let running = true;
  const inflight = [];
  function track(p) {
    inflight.push(p);
    return p;
  }
  async function voice(srv) {
    const sid = callSid();
    const r = await post(srv, '/twilio/voice', voiceParams(sid, CALLER));
    records.push({ what: 'voice', to: name(srv), sid, ...r, kind: classify(r) });
  }
  async function health(srv) {
    const r = await request(srv, 'GET', '/health');
    let kind = 'bad';
    if (r.ok && r.status === 200 && /"status":"ok"/.test(r.text) && /"db":"ok"/.test(r.text)) kind = 'ok';
    else if (r.ok && r.status === 503 && /"db":"error"/.test(r.text)) kind = 'down';
    records.push({ what: 'health', to: name(srv), ...r, kind: { kind } });
  }
  async function apiList(srv) {
    const r = await request(srv, 'GET', '/api/calls?limit=5', { headers: { Authorization: 'Bearer ' + tok } });
    let kind = 'bad';
    if (r.ok && r.status === 200 && /"calls":\[/.test(r.text)) kind = 'ok';
    else if (r.ok && r.status === 503 && /"code":"db_unavailable"/.test(r.text)) kind = 'down';
    records.push({ what: 'api', to: name(srv), ...r, kind: { kind } });
  }
  // steady load: webhooks alternating between the instances, /health and the API on each
  function every(ms, fn) {
    return (async () => {
      const start = Date.now();
      for (let i = 0; running; i++) {
        await sleepUntil(start + i * ms);
        if (running) track(fn(i));
      }
    })();
  }
  const rate = SANITIZED ? 8 : 20;
  const loops = [
    every(1000 / rate, (i) => voice(i % 2 ? b : a)),
    every(SANITIZED ? 200 : 100, (i) => health(i % 2 ? b : a)),
    every(SANITIZED ? 500 : 250, (i) => apiList(i % 2 ? b : a)),
  ];
  const normal = (r) => r.kind.kind === 'ok' || r.kind.kind === 'stream';

  // Waits until, since `since`, every answer has been normal for cleanMs with normal webhook
  // answers from both instances in that span; returns when the last abnormal answer came.
  async function waitResumed(since, cleanMs, limitMs) {
    const deadline = since + limitMs;
    for (;;) {
      const after = records.filter((r) => r.t0 >= since);
      const lastBad = Math.max(since, ...after.filter((r) => !normal(r)).map((r) => r.t1));
      const clean = after.filter((r) => r.t0 > lastBad);
      const both = ['a', 'b'].every((n) => clean.some((r) => r.what === 'voice' && r.to === n && r.t1 - lastBad >= 0));
      if (Date.now() - lastBad >= cleanMs && both) return lastBad;
      if (Date.now() > deadline) {
        const bad = after.filter((r) => !normal(r)).slice(-5).map((r) => `${r.what}@${r.to} +${r.t0 - since}ms: ${r.kind.kind} ${r.error || r.status}`);
        assert.fail(`the service did not resume within ${limitMs} ms of the database coming back; last abnormal: ${bad.join('; ')}`);
      }
      await sleep(100);
    }
  }
  const cleanMs = SANITIZED ? 2500 : 1500;
  const resumeLimit = SANITIZED ? 15000 : 10000; // the pool's backoff is at most 5 s

  await sleep(SANITIZED ? 2000 : 1500); // the load runs normally first
  const warmEnd = Date.now();

  // (a) a restart as cluster.restart() does it (pg.sh restart: fast stop + start, same port)
  const restartAt = Date.now();
  assert.equal(await pgsh('restart', c.dir), c.url);
  const restartDone = Date.now();
  const resumedR = await waitResumed(restartDone, cleanMs, resumeLimit);

  // (b) a longer outage: down for a few seconds, then started again on the same port
  const stopAt = Date.now();
  await stopPostmaster(c);
  const downAt = Date.now();
  await sleep(SANITIZED ? 4000 : 2500);
  const startAt = Date.now();
  assert.equal(await pgsh('start', c.dir), c.url);
  const upAt = Date.now();
  const resumedO = await waitResumed(upAt, cleanMs, resumeLimit);

  running = false;
  await Promise.all(loops);
  await Promise.all(inflight);
  const windows = [
    { name: 'restart', from: restartAt, to: restartDone, resumed: resumedR },
    { name: 'outage', from: stopAt, to: upAt, resumed: resumedO },
  ];

  // every request was answered, in time, with a valid answer for when it was made
  const byKind = (what, kind) => records.filter((r) => r.what === what && r.kind.kind === kind).length;
  for (const r of records) {
    assert.ok(r.ok, `${r.what}@${r.to} at +${r.t0 - warmEnd} ms: no answer (${r.error})`);
    assert.ok(r.t1 - r.t0 <= MAX_LATENCY_MS, `${r.what}@${r.to} at +${r.t0 - warmEnd} ms took ${r.t1 - r.t0} ms`);
    if (r.what === 'voice') assert.equal(r.status, 200, `webhook ${r.sid}: HTTP ${r.status} ${r.text}`);
    assert.notEqual(r.kind.kind, 'bad', `${r.what}@${r.to} at +${r.t0 - warmEnd} ms: ${r.kind.why || `HTTP ${r.status} ${r.text}`}`);
    if (!normal(r)) {
      // the fallbacks (transfer, apology, 503) only while the database was away or the pool
      // still backing off from it
      const w = windows.find((w) => r.t1 >= w.from && r.t0 <= w.resumed);
      assert.ok(w, `${r.what}@${r.to} at +${r.t0 - warmEnd} ms answered ${r.kind.kind} with the database up`);
    }
  }
  // while the database was certainly down, nothing claimed otherwise: /health 503, no webhook
  // answered with a stream (there was nowhere to keep its call)
  const down = records.filter((r) => r.t0 >= downAt + 100 && r.t1 <= startAt);
  for (const r of down) assert.ok(!normal(r), `${r.what}@${r.to} at +${r.t0 - warmEnd} ms: ${r.kind.kind} while the database was down`);
  for (const n of ['a', 'b']) {
    assert.ok(down.some((r) => r.what === 'health' && r.to === n && r.kind.kind === 'down'), `${n}: no /health 503 while the database was down`);
    assert.ok(down.some((r) => r.what === 'voice' && r.to === n && r.kind.kind !== 'stream'), `${n}: no fallback webhook answer while the database was down`);
  }

  // after it: the normal answers, both instances, rows included
  for (const s of [a, b]) {
    for (let i = 0; i < 5; i++) {
      const sid = callSid();
      const r = await post(s, '/twilio/voice', voiceParams(sid, CALLER));
      records.push({ what: 'voice', to: name(s), sid, ...r, kind: classify(r) });
      assert.equal(classify(r).kind, 'stream', `after the outage, ${name(s)}: ${r.text || r.error}`);
    }
    const h = await request(s, 'GET', '/health');
    assert.equal(h.status, 200, h.text);
  }
  const rows = new Map(
    psql(url, 'SELECT call_sid, session_id FROM calls')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('|')),
  );
  const streams = records.filter((r) => r.what === 'voice' && r.kind.kind === 'stream');
  for (const r of streams) assert.equal(rows.get(r.sid), r.kind.session, `${r.sid} answered with a stream at +${r.t0 - warmEnd} ms has no row`);

  // and neither instance fell over
  for (const s of [a, b]) assert.equal(s.proc.exitCode, null, `${name(s)} exited:\n${s.stderr.slice(-3000)}`);
  for (const s of [a, b]) {
    servers.splice(servers.indexOf(s), 1);
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr.slice(-3000));
    cleanup(s.dir);
  }

  const lat = (what) => Math.max(...records.filter((r) => r.what === what).map((r) => r.t1 - r.t0));
  const inWin = (w, what, kind) => records.filter((r) => r.what === what && r.kind.kind === kind && r.t1 >= w.from && r.t0 <= w.resumed).length;
  t.diagnostic(
    `${records.length} requests; restart took ${restartDone - restartAt} ms, resumed ${resumedR - restartDone} ms after ` +
      `(fallbacks: ${inWin(windows[0], 'voice', 'transfer')} transfer, ${inWin(windows[0], 'voice', 'apology')} apology, ` +
      `${inWin(windows[0], 'health', 'down')} /health 503, ${inWin(windows[0], 'api', 'down')} API 503); ` +
      `outage ${upAt - downAt} ms, resumed ${resumedO - upAt} ms after the start ` +
      `(fallbacks: ${inWin(windows[1], 'voice', 'transfer')} transfer, ${inWin(windows[1], 'voice', 'apology')} apology, ` +
      `${inWin(windows[1], 'health', 'down')} /health 503, ${inWin(windows[1], 'api', 'down')} API 503); ` +
      `${streams.length} streams, all with rows; webhooks ${byKind('voice', 'stream')} stream/${byKind('voice', 'transfer')} transfer/` +
      `${byKind('voice', 'apology')} apology; max latency voice ${lat('voice')} ms, health ${lat('health')} ms, api ${lat('api')} ms`,
  );
});

test('a database that stops answering (frozen): webhooks get the fallback within the deadline, a stop exits cleanly', async () => {
  const c = privateCluster();
  const url = c.database('sb_frozen');
  const srv = await server(url, { WORKERS: '1', DATABASE_POOL: '2', PRIMARY_TRANSFER_TARGET: TRANSFER_TO, SHUTDOWN_TIMEOUT_S: '2' });
  assert.equal((await post(srv, '/twilio/voice', voiceParams(callSid()))).status, 200);
  // every process of the cluster stopped: sockets stay open, nothing answers (a frozen host)
  const pm = readFileSync(join(dataDir(c), 'postmaster.pid'), 'utf8').split('\n')[0].trim();
  const kids = readFileSync(`/proc/${pm}/task/${pm}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  const pids = [pm, ...kids].map(Number);
  for (const p of pids) process.kill(p, 'SIGSTOP');
  try {
    const t0 = Date.now();
    const [voice, health] = await Promise.all([post(srv, '/twilio/voice', voiceParams(callSid())), request(srv, 'GET', '/health')]);
    // a connect (5 s) or a round trip (6 s, PG_WAIT_MS) is given up: Twilio waits 15 s
    assert.ok(voice.ok && voice.status === 200, JSON.stringify(voice));
    assert.ok(voice.t1 - t0 < 8000, `voice answered after ${voice.t1 - t0} ms`);
    assert.match(voice.text, /<Dial[^>]*><Number>\+14155550199<\/Number><\/Dial>|<Hangup\/>/);
    assert.ok(health.ok && health.status === 503, JSON.stringify(health));
    // a webhook waiting on the frozen database when the server is told to stop: a clean exit
    const pending = post(srv, '/twilio/voice', voiceParams(callSid()));
    await sleep(300);
    const stopped = await Promise.race([srv.stop(), sleep(20000).then(() => null)]);
    assert.ok(stopped, 'the server did not exit while the database was frozen');
    assert.equal(stopped.code, 0, srv.stderr.slice(-2000));
    servers.splice(servers.indexOf(srv), 1);
    cleanup(srv.dir);
    await pending;
  } finally {
    for (const p of pids) process.kill(p, 'SIGCONT');
  }
});
