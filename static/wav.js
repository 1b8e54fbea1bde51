// Recordings are G.711 WAV (mu-law, as the phone line carries it); Chromium's <audio> plays
// only PCM WAV, so the page decodes G.711 to 16-bit PCM before playing. Other WAVs pass as is.

const tag = (v, at) => String.fromCharCode(v.getUint8(at), v.getUint8(at + 1), v.getUint8(at + 2), v.getUint8(at + 3));

function ulaw(u) {
  u = ~u & 0xff;
  const exp = (u >> 4) & 7, mag = ((((u & 0x0f) << 3) + 0x84) << exp) - 0x84;
  return u & 0x80 ? -mag : mag;
}

function alaw(a) {
  a ^= 0x55;
  const exp = (a >> 4) & 7, man = a & 0x0f;
  const mag = exp ? ((man << 4) + 0x108) << (exp - 1) : (man << 4) + 8;
  return a & 0x80 ? mag : -mag;
}

// An ArrayBuffer holding a WAV file -> the same sound as PCM16 WAV (an ArrayBuffer), or the
// input itself when it needs no decoding or is not a WAV this knows.
export function playableWav(buf) {
  const v = new DataView(buf);
  if (buf.byteLength < 12 || tag(v, 0) !== 'RIFF' || tag(v, 8) !== 'WAVE') return buf;
  let fmt = null, data = null;
  for (let off = 12; off + 8 <= buf.byteLength; ) {
    const id = tag(v, off), left = buf.byteLength - off - 8;
    let size = v.getUint32(off + 4, true);
    if (id === 'fmt ' && size >= 16) fmt = { format: v.getUint16(off + 8, true), channels: v.getUint16(off + 10, true), rate: v.getUint32(off + 12, true) };
    if (id === 'data') {
      if (size === 0 || size > left) size = left; // a file still being written
      data = new Uint8Array(buf, off + 8, size);
      break;
    }
    off += 8 + size + (size & 1);
  }
  if (!fmt || !data || (fmt.format !== 7 && fmt.format !== 6)) return buf;
  const decode = fmt.format === 7 ? ulaw : alaw;
  const out = new ArrayBuffer(44 + data.length * 2), o = new DataView(out);
  const put = (at, s) => [...s].forEach((c, i) => o.setUint8(at + i, c.charCodeAt(0)));
  put(0, 'RIFF');
  o.setUint32(4, 36 + data.length * 2, true);
  put(8, 'WAVEfmt ');
  o.setUint32(16, 16, true);
  o.setUint16(20, 1, true); // PCM
  o.setUint16(22, fmt.channels, true);
  o.setUint32(24, fmt.rate, true);
  o.setUint32(28, fmt.rate * fmt.channels * 2, true);
  o.setUint16(32, fmt.channels * 2, true);
  o.setUint16(34, 16, true);
  put(36, 'data');
  o.setUint32(40, data.length * 2, true);
  for (let i = 0; i < data.length; i++) o.setInt16(44 + i * 2, decode(data[i]), true);
  return out;
}
