/*
 * jwt: the application API's bearer tokens, HS256 only, on libjwt 1.10.
 *
 * Verification refuses any header whose alg is not exactly "HS256" before anything else is
 * trusted (no "none", no HS384/512, no RS/ES key-confusion), checks the HMAC-SHA256 itself
 * (OpenSSL HMAC + CRYPTO_memcmp over the raw 32 bytes, so timing does not depend on the
 * libjwt build) and then lets libjwt's jwt_decode check it again: both must agree. The
 * payload is only parsed once the signature is good. libjwt 1.x checks no claims, so this
 * module checks exp (required), nbf, iat, iss, aud, sub, tenant_id and role.
 *
 * Reasons (`why`) are static, stable strings meant for logs and 401 bodies; the library
 * never prints. No global state; every function is safe to call from any thread.
 *
 * Note the prefix: libjwt owns jwt_new/jwt_decode/jwt_free/...; the names here do not
 * collide with libjwt 1.10's, and this header does not include <jwt.h>.
 */
#ifndef SB_JWT_H
#define SB_JWT_H

#include <stddef.h>

#define JWT_MAX_TOKEN      4096 /* longer tokens are refused unparsed */
#define JWT_MAX_SUB        127  /* bytes, without NUL */
#define JWT_DEFAULT_LEEWAY 60
#define JWT_MAX_TTL        (365L * 24 * 3600)

/*
 * Borrowed by every call, never retained. secret NULL or "" means no token verifies and none
 * can be minted. issuer/audience NULL (or "") mean not checked and not minted. leeway_s is the
 * clock skew allowed on exp/nbf/iat (negative counts as 0); callers pass JWT_DEFAULT_LEEWAY.
 */
typedef struct jwt_settings {
    const char *secret;
    const char *issuer;
    const char *audience;
    long leeway_s;
} jwt_settings_t;

typedef enum { JWT_ROLE_AGENT = 1, JWT_ROLE_ADMIN = 2 } jwt_role_t;

/* A verified token's claims, by value (nothing to free). */
typedef struct jwt_claims {
    char sub[JWT_MAX_SUB + 1]; /* non-empty, NUL-terminated */
    long tenant_id;            /* > 0 */
    jwt_role_t role;
    long exp; /* seconds since the epoch */
} jwt_claims_t;

/*
 * token: len bytes, need not be NUL-terminated (a Bearer header value as received). now:
 * seconds since the epoch. Returns 0 and fills *out (may be NULL) when the token is valid;
 * -1 otherwise, with *why (may be NULL) set to one of: "malformed token", "token too long",
 * "algorithm must be HS256", "bad signature", "missing exp", "expired", "not yet valid"
 * (nbf, or iat in the future), "missing sub", "missing tenant_id", "bad tenant_id",
 * "missing role", "bad role", "wrong issuer", "wrong audience". Allocation failures inside
 * jansson/libjwt surface as "malformed token" or "bad signature": never a false accept.
 * On failure *out is left zeroed.
 *
 * tenant_id may be a JSON integer or a string of decimal digits ("42"; no sign, no leading
 * zero); aud may be a string or an array of strings containing the audience.
 */
int jwt_verify(const jwt_settings_t *s, const char *token, size_t len, long now, jwt_claims_t *out, const char **why);

/*
 * Mints an HS256 token with sub, tenant_id (JSON integer), role, iat = now, exp = now + ttl_s,
 * and iss/aud when the settings name them. Returns 0 and sets *out to a NUL-terminated string
 * the caller frees with free(); -1 with *why set ("empty secret", "bad sub", "bad tenant_id",
 * "bad role", "bad ttl", "out of memory", "encode failed") and *out NULL.
 */
int jwt_mint(const jwt_settings_t *s, const char *sub, long tenant_id, jwt_role_t role, long now, long ttl_s,
             char **out, const char **why);

/*
 * "90", "90s", "15m", "1h", "7d" to seconds in *out_s. Returns 0, or -1 (and *out_s untouched)
 * for anything else: empty, signs, spaces, other units, 0, or more than JWT_MAX_TTL.
 */
int jwt_parse_ttl(const char *s, long *out_s);

/* "agent" / "admin" (static strings); NULL for any other value. */
const char *jwt_role_name(jwt_role_t role);

/* Exactly "agent" or "admin" (case-sensitive) to *out. Returns 0, or -1 (NULL too). */
int jwt_role_parse(const char *name, jwt_role_t *out);

#endif
