/*
 * bridge: one call's conversation between Twilio's media stream and an AI provider, on the
 * worker that accepted the stream. The media handler (handlers/media.c) parses Twilio's
 * messages and calls bridge_on_*; the bridge talks back through the transport it was given.
 *
 * Lifetime: bridge_new() when the WebSocket is up; bridge_transport_gone() when the socket is
 * finished (the bridge then frees itself once its own handles are closed). The transport is
 * never called after bridge_transport_gone().
 */
#ifndef SB_BRIDGE_H
#define SB_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

struct worker;
typedef struct bridge bridge_t;

typedef struct bridge_transport {
    /* Queue one text message to Twilio. Returns 0, or -1 when the queue is full (dropped). */
    int (*send)(void *ctx, const char *msg, size_t len);
    /* Close the stream with a WebSocket status code. */
    void (*close)(void *ctx, int code, const char *reason);
} bridge_transport_t;

bridge_t *bridge_new(struct worker *w, const bridge_transport_t *t, void *ctx);

/* Twilio's messages. start's strings are borrowed for the call. Returns -1 when the stream
 * must be refused (unknown session, call mismatch): the bridge has already closed it. */
int bridge_on_start(bridge_t *b, const char *stream_sid, const char *call_sid, const char *session_id);
void bridge_on_media(bridge_t *b, const char *b64, size_t len, uint64_t timestamp_ms);
void bridge_on_mark(bridge_t *b, const char *name);
void bridge_on_dtmf(bridge_t *b, const char *digit);
void bridge_on_stop(bridge_t *b);
/* The stream broke the protocol (oversized, binary, bad JSON): counted, closed, the call falls back. */
void bridge_on_protocol_error(bridge_t *b, const char *what, int close_code);

void bridge_transport_gone(bridge_t *b);

/* Bytes this bridge holds, for the memory budget. */
size_t bridge_memory(const bridge_t *b);

#endif
