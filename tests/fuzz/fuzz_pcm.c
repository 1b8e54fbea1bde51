/*
 * libFuzzer target: the input after its first byte is both a caller stream (L16 LE for
 * pcm_in_push) and an agent stream (mu-law for pcm_out_convert). Each is fed in chunks whose
 * sizes follow a pattern, odd ones included, and compared with the same stream fed whole:
 * same frames, frames exactly when enough samples are in, odd pushes refused without a trace,
 * outputs of exactly pcm_out_size() bytes (written flush against the end of an allocation, so
 * ASan sees an overrun), a reset out stream equal to a fresh one.
 *   byte 0: bit 0 in rate (16 kHz when set), bit 1 out rate, bits 2..4 the split pattern,
 *   bits 5..7 the seed of the random splits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jambonz/pcm.h"

typedef struct sink {
    uint64_t hash; /* FNV-1a of every frame, in order */
    size_t frames;
    const uint8_t *le; /* 8 kHz: the stream, which the frames must equal once encoded */
} sink_t;

static void on_frame(void *ctx, const uint8_t ulaw[PCM_FRAME_SAMPLES])
{
    sink_t *s = ctx;
    for (size_t i = 0; i < PCM_FRAME_SAMPLES; i++) {
        s->hash = (s->hash ^ ulaw[i]) * 0x100000001B3ull;
        if (s->le != NULL) {
            const uint8_t *p = s->le + 2 * (s->frames * PCM_FRAME_SAMPLES + i);
            if (ulaw[i] != pcm_linear_to_ulaw((int16_t)(uint16_t)(p[0] | p[1] << 8)))
                abort();
        }
    }
    s->frames++;
}

static void on_frame_never(void *ctx, const uint8_t ulaw[PCM_FRAME_SAMPLES])
{
    (void)ctx;
    (void)ulaw;
    abort();
}

/* The next chunk size for pattern `pat`. */
static size_t chunk(unsigned pat, uint32_t *seed)
{
    static const size_t fixed[] = {1, 2, 3, 318, 320, 322, 640};
    if (pat < sizeof fixed / sizeof fixed[0])
        return fixed[pat];
    *seed = *seed * 1664525u + 1013904223u;
    return (*seed >> 16) % 701; /* 0 .. 700, odd and even */
}

static void check_in(int rate, const uint8_t *data, size_t len, unsigned pat, uint32_t seed)
{
    size_t spf = rate == 16000 ? 2 * PCM_FRAME_SAMPLES : PCM_FRAME_SAMPLES;
    sink_t whole = {0xCBF29CE484222325ull, 0, rate == 8000 ? data : NULL}, split = whole;
    pcm_in_t a, b, before;
    if (pcm_in_init(&a, rate) != 0 || pcm_in_init(&b, rate) != 0)
        abort();

    size_t even = len & ~(size_t)1;
    if (len & 1) {
        before = a;
        if (pcm_in_push(&a, data, len, on_frame_never, NULL) != PCM_EODD || memcmp(&a, &before, sizeof a) != 0)
            abort();
    }
    int r = pcm_in_push(&a, data, even, on_frame, &whole);
    if (r < 0 || (size_t)r != whole.frames || whole.frames != even / 2 / spf)
        abort();

    for (size_t off = 0; off < even;) {
        size_t k = chunk(pat, &seed);
        if (k > even - off)
            k = even - off;
        if (k & 1) {
            before = b;
            if (pcm_in_push(&b, data + off, k, on_frame_never, NULL) != PCM_EODD || memcmp(&b, &before, sizeof b) != 0)
                abort();
            k++; /* refused; now with the next byte (off and even are even, so it exists) */
        }
        size_t had = split.frames;
        r = pcm_in_push(&b, data + off, k, on_frame, &split);
        off += k;
        if (r < 0 || (size_t)r != split.frames - had || (size_t)r > k / 320 + 1 || split.frames != off / 2 / spf)
            abort();
    }
    if (split.frames != whole.frames || split.hash != whole.hash)
        abort();
}

/* Converts into the last pcm_out_size() bytes of buf (cap bytes, one allocation), so that
 * writing one byte too many runs into ASan's redzone. */
static const uint8_t *convert(pcm_out_t *p, const uint8_t *ulaw, size_t n, uint8_t *buf, size_t cap)
{
    size_t size = pcm_out_size(p, n);
    if (size > cap || pcm_out_convert(p, ulaw, n, buf + cap - size) != size)
        abort();
    return buf + cap - size;
}

static void check_out(int rate, const uint8_t *data, size_t len, unsigned pat, uint32_t seed)
{
    pcm_out_t a, b;
    size_t per = rate == 16000 ? 4 : 2, size = per * len;
    if (pcm_out_init(&a, rate) != 0 || pcm_out_init(&b, rate) != 0 || pcm_out_size(&a, len) != size)
        abort();
    uint8_t *wbuf = malloc(size + !size), *scratch = malloc(size + !size);
    if (wbuf == NULL || scratch == NULL)
        abort();
    const uint8_t *whole = convert(&a, data, len, wbuf, size);

    /* 8 kHz: the decoded input; 16 kHz: every other sample is the input, 10 samples late */
    for (size_t i = 0; i < len; i++) {
        const uint8_t *o = whole + per * i + (per == 4 ? 2 : 0);
        int16_t v = (int16_t)(uint16_t)(o[0] | o[1] << 8);
        int16_t want = per == 2 ? pcm_ulaw_to_linear[data[i]] : i >= 10 ? pcm_ulaw_to_linear[data[i - 10]] : 0;
        if (v != want)
            abort();
    }

    size_t done = 0, k0 = 0;
    for (size_t off = 0; off < len;) {
        size_t k = chunk(pat, &seed);
        if (k > len - off)
            k = len - off;
        if (off == 0)
            k0 = k;
        if (memcmp(convert(&b, data + off, k, scratch, size), whole + done, per * k) != 0)
            abort();
        done += per * k;
        off += k;
    }
    if (done != size)
        abort();

    /* after a reset the stream starts afresh */
    pcm_out_reset(&b);
    if (memcmp(convert(&b, data, k0, scratch, size), whole, per * k0) != 0)
        abort();
    free(scratch);
    free(wbuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;

    /* G.711 on the same bytes: codes survive a round trip, samples land in their step */
    for (size_t i = 0; i < size; i++)
        if (data[i] != 0x7F && pcm_linear_to_ulaw(pcm_ulaw_to_linear[data[i]]) != data[i])
            abort();
    for (size_t i = 0; i + 1 < size; i += 2) {
        int v = (int16_t)(uint16_t)(data[i] | data[i + 1] << 8);
        uint8_t u = pcm_linear_to_ulaw((int16_t)v);
        int err = pcm_ulaw_to_linear[u] - v, step = 4 << ((~u & 0x70) >> 4);
        if ((v >= -32635 && v <= 32635 && (err > step || err < -step)) || ((v < -32635 || v > 32635) && (u & 0x7F)))
            abort();
    }

    check_in(ctl & 1 ? 16000 : 8000, data, size, (ctl >> 2) & 7, ctl >> 5);
    check_out(ctl & 2 ? 16000 : 8000, data, size, (ctl >> 2) & 7, ctl >> 5);
    return 0;
}
