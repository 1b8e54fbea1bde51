/* What the audio bridge writes: transcripts, bookings, tickets, the stream and recording. */
#include "db/store_internal.h"

#include <stdio.h>
#include <string.h>

/* One statement as its own unit (joins the worker's batch when batching). */
static int run_unit(store_t *st, dbstmt_t *s, const char *what, long *rowid)
{
    if (store_begin(st) != 0) {
        db_reset(s);
        return -1;
    }
    long id;
    if ((rowid != NULL ? store_exec_id(st, s, what, &id) : store_exec_stmt(st, s, what)) != 0 ||
        store_commit(st) != 0) {
        store_rollback(st);
        return -1;
    }
    if (rowid != NULL)
        *rowid = id;
    return 0;
}

int store_transcript_add(store_t *st, long call_id, const char *role, const char *text)
{
    if (store_defers(st))
        return store_defer_transcript(st, call_id, role, text);
    dbstmt_t *s =
        store_stmt_sql(st, Q_TRANSCRIPT_ADD, "INSERT INTO transcripts (call_id, role, text) VALUES (?1, ?2, ?3)");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    db_bind_text(s, 2, role);
    db_bind_text(s, 3, text);
    return run_unit(st, s, "transcript", NULL);
}

int store_booking_add(store_t *st, long tenant_id, long call_id, const char *name, const char *date, const char *time,
                      const char *notes, long *id)
{
    dbstmt_t *s =
        store_stmt_sql(st, Q_BOOKING_ADD,
                       "INSERT INTO bookings (tenant_id, call_id, customer_id, name, date, time, notes) "
                       "VALUES (?1, ?2, (SELECT customer_id FROM calls WHERE id = ?2), ?3, ?4, ?5, ?6) RETURNING id");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, tenant_id);
    db_bind_int(s, 2, call_id);
    db_bind_text(s, 3, name);
    db_bind_text(s, 4, date);
    db_bind_text(s, 5, time);
    db_bind_text(s, 6, notes);
    return run_unit(st, s, "booking", id);
}

int store_ticket_add(store_t *st, long tenant_id, long call_id, const char *summary, const char *priority, long *id)
{
    dbstmt_t *s = store_stmt_sql(st, Q_TICKET_ADD,
                                 "INSERT INTO tickets (tenant_id, call_id, customer_id, summary, priority) "
                                 "VALUES (?1, ?2, (SELECT customer_id FROM calls WHERE id = ?2), ?3, ?4) RETURNING id");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, tenant_id);
    db_bind_int(s, 2, call_id);
    db_bind_text(s, 3, summary);
    db_bind_text(s, 4, priority);
    return run_unit(st, s, "ticket", id);
}

int store_call_stream(store_t *st, long call_id, const char *stream_sid)
{
    if (store_defers(st))
        return store_defer_stream(st, call_id, stream_sid);
    dbstmt_t *s = store_stmt_sql(st, Q_CALL_STREAM, "UPDATE calls SET stream_sid = ?2 WHERE id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    db_bind_text(s, 2, stream_sid);
    return run_unit(st, s, "stream", NULL);
}

int store_call_recording_path(store_t *st, long call_id, const char *path)
{
    if (store_defers(st))
        return store_defer_recording_path(st, call_id, path);
    dbstmt_t *s = store_stmt_sql(st, Q_RECORDING_PATH, "UPDATE calls SET recording_path = ?2 WHERE id = ?1");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, call_id);
    db_bind_text(s, 2, path);
    return run_unit(st, s, "recording path", NULL);
}

int store_call_recording_file(store_t *st, long tenant_id, const char *session_id, char *path, size_t pathsz)
{
    dbstmt_t *s = store_stmt_sql(st, Q_RECORDING_FILE,
                                 "SELECT recording_path FROM calls WHERE tenant_id = ?1 AND session_id = ?2 "
                                 "AND recording_path IS NOT NULL");
    if (s == NULL)
        return -1;
    db_bind_int(s, 1, tenant_id);
    db_bind_text(s, 2, session_id);
    int rc = db_step(s);
    if (rc == DB_ROW)
        store_col_text(s, 0, path, pathsz);
    db_reset(s);
    return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : store_fail(st, "recording file");
}
