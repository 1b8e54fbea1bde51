// The voice webhooks over real HTTP, signed with Twilio's helper library: inbound calls with
// and without AI, the concurrency limit, the transfer chain, caller ID, status callbacks,
// signatures and malformed input.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sqlite, cleanup } from './lib/harness.mjs';
import {
  AUTH_TOKEN, PUBLIC_BASE_URL, callSid, webhook, verbs, find, voiceParams, sessionOf,
} from './lib/twilio.mjs';

const servers = [];
async function server(env) {
  const srv = await startServer({
    env: { TWILIO_AUTH_TOKEN: AUTH_TOKEN, PUBLIC_BASE_URL, TLS_PORT: 'off', TWILIO_PHONE_NUMBER: '+14155550100', ...env },
  });
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
const db = (srv) => srv.dir + '/data/switchboard.db';

const PBX = 'sip:2000@pbx.example.com;transport=tcp';
const SECOND = '+14155550123';

test('inbound call with AI: a row, a call.started event and the stream TwiML', async () => {
  const srv = await server({ AI_PROVIDER: 'echo' });
  const sid = callSid();
  const r = await webhook(srv, '/twilio/voice', voiceParams(sid));
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/xml/);
  assert.ok(r.text.startsWith('<?xml version="1.0" encoding="UTF-8"?><Response>'));
  const connect = find(r.xml, 'Connect');
  const session = sessionOf(r.xml);
  assert.equal(connect.attrs.action, `${PUBLIC_BASE_URL}/twilio/connect_action?session=${session}`);
  const stream = find(connect, 'Stream');
  assert.equal(stream.attrs.url, 'wss://voice.example.com/twilio/media'); // no query string: Twilio rejects one
  const params = Object.fromEntries(stream.children.map((p) => [p.attrs.name, p.attrs.value]));
  assert.deepEqual(params, { session_id: session, tenant_id: '1' });
  assert.equal(sqlite(db(srv), `SELECT direction||','||from_number||','||to_number||','||status FROM calls WHERE call_sid='${sid}'`),
    'inbound,+14155550111,+14155550100,ringing');
  assert.equal(sqlite(db(srv), `SELECT type FROM call_events JOIN calls ON calls.id = call_id WHERE call_sid='${sid}'`), 'call.started');

  // Twilio retries a webhook it timed out on: same session, no second row
  const again = await webhook(srv, '/twilio/voice', voiceParams(sid));
  assert.equal(sessionOf(again.xml), session);
  assert.equal(sqlite(db(srv), `SELECT COUNT(*) FROM calls WHERE call_sid='${sid}'`), '1');

  // the stream ends without a decision: connect_action falls back to a person
  const next = await webhook(srv, `/twilio/connect_action?session=${session}`, { CallSid: sid, AccountSid: 'AC00000000000000000000000000000000' });
  // no transfer target configured: the chain starts at its voicemail stage
  assert.deepEqual(verbs(next.xml), ['Say', 'Record', 'Say', 'Hangup']);
});

test('a tenant claims its number; its greeting and targets beat the settings', async () => {
  const srv = await server({ AI_PROVIDER: 'echo', PRIMARY_TRANSFER_TARGET: PBX });
  sqlite(db(srv), "INSERT INTO tenants (id, name, greeting, primary_target, ai_provider) VALUES (7, 'acme', 'Welcome to Acme.', 'sip:sales@acme.example.com', 'echo'); INSERT INTO tenant_numbers VALUES ('+14155550777', 7);");
  const r = await webhook(srv, '/twilio/voice', voiceParams(callSid(), '+14155550111', '+14155550777'));
  assert.deepEqual(verbs(r.xml), ['Say', 'Connect']);
  assert.equal(r.xml.children[0].text, 'Welcome to Acme.');
  assert.equal(find(r.xml, 'Stream').children[1].attrs.value, '7');
  const session = sessionOf(r.xml);
  const t = await webhook(srv, `/twilio/connect_action?session=${session}`, { CallSid: 'x' });
  assert.equal(find(t.xml, 'Sip').text, 'sip:sales@acme.example.com');
});

