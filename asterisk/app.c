/* The Stasis application: the event dispatch, the call table and the app's lifetime. One
 * call's flow (media, transfer chain, ending) is in call.c. */
#include "asterisk/app.h"
#include "asterisk/app_internal.h"
#include "asterisk/ari_url.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- the call table ---- */

ast_call_t *ast_find(asterisk_t *a, uint64_t serial)
{
    for (ast_call_t *c = a->calls; c != NULL; c = c->next)
        if (c->serial == serial)
            return c;
    return NULL;
}

/* The call a channel belongs to, and which of its channels that is. */
static ast_call_t *by_channel(asterisk_t *a, const char *id, ast_chan_t *which)
{
    for (ast_call_t *c = a->calls; c != NULL; c = c->next) {
        if (strcmp(c->caller, id) == 0) {
            *which = CH_CALLER;
            return c;
        }
        if (c->em[0] != '\0' && strcmp(c->em, id) == 0) {
            *which = CH_MEDIA;
            return c;
        }
        if (c->xfer[0] != '\0' && strcmp(c->xfer, id) == 0) {
            *which = CH_TRANSFER;
            return c;
        }
    }
    return NULL;
}

static ast_call_t *by_playback(asterisk_t *a, const char *id)
{
    for (ast_call_t *c = a->calls; c != NULL; c = c->next)
        if (c->playback[0] != '\0' && strcmp(c->playback, id) == 0)
            return c;
    return NULL;
}

ast_call_t *ast_call_new(asterisk_t *a, const char *caller_channel)
{
    ast_call_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->app = a;
    c->serial = ++a->serial;
    c->api_attempt = -1;
    snprintf(c->caller, sizeof(c->caller), "%s", caller_channel);
    uv_timer_init(&a->w->loop, &c->timer);
    c->timer.data = c;
    c->next = a->calls;
    if (a->calls != NULL)
        a->calls->prev = c;
    a->calls = c;
    a->ncalls++;
    return c;
}

static void free_call(uv_handle_t *h)
{
    free(h->data);
}

void ast_call_free(ast_call_t *c)
{
    asterisk_t *a = c->app;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    a->ncalls--;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, free_call);
}

/* ---- REST helpers ---- */

int ast_rest(asterisk_t *a, const char *method, const char *const *path, const char *const *query, ari_done_cb done,
             uint64_t key)
{
    char url[2048];
    if (ari_url_build(url, sizeof(url), path, query) < 0) {
        log_error("asterisk.rest_refused", "method=%s path=%s why=\"the URL does not fit or is invalid\"", method,
                  path[0]);
        return -1;
    }
    return ari_request(a->ari, method, url, done, a, key);
}

/* ---- events ---- */

/* Recordings are named "sb-<session>" (call.c): the name finds the call. */
static void on_recording_done(asterisk_t *a, const char *msg, size_t len)
{
    json_t *o = json_loadb(msg, len, 0, NULL);
    const char *name = json_string_value(json_object_get(json_object_get(o, "recording"), "name"));
    for (ast_call_t *c = a->calls; name != NULL && c != NULL; c = c->next)
        if (strncmp(name, "sb-", 3) == 0 && strcmp(name + 3, c->call.session_id) == 0) {
            ast_on_recording_done(c, json_string_value(json_object_get(json_object_get(o, "recording"), "state")));
            break;
        }
    json_decref(o);
}

