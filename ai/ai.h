/*
 * ai: the interface between a call's media bridge and an AI voice agent. A provider opens a
 * session for one call on the worker's loop (so audio never crosses threads), takes the
 * caller's audio and reports what the agent does through callbacks.
 *
 * Audio is 8 kHz mu-law, always as base64 text exactly as Twilio Media Streams carries it:
 * the caller's frames go to the provider untouched, and agent audio comes back base64 too,
 * so no one decodes or re-encodes on the audio path.
 *
 * Ownership: the bridge owns the session handle from open() until it calls close(); after
 * close() the provider makes no more callbacks and frees everything itself (possibly later,
 * once its connection is torn down). Strings passed to callbacks are valid only during the
 * callback, and so are the strings of ai_open_t during open(): providers copy what they keep.
 * A provider never calls back from inside one of its own entry points. The bridge, on the
 * other hand, may call any entry point (close() included) from inside a callback.
 * say() and the continuation after tool_result() wait for a response in flight to end;
 * interrupt()'s audio_end_ms counts from the start of the item.
 */
#ifndef SB_AI_H
#define SB_AI_H

#include <stddef.h>

struct worker;

typedef struct ai_session ai_session_t;

typedef enum { AI_ROLE_CALLER = 0, AI_ROLE_AGENT = 1 } ai_role_t;

/* What the provider reports; `bridge` is the pointer given to open(). */
typedef struct ai_events {
    /* The session is usable (connected, configured). */
    void (*ready)(void *bridge);
    /* Agent audio, base64 mu-law, only base64 characters (the provider checked: the bridge puts
     * it into Twilio's JSON as it is); item_id names the response item (truncation), may be "". */
    void (*audio)(void *bridge, const char *b64, size_t len, const char *item_id);
    /* The agent finished producing a response (all its audio has been reported). */
    void (*response_done)(void *bridge);
    /* The caller started speaking (server VAD): the bridge barges in. */
    void (*speech_started)(void *bridge);
    /* The caller is audibly there (resets the silence timer) without interrupting anyone;
     * for providers without VAD of their own. May be NULL-checked by providers. */
    void (*caller_active)(void *bridge);
    /* A finished transcript line. */
    void (*transcript)(void *bridge, ai_role_t role, const char *text);
    /* The model calls a tool: arguments are a JSON object as text. The bridge answers with
     * tool_result(), which also asks the model to go on. */
    void (*tool_call)(void *bridge, const char *call_id, const char *name, const char *args_json);
    /* Something went wrong; fatal=1 means the session is unusable (the bridge falls back). */
    void (*error)(void *bridge, const char *what, int fatal);
} ai_events_t;

typedef struct ai_tool {
    const char *name, *description;
    const char *parameters_json; /* JSON Schema of the arguments */
} ai_tool_t;

typedef struct ai_open {
    const char *instructions; /* system prompt for this call */
    const char *voice;
    const char *greeting; /* the agent speaks first: what to greet with; NULL: a generic greeting */
    const ai_tool_t *tools;
    size_t ntools;
    const char *session_id; /* for logs */
} ai_open_t;

typedef struct ai_provider {
    const char *name;
    ai_session_t *(*open)(struct worker *w, const ai_open_t *params, const ai_events_t *ev, void *bridge);
    /* One caller frame, base64 as received from Twilio; anything else is refused. Never blocks; a full queue drops the
     * oldest audio (and counts it). */
    void (*send_audio)(ai_session_t *s, const char *b64, size_t len);
    /* Barge-in: the agent's item was heard up to audio_end_ms; cancel the response if one is
     * still being generated. */
    void (*interrupt)(ai_session_t *s, const char *item_id, unsigned audio_end_ms);
    /* The result of a tool call (JSON text); the model then continues. */
    void (*tool_result)(ai_session_t *s, const char *call_id, const char *output_json);
    /* Ask the agent to say something now (a prompt or a goodbye), in its own words. */
    void (*say)(ai_session_t *s, const char *instructions);
    /* Audio frames dropped so far because the provider's queue was full. */
    unsigned long (*dropped)(const ai_session_t *s);
    void (*close)(ai_session_t *s);
} ai_provider_t;

/* The provider for a name ("openai", "echo", ...), or NULL ("none"). */
const ai_provider_t *ai_provider_get(const char *name);

extern const ai_provider_t ai_echo_provider;
extern const ai_provider_t ai_openai_provider;
extern const ai_provider_t ai_elevenlabs_provider;

/* Converts base64 length to decoded bytes (= milliseconds * 8 for 8 kHz mu-law). */
size_t ai_b64_decoded_len(const char *b64, size_t len);
/* Decodes base64 into out (at most outsz bytes); returns the bytes written, or -1 on bad input. */
long ai_b64_decode(const char *b64, size_t len, unsigned char *out, size_t outsz);
/* 1 when every byte is of the base64 alphabet (A-Z a-z 0-9 + / =): safe to embed in JSON. */
int ai_b64_valid(const char *b64, size_t len);
/* Encodes len bytes as base64 (with padding) into out, which holds 4 * ((len + 2) / 3) bytes;
 * no NUL is written. Returns the characters written. For legs that carry raw audio. */
size_t ai_b64_encode(const unsigned char *in, size_t len, char *out);

#endif
