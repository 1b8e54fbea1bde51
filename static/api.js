// The public API, from the page: the token (session storage), a fetch wrapper that sends it,
// and every failure turned into words a person understands.

import { playableWav } from './wav.js';

const KEY = 'switchboard.token';

export const EXPIRED = 'Your session has expired or the token is not valid. Sign in again.';

// Fired on `events` as 'signout' (detail: the reason in words) when the server refuses the token.
export const events = new EventTarget();

export const getToken = () => sessionStorage.getItem(KEY);
export const setToken = (t) => sessionStorage.setItem(KEY, t);

export function signOut(reason = '') {
  sessionStorage.removeItem(KEY);
  events.dispatchEvent(new CustomEvent('signout', { detail: reason }));
}

// The claims of a JWT (not verified: that is the server's job), or null.
export function claims(token) {
  try {
    const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(b64));
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(words, { status = 0, code = null, field = null } = {}) {
    super(words);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const sentence = (m) => (m ? m[0].toUpperCase() + m.slice(1) + (/[.!?]$/.test(m) ? '' : '.') : '');

// The words for a failed answer: status plus the API's {error:{code,message,field}}.
export function errorWords(status, err = {}) {
  const msg = err.message || '';
  switch (true) {
    case status === 401: return EXPIRED;
    case status === 403: return 'This needs the admin role.';
    case status === 404: return 'Not found: it may belong to another tenant or no longer exist.';
    case status === 409: return 'This call is no longer in progress.';
    case status === 429: return 'Too many requests: wait a moment and try again.';
    case status === 503 && (err.code === 'twilio_not_configured' || /not configured/i.test(msg)): return sentence(msg);
    case status === 503 && err.code === 'db_unavailable': return 'The database is busy. Try again in a moment.';
    case status === 503: return 'Twilio is busy or not reachable — try again in a moment.';
    case status === 502: return 'Twilio refused the request' + (msg ? ': ' + msg.replace(/^Twilio /, '') : '.');
    case status >= 400 && status < 500: return sentence(msg) || 'The request was not accepted.';
    default: return `Something went wrong on the server (error ${status}). Try again.`;
  }
}

// api('GET', '/api/calls') -> parsed JSON; throws ApiError with .message in words.
// A 401 also signs out (the app shows the sign-in screen).
export async function api(method, path, { body, headers = {}, token = getToken(), signal } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (token) h.Authorization = 'Bearer ' + token;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError('The server cannot be reached. Check that switchboard is running, then try again.');
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: the words below do without it */
  }
  if (res.ok) return json;
  const err = (json && json.error) || {};
  const e = new ApiError(errorWords(res.status, err), { status: res.status, code: err.code || null, field: err.field || null });
  if (res.status === 401 && token === getToken()) signOut(EXPIRED);
  throw e;
}

// The recording as an object URL for <audio> (the JWT cannot go in a src attribute), as PCM.
export async function recordingUrl(id) {
  let res;
  try {
    res = await fetch(`/api/calls/${encodeURIComponent(id)}/recording`, { headers: { Authorization: 'Bearer ' + getToken() }, cache: 'no-store' });
  } catch {
    throw new ApiError('The server cannot be reached.');
  }
  if (!res.ok) {
    if (res.status === 401) signOut(EXPIRED);
    throw new ApiError(res.status === 404 ? 'The recording is not available.' : errorWords(res.status), { status: res.status });
  }
  return URL.createObjectURL(new Blob([playableWav(await res.arrayBuffer())], { type: 'audio/wav' }));
}
