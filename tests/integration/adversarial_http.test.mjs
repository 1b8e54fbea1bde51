// Bad requests on every route of every platform, generated from tables: bodies (wrong content
// types, broken form encoding, truncated or invalid JSON, deep nesting, huge strings, NUL bytes,
// invalid UTF-8, 10,000 fields or keys), headers (huge, too many, bytes they may not hold),
// bearer tokens (garbled, expired, alg none, HS512, other tenants), webhook signatures (missing,
// forged, stale), query values, odd paths and wrong methods, and HTTP/1.1 framing on a raw socket.
// Every answer: no 5xx, an X-Request-Id, the route's documented error shape (JSON errors on the
// API and the pages; TwiML or 403 on /twilio/*; a verb array or 403 on /jambonz/*; 404 and 405
// are JSON everywhere, as README.md says), 400 naming the field for a bad query value; nothing
// written (every table's rows before and after each batch), no database error logged, and the
// server alive (/health) and clean (stop() fails on a sanitizer report).
// (WebSockets: adversarial_ws.test.mjs; the shared parts: lib/adversarial.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import twilio from 'twilio';
import { JWT_SECRET, token } from './lib/jwt.mjs';
import { bytes, build, rawExchange, until } from './lib/rawhttp.mjs';
import { SMALL_BODY, UNKNOWN, SEEDED, now, snapshot, batch, tally, healthy, mapLimit, describe, shape, check, twilioSig, jambonzSig, elevenSig, rawToken, claims, bearer, ADMIN, POST_ROUTES, ALL_ROUTES, signedHeaders, randomBytes, u8, BODIES, startServers, stopServers } from './lib/adversarial.mjs';

let A, B;
before(async () => ({ A, B } = await startServers({ small: true })));
after(stopServers);

// ---- tests ----------------------------------------------------------------------------------

test('bodies: every POST route, unsigned and forged, then validly signed', async (t) => {
  const cases = [];
  for (const r of POST_ROUTES) {
    for (const [name, ct, body] of BODIES) {
      const h = ct ? [['Content-Type', ct]] : [];
      const method = r.method ?? 'POST';
      // as is: Twilio's routes parse before they check the signature (400 or 403), jambonz's
      // check first (403), the post-call webhook 401, the API 401 without a token; and
      // POST /api/twilio/test reads JSON whatever the content type (curl -d, as README.md shows)
      const status = { twilio: [400, 403], jambonz: 403, elevenlabs: 401 }[r.sign] ?? (r.auth ? 401 : name === 'JSON as a form' ? 200 : 400);
      cases.push({ ...r, method, name: `${r.path} ${name}, unsigned`, headers: h, body, status });
      // with what the route needs to look further: a valid signature (over these very bytes) or token
      if (!r.sign && !r.auth) continue;
      const signed = signedHeaders(r, body).filter(([k]) => k !== 'Content-Type');
      cases.push({ ...r, method, name: `${r.path} ${name}, signed`, headers: [...h, ...signed], body });
    }
    if (r.sign) {
      const body = r.sign === 'twilio' ? 'CallSid=CA123&From=%2B14155550111' : '{"call_sid":"abc","from":5}';
      const forged = {
        twilio: [null, '', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'x'.repeat(65000), twilioSig(r.path, body + '&x=1'), createHmac('sha1', 'wrong').update('x').digest('base64')],
        jambonz: [null, '', 'v1=abc', 't=1,v1=' + 'a'.repeat(64), jambonzSig(body, now() - 400), jambonzSig(body, now() + 400), jambonzSig(body, now(), 'wrong-secret'),
          `t=${now()},v1=${'A'.repeat(64)}`, `t=${now()},t=${now()},v1=${'a'.repeat(64)}`, 'x'.repeat(5000), jambonzSig(body + ' ')],
        elevenlabs: [null, '', 't=abc,v0=00', `t=${now()}`, elevenSig(body, now() - 3600), elevenSig(body, now() + 600), elevenSig(body, now(), 'wrong'), 'x'.repeat(5000)],
      }[r.sign];
      const header = { twilio: 'X-Twilio-Signature', jambonz: 'Jambonz-Signature', elevenlabs: 'ElevenLabs-Signature' }[r.sign];
      for (const [i, sig] of forged.entries())
        cases.push({ ...r, method: 'POST', name: `${r.path} forged signature #${i}`, body, status: r.sign === 'elevenlabs' ? 401 : 403,
          headers: [['Content-Type', r.sign === 'twilio' ? 'application/x-www-form-urlencoded' : 'application/json'], ...(sig === null ? [] : [[header, sig]])] });
    }
  }
  await batch(t, A, cases);
});

