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
static const char *const fa_text[METRICS_FIRST_AUDIO_BUCKETS] = {"0.1", "0.25", "0.5", "0.75", "1",
                                                                 "1.5", "2",    "3",   "5",    "10"};
static const uint64_t fa_ns[METRICS_FIRST_AUDIO_BUCKETS] = {100000000u,  250000000u,  500000000u,  750000000u,
                                                            1000000000u, 1500000000u, 2000000000u, 3000000000u,
                                                            5000000000u, 10000000000u};
static const char *const dir_text[METRICS_DIRECTIONS] = {"inbound", "outbound"};
static const char *const media_text[METRICS_MEDIA_DIRECTIONS] = {"in", "out"};
static const char *const ai_dir_text[METRICS_AI_DIRECTIONS] = {"sent", "received"};
static const char *const drop_text[METRICS_DROPS] = {"early", "leg_full", "ai_full"};
static const char *const fallback_text[METRICS_FALLBACKS] = {"ai_failed", "ai_unreachable", "no_ai", "other"};
static const char *const stage_text[METRICS_STAGES] = {"primary", "secondary", "voicemail", "other"};
/* Twilio's words for the terminal states, which the store keeps */
static const char *const outcome_text[METRICS_OUTCOMES] = {"completed", "busy",     "no-answer",
                                                           "failed",    "canceled", "other"};

static uint64_t get(const _Atomic uint64_t *v)
{
    return atomic_load_explicit((_Atomic uint64_t *)v, memory_order_relaxed);
}

/* le has nb + 1 slots: the last one is past the last bound */
static void observe(_Atomic uint64_t *le, const uint64_t *bounds, size_t nb, _Atomic uint64_t *sum, uint64_t dur_ns)
{
    size_t b = 0;
    while (b < nb && dur_ns > bounds[b])
        b++;
    metrics_add(&le[b], 1);
    metrics_add(sum, dur_ns);
}

void metrics_http(metrics_t *m, size_t route, int status, uint64_t dur_ns)
{
    if (route >= METRICS_ROUTES_MAX)
        route = 0;
    metrics_hist_t *h = &m->http_duration[route];
    /* a WebSocket's 101 lasts as long as the session: counted, not timed */
    if (status >= 200)
        observe(h->le, le_ns, METRICS_BUCKETS, &h->sum_ns, dur_ns);
    int cls = status / 100 - 1;
    if (cls >= 0 && cls < METRICS_STATUS_CLASSES)
        metrics_add(&m->http_requests[route][cls], 1);
}

void metrics_call_started(metrics_t *m, platform_t p, metrics_direction_t d)
{
    if ((unsigned)p < METRICS_PLATFORMS && (unsigned)d < METRICS_DIRECTIONS)
        metrics_add(&m->calls_started[p][d], 1);
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
        metrics_add(&m->calls_ended[p][d][o], 1);
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

void metrics_media_dropped(metrics_t *m, int ai, metrics_drop_t why, uint64_t n)
{
    if ((unsigned)ai < METRICS_AIS && (unsigned)why < METRICS_DROPS && n > 0)
        metrics_add(&m->media_dropped[ai][why], n);
}

void metrics_recording_bytes(metrics_t *m, uint64_t n)
{
    metrics_add(&m->recording_bytes, n);
}

void metrics_ai_error(metrics_t *m, int ai)
{
    if ((unsigned)ai < METRICS_AIS)
        metrics_add(&m->ai_errors[ai], 1);
}

void metrics_ai_fallback(metrics_t *m, metrics_fallback_t why)
{
    metrics_add(&m->ai_fallbacks[(unsigned)why < METRICS_FALLBACKS ? why : METRICS_FALLBACK_OTHER], 1);
}

void metrics_first_audio(metrics_t *m, uint64_t dur_ns)
{
    observe(m->first_audio, fa_ns, METRICS_FIRST_AUDIO_BUCKETS, &m->first_audio_sum_ns, dur_ns);
}

void metrics_store_commit(metrics_t *m, uint64_t dur_ns)
{
    observe(m->store_commit.le, le_ns, METRICS_BUCKETS, &m->store_commit.sum_ns, dur_ns);
}

metrics_stage_t metrics_stage(int attempt, int vm)
{
    if (attempt == vm)
        return METRICS_STAGE_VOICEMAIL;
    if (vm >= 0 && attempt > vm)
        return METRICS_STAGE_OTHER; /* past the chain: the goodbye */
    return attempt == 0 ? METRICS_STAGE_PRIMARY : attempt == 1 ? METRICS_STAGE_SECONDARY : METRICS_STAGE_OTHER;
}

void metrics_transfer_attempt(metrics_t *m, platform_t p, metrics_stage_t s)
{
    if ((unsigned)p < METRICS_PLATFORMS && (unsigned)s < METRICS_STAGES)
        metrics_add(&m->transfer_attempts[p][s], 1);
}

void metrics_transfer_outcome(metrics_t *m, platform_t p, metrics_stage_t s, const char *status)
{
    metrics_outcome_t o = METRICS_OTHER;
    for (int i = 0; i < METRICS_OTHER && status != NULL; i++)
        if (strcmp(status, outcome_text[i]) == 0)
            o = (metrics_outcome_t)i;
    if (status != NULL && strcmp(status, "answered") == 0)
        o = METRICS_COMPLETED;
    if ((unsigned)p < METRICS_PLATFORMS && (unsigned)s < METRICS_STAGES)
        metrics_add(&m->transfer_outcomes[p][s][o], 1);
}

void metrics_transfer_attempt_s(metrics_t *m, const char *platform, metrics_stage_t s)
{
    platform_t p;
    if (config_platform_parse(platform, &p) == 0)
        metrics_transfer_attempt(m, p, s);
}

void metrics_transfer_outcome_s(metrics_t *m, const char *platform, metrics_stage_t s, const char *status)
{
    platform_t p;
    if (config_platform_parse(platform, &p) == 0)
        metrics_transfer_outcome(m, p, s, status);
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

/* One histogram's samples: b[] per bucket (nb bounds, then +Inf), made cumulative here; label
 * NULL for none. _count is the +Inf bucket, both the sum of the buckets read: they always agree. */
static void put_hist(FILE *f, const char *name, const char *label, const char *value, const char *const *le, size_t nb,
                     const uint64_t *b, uint64_t sum_ns)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += b[i];
        fprintf(f, "%s_bucket{", name);
        if (label != NULL) {
            fprintf(f, "%s=\"", label);
            put_label(f, value);
            fputs("\",", f);
        }
        fprintf(f, "le=\"%s\"} %llu\n", i < nb ? le[i] : "+Inf", (unsigned long long)cum);
    }
    fprintf(f, "%s_sum", name);
    if (label != NULL) {
        fprintf(f, "{%s=\"", label);
        put_label(f, value);
        fputs("\"}", f);
    }
    fputc(' ', f);
    put_seconds(f, sum_ns);
    fprintf(f, "\n%s_count", name);
    if (label != NULL) {
        fprintf(f, "{%s=\"", label);
        put_label(f, value);
        fputs("\"}", f);
    }
    fprintf(f, " %llu\n", (unsigned long long)cum);
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
        put_hist(f, "switchboard_http_request_duration_seconds", "route", slot_name(v, s), le_text, METRICS_BUCKETS, b,
                 sum);
    }
}

