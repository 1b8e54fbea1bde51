// jambonz's feature server and the caller (webhooks, verbs, the listen WebSocket) live in
// tools/sim/jambonz.mjs and tools/sim/jambonz_listen.mjs, shared with `switchboard-sim jambonz`.
export * from '../../tools/sim/jambonz.mjs';
export { ListenSocket, Playout, MAX_MARKS, TICK_MS, fsArgument, metadataFrame } from '../../tools/sim/jambonz_listen.mjs';
