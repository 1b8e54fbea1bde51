// The fake Asterisk (ARI + ExternalMedia RTP) lives in tools/sim/asterisk.mjs, shared with
// `switchboard-sim asterisk`.
export * from '../../tools/sim/asterisk.mjs';
