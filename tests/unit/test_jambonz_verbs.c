/*
 * Unit tests for jambonz/verbs.h and jambonz/plan.h: the exact JSON of every verb and plan,
 * and every refusal leaving the caller's array as it was. (argv[1], the vectors folder, is
 * not used here.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jambonz/plan.h"
#include "jambonz/verbs.h"
#include "server/target.h"

static char *dump(const json_t *verbs)
{
    char *s = json_dumps(verbs, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(s);
    return s;
}

/* Checks `verbs` serialises to `want`, then frees it. */
static void expect_json(json_t *verbs, const char *want)
{
    char *got = dump(verbs);
    assert_string_equal(got, want);
    free(got);
    json_decref(verbs);
}

/* An array that already holds a verb, so "unchanged" is tested on a non-empty array. */
static json_t *seeded(void)
{
    json_t *v = json_array();
    assert_non_null(v);
    assert_int_equal(jv_pause(v, 1), 0);
    return v;
}

#define SEEDED "[{\"verb\":\"pause\",\"length\":1}]"

/* The call must fail and leave the seeded array as it was. */
#define REFUSED(call)                                                                                                  \
    do {                                                                                                               \
        json_t *verbs = seeded();                                                                                      \
        assert_int_equal((call), -1);                                                                                  \
        expect_json(verbs, SEEDED);                                                                                    \
    } while (0)

static target_t parse_target(const char *in)
{
    target_t t;
    const char *why = NULL;
    if (target_parse(in, "1", &t, &why) != 0)
        fail_msg("target_parse(%s): %s", in, why);
    return t;
}

/* ---- say, pause, hangup, sip:decline, redirect ---- */

static void test_say(void **state)
{
    json_t *v = json_array();
    assert_int_equal(jv_say(v, "Hello \"there\"\nbye", NULL), 0);
    jv_synth_t synth = {.vendor = "google", .language = "en-US", .voice = "en-US-Wavenet-C"};
    assert_int_equal(jv_say(v, "Hi", &(jv_say_opts_t){.synthesizer = &synth, .loop = 2, .early_media = JV_TRUE}), 0);
    jv_synth_t vendor_only = {.vendor = "elevenlabs", .language = ""};
    assert_int_equal(jv_say(v, "Ok", &(jv_say_opts_t){.synthesizer = &vendor_only, .early_media = JV_FALSE}), 0);
    expect_json(v,
                "[{\"verb\":\"say\",\"text\":\"Hello \\\"there\\\"\\nbye\"},"
                "{\"verb\":\"say\",\"text\":\"Hi\",\"synthesizer\":{\"vendor\":\"google\",\"language\":\"en-US\","
                "\"voice\":\"en-US-Wavenet-C\"},\"loop\":2,\"earlyMedia\":true},"
                "{\"verb\":\"say\",\"text\":\"Ok\",\"synthesizer\":{\"vendor\":\"elevenlabs\"},\"earlyMedia\":false}]");

    jv_synth_t no_vendor = {.language = "en-US"};
    REFUSED(jv_say(verbs, NULL, NULL));
    REFUSED(jv_say(verbs, "", NULL));
    REFUSED(jv_say(verbs, "bad \xff utf-8", NULL));
    REFUSED(jv_say(verbs, "Hi", &(jv_say_opts_t){.synthesizer = &no_vendor}));
    REFUSED(jv_say(verbs, "Hi", &(jv_say_opts_t){.loop = -1}));
    REFUSED(jv_say(verbs, "Hi", &(jv_say_opts_t){.early_media = (jv_bool_t)7}));
}

