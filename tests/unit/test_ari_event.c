/*
 * Unit tests for asterisk/ari_event: events shaped as Asterisk sends them (the models of
 * rest-api/api-docs/events.json, channels.json, bridges.json, playbacks.json), the
 * externalMedia reply in both its shapes, malformed input, limits and cause outcomes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asterisk/ari_event.h"

/* A Channel as ast_channel_snapshot_to_json() renders it. */
#define CHAN(id, name, state)                                                                                          \
    "{\"id\":\"" id "\",\"name\":\"" name "\",\"state\":\"" state "\",\"protocol_id\":\"a84d@10.0.0.9\","              \
    "\"caller\":{\"name\":\"Alice\",\"number\":\"+14155550100\"},\"connected\":{\"name\":\"\",\"number\":\"\"},"       \
    "\"accountcode\":\"\",\"dialplan\":{\"context\":\"from-didww\",\"exten\":\"+13654001512\",\"priority\":1,"         \
    "\"app_name\":\"Stasis\",\"app_data\":\"switchboard,tenant=42\"},\"creationtime\":\"2024-05-01T10:00:00.100+"      \
    "0000\","                                                                                                          \
    "\"language\":\"en\"}"
#define CALLER CHAN("1714557600.42", "PJSIP/didww-0000002a", "Ring")
#define HEAD(type)                                                                                                     \
    "{\"type\":\"" type "\",\"timestamp\":\"2024-05-01T10:00:01.250+0000\",\"asterisk_id\":\"52:54:00:12:34:56\","
#define APP "\"application\":\"switchboard\"}"
#define BRIDGE                                                                                                         \
    "{\"id\":\"b7c1\",\"technology\":\"simple_bridge\",\"bridge_type\":\"mixing\",\"bridge_class\":\"stasis\","        \
    "\"creator\":\"Stasis\",\"name\":\"\",\"channels\":[\"1714557600.42\"],\"creationtime\":\"2024-05-01T10:00:01."    \
    "000+0000\","                                                                                                      \
    "\"video_mode\":\"talker\"}"
#define PLAYBACK                                                                                                       \
    "{\"id\":\"pb-9\",\"media_uri\":\"sound:sorry\",\"target_uri\":\"channel:1714557600.42\",\"language\":\"en\","     \
    "\"state\":\"done\"}"

static ari_event_t ev;

static void parse_ok(const char *json, ari_event_type_t type)
{
    int err = ari_event_parse(json, strlen(json), &ev);
    if (err != ARI_EVENT_OK)
        fail_msg("%s: %s (%s)", json, ari_event_strerror(err), ev.error);
    assert_int_equal(ev.type, type);
}

/* Checks the error code and that the message names `part`. */
static void parse_bad(const char *json, size_t len, int want, const char *part)
{
    int err = ari_event_parse(json, len, &ev);
    if (err != want)
        fail_msg("%.200s: got %d (%s), wanted %d", json, err, ev.error, want);
    if (strstr(ev.error, part) == NULL)
        fail_msg("message \"%s\" does not mention \"%s\"", ev.error, part);
    assert_int_equal(ev.type, ARI_EVENT_OTHER);
    assert_int_equal(ev.has_channel, 0);
    assert_string_equal(ev.channel.id, "");
}

static void assert_caller(const ari_channel_t *c)
{
    assert_string_equal(c->id, "1714557600.42");
    assert_string_equal(c->name, "PJSIP/didww-0000002a");
    assert_string_equal(c->state, "Ring");
    assert_string_equal(c->caller_number, "+14155550100");
    assert_string_equal(c->caller_name, "Alice");
    assert_string_equal(c->exten, "+13654001512");
    assert_string_equal(c->context, "from-didww");
    assert_string_equal(c->rtp_address, "");
    assert_int_equal(c->rtp_port, 0);
}

