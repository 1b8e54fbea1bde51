/* Outbound sessions, the calls API and the tenants API. */
#include "db/store_internal.h"

#include <stdio.h>
#include <string.h>

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

static int step_done(store_t *st, dbstmt_t *s, const char *what)
{
    return store_exec_stmt(st, s, what);
}

int store_customer_upsert(store_t *st, long tenant_id, const char *external_id, const char *phone, long *id)
{
    dbstmt_t *s =
        store_stmt_sql(st, Q_CUSTOMER_FIND, "SELECT id FROM customers WHERE tenant_id = ?1 AND external_id = ?2");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, tenant_id);
    db_bind_text(s, 2, external_id);
    int rc = db_step(s);
    if (rc == DB_ROW) {
        *id = db_col_int(s, 0);
        db_reset(s);
        return 0;
    }
    db_reset(s);
    if (rc != DB_DONE)
        return store_fail(st, "customer");
    s = store_stmt_sql(st, Q_CUSTOMER_INSERT,
                       "INSERT INTO customers (tenant_id, external_id, phone) VALUES (?1, ?2, ?3) "
                       /* another instance may have added it meanwhile: then its row is the answer */
                       "ON CONFLICT (tenant_id, external_id) DO UPDATE SET external_id = excluded.external_id "
                       "RETURNING id");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, tenant_id);
    db_bind_text(s, 2, external_id);
    db_bind_text(s, 3, phone);
    return store_exec_id(st, s, "insert customer", id);
}

/* The session holding the idempotency key: 0 found, 1 none, -1 error. */
static int idem_find(store_t *st, const store_outbound_t *in, store_call_t *out, char *saved_response,
                     size_t saved_size)
{
    dbstmt_t *s = store_stmt_sql(st, Q_IDEM_FIND,
                                 "SELECT " STORE_CALL_COLS ", idempotent_response FROM calls "
                                 "WHERE tenant_id = ?1 AND idempotency_key = ?2");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, in->tenant_id);
    db_bind_text(s, 2, in->idempotency_key);
    int rc = db_step(s);
    if (rc == DB_ROW) {
        store_read_call(s, out);
        store_col_text(s, 16, saved_response, saved_size); /* after STORE_CALL_COLS */
        db_reset(s);
        return 0;
    }
    db_reset(s);
    return rc == DB_DONE ? 1 : store_fail(st, "idempotency");
}

int store_outbound_create(store_t *st, const store_outbound_t *in, store_call_t *out, int *existing,
                          char *saved_response, size_t saved_size)
{
    *existing = 0;
    saved_response[0] = '\0';
    const char *platform = in->platform != NULL ? in->platform : "twilio";
    if (store_begin(st) != 0)
        return -1;
    if (in->idempotency_key != NULL) {
        int rc = idem_find(st, in, out, saved_response, saved_size);
        if (rc <= 0) {
            store_rollback(st);
            *existing = rc == 0;
            return rc == 0 ? 0 : -1;
        }
    }
    long customer = 0;
    if (in->customer_external_id != NULL &&
        store_customer_upsert(st, in->tenant_id, in->customer_external_id, in->to, &customer) != 0)
        goto fail;
    dbstmt_t *s = store_stmt_sql(
        st, Q_OUTBOUND_INSERT,
        "INSERT INTO calls (session_id, tenant_id, customer_id, direction, from_number, to_number, agent_type, status, "
        "idempotency_key, platform) VALUES (?1, ?2, ?3, 'outbound', ?4, ?5, ?6, 'initiating', ?7, ?8) "
        "ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id");
    if (s == NULL)
        goto fail;
    db_bind_text(s, 1, in->session_id);
    db_bind_int(s, 2, in->tenant_id);
    if (customer > 0)
        db_bind_int(s, 3, customer);
    db_bind_text(s, 4, in->from);
    db_bind_text(s, 5, in->to);
    db_bind_text(s, 6, in->agent_type);
    db_bind_text(s, 7, in->idempotency_key);
    db_bind_text(s, 8, platform);
    long id;
    if (store_exec_id(st, s, "insert session", &id) != 0)
        goto fail;
    if (id == 0) {
        /* another instance took the key meanwhile: its session is the answer */
        store_rollback(st);
        int rc = idem_find(st, in, out, saved_response, saved_size);
        *existing = rc == 0;
        return rc == 0 ? 0 : -1;
    }
    if (store_event_add(st, id, "session.created", NULL) != 0 || store_commit(st) != 0)
        goto fail;
    memset(out, 0, sizeof(*out));
    out->id = id;
    out->tenant_id = in->tenant_id;
    out->status_seq = -1;
    snprintf(out->session_id, sizeof(out->session_id), "%s", in->session_id);
    snprintf(out->direction, sizeof(out->direction), "outbound");
    snprintf(out->status, sizeof(out->status), "initiating");
    snprintf(out->to_number, sizeof(out->to_number), "%s", in->to ? in->to : "");
    snprintf(out->from_number, sizeof(out->from_number), "%s", in->from ? in->from : "");
    snprintf(out->agent_type, sizeof(out->agent_type), "%s", in->agent_type ? in->agent_type : "");
    snprintf(out->platform, sizeof(out->platform), "%s", platform);
    return 0;
fail:
    store_rollback(st);
    return -1;
}

