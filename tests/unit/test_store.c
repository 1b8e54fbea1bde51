/* store: WAL, migrations applied once and atomically, default tenant, health probe, calls' and
 * tenants' platform. The suite runs on SQLite, then on PostgreSQL (a fresh database per test on
 * the cluster named by SB_PG_URL_FILE, which CTest's pg fixture starts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/store.h"
#include "server/fiber.h"

static char dir[64], path[512];
static char pg_admin[256]; /* the cluster's URL, "" while the SQLite pass runs */
static char pg_db[64];
static int pg_seq;

static int is_pg(void)
{
    return pg_admin[0] != '\0';
}

/* Runs SQL through a connection of its own to url. */
static void pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

static int setup(void **state)
{
    (void)state;
    if (is_pg()) {
        snprintf(pg_db, sizeof(pg_db), "sb_store_%d_%d", (int)getpid(), ++pg_seq);
        char sql[128];
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", pg_db);
        pg_exec(pg_admin, sql);
        const char *slash = strrchr(pg_admin, '/');
        snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - pg_admin), pg_admin, pg_db);
        return 0;
    }
    snprintf(dir, sizeof(dir), "/tmp/sb-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (is_pg()) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", pg_db);
        pg_exec(pg_admin, sql);
        return 0;
    }
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const store_migration_t *migrations(void)
{
    return is_pg() ? store_migrations_pg : store_migrations;
}

static size_t migrations_count(void)
{
    return is_pg() ? store_migrations_pg_count : store_migrations_count;
}

