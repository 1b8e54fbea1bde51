// Two switchboard instances on one Asterisk and one PostgreSQL, as the README's "Several
// instances" tells: each holds its own Stasis application (ARI_APP), the dialplan sends a call
// to one of them, and everything else is shared. Each instance carries the calls of its own app
// (REST calls with its app, RTP from its own ports); either lists both; the API on one hangs up
// or transfers a call the other carries (the request goes to Asterisk, the events to the app
// that holds the call, the transfer's target in the shared row); stopping one ends only its calls.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup } from './lib/harness.mjs';
import { pgDatabase, pgDrop, psql } from './lib/pg.mjs';
import { JWT_SECRET, api } from './lib/jwt.mjs';
import { FakeAsterisk, waitFor } from '../fakes/asterisk_ari.mjs';
import { tone } from '../../tools/sim/index.mjs';

let ast, url, a, b;
// below asterisk.test.mjs's ranges (20000 and up) and the kernel's ephemeral ports: files run side by side
const portBase = 18000 + Math.floor(Math.random() * 40) * 40;

async function server(app, min) {
  return startServer({
    env: {
      DATABASE_URL: url, JWT_SECRET, TLS_PORT: 'off', WORKERS: '2', AI_PROVIDER: 'echo', ARI_URL: ast.url,
      ARI_USERNAME: 'sb', ARI_PASSWORD: 'ari-secret', ARI_APP: app, RTP_ADDRESS: '127.0.0.1',
      RTP_PORT_MIN: String(min), RTP_PORT_MAX: String(min + 19), ASTERISK_TRUNK: 'didww',
      PRIMARY_TRANSFER_TARGET: 'PJSIP/2000', SECONDARY_TRANSFER_TARGET: '+14155550123',
      TWILIO_PHONE_NUMBER: '+14155550100',
    },
  });
}

before(async () => {
  ast = await new FakeAsterisk({ username: 'sb', password: 'ari-secret', trunk: 'didww' }).start();
  url = await pgDatabase('sb_ast2');
  [a, b] = [await server('sb-a', portBase), await server('sb-b', portBase + 20)];
  await ast.waitForApp('sb-a', 5000);
  await ast.waitForApp('sb-b', 5000);
});
after(async () => {
  for (const s of [a, b]) {
    if (!s) continue;
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr.slice(-3000));
    cleanup(s.dir);
  }
  await ast.stop();
  pgDrop(url);
});

const row = (channel, cols) => psql(url, `SELECT ${cols} FROM calls WHERE call_sid='${channel}'`);
const events = (channel) =>
  psql(url, `SELECT string_agg(type, ',' ORDER BY e.id) FROM call_events e JOIN calls c ON c.id = e.call_id WHERE call_sid='${channel}'`);
const audible = (p) => p.some((x) => x !== 0xff && x !== 0x7f);
// The REST requests that name a channel of this session (ExternalMedia, transfer originates).
const reqsFor = (session) => ast.requests.filter((r) => Object.values(r.query).some((v) => String(v).includes(session)));

// A call the dialplan hands to `app`; the ExternalMedia leg its instance asks for, echoing.
async function inbound(app, from) {
  const seen = new Set(ast.legs.values());
  const caller = await ast.inboundCall({ from, to: '+15557650000', app });
  const leg = await waitFor(() => [...ast.legs.values()].find((l) => !seen.has(l)), 5000);
  await leg.sendAudio(tone(600, 440));
  await waitFor(() => leg.received.some((p) => audible(p.payload)), 5000);
  const session = await waitFor(() => row(caller.id, 'session_id'), 5000);
  return { caller, leg, session };
}

