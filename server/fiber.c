/* fiber: see fiber.h. */
#include "server/fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBER_ASAN 1
#endif
#endif
#ifdef FIBER_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

enum { FIBER_RUNNING, FIBER_SUSPENDED, FIBER_READY };

/* Lives at the top of its own mapping: [guard page][stack ... ][fiber_t]. */
struct fiber {
    ucontext_t ctx;
    fiber_pool_t *pool;
    void (*fn)(void *arg);
    void *arg;
    fiber_t *next; /* on the kept list or the ready queue */
    int state;
    void *fake; /* ASan's fake stack (use-after-return frames) while switched away */
};

struct fiber_pool {
    size_t page, map_len, stack_len, keep;
    ucontext_t thread;            /* the thread's stack while a fiber runs */
    fiber_t *current;             /* NULL on the thread's stack */
    fiber_t *done;                /* finished, its stack not handed back yet */
    fiber_t *kept;                /* stacks for reuse */
    fiber_t *ready, **ready_tail; /* resumed from inside a fiber, to run next */
    void *thread_fake;            /* ASan: the thread's fake stack while a fiber runs */
    const void *thread_bottom;    /* ASan: the thread's stack, learnt on entering a fiber */
    size_t thread_size;
    unsigned long started;
    unsigned suspended, nkept, peak;
};

/* ASan must be told of every stack switch, or it takes the other stack's frames for overflows
 * and never frees fake stacks: start before leaving (save NULL when leaving for good, which
 * destroys the fake stack), finish first thing on arrival. */
static void switch_start(void **fake_save, const void *bottom, size_t size)
{
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(fake_save, bottom, size);
#else
    (void)fake_save, (void)bottom, (void)size;
#endif
}

static void switch_finish(void *fake, const void **bottom_old, size_t *size_old)
{
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake, bottom_old, size_old);
#else
    (void)fake, (void)bottom_old, (void)size_old;
#endif
}

static char *stack_of(const fiber_pool_t *p, fiber_t *f)
{
    return (char *)f - p->stack_len;
}

/* getcontext() returns twice as far as the compiler knows: kept apart, nothing can be clobbered. */
__attribute__((noinline)) static int ctx_init(ucontext_t *c)
{
    return getcontext(c);
}

static fiber_t *stack_new(fiber_pool_t *p)
{
    char *base = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    fiber_t *f = (fiber_t *)(base + p->page + p->stack_len);
    if (mprotect(base, p->page, PROT_NONE) != 0 || ctx_init(&f->ctx) != 0) {
        munmap(base, p->map_len);
        return NULL;
    }
    f->pool = p;
    return f;
}

static void stack_free(fiber_pool_t *p, fiber_t *f)
{
#ifdef FIBER_ASAN
    /* A finished fiber's last frames may still be poisoned, and the range will be mapped again. */
    __asan_unpoison_memory_region(stack_of(p, f), p->stack_len);
#endif
    munmap(stack_of(p, f) - p->page, p->map_len);
}

static void stack_put(fiber_pool_t *p, fiber_t *f)
{
    if (p->nkept < p->keep) {
        f->next = p->kept;
        p->kept = f;
        p->nkept++;
    } else {
        stack_free(p, f);
    }
}

/* makecontext passes ints only: the fiber's address comes in two halves. */
static void entry(int hi, int lo)
{
    fiber_t *f = (fiber_t *)(uintptr_t)((uint64_t)(uint32_t)hi << 32 | (uint32_t)lo);
    fiber_pool_t *p = f->pool;
    switch_finish(NULL, &p->thread_bottom, &p->thread_size);
    f->fn(f->arg);
    /* Still on f's stack: run() hands it back once it is off it. */
    p->done = f;
    switch_start(NULL, p->thread_bottom, p->thread_size);
    setcontext(&p->thread);
    abort();
}

