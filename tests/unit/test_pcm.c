/*
 * Unit tests for jambonz/pcm: G.711 mu-law against a plain reference for every input, the
 * re-framing of L16 streams split every way, odd lengths, and the resamplers' quality measured
 * with a single-bin DFT. libm is not linked into the unit tests: sin, sqrt and log10 are done here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h> /* INFINITY only */

#include "jambonz/pcm.h"

#define PI 3.14159265358979323846

/* ---- references and helpers ---- */

/* Sun's g711.c linear2ulaw as written there: segment found by search, no table. */
static uint8_t ref_encode(int pcm)
{
    static const int seg_end[8] = {0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF, 0x7FFF};
    int mask, seg;
    if (pcm < 0) {
        pcm = 0x84 - pcm;
        mask = 0x7F;
    } else {
        pcm += 0x84;
        mask = 0xFF;
    }
    for (seg = 0; seg < 8 && pcm > seg_end[seg]; seg++)
        ;
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    return (uint8_t)(((seg << 4) | ((pcm >> (seg + 3)) & 0xF)) ^ mask);
}

/* Sun's ulaw2linear. */
static int ref_decode(uint8_t u)
{
    u = (uint8_t)~u;
    int t = ((u & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return u & 0x80 ? 0x84 - t : t - 0x84;
}

/* sin(2 pi num / den), by Taylor series after exact integer range reduction. */
static double sin_frac(long long num, long long den)
{
    num %= den;
    if (num < 0)
        num += den;
    double x = 2 * PI * (double)num / (double)den;
    if (x > PI)
        x -= 2 * PI;
    double term = x, sum = x;
    for (int k = 1; k < 14; k++) {
        term *= -x * x / ((2 * k) * (2 * k + 1));
        sum += term;
    }
    return sum;
}

static double cos_frac(long long num, long long den)
{
    return sin_frac(4 * num + den, 4 * den);
}

/* 20 log10(r); -inf for 0 (nothing came through). */
static double db(double r)
{
    if (r <= 0)
        return -INFINITY;
    int e = 0;
    while (r >= 2) {
        r /= 2;
        e++;
    }
    while (r < 1) {
        r *= 2;
        e--;
    }
    double y = (r - 1) / (r + 1), t = y, ln = 0;
    for (int k = 1; k < 60; k += 2, t *= y * y)
        ln += 2 * t / k;
    return 20 * (ln + e * 0.69314718055994531) / 2.30258509299404568;
}

/* Amplitude of the f Hz component of x[0..n) at rate fs (one DFT bin; n whole periods). */
static double amplitude(const int16_t *x, size_t n, long f, long fs)
{
    double re = 0, im = 0;
    for (size_t i = 0; i < n; i++) {
        re += x[i] * cos_frac((long long)f * (long long)i, fs);
        im += x[i] * sin_frac((long long)f * (long long)i, fs);
    }
    double a2 = re * re + im * im, a = a2 / (double)n;
    /* sqrt(a2) * 2 / n by Newton, to stay off libm */
    if (a2 == 0)
        return 0;
    for (int i = 0; i < 100; i++)
        a = (a + a2 / a) / 2;
    return 2 * a / (double)n;
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void put_le(uint8_t *p, int16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)((uint16_t)v >> 8);
}

static int16_t get_le(const uint8_t *p)
{
    return (int16_t)(uint16_t)(p[0] | p[1] << 8);
}

/* n samples of amp * sin(2 pi f t) at rate fs, as L16 LE. */
static void sine_le(uint8_t *out, size_t n, long f, long fs, double amp)
{
    for (size_t i = 0; i < n; i++)
        put_le(out + 2 * i, (int16_t)(amp * sin_frac((long long)f * (long long)i, fs)));
}

/* Collects the frames a pcm_in delivers. */
typedef struct sink {
    uint8_t *buf;
    size_t frames, cap;
} sink_t;

static void on_frame(void *ctx, const uint8_t ulaw[PCM_FRAME_SAMPLES])
{
    sink_t *s = ctx;
    if (s->frames >= s->cap)
        fail_msg("more frames than the stream holds");
    memcpy(s->buf + s->frames * PCM_FRAME_SAMPLES, ulaw, PCM_FRAME_SAMPLES);
    s->frames++;
}

static void on_frame_never(void *ctx, const uint8_t ulaw[PCM_FRAME_SAMPLES])
{
    fail_msg("no frame expected");
}

/* Pushes len bytes and checks the return value against the frames the sink saw. */
static int push(pcm_in_t *p, const uint8_t *le, size_t len, sink_t *s)
{
    size_t before = s->frames;
    int r = pcm_in_push(p, le, len, on_frame, s);
    assert_true(r >= 0);
    assert_int_equal((size_t)r, s->frames - before);
    return r;
}

/* ---- G.711 ---- */

static void test_encode_all(void **state)
{
    for (int v = INT16_MIN; v <= INT16_MAX; v++)
        if (pcm_linear_to_ulaw((int16_t)v) != ref_encode(v))
            fail_msg("encode(%d) = 0x%02x, reference 0x%02x", v, pcm_linear_to_ulaw((int16_t)v), ref_encode(v));
    assert_int_equal(pcm_linear_to_ulaw(0), 0xFF);
    assert_int_equal(pcm_linear_to_ulaw(-1), 0x7F);
    assert_int_equal(pcm_linear_to_ulaw(INT16_MAX), 0x80);
    assert_int_equal(pcm_linear_to_ulaw(INT16_MIN), 0x00);
    assert_int_equal(pcm_linear_to_ulaw(1000), 0xCE);
    assert_int_equal(pcm_linear_to_ulaw(-1000), 0x4E);
}

static void test_decode_all(void **state)
{
    for (int c = 0; c < 256; c++)
        if (pcm_ulaw_to_linear[c] != ref_decode((uint8_t)c))
            fail_msg("decode(0x%02x) = %d, reference %d", c, pcm_ulaw_to_linear[c], ref_decode((uint8_t)c));
    assert_int_equal(pcm_ulaw_to_linear[0x00], -32124);
    assert_int_equal(pcm_ulaw_to_linear[0x80], 32124);
    assert_int_equal(pcm_ulaw_to_linear[0xFF], 0);
    assert_int_equal(pcm_ulaw_to_linear[0x7F], 0);
}

static void test_round_trip(void **state)
{
    /* every code but 0x7F (negative zero, which decodes to 0 and encodes as 0xFF) survives */
    for (int c = 0; c < 256; c++)
        assert_int_equal(pcm_linear_to_ulaw(pcm_ulaw_to_linear[c]), c == 0x7F ? 0xFF : c);
    /* a sample decodes to the middle of its step: off by at most half the segment's step */
    for (int v = -32635; v <= 32635; v++) {
        uint8_t u = pcm_linear_to_ulaw((int16_t)v);
        int seg = (~u & 0x70) >> 4, err = abs(pcm_ulaw_to_linear[u] - v);
        if (err > 4 << seg)
            fail_msg("%d -> 0x%02x -> %d: error %d in segment %d", v, u, pcm_ulaw_to_linear[u], err, seg);
    }
}

static void test_bulk(void **state)
{
    uint8_t le[2 * 512], ulaw[512], back[2 * 512];
    uint32_t seed = 7;
    for (size_t i = 0; i < 512; i++)
        put_le(le + 2 * i, (int16_t)lcg(&seed));
    pcm_l16le_to_ulaw(le, 512, ulaw);
    for (size_t i = 0; i < 512; i++)
        assert_int_equal(ulaw[i], pcm_linear_to_ulaw(get_le(le + 2 * i)));
    pcm_ulaw_to_l16le(ulaw, 512, back);
    for (size_t i = 0; i < 512; i++)
        assert_int_equal(get_le(back + 2 * i), pcm_ulaw_to_linear[ulaw[i]]);
    /* little-endian on the wire: 0x80 is 32124 = 0x7D7C */
    uint8_t one = 0x80, two[2];
    pcm_ulaw_to_l16le(&one, 1, two);
    assert_int_equal(two[0], 0x7C);
    assert_int_equal(two[1], 0x7D);
    const uint8_t in[2] = {0x7C, 0x7D};
    pcm_l16le_to_ulaw(in, 1, &one);
    assert_int_equal(one, 0x80);
}

/* ---- in: re-framing ---- */

static void test_rates(void **state)
{
    pcm_in_t in;
    pcm_out_t out;
    const int bad[] = {0, -8000, 8001, 11025, 22050, 32000, 44100, 48000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pcm_in_init(&in, bad[i]), -1);
        assert_int_equal(pcm_out_init(&out, bad[i]), -1);
    }
    assert_int_equal(pcm_in_init(&in, 8000), 0);
    assert_int_equal(pcm_in_init(&in, 16000), 0);
    assert_int_equal(pcm_out_init(&out, 8000), 0);
    assert_int_equal(pcm_out_size(&out, 160), 320);
    assert_int_equal(pcm_out_init(&out, 16000), 0);
    assert_int_equal(pcm_out_size(&out, 160), 640);
    assert_int_equal(pcm_out_size(&out, 0), 0);
    /* small enough to embed in a call */
    assert_true(sizeof(pcm_in_t) <= 256);
    assert_true(sizeof(pcm_out_t) <= 64);
}

#define STREAM_SECONDS 3

/* Feeds the stream in chunks of `size` bytes (0: random even sizes up to 2000) and checks that
 * frames come exactly when enough samples are in, and that they equal `want`. */
static void feed_split(int rate, const uint8_t *le, size_t len, size_t size, const sink_t *want)
{
    size_t spf = rate == 16000 ? 2 * PCM_FRAME_SAMPLES : PCM_FRAME_SAMPLES;
    uint8_t *buf = malloc(want->cap * PCM_FRAME_SAMPLES);
    sink_t s = {buf, 0, want->cap};
    pcm_in_t p;
    uint32_t seed = (uint32_t)size + 1;
    assert_int_equal(pcm_in_init(&p, rate), 0);
    for (size_t off = 0; off < len;) {
        size_t k = size ? size : 2 * (lcg(&seed) % 1001);
        if (k > len - off)
            k = len - off;
        push(&p, le + off, k, &s);
        off += k;
        if (s.frames != off / 2 / spf)
            fail_msg("rate %d, chunks of %zu: %zu frames after %zu bytes", rate, size, s.frames, off);
    }
    assert_int_equal(s.frames, want->frames);
    if (memcmp(buf, want->buf, s.frames * PCM_FRAME_SAMPLES) != 0)
        fail_msg("rate %d, chunks of %zu: frames differ from the whole push", rate, size);
    free(buf);
}

static void reframe(int rate)
{
    size_t n = (size_t)rate * STREAM_SECONDS + 77, len = 2 * n; /* a partial frame at the end */
    uint8_t *le = malloc(len);
    uint32_t seed = 1;
    for (size_t i = 0; i < n; i++)
        put_le(le + 2 * i, (int16_t)(12000 * sin_frac(440 * (long long)i, rate) + (int)(lcg(&seed) % 4001) - 2000));

    size_t cap = 50 * STREAM_SECONDS;
    sink_t whole = {malloc(cap * PCM_FRAME_SAMPLES), 0, cap};
    pcm_in_t p;
    assert_int_equal(pcm_in_init(&p, rate), 0);
    assert_int_equal(push(&p, le, len, &whole), cap);

    const size_t sizes[] = {2, 6, 318, 320, 322, 640, 642, 4000, 65536, 0};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        feed_split(rate, le, len, sizes[i], &whole);

    if (rate == 8000) /* no filter at 8 kHz: the frames are the samples, encoded */
        for (size_t i = 0; i < whole.frames * PCM_FRAME_SAMPLES; i++)
            assert_int_equal(whole.buf[i], pcm_linear_to_ulaw(get_le(le + 2 * i)));
    free(whole.buf);
    free(le);
}

static void test_reframe_8k(void **state)
{
    reframe(8000);
}

static void test_reframe_16k(void **state)
{
    reframe(16000);
}

static void test_odd_length(void **state)
{
    const int rates[] = {8000, 16000};
    for (size_t r = 0; r < 2; r++) {
        uint8_t le[1000], buf[4 * PCM_FRAME_SAMPLES], ref[4 * PCM_FRAME_SAMPLES];
        uint32_t seed = 3;
        for (size_t i = 0; i < sizeof le; i++)
            le[i] = (uint8_t)lcg(&seed);
        pcm_in_t p, before, q;
        sink_t s = {buf, 0, 4}, t = {ref, 0, 4};
        assert_int_equal(pcm_in_init(&p, rates[r]), 0);
        assert_int_equal(pcm_in_push(&p, le, 0, on_frame_never, NULL), 0);
        push(&p, le, 302, &s); /* an odd number of samples at 16 kHz */
        before = p;
        const size_t odd[] = {1, 3, 319, 321, 999};
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
            assert_int_equal(pcm_in_push(&p, le + 302, odd[i], on_frame_never, NULL), PCM_EODD);
            assert_memory_equal(&p, &before, sizeof p);
        }
        /* the refused pushes left no trace */
        push(&p, le + 302, 698, &s);
        assert_int_equal(pcm_in_init(&q, rates[r]), 0);
        push(&q, le, 1000, &t);
        assert_int_equal(s.frames, t.frames);
        assert_memory_equal(buf, ref, s.frames * PCM_FRAME_SAMPLES);
    }
}

