/* Private to db/: the connection struct and the prepared-statement cache. */
#ifndef SB_STORE_INTERNAL_H
#define SB_STORE_INTERNAL_H

#include "db/store.h"

#include <sqlite3.h>

/* Every statement the store runs; SQL text is in store_sqlite.c's table, same order. */
typedef enum {
    Q_HAS_MIGRATIONS,
    Q_SCHEMA_VERSION,
    Q_MIGRATION_RECORD,
    Q_TENANT_ENSURE,
    Q_ACTIVE_CALLS,
    /* store_calls.c: SQL text lives next to its use, given to store_stmt_sql() */
    Q_TENANT_BY_NUMBER,
    Q_TENANT_GET,
    Q_TENANT_LIVE,
    Q_CALL_INSERT,
    Q_CALL_BY_SID,
    Q_CALL_BY_SESSION,
    Q_EVENT_INSERT,
    Q_TRANSFER_BEGIN,
    Q_TRANSFER_END,
    Q_NEXT_ACTION,
    Q_STATUS_UPDATE,
    Q_RECORDING_UPDATE,
    Q_SET_SID,
    Q_CUSTOMER_FIND,
    Q_CUSTOMER_INSERT,
    Q_IDEM_FIND,
    Q_OUTBOUND_INSERT,
    Q_OUTBOUND_PLACED,
    Q_OUTBOUND_FAILED,
    Q_AMD,
    Q_CALL_DETAIL,
    Q_CALL_EVENTS,
    Q_CALL_TRANSCRIPT,
    Q_CALL_BOOKINGS,
    Q_CALL_TICKETS,
    Q_TENANT_NUMBERS,
    Q_TENANT_INSERT,
    Q_TENANT_UPDATE,
    Q_NUMBER_OWNER,
    Q_NUMBERS_DELETE,
    Q_NUMBER_INSERT,
    Q_TENANTS_LIST,
    Q_TRANSCRIPT_ADD,
    Q_BOOKING_ADD,
    Q_TICKET_ADD,
    Q_CALL_STREAM,
    Q_RECORDING_PATH,
    Q_RECORDING_FILE,
    /* store_post_call.c */
    Q_PC_SEEN,
    Q_PC_BY_CONVERSATION,
    Q_PC_BY_PHONE,
    Q_PC_TENANT_OF_NUMBER,
    Q_PC_CALL_UPDATE,
    Q_PC_HAS_TRANSCRIPT,
    Q_PC_TRANSCRIPT,
    Q_PC_CUSTOMER_FIND,
    Q_PC_CUSTOMER_INSERT,
    Q_PC_CALL_CUSTOMER,
    Q_PC_BOOKING,
    Q_PC_TICKET,
    Q_PC_RECORD,
    /* store_live.c */
    Q_LIVE_CURSOR,
    Q_LIVE_CHANGES,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q__COUNT
} query_id_t;

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmts[Q__COUNT];
    int batching;   /* units join one transaction until store_batch_commit() */
    int batch_open; /* that transaction has begun */
    char errbuf[256];
};

/* Returns the cached statement, reset and with bindings cleared, or NULL (errmsg set). */
sqlite3_stmt *store_stmt(store_t *st, query_id_t q);
/* The same for statements whose SQL is kept by the caller; sql is used on first use only. */
sqlite3_stmt *store_stmt_sql(store_t *st, query_id_t q, const char *sql);
int store_fail(store_t *st, const char *what);

/* Runs a statement that returns no rows. 0 or -1 (errmsg set). */
int store_exec_stmt(store_t *st, sqlite3_stmt *s, const char *what);
/* A unit of work: atomic on its own. Without batching BEGIN IMMEDIATE / COMMIT / ROLLBACK;
 * with batching a savepoint inside the open batch transaction (begun on first use). */
int store_begin(store_t *st);
int store_commit(store_t *st);
void store_rollback(store_t *st);
/* Copies a text column into a fixed buffer ("" for NULL), truncating. */
void store_col_text(sqlite3_stmt *s, int col, char *dst, size_t dstsz);
/* Column i of the current row as a JSON value (null, integer, real or string). */
json_t *store_col_json(sqlite3_stmt *s, int col);
/* The current row as a JSON object keyed by column names. */
json_t *store_row_json(sqlite3_stmt *s);
/* Fills a store_call_t from a row selected with the STORE_CALL_COLS columns (store_calls.c). */
void store_read_call(sqlite3_stmt *s, store_call_t *c);
#define STORE_CALL_COLS                                                                                                \
    "id, session_id, tenant_id, direction, call_sid, from_number, to_number, status, status_seq, "                     \
    "ended_at IS NOT NULL, next_action, transfer_attempt, transfer_target, transfer_reason, agent_type, platform"
/* The columns of a call as the API lists it (calls c LEFT JOIN customers cu), and the row
 * shaped for it: the public id is the session id. */
#define STORE_LIST_COLS                                                                                                \
    "c.id, c.session_id AS id_public, c.direction, c.call_sid, c.from_number, c.to_number, c.agent_type, c.status, "   \
    "c.started_at, c.answered_at, c.ended_at, c.duration_s, c.transfer_target, c.transfer_result, c.amd_result, "      \
    "c.error_code, c.error_message, cu.external_id AS customer_id, c.platform"
json_t *store_list_row(sqlite3_stmt *s);
/* Appends to a call's timeline (inside the caller's unit). */
int store_event_add(store_t *st, long call_id, const char *type, const char *detail_json);
/* Runs `s` (bindings done) and the call event `type` as one unit. */
int store_update_with_event(store_t *st, sqlite3_stmt *s, long call_id, const char *type, const char *event_json);
/* Binds a text or NULL. */
void store_bind_text(sqlite3_stmt *s, int i, const char *v);

#endif
