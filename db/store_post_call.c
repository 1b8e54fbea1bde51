/* ElevenLabs post-call conversations: the session lookup and every write, in one unit. */
#include "db/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Unix seconds as the stored instants' text (UTC, milliseconds), compared as text. */
static void iso_of(long t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%S.000Z", &tm) == 0)
        snprintf(buf, n, "%s", t < 0 ? "0000" : "9999");
}

/* 0 found (out filled), 1 none, -1 error. */
static int call_row(store_t *st, dbstmt_t *s, const char *what, store_call_t *out)
{
    int rc = db_step(s);
    if (rc == DB_ROW) {
        store_read_call(s, out);
        db_reset(s);
        return 0;
    }
    db_reset(s);
    return rc == DB_DONE ? 1 : store_fail(st, what);
}

/* A single integer (or 0 when no row); 0 ok, -1 error. */
static int one_long(store_t *st, dbstmt_t *s, const char *what, long *v, int *found)
{
    int rc = db_step(s);
    *found = rc == DB_ROW;
    *v = *found ? db_col_int(s, 0) : 0;
    db_reset(s);
    return rc == DB_ROW || rc == DB_DONE ? 0 : store_fail(st, what);
}

static int find_session(store_t *st, const store_post_call_t *in, store_call_t *call, store_post_call_result_t *out)
{
    int rc;
    if (in->call_sid != NULL && in->call_sid[0] != '\0') {
        rc = store_call_by_sid(st, in->call_sid, call);
        if (rc <= 0) {
            snprintf(out->matched_by, sizeof(out->matched_by), "call_sid");
            return rc;
        }
    }
    dbstmt_t *s = store_stmt_sql(st, Q_PC_BY_CONVERSATION,
                                 "SELECT " STORE_CALL_COLS " FROM calls WHERE conversation_id = ?1 "
                                 "ORDER BY id DESC LIMIT 1");
    if (s == NULL)
        return -1;
    db_bind_text(s, 1, in->conversation_id);
    rc = call_row(st, s, "call by conversation", call);
    if (rc <= 0) {
        snprintf(out->matched_by, sizeof(out->matched_by), "conversation_id");
        return rc;
    }
    if (in->external_number == NULL || in->external_number[0] == '\0')
        return 1;
    long tenant = in->default_tenant_id;
    if (in->agent_number != NULL && in->agent_number[0] != '\0') {
        s = store_stmt_sql(st, Q_PC_TENANT_OF_NUMBER, "SELECT tenant_id FROM tenant_numbers WHERE number = ?1");
        if (s == NULL)
            return -1;
        db_bind_text(s, 1, in->agent_number);
        long t;
        int found;
        if (one_long(st, s, "tenant of number", &t, &found) != 0)
            return -1;
        if (found)
            tenant = t;
    }
    s = store_stmt_sql(st, Q_PC_BY_PHONE,
                       "SELECT " STORE_CALL_COLS " FROM calls WHERE tenant_id = ?1 "
                       "AND (from_number = ?2 OR to_number = ?2) "
                       "AND started_at >= ?3 AND started_at <= ?4 "
                       "ORDER BY started_at DESC, id DESC LIMIT 1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, tenant);
    db_bind_text(s, 2, in->external_number);
    char lo[32], hi[32];
    iso_of(in->ref_time - in->window_s, lo, sizeof(lo));
    iso_of(in->ref_time + in->window_s, hi, sizeof(hi));
    db_bind_text(s, 3, lo);
    db_bind_text(s, 4, hi);
    rc = call_row(st, s, "call by phone", call);
    if (rc == 0)
        snprintf(out->matched_by, sizeof(out->matched_by), "phone");
    return rc;
}

/* The conversation row: processed (call_id > 0) or orphan. */
static int record(store_t *st, const store_post_call_t *in, long call_id, long tenant_id, const char *payload)
{
    dbstmt_t *s = store_stmt_sql(
        st, Q_PC_RECORD,
        "INSERT INTO post_call_conversations (conversation_id, call_id, tenant_id, outcome, intent, agent_id, "
        "call_sid, "
        "external_number, event_timestamp, summary, payload) VALUES (?1, ?2, ?3, CASE WHEN CAST(?2 AS BIGINT) IS NULL "
        "THEN 'orphan' "
        "ELSE 'processed' END, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (s == NULL)
        return -1;
    db_bind_text(s, 1, in->conversation_id);
    if (call_id > 0)
        db_bind_int(s, 2, call_id);
    if (tenant_id > 0)
        db_bind_int(s, 3, tenant_id);
    db_bind_text(s, 4, in->intent);
    db_bind_text(s, 5, in->agent_id);
    db_bind_text(s, 6, in->call_sid);
    db_bind_text(s, 7, in->external_number);
    if (in->event_timestamp > 0)
        db_bind_int(s, 8, in->event_timestamp);
    db_bind_text(s, 9, in->summary);
    db_bind_text(s, 10, payload);
    return store_exec_stmt(st, s, "post-call record");
}

static int customer_by_phone(store_t *st, long tenant_id, const char *phone, const char *name, long *id)
{
    dbstmt_t *s = store_stmt_sql(st, Q_PC_CUSTOMER_FIND,
                                 "SELECT id FROM customers WHERE tenant_id = ?1 AND phone = ?2 ORDER BY id LIMIT 1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, tenant_id);
    db_bind_text(s, 2, phone);
    int found;
    if (one_long(st, s, "customer by phone", id, &found) != 0)
        return -1;
    if (found)
        return 0;
    s = store_stmt_sql(st, Q_PC_CUSTOMER_INSERT,
                       "INSERT INTO customers (tenant_id, phone, name) VALUES (?1, ?2, ?3) RETURNING id");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, tenant_id);
    db_bind_text(s, 2, phone);
    db_bind_text(s, 3, name);
    return store_exec_id(st, s, "insert customer", id);
}

static void bind_customer(dbstmt_t *s, int i, long customer)
{
    if (customer > 0)
        db_bind_int(s, i, customer);
    else
        db_bind_null(s, i);
}

static int process(store_t *st, const store_post_call_t *in, const store_call_t *call, store_post_call_result_t *out)
{
    json_t *d = in->detail;
    /* the call row: summary, conversation id, recording URL (a Twilio recording is kept) */
    dbstmt_t *s = store_stmt_sql(st, Q_PC_CALL_UPDATE,
                                 "UPDATE calls SET conversation_id = ?2, summary = COALESCE(?3, summary), "
                                 "recording_url = COALESCE(recording_url, ?4), "
                                 "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call->id);
    db_bind_text(s, 2, in->conversation_id);
    db_bind_text(s, 3, in->summary);
    db_bind_text(s, 4, in->recording_url);
    if (store_exec_stmt(st, s, "post-call update") != 0)
        return -1;

    /* the transcript, unless the bridge stored it live */
    s = store_stmt_sql(st, Q_PC_HAS_TRANSCRIPT, "SELECT count(*) FROM transcripts WHERE call_id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call->id);
    long have;
    int found;
    if (one_long(st, s, "transcript count", &have, &found) != 0)
        return -1;
    if (have > 0) {
        json_object_set_new(d, "transcript_skipped", json_string("the call already has a transcript"));
    } else {
        for (size_t i = 0; i < in->nturns; i++) {
            s = store_stmt_sql(st, Q_PC_TRANSCRIPT,
                               "INSERT INTO transcripts (call_id, role, text) VALUES (?1, ?2, ?3)");
            if (s == NULL)
                return -1;
            db_bind_int(s, 1, call->id);
            db_bind_text(s, 2, in->roles[i]);
            db_bind_text(s, 3, in->texts[i]);
            if (store_exec_stmt(st, s, "post-call transcript") != 0)
                return -1;
        }
    }

    /* the customer, by phone within the call's tenant */
    long customer = 0;
    if (in->external_number != NULL && in->external_number[0] != '\0') {
        if (customer_by_phone(st, call->tenant_id, in->external_number, in->customer_name, &customer) != 0)
            return -1;
        s = store_stmt_sql(st, Q_PC_CALL_CUSTOMER,
                           "UPDATE calls SET customer_id = ?2 WHERE id = ?1 AND customer_id IS NULL");
        if (s == NULL)
            return -1;
        db_bind_int(s, 1, call->id);
        db_bind_int(s, 2, customer);
        if (store_exec_stmt(st, s, "call customer") != 0)
            return -1;
    }
    out->customer_id = customer;
    if (customer > 0)
        json_object_set_new(d, "customer_id", json_integer(customer));

    if (in->make_booking) {
        s = store_stmt_sql(
            st, Q_PC_BOOKING,
            "INSERT INTO bookings (tenant_id, call_id, customer_id, name, date, time, notes) VALUES "
            "(?1, ?2, COALESCE(?3, (SELECT customer_id FROM calls WHERE id = ?2)), ?4, ?5, ?6, ?7) RETURNING id");
        if (s == NULL)
            return -1;
        db_bind_int(s, 1, call->tenant_id);
        db_bind_int(s, 2, call->id);
        bind_customer(s, 3, customer);
        db_bind_text(s, 4, in->booking_name);
        db_bind_text(s, 5, in->booking_date);
        db_bind_text(s, 6, in->booking_time);
        db_bind_text(s, 7, in->booking_notes);
        if (store_exec_id(st, s, "post-call booking", &out->booking_id) != 0)
            return -1;
        json_object_set_new(d, "booking_id", json_integer(out->booking_id));
    }
    if (in->make_ticket) {
        s = store_stmt_sql(
            st, Q_PC_TICKET,
            "INSERT INTO tickets (tenant_id, call_id, customer_id, summary, priority) VALUES "
            "(?1, ?2, COALESCE(?3, (SELECT customer_id FROM calls WHERE id = ?2)), ?4, ?5) RETURNING id");
        if (s == NULL)
            return -1;
        db_bind_int(s, 1, call->tenant_id);
        db_bind_int(s, 2, call->id);
        bind_customer(s, 3, customer);
        db_bind_text(s, 4, in->ticket_summary);
        db_bind_text(s, 5, in->ticket_priority);
        if (store_exec_id(st, s, "post-call ticket", &out->ticket_id) != 0)
            return -1;
        json_object_set_new(d, "ticket_id", json_integer(out->ticket_id));
    }

    json_object_set_new(d, "matched_by", json_string(out->matched_by));
    char *detail = json_dumps(d, JSON_COMPACT);
    if (detail == NULL)
        return store_fail(st, "post-call event detail");
    int rc = store_event_add(st, call->id, "post_call.received", detail);
    free(detail);
    if (rc != 0)
        return -1;
    return record(st, in, call->id, call->tenant_id, NULL);
}

int store_post_call(store_t *st, const store_post_call_t *in, store_post_call_result_t *out)
{
    memset(out, 0, sizeof(*out));
    if (store_begin(st) != 0)
        return -1;
    dbstmt_t *s = store_stmt_sql(st, Q_PC_SEEN, "SELECT id FROM post_call_conversations WHERE conversation_id = ?1");
    if (s == NULL)
        goto fail;
    db_bind_text(s, 1, in->conversation_id);
    long seen;
    int found;
    if (one_long(st, s, "post-call seen", &seen, &found) != 0)
        goto fail;
    if (found) {
        out->duplicate = 1;
        store_rollback(st); /* nothing was written */
        return 0;
    }
    store_call_t call;
    int rc = find_session(st, in, &call, out);
    if (rc < 0)
        goto fail;
    if (rc == 1) {
        out->orphan = 1;
        out->matched_by[0] = '\0';
        if (record(st, in, 0, 0, in->payload) != 0)
            goto fail;
    } else {
        out->call_id = call.id;
        out->tenant_id = call.tenant_id;
        snprintf(out->session_id, sizeof(out->session_id), "%s", call.session_id);
        if (process(st, in, &call, out) != 0)
            goto fail;
    }
    if (store_commit(st) != 0)
        goto fail;
    return 0;
fail:
    store_rollback(st);
    return -1;
}
