// jambonz's webhooks as the feature server sends them (lib/utils/http-requestor.js,
// base-requestor.js): JSON POSTs, snake_case keys, the Jambonz-Signature header; the call's
// fields (lib/session/call-info.js); answers checked as lib/tasks/make_task.js checks them.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import verbSpecs from '@jambonz/verb-specifications';

const { validate, normalizeJambones } = verbSpecs;
const quiet = { info() {}, debug() {}, error() {}, warn() {} };
export const hex = (n) => randomBytes(n).toString('hex');
export const SIP_REASON = { 180: 'Ringing', 200: 'OK', 404: 'Not Found', 480: 'Temporarily Unavailable', 486: 'Busy Here', 487: 'Request Terminated', 500: 'Server Internal Error', 503: 'Service Unavailable', 600: 'Busy Everywhere', 603: 'Decline' };

// ---- signatures -------------------------------------------------------------------------

/** The Jambonz-Signature header for a body (base-requestor.js _generateSigHeader). */
export function jambonzSignature(secret, rawBody, t = Math.floor(Date.now() / 1000)) {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${rawBody}`, 'utf8').digest('hex')}`;
}

/** @jambonz/node-client's WebhookResponse.verifyJambonzSignature, as a function: true or a reason. */
export function verifyJambonzSignature(secret, header, rawBody, { toleranceS = 300, now = Date.now() } = {}) {
  if (typeof header !== 'string') return 'no Jambonz-Signature';
  let t = -1;
  const sigs = [];
  for (const item of header.split(',')) {
    const [k, v] = item.split('=');
    if (k === 't') t = v;
    else if (k === 'v1') sigs.push(v);
  }
  if (t === -1) return 'no timestamp';
  if (!sigs.length) return 'no signatures';
  const ok = (Array.isArray(secret) ? secret : [secret]).some((s) => {
    const want = Buffer.from(createHmac('sha256', s).update(`${t}.${rawBody}`, 'utf8').digest('hex'));
    return sigs.some((x) => x.length === want.length && timingSafeEqual(Buffer.from(x), want));
  });
  if (!ok) return 'no matching signature';
  if (Math.floor(now / 1000) - t > toleranceS) return 'timestamp outside of tolerance';
  return true;
}

// http-requestor.js snakeCaseKeys(params, ['customerData', 'sip', 'env_vars', 'args']), with to-snake-case
const KEEP = ['customerData', 'sip', 'env_vars', 'args'];
const snake = (k) => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toLowerCase();
export function snakeKeys(o) {
  if (Array.isArray(o)) return o.map((x) => (x && typeof x === 'object' ? snakeKeys(x) : x));
  const out = {};
  for (const [k, v] of Object.entries(o)) out[KEEP.includes(k) ? k : snake(k)] = KEEP.includes(k) || !v || typeof v !== 'object' ? v : snakeKeys(v);
  return out;
}

// ---- the call's information (lib/session/call-info.js) ------------------------------------

export function callInfoJson(ci) {
  const o = { callSid: ci.callSid, direction: ci.direction, from: ci.from, to: ci.to, callId: ci.callId, sbcCallid: ci.sbcCallid, sipStatus: ci.sipStatus, sipReason: ci.sipReason, callStatus: ci.callStatus, callerId: ci.callerId, accountSid: ci.accountSid, traceId: ci.traceId, applicationSid: ci.applicationSid, fsSipAddress: ci.localSipAddress };
  for (const k of ['parentCallSid', 'originatingSipIp', 'originatingSipTrunkName', 'callTerminationBy']) if (ci[k]) o[k] = ci[k];
  if (typeof ci.duration === 'number') o.duration = ci.duration;
  if (ci.customerData) o.customerData = ci.customerData;
  if (ci.apiBaseUrl) o.apiBaseUrl = ci.apiBaseUrl;
  if (ci.publicIp) o.fsPublicIp = ci.publicIp;
  return JSON.parse(JSON.stringify(o));
}


export function inviteOf(ci, o) {
  const host = o.sbcAddress || '10.0.0.10:5060';
  const sdp = ['v=0', `o=- ${Date.now()} 1 IN IP4 ${ci.originatingSipIp}`, 's=-', `c=IN IP4 ${ci.originatingSipIp}`, 't=0 0', 'm=audio 40000 RTP/AVP 0 101', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=ptime:20', ''].join('\r\n');
  const headers = {
    via: `SIP/2.0/UDP ${host};rport=5060;branch=z9hG4bK${hex(6)}`, 'max-forwards': '70',
    from: `${ci.callerName ? `"${ci.callerName}" ` : ''}<sip:${ci.from}@${ci.originatingSipIp}>;tag=${hex(5)}`, to: `<sip:${ci.to}@${host}>`,
    'call-id': ci.callId, cseq: '1 INVITE', contact: `<sip:${host}>`, 'content-type': 'application/sdp', 'content-length': String(sdp.length),
    'X-Account-Sid': ci.accountSid, 'X-CID': ci.sbcCallid, 'X-Forwarded-For': ci.originatingSipIp, 'X-Originating-Carrier': ci.originatingSipTrunkName,
    'X-Application-Sid': ci.applicationSid, ...(o.sipHeaders || {}),
  };
  const uri = `sip:${ci.to}@${ci.localSipAddress}`;
  const raw = [`INVITE ${uri} SIP/2.0`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', sdp].join('\r\n');
  return { headers, raw, body: sdp, method: 'INVITE', version: '2.0', uri, payload: [{ type: 'application/sdp', content: sdp }] };
}

export const DEFAULTS = { synthesizer: { vendor: 'google', language: 'en-US', voice: 'en-US-Standard-C' }, recognizer: { vendor: 'google', language: 'en-US' } };

/**
 * One POST (or GET) as HttpRequestor.request makes it: {status, json, error}. Only 200, 202 and
 * 204 are success; the body is parsed only when the Content-Type says JSON; no redirects.
 */
export async function postHook(h, payload, { secret, timeoutMs = 10000 } = {}) {
  const method = (h.method || 'POST').toUpperCase();
  const body = JSON.stringify(payload);
  const headers = {};
  if (secret) headers['Jambonz-Signature'] = jambonzSignature(secret, body); // on GET too, over the params not sent
  if (h.username && h.password) headers.Authorization = 'Basic ' + Buffer.from(`${h.username}:${h.password}`).toString('base64');
  if (method === 'POST') headers['Content-Type'] = 'application/json';
  const r = { method, headers, status: null, json: undefined, error: null };
  try {
    const res = await fetch(h.url, { method, headers, body: method === 'POST' ? body : undefined, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    r.status = res.status;
    const text = await res.text();
    if (![200, 202, 204].includes(res.status)) throw new Error(`HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
    r.json = (res.headers.get('content-type') || '').includes('application/json') ? JSON.parse(text) : '';
  } catch (e) {
    r.error = e.name === 'TimeoutError' ? `no answer in ${timeoutMs / 1000} s` : e.message;
  }
  return r;
}

/** An answer's verbs as [{name, data}], checked as the feature server does (normalizeJambones + makeTask); throws. */
export function verbsOf(json) {
  validate(quiet, json);
  const tasks = normalizeJambones(quiet, json).map((t) => ({ name: Object.keys(t)[0], data: Object.values(t)[0] }));
  for (const { name, data } of tasks) {
    if (typeof data !== 'object') throw new Error('malformed jambonz application payload');
    // TaskSay's constructor asserts it
    if (name === 'say' && typeof data.text !== 'string' && !Array.isArray(data.text) && data.stream !== true) throw new Error('Say: either text or stream:true is required');
  }
  return tasks;
}