static void handle_event(asterisk_t *a, const char *msg, size_t len)
{
    ari_event_t *ev = &a->ev; /* 3.5 KB: one per app, not on the stack */
    int rc = ari_event_parse(msg, len, ev);
    if (rc != ARI_EVENT_OK) {
        a->bad_events++;
        log_warn("asterisk.bad_event", "error=\"%s\" (counted: %lu)", ev->error, a->bad_events);
        return;
    }
    if (ev->type == ARI_EVENT_OTHER) {
        /* a voicemail message ended (# or its length): the only other events we act on */
        if (strcmp(ev->type_name, "RecordingFinished") == 0 || strcmp(ev->type_name, "RecordingFailed") == 0)
            on_recording_done(a, msg, len);
        return; /* ApplicationRegistered and others we do not use */
    }
    if (ev->application[0] != '\0' && strcmp(ev->application, a->w->app->cfg.ari_app) != 0)
        return;
    ast_chan_t which = CH_CALLER;
    ast_call_t *c = NULL;
    switch (ev->type) {
    case ARI_EVENT_STASIS_START:
        c = by_channel(a, ev->channel.id, &which);
        if (c != NULL) {
            ast_on_started(c, which, ev);
        } else if (strncmp(ev->channel.id, "sbo-", 4) == 0) {
            ast_outbound_answered(a, ev);
        } else if (strncmp(ev->channel.id, "sb", 2) == 0 && strchr("ex", ev->channel.id[2]) != NULL) {
            /* one of ours whose call is gone: let it go */
            const char *path[] = {"channels", ev->channel.id, NULL};
            ast_rest(a, "DELETE", path, NULL, NULL, 0);
        } else {
            ast_inbound(a, ev);
        }
        return;
    case ARI_EVENT_STASIS_END:
    case ARI_EVENT_CHANNEL_DESTROYED:
    case ARI_EVENT_CHANNEL_HANGUP_REQUEST:
        if ((c = by_channel(a, ev->channel.id, &which)) != NULL)
            ast_on_gone(c, which, ev);
        else if (ev->type == ARI_EVENT_CHANNEL_DESTROYED && strncmp(ev->channel.id, "sbo-", 4) == 0)
            ast_outbound_unanswered(a, ev);
        else
            a->unknown_channels++;
        return;
    case ARI_EVENT_CHANNEL_DTMF_RECEIVED:
        if ((c = by_channel(a, ev->channel.id, &which)) != NULL && which == CH_CALLER)
            ast_on_dtmf(c, ev->digit);
        return;
    case ARI_EVENT_PLAYBACK_FINISHED:
        if ((c = by_playback(a, ev->playback_id)) != NULL)
            ast_on_playback_done(c);
        return;
    default:
        return;
    }
}

/* One queued event: its JSON as received (ARI_EVENT_MAX_LEN at most, ari.c enforces it). */
struct ast_evq {
    struct ast_evq *next;
    size_t len;
    char msg[];
};
#define AST_EVQ_MAX       10000             /* events waiting behind one that waits for the database */
#define AST_EVQ_MAX_BYTES (8 * 1024 * 1024) /* and their JSON */

static void drain_events(void *arg)
{
    asterisk_t *a = arg;
    struct ast_evq *e;
    while ((e = a->evq_head) != NULL) {
        /* written for the loop: writes are queued, never waited for; only the lookups in
         * ast_inbound, ast_outbound_answered and ast_on_gone wait (and later events queue) */
        store_defer_writes(a->w->store, 1);
        handle_event(a, e->msg, e->len);
        store_defer_writes(a->w->store, 0);
        a->evq_head = e->next;
        if (a->evq_head == NULL)
            a->evq_tail = NULL;
        a->evq_len--;
        a->evq_bytes -= e->len;
        free(e);
    }
    a->draining = 0;
}

/* Each event is handled after the ones before it, whether or not they waited for the database,
 * so a call's events keep their order; on SQLite the drain runs at once, within this call. */
static void on_event(void *data, const char *msg, size_t len)
{
    asterisk_t *a = data;
    int full = a->evq_len >= AST_EVQ_MAX || a->evq_bytes + len > AST_EVQ_MAX_BYTES;
    struct ast_evq *e = full ? NULL : malloc(sizeof(*e) + len);
    if (e == NULL) {
        a->dropped_events++;
        log_error("asterisk.event_dropped", "queued=%u error=\"%s\" (counted: %lu)", a->evq_len,
                  full ? "queue full" : "out of memory", a->dropped_events);
        return;
    }
    e->next = NULL;
    e->len = len;
    memcpy(e->msg, msg, len);
    if (a->evq_tail != NULL)
        a->evq_tail->next = e;
    else
        a->evq_head = e;
    a->evq_tail = e;
    a->evq_len++;
    a->evq_bytes += len;
    if (a->draining)
        return;
    a->draining = 1;
    if (worker_run(a->w, drain_events, a) != 0)
        drain_events(a); /* no fiber to be had: it waits here */
}

static void on_state(void *data, ari_state_t s)
{
    asterisk_t *a = data;
    atomic_store(&a->w->app->status->asterisk, (int)s + 1);
    if (s == ARI_UP && a->was_up)
        ast_recheck_calls(a); /* Asterisk may have restarted: calls whose channel is gone end */
    if (s == ARI_UP)
        a->was_up = 1;
}

static const ari_handlers_t handlers = {on_event, on_state};

/* ---- lifetime ---- */

int asterisk_start(struct worker *w, void **state)
{
    *state = NULL;
    if (w->app->cfg.ari_url == NULL)
        return 0;
    asterisk_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -1;
    a->w = w;
    a->events = w->id == 0;
    a->ari = ari_new(w, a->events ? &handlers : NULL, a);
    if (a->ari == NULL) {
        free(a);
        return -1;
    }
    if (a->events && (a->pool = rtp_pool_new(w)) == NULL) {
        ari_close(a->ari);
        free(a);
        return -1;
    }
    *state = a;
    return 0;
}

