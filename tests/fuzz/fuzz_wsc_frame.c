/*
 * libFuzzer target: the WebSocket client's receive path, wsc_frame_parse, on the input as a
 * stream of server frames (parse, skip the frame when it is whole, stop on "more bytes needed"
 * or an error), with max 64 KiB. Checked: results only 0, 1, 1002, 1009, each as an independent
 * reading of RFC 6455 says; head 2, 4 or 10 and the length as the header encodes it; control
 * frames final and at most 125 bytes; len <= max; a prefix shorter than the header needs more
 * bytes and any longer one parses the same. Every whole frame is also written back with
 * wsc_frame_write (into exactly len + 14 bytes) and must unmask to the same payload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai/wsc.h"

#define MAX_MSG (64 * 1024)

/* What RFC 6455 says of a server frame's header at b, written apart from wsc.c. */
static int expected(const uint8_t *b, size_t avail, size_t max, size_t *head, uint64_t *len)
{
    if (avail < 2)
        return 0;
    int fin = b[0] >> 7, rsv = (b[0] >> 4) & 7, op = b[0] & 15, masked = b[1] >> 7, l7 = b[1] & 127;
    int control = op >= 8;
    if (rsv != 0 || masked || !(op == 0 || op == 1 || op == 2 || op == 8 || op == 9 || op == 10))
        return 1002;
    *head = l7 == 127 ? 10 : l7 == 126 ? 4 : 2;
    if (avail < *head)
        return 0;
    *len = l7;
    if (l7 >= 126) {
        *len = 0;
        for (size_t i = 2; i < *head; i++)
            *len = *len << 8 | b[i];
    }
    if (l7 == 127 && (*len >> 63) != 0)
        return 1002;
    if (control && (!fin || *len > 125))
        return 1002;
    if (*len > max)
        return 1009;
    return 1;
}

static void check_write(const wsc_frame_t *f, const uint8_t *payload, uint32_t mask)
{
    uint8_t *dst = malloc(f->len + 14); /* exactly what the interface asks for */
    if (dst == NULL)
        return;
    int op = f->opcode;
    size_t n = wsc_frame_write(dst, op, payload, f->len, mask);
    size_t h = f->len < 126 ? 2 : f->len < 65536 ? 4 : 10;
    if (n != h + 4 + f->len || dst[0] != (0x80 | op) || (dst[1] & 0x80) == 0)
        abort();
    const uint8_t *key = dst + h;
    for (size_t i = 0; i < f->len; i++)
        if ((dst[h + 4 + i] ^ key[i & 3]) != payload[i])
            abort();
    /* without its mask, the frame is a server frame of the same opcode and length */
    dst[1] &= 0x7f;
    memmove(dst + h, dst + h + 4, f->len);
    wsc_frame_t g;
    if (wsc_frame_parse(dst, n - 4, MAX_MSG, &g) != 1 || g.fin != 1 || g.opcode != op || g.head != h || g.len != f->len)
        abort();
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t mask = 0x9e3779b9u ^ (uint32_t)size;
    size_t pos = 0;
    while (pos <= size) {
        const uint8_t *b = data + pos;
        size_t avail = size - pos, want_head = 0;
        uint64_t want_len = 0;
        wsc_frame_t f;
        memset(&f, 0, sizeof(f));
        int r = wsc_frame_parse(b, avail, MAX_MSG, &f);
        if (r != expected(b, avail, MAX_MSG, &want_head, &want_len))
            abort();
        if (r != 1)
            break; /* 0, 1002 or 1009: the client stops here */
        if (f.head != want_head || f.len != want_len)
            abort();
        if (f.head != 2 && f.head != 4 && f.head != 10)
            abort();
        if (f.len > MAX_MSG || f.opcode < 0 || f.opcode > 10 || (f.opcode > 2 && f.opcode < 8))
            abort();
        if (f.opcode >= 8 && (f.len > 125 || !f.fin))
            abort();
        if (f.fin != (b[0] >> 7))
            abort();

        /* fewer bytes than the header: more needed; the whole header or more: the same frame */
        wsc_frame_t g;
        if (wsc_frame_parse(b, f.head - 1, MAX_MSG, &g) != 0)
            abort();
        if (wsc_frame_parse(b, f.head, MAX_MSG, &g) != 1 || g.fin != f.fin || g.opcode != f.opcode ||
            g.head != f.head || g.len != f.len)
            abort();
        /* a max just under the length refuses it, from the header alone */
        if (f.len > 0 && wsc_frame_parse(b, f.head, f.len - 1, &g) != 1009)
            abort();

        if (avail - f.head < f.len)
            break; /* the payload is not all there yet */
        check_write(&f, b + f.head, mask);
        mask = mask * 1664525u + 1013904223u;
        pos += f.head + f.len;
    }
    return 0;
}
