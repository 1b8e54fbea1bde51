// The server side of the dashboard over real HTTP: the embedded page and its headers (CSP,
// caching), the live feed (/api/live, Server-Sent Events: tenant scoping, transcript lines,
// token expiry, shutdown) and the picture of the day (/api/stats).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { startServer, sqlite, cleanup } from './lib/harness.mjs';
import { JWT_SECRET, token, api } from './lib/jwt.mjs';

const STATIC = new URL('../../static/', import.meta.url);
let srv;
const db = () => srv.dir + '/data/switchboard.db';
before(async () => {
  srv = await startServer({ env: { JWT_SECRET, TLS_PORT: 'off', AI_PROVIDER: 'echo', WORKERS: '2' } });
  sqlite(db(), "INSERT INTO tenants (id, name) VALUES (2, 'other')");
});
after(async () => {
  if (srv) {
    await srv.stop();
    cleanup(srv.dir);
  }
});

const now = () => Math.floor(Date.now() / 1000);

// Reads a Server-Sent Events stream; next(type) resolves with the next event of that type.
async function openLive(url, tok) {
  const ac = new AbortController();
  const res = await fetch(url + '/api/live', { headers: { Authorization: 'Bearer ' + tok, Accept: 'text/event-stream' }, signal: ac.signal });
  const events = [];
  const waiters = [];
  let ended = false;
  let endedResolve;
  const endedP = new Promise((r) => (endedResolve = r));
  const deliver = () => {
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i];
      const k = events.findIndex((e, j) => j >= w.from && w.pred(e));
      if (k >= 0) {
        waiters.splice(i--, 1);
        w.from = k + 1;
        w.resolve(events[k]);
      }
    }
  };
  if (res.status === 200) {
    (async () => {
      const dec = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of res.body) {
          buf += dec.decode(chunk, { stream: true });
          let at;
          while ((at = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, at);
            buf = buf.slice(at + 2);
            const ev = { type: 'message', data: '', comment: false };
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) ev.comment = true;
              else if (line.startsWith('event: ')) ev.type = line.slice(7);
              else if (line.startsWith('data: ')) ev.data += line.slice(6);
              else if (line.startsWith('retry: ')) ev.retry = Number(line.slice(7));
            }
            if (ev.comment && ev.type === 'message') continue;
            if (ev.data) ev.json = JSON.parse(ev.data);
            events.push(ev);
            deliver();
          }
        }
      } catch {}
      ended = true;
      endedResolve();
    })();
  }
  let cursor = 0;
  return {
    res,
    events,
    get ended() {
      return ended;
    },
    endedP,
    close: () => ac.abort(),
    // the next event (after the last one returned) that satisfies pred
    next(pred, ms = 5000) {
      return new Promise((resolve, reject) => {
        // a live timer: it is what keeps node waiting for the server's next event
        const timer = setTimeout(() => reject(new Error('no such event within ' + ms + ' ms; got ' + JSON.stringify(events.map((e) => e.type)))), ms);
        const w = { pred, from: cursor, resolve: (e) => (clearTimeout(timer), (cursor = w.from), resolve(e)) };
        waiters.push(w);
        deliver();
      });
    },
  };
}

test('the page: CSP, content types, versioned immutable assets, ETag revalidation', async () => {
  const r = await fetch(srv.url + '/');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/); // no 'unsafe-inline', no other origin
  assert.doesNotMatch(csp, /unsafe|https?:|\*/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  const html = await r.text();
  assert.doesNotMatch(html, /__ASSET_VERSION__/);
  const urls = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  assert.ok(urls.length >= 2, html);
  const version = urls[0].split('/')[2];
  assert.match(version, /^[0-9a-f]{12}$/);

  const types = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', svg: 'image/svg+xml' };
  for (const name of readdirSync(STATIC).filter((n) => n !== 'index.html')) {
    const a = await fetch(`${srv.url}/assets/${version}/${name}`);
    assert.equal(a.status, 200, name);
    assert.equal(a.headers.get('content-type'), types[name.split('.').pop()], name);
    assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable', name);
    assert.deepEqual(Buffer.from(await a.arrayBuffer()), readFileSync(new URL(name, STATIC)), name);
    // an older page's version: today's file, revalidated
    const old = await fetch(`${srv.url}/assets/000000000000/${name}`);
    assert.equal(old.headers.get('cache-control'), 'no-cache');
    // a conditional request with the ETag: 304, no body
    const again = await fetch(`${srv.url}/assets/${version}/${name}`, { headers: { 'If-None-Match': a.headers.get('etag') } });
    assert.equal(again.status, 304);
    assert.equal((await again.arrayBuffer()).byteLength, 0);
  }
  for (const bad of ['/assets/x/nope.js', `/assets/${version}/index.html`, `/assets/${version}/..%2fserver%2fmain.c`]) {
    const n = await fetch(srv.url + bad);
    assert.equal(n.status, 404, bad);
  }
  // the API keeps its own no-store
  assert.equal((await api(srv, 'GET', '/api/calls')).headers.get('cache-control'), 'no-store');
});

