// The jambonz verb writer (jambonz/verbs.h) and call plans (jambonz/plan.h) against jambonz's
// own validator: tests/tools/jambonz_render (JAMBONZ_RENDER_BIN) renders seeded plans, one
// verb array per line, and every array goes through validate() from
// @jambonz/verb-specifications, which the feature server runs on every webhook answer (one
// refusal fails the call). A passing run means something only if the oracle is strict and the
// run covered every verb, target type and option: both are checked here too.
//
// JAMBONZ_VERBS_COUNT sets how many seeds (default 2000), JAMBONZ_VERBS_FIRST the first seed;
// one failing line is reproduced with `jambonz_render --seeds 1 --first <seed>`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { validate, specs } = require('@jambonz/verb-specifications');

const RENDER = process.env.JAMBONZ_RENDER_BIN;
if (!RENDER) throw new Error('JAMBONZ_RENDER_BIN is not set (run the tests through ctest)');
const COUNT = Number(process.env.JAMBONZ_VERBS_COUNT ?? 2000);
const FIRST = Number(process.env.JAMBONZ_VERBS_FIRST ?? 1);

// validate() logs through this only when it refuses something.
const logger = { info() {}, debug() {}, warn() {}, error() {} };

function render(count, first) {
  const r = spawnSync(RENDER, ['--seeds', String(count), '--first', String(first)], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `jambonz_render failed: ${r.stderr}`);
  const lines = r.stdout.split('\n');
  assert.equal(lines.pop(), '', 'output does not end with a newline');
  assert.equal(lines.length, count, 'one line per seed');
  return lines.map((line, i) => ({ seed: first + i, verbs: JSON.parse(line) }));
}

const refuses = (verbs) => {
  try {
    validate(logger, verbs);
    return false;
  } catch {
    return true;
  }
};

// What each array exercised: verb names, target types and the options that matter to us.
function features(verbs) {
  const f = new Set();
  for (const v of verbs) {
    f.add(`verb:${v.verb}`);
    if (v.verb === 'say' && v.synthesizer) f.add('say:synthesizer');
    if (v.verb === 'hangup' && v.headers) f.add('hangup:headers');
    if (v.verb === 'config' && v.notifyEvents !== undefined) f.add('config:notifyEvents');
    if (v.verb === 'listen') {
      f.add(`listen:sampleRate:${v.sampleRate ?? 'default'}`);
      if (v.bidirectionalAudio?.streaming) f.add('listen:streaming');
      if (v.wsAuth) f.add('listen:wsAuth');
      if (v.metadata?.agent_type) f.add('listen:agent_type');
      if (v.metadata?.voicemail) f.add('listen:voicemail');
      if (v.finishOnKey) f.add('listen:finishOnKey');
    }
    if (v.verb === 'dial') {
      f.add(v.target.length > 1 ? 'dial:several' : 'dial:one');
      if (v.target.length === 10) f.add('dial:ten');
      if (v.callerId) f.add('dial:callerId');
      if (v.answerOnBridge) f.add('dial:answerOnBridge');
      for (const t of v.target) {
        f.add(`target:${t.type}`);
        if (t.type === 'sip') f.add(t.auth ? 'target:sip:auth' : 'target:sip:noauth');
        if (t.type === 'phone') f.add(t.trunk ? 'target:phone:trunk' : 'target:phone:notrunk');
      }
    }
  }
  if (verbs[0]?.verb === 'listen') f.add('plan:no-greeting');
  return f;
}

// Our own rules, beyond what validate() checks by type.
function checkOurs(verbs, where) {
  for (const v of verbs) {
    assert.equal(Object.keys(v)[0], 'verb', `${where}: "verb" first`);
    if (v.verb === 'listen') {
      for (const rate of [v.sampleRate, v.bidirectionalAudio?.sampleRate])
        if (rate !== undefined) assert.ok(Number.isInteger(rate) && rate % 8000 === 0, `${where}: sampleRate ${rate}`);
      if (v.metadata?.tenant_id !== undefined) assert.equal(typeof v.metadata.tenant_id, 'string', where);
      if (v.mixType !== undefined) assert.ok(['mono', 'stereo', 'mixed'].includes(v.mixType), where);
    }
    if (v.verb === 'dial') {
      assert.ok(v.target.length >= 1 && v.target.length <= 10, `${where}: ${v.target.length} targets`);
      for (const t of v.target) {
        const need = { phone: 'number', sip: 'sipUri', user: 'name' }[t.type];
        assert.ok(need && typeof t[need] === 'string' && t[need] !== '', `${where}: target ${JSON.stringify(t)}`);
      }
    }
    for (const auth of [v.wsAuth, ...(v.target ?? []).map((t) => t.auth)])
      if (auth) assert.ok(auth.username && auth.password, `${where}: half an auth`);
  }
}

// ---- mutations: each must be refused by validate() --------------------------------------

// A value whose JS type the spec string ("number", "object|string", ...) does not allow.
function wrongValue(spec) {
  const types = spec.split('|').map((t) => t.trim());
  for (const v of [42, 'x', true, {}]) {
    if (!types.includes(typeof v)) return v;
  }
  return undefined;
}

