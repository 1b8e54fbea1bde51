#include "call/wavrec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE          8000
#define WINDOW_BYTES  (WAVREC_WINDOW_MS * 8 * 2) /* two channels, one byte a sample */
#define MULAW_SILENCE 0xFF

struct wavrec {
    FILE *f;
    uint64_t start; /* sample index (per channel) of window[0] */
    uint64_t high;  /* one past the last sample written, per channel */
    uint32_t data_bytes;
    int failed;
    unsigned char window[WINDOW_BYTES];
};

static void put_le(unsigned char *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static int write_header(wavrec_t *w)
{
    unsigned char h[58];
    memcpy(h, "RIFF", 4);
    put_le(h + 4, 50 + w->data_bytes, 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le(h + 16, 18, 4);       /* fmt chunk size: non-PCM formats carry cbSize */
    put_le(h + 20, 7, 2);        /* WAVE_FORMAT_MULAW */
    put_le(h + 22, 2, 2);        /* channels */
    put_le(h + 24, RATE, 4);     /* sample rate */
    put_le(h + 28, RATE * 2, 4); /* byte rate */
    put_le(h + 32, 2, 2);        /* block align */
    put_le(h + 34, 8, 2);        /* bits per sample */
    put_le(h + 36, 0, 2);        /* cbSize */
    memcpy(h + 38, "fact", 4);
    put_le(h + 42, 4, 4);
    put_le(h + 46, w->data_bytes / 2, 4);
    memcpy(h + 50, "data", 4);
    put_le(h + 54, w->data_bytes, 4);
    return fseek(w->f, 0, SEEK_SET) == 0 && fwrite(h, 1, sizeof(h), w->f) == sizeof(h) ? 0 : -1;
}

wavrec_t *wavrec_open(const char *path, char *err, size_t errsz)
{
    wavrec_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    w->f = fopen(path, "wb");
    if (w->f == NULL || write_header(w) != 0) {
        snprintf(err, errsz, "cannot write %s", path);
        if (w->f != NULL)
            fclose(w->f);
        free(w);
        return NULL;
    }
    memset(w->window, MULAW_SILENCE, sizeof(w->window));
    return w;
}

/* Writes the first `samples` of the window to the file and slides it. */
static void flush(wavrec_t *w, uint64_t samples)
{
    size_t bytes = (size_t)samples * 2;
    if (bytes > sizeof(w->window))
        bytes = sizeof(w->window);
    if (fwrite(w->window, 1, bytes, w->f) != bytes)
        w->failed = 1;
    w->data_bytes += (uint32_t)bytes;
    memmove(w->window, w->window + bytes, sizeof(w->window) - bytes);
    memset(w->window + sizeof(w->window) - bytes, MULAW_SILENCE, bytes);
    w->start += bytes / 2;
}

void wavrec_write(wavrec_t *w, int channel, uint64_t at_ms, const unsigned char *mulaw, size_t n)
{
    uint64_t pos = at_ms * 8;
    for (size_t i = 0; i < n; i++, pos++) {
        if (pos < w->start)
            continue; /* older than the window: too late to place */
        while (pos >= w->start + WINDOW_BYTES / 2) {
            /* keep a second of history for the other side to catch up with */
            uint64_t keep = WINDOW_BYTES / 4;
            uint64_t drop = pos - w->start - keep + 1;
            if (drop > (uint64_t)WINDOW_BYTES / 2)
                drop = WINDOW_BYTES / 2;
            flush(w, drop); /* a gap nobody wrote goes to the file as silence */
        }
        w->window[(pos - w->start) * 2 + (size_t)channel] = mulaw[i];
        if (pos + 1 > w->high)
            w->high = pos + 1;
    }
}

int wavrec_close(wavrec_t *w)
{
    if (w->high > w->start)
        flush(w, w->high - w->start);
    int rc = w->failed || write_header(w) != 0 ? -1 : 0;
    if (fclose(w->f) != 0)
        rc = -1;
    free(w);
    return rc;
}
