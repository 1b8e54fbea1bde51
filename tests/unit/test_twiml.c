/* Unit tests for twiml/twiml.h: exact XML for every verb and attribute, escaping, errors, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "twiml/twiml.h"

#define DECL     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
#define DOC(...) DECL "<Response>" __VA_ARGS__ "</Response>"

/* Finishes and frees `doc`, checks the output equals `want`. */
static void expect_xml(twiml_doc_t *doc, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    int rc = twiml_finish(doc, &out, &len);
    if (rc != TWIML_OK)
        fail_msg("twiml_finish: %s (%s)", twiml_strerror(rc), twiml_errmsg(doc));
    assert_non_null(out);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(out));
    free(out);
    twiml_doc_free(doc);
}

/* Finishes and frees `doc`, checks it failed with `err` and a detail containing `detail`. */
static void expect_err(twiml_doc_t *doc, int err, const char *detail)
{
    char *out = (char *)"sentinel";
    size_t len = 99;
    assert_int_equal(twiml_finish(doc, &out, &len), err);
    assert_null(out);
    assert_int_equal(len, 0);
    if (strstr(twiml_errmsg(doc), detail) == NULL)
        fail_msg("error detail \"%s\" lacks \"%s\"", twiml_errmsg(doc), detail);
    twiml_doc_free(doc);
}

static twiml_doc_t *new_doc(void)
{
    twiml_doc_t *doc = twiml_doc_new();
    assert_non_null(doc);
    return doc;
}

static void test_empty(void **state)
{
    (void)state;
    expect_xml(new_doc(), DECL "<Response/>");
}

static void test_say(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    assert_int_equal(twiml_say(doc, "Hello", &(twiml_say_opts_t){.voice = "Polly.Amy", .language = "en-GB", .loop = 2}),
                     TWIML_OK);
    twiml_say(doc, "forever", &(twiml_say_opts_t){.loop = TWIML_ZERO});
    twiml_say(doc, "plain", NULL);
    twiml_say(doc, "", NULL);
    expect_xml(doc, DOC("<Say voice=\"Polly.Amy\" language=\"en-GB\" loop=\"2\">Hello</Say>"
                        "<Say loop=\"0\">forever</Say><Say>plain</Say><Say/>"));
}

static void test_play_pause(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_play(doc, "https://example.com/hold.mp3", &(twiml_play_opts_t){.loop = 3});
    twiml_play(doc, NULL, &(twiml_play_opts_t){.digits = "wwww3"});
    twiml_pause(doc, &(twiml_pause_opts_t){.length = 2});
    twiml_pause(doc, NULL);
    expect_xml(doc, DOC("<Play loop=\"3\">https://example.com/hold.mp3</Play><Play digits=\"wwww3\"/>"
                        "<Pause length=\"2\"/><Pause/>"));
}

static void test_gather(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_gather_begin(doc, &(twiml_gather_opts_t){.input = (const char *[]){"dtmf", "speech", NULL},
                                                   .action = "/twilio/gather",
                                                   .method = "POST",
                                                   .timeout = 5,
                                                   .speech_timeout = "auto",
                                                   .num_digits = 1,
                                                   .finish_on_key = "#",
                                                   .hints = "sales, support",
                                                   .language = "en-US"});
    twiml_say(doc, "Press 1", NULL);
    twiml_play(doc, "https://example.com/beep.wav", NULL);
    twiml_pause(doc, &(twiml_pause_opts_t){.length = 1});
    assert_int_equal(twiml_gather_end(doc), TWIML_OK);
    twiml_gather_begin(doc, &(twiml_gather_opts_t){.finish_on_key = ""});
    twiml_gather_end(doc);
    expect_xml(doc, DOC("<Gather input=\"dtmf speech\" action=\"/twilio/gather\" method=\"POST\" timeout=\"5\" "
                        "speechTimeout=\"auto\" numDigits=\"1\" finishOnKey=\"#\" hints=\"sales, support\" "
                        "language=\"en-US\"><Say>Press 1</Say><Play>https://example.com/beep.wav</Play>"
                        "<Pause length=\"1\"/></Gather><Gather finishOnKey=\"\"/>"));
}

