// ElevenLabs' post-call webhook over real HTTP: the ElevenLabs-Signature check, session
// matching (call SID, conversation id, phone and time), intents, idempotency and orphans.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startServer, sqlite, cleanup } from './lib/harness.mjs';
import { JWT_SECRET } from './lib/jwt.mjs';
import { AUTH_TOKEN, PUBLIC_BASE_URL, callSid, webhook, voiceParams } from './lib/twilio.mjs';

const SECRET = 'wsec_integration_0123456789abcdef';
let srv;
const db = () => srv.dir + '/data/switchboard.db';
const q = (sql) => sqlite(db(), sql);
const now = () => Math.floor(Date.now() / 1000);

before(async () => {
  srv = await startServer({
    env: { JWT_SECRET, ELEVENLABS_WEBHOOK_SECRET: SECRET, TWILIO_AUTH_TOKEN: AUTH_TOKEN, PUBLIC_BASE_URL, TLS_PORT: 'off', AI_PROVIDER: 'echo' },
  });
});
after(async () => {
  const r = await srv.stop();
  assert.equal(r.code, 0, srv.stderr);
  cleanup(srv.dir);
});

function sign(body, { t = now(), secret = SECRET } = {}) {
  return `t=${t},v0=` + createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
}

async function post(payload, { sig, raw } = {}) {
  const body = raw ?? JSON.stringify(payload);
  const headers = { 'Content-Type': 'application/json' };
  const s = sig === undefined ? sign(body) : sig;
  if (s !== null) headers['ElevenLabs-Signature'] = s;
  const res = await fetch(srv.url + '/api/voice/post_call', { method: 'POST', headers, body });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

let seq = 0;
async function newCall(from) {
  const sid = callSid();
  const r = await webhook(srv, '/twilio/voice', voiceParams(sid, from));
  assert.equal(r.status, 200, r.text);
  return sid;
}

function payload({ conv, sid, ext = '+14155550111', transcript, dcr, summary = 'The caller called.', extra = {} }) {
  return {
    type: 'post_call_transcription',
    event_timestamp: now(),
    data: {
      agent_id: 'agent_test',
      conversation_id: conv ?? `conv_${Date.now()}_${++seq}`,
      status: 'done',
      transcript: transcript ?? [
        { role: 'agent', message: 'Hello, how can I help?', time_in_call_secs: 0 },
        { role: 'user', message: 'Hi there.', time_in_call_secs: 2 },
      ],
      metadata: {
        start_time_unix_secs: now() - 60,
        call_duration_secs: 42,
        phone_call: { direction: 'inbound', agent_number: '+14155550100', external_number: ext, type: 'twilio', call_sid: sid },
      },
      analysis: { call_successful: 'success', transcript_summary: summary, evaluation_criteria_results: {}, data_collection_results: dcr ?? {} },
      conversation_initiation_client_data: { dynamic_variables: {} },
      ...extra,
    },
  };
}

const v = (value) => ({ value, rationale: 'collected' });
const callId = (sid) => q(`SELECT id FROM calls WHERE call_sid='${sid}'`);

test('signature: missing, wrong, stale, future and malformed are 401; valid is 200', async () => {
  const sid = await newCall('+14155550120');
  const p = payload({ sid, ext: '+14155550120' });
  const body = JSON.stringify(p);
  for (const sig of [null, sign(body, { secret: 'other-secret' }), sign(body, { t: now() - 31 * 60 }), sign(body, { t: now() + 3600 }),
    't=abc,v0=00', 'v0=' + 'a'.repeat(64), sign(body + ' ')]) {
    const r = await post(null, { raw: body, sig });
    assert.equal(r.status, 401, `${sig}: ${r.text}`);
    assert.equal(r.json.error.code, 'unauthorized');
  }
  assert.equal(q(`SELECT count(*) FROM post_call_conversations`), '0');
  const ok = await post(null, { raw: body, sig: sign(body, { t: now() - 25 * 60 }) }); // within 30 minutes
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.status, 'processed');
  assert.equal(ok.json.matched_by, 'call_sid');
});

