/*
 * wsframe: the WebSocket frame codec (RFC 6455 section 5) shared by the server's sockets
 * (server/ws.c: masked frames in, plain frames out) and the client (ai/wsc.c: the reverse).
 * Pure functions over caller-owned buffers: nothing is allocated, nothing is kept.
 */
#ifndef SB_WSFRAME_H
#define SB_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

#define WSFRAME_HEAD_MAX 14 /* 2 + 8 length bytes + 4 mask bytes */

typedef struct wsframe {
    int fin, opcode;
    size_t head, len; /* header bytes, payload bytes */
    unsigned char mask[4];
} wsframe_t;

/* A frame's header at b: 1 parsed (f set; the payload may not all be there yet), 0 more bytes
 * needed, or the close code to fail with: 1002 not a valid frame from that side (masked must
 * be 1 for frames from a client, 0 for frames from a server; reserved bits or opcodes; a long
 * or fragmented control frame), 1009 a payload over max, decided from the header alone. */
int wsframe_parse(const unsigned char *b, size_t avail, size_t max, int masked, wsframe_t *f);
/* The header of a frame (FIN set) with len payload bytes into dst (WSFRAME_HEAD_MAX bytes);
 * mask NULL for an unmasked frame. Returns the header's length. */
size_t wsframe_head(unsigned char *dst, int opcode, size_t len, const unsigned char *mask);
/* dst[i] = src[i] ^ mask[(i + off) % 4] for len bytes; dst may be src. */
void wsframe_mask(unsigned char *dst, const unsigned char *src, size_t len, const unsigned char mask[4], size_t off);

/* Grows a frame buffer to hold need bytes (doubling, from 1 KiB): 0, or -1 out of memory with
 * the buffer as it was. */
int wsframe_reserve(unsigned char **buf, size_t *cap, size_t need);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2): 28 characters and a
 * NUL into out. */
void wsframe_accept(const char *key, size_t key_len, char out[29]);

#endif
