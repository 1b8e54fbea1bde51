// The fake Asterisk's REST handlers (asterisk.mjs): one h_<name> per implemented ARI operation
// (the names in ari_wire.mjs's API tree), installed on FakeAsterisk's prototype, so `this` is
// the fake and its state. Each checks what Asterisk's resource_*.c checks, in the same order.
import { randomBytes, randomUUID } from 'node:crypto';
import { RtpLeg } from './ari_rtp.mjs';
import {
  CAUSE, HANGUP_REASONS, SOFTHANGUP_EXPLICIT, FORMATS, TECHS, dialStatusFor, separateArgs, atoi, parseCallerId,
} from './ari_wire.mjs';

export class AriHandlers {
  h_asteriskInfo({ reply }) {
    reply(200, {
      build: { os: 'Linux', kernel: '6.1.0', machine: 'x86_64', options: '', date: '2026-01-01 00:00:00 UTC', user: 'fake' },
      system: { version: this.version, entity_id: this.asteriskId },
      config: { name: '', default_language: 'en', setid: { user: '', group: '' } },
      status: { startup_time: this.time(this.startedAt), last_reload_time: this.time(this.startedAt) },
    });
  }

  h_asteriskPing({ reply }) { reply(200, { asterisk_id: this.asteriskId, ping: 'pong', timestamp: this.time() }); }

  h_listApplications({ reply }) { reply(200, [...this.owners.keys()].map((name) => this.appJson(name))); }

  h_getApplication({ vars, reply, error }) {
    if (!this.owners.has(vars.applicationName)) return error(404, 'Application not found');
    reply(200, this.appJson(vars.applicationName));
  }

  appJson(name) {
    const ch = [...this.channels.values()].filter((c) => c.apps.has(name)).map((c) => c.id);
    const br = [...this.bridges.values()].filter((b) => b.subs.has(name)).map((b) => b.id);
    return { name, channel_ids: ch, bridge_ids: br, endpoint_ids: [], device_names: [], events_allowed: [], events_disallowed: [] };
  }

  h_listChannels({ reply }) { reply(200, [...this.channels.values()].map((c) => c.json())); }

  h_getChannel({ vars, reply, error }) {
    const ch = this.channels.get(vars.channelId); // ast_channel_snapshot_get_latest: by id only
    if (!ch) return error(404, 'Channel not found');
    reply(200, ch.json());
  }

  // find_control + channel_state_invalid (resource_channels.c).
  control(ctx, { stateCheck = true } = {}) {
    const id = ctx.vars.channelId;
    const ch = this.channels.get(id);
    if (!ch || !ch.inStasis) {
      if (!this.findChannel(id)) { ctx.error(404, 'Channel not found'); return null; }
      ctx.error(409, 'Channel not in Stasis application');
      return null;
    }
    if (stateCheck && ['Down', 'Rsrvd', 'Ringing'].includes(ch.state)) { ctx.error(412, 'Channel in invalid state'); return null; }
    return ch;
  }

  h_answer(ctx) {
    ctx.params('none');
    const ch = this.control(ctx);
    if (!ch) return;
    ctx.reply(204);
    this.changeState(ch, 'Up');
  }

  h_ring(ctx) {
    const ch = this.control(ctx);
    if (!ch) return;
    ch.ringing = true;
    ctx.reply(204);
  }

  h_ringStop(ctx) {
    const ch = this.control(ctx);
    if (!ch) return;
    ch.ringing = false;
    ctx.reply(204);
  }

  h_startMoh(ctx) {
    const p = ctx.params('moh');
    const ch = this.control(ctx);
    if (!ch) return;
    ch.moh = p.mohClass || 'default';
    ctx.reply(204);
  }

  h_stopMoh(ctx) {
    const ch = this.control(ctx);
    if (!ch) return;
    ch.moh = null;
    ctx.reply(204);
  }

