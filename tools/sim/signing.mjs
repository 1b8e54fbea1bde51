// Twilio's side of a webhook: the parameters Twilio sends and the X-Twilio-Signature it
// puts on them, computed with Twilio's own helper library (npm `twilio`), so the server is
// checked against the reference implementation rather than against a copy of its own code.
//
// Signature (twilio's getExpectedTwilioSignature): HMAC-SHA1, keyed with the auth token,
// over the full URL Twilio requested (scheme, host, path, query; exactly as configured)
// followed by every POST parameter as name+value, sorted by name; base64.
// A WebSocket upgrade (Media Streams) has no body: the signature covers the `wss://` URL
// as written in the TwiML, with no parameters (twilio-labs/twilio-aspnet#162: "the URL
// must be adjusted to have a wss:// URL"; twilio/twilio-agent-connect-python#16 signs
// "wss://example.com/ws").
import { randomBytes } from 'node:crypto';
import twilio from 'twilio';

export const API_VERSION = '2010-04-01';
export const DEFAULT_ACCOUNT_SID = 'AC' + '0'.repeat(32);

/** X-Twilio-Signature for a form webhook to `url` with `params` (values may be arrays). */
export function computeSignature(authToken, url, params = {}) {
  return twilio.getExpectedTwilioSignature(authToken, url, params);
}

/** X-Twilio-Signature of a Media Streams WebSocket upgrade to `wssUrl`. */
export function wsSignature(authToken, wssUrl) {
  return twilio.getExpectedTwilioSignature(authToken, wssUrl, {});
}

/** A Twilio-shaped sid: two-letter prefix + 32 lowercase hex (CA call, MZ stream, RE recording). */
export function newSid(prefix) {
  return prefix + randomBytes(16).toString('hex');
}

// Twilio adds the caller's and callee's location, looked up from the number. A small table
// so the simulated webhook looks real; unknown numbers get the country only (Twilio sends
// empty strings for what it cannot tell).
const COUNTRY_CODES = [
  ['1', 'US'], ['44', 'GB'], ['49', 'DE'], ['33', 'FR'], ['34', 'ES'], ['39', 'IT'],
  ['31', 'NL'], ['353', 'IE'], ['61', 'AU'], ['64', 'NZ'], ['91', 'IN'], ['81', 'JP'],
];
const NANP_AREAS = {
  212: ['NEW YORK', 'NY', '10001', 'US'],
  310: ['LOS ANGELES', 'CA', '90001', 'US'],
  415: ['SAN FRANCISCO', 'CA', '94103', 'US'],
  512: ['AUSTIN', 'TX', '78701', 'US'],
  617: ['BOSTON', 'MA', '02108', 'US'],
  365: ['', 'ON', '', 'CA'],
  416: ['TORONTO', 'ON', '', 'CA'],
  604: ['VANCOUVER', 'BC', '', 'CA'],
  905: ['', 'ON', '', 'CA'],
};

/** {City, State, Zip, Country} Twilio would report for an E.164 number. */
export function geoOf(number) {
  const geo = { City: '', State: '', Zip: '', Country: '' };
  const m = /^\+(\d+)$/.exec(String(number || ''));
  if (!m) return geo;
  const digits = m[1];
  if (digits.startsWith('1') && NANP_AREAS[digits.slice(1, 4)]) {
    const [City, State, Zip, Country] = NANP_AREAS[digits.slice(1, 4)];
    return { City, State, Zip, Country };
  }
  const cc = COUNTRY_CODES.filter(([p]) => digits.startsWith(p)).sort((a, b) => b[0].length - a[0].length)[0];
  if (cc) geo.Country = cc[1];
  return geo;
}

/**
 * The parameters of Twilio's voice webhook for an inbound call (TwiML Voice: Twilio's
 * Request): CallSid, AccountSid, From, To, CallStatus, ApiVersion, Direction, the
 * location of both ends (From..., To... and their legacy Caller..., Called... twins), and, when
 * given, CallerName and ForwardedFrom.
 */
export function inboundCallParams({
  accountSid = DEFAULT_ACCOUNT_SID,
  callSid = newSid('CA'),
  from,
  to,
  callStatus = 'ringing',
  callerName,
  forwardedFrom,
} = {}) {
  const f = geoOf(from);
  const t = geoOf(to);
  const p = {
    AccountSid: accountSid,
    ApiVersion: API_VERSION,
    CallSid: callSid,
    CallStatus: callStatus,
    Called: to,
    CalledCity: t.City,
    CalledCountry: t.Country,
    CalledState: t.State,
    CalledZip: t.Zip,
    Caller: from,
    CallerCity: f.City,
    CallerCountry: f.Country,
    CallerState: f.State,
    CallerZip: f.Zip,
    Direction: 'inbound',
    From: from,
    FromCity: f.City,
    FromCountry: f.Country,
    FromState: f.State,
    FromZip: f.Zip,
    To: to,
    ToCity: t.City,
    ToCountry: t.Country,
    ToState: t.State,
    ToZip: t.Zip,
  };
  if (callerName !== undefined) p.CallerName = callerName;
  if (forwardedFrom !== undefined) p.ForwardedFrom = forwardedFrom;
  return p;
}

/** Twilio's timestamp format in status callbacks (RFC 2822, "+0000"). */
export function rfc2822(date = new Date()) {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/**
 * A call status callback: the call's parameters with the new CallStatus, plus
 * CallbackSource "call-progress-events", SequenceNumber (0, 1, 2, ... per call, so the
 * receiver can order them) and Timestamp; on `completed`, CallDuration (seconds) and
 * Duration (billed minutes, rounded up).
 */
export function statusCallbackParams(callParams, { status, sequenceNumber, timestamp = new Date(), durationS } = {}) {
  const p = { ...callParams, CallStatus: status, CallbackSource: 'call-progress-events', SequenceNumber: String(sequenceNumber), Timestamp: rfc2822(timestamp) };
  if (durationS !== undefined) {
    p.CallDuration = String(Math.round(durationS));
    p.Duration = String(Math.max(1, Math.ceil(durationS / 60)));
  }
  return p;
}

/**
 * Sends one webhook as Twilio does: `signUrl` is the URL Twilio believes it is calling
 * (what the server signs against), `sendUrl` where it actually goes (the local server).
 * POST: form body; GET: parameters appended to the query (and so to the signed URL).
 * Resolves {status, contentType, text, ms, signature, url}; network errors give status 0.
 */
export async function sendWebhook({ method = 'POST', signUrl, sendUrl, params = {}, authToken, timeoutMs = 15000, headers = {} }) {
  method = String(method || 'POST').toUpperCase();
  let body;
  const h = { 'User-Agent': 'TwilioProxy/1.1', Accept: '*/*', ...headers };
  if (method === 'GET') {
    const qs = new URLSearchParams(params).toString();
    if (qs) {
      signUrl += (signUrl.includes('?') ? '&' : '?') + qs;
      sendUrl += (sendUrl.includes('?') ? '&' : '?') + qs;
    }
  } else {
    h['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(params).toString();
  }
  const signature = authToken ? computeSignature(authToken, signUrl, method === 'GET' ? {} : params) : null;
  if (signature) h['X-Twilio-Signature'] = signature;
  const t0 = performance.now();
  try {
    const res = await fetch(sendUrl, { method, headers: h, body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    return { status: res.status, contentType: res.headers.get('content-type') || '', text, ms: performance.now() - t0, signature, url: signUrl };
  } catch (err) {
    return { status: 0, contentType: '', text: '', error: err.cause?.message || err.message, ms: performance.now() - t0, signature, url: signUrl };
  }
}
