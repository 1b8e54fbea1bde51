#include "asterisk/ari_url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends to out at *len; -1 (and out cut back to "") when it does not fit. */
static int put(char *out, size_t outsz, size_t *len, const char *s, int escape)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        size_t need = escape && !unreserved(c) ? 3 : 1;
        if (outsz - *len <= need)
            return -1;
        if (need == 1) {
            out[(*len)++] = (char)c;
        } else {
            out[(*len)++] = '%';
            out[(*len)++] = hex[c >> 4];
            out[(*len)++] = hex[c & 15];
        }
    }
    out[*len] = '\0';
    return 0;
}

static int done(char *out, size_t outsz, size_t len, int err)
{
    if (err) {
        if (outsz > 0)
            out[0] = '\0';
        return -1;
    }
    return (int)len;
}

int ari_url_escape(char *out, size_t outsz, const char *s)
{
    size_t len = 0;
    if (outsz == 0)
        return -1;
    out[0] = '\0';
    int err = put(out, outsz, &len, s, 1);
    return done(out, outsz, len, err);
}

int ari_url_build(char *out, size_t outsz, const char *const *path, const char *const *query)
{
    size_t len = 0;
    int err = outsz == 0 || path == NULL || path[0] == NULL;
    if (!err)
        out[0] = '\0';
    for (size_t i = 0; !err && path[i] != NULL; i++) {
        const char *seg = path[i];
        err = seg[0] == '\0' || strchr(seg, '/') != NULL || strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0 ||
              put(out, outsz, &len, "/", 0) || put(out, outsz, &len, seg, 1);
    }
    char sep[2] = "?";
    for (size_t i = 0; !err && query != NULL && query[i] != NULL; i += 2) {
        if (query[i + 1] == NULL)
            continue;
        err = query[i][0] == '\0' || put(out, outsz, &len, sep, 0) || put(out, outsz, &len, query[i], 1) ||
              put(out, outsz, &len, "=", 0) || put(out, outsz, &len, query[i + 1], 1);
        sep[0] = '&';
    }
    return done(out, outsz, len, err);
}

/* "PJSIP/2000": a technology name, then '/' before any ':' or '@', then something. */
static int is_dialstring(const char *s)
{
    size_t n = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    while (is_alnum((unsigned char)s[n]) || s[n] == '_')
        n++;
    return s[n] == '/' && s[n + 1] != '\0';
}

static int is_e164(const char *s)
{
    size_t n = strspn(s + 1, "0123456789");
    return s[0] == '+' && s[1] >= '1' && s[1] <= '9' && s[1 + n] == '\0' && n >= 8 && n <= 15;
}

static int valid_trunk(const char *t)
{
    if (t == NULL || t[0] == '\0')
        return 0;
    for (; *t; t++)
        if (!is_alnum((unsigned char)*t) && strchr("._-", *t) == NULL)
            return 0;
    return 1;
}

int ari_dialstring(const char *target, const char *trunk, char *out, size_t outsz)
{
    size_t len = 0, tlen = target != NULL ? strlen(target) : 0;
    const char *scheme = "";
    int n;

    if (outsz > 0)
        out[0] = '\0';
    if (tlen == 0 || tlen > ARI_DIALSTRING_MAX)
        return -1;
    for (const char *p = target; *p; p++)
        if (!is_alnum((unsigned char)*p) && strchr("-._~+*#@:;=/%?[]", *p) == NULL)
            return -1;

    if (is_dialstring(target)) {
        int err = outsz == 0 || put(out, outsz, &len, target, 0);
        return done(out, outsz, len, err);
    }
    if (!valid_trunk(trunk))
        return -1;
    if (is_e164(target)) {
        n = snprintf(out, outsz, "PJSIP/%s@%s", target, trunk);
        return done(out, outsz, (size_t)n, n < 0 || (size_t)n >= outsz || (size_t)n > ARI_DIALSTRING_MAX);
    }
    const char *at = strchr(target, '@');
    if (strncasecmp(target, "sip:", 4) == 0) {
        scheme = "sip:", target += 4;
    } else if (strncasecmp(target, "sips:", 5) == 0) {
        scheme = "sips:", target += 5;
    } else if (at != NULL && memchr(target, ':', (size_t)(at - target)) == NULL) {
        scheme = "sip:"; /* user@host reads as SIP, as on Twilio; "tel:1@x", "u:pw@x" do not */
    } else {
        return -1;
    }
    /* the user part is optional, but not empty before an '@'; one '@'; a host */
    const char *host = at != NULL ? at + 1 : target;
    if (at == target || host[0] == '\0' || strchr(";?:", host[0]) != NULL || strchr(host, '@') != NULL)
        return -1;
    n = snprintf(out, outsz, "PJSIP/%s/%s%s", trunk, scheme, target);
    return done(out, outsz, (size_t)n, n < 0 || (size_t)n >= outsz || (size_t)n > ARI_DIALSTRING_MAX);
}