test('booking from data_collection_results: transcript, summary, customer, booking, event; replay changes nothing', async () => {
  const sid = await newCall('+14155550121');
  const p = payload({
    sid, ext: '(415) 555-0121', summary: 'Caller booked a haircut.',
    dcr: { intent: v('book_appointment'), name: v('Ada Lovelace'), date: v('2026-12-01'), time: v('14:30'), notes: v('haircut') },
    transcript: [
      { role: 'agent', message: 'Hello!', time_in_call_secs: 0 },
      { role: 'user', message: 'I would like to book a haircut.', time_in_call_secs: 3 },
      { role: 'agent', message: null, tool_calls: [{}], time_in_call_secs: 5 },
    ],
  });
  const r = await post(p);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.intent, 'book_appointment');
  const id = callId(sid);
  assert.equal(q(`SELECT role || ':' || text FROM transcripts WHERE call_id=${id} ORDER BY id`), 'agent:Hello!\ncaller:I would like to book a haircut.');
  assert.equal(q(`SELECT summary || '|' || conversation_id FROM calls WHERE id=${id}`), `Caller booked a haircut.|${p.data.conversation_id}`);
  assert.equal(q(`SELECT name || '|' || date || '|' || time || '|' || notes FROM bookings WHERE call_id=${id}`), 'Ada Lovelace|2026-12-01|14:30|haircut');
  assert.equal(q(`SELECT count(*) FROM customers WHERE tenant_id=1 AND phone='+14155550121'`), '1');
  assert.equal(q(`SELECT customer_id = (SELECT id FROM customers WHERE phone='+14155550121') FROM bookings WHERE call_id=${id}`), '1');
  const ev = JSON.parse(q(`SELECT detail FROM call_events WHERE call_id=${id} AND type='post_call.received'`));
  assert.equal(ev.intent, 'book_appointment');
  assert.equal(ev.intent_source, 'data_collection');

  const count = () => q(`SELECT (SELECT count(*) FROM transcripts) || ',' || (SELECT count(*) FROM bookings) || ',' || (SELECT count(*) FROM tickets) || ',' || (SELECT count(*) FROM customers) || ',' || (SELECT count(*) FROM call_events) || ',' || (SELECT count(*) FROM post_call_conversations)`);
  const before = count();
  const again = await post(p); // same payload, fresh signature
  assert.equal(again.status, 200);
  assert.equal(again.json.status, 'duplicate');
  assert.equal(count(), before);
});

