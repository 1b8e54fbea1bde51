// The core of switchboard-sim (tools/sim/): audio conversion, Twilio signing, the Media
// Streams client and the call runner, each against small local servers written here (the
// real switchboard server is exercised by the other integration tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import twilio from 'twilio';
import { WebSocketServer } from 'ws';
import {
  MediaStream, simulateCall, computeSignature, wsSignature, inboundCallParams, statusCallbackParams, newSid,
  linearToMulaw, mulawToLinear, MULAW_DECODE, pcm16ToMulaw, mulawToPcm16, toMulaw8k, decodeWav, parseWav,
  encodeWavMulaw, encodeWavPcm16, writeWavFile, readWavFile, tone, silence, durationMs, UrlMap,
} from '../../tools/sim/index.mjs';

// Twilio's signature vectors (computed with its npm library) are test data kept in tests/.
const VECTORS = fileURLToPath(new URL('../vectors/twilio-signatures.json', import.meta.url));
const TOKEN = 'sim-core-auth-token-0123456789abcdef';
const PUBLIC = 'https://voice.example.com';

// ---------------------------------------------------------------------------------------
// WAV and G.711

test('mu-law tables follow G.711', () => {
  assert.equal(linearToMulaw(0), 0xff);
  assert.equal(mulawToLinear(0xff), 0);
  assert.equal(mulawToLinear(0x7f), 0); // "negative zero"
  assert.equal(mulawToLinear(0x00), -32124); // the extremes of the 14-bit range
  assert.equal(mulawToLinear(0x80), 32124);
  assert.equal(mulawToLinear(0xf0), 120); // segment 0, mantissa 15: (15 << 3) + 132 - 132
  assert.equal(mulawToLinear(0xef), 132); // segment 1, mantissa 0: (0 + 132) << 1 - 132
  // Every code decodes and re-encodes to itself (0x7f is -0 and becomes 0xff).
  for (let c = 0; c < 256; c++) if (c !== 0x7f) assert.equal(linearToMulaw(mulawToLinear(c)), c, `code ${c}`);
  // Decoding is monotonic within each sign: 0x80..0xff falls from +32124 to 0.
  for (let c = 0x81; c <= 0xff; c++) assert.ok(MULAW_DECODE[c] < MULAW_DECODE[c - 1]);
  // Quantisation error stays within half a step of the segment (step = 2^(exp+3)).
  for (let x = -32000; x <= 32000; x += 7) {
    const y = mulawToLinear(linearToMulaw(x));
    const exp = Math.max(0, Math.floor(Math.log2((Math.abs(x) + 132) >> 7)));
    assert.ok(Math.abs(y - x) <= 2 ** (exp + 3), `x=${x} y=${y}`);
  }
  assert.equal(linearToMulaw(40000), linearToMulaw(32767)); // clipped
});

