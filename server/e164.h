/*
 * e164: normalise a human-written phone number to E.164 ("+14155550100").
 *
 * Accepted: digits separated by spaces, dashes, dots and balanced, unnested
 * parentheses; one optional leading '+'. A "(0)" group ("+44 (0)20 7183 8750")
 * is the optional trunk prefix and is dropped. Without '+', the number is read
 * as dialled from the default country:
 *   - "00" starts an international number (any default country),
 *   - with default "1" (NANP): "011" starts an international number, a
 *     leading trunk "1" is dropped, and the national number must be 10 digits;
 *   - other defaults: one leading trunk "0" is dropped (except Italy, "39",
 *     whose national numbers keep it).
 * Every number with country code 1 must have 10 national digits and an area
 * code starting with 2-9. The result has 8 to 15 digits. Country codes are
 * not checked against the ITU list (only: they do not start with 0).
 *
 * Ownership: nothing is allocated. The result is written to the caller's
 * buffer; `*why` is set on error to a static string ("phone number contains
 * letters") that the caller must not free.
 */
#ifndef SWITCHBOARD_E164_H
#define SWITCHBOARD_E164_H

#include <stddef.h>

/* Longest input accepted, in bytes (not counting the NUL). */
#define E164_MAX_INPUT 64
/* Buffer that always fits a result: '+', up to 15 digits, NUL. */
#define E164_BUFSZ 17

/*
 * Normalises `in` (NUL-terminated) into `out` (`outsz` bytes, E164_BUFSZ is
 * always enough). `default_cc` is the country calling code without '+'
 * (1 to 3 digits); NULL or "" means "1".
 * Returns 0 on success, -1 on error with `*why` set (if `why` is not NULL) and
 * `out` set to "" (if `outsz` > 0).
 */
int e164_normalize(const char *in, const char *default_cc, char *out, size_t outsz, const char **why);

#endif