/* Reads one integer with a separate connection, as another process would. */
static long query_long(const char *sql)
{
    if (is_pg()) {
        PGconn *c = PQconnectdb(path);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PGresult *r = PQexec(c, sql);
        long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? atol(PQgetvalue(r, 0, 0)) : -1;
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    long v = sqlite3_step(s) == SQLITE_ROW ? (long)sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* Runs SQL on a separate connection, as another process would. */
static void exec_other(const char *sql)
{
    if (is_pg()) {
        pg_exec(path, sql);
        return;
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void migrations_apply_once(void **state)
{
    (void)state;
    store_t *st;
    char err[256];
    int applied = -1;
    assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
    assert_int_equal(store_schema_version(st), 0);
    assert_int_equal(store_migrate(st, migrations(), migrations_count(), &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, (int)migrations_count());
    assert_int_equal(store_schema_version(st), store_migrations[store_migrations_count - 1].version);
    assert_int_equal(store_migrate(st, migrations(), migrations_count(), &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, 0);
    store_close(st);

    /* a restart: new connection, nothing to apply */
    assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
    assert_int_equal(store_migrate(st, migrations(), migrations_count(), &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, 0);
    store_close(st);
    assert_int_equal(query_long("SELECT COUNT(*) FROM schema_migrations"), (long)migrations_count());
    const char *tables[] = {"tenants", "customers", "calls", "call_events", "transcripts", "bookings", "tickets"};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql),
                 is_pg() ? "SELECT COUNT(*) FROM information_schema.tables WHERE table_name='%s'"
                         : "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='%s'",
                 tables[i]);
        if (query_long(sql) != 1)
            fail_msg("table %s missing", tables[i]);
    }
}

static void wal_and_busy_timeout(void **state)
{
    (void)state;
    if (is_pg())
        skip(); /* SQLite's journal */
    store_t *st;
    char err[256];
    assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
    store_close(st);
}

static void failed_migration_changes_nothing(void **state)
{
    (void)state;
    const store_migration_t list[] = {
        {1, "good", "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"},
        {2, "bad", "CREATE TABLE b (y INTEGER); THIS IS NOT SQL;"},
    };
    store_t *st;
    char err[256] = "";
    int applied = -1;
    assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
    assert_int_equal(store_migrate(st, list, 2, &applied, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "0002_bad"));
    assert_int_equal(applied, 0);
    assert_int_equal(store_schema_version(st), 0);
    store_close(st);
    if (is_pg()) {
        assert_int_equal(query_long("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"),
                         0); /* not even schema_migrations */
    } else {
        assert_int_equal(query_long("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('a','b')"), 0);
        assert_int_equal(query_long("SELECT COUNT(*) FROM sqlite_master"), 0); /* not even schema_migrations */
    }

    /* fixed, the same database migrates */
    const store_migration_t fixed[] = {list[0], {2, "bad", "CREATE TABLE b (y INTEGER);"}};
    assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
    assert_int_equal(store_migrate(st, fixed, 2, &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, 2);
    store_close(st);
    assert_int_equal(query_long("SELECT x FROM a"), 1);
}

static void tenant_and_active_calls(void **state)
{
    (void)state;
    store_t *st;
    char err[256];
    long n = -1;
    assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
    assert_int_equal(store_migrate(st, migrations(), migrations_count(), NULL, err, sizeof(err)), 0);
    assert_int_equal(store_tenant_ensure(st, 7, "default"), 1);
    assert_int_equal(store_tenant_ensure(st, 7, "default"), 0);
    assert_int_equal(store_active_calls(st, &n), 0);
    assert_int_equal(n, 0);
    exec_other("INSERT INTO calls (session_id, tenant_id, direction) VALUES ('s1', 7, 'inbound');"
               "INSERT INTO calls (session_id, tenant_id, direction, ended_at) VALUES ('s2', 7, 'inbound', 'x');");
    assert_int_equal(store_active_calls(st, &n), 0);
    assert_int_equal(n, 1);
    /* the probe reports a broken schema instead of hiding it */
    exec_other(is_pg() ? "DROP TABLE calls CASCADE" : "PRAGMA foreign_keys=OFF; DROP TABLE calls;");
    assert_int_equal(store_active_calls(st, &n), -1);
    assert_non_null(strstr(store_errmsg(st), "calls"));
    store_close(st);
}

static store_t *open_migrated(void)
{
    store_t *st;
    char err[256];
    assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
    assert_int_equal(store_migrate(st, migrations(), migrations_count(), NULL, err, sizeof(err)), 0);
    assert_int_equal(store_tenant_ensure(st, 1, "default"), 1);
    return st;
}

static void inbound_calls_and_limit(void **state)
{
    (void)state;
    store_t *st = open_migrated();
    store_call_t c;
    int created, rejected;
    store_inbound_t in = {"s-1", 1, "CA01", "+14155550111", "+14155550100", "ringing", 2, "{}"};
    assert_int_equal(store_call_start_inbound(st, &in, &c, &created, &rejected), 0);
    assert_true(created);
    assert_false(rejected);
    assert_string_equal(c.session_id, "s-1");
    /* a retried webhook: the first row, not a new one */
    store_inbound_t again = {"s-other", 1, "CA01", "+14155550111", "+14155550100", "ringing", 2, "{}"};
    assert_int_equal(store_call_start_inbound(st, &again, &c, &created, &rejected), 0);
    assert_false(created);
    assert_string_equal(c.session_id, "s-1");
    store_inbound_t second = {"s-2", 1, "CA02", "+1", "+2", NULL, 2, NULL};
    assert_int_equal(store_call_start_inbound(st, &second, &c, &created, &rejected), 0);
    assert_false(rejected);
    store_inbound_t third = {"s-3", 1, "CA03", "+1", "+2", NULL, 2, NULL};
    assert_int_equal(store_call_start_inbound(st, &third, &c, &created, &rejected), 0);
    assert_true(created);
    assert_true(rejected);
    assert_true(c.ended);
    assert_string_equal(c.status, "busy");
    assert_int_equal(store_call_by_session(st, "s-3", &c), 0);
    assert_string_equal(c.call_sid, "CA03");
    assert_int_equal(store_call_by_session(st, "nope", &c), 1);
    store_close(st);
    assert_int_equal(query_long("SELECT COUNT(*) FROM call_events WHERE type = 'call.rejected'"), 1);
}

static int status(store_t *st, const char *s, long seq)
{
    store_status_t in = {.call_sid = "CA01", .status = s, .seq = seq, .duration_s = -1, .sip_code = -1};
    int applied = -1;
    assert_int_equal(store_call_status(st, &in, &applied), 0);
    return applied;
}

static void status_machine(void **state)
{
    (void)state;
    store_t *st = open_migrated();
    store_call_t c;
    int created, rejected;
    store_inbound_t in = {"s-1", 1, "CA01", "+1", "+2", "ringing", 0, NULL};
    assert_int_equal(store_call_start_inbound(st, &in, &c, &created, &rejected), 0);
    assert_true(status(st, "in-progress", 1));
    assert_false(status(st, "ringing", 0));     /* older */
    assert_false(status(st, "in-progress", 1)); /* duplicate */
    assert_true(status(st, "completed", 3));
    assert_false(status(st, "in-progress", 2)); /* late, and after a terminal state */
    assert_false(status(st, "busy", 4));        /* terminal is final */
    assert_false(status(st, "teleported", 5));  /* unknown word: recorded, ignored */
    assert_int_equal(store_call_by_sid(st, "CA01", &c), 0);
    assert_string_equal(c.status, "completed");
    assert_int_equal(c.status_seq, 3);
    assert_true(c.ended);
    store_status_t unknown = {.call_sid = "CA99", .status = "completed", .seq = 1, .duration_s = -1, .sip_code = -1};
    int applied;
    assert_int_equal(store_call_status(st, &unknown, &applied), 1);
    assert_int_equal(store_status_rank("queued"), 0);
    assert_int_equal(store_status_rank("no-answer"), 4);
    assert_int_equal(store_status_rank("x"), -1);
    store_close(st);
}

static void group_commit(void **state)
{
    (void)state;
    if (is_pg())
        skip(); /* SQLite's; PostgreSQL commits each unit and groups the flushes itself */
    store_t *st = open_migrated();
    store_set_batching(st, 1);
    store_call_t c;
    int created, rejected;
    store_inbound_t a = {"s-a", 1, "CA0a", "+1", "+2", NULL, 0, NULL};
    assert_int_equal(store_call_start_inbound(st, &a, &c, &created, &rejected), 0);
    assert_true(store_batch_pending(st));
    long id_a = c.id;
    /* a unit that fails (a second call with the same session id) undoes only itself */
    store_inbound_t dup = {"s-a", 1, "CA0b", "+1", "+2", NULL, 0, NULL};
    assert_int_equal(store_call_start_inbound(st, &dup, &c, &created, &rejected), -1);
    assert_int_equal(store_call_transfer_begin(st, id_a, 0, "sip:2000@pbx.example.com", "{}"), 0);
    /* another connection sees nothing until the batch commits */
    assert_int_equal(query_long("SELECT COUNT(*) FROM calls"), 0);
    assert_int_equal(store_batch_commit(st), 0);
    assert_false(store_batch_pending(st));
    assert_int_equal(query_long("SELECT COUNT(*) FROM calls"), 1);
    assert_int_equal(query_long("SELECT transfer_attempt FROM calls WHERE session_id = 's-a'"), 0);
    assert_int_equal(query_long("SELECT COUNT(*) FROM call_events"), 2);
    assert_int_equal(store_batch_commit(st), 0); /* nothing open: nothing to do */
    int frames = -1, done = -1;
    assert_int_equal(store_checkpoint(st, &frames, &done), 0);
    assert_true(frames >= 0);
    store_close(st);
}

/* PostgreSQL's feed hears of commits by notification, a moment after them. */
static int live_look(store_t *st, store_live_cursor_t *cur, int max, json_t **rows)
{
    if (is_pg())
        usleep(100 * 1000);
    return store_live_changes(st, cur, max, rows);
}

/* The live feed: calls whose timeline or transcript grew, once each, oldest first; too many
 * at once is 1 (readers reload) with the cursor moved on all the same. */
static void live_changes(void **state)
{
    (void)state;
    store_t *st = open_migrated();
    store_live_cursor_t cur;
    assert_int_equal(store_live_cursor(st, &cur), 0);
    json_t *rows = NULL;
    assert_int_equal(live_look(st, &cur, 10, &rows), 0);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);

    store_call_t a, b;
    int created, rejected;
    store_inbound_t ia = {"s-a", 1, "CA0a", "+1", "+2", NULL, 0, "{}"};
    store_inbound_t ib = {"s-b", 1, "CA0b", "+1", "+2", NULL, 0, "{}"};
    assert_int_equal(store_call_start_inbound(st, &ia, &a, &created, &rejected), 0);
    assert_int_equal(store_call_start_inbound(st, &ib, &b, &created, &rejected), 0);
    assert_int_equal(store_call_transfer_begin(st, a.id, 0, "sip:2000@pbx.example.com", "{}"), 0);
    assert_int_equal(live_look(st, &cur, 10, &rows), 0);
    assert_int_equal(json_array_size(rows), 2); /* a twice in the timeline: one row */
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "id")), "s-a");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "tenant_id")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "id")), "s-b");
    json_decref(rows);
    assert_int_equal(live_look(st, &cur, 10, &rows), 0); /* nothing since */
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);

    /* a transcript line alone moves its call */
    assert_int_equal(store_transcript_add(st, b.id, "caller", "hello"), 0);
    assert_int_equal(live_look(st, &cur, 10, &rows), 0);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "id")), "s-b");
    json_decref(rows);

    /* over max: 1, no rows, and the next look starts after them */
    assert_int_equal(store_transcript_add(st, a.id, "agent", "hi"), 0);
    assert_int_equal(store_transcript_add(st, b.id, "caller", "again"), 0);
    assert_int_equal(live_look(st, &cur, 1, &rows), 1);
    assert_null(rows);
    assert_int_equal(live_look(st, &cur, 1, &rows), 0);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    store_close(st);
}

