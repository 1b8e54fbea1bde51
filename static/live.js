// Live updates: GET /api/live read as Server-Sent Events over fetch (EventSource cannot send
// the Authorization header), reconnecting after 2 s, backing off to 10 s.
//
//   const live = connectLive({ token, onReady, onCall, onExpired, onState });
//   live.close();
// onState(state): 'connecting' | 'live' | 'paused' (the stream dropped, retrying).

const FIRST_RETRY_MS = 2000;
const MAX_RETRY_MS = 10000;
const SILENCE_MS = 45000; // the server pings every 15 s: this long without a byte is a dead stream

// One event block ("event: x\ndata: y\nid: z") into {event, data, id}; comment-only blocks are null.
export function parseBlock(block) {
  let event = 'message', id = null;
  const data = [];
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (!line || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
  return data.length || event !== 'message' ? { event, data: data.join('\n'), id } : null;
}

export function connectLive({ token, onReady, onCall, onExpired, onState }) {
  let closed = false, ctrl = null, retry = FIRST_RETRY_MS, timer = null, watchdog = null;

  const state = (s) => !closed && onState && onState(s);

  function dispatch(msg) {
    if (msg.event === 'ready') {
      retry = FIRST_RETRY_MS;
      state('live');
      onReady && onReady();
    } else if (msg.event === 'call') {
      let row = null;
      try {
        row = JSON.parse(msg.data);
      } catch {
        return; // a broken event is skipped, the next ready reloads anyway
      }
      if (row && row.id) onCall && onCall(row);
    } else if (msg.event === 'expired') {
      closed = true;
      ctrl && ctrl.abort();
      onExpired && onExpired();
    }
  }

  function feed() {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => ctrl && ctrl.abort(), SILENCE_MS);
  }

  async function run() {
    ctrl = new AbortController();
    state('connecting');
    try {
      const res = await fetch('/api/live', {
        headers: { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' },
        signal: ctrl.signal,
        cache: 'no-store',
      });
      if (res.status === 401) {
        closed = true;
        onExpired && onExpired();
        return;
      }
      if (!res.ok || !res.body) throw new Error('live: ' + res.status);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      feed();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || closed) break;
        feed();
        buf += value;
        for (let m; (m = /\r\n\r\n|\n\n|\r\r/.exec(buf)); ) {
          const msg = parseBlock(buf.slice(0, m.index));
          buf = buf.slice(m.index + m[0].length);
          if (msg) dispatch(msg);
          if (closed) break;
        }
      }
    } catch {
      /* dropped, refused or aborted: retried below */
    }
    clearTimeout(watchdog);
    if (closed) return;
    state('paused');
    timer = setTimeout(run, retry);
    retry = Math.min(retry * 2, MAX_RETRY_MS);
  }

  run();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(watchdog);
      if (ctrl) ctrl.abort();
    },
  };
}
