/* Unit tests for asterisk/ari_url: percent-encoding, request paths, transfer dial strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "asterisk/ari_url.h"

#define PATH(...)  ((const char *const[]){__VA_ARGS__, NULL})
#define QUERY(...) ((const char *const[]){__VA_ARGS__, NULL})

static void url_ok(const char *const *path, const char *const *query, const char *want)
{
    char out[512];
    int n = ari_url_build(out, sizeof out, path, query);
    if (n < 0)
        fail_msg("refused, wanted %s", want);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    /* exactly enough room, then one byte less */
    char *tight = test_malloc(strlen(want) + 1);
    assert_int_equal(ari_url_build(tight, strlen(want) + 1, path, query), n);
    assert_string_equal(tight, want);
    assert_int_equal(ari_url_build(tight, strlen(want), path, query), -1);
    assert_string_equal(tight, "");
    test_free(tight);
}

static void test_escape(void **state)
{
    char out[64];
    assert_int_equal(ari_url_escape(out, sizeof out, "+13654001512"), 14);
    assert_string_equal(out, "%2B13654001512");
    ari_url_escape(out, sizeof out, "AZaz09-._~");
    assert_string_equal(out, "AZaz09-._~");
    ari_url_escape(out, sizeof out, "a b&c=d/e:f?g#h%i,j;k@l");
    assert_string_equal(out, "a%20b%26c%3Dd%2Fe%3Af%3Fg%23h%25i%2Cj%3Bk%40l");
    ari_url_escape(out, sizeof out, "\x01\x7f\xc3\xa9\"'<>");
    assert_string_equal(out, "%01%7F%C3%A9%22%27%3C%3E");
    assert_int_equal(ari_url_escape(out, sizeof out, ""), 0);
    assert_string_equal(out, "");
    /* overflow: "+1" needs 5 bytes with the NUL */
    assert_int_equal(ari_url_escape(out, 5, "+1"), 4);
    assert_int_equal(ari_url_escape(out, 4, "+1"), -1);
    assert_string_equal(out, "");
    assert_int_equal(ari_url_escape(out, 3, "+"), -1);
    assert_int_equal(ari_url_escape(out, 0, ""), -1);
}

static void test_build(void **state)
{
    url_ok(PATH("channels", "1712345678.42", "answer"), NULL, "/channels/1712345678.42/answer");
    url_ok(PATH("bridges"), QUERY("type", "mixing"), "/bridges?type=mixing");
    url_ok(PATH("channels", "externalMedia"),
           QUERY("app", "switchboard", "external_host", "10.0.0.5:20000", "format", "ulaw", "encapsulation", "rtp",
                 "transport", "udp", "connection_type", "client", "direction", "both", "data", "call=7"),
           "/channels/externalMedia?app=switchboard&external_host=10.0.0.5%3A20000&format=ulaw&encapsulation=rtp"
           "&transport=udp&connection_type=client&direction=both&data=call%3D7");
    url_ok(PATH("channels"),
           QUERY("endpoint", "PJSIP/+13654001512@didww", "app", "switchboard", "appArgs", "transfer,call=7", "callerId",
                 "\"Front desk\" <+14155550100>", "timeout", "30"),
           "/channels?endpoint=PJSIP%2F%2B13654001512%40didww&app=switchboard&appArgs=transfer%2Ccall%3D7"
           "&callerId=%22Front%20desk%22%20%3C%2B14155550100%3E&timeout=30");
    /* NULL values are left out, wherever they are; empty values are kept */
    url_ok(PATH("channels", "c1"), QUERY("reason_code", NULL, "reason", "busy"), "/channels/c1?reason=busy");
    url_ok(PATH("channels", "c1"), QUERY("reason", "busy", "reason_code", NULL), "/channels/c1?reason=busy");
    url_ok(PATH("channels", "c1"), QUERY("a", NULL), "/channels/c1");
    url_ok(PATH("channels", "c1", "variable"), QUERY("variable", "X", "value", ""),
           "/channels/c1/variable?variable=X&value=");
    /* ids are escaped too: a '+' in a path would be read as a space */
    url_ok(PATH("channels", "a+b c"), NULL, "/channels/a%2Bb%20c");
}

static void test_build_refused(void **state)
{
    char out[64] = "junk";
    assert_int_equal(ari_url_build(out, sizeof out, PATH("channels", "a/b"), NULL), -1);
    assert_string_equal(out, "");
    assert_int_equal(ari_url_build(out, sizeof out, PATH("channels", ""), NULL), -1);
    assert_int_equal(ari_url_build(out, sizeof out, PATH("channels", ".."), NULL), -1);
    assert_int_equal(ari_url_build(out, sizeof out, PATH("channels", "."), NULL), -1);
    assert_int_equal(ari_url_build(out, sizeof out, PATH("channels", "..."), NULL), 13); /* just a name */
    assert_int_equal(ari_url_build(out, sizeof out, ((const char *const[]){NULL}), NULL), -1);
    assert_int_equal(ari_url_build(out, sizeof out, NULL, NULL), -1);
    assert_int_equal(ari_url_build(out, sizeof out, PATH("bridges"), QUERY("", "x")), -1);
    assert_int_equal(ari_url_build(out, 0, PATH("bridges"), NULL), -1);
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(ari_url_build(out, sizeof out, PATH("channels"), QUERY("data", big)), -1);
    assert_string_equal(out, "");
}