test('each route\'s own validation: 400 naming the field, nothing written', async (t) => {
  const cases = [];
  const add = (r, body, field, extra = {}) => {
    const raw = typeof body === 'string' ? body : JSON.stringify(body);
    cases.push({ method: r.method ?? 'POST', ...r, name: `${r.path} ${raw.slice(0, 80)}`, headers: signedHeaders(r, raw), body: raw, status: 400, field, ...extra });
  };
  const initiate = POST_ROUTES.find((r) => r.path === '/api/calls/initiate');
  const ok = { customer_id: 'c-1', phone: '+14155550100', agent_type: 'sales' };
  for (const [patch, field] of [
    [{ customer_id: undefined }, 'customer_id'], [{ customer_id: null }, 'customer_id'], [{ customer_id: [] }, 'customer_id'],
    [{ customer_id: -1 }, 'customer_id'], [{ customer_id: 1.5 }, 'customer_id'], [{ customer_id: '' }, 'customer_id'],
    [{ customer_id: 'x'.repeat(64) }, 'customer_id'], [{ phone: undefined }, 'phone'], [{ phone: 14155550100 }, 'phone'],
    [{ phone: '' }, 'phone'], [{ phone: 'call me maybe' }, 'phone'], [{ phone: '+' }, 'phone'], [{ phone: '1'.repeat(40) }, 'phone'],
    [{ phone: '+1415555\u00e90100' }, 'phone'], [{ phone: '+1 415 555 0100; DROP TABLE calls' }, 'phone'],
    [{ agent_type: undefined }, 'agent_type'], [{ agent_type: '' }, 'agent_type'], [{ agent_type: 'Sales' }, 'agent_type'],
    [{ agent_type: 'a'.repeat(33) }, 'agent_type'], [{ agent_type: 'a b' }, 'agent_type'], [{ agent_type: '\u00e9' }, 'agent_type'],
    [{ agent_type: 7 }, 'agent_type'], [{ extra: 1 }, 'extra'],
  ]) add(initiate, { ...ok, ...patch }, field);
  // an unknown name long enough to be cut where a UTF-8 character is split: still named
  const longKey = 'a'.repeat(62) + '\u00e9\u00e9';
  add(initiate, { ...ok, [longKey]: 1 }, longKey, { fieldPrefix: true });
  // a valid body, with an Idempotency-Key that is not one
  for (const key of ['x'.repeat(129), 'two words', u8('caf', [0xc3, 0xa9]), 'tab\there'])
    cases.push({ ...initiate, method: 'POST', name: `initiate Idempotency-Key ${String(key).slice(0, 20)}`, body: JSON.stringify(ok), headers: [...signedHeaders(initiate), ['Idempotency-Key', key]], status: 400, field: 'Idempotency-Key' });

  const tenants = [POST_ROUTES.find((r) => r.path === '/api/tenants'), POST_ROUTES.find((r) => r.path === '/api/tenants/1')];
  for (const r of tenants) {
    for (const [body, field] of [
      [{}, 'name'], [{ name: '' }, 'name'], [{ name: 5 }, 'name'], [{ name: 'x'.repeat(501) }, 'name'],
      [{ name: 'x', ai_provider: 'gpt' }, 'ai_provider'], [{ name: 'x', inbound_mode: 'maybe' }, 'inbound_mode'],
      [{ name: 'x', caller_id_policy: 'anyone' }, 'caller_id_policy'], [{ name: 'x', amd_action: 'explode' }, 'amd_action'],
      [{ name: 'x', amd_action: 'message' }, 'amd_message'], [{ name: 'x', max_concurrent_calls: -1 }, 'max_concurrent_calls'],
      [{ name: 'x', max_concurrent_calls: 1.5 }, 'max_concurrent_calls'], [{ name: 'x', max_concurrent_calls: '5' }, 'max_concurrent_calls'],
      [{ name: 'x', max_concurrent_calls: 100001 }, 'max_concurrent_calls'], [{ name: 'x', platform: 'skype' }, 'platform'],
      [{ name: 'x', primary_target: 'sip:' }, 'primary_target'], [{ name: 'x', secondary_target: 'PJSIP/a b' }, 'secondary_target'],
      [{ name: 'x', voicemail_target: 'call me' }, 'voicemail_target'], [{ name: 'x', primary_target: 'sip:a@b.c\r\nX: y' }, 'primary_target'],
      [{ name: 'x', numbers: 'x' }, 'numbers'], [{ name: 'x', numbers: [1] }, 'numbers'], [{ name: 'x', numbers: ['abc'] }, 'numbers'],
      [{ name: 'x', numbers: Array.from({ length: 65 }, (_, i) => `+1415555${String(i).padStart(4, '0')}`) }, 'numbers'],
      [{ name: 'x', numbers: ['+14155550999', '+14155550999'] }, 'numbers'], [{ name: 'x', agent_instructions: 'x' }, 'agent_instructions'],
      [{ name: 'x', agent_instructions: { sales: 5 } }, 'agent_instructions'], [{ name: 'x', agent_instructions: { ['k'.repeat(33)]: 'x' } }, 'agent_instructions'],
      [{ name: 'x', agent_instructions: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`a${i}`, 'x'])) }, 'agent_instructions'],
      [{ name: 'x', ai_instructions: 'x'.repeat(8001) }, 'ai_instructions'], [{ name: 'x', greeting: 'x'.repeat(501) }, 'greeting'],
      [{ name: 'x', colour: 'blue' }, 'colour'],
    ]) add(r, body, field);
    add(r, { name: 'x', [longKey]: 1 }, longKey, { fieldPrefix: true });
  }

  const preview = POST_ROUTES.find((r) => r.path === '/api/twilio/test');
  for (const [body, field] of [
    [{}, 'kind'], [{ kind: 5 }, 'kind'], [{ kind: '' }, 'kind'], [{ kind: 'teleport' }, 'kind'], [{ kind: 'x'.repeat(513) }, 'kind'],
    [{ kind: 'transfer' }, 'target'], [{ kind: 'transfer', target: 'sip:' }, 'target'], [{ kind: 'transfer', target: 'PJSIP/2000' }, 'target'],
    [{ kind: 'inbound', caller: 'abc' }, 'caller'], [{ kind: 'inbound', caller_id_policy: 'x' }, 'caller_id_policy'],
    [{ kind: 'fallback', attempt: -1 }, 'attempt'], [{ kind: 'fallback', attempt: 9 }, 'attempt'], [{ kind: 'fallback', attempt: '1' }, 'attempt'],
    [{ kind: 'fallback', attempt: 1.5 }, 'attempt'], [{ kind: 'inbound', to: 5 }, 'to'], [{ kind: 'reject', x: 1 }, 'x'],
  ]) add(preview, body, field);
  add(preview, { kind: 'reject', [longKey]: 1 }, longKey, { fieldPrefix: true });

  const transfer = POST_ROUTES.find((r) => r.path.endsWith('/transfer'));
  for (const body of [{}, { target: 5 }, { target: null }, { target: [] }, 'not json']) add(transfer, body, 'target');
  // Twilio: a signed webhook whose parameters are not UTF-8 (Twilio sends UTF-8 only)
  const sid = 'CallSid=CA' + 'b'.repeat(32);
  for (const [path, body, flow] of [['/twilio/voice', `${sid}&From=%c3%28&To=%2B14155550100`, true], ['/twilio/voice', `${sid}&CallerName=%ff%fe`, true],
    ['/twilio/status', `${sid}&CallStatus=%ed%a0%80`, false], [`/twilio/connect_action?session=%ff`, sid, true]])
    cases.push({ group: 'twilio', flow, method: 'POST', path, name: `${path} ${body}`, body, status: 400,
      headers: [['Content-Type', 'application/x-www-form-urlencoded'], ['X-Twilio-Signature', twilioSig(path, body)]] });
  cases.push({ ...transfer, method: 'POST', name: 'transfer of an ended call', headers: signedHeaders(transfer), body: '{"target":"primary"}', status: 409, code: 'not_in_progress' });

  const postCall = POST_ROUTES.find((r) => r.path === '/api/voice/post_call');
  const pc = (data, extra = {}) => ({ type: 'post_call_transcription', event_timestamp: now(), data, ...extra });
  for (const [body, field] of [
    ['x', 'body'], ['[]', 'body'], [{}, 'type'], [{ type: 5 }, 'type'], [pc({ conversation_id: 'c' }, { event_timestamp: 'x' }), 'event_timestamp'],
    [{ type: 'post_call_transcription', data: 5 }, 'data'], [pc({}), 'data.conversation_id'], [pc({ conversation_id: '' }), 'data.conversation_id'],
    [pc({ conversation_id: 'c'.repeat(129) }), 'data.conversation_id'], [pc({ conversation_id: 'a b' }), 'data.conversation_id'],
    [pc({ conversation_id: 'caf\u00e9' }), 'data.conversation_id'], [pc({ conversation_id: 'c1' }), 'data.transcript'],
    [pc({ conversation_id: 'c1', transcript: 5 }), 'data.transcript'], [pc({ conversation_id: 'c1', transcript: [5] }), 'data.transcript[0]'],
    [pc({ conversation_id: 'c1', transcript: [{ role: 5, message: 'x' }] }), 'data.transcript[0].role'],
    [pc({ conversation_id: 'c1', transcript: [{ role: 'user', message: 5 }] }), 'data.transcript[0].message'],
  ]) add(postCall, body, field);

  // jambonz: hook bodies its parser refuses (each with the call_sid a valid call hook would need)
  for (const r of POST_ROUTES.filter((x) => x.sign === 'jambonz')) {
    for (const body of [
      {}, { call_sid: 5 }, { call_sid: 'x y' }, { call_sid: 'a'.repeat(64) }, { call_sid: 'abc', from: 5 }, { call_sid: 'abc', from: '\u0001' },
      { call_sid: 'abc', to: 'x'.repeat(256) }, { call_sid: 'abc', sip_status: -1 }, { call_sid: 'abc', sip_status: 1.5 },
      { call_sid: 'abc', duration: '12345678901' }, { call_sid: 'abc', direction: true }, { call_sid: 'abc', caller_name: 'a\u007fb' },
    ]) {
      const raw = JSON.stringify(body);
      cases.push({ ...r, method: 'POST', name: `${r.path} ${raw}`, headers: signedHeaders(r, raw), body: raw, status: 400 });
    }
  }
  const status = POST_ROUTES.find((r) => r.path === '/jambonz/status');
  for (const st of ['exploded', '', 'COMPLETED', 'x'.repeat(31)]) {
    const raw = JSON.stringify({ call_sid: 'abc', call_status: st });
    cases.push({ ...status, method: 'POST', name: `jambonz status ${st}`, headers: signedHeaders(status, raw), body: raw, status: 400 });
  }
  await batch(t, A, cases);
});

