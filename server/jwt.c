#include "server/jwt.h"

/* libjwt's header. Angle brackets so server/jwt.h (same name, this directory) is never picked:
 * the build puts the repo root, not server/, on the include path. */
#include <jwt.h>

#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HS256_LEN     32
#define HS256_B64_LEN 43 /* unpadded base64url of 32 bytes */

/* The three segments of a compact JWS, as offsets into the caller's token. */
typedef struct {
    const char *p;
    size_t head_len, body_off, body_len, sig_off, sig_len;
} parts_t;

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * Unpadded base64url (RFC 7515 2). Returns the decoded length, or -1 on a bad character, an
 * impossible length or non-zero unused bits: one value has exactly one accepted encoding.
 */
static long b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    size_t o = 0, need = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    unsigned long acc = 0;
    int bits = 0;

    if (len % 4 == 1 || need > cap)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1UL << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    return (long)o;
}

/* Exactly two dots, nothing but base64url between them; header and payload non-empty. */
static int split(const char *tok, size_t len, parts_t *pt)
{
    size_t dots[2], n = 0;

    for (size_t i = 0; i < len; i++) {
        if (tok[i] == '.') {
            if (n == 2)
                return -1;
            dots[n++] = i;
        } else if (b64url_val((unsigned char)tok[i]) < 0) {
            return -1; /* also refuses NUL, so libjwt's C-string view matches ours */
        }
    }
    if (n != 2 || dots[0] == 0 || dots[1] == dots[0] + 1)
        return -1;
    pt->p = tok;
    pt->head_len = dots[0];
    pt->body_off = dots[0] + 1;
    pt->body_len = dots[1] - pt->body_off;
    pt->sig_off = dots[1] + 1;
    pt->sig_len = len - pt->sig_off;
    return 0;
}

/* Decodes one segment as a JSON object, duplicate keys refused (no "last alg wins" games). */
static json_t *segment_json(const char *seg, size_t len)
{
    unsigned char buf[JWT_MAX_TOKEN];
    long n = b64url_decode(seg, len, buf, sizeof(buf));
    json_t *js;

    if (n <= 0)
        return NULL;
    js = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (js != NULL && !json_is_object(js)) {
        json_decref(js);
        return NULL;
    }
    return js;
}

/* The raw header decides the algorithm, before any key touches the token. */
static const char *check_header(const parts_t *pt)
{
    json_t *h = segment_json(pt->p, pt->head_len), *alg, *typ;
    const char *why = NULL;

    if (h == NULL)
        return "malformed token";
    alg = json_object_get(h, "alg");
    typ = json_object_get(h, "typ");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0)
        why = "algorithm must be HS256";
    else if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        why = "malformed token"; /* libjwt refuses these too; say so first */
    else if (json_object_get(h, "crit") != NULL)
        why = "malformed token"; /* RFC 7515 4.1.11: we understand no extensions */
    json_decref(h);
    return why;
}

/* Our own HMAC-SHA256, compared in constant time over the raw bytes. */
static int hmac_ok(const char *secret, const parts_t *pt)
{
    unsigned char want[EVP_MAX_MD_SIZE], got[HS256_LEN];
    unsigned int want_len = 0;
    int ok;

    if (pt->sig_len != HS256_B64_LEN || b64url_decode(pt->p + pt->sig_off, pt->sig_len, got, sizeof(got)) != HS256_LEN)
        return 0;
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)pt->p, pt->sig_off - 1, want,
             &want_len) == NULL ||
        want_len != HS256_LEN)
        return 0;
    ok = CRYPTO_memcmp(want, got, HS256_LEN) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

/* Second opinion: libjwt must accept the same bytes with the same key, as HS256. */
static int libjwt_ok(const char *secret, const char *token, size_t len)
{
    char buf[JWT_MAX_TOKEN + 1];
    jwt_t *j = NULL;
    int ok;

    memcpy(buf, token, len);
    buf[len] = '\0';
    if (jwt_decode(&j, buf, (const unsigned char *)secret, (int)strlen(secret)) != 0 || j == NULL)
        return 0;
    ok = jwt_get_alg(j) == JWT_ALG_HS256;
    jwt_free(j);
    return ok;
}

