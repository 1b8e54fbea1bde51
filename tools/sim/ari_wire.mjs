// The fake Asterisk's wire facts (asterisk.mjs): hang-up causes and texts, dial statuses, media
// formats, timestamps, and how ARI reads a request: parameters (query, form or JSON body, with
// Asterisk's own parsing of numbers, booleans and comma lists) and the resource tree with its
// routing. Sources as in asterisk.mjs's header.

export const REALM = 'Asterisk REST Interface';

// Hang-up causes (include/asterisk/causes.h) and their texts (main/channel.c, ast_cause2str).
export const CAUSE = Object.freeze({
  UNALLOCATED: 1, NORMAL: 16, BUSY: 17, NO_USER_RESPONSE: 18, NO_ANSWER: 19, REJECTED: 21,
  ANSWERED_ELSEWHERE: 26, INVALID_NUMBER_FORMAT: 28, NORMAL_UNSPECIFIED: 31, CONGESTION: 34,
  FAILURE: 38, BEARERCAPABILITY_NOTAVAIL: 58, INTERWORKING: 127,
});
export const CAUSE_TEXT = Object.freeze({
  0: 'Unknown', 1: 'Unallocated (unassigned) number', 2: 'No route to specified transmit network',
  3: 'No route to destination', 16: 'Normal Clearing', 17: 'User busy', 18: 'No user responding',
  19: 'User alerting, no answer', 20: 'Subscriber absent', 21: 'Call Rejected', 22: 'Number changed',
  26: 'Answered elsewhere', 27: 'Destination out of order', 28: 'Invalid number format',
  31: 'Normal, unspecified', 34: 'Circuit/channel congestion', 38: 'Network out of order',
  41: 'Temporary failure', 42: 'Switching equipment congestion', 44: 'Requested channel not available',
  58: 'Bearer capability not available', 127: 'Interworking, unspecified',
});
// DELETE /channels/{id}?reason=... (resource_channels.c, convert_reason_to_hangup_code).
export const HANGUP_REASONS = {
  normal: 16, busy: 17, congestion: 34, no_answer: 19, timeout: 18, rejected: 21, unallocated: 1,
  normal_unspecified: 31, number_incomplete: 28, codec_mismatch: 58, interworking: 127,
  failure: 38, answered_elsewhere: 26,
};
// main/dial.c, ast_hangup_cause_to_dial_status.
export const dialStatusFor = (cause) => ({ 17: 'BUSY', 34: 'CONGESTION', 3: 'CHANUNAVAIL', 20: 'CHANUNAVAIL' })[cause] ?? 'NOANSWER';
// ast_softhangup publishes the soft-hang-up flag as "cause": AST_SOFTHANGUP_EXPLICIT is 1 << 5.
export const SOFTHANGUP_EXPLICIT = 32;

// Formats the fake accepts (ast_format_cache_get); RTP payload type and bytes per 20 ms.
// (The fake streams any of them as opaque bytes; switchboard uses ulaw.)
export const FORMATS = {
  ulaw: { pt: 0, frame: 160, tsStep: 160, silence: 0xff }, alaw: { pt: 8, frame: 160, tsStep: 160, silence: 0xd5 },
  g722: { pt: 9, frame: 160, tsStep: 160, silence: 0 }, gsm: { pt: 3, frame: 33, tsStep: 160, silence: 0 },
  slin: { pt: 118, frame: 320, tsStep: 160, silence: 0 }, slin16: { pt: 118, frame: 640, tsStep: 320, silence: 0 },
  g729: { pt: 18, frame: 20, tsStep: 160, silence: 0 }, opus: { pt: 107, frame: 160, tsStep: 960, silence: 0 },
};
export const TECHS = new Set(['PJSIP', 'SIP', 'IAX2', 'DAHDI', 'Local', 'UnicastRTP']);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(pred, ms = 5000, interval = 5) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`waitFor: condition not met within ${ms} ms: ${pred}`);
    await sleep(interval);
  }
}

// Asterisk's timestamps (ast_json_timeval): 2026-12-03T19:00:00.000+0000, in the server's local
// zone (ast_localtime with no zone), so the offset is whatever the host is set to.
export function ariTime(ms = Date.now(), offsetMinutes = 0) {
  const a = Math.abs(offsetMinutes);
  const zone = `${offsetMinutes < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}${String(a % 60).padStart(2, '0')}`;
  return new Date(ms + offsetMinutes * 60000).toISOString().replace('Z', zone);
}

