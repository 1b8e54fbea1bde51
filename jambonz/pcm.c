#include "jambonz/pcm.h"

#include <string.h>

/* ---- G.711 mu-law ---- */

#define ULAW_BIAS 0x84
#define ULAW_CLIP 32635 /* the largest magnitude that does not overflow 15 bits once biased */

const int16_t pcm_ulaw_to_linear[256] = {
    -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956, -23932, -22908, -21884, -20860, -19836, -18812,
    -17788, -16764, -15996, -15484, -14972, -14460, -13948, -13436, -12924, -12412, -11900, -11388, -10876, -10364,
    -9852,  -9340,  -8828,  -8316,  -7932,  -7676,  -7420,  -7164,  -6908,  -6652,  -6396,  -6140,  -5884,  -5628,
    -5372,  -5116,  -4860,  -4604,  -4348,  -4092,  -3900,  -3772,  -3644,  -3516,  -3388,  -3260,  -3132,  -3004,
    -2876,  -2748,  -2620,  -2492,  -2364,  -2236,  -2108,  -1980,  -1884,  -1820,  -1756,  -1692,  -1628,  -1564,
    -1500,  -1436,  -1372,  -1308,  -1244,  -1180,  -1116,  -1052,  -988,   -924,   -876,   -844,   -812,   -780,
    -748,   -716,   -684,   -652,   -620,   -588,   -556,   -524,   -492,   -460,   -428,   -396,   -372,   -356,
    -340,   -324,   -308,   -292,   -276,   -260,   -244,   -228,   -212,   -196,   -180,   -164,   -148,   -132,
    -120,   -112,   -104,   -96,    -88,    -80,    -72,    -64,    -56,    -48,    -40,    -32,    -24,    -16,
    -8,     0,      32124,  31100,  30076,  29052,  28028,  27004,  25980,  24956,  23932,  22908,  21884,  20860,
    19836,  18812,  17788,  16764,  15996,  15484,  14972,  14460,  13948,  13436,  12924,  12412,  11900,  11388,
    10876,  10364,  9852,   9340,   8828,   8316,   7932,   7676,   7420,   7164,   6908,   6652,   6396,   6140,
    5884,   5628,   5372,   5116,   4860,   4604,   4348,   4092,   3900,   3772,   3644,   3516,   3388,   3260,
    3132,   3004,   2876,   2748,   2620,   2492,   2364,   2236,   2108,   1980,   1884,   1820,   1756,   1692,
    1628,   1564,   1500,   1436,   1372,   1308,   1244,   1180,   1116,   1052,   988,    924,    876,    844,
    812,    780,    748,    716,    684,    652,    620,    588,    556,    524,    492,    460,    428,    396,
    372,    356,    340,    324,    308,    292,    276,    260,    244,    228,    212,    196,    180,    164,
    148,    132,    120,    112,    104,    96,     88,     80,     72,     64,     56,     48,     40,     32,
    24,     16,     8,      0,
};

/* The segment (exponent) of a biased magnitude, indexed by magnitude >> 7. */
#define R2(v)   v, v
#define R4(v)   R2(v), R2(v)
#define R8(v)   R4(v), R4(v)
#define R16(v)  R8(v), R8(v)
#define R32(v)  R16(v), R16(v)
#define R64(v)  R32(v), R32(v)
#define R128(v) R64(v), R64(v)
static const uint8_t ulaw_exp[256] = {R2(0), R2(1), R4(2), R8(3), R16(4), R32(5), R64(6), R128(7)};

uint8_t pcm_linear_to_ulaw(int16_t s)
{
    int v = s, mask = 0xFF;
    if (v < 0) {
        v = -v; /* int: -32768 is fine */
        mask = 0x7F;
    }
    if (v > ULAW_CLIP)
        v = ULAW_CLIP;
    v += ULAW_BIAS;
    int e = ulaw_exp[v >> 7];
    return (uint8_t)(((e << 4) | ((v >> (e + 3)) & 0x0F)) ^ mask);
}

static int16_t get_le16(const uint8_t *p)
{
    return (int16_t)(uint16_t)(p[0] | p[1] << 8);
}

