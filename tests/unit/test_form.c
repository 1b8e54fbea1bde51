/* Unit tests for server/form: decoding, ordering, limits and every error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/form.h"

static form_t *parse_ok(const char *s)
{
    form_t *f = NULL;
    int err = form_parse(s, strlen(s), NULL, &f);
    if (err != FORM_OK)
        fail_msg("form_parse(\"%s\"): %s", s, form_strerror(err));
    assert_non_null(f);
    return f;
}

static int parse_err(const char *s, size_t len, const form_limits_t *lim)
{
    form_t *f = (form_t *)&f; /* must be reset to NULL on error */
    int err = form_parse(s, len, lim, &f);
    assert_int_not_equal(err, FORM_OK);
    assert_null(f);
    return err;
}

static void assert_pair(const form_t *f, size_t i, const char *key, const char *value)
{
    assert_true(i < f->count);
    assert_string_equal(f->pairs[i].key, key);
    assert_int_equal(f->pairs[i].key_len, strlen(key));
    assert_string_equal(f->pairs[i].value, value);
    assert_int_equal(f->pairs[i].value_len, strlen(value));
}

static void test_twilio_body(void **state)
{
    (void)state;
    form_t *f = parse_ok("AccountSid=AC123&ApiVersion=2010-04-01&CallSid=CA456&CallStatus=ringing"
                         "&Called=%2B18005551212&Caller=%2B14158675309&Direction=inbound"
                         "&From=%2B14158675309&FromCity=SAN+FRANCISCO&To=%2B18005551212");
    assert_int_equal(f->count, 10);
    assert_pair(f, 0, "AccountSid", "AC123");
    assert_pair(f, 4, "Called", "+18005551212");
    assert_pair(f, 8, "FromCity", "SAN FRANCISCO");
    assert_string_equal(form_get(f, "To"), "+18005551212");
    assert_null(form_get(f, "to")); /* keys are case-sensitive */
    assert_null(form_get(f, "Missing"));
    form_free(f);
}

static void test_decoding(void **state)
{
    (void)state;
    form_t *f = parse_ok("a+b=c+d&%41%62=%2b%2F%3d%26&utf=%C3%A9%e2%82%AC&plus=+&raw=a/b:c?d");
    assert_int_equal(f->count, 5);
    assert_pair(f, 0, "a b", "c d");
    assert_pair(f, 1, "Ab", "+/=&");
    assert_pair(f, 2, "utf", "\xc3\xa9\xe2\x82\xac");
    assert_pair(f, 3, "plus", " ");
    assert_pair(f, 4, "raw", "a/b:c?d");
    form_free(f);
}

static void test_repeated_keys(void **state)
{
    (void)state;
    form_t *f = parse_ok("Digits=5678&Sid=CA1&Digits=1234&Digits=5678");
    size_t pos = 0;
    assert_int_equal(f->count, 4);
    assert_string_equal(form_get(f, "Digits"), "5678");
    assert_string_equal(form_get_next(f, "Digits", &pos), "5678");
    assert_string_equal(form_get_next(f, "Digits", &pos), "1234");
    assert_string_equal(form_get_next(f, "Digits", &pos), "5678");
    assert_null(form_get_next(f, "Digits", &pos));
    assert_null(form_get_next(f, "Digits", &pos));
    pos = 0;
    assert_string_equal(form_get_next(f, "Sid", &pos), "CA1");
    assert_null(form_get_next(f, "Sid", &pos));
    form_free(f);
}

