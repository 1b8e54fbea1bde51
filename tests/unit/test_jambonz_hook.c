/*
 * Unit tests for jambonz/hook.h: the webhook body parser (fields, limits, errors) and the
 * Jambonz-Signature check, against vectors signed as jambonz-feature-server signs and judged
 * by jambonz's own verifiers (tests/vectors/jambonz-signatures.json; argv[1] is the vectors
 * folder, or $SB_VECTORS). An unreadable vectors file fails the run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jambonz/hook.h"

#define SID  "b6f48929-8e86-4d62-ae3c-64fb574d91f6"
#define NOW  INT64_C(1767225600)
#define KEY  "wh_secret_9f8e7d6c5b4a"
#define BODY "{\"call_sid\":\"" SID "\",\"call_status\":\"completed\",\"duration\":42}"

static int parse(const char *body, jhook_t *h, const char **bad)
{
    return jhook_parse(body, strlen(body), h, bad);
}

/* Parses `body`, expecting error `err` naming `field` (NULL: none). */
static void expect_error(const char *body, int err, const char *field)
{
    jhook_t h;
    const char *bad = "unset";
    int rc = parse(body, &h, &bad);
    if (rc != err)
        fail_msg("%s: got %d (%s), want %d", body, rc, jhook_strerror(rc), err);
    if (field == NULL)
        assert_null(bad);
    else if (bad == NULL || strcmp(bad, field) != 0)
        fail_msg("%s: bad field %s, want %s", body, bad ? bad : "(null)", field);
    /* nothing half-parsed is left behind */
    assert_string_equal(h.call_sid, "");
    assert_string_equal(h.from, "");
    assert_int_equal(h.sip_status, -1);
    assert_int_equal(h.duration, -1);
}

/* ---- body ---- */

static void test_call_hook(void **state)
{
    /* the shape of jambonz's call webhook, with the keys we ignore in every JSON type */
    const char *body =
        "{\"call_sid\":\"" SID "\",\"direction\":\"inbound\",\"from\":\"+14155550100\",\"to\":\"+18005550199\","
        "\"call_id\":\"6f1c1d6e-0c1f-123b-9d3a-02420a000102\",\"sbc_callid\":\"abc123@192.0.2.10\","
        "\"sip_status\":100,\"sip_reason\":\"Trying\",\"call_status\":\"trying\","
        "\"account_sid\":\"9351f46a-678c-43f5-b8a6-d4eb58d131af\","
        "\"application_sid\":\"e7bcbf5e-2d1f-4bd4-9f3c-5a6d3c7b0a11\",\"trace_id\":\"0af7651916cd43dd\","
        "\"originating_sip_ip\":\"192.0.2.10\",\"caller_name\":\"Jos\\u00e9 M\xc3\xbcller\","
        "\"sip\":{\"headers\":{\"via\":\"SIP/2.0/UDP "
        "192.0.2.10\",\"x-n\":[1,2,{\"z\":null}]},\"raw\":\"INVITE\\r\\n\"},"
        "\"env_vars\":null,\"customerData\":{\"callSid\":\"x\"},\"fs_public_ip\":1.5,\"flag\":true}";
    jhook_t h;
    const char *bad = "unset";
    assert_int_equal(parse(body, &h, &bad), JHOOK_OK);
    assert_null(bad);
    assert_string_equal(h.call_sid, SID);
    assert_string_equal(h.direction, "inbound");
    assert_string_equal(h.from, "+14155550100");
    assert_string_equal(h.to, "+18005550199");
    assert_string_equal(h.caller_name, "Jos\xc3\xa9 M\xc3\xbcller");
    assert_string_equal(h.call_id, "6f1c1d6e-0c1f-123b-9d3a-02420a000102");
    assert_string_equal(h.call_status, "trying");
    assert_string_equal(h.account_sid, "9351f46a-678c-43f5-b8a6-d4eb58d131af");
    assert_string_equal(h.application_sid, "e7bcbf5e-2d1f-4bd4-9f3c-5a6d3c7b0a11");
    assert_int_equal(h.sip_status, 100);
    assert_string_equal(h.sip_reason, "Trying");
    /* absent */
    assert_int_equal(h.duration, -1);
    assert_string_equal(h.call_termination_by, "");
    assert_string_equal(h.dial_call_status, "");
    assert_int_equal(h.dial_sip_status, -1);
    assert_string_equal(h.dial_call_sid, "");
    assert_int_equal(h.dial_call_duration, -1);
    assert_string_equal(h.digits, "");
    assert_int_equal(h.refer_status, -1);
    assert_int_equal(h.final_referred_call_status, -1);
}