static void test_init_resets(void **state)
{
    uint8_t le[2 * 320], buf[PCM_FRAME_SAMPLES], ref[PCM_FRAME_SAMPLES];
    sine_le(le, 320, 700, 16000, 9000);
    pcm_in_t p, q;
    sink_t s = {buf, 0, 1}, t = {ref, 0, 1};
    assert_int_equal(pcm_in_init(&p, 16000), 0);
    push(&p, le, 2 * 301, &s);
    assert_int_equal(s.frames, 0);
    assert_int_equal(pcm_in_init(&p, 16000), 0);
    assert_int_equal(push(&p, le, sizeof le, &s), 1);
    assert_int_equal(pcm_in_init(&q, 16000), 0);
    push(&q, le, sizeof le, &t);
    assert_memory_equal(buf, ref, PCM_FRAME_SAMPLES);
}

static void test_silence(void **state)
{
    uint8_t le[2 * 640] = {0}, buf[4 * PCM_FRAME_SAMPLES];
    const int rates[] = {8000, 16000};
    for (size_t r = 0; r < 2; r++) {
        pcm_in_t p;
        sink_t s = {buf, 0, 4};
        assert_int_equal(pcm_in_init(&p, rates[r]), 0);
        push(&p, le, sizeof le, &s);
        assert_int_equal(s.frames, rates[r] == 8000 ? 4 : 2);
        for (size_t i = 0; i < s.frames * PCM_FRAME_SAMPLES; i++)
            assert_int_equal(buf[i], 0xFF);
    }
}

