/* Unit tests for server/e164.h: accepted spellings and every rejection with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/e164.h"

static void ok(const char *in, const char *cc, const char *want)
{
    char out[E164_BUFSZ];
    const char *why = NULL;
    if (e164_normalize(in, cc, out, sizeof out, &why) != 0)
        fail_msg("\"%s\" (cc %s) rejected: %s", in, cc ? cc : "NULL", why);
    assert_string_equal(out, want);
    /* idempotent: the result normalises to itself */
    char again[E164_BUFSZ];
    assert_int_equal(e164_normalize(out, cc, again, sizeof again, &why), 0);
    assert_string_equal(again, want);
}

/* Returns the reason, after checking it contains `part` and `out` was cleared. */
static const char *bad(const char *in, const char *cc, const char *part)
{
    char out[E164_BUFSZ] = "junk";
    const char *why = NULL;
    if (e164_normalize(in, cc, out, sizeof out, &why) == 0)
        fail_msg("\"%s\" accepted as %s", in ? in : "NULL", out);
    assert_non_null(why);
    if (strstr(why, part) == NULL)
        fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", in ? in : "NULL", why, part);
    assert_string_equal(out, "");
    return why;
}

static void test_nanp(void **state)
{
    (void)state;
    ok("(415) 555-0100", "1", "+14155550100");
    ok("415.555.0100", "1", "+14155550100");
    ok("415-555-0100", "1", "+14155550100");
    ok("4155550100", "1", "+14155550100");
    ok("1 415 555 0100", "1", "+14155550100");
    ok("1-415-555-0100", "1", "+14155550100");
    ok("+1 (415) 555-0100", "1", "+14155550100");
    ok("+14155550100", "1", "+14155550100");
    ok("  +1 415 555 0100  ", "1", "+14155550100");
    ok("+13654001512", NULL, "+13654001512");
    ok("(415) 555-0100", NULL, "+14155550100");
    ok("(415) 555-0100", "", "+14155550100");
}

static void test_international(void **state)
{
    (void)state;
    ok("0044 20 7183 8750", "1", "+442071838750");
    ok("0044 20 7183 8750", NULL, "+442071838750");
    ok("+44 20 7183 8750", "1", "+442071838750");
    ok("011 44 20 7183 8750", "1", "+442071838750");
    ok("+44 (0)20 7183 8750", "1", "+442071838750"); /* "(0)": optional trunk prefix */
    ok("(0)20 7183 8750", "44", "+442071838750");
    ok("020 7183 8750", "44", "+442071838750"); /* UK trunk 0 dropped */
    ok("0044 20 7183 8750", "44", "+442071838750");
    ok("06 1234 5678", "39", "+390612345678"); /* Italy keeps its 0 */
    ok("+81 3-1234-5678", "1", "+81312345678");
    ok("+1 415 555 0100", "44", "+14155550100");
}

static void test_digit_counts(void **state)
{
    (void)state;
    ok("+49301234", "1", "+49301234");               /* 8 digits: the minimum */
    ok("+492012345678901", "1", "+492012345678901"); /* 15 digits: the maximum */
    const char *few = bad("+4930 12", "1", "too few digits");
    const char *many = bad("+49 2012 3456 7890 12", "1", "too many digits");
    const char *nanp_few = bad("415 555 010", "1", "too few digits for a NANP number");
    const char *nanp_many = bad("415 555 01000", "1", "too many digits for a NANP number");
    bad("+1 415 555 010", "1", "too few digits for a NANP number");
    bad("+1 415 555 01000", "1", "too many digits for a NANP number");
    bad("1 415 555 010", "1", "too few digits for a NANP number");
    bad("44 20 7183 8750", "1", "too many digits for a NANP number"); /* forgot the + */
    bad("7183", "44", "too few digits");
    bad("00", "1", "too few digits");
    assert_string_not_equal(few, nanp_few);
    assert_string_not_equal(many, nanp_many);
    assert_string_not_equal(few, many);
}

static void test_errors(void **state)
{
    (void)state;
    const char *reasons[] = {
        bad(NULL, "1", "empty"),
        bad("415555CALL", "1", "contains letters"),
        bad("+1 415 555 0100 ext 5", "1", "contains letters"),
        bad("1+4155550100", "1", "plus sign that is not at the start"),
        bad("++14155550100", "1", "plus sign that is not at the start"),
        bad("415\n555 0100", "1", "control character"),
        bad("415*555#0100", "1", "other than digits"),
        bad("((415) 555-0100", "1", "unbalanced or nested parentheses"),
        bad("- . ( )", "1", "no digits"),
        bad("+0 44 20 7183 8750", "1", "country code starting with 0"),
        bad("+1 115 555 0100", "1", "NANP area code starting with 0 or 1"),
        bad("4155550100", "01", "default country code"),
        bad("1234567890123456789012345678901234567890123456789012345678901234567", "1", "longer than 64 bytes"),
    };
    size_t n = sizeof reasons / sizeof reasons[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(reasons[i], reasons[j]) == 0 && !(i == 1 && j == 2) && !(i == 3 && j == 4))
                fail_msg("same reason for cases %zu and %zu: %s", i, j, reasons[i]);

    bad("", "1", "empty");
    bad("415\r5550100", "1", "control character");
    bad("415\t5550100", "1", "control character");
    bad("415\x7f"
        "5550100",
        "1", "control character");
    bad("415 555 0100)", "1", "unbalanced");
    bad("(415 555 0100", "1", "unbalanced");
    bad("415\xe2\x80\x93"
        "555-0100",
        "1", "other than digits"); /* en dash */
    bad("415/555/0100", "1", "other than digits");
    bad("+", "1", "no digits");
    bad("4155550100", "1234", "default country code");
    bad("4155550100", "4a", "default country code");
    /* exactly 64 bytes is read; its digits are then too many */
    bad("1234567890123456789012345678901234567890123456789012345678901234", "1", "too many digits");
}

static void test_output_buffer(void **state)
{
    (void)state;
    char small[12];
    const char *why = NULL;
    assert_int_equal(e164_normalize("+14155550100", "1", small, sizeof small, &why), -1);
    assert_non_null(strstr(why, "output buffer too small"));
    assert_string_equal(small, "");
    char exact[13];
    assert_int_equal(e164_normalize("+14155550100", "1", exact, sizeof exact, &why), 0);
    assert_string_equal(exact, "+14155550100");
    assert_int_equal(e164_normalize("+14155550100", "1", NULL, 0, &why), -1);
    /* why may be NULL */
    assert_int_equal(e164_normalize("abc", "1", exact, sizeof exact, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nanp),   cmocka_unit_test(test_international), cmocka_unit_test(test_digit_counts),
        cmocka_unit_test(test_errors), cmocka_unit_test(test_output_buffer),
    };
    return cmocka_run_group_tests_name("e164", tests, NULL, NULL);
}
