/*
 * Unit tests for server/jwt. Attack tokens are built here by hand (OpenSSL HMAC + base64url)
 * so the refusals do not rest on libjwt producing them; libjwt itself is used for the
 * round trip and for a correctly signed HS512 token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jwt.h> /* libjwt */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/jwt.h"

#define NOW    1700000000L
#define SECRET "s3cret-for-tests"
#define TOKMAX 12000

/* iat = NOW, exp = NOW + 600 */
#define GOOD_BODY "{\"sub\":\"alice\",\"tenant_id\":7,\"role\":\"agent\",\"iat\":1700000000,\"exp\":1700000600}"
#define HS256_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static const jwt_settings_t plain = {SECRET, NULL, NULL, 60};

static size_t b64url(const void *in, size_t len, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = in;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* header.payload.signature with HMAC(md, key) over the first two; md NULL: empty signature. */
static char *craft(char *out, const char *hdr, const char *body, const char *key, const EVP_MD *md)
{
    unsigned char mac[EVP_MAX_MD_SIZE] = {0};
    unsigned int mac_len = 0;
    size_t n = b64url(hdr, strlen(hdr), out);
    out[n++] = '.';
    n += b64url(body, strlen(body), out + n);
    if (md != NULL)
        assert_non_null(HMAC(md, key, (int)strlen(key), (unsigned char *)out, n, mac, &mac_len));
    out[n++] = '.';
    b64url(mac, mac_len, out + n);
    return out;
}

static char *hs256(char *out, const char *hdr, const char *body)
{
    return craft(out, hdr, body, SECRET, EVP_sha256());
}

static char *good(char *out, const char *body)
{
    return hs256(out, HS256_HDR, body);
}

static void expect_ok(const jwt_settings_t *s, const char *t, long now, jwt_claims_t *c)
{
    const char *why = NULL;
    int rc = jwt_verify(s, t, strlen(t), now, c, &why);
    if (rc != 0)
        fail_msg("token refused (%s): %s", why ? why : "?", t);
}

static void expect_fail(const jwt_settings_t *s, const char *t, size_t len, long now, const char *reason)
{
    const char *why = NULL;
    jwt_claims_t c;
    memset(&c, 0xa5, sizeof(c));
    assert_int_equal(jwt_verify(s, t, len, now, &c, &why), -1);
    assert_non_null(why);
    assert_string_equal(why, reason);
    assert_int_equal(c.tenant_id, 0); /* *out zeroed on failure */
    assert_int_equal(c.sub[0], '\0');
}

static void expect_fail_s(const jwt_settings_t *s, const char *t, const char *reason)
{
    expect_fail(s, t, strlen(t), NOW, reason);
}

static void test_round_trip(void **state)
{
    jwt_settings_t s = {SECRET, "switchboard", "api", 60};
    char *tok = NULL, hdr[256];
    const char *why = NULL;
    jwt_claims_t c;
    long n;

    assert_int_equal(jwt_mint(&s, "agent-17@example.com", 42, JWT_ROLE_ADMIN, NOW, 900, &tok, &why), 0);
    assert_non_null(tok);
    expect_ok(&s, tok, NOW, &c);
    assert_string_equal(c.sub, "agent-17@example.com");
    assert_int_equal(c.tenant_id, 42);
    assert_int_equal(c.role, JWT_ROLE_ADMIN);
    assert_int_equal(c.exp, NOW + 900);
    /* Also valid without issuer/audience checks, and with out/why NULL. */
    assert_int_equal(jwt_verify(&plain, tok, strlen(tok), NOW, NULL, NULL), 0);

    /* The minted header really says HS256 (decoded here, not by libjwt). */
    n = strchr(tok, '.') - tok;
    {
        unsigned char raw[256];
        EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
        int outl = 0, fin = 0;
        size_t i;
        memcpy(hdr, tok, (size_t)n);
        for (i = 0; i < (size_t)n; i++)
            hdr[i] = hdr[i] == '-' ? '+' : hdr[i] == '_' ? '/' : hdr[i];
        while (i % 4)
            hdr[i++] = '=';
        EVP_DecodeInit(ctx);
        assert_true(EVP_DecodeUpdate(ctx, raw, &outl, (unsigned char *)hdr, (int)i) >= 0);
        assert_int_equal(EVP_DecodeFinal(ctx, raw + outl, &fin), 1);
        raw[outl + fin] = '\0';
        EVP_ENCODE_CTX_free(ctx);
        assert_non_null(strstr((char *)raw, "\"alg\":\"HS256\""));
    }

    /* A token need not be NUL-terminated: only len bytes count. */
    {
        size_t len = strlen(tok);
        char *buf = malloc(len + 8);
        memcpy(buf, tok, len);
        memcpy(buf + len, "garbage", 8);
        assert_int_equal(jwt_verify(&s, buf, len, NOW, &c, &why), 0);
        assert_int_equal(jwt_verify(&s, buf, len + 3, NOW, &c, &why), -1);
        free(buf);
    }
    free(tok);

    /* Agent role, hand-crafted token. */
    char t[TOKMAX];
    expect_ok(&plain, good(t, GOOD_BODY), NOW, &c);
    assert_string_equal(c.sub, "alice");
    assert_int_equal(c.tenant_id, 7);
    assert_int_equal(c.role, JWT_ROLE_AGENT);
    assert_int_equal(c.exp, NOW + 600);
}

static void test_expiry(void **state)
{
    jwt_settings_t strict = plain;
    char *tok = NULL;
    jwt_claims_t c;

    strict.leeway_s = 0;
    assert_int_equal(jwt_mint(&plain, "bob", 3, JWT_ROLE_AGENT, NOW, 100, &tok, NULL), 0);
    expect_ok(&plain, tok, NOW + 100, &c);      /* at exp */
    expect_ok(&plain, tok, NOW + 100 + 60, &c); /* within leeway */
    expect_fail(&plain, tok, strlen(tok), NOW + 100 + 61, "expired");
    expect_fail(&plain, tok, strlen(tok), NOW + 100000, "expired");
    expect_ok(&strict, tok, NOW + 100, &c);
    expect_fail(&strict, tok, strlen(tok), NOW + 101, "expired");
    strict.leeway_s = -500; /* negative counts as 0 */
    expect_fail(&strict, tok, strlen(tok), NOW + 101, "expired");
    free(tok);

    char t[TOKMAX];
    /* Real NumericDate accepted, rounded down for exp. */
    good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700000000.9}");
    expect_ok(&strict, t, NOW, &c);
    assert_int_equal(c.exp, NOW);
    expect_fail(&strict, t, strlen(t), NOW + 1, "expired");
    /* A huge exp does not wrap into the past. */
    good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":9223372036854775807}");
    expect_ok(&plain, t, NOW, &c);
    /* exp of the wrong type is no exp. */
    expect_fail_s(&plain, good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":\"1700000600\"}"),
                  "missing exp");
    expect_fail_s(&plain, good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":null}"), "missing exp");
}

