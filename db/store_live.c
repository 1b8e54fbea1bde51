/* The dashboard's reads: what changed since a cursor, and the picture of a day. */
#include "db/store_internal.h"

#include <stdio.h>
#include <string.h>

int store_live_cursor(store_t *st, store_live_cursor_t *c)
{
    sqlite3_stmt *s = store_stmt_sql(st, Q_LIVE_CURSOR,
                                     "SELECT (SELECT COALESCE(MAX(id), 0) FROM call_events), "
                                     "(SELECT COALESCE(MAX(id), 0) FROM transcripts)");
    if (s == NULL)
        return -1;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        c->event_id = (long)sqlite3_column_int64(s, 0);
        c->transcript_id = (long)sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : store_fail(st, "live cursor");
}

int store_live_changes(store_t *st, store_live_cursor_t *c, int max, json_t **rows)
{
    *rows = NULL;
    store_live_cursor_t now;
    if (store_live_cursor(st, &now) != 0)
        return -1;
    if (now.event_id == c->event_id && now.transcript_id == c->transcript_id) {
        *rows = json_array();
        return 0;
    }
    /* bounded above by the ids just read: a row committed meanwhile is left for the next look */
    sqlite3_stmt *s = store_stmt_sql(
        st, Q_LIVE_CHANGES,
        "SELECT " STORE_LIST_COLS ", c.tenant_id FROM calls c LEFT JOIN customers cu ON cu.id = c.customer_id "
        "WHERE c.id IN (SELECT call_id FROM call_events WHERE id > ?1 AND id <= ?2 "
        "UNION SELECT call_id FROM transcripts WHERE id > ?3 AND id <= ?4) ORDER BY c.id LIMIT ?5");
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, c->event_id);
    sqlite3_bind_int64(s, 2, now.event_id);
    sqlite3_bind_int64(s, 3, c->transcript_id);
    sqlite3_bind_int64(s, 4, now.transcript_id);
    sqlite3_bind_int(s, 5, max + 1);
    json_t *arr = json_array();
    int rc, n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && n++ < max)
        json_array_append_new(arr, store_list_row(s));
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_decref(arr);
        return store_fail(st, "live changes");
    }
    *c = now;
    if (rc == SQLITE_ROW) { /* over max */
        json_decref(arr);
        return 1;
    }
    *rows = arr;
    return 0;
}

/* A call's outcome as the dashboard counts it; the first rule that holds wins. */
#define OUTCOME                                                                                                        \
    "CASE WHEN c.ended_at IS NULL THEN 'in_progress' "                                                                 \
    "WHEN c.status = 'simulation' THEN 'simulated' "                                                                   \
    "WHEN c.amd_result LIKE 'machine%' OR EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = c.id AND "             \
    "(e.type = 'voicemail.recorded' OR (e.type = 'transfer.attempt' AND (json_extract(e.detail, '$.stage') = "         \
    "'voicemail_record' OR json_extract(e.detail, '$.voicemail') = 1)))) THEN 'voicemail' "                            \
    "WHEN c.transfer_result IN ('completed', 'answered') THEN 'transferred' "                                          \
    "WHEN c.status IN ('failed', 'busy', 'no-answer', 'canceled') OR c.error_code IS NOT NULL "                        \
    "OR c.transfer_target IS NOT NULL THEN 'failed' "                                                                  \
    "ELSE 'ai' END"

int store_call_stats(store_t *st, long tenant_id, const char *since, const char *until, int hours, json_t **out)
{
    /* one-off: a dashboard load, not a hot path */
    static const char sql[] =
        "SELECT (CAST(strftime('%s', c.started_at) AS INTEGER) - CAST(strftime('%s', ?2) AS INTEGER)) / 3600 AS "
        "bucket, " OUTCOME " AS outcome, COUNT(*) FROM calls c WHERE c.tenant_id = ?1 "
        "AND c.started_at >= strftime('%Y-%m-%dT%H:%M:%fZ', ?2) AND c.started_at < strftime('%Y-%m-%dT%H:%M:%fZ', ?3) "
        "GROUP BY bucket, outcome";
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
        return store_fail(st, "call stats");
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, since, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, until, -1, SQLITE_STATIC);
    static const char *const names[] = {"in_progress", "ai", "transferred", "voicemail", "failed", "simulated"};
    long counts[6] = {0}, total = 0;
    long per_hour[24 * 7] = {0};
    if (hours < 1 || hours > (int)(sizeof(per_hour) / sizeof(per_hour[0]))) {
        sqlite3_finalize(s);
        snprintf(st->errbuf, sizeof(st->errbuf), "call stats: %d hours is out of range", hours);
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        long bucket = (long)sqlite3_column_int64(s, 0), n = (long)sqlite3_column_int64(s, 2);
        const char *o = (const char *)sqlite3_column_text(s, 1);
        if (bucket >= 0 && bucket < hours)
            per_hour[bucket] += n;
        for (size_t i = 0; i < 6; i++)
            if (o != NULL && strcmp(o, names[i]) == 0)
                counts[i] += n;
        total += n;
    }
    if (rc != SQLITE_DONE) {
        store_fail(st, "call stats");
        sqlite3_finalize(s);
        return -1;
    }
    sqlite3_finalize(s);
    /* bucket start times, from SQLite's own date arithmetic so they agree with the grouping */
    json_t *buckets = json_array(), *outcomes = json_object();
    sqlite3_stmt *t;
    if (sqlite3_prepare_v2(st->db, "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ?1, '+' || ?2 || ' hours')", -1, &t, NULL) !=
        SQLITE_OK) {
        json_decref(buckets);
        json_decref(outcomes);
        return store_fail(st, "call stats");
    }
    for (int i = 0; i < hours; i++) {
        sqlite3_bind_text(t, 1, since, -1, SQLITE_STATIC);
        sqlite3_bind_int(t, 2, i);
        const char *start = sqlite3_step(t) == SQLITE_ROW ? (const char *)sqlite3_column_text(t, 0) : NULL;
        json_array_append_new(buckets, json_pack("{s:s?, s:I}", "start", start, "calls", (json_int_t)per_hour[i]));
        sqlite3_reset(t);
    }
    sqlite3_finalize(t);
    for (size_t i = 0; i < 6; i++)
        json_object_set_new(outcomes, names[i], json_integer(counts[i]));
    *out = json_pack("{s:I, s:o, s:o}", "total", (json_int_t)total, "buckets", buckets, "outcomes", outcomes);
    return 0;
}
