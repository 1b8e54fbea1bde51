/*
 * live: the dashboard's feed of call changes, as Server-Sent Events (GET /api/live).
 *
 * Each worker keeps its own streams and, while it has any, looks at the store every
 * LIVE_POLL_MS for calls whose timeline or transcript grew (store_live_changes), then sends
 * each changed call to the streams of its tenant. Reading the database instead of signalling
 * between workers keeps workers independent, sees changes made by every worker (and by other
 * instances sharing the database), and costs two index lookups per look when nothing changed.
 *
 * The live_t belongs to its worker (live_new in the worker's thread, live_free when the
 * worker's loop is being closed). A stream's memory is freed when h2o disposes its request.
 */
#ifndef SB_LIVE_H
#define SB_LIVE_H

#include "server/http.h"

struct worker;
typedef struct live live_t;

live_t *live_new(struct worker *w);
/* Ends every stream (graceful shutdown); the pages reconnect to another instance or later. */
void live_close_all(live_t *l);
/* Closes the timer; the memory goes with its close callback. */
void live_free(live_t *l);

/* The route handler: takes the request over as a stream of the token's tenant. */
void live_subscribe(http_req_t *r);

#endif
