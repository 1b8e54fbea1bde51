/*
 * jv: jambonz verbs, written with jansson onto a JSON array the caller owns. The array is
 * the body of a webhook answer: jambonz runs its verbs in order.
 *
 *     json_t *verbs = json_array();
 *     jv_say(verbs, "Transferring you now.", NULL);
 *     jv_target_t t = {.type = JV_TARGET_SIP, .sip_uri = "sip:2000@pbx.example.com"};
 *     jv_dial(verbs, &t, 1, &(jv_dial_opts_t){.timeout = 30, .action_hook = "https://sb/jambonz/dial?attempt=0"});
 *     char *body = json_dumps(verbs, JSON_COMPACT);
 *
 * Each verb is an object {"verb": NAME, ...} with jambonz's property names and JSON types as
 * @jambonz/verb-specifications checks them (the feature server refuses the whole answer,
 * and with it the call, over one bad property). Properties come out in a fixed order.
 *
 * Every function returns 0, or -1 when `verbs` is not an array, a required argument is
 * missing or invalid, or memory runs out; on -1 the array is unchanged (a verb is built
 * whole before it is appended).
 *
 * Options (every `opts` may be NULL, meaning all unset):
 *   - strings: NULL or "" = property omitted (no property we write means anything empty;
 *     a required one is invalid). All must be UTF-8; all but the text spoken must hold no
 *     control characters, so no CR/LF reaches a SIP header (numbers, URIs, names, caller
 *     id, reason, headers, credentials, trunk) or a URL. Values are not checked against
 *     jambonz's vocabularies (voices, trunks, URL schemes) beyond what is said here;
 *   - integers: 0 = omitted, > 0 written as a JSON number, < 0 is invalid;
 *   - booleans: jv_bool_t, JV_UNSET omitted, else true / false.
 *
 * Ownership: strings are copied into the JSON before the call returns; `metadata` is
 * deep-copied. Nothing is kept. The caller owns `verbs` and everything in it.
 */
#ifndef SWITCHBOARD_JAMBONZ_VERBS_H
#define SWITCHBOARD_JAMBONZ_VERBS_H

#include <jansson.h>
#include <stddef.h>

/* jambonz rings at most this many targets of one dial at once. */
#define JV_MAX_TARGETS 10
/* SIP headers on one verb; more is invalid. */
#define JV_MAX_HEADERS 16

typedef enum { JV_UNSET = 0, JV_FALSE = 1, JV_TRUE = 2 } jv_bool_t;

/* Text to speech. `vendor` is required ("google", "elevenlabs", ...); the rest optional. */
typedef struct {
    const char *vendor, *language, *voice;
} jv_synth_t;

/* SIP digest credentials or WebSocket basic auth: both halves, or the struct not at all. */
typedef struct {
    const char *username, *password;
} jv_auth_t;

/* One SIP header: a token name (RFC 3261: letters, digits, -.!%*_+`'~) and a value. */
typedef struct {
    const char *name, *value;
} jv_header_t;

/* ---- say, pause, hangup, sip:decline, redirect ---- */

typedef struct {
    const jv_synth_t *synthesizer; /* NULL: the application's voice */
    int loop;
    jv_bool_t early_media; /* speak before answering (183 with SDP) */
} jv_say_opts_t;
/* {"verb":"say","text":...}; `text` required, non-empty. */
int jv_say(json_t *verbs, const char *text, const jv_say_opts_t *opts);

/* {"verb":"pause","length":N}; `length_s` > 0. */
int jv_pause(json_t *verbs, int length_s);

/* {"verb":"hangup"[,"headers":{...}]}; `n_headers` 0..JV_MAX_HEADERS, names distinct
 * (case-insensitively). For an answered call only: refuse an unanswered one with
 * jv_sip_decline. */
int jv_hangup(json_t *verbs, const jv_header_t *headers, size_t n_headers);

/* {"verb":"sip:decline","status":N[,"reason":...]}; `status` 400..699. */
int jv_sip_decline(json_t *verbs, int status, const char *reason);

/* {"verb":"redirect","actionHook":URL}: jambonz asks the URL for what comes next. */
int jv_redirect(json_t *verbs, const char *action_hook);

/* ---- listen ---- */

/* Audio back over the socket; jambonz streams it only with all three set. */
typedef struct {
    jv_bool_t enabled, streaming;
    int sample_rate; /* 0 omitted; else as jv_listen_opts_t.sample_rate */
} jv_bidi_t;

typedef struct {
    const char *action_hook; /* asked when listen ends */
    const char *mix_type;    /* "mono", "stereo" or "mixed"; anything else is invalid */
    int sample_rate;         /* a multiple of 8000, at most 48000 */
    const json_t *metadata;  /* an object, merged into the socket's first message; deep-copied */
    const jv_bidi_t *bidirectional_audio;
    jv_bool_t pass_dtmf; /* DTMF as text frames on the socket */
    int max_length;      /* seconds */
    jv_bool_t play_beep;
    const char *finish_on_key; /* one of 0-9 * # */
    int timeout;               /* seconds */
    const jv_auth_t *ws_auth;  /* basic auth on the WebSocket upgrade */
} jv_listen_opts_t;
/* {"verb":"listen","url":...}; `url` required: ws:// or wss:// (jambonz also resolves a path
 * against the application's URL). */
int jv_listen(json_t *verbs, const char *url, const jv_listen_opts_t *opts);

/* ---- dial ---- */

typedef enum { JV_TARGET_PHONE = 1, JV_TARGET_SIP = 2, JV_TARGET_USER = 3 } jv_target_type_t;

/*
 * phone: `number` required, `trunk` optional (the carrier; NULL: jambonz's routing).
 * sip:   `sip_uri` required, `auth` optional.
 * user:  `name` required (a user registered on jambonz, "alice@acme.sip.example.com").
 * A field the type does not use is invalid, so nothing is silently ignored by jambonz.
 */
typedef struct {
    jv_target_type_t type;
    const char *number, *sip_uri, *name, *trunk;
    const jv_auth_t *auth;
} jv_target_t;

typedef struct {
    const char *caller_id, *caller_name;
    jv_bool_t answer_on_bridge; /* only matters before the call is answered */
    int timeout;                /* ring seconds */
    int time_limit;             /* seconds of the bridged call */
    const char *action_hook;    /* asked when the dial ends (dial_call_status, ...) */
    const char *dial_music;     /* URL played to the caller while ringing */
} jv_dial_opts_t;
/* {"verb":"dial","target":[...],...}; 1..JV_MAX_TARGETS targets, rung at once. */
int jv_dial(json_t *verbs, const jv_target_t *targets, size_t n_targets, const jv_dial_opts_t *opts);

/* ---- sip:refer, config ---- */

typedef struct {
    const char *referred_by;
    const char *action_hook; /* refer_status, final_referred_call_status */
} jv_refer_opts_t;
/* {"verb":"sip:refer","referTo":...}; `refer_to` required: a sip: URI, or a number or user
 * jambonz completes with the far end's host. */
int jv_sip_refer(json_t *verbs, const char *refer_to, const jv_refer_opts_t *opts);

typedef struct {
    const jv_synth_t *synthesizer; /* the session's voice from here on */
    jv_bool_t notify_events;       /* verb:status events (WebSocket apps only) */
} jv_config_opts_t;
/* {"verb":"config",...}; at least one option set (an empty config does nothing). */
int jv_config(json_t *verbs, const jv_config_opts_t *opts);

#endif