test('query strings of the platforms\' hooks: bad sessions, steps and attempts', async (t) => {
  const cases = [];
  const tw = (path, body, status, flow = true) => cases.push({ group: 'twilio', flow, method: 'POST', name: path.slice(0, 100), path, body, status,
    headers: [['Content-Type', 'application/x-www-form-urlencoded'], ['X-Twilio-Signature', twilioSig(path, body)]] });
  const anySid = 'CallSid=CA123';
  for (const p of ['/twilio/connect_action', '/twilio/connect_action?session=', `/twilio/connect_action?session=${'f'.repeat(5000)}`,
    '/twilio/connect_action?session=..%2f..%2fetc', `/twilio/transfer_callback?session=${UNKNOWN}&attempt=0&voicemail=1`])
    tw(p, anySid, [200, 403]); // (a URL over 4 KB is not one Twilio signed: 403)
  for (const p of ['/twilio/connect_action?session=%ff', '/twilio/connect_action?session=%zz', '/twilio/transfer_callback?session=x',
    '/twilio/transfer_callback?session=x&attempt=-1', '/twilio/transfer_callback?session=x&attempt=99', '/twilio/transfer_callback?session=x&attempt=1e2',
    '/twilio/transfer_callback?session=x&attempt=', '/twilio/transfer_callback?attempt=0', '/twilio/voice?%zz', '/twilio/voice?bodySHA256=%zz',
    '/twilio/voice?a=%00'])
    tw(p, anySid, 400);
  tw('/twilio/recording?session=%ff', 'RecordingSid=RE' + '1'.repeat(32), 400, false);
  tw('/twilio/status?%zz', anySid, 400, false);
  // a JSON-bodied webhook (bodySHA256) with a signature that does not match
  cases.push({ group: 'twilio', flow: true, method: 'POST', name: 'bodySHA256 forged', path: `/twilio/voice?bodySHA256=${createHash('sha256').update('{}').digest('hex')}`,
    headers: [['Content-Type', 'application/json'], ['X-Twilio-Signature', 'AAAA']], body: '{}', status: 403 });
  // {session_id} captures nobody has, down to bytes no session id holds
  const valid = 'CallSid=CA' + 'c'.repeat(32) + '&CallStatus=completed&AnsweredBy=machine_end_beep&DialCallStatus=completed';
  for (const sid of ['%ff', '%00', 'f'.repeat(200), '%c3%28', 'a%20b', '..%2e'])
    for (const [route, flow] of [['connect', true], ['status', false], ['dial_status', true], ['amd', true]])
      tw(`/twilio/${route}/${sid}`, valid, [200, 400, 404], flow);

  const jb = (path, body, status) => cases.push({ group: 'jambonz', method: 'POST', name: path.slice(0, 100), path, body, status,
    headers: [['Content-Type', 'application/json'], ['Jambonz-Signature', jambonzSig(body)]] });
  const hook = JSON.stringify({ call_sid: 'abc', call_status: 'completed' });
  for (const p of ['/jambonz/action', '/jambonz/action?session=', '/jambonz/action?step=listen', `/jambonz/action?session=${UNKNOWN}&step=dial`,
    `/jambonz/action?session=${UNKNOWN}&step=dial&attempt=99`, `/jambonz/action?session=${UNKNOWN}&step=dial&attempt=-1`,
    '/jambonz/action?session=%ff&step=listen', '/jambonz/action?%zz', '/jambonz/call?session=%ff', '/jambonz/status?session=%ff&x=%zz'])
    jb(p, hook, [400, 200]);
  for (const p of [`/jambonz/action?session=${UNKNOWN}&step=teleport`, `/jambonz/action?session=${'f'.repeat(3000)}&step=listen`, `/jambonz/call?session=${UNKNOWN}`])
    jb(p, hook, [200, 400]);
  await batch(t, A, cases);
});

