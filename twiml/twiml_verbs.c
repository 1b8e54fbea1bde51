/*
 * twiml_verbs: the TwiML vocabulary. Each verb's attributes, in the order
 * they are written, and its text rule; the writing is in twiml.c.
 */
#include "twiml/twiml.h"
#include "twiml/twiml_impl.h"

#include <stddef.h>

// clang-format off
#define S(T, f, n) {n, TWIML_A_STR, offsetof(T, f)}
#define I(T, f, n) {n, TWIML_A_INT, offsetof(T, f)}
#define B(T, f, n) {n, TWIML_A_BOOL, offsetof(T, f)}
#define L(T, f, n) {n, TWIML_A_LIST, offsetof(T, f)}
#define END        {NULL, TWIML_A_STR, 0}

static const twiml_attr_t say_attrs[] = {
    S(twiml_say_opts_t, voice, "voice"),
    S(twiml_say_opts_t, language, "language"),
    I(twiml_say_opts_t, loop, "loop"),
    END};
static const twiml_attr_t play_attrs[] = {
    I(twiml_play_opts_t, loop, "loop"),
    S(twiml_play_opts_t, digits, "digits"),
    END};
static const twiml_attr_t pause_attrs[] = {
    I(twiml_pause_opts_t, length, "length"),
    END};
static const twiml_attr_t gather_attrs[] = {
    L(twiml_gather_opts_t, input, "input"),
    S(twiml_gather_opts_t, action, "action"),
    S(twiml_gather_opts_t, method, "method"),
    I(twiml_gather_opts_t, timeout, "timeout"),
    S(twiml_gather_opts_t, speech_timeout, "speechTimeout"),
    I(twiml_gather_opts_t, num_digits, "numDigits"),
    S(twiml_gather_opts_t, finish_on_key, "finishOnKey"),
    S(twiml_gather_opts_t, hints, "hints"),
    S(twiml_gather_opts_t, language, "language"),
    END};
static const twiml_attr_t dial_attrs[] = {
    S(twiml_dial_opts_t, action, "action"),
    S(twiml_dial_opts_t, method, "method"),
    I(twiml_dial_opts_t, timeout, "timeout"),
    I(twiml_dial_opts_t, time_limit, "timeLimit"),
    S(twiml_dial_opts_t, caller_id, "callerId"),
    S(twiml_dial_opts_t, record, "record"),
    S(twiml_dial_opts_t, recording_status_callback, "recordingStatusCallback"),
    L(twiml_dial_opts_t, recording_status_callback_event, "recordingStatusCallbackEvent"),
    B(twiml_dial_opts_t, answer_on_bridge, "answerOnBridge"),
    S(twiml_dial_opts_t, ring_tone, "ringTone"),
    B(twiml_dial_opts_t, hangup_on_star, "hangupOnStar"),
    B(twiml_dial_opts_t, sequential, "sequential"),
    END};
static const twiml_attr_t number_attrs[] = {
    S(twiml_number_opts_t, send_digits, "sendDigits"),
    S(twiml_number_opts_t, url, "url"),
    S(twiml_number_opts_t, status_callback, "statusCallback"),
    L(twiml_number_opts_t, status_callback_event, "statusCallbackEvent"),
    S(twiml_number_opts_t, machine_detection, "machineDetection"),
    END};
static const twiml_attr_t sip_attrs[] = {
    S(twiml_sip_opts_t, username, "username"),
    S(twiml_sip_opts_t, password, "password"),
    S(twiml_sip_opts_t, url, "url"),
    S(twiml_sip_opts_t, status_callback, "statusCallback"),
    L(twiml_sip_opts_t, status_callback_event, "statusCallbackEvent"),
    END};
static const twiml_attr_t client_attrs[] = {
    S(twiml_client_opts_t, url, "url"),
    S(twiml_client_opts_t, status_callback, "statusCallback"),
    L(twiml_client_opts_t, status_callback_event, "statusCallbackEvent"),
    END};
