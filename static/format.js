// How call data reads on the page: times, durations, statuses, outcomes.

export const isLive = (c) => !c.ended_at;

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

// "14:05:12" today, "Nov 21, 14:05:12" before.
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return (sameDay ? '' : dayFmt.format(d) + ', ') + timeFmt.format(d);
}

export function fmtDuration(sec) {
  if (sec === null || sec === undefined || Number.isNaN(sec)) return '—';
  sec = Math.max(0, Math.round(sec));
  const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
  const mm = h ? String(m).padStart(2, '0') : String(m);
  return (h ? h + ':' : '') + mm + ':' + String(s).padStart(2, '0');
}

// Seconds the call has lasted: duration_s once over, else counted from its start until now.
export function callSeconds(c, now = Date.now()) {
  if (!isLive(c)) {
    if (c.duration_s !== null && c.duration_s !== undefined) return c.duration_s;
    if (c.answered_at && c.ended_at) return (Date.parse(c.ended_at) - Date.parse(c.answered_at)) / 1000;
    return null;
  }
  const from = Date.parse(c.answered_at || c.started_at);
  return Number.isNaN(from) ? null : (now - from) / 1000;
}

const STATUS_WORDS = {
  queued: 'Queued', initiated: 'Dialing', ringing: 'Ringing', 'in-progress': 'Live', completed: 'Completed',
  busy: 'Busy', 'no-answer': 'No answer', failed: 'Failed', canceled: 'Canceled', simulation: 'Simulated',
};
export const statusWord = (st) => STATUS_WORDS[st] || (st ? st[0].toUpperCase() + st.slice(1) : 'Unknown');

// badge colour family of a status
export function statusTone(c) {
  if (c.status === 'simulation') return 'sim';
  if (isLive(c)) return c.status === 'in-progress' ? 'live' : 'pending';
  if (c.status === 'completed') return 'done';
  if (c.status === 'busy' || c.status === 'no-answer' || c.status === 'canceled') return 'warn';
  return 'bad';
}

const DIAL_WORDS = { completed: 'connected', busy: 'busy', 'no-answer': 'no answer', failed: 'failed', canceled: 'canceled' };

// What became of the call, in a few words.
export function outcome(c) {
  if (c.status === 'simulation') return 'Simulated, not placed';
  if (c.amd_result && c.amd_result.startsWith('machine')) return 'Answering machine';
  if (c.transfer_target) {
    if (!c.transfer_result) return isLive(c) ? 'Transferring…' : 'Transfer tried';
    if (c.transfer_result === 'completed') return 'Transferred';
    return 'Transfer ' + (DIAL_WORDS[c.transfer_result] || c.transfer_result);
  }
  if (isLive(c)) return c.status === 'in-progress' ? 'On the line' : 'Not answered yet';
  if (c.error_message) return 'Failed: ' + c.error_message;
  if (c.status === 'completed') return c.answered_at || c.direction === 'inbound' ? 'Answered by AI' : 'Completed';
  return statusWord(c.status);
}

export const directionWord = (d) => (d === 'outbound' ? 'Outbound' : d === 'inbound' ? 'Inbound' : d || '—');

// The telephony platform that carried the call (calls before platforms were recorded were Twilio's).
const PLATFORM_WORDS = { twilio: 'Twilio', asterisk: 'Asterisk', jambonz: 'jambonz' };
export const platformWord = (p) => PLATFORM_WORDS[p || 'twilio'] || p;

export const orDash = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));

const EVENT_WORDS = {
  'call.started': 'Call started', 'call.status': 'Twilio status', 'session.created': 'Session created', 'session.placed': 'Call placed with Twilio',
  'session.simulated': 'Simulated (Twilio not configured)', 'session.answered': 'Answered', 'session.failed': 'Placing the call failed',
  'stream.started': 'Audio stream started', 'stream.stopped': 'Audio stream stopped', 'stream.ended': 'Audio stream ended',
  'ai.ready': 'AI agent ready', 'ai.failed': 'AI agent failed', 'ai.error': 'AI agent error', 'barge_in': 'Caller interrupted the agent',
  'transfer.attempt': 'Transfer attempt', 'transfer.outcome': 'Transfer outcome', 'api.hangup': 'Hang-up requested',
  'voicemail.recorded': 'Voicemail recorded', 'forward.elevenlabs': 'Forwarded to ElevenLabs',
};
export const eventWord = (type) => EVENT_WORDS[type] || type;

// An event's detail object as short "key: value" text.
export function detailText(detail) {
  if (detail === null || detail === undefined) return '';
  if (typeof detail !== 'object') return String(detail);
  return Object.entries(detail)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => {
      const text = typeof v === 'object' ? JSON.stringify(v) : String(v);
      return `${k}: ${text.length > 80 ? text.slice(0, 79) + '…' : text}`;
    })
    .join(' · ');
}
