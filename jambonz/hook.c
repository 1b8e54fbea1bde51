#include "jambonz/hook.h"

#include <jansson.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <string.h>

#define HEX_LEN 64 /* lowercase hex of an HMAC-SHA256 */
#define T_MAX   12 /* digits of a timestamp: enough until the year 33658 */

/* ---- body ---- */

typedef enum { F_SID, F_STR, F_INT } ftype_t;

typedef struct {
    const char *name;
    ftype_t type;
    size_t off, size;
} field_t;

#define FIELD(f, t)                                                                                                    \
    {                                                                                                                  \
#f, t, offsetof(jhook_t, f), sizeof(((jhook_t *)0)->f)                                                         \
    }

/* call_sid first: the one required field. */
static const field_t fields[] = {
    FIELD(call_sid, F_SID),
    FIELD(direction, F_STR),
    FIELD(from, F_STR),
    FIELD(to, F_STR),
    FIELD(caller_name, F_STR),
    FIELD(call_id, F_STR),
    FIELD(call_status, F_STR),
    FIELD(account_sid, F_SID),
    FIELD(application_sid, F_SID),
    FIELD(sip_status, F_INT),
    FIELD(sip_reason, F_STR),
    FIELD(duration, F_INT),
    FIELD(call_termination_by, F_STR),
    FIELD(dial_call_status, F_STR),
    FIELD(dial_sip_status, F_INT),
    FIELD(dial_call_sid, F_SID),
    FIELD(dial_call_duration, F_INT),
    FIELD(digits, F_STR),
    FIELD(refer_status, F_INT),
    FIELD(final_referred_call_status, F_INT),
};

static void reset(jhook_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (fields[i].type == F_INT)
            *(int *)((char *)out + fields[i].off) = -1;
}

static int sid_ok(const char *s, size_t n)
{
    if (n == 0 || n > JHOOK_SID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* jansson has already checked the UTF-8; control characters would reach our logs. */
static int text_ok(const char *s, size_t n, size_t size)
{
    if (n >= size)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* 0..INT_MAX as a JSON integer or a string of 1..9 digits; -1 otherwise. */
static int int_value(const json_t *v)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        return n >= 0 && n <= INT_MAX ? (int)n : -1;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        int r = 0;
        if (n == 0 || n > 9)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return -1;
            r = r * 10 + (s[i] - '0');
        }
        return r;
    }
    return -1;
}

/* 0, or -1 when the value does not fit the field. */
static int take(const field_t *f, const json_t *v, jhook_t *out)
{
    char *dst = (char *)out + f->off;
    if (f->type == F_INT) {
        int n = int_value(v);
        if (n < 0)
            return -1;
        *(int *)dst = n;
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (f->type == F_SID ? !sid_ok(s, n) : !text_ok(s, n, f->size))
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

int jhook_parse(const char *body, size_t len, jhook_t *out, const char **bad_field)
{
    const char *bad = NULL;
    json_t *root = NULL;
    int err = JHOOK_OK;

    reset(out);
    if (len > JHOOK_BODY_MAX) {
        err = JHOOK_ETOOBIG;
    } else if (body == NULL || (root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL)) == NULL) {
        err = JHOOK_EJSON;
    } else if (!json_is_object(root)) {
        err = JHOOK_EOBJECT;
    } else {
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]) && err == JHOOK_OK; i++) {
            const json_t *v = json_object_get(root, fields[i].name);
            if (v == NULL || json_is_null(v)) {
                if (i == 0)
                    err = JHOOK_EMISSING;
            } else if (take(&fields[i], v, out) != 0) {
                err = JHOOK_EFIELD;
            }
            if (err != JHOOK_OK)
                bad = fields[i].name;
        }
    }
    json_decref(root);
    if (err != JHOOK_OK)
        reset(out);
    if (bad_field != NULL)
        *bad_field = bad;
    return err;
}

const char *jhook_strerror(int err)
{
    switch (err) {
    case JHOOK_OK:
        return "ok";
    case JHOOK_EJSON:
        return "body is not valid JSON";
    case JHOOK_EOBJECT:
        return "body is not a JSON object";
    case JHOOK_EMISSING:
        return "required field missing";
    case JHOOK_EFIELD:
        return "field has a wrong type, is too long or holds invalid characters";
    case JHOOK_ETOOBIG:
        return "body too large";
    }
    return "unknown error";
}

/* ---- signature ---- */