static void test_pause_hangup_decline_redirect(void **state)
{
    json_t *v = json_array();
    assert_int_equal(jv_pause(v, 3), 0);
    assert_int_equal(jv_hangup(v, NULL, 0), 0);
    jv_header_t h[] = {{"X-Reason", "transfer failed"}, {"X-Session", "S1"}};
    assert_int_equal(jv_hangup(v, h, 2), 0);
    assert_int_equal(jv_sip_decline(v, 486, "Busy Here"), 0);
    assert_int_equal(jv_sip_decline(v, 603, NULL), 0);
    assert_int_equal(jv_redirect(v, "https://sb.example.com/jambonz/action?x=1&y=2"), 0);
    expect_json(v, "[{\"verb\":\"pause\",\"length\":3},{\"verb\":\"hangup\"},"
                   "{\"verb\":\"hangup\",\"headers\":{\"X-Reason\":\"transfer failed\",\"X-Session\":\"S1\"}},"
                   "{\"verb\":\"sip:decline\",\"status\":486,\"reason\":\"Busy Here\"},"
                   "{\"verb\":\"sip:decline\",\"status\":603},"
                   "{\"verb\":\"redirect\",\"actionHook\":\"https://sb.example.com/jambonz/action?x=1&y=2\"}]");

    jv_header_t dup[] = {{"X-A", "1"}, {"x-a", "2"}};
    jv_header_t bad_name[] = {{"X Bad", "1"}};
    jv_header_t empty_name[] = {{"", "1"}};
    jv_header_t null_name[] = {{"X-A", "1"}, {NULL, "1"}};
    jv_header_t crlf[] = {{"X-A", "1\r\nVia: evil"}};
    jv_header_t null_value[] = {{"X-A", NULL}};
    jv_header_t many[JV_MAX_HEADERS + 1];
    char names[JV_MAX_HEADERS + 1][16];
    for (int i = 0; i <= JV_MAX_HEADERS; i++) {
        snprintf(names[i], sizeof(names[i]), "X-%d", i);
        many[i] = (jv_header_t){names[i], "v"};
    }
    v = json_array();
    assert_int_equal(jv_hangup(v, many, JV_MAX_HEADERS), 0);
    json_decref(v);

    REFUSED(jv_pause(verbs, 0));
    REFUSED(jv_pause(verbs, -2));
    REFUSED(jv_hangup(verbs, dup, 2));
    REFUSED(jv_hangup(verbs, bad_name, 1));
    REFUSED(jv_hangup(verbs, empty_name, 1));
    REFUSED(jv_hangup(verbs, null_name, 2));
    REFUSED(jv_hangup(verbs, crlf, 1));
    REFUSED(jv_hangup(verbs, null_value, 1));
    REFUSED(jv_hangup(verbs, NULL, 1));
    REFUSED(jv_hangup(verbs, many, JV_MAX_HEADERS + 1));
    REFUSED(jv_sip_decline(verbs, 399, NULL));
    REFUSED(jv_sip_decline(verbs, 700, NULL));
    REFUSED(jv_sip_decline(verbs, 486, "Busy\r\nX: y"));
    REFUSED(jv_redirect(verbs, NULL));
    REFUSED(jv_redirect(verbs, ""));
    REFUSED(jv_redirect(verbs, "https://x/\n"));
}

/* ---- listen ---- */

static void test_listen(void **state)
{
    json_t *meta = json_pack("{s:s,s:b,s:{s:i}}", "session_id", "S1", "voicemail", 1, "nested", "n", 1);
    assert_non_null(meta);
    jv_bidi_t bidi = {.enabled = JV_TRUE, .streaming = JV_TRUE, .sample_rate = 16000};
    jv_auth_t auth = {"S1", "secret"};
    jv_listen_opts_t o = {
        .action_hook = "https://sb/a",
        .mix_type = "stereo",
        .sample_rate = 16000,
        .metadata = meta,
        .bidirectional_audio = &bidi,
        .pass_dtmf = JV_TRUE,
        .max_length = 120,
        .play_beep = JV_FALSE,
        .finish_on_key = "#",
        .timeout = 5,
        .ws_auth = &auth,
    };
    json_t *v = json_array();
    assert_int_equal(jv_listen(v, "wss://sb/jambonz/listen", &o), 0);
    assert_int_equal(jv_listen(v, "wss://sb/l", NULL), 0);
    /* the metadata was copied: changing it now changes nothing written */
    json_object_set_new(meta, "session_id", json_string("changed"));
    json_decref(meta);
    expect_json(v, "[{\"verb\":\"listen\",\"url\":\"wss://sb/jambonz/listen\",\"actionHook\":\"https://sb/a\","
                   "\"mixType\":\"stereo\",\"sampleRate\":16000,"
                   "\"metadata\":{\"session_id\":\"S1\",\"voicemail\":true,\"nested\":{\"n\":1}},"
                   "\"bidirectionalAudio\":{\"enabled\":true,\"streaming\":true,\"sampleRate\":16000},"
                   "\"passDtmf\":true,\"maxLength\":120,\"playBeep\":false,\"finishOnKey\":\"#\",\"timeout\":5,"
                   "\"wsAuth\":{\"username\":\"S1\",\"password\":\"secret\"}},"
                   "{\"verb\":\"listen\",\"url\":\"wss://sb/l\"}]");

    json_t *arr = json_array();
    jv_bidi_t bad_rate = {.enabled = JV_TRUE, .sample_rate = 44100};
    jv_auth_t half = {"S1", NULL};
    REFUSED(jv_listen(verbs, NULL, NULL));
    REFUSED(jv_listen(verbs, "", NULL));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.mix_type = "quad"}));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.sample_rate = 12000}));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.sample_rate = 56000}));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.sample_rate = -8000}));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.bidirectional_audio = &bad_rate}));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.metadata = arr}));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.finish_on_key = "##"}));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.finish_on_key = "a"}));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.ws_auth = &half}));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.max_length = -1}));
    REFUSED(jv_listen(verbs, "wss://sb/l", &(jv_listen_opts_t){.pass_dtmf = (jv_bool_t)3}));
    json_decref(arr);
}

