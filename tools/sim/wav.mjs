// Audio for the simulator: G.711 mu-law (and A-law, for reading), WAV files in and out,
// and conversion of any common WAV to what Twilio Media Streams carry: 8 kHz, mono,
// mu-law ("audio/x-mulaw", sampleRate 8000, channels 1 in the stream's `start` message).
//
//   import { readWavFile, toMulaw8k, writeWavFile, tone, silence } from './wav.mjs';
//   const mulaw = readWavFile('in.wav');            // any rate/depth/channels -> 8 kHz mu-law
//   writeWavFile('out.wav', mulaw, { encoding: 'pcm16' });
import { readFileSync, writeFileSync } from 'node:fs';

export const SAMPLE_RATE = 8000; // Media Streams: always 8000 Hz
export const FRAME_BYTES = 160; // 20 ms of 8 kHz mu-law, the size of Twilio's media frames
export const FRAME_MS = 20;
export const MULAW_SILENCE = 0xff; // mu-law code of linear 0

// ---------------------------------------------------------------------------------------
// G.711 mu-law (ITU-T G.711, the "BIAS = 0x84, CLIP = 32635" formulation used by Sun's
// g711.c and most telephony stacks). 14-bit magnitude + sign, 8 segments of 16 steps;
// every code is stored inverted.
const BIAS = 0x84;
const CLIP = 32635;

// Exponent (segment) of a biased magnitude: position of its highest set bit above bit 7.
// (G.711's exp_lut: 0,0,1,1,2,2,2,2,3 x8,4 x16,5 x32,6 x64,7 x128.)
const SEGMENT = Uint8Array.from({ length: 256 }, (_, i) => (i < 2 ? 0 : Math.floor(Math.log2(i))));

/** Encodes one signed 16-bit sample to a mu-law byte. */
export function linearToMulaw(sample) {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (sign) s = -s;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  const exponent = SEGMENT[(s >> 7) & 0xff];
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Decodes one mu-law byte to a signed 16-bit sample. */
export function mulawToLinear(code) {
  const u = ~code & 0xff;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
  return u & 0x80 ? 0 - magnitude : magnitude; // (0 - 0 is +0: code 0x7f decodes to 0)
}

/** A-law (G.711) decode, for reading A-law WAV files. */
export function alawToLinear(code) {
  const a = (code ^ 0x55) & 0xff;
  const exponent = (a >> 4) & 0x07;
  let magnitude = (a & 0x0f) << 4;
  magnitude = exponent === 0 ? magnitude + 8 : (magnitude + 0x108) << (exponent - 1);
  return a & 0x80 ? magnitude : -magnitude;
}

// Lookup tables: 256 decodes, 65536 encodes (indexed by sample + 32768).
export const MULAW_DECODE = Int16Array.from({ length: 256 }, (_, i) => mulawToLinear(i));
const MULAW_ENCODE = new Uint8Array(65536);
for (let i = 0; i < 65536; i++) MULAW_ENCODE[i] = linearToMulaw(i - 32768);

/** Int16 samples (array-like) -> mu-law Buffer. */
export function pcm16ToMulaw(samples) {
  const out = Buffer.allocUnsafe(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-32768, Math.min(32767, Math.round(samples[i])));
    out[i] = MULAW_ENCODE[s + 32768];
  }
  return out;
}

/** mu-law bytes -> Int16Array. */
export function mulawToPcm16(mulaw) {
  const out = new Int16Array(mulaw.length);
  for (let i = 0; i < mulaw.length; i++) out[i] = MULAW_DECODE[mulaw[i]];
  return out;
}

// ---------------------------------------------------------------------------------------
// WAV reading. RIFF/WAVE with a `fmt ` chunk (WAVE_FORMAT_PCM 1, IEEE_FLOAT 3, ALAW 6,
// MULAW 7, or EXTENSIBLE 0xFFFE carrying one of those as its sub-format) and a `data`
// chunk; other chunks (LIST, fact, ...) are skipped, odd-sized chunks are padded.
const FMT = { PCM: 1, FLOAT: 3, ALAW: 6, MULAW: 7, EXTENSIBLE: 0xfffe };

