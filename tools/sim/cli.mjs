// switchboard-sim: the command line (tools/switchboard-sim runs it).
//   switchboard-sim call ...     one inbound call against a server, with its timeline
//   switchboard-sim answer ...   a fake Twilio REST API whose calls the simulator answers
//   switchboard-sim load ...     the C load generator (switchboard-sim-load), same arguments
//   switchboard-sim asterisk ... a fake Asterisk (ARI + RTP) and one inbound call through it
//   switchboard-sim jambonz ...  jambonz's feature server and one inbound call against the server
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { simulateCall } from './call.mjs';
import { readWavFile, writeWavFile, tone, silence, durationMs, decodeWav, downmix, resampleLinear, encodeWavPcm16 } from './wav.mjs';
import { EXIT, TimelinePrinter, abbreviate, resultJson, summary, trackStreams, verdict } from './report.mjs';
import { startAnswer, defaultPkiDir } from './answer.mjs';
import { SimAsterisk, AsteriskTimelinePrinter, asteriskResultJson, asteriskSummary, asteriskVerdict, parseDialOutcomes, simulateAsteriskCall } from './asterisk_call.mjs';
import { placeInbound, parseDialOutcomes as parseJambonzOutcomes, SUBPROTOCOL, DRACHTIO_SUBPROTOCOL } from './jambonz.mjs';
import { JambonzTimelinePrinter, jambonzResultJson, jambonzSummary, jambonzVerdict } from './jambonz_report.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');

const MAIN_HELP = `switchboard-sim: plays Twilio's part against a switchboard server, on one machine, with no
Twilio account: webhooks, TwiML, Media Streams, the REST API; or Asterisk's (ARI, RTP); or
jambonz's (webhooks, verbs, the listen WebSocket).

usage: switchboard-sim <command> [options]      (switchboard-sim <command> --help: its options)

commands:
  call     one inbound call, end to end: the signed voice webhook, the TwiML run verb by verb
           (<Connect><Stream> with real Media Streams audio, <Dial> with the outcomes you pick,
           <Say>, <Gather>, <Record>...), status callbacks; prints the call's timeline
  answer   a fake Twilio REST API (Calls.json) for the server's outbound calls
           (POST /api/calls/initiate): each call it is asked to place, it answers and plays
           the callee with the same executor as "call"
  load     many concurrent calls from one process: runs the C load generator
           switchboard-sim-load with the same arguments
  asterisk Asterisk's part instead of Twilio's: a fake Asterisk (ARI REST, events socket,
           ExternalMedia RTP) that switchboard connects to as its Stasis application, then
           one inbound call through it: RTP both ways, DTMF, the transfer targets switchboard
           originates with the outcomes you pick; prints the call's timeline
  jambonz  jambonz's part: its feature server and the caller for one inbound call: the signed
           call hook, the verbs the server answers run as jambonz runs them (say, listen with
           its WebSocket and L16 audio both ways, marks, killAudio; dial with the outcomes you
           pick...), status hooks and actionHooks; prints the call's timeline

exit codes: 0 the call went as asked, 1 it did not (the reason is printed), 2 bad usage,
            3 the server refused the signature (HTTP 403)
`;

const CALL_HELP = `usage: switchboard-sim call [--url URL] [options]

Plays Twilio and the caller for one inbound call: posts the voice webhook Twilio would post
(same parameters, X-Twilio-Signature), runs the TwiML the server answers as Twilio does,
follows every action, and prints the timeline as it happens:
  →  the simulator (Twilio, the caller) to the server     ←  the server to the simulator
  ·  what Twilio does (verbs, simulated outcomes)          ✗  a failure
with a line of stream counters (media frames each way, marks) every second.

the server:
  --url URL              where the server listens (default http://127.0.0.1:8080)
  --public-url URL       its PUBLIC_BASE_URL: requests are signed for that URL and sent to
                         --url (default: $PUBLIC_BASE_URL, else --url)
  --auth-token TOKEN     sign every request with the server's TWILIO_AUTH_TOKEN
                         (default: $TWILIO_AUTH_TOKEN; none: requests are not signed)
  --voice-path PATH      the number's voice webhook (default /twilio/voice)
  --status-callback URL  the number's status callback, absolute or a path on the server
                         (default /twilio/status; "none": no status callbacks)
the call:
  --from NUMBER          the caller (default +14155550100)
  --to NUMBER            the number called (default +14155550199)
  --account-sid AC...    (default AC000...0); --call-sid CA... (default: a new one)
  --audio FILE.wav       what the caller says into <Connect><Stream>: any WAV (rate, depth,
                         channels), converted to 8 kHz mu-law and sent in real time in 20 ms
                         frames; default: 3 s of tones
  --dtmf LIST            key presses DIGIT@TIME, comma-separated, TIME from the start of the
                         call: "0@5s,1@7.5s", "#@1500ms"; each goes to the <Stream> (a dtmf
                         message) or <Gather> running at or after its time
  --dial-outcome LIST    what each <Dial> gets, in order: completed, busy, no-answer, failed,
                         canceled (default: completed); "busy,completed": the first target
                         is busy, the next one answers
  --hangup-after TIME    the caller hangs up this long after the call starts (the stream runs
                         until then unless the server closes it). Without it the caller's
                         stream ends --tail after their audio and last key; Twilio then
                         requests the <Connect action> and the call goes on with its answer
  --tail TIME            (default 1s)
  --speed N              simulated waits (<Say>, <Play>, <Pause>, ringing, the talk after a
                         <Dial> is answered, <Record>) run N times faster (default 1); streams
                         stay in real time
output:
  --save FILE.wav        what the agent said, as the caller heard it (16-bit PCM, 8 kHz)
  --json                 print the result as one JSON object instead of the timeline
  --verbose              also every mark
  --max-duration TIME    hang up and fail a call still running after this long (default 10m)

TIME: 5s, 7.5s, 1500ms, 2m; a bare number is seconds.

The call went as asked (exit 0) when it ended "completed", every request was answered 2xx
(status callbacks too), every --dial-outcome was used by a <Dial> and every --dtmf key
reached the server. Otherwise exit 1 with the reason, or 3 when the server refused the
signature (HTTP 403: check --auth-token and --public-url against the server's
TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL).

examples:
  switchboard-sim call --url http://127.0.0.1:8080 --audio hello.wav --save agent.wav --hangup-after 8s
  switchboard-sim call --url http://127.0.0.1:8080 --public-url https://voice.example.com \\
      --auth-token "$TWILIO_AUTH_TOKEN" --dial-outcome busy,completed --speed 10
`;

