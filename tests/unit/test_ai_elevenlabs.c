/* ai_elevenlabs: the URL, the initiation data, the user_audio_chunk message, the outgoing queue
 * and the mapping of the server's events to the bridge's callbacks, all without a connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai/ai_elevenlabs.h"

typedef struct {
    int ready, response_done, speech_started, caller_active, fatal, errors, audio, tools;
    char audio_b64[512], audio_item[64];
    char transcript[2][128];
    char tool_id[64], tool_name[64], tool_args[256];
    char error[256];
} calls_t;

static calls_t got;

static void on_ready(void *b)
{
    (void)b;
    got.ready++;
}

static void on_audio(void *b, const char *b64, size_t len, const char *item_id)
{
    (void)b;
    got.audio++;
    snprintf(got.audio_b64, sizeof(got.audio_b64), "%.*s", (int)len, b64);
    snprintf(got.audio_item, sizeof(got.audio_item), "%s", item_id);
}

static void on_response_done(void *b)
{
    (void)b;
    got.response_done++;
}

static void on_speech_started(void *b)
{
    (void)b;
    got.speech_started++;
}

static void on_caller_active(void *b)
{
    (void)b;
    got.caller_active++;
}

static void on_transcript(void *b, ai_role_t role, const char *text)
{
    (void)b;
    snprintf(got.transcript[role], sizeof(got.transcript[role]), "%s", text);
}

static void on_tool_call(void *b, const char *call_id, const char *name, const char *args)
{
    (void)b;
    got.tools++;
    snprintf(got.tool_id, sizeof(got.tool_id), "%s", call_id);
    snprintf(got.tool_name, sizeof(got.tool_name), "%s", name);
    snprintf(got.tool_args, sizeof(got.tool_args), "%s", args);
}

static void on_error(void *b, const char *what, int fatal)
{
    (void)b;
    got.errors++;
    got.fatal += fatal;
    snprintf(got.error, sizeof(got.error), "%s", what);
}

static const ai_events_t EV = {on_ready,         on_audio,      on_response_done, on_speech_started,
                               on_caller_active, on_transcript, on_tool_call,     on_error};

static ai_session_t *session(const char *greeting)
{
    memset(&got, 0, sizeof(got));
    ai_open_t p = {.instructions = "Be brief.", .greeting = greeting, .session_id = "sess1"};
    ai_session_t *s = elevenlabs_session_new(&p, &EV, NULL);
    assert_non_null(s);
    return s;
}

static void feed(ai_session_t *s, const char *msg)
{
    elevenlabs_on_message(s, msg, strlen(msg));
}

/* pops the next message to send into buf; "" when there is none */
static const char *next_out(ai_session_t *s, char *buf, size_t cap)
{
    size_t len;
    char *m = elevenlabs_out_peek(s, &len);
    if (m == NULL)
        return "";
    snprintf(buf, cap, "%.*s", (int)len, m);
    elevenlabs_out_pop(s);
    return buf;
}

#define METADATA(out, in)                                                                                              \
    "{\"type\":\"conversation_initiation_metadata\",\"conversation_initiation_metadata_event\":{\"conversation_id\":"  \
    "\"c1\",\"agent_output_audio_format\":\"" out "\",\"user_input_audio_format\":\"" in "\"}}"

static void target(void **state)
{
    (void)state;
    elevenlabs_target_t t;
    assert_int_equal(elevenlabs_target_parse("wss://api.elevenlabs.io/v1/convai/conversation", "agent_1", &t), 0);
    assert_string_equal(t.host, "api.elevenlabs.io");
    assert_int_equal(t.port, 443);
    assert_int_equal(t.tls, 1);
    assert_string_equal(t.path, "/v1/convai/conversation?agent_id=agent_1");
    assert_int_equal(elevenlabs_target_parse("ws://127.0.0.1:9000/x?a=b", "a b&c", &t), 0);
    assert_int_equal(t.port, 9000);
    assert_string_equal(t.path, "/x?a=b&agent_id=a%20b%26c");
    assert_int_equal(elevenlabs_target_parse("ftp://x/", "a", &t), -1);
}

