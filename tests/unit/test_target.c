/* Unit tests for server/target.h: SIP URIs vs phone numbers vs Asterisk dial strings, what is kept, what is
 * refused and why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/target.h"

static target_t parse_ok(const char *in)
{
    target_t t;
    const char *why = NULL;
    if (target_parse(in, "1", &t, &why) != 0)
        fail_msg("\"%s\" rejected: %s", in, why);
    /* idempotent: the normalized value parses to itself */
    target_t again;
    assert_int_equal(target_parse(t.value, "1", &again, &why), 0);
    assert_string_equal(again.value, t.value);
    assert_int_equal(again.kind, t.kind);
    return t;
}

static const char *parse_bad(const char *in, const char *part)
{
    target_t t;
    const char *why = NULL;
    memset(&t, 0x55, sizeof t);
    if (target_parse(in, "1", &t, &why) == 0)
        fail_msg("\"%s\" accepted as %s", in ? in : "NULL", t.value);
    assert_non_null(why);
    if (strstr(why, part) == NULL)
        fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", in ? in : "NULL", why, part);
    assert_int_equal(t.kind, 0);
    assert_string_equal(t.value, "");
    return why;
}

static void test_sip(void **state)
{
    (void)state;
    target_t t = parse_ok("sip:2000@pbx.example.com;transport=tcp");
    assert_int_equal(t.kind, TARGET_SIP);
    assert_string_equal(t.value, "sip:2000@pbx.example.com;transport=tcp");
    assert_string_equal(t.user, "2000");
    assert_string_equal(t.host, "pbx.example.com");
    assert_string_equal(t.transport, "tcp");
    assert_int_equal(t.port, 0);
    assert_int_equal(t.secure, 0);

    t = parse_ok("sip:oncall@aircall-production.sip.twilio.com");
    assert_string_equal(t.user, "oncall");
    assert_string_equal(t.host, "aircall-production.sip.twilio.com");
    assert_string_equal(t.transport, "");

    t = parse_ok("sip:bianca@sip.biancawellness.com:5061;transport=tcp;callSid=CA0123456789abcdef;patientId=YYY");
    assert_string_equal(t.value, "sip:bianca@sip.biancawellness.com:5061;transport=tcp;callSid=CA0123456789abcdef;"
                                 "patientId=YYY");
    assert_string_equal(t.host, "sip.biancawellness.com");
    assert_int_equal(t.port, 5061);
    assert_string_equal(t.transport, "tcp");

    t = parse_ok("sip:2000@34.26.59.14");
    assert_string_equal(t.host, "34.26.59.14");

    t = parse_ok("SIPS:alice@[2001:db8::1]:5061;Transport=TLS");
    assert_string_equal(t.value, "sips:alice@[2001:db8::1]:5061;Transport=TLS");
    assert_int_equal(t.secure, 1);
    assert_string_equal(t.host, "[2001:db8::1]");
    assert_int_equal(t.port, 5061);
    assert_string_equal(t.transport, "TLS");

    t = parse_ok("Sip:+14155550100@trunk.example.com;user=phone");
    assert_string_equal(t.value, "sip:+14155550100@trunk.example.com;user=phone");
    assert_string_equal(t.user, "+14155550100");
    assert_string_equal(t.transport, "");
}

static void test_sip_without_scheme(void **state)
{
    (void)state;
    target_t t = parse_ok("2000@pbx.example.com");
    assert_int_equal(t.kind, TARGET_SIP);
    assert_string_equal(t.value, "sip:2000@pbx.example.com");
    assert_string_equal(t.user, "2000");

    t = parse_ok("jane.doe%40corp@sip.example.com;transport=udp");
    assert_string_equal(t.value, "sip:jane.doe%40corp@sip.example.com;transport=udp");
    assert_string_equal(t.user, "jane.doe%40corp");
    assert_string_equal(t.transport, "udp");
}

static void test_sip_headers(void **state)
{
    (void)state;
    target_t t = parse_ok("sip:jack@example.com;transport=tcp?X-Ticket=42&x-customer=J%20Doe");
    assert_string_equal(t.value, "sip:jack@example.com;transport=tcp?X-Ticket=42&x-customer=J%20Doe");
    assert_string_equal(t.transport, "tcp");
    parse_ok("sip:jack@example.com?User-to-User=123456789%3Bencoding%3Dhex");
    parse_ok("sip:jack@example.com?user-to-user=01&remote-party-id=x&P-Preferred-Identity=y&p-called-party-id=z");
    parse_ok("sip:jack@example.com?x-empty=");

    const char *h = parse_bad("sip:jack@example.com?Subject=hi", "header Twilio does not pass on");
    parse_bad("sip:jack@example.com?X-Ok=1&Call-ID=2", "header Twilio does not pass on");
    parse_bad("sip:jack@example.com?x-=1", "header Twilio does not pass on");
    parse_bad("sip:jack@example.com?X-Ticket", "malformed ?header=value");
    parse_bad("sip:jack@example.com?=1", "malformed ?header=value");
    parse_bad("sip:jack@example.com?X-A=1&", "malformed ?header=value");
    parse_bad("sip:jack@example.com?X-A=a=b", "malformed ?header=value");
    parse_bad("sip:jack@example.com?X-A=%zz", "invalid percent-escape");
    assert_non_null(strstr(h, "X-..., User-to-User, Remote-Party-ID, P-Preferred-Identity, P-Called-Party-ID"));
}

