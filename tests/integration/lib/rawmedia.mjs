// A deliberately plain Media Streams peer for protocol tests (malformed frames, drops,
// refused starts); conversations use the simulator's MediaStream (tools/sim/media.mjs).
import WebSocket from 'ws';
import twilio from 'twilio';

export async function voiceCall(srv, sid, { token, publicUrl, from = '+14155550111', to = '+14155550100' } = {}) {
  const params = { CallSid: sid, From: from, To: to, CallStatus: 'ringing', AccountSid: 'AC' + '0'.repeat(32) };
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (token) headers['X-Twilio-Signature'] = twilio.getExpectedTwilioSignature(token, publicUrl + '/twilio/voice', params);
  const r = await fetch(srv.url + '/twilio/voice', { method: 'POST', headers, body: new URLSearchParams(params) });
  const text = await r.text();
  const m = /name="session_id" value="([0-9a-f]{32})"/.exec(text);
  return { status: r.status, twiml: text, session: m ? m[1] : null };
}

export function open(srv, headers = {}) {
  const ws = new WebSocket(srv.url.replace('http', 'ws') + '/twilio/media', { headers });
  const peer = { ws, received: [], closed: null, opened: null };
  peer.opened = new Promise((res, rej) => {
    ws.on('open', res);
    ws.on('unexpected-response', (req, res2) => rej(Object.assign(new Error('refused ' + res2.statusCode), { status: res2.statusCode })));
    ws.on('error', rej);
  });
  peer.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
  ws.on('message', (d, binary) => {
    const m = binary ? { binary: true } : JSON.parse(d.toString());
    peer.received.push(m);
    // acknowledge marks at once, as if the audio had played
    if (m.event === 'mark') ws.send(JSON.stringify({ event: 'mark', streamSid: m.streamSid, mark: m.mark }));
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