/* Sums counters at the same offset of every worker's metrics_t: n of them from field on. */
static void sum_counters(const metrics_view_t *v, size_t off, size_t n, uint64_t *out)
{
    memset(out, 0, n * sizeof(*out));
    for (size_t w = 0; w < v->nworkers; w++) {
        if (v->workers[w] == NULL)
            continue;
        const _Atomic uint64_t *c = (const _Atomic uint64_t *)((const char *)v->workers[w] + off);
        for (size_t i = 0; i < n; i++)
            out[i] += get(&c[i]);
    }
}
#define SUM(v, field, out) sum_counters(v, offsetof(metrics_t, field), sizeof(out) / sizeof(uint64_t), (uint64_t *)out)

/* A label of a counter family: its name and the text of each index. */
typedef struct label {
    const char *name;
    int n;
    const char *const *text;
} label_t;

/* A counter family laid out in metrics_t as a C array over its labels (the first label
 * outermost): summed over the workers and rendered in that order. */
static void put_counters(FILE *f, const metrics_view_t *v, const char *name, const char *help, size_t off, int nlabels,
                         const label_t *labels, uint64_t *sums)
{
    size_t n = 1;
    for (int l = 0; l < nlabels; l++)
        n *= (size_t)labels[l].n;
    sum_counters(v, off, n, sums);
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < n; i++) {
        fputs(name, f);
        size_t stride = n;
        for (int l = 0; l < nlabels; l++) {
            stride /= (size_t)labels[l].n;
            fprintf(f, "%c%s=\"%s\"", l == 0 ? '{' : ',', labels[l].name, labels[l].text[(i / stride) % labels[l].n]);
        }
        fprintf(f, "%s %llu\n", nlabels > 0 ? "}" : "", (unsigned long long)sums[i]);
    }
}
/* COUNTERS(f, v, name, field, help, labels...): the sums go into a buffer sized by the field */
#define COUNTERS(f, v, name, field, help, ...)                                                                         \
    do {                                                                                                               \
        uint64_t sums_[sizeof(((metrics_t *)0)->field) / sizeof(uint64_t)];                                            \
        const label_t labels_[] = {__VA_ARGS__};                                                                       \
        put_counters(f, v, name, help, offsetof(metrics_t, field), (int)(sizeof(labels_) / sizeof(labels_[0])),        \
                     labels_, sums_);                                                                                  \
    } while (0)

