#include "server/form.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const form_limits_t default_limits = {FORM_MAX_PAIRS, FORM_MAX_KEY, FORM_MAX_VALUE};

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Writes at most max bytes plus a NUL; the caller guarantees room for both. dst NULL: only
 * checks. */
static int decode(char *dst, size_t max, const char *src, size_t len, size_t *out_len, int toolong)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (len - i < 3 || (hi = hexval((unsigned char)src[i + 1])) < 0 ||
                (lo = hexval((unsigned char)src[i + 2])) < 0)
                return FORM_EESCAPE;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0')
            return FORM_ENUL;
        if (n == max)
            return toolong;
        if (dst != NULL)
            dst[n] = (char)c;
        n++;
    }
    if (dst != NULL)
        dst[n] = '\0';
    *out_len = n;
    return FORM_OK;
}

/* Non-empty '&'-separated segments; stops counting past max so garbage is not scanned twice. */
static size_t count_pairs(const char *s, size_t len, size_t max)
{
    size_t n = 0;
    const char *p = s, *end = s + len;
    while (p < end && n <= max) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (amp == NULL)
            return n + 1;
        if (amp != p)
            n++;
        p = amp + 1;
    }
    return n;
}

/*
 * Decoded strings never outgrow their encoded segment plus two NULs, nor the per-pair limits;
 * the smaller bound keeps a huge body from sizing a huge block before the limits reject it.
 */
static size_t block_size(size_t n, size_t len, const form_limits_t *l)
{
    size_t strings = len + 2 * n;
    if (n != 0 && l->max_key <= SIZE_MAX / 2 && l->max_value <= SIZE_MAX / 2 - 2) {
        size_t per = l->max_key + l->max_value + 2;
        if (per <= SIZE_MAX / n && n * per < strings)
            strings = n * per;
    }
    return sizeof(form_t) + n * sizeof(form_pair_t) + strings;
}