test('bearer tokens: garbled, expired, wrong algorithm or key, missing claims: 401 on every API route', async (t) => {
  const hs512 = (key) => (h) => createHmac('sha512', key).update(h).digest('base64url');
  const TOKENS = [
    ['no header', null], ['empty', ''], ['Bearer alone', 'Bearer'], ['Bearer and a space', 'Bearer '], ['Basic', 'Basic YWRtaW46YWRtaW4='],
    ['not a token', 'Bearer not-a-token'], ['two parts', 'Bearer a.b'], ['four parts', 'Bearer a.b.c.d'], ['empty parts', 'Bearer ..'],
    ['base64 garbage', 'Bearer ' + randomBytes(90).toString('base64')], ['bytes JSON cannot hold', u8('Bearer ', [0xff, 0xfe, 0x2e, 0x80, 0x2e, 0xc0])],
    ['header not JSON', 'Bearer ' + rawToken('{"alg":', claims())], ['header not an object', 'Bearer ' + rawToken('[]', claims())],
    ['payload not JSON', 'Bearer ' + rawToken({ alg: 'HS256', typ: 'JWT' }, '{"sub":')], ['payload an array', 'Bearer ' + rawToken({ alg: 'HS256' }, '[1]')],
    ['expired', 'Bearer ' + token({ exp: now() - 3600 })], ['not yet valid', 'Bearer ' + token({ nbf: now() + 3600 })],
    ['issued in the future', 'Bearer ' + token({ iat: now() + 3600 })], ['exp as a string', 'Bearer ' + token({ exp: String(now() + 3600) })],
    ['wrong secret', 'Bearer ' + token({}, { secret: 'another-secret-0123456789abcdef' })],
    ['alg none, unsigned', 'Bearer ' + token({}, { header: { alg: 'none', typ: 'JWT' }, sign: false })],
    ['alg none, signed', 'Bearer ' + token({}, { header: { alg: 'none', typ: 'JWT' } })],
    ['alg NONE', 'Bearer ' + rawToken({ alg: 'NONE' }, claims(), null)],
    ['HS512 with a wrong key', 'Bearer ' + rawToken({ alg: 'HS512', typ: 'JWT' }, claims(), hs512('wrong-key'))],
    ['HS512 with the right key', 'Bearer ' + rawToken({ alg: 'HS512', typ: 'JWT' }, claims(), hs512(JWT_SECRET))],
    ['HS384 header', 'Bearer ' + token({}, { header: { alg: 'HS384', typ: 'JWT' } })],
    ['RS256 header', 'Bearer ' + token({}, { header: { alg: 'RS256', typ: 'JWT' } })],
    ['no alg', 'Bearer ' + token({}, { header: { typ: 'JWT' } })],
    ['signature of another token', 'Bearer ' + token({ role: 'agent' }).split('.').slice(0, 2).join('.') + '.' + token().split('.')[2]],
    ['signature cut short', 'Bearer ' + token().slice(0, -5)], ['signature with padding', 'Bearer ' + token() + '=='],
    ['no sub', 'Bearer ' + token({ sub: undefined })], ['empty sub', 'Bearer ' + token({ sub: '' })], ['sub of 200 bytes', 'Bearer ' + token({ sub: 'x'.repeat(200) })],
    ['no tenant_id', 'Bearer ' + token({ tenant_id: undefined })], ['tenant_id a word', 'Bearer ' + token({ tenant_id: '1; DROP TABLE calls' })],
    ['tenant_id negative', 'Bearer ' + token({ tenant_id: -1 })], ['tenant_id 1.5', 'Bearer ' + token({ tenant_id: 1.5 })],
    ['tenant_id huge', 'Bearer ' + token({ tenant_id: 1e30 })], ['no role', 'Bearer ' + token({ role: undefined })],
    ['role root', 'Bearer ' + token({ role: 'root' })], ['no exp', 'Bearer ' + token({ exp: undefined })],
    ['over 4096 bytes', 'Bearer ' + token({ pad: 'x'.repeat(5000) })], ['NUL in the signature', 'Bearer ' + token() + '%00'],
  ];
  const routes = ALL_ROUTES.filter((r) => r.path.startsWith('/api/') && !['/api/twilio/test', '/api/voice/post_call'].includes(r.path));
  const cases = [];
  for (const r of routes)
    for (const [name, value] of TOKENS) {
      const body = r.method === 'GET' ? undefined : JSON.stringify({ name: 'x', customer_id: 'c', phone: '+14155550100', agent_type: 'sales', target: 'primary' });
      const also = (res) => (/^Bearer realm="switchboard"/.test(res.headers['www-authenticate'] ?? '') ? [] : ['no WWW-Authenticate: Bearer']);
      cases.push({ ...r, name: `${r.method} ${r.path} ${name}`, headers: value === null ? [] : [['Authorization', value]], body, status: 401, code: 'unauthorized', also });
    }
  await batch(t, A, cases);
});

