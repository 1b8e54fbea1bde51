// mod_audio_fork's bidirectional streaming buffers (jambonz/freeswitch-modules, lws_glue.cpp):
// what happens to the app's binary audio and marks on the way to the caller.
import { resampleLinear } from './wav.mjs';

export const MAX_MARKS = 30; // lws_glue.cpp: a mark beyond 30 pending is dropped, with no event
export const TICK_MS = 20; // FreeSWITCH's media clock (ptime 20)

const round1 = (x) => Math.round(x * 10) / 10;
export const toInt16 = (f) => Int16Array.from(f, (x) => Math.max(-32768, Math.min(32767, Math.round(x))));

/**
 * A port of lws_glue.cpp's processIncomingBinary (pre-buffer, resampling to the call's codec rate,
 * markers prepended to the next audio) and dub_speech_frame (20 ms ticks: markers found in what is
 * played are reported, killAudio flushes the playout buffer). Marks live in three queues as there:
 * inventory (no audio after them yet), in use (a marker in the buffers), cleared.
 * faithful=true keeps the module's quirks: a marker is the sample value 0xFFFF, so an audio
 * sample of -1 also pops a mark; resampling (bidirectional sampleRate != the call's codec rate)
 * smears the markers away; a killAudio leaves the names of flushed markers in the cleared queue,
 * where they swallow later marks. faithful=false: markers are out of band and named.
 */
export class Playout {
  constructor({ rate, channelRate = 8000, prebuffer = true, faithful = true }) {
    this.rate = rate;
    this.channelRate = channelRate;
    this.faithful = faithful;
    const factor = rate > channelRate ? Math.floor(rate / channelRate) : 1;
    this.factor = factor;
    this.threshold = prebuffer ? 320 * factor * 4 : 0; // elements at `rate`: 160 ms at 8 kHz on an 8 kHz call
    this.nextThreshold = prebuffer ? 320 * factor * 2 : 0;
    this.pre = []; // pre-buffer: Int16Array chunks and markers ({mark, name})
    this.buf = []; // playout buffer at channelRate: {s: Int16Array, o} and markers
    this.inventory = [];
    this.inUse = [];
    this.cleared = [];
    this.killFlag = false;
    this.aside = null; // the odd byte of an odd-length binary frame
    this.dead = new Set(); // faithful=false: names killed or cleared
  }

  get pendingMarks() {
    return this.inventory.length + this.inUse.length;
  }

  /** Buffered audio (pre-buffer and playout buffer), in ms. */
  bufferedMs() {
    const n = (list) => list.reduce((a, x) => a + (x.s ? x.s.length - x.o : x.length || 0), 0);
    return round1((n(this.pre) * 1000) / this.rate + (n(this.buf) * 1000) / this.channelRate);
  }

  /** A mark command: 'queued', or 'dropped' beyond MAX_MARKS. */
  mark(name) {
    if (this.pendingMarks >= MAX_MARKS) return 'dropped';
    this.inventory.push(name);
    return 'queued';
  }

  clearMarks() {
    if (!this.faithful) for (const n of this.inUse) this.dead.add(n);
    this.cleared.push(...this.inUse, ...this.inventory);
    this.inUse = [];
    this.inventory = [];
  }

  killAudio() {
    this.killFlag = true; // acted on by the next tick
  }

  /** A binary frame from the app (processIncomingBinary). */
  binary(buf) {
    let data = this.aside ? Buffer.concat([this.aside, buf]) : buf;
    this.aside = null;
    if (data.length % 2) {
      this.aside = data.subarray(data.length - 1);
      data = data.subarray(0, data.length - 1);
    }
    const samples = new Int16Array(data.length / 2);
    for (let i = 0; i < samples.length; i++) samples[i] = data.readInt16LE(i * 2);
    for (const name of this.inventory) this.pre.push({ mark: true, name, length: 1 });
    this.inUse.push(...this.inventory);
    this.inventory = [];
    if (samples.length) this.pre.push(samples);
    const size = this.pre.reduce((a, x) => a + x.length, 0);
    if (size < this.threshold) return;
    this.threshold = this.nextThreshold;
    // with a downscale factor, what does not divide evenly waits for the next frame
    let keep = size % this.factor;
    const leftover = [];
    while (keep > 0) {
      const last = this.pre[this.pre.length - 1];
      if (last.mark || last.length <= keep) {
        leftover.unshift(this.pre.pop());
        keep -= last.length;
      } else {
        leftover.unshift(last.subarray(last.length - keep));
        this.pre[this.pre.length - 1] = last.subarray(0, last.length - keep);
        keep = 0;
      }
    }
    this.move(this.pre);
    this.pre = leftover;
  }

  move(items) {
    if (this.rate === this.channelRate) {
      for (const x of items) this.buf.push(x.mark ? x : { s: x, o: 0 });
      return;
    }
    // resampled to the call's rate: in the module the markers (-1 samples) go through speex's
    // filter with the audio and do not come out as markers (their names stay in use)
    if (this.faithful) {
      const all = Int16Array.from(items.flatMap((x) => (x.mark ? [] : Array.from(x))));
      this.buf.push({ s: toInt16(resampleLinear(all, this.rate, this.channelRate)), o: 0 });
      return;
    }
    for (const x of items) this.buf.push(x.mark ? x : { s: toInt16(resampleLinear(x, this.rate, this.channelRate)), o: 0 });
  }

  /**
   * One 20 ms frame (dub_speech_frame): {out: Int16Array at channelRate (zeros where nothing
   * played), played: samples of audio played, events: [{name, event: 'playout'|'cleared'}]}.
   */
  tick() {
    const N = (this.channelRate * TICK_MS) / 1000;
    const out = new Int16Array(N);
    const events = [];
    if (this.killFlag) {
      this.killFlag = false;
      this.buf = [];
      const all = [...this.inUse, ...this.inventory];
      for (const name of all) events.push({ name, event: 'cleared' });
      if (all.length) {
        if (this.faithful) this.cleared.push(...this.inUse);
        else for (const n of this.inUse) this.dead.add(n);
        this.inUse = [];
        this.inventory = [];
      }
      return { out, played: 0, events };
    }
    const hasMarkers = this.inUse.length + this.cleared.length > 0 || (!this.faithful && this.buf.some((x) => x.mark));
    let played = 0;
    let taken = 0;
    while (taken < N && this.buf.length) {
      const x = this.buf[0];
      if (x.mark) {
        this.buf.shift();
        taken++;
        // with no mark pending the module copies the marker as a sample (-1)
        if (this.faithful && !hasMarkers) out[played++] = -1;
        else this.markerReached(x, events);
        continue;
      }
      while (taken < N && x.o < x.s.length) {
        const v = x.s[x.o++];
        taken++;
        if (this.faithful && hasMarkers && v === -1) this.markerReached(x, events);
        else out[played++] = v;
      }
      if (x.o >= x.s.length) this.buf.shift();
    }
    if (taken === 0 && !hasMarkers && this.inventory.length) events.push({ name: this.inventory.shift(), event: 'playout' });
    return { out, played, events };
  }

  markerReached(x, events) {
    if (!this.faithful) {
      const i = this.inUse.indexOf(x.name);
      if (i >= 0) this.inUse.splice(i, 1);
      if (this.dead.has(x.name)) this.dead.delete(x.name);
      else if (x.name !== undefined) events.push({ name: x.name, event: 'playout' });
      return;
    }
    const q = this.cleared.length ? this.cleared : this.inUse;
    if (!q.length) return;
    const name = q.shift();
    if (q === this.inUse) events.push({ name, event: 'playout' });
  }
}
