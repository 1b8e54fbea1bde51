/*
 * wsc_http: the HTTP/1.1 half of the WebSocket client's opening handshake (RFC 6455 section
 * 4.1) for ai/wsc.c, as functions over caller-owned buffers: the key, the request, and the
 * check of the server's answer (remote input: bounded, nothing past len is read).
 */
#ifndef SB_WSC_HTTP_H
#define SB_WSC_HTTP_H

#include <stddef.h>

#define WSC_HTTP_HEAD_MAX 16384 /* the largest answer head we wait for */

/* A new Sec-WebSocket-Key (24 characters) and the Sec-WebSocket-Accept the server must answer
 * (28), NUL-terminated; 0, or -1 when OpenSSL has no random bytes. */
int wsc_http_key(char key[25], char accept[29]);

/* The upgrade request for path on host:port (host without brackets; the port is left out when
 * it is the scheme's default), with the extra header lines ("Name: value\r\n" each) into dst:
 * its length, or 0 when it does not fit in cap. */
size_t wsc_http_request(char *dst, size_t cap, const char *path, const char *host, int port, int default_port,
                        const char *key, const char *extra, size_t extra_len);

/* The server's answer at buf: the bytes of its head (> 0) when it accepts the upgrade with
 * accept; 0 while the head is incomplete (and under WSC_HTTP_HEAD_MAX); -1 when it refuses or
 * is not a valid answer, with why (e.g. "connection failed: HTTP 401") in whybuf. */
long wsc_http_answer(const char *buf, size_t len, const char *accept, char *whybuf, size_t whysz);

#endif
