#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "server/router.h"

static int match(const char *pattern, const char *path, h2o_iovec_t *params, size_t *n)
{
    return router_match(pattern, path, strlen(path), params, n);
}

static void literal_paths(void **state)
{
    (void)state;
    h2o_iovec_t p[HTTP_MAX_PARAMS];
    size_t n = 9;
    assert_true(match("/health", "/health", p, &n));
    assert_int_equal(n, 0);
    assert_false(match("/health", "/health/", p, &n));
    assert_false(match("/health", "/healthz", p, &n));
    assert_false(match("/health", "/", p, &n));
    assert_false(match("/twilio/voice", "/twilio", p, &n));
}

static void captures(void **state)
{
    (void)state;
    h2o_iovec_t p[HTTP_MAX_PARAMS];
    size_t n = 0;
    assert_true(match("/api/calls/{id}", "/api/calls/42", p, &n));
    assert_int_equal(n, 1);
    assert_int_equal(p[0].len, 2);
    assert_memory_equal(p[0].base, "42", 2);
    assert_true(match("/api/calls/{id}/transfer", "/api/calls/abc/transfer", p, &n));
    assert_memory_equal(p[0].base, "abc", 3);
    assert_false(match("/api/calls/{id}", "/api/calls/", p, &n)); /* empty capture */
    assert_false(match("/api/calls/{id}", "/api/calls/1/2", p, &n));
    assert_false(match("/api/calls/{id}/transfer", "/api/calls/1/hangup", p, &n));
    assert_true(match("/twilio/{a}/{b}", "/twilio/x/y", p, &n));
    assert_int_equal(n, 2);
}

static void table_is_well_formed(void **state)
{
    (void)state;
    assert_true(router_routes_count > 0);
    for (size_t i = 0; i < router_routes_count; i++) {
        assert_non_null(router_routes[i].fn);
        assert_int_equal(router_routes[i].pattern[0], '/');
        for (size_t j = 0; j < i; j++)
            if (strcmp(router_routes[i].method, router_routes[j].method) == 0 &&
                strcmp(router_routes[i].pattern, router_routes[j].pattern) == 0)
                fail_msg("route %s %s listed twice", router_routes[i].method, router_routes[i].pattern);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_paths),
        cmocka_unit_test(captures),
        cmocka_unit_test(table_is_well_formed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