/*
 * NumericDate (RFC 7519 2): an integer, or a real rounded the cautious way (exp down, nbf and
 * iat up). Returns 0, or -1 when it is not a number or is out of range.
 */
static int numeric_date(const json_t *v, int round_up, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        long long t;
        if (!(d > -1e18 && d < 1e18))
            return -1;
        t = (long long)d;
        if (round_up && (double)t < d)
            t++;
        else if (!round_up && (double)t > d)
            t--;
        *out = t;
        return 0;
    }
    return -1;
}

/* a + b without overflow (b >= 0): time comparisons must not wrap on a hostile exp. */
static long long sat_add(long long a, long long b)
{
    return a > LLONG_MAX - b ? LLONG_MAX : a + b;
}

/* JSON null counts as absent. */
static json_t *claim(json_t *body, const char *name)
{
    json_t *v = json_object_get(body, name);
    return json_is_null(v) ? NULL : v;
}

/* A positive integer, or the same as a string of decimal digits without a leading zero. */
static int parse_tenant(const json_t *v, long *out)
{
    if (json_is_integer(v)) {
        json_int_t t = json_integer_value(v);
        if (t <= 0 || t > LONG_MAX)
            return -1;
        *out = (long)t;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        long t = 0;
        if (n == 0 || s[0] == '0')
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9' || t > (LONG_MAX - (s[i] - '0')) / 10)
                return -1;
            t = t * 10 + (s[i] - '0');
        }
        *out = t;
        return 0;
    }
    return -1;
}

static int str_eq(const json_t *v, const char *want)
{
    return json_is_string(v) && json_string_length(v) == strlen(want) && strcmp(json_string_value(v), want) == 0;
}

static int aud_ok(const json_t *aud, const char *want)
{
    if (json_is_array(aud)) {
        size_t i;
        json_t *e;
        json_array_foreach(aud, i, e)
        {
            if (str_eq(e, want))
                return 1;
        }
        return 0;
    }
    return str_eq(aud, want);
}

static const char *check_claims(const jwt_settings_t *s, json_t *body, long now, jwt_claims_t *c)
{
    long long leeway = s->leeway_s > 0 ? s->leeway_s : 0, exp, t;
    json_t *v;

    if ((v = claim(body, "exp")) == NULL || numeric_date(v, 0, &exp) != 0)
        return "missing exp";
    if ((long long)now > sat_add(exp, leeway))
        return "expired";
    if ((v = claim(body, "nbf")) != NULL) {
        if (numeric_date(v, 1, &t) != 0)
            return "malformed token";
        if (sat_add(now, leeway) < t)
            return "not yet valid";
    }
    if ((v = claim(body, "iat")) != NULL) {
        if (numeric_date(v, 1, &t) != 0)
            return "malformed token";
        if (t > sat_add(now, leeway))
            return "not yet valid"; /* issued in the future: a skewed or forged clock */
    }
    c->exp = exp > LONG_MAX ? LONG_MAX : (long)exp;

    if (s->issuer != NULL && *s->issuer != '\0' && !str_eq(claim(body, "iss"), s->issuer))
        return "wrong issuer";
    if (s->audience != NULL && *s->audience != '\0' && !aud_ok(claim(body, "aud"), s->audience))
        return "wrong audience";

    v = claim(body, "sub");
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > JWT_MAX_SUB)
        return "missing sub";
    memcpy(c->sub, json_string_value(v), json_string_length(v) + 1);

    if ((v = claim(body, "tenant_id")) == NULL)
        return "missing tenant_id";
    if (parse_tenant(v, &c->tenant_id) != 0)
        return "bad tenant_id";

    if ((v = claim(body, "role")) == NULL)
        return "missing role";
    if (!json_is_string(v) || jwt_role_parse(json_string_value(v), &c->role) != 0)
        return "bad role";
    return NULL;
}

