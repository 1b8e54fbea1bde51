/* fiber: stacks switched on one thread; what runs on a fiber only records, the checks run on the
 * thread's stack (a failed cmocka assert longjmps, which must not cross stacks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <uv.h>

#include "server/fiber.h"

/* A trace of what ran, in order: one letter per step. */
typedef struct trace {
    fiber_pool_t *p;
    fiber_t *f[2];
    char log[64];
    size_t n;
    int bad; /* a check made on a fiber that failed */
} trace_t;

static void mark(trace_t *t, char c)
{
    if (t->n + 1 < sizeof(t->log))
        t->log[t->n++] = c;
}

static void plain(void *arg)
{
    trace_t *t = arg;
    t->f[0] = fiber_current(t->p);
    mark(t, 'r');
}

static void runs_to_completion(void **state)
{
    (void)state;
    trace_t t = {.p = fiber_pool_new(FIBER_STACK_DEFAULT, 4)};
    assert_non_null(t.p);
    assert_null(fiber_current(t.p));
    assert_int_equal(fiber_run(t.p, plain, &t), 0);
    assert_string_equal(t.log, "r");
    assert_non_null(t.f[0]);
    assert_null(fiber_current(t.p));
    fiber_stats_t s;
    fiber_stats(t.p, &s);
    assert_int_equal(s.started, 1);
    assert_int_equal(s.suspended, 0);
    assert_int_equal(s.kept, 1);
    assert_int_equal(fiber_pool_free(t.p), 0);
}

/* Two fibers taking turns; each keeps values in its own frame across the switches. */
static void player(trace_t *t, int who)
{
    volatile int mine[16];
    t->f[who] = fiber_current(t->p);
    for (int i = 0; i < 16; i++)
        mine[i] = who * 1000 + i;
    for (int round = 0; round < 3; round++) {
        mark(t, (char)((who ? 'A' : 'a') + round));
        fiber_suspend(t->p);
        if (fiber_current(t->p) != t->f[who])
            t->bad++;
        for (int i = 0; i < 16; i++)
            if (mine[i] != who * 1000 + i)
                t->bad++;
    }
    mark(t, who ? 'Z' : 'z');
}

static void player0(void *arg)
{
    player(arg, 0);
}

static void player1(void *arg)
{
    player(arg, 1);
}

static void ping_pong(void **state)
{
    (void)state;
    trace_t t = {.p = fiber_pool_new(FIBER_STACK_DEFAULT, 4)};
    assert_int_equal(fiber_run(t.p, player0, &t), 0);
    assert_int_equal(fiber_run(t.p, player1, &t), 0);
    assert_ptr_not_equal(t.f[0], t.f[1]);
    for (int round = 0; round < 3; round++) {
        fiber_resume(t.p, t.f[0]);
        fiber_resume(t.p, t.f[1]);
    }
    assert_string_equal(t.log, "aAbBcCzZ");
    assert_int_equal(t.bad, 0);
    fiber_stats_t s;
    fiber_stats(t.p, &s);
    assert_int_equal(s.started, 2);
    assert_int_equal(s.suspended, 0);
    assert_int_equal(s.peak_suspended, 2);
    assert_int_equal(fiber_pool_free(t.p), 0);
}

#define MANY 500

typedef struct crowd {
    fiber_pool_t *p;
    fiber_t *f[MANY];
    int next, done, bad;
} crowd_t;

static void member(void *arg)
{
    crowd_t *c = arg;
    int me = c->next++;
    c->f[me] = fiber_current(c->p);
    fiber_suspend(c->p);
    if (fiber_current(c->p) != c->f[me])
        c->bad++;
    c->done++;
}

static void many_suspended(void **state)
{
    (void)state;
    crowd_t c = {.p = fiber_pool_new(FIBER_STACK_DEFAULT, 16)};
    for (int i = 0; i < MANY; i++)
        assert_int_equal(fiber_run(c.p, member, &c), 0);
    fiber_stats_t s;
    fiber_stats(c.p, &s);
    assert_int_equal(s.suspended, MANY);
    assert_int_equal(s.peak_suspended, MANY);
    assert_int_equal(s.kept, 0);
    assert_int_equal(c.done, 0);
    for (int i = MANY - 1; i >= 0; i--)
        fiber_resume(c.p, c.f[i]);
    assert_int_equal(c.done, MANY);
    assert_int_equal(c.bad, 0);
    fiber_stats(c.p, &s);
    assert_int_equal(s.suspended, 0);
    assert_int_equal(s.kept, 16);

    /* The next fiber takes a kept stack (the first 16 to finish were kept) instead of a new one. */
    fiber_t *kept[16];
    memcpy(kept, &c.f[MANY - 16], sizeof(kept));
    c.next = 0;
    assert_int_equal(fiber_run(c.p, member, &c), 0);
    int reused = 0;
    for (int i = 0; i < 16; i++)
        reused |= c.f[0] == kept[i];
    assert_true(reused);
    fiber_stats(c.p, &s);
    assert_int_equal(s.kept, 15);
    fiber_resume(c.p, c.f[0]);
    fiber_stats(c.p, &s);
    assert_int_equal(s.started, MANY + 1);
    assert_int_equal(s.kept, 16);
    assert_int_equal(fiber_pool_free(c.p), 0);
}

