/*
 * The store's own cost of an inbound call, with no HTTP around it: the tenant lookup and the
 * call row with its call.started event, exactly as POST /twilio/voice does them, grouped into
 * transactions of `batch` calls as the worker's group commit does. Random CallSids, as Twilio's.
 * Prints the thread's CPU time and the wall time per call. A fresh database in a temp dir.
 *   bench_store_inbound [calls=50000] [batch=32]
 */
#include "db/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    int calls = argc > 1 ? atoi(argv[1]) : 50000, batch = argc > 2 ? atoi(argv[2]) : 32;
    if (calls <= 0 || batch <= 0) {
        fprintf(stderr, "usage: bench_store_inbound [calls] [batch]\n");
        return 2;
    }
    char dir[] = "/tmp/sb-bench-store-XXXXXX", path[64], err[256];
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    store_t *st;
    int applied, rc = 1;
    if (store_open(path, &st, err, sizeof(err)) != 0 ||
        store_migrate(st, store_migrations, store_migrations_count, &applied, err, sizeof(err)) != 0) {
        fprintf(stderr, "store: %s\n", err);
        goto out;
    }
    if (store_tenant_ensure(st, 1, "default") < 0) {
        fprintf(stderr, "store: %s\n", store_errmsg(st));
        goto close;
    }
    store_set_batching(st, 1);
    srand(42);
    double cpu0 = clock_us(CLOCK_THREAD_CPUTIME_ID), wall0 = clock_us(CLOCK_MONOTONIC);
    for (int i = 0; i < calls; i++) {
        store_tenant_t tenant;
        char sid[35], session[33];
        snprintf(sid, sizeof(sid), "CA%08x%08x%08x%08x", (unsigned)rand(), (unsigned)rand(), (unsigned)rand(),
                 (unsigned)rand());
        /* time-ordered like ids_session() */
        snprintf(session, sizeof(session), "%012" PRIx64 "%08x%012x", (uint64_t)1700000000000 + (uint64_t)i,
                 (unsigned)rand(), (unsigned)i);
        store_inbound_t in = {session,        1,         sid, "+14155550100",
                              "+14155550199", "ringing", 0,   "{\"from\":\"+14155550100\",\"to\":\"+14155550199\"}"};
        store_call_t call;
        int created, rejected;
        if (store_tenant_for_number(st, "+14155550199", 1, &tenant) != 0 ||
            store_call_start_inbound(st, &in, &call, &created, &rejected) != 0 ||
            ((i + 1) % batch == 0 && store_batch_commit(st) != 0)) {
            fprintf(stderr, "store: %s\n", store_errmsg(st));
            goto close;
        }
    }
    if (store_batch_commit(st) != 0) {
        fprintf(stderr, "store: %s\n", store_errmsg(st));
        goto close;
    }
    double cpu = clock_us(CLOCK_THREAD_CPUTIME_ID) - cpu0, wall = clock_us(CLOCK_MONOTONIC) - wall0;
    printf("store alone: %d inbound calls, %d per commit: %.1f us CPU per call (%.1f us wall)\n", calls, batch,
           cpu / calls, wall / calls);
    rc = 0;
close:
    store_close(st);
out:
    snprintf(err, sizeof(err), "rm -rf %s", dir);
    if (system(err) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
