/*
 * libFuzzer target for jwt_verify, the API's bearer tokens (anyone can send one). The first
 * byte picks the mode and the settings:
 *   even: the rest is the token as received;
 *   odd:  the rest is a JOSE header and a payload (split at the first 0xFF), base64url-encoded
 *         and signed here with the secret, so the claim checks behind the signature are reached.
 * Checked: a failure names its reason and leaves the claims zeroed; a success has claims in
 * range, and a token minted from them verifies to the same claims.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/jwt.h"

#define SECRET "fuzz-secret-0123456789abcdef0123"
#define NOW    1790000000L

/* base64url without padding; out holds 4 * ((n + 2) / 3) + 1 bytes. Returns the length. */
static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[len] = '\0';
    return (size_t)len;
}

/* header.payload.signature over the two parts, HS256 with SECRET; NULL when out of memory. */
static char *sign(const unsigned char *hdr, size_t hn, const unsigned char *pay, size_t pn, size_t *len)
{
    char *t = malloc(4 * ((hn + 2) / 3) + 4 * ((pn + 2) / 3) + 48 + 3);
    if (t == NULL)
        return NULL;
    size_t n = b64url(hdr, hn, t);
    t[n++] = '.';
    n += b64url(pay, pn, t + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mn = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)t, n, mac, &mn);
    t[n++] = '.';
    n += b64url(mac, mn, t + n);
    *len = n;
    return t;
}

static int zeroed(const jwt_claims_t *c)
{
    static const jwt_claims_t zero;
    return memcmp(c, &zero, sizeof(zero)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t mode = data[0];
    data++, size--;
    /* bits 1-2: issuer and audience checked or not; bit 3: no leeway */
    const jwt_settings_t s = {SECRET, (mode & 2) ? "https://issuer.example" : NULL, (mode & 4) ? "switchboard" : NULL,
                              (mode & 8) ? 0 : JWT_DEFAULT_LEEWAY};
    char *token;
    size_t len;
    if ((mode & 1) == 0) {
        /* exactly size bytes, not NUL-terminated: ASan catches a read past the end */
        token = malloc(size != 0 ? size : 1);
        if (token == NULL)
            return 0;
        memcpy(token, data, size);
        len = size;
    } else {
        const uint8_t *cut = memchr(data, 0xff, size);
        size_t hn = cut != NULL ? (size_t)(cut - data) : size;
        token = sign(data, hn, cut != NULL ? cut + 1 : data + size, cut != NULL ? size - hn - 1 : 0, &len);
        if (token == NULL)
            return 0;
    }

    jwt_claims_t c;
    memset(&c, 0xa5, sizeof(c));
    const char *why = NULL;
    if (jwt_verify(&s, token, len, NOW, &c, &why) != 0) {
        if (why == NULL || !zeroed(&c))
            abort();
    } else {
        size_t sub = strnlen(c.sub, sizeof(c.sub));
        if (sub == 0 || sub > JWT_MAX_SUB || c.tenant_id <= 0 || jwt_role_name(c.role) == NULL ||
            c.exp < NOW - JWT_DEFAULT_LEEWAY)
            abort();
        /* what verified can be minted again, and that verifies to the same claims */
        char *again = NULL;
        jwt_claims_t d;
        if (jwt_mint(&s, c.sub, c.tenant_id, c.role, NOW, 3600, &again, &why) == 0) {
            if (jwt_verify(&s, again, strlen(again), NOW, &d, &why) != 0 || strcmp(c.sub, d.sub) != 0 ||
                c.tenant_id != d.tenant_id || c.role != d.role)
                abort();
            free(again);
        } else if (strcmp(why, "bad sub") != 0) {
            abort(); /* a sub the verifier takes but the minter does not would be its only excuse */
        }
    }
    free(token);
    return 0;
}