static void deep(void *arg)
{
    trace_t *t = arg;
    char buf[100 * 1024];
    t->f[0] = fiber_current(t->p);
    volatile char *v = buf;
    for (size_t i = 0; i < sizeof(buf); i++)
        v[i] = (char)(i * 7);
    fiber_suspend(t->p);
    for (size_t i = 0; i < sizeof(buf); i++)
        if (v[i] != (char)(i * 7))
            t->bad++;
    mark(t, 'd');
}

static void large_frame(void **state)
{
    (void)state;
    trace_t t = {.p = fiber_pool_new(256 * 1024, 1)};
    assert_int_equal(fiber_run(t.p, deep, &t), 0);
    fiber_resume(t.p, t.f[0]);
    assert_string_equal(t.log, "d");
    assert_int_equal(t.bad, 0);
    assert_int_equal(fiber_pool_free(t.p), 0);
}

static void inner(void *arg)
{
    trace_t *t = arg;
    if (fiber_current(t->p) != t->f[0])
        t->bad++;
    mark(t, 'i');
    fiber_suspend(t->p); /* suspends the fiber outer runs on */
    mark(t, 'j');
}

static void outer(void *arg)
{
    trace_t *t = arg;
    t->f[0] = fiber_current(t->p);
    mark(t, 'o');
    if (fiber_run(t->p, inner, t) != 0)
        t->bad++;
    mark(t, 'p');
}

static void nested_run(void **state)
{
    (void)state;
    trace_t t = {.p = fiber_pool_new(FIBER_STACK_DEFAULT, 1)};
    assert_int_equal(fiber_run(t.p, outer, &t), 0);
    assert_string_equal(t.log, "oi");
    fiber_resume(t.p, t.f[0]);
    assert_string_equal(t.log, "oijp");
    assert_int_equal(t.bad, 0);
    fiber_stats_t s;
    fiber_stats(t.p, &s);
    assert_int_equal(s.started, 1);
    assert_int_equal(fiber_pool_free(t.p), 0);
}

static void sleeper(void *arg)
{
    trace_t *t = arg;
    t->f[0] = fiber_current(t->p);
    mark(t, 's');
    fiber_suspend(t->p);
    mark(t, 'w');
}

static void free_refuses_while_suspended(void **state)
{
    (void)state;
    trace_t t = {.p = fiber_pool_new(FIBER_STACK_DEFAULT, 0)};
    assert_int_equal(fiber_run(t.p, sleeper, &t), 0);
    assert_int_equal(fiber_pool_free(t.p), -1);
    fiber_resume(t.p, t.f[0]);
    assert_string_equal(t.log, "sw");
    fiber_stats_t s;
    fiber_stats(t.p, &s);
    assert_int_equal(s.kept, 0); /* keep 0: unmapped at once */
    assert_int_equal(fiber_pool_free(t.p), 0);
}

/* A fiber resumed from another runs once that one is done, before fiber_run returns. */
static void waker(void *arg)
{
    trace_t *t = arg;
    mark(t, 'k');
    fiber_resume(t->p, t->f[0]);
    mark(t, 'l');
}

static void resume_from_a_fiber(void **state)
{
    (void)state;
    trace_t t = {.p = fiber_pool_new(FIBER_STACK_DEFAULT, 2)};
    assert_int_equal(fiber_run(t.p, sleeper, &t), 0);
    assert_int_equal(fiber_run(t.p, waker, &t), 0);
    assert_string_equal(t.log, "sklw");
    fiber_stats_t s;
    fiber_stats(t.p, &s);
    assert_int_equal(s.suspended, 0);
    assert_int_equal(s.kept, 2);
    assert_int_equal(fiber_pool_free(t.p), 0);
}

/* The shape the store uses: suspend until a loop callback resumes the fiber. */
typedef struct timed {
    trace_t t;
    uv_loop_t loop;
    uv_timer_t timer; /* off the fiber's stack: it outlives the fiber */
    uint64_t started, woke;
} timed_t;

static void timer_fired(uv_timer_t *h)
{
    timed_t *x = h->data;
    mark(&x->t, 'T');
    if (fiber_current(x->t.p) != NULL)
        x->t.bad++;
    fiber_resume(x->t.p, x->t.f[0]);
    mark(&x->t, 'R');
}

static void waits_for_timer(void *arg)
{
    timed_t *x = arg;
    x->t.f[0] = fiber_current(x->t.p);
    x->started = uv_now(&x->loop);
    if (uv_timer_start(&x->timer, timer_fired, 20, 0) != 0)
        x->t.bad++;
    mark(&x->t, 'S');
    fiber_suspend(x->t.p);
    uv_update_time(&x->loop);
    x->woke = uv_now(&x->loop);
    mark(&x->t, 'F');
}

