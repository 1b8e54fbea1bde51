/*
 * The jambonz audio conversions (jambonz/pcm.h) per 20 ms frame: caller audio in (L16 LE at 8
 * and 16 kHz to one mu-law frame) and agent audio out (one mu-law frame to L16 LE at 8 and
 * 16 kHz). The reference, in the same run: base64 of one mu-law frame (ai_b64_encode), which
 * every frame already pays on its way to the AI provider. Thread CPU time per frame, the best
 * of 5 rounds; a speech-like signal (three tones and noise), 20 ms frames as jambonz sends them.
 *   bench_pcm [frames=200000]
 */
#include "ai/ai.h"
#include "jambonz/pcm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SECONDS 1 /* of audio, cycled */
#define FRAMES  (50 * SECONDS)
#define ROUNDS  5

static uint8_t in8[FRAMES][320], in16[FRAMES][640], ulaw[FRAMES][PCM_FRAME_SAMPLES];
static volatile unsigned sink; /* keeps every result observable */

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void on_frame(void *ctx, const uint8_t frame[PCM_FRAME_SAMPLES])
{
    sink += frame[0] + frame[PCM_FRAME_SAMPLES - 1];
}

static void signal_le(uint8_t *out, size_t n, int rate)
{
    uint32_t seed = 1;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / rate;
        seed = seed * 1664525u + 1013904223u;
        double v = 6000 * sin(2 * M_PI * 220 * t) + 3000 * sin(2 * M_PI * 1250 * t) + 1500 * sin(2 * M_PI * 3100 * t) +
                   (double)((int)(seed >> 20) - 2048);
        int16_t s = (int16_t)v;
        out[2 * i] = (uint8_t)s;
        out[2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
    }
}

enum { B64, IN8, IN16, OUT8, OUT16, NPATHS };
static const char *const names[NPATHS] = {
    "base64 of 160 mu-law bytes (ref)", "in   L16  8 kHz -> mu-law", "in   L16 16 kHz -> mu-law",
    "out  mu-law -> L16  8 kHz",        "out  mu-law -> L16 16 kHz",
};

/* ns of CPU per frame for one path over `frames` frames. */
static double run(int path, long frames)
{
    pcm_in_t in;
    pcm_out_t out;
    uint8_t buf[640];
    char b64[4 * ((PCM_FRAME_SAMPLES + 2) / 3)];
    if (pcm_in_init(&in, path == IN16 ? 16000 : 8000) != 0 || pcm_out_init(&out, path == OUT16 ? 16000 : 8000) != 0)
        abort();
    double t0 = cpu_ns();
    for (long i = 0; i < frames; i++) {
        int f = (int)(i % FRAMES);
        switch (path) {
        case B64:
            sink += (unsigned)ai_b64_encode(ulaw[f], PCM_FRAME_SAMPLES, b64) + (unsigned char)b64[7];
            break;
        case IN8:
            sink += (unsigned)pcm_in_push(&in, in8[f], sizeof in8[f], on_frame, NULL);
            break;
        case IN16:
            sink += (unsigned)pcm_in_push(&in, in16[f], sizeof in16[f], on_frame, NULL);
            break;
        default:
            sink += (unsigned)pcm_out_convert(&out, ulaw[f], PCM_FRAME_SAMPLES, buf) + buf[17];
            break;
        }
    }
    return (cpu_ns() - t0) / (double)frames;
}

int main(int argc, char **argv)
{
    long frames = argc > 1 ? atol(argv[1]) : 200000;
    if (frames <= 0) {
        fprintf(stderr, "usage: bench_pcm [frames]\n");
        return 2;
    }
    signal_le(in8[0], FRAMES * 160, 8000);
    signal_le(in16[0], FRAMES * 320, 16000);
    pcm_l16le_to_ulaw(in8[0], FRAMES * PCM_FRAME_SAMPLES, ulaw[0]);

    double best[NPATHS];
    for (int p = 0; p < NPATHS; p++) {
        run(p, frames / 10 + 1); /* warm the caches */
        best[p] = run(p, frames);
        for (int r = 1; r < ROUNDS; r++) {
            double ns = run(p, frames);
            if (ns < best[p])
                best[p] = ns;
        }
    }
    printf("pcm: %ld frames of 20 ms per round, best of %d, thread CPU time\n", frames, ROUNDS);
    printf("  %-34s %10s %10s\n", "path", "ns/frame", "x base64");
    for (int p = 0; p < NPATHS; p++)
        printf("  %-34s %10.1f %10.2f\n", names[p], best[p], best[p] / best[B64]);
    printf("one call at 16 kHz, both directions: %.2f us of CPU per second of audio (%.4f%% of a core)\n",
           (best[IN16] + best[OUT16]) * 50 / 1e3, (best[IN16] + best[OUT16]) * 50 / 1e9 * 100);
    return sink == 0xFFFFFFFFu; /* never: only so the compiler keeps sink */
}