static const char *row_str(json_t *row, const char *key)
{
    return json_string_value(json_object_get(row, key));
}

/* Every call says which platform carried it: written by both inserts, read back by every read,
 * listed, filtered on, in the detail and in the live feed. */
static void call_platform(void **state)
{
    (void)state;
    store_t *st = open_migrated();
    store_live_cursor_t cur;
    assert_int_equal(store_live_cursor(st, &cur), 0);
    store_call_t c;
    int created, rejected, existing;
    store_inbound_t tw = {.session_id = "s-tw", .tenant_id = 1, .call_sid = "CA01", .from_number = "+1"};
    assert_int_equal(store_call_start_inbound(st, &tw, &c, &created, &rejected), 0);
    assert_string_equal(c.platform, "twilio"); /* NULL: twilio */
    store_inbound_t ast = {.session_id = "s-ast",
                           .tenant_id = 1,
                           .call_sid = "1712345678.42",
                           .from_number = "+14155550111",
                           .to_number = "+14155550100",
                           .platform = "asterisk"};
    assert_int_equal(store_call_start_inbound(st, &ast, &c, &created, &rejected), 0);
    assert_string_equal(c.platform, "asterisk");
    /* a retried start finds the first row, platform included */
    ast.session_id = "s-ast-again";
    assert_int_equal(store_call_start_inbound(st, &ast, &c, &created, &rejected), 0);
    assert_false(created);
    assert_string_equal(c.session_id, "s-ast");
    assert_string_equal(c.platform, "asterisk");
    store_inbound_t bad = {.session_id = "s-bad", .tenant_id = 1, .call_sid = "CA02", .platform = "skype"};
    assert_int_equal(store_call_start_inbound(st, &bad, &c, &created, &rejected), -1); /* CHECK */

    char saved[64];
    store_outbound_t ob = {
        .session_id = "s-out", .tenant_id = 1, .to = "+14155550122", .platform = "asterisk", .idempotency_key = "k1"};
    assert_int_equal(store_outbound_create(st, &ob, &c, &existing, saved, sizeof(saved)), 0);
    assert_string_equal(c.platform, "asterisk");
    assert_int_equal(store_outbound_placed(st, c.id, "1712345678.50", "queued", "{\"ok\":1}"), 0);
    assert_int_equal(store_outbound_create(st, &ob, &c, &existing, saved, sizeof(saved)), 0);
    assert_true(existing);
    assert_string_equal(c.platform, "asterisk");
    assert_string_equal(saved, "{\"ok\":1}"); /* the column after the call's own */
    store_outbound_t ob2 = {.session_id = "s-out2", .tenant_id = 1, .to = "+14155550123"};
    assert_int_equal(store_outbound_create(st, &ob2, &c, &existing, saved, sizeof(saved)), 0);
    assert_string_equal(c.platform, "twilio");

    assert_int_equal(store_call_by_session(st, "s-ast", &c), 0);
    assert_string_equal(c.platform, "asterisk");
    assert_int_equal(store_call_by_sid(st, "CA01", &c), 0);
    assert_string_equal(c.platform, "twilio");
    assert_int_equal(store_call_by_session(st, "s-out", &c), 0);
    assert_string_equal(c.platform, "asterisk");

    json_t *rows;
    long next;
    store_call_filter_t f = {.tenant_id = 1, .limit = 10};
    if (store_calls_list(st, &f, &rows, &next) != 0)
        fail_msg("%s", store_errmsg(st));
    assert_int_equal(json_array_size(rows), 4);
    assert_string_equal(row_str(json_array_get(rows, 0), "platform"), "twilio"); /* s-out2, newest first */
    assert_string_equal(row_str(json_array_get(rows, 3), "platform"), "twilio"); /* s-tw */
    json_decref(rows);
    f.platform = "asterisk";
    assert_int_equal(store_calls_list(st, &f, &rows, &next), 0);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(row_str(json_array_get(rows, 0), "id"), "s-out");
    assert_string_equal(row_str(json_array_get(rows, 1), "id"), "s-ast");
    json_decref(rows);
    f.platform = "jambonz";
    assert_int_equal(store_calls_list(st, &f, &rows, &next), 0);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    f.platform = "twilio";
    f.direction = "inbound";
    assert_int_equal(store_calls_list(st, &f, &rows, &next), 0);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(row_str(json_array_get(rows, 0), "id"), "s-tw");
    json_decref(rows);

    json_t *detail;
    assert_int_equal(store_call_detail(st, 1, "s-ast", &detail), 0);
    assert_string_equal(row_str(detail, "platform"), "asterisk");
    json_decref(detail);

    assert_int_equal(live_look(st, &cur, 10, &rows), 0);
    assert_int_equal(json_array_size(rows), 4);
    assert_string_equal(row_str(json_array_get(rows, 1), "id"), "s-ast");
    assert_string_equal(row_str(json_array_get(rows, 1), "platform"), "asterisk");
    json_decref(rows);
    store_close(st);
}