const ANSWER_HELP = `usage: switchboard-sim answer [--port N] [options]

A fake Twilio REST API for the server's outbound calls (POST /api/calls/initiate): it takes
Calls.json creates as Twilio does (Basic auth with the account or an API key, Twilio's
validation and error JSON, 201 with the call resource), then plays the call: initiated and
ringing status callbacks, and for --outcome answer the callee: it posts the call's Url (the
server's connect webhook, signed with the account's auth token), runs the TwiML it gets with
the executor of "switchboard-sim call" (a <Connect><Stream> streams --audio, a <Dial> gets
--dial-outcome...), and sends the answered and completed callbacks (with SequenceNumber).
It prints the environment to start the server with, then the timeline of every call.

  --port N               (default 0: a free port)   --host ADDR (default 127.0.0.1)
  --http                 plain HTTP instead of HTTPS
  --pki-dir DIR          where the test CA and certificate live, reused when present
                         (default ${defaultPkiDir()}); give the server TWILIO_CA_FILE=DIR/ca.pem
  --account-sid AC...    the account (default: $TWILIO_ACCOUNT_SID, else a test account)
  --auth-token TOKEN     its auth token, also what webhooks are signed with
                         (default: $TWILIO_AUTH_TOKEN, else the test account's)
  --api-key SK...:SECRET an API key also accepted (repeatable)
  --public-url URL       the server's PUBLIC_BASE_URL (what its Url and StatusCallback start with)
  --server-url URL       where the server really listens; webhooks for --public-url go there
                         (default: the URLs as the server gave them)
  --outcome OUTCOME      answer (default), busy, no-answer, failed
  --ring TIME            pause between call progress steps (default 1s)
  --audio FILE.wav       what the callee says into the stream (default: 3 s of tones)
  --dtmf LIST, --dial-outcome LIST, --speed N, --tail TIME   as for "call"
  --hangup-after TIME    the callee hangs up this long after answering (default: its audio
                         plus --tail); "never": when the TwiML ends
  --save FILE.wav        the agent's audio of each call ({call} in the name: the call sid)
  --calls N              exit after N calls have ended: 0 if all went as asked, else 1
  --timeout TIME         exit 1 if --calls are not done by then
  --json                 JSON lines (listening, every event, every call's end) instead of text
  --verbose              also every mark

A difference from Twilio: a REST update ending the call is recorded and its completed
callback sent, but the callee plays on until its own hang-up.

example:
  switchboard-sim answer --public-url https://voice.example.com --server-url http://127.0.0.1:8080
  # then start the server with the TWILIO_* lines it prints, and POST /api/calls/initiate
`;

const LOAD_HELP = `usage: switchboard-sim load [options of switchboard-sim-load]

Runs the load generator: switchboard-sim load ARGS is exactly switchboard-sim-load ARGS. It
is a C program (tools/sim/load.c, CMake target switchboard-sim-load) that drives many
concurrent simulated calls (signed webhooks, real-time Media Streams) from one event loop,
and reports set-up failures, webhook and per-frame round-trip latency, lost frames, and its
own and the server's CPU and memory.

It is found at $SWITCHBOARD_SIM_LOAD, else as the newest build/*/switchboard-sim-load or
build/switchboard-sim-load of this repository. tools/run.sh builds it (build/release); or:
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF
  cmake --build build/release --target switchboard-sim-load
`;

const ASTERISK_HELP = `usage: switchboard-sim asterisk [--listen HOST:PORT] [options]

Plays Asterisk, the trunk and the caller for one inbound call, on this machine, with no
Asterisk: starts a fake Asterisk (the ARI REST interface, the events WebSocket, a UDP socket
speaking RTP for every ExternalMedia channel), prints the settings to start switchboard with,
waits for switchboard's events socket to register the Stasis application, then delivers one
call to Stasis(app) and prints the timeline as it happens:
  →  the simulator (Asterisk, the caller, the targets) to switchboard: ARI events, RTP
  ←  switchboard to the simulator: its REST requests (with Asterisk's answer), RTP
  ·  what Asterisk does (ringing, simulated outcomes, hang-ups)       ✗  a failure
with a line of RTP counters (packets each way, payload type, jitter) every second.
Start the two in either order: switchboard retries its events socket (at most every 30 s).

the fake Asterisk:
  --listen HOST:PORT     where it listens (default 127.0.0.1:8088); RTP sockets on HOST too
  --username USER        the ARI user (default switchboard)
  --password PASSWORD    its password (default switchboard-sim)
  --app NAME             the Stasis application the call goes to (default switchboard)
  --trunk NAME           the PJSIP trunk the call comes from, ASTERISK_TRUNK (default didww)
  --wait TIME            how long to wait for switchboard to connect (default 60s)
the call:
  --from NUMBER          the caller (default +14155550100)
  --to NUMBER            the number called, the DID (dialplan exten; default +14155550199)
  --audio FILE.wav       what the caller says over RTP: any WAV (rate, depth, channels),
                         converted to 8 kHz mu-law and sent in real time in 20 ms packets from
                         the moment the ExternalMedia channel is bridged; default: 3 s of tones
  --dtmf LIST            key presses DIGIT@TIME, comma-separated, TIME from the start of the
                         call: "0@3s", "1@2s,#@2.5s" (ChannelDtmfReceived on the caller's channel)
  --dial-outcome LIST    what each channel switchboard originates (the transfer targets) does,
                         in order: answer, busy, noanswer (rings for the originate's timeout),
                         failed (congestion), rejected (default: answer); "busy,noanswer,answer"
  --hangup-after TIME    the caller hangs up this long after the call starts. Without it the
                         caller hangs up --tail after their audio and last key, unless a
                         transfer, a prompt or a recording began: then the call ends on its own
                         (an answered target talks 5 s and hangs up, switchboard hangs up after
                         its apology, the caller leaves a 3 s message)
  --tail TIME            (default 1s)
  --speed N              simulated waits (ringing 2 s, a target's talk 5 s, no-answer timeouts,
                         playbacks 2 s, a message 3 s) run N times faster (default 1); RTP stays
                         in real time
output:
  --save FILE.wav        what the agent said, as RTP brought it (16-bit PCM, 8 kHz)
  --json                 print the result as one JSON object (the settings go to stderr)
  --verbose              also every other ARI event (ChannelVarset, Dial, StasisEnd...)
  --max-duration TIME    hang up and fail a call still running after this long (default 10m)

TIME: 5s, 7.5s, 1500ms, 2m; a bare number is seconds.

The call went as asked (exit 0) when switchboard answered it and it ended, every REST
request switchboard made was answered 2xx (a 501 for what the fake does not implement is
only a warning), RTP came back on every ExternalMedia channel that streamed, every --dtmf key
was pressed, every --dial-outcome was used by an originate, and switchboard deleted the
call's bridge and other channels once it ended. Otherwise exit 1 with the reason.

example (two terminals):
  switchboard-sim asterisk --hangup-after 5s --save agent.wav
  ARI_URL=http://127.0.0.1:8088 ARI_USERNAME=switchboard ARI_PASSWORD=switchboard-sim \\
      RTP_ADDRESS=127.0.0.1 ASTERISK_TRUNK=didww tools/run.sh
`;

