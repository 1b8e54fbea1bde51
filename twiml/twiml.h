/*
 * twiml: build a TwiML voice document and serialise it with libxml2.
 *
 *     twiml_doc_t *doc = twiml_doc_new();
 *     twiml_say(doc, "Transferring you now.", &(twiml_say_opts_t){.voice = "Polly.Amy"});
 *     twiml_dial_begin(doc, &(twiml_dial_opts_t){.answer_on_bridge = TWIML_TRUE, .timeout = 30});
 *     twiml_sip(doc, "sip:2000@pbx.example.com;transport=tcp", NULL);
 *     twiml_dial_end(doc);
 *     twiml_hangup(doc);
 *     if (twiml_finish(doc, &xml, &len) != 0) ... twiml_errmsg(doc) ...
 *     twiml_doc_free(doc);
 *
 * Every call returns the document's error (0 = TWIML_OK). The first error is
 * sticky: later calls do nothing and return it, and twiml_finish reports it,
 * so a builder may check only twiml_finish. Errors: element not allowed where
 * it is written or ending an element that is not the innermost open one
 * (TWIML_ENEST), a required argument missing (TWIML_EINVAL), text that is not
 * UTF-8 or holds characters XML cannot carry (TWIML_EUTF8, TWIML_ECHAR), an
 * element left open (TWIML_EOPEN), a Dial/Connect/Start/Stop ended empty
 * (TWIML_EEMPTY), the 64 KB limit (TWIML_ETOOBIG).
 *
 * Where elements go: <Response> is implicit. Verbs go at the top level, except
 * that <Gather> holds Say/Play/Pause; <Dial> holds Number/Sip/Client/
 * Conference/Queue (at least one; or use twiml_dial() for a bare number);
 * <Connect>, <Start> and <Stop> hold Stream (at least one); <Stream> holds
 * Parameter.
 *
 * Options (every `opts` may be NULL, meaning all unset; compound literals
 * with designated initialisers leave the rest unset):
 *   - strings: NULL = attribute omitted; "" is written as an empty value
 *     (finishOnKey="" is meaningful to Twilio);
 *   - integers: 0 = omitted; > 0 written; TWIML_ZERO writes "0" (loop="0"
 *     repeats forever, Record timeout="0" disables silence detection);
 *     other negatives are TWIML_EINVAL;
 *   - booleans: twiml_bool_t, TWIML_UNSET omitted, else "true" / "false";
 *   - lists: NULL-terminated string arrays, written space-separated; NULL or
 *     empty array omitted; an item that is empty or contains a space is
 *     TWIML_EINVAL.
 * Attribute values are not checked against Twilio's vocabularies (voice
 * names, methods, events): that is the caller's business.
 *
 * Output: `<?xml version="1.0" encoding="UTF-8"?><Response>...</Response>`,
 * no whitespace between elements (like Twilio's helper libraries). At most
 * TWIML_MAX_BYTES bytes.
 *
 * Ownership: the caller owns the twiml_doc_t (twiml_doc_free) and the string
 * from twiml_finish (free()). Strings passed in are copied (serialised)
 * before the call returns. A document is used by one thread at a time;
 * documents may be made on several threads at once: twiml_doc_new() does
 * libxml2's global init once first (twiml_library_init(), which may also be
 * called early).
 *
 * Built from twiml.c (writer) and twiml_verbs.c (vocabulary); link both and
 * libxml2.
 */
#ifndef SWITCHBOARD_TWIML_H
#define SWITCHBOARD_TWIML_H

#include <stddef.h>

/* Twilio rejects TwiML documents larger than this. */
#define TWIML_MAX_BYTES (64 * 1024)

/* Integer option value meaning "write 0" (0 itself means unset). */
#define TWIML_ZERO (-1)

typedef enum {
    TWIML_OK = 0,
    TWIML_ENOMEM = -1,  /* out of memory */
    TWIML_EINVAL = -2,  /* missing or invalid argument */
    TWIML_ENEST = -3,   /* element not allowed here / wrong element ended / already finished */
    TWIML_EOPEN = -4,   /* element still open at twiml_finish */
    TWIML_EUTF8 = -5,   /* string is not valid UTF-8 */
    TWIML_ECHAR = -6,   /* string has a character XML 1.0 cannot carry (control character) */
    TWIML_ETOOBIG = -7, /* document larger than TWIML_MAX_BYTES */
    TWIML_EXML = -8,    /* libxml2 writer failed */
    TWIML_EEMPTY = -9,  /* Dial, Connect, Start or Stop ended with nothing inside */
} twiml_err_t;

typedef enum { TWIML_UNSET = 0, TWIML_FALSE = 1, TWIML_TRUE = 2 } twiml_bool_t;

typedef struct twiml_doc twiml_doc_t;

void twiml_library_init(void);

/* NULL when out of memory. */
twiml_doc_t *twiml_doc_new(void);
void twiml_doc_free(twiml_doc_t *doc);

/*
 * Closes <Response> and hands out the document: `*out` (NUL-terminated,
 * free() it) and `*len` (may be NULL). Returns the sticky error, with `*out`
 * NULL, if anything failed. Nothing may be added afterwards (TWIML_ENEST).
 */
int twiml_finish(twiml_doc_t *doc, char **out, size_t *len);

/* Text for an error code; never NULL. */
const char *twiml_strerror(int err);
/* Detail of the document's first error ("<Number> is not allowed inside
 * <Response>"), "" if none. Valid until the document is freed. */
