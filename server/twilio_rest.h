/*
 * twilio_rest: the Twilio REST API (2010-04-01 Calls) on the worker's loop, through its libcurl
 * multi handle; never blocks. Base TWILIO_API_BASE; HTTP Basic with the account SID and auth
 * token, or the API key SID and secret (the account SID stays in the path); TLS verified
 * (TWILIO_CA_FILE adds a CA, for tests); connect and total timeouts.
 *
 * A create is sent once: after the request may have reached Twilio, retrying could place a
 * second call. An update (idempotent) is retried on 429, 5xx and transport errors with capped
 * exponential backoff, honouring Retry-After.
 *
 * Each call returns an operation the caller may cancel; otherwise the callback runs exactly
 * once, on the loop, with the result (valid during the callback only). trest_free() ends every
 * pending operation with result.cancelled set, so owners can free what they attached.
 */
#ifndef SB_TWILIO_REST_H
#define SB_TWILIO_REST_H

#include <uv.h>

#include "server/config.h"
#include "server/curlm.h"

typedef struct trest trest_t;
typedef struct trest_op trest_op_t;

typedef struct trest_result {
    long http_status; /* 0: no response */
    int twilio_code;  /* Twilio's error code; 0 when none */
    char message[512];
    char more_info[256];
    char call_sid[40];
    char call_status[24];
    int transport_error; /* a CURLcode, 0 when the exchange completed */
    int timed_out;
    long retry_after_s; /* -1 when absent */
    int attempts;
    int cancelled;
} trest_result_t;

typedef void (*trest_cb)(const trest_result_t *res, void *data);

typedef struct trest_create {
    const char *to, *from, *url, *method, *status_callback;
    const char *const *status_callback_events; /* NULL-terminated */
    int timeout_s;                             /* 0: Twilio's default */
    int record;
    const char *machine_detection; /* "Enable", "DetectMessageEnd" or NULL */
    int async_amd;
    const char *async_amd_status_callback;
} trest_create_t;

typedef struct trest_update {
    const char *twiml; /* at most 4000 characters */
    const char *url;
    const char *status; /* "completed" */
} trest_update_t;

/* NULL when Twilio is not configured (simulation mode). Borrows loop, curl and cfg. */
trest_t *trest_new(uv_loop_t *loop, curlm_t *curl, const config_t *cfg);
void trest_free(trest_t *t);
size_t trest_pending(const trest_t *t);

/* NULL when the request could not even be started (the callback is not called then). */
trest_op_t *trest_create_call(trest_t *t, const trest_create_t *p, trest_cb cb, void *data);
trest_op_t *trest_update_call(trest_t *t, const char *call_sid, const trest_update_t *p, trest_cb cb, void *data);
/* Drops the operation; its callback never runs. */
void trest_cancel(trest_op_t *op);

#define TREST_TWIML_MAX 4000

#endif
