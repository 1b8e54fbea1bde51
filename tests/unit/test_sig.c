/*
 * Unit tests for server/sig against Twilio's own vectors (tests/vectors/twilio-signatures.json,
 * computed with the twilio npm library). The vectors path is argv[1] or $SB_VECTORS; an
 * unreadable file fails the run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/form.h"
#include "server/sig.h"

typedef struct {
    const char *path;
    json_t *root;
    json_t *list; /* root.vectors */
    char err[512];
} vectors_t;

static void vectors_load(vectors_t *v, const char *path)
{
    json_error_t je;
    memset(v, 0, sizeof(*v));
    v->path = path;
    if (path == NULL || *path == '\0') {
        snprintf(v->err, sizeof(v->err), "no vectors file: pass its path as argv[1] or in SB_VECTORS");
        return;
    }
    if ((v->root = json_load_file(path, 0, &je)) == NULL) {
        snprintf(v->err, sizeof(v->err), "%s:%d: %s", path, je.line, je.text);
        return;
    }
    v->list = json_object_get(v->root, "vectors");
    if (!json_is_array(v->list) || json_array_size(v->list) == 0) {
        snprintf(v->err, sizeof(v->err), "%s: no \"vectors\" array", path);
        v->list = NULL;
    }
}

static json_t *vectors_get(void **state)
{
    vectors_t *v = *state;
    if (v->list == NULL)
        fail_msg("cannot use vectors: %s", v->err);
    return v->list;
}

static json_t *vector_named(void **state, const char *name)
{
    json_t *list = vectors_get(state), *vec;
    size_t i;
    json_array_foreach(list, i, vec)
    {
        if (strcmp(json_string_value(json_object_get(vec, "name")), name) == 0)
            return vec;
    }
    fail_msg("vector %s missing from %s", name, ((vectors_t *)*state)->path);
    return NULL;
}

static const char *str(json_t *vec, const char *field)
{
    const char *s = json_string_value(json_object_get(vec, field));
    if (s == NULL)
        fail_msg("vector %s: no string \"%s\"", json_string_value(json_object_get(vec, "name")), field);
    return s;
}

/* Percent-encodes everything but unreserved bytes, so the parser's decoding is exercised too. */
static void append_encoded(char *out, size_t size, size_t *len, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        assert_true(*len + 4 < size);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~", c)) {
            out[(*len)++] = (char)c;
        } else if (c == ' ') {
            out[(*len)++] = '+';
        } else {
            out[(*len)++] = '%';
            out[(*len)++] = hex[c >> 4];
            out[(*len)++] = hex[c & 15];
        }
    }
    out[*len] = '\0';
}

static void append_pair(char *out, size_t size, size_t *len, const char *k, const char *v)
{
    if (*len != 0) {
        assert_true(*len + 1 < size);
        out[(*len)++] = '&';
    }
    append_encoded(out, size, len, k);
    assert_true(*len + 1 < size);
    out[(*len)++] = '=';
    append_encoded(out, size, len, v);
}

/* A vector's params (object, or array of [key, value]) as the body Twilio would POST, parsed. */
static form_t *vector_form(json_t *vec, const char *extra_key, const char *extra_value)
{
    char body[8192];
    size_t len = 0;
    json_t *params = json_object_get(vec, "params"), *val;
    form_t *f = NULL;
    int err;

    body[0] = '\0';
    if (json_is_object(params)) {
        const char *k;
        json_object_foreach(params, k, val) append_pair(body, sizeof(body), &len, k, json_string_value(val));
    } else if (json_is_array(params)) {
        size_t i;
        json_array_foreach(params, i, val)
        {
            assert_int_equal(json_array_size(val), 2);
            append_pair(body, sizeof(body), &len, json_string_value(json_array_get(val, 0)),
                        json_string_value(json_array_get(val, 1)));
        }
    } else {
        fail_msg("vector %s: params is neither object nor array", str(vec, "name"));
    }
    if (extra_key != NULL)
        append_pair(body, sizeof(body), &len, extra_key, extra_value);
    if ((err = form_parse(body, len, NULL, &f)) != FORM_OK)
        fail_msg("vector %s: form_parse: %s", str(vec, "name"), form_strerror(err));
    return f;
}