static void test_nbf_iat(void **state)
{
    char t[TOKMAX];
    jwt_claims_t c;

    good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700000600,\"nbf\":1700000120}");
    expect_fail_s(&plain, t, "not yet valid");
    expect_ok(&plain, t, NOW + 60, &c); /* nbf - leeway reached */
    good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700000600,\"nbf\":1700000030}");
    expect_ok(&plain, t, NOW, &c);
    good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700000600,\"nbf\":\"soon\"}");
    expect_fail_s(&plain, t, "malformed token");

    good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700009999,\"iat\":1700003600}");
    expect_fail_s(&plain, t, "not yet valid");
    good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700000600,\"iat\":1700000060}");
    expect_ok(&plain, t, NOW, &c);
    good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700000600,\"iat\":1700000060.5}");
    expect_fail_s(&plain, t, "not yet valid"); /* iat rounded up */
}

static void test_bad_signature(void **state)
{
    jwt_settings_t other = plain;
    char t[TOKMAX], *tok = NULL, *sig;
    size_t n;

    other.secret = "another-secret";
    assert_int_equal(jwt_mint(&other, "bob", 3, JWT_ROLE_AGENT, NOW, 100, &tok, NULL), 0);
    expect_fail_s(&plain, tok, "bad signature");
    free(tok);
    expect_fail_s(&plain, craft(t, HS256_HDR, GOOD_BODY, "another-secret", EVP_sha256()), "bad signature");

    /* One flipped character in the signature, at the start, middle and end. */
    good(t, GOOD_BODY);
    sig = strrchr(t, '.') + 1;
    n = strlen(sig);
    assert_int_equal(n, 43);
    size_t at[] = {0, 21, 42};
    for (size_t i = 0; i < 3; i++) {
        char saved = sig[at[i]];
        sig[at[i]] = saved == 'A' ? 'Q' : 'A';
        expect_fail_s(&plain, t, "bad signature");
        sig[at[i]] = saved;
    }
    expect_ok(&plain, t, NOW, NULL);

    /* Truncated, extended, and empty signatures. */
    sig[42] = '\0';
    expect_fail_s(&plain, t, "bad signature");
    good(t, GOOD_BODY);
    strcat(t, "AA");
    expect_fail_s(&plain, t, "bad signature");
    good(t, GOOD_BODY);
    *(strrchr(t, '.') + 1) = '\0';
    expect_fail_s(&plain, t, "bad signature");

    /* A payload changed after signing (tenant 7 -> 8 would need a re-sign). */
    char t2[TOKMAX];
    good(t, GOOD_BODY);
    good(t2, "{\"sub\":\"alice\",\"tenant_id\":8,\"role\":\"agent\",\"iat\":1700000000,\"exp\":1700000600}");
    strcpy(strrchr(t2, '.'), strrchr(t, '.'));
    expect_fail_s(&plain, t2, "bad signature");
}

