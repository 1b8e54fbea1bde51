// The application API over real HTTP: bearer tokens (JWT HS256), simulation-mode initiate,
// the calls API (tenant scoping, filters, pagination, detail) and the tenants API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startServer, sqlite, cleanup, BIN } from './lib/harness.mjs';
import { JWT_SECRET, token, api } from './lib/jwt.mjs';
import { createHmac } from 'node:crypto';

let srv;
const db = () => srv.dir + '/data/switchboard.db';
before(async () => {
  srv = await startServer({ env: { JWT_SECRET, TLS_PORT: 'off', AI_PROVIDER: 'echo', PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com' } });
  sqlite(db(), "INSERT INTO tenants (id, name) VALUES (2, 'other')");
});
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, srv.stderr);
  cleanup(srv.dir);
});

const now = () => Math.floor(Date.now() / 1000);

test('tokens: missing or bad is 401 with WWW-Authenticate, the right role passes', async () => {
  const cases = [
    [null, /^Bearer realm="switchboard"$/],
    ['not.a.token', /invalid_token/],
    [token({ exp: now() - 3600 }), /invalid_token/], // expired
    [token({ nbf: now() + 3600 }), /invalid_token/], // not yet valid
    [token({}, { secret: 'another-secret-0123456789' }), /invalid_token/], // wrong signature
    [token({}, { header: { alg: 'none', typ: 'JWT' }, sign: false }), /invalid_token/],
    [token({}, { header: { alg: 'none', typ: 'JWT' } }), /invalid_token/],
    [token({}, { header: { alg: 'HS512', typ: 'JWT' } }), /invalid_token/], // algorithm switching
    [token({ tenant_id: undefined }), /invalid_token/],
    [token({ role: undefined }), /invalid_token/],
    [token({ sub: undefined }), /invalid_token/],
    [token({ exp: undefined }), /invalid_token/],
    [token({ role: 'root' }), /invalid_token/],
  ];
  for (const [tok, wwwAuth] of cases) {
    const r = await api(srv, 'GET', '/api/calls', { tok });
    assert.equal(r.status, 401, `${tok}: ${r.text}`);
    assert.match(r.headers.get('www-authenticate'), wwwAuth);
    assert.equal(r.json.error.code, 'unauthorized');
  }
  // an HS512 token that really is signed with HS512 by the same secret is refused too
  const head = Buffer.from(JSON.stringify({ alg: 'HS512', typ: 'JWT' })).toString('base64url') + '.' +
    Buffer.from(JSON.stringify({ sub: 'x', tenant_id: 1, role: 'admin', exp: now() + 60 })).toString('base64url');
  const hs512 = head + '.' + createHmac('sha512', JWT_SECRET).update(head).digest('base64url');
  assert.equal((await api(srv, 'GET', '/api/calls', { tok: hs512 })).status, 401);

  assert.equal((await api(srv, 'GET', '/api/calls', { tok: token({ exp: now() - 30 }) })).status, 200); // within the skew
  assert.equal((await api(srv, 'GET', '/api/calls', { tok: token({ role: 'agent' }) })).status, 200);
  // good token, wrong role: 403
  const r = await api(srv, 'GET', '/api/tenants', { tok: token({ role: 'agent' }) });
  assert.equal(r.status, 403);
  // the test endpoint stays open
  assert.equal((await api(srv, 'POST', '/api/twilio/test', { tok: null, body: { kind: 'reject' } })).status, 200);
});