static void dial_ok(const char *target, const char *trunk, const char *want)
{
    char out[ARI_DIALSTRING_MAX + 1];
    int n = ari_dialstring(target, trunk, out, sizeof out);
    if (n < 0)
        fail_msg("\"%s\" refused, wanted \"%s\"", target, want);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    /* one byte short */
    char *tight = test_malloc(strlen(want));
    assert_int_equal(ari_dialstring(target, trunk, tight, strlen(want)), -1);
    assert_string_equal(tight, "");
    test_free(tight);
}

static void dial_bad(const char *target, const char *trunk)
{
    char out[ARI_DIALSTRING_MAX + 1] = "junk";
    if (ari_dialstring(target, trunk, out, sizeof out) != -1)
        fail_msg("\"%s\" (trunk %s) accepted as \"%s\"", target ? target : "NULL", trunk ? trunk : "NULL", out);
    assert_string_equal(out, "");
}

static void test_dialstring(void **state)
{
    dial_ok("PJSIP/2000", "didww", "PJSIP/2000");
    dial_ok("PJSIP/2000", NULL, "PJSIP/2000"); /* needs no trunk */
    dial_ok("PJSIP/+13654001512@didww", NULL, "PJSIP/+13654001512@didww");
    dial_ok("Local/100@from-internal", NULL, "Local/100@from-internal");
    dial_ok("IAX2/pbx/200", NULL, "IAX2/pbx/200");
    dial_ok("+13654001512", "didww", "PJSIP/+13654001512@didww");
    dial_ok("+442071838750", "trunk-eu.1", "PJSIP/+442071838750@trunk-eu.1");
    dial_ok("sip:2000@pbx.example.com;transport=tcp", "didww", "PJSIP/didww/sip:2000@pbx.example.com;transport=tcp");
    dial_ok("SIP:2000@pbx.example.com", "didww", "PJSIP/didww/sip:2000@pbx.example.com");
    dial_ok("sips:alice@pbx.example.com:5061", "didww", "PJSIP/didww/sips:alice@pbx.example.com:5061");
    dial_ok("sip:pbx.example.com", "didww", "PJSIP/didww/sip:pbx.example.com");
    dial_ok("sip:2000@[2001:db8::1]:5060", "didww", "PJSIP/didww/sip:2000@[2001:db8::1]:5060");
    dial_ok("sip:2000@pbx.example.com?X-Ticket=42", "didww", "PJSIP/didww/sip:2000@pbx.example.com?X-Ticket=42");
    dial_ok("2000@pbx.example.com", "didww", "PJSIP/didww/sip:2000@pbx.example.com");
    dial_ok("+13654001512@pbx.example.com:5080", "didww", "PJSIP/didww/sip:+13654001512@pbx.example.com:5080");
}

static void test_dialstring_refused(void **state)
{
    dial_bad(NULL, "didww");
    dial_bad("", "didww");
    /* no trunk, or a trunk that is not a plain name */
    dial_bad("+13654001512", NULL);
    dial_bad("+13654001512", "");
    dial_bad("sip:2000@pbx.example.com", NULL);
    dial_bad("2000@pbx.example.com", "");
    dial_bad("+13654001512", "did/ww");
    dial_bad("+13654001512", "didww@x");
    dial_bad("+13654001512", "did ww");
    /* characters that would split a Dial or a header */
    dial_bad("PJSIP/2000&PJSIP/2001", NULL);
    dial_bad("PJSIP/2000,30", NULL);
    dial_bad("sip:2000@pbx.example.com;x=a&b", "didww");
    dial_bad("PJSIP/20 00", NULL);
    dial_bad("+1 365 400 1512", "didww");
    dial_bad("sip:2000@pbx.example.com\r\nX-Evil: 1", "didww");
    dial_bad("PJSIP/2000\t", NULL);
    dial_bad("PJSIP/2000\x7f", NULL);
    dial_bad("sip:j\xc3\xa9@pbx.example.com", "didww");
    dial_bad("PJSIP/${EVIL}", NULL);
    dial_bad("PJSIP/2000|PJSIP/2001", NULL);
    dial_bad("sip:\"x\"@pbx", "didww");
    dial_bad("<sip:2000@pbx>", "didww");
    /* numbers that are not E.164, and other schemes */
    dial_bad("13654001512", "didww");
    dial_bad("2000", "didww");
    dial_bad("+0123456789", "didww");
    dial_bad("+1234567", "didww");          /* 7 digits */
    dial_bad("+1234567890123456", "didww"); /* 16 digits */
    dial_bad("+1365400151x", "didww");
    dial_bad("tel:+13654001512", "didww");
    dial_bad("user:pw@pbx.example.com", "didww");
    dial_bad("PJSIP/", NULL);
    dial_bad("/2000", NULL);
    /* SIP URIs without a host, or with two '@' */
    dial_bad("sip:", "didww");
    dial_bad("sip:2000@", "didww");
    dial_bad("sip:@pbx.example.com", "didww");
    dial_bad("@pbx.example.com", "didww");
    dial_bad("sip:2000@;transport=tcp", "didww");
    dial_bad("sip:a@b@c", "didww");
    /* too long: as a target, and as a result */
    char big[ARI_DIALSTRING_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "PJSIP/", 6);
    dial_bad(big, NULL);
    big[ARI_DIALSTRING_MAX] = '\0';
    dial_ok(big, NULL, big);
    memcpy(big, "sip:x@", 6);
    dial_bad(big, "didww");
    char out[8];
    assert_int_equal(ari_dialstring("PJSIP/2000", NULL, out, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_build_refused),
        cmocka_unit_test(test_dialstring),
        cmocka_unit_test(test_dialstring_refused),
    };
    return cmocka_run_group_tests_name("ari_url", tests, NULL, NULL);
}