// Every single-step corruption of one object checked against spec `name`: an unknown
// property, a wrong type for each simply typed property, a value outside an enum, and the
// same inside nested objects (synthesizer, auth, bidirectionalAudio, dial targets).
function* mutations(name, obj) {
  const spec = specs[name];
  yield { why: `${name}: unknown property`, obj: { ...obj, switchboardBogus: 1 } };
  for (const [key, value] of Object.entries(obj)) {
    const s = spec.properties[key];
    if (s === undefined) continue; // "verb" itself
    if (typeof s === 'string' && !s.startsWith('#')) {
      const bad = wrongValue(s);
      if (bad !== undefined) yield { why: `${name}.${key}: type ${typeof bad} for ${s}`, obj: { ...obj, [key]: bad } };
    } else if (typeof s === 'object' && !Array.isArray(s) && s.enum) {
      yield { why: `${name}.${key}: not in enum`, obj: { ...obj, [key]: 'switchboard-bogus' } };
    } else if (typeof s === 'string' && s.startsWith('#')) {
      for (const m of mutations(s.slice(1), value)) yield { why: m.why, obj: { ...obj, [key]: m.obj } };
    } else if (Array.isArray(s) && s[0].startsWith('#')) {
      for (let i = 0; i < value.length; i++) {
        for (const m of mutations(s[0].slice(1), value[i])) {
          const arr = [...value];
          arr[i] = m.obj;
          yield { why: `${m.why} (item ${i})`, obj: { ...obj, [key]: arr } };
        }
      }
    }
  }
  for (const req of spec.required ?? []) {
    const { [req]: _, ...rest } = obj;
    yield { why: `${name}: without required ${req}`, obj: rest };
  }
}

test('every rendered verb array passes jambonz validate()', () => {
  const rendered = render(COUNT, FIRST);
  const seen = new Set();
  for (const { seed, verbs } of rendered) {
    const where = `seed ${seed} (jambonz_render --seeds 1 --first ${seed}): ${JSON.stringify(verbs)}`;
    assert.ok(Array.isArray(verbs) && verbs.length > 0, where);
    assert.doesNotThrow(() => validate(logger, verbs), where);
    checkOurs(verbs, where);
    for (const f of features(verbs)) seen.add(f);
  }
  const want = [
    ...['say', 'pause', 'hangup', 'sip:decline', 'redirect', 'listen', 'dial', 'sip:refer', 'config'].map(
      (v) => `verb:${v}`,
    ),
    'target:phone', 'target:sip', 'target:user',
    'target:sip:auth', 'target:sip:noauth', 'target:phone:trunk', 'target:phone:notrunk',
    'dial:one', 'dial:several', 'dial:ten', 'dial:callerId', 'dial:answerOnBridge',
    'listen:sampleRate:8000', 'listen:sampleRate:16000', 'listen:streaming', 'listen:wsAuth',
    'listen:agent_type', 'listen:voicemail', 'listen:finishOnKey', 'plan:no-greeting',
    'say:synthesizer', 'hangup:headers', 'config:notifyEvents',
  ];
  const missing = want.filter((f) => !seen.has(f));
  assert.deepEqual(missing, [], `not covered in ${COUNT} seeds: ${missing.join(', ')}`);
});

test('the oracle is strict: it refuses what the feature server would', () => {
  // by hand: the refusals a passing run relies on
  const refused = [
    [{ verb: 'say', text: 'x', bogus: 1 }],
    [{ verb: 'saay', text: 'x' }],
    [{ verb: 'pause', length: '3' }],
    [{ verb: 'pause' }],
    [{ verb: 'dial' }],
    [{ verb: 'dial', target: { type: 'phone', number: '+1' } }],
    [{ verb: 'dial', target: [{ type: 'pstn', number: '+1' }] }],
    [{ verb: 'dial', target: [{ type: 'sip', sipUri: 'sip:a@b', auth: { username: 'u' } }] }],
    [{ verb: 'dial', target: [{ type: 'phone', number: '+1' }], timeout: '30' }],
    [{ verb: 'dial', target: [{ type: 'phone', number: '+1' }], answerOnBridge: 'true' }],
    [{ verb: 'listen' }],
    [{ verb: 'listen', url: 'wss://x', mixType: 'quad' }],
    [{ verb: 'listen', url: 'wss://x', metadata: 'x' }],
    [{ verb: 'listen', url: 'wss://x', bidirectionalAudio: { enabled: 'yes' } }],
    [{ verb: 'say', text: 'x', synthesizer: { voice: 'v' } }],
    [{ verb: 'sip:decline', status: '486' }],
    [{ verb: 'sip:refer' }],
    [{ verb: 'redirect' }],
    [{ verb: 'config', notifyEvents: 1 }],
    [{ say: { text: 'x' }, pause: { length: 1 } }],
    {},
  ];
  for (const verbs of refused) assert.ok(refuses(verbs), `validate() accepted ${JSON.stringify(verbs)}`);
  // ...and what it accepts, so refusals are not everything
  assert.ok(!refuses([{ verb: 'say', text: 'x' }, { verb: 'hangup' }]));

  // every single-step corruption of rendered arrays is refused
  let tried = 0;
  const kinds = new Set();
  for (const { seed, verbs } of render(Math.min(COUNT, 300), FIRST)) {
    verbs.forEach((verb, i) => {
      const { verb: name, ...props } = verb;
      for (const m of mutations(name, props)) {
        const mutated = [...verbs];
        mutated[i] = { verb: name, ...m.obj };
        assert.ok(refuses(mutated), `seed ${seed}: validate() accepted a corruption (${m.why}): ${JSON.stringify(mutated)}`);
        tried++;
        kinds.add(m.why.replace(/ \(item \d+\)$/, ''));
      }
    });
  }
  assert.ok(tried > 1000, `only ${tried} corruptions tried`);
  for (const k of ['dial.timeout: type string for number', 'target.type: not in enum', 'auth: without required password',
    'listen.sampleRate: type string for number', 'bidirectionalAudio.streaming: type number for boolean',
    'synthesizer: without required vendor', 'say.text: type number for string|array', 'target: unknown property'])
    assert.ok(kinds.has(k), `no corruption of kind "${k}" was tried`);
});
