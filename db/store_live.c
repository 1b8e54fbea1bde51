/* The dashboard's reads: what changed since a cursor, and the picture of a day. */
#include "db/store_internal.h"

#include <stdio.h>
#include <string.h>

int store_live_cursor(store_t *st, store_live_cursor_t *c)
{
    if (store_is_pg(st)) { /* notifications, not ids (see migration 0007) */
        c->event_id = c->transcript_id = 0;
        return store_pg_live_listen(st) < 0 ? -1 : 0;
    }
    dbstmt_t *s = store_stmt_sql(st, Q_LIVE_CURSOR,
                                 "SELECT (SELECT COALESCE(MAX(id), 0) FROM call_events), "
                                 "(SELECT COALESCE(MAX(id), 0) FROM transcripts)");
    if (s == NULL)
        return -1;
    int rc = db_step(s);
    if (rc == DB_ROW) {
        c->event_id = db_col_int(s, 0);
        c->transcript_id = db_col_int(s, 1);
    }
    db_reset(s);
    return rc == DB_ROW ? 0 : store_fail(st, "live cursor");
}

/* PostgreSQL: the calls named by the notifications since the last look. */
static int pg_live_changes(store_t *st, int max, json_t **rows)
{
    char ids[4096];
    int rc = store_pg_live_take(st, max, ids, sizeof(ids));
    if (rc != 0)
        return rc;
    json_t *arr = json_array();
    if (ids[0] != '\0') {
        char list[sizeof(ids) + 2];
        snprintf(list, sizeof(list), "{%s}", ids);
        dbstmt_t *s = store_stmt_sql(st, Q_LIVE_CALLS,
                                     "SELECT " STORE_LIST_COLS ", c.tenant_id FROM calls c LEFT JOIN customers cu "
                                     "ON cu.id = c.customer_id WHERE c.id = ANY(CAST(?1 AS BIGINT[])) ORDER BY c.id");
        if (s == NULL) {
            json_decref(arr);
            return -1;
        }
        db_bind_text(s, 1, list);
        while ((rc = db_step(s)) == DB_ROW)
            json_array_append_new(arr, store_list_row(s));
        db_reset(s);
        if (rc != DB_DONE) {
            json_decref(arr);
            return store_fail(st, "live changes");
        }
    }
    *rows = arr;
    return 0;
}

int store_live_changes(store_t *st, store_live_cursor_t *c, int max, json_t **rows)
{
    *rows = NULL;
    if (store_is_pg(st))
        return pg_live_changes(st, max, rows);
    store_live_cursor_t now;
    if (store_live_cursor(st, &now) != 0)
        return -1;
    if (now.event_id == c->event_id && now.transcript_id == c->transcript_id) {
        *rows = json_array();
        return 0;
    }
    /* bounded above by the ids just read: a row committed meanwhile is left for the next look */
    dbstmt_t *s = store_stmt_sql(
        st, Q_LIVE_CHANGES,
        "SELECT " STORE_LIST_COLS ", c.tenant_id FROM calls c LEFT JOIN customers cu ON cu.id = c.customer_id "
        "WHERE c.id IN (SELECT call_id FROM call_events WHERE id > ?1 AND id <= ?2 "
        "UNION SELECT call_id FROM transcripts WHERE id > ?3 AND id <= ?4) ORDER BY c.id LIMIT ?5");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, c->event_id);
    db_bind_int(s, 2, now.event_id);
    db_bind_int(s, 3, c->transcript_id);
    db_bind_int(s, 4, now.transcript_id);
    db_bind_int(s, 5, max + 1);
    json_t *arr = json_array();
    int rc, n = 0;
    while ((rc = db_step(s)) == DB_ROW && n++ < max)
        json_array_append_new(arr, store_list_row(s));
    db_reset(s);
    if (rc != DB_ROW && rc != DB_DONE) {
        json_decref(arr);
        return store_fail(st, "live changes");
    }
    *c = now;
    if (rc == DB_ROW) { /* over max */
        json_decref(arr);
        return 1;
    }
    *rows = arr;
    return 0;
}

/* A call's outcome as the dashboard counts it; the first rule that holds wins. VOICEMAIL_EVENT is
 * the engine's reading of an event's JSON detail. */