static void test_empty_and_separators(void **state)
{
    (void)state;
    form_t *f = NULL;

    assert_int_equal(form_parse(NULL, 0, NULL, &f), FORM_OK);
    assert_int_equal(f->count, 0);
    assert_null(form_get(f, "a"));
    form_free(f);

    f = parse_ok("");
    assert_int_equal(f->count, 0);
    form_free(f);

    f = parse_ok("&&&");
    assert_int_equal(f->count, 0);
    form_free(f);

    f = parse_ok("&a=1&&b=2&");
    assert_int_equal(f->count, 2);
    assert_pair(f, 0, "a", "1");
    assert_pair(f, 1, "b", "2");
    form_free(f);

    f = parse_ok("a=&b");
    assert_int_equal(f->count, 2);
    assert_pair(f, 0, "a", "");
    assert_pair(f, 1, "b", "");
    assert_string_equal(form_get(f, "b"), "");
    form_free(f);

    f = parse_ok("flag&x==y&z=a=b");
    assert_int_equal(f->count, 3);
    assert_pair(f, 0, "flag", "");
    assert_pair(f, 1, "x", "=y");
    assert_pair(f, 2, "z", "a=b");
    form_free(f);

    assert_null(form_get(NULL, "a"));
}

static void test_not_nul_terminated(void **state)
{
    (void)state;
    const char buf[] = {'a', '=', '1', '&', 'b', '=', '2', '%'}; /* the stray '%' lies past len */
    form_t *f = NULL;
    assert_int_equal(form_parse(buf, 7, NULL, &f), FORM_OK);
    assert_int_equal(f->count, 2);
    assert_pair(f, 1, "b", "2");
    form_free(f);
    /* an escape cut by len is an error, not a read past it */
    assert_int_equal(parse_err(buf, 8, NULL), FORM_EESCAPE);
    assert_int_equal(parse_err("a=%4142", 4, NULL), FORM_EESCAPE);
}

