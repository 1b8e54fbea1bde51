/*
 * wsc: a WebSocket client on a libuv loop (RFC 6455), TLS through OpenSSL memory BIOs. It is
 * the transport under ai/ai_ws.h (the AI providers and Asterisk's events socket).
 *
 * Made for the audio path: a message queued while no write is in flight goes out at once
 * (uv_try_write: one syscall, no loop turn, no request); messages queued while a write is in
 * flight are gathered into the next write. Frames are masked while they are copied into the
 * write buffer (the only copy), and received frames are handed over where they lie in the read
 * buffer. Nothing is allocated per message once the buffers have grown to the traffic.
 *
 * The owner supplies what to send through ops->peek/pop (wsc frames each message and pops it),
 * and gets what arrives through ops->message: an unfragmented message whole (final 1), a
 * fragmented one piece by piece (final 1 on the last). Control frames are handled here: ping is
 * answered with pong, a close is echoed, a protocol error is answered with close 1002, a frame
 * over max_msg with 1009.
 *
 * Lifetime: wsc_connect() returns the connection or NULL (nothing was made, *why says why).
 * After that, ops->closed is the last call for it, made once its socket and timer are closed,
 * from the loop (never from inside a wsc_ call); the connection is freed right after it. The
 * owner must not use the wsc_t from then on. ops->closed says why a connection ended: NULL
 * after wsc_close() or wsc_abort(), otherwise what happened (a failed connect, a certificate
 * refused, the server's close code and reason, a protocol error).
 *
 * Re-entrancy: the owner may call any wsc_ function from inside its callbacks (except
 * closed). Once wsc_close() or wsc_abort() was called, no message is delivered any more.
 */
#ifndef SB_WSC_H
#define SB_WSC_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct wsc wsc_t;

typedef struct wsc_ops {
    /* Extra request header lines ("Name: value\r\n" each) into dst; bytes written, or -1 to
     * give up the connection. May be NULL. */
    int (*headers)(void *owner, char *dst, size_t cap);
    /* The handshake succeeded; may be NULL. */
    void (*open)(void *owner);
    /* A message, or a piece of a fragmented one (see above). */
    void (*message)(void *owner, const char *data, size_t len, int final);
    /* The next text message to send, or NULL; valid until pop(). */
    const char *(*peek)(void *owner, size_t *len);
    void (*pop)(void *owner);
    /* wsc_timer() went off; may be NULL. */
    void (*timer)(void *owner);
    /* The last call (see above). */
    void (*closed)(void *owner, const char *why);
} wsc_ops_t;

typedef struct wsc_params {
    uv_loop_t *loop;
    const char *address; /* numeric IPv4 or IPv6: the loop never resolves a name */
    const char *host;    /* for Host, SNI and the certificate's name check */
    const char *path;    /* path and query */
    int port;
    SSL_CTX *ssl;          /* NULL: plain TCP; else TLS with this context, the peer verified */
    size_t max_msg;        /* largest frame (and message, for the owner to enforce) accepted */
    unsigned handshake_ms; /* connect, TLS and upgrade must be done by then; 0: 10 s */
    const wsc_ops_t *ops;
    void *owner;
} wsc_params_t;

/* Starts connecting; the params' strings are copied. NULL with *why set when nothing could be
 * started (no callback follows). */
wsc_t *wsc_connect(const wsc_params_t *p, const char **why);
/* Writes what ops->peek() gives, now if no write is in flight (else when it completes). */
void wsc_flush(wsc_t *c);
/* 1 once the handshake is done and until a close began. */
int wsc_open(const wsc_t *c);
/* A polite close: a close frame with code (after what is already being written; queued
 * messages are dropped), then waiting up to grace_ms for the server to end the connection. */
void wsc_close(wsc_t *c, int code, unsigned grace_ms);
/* Ends the connection now, without a close frame. */
void wsc_abort(wsc_t *c);
/* ops->timer after ms (0 stops it); not while closing. */
void wsc_timer(wsc_t *c, uint64_t ms);

/* ---- the frame codec, for tests and fuzzing ---- */

typedef struct wsc_frame {
    int fin, opcode;
    size_t head, len; /* header bytes, payload bytes */
} wsc_frame_t;

/* A server frame's header at buf: 1 parsed (f set; the payload may not all be there yet), 0
 * more bytes needed, or a close code to fail with: 1002 not a valid server frame (masked,
 * reserved bits or opcode, a long or fragmented control frame), 1009 longer than max. */
int wsc_frame_parse(const unsigned char *buf, size_t avail, size_t max, wsc_frame_t *f);
/* A masked client frame (FIN set) of len payload bytes into dst, which holds len + 14; returns
 * its length. */
size_t wsc_frame_write(unsigned char *dst, int opcode, const void *payload, size_t len, uint32_t mask);

#endif
