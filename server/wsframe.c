#include "server/wsframe.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void wsframe_accept(const char *key, size_t key_len, char out[29])
{
    unsigned char sha[SHA_DIGEST_LENGTH], cat[128];
    if (key_len > sizeof(cat) - sizeof(WS_GUID))
        key_len = sizeof(cat) - sizeof(WS_GUID); /* a real key has 24 characters */
    memcpy(cat, key, key_len);
    memcpy(cat + key_len, WS_GUID, sizeof(WS_GUID) - 1);
    SHA1(cat, key_len + sizeof(WS_GUID) - 1, sha);
    EVP_EncodeBlock((unsigned char *)out, sha, sizeof(sha)); /* 28 characters and a NUL */
}

int wsframe_parse(const unsigned char *b, size_t avail, size_t max, int masked, wsframe_t *f)
{
    if (avail < 2)
        return 0;
    int op = b[0] & 0x0f;
    if ((b[0] & 0x70) != 0 || ((b[1] & 0x80) != 0) != (masked != 0) || (op > 2 && op < 8) || op > 10)
        return 1002; /* reserved bits, the wrong masking for the side, a reserved opcode */
    uint64_t len = b[1] & 0x7f;
    size_t head = 2;
    if (len == 126) {
        if (avail < 4)
            return 0;
        len = (uint64_t)b[2] << 8 | b[3];
        head = 4;
    } else if (len == 127) {
        if (avail < 10)
            return 0;
        len = 0;
        for (int i = 2; i < 10; i++)
            len = len << 8 | b[i];
        if (len >> 63)
            return 1002;
        head = 10;
    }
    f->fin = (b[0] & 0x80) != 0;
    if (op >= 8 && (!f->fin || len > 125))
        return 1002;
    if (len > max)
        return 1009; /* refused on its header: nothing of it is buffered */
    if (masked) {
        if (avail < head + 4)
            return 0;
        memcpy(f->mask, b + head, 4);
        head += 4;
    }
    f->opcode = op;
    f->head = head;
    f->len = (size_t)len;
    return 1;
}

size_t wsframe_head(unsigned char *dst, int opcode, size_t len, const unsigned char *mask)
{
    size_t h = 2;
    unsigned char m = mask != NULL ? 0x80 : 0;
    dst[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        dst[1] = (unsigned char)(m | len);
    } else if (len < 65536) {
        dst[1] = m | 126;
        dst[2] = (unsigned char)(len >> 8);
        dst[3] = (unsigned char)len;
        h = 4;
    } else {
        dst[1] = m | 127;
        for (int i = 0; i < 8; i++)
            dst[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    if (mask != NULL) {
        memcpy(dst + h, mask, 4);
        h += 4;
    }
    return h;
}

void wsframe_mask(unsigned char *dst, const unsigned char *src, size_t len, const unsigned char mask[4], size_t off)
{
    unsigned char m[8];
    for (int i = 0; i < 8; i++)
        m[i] = mask[(i + off) & 3];
    uint64_t m8;
    memcpy(&m8, m, 8);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) { /* the mask repeats every 4 bytes, so 8 at a time line up */
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= m8;
        memcpy(dst + i, &v, 8);
    }
    for (; i < len; i++)
        dst[i] = src[i] ^ m[i & 7];
}

int wsframe_reserve(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap > 0 ? *cap : 1024;
    while (n < need)
        n *= 2;
    unsigned char *p = realloc(*buf, n);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}
