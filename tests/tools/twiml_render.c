/*
 * twiml_render: renders a JSON description of TwiML verbs through twiml/ and
 * prints the document. The differential test (tests/integration/
 * twiml_diff.test.mjs) compares the output with what Twilio's own helper
 * library renders for the same verbs.
 *
 *     echo '[{"verb": "Say", "attrs": {"voice": "alice", "loop": 2}, "text": "Hi"},
 *            {"verb": "Dial", "attrs": {"answerOnBridge": true},
 *             "children": [{"verb": "Sip", "text": "sip:2000@pbx.example.com"}]}]' | twiml_render
 *
 * Stdin: a JSON array of nodes {"verb": NAME, "attrs": {...}, "text": "...",
 * "children": [...]} (nouns and nested verbs use the same shape, "verb" naming
 * the element). Attribute names are TwiML's; values are JSON strings, integers
 * (>= 0; 0 writes "0"), booleans or arrays of strings, by attribute. <Dial>
 * with "text" and no children is the bare-number form. Stdout: the document.
 * Exit 0, or 1 with the reason on stderr for anything not understood (unknown
 * verb, key or attribute, wrong type) or refused by the writer: nothing is
 * dropped silently.
 */
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twiml/twiml.h"

typedef enum { A_STR, A_INT, A_BOOL, A_LIST } atype_t;

/* One attribute: TwiML name, JSON type wanted, offset of its field in the element's options struct. */
typedef struct {
    const char *name;
    atype_t type;
    size_t off;
} attr_t;

typedef struct {
    const char *name, *value;
} param_opts_t;

/* Every element's options; each table's offsets are into its own member. */
typedef union {
    twiml_say_opts_t say;
    twiml_play_opts_t play;
    twiml_pause_opts_t pause;
    twiml_gather_opts_t gather;
    twiml_dial_opts_t dial;
    twiml_number_opts_t number;
    twiml_sip_opts_t sip;
    twiml_client_opts_t client;
    twiml_conference_opts_t conference;
    twiml_queue_opts_t queue;
    twiml_connect_opts_t connect;
    twiml_stream_opts_t stream;
    param_opts_t param;
    twiml_record_opts_t record;
    twiml_redirect_opts_t redirect;
    twiml_reject_opts_t reject;
} opts_t;

// clang-format off
#define S(T, f, n) {n, A_STR, offsetof(T, f)}
#define I(T, f, n) {n, A_INT, offsetof(T, f)}
#define B(T, f, n) {n, A_BOOL, offsetof(T, f)}
#define L(T, f, n) {n, A_LIST, offsetof(T, f)}
#define END        {NULL, A_STR, 0}

static const attr_t say_attrs[] = {
    S(twiml_say_opts_t, voice, "voice"), S(twiml_say_opts_t, language, "language"),
    I(twiml_say_opts_t, loop, "loop"), END};
static const attr_t play_attrs[] = {I(twiml_play_opts_t, loop, "loop"), S(twiml_play_opts_t, digits, "digits"), END};
static const attr_t pause_attrs[] = {I(twiml_pause_opts_t, length, "length"), END};
static const attr_t gather_attrs[] = {
    L(twiml_gather_opts_t, input, "input"), S(twiml_gather_opts_t, action, "action"),
    S(twiml_gather_opts_t, method, "method"), I(twiml_gather_opts_t, timeout, "timeout"),
    S(twiml_gather_opts_t, speech_timeout, "speechTimeout"), I(twiml_gather_opts_t, num_digits, "numDigits"),
    S(twiml_gather_opts_t, finish_on_key, "finishOnKey"), S(twiml_gather_opts_t, hints, "hints"),
    S(twiml_gather_opts_t, language, "language"), END};