/* The decimator's worst input (every tap's sample at full scale with its sign) saturates
 * instead of wrapping; UBSan checks the accumulator on the way. */
static void test_in_saturates(void **state)
{
    const int16_t full[2] = {INT16_MAX, INT16_MIN};
    for (int k = 0; k < 2; k++) {
        uint8_t le[2 * 320] = {0}, buf[PCM_FRAME_SAMPLES];
        int a = full[k];
        /* the window of output 21 is samples 1..43, its centre 22; taps at odd offsets alternate
         * in sign from + at +-1 */
        put_le(le + 2 * 22, (int16_t)a);
        for (int j = 0; j < 11; j++) {
            int16_t v = (int16_t)(j % 2 ? (a > 0 ? INT16_MIN : INT16_MAX) : a);
            put_le(le + 2 * (22 - (2 * j + 1)), v);
            put_le(le + 2 * (22 + (2 * j + 1)), v);
        }
        pcm_in_t p;
        sink_t s = {buf, 0, 1};
        assert_int_equal(pcm_in_init(&p, 16000), 0);
        assert_int_equal(push(&p, le, sizeof le, &s), 1);
        assert_int_equal(buf[21], pcm_linear_to_ulaw(full[k]));
    }
    /* full-scale DC stays at full scale */
    uint8_t dc[2 * 640], buf[2 * PCM_FRAME_SAMPLES];
    for (size_t i = 0; i < 640; i++)
        put_le(dc + 2 * i, INT16_MIN);
    pcm_in_t p;
    sink_t s = {buf, 0, 2};
    assert_int_equal(pcm_in_init(&p, 16000), 0);
    push(&p, dc, sizeof dc, &s);
    for (size_t i = PCM_FRAME_SAMPLES; i < 2 * PCM_FRAME_SAMPLES; i++)
        assert_int_equal(buf[i], 0x00);
}