static void test_status_and_action_hooks(void **state)
{
    jhook_t h;
    assert_int_equal(parse("{\"call_sid\":\"" SID "\",\"call_status\":\"completed\",\"sip_status\":200,"
                           "\"duration\":42,\"call_termination_by\":\"caller\"}",
                           &h, NULL),
                     JHOOK_OK);
    assert_string_equal(h.call_status, "completed");
    assert_int_equal(h.sip_status, 200);
    assert_int_equal(h.duration, 42);
    assert_string_equal(h.call_termination_by, "caller");

    assert_int_equal(parse("{\"call_sid\":\"a\",\"dial_call_status\":\"busy\",\"dial_sip_status\":486,"
                           "\"dial_call_sid\":\"c2\"}",
                           &h, NULL),
                     JHOOK_OK);
    assert_string_equal(h.dial_call_status, "busy");
    assert_int_equal(h.dial_sip_status, 486);
    assert_string_equal(h.dial_call_sid, "c2");

    assert_int_equal(parse("{\"call_sid\":\"a\",\"dial_call_duration\":12,\"digits\":\"#\"}", &h, NULL), JHOOK_OK);
    assert_int_equal(h.dial_call_duration, 12);
    assert_string_equal(h.digits, "#");

    /* sip:refer: final_referred_call_status is the digits cut from a NOTIFY, a string */
    assert_int_equal(
        parse("{\"call_sid\":\"a\",\"refer_status\":202,\"final_referred_call_status\":\"200\"}", &h, NULL), JHOOK_OK);
    assert_int_equal(h.refer_status, 202);
    assert_int_equal(h.final_referred_call_status, 200);
}

static void test_integers(void **state)
{
    jhook_t h;
    assert_int_equal(parse("{\"call_sid\":\"a\",\"sip_status\":\"486\",\"duration\":0}", &h, NULL), JHOOK_OK);
    assert_int_equal(h.sip_status, 486);
    assert_int_equal(h.duration, 0);
    assert_int_equal(parse("{\"call_sid\":\"a\",\"duration\":2147483647,\"sip_status\":\"999999999\"}", &h, NULL),
                     JHOOK_OK);
    assert_int_equal(h.duration, INT_MAX);
    assert_int_equal(h.sip_status, 999999999);
    assert_int_equal(parse("{\"call_sid\":\"a\",\"duration\":null,\"sip_status\":\"0007\"}", &h, NULL), JHOOK_OK);
    assert_int_equal(h.duration, -1);
    assert_int_equal(h.sip_status, 7);

    expect_error("{\"call_sid\":\"a\",\"duration\":-1}", JHOOK_EFIELD, "duration");
    expect_error("{\"call_sid\":\"a\",\"duration\":2147483648}", JHOOK_EFIELD, "duration");
    expect_error("{\"call_sid\":\"a\",\"duration\":1.5}", JHOOK_EFIELD, "duration");
    expect_error("{\"call_sid\":\"a\",\"duration\":1.0}", JHOOK_EFIELD, "duration");
    expect_error("{\"call_sid\":\"a\",\"duration\":true}", JHOOK_EFIELD, "duration");
    expect_error("{\"call_sid\":\"a\",\"duration\":[1]}", JHOOK_EFIELD, "duration");
    expect_error("{\"call_sid\":\"a\",\"sip_status\":\"\"}", JHOOK_EFIELD, "sip_status");
    expect_error("{\"call_sid\":\"a\",\"sip_status\":\"-1\"}", JHOOK_EFIELD, "sip_status");
    expect_error("{\"call_sid\":\"a\",\"sip_status\":\"+1\"}", JHOOK_EFIELD, "sip_status");
    expect_error("{\"call_sid\":\"a\",\"sip_status\":\" 1\"}", JHOOK_EFIELD, "sip_status");
    expect_error("{\"call_sid\":\"a\",\"sip_status\":\"4a\"}", JHOOK_EFIELD, "sip_status");
    expect_error("{\"call_sid\":\"a\",\"sip_status\":\"1234567890\"}", JHOOK_EFIELD, "sip_status");
    expect_error("{\"call_sid\":\"a\",\"refer_status\":{}}", JHOOK_EFIELD, "refer_status");
}