/* ---- dial ---- */

static void test_dial(void **state)
{
    jv_auth_t auth = {"pbxuser", "pbxpass"};
    jv_target_t targets[] = {
        {.type = JV_TARGET_PHONE, .number = "+14155550100", .trunk = "didww"},
        {.type = JV_TARGET_SIP, .sip_uri = "sip:2000@pbx.example.com;transport=tcp", .auth = &auth},
        {.type = JV_TARGET_USER, .name = "alice@acme.sip.example.com"},
        {.type = JV_TARGET_PHONE, .number = "+442071838750"},
        {.type = JV_TARGET_SIP, .sip_uri = "sip:2001@pbx.example.com"},
    };
    jv_dial_opts_t o = {
        .caller_id = "+18005550199",
        .caller_name = "Acme Support",
        .answer_on_bridge = JV_TRUE,
        .timeout = 25,
        .time_limit = 3600,
        .action_hook = "https://sb/jambonz/action?step=dial&attempt=0",
        .dial_music = "https://sb/ring.wav",
    };
    json_t *v = json_array();
    assert_int_equal(jv_dial(v, targets, 5, &o), 0);
    assert_int_equal(jv_dial(v, &targets[3], 1, NULL), 0);
    expect_json(v, "[{\"verb\":\"dial\",\"target\":["
                   "{\"type\":\"phone\",\"number\":\"+14155550100\",\"trunk\":\"didww\"},"
                   "{\"type\":\"sip\",\"sipUri\":\"sip:2000@pbx.example.com;transport=tcp\","
                   "\"auth\":{\"username\":\"pbxuser\",\"password\":\"pbxpass\"}},"
                   "{\"type\":\"user\",\"name\":\"alice@acme.sip.example.com\"},"
                   "{\"type\":\"phone\",\"number\":\"+442071838750\"},"
                   "{\"type\":\"sip\",\"sipUri\":\"sip:2001@pbx.example.com\"}],"
                   "\"callerId\":\"+18005550199\",\"callerName\":\"Acme Support\",\"answerOnBridge\":true,"
                   "\"timeout\":25,\"timeLimit\":3600,\"actionHook\":\"https://sb/jambonz/action?step=dial&attempt=0\","
                   "\"dialMusic\":\"https://sb/ring.wav\"},"
                   "{\"verb\":\"dial\",\"target\":[{\"type\":\"phone\",\"number\":\"+442071838750\"}]}]");

    jv_target_t ten[JV_MAX_TARGETS + 1];
    for (int i = 0; i <= JV_MAX_TARGETS; i++)
        ten[i] = (jv_target_t){.type = JV_TARGET_PHONE, .number = "+14155550100"};
    v = json_array();
    assert_int_equal(jv_dial(v, ten, JV_MAX_TARGETS, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(json_array_get(v, 0), "target")), JV_MAX_TARGETS);
    json_decref(v);

    jv_auth_t half = {"u", ""}, other_half = {NULL, "p"};
    jv_target_t sip_no_uri = {.type = JV_TARGET_SIP, .number = "+14155550100"};
    jv_target_t sip_empty = {.type = JV_TARGET_SIP, .sip_uri = ""};
    jv_target_t phone_no_number = {.type = JV_TARGET_PHONE, .trunk = "didww"};
    jv_target_t user_no_name = {.type = JV_TARGET_USER};
    jv_target_t sip_trunk = {.type = JV_TARGET_SIP, .sip_uri = "sip:a@b", .trunk = "didww"};
    jv_target_t phone_auth = {.type = JV_TARGET_PHONE, .number = "+1415", .auth = &auth};
    jv_target_t user_number = {.type = JV_TARGET_USER, .name = "a@b", .number = "+1415"};
    jv_target_t sip_half = {.type = JV_TARGET_SIP, .sip_uri = "sip:a@b", .auth = &half};
    jv_target_t sip_other_half = {.type = JV_TARGET_SIP, .sip_uri = "sip:a@b", .auth = &other_half};
    jv_target_t no_type = {.number = "+1415"};
    jv_target_t bad_type = {.type = (jv_target_type_t)9, .number = "+1415"};
    jv_target_t crlf = {.type = JV_TARGET_SIP, .sip_uri = "sip:a@b\r\nX: y"};
    jv_target_t mixed[] = {targets[0], sip_no_uri};
    REFUSED(jv_dial(verbs, targets, 0, NULL));
    REFUSED(jv_dial(verbs, NULL, 1, NULL));
    REFUSED(jv_dial(verbs, ten, JV_MAX_TARGETS + 1, NULL));
    REFUSED(jv_dial(verbs, &sip_no_uri, 1, NULL));
    REFUSED(jv_dial(verbs, &sip_empty, 1, NULL));
    REFUSED(jv_dial(verbs, &phone_no_number, 1, NULL));
    REFUSED(jv_dial(verbs, &user_no_name, 1, NULL));
    REFUSED(jv_dial(verbs, &sip_trunk, 1, NULL));
    REFUSED(jv_dial(verbs, &phone_auth, 1, NULL));
    REFUSED(jv_dial(verbs, &user_number, 1, NULL));
    REFUSED(jv_dial(verbs, &sip_half, 1, NULL));
    REFUSED(jv_dial(verbs, &sip_other_half, 1, NULL));
    REFUSED(jv_dial(verbs, &no_type, 1, NULL));
    REFUSED(jv_dial(verbs, &bad_type, 1, NULL));
    REFUSED(jv_dial(verbs, &crlf, 1, NULL));
    REFUSED(jv_dial(verbs, mixed, 2, NULL)); /* the second target is bad: nothing is written */
    REFUSED(jv_dial(verbs, targets, 1, &(jv_dial_opts_t){.caller_id = "+1\n"}));
    REFUSED(jv_dial(verbs, targets, 1, &(jv_dial_opts_t){.timeout = -1}));
    REFUSED(jv_dial(verbs, targets, 1, &(jv_dial_opts_t){.answer_on_bridge = (jv_bool_t)-1}));
}

