/*
 * ai_elevenlabs: the ElevenLabs Conversational AI provider (ai_elevenlabs_provider, declared in
 * ai/ai.h). One WebSocket client connection per call (ai/ai_ws.h),
 * to ELEVENLABS_CONVAI_URL?agent_id=<ELEVENLABS_AGENT_ID> with the `xi-api-key` header.
 *
 * The wire protocol (ElevenLabs' Python SDK, src/elevenlabs/conversational_ai/conversation.py):
 *   up    {"type":"conversation_initiation_client_data","conversation_config_override":{...},
 *         "dynamic_variables":{...}}  first, then {"user_audio_chunk":"<base64>"} (no "type"),
 *         {"type":"pong","event_id":N}, {"type":"client_tool_result","tool_call_id":..,
 *         "result":..,"is_error":false}, {"type":"contextual_update","text":..}
 *   down  conversation_initiation_metadata {conversation_initiation_metadata_event:
 *         {conversation_id, agent_output_audio_format, user_input_audio_format}},
 *         audio {audio_event:{audio_base_64, event_id}}, interruption {interruption_event:
 *         {event_id}}, ping {ping_event:{event_id, ping_ms}}, agent_response {agent_response_event:
 *         {agent_response}}, user_transcript {user_transcription_event:{user_transcript}},
 *         client_tool_call {client_tool_call:{tool_name, tool_call_id, parameters}}
 * The audio formats are the agent's own configuration (a conversation cannot override them):
 * both must be ulaw_8000, or the session fails before any audio flows either way.
 *
 * The server does its own turn taking: an interruption event means the caller barged in and
 * the server already stopped the response, so interrupt() sends nothing. It has no "response
 * done" event: a response ends when its audio has been quiet for ELEVENLABS_IDLE_MS, or at the
 * next turn boundary (interruption, caller transcript, tool call).
 *
 * Ownership is as in ai/ai_openai.h: the bridge owns the session from open() until close(),
 * then the provider frees it once the connection has ended.
 */
#ifndef SB_AI_ELEVENLABS_H
#define SB_AI_ELEVENLABS_H

#include <stddef.h>

#include "ai/ai.h"
#include "ai/ai_ws.h"

/* ---- for tests: the parts that need no connection ------------------------------------------ */

#define ELEVENLABS_AUDIO_SLOTS AIWS_AUDIO_SLOTS
#define ELEVENLABS_FRAME_B64   AIWS_FRAME_B64
#define ELEVENLABS_CTRL_MAX    AIWS_CTRL_MAX
#define ELEVENLABS_RX_MAX      (512 * 1024)
#define ELEVENLABS_IDLE_MS     800 /* agent audio quiet this long: the response is done */
#define ELEVENLABS_FORMAT      "ulaw_8000"
#define ELEVENLABS_CHUNK_HEAD  "{\"user_audio_chunk\":\""
#define ELEVENLABS_CHUNK_TAIL  "\"}"
#define ELEVENLABS_CHUNK_MAX                                                                                           \
    (sizeof(ELEVENLABS_CHUNK_HEAD) - 1 + ELEVENLABS_FRAME_B64 + sizeof(ELEVENLABS_CHUNK_TAIL) - 1)

/* ELEVENLABS_CONVAI_URL with agent_id=<agent> added to its query (percent-encoded). 0 or -1. */
typedef aiws_target_t elevenlabs_target_t;
int elevenlabs_target_parse(const char *url, const char *agent_id, elevenlabs_target_t *t);

/* The conversation_initiation_client_data event for a call; malloc'd text, or NULL. */
char *elevenlabs_initiation_json(const ai_open_t *p);

/* {"user_audio_chunk":"<b64>"} into dst without allocating; 0 when it does not fit or b64 is not
 * base64 text. */
size_t elevenlabs_chunk_build(char *dst, size_t cap, const char *b64, size_t len);

ai_session_t *elevenlabs_session_new(const ai_open_t *p, const ai_events_t *ev, void *bridge);
void elevenlabs_session_free(ai_session_t *s);

/* One received piece of a server message; final on its last piece. -1 once the session failed. */
int elevenlabs_rx_feed(ai_session_t *s, const char *in, size_t len, int final);
int elevenlabs_on_message(ai_session_t *s, const char *msg, size_t len);
/* What the idle timer does: the response in flight (if any) is done. */
void elevenlabs_idle(ai_session_t *s);

/* The next message to send (control messages first; audio only once the formats were checked). */
char *elevenlabs_out_peek(ai_session_t *s, size_t *len);
void elevenlabs_out_pop(ai_session_t *s);

#endif
