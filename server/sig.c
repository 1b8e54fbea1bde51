#include "server/sig.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#define SHA1_LEN 20

typedef struct {
    const char *p;
    size_t len;
} span_t;

/* A URL in up to three pieces, so the port variant needs no copy of a (remote-sized) URL. */
typedef struct {
    span_t part[3];
    size_t n;
} url_t;

/* Params in signing order, on the stack: a bounded form needs no allocation here. */
typedef struct {
    const form_pair_t *v[SIG_MAX_PARAMS];
    size_t n;
} sorted_t;

/* A thread's HMAC-SHA1 context keyed with the last token it used: fetching the algorithm and
 * keying it cost as much as the signing. EVP_MAC_init with a NULL key keeps the key. Per
 * thread, so no lock; freed by the key's destructor when the thread ends. */
typedef struct {
    EVP_MAC_CTX *ctx; /* NULL until keyed */
    char *token;      /* the key it holds (a copy) */
} keyed_t;

static _Thread_local keyed_t *keyed;
static pthread_key_t keyed_key;
static pthread_once_t keyed_once = PTHREAD_ONCE_INIT;

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_pair(const form_pair_t *a, const form_pair_t *b)
{
    int c = cmp_bytes(a->key, a->key_len, b->key, b->key_len);
    return c != 0 ? c : cmp_bytes(a->value, a->value_len, b->value, b->value_len);
}

/* Bottom-up merge sort: O(n log n) whatever the remote sends, scratch space on the stack. */
static int sort_params(sorted_t *s, const form_t *params)
{
    const form_pair_t *tmp[SIG_MAX_PARAMS];
    size_t n = params != NULL ? params->count : 0;

    if (n > SIG_MAX_PARAMS)
        return SIG_ETOOMANY;
    for (size_t i = 0; i < n; i++)
        s->v[i] = &params->pairs[i];
    s->n = n;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp_pair(s->v[j], s->v[i]) < 0 ? s->v[j++] : s->v[i++];
            while (i < mid)
                tmp[k++] = s->v[i++];
            while (j < hi)
                tmp[k++] = s->v[j++];
        }
        memcpy(s->v, tmp, n * sizeof(tmp[0]));
    }
    return SIG_OK;
}

static void keyed_clear(keyed_t *k)
{
    EVP_MAC_CTX_free(k->ctx);
    k->ctx = NULL;
    if (k->token != NULL)
        OPENSSL_clear_free(k->token, strlen(k->token) + 1);
    k->token = NULL;
}

static void keyed_free(void *p)
{
    keyed_clear(p);
    OPENSSL_free(p);
}

static void keyed_key_create(void)
{
    pthread_key_create(&keyed_key, keyed_free);
}

static int keyed_set(keyed_t *k, const char *token)
{
    OSSL_PARAM op[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0),
                       OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);

    keyed_clear(k);
    if (mac == NULL)
        return SIG_ECRYPTO;
    k->ctx = EVP_MAC_CTX_new(mac); /* holds its own reference to mac */
    EVP_MAC_free(mac);
    if (k->ctx == NULL || !EVP_MAC_init(k->ctx, (const unsigned char *)token, strlen(token), op) ||
        (k->token = OPENSSL_strdup(token)) == NULL) {
        keyed_clear(k);
        return SIG_ECRYPTO;
    }
    return SIG_OK;
}

/* The calling thread's context keyed with token, or NULL on failure. */
static EVP_MAC_CTX *hmac_for(const char *token)
{
    if (keyed == NULL) {
        pthread_once(&keyed_once, keyed_key_create);
        if ((keyed = OPENSSL_zalloc(sizeof(*keyed))) == NULL)
            return NULL;
        pthread_setspecific(keyed_key, keyed);
    }
    /* both strings are the server's own: the comparison's timing tells nothing */
    if (keyed->token != NULL && strcmp(keyed->token, token) == 0)
        return keyed->ctx;
    return keyed_set(keyed, token) == SIG_OK ? keyed->ctx : NULL;
}

/* Pieces are staged: an EVP call per short key or value costs more than hashing it. */
typedef struct {
    EVP_MAC_CTX *ctx;
    int ok;
    size_t len;
    unsigned char buf[1024];
} feed_t;

static void feed(feed_t *f, const char *p, size_t n)
{
    if (f->len + n > sizeof(f->buf)) {
        f->ok &= EVP_MAC_update(f->ctx, f->buf, f->len);
        f->len = 0;
        if (n > sizeof(f->buf)) {
            f->ok &= EVP_MAC_update(f->ctx, (const unsigned char *)p, n);
            return;
        }
    }
    if (n != 0)
        memcpy(f->buf + f->len, p, n);
    f->len += n;
}