static const attr_t dial_attrs[] = {
    S(twiml_dial_opts_t, action, "action"), S(twiml_dial_opts_t, method, "method"),
    I(twiml_dial_opts_t, timeout, "timeout"), I(twiml_dial_opts_t, time_limit, "timeLimit"),
    S(twiml_dial_opts_t, caller_id, "callerId"), S(twiml_dial_opts_t, record, "record"),
    S(twiml_dial_opts_t, recording_status_callback, "recordingStatusCallback"),
    L(twiml_dial_opts_t, recording_status_callback_event, "recordingStatusCallbackEvent"),
    B(twiml_dial_opts_t, answer_on_bridge, "answerOnBridge"), S(twiml_dial_opts_t, ring_tone, "ringTone"),
    B(twiml_dial_opts_t, hangup_on_star, "hangupOnStar"), B(twiml_dial_opts_t, sequential, "sequential"), END};
static const attr_t number_attrs[] = {
    S(twiml_number_opts_t, send_digits, "sendDigits"), S(twiml_number_opts_t, url, "url"),
    S(twiml_number_opts_t, status_callback, "statusCallback"),
    L(twiml_number_opts_t, status_callback_event, "statusCallbackEvent"),
    S(twiml_number_opts_t, machine_detection, "machineDetection"), END};
static const attr_t sip_attrs[] = {
    S(twiml_sip_opts_t, username, "username"), S(twiml_sip_opts_t, password, "password"),
    S(twiml_sip_opts_t, url, "url"), S(twiml_sip_opts_t, status_callback, "statusCallback"),
    L(twiml_sip_opts_t, status_callback_event, "statusCallbackEvent"), END};
static const attr_t client_attrs[] = {
    S(twiml_client_opts_t, url, "url"), S(twiml_client_opts_t, status_callback, "statusCallback"),
    L(twiml_client_opts_t, status_callback_event, "statusCallbackEvent"), END};
static const attr_t conference_attrs[] = {
    B(twiml_conference_opts_t, start_conference_on_enter, "startConferenceOnEnter"),
    B(twiml_conference_opts_t, end_conference_on_exit, "endConferenceOnExit"),
    S(twiml_conference_opts_t, beep, "beep"), S(twiml_conference_opts_t, wait_url, "waitUrl"),
    S(twiml_conference_opts_t, status_callback, "statusCallback"),
    L(twiml_conference_opts_t, status_callback_event, "statusCallbackEvent"), END};
static const attr_t queue_attrs[] = {S(twiml_queue_opts_t, url, "url"), END};
static const attr_t connect_attrs[] = {
    S(twiml_connect_opts_t, action, "action"), S(twiml_connect_opts_t, method, "method"), END};
static const attr_t stream_attrs[] = {
    S(twiml_stream_opts_t, url, "url"), S(twiml_stream_opts_t, name, "name"), S(twiml_stream_opts_t, track, "track"),
    S(twiml_stream_opts_t, status_callback, "statusCallback"),
    S(twiml_stream_opts_t, status_callback_method, "statusCallbackMethod"), END};
static const attr_t param_attrs[] = {S(param_opts_t, name, "name"), S(param_opts_t, value, "value"), END};
static const attr_t record_attrs[] = {
    S(twiml_record_opts_t, action, "action"), S(twiml_record_opts_t, method, "method"),
    I(twiml_record_opts_t, timeout, "timeout"), S(twiml_record_opts_t, finish_on_key, "finishOnKey"),
    I(twiml_record_opts_t, max_length, "maxLength"), B(twiml_record_opts_t, play_beep, "playBeep"),
    S(twiml_record_opts_t, trim, "trim"),
    S(twiml_record_opts_t, recording_status_callback, "recordingStatusCallback"),
    L(twiml_record_opts_t, recording_status_callback_event, "recordingStatusCallbackEvent"),
    B(twiml_record_opts_t, transcribe, "transcribe"), END};
static const attr_t redirect_attrs[] = {S(twiml_redirect_opts_t, method, "method"), END};
static const attr_t reject_attrs[] = {S(twiml_reject_opts_t, reason, "reason"), END};
static const attr_t no_attrs[] = {END};

typedef enum {
    E_SAY, E_PLAY, E_PAUSE, E_GATHER, E_DIAL, E_NUMBER, E_SIP, E_CLIENT, E_CONFERENCE, E_QUEUE,
    E_CONNECT, E_START, E_STOP, E_STREAM, E_PARAMETER, E_RECORD, E_REDIRECT, E_REJECT, E_HANGUP,
} el_t;
// clang-format on

