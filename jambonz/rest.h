/*
 * jrest: the jambonz REST API (jambonz-api-server, /v1) on the worker's loop, through its libcurl
 * multi handle; never blocks. Base JAMBONZ_API_BASE; "Authorization: Bearer JAMBONZ_API_KEY"; JSON
 * bodies (Content-Type: application/json); TLS verified (JAMBONZ_CA_FILE adds a CA, for tests);
 * the connect and total timeouts are TWILIO_CONNECT_TIMEOUT_MS and TWILIO_TIMEOUT_MS (one pair
 * of settings for every telephony REST API; 3000 and 10000 ms when a config leaves them 0).
 *
 *   create: POST {base}/v1/Accounts/{account_sid}/Calls -> 201 {"sid", "callId"}
 *   update: PUT  {base}/v1/Accounts/{account_sid}/Calls/{call_sid} -> 202 (200 with a body)
 *
 * A create is sent once, on a connection of its own: after the request may have reached jambonz,
 * retrying could place a second call. An update is retried on 429, 5xx and transport errors with
 * capped exponential backoff, honouring Retry-After (capped at 10 s).
 *
 * Errors: jambonz answers {"msg": "..."} (400, 403, 422, 500), {"errors": [{"msg", ...}]} (a
 * feature server's validation) or plain text ("Unauthorized" 401, "Not Found" 404 for a call it
 * does not know, "call session is gone for call_sid ..." 422 for one that has ended, "Too many
 * requests, please try again later." 429): result.message holds whichever came.
 *
 * Each call returns an operation the caller may cancel; otherwise the callback runs exactly
 * once, on the loop, with the result (valid during the callback only). jrest_free() ends every
 * pending operation with result.cancelled set, so owners can free what they attached.
 */
#ifndef SB_JAMBONZ_REST_H
#define SB_JAMBONZ_REST_H

#include <jansson.h>
#include <uv.h>

#include "server/config.h"
#include "server/curlm.h"

typedef struct jrest jrest_t;
typedef struct jrest_op jrest_op_t;

typedef struct jrest_result {
    long http_status; /* 0: no response */
    char message[512];
    char call_sid[64];   /* create: the new call's sid (a UUID) */
    char call_id[256];   /* create: the SIP Call-ID of its INVITE, when jambonz gave it */
    int transport_error; /* a CURLcode, 0 when the exchange completed */
    int timed_out;
    long retry_after_s; /* -1 when absent */
    int attempts;
    int cancelled;
} jrest_result_t;

typedef void (*jrest_cb)(const jrest_result_t *res, void *data);

/* The callee, as jambonz's "to": phone (a number; trunk: the carrier to go out through), sip
 * (a full sip: URI) or user (a registered SIP user's name, the account's realm appended). */
typedef enum { JREST_TO_PHONE = 0, JREST_TO_SIP, JREST_TO_USER } jrest_to_type_t;

typedef struct jrest_create {
    const char *from;        /* required: the calling number */
    const char *caller_name; /* NULL: none */
    jrest_to_type_t to_type;
    const char *to;                   /* required: the number, sip URI or user name */
    const char *trunk;                /* phone only; NULL: jambonz picks the carrier */
    const char *call_hook_url;        /* required without application_sid: the answered call's webhook (POST) */
    const char *call_status_hook_url; /* NULL: no status callbacks (POST) */
    int timeout_s;                    /* ring time; 0: jambonz's default (60) */
    int time_limit_s;                 /* longest call; 0: none */
    const json_t *tag;                /* an object (copied) jambonz keeps on the call; NULL: none */
    /* jambonz needs either an application, whose hooks and speech settings then replace the
     * ones above, or the call's default speech settings: without an application, a NULL field
     * sends JREST_DEFAULT_*. */
    const char *application_sid;
    const char *synthesizer_vendor, *synthesizer_language, *synthesizer_voice;
    const char *recognizer_vendor, *recognizer_language;
} jrest_create_t;

#define JREST_DEFAULT_SYNTH_VENDOR   "google"
#define JREST_DEFAULT_SYNTH_LANGUAGE "en-US"
#define JREST_DEFAULT_SYNTH_VOICE    "en-US-Standard-C"
#define JREST_DEFAULT_RECOG_VENDOR   "google"
#define JREST_DEFAULT_RECOG_LANGUAGE "en-US"

/* Exactly one of the two: jambonz refuses an update that asks for several things. */
typedef struct jrest_update {
    const char *call_hook_url; /* new instructions: jambonz POSTs here and runs the verbs answered */
    const char *call_status;   /* "completed" (hang up an answered call) or "no-answer" (a ringing one) */
} jrest_update_t;

/* NULL when the REST API is off (jambonz_api_base unset) or its settings are unusable.
 * Borrows loop, curl and cfg. */
jrest_t *jrest_new(uv_loop_t *loop, curlm_t *curl, const config_t *cfg);
void jrest_free(jrest_t *j);
size_t jrest_pending(const jrest_t *j);

/* 1 when s may go into the path as a call sid: 1 to 63 of [A-Za-z0-9._-], not "." or "..". */
int jrest_valid_sid(const char *s);

/* NULL when the request could not even be started or the parameters are invalid (a missing
 * required field, a call sid jrest_valid_sid() refuses, not exactly one update); the callback
 * is not called then. */
jrest_op_t *jrest_create_call(jrest_t *j, const jrest_create_t *p, jrest_cb cb, void *data);
jrest_op_t *jrest_update_call(jrest_t *j, const char *call_sid, const jrest_update_t *p, jrest_cb cb, void *data);
/* Drops the operation; its callback never runs. */
void jrest_cancel(jrest_op_t *op);

#endif