static const twiml_attr_t conference_attrs[] = {
    B(twiml_conference_opts_t, start_conference_on_enter, "startConferenceOnEnter"),
    B(twiml_conference_opts_t, end_conference_on_exit, "endConferenceOnExit"),
    S(twiml_conference_opts_t, beep, "beep"),
    S(twiml_conference_opts_t, wait_url, "waitUrl"),
    S(twiml_conference_opts_t, status_callback, "statusCallback"),
    L(twiml_conference_opts_t, status_callback_event, "statusCallbackEvent"),
    END};
static const twiml_attr_t queue_attrs[] = {
    S(twiml_queue_opts_t, url, "url"),
    END};
static const twiml_attr_t connect_attrs[] = {
    S(twiml_connect_opts_t, action, "action"),
    S(twiml_connect_opts_t, method, "method"),
    END};
static const twiml_attr_t stream_attrs[] = {
    S(twiml_stream_opts_t, url, "url"),
    S(twiml_stream_opts_t, name, "name"),
    S(twiml_stream_opts_t, track, "track"),
    S(twiml_stream_opts_t, status_callback, "statusCallback"),
    S(twiml_stream_opts_t, status_callback_method, "statusCallbackMethod"),
    END};
typedef struct {
    const char *name, *value;
} parameter_t;
static const twiml_attr_t parameter_attrs[] = {
    S(parameter_t, name, "name"),
    S(parameter_t, value, "value"),
    END};
static const twiml_attr_t record_attrs[] = {
    S(twiml_record_opts_t, action, "action"),
    S(twiml_record_opts_t, method, "method"),
    I(twiml_record_opts_t, timeout, "timeout"),
    S(twiml_record_opts_t, finish_on_key, "finishOnKey"),
    I(twiml_record_opts_t, max_length, "maxLength"),
    B(twiml_record_opts_t, play_beep, "playBeep"),
    S(twiml_record_opts_t, trim, "trim"),
    S(twiml_record_opts_t, recording_status_callback, "recordingStatusCallback"),
    L(twiml_record_opts_t, recording_status_callback_event, "recordingStatusCallbackEvent"),
    B(twiml_record_opts_t, transcribe, "transcribe"),
    END};
static const twiml_attr_t redirect_attrs[] = {
    S(twiml_redirect_opts_t, method, "method"),
    END};
static const twiml_attr_t reject_attrs[] = {
    S(twiml_reject_opts_t, reason, "reason"),
    END};
// clang-format on

int twiml_say(twiml_doc_t *doc, const char *text, const twiml_say_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_SAY, say_attrs, opts, TWIML_TEXT_ANY, text, 0);
}

int twiml_play(twiml_doc_t *doc, const char *url, const twiml_play_opts_t *opts)
{
    if (url == NULL && (opts == NULL || opts->digits == NULL))
        twiml__invalid(doc, "<Play> needs a url or digits");
    return twiml__element(doc, TWIML_EL_PLAY, play_attrs, opts, TWIML_TEXT_MAYBE, url, 0);
}

int twiml_pause(twiml_doc_t *doc, const twiml_pause_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_PAUSE, pause_attrs, opts, TWIML_NO_TEXT, NULL, 0);
}

int twiml_gather_begin(twiml_doc_t *doc, const twiml_gather_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_GATHER, gather_attrs, opts, TWIML_NO_TEXT, NULL, 1);
}

int twiml_gather_end(twiml_doc_t *doc)
{
    return twiml__end(doc, TWIML_EL_GATHER, 0);
}

int twiml_dial_begin(twiml_doc_t *doc, const twiml_dial_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_DIAL, dial_attrs, opts, TWIML_NO_TEXT, NULL, 1);
}

int twiml_dial_end(twiml_doc_t *doc)
{
    return twiml__end(doc, TWIML_EL_DIAL, 1);
}

int twiml_dial(twiml_doc_t *doc, const char *number, const twiml_dial_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_DIAL, dial_attrs, opts, TWIML_TEXT_NONEMPTY, number, 0);
}