static void test_alg_none(void **state)
{
    char t[TOKMAX];
    jwt_t *j = NULL;

    craft(t, "{\"alg\":\"none\",\"typ\":\"JWT\"}", GOOD_BODY, NULL, NULL);
    assert_int_equal(t[strlen(t) - 1], '.');
    /* Why the header check exists: libjwt 1.x decodes this when no key is given. */
    assert_int_equal(jwt_decode(&j, t, NULL, 0), 0);
    jwt_free(j);
    expect_fail_s(&plain, t, "algorithm must be HS256");

    craft(t, "{\"alg\":\"none\"}", GOOD_BODY, SECRET, EVP_sha256());
    expect_fail_s(&plain, t, "algorithm must be HS256");
    craft(t, "{\"alg\":\"None\"}", GOOD_BODY, NULL, NULL);
    expect_fail_s(&plain, t, "algorithm must be HS256");
    craft(t, "{\"alg\":\"NONE\"}", GOOD_BODY, SECRET, EVP_sha256());
    expect_fail_s(&plain, t, "algorithm must be HS256");
    craft(t, "{\"typ\":\"JWT\"}", GOOD_BODY, SECRET, EVP_sha256());
    expect_fail_s(&plain, t, "algorithm must be HS256");
    craft(t, "{\"alg\":null}", GOOD_BODY, SECRET, EVP_sha256());
    expect_fail_s(&plain, t, "algorithm must be HS256");
}

