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

static void media_and_transfers(void **state)
{
    (void)state;
    memset(&w0, 0, sizeof(w0));
    memset(&w1, 0, sizeof(w1));
    metrics_media_frame(&w0, AI_ECHO, METRICS_MEDIA_IN);
    metrics_media_frame(&w1, AI_ECHO, METRICS_MEDIA_IN);
    metrics_media_frame(&w1, AI_ECHO, METRICS_MEDIA_OUT);
    metrics_media_frame(&w1, AI_OPENAI, METRICS_MEDIA_OUT);
    metrics_media_frame(&w1, 7, METRICS_MEDIA_OUT); /* not a provider: nothing */
    metrics_media_dropped(&w0, AI_NONE, METRICS_DROP_EARLY, 1);
    metrics_media_dropped(&w1, AI_NONE, METRICS_DROP_EARLY, 2);
    metrics_media_dropped(&w1, AI_OPENAI, METRICS_DROP_AI_FULL, 40);
    metrics_recording_bytes(&w0, 160);
    metrics_recording_bytes(&w1, 1200);
    metrics_ai_error(&w0, AI_ELEVENLABS);
    metrics_ai_error(&w1, AI_ELEVENLABS);
    metrics_ai_message(&w0, AI_OPENAI, METRICS_AI_SENT);
    metrics_ai_message(&w1, AI_OPENAI, METRICS_AI_SENT);
    metrics_ai_message(&w1, AI_OPENAI, METRICS_AI_RECEIVED);
    metrics_ai_message(&w1, -1, METRICS_AI_RECEIVED); /* not an AI (Asterisk's events): nothing */
    metrics_ai_fallback(&w0, METRICS_FALLBACK_AI_UNREACHABLE);
    metrics_ai_fallback(&w1, METRICS_FALLBACK_AI_UNREACHABLE);
    metrics_ai_fallback(&w1, (metrics_fallback_t)42); /* out of range: other */
    metrics_first_audio(&w0, 50000000);               /* 0.05 s */
    metrics_first_audio(&w1, 800000000);              /* 0.8 s */
    metrics_first_audio(&w1, 1000000000);             /* 1 s, on the bound */
    metrics_first_audio(&w1, 30000000000);            /* 30 s, past the last bound */
    metrics_store_commit(&w0, 700000);                /* 0.7 ms */
    metrics_store_commit(&w1, 3000000);               /* 3 ms */

    /* two targets: 0 primary, 1 secondary, 2 voicemail, 3 the goodbye */
    assert_int_equal(metrics_stage(0, 2), METRICS_STAGE_PRIMARY);
    assert_int_equal(metrics_stage(1, 2), METRICS_STAGE_SECONDARY);
    assert_int_equal(metrics_stage(2, 2), METRICS_STAGE_VOICEMAIL);
    assert_int_equal(metrics_stage(3, 2), METRICS_STAGE_OTHER);
    /* one target: voicemail comes second; none: first */
    assert_int_equal(metrics_stage(1, 1), METRICS_STAGE_VOICEMAIL);
    assert_int_equal(metrics_stage(0, 0), METRICS_STAGE_VOICEMAIL);
    /* the voicemail stage unknown: a target */
    assert_int_equal(metrics_stage(1, -1), METRICS_STAGE_SECONDARY);
    assert_int_equal(metrics_stage(5, -1), METRICS_STAGE_OTHER);
    metrics_transfer_attempt(&w0, PLATFORM_TWILIO, METRICS_STAGE_PRIMARY);
    metrics_transfer_attempt_s(&w1, "twilio", METRICS_STAGE_PRIMARY);
    metrics_transfer_attempt_s(&w1, "skype", METRICS_STAGE_PRIMARY); /* not ours: nothing */
    metrics_transfer_attempt(&w1, PLATFORM_ASTERISK, METRICS_STAGE_VOICEMAIL);
    metrics_transfer_outcome(&w0, PLATFORM_TWILIO, METRICS_STAGE_PRIMARY, "busy");
    metrics_transfer_outcome_s(&w1, "twilio", METRICS_STAGE_PRIMARY, "answered"); /* Twilio's word: completed */
    metrics_transfer_outcome(&w1, PLATFORM_JAMBONZ, METRICS_STAGE_SECONDARY, "no-answer");
    metrics_transfer_outcome(&w1, PLATFORM_JAMBONZ, METRICS_STAGE_SECONDARY, "exploded");

    const metrics_t *ws[] = {&w0, &w1};
    char *t = render(ws, 2);
    has(t, "# TYPE switchboard_media_frames_total counter");
    has(t, "switchboard_media_frames_total{provider=\"echo\",direction=\"in\"} 2");
    has(t, "switchboard_media_frames_total{provider=\"echo\",direction=\"out\"} 1");
    has(t, "switchboard_media_frames_total{provider=\"openai\",direction=\"out\"} 1");
    has(t, "switchboard_media_frames_total{provider=\"none\",direction=\"in\"} 0");
    has(t, "switchboard_media_frames_dropped_total{provider=\"none\",reason=\"early\"} 3");
    has(t, "switchboard_media_frames_dropped_total{provider=\"openai\",reason=\"ai_full\"} 40");
    has(t, "switchboard_media_frames_dropped_total{provider=\"openai\",reason=\"leg_full\"} 0");
    has(t, "switchboard_recording_bytes_total 1360");
    has(t, "switchboard_ai_errors_total{provider=\"elevenlabs\"} 2");
    has(t, "# TYPE switchboard_ai_messages_total counter");
    has(t, "switchboard_ai_messages_total{provider=\"openai\",direction=\"sent\"} 2");
    has(t, "switchboard_ai_messages_total{provider=\"openai\",direction=\"received\"} 1");
    has(t, "switchboard_ai_messages_total{provider=\"elevenlabs\",direction=\"sent\"} 0");
    has(t, "switchboard_ai_errors_total{provider=\"openai\"} 0");
    has(t, "switchboard_ai_fallbacks_total{reason=\"ai_unreachable\"} 2");
    has(t, "switchboard_ai_fallbacks_total{reason=\"other\"} 1");
    has(t, "switchboard_ai_fallbacks_total{reason=\"no_ai\"} 0");
    has(t, "# TYPE switchboard_first_audio_seconds histogram");
    has(t, "switchboard_first_audio_seconds_bucket{le=\"0.1\"} 1");
    has(t, "switchboard_first_audio_seconds_bucket{le=\"0.75\"} 1");
    has(t, "switchboard_first_audio_seconds_bucket{le=\"1\"} 3");
    has(t, "switchboard_first_audio_seconds_bucket{le=\"10\"} 3");
    has(t, "switchboard_first_audio_seconds_bucket{le=\"+Inf\"} 4");
    has(t, "switchboard_first_audio_seconds_sum 31.850000000");
    has(t, "switchboard_first_audio_seconds_count 4");
    has(t, "# TYPE switchboard_store_commit_seconds histogram");
    has(t, "switchboard_store_commit_seconds_bucket{le=\"0.0005\"} 0");
    has(t, "switchboard_store_commit_seconds_bucket{le=\"0.001\"} 1");
    has(t, "switchboard_store_commit_seconds_bucket{le=\"0.005\"} 2");
    has(t, "switchboard_store_commit_seconds_sum 0.003700000");
    has(t, "switchboard_store_commit_seconds_count 2");
    has(t, "switchboard_transfer_attempts_total{platform=\"twilio\",stage=\"primary\"} 2");
    has(t, "switchboard_transfer_attempts_total{platform=\"asterisk\",stage=\"voicemail\"} 1");
    has(t, "switchboard_transfer_attempts_total{platform=\"jambonz\",stage=\"other\"} 0");
    has(t, "switchboard_transfer_outcomes_total{platform=\"twilio\",stage=\"primary\",outcome=\"busy\"} 1");
    has(t, "switchboard_transfer_outcomes_total{platform=\"twilio\",stage=\"primary\",outcome=\"completed\"} 1");
    has(t, "switchboard_transfer_outcomes_total{platform=\"jambonz\",stage=\"secondary\",outcome=\"no-answer\"} 1");
    has(t, "switchboard_transfer_outcomes_total{platform=\"jambonz\",stage=\"secondary\",outcome=\"other\"} 1");
    /* the request histogram renders as before through the shared code */
    has(t, "switchboard_http_request_duration_seconds_count{route=\"/a\"} 0");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(summed_and_cumulative),
        cmocka_unit_test(calls),
        cmocka_unit_test(media_and_transfers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
