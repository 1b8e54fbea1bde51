// The test PKI lives in tools/sim/tls.mjs, shared with `switchboard-sim answer`.
export * from '../../tools/sim/tls.mjs';
