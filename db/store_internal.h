/* Private to db/: the connection struct and the prepared-statement cache. */
#ifndef SB_STORE_INTERNAL_H
#define SB_STORE_INTERNAL_H

#include "db/store.h"

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
    Q_CALL_INSERT_LIMIT,
    Q_CALL_INSERT_EVENTS,
    Q_CALL_INSERT_EVENTS_LIMIT,
    Q_CALL_BY_SID,
    Q_CALL_BY_SESSION,
    Q_EVENT_INSERT,
    Q_TRANSFER_BEGIN,
    Q_TRANSFER_END,
    Q_NEXT_ACTION,
    Q_STATUS_UPDATE,
    Q_STATUS_LOCK,
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
    Q_LIVE_CALLS,
    Q_TENANT_LOCK,
    Q_TENANT_SEQ,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q__COUNT
} query_id_t;

/* A statement of either engine. Text bound with db_bind_text() is not copied: it must stay valid
 * until the statement is stepped (as SQLITE_STATIC). */
typedef struct dbstmt dbstmt_t;
enum { DB_DONE = 0, DB_ROW = 1 };

/* What one engine does; db/store_sqlite.c and db/store_pg.c each define one. */
typedef struct store_engine {
    const char *name;
    dbstmt_t *(*stmt)(store_t *st, query_id_t q, const char *sql); /* q < 0: one-off, db_finalize() it */
    void (*bind_int)(dbstmt_t *s, int i, long long v);
    void (*bind_text)(dbstmt_t *s, int i, const char *v); /* NULL binds NULL */
    int (*step)(dbstmt_t *s);                             /* DB_ROW, DB_DONE or -1 (store_fail done) */
    void (*reset)(dbstmt_t *s);
    void (*finalize)(dbstmt_t *s);
    long long (*col_int)(dbstmt_t *s, int col);                 /* booleans read as 0/1 */
    const char *(*col_text)(dbstmt_t *s, int col, size_t *len); /* NULL for NULL */
    int (*col_kind)(dbstmt_t *s, int col);                      /* DB_NULL, DB_INT, DB_REAL, DB_TEXT */
    int (*col_count)(dbstmt_t *s);
    const char *(*col_name)(dbstmt_t *s, int col);
    int (*begin)(store_t *st);
    int (*commit)(store_t *st);
    void (*rollback)(store_t *st);
    int (*lock_tenant)(store_t *st, long tenant_id);
    const char *(*last_error)(store_t *st);
    /* group commit (SQLite); PostgreSQL commits each unit itself */
    void (*set_batching)(store_t *st, int on);
    int (*batch_pending)(const store_t *st);
    int (*batch_commit)(store_t *st);
    void (*close)(store_t *st);
} store_engine_t;
enum { DB_NULL, DB_INT, DB_REAL, DB_TEXT };

extern const store_engine_t store_sqlite_engine, store_pg_engine;

/* Writes queued off a fiber (store_defer.c). */
typedef struct store_wop store_wop_t;
#define STORE_DEFER_MAX 10000
typedef struct store_defer {
    store_wop_t *head, *tail;
    int queued, draining;
    unsigned long failed;
    int (*run)(void *ctx, void (*fn)(void *arg), void *arg); /* NULL: never defer */
    void *run_ctx;
    void (*log)(void *ctx, const char *op, const char *err);
    void *log_ctx;
} store_defer_t;

struct store {
    const store_engine_t *e;
    void *impl; /* the engine's own state */
    store_defer_t defer;
    store_call_end_fn on_call_end; /* see store_on_call_end() */
    void *on_call_end_arg;
    store_commit_fn on_commit; /* see store_on_commit() */
    void *on_commit_arg;
    char errbuf[256];
};

/* CLOCK_MONOTONIC in ns, for timing commits. */
uint64_t store_clock_ns(void);
/* Tells store_on_commit()'s hook about a commit begun at t0 (store_clock_ns()). */
void store_commit_done(store_t *st, uint64_t t0);

/* Off a fiber on a store attached to a loop: write-only calls queue instead of waiting. */
int store_defers(store_t *st);
int store_pg_defers(store_t *st);
/* Sets the running fiber's store_defer_writes() depth; returns the old one. */
int store_pg_set_forced(store_t *st, int depth);
int store_defer_event(store_t *st, long call_id, const char *type, const char *detail_json);
int store_defer_next_action(store_t *st, long call_id, const char *action, const char *reason);
int store_defer_transcript(store_t *st, long call_id, const char *role, const char *text);
int store_defer_recording_path(store_t *st, long call_id, const char *path);
int store_defer_stream(store_t *st, long call_id, const char *stream_sid);
int store_defer_transfer(store_t *st, int begin, long call_id, int attempt, const char *what, const char *event_json);
int store_defer_placed(store_t *st, long call_id, const char *call_sid, const char *status, const char *response_json);
int store_defer_failed(store_t *st, long call_id, const char *status, int error_code, const char *message,
                       const char *response_json, int release_key);
int store_defer_amd(store_t *st, long call_id, const char *answered_by, const char *event_json);
int store_defer_status(store_t *st, const store_status_t *s);
void store_defer_free(store_t *st);

