// The fake Twilio REST API lives in tools/sim/twilio_api.mjs, shared with `switchboard-sim answer`.
export * from '../../tools/sim/twilio_api.mjs';
