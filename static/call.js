// One call: its details, Transfer / Hang up while live, the transcript as a chat, the event
// timeline, bookings and tickets, and the recording. Reloaded when a live event names it.
import { h, replace } from './dom.js';
import { api, recordingUrl } from './api.js';
import { callSeconds, detailText, directionWord, eventWord, fmtDuration, fmtTime, isLive, orDash, outcome, platformWord } from './format.js';
import { statusBadge } from './calls.js';

const RELOAD_GAP_MS = 250;
const TRANSFER_TARGETS = [['primary', 'Primary line'], ['secondary', 'Secondary line'], ['voicemail', 'Voicemail']];

function details(c) {
  const rows = [
    ['Direction', directionWord(c.direction)], ['Platform', platformWord(c.platform)], ['From', orDash(c.from_number)], ['To', orDash(c.to_number)],
    ['Agent', orDash(c.agent_type)], ['Customer', orDash(c.customer_id)], ['Call SID', orDash(c.call_sid)],
    ['Started', fmtTime(c.started_at)], ['Answered', fmtTime(c.answered_at)], ['Ended', isLive(c) ? 'still live' : fmtTime(c.ended_at)],
    ['Duration', fmtDuration(callSeconds(c))], ['Outcome', outcome(c)],
  ];
  if (c.transfer_target) rows.push(['Transfer to', c.transfer_target], ['Transfer result', orDash(c.transfer_result)]);
  if (c.transfer_reason) rows.push(['Transfer reason', c.transfer_reason]);
  if (c.sip_response_code) rows.push(['SIP response', String(c.sip_response_code)]);
  if (c.amd_result) rows.push(['Answered by', c.amd_result]);
  if (c.error_code || c.error_message) rows.push(['Error', [c.error_code, c.error_message].filter(Boolean).join(' — ')]);
  return h('dl', { class: 'details', 'data-testid': 'call-details' }, rows.map(([k, v]) => h('div', null, h('dt', null, k), h('dd', { 'data-field': k }, v))));
}

function transcript(lines) {
  if (!lines.length) return h('p', { class: 'muted', 'data-testid': 'transcript-empty' }, 'Nothing said yet.');
  return h('ol', { class: 'chat', 'data-testid': 'transcript' }, lines.map((l) =>
    h('li', { class: 'msg msg-' + l.role, 'data-testid': 'transcript-line', 'data-role': l.role },
      h('span', { class: 'who' }, l.role === 'caller' ? 'Caller' : l.role === 'agent' ? 'Agent' : 'System', ' · ', fmtTime(l.at)),
      h('p', { class: 'text' }, l.text))));
}

function timeline(events) {
  if (!events.length) return h('p', { class: 'muted' }, 'No events.');
  return h('ol', { class: 'timeline', 'data-testid': 'timeline' }, events.map((e) =>
    h('li', { 'data-testid': 'timeline-event', 'data-type': e.type },
      h('time', { datetime: e.at }, fmtTime(e.at)), h('span', { class: 'ev', title: e.type }, eventWord(e.type)),
      e.detail ? h('span', { class: 'ev-detail' }, detailText(e.detail)) : null)));
}

function records(c) {
  const items = [
    ...(c.bookings || []).map((b) => h('li', { class: 'record', 'data-testid': 'booking' },
      h('strong', null, 'Booking'), ` ${b.name || ''} — ${b.date || ''} ${b.time || ''}`, b.notes ? h('span', { class: 'muted' }, ' · ' + b.notes) : null,
      h('span', { class: 'badge tone-done' }, b.status || 'requested'))),
    ...(c.tickets || []).map((t) => h('li', { class: 'record', 'data-testid': 'ticket' },
      h('strong', null, 'Ticket'), ' ' + (t.summary || ''), h('span', { class: 'badge tone-' + (t.priority === 'high' || t.priority === 'urgent' ? 'bad' : 'pending') }, t.priority || 'normal'),
      h('span', { class: 'muted' }, ' ' + (t.status || 'open')))),
  ];
  return items.length ? h('ul', { class: 'records' }, items) : h('p', { class: 'muted' }, 'No booking or ticket from this call.');
}

