/*
 * wavrec: a call's recording as a stereo WAV (8 kHz mu-law; caller left, agent right),
 * written as the call goes. Samples are placed by stream time, so the two sides line up;
 * a window of WAVREC_WINDOW_MS stays in memory and older audio is flushed to the file.
 * The header carries the real sizes once wavrec_close() has run.
 * wavrec_open() returns a handle the caller ends with wavrec_close() (which frees it).
 */
#ifndef SB_WAVREC_H
#define SB_WAVREC_H

#include <stddef.h>
#include <stdint.h>

#define WAVREC_WINDOW_MS 2000

typedef struct wavrec wavrec_t;

wavrec_t *wavrec_open(const char *path, char *err, size_t errsz);
/* channel 0: caller, 1: agent; at_ms is stream time of the first sample. */
void wavrec_write(wavrec_t *w, int channel, uint64_t at_ms, const unsigned char *mulaw, size_t n);
/* Flushes, writes the final header, closes and frees. 0, or -1 when a write failed. */
int wavrec_close(wavrec_t *w);

#endif