/* Each element: its name, attributes, whether it takes "text" and "children". */
static const struct {
    const char *name;
    const attr_t *attrs;
    int text, container;
} elements[] = {
    [E_SAY] = {"Say", say_attrs, 1, 0},
    [E_PLAY] = {"Play", play_attrs, 1, 0},
    [E_PAUSE] = {"Pause", pause_attrs, 0, 0},
    [E_GATHER] = {"Gather", gather_attrs, 0, 1},
    [E_DIAL] = {"Dial", dial_attrs, 1, 1},
    [E_NUMBER] = {"Number", number_attrs, 1, 0},
    [E_SIP] = {"Sip", sip_attrs, 1, 0},
    [E_CLIENT] = {"Client", client_attrs, 1, 0},
    [E_CONFERENCE] = {"Conference", conference_attrs, 1, 0},
    [E_QUEUE] = {"Queue", queue_attrs, 1, 0},
    [E_CONNECT] = {"Connect", connect_attrs, 0, 1},
    [E_START] = {"Start", no_attrs, 0, 1},
    [E_STOP] = {"Stop", no_attrs, 0, 1},
    [E_STREAM] = {"Stream", stream_attrs, 0, 1},
    [E_PARAMETER] = {"Parameter", param_attrs, 0, 0},
    [E_RECORD] = {"Record", record_attrs, 0, 0},
    [E_REDIRECT] = {"Redirect", redirect_attrs, 1, 0},
    [E_REJECT] = {"Reject", reject_attrs, 0, 0},
    [E_HANGUP] = {"Hangup", no_attrs, 0, 0},
};
#define N_ELEMENTS (sizeof elements / sizeof elements[0])

/* Most list attributes one element has (each has at most one today). */
#define MAX_LISTS 2

static const char *path_of(const char *path)
{
    return path[0] != '\0' ? path : "(top)";
}

/* A JSON string (jansson refuses \u0000 unless asked, so it is a whole C string). */
static const char *string_of(const json_t *v, const char *path, const char *what)
{
    if (!json_is_string(v)) {
        fprintf(stderr, "twiml_render: %s: %s must be a string\n", path_of(path), what);
        return NULL;
    }
    return json_string_value(v);
}

/* Sets one attribute in `opts` from JSON; a list is malloc'd into `*list` (NULL-terminated). */
static int set_attr(const attr_t *a, const json_t *v, opts_t *opts, const char ***list, const char *path)
{
    char *field = (char *)opts + a->off;
    switch (a->type) {
    case A_STR:
        return (*(const char **)field = string_of(v, path, a->name)) != NULL ? 0 : -1;
    case A_INT:
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX) {
            fprintf(stderr, "twiml_render: %s: %s must be an integer from 0 to %d\n", path, a->name, INT_MAX);
            return -1;
        }
        *(int *)field = json_integer_value(v) == 0 ? TWIML_ZERO : (int)json_integer_value(v);
        return 0;
    case A_BOOL:
        if (!json_is_boolean(v)) {
            fprintf(stderr, "twiml_render: %s: %s must be true or false\n", path, a->name);
            return -1;
        }
        *(twiml_bool_t *)field = json_is_true(v) ? TWIML_TRUE : TWIML_FALSE;
        return 0;
    case A_LIST:
        if (!json_is_array(v)) {
            fprintf(stderr, "twiml_render: %s: %s must be an array of strings\n", path, a->name);
            return -1;
        }
        if ((*list = calloc(json_array_size(v) + 1, sizeof **list)) == NULL) {
            fprintf(stderr, "twiml_render: out of memory\n");
            return -1;
        }
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (!json_is_string(json_array_get(v, i))) {
                fprintf(stderr, "twiml_render: %s: %s must be an array of strings\n", path, a->name);
                return -1;
            }
            (*list)[i] = json_string_value(json_array_get(v, i));
        }
        *(const char *const **)field = *list;
        return 0;
    }
    return -1;
}

