#include "server/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const le_text[METRICS_BUCKETS] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                                     "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};
static const uint64_t le_ns[METRICS_BUCKETS] = {500000u,     1000000u,    2500000u,    5000000u,    10000000u,
                                                25000000u,   50000000u,   100000000u,  250000000u,  500000000u,
                                                1000000000u, 2500000000u, 5000000000u, 10000000000u};
static const char *const dir_text[METRICS_DIRECTIONS] = {"inbound", "outbound"};
/* Twilio's words for the terminal states, which the store keeps */
static const char *const outcome_text[METRICS_OUTCOMES] = {"completed", "busy",     "no-answer",
                                                           "failed",    "canceled", "other"};

/* one writer per metrics_t: a relaxed load and store suffice, and need no locked instruction */
static void add(_Atomic uint64_t *v, uint64_t n)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n, memory_order_relaxed);
}

static uint64_t get(const _Atomic uint64_t *v)
{
    return atomic_load_explicit((_Atomic uint64_t *)v, memory_order_relaxed);
}

void metrics_http(metrics_t *m, size_t route, int status, uint64_t dur_ns)
{
    if (route >= METRICS_ROUTES_MAX)
        route = 0;
    metrics_hist_t *h = &m->http_duration[route];
    size_t b = 0;
    while (b < METRICS_BUCKETS && dur_ns > le_ns[b])
        b++;
    /* a WebSocket's 101 lasts as long as the session: counted, not timed */
    if (status >= 200) {
        add(&h->le[b], 1);
        add(&h->sum_ns, dur_ns);
    }
    int cls = status / 100 - 1;
    if (cls >= 0 && cls < METRICS_STATUS_CLASSES)
        add(&m->http_requests[route][cls], 1);
}

void metrics_call_started(metrics_t *m, platform_t p, metrics_direction_t d)
{
    if ((unsigned)p < METRICS_PLATFORMS && (unsigned)d < METRICS_DIRECTIONS)
        add(&m->calls_started[p][d], 1);
}

void metrics_call_inbound(metrics_t *m, platform_t p, int refused)
{
    metrics_call_started(m, p, METRICS_INBOUND);
    if (refused)
        metrics_call_ended(m, p, METRICS_INBOUND, METRICS_BUSY);
}

void metrics_call_ended(metrics_t *m, platform_t p, metrics_direction_t d, metrics_outcome_t o)
{
    if ((unsigned)p < METRICS_PLATFORMS && (unsigned)d < METRICS_DIRECTIONS && (unsigned)o < METRICS_OUTCOMES)
        add(&m->calls_ended[p][d][o], 1);
}

int metrics_call_ended_s(metrics_t *m, const char *platform, const char *direction, const char *status)
{
    platform_t p;
    if (platform == NULL || direction == NULL || config_platform_parse(platform, &p) != 0)
        return -1;
    metrics_direction_t d = METRICS_DIRECTIONS;
    for (int i = 0; i < METRICS_DIRECTIONS; i++)
        if (strcmp(direction, dir_text[i]) == 0)
            d = (metrics_direction_t)i;
    if (d == METRICS_DIRECTIONS)
        return -1;
    metrics_outcome_t o = METRICS_OTHER;
    for (int i = 0; i < METRICS_OTHER && status != NULL; i++)
        if (strcmp(status, outcome_text[i]) == 0)
            o = (metrics_outcome_t)i;
    metrics_call_ended(m, p, d, o);
    return 0;
}

/* ---- rendering ---- */