static void test_numbers(void **state)
{
    (void)state;
    target_t t = parse_ok("+13654001512");
    assert_int_equal(t.kind, TARGET_NUMBER);
    assert_string_equal(t.value, "+13654001512");
    assert_string_equal(t.user, "");
    assert_string_equal(t.host, "");

    t = parse_ok("(415) 555-0100");
    assert_int_equal(t.kind, TARGET_NUMBER);
    assert_string_equal(t.value, "+14155550100");

    t = parse_ok("011 44 20 7183 8750");
    assert_string_equal(t.value, "+442071838750");

    target_t uk;
    const char *why;
    assert_int_equal(target_parse("020 7183 8750", "44", &uk, &why), 0);
    assert_string_equal(uk.value, "+442071838750");
    assert_int_equal(target_parse("020 7183 8750", NULL, &uk, &why), -1);

    /* Number errors come from e164 */
    parse_bad("415555CALL", "phone number contains letters");
    parse_bad("555-0100", "phone number has too few digits");
    parse_bad("pbx.example.com", "phone number contains letters");
    parse_bad("tel:+14155550100", "phone number contains letters");
}

/* `prefix` then a host of 63-byte-or-shorter labels, `total` bytes in all. */
static void make_long(char *buf, const char *prefix, size_t total)
{
    size_t i = strlen(prefix);
    strcpy(buf, prefix);
    for (; i < total - 4; i++)
        buf[i] = i % 40 == 0 ? '.' : 'a';
    strcpy(buf + total - 4, ".com");
    assert_int_equal(strlen(buf), total);
}

static void test_rejections(void **state)
{
    (void)state;
    char long_uri[300];
    make_long(long_uri, "sip:agent@", 256);

    const char *reasons[] = {
        parse_bad(NULL, "transfer target is empty"),
        parse_bad("sip:2000@pbx.example.com\r\nX-Evil: 1", "line break (CR or LF)"),
        parse_bad("sip:2000@pbx.example.com\x01", "control character"),
        parse_bad("sip:2000 @pbx.example.com", "SIP URI contains a space"),
        parse_bad("<sip:2000@pbx.example.com>", "contains '<' or '>'"),
        parse_bad("\"Bob\"bob@pbx.example.com", "double quote"),
        parse_bad("sip:caf\xc3\xa9@pbx.example.com", "non-ASCII"),
        parse_bad(long_uri, "longer than 255 bytes"),
        parse_bad("http://user@example.com", "unsupported URI scheme"),
        parse_bad("sip:pbx.example.com", "no user part"),
        parse_bad("sip:alice:secret@pbx.example.com", "password in the user part"),
        parse_bad("sip:al{ice@pbx.example.com", "user part contains an invalid character"),
        parse_bad("sip:al%2gice@pbx.example.com", "invalid percent-escape"),
        parse_bad("sip:2000@", "no host"),
        parse_bad("sip:2000@pbx..example.com", "invalid host"),
        parse_bad("sip:2000@pbx.example.com:99999", "invalid port"),
        parse_bad("sip:2000@pbx.example.com;;transport=tcp", "malformed ;parameter"),
        parse_bad("sip:2000@pbx.example.com?Subject=x", "header Twilio does not pass on"),
    };
    size_t n = sizeof reasons / sizeof reasons[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(reasons[i], reasons[j]) == 0)
                fail_msg("same reason for cases %zu and %zu: %s", i, j, reasons[i]);

    parse_bad("", "transfer target is empty");
    parse_bad("sip:2000@pbx.example.com\n", "line break");
    parse_bad("+1415555\n0100", "line break");
    parse_bad("sip:2000@pbx.example.com\t", "control character");
    parse_bad("sip:2000@pbx.example.com;transport=tcp ", "space");
    parse_bad("2000@pbx.example.com>", "'<' or '>'");
    parse_bad("sip:@pbx.example.com", "no user part");
    parse_bad("@pbx.example.com", "no user part");
    parse_bad("sip:", "no user part");
    parse_bad("2000@", "no host");
    parse_bad("sip:2000@;transport=tcp", "no host");
    parse_bad("sip:2000@:5060", "no host");
    parse_bad("sip:2000@pbx.example.com.", "invalid host");
    parse_bad("sip:2000@-pbx.example.com", "invalid host");
    parse_bad("sip:2000@pbx-.example.com", "invalid host");
    parse_bad("sip:2000@pbx_1.example.com", "invalid host");
    parse_bad("sip:2000@pbx.example.com@evil.com", "invalid host");
    parse_bad("sip:2000@[2001:db8::1", "invalid host");
    parse_bad("sip:2000@[]", "invalid host");
    parse_bad("sip:2000@pbx.example.com:", "invalid port");
    parse_bad("sip:2000@pbx.example.com:0", "invalid port");
    parse_bad("sip:2000@pbx.example.com:5060x", "invalid port");
    parse_bad("sip:2000@pbx.example.com:0005060", "invalid port");
    parse_bad("sip:2000@pbx.example.com;", "malformed ;parameter");
    parse_bad("sip:2000@pbx.example.com;transport=", "malformed ;parameter");
    parse_bad("sip:2000@pbx.example.com;=tcp", "malformed ;parameter");
    parse_bad("sip:2000@pbx.example.com;a=b=c", "malformed ;parameter");
    parse_bad("sip:2000@pbx.example.com;a=%4", "invalid percent-escape");

    /* 255 bytes exactly is accepted, also without scheme (the "sip:" counts) */
    make_long(long_uri, "sip:agent@", 255);
    target_t t = parse_ok(long_uri);
    assert_int_equal(strlen(t.value), TARGET_URI_MAX);
    make_long(long_uri, "agent@", 251);
    t = parse_ok(long_uri);
    assert_int_equal(strlen(t.value), TARGET_URI_MAX);
    make_long(long_uri, "agent@", 252);
    parse_bad(long_uri, "longer than 255 bytes");

    /* out NULL, why NULL */
    const char *why = NULL;
    assert_int_equal(target_parse("sip:a@b", "1", NULL, &why), -1);
    assert_non_null(why);
    assert_int_equal(target_parse("sip:a b@c", "1", &t, NULL), -1);
}

