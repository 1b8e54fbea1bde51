// Garbage WebSocket frames after a valid signed upgrade of /twilio/media and /jambonz/listen, and
// refused upgrades (forged signatures, wrong credentials, not a handshake): a close code or the
// garbage ignored, nothing written, the server alive. (HTTP: adversarial_http.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import twilio from 'twilio';
import { sleep, SANITIZED } from './lib/harness.mjs';
import { AUTH_TOKEN } from './lib/twilio.mjs';
import { bytes, rawUpgrade, until, frame } from './lib/rawhttp.mjs';
import { SLOW, UNKNOWN, snapshot, batch, healthy, mapLimit, RID, describe, listenAuth, randomBytes, u8, startServers, stopServers } from './lib/adversarial.mjs';

let A;
before(async () => ({ A } = await startServers()));
after(stopServers);

// ---- WebSockets -----------------------------------------------------------------------------

const text = (s) => frame(1, Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8'));
const closeCode = (f) => (f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005);

const twilioStart = (extra = {}) => JSON.stringify({ event: 'start', sequenceNumber: '1', streamSid: 'MZ' + 'a'.repeat(32),
  start: { accountSid: 'AC' + '0'.repeat(32), streamSid: 'MZ' + 'a'.repeat(32), callSid: 'CA' + 'd'.repeat(32), tracks: ['inbound'],
    customParameters: { session_id: UNKNOWN, tenant_id: '1' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 }, ...extra } });
const metadata = (extra = {}) => JSON.stringify({ sampleRate: 8000, mixType: 'mono', callSid: 'abc', session_id: UNKNOWN, tenant_id: '1', ...extra });
const ANY = [1000, 1002, 1003, 1007, 1008, 1009];

// What is sent after the upgrade, and what the server must do: close with one of the codes, or
// ('open') carry on and still answer a ping, or ('idle') wait for the rest of a frame the
// garbage began.
const COMMON_WS = [
  ['random bytes', randomBytes(512), [...ANY, 'idle']],
  ['random masked text', text(randomBytes(200)), [1007, 1002]],
  ['text that is not JSON', text('hello, is anyone there?'), [1007]],
  ['JSON array', text('[1,2,3]'), [1007, 1008]],
  ['JSON string', text('"start"'), [1007]],
  ['JSON null', text('null'), [1007]],
  ['truncated JSON', text('{"event":"sta'), [1007]],
  ['invalid UTF-8 text', text(u8('{"event":"', [0xff, 0xfe], '"}')), [1007]],
  ['NUL in JSON', text('{"event":"st\\u0000art"}'), [1007, 'open']],
  ['nesting 5000 deep', text('['.repeat(5000) + ']'.repeat(5000)), [1007]],
  ['unmasked frame', frame(1, '{"event":"connected"}', { mask: false }), [1002]],
  ['reserved opcode 3', frame(3, 'x'), [1002]],
  ['reserved opcode 11', frame(11, 'x'), [1002]],
  ['RSV1 set', frame(1, '{}', { rsv: 0x40 }), [1002]],
  ['ping of 126 bytes', frame(9, 'p'.repeat(126)), [1002]],
  ['fragmented ping', frame(9, 'p', { fin: false }), [1002]],
  ['continuation first', frame(0, 'x'), [1002]],
  ['a text inside a fragmented text', Buffer.concat([frame(1, '{"ev', { fin: false }), frame(1, 'x')]), [1002]],
  ['close of one byte', frame(8, 'x'), [1002]],
  ['close 1005', frame(8, Buffer.from([0x03, 0xed])), [1002]],
  ['close 999 with invalid UTF-8', frame(8, u8([0x03, 0xe7, 0xff, 0xfe])), [1002, 1007]],
  ['close 1004 (reserved)', frame(8, Buffer.from([0x03, 0xec])), [1002]],
  ['close 5000', frame(8, Buffer.from([0x13, 0x88])), [1002]],
  ['close 4000 (the application\'s own)', frame(8, Buffer.from([0x0f, 0xa0])), [4000]],
  ['close without a code', frame(8, Buffer.alloc(0)), [1000]],
  ['a header announcing 2^62 bytes', frame(1, Buffer.alloc(0), { len: 2 ** 62 }).subarray(0, 14), [1009]],
  ['a 70 KB message', text('{"event":"media","x":"' + 'x'.repeat(70000) + '"}'), [1009]],
  ['70 KB in fragments', Buffer.concat([frame(1, 'x'.repeat(40000), { fin: false }), frame(0, 'x'.repeat(40000))]), [1009]],
];
const TWILIO_WS = [
  ['binary frame', frame(2, randomBytes(160)), [1003]],
  ['no event', text('{"streamSid":"MZ1"}'), [1007]],
  ['event a number', text('{"event":42}'), [1007]],
  ['an event nobody knows', text('{"event":"explode","explode":{}}'), ['open']],
  ['a thousand unknown events', Buffer.concat(Array.from({ length: 1000 }, (_, i) => text(`{"event":"noise${i}"}`))), ['open']],
  ['connected twice', Buffer.concat([text('{"event":"connected"}'), text('{"event":"connected","protocol":5}')]), ['open']],
  ['media before start', text('{"event":"media","media":{"payload":"!!!notbase64"}}'), [...ANY, 'open']],
  ['media with base64 garbage', text('{"event":"media","streamSid":"x","media":{"payload":"' + '='.repeat(400) + '","timestamp":"-1"}}'), [...ANY, 'open']],
  ['mark before start', text('{"event":"mark","mark":{"name":"m99999999999999999999"}}'), [...ANY, 'open']],
  ['dtmf before start', text('{"event":"dtmf","dtmf":{"digit":"0"}}'), [...ANY, 'open']],
  ['stop before start', text('{"event":"stop"}'), [...ANY, 'open']],
  ['start without start', text('{"event":"start"}'), [1008, 1007]],
  ['start for an unknown session', text(twilioStart()), [1008]],
  ['start without a session', text(twilioStart({ customParameters: {} })), [1008]],
  ['start with another encoding', text(twilioStart({ mediaFormat: { encoding: 'audio/l16' } })), [1003]],
  ['start with a quote in streamSid', text(twilioStart({ streamSid: 'MZ"},"x":"' })), [1008]],
  ['start with wrong types', text('{"event":"start","start":{"customParameters":[],"callSid":5,"streamSid":{}}}'), [1008, 1007]],
];
const JAMBONZ_WS = [
  ['binary first', frame(2, Buffer.alloc(320)), [1002]],
  ['odd binary first', frame(2, Buffer.alloc(3)), [1002]],
  ['metadata without session_id', text('{"sampleRate":8000}'), [1008]],
  ['metadata with session_id a number', text(metadata({ session_id: 5 })), [1008]],
  ['metadata for another session', text(metadata({ session_id: 'e'.repeat(32) })), [1008]],
  ['metadata with a session too long', text(metadata({ session_id: 'f'.repeat(100) })), [1008]],
  ['metadata with 11025 Hz', text(metadata({ sampleRate: 11025 })), [1003]],
  ['metadata with sampleRate a string', text(metadata({ sampleRate: '8000' })), [1003]],
  ['metadata with stereo', text(metadata({ mixType: 'stereo' })), [1003]],
  ['metadata for an unknown session', text(metadata()), [1008]],
  ['voicemail for an unknown session', text(metadata({ voicemail: true })), [1008]],
  ['metadata under metadata', text(JSON.stringify({ sampleRate: 8000, metadata: { session_id: UNKNOWN } })), [1008]],
  ['a mark before the metadata', text('{"type":"mark","data":{"name":"m1","event":"playout"}}'), [1008]],
];

// Returns the failures and what happened (a close code, open or idle).
async function wsCase(s, path, headers, name, data, expect) {
  const c = await rawUpgrade(s, path, headers);
  if (c.res?.status !== 101) return { errs: [`${name}: upgrade refused: ${describe(c.res ?? { status: 0 })}`], outcome: 'refused' };
  const errs = RID.test(c.res.headers['x-request-id'] ?? '') ? [] : [`${name}: the 101 has no X-Request-Id`];
  c.sock.write(data);
  const isClosed = () => c.ended || c.frames.some((f) => f.op === 8);
  // a case that must close waits for it; one that may be ignored waits a moment, then pings
  const mustClose = expect.every((x) => typeof x === 'number');
  await until(c, isClosed, mustClose ? 3000 * SLOW : 600 * (SANITIZED ? 2 : 1));
  let outcome = 'idle';
  if (!isClosed() && expect.includes('open')) {
    const pings = c.frames.filter((f) => f.op === 10).length;
    c.sock.write(frame(9, 'still there?'));
    const pong = await until(c, () => c.frames.filter((f) => f.op === 10).length > pings || isClosed(), 2000 * SLOW);
    if (!isClosed()) {
      outcome = 'open';
      if (!pong) errs.push(`${name}: no pong after the garbage was ignored`);
    }
  }
  if (isClosed()) {
    const cf = c.frames.find((f) => f.op === 8);
    const code = cf ? closeCode(cf) : 'no close frame';
    outcome = code;
    if (!expect.includes(code)) errs.push(`${name}: closed with ${code}, expected ${expect.join('/')}`);
    // the server lets go of the connection after its close (ours answers it)
    if (!c.ended) c.sock.write(frame(8, Buffer.from([0x03, 0xe8])));
    if (!(await until(c, () => c.ended, 3000 * SLOW))) errs.push(`${name}: connection not closed after the close frame`);
  } else if (outcome === 'idle' && !expect.includes('idle')) {
    errs.push(`${name}: still open, expected close ${expect.join('/')}`);
  }
  c.sock.destroy();
  return { errs, outcome };
}

test('garbage WebSocket frames after a valid signed upgrade: a close code or ignored, the server unhurt', async (t) => {
  const twilioHeaders = [['X-Twilio-Signature', twilio.getExpectedTwilioSignature(AUTH_TOKEN, `wss://voice.example.com/twilio/media`, {})]];
  const jambonzHeaders = [['Sec-WebSocket-Protocol', 'audio.jambonz.org'], ['Authorization', listenAuth(UNKNOWN)]];
  const cases = [
    ...[...COMMON_WS, ...TWILIO_WS].map(([name, data, expect]) => ['/twilio/media', twilioHeaders, `twilio: ${name}`, data, expect]),
    // jambonz: everything before the metadata is the metadata (a non-object is 1007)
    ...[...COMMON_WS, ...JAMBONZ_WS].map(([name, data, expect]) => ['/jambonz/listen', jambonzHeaders, `jambonz: ${name}`, data, expect]),
  ];
  const before = snapshot(A);
  const errorsBefore = A.logLines('db.error').length;
  const failures = [];
  const outcomes = {};
  await mapLimit(cases, 6, async ([path, headers, name, data, expect]) => {
    const { errs, outcome } = await wsCase(A, path, headers, name, data, expect);
    failures.push(...errs);
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  });
  assert.deepEqual(failures, []);
  t.diagnostic(`${cases.length} cases (twilio media ${cases.filter((c) => c[0] === '/twilio/media').length}, jambonz listen ${cases.filter((c) => c[0] === '/jambonz/listen').length}); ` +
    `outcomes: ${Object.entries(outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  // what a closing bridge queues is written after the close: give it a moment, then nothing written
  await sleep(300 * SLOW);
  assert.deepEqual(snapshot(A), before);
  await healthy(A, errorsBefore);
});

test('refused upgrades: forged signatures, wrong credentials, not a handshake', async (t) => {
  const good = twilio.getExpectedTwilioSignature(AUTH_TOKEN, 'wss://voice.example.com/twilio/media', {});
  const cases = [];
  const ws = (name, path, headers, status, extra = {}) => cases.push({ method: 'GET', path, group: 'ws', name, fresh: true, status, headers, ...extra });
  const up = [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13']];
  for (const [name, sig] of [['no signature', null], ['forged', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='], ['of another URL', twilio.getExpectedTwilioSignature(AUTH_TOKEN, 'wss://evil.example.com/twilio/media', {})],
    ['with a parameter', twilio.getExpectedTwilioSignature(AUTH_TOKEN, 'wss://voice.example.com/twilio/media', { a: '1' })], ['huge', 'x'.repeat(60000)]])
    ws(`media ${name}`, '/twilio/media', [...up, ...(sig ? [['X-Twilio-Signature', sig]] : [])], 403);
  for (const [name, hs, method] of [['plain GET', []], ['no key', up.filter(([k]) => k !== 'Sec-WebSocket-Key')], ['version 8', [...up.slice(0, 3), ['Sec-WebSocket-Version', '8']]],
    ['no version', up.slice(0, 3)], ['a key of 10 bytes', [...up.slice(0, 2), ['Sec-WebSocket-Key', 'c2hvcnQ='], up[3]]], ['POST', up, 'POST'],
    ['Upgrade h2c', [['Upgrade', 'h2c'], ['Connection', 'Upgrade']]]]) {
    const extra = method ? { method, body: '' } : {};
    ws(`media ${name}`, '/twilio/media', [...hs, ['X-Twilio-Signature', good]], method ? 405 : 400, extra);
    ws(`listen ${name}`, '/jambonz/listen', [...hs, ['Sec-WebSocket-Protocol', 'audio.jambonz.org'], ['Authorization', listenAuth(UNKNOWN)]], method ? 405 : 400, extra);
  }
  ws('listen without a subprotocol', '/jambonz/listen', [...up, ['Authorization', listenAuth(UNKNOWN)]], 400, { field: 'Sec-WebSocket-Protocol' });
  ws('listen with another subprotocol', '/jambonz/listen', [...up, ['Sec-WebSocket-Protocol', 'chat, superchat'], ['Authorization', listenAuth(UNKNOWN)]], 400);
  const b64 = (s) => 'Basic ' + Buffer.from(s).toString('base64');
  for (const [name, auth] of [['no credentials', null], ['Bearer', 'Bearer x'], ['Basic garbage', 'Basic !!!!'], ['no colon', b64(UNKNOWN)],
    ['empty user', b64(':' + '0'.repeat(32))], ['wrong password', b64(`${UNKNOWN}:${'0'.repeat(32)}`)], ['another secret', listenAuth(UNKNOWN, 'wrong')],
    ['password upper case', b64(Buffer.from(listenAuth(UNKNOWN).slice(6), 'base64').toString().replace(/:(.*)$/, (_, pw) => ':' + pw.toUpperCase()))],
    ['user of 300 bytes', b64('u'.repeat(300) + ':x')], ['NUL in the user', b64(`a\0b:${'0'.repeat(32)}`)], ['huge', 'Basic ' + 'A'.repeat(60000)]])
    ws(`listen ${name}`, '/jambonz/listen', [...up, ['Sec-WebSocket-Protocol', 'audio.jambonz.org'], ...(auth ? [['Authorization', auth]] : [])], 401);
  await batch(t, A, cases);
});

