// A raw HTTP/1.1 client for the tests that send what a library client would not: any bytes out,
// responses parsed by hand, WebSocket upgrades with the server's frames parsed as they come.
import net from 'node:net';
import { SANITIZED } from './harness.mjs';

// time limits stretch under the sanitizers
export const SLOW = SANITIZED ? 4 : 1;

const CRLF = Buffer.from('\r\n');
export const bytes = (v) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'latin1')); // request lines, headers
export const bodyBytes = (v) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v ?? ''), 'utf8'));

// The request's bytes; Host and Content-Length added unless the case gives its own (or says not to).
export function build({ method = 'GET', path = '/', headers = [], body, version = 'HTTP/1.1', host = true, length = true }) {
  const has = (n) => headers.some(([k]) => k.toLowerCase() === n);
  const parts = [bytes(`${method} `), bytes(path), bytes(` ${version}\r\n`)];
  if (host && !has('host')) parts.push(bytes('Host: 127.0.0.1\r\n'));
  for (const [k, v] of headers) parts.push(bytes(k), bytes(': '), bytes(v), CRLF);
  const b = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  if (b && length && !has('content-length') && !has('transfer-encoding')) parts.push(bytes(`Content-Length: ${b.length}\r\n`));
  parts.push(CRLF);
  if (b) parts.push(b);
  return Buffer.concat(parts);
}

// One response from the front of buf, or null while incomplete; 1xx responses skipped.
export function parseResponse(buf, { head = false, ended = false } = {}) {
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) return null;
    const lines = buf.subarray(off, end).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let at = end + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      off = at;
      continue;
    }
    if (head || status === 101 || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0), used: at };
    if (headers['transfer-encoding'] && /chunked/i.test(headers['transfer-encoding'])) {
      const chunks = [];
      for (;;) {
        const le = buf.indexOf('\r\n', at);
        if (le < 0) return null;
        const size = parseInt(buf.subarray(at, le).toString('latin1'), 16);
        if (buf.length < le + 2 + size + 2) return null;
        chunks.push(buf.subarray(le + 2, le + 2 + size));
        at = le + 2 + size + 2;
        if (size === 0) return { status, headers, body: Buffer.concat(chunks), used: at };
      }
    }
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (buf.length < at + n) return null;
      return { status, headers, body: buf.subarray(at, at + n), used: at + n };
    }
    return ended ? { status, headers, body: buf.subarray(at), used: buf.length } : null;
  }
}


// A request on a connection of its own: the answer, whether the server closed, and when.
export async function rawExchange(s, data, { ms = 3000 * SLOW } = {}) {
  const sock = net.connect(s.port, '127.0.0.1');
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  const t0 = Date.now();
  let buf = Buffer.alloc(0), closed = false, closedAt = 0;
  sock.on('data', (d) => (buf = Buffer.concat([buf, d])));
  sock.on('error', () => {});
  const done = new Promise((r) => sock.on('close', () => { closed = true; closedAt = Date.now() - t0; r(); }));
  for (const p of [].concat(data)) {
    if (typeof p === 'number') await new Promise((r) => setTimeout(r, p));
    else if (!sock.destroyed) sock.write(p);
  }
  await Promise.race([done, new Promise((r) => setTimeout(r, ms))]);
  sock.destroy();
  const res = parseResponse(buf, { ended: true }) ?? { status: 0, closed, partial: buf.toString('latin1').slice(0, 200) };
  const rest = res.used !== undefined ? buf.subarray(res.used) : Buffer.alloc(0);
  return { ...res, closed, closedAt, rest };
}


// An upgrade on a raw socket; {status, body} when refused, else the connection with the server's
// frames parsed as they come.
export async function rawUpgrade(s, path, headers) {
  const sock = net.connect(s.port, '127.0.0.1');
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  const key = Buffer.from('adversarial-key!').toString('base64');
  sock.write(build({ method: 'GET', path, headers: [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', key], ['Sec-WebSocket-Version', '13'], ...headers] }));
  const c = { sock, buf: Buffer.alloc(0), frames: [], ended: false, waiters: [] };
  let head = true;
  const notify = () => c.waiters.forEach((w) => w());
  sock.on('data', (d) => {
    c.buf = Buffer.concat([c.buf, d]);
    if (head) {
      const res = parseResponse(c.buf, { ended: c.ended });
      if (!res) return;
      c.res = res;
      c.buf = c.buf.subarray(res.used);
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
    notify();
  });
  sock.on('close', () => { c.ended = true; if (head) c.res = parseResponse(c.buf, { ended: true }) ?? { status: 0 }; notify(); });
  sock.on('error', () => {});
  await until(c, () => c.res, 5000 * SLOW);
  return c;
}
export function until(c, pred, ms) {
  return new Promise((resolve) => {
    const t = setTimeout(() => { c.waiters = c.waiters.filter((w) => w !== poll); resolve(false); }, ms);
    const poll = () => { if (pred()) { clearTimeout(t); c.waiters = c.waiters.filter((w) => w !== poll); resolve(true); } };
    c.waiters.push(poll);
    poll();
  });
}
export function frame(op, payload, { fin = true, mask = true, rsv = 0, len } = {}) {
  const p = bytes(payload);
  const n = len ?? p.length;
  const b0 = (fin ? 0x80 : 0) | rsv | op;
  const head = n < 126 ? Buffer.from([b0, (mask ? 0x80 : 0) | n])
    : n < 65536 ? Buffer.from([b0, (mask ? 0x80 : 0) | 126, n >> 8, n & 255])
      : Buffer.concat([Buffer.from([b0, (mask ? 0x80 : 0) | 127]), (() => { const x = Buffer.alloc(8); x.writeBigUInt64BE(BigInt(n)); return x; })()]);
  if (!mask) return Buffer.concat([head, p]);
  const m = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  return Buffer.concat([head, m, Buffer.from(p.map((b, i) => b ^ m[i % 4]))]);
}