test('live: token required, tenant-scoped call rows pushed on changes and transcript lines', async () => {
  assert.equal((await api(srv, 'GET', '/api/live', { tok: null })).status, 401);
  assert.equal((await api(srv, 'GET', '/api/live', { tok: 'x.y.z' })).status, 401);
  const mine = await openLive(srv.url, token({ tenant_id: 1, role: 'agent' }));
  const other = await openLive(srv.url, token({ tenant_id: 2, role: 'agent' }));
  assert.equal(mine.res.status, 200);
  assert.equal(mine.res.headers.get('content-type'), 'text/event-stream');
  assert.equal(mine.res.headers.get('cache-control'), 'no-store');
  const ready = await mine.next((e) => e.type === 'ready');
  assert.equal(ready.retry, 2000);
  await other.next((e) => e.type === 'ready');

  const r = await api(srv, 'POST', '/api/calls/initiate', { tok: token({ tenant_id: 1 }), body: { customer_id: 'c-1', phone: '+14155550100', agent_type: 'sales' } });
  assert.equal(r.status, 201, r.text);
  const ev = await mine.next((e) => e.type === 'call' && e.json.id === r.json.session_id);
  assert.equal(ev.json.status, 'simulation');
  assert.equal(ev.json.customer_id, 'c-1');
  assert.equal(ev.json.platform, 'twilio');
  assert.equal(ev.json.tenant_id, undefined); // the list row's shape, nothing more

  // a transcript line alone (the bridge writes these mid-call) moves the call too
  const callId = sqlite(db(), `SELECT id FROM calls WHERE session_id='${r.json.session_id}'`);
  sqlite(db(), `INSERT INTO transcripts (call_id, role, text) VALUES (${callId}, 'caller', 'hello there')`);
  await mine.next((e) => e.type === 'call' && e.json.id === r.json.session_id);
  const detail = await api(srv, 'GET', `/api/calls/${r.json.session_id}`, { tok: token({ tenant_id: 1 }) });
  assert.equal(detail.json.transcript[0].text, 'hello there');
  assert.equal(detail.json.recording_available, false); // no WAV: the page shows no player

  // the other tenant saw nothing of it
  const o = await api(srv, 'POST', '/api/calls/initiate', { tok: token({ tenant_id: 2 }), body: { customer_id: 'c-9', phone: '+14155550101', agent_type: 'sales' } });
  const seen = await other.next((e) => e.type === 'call');
  assert.equal(seen.json.id, o.json.session_id);
  assert.ok(!other.events.some((e) => e.type === 'call' && e.json.id === r.json.session_id));
  assert.ok(!mine.events.some((e) => e.type === 'call' && e.json.id === o.json.session_id));
  mine.close();
  other.close();
});

test('live: an expiring token ends the stream with an expired event', async () => {
  const s = await openLive(srv.url, token({ exp: now() + 2 }));
  await s.next((e) => e.type === 'ready');
  const e = await s.next((x) => x.type === 'expired', 6000);
  assert.deepEqual(e.json, {});
  await Promise.race([s.endedP, new Promise((_, no) => setTimeout(() => no(new Error('stream not ended')), 3000))]);
  assert.ok(s.ended);
});

