// Self-test of the fake Asterisk (tests/fakes/asterisk_ari.mjs), driven as switchboard drives
// Asterisk: REST with node's fetch, the events WebSocket with `ws`, and a UDP socket playing
// the media gateway. Auth and path errors, parameter checks, state errors (404/409/412/422),
// an inbound call through answer, bridge and ExternalMedia to RTP both ways, RTP faults in both
// directions, hang-up event order, originate outcomes, playback, DTMF, the request log, and a
// restart with reconnect. Needs no switchboard binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { FakeAsterisk, basicAuth, parseRtp, buildRtp, waitFor, sleep, REALM } from '../fakes/asterisk_ari.mjs';

const USER = 'switchboard';
const PASS = 'ari-secret-0123';
const APP = 'switchboard';
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$/;

let fake, client;
const opened = [];

// One REST call as switchboard makes it: query parameters percent-encoded, or a JSON body.
async function ari(method, path, { query, json, body, contentType, auth = [USER, PASS] } = {}) {
  const headers = {};
  if (auth) headers.Authorization = basicAuth(...auth);
  if (json !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(json); }
  else if (contentType) headers['Content-Type'] = contentType;
  const qs = query ? '?' + new URLSearchParams(query) : '';
  const r = await fetch(`${fake.ariUrl}${path}${qs}`, { method, headers, body });
  const text = await r.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch {}
  return { status: r.status, headers: r.headers, text, json: parsed };
}

function errorIs(r, status, message) {
  assert.equal(r.status, status, r.text);
  if (message !== undefined) assert.deepEqual(r.json, { message });
}