static void test_stasis_start(void **state)
{
    parse_ok(HEAD("StasisStart") "\"args\":[\"tenant=42\",\"inbound\",\"tenantx=1\"],\"channel\":" CALLER "," APP,
             ARI_EVENT_STASIS_START);
    assert_string_equal(ev.type_name, "StasisStart");
    assert_string_equal(ev.application, "switchboard");
    assert_int_equal(ev.has_channel, 1);
    assert_caller(&ev.channel);
    assert_int_equal(ev.nargs, 3);
    assert_string_equal(ev.args[1], "inbound");
    assert_string_equal(ari_event_arg(&ev, "tenant"), "42");
    assert_string_equal(ari_event_arg(&ev, "tenantx"), "1");
    assert_null(ari_event_arg(&ev, "tenan"));
    assert_null(ari_event_arg(&ev, "inbound"));
    assert_int_equal(ev.cause, -1);

    /* the ExternalMedia channel's own StasisStart: data as its one argument, vars reported */
    parse_ok(
        HEAD("StasisStart") "\"args\":[\"call=7\"],\"channel\":{\"id\":\"em-7\",\"name\":\"UnicastRTP/10.0.0.5:20000-"
                            "0x7f1c\",\"state\":\"Down\",\"caller\":{\"name\":\"\",\"number\":\"\"},\"channelvars\":{"
                            "\"UNICASTRTP_LOCAL_ADDRESS\":\"10.0.0.2\",\"UNICASTRTP_LOCAL_PORT\":\"17442\",\"X\":[1]}},"
                            "\"replace_channel\":" CALLER "," APP,
        ARI_EVENT_STASIS_START);
    assert_string_equal(ev.channel.id, "em-7");
    assert_string_equal(ev.channel.rtp_address, "10.0.0.2");
    assert_int_equal(ev.channel.rtp_port, 17442);
    assert_string_equal(ev.channel.exten, ""); /* no dialplan: optional */
    assert_string_equal(ari_event_arg(&ev, "call"), "7");

    parse_ok(HEAD("StasisStart") "\"args\":[],\"channel\":" CALLER "," APP, ARI_EVENT_STASIS_START);
    assert_int_equal(ev.nargs, 0);
    assert_null(ari_event_arg(&ev, "tenant"));
}

static void test_channel_events(void **state)
{
    parse_ok(HEAD("StasisEnd") "\"channel\":" CALLER "," APP, ARI_EVENT_STASIS_END);
    assert_caller(&ev.channel);

    parse_ok(HEAD("ChannelStateChange") "\"channel\":" CHAN("1714557600.42", "PJSIP/didww-0000002a", "Up") "," APP,
             ARI_EVENT_CHANNEL_STATE_CHANGE);
    assert_string_equal(ev.channel.state, "Up");

    parse_ok(HEAD("ChannelDestroyed") "\"cause\":17,\"cause_txt\":\"User busy\",\"tech_cause\":486,\"channel\":" CALLER
                                      "," APP,
             ARI_EVENT_CHANNEL_DESTROYED);
    assert_int_equal(ev.cause, 17);
    assert_int_equal(ev.tech_cause, 486);
    assert_string_equal(ev.cause_txt, "User busy");
    assert_caller(&ev.channel);
    assert_string_equal(ari_cause_outcome(ev.cause), "busy");

    parse_ok(HEAD("ChannelHangupRequest") "\"cause\":16,\"soft\":false,\"channel\":" CALLER "," APP,
             ARI_EVENT_CHANNEL_HANGUP_REQUEST);
    assert_int_equal(ev.cause, 16);
    assert_int_equal(ev.tech_cause, 0);
    parse_ok(HEAD("ChannelHangupRequest") "\"soft\":true,\"channel\":" CALLER "," APP,
             ARI_EVENT_CHANNEL_HANGUP_REQUEST);
    assert_int_equal(ev.cause, -1); /* optional */

    parse_ok(HEAD("ChannelDtmfReceived") "\"digit\":\"#\",\"duration_ms\":120,\"channel\":" CALLER "," APP,
             ARI_EVENT_CHANNEL_DTMF_RECEIVED);
    assert_int_equal(ev.digit, '#');
    assert_int_equal(ev.duration_ms, 120);
    assert_caller(&ev.channel);
}

