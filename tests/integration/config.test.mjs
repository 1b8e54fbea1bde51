// Start-up configuration: .env files, bad values stopping start-up with the setting named,
// a busy port, and secrets never printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startServer, runExpectingFailure, curl, tempDir, cleanup } from './lib/harness.mjs';

function failsNaming(env, name) {
  const r = runExpectingFailure({ env });
  assert.equal(r.code, 2, `expected exit 2 for ${JSON.stringify(env)}:\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`configuration error: .*${name}`), r.stderr);
  cleanup(r.dir);
}

test('bad values stop start-up with a message naming the setting', () => {
  failsNaming({ PORT: 'eighty' }, 'PORT');
  failsNaming({ PORT: '99999' }, 'PORT');
  failsNaming({ TLS_PORT: 'yes' }, 'TLS_PORT');
  failsNaming({ WORKERS: '-1' }, 'WORKERS');
  failsNaming({ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL');
  failsNaming({ AI_PROVIDER: 'hal9000' }, 'AI_PROVIDER');
  failsNaming({ PUBLIC_BASE_URL: 'voice.example.com' }, 'PUBLIC_BASE_URL');
  failsNaming({ TLS_CERT_FILE: '/nonexistent/cert.pem', TLS_KEY_FILE: '/nonexistent/key.pem' }, 'TLS_CERT_FILE');
});

test('bad Asterisk settings stop start-up naming the setting', () => {
  const ari = { ARI_URL: 'http://127.0.0.1:8088', ARI_USERNAME: 'sb', ARI_PASSWORD: 'pw-2b7e-secret' };
  failsNaming({ ...ari, ARI_URL: 'http://127.0.0.1:8088/' }, 'ARI_URL');
  failsNaming({ ...ari, ARI_URL: 'ws://127.0.0.1:8088' }, 'ARI_URL');
  failsNaming({ ...ari, ARI_URL: 'http://127.0.0.1:8088?app=x' }, 'ARI_URL');
  failsNaming({ ARI_URL: 'http://127.0.0.1:8088', ARI_USERNAME: 'sb' }, 'ARI_PASSWORD');
  failsNaming({ ...ari, ARI_APP: 'switch board' }, 'ARI_APP');
  failsNaming({ ...ari, RTP_ADDRESS: '10.0.0.300' }, 'RTP_ADDRESS');
  failsNaming({ ...ari, RTP_BIND_ADDRESS: 'media.example.com' }, 'RTP_BIND_ADDRESS');
  failsNaming({ ...ari, RTP_PORT_MIN: '80' }, 'RTP_PORT_MIN');
  failsNaming({ ...ari, RTP_PORT_MIN: '30000', RTP_PORT_MAX: '29999' }, 'RTP_PORT_MIN');
  failsNaming({ ...ari, ASTERISK_TRUNK: 'didww trunk' }, 'ASTERISK_TRUNK');
  failsNaming({ DEFAULT_PLATFORM: 'asterisk' }, 'DEFAULT_PLATFORM=asterisk needs ARI_URL');
  failsNaming({ ...ari, DEFAULT_PLATFORM: 'jambonz' }, 'DEFAULT_PLATFORM');
  failsNaming({ PRIMARY_TRANSFER_TARGET: 'PJSIP/2000&PJSIP/2001' }, 'PRIMARY_TRANSFER_TARGET');
  const r = runExpectingFailure({ env: { ...ari, ARI_URL: 'http://sb:pw-2b7e-secret@127.0.0.1:8088' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /configuration error: ARI_URL must not carry credentials/);
  assert.ok(!r.stderr.includes('pw-2b7e-secret'), 'ARI_PASSWORD appears in the error');
  cleanup(r.dir);
});

test('a certificate file that is not a certificate names TLS_CERT_FILE', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'cert.pem'), 'not a certificate\n');
  writeFileSync(join(dir, 'key.pem'), 'not a key\n');
  const r = runExpectingFailure({ dir, env: { TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /TLS_CERT_FILE: cannot load/);
  cleanup(dir);
});

test('AI_CA_FILE: a missing file stops start-up naming it, and so does a file with no certificate', () => {
  failsNaming({ AI_CA_FILE: '/nonexistent/ai-ca.pem' }, 'AI_CA_FILE');
  const dir = tempDir();
  writeFileSync(join(dir, 'ca.pem'), 'not a certificate\n');
  const r = runExpectingFailure({ dir, env: { AI_CA_FILE: join(dir, 'ca.pem') } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`AI_CA_FILE: cannot load ${join(dir, 'ca.pem')}`), r.stderr);
  cleanup(dir);
});

test('a port in use stops start-up naming PORT', async () => {
  const blocker = createServer();
  await new Promise((res) => blocker.listen(0, '127.0.0.1', res));
  const port = blocker.address().port;
  try {
    const r = runExpectingFailure({ env: { PORT: port } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`PORT: cannot listen on 127.0.0.1:${port}`));
    cleanup(r.dir);
  } finally {
    blocker.close();
  }
});

test('.env in the working folder is read, and the environment wins over it', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, '.env'), 'TLS_PORT=off\nAI_PROVIDER=none\nWORKERS=3\n');
  const srv = await startServer({ dir, env: { WORKERS: '1', TLS_PORT: null } });
  try {
    assert.equal(srv.tlsPort, -1);
    assert.match(srv.stderr, /event=server\.listening .*workers=1/);
    const h = JSON.parse(curl([`${srv.url}/health`]).body);
    assert.equal(h.ai_provider, 'none');
  } finally {
    assert.equal((await srv.stop()).code, 0);
    cleanup(dir);
  }
});

test('--env-file names a file; a missing one is an error', async () => {
  const r = runExpectingFailure({ args: ['--env-file', '/nonexistent/sb.env'] });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\/nonexistent\/sb\.env/);
  cleanup(r.dir);
  const dir = tempDir();
  mkdirSync(join(dir, 'conf'));
  writeFileSync(join(dir, 'conf', 'sb.env'), 'AI_PROVIDER=none\n');
  const srv = await startServer({ dir, args: ['--env-file', 'conf/sb.env'] });
  assert.equal(JSON.parse(curl([`${srv.url}/health`]).body).ai_provider, 'none');
  assert.equal((await srv.stop()).code, 0);
  cleanup(dir);
});

test('secrets are never printed', async () => {
  const secrets = {
    TWILIO_ACCOUNT_SID: 'AC00000000000000000000000000000000',
    TWILIO_AUTH_TOKEN: 'tok-3f9a1c-secret',
    JWT_SECRET: 'jwt-77b2-secret',
    OPENAI_API_KEY: 'sk-openai-9c1d-secret',
    FREEPBX_SIP_PASSWORD: 'sip-4e5f-secret',
    ELEVENLABS_WEBHOOK_SECRET: 'el-8a8a-secret',
  };
  const srv = await startServer({ env: { ...secrets, LOG_LEVEL: 'debug' } });
  curl([`${srv.url}/health`]);
  const h = JSON.parse(curl([`${srv.url}/health`]).body);
  assert.equal(h.twilio_configured, true);
  assert.equal(h.ai_provider, 'openai');
  await srv.stop();
  for (const [k, v] of Object.entries(secrets)) {
    if (k === 'TWILIO_ACCOUNT_SID') continue;
    assert.ok(!srv.stderr.includes(v), `${k} appears in the log`);
  }
  assert.match(srv.stderr, /auth_token=set/);
  cleanup(srv.dir);
});

test('the ARI password is never printed', async () => {
  // port 9 (discard) on loopback: nothing answers, the server keeps trying and logs it
  const env = { ARI_URL: 'http://127.0.0.1:9', ARI_USERNAME: 'sb-user', ARI_PASSWORD: 'ari-5d1c-secret', LOG_LEVEL: 'debug' };
  const srv = await startServer({ env });
  curl([`${srv.url}/health`]);
  await srv.stop();
  assert.ok(!srv.stderr.includes('ari-5d1c-secret'), 'ARI_PASSWORD appears in the log');
  cleanup(srv.dir);
});

test('without an auth token the server warns once that signatures are not checked', async () => {
  const srv = await startServer({ env: { TLS_PORT: 'off' } });
  await srv.stop();
  assert.equal(srv.logLines('config.no_auth_token').length, 1);
  cleanup(srv.dir);
});