static void initiation(void **state)
{
    (void)state;
    ai_open_t p = {.instructions = "Be brief.", .greeting = "Hi there!", .session_id = "s9"};
    char *j = elevenlabs_initiation_json(&p);
    assert_non_null(j);
    json_t *o = json_loads(j, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "conversation_initiation_client_data");
    json_t *agent = json_object_get(json_object_get(o, "conversation_config_override"), "agent");
    assert_string_equal(json_string_value(json_object_get(json_object_get(agent, "prompt"), "prompt")), "Be brief.");
    assert_string_equal(json_string_value(json_object_get(agent, "first_message")), "Hi there!");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "dynamic_variables"), "session_id")),
                        "s9");
    json_decref(o);
    free(j);
    p.greeting = NULL; /* no greeting: the agent's own first message */
    j = elevenlabs_initiation_json(&p);
    assert_null(strstr(j, "first_message"));
    free(j);
}

static void chunk(void **state)
{
    (void)state;
    char buf[ELEVENLABS_CHUNK_MAX];
    size_t n = elevenlabs_chunk_build(buf, sizeof(buf), "//8=", 4);
    assert_int_equal(n, strlen("{\"user_audio_chunk\":\"//8=\"}"));
    assert_memory_equal(buf, "{\"user_audio_chunk\":\"//8=\"}", n);
    assert_int_equal(elevenlabs_chunk_build(buf, sizeof(buf), "a\"b", 3), 0);
    assert_int_equal(elevenlabs_chunk_build(buf, 10, "//8=", 4), 0);
}

static void ready_and_audio(void **state)
{
    (void)state;
    char buf[1024];
    ai_session_t *s = session("Hello");
    ai_elevenlabs_provider.send_audio(s, "//8=", 4); /* waits for the format check */
    assert_non_null(strstr(next_out(s, buf, sizeof(buf)), "conversation_initiation_client_data"));
    assert_string_equal(next_out(s, buf, sizeof(buf)), "");
    feed(s, METADATA("ulaw_8000", "ulaw_8000"));
    assert_int_equal(got.ready, 1);
    assert_string_equal(next_out(s, buf, sizeof(buf)), "{\"user_audio_chunk\":\"//8=\"}");
    feed(s, "{\"type\":\"audio\",\"audio_event\":{\"audio_base_64\":\"AAAA\",\"event_id\":1}}");
    feed(s, "{\"type\":\"audio\",\"audio_event\":{\"audio_base_64\":\"BBBB\",\"event_id\":1}}");
    assert_int_equal(got.audio, 2);
    assert_string_equal(got.audio_b64, "BBBB");
    char first[64];
    snprintf(first, sizeof(first), "%s", got.audio_item);
    assert_true(first[0] != '\0');
    elevenlabs_idle(s); /* quiet: the response is done */
    assert_int_equal(got.response_done, 1);
    elevenlabs_idle(s);
    assert_int_equal(got.response_done, 1);
    feed(s, "{\"type\":\"audio\",\"audio_event\":{\"audio_base_64\":\"CCCC\",\"event_id\":2}}");
    assert_string_not_equal(got.audio_item, first); /* a new response, a new item */
    feed(s, "{\"type\":\"audio\",\"audio_event\":{\"audio_base_64\":\"bad\\\"\",\"event_id\":2}}");
    assert_int_equal(got.audio, 3);
    ai_elevenlabs_provider.close(s);
}

static void mismatch(void **state)
{
    (void)state;
    char buf[1024];
    ai_session_t *s = session(NULL);
    ai_elevenlabs_provider.send_audio(s, "//8=", 4);
    next_out(s, buf, sizeof(buf));
    feed(s, METADATA("pcm_16000", "ulaw_8000"));
    assert_int_equal(got.ready, 0);
    assert_int_equal(got.fatal, 1);
    assert_non_null(strstr(got.error, "format mismatch"));
    assert_non_null(strstr(got.error, "pcm_16000"));
    assert_string_equal(next_out(s, buf, sizeof(buf)), ""); /* never any audio */
    feed(s, "{\"type\":\"audio\",\"audio_event\":{\"audio_base_64\":\"AAAA\",\"event_id\":1}}");
    assert_int_equal(got.audio, 0);
    ai_elevenlabs_provider.close(s);
}