static int validate_form(const char *token, const char *url, const form_t *f, const char *sig)
{
    return sig_validate_form(token, url, f, sig, strlen(sig));
}

static int validate_json(const char *token, const char *url, const char *body, const char *sig)
{
    return sig_validate_json(token, url, body, strlen(body), sig, strlen(sig));
}

static void test_vectors_loaded(void **state)
{
    vectors_t *v = *state;
    if (v->list == NULL)
        fail_msg("%s", v->err);
    printf("vectors: %s (%zu)\n", v->path, json_array_size(v->list));
}

/* Every vector validates at its url and at every also_valid_for spelling. */
static void test_every_vector(void **state)
{
    json_t *list = vectors_get(state), *vec;
    size_t i, n_form = 0, n_json = 0;

    json_array_foreach(list, i, vec)
    {
        const char *name = str(vec, "name"), *token = str(vec, "auth_token"), *url = str(vec, "url");
        const char *sig = str(vec, "signature");
        json_t *also = json_object_get(vec, "also_valid_for"), *alt;
        size_t j;

        if (json_object_get(vec, "body") != NULL) {
            const char *body = str(vec, "body");
            if (!validate_json(token, url, body, sig))
                fail_msg("vector %s: JSON body not validated at %s", name, url);
            json_array_foreach(also, j, alt) if (!validate_json(token, json_string_value(alt), body, sig))
                fail_msg("vector %s: JSON body not validated at %s", name, json_string_value(alt));
            n_json++;
        } else {
            form_t *f = vector_form(vec, NULL, NULL);
            if (!validate_form(token, url, f, sig))
                fail_msg("vector %s: not validated at %s", name, url);
            json_array_foreach(also, j, alt) if (!validate_form(token, json_string_value(alt), f, sig))
                fail_msg("vector %s: not validated at %s", name, json_string_value(alt));
            form_free(f);
            n_form++;
        }
    }
    assert_true(n_form > 0);
    assert_true(n_json > 0);
}

/* sig_compute reproduces the vectors signed over the url exactly as written. */
static void test_compute_matches(void **state)
{
    const char *names[] = {"form_basic", "form_custom_port", "form_repeated_keys", "form_empty", "host_case_matters"};
    char out[SIG_LEN + 1];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *vec = vector_named(state, names[i]);
        form_t *f = vector_form(vec, NULL, NULL);
        assert_int_equal(sig_compute(str(vec, "auth_token"), str(vec, "url"), f, out), SIG_OK);
        if (strcmp(out, str(vec, "signature")) != 0)
            fail_msg("vector %s: computed %s, want %s", names[i], out, str(vec, "signature"));
        form_free(f);
    }
    json_t *vec = vector_named(state, "json_body");
    assert_int_equal(sig_compute(str(vec, "auth_token"), str(vec, "url"), NULL, out), SIG_OK);
    assert_string_equal(out, str(vec, "signature"));

    /* signed with the default port: the server's url lacks it, the signature is over the other spelling */
    vec = vector_named(state, "form_signed_with_443");
    form_t *f = vector_form(vec, NULL, NULL);
    assert_int_equal(sig_compute("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", f, out), SIG_OK);
    assert_string_equal(out, str(vec, "signature"));
    assert_int_equal(sig_compute("12345", str(vec, "url"), f, out), SIG_OK);
    assert_string_not_equal(out, str(vec, "signature"));
    form_free(f);
}

/* Port toggling both ways, as twilio-node's addPort/removePort. */
static void test_port_variants(void **state)
{
    json_t *vec = vector_named(state, "form_basic");
    form_t *f = vector_form(vec, NULL, NULL);
    const char *sig = str(vec, "signature");
    /* the server configured with :443 accepts a signature over the url without it */
    assert_true(validate_form("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", f, sig));
    form_free(f);

    vec = vector_named(state, "form_signed_with_80");
    f = vector_form(vec, NULL, NULL);
    sig = str(vec, "signature");
    assert_true(validate_form("12345", "http://mycompany.com/myapp.php?foo=1&bar=2", f, sig));
    assert_true(validate_form("12345", "http://mycompany.com:80/myapp.php?foo=1&bar=2", f, sig));
    /* :80 is only the default of http */
    assert_false(validate_form("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", f, sig));
    form_free(f);

    /* a custom port is required: adding :443 does not give :1234 */
    vec = vector_named(state, "form_custom_port");
    f = vector_form(vec, NULL, NULL);
    assert_false(validate_form("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", f, str(vec, "signature")));
    form_free(f);
}