const JAMBONZ_HELP = `usage: switchboard-sim jambonz [--url URL] [options]

Plays jambonz (its feature server and FreeSWITCH's mod_audio_fork) and the caller for one inbound
call: posts the call hook jambonz would post (JSON, snake_case, Jambonz-Signature), checks the
answer with @jambonz/verb-specifications as jambonz does (a refused answer: SIP 480 to the
caller), runs the verbs in order (say, pause, listen, dial, sip:decline, sip:refer, redirect,
hangup...), posts status hooks and actionHooks, and prints the timeline as it happens:
  →  the simulator (jambonz, the caller) to the server     ←  the server to the simulator
  ·  what jambonz does (verbs, simulated outcomes)          ✗  a failure
with a line of listen counters (frames each way, audio played, marks pending) every second.

the server:
  --url URL              where the server listens (default http://127.0.0.1:8080)
  --secret S             the webhook secret: every hook is signed with it
                         (default: $JAMBONZ_WEBHOOK_SECRET; none: hooks are not signed)
  --call-hook PATH       the application's call hook (default /jambonz/call)
  --status-hook PATH     its call status hook (default /jambonz/status; "none": none)
the call:
  --from NUMBER          the caller (default +14155550100)
  --to NUMBER            the number called (default +14155550199)
  --wav FILE.wav         what the caller says in the first listen: any WAV (rate, depth,
                         channels), converted to the line's rate and sent in real time
  --tone                 three tones, 3 s (the default)
  --rate 8000|16000      the caller's line: 8000 (G.711, the default) or 16000 (wideband); the
                         listen gets L16 at the rate its verb asks, resampled as FreeSWITCH does
  --dtmf LIST            key presses DIGIT@TIME, comma-separated, TIME from the start of the
                         call: "1@3s,#@4.5s"; each goes to the listen running then (passDtmf)
  --dial-outcomes LIST   what each dial target does, in order: completed, busy, no-answer
                         (rings until the dial's timeout), failed (default: completed)
  --hangup-after TIME    the caller hangs up this long after the call starts. Without it the
                         caller hangs up --tail after their audio and last key while a listen
                         runs; a transfer or a message ends on its own (an answered target
                         talks 5 s)
  --tail TIME            (default 1s)
  --speed N              simulated waits (say, pause, ringing, talk, dial timeouts) run N times
                         faster (default 1); the listen's audio stays in real time
  --frame-ms N           caller audio per WebSocket frame (default 20: what mod_audio_fork
                         sends, one 20 ms packet a frame)
  --subprotocol NAME     ${SUBPROTOCOL} (default) or ${DRACHTIO_SUBPROTOCOL}
output:
  --save FILE.wav        what the caller heard (16-bit PCM at the line's rate)
  --json                 print the result as one JSON object instead of the timeline
  --verbose              also every mark, status response and internal event
  --max-duration TIME    hang up and fail a call still running after this long (default 10m)

TIME: 5s, 7.5s, 1500ms, 2m; a bare number is seconds.

The call went as asked (exit 0) when it was answered and ended, every hook was answered 2xx
with valid JSON (status hooks too), every listen connected and got audio back when it streams,
every --dtmf key reached a listen, and every --dial-outcome was used by a dial target.
Otherwise exit 1 with the reason, or 3 when the server refused the call hook with 401/403
(check --secret).

example:
  switchboard-sim jambonz --url http://127.0.0.1:8080 --secret "$JAMBONZ_WEBHOOK_SECRET" \\
      --wav hello.wav --dtmf 0@4s --dial-outcomes busy,completed --speed 5 --save agent.wav
`;

// ---- values ------------------------------------------------------------------------------

class UsageError extends Error {}

/** "5s", "7.5s", "1500ms", "2m", "5" (seconds) -> ms. */
export function parseDuration(s, name = 'time') {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*$/.exec(String(s));
  if (!m) throw new UsageError(`${name}: not a time: ${JSON.stringify(s)} (examples: 5s, 7.5s, 1500ms, 2m)`);
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' || m[2] === 'min' ? n * 60000 : n * 1000);
}

/** "0@5s,1@7.5s" -> [{digit, atMs}]. */
export function parseDtmf(s) {
  if (s === undefined) return [];
  return String(s)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      const m = /^([0-9*#A-Da-d])@(.+)$/.exec(x);
      if (!m) throw new UsageError(`--dtmf: ${JSON.stringify(x)} is not DIGIT@TIME (e.g. 0@5s)`);
      return { digit: m[1].toUpperCase(), atMs: parseDuration(m[2], '--dtmf') };
    });
}

const OUTCOMES = ['completed', 'busy', 'no-answer', 'failed', 'canceled'];
export function parseOutcomes(s) {
  if (s === undefined) return [];
  const list = String(s).split(',').map((x) => x.trim()).filter(Boolean).map((x) => (x === 'answered' ? 'completed' : x));
  for (const x of list) if (!OUTCOMES.includes(x)) throw new UsageError(`--dial-outcome: ${JSON.stringify(x)} is not one of ${OUTCOMES.join(', ')}`);
  return list;
}

