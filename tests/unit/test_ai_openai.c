/* ai_openai: the URL, session.update in both shapes, the append message, the outgoing queues and
 * the mapping of every server event to the bridge's callbacks, all without a connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai/ai_openai.h"

/* ---- a bridge that writes down what it is told ---- */

typedef struct {
    int ready, response_done, speech_started, fatal, errors, audio, tools;
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

static const ai_events_t events = {
    .ready = on_ready,
    .audio = on_audio,
    .response_done = on_response_done,
    .speech_started = on_speech_started,
    .transcript = on_transcript,
    .tool_call = on_tool_call,
    .error = on_error,
};

static const ai_tool_t tools[] = {
    {"transfer_call", "Hand the call to a person",
     "{\"type\":\"object\",\"properties\":{\"target\":{\"type\":\"string\"}}}"},
    {"end_call", "Hang up", NULL},
    {"broken", "parameters that are not JSON", "{nope"}, /* only in with_broken_tool */
};

static const ai_open_t params = {
    .instructions = "You answer the phone for Acme.",
    .voice = "marin",
    .greeting = "Hello, Acme here!",
    .tools = tools,
    .ntools = 2,
    .session_id = "s-test",
};

static const ai_provider_t *P = &ai_openai_provider;

static ai_session_t *session(int beta)
{
    memset(&got, 0, sizeof(got));
    ai_session_t *s = openai_session_new(&params, &events, NULL, beta);
    assert_non_null(s);
    return s;
}

/* The next outgoing message, parsed; NULL when there is none. */
static json_t *next_out(ai_session_t *s)
{
    size_t len;
    char *m = openai_out_peek(s, &len);
    if (m == NULL)
        return NULL;
    json_error_t err;
    json_t *j = json_loadb(m, len, 0, &err);
    if (j == NULL)
        fail_msg("not JSON: %.*s (%s)", (int)len, m, err.text);
    openai_out_pop(s);
    return j;
}

static const char *type_of(const json_t *j)
{
    return json_string_value(json_object_get(j, "type"));
}

static void expect_type(ai_session_t *s, const char *type)
{
    json_t *j = next_out(s);
    assert_non_null(j);
    assert_string_equal(type_of(j), type);
    json_decref(j);
}

static void feed(ai_session_t *s, const char *json)
{
    assert_int_equal(openai_on_message(s, json, strlen(json)), 0);
}

/* A session past session.update and session.updated, greeting taken off the queue. */
static ai_session_t *ready_session(int beta)
{
    ai_session_t *s = session(beta);
    expect_type(s, "session.update");
    feed(s, "{\"type\":\"session.created\",\"session\":{}}");
    feed(s, "{\"type\":\"session.updated\",\"session\":{}}");
    assert_int_equal(got.ready, 1);
    expect_type(s, "response.create");
    assert_null(next_out(s));
    return s;
}

/* ---- the URL ---- */

static void target_urls(void **state)
{
    (void)state;
    openai_target_t t;
    assert_int_equal(openai_target_parse("wss://api.openai.com/v1/realtime", "gpt-realtime", &t), 0);
    assert_string_equal(t.host, "api.openai.com");
    assert_int_equal(t.port, 443);
    assert_int_equal(t.tls, 1);
    assert_string_equal(t.path, "/v1/realtime?model=gpt-realtime");

    assert_int_equal(openai_target_parse("ws://127.0.0.1:8123/v1/realtime?x=1#frag", "a b/c", &t), 0);
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, 8123);
    assert_int_equal(t.tls, 0);
    assert_string_equal(t.path, "/v1/realtime?x=1&model=a%20b%2Fc");

    /* the URL's own model wins */
    assert_int_equal(openai_target_parse("wss://h/v1/realtime?model=mine&x=1", "gpt-realtime", &t), 0);
    assert_string_equal(t.path, "/v1/realtime?model=mine&x=1");
    assert_int_equal(openai_target_parse("ws://[::1]:9000", "m", &t), 0);
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 9000);
    assert_string_equal(t.path, "/?model=m");
    assert_int_equal(openai_target_parse("ws://h/p?", "m", &t), 0);
    assert_string_equal(t.path, "/p?model=m");

    assert_int_equal(openai_target_parse("ftp://h/p", "m", &t), -1);
    assert_int_equal(openai_target_parse("ws://:80/p", "m", &t), -1);
    assert_int_equal(openai_target_parse("ws://h:99999/p", "m", &t), -1);
    assert_int_equal(openai_target_parse("ws://h:/p", "m", &t), -1);
    assert_int_equal(openai_target_parse("ws://user@h/p", "m", &t), -1);
    assert_int_equal(openai_target_parse(NULL, "m", &t), -1);
}

