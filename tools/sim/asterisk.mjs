// A fake Asterisk, for switchboard's ARI tests (tests/fakes/asterisk_ari.mjs re-exports it) and
// `switchboard-sim asterisk` (asterisk_call.mjs): the REST interface (/ari/...), the events
// WebSocket (/ari/events?app=NAME) and, for every ExternalMedia channel, a UDP socket that
// speaks RTP to the gateway as Asterisk's UnicastRTP channel does. It keeps the state Asterisk
// keeps (channels, bridges, playbacks, which app owns what), so 400/404/409/422 come where
// Asterisk answers them, and plays the far end of calls: inbound callers, DTMF, remote hang-ups,
// originate outcomes (busy, no answer, failure, answer), a restart.
// This file is the fake's state, its far-end scripting, HTTP and the events socket; the REST
// handlers are in ari_handlers.mjs, the RTP side in ari_rtp.mjs, causes, formats, parameter
// parsing and the resource tree in ari_wire.mjs.
//
// Wire shapes and error texts follow asterisk/asterisk: rest-api/api-docs/{channels,bridges,
// events,playbacks}.json (paths, parameters, models) and the checks written by hand in
// res/res_ari.c (auth, 404/405), res/ari/resource_channels.c, res/ari/resource_bridges.c,
// res/ari/ari_websockets.c, main/dial.c (Dial events, dial timeout -> cause 19),
// main/channel.c (hang-up requests, cause texts), apps/app_stasis.c (Stasis args).
// Where Asterisk leaves the order open (threads racing: a REST reply and the events it causes,
// events inside one millisecond), the fake picks one fixed order, said at each place.
//
//   const fake = await new FakeAsterisk({ username: 'sb', password: 'pw' }).start();
//   env: ARI_URL=fake.url, ARI_USERNAME=sb, ARI_PASSWORD=pw, ARI_APP=switchboard
//   await fake.waitForApp('switchboard');                 // switchboard's events socket is up
//   const caller = await fake.inboundCall({ from: '+15551230001', to: '+15557650000' });
//   const leg = await fake.waitForLeg();                  // switchboard asked for ExternalMedia
//   await leg.sendAudio(mulaw);                           // the caller speaks (paced RTP)
//   await fake.waitFor(() => leg.stats().accepted >= 50); // what switchboard sent back
//   fake.setOutcome('PJSIP/2000', { result: 'busy', afterMs: 50 });
//   fake.dtmf(caller.id, '5'); fake.hangup(caller.id);    // far-end actions
//   await fake.restart({ downMs: 500 });                  // sockets closed 1001, state gone
//
// Scripting API (FakeAsterisk):
//   new FakeAsterisk({ username, password, users: [{ user, password, readOnly }], app, trunk,
//     inboundContext, asteriskId, version, registeredEvents, varsetEvents, channelvars, tzOffsetMinutes,
//     externalMediaStasisStart: 'after'|'before'|ms, rtp: { send: 'bridged'|'always'|'manual',
//     strictLearn: 4, bindHost }, defaultOutcome, playbackMs, restartDownMs })
//   start() / stop(); url, ariUrl, port, eventsUrl(app)
//   inboundCall({ from, to, callerName, args, app, endpoint, context, vars, channelId }) -> channel JSON
//   dtmf(channelId, digit, { durationMs }); hangup(channelId, cause = 16, { techCause })
//   setState(channelId, state); setOutcome(endpoint | RegExp, { result, afterMs, ringMs, cause } | null)
//   setPlayback(mediaUri | RegExp, { durationMs, fail }); script({ method, path, status, message, delayMs, drop, times })
//   restart({ downMs, closeCode = 1001, reason, abrupt }); resetLog()
//   waitFor(predicate | 'EventType', ms); waitForEvent(type, { where, since, timeoutMs });
//   nextEvent(type, opts); eventsFor(channelId); waitForApp(app, ms); waitForLeg({ index, timeoutMs }); rtp(channelId)
//   state: channels, ended, bridges, playbacks, legs (Maps); requests, events, connections, wsMessages (arrays)
//   emits 'event', 'request', 'connection', 'disconnect', 'channel-destroyed', 'leg' (a new RtpLeg,
//   its socket open), 'down', 'up'
// RtpLeg (one per ExternalMedia channel): local, remote, ssrc; sendAudio(buf) -> Promise;
//   emits 'start' / 'stop' (streaming to the gateway begins / ends), 'packet', 'garbage', 'close';
//   start(), stop(), pause(), resume(); dropNext(n), duplicateNext(n), reorderNext(n), delayNext(ms);
//   sendPacket({ pt, payload, seq, ts, ssrc, marker }); sendGarbage(buf);
//   sendFromOtherSocket({ count, pt, payload, ssrc, seq, ts, intervalMs }) -> { address, port };
//   received [{ seq, ts, ssrc, pt, marker, payload, bytes, at, from, accepted }], garbage, sent;
//   stats() -> { packets, accepted, rejected, garbage, bytes, payloadTypes, sizes, ssrcs, seqs,
//   duplicates, outOfOrder, lost, sources, intervalsMs, meanIntervalMs, maxIntervalDeviationMs,
//   jitterMs, firstAt, lastAt }; receivedAudio({ bySeq }). Times (`at`) are performance.now() ms.
//
// What Asterisk does that this fake models, in short (details at each handler):
// - Auth before anything else: 401 {"message":"Authentication required"} with
//   WWW-Authenticate: Basic realm="Asterisk REST Interface"; read-only users get 403 on writes.
// - Unknown path 404 "Resource not found"; a trailing slash 404 "ARI URLs do not end with a
//   slash. Try /ari/..."; a method the resource lacks 405 "Invalid method" with Allow.
//   Resources Asterisk has but the fake does not implement answer 501.
// - Parameters: query string, form body, or a JSON body (Content-Type: application/json), the
//   JSON body winning; in JSON a string parameter must be a JSON string (a number is ignored,
//   as ast_json_string_get returns NULL), integers go through atoi in the query.
// - Required parameters are checked by each handler with its own message, not generically:
//   originate "Endpoint must be specified", externalMedia "app cannot be empty" ...
// - find_control: unknown channel 404 "Channel not found", a channel that exists outside
//   Stasis (an originated channel still ringing) 409 "Channel not in Stasis application",
//   a Stasis channel in state Down/Ringing 412 "Channel in invalid state".
// - Bridges: addChannel/removeChannel answer an unknown channel with 400 "Channel not found"
//   and a channel outside Stasis with 422 (not 409); adding a channel that is already in a
//   bridge moves it (it leaves the old one), 204. A duplicate bridgeId or channelId is 409.
// - Hang-ups: DELETE /channels/{id} publishes ChannelHangupRequest {cause: 32, soft: true} (the
//   soft-hang-up flag, not a Q.850 cause), then ChannelLeftBridge, StasisEnd, ChannelDestroyed
//   {cause, cause_txt} with the reason's cause; a far-end hang-up sends ChannelHangupRequest
//   {cause} first. BridgeDestroyed goes only to apps that still have channels in the bridge.
// - Originate: the reply is the channel in state Down; Dial events (no caller: the dial is
//   async) while it rings; StasisStart only once answered; a dial timeout destroys the channel
//   with cause 19 and no NOANSWER Dial event.
import http from 'node:http';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { RtpLeg } from './ari_rtp.mjs';
import { AriHandlers } from './ari_handlers.mjs';
import {
  REALM, CAUSE, CAUSE_TEXT, dialStatusFor, sleep, waitFor, ariTime, astTrue, readParams, PARAMS, route,
} from './ari_wire.mjs';