/* A tenant's platform: "" (the setting) until written; saved, read by both tenant reads and the API's. */
static void tenant_platform(void **state)
{
    (void)state;
    store_t *st = open_migrated();
    store_tenant_t t;
    assert_int_equal(store_tenant_get(st, 1, &t), 0);
    assert_string_equal(t.platform, "");

    const char *nums[] = {"+14155550100"};
    store_tenant_input_t in = {
        .name = "acme", .max_concurrent_calls = -1, .platform = "asterisk", .numbers = nums, .nnumbers = 1};
    long id = 0;
    char conflict[32];
    assert_int_equal(store_tenant_save(st, 0, &in, &id, conflict, sizeof(conflict)), 0);
    assert_int_equal(store_tenant_get(st, id, &t), 0);
    assert_string_equal(t.platform, "asterisk");
    assert_int_equal(store_tenant_for_number(st, "+14155550100", 1, &t), 0);
    assert_int_equal(t.id, id);
    assert_string_equal(t.platform, "asterisk");
    json_t *o;
    assert_int_equal(store_tenant_detail(st, id, &o), 0);
    assert_string_equal(row_str(o, "platform"), "asterisk");
    json_decref(o);

    in.platform = "twilio";
    assert_int_equal(store_tenant_save(st, id, &in, &id, conflict, sizeof(conflict)), 0);
    assert_int_equal(store_tenant_get(st, id, &t), 0);
    assert_string_equal(t.platform, "twilio");
    in.platform = NULL; /* a replace without it: back to the setting */
    assert_int_equal(store_tenant_save(st, id, &in, &id, conflict, sizeof(conflict)), 0);
    assert_int_equal(store_tenant_get(st, id, &t), 0);
    assert_string_equal(t.platform, "");
    json_t *rows;
    assert_int_equal(store_tenants_list(st, 0, &rows), 0);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(row_str(json_array_get(rows, 1), "platform"), "");
    json_decref(rows);
    in.platform = "pots";
    assert_int_equal(store_tenant_save(st, id, &in, &id, conflict, sizeof(conflict)), -1); /* CHECK */
    store_close(st);
}

