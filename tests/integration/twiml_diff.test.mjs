// Differential test of the TwiML writer (twiml/): the same documents are rendered by
// Twilio's own helper library (npm `twilio`, VoiceResponse) and by our writer through
// tests/tools/twiml_render (TWIML_RENDER_BIN), both outputs are parsed and the trees
// compared: element names, attribute sets, text, child order.
//
// Scenarios come from a seeded PRNG: scenario i uses seed mix(SEED, i), so one failure is
// reproduced alone with TWIML_DIFF_SEED=<seed> TWIML_DIFF_ONLY=<i>. TWIML_DIFF_COUNT sets how
// many are generated. Needs `npm ci` in tests/ (package.json, package-lock.json).
//
// Values are passed the way a user of each library writes them, which here is the same
// JSON for both: strings, numbers (loop: 0 means "0" in both: twiml_render maps 0 onto
// TWIML_ZERO), booleans (twilio stringifies `true` as "true", like twiml_bool_t) and arrays
// for list attributes (twilio joins them with spaces, TwiML.js attValue, like our lists).
// Only inputs our writer documents as valid are generated: no empty lists (twilio writes
// attr="", twiml.h omits them by design), no empty noun/Redirect text, Play has a url or digits,
// Stream a url (or, inside Stop, a name).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { DOMParser } from '@xmldom/xmldom';
import twilio from 'twilio';

const RENDER = process.env.TWIML_RENDER_BIN;
if (!RENDER) throw new Error('TWIML_RENDER_BIN is not set (run the tests through ctest)');
const SEED = Number(process.env.TWIML_DIFF_SEED ?? 0x5b0a2d17) >>> 0;
const COUNT = Number(process.env.TWIML_DIFF_COUNT ?? 300);
const ONLY = process.env.TWIML_DIFF_ONLY === undefined ? null : Number(process.env.TWIML_DIFF_ONLY);
const DECL = '<?xml version="1.0" encoding="UTF-8"?>';

// ---- rendering --------------------------------------------------------------------------