static void test_dial(void **state)
{
    /* an originated transfer leg: no caller, the peer is our channel */
    parse_ok(HEAD("Dial") "\"dialstatus\":\"\",\"dialstring\":\"+13654001512@didww\",\"forward\":\"\",\"peer\":" CHAN(
                 "tr-1", "PJSIP/didww-0000002b", "Down") "," APP,
             ARI_EVENT_DIAL);
    assert_string_equal(ev.dialstatus, "");
    assert_string_equal(ev.peer_id, "tr-1");
    assert_string_equal(ev.channel.id, "tr-1");
    assert_int_equal(ev.has_channel, 1);
    parse_ok(HEAD("Dial") "\"caller\":" CALLER
                          ",\"dialstatus\":\"BUSY\",\"peer\":" CHAN("tr-1", "PJSIP/didww-0000002b", "Busy") "," APP,
             ARI_EVENT_DIAL);
    assert_string_equal(ev.dialstatus, "BUSY");
    assert_string_equal(ev.channel.state, "Busy");
}

static void test_bridge_playback(void **state)
{
    parse_ok(HEAD("ChannelEnteredBridge") "\"bridge\":" BRIDGE ",\"channel\":" CALLER "," APP,
             ARI_EVENT_CHANNEL_ENTERED_BRIDGE);
    assert_string_equal(ev.bridge_id, "b7c1");
    assert_caller(&ev.channel);
    parse_ok(HEAD("ChannelEnteredBridge") "\"bridge\":" BRIDGE "," APP, ARI_EVENT_CHANNEL_ENTERED_BRIDGE);
    assert_int_equal(ev.has_channel, 0); /* optional here */
    parse_ok(HEAD("ChannelLeftBridge") "\"bridge\":" BRIDGE ",\"channel\":" CALLER "," APP,
             ARI_EVENT_CHANNEL_LEFT_BRIDGE);
    assert_string_equal(ev.bridge_id, "b7c1");
    assert_int_equal(ev.has_channel, 1);
    parse_ok(HEAD("BridgeDestroyed") "\"bridge\":" BRIDGE "," APP, ARI_EVENT_BRIDGE_DESTROYED);
    assert_string_equal(ev.bridge_id, "b7c1");
    assert_int_equal(ev.has_channel, 0);
    parse_ok(HEAD("PlaybackStarted") "\"playback\":" PLAYBACK "," APP, ARI_EVENT_PLAYBACK_STARTED);
    assert_string_equal(ev.playback_id, "pb-9");
    parse_ok(HEAD("PlaybackFinished") "\"playback\":" PLAYBACK "," APP, ARI_EVENT_PLAYBACK_FINISHED);
    assert_string_equal(ev.playback_id, "pb-9");
}

static void test_other(void **state)
{
    parse_ok(HEAD("ApplicationRegistered") APP, ARI_EVENT_OTHER);
    assert_string_equal(ev.type_name, "ApplicationRegistered");
    assert_string_equal(ev.application, ""); /* nothing else is read */
    /* unknown types are not validated further, whatever they hold */
    parse_ok("{\"type\":\"ChannelVarset\",\"channel\":42,\"variable\":[]}", ARI_EVENT_OTHER);
    parse_ok("{\"type\":\"stasisstart\"}", ARI_EVENT_OTHER); /* case matters */
    for (int t = ARI_EVENT_OTHER; t <= ARI_EVENT_PLAYBACK_FINISHED; t++) {
        char json[128];
        snprintf(json, sizeof json, "{\"type\":\"%s\"}", ari_event_type_str((ari_event_type_t)t));
        if (t != ARI_EVENT_OTHER)
            parse_bad(json, strlen(json), ARI_EVENT_EMISSING, "application");
    }
    assert_string_equal(ari_event_type_str((ari_event_type_t)999), "other");
}