static void test_call_sid(void **state)
{
    char body[256];
    jhook_t h;
    expect_error("{}", JHOOK_EMISSING, "call_sid");
    expect_error("{\"callSid\":\"" SID "\"}", JHOOK_EMISSING, "call_sid"); /* camelCase is the socket's, not ours */
    expect_error("{\"call_sid\":null}", JHOOK_EMISSING, "call_sid");
    expect_error("{\"call_sid\":\"\"}", JHOOK_EFIELD, "call_sid");
    expect_error("{\"call_sid\":42}", JHOOK_EFIELD, "call_sid");
    expect_error("{\"call_sid\":\"a/b\"}", JHOOK_EFIELD, "call_sid");
    expect_error("{\"call_sid\":\"a b\"}", JHOOK_EFIELD, "call_sid");
    expect_error("{\"call_sid\":\"\\u00e9\"}", JHOOK_EFIELD, "call_sid");
    /* the missing call_sid is reported even when a later field is bad too */
    expect_error("{\"duration\":\"x\"}", JHOOK_EMISSING, "call_sid");

    char sid[JHOOK_SID_MAX + 2];
    memset(sid, 'a', sizeof(sid) - 1);
    sid[JHOOK_SID_MAX] = '\0';
    snprintf(body, sizeof(body), "{\"call_sid\":\"%s\"}", sid);
    assert_int_equal(parse(body, &h, NULL), JHOOK_OK);
    assert_string_equal(h.call_sid, sid);
    sid[JHOOK_SID_MAX] = 'a', sid[JHOOK_SID_MAX + 1] = '\0';
    snprintf(body, sizeof(body), "{\"call_sid\":\"%s\"}", sid);
    expect_error(body, JHOOK_EFIELD, "call_sid");

    assert_int_equal(parse("{\"call_sid\":\"A.z_0-9\"}", &h, NULL), JHOOK_OK);
    expect_error("{\"call_sid\":\"a\",\"account_sid\":\"x;y\"}", JHOOK_EFIELD, "account_sid");
    expect_error("{\"call_sid\":\"a\",\"dial_call_sid\":\"\"}", JHOOK_EFIELD, "dial_call_sid");
    assert_int_equal(parse("{\"call_sid\":\"a\",\"application_sid\":null}", &h, NULL), JHOOK_OK);
    assert_string_equal(h.application_sid, "");
}

static void test_strings(void **state)
{
    char body[1024], big[JHOOK_STR_MAX + 2];
    jhook_t h;
    memset(big, 'x', sizeof(big) - 1);
    big[JHOOK_STR_MAX] = '\0';
    snprintf(body, sizeof(body), "{\"call_sid\":\"a\",\"from\":\"%s\"}", big);
    assert_int_equal(parse(body, &h, NULL), JHOOK_OK);
    assert_int_equal(strlen(h.from), JHOOK_STR_MAX);
    big[JHOOK_STR_MAX] = 'x', big[JHOOK_STR_MAX + 1] = '\0';
    snprintf(body, sizeof(body), "{\"call_sid\":\"a\",\"from\":\"%s\"}", big);
    expect_error(body, JHOOK_EFIELD, "from");

    /* the limit is in bytes: 16 two-byte characters fill a 31-byte field over */
    expect_error("{\"call_sid\":\"a\",\"direction\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                 "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}",
                 JHOOK_EFIELD, "direction");
    expect_error("{\"call_sid\":\"a\",\"caller_name\":\"a\\u0007b\"}", JHOOK_EFIELD, "caller_name");
    expect_error("{\"call_sid\":\"a\",\"caller_name\":\"a\\r\\nb\"}", JHOOK_EFIELD, "caller_name");
    expect_error("{\"call_sid\":\"a\",\"caller_name\":\"a\\u007fb\"}", JHOOK_EFIELD, "caller_name");
    expect_error("{\"call_sid\":\"a\",\"to\":5}", JHOOK_EFIELD, "to");
    expect_error("{\"call_sid\":\"a\",\"to\":[\"x\"]}", JHOOK_EFIELD, "to");
    expect_error("{\"call_sid\":\"a\",\"call_status\":false}", JHOOK_EFIELD, "call_status");
    assert_int_equal(parse("{\"call_sid\":\"a\",\"to\":\"\",\"from\":null}", &h, NULL), JHOOK_OK);
    assert_string_equal(h.to, "");
    assert_string_equal(h.from, "");
}