export const basicAuth = (user, password) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');

// ---- request parameters -------------------------------------------------------------------

// Asterisk's ast_app_separate_args (comma lists, Stasis args): quotes group, backslash escapes,
// brackets and parentheses nest.
export function separateArgs(s, delim = ',') {
  if (s === undefined || s === null) return [];
  const out = [];
  let cur = '', quote = false, depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) { cur += s[++i]; continue; }
    if (c === '"') { quote = !quote; continue; }
    if (!quote) {
      if (c === '(' || c === '[') depth++;
      else if ((c === ')' || c === ']') && depth) depth--;
      else if (c === delim && !depth) { out.push(cur); cur = ''; continue; }
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

export const atoi = (v) => { const m = /^\s*[+-]?\d+/.exec(String(v)); return m ? parseInt(m[0], 10) : 0; };
export const astTrue = (v) => /^(yes|true|y|t|1|on)$/i.test(String(v ?? '').trim());

// One handler's parameters: name -> type ('s' string, 'i' int, 'b' bool, 'l' comma list)
// with defaults the generated code sets before parsing (timeout 30, skipms 3000 ...).
export function readParams(spec, query, json) {
  const p = {};
  for (const [name, [type, def]] of Object.entries(spec)) if (def !== undefined) p[name] = def;
  for (const [name, [type]] of Object.entries(spec)) {
    if (query[name] === undefined) continue;
    const v = query[name];
    p[name] = type === 'i' ? atoi(v) : type === 'b' ? astTrue(v) : type === 'l' ? (v === '' ? [''] : separateArgs(v)) : v;
  }
  if (json && typeof json === 'object' && !Array.isArray(json)) {
    for (const [name, [type]] of Object.entries(spec)) {
      if (!(name in json)) continue;
      const v = json[name];
      if (type === 's') { if (typeof v === 'string') p[name] = v; else delete p[name]; }
      else if (type === 'i') p[name] = Number.isInteger(v) ? v : 0;
      else if (type === 'b') p[name] = v === true;
      else if (type === 'l') p[name] = Array.isArray(v) ? v.filter((x) => typeof x === 'string') : typeof v === 'string' ? [v] : [];
    }
  }
  return p;
}

const S = ['s'], I = (d) => ['i', d], B = ['b', false], L = ['l'];
export const PARAMS = {
  originate: { endpoint: S, extension: S, context: S, priority: I(0), label: S, app: S, appArgs: S, callerId: S, timeout: I(30), channelId: S, otherChannelId: S, originator: S, formats: S },
  externalMedia: { channelId: S, app: S, external_host: S, encapsulation: S, transport: S, connection_type: S, format: S, direction: S, data: S, transport_data: S },
  hangup: { reason_code: S, reason: S },
  play: { media: L, lang: S, offsetms: I(0), skipms: I(3000), playbackId: S, announcer_format: S },
  moh: { mohClass: S },
  createBridge: { type: S, bridgeId: S, name: S },
  addChannel: { channel: L, role: S, absorbDTMF: B, mute: B, inhibitConnectedLineUpdates: B },
  removeChannel: { channel: L },
  variable: { variable: S, value: S },
  none: {},
};

// The ARI resource tree (from rest-api/api-docs): path -> method -> handler name. null: the
// resource exists in Asterisk, the fake does not implement it (501).
const API = {
  'asterisk/info': { GET: 'asteriskInfo' },
  'asterisk/ping': { GET: 'asteriskPing' },
  'asterisk/variable': { GET: null, POST: null },
  applications: { GET: 'listApplications' },
  'applications/{applicationName}': { GET: 'getApplication' },
  'applications/{applicationName}/subscription': { POST: null, DELETE: null },
  channels: { GET: 'listChannels', POST: 'originate' },
  'channels/create': { POST: null },
  'channels/externalMedia': { POST: 'externalMedia' },
  'channels/{channelId}': { GET: 'getChannel', POST: 'originateWithId', DELETE: 'hangup' },
  'channels/{channelId}/continue': { POST: null },
  'channels/{channelId}/move': { POST: null },
  'channels/{channelId}/redirect': { POST: null },
  'channels/{channelId}/answer': { POST: 'answer' },
  'channels/{channelId}/ring': { POST: 'ring', DELETE: 'ringStop' },
  'channels/{channelId}/progress': { POST: null },
  'channels/{channelId}/dtmf': { POST: null },
  'channels/{channelId}/mute': { POST: null, DELETE: null },
  'channels/{channelId}/hold': { POST: null, DELETE: null },
  'channels/{channelId}/moh': { POST: 'startMoh', DELETE: 'stopMoh' },
  'channels/{channelId}/silence': { POST: null, DELETE: null },
  'channels/{channelId}/play': { POST: 'play' },
  'channels/{channelId}/play/{playbackId}': { POST: 'play' },
  'channels/{channelId}/record': { POST: null },
  'channels/{channelId}/variable': { GET: 'getVariable', POST: 'setVariable' },
  'channels/{channelId}/variables': { GET: null, POST: null },
  'channels/{channelId}/snoop': { POST: null },
  'channels/{channelId}/snoop/{snoopId}': { POST: null },
  'channels/{channelId}/dial': { POST: null },
  'channels/{channelId}/rtp_statistics': { GET: null },
  'channels/{channelId}/transfer_progress': { POST: null },
  bridges: { GET: 'listBridges', POST: 'createBridge' },
  'bridges/{bridgeId}': { GET: 'getBridge', POST: 'createBridge', DELETE: 'destroyBridge' },
  'bridges/{bridgeId}/variable': { GET: null, POST: null },
  'bridges/{bridgeId}/variables': { GET: null, POST: null },
  'bridges/{bridgeId}/addChannel': { POST: 'addChannel' },
  'bridges/{bridgeId}/removeChannel': { POST: 'removeChannel' },
  'bridges/{bridgeId}/videoSource/{channelId}': { POST: null },
  'bridges/{bridgeId}/videoSource': { DELETE: null },
  'bridges/{bridgeId}/moh': { POST: 'bridgeStartMoh', DELETE: 'bridgeStopMoh' },
  'bridges/{bridgeId}/play': { POST: 'bridgePlay' },
  'bridges/{bridgeId}/play/{playbackId}': { POST: 'bridgePlay' },
  'bridges/{bridgeId}/record': { POST: null },
  playbacks: {},
  'playbacks/{playbackId}': { GET: 'getPlayback', DELETE: 'stopPlayback' },
  'playbacks/{playbackId}/control': { POST: null },
  endpoints: { GET: null },
  recordings: {},
  sounds: { GET: null },
  events: { GET: 'events' },
};

// Resource tree with Asterisk's matching: per segment an explicit child first, else a wildcard.
function buildTree() {
  const root = { children: new Map(), wildcard: null, methods: null };
  for (const [path, methods] of Object.entries(API)) {
    let node = root;
    for (const seg of path.split('/')) {
      const wild = /^\{(.+)\}$/.exec(seg);
      if (wild) {
        node.wildcard ??= { name: wild[1], node: { children: new Map(), wildcard: null, methods: null } };
        node = node.wildcard.node;
      } else {
        if (!node.children.has(seg)) node.children.set(seg, { children: new Map(), wildcard: null, methods: null });
        node = node.children.get(seg);
      }
    }
    node.methods = methods;
  }
  return root;
}
const TREE = buildTree();

export function route(segments) {
  let node = TREE;
  const vars = {};
  for (const seg of segments) {
    if (node.children.has(seg)) node = node.children.get(seg);
    else if (node.wildcard) { vars[node.wildcard.name] = seg; node = node.wildcard.node; }
    else return null;
  }
  return node.methods ? { methods: node.methods, vars } : null;
}

// ast_callerid_parse: "Name" <number>, Name <number>, a bare number, or a bare name.
export function parseCallerId(s) {
  if (!s) return { name: '', number: '' };
  const m = /^\s*(.*?)\s*<([^>]*)>\s*$/.exec(s);
  let name, number;
  if (m) { name = m[1].replace(/^"(.*)"$/, '$1'); number = m[2]; }
  else if (/^[\s0-9+()*#.-]+$/.test(s)) { name = ''; number = s.trim(); }
  else { name = s.trim().replace(/^"(.*)"$/, '$1'); number = ''; }
  // ast_shrink_phone_number drops the punctuation of a number.
  if (/^[0-9+()\s.-]+$/.test(number)) number = number.replace(/[()\s.-]/g, '');
  return { name, number };
}