static void test_dial_attrs_and_number(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_dial_begin(doc, &(twiml_dial_opts_t){
                              .action = "/twilio/transfer_callback",
                              .method = "POST",
                              .timeout = 30,
                              .time_limit = 3600,
                              .caller_id = "+14155550100",
                              .record = "record-from-answer-dual",
                              .recording_status_callback = "/twilio/recording",
                              .recording_status_callback_event = (const char *[]){"in-progress", "completed", NULL},
                              .answer_on_bridge = TWIML_TRUE,
                              .ring_tone = "us",
                              .hangup_on_star = TWIML_FALSE,
                              .sequential = TWIML_TRUE,
                          });
    twiml_number(doc, "+13654001512",
                 &(twiml_number_opts_t){
                     .send_digits = "ww1234",
                     .url = "/whisper",
                     .status_callback = "/twilio/dial_status/s1",
                     .status_callback_event = (const char *[]){"initiated", "ringing", "answered", "completed", NULL},
                     .machine_detection = "Enable",
                 });
    twiml_number(doc, "+14155550101", NULL);
    assert_int_equal(twiml_dial_end(doc), TWIML_OK);
    expect_xml(doc, DOC("<Dial action=\"/twilio/transfer_callback\" method=\"POST\" timeout=\"30\" timeLimit=\"3600\" "
                        "callerId=\"+14155550100\" record=\"record-from-answer-dual\" "
                        "recordingStatusCallback=\"/twilio/recording\" "
                        "recordingStatusCallbackEvent=\"in-progress completed\" answerOnBridge=\"true\" "
                        "ringTone=\"us\" hangupOnStar=\"false\" sequential=\"true\">"
                        "<Number sendDigits=\"ww1234\" url=\"/whisper\" statusCallback=\"/twilio/dial_status/s1\" "
                        "statusCallbackEvent=\"initiated ringing answered completed\" machineDetection=\"Enable\">"
                        "+13654001512</Number><Number>+14155550101</Number></Dial>"));
}

static void test_dial_nouns(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_dial_begin(doc, NULL);
    twiml_sip(doc, "sip:2000@pbx.example.com",
              &(twiml_sip_opts_t){.username = "twilio",
                                  .password = "s3cret",
                                  .url = "/screen",
                                  .status_callback = "/status",
                                  .status_callback_event = (const char *[]){"answered", NULL}});
    twiml_client(doc, "agent_7",
                 &(twiml_client_opts_t){.url = "/client",
                                        .status_callback = "/cs",
                                        .status_callback_event = (const char *[]){"ringing", NULL}});
    twiml_dial_end(doc);
    twiml_dial_begin(doc, NULL);
    twiml_conference(
        doc, "room-42",
        &(twiml_conference_opts_t){.start_conference_on_enter = TWIML_TRUE,
                                   .end_conference_on_exit = TWIML_FALSE,
                                   .beep = "onEnter",
                                   .wait_url = "/wait",
                                   .status_callback = "/conf",
                                   .status_callback_event = (const char *[]){"start", "end", "join", NULL}});
    twiml_dial_end(doc);
    twiml_dial_begin(doc, NULL);
    twiml_queue(doc, "support", &(twiml_queue_opts_t){.url = "/about-to-connect"});
    twiml_dial_end(doc);
    twiml_dial(doc, "+14155550100", &(twiml_dial_opts_t){.timeout = 20});
    expect_xml(doc,
               DOC("<Dial><Sip username=\"twilio\" password=\"s3cret\" url=\"/screen\" statusCallback=\"/status\" "
                   "statusCallbackEvent=\"answered\">sip:2000@pbx.example.com</Sip>"
                   "<Client url=\"/client\" statusCallback=\"/cs\" statusCallbackEvent=\"ringing\">agent_7</Client>"
                   "</Dial><Dial><Conference startConferenceOnEnter=\"true\" endConferenceOnExit=\"false\" "
                   "beep=\"onEnter\" waitUrl=\"/wait\" statusCallback=\"/conf\" "
                   "statusCallbackEvent=\"start end join\">room-42</Conference></Dial>"
                   "<Dial><Queue url=\"/about-to-connect\">support</Queue></Dial>"
                   "<Dial timeout=\"20\">+14155550100</Dial>"));
}