test('WAV round trip: mu-law and PCM16 files give back the same bytes', () => {
  const audio = Buffer.concat([tone(300, 440), silence(100), tone(200, 1000, 0.9)]);
  assert.equal(audio.length, 4800);
  assert.equal(durationMs(audio), 600);
  const mu = encodeWavMulaw(audio);
  const w = parseWav(mu);
  assert.deepEqual([w.format, w.channels, w.sampleRate, w.bitsPerSample], [7, 1, 8000, 8]);
  assert.deepEqual(toMulaw8k(mu), audio);
  const pcm = encodeWavPcm16(mulawToPcm16(audio));
  assert.deepEqual([parseWav(pcm).format, parseWav(pcm).bitsPerSample], [1, 16]);
  assert.deepEqual(toMulaw8k(pcm), audio); // decoded mu-law values re-encode exactly
  const dir = mkdtempSync(join(tmpdir(), 'sim-wav-'));
  try {
    writeWavFile(join(dir, 'a.wav'), audio, { encoding: 'pcm16' });
    writeWavFile(join(dir, 'b.wav'), audio);
    assert.deepEqual(readWavFile(join(dir, 'a.wav')), audio);
    assert.deepEqual(readWavFile(join(dir, 'b.wav')), audio);
    assert.equal(readFileSync(join(dir, 'a.wav')).length, 44 + audio.length * 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Builds a WAV by hand (independently of the writer under test).
function wavBytes({ format = 1, channels = 1, rate, bits, data, extensible = false }) {
  const fmtLen = extensible ? 40 : 16;
  const h = Buffer.alloc(12 + 8 + fmtLen + 8);
  h.write('RIFF', 0);
  h.writeUInt32LE(h.length - 8 + data.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(fmtLen, 16);
  h.writeUInt16LE(extensible ? 0xfffe : format, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE((rate * channels * bits) / 8, 28);
  h.writeUInt16LE((channels * bits) / 8, 32);
  h.writeUInt16LE(bits, 34);
  if (extensible) {
    h.writeUInt16LE(22, 36);
    h.writeUInt16LE(bits, 38);
    h.writeUInt16LE(format, 44); // sub-format GUID starts with the format code
  }
  h.write('data', 12 + 8 + fmtLen);
  h.writeUInt32LE(data.length, 12 + 8 + fmtLen + 4);
  return Buffer.concat([h, data]);
}

function zeroCrossings(mulaw) {
  let n = 0;
  for (let i = 1; i < mulaw.length; i++) if (MULAW_DECODE[mulaw[i - 1]] < 0 !== MULAW_DECODE[mulaw[i]] < 0) n++;
  return n;
}

test('a 16 kHz PCM16 file is resampled to 8 kHz mu-law', () => {
  const rate = 16000;
  const pcm = Buffer.alloc(rate * 2); // one second of 440 Hz
  for (let i = 0; i < rate; i++) pcm.writeInt16LE(Math.round(16000 * Math.sin((2 * Math.PI * 440 * i) / rate)), i * 2);
  const mu = toMulaw8k(wavBytes({ rate, bits: 16, data: pcm }));
  assert.equal(mu.length, 8000);
  assert.ok(Math.abs(zeroCrossings(mu) - 880) <= 4, `zero crossings ${zeroCrossings(mu)}`);
  // Sample for sample close to the same tone generated at 8 kHz.
  const ref = mulawToPcm16(tone(1000, 440, 16000 / 32767));
  const got = mulawToPcm16(mu);
  let maxErr = 0;
  for (let i = 0; i < ref.length; i++) maxErr = Math.max(maxErr, Math.abs(ref[i] - got[i]));
  assert.ok(maxErr < 1200, `max error ${maxErr}`);
});

test('other WAV encodings: 8-bit, 24-bit, 32-bit, float, extensible, stereo, 44.1 kHz', () => {
  const n = 4410; // 100 ms at 44.1 kHz
  const sine = (i, rate) => 0.5 * Math.sin((2 * Math.PI * 300 * i) / rate);
  const f32 = Buffer.alloc(n * 2 * 4); // stereo float: left sine, right silence -> downmix halves it
  for (let i = 0; i < n; i++) f32.writeFloatLE(sine(i, 44100), i * 8);
  const stereo = toMulaw8k(wavBytes({ format: 3, channels: 2, rate: 44100, bits: 32, data: f32 }));
  assert.equal(stereo.length, 800);
  const peak = Math.max(...mulawToPcm16(stereo).map(Math.abs));
  assert.ok(peak > 7000 && peak < 9500, `downmixed peak ${peak}`); // 0.25 of full scale
  const p24 = Buffer.alloc(8000 * 3);
  for (let i = 0; i < 8000; i++) p24.writeIntLE(Math.round(sine(i, 8000) * 8388607), i * 3, 3);
  const m24 = toMulaw8k(wavBytes({ rate: 8000, bits: 24, data: p24, extensible: true }));
  assert.equal(m24.length, 8000);
  assert.ok(Math.abs(zeroCrossings(m24) - 600) <= 2);
  const p8 = Buffer.alloc(11025);
  for (let i = 0; i < p8.length; i++) p8[i] = 128 + Math.round(sine(i, 11025) * 127);
  assert.equal(toMulaw8k(wavBytes({ rate: 11025, bits: 8, data: p8 })).length, 8000);
  const p32 = Buffer.alloc(22050 * 4);
  for (let i = 0; i < 22050; i++) p32.writeInt32LE(Math.round(sine(i, 22050) * 2147483647), i * 4);
  assert.equal(toMulaw8k(wavBytes({ rate: 22050, bits: 32, data: p32 })).length, 8000);
  assert.equal(decodeWav(wavBytes({ rate: 48000, bits: 16, channels: 2, data: Buffer.alloc(48000 * 4) })).channels.length, 2);
  assert.throws(() => toMulaw8k(Buffer.from('not a wav file at all')), /RIFF/);
  assert.throws(() => toMulaw8k(wavBytes({ format: 2, rate: 8000, bits: 4, data: Buffer.alloc(10) })), /unsupported/);
});

// ---------------------------------------------------------------------------------------
// Signing

test('signatures match Twilio\'s vectors (tests/vectors)', () => {
  const { vectors } = JSON.parse(readFileSync(VECTORS, 'utf8'));
  let checked = 0;
  for (const v of vectors) {
    let params = v.params || {};
    if (Array.isArray(params)) {
      const o = {};
      for (const [k, val] of params) o[k] = k in o ? [].concat(o[k], val) : val;
      params = o;
    }
    // Some vectors were signed with the default port written out (see their notes).
    const url = /signed_with_443/.test(v.name) ? v.url.replace('.com/', '.com:443/') : /signed_with_80/.test(v.name) ? v.url.replace('.com/', '.com:80/') : v.url;
    // A JSON body is covered by bodySHA256 in the URL; the signature is over the URL alone.
    assert.equal(computeSignature(v.auth_token, url, v.body ? {} : params), v.signature, v.name);
    checked++;
  }
  assert.ok(checked >= 6);
});

test('voice webhook and status callback parameters have Twilio\'s shape', () => {
  const p = inboundCallParams({ from: '+14155550111', to: '+13654001512' });
  assert.match(p.CallSid, /^CA[0-9a-f]{32}$/);
  assert.match(p.AccountSid, /^AC[0-9a-f]{32}$/);
  assert.equal(p.ApiVersion, '2010-04-01');
  assert.equal(p.CallStatus, 'ringing');
  assert.equal(p.Direction, 'inbound');
  assert.equal(p.From, '+14155550111');
  assert.equal(p.Caller, '+14155550111');
  assert.equal(p.To, '+13654001512');
  assert.equal(p.Called, '+13654001512');
  assert.equal(p.FromCity, 'SAN FRANCISCO');
  assert.equal(p.FromState, 'CA');
  assert.equal(p.FromCountry, 'US');
  assert.equal(p.ToCountry, 'CA');
  for (const k of ['FromZip', 'ToCity', 'ToState', 'ToZip', 'CallerCity', 'CalledCountry']) assert.ok(k in p, k);
  const s = statusCallbackParams(p, { status: 'completed', sequenceNumber: 2, durationS: 61 });
  assert.equal(s.CallStatus, 'completed');
  assert.equal(s.CallbackSource, 'call-progress-events');
  assert.equal(s.SequenceNumber, '2');
  assert.equal(s.CallDuration, '61');
  assert.equal(s.Duration, '2');
  assert.match(s.Timestamp, /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
  assert.match(newSid('MZ'), /^MZ[0-9a-f]{32}$/);
  // The WebSocket upgrade is signed over the wss:// URL with no parameters.
  const url = 'wss://voice.example.com/twilio/media';
  assert.ok(twilio.validateRequest(TOKEN, wsSignature(TOKEN, url), url, {}));
});

test('public URLs are rewritten to the local server, and kept as written for signing', () => {
  const m = new UrlMap('http://127.0.0.1:8080', PUBLIC);
  assert.equal(m.toLocal('wss://voice.example.com/twilio/media'), 'ws://127.0.0.1:8080/twilio/media');
  assert.equal(m.toLocal('https://voice.example.com/twilio/connect_action?session=a%27b'), 'http://127.0.0.1:8080/twilio/connect_action?session=a%27b');
  assert.equal(m.toLocal('https://elsewhere.example.com/x'), 'https://elsewhere.example.com/x');
  assert.equal(m.resolve('/twilio/menu', 'https://voice.example.com/twilio/voice'), 'https://voice.example.com/twilio/menu');
  assert.equal(m.resolve('media', 'https://voice.example.com/twilio/voice', { ws: true }), 'wss://voice.example.com/twilio/media');
});

// ---------------------------------------------------------------------------------------
// Media Streams client against a scripted server

async function wsServer(onConnection, opts = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...opts });
  await once(wss, 'listening');
  wss.on('connection', onConnection);
  return { wss, url: `ws://127.0.0.1:${wss.address().port}/twilio/media`, close: () => new Promise((r) => wss.close(r)) };
}

const streamUrl = `wss://voice.example.com/twilio/media`;

test('MediaStream: signed upgrade, start, paced frames, marks after play-out, clear, policy close', async () => {
  const srv = { msgs: [], arrivals: [], markSent: {}, markBack: {}, clearAt: null, upgrade: null };
  let streamSid;
  const t0 = performance.now();
  const at = () => performance.now() - t0;
  const server = await wsServer((ws, req) => {
    srv.upgrade = { sig: req.headers['x-twilio-signature'], valid: twilio.validateRequest(TOKEN, req.headers['x-twilio-signature'] || '', streamUrl, {}) };
    let echoing = true;
    const send = (o) => ws.send(JSON.stringify({ ...o, streamSid }));
    const media = (bytes) => send({ event: 'media', media: { payload: bytes.toString('base64') } });
    const mark = (name) => {
      srv.markSent[name] = at();
      send({ event: 'mark', mark: { name } });
    };
    ws.on('message', (data) => {
      const m = JSON.parse(data);
      srv.msgs.push(m);
      if (m.event === 'start') {
        streamSid = m.start.streamSid;
        for (let i = 0; i < 4; i++) media(tone(100, 500)); // a 400 ms greeting in four pieces
        mark('greeting');
      } else if (m.event === 'media') {
        srv.arrivals.push(at());
        const chunk = Number(m.media.chunk);
        if (echoing) {
          media(Buffer.from(m.media.payload, 'base64'));
          mark(`echo-${chunk}`);
        }
        if (chunk === 40) {
          media(tone(1000, 700)); // a long answer...
          mark('long');
        }
        if (chunk === 50) {
          echoing = false; // ...interrupted: nothing may be sent after the clear
          srv.clearAt = at();
          send({ event: 'clear' });
        }
        if (chunk === 75) ws.close(1008, 'policy test');
      } else if (m.event === 'mark') {
        srv.markBack[m.mark.name] = at();
      }
    });
  });
  try {
    const audio = randomBytes(8000 * 3); // 3 s of noise: every frame unique, for round-trip matching
    for (let i = 0; i < audio.length; i++) if (audio[i] === 0xff || audio[i] === 0x7f) audio[i] = 0xfe;
    const ms = new MediaStream({ url: server.url, signUrl: streamUrl, authToken: TOKEN, customParameters: { session_id: 'abc123', tenant: '1' }, audio, tailMs: 200 });
    const r = await ms.run();

    // The upgrade was signed over the wss:// URL.
    assert.ok(srv.upgrade.sig, 'X-Twilio-Signature on the upgrade');
    assert.ok(srv.upgrade.valid, 'signature validates with twilio.validateRequest');

    // connected, then start with Twilio's fields.
    assert.deepEqual(srv.msgs[0], { event: 'connected', protocol: 'Call', version: '1.0.0' });
    const start = srv.msgs[1];
    assert.equal(start.event, 'start');
    assert.equal(start.sequenceNumber, '1');
    assert.equal(start.streamSid, start.start.streamSid);
    assert.match(start.start.streamSid, /^MZ[0-9a-f]{32}$/);
    assert.match(start.start.callSid, /^CA[0-9a-f]{32}$/);
    assert.match(start.start.accountSid, /^AC[0-9a-f]{32}$/);
    assert.deepEqual(start.start.tracks, ['inbound']);
    assert.deepEqual(start.start.mediaFormat, { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 });
    assert.deepEqual(start.start.customParameters, { session_id: 'abc123', tenant: '1' });

    // media: 160-byte frames, chunk/timestamp/sequenceNumber as strings, in order.
    const media = srv.msgs.filter((m) => m.event === 'media');
    assert.equal(media.length, 75);
    media.forEach((m, i) => {
      assert.equal(m.media.track, 'inbound');
      assert.equal(m.media.chunk, String(i + 1));
      assert.equal(m.media.timestamp, String(i * 20));
      assert.equal(Buffer.from(m.media.payload, 'base64').length, 160);
      assert.deepEqual(Buffer.from(m.media.payload, 'base64'), audio.subarray(i * 160, (i + 1) * 160));
    });
    const seqs = srv.msgs.slice(1).map((m) => Number(m.sequenceNumber));
    seqs.forEach((s, i) => assert.equal(s, i + 1, 'sequenceNumber counts every message'));

    // Pacing: 20 ms apart on average, no drift (frames sent = elapsed / 20 + 1).
    const span = srv.arrivals[srv.arrivals.length - 1] - srv.arrivals[0];
    const mean = span / (srv.arrivals.length - 1);
    assert.ok(Math.abs(mean - 20) < 2, `mean interval ${mean}`);
    assert.ok(Math.abs(span / 20 + 1 - srv.arrivals.length) <= 3, `span ${span} for ${srv.arrivals.length} frames`);
    assert.ok(r.stats.pacing.p99LateMs < 30, `p99 lateness ${r.stats.pacing.p99LateMs}`);

    // The greeting's mark comes back only once its 400 ms would have played.
    assert.ok(srv.markBack.greeting - srv.markSent.greeting >= 395, `greeting mark after ${srv.markBack.greeting - srv.markSent.greeting} ms`);
    for (const m of r.marks.filter((x) => !x.onClear)) assert.ok(m.echoedAt >= m.due - 0.1, `mark ${m.name} echoed at ${m.echoedAt}, due ${m.due}`);
    // Echo marks queue behind the greeting: the first one is echoed after it.
    assert.ok(srv.markBack['echo-1'] >= srv.markBack.greeting);

    // clear: the long answer is dropped and its mark comes back at once.
    assert.equal(r.stats.clears, 1);
    assert.ok(r.clears[0].droppedMs > 500, `dropped ${r.clears[0].droppedMs} ms`);
    assert.ok(r.clears[0].marksEchoed >= 1);
    assert.ok(srv.markBack.long - srv.clearAt < 100, `long mark ${srv.markBack.long - srv.clearAt} ms after the clear`);
    assert.ok(r.marks.find((m) => m.name === 'long').onClear);
    assert.equal(r.stats.audioAfterClear, 0);
    assert.equal(r.stats.mediaAfterClear, 0);
    assert.equal(r.stats.marksPending, 0);
    assert.equal(r.stats.protocolErrors, 0);

    // What the caller heard: greeting + echoes + the start of the long answer, cut at the clear.
    const heard = ms.agentAudio();
    assert.ok(heard.length > 3200 && heard.length < 3200 + 50 * 160 + 8000, `heard ${heard.length} bytes`);
    assert.deepEqual(heard.subarray(0, 800), tone(100, 500));

    // Round trips matched by content.
    assert.ok(r.stats.roundTrip.n >= 40, `round trips ${r.stats.roundTrip.n}`);
    assert.ok(r.stats.roundTrip.p50 < 50, `round trip p50 ${r.stats.roundTrip.p50}`);

    // The server closed with a policy code: reported as such.
    assert.equal(r.closeCode, 1008);
    assert.equal(r.closeReason, 'policy test');
    assert.equal(r.closedBy, 'server');
    assert.ok(r.timeline.some((e) => e.event === 'ws-close' && e.code === 1008));
  } finally {
    await server.close();
  }
});

test('MediaStream: dtmf, then stop and a normal close when the caller hangs up', async () => {
  const msgs = [];
  let closed;
  const server = await wsServer((ws) => {
    ws.on('message', (d) => msgs.push(JSON.parse(d)));
    ws.on('close', (code) => (closed = code));
  });
  try {
    const ms = new MediaStream({ url: server.url, audio: tone(200, 440), dtmf: [{ digit: '5', atMs: 100 }, { digit: '#', atMs: 240 }], tailMs: 100, callSid: 'CA' + '1'.repeat(32) });
    const r = await ms.run();
    const dtmf = msgs.filter((m) => m.event === 'dtmf');
    assert.deepEqual(dtmf.map((m) => m.dtmf), [{ track: 'inbound_track', digit: '5' }, { track: 'inbound_track', digit: '#' }]);
    assert.equal(dtmf[0].streamSid, ms.streamSid);
    const stop = msgs[msgs.length - 1];
    assert.equal(stop.event, 'stop');
    assert.deepEqual(stop.stop, { accountSid: ms.accountSid, callSid: 'CA' + '1'.repeat(32) });
    // 240 ms of digits + 100 ms tail: 17 frames (the audio, then silence)
    const frames = msgs.filter((m) => m.event === 'media');
    assert.equal(frames.length, 17);
    assert.deepEqual(Buffer.from(frames[16].media.payload, 'base64'), Buffer.alloc(160, 0xff));
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(closed, 1000);
    assert.equal(r.closeCode, 1000);
    assert.equal(r.closedBy, 'sim');
    assert.equal(r.stats.dtmfSent, 2);
    assert.equal(r.handshakeStatus, null);
  } finally {
    await server.close();
  }
});

test('MediaStream: stale audio after a clear is counted; a refused upgrade is reported', async () => {
  const server = await wsServer((ws) => {
    ws.on('message', (d) => {
      const m = JSON.parse(d);
      if (m.event === 'media' && m.media.chunk === '3') {
        const sid = m.streamSid;
        ws.send(JSON.stringify({ event: 'media', streamSid: sid, media: { payload: tone(500, 300).toString('base64') } }));
        ws.send(JSON.stringify({ event: 'clear', streamSid: sid }));
        ws.send(JSON.stringify({ event: 'media', streamSid: sid, media: { payload: tone(100, 300).toString('base64') } })); // stale
        ws.send(JSON.stringify({ event: 'bogus', streamSid: sid }));
        ws.send(JSON.stringify({ event: 'media', streamSid: 'MZnotours', media: { payload: '' } }));
      }
    });
  });
  const refusing = await wsServer(() => {}, {
    verifyClient: (info, cb) => {
      const ok = twilio.validateRequest(TOKEN, info.req.headers['x-twilio-signature'] || '', streamUrl, {});
      cb(ok, 403, 'Forbidden');
    },
  });
  try {
    const r = await new MediaStream({ url: server.url, audio: tone(100, 440), tailMs: 0 }).run();
    assert.equal(r.stats.audioAfterClear, 800);
    assert.equal(r.stats.mediaAfterClear, 1);
    assert.equal(r.stats.protocolErrors, 2);
    const good = await new MediaStream({ url: refusing.url, signUrl: streamUrl, authToken: TOKEN, audio: tone(40, 440), tailMs: 0 }).run();
    assert.equal(good.handshakeStatus, null);
    assert.equal(good.closeCode, 1000);
    const bad = await new MediaStream({ url: refusing.url, signUrl: streamUrl, authToken: 'the-wrong-token', audio: tone(40, 440) }).run();
    assert.equal(bad.handshakeStatus, 403);
    assert.match(bad.error, /403/);
    assert.equal(bad.stats.framesSent, 0);
  } finally {
    await server.close();
    await refusing.close();
  }
});

// ---------------------------------------------------------------------------------------
// Whole calls against a scripted TwiML server

// An HTTP server answering fixed TwiML per path; checks every X-Twilio-Signature against
// PUBLIC + path with Twilio's own validator and records each request.
async function twimlServer(routes, { token = TOKEN, onUpgrade } = {}) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const params = Object.fromEntries(new URLSearchParams(body));
    const sig = req.headers['x-twilio-signature'];
    const valid = !!sig && twilio.validateRequest(token, sig, PUBLIC + req.url, params);
    const path = req.url.split('?')[0];
    requests.push({ path, url: req.url, params, valid, contentType: req.headers['content-type'] });
    if (!valid) {
      res.writeHead(403).end();
      return;
    }
    const route = routes[path];
    const twiml = typeof route === 'function' ? route(params, req.url) : route;
    if (twiml === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/xml' }).end(twiml ? `<?xml version="1.0" encoding="UTF-8"?><Response>${twiml}</Response>` : '');
  });
  if (onUpgrade) {
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req, sock, head) => wss.handleUpgrade(req, sock, head, (ws) => onUpgrade(ws, req)));
  }
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${server.address().port}`, requests, close: () => new Promise((r) => server.close(r)) };
}

test('simulateCall: Say, Dial to SIP (busy), Dial to a number (answered), Hangup, with signed callbacks', async () => {
  const srv = await twimlServer({
    '/twilio/voice':
      '<Say voice="Polly.Joanna">Please hold while we connect you to an agent.</Say>' +
      '<Dial action="https://voice.example.com/twilio/transfer_callback?session=abc&amp;step=1" timeout="20" answerOnBridge="true" callerId="+14155550111">' +
      '<Sip>sip:2000@pbx.example.com;transport=tcp</Sip></Dial><Say>never reached</Say>',
    '/twilio/transfer_callback': (p, url) =>
      url.includes('step=1')
        ? '<Dial action="/twilio/transfer_callback?session=abc&amp;step=2" timeout="30"><Number>+13654001512</Number></Dial>'
        : '<Hangup/>',
    '/twilio/status': '',
  });
  try {
    const events = [];
    const r = await simulateCall({
      url: srv.url, publicUrl: PUBLIC, authToken: TOKEN, from: '+14155550111', to: '+14155550100',
      dialOutcomes: ['busy', 'completed'], statusCallback: '/twilio/status', speed: 50, dialTalkMs: 3000,
      onEvent: (e) => events.push(e),
    });
    assert.equal(r.reason, 'completed');
    assert.ok(r.ok);
    assert.equal(r.status, 'completed');
    assert.deepEqual(r.httpErrors, []);
    assert.ok(srv.requests.every((q) => q.valid), 'every request carries a valid signature');
    assert.ok(srv.requests.every((q) => q.contentType === 'application/x-www-form-urlencoded'));
    assert.deepEqual(srv.requests.map((q) => q.path), ['/twilio/status', '/twilio/voice', '/twilio/status', '/twilio/transfer_callback', '/twilio/transfer_callback', '/twilio/status']);

    const voice = srv.requests[1].params;
    for (const k of ['AccountSid', 'ApiVersion', 'CallSid', 'CallStatus', 'Called', 'Caller', 'Direction', 'From', 'To', 'FromCity', 'FromCountry', 'ToCountry'])
      assert.ok(k in voice, `voice webhook has ${k}`);
    assert.equal(voice.CallStatus, 'ringing');
    assert.equal(voice.Direction, 'inbound');
    assert.equal(voice.CallSid, r.callSid);

    const [dial1, dial2] = srv.requests.filter((q) => q.path === '/twilio/transfer_callback').map((q) => q.params);
    assert.equal(dial1.DialCallStatus, 'busy');
    assert.equal(dial1.DialSipResponseCode, '486');
    assert.ok(dial1.DialSipCallId);
    assert.match(dial1.DialCallSid, /^CA[0-9a-f]{32}$/);
    assert.equal(dial1.DialCallDuration, undefined);
    assert.equal(dial1.CallSid, r.callSid);
    assert.equal(dial1.CallStatus, 'in-progress');
    assert.equal(dial2.DialCallStatus, 'completed');
    assert.equal(dial2.DialCallDuration, '3');
    assert.equal(dial2.DialSipResponseCode, undefined);
    assert.notEqual(dial2.DialCallSid, dial1.DialCallSid);

    const statuses = srv.requests.filter((q) => q.path === '/twilio/status').map((q) => q.params);
    assert.deepEqual(statuses.map((s) => [s.CallStatus, s.SequenceNumber]), [['ringing', '0'], ['in-progress', '1'], ['completed', '2']]);
    assert.ok(statuses.every((s) => s.CallbackSource === 'call-progress-events' && s.Timestamp && s.CallSid === r.callSid));
    // Say (10 words, 4 s) + busy (2 s ringing) + answered (2 s ringing, 3 s talk), at speed 50.
    assert.ok(Math.abs(Number(statuses[2].CallDuration) - 11) <= 1, `CallDuration ${statuses[2].CallDuration}`);

    const verbs = r.timeline.filter((e) => /^[A-Z]/.test(e.event)).map((e) => e.event);
    assert.deepEqual(verbs, ['Say', 'Dial', 'Dial', 'Hangup']);
    assert.equal(r.timeline.find((e) => e.event === 'Dial').sip, 'sip:2000@pbx.example.com;transport=tcp');
    assert.ok(!r.timeline.some((e) => e.text === 'never reached'));
    assert.equal(events.length, r.timeline.length);
    assert.equal(r.twimlResponses.length, 3);
  } finally {
    await srv.close();
  }
});

test('simulateCall: a server with another auth token refuses the webhook, reported clearly', async () => {
  const srv = await twimlServer({ '/twilio/voice': '<Hangup/>' }, { token: 'the-servers-token' });
  try {
    const r = await simulateCall({ url: srv.url, publicUrl: PUBLIC, authToken: TOKEN, from: '+14155550111', to: '+14155550100' });
    assert.equal(r.ok, false);
    assert.equal(r.reason, 'webhook refused: 403 (bad signature?)');
    assert.deepEqual(r.httpErrors.map((e) => e.status), [403]);
    assert.equal(r.status, 'failed');
  } finally {
    await srv.close();
  }
});

test('simulateCall: Connect/Stream with Parameters, DTMF transfer, Redirect, Gather, Record', async () => {
  const streamSeen = {};
  const srv = await twimlServer(
    {
      '/twilio/voice':
        '<Connect action="https://voice.example.com/twilio/connect_action?session=s1">' +
        '<Stream url="wss://voice.example.com/twilio/media"><Parameter name="session_id" value="s1"/></Stream></Connect>',
      '/twilio/connect_action': '<Redirect method="POST">/twilio/menu</Redirect><Say>never reached</Say>',
      '/twilio/menu': '<Gather numDigits="1" action="/twilio/menu_choice" timeout="3"><Say>Press 7 to leave a message.</Say></Gather><Say>No input</Say><Hangup/>',
      '/twilio/menu_choice': '<Record maxLength="2" action="/twilio/recorded" recordingStatusCallback="/twilio/recording"/>',
      '/twilio/recorded': '<Say>Thank you, goodbye.</Say><Hangup/>',
      '/twilio/recording': '',
    },
    {
      onUpgrade: (ws, req) => {
        streamSeen.path = req.url;
        streamSeen.valid = twilio.validateRequest(TOKEN, req.headers['x-twilio-signature'] || '', streamUrl, {});
        ws.on('message', (d) => {
          const m = JSON.parse(d);
          if (m.event === 'start') {
            streamSeen.start = m.start;
            ws.send(JSON.stringify({ event: 'media', streamSid: m.streamSid, media: { payload: tone(200, 600).toString('base64') } }));
            ws.send(JSON.stringify({ event: 'mark', streamSid: m.streamSid, mark: { name: 'greeting' } }));
          } else if (m.event === 'mark') {
            streamSeen.mark = m.mark.name;
          } else if (m.event === 'dtmf') {
            streamSeen.digit = m.dtmf.digit;
            ws.close(1000); // "transfer": the server ends the stream
          }
        });
      },
    },
  );
  try {
    const r = await simulateCall({
      url: srv.url, publicUrl: PUBLIC, authToken: TOKEN, from: '+14155550111', to: '+14155550100',
      audio: tone(1000, 440), dtmf: [{ digit: '0', atMs: 400 }, { digit: '7', atMs: 700 }], speed: 20,
    });
    assert.equal(r.reason, 'completed');
    assert.ok(r.ok);
    assert.ok(srv.requests.every((q) => q.valid));
    assert.equal(streamSeen.path, '/twilio/media');
    assert.ok(streamSeen.valid, 'stream upgrade signed over the wss:// URL');
    assert.deepEqual(streamSeen.start.customParameters, { session_id: 's1' });
    assert.equal(streamSeen.start.callSid, r.callSid);
    assert.equal(streamSeen.mark, 'greeting');
    assert.equal(streamSeen.digit, '0');
    assert.equal(r.stream.closeCode, 1000);
    assert.equal(r.stream.closedBy, 'server');
    assert.equal(r.agentAudio.length, 1600);
    assert.deepEqual(r.agentAudio, tone(200, 600));

    assert.deepEqual(srv.requests.map((q) => q.path), ['/twilio/voice', '/twilio/connect_action', '/twilio/menu', '/twilio/menu_choice', '/twilio/recorded', '/twilio/recording']);
    const byPath = Object.fromEntries(srv.requests.map((q) => [q.path, q.params]));
    assert.equal(byPath['/twilio/connect_action'].CallStatus, 'in-progress');
    assert.equal(byPath['/twilio/menu_choice'].Digits, '7');
    const rec = byPath['/twilio/recorded'];
    assert.match(rec.RecordingSid, /^RE[0-9a-f]{32}$/);
    assert.ok(rec.RecordingUrl.endsWith(`/Recordings/${rec.RecordingSid}`));
    assert.ok(Number(rec.RecordingDuration) >= 1);
    const rs = byPath['/twilio/recording'];
    assert.equal(rs.RecordingSid, rec.RecordingSid);
    assert.equal(rs.RecordingStatus, 'completed');
    assert.equal(rs.RecordingSource, 'RecordVerb');
    assert.equal(rs.CallSid, r.callSid);
    const verbs = r.timeline.filter((e) => /^[A-Z]/.test(e.event)).map((e) => e.event);
    assert.deepEqual(verbs, ['Stream', 'Redirect', 'Gather', 'Say', 'Record', 'Say', 'Hangup']);
  } finally {
    await srv.close();
  }
});

test('simulateCall: a leading Reject leaves the call unanswered; the caller hanging up ends a stream', async () => {
  const srv = await twimlServer(
    {
      '/reject': '<Reject reason="busy"/><Say>never reached</Say>',
      '/stream': '<Connect action="/after"><Stream url="/twilio/media"/></Connect>',
      '/after': '<Say>never requested</Say>',
      '/status': '',
    },
    { onUpgrade: () => {} }, // a server that never closes the stream
  );
  try {
    const base = { url: srv.url, publicUrl: PUBLIC, authToken: TOKEN, statusCallback: '/status' };
    const rejected = await simulateCall({ ...base, voicePath: '/reject' });
    assert.ok(rejected.ok);
    assert.equal(rejected.status, 'busy');
    assert.deepEqual(srv.requests.filter((q) => q.path === '/status').map((q) => q.params.CallStatus), ['ringing', 'busy']);

    srv.requests.length = 0;
    const r = await simulateCall({ ...base, voicePath: '/stream', audio: tone(2000, 300), streamAutoStop: false, hangupAfterMs: 400 });
    assert.ok(r.ok, r.reason);
    assert.equal(r.status, 'completed');
    assert.equal(r.stream.closedBy, 'sim');
    assert.equal(r.stream.closeCode, 1000);
    assert.ok(r.stream.timeline.some((e) => e.event === 'stop'));
    assert.ok(r.stream.stats.framesSent >= 15 && r.stream.stats.framesSent <= 25, `frames ${r.stream.stats.framesSent}`);
    assert.ok(!srv.requests.some((q) => q.path === '/after'), 'no Connect action once the caller has hung up');
    assert.ok(srv.requests.every((q) => q.valid));
  } finally {
    await srv.close();
  }
});