export { REALM, CAUSE, CAUSE_TEXT, sleep, waitFor, ariTime, basicAuth, separateArgs } from './ari_wire.mjs';
export { parseRtp, buildRtp, RtpLeg } from './ari_rtp.mjs';

// ---- the fake -------------------------------------------------------------------------------

export class FakeAsterisk extends EventEmitter {
  constructor({
    username = 'switchboard', password = 'switchboard-secret', users = [], host = '127.0.0.1', port = 0,
    app = 'switchboard', trunk = 'didww', inboundContext = 'from-trunk', asteriskId = '02:42:ac:11:00:02',
    version = '22.5.2', registeredEvents = true, varsetEvents = true, channelvars = [], tzOffsetMinutes = 0,
    externalMediaStasisStart = 'after', // 'after' the REST reply, 'before' it, or a delay in ms
    rtp = {}, defaultOutcome = { result: 'answer', afterMs: 50 }, playbackMs = 100, restartDownMs = 300,
  } = {}) {
    super();
    this.users = [{ user: username, password, readOnly: false }, ...users.map((u) => ({ readOnly: false, ...u }))];
    this.username = username;
    this.password = password;
    this.host = host;
    this.port = port;
    this.app = app;
    this.trunk = trunk;
    this.inboundContext = inboundContext;
    this.asteriskId = asteriskId;
    this.version = version;
    this.registeredEvents = registeredEvents;
    this.varsetEvents = varsetEvents;
    this.tzOffsetMinutes = tzOffsetMinutes;
    this.reportedVars = new Set(channelvars);
    this.externalMediaStasisStart = externalMediaStasisStart;
    this.rtpOptions = { send: 'bridged', strictLearn: 4, bindHost: '127.0.0.1', ...rtp };
    this.defaultOutcome = defaultOutcome;
    this.playbackMs = playbackMs;
    this.restartDownMs = restartDownMs;

    this.channels = new Map(); // live channels by id (internal records; .json() for the ARI shape)
    this.ended = new Map(); // destroyed channels by id
    this.bridges = new Map();
    this.playbacks = new Map();
    this.legs = new Map(); // ExternalMedia channel id -> RtpLeg (kept after hang-up)
    this.requests = []; // every REST request: { method, path, query, body, params, auth, status, response, at }
    this.events = []; // every event generated, in order; non-enumerable .delivered (bool)
    this.connections = []; // events socket attempts: { apps, subscribeAll, auth, status (101 or the refusal), openedAt, closedAt, closeCode }
    this.wsMessages = []; // text frames clients sent on the events socket
    this.outcomes = []; // [{ match, outcome }] newest first
    this.playbackRules = []; // [{ match, durationMs, fail }]
    this.scripts = []; // REST fault injection
    this.timers = new Set();
    this.sockets = new Set(); // open events WebSockets
    this.owners = new Map(); // app -> the socket that receives its events
    this.up = false;
    this.restarts = 0;
    this.seq = 0;
    this.epoch = Math.floor(Date.now() / 1000);
    this.startedAt = Date.now();
  }