static void test_connect_stream(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_connect_begin(
        doc, &(twiml_connect_opts_t){.action = "https://sb.example.com/twilio/connect_action", .method = "POST"});
    twiml_stream_begin(doc, &(twiml_stream_opts_t){.url = "wss://sb.example.com/twilio/media",
                                                   .name = "ai",
                                                   .track = "inbound_track",
                                                   .status_callback = "/stream-status",
                                                   .status_callback_method = "POST"});
    twiml_parameter(doc, "tenant_id", "7");
    twiml_parameter(doc, "call_id", "c&1");
    assert_int_equal(twiml_stream_end(doc), TWIML_OK);
    assert_int_equal(twiml_connect_end(doc), TWIML_OK);
    expect_xml(doc, DOC("<Connect action=\"https://sb.example.com/twilio/connect_action\" method=\"POST\">"
                        "<Stream url=\"wss://sb.example.com/twilio/media\" name=\"ai\" track=\"inbound_track\" "
                        "statusCallback=\"/stream-status\" statusCallbackMethod=\"POST\">"
                        "<Parameter name=\"tenant_id\" value=\"7\"/><Parameter name=\"call_id\" value=\"c&amp;1\"/>"
                        "</Stream></Connect>"));
}

static void test_start_stop(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_start_begin(doc);
    twiml_stream_begin(doc, &(twiml_stream_opts_t){.url = "wss://rec.example.com/", .name = "rec"});
    twiml_stream_end(doc);
    assert_int_equal(twiml_start_end(doc), TWIML_OK);
    twiml_stop_begin(doc);
    twiml_stream_begin(doc, &(twiml_stream_opts_t){.name = "rec"});
    twiml_stream_end(doc);
    assert_int_equal(twiml_stop_end(doc), TWIML_OK);
    expect_xml(doc, DOC("<Start><Stream url=\"wss://rec.example.com/\" name=\"rec\"/></Start>"
                        "<Stop><Stream name=\"rec\"/></Stop>"));
}

static void test_record(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_record(doc, &(twiml_record_opts_t){
                          .action = "/voicemail",
                          .method = "GET",
                          .timeout = TWIML_ZERO,
                          .finish_on_key = "",
                          .max_length = 120,
                          .play_beep = TWIML_TRUE,
                          .trim = "do-not-trim",
                          .recording_status_callback = "/twilio/recording",
                          .recording_status_callback_event = (const char *[]){"completed", "absent", NULL},
                          .transcribe = TWIML_FALSE,
                      });
    twiml_record(doc, NULL);
    expect_xml(doc, DOC("<Record action=\"/voicemail\" method=\"GET\" timeout=\"0\" finishOnKey=\"\" maxLength=\"120\" "
                        "playBeep=\"true\" trim=\"do-not-trim\" recordingStatusCallback=\"/twilio/recording\" "
                        "recordingStatusCallbackEvent=\"completed absent\" transcribe=\"false\"/><Record/>"));
}

static void test_redirect_reject_hangup(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_redirect(doc, "https://example.com/next?a=1&b=2", &(twiml_redirect_opts_t){.method = "POST"});
    twiml_redirect(doc, "/again", NULL);
    twiml_reject(doc, &(twiml_reject_opts_t){.reason = "busy"});
    twiml_reject(doc, NULL);
    twiml_hangup(doc);
    expect_xml(doc, DOC("<Redirect method=\"POST\">https://example.com/next?a=1&amp;b=2</Redirect>"
                        "<Redirect>/again</Redirect><Reject reason=\"busy\"/><Reject/><Hangup/>"));
}

