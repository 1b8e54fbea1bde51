/*
 * ai_ws: the WebSocket client connection shared by the AI providers (ai/ai_openai.c,
 * ai/ai_elevenlabs.c) and Asterisk's events socket, on ai/wsc.h (libuv, OpenSSL). It owns one
 * connection per session: the target URL, the connect (the host name resolved on libuv's
 * thread pool first, then wsc connects to the address with the name for Host, SNI and the
 * certificate), a polite close, the reassembly of fragmented messages with a cap, the
 * control-message queue that goes before audio, a ring of audio slots that drops the oldest,
 * and the session's lifetime. Queued messages are written at once when no write is in flight.
 *
 * A provider embeds an aiws_conn_t in its session and fills in aiws_ops_t; the transport calls
 * back through the ops with the provider's session (`owner`). The protocol (message formats,
 * events, the ai_provider_t entry points) stays with the provider.
 *
 * Ownership: the conn lives inside its owner's allocation. The bridge owns the session until it
 * calls aiws_close(); from then on the transport frees the owner (ops->free) once nothing holds it
 * any more: not the resolver, not the connection (whose last callback comes first), not a
 * callback we are inside of. The provider frees a session directly only when it never connected
 * (open() failing, tests): ops->free calls aiws_cleanup() for the conn's own allocations. ev, the
 * log name and the ops are borrowed and must outlive the conn; messages pushed onto a list belong
 * to the list.
 *
 * The worker keeps its connections in the "ai" worker module (aiws_start and friends), so that
 * a stopping worker waits for polite closes and ends what is left.
 */
#ifndef SB_AI_WS_H
#define SB_AI_WS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ai/ai.h"
#include "ai/wsc.h"

struct worker;

#define AIWS_AUDIO_SLOTS 64  /* 1.28 s of caller audio may wait; older audio is dropped */
#define AIWS_FRAME_B64   216 /* base64 of one 20 ms frame; bigger frames take several slots */
#define AIWS_WRAP_MAX    64  /* room for the text around one frame of audio */
#define AIWS_CTRL_MAX    64  /* control messages waiting; more means the connection is stuck */
#define AIWS_SLOT_SIZE   ((AIWS_FRAME_B64 + AIWS_WRAP_MAX + 7) & ~(size_t)7)
#define AIWS_CALL_IDS    8 /* tool calls remembered, so each is reported once */
#define AIWS_CALL_ID_MAX 64

/* Where to connect: ws/wss/http/https URLs. */
typedef struct aiws_target {
    char host[256]; /* no brackets, no port */
    char path[2048];
    int port;
    int tls;
} aiws_target_t;

/* Parses url (no user info, port 1..65535, the fragment dropped); 0, or -1 when it is not
 * ws/wss/http/https or does not fit. */
int aiws_target_parse(const char *url, aiws_target_t *t);
/* Appends key=<value percent-encoded> to the path's query; 0, or -1 when it does not fit. */
int aiws_query_add(aiws_target_t *t, const char *key, const char *value);
/* 1 when the query (after '?') names key, with or without a value. */
int aiws_query_has(const char *query, const char *key);

/* A message to send: len bytes of text. */
typedef struct aiws_msg {
    struct aiws_msg *next;
    size_t len;
    char buf[];
} aiws_msg_t;

typedef struct aiws_list {
    aiws_msg_t *head, **tail;
    unsigned n;
} aiws_list_t;

/* msg as compact JSON (takes msg, NULL included); NULL when it cannot be built. free() it. */
aiws_msg_t *aiws_msg_new(json_t *msg);
void aiws_list_init(aiws_list_t *l);
void aiws_list_push(aiws_list_t *l, aiws_msg_t *m); /* takes m */
aiws_msg_t *aiws_list_shift(aiws_list_t *l);        /* the caller frees what it gets */
void aiws_list_free(aiws_list_t *l);

typedef struct aiws_ops {
    /* Handshake header lines ("Name: value\r\n" each) into dst; bytes written, or -1 to fail the
     * connect. */
    int (*headers)(void *owner, char *dst, size_t cap);
    /* One whole server message; -1 once the session failed. */
    int (*message)(void *owner, const char *msg, size_t len);
    /* aiws_timer() went off (not while closing); may be NULL. */
    void (*timer)(void *owner);
    /* Frees the owner (and, through aiws_cleanup(), the conn's allocations). */
    void (*free)(void *owner);
    /* The WebSocket handshake succeeded; may be NULL. */
    void (*connected)(void *owner);
} aiws_ops_t;

