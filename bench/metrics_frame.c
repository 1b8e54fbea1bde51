/*
 * What the metrics add to one 20 ms frame of a call through an AI, each way: the caller's frame
 * counts media in and a message sent to the AI, the agent's frame a message received and media
 * out (server/metrics.h, inlined; the worker's metrics_t, as on the audio path). The reference,
 * in the same run: the base64 check (ai_b64_valid) every frame already pays, over one frame's
 * 216 characters. Thread CPU time per frame, the best of 5 rounds.
 *   bench_metrics_frame [frames=20000000]
 */
#include "ai/ai.h"
#include "server/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 5

static metrics_t m; /* one worker's */
static volatile int sink;

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* the provider varies as on a worker with mixed tenants, so nothing folds into a constant */
static void frame_metrics(long n)
{
    for (long i = 0; i < n; i++) {
        int ai = AI_OPENAI + (int)(i & 1);
        metrics_media_frame(&m, ai, METRICS_MEDIA_IN);
        metrics_ai_message(&m, ai, METRICS_AI_SENT);
        metrics_ai_message(&m, ai, METRICS_AI_RECEIVED);
        metrics_media_frame(&m, ai, METRICS_MEDIA_OUT);
    }
}

static void frame_b64(long n, const char *b64, size_t len)
{
    int ok = 0;
    for (long i = 0; i < n; i++)
        ok += ai_b64_valid(b64, len - (size_t)(i & 1) * 4);
    sink = ok;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000000;
    unsigned char frame[160];
    char b64[216];
    for (size_t i = 0; i < sizeof(frame); i++)
        frame[i] = (unsigned char)(i * 37 + 11);
    size_t len = ai_b64_encode(frame, sizeof(frame), b64);
    double best_m = 1e30, best_b = 1e30;
    for (int r = 0; r < ROUNDS; r++) { /* interleaved: both see the same machine */
        double t0 = cpu_ns();
        frame_metrics(n);
        double t1 = cpu_ns();
        frame_b64(n / 10, b64, len);
        double t2 = cpu_ns();
        if ((t1 - t0) / n < best_m)
            best_m = (t1 - t0) / n;
        if ((t2 - t1) / (n / 10) < best_b)
            best_b = (t2 - t1) / (n / 10);
    }
    uint64_t check = atomic_load(&m.media_frames[AI_OPENAI][METRICS_MEDIA_IN]);
    printf("metrics per frame, both directions (4 counter adds): %.2f ns\n", best_m);
    printf("reference: base64 check of one frame (216 chars):     %.2f ns\n", best_b);
    printf("ratio metrics / reference: %.3f   (counted %llu frames in)\n", best_m / best_b, (unsigned long long)check);
    return 0;
}