static void test_escaping(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_say(doc, "Tom & Jerry <say> \"hi\" it's > 2", &(twiml_say_opts_t){.voice = "a&b<c>d\"e'f"});
    twiml_say(doc, "line1\nline2\ttab\rcr", &(twiml_say_opts_t){.language = "x\ny"});
    expect_xml(doc, DOC("<Say voice=\"a&amp;b&lt;c&gt;d&quot;e'f\">Tom &amp; Jerry &lt;say&gt; &quot;hi&quot; it's "
                        "&gt; 2</Say><Say language=\"x&#10;y\">line1\nline2\ttab&#13;cr</Say>"));
}

static void test_non_ascii(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_say(doc, "Café – 東京 🎉", &(twiml_say_opts_t){.voice = "Café – 東京"});
    expect_xml(doc, DOC("<Say voice=\"Café – 東京\">Café – 東京 🎉</Say>"));
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "caf\xc3",          /* truncated */
        "\xc3\x28",         /* bad continuation */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, 3 bytes */
        "\xed\xa0\x80",     /* UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xff",             /* never valid */
        "\x80",             /* lone continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        twiml_doc_t *doc = new_doc();
        assert_int_equal(twiml_say(doc, bad[i], NULL), TWIML_EUTF8);
        expect_err(doc, TWIML_EUTF8, "text of <Say> is not valid UTF-8");

        doc = new_doc();
        twiml_dial_begin(doc, &(twiml_dial_opts_t){.caller_id = bad[i]});
        expect_err(doc, TWIML_EUTF8, "callerId of <Dial>");
    }
}

static void test_control_chars(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    assert_int_equal(twiml_say(doc, "bell\x07", NULL), TWIML_ECHAR);
    expect_err(doc, TWIML_ECHAR, "text of <Say> contains a character XML cannot carry");

    doc = new_doc();
    twiml_dial_begin(doc, NULL);
    twiml_sip(doc, "sip:a@b", &(twiml_sip_opts_t){.password = "x\x01y"});
    expect_err(doc, TWIML_ECHAR, "password of <Sip>");

    doc = new_doc();
    twiml_say(doc, "\xef\xbf\xbf", NULL); /* U+FFFF */
    expect_err(doc, TWIML_ECHAR, "<Say>");
}

static void test_nesting_errors(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    assert_int_equal(twiml_number(doc, "+14155550100", NULL), TWIML_ENEST);
    /* sticky: later calls fail with the first error and keep its detail */
    assert_int_equal(twiml_hangup(doc), TWIML_ENEST);
    assert_int_equal(twiml_say(doc, "x", NULL), TWIML_ENEST);
    expect_err(doc, TWIML_ENEST, "<Number> is not allowed inside <Response>");

    doc = new_doc();
    twiml_dial_begin(doc, NULL);
    assert_int_equal(twiml_say(doc, "hi", NULL), TWIML_ENEST);
    expect_err(doc, TWIML_ENEST, "<Say> is not allowed inside <Dial>");

    doc = new_doc();
    assert_int_equal(twiml_dial_end(doc), TWIML_ENEST);
    expect_err(doc, TWIML_ENEST, "ending <Dial> but the innermost open element is <Response>");

    doc = new_doc();
    twiml_gather_begin(doc, NULL);
    assert_int_equal(twiml_dial_end(doc), TWIML_ENEST);
    expect_err(doc, TWIML_ENEST, "ending <Dial> but the innermost open element is <Gather>");

    doc = new_doc();
    twiml_gather_begin(doc, NULL);
    assert_int_equal(twiml_dial_begin(doc, NULL), TWIML_ENEST);
    expect_err(doc, TWIML_ENEST, "<Dial> is not allowed inside <Gather>");

    doc = new_doc();
    twiml_connect_begin(doc, NULL);
    assert_int_equal(twiml_parameter(doc, "a", "b"), TWIML_ENEST);
    expect_err(doc, TWIML_ENEST, "<Parameter> is not allowed inside <Connect>");

    doc = new_doc();
    assert_int_equal(twiml_stream_begin(doc, &(twiml_stream_opts_t){.url = "wss://x/"}), TWIML_ENEST);
    expect_err(doc, TWIML_ENEST, "<Stream> is not allowed inside <Response>");

    doc = new_doc();
    twiml_connect_begin(doc, NULL);
    twiml_stream_begin(doc, &(twiml_stream_opts_t){.url = "wss://x/"});
    assert_int_equal(twiml_connect_end(doc), TWIML_ENEST);
    expect_err(doc, TWIML_ENEST, "ending <Connect> but the innermost open element is <Stream>");

    doc = new_doc();
    twiml_dial_begin(doc, NULL);
    twiml_dial_begin(doc, NULL);
    expect_err(doc, TWIML_ENEST, "<Dial> is not allowed inside <Dial>");
}

