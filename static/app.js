// The dashboard's entry point: sign-in, the hash router (#/ and #/calls/<id>), the header and
// the one live-updates stream every view listens to.
import { $, h, replace } from './dom.js';
import { api, claims, events, getToken, setToken, signOut, EXPIRED } from './api.js';
import { connectLive } from './live.js';
import { listView } from './calls.js';
import { callView } from './call.js';

// Views listen here: 'ready' (the stream (re)subscribed: reload) and 'call' (detail: a list row).
const bus = new EventTarget();
let live = null, view = null, expiryTimer = null, signInNote = '';

const LIVE_WORDS = { off: 'Live updates off', connecting: 'Connecting…', live: 'Live', paused: 'Live updates paused, retrying' };

function liveState(state) {
  const el = $('#live-status');
  el.dataset.state = state;
  el.textContent = LIVE_WORDS[state] || state;
}

function startSession() {
  const token = getToken();
  const c = claims(token) || {};
  $('#who').textContent = [c.sub, c.tenant_id !== undefined && 'tenant ' + c.tenant_id, c.role].filter(Boolean).join(' · ');
  $('#session').hidden = false;
  clearTimeout(expiryTimer);
  const left = c.exp ? c.exp * 1000 - Date.now() : null;
  if (left !== null && left < 2 ** 31 - 1) expiryTimer = setTimeout(() => signOut(EXPIRED), Math.max(0, left));
  if (live) return;
  live = connectLive({
    token,
    onState: liveState,
    onReady: () => bus.dispatchEvent(new Event('ready')),
    onCall: (row) => bus.dispatchEvent(new CustomEvent('call', { detail: row })),
    onExpired: () => signOut(EXPIRED),
  });
}

function endSession() {
  clearTimeout(expiryTimer);
  if (live) live.close();
  live = null;
  $('#session').hidden = true;
  liveState('off');
}

function signInView(main) {
  const input = h('textarea', { id: 'token', rows: 4, spellcheck: 'false', autocomplete: 'off', placeholder: 'eyJhbGciOiJIUzI1NiIs…', 'data-testid': 'token-input', 'aria-describedby': 'token-help' });
  const msg = h('p', { class: 'form-msg error', role: 'alert', 'data-testid': 'sign-in-message' }, signInNote);
  const button = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'sign-in' }, 'Sign in');
  signInNote = '';
  async function submit(ev) {
    ev.preventDefault();
    const token = input.value.trim().replace(/^Bearer\s+/i, '');
    msg.textContent = !token ? 'Paste a token first.'
      : token.split('.').length !== 3 ? 'That is not a token: it should be three parts separated by dots.' : '';
    if (msg.textContent) return;
    button.disabled = true;
    try {
      await api('GET', '/api/calls?limit=1', { token });
      setToken(token);
      if (location.hash === '#/' || location.hash.startsWith('#/calls/')) render();
      else location.hash = '#/'; // hashchange renders
    } catch (e) {
      msg.textContent = e.message;
      button.disabled = false;
    }
  }
  replace(main,
    h('form', { class: 'card signin', 'data-testid': 'sign-in-form', onsubmit: submit },
      h('h1', null, 'Sign in'),
      h('p', { id: 'token-help', class: 'muted' },
        'Paste an API token. An operator makes one on the server with ',
        h('code', null, 'switchboard token --tenant 1 --role agent'),
        ' (add ', h('code', null, '--ttl 8h'), ' for a longer session). It is kept in this tab only, until you sign out or close it.'),
      h('label', { for: 'token' }, 'Token'),
      input, msg,
      h('div', { class: 'actions' }, button)));
  input.focus();
}

function render() {
  if (view && view.dispose) view.dispose();
  view = null;
  const main = $('#main');
  if (!getToken()) {
    endSession();
    signInView(main);
    return;
  }
  startSession();
  const m = /^#\/calls\/([A-Za-z0-9_-]{1,64})$/.exec(location.hash);
  view = m ? callView(main, m[1], bus) : listView(main, bus);
}

events.addEventListener('signout', (e) => {
  signInNote = e.detail || '';
  render();
});
$('#sign-out').addEventListener('click', () => {
  signOut('');
  location.hash = '#/';
});
window.addEventListener('hashchange', render);
render();
