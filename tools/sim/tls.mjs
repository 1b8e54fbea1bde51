// A throw-away PKI for tests and `switchboard-sim answer`, made with the openssl CLI: a CA
// (EC P-256, self-signed, CA:TRUE) and a server certificate it signs for localhost and
// 127.0.0.1. Fakes serve TLS with the server pair; the code under test trusts the CA file
// (TWILIO_CA_FILE, curl's --cacert, node's `ca` option), so verification stays on as it is
// in production.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// The CA's own extensions; a config of our own so the system openssl.cnf cannot add or
// clash with any.
const CA_CONFIG = `[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = switchboard test CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

// What a TLS server certificate needs for libcurl/OpenSSL and node to accept it for
// https://127.0.0.1:PORT and https://localhost:PORT.
const SERVER_EXT = `basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

function openssl(args, cwd) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl not runnable: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

function result(dir) {
  const caFile = join(dir, 'ca.pem');
  const certFile = join(dir, 'server.pem');
  const keyFile = join(dir, 'server.key');
  return {
    caFile,
    certFile,
    keyFile,
    ca: readFileSync(caFile, 'utf8'),
    cert: readFileSync(certFile, 'utf8'),
    key: readFileSync(keyFile, 'utf8'),
  };
}

// Creates (or, when dir already holds a complete set, reuses) the PKI in dir.
// Returns {caFile, certFile, keyFile, ca, cert, key}: paths and PEM strings.
export function makeTestPki(dir) {
  mkdirSync(dir, { recursive: true });
  // server.pem is written last (by rename), so its presence means the set is complete
  if (['ca.pem', 'ca.key', 'server.key', 'server.pem'].every((f) => existsSync(join(dir, f)))) return result(dir);

  writeFileSync(join(dir, 'ca.cnf'), CA_CONFIG);
  writeFileSync(join(dir, 'server.ext'), SERVER_EXT);
  const ecKey = (out) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out], dir);
  const serial = () => '0x' + Date.now().toString(16) + Math.floor(Math.random() * 0xffff).toString(16);

  ecKey('ca.key');
  openssl(['req', '-x509', '-new', '-config', 'ca.cnf', '-key', 'ca.key', '-sha256', '-days', '3650',
    '-set_serial', serial(), '-out', 'ca.pem'], dir);

  ecKey('server.key');
  openssl(['req', '-new', '-key', 'server.key', '-subj', '/CN=localhost', '-out', 'server.csr'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', serial(),
    '-days', '825', '-sha256', '-extfile', 'server.ext', '-out', 'server.pem.tmp'], dir);
  renameSync(join(dir, 'server.pem.tmp'), join(dir, 'server.pem'));
  return result(dir);
}