static void test_open_and_empty(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_dial_begin(doc, NULL);
    twiml_sip(doc, "sip:a@b", NULL);
    expect_err(doc, TWIML_EOPEN, "<Dial> is still open");

    doc = new_doc();
    twiml_dial_begin(doc, NULL);
    assert_int_equal(twiml_dial_end(doc), TWIML_EEMPTY);
    expect_err(doc, TWIML_EEMPTY, "<Dial> has nothing inside");

    doc = new_doc();
    twiml_connect_begin(doc, NULL);
    assert_int_equal(twiml_connect_end(doc), TWIML_EEMPTY);
    twiml_doc_free(doc);

    doc = new_doc();
    twiml_stop_begin(doc);
    assert_int_equal(twiml_stop_end(doc), TWIML_EEMPTY);
    twiml_doc_free(doc);

    doc = new_doc();
    twiml_start_begin(doc);
    assert_int_equal(twiml_start_end(doc), TWIML_EEMPTY);
    twiml_doc_free(doc);
}

static void test_invalid_args(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    assert_int_equal(twiml_say(doc, NULL, NULL), TWIML_EINVAL);
    expect_err(doc, TWIML_EINVAL, "<Say> needs its text");

    doc = new_doc();
    twiml_dial_begin(doc, NULL);
    assert_int_equal(twiml_number(doc, "", NULL), TWIML_EINVAL);
    expect_err(doc, TWIML_EINVAL, "<Number> needs its text");

    doc = new_doc();
    assert_int_equal(twiml_dial(doc, NULL, NULL), TWIML_EINVAL);
    twiml_doc_free(doc);

    doc = new_doc();
    assert_int_equal(twiml_pause(doc, &(twiml_pause_opts_t){.length = -5}), TWIML_EINVAL);
    expect_err(doc, TWIML_EINVAL, "length of <Pause> is negative");

    doc = new_doc();
    assert_int_equal(twiml_dial_begin(doc, &(twiml_dial_opts_t){.answer_on_bridge = (twiml_bool_t)7}), TWIML_EINVAL);
    expect_err(doc, TWIML_EINVAL, "answerOnBridge of <Dial> is not a twiml_bool_t");

    doc = new_doc();
    twiml_gather_begin(doc, &(twiml_gather_opts_t){.input = (const char *[]){"dtmf speech", NULL}});
    expect_err(doc, TWIML_EINVAL, "input of <Gather> has an empty item");

    doc = new_doc();
    twiml_gather_begin(doc, &(twiml_gather_opts_t){.input = (const char *[]){"dtmf", "", NULL}});
    expect_err(doc, TWIML_EINVAL, "input of <Gather> has an empty item");

    doc = new_doc();
    assert_int_equal(twiml_play(doc, NULL, NULL), TWIML_EINVAL);
    expect_err(doc, TWIML_EINVAL, "<Play> needs a url or digits");

    doc = new_doc();
    twiml_connect_begin(doc, NULL);
    assert_int_equal(twiml_stream_begin(doc, &(twiml_stream_opts_t){.name = "x"}), TWIML_EINVAL);
    expect_err(doc, TWIML_EINVAL, "<Stream> needs a url");

    doc = new_doc();
    twiml_stop_begin(doc);
    assert_int_equal(twiml_stream_begin(doc, NULL), TWIML_EINVAL);
    expect_err(doc, TWIML_EINVAL, "<Stream> inside <Stop> needs a url or a name");

    doc = new_doc();
    twiml_connect_begin(doc, NULL);
    twiml_stream_begin(doc, &(twiml_stream_opts_t){.url = "wss://x/"});
    assert_int_equal(twiml_parameter(doc, "a", NULL), TWIML_EINVAL);
    expect_err(doc, TWIML_EINVAL, "<Parameter> needs a name and a value");

    doc = new_doc();
    assert_int_equal(twiml_redirect(doc, "", NULL), TWIML_EINVAL);
    twiml_doc_free(doc);

    doc = new_doc();
    assert_int_equal(twiml_finish(doc, NULL, NULL), TWIML_EINVAL);
    twiml_doc_free(doc);
}