static void render_calls(FILE *f, const metrics_view_t *v, label_t platform)
{
    const label_t direction = {"direction", METRICS_DIRECTIONS, dir_text};
    const label_t outcome = {"outcome", METRICS_OUTCOMES, outcome_text};
    COUNTERS(f, v, "switchboard_calls_started_total", calls_started,
             "Calls begun: inbound calls recorded (admitted or refused busy), outbound calls placed with the platform.",
             platform, direction);
    COUNTERS(f, v, "switchboard_calls_ended_total", calls_ended, "Calls that reached a terminal state, by outcome.",
             platform, direction, outcome);
    uint64_t started[METRICS_PLATFORMS][METRICS_DIRECTIONS];
    uint64_t ended[METRICS_PLATFORMS][METRICS_DIRECTIONS][METRICS_OUTCOMES];
    SUM(v, calls_started, started);
    SUM(v, calls_ended, ended);
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
        fprintf(f, "switchboard_calls_active{platform=\"%s\"} %llu\n", platform.text[p],
                (unsigned long long)(s > e ? s - e : 0));
    }
}

static void render_media(FILE *f, const metrics_view_t *v, label_t provider)
{
    COUNTERS(f, v, "switchboard_media_frames_total", media_frames,
             "Audio frames (20 ms) through the AI bridge, by AI provider and direction (in: caller to AI, out: AI to "
             "caller); provider none: no AI, or not known yet.",
             provider, {"direction", METRICS_MEDIA_DIRECTIONS, media_text});
    COUNTERS(f, v, "switchboard_media_frames_dropped_total", media_dropped,
             "Audio frames dropped: early (caller audio before the AI was ready), leg_full (agent audio the media "
             "leg's queue refused), ai_full (caller audio the provider's full queue dropped).",
             provider, {"reason", METRICS_DROPS, drop_text});
    COUNTERS(f, v, "switchboard_ai_messages_total", ai_messages,
             "Messages on the AI provider's WebSocket (audio frames included), sent to the provider and received "
             "from it.",
             provider, {"direction", METRICS_AI_DIRECTIONS, ai_dir_text});
    COUNTERS(f, v, "switchboard_ai_errors_total", ai_errors,
             "Errors an AI session reported, or sessions that could not be opened.", provider);
    COUNTERS(f, v, "switchboard_ai_fallbacks_total", ai_fallbacks,
             "Calls the AI bridge handed to a person without the caller or the agent asking, by reason.",
             {"reason", METRICS_FALLBACKS, fallback_text});
    uint64_t fa[METRICS_FIRST_AUDIO_BUCKETS + 1], fa_sum;
    SUM(v, first_audio, fa);
    sum_counters(v, offsetof(metrics_t, first_audio_sum_ns), 1, &fa_sum);
    fputs("# HELP switchboard_first_audio_seconds Time from a media leg's start to the first agent audio sent to the "
          "caller.\n"
          "# TYPE switchboard_first_audio_seconds histogram\n",
          f);
    put_hist(f, "switchboard_first_audio_seconds", NULL, NULL, fa_text, METRICS_FIRST_AUDIO_BUCKETS, fa, fa_sum);
    uint64_t rec;
    sum_counters(v, offsetof(metrics_t, recording_bytes), 1, &rec);
    fputs("# HELP switchboard_recording_bytes_total Audio bytes (8 kHz mu-law, both channels) written to call "
          "recordings.\n"
          "# TYPE switchboard_recording_bytes_total counter\n",
          f);
    fprintf(f, "switchboard_recording_bytes_total %llu\n", (unsigned long long)rec);
}

static void render_transfers(FILE *f, const metrics_view_t *v, label_t platform)
{
    const label_t stage = {"stage", METRICS_STAGES, stage_text};
    COUNTERS(f, v, "switchboard_transfer_attempts_total", transfer_attempts,
             "Transfer chain stages begun (a target dialed, or voicemail), by the stage's position.", platform, stage);
    COUNTERS(f, v, "switchboard_transfer_outcomes_total", transfer_outcomes, "How dialed transfer stages ended.",
             platform, stage, {"outcome", METRICS_OUTCOMES, outcome_text});
}

static void render_store(FILE *f, const metrics_view_t *v)
{
    uint64_t b[METRICS_BUCKETS + 1], sum;
    SUM(v, store_commit.le, b);
    sum_counters(v, offsetof(metrics_t, store_commit.sum_ns), 1, &sum);
    fputs(
        "# HELP switchboard_store_commit_seconds Duration of the store's commits (SQLite: the group commit of a worker "
        "loop iteration that wrote; PostgreSQL: the COMMIT round trip of each unit, WAL flush included).\n"
        "# TYPE switchboard_store_commit_seconds histogram\n",
        f);
    put_hist(f, "switchboard_store_commit_seconds", NULL, NULL, le_text, METRICS_BUCKETS, b, sum);
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
    const char *platform_text[METRICS_PLATFORMS], *ai_text[METRICS_AIS];
    for (int p = 0; p < METRICS_PLATFORMS; p++)
        platform_text[p] = config_platform_name((platform_t)p);
    for (int a = 0; a < METRICS_AIS; a++)
        ai_text[a] = config_ai_provider_name((ai_kind_t)a);
    render_http(f, v, nslots);
    render_calls(f, v, (label_t){"platform", METRICS_PLATFORMS, platform_text});
    render_media(f, v, (label_t){"provider", METRICS_AIS, ai_text});
    render_transfers(f, v, (label_t){"platform", METRICS_PLATFORMS, platform_text});
    render_store(f, v);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