/* ---- sip:refer, config ---- */

static void test_refer_config(void **state)
{
    json_t *v = json_array();
    assert_int_equal(jv_sip_refer(v, "sip:2000@pbx.example.com",
                                  &(jv_refer_opts_t){.referred_by = "sip:+18005550199@sb", .action_hook = "/refer"}),
                     0);
    assert_int_equal(jv_sip_refer(v, "+14155550100", NULL), 0);
    jv_synth_t synth = {.vendor = "microsoft", .voice = "en-US-AvaNeural"};
    assert_int_equal(jv_config(v, &(jv_config_opts_t){.synthesizer = &synth, .notify_events = JV_TRUE}), 0);
    assert_int_equal(jv_config(v, &(jv_config_opts_t){.notify_events = JV_FALSE}), 0);
    expect_json(v, "[{\"verb\":\"sip:refer\",\"referTo\":\"sip:2000@pbx.example.com\","
                   "\"referredBy\":\"sip:+18005550199@sb\",\"actionHook\":\"/refer\"},"
                   "{\"verb\":\"sip:refer\",\"referTo\":\"+14155550100\"},"
                   "{\"verb\":\"config\",\"synthesizer\":{\"vendor\":\"microsoft\",\"voice\":\"en-US-AvaNeural\"},"
                   "\"notifyEvents\":true},"
                   "{\"verb\":\"config\",\"notifyEvents\":false}]");

    jv_synth_t no_vendor = {.voice = "x"};
    REFUSED(jv_sip_refer(verbs, NULL, NULL));
    REFUSED(jv_sip_refer(verbs, "", NULL));
    REFUSED(jv_sip_refer(verbs, "sip:a@b\r\nX: y", NULL));
    REFUSED(jv_sip_refer(verbs, "sip:a@b", &(jv_refer_opts_t){.referred_by = "\x01"}));
    REFUSED(jv_config(verbs, NULL));
    REFUSED(jv_config(verbs, &(jv_config_opts_t){0}));
    REFUSED(jv_config(verbs, &(jv_config_opts_t){.synthesizer = &no_vendor}));
}