/* From the thread's stack: runs f, then whatever it made ready, until all suspended or finished. */
static void run(fiber_pool_t *p, fiber_t *f)
{
    while (f) {
        f->state = FIBER_RUNNING;
        p->current = f;
        switch_start(&p->thread_fake, stack_of(p, f), p->stack_len);
        swapcontext(&p->thread, &f->ctx);
        switch_finish(p->thread_fake, NULL, NULL);
        p->current = NULL;
        if (p->done) {
            stack_put(p, p->done);
            p->done = NULL;
        }
        if ((f = p->ready) && !(p->ready = f->next))
            p->ready_tail = &p->ready;
    }
}

fiber_pool_t *fiber_pool_new(size_t stack_size, size_t keep)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || stack_size > SIZE_MAX / 4)
        return NULL;
    fiber_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    size_t top = (sizeof(fiber_t) + 63) & ~(size_t)63;
    p->page = (size_t)page;
    if (stack_size < 16 * 1024)
        stack_size = 16 * 1024;
    p->map_len = p->page + (stack_size + top + p->page - 1) / p->page * p->page;
    p->stack_len = p->map_len - p->page - top;
    p->keep = keep;
    p->ready_tail = &p->ready;
    return p;
}

int fiber_pool_free(fiber_pool_t *p)
{
    if (!p)
        return 0;
    if (p->suspended || p->current)
        return -1;
    while (p->kept) {
        fiber_t *f = p->kept;
        p->kept = f->next;
        stack_free(p, f);
    }
    free(p);
    return 0;
}

static fiber_t *fiber_new(fiber_pool_t *p, void (*fn)(void *arg), void *arg)
{
    fiber_t *f = p->kept;
    if (f) {
        p->kept = f->next;
        p->nkept--;
    } else if (!(f = stack_new(p))) {
        return NULL;
    }
    f->fn = fn;
    f->arg = arg;
    f->ctx.uc_stack.ss_sp = stack_of(p, f);
    f->ctx.uc_stack.ss_size = p->stack_len;
    f->ctx.uc_link = NULL;
    uint64_t u = (uintptr_t)f;
    makecontext(&f->ctx, (void (*)(void))entry, 2, (int)(uint32_t)(u >> 32), (int)(uint32_t)u);
    p->started++;
    return f;
}

int fiber_run(fiber_pool_t *p, void (*fn)(void *arg), void *arg)
{
    if (p->current) {
        fn(arg);
        return 0;
    }
    fiber_t *f = fiber_new(p, fn, arg);
    if (!f)
        return -1;
    run(p, f);
    return 0;
}

int fiber_spawn(fiber_pool_t *p, void (*fn)(void *arg), void *arg)
{
    if (!p->current)
        return fiber_run(p, fn, arg);
    fiber_t *f = fiber_new(p, fn, arg);
    if (!f)
        return -1;
    f->state = FIBER_READY;
    f->next = NULL;
    *p->ready_tail = f;
    p->ready_tail = &f->next;
    return 0;
}

fiber_t *fiber_current(const fiber_pool_t *p)
{
    return p->current;
}

void fiber_suspend(fiber_pool_t *p)
{
    fiber_t *f = p->current;
    if (!f)
        abort();
    f->state = FIBER_SUSPENDED;
    if (++p->suspended > p->peak)
        p->peak = p->suspended;
    switch_start(&f->fake, p->thread_bottom, p->thread_size);
    swapcontext(&f->ctx, &p->thread);
    switch_finish(f->fake, &p->thread_bottom, &p->thread_size);
}

void fiber_resume(fiber_pool_t *p, fiber_t *f)
{
    if (f->state != FIBER_SUSPENDED)
        abort();
    p->suspended--;
    if (p->current) {
        f->state = FIBER_READY;
        f->next = NULL;
        *p->ready_tail = f;
        p->ready_tail = &f->next;
        return;
    }
    run(p, f);
}

void fiber_stats(const fiber_pool_t *p, fiber_stats_t *out)
{
    out->started = p->started;
    out->suspended = p->suspended;
    out->kept = p->nkept;
    out->peak_suspended = p->peak;
}