// Our writer: the JSON nodes on stdin, the document on stdout.
function renderOurs(nodes) {
  const r = spawnSync(RENDER, [], { input: JSON.stringify(nodes), encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout, err: r.stderr };
}

// Twilio's library: each node becomes the call a user writes, `parent.say(attrs, text)`,
// `dial.sip(attrs, uri)`, `stream.parameter(attrs)`, `r.dial(attrs, number)`.
function renderTwilio(nodes) {
  const response = new twilio.twiml.VoiceResponse();
  const add = (parent, node) => {
    const method = node.verb[0].toLowerCase() + node.verb.slice(1);
    assert.equal(typeof parent[method], 'function', `twilio has no ${method}() here`);
    const attrs = structuredClone(node.attrs ?? {});
    const el = 'text' in node ? parent[method](attrs, node.text) : parent[method](attrs);
    for (const child of node.children ?? []) add(el, child);
  };
  for (const node of nodes) add(response, node);
  return response.toString();
}

// A parsed document as plain data: {name, attrs (sorted), text (direct text joined), children}.
function tree(xml, who) {
  const doc = new DOMParser({
    onError: (level, msg) => {
      if (level !== 'warning') throw new Error(`${who} output is not well-formed XML: ${msg}`);
    },
  }).parseFromString(xml, 'text/xml');
  const walk = (el) => {
    const attrs = [...el.attributes].map((a) => [a.name, a.value]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    let text = '';
    const children = [];
    for (const n of [...el.childNodes]) {
      if (n.nodeType === 1) children.push(walk(n));
      else if (n.nodeType === 3 || n.nodeType === 4) text += n.data;
      else throw new Error(`${who}: unexpected node type ${n.nodeType}`);
    }
    return { name: el.tagName, attrs, text, children };
  };
  return walk(doc.documentElement);
}

// Renders `nodes` both ways and compares; `label` says how to reproduce.
function compare(nodes, label) {
  const theirs = renderTwilio(nodes);
  const ours = renderOurs(nodes);
  const show = () =>
    `${label}\nscenario: ${JSON.stringify(nodes)}\nours:   ${ours.out}\ntwilio: ${theirs}\nstderr: ${ours.err}`;
  assert.equal(ours.status, 0, `twiml_render failed\n${show()}`);
  assert.ok(ours.out.startsWith(DECL + '<Response'), `no XML declaration\n${show()}`);
  assert.deepEqual(tree(ours.out, 'our'), tree(theirs, 'twilio'), `trees differ\n${show()}`);
}

// ---- the scenario generator ---------------------------------------------------------------

// mulberry32, and a mix so scenario i has its own stream.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const mix = (seed, i) => (Math.imul(seed ^ (i * 0x9e3779b9), 0x85ebca6b) ^ (i + 1)) >>> 0;

class Gen {
  constructor(seed) {
    this.r = prng(seed);
  }
  int(lo, hi) {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  chance(p) {
    return this.r() < p;
  }
  pick(arr) {
    return arr[this.int(0, arr.length - 1)];
  }
  // 1..max distinct items, in the order of `arr`.
  subset(arr, max = arr.length) {
    const n = this.int(1, Math.min(max, arr.length));
    const chosen = new Set();
    while (chosen.size < n) chosen.add(this.pick(arr));
    return arr.filter((x) => chosen.has(x));
  }
}

// Pieces strings are made of: plain words, the five XML specials, non-ASCII, emoji,
// whitespace that needs escaping in attributes, things that look like markup or entities.
const PIECES = [
  'hello', 'Transferring you now.', 'AT&T', 'a < b', 'b > a', '"quoted"', "it's", `&<>"'`, '&amp;', '&#x41;',
  '<Say>x</Say>', ']]>', '<!-- c -->', 'café é', 'Zürich', '東京', 'Ελληνικά', 'שלום', '😀', '👍🏽', '🇫🇷',
  '\u00a0nbsp', 'tab\there', 'line\nbreak', 'cr\rlf', '  spaced  ', '%20', '+1 (555)',
];
const URLS = [
  'https://example.com/twiml',
  'https://example.com/cb?a=1&b=2',
  'https://example.com/a b/<x>?q="é"&r=\'1\'',
  'https://例え.jp/東京?x=😀',
  'http://10.0.0.1:8080/twilio/transfer_callback?callSid=CA123&attempt=2',
  '/relative/path?x=&y=%26',
];
const WSS = ['wss://example.com/twilio/media', 'wss://ai.example.com/s?token=a&b=<c>', 'wss://例え.jp/ストリーム'];

function str(g, { empty = true } = {}) {
  if (empty && g.chance(0.08)) return '';
  let s = '';
  for (let n = g.int(1, 3); n > 0; n--) s += (s ? ' ' : '') + g.pick(PIECES);
  return s;
}
const url = (g) => (g.chance(0.3) ? str(g) : g.pick(URLS));
const oneOf = (...vals) => (g) => g.chance(0.15) ? str(g) : g.pick(vals);
const int = (lo, hi) => (g) => (g.chance(0.15) ? 0 : g.int(lo, hi));
const bool = (g) => g.chance(0.5);
const list = (...vals) => (g) => g.subset(vals);
const METHOD = oneOf('GET', 'POST');
const CALL_EVENTS = list('initiated', 'ringing', 'answered', 'completed');
const REC_EVENTS = list('in-progress', 'completed', 'absent');

// Every attribute twiml.h supports, per element, with how a user would fill it.
const ATTRS = {
  Say: {
    voice: oneOf('alice', 'man', 'woman', 'Polly.Amy', 'Google.en-US-Neural2-F'),
    language: oneOf('en-US', 'fr-FR', 'ja-JP'),
    loop: int(1, 5),
  },
  Play: { loop: int(1, 10), digits: oneOf('1234', 'ww12#', 'w*0') },
  Pause: { length: int(1, 30) },
  Gather: {
    input: list('dtmf', 'speech'),
    action: url,
    method: METHOD,
    timeout: int(1, 15),
    speechTimeout: oneOf('auto', '3', '0'),
    numDigits: int(1, 10),
    finishOnKey: oneOf('#', '*', '', '0'),
    hints: str,
    language: oneOf('en-US', 'de-DE'),
  },
  Dial: {
    action: url,
    method: METHOD,
    timeout: int(5, 60),
    timeLimit: int(60, 14400),
    callerId: oneOf('+13654001512', 'anonymous', '+44 20 7946 0018'),
    record: oneOf('do-not-record', 'record-from-answer', 'record-from-ringing', 'record-from-answer-dual'),
    recordingStatusCallback: url,
    recordingStatusCallbackEvent: REC_EVENTS,
    answerOnBridge: bool,
    ringTone: oneOf('us', 'gb', 'fr', 'jp'),
    hangupOnStar: bool,
    sequential: bool,
  },
  Number: {
    sendDigits: oneOf('ww1234', '9#'),
    url,
    statusCallback: url,
    statusCallbackEvent: CALL_EVENTS,
    machineDetection: oneOf('Enable', 'DetectMessageEnd'),
  },
  Sip: { username: str, password: str, url, statusCallback: url, statusCallbackEvent: CALL_EVENTS },
  Client: { url, statusCallback: url, statusCallbackEvent: CALL_EVENTS },
  Conference: {
    startConferenceOnEnter: bool,
    endConferenceOnExit: bool,
    beep: oneOf('true', 'false', 'onEnter', 'onExit'),
    waitUrl: url,
    statusCallback: url,
    statusCallbackEvent: list('start', 'end', 'join', 'leave', 'mute', 'hold', 'speaker'),
  },
  Queue: { url },
  Connect: { action: url, method: METHOD },
  Start: {},
  Stop: {},
  Stream: {
    url: (g) => (g.chance(0.8) ? g.pick(WSS) : str(g)),
    name: str,
    track: oneOf('inbound_track', 'outbound_track', 'both_tracks'),
    statusCallback: url,
    statusCallbackMethod: METHOD,
  },
  Parameter: { name: (g) => str(g, { empty: false }), value: str },
  Record: {
    action: url,
    method: METHOD,
    timeout: int(1, 10),
    finishOnKey: oneOf('#', '1234567890*#', ''),
    maxLength: int(1, 3600),
    playBeep: bool,
    trim: oneOf('trim-silence', 'do-not-trim'),
    recordingStatusCallback: url,
    recordingStatusCallbackEvent: REC_EVENTS,
    transcribe: bool,
  },
  Redirect: { method: METHOD },
  Reject: { reason: oneOf('rejected', 'busy') },
  Hangup: {},
};

// A random subset of the element's attributes (each with probability p); `required` always.
function attrs(g, verb, p = 0.4, required = []) {
  const out = {};
  for (const [name, gen] of Object.entries(ATTRS[verb])) {
    if (required.includes(name) || g.chance(p)) out[name] = gen(g);
  }
  return out;
}
const node = (verb, a, extra = {}) => ({ verb, ...(Object.keys(a).length ? { attrs: a } : {}), ...extra });
const nonEmpty = (g) => str(g, { empty: false });
const PHONE = ['+13654001512', '+442079460018', '+81312345678', '415-555-0100'];
const SIP = [
  'sip:2000@pbx.example.com;transport=tcp',
  'sip:oncall@aircall-production.sip.twilio.com',
  'sip:a@b.example?x-h=1&x-i=<2>',
  'sip:東京@例え.jp',
];

function say(g) {
  return node('Say', attrs(g, 'Say'), { text: str(g) });
}
function play(g) {
  const a = attrs(g, 'Play');
  return 'digits' in a && g.chance(0.5) ? node('Play', a) : node('Play', a, { text: url(g) });
}
function stream(g, inStop) {
  const a = attrs(g, 'Stream', 0.4, inStop && g.chance(0.5) ? ['name'] : ['url']);
  const params = [];
  for (let n = g.int(0, inStop ? 1 : 3); n > 0; n--) params.push(node('Parameter', attrs(g, 'Parameter', 1)));
  return node('Stream', a, params.length ? { children: params } : {});
}
const NOUNS = {
  Number: (g) => g.pick(PHONE),
  Sip: (g) => g.pick(SIP),
  Client: (g) => (g.chance(0.5) ? 'agent-42' : nonEmpty(g)),
  Conference: nonEmpty,
  Queue: nonEmpty,
};
const VERBS = {
  Say: say,
  Play: play,
  Pause: (g) => node('Pause', attrs(g, 'Pause')),
  Gather: (g) => {
    const kids = [];
    for (let n = g.int(0, 3); n > 0; n--) kids.push(g.pick([say, play, VERBS.Pause])(g));
    return node('Gather', attrs(g, 'Gather'), kids.length ? { children: kids } : {});
  },
  Dial: (g) => {
    if (g.chance(0.3)) return node('Dial', attrs(g, 'Dial'), { text: g.pick(PHONE) });
    const kids = [];
    for (let n = g.int(1, 3); n > 0; n--) {
      const noun = g.pick(Object.keys(NOUNS));
      kids.push(node(noun, attrs(g, noun), { text: NOUNS[noun](g) }));
    }
    return node('Dial', attrs(g, 'Dial'), { children: kids });
  },
  Connect: (g) => node('Connect', attrs(g, 'Connect'), { children: [stream(g, false)] }),
  Start: (g) => node('Start', {}, { children: Array.from({ length: g.int(1, 2) }, () => stream(g, false)) }),
  Stop: (g) => node('Stop', {}, { children: Array.from({ length: g.int(1, 2) }, () => stream(g, true)) }),
  Record: (g) => node('Record', attrs(g, 'Record')),
  Redirect: (g) => node('Redirect', attrs(g, 'Redirect'), { text: url(g) || '/next' }),
  Reject: (g) => node('Reject', attrs(g, 'Reject')),
  Hangup: () => node('Hangup', {}),
};

function scenario(i) {
  const g = new Gen(mix(SEED, i));
  return Array.from({ length: g.int(1, 5) }, () => g.pick(Object.values(VERBS))(g));
}

// ---- the tests ------------------------------------------------------------------------------

const scenarios = Array.from({ length: COUNT }, (_, i) => scenario(i));
const seedHex = '0x' + SEED.toString(16);

test(`the ${COUNT} random scenarios cover every element and attribute (seed ${seedHex})`, () => {
  const seen = new Set();
  const visit = (n) => {
    seen.add(n.verb);
    for (const a of Object.keys(n.attrs ?? {})) seen.add(`${n.verb}@${a}`);
    (n.children ?? []).forEach(visit);
  };
  scenarios.flat().forEach(visit);
  const missing = [];
  for (const [verb, as] of Object.entries(ATTRS)) {
    if (!seen.has(verb)) missing.push(verb);
    for (const a of Object.keys(as)) if (!seen.has(`${verb}@${a}`)) missing.push(`${verb}@${a}`);
  }
  assert.deepEqual(missing, [], 'raise TWIML_DIFF_COUNT or the probabilities');
});

scenarios.forEach((nodes, i) => {
  if (ONLY !== null && ONLY !== i) return;
  test(`random scenario ${i}`, () => {
    compare(nodes, `reproduce: TWIML_DIFF_SEED=${seedHex} TWIML_DIFF_ONLY=${i}`);
  });
});

const FIXED = {
  'transfer: Say, Dial answerOnBridge with a SIP extension, Say, Hangup': [
    { verb: 'Say', attrs: { voice: 'Polly.Amy' }, text: 'Transferring you now, please hold.' },
    {
      verb: 'Dial',
      attrs: {
        answerOnBridge: true,
        timeout: 30,
        callerId: '+13654001512',
        action: 'https://sb.example.com/twilio/transfer_callback?callSid=CA0123&attempt=1',
        method: 'POST',
      },
      children: [
        {
          verb: 'Sip',
          attrs: { username: 'twilio', password: 'p&ss<w>rd"\'' },
          text: 'sip:2000@pbx.example.com;transport=tcp',
        },
      ],
    },
    { verb: 'Say', text: 'Sorry, nobody could take your call. Goodbye.' },
    { verb: 'Hangup' },
  ],
  'AI stream: Connect action, Stream wss, two Parameters': [
    {
      verb: 'Connect',
      attrs: { action: 'https://sb.example.com/twilio/connect_action' },
      children: [
        {
          verb: 'Stream',
          attrs: { url: 'wss://sb.example.com/twilio/media' },
          children: [
            { verb: 'Parameter', attrs: { name: 'tenant_id', value: 'acme & co' } },
            { verb: 'Parameter', attrs: { name: 'caller', value: '+13654001512' } },
          ],
        },
      ],
    },
  ],
  'Say then Reject busy': [
    { verb: 'Say', attrs: { language: 'fr-FR' }, text: 'Nous sommes fermés. À bientôt !' },
    { verb: 'Reject', attrs: { reason: 'busy' } },
  ],
  'loop 0 and Record timeout 0 are written as "0"': [
    { verb: 'Say', attrs: { loop: 0 }, text: '' },
    { verb: 'Play', attrs: { loop: 0 }, text: 'https://example.com/hold.mp3' },
    { verb: 'Record', attrs: { timeout: 0, playBeep: false, transcribe: false } },
  ],
};
for (const [name, nodes] of Object.entries(FIXED)) {
  test(`fixed: ${name}`, () => compare(nodes, `fixed scenario "${name}"`));
}

test('our transfer document, byte for byte', () => {
  const r = renderOurs(FIXED['transfer: Say, Dial answerOnBridge with a SIP extension, Say, Hangup']);
  assert.equal(r.status, 0, r.err);
  assert.equal(
    r.out,
    DECL +
      '<Response><Say voice="Polly.Amy">Transferring you now, please hold.</Say>' +
      '<Dial action="https://sb.example.com/twilio/transfer_callback?callSid=CA0123&amp;attempt=1" method="POST"' +
      ' timeout="30" callerId="+13654001512" answerOnBridge="true">' +
      '<Sip username="twilio" password="p&amp;ss&lt;w&gt;rd&quot;\'">' +
      'sip:2000@pbx.example.com;transport=tcp</Sip></Dial>' +
      '<Say>Sorry, nobody could take your call. Goodbye.</Say><Hangup/></Response>',
  );
});

// twiml_render must refuse what it does not understand instead of dropping it.
const REFUSED = {
  'unknown verb': [[{ verb: 'Enqueue', text: 'q' }], /unknown verb "Enqueue"/],
  'unknown attribute': [[{ verb: 'Say', attrs: { voice: 'alice', rate: 'slow' }, text: 'x' }], /no attribute "rate"/],
  'attribute the writer lacks (Start action)': [[{ verb: 'Start', attrs: { action: '/a' } }], /no attribute "action"/],
  'unknown key': [[{ verb: 'Hangup', attributes: {} }], /unknown key "attributes"/],
  'integer given as a string': [[{ verb: 'Pause', attrs: { length: '2' } }], /length must be an integer/],
  'negative integer': [[{ verb: 'Pause', attrs: { length: -1 } }], /length must be an integer/],
  'boolean given as a string': [[{ verb: 'Record', attrs: { playBeep: 'true' } }], /playBeep must be true or false/],
  'list given as a string': [[{ verb: 'Gather', attrs: { input: 'dtmf speech' } }], /input must be an array/],
  'text on an empty verb': [[{ verb: 'Hangup', text: 'bye' }], /takes no text/],
  'children on a leaf': [[{ verb: 'Say', text: 'x', children: [] }], /takes no children/],
  'writer error: noun at the top level': [[{ verb: 'Number', text: '+1555' }], /not allowed inside <Response>/],
  'writer error: empty Dial': [[{ verb: 'Dial', children: [] }], /<Dial> has nothing inside/],
  'list with a non-string item': [[{ verb: 'Gather', attrs: { input: ['dtmf', 1] } }], /array of strings/],
  'writer error: item with a space': [[{ verb: 'Gather', attrs: { input: ['dtmf speech'] } }], /input of <Gather>/],
  'not an array': [{ verb: 'Hangup' }, /JSON array/],
};
for (const [name, [input, msg]] of Object.entries(REFUSED)) {
  test(`twiml_render refuses: ${name}`, () => {
    const r = renderOurs(input);
    assert.equal(r.status, 1, `exit status; stdout: ${r.out}`);
    assert.equal(r.out, '');
    assert.match(r.err, msg);
  });
}
