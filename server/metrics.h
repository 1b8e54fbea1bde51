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

#include <stdatomic.h>
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
#define METRICS_AIS            4 /* ai_kind_t: none, echo, openai, elevenlabs */
/* Finite upper bounds of the first agent audio histogram, in seconds: 0.1 .. 10. */
#define METRICS_FIRST_AUDIO_BUCKETS 10

/* Media frames (20 ms): in = caller to AI, out = AI to caller. */
typedef enum { METRICS_MEDIA_IN = 0, METRICS_MEDIA_OUT, METRICS_MEDIA_DIRECTIONS } metrics_media_t;
typedef enum {
    METRICS_DROP_EARLY = 0, /* a caller frame before the AI was ready */
    METRICS_DROP_LEG_FULL,  /* an agent frame the leg's queue refused */
    METRICS_DROP_AI_FULL,   /* a caller frame the provider's full queue dropped */
    METRICS_DROPS
} metrics_drop_t;
/* Messages on an AI provider's WebSocket: sent to it, received from it. */
typedef enum { METRICS_AI_SENT = 0, METRICS_AI_RECEIVED, METRICS_AI_DIRECTIONS } metrics_ai_dir_t;
/* Why the bridge handed a call to a person without being asked to. */
typedef enum {
    METRICS_FALLBACK_AI_FAILED = 0,
    METRICS_FALLBACK_AI_UNREACHABLE,
    METRICS_FALLBACK_NO_AI,
    METRICS_FALLBACK_OTHER, /* the leg broke its protocol, out of memory */
    METRICS_FALLBACKS
} metrics_fallback_t;
/* A transfer attempt's position in the chain (policy_stage()). */
typedef enum {
    METRICS_STAGE_PRIMARY = 0,
    METRICS_STAGE_SECONDARY,
    METRICS_STAGE_VOICEMAIL,
    METRICS_STAGE_OTHER,
    METRICS_STAGES
} metrics_stage_t;

typedef struct metrics_hist {
    _Atomic uint64_t le[METRICS_BUCKETS + 1]; /* per bucket (not cumulative); the last is > 10 s */
    _Atomic uint64_t sum_ns;
} metrics_hist_t;

typedef struct metrics {
    metrics_hist_t http_duration[METRICS_ROUTES_MAX];
    _Atomic uint64_t http_requests[METRICS_ROUTES_MAX][METRICS_STATUS_CLASSES];
    _Atomic uint64_t calls_started[METRICS_PLATFORMS][METRICS_DIRECTIONS];
    _Atomic uint64_t calls_ended[METRICS_PLATFORMS][METRICS_DIRECTIONS][METRICS_OUTCOMES];
    _Atomic uint64_t media_frames[METRICS_AIS][METRICS_MEDIA_DIRECTIONS];
    _Atomic uint64_t media_dropped[METRICS_AIS][METRICS_DROPS];
    _Atomic uint64_t ai_messages[METRICS_AIS][METRICS_AI_DIRECTIONS];
    _Atomic uint64_t ai_errors[METRICS_AIS];
    _Atomic uint64_t ai_fallbacks[METRICS_FALLBACKS];
    _Atomic uint64_t transfer_attempts[METRICS_PLATFORMS][METRICS_STAGES];
    _Atomic uint64_t transfer_outcomes[METRICS_PLATFORMS][METRICS_STAGES][METRICS_OUTCOMES];
    _Atomic uint64_t first_audio[METRICS_FIRST_AUDIO_BUCKETS + 1]; /* per bucket; the last is > 10 s */
    _Atomic uint64_t first_audio_sum_ns;
    metrics_hist_t store_commit;
    _Atomic uint64_t recording_bytes;
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

/* One writer per metrics_t: a relaxed load and store suffice, and need no locked instruction. */
static inline void metrics_add(_Atomic uint64_t *v, uint64_t n)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n, memory_order_relaxed);
}

/* The audio path (50 frames a second per call and direction): counter adds only, inlined
 * (bench/metrics_frame.c measures them). ai is an ai_kind_t; out of range counts nothing. */
static inline void metrics_media_frame(metrics_t *m, int ai, metrics_media_t d)
{
    if ((unsigned)ai < METRICS_AIS && (unsigned)d < METRICS_MEDIA_DIRECTIONS)
        metrics_add(&m->media_frames[ai][d], 1);
}
void metrics_media_dropped(metrics_t *m, int ai, metrics_drop_t why, uint64_t n);
void metrics_recording_bytes(metrics_t *m, uint64_t n);
/* One whole message on the AI's WebSocket (audio frames included: ~50 a second each way). */
static inline void metrics_ai_message(metrics_t *m, int ai, metrics_ai_dir_t d)
{
    if ((unsigned)ai < METRICS_AIS && (unsigned)d < METRICS_AI_DIRECTIONS)
        metrics_add(&m->ai_messages[ai][d], 1);
}
void metrics_ai_error(metrics_t *m, int ai);
void metrics_ai_fallback(metrics_t *m, metrics_fallback_t why);
/* Media leg start to the first agent audio sent to the caller, once per call. */
void metrics_first_audio(metrics_t *m, uint64_t dur_ns);
/* One commit of the store: SQLite's group commit, PostgreSQL's COMMIT round trip. */
void metrics_store_commit(metrics_t *m, uint64_t dur_ns);

/* Attempt `attempt` of the transfer chain, whose voicemail stage is attempt vm (-1: unknown,
 * then attempt is a target): 0 primary, 1 secondary, vm voicemail, anything else other. */
metrics_stage_t metrics_stage(int attempt, int vm);
void metrics_transfer_attempt(metrics_t *m, platform_t p, metrics_stage_t s);
/* status in the store's words (completed, busy, no-answer, failed, canceled; Twilio's
 * "answered" is completed); anything else counts as other. */
void metrics_transfer_outcome(metrics_t *m, platform_t p, metrics_stage_t s, const char *status);
/* The same with the call row's platform word; nothing counted when it is not one of ours. */
void metrics_transfer_attempt_s(metrics_t *m, const char *platform, metrics_stage_t s);
void metrics_transfer_outcome_s(metrics_t *m, const char *platform, metrics_stage_t s, const char *status);

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