/* ---- resampler quality ---- */

#define SKIP  256  /* output samples left out of the measurement: the filter's start */
#define NMEAS 4096 /* whole periods of every frequency measured */

/* A sine at 16 kHz through the decimator: its f_out component at 8 kHz over its amplitude. */
static double decimated_gain(long f, long f_out, double amp)
{
    size_t frames = (SKIP + NMEAS + PCM_FRAME_SAMPLES - 1) / PCM_FRAME_SAMPLES, n = 2 * PCM_FRAME_SAMPLES * frames;
    uint8_t *le = malloc(2 * n), *buf = malloc(frames * PCM_FRAME_SAMPLES);
    sine_le(le, n, f, 16000, amp);
    pcm_in_t p;
    sink_t s = {buf, 0, frames};
    assert_int_equal(pcm_in_init(&p, 16000), 0);
    push(&p, le, 2 * n, &s);
    assert_true(s.frames * PCM_FRAME_SAMPLES >= SKIP + NMEAS);
    int16_t *y = malloc(NMEAS * sizeof *y);
    for (size_t i = 0; i < NMEAS; i++)
        y[i] = pcm_ulaw_to_linear[buf[SKIP + i]];
    double g = amplitude(y, NMEAS, f_out, 8000) / amp;
    free(y);
    free(buf);
    free(le);
    return g;
}