static void test_null_doc(void **state)
{
    (void)state;
    char *out = (char *)"x";
    assert_int_equal(twiml_say(NULL, "x", NULL), TWIML_EINVAL);
    assert_int_equal(twiml_play(NULL, NULL, NULL), TWIML_EINVAL);
    assert_int_equal(twiml_parameter(NULL, NULL, NULL), TWIML_EINVAL);
    assert_int_equal(twiml_stream_begin(NULL, NULL), TWIML_EINVAL);
    assert_int_equal(twiml_dial_end(NULL), TWIML_EINVAL);
    assert_int_equal(twiml_hangup(NULL), TWIML_EINVAL);
    assert_int_equal(twiml_finish(NULL, &out, NULL), TWIML_EINVAL);
    assert_null(out);
    assert_string_equal(twiml_errmsg(NULL), "no document");
    twiml_doc_free(NULL);
}

static void test_after_finish(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    char *out = NULL;
    twiml_hangup(doc);
    assert_int_equal(twiml_finish(doc, &out, NULL), TWIML_OK);
    assert_string_equal(out, DOC("<Hangup/>"));
    free(out);
    assert_int_equal(twiml_say(doc, "late", NULL), TWIML_ENEST);
    assert_int_equal(twiml_finish(doc, &out, NULL), TWIML_ENEST);
    assert_null(out);
    assert_string_equal(twiml_errmsg(doc), "document already finished");
    twiml_doc_free(doc);
}

/* A document of exactly `total` bytes: one <Say> padded with 'a'. */
static twiml_doc_t *doc_of_size(size_t total)
{
    size_t overhead = strlen(DOC("<Say></Say>"));
    char *text = malloc(total - overhead + 1);
    twiml_doc_t *doc = new_doc();
    assert_non_null(text);
    memset(text, 'a', total - overhead);
    text[total - overhead] = '\0';
    twiml_say(doc, text, NULL);
    free(text);
    return doc;
}

static void test_size_limit(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    twiml_doc_t *doc = doc_of_size(TWIML_MAX_BYTES);
    assert_int_equal(twiml_finish(doc, &out, &len), TWIML_OK);
    assert_int_equal(len, 65536);
    assert_int_equal(strlen(out), 65536);
    free(out);
    twiml_doc_free(doc);

    expect_err(doc_of_size(TWIML_MAX_BYTES + 1), TWIML_ETOOBIG, "larger than 65536 bytes");

    /* Many small verbs: the limit stops the document as it grows. */
    doc = new_doc();
    int rc = TWIML_OK, n = 0;
    while (rc == TWIML_OK && n < 100000) {
        rc = twiml_say(doc, "Please hold while we connect you to the next available agent.", NULL);
        n++;
    }
    assert_int_equal(rc, TWIML_ETOOBIG);
    assert_true(n < 2000);
    expect_err(doc, TWIML_ETOOBIG, "larger than 65536 bytes");

    /* One string longer than the limit is refused before it is copied. */
    char *huge = malloc(1 << 20);
    assert_non_null(huge);
    memset(huge, 'x', (1 << 20) - 1);
    huge[(1 << 20) - 1] = '\0';
    doc = new_doc();
    assert_int_equal(twiml_say(doc, "ok", &(twiml_say_opts_t){.voice = huge}), TWIML_ETOOBIG);
    free(huge);
    expect_err(doc, TWIML_ETOOBIG, "voice of <Say> is longer than the document limit");
}

