/*
 * fiber: coroutines with their own stacks, so request logic written synchronously can wait for
 * a database round trip without blocking the worker's loop. Each entry point into request logic
 * runs on a fiber (fiber_run); the store sends its query, notes fiber_current() and calls
 * fiber_suspend(); the loop carries on; the uv_poll callback that sees the result calls
 * fiber_resume(), and the store's call returns on the fiber as if it had blocked.
 *
 * One pool per worker thread, used only from that thread: nothing is shared, nothing locked.
 * Switches are ucontext's swapcontext: a sigprocmask system call each way, which is nearly all
 * of a switch's cost (about 1 us where system calls are slow, as in a VM with PTI).
 *
 * Stacks are mmap'd with a PROT_NONE guard page below, so an overflow faults instead of
 * corrupting memory. Pages are committed when first touched: a FIBER_STACK_DEFAULT stack costs
 * the pages its deepest call used, and a kept stack keeps those. Each stack is two mappings
 * (vm.max_map_count, 65530 by default, bounds how many fibers can exist at once).
 *
 * Lifetime: a fiber exists from fiber_run() until its fn returns; its fiber_t is invalid from
 * then on (the stack is kept for the next fiber or unmapped). Whoever suspends a fiber must see
 * that it is resumed: a fiber never resumed keeps its stack, and fiber_pool_free() refuses.
 * Memory on a fiber's stack (its locals) is gone once fn returns: uv handles and requests a
 * fiber arms belong in memory that outlives it.
 *
 * Misuse aborts (fiber_suspend() outside a fiber, resuming a live fiber that is not suspended):
 * carrying on would run on a stack that is not in the state the caller thinks.
 */
#ifndef SB_FIBER_H
#define SB_FIBER_H

#include <stddef.h>

/* Enough for request logic, libpq and snprintf-sized locals; costs only the pages touched. */
#define FIBER_STACK_DEFAULT (256 * 1024)

typedef struct fiber fiber_t;
typedef struct fiber_pool fiber_pool_t;

/* A pool of fibers for the calling thread. stack_size: usable bytes per stack (at least 16 KiB,
 * rounded up to pages); keep: how many finished fibers' stacks to keep for reuse. NULL on
 * failure. */
fiber_pool_t *fiber_pool_new(size_t stack_size, size_t keep);
/* Frees the pool and its kept stacks: 0, or -1 with nothing freed while a fiber is suspended
 * (or when called from a fiber). NULL is a no-op. */
int fiber_pool_free(fiber_pool_t *p);

/* Runs fn(arg) on a fiber now, from the thread's own stack: returns when fn returns or first
 * suspends. 0, or -1 when no stack could be had (fn did not run). From inside a fiber of this
 * pool fn runs directly on the current fiber (nesting continues synchronously) and 0 is
 * returned once it is done. */
int fiber_run(fiber_pool_t *p, void (*fn)(void *arg), void *arg);

/* As fiber_run(), but from inside a fiber fn gets a fiber of its own, queued: it starts once the
 * current fiber suspends or finishes (as fiber_resume() queues), so the caller is never
 * suspended by it. arg must outlive the caller's frame then. 0, or -1 when no stack. */
int fiber_spawn(fiber_pool_t *p, void (*fn)(void *arg), void *arg);

/* The fiber running now, NULL on the thread's own stack. */
fiber_t *fiber_current(const fiber_pool_t *p);

/* From inside a fiber: gives control back to the thread's stack (whoever called fiber_run() or
 * fiber_resume()). Returns once fiber_resume() is called on this fiber. */
void fiber_suspend(fiber_pool_t *p);

/* Continues suspended fiber f. From the thread's own stack (a loop callback) it runs f now,
 * until f finishes or suspends again. From inside a fiber, f is queued instead and runs once the
 * current fiber suspends or finishes, before control returns to the thread's stack: a fiber can
 * wake another (hand over a connection) without nesting stacks. */
void fiber_resume(fiber_pool_t *p, fiber_t *f);

/* Counters for tests and metrics: fibers started (nested fiber_run() calls not counted),
 * suspended now, stacks kept for reuse, and the most ever suspended at once. */
typedef struct fiber_stats {
    unsigned long started;
    unsigned suspended, kept, peak_suspended;
} fiber_stats_t;
void fiber_stats(const fiber_pool_t *p, fiber_stats_t *out);

#endif