function parseUrl(s, name) {
  let u;
  try {
    u = new URL(s);
  } catch {
    throw new UsageError(`${name}: not a URL: ${JSON.stringify(s)}`);
  }
  if (!/^https?:$/.test(u.protocol)) throw new UsageError(`${name}: must be http:// or https://, not ${u.protocol}`);
  return String(s).replace(/\/+$/, '');
}

function parseSpeed(s) {
  if (s === undefined) return 1;
  const n = Number(s);
  if (!(n > 0)) throw new UsageError(`--speed: not a positive number: ${JSON.stringify(s)}`);
  return n;
}

// What the caller says when no --audio is given: three "words" of tone, 3 s in all.
export function defaultCallerAudio() {
  return Buffer.concat([tone(600, 350, 0.4), silence(200), tone(800, 440, 0.4), silence(400), tone(1000, 523, 0.4)]);
}

function readAudio(path) {
  if (path === undefined) return { audio: defaultCallerAudio(), label: `${durationMs(defaultCallerAudio()) / 1000} s of tones` };
  try {
    const audio = readWavFile(path);
    return { audio, label: `${path} (${durationMs(audio) / 1000} s)` };
  } catch (e) {
    throw new UsageError(`--audio ${path}: ${e.message}`);
  }
}

function parse(args, options) {
  try {
    return parseArgs({ args, options: { help: { type: 'boolean', short: 'h' }, ...options }, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError(e.message);
  }
}

// node loads its fetch and compiles its HTTP parser on first use (~80 ms): done here, against
// a throw-away local server, before the call's clock starts, so that the first request's time
// in the timeline is not mostly node's.
async function warmUp() {
  const srv = createServer((req, res) => req.resume().on('end', () => res.end('<Response/>')));
  try {
    await new Promise((res, rej) => srv.listen(0, '127.0.0.1', res).once('error', rej));
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`http://127.0.0.1:${srv.address().port}/`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'CallSid=CA0&CallStatus=ringing' });
      await r.text();
    }
  } catch {
  } finally {
    srv.close();
    srv.closeAllConnections?.();
  }
}

const out = (s = '') => process.stdout.write(s + '\n');
const err = (s = '') => process.stderr.write(s + '\n');

// ---- call --------------------------------------------------------------------------------