#define OUTCOME(VOICEMAIL_EVENT)                                                                                       \
    "CASE WHEN c.ended_at IS NULL THEN 'in_progress' "                                                                 \
    "WHEN c.status = 'simulation' THEN 'simulated' "                                                                   \
    "WHEN c.amd_result LIKE 'machine%' OR EXISTS (SELECT 1 FROM call_events e WHERE e.call_id = c.id AND "             \
    "(e.type = 'voicemail.recorded' OR (e.type = 'transfer.attempt' AND (" VOICEMAIL_EVENT ")))) THEN 'voicemail' "    \
    "WHEN c.transfer_result IN ('completed', 'answered') THEN 'transferred' "                                          \
    "WHEN c.status IN ('failed', 'busy', 'no-answer', 'canceled') OR c.error_code IS NOT NULL "                        \
    "OR c.transfer_target IS NOT NULL THEN 'failed' "                                                                  \
    "ELSE 'ai' END"

/* The stored instants' text form (UTC, milliseconds) of an ISO-8601 parameter. */
#define PG_ISO(x) "to_char((" x ")::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

int store_call_stats(store_t *st, long tenant_id, const char *since, const char *until, int hours, json_t **out)
{
    /* one-off: a dashboard load, not a hot path */
    static const char sql_lite[] =
        "SELECT (CAST(strftime('%s', c.started_at) AS INTEGER) - CAST(strftime('%s', ?2) AS INTEGER)) / 3600 AS "
        "bucket, " OUTCOME(
            "json_extract(e.detail, '$.stage') = 'voicemail_record' OR "
            "json_extract(e.detail, '$.voicemail') = 1") " AS outcome, COUNT(*) FROM calls c "
                                                         "WHERE c.tenant_id = ?1 "
                                                         "AND c.started_at >= strftime('%Y-%m-%dT%H:%M:%fZ', ?2) AND "
                                                         "c.started_at < strftime('%Y-%m-%dT%H:%M:%fZ', ?3) "
                                                         "GROUP BY bucket, outcome";
    static const char sql_pg[] =
        "SELECT floor((extract(epoch FROM c.started_at::timestamptz) - extract(epoch FROM ?2::timestamptz)) / "
        "3600) "
        "AS bucket, " OUTCOME(
            "e.detail::jsonb ->> 'stage' = 'voicemail_record' OR "
            "e.detail::jsonb ->> 'voicemail' IN ('true', '1')") " AS outcome, COUNT(*) FROM calls c "
                                                                "WHERE c.tenant_id = ?1 AND c.started_at "
                                                                ">= " PG_ISO("?2") " AND c.started_at < " PG_ISO(
                                                                    "?3") " "
                                                                          "GROUP BY bucket, outcome";
    dbstmt_t *s = store_stmt_once(st, store_is_pg(st) ? sql_pg : sql_lite);
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, tenant_id);
    db_bind_text(s, 2, since);
    db_bind_text(s, 3, until);
    static const char *const names[] = {"in_progress", "ai", "transferred", "voicemail", "failed", "simulated"};
    long counts[6] = {0}, total = 0;
    long per_hour[24 * 7] = {0};
    if (hours < 1 || hours > (int)(sizeof(per_hour) / sizeof(per_hour[0]))) {
        db_finalize(s);
        snprintf(st->errbuf, sizeof(st->errbuf), "call stats: %d hours is out of range", hours);
        return -1;
    }
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        long bucket = db_col_int(s, 0), n = db_col_int(s, 2);
        const char *o = db_col_text(s, 1);
        if (bucket >= 0 && bucket < hours)
            per_hour[bucket] += n;
        for (size_t i = 0; i < 6; i++)
            if (o != NULL && strcmp(o, names[i]) == 0)
                counts[i] += n;
        total += n;
    }
    if (rc != DB_DONE) {
        store_fail(st, "call stats");
        db_finalize(s);
        return -1;
    }
    db_finalize(s);
    /* bucket start times, from SQLite's own date arithmetic so they agree with the grouping */
    json_t *buckets = json_array(), *outcomes = json_object();
    dbstmt_t *t =
        store_stmt_once(st, store_is_pg(st) ? "SELECT " PG_ISO("?1::timestamptz + make_interval(hours => ?2::int)")
                                            : "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ?1, '+' || ?2 || ' hours')");
    if (t == NULL) {
        json_decref(buckets);
        json_decref(outcomes);
        return -1;
    }
    for (int i = 0; i < hours; i++) {
        db_bind_text(t, 1, since);
        db_bind_int(t, 2, i);
        const char *start = db_step(t) == DB_ROW ? db_col_text(t, 0) : NULL;
        json_array_append_new(buckets, json_pack("{s:s?, s:I}", "start", start, "calls", (json_int_t)per_hour[i]));
        db_reset(t);
    }
    db_finalize(t);
    for (size_t i = 0; i < 6; i++)
        json_object_set_new(outcomes, names[i], json_integer(counts[i]));
    *out = json_pack("{s:I, s:o, s:o}", "total", (json_int_t)total, "buckets", buckets, "outcomes", outcomes);
    return 0;
}