  h_getVariable(ctx) {
    const p = ctx.params('variable');
    if (!p.variable) return ctx.error(400, 'Variable name is required');
    const ch = this.findChannel(ctx.vars.channelId);
    if (!ch) return ctx.error(404, 'Provided channel was not found');
    if (!(p.variable in ch.vars)) return ctx.error(404, 'Provided variable was not found');
    ctx.reply(200, { value: ch.vars[p.variable] });
  }

  h_setVariable(ctx) {
    const p = ctx.params('variable');
    if (!p.variable) return ctx.error(400, 'Variable name is required');
    const ch = this.control(ctx, { stateCheck: false });
    if (!ch) return;
    ch.vars[p.variable] = p.value ?? '';
    ctx.reply(204);
  }

  // DELETE /channels/{id}: ast_channel_get_by_name (id or name), then reason checks.
  h_hangup(ctx) {
    const p = ctx.params('hangup');
    const ch = this.findChannel(ctx.vars.channelId);
    if (!ch) return ctx.error(404, 'Channel not found');
    if (p.reason && p.reason_code) return ctx.error(400, "The reason and reason_code can't both be specified");
    let cause = CAUSE.NORMAL;
    if (p.reason_code) {
      if (!/^\s*[+-]?\d/.test(p.reason_code)) return ctx.error(400, 'Invalid reason for hangup reason code provided');
      cause = atoi(p.reason_code);
    } else if (p.reason) {
      if (!(p.reason in HANGUP_REASONS)) return ctx.error(400, 'Invalid reason for hangup reason provided');
      cause = HANGUP_REASONS[p.reason];
    }
    // ast_softhangup publishes the hang-up request at once (its "cause" is the soft-hang-up
    // flag, 32); the channel then leaves its bridge, Stasis, and is destroyed.
    this.channelEvent(ch, { type: 'ChannelHangupRequest', cause: SOFTHANGUP_EXPLICIT, soft: true, channel: ch.json() });
    ctx.reply(204);
    this.timer(() => this.destroyChannel(ch, { cause }), 0);
    if (ch.dial) {
      // A ringing originated channel: its dial ends with a Dial event (status from the cause).
      for (const t of ch.dial.timers) this.cancel(t);
      const dialstring = ch.dial.dialstring;
      ch.dial = null;
      this.channelEvent(ch, { type: 'Dial', dialstatus: dialStatusFor(cause), forward: '', dialstring, peer: ch.json() });
    }
  }

  h_originateWithId(ctx) { return this.h_originate(ctx, ctx.vars.channelId); }