void asterisk_stop(struct worker *w, void *state)
{
    asterisk_t *a = state;
    if (a == NULL || a->stopping)
        return;
    a->stopping = 1;
    /* best effort: the callers hear the end rather than silence; the requests may still be in
     * flight when the worker releases us */
    while (a->calls != NULL)
        ast_call_end(a->calls, "shutdown", 1);
    ari_stop_events(a->ari);
}

int asterisk_busy(struct worker *w, void *state)
{
    asterisk_t *a = state;
    return a != NULL && (ari_inflight(a->ari) > 0 || a->draining);
}

void asterisk_release(struct worker *w, void *state)
{
    asterisk_t *a = state;
    if (a == NULL)
        return;
    while (a->calls != NULL)
        ast_call_end(a->calls, "shutdown", 0);
    rtp_pool_close(a->pool);
    ari_close(a->ari);
    /* the worker failed every database wait before this: no drain is left running */
    while (a->evq_head != NULL) {
        struct ast_evq *e = a->evq_head;
        a->evq_head = e->next;
        free(e);
    }
    free(a);
}

const char *asterisk_health(const struct worker *w)
{
    if (w->app->cfg.ari_url == NULL)
        return "off";
    int s = atomic_load(&w->app->status->asterisk);
    return s == 0 ? "connecting" : ari_state_name((ari_state_t)(s - 1));
}

typedef struct live_req {
    asterisk_done_cb done;
    void *data;
} live_req_t;

static void on_live_done(void *data, uint64_t key, long status, json_t *body)
{
    asterisk_t *a = data;
    live_req_t *lr = (live_req_t *)(uintptr_t)key;
    (void)a;
    lr->done(lr->data, status, json_string_value(json_object_get(body, "message")));
    free(lr);
}

int asterisk_live(struct worker *w, const store_call_t *call, const char *action, asterisk_done_cb done, void *data)
{
    asterisk_t *a = w->mod[0];
    if (a == NULL || call->call_sid[0] == '\0')
        return -1;
    live_req_t *lr = malloc(sizeof(*lr));
    if (lr == NULL)
        return -1;
    lr->done = done;
    lr->data = data;
    char em[64];
    snprintf(em, sizeof(em), "sbem-%s", call->session_id);
    const char *path[] = {"channels", strcmp(action, "transfer") == 0 ? em : call->call_sid, NULL};
    const char *query[] = {"reason", "normal", NULL};
    /* the request is the key: its reply comes back on this worker, to this request only */
    if (ast_rest(a, "DELETE", path, query, on_live_done, (uint64_t)(uintptr_t)lr) != 0) {
        free(lr);
        return -1;
    }
    return 0;
}

/* Asterisk refused the originate: the session ends failed (its result otherwise comes as events). */
static void on_originated(void *data, uint64_t key, long status, json_t *body)
{
    asterisk_t *a = data;
    if (status >= 200 && status < 300)
        return;
    const char *msg = json_string_value(json_object_get(body, "message"));
    log_warn("asterisk.originate_failed", "call_id=%llu http_status=%ld message=\"%.200s\"", (unsigned long long)key,
             status, msg ? msg : "");
    if (store_outbound_failed(a->w->store, (long)key, "failed", (int)status, msg ? msg : "Asterisk refused the call",
                              NULL, 0) != 0)
        log_error("db.error", "op=outbound_failed error=\"%s\"", store_errmsg(a->w->store));
    metrics_call_ended(&a->w->metrics, PLATFORM_ASTERISK, METRICS_OUTBOUND, METRICS_FAILED); /* counted when sent */
}

int asterisk_originate(struct worker *w, const store_call_t *call, const char *caller_id)
{
    asterisk_t *a = w->mod[0];
    const config_t *cfg = &w->app->cfg;
    if (a == NULL)
        return -1;
    char endpoint[ARI_DIALSTRING_MAX + 1], id[64], timeout[16];
    if (ari_dialstring(call->to_number, cfg->asterisk_trunk, endpoint, sizeof(endpoint)) < 0) {
        log_error("asterisk.originate_refused", "session=%s why=\"the number cannot be dialed through ASTERISK_TRUNK\"",
                  call->session_id);
        return -1;
    }
    snprintf(id, sizeof(id), "sbo-%s", call->session_id);
    snprintf(timeout, sizeof(timeout), "%d", 30);
    const char *path[] = {"channels", NULL};
    const char *query[] = {"endpoint", endpoint,    "app", cfg->ari_app, "appArgs", "outbound", "timeout",
                           timeout,    "channelId", id,    "callerId",   caller_id, NULL};
    return ast_rest(a, "POST", path, query, on_originated, (uint64_t)call->id);
}
