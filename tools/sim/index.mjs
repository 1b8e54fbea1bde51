// switchboard-sim: Twilio's side of a call, for tests, the CLI and benchmarks; and Asterisk's.
export * from './wav.mjs';
export * from './signing.mjs';
export { UrlMap } from './urls.mjs';
export { MediaStream, percentile } from './media.mjs';
export { simulateCall } from './call.mjs';
export { parseTwiml } from './twiml.mjs';
export { FakeAsterisk, RtpLeg, startFakeAsterisk, CAUSE, CAUSE_TEXT, parseRtp, buildRtp, ariTime } from './asterisk.mjs';
export { SimAsterisk, simulateAsteriskCall } from './asterisk_call.mjs';