test('valid tokens of the wrong tenant or role: 403 or 404, another tenant\'s data never shown or changed', async (t) => {
  const t2 = ['tenant 2', bearer(token({ tenant_id: 2 }))];
  const agent = ['an agent', bearer(token({ role: 'agent' }))];
  const ghost = ['tenant 999 (none)', bearer(token({ tenant_id: 999 }))];
  const admin = ['tenant 1\'s admin', ADMIN];
  const tenantBody = JSON.stringify({ name: 'taken over', greeting: 'hi' });
  const call = JSON.stringify({ customer_id: 'c-9', phone: '+14155550100', agent_type: 'sales' });
  const cases = [
    ['GET', `/api/calls/${SEEDED}`, t2, undefined, 404], ['GET', `/api/calls/${SEEDED}/recording`, t2, undefined, 404],
    ['POST', `/api/calls/${SEEDED}/hangup`, t2, '', 404], ['POST', `/api/calls/${SEEDED}/transfer`, t2, '{"target":"primary"}', 404],
    ['GET', '/api/tenants/1', t2, undefined, 404], ['PUT', '/api/tenants/1', t2, tenantBody, 404], ['POST', '/api/tenants', t2, tenantBody, 403],
    ['GET', '/api/tenants', agent, undefined, 403], ['GET', '/api/tenants/1', agent, undefined, 403], ['PUT', '/api/tenants/1', agent, tenantBody, 403],
    ['POST', '/api/tenants', agent, tenantBody, 403], ['PUT', '/api/tenants/999', admin, tenantBody, 404],
    ['GET', `/api/calls/${SEEDED}`, ghost, undefined, 404], ['PUT', '/api/tenants/1', ghost, tenantBody, 404],
    // a token for a tenant that does not exist places no call for it
    ['POST', '/api/calls/initiate', ghost, call, [401, 403, 404]],
  ].map(([method, path, [who, auth], body, status]) => ({ method, path, name: `${method} ${path} as ${who}`, group: 'json', headers: [auth, ['Content-Type', 'application/json']], body, status }));
  // tenant 2 lists its own calls: tenant 1's seeded call is not among them
  cases.push({ method: 'GET', path: '/api/calls', name: 'list as tenant 2', group: 'json', headers: [t2[1]], status: 200, also: (res) => (res.body.includes(SEEDED) ? ['tenant 1\'s call listed'] : []) });
  await batch(t, A, cases);
});