export function callView(main, id, bus) {
  let disposed = false, call = null, timer = null, last = 0, audioUrl = null, recordingShown = false;
  const head = h('div', { class: 'call-head' });
  const actionMsg = h('p', { class: 'action-result', role: 'status', 'data-testid': 'action-result' });
  const parts = { details: h('div'), transcript: h('div'), timeline: h('div'), records: h('div'), recording: h('div', { 'data-testid': 'recording' }) };
  const error = h('p', { class: 'form-msg error', role: 'alert', 'data-testid': 'call-error' });

  async function act(kind, button, body) {
    button.disabled = true;
    actionMsg.className = 'action-result';
    const via = platformWord(call && call.platform);
    actionMsg.textContent = kind === 'transfer' ? `Asking ${via} to transfer…` : `Asking ${via} to hang up…`;
    try {
      await api('POST', `/api/calls/${encodeURIComponent(id)}/${kind}`, { body });
      actionMsg.classList.add('ok');
      actionMsg.textContent = kind === 'transfer' ? `Transfer requested: ${via} is connecting the caller.` : 'Hang-up requested: the call is ending.';
    } catch (e) {
      actionMsg.classList.add('error');
      actionMsg.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }

  function actions(c) {
    if (!isLive(c) || !c.call_sid) return null;
    const target = h('select', { 'aria-label': 'Transfer to', 'data-testid': 'transfer-target' }, TRANSFER_TARGETS.map(([v, l]) => h('option', { value: v }, l)));
    const transfer = h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'transfer-button' }, 'Transfer');
    const hangup = h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'hangup-button' }, 'Hang up');
    transfer.addEventListener('click', () => act('transfer', transfer, { target: target.value }));
    hangup.addEventListener('click', () => act('hangup', hangup));
    return h('div', { class: 'call-actions', 'data-testid': 'call-actions' }, target, transfer, hangup);
  }

  async function showRecording(c) {
    if (c.recording_available && isLive(c)) {
      replace(parts.recording, h('p', { class: 'muted' }, 'Recording: it can be played once the call has ended.'));
    } else if (c.recording_available && !recordingShown) {
      recordingShown = true;
      replace(parts.recording, h('p', { class: 'muted' }, 'Loading the recording…'));
      try {
        const url = await recordingUrl(id);
        if (disposed) return URL.revokeObjectURL(url);
        audioUrl = url;
        replace(parts.recording, h('audio', { controls: true, preload: 'metadata', src: url, 'data-testid': 'recording-player' }),
          h('p', null, h('a', { href: url, download: `call-${id}.wav` }, 'Download (WAV)')));
      } catch (e) {
        recordingShown = false;
        replace(parts.recording, h('p', { class: 'muted' }, e.message));
      }
    } else if (!recordingShown) {
      const words = c.recording ? `Recorded at Twilio (${c.recording.sid || 'no sid'}, ${fmtDuration(c.recording.duration_s)}); not stored on this server.` : 'No recording for this call.';
      replace(parts.recording, h('p', { class: 'muted' }, words));
    }
  }

  function draw(c) {
    const title = c.direction === 'outbound' ? `Call to ${orDash(c.to_number)}` : `Call from ${orDash(c.from_number)}`;
    replace(head,
      h('div', null, h('h1', null, title, ' ', statusBadge(c)), h('p', { class: 'muted' }, outcome(c) + (c.summary ? ' — ' + c.summary : ''))),
      actions(c));
    replace(parts.details, details(c));
    const chat = parts.transcript.querySelector('.chat');
    const atBottom = !chat || chat.scrollTop + chat.clientHeight >= chat.scrollHeight - 8;
    replace(parts.transcript, transcript(c.transcript || []));
    const after = parts.transcript.querySelector('.chat');
    if (after && atBottom) after.scrollTop = after.scrollHeight;
    replace(parts.timeline, timeline(c.events || []));
    replace(parts.records, records(c));
    showRecording(c);
  }

  async function load() {
    last = Date.now();
    try {
      const c = await api('GET', '/api/calls/' + encodeURIComponent(id));
      if (disposed) return;
      call = c;
      error.textContent = '';
      draw(c);
    } catch (e) {
      if (!disposed) error.textContent = e.status === 404 ? 'There is no such call for your tenant.' : 'The call could not be loaded. ' + e.message;
    }
  }

  function reloadSoon() {
    if (timer || disposed) return;
    timer = setTimeout(() => {
      timer = null;
      load();
    }, Math.max(0, last + RELOAD_GAP_MS - Date.now()));
  }
  const onCall = (e) => e.detail.id === id && reloadSoon();
  bus.addEventListener('call', onCall);
  bus.addEventListener('ready', reloadSoon);
  const ticker = setInterval(() => {
    const dd = call && isLive(call) && parts.details.querySelector('dd[data-field="Duration"]');
    if (dd) dd.textContent = fmtDuration(callSeconds(call));
  }, 1000);

  replace(main,
    h('p', { class: 'back' }, h('a', { href: '#/', 'data-testid': 'back' }, '← All calls')),
    error,
    h('section', { class: 'card call', 'data-testid': 'call-page', 'data-session': id }, head, actionMsg, parts.details),
    h('div', { class: 'call-grid' },
      h('section', { class: 'card' }, h('h2', null, 'Transcript'), parts.transcript),
      h('div', { class: 'stack' },
        h('section', { class: 'card' }, h('h2', null, 'Booking and ticket'), parts.records),
        h('section', { class: 'card' }, h('h2', null, 'Recording'), parts.recording),
        h('section', { class: 'card' }, h('h2', null, 'Timeline'), parts.timeline))));
  load();

  return {
    dispose() {
      disposed = true;
      clearTimeout(timer);
      clearInterval(ticker);
      bus.removeEventListener('call', onCall);
      bus.removeEventListener('ready', reloadSoon);
      if (audioUrl) URL.revokeObjectURL(audioUrl);
    },
  };
}