  time(ms = Date.now()) { return ariTime(ms, this.tzOffsetMinutes); }

  get url() { return `http://${this.host}:${this.port}`; }
  get ariUrl() { return `${this.url}/ari`; }
  eventsUrl(app = this.app, { auth = true } = {}) {
    const q = new URLSearchParams({ app });
    if (auth) q.set('api_key', `${this.username}:${this.password}`);
    return `ws://${this.host}:${this.port}/ari/events?${q}`;
  }

  async start() {
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    await this.listen();
    return this;
  }

  async stop() {
    this.up = false;
    this.clearState();
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    await this.closeServer();
    this.wss?.close();
  }

  async listen() {
    for (let attempt = 0; ; attempt++) {
      const server = http.createServer((req, res) => this.onRequest(req, res));
      server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
      try {
        await new Promise((resolve, reject) => {
          server.once('error', reject);
          server.listen(this.port, this.host, () => { server.off('error', reject); resolve(); });
        });
      } catch (e) {
        if (e.code === 'EADDRINUSE' && this.port && attempt < 50) { await sleep(20); continue; }
        throw e;
      }
      this.server = server;
      this.port = server.address().port;
      this.up = true;
      return;
    }
  }

  async closeServer() {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise((r) => server.close(r));
    server.closeAllConnections?.();
    // Upgraded sockets keep the server's close callback waiting; they are terminated elsewhere.
    await Promise.race([closed, sleep(200)]);
  }

  // Asterisk restarting: events sockets closed (1001 Going Away, or dropped without a close
  // frame with abrupt), every channel, bridge and RTP socket forgotten, connections refused for
  // downMs, then a fresh Asterisk on the same port. Resolves once it accepts again.
  async restart({ downMs = this.restartDownMs, closeCode = 1001, reason = 'Asterisk restarting', abrupt = false } = {}) {
    this.up = false;
    for (const ws of this.sockets) {
      if (abrupt) ws.terminate();
      else { ws.close(closeCode, reason); const t = setTimeout(() => ws.terminate(), 1000); ws.once('close', () => clearTimeout(t)); }
    }
    this.sockets.clear();
    this.owners.clear();
    this.clearState();
    await this.closeServer();
    this.restarts++;
    this.emit('down');
    await sleep(downMs);
    this.epoch = Math.floor(Date.now() / 1000);
    this.startedAt = Date.now();
    await this.listen();
    this.emit('up');
    return this;
  }

