/* Tenants and calls: the inbound call record, its timeline, transfers and the status machine. */
#include "db/store_internal.h"

#include <stdio.h>
#include <string.h>

#define TENANT_COLS                                                                                                    \
    "id, name, greeting, ai_provider, inbound_mode, primary_target, secondary_target, voicemail_target, "              \
    "caller_id_policy, COALESCE(max_concurrent_calls, -1), amd_action, amd_message, agent_instructions, ai_voice, "    \
    "ai_instructions, platform"

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

static void read_tenant(dbstmt_t *s, store_tenant_t *t)
{
    memset(t, 0, sizeof(*t));
    t->id = db_col_int(s, 0);
    store_col_text(s, 1, t->name, sizeof(t->name));
    store_col_text(s, 2, t->greeting, sizeof(t->greeting));
    store_col_text(s, 3, t->ai_provider, sizeof(t->ai_provider));
    store_col_text(s, 4, t->inbound_mode, sizeof(t->inbound_mode));
    store_col_text(s, 5, t->primary_target, sizeof(t->primary_target));
    store_col_text(s, 6, t->secondary_target, sizeof(t->secondary_target));
    store_col_text(s, 7, t->voicemail_target, sizeof(t->voicemail_target));
    store_col_text(s, 8, t->caller_id_policy, sizeof(t->caller_id_policy));
    t->max_concurrent_calls = db_col_int(s, 9);
    store_col_text(s, 10, t->amd_action, sizeof(t->amd_action));
    store_col_text(s, 11, t->amd_message, sizeof(t->amd_message));
    store_col_text(s, 12, t->agent_instructions, sizeof(t->agent_instructions));
    store_col_text(s, 13, t->ai_voice, sizeof(t->ai_voice));
    store_col_text(s, 14, t->ai_instructions, sizeof(t->ai_instructions));
    store_col_text(s, 15, t->platform, sizeof(t->platform));
}

void store_read_call(dbstmt_t *s, store_call_t *c)
{
    memset(c, 0, sizeof(*c));
    c->id = db_col_int(s, 0);
    store_col_text(s, 1, c->session_id, sizeof(c->session_id));
    c->tenant_id = db_col_int(s, 2);
    store_col_text(s, 3, c->direction, sizeof(c->direction));
    store_col_text(s, 4, c->call_sid, sizeof(c->call_sid));
    store_col_text(s, 5, c->from_number, sizeof(c->from_number));
    store_col_text(s, 6, c->to_number, sizeof(c->to_number));
    store_col_text(s, 7, c->status, sizeof(c->status));
    c->status_seq = db_col_int(s, 8);
    c->ended = (int)db_col_int(s, 9);
    store_col_text(s, 10, c->next_action, sizeof(c->next_action));
    c->transfer_attempt = (int)db_col_int(s, 11);
    store_col_text(s, 12, c->transfer_target, sizeof(c->transfer_target));
    store_col_text(s, 13, c->transfer_reason, sizeof(c->transfer_reason));
    store_col_text(s, 14, c->agent_type, sizeof(c->agent_type));
    store_col_text(s, 15, c->platform, sizeof(c->platform));
}

/* Steps a one-row query: 0 row read, 1 no row, -1 error. */
static int one_row(store_t *st, dbstmt_t *s, const char *what)
{
    int rc = db_step(s);
    if (rc == DB_ROW)
        return 0;
    db_reset(s);
    return rc == DB_DONE ? 1 : store_fail(st, what);
}