static int fill_opts(el_t el, const json_t *attrs, opts_t *opts, const char **lists[MAX_LISTS], const char *path)
{
    const char *key;
    json_t *v;
    int nlists = 0;
    if (attrs == NULL)
        return 0;
    if (!json_is_object(attrs)) {
        fprintf(stderr, "twiml_render: %s: attrs must be an object\n", path);
        return -1;
    }
    json_object_foreach((json_t *)attrs, key, v)
    {
        const attr_t *a = elements[el].attrs;
        while (a->name != NULL && strcmp(a->name, key) != 0)
            a++;
        if (a->name == NULL) {
            fprintf(stderr, "twiml_render: %s: <%s> has no attribute \"%s\"\n", path, elements[el].name, key);
            return -1;
        }
        if (a->type == A_LIST && nlists == MAX_LISTS) {
            fprintf(stderr, "twiml_render: %s: too many list attributes\n", path);
            return -1;
        }
        if (set_attr(a, v, opts, a->type == A_LIST ? &lists[nlists++] : NULL, path) != 0)
            return -1;
    }
    return 0;
}

/* Writes the element's start (containers) or the whole element (the others). */
static int begin(twiml_doc_t *doc, el_t el, const char *text, const opts_t *o)
{
    switch (el) {
    case E_SAY:
        return twiml_say(doc, text, &o->say);
    case E_PLAY:
        return twiml_play(doc, text, &o->play);
    case E_PAUSE:
        return twiml_pause(doc, &o->pause);
    case E_GATHER:
        return twiml_gather_begin(doc, &o->gather);
    case E_DIAL:
        return text == NULL ? twiml_dial_begin(doc, &o->dial) : twiml_dial(doc, text, &o->dial);
    case E_NUMBER:
        return twiml_number(doc, text, &o->number);
    case E_SIP:
        return twiml_sip(doc, text, &o->sip);
    case E_CLIENT:
        return twiml_client(doc, text, &o->client);
    case E_CONFERENCE:
        return twiml_conference(doc, text, &o->conference);
    case E_QUEUE:
        return twiml_queue(doc, text, &o->queue);
    case E_CONNECT:
        return twiml_connect_begin(doc, &o->connect);
    case E_START:
        return twiml_start_begin(doc);
    case E_STOP:
        return twiml_stop_begin(doc);
    case E_STREAM:
        return twiml_stream_begin(doc, &o->stream);
    case E_PARAMETER:
        return twiml_parameter(doc, o->param.name, o->param.value);
    case E_RECORD:
        return twiml_record(doc, &o->record);
    case E_REDIRECT:
        return twiml_redirect(doc, text, &o->redirect);
    case E_REJECT:
        return twiml_reject(doc, &o->reject);
    case E_HANGUP:
        return twiml_hangup(doc);
    }
    return TWIML_EINVAL;
}

static int end(twiml_doc_t *doc, el_t el)
{
    switch (el) {
    case E_GATHER:
        return twiml_gather_end(doc);
    case E_DIAL:
        return twiml_dial_end(doc);
    case E_CONNECT:
        return twiml_connect_end(doc);
    case E_START:
        return twiml_start_end(doc);
    case E_STOP:
        return twiml_stop_end(doc);
    case E_STREAM:
        return twiml_stream_end(doc);
    default:
        return TWIML_OK; /* leaves are complete after begin() */
    }
}

static int writer_failed(twiml_doc_t *doc, int rc, const char *path)
{
    fprintf(stderr, "twiml_render: %s: %s: %s\n", path_of(path), twiml_strerror(rc), twiml_errmsg(doc));
    return -1;
}

static int render_nodes(twiml_doc_t *doc, const json_t *nodes, const char *path);