test('query values of GET /api/calls and /api/stats: 400 naming the field', async (t) => {
  const BAD = {
    limit: ['0', '-1', '201', '1e3', 'abc', '', '99999999999999999999', '0x10', '1.5', '%ff', '5%20'],
    cursor: ['0', '-1', 'abc', '', '1e5', '99999999999999999999999', '1x', '%c3%28'],
    direction: ['sideways', '', 'INBOUND', 'inbound%20', '%ff'],
    platform: ['skype', '', 'TWILIO', '%ff'],
    since: ['2026-13-45', '2026-02-30', '2026-02-29', '2026-01-01T25:00', '2026-01-01T10:61', '2026-01-01T10:00:61', '2026-1-1',
      '20260101', '', 'yesterday', '2026-01-01T10:00:00.1234Z', '9999-99-99', '%ff', '2026-01-01T10:00+01:00', '2026-01-01Z', 'x'.repeat(5000)],
    until: ['2026-13-45', '2026-00-10', '2026-01-00', 'T10:00', '2026-01-01T', '2026-01-01T1:00'],
    status: ['%ff', '%c3%28', '%ed%a0%80', 'exploded', '', 'COMPLETED', 'completed%20'],
    from: ['%ff', '%c0%af'],
    to: ['%fe%ff'],
  };
  const cases = [];
  for (const [field, values] of Object.entries(BAD))
    for (const v of values) {
      const path = `/api/calls?${field}=${v.length > 100 ? v : v.replace(/ /g, '%20')}`;
      cases.push({ method: 'GET', path, name: `${field}=${v.slice(0, 40)}`, group: 'json', headers: [ADMIN], status: 400, field, code: 'invalid_query' });
    }
  const day = '2026-11-22T00:00:00Z';
  for (const [since, until, field] of [
    [undefined, day, 'since'], [day, undefined, 'until'], ['2026-13-45T00:00Z', day, 'since'], ['2026-11-22', day, 'since'],
    ['2026-02-30T00:00Z', day, 'since'], ['2026-11-22T24:00Z', day, 'since'], ['2026-11-22T00:00+24:00', day, 'since'],
    ['2026-11-22T00:00+01:60', day, 'since'], ['2026-11-22T00:00:00', day, 'since'], ['%ff', day, 'since'], ['x'.repeat(3000), day, 'since'],
    [day, '2026-11-22T00:00:00.5Zjunk', 'until'], [day, day, 'until'], [day, '2026-11-21T00:00:00Z', 'until'], [day, '2026-11-30T00:00:01Z', 'until'],
    ['0000-01-01T00:00Z', '9999-12-31T23:59Z', 'until'],
  ]) {
    const q = [since !== undefined && `since=${since}`, until !== undefined && `until=${until}`].filter(Boolean).join('&');
    cases.push({ method: 'GET', path: `/api/stats?${q}`, name: `stats ${q.slice(0, 80)}`, group: 'json', headers: [ADMIN], status: 400, field, code: 'invalid_query' });
  }
  // query strings that cannot be decoded (server/form.c refuses the whole string): 400, naming
  // the key whose value is at fault, or no field when no one key is (the key itself unreadable,
  // no key, too many pairs)
  for (const [q, field] of [['limit=%4', 'limit'], ['limit=5%00', 'limit'], ['direction=inbound%00', 'direction'],
    ['a=1&sin%63e=%zz', 'since'], [`status=${'x'.repeat(9000)}`, 'status'], ['%zz'], ['%'], ['=5'],
    [Array.from({ length: 300 }, (_, i) => `a${i}=1`).join('&')], ['x'.repeat(300) + '=1']])
    for (const p of ['/api/calls', '/api/stats'])
      cases.push({ method: 'GET', path: `${p}?${q}`, name: `${p}?${q.slice(0, 30)}`, group: 'json', headers: [ADMIN], status: 400, code: 'invalid_query',
        ...(field ? { field } : { noField: true }) });
  // values that are fine (to check the table above is about the values)
  for (const q of ['limit=1', 'status=no-answer', 'status=simulation', 'since=2026-11-22&until=2026-11-23T10:00:00.000Z', 'from=%2B14155550111', 'unknown=1&limit=200&limit=x'])
    cases.push({ method: 'GET', path: `/api/calls?${q}`, name: `fine: ${q}`, group: 'json', headers: [ADMIN], status: 200 });
  await batch(t, A, cases);
});

test('odd paths and wrong methods on every route', async (t) => {
  const cases = [];
  const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'FOO-BAR', 'get'];
  for (const r of ALL_ROUTES)
    for (const m of METHODS) {
      if (ALL_ROUTES.some((x) => x.path === r.path && x.method === m)) continue;
      const also = (res) => (res.status === 405 && !new RegExp(`\\b${r.method}\\b`).test(res.headers.allow ?? '') ? [`Allow: ${res.headers.allow}`] : []);
      cases.push({ ...r, method: m, name: `${m} ${r.path}`, headers: [ADMIN], body: m === 'GET' || m === 'HEAD' ? undefined : '{}', status: [404, 405], also });
    }
  // paths that climb out, hide bytes, or are odd
  const PATHS = [
    '/../../etc/passwd', '/assets/x/../../../etc/passwd', '/assets/x/..%2f..%2f..%2fetc%2fpasswd', '/assets/%2e%2e/%2e%2e/etc/passwd',
    '/assets/v/%2e%2e%2fapp.js', '/assets/v/index.html', '/assets//app.js', '/assets/v/app.js/x', `/assets/v/${'a'.repeat(5000)}`,
    '/assets/v/app.js%00.png', '//health', '/health/', '/HEALTH', '/health%00', '/health%2f', '/%', '/%zz', '/%ff', u8('/', [0xff, 0xfe]),
    '/api/calls/%00', '/api/calls/%ff', '/api/calls/%c3%28/hangup', `/api/calls/${'a'.repeat(8000)}`, '/api/calls/..', '/api/calls/x/y/z',
    '/api/tenants/-1', '/api/tenants/0', '/api/tenants/1.0', '/api/tenants/0x1', '/api/tenants/%201', '/api/tenants/99999999999999999999',
    '/api/tenants/1/extra', '/api/tenants/%ff', '/twilio/connect/%2e%2e', '/twilio/voice/', '/twilio', '/jambonz', '/jambonz/listen/x',
    '/twilio/media/..%2f..%2fapi%2ftenants', `/${'x/'.repeat(2000)}`, '/api/calls%3fstatus=x', '/api/calls#frag', '/api/%2e%2e/health',
  ];
  for (const p of PATHS)
    for (const m of ['GET', 'POST'])
      cases.push({ method: m, path: p, name: `${m} ${String(p).slice(0, 60)}`, group: 'json', headers: [ADMIN], body: m === 'POST' ? '{}' : undefined });
  // forms h2o takes without complaint: an absolute URI, no leading slash, OPTIONS *
  for (const [m, p] of [['GET', 'http://evil.example.com/health'], ['GET', 'health'], ['OPTIONS', '*'], ['GET', '/health?%zz'], ['CONNECT', '/health']])
    cases.push({ method: m, path: p, name: `${m} ${p}`, group: 'json' });
  await batch(t, A, cases);
});

