// The home page: the day's chart, the "Call a customer" form and the call list, which live
// updates keep current without a reload.
import { h, replace } from './dom.js';
import { api } from './api.js';
import { callSeconds, directionWord, fmtDuration, fmtTime, isLive, orDash, outcome, platformWord, statusTone, statusWord } from './format.js';
import { dayChart } from './chart.js';
import { callForm } from './form.js';

const PAGE = 50;

export function statusBadge(c) {
  return h('span', { class: 'badge tone-' + statusTone(c), 'data-testid': 'status-badge' }, statusWord(c.status));
}

function rowFor(c) {
  const open = () => (location.hash = '#/calls/' + c.id);
  return h('tr', {
    class: 'call-row' + (isLive(c) ? ' is-live' : ''), tabindex: 0,
    'data-testid': 'call-row', 'data-session': c.id, 'data-status': c.status, 'data-direction': c.direction,
    'data-platform': c.platform || 'twilio',
    onclick: open,
    onkeydown: (e) => e.key === 'Enter' && open(),
  },
  h('td', null, statusBadge(c)),
  h('td', { class: 'dir dir-' + c.direction }, directionWord(c.direction)),
  h('td', { class: 'platform', 'data-testid': 'platform' }, platformWord(c.platform)),
  h('td', { class: 'num' }, h('a', { href: '#/calls/' + c.id }, orDash(c.from_number))),
  h('td', { class: 'num' }, orDash(c.to_number)),
  h('td', { class: 'time', title: c.started_at || '' }, fmtTime(c.started_at)),
  h('td', { class: 'dur', 'data-testid': 'duration' }, fmtDuration(callSeconds(c))),
  h('td', { class: 'outcome', 'data-testid': 'outcome' }, outcome(c)));
}

export function listView(main, bus) {
  const rows = new Map(); // id -> {call, tr}
  const tbody = h('tbody', { 'data-testid': 'call-rows' });
  const empty = h('p', { class: 'empty', 'data-testid': 'calls-empty', hidden: true }, 'No calls yet. Place one with the form, or call your Twilio number.');
  const error = h('p', { class: 'form-msg error', role: 'alert', 'data-testid': 'calls-error' });
  const more = h('button', { type: 'button', class: 'btn btn-quiet', hidden: true, onclick: () => load(cursor) }, 'Show older calls');
  const table = h('table', { class: 'calls', 'data-testid': 'calls-table', 'data-state': 'loading' },
    h('thead', null, h('tr', null, ['Status', 'Direction', 'Platform', 'From', 'To', 'Started', 'Duration', 'Outcome'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  const chart = dayChart(bus);
  let cursor = null, disposed = false, seq = 0;

  const byStartDesc = (a, b) => (b.started_at || '').localeCompare(a.started_at || '') || (b.id > a.id ? 1 : -1);

  function place(call, flash) {
    const old = rows.get(call.id);
    const tr = rowFor(call);
    if (flash) tr.classList.add('flash');
    if (old) {
      old.tr.replaceWith(tr);
    } else {
      // newest first: before the first row that started earlier
      const next = [...rows.values()].filter((r) => byStartDesc(call, r.call) < 0).sort((a, b) => byStartDesc(a.call, b.call))[0];
      tbody.insertBefore(tr, next ? next.tr : null);
    }
    rows.set(call.id, { call, tr });
    empty.hidden = rows.size > 0;
  }

  async function load(from = null) {
    const mine = ++seq;
    try {
      const q = `/api/calls?limit=${PAGE}` + (from ? '&cursor=' + encodeURIComponent(from) : '');
      const r = await api('GET', q);
      if (disposed || mine !== seq) return;
      if (!from) {
        rows.clear();
        tbody.replaceChildren();
      }
      for (const c of r.calls || []) place(c, false);
      table.dataset.state = 'ready';
      cursor = r.next_cursor || null;
      more.hidden = !cursor;
      error.textContent = '';
      empty.hidden = rows.size > 0;
    } catch (e) {
      if (disposed) return;
      table.dataset.state = 'error';
      error.textContent = 'The calls could not be loaded. ' + e.message;
    }
  }

  const onReady = () => load();
  const onCall = (e) => place(e.detail, true);
  bus.addEventListener('ready', onReady);
  bus.addEventListener('call', onCall);

  // live calls' durations count up
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const { call, tr } of rows.values()) if (isLive(call)) tr.querySelector('.dur').textContent = fmtDuration(callSeconds(call, now));
  }, 1000);

  const form = callForm({ onPlaced: () => load() });
  replace(main,
    h('div', { class: 'top-grid' }, chart.el, form),
    h('section', { class: 'card', 'aria-labelledby': 'calls-title' },
      h('div', { class: 'card-head' }, h('h2', { id: 'calls-title' }, 'Calls')),
      error,
      h('div', { class: 'table-wrap' }, table),
      empty, more));
  load();

  return {
    dispose() {
      disposed = true;
      clearInterval(ticker);
      bus.removeEventListener('ready', onReady);
      bus.removeEventListener('call', onCall);
      chart.dispose();
    },
  };
}