static void test_decimator_quality(void **state)
{
    double pass1k = db(decimated_gain(1000, 1000, 16000)), pass3k = db(decimated_gain(3000, 3000, 16000));
    /* above 4 kHz: what is left folds back to 8000 - f */
    double stop6k = db(decimated_gain(6000, 2000, 32000)), stop5k = db(decimated_gain(5000, 3000, 32000));
    print_message("16 -> 8 kHz: 1 kHz %+.3f dB, 3 kHz %+.3f dB, 5 kHz %.1f dB, 6 kHz %.1f dB\n", pass1k, pass3k, stop5k,
                  stop6k);
    assert_true(pass1k > -0.5 && pass1k < 0.5);
    assert_true(pass3k > -0.5 && pass3k < 0.5);
    assert_true(stop6k < -40);
    assert_true(stop5k < -40);
}

/* A mu-law sine at 8 kHz through the interpolator: its f_out component at 16 kHz over its
 * amplitude. */
static double interpolated_gain(long f, long f_out, double amp)
{
    size_t n = (SKIP + NMEAS) / 2;
    uint8_t *ulaw = malloc(n), *out = malloc(4 * n);
    for (size_t i = 0; i < n; i++)
        ulaw[i] = pcm_linear_to_ulaw((int16_t)(amp * sin_frac(f * (long long)i, 8000)));
    pcm_out_t p;
    assert_int_equal(pcm_out_init(&p, 16000), 0);
    assert_int_equal(pcm_out_convert(&p, ulaw, n, out), 4 * n);
    int16_t *y = malloc(NMEAS * sizeof *y);
    for (size_t i = 0; i < NMEAS; i++)
        y[i] = get_le(out + 2 * (SKIP + i));
    double g = amplitude(y, NMEAS, f_out, 16000) / amp;
    free(y);
    free(out);
    free(ulaw);
    return g;
}

static void test_interpolator_quality(void **state)
{
    double pass1k = db(interpolated_gain(1000, 1000, 16000)), pass3k = db(interpolated_gain(3000, 3000, 16000));
    double image7k = db(interpolated_gain(1000, 7000, 16000)), image5k = db(interpolated_gain(3000, 5000, 16000));
    print_message("8 -> 16 kHz: 1 kHz %+.3f dB (image at 7 kHz %.1f dB), 3 kHz %+.3f dB (image at 5 kHz %.1f dB)\n",
                  pass1k, image7k, pass3k, image5k);
    assert_true(pass1k > -0.5 && pass1k < 0.5);
    assert_true(pass3k > -0.5 && pass3k < 0.5);
    assert_true(image7k < -40);
    assert_true(image5k < -40);
}

/* ---- out ---- */

static void test_out_narrow(void **state)
{
    uint8_t ulaw[256], out[512];
    for (int c = 0; c < 256; c++)
        ulaw[c] = (uint8_t)c;
    pcm_out_t p;
    assert_int_equal(pcm_out_init(&p, 8000), 0);
    assert_int_equal(pcm_out_convert(&p, ulaw, 256, out), 512);
    for (int c = 0; c < 256; c++)
        assert_int_equal(get_le(out + 2 * c), pcm_ulaw_to_linear[c]);
}

