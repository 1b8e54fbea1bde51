/* Writes made off a fiber on a store attached to a loop: the audio bridge's transcripts and
 * events (called from the AI's messages), Asterisk's channel events, REST completions. They
 * need no answer, so instead of waiting on the loop they are copied into the store's queue and
 * one fiber writes them in order (a call's timeline keeps its order); a failure is reported
 * through the scheduler's log. SQLite and calls on a fiber write at once, as before. */
#include "db/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    W_EVENT,
    W_NEXT_ACTION,
    W_TRANSCRIPT,
    W_REC_PATH,
    W_STREAM,
    W_XFER_BEGIN,
    W_XFER_END,
    W_PLACED,
    W_FAILED,
    W_AMD,
    W_STATUS,
    W_BARRIER, /* not a write: store_after_queued()'s callback */
} wkind_t;

static const char *const wnames[] = {
    "call_event",     "next_action",  "transcript",      "recording_path",  "call_stream",
    "transfer_begin", "transfer_end", "outbound_placed", "outbound_failed", "amd",
    "call_status",    "barrier"};

struct store_wop {
    store_wop_t *next;
    wkind_t k;
    long id, n1, n2, n3;
    char *s[5];
    void (*fn)(void *arg); /* W_BARRIER */
    void *arg;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void wop_free(store_wop_t *op)
{
    for (int i = 0; i < 5; i++)
        free(op->s[i]);
    free(op);
}

static void drain(void *arg)
{
    store_t *st = arg;
    store_defer_t *q = &st->defer;
    int forced = store_pg_set_forced(st, 0); /* these writes are written, not queued again */
    while (q->head != NULL) {
        store_wop_t *op = q->head;
        q->head = op->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->queued--;
        int rc = 0;
        char **s = op->s;
        switch (op->k) {
        case W_EVENT:
            rc = store_call_event(st, op->id, s[0], s[1]);
            break;
        case W_NEXT_ACTION:
            rc = store_call_set_next_action(st, op->id, s[0], s[1]);
            break;
        case W_TRANSCRIPT:
            rc = store_transcript_add(st, op->id, s[0], s[1]);
            break;
        case W_REC_PATH:
            rc = store_call_recording_path(st, op->id, s[0]);
            break;
        case W_STREAM:
            rc = store_call_stream(st, op->id, s[0]);
            break;
        case W_XFER_BEGIN:
            rc = store_call_transfer_begin(st, op->id, (int)op->n1, s[0], s[1]);
            break;
        case W_XFER_END:
            rc = store_call_transfer_end(st, op->id, (int)op->n1, s[0], s[1]);
            break;
        case W_PLACED:
            rc = store_outbound_placed(st, op->id, s[0], s[1], s[2]);
            break;
        case W_FAILED:
            rc = store_outbound_failed(st, op->id, s[0], (int)op->n1, s[1], s[2], (int)op->n2);
            break;
        case W_AMD:
            rc = store_call_amd(st, op->id, s[0], s[1]);
            break;
        case W_BARRIER:
            /* the writes before it are in; fn runs code written for the loop: its writes queue */
            store_pg_set_forced(st, 1);
            op->fn(op->arg);
            store_pg_set_forced(st, 0);
            break;
        case W_STATUS: {
            store_status_t in = {.call_sid = s[0],
                                 .status = s[1],
                                 .session_id = s[2],
                                 .seq = op->id,
                                 .duration_s = op->n1,
                                 .sip_code = op->n2,
                                 .at = s[3],
                                 .event_json = s[4]};
            int applied;
            rc = store_call_status(st, &in, &applied) < 0 ? -1 : 0;
            break;
        }
        }
        if (rc != 0) {
            q->failed++;
            if (q->log != NULL)
                q->log(q->log_ctx, wnames[op->k], store_errmsg(st));
        }
        wop_free(op);
    }
    store_pg_set_forced(st, forced);
    q->draining = 0;
}

int store_defers(store_t *st)
{
    return st->defer.run != NULL && store_pg_defers(st);
}

static int enqueue_fn(store_t *st, wkind_t k, long id, long n1, long n2, const char *s0, const char *s1, const char *s2,
                      const char *s3, const char *s4, void (*fn)(void *arg), void *arg)
{
    store_defer_t *q = &st->defer;
    if (q->queued >= STORE_DEFER_MAX) { /* the database is away: bounded, as everything else */
        snprintf(st->errbuf, sizeof(st->errbuf), "write queue full (%d writes wait for the database)", STORE_DEFER_MAX);
        return -1;
    }
    store_wop_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        snprintf(st->errbuf, sizeof(st->errbuf), "out of memory");
        return -1;
    }
    op->k = k;
    op->fn = fn;
    op->arg = arg;
    op->id = id;
    op->n1 = n1;
    op->n2 = n2;
    const char *in[5] = {s0, s1, s2, s3, s4};
    for (int i = 0; i < 5; i++) {
        if (in[i] != NULL && (op->s[i] = dup_or_null(in[i])) == NULL) {
            wop_free(op);
            snprintf(st->errbuf, sizeof(st->errbuf), "out of memory");
            return -1;
        }
    }
    if (q->tail != NULL)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    q->queued++;
    if (!q->draining) {
        q->draining = 1;
        if (q->run(q->run_ctx, drain, st) != 0) {
            q->draining = 0; /* no fiber now: the next write tries again */
        }
    }
    return 0;
}