/* out: SIG_LEN base64 chars and a NUL. */
static int sign(EVP_MAC_CTX *ctx, const url_t *url, const sorted_t *params, char out[SIG_LEN + 1])
{
    feed_t f = {.ctx = ctx, .ok = 1, .len = 0};
    unsigned char md[SHA1_LEN];
    size_t md_len = 0;

    if (!EVP_MAC_init(ctx, NULL, 0, NULL))
        return SIG_ECRYPTO;
    for (size_t i = 0; i < url->n; i++)
        feed(&f, url->part[i].p, url->part[i].len);
    for (size_t i = 0; i < params->n; i++) {
        const form_pair_t *p = params->v[i];
        /* twilio-node signs the Set of a repeated key's values: equal pairs count once */
        if (i > 0 && cmp_pair(params->v[i - 1], p) == 0)
            continue;
        feed(&f, p->key, p->key_len);
        feed(&f, p->value, p->value_len);
    }
    f.ok &= EVP_MAC_update(ctx, f.buf, f.len);
    if (!f.ok || !EVP_MAC_final(ctx, md, &md_len, sizeof(md)) || md_len != SHA1_LEN)
        return SIG_ECRYPTO;
    EVP_EncodeBlock((unsigned char *)out, md, SHA1_LEN);
    return SIG_OK;
}

/*
 * The same URL with the port toggled, as twilio-node's addPort/removePort: a port present is
 * removed, an absent one becomes :443 for https and :80 otherwise. Returns 0 when url has no
 * host to toggle.
 */
static int toggle_port(const char *url, size_t len, url_t *out)
{
    size_t scheme_len = strcspn(url, ":/?#");
    const char *auth, *auth_end, *host, *colon = NULL;

    if (url[scheme_len] != ':' || url[scheme_len + 1] != '/' || url[scheme_len + 2] != '/')
        return 0;
    auth = url + scheme_len + 3;
    auth_end = auth + strcspn(auth, "/?#");
    host = auth;
    for (const char *p = auth; p < auth_end; p++)
        if (*p == '@')
            host = p + 1;
    if (host == auth_end)
        return 0;
    if (*host == '[') {
        const char *rb = memchr(host, ']', (size_t)(auth_end - host));
        if (rb != NULL && rb + 1 < auth_end && rb[1] == ':')
            colon = rb + 1;
    } else {
        colon = memchr(host, ':', (size_t)(auth_end - host));
    }
    out->part[0] = (span_t){url, (size_t)((colon != NULL ? colon : auth_end) - url)};
    if (colon != NULL) {
        out->part[1] = (span_t){auth_end, (size_t)(url + len - auth_end)};
        out->n = 2;
    } else {
        int https = scheme_len == 5 && strncasecmp(url, "https", 5) == 0;
        out->part[1] = https ? (span_t){":443", 4} : (span_t){":80", 3};
        out->part[2] = (span_t){auth_end, (size_t)(url + len - auth_end)};
        out->n = 3;
    }
    return 1;
}

/* Length is public (always SIG_LEN when genuine); the bytes are compared in constant time. */
static int sig_equal(const char expected[SIG_LEN], const char *got, size_t got_len)
{
    char buf[SIG_LEN] = {0};
    if (got_len != 0)
        memcpy(buf, got, got_len < SIG_LEN ? got_len : SIG_LEN);
    return (CRYPTO_memcmp(buf, expected, SIG_LEN) == 0) & (got_len == SIG_LEN);
}

/* 1 when signature matches url as given or port-toggled, over params. */
static int check_url(const char *token, const char *url, const form_t *params, const char *signature, size_t sig_len)
{
    sorted_t sorted;
    EVP_MAC_CTX *ctx;
    char expected[SIG_LEN + 1];
    size_t len;
    url_t given, alt;
    int ok = 0;

    if (token == NULL || *token == '\0' || url == NULL || (signature == NULL && sig_len != 0))
        return 0;
    if (sort_params(&sorted, params) != SIG_OK || (ctx = hmac_for(token)) == NULL)
        return 0;
    len = strlen(url);
    given = (url_t){{{url, len}}, 1};
    if (sign(ctx, &given, &sorted, expected) == SIG_OK)
        ok = sig_equal(expected, signature, sig_len);
    /* a match skips the port variant: that timing tells no more than the answer itself */
    if (!ok && toggle_port(url, len, &alt) && sign(ctx, &alt, &sorted, expected) == SIG_OK)
        ok = sig_equal(expected, signature, sig_len);
    return ok;
}

int sig_compute(const char *auth_token, const char *url, const form_t *params, char out[SIG_LEN + 1])
{
    sorted_t sorted;
    EVP_MAC_CTX *ctx;
    url_t u;
    int err;

    out[0] = '\0';
    if (auth_token == NULL || *auth_token == '\0')
        return SIG_ETOKEN;
    if ((err = sort_params(&sorted, params)) != SIG_OK)
        return err;
    if ((ctx = hmac_for(auth_token)) == NULL)
        return SIG_ECRYPTO;
    u = (url_t){{{url, strlen(url)}}, 1};
    err = sign(ctx, &u, &sorted, out);
    if (err != SIG_OK)
        out[0] = '\0';
    return err;
}

