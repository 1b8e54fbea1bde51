/*
 * pcm: the audio conversions of the jambonz media leg. jambonz's `listen` verb sends the
 * caller's audio as binary WebSocket frames of 16-bit signed little-endian linear PCM (L16),
 * mono, at 8000 or 16000 Hz, in frames of undocumented size; the bridge works in 20 ms frames
 * of 8 kHz G.711 mu-law. Agent audio comes back as 8 kHz mu-law and goes to jambonz as L16 at
 * the listen rate.
 *
 * G.711 mu-law is table-driven and bit-exact with the classic Sun g711.c (linear2ulaw and
 * ulaw2linear on 16-bit samples, no zero trap): 0 encodes as 0xFF, -1 as 0x7F, and both 0x7F
 * and 0xFF decode to 0.
 *
 * Resampling uses one 43-tap half-band FIR (passband to 3.4 kHz within ±0.01 dB, at least 58 dB
 * down from 4.6 kHz; -6 dB at 4 kHz as any half-band): its low-pass runs before 16 -> 8 kHz
 * decimation and as the interpolator for 8 -> 16 kHz. Its history is kept across calls, so
 * chunk boundaries leave no trace: any split of a stream gives the same output as the whole.
 * Integer arithmetic (Q15), saturating; the filter delays audio by 21 samples at 16 kHz
 * (1.3 ms).
 *
 * Ownership: pure functions, no I/O, no allocation, no global mutable state. pcm_in_t and
 * pcm_out_t are plain caller-owned structs (embed them in the call's state); one per stream
 * and direction, used from one thread. Every pointer argument must be valid for the stated
 * length; the functions keep none of them.
 */
#ifndef SB_PCM_H
#define SB_PCM_H

#include <stddef.h>
#include <stdint.h>

#define PCM_FRAME_SAMPLES 160  /* 20 ms at 8 kHz: one mu-law frame for the bridge */
#define PCM_EODD          (-1) /* odd byte count: not whole 16-bit samples */
#define PCM_IN_HIST       42   /* 16 kHz samples the decimator keeps (its 43 taps less one) */
#define PCM_OUT_HIST      21   /* 8 kHz samples the interpolator keeps */

/* ---- G.711 mu-law ---- */

/* Decode table: code -> linear sample (-32124 .. 32124). */
extern const int16_t pcm_ulaw_to_linear[256];
uint8_t pcm_linear_to_ulaw(int16_t s);
/* samples L16 LE samples (2 * samples bytes) -> samples mu-law bytes. */
void pcm_l16le_to_ulaw(const uint8_t *le, size_t samples, uint8_t *out);
/* n mu-law bytes -> n L16 LE samples (2 * n bytes in out_le). */
void pcm_ulaw_to_l16le(const uint8_t *ulaw, size_t n, uint8_t *out_le);

/* ---- caller audio in: L16 LE at 8 or 16 kHz, any frame size -> 20 ms mu-law frames at 8 kHz ---- */

/* Opaque in spirit (248 bytes): the partial frame and the decimator's history. */
typedef struct pcm_in {
    int16_t hist[PCM_IN_HIST];        /* 16 kHz: the last input samples, oldest first */
    uint8_t frame[PCM_FRAME_SAMPLES]; /* the frame being filled */
    uint16_t fill;                    /* bytes of frame filled */
    uint8_t wide;                     /* 1 at 16 kHz */
    uint8_t odd;                      /* 16 kHz: hist ends with the first sample of a pair */
} pcm_in_t;

/* rate: 8000 or 16000. Returns 0, or -1 for another rate (p is then unusable). Also resets. */
int pcm_in_init(pcm_in_t *p, int rate);

/* ulaw points into the pcm_in_t and is valid only during the call: copy what you keep. The
 * callback must not call pcm_in_push or pcm_in_init on the same pcm_in_t. */
typedef void (*pcm_frame_cb)(void *ctx, const uint8_t ulaw[PCM_FRAME_SAMPLES]);

/* Feeds len bytes of L16 LE (len may be 0). Calls cb once per completed 20 ms frame, in order:
 * at 8 kHz once 160 samples are in, at 16 kHz once 320 are; the rest stays buffered for the next
 * push. Returns the number of frames delivered (at most len / 320 + 1), or PCM_EODD when len is
 * odd: then nothing is consumed and the caller treats the stream as broken. */
int pcm_in_push(pcm_in_t *p, const uint8_t *le, size_t len, pcm_frame_cb cb, void *ctx);

/* ---- agent audio out: mu-law 8 kHz -> L16 LE at 8 or 16 kHz ---- */

/* Opaque in spirit (44 bytes): the interpolator's history. */
typedef struct pcm_out {
    int16_t hist[PCM_OUT_HIST]; /* 16 kHz: the last input samples (8 kHz, decoded), oldest first */
    uint8_t wide;               /* 1 at 16 kHz */
} pcm_out_t;

/* rate: 8000 or 16000. Returns 0, or -1 for another rate (p is then unusable). */
int pcm_out_init(pcm_out_t *p, int rate);
/* Bytes pcm_out_convert writes for n mu-law bytes: 2 * n at 8 kHz, 4 * n at 16 kHz. */
size_t pcm_out_size(const pcm_out_t *p, size_t n);
/* Converts n mu-law bytes into out, which holds pcm_out_size(p, n) bytes; returns that size. */
size_t pcm_out_convert(pcm_out_t *p, const uint8_t *ulaw, size_t n, uint8_t *out);
/* Forgets the history (after a barge-in: no tail of the dropped audio leaks into the next). */
void pcm_out_reset(pcm_out_t *p);

#endif