static void test_host_case(void **state)
{
    json_t *vec = vector_named(state, "host_case_matters");
    form_t *f = vector_form(vec, NULL, NULL);
    const char *sig = str(vec, "signature");
    assert_true(validate_form("12345", "https://MyCompany.com/myapp.php?foo=1&bar=2", f, sig));
    assert_true(validate_form("12345", "https://MyCompany.com:443/myapp.php?foo=1&bar=2", f, sig));
    assert_false(validate_form("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", f, sig));
    form_free(f);
}

/* Repeated keys: values sorted within the key, duplicates counted once, input order irrelevant. */
static void test_repeated_keys(void **state)
{
    json_t *vec = vector_named(state, "form_repeated_keys");
    const char *url = str(vec, "url"), *sig = str(vec, "signature");
    const char *bodies[] = {
        "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234", "Digits=1234&Digits=5678&SidAccount=AC123&Sid=CA123",
        "Digits=5678&Sid=CA123&Digits=1234&SidAccount=AC123",
        "Digits=1234&Sid=CA123&Digits=5678&SidAccount=AC123&Digits=1234", /* Set semantics */
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        form_t *f = NULL;
        assert_int_equal(form_parse(bodies[i], strlen(bodies[i]), NULL, &f), FORM_OK);
        if (!validate_form("12345", url, f, sig))
            fail_msg("not validated: %s", bodies[i]);
        form_free(f);
    }
    /* a different multiset of distinct values is a different request */
    const char *bad[] = {"Sid=CA123&SidAccount=AC123&Digits=1234", "Sid=CA123&SidAccount=AC123&Digits=12345678",
                         "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        form_t *f = NULL;
        assert_int_equal(form_parse(bad[i], strlen(bad[i]), NULL, &f), FORM_OK);
        assert_false(validate_form("12345", url, f, sig));
        form_free(f);
    }
}

static void test_form_negative(void **state)
{
    json_t *vec = vector_named(state, "form_basic");
    const char *url = str(vec, "url"), *sig = str(vec, "signature");
    form_t *f = vector_form(vec, NULL, NULL), *g;
    char buf[64];

    assert_true(validate_form("12345", url, f, sig));

    /* tampered value */
    char *digits = (char *)form_get(f, "Digits");
    assert_non_null(digits);
    digits[0] = '9';
    assert_false(validate_form("12345", url, f, sig));
    digits[0] = '1';
    assert_true(validate_form("12345", url, f, sig));

    /* extra param */
    g = vector_form(vec, "Extra", "1");
    assert_false(validate_form("12345", url, g, sig));
    form_free(g);
    /* an extra empty param still changes the data (its key is signed) */
    g = vector_form(vec, "Extra", "");
    assert_false(validate_form("12345", url, g, sig));
    form_free(g);

    /* missing param: drop the last pair */
    f->count--;
    assert_false(validate_form("12345", url, f, sig));
    f->count++;
    /* no params at all */
    assert_false(validate_form("12345", url, NULL, sig));

    /* changed path or query */
    assert_false(validate_form("12345", "https://mycompany.com/myapp.phpx?foo=1&bar=2", f, sig));
    assert_false(validate_form("12345", "https://mycompany.com/myapp.php?foo=1&bar=3", f, sig));
    assert_false(validate_form("12345", "https://mycompany.com/myapp.php?bar=2&foo=1", f, sig));
    assert_false(validate_form("12345", "https://mycompany.com/myapp.php", f, sig));
    assert_false(validate_form("12345", "https://evil.com/myapp.php?foo=1&bar=2", f, sig));
    assert_false(validate_form("12345", "http://mycompany.com/myapp.php?foo=1&bar=2", f, sig));

    /* wrong or empty token */
    assert_false(validate_form("12346", url, f, sig));
    assert_false(validate_form("1234", url, f, sig));
    assert_false(validate_form("", url, f, sig));
    assert_false(sig_validate_form(NULL, url, f, sig, strlen(sig)));

    /* truncated, extended, garbled, empty */
    assert_false(sig_validate_form("12345", url, f, sig, strlen(sig) - 1));
    assert_false(sig_validate_form("12345", url, f, sig, 27));
    assert_false(sig_validate_form("12345", url, f, sig, 1));
    snprintf(buf, sizeof(buf), "%s=", sig);
    assert_false(validate_form("12345", url, f, buf));
    snprintf(buf, sizeof(buf), " %s", sig);
    assert_false(validate_form("12345", url, f, buf));
    snprintf(buf, sizeof(buf), "%s", sig);
    buf[5] ^= 1;
    assert_false(validate_form("12345", url, f, buf));
    snprintf(buf, sizeof(buf), "%s", sig);
    buf[SIG_LEN - 1] = buf[SIG_LEN - 1] == '=' ? 'A' : '=';
    assert_false(validate_form("12345", url, f, buf));
    assert_false(validate_form("12345", url, f, ""));
    assert_false(sig_validate_form("12345", url, f, NULL, 0));
    /* the header value need not be NUL-terminated: the length is what counts */
    snprintf(buf, sizeof(buf), "%sGARBAGE", sig);
    assert_true(sig_validate_form("12345", url, f, buf, SIG_LEN));
    assert_false(sig_validate_form("12345", url, f, buf, SIG_LEN + 1));

    form_free(f);
}