int store_tenant_get(store_t *st, long id, store_tenant_t *out)
{
    dbstmt_t *s = store_stmt_sql(st, Q_TENANT_GET, "SELECT " TENANT_COLS " FROM tenants WHERE id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, id);
    int rc = one_row(st, s, "tenant");
    if (rc == 0) {
        read_tenant(s, out);
        db_reset(s);
    }
    return rc;
}

int store_tenant_for_number(store_t *st, const char *number, long fallback_id, store_tenant_t *out)
{
    /* one statement for both: the number's tenant if it has one, else the fallback */
    dbstmt_t *s = store_stmt_sql(st, Q_TENANT_BY_NUMBER,
                                 "SELECT " TENANT_COLS " FROM tenants WHERE id = COALESCE("
                                 "(SELECT tenant_id FROM tenant_numbers WHERE number = ?1), ?2)");
    if (s == NULL)
        return -1;
    db_bind_text(s, 1, number);
    db_bind_int(s, 2, fallback_id);
    int rc = one_row(st, s, "tenant by number");
    if (rc == 0) {
        read_tenant(s, out);
        db_reset(s);
    }
    return rc;
}

static int get_call(store_t *st, query_id_t q, const char *sql, const char *key, store_call_t *out)
{
    dbstmt_t *s = store_stmt_sql(st, q, sql);
    if (s == NULL)
        return -1;
    db_bind_text(s, 1, key);
    int rc = one_row(st, s, "call");
    if (rc == 0) {
        store_read_call(s, out);
        db_reset(s);
    }
    return rc;
}

int store_call_by_session(store_t *st, const char *session_id, store_call_t *out)
{
    return get_call(st, Q_CALL_BY_SESSION, "SELECT " STORE_CALL_COLS " FROM calls WHERE session_id = ?1", session_id,
                    out);
}

int store_call_by_sid(store_t *st, const char *call_sid, store_call_t *out)
{
    return get_call(st, Q_CALL_BY_SID, "SELECT " STORE_CALL_COLS " FROM calls WHERE call_sid = ?1", call_sid, out);
}

int store_event_add(store_t *st, long call_id, const char *type, const char *detail_json)
{
    dbstmt_t *s =
        store_stmt_sql(st, Q_EVENT_INSERT, "INSERT INTO call_events (call_id, type, detail) VALUES (?1, ?2, ?3)");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    db_bind_text(s, 2, type);
    if (detail_json != NULL)
        db_bind_text(s, 3, detail_json);
    return store_exec_stmt(st, s, "call event");
}

int store_call_event(store_t *st, long call_id, const char *type, const char *detail_json)
{
    if (store_defers(st))
        return store_defer_event(st, call_id, type, detail_json);
    if (store_begin(st) != 0)
        return -1;
    if (store_event_add(st, call_id, type, detail_json) != 0 || store_commit(st) != 0) {
        store_rollback(st);
        return -1;
    }
    return 0;
}

int store_call_start_inbound(store_t *st, const store_inbound_t *in, store_call_t *out, int *created, int *rejected)
{
    *created = *rejected = 0;
    const char *platform = in->platform != NULL ? in->platform : "twilio";
    /* PostgreSQL writes the call and its events in one statement: without a limit that is the
     * whole unit (one round trip, one commit); SQLite joins its worker's group commit */
    int pg = store_is_pg(st), unit = !pg || in->limit > 0;
    if (unit && store_begin(st) != 0)
        return -1;
    /* several instances share the database: the tenant's row lock makes the count below see
     * every call another instance admitted (PostgreSQL; SQLite's writer lock already does) */
    if (in->limit > 0 && store_lock_tenant(st, in->tenant_id) != 0)
        goto fail;
        /* one statement counts the tenant's live calls and writes the call, admitted or busy; the
         * count only with a limit (it reads every live call of the tenant) */
#define INBOUND_INSERT(OVER)                                                                                           \
    "INSERT INTO calls (session_id, tenant_id, direction, call_sid, from_number, to_number, status, ended_at, "        \
    "platform) SELECT ?1, ?2, 'inbound', ?3, ?4, ?5, CASE WHEN l.over THEN 'busy' ELSE ?6 END, "                       \
    "CASE WHEN l.over THEN " NOW " END, ?8 FROM (SELECT " OVER " AS over) l WHERE true "                               \
    "ON CONFLICT (call_sid) DO NOTHING RETURNING id, ended_at IS NOT NULL AS over"
#define COUNTED   "(SELECT COUNT(*) FROM calls WHERE tenant_id = ?2 AND ended_at IS NULL) >= ?7"
#define UNCOUNTED "1 = 0"
#define WITH_EVENTS(INSERT)                                                                                            \
    "WITH c AS (" INSERT "), e AS (INSERT INTO call_events (call_id, type, detail) "                                   \
    "SELECT c.id, t.type, t.detail FROM c, (VALUES (1, 'call.started', ?9), "                                          \
    "(2, 'call.rejected', '{\"reason\":\"concurrency_limit\"}')) t (k, type, detail) "                                 \
    "WHERE t.k = 1 OR c.over ORDER BY t.k) SELECT id, over FROM c"
    int limited = in->limit > 0;
    dbstmt_t *s = pg ? (limited ? store_stmt_sql(st, Q_CALL_INSERT_EVENTS_LIMIT, WITH_EVENTS(INBOUND_INSERT(COUNTED)))
                                : store_stmt_sql(st, Q_CALL_INSERT_EVENTS, WITH_EVENTS(INBOUND_INSERT(UNCOUNTED))))
                     : (limited ? store_stmt_sql(st, Q_CALL_INSERT_LIMIT, INBOUND_INSERT(COUNTED))
                                : store_stmt_sql(st, Q_CALL_INSERT, INBOUND_INSERT(UNCOUNTED)));
#undef INBOUND_INSERT
#undef COUNTED
#undef UNCOUNTED
#undef WITH_EVENTS
    if (s == NULL)
        goto fail;
    db_bind_text(s, 1, in->session_id);
    db_bind_int(s, 2, in->tenant_id);
    db_bind_text(s, 3, in->call_sid);
    db_bind_text(s, 4, in->from_number);
    db_bind_text(s, 5, in->to_number);
    db_bind_text(s, 6, in->status ? in->status : "ringing");
    db_bind_int(s, 7, in->limit);
    db_bind_text(s, 8, platform);
    if (pg)
        db_bind_text(s, 9, in->event_json);
    int rc = db_step(s);
    if (rc == DB_DONE) {
        /* a retried webhook: its CallSid is known; answer with the first row */
        db_reset(s);
        store_rollback(st);
        return store_call_by_sid(st, in->call_sid, out);
    }
    if (rc != DB_ROW) {
        store_fail(st, "insert call");
        db_reset(s);
        goto fail;
    }
    long id = db_col_int(s, 0);
    int over = db_col_int(s, 1) != 0;
    db_reset(s);
    if (!pg && (store_event_add(st, id, "call.started", in->event_json) != 0 ||
                (over && store_event_add(st, id, "call.rejected", "{\"reason\":\"concurrency_limit\"}") != 0)))
        goto fail;
    if (unit && store_commit(st) != 0)
        goto fail;
    /* the row as written: no need to read it back */
    memset(out, 0, sizeof(*out));
    out->id = id;
    out->tenant_id = in->tenant_id;
    out->status_seq = -1;
    out->ended = over;
    snprintf(out->session_id, sizeof(out->session_id), "%s", in->session_id);
    snprintf(out->direction, sizeof(out->direction), "inbound");
    snprintf(out->call_sid, sizeof(out->call_sid), "%s", in->call_sid);
    snprintf(out->from_number, sizeof(out->from_number), "%s", in->from_number ? in->from_number : "");
    snprintf(out->to_number, sizeof(out->to_number), "%s", in->to_number ? in->to_number : "");
    snprintf(out->status, sizeof(out->status), "%s", over ? "busy" : (in->status ? in->status : "ringing"));
    snprintf(out->platform, sizeof(out->platform), "%s", platform);
    *created = 1;
    *rejected = over;
    return 0;
fail:
    store_rollback(st);
    return -1;
}

int store_update_with_event(store_t *st, dbstmt_t *s, long call_id, const char *type, const char *event_json)
{
    if (store_begin(st) != 0) {
        db_reset(s);
        return -1;
    }
    if (store_exec_stmt(st, s, type) != 0 || store_event_add(st, call_id, type, event_json) != 0 ||
        store_commit(st) != 0) {
        store_rollback(st);
        return -1;
    }
    return 0;
}

int store_call_transfer_begin(store_t *st, long call_id, int attempt, const char *target, const char *event_json)
{
    if (store_defers(st))
        return store_defer_transfer(st, 1, call_id, attempt, target, event_json);
    dbstmt_t *s = store_stmt_sql(st, Q_TRANSFER_BEGIN,
                                 "UPDATE calls SET transfer_attempt = ?2, transfer_target = ?3, "
                                 "transfer_result = NULL, updated_at = " NOW " WHERE id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    db_bind_int(s, 2, attempt);
    db_bind_text(s, 3, target);
    return store_update_with_event(st, s, call_id, "transfer.attempt", event_json);
}

int store_call_transfer_end(store_t *st, long call_id, int attempt, const char *outcome, const char *event_json)
{
    if (store_defers(st))
        return store_defer_transfer(st, 0, call_id, attempt, outcome, event_json);
    /* only the attempt in progress sets the result: a late duplicate for an older attempt does not */
    dbstmt_t *s = store_stmt_sql(st, Q_TRANSFER_END,
                                 "UPDATE calls SET transfer_result = ?3, updated_at = " NOW
                                 " WHERE id = ?1 AND transfer_attempt = ?2");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    db_bind_int(s, 2, attempt);
    db_bind_text(s, 3, outcome);
    return store_update_with_event(st, s, call_id, "transfer.outcome", event_json);
}

int store_call_set_next_action(store_t *st, long call_id, const char *action, const char *reason)
{
    if (store_defers(st))
        return store_defer_next_action(st, call_id, action, reason);
    dbstmt_t *s = store_stmt_sql(st, Q_NEXT_ACTION,
                                 "UPDATE calls SET next_action = ?2, transfer_reason = COALESCE(?3, "
                                 "transfer_reason), updated_at = " NOW " WHERE id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    db_bind_text(s, 2, action);
    if (reason != NULL)
        db_bind_text(s, 3, reason);
    if (store_begin(st) != 0) {
        db_reset(s);
        return -1;
    }
    if (store_exec_stmt(st, s, "next action") != 0 || store_commit(st) != 0) {
        store_rollback(st);
        return -1;
    }
    return 0;
}

int store_status_rank(const char *status)
{
    static const struct {
        const char *name;
        int rank;
    } ranks[] = {{"queued", 0},    {"initiated", 1}, {"ringing", 2}, {"in-progress", 3}, {"answered", 3},
                 {"completed", 4}, {"busy", 4},      {"failed", 4},  {"no-answer", 4},   {"canceled", 4}};
    for (size_t i = 0; i < sizeof(ranks) / sizeof(ranks[0]); i++)
        if (strcmp(status, ranks[i].name) == 0)
            return ranks[i].rank;
    return -1;
}

int store_call_status(store_t *st, const store_status_t *in, int *applied)
{
    if (store_defers(st)) { /* the outcome is not known yet: callers off a fiber only log failures */
        *applied = 0;
        return store_defer_status(st, in);
    }
    *applied = 0;
    int new_rank = store_status_rank(in->status);
    if (store_begin(st) != 0)
        return -1;
    store_call_t c;
    int rc = in->session_id != NULL ? store_call_by_session(st, in->session_id, &c)
                                    : store_call_by_sid(st, in->call_sid, &c);
    if (rc != 0) {
        store_rollback(st);
        return rc;
    }
    if (store_is_pg(st)) {
        /* two instances' callbacks for one call at once: the row is locked and read again, so
         * the second decides on what the first committed (SQLite's writers are serialized) */
        dbstmt_t *l =
            store_stmt_sql(st, Q_STATUS_LOCK, "SELECT status, status_seq FROM calls WHERE id = ?1 FOR UPDATE");
        if (l == NULL)
            goto fail;
        db_bind_int(l, 1, c.id);
        int lrc = db_step(l);
        if (lrc == DB_ROW) {
            store_col_text(l, 0, c.status, sizeof(c.status));
            c.status_seq = db_col_int(l, 1);
        }
        db_reset(l);
        if (lrc != DB_ROW)
            goto fail;
    }
    /* an outbound call's first callbacks can beat the REST answer that names its sid */
    if (c.call_sid[0] == '\0' && in->call_sid != NULL) {
        dbstmt_t *s = store_stmt_sql(st, Q_SET_SID, "UPDATE calls SET call_sid = ?2 WHERE id = ?1");
        if (s == NULL)
            goto fail;
        db_bind_int(s, 1, c.id);
        db_bind_text(s, 2, in->call_sid);
        if (store_exec_stmt(st, s, "set sid") != 0)
            goto fail;
    }
    int old_rank = store_status_rank(c.status); /* "initiating", "simulation": -1, any status moves on */
    /* a terminal state is final; otherwise a newer callback (by sequence number when both have
     * one) may move the state forward, never back */
    int newer = in->seq < 0 || c.status_seq < 0 || in->seq > c.status_seq;
    int apply = new_rank >= 0 && old_rank < 4 && newer && new_rank >= old_rank;
    if (apply) {
        dbstmt_t *s = store_stmt_sql(
            st, Q_STATUS_UPDATE,
            "UPDATE calls SET status = ?2, status_seq = CASE WHEN status_seq > ?3 THEN status_seq ELSE ?3 END, "
            "answered_at = CASE WHEN ?4 = 3 THEN COALESCE(answered_at, " NOW ") ELSE answered_at END, "
            "ended_at = CASE WHEN ?4 = 4 THEN COALESCE(ended_at, " NOW ") ELSE ended_at END, "
            "duration_s = COALESCE(?5, duration_s), sip_response_code = COALESCE(?6, sip_response_code), "
            "updated_at = " NOW " WHERE id = ?1");
        if (s == NULL)
            goto fail;
        db_bind_int(s, 1, c.id);
        db_bind_text(s, 2, in->status);
        db_bind_int(s, 3, in->seq);
        db_bind_int(s, 4, new_rank);
        if (in->duration_s >= 0)
            db_bind_int(s, 5, in->duration_s);
        if (in->sip_code >= 0)
            db_bind_int(s, 6, in->sip_code);
        if (store_exec_stmt(st, s, "status") != 0)
            goto fail;
    }
    if (store_event_add(st, c.id, apply ? "call.status" : "call.status_ignored", in->event_json) != 0 ||
        store_commit(st) != 0)
        goto fail;
    *applied = apply;
    if (apply && new_rank == 4 && st->on_call_end != NULL)
        st->on_call_end(st->on_call_end_arg, &c, in->status);
    return 0;
fail:
    store_rollback(st);
    return -1;
}

void store_on_call_end(store_t *st, store_call_end_fn fn, void *arg)
{
    st->on_call_end = fn;
    st->on_call_end_arg = arg;
}

int store_call_recording(store_t *st, const store_recording_t *r)
{
    store_call_t c;
    int rc = r->session_id != NULL && r->session_id[0] ? store_call_by_session(st, r->session_id, &c)
                                                       : store_call_by_sid(st, r->call_sid, &c);
    if (rc != 0)
        return rc;
    dbstmt_t *s = store_stmt_sql(st, Q_RECORDING_UPDATE,
                                 "UPDATE calls SET recording_sid = COALESCE(?2, recording_sid), recording_url = "
                                 "COALESCE(?3, recording_url), recording_duration_s = COALESCE(?4, "
                                 "recording_duration_s), updated_at = " NOW " WHERE id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, c.id);
    db_bind_text(s, 2, r->recording_sid);
    db_bind_text(s, 3, r->url);
    if (r->duration_s >= 0)
        db_bind_int(s, 4, r->duration_s);
    return store_update_with_event(st, s, c.id, "call.recording", r->event_json);
}