/* ---- several instances on one PostgreSQL: real threads, one store each ---- */

typedef struct racer {
    int id, admitted, rejected, errors, existing;
    char sessions[20][40];
} racer_t;

static void *race_inbound(void *p)
{
    racer_t *r = p;
    store_t *st;
    char err[256];
    if (store_open(path, &st, err, sizeof(err)) != 0) {
        r->errors++;
        return NULL;
    }
    for (int i = 0; i < 20; i++) {
        char sid[32], sess[40];
        snprintf(sid, sizeof(sid), "CA-limit-%d-%d", r->id, i);
        snprintf(sess, sizeof(sess), "s-limit-%d-%d", r->id, i);
        store_inbound_t in = {sess, 2, sid, "+1", "+2", NULL, 5, NULL};
        store_call_t c;
        int created, rejected;
        if (store_call_start_inbound(st, &in, &c, &created, &rejected) != 0)
            r->errors++;
        else if (rejected)
            r->rejected++;
        else
            r->admitted++;
        /* the same CallSid, retried at once by the other instance */
        snprintf(sid, sizeof(sid), "CA-retry-%d", i);
        snprintf(sess, sizeof(sess), "s-retry-%d-%d", r->id, i);
        store_inbound_t again = {sess, 1, sid, "+1", "+2", NULL, 0, NULL};
        if (store_call_start_inbound(st, &again, &c, &created, &rejected) != 0)
            r->errors++;
        snprintf(r->sessions[i], sizeof(r->sessions[i]), "%s", c.session_id);
        /* and an API client's Idempotency-Key, sent to both */
        char key[32];
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(sess, sizeof(sess), "s-out-%d-%d", r->id, i);
        store_outbound_t out = {.session_id = sess, .tenant_id = 1, .to = "+3", .from = "+4", .idempotency_key = key};
        char saved[64];
        int existing;
        if (store_outbound_create(st, &out, &c, &existing, saved, sizeof(saved)) != 0)
            r->errors++;
        r->existing += existing;
    }
    store_close(st);
    return NULL;
}