static void test_json_negative(void **state)
{
    json_t *vec = vector_named(state, "json_body");
    const char *url = str(vec, "url"), *body = str(vec, "body"), *sig = str(vec, "signature");
    char u[512], hex[SIG_SHA256_HEX + 1];

    assert_true(validate_json("12345", url, body, sig));
    assert_int_equal(sig_body_sha256_hex(body, strlen(body), hex), SIG_OK);
    assert_non_null(strstr(url, hex));

    /* the signature covers the url alone: a form check with no params agrees */
    assert_true(sig_validate_form("12345", url, NULL, sig, strlen(sig)));

    /* tampered body */
    assert_false(validate_json("12345", url, "{\"property\": \"value\", \"boolean\": false}", sig));
    assert_false(validate_json("12345", url, "", sig));
    assert_false(sig_validate_json("12345", url, body, strlen(body) - 1, sig, strlen(sig)));

    /* wrong bodySHA256 in the url, even when the signature is recomputed for that url */
    char s2[SIG_LEN + 1];
    snprintf(u, sizeof(u), "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=%064d", 0);
    assert_int_equal(sig_compute("12345", u, NULL, s2), SIG_OK);
    assert_false(validate_json("12345", u, body, s2));
    /* uppercase hex is not what Twilio sends */
    snprintf(u, sizeof(u), "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=%s", hex);
    for (char *p = strstr(u, "bodySHA256=") + 11; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(sig_compute("12345", u, NULL, s2), SIG_OK);
    assert_false(validate_json("12345", u, body, s2));
    /* no bodySHA256 at all */
    assert_int_equal(sig_compute("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", NULL, s2), SIG_OK);
    assert_false(validate_json("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", body, s2));
    /* only the first bodySHA256 counts (URLSearchParams.get) */
    snprintf(u, sizeof(u), "https://x.com/j?bodySHA256=%064d&bodySHA256=%s", 0, hex);
    assert_int_equal(sig_compute("12345", u, NULL, s2), SIG_OK);
    assert_false(validate_json("12345", u, body, s2));
    snprintf(u, sizeof(u), "https://x.com/j?bodySHA256=%s&bodySHA256=%064d", hex, 0);
    assert_int_equal(sig_compute("12345", u, NULL, s2), SIG_OK);
    assert_true(validate_json("12345", u, body, s2));
    /* a signature over the url with the body's params appended is not the JSON rule */
    assert_false(validate_json("12345", url, body, "IK+Dwps556ElfBT0I3Rgjkr1wJU="));

    /* wrong token, truncated and empty signature */
    assert_false(validate_json("54321", url, body, sig));
    assert_false(sig_validate_json("12345", url, body, strlen(body), sig, SIG_LEN - 1));
    assert_false(validate_json("12345", url, body, ""));
    /* changed query */
    snprintf(u, sizeof(u), "%s&x=1", url);
    assert_false(validate_json("12345", u, body, sig));
}

static void test_sha256_hex(void **state)
{
    (void)state;
    char hex[SIG_SHA256_HEX + 1];
    assert_int_equal(sig_body_sha256_hex(NULL, 0, hex), SIG_OK);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(sig_body_sha256_hex("abc", 3, hex), SIG_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_compute_errors(void **state)
{
    (void)state;
    char out[SIG_LEN + 1];
    assert_int_equal(sig_compute("", "https://x.com/", NULL, out), SIG_ETOKEN);
    assert_string_equal(out, "");
    assert_int_equal(sig_compute(NULL, "https://x.com/", NULL, out), SIG_ETOKEN);

    /* more params than can be signed: refused, never silently truncated */
    const form_limits_t lim = {SIG_MAX_PARAMS + 1, FORM_MAX_KEY, FORM_MAX_VALUE};
    char body[SIG_MAX_PARAMS * 8 + 16], *p = body;
    form_t *f = NULL;
    for (int i = 0; i <= SIG_MAX_PARAMS; i++)
        p += sprintf(p, "%sk%d=v", i ? "&" : "", i);
    assert_int_equal(form_parse(body, strlen(body), &lim, &f), FORM_OK);
    assert_int_equal(sig_compute("12345", "https://x.com/", f, out), SIG_ETOOMANY);
    assert_false(sig_validate_form("12345", "https://x.com/", f, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", SIG_LEN));
    f->count = SIG_MAX_PARAMS;
    assert_int_equal(sig_compute("12345", "https://x.com/", f, out), SIG_OK);
    assert_true(validate_form("12345", "https://x.com/", f, out));
    form_free(f);

    const int codes[] = {SIG_OK, SIG_ECRYPTO, SIG_ETOOMANY, SIG_ETOKEN, SIG_ETOOLONG, SIG_EBASE, SIG_ETARGET};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(sig_strerror(codes[i]), sig_strerror(codes[j]));
    assert_non_null(sig_strerror(999));
}

/* URL shapes beyond the vectors: userinfo, IPv6, http default, no authority. */
static void test_url_shapes(void **state)
{
    (void)state;
    struct {
        const char *signed_url, *server_url;
        int valid;
    } cases[] = {
        {"https://u:p@x.com:443/a?b=1", "https://u:p@x.com/a?b=1", 1},
        {"https://u:p@x.com/a?b=1", "https://u:p@x.com:443/a?b=1", 1},
        {"https://[::1]:443/a", "https://[::1]/a", 1},
        {"https://[::1]/a", "https://[::1]:443/a", 1},
        {"HTTPS://x.com:443/a", "HTTPS://x.com/a", 1},
        {"http://x.com:80", "http://x.com", 1},
        {"https://x.com:443?q=a:b", "https://x.com?q=a:b", 1},
        {"wss://x.com:80/a", "wss://x.com/a", 1},       /* twilio-node: :80 for any scheme but https */
        {"https://x.com:8443/a", "https://x.com/a", 0}, /* only a default port is added */
        {"https://x.com/a", "https://x.com:8443/a", 1}, /* removePort drops any port */
        {"https://x.com:8443/a", "https://x.com:443/a", 0},
        {"https://x.com:443/a", "/a", 0},
        {"https://x.com/a", "https://x.com/a/", 0},
    };
    char sig[SIG_LEN + 1];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(sig_compute("tok", cases[i].signed_url, NULL, sig), SIG_OK);
        if (validate_form("tok", cases[i].server_url, NULL, sig) != cases[i].valid)
            fail_msg("signed %s, server %s: want %d", cases[i].signed_url, cases[i].server_url, cases[i].valid);
    }
}

static void test_build_url(void **state)
{
    (void)state;
    char buf[64];
    size_t len = 0;
    const char *t = "/twilio/voice?x=1";

    assert_int_equal(sig_build_url(buf, sizeof(buf), "https://example.com", t, strlen(t), &len), SIG_OK);
    assert_string_equal(buf, "https://example.com/twilio/voice?x=1");
    assert_int_equal(len, strlen(buf));
    assert_int_equal(sig_build_url(buf, sizeof(buf), "https://example.com/", t, strlen(t), NULL), SIG_OK);
    assert_string_equal(buf, "https://example.com/twilio/voice?x=1");
    assert_int_equal(sig_build_url(buf, sizeof(buf), "https://example.com//", t, strlen(t), NULL), SIG_OK);
    assert_string_equal(buf, "https://example.com/twilio/voice?x=1");
    assert_int_equal(sig_build_url(buf, sizeof(buf), "https://Example.com:8443/sb/", t, strlen(t), NULL), SIG_OK);
    assert_string_equal(buf, "https://Example.com:8443/sb/twilio/voice?x=1");
    assert_int_equal(sig_build_url(buf, sizeof(buf), "http://h", "a", 1, NULL), SIG_OK);
    assert_string_equal(buf, "http://h/a");
    assert_int_equal(sig_build_url(buf, sizeof(buf), "http://h", "", 0, NULL), SIG_OK);
    assert_string_equal(buf, "http://h/");
    /* target need not be NUL-terminated */
    assert_int_equal(sig_build_url(buf, sizeof(buf), "http://h", "/ab/cd", 3, NULL), SIG_OK);
    assert_string_equal(buf, "http://h/ab");

    /* bounded: exactly fits, then one byte short */
    const char *base = "https://example.com";
    size_t need = strlen(base) + strlen(t) + 1;
    assert_int_equal(sig_build_url(buf, need, base, t, strlen(t), &len), SIG_OK);
    assert_int_equal(len, need - 1);
    assert_int_equal(sig_build_url(buf, need - 1, base, t, strlen(t), NULL), SIG_ETOOLONG);
    assert_string_equal(buf, "");
    assert_int_equal(sig_build_url(buf, 0, base, t, strlen(t), NULL), SIG_ETOOLONG);

    const char *bad[] = {"example.com",       "ftp://x.com", "https://", "https:///x",
                         "https://x.com?a=1", "https://x#f", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sig_build_url(buf, sizeof(buf), bad[i], t, strlen(t), NULL) != SIG_EBASE)
            fail_msg("base %s accepted", bad[i]);
    assert_int_equal(sig_build_url(buf, sizeof(buf), NULL, t, strlen(t), NULL), SIG_EBASE);
    assert_int_equal(sig_build_url(buf, sizeof(buf), base, "/a\0b", 4, NULL), SIG_ETARGET);
}

/* The whole path a webhook takes: base + target -> url, body -> form, header -> verdict. */
static void test_end_to_end(void **state)
{
    json_t *vec = vector_named(state, "form_basic");
    form_t *f = vector_form(vec, NULL, NULL);
    const char *t = "/myapp.php?foo=1&bar=2";
    char url[256];
    assert_int_equal(sig_build_url(url, sizeof(url), "https://mycompany.com/", t, strlen(t), NULL), SIG_OK);
    assert_true(validate_form(str(vec, "auth_token"), url, f, str(vec, "signature")));
    form_free(f);
}

int main(int argc, char **argv)
{
    vectors_t v;
    vectors_load(&v, argc > 1 ? argv[1] : getenv("SB_VECTORS"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_vectors_loaded, &v),
        cmocka_unit_test_prestate(test_every_vector, &v),
        cmocka_unit_test_prestate(test_compute_matches, &v),
        cmocka_unit_test_prestate(test_port_variants, &v),
        cmocka_unit_test_prestate(test_host_case, &v),
        cmocka_unit_test_prestate(test_repeated_keys, &v),
        cmocka_unit_test_prestate(test_form_negative, &v),
        cmocka_unit_test_prestate(test_json_negative, &v),
        cmocka_unit_test_prestate(test_end_to_end, &v),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_compute_errors),
        cmocka_unit_test(test_url_shapes),
        cmocka_unit_test(test_build_url),
    };
    int failed = cmocka_run_group_tests_name("sig", tests, NULL, NULL);
    json_decref(v.root);
    return failed;
}