const char *twiml_errmsg(const twiml_doc_t *doc);

/* ---- Say, Play, Pause ---- */

typedef struct {
    const char *voice, *language;
    int loop;
} twiml_say_opts_t;
/* <Say>text</Say>; `text` required (may be ""). */
int twiml_say(twiml_doc_t *doc, const char *text, const twiml_say_opts_t *opts);

typedef struct {
    int loop;
    const char *digits;
} twiml_play_opts_t;
/* <Play>url</Play>; `url` may be NULL when opts->digits is set. */
int twiml_play(twiml_doc_t *doc, const char *url, const twiml_play_opts_t *opts);

typedef struct {
    int length;
} twiml_pause_opts_t;
int twiml_pause(twiml_doc_t *doc, const twiml_pause_opts_t *opts);

/* ---- Gather (holds Say, Play, Pause) ---- */

typedef struct {
    const char *const *input; /* {"dtmf", "speech", NULL} */
    const char *action, *method;
    int timeout;
    const char *speech_timeout; /* "auto" or seconds */
    int num_digits;
    const char *finish_on_key, *hints, *language;
} twiml_gather_opts_t;
int twiml_gather_begin(twiml_doc_t *doc, const twiml_gather_opts_t *opts);
int twiml_gather_end(twiml_doc_t *doc);

/* ---- Dial and its nouns ---- */

typedef struct {
    const char *action, *method;
    int timeout, time_limit;
    const char *caller_id;
    const char *record; /* "record-from-answer", ... */
    const char *recording_status_callback;
    const char *const *recording_status_callback_event;
    twiml_bool_t answer_on_bridge;
    const char *ring_tone;
    twiml_bool_t hangup_on_star, sequential;
} twiml_dial_opts_t;
int twiml_dial_begin(twiml_doc_t *doc, const twiml_dial_opts_t *opts);
int twiml_dial_end(twiml_doc_t *doc);
/* <Dial ...>number</Dial> in one call; `number` required, non-empty. */
int twiml_dial(twiml_doc_t *doc, const char *number, const twiml_dial_opts_t *opts);

/* The nouns' text (number, uri, identity, room, queue name) is required and non-empty. */
typedef struct {
    const char *send_digits, *url, *status_callback;
    const char *const *status_callback_event;
    const char *machine_detection;
} twiml_number_opts_t;
int twiml_number(twiml_doc_t *doc, const char *number, const twiml_number_opts_t *opts);

typedef struct {
    const char *username, *password, *url, *status_callback;
    const char *const *status_callback_event;
} twiml_sip_opts_t;
int twiml_sip(twiml_doc_t *doc, const char *uri, const twiml_sip_opts_t *opts);

typedef struct {
    const char *url, *status_callback;
    const char *const *status_callback_event;
} twiml_client_opts_t;
int twiml_client(twiml_doc_t *doc, const char *identity, const twiml_client_opts_t *opts);

typedef struct {
    twiml_bool_t start_conference_on_enter, end_conference_on_exit;
    const char *beep; /* "true", "false", "onEnter", "onExit" */
    const char *wait_url, *status_callback;
    const char *const *status_callback_event;
} twiml_conference_opts_t;
int twiml_conference(twiml_doc_t *doc, const char *room, const twiml_conference_opts_t *opts);

typedef struct {
    const char *url;
} twiml_queue_opts_t;
int twiml_queue(twiml_doc_t *doc, const char *name, const twiml_queue_opts_t *opts);

/* ---- Connect, Start, Stop (hold Stream); Stream (holds Parameter) ---- */

typedef struct {
    const char *action, *method;
} twiml_connect_opts_t;
int twiml_connect_begin(twiml_doc_t *doc, const twiml_connect_opts_t *opts);
int twiml_connect_end(twiml_doc_t *doc);

int twiml_start_begin(twiml_doc_t *doc);
int twiml_start_end(twiml_doc_t *doc);
int twiml_stop_begin(twiml_doc_t *doc);
int twiml_stop_end(twiml_doc_t *doc);

typedef struct {
    const char *url, *name, *track, *status_callback, *status_callback_method;
} twiml_stream_opts_t;
/* `opts->url` is required inside Connect and Start; inside Stop, url or name. */
int twiml_stream_begin(twiml_doc_t *doc, const twiml_stream_opts_t *opts);
int twiml_stream_end(twiml_doc_t *doc);
/* <Parameter name="" value=""/>; both required. */
int twiml_parameter(twiml_doc_t *doc, const char *name, const char *value);

/* ---- Record, Redirect, Reject, Hangup ---- */

typedef struct {
    const char *action, *method;
    int timeout;
    const char *finish_on_key;
    int max_length;
    twiml_bool_t play_beep;
    const char *trim; /* "trim-silence", "do-not-trim" */
    const char *recording_status_callback;
    const char *const *recording_status_callback_event;
    twiml_bool_t transcribe;
} twiml_record_opts_t;
int twiml_record(twiml_doc_t *doc, const twiml_record_opts_t *opts);

typedef struct {
    const char *method;
} twiml_redirect_opts_t;
/* <Redirect>url</Redirect>; `url` required, non-empty. */
int twiml_redirect(twiml_doc_t *doc, const char *url, const twiml_redirect_opts_t *opts);

typedef struct {
    const char *reason; /* "rejected", "busy" */
} twiml_reject_opts_t;
int twiml_reject(twiml_doc_t *doc, const twiml_reject_opts_t *opts);

int twiml_hangup(twiml_doc_t *doc);

#endif