int store_outbound_placed(store_t *st, long call_id, const char *call_sid, const char *status,
                          const char *response_json)
{
    if (store_defers(st))
        return store_defer_placed(st, call_id, call_sid, status, response_json);
    dbstmt_t *s = store_stmt_sql(
        st, Q_OUTBOUND_PLACED,
        "UPDATE calls SET call_sid = ?2, status = CASE WHEN status = 'initiating' THEN ?3 ELSE status END, "
        "idempotent_response = ?4, ended_at = CASE WHEN ?2 IS NULL THEN COALESCE(ended_at, " NOW
        ") ELSE ended_at END, updated_at = " NOW " WHERE id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    db_bind_text(s, 2, call_sid);
    db_bind_text(s, 3, status);
    db_bind_text(s, 4, response_json);
    return store_update_with_event(st, s, call_id, call_sid ? "session.placed" : "session.simulated", response_json);
}

int store_outbound_failed(store_t *st, long call_id, const char *status, int error_code, const char *message,
                          const char *response_json, int release_key)
{
    if (store_defers(st))
        return store_defer_failed(st, call_id, status, error_code, message, response_json, release_key);
    dbstmt_t *s = store_stmt_sql(st, Q_OUTBOUND_FAILED,
                                 "UPDATE calls SET status = ?2, error_code = ?3, error_message = ?4, "
                                 "idempotent_response = ?5, ended_at = COALESCE(ended_at, " NOW "), "
                                 "idempotency_key = CASE WHEN ?6 = 1 THEN NULL ELSE idempotency_key END, "
                                 "updated_at = " NOW " WHERE id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    db_bind_text(s, 2, status);
    if (error_code != 0)
        db_bind_int(s, 3, error_code);
    db_bind_text(s, 4, message);
    db_bind_text(s, 5, response_json);
    db_bind_int(s, 6, release_key);
    return store_update_with_event(st, s, call_id, "session.failed", response_json);
}

int store_call_amd(store_t *st, long call_id, const char *answered_by, const char *event_json)
{
    if (store_defers(st))
        return store_defer_amd(st, call_id, answered_by, event_json);
    dbstmt_t *s = store_stmt_sql(st, Q_AMD, "UPDATE calls SET amd_result = ?2, updated_at = " NOW " WHERE id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    db_bind_text(s, 2, answered_by);
    return store_update_with_event(st, s, call_id, "call.amd", event_json);
}

int store_calls_list(store_t *st, const store_call_filter_t *f, json_t **rows, long *next_cursor)
{
    /* filters are bound, never pasted; a NULL parameter switches its condition off (typed, so
     * PostgreSQL knows what an unset one is) */
    static const char sql[] =
        "SELECT " STORE_LIST_COLS ", c.id AS cursor FROM calls c LEFT JOIN customers cu ON cu.id = c.customer_id "
        "WHERE c.tenant_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR c.status = ?2) AND (CAST(?3 AS TEXT) IS NULL OR "
        "c.direction = ?3) "
        "AND (CAST(?4 AS TEXT) IS NULL OR c.from_number = ?4) AND (CAST(?5 AS TEXT) IS NULL OR c.to_number = ?5) "
        "AND (CAST(?6 AS TEXT) IS NULL OR c.started_at >= ?6) AND (CAST(?7 AS TEXT) IS NULL OR c.started_at < ?7) "
        "AND (?8 = 0 OR c.id < ?8) AND (CAST(?10 AS TEXT) IS NULL OR c.platform = ?10) ORDER BY c.id DESC LIMIT ?9";
    /* a one-off statement: the plan depends on which filters are present */
    dbstmt_t *s = store_stmt_once(st, sql);
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, f->tenant_id);
    db_bind_text(s, 2, f->status);
    db_bind_text(s, 3, f->direction);
    db_bind_text(s, 4, f->from);
    db_bind_text(s, 5, f->to);
    db_bind_text(s, 6, f->since);
    db_bind_text(s, 7, f->until);
    db_bind_int(s, 8, f->before_id);
    db_bind_int(s, 9, f->limit + 1);
    db_bind_text(s, 10, f->platform);
    json_t *arr = json_array();
    int rc, n = 0;
    long last = 0;
    *next_cursor = 0;
    while ((rc = db_step(s)) == DB_ROW) {
        if (n == f->limit) {
            *next_cursor = last;
            continue;
        }
        last = db_col_int(s, db_col_count(s) - 1);
        json_t *o = store_list_row(s);
        json_object_del(o, "cursor");
        json_array_append_new(arr, o);
        n++;
    }
    db_finalize(s);
    if (rc != DB_DONE) {
        json_decref(arr);
        return store_fail(st, "list calls");
    }
    *rows = arr;
    return 0;
}

static int append_rows(store_t *st, query_id_t q, const char *sql, long call_id, json_t *arr)
{
    dbstmt_t *s = store_stmt_sql(st, q, sql);
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        json_t *o = store_row_json(s);
        json_t *detail = json_object_get(o, "detail");
        if (json_is_string(detail)) { /* events keep JSON text: hand it back as JSON */
            json_t *parsed = json_loads(json_string_value(detail), 0, NULL);
            if (parsed != NULL)
                json_object_set_new(o, "detail", parsed);
        }
        json_array_append_new(arr, o);
    }
    db_reset(s);
    return rc == DB_DONE ? 0 : store_fail(st, "call detail");
}

int store_call_detail(store_t *st, long tenant_id, const char *session_id, json_t **out)
{
    dbstmt_t *s = store_stmt_sql(
        st, Q_CALL_DETAIL,
        "SELECT " STORE_LIST_COLS ", c.id AS row_id, c.recording_sid, c.recording_url, "
        "c.recording_duration_s, c.transfer_reason, c.transfer_attempt, "
        "c.sip_response_code, c.summary, c.recording_path IS NOT NULL AS recording_available FROM calls c "
        "LEFT JOIN customers cu ON cu.id = c.customer_id "
        "WHERE c.tenant_id = ?1 AND c.session_id = ?2");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, tenant_id);
    db_bind_text(s, 2, session_id);
    int rc = db_step(s);
    if (rc != DB_ROW) {
        db_reset(s);
        return rc == DB_DONE ? 1 : store_fail(st, "call detail");
    }
    json_t *o = store_list_row(s);
    db_reset(s);
    long id = (long)json_integer_value(json_object_get(o, "row_id"));
    json_object_del(o, "row_id");
    /* a local WAV (RECORDINGS_DIR) is served by GET /api/calls/{id}/recording */
    json_object_set_new(o, "recording_available",
                        json_boolean(json_integer_value(json_object_get(o, "recording_available"))));
    json_t *rec =
        json_pack("{s:O, s:O, s:O}", "sid", json_object_get(o, "recording_sid"), "url",
                  json_object_get(o, "recording_url"), "duration_s", json_object_get(o, "recording_duration_s"));
    json_object_del(o, "recording_sid");
    json_object_del(o, "recording_url");
    json_object_del(o, "recording_duration_s");
    json_object_set_new(o, "recording", json_is_null(json_object_get(rec, "sid")) ? json_null() : rec);
    if (json_is_null(json_object_get(o, "recording")))
        json_decref(rec);
    json_t *events = json_array(), *transcript = json_array(), *bookings = json_array(), *tickets = json_array();
    json_object_set_new(o, "events", events);
    json_object_set_new(o, "transcript", transcript);
    json_object_set_new(o, "bookings", bookings);
    json_object_set_new(o, "tickets", tickets);
    if (append_rows(st, Q_CALL_EVENTS, "SELECT at, type, detail FROM call_events WHERE call_id = ?1 ORDER BY id", id,
                    events) != 0 ||
        append_rows(st, Q_CALL_TRANSCRIPT, "SELECT at, role, text FROM transcripts WHERE call_id = ?1 ORDER BY id", id,
                    transcript) != 0 ||
        append_rows(st, Q_CALL_BOOKINGS,
                    "SELECT id, name, date, time, notes, status, created_at FROM bookings WHERE call_id = ?1", id,
                    bookings) != 0 ||
        append_rows(st, Q_CALL_TICKETS,
                    "SELECT id, summary, priority, status, created_at FROM tickets WHERE call_id = ?1", id,
                    tickets) != 0) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

#define TENANT_JSON_COLS                                                                                               \
    "id, name, greeting, ai_provider, ai_voice, ai_instructions, inbound_mode, primary_target, secondary_target, "     \
    "voicemail_target, caller_id_policy, max_concurrent_calls, amd_action, amd_message, agent_instructions, "          \
    "platform, created_at, updated_at"

static int add_numbers(store_t *st, json_t *tenant)
{
    dbstmt_t *s =
        store_stmt_sql(st, Q_TENANT_NUMBERS, "SELECT number FROM tenant_numbers WHERE tenant_id = ?1 ORDER BY number");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, (long long)json_integer_value(json_object_get(tenant, "id")));
    json_t *arr = json_array();
    int rc;
    while ((rc = db_step(s)) == DB_ROW)
        json_array_append_new(arr, store_col_json(s, 0));
    db_reset(s);
    json_object_set_new(tenant, "numbers", arr);
    json_t *ai = json_object_get(tenant, "agent_instructions");
    if (json_is_string(ai)) {
        json_t *parsed = json_loads(json_string_value(ai), 0, NULL);
        if (parsed != NULL)
            json_object_set_new(tenant, "agent_instructions", parsed);
    }
    return rc == DB_DONE ? 0 : store_fail(st, "tenant numbers");
}