test('inbound without AI: transfer TwiML at once, SIP with credentials and ;transport=tcp', async () => {
  const srv = await server({
    AI_PROVIDER: 'none', PRIMARY_TRANSFER_TARGET: PBX, FREEPBX_SIP_USERNAME: 'switchboard', FREEPBX_SIP_PASSWORD: 's3cret&<"',
  });
  const sid = callSid();
  const r = await webhook(srv, '/twilio/voice', voiceParams(sid));
  assert.equal(r.status, 200);
  assert.deepEqual(verbs(r.xml), ['Say', 'Dial', 'Say', 'Hangup']);
  const dial = find(r.xml, 'Dial');
  const session = sessionOf(r.xml);
  assert.equal(dial.attrs.answerOnBridge, 'true');
  assert.equal(dial.attrs.timeout, '30');
  assert.equal(dial.attrs.callerId, '+14155550111'); // CALLER_ID_POLICY=original by default
  assert.equal(dial.attrs.action, `${PUBLIC_BASE_URL}/twilio/transfer_callback?session=${session}&attempt=0`);
  const sip = find(dial, 'Sip');
  assert.equal(sip.text, PBX);
  assert.equal(sip.attrs.username, 'switchboard');
  assert.equal(sip.attrs.password, 's3cret&<"'); // escaped by the writer, intact after parsing
  assert.match(r.text, /password="s3cret&amp;&lt;&quot;"/);
  assert.equal(sqlite(db(srv), `SELECT transfer_attempt||','||transfer_target FROM calls WHERE call_sid='${sid}'`), `0,${PBX}`);
});

test('caller ID policies: original keeps the caller, business shows our number', async () => {
  const orig = await server({ AI_PROVIDER: 'none', PRIMARY_TRANSFER_TARGET: 'sip:oncall@aircall-production.sip.twilio.com' });
  let r = await webhook(orig, '/twilio/voice', voiceParams(callSid(), '+442071838750'));
  assert.equal(find(r.xml, 'Dial').attrs.callerId, '+442071838750');
  assert.equal(find(r.xml, 'Sip').attrs.username, undefined);
  // a withheld caller cannot be presented: the business number stands in
  r = await webhook(orig, '/twilio/voice', voiceParams(callSid(), 'anonymous'));
  assert.equal(find(r.xml, 'Dial').attrs.callerId, '+14155550100');

  const biz = await server({ AI_PROVIDER: 'none', PRIMARY_TRANSFER_TARGET: SECOND, CALLER_ID_POLICY: 'business' });
  r = await webhook(biz, '/twilio/voice', voiceParams(callSid(), '+442071838750'));
  assert.equal(find(r.xml, 'Dial').attrs.callerId, '+14155550100');
  assert.equal(find(r.xml, 'Number').text, SECOND);
});

test('over the concurrent-call limit: an apology and <Reject reason="busy"/>; a finished call frees a line', async () => {
  const srv = await server({ AI_PROVIDER: 'echo', MAX_CONCURRENT_CALLS: '2' });
  const sids = [callSid(), callSid(), callSid()];
  for (const sid of sids.slice(0, 2)) assert.equal(find((await webhook(srv, '/twilio/voice', voiceParams(sid))).xml, 'Connect').name, 'Connect');
  const r = await webhook(srv, '/twilio/voice', voiceParams(sids[2]));
  assert.equal(r.status, 200);
  assert.deepEqual(verbs(r.xml), ['Say', 'Reject']);
  assert.equal(find(r.xml, 'Reject').attrs.reason, 'busy');
  assert.equal(sqlite(db(srv), `SELECT status||','||(CASE WHEN ended_at IS NOT NULL THEN 1 ELSE 0 END) FROM calls WHERE call_sid='${sids[2]}'`), 'busy,1');
  assert.match(sqlite(db(srv), `SELECT group_concat(type) FROM call_events JOIN calls ON calls.id = call_id WHERE call_sid='${sids[2]}'`), /call.rejected/);

  await webhook(srv, '/twilio/status', { CallSid: sids[0], CallStatus: 'completed', SequenceNumber: '2', CallDuration: '12' });
  const ok = await webhook(srv, '/twilio/voice', voiceParams(callSid()));
  assert.ok(find(ok.xml, 'Connect'));
});