/* ---- session.update ---- */

static json_t *session_update(int beta)
{
    ai_open_t with_broken_tool = params;
    with_broken_tool.ntools = 3;
    char *text = openai_session_update_json(&with_broken_tool, beta);
    assert_non_null(text);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(j);
    assert_string_equal(type_of(j), "session.update");
    return j;
}

static void check_tools(const json_t *sess)
{
    const json_t *t = json_object_get(sess, "tools");
    assert_int_equal(json_array_size(t), 2); /* the broken one is left out */
    const json_t *t0 = json_array_get(t, 0), *t1 = json_array_get(t, 1);
    assert_string_equal(type_of(t0), "function");
    assert_string_equal(json_string_value(json_object_get(t0, "name")), "transfer_call");
    assert_string_equal(json_string_value(json_object_get(t0, "description")), "Hand the call to a person");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(t0, "parameters"), "properties"), "target"), "type")),
        "string");
    assert_string_equal(json_string_value(json_object_get(t1, "name")), "end_call");
    assert_string_equal(json_string_value(json_object_get(json_object_get(t1, "parameters"), "type")), "object");
    assert_string_equal(json_string_value(json_object_get(sess, "tool_choice")), "auto");
    assert_string_equal(json_string_value(json_object_get(sess, "instructions")), "You answer the phone for Acme.");
}

static void session_update_ga(void **state)
{
    (void)state;
    json_t *j = session_update(0);
    json_t *sess = json_object_get(j, "session");
    assert_string_equal(type_of(sess), "realtime");
    json_t *in = json_object_get(json_object_get(sess, "audio"), "input");
    json_t *out = json_object_get(json_object_get(sess, "audio"), "output");
    assert_string_equal(type_of(json_object_get(in, "format")), "audio/pcmu");
    assert_string_equal(type_of(json_object_get(in, "turn_detection")), "server_vad");
    assert_string_equal(json_string_value(json_object_get(json_object_get(in, "transcription"), "model")), "whisper-1");
    assert_string_equal(type_of(json_object_get(out, "format")), "audio/pcmu");
    assert_string_equal(json_string_value(json_object_get(out, "voice")), "marin");
    /* nothing of the beta shape */
    assert_null(json_object_get(sess, "voice"));
    assert_null(json_object_get(sess, "input_audio_format"));
    assert_null(json_object_get(sess, "modalities"));
    check_tools(sess);
    json_decref(j);
}

static void session_update_beta(void **state)
{
    (void)state;
    json_t *j = session_update(1);
    json_t *sess = json_object_get(j, "session");
    assert_string_equal(json_string_value(json_object_get(sess, "input_audio_format")), "g711_ulaw");
    assert_string_equal(json_string_value(json_object_get(sess, "output_audio_format")), "g711_ulaw");
    assert_string_equal(json_string_value(json_object_get(sess, "voice")), "marin");
    assert_string_equal(type_of(json_object_get(sess, "turn_detection")), "server_vad");
    assert_string_equal(json_string_value(json_object_get(json_object_get(sess, "input_audio_transcription"), "model")),
                        "whisper-1");
    json_t *mod = json_object_get(sess, "modalities");
    assert_int_equal(json_array_size(mod), 2);
    assert_string_equal(json_string_value(json_array_get(mod, 0)), "audio");
    assert_string_equal(json_string_value(json_array_get(mod, 1)), "text");
    assert_null(json_object_get(sess, "type"));
    assert_null(json_object_get(sess, "audio"));
    check_tools(sess);
    json_decref(j);
}

