// Reading TwiML the way Twilio does: a <Response> whose element children are verbs, run in
// order; nouns nested inside verbs (<Dial><Number>, <Connect><Stream><Parameter>, ...).
import { DOMParser } from '@xmldom/xmldom';

// Every verb of TwiML Voice. The simulator runs the ones switchboard uses; the others are
// logged and skipped. A name not on this list is invalid TwiML (Twilio: error 12100).
export const VOICE_VERBS = new Set([
  'Say', 'Play', 'Pause', 'Connect', 'Dial', 'Redirect', 'Gather', 'Record', 'Hangup', 'Reject',
  'Start', 'Stop', 'Enqueue', 'Leave', 'Sms', 'Echo', 'Refer', 'Pay', 'Prompt', 'Queue',
]);

/** Parses a TwiML document. Returns {root} or {error}. */
export function parseTwiml(text) {
  const errors = [];
  let doc;
  try {
    doc = new DOMParser({
      onError: (level, msg) => {
        if (level !== 'warning') errors.push(String(msg).split('\n')[0]);
      },
    }).parseFromString(String(text || ''), 'text/xml');
  } catch (err) {
    return { error: String(err.message || err).split('\n')[0] };
  }
  if (errors.length) return { error: errors[0] };
  const root = doc && doc.documentElement;
  if (!root) return { error: 'empty document' };
  if (root.nodeName !== 'Response') return { error: `root element is <${root.nodeName}>, not <Response>` };
  return { root };
}

/** Element children of a node. */
export function elements(node) {
  return Array.from(node.childNodes || []).filter((n) => n.nodeType === 1);
}

/** Attributes of an element as a plain object. */
export function attrs(el) {
  return Object.fromEntries(Array.from(el.attributes || []).map((a) => [a.name, a.value]));
}

/** Text content, trimmed. */
export function text(el) {
  return (el.textContent || '').trim();
}
