/*
 * ari_url: the path and query of ARI REST requests ("/channels/1712.5/answer",
 * "/channels/externalMedia?app=switchboard&external_host=10.0.0.5%3A20000"), relative to
 * ARI_URL + "/ari", and the Asterisk endpoint a transfer target is dialed as.
 *
 * Encoding: every byte outside RFC 3986's unreserved set (ALPHA DIGIT - . _ ~) becomes %XX,
 * in path segments and in query keys and values alike. Asterisk decodes '+' as a space
 * (main/http.c, legacy mode), so "+1555..." must travel as "%2B1555...". It also decodes the
 * path before routing, so a segment holding '/' cannot be sent: refused, as are empty, "."
 * and ".." segments (curl would collapse those).
 *
 * Ownership: results go into the caller's buffer (outsz bytes, NUL included); nothing is
 * allocated. Every function returns the result's length, or -1 (overflow or invalid input)
 * with out set to "" when outsz > 0.
 */
#ifndef SB_ARI_URL_H
#define SB_ARI_URL_H

#include <stddef.h>

#define ARI_DIALSTRING_MAX 255 /* longest target and longest result, in bytes */

/* Percent-encodes the NUL-terminated s. */
int ari_url_escape(char *out, size_t outsz, const char *s);

/*
 * "/" + path[0] + "/" + path[1] ... then "?k=v&k=v" from query. path: NULL-terminated
 * segments, at least one. query: NULL-terminated key, value pairs (NULL for none); a pair
 * whose value is NULL is left out, an empty value is kept ("k=").
 * Example: path {"channels", id, "answer", NULL}, query {"reason", "normal", NULL}.
 */
int ari_url_build(char *out, size_t outsz, const char *const *path, const char *const *query);

/*
 * The endpoint for POST /channels?endpoint=... from a transfer target:
 *   an Asterisk dial string, TECH/resource ("PJSIP/2000", "Local/100@ctx"): kept as is;
 *   an E.164 number ("+13654001512", 8 to 15 digits): "PJSIP/+13654001512@TRUNK";
 *   a SIP URI ("sip:" or "sips:", any case): "PJSIP/TRUNK/sip:2000@pbx.example.com;transport=tcp";
 *   "user@host" without a scheme is read as "sip:user@host".
 * Numbers written any other way are refused: normalise them to E.164 first.
 * Refused (-1): an empty target, bytes outside ALPHA DIGIT and "-._~+*#@:;=/%?[]" (spaces,
 * commas and '&' would split a Dial, control characters a header), a target longer than
 * ARI_DIALSTRING_MAX, a number or URI with no trunk (NULL or ""), a trunk that is not a
 * plain endpoint name ([A-Za-z0-9._-]), or a result that does not fit.
 */
int ari_dialstring(const char *target, const char *trunk, char *out, size_t outsz);

#endif