/* ---- the append message and the queues ---- */

static void append_message(void **state)
{
    (void)state;
    char buf[OPENAI_APPEND_MAX];
    const char *b64 = "f39/fw==";
    size_t n = openai_append_build(buf, sizeof(buf), b64, strlen(b64));
    const char want[] = "{\"type\":\"input_audio_buffer.append\",\"audio\":\"f39/fw==\"}";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
    /* the room is checked, and only base64 goes into the JSON */
    assert_int_equal(openai_append_build(buf, sizeof(want) - 2, b64, strlen(b64)), 0);
    assert_int_equal(openai_append_build(buf, sizeof(buf), "ab\"}", 4), 0);
    assert_int_equal(openai_append_build(buf, sizeof(buf), "ab\\n", 4), 0);
}

/* A frame that says which it is: digits are base64 too. */
static void frame(char *b64, unsigned i)
{
    memset(b64, 'A', OPENAI_FRAME_B64);
    b64[OPENAI_FRAME_B64] = '\0';
    for (int d = 6; d >= 0; d--, i /= 10)
        b64[d] = (char)('0' + i % 10);
}

static void audio_ring_drops_oldest(void **state)
{
    (void)state;
    ai_session_t *s = session(0);
    char b64[OPENAI_FRAME_B64 + 1];
    for (unsigned i = 0; i < OPENAI_AUDIO_SLOTS + 44; i++) {
        frame(b64, i);
        P->send_audio(s, b64, OPENAI_FRAME_B64);
    }
    assert_int_equal(P->dropped(s), 44);
    P->send_audio(s, "bad\"frame", 9); /* refused, not queued, not counted */
    assert_int_equal(P->dropped(s), 44);
    P->say(s, "Say goodbye.");
    /* control first, even when queued after the audio */
    expect_type(s, "session.update");
    expect_type(s, "response.create");
    for (unsigned i = 44; i < OPENAI_AUDIO_SLOTS + 44; i++) {
        json_t *j = next_out(s);
        assert_non_null(j);
        assert_string_equal(type_of(j), "input_audio_buffer.append");
        frame(b64, i);
        assert_string_equal(json_string_value(json_object_get(j, "audio")), b64);
        json_decref(j);
    }
    assert_null(next_out(s));
    P->close(s);
}

