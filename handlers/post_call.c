#include "handlers/post_call.h"
#include "server/isotime.h"
#include "server/log.h"
#include "server/worker.h"
#include "server/e164.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_AGE_S        (30 * 60) /* ElevenLabs' SDKs refuse older signatures too */
#define MAX_SKEW_S       (5 * 60)  /* a timestamp this far ahead is refused */
#define PHONE_WINDOW_S   (2 * 3600)
#define MAX_TURNS        500
#define MAX_TEXT         4000
#define MAX_SHORT        200
#define MAX_NOTES        2000
#define MAX_CONV_ID      128
#define MAX_ORPHAN_BYTES 65536

/* ---- signature ---------------------------------------------------------------------- */

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* 0 valid; else -1 with *why. The header may carry several v0 signatures (secret rotation). */
static int verify_signature(const char *secret, h2o_iovec_t hdr, h2o_iovec_t body, const char **why)
{
    if (hdr.base == NULL || hdr.len == 0) {
        *why = "missing ElevenLabs-Signature header";
        return -1;
    }
    if (hdr.len > 1024) {
        *why = "malformed ElevenLabs-Signature header";
        return -1;
    }
    char buf[1025];
    memcpy(buf, hdr.base, hdr.len);
    buf[hdr.len] = '\0';
    const char *ts = NULL;
    size_t tslen = 0;
    unsigned char sigs[4][32];
    int nsigs = 0;
    char *save = NULL;
    for (char *part = strtok_r(buf, ",", &save); part != NULL; part = strtok_r(NULL, ",", &save)) {
        while (*part == ' ')
            part++;
        if (strncmp(part, "t=", 2) == 0) {
            ts = part + 2;
            tslen = strlen(ts);
        } else if (strncmp(part, "v0=", 3) == 0 && nsigs < 4) {
            const char *h = part + 3;
            if (strlen(h) != 64)
                continue;
            int ok = 1;
            for (int i = 0; i < 32 && ok; i++) {
                int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
                if (a < 0 || b < 0)
                    ok = 0;
                else
                    sigs[nsigs][i] = (unsigned char)(a << 4 | b);
            }
            if (ok)
                nsigs++;
        }
    }
    if (ts == NULL || tslen == 0 || tslen > 12 || nsigs == 0) {
        *why = "malformed ElevenLabs-Signature header";
        return -1;
    }
    long t = 0;
    for (size_t i = 0; i < tslen; i++) {
        if (!isdigit((unsigned char)ts[i])) {
            *why = "malformed ElevenLabs-Signature timestamp";
            return -1;
        }
        t = t * 10 + (ts[i] - '0');
    }
    long now = (long)time(NULL);
    if (t < now - MAX_AGE_S) {
        *why = "signature timestamp too old";
        return -1;
    }
    if (t > now + MAX_SKEW_S) {
        *why = "signature timestamp in the future";
        return -1;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t n = tslen + 1 + body.len;
    unsigned char *msg = malloc(n ? n : 1);
    if (msg == NULL) {
        *why = "out of memory";
        return -1;
    }
    memcpy(msg, ts, tslen);
    msg[tslen] = '.';
    if (body.len)
        memcpy(msg + tslen + 1, body.base, body.len);
    unsigned char *res = HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, n, mac, &maclen);
    free(msg);
    if (res == NULL || maclen != 32) {
        *why = "signature could not be computed";
        return -1;
    }
    int match = 0;
    for (int i = 0; i < nsigs; i++)
        match |= CRYPTO_memcmp(mac, sigs[i], 32) == 0;
    if (!match) {
        *why = "signature mismatch";
        return -1;
    }
    return 0;
}

/* ---- payload helpers ---------------------------------------------------------------- */

/* A copy of s cut to at most max bytes on a UTF-8 boundary (jansson strings are valid UTF-8). */
static char *bounded(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    char *o = malloc(n + 1);
    if (o != NULL) {
        memcpy(o, s, n);
        o[n] = '\0';
    }
    return o;
}

static char *memdup_str(const char *b, size_t n)
{
    char *o = malloc(n + 1);
    if (o != NULL) {
        memcpy(o, b, n);
        o[n] = '\0';
    }
    return o;
}