test('headers: huge, many, and bytes they may not hold', async (t) => {
  const targets = [
    { method: 'GET', path: '/health', group: 'json' },
    { method: 'GET', path: '/api/calls', group: 'json', headers: [ADMIN] },
    { method: 'POST', path: '/twilio/voice', group: 'twilio', flow: true, body: 'From=x' },
    { method: 'POST', path: '/jambonz/call', group: 'jambonz', body: '{}' },
    { method: 'POST', path: '/api/twilio/test', group: 'json', body: '{"kind":"nope"}' },
    { method: 'GET', path: '/', group: 'json' },
  ];
  const many = (n) => Array.from({ length: n }, (_, i) => [`X-Junk-${i}`, 'v'.repeat(20)]);
  const HEADERS = [
    ['99 more headers', many(95)], ['a 64 KB value', [['X-Big', 'v'.repeat(65536)]]], ['a 8 KB name', [['X-' + 'n'.repeat(8192), '1']]],
    ['300 KB of headers', Array.from({ length: 60 }, (_, i) => [`X-Fill-${i}`, 'f'.repeat(5000)])], ['bytes over 0x7f', [['X-Latin', u8([0xff, 0xfe, 0xc3, 0x28])]]],
    ['a 64 KB Content-Type', [['Content-Type', 'application/json; x=' + 'y'.repeat(65536)]]], ['Host garbage', [['Host', 'evil.example.com/../<x>"']]],
    ['two Hosts', [['Host', 'a.example.com'], ['Host', 'b.example.com']]], ['X-Forwarded-Proto garbage', [['X-Forwarded-Proto', 'gopher' + 'x'.repeat(1000)]]],
    ['Authorization huge', [['Authorization', 'Bearer ' + 'x'.repeat(60000)]]], ['X-Twilio-Signature huge', [['X-Twilio-Signature', 's'.repeat(60000)]]],
    ['Jambonz-Signature huge', [['Jambonz-Signature', 't=1,' + 'v1=x,'.repeat(10000)]]], ['Accept-Encoding odd', [['Accept-Encoding', 'gzip;q=x, *;q=-1, br']]],
    ['Connection odd', [['Connection', 'keep-alive, Upgrade, x' + ',y'.repeat(1000)]]], ['Upgrade without a handshake', [['Upgrade', 'websocket'], ['Connection', 'Upgrade']]],
    ['If-None-Match huge', [['If-None-Match', '"' + 'e'.repeat(20000) + '"']]], ['Range', [['Range', 'bytes=99999999999-']]],
  ];
  const cases = [];
  for (const tg of targets) {
    for (const [name, hs] of HEADERS) cases.push({ ...tg, fresh: true, name: `${tg.method} ${tg.path} ${name}`, headers: [...(tg.headers || []), ...hs] });
    // h2o's bare 400 allowed (no request exists): more than 100 header lines, a head past its
    // limit, a NUL or a bare CR in a value, a line without a colon, a space in a name, a folded line
    for (const [name, hs] of [['101 more headers', many(101)], ['500 KB of headers', Array.from({ length: 100 }, (_, i) => [`X-F${i}`, 'f'.repeat(5000)])],
      ['NUL in a value', [['X-Nul', u8('a', [0], 'b')]]], ['CR in a value', [['X-Cr', 'a\rb']]], ['no colon', [['X-No-Colon\r\nbroken', 'x']]],
      ['space in a name', [['X Space', 'x']]], ['folded line', [['X-Fold', 'a\r\n b']]]])
      cases.push({ ...tg, fresh: true, name: `${tg.method} ${tg.path} ${name}`, headers: [...(tg.headers || []), ...hs], bare: true });
  }
  await batch(t, A, cases);
});

test('bodies over MAX_REQUEST_BODY on every POST route: 413 in the route\'s shape', async (t) => {
  const big = 'x'.repeat(SMALL_BODY + 1);
  const cases = [];
  for (const r of POST_ROUTES) {
    // h2o's own errors get the apology on every Twilio route
    const base = { ...r, method: r.method ?? 'POST', fresh: true, status: 413, flow: r.group === 'twilio' };
    cases.push({ ...base, name: `${r.path} by Content-Length`, headers: signedHeaders(r, big), body: big });
    const chunked = `800\r\n${'y'.repeat(0x800)}\r\n800\r\n${'y'.repeat(0x800)}\r\n10\r\n${'y'.repeat(16)}\r\n0\r\n\r\n`;
    cases.push({ ...base, name: `${r.path} chunked`, headers: [['Transfer-Encoding', 'chunked'], ...signedHeaders(r, '')], body: chunked });
  }
  await batch(t, B, cases);
});