/* Fields are the transport's; providers read ev, bridge, id, ctrl and set hold_audio. */
typedef struct aiws_conn {
    const aiws_ops_t *ops;
    void *owner;
    const char *name; /* "openai": log events are <name>.failed, ... */
    const ai_events_t *ev;
    void *bridge;
    struct worker *w;
    wsc_t *ws;             /* NULL before the connect and once the connection has ended */
    aiws_target_t *target; /* only while the host name is being resolved */
    uv_getaddrinfo_t dns;
    struct aiws_conn *prev, *next; /* the worker's connections */
    struct aiws_pool *pool;        /* NULL once the worker let go of its list */
    /* > 0 while code that may call the bridge (or be called back by the connection) runs:
     * close() from in there only marks the session, and whoever holds it finishes the job on
     * the way out */
    int busy;
    unsigned resolving : 1, established : 1, failed : 1, released : 1, closing : 1,
        hold_audio : 1, /* audio waits in the ring (control messages still go) */
        bad_audio_logged : 1;
    int close_code;   /* ours, when we close: 1000 unless a failure says otherwise */
    int metrics_ai;   /* ai_kind_t its messages count under (set by the provider); -1: none */
    aiws_list_t ctrl; /* control messages: sent before any audio */
    size_t rx_max;
    char *rx; /* a message arriving in pieces; its capacity is kept for the next one */
    size_t rx_len, rx_cap;
    char id[48]; /* the call's session id, for logs */
    unsigned a_head, a_count;
    unsigned long dropped;
    const char *a_head_text, *a_tail_text; /* the message around each audio frame */
    uint16_t a_len[AIWS_AUDIO_SLOTS];
    char calls[AIWS_CALL_IDS][AIWS_CALL_ID_MAX];
    unsigned ncalls;
    _Alignas(8) char slots[AIWS_AUDIO_SLOTS][AIWS_SLOT_SIZE];
} aiws_conn_t;

/* 1 when this tool call id was seen on the connection before; otherwise remembers it and
 * returns 0 (a provider may hear of one call in two events). */
int aiws_call_seen(aiws_conn_t *c, const char *call_id);

/* Sets up a conn without a connection. head/tail wrap each audio frame (at most AIWS_WRAP_MAX
 * together); session_id may be NULL; rx_max is the largest server message. */
void aiws_init(aiws_conn_t *c, const aiws_ops_t *ops, void *owner, const char *name, const ai_events_t *ev,
               void *bridge, const char *session_id, size_t rx_max, const char *head, const char *tail);
/* Frees what the conn allocated (not the conn itself). */
void aiws_cleanup(aiws_conn_t *c);

/* Connects to t on w's loop (t is copied); 0, or -1 with *why set. */
int aiws_connect(aiws_conn_t *c, struct worker *w, const aiws_target_t *t, const char **why);
/* The bridge lets go: closes politely and frees the owner once nothing holds it. */
void aiws_close(aiws_conn_t *c);

/* Not closed and not failed. */
int aiws_live(const aiws_conn_t *c);
/* Reports a failure the session does not survive (ev->error fatal); once, never after close. -1. */
int aiws_fail(aiws_conn_t *c, const char *what);
/* Writes what is queued now if the connection is up and no write is in flight. */
void aiws_want_write(aiws_conn_t *c);
/* ops->timer after ms (0 stops it) while the connection is up. */
void aiws_timer(aiws_conn_t *c, uint64_t ms);

/* Queues a control message (takes msg); a failure is logged and the call goes on. 0 or -1. */
int aiws_send_ctrl(aiws_conn_t *c, json_t *msg);
/* Queues caller audio (valid base64) cut into frames of AIWS_FRAME_B64; the oldest is dropped. */
void aiws_audio_push(aiws_conn_t *c, const char *b64, size_t len);
/* A provider's send_audio: caller audio checked for base64, then queued; dropped while the
 * connection is not live. */
void aiws_send_audio(aiws_conn_t *c, const char *b64, size_t len);
/* 1 when b64 is base64 text; 0 otherwise, logged once per connection as <name>.bad_audio with
 * the direction ("in" from the caller, "out" from the agent). */
int aiws_audio_ok(aiws_conn_t *c, const char *b64, size_t len, const char *direction);
/* The string member key of o, or "" (absent or not a string). */
const char *aiws_str(const json_t *o, const char *key);
/* Parses a server message: the object (the caller drops it) with *type set, or NULL after a
 * <name>.bad_message warning (not JSON, or no "type"). */
json_t *aiws_parse(aiws_conn_t *c, const char *msg, size_t len, const char **type);
/* head + b64 + tail into dst without allocating; 0 when it does not fit in cap or b64 is not
 * base64 text (which goes into JSON as is). */
size_t aiws_frame_build(char *dst, size_t cap, const char *head, const char *tail, const char *b64, size_t len);

/* The next message to send (control first; audio unless held), or NULL. aiws_out_pop() drops it
 * once sent. */
char *aiws_out_peek(aiws_conn_t *c, size_t *len);
void aiws_out_pop(aiws_conn_t *c);

/* One received piece of a server message; final on its last piece. Whole messages go to
 * ops->message; -1 once the session failed. */
int aiws_rx_feed(aiws_conn_t *c, const char *in, size_t len, int final);

/* The "ai" worker module (handlers/routes.c lists it): the worker's connections. busy() while
 * released connections are still closing politely; release() ends what is left. */
int aiws_start(struct worker *w, void **state);
int aiws_busy(struct worker *w, void *state);
void aiws_release(struct worker *w, void *state);

#endif