test('the token command mints what the server accepts', async () => {
  const r = spawnSync(BIN, ['token', '--tenant', '1', '--role', 'agent', '--ttl', '15m', '--sub', 'cli'], {
    cwd: srv.dir, env: { PATH: process.env.PATH, JWT_SECRET, DATABASE_PATH: db() }, encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const tok = r.stdout.trim();
  const payload = JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString());
  assert.equal(payload.role, 'agent');
  assert.equal(payload.tenant_id, 1);
  assert.ok(payload.exp - payload.iat === 900);
  assert.equal((await api(srv, 'GET', '/api/calls', { tok })).status, 200);
  const bad = spawnSync(BIN, ['token', '--tenant', '1', '--role', 'god'], { cwd: srv.dir, env: { PATH: process.env.PATH, JWT_SECRET }, encoding: 'utf8' });
  assert.equal(bad.status, 2);
});

test('initiate without Twilio: simulation, a session row and its customer; fields validated', async () => {
  const r = await api(srv, 'POST', '/api/calls/initiate', { body: { customer_id: 'cust-42', phone: '(415) 555-0100', agent_type: 'sales' } });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(Object.keys(r.json).sort(), ['call_sid', 'message', 'session_id', 'status', 'twilio_configured']);
  assert.equal(r.json.status, 'simulation');
  assert.equal(r.json.call_sid, null);
  assert.equal(r.json.twilio_configured, false);
  assert.equal(sqlite(db(), `SELECT direction||','||to_number||','||agent_type||','||status FROM calls WHERE session_id='${r.json.session_id}'`),
    'outbound,+14155550100,sales,simulation');
  assert.equal(sqlite(db(), "SELECT phone FROM customers WHERE external_id='cust-42' AND tenant_id=1"), '+14155550100');

  const bad = [
    [{ phone: '+14155550100', agent_type: 'sales' }, 'customer_id'],
    [{ customer_id: 'c', agent_type: 'sales' }, 'phone'],
    [{ customer_id: 'c', phone: 'call me maybe', agent_type: 'sales' }, 'phone'],
    [{ customer_id: 'c', phone: '12', agent_type: 'sales' }, 'phone'],
    [{ customer_id: 'c', phone: '+14155550100' }, 'agent_type'],
    [{ customer_id: 'c', phone: '+14155550100', agent_type: 'Sales Team!' }, 'agent_type'],
    [{ customer_id: 'c', phone: '+14155550100', agent_type: 'sales', extra: 1 }, 'extra'],
  ];
  for (const [body, field] of bad) {
    const e = await api(srv, 'POST', '/api/calls/initiate', { body });
    assert.equal(e.status, 400, JSON.stringify(body));
    assert.equal(e.json.error.field, field, JSON.stringify(body));
  }
  const notJson = await api(srv, 'POST', '/api/calls/initiate', { body: '{"phone":' });
  assert.equal(notJson.status, 400);
  assert.equal(notJson.json.error.code, 'invalid_json');
});

test('idempotency key: a retried initiate returns the first answer', async () => {
  const headers = { 'Idempotency-Key': 'order-7781' };
  const body = { customer_id: 'cust-idem', phone: '+14155550101', agent_type: 'support' };
  const a = await api(srv, 'POST', '/api/calls/initiate', { body, headers });
  const b = await api(srv, 'POST', '/api/calls/initiate', { body, headers });
  assert.equal(a.status, 201);
  assert.equal(b.status, 201);
  assert.equal(b.json.session_id, a.json.session_id);
  assert.equal(b.headers.get('idempotent-replayed'), 'true');
  assert.equal(sqlite(db(), "SELECT COUNT(*) FROM calls WHERE idempotency_key='order-7781'"), '1');
  // another tenant's identical key is its own
  const c = await api(srv, 'POST', '/api/calls/initiate', { body, headers, tok: token({ tenant_id: 2 }) });
  assert.notEqual(c.json.session_id, a.json.session_id);
  const badKey = await api(srv, 'POST', '/api/calls/initiate', { body, headers: { 'Idempotency-Key': 'x'.repeat(200) } });
  assert.equal(badKey.json.error.field, 'Idempotency-Key');
});

test('calls list: tenant-scoped, newest first, filters and cursor pagination', async () => {
  for (let i = 0; i < 5; i++)
    await api(srv, 'POST', '/api/calls/initiate', { body: { customer_id: `p${i}`, phone: `+1415555020${i}`, agent_type: 'page' } });
  await api(srv, 'POST', '/api/calls/initiate', { body: { customer_id: 'o1', phone: '+14155550299', agent_type: 'page' }, tok: token({ tenant_id: 2 }) });
  const all = await api(srv, 'GET', '/api/calls?limit=200');
  assert.ok(all.json.calls.every((c) => c.to_number !== '+14155550299'), 'no call of tenant 2');
  const ids = all.json.calls.map((c) => c.started_at);
  assert.deepEqual(ids, [...ids].sort().reverse());

  const page1 = await api(srv, 'GET', '/api/calls?limit=2&direction=outbound');
  assert.equal(page1.json.calls.length, 2);
  assert.ok(page1.json.next_cursor);
  const page2 = await api(srv, 'GET', `/api/calls?limit=2&direction=outbound&cursor=${page1.json.next_cursor}`);
  assert.equal(page2.json.calls.length, 2);
  assert.ok(!page2.json.calls.some((c) => page1.json.calls.find((d) => d.id === c.id)));
  const one = await api(srv, 'GET', '/api/calls?to=%2B14155550203');
  assert.equal(one.json.calls.length, 1);
  assert.equal(one.json.calls[0].customer_id, 'p3');
  const none = await api(srv, 'GET', '/api/calls?since=2999-01-01');
  assert.equal(none.json.calls.length, 0);
  assert.equal((await api(srv, 'GET', '/api/calls?status=simulation&until=2999-01-01T00:00:00Z')).json.calls.length >= 5, true);
  for (const q of ['limit=0', 'limit=500', 'cursor=abc', 'direction=sideways', 'since=yesterday'])
    assert.equal((await api(srv, 'GET', '/api/calls?' + q)).status, 400, q);
  // instants that are not real moments are refused naming the field, not rolled over or compared as text
  for (const [q, field] of [['since=2026-13-45', 'since'], ['until=2026-02-30T25:61:00Z', 'until'], ['since=2026-02-29', 'since'],
    ['until=2026-01-01T24:00:00Z', 'until'], ['since=2026-04-31T10:00', 'since'], ['until=2026-01-01T10:00:61Z', 'until']]) {
    const r = await api(srv, 'GET', '/api/calls?' + q);
    assert.equal(r.status, 400, q);
    assert.equal(r.json.error.field, field, q);
  }
  assert.equal((await api(srv, 'GET', '/api/calls?since=2028-02-29T23:59:60Z')).status, 200, 'a leap day and a leap second are real');
});

test('calls carry their platform; the list filters on it and names the field it cannot use', async () => {
  const r = await api(srv, 'POST', '/api/calls/initiate', { body: { customer_id: 'pf1', phone: '+14155550401', agent_type: 'x' } });
  assert.equal(r.status, 201, r.text);
  // an Asterisk call as its worker writes it (the Asterisk leg is not needed to read it back)
  sqlite(db(), "INSERT INTO calls (session_id, tenant_id, direction, call_sid, from_number, to_number, status, platform) " +
    "VALUES ('ast-1', 1, 'inbound', '1712345678.1', '+14155550402', '+14155550100', 'in-progress', 'asterisk')");
  sqlite(db(), "INSERT INTO calls (session_id, tenant_id, direction, status, platform) VALUES ('ast-2', 2, 'inbound', 'completed', 'asterisk')");
  const all = await api(srv, 'GET', '/api/calls?limit=200');
  assert.ok(all.json.calls.every((c) => c.platform === 'twilio' || c.platform === 'asterisk'), all.text);
  assert.equal(all.json.calls.find((c) => c.id === r.json.session_id).platform, 'twilio');
  assert.equal(all.json.calls.find((c) => c.id === 'ast-1').platform, 'asterisk');

  const ast = await api(srv, 'GET', '/api/calls?platform=asterisk');
  assert.equal(ast.status, 200);
  assert.deepEqual(ast.json.calls.map((c) => c.id), ['ast-1']); // tenant 2's stays out
  const tw = await api(srv, 'GET', '/api/calls?platform=twilio&limit=200');
  assert.ok(tw.json.calls.length > 0 && tw.json.calls.every((c) => c.platform === 'twilio'));
  assert.equal((await api(srv, 'GET', '/api/calls?platform=jambonz')).json.calls.length, 0);
  for (const v of ['sip', 'Asterisk', '', 'twilio%20']) {
    const e = await api(srv, 'GET', '/api/calls?platform=' + v);
    assert.equal(e.status, 400, v);
    assert.equal(e.json.error.field, 'platform', v);
  }

  assert.equal((await api(srv, 'GET', `/api/calls/${r.json.session_id}`)).json.platform, 'twilio');
  assert.equal((await api(srv, 'GET', '/api/calls/ast-1')).json.platform, 'asterisk');
});

test('call detail: events and all; another tenant reads 404; live actions need a live call', async () => {
  const r = await api(srv, 'POST', '/api/calls/initiate', { body: { customer_id: 'd1', phone: '+14155550301', agent_type: 'x' } });
  const id = r.json.session_id;
  const d = await api(srv, 'GET', `/api/calls/${id}`);
  assert.equal(d.status, 200);
  assert.equal(d.json.id, id);
  assert.deepEqual(d.json.events.map((e) => e.type), ['session.created', 'session.simulated']);
  assert.equal(d.json.events[1].detail.body.status, 'simulation'); // detail comes back as JSON
  assert.deepEqual(d.json.transcript, []);
  assert.equal(d.json.recording, null);
  assert.equal((await api(srv, 'GET', `/api/calls/${id}`, { tok: token({ tenant_id: 2 }) })).status, 404);
  assert.equal((await api(srv, 'GET', '/api/calls/ffffffff')).status, 404);
  const h = await api(srv, 'POST', `/api/calls/${id}/hangup`);
  assert.equal(h.status, 409); // a simulated call is not in progress
  assert.equal((await api(srv, 'POST', `/api/calls/${id}/hangup`, { tok: token({ tenant_id: 2 }) })).status, 404);
  assert.equal((await api(srv, 'POST', `/api/calls/${id}/transfer`, { body: {} })).status, 400);
});

test('tenants API: admins only, validated like TwiML targets, DIDs unique', async () => {
  const list = await api(srv, 'GET', '/api/tenants');
  assert.deepEqual(list.json.tenants.map((t) => t.id), [1, 2]);
  const mine = await api(srv, 'GET', '/api/tenants', { tok: token({ tenant_id: 2 }) });
  assert.deepEqual(mine.json.tenants.map((t) => t.id), [2]);
  assert.equal((await api(srv, 'GET', '/api/tenants/1', { tok: token({ tenant_id: 2 }) })).status, 404);
  assert.equal((await api(srv, 'POST', '/api/tenants', { tok: token({ tenant_id: 2 }), body: { name: 'x' } })).status, 403);

  const created = await api(srv, 'POST', '/api/tenants', {
    body: {
      name: 'Acme', greeting: 'Welcome to Acme', ai_provider: 'echo', inbound_mode: 'ai',
      primary_target: '2000@pbx.acme.example;transport=tcp', secondary_target: '(415) 555-0177',
      caller_id_policy: 'business', max_concurrent_calls: 5, numbers: ['+14155550888', '415.555.0889'],
      amd_action: 'message', amd_message: 'Sorry we missed you.', agent_instructions: { sales: 'Sell politely.' },
    },
  });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.json.primary_target, 'sip:2000@pbx.acme.example;transport=tcp');
  assert.equal(created.json.secondary_target, '+14155550177');
  assert.deepEqual(created.json.numbers, ['+14155550888', '+14155550889']);
  assert.deepEqual(created.json.agent_instructions, { sales: 'Sell politely.' });
  const tid = created.json.id;

  // the inbound webhook now picks the tenant by its number
  const prev = await api(srv, 'POST', '/api/twilio/test', { tok: null, body: { kind: 'inbound', to: '+14155550888' } });
  assert.match(prev.text, /<Say>Welcome to Acme<\/Say>/);

  const bad = [
    [{ name: 'A', primary_target: 'sip:2000@' }, 'primary_target'],
    [{ name: 'A', voicemail_target: 'ring bob' }, 'voicemail_target'],
    [{ name: 'A', ai_provider: 'hal' }, 'ai_provider'],
    [{ name: 'A', caller_id_policy: 'random' }, 'caller_id_policy'],
    [{ name: 'A', max_concurrent_calls: -1 }, 'max_concurrent_calls'],
    [{ name: 'A', numbers: ['+1'] }, 'numbers'],
    [{ name: 'A', numbers: ['+14155550900', '+14155550900'] }, 'numbers'],
    [{ name: 'A', amd_action: 'message' }, 'amd_message'],
    [{ greeting: 'no name' }, 'name'],
    [{ name: 'A', colour: 'red' }, 'colour'],
  ];
  for (const [body, field] of bad) {
    const e = await api(srv, 'PUT', `/api/tenants/${tid}`, { body });
    assert.equal(e.status, 400, JSON.stringify(body) + e.text);
    assert.equal(e.json.error.field, field, JSON.stringify(body));
  }
  const taken = await api(srv, 'PUT', '/api/tenants/2', { body: { name: 'other', numbers: ['+14155550888'] } });
  assert.equal(taken.status, 409);
  assert.equal(taken.json.error.field, 'numbers');
  const upd = await api(srv, 'PUT', `/api/tenants/${tid}`, { body: { name: 'Acme Inc' } });
  assert.equal(upd.status, 200);
  assert.equal(upd.json.name, 'Acme Inc');
  assert.deepEqual(upd.json.numbers, ['+14155550888', '+14155550889']); // numbers omitted: kept
  assert.equal(upd.json.primary_target, null); // a PUT replaces the settings
  assert.equal((await api(srv, 'PUT', '/api/tenants/999', { body: { name: 'x' } })).status, 404);
});