static void test_malformed(void **state)
{
    parse_bad("", 0, ARI_EVENT_EJSON, "not JSON");
    parse_bad("{\"type\":", 8, ARI_EVENT_EJSON, "not JSON");
    parse_bad("{\"type\":\"StasisEnd\"} trailing", 29, ARI_EVENT_EJSON, "not JSON");
    parse_bad("[{\"type\":\"StasisEnd\"}]", 22, ARI_EVENT_EOBJECT, "not an object");
    parse_bad("\"StasisEnd\"", 11, ARI_EVENT_EOBJECT, "not an object");
    parse_bad("{}", 2, ARI_EVENT_ETYPE, "type: missing");
    parse_bad("{\"type\":7}", 10, ARI_EVENT_ETYPE, "type: not a string");
    parse_bad("{\"type\":\"\"}", 11, ARI_EVENT_ETYPE, "type: empty");
    parse_bad("{\"type\":\"a\",\"type\":\"b\"}", 22, ARI_EVENT_EJSON, "duplicate");
    /* a NUL inside a string, and a raw NUL after the object */
    parse_bad("{\"type\":\"Stasis\\u0000End\"}", 26, ARI_EVENT_EJSON, "not JSON");
    parse_bad("{\"type\":\"StasisEnd\"}\0", 21, ARI_EVENT_EJSON, "not JSON");

#define BAD(json, err, part) parse_bad(json, strlen(json), err, part)
    BAD(HEAD("StasisEnd") APP, ARI_EVENT_EMISSING, "channel: missing");
    BAD(HEAD("StasisEnd") "\"channel\":\"1714557600.42\"," APP, ARI_EVENT_EFIELD, "channel: not an object");
    BAD(HEAD("StasisEnd") "\"channel\":{\"name\":\"x\",\"state\":\"Up\"}," APP, ARI_EVENT_EMISSING,
        "channel.id: missing");
    BAD(HEAD("StasisEnd") "\"channel\":{\"id\":\"\",\"name\":\"x\",\"state\":\"Up\"}," APP, ARI_EVENT_EFIELD,
        "channel.id: empty");
    BAD(HEAD("StasisEnd") "\"channel\":{\"id\":1,\"name\":\"x\",\"state\":\"Up\"}," APP, ARI_EVENT_EFIELD,
        "channel.id: not a string");
    BAD(HEAD("StasisEnd") "\"channel\":{\"id\":\"c\",\"state\":\"Up\"}," APP, ARI_EVENT_EMISSING, "channel.name");
    BAD(HEAD("StasisEnd") "\"channel\":{\"id\":\"c\",\"name\":\"x\"}," APP, ARI_EVENT_EMISSING, "channel.state");
    BAD(HEAD("StasisEnd") "\"channel\":{\"id\":\"c\",\"name\":\"x\",\"state\":\"Up\",\"caller\":\"Alice\"}," APP,
        ARI_EVENT_EFIELD, "channel.caller: not an object");
    BAD(HEAD("StasisEnd") "\"channel\":{\"id\":\"c\",\"name\":\"x\",\"state\":\"Up\",\"caller\":{\"number\":5}}," APP,
        ARI_EVENT_EFIELD, "channel.caller.number: not a string");
    BAD(HEAD("StasisEnd") "\"channel\":{\"id\":\"c\",\"name\":\"x\",\"state\":\"Up\",\"dialplan\":{\"exten\":null}}"
                          "," APP,
        ARI_EVENT_EFIELD, "channel.dialplan.exten");
    BAD(HEAD("StasisEnd") "\"channel\":{\"id\":\"c\",\"name\":\"x\",\"state\":\"Up\",\"channelvars\":[]}," APP,
        ARI_EVENT_EFIELD, "channel.channelvars: not an object");
    BAD(HEAD("StasisEnd") "\"channel\":" CALLER "}", ARI_EVENT_EMISSING, "application: missing");
    BAD(HEAD("StasisEnd") "\"channel\":" CALLER ",\"application\":false}", ARI_EVENT_EFIELD,
        "application: not a string");

    BAD(HEAD("StasisStart") "\"channel\":" CALLER "," APP, ARI_EVENT_EMISSING, "args: missing");
    BAD(HEAD("StasisStart") "\"args\":\"tenant=1\",\"channel\":" CALLER "," APP, ARI_EVENT_EFIELD, "args: not a list");
    BAD(HEAD("StasisStart") "\"args\":[\"a\",2],\"channel\":" CALLER "," APP, ARI_EVENT_EFIELD,
        "item 1 is not a string");
    BAD(HEAD("StasisStart") "\"args\":[\"a\"]," APP, ARI_EVENT_EMISSING, "channel: missing");

    BAD(HEAD("ChannelDestroyed") "\"cause_txt\":\"x\",\"channel\":" CALLER "," APP, ARI_EVENT_EMISSING,
        "cause: missing");
    BAD(HEAD("ChannelDestroyed") "\"cause\":\"17\",\"cause_txt\":\"x\",\"channel\":" CALLER "," APP, ARI_EVENT_EFIELD,
        "cause: not an integer");
    BAD(HEAD("ChannelDestroyed") "\"cause\":17.5,\"cause_txt\":\"x\",\"channel\":" CALLER "," APP, ARI_EVENT_EFIELD,
        "cause");
    BAD(HEAD("ChannelDestroyed") "\"cause\":-1,\"cause_txt\":\"x\",\"channel\":" CALLER "," APP, ARI_EVENT_ELIMIT,
        "cause: out of range");
    BAD(HEAD("ChannelDestroyed") "\"cause\":99999999999,\"cause_txt\":\"x\",\"channel\":" CALLER "," APP,
        ARI_EVENT_ELIMIT, "cause");
    BAD(HEAD("ChannelDestroyed") "\"cause\":17,\"channel\":" CALLER "," APP, ARI_EVENT_EMISSING, "cause_txt: missing");
    BAD(HEAD("ChannelDestroyed") "\"cause\":17,\"cause_txt\":\"x\",\"tech_cause\":\"486\",\"channel\":" CALLER "," APP,
        ARI_EVENT_EFIELD, "tech_cause");
    BAD(HEAD("ChannelHangupRequest") "\"cause\":null,\"channel\":" CALLER "," APP, ARI_EVENT_EFIELD, "cause");

    BAD(HEAD("ChannelDtmfReceived") "\"duration_ms\":100,\"channel\":" CALLER "," APP, ARI_EVENT_EMISSING, "digit");
    BAD(HEAD("ChannelDtmfReceived") "\"digit\":\"12\",\"duration_ms\":100,\"channel\":" CALLER "," APP,
        ARI_EVENT_EFIELD, "digit: not one");
    BAD(HEAD("ChannelDtmfReceived") "\"digit\":\"\",\"duration_ms\":100,\"channel\":" CALLER "," APP, ARI_EVENT_EFIELD,
        "digit");
    BAD(HEAD("ChannelDtmfReceived") "\"digit\":\" \",\"duration_ms\":100,\"channel\":" CALLER "," APP, ARI_EVENT_EFIELD,
        "digit");
    BAD(HEAD("ChannelDtmfReceived") "\"digit\":\"\\u00e9\",\"duration_ms\":100,\"channel\":" CALLER "," APP,
        ARI_EVENT_EFIELD, "digit");
    BAD(HEAD("ChannelDtmfReceived") "\"digit\":\"1\",\"channel\":" CALLER "," APP, ARI_EVENT_EMISSING, "duration_ms");

    BAD(HEAD("Dial") "\"peer\":" CALLER "," APP, ARI_EVENT_EMISSING, "dialstatus: missing");
    BAD(HEAD("Dial") "\"dialstatus\":\"ANSWER\",\"caller\":" CALLER "," APP, ARI_EVENT_EMISSING, "peer: missing");
    BAD(HEAD("Dial") "\"dialstatus\":\"ANSWER\",\"peer\":{\"id\":\"p\"}," APP, ARI_EVENT_EMISSING, "peer.name");

    BAD(HEAD("ChannelEnteredBridge") "\"channel\":" CALLER "," APP, ARI_EVENT_EMISSING, "bridge: missing");
    BAD(HEAD("ChannelLeftBridge") "\"bridge\":" BRIDGE "," APP, ARI_EVENT_EMISSING, "channel: missing");
    BAD(HEAD("BridgeDestroyed") "\"bridge\":{\"id\":\"\"}," APP, ARI_EVENT_EFIELD, "bridge.id: empty");
    BAD(HEAD("BridgeDestroyed") "\"bridge\":[]," APP, ARI_EVENT_EFIELD, "bridge: not an object");
    BAD(HEAD("PlaybackFinished") "\"playback\":{\"state\":\"done\"}," APP, ARI_EVENT_EMISSING, "playback.id: missing");
}

