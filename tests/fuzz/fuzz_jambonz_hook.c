/*
 * libFuzzer target: jhook_parse on arbitrary bytes, checked against the documented
 * invariants (bounded, NUL-terminated fields; SIDs of [A-Za-z0-9._-]; integers -1 or >= 0;
 * bad_field set exactly for EMISSING/EFIELD), then jhook_verify with the same bytes as the
 * header and as the body, and a sign/verify round trip over them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jambonz/hook.h"

#define SECRET "fuzz-secret"
#define NOW    INT64_C(1767225600)

static void check_str(const char *s, size_t size)
{
    if (memchr(s, '\0', size) == NULL)
        abort();
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            abort();
}

static void check_sid(const char *s, size_t size, int required)
{
    size_t n = strnlen(s, size);
    if (n == size || (required && n == 0) ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
        abort();
}

static void check_hook(const jhook_t *h)
{
    check_sid(h->call_sid, sizeof(h->call_sid), 1);
    check_sid(h->account_sid, sizeof(h->account_sid), 0);
    check_sid(h->application_sid, sizeof(h->application_sid), 0);
    check_sid(h->dial_call_sid, sizeof(h->dial_call_sid), 0);
    check_str(h->direction, sizeof(h->direction));
    check_str(h->from, sizeof(h->from));
    check_str(h->to, sizeof(h->to));
    check_str(h->caller_name, sizeof(h->caller_name));
    check_str(h->call_id, sizeof(h->call_id));
    check_str(h->call_status, sizeof(h->call_status));
    check_str(h->sip_reason, sizeof(h->sip_reason));
    check_str(h->call_termination_by, sizeof(h->call_termination_by));
    check_str(h->dial_call_status, sizeof(h->dial_call_status));
    check_str(h->digits, sizeof(h->digits));
    const int ints[] = {h->sip_status,         h->duration,     h->dial_sip_status,
                        h->dial_call_duration, h->refer_status, h->final_referred_call_status};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        if (ints[i] < -1)
            abort();
}

static void check_empty(const jhook_t *h)
{
    if (h->call_sid[0] != '\0' || h->from[0] != '\0' || h->sip_status != -1 || h->final_referred_call_status != -1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so ASan catches any read past the end */
    char *s = malloc(size != 0 ? size : 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);

    jhook_t h;
    const char *bad = (const char *)1;
    int rc = jhook_parse(s, size, &h, &bad);
    if (rc == JHOOK_OK) {
        if (bad != NULL)
            abort();
        check_hook(&h);
    } else {
        if ((rc == JHOOK_EMISSING || rc == JHOOK_EFIELD) != (bad != NULL))
            abort();
        if (rc != JHOOK_EJSON && rc != JHOOK_EOBJECT && rc != JHOOK_EMISSING && rc != JHOOK_EFIELD &&
            rc != JHOOK_ETOOBIG)
            abort();
        check_empty(&h);
    }
    (void)jhook_strerror(rc);

    /* the bytes as a header over a fixed body, and as a body under their own signature */
    jhook_sig_t v = jhook_verify(SECRET, s, size, "{}", 2, NOW);
    if (v == JHOOK_SIG_OK || (size == 0) != (v == JHOOK_SIG_MISSING))
        abort(); /* no input forges the HMAC of "{}" */
    if (size > JHOOK_SIG_HEADER_MAX && v != JHOOK_SIG_MALFORMED)
        abort();
    (void)jhook_sig_strerror(v);

    char hdr[JHOOK_SIGN_SIZE];
    int64_t t = NOW - 299 + (int64_t)(size % 599);
    if (jhook_sign(SECRET, t, s, size, hdr, sizeof(hdr)) != 0)
        abort();
    if (jhook_verify(SECRET, hdr, strlen(hdr), s, size, NOW) != JHOOK_SIG_OK)
        abort();
    if (jhook_verify("other", hdr, strlen(hdr), s, size, NOW) != JHOOK_SIG_MISMATCH)
        abort();
    if (size > 0 && jhook_verify(SECRET, hdr, strlen(hdr), s, size - 1, NOW) != JHOOK_SIG_MISMATCH)
        abort();
    if (jhook_verify(SECRET, hdr, strlen(hdr), s, size, NOW + 600) != JHOOK_SIG_STALE)
        abort();

    free(s);
    return 0;
}
