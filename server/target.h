/*
 * target: parse a call transfer target (PRIMARY_TRANSFER_TARGET and the like)
 * into an E.164 number or a SIP URI for <Dial><Number>/<Sip>, or an Asterisk
 * dial string that only Asterisk calls can dial.
 *
 * Dial string, checked first: TECH/resource where TECH is PJSIP, SIP, IAX2,
 * DAHDI or Local in any case (Asterisk looks channel technologies up
 * case-insensitively), e.g. "PJSIP/2000", "Local/100@from-internal",
 * "PJSIP/didww/sip:+14155550100@sip.didww.com". The value is the input as
 * written. The resource is 1 to TARGET_DIAL_RESOURCE_MAX bytes of printable
 * ASCII without spaces, quotes, '<', '>', ',' or '&' (',' and '&' separate
 * Dial()'s arguments and its parallel targets). So "PJSIP/2000@pbx" is a dial
 * string, never the SIP URI "sip:PJSIP/2000@pbx".
 *
 * SIP: the input starts with "sip:" or "sips:" (any case), or contains '@'
 * ("user@host" is read as "sip:user@host"). The normalized URI is the lowercase
 * scheme followed by the rest of the input verbatim, so URI parameters
 * (";transport=tcp;callSid=CA...") and headers ("?X-Ticket=42&User-to-User=..")
 * are kept. Rejected: control characters (CR/LF above all), spaces, '<', '>',
 * '"', non-ASCII bytes, a missing user or host, a password in the user part,
 * a bad host or port, malformed parameters, headers Twilio does not pass on
 * (allowed: names starting with "X-", User-to-User, Remote-Party-ID,
 * P-Preferred-Identity, P-Called-Party-ID; case-insensitive), and a normalized
 * URI longer than TARGET_URI_MAX bytes (Twilio's limit for a SIP URI).
 * Anything else is normalized as a phone number by e164_normalize().
 *
 * The result is plain text: XML-escaping is the TwiML writer's job.
 *
 * Ownership: nothing is allocated; the result lives in the caller's target_t.
 * `*why` is set on error to a static string that must not be freed.
 */
#ifndef SWITCHBOARD_TARGET_H
#define SWITCHBOARD_TARGET_H

#include <stddef.h>

/* Longest SIP URI accepted, in bytes, scheme included (Twilio's limit). */
#define TARGET_URI_MAX 255
/* Longest resource of a dial string (after "TECH/"), in bytes. */
#define TARGET_DIAL_RESOURCE_MAX 200

typedef enum {
    TARGET_NUMBER = 1, /* value is E.164, "+14155550100" */
    TARGET_SIP = 2,    /* value is a SIP URI, "sip:2000@pbx.example.com;transport=tcp" */
    TARGET_DIAL = 3,   /* value is an Asterisk dial string as written, "PJSIP/2000"; Asterisk calls only */
} target_kind_t;

typedef struct {
    target_kind_t kind;
    char value[TARGET_URI_MAX + 1]; /* normalized target, NUL-terminated */
    /* SIP only (empty strings / 0 for a number or a dial string): */
    int secure;                         /* scheme is sips: */
    char user[TARGET_URI_MAX + 1];      /* "2000", still percent-encoded */
    char host[TARGET_URI_MAX + 1];      /* "pbx.example.com", "[2001:db8::1]" */
    int port;                           /* 0 when absent */
    char transport[TARGET_URI_MAX + 1]; /* value of ;transport=, "" when absent */
} target_t;

/*
 * Parses `in` (NUL-terminated) into `*out`. `default_cc` is the country code
 * for numbers written without one (see e164_normalize; NULL means "1").
 * Returns 0, or -1 with `*why` set (if `why` is not NULL); `*out` is then
 * zeroed.
 */
int target_parse(const char *in, const char *default_cc, target_t *out, const char **why);

#endif