test('each instance carries the calls of its own Stasis application; either lists both', async () => {
  const one = await inbound('sb-a', '+15551240001');
  const two = await inbound('sb-b', '+15551240002');
  for (const [c, app, min] of [[one, 'sb-a', portBase], [two, 'sb-b', portBase + 20]]) {
    const em = reqsFor(c.session).find((r) => r.path === '/ari/channels/externalMedia');
    assert.ok(em, `ExternalMedia for ${app}`);
    assert.equal(em.query.app, app, 'the leg is created in the app that holds the call');
    const port = Number(em.query.external_host.split(':')[1]);
    assert.ok(port >= min && port < min + 20, `RTP port ${port} from ${app}'s instance`);
    assert.equal(c.leg.stats().sources.length, 1, 'one RTP source');
    assert.equal(row(c.caller.id, "platform||','||direction||','||status"), 'asterisk,inbound,in-progress');
  }
  for (const s of [a, b]) {
    const listed = await api(s, 'GET', '/api/calls?platform=asterisk');
    assert.equal(listed.status, 200, listed.text);
    for (const c of [one, two]) assert.ok(listed.json.calls.some((x) => x.id === c.session), `${c.session} on ${s.port}`);
  }
  ast.hangup(one.caller.id);
  ast.hangup(two.caller.id);
  await waitFor(() => row(one.caller.id, 'ended_at IS NOT NULL') === 't' && row(two.caller.id, 'ended_at IS NOT NULL') === 't', 5000);
  assert.match(events(one.caller.id), /^call\.started,.*stream\.started.*call\.ended/);
});

test("the API on one instance hangs up, and transfers, a call the other carries", async () => {
  // hang-up: b asks Asterisk; a, holding the call, sees it end
  const one = await inbound('sb-a', '+15551240011');
  const hu = await api(b, 'POST', `/api/calls/${one.session}/hangup`);
  assert.equal(hu.status, 202, hu.text);
  await waitFor(() => row(one.caller.id, 'ended_at IS NOT NULL') === 't', 5000);
  // the row may end (at the hang-up request) before the fake destroys the channel
  await waitFor(() => !ast.channels.has(one.caller.id), 5000);
  assert.ok(ast.requests.some((r) => r.method === 'DELETE' && r.path === `/ari/channels/${one.caller.id}`), 'Asterisk was asked to hang the caller up');
  // transfer: a records the target in the row and ends b's AI leg; b dials it from its own app
  ast.setOutcome('PJSIP/+14155550123@didww', { result: 'answer', afterMs: 100 });
  const two = await inbound('sb-b', '+15551240012');
  const tr = await api(a, 'POST', `/api/calls/${two.session}/transfer`, { body: { target: 'secondary' } });
  assert.equal(tr.status, 202, tr.text);
  const o = await waitFor(() => ast.requests.find((r) => r.path === '/ari/channels' && r.query.appArgs === 'transfer' &&
    r.query.endpoint === 'PJSIP/+14155550123@didww'), 5000);
  assert.equal(o.query.app, 'sb-b', 'the instance holding the call dials the target');
  await waitFor(() => /transfer\.bridged/.test(events(two.caller.id) ?? ''), 5000);
  assert.match(events(two.caller.id), /asterisk\.api_transfer/);
  assert.equal(psql(url, `SELECT count(*) FROM call_events e JOIN calls c ON c.id = e.call_id WHERE call_sid='${two.caller.id}' AND type='transfer.attempt'`),
    '1', 'one attempt, recorded by the API on a');
  ast.hangup(two.caller.id);
  await waitFor(() => row(two.caller.id, 'ended_at IS NOT NULL') === 't', 5000);
});

test('stopping one instance ends its calls only; the other goes on and takes new calls', async () => {
  const one = await inbound('sb-a', '+15551240021');
  const two = await inbound('sb-b', '+15551240022');
  const r = await a.stop();
  assert.equal(r.code, 0, a.stderr.slice(-3000));
  cleanup(a.dir);
  a = null;
  await waitFor(() => !ast.channels.has(one.caller.id), 5000);
  await waitFor(() => row(one.caller.id, 'ended_at IS NOT NULL') === 't', 5000);
  assert.ok(ast.channels.has(two.caller.id), "b's caller is still there");
  assert.equal(row(two.caller.id, 'ended_at IS NULL'), 't');
  const before = two.leg.received.length;
  await two.leg.sendAudio(tone(400, 300));
  await waitFor(() => two.leg.received.length > before + 10, 5000);
  const three = await inbound('sb-b', '+15551240023');
  for (const c of [two, three]) ast.hangup(c.caller.id);
  await waitFor(() => row(two.caller.id, 'ended_at IS NOT NULL') === 't' && row(three.caller.id, 'ended_at IS NOT NULL') === 't', 5000);
});