static void test_not_json(void **state)
{
    jhook_t h;
    const char *bad = "unset";
    expect_error("", JHOOK_EJSON, NULL);
    expect_error("{", JHOOK_EJSON, NULL);
    expect_error("{\"call_sid\":\"a\"}x", JHOOK_EJSON, NULL);
    expect_error("{\"call_sid\":\"a\",\"call_sid\":\"b\"}", JHOOK_EJSON, NULL); /* duplicate key */
    expect_error("{\"call_sid\":\"a\\u0000b\"}", JHOOK_EJSON, NULL);
    expect_error("{\"call_sid\":\"\xff\"}", JHOOK_EJSON, NULL);
    expect_error("[]", JHOOK_EOBJECT, NULL);
    expect_error("\"call_sid\"", JHOOK_EOBJECT, NULL);
    expect_error("42", JHOOK_EOBJECT, NULL);
    expect_error("null", JHOOK_EOBJECT, NULL);
    assert_int_equal(jhook_parse(NULL, 0, &h, &bad), JHOOK_EJSON);
    assert_null(bad);

    /* length decides, not a NUL: the bytes after `len` are never read */
    const char *buf = "{\"call_sid\":\"abc\"}garbage";
    assert_int_equal(jhook_parse(buf, 18, &h, NULL), JHOOK_OK);
    assert_string_equal(h.call_sid, "abc");
    assert_int_equal(jhook_parse(buf, 17, &h, NULL), JHOOK_EJSON);

    /* size limit, checked before parsing */
    size_t n = JHOOK_BODY_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"call_sid\":\"a\"}", 16);
    assert_int_equal(jhook_parse(big, n, &h, &bad), JHOOK_ETOOBIG);
    assert_null(bad);
    assert_int_equal(jhook_parse(big, n - 1, &h, NULL), JHOOK_OK); /* whitespace pads the largest allowed */
    free(big);

    for (int e = 0; e >= -6; e--)
        assert_non_null(jhook_strerror(e));
    assert_string_equal(jhook_strerror(JHOOK_OK), "ok");
}

/* ---- signatures ---- */

typedef struct {
    json_t *root, *list;
    char err[8192];
} vectors_t;