static void test_bad_escape(void **state)
{
    (void)state;
    const char *bad[] = {"a=%", "a=%4", "a=%zz", "a=%4g", "a=%g4", "%=1", "k%2=1", "a=1&b=100%", "a=%%41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_err(bad[i], strlen(bad[i]), NULL), FORM_EESCAPE);
}

static void test_nul(void **state)
{
    (void)state;
    assert_int_equal(parse_err("a=%00", 5, NULL), FORM_ENUL);
    assert_int_equal(parse_err("a%00b=1", 7, NULL), FORM_ENUL);
    assert_int_equal(parse_err("a=x\0y", 5, NULL), FORM_ENUL); /* raw NUL */
    assert_int_equal(parse_err("\0=1", 3, NULL), FORM_ENUL);
}

static void test_empty_key(void **state)
{
    (void)state;
    assert_int_equal(parse_err("=v", 2, NULL), FORM_EEMPTYKEY);
    assert_int_equal(parse_err("=", 1, NULL), FORM_EEMPTYKEY);
    assert_int_equal(parse_err("a=1&=2", 6, NULL), FORM_EEMPTYKEY);
}

/* "k0=v&k1=v&..." with n pairs */
static char *many_pairs(size_t n)
{
    char *s = malloc(n * 16 + 1), *p = s;
    assert_non_null(s);
    *p = '\0';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%sk%zu=v", i ? "&" : "", i);
    return s;
}

static void test_too_many(void **state)
{
    (void)state;
    char *s = many_pairs(FORM_MAX_PAIRS);
    form_t *f = NULL;
    assert_int_equal(form_parse(s, strlen(s), NULL, &f), FORM_OK);
    assert_int_equal(f->count, FORM_MAX_PAIRS);
    assert_pair(f, FORM_MAX_PAIRS - 1, "k255", "v");
    form_free(f);
    free(s);

    s = many_pairs(FORM_MAX_PAIRS + 1);
    assert_int_equal(parse_err(s, strlen(s), NULL), FORM_ETOOMANY);
    free(s);

    /* empty segments do not count */
    s = many_pairs(FORM_MAX_PAIRS);
    size_t len = strlen(s);
    char *t = malloc(len + 600);
    assert_non_null(t);
    memset(t, '&', 300);
    memcpy(t + 300, s, len);
    memset(t + 300 + len, '&', 299);
    assert_int_equal(form_parse(t, len + 599, NULL, &f), FORM_OK);
    assert_int_equal(f->count, FORM_MAX_PAIRS);
    form_free(f);
    free(t);
    free(s);
}

static void test_key_limit(void **state)
{
    (void)state;
    char buf[3 * (FORM_MAX_KEY + 1) + 8];
    form_t *f = NULL;

    memset(buf, 'k', FORM_MAX_KEY);
    memcpy(buf + FORM_MAX_KEY, "=v", 3);
    assert_int_equal(form_parse(buf, strlen(buf), NULL, &f), FORM_OK);
    assert_int_equal(f->pairs[0].key_len, FORM_MAX_KEY);
    form_free(f);

    memset(buf, 'k', FORM_MAX_KEY + 1);
    memcpy(buf + FORM_MAX_KEY + 1, "=v", 3);
    assert_int_equal(parse_err(buf, strlen(buf), NULL), FORM_EKEYLEN);

    /* the limit is on decoded bytes: 256 escapes are 768 input bytes and fit */
    for (size_t i = 0; i < FORM_MAX_KEY; i++)
        memcpy(buf + 3 * i, "%41", 3);
    memcpy(buf + 3 * FORM_MAX_KEY, "=v", 3);
    assert_int_equal(form_parse(buf, strlen(buf), NULL, &f), FORM_OK);
    assert_int_equal(f->pairs[0].key_len, FORM_MAX_KEY);
    form_free(f);
}

static void test_value_limit(void **state)
{
    (void)state;
    char *buf = malloc(3 * (FORM_MAX_VALUE + 1) + 8);
    form_t *f = NULL;
    assert_non_null(buf);

    memcpy(buf, "v=", 2);
    memset(buf + 2, 'x', FORM_MAX_VALUE);
    assert_int_equal(form_parse(buf, 2 + FORM_MAX_VALUE, NULL, &f), FORM_OK);
    assert_int_equal(f->pairs[0].value_len, FORM_MAX_VALUE);
    form_free(f);

    memset(buf + 2, 'x', FORM_MAX_VALUE + 1);
    assert_int_equal(parse_err(buf, 3 + FORM_MAX_VALUE, NULL), FORM_EVALUELEN);

    for (size_t i = 0; i < FORM_MAX_VALUE; i++)
        memcpy(buf + 2 + 3 * i, "%7E", 3);
    assert_int_equal(form_parse(buf, 2 + 3 * FORM_MAX_VALUE, NULL, &f), FORM_OK);
    assert_int_equal(f->pairs[0].value_len, FORM_MAX_VALUE);
    assert_int_equal(f->pairs[0].value[FORM_MAX_VALUE - 1], '~');
    form_free(f);
    free(buf);
}

static void test_custom_limits(void **state)
{
    (void)state;
    const form_limits_t lim = {2, 3, 4};
    form_t *f = NULL;
    assert_int_equal(form_parse("abc=1234&b=", 11, &lim, &f), FORM_OK);
    assert_int_equal(f->count, 2);
    form_free(f);
    assert_int_equal(parse_err("a=1&b=2&c=3", 11, &lim), FORM_ETOOMANY);
    assert_int_equal(parse_err("abcd=1", 6, &lim), FORM_EKEYLEN);
    assert_int_equal(parse_err("a=12345", 7, &lim), FORM_EVALUELEN);
    const form_limits_t none = {0, 0, 0};
    assert_int_equal(parse_err("a", 1, &none), FORM_ETOOMANY);
    assert_int_equal(form_parse("&", 1, &none, &f), FORM_OK);
    assert_int_equal(f->count, 0);
    form_free(f);
}

static void test_parse_buf(void **state)
{
    (void)state;
    const char *s = "CallSid=CA1&Digits=1%2B2&Empty=&Flag";
    size_t need = form_buf_size(s, strlen(s), NULL);
    char *buf = malloc(need + 1);
    form_t *f = NULL;
    assert_non_null(buf);

    /* misaligned on purpose: the parser aligns inside the buffer */
    assert_int_equal(form_parse_buf(buf + 1, need, s, strlen(s), NULL, &f), FORM_OK);
    assert_int_equal((uintptr_t)f % _Alignof(form_t), 0);
    assert_true((char *)f >= buf + 1);
    assert_int_equal(f->count, 4);
    assert_pair(f, 1, "Digits", "1+2");
    assert_pair(f, 3, "Flag", "");
    for (size_t i = 0; i < f->count; i++) {
        assert_true(f->pairs[i].key >= buf + 1 && f->pairs[i].key < buf + 1 + need);
        assert_true(f->pairs[i].value + f->pairs[i].value_len < buf + 1 + need);
    }

    f = (form_t *)buf;
    assert_int_equal(form_parse_buf(buf, need - 8, s, strlen(s), NULL, &f), FORM_EBUFSIZE);
    assert_null(f);
    assert_int_equal(form_parse_buf(buf, need, "=x", 2, NULL, &f), FORM_EEMPTYKEY);
    assert_null(f);

    /* an empty input needs only the header */
    need = form_buf_size(NULL, 0, NULL);
    assert_true(need >= sizeof(form_t));
    assert_int_equal(form_parse_buf(buf, need, NULL, 0, NULL, &f), FORM_OK);
    assert_int_equal(f->count, 0);
    free(buf);
}

static void test_query(void **state)
{
    (void)state;
    size_t qlen = 99;
    const char *t = "/twilio/voice?tenant=7&x=a%20b#frag";
    const char *q = form_query(t, strlen(t), &qlen);
    assert_ptr_equal(q, t + 14);
    assert_int_equal(qlen, strlen("tenant=7&x=a%20b"));

    assert_null(form_query("/twilio/voice", 13, &qlen));
    assert_int_equal(qlen, 0);
    assert_non_null(form_query("/p?", 3, &qlen));
    assert_int_equal(qlen, 0);
    assert_null(form_query("/p?a=1", 2, &qlen)); /* '?' past len */

    form_t *f = NULL;
    assert_int_equal(form_parse_query(t, strlen(t), NULL, &f), FORM_OK);
    assert_int_equal(f->count, 2);
    assert_pair(f, 0, "tenant", "7");
    assert_pair(f, 1, "x", "a b");
    form_free(f);

    assert_int_equal(form_parse_query("/x", 2, NULL, &f), FORM_OK);
    assert_int_equal(f->count, 0);
    form_free(f);

    assert_int_equal(form_parse_query("/x?a=%", 6, NULL, &f), FORM_EESCAPE);
    assert_null(f);
}

static void test_unescape(void **state)
{
    (void)state;
    char out[8];
    size_t n = 0;
    assert_int_equal(form_unescape(out, sizeof(out), "a+b%21", 6, &n), FORM_OK);
    assert_string_equal(out, "a b!");
    assert_int_equal(n, 4);
    assert_int_equal(form_unescape(out, 5, "abcd", 4, &n), FORM_OK);
    assert_int_equal(form_unescape(out, 4, "abcd", 4, &n), FORM_EVALUELEN);
    assert_int_equal(form_unescape(out, 0, "", 0, &n), FORM_EVALUELEN);
    assert_int_equal(form_unescape(out, sizeof(out), "%0", 2, &n), FORM_EESCAPE);
    assert_int_equal(form_unescape(out, sizeof(out), "%00", 3, &n), FORM_ENUL);
}

static void test_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"", 1},
        {"plain", 1},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e", 1}, /* 2, 3 and 4 bytes */
        {"\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf", 1},  /* U+D7FF, U+E000, U+10FFFF */
        {"\xff", 0},
        {"\xc3\x28", 0}, /* a lead without its continuation */
        {"\xc3", 0},     /* cut short */
        {"\xe2\x82", 0},
        {"\x80", 0},     /* a continuation first */
        {"\xc0\xaf", 0}, /* overlong '/' */
        {"\xc1\xbf", 0},
        {"\xe0\x80\xaf", 0},     /* overlong, three bytes */
        {"\xf0\x80\x80\xaf", 0}, /* overlong, four bytes */
        {"\xed\xa0\x80", 0},     /* U+D800, a surrogate */
        {"\xf4\x90\x80\x80", 0}, /* U+110000 */
        {"\xf5\x80\x80\x80", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(form_utf8_valid(cases[i].s, strlen(cases[i].s)), cases[i].ok);

    form_t *f = NULL;
    assert_int_equal(form_parse("a=caf%C3%A9&b=1", 15, NULL, &f), FORM_OK);
    assert_true(form_utf8(f));
    form_free(f);
    assert_int_equal(form_parse("a=1&b=%ff", 9, NULL, &f), FORM_OK);
    assert_false(form_utf8(f));
    form_free(f);
    assert_int_equal(form_parse("%c3%28=1", 8, NULL, &f), FORM_OK);
    assert_false(form_utf8(f));
    form_free(f);
    assert_true(form_utf8(NULL));

    /* a cut never splits a character: "a\xc3\xa9\xe2\x82\xac" is a, é, € */
    const char *s = "a\xc3\xa9\xe2\x82\xac";
    assert_int_equal(form_utf8_prefix(s, 6, 10), 6);
    assert_int_equal(form_utf8_prefix(s, 6, 6), 6);
    assert_int_equal(form_utf8_prefix(s, 6, 5), 3);
    assert_int_equal(form_utf8_prefix(s, 6, 4), 3);
    assert_int_equal(form_utf8_prefix(s, 6, 3), 3);
    assert_int_equal(form_utf8_prefix(s, 6, 2), 1);
    assert_int_equal(form_utf8_prefix(s, 6, 0), 0);
}