/* The tenant's limit, a retried webhook's CallSid and an Idempotency-Key hold across instances. */
static void several_instances(void **state)
{
    (void)state;
    store_t *st = open_migrated();
    assert_int_equal(store_tenant_ensure(st, 2, "limited"), 1);
    store_close(st);
    racer_t r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, race_inbound, &r[i]), 0);
    }
    int admitted = 0, rejected = 0, existing = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].errors, 0);
        admitted += r[i].admitted;
        rejected += r[i].rejected;
        existing += r[i].existing;
    }
    assert_int_equal(admitted, 5);
    assert_int_equal(rejected, 75);
    assert_int_equal(query_long("SELECT COUNT(*) FROM calls WHERE call_sid LIKE 'CA-limit-%' AND ended_at IS NULL"), 5);
    /* one row per retried CallSid, and every instance was answered with it */
    assert_int_equal(query_long("SELECT COUNT(*) FROM calls WHERE call_sid LIKE 'CA-retry-%'"), 20);
    for (int i = 0; i < 20; i++)
        for (int k = 1; k < 4; k++)
            assert_string_equal(r[k].sessions[i], r[0].sessions[i]);
    assert_int_equal(query_long("SELECT COUNT(*) FROM calls WHERE idempotency_key IS NOT NULL"), 20);
    assert_int_equal(existing, 60);
}

/* Instances starting together on an empty database: the advisory lock lets one migrate, the
 * others find the work done. */
typedef struct migrator {
    int rc, applied;
} migrator_t;

static void *migrate_one(void *p)
{
    migrator_t *m = p;
    store_t *st;
    char err[256];
    m->rc = -1;
    if (store_open(path, &st, err, sizeof(err)) != 0)
        return NULL;
    m->rc = store_migrate(st, store_migrations_pg, store_migrations_pg_count, &m->applied, err, sizeof(err));
    store_close(st);
    return NULL;
}

static void migrate_together(void **state)
{
    (void)state;
    migrator_t m[4] = {{0}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, migrate_one, &m[i]), 0);
    int applied = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(m[i].rc, 0);
        applied += m[i].applied;
    }
    assert_int_equal(applied, (int)store_migrations_pg_count); /* each once, by whichever came first */
    assert_int_equal(query_long("SELECT COUNT(*) FROM schema_migrations"), (long)store_migrations_pg_count);
}

/* Two instances' status callbacks for one call, at once and out of order: the state machine
 * keeps the latest, whatever order the transactions commit in. */
#define ST_CALLS 100 /* calls whose callbacks race (a lost update showed in 1 of 20 in CI) */
typedef struct statuser {
    int reverse, applied, errors;
} statuser_t;

static void *send_statuses(void *p)
{
    statuser_t *u = p;
    store_t *st;
    char err[256];
    if (store_open(path, &st, err, sizeof(err)) != 0) {
        u->errors++;
        return NULL;
    }
    static const char *const words[] = {"ringing", "in-progress", "completed"};
    for (int round = 0; round < ST_CALLS; round++) {
        char sid[32];
        snprintf(sid, sizeof(sid), "CA-st-%d", round);
        for (int k = 0; k < 3; k++) {
            int i = u->reverse ? 2 - k : k;
            store_status_t in = {
                .call_sid = sid, .status = words[i], .seq = i + 1, .duration_s = i == 2 ? 42 : -1, .sip_code = -1};
            int applied = 0;
            if (store_call_status(st, &in, &applied) != 0)
                u->errors++;
            u->applied += applied;
        }
    }
    store_close(st);
    return NULL;
}

static void status_across_instances(void **state)
{
    (void)state;
    store_t *st = open_migrated();
    for (int round = 0; round < ST_CALLS; round++) {
        char sid[32], sess[32];
        snprintf(sid, sizeof(sid), "CA-st-%d", round);
        snprintf(sess, sizeof(sess), "s-st-%d", round);
        store_inbound_t in = {sess, 1, sid, "+1", "+2", "queued", 0, NULL};
        store_call_t c;
        int created, rejected;
        assert_int_equal(store_call_start_inbound(st, &in, &c, &created, &rejected), 0);
    }
    store_close(st);
    statuser_t u[4] = {{0}, {.reverse = 1}, {0}, {.reverse = 1}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, send_statuses, &u[i]), 0);
    int applied = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(u[i].errors, 0);
        applied += u[i].applied;
    }
    /* every call ended completed, with the completed callback's duration, never overwritten */
    assert_int_equal(query_long("SELECT COUNT(*) FROM calls WHERE call_sid LIKE 'CA-st-%' AND status = 'completed' "
                                "AND ended_at IS NOT NULL AND duration_s = 42"),
                     ST_CALLS);
    /* each applied step moved a call forward: at most three per call, at least the last */
    assert_true(applied >= ST_CALLS && applied <= 3 * ST_CALLS);
}