/* Every writer refuses what is not an array. */
static void test_not_an_array(void **state)
{
    json_t *o = json_object();
    jv_target_t t = {.type = JV_TARGET_PHONE, .number = "+1"};
    assert_int_equal(jv_say(o, "x", NULL), -1);
    assert_int_equal(jv_pause(o, 1), -1);
    assert_int_equal(jv_hangup(o, NULL, 0), -1);
    assert_int_equal(jv_sip_decline(o, 486, NULL), -1);
    assert_int_equal(jv_redirect(o, "/x"), -1);
    assert_int_equal(jv_listen(o, "wss://x", NULL), -1);
    assert_int_equal(jv_dial(o, &t, 1, NULL), -1);
    assert_int_equal(jv_sip_refer(o, "sip:a@b", NULL), -1);
    assert_int_equal(jv_config(o, &(jv_config_opts_t){.notify_events = JV_TRUE}), -1);
    assert_int_equal(jv_say(NULL, "x", NULL), -1);
    assert_int_equal(jplan_goodbye(o, "bye"), -1);
    assert_int_equal(jplan_decline_busy(o), -1);
    assert_int_equal(jplan_goodbye(NULL, "bye"), -1);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
}

/* ---- plans ---- */

static void test_plan_ai_listen(void **state)
{
    jplan_listen_t p = {
        .greeting = "Hello, how can I help?",
        .url = "wss://sb.example.com/jambonz/listen",
        .action_hook = "https://sb.example.com/jambonz/action?session=S1&step=listen",
        .sample_rate = 16000,
        .session_id = "S1",
        .tenant_id = "7",
        .agent_type = "sales",
        .ws_username = "S1",
        .ws_password = "pw",
    };
    json_t *v = json_array();
    assert_int_equal(jplan_ai_listen(v, &p), 0);
    expect_json(v, "[{\"verb\":\"say\",\"text\":\"Hello, how can I help?\"},"
                   "{\"verb\":\"listen\",\"url\":\"wss://sb.example.com/jambonz/listen\","
                   "\"actionHook\":\"https://sb.example.com/jambonz/action?session=S1&step=listen\","
                   "\"mixType\":\"mono\",\"sampleRate\":16000,"
                   "\"metadata\":{\"session_id\":\"S1\",\"tenant_id\":\"7\",\"agent_type\":\"sales\"},"
                   "\"bidirectionalAudio\":{\"enabled\":true,\"streaming\":true,\"sampleRate\":16000},"
                   "\"passDtmf\":true,\"wsAuth\":{\"username\":\"S1\",\"password\":\"pw\"}}]");

    jplan_listen_t bare = {.url = "wss://sb/l",
                           .action_hook = "https://sb/a",
                           .sample_rate = 8000,
                           .session_id = "S2",
                           .tenant_id = "12",
                           .greeting = "",
                           .agent_type = ""};
    v = json_array();
    assert_int_equal(jplan_ai_listen(v, &bare), 0);
    expect_json(v, "[{\"verb\":\"listen\",\"url\":\"wss://sb/l\",\"actionHook\":\"https://sb/a\","
                   "\"mixType\":\"mono\",\"sampleRate\":8000,\"metadata\":{\"session_id\":\"S2\",\"tenant_id\":\"12\"},"
                   "\"bidirectionalAudio\":{\"enabled\":true,\"streaming\":true,\"sampleRate\":8000},"
                   "\"passDtmf\":true}]");

    jplan_listen_t q = p;
    q.session_id = NULL;
    REFUSED(jplan_ai_listen(verbs, &q));
    q = p, q.tenant_id = "";
    REFUSED(jplan_ai_listen(verbs, &q));
    q = p, q.ws_password = NULL;
    REFUSED(jplan_ai_listen(verbs, &q));
    q = p, q.sample_rate = 0;
    REFUSED(jplan_ai_listen(verbs, &q));
    q = p, q.sample_rate = 11025;
    REFUSED(jplan_ai_listen(verbs, &q));
    q = p, q.url = NULL;
    REFUSED(jplan_ai_listen(verbs, &q)); /* the greeting was written first: it must go too */
    q = p, q.agent_type = "bad \xc3";
    REFUSED(jplan_ai_listen(verbs, &q));
}