static jhook_sig_t verdict(const char *s)
{
    static const char *const names[] = {"ok", "missing", "malformed", "stale", "mismatch"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return (jhook_sig_t)i;
    fail_msg("unknown verdict %s", s);
    return JHOOK_SIG_MISMATCH;
}

static json_t *vectors(void **state)
{
    vectors_t *v = *state;
    if (v->list == NULL)
        fail_msg("cannot use vectors: %s", v->err);
    return v->list;
}

static const char *str(json_t *vec, const char *field)
{
    const char *s = json_string_value(json_object_get(vec, field));
    if (s == NULL)
        fail_msg("vector %s: no string \"%s\"", json_string_value(json_object_get(vec, "name")), field);
    return s;
}

static void test_vectors(void **state)
{
    json_t *list = vectors(state), *vec;
    size_t i, ok = 0;
    assert_true(json_array_size(list) >= 10);
    json_array_foreach(list, i, vec)
    {
        const char *name = str(vec, "name"), *secret = str(vec, "secret"), *body = str(vec, "body");
        const char *header = str(vec, "header");
        int64_t now = json_integer_value(json_object_get(vec, "now"));
        jhook_sig_t want = verdict(str(vec, "expected"));
        jhook_sig_t got = jhook_verify(secret, header, strlen(header), body, strlen(body), now);
        if (got != want)
            fail_msg("vector %s: %s, want %s", name, jhook_sig_strerror(got), jhook_sig_strerror(want));
        /* the header jambonz sent is the one jhook_sign writes */
        long long t;
        int end = 0;
        if (want == JHOOK_SIG_OK && sscanf(header, "t=%lld,v1=%*64[0-9a-f]%n", &t, &end) == 1 && header[end] == '\0') {
            char mine[JHOOK_SIGN_SIZE];
            assert_int_equal(jhook_sign(secret, t, body, strlen(body), mine, sizeof(mine)), 0);
            assert_string_equal(mine, header);
            ok++;
        }
    }
    assert_true(ok >= 4);
}

static char header[JHOOK_SIGN_SIZE];

static jhook_sig_t verify(const char *hdr, const char *body, int64_t now)
{
    return jhook_verify(KEY, hdr, strlen(hdr), body, strlen(body), now);
}

static void sign(int64_t t, const char *body)
{
    assert_int_equal(jhook_sign(KEY, t, body, strlen(body), header, sizeof(header)), 0);
}

static void test_time(void **state)
{
    sign(NOW, BODY);
    assert_int_equal(verify(header, BODY, NOW), JHOOK_SIG_OK);
    assert_int_equal(verify(header, BODY, NOW + 300), JHOOK_SIG_OK);
    assert_int_equal(verify(header, BODY, NOW + 301), JHOOK_SIG_STALE);
    assert_int_equal(verify(header, BODY, NOW - 300), JHOOK_SIG_OK); /* from the future, within tolerance */
    assert_int_equal(verify(header, BODY, NOW - 301), JHOOK_SIG_STALE);
    assert_int_equal(verify(header, BODY, INT64_MIN), JHOOK_SIG_STALE);
    assert_int_equal(verify(header, BODY, INT64_MAX), JHOOK_SIG_STALE);
    assert_int_equal(verify(header, BODY, 0), JHOOK_SIG_STALE);
    /* stale wins over a bad signature: no HMAC for a replay */
    assert_int_equal(verify(header, "{}", NOW + 1000), JHOOK_SIG_STALE);

    sign(0, BODY);
    assert_int_equal(verify(header, BODY, 300), JHOOK_SIG_OK);
    sign(INT64_C(999999999999), BODY);
    assert_int_equal(verify(header, BODY, INT64_C(999999999999)), JHOOK_SIG_OK);
}

static void test_several_v1(void **state)
{
    char good[65], other[65], hdr[1200];
    sign(NOW, BODY);
    memcpy(good, strstr(header, "v1=") + 3, 64), good[64] = '\0';
    assert_int_equal(jhook_sign("old", NOW, BODY, strlen(BODY), header, sizeof(header)), 0);
    memcpy(other, strstr(header, "v1=") + 3, 64), other[64] = '\0';

    snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s,v1=%s", (long long)NOW, other, good);
    assert_int_equal(verify(hdr, BODY, NOW), JHOOK_SIG_OK);
    snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s", (long long)NOW, other);
    assert_int_equal(verify(hdr, BODY, NOW), JHOOK_SIG_MISMATCH);

    /* the eighth v1 may match; a ninth is too many even if it would */
    int n = snprintf(hdr, sizeof(hdr), "t=%lld", (long long)NOW);
    for (int i = 0; i < 7; i++)
        n += snprintf(hdr + n, sizeof(hdr) - n, ",v1=%s", other);
    snprintf(hdr + n, sizeof(hdr) - n, ",v1=%s", good);
    assert_int_equal(verify(hdr, BODY, NOW), JHOOK_SIG_OK);
    snprintf(hdr + n, sizeof(hdr) - n, ",v1=%s,v1=%s", other, good);
    assert_int_equal(verify(hdr, BODY, NOW), JHOOK_SIG_MALFORMED);

    /* other schemes are skipped, up to JHOOK_SIG_MAX_ITEMS items in all */
    n = snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s", (long long)NOW, good);
    for (int i = 2; i < JHOOK_SIG_MAX_ITEMS; i++)
        n += snprintf(hdr + n, sizeof(hdr) - n, ",v0=x");
    assert_int_equal(verify(hdr, BODY, NOW), JHOOK_SIG_OK);
    snprintf(hdr + n, sizeof(hdr) - n, ",v0=x");
    assert_int_equal(verify(hdr, BODY, NOW), JHOOK_SIG_MALFORMED);
}

static void test_tampered(void **state)
{
    char body[] = BODY;
    sign(NOW, body);
    assert_int_equal(verify(header, body, NOW), JHOOK_SIG_OK);
    for (size_t i = 0; i < strlen(body); i += 7) {
        body[i] ^= 1;
        assert_int_equal(verify(header, body, NOW), JHOOK_SIG_MISMATCH);
        body[i] ^= 1;
    }
    /* a body cut short or grown by one byte */
    assert_int_equal(jhook_verify(KEY, header, strlen(header), body, strlen(body) - 1, NOW), JHOOK_SIG_MISMATCH);
    assert_int_equal(verify(header, BODY " ", NOW), JHOOK_SIG_MISMATCH);
    /* the signed timestamp is part of the signature */
    char hdr[JHOOK_SIGN_SIZE];
    snprintf(hdr, sizeof(hdr), "t=%lld%s", (long long)NOW + 1, strchr(header, ','));
    assert_int_equal(verify(hdr, body, NOW), JHOOK_SIG_MISMATCH);
    /* one hex digit of the signature */
    snprintf(hdr, sizeof(hdr), "%s", header);
    char *last = hdr + strlen(hdr) - 1;
    *last = *last == '0' ? '1' : '0';
    assert_int_equal(verify(hdr, body, NOW), JHOOK_SIG_MISMATCH);
    /* another secret, an empty one, none */
    assert_int_equal(jhook_verify("other", header, strlen(header), body, strlen(body), NOW), JHOOK_SIG_MISMATCH);
    assert_int_equal(jhook_verify("", header, strlen(header), body, strlen(body), NOW), JHOOK_SIG_MISMATCH);
    assert_int_equal(jhook_verify(NULL, header, strlen(header), body, strlen(body), NOW), JHOOK_SIG_MISMATCH);
}

static void test_malformed(void **state)
{
    char good[65], hdr[2048];
    sign(NOW, BODY);
    memcpy(good, strstr(header, "v1=") + 3, 64), good[64] = '\0';

    assert_int_equal(jhook_verify(KEY, NULL, 0, BODY, strlen(BODY), NOW), JHOOK_SIG_MISSING);
    assert_int_equal(jhook_verify(KEY, header, 0, BODY, strlen(BODY), NOW), JHOOK_SIG_MISSING);

    static const char *const shapes[] = {
        "garbage",
        "t=%lld",              /* no v1 */
        "t=%lld,",             /* empty item */
        ",t=%lld,v1=%s",       /* empty item */
        "t=%lld,,v1=%s",       /* empty item */
        "t=%lld,v1=%s,",       /* empty item */
        "t=%lld,t=%lld,v1=%s", /* two timestamps */
        "t=%lld, v1=%s",       /* " v1" is not v1 */
        "t=%lld,v1 =%s",       /* "v1 " is not v1 */
        "t=%lld,V1=%s",        /* neither is "V1" */
        "t=%lld,v1=%s0",       /* 65 digits */
        "t=%lld,v1=%.63s",     /* 63 digits */
        "t=%lld,v1=%.62sAB",   /* uppercase */
        "t=%lld,v1=%.63sg",    /* not hex */
        "t=%lld,v1=%.62s\t0",  /* control character */
        "t=%lld,=%s",          /* no key */
        "t=%lld,v1",           /* no '=' */
        "t=%lld,v1=",          /* empty v1 */
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        if (strstr(shapes[i], "t=%lld,t=%lld") != NULL)
            snprintf(hdr, sizeof(hdr), shapes[i], (long long)NOW, (long long)NOW, good);
        else
            snprintf(hdr, sizeof(hdr), shapes[i], (long long)NOW, good);
        if (verify(hdr, BODY, NOW) != JHOOK_SIG_MALFORMED)
            fail_msg("%s: %s", hdr, jhook_sig_strerror(verify(hdr, BODY, NOW)));
    }
    static const char *const stamps[] = {"", "abc", "-1", "+1767225600", "1767225600.5", "0x10", "1767225600000"};
    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
        snprintf(hdr, sizeof(hdr), "t=%s,v1=%s", stamps[i], good);
        if (verify(hdr, BODY, NOW) != JHOOK_SIG_MALFORMED)
            fail_msg("%s: %s", hdr, jhook_sig_strerror(verify(hdr, BODY, NOW)));
    }
    /* order is free; leading zeros are part of the signed text (so the HMAC differs) */
    snprintf(hdr, sizeof(hdr), "v1=%s,t=%lld", good, (long long)NOW);
    assert_int_equal(verify(hdr, BODY, NOW), JHOOK_SIG_OK);
    snprintf(hdr, sizeof(hdr), "t=0%lld,v1=%s", (long long)NOW, good);
    assert_int_equal(verify(hdr, BODY, NOW), JHOOK_SIG_MISMATCH);

    /* a NUL inside the header, and the length limit */
    char nul[128];
    int n = snprintf(nul, sizeof(nul), "t=%lld,v1=%s", (long long)NOW, good);
    nul[5] = '\0';
    assert_int_equal(jhook_verify(KEY, nul, (size_t)n, BODY, strlen(BODY), NOW), JHOOK_SIG_MALFORMED);
    n = snprintf(hdr, sizeof(hdr), "t=%lld,v1=%s,x=", (long long)NOW, good);
    memset(hdr + n, 'a', JHOOK_SIG_HEADER_MAX - n);
    assert_int_equal(jhook_verify(KEY, hdr, JHOOK_SIG_HEADER_MAX, BODY, strlen(BODY), NOW), JHOOK_SIG_OK);
    hdr[JHOOK_SIG_HEADER_MAX] = 'a';
    assert_int_equal(jhook_verify(KEY, hdr, JHOOK_SIG_HEADER_MAX + 1, BODY, strlen(BODY), NOW), JHOOK_SIG_MALFORMED);
    /* only header_len bytes are read */
    snprintf(hdr, sizeof(hdr), "%s,v1=zz", header);
    assert_int_equal(jhook_verify(KEY, hdr, strlen(header), BODY, strlen(BODY), NOW), JHOOK_SIG_OK);
}