int jwt_verify(const jwt_settings_t *s, const char *token, size_t len, long now, jwt_claims_t *out, const char **why)
{
    jwt_claims_t c;
    const char *dummy, *err;
    json_t *body;
    parts_t pt;

    if (why == NULL)
        why = &dummy;
    memset(&c, 0, sizeof(c));
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (s == NULL || token == NULL) {
        *why = "malformed token";
        return -1;
    }
    if (len > JWT_MAX_TOKEN) {
        *why = "token too long";
        return -1;
    }
    if (split(token, len, &pt) != 0) {
        *why = "malformed token";
        return -1;
    }
    if ((err = check_header(&pt)) != NULL) {
        *why = err;
        return -1;
    }
    /* An empty secret would make every HMAC forgeable. */
    if (s->secret == NULL || *s->secret == '\0' || !hmac_ok(s->secret, &pt)) {
        *why = "bad signature";
        return -1;
    }
    /* Authenticated from here on: only now is the payload parsed. */
    if ((body = segment_json(pt.p + pt.body_off, pt.body_len)) == NULL) {
        *why = "malformed token";
        return -1;
    }
    err = check_claims(s, body, now, &c);
    json_decref(body);
    if (err == NULL && !libjwt_ok(s->secret, token, len))
        err = "bad signature";
    if (err != NULL) {
        *why = err;
        return -1;
    }
    if (out != NULL)
        *out = c;
    return 0;
}

int jwt_mint(const jwt_settings_t *s, const char *sub, long tenant_id, jwt_role_t role, long now, long ttl_s,
             char **out, const char **why)
{
    const char *dummy, *role_name = jwt_role_name(role);
    jwt_t *j = NULL;
    char *tok;
    int rc = 0;

    if (why == NULL)
        why = &dummy;
    if (out == NULL) {
        *why = "encode failed";
        return -1;
    }
    *out = NULL;
    if (s == NULL || s->secret == NULL || *s->secret == '\0') {
        *why = "empty secret";
        return -1;
    }
    if (sub == NULL || *sub == '\0' || strlen(sub) > JWT_MAX_SUB) {
        *why = "bad sub";
        return -1;
    }
    if (tenant_id <= 0) {
        *why = "bad tenant_id";
        return -1;
    }
    if (role_name == NULL) {
        *why = "bad role";
        return -1;
    }
    if (ttl_s <= 0 || ttl_s > JWT_MAX_TTL || now > LONG_MAX - ttl_s) {
        *why = "bad ttl";
        return -1;
    }
    if (jwt_new(&j) != 0) {
        *why = "out of memory";
        return -1;
    }
    rc |= jwt_add_grant(j, "sub", sub);
    rc |= jwt_add_grant_int(j, "tenant_id", tenant_id);
    rc |= jwt_add_grant(j, "role", role_name);
    rc |= jwt_add_grant_int(j, "iat", now);
    rc |= jwt_add_grant_int(j, "exp", now + ttl_s);
    if (s->issuer != NULL && *s->issuer != '\0')
        rc |= jwt_add_grant(j, "iss", s->issuer);
    if (s->audience != NULL && *s->audience != '\0')
        rc |= jwt_add_grant(j, "aud", s->audience);
    rc |= jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)s->secret, (int)strlen(s->secret));
    tok = rc == 0 ? jwt_encode_str(j) : NULL;
    jwt_free(j);
    if (tok == NULL) {
        *why = "encode failed";
        return -1;
    }
    *out = tok;
    return 0;
}

int jwt_parse_ttl(const char *s, long *out_s)
{
    long v = 0, unit = 1;
    size_t i = 0;

    if (s == NULL || out_s == NULL)
        return -1;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > JWT_MAX_TTL)
            return -1; /* keeps v * 10 far from overflow */
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -1;
    switch (s[i]) {
    case '\0':
        break;
    case 's':
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return -1;
    }
    if (s[i] != '\0' && s[i + 1] != '\0')
        return -1;
    if (v <= 0 || v > JWT_MAX_TTL / unit)
        return -1;
    *out_s = v * unit;
    return 0;
}

const char *jwt_role_name(jwt_role_t role)
{
    switch (role) {
    case JWT_ROLE_AGENT:
        return "agent";
    case JWT_ROLE_ADMIN:
        return "admin";
    }
    return NULL;
}

int jwt_role_parse(const char *name, jwt_role_t *out)
{
    jwt_role_t r;

    if (name == NULL)
        return -1;
    if (strcmp(name, "agent") == 0)
        r = JWT_ROLE_AGENT;
    else if (strcmp(name, "admin") == 0)
        r = JWT_ROLE_ADMIN;
    else
        return -1;
    if (out != NULL)
        *out = r;
    return 0;
}