async function cmdCall(args) {
  const v = parse(args, {
    url: { type: 'string' },
    'public-url': { type: 'string' },
    'auth-token': { type: 'string' },
    'voice-path': { type: 'string' },
    'status-callback': { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    'account-sid': { type: 'string' },
    'call-sid': { type: 'string' },
    audio: { type: 'string' },
    save: { type: 'string' },
    dtmf: { type: 'string' },
    'dial-outcome': { type: 'string' },
    'hangup-after': { type: 'string' },
    tail: { type: 'string' },
    speed: { type: 'string' },
    json: { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
    'max-duration': { type: 'string' },
  });
  if (v.help) return out(CALL_HELP.trimEnd()), EXIT.OK;
  const url = parseUrl(v.url || 'http://127.0.0.1:8080', '--url');
  const publicUrl = v['public-url'] !== undefined ? parseUrl(v['public-url'], '--public-url') : process.env.PUBLIC_BASE_URL ? parseUrl(process.env.PUBLIC_BASE_URL, 'PUBLIC_BASE_URL') : url;
  const authToken = v['auth-token'] ?? (process.env.TWILIO_AUTH_TOKEN || undefined);
  const statusCallback = v['status-callback'] === undefined ? '/twilio/status' : ['none', ''].includes(v['status-callback']) ? undefined : v['status-callback'];
  const dtmf = parseDtmf(v.dtmf);
  const dialOutcomes = parseOutcomes(v['dial-outcome']);
  const hangupAfterMs = v['hangup-after'] !== undefined ? parseDuration(v['hangup-after'], '--hangup-after') : undefined;
  const { audio, label } = readAudio(v.audio);
  const speed = parseSpeed(v.speed);

  trackStreams();
  await warmUp();
  const printer = v.json ? null : new TimelinePrinter({ publicBase: publicUrl, verbose: v.verbose });
  if (printer) {
    const as = publicUrl !== url ? ` as ${publicUrl}` : '';
    out(`switchboard-sim call: ${url}${as}, ${authToken ? 'signed with the auth token' : 'unsigned (no --auth-token)'}; caller audio ${label}`);
  }
  const r = await simulateCall({
    url,
    publicUrl,
    authToken,
    from: v.from || '+14155550100',
    to: v.to || '+14155550199',
    accountSid: v['account-sid'],
    callSid: v['call-sid'],
    voicePath: v['voice-path'] || '/twilio/voice',
    audio,
    dtmf,
    dialOutcomes,
    hangupAfterMs,
    streamAutoStop: hangupAfterMs === undefined,
    streamTailMs: v.tail !== undefined ? parseDuration(v.tail, '--tail') : 1000,
    speed,
    statusCallback,
    maxDurationMs: v['max-duration'] !== undefined ? parseDuration(v['max-duration'], '--max-duration') : 600000,
    onEvent: printer ? (e) => printer.event(e) : undefined,
  });
  if (printer) printer.close();
  const verd = verdict(r, { authToken, publicUrl: v['public-url'] ?? process.env.PUBLIC_BASE_URL, url, dtmf, dialOutcomes });
  let saved = null;
  if (v.save) {
    try {
      writeWavFile(v.save, r.agentAudioWithGaps, { encoding: 'pcm16' });
      saved = `${v.save} (${Math.round(r.agentAudioWithGaps.length / 8) / 1000} s${r.agentAudio.length ? '' : ': the agent said nothing'})`;
    } catch (e) {
      err(`switchboard-sim: --save ${v.save}: ${e.message}`);
    }
  }
  if (v.json) {
    out(JSON.stringify(resultJson(r, verd, { saved: v.save && saved ? v.save : null }), null, 2));
    if (!verd.ok) err(`switchboard-sim call: FAILED: ${verd.reason}${verd.hints.map((h) => '\n  ' + h).join('')}`);
  } else {
    out('');
    const lines = summary(r, verd, { saved });
    const n = verd.ok ? lines.length : lines.length - 1 - verd.hints.length;
    for (const l of lines.slice(0, n)) out(l);
    for (const l of lines.slice(n)) err(l);
  }
  return verd.exitCode;
}

// ---- answer ------------------------------------------------------------------------------

async function cmdAnswer(args) {
  const v = parse(args, {
    port: { type: 'string' },
    host: { type: 'string' },
    http: { type: 'boolean' },
    'pki-dir': { type: 'string' },
    'account-sid': { type: 'string' },
    'auth-token': { type: 'string' },
    'api-key': { type: 'string', multiple: true },
    'public-url': { type: 'string' },
    'server-url': { type: 'string' },
    outcome: { type: 'string' },
    ring: { type: 'string' },
    audio: { type: 'string' },
    dtmf: { type: 'string' },
    'dial-outcome': { type: 'string' },
    speed: { type: 'string' },
    tail: { type: 'string' },
    'hangup-after': { type: 'string' },
    save: { type: 'string' },
    calls: { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
  });
  if (v.help) return out(ANSWER_HELP.trimEnd()), EXIT.OK;
  const port = v.port === undefined ? 0 : Number(v.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: not a port number: ${v.port}`);
  const outcome = v.outcome || 'answer';
  if (!['answer', 'busy', 'no-answer', 'failed'].includes(outcome)) throw new UsageError(`--outcome: answer, busy, no-answer or failed, not ${JSON.stringify(outcome)}`);
  const accountSid = v['account-sid'] || process.env.TWILIO_ACCOUNT_SID || undefined;
  if (accountSid && !/^AC[0-9a-fA-F]{32}$/.test(accountSid)) throw new UsageError(`--account-sid: AC followed by 32 hex digits, not ${JSON.stringify(accountSid)}`);
  const authToken = v['auth-token'] || process.env.TWILIO_AUTH_TOKEN || undefined;
  const apiKeys = (v['api-key'] || []).map((k) => {
    const i = k.indexOf(':');
    if (i < 0 || !/^SK/.test(k)) throw new UsageError(`--api-key: SK...:SECRET, not ${JSON.stringify(k)}`);
    return { sid: k.slice(0, i), secret: k.slice(i + 1) };
  });
  const calls = v.calls !== undefined ? Number(v.calls) : null;
  if (calls !== null && !(Number.isInteger(calls) && calls > 0)) throw new UsageError(`--calls: a positive whole number, not ${JSON.stringify(v.calls)}`);
  const { audio, label } = readAudio(v.audio);
  const hangupAfter = v['hangup-after'];

  trackStreams();
  await warmUp();
  const a = await startAnswer({
    accountSid,
    authToken,
    apiKeys,
    tls: !v.http,
    pkiDir: v['pki-dir'],
    port,
    host: v.host || '127.0.0.1',
    outcome,
    ringMs: v.ring !== undefined ? parseDuration(v.ring, '--ring') : 1000,
    publicUrl: v['public-url'] !== undefined ? parseUrl(v['public-url'], '--public-url') : undefined,
    serverUrl: v['server-url'] !== undefined ? parseUrl(v['server-url'], '--server-url') : undefined,
    audio,
    dtmf: parseDtmf(v.dtmf),
    dialOutcomes: parseOutcomes(v['dial-outcome']),
    speed: parseSpeed(v.speed),
    tailMs: v.tail !== undefined ? parseDuration(v.tail, '--tail') : 1000,
    hangupAfterMs: hangupAfter === undefined ? undefined : hangupAfter === 'never' ? null : parseDuration(hangupAfter, '--hangup-after'),
    save: v.save,
  });
  const startedAt = Date.now();
  const env = {
    TWILIO_API_BASE: a.url,
    ...(a.caFile ? { TWILIO_CA_FILE: a.caFile } : {}),
    TWILIO_ACCOUNT_SID: a.accountSid,
    TWILIO_AUTH_TOKEN: a.authToken,
  };
  if (v.json) {
    out(JSON.stringify({ type: 'listening', url: a.url, caFile: a.caFile || null, accountSid: a.accountSid, authToken: a.authToken, outcome, env }));
  } else {
    out(`switchboard-sim answer: a fake Twilio REST API at ${a.url}`);
    out('start the server with:');
    for (const [k, val] of Object.entries(env)) out(`  ${k}=${val}`);
    out(`  TWILIO_PHONE_NUMBER=<any E.164 number>${v['public-url'] ? `  PUBLIC_BASE_URL=${v['public-url']}` : ''}`);
    const hang = a.hangupAfterMs == null ? 'when the TwiML ends' : `${a.hangupAfterMs / 1000} s after answering`;
    out(outcome === 'answer' ? `calls are answered; the callee says ${label} and hangs up ${hang}` : `calls end ${outcome}`);
    out(calls ? `exits after ${calls} call(s)` : 'Ctrl-C to stop');
    out('');
  }

  const printers = new Map();
  const printerFor = (sid) => {
    if (!printers.has(sid)) printers.set(sid, new TimelinePrinter({ publicBase: v['public-url'] || null, prefix: sid ? `[${abbreviate(sid).slice(0, 10)}] ` : '', verbose: v.verbose, callSid: sid, role: 'callee' }));
    const p = printers.get(sid);
    if (sid) p.callSid = sid;
    return p;
  };
  a.on('event', ({ callSid, entry }) => {
    const t = entry.t ?? Date.now() - startedAt;
    if (v.json) return out(JSON.stringify({ type: 'event', callSid, ...entry, t }));
    printerFor(callSid).event({ ...entry, t });
  });

  let ended = 0;
  let failed = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  a.on('call-ended', (x) => {
    ended++;
    if (!x.ok) failed++;
    const p = printers.get(x.callSid);
    if (p) p.close();
    printers.delete(x.callSid);
    if (v.json) {
      const { timeline, ...result } = x.result ? resultJson(x.result, x.verdict) : {};
      out(JSON.stringify({ type: 'call-ended', callSid: x.callSid, status: x.status, ok: x.ok, reason: x.verdict.reason, hints: x.verdict.hints, saved: x.saved, result: x.result ? result : null, webhooks: x.call.webhooks.map((w) => ({ kind: w.kind, url: w.url, status: w.status, params: w.params })) }));
    } else {
      const prefix = `[${abbreviate(x.callSid).slice(0, 10)}] `;
      const lines = x.result ? summary(x.result, x.verdict, { saved: x.saved }) : [`call ${x.callSid}: ${x.status}`, x.ok ? `result: ${x.verdict.reason}` : `result: FAILED: ${x.verdict.reason}`, ...x.verdict.hints.map((h) => '  ' + h)];
      lines[0] = lines[0].replace(/^call (\S+): \S+,/, `call $1: ${x.status},`);
      out('');
      for (const l of lines) (x.ok ? out : err)(prefix + l);
      out('');
    }
    if (calls !== null && ended >= calls) finish(failed ? EXIT.FAILED : EXIT.OK);
  });
  const onSignal = () => finish(failed ? EXIT.FAILED : EXIT.OK);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let timer = null;
  if (v.timeout !== undefined) {
    const ms = parseDuration(v.timeout, '--timeout');
    timer = setTimeout(() => {
      err(`switchboard-sim answer: --timeout: ${ended} of ${calls ?? '?'} call(s) ended in ${ms / 1000} s`);
      finish(EXIT.FAILED);
    }, ms);
  }
  const code = await finished;
  clearTimeout(timer);
  for (const p of printers.values()) p.close();
  await a.close();
  return code;
}

// ---- asterisk ----------------------------------------------------------------------------

function parseListen(s) {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(String(s)) || /^()()(\d+)$/.exec(String(s));
  if (!m || Number(m[3]) > 65535) throw new UsageError(`--listen: HOST:PORT (127.0.0.1:8088) or PORT, not ${JSON.stringify(s)}`);
  return { host: m[1] || m[2] || '127.0.0.1', port: Number(m[3]) };
}

async function cmdAsterisk(args) {
  const v = parse(args, {
    listen: { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    app: { type: 'string' },
    trunk: { type: 'string' },
    wait: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    audio: { type: 'string' },
    save: { type: 'string' },
    dtmf: { type: 'string' },
    'dial-outcome': { type: 'string' },
    'hangup-after': { type: 'string' },
    tail: { type: 'string' },
    speed: { type: 'string' },
    json: { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
    'max-duration': { type: 'string' },
  });
  if (v.help) return out(ASTERISK_HELP.trimEnd()), EXIT.OK;
  const { host, port } = parseListen(v.listen ?? '127.0.0.1:8088');
  const username = v.username ?? 'switchboard';
  const password = v.password ?? 'switchboard-sim';
  const app = v.app ?? 'switchboard';
  const trunk = v.trunk ?? 'didww';
  if (!username || username.includes(':')) throw new UsageError('--username: not empty, no ":"');
  if (!password) throw new UsageError('--password: not empty');
  for (const [k, x] of [['--app', app], ['--trunk', trunk]]) if (!/^[A-Za-z0-9._-]{1,64}$/.test(x)) throw new UsageError(`${k}: letters, digits, ".", "_" or "-", not ${JSON.stringify(x)}`);
  const waitMs = v.wait !== undefined ? parseDuration(v.wait, '--wait') : 60000;
  const dtmf = parseDtmf(v.dtmf);
  let dialOutcomes;
  try {
    dialOutcomes = parseDialOutcomes(v['dial-outcome']);
  } catch (e) {
    throw new UsageError(`--dial-outcome: ${e.message}`);
  }
  const hangupAfterMs = v['hangup-after'] !== undefined ? parseDuration(v['hangup-after'], '--hangup-after') : undefined;
  const { audio, label } = readAudio(v.audio);
  const speed = parseSpeed(v.speed);
  const info = v.json ? err : out; // with --json, stdout is the result alone

  const fake = new SimAsterisk({ host, port, username, password, app, trunk, speed, dialOutcomes, rtp: { bindHost: ['0.0.0.0', '::'].includes(host) ? '127.0.0.1' : host } });
  try {
    await fake.start();
  } catch (e) {
    err(`switchboard-sim asterisk: cannot listen on ${host}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use (a real Asterisk, or another simulator?); pick another with --listen' : e.message}`);
    return EXIT.FAILED;
  }
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const env = {
    ARI_URL: `http://${urlHost}:${fake.port}`,
    ARI_USERNAME: username,
    ARI_PASSWORD: password,
    ARI_APP: app,
    RTP_ADDRESS: host === '0.0.0.0' ? '127.0.0.1' : host,
    ASTERISK_TRUNK: trunk,
  };
  info(`switchboard-sim asterisk: a fake Asterisk (ARI) at ${env.ARI_URL}; caller audio ${label}`);
  info('start the server with:');
  info('  ' + Object.entries(env).map(([k, x]) => `${k}=${x}`).join(' '));
  info(`waiting up to ${round(waitMs / 1000)} s for switchboard to register the Stasis application ${app}...`);

  // Connection attempts while waiting: refused ones are explained once each.
  let seen = 0;
  const explained = new Set();
  const watchConnections = () => {
    for (; seen < fake.connections.length; seen++) {
      const c = fake.connections[seen];
      let why = null;
      if (c.status === 401) why = `an events socket was refused: user ${JSON.stringify(c.auth?.user ?? '')} with a wrong password (or no such user): start switchboard with ARI_USERNAME=${username} ARI_PASSWORD=${password}`;
      else if (c.status !== 101) why = `an events socket was refused: HTTP ${c.status}`;
      else if (!c.apps.includes(app)) why = `switchboard registered the application ${c.apps.join(',')}, the call goes to ${app}: start switchboard with ARI_APP=${app} or pass --app ${c.apps[0]}`;
      if (why && !explained.has(why)) {
        explained.add(why);
        err(`switchboard-sim asterisk: ${why}`);
      }
    }
  };
  const t0 = Date.now();
  let registered = false;
  while (Date.now() - t0 < waitMs) {
    watchConnections();
    if (fake.appRegistered(app)) {
      registered = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  watchConnections();
  let code;
  if (!registered) {
    const reason = `switchboard did not register the application ${app} within ${round(waitMs / 1000)} s`;
    const hints = [`start it with ${Object.entries(env).map(([k, x]) => `${k}=${x}`).join(' ')}`, 'or give it longer with --wait'];
    if (v.json) out(JSON.stringify({ ok: false, exitCode: EXIT.FAILED, reason, hints, env }, null, 2));
    err(`result: FAILED: ${reason}`);
    for (const h of hints) err('  ' + h);
    code = EXIT.FAILED;
  } else {
    const conn = [...fake.connections].reverse().find((c) => c.status === 101 && c.apps.includes(app));
    info(`switchboard connected: events socket for ${app} (user ${conn?.auth?.user ?? '?'}) after ${round((Date.now() - t0) / 1000)} s`);
    info('');
    const printer = v.json ? null : new AsteriskTimelinePrinter({ verbose: v.verbose });
    const r = await simulateAsteriskCall({
      fake,
      from: v.from || '+14155550100',
      to: v.to || '+14155550199',
      audio,
      dtmf,
      hangupAfterMs,
      tailMs: v.tail !== undefined ? parseDuration(v.tail, '--tail') : 1000,
      speed,
      maxDurationMs: v['max-duration'] !== undefined ? parseDuration(v['max-duration'], '--max-duration') : 600000,
      onEvent: printer ? (e) => printer.event(e) : undefined,
    });
    const verd = asteriskVerdict(r, { dtmf, dialOutcomes });
    let saved = null;
    if (v.save) {
      try {
        writeWavFile(v.save, r.agentAudio, { encoding: 'pcm16' });
        saved = `${v.save} (${round(r.agentAudio.length / 8000)} s${r.legs.some((l) => l.agentAudioMs > 0) ? '' : ': the agent said nothing'})`;
      } catch (e) {
        err(`switchboard-sim: --save ${v.save}: ${e.message}`);
      }
    }
    if (v.json) {
      out(JSON.stringify(asteriskResultJson(r, verd, { env, saved: saved ? v.save : null }), null, 2));
      if (!verd.ok) err(`switchboard-sim asterisk: FAILED: ${verd.reason}${verd.hints.map((h) => '\n  ' + h).join('')}`);
    } else {
      out('');
      const lines = asteriskSummary(r, verd, { saved });
      const n = verd.ok ? lines.length : lines.length - 1 - verd.hints.length;
      for (const l of lines.slice(0, n)) out(l);
      for (const l of lines.slice(n)) err(l);
    }
    code = verd.exitCode;
  }
  await fake.stop();
  return code;
}

const round = (x) => Math.round(x * 1000) / 1000;

// ---- jambonz -----------------------------------------------------------------------------

async function cmdJambonz(args) {
  const v = parse(args, {
    url: { type: 'string' },
    secret: { type: 'string' },
    'call-hook': { type: 'string' },
    'status-hook': { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    wav: { type: 'string' },
    tone: { type: 'boolean' },
    rate: { type: 'string' },
    dtmf: { type: 'string' },
    'dial-outcomes': { type: 'string' },
    'dial-outcome': { type: 'string' },
    'hangup-after': { type: 'string' },
    tail: { type: 'string' },
    speed: { type: 'string' },
    'frame-ms': { type: 'string' },
    subprotocol: { type: 'string' },
    save: { type: 'string' },
    json: { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
    'max-duration': { type: 'string' },
  });
  if (v.help) return out(JAMBONZ_HELP.trimEnd()), EXIT.OK;
  const url = parseUrl(v.url || 'http://127.0.0.1:8080', '--url');
  const secret = v.secret ?? (process.env.JAMBONZ_WEBHOOK_SECRET || undefined);
  const rate = v.rate === undefined ? 8000 : Number(v.rate);
  if (![8000, 16000].includes(rate)) throw new UsageError(`--rate: 8000 or 16000, not ${JSON.stringify(v.rate)}`);
  if (v.wav !== undefined && v.tone) throw new UsageError('--wav or --tone, not both');
  let audio;
  let label;
  if (v.wav === undefined) {
    audio = defaultCallerAudio();
    label = `${durationMs(audio) / 1000} s of tones`;
  } else {
    try {
      // G.711 on an 8 kHz line (mu-law, as the carrier brings it); 16-bit PCM on a wideband one
      if (rate === 8000) audio = readWavFile(v.wav);
      else {
        const w = decodeWav(readFileSync(v.wav));
        audio = { pcm: Int16Array.from(resampleLinear(downmix(w.channels), w.sampleRate, rate), (x) => Math.max(-32768, Math.min(32767, Math.round(x * 32768)))), sampleRate: rate };
      }
    } catch (e) {
      throw new UsageError(`--wav ${v.wav}: ${e.message}`);
    }
    label = `${v.wav} (${round(Buffer.isBuffer(audio) ? durationMs(audio) / 1000 : audio.pcm.length / rate)} s)`;
  }
  const outcomesArg = v['dial-outcomes'] ?? v['dial-outcome'];
  let dialOutcomes;
  try {
    dialOutcomes = parseJambonzOutcomes(outcomesArg);
  } catch (e) {
    throw new UsageError(`--dial-outcomes: ${e.message}`);
  }
  const dtmf = parseDtmf(v.dtmf);
  const hangupAfterMs = v['hangup-after'] !== undefined ? parseDuration(v['hangup-after'], '--hangup-after') : undefined;
  const frameMs = v['frame-ms'] === undefined ? 20 : Number(v['frame-ms']);
  if (!(frameMs >= 1 && frameMs <= 1000)) throw new UsageError(`--frame-ms: 1 to 1000, not ${JSON.stringify(v['frame-ms'])}`);
  const subprotocol = v.subprotocol ?? SUBPROTOCOL;
  if (![SUBPROTOCOL, DRACHTIO_SUBPROTOCOL].includes(subprotocol)) throw new UsageError(`--subprotocol: ${SUBPROTOCOL} or ${DRACHTIO_SUBPROTOCOL}`);
  const statusHook = v['status-hook'] === undefined ? '/jambonz/status' : ['none', ''].includes(v['status-hook']) ? null : v['status-hook'];

  await warmUp();
  const printer = v.json ? null : new JambonzTimelinePrinter({ verbose: v.verbose });
  if (printer) out(`switchboard-sim jambonz: ${url}, ${secret ? 'hooks signed with the secret' : 'hooks unsigned (no --secret)'}; caller audio ${label} on a ${rate} Hz line`);
  const call = placeInbound({
    base: url,
    callHook: v['call-hook'] || '/jambonz/call',
    statusHook,
    secret,
    from: v.from || '+14155550100',
    to: v.to || '+14155550199',
    audio,
    channelRate: rate,
    dtmf,
    dialOutcomes,
    hangupAfterMs,
    autoHangupTailMs: hangupAfterMs === undefined ? (v.tail !== undefined ? parseDuration(v.tail, '--tail') : 1000) : undefined,
    speed: parseSpeed(v.speed),
    frameMs,
    subprotocol,
    maxDurationMs: v['max-duration'] !== undefined ? parseDuration(v['max-duration'], '--max-duration') : 600000,
    onEvent: printer ? (e) => printer.event(e) : undefined,
  });
  const r = await call.done;
  const verd = jambonzVerdict(r, { dtmf, dialOutcomes });
  let saved = null;
  if (v.save) {
    try {
      writeFileSync(v.save, encodeWavPcm16(r.heardAudio, { sampleRate: r.heardAudioRate }));
      saved = `${v.save} (${round(r.heardAudio.length / r.heardAudioRate)} s${r.agentAudio.length ? '' : ': the agent said nothing'})`;
    } catch (e) {
      err(`switchboard-sim: --save ${v.save}: ${e.message}`);
    }
  }
  if (v.json) {
    out(JSON.stringify(jambonzResultJson(r, verd, { saved: saved ? v.save : null }), null, 2));
    if (!verd.ok) err(`switchboard-sim jambonz: FAILED: ${verd.reason}${verd.hints.map((h) => '\n  ' + h).join('')}`);
  } else {
    out('');
    const lines = jambonzSummary(r, verd, { saved });
    const n = verd.ok ? lines.length : lines.length - 1 - verd.hints.length;
    for (const l of lines.slice(0, n)) out(l);
    for (const l of lines.slice(n)) err(l);
  }
  return verd.exitCode;
}

// ---- load --------------------------------------------------------------------------------

/** The load generator: $SWITCHBOARD_SIM_LOAD, else the newest build/switchboard-sim-load or build/x/switchboard-sim-load. */
export function findLoadBinary() {
  if (process.env.SWITCHBOARD_SIM_LOAD) return process.env.SWITCHBOARD_SIM_LOAD;
  const build = join(REPO, 'build');
  const candidates = [join(build, 'switchboard-sim-load')];
  try {
    for (const d of readdirSync(build)) candidates.push(join(build, d, 'switchboard-sim-load'));
  } catch {}
  let best = null;
  for (const c of candidates) {
    try {
      const st = statSync(c);
      if (st.isFile() && (!best || st.mtimeMs > best.mtime)) best = { path: c, mtime: st.mtimeMs };
    } catch {}
  }
  return best ? best.path : null;
}

async function cmdLoad(args) {
  const bin = findLoadBinary();
  if (args.includes('--help') || args.includes('-h')) {
    out(LOAD_HELP.trimEnd());
    out('');
    if (bin && existsSync(bin)) {
      out(`found: ${bin}; its own help:`);
      out('');
      const r = spawnSync(bin, ['--help'], { encoding: 'utf8' });
      process.stdout.write(r.stdout || '');
      process.stderr.write(r.stderr || '');
    } else {
      out('not built yet (see above).');
    }
    return EXIT.OK;
  }
  if (!bin || !existsSync(bin)) {
    err(`switchboard-sim load: ${bin ? `${bin} does not exist` : 'the load generator switchboard-sim-load is not built'}.`);
    err('build it: cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF && cmake --build build/release --target switchboard-sim-load');
    err('or point SWITCHBOARD_SIM_LOAD at it.');
    return EXIT.USAGE;
  }
  // (tools/switchboard-sim execs it directly; this path is for `node tools/sim/cli.mjs load`.)
  const child = spawn(bin, args, { stdio: 'inherit' });
  const forward = (sig) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((res) => child.on('exit', (code, signal) => res(code ?? (signal ? 128 + (signal === 'SIGINT' ? 2 : 15) : 1))));
}

// ---- main --------------------------------------------------------------------------------

export async function main(argv) {
  const [cmd, ...args] = argv;
  // `switchboard-sim call ... | head`: a closed stdout ends the output, not the call
  process.stdout.on('error', (e) => {
    if (e.code !== 'EPIPE') throw e;
  });
  try {
    switch (cmd) {
      case 'call':
        return await cmdCall(args);
      case 'answer':
        return await cmdAnswer(args);
      case 'load':
        return await cmdLoad(args);
      case 'asterisk':
        return await cmdAsterisk(args);
      case 'jambonz':
        return await cmdJambonz(args);
      case 'help':
        if (args[0] === 'call') return out(CALL_HELP.trimEnd()), EXIT.OK;
        if (args[0] === 'answer') return out(ANSWER_HELP.trimEnd()), EXIT.OK;
        if (args[0] === 'load') return cmdLoad(['--help']);
        if (args[0] === 'asterisk') return out(ASTERISK_HELP.trimEnd()), EXIT.OK;
        if (args[0] === 'jambonz') return out(JAMBONZ_HELP.trimEnd()), EXIT.OK;
        return out(MAIN_HELP.trimEnd()), EXIT.OK;
      case undefined:
      case '-h':
      case '--help':
        out(MAIN_HELP.trimEnd());
        return cmd ? EXIT.OK : EXIT.USAGE;
      default:
        err(`switchboard-sim: unknown command ${JSON.stringify(cmd)}\n`);
        err(MAIN_HELP.trimEnd());
        return EXIT.USAGE;
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`switchboard-sim ${cmd}: ${e.message}`);
      err(`(switchboard-sim ${cmd} --help for the options)`);
      return EXIT.USAGE;
    }
    err(`switchboard-sim ${cmd}: ${e.stack || e.message}`);
    return EXIT.FAILED;
  }
}

const invoked = (() => {
  try {
    return process.argv[1] && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
  } catch {
    return false;
  }
})();
if (invoked) {
  main(process.argv.slice(2)).then((code) => process.exit(code ?? 0));
}