static void test_strerror(void **state)
{
    (void)state;
    const int codes[] = {FORM_OK,   FORM_EESCAPE,   FORM_ETOOMANY, FORM_EKEYLEN, FORM_EVALUELEN,
                         FORM_ENUL, FORM_EEMPTYKEY, FORM_ENOMEM,   FORM_EBUFSIZE};
    const size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(form_strerror(codes[i]));
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(form_strerror(codes[i]), form_strerror(codes[j]));
    }
    assert_non_null(form_strerror(12345));
}

/* a string literal and its length */
#define S(lit) lit, sizeof(lit) - 1

static void test_bad_key(void **state)
{
    (void)state;
    char key[64];
    /* the key of the first value that cannot be decoded */
    assert_int_equal(form_bad_key(S("limit=%4"), key, sizeof(key)), 1);
    assert_string_equal(key, "limit");
    assert_int_equal(form_bad_key(S("a=1&dir%65ction=in%00&limit=%zz"), key, sizeof(key)), 1);
    assert_string_equal(key, "direction");
    char big[FORM_MAX_VALUE + 16];
    memcpy(big, "status=", 7);
    memset(big + 7, 'x', sizeof(big) - 7);
    assert_int_equal(form_bad_key(big, sizeof(big), key, sizeof(key)), 1);
    assert_string_equal(key, "status");
    /* no one key to blame */
    assert_int_equal(form_bad_key(S("%zz=1"), key, sizeof(key)), 0);      /* the key itself */
    assert_int_equal(form_bad_key(S("=5"), key, sizeof(key)), 0);         /* no key */
    assert_int_equal(form_bad_key(S("a=1&b=2"), key, sizeof(key)), 0);    /* nothing wrong */
    assert_int_equal(form_bad_key(S("%ff=%zz"), key, sizeof(key)), 0);    /* a key that is not text */
    assert_int_equal(form_bad_key(S("averylongkeyname=%zz"), key, 8), 0); /* does not fit */
    char many[2000];
    size_t n = 0;
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "a=%%zz&");
    assert_int_equal(form_bad_key(many, n, key, sizeof(key)), 0); /* too many pairs */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twilio_body),
        cmocka_unit_test(test_decoding),
        cmocka_unit_test(test_repeated_keys),
        cmocka_unit_test(test_empty_and_separators),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_bad_escape),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_empty_key),
        cmocka_unit_test(test_too_many),
        cmocka_unit_test(test_key_limit),
        cmocka_unit_test(test_value_limit),
        cmocka_unit_test(test_custom_limits),
        cmocka_unit_test(test_parse_buf),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_bad_key),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests_name("form", tests, NULL, NULL);
}
