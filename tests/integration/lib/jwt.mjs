// Bearer tokens for the application API, crafted here (not by the server) so tests can
// make bad ones too.
import { createHmac } from 'node:crypto';

export const JWT_SECRET = 'integration-jwt-secret-0123456789abcdef';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export function token(claims = {}, { secret = JWT_SECRET, header = { alg: 'HS256', typ: 'JWT' }, sign = true } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub: 'agent@example.com', tenant_id: 1, role: 'admin', iat: now, exp: now + 3600, ...claims };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  const head = b64url(JSON.stringify(header)) + '.' + b64url(JSON.stringify(payload));
  const sig = sign ? createHmac('sha256', secret).update(head).digest('base64url') : '';
  return head + '.' + sig;
}

export async function api(srv, method, path, { tok, body, headers = {} } = {}) {
  const h = { ...headers };
  if (tok !== null) h.Authorization = 'Bearer ' + (tok ?? token());
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(srv.url + path, { method, headers: h, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}