// The events WebSocket; resolves once open, rejects with { status, body, headers } if refused.
function connect({ app = APP, auth = 'basic', extra = '' } = {}) {
  const q = new URLSearchParams();
  if (app) q.set('app', app);
  if (auth === 'api_key') q.set('api_key', `${USER}:${PASS}`);
  const headers = auth === 'basic' ? { Authorization: basicAuth(USER, PASS) } : Array.isArray(auth) ? { Authorization: basicAuth(...auth) } : {};
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${fake.port}/ari/events?${q}${extra}`, { headers });
    const c = { ws, events: [], closed: null };
    c.of = (type) => c.events.filter((e) => e.type === type);
    c.wait = (type, where = () => true, ms = 3000) => waitFor(() => c.events.find((e) => e.type === type && where(e)), ms);
    c.about = (id) => c.events.filter((e) => e.channel?.id === id || e.peer?.id === id);
    ws.on('message', (d) => c.events.push(JSON.parse(d)));
    ws.on('close', (code, reason) => { c.closed = { code, reason: reason.toString() }; });
    ws.on('open', () => { opened.push(c); resolve(c); });
    ws.on('unexpected-response', (req, res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode, body: b, headers: res.headers })));
    });
    ws.on('error', reject);
  });
}

// The media gateway: one UDP socket per call, sends from the socket it receives on.
async function gateway() {
  const s = dgram.createSocket('udp4');
  const g = { s, got: [], junk: [] };
  s.on('message', (m, r) => {
    const p = parseRtp(m);
    const from = `${r.address}:${r.port}`;
    if (p) g.got.push({ ...p, payload: Buffer.from(p.payload), at: performance.now(), from });
    else g.junk.push({ data: Buffer.from(m), from });
  });
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  g.port = s.address().port;
  g.host = `127.0.0.1:${g.port}`;
  g.ssrc = 0x1234abcd;
  g.seq = 1000;
  g.ts = 50000;
  g.sendTo = (to, pkt, sock = s) => sock.send(buildRtp(pkt), to.port, to.address);
  // count packets of 160 bytes PT 0 every 20 ms (drift-free), as switchboard paces the agent
  g.stream = async (to, count, fill = 0xff, sock = s, ssrc = g.ssrc) => {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const wait = t0 + i * 20 - performance.now();
      if (wait > 0) await sleep(wait);
      g.sendTo(to, { pt: 0, seq: g.seq++, ts: (g.ts += 160), ssrc, marker: i === 0, payload: Buffer.alloc(160, fill) }, sock);
    }
  };
  g.close = () => new Promise((r) => s.close(r));
  return g;
}

// The whole inbound path as switchboard runs it; returns what the checks need.
async function inboundToMedia({ from = '+15551230001', to = '+15557650000', args = [] } = {}) {
  const mark = client.events.length;
  const caller = await fake.inboundCall({ from, to, args });
  const start = await waitFor(() => client.events.slice(mark).find((e) => e.type === 'StasisStart' && e.channel.id === caller.id));
  assert.equal((await ari('POST', `/channels/${caller.id}/answer`)).status, 204);
  const bridge = (await ari('POST', '/bridges', { query: { type: 'mixing' } })).json;
  assert.equal((await ari('POST', `/bridges/${bridge.id}/addChannel`, { query: { channel: caller.id } })).status, 204);
  const gw = await gateway();
  const emR = await ari('POST', '/channels/externalMedia', {
    query: { app: APP, external_host: gw.host, format: 'ulaw', encapsulation: 'rtp', transport: 'udp', connection_type: 'client', direction: 'both', data: `call-${caller.id}` },
  });
  assert.equal(emR.status, 200, emR.text);
  const em = emR.json;
  const emStart = await client.wait('StasisStart', (e) => e.channel.id === em.id);
  assert.equal((await ari('POST', `/bridges/${bridge.id}/addChannel`, { query: { channel: em.id } })).status, 204);
  await client.wait('ChannelEnteredBridge', (e) => e.channel.id === em.id);
  const local = { address: em.channelvars.UNICASTRTP_LOCAL_ADDRESS, port: +em.channelvars.UNICASTRTP_LOCAL_PORT };
  return { caller, start, bridge, gw, em, emStart, local, leg: fake.rtp(em.id) };
}

before(async () => {
  fake = await new FakeAsterisk({ username: USER, password: PASS, app: APP, users: [{ user: 'viewer', password: 'ro', readOnly: true }] }).start();
  client = await connect();
  await fake.waitForApp(APP);
});

after(async () => {
  for (const c of opened) c.ws.terminate();
  await fake?.stop();
});

test('auth: 401 with the realm for missing or wrong credentials, before any path check; api_key; read-only 403', async () => {
  for (const auth of [null, [USER, 'wrong'], ['nobody', PASS]]) {
    for (const path of ['/channels', '/no/such/thing']) {
      const r = await ari('GET', path, { auth });
      errorIs(r, 401, 'Authentication required');
      assert.equal(r.headers.get('www-authenticate'), `Basic realm="${REALM}"`);
    }
  }
  assert.equal(REALM, 'Asterisk REST Interface');
  const k = await ari('GET', '/channels', { auth: null, query: { api_key: `${USER}:${PASS}` } });
  assert.equal(k.status, 200, k.text);
  assert.deepEqual(k.json, []);
  errorIs(await ari('GET', '/channels', { auth: null, query: { api_key: `${USER}:` } }), 401);
  assert.equal((await ari('GET', '/bridges', { auth: ['viewer', 'ro'] })).status, 200);
  errorIs(await ari('POST', '/bridges', { auth: ['viewer', 'ro'] }), 403, 'Write access denied');
});

test('paths: 404 Resource not found, trailing slash, 405 with Allow, 501 for what the fake lacks, ping', async () => {
  errorIs(await ari('GET', '/nothing'), 404, 'Resource not found');
  errorIs(await ari('POST', '/channels/1.1/answer/more'), 404, 'Resource not found');
  errorIs(await ari('GET', '/channels/'), 404, 'ARI URLs do not end with a slash. Try /ari/channels');
  const m = await ari('GET', '/channels/1.1/answer');
  errorIs(m, 405, 'Invalid method');
  assert.equal(m.headers.get('allow'), 'OPTIONS,POST');
  errorIs(await ari('PUT', '/bridges'), 405, 'Invalid method');
  const n = await ari('POST', '/channels/1.1/redirect', { query: { endpoint: 'PJSIP/x' } });
  assert.equal(n.status, 501);
  const ping = await ari('GET', '/asterisk/ping');
  assert.equal(ping.json.ping, 'pong');
  assert.match(ping.json.timestamp, TIME_RE);
  assert.equal((await ari('GET', '/asterisk/info')).json.system.entity_id, fake.asteriskId);
  // Asterisk writes times in its host's zone: a fake in UTC+2 says so
  const east = await new FakeAsterisk({ username: USER, password: PASS, tzOffsetMinutes: 120 }).start();
  try {
    const r = await fetch(`${east.ariUrl}/asterisk/ping`, { headers: { Authorization: basicAuth(USER, PASS) } });
    const t = (await r.json()).timestamp;
    assert.match(t, /\+0200$/);
    assert.ok(Math.abs(Date.parse(t.replace(/(\d{2})(\d{2})$/, '$1:$2')) - Date.now()) < 5000);
  } finally {
    await east.stop();
  }
  // a plain GET of the events resource (no upgrade)
  assert.equal((await ari('GET', '/events', { query: { app: APP } })).status, 426);
});

test('events socket: 400 without app, 401, api_key, ApplicationRegistered, ApplicationReplaced', async () => {
  const noApp = await connect({ app: null }).catch((e) => e);
  assert.equal(noApp.status, 400);
  assert.match(noApp.body, /HTTP request is missing param: \[app\]/);
  const bad = await connect({ app: 'other', auth: [USER, 'nope'] }).catch((e) => e);
  assert.equal(bad.status, 401);
  assert.equal(bad.headers['www-authenticate'], `Basic realm="${REALM}"`);
  const none = await connect({ app: 'other', auth: null }).catch((e) => e);
  assert.equal(none.status, 401);

  const first = await connect({ app: 'other', auth: 'api_key', extra: '&subscribeAll=true' });
  const reg = await first.wait('ApplicationRegistered');
  assert.equal(reg.application, 'other');
  assert.match(reg.timestamp, TIME_RE);
  assert.equal(reg.asterisk_id, fake.asteriskId);
  assert.equal(fake.connections.at(-1).subscribeAll, true);
  const second = await connect({ app: 'other' });
  await first.wait('ApplicationReplaced');
  await second.wait('ApplicationRegistered');
  // events for the app now go to the second socket only
  const ch = await fake.inboundCall({ app: 'other', to: '+15550001111' });
  await second.wait('StasisStart', (e) => e.channel.id === ch.id);
  assert.equal(first.of('StasisStart').length, 0);
  fake.hangup(ch.id);
  await second.wait('ChannelDestroyed', (e) => e.channel.id === ch.id);
  first.ws.close();
  second.ws.close();
  await waitFor(() => !fake.owners.has('other'));
  // with the app gone Stasis() fails: no event, the channel is hung up
  const lost = await fake.inboundCall({ app: 'other' });
  assert.equal(fake.channels.has(lost.id), false);
  assert.equal(fake.ended.get(lost.id).stasisStatus, 'FAILED');
});

test('400s: externalMedia, originate, hangup and addChannel checks with Asterisk\'s messages', async () => {
  const em = (q) => ari('POST', '/channels/externalMedia', { query: q });
  const good = { app: APP, external_host: '127.0.0.1:40000', format: 'ulaw' };
  const cases = [
    [{ ...good, app: undefined }, 'app cannot be empty'],
    [{ ...good, external_host: undefined }, 'external_host is required for all but websocket server connections'],
    [{ ...good, external_host: '127.0.0.1' }, 'external_host must be <host>:<port> for all transports other than websocket'],
    [{ ...good, external_host: 'gateway.example.com' }, 'external_host must be <host>:<port> for all transports other than websocket'],
    [{ ...good, transport: 'tcp' }, "transport must be 'udp' for rtp encapsulation"],
    [{ ...good, encapsulation: 'audiosocket' }, "transport must be 'tcp' for audiosocket encapsulation"],
    [{ ...good, transport: 'websocket' }, "encapsulation must be 'none' for websocket transport"],
    [{ ...good, connection_type: 'server' }, "'server' connection_type can only be used with the websocket transport"],
    [{ ...good, format: undefined }, 'format cannot be empty'],
    [{ ...good, format: 'nosuch' }, 'Provided format (nosuch) was not found'],
    [{ ...good, direction: 'sideways' }, 'Invalid direction specified'],
    [{ ...good, encapsulation: 'audiosocket', transport: 'tcp' }, 'data can not be empty'],
  ];
  for (const [q, message] of cases) {
    const clean = Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined));
    errorIs(await em(clean), 400, message);
  }
  const orig = (q) => ari('POST', '/channels', { query: q });
  errorIs(await orig({ app: APP }), 400, 'Endpoint must be specified');
  errorIs(await orig({ endpoint: 'PJSIP', app: APP }), 400, 'Invalid endpoint specified');
  errorIs(await orig({ endpoint: 'PJSIP/2000' }), 400, 'Application or extension must be specified');
  errorIs(await orig({ endpoint: 'PJSIP/2000', app: APP, originator: 'nope' }), 400, 'Provided originator channel was not found');
  errorIs(await orig({ endpoint: 'PJSIP/2000', app: APP, originator: 'a', formats: 'ulaw' }), 400, "Originator and formats can't both be specified");
  errorIs(await orig({ endpoint: 'PJSIP/2000', app: APP, channelId: 'x'.repeat(150) }), 400, 'Uniqueid length exceeds maximum of 149');
  // a JSON body carries the parameters too; a non-string where a string belongs is not read
  errorIs(await ari('POST', '/channels', { json: { endpoint: 2000, app: APP } }), 400, 'Endpoint must be specified');
  errorIs(await ari('POST', '/channels', { body: '{"endpoint":', contentType: 'application/json' }), 400, 'Error parsing request body');

  const ch = await fake.inboundCall();
  await client.wait('StasisStart', (e) => e.channel.id === ch.id);
  errorIs(await ari('DELETE', `/channels/${ch.id}`, { query: { reason: 'busy', reason_code: '17' } }), 400, "The reason and reason_code can't both be specified");
  errorIs(await ari('DELETE', `/channels/${ch.id}`, { query: { reason: 'tired' } }), 400, 'Invalid reason for hangup reason provided');
  errorIs(await ari('DELETE', `/channels/${ch.id}`, { query: { reason_code: 'x' } }), 400, 'Invalid reason for hangup reason code provided');
  const b = (await ari('POST', '/bridges')).json;
  errorIs(await ari('POST', `/bridges/${b.id}/addChannel`), 400, 'Missing parameter channel');
  errorIs(await ari('POST', `/bridges/${b.id}/addChannel`, { query: { channel: 'no.such' } }), 400, 'Channel not found');
  errorIs(await ari('POST', `/bridges/${b.id}/removeChannel`, { query: { channel: ch.id } }), 422, 'Channel not in this bridge');
  errorIs(await ari('POST', `/channels/${ch.id}/play`), 500, 'Failed to queue media for playback');
  errorIs(await ari('POST', `/channels/${ch.id}/play`, { query: { media: 'sound:hello', skipms: '-1' } }), 400, 'skipms cannot be negative');
  // the parameters reached the request log as they were parsed
  assert.equal(fake.requests.at(-1).params.skipms, -1);
  fake.hangup(ch.id);
  assert.equal((await ari('DELETE', `/bridges/${b.id}`)).status, 204);
});

test('404, 409, 412 and 422 follow the state: unknown, not in Stasis, ringing, duplicate ids', async () => {
  errorIs(await ari('GET', '/channels/1.999'), 404, 'Channel not found');
  errorIs(await ari('POST', '/channels/1.999/answer'), 404, 'Channel not found');
  errorIs(await ari('POST', '/channels/1.999/ring'), 404, 'Channel not found');
  errorIs(await ari('DELETE', '/channels/1.999'), 404, 'Channel not found');
  errorIs(await ari('GET', '/bridges/nope'), 404, 'Bridge not found');
  errorIs(await ari('DELETE', '/bridges/nope'), 404, 'Bridge not found');
  errorIs(await ari('POST', '/bridges/nope/addChannel', { query: { channel: 'x' } }), 404, 'Bridge not found');

  // an originated channel rings outside Stasis: 409 on channel operations, 422 for bridges
  fake.setOutcome('PJSIP/forever', { result: 'noanswer' });
  const o = await ari('POST', '/channels', { query: { endpoint: 'PJSIP/forever', app: APP, timeout: '-1', channelId: 'ring-1' } });
  assert.equal(o.status, 200, o.text);
  assert.equal(o.json.id, 'ring-1');
  assert.equal(o.json.state, 'Down');
  errorIs(await ari('POST', '/channels', { query: { endpoint: 'PJSIP/forever', app: APP, channelId: 'ring-1' } }), 409, 'Channel with given unique ID already exists');
  await client.wait('Dial', (e) => e.peer.id === 'ring-1' && e.dialstatus === 'RINGING');
  errorIs(await ari('POST', '/channels/ring-1/answer'), 409, 'Channel not in Stasis application');
  errorIs(await ari('POST', '/channels/ring-1/moh'), 409, 'Channel not in Stasis application');
  const b = (await ari('POST', '/bridges', { query: { type: 'mixing', bridgeId: 'br-dup', name: 'dup' } })).json;
  assert.equal(b.name, 'dup');
  errorIs(await ari('POST', '/bridges', { query: { bridgeId: 'br-dup' } }), 409, "Bridge with id 'br-dup' already exists");
  errorIs(await ari('POST', '/bridges/br-dup/addChannel', { query: { channel: 'ring-1' } }), 422, 'Channel not in Stasis application');
  assert.equal((await ari('GET', '/channels/ring-1')).json.state, 'Ringing');
  // a channel in Stasis that is still ringing (an answered-then-ringing race is rare; forced here)
  const ch = await fake.inboundCall();
  await client.wait('StasisStart', (e) => e.channel.id === ch.id);
  fake.setState(ch.id, 'Ringing');
  errorIs(await ari('POST', `/channels/${ch.id}/answer`), 412, 'Channel in invalid state');
  fake.setState(ch.id, 'Ring');
  // adding twice: Asterisk moves the channel (leaves, enters again) and answers 204
  assert.equal((await ari('POST', '/bridges/br-dup/addChannel', { query: { channel: ch.id } })).status, 204);
  assert.equal((await ari('POST', '/bridges/br-dup/addChannel', { query: { channel: ch.id } })).status, 204);
  await waitFor(() => client.about(ch.id).filter((e) => e.type === 'ChannelEnteredBridge').length === 2);
  assert.deepEqual(client.about(ch.id).slice(-3).map((e) => e.type), ['ChannelEnteredBridge', 'ChannelLeftBridge', 'ChannelEnteredBridge']);
  assert.deepEqual(fake.bridges.get('br-dup').channels, [ch.id]);

  // cancelling the ringing call: soft hang-up request, the dial ends, destroyed with cause 16
  const mark = client.events.length;
  assert.equal((await ari('DELETE', '/channels/ring-1')).status, 204);
  await client.wait('ChannelDestroyed', (e) => e.channel.id === 'ring-1');
  const seq = client.events.slice(mark).filter((e) => e.channel?.id === 'ring-1' || e.peer?.id === 'ring-1');
  assert.deepEqual(seq.map((e) => e.type), ['ChannelHangupRequest', 'Dial', 'ChannelDestroyed']);
  assert.deepEqual([seq[0].cause, seq[0].soft], [32, true]);
  assert.equal(seq[1].dialstatus, 'NOANSWER');
  assert.deepEqual([seq[2].cause, seq[2].cause_txt], [16, 'Normal Clearing']);
  fake.hangup(ch.id);
  await ari('DELETE', '/bridges/br-dup');
});

test('inbound call: StasisStart, answer, bridge, ExternalMedia with its StasisStart, RTP both ways', async () => {
  const c = await inboundToMedia({ from: '+15551230002', to: '+15557650123', args: ['tenant=7'] });
  try {
    // the caller's StasisStart as Asterisk shapes it
    const s = c.start;
    assert.equal(s.application, APP);
    assert.match(s.timestamp, TIME_RE);
    assert.equal(s.asterisk_id, fake.asteriskId);
    assert.deepEqual(s.args, ['tenant=7']);
    assert.equal(s.channel.state, 'Ring');
    assert.equal(s.channel.caller.number, '+15551230002');
    assert.deepEqual(s.channel.connected, { name: '', number: '' });
    assert.equal(s.channel.dialplan.exten, '+15557650123');
    assert.equal(s.channel.dialplan.context, 'from-trunk');
    assert.deepEqual([s.channel.dialplan.app_name, s.channel.dialplan.app_data], ['Stasis', `${APP},tenant=7`]);
    assert.match(s.channel.name, /^PJSIP\/didww-[0-9a-f]{8}$/);
    assert.match(s.channel.id, /^\d+\.\d+$/);
    assert.match(s.channel.creationtime, TIME_RE);
    for (const k of ['accountcode', 'language', 'protocol_id']) assert.equal(typeof s.channel[k], 'string', k);
    // answered: ChannelStateChange Up
    const up = await client.wait('ChannelStateChange', (e) => e.channel.id === c.caller.id);
    assert.equal(up.channel.state, 'Up');
    // the bridge and the caller in it
    assert.deepEqual(Object.keys(c.bridge).sort(), ['bridge_class', 'bridge_type', 'channels', 'creationtime', 'creator', 'id', 'name', 'technology', 'video_mode']);
    assert.equal(c.bridge.bridge_type, 'mixing');
    const entered = await client.wait('ChannelEnteredBridge', (e) => e.channel.id === c.caller.id);
    assert.deepEqual(entered.bridge.channels, [c.caller.id]);
    // ExternalMedia: a Down UnicastRTP channel with the local address in channelvars ...
    assert.equal(c.em.state, 'Down');
    assert.match(c.em.name, new RegExp(`^UnicastRTP/127\\.0\\.0\\.1:${c.gw.port}-0x[0-9a-f]+$`));
    assert.equal(c.local.address, '127.0.0.1');
    assert.ok(c.local.port > 0);
    // ... then its own StasisStart (args [data]), Up
    assert.deepEqual(c.emStart.args, [`call-${c.caller.id}`]);
    assert.equal(c.emStart.channel.state, 'Up');
    assert.deepEqual(client.about(c.em.id).map((e) => [e.type, e.dialstatus ?? e.variable]).slice(0, 5),
      [['Dial', ''], ['ChannelStateChange', undefined], ['Dial', 'ANSWER'], ['ChannelVarset', 'STASISSTATUS'], ['StasisStart', undefined]]);
    assert.deepEqual((await ari('GET', `/bridges/${c.bridge.id}`)).json.channels, [c.caller.id, c.em.id]);
    assert.equal((await ari('GET', `/channels/${c.em.id}/variable`, { query: { variable: 'UNICASTRTP_LOCAL_PORT' } })).json.value, String(c.local.port));

    // Asterisk -> gateway: from the advertised socket, PT 0, 160 bytes, seq+1, ts+160, one SSRC, 20 ms
    await c.gw.stream(c.local, 30); // meanwhile the gateway streams 30 packets back
    await waitFor(() => c.gw.got.length >= 30);
    const got = c.gw.got.slice(0, 30);
    assert.ok(got.every((p) => p.from === `${c.local.address}:${c.local.port}`));
    assert.ok(got.every((p) => p.pt === 0 && p.payload.length === 160));
    assert.equal(new Set(got.map((p) => p.ssrc)).size, 1);
    assert.equal(got[0].marker, true);
    for (let i = 1; i < got.length; i++) {
      assert.equal(got[i].seq, (got[i - 1].seq + 1) & 0xffff);
      assert.equal(got[i].ts, (got[i - 1].ts + 160) >>> 0);
    }
    const span = got.at(-1).at - got[0].at;
    assert.ok(span > 29 * 20 * 0.8 && span < 29 * 20 * 1.3, `30 packets over ${span} ms`);
    assert.ok(got.every((p) => p.payload.every((b) => b === 0xff)), 'silence while nobody speaks');

    // gateway -> Asterisk: counted, payload types, seqs, sizes, pacing, the source
    const st = await waitFor(() => { const x = c.leg.stats(); return x.accepted >= 30 && x; });
    assert.deepEqual(st.payloadTypes, { 0: 30 });
    assert.deepEqual(st.sizes, { 160: 30 });
    assert.equal(st.bytes, 30 * 160);
    assert.deepEqual(st.ssrcs, [c.gw.ssrc]);
    assert.deepEqual(st.seqs, Array.from({ length: 30 }, (_, i) => c.gw.seq - 30 + i));
    assert.deepEqual([st.duplicates, st.outOfOrder, st.lost, st.rejected], [0, 0, 0, 0]);
    assert.deepEqual(st.sources, [c.gw.host]);
    assert.ok(st.meanIntervalMs > 16 && st.meanIntervalMs < 25, `mean ${st.meanIntervalMs}`);
    assert.ok(st.jitterMs < 10, `jitter ${st.jitterMs}`);
    assert.equal(c.leg.receivedAudio().length, 30 * 160);

    // the caller speaks: queued mu-law goes out paced, in 160-byte frames, in order
    const speech = Buffer.from(Array.from({ length: 400 }, (_, i) => i % 200));
    const mark = c.gw.got.length;
    const t0 = performance.now();
    await c.leg.sendAudio(speech);
    assert.ok(performance.now() - t0 >= 35, 'three frames take about 40 ms');
    await waitFor(() => c.gw.got.length >= mark + 4);
    const frames = c.gw.got.slice(mark).filter((p) => !p.payload.every((b) => b === 0xff));
    assert.deepEqual(frames.map((p) => p.payload.length), [160, 160, 160]);
    const heard = Buffer.concat(frames.map((p) => p.payload));
    assert.deepEqual(heard.subarray(0, 400), speech);
    assert.ok(heard.subarray(400).every((b) => b === 0xff), 'the last frame is padded with silence');
  } finally {
    fake.hangup(c.caller.id);
    await ari('DELETE', `/channels/${c.em.id}`);
    await ari('DELETE', `/bridges/${c.bridge.id}`);
    await c.gw.close();
  }
});

test('RTP faults: reorder, duplicate, loss, late, other payload type, garbage, other socket; strict RTP', async () => {
  const c = await inboundToMedia();
  try {
    const { gw, leg } = c;
    await waitFor(() => gw.got.length >= 3);
    // Asterisk side faults as the gateway sees them
    let mark = gw.got.length;
    leg.duplicateNext(1);
    await waitFor(() => gw.got.length >= mark + 3);
    const dupSeqs = gw.got.slice(mark).map((p) => p.seq);
    assert.equal(dupSeqs[0], dupSeqs[1], `duplicate: ${dupSeqs}`);

    mark = gw.got.length;
    leg.reorderNext(3);
    await waitFor(() => gw.got.length >= mark + 4);
    const r = gw.got.slice(mark, mark + 3).map((p) => p.seq);
    assert.deepEqual(r, [(r[2] + 2) & 0xffff, (r[2] + 1) & 0xffff, r[2]], `reordered: ${r}`);

    mark = gw.got.length;
    leg.dropNext(2);
    await waitFor(() => gw.got.length >= mark + 2);
    assert.equal(gw.got[mark + 1].seq, (gw.got[mark].seq + 1) & 0xffff);
    const lastBefore = gw.got[mark - 1].seq;
    assert.equal(gw.got[mark].seq, (lastBefore + 3) & 0xffff, 'two sequence numbers skipped');

    mark = gw.got.length;
    leg.delayNext(70);
    await waitFor(() => gw.got.length >= mark + 5);
    const d = gw.got.slice(mark, mark + 5).map((p) => p.seq);
    const rel = d.map((x) => ((x - d[0] + 0x8000) & 0xffff) - 0x8000); // safe across the 16-bit wrap
    const late = rel.indexOf(Math.min(...rel));
    assert.ok(late >= 2, `the held packet arrives after its successors: ${d}`);

    mark = gw.got.length;
    leg.sendPacket({ pt: 13, payload: Buffer.from([0x40]) });
    await waitFor(() => gw.got.slice(mark).some((p) => p.pt === 13));
    assert.equal(gw.got.slice(mark).find((p) => p.pt === 13).payload.length, 1);

    leg.sendGarbage(Buffer.from('not rtp'));
    await waitFor(() => gw.junk.length === 1);
    assert.equal(gw.junk[0].data.toString(), 'not rtp');
    assert.equal(gw.junk[0].from, `${c.local.address}:${c.local.port}`);

    const other = await leg.sendFromOtherSocket({ count: 3 });
    await waitFor(() => gw.got.filter((p) => p.from === `${other.address}:${other.port}`).length === 3);
    assert.notEqual(other.port, c.local.port);
    assert.ok(leg.sent.some((s) => s.kind === 'other-socket'));

    // gateway side faults as the fake Asterisk records them
    const before = leg.stats();
    const base = gw.seq;
    const send = (seq, extra = {}) => gw.sendTo(c.local, { pt: 0, seq, ts: 1000 + seq * 160, ssrc: gw.ssrc, payload: Buffer.alloc(160, 0x7f), ...extra });
    send(base + 1); send(base); send(base); // reordered and duplicated
    send(base + 2, { pt: 101, payload: Buffer.alloc(4) }); // an RFC 4733 event
    gw.s.send(Buffer.from([1, 2, 3]), c.local.port, c.local.address); // garbage
    await waitFor(() => leg.received.length >= before.packets + 4 && leg.garbage.length === 1);
    const after1 = leg.stats();
    assert.equal(after1.duplicates - before.duplicates, 1);
    assert.equal(after1.outOfOrder - before.outOfOrder, 1);
    assert.equal(after1.payloadTypes[101], 1);
    assert.equal(leg.garbage[0].bytes, 3);

    // strict RTP: another socket is ignored until 4 packets in sequence
    const stray = dgram.createSocket('udp4');
    await new Promise((res) => stray.bind(0, '127.0.0.1', res));
    try {
      for (let i = 0; i < 5; i++) gw.sendTo(c.local, { pt: 0, seq: 7000 + i, ts: i * 160, ssrc: 99, payload: Buffer.alloc(160) }, stray);
      const from = `127.0.0.1:${stray.address().port}`;
      await waitFor(() => leg.received.filter((p) => p.from.port === stray.address().port).length === 5);
      const strays = leg.received.filter((p) => `${p.from.address}:${p.from.port}` === from);
      assert.deepEqual(strays.map((p) => p.accepted), [false, false, false, true, true]);
      assert.ok(leg.stats().sources.includes(from));
    } finally {
      stray.close();
    }
  } finally {
    fake.hangup(c.caller.id);
    await ari('DELETE', `/channels/${c.em.id}`);
    await ari('DELETE', `/bridges/${c.bridge.id}`);
    await c.gw.close();
  }
});

test('hang-ups: the caller hangs up, DELETE with a reason, bridge destroyed with and without channels', async () => {
  const c = await inboundToMedia();
  const mark = client.events.length;
  fake.hangup(c.caller.id);
  await client.wait('ChannelDestroyed', (e) => e.channel.id === c.caller.id);
  const seq = client.events.slice(mark).filter((e) => e.channel?.id === c.caller.id);
  assert.deepEqual(seq.map((e) => e.type), ['ChannelHangupRequest', 'ChannelLeftBridge', 'StasisEnd', 'ChannelDestroyed']);
  assert.equal(seq[0].cause, 16);
  assert.equal(seq[0].soft, undefined);
  assert.deepEqual(seq[1].bridge.channels, [c.em.id]);
  assert.deepEqual([seq[3].cause, seq[3].cause_txt], [16, 'Normal Clearing']);
  errorIs(await ari('GET', `/channels/${c.caller.id}`), 404, 'Channel not found');

  // switchboard ends the media leg: the hang-up request is soft (cause 32), the cause is the reason's
  const m2 = client.events.length;
  assert.equal((await ari('DELETE', `/channels/${c.em.id}`, { query: { reason: 'busy' } })).status, 204);
  await client.wait('ChannelDestroyed', (e) => e.channel.id === c.em.id);
  const seq2 = client.events.slice(m2).filter((e) => e.channel?.id === c.em.id);
  assert.deepEqual(seq2.map((e) => e.type), ['ChannelHangupRequest', 'ChannelLeftBridge', 'StasisEnd', 'ChannelDestroyed']);
  assert.deepEqual([seq2[0].cause, seq2[0].soft], [32, true]);
  assert.deepEqual([seq2[3].cause, seq2[3].cause_txt], [17, 'User busy']);
  assert.equal(c.leg.closed, true);
  // the bridge is empty and the app no longer subscribed to it: no BridgeDestroyed
  const m3 = client.events.length;
  assert.equal((await ari('DELETE', `/bridges/${c.bridge.id}`)).status, 204);
  await sleep(30);
  assert.equal(client.events.slice(m3).length, 0);
  await c.gw.close();

  // destroying a bridge with channels in it: they leave (and stay in Stasis), then BridgeDestroyed
  const a = await fake.inboundCall();
  await client.wait('StasisStart', (e) => e.channel.id === a.id);
  const b = (await ari('POST', '/bridges')).json;
  await ari('POST', `/bridges/${b.id}/addChannel`, { query: { channel: a.id } });
  await client.wait('ChannelEnteredBridge', (e) => e.channel.id === a.id);
  const m4 = client.events.length;
  assert.equal((await ari('DELETE', `/bridges/${b.id}`)).status, 204);
  await client.wait('BridgeDestroyed', (e) => e.bridge.id === b.id);
  assert.deepEqual(client.events.slice(m4).map((e) => e.type), ['ChannelLeftBridge', 'BridgeDestroyed']);
  assert.equal(fake.channels.get(a.id).inStasis, true);
  // reason_code: any number
  assert.equal((await ari('DELETE', `/channels/${a.id}`, { query: { reason_code: '21' } })).status, 204);
  const gone = await client.wait('ChannelDestroyed', (e) => e.channel.id === a.id);
  assert.deepEqual([gone.cause, gone.cause_txt], [21, 'Call Rejected']);
});

test('originate outcomes: busy 17, no answer 19 after the timeout, failed 34, answer with StasisStart', async () => {
  fake.setOutcome('PJSIP/busy', { result: 'busy', afterMs: 30 });
  fake.setOutcome('PJSIP/silent', { result: 'noanswer' });
  fake.setOutcome('PJSIP/broken', { result: 'failed', afterMs: 20, ringMs: false });
  fake.setOutcome(/^PJSIP\/\+1555\d+@didww$/, { result: 'answer', afterMs: 80, ringMs: 20 });
  const post = (endpoint, extra = {}) => ari('POST', '/channels', { query: { endpoint, app: APP, callerId: '"Sales" <+1 (555) 123-0001>', ...extra } });
  const t0 = Date.now();
  const [busy, silent, broken, ok] = (await Promise.all([
    post('PJSIP/busy'), post('PJSIP/silent', { timeout: '1' }), post('PJSIP/broken'),
    post('PJSIP/+15557654321@didww', { appArgs: 'transfer,session-9', timeout: '30' }),
  ])).map((r) => { assert.equal(r.status, 200, r.text); return r.json; });
  for (const ch of [busy, silent, broken, ok]) {
    assert.equal(ch.state, 'Down');
    assert.deepEqual(ch.caller, { name: 'Sales', number: '+15551230001' });
    assert.deepEqual(ch.connected, ch.caller);
  }
  assert.match(ok.name, /^PJSIP\/didww-[0-9a-f]{8}$/);

  const destroyed = (id) => client.wait('ChannelDestroyed', (e) => e.channel.id === id, 3000);
  const kinds = (id) => client.about(id).filter((e) => e.type !== 'ChannelVarset')
    .map((e) => (e.type === 'Dial' ? `Dial:${e.dialstatus}` : e.type === 'ChannelStateChange' ? `State:${e.channel.state}` : e.type));

  const b = await destroyed(busy.id);
  assert.deepEqual([b.cause, b.cause_txt], [17, 'User busy']);
  assert.deepEqual(kinds(busy.id), ['Dial:', 'State:Ringing', 'Dial:RINGING', 'Dial:BUSY', 'ChannelDestroyed']);
  assert.equal(client.about(busy.id)[0].dialstring, 'busy');

  const f = await destroyed(broken.id);
  assert.deepEqual([f.cause, f.cause_txt], [34, 'Circuit/channel congestion']);
  assert.deepEqual(kinds(broken.id), ['Dial:', 'ChannelHangupRequest', 'Dial:CONGESTION', 'ChannelDestroyed']);

  const s = await client.wait('StasisStart', (e) => e.channel.id === ok.id);
  assert.deepEqual(s.args, ['transfer', 'session-9']);
  assert.equal(s.channel.state, 'Up');
  assert.deepEqual(kinds(ok.id), ['Dial:', 'State:Ringing', 'Dial:RINGING', 'State:Up', 'Dial:ANSWER', 'StasisStart']);
  assert.equal(client.about(ok.id).at(-2).type, 'ChannelVarset'); // STASISSTATUS, just before StasisStart
  assert.equal(client.about(ok.id)[0].dialstring, '+15557654321@didww');
  assert.equal(client.about(ok.id)[0].caller, undefined); // async originate: no caller
  assert.equal((await ari('POST', `/channels/${ok.id}/answer`)).status, 204); // in Stasis now

  const n = await destroyed(silent.id);
  assert.ok(Date.now() - t0 >= 950, `no answer after ${Date.now() - t0} ms`);
  assert.deepEqual([n.cause, n.cause_txt], [19, 'User alerting, no answer']);
  assert.deepEqual(kinds(silent.id), ['Dial:', 'State:Ringing', 'Dial:RINGING', 'ChannelDestroyed']); // no NOANSWER Dial

  // an answer that would come after the timeout is a no-answer
  fake.setOutcome('PJSIP/slow', { result: 'answer', afterMs: 5000 });
  const slow = (await post('PJSIP/slow', { timeout: '0' })).json; // 0: the 30 s default
  assert.equal(fake.channels.get(slow.id).originate.timeout, 0);
  fake.hangup(slow.id, 21, { techCause: 603 });
  const rej = await destroyed(slow.id);
  assert.deepEqual(kinds(slow.id).slice(-3), ['ChannelHangupRequest', 'Dial:NOANSWER', 'ChannelDestroyed']);
  assert.equal(client.about(slow.id).find((e) => e.type === 'ChannelHangupRequest').tech_cause, 603);
  assert.equal(rej.cause, 21);
  fake.hangup(ok.id);
});

test('play, moh, ring and DTMF', async () => {
  const ch = await fake.inboundCall();
  await client.wait('StasisStart', (e) => e.channel.id === ch.id);
  assert.equal((await ari('POST', `/channels/${ch.id}/ring`)).status, 204);
  assert.equal(fake.channels.get(ch.id).ringing, true);
  assert.equal((await ari('POST', `/channels/${ch.id}/answer`)).status, 204);
  assert.equal((await ari('POST', `/channels/${ch.id}/moh`, { query: { mohClass: 'jazz' } })).status, 204);
  assert.equal(fake.channels.get(ch.id).moh, 'jazz');
  assert.equal((await ari('DELETE', `/channels/${ch.id}/moh`)).status, 204);

  fake.setPlayback('sound:sorry', { durationMs: 40 });
  const p = await ari('POST', `/channels/${ch.id}/play`, { query: { media: 'sound:sorry' } });
  assert.equal(p.status, 201);
  assert.equal(p.headers.get('location'), `/ari/playbacks/${p.json.id}`);
  assert.deepEqual(p.json, { id: p.json.id, media_uri: 'sound:sorry', target_uri: `channel:${ch.id}`, language: 'en', state: 'queued' });
  const started = await client.wait('PlaybackStarted', (e) => e.playback.id === p.json.id);
  assert.equal(started.playback.state, 'playing');
  const done = await client.wait('PlaybackFinished', (e) => e.playback.id === p.json.id);
  assert.equal(done.playback.state, 'done');
  assert.ok(Date.parse(done.timestamp.replace('+0000', 'Z')) - Date.parse(started.timestamp.replace('+0000', 'Z')) >= 30);

  // two media, a chosen id; an unknown scheme fails
  const two = await ari('POST', `/channels/${ch.id}/play/pb-2`, { json: { media: ['sound:a', 'sound:b'] } });
  assert.equal(two.json.id, 'pb-2');
  assert.equal(two.json.next_media_uri, 'sound:b');
  await client.wait('PlaybackContinuing', (e) => e.playback.id === 'pb-2');
  await client.wait('PlaybackFinished', (e) => e.playback.id === 'pb-2');
  const bad = await ari('POST', `/channels/${ch.id}/play`, { query: { media: 'file:/etc/passwd' } });
  assert.equal((await client.wait('PlaybackFinished', (e) => e.playback.id === bad.json.id)).playback.state, 'failed');

  fake.dtmf(ch.id, '5');
  fake.dtmf(ch.id, '#', { durationMs: 240 });
  await waitFor(() => client.about(ch.id).filter((e) => e.type === 'ChannelDtmfReceived').length === 2);
  assert.deepEqual(client.about(ch.id).filter((e) => e.type === 'ChannelDtmfReceived').map((e) => [e.digit, e.duration_ms]), [['5', 100], ['#', 240]]);
  assert.throws(() => fake.dtmf(ch.id, 'x'));
  fake.hangup(ch.id);
});

test('the request log: method, path, query, JSON body, parsed parameters, auth, status', async () => {
  fake.resetLog();
  const gw = await gateway();
  const r = await ari('POST', '/channels/externalMedia', { json: { app: APP, external_host: gw.host, format: 'ulaw', data: 'a,b', channelId: 'em-json' } });
  assert.equal(r.status, 200, r.text);
  await client.wait('StasisStart', (e) => e.channel.id === 'em-json');
  assert.deepEqual(client.events.findLast((e) => e.type === 'StasisStart').args, ['a', 'b']);
  await ari('POST', '/bridges', { query: { type: 'mixing' }, auth: [USER, 'bad'] });
  const [em, denied] = fake.requests;
  assert.equal(em.method, 'POST');
  assert.equal(em.path, '/ari/channels/externalMedia');
  assert.deepEqual(em.query, {});
  assert.equal(em.body.external_host, gw.host);
  assert.equal(em.params.data, 'a,b');
  assert.deepEqual([em.auth.user, em.auth.via, em.auth.ok], [USER, 'basic', true]);
  assert.equal(em.status, 200);
  assert.deepEqual([denied.query.type, denied.auth.ok, denied.status], ['mixing', false, 401]);
  // scripted faults for the next matching request
  fake.script({ method: 'POST', path: '/channels/externalMedia', status: 500, message: 'Internal Server Error' });
  errorIs(await ari('POST', '/channels/externalMedia', { query: { app: APP, external_host: gw.host, format: 'ulaw' } }), 500, 'Internal Server Error');
  await ari('DELETE', '/channels/em-json');
  await gw.close();
});

test('restart: events socket closed with 1001, connections refused, state forgotten, then reconnect', async () => {
  const ch = await fake.inboundCall();
  await client.wait('StasisStart', (e) => e.channel.id === ch.id);
  const restarted = fake.restart({ downMs: 400 });
  await waitFor(() => client.closed, 2000);
  assert.equal(client.closed.code, 1001);
  await waitFor(() => !fake.up);
  await assert.rejects(ari('GET', '/channels'), (e) => e.cause?.code === 'ECONNREFUSED' || /fetch failed/.test(e.message));
  await assert.rejects(connect(), (e) => e.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(e.message));
  await restarted;
  assert.equal(fake.restarts, 1);
  errorIs(await ari('GET', `/channels/${ch.id}`), 404, 'Channel not found');
  assert.deepEqual((await ari('GET', '/bridges')).json, []);
  // switchboard reconnects; calls flow again
  client = await connect();
  await client.wait('ApplicationRegistered');
  const again = await fake.inboundCall();
  const s = await client.wait('StasisStart', (e) => e.channel.id === again.id);
  assert.notEqual(s.channel.id, ch.id);
  // an abrupt restart: no close frame, the socket just drops
  const r2 = fake.restart({ downMs: 50, abrupt: true });
  await waitFor(() => client.closed, 2000);
  assert.equal(client.closed.code, 1006);
  await r2;
  client = await connect();
});
