/*
 * ari: the client side of the Asterisk REST Interface on one worker's loop. One events
 * WebSocket (/ari/events?app=ARI_APP, HTTP Basic auth, through ai/ai_ws's WebSocket
 * client) that reconnects with capped backoff (0.5 s doubling to 30 s), and REST requests
 * through the worker's curl multi, so nothing ever blocks the loop.
 *
 * Ownership: ari_new() returns a client the caller closes with ari_close() (from the loop's
 * thread); after that no callback runs. The event JSON given to on_event and the body given to a
 * request's done callback are borrowed for the callback only. A request's done callback runs
 * once, unless the client is closed first (then never); `data` must stay valid until then, or
 * be a key the callback looks up (the app passes a call's serial, never a pointer to it).
 */
#ifndef SB_ASTERISK_ARI_H
#define SB_ASTERISK_ARI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ai/ai_ws.h"

struct worker;
typedef struct ari ari_t;

typedef enum { ARI_DOWN = 0, ARI_CONNECTING, ARI_UP } ari_state_t;

typedef struct ari_handlers {
    /* One event from the events socket: the text as received. */
    void (*event)(void *data, const char *msg, size_t len);
    /* The events socket came up (after a start or a reconnect) or went down. */
    void (*state)(void *data, ari_state_t state);
} ari_handlers_t;

/* h NULL: REST only, no events socket. */
ari_t *ari_new(struct worker *w, const ari_handlers_t *h, void *data);
/* Closes the events socket for good (no reconnect); REST requests go on. */
void ari_stop_events(ari_t *a);
void ari_close(ari_t *a);
ari_state_t ari_state(const ari_t *a);
const char *ari_state_name(ari_state_t s);

/* status: the HTTP status (0 when the request did not complete: connection refused, timeout);
 * body: the parsed JSON reply or NULL (empty, or not JSON). */
typedef void (*ari_done_cb)(void *data, uint64_t key, long status, json_t *body);

/* METHOD /ari + path (path carries its query, values percent-encoded: see ari_url.h). done may
 * be NULL (fire and forget, errors logged). 0, or -1 when the request could not be started
 * (logged; done is not called). */
int ari_request(ari_t *a, const char *method, const char *path, ari_done_cb done, void *data, uint64_t key);

/* Requests started and not yet answered. */
unsigned ari_inflight(const ari_t *a);

#endif
