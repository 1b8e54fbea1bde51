#define _GNU_SOURCE /* memmem */
#include "ai/wsc_http.h"
#include "server/wsframe.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int wsc_http_key(char key[25], char accept[29])
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw)); /* 24 characters and a NUL */
    wsframe_accept(key, 24, accept);
    return 0;
}

size_t wsc_http_request(char *dst, size_t cap, const char *path, const char *host, int port, int default_port,
                        const char *key, const char *extra, size_t extra_len)
{
    int v6 = strchr(host, ':') != NULL;
    char p[16] = "";
    if (port != default_port)
        snprintf(p, sizeof(p), ":%d", port);
    int n = snprintf(dst, cap,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%.*s\r\n",
                     path, v6 ? "[" : "", host, v6 ? "]" : "", p, key, (int)extra_len, extra);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* The value of header `name` in the head (lines after the status line), or NULL; *n its length. */
static const char *header(const char *head, size_t len, const char *name, size_t *n)
{
    size_t k = strlen(name);
    const char *end = head + len, *p = memchr(head, '\n', len);
    while (p != NULL && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > k && p[k] == ':' && strncasecmp(p, name, k) == 0) {
            const char *v = p + k + 1, *e = eol;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *n = (size_t)(e - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

/* Is token one of the comma-separated values in v (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *token)
{
    size_t k = strlen(token);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(v + i, token, k) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + k == n || v[i + k] == ',' || v[i + k] == ' '))
            return 1;
    return 0;
}

static long refuse(char *whybuf, size_t whysz, const char *why)
{
    snprintf(whybuf, whysz, "connection failed: %s", why);
    return -1;
}

long wsc_http_answer(const char *buf, size_t len, const char *accept, char *whybuf, size_t whysz)
{
    const char *eoh = memmem(buf, len, "\r\n\r\n", 4);
    if (eoh == NULL)
        return len > WSC_HTTP_HEAD_MAX ? refuse(whybuf, whysz, "the handshake answer is too large") : 0;
    size_t hlen = (size_t)(eoh - buf) + 2, n;
    int status = 0;
    /* the three digits by hand: the head is not NUL-terminated (sscanf would run past it) */
    for (size_t i = 9; i < 12 && i < hlen && status >= 0; i++)
        status = buf[i] >= '0' && buf[i] <= '9' ? status * 10 + (buf[i] - '0') : -1;
    if (hlen < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0 || status < 0)
        return refuse(whybuf, whysz, "not an HTTP answer");
    if (status != 101) {
        snprintf(whybuf, whysz, "connection failed: HTTP %d", status);
        return -1;
    }
    const char *v = header(buf, hlen, "Upgrade", &n);
    if (v == NULL || !has_token(v, n, "websocket"))
        return refuse(whybuf, whysz, "no Upgrade: websocket");
    v = header(buf, hlen, "Connection", &n);
    if (v == NULL || !has_token(v, n, "upgrade"))
        return refuse(whybuf, whysz, "no Connection: upgrade");
    v = header(buf, hlen, "Sec-WebSocket-Accept", &n);
    if (v == NULL || n != strlen(accept) || memcmp(v, accept, n) != 0)
        return refuse(whybuf, whysz, "wrong Sec-WebSocket-Accept");
    if (header(buf, hlen, "Sec-WebSocket-Extensions", &n) != NULL)
        return refuse(whybuf, whysz, "an extension we did not offer");
    return (long)(hlen + 2);
}
