// A deliberately plain Media Streams peer for protocol tests (malformed frames, drops,
// refused starts); conversations use the simulator's MediaStream (tools/sim/media.mjs).
import WebSocket from 'ws';
import twilio from 'twilio';
import { tone } from '../../../tools/sim/index.mjs';

export async function voiceCall(srv, sid, { token, publicUrl, from = '+14155550111', to = '+14155550100' } = {}) {
  const params = { CallSid: sid, From: from, To: to, CallStatus: 'ringing', AccountSid: 'AC' + '0'.repeat(32) };
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (token) headers['X-Twilio-Signature'] = twilio.getExpectedTwilioSignature(token, publicUrl + '/twilio/voice', params);
  const r = await fetch(srv.url + '/twilio/voice', { method: 'POST', headers, body: new URLSearchParams(params) });
  const text = await r.text();
  const m = /name="session_id" value="([0-9a-f]{32})"/.exec(text);
  return { status: r.status, twiml: text, session: m ? m[1] : null };
}

// playout: acknowledge a mark only once the audio before it would have played (as Twilio
// does); on clear, drop what has not played and acknowledge the pending marks at once.
// tls: over the server's own TLS listener (wss://, its generated certificate), as Twilio connects
export function open(srv, headers = {}, { playout = false, tls = false } = {}) {
  const base = tls ? srv.tlsUrl.replace('https', 'wss') : srv.url.replace('http', 'ws');
  const ws = new WebSocket(base + '/twilio/media', { headers, rejectUnauthorized: false });
  const peer = { ws, received: [], closed: null, opened: null, playEnd: 0, pendingMarks: [], afterClear: 0, cleared: false };
  peer.opened = new Promise((res, rej) => {
    ws.on('open', res);
    ws.on('unexpected-response', (req, res2) => rej(Object.assign(new Error('refused ' + res2.statusCode), { status: res2.statusCode })));
    ws.on('error', rej);
  });
  peer.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
  const ack = (m) => ws.readyState === 1 && ws.send(JSON.stringify({ event: 'mark', streamSid: m.streamSid, mark: m.mark }));
  ws.on('message', (d, binary) => {
    const m = binary ? { binary: true } : JSON.parse(d.toString());
    m.at = Date.now();
    peer.received.push(m);
    if (!playout) {
      if (m.event === 'mark') ack(m); // at once, as if the audio had played
      return;
    }
    const now = Date.now();
    if (m.event === 'media') {
      if (peer.cleared) peer.afterClear++;
      peer.playEnd = Math.max(now, peer.playEnd) + Buffer.from(m.media.payload, 'base64').length / 8;
    } else if (m.event === 'mark') {
      const t = setTimeout(() => { peer.pendingMarks = peer.pendingMarks.filter((x) => x.t !== t); ack(m); }, Math.max(0, peer.playEnd - now));
      peer.pendingMarks.push({ t, m });
    } else if (m.event === 'clear') {
      peer.cleared = true;
      peer.playEnd = now;
      for (const x of peer.pendingMarks) { clearTimeout(x.t); ack(x.m); }
      peer.pendingMarks = [];
    }
  });
  return peer;
}

export function start(peer, { sid, session, streamSid = 'MZ' + 'a'.repeat(32) }) {
  peer.ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
  peer.ws.send(JSON.stringify({
    event: 'start', sequenceNumber: '1', streamSid,
    start: { accountSid: 'AC' + '0'.repeat(32), streamSid, callSid: sid, tracks: ['inbound'],
      customParameters: { session_id: session, tenant_id: '1' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } },
  }));
  return streamSid;
}

export function media(peer, streamSid, i, byte = 0xff) {
  const payload = Buffer.alloc(160, byte).toString('base64');
  peer.ws.send(JSON.stringify({ event: 'media', sequenceNumber: String(i + 2), streamSid,
    media: { track: 'inbound', chunk: String(i + 1), timestamp: String(i * 20), payload } }));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Sends n frames of `byte` 20 ms apart, waits 300 ms more, and returns the media messages the
// server sent back (the echo agent plays each frame back).
export async function sendFrames(peer, streamSid, { n = 25, byte = 0xff } = {}) {
  for (let i = 0; i < n; i++) {
    media(peer, streamSid, i, byte);
    await sleep(20);
  }
  await sleep(300);
  return peer.received.filter((m) => m.event === 'media');
}

const toneFrame = tone(20, 300).toString('base64'); // a caller frame with sound

// A caller streaming a tone frame every 20 ms until the stream closes or `ms` pass; the peer
// plays agent audio out as Twilio does (marks echoed after play-out, clear honoured).
export async function streamCall(srv, sid, { ms = 3000, onFrame } = {}) {
  const { session } = await voiceCall(srv, sid);
  const peer = open(srv, {}, { playout: true });
  await peer.opened;
  const stream = start(peer, { sid, session });
  let live = true;
  peer.closed.then(() => (live = false));
  const t0 = Date.now();
  for (let i = 0; live && Date.now() - t0 < ms; i++) {
    peer.ws.send(JSON.stringify({ event: 'media', streamSid: stream, sequenceNumber: String(i + 2),
      media: { track: 'inbound', chunk: String(i + 1), timestamp: String(i * 20), payload: toneFrame } }));
    if (onFrame) onFrame(i, peer, stream);
    await sleep(20);
  }
  return { sid, session, peer, stream };
}