/* out: HEX_LEN lowercase hex digits, no NUL. */
static int hmac_hex(const char *secret, const char *t, size_t t_len, const void *body, size_t body_len,
                    char out[HEX_LEN])
{
    static const char hex[] = "0123456789abcdef";
    OSSL_PARAM op[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                       OSSL_PARAM_construct_end()};
    unsigned char md[32];
    size_t md_len = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    int ok = ctx != NULL && EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), op) &&
             EVP_MAC_update(ctx, (const unsigned char *)t, t_len) &&
             EVP_MAC_update(ctx, (const unsigned char *)".", 1) &&
             (body_len == 0 || EVP_MAC_update(ctx, body, body_len)) && EVP_MAC_final(ctx, md, &md_len, sizeof(md)) &&
             md_len == sizeof(md);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (!ok)
        return -1;
    for (size_t i = 0; i < sizeof(md); i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    OPENSSL_cleanse(md, sizeof(md));
    return 0;
}

typedef struct {
    const char *t;
    size_t t_len;
    const char *v1[JHOOK_SIG_MAX_V1];
    size_t n_v1;
} sig_header_t;

static int all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || strchr(set, s[i]) == NULL)
            return 0;
    return 1;
}

/* One key=value item. 0, or -1 if the header is malformed. */
static int parse_item(sig_header_t *h, const char *p, size_t n)
{
    const char *eq = memchr(p, '=', n);
    if (eq == NULL || eq == p)
        return -1;
    size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
    const char *v = eq + 1;
    if (klen == 1 && p[0] == 't') {
        if (h->t != NULL || vlen == 0 || vlen > T_MAX || !all_of(v, vlen, "0123456789"))
            return -1;
        h->t = v;
        h->t_len = vlen;
    } else if (klen == 2 && p[0] == 'v' && p[1] == '1') {
        if (h->n_v1 == JHOOK_SIG_MAX_V1 || vlen != HEX_LEN || !all_of(v, vlen, "0123456789abcdef"))
            return -1;
        h->v1[h->n_v1++] = v;
    }
    return 0; /* other schemes are someone else's */
}

static int parse_header(sig_header_t *h, const char *s, size_t len)
{
    size_t items = 0;
    memset(h, 0, sizeof(*h));
    if (len > JHOOK_SIG_HEADER_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return -1;
    for (size_t pos = 0; pos <= len;) {
        const char *comma = memchr(s + pos, ',', len - pos);
        size_t end = comma != NULL ? (size_t)(comma - s) : len;
        if (++items > JHOOK_SIG_MAX_ITEMS || parse_item(h, s + pos, end - pos) != 0)
            return -1;
        pos = end + 1;
    }
    return h->t != NULL && h->n_v1 > 0 ? 0 : -1;
}

static int64_t parse_t(const char *t, size_t n)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (t[i] - '0');
    return v;
}

jhook_sig_t jhook_verify(const char *secret, const char *header, size_t header_len, const void *body, size_t body_len,
                         int64_t now)
{
    sig_header_t h;
    char want[HEX_LEN];
    int64_t age;
    int match = 0;

    if (header == NULL || header_len == 0)
        return JHOOK_SIG_MISSING;
    if (parse_header(&h, header, header_len) != 0)
        return JHOOK_SIG_MALFORMED;
    if (__builtin_sub_overflow(now, parse_t(h.t, h.t_len), &age) || age > JHOOK_SIG_TOLERANCE ||
        age < -JHOOK_SIG_TOLERANCE)
        return JHOOK_SIG_STALE;
    if (secret == NULL || secret[0] == '\0' || hmac_hex(secret, h.t, h.t_len, body, body_len, want) != 0)
        return JHOOK_SIG_MISMATCH;
    /* every value is compared: which one matched does not show in the timing */
    for (size_t i = 0; i < h.n_v1; i++)
        match |= CRYPTO_memcmp(want, h.v1[i], HEX_LEN) == 0;
    return match ? JHOOK_SIG_OK : JHOOK_SIG_MISMATCH;
}

const char *jhook_sig_strerror(jhook_sig_t r)
{
    switch (r) {
    case JHOOK_SIG_OK:
        return "signature valid";
    case JHOOK_SIG_MISSING:
        return "Jambonz-Signature header missing";
    case JHOOK_SIG_MALFORMED:
        return "Jambonz-Signature header malformed";
    case JHOOK_SIG_STALE:
        return "Jambonz-Signature timestamp outside the tolerance";
    case JHOOK_SIG_MISMATCH:
        return "Jambonz-Signature does not match";
    }
    return "unknown signature result";
}

int jhook_sign(const char *secret, int64_t t, const void *body, size_t body_len, char *out, size_t outsz)
{
    char ts[T_MAX + 1], hex[HEX_LEN];
    int n;

    if (secret == NULL || secret[0] == '\0' || t < 0 || t > INT64_C(999999999999) || out == NULL)
        return -1;
    n = snprintf(ts, sizeof(ts), "%lld", (long long)t);
    if (hmac_hex(secret, ts, (size_t)n, body, body_len, hex) != 0)
        return -1;
    n = snprintf(out, outsz, "t=%s,v1=%.*s", ts, HEX_LEN, hex);
    if (n > 0 && (size_t)n < outsz)
        return 0;
    if (outsz > 0)
        out[0] = '\0';
    return -1;
}
