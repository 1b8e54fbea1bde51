/* isotime: the calendar checks behind dates and instants from requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/isotime.h"

static void valid_moments(void **state)
{
    (void)state;
    assert_true(isotime_valid(2026, 1, 31, 0, 0, 0));
    assert_true(isotime_valid(2026, 12, 31, 23, 59, 59));
    assert_true(isotime_valid(2016, 12, 31, 23, 59, 60)); /* a leap second */
    assert_true(isotime_valid(2028, 2, 29, 12, 0, 0));
    assert_true(isotime_valid(2000, 2, 29, 12, 0, 0));  /* divisible by 400 */
    assert_false(isotime_valid(1900, 2, 29, 12, 0, 0)); /* by 100, not 400 */
    assert_false(isotime_valid(2026, 2, 29, 0, 0, 0));
    assert_false(isotime_valid(2026, 2, 30, 0, 0, 0));
    assert_false(isotime_valid(2026, 4, 31, 0, 0, 0));
    assert_false(isotime_valid(2026, 13, 1, 0, 0, 0));
    assert_false(isotime_valid(2026, 0, 1, 0, 0, 0));
    assert_false(isotime_valid(2026, 1, 0, 0, 0, 0));
    assert_false(isotime_valid(2026, 1, 1, 24, 0, 0));
    assert_false(isotime_valid(2026, 1, 1, 25, 61, 0));
    assert_false(isotime_valid(2026, 1, 1, 0, 60, 0));
    assert_false(isotime_valid(2026, 1, 1, 0, 0, 61));
    assert_false(isotime_valid(2026, 1, 1, -1, 0, 0));
}

static void dates(void **state)
{
    (void)state;
    assert_true(isotime_date("2026-11-22"));
    assert_true(isotime_date("2028-02-29"));
    assert_false(isotime_date("2026-13-45"));
    assert_false(isotime_date("2026-02-30"));
    assert_false(isotime_date("2026-2-03"));
    assert_false(isotime_date("2026-02-03T00:00"));
    assert_false(isotime_date("20a6-02-03"));
    assert_false(isotime_date(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_moments),
        cmocka_unit_test(dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
