// Plays Twilio against the server: form webhooks signed with Twilio's own helper library.
import twilio from 'twilio';
import { DOMParser } from '@xmldom/xmldom';

export const AUTH_TOKEN = 'test-auth-token-0123456789abcdef';
export const PUBLIC_BASE_URL = 'https://voice.example.com';

let sidCounter = 0;
export function callSid() {
  sidCounter++;
  return 'CA' + (Date.now().toString(16) + sidCounter.toString(16).padStart(8, '0')).padStart(32, '0').slice(-32);
}

// POSTs form params to path; signs as Twilio would for PUBLIC_BASE_URL + path unless
// opts.signature (a string, or null for none) or opts.token/opts.signUrl say otherwise.
export async function webhook(srv, path, params, opts = {}) {
  const token = opts.token ?? AUTH_TOKEN;
  const signUrl = opts.signUrl ?? PUBLIC_BASE_URL + path;
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  const sig = opts.signature !== undefined ? opts.signature : twilio.getExpectedTwilioSignature(token, signUrl, params);
  if (sig !== null) headers['X-Twilio-Signature'] = sig;
  const body = opts.rawBody ?? new URLSearchParams(params).toString();
  const res = await fetch(srv.url + path, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), text, xml: parseTwiml(text) };
}

// The TwiML as a tree of {name, attrs, text, children}; null when the body is not XML.
export function parseTwiml(text) {
  if (!text.startsWith('<?xml')) return null;
  const doc = new DOMParser().parseFromString(text, 'text/xml');
  const walk = (el) => ({
    name: el.nodeName,
    attrs: Object.fromEntries(Array.from(el.attributes || []).map((a) => [a.name, a.value])),
    text: Array.from(el.childNodes)
      .filter((n) => n.nodeType === 3)
      .map((n) => n.data)
      .join(''),
    children: Array.from(el.childNodes)
      .filter((n) => n.nodeType === 1)
      .map(walk),
  });
  return walk(doc.documentElement);
}

export function verbs(xml) {
  return xml.children.map((c) => c.name);
}

export function find(xml, name) {
  if (xml.name === name) return xml;
  for (const c of xml.children) {
    const f = find(c, name);
    if (f) return f;
  }
  return null;
}

export function voiceParams(sid, from = '+14155550111', to = '+14155550100') {
  return {
    AccountSid: 'AC00000000000000000000000000000000',
    ApiVersion: '2010-04-01',
    CallSid: sid,
    CallStatus: 'ringing',
    Called: to,
    Caller: from,
    Direction: 'inbound',
    From: from,
    FromCountry: 'US',
    To: to,
    ToCountry: 'US',
  };
}

// The session id the voice answer carries (Connect action or Dial action query).
export function sessionOf(xml) {
  const s = JSON.stringify(xml).match(/session=([0-9a-f]{32})/);
  return s ? s[1] : null;
}