test('ticket from data_collection_results, customer reused by phone', async () => {
  const sid = await newCall('+14155550121');
  const r = await post(payload({ sid, ext: '+14155550121', dcr: { intent: v('raise_ticket'), summary: v('Router broken'), priority: v('HIGH') } }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.intent, 'raise_ticket');
  assert.equal(q(`SELECT summary || '|' || priority FROM tickets WHERE call_id=${callId(sid)}`), 'Router broken|high');
  assert.equal(q(`SELECT count(*) FROM customers WHERE phone='+14155550121'`), '1');
});

test('intent from the transcript when there are no data collection results', async () => {
  const cases = [
    ['Can I schedule an appointment for tomorrow?', 'book_appointment'],
    ['My heating is broken, I have a problem.', 'raise_ticket'],
    ['What are your opening hours?', 'other'],
  ];
  for (const [said, want] of cases) {
    const sid = await newCall('+14155550130');
    const r = await post(payload({ sid, ext: '+14155550130', summary: null, transcript: [{ role: 'user', message: said, time_in_call_secs: 1 }] }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.intent, want, said);
    const id = callId(sid);
    const ev = JSON.parse(q(`SELECT detail FROM call_events WHERE call_id=${id} AND type='post_call.received'`));
    assert.equal(ev.intent_source, 'transcript');
    if (want === 'book_appointment') {
      assert.equal(q(`SELECT count(*) FROM bookings WHERE call_id=${id}`), '0');
      assert.equal(ev.booking_skipped, 'no date collected');
    }
    if (want === 'raise_ticket') assert.equal(q(`SELECT summary FROM tickets WHERE call_id=${id}`), said);
    if (want === 'other') assert.equal(q(`SELECT (SELECT count(*) FROM bookings WHERE call_id=${id}) + (SELECT count(*) FROM tickets WHERE call_id=${id})`), '0');
  }
});

test('invalid booking date is skipped and recorded', async () => {
  const sid = await newCall('+14155550131');
  const r = await post(payload({ sid, ext: '+14155550131', dcr: { intent: v('book_appointment'), date: v('next tuesday'), time: v('10:00') } }));
  assert.equal(r.status, 200, r.text);
  assert.equal(q(`SELECT count(*) FROM bookings WHERE call_id=${callId(sid)}`), '0');
  assert.match(q(`SELECT detail FROM call_events WHERE call_id=${callId(sid)} AND type='post_call.received'`), /date is not YYYY-MM-DD/);
});

test('session found by conversation id, then by phone and time', async () => {
  const sid1 = await newCall('+14155550140');
  q(`UPDATE calls SET conversation_id='conv_known_1' WHERE call_sid='${sid1}'`);
  let r = await post(payload({ conv: 'conv_known_1', sid: undefined, ext: undefined }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.matched_by, 'conversation_id');

  const sid2 = await newCall('+14155550141');
  r = await post(payload({ sid: undefined, ext: '415-555-0141' }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.matched_by, 'phone');
  assert.equal(r.json.session_id, q(`SELECT session_id FROM calls WHERE call_sid='${sid2}'`));
});

test('unknown session: 200 and an orphan row; its replay is a duplicate', async () => {
  const p = payload({ sid: 'CA' + 'f'.repeat(32), ext: '+14155550199' });
  const r = await post(p);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'orphan');
  assert.equal(q(`SELECT outcome || '|' || call_sid || '|' || external_number FROM post_call_conversations WHERE conversation_id='${p.data.conversation_id}'`), `orphan|${'CA' + 'f'.repeat(32)}|+14155550199`);
  assert.equal(JSON.parse(q(`SELECT payload FROM post_call_conversations WHERE conversation_id='${p.data.conversation_id}'`)).data.conversation_id, p.data.conversation_id);
  assert.equal((await post(p)).json.status, 'duplicate');
  assert.ok(srv.logLines('post_call.orphan').length >= 1);
});

test('malformed payloads: 400 naming the field', async () => {
  const good = () => payload({ sid: undefined, ext: undefined });
  const cases = [
    [null, 'body', '{not json'],
    [[1, 2], 'body'],
    [(() => { const p = good(); delete p.type; return p; })(), 'type'],
    [(() => { const p = good(); delete p.data; return p; })(), 'data'],
    [(() => { const p = good(); delete p.data.conversation_id; return p; })(), 'data.conversation_id'],
    [(() => { const p = good(); p.data.conversation_id = 7; return p; })(), 'data.conversation_id'],
    [(() => { const p = good(); delete p.data.transcript; return p; })(), 'data.transcript'],
    [(() => { const p = good(); p.data.transcript = [{ role: 'user', message: 'x' }, 'oops']; return p; })(), 'data.transcript[1]'],
    [(() => { const p = good(); p.data.transcript = [{ message: 'x' }]; return p; })(), 'data.transcript[0].role'],
    [(() => { const p = good(); p.data.metadata = 'x'; return p; })(), 'data.metadata'],
    [(() => { const p = good(); p.data.analysis.data_collection_results = []; return p; })(), 'data.analysis.data_collection_results'],
    [(() => { const p = good(); p.event_timestamp = 'soon'; return p; })(), 'event_timestamp'],
  ];
  for (const [p, field, raw] of cases) {
    const r = await post(p, { raw: raw ?? JSON.stringify(p) });
    assert.equal(r.status, 400, `${field}: ${r.text}`);
    assert.equal(r.json.error.field, field);
  }
});

test('post_call_audio is acknowledged and ignored; no secret is 503', async () => {
  const body = JSON.stringify({ type: 'post_call_audio', event_timestamp: now(), data: { agent_id: 'a', conversation_id: 'conv_audio', full_audio: 'AAAA' } });
  const r = await post(null, { raw: body });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 'ignored');
  const other = await startServer({ env: { TLS_PORT: 'off', AI_PROVIDER: 'echo' } });
  try {
    const res = await fetch(other.url + '/api/voice/post_call', { method: 'POST', headers: { 'ElevenLabs-Signature': sign(body) }, body });
    assert.equal(res.status, 503);
    assert.equal((await res.json()).error.code, 'not_configured');
  } finally {
    await other.stop();
    cleanup(other.dir);
  }
});
