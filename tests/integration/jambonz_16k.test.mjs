// jambonz at 16 kHz: jambonz resamples the app's audio to the 8 kHz line and loses the markers
// its playout buffer keeps for marks, so no mark comes back (the player reproduces this). The
// listen leg then reports marks from its own playout clock: a goodbye still ends the call once
// it has played, not after the bridge's 8 s wait for marks that never come.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sqlite, cleanup, SANITIZED } from './lib/harness.mjs';
import { startFakeRealtime, mulawTone } from '../fakes/openai_realtime.mjs';
import { placeInbound } from '../fakes/jambonz_fs.mjs';

const SECRET = 'wh-secret-16k';
const KEY = 'sk-test-16k';
const fake = await startFakeRealtime({ apiKey: KEY });
const servers = [];
after(async () => {
  for (const s of servers) {
    const r = await s.stop();
    assert.equal(r.code, 0, s.stderr);
    cleanup(s.dir);
  }
  await fake.close();
});

test('16 kHz: the goodbye plays out and the call ends on the playout clock, not the 8 s wait', async () => {
  const srv = await startServer({
    env: { AI_PROVIDER: 'openai', OPENAI_API_KEY: KEY, OPENAI_REALTIME_URL: fake.url, TLS_PORT: 'off',
      JAMBONZ_WEBHOOK_SECRET: SECRET, JAMBONZ_SAMPLE_RATE: '16000', PRIMARY_TRANSFER_TARGET: '+14155550199' },
  });
  servers.push(srv);
  fake.script([
    { on: 'response.create', do: 'speak', ms: 300 },
    { after: 'response.done', do: 'tool', name: 'end_call', arguments: {} },
    { on: 'response.create', do: 'speak', ms: 800, transcript: 'Goodbye!' },
  ]);
  const call = placeInbound({ base: srv.url, secret: SECRET, from: '+14155550111', to: '+14155550100',
    audio: mulawTone(6000, 300), maxDurationMs: 30000 });
  const r = await call.done;
  const listen = r.listens[0];
  assert.ok(listen, JSON.stringify(r.timeline.slice(0, 20)));
  assert.equal(listen.metadata.sampleRate, 16000);
  assert.equal(listen.ended?.why, 'disconnect', JSON.stringify({ ended: listen.ended, texts: listen.texts, closed: listen.closed }));
  // agent audio came back as 16 kHz L16: 1.1 s of speech is about 35 KB
  assert.ok(r.agentAudioRate === 16000 && r.agentAudio.length / 2 / 16000 >= 1.0, `${r.agentAudioRate} ${r.agentAudio.length}`);
  // the whole call: 1.1 s of agent speech plus set-up and the 160 ms pre-buffer; the 8 s wait would pass 9 s
  const closedAt = listen.closed.t;
  assert.ok(closedAt < (SANITIZED ? 7000 : 5000), `listen closed at ${closedAt} ms`);
  const session = listen.metadata.session_id;
  const row = sqlite(srv.dir + '/data/switchboard.db', `SELECT next_action FROM calls WHERE session_id='${session}'`);
  assert.equal(row, 'hangup');
  // the listen's actionHook hung up
  const action = r.hooks.find((h) => h.url.includes('step=listen'));
  assert.deepEqual(action.json.map((v) => v.verb), ['hangup']);
});