/* Renders one node; `path` (like "[1].children[0]") names it in messages. */
static int render_node(twiml_doc_t *doc, const json_t *node, const char *path)
{
    const json_t *verb, *attrs, *textv, *children;
    const char *key, *text = NULL, **lists[MAX_LISTS] = {NULL};
    json_t *v;
    opts_t opts;
    size_t el;
    int rc = -1, wrc;

    if (!json_is_object(node)) {
        fprintf(stderr, "twiml_render: %s: a node must be an object\n", path);
        return -1;
    }
    json_object_foreach((json_t *)node, key, v)
    {
        if (strcmp(key, "verb") != 0 && strcmp(key, "attrs") != 0 && strcmp(key, "text") != 0 &&
            strcmp(key, "children") != 0) {
            fprintf(stderr, "twiml_render: %s: unknown key \"%s\" (verb, attrs, text, children)\n", path, key);
            return -1;
        }
    }
    verb = json_object_get(node, "verb");
    attrs = json_object_get(node, "attrs");
    textv = json_object_get(node, "text");
    children = json_object_get(node, "children");
    if (string_of(verb, path, "verb") == NULL)
        return -1;
    for (el = 0; el < N_ELEMENTS && strcmp(elements[el].name, json_string_value(verb)) != 0; el++)
        ;
    if (el == N_ELEMENTS) {
        fprintf(stderr, "twiml_render: %s: unknown verb \"%s\"\n", path, json_string_value(verb));
        return -1;
    }
    if (textv != NULL && !elements[el].text) {
        fprintf(stderr, "twiml_render: %s: <%s> takes no text\n", path, elements[el].name);
        return -1;
    }
    if (children != NULL && (!elements[el].container || !json_is_array(children))) {
        fprintf(stderr, "twiml_render: %s: <%s> %s\n", path, elements[el].name,
                elements[el].container ? "children must be an array" : "takes no children");
        return -1;
    }
    if (el == E_DIAL && textv != NULL && children != NULL) {
        fprintf(stderr, "twiml_render: %s: <Dial> takes text (a bare number) or children, not both\n", path);
        return -1;
    }
    if (textv != NULL && (text = string_of(textv, path, "text")) == NULL)
        return -1;

    memset(&opts, 0, sizeof opts);
    if (fill_opts(el, attrs, &opts, lists, path) == 0) {
        if ((wrc = begin(doc, el, text, &opts)) != TWIML_OK)
            writer_failed(doc, wrc, path);
        else if (!elements[el].container || (el == E_DIAL && text != NULL))
            rc = 0;
        else if (render_nodes(doc, children, path) == 0) /* a child's failure is already reported */
            rc = (wrc = end(doc, el)) == TWIML_OK ? 0 : writer_failed(doc, wrc, path);
    }
    for (int i = 0; i < MAX_LISTS; i++)
        free(lists[i]);
    return rc;
}

/* Renders an array of nodes (NULL: none); stops at the first failure. */
static int render_nodes(twiml_doc_t *doc, const json_t *nodes, const char *path)
{
    char sub[512];
    size_t i;
    json_t *node;
    json_array_foreach((json_t *)nodes, i, node)
    {
        snprintf(sub, sizeof sub, "%s%s[%zu]", path, path[0] != '\0' ? ".children" : "", i);
        if (render_node(doc, node, sub) != 0)
            return -1;
    }
    return 0;
}

int main(void)
{
    json_error_t jerr;
    json_t *root = json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);
    twiml_doc_t *doc = NULL;
    char *xml = NULL;
    size_t len = 0;
    int rc, status = 1;

    if (root == NULL) {
        fprintf(stderr, "twiml_render: bad JSON on stdin, line %d: %s\n", jerr.line, jerr.text);
        return 1;
    }
    if (!json_is_array(root)) {
        fprintf(stderr, "twiml_render: stdin must be a JSON array of verbs\n");
    } else if ((doc = twiml_doc_new()) == NULL) {
        fprintf(stderr, "twiml_render: out of memory\n");
    } else if (render_nodes(doc, root, "") == 0) {
        if ((rc = twiml_finish(doc, &xml, &len)) != TWIML_OK)
            writer_failed(doc, rc, "");
        else if (fwrite(xml, 1, len, stdout) != len || fflush(stdout) != 0)
            perror("twiml_render: stdout");
        else
            status = 0;
    }
    free(xml);
    twiml_doc_free(doc);
    json_decref(root);
    return status;
}