  // POST /channels (ari_channels_handle_originate_with_id): the reply is the new channel in state
  // Down; the dial runs afterwards (see setOutcome).
  h_originate(ctx, pathId) {
    const p = ctx.params('originate');
    if (pathId) p.channelId = pathId;
    if (p.channelId && p.channelId.length > 149) return ctx.error(400, 'Uniqueid length exceeds maximum of 149');
    if (p.otherChannelId && p.otherChannelId.length > 149) return ctx.error(400, 'Uniqueid length exceeds maximum of 149');
    if (!p.endpoint) return ctx.error(400, 'Endpoint must be specified');
    if (p.originator && p.formats) return ctx.error(400, "Originator and formats can't both be specified");
    const slash = p.endpoint.indexOf('/');
    const tech = slash < 0 ? p.endpoint : p.endpoint.slice(0, slash);
    const device = slash < 0 ? '' : p.endpoint.slice(slash + 1);
    if (!tech || !device) return ctx.error(400, 'Invalid endpoint specified');
    if (!p.app && !p.extension) return ctx.error(400, 'Application or extension must be specified');
    if (p.originator && !this.findChannel(p.originator)) return ctx.error(400, 'Provided originator channel was not found');
    if (p.formats) for (const f of p.formats.split(',').map((x) => x.trim())) if (!FORMATS[f]) return ctx.error(400, `Provided format (${f}) was not found`);
    if (p.channelId && this.channels.has(p.channelId)) return ctx.error(409, 'Channel with given unique ID already exists');
    if (!TECHS.has(tech)) return ctx.reply(500, { error: 'Allocation failed' });
    const cid = parseCallerId(p.callerId);
    // chan_pjsip names a channel after its endpoint: PJSIP/2000, PJSIP/+1555...@didww and
    // PJSIP/didww/sip:... give PJSIP/2000-..., PJSIP/didww-..., PJSIP/didww-...
    const endpointName = tech === 'PJSIP' ? (device.includes('@') ? device.slice(device.indexOf('@') + 1) : device.split('/')[0]) : device.split('/')[0];
    const ch = this.newChannel({
      id: p.channelId, kind: 'originated', state: 'Down',
      name: `${tech}/${endpointName}-${this.nameSeq()}`,
      protocol_id: tech === 'PJSIP' ? `${randomBytes(12).toString('hex')}@${this.host}` : '',
      caller: cid, connected: cid,
    });
    ch.endpoint = p.endpoint;
    ch.originate = { ...p };
    if (ctx.json?.variables && typeof ctx.json.variables === 'object') Object.assign(ch.vars, ctx.json.variables);
    if (p.app) ch.apps.add(p.app); // stasis_app_subscribe_channel before the dial
    ch.dial = { dialstring: device, timers: [] };
    ctx.reply(200, ch.json());
    const timeoutMs = p.timeout > 0 ? p.timeout * 1000 : p.timeout === -1 ? -1 : 30000;
    const args = p.appArgs ? separateArgs(p.appArgs) : [];
    this.timer(() => {
      if (ch.destroyed || !ch.dial) return; // hung up before the dial started
      this.startDial(ch, { timeoutMs, outcome: this.outcomeFor(p.endpoint), app: p.app, args });
    }, 0);
  }

  // POST /channels/externalMedia: the checks of ast_ari_channels_external_media in their order,
  // then, for rtp/udp, an originate of UnicastRTP/HOST:PORT/c(FORMAT) into the app. The reply
  // carries the channel's variables (UNICASTRTP_LOCAL_ADDRESS/PORT); its StasisStart (args
  // [data], split at commas as Stasis() does) follows.
  async h_externalMedia(ctx) {
    const p = ctx.params('externalMedia');
    if (!p.app) return ctx.error(400, 'app cannot be empty');
    const transport = p.transport || 'udp';
    const encapsulation = p.encapsulation || 'rtp';
    if (transport === 'websocket' && encapsulation !== 'none') return ctx.error(400, "encapsulation must be 'none' for websocket transport");
    if (encapsulation === 'rtp' && transport !== 'udp') return ctx.error(400, "transport must be 'udp' for rtp encapsulation");
    if (encapsulation === 'audiosocket' && transport !== 'tcp') return ctx.error(400, "transport must be 'tcp' for audiosocket encapsulation");
    const connectionType = p.connection_type || 'client';
    if (transport !== 'websocket' && connectionType === 'server') return ctx.error(400, "'server' connection_type can only be used with the websocket transport");
    if (!p.external_host && connectionType === 'client') return ctx.error(400, 'external_host is required for all but websocket server connections');
    let host, port;
    if (transport === 'websocket') {
      if (connectionType === 'client') return ctx.error(400, 'external_host must be a valid websocket_client connection id.');
    } else {
      const m = /^\[([^\]]+)\]:(\d+)$/.exec(p.external_host) ?? /^([^:[\]]+):(\d+)$/.exec(p.external_host);
      if (!m || +m[2] > 65535) return ctx.error(400, 'external_host must be <host>:<port> for all transports other than websocket');
      host = m[1];
      port = +m[2];
    }
    if (!p.format) return ctx.error(400, 'format cannot be empty');
    if (p.direction && !['both', 'in', 'out'].includes(p.direction)) return ctx.error(400, 'Invalid direction specified');
    if (encapsulation === 'audiosocket' && transport === 'tcp' && !p.data) return ctx.error(400, 'data can not be empty');
    if (!(encapsulation === 'rtp' && transport === 'udp')) {
      if (['audiosocket', 'none'].includes(encapsulation)) return ctx.error(501, `${encapsulation}/${transport} is not implemented by the fake Asterisk`);
      return ctx.error(501, 'The encapsulation and/or transport is not supported');
    }
    if (p.channelId && p.channelId.length > 149) return ctx.error(400, 'Uniqueid length exceeds maximum of 149');
    if (!FORMATS[p.format]) return ctx.error(400, `Provided format (${p.format}) was not found`);
    if (p.channelId && this.channels.has(p.channelId)) return ctx.error(409, 'Channel with given unique ID already exists');