test('tenants API: platform is "" (DEFAULT_PLATFORM), twilio or asterisk', async () => {
  const list = await api(srv, 'GET', '/api/tenants');
  assert.ok(list.json.tenants.every((t) => t.platform === ''), list.text);
  const c = await api(srv, 'POST', '/api/tenants', {
    body: { name: 'Pbx Co', platform: 'asterisk', primary_target: 'PJSIP/2000', secondary_target: 'Local/100@from-internal' },
  });
  assert.equal(c.status, 201, c.text);
  assert.equal(c.json.platform, 'asterisk');
  assert.equal(c.json.primary_target, 'PJSIP/2000'); // a dial string is kept as written
  assert.equal(c.json.secondary_target, 'Local/100@from-internal');
  const tid = c.json.id;
  assert.equal((await api(srv, 'GET', `/api/tenants/${tid}`)).json.platform, 'asterisk');
  assert.equal((await api(srv, 'PUT', `/api/tenants/${tid}`, { body: { name: 'Pbx Co', platform: 'twilio' } })).json.platform, 'twilio');
  assert.equal((await api(srv, 'PUT', `/api/tenants/${tid}`, { body: { name: 'Pbx Co', platform: '' } })).json.platform, '');
  await api(srv, 'PUT', `/api/tenants/${tid}`, { body: { name: 'Pbx Co', platform: 'asterisk' } });
  assert.equal((await api(srv, 'PUT', `/api/tenants/${tid}`, { body: { name: 'Pbx Co' } })).json.platform, ''); // replaced
  for (const platform of ['jambonz', 'Asterisk', 'sip', 1, true, ['twilio']]) {
    const e = await api(srv, 'PUT', `/api/tenants/${tid}`, { body: { name: 'Pbx Co', platform } });
    assert.equal(e.status, 400, JSON.stringify(platform));
    assert.equal(e.json.error.field, 'platform', JSON.stringify(platform));
  }
  const e = await api(srv, 'PUT', `/api/tenants/${tid}`, { body: { name: 'Pbx Co', primary_target: 'PJSIP/20,00' } });
  assert.equal(e.json.error.field, 'primary_target');
  assert.match(e.json.error.message, /dial string/);
});
