/* metrics: events land in the right bucket and label set, workers and same-named routes are
 * summed at render, buckets are cumulative and _count is the +Inf bucket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"

static metrics_t w0, w1;

static char *render(const metrics_t *const *ws, size_t n)
{
    static const char *const routes[] = {"/a", "/b/{id}", "/b/{id}"}; /* /b/{id}: GET and PUT */
    metrics_view_t v = {ws, n, routes, 3, "1.2.3"};
    size_t len = 0;
    char *text = metrics_render(&v, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void has(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    if (strstr(text, want) == NULL)
        fail_msg("missing line: %s\n--- in ---\n%s", line, text);
}

static void summed_and_cumulative(void **state)
{
    (void)state;
    memset(&w0, 0, sizeof(w0));
    memset(&w1, 0, sizeof(w1));
    metrics_http(&w0, 1, 200, 400000);      /* /a: 0.4 ms */
    metrics_http(&w1, 1, 404, 3000000);     /* /a: 3 ms */
    metrics_http(&w1, 1, 200, 20000000000); /* /a: 20 s, past the last bound */
    metrics_http(&w0, 2, 200, 1000000);     /* /b/{id} GET: 1 ms, on the bound */
    metrics_http(&w1, 3, 503, 1000000);     /* /b/{id} PUT */
    metrics_http(&w0, 0, 404, 100000);      /* other */
    metrics_http(&w0, 99, 404, 100000);     /* out of range: other */
    metrics_http(&w0, 2, 101, 60000000000); /* a WebSocket: counted, not timed */
    const metrics_t *ws[] = {&w0, NULL, &w1};
    char *t = render(ws, 3);
    has(t, "switchboard_build_info{version=\"1.2.3\"} 1");
    has(t, "switchboard_workers 3");
    has(t, "switchboard_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0005\"} 1");
    has(t, "switchboard_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0025\"} 1");
    has(t, "switchboard_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.005\"} 2");
    has(t, "switchboard_http_request_duration_seconds_bucket{route=\"/a\",le=\"10\"} 2");
    has(t, "switchboard_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3");
    has(t, "switchboard_http_request_duration_seconds_sum{route=\"/a\"} 20.003400000");
    has(t, "switchboard_http_request_duration_seconds_count{route=\"/a\"} 3");
    has(t, "switchboard_http_requests_total{route=\"/a\",status_class=\"2xx\"} 2");
    has(t, "switchboard_http_requests_total{route=\"/a\",status_class=\"4xx\"} 1");
    /* two routes, one pattern: one series, summed */
    has(t, "switchboard_http_request_duration_seconds_bucket{route=\"/b/{id}\",le=\"0.0005\"} 0");
    has(t, "switchboard_http_request_duration_seconds_bucket{route=\"/b/{id}\",le=\"0.001\"} 2");
    has(t, "switchboard_http_request_duration_seconds_count{route=\"/b/{id}\"} 2");
    has(t, "switchboard_http_requests_total{route=\"/b/{id}\",status_class=\"1xx\"} 1");
    has(t, "switchboard_http_requests_total{route=\"/b/{id}\",status_class=\"5xx\"} 1");
    assert_null(strstr(strstr(t, "route=\"/b/{id}\",le=\"+Inf\"") + 1, "route=\"/b/{id}\",le=\"+Inf\""));
    has(t, "switchboard_http_request_duration_seconds_count{route=\"other\"} 2");
    free(t);
}

static void calls(void **state)
{
    (void)state;
    memset(&w0, 0, sizeof(w0));
    memset(&w1, 0, sizeof(w1));
    metrics_call_inbound(&w0, PLATFORM_TWILIO, 0);
    metrics_call_inbound(&w0, PLATFORM_TWILIO, 1); /* refused: started and ended busy */
    metrics_call_started(&w1, PLATFORM_JAMBONZ, METRICS_OUTBOUND);
    metrics_call_started(&w1, PLATFORM_JAMBONZ, METRICS_OUTBOUND);
    /* a call may end on another worker than the one it began on */
    assert_int_equal(metrics_call_ended_s(&w0, "jambonz", "outbound", "no-answer"), 0);
    assert_int_equal(metrics_call_ended_s(&w1, "twilio", "inbound", "simulation"), 0);
    assert_int_equal(metrics_call_ended_s(&w1, "skype", "inbound", "completed"), -1);
    assert_int_equal(metrics_call_ended_s(&w1, "twilio", "sideways", "completed"), -1);
    /* more ends than starts (calls begun before a restart): the gauge stops at 0 */
    metrics_call_ended(&w1, PLATFORM_ASTERISK, METRICS_INBOUND, METRICS_COMPLETED);
    const metrics_t *ws[] = {&w0, &w1};
    char *t = render(ws, 2);
    has(t, "switchboard_calls_started_total{platform=\"twilio\",direction=\"inbound\"} 2");
    has(t, "switchboard_calls_started_total{platform=\"jambonz\",direction=\"outbound\"} 2");
    has(t, "switchboard_calls_started_total{platform=\"asterisk\",direction=\"outbound\"} 0");
    has(t, "switchboard_calls_ended_total{platform=\"twilio\",direction=\"inbound\",outcome=\"busy\"} 1");
    has(t, "switchboard_calls_ended_total{platform=\"twilio\",direction=\"inbound\",outcome=\"other\"} 1");
    has(t, "switchboard_calls_ended_total{platform=\"jambonz\",direction=\"outbound\",outcome=\"no-answer\"} 1");
    has(t, "switchboard_calls_active{platform=\"twilio\"} 0");
    has(t, "switchboard_calls_active{platform=\"jambonz\"} 1");
    has(t, "switchboard_calls_active{platform=\"asterisk\"} 0");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(summed_and_cumulative),
        cmocka_unit_test(calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