test('framing on a raw socket: ambiguous lengths, huge chunks, odd Expect, garbled request lines', async (t) => {
  const smuggled = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
  const post = (path, hs, body) => build({ method: 'POST', path, headers: hs, body, length: false });
  const closes = (res) => (res.closed ? [] : ['connection left open']);
  const nothingBehind = (res) => (res.rest.length ? [`more was answered: ${res.rest.toString().slice(0, 80)}`] : []);
  const cases = [];
  for (const [path, group, flow] of [['/api/calls/initiate', 'json'], ['/twilio/voice', 'twilio', true], ['/jambonz/call', 'jambonz'], ['/api/tenants', 'json'], ['/health', 'json']]) {
    const c = (name, data, extra) => cases.push({ group, flow, path, method: 'POST', name: `${path} ${name}`, data, ...extra });
    const framing = { status: 400, also: (r) => [...closes(r), ...nothingBehind(r)] };
    c('two Content-Length', post(path, [['Content-Length', 5], ['Content-Length', 5 + smuggled.length]], 'hello' + smuggled), framing);
    c('two equal Content-Length', post(path, [['Content-Length', 5], ['content-length', 5]], 'hello' + smuggled), framing);
    c('Content-Length then Transfer-Encoding', post(path, [['Content-Length', 5], ['Transfer-Encoding', 'chunked']], '5\r\nhello\r\n0\r\n\r\n' + smuggled), framing);
    c('Transfer-Encoding then Content-Length', post(path, [['Transfer-Encoding', 'chunked'], ['Content-Length', 5]], '5\r\nhello\r\n0\r\n\r\n' + smuggled), framing);
    c('Transfer-Encoding twice', post(path, [['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'chunked']], '5\r\nhello\r\n0\r\n\r\n' + smuggled), framing);
    c('Transfer-Encoding gzip, chunked', post(path, [['Transfer-Encoding', 'gzip, chunked']], '5\r\nhello\r\n0\r\n\r\n'), framing);
    c('Content-Length not a number', post(path, [['Content-Length', 'abc']], 'hello'), framing);
    c('Content-Length negative', post(path, [['Content-Length', '-1']], 'hello'), framing);
    c('Content-Length past 2^64', post(path, [['Content-Length', '99999999999999999999999']], 'hello'), { status: [400, 413], also: closes });
    for (const size of ['ffffffffffffffff', '7fffffffffffffff', String(SMALL_BODY + 1)])
      c(`chunk of 0x${size}`, post(path, [['Transfer-Encoding', 'chunked']], `${size}\r\n`), {
        status: [400, 413], also: (r) => [...closes(r), ...(r.closedAt < 1000 ? [] : [`closed after ${r.closedAt} ms`])] });
    c('chunk size not hex', post(path, [['Transfer-Encoding', 'chunked']], 'zz\r\nhello\r\n0\r\n\r\n'), framing);
    c('Expect 200-ok', post(path, [['Content-Length', 2], ['Expect', '200-ok']], '{}'), { status: 417, also: closes });
  }
  // bytes h2o cannot read as a request: its bare 400, and the connection closed
  for (const [name, data] of [
    ['garbled request line', 'GARBAGE\r\n\r\n'], ['binary', randomBytes(300)], ['three words and more', 'GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n'],
    ['NUL in the method', u8('G', [0], 'T /health HTTP/1.1\r\n\r\n')], ['control byte in the path', u8('GET /he', [1], 'alth HTTP/1.1\r\n\r\n')],
    ['HTTP/9.9', 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n'], ['no version', 'GET /health\r\n\r\n'], ['a 500 KB request line', `GET /${'a'.repeat(500000)} HTTP/1.1\r\n\r\n`],
    ['header without a colon', 'GET /health HTTP/1.1\r\nHost\r\n\r\n'], ['bare LF then junk', 'GET /health HTTP/1.1\nHost: x\n\x01\n\n'],
  ]) cases.push({ group: 'json', name, data, bare: true, status: 400, also: closes });
  // what h2o accepts: HTTP/1.0 without Host, LF line ends, Expect: 100-continue
  cases.push({ group: 'json', name: 'HTTP/1.0', data: 'GET /health HTTP/1.0\r\n\r\n', status: 200 });
  cases.push({ group: 'json', name: 'LF line ends', data: 'GET /health HTTP/1.1\nHost: x\nConnection: close\n\n', status: 200 });
  cases.push({ group: 'json', name: 'Expect 100-continue', data: [post('/api/calls/initiate', [['Content-Length', 2], ['Expect', '100-continue'], ['Connection', 'close']]), 50, '{}'], status: 401 });
  const failures = [];
  const before = snapshot(B);
  const errorsBefore = B.logLines('db.error').length;
  let bare = 0;
  await mapLimit(cases, 6, async (c) => {
    const res = await rawExchange(B, c.data);
    if (res.status && !res.headers['x-request-id']) bare++;
    for (const e of check({ method: 'POST', ...c }, res)) failures.push(`${c.name}: ${e}; got ${describe(res)}`);
  });
  assert.deepEqual(failures, []);
  assert.deepEqual(snapshot(B), before);
  await healthy(B, errorsBefore);
  t.diagnostic(`${cases.length} cases (${tally(cases)}), ${bare} answered by h2o alone (bare 400)`);
});