/** Parses a WAV file's header: {format, channels, sampleRate, bitsPerSample, blockAlign, data}. */
export function parseWav(buf) {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let fmt = null;
  let data = null;
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    let size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    // Streaming writers leave the data size at 0 or 0xFFFFFFFF: take the rest of the file.
    if (id === 'data' && (size === 0 || size === 0xffffffff || body + size > buf.length)) size = buf.length - body;
    if (id === 'fmt ') {
      if (size < 16) throw new Error('fmt chunk too short');
      let format = buf.readUInt16LE(body);
      const channels = buf.readUInt16LE(body + 2);
      const sampleRate = buf.readUInt32LE(body + 4);
      const blockAlign = buf.readUInt16LE(body + 12);
      const bitsPerSample = buf.readUInt16LE(body + 14);
      if (format === FMT.EXTENSIBLE) {
        if (size < 40) throw new Error('WAVE_FORMAT_EXTENSIBLE fmt chunk too short');
        format = buf.readUInt16LE(body + 24); // first two bytes of the sub-format GUID
      }
      fmt = { format, channels, sampleRate, bitsPerSample, blockAlign };
    } else if (id === 'data') {
      data = buf.subarray(body, body + size);
    }
    off = body + size + (size & 1);
  }
  if (!fmt) throw new Error('WAV has no fmt chunk');
  if (!data) throw new Error('WAV has no data chunk');
  if (!fmt.channels || !fmt.sampleRate) throw new Error('WAV has zero channels or sample rate');
  return { ...fmt, data };
}

// One sample reader per encoding, returning a float in [-1, 1].
function sampleReader({ format, bitsPerSample }) {
  if (format === FMT.PCM) {
    switch (bitsPerSample) {
      case 8:
        return (b, o) => (b[o] - 128) / 128; // 8-bit WAV is unsigned
      case 16:
        return (b, o) => b.readInt16LE(o) / 32768;
      case 24:
        return (b, o) => b.readIntLE(o, 3) / 8388608;
      case 32:
        return (b, o) => b.readInt32LE(o) / 2147483648;
    }
  } else if (format === FMT.FLOAT) {
    if (bitsPerSample === 32) return (b, o) => b.readFloatLE(o);
    if (bitsPerSample === 64) return (b, o) => b.readDoubleLE(o);
  } else if (format === FMT.MULAW && bitsPerSample === 8) {
    return (b, o) => MULAW_DECODE[b[o]] / 32768;
  } else if (format === FMT.ALAW && bitsPerSample === 8) {
    return (b, o) => alawToLinear(b[o]) / 32768;
  }
  throw new Error(`unsupported WAV encoding: format ${format}, ${bitsPerSample} bits`);
}

/** Decodes a WAV to {sampleRate, channels: [Float32Array per channel]}. */
export function decodeWav(buf) {
  const w = parseWav(buf);
  const read = sampleReader(w);
  const bytes = w.bitsPerSample / 8;
  const block = w.blockAlign || bytes * w.channels;
  const frames = Math.floor(w.data.length / block);
  const channels = Array.from({ length: w.channels }, () => new Float32Array(frames));
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < w.channels; c++) channels[c][f] = read(w.data, f * block + c * bytes);
  }
  return { sampleRate: w.sampleRate, channels, format: w.format, bitsPerSample: w.bitsPerSample };
}

/** Averages channels to one. */
export function downmix(channels) {
  if (channels.length === 1) return channels[0];
  const out = new Float32Array(channels[0].length);
  for (const ch of channels) for (let i = 0; i < out.length; i++) out[i] += ch[i];
  for (let i = 0; i < out.length; i++) out[i] /= channels.length;
  return out;
}

/**
 * Resamples with linear interpolation between neighbouring input samples. Simple and
 * good enough for test speech; downsampling does not low-pass first, so content above
 * 4 kHz aliases (telephone audio has none worth keeping).
 */
export function resampleLinear(input, fromRate, toRate) {
  if (fromRate === toRate) return Float32Array.from(input);
  const outLen = Math.floor((input.length * toRate) / fromRate);
  const out = new Float32Array(outLen);
  const step = fromRate / toRate;
  for (let i = 0; i < outLen; i++) {
    const pos = i * step;
    const i0 = Math.floor(pos);
    const frac = pos - i0;
    const a = input[i0];
    const b = i0 + 1 < input.length ? input[i0 + 1] : a;
    out[i] = a + (b - a) * frac;
  }
  return out;
}

/** Floats in [-1, 1] -> mu-law Buffer. */
export function floatToMulaw(samples) {
  const out = Buffer.allocUnsafe(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32768)));
    out[i] = MULAW_ENCODE[s + 32768];
  }
  return out;
}