/* Attached to a loop: queries go out asynchronously, fibers wait, the loop never blocks. */
typedef struct afib {
    store_t *st;
    int n, ok, done;
} afib_t;

static fiber_pool_t *fpool;
static void *s_current(void *ctx)
{
    return fiber_current(ctx);
}
static void s_suspend(void *ctx)
{
    fiber_suspend(ctx);
}
static void s_resume(void *ctx, void *f)
{
    fiber_resume(ctx, f);
}

static int s_run(void *ctx, void (*fn)(void *arg), void *arg)
{
    return fiber_spawn(ctx, fn, arg);
}
static int log_calls, loop_waits;
static void s_log(void *ctx, const char *op, const char *err)
{
    (void)ctx, (void)err;
    if (strcmp(op, "loop_wait") == 0)
        loop_waits++;
    else
        log_calls++;
}

/* Inside store_defer_writes() a fiber's writes queue (it is not suspended by them) while its
 * reads still wait; the depth is the fiber's own across that wait. stage says where the fiber
 * is; a loop callback that ever sees it at a write (1 or 3) caught the fiber suspended there. */
typedef struct forced {
    store_t *st;
    long call_id;
    int stage, seen_in_write, read_ok;
} forced_t;

static void forced_fiber(void *p)
{
    forced_t *f = p;
    store_defer_writes(f->st, 1);
    f->stage = 1;
    for (int i = 0; i < 3; i++)
        store_call_event(f->st, f->call_id, "test.forced", NULL);
    f->stage = 2;
    store_call_t c;
    f->read_ok = store_call_by_sid(f->st, "CA-fib-8", &c) == 0; /* a read: it waits */
    f->stage = 3;
    store_call_event(f->st, f->call_id, "test.forced", NULL); /* queued again: the depth came back */
    f->stage = 4;
    store_defer_writes(f->st, 0);
    store_release(f->st);
    f->stage = 5;
}

/* store_after_queued's callback: what of the writes before it is in the database by then. */
typedef struct after {
    store_t *st;
    long call_id;
    int ran, seen;
} after_t;

static void after_writes(void *p)
{
    after_t *a = p;
    char sql[256]; /* 160 cut the query once call ids had two digits (a CI run) */
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT COUNT(*) FROM call_events WHERE call_id = %ld AND type = 'test.order') + "
             "(SELECT COUNT(*) FROM transcripts WHERE call_id = %ld AND text = 'queued')",
             a->call_id, a->call_id);
    a->seen = (int)query_long(sql); /* its own connection: blocking is fine in a test */
    a->ran++;
}

static void forced_watch(uv_prepare_t *h)
{
    forced_t *f = h->data;
    if (f->stage == 1 || f->stage == 3)
        f->seen_in_write++;
}

static void fiber_call(void *p)
{
    afib_t *a = p;
    int n = a->n++;
    char sid[32], sess[32];
    snprintf(sid, sizeof(sid), "CA-fib-%d", n);
    snprintf(sess, sizeof(sess), "s-fib-%d", n);
    store_inbound_t in = {sess, 1, sid, "+1", "+2", NULL, 0, "{}"};
    store_call_t c;
    int created, rejected, applied;
    store_status_t stt = {.call_sid = sid, .status = "in-progress", .seq = 1, .duration_s = -1, .sip_code = -1};
    if (store_call_start_inbound(a->st, &in, &c, &created, &rejected) == 0 && created &&
        store_call_status(a->st, &stt, &applied) == 0 && applied &&
        store_transcript_add(a->st, c.id, "caller", "hello") == 0 && store_call_by_sid(a->st, sid, &c) == 0 &&
        strcmp(c.status, "in-progress") == 0)
        a->ok++;
    store_release(a->st);
    a->done++;
}