static inline int store_is_pg(const store_t *st)
{
    return st->e == &store_pg_engine;
}

/* Returns the cached statement, reset and with bindings cleared, or NULL (errmsg set). */
dbstmt_t *store_stmt(store_t *st, query_id_t q);
/* The same for statements whose SQL is kept by the caller; sql is used on first use only. SQL is
 * written for SQLite with numbered parameters (?1); PostgreSQL's engine rewrites it. */
dbstmt_t *store_stmt_sql(store_t *st, query_id_t q, const char *sql);
/* A statement prepared for one use: db_finalize() it. */
dbstmt_t *store_stmt_once(store_t *st, const char *sql);
int store_fail(store_t *st, const char *what);

void db_bind_int(dbstmt_t *s, int i, long long v);
void db_bind_text(dbstmt_t *s, int i, const char *v);
void db_bind_null(dbstmt_t *s, int i);
int db_step(dbstmt_t *s);
void db_reset(dbstmt_t *s);
void db_finalize(dbstmt_t *s);
long long db_col_int(dbstmt_t *s, int col);
const char *db_col_text(dbstmt_t *s, int col);
int db_col_count(dbstmt_t *s);

/* Runs a statement that returns no rows. 0 or -1 (errmsg set). */
int store_exec_stmt(store_t *st, dbstmt_t *s, const char *what);
/* Runs an INSERT ... RETURNING id (or an UPDATE ... RETURNING id): *id is 0 when no row was written. */
int store_exec_id(store_t *st, dbstmt_t *s, const char *what, long *id);
/* A unit of work: atomic on its own. SQLite without batching: BEGIN IMMEDIATE / COMMIT / ROLLBACK;
 * with batching a savepoint inside the open batch transaction (begun on first use). PostgreSQL:
 * a transaction of its own on one connection. */
int store_begin(store_t *st);
int store_commit(store_t *st);
void store_rollback(store_t *st);
/* Inside a unit: holds the tenant's row until the unit ends, so a count of its calls sees every
 * other instance's committed calls (a no-op where one writer at a time is the rule). */
int store_lock_tenant(store_t *st, long tenant_id);
/* Copies a text column into a fixed buffer ("" for NULL), truncating. */
void store_col_text(dbstmt_t *s, int col, char *dst, size_t dstsz);
/* Column i of the current row as a JSON value (null, integer, real or string). */
json_t *store_col_json(dbstmt_t *s, int col);
/* The current row as a JSON object keyed by column names. */
json_t *store_row_json(dbstmt_t *s);
/* Fills a store_call_t from a row selected with the STORE_CALL_COLS columns (store_calls.c). */
void store_read_call(dbstmt_t *s, store_call_t *c);
#define STORE_CALL_COLS                                                                                                \
    "id, session_id, tenant_id, direction, call_sid, from_number, to_number, status, status_seq, "                     \
    "ended_at IS NOT NULL, next_action, transfer_attempt, transfer_target, transfer_reason, agent_type, platform"
/* The columns of a call as the API lists it (calls c LEFT JOIN customers cu), and the row
 * shaped for it: the public id is the session id. */
#define STORE_LIST_COLS                                                                                                \
    "c.id, c.session_id AS id_public, c.direction, c.call_sid, c.from_number, c.to_number, c.agent_type, c.status, "   \
    "c.started_at, c.answered_at, c.ended_at, c.duration_s, c.transfer_target, c.transfer_result, c.amd_result, "      \
    "c.error_code, c.error_message, cu.external_id AS customer_id, c.platform"
json_t *store_list_row(dbstmt_t *s);
/* Appends to a call's timeline (inside the caller's unit). */
int store_event_add(store_t *st, long call_id, const char *type, const char *detail_json);
/* Runs `s` (bindings done) and the call event `type` as one unit. */
int store_update_with_event(store_t *st, dbstmt_t *s, long call_id, const char *type, const char *event_json);

/* The engines' own entry points used by store_db.c. */
int store_is_url(const char *target);
int store_sqlite_open(store_t *st, const char *path, char *err, size_t errsz);
int store_pg_open(store_t *st, const char *url, char *err, size_t errsz);
int store_sqlite_migrate(store_t *st, const store_migration_t *list, size_t n, int *applied, char *err, size_t errsz);
int store_pg_migrate(store_t *st, const store_migration_t *list, size_t n, int *applied, char *err, size_t errsz);
/* PostgreSQL's live feed: LISTEN on its own connection (1 when it began listening just now);
 * take drains what was notified into ids ("1,2,3"; at most max): 0, 1 when readers should
 * reload (too many, or notifications may have been missed), -1 error. */
int store_pg_live_listen(store_t *st);
int store_pg_live_take(store_t *st, int max, char *ids, size_t cap);
/* Applies the migrations after version `current` with exec (a migration's whole text), recording each. */
int store_migrate_apply(store_t *st, const store_migration_t *list, size_t n, int current,
                        int (*exec)(store_t *st, const char *sql), int *applied, char *err, size_t errsz);

#endif
