// A picture of the day (the user's local day): calls per hour as an SVG bar chart and the
// outcome shares as a stacked bar with a legend. Data from GET /api/stats; redrawn on live
// call events, at most every 5 s.
import { h, s, replace } from './dom.js';
import { api } from './api.js';

const MIN_GAP_MS = 5000;
const OUTCOMES = [
  ['ai', 'Answered by AI'],
  ['transferred', 'Transferred'],
  ['voicemail', 'Voicemail'],
  ['failed', 'Failed'],
  ['in_progress', 'In progress', true], // optional ones are listed only when there are some
  ['simulated', 'Simulated', true],
];

// Local midnight to the next local midnight, as UTC ISO strings.
export function localDay(now = new Date()) {
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const end = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
  return { since: start.toISOString(), until: end.toISOString() };
}

function niceMax(n) {
  if (n <= 4) return Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= n);
}

const hourLabel = (iso) => String(new Date(iso).getHours()).padStart(2, '0');

export function hourlySvg(buckets) {
  const W = 480, H = 150, L = 26, B = 18, T = 8;
  const pw = W - L - 4, ph = H - B - T;
  const max = niceMax(Math.max(0, ...buckets.map((b) => b.calls)));
  const bw = pw / Math.max(1, buckets.length);
  const nowMs = Date.now();
  const y = (v) => T + ph - (v / max) * ph;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'data-testid': 'chart', 'data-total': buckets.reduce((a, b) => a + b.calls, 0), 'aria-label': 'Calls per hour today' });
  for (const v of [0, max / 2, max]) {
    if (v !== Math.round(v) && v !== 0) continue;
    svg.append(s('line', { class: 'grid', x1: L, x2: W - 4, y1: y(v), y2: y(v) }),
      s('text', { class: 'axis', x: L - 5, y: y(v) + 3.5, 'text-anchor': 'end' }, String(v)));
  }
  buckets.forEach((b, i) => {
    const start = Date.parse(b.start), x = L + i * bw;
    const current = nowMs >= start && nowMs < start + 3600e3;
    const hgt = (b.calls / max) * ph;
    svg.append(s('rect', {
      class: 'bar' + (current ? ' now' : ''), x: x + bw * 0.15, y: y(b.calls), width: bw * 0.7, height: Math.max(b.calls ? 1 : 0, hgt), rx: 2,
      'data-testid': 'chart-bar', 'data-calls': b.calls, 'data-hour': hourLabel(b.start),
    }, s('title', null, `${hourLabel(b.start)}:00 — ${b.calls} call${b.calls === 1 ? '' : 's'}`)));
    if (new Date(b.start).getHours() % 3 === 0) svg.append(s('text', { class: 'axis', x: x + bw / 2, y: H - 4, 'text-anchor': 'middle' }, hourLabel(b.start)));
  });
  return svg;
}

export function outcomeParts(outcomes) {
  const total = OUTCOMES.reduce((a, [k]) => a + (outcomes[k] || 0), 0);
  const svg = s('svg', { viewBox: '0 0 480 14', class: 'shares', role: 'img', 'data-testid': 'outcome-chart', 'aria-label': 'Outcome shares', preserveAspectRatio: 'none' });
  const legend = h('ul', { class: 'legend' });
  let x = 0;
  if (!total) svg.append(s('rect', { class: 'share empty', x: 0, y: 0, width: 480, height: 14, rx: 3 }));
  for (const [k, label, optional] of OUTCOMES) {
    const n = outcomes[k] || 0;
    if (optional && !n) continue;
    const pct = total ? Math.round((n / total) * 100) : 0;
    if (n) {
      const w = (n / total) * 480;
      svg.append(s('rect', { class: 'share o-' + k, x, y: 0, width: w, height: 14 }, s('title', null, `${label}: ${n} (${pct}%)`)));
      x += w;
    }
    legend.append(h('li', { 'data-testid': 'outcome-' + k, 'data-count': n },
      h('span', { class: 'swatch o-' + k }), h('span', { class: 'lbl' }, label),
      h('span', { class: 'cnt' }, String(n)), h('span', { class: 'pct' }, total ? pct + '%' : '')));
  }
  return [svg, legend];
}

export function dayChart(bus) {
  const total = h('span', { class: 'muted', 'data-testid': 'chart-total' });
  const body = h('div', { class: 'chart-body' }, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', { class: 'card chart-card', 'data-testid': 'day-chart', 'aria-labelledby': 'chart-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'chart-title' }, 'Today'), total), body);
  let disposed = false, last = 0, timer = null, inflight = false;

  async function refresh() {
    if (inflight) return schedule();
    inflight = true;
    last = Date.now();
    try {
      const st = await api('GET', '/api/stats?' + new URLSearchParams(localDay()));
      if (disposed) return;
      total.textContent = `${st.total} call${st.total === 1 ? '' : 's'}`;
      replace(body, hourlySvg(st.buckets || []), h('h3', null, 'Outcomes'), ...outcomeParts(st.outcomes || {}));
    } catch (e) {
      if (!disposed) replace(body, h('p', { class: 'muted', 'data-testid': 'chart-error' }, 'The day’s figures are not available. ' + e.message));
    } finally {
      inflight = false;
    }
  }

  function schedule() {
    if (timer || disposed) return;
    timer = setTimeout(() => {
      timer = null;
      refresh();
    }, Math.max(0, last + MIN_GAP_MS - Date.now()));
  }

  bus.addEventListener('call', schedule);
  bus.addEventListener('ready', schedule);
  refresh();
  return {
    el,
    dispose() {
      disposed = true;
      clearTimeout(timer);
      bus.removeEventListener('call', schedule);
      bus.removeEventListener('ready', schedule);
    },
  };
}
