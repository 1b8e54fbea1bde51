// The server's WebSocket framing (server/ws.c) against a raw TCP peer, where a library client
// would refuse to send what is tested: a header announcing 2^62 bytes is refused with 1009 at
// once (nothing of it is waited for or buffered) and the connection let go; an unmasked client
// frame is refused with 1002; a ping is answered with its payload; a message sent in fragments
// with a ping between them arrives whole.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import crypto from 'node:crypto';
import { startServer, cleanup } from './lib/harness.mjs';

const servers = [];
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
});
async function server() {
  const srv = await startServer({ env: { AI_PROVIDER: 'echo', TLS_PORT: 'off', PRIMARY_TRANSFER_TARGET: 'sip:2000@pbx.example.com' } });
  servers.push(srv);
  return srv;
}

// A raw client: the upgrade done, then bytes in both directions; frames from the server parsed.
async function rawUpgrade(srv) {
  const u = new URL(srv.url);
  const sock = net.connect(+u.port, u.hostname);
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  const key = crypto.randomBytes(16).toString('base64');
  sock.write(`GET /twilio/media HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const c = { sock, buf: Buffer.alloc(0), frames: [], ended: false, waiters: [] };
  let head = true;
  sock.on('data', (d) => {
    c.buf = Buffer.concat([c.buf, d]);
    if (head) {
      const i = c.buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      c.status = c.buf.subarray(0, i).toString().split(' ')[1];
      c.buf = c.buf.subarray(i + 4);
      head = false;
    }
    for (;;) {
      if (c.buf.length < 2) break;
      let len = c.buf[1] & 0x7f, h = 2;
      if (len === 126) { if (c.buf.length < 4) break; len = c.buf.readUInt16BE(2); h = 4; }
      else if (len === 127) { if (c.buf.length < 10) break; len = Number(c.buf.readBigUInt64BE(2)); h = 10; }
      if (c.buf.length < h + len) break;
      c.frames.push({ op: c.buf[0] & 0x0f, fin: !!(c.buf[0] & 0x80), masked: !!(c.buf[1] & 0x80), payload: c.buf.subarray(h, h + len) });
      c.buf = c.buf.subarray(h + len);
    }
    c.waiters.forEach((w) => w());
  });
  sock.on('close', () => { c.ended = true; c.waiters.forEach((w) => w()); });
  sock.on('error', () => {});
  await until(c, () => c.status !== undefined, 3000);
  assert.equal(c.status, '101');
  return c;
}
function until(c, pred, ms) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), ms);
    const check = () => { if (pred()) { clearTimeout(t); c.waiters = c.waiters.filter((w) => w !== check); resolve(); } };
    c.waiters.push(check);
    check();
  });
}
function frame(op, payload, { fin = true, mask = true } = {}) {
  const p = Buffer.from(payload);
  const m = crypto.randomBytes(4);
  const head = p.length < 126 ? Buffer.from([(fin ? 0x80 : 0) | op, (mask ? 0x80 : 0) | p.length])
    : Buffer.from([(fin ? 0x80 : 0) | op, (mask ? 0x80 : 0) | 126, p.length >> 8, p.length & 255]);
  if (!mask) return Buffer.concat([head, p]);
  return Buffer.concat([head, m, Buffer.from(p.map((b, i) => b ^ m[i % 4]))]);
}
const closeCode = (f) => (f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null);

test('a frame header announcing 2^62 bytes: close 1009 at once, the connection let go', async () => {
  const srv = await server();
  const c = await rawUpgrade(srv);
  const t0 = Date.now();
  const h = Buffer.alloc(14);
  h[0] = 0x81; h[1] = 0x80 | 127; h.writeBigUInt64BE(1n << 62n, 2); // then the mask, no payload ever
  c.sock.write(h);
  await until(c, () => c.frames.some((f) => f.op === 8), 1000);
  const close = c.frames.find((f) => f.op === 8);
  assert.equal(closeCode(close), 1009);
  assert.equal(close.masked, false, 'server frames are not masked');
  assert.ok(Date.now() - t0 < 1000, `answered in ${Date.now() - t0} ms`);
  await until(c, () => c.ended, 3000); // the server ends the connection without waiting for us
});

test('an unmasked client frame: close 1002', async () => {
  const srv = await server();
  const c = await rawUpgrade(srv);
  c.sock.write(frame(1, '{"event":"connected","protocol":"Call","version":"1.0.0"}', { mask: false }));
  await until(c, () => c.frames.some((f) => f.op === 8), 2000);
  assert.equal(closeCode(c.frames.find((f) => f.op === 8)), 1002);
  await until(c, () => c.ended, 3000);
});

test('ping answered with its payload; fragments with a ping between them arrive as one message', async () => {
  const srv = await server();
  const c = await rawUpgrade(srv);
  c.sock.write(frame(9, 'hello?'));
  await until(c, () => c.frames.some((f) => f.op === 10), 2000);
  assert.equal(c.frames.find((f) => f.op === 10).payload.toString(), 'hello?');
  // a "connected" message in three pieces: the server takes it whole (no error, no close)
  const msg = '{"event":"connected","protocol":"Call","version":"1.0.0"}';
  c.sock.write(Buffer.concat([frame(1, msg.slice(0, 10), { fin: false }), frame(9, 'p2'), frame(0, msg.slice(10, 30), { fin: false }), frame(0, msg.slice(30))]));
  await until(c, () => c.frames.filter((f) => f.op === 10).length === 2, 2000);
  assert.equal(c.frames.filter((f) => f.op === 8).length, 0, 'no close: the fragments made one valid message');
  // a continuation with no message before it is a protocol error
  c.sock.write(frame(0, 'x'));
  await until(c, () => c.frames.some((f) => f.op === 8), 2000);
  assert.equal(closeCode(c.frames.find((f) => f.op === 8)), 1002);
});