static void events(void **state)
{
    (void)state;
    char buf[1024];
    ai_session_t *s = session(NULL);
    next_out(s, buf, sizeof(buf));
    feed(s, METADATA("ulaw_8000", "ulaw_8000"));
    feed(s, "{\"type\":\"ping\",\"ping_event\":{\"event_id\":42,\"ping_ms\":30}}");
    assert_string_equal(next_out(s, buf, sizeof(buf)), "{\"type\":\"pong\",\"event_id\":42}");
    feed(s, "{\"type\":\"audio\",\"audio_event\":{\"audio_base_64\":\"AAAA\",\"event_id\":5}}");
    feed(s, "{\"type\":\"interruption\",\"interruption_event\":{\"event_id\":5}}");
    assert_int_equal(got.speech_started, 1);
    assert_int_equal(got.response_done, 1);
    feed(s, "{\"type\":\"audio\",\"audio_event\":{\"audio_base_64\":\"BBBB\",\"event_id\":5}}");
    assert_int_equal(got.audio, 1); /* late audio of the interrupted response */
    ai_elevenlabs_provider.interrupt(s, "el_1", 300);
    assert_string_equal(next_out(s, buf, sizeof(buf)), ""); /* nothing to cancel or truncate */
    feed(s, "{\"type\":\"user_transcript\",\"user_transcription_event\":{\"user_transcript\":\"hi there\"}}");
    assert_string_equal(got.transcript[AI_ROLE_CALLER], "hi there");
    assert_int_equal(got.caller_active, 1);
    feed(s, "{\"type\":\"agent_response\",\"agent_response_event\":{\"agent_response\":\"Hello!\"}}");
    assert_string_equal(got.transcript[AI_ROLE_AGENT], "Hello!");
    feed(s, "{\"type\":\"client_tool_call\",\"client_tool_call\":{\"tool_name\":\"book_appointment\",\"tool_call_id\":"
            "\"tc1\",\"parameters\":{\"name\":\"Ada\"}}}");
    feed(s, "{\"type\":\"client_tool_call\",\"client_tool_call\":{\"tool_name\":\"book_appointment\",\"tool_call_id\":"
            "\"tc1\",\"parameters\":{\"name\":\"Ada\"}}}");
    assert_int_equal(got.tools, 1);
    assert_string_equal(got.tool_id, "tc1");
    assert_string_equal(got.tool_name, "book_appointment");
    assert_string_equal(got.tool_args, "{\"name\":\"Ada\"}");
    ai_elevenlabs_provider.tool_result(s, "tc1", "{\"ok\":true}");
    assert_string_equal(next_out(s, buf, sizeof(buf)),
                        "{\"type\":\"client_tool_result\",\"tool_call_id\":\"tc1\",\"result\":\"{\\\"ok\\\":true}\","
                        "\"is_error\":false}");
    ai_elevenlabs_provider.say(s, "Say goodbye.");
    assert_string_equal(next_out(s, buf, sizeof(buf)), "{\"type\":\"contextual_update\",\"text\":\"Say goodbye.\"}");
    feed(s, "not json");
    assert_int_equal(got.fatal, 0);
    ai_elevenlabs_provider.close(s);
}

static void ring_drops_oldest(void **state)
{
    (void)state;
    char buf[1024];
    ai_session_t *s = session(NULL);
    next_out(s, buf, sizeof(buf));
    feed(s, METADATA("ulaw_8000", "ulaw_8000"));
    for (int i = 0; i < ELEVENLABS_AUDIO_SLOTS + 3; i++)
        ai_elevenlabs_provider.send_audio(s, i < 3 ? "AAAA" : "//8=", 4);
    assert_int_equal(ai_elevenlabs_provider.dropped(s), 3);
    assert_string_equal(next_out(s, buf, sizeof(buf)), "{\"user_audio_chunk\":\"//8=\"}");
    ai_elevenlabs_provider.close(s);
}

static void fragments(void **state)
{
    (void)state;
    ai_session_t *s = session(NULL);
    const char *m = METADATA("ulaw_8000", "ulaw_8000");
    size_t n = strlen(m);
    assert_int_equal(elevenlabs_rx_feed(s, m, 10, 0), 0);
    assert_int_equal(elevenlabs_rx_feed(s, m + 10, n - 10, 1), 0);
    assert_int_equal(got.ready, 1);
    ai_elevenlabs_provider.close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(target),
        cmocka_unit_test(initiation),
        cmocka_unit_test(chunk),
        cmocka_unit_test(ready_and_audio),
        cmocka_unit_test(mismatch),
        cmocka_unit_test(events),
        cmocka_unit_test(ring_drops_oldest),
        cmocka_unit_test(fragments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