static void test_dial_strings(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "PJSIP/2000",
        "SIP/2000",
        "IAX2/2000",
        "DAHDI/1/5551234",
        "DAHDI/g1/5551234",
        "Local/100@from-internal",
        "Local/2000@ctx/n",
        "PJSIP/2000@pbx.example.com", /* before: the SIP URI "sip:PJSIP/2000@pbx.example.com" */
        "PJSIP/didww/sip:+14155550100@sip.didww.com;transport=tcp",
        "PJSIP/+14155550100@didww",
        "pjsip/2000", /* Asterisk finds channel technologies in any case; kept as written */
        "local/100@from-internal",
        "PJSIP/*97",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        target_t t = parse_ok(ok[i]);
        assert_int_equal(t.kind, TARGET_DIAL);
        assert_string_equal(t.value, ok[i]);
        assert_string_equal(t.user, "");
        assert_string_equal(t.host, "");
        assert_int_equal(t.port, 0);
    }

    /* 200 bytes of resource is the most */
    char buf[300] = "Local/";
    memset(buf + 6, '9', TARGET_DIAL_RESOURCE_MAX);
    buf[6 + TARGET_DIAL_RESOURCE_MAX] = '\0';
    assert_int_equal(parse_ok(buf).kind, TARGET_DIAL);
    strcat(buf, "9");
    parse_bad(buf, "longer than 200 bytes");

    parse_bad("PJSIP/", "nothing after TECH/");
    parse_bad("PJSIP/20 00", "only letters, digits");
    parse_bad("PJSIP/caf\xc3\xa9", "Asterisk dial string contains non-ASCII");
    parse_bad("Skype/2000", "unknown Asterisk channel technology");
    parse_bad("PJSIP/2000&PJSIP/2001", "only letters, digits"); /* Dial()'s parallel targets */
    parse_bad("PJSIP/2000,30", "only letters, digits");         /* Dial()'s arguments */
    parse_bad("PJSIP/\"2000\"", "only letters, digits");
    parse_bad("PJSIP/'2000'", "only letters, digits");
    parse_bad("PJSIP/<2000>", "only letters, digits");
    parse_bad("PJSIP/2000>", "only letters, digits");
    parse_bad("PJSIP/a!b", "only letters, digits"); /* asterisk/ari_url.c would refuse it: so do we */
    parse_bad("SIP/", "nothing after TECH/");
    parse_bad("PJSIP/2000\r\n", "line break");
    parse_bad("PJSIP/2000\t", "control character");
    parse_bad("PJSIP/20\x7f", "control character");
    parse_bad("Console/dsp", "unknown Asterisk channel technology");
    parse_bad("PJSIP2000", "phone number contains letters"); /* no slash: not a dial string */
    parse_bad("PJSIP:2000", "phone number contains letters");

    /* a technology-looking word with '@' is still read as a SIP user part, as before */
    target_t t = parse_ok("Skype/2000@pbx.example.com");
    assert_int_equal(t.kind, TARGET_SIP);
    assert_string_equal(t.value, "sip:Skype/2000@pbx.example.com");
    /* SIP URIs and numbers are what they were */
    assert_int_equal(parse_ok("sip:2000@pbx.example.com").kind, TARGET_SIP);
    assert_int_equal(parse_ok("SIP:2000@pbx.example.com").kind, TARGET_SIP);
    assert_int_equal(parse_ok("+14155550100").kind, TARGET_NUMBER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sip),     cmocka_unit_test(test_sip_without_scheme), cmocka_unit_test(test_sip_headers),
        cmocka_unit_test(test_numbers), cmocka_unit_test(test_rejections),         cmocka_unit_test(test_dial_strings),
    };
    return cmocka_run_group_tests_name("target", tests, NULL, NULL);
}
