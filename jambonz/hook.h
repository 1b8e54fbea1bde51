/*
 * jhook: what jambonz POSTs to our call, status and action hooks: the JSON body parsed into
 * fixed-size fields, and its Jambonz-Signature checked.
 *
 * Body: one JSON object with snake_case keys (the feature server snake-cases the call fields
 * and a verb's results before sending). Only the fields below are read; every other key
 * (sip, env_vars, customerData, trace_id, ...) is ignored, whatever its type. A null value
 * counts as absent.
 *   - call_sid, account_sid, application_sid, dial_call_sid: 1..JHOOK_SID_MAX characters of
 *     [A-Za-z0-9._-] (jambonz sends UUIDs); call_sid is required.
 *   - other strings: at most the field's size - 1 bytes of UTF-8 without control characters;
 *     absent is "".
 *   - integers: a JSON integer 0..INT_MAX, or a string of 1..9 ASCII digits (jambonz sends
 *     final_referred_call_status as the digits it cut from a NOTIFY); absent is -1. Reals,
 *     signs, booleans are wrong types.
 * The body must be at most JHOOK_BODY_MAX bytes of JSON with no duplicate keys and no NUL
 * character in a string (a duplicate key could make us read another value than the one an
 * intermediary checked).
 *
 * Signature (jambonz-feature-server BaseRequestor._generateSigHeader; checked as
 * @jambonz/node-client verifyJambonzSignature and @jambonz/sdk verifySignature do):
 *     Jambonz-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]
 * v1 is the lowercase hex HMAC-SHA256, keyed with the account's webhook secret, of
 * "<t as written>.<raw body>" (the feature server signs the very JSON string it POSTs; a GET
 * hook carries no body, so hooks must be POST). Any v1 may match (a secret being rotated);
 * matching is constant-time (CRYPTO_memcmp). Items are comma-separated key=value with
 * nothing around them (as the official parsers read them: " v1" is another key); unknown
 * keys are ignored.
 * Refused as malformed: more than JHOOK_SIG_HEADER_MAX bytes, more than JHOOK_SIG_MAX_ITEMS
 * items or JHOOK_SIG_MAX_V1 v1 values, an item that is not key=value, no t or a second one,
 * t not 1..12 digits, no v1, a v1 that is not 64 lowercase hex digits, a control character.
 * A timestamp more than JHOOK_SIG_TOLERANCE seconds from `now`, past or future, is stale
 * (checked before the HMAC). An empty secret never validates (mismatch).
 *
 * Ownership: nothing is allocated that outlives a call; results go to caller storage; the
 * strings returned through `bad_field` and by the strerror functions are static.
 * Thread-safe.
 */
#ifndef SWITCHBOARD_JAMBONZ_HOOK_H
#define SWITCHBOARD_JAMBONZ_HOOK_H

#include <stddef.h>
#include <stdint.h>

#define JHOOK_BODY_MAX   (256 * 1024) /* the INVITE in "sip" makes bodies of a few KB */
#define JHOOK_SID_MAX    63
#define JHOOK_STR_MAX    255 /* from, to, caller_name, call_id */
#define JHOOK_WORD_MAX   31  /* direction, statuses, digits */
#define JHOOK_REASON_MAX 127

enum {
    JHOOK_OK = 0,
    JHOOK_EJSON = -1,    /* not JSON (syntax, duplicate key, NUL in a string), or out of memory */
    JHOOK_EOBJECT = -2,  /* JSON, but not an object */
    JHOOK_EMISSING = -3, /* a required field is absent or null: *bad_field names it */
    JHOOK_EFIELD = -4,   /* a field has the wrong type, is too long or has characters it may not: *bad_field */
    JHOOK_ETOOBIG = -5,  /* body longer than JHOOK_BODY_MAX */
};

typedef struct {
    char call_sid[JHOOK_SID_MAX + 1];
    char direction[JHOOK_WORD_MAX + 1]; /* "inbound", "outbound" */
    char from[JHOOK_STR_MAX + 1];
    char to[JHOOK_STR_MAX + 1];
    char caller_name[JHOOK_STR_MAX + 1];
    char call_id[JHOOK_STR_MAX + 1]; /* the SIP Call-ID */
    /* trying, ringing, early-media, in-progress, completed, failed, busy, no-answer, queued */
    char call_status[JHOOK_WORD_MAX + 1];
    char account_sid[JHOOK_SID_MAX + 1];
    char application_sid[JHOOK_SID_MAX + 1];
    int sip_status;
    char sip_reason[JHOOK_REASON_MAX + 1];
    int duration;                                 /* seconds, on completed */
    char call_termination_by[JHOOK_WORD_MAX + 1]; /* "caller", "jambonz" */
    /* dial's actionHook */
    char dial_call_status[JHOOK_WORD_MAX + 1]; /* completed, busy, no-answer, failed */
    int dial_sip_status;
    char dial_call_sid[JHOOK_SID_MAX + 1];
    /* listen's actionHook */
    int dial_call_duration;
    char digits[JHOOK_WORD_MAX + 1]; /* the finishOnKey pressed */
    /* sip:refer's actionHook */
    int refer_status;
    int final_referred_call_status;
} jhook_t;

/*
 * Parses `body` (`len` bytes, need not be NUL-terminated) into `*out`. Returns JHOOK_OK or a
 * JHOOK_E* code; on error `*out` holds the absent values ("" and -1) and, for EMISSING and
 * EFIELD, `*bad_field` (may be NULL) the field's name; otherwise `*bad_field` is NULL.
 */
int jhook_parse(const char *body, size_t len, jhook_t *out, const char **bad_field);

/* Static text for a JHOOK_* code; never NULL. */
const char *jhook_strerror(int err);

#define JHOOK_SIG_TOLERANCE  300 /* seconds, either way */
#define JHOOK_SIG_HEADER_MAX 1024
#define JHOOK_SIG_MAX_ITEMS  16
#define JHOOK_SIG_MAX_V1     8
#define JHOOK_SIGN_SIZE      96 /* room for jhook_sign's header value and its NUL */

typedef enum {
    JHOOK_SIG_OK = 0,
    JHOOK_SIG_MISSING,   /* no header (NULL or empty) */
    JHOOK_SIG_MALFORMED, /* see above */
    JHOOK_SIG_STALE,     /* timestamp outside the tolerance */
    JHOOK_SIG_MISMATCH,  /* no v1 matches (also: empty secret, crypto failure) */
} jhook_sig_t;

/* `header` is the Jambonz-Signature value (`header_len` bytes, need not be NUL-terminated);
 * `body` the raw request body; `now` the current unix time in seconds. */
jhook_sig_t jhook_verify(const char *secret, const char *header, size_t header_len, const void *body, size_t body_len,
                         int64_t now);

/* Static text for a jhook_sig_t; never NULL. */
const char *jhook_sig_strerror(jhook_sig_t r);

/*
 * Writes the header value jambonz would send, "t=<t>,v1=<hex>", into `out` (`outsz` bytes,
 * JHOOK_SIGN_SIZE is enough), NUL-terminated. For tests and the simulator. Returns 0, or -1
 * for an empty secret, t outside 0..999999999999, a short buffer or a crypto failure.
 */
int jhook_sign(const char *secret, int64_t t, const void *body, size_t body_len, char *out, size_t outsz);

#endif