/* A string of n copies of c, in a static buffer. */
static const char *rep(char c, size_t n)
{
    static char buf[2][600];
    static int which;
    which ^= 1;
    memset(buf[which], c, n);
    buf[which][n] = '\0';
    return buf[which];
}

static void test_limits(void **state)
{
    char json[4096];
    /* ids: 127 bytes pass, 128 do not */
    snprintf(json, sizeof json, HEAD("StasisEnd") "\"channel\":{\"id\":\"%s\",\"name\":\"x\",\"state\":\"Up\"}," APP,
             rep('i', ARI_ID_MAX));
    parse_ok(json, ARI_EVENT_STASIS_END);
    assert_int_equal(strlen(ev.channel.id), ARI_ID_MAX);
    snprintf(json, sizeof json, HEAD("StasisEnd") "\"channel\":{\"id\":\"%s\",\"name\":\"x\",\"state\":\"Up\"}," APP,
             rep('i', ARI_ID_MAX + 1));
    parse_bad(json, strlen(json), ARI_EVENT_ELIMIT, "channel.id: longer than 127 bytes");
    /* the limit is in bytes, not characters: 64 two-byte characters are 128 bytes */
    char wide[300] = "";
    for (int i = 0; i < 64; i++)
        strcat(wide, "\xc3\xa9");
    snprintf(json, sizeof json, HEAD("StasisEnd") "\"channel\":{\"id\":\"%s\",\"name\":\"x\",\"state\":\"Up\"}," APP,
             wide);
    parse_bad(json, strlen(json), ARI_EVENT_ELIMIT, "channel.id");

    snprintf(json, sizeof json, HEAD("StasisEnd") "\"channel\":{\"id\":\"c\",\"name\":\"%s\",\"state\":\"Up\"}," APP,
             rep('n', ARI_NAME_MAX + 1));
    parse_bad(json, strlen(json), ARI_EVENT_ELIMIT, "channel.name");
    snprintf(
        json, sizeof json,
        HEAD(
            "StasisEnd") "\"channel\":{\"id\":\"c\",\"name\":\"x\",\"state\":\"Up\",\"caller\":{\"name\":\"%s\"}}," APP,
        rep('n', ARI_TEXT_MAX + 1));
    parse_bad(json, strlen(json), ARI_EVENT_ELIMIT, "channel.caller.name");
    snprintf(json, sizeof json, HEAD("StasisEnd") "\"channel\":" CALLER ",\"application\":\"%s\"}",
             rep('a', ARI_ID_MAX + 1));
    parse_bad(json, strlen(json), ARI_EVENT_ELIMIT, "application");
    snprintf(json, sizeof json, "{\"type\":\"%s\"}", rep('T', ARI_TYPE_MAX + 1));
    parse_bad(json, strlen(json), ARI_EVENT_ELIMIT, "type");

    /* args: 8 of 255 bytes pass; a 9th, or a 256th byte, do not */
    char args[2600] = "";
    for (int i = 0; i < ARI_ARGS_MAX; i++)
        snprintf(args + strlen(args), sizeof args - strlen(args), "%s\"%s\"", i ? "," : "", rep('a', ARI_ARG_MAX));
    snprintf(json, sizeof json, HEAD("StasisStart") "\"args\":[%s],\"channel\":" CALLER "," APP, args);
    parse_ok(json, ARI_EVENT_STASIS_START);
    assert_int_equal(ev.nargs, ARI_ARGS_MAX);
    assert_int_equal(strlen(ev.args[7]), ARI_ARG_MAX);
    snprintf(json, sizeof json,
             HEAD("StasisStart") "\"args\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"],"
                                 "\"channel\":" CALLER "," APP);
    parse_bad(json, strlen(json), ARI_EVENT_ELIMIT, "args: more than 8");
    snprintf(json, sizeof json, HEAD("StasisStart") "\"args\":[\"%s\"],\"channel\":" CALLER "," APP,
             rep('a', ARI_ARG_MAX + 1));
    parse_bad(json, strlen(json), ARI_EVENT_ELIMIT, "item 0 longer than 255");

    /* the whole frame */
    size_t big = ARI_EVENT_MAX_LEN + 1;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, ' ', big);
    memcpy(huge, "{\"type\":\"x\"}", 12);
    huge[big] = '\0';
    parse_bad(huge, big, ARI_EVENT_ELIMIT, "longer than 65536");
    huge[ARI_EVENT_MAX_LEN] = '\0'; /* at the limit, trailing spaces and all */
    parse_ok(huge, ARI_EVENT_OTHER);
    free(huge);
}

