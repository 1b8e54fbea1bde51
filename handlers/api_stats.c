#define _GNU_SOURCE /* strptime, timegm */
#include "handlers/api_stats.h"
#include "server/form.h"
#include "server/isotime.h"
#include "server/log.h"
#include "server/worker.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_HOURS (24 * 7)

/* YYYY-MM-DDTHH:MM[:SS[.fff]]Z, or with +HH:MM / -HH:MM: an instant. *t receives it in UTC. */
static int instant(const char *s, time_t *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(s, "%Y-%m-%dT%H:%M", &tm);
    if (p == NULL || strlen(s) > 29)
        return -1;
    if (*p == ':') {
        if (p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9')
            return -1;
        tm.tm_sec = (p[1] - '0') * 10 + (p[2] - '0');
        p += 3;
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9')
                p++;
        }
    }
    long off = 0;
    if (*p == 'Z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
            return -1;
        off = (hh * 60L + mm) * 60L * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    /* strptime takes any day up to 31 and timegm rolls it over: the calendar decides here */
    if (*p != '\0' || !isotime_valid(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec))
        return -1;
    time_t v = timegm(&tm);
    if (v == (time_t)-1)
        return -1;
    *t = v - off;
    return 0;
}

void api_stats(http_req_t *r)
{
    form_t *query = NULL;
    int qerr = form_parse_query(r->req->path.base, r->req->path.len, NULL, &query);
    if (qerr != FORM_OK) {
        http_send_query_error(r, qerr);
        return;
    }
    const char *since = form_get(query, "since"), *until = form_get(query, "until");
    time_t a, b;
    if (since == NULL || instant(since, &a) != 0) {
        http_send_error(r, 400, "invalid_query", "since must be an instant, e.g. 2026-11-22T00:00:00Z", "since");
    } else if (until == NULL || instant(until, &b) != 0) {
        http_send_error(r, 400, "invalid_query", "until must be an instant, e.g. 2026-11-23T00:00:00Z", "until");
    } else if (b <= a || b - a > MAX_HOURS * 3600L) {
        http_send_error(r, 400, "invalid_query", "until must be after since, by at most 7 days", "until");
    } else {
        char s1[32], s2[32];
        struct tm tm;
        strftime(s1, sizeof(s1), "%Y-%m-%dT%H:%M:%S.000Z", gmtime_r(&a, &tm));
        strftime(s2, sizeof(s2), "%Y-%m-%dT%H:%M:%S.000Z", gmtime_r(&b, &tm));
        int hours = (int)((b - a + 3599) / 3600);
        json_t *out;
        if (store_call_stats(r->w->store, r->tenant_id, s1, s2, hours, &out) != 0) {
            log_error("db.error", "rid=%s op=call_stats error=\"%s\"", r->rid, store_errmsg(r->w->store));
            http_send_error(r, 503, "db_unavailable", "the calls could not be read", NULL);
        } else {
            json_object_set_new(out, "since", json_string(s1));
            json_object_set_new(out, "until", json_string(s2));
            http_send_json(r, 200, out);
        }
    }
    form_free(query);
}