static void put_le16(uint8_t *p, int16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)((uint16_t)v >> 8);
}

void pcm_l16le_to_ulaw(const uint8_t *le, size_t samples, uint8_t *out)
{
    for (size_t i = 0; i < samples; i++)
        out[i] = pcm_linear_to_ulaw(get_le16(le + 2 * i));
}

void pcm_ulaw_to_l16le(const uint8_t *ulaw, size_t n, uint8_t *out_le)
{
    for (size_t i = 0; i < n; i++)
        put_le16(out_le + 2 * i, pcm_ulaw_to_linear[ulaw[i]]);
}

/* ---- the half-band filter ---- */

/*
 * h[c ± (2j - 1)] for j = 1..HB_K in Q15 (h[c] = 1/2, the other even offsets 0): equiripple
 * (Remez on the half-band's single band), passband edge 3.4 kHz at 16 kHz, designed offline;
 * the unit test measures the response. The taps' magnitudes sum to 18919, so neither
 * accumulator below can leave int32 whatever the input: the decimator's stays within
 * 32768 * (16384 + 2 * 18919) + 2^14 < 1.8e9, the interpolator's within 65536 * 18919 + 2^13.
 */
#define HB_K 11
static const int16_t hb[HB_K] = {10383, -3337, 1861, -1188, 793, -532, 351, -223, 134, -74, 43};

_Static_assert(PCM_IN_HIST == 4 * HB_K - 2, "decimator history is the filter length less one");
_Static_assert(PCM_OUT_HIST == 2 * HB_K - 1, "interpolator history is one phase less one");

#define BLOCK 320 /* input samples filtered per pass, from a stack buffer */

static int16_t sat16(int32_t v)
{
    return v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : (int16_t)v;
}

/* m outputs at 8 kHz into y; output t's 43-sample window at 16 kHz starts at x[2t] (centre
 * x[2t + 21]). A half-band filter's taps other than the centre all fall on even samples, so
 * the window is split into its even and odd samples first: the loops then read contiguously,
 * tap by tap across the outputs, and the compiler vectorises them. */
static void decimate(const int16_t *x, size_t m, int16_t *y)
{
    int16_t xe[BLOCK / 2 + 2 * HB_K], xo[BLOCK / 2 + HB_K];
    int32_t acc[BLOCK / 2];
    for (size_t i = 0; i < m + 2 * HB_K - 1; i++)
        xe[i] = x[2 * i];
    for (size_t i = 0; i < m + HB_K - 1; i++)
        xo[i] = x[2 * i + 1];
    for (size_t t = 0; t < m; t++)
        acc[t] = xo[t + HB_K - 1] * 16384 + (1 << 14);
    for (int j = 0; j < HB_K; j++) {
        const int16_t h = hb[j], *a = xe + HB_K - 1 - j, *b = xe + HB_K + j;
        for (size_t t = 0; t < m; t++)
            acc[t] += h * (a[t] + b[t]);
    }
    for (size_t t = 0; t < m; t++)
        y[t] = sat16(acc[t] >> 15);
}

/* n interpolated samples at 16 kHz into y: y[t] lies halfway between x[t + 10] and x[t + 11]
 * (8 kHz). The taps are doubled (zero stuffing halves the gain), hence the shift by 14. */
static void interpolate(const int16_t *x, size_t n, int16_t *y)
{
    int32_t acc[BLOCK];
    for (size_t t = 0; t < n; t++)
        acc[t] = 1 << 13;
    for (int j = 0; j < HB_K; j++) {
        const int16_t h = hb[j], *a = x + HB_K - 1 - j, *b = x + HB_K + j;
        for (size_t t = 0; t < n; t++)
            acc[t] += h * a[t] + h * b[t];
    }
    for (size_t t = 0; t < n; t++)
        y[t] = sat16(acc[t] >> 14);
}

/* ---- caller audio in ---- */

int pcm_in_init(pcm_in_t *p, int rate)
{
    memset(p, 0, sizeof(*p));
    if (rate != 8000 && rate != 16000)
        return -1;
    p->wide = rate == 16000;
    return 0;
}

