#include "ai/ai.h"

#include <string.h>

const ai_provider_t *ai_provider_get(const char *name)
{
    if (name == NULL)
        return NULL;
    if (strcmp(name, "echo") == 0)
        return &ai_echo_provider;
    if (strcmp(name, "openai") == 0)
        return &ai_openai_provider;
    if (strcmp(name, "elevenlabs") == 0)
        return &ai_elevenlabs_provider;
    return NULL;
}

size_t ai_b64_decoded_len(const char *b64, size_t len)
{
    if (len < 4)
        return 0;
    size_t n = len / 4 * 3;
    if (b64[len - 1] == '=')
        n--;
    if (b64[len - 2] == '=')
        n--;
    return n;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* 1 for the base64 alphabet and '=': checked twice per frame, so a table, no branch per byte */
#define B64_RANGE(a, b) [a... b] = 1
static const unsigned char b64_ok[256] = {
    B64_RANGE('A', 'Z'), B64_RANGE('a', 'z'), B64_RANGE('0', '9'), ['+'] = 1, ['/'] = 1, ['='] = 1,
};

int ai_b64_valid(const char *b64, size_t len)
{
    unsigned ok = 1;
    for (size_t i = 0; i < len; i++)
        ok &= b64_ok[(unsigned char)b64[i]];
    return (int)ok;
}

long ai_b64_decode(const char *b64, size_t len, unsigned char *out, size_t outsz)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        if (b64[i] == '=')
            break;
        int v = b64_value((unsigned char)b64[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == outsz)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}

size_t ai_b64_encode(const unsigned char *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}