async function chain(srv, sid) {
  const r = await webhook(srv, '/twilio/voice', voiceParams(sid));
  return { first: r, session: sessionOf(r.xml) };
}
const dialResult = (sid, status, extra = {}) => ({ CallSid: sid, DialCallStatus: status, DialCallSid: 'CA' + 'f'.repeat(32), ...extra });

test('the full fallback chain: primary busy, secondary no answer, voicemail recorded', async () => {
  const srv = await server({ AI_PROVIDER: 'none', PRIMARY_TRANSFER_TARGET: PBX, SECONDARY_TRANSFER_TARGET: SECOND });
  const sid = callSid();
  const { first, session } = await chain(srv, sid);
  assert.equal(find(first.xml, 'Sip').text, PBX);

  let r = await webhook(srv, `/twilio/transfer_callback?session=${session}&attempt=0`, dialResult(sid, 'busy', { DialSipResponseCode: '486' }));
  assert.deepEqual(verbs(r.xml), ['Say', 'Dial', 'Say', 'Hangup']);
  assert.equal(find(r.xml, 'Number').text, SECOND);
  assert.match(find(r.xml, 'Dial').attrs.action, /attempt=1$/);

  r = await webhook(srv, `/twilio/transfer_callback?session=${session}&attempt=1`, dialResult(sid, 'no-answer'));
  const rec = find(r.xml, 'Record');
  assert.ok(rec, r.text);
  assert.equal(rec.attrs.playBeep, 'true');
  assert.equal(rec.attrs.recordingStatusCallback, `${PUBLIC_BASE_URL}/twilio/recording?session=${session}`);

  r = await webhook(srv, `/twilio/recording?session=${session}`, {
    CallSid: sid, RecordingSid: 'RE' + 'a'.repeat(32), RecordingUrl: 'https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1',
    RecordingStatus: 'completed', RecordingDuration: '7',
  });
  assert.equal(r.text, '<?xml version="1.0" encoding="UTF-8"?><Response/>');
  r = await webhook(srv, `/twilio/transfer_callback?session=${session}&attempt=2&voicemail=1`, { CallSid: sid, RecordingUrl: 'https://api.twilio.com/x' });
  assert.deepEqual(verbs(r.xml), ['Say', 'Hangup']);

  const events = sqlite(db(srv), `SELECT group_concat(type || ':' || COALESCE(detail,''), '\n') FROM call_events JOIN calls ON calls.id = call_id WHERE call_sid='${sid}'`);
  assert.match(events, /transfer.outcome:\{"attempt":0,"status":"busy","sip_response_code":486/);
  assert.match(events, /transfer.outcome:\{"attempt":1,"status":"no-answer"/);
  assert.match(events, /transfer.attempt:\{"attempt":2,"stage":"voicemail_record"/);
  assert.equal(sqlite(db(srv), `SELECT recording_sid||','||recording_duration_s FROM calls WHERE call_sid='${sid}'`), 'RE' + 'a'.repeat(32) + ',7');
});

test('with a voicemail number: it is dialed, and after it the apology', async () => {
  const srv = await server({ AI_PROVIDER: 'none', PRIMARY_TRANSFER_TARGET: PBX, SECONDARY_TRANSFER_TARGET: SECOND, VOICEMAIL_TARGET: 'sip:voicemail@pbx.example.com' });
  const sid = callSid();
  const { session } = await chain(srv, sid);
  await webhook(srv, `/twilio/transfer_callback?session=${session}&attempt=0`, dialResult(sid, 'failed', { DialSipResponseCode: '503' }));
  let r = await webhook(srv, `/twilio/transfer_callback?session=${session}&attempt=1`, dialResult(sid, 'canceled'));
  assert.equal(find(r.xml, 'Sip').text, 'sip:voicemail@pbx.example.com');
  r = await webhook(srv, `/twilio/transfer_callback?session=${session}&attempt=2`, dialResult(sid, 'no-answer'));
  assert.deepEqual(verbs(r.xml), ['Say', 'Hangup']);
  assert.match(r.xml.children[0].text, /sorry/i);
});

test('an Asterisk dial string in the chain: Twilio skips that stage (logged) and dials the next', async () => {
  const srv = await server({ AI_PROVIDER: 'none', PRIMARY_TRANSFER_TARGET: 'PJSIP/2000', SECONDARY_TRANSFER_TARGET: SECOND });
  const sid = callSid();
  const { first, session } = await chain(srv, sid);
  assert.deepEqual(verbs(first.xml), ['Say', 'Dial', 'Say', 'Hangup']);
  assert.equal(first.xml.children[0].text, 'Please hold while I connect you.'); // nothing was dialed before
  const dial = find(first.xml, 'Dial');
  assert.equal(find(dial, 'Number').text, SECOND);
  assert.equal(find(dial, 'Sip'), null);
  assert.doesNotMatch(first.text, /PJSIP/);
  assert.equal(dial.attrs.action, `${PUBLIC_BASE_URL}/twilio/transfer_callback?session=${session}&attempt=1`);
  assert.equal(sqlite(db(srv), `SELECT platform||','||transfer_attempt||','||transfer_target FROM calls WHERE call_sid='${sid}'`),
    `twilio,1,${SECOND}`);
  let skipped = [];
  for (let i = 0; i < 50 && skipped.length === 0; i++, await new Promise((res) => setTimeout(res, 20)))
    skipped = srv.logLines('transfer.skipped');
  assert.equal(skipped.length, 1, srv.stderr);
  assert.match(skipped[0], new RegExp(`session=${session} attempt=0 why="this platform cannot dial the target"`));

  // the secondary does not answer: on to voicemail, as in any chain
  const r = await webhook(srv, `/twilio/transfer_callback?session=${session}&attempt=1`, dialResult(sid, 'no-answer'));
  assert.ok(find(r.xml, 'Record'), r.text);

  // a dial string as the secondary: the primary busy goes straight to voicemail
  const srv2 = await server({ AI_PROVIDER: 'none', PRIMARY_TRANSFER_TARGET: SECOND, SECONDARY_TRANSFER_TARGET: 'Local/100@from-internal' });
  const sid2 = callSid();
  const c2 = await chain(srv2, sid2);
  assert.equal(find(c2.first.xml, 'Number').text, SECOND);
  const r2 = await webhook(srv2, `/twilio/transfer_callback?session=${c2.session}&attempt=0`, dialResult(sid2, 'busy'));
  assert.ok(find(r2.xml, 'Record'), r2.text);
  assert.match(find(r2.xml, 'Record').attrs.action, /attempt=2&voicemail=1$/);
});

test('an answered transfer ends the call', async () => {
  const srv = await server({ AI_PROVIDER: 'none', PRIMARY_TRANSFER_TARGET: PBX });
  const sid = callSid();
  const { session } = await chain(srv, sid);
  const r = await webhook(srv, `/twilio/transfer_callback?session=${session}&attempt=0`, dialResult(sid, 'completed', { DialCallDuration: '95' }));
  assert.deepEqual(verbs(r.xml), ['Hangup']);
  assert.equal(sqlite(db(srv), `SELECT transfer_result FROM calls WHERE call_sid='${sid}'`), 'completed');
});

test('status callbacks out of order and duplicated never move a call backwards', async () => {
  const srv = await server({ AI_PROVIDER: 'echo' });
  const sid = callSid();
  await webhook(srv, '/twilio/voice', voiceParams(sid));
  const st = (status, seq, extra = {}) => webhook(srv, '/twilio/status', { CallSid: sid, CallStatus: status, SequenceNumber: String(seq), Timestamp: 'Sun, 22 Nov 2026 10:00:0' + seq + ' +0000', ...extra });
  let r = await st('in-progress', 1);
  assert.equal(r.text, '<?xml version="1.0" encoding="UTF-8"?><Response/>');
  await st('completed', 3, { CallDuration: '42', SipResponseCode: '200' });
  await st('ringing', 0);
  await st('in-progress', 2);
  await st('completed', 3, { CallDuration: '42' });
  await st('busy', 4); // nothing after a terminal state
  assert.equal(sqlite(db(srv), `SELECT status||','||status_seq||','||duration_s||','||sip_response_code||','||(CASE WHEN answered_at IS NOT NULL THEN 1 ELSE 0 END)||','||(CASE WHEN ended_at IS NOT NULL THEN 1 ELSE 0 END) FROM calls WHERE call_sid='${sid}'`),
    'completed,3,42,200,1,1');
  assert.equal(sqlite(db(srv), `SELECT COUNT(*) FROM call_events JOIN calls ON calls.id = call_id WHERE call_sid='${sid}' AND type='call.status_ignored'`), '4');
  // a call we never saw (a child leg) is fine too
  r = await webhook(srv, '/twilio/status', { CallSid: callSid(), CallStatus: 'completed' });
  assert.equal(r.status, 200);
});

test('bad signatures are refused with 403 and logged', async () => {
  const srv = await server({ AI_PROVIDER: 'echo' });
  const params = voiceParams(callSid());
  const before = sqlite(db(srv), 'SELECT COUNT(*) FROM calls');
  const cases = [
    { signature: null },
    { token: 'not-the-token' },
    { signUrl: PUBLIC_BASE_URL + '/twilio/status' },
    { signUrl: 'https://evil.example.com/twilio/voice' },
    { signature: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' },
  ];
  for (const c of cases) {
    const r = await webhook(srv, '/twilio/voice', params, c);
    assert.equal(r.status, 403, JSON.stringify(c));
  }
  // a tampered body: signed for one caller, sent with another
  const good = (await import('twilio')).default.getExpectedTwilioSignature(AUTH_TOKEN, PUBLIC_BASE_URL + '/twilio/voice', params);
  const r = await webhook(srv, '/twilio/voice', { ...params, From: '+19005550000' }, { signature: good });
  assert.equal(r.status, 403);
  for (const path of ['/twilio/status', '/twilio/connect_action?session=x', '/twilio/transfer_callback?session=x&attempt=0', '/twilio/recording']) {
    assert.equal((await webhook(srv, path, { CallSid: 'x' }, { signature: 'bogus' })).status, 403, path);
  }
  assert.equal(sqlite(db(srv), 'SELECT COUNT(*) FROM calls'), before);
  assert.ok(srv.logLines('twilio.bad_signature').length >= 10);
  // Twilio may sign with the default port spelled out
  const withPort = await webhook(srv, '/twilio/voice', voiceParams(callSid()), { signUrl: 'https://voice.example.com:443/twilio/voice' });
  assert.equal(withPort.status, 200);
});

test('malformed input: a clear 4xx with valid TwiML, nothing written', async () => {
  const srv = await server({ AI_PROVIDER: 'echo' });
  const before = sqlite(db(srv), 'SELECT COUNT(*) FROM calls');
  let r = await webhook(srv, '/twilio/voice', { From: '+14155550111', To: '+14155550100' }); // no CallSid
  assert.equal(r.status, 400);
  assert.deepEqual(verbs(r.xml), ['Say', 'Hangup']);
  r = await webhook(srv, '/twilio/voice', { CallSid: 'CA123', From: '+1' });
  assert.equal(r.status, 400);
  // broken percent-encoding; the signature is over what the parser would see, so send unsigned-valid garbage
  r = await webhook(srv, '/twilio/voice', {}, { rawBody: 'CallSid=%ZZ&From=1', signature: 'x' });
  assert.equal(r.status, 400);
  assert.ok(r.xml);
  const huge = { ...voiceParams(callSid()), CallerName: 'x'.repeat(9000) };
  r = await webhook(srv, '/twilio/voice', huge);
  assert.equal(r.status, 400);
  assert.ok(r.xml);
  r = await webhook(srv, '/twilio/connect_action?session=ffffffffffffffffffffffffffffffff', { CallSid: callSid() });
  assert.equal(r.status, 200);
  assert.deepEqual(verbs(r.xml), ['Say', 'Hangup']);
  r = await webhook(srv, '/twilio/transfer_callback?session=abc&attempt=99', { CallSid: callSid(), DialCallStatus: 'busy' });
  assert.equal(r.status, 400);
  r = await webhook(srv, '/twilio/status', { CallSid: callSid() }); // no CallStatus
  assert.equal(r.status, 400);
  assert.equal(r.text, '<?xml version="1.0" encoding="UTF-8"?><Response/>');
  r = await webhook(srv, '/twilio/status', { CallSid: callSid(), CallStatus: 'completed', SequenceNumber: 'seven' });
  assert.equal(r.status, 400);
  assert.equal(sqlite(db(srv), 'SELECT COUNT(*) FROM calls'), before);
});

test('a database failure still answers Twilio with valid TwiML: a transfer to the primary', async () => {
  const srv = await server({ AI_PROVIDER: 'echo', PRIMARY_TRANSFER_TARGET: PBX });
  sqlite(db(srv), 'ALTER TABLE calls RENAME TO calls_gone');
  try {
    const r = await webhook(srv, '/twilio/voice', voiceParams(callSid()));
    assert.equal(r.status, 200);
    assert.equal(find(r.xml, 'Sip').text, PBX);
    await new Promise((res) => setTimeout(res, 100)); // let the log line arrive
    assert.ok(srv.logLines('db.error').length >= 1, srv.stderr);
  } finally {
    sqlite(db(srv), 'ALTER TABLE calls_gone RENAME TO calls');
  }
});

test('POST /api/twilio/test renders a scenario, and names the field it cannot use', async () => {
  const srv = await server({ AI_PROVIDER: 'echo', PRIMARY_TRANSFER_TARGET: PBX });
  const post = async (body) => {
    const res = await fetch(srv.url + '/api/twilio/test', { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  };
  let r = await post({ kind: 'transfer', target: 'sip:2000@pbx.example.com', caller: '+14155550100' });
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/xml/);
  assert.match(r.text, /<Sip>sip:2000@pbx.example.com<\/Sip>/);
  r = await post({ kind: 'inbound', to: '+14155550100' });
  assert.match(r.text, /<Connect action=/);
  r = await post({ kind: 'fallback', attempt: 1 });
  assert.match(r.text, /<Record /);
  const bad = [
    [{ target: 'sip:x@y' }, 'kind'],
    [{ kind: 'teleport' }, 'kind'],
    [{ kind: 'transfer', target: 'sip:2000@' }, 'target'],
    [{ kind: 'transfer', target: 'sip:a@b.c\r\nX: y' }, 'target'],
    [{ kind: 'transfer' }, 'target'],
    [{ kind: 'transfer', target: 'PJSIP/2000' }, 'target'], // Twilio cannot dial it
    [{ kind: 'transfer', target: PBX, caller: 'call me' }, 'caller'],
    [{ kind: 'fallback', attempt: 99 }, 'attempt'],
    [{ kind: 'reject', colour: 'blue' }, 'colour'],
  ];
  for (const [body, field] of bad) {
    r = await post(body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(JSON.parse(r.text).error.field, field, JSON.stringify(body));
  }
  r = await post('{not json');
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.text).error.code, 'invalid_json');
});

test('a tenant in elevenlabs_forward mode: the caller is dialed through to the ElevenLabs agent', async () => {
  const srv = await server({ AI_PROVIDER: 'echo', ELEVENLABS_PHONE_NUMBER: '+14155550999', PRIMARY_TRANSFER_TARGET: PBX });
  sqlite(db(srv), "INSERT INTO tenants (id, name, inbound_mode, caller_id_policy) VALUES (9, 'el', 'elevenlabs_forward', 'original'); INSERT INTO tenant_numbers VALUES ('+14155550901', 9);");
  const sid = callSid();
  const r = await webhook(srv, '/twilio/voice', voiceParams(sid, '+14155550111', '+14155550901'));
  assert.deepEqual(verbs(r.xml), ['Dial']);
  const dial = find(r.xml, 'Dial');
  assert.equal(find(dial, 'Number').text, '+14155550999');
  assert.equal(dial.attrs.callerId, '+14155550111');
  const session = /dial_status\/([0-9a-f]{32})/.exec(dial.attrs.action)[1];
  assert.equal(sqlite(db(srv), `SELECT tenant_id FROM calls WHERE session_id='${session}'`), '9');
  const done = await webhook(srv, `/twilio/dial_status/${session}`, { CallSid: sid, DialCallStatus: 'completed', DialCallDuration: '42' });
  assert.deepEqual(verbs(done.xml), ['Hangup']);
  assert.match(sqlite(db(srv), `SELECT group_concat(type) FROM call_events JOIN calls ON calls.id = call_id WHERE session_id='${session}'`), /forward.elevenlabs,forward.outcome/);
});