static void test_other_algs(void **state)
{
    char t[TOKMAX], *tok;
    jwt_t *j = NULL;

    /* Correctly signed by libjwt, but HS512. */
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grant(j, "sub", "alice"), 0);
    assert_int_equal(jwt_add_grant_int(j, "tenant_id", 7), 0);
    assert_int_equal(jwt_add_grant(j, "role", "admin"), 0);
    assert_int_equal(jwt_add_grant_int(j, "exp", NOW + 600), 0);
    assert_int_equal(jwt_set_alg(j, JWT_ALG_HS512, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    tok = jwt_encode_str(j);
    jwt_free(j);
    assert_non_null(tok);
    j = NULL;
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    jwt_free(j);
    expect_fail_s(&plain, tok, "algorithm must be HS256");
    free(tok);

    craft(t, "{\"alg\":\"HS384\",\"typ\":\"JWT\"}", GOOD_BODY, SECRET, EVP_sha384());
    expect_fail_s(&plain, t, "algorithm must be HS256");
    craft(t, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", GOOD_BODY, SECRET, EVP_sha512());
    expect_fail_s(&plain, t, "algorithm must be HS256");

    /* Key confusion: an asymmetric alg with an HMAC made from the (public) secret. */
    static const char *hdrs[] = {
        "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
        "{\"alg\":\"ES256\",\"typ\":\"JWT\"}",
        "{\"alg\":\"PS256\",\"typ\":\"JWT\"}",
        "{\"alg\":\"EdDSA\"}",
        "{\"alg\":\"hs256\"}", /* libjwt would take this (strcasecmp) */
        "{\"alg\":\"HS256 \"}",
        "{\"alg\":[\"HS256\"]}",
        "{\"alg\":256}",
        "{\"alg\":\"HS2\\u00356\"}",
        "{\"alg\":\"HS256\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        hs256(t, hdrs[i], GOOD_BODY);
        const char *why = NULL;
        int rc = jwt_verify(&plain, t, strlen(t), NOW, NULL, &why);
        if (i == 8) { /* "\u0035" is '5': the same string, so valid */
            assert_int_equal(rc, 0);
            continue;
        }
        if (rc != -1 || why == NULL ||
            (strcmp(why, "algorithm must be HS256") != 0 && strcmp(why, "malformed token") != 0))
            fail_msg("header %s: rc %d why %s", hdrs[i], rc, why ? why : "(null)");
    }
}

static void test_header_shapes(void **state)
{
    char t[TOKMAX];
    jwt_claims_t c;

    /* Whitespace is fine; duplicate alg keys are not, in either order. */
    expect_ok(&plain, hs256(t, " {\n \"alg\" : \"HS256\" ,\t\"typ\" : \"JWT\" } ", GOOD_BODY), NOW, &c);
    expect_ok(&plain, hs256(t, "{\"alg\":\"HS256\"}", GOOD_BODY), NOW, &c);
    expect_ok(&plain, hs256(t, "{\"alg\":\"HS256\",\"typ\":\"jwt\",\"kid\":\"k1\"}", GOOD_BODY), NOW, &c);
    expect_fail_s(&plain, hs256(t, "{\"alg\":\"HS256\",\"alg\":\"none\"}", GOOD_BODY), "malformed token");
    expect_fail_s(&plain, hs256(t, "{\"alg\":\"none\",\"alg\":\"HS256\"}", GOOD_BODY), "malformed token");
    expect_fail_s(&plain, hs256(t, "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", GOOD_BODY), "malformed token");
    expect_fail_s(&plain, hs256(t, "{\"alg\":\"HS256\",\"typ\":\"JWS\"}", GOOD_BODY), "malformed token");
    expect_fail_s(&plain, hs256(t, "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", GOOD_BODY),
                  "malformed token");
    expect_fail_s(&plain, hs256(t, "[\"HS256\"]", GOOD_BODY), "malformed token");
    expect_fail_s(&plain, hs256(t, "\"HS256\"", GOOD_BODY), "malformed token");
    expect_fail_s(&plain, hs256(t, "{\"alg\":\"HS256\"} x", GOOD_BODY), "malformed token");

    /* Payloads that are signed but not a JSON object. */
    expect_fail_s(&plain, good(t, "not json"), "malformed token");
    expect_fail_s(&plain, good(t, "[1,2]"), "malformed token");
    expect_fail_s(&plain,
                  good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"tenant_id\":2,\"role\":\"agent\",\"exp\":1700000600}"),
                  "malformed token");
}

static void test_claims(void **state)
{
    char t[TOKMAX], body[512];
    jwt_claims_t c;

#define B(sub, tenant, role) "{" sub tenant role "\"exp\":1700000600}"
    expect_fail_s(&plain, good(t, "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\"}"), "missing exp");
    expect_fail_s(&plain, good(t, B("", "\"tenant_id\":1,", "\"role\":\"agent\",")), "missing sub");
    expect_fail_s(&plain, good(t, B("\"sub\":\"\",", "\"tenant_id\":1,", "\"role\":\"agent\",")), "missing sub");
    expect_fail_s(&plain, good(t, B("\"sub\":5,", "\"tenant_id\":1,", "\"role\":\"agent\",")), "missing sub");
    expect_fail_s(&plain, good(t, B("\"sub\":\"a\",", "", "\"role\":\"agent\",")), "missing tenant_id");
    expect_fail_s(&plain, good(t, B("\"sub\":\"a\",", "\"tenant_id\":null,", "\"role\":\"agent\",")),
                  "missing tenant_id");
    expect_fail_s(&plain, good(t, B("\"sub\":\"a\",", "\"tenant_id\":1,", "")), "missing role");
    expect_fail_s(&plain, good(t, B("\"sub\":\"a\",", "\"tenant_id\":1,", "\"role\":\"root\",")), "bad role");
    expect_fail_s(&plain, good(t, B("\"sub\":\"a\",", "\"tenant_id\":1,", "\"role\":\"Admin\",")), "bad role");
    expect_fail_s(&plain, good(t, B("\"sub\":\"a\",", "\"tenant_id\":1,", "\"role\":2,")), "bad role");
    expect_fail_s(&plain, good(t, B("\"sub\":\"a\",", "\"tenant_id\":1,", "\"role\":[\"admin\"],")), "bad role");

    static const char *bad_tenants[] = {"0",
                                        "-1",
                                        "\"abc\"",
                                        "1.5",
                                        "1.0",
                                        "\"0\"",
                                        "\"-1\"",
                                        "\"+1\"",
                                        "\" 1\"",
                                        "\"042\"",
                                        "\"\"",
                                        "\"1.5\"",
                                        "true",
                                        "[1]",
                                        "\"99999999999999999999\"",
                                        "9223372036854775807000"};
    for (size_t i = 0; i < sizeof(bad_tenants) / sizeof(bad_tenants[0]); i++) {
        snprintf(body, sizeof(body), "{\"sub\":\"a\",\"tenant_id\":%s,\"role\":\"agent\",\"exp\":1700000600}",
                 bad_tenants[i]);
        const char *why = NULL;
        good(t, body);
        assert_int_equal(jwt_verify(&plain, t, strlen(t), NOW, &c, &why), -1);
        /* jansson refuses an integer too big for json_int_t: the payload is malformed. */
        if (strcmp(why, i == 15 ? "malformed token" : "bad tenant_id") != 0)
            fail_msg("tenant_id %s: %s", bad_tenants[i], why);
    }

    expect_ok(&plain, good(t, B("\"sub\":\"a\",", "\"tenant_id\":\"42\",", "\"role\":\"admin\",")), NOW, &c);
    assert_int_equal(c.tenant_id, 42);
    assert_int_equal(c.role, JWT_ROLE_ADMIN);
    expect_ok(&plain, good(t, B("\"sub\":\"a\",", "\"tenant_id\":\"9223372036854775807\",", "\"role\":\"agent\",")),
              NOW, &c);
    assert_int_equal(c.tenant_id, 9223372036854775807L);

    /* sub: 127 bytes fit, 128 do not. */
    char sub[200];
    memset(sub, 'x', 127);
    sub[127] = '\0';
    snprintf(body, sizeof(body), "{\"sub\":\"%s\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700000600}", sub);
    expect_ok(&plain, good(t, body), NOW, &c);
    assert_string_equal(c.sub, sub);
    snprintf(body, sizeof(body), "{\"sub\":\"%sy\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700000600}", sub);
    expect_fail_s(&plain, good(t, body), "missing sub");
#undef B
}

static void test_issuer_audience(void **state)
{
    jwt_settings_t s = {SECRET, "switchboard", "api", 60};
    char t[TOKMAX];
    jwt_claims_t c;

#define IA(extra) "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700000600" extra "}"
    expect_ok(&s, good(t, IA(",\"iss\":\"switchboard\",\"aud\":\"api\"")), NOW, &c);
    expect_ok(&s, good(t, IA(",\"iss\":\"switchboard\",\"aud\":[\"web\",\"api\"]")), NOW, &c);
    expect_fail_s(&s, good(t, IA(",\"iss\":\"other\",\"aud\":\"api\"")), "wrong issuer");
    expect_fail_s(&s, good(t, IA(",\"iss\":\"Switchboard\",\"aud\":\"api\"")), "wrong issuer");
    expect_fail_s(&s, good(t, IA(",\"aud\":\"api\"")), "wrong issuer");
    expect_fail_s(&s, good(t, IA(",\"iss\":[\"switchboard\"],\"aud\":\"api\"")), "wrong issuer");
    expect_fail_s(&s, good(t, IA(",\"iss\":\"switchboard\",\"aud\":\"apix\"")), "wrong audience");
    expect_fail_s(&s, good(t, IA(",\"iss\":\"switchboard\",\"aud\":[\"web\"]")), "wrong audience");
    expect_fail_s(&s, good(t, IA(",\"iss\":\"switchboard\",\"aud\":[]")), "wrong audience");
    expect_fail_s(&s, good(t, IA(",\"iss\":\"switchboard\",\"aud\":[[\"api\"]]")), "wrong audience");
    expect_fail_s(&s, good(t, IA(",\"iss\":\"switchboard\",\"aud\":1")), "wrong audience");
    expect_fail_s(&s, good(t, IA(",\"iss\":\"switchboard\"")), "wrong audience");

    /* Not configured: not checked, whatever the token says. */
    expect_ok(&plain, good(t, IA(",\"iss\":\"anyone\",\"aud\":[\"x\"]")), NOW, &c);
    s.audience = NULL;
    expect_ok(&s, good(t, IA(",\"iss\":\"switchboard\"")), NOW, &c);
    s.issuer = "";
    expect_ok(&s, good(t, IA("")), NOW, &c);
#undef IA
}

static void test_malformed(void **state)
{
    char t[TOKMAX], *big;
    const char *why = NULL;

    expect_fail_s(&plain, "", "malformed token");
    expect_fail_s(&plain, "abc", "malformed token");
    expect_fail_s(&plain, "..", "malformed token");
    good(t, GOOD_BODY);
    *strrchr(t, '.') = '\0';
    expect_fail_s(&plain, t, "malformed token"); /* two segments */
    good(t, GOOD_BODY);
    strcat(t, ".AAAA");
    expect_fail_s(&plain, t, "malformed token"); /* four segments */
    good(t, GOOD_BODY);
    t[3] = '+';
    expect_fail_s(&plain, t, "malformed token"); /* not base64url */
    good(t, GOOD_BODY);
    t[strchr(t, '.') - t + 2] = '=';
    expect_fail_s(&plain, t, "malformed token");
    good(t, GOOD_BODY);
    t[5] = ' ';
    expect_fail_s(&plain, t, "malformed token");
    expect_fail_s(&plain, hs256(t, "not json", GOOD_BODY), "malformed token");
    expect_fail_s(&plain, hs256(t, "", GOOD_BODY), "malformed token");
    expect_fail_s(&plain, "A.eyJ9.sig", "malformed token"); /* impossible base64 length */
    /* 16 header bytes: 22 chars, the last carrying 4 unused bits that must be zero. */
    {
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        hs256(t, "{\"alg\":\"HS256\"} ", GOOD_BODY);
        assert_int_equal(strchr(t, '.') - t, 22);
        expect_ok(&plain, t, NOW, NULL);
        t[21] = a[(strchr(a, t[21]) - a) | 1];
        expect_fail_s(&plain, t, "malformed token");
    }

    /* An embedded NUL inside len. */
    good(t, GOOD_BODY);
    size_t len = strlen(t);
    t[10] = '\0';
    expect_fail(&plain, t, len, NOW, "malformed token");

    /* Size limit: refused by length alone, whatever the bytes. */
    big = malloc(5001);
    memset(big, 'A', 5000);
    big[5000] = '\0';
    big[100] = big[200] = '.';
    expect_fail(&plain, big, 5000, NOW, "token too long");
    expect_fail(&plain, big, JWT_MAX_TOKEN + 1, NOW, "token too long");
    expect_fail(&plain, big, JWT_MAX_TOKEN, NOW, "malformed token"); /* at the limit: parsed */
    free(big);

    /* A large but legal token is fine up to the limit. */
    char body[4200], pad[3000];
    memset(pad, 'p', 2900);
    pad[2900] = '\0';
    snprintf(body, sizeof(body), "{\"sub\":\"a\",\"tenant_id\":1,\"role\":\"agent\",\"exp\":1700000600,\"x\":\"%s\"}",
             pad);
    good(t, body);
    assert_true(strlen(t) <= JWT_MAX_TOKEN);
    assert_int_equal(jwt_verify(&plain, t, strlen(t), NOW, NULL, &why), 0);

    assert_int_equal(jwt_verify(&plain, NULL, 0, NOW, NULL, &why), -1);
    assert_string_equal(why, "malformed token");
    assert_int_equal(jwt_verify(NULL, "a.b.c", 5, NOW, NULL, &why), -1);
}

static void test_empty_secret(void **state)
{
    jwt_settings_t empty = {"", NULL, NULL, 60}, none = {NULL, NULL, NULL, 60};
    char t[TOKMAX], *tok = (char *)"unchanged";
    const char *why = NULL;

    /* Signed with the empty key, as a forger would. */
    craft(t, HS256_HDR, GOOD_BODY, "", EVP_sha256());
    expect_fail_s(&empty, t, "bad signature");
    expect_fail_s(&none, t, "bad signature");
    good(t, GOOD_BODY);
    expect_fail_s(&empty, t, "bad signature");
    expect_fail_s(&none, t, "bad signature");
    craft(t, "{\"alg\":\"none\"}", GOOD_BODY, NULL, NULL);
    expect_fail_s(&none, t, "algorithm must be HS256");

    assert_int_equal(jwt_mint(&empty, "a", 1, JWT_ROLE_AGENT, NOW, 60, &tok, &why), -1);
    assert_null(tok);
    assert_string_equal(why, "empty secret");
    assert_int_equal(jwt_mint(&none, "a", 1, JWT_ROLE_AGENT, NOW, 60, &tok, &why), -1);
    assert_string_equal(why, "empty secret");
}

static void test_mint_errors(void **state)
{
    char *tok = NULL, sub[200];
    const char *why = NULL;

    memset(sub, 'x', 128);
    sub[128] = '\0';
    assert_int_equal(jwt_mint(&plain, "", 1, JWT_ROLE_AGENT, NOW, 60, &tok, &why), -1);
    assert_string_equal(why, "bad sub");
    assert_int_equal(jwt_mint(&plain, NULL, 1, JWT_ROLE_AGENT, NOW, 60, &tok, &why), -1);
    assert_int_equal(jwt_mint(&plain, sub, 1, JWT_ROLE_AGENT, NOW, 60, &tok, &why), -1);
    assert_string_equal(why, "bad sub");
    assert_int_equal(jwt_mint(&plain, "a", 0, JWT_ROLE_AGENT, NOW, 60, &tok, &why), -1);
    assert_string_equal(why, "bad tenant_id");
    assert_int_equal(jwt_mint(&plain, "a", -5, JWT_ROLE_AGENT, NOW, 60, &tok, &why), -1);
    assert_int_equal(jwt_mint(&plain, "a", 1, (jwt_role_t)7, NOW, 60, &tok, &why), -1);
    assert_string_equal(why, "bad role");
    assert_int_equal(jwt_mint(&plain, "a", 1, JWT_ROLE_AGENT, NOW, 0, &tok, &why), -1);
    assert_string_equal(why, "bad ttl");
    assert_int_equal(jwt_mint(&plain, "a", 1, JWT_ROLE_AGENT, NOW, JWT_MAX_TTL + 1, &tok, &why), -1);
    assert_null(tok);
    assert_int_equal(jwt_mint(&plain, "a", 1, JWT_ROLE_AGENT, NOW, 60, NULL, &why), -1);

    /* Quotes and non-ASCII in sub survive the trip. */
    jwt_claims_t c;
    assert_int_equal(jwt_mint(&plain, "\"q\" \xc3\xa9", 1, JWT_ROLE_AGENT, NOW, 60, &tok, &why), 0);
    expect_ok(&plain, tok, NOW, &c);
    assert_string_equal(c.sub, "\"q\" \xc3\xa9");
    free(tok);
}

static void test_parse_ttl(void **state)
{
    long v = -7;
    static const struct {
        const char *in;
        long want;
    } ok[] = {{"90", 90},         {"90s", 90},         {"15m", 900}, {"1h", 3600}, {"7d", 604800},
              {"365d", 31536000}, {"8760h", 31536000}, {"1", 1},     {"0090", 90}};
    static const char *bad[] = {"",    "0",   "0s",   "-5",   "+5",   " 5",    "5 ",       "5x",
                                "5ms", "1h5", "h",    "1.5h", "366d", "8761h", "31536001", "99999999999999999999999",
                                "1H",  "1e3", "0x10", "5d ",  "m"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(jwt_parse_ttl(ok[i].in, &v), 0);
        assert_int_equal(v, ok[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = -7;
        if (jwt_parse_ttl(bad[i], &v) != -1)
            fail_msg("ttl \"%s\" accepted as %ld", bad[i], v);
        assert_int_equal(v, -7);
    }
    assert_int_equal(jwt_parse_ttl(NULL, &v), -1);
}

static void test_roles(void **state)
{
    jwt_role_t r = 0;

    assert_string_equal(jwt_role_name(JWT_ROLE_AGENT), "agent");
    assert_string_equal(jwt_role_name(JWT_ROLE_ADMIN), "admin");
    assert_null(jwt_role_name((jwt_role_t)0));
    assert_int_equal(jwt_role_parse("agent", &r), 0);
    assert_int_equal(r, JWT_ROLE_AGENT);
    assert_int_equal(jwt_role_parse("admin", &r), 0);
    assert_int_equal(r, JWT_ROLE_ADMIN);
    assert_int_equal(jwt_role_parse("root", &r), -1);
    assert_int_equal(jwt_role_parse("Admin", &r), -1);
    assert_int_equal(jwt_role_parse("", &r), -1);
    assert_int_equal(jwt_role_parse(NULL, &r), -1);
    assert_int_equal(r, JWT_ROLE_ADMIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_nbf_iat),         cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_alg_none),        cmocka_unit_test(test_other_algs),
        cmocka_unit_test(test_header_shapes),   cmocka_unit_test(test_claims),
        cmocka_unit_test(test_issuer_audience), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_empty_secret),    cmocka_unit_test(test_mint_errors),
        cmocka_unit_test(test_parse_ttl),       cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests_name("jwt", tests, NULL, NULL);
}