static void audio_big_frame_is_split(void **state)
{
    (void)state;
    ai_session_t *s = session(0);
    expect_type(s, "session.update");
    char big[OPENAI_FRAME_B64 * 2 + 8 + 1];
    memset(big, 'Q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    P->send_audio(s, big, strlen(big));
    size_t lens[3] = {OPENAI_FRAME_B64, OPENAI_FRAME_B64, 8};
    for (int i = 0; i < 3; i++) {
        json_t *j = next_out(s);
        assert_non_null(j);
        assert_int_equal(json_string_length(json_object_get(j, "audio")), lens[i]);
        json_decref(j);
    }
    assert_null(next_out(s));
    P->close(s);
}

/* ---- server events ---- */

static void ready_and_greeting(void **state)
{
    (void)state;
    ai_session_t *s = session(0);
    expect_type(s, "session.update");
    assert_null(next_out(s)); /* the greeting waits for the session to be configured */
    feed(s, "{\"type\":\"session.created\",\"session\":{}}");
    assert_int_equal(got.ready, 0);
    feed(s, "{\"type\":\"session.updated\",\"session\":{}}");
    assert_int_equal(got.ready, 1);
    json_t *j = next_out(s);
    assert_string_equal(type_of(j), "response.create");
    const char *ins = json_string_value(json_object_get(json_object_get(j, "response"), "instructions"));
    assert_non_null(ins);
    assert_non_null(strstr(ins, "You answer the phone for Acme."));
    assert_non_null(strstr(ins, "Greet the caller by saying: Hello, Acme here!"));
    json_decref(j);
    feed(s, "{\"type\":\"session.updated\",\"session\":{}}");
    assert_int_equal(got.ready, 1);
    assert_null(next_out(s));
    P->close(s);
}

static void audio_deltas(void **state)
{
    (void)state;
    ai_session_t *s = ready_session(0);
    feed(s, "{\"type\":\"response.output_audio.delta\",\"response_id\":\"r\",\"item_id\":\"item_1\",\"output_index\":0,"
            "\"content_index\":0,\"delta\":\"f39/fw==\"}");
    assert_int_equal(got.audio, 1);
    assert_string_equal(got.audio_b64, "f39/fw==");
    assert_string_equal(got.audio_item, "item_1");
    /* the beta name, no item id */
    feed(s, "{\"type\":\"response.audio.delta\",\"delta\":\"AAAA\"}");
    assert_int_equal(got.audio, 2);
    assert_string_equal(got.audio_b64, "AAAA");
    assert_string_equal(got.audio_item, "");
    /* what is not base64 never reaches Twilio's JSON */
    feed(s, "{\"type\":\"response.output_audio.delta\",\"item_id\":\"i\",\"delta\":\"a\\\"b\"}");
    assert_int_equal(got.audio, 2);
    P->close(s);
}

/* The audio path reads deltas without a JSON tree; whatever it does not take goes to the full
 * parse, and both report the same audio. */
static void fast_deltas(void **state)
{
    (void)state;
    openai_delta_t d;
    const char *ga = "{\"type\":\"response.output_audio.delta\",\"event_id\":\"event_1\",\"response_id\":\"resp_1\","
                     "\"item_id\":\"item_9\",\"output_index\":0,\"content_index\":-1.5e+3,\"delta\":\"f39/fw==\"}";
    assert_int_equal(openai_fast_delta(ga, strlen(ga), &d), 1);
    assert_int_equal(d.len, 8);
    assert_memory_equal(d.b64, "f39/fw==", 8);
    assert_string_equal(d.item_id, "item_9");
    const char *spaced = " { \"delta\" : \"AAAA\" , \"type\" : \"response.audio.delta\", \"x\": null, \"y\": true } \n";
    assert_int_equal(openai_fast_delta(spaced, strlen(spaced), &d), 1);
    assert_string_equal(d.item_id, "");
    /* not taken: other events, nesting, escapes, bad numbers, trailing bytes, truncation */
    static const char *const other[] = {
        "{\"type\":\"response.output_audio_transcript.delta\",\"delta\":\"Hi\"}",
        "{\"type\":\"response.output_audio.delta\",\"delta\":\"AAAA\",\"x\":{}}",
        "{\"type\":\"response.output_audio.delta\",\"delta\":\"AAAA\",\"x\":[1]}",
        "{\"type\":\"response.output_audio.delta\",\"item_id\":\"a\\u0041\",\"delta\":\"AAAA\"}",
        "{\"type\":\"response.output_audio.delta\",\"delta\":\"AAAA\",\"n\":01}",
        "{\"type\":\"response.output_audio.delta\",\"delta\":\"AAAA\",\"n\":1.}",
        "{\"type\":\"response.output_audio.delta\",\"delta\":\"AAAA\",\"n\":-}",
        "{\"type\":\"response.output_audio.delta\",\"delta\":\"AAAA\"}x",
        "{\"type\":\"response.output_audio.delta\",\"delta\":\"AAAA\",}",
        "{\"type\":\"response.output_audio.delta\",\"delta\":\"AAAA\"",
        "{\"type\":\"response.output_audio.delta\"}",
        "[\"type\"]",
        "",
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_int_equal(openai_fast_delta(other[i], strlen(other[i]), &d), 0);
    /* the same audio either way: an escaped item id takes the full parse */
    ai_session_t *s = ready_session(0);
    feed(s, ga);
    assert_int_equal(got.audio, 1);
    assert_string_equal(got.audio_b64, "f39/fw==");
    assert_string_equal(got.audio_item, "item_9");
    feed(s, other[3]);
    assert_int_equal(got.audio, 2);
    assert_string_equal(got.audio_b64, "AAAA");
    assert_string_equal(got.audio_item, "aA");
    /* malformed JSON is refused by the full parse too: no audio */
    feed(s, other[4]);
    feed(s, other[7]);
    assert_int_equal(got.audio, 2);
    P->close(s);
}

static void transcripts_and_vad(void **state)
{
    (void)state;
    for (int beta = 0; beta <= 1; beta++) {
        ai_session_t *s = ready_session(beta);
        feed(
            s,
            beta
                ? "{\"type\":\"response.audio_transcript.done\",\"item_id\":\"i\",\"transcript\":\"Hi there\"}"
                : "{\"type\":\"response.output_audio_transcript.done\",\"item_id\":\"i\",\"transcript\":\"Hi there\"}");
        assert_string_equal(got.transcript[AI_ROLE_AGENT], "Hi there");
        feed(s, "{\"type\":\"conversation.item.input_audio_transcription.completed\",\"item_id\":\"u\","
                "\"content_index\":0,\"transcript\":\"I need help\"}");
        assert_string_equal(got.transcript[AI_ROLE_CALLER], "I need help");
        feed(s, "{\"type\":\"input_audio_buffer.speech_started\",\"audio_start_ms\":100,\"item_id\":\"u2\"}");
        assert_int_equal(got.speech_started, 1);
        /* events we do not use, and garbage, change nothing */
        feed(s, "{\"type\":\"rate_limits.updated\",\"rate_limits\":[]}");
        feed(s, "{\"type\":\"response.output_audio_transcript.delta\",\"delta\":\"Hi\"}");
        feed(s, "not json at all");
        feed(s, "{\"no_type\":1}");
        assert_int_equal(got.errors, 0);
        assert_null(next_out(s));
        P->close(s);
    }
}

static void interrupt_cancels_only_in_flight(void **state)
{
    (void)state;
    ai_session_t *s = ready_session(0);
    /* no response in flight: only the truncate */
    P->interrupt(s, "item_1", 640);
    json_t *j = next_out(s);
    assert_string_equal(type_of(j), "conversation.item.truncate");
    assert_string_equal(json_string_value(json_object_get(j, "item_id")), "item_1");
    assert_int_equal(json_integer_value(json_object_get(j, "content_index")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "audio_end_ms")), 640);
    json_decref(j);
    assert_null(next_out(s));
    P->interrupt(s, "", 0); /* nothing played, nothing in flight: nothing to say */
    assert_null(next_out(s));

    feed(s, "{\"type\":\"response.created\",\"response\":{\"id\":\"r1\",\"status\":\"in_progress\"}}");
    assert_int_equal(openai_response_in_flight(s), 1);
    P->interrupt(s, "item_2", 120);
    expect_type(s, "response.cancel"); /* first, so the item stops growing before it is cut */
    expect_type(s, "conversation.item.truncate");
    P->interrupt(s, "item_2", 160); /* the cancel is on its way already */
    expect_type(s, "conversation.item.truncate");
    assert_null(next_out(s));
    feed(s, "{\"type\":\"response.done\",\"response\":{\"id\":\"r1\",\"status\":\"cancelled\"}}");
    assert_int_equal(openai_response_in_flight(s), 0);
    assert_int_equal(got.response_done, 1);
    /* a cancel that crossed the response's end is no error */
    feed(s, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"code\":\"response_cancel_not_active\","
            "\"message\":\"Cancellation failed: no active response found\"}}");
    assert_int_equal(got.errors, 0);
    P->close(s);
}

static void tool_calls_ga(void **state)
{
    (void)state;
    ai_session_t *s = ready_session(0);
    feed(s, "{\"type\":\"response.created\",\"response\":{\"id\":\"r1\"}}");
    feed(s, "{\"type\":\"response.function_call_arguments.done\",\"response_id\":\"r1\",\"item_id\":\"fc1\","
            "\"output_index\":0,\"call_id\":\"call_1\",\"name\":\"transfer_call\",\"arguments\":\"{\\\"target\\\":"
            "\\\"sales\\\"}\"}");
    assert_int_equal(got.tools, 1);
    assert_string_equal(got.tool_id, "call_1");
    assert_string_equal(got.tool_name, "transfer_call");
    assert_string_equal(got.tool_args, "{\"target\":\"sales\"}");
    /* the same call again as a finished item: not a second call */
    feed(s,
         "{\"type\":\"response.output_item.done\",\"response_id\":\"r1\",\"output_index\":0,\"item\":{\"id\":\"fc1\","
         "\"type\":\"function_call\",\"status\":\"completed\",\"call_id\":\"call_1\",\"name\":\"transfer_call\","
         "\"arguments\":\"{\\\"target\\\":\\\"sales\\\"}\"}}");
    assert_int_equal(got.tools, 1);

    /* the result goes at once; the next response waits for the one in flight to end */
    P->tool_result(s, "call_1", "{\"ok\":true}");
    json_t *j = next_out(s);
    assert_string_equal(type_of(j), "conversation.item.create");
    json_t *item = json_object_get(j, "item");
    assert_string_equal(type_of(item), "function_call_output");
    assert_string_equal(json_string_value(json_object_get(item, "call_id")), "call_1");
    assert_string_equal(json_string_value(json_object_get(item, "output")), "{\"ok\":true}");
    json_decref(j);
    assert_null(next_out(s));
    feed(s, "{\"type\":\"response.done\",\"response\":{\"id\":\"r1\",\"status\":\"completed\"}}");
    assert_int_equal(got.response_done, 1);
    j = next_out(s);
    assert_string_equal(type_of(j), "response.create");
    assert_null(json_object_get(j, "response"));
    json_decref(j);
    /* asked for, not yet created: a say() waits too */
    P->say(s, "Tell them the time.");
    assert_null(next_out(s));
    feed(s, "{\"type\":\"response.created\",\"response\":{\"id\":\"r2\"}}");
    assert_null(next_out(s));
    feed(s, "{\"type\":\"response.done\",\"response\":{\"id\":\"r2\",\"status\":\"completed\"}}");
    j = next_out(s);
    assert_string_equal(type_of(j), "response.create");
    const char *ins = json_string_value(json_object_get(json_object_get(j, "response"), "instructions"));
    assert_non_null(strstr(ins, "You answer the phone for Acme."));
    assert_non_null(strstr(ins, "Tell them the time."));
    json_decref(j);
    P->close(s);
}

static void tool_calls_beta(void **state)
{
    (void)state;
    ai_session_t *s = ready_session(1);
    /* the beta event carries no name: the finished item reports the call */
    feed(s, "{\"type\":\"response.function_call_arguments.done\",\"response_id\":\"r1\",\"item_id\":\"fc1\","
            "\"output_index\":0,\"call_id\":\"call_9\",\"arguments\":\"{}\"}");
    assert_int_equal(got.tools, 0);
    feed(s,
         "{\"type\":\"response.output_item.done\",\"response_id\":\"r1\",\"output_index\":0,\"item\":{\"id\":\"fc1\","
         "\"object\":\"realtime.item\",\"type\":\"function_call\",\"status\":\"completed\",\"call_id\":\"call_9\","
         "\"name\":\"end_call\",\"arguments\":\"\"}}");
    assert_int_equal(got.tools, 1);
    assert_string_equal(got.tool_name, "end_call");
    assert_string_equal(got.tool_args, "{}");
    /* a call cut short by an interruption is not made */
    feed(s, "{\"type\":\"response.output_item.done\",\"item\":{\"type\":\"function_call\",\"status\":\"incomplete\","
            "\"call_id\":\"call_10\",\"name\":\"end_call\",\"arguments\":\"{\\\"a\\\":\"}}");
    feed(s, "{\"type\":\"response.function_call_arguments.done\",\"call_id\":\"call_11\",\"name\":\"end_call\","
            "\"arguments\":\"{\\\"a\\\":\"}");
    /* a message item is no tool call */
    feed(s, "{\"type\":\"response.output_item.done\",\"item\":{\"type\":\"message\",\"status\":\"completed\"}}");
    assert_int_equal(got.tools, 1);
    P->close(s);
}

static void errors(void **state)
{
    (void)state;
    /* before the session is configured, any error means it will not be */
    ai_session_t *s = session(0);
    expect_type(s, "session.update");
    assert_int_equal(openai_on_message(s,
                                       "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"code\":"
                                       "\"invalid_value\",\"message\":\"Invalid value: 'x'.\"}}",
                                       strlen("{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                                              "\"code\":\"invalid_value\",\"message\":\"Invalid value: 'x'.\"}}")),
                     -1);
    assert_int_equal(got.fatal, 1);
    assert_non_null(strstr(got.error, "Invalid value: 'x'."));
    /* and after a fatal error the bridge hears nothing more */
    feed(s, "{\"type\":\"session.updated\",\"session\":{}}");
    feed(s, "{\"type\":\"input_audio_buffer.speech_started\"}");
    assert_int_equal(got.ready, 0);
    assert_int_equal(got.speech_started, 0);
    assert_int_equal(got.errors, 1);
    P->send_audio(s, "AAAA", 4);
    assert_null(next_out(s));
    P->close(s);

    /* later, errors are reported and the session goes on */
    s = ready_session(0);
    feed(s,
         "{\"type\":\"error\",\"event_id\":\"e\",\"error\":{\"type\":\"invalid_request_error\",\"code\":"
         "\"conversation_already_has_active_response\",\"message\":\"Conversation already has an active response\"}}");
    assert_int_equal(got.errors, 1);
    assert_int_equal(got.fatal, 0);
    assert_string_equal(got.error, "Conversation already has an active response");
    feed(s, "{\"type\":\"response.done\",\"response\":{\"status\":\"failed\",\"status_details\":{\"type\":\"failed\","
            "\"error\":{\"type\":\"server_error\",\"code\":\"overloaded\"}}}}");
    assert_int_equal(got.errors, 2);
    assert_int_equal(got.fatal, 0);
    assert_string_equal(got.error, "response failed: overloaded");
    assert_int_equal(got.response_done, 1);
    P->close(s);
}

static void fragments(void **state)
{
    (void)state;
    ai_session_t *s = ready_session(0);
    const char *msg = "{\"type\":\"response.output_audio.delta\",\"item_id\":\"item_7\",\"delta\":\"f39/fw==\"}";
    size_t n = strlen(msg);
    assert_int_equal(openai_rx_feed(s, msg, 10, 0), 0);
    assert_int_equal(openai_rx_feed(s, msg + 10, 20, 0), 0);
    assert_int_equal(got.audio, 0);
    assert_int_equal(openai_rx_feed(s, msg + 30, n - 30, 1), 0);
    assert_int_equal(got.audio, 1);
    assert_string_equal(got.audio_item, "item_7");
    /* a whole message in one piece, right after */
    assert_int_equal(openai_rx_feed(s, msg, n, 1), 0);
    assert_int_equal(got.audio, 2);

    /* a big message in pieces: over the cap the session fails */
    char *chunk = malloc(64 * 1024);
    memset(chunk, ' ', 64 * 1024);
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++)
        rc = openai_rx_feed(s, chunk, 64 * 1024, 0);
    assert_int_equal(rc, 0); /* exactly at the cap is allowed */
    assert_int_equal(openai_rx_feed(s, "x", 1, 0), -1);
    assert_int_equal(got.fatal, 1);
    free(chunk);
    P->close(s);
}

static void close_without_connection(void **state)
{
    (void)state;
    ai_session_t *s = session(1);
    P->send_audio(s, "AAAA", 4);
    P->close(s); /* nothing holds it: freed at once (ASan would tell otherwise) */
    openai_session_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(target_urls),
        cmocka_unit_test(session_update_ga),
        cmocka_unit_test(session_update_beta),
        cmocka_unit_test(append_message),
        cmocka_unit_test(audio_ring_drops_oldest),
        cmocka_unit_test(audio_big_frame_is_split),
        cmocka_unit_test(ready_and_greeting),
        cmocka_unit_test(audio_deltas),
        cmocka_unit_test(fast_deltas),
        cmocka_unit_test(transcripts_and_vad),
        cmocka_unit_test(interrupt_cancels_only_in_flight),
        cmocka_unit_test(tool_calls_ga),
        cmocka_unit_test(tool_calls_beta),
        cmocka_unit_test(errors),
        cmocka_unit_test(fragments),
        cmocka_unit_test(close_without_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