static void async_on_a_loop(void **state)
{
    (void)state;
    store_t *st = open_migrated();
    store_close(st);
    uv_loop_t loop;
    uv_loop_init(&loop);
    fpool = fiber_pool_new(FIBER_STACK_DEFAULT, 8);
    char err[256];
    assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
    store_sched_t sc = {
        .current = s_current, .suspend = s_suspend, .resume = s_resume, .run = s_run, .log = s_log, .ctx = fpool};
    assert_int_equal(store_attach(st, &loop, &sc, 4), 0);
    afib_t a = {.st = st};
    for (int i = 0; i < 50; i++)
        assert_int_equal(fiber_run(fpool, fiber_call, &a), 0);
    fiber_stats_t fs;
    fiber_stats(fpool, &fs);
    assert_true(fs.suspended > 1); /* they all wait at once, on the loop, not in turn */
    assert_int_equal(a.done, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.done, 50);
    assert_int_equal(a.ok, 50);
    fiber_stats(fpool, &fs);
    assert_int_equal(fs.suspended, 0);
    assert_true(fs.peak_suspended >= 4);

    /* write-only calls off a fiber (the AI's transcripts, ARI events) queue and return at once;
     * one fiber writes them in order */
    store_call_t c;
    assert_int_equal(store_call_by_sid(st, "CA-fib-7", &c), 0); /* a read off a fiber: waits in poll(2) */
    for (int i = 0; i < 30; i++) {
        char detail[32];
        snprintf(detail, sizeof(detail), "{\"n\":%d}", i);
        assert_int_equal(store_call_event(st, c.id, "test.order", detail), 0);
    }
    assert_int_equal(store_transcript_add(st, c.id, "agent", "queued"), 0);
    assert_int_equal(store_call_event(st, 999999, "test.nocall", NULL), 0); /* fails later: logged */
    after_t af = {.st = st, .call_id = c.id};
    assert_int_equal(store_after_queued(st, after_writes, &af), 1); /* runs once those are in */
    assert_int_equal(af.ran, 0);
    assert_true(store_busy(st));
    while (store_busy(st))
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(log_calls, 1);
    assert_int_equal(loop_waits, 1); /* the read off a fiber was reported (once per connection) */
    assert_int_equal(af.ran, 1);
    assert_int_equal(af.seen, 31); /* the 30 events and the transcript were in when it ran */
    assert_int_equal(store_after_queued(st, after_writes, &af), 0); /* nothing queued: go on now */
    assert_int_equal(af.ran, 1);

    forced_t f = {.st = st, .call_id = c.id};
    uv_prepare_t watch;
    uv_prepare_init(&loop, &watch);
    watch.data = &f;
    uv_prepare_start(&watch, forced_watch);
    assert_int_equal(fiber_run(fpool, forced_fiber, &f), 0);
    assert_int_equal(f.stage, 2); /* past its three writes without a wait, now waiting on the read */
    while (f.stage != 5 || store_busy(st))
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&watch, NULL);
    assert_true(f.read_ok);
    assert_int_equal(f.seen_in_write, 0);
    assert_int_equal(loop_waits, 1);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM call_events WHERE call_id = %ld AND type = 'test.forced'", c.id);
    assert_int_equal(query_long(sql), 4);

    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM (SELECT detail, row_number() OVER (ORDER BY id) - 1 AS k FROM call_events "
             "WHERE call_id = %ld AND type = 'test.order') x WHERE x.detail = '{\"n\":' || k || '}'",
             c.id);
    assert_int_equal(query_long(sql), 30); /* every one, in the order written */
    store_close(st);
    uv_run(&loop, UV_RUN_DEFAULT); /* the connections' poll handles close */
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(fiber_pool_free(fpool), 0);
    assert_int_equal(query_long("SELECT COUNT(*) FROM transcripts"), 51);
}

int main(void)
{
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test_setup_teardown(several_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate_together, setup, teardown),
        cmocka_unit_test_setup_teardown(status_across_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(async_on_a_loop, setup, teardown),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrations_apply_once, setup, teardown),
        cmocka_unit_test_setup_teardown(wal_and_busy_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_migration_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(tenant_and_active_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(inbound_calls_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(status_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(live_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(call_platform, setup, teardown),
        cmocka_unit_test_setup_teardown(tenant_platform, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
    /* the same suite on PostgreSQL: SB_PG_URL_FILE names the test cluster's URL */
    const char *file = getenv("SB_PG_URL_FILE");
    FILE *f = file != NULL ? fopen(file, "r") : NULL;
    if (f == NULL) {
        fprintf(stderr, "SB_PG_URL_FILE unset or unreadable: the PostgreSQL pass cannot run\n");
        return 1;
    }
    if (fgets(pg_admin, sizeof(pg_admin), f) == NULL)
        pg_admin[0] = '\0';
    fclose(f);
    pg_admin[strcspn(pg_admin, "\r\n")] = '\0';
    if (!is_pg()) {
        fprintf(stderr, "%s is empty\n", file);
        return 1;
    }
    failed += cmocka_run_group_tests_name("postgresql", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("postgresql, several instances", pg_tests, NULL, NULL);
    return failed;
}
