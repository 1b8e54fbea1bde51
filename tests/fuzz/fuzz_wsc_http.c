#define _GNU_SOURCE /* memmem */
/*
 * libFuzzer target: the WebSocket client's check of the server's handshake answer
 * (wsc_http_answer), which is remote input. The input is the answer; the expected accept is a
 * fixed one, and the input's first byte may splice it in as the real header, so both the
 * accepting and the refusing paths are reached. Checked: the result is -1 (with a reason that
 * starts "connection failed: "), 0 (only when no blank line ends the head, and the head is
 * within WSC_HTTP_HEAD_MAX), or the head's length, which ends in a blank line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai/wsc_http.h"

#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: " ACCEPT "\r\n";
    char *buf = malloc(size + sizeof(ok));
    if (buf == NULL)
        return 0;
    size_t n = 0;
    if (size > 0 && (data[0] & 1)) { /* a valid start, then the fuzzer's bytes */
        memcpy(buf, ok, sizeof(ok) - 1);
        n = sizeof(ok) - 1;
        data++;
        size--;
    }
    memcpy(buf + n, data, size);
    n += size;
    char why[128] = "";
    long r = wsc_http_answer(buf, n, ACCEPT, why, sizeof(why));
    if (r < 0 && strncmp(why, "connection failed: ", 19) != 0)
        abort();
    if (r == 0 && (n > WSC_HTTP_HEAD_MAX || memmem(buf, n, "\r\n\r\n", 4) != NULL))
        abort();
    if (r > 0 && ((size_t)r > n || r < 4 || memcmp(buf + r - 4, "\r\n\r\n", 4) != 0))
        abort();
    free(buf);
    return 0;
}
