/*
 * libFuzzer target: the server's WebSocket receive path (server/ws.c), wsframe_parse with
 * masked = 1 on the input as a stream of client frames, each whole frame unmasked in place as
 * ws.c does, with max 64 KiB (the media streams' limit). Checked: results only 0, 1, 1002,
 * 1009; a frame from a client must be masked; head 6, 8 or 14; control frames final and at
 * most 125 bytes; len <= max; unmasking twice gives the bytes back; a prefix shorter than the
 * header needs more bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/wsframe.h"

#define MAX_MSG (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size + 1); /* a copy: unmasking writes, as into h2o's buffer */
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    size_t pos = 0;
    for (;;) {
        wsframe_t f;
        int r = wsframe_parse(buf + pos, size - pos, MAX_MSG, 1, &f);
        if (r != 0 && r != 1 && r != 1002 && r != 1009)
            abort();
        if (r != 1)
            break;
        if ((buf[pos + 1] & 0x80) == 0) /* an unmasked client frame was accepted */
            abort();
        if (f.head != 6 && f.head != 8 && f.head != 14)
            abort();
        if (f.len > MAX_MSG || (f.opcode > 2 && f.opcode < 8) || f.opcode > 10)
            abort();
        if (f.opcode >= 8 && (f.len > 125 || !f.fin))
            abort();
        wsframe_t g;
        if (wsframe_parse(buf + pos, f.head - 1, MAX_MSG, 1, &g) != 0)
            abort();
        if (size - pos < f.head + f.len)
            break; /* the server waits for the rest */
        uint8_t *p = buf + pos + f.head;
        wsframe_mask(p, p, f.len, f.mask, 0);
        wsframe_mask(p, p, f.len, f.mask, 0);
        if (memcmp(p, data + pos + f.head, f.len) != 0)
            abort();
        pos += f.head + f.len;
    }
    free(buf);
    return 0;
}