int store_tenants_list(store_t *st, long only_id, json_t **rows)
{
    dbstmt_t *s = store_stmt_sql(st, Q_TENANTS_LIST,
                                 "SELECT " TENANT_JSON_COLS " FROM tenants WHERE ?1 = 0 OR id = ?1 ORDER BY id");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, only_id);
    json_t *arr = json_array();
    int rc;
    while ((rc = db_step(s)) == DB_ROW)
        json_array_append_new(arr, store_row_json(s));
    db_reset(s);
    if (rc != DB_DONE) {
        json_decref(arr);
        return store_fail(st, "tenants");
    }
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t)
    {
        if (add_numbers(st, t) != 0) {
            json_decref(arr);
            return -1;
        }
    }
    *rows = arr;
    return 0;
}

int store_tenant_detail(store_t *st, long id, json_t **out)
{
    json_t *rows;
    if (store_tenants_list(st, id, &rows) != 0)
        return -1;
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return 1;
    }
    *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return 0;
}

static void bind_tenant(dbstmt_t *s, const store_tenant_input_t *in)
{
    db_bind_text(s, 2, in->name);
    db_bind_text(s, 3, in->greeting);
    db_bind_text(s, 4, in->ai_provider);
    db_bind_text(s, 5, in->ai_voice);
    db_bind_text(s, 6, in->ai_instructions);
    db_bind_text(s, 7, in->inbound_mode ? in->inbound_mode : "ai");
    db_bind_text(s, 8, in->primary_target);
    db_bind_text(s, 9, in->secondary_target);
    db_bind_text(s, 10, in->voicemail_target);
    db_bind_text(s, 11, in->caller_id_policy);
    if (in->max_concurrent_calls >= 0)
        db_bind_int(s, 12, in->max_concurrent_calls);
    else
        db_bind_null(s, 12);
    db_bind_text(s, 13, in->amd_action);
    db_bind_text(s, 14, in->amd_message);
    db_bind_text(s, 15, in->agent_instructions);
    db_bind_text(s, 16, in->platform != NULL ? in->platform : "");
}