  clearState() {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const leg of this.legs.values()) leg.close();
    this.channels.clear();
    this.bridges.clear();
    this.playbacks.clear();
  }

  timer(fn, ms) {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
    return t;
  }

  cancel(t) { clearTimeout(t); this.timers.delete(t); }

  // Forget what was logged (requests, events, ended channels, legs); live state stays.
  resetLog() {
    this.requests.length = 0;
    this.events.length = 0;
    this.ended.clear();
    for (const [id, leg] of this.legs) if (leg.closed) this.legs.delete(id);
  }

  // ---- scripting -----------------------------------------------------------------------------

  // What happens to channels originated to `endpoint` (exact dial string, or a RegExp):
  //   result 'answer'   ringing, then Up and StasisStart (args from appArgs)
  //          'busy'     Dial BUSY, ChannelDestroyed cause 17
  //          'noanswer' ringing until the originate's timeout (or afterMs), ChannelDestroyed 19
  //          'failed'   ChannelHangupRequest, Dial CONGESTION, ChannelDestroyed 34 (or `cause`)
  //          'rejected' ChannelDestroyed 21
  //   afterMs (from the POST to the outcome), ringMs (ringing: ChannelStateChange Ringing and
  //   Dial RINGING; false: no ringing), cause (overrides the cause of a failure).
  // An answer that would come after the originate's timeout is a no-answer, as in Asterisk.
  setOutcome(match, outcome) {
    this.outcomes = this.outcomes.filter((o) => String(o.match) !== String(match));
    if (outcome) this.outcomes.unshift({ match, outcome: { ...outcome } });
  }

  outcomeFor(endpoint) {
    const o = this.outcomes.find(({ match }) => (match instanceof RegExp ? match.test(endpoint) : match === endpoint));
    return { ...(o ? o.outcome : this.defaultOutcome) };
  }

  // How long playbacks of a media URI (exact or RegExp) last, or that they fail.
  setPlayback(match, { durationMs, fail = false } = {}) {
    this.playbackRules.unshift({ match, durationMs, fail });
  }

  // Fault injection for the next matching REST request(s): { method, path (string: exact path
  // after /ari, or RegExp), status, message, delayMs, drop, times = 1 }. With only delayMs the
  // request is then handled normally.
  script(rule) { this.scripts.push({ times: 1, ...rule }); }

  // ---- waiting ---------------------------------------------------------------------------------

  // waitFor(predicate, ms) polls; waitFor('EventType', ms) finds the first such event logged.
  waitFor(what, ms = 5000) {
    if (typeof what === 'string') return this.waitForEvent(what, { timeoutMs: ms });
    return waitFor(what, ms);
  }

  // The first event of `type` at index >= since that `where` accepts.
  waitForEvent(type, { where = () => true, since = 0, timeoutMs = 5000 } = {}) {
    return waitFor(() => this.events.slice(since).find((e) => e.type === type && where(e)), timeoutMs);
  }

  // The next event of `type` from now on.
  nextEvent(type, opts = {}) { return this.waitForEvent(type, { ...opts, since: this.events.length }); }

  // Events about one channel (event.channel.id or a Dial's peer), in order.
  eventsFor(channelId) {
    return this.events.filter((e) => e.channel?.id === channelId || e.peer?.id === channelId);
  }

  waitForApp(app = this.app, ms = 5000) { return waitFor(() => this.owners.get(app)?.readyState === 1, ms); }

  // The n-th ExternalMedia leg created (default: the first not yet waited for).
  async waitForLeg({ index, timeoutMs = 5000 } = {}) {
    const i = index ?? (this.legWaited = (this.legWaited ?? 0) + 1) - 1;
    await waitFor(() => this.legs.size > i, timeoutMs);
    return [...this.legs.values()][i];
  }

  rtp(channelId) { return this.legs.get(channelId); }

  // ---- far-end actions ---------------------------------------------------------------------------

  // A call arrives from the trunk (DIDWW puts the DID in the Request-URI: dialplan.exten) and the
  // dialplan runs Stasis(app[,args]). If no events socket has the app, Stasis fails and the
  // channel is hung up without an event (its record ends up in `ended`, stasisStatus 'FAILED').
  async inboundCall({
    from = '+15551230001', to = '+15557650000', callerName = '', args = [], app = this.app,
    endpoint = this.trunk, context = this.inboundContext, language = 'en', vars = {}, channelId,
  } = {}) {
    const argv = [].concat(args).map(String);
    const ch = this.newChannel({
      id: channelId, kind: 'inbound', name: `PJSIP/${endpoint}-${this.nameSeq()}`, state: 'Ring',
      protocol_id: `${randomBytes(12).toString('hex')}@${this.host}`,
      caller: { name: callerName, number: from }, language,
      dialplan: { context, exten: to, priority: 1, app_name: 'Stasis', app_data: [app, ...argv].join(',') },
    });
    Object.assign(ch.vars, vars);
    this.enterStasis(ch, app, argv);
    return ch.json();
  }

  // The caller presses a key (ChannelDtmfReceived to the apps watching the channel).
  dtmf(channelId, digit, { durationMs = 100 } = {}) {
    const ch = this.mustChannel(channelId);
    if (!/^[0-9*#A-D]$/.test(digit)) throw new Error(`dtmf: bad digit ${digit}`);
    this.channelEvent(ch, { type: 'ChannelDtmfReceived', digit, duration_ms: durationMs, channel: ch.json() });
  }

  // The far end hangs up (a BYE): ChannelHangupRequest {cause}, ChannelLeftBridge when bridged,
  // StasisEnd when in the app, ChannelDestroyed {cause, cause_txt}. A channel still ringing
  // (originated) ends its dial with a Dial event first.
  hangup(channelId, cause = CAUSE.NORMAL, { techCause } = {}) {
    const ch = this.mustChannel(channelId);
    const request = { cause };
    if (techCause) request.tech_cause = techCause;
    this.destroyChannel(ch, { cause, request });
  }

  // The caller answers a channel that is ringing in the app (rarely needed: inbound calls are
  // answered by switchboard's POST .../answer).
  setState(channelId, state) {
    const ch = this.mustChannel(channelId);
    this.changeState(ch, state);
  }

  mustChannel(id) {
    const ch = this.channels.get(id);
    if (!ch) throw new Error(`no live channel ${id}`);
    return ch;
  }

  // ---- channels, bridges, events -------------------------------------------------------------------

  nameSeq() { return (++this.seq).toString(16).padStart(8, '0'); }

  newChannel({ id, kind, name, state = 'Down', protocol_id = '', caller, connected, dialplan, language = 'en' }) {
    const fake = this;
    const uid = id || `${this.epoch}.${++this.seq}`;
    const ch = {
      id: uid, kind, name, state, protocol_id, accountcode: '', language,
      caller: { name: '', number: '', ...caller }, connected: { name: '', number: '', ...connected },
      dialplan: { context: 'default', exten: 's', priority: 1, app_name: '', app_data: '', ...dialplan },
      creationtime: this.time(), createdAt: Date.now(), vars: {}, reported: new Set(),
      apps: new Set(), // apps subscribed to its events
      app: null, inStasis: false, stasisStatus: null, bridge: null, moh: null, ringing: false,
      dial: null, destroyed: false, cause: null, answeredAt: null,
      json() {
        const j = {
          id: this.id, name: this.name, state: this.state, protocol_id: this.protocol_id,
          caller: { ...this.caller }, connected: { ...this.connected }, accountcode: this.accountcode,
          dialplan: { ...this.dialplan }, creationtime: this.creationtime, language: this.language,
        };
        const vars = Object.entries(this.vars).filter(([k]) => fake.reportedVars.has(k) || this.reported.has(k));
        if (vars.length) j.channelvars = Object.fromEntries(vars);
        return j;
      },
    };
    this.channels.set(uid, ch);
    return ch;
  }

  findChannel(idOrName) {
    const ch = this.channels.get(idOrName);
    if (ch) return ch;
    for (const c of this.channels.values()) if (c.name === idOrName) return c;
    return null;
  }

  bridgeJson(b) {
    return {
      id: b.id, technology: b.bridge_type === 'holding' ? 'holding_bridge' : b.channels.length > 2 ? 'softmix' : 'simple_bridge',
      bridge_type: b.bridge_type, bridge_class: 'stasis', creator: 'Stasis', name: b.name,
      channels: [...b.channels], creationtime: b.creationtime, video_mode: b.video_mode,
    };
  }

  // One event to one app: delivered to the socket that owns the app, logged either way.
  send(app, body, ws = this.owners.get(app)) {
    const ev = { ...body, timestamp: body.timestamp ?? this.time(), asterisk_id: this.asteriskId, application: app };
    const delivered = !!ws && ws.readyState === 1;
    if (delivered) ws.send(JSON.stringify(ev));
    Object.defineProperty(ev, 'delivered', { value: delivered });
    this.events.push(ev);
    this.emit('event', ev);
    return ev;
  }

  channelEvent(ch, body, extraApps = []) {
    const apps = new Set([...ch.apps, ...extraApps]);
    for (const app of apps) this.send(app, body);
  }

  changeState(ch, state) {
    if (ch.state === state) return;
    ch.state = state;
    if (state === 'Up') ch.answeredAt ??= Date.now();
    this.channelEvent(ch, { type: 'ChannelStateChange', channel: ch.json() });
  }

  appRegistered(app) { return this.owners.get(app)?.readyState === 1; }

  // Stasis(app,args) on a channel: StasisStart, or, with no app registered, the failure.
  enterStasis(ch, app, args) {
    if (!this.appRegistered(app)) {
      ch.stasisStatus = 'FAILED';
      this.destroyChannel(ch, { cause: CAUSE.NORMAL, quiet: true });
      return false;
    }
    // app_stasis.c clears STASISSTATUS first: apps already watching the channel (originated and
    // ExternalMedia channels) see a ChannelVarset before StasisStart; switchboard must skip it.
    ch.vars.STASISSTATUS = '';
    if (this.varsetEvents) this.channelEvent(ch, { type: 'ChannelVarset', variable: 'STASISSTATUS', value: '', channel: ch.json() });
    ch.app = app;
    ch.inStasis = true;
    ch.stasisStatus = 'RUNNING';
    ch.apps.add(app);
    ch.dialplan.app_name = 'Stasis';
    ch.dialplan.app_data = [app, ...args].join(',');
    this.send(app, { type: 'StasisStart', args, channel: ch.json() });
    if (ch.kind === 'externalMedia' && this.rtpOptions.send === 'always') this.legs.get(ch.id)?.start();
    return true;
  }

  destroyChannel(ch, { cause = CAUSE.NORMAL, request = null, quiet = false } = {}) {
    if (ch.destroyed) return;
    ch.cause = cause;
    if (!quiet && request) this.channelEvent(ch, { type: 'ChannelHangupRequest', ...request, channel: ch.json() });
    if (ch.dial) {
      for (const t of ch.dial.timers) this.cancel(t);
      if (!quiet && request) this.channelEvent(ch, { type: 'Dial', dialstatus: dialStatusFor(cause), forward: '', dialstring: ch.dial.dialstring, peer: ch.json() });
      ch.dial = null;
    }
    for (const pb of [...this.playbacks.values()]) if (pb.target === `channel:${ch.id}`) this.finishPlayback(pb, 'done');
    if (ch.bridge) this.leaveBridge(ch, this.bridges.get(ch.bridge), { quiet });
    if (ch.inStasis) {
      ch.inStasis = false;
      ch.stasisStatus = 'SUCCESS';
      if (!quiet) this.send(ch.app, { type: 'StasisEnd', channel: ch.json() });
    }
    ch.destroyed = true;
    if (!quiet) this.channelEvent(ch, { type: 'ChannelDestroyed', cause, cause_txt: CAUSE_TEXT[cause] ?? 'Unknown', channel: ch.json() });
    this.legs.get(ch.id)?.close();
    this.channels.delete(ch.id);
    this.ended.set(ch.id, ch);
    this.emit('channel-destroyed', ch);
  }

  bridgeApps(b, ch) { return new Set([...b.subs.keys(), ...(ch ? ch.apps : [])]); }

  joinBridge(ch, b) {
    if (ch.bridge) this.leaveBridge(ch, this.bridges.get(ch.bridge));
    ch.bridge = b.id;
    b.channels.push(ch.id);
    if (ch.app) b.subs.set(ch.app, (b.subs.get(ch.app) ?? 0) + 1);
    const body = { type: 'ChannelEnteredBridge', bridge: this.bridgeJson(b), channel: ch.json() };
    for (const app of this.bridgeApps(b, ch)) this.send(app, body);
    this.updateStreams(b);
  }

  leaveBridge(ch, b, { quiet = false } = {}) {
    if (!b) { ch.bridge = null; return; }
    b.channels = b.channels.filter((id) => id !== ch.id);
    ch.bridge = null;
    if (!quiet) {
      const body = { type: 'ChannelLeftBridge', bridge: this.bridgeJson(b), channel: ch.json() };
      for (const app of this.bridgeApps(b, ch)) this.send(app, body);
    }
    const n = (b.subs.get(ch.app) ?? 0) - 1;
    if (n > 0) b.subs.set(ch.app, n);
    else b.subs.delete(ch.app);
    if (this.rtpOptions.send === 'bridged') this.legs.get(ch.id)?.stop();
    this.updateStreams(b);
  }

  // A bridge feeds an ExternalMedia channel while it has company.
  updateStreams(b) {
    if (this.rtpOptions.send !== 'bridged') return;
    for (const id of b.channels) {
      const leg = this.legs.get(id);
      if (!leg) continue;
      if (b.channels.length >= 2) leg.start();
      else leg.stop();
    }
  }

  // ---- originate ---------------------------------------------------------------------------------

  // The dial of an originated channel, as main/dial.c runs it (async: Dial events have no caller).
  startDial(ch, { timeoutMs, outcome, app, args }) {
    const o = outcome;
    const dial = { dialstring: ch.dial.dialstring, timers: [] };
    ch.dial = dial;
    const at = (ms, fn) => dial.timers.push(this.timer(fn, ms));
    const dialEvent = (status) => this.channelEvent(ch, { type: 'Dial', dialstatus: status, forward: '', dialstring: dial.dialstring, peer: ch.json() });
    dialEvent('');
    let result = o.result ?? 'answer';
    let afterMs = o.afterMs ?? 50;
    if (result === 'noanswer') afterMs = o.afterMs ?? timeoutMs;
    else if (timeoutMs >= 0 && afterMs >= timeoutMs) { result = 'noanswer'; afterMs = timeoutMs; }
    const ringMs = o.ringMs === false ? null : o.ringMs ?? Math.min(10, afterMs / 2);
    if (ringMs !== null && ['answer', 'noanswer', 'busy'].includes(result)) {
      at(ringMs, () => { this.changeState(ch, 'Ringing'); dialEvent('RINGING'); });
    }
    if (afterMs < 0) return; // timeout -1: rings for ever
    at(afterMs, () => {
      ch.dial = null;
      switch (result) {
        case 'answer':
          this.changeState(ch, 'Up');
          dialEvent('ANSWER');
          if (app) this.enterStasis(ch, app, args);
          break;
        case 'busy':
          dialEvent('BUSY');
          this.destroyChannel(ch, { cause: o.cause ?? CAUSE.BUSY });
          break;
        case 'noanswer':
          this.destroyChannel(ch, { cause: CAUSE.NO_ANSWER });
          break;
        case 'rejected':
        case 'failed': {
          const cause = o.cause ?? (result === 'rejected' ? CAUSE.REJECTED : CAUSE.CONGESTION);
          this.channelEvent(ch, { type: 'ChannelHangupRequest', cause, channel: ch.json() });
          dialEvent(dialStatusFor(cause));
          this.destroyChannel(ch, { cause });
          break;
        }
        default:
          throw new Error(`setOutcome: unknown result ${result}`);
      }
    });
  }

  // ---- HTTP ----------------------------------------------------------------------------------------

  authenticate(req, query) {
    let user = null, password = null, via = null;
    const h = req.headers.authorization;
    if (h && /^Basic\s+/i.test(h)) {
      const dec = Buffer.from(h.replace(/^Basic\s+/i, ''), 'base64').toString();
      const i = dec.indexOf(':');
      if (i >= 0) { user = dec.slice(0, i); password = dec.slice(i + 1); via = 'basic'; }
    }
    if (!via && query.api_key) {
      const i = query.api_key.indexOf(':');
      if (i >= 0 && query.api_key.slice(i + 1)) { user = query.api_key.slice(0, i); password = query.api_key.slice(i + 1); via = 'api_key'; }
    }
    const u = via ? this.users.find((x) => x.user === user && x.password === password) : null;
    return { user, password, via, ok: !!u, readOnly: !!u?.readOnly };
  }

  async onRequest(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://x');
    const query = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const rec = { method: req.method, path: url.pathname, query, body: null, params: null, auth: null, headers: { ...req.headers }, status: 0, response: null, at: Date.now() };
    this.requests.push(rec);
    const reply = (status, body, headers = {}) => {
      rec.status = status;
      rec.response = body;
      const h = { Server: `Asterisk/${this.version}`, 'Cache-Control': 'no-cache, no-store', ...headers };
      if (status === 204 || body === undefined) { res.writeHead(status, h); res.end(); }
      else {
        const text = JSON.stringify(body);
        res.writeHead(status, { ...h, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      }
      this.emit('request', rec);
    };
    const error = (status, message, headers) => reply(status, { message }, headers);

    if (!url.pathname.startsWith('/ari/') && url.pathname !== '/ari') {
      rec.status = 404;
      res.writeHead(404, { 'Content-Type': 'text/html' });
      return res.end(htmlError(404, 'Not Found', 'The requested URL was not found on this server.'));
    }
    // Form bodies are merged with the query (the query wins); a JSON body is read as such.
    const ctype = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    let json = null;
    if (raw.length && ctype === 'application/x-www-form-urlencoded') {
      const form = Object.fromEntries(new URLSearchParams(raw.toString()));
      for (const [k, v] of Object.entries(form)) if (!(k in query)) query[k] = v;
      rec.body = form;
    } else if (raw.length && ctype === 'application/json') {
      try { json = JSON.parse(raw.toString()); rec.body = json; } catch { rec.body = raw.toString(); }
    } else if (raw.length) rec.body = raw.toString();

    const auth = this.authenticate(req, query);
    rec.auth = { user: auth.user, password: auth.password, via: auth.via, ok: auth.ok };
    if (!auth.ok) return error(401, 'Authentication required', { 'WWW-Authenticate': `Basic realm="${REALM}"` });
    if (auth.readOnly && !['GET', 'OPTIONS'].includes(req.method)) return error(403, 'Write access denied');
    const rel = url.pathname.slice('/ari/'.length);
    if (rel.endsWith('/') || url.pathname === '/ari') return error(404, `ARI URLs do not end with a slash. Try /ari/${rel.replace(/\/+$/, '')}`);
    if (raw.length && ctype === 'application/json' && json === null) return error(400, 'Error parsing request body');

    for (const s of this.scripts) {
      if (s.times <= 0) continue;
      if (s.method && s.method !== req.method) continue;
      const p = '/' + rel;
      if (s.path && !(s.path instanceof RegExp ? s.path.test(p) : s.path === p)) continue;
      s.times--;
      if (s.delayMs) await sleep(s.delayMs);
      if (s.drop) { rec.status = 'dropped'; return req.socket.destroy(); }
      if (s.status) return error(s.status, s.message ?? http.STATUS_CODES[s.status]);
      break;
    }

    const segs = rel.split('/').map((s) => { try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch { return s; } });
    const r = route(segs);
    if (!r) return error(404, 'Resource not found');
    const allow = 'OPTIONS,' + Object.keys(r.methods).join(',');
    if (!(req.method in r.methods)) return error(405, 'Invalid method', { Allow: allow });
    const name = r.methods[req.method];
    if (name === 'events') { // a plain GET without the upgrade (res_http_websocket)
      rec.status = 426;
      res.writeHead(426, { 'Content-Type': 'text/html' });
      return res.end(htmlError(426, 'Upgrade Required', ''));
    }
    if (!name) return error(501, `${req.method} /ari/${rel} is not implemented by the fake Asterisk`);
    const ctx = { req, query, json, vars: r.vars, rec, reply, error, params: (spec) => (rec.params = readParams(PARAMS[spec], query, json)) };
    try {
      await this[`h_${name}`](ctx);
    } catch (e) {
      if (!res.headersSent) error(500, `fake Asterisk: ${e.message}`);
      this.emit('error-internal', e);
    }
  }

  // ---- events WebSocket ----------------------------------------------------------------------

  onUpgrade(req, socket, head) {
    const url = new URL(req.url, 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const rec = { apps: [], subscribeAll: false, auth: null, openedAt: Date.now(), closedAt: null, closeCode: null, status: 101 };
    this.connections.push(rec);
    const refuse = (status, body, headers = {}, html = false) => {
      rec.status = status;
      const text = html ? htmlError(status, http.STATUS_CODES[status], body) : JSON.stringify({ message: body });
      const hdrs = Object.entries({ 'Content-Type': html ? 'text/html' : 'application/json', 'Content-Length': Buffer.byteLength(text), Connection: 'close', ...headers })
        .map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${hdrs}\r\n${text}`);
    };
    if (!this.up) return socket.destroy();
    const auth = this.authenticate(req, query);
    rec.auth = { user: auth.user, via: auth.via, ok: auth.ok };
    if (!auth.ok) return refuse(401, 'Authentication required', { 'WWW-Authenticate': `Basic realm="${REALM}"` });
    if (url.pathname !== '/ari/events') return refuse(404, 'Resource not found');
    if (!query.app) return refuse(400, 'HTTP request is missing param: [app]', {}, true);
    rec.apps = query.app.split(',').map((a) => a.trim()).filter(Boolean);
    rec.subscribeAll = astTrue(query.subscribeAll);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onEventsSocket(ws, rec));
  }

  onEventsSocket(ws, rec) {
    this.sockets.add(ws);
    ws.rec = rec;
    ws.on('message', (data, binary) => {
      this.wsMessages.push({ data: binary ? data : data.toString(), at: Date.now() });
      if (binary) return;
      try { JSON.parse(data.toString()); } catch {
        ws.send(JSON.stringify({ type: 'RESTResponse', transaction_id: '', request_id: '', status_code: 400, reason_phrase: 'Failed to parse request message JSON', uri: '', timestamp: this.time(), asterisk_id: this.asteriskId, application: rec.apps[0] }));
      }
    });
    ws.on('close', (code) => {
      rec.closedAt = Date.now();
      rec.closeCode = code;
      this.sockets.delete(ws);
      for (const [app, owner] of this.owners) if (owner === ws) this.owners.delete(app);
      this.emit('disconnect', rec);
    });
    ws.on('error', () => {});
    for (const app of rec.apps) {
      const old = this.owners.get(app);
      if (old && old !== ws && old.readyState === 1) this.send(app, { type: 'ApplicationReplaced' }, old);
      this.owners.set(app, ws);
      if (this.registeredEvents) this.send(app, { type: 'ApplicationRegistered' });
    }
    this.emit('connection', rec);
  }
}

// The REST handlers live in ari_handlers.mjs; they are FakeAsterisk's methods.
for (const name of Object.getOwnPropertyNames(AriHandlers.prototype))
  if (name !== 'constructor')
    Object.defineProperty(FakeAsterisk.prototype, name, Object.getOwnPropertyDescriptor(AriHandlers.prototype, name));

function htmlError(status, title, text) {
  return '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\r\n<html><head>\r\n' +
    `<title>${status} ${title}</title>\r\n</head><body>\r\n<h1>${title}</h1>\r\n<p>${text}</p>\r\n` +
    '<hr />\r\n<address>Asterisk Server</address>\r\n</body></html>\r\n';
}

export async function startFakeAsterisk(opts) {
  return new FakeAsterisk(opts).start();
}