/* The transfer TwiML of DESIGN.md: announce, bridge to a SIP extension, apologise if it fails. */
static void test_transfer_document(void **state)
{
    (void)state;
    twiml_doc_t *doc = new_doc();
    twiml_say(doc, "Transferring you to an agent. Please wait.", &(twiml_say_opts_t){.voice = "Polly.Amy"});
    twiml_dial_begin(doc, &(twiml_dial_opts_t){.action = "https://sb.example.com/twilio/transfer_callback?leg=1&t=a",
                                               .timeout = 30,
                                               .caller_id = "+14168189171",
                                               .answer_on_bridge = TWIML_TRUE});
    twiml_sip(doc, "sip:2000@pbx.example.com:5061;transport=tcp;callSid=CA123?X-Ticket=42&x-name=J%20D",
              &(twiml_sip_opts_t){.username = "twilio", .password = "p&ss<word>"});
    twiml_dial_end(doc);
    twiml_say(doc, "I'm sorry, the transfer failed. Please try again later.",
              &(twiml_say_opts_t){.voice = "Polly.Amy"});
    assert_int_equal(twiml_hangup(doc), TWIML_OK);
    expect_xml(doc, DOC("<Say voice=\"Polly.Amy\">Transferring you to an agent. Please wait.</Say>"
                        "<Dial action=\"https://sb.example.com/twilio/transfer_callback?leg=1&amp;t=a\" "
                        "timeout=\"30\" callerId=\"+14168189171\" answerOnBridge=\"true\">"
                        "<Sip username=\"twilio\" password=\"p&amp;ss&lt;word&gt;\">"
                        "sip:2000@pbx.example.com:5061;transport=tcp;callSid=CA123?X-Ticket=42&amp;x-name=J%20D"
                        "</Sip></Dial>"
                        "<Say voice=\"Polly.Amy\">I'm sorry, the transfer failed. Please try again later.</Say>"
                        "<Hangup/>"));
}

static void test_strerror(void **state)
{
    (void)state;
    static const int codes[] = {TWIML_OK,    TWIML_ENOMEM, TWIML_EINVAL,  TWIML_ENEST, TWIML_EOPEN,
                                TWIML_EUTF8, TWIML_ECHAR,  TWIML_ETOOBIG, TWIML_EXML,  TWIML_EEMPTY};
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        assert_non_null(twiml_strerror(codes[i]));
        assert_string_not_equal(twiml_strerror(codes[i]), "unknown TwiML error");
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(twiml_strerror(codes[i]), twiml_strerror(codes[j]));
    }
    assert_string_equal(twiml_strerror(12345), "unknown TwiML error");
    assert_string_equal(twiml_strerror(TWIML_ETOOBIG), "TwiML document larger than 64 KB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_say),
        cmocka_unit_test(test_play_pause),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_dial_attrs_and_number),
        cmocka_unit_test(test_dial_nouns),
        cmocka_unit_test(test_connect_stream),
        cmocka_unit_test(test_start_stop),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_redirect_reject_hangup),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_non_ascii),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_control_chars),
        cmocka_unit_test(test_nesting_errors),
        cmocka_unit_test(test_open_and_empty),
        cmocka_unit_test(test_invalid_args),
        cmocka_unit_test(test_null_doc),
        cmocka_unit_test(test_after_finish),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_transfer_document),
        cmocka_unit_test(test_strerror),
    };
    twiml_library_init();
    return cmocka_run_group_tests_name("twiml", tests, NULL, NULL);
}
