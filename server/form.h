/*
 * form: parse an application/x-www-form-urlencoded body (or a URL's query string) into an
 * ordered list of decoded key/value pairs.
 *
 * Rules: pairs are separated by '&'; empty segments ("a=1&&b=2", a trailing '&') are skipped;
 * a segment without '=' is a key with an empty value; '+' decodes to a space and %XX to the
 * byte XX. Repeated keys are kept, in body order. Refused with a distinct error: a '%' not
 * followed by two hex digits, more than max_pairs pairs, a decoded key longer than max_key
 * or value longer than max_value bytes, a NUL byte after decoding, an empty key ("=v").
 * Bytes are not checked for UTF-8 validity.
 *
 * Ownership: a parse result is one block holding the form_t, its pairs and every decoded
 * string (each NUL-terminated). form_parse() mallocs that block; release it with form_free().
 * form_parse_buf() builds it inside a caller buffer (e.g. a per-request pool) and allocates
 * nothing; the caller owns the buffer and the result lives as long as the buffer. The input
 * bytes are never modified or referenced after the call.
 */
#ifndef SB_FORM_H
#define SB_FORM_H

#include <stddef.h>

#define FORM_MAX_PAIRS 256
#define FORM_MAX_KEY   256
#define FORM_MAX_VALUE 8192

enum {
    FORM_OK = 0,
    FORM_EESCAPE = -1,   /* '%' not followed by two hex digits */
    FORM_ETOOMANY = -2,  /* more than max_pairs pairs */
    FORM_EKEYLEN = -3,   /* decoded key longer than max_key */
    FORM_EVALUELEN = -4, /* decoded value longer than max_value (or output buffer too small) */
    FORM_ENUL = -5,      /* NUL byte after decoding */
    FORM_EEMPTYKEY = -6, /* "=value" */
    FORM_ENOMEM = -7,
    FORM_EBUFSIZE = -8, /* form_parse_buf: buffer smaller than form_buf_size() */
};

typedef struct form_limits {
    size_t max_pairs; /* FORM_MAX_PAIRS */
    size_t max_key;   /* decoded bytes, FORM_MAX_KEY */
    size_t max_value; /* decoded bytes, FORM_MAX_VALUE */
} form_limits_t;

typedef struct form_pair {
    const char *key; /* decoded, NUL-terminated, never empty */
    const char *value;
    size_t key_len;
    size_t value_len;
} form_pair_t;

typedef struct form {
    size_t count;
    form_pair_t pairs[]; /* in input order; iterate pairs[0..count) */
} form_t;

/* s may be NULL when len is 0. limits: NULL means the FORM_MAX_* defaults. On error *out is NULL. */
int form_parse(const char *s, size_t len, const form_limits_t *limits, form_t **out);
void form_free(form_t *form);

/* A buffer size that always suffices for form_parse_buf() on this input, at any alignment of buf. */
size_t form_buf_size(const char *s, size_t len, const form_limits_t *limits);
int form_parse_buf(void *buf, size_t buf_size, const char *s, size_t len, const form_limits_t *limits, form_t **out);

/*
 * The query of a request target ("/path?a=1#frag" gives "a=1"): the bytes after the first
 * '?' up to '#' or the end, pointing into target. NULL with *qlen 0 when there is no '?'.
 */
const char *form_query(const char *target, size_t len, size_t *qlen);
/* form_parse() of form_query(target); no query gives an empty form. */
int form_parse_query(const char *target, size_t len, const form_limits_t *limits, form_t **out);

/* First value of key, or NULL. form may be NULL (no pairs). */
const char *form_get(const form_t *form, const char *key);
/* Values of key in order: start with *pos = 0, call until NULL. */
const char *form_get_next(const form_t *form, const char *key, size_t *pos);

/*
 * Decodes one component (src, len) with the rules above into dst (dst_size >= 1 bytes,
 * NUL-terminated). Returns FORM_OK with *out_len set, FORM_EESCAPE, FORM_ENUL, or
 * FORM_EVALUELEN when the result does not fit.
 */
int form_unescape(char *dst, size_t dst_size, const char *src, size_t len, size_t *out_len);

/* Static string; never NULL. */
const char *form_strerror(int err);

/*
 * UTF-8 of decoded text (the parser passes any byte but NUL): remote text the server keeps or
 * searches must be UTF-8 (PostgreSQL refuses anything else, jansson too).
 * form_utf8_valid: s[0..len) is valid UTF-8 (RFC 3629: no overlong form, surrogate or code
 * point past U+10FFFF). form_utf8: every key and value of form is; a NULL form is.
 * form_utf8_prefix: the length of the longest prefix of s (len bytes of valid UTF-8) of at most
 * max bytes that does not cut a character in two.
 */
int form_utf8_valid(const char *s, size_t len);

/* The query or form s that did not parse: the key (decoded, NUL-terminated, UTF-8) of the first
 * pair whose value cannot be decoded, and 1; 0 when no one key is to blame (a key that cannot be
 * read, too many pairs, or no bad value). */
int form_bad_key(const char *s, size_t len, char *key, size_t keysz);
int form_utf8(const form_t *form);
size_t form_utf8_prefix(const char *s, size_t len, size_t max);

#endif