static void test_out_chunks(void **state)
{
    size_t n = 8000;
    uint8_t *ulaw = malloc(n), *whole = malloc(4 * n), *split = malloc(4 * n);
    uint32_t seed = 11;
    for (size_t i = 0; i < n; i++)
        ulaw[i] = (uint8_t)lcg(&seed);
    pcm_out_t p;
    assert_int_equal(pcm_out_init(&p, 16000), 0);
    assert_int_equal(pcm_out_convert(&p, ulaw, n, whole), 4 * n);
    /* every other output sample is an input sample, delayed by the filter */
    for (size_t i = 0; i + 10 < n; i++)
        assert_int_equal(get_le(whole + 4 * (i + 10) + 2), pcm_ulaw_to_linear[ulaw[i]]);
    const size_t sizes[] = {1, 2, 3, 159, 160, 161, 319, 320, 321, 1200, 0};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        assert_int_equal(pcm_out_init(&p, 16000), 0);
        memset(split, 0xAA, 4 * n);
        uint8_t *o = split;
        for (size_t off = 0; off < n;) {
            size_t k = sizes[s] ? sizes[s] : 1 + lcg(&seed) % 1200;
            if (k > n - off)
                k = n - off;
            o += pcm_out_convert(&p, ulaw + off, k, o);
            off += k;
        }
        assert_int_equal(o - split, 4 * n);
        if (memcmp(split, whole, 4 * n) != 0)
            fail_msg("chunks of %zu: output differs from the whole conversion", sizes[s]);
    }
    free(split);
    free(whole);
    free(ulaw);
}

static void test_out_reset(void **state)
{
    uint8_t loud[160], quiet[160], a[640], b[640], fresh[640];
    uint32_t seed = 5;
    for (size_t i = 0; i < 160; i++) {
        loud[i] = (uint8_t)(lcg(&seed) & 0x8F); /* loud codes: segment 7 */
        quiet[i] = 0xFF;
    }
    pcm_out_t kept, reset, p;
    assert_int_equal(pcm_out_init(&kept, 16000), 0);
    assert_int_equal(pcm_out_init(&reset, 16000), 0);
    pcm_out_convert(&kept, loud, 160, a);
    pcm_out_convert(&reset, loud, 160, a);
    pcm_out_reset(&reset);
    /* without the reset the dropped audio's tail leaks into the silence that follows */
    pcm_out_convert(&kept, quiet, 160, a);
    int tail = 0;
    for (size_t i = 0; i < 640; i++)
        tail |= a[i];
    assert_true(tail != 0);
    pcm_out_convert(&reset, quiet, 160, b);
    for (size_t i = 0; i < 640; i++)
        assert_int_equal(b[i], 0);
    /* and a reset stream is a fresh one */
    pcm_out_reset(&reset);
    assert_int_equal(pcm_out_init(&p, 16000), 0);
    pcm_out_convert(&reset, loud, 160, b);
    pcm_out_convert(&p, loud, 160, fresh);
    assert_memory_equal(b, fresh, 640);
}

/* The interpolator's worst input saturates instead of wrapping (UBSan watches the sum). */
static void test_out_saturates(void **state)
{
    for (int k = 0; k < 2; k++) {
        /* x[10 - j] = x[11 + j] = +-A with the sign of tap j, which alternates from + */
        uint8_t ulaw[22], out[88];
        for (int j = 0; j < 11; j++)
            ulaw[10 - j] = ulaw[11 + j] = (uint8_t)((j % 2) ^ k ? 0x00 : 0x80);
        pcm_out_t p;
        assert_int_equal(pcm_out_init(&p, 16000), 0);
        pcm_out_convert(&p, ulaw, 22, out);
        assert_int_equal(get_le(out + 4 * 21), k ? INT16_MIN : INT16_MAX);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_all),
        cmocka_unit_test(test_decode_all),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bulk),
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_reframe_8k),
        cmocka_unit_test(test_reframe_16k),
        cmocka_unit_test(test_odd_length),
        cmocka_unit_test(test_init_resets),
        cmocka_unit_test(test_silence),
        cmocka_unit_test(test_in_saturates),
        cmocka_unit_test(test_decimator_quality),
        cmocka_unit_test(test_interpolator_quality),
        cmocka_unit_test(test_out_narrow),
        cmocka_unit_test(test_out_chunks),
        cmocka_unit_test(test_out_reset),
        cmocka_unit_test(test_out_saturates),
    };
    return cmocka_run_group_tests_name("pcm", tests, NULL, NULL);
}