int sig_body_sha256_hex(const void *body, size_t body_len, char out[SIG_SHA256_HEX + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int md_len = 0;

    out[0] = '\0';
    if (!EVP_Digest(body_len != 0 ? body : "", body_len, md, &md_len, EVP_sha256(), NULL) || md_len != sizeof(md))
        return SIG_ECRYPTO;
    for (size_t i = 0; i < sizeof(md); i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[SIG_SHA256_HEX] = '\0';
    return SIG_OK;
}

int sig_validate_form(const char *auth_token, const char *url, const form_t *params, const char *signature,
                      size_t sig_len)
{
    return check_url(auth_token, url, params, signature, sig_len);
}

/*
 * First bodySHA256 in url's query, form-decoded as URLSearchParams.get() would. A key or value
 * that fails to decode cannot be "bodySHA256" or a hex digest, so it is simply not a match.
 */
static int query_body_hash(const char *url, char out[SIG_SHA256_HEX + 1])
{
    size_t qlen, klen, vlen;
    const char *q = form_query(url, strlen(url), &qlen), *end;
    char key[sizeof("bodySHA256")];

    if (qlen == 0)
        return 0;
    end = q + qlen;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *seg_end = amp != NULL ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(seg_end - q));
        const char *key_end = eq != NULL ? eq : seg_end;
        const char *val = eq != NULL ? eq + 1 : seg_end;
        if (form_unescape(key, sizeof(key), q, (size_t)(key_end - q), &klen) == FORM_OK &&
            strcmp(key, "bodySHA256") == 0)
            return form_unescape(out, SIG_SHA256_HEX + 1, val, (size_t)(seg_end - val), &vlen) == FORM_OK &&
                   vlen == SIG_SHA256_HEX;
        if (amp == NULL)
            break;
        q = amp + 1;
    }
    return 0;
}

int sig_validate_json(const char *auth_token, const char *url, const void *body, size_t body_len, const char *signature,
                      size_t sig_len)
{
    char want[SIG_SHA256_HEX + 1] = {0}, got[SIG_SHA256_HEX + 1];
    int have, sig_ok, hash_ok;

    if (url == NULL || (body == NULL && body_len != 0))
        return 0;
    sig_ok = check_url(auth_token, url, NULL, signature, sig_len);
    have = query_body_hash(url, want);
    hash_ok = sig_body_sha256_hex(body, body_len, got) == SIG_OK && CRYPTO_memcmp(want, got, SIG_SHA256_HEX) == 0;
    return sig_ok & have & hash_ok;
}

int sig_build_url(char *buf, size_t buf_size, const char *base, const char *target, size_t target_len, size_t *len)
{
    size_t scheme_len, base_len, slash, total;

    if (buf_size != 0)
        buf[0] = '\0';
    if (base == NULL)
        return SIG_EBASE;
    if (strncasecmp(base, "https://", 8) == 0)
        scheme_len = 8;
    else if (strncasecmp(base, "http://", 7) == 0)
        scheme_len = 7;
    else
        return SIG_EBASE;
    base_len = strlen(base);
    if (strcspn(base + scheme_len, "/?#") == 0 || strpbrk(base, "?#") != NULL)
        return SIG_EBASE;
    while (base[base_len - 1] == '/')
        base_len--;
    /* the target must not cut the signed string short */
    if (target_len != 0 && memchr(target, '\0', target_len) != NULL)
        return SIG_ETARGET;
    slash = target_len == 0 || target[0] != '/';
    total = base_len + slash + target_len;
    if (total < target_len || total >= buf_size)
        return SIG_ETOOLONG;
    memcpy(buf, base, base_len);
    if (slash)
        buf[base_len] = '/';
    if (target_len != 0)
        memcpy(buf + base_len + slash, target, target_len);
    buf[total] = '\0';
    if (len != NULL)
        *len = total;
    return SIG_OK;
}

const char *sig_strerror(int err)
{
    switch (err) {
    case SIG_OK:
        return "ok";
    case SIG_ECRYPTO:
        return "crypto library failure";
    case SIG_ETOOMANY:
        return "too many parameters to sign";
    case SIG_ETOKEN:
        return "empty auth token";
    case SIG_ETOOLONG:
        return "signed URL does not fit the buffer";
    case SIG_EBASE:
        return "public base URL is not http(s)://host[/prefix]";
    case SIG_ETARGET:
        return "request target contains a NUL byte";
    default:
        return "unknown signature error";
    }
}
