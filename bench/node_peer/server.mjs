// bench/bridge.sh's Node peer: a Twilio Media Streams <-> OpenAI Realtime bridge built the way
// Twilio's official sample does it (github.com/twilio-samples/speech-assistant-openai-realtime-api-node,
// index.js as of e0b6f63, Sep 2025, the GA Realtime API): fastify with @fastify/formbody and
// @fastify/websocket for Twilio's side, `ws` to the AI, and the sample's work per message.
// From Twilio: JSON.parse, remember media.timestamp, forward the payload as
// input_audio_buffer.append; start takes the streamSid, mark shifts the mark queue. From the
// AI: JSON.parse, log the sample's list of event types, each response.output_audio.delta goes
// to Twilio as a media event (the delta as is: the sample re-encodes nothing) followed by a
// mark, its item_id kept; input_audio_buffer.speech_started truncates the item and clears
// Twilio's buffer. session.update (GA shape, mu-law both ways, server VAD) 100 ms after the AI
// socket opens, as the sample sends it.
// What the benchmark changes, and nothing else:
//   PORT (0: any free port), on 127.0.0.1, the port printed as `listening <port>`;
//   OPENAI_REALTIME_URL (default wss://api.openai.com/v1/realtime) with the sample's query
//   (?model=gpt-realtime&temperature=0.8) added when it has none; OPENAI_API_KEY the bearer;
//   no dotenv (the environment comes from the script);
//   the voice webhook also at /twilio/voice (where switchboard-sim-load posts), its TwiML's
//   Stream url ws:// (the load generator speaks plain WebSocket) with a session_id <Parameter>
//   (the load generator refuses TwiML without one).
// The sample's console logging stays (a few lines per call, nothing per audio message);
// stdout goes to a file in the benchmark.
//   PORT=0 OPENAI_API_KEY=sk-bench OPENAI_REALTIME_URL=ws://127.0.0.1:9000/v1/realtime node server.mjs
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import WebSocket from 'ws';
import fastifyFormBody from '@fastify/formbody';
import fastifyWs from '@fastify/websocket';

const { OPENAI_API_KEY } = process.env;
if (!OPENAI_API_KEY) {
  console.error('OPENAI_API_KEY is not set.');
  process.exit(1);
}

const app = Fastify();
app.register(fastifyFormBody);
app.register(fastifyWs);

const INSTRUCTIONS = 'You are a friendly, upbeat phone assistant. Chat about whatever the caller '
  + 'brings up, share interesting facts, and slip in a light joke now and then.';
const VOICE = 'alloy';
const TEMPERATURE = 0.8;
const PORT = Number(process.env.PORT ?? 5050);
const REALTIME_BASE = process.env.OPENAI_REALTIME_URL || 'wss://api.openai.com/v1/realtime';
const REALTIME_URL = REALTIME_BASE.includes('?')
  ? REALTIME_BASE
  : `${REALTIME_BASE}?model=gpt-realtime&temperature=${TEMPERATURE}`;

// The server events worth a console line (the sample's list).
const LOGGED_EVENTS = [
  'error',
  'response.content.done',
  'rate_limits.updated',
  'response.done',
  'input_audio_buffer.committed',
  'input_audio_buffer.speech_stopped',
  'input_audio_buffer.speech_started',
  'session.created',
  'session.updated',
];

const SHOW_TIMING_MATH = false;

app.get('/', async (request, reply) => {
  reply.send({ message: 'Media Stream bridge is up' });
});

// The voice webhook: a short greeting, then the call's audio over a Media Stream to us.
const answerCall = async (request, reply) => {
  const twiml = `<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Say voice="Google.en-US-Chirp3-HD-Aoede">Connecting you to the assistant now.</Say>
  <Pause length="1"/>
  <Say voice="Google.en-US-Chirp3-HD-Aoede">Go ahead, I'm listening.</Say>
  <Connect>
    <Stream url="ws://${request.headers.host}/media-stream">
      <Parameter name="session_id" value="${randomUUID()}"/>
    </Stream>
  </Connect>
</Response>`;
  reply.type('text/xml').send(twiml);
};
app.all('/incoming-call', answerCall);
app.all('/twilio/voice', answerCall);