static void test_sign(void **state)
{
    char out[JHOOK_SIGN_SIZE];
    /* an empty body is signed as "<t>." */
    assert_int_equal(jhook_sign(KEY, 1, "", 0, out, sizeof(out)), 0);
    assert_int_equal(jhook_verify(KEY, out, strlen(out), NULL, 0, 1), JHOOK_SIG_OK);
    assert_int_equal(strlen(out), strlen("t=1,v1=") + 64);
    assert_int_equal(jhook_sign(KEY, NOW, BODY, strlen(BODY), out, strlen("t=1767225600,v1=") + 64), -1);
    assert_string_equal(out, "");
    assert_int_equal(jhook_sign(KEY, NOW, BODY, strlen(BODY), out, strlen("t=1767225600,v1=") + 65), 0);
    assert_int_equal(jhook_sign("", NOW, BODY, strlen(BODY), out, sizeof(out)), -1);
    assert_int_equal(jhook_sign(NULL, NOW, BODY, strlen(BODY), out, sizeof(out)), -1);
    assert_int_equal(jhook_sign(KEY, -1, BODY, strlen(BODY), out, sizeof(out)), -1);
    assert_int_equal(jhook_sign(KEY, INT64_C(1000000000000), BODY, strlen(BODY), out, sizeof(out)), -1);
    assert_int_equal(jhook_sign(KEY, NOW, BODY, strlen(BODY), NULL, 0), -1);
    for (int r = JHOOK_SIG_OK; r <= JHOOK_SIG_MISMATCH + 1; r++)
        assert_non_null(jhook_sig_strerror((jhook_sig_t)r));
}

int main(int argc, char **argv)
{
    vectors_t v = {0};
    const char *dir = argc > 1 ? argv[1] : getenv("SB_VECTORS");
    if (dir == NULL || dir[0] == '\0') {
        snprintf(v.err, sizeof(v.err), "no vectors folder: pass it as argv[1] or in SB_VECTORS");
    } else {
        char path[4096];
        json_error_t je;
        snprintf(path, sizeof(path), "%s/jambonz-signatures.json", dir);
        if ((v.root = json_load_file(path, 0, &je)) == NULL)
            snprintf(v.err, sizeof(v.err), "%s:%d: %s", path, je.line, je.text);
        else if (!json_is_array(v.list = json_object_get(v.root, "vectors")))
            snprintf(v.err, sizeof(v.err), "%s: no \"vectors\" array", path), v.list = NULL;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_hook),
        cmocka_unit_test(test_status_and_action_hooks),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_call_sid),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test_prestate(test_vectors, &v),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_several_v1),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_sign),
    };
    int failed = cmocka_run_group_tests_name("jambonz_hook", tests, NULL, NULL);
    json_decref(v.root);
    return failed;
}