/* Trimmed copy of a string value, bounded; NULL when absent, not a string or blank. */
static char *str_field(json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    if (s == NULL)
        return NULL;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0')
        return NULL;
    char *o = bounded(s, max);
    if (o != NULL) {
        size_t n = strlen(o);
        while (n > 0 && isspace((unsigned char)o[n - 1]))
            o[--n] = '\0';
    }
    return o;
}

/* A data_collection_results entry's value ({"value": ..., "rationale": ...}) as a string. */
static char *dcr_value(json_t *dcr, const char *const *names, size_t max)
{
    if (!json_is_object(dcr))
        return NULL;
    for (; *names != NULL; names++) {
        json_t *e = json_object_get(dcr, *names);
        if (e == NULL)
            continue;
        json_t *v = json_is_object(e) ? json_object_get(e, "value") : e;
        char *s = str_field(v, max);
        if (s != NULL)
            return s;
        if (json_is_integer(v) || json_is_real(v)) {
            char buf[64];
            snprintf(buf, sizeof(buf), "%g", json_number_value(v));
            return bounded(buf, max);
        }
    }
    return NULL;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static int count_words(const char *text, const char *const *words)
{
    int n = 0;
    for (; *words != NULL; words++)
        for (const char *p = strstr(text, *words); p != NULL; p = strstr(p + 1, *words))
            n++;
    return n;
}

static const char *const BOOK_WORDS[] = {"appointment", "book", "schedule", "reserv", "slot", NULL};
static const char *const TICKET_WORDS[] = {"ticket",      "problem", "broken", "issue",     "complain",
                                           "not working", "fault",   "repair", "complaint", NULL};

/* Intent from words: ticket words outnumbering booking words, else booking, else other. */
static const char *intent_from_text(const char *text)
{
    char *t = bounded(text, (size_t)-1 / 2);
    if (t == NULL)
        return "other";
    lower(t);
    int b = count_words(t, BOOK_WORDS), k = count_words(t, TICKET_WORDS);
    free(t);
    return k > b ? "raise_ticket" : b > 0 ? "book_appointment" : k > 0 ? "raise_ticket" : "other";
}

/* The agent's own word for the intent, mapped onto ours. */
static const char *intent_from_value(const char *v)
{
    char *t = bounded(v, 200);
    if (t == NULL)
        return "other";
    lower(t);
    const char *r = strcmp(t, "book_appointment") == 0 ? "book_appointment"
                    : strcmp(t, "raise_ticket") == 0   ? "raise_ticket"
                    : strcmp(t, "other") == 0          ? "other"
                                                       : intent_from_text(t);
    free(t);
    return r;
}

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static int date_ok(const char *s)
{
    return isotime_date(s);
}

static int time_ok(const char *s)
{
    return strlen(s) == 5 && digits(s, 2) && s[2] == ':' && digits(s + 3, 2) && atoi(s) < 24 && atoi(s + 3) < 60;
}

/* ---- the handler -------------------------------------------------------------------- */

typedef struct parsed {
    json_t *root;
    const char **roles, **texts; /* texts owned */
    size_t nturns;
    char *fields[16]; /* owned strings, freed at the end */
    size_t nfields;
} parsed_t;

static char *keep(parsed_t *p, char *s)
{
    if (s == NULL)
        return NULL;
    if (p->nfields >= sizeof(p->fields) / sizeof(p->fields[0])) {
        free(s);
        return NULL;
    }
    return p->fields[p->nfields++] = s;
}

static void parsed_free(parsed_t *p)
{
    for (size_t i = 0; i < p->nturns; i++)
        free((char *)p->texts[i]);
    free(p->roles);
    free(p->texts);
    for (size_t i = 0; i < p->nfields; i++)
        free(p->fields[i]);
    json_decref(p->root);
}

static void bad(http_req_t *r, const char *field, const char *message)
{
    http_send_error(r, 400, "invalid_payload", message, field);
}

void post_call_webhook(http_req_t *r)
{
    const config_t *cfg = &r->w->app->cfg;
    const char *secret = cfg->elevenlabs_webhook_secret;
    if (secret == NULL || secret[0] == '\0') {
        http_send_error(r, 503, "not_configured", "ELEVENLABS_WEBHOOK_SECRET is not configured", NULL);
        return;
    }
    h2o_iovec_t body = r->req->entity;
    if (body.base == NULL)
        body = h2o_iovec_init("", 0);
    const char *why = NULL;
    if (verify_signature(secret, http_header(r, "elevenlabs-signature"), body, &why) != 0) {
        log_warn("post_call.unauthorized", "rid=%s reason=\"%s\"", r->rid, why);
        http_send_error(r, 401, "unauthorized", why, NULL);
        return;
    }

    parsed_t p = {0};
    json_error_t jerr;
    p.root = json_loadb(body.base, body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(p.root)) {
        bad(r, "body", "the body must be a JSON object");
        goto out;
    }
    json_t *type = json_object_get(p.root, "type");
    if (!json_is_string(type)) {
        bad(r, "type", "type must be a string");
        goto out;
    }
    json_t *ets = json_object_get(p.root, "event_timestamp");
    if (ets != NULL && !json_is_null(ets) && !json_is_integer(ets)) {
        bad(r, "event_timestamp", "event_timestamp must be an integer (unix seconds)");
        goto out;
    }
    json_t *data = json_object_get(p.root, "data");
    if (!json_is_object(data)) {
        bad(r, "data", "data must be an object");
        goto out;
    }
    const char *conv = json_string_value(json_object_get(data, "conversation_id"));
    if (conv == NULL || conv[0] == '\0' || strlen(conv) > MAX_CONV_ID) {
        bad(r, "data.conversation_id", "data.conversation_id must be a non-empty string of at most 128 bytes");
        goto out;
    }
    for (const char *c = conv; *c; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e) {
            bad(r, "data.conversation_id", "data.conversation_id must be printable ASCII");
            goto out;
        }
    if (strcmp(json_string_value(type), "post_call_transcription") != 0) {
        /* post_call_audio (base64 audio we do not keep), call_initiation_failure, newer types */
        log_info("post_call.ignored", "rid=%s type=%.40s conversation_id=%s", r->rid, json_string_value(type), conv);
        http_send_json(r, 200, json_pack("{s:s, s:s}", "status", "ignored", "conversation_id", conv));
        goto out;
    }

    /* the transcript */
    json_t *tr = json_object_get(data, "transcript");
    if (!json_is_array(tr)) {
        bad(r, "data.transcript", "data.transcript must be an array");
        goto out;
    }
    size_t n = json_array_size(tr), turns_total = n;
    if (n > MAX_TURNS)
        n = MAX_TURNS;
    p.roles = calloc(n ? n : 1, sizeof(*p.roles));
    p.texts = calloc(n ? n : 1, sizeof(*p.texts));
    if (p.roles == NULL || p.texts == NULL) {
        http_send_error(r, 503, "unavailable", "out of memory", NULL);
        goto out;
    }
    size_t ulen = 0;
    for (size_t i = 0; i < json_array_size(tr); i++) {
        json_t *t = json_array_get(tr, i);
        char field[48];
        snprintf(field, sizeof(field), "data.transcript[%zu]", i);
        if (!json_is_object(t)) {
            bad(r, field, "each transcript turn must be an object");
            goto out;
        }
        json_t *role = json_object_get(t, "role"), *msg = json_object_get(t, "message");
        if (!json_is_string(role)) {
            snprintf(field, sizeof(field), "data.transcript[%zu].role", i);
            bad(r, field, "a transcript turn's role must be a string");
            goto out;
        }
        if (msg != NULL && !json_is_null(msg) && !json_is_string(msg)) {
            snprintf(field, sizeof(field), "data.transcript[%zu].message", i);
            bad(r, field, "a transcript turn's message must be a string or null");
            goto out;
        }
        const char *rs = json_string_value(role);
        const char *ours = strcmp(rs, "user") == 0 ? "caller" : strcmp(rs, "agent") == 0 ? "agent" : NULL;
        char *text = str_field(msg, MAX_TEXT); /* null messages: tool-call turns */
        if (ours == NULL || text == NULL || p.nturns >= n) {
            free(text);
            continue;
        }
        p.roles[p.nturns] = ours;
        p.texts[p.nturns++] = text;
        if (ours[0] == 'c')
            ulen += strlen(text) + 1;
    }

    /* metadata.phone_call */
    json_t *meta = json_object_get(data, "metadata");
    if (meta != NULL && !json_is_null(meta) && !json_is_object(meta)) {
        bad(r, "data.metadata", "data.metadata must be an object");
        goto out;
    }
    json_t *pc = json_object_get(meta, "phone_call");
    if (pc != NULL && !json_is_null(pc) && !json_is_object(pc)) {
        bad(r, "data.metadata.phone_call", "data.metadata.phone_call must be an object");
        goto out;
    }
    json_t *analysis = json_object_get(data, "analysis");
    if (analysis != NULL && !json_is_null(analysis) && !json_is_object(analysis)) {
        bad(r, "data.analysis", "data.analysis must be an object");
        goto out;
    }
    json_t *dcr = json_object_get(analysis, "data_collection_results");
    if (dcr != NULL && !json_is_null(dcr) && !json_is_object(dcr)) {
        bad(r, "data.analysis.data_collection_results", "data_collection_results must be an object");
        goto out;
    }
    const char *call_sid = json_string_value(json_object_get(pc, "call_sid"));
    if (call_sid != NULL && strlen(call_sid) > 64)
        call_sid = NULL;
    char ext[E164_BUFSZ] = "", agent_num[E164_BUFSZ] = "";
    const char *ext_in = json_string_value(json_object_get(pc, "external_number"));
    const char *agent_in = json_string_value(json_object_get(pc, "agent_number"));
    if (ext_in != NULL && e164_normalize(ext_in, cfg->default_country_code, ext, sizeof(ext), NULL) != 0)
        ext[0] = '\0';
    if (agent_in != NULL &&
        e164_normalize(agent_in, cfg->default_country_code, agent_num, sizeof(agent_num), NULL) != 0)
        agent_num[0] = '\0';
    long event_ts = json_is_integer(ets) ? (long)json_integer_value(ets) : 0;
    json_t *start = json_object_get(meta, "start_time_unix_secs");
    long ref = json_is_integer(start) ? (long)json_integer_value(start) : event_ts > 0 ? event_ts : (long)time(NULL);

    /* the intent and its fields */
    static const char *const K_INTENT[] = {"intent", "call_intent", "caller_intent", NULL};
    static const char *const K_NAME[] = {"name", "customer_name", "caller_name", "full_name", NULL};
    static const char *const K_DATE[] = {"date", "appointment_date", "booking_date", NULL};
    static const char *const K_TIME[] = {"time", "appointment_time", "booking_time", NULL};
    static const char *const K_NOTES[] = {"notes", "booking_notes", "reason", NULL};
    static const char *const K_SUMMARY[] = {"summary", "issue_summary", "ticket_summary", "issue", "problem", NULL};
    static const char *const K_PRIORITY[] = {"priority", "ticket_priority", "urgency", NULL};
    char *summary = keep(&p, str_field(json_object_get(analysis, "transcript_summary"), MAX_TEXT));
    char *iv = keep(&p, dcr_value(dcr, K_INTENT, 200));
    const char *intent, *source;
    if (iv != NULL) {
        intent = intent_from_value(iv);
        source = "data_collection";
    } else {
        char *ut = malloc(ulen + 1);
        if (ut == NULL) {
            http_send_error(r, 503, "unavailable", "out of memory", NULL);
            goto out;
        }
        ut[0] = '\0';
        size_t off = 0;
        for (size_t i = 0; i < p.nturns; i++)
            if (p.roles[i][0] == 'c') {
                size_t l = strlen(p.texts[i]);
                memcpy(ut + off, p.texts[i], l);
                off += l;
                ut[off++] = '\n';
                ut[off] = '\0';
            }
        intent = intent_from_text(ut);
        free(ut);
        source = "transcript";
    }
    char *name = keep(&p, dcr_value(dcr, K_NAME, MAX_SHORT));

    store_post_call_t in = {
        .conversation_id = conv,
        .agent_id = json_string_value(json_object_get(data, "agent_id")),
        .call_sid = call_sid,
        .external_number = ext[0] ? ext : NULL,
        .agent_number = agent_num[0] ? agent_num : NULL,
        .event_timestamp = event_ts,
        .ref_time = ref,
        .window_s = PHONE_WINDOW_S,
        .default_tenant_id = cfg->default_tenant_id,
        .summary = summary,
        .roles = p.roles,
        .texts = p.texts,
        .nturns = p.nturns,
        .intent = intent,
        .customer_name = name,
    };
    if (in.agent_id != NULL && strlen(in.agent_id) > MAX_SHORT)
        in.agent_id = NULL;
    static const char *const K_URL[] = {"recording_url", "audio_url", NULL};
    for (const char *const *k = K_URL; *k != NULL && in.recording_url == NULL; k++) {
        const char *u = json_string_value(json_object_get(data, *k));
        if (u == NULL)
            u = json_string_value(json_object_get(meta, *k));
        if (u != NULL && strlen(u) <= 1024 && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0))
            in.recording_url = u;
    }

    json_t *detail = json_pack("{s:s, s:s, s:s, s:I}", "conversation_id", conv, "intent", intent, "intent_source",
                               source, "turns", (json_int_t)p.nturns);
    if (turns_total > MAX_TURNS)
        json_object_set_new(detail, "turns_truncated_from", json_integer((json_int_t)turns_total));
    if (strcmp(intent, "book_appointment") == 0) {
        char *date = keep(&p, dcr_value(dcr, K_DATE, 32));
        char *tm = keep(&p, dcr_value(dcr, K_TIME, 32));
        char *notes = keep(&p, dcr_value(dcr, K_NOTES, MAX_NOTES));
        const char *skip = date == NULL     ? "no date collected"
                           : !date_ok(date) ? "date is not YYYY-MM-DD"
                           : tm == NULL     ? "no time collected"
                           : !time_ok(tm)   ? "time is not HH:MM"
                                            : NULL;
        if (skip != NULL) {
            json_object_set_new(detail, "booking_skipped", json_string(skip));
        } else {
            in.make_booking = 1;
            in.booking_name = name != NULL ? name : ext[0] ? ext : "unknown caller";
            in.booking_date = date;
            in.booking_time = tm;
            in.booking_notes = notes != NULL ? notes : summary;
        }
    } else if (strcmp(intent, "raise_ticket") == 0) {
        char *ts = keep(&p, dcr_value(dcr, K_SUMMARY, MAX_TEXT));
        char *prio = keep(&p, dcr_value(dcr, K_PRIORITY, 16));
        if (prio != NULL)
            lower(prio);
        in.make_ticket = 1;
        in.ticket_summary = ts != NULL ? ts : summary != NULL ? summary : "post-call ticket";
        if (ts == NULL && summary == NULL)
            for (size_t i = 0; i < p.nturns; i++)
                if (p.roles[i][0] == 'c') {
                    in.ticket_summary = p.texts[i];
                    break;
                }
        in.ticket_priority = prio != NULL && (strcmp(prio, "low") == 0 || strcmp(prio, "normal") == 0 ||
                                              strcmp(prio, "high") == 0 || strcmp(prio, "urgent") == 0)
                                 ? prio
                                 : "normal";
    }
    in.detail = detail;
    in.payload = body.len <= MAX_ORPHAN_BYTES ? keep(&p, memdup_str(body.base, body.len)) : NULL;

    store_post_call_result_t res;
    if (store_post_call(r->w->store, &in, &res) != 0) {
        log_error("db.error", "rid=%s op=post_call error=\"%s\"", r->rid, store_errmsg(r->w->store));
        http_send_error(r, 503, "db_unavailable", "the conversation could not be stored", NULL);
        json_decref(detail);
        goto out;
    }
    json_decref(detail);
    if (res.duplicate) {
        log_info("post_call.duplicate", "rid=%s conversation_id=%s", r->rid, conv);
        http_send_json(r, 200, json_pack("{s:s, s:s}", "status", "duplicate", "conversation_id", conv));
    } else if (res.orphan) {
        log_warn("post_call.orphan", "rid=%s conversation_id=%s call_sid=%s external_number=%s", r->rid, conv,
                 call_sid != NULL ? call_sid : "-", ext[0] ? ext : "-");
        http_send_json(r, 200,
                       json_pack("{s:s, s:s, s:s}", "status", "orphan", "conversation_id", conv, "intent", intent));
    } else {
        log_info("post_call.received",
                 "rid=%s conversation_id=%s session=%s matched_by=%s intent=%s booking=%ld ticket=%ld", r->rid, conv,
                 res.session_id, res.matched_by, intent, res.booking_id, res.ticket_id);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "status", "processed", "conversation_id", conv, "session_id",
                              res.session_id, "matched_by", res.matched_by, "intent", intent);
        if (res.booking_id)
            json_object_set_new(o, "booking_id", json_integer(res.booking_id));
        if (res.ticket_id)
            json_object_set_new(o, "ticket_id", json_integer(res.ticket_id));
        if (res.customer_id)
            json_object_set_new(o, "customer_id", json_integer(res.customer_id));
        http_send_json(r, 200, o);
    }
out:
    parsed_free(&p);
}