static void test_rtp_vars(void **state)
{
    char json[1024];
    static const struct {
        const char *addr, *port;
        int err;
    } cases[] = {
        {"\"10.0.0.2\"", "\"1\"", 0},
        {"\"fe80::1%eth0\"", "\"65535\"", 0},
        {"\"10.0.0.2\"", "\"0\"", ARI_EVENT_EFIELD},
        {"\"10.0.0.2\"", "\"65536\"", ARI_EVENT_EFIELD},
        {"\"10.0.0.2\"", "\"017442\"", ARI_EVENT_EFIELD},
        {"\"10.0.0.2\"", "\"17x\"", ARI_EVENT_EFIELD},
        {"\"10.0.0.2\"", "\"\"", ARI_EVENT_EFIELD},
        {"\"10.0.0.2\"", "\"-1\"", ARI_EVENT_EFIELD},
        {"\"10.0.0.2\"", "true", ARI_EVENT_EFIELD},
        {"\"10.0.0.2; rm -rf\"", "\"1\"", ARI_EVENT_EFIELD},
        {"\"\"", "\"1\"", ARI_EVENT_EFIELD},
        {"5", "\"1\"", ARI_EVENT_EFIELD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(
            json, sizeof json,
            HEAD("StasisStart") "\"args\":[],\"channel\":{\"id\":\"em\",\"name\":\"UnicastRTP/x\",\"state\":\"Down\","
                                "\"channelvars\":{\"UNICASTRTP_LOCAL_ADDRESS\":%s,\"UNICASTRTP_LOCAL_PORT\":%s}}," APP,
            cases[i].addr, cases[i].port);
        int err = ari_event_parse(json, strlen(json), &ev);
        if (err != cases[i].err)
            fail_msg("case %zu: %d (%s)", i, err, ev.error);
        if (err)
            assert_non_null(strstr(ev.error, "channel.channelvars.UNICASTRTP_LOCAL_"));
    }
}

static void test_media_reply(void **state)
{
    ari_channel_t ch;
    char error[ARI_ERROR_LEN];
    /* 16.7+ and 18+: the Channel itself */
    const char *now =
        "{\"id\":\"1714557601.43\",\"name\":\"UnicastRTP/10.0.0.5:20000-0x7f1c2c01b2a0\",\"state\":\"Down\","
        "\"protocol_id\":\"\",\"caller\":{\"name\":\"\",\"number\":\"\"},\"connected\":{\"name\":\"\","
        "\"number\":\"\"},\"accountcode\":\"\",\"dialplan\":{\"context\":\"default\",\"exten\":\"s\","
        "\"priority\":1,\"app_name\":\"AppDial2\",\"app_data\":\"(Outgoing Line)\"},\"creationtime\":"
        "\"2024-05-01T10:00:02.000+0000\",\"language\":\"en\",\"channelvars\":{\"UNICASTRTP_LOCAL_PORT\":"
        "\"17442\",\"UNICASTRTP_LOCAL_ADDRESS\":\"10.0.0.2\"}}";
    assert_int_equal(ari_event_parse_media(now, strlen(now), &ch, error), 0);
    assert_string_equal(ch.id, "1714557601.43");
    assert_string_equal(ch.rtp_address, "10.0.0.2");
    assert_int_equal(ch.rtp_port, 17442);
    assert_string_equal(ch.exten, "s");

    /* 16.6: the channel wrapped, address and port (an integer) at the top */
    const char *old =
        "{\"channel\":{\"id\":\"1714557601.43\",\"name\":\"UnicastRTP/10.0.0.5:20000-0x1\",\"state\":\"Down\"},"
        "\"local_address\":\"10.0.0.2\",\"local_port\":17442}";
    assert_int_equal(ari_event_parse_media(old, strlen(old), &ch, NULL), 0);
    assert_string_equal(ch.id, "1714557601.43");
    assert_string_equal(ch.rtp_address, "10.0.0.2");
    assert_int_equal(ch.rtp_port, 17442);

#define MEDIA_BAD(json, err, part)                                                                                     \
    do {                                                                                                               \
        memset(&ch, 'x', sizeof ch);                                                                                   \
        assert_int_equal(ari_event_parse_media(json, strlen(json), &ch, error), err);                                  \
        if (strstr(error, part) == NULL)                                                                               \
            fail_msg("\"%s\" does not mention \"%s\"", error, part);                                                   \
        assert_string_equal(ch.id, "");                                                                                \
        assert_int_equal(ch.rtp_port, 0);                                                                              \
    } while (0)
    MEDIA_BAD("{\"id\":\"c\",\"name\":\"n\",\"state\":\"Down\"}", ARI_EVENT_EMISSING, "UNICASTRTP_LOCAL_ADDRESS");
    MEDIA_BAD(
        "{\"id\":\"c\",\"name\":\"n\",\"state\":\"Down\",\"channelvars\":{\"UNICASTRTP_LOCAL_ADDRESS\":\"10.0.0.2\"}}",
        ARI_EVENT_EMISSING, "UNICASTRTP_LOCAL_PORT");
    MEDIA_BAD("{\"channel\":{\"id\":\"c\",\"name\":\"n\",\"state\":\"Down\"},\"local_address\":\"10.0.0.2\","
              "\"local_port\":70000}",
              ARI_EVENT_EFIELD, "local_port: not a port");
    MEDIA_BAD(
        "{\"channel\":{\"id\":\"c\",\"name\":\"n\",\"state\":\"Down\"},\"local_address\":\"a b\",\"local_port\":1}",
        ARI_EVENT_EFIELD, "local_address: not an IP");
    MEDIA_BAD("{\"channel\":\"c\",\"local_address\":\"10.0.0.2\",\"local_port\":1}", ARI_EVENT_EFIELD,
              "channel: not an object");
    MEDIA_BAD("{\"name\":\"n\",\"state\":\"Down\"}", ARI_EVENT_EMISSING, "channel.id: missing");
    MEDIA_BAD("{\"message\":\"Resource not found\"", ARI_EVENT_EJSON, "not JSON");
    MEDIA_BAD("[]", ARI_EVENT_EOBJECT, "not an object");
    assert_int_equal(ari_event_parse_media("x", 1, &ch, NULL), ARI_EVENT_EJSON);
}

static void test_cause_outcome(void **state)
{
    assert_string_equal(ari_cause_outcome(16), "completed");
    assert_string_equal(ari_cause_outcome(17), "busy");
    assert_string_equal(ari_cause_outcome(21), "busy");
    assert_string_equal(ari_cause_outcome(18), "no-answer");
    assert_string_equal(ari_cause_outcome(19), "no-answer");
    const int failed[] = {-1, 0, 1, 3, 20, 27, 31, 34, 38, 41, 42, 44, 58, 102, 127, 1000};
    for (size_t i = 0; i < sizeof failed / sizeof failed[0]; i++)
        assert_string_equal(ari_cause_outcome(failed[i]), "failed");
}

static void test_strerror(void **state)
{
    const int codes[] = {ARI_EVENT_OK,       ARI_EVENT_EJSON,  ARI_EVENT_EOBJECT, ARI_EVENT_ETYPE,
                         ARI_EVENT_EMISSING, ARI_EVENT_EFIELD, ARI_EVENT_ELIMIT};
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(ari_event_strerror(codes[i]), ari_event_strerror(codes[j]));
    assert_non_null(ari_event_strerror(-99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stasis_start), cmocka_unit_test(test_channel_events),
        cmocka_unit_test(test_dial),         cmocka_unit_test(test_bridge_playback),
        cmocka_unit_test(test_other),        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_rtp_vars),
        cmocka_unit_test(test_media_reply),  cmocka_unit_test(test_cause_outcome),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests_name("ari_event", tests, NULL, NULL);
}
