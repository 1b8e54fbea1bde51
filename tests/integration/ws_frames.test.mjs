// The server's WebSocket framing (server/ws.c) against a raw TCP peer, where a library client
// would refuse to send what is tested: a header announcing 2^62 bytes is refused with 1009 at
// once (nothing of it is waited for or buffered) and the connection let go; an unmasked client
// frame is refused with 1002; a ping is answered with its payload; a message sent in fragments
// with a ping between them arrives whole.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup } from './lib/harness.mjs';
import { rawUpgrade, until, frame } from './lib/rawhttp.mjs';

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

// A raw client: the upgrade done (lib/rawhttp.mjs), then bytes in both directions.
async function upgraded(srv) {
  const c = await rawUpgrade(srv, '/twilio/media', []);
  assert.equal(c.res.status, 101);
  return c;
}
const closeCode = (f) => (f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null);

test('a frame header announcing 2^62 bytes: close 1009 at once, the connection let go', async () => {
  const srv = await server();
  const c = await upgraded(srv);
  const t0 = Date.now();
  const h = Buffer.alloc(14);
  h[0] = 0x81; h[1] = 0x80 | 127; h.writeBigUInt64BE(1n << 62n, 2); // then the mask, no payload ever
  c.sock.write(h);
  assert.ok(await until(c, () => c.frames.some((f) => f.op === 8), 1000));
  const close = c.frames.find((f) => f.op === 8);
  assert.equal(closeCode(close), 1009);
  assert.equal(close.masked, false, 'server frames are not masked');
  assert.ok(Date.now() - t0 < 1000, `answered in ${Date.now() - t0} ms`);
  assert.ok(await until(c, () => c.ended, 3000)); // the server ends the connection without waiting for us
});

test('an unmasked client frame: close 1002', async () => {
  const srv = await server();
  const c = await upgraded(srv);
  c.sock.write(frame(1, '{"event":"connected","protocol":"Call","version":"1.0.0"}', { mask: false }));
  assert.ok(await until(c, () => c.frames.some((f) => f.op === 8), 2000));
  assert.equal(closeCode(c.frames.find((f) => f.op === 8)), 1002);
  assert.ok(await until(c, () => c.ended, 3000));
});

test('ping answered with its payload; fragments with a ping between them arrive as one message', async () => {
  const srv = await server();
  const c = await upgraded(srv);
  c.sock.write(frame(9, 'hello?'));
  assert.ok(await until(c, () => c.frames.some((f) => f.op === 10), 2000));
  assert.equal(c.frames.find((f) => f.op === 10).payload.toString(), 'hello?');
  // a "connected" message in three pieces: the server takes it whole (no error, no close)
  const msg = '{"event":"connected","protocol":"Call","version":"1.0.0"}';
  c.sock.write(Buffer.concat([frame(1, msg.slice(0, 10), { fin: false }), frame(9, 'p2'), frame(0, msg.slice(10, 30), { fin: false }), frame(0, msg.slice(30))]));
  assert.ok(await until(c, () => c.frames.filter((f) => f.op === 10).length === 2, 2000));
  assert.equal(c.frames.filter((f) => f.op === 8).length, 0, 'no close: the fragments made one valid message');
  // a continuation with no message before it is a protocol error
  c.sock.write(frame(0, 'x'));
  assert.ok(await until(c, () => c.frames.some((f) => f.op === 8), 2000));
  assert.equal(closeCode(c.frames.find((f) => f.op === 8)), 1002);
});
