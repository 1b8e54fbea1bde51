#include "server/ids.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Random bytes drawn from RAND_bytes a block at a time: one call per id cost more than the
 * rest of the id. Per thread, so no lock; every byte is handed out once, then wiped. */
#define RAND_BLOCK 4096

static _Thread_local struct {
    unsigned char *buf; /* RAND_BLOCK bytes, allocated on first use and kept for the thread's life */
    size_t pos;         /* bytes before pos are used up */
} rand_pool;

static void rand_pool_free(void *buf)
{
    OPENSSL_clear_free(buf, RAND_BLOCK);
}

/* One pthread key per process, for the destructor that frees a worker's block when it ends. */
static pthread_key_t rand_key;
static pthread_once_t rand_key_once = PTHREAD_ONCE_INIT;

static void rand_key_create(void)
{
    pthread_key_create(&rand_key, rand_pool_free);
}

/* n random bytes (n at most RAND_BLOCK); 0, or -1 when the generator fails. */
static int rand_take(unsigned char *out, size_t n)
{
    if (rand_pool.buf == NULL) {
        pthread_once(&rand_key_once, rand_key_create);
        if ((rand_pool.buf = OPENSSL_malloc(RAND_BLOCK)) == NULL)
            return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
        pthread_setspecific(rand_key, rand_pool.buf);
        rand_pool.pos = RAND_BLOCK;
    }
    if (RAND_BLOCK - rand_pool.pos < n) {
        if (RAND_bytes(rand_pool.buf, RAND_BLOCK) != 1)
            return RAND_bytes(out, (int)n) == 1 ? 0 : -1; /* the block stays used up */
        rand_pool.pos = 0;
    }
    memcpy(out, rand_pool.buf + rand_pool.pos, n);
    OPENSSL_cleanse(rand_pool.buf + rand_pool.pos, n);
    rand_pool.pos += n;
    return 0;
}

void ids_session(char out[33])
{
    /* 48 bits of milliseconds, then 80 random bits: unguessable, and new rows land on the
     * rightmost page of the session index instead of a random one (fewer pages per commit) */
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        raw[i] = (unsigned char)(ms >> (40 - 8 * i));
    rand_take(raw + 6, 10);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
}