static void uv_timer_resumes(void **state)
{
    (void)state;
    timed_t x = {.t.p = fiber_pool_new(FIBER_STACK_DEFAULT, 1)};
    assert_int_equal(uv_loop_init(&x.loop), 0);
    assert_int_equal(uv_timer_init(&x.loop, &x.timer), 0);
    x.timer.data = &x;
    assert_int_equal(fiber_run(x.t.p, waits_for_timer, &x), 0);
    assert_string_equal(x.t.log, "S");
    assert_int_equal(uv_run(&x.loop, UV_RUN_DEFAULT), 0);
    assert_string_equal(x.t.log, "STFR");
    assert_int_equal(x.t.bad, 0);
    assert_true(x.woke >= x.started + 20);
    uv_close((uv_handle_t *)&x.timer, NULL);
    assert_int_equal(uv_run(&x.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&x.loop), 0);
    assert_int_equal(fiber_pool_free(x.t.p), 0);
}

/* longjmp within a fiber: ASan clears the abandoned frames' poison only if it knows which stack
 * it is on (the switch annotations); otherwise the next large frame there is a false report. */
typedef struct jumper {
    jmp_buf jb;
    int jump, sum;
} jumper_t;

__attribute__((noinline)) static void touch(volatile char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)i;
}

__attribute__((noinline)) static void dive(jumper_t *j, int d)
{
    volatile char pad[40];
    touch(pad, sizeof(pad));
    if (d == 0 && j->jump)
        longjmp(j->jb, 1);
    if (d > 0)
        dive(j, d - 1);
    j->sum += pad[1];
}

__attribute__((noinline)) static void wide(jumper_t *j)
{
    volatile char big[4096];
    touch(big, sizeof(big));
    j->sum += big[4000];
}

static void jumps(void *arg)
{
    jumper_t *j = arg;
    if (!setjmp(j->jb))
        dive(j, 20);
    wide(j);
}

static void longjmp_inside_fiber(void **state)
{
    (void)state;
    fiber_pool_t *p = fiber_pool_new(64 * 1024, 1);
    jumper_t j = {.jump = 1};
    assert_int_equal(fiber_run(p, jumps, &j), 0);
    assert_int_equal(j.sum, (char)4000);
    assert_int_equal(fiber_pool_free(p), 0);
}

static int recurse(int n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    if (n > 1000000) /* 1 GB down: never reached, the guard page is hit first */
        return n;
    return recurse(n + 1) + pad[0];
}

static void overflow(void *arg)
{
    *(int *)arg = recurse(0);
}

/* A stack overflow hits the guard page: the process dies rather than writing below the stack. */
static void overflow_faults(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);              /* ASan's stack-overflow report is expected, not wanted in the log */
        signal(SIGSEGV, SIG_DFL); /* not cmocka's handler: it would carry on with the tests */
        fiber_pool_t *p = fiber_pool_new(64 * 1024, 0);
        int r = 0;
        fiber_run(p, overflow, &r);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* fiber_spawn from a fiber: the child waits until the parent suspends, on a stack of its own,
 * and the parent is not suspended by it; from the thread's stack it runs at once. */
static void spawned_child(void *arg)
{
    trace_t *t = arg;
    t->f[1] = fiber_current(t->p);
    mark(t, 'c');
}

static void spawning_parent(void *arg)
{
    trace_t *t = arg;
    t->f[0] = fiber_current(t->p);
    mark(t, 'p');
    if (fiber_spawn(t->p, spawned_child, t) != 0)
        t->bad++;
    mark(t, 'q'); /* before the child: it is only queued */
    fiber_suspend(t->p);
    mark(t, 'r');
}

static void spawn_queues(void **state)
{
    (void)state;
    trace_t t = {.p = fiber_pool_new(FIBER_STACK_DEFAULT, 4)};
    assert_non_null(t.p);
    assert_int_equal(fiber_run(t.p, spawning_parent, &t), 0);
    assert_string_equal(t.log, "pqc"); /* the child ran when the parent suspended */
    assert_int_equal(t.bad, 0);
    assert_non_null(t.f[1]);
    assert_ptr_not_equal(t.f[0], t.f[1]);
    fiber_resume(t.p, t.f[0]);
    assert_string_equal(t.log, "pqcr");
    assert_int_equal(fiber_spawn(t.p, spawned_child, &t), 0); /* from the thread: now */
    assert_string_equal(t.log, "pqcrc");
    fiber_stats_t s;
    fiber_stats(t.p, &s);
    assert_int_equal(s.started, 3);
    assert_int_equal(fiber_pool_free(t.p), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_to_completion),   cmocka_unit_test(ping_pong),
        cmocka_unit_test(many_suspended),       cmocka_unit_test(large_frame),
        cmocka_unit_test(nested_run),           cmocka_unit_test(free_refuses_while_suspended),
        cmocka_unit_test(resume_from_a_fiber),  cmocka_unit_test(uv_timer_resumes),
        cmocka_unit_test(longjmp_inside_fiber), cmocka_unit_test(overflow_faults),
        cmocka_unit_test(spawn_queues),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