int store_tenant_save(store_t *st, long id, const store_tenant_input_t *in, long *out_id, char *conflict_number,
                      size_t conflict_size)
{
    if (store_begin(st) != 0)
        return -1;
    dbstmt_t *s;
    if (id == 0) {
        s = store_stmt_sql(st, Q_TENANT_INSERT,
                           "INSERT INTO tenants (name, greeting, ai_provider, ai_voice, ai_instructions, inbound_mode, "
                           "primary_target, secondary_target, voicemail_target, caller_id_policy, "
                           "max_concurrent_calls, amd_action, amd_message, agent_instructions, platform) VALUES "
                           "(?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) RETURNING id");
    } else {
        s = store_stmt_sql(st, Q_TENANT_UPDATE,
                           "UPDATE tenants SET name = ?2, greeting = ?3, ai_provider = ?4, ai_voice = ?5, "
                           "ai_instructions = ?6, inbound_mode = ?7, primary_target = ?8, secondary_target = ?9, "
                           "voicemail_target = ?10, caller_id_policy = ?11, max_concurrent_calls = ?12, "
                           "amd_action = ?13, amd_message = ?14, agent_instructions = ?15, platform = ?16, "
                           "updated_at = " NOW " WHERE id = ?1 RETURNING id");
    }
    if (s == NULL)
        goto fail;
    db_bind_int(s, 1, id);
    bind_tenant(s, in);
    long tid;
    if (store_exec_id(st, s, "save tenant", &tid) != 0)
        goto fail;
    if (tid == 0) { /* no such tenant */
        store_rollback(st);
        return 1;
    }
    if (in->numbers != NULL) {
        dbstmt_t *owner = store_stmt_sql(st, Q_NUMBER_OWNER, "SELECT tenant_id FROM tenant_numbers WHERE number = ?1");
        dbstmt_t *del = store_stmt_sql(st, Q_NUMBERS_DELETE, "DELETE FROM tenant_numbers WHERE tenant_id = ?1");
        dbstmt_t *ins =
            store_stmt_sql(st, Q_NUMBER_INSERT, "INSERT INTO tenant_numbers (number, tenant_id) VALUES (?1, ?2)");
        if (owner == NULL || del == NULL || ins == NULL)
            goto fail;
        for (size_t i = 0; i < in->nnumbers; i++) {
            db_reset(owner);
            db_bind_text(owner, 1, in->numbers[i]);
            int rc = db_step(owner);
            long who = rc == DB_ROW ? db_col_int(owner, 0) : 0;
            db_reset(owner);
            if (rc != DB_ROW && rc != DB_DONE) {
                store_fail(st, "number owner");
                goto fail;
            }
            if (who != 0 && who != tid) {
                snprintf(conflict_number, conflict_size, "%s", in->numbers[i]);
                store_rollback(st);
                return 2;
            }
        }
        db_bind_int(del, 1, tid);
        if (step_done(st, del, "numbers") != 0)
            goto fail;
        for (size_t i = 0; i < in->nnumbers; i++) {
            db_reset(ins);
            db_bind_text(ins, 1, in->numbers[i]);
            db_bind_int(ins, 2, tid);
            if (step_done(st, ins, "number") != 0)
                goto fail;
        }
    }
    if (store_commit(st) != 0)
        goto fail;
    *out_id = tid;
    return 0;
fail:
    store_rollback(st);
    return -1;
}