static void test_plan_transfer(void **state)
{
    target_t num = parse_target("+14155550100"), sip = parse_target("sip:2000@pbx.example.com;transport=tcp");
    target_t dialstr = parse_target("PJSIP/2000");
    jplan_transfer_t p = {
        .notice = "Transferring you now.",
        .target = &num,
        .trunk = "didww",
        .sip_username = "u", /* ignored for a number */
        .sip_password = "p",
        .caller_id = "+18005550199",
        .timeout_s = 30,
        .answer_on_bridge = 1,
        .action_hook = "https://sb/jambonz/action?session=S1&step=dial&attempt=0",
    };
    json_t *v = json_array();
    assert_int_equal(jplan_transfer(v, &p), 0);
    expect_json(v, "[{\"verb\":\"say\",\"text\":\"Transferring you now.\"},"
                   "{\"verb\":\"dial\",\"target\":[{\"type\":\"phone\",\"number\":\"+14155550100\","
                   "\"trunk\":\"didww\"}],\"callerId\":\"+18005550199\",\"answerOnBridge\":true,\"timeout\":30,"
                   "\"actionHook\":\"https://sb/jambonz/action?session=S1&step=dial&attempt=0\"}]");

    /* SIP with auth; the trunk is ignored; no notice, no caller id, after answering */
    jplan_transfer_t s = {.target = &sip,
                          .trunk = "didww",
                          .sip_username = "u",
                          .sip_password = "p",
                          .timeout_s = 20,
                          .action_hook = "/a1"};
    v = json_array();
    assert_int_equal(jplan_transfer(v, &s), 0);
    expect_json(v, "[{\"verb\":\"dial\",\"target\":[{\"type\":\"sip\",\"sipUri\":\"sip:2000@pbx.example.com;"
                   "transport=tcp\",\"auth\":{\"username\":\"u\",\"password\":\"p\"}}],\"timeout\":20,"
                   "\"actionHook\":\"/a1\"}]");

    jplan_transfer_t u = {.user = "alice@acme.sip.example.com", .trunk = "didww", .timeout_s = 15};
    v = json_array();
    assert_int_equal(jplan_transfer(v, &u), 0);
    expect_json(v, "[{\"verb\":\"dial\",\"target\":[{\"type\":\"user\",\"name\":\"alice@acme.sip.example.com\"}],"
                   "\"timeout\":15}]");

    jplan_transfer_t q = p;
    q.target = &dialstr; /* an Asterisk dial string: only Asterisk dials it */
    REFUSED(jplan_transfer(verbs, &q));
    q = p, q.user = "alice@x";
    REFUSED(jplan_transfer(verbs, &q));
    q = p, q.target = NULL;
    REFUSED(jplan_transfer(verbs, &q));
    q = s, q.sip_password = NULL;
    REFUSED(jplan_transfer(verbs, &q));
    q = p, q.timeout_s = -5;
    REFUSED(jplan_transfer(verbs, &q));
    q = p, q.caller_id = "+1\r\n";
    REFUSED(jplan_transfer(verbs, &q)); /* after the notice: both go */
}