int twiml_number(twiml_doc_t *doc, const char *number, const twiml_number_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_NUMBER, number_attrs, opts, TWIML_TEXT_NONEMPTY, number, 0);
}

int twiml_sip(twiml_doc_t *doc, const char *uri, const twiml_sip_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_SIP, sip_attrs, opts, TWIML_TEXT_NONEMPTY, uri, 0);
}

int twiml_client(twiml_doc_t *doc, const char *identity, const twiml_client_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_CLIENT, client_attrs, opts, TWIML_TEXT_NONEMPTY, identity, 0);
}

int twiml_conference(twiml_doc_t *doc, const char *room, const twiml_conference_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_CONFERENCE, conference_attrs, opts, TWIML_TEXT_NONEMPTY, room, 0);
}

int twiml_queue(twiml_doc_t *doc, const char *name, const twiml_queue_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_QUEUE, queue_attrs, opts, TWIML_TEXT_NONEMPTY, name, 0);
}

int twiml_connect_begin(twiml_doc_t *doc, const twiml_connect_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_CONNECT, connect_attrs, opts, TWIML_NO_TEXT, NULL, 1);
}

int twiml_connect_end(twiml_doc_t *doc)
{
    return twiml__end(doc, TWIML_EL_CONNECT, 1);
}

int twiml_start_begin(twiml_doc_t *doc)
{
    return twiml__element(doc, TWIML_EL_START, NULL, NULL, TWIML_NO_TEXT, NULL, 1);
}

int twiml_start_end(twiml_doc_t *doc)
{
    return twiml__end(doc, TWIML_EL_START, 1);
}

int twiml_stop_begin(twiml_doc_t *doc)
{
    return twiml__element(doc, TWIML_EL_STOP, NULL, NULL, TWIML_NO_TEXT, NULL, 1);
}

int twiml_stop_end(twiml_doc_t *doc)
{
    return twiml__end(doc, TWIML_EL_STOP, 1);
}

int twiml_stream_begin(twiml_doc_t *doc, const twiml_stream_opts_t *opts)
{
    const char *url = opts != NULL ? opts->url : NULL, *name = opts != NULL ? opts->name : NULL;
    if (doc != NULL) {
        /* Stopping a stream may name it instead; starting one needs the url. */
        if (twiml__innermost(doc) == TWIML_EL_STOP) {
            if (url == NULL && name == NULL)
                twiml__invalid(doc, "<Stream> inside <Stop> needs a url or a name");
        } else if (url == NULL) {
            twiml__invalid(doc, "<Stream> needs a url");
        }
    }
    return twiml__element(doc, TWIML_EL_STREAM, stream_attrs, opts, TWIML_NO_TEXT, NULL, 1);
}

int twiml_stream_end(twiml_doc_t *doc)
{
    return twiml__end(doc, TWIML_EL_STREAM, 0);
}

int twiml_parameter(twiml_doc_t *doc, const char *name, const char *value)
{
    parameter_t p = {name, value};
    if (name == NULL || value == NULL)
        twiml__invalid(doc, "<Parameter> needs a name and a value");
    return twiml__element(doc, TWIML_EL_PARAMETER, parameter_attrs, &p, TWIML_NO_TEXT, NULL, 0);
}

int twiml_record(twiml_doc_t *doc, const twiml_record_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_RECORD, record_attrs, opts, TWIML_NO_TEXT, NULL, 0);
}

int twiml_redirect(twiml_doc_t *doc, const char *url, const twiml_redirect_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_REDIRECT, redirect_attrs, opts, TWIML_TEXT_NONEMPTY, url, 0);
}

int twiml_reject(twiml_doc_t *doc, const twiml_reject_opts_t *opts)
{
    return twiml__element(doc, TWIML_EL_REJECT, reject_attrs, opts, TWIML_NO_TEXT, NULL, 0);
}

int twiml_hangup(twiml_doc_t *doc)
{
    return twiml__element(doc, TWIML_EL_HANGUP, NULL, NULL, TWIML_NO_TEXT, NULL, 0);
}