app.register(async (scope) => {
  scope.get('/media-stream', { websocket: true }, (twilioWs, req) => {
    console.log('Twilio stream connected');

    // per call
    let streamSid = null;
    let latestMediaTimestamp = 0;
    let lastAssistantItem = null;
    let markQueue = [];
    let responseStartTimestampTwilio = null;

    const aiWs = new WebSocket(REALTIME_URL, {
      headers: { Authorization: `Bearer ${OPENAI_API_KEY}` },
    });

    const sendSessionUpdate = () => {
      const update = {
        type: 'session.update',
        session: {
          type: 'realtime',
          model: 'gpt-realtime',
          output_modalities: ['audio'],
          audio: {
            input: { format: { type: 'audio/pcmu' }, turn_detection: { type: 'server_vad' } },
            output: { format: { type: 'audio/pcmu' }, voice: VOICE },
          },
          instructions: INSTRUCTIONS,
        },
      };
      console.log('session.update out:', JSON.stringify(update));
      aiWs.send(JSON.stringify(update));
    };

    // The caller started talking over the assistant: cut the assistant's item where the caller
    // heard it stop, and drop what Twilio still has queued.
    const onSpeechStarted = () => {
      if (markQueue.length === 0 || responseStartTimestampTwilio == null) return;
      const heardMs = latestMediaTimestamp - responseStartTimestampTwilio;
      if (SHOW_TIMING_MATH) console.log(`truncate at ${latestMediaTimestamp} - ${responseStartTimestampTwilio} = ${heardMs} ms`);
      if (lastAssistantItem) {
        const truncate = {
          type: 'conversation.item.truncate',
          item_id: lastAssistantItem,
          content_index: 0,
          audio_end_ms: heardMs,
        };
        aiWs.send(JSON.stringify(truncate));
      }
      twilioWs.send(JSON.stringify({ event: 'clear', streamSid }));
      markQueue = [];
      lastAssistantItem = null;
      responseStartTimestampTwilio = null;
    };

    // A mark after each piece of assistant audio: Twilio echoes it once that audio has played.
    const sendMark = () => {
      if (!streamSid) return;
      twilioWs.send(JSON.stringify({ event: 'mark', streamSid, mark: { name: 'responsePart' } }));
      markQueue.push('responsePart');
    };

    aiWs.on('open', () => {
      console.log('Realtime API connected');
      setTimeout(sendSessionUpdate, 100);
    });

    aiWs.on('message', (data) => {
      try {
        const ev = JSON.parse(data);
        if (LOGGED_EVENTS.includes(ev.type)) console.log(`AI event ${ev.type}`, ev);

        if (ev.type === 'response.output_audio.delta' && ev.delta) {
          twilioWs.send(JSON.stringify({ event: 'media', streamSid, media: { payload: ev.delta } }));
          // the first audio of a response starts the clock the truncation measures against
          if (!responseStartTimestampTwilio) {
            responseStartTimestampTwilio = latestMediaTimestamp;
            if (SHOW_TIMING_MATH) console.log(`response starts at ${responseStartTimestampTwilio} ms`);
          }
          if (ev.item_id) lastAssistantItem = ev.item_id;
          sendMark();
        }

        if (ev.type === 'input_audio_buffer.speech_started') onSpeechStarted();
      } catch (err) {
        console.error('bad message from the Realtime API:', err, data);
      }
    });

    twilioWs.on('message', (message) => {
      try {
        const msg = JSON.parse(message);
        switch (msg.event) {
          case 'media':
            latestMediaTimestamp = msg.media.timestamp;
            if (SHOW_TIMING_MATH) console.log(`media at ${latestMediaTimestamp} ms`);
            if (aiWs.readyState === WebSocket.OPEN) {
              aiWs.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: msg.media.payload }));
            }
            break;
          case 'start':
            streamSid = msg.start.streamSid;
            console.log('stream started', streamSid);
            responseStartTimestampTwilio = null;
            latestMediaTimestamp = 0;
            break;
          case 'mark':
            if (markQueue.length > 0) markQueue.shift();
            break;
          default:
            console.log('Twilio event', msg.event);
            break;
        }
      } catch (err) {
        console.error('bad message from Twilio:', err, message);
      }
    });

    twilioWs.on('close', () => {
      if (aiWs.readyState === WebSocket.OPEN) aiWs.close();
      console.log('Twilio stream closed');
    });

    aiWs.on('close', () => {
      console.log('Realtime API closed');
    });

    aiWs.on('error', (err) => {
      console.error('Realtime API socket error:', err);
    });
  });
});

app.listen({ port: PORT, host: '127.0.0.1' }, (err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`listening ${app.server.address().port}`);
});