/* Delivers the frame once it is full: returns 1 when it did. */
static int frame_done(pcm_in_t *p, pcm_frame_cb cb, void *ctx)
{
    if (p->fill < PCM_FRAME_SAMPLES)
        return 0;
    p->fill = 0;
    cb(ctx, p->frame);
    return 1;
}

static int push_narrow(pcm_in_t *p, const uint8_t *le, size_t n, pcm_frame_cb cb, void *ctx)
{
    int frames = 0;
    while (n > 0) {
        size_t k = PCM_FRAME_SAMPLES - p->fill;
        if (k > n)
            k = n;
        pcm_l16le_to_ulaw(le, k, p->frame + p->fill);
        p->fill = (uint16_t)(p->fill + k);
        le += 2 * k;
        n -= k;
        frames += frame_done(p, cb, ctx);
    }
    return frames;
}

static int push_wide(pcm_in_t *p, const uint8_t *le, size_t n, pcm_frame_cb cb, void *ctx)
{
    int16_t w[PCM_IN_HIST + BLOCK];
    int frames = 0;
    memcpy(w, p->hist, sizeof(p->hist));
    while (n > 0) {
        size_t k = n < BLOCK ? n : BLOCK;
        for (size_t i = 0; i < k; i++)
            w[PCM_IN_HIST + i] = get_le16(le + 2 * i);
        /* an output at each sample that completes a pair; its window ends there */
        size_t first = !p->odd, m = (k + p->odd) / 2;
        int16_t y[BLOCK / 2];
        decimate(w + first, m, y);
        for (size_t t = 0; t < m;) {
            size_t room = PCM_FRAME_SAMPLES - p->fill, c = m - t < room ? m - t : room;
            for (size_t i = 0; i < c; i++)
                p->frame[p->fill + i] = pcm_linear_to_ulaw(y[t + i]);
            p->fill = (uint16_t)(p->fill + c);
            t += c;
            frames += frame_done(p, cb, ctx);
        }
        p->odd = (uint8_t)((p->odd + k) & 1);
        memmove(w, w + k, sizeof(p->hist));
        le += 2 * k;
        n -= k;
    }
    memcpy(p->hist, w, sizeof(p->hist));
    return frames;
}

int pcm_in_push(pcm_in_t *p, const uint8_t *le, size_t len, pcm_frame_cb cb, void *ctx)
{
    if (len & 1)
        return PCM_EODD;
    return p->wide ? push_wide(p, le, len / 2, cb, ctx) : push_narrow(p, le, len / 2, cb, ctx);
}

/* ---- agent audio out ---- */

int pcm_out_init(pcm_out_t *p, int rate)
{
    memset(p, 0, sizeof(*p));
    if (rate != 8000 && rate != 16000)
        return -1;
    p->wide = rate == 16000;
    return 0;
}

size_t pcm_out_size(const pcm_out_t *p, size_t n)
{
    return p->wide ? 4 * n : 2 * n;
}

size_t pcm_out_convert(pcm_out_t *p, const uint8_t *ulaw, size_t n, uint8_t *out)
{
    if (!p->wide) {
        pcm_ulaw_to_l16le(ulaw, n, out);
        return 2 * n;
    }
    int16_t w[PCM_OUT_HIST + BLOCK];
    memcpy(w, p->hist, sizeof(p->hist));
    for (size_t done = 0; done < n;) {
        size_t k = n - done < BLOCK ? n - done : BLOCK;
        for (size_t i = 0; i < k; i++)
            w[PCM_OUT_HIST + i] = pcm_ulaw_to_linear[ulaw[done + i]];
        /* per input sample: the interpolated sample, then the input itself, both delayed */
        int16_t y[BLOCK];
        interpolate(w, k, y);
        for (size_t i = 0; i < k; i++, out += 4) {
            put_le16(out, y[i]);
            put_le16(out + 2, w[i + HB_K]);
        }
        memmove(w, w + k, sizeof(p->hist));
        done += k;
    }
    memcpy(p->hist, w, sizeof(p->hist));
    return 4 * n;
}

void pcm_out_reset(pcm_out_t *p)
{
    memset(p->hist, 0, sizeof(p->hist));
}