static int build(form_t *f, size_t n, const char *s, size_t len, const form_limits_t *l)
{
    char *area = (char *)&f->pairs[n];
    const char *p = s, *end;

    f->count = 0;
    if (len == 0)
        return FORM_OK; /* s may be NULL */
    end = s + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp != NULL ? amp : end;
        if (seg_end != p) {
            const char *eq = memchr(p, '=', (size_t)(seg_end - p));
            const char *key_end = eq != NULL ? eq : seg_end;
            const char *val = eq != NULL ? eq + 1 : seg_end;
            form_pair_t *pair = &f->pairs[f->count];
            int err;
            if (key_end == p)
                return FORM_EEMPTYKEY;
            if ((err = decode(area, l->max_key, p, (size_t)(key_end - p), &pair->key_len, FORM_EKEYLEN)) != 0)
                return err;
            pair->key = area;
            area += pair->key_len + 1;
            if ((err = decode(area, l->max_value, val, (size_t)(seg_end - val), &pair->value_len, FORM_EVALUELEN)) != 0)
                return err;
            pair->value = area;
            area += pair->value_len + 1;
            f->count++;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return FORM_OK;
}

int form_parse(const char *s, size_t len, const form_limits_t *limits, form_t **out)
{
    const form_limits_t *l = limits != NULL ? limits : &default_limits;
    size_t n = len != 0 ? count_pairs(s, len, l->max_pairs) : 0;
    form_t *f;
    int err;

    *out = NULL;
    if (n > l->max_pairs)
        return FORM_ETOOMANY;
    if ((f = malloc(block_size(n, len, l))) == NULL)
        return FORM_ENOMEM;
    if ((err = build(f, n, s, len, l)) != FORM_OK) {
        free(f);
        return err;
    }
    *out = f;
    return FORM_OK;
}

void form_free(form_t *form)
{
    free(form);
}

size_t form_buf_size(const char *s, size_t len, const form_limits_t *limits)
{
    const form_limits_t *l = limits != NULL ? limits : &default_limits;
    size_t n = len != 0 ? count_pairs(s, len, l->max_pairs) : 0;
    if (n > l->max_pairs)
        n = 0; /* parse fails before touching the buffer */
    return block_size(n, len, l) + alignof(form_t) - 1;
}

int form_parse_buf(void *buf, size_t buf_size, const char *s, size_t len, const form_limits_t *limits, form_t **out)
{
    const form_limits_t *l = limits != NULL ? limits : &default_limits;
    size_t n = len != 0 ? count_pairs(s, len, l->max_pairs) : 0;
    size_t pad = (alignof(form_t) - (uintptr_t)buf % alignof(form_t)) % alignof(form_t);
    int err;

    *out = NULL;
    if (n > l->max_pairs)
        return FORM_ETOOMANY;
    if (buf_size < pad || buf_size - pad < block_size(n, len, l))
        return FORM_EBUFSIZE;
    form_t *f = (form_t *)((char *)buf + pad);
    if ((err = build(f, n, s, len, l)) != FORM_OK)
        return err;
    *out = f;
    return FORM_OK;
}

const char *form_query(const char *target, size_t len, size_t *qlen)
{
    const char *q = len != 0 ? memchr(target, '?', len) : NULL;
    const char *hash;

    *qlen = 0;
    if (q == NULL)
        return NULL;
    q++;
    len -= (size_t)(q - target);
    hash = len != 0 ? memchr(q, '#', len) : NULL;
    *qlen = hash != NULL ? (size_t)(hash - q) : len;
    return q;
}

int form_parse_query(const char *target, size_t len, const form_limits_t *limits, form_t **out)
{
    size_t qlen;
    const char *q = form_query(target, len, &qlen);
    return form_parse(q, qlen, limits, out);
}

const char *form_get_next(const form_t *form, const char *key, size_t *pos)
{
    if (form == NULL)
        return NULL;
    for (size_t i = *pos; i < form->count; i++) {
        if (strcmp(form->pairs[i].key, key) == 0) {
            *pos = i + 1;
            return form->pairs[i].value;
        }
    }
    *pos = form->count;
    return NULL;
}

const char *form_get(const form_t *form, const char *key)
{
    size_t pos = 0;
    return form_get_next(form, key, &pos);
}

int form_unescape(char *dst, size_t dst_size, const char *src, size_t len, size_t *out_len)
{
    if (dst_size == 0)
        return FORM_EVALUELEN;
    return decode(dst, dst_size - 1, src, len, out_len, FORM_EVALUELEN);
}

const char *form_strerror(int err)
{
    switch (err) {
    case FORM_OK:
        return "ok";
    case FORM_EESCAPE:
        return "bad percent escape";
    case FORM_ETOOMANY:
        return "too many form fields";
    case FORM_EKEYLEN:
        return "form field name too long";
    case FORM_EVALUELEN:
        return "form field value too long";
    case FORM_ENUL:
        return "NUL byte in form field";
    case FORM_EEMPTYKEY:
        return "empty form field name";
    case FORM_ENOMEM:
        return "out of memory";
    case FORM_EBUFSIZE:
        return "form buffer too small";
    default:
        return "unknown form error";
    }
}

int form_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p++;
        if (c < 0x80)
            continue;
        size_t n;
        unsigned lo = 0x80, hi = 0xbf; /* the range of the byte after the lead */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* past U+10FFFF */
        } else {
            return 0;
        }
        if ((size_t)(end - p) < n || p[0] < lo || p[0] > hi)
            return 0;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        p += n;
    }
    return 1;
}

int form_utf8(const form_t *form)
{
    for (size_t i = 0; form != NULL && i < form->count; i++)
        if (!form_utf8_valid(form->pairs[i].key, form->pairs[i].key_len) ||
            !form_utf8_valid(form->pairs[i].value, form->pairs[i].value_len))
            return 0;
    return 1;
}

size_t form_utf8_prefix(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80) /* s[max] continues a character */
        max--;
    return max;
}

int form_bad_key(const char *s, size_t len, char *key, size_t keysz)
{
    const char *p = s, *end = s + len;
    if (len == 0 || keysz == 0 || count_pairs(s, len, FORM_MAX_PAIRS) > FORM_MAX_PAIRS)
        return 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(seg_end - p));
        const char *key_end = eq != NULL ? eq : seg_end;
        size_t kn, vn;
        if (seg_end != p) {
            if (key_end == p || decode(key, keysz - 1, p, (size_t)(key_end - p), &kn, FORM_EKEYLEN) != FORM_OK)
                return 0; /* the key itself is what cannot be read */
            if (eq != NULL &&
                decode(NULL, FORM_MAX_VALUE, eq + 1, (size_t)(seg_end - eq - 1), &vn, FORM_EVALUELEN) != 0)
                return form_utf8_valid(key, kn);
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return 0;
}