/* A label value as the format wants it: backslash, quote and newline escaped. */
static void put_label(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void put_seconds(FILE *f, uint64_t ns)
{
    fprintf(f, "%llu.%09llu", (unsigned long long)(ns / 1000000000u), (unsigned long long)(ns % 1000000000u));
}

static const char *slot_name(const metrics_view_t *v, size_t slot)
{
    return slot == 0 || slot > v->nroutes ? "other" : v->routes[slot - 1];
}

/* The first slot of each distinct name renders; the others with that name are summed into it. */
static int slot_first(const metrics_view_t *v, size_t slot)
{
    for (size_t j = 0; j < slot; j++)
        if (strcmp(slot_name(v, j), slot_name(v, slot)) == 0)
            return 0;
    return 1;
}

static void render_http(FILE *f, const metrics_view_t *v, size_t nslots)
{
    static const char *const cls_text[METRICS_STATUS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    fputs("# HELP switchboard_http_requests_total HTTP requests answered, by route pattern and status class.\n"
          "# TYPE switchboard_http_requests_total counter\n",
          f);
    for (size_t s = 0; s < nslots; s++) {
        if (!slot_first(v, s))
            continue;
        uint64_t n[METRICS_STATUS_CLASSES] = {0};
        for (size_t t = s; t < nslots; t++) {
            if (strcmp(slot_name(v, t), slot_name(v, s)) != 0)
                continue;
            for (size_t w = 0; w < v->nworkers; w++)
                for (int c = 0; v->workers[w] != NULL && c < METRICS_STATUS_CLASSES; c++)
                    n[c] += get(&v->workers[w]->http_requests[t][c]);
        }
        for (int c = 0; c < METRICS_STATUS_CLASSES; c++) {
            fputs("switchboard_http_requests_total{route=\"", f);
            put_label(f, slot_name(v, s));
            fprintf(f, "\",status_class=\"%s\"} %llu\n", cls_text[c], (unsigned long long)n[c]);
        }
    }
    fputs("# HELP switchboard_http_request_duration_seconds Time from a request's arrival to the end of its "
          "response, by route pattern.\n"
          "# TYPE switchboard_http_request_duration_seconds histogram\n",
          f);
    for (size_t s = 0; s < nslots; s++) {
        if (!slot_first(v, s))
            continue;
        uint64_t b[METRICS_BUCKETS + 1] = {0}, sum = 0;
        for (size_t t = s; t < nslots; t++) {
            if (strcmp(slot_name(v, t), slot_name(v, s)) != 0)
                continue;
            for (size_t w = 0; w < v->nworkers; w++) {
                if (v->workers[w] == NULL)
                    continue;
                const metrics_hist_t *h = &v->workers[w]->http_duration[t];
                for (int i = 0; i <= METRICS_BUCKETS; i++)
                    b[i] += get(&h->le[i]);
                sum += get(&h->sum_ns);
            }
        }
        /* _count is the +Inf bucket, both the sum of the buckets read: they always agree */
        uint64_t cum = 0;
        for (int i = 0; i <= METRICS_BUCKETS; i++) {
            cum += b[i];
            fputs("switchboard_http_request_duration_seconds_bucket{route=\"", f);
            put_label(f, slot_name(v, s));
            fprintf(f, "\",le=\"%s\"} %llu\n", i < METRICS_BUCKETS ? le_text[i] : "+Inf", (unsigned long long)cum);
        }
        fputs("switchboard_http_request_duration_seconds_sum{route=\"", f);
        put_label(f, slot_name(v, s));
        fputs("\"} ", f);
        put_seconds(f, sum);
        fputs("\nswitchboard_http_request_duration_seconds_count{route=\"", f);
        put_label(f, slot_name(v, s));
        fprintf(f, "\"} %llu\n", (unsigned long long)cum);
    }
}

static void render_calls(FILE *f, const metrics_view_t *v)
{
    uint64_t started[METRICS_PLATFORMS][METRICS_DIRECTIONS] = {{0}};
    uint64_t ended[METRICS_PLATFORMS][METRICS_DIRECTIONS][METRICS_OUTCOMES] = {{{0}}};
    for (size_t w = 0; w < v->nworkers; w++) {
        const metrics_t *m = v->workers[w];
        for (int p = 0; m != NULL && p < METRICS_PLATFORMS; p++)
            for (int d = 0; d < METRICS_DIRECTIONS; d++) {
                started[p][d] += get(&m->calls_started[p][d]);
                for (int o = 0; o < METRICS_OUTCOMES; o++)
                    ended[p][d][o] += get(&m->calls_ended[p][d][o]);
            }
    }
    fputs("# HELP switchboard_calls_started_total Calls begun: inbound calls recorded (admitted or refused busy), "
          "outbound calls placed with the platform.\n"
          "# TYPE switchboard_calls_started_total counter\n",
          f);
    for (int p = 0; p < METRICS_PLATFORMS; p++)
        for (int d = 0; d < METRICS_DIRECTIONS; d++)
            fprintf(f, "switchboard_calls_started_total{platform=\"%s\",direction=\"%s\"} %llu\n",
                    config_platform_name((platform_t)p), dir_text[d], (unsigned long long)started[p][d]);
    fputs("# HELP switchboard_calls_ended_total Calls that reached a terminal state, by outcome.\n"
          "# TYPE switchboard_calls_ended_total counter\n",
          f);
    for (int p = 0; p < METRICS_PLATFORMS; p++)
        for (int d = 0; d < METRICS_DIRECTIONS; d++)
            for (int o = 0; o < METRICS_OUTCOMES; o++)
                fprintf(f, "switchboard_calls_ended_total{platform=\"%s\",direction=\"%s\",outcome=\"%s\"} %llu\n",
                        config_platform_name((platform_t)p), dir_text[d], outcome_text[o],
                        (unsigned long long)ended[p][d][o]);
    fputs("# HELP switchboard_calls_active Calls started minus calls ended since this process started (not below "
          "0).\n"
          "# TYPE switchboard_calls_active gauge\n",
          f);
    for (int p = 0; p < METRICS_PLATFORMS; p++) {
        uint64_t s = 0, e = 0;
        for (int d = 0; d < METRICS_DIRECTIONS; d++) {
            s += started[p][d];
            for (int o = 0; o < METRICS_OUTCOMES; o++)
                e += ended[p][d][o];
        }
        /* a call begun before a restart ends after it: never show fewer than none */
        fprintf(f, "switchboard_calls_active{platform=\"%s\"} %llu\n", config_platform_name((platform_t)p),
                (unsigned long long)(s > e ? s - e : 0));
    }
}

char *metrics_render(const metrics_view_t *v, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (f == NULL)
        return NULL;
    size_t nslots = 1 + (v->nroutes < METRICS_ROUTES_MAX - 1 ? v->nroutes : METRICS_ROUTES_MAX - 1);
    fputs("# HELP switchboard_build_info The running build; always 1.\n"
          "# TYPE switchboard_build_info gauge\n"
          "switchboard_build_info{version=\"",
          f);
    put_label(f, v->version);
    fprintf(f,
            "\"} 1\n"
            "# HELP switchboard_workers Worker threads serving requests.\n"
            "# TYPE switchboard_workers gauge\n"
            "switchboard_workers %zu\n",
            v->nworkers);
    render_http(f, v, nslots);
    render_calls(f, v);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