test('stats: validation names the field; per-hour buckets and outcome shares', async () => {
  const tok = token({ tenant_id: 2 });
  const q = (s) => api(srv, 'GET', '/api/stats' + s, { tok });
  assert.equal((await q('')).json.error.field, 'since');
  assert.equal((await q('?since=yesterday&until=2026-11-23T00:00:00Z')).json.error.field, 'since');
  assert.equal((await q('?since=2026-02-30T00:00:00Z&until=2026-03-02T00:00:00Z')).json.error.field, 'since'); // not rolled over to March 2
  assert.equal((await q('?since=2026-11-22T00:00:00Z&until=2026-11-22T25:61:00Z')).json.error.field, 'until');
  assert.equal((await q('?since=2026-11-22T00:00:00Z')).json.error.field, 'until');
  assert.equal((await q('?since=2026-11-22T00:00:00Z&until=2026-11-21T00:00:00Z')).json.error.field, 'until');
  assert.equal((await q('?since=2026-11-01T00:00:00Z&until=2026-11-22T00:00:00Z')).status, 400); // over 7 days
  assert.equal((await api(srv, 'GET', '/api/stats?since=2026-11-22T00:00:00Z&until=2026-11-23T00:00:00Z', { tok: null })).status, 401);

  // tenant 3's calls of a past day, one per outcome, at known hours
  sqlite(db(), "INSERT INTO tenants (id, name) VALUES (3, 'stats')");
  const rows = [
    // [session, started_at, ended, extra columns]
    ['s-ai', '2026-03-10T09:05:00.000Z', true, "status='completed'"],
    ['s-tr', '2026-03-10T09:40:00.000Z', true, "status='completed', transfer_target='sip:2000@pbx', transfer_result='completed'"],
    ['s-vm', '2026-03-10T10:10:00.000Z', true, "status='completed', transfer_target='+15005550006', transfer_result='completed'"],
    ['s-amd', '2026-03-10T10:20:00.000Z', true, "status='completed', amd_result='machine_end_beep'"],
    ['s-busy', '2026-03-10T13:00:00.000Z', true, "status='busy'"],
    ['s-noans', '2026-03-10T13:30:00.000Z', true, "status='completed', transfer_target='sip:2000@pbx', transfer_result='no-answer'"],
    ['s-live', '2026-03-10T23:59:59.999Z', false, "status='in-progress'"],
    ['s-sim', '2026-03-10T00:00:00.000Z', true, "status='simulation'"],
    ['s-before', '2026-03-09T23:59:59.999Z', true, "status='completed'"],
    ['s-after', '2026-03-11T00:00:00.000Z', true, "status='completed'"],
  ];
  for (const [sid, at, ended, extra] of rows) {
    sqlite(db(), `INSERT INTO calls (session_id, tenant_id, direction, started_at, ended_at) VALUES ('${sid}', 3, 'inbound', '${at}', ${ended ? `'${at}'` : 'NULL'}); UPDATE calls SET ${extra} WHERE session_id='${sid}'`);
  }
  const vm = sqlite(db(), "SELECT id FROM calls WHERE session_id='s-vm'");
  sqlite(db(), `INSERT INTO call_events (call_id, type, detail) VALUES (${vm}, 'transfer.attempt', '{"attempt":2,"stage":"dial","target":"+15005550006","voicemail":true}')`);

  const r = await api(srv, 'GET', '/api/stats?since=2026-03-10T00:00:00Z&until=2026-03-11T00:00:00Z', { tok: token({ tenant_id: 3 }) });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.total, 8);
  assert.deepEqual(r.json.outcomes, { in_progress: 1, ai: 1, transferred: 1, voicemail: 2, failed: 2, simulated: 1 });
  assert.equal(r.json.buckets.length, 24);
  assert.equal(r.json.buckets[9].start, '2026-03-10T09:00:00.000Z');
  const counts = r.json.buckets.map((b) => b.calls);
  assert.deepEqual([counts[0], counts[9], counts[10], counts[13], counts[23]], [1, 2, 2, 2, 1]);
  assert.equal(counts.reduce((a, b) => a + b), 8);

  // a local day given with an offset (UTC-05:00): the same instants, buckets from its start
  const l = await api(srv, 'GET', '/api/stats?since=2026-03-10T00:00:00-05:00&until=2026-03-11T00:00:00-05:00', { tok: token({ tenant_id: 3 }) });
  assert.equal(l.json.since, '2026-03-10T05:00:00.000Z');
  assert.equal(l.json.buckets[4].start, '2026-03-10T09:00:00.000Z');
  assert.equal(l.json.buckets[4].calls, 2);
  // another tenant's token sees none of these
  const t2 = await api(srv, 'GET', '/api/stats?since=2026-03-10T00:00:00Z&until=2026-03-11T00:00:00Z', { tok });
  assert.equal(t2.json.total, 0);
});

// last: it stops the server
test('live: SIGTERM ends open streams at once, the server exits 0', async () => {
  const s = await openLive(srv.url, token());
  await s.next((e) => e.type === 'ready');
  const t0 = Date.now();
  const stopped = srv.stop();
  await s.endedP;
  assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`); // not held until SHUTDOWN_TIMEOUT_S
  const r = await stopped;
  assert.equal(r.code, 0, srv.stderr);
  cleanup(srv.dir);
  srv = null;
});