static void test_plan_refer(void **state)
{
    target_t num = parse_target("+14155550100"), sip = parse_target("sip:2000@pbx.example.com");
    target_t dialstr = parse_target("Local/100@from-internal");
    json_t *v = json_array();
    assert_int_equal(jplan_refer(v, &(jplan_refer_t){.notice = "One moment.",
                                                     .target = &sip,
                                                     .referred_by = "sip:sb@example.com",
                                                     .action_hook = "/r"}),
                     0);
    assert_int_equal(jplan_refer(v, &(jplan_refer_t){.target = &num}), 0);
    expect_json(v, "[{\"verb\":\"say\",\"text\":\"One moment.\"},{\"verb\":\"sip:refer\","
                   "\"referTo\":\"sip:2000@pbx.example.com\",\"referredBy\":\"sip:sb@example.com\","
                   "\"actionHook\":\"/r\"},{\"verb\":\"sip:refer\",\"referTo\":\"+14155550100\"}]");
    REFUSED(jplan_refer(verbs, &(jplan_refer_t){.target = &dialstr}));
    REFUSED(jplan_refer(verbs, &(jplan_refer_t){.notice = "x"}));
    REFUSED(jplan_refer(verbs, &(jplan_refer_t){.notice = "x", .target = &sip, .referred_by = "\n"}));
}

static void test_plan_voicemail_goodbye_decline(void **state)
{
    jplan_voicemail_t p = {
        .prompt = "Please leave a message after the beep.",
        .url = "wss://sb/jambonz/listen",
        .action_hook = "https://sb/jambonz/action?session=S1&step=voicemail&attempt=2",
        .session_id = "S1",
        .max_length_s = 120,
    };
    json_t *v = json_array();
    assert_int_equal(jplan_voicemail(v, &p), 0);
    assert_int_equal(jplan_goodbye(v, "Goodbye."), 0);
    assert_int_equal(jplan_goodbye(v, NULL), 0);
    assert_int_equal(jplan_decline_busy(v), 0);
    expect_json(v, "[{\"verb\":\"say\",\"text\":\"Please leave a message after the beep.\"},"
                   "{\"verb\":\"listen\",\"url\":\"wss://sb/jambonz/listen\","
                   "\"actionHook\":\"https://sb/jambonz/action?session=S1&step=voicemail&attempt=2\","
                   "\"mixType\":\"mono\",\"sampleRate\":8000,\"metadata\":{\"session_id\":\"S1\",\"voicemail\":true},"
                   "\"maxLength\":120,\"playBeep\":true,\"finishOnKey\":\"#\"},"
                   "{\"verb\":\"say\",\"text\":\"Goodbye.\"},{\"verb\":\"hangup\"},{\"verb\":\"hangup\"},"
                   "{\"verb\":\"sip:decline\",\"status\":486,\"reason\":\"Busy Here\"}]");

    jplan_voicemail_t a = p;
    a.ws_username = "S1", a.ws_password = "pw";
    v = json_array();
    assert_int_equal(jplan_voicemail(v, &a), 0);
    char *s = dump(v);
    assert_non_null(strstr(s, "\"finishOnKey\":\"#\",\"wsAuth\":{\"username\":\"S1\",\"password\":\"pw\"}}]"));
    free(s);
    json_decref(v);

    jplan_voicemail_t q = p;
    q.prompt = NULL;
    REFUSED(jplan_voicemail(verbs, &q));
    q = p, q.session_id = "";
    REFUSED(jplan_voicemail(verbs, &q));
    q = p, q.max_length_s = 0;
    REFUSED(jplan_voicemail(verbs, &q));
    q = p, q.url = NULL;
    REFUSED(jplan_voicemail(verbs, &q));
    q = a, q.ws_username = NULL;
    REFUSED(jplan_voicemail(verbs, &q));
    REFUSED(jplan_goodbye(verbs, "bad \xff"));
}

int main(int argc, char **argv)
{
    (void)argc, (void)argv;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_say),
        cmocka_unit_test(test_pause_hangup_decline_redirect),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_dial),
        cmocka_unit_test(test_refer_config),
        cmocka_unit_test(test_not_an_array),
        cmocka_unit_test(test_plan_ai_listen),
        cmocka_unit_test(test_plan_transfer),
        cmocka_unit_test(test_plan_refer),
        cmocka_unit_test(test_plan_voicemail_goodbye_decline),
    };
    return cmocka_run_group_tests_name("jambonz_verbs", tests, NULL, NULL);
}