/** Any supported WAV (Buffer) -> 8 kHz mono mu-law Buffer, as Media Streams carry it. */
export function toMulaw8k(wavBuf) {
  const w = parseWav(wavBuf);
  // Already Twilio's format: pass the bytes through untouched (no decode/encode loss).
  if (w.format === FMT.MULAW && w.sampleRate === SAMPLE_RATE && w.channels === 1) return Buffer.from(w.data);
  const { sampleRate, channels } = decodeWav(wavBuf);
  return floatToMulaw(resampleLinear(downmix(channels), sampleRate, SAMPLE_RATE));
}

export function readWavFile(path) {
  return toMulaw8k(readFileSync(path));
}

// ---------------------------------------------------------------------------------------
// WAV writing.

function riff(fmtBody, extraChunks, data) {
  const chunks = [];
  const chunk = (id, body) => {
    const head = Buffer.alloc(8);
    head.write(id, 0, 'ascii');
    head.writeUInt32LE(body.length, 4);
    chunks.push(head, body);
    if (body.length & 1) chunks.push(Buffer.alloc(1));
  };
  chunk('fmt ', fmtBody);
  for (const [id, body] of extraChunks) chunk(id, body);
  chunk('data', data);
  const body = Buffer.concat(chunks);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'ascii');
  head.writeUInt32LE(4 + body.length, 4);
  head.write('WAVE', 8, 'ascii');
  return Buffer.concat([head, body]);
}

/** mu-law bytes -> WAV (WAVE_FORMAT_MULAW, 8 bits, mono unless told). */
export function encodeWavMulaw(mulaw, { sampleRate = SAMPLE_RATE, channels = 1 } = {}) {
  const fmt = Buffer.alloc(18); // non-PCM formats carry cbSize
  fmt.writeUInt16LE(FMT.MULAW, 0);
  fmt.writeUInt16LE(channels, 2);
  fmt.writeUInt32LE(sampleRate, 4);
  fmt.writeUInt32LE(sampleRate * channels, 8);
  fmt.writeUInt16LE(channels, 12);
  fmt.writeUInt16LE(8, 14);
  fmt.writeUInt16LE(0, 16);
  const fact = Buffer.alloc(4); // required for non-PCM formats: frames per channel
  fact.writeUInt32LE(Math.floor(mulaw.length / channels), 0);
  return riff(fmt, [['fact', fact]], Buffer.from(mulaw));
}

/** Int16 samples (interleaved when channels > 1) -> PCM16 WAV. */
export function encodeWavPcm16(samples, { sampleRate = SAMPLE_RATE, channels = 1 } = {}) {
  const fmt = Buffer.alloc(16);
  fmt.writeUInt16LE(FMT.PCM, 0);
  fmt.writeUInt16LE(channels, 2);
  fmt.writeUInt32LE(sampleRate, 4);
  fmt.writeUInt32LE(sampleRate * channels * 2, 8);
  fmt.writeUInt16LE(channels * 2, 12);
  fmt.writeUInt16LE(16, 14);
  const data = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(samples[i]))), i * 2);
  return riff(fmt, [], data);
}

/** Writes 8 kHz mono mu-law audio as a WAV file, mu-law (default) or PCM16. */
export function writeWavFile(path, mulaw, { encoding = 'mulaw' } = {}) {
  const wav = encoding === 'pcm16' ? encodeWavPcm16(mulawToPcm16(mulaw)) : encodeWavMulaw(mulaw);
  writeFileSync(path, wav);
  return wav.length;
}

// ---------------------------------------------------------------------------------------
// Generators (8 kHz mu-law).

/** A sine tone of `ms` milliseconds at `hz`, amplitude 0..1 of full scale. */
export function tone(ms, hz = 440, amplitude = 0.5) {
  const n = Math.round((ms * SAMPLE_RATE) / 1000);
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) {
    out[i] = MULAW_ENCODE[Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * hz * i) / SAMPLE_RATE)) + 32768];
  }
  return out;
}

/** `ms` milliseconds of mu-law silence. */
export function silence(ms) {
  return Buffer.alloc(Math.round((ms * SAMPLE_RATE) / 1000), MULAW_SILENCE);
}

/** Milliseconds of audio in a mu-law buffer. */
export function durationMs(mulaw) {
  return (mulaw.length * 1000) / SAMPLE_RATE;
}

/** True when every byte is (close to) silence: |sample| <= threshold. */
export function isSilent(mulaw, threshold = 64) {
  for (let i = 0; i < mulaw.length; i++) if (Math.abs(MULAW_DECODE[mulaw[i]]) > threshold) return false;
  return true;
}
