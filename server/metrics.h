/*
 * metrics: the Prometheus series of one worker, and their text rendering summed over all workers.
 *
 * Each worker owns one metrics_t (inside its worker_t) and is its only writer: an event is a
 * relaxed load and store of one _Atomic uint64_t, no lock and no locked instruction. Any thread
 * may read them at any time (relaxed loads): a scrape sees each value whole, perhaps a few events
 * behind. Label sets are fixed enums, so an event never builds a string.
 *
 * The memory is the caller's (zeroed before use) and must outlive every reader: worker_t lives
 * until all workers have been joined (server/main.c), so other workers may read it while they run.
 */
#ifndef SB_METRICS_H
#define SB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "server/config.h"

/* Route slots: 0 is "other" (no route matched), 1 + i is router_routes[i]. */
#define METRICS_ROUTES_MAX 64
/* Finite upper bounds of the request duration histogram, in seconds: 0.0005 .. 10. */
#define METRICS_BUCKETS 14

typedef enum { METRICS_INBOUND = 0, METRICS_OUTBOUND, METRICS_DIRECTIONS } metrics_direction_t;
typedef enum {
    METRICS_COMPLETED = 0,
    METRICS_BUSY,
    METRICS_NO_ANSWER,
    METRICS_FAILED,
    METRICS_CANCELED,
    METRICS_OTHER, /* any other terminal word (a simulated call) */
    METRICS_OUTCOMES
} metrics_outcome_t;
#define METRICS_PLATFORMS      3 /* platform_t: twilio, asterisk, jambonz */
#define METRICS_STATUS_CLASSES 5 /* 1xx .. 5xx */

typedef struct metrics_hist {
    _Atomic uint64_t le[METRICS_BUCKETS + 1]; /* per bucket (not cumulative); the last is > 10 s */
    _Atomic uint64_t sum_ns;
} metrics_hist_t;

typedef struct metrics {
    metrics_hist_t http_duration[METRICS_ROUTES_MAX];
    _Atomic uint64_t http_requests[METRICS_ROUTES_MAX][METRICS_STATUS_CLASSES];
    _Atomic uint64_t calls_started[METRICS_PLATFORMS][METRICS_DIRECTIONS];
    _Atomic uint64_t calls_ended[METRICS_PLATFORMS][METRICS_DIRECTIONS][METRICS_OUTCOMES];
} metrics_t;

/* One answered request: route slot (out of range counts as "other"), HTTP status, duration. A 1xx
 * (a WebSocket upgrade, which lasts the whole session) is counted but not timed. */
void metrics_http(metrics_t *m, size_t route, int status, uint64_t dur_ns);

void metrics_call_started(metrics_t *m, platform_t p, metrics_direction_t d);
/* An inbound call recorded for the first time: started, and at once ended busy when refused. */
void metrics_call_inbound(metrics_t *m, platform_t p, int refused);
void metrics_call_ended(metrics_t *m, platform_t p, metrics_direction_t d, metrics_outcome_t o);
/* The same from the store's words (calls.platform, calls.direction, a terminal status);
 * -1 and nothing counted when platform or direction is not one of ours. */
int metrics_call_ended_s(metrics_t *m, const char *platform, const char *direction, const char *status);

/* What a scrape renders. workers[i] may be NULL (a worker not started): skipped. */
typedef struct metrics_view {
    const metrics_t *const *workers;
    size_t nworkers;           /* also switchboard_workers */
    const char *const *routes; /* routes[i] names slot 1 + i; slots with the same name are summed */
    size_t nroutes;            /* at most METRICS_ROUTES_MAX - 1 */
    const char *version;       /* switchboard_build_info */
} metrics_view_t;

/* The text exposition format 0.0.4: a malloc'ed string the caller frees, its length in *len;
 * NULL when out of memory. */
char *metrics_render(const metrics_view_t *v, size_t *len);

#endif
