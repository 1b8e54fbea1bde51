/* store: WAL, migrations applied once and atomically, default tenant, health probe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/store.h"

static char dir[64], path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sb-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/t.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Reads one integer with a separate connection, as another process would. */
static long query_long(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    long v = sqlite3_step(s) == SQLITE_ROW ? (long)sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void migrations_apply_once(void **state)
{
    (void)state;
    store_t *st;
    char err[256];
    int applied = -1;
    assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
    assert_int_equal(store_schema_version(st), 0);
    assert_int_equal(store_migrate(st, store_migrations, store_migrations_count, &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, (int)store_migrations_count);
    assert_int_equal(store_schema_version(st), store_migrations[store_migrations_count - 1].version);
    assert_int_equal(store_migrate(st, store_migrations, store_migrations_count, &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, 0);
    store_close(st);

    /* a restart: new connection, nothing to apply */
    assert_int_equal(store_open(path, &st, err, sizeof(err)), 0);
    assert_int_equal(store_migrate(st, store_migrations, store_migrations_count, &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, 0);
    store_close(st);
    assert_int_equal(query_long("SELECT COUNT(*) FROM schema_migrations"), (long)store_migrations_count);
    const char *tables[] = {"tenants", "customers", "calls", "call_events", "transcripts", "bookings", "tickets"};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='%s'", tables[i]);
        if (query_long(sql) != 1)
            fail_msg("table %s missing", tables[i]);
    }
}

static void wal_and_busy_timeout(void **state)
{
    (void)state;
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
    assert_int_equal(query_long("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('a','b')"), 0);
    assert_int_equal(query_long("SELECT COUNT(*) FROM sqlite_master"), 0); /* not even schema_migrations */

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
    assert_int_equal(store_migrate(st, store_migrations, store_migrations_count, NULL, err, sizeof(err)), 0);
    assert_int_equal(store_tenant_ensure(st, 7, "default"), 1);
    assert_int_equal(store_tenant_ensure(st, 7, "default"), 0);
    assert_int_equal(store_active_calls(st, &n), 0);
    assert_int_equal(n, 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO calls (session_id, tenant_id, direction) VALUES ('s1', 7, 'inbound');"
                                  "INSERT INTO calls (session_id, tenant_id, direction, ended_at) "
                                  "VALUES ('s2', 7, 'inbound', 'x');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(store_active_calls(st, &n), 0);
    assert_int_equal(n, 1);
    /* the probe reports a broken schema instead of hiding it */
    assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys=OFF; DROP TABLE calls;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_active_calls(st, &n), -1);
    assert_non_null(strstr(store_errmsg(st), "calls"));
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrations_apply_once, setup, teardown),
        cmocka_unit_test_setup_teardown(wal_and_busy_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_migration_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(tenant_and_active_calls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
