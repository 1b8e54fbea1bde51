/*
 * sig: Twilio's X-Twilio-Signature, computed the way Twilio's helper libraries do
 * (twilio-node getExpectedTwilioSignature / validateRequest / validateRequestWithBody).
 *
 * data = URL exactly as given (no case or escape normalisation), then for a form body every
 * distinct (key, value) pair sorted bytewise by key and, within one key, by value, each
 * appended as key immediately followed by value (exact duplicate pairs count once);
 * signature = base64(HMAC-SHA1(auth_token, data)). Bytewise order is twilio-python's; JS's
 * UTF-16 order differs only between U+E000..U+FFFF and characters above U+FFFF.
 *
 * Validation accepts the signature for the URL as given and for the same URL with its port
 * toggled: without a port, ":443" (https) or ":80" (any other scheme) added after the host;
 * with a port, the port removed. JSON bodies: the URL's query carries
 * bodySHA256=<lowercase hex SHA-256 of the raw body> (first occurrence, form-decoded); the
 * signature covers the URL alone, and the hash must match too.
 *
 * Comparisons are constant-time (CRYPTO_memcmp) over the fixed signature length; the port
 * variant is only tried when the URL as given does not match. An empty auth token never
 * validates. At most SIG_MAX_PARAMS params are signed; more is an error.
 *
 * Ownership: every output goes to a caller buffer. Each calling thread keeps one HMAC context
 * keyed with the last auth token it used (and a copy of that token), freed when the thread
 * ends. All strings are NUL-terminated except where a length is passed.
 */
#ifndef SB_SIG_H
#define SB_SIG_H

#include <stddef.h>

#include "server/form.h"

#define SIG_LEN        28 /* base64 of a 20-byte HMAC-SHA1, without NUL */
#define SIG_SHA256_HEX 64 /* lowercase hex SHA-256, without NUL */
#define SIG_MAX_PARAMS FORM_MAX_PAIRS

enum {
    SIG_OK = 0,
    SIG_ECRYPTO = -1,  /* OpenSSL failure */
    SIG_ETOOMANY = -2, /* more than SIG_MAX_PARAMS params */
    SIG_ETOKEN = -3,   /* empty auth token */
    SIG_ETOOLONG = -4, /* sig_build_url: result does not fit the buffer */
    SIG_EBASE = -5,    /* sig_build_url: base is not http(s)://host[/prefix] */
    SIG_ETARGET = -6,  /* sig_build_url: NUL byte in the request target */
};

/*
 * Signature over url (exactly as given, no port variants) and params (NULL: none, as for a
 * JSON body). out receives SIG_LEN chars and a NUL. Returns SIG_OK or an error.
 */
int sig_compute(const char *auth_token, const char *url, const form_t *params, char out[SIG_LEN + 1]);

/* Lowercase hex SHA-256 of body into out (SIG_SHA256_HEX chars and a NUL). */
int sig_body_sha256_hex(const void *body, size_t body_len, char out[SIG_SHA256_HEX + 1]);

/*
 * X-Twilio-Signature header value (signature, sig_len; need not be NUL-terminated) checked
 * against url and the parsed form body (params may be NULL). Returns 1 valid, 0 invalid or
 * on any error.
 */
int sig_validate_form(const char *auth_token, const char *url, const form_t *params, const char *signature,
                      size_t sig_len);

/* JSON body: signature over url without params, and bodySHA256 in url's query must match body. 1 or 0. */
int sig_validate_json(const char *auth_token, const char *url, const void *body, size_t body_len, const char *signature,
                      size_t sig_len);

/*
 * The URL Twilio signed: base (PUBLIC_BASE_URL, "https://host[:port][/prefix]", trailing '/'
 * ignored) followed by target (the raw request target, path and query, "/twilio/voice?x=1";
 * a missing leading '/' is added). Writes into buf (buf_size bytes, NUL-terminated) and the
 * length to *len (may be NULL). Returns SIG_OK, SIG_EBASE, SIG_ETARGET or SIG_ETOOLONG.
 */
int sig_build_url(char *buf, size_t buf_size, const char *base, const char *target, size_t target_len, size_t *len);

/* Static string; never NULL. */
const char *sig_strerror(int err);

#endif