    const ch = this.newChannel({
      id: p.channelId, kind: 'externalMedia', state: 'Down',
      name: `UnicastRTP/${p.external_host}-0x${randomBytes(6).toString('hex')}`,
    });
    const leg = new RtpLeg(this, ch, { host, port, format: p.format, policy: this.rtpOptions.send, strictLearn: this.rtpOptions.strictLearn, bindHost: this.rtpOptions.bindHost });
    this.legs.set(ch.id, leg);
    ch.rtp = leg;
    ch.externalMedia = { ...p, transport, encapsulation, connection_type: connectionType };
    try {
      await leg.open();
    } catch (e) {
      this.channels.delete(ch.id);
      this.legs.delete(ch.id);
      return ctx.error(500, 'An internal error prevented this request from being handled');
    }
    this.emit('leg', leg);
    if (ctx.json?.variables && typeof ctx.json.variables === 'object') Object.assign(ch.vars, ctx.json.variables);
    ch.vars.UNICASTRTP_LOCAL_ADDRESS = leg.local.address;
    ch.vars.UNICASTRTP_LOCAL_PORT = String(leg.local.port);
    ch.apps.add(p.app);
    ch.dial = { dialstring: `${p.external_host}/c(${p.format})`, timers: [] };
    const body = ch.json();
    body.channelvars = { ...ch.vars }; // the reply lists all the channel's variables
    const args = p.data ? separateArgs(p.data) : [];
    // chan_rtp answers at once: Dial, Up, Dial ANSWER, then Stasis.
    const run = () => {
      if (ch.destroyed || !ch.dial) return;
      const dialstring = ch.dial.dialstring;
      ch.dial = null;
      const dial = (status) => this.channelEvent(ch, { type: 'Dial', dialstatus: status, forward: '', dialstring, peer: ch.json() });
      dial('');
      this.changeState(ch, 'Up');
      dial('ANSWER');
      this.enterStasis(ch, p.app, args);
    };
    const when = this.externalMediaStasisStart;
    if (when === 'before') run();
    ctx.reply(200, body);
    if (when === 'after') this.timer(run, 0);
    else if (typeof when === 'number') this.timer(run, when);
  }

  // ---- playbacks ----

  h_play(ctx) {
    const p = ctx.params('play');
    if (ctx.vars.playbackId) p.playbackId = ctx.vars.playbackId;
    const ch = this.control(ctx);
    if (!ch) return;
    if (p.skipms < 0) return ctx.error(400, 'skipms cannot be negative');
    if (p.offsetms < 0) return ctx.error(400, 'offsetms cannot be negative');
    this.startPlayback(ctx, { ...p, target: `channel:${ch.id}`, apps: ch.apps, language: p.lang || ch.language });
  }

  h_bridgePlay(ctx) {
    const p = ctx.params('play');
    if (ctx.vars.playbackId) p.playbackId = ctx.vars.playbackId;
    const b = this.bridges.get(ctx.vars.bridgeId);
    if (!b) return ctx.error(404, 'Bridge not found');
    this.startPlayback(ctx, { ...p, target: `bridge:${b.id}`, apps: b.subs.keys(), language: p.lang || 'en' });
  }

  startPlayback(ctx, { media = [], playbackId, target, apps, language, skipms, offsetms }) {
    // stasis_app_control_play_uri returns NULL on no media: the handler answers 500.
    if (!media.length || media.some((m) => !m)) return ctx.error(500, 'Failed to queue media for playback');
    if (playbackId && this.playbacks.has(playbackId)) return ctx.error(500, 'Failed to queue media for playback');
    const id = playbackId || randomUUID();
    const pb = { id, medias: [...media], index: 0, target, language, state: 'queued', apps: new Set(apps), timers: [], skipms, offsetms, startedAt: null };
    pb.json = () => {
      const j = { id: pb.id, media_uri: pb.medias[pb.index] };
      if (pb.index < pb.medias.length - 1) j.next_media_uri = pb.medias[pb.index + 1];
      Object.assign(j, { target_uri: pb.target, language: pb.language, state: pb.state });
      return j;
    };
    this.playbacks.set(id, pb);
    ctx.reply(201, pb.json(), { Location: `/ari/playbacks/${id}` });
    const step = () => {
      if (!this.playbacks.has(id)) return;
      const uri = pb.medias[pb.index];
      const rule = this.playbackRules.find(({ match }) => (match instanceof RegExp ? match.test(uri) : match === uri));
      if (rule?.fail || !/^(sound|recording|number|digits|characters|tone):/.test(uri)) return this.finishPlayback(pb, 'failed');
      pb.state = pb.index === 0 ? 'playing' : 'continuing';
      pb.startedAt ??= Date.now();
      this.playbackEvent(pb, pb.index === 0 ? 'PlaybackStarted' : 'PlaybackContinuing');
      pb.timers.push(this.timer(() => {
        if (pb.index < pb.medias.length - 1) { pb.index++; step(); } else this.finishPlayback(pb, 'done');
      }, rule?.durationMs ?? this.playbackMs));
    };
    pb.timers.push(this.timer(step, 0));
  }

  playbackEvent(pb, type) {
    for (const app of pb.apps) this.send(app, { type, playback: pb.json() });
  }

  finishPlayback(pb, state) {
    for (const t of pb.timers) this.cancel(t);
    pb.state = state;
    this.playbacks.delete(pb.id);
    this.playbackEvent(pb, 'PlaybackFinished');
  }

  h_getPlayback({ vars, reply, error }) {
    const pb = this.playbacks.get(vars.playbackId);
    if (!pb) return error(404, 'Playback not found');
    reply(200, pb.json());
  }

  h_stopPlayback({ vars, reply, error }) {
    const pb = this.playbacks.get(vars.playbackId);
    if (!pb) return error(404, 'Playback not found');
    reply(204);
    this.finishPlayback(pb, 'done');
  }

  // ---- bridges ----

  h_listBridges({ reply }) { reply(200, [...this.bridges.values()].map((b) => this.bridgeJson(b))); }

  h_getBridge({ vars, reply, error }) {
    const b = this.bridges.get(vars.bridgeId);
    if (!b) return error(404, 'Bridge not found');
    reply(200, this.bridgeJson(b));
  }

  // POST /bridges and POST /bridges/{id}: type is a comma list (mixing by default); holding with
  // mixing, or nothing Asterisk knows, makes stasis_app_bridge_create fail (500).
  h_createBridge(ctx) {
    const p = ctx.params('createBridge');
    if (ctx.vars.bridgeId) p.bridgeId = ctx.vars.bridgeId;
    if (p.bridgeId && this.bridges.has(p.bridgeId)) return ctx.error(409, `Bridge with id '${p.bridgeId}' already exists`);
    const types = (p.type || 'mixing').split(',').map((t) => t.trim());
    const mixing = types.includes('mixing');
    const holding = types.includes('holding');
    if ((!mixing && !holding) || (mixing && holding)) return ctx.error(500, `Unable to create bridge. Possible duplicate bridge id '${p.bridgeId ?? '(null)'}'`);
    const id = p.bridgeId || randomUUID();
    const b = {
      id, name: p.name ?? '', bridge_type: holding ? 'holding' : 'mixing', types, channels: [], creationtime: this.time(),
      video_mode: types.includes('video_sfu') ? 'sfu' : types.includes('video_single') ? 'single' : 'talker',
      subs: new Map(), moh: null,
    };
    this.bridges.set(id, b);
    ctx.reply(200, this.bridgeJson(b));
  }

  // find_bridge + control_list_create (resource_bridges.c).
  bridgeAndChannels(ctx) {
    const p = ctx.params(ctx.rec.path.endsWith('/addChannel') ? 'addChannel' : 'removeChannel');
    const b = this.bridges.get(ctx.vars.bridgeId);
    if (!b) { ctx.error(404, 'Bridge not found'); return null; }
    const ids = (p.channel ?? []).filter((x) => x !== '');
    if (!ids.length) { ctx.error(400, 'Missing parameter channel'); return null; }
    const chans = [];
    for (const id of ids) {
      const ch = this.channels.get(id);
      if (!ch || !ch.inStasis) {
        if (!ch) { ctx.error(400, 'Channel not found'); return null; }
        ctx.error(422, 'Channel not in Stasis application');
        return null;
      }
      chans.push(ch);
    }
    return { b, chans, p };
  }

  h_addChannel(ctx) {
    const r = this.bridgeAndChannels(ctx);
    if (!r) return;
    for (const ch of r.chans) { ch.bridgeRole = r.p.role ?? null; ch.bridgeMute = r.p.mute; ch.absorbDTMF = r.p.absorbDTMF; }
    ctx.reply(204);
    // Each channel departs whatever bridge it is in (the same one included) and joins.
    for (const ch of r.chans) if (!ch.destroyed) this.joinBridge(ch, r.b);
  }

  h_removeChannel(ctx) {
    const r = this.bridgeAndChannels(ctx);
    if (!r) return;
    for (const ch of r.chans) if (ch.bridge !== r.b.id) return ctx.error(422, 'Channel not in this bridge');
    ctx.reply(204);
    for (const ch of r.chans) this.leaveBridge(ch, r.b);
  }

  // DELETE /bridges/{id}: every channel leaves (they stay in Stasis), then BridgeDestroyed, to
  // the apps subscribed to the bridge when it was destroyed. An app is subscribed to a bridge
  // while it has channels in it (control.c: app_subscribe_bridge on join, unsubscribe when the
  // channel leaves), so destroying a bridge that is already empty sends no BridgeDestroyed.
  h_destroyBridge(ctx) {
    const b = this.bridges.get(ctx.vars.bridgeId);
    if (!b) return ctx.error(404, 'Bridge not found');
    ctx.reply(204);
    const apps = [...b.subs.keys()];
    for (const id of [...b.channels]) {
      const ch = this.channels.get(id);
      if (ch) this.leaveBridge(ch, b);
    }
    this.bridges.delete(b.id);
    for (const app of apps) this.send(app, { type: 'BridgeDestroyed', bridge: this.bridgeJson(b) });
  }

  h_bridgeStartMoh(ctx) {
    const p = ctx.params('moh');
    const b = this.bridges.get(ctx.vars.bridgeId);
    if (!b) return ctx.error(404, 'Bridge not found');
    b.moh = p.mohClass || 'default';
    ctx.reply(204);
  }

  h_bridgeStopMoh(ctx) {
    const b = this.bridges.get(ctx.vars.bridgeId);
    if (!b) return ctx.error(404, 'Bridge not found');
    b.moh = null;
    ctx.reply(204);
  }

  // ---- events WebSocket ----------------------------------------------------------------------
}