static int enqueue(store_t *st, wkind_t k, long id, long n1, long n2, const char *s0, const char *s1, const char *s2,
                   const char *s3, const char *s4)
{
    return enqueue_fn(st, k, id, n1, n2, s0, s1, s2, s3, s4, NULL, NULL);
}

int store_defer_event(store_t *st, long call_id, const char *type, const char *detail_json)
{
    return enqueue(st, W_EVENT, call_id, 0, 0, type, detail_json, NULL, NULL, NULL);
}

int store_defer_next_action(store_t *st, long call_id, const char *action, const char *reason)
{
    return enqueue(st, W_NEXT_ACTION, call_id, 0, 0, action, reason, NULL, NULL, NULL);
}

int store_defer_transcript(store_t *st, long call_id, const char *role, const char *text)
{
    return enqueue(st, W_TRANSCRIPT, call_id, 0, 0, role, text, NULL, NULL, NULL);
}

int store_defer_recording_path(store_t *st, long call_id, const char *path)
{
    return enqueue(st, W_REC_PATH, call_id, 0, 0, path, NULL, NULL, NULL, NULL);
}

int store_defer_stream(store_t *st, long call_id, const char *stream_sid)
{
    return enqueue(st, W_STREAM, call_id, 0, 0, stream_sid, NULL, NULL, NULL, NULL);
}

int store_defer_transfer(store_t *st, int begin, long call_id, int attempt, const char *what, const char *event_json)
{
    return enqueue(st, begin ? W_XFER_BEGIN : W_XFER_END, call_id, attempt, 0, what, event_json, NULL, NULL, NULL);
}

int store_defer_placed(store_t *st, long call_id, const char *call_sid, const char *status, const char *response_json)
{
    return enqueue(st, W_PLACED, call_id, 0, 0, call_sid, status, response_json, NULL, NULL);
}

int store_defer_failed(store_t *st, long call_id, const char *status, int error_code, const char *message,
                       const char *response_json, int release_key)
{
    return enqueue(st, W_FAILED, call_id, error_code, release_key, status, message, response_json, NULL, NULL);
}

int store_defer_amd(store_t *st, long call_id, const char *answered_by, const char *event_json)
{
    return enqueue(st, W_AMD, call_id, 0, 0, answered_by, event_json, NULL, NULL, NULL);
}

int store_defer_status(store_t *st, const store_status_t *s)
{
    return enqueue(st, W_STATUS, s->seq, s->duration_s, s->sip_code, s->call_sid, s->status, s->session_id, s->at,
                   s->event_json);
}

int store_busy(const store_t *st)
{
    return st->defer.head != NULL || st->defer.draining;
}

void store_defer_free(store_t *st)
{
    for (store_wop_t *op = st->defer.head, *n; op != NULL; op = n) {
        n = op->next;
        wop_free(op);
    }
    st->defer.head = st->defer.tail = NULL;
}

int store_after_queued(store_t *st, void (*fn)(void *arg), void *arg)
{
    store_defer_t *q = &st->defer;
    if (q->run == NULL || (q->head == NULL && !q->draining))
        return 0;
    /* full or no memory: the caller goes on now, as with nothing queued */
    return enqueue_fn(st, W_BARRIER, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, fn, arg) == 0;
}
