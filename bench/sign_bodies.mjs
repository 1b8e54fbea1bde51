// Writes N signed /twilio/voice requests, one per line: "<signature>\t<form body>", each with
// its own CallSid so every request inserts a call row. Twilio's algorithm: HMAC-SHA1 of the
// URL followed by the sorted parameters, base64 (the same as the twilio helper library).
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const [, , out, nArg, token, url] = process.argv;
const n = Number(nArg);
const lines = [];
for (let i = 0; i < n; i++) {
  const sid = 'CA' + i.toString(16).padStart(32, '0');
  const params = {
    AccountSid: 'AC00000000000000000000000000000000', ApiVersion: '2010-04-01', CallSid: sid, CallStatus: 'ringing',
    Called: '+14155550100', Caller: '+14155550111', Direction: 'inbound', From: '+14155550111', FromCountry: 'US',
    To: '+14155550100', ToCountry: 'US',
  };
  const data = url + Object.keys(params).sort().map((k) => k + params[k]).join('');
  const sig = createHmac('sha1', token).update(data).digest('base64');
  lines.push(sig + '\t' + new URLSearchParams(params).toString());
}
writeFileSync(out, lines.join('\n') + '\n');
