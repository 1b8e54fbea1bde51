/* target: transfer target parsing, see target.h. SIP grammar after RFC 3261 25.1. */
#include "server/target.h"
#include "server/e164.h"

#include <string.h>
#include <strings.h>

static const char R_NOOUT[] = "transfer target: no result buffer";
static const char R_EMPTY[] = "transfer target is empty";
static const char R_CRLF[] = "transfer target contains a line break (CR or LF)";
static const char R_CONTROL[] = "transfer target contains a control character";
static const char R_SPACE[] = "SIP URI contains a space";
static const char R_ANGLE[] = "SIP URI contains '<' or '>' (give the bare URI)";
static const char R_QUOTE[] = "SIP URI contains a double quote";
static const char R_NONASCII[] = "SIP URI contains non-ASCII bytes (percent-encode them)";
static const char R_TOOLONG[] = "SIP URI is longer than 255 bytes";
static const char R_SCHEME[] = "transfer target has an unsupported URI scheme (only sip: and sips:)";
static const char R_NOUSER[] = "SIP URI has no user part (expected user@host)";
static const char R_PASSWORD[] = "SIP URI has a password in the user part (user:password@ is not supported)";
static const char R_USER[] = "SIP URI user part contains an invalid character";
static const char R_ESCAPE[] = "SIP URI has an invalid percent-escape (expected % and two hex digits)";
static const char R_NOHOST[] = "SIP URI has no host";
static const char R_HOST[] = "SIP URI has an invalid host";
static const char R_PORT[] = "SIP URI has an invalid port (expected 1-65535)";
static const char R_PARAM[] = "SIP URI has an empty or malformed ;parameter";
static const char R_HEADER[] = "SIP URI has a malformed ?header=value part";
static const char R_DIAL_EMPTY[] = "Asterisk dial string has nothing after TECH/ (expected e.g. PJSIP/2000)";
static const char R_DIAL_LONG[] = "Asterisk dial string is longer than 200 bytes after TECH/";
static const char R_DIAL_CHAR[] =
    "Asterisk dial string may hold only letters, digits and - . _ ~ + * # @ : ; = / % ? [ ] (no spaces, commas or &)";
static const char R_DIAL_NONASCII[] = "Asterisk dial string contains non-ASCII bytes";
static const char R_DIAL_TECH[] =
    "unknown Asterisk channel technology (expected PJSIP/, SIP/, IAX2/, DAHDI/ or Local/)";
static const char R_HEADER_NAME[] = "SIP URI has a header Twilio does not pass on (allowed: X-..., User-to-User, "
                                    "Remote-Party-ID, P-Preferred-Identity, P-Called-Party-ID)";

/* Character classes of RFC 3261; '%' escapes are handled by span(). */
#define MARK             "-_.!~*'()"
#define USER_UNRESERVED  "&=+$,;?/"
#define PARAM_UNRESERVED "[]/:&+$"
#define HNV_UNRESERVED   "[]/?:+$"

static int fail(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return -1;
}

static int is_alnum(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Length of the run at `p` made of alphanumerics, MARK, `extra` and %XX
 * escapes. Stops at the first other byte; sets `*bad_escape` on a '%' not
 * followed by two hex digits.
 */
static size_t span(const char *p, const char *extra, int *bad_escape)
{
    size_t n = 0;
    for (;;) {
        int c = (unsigned char)p[n];
        if (c == '\0')
            return n;
        if (c == '%') {
            if (!is_hex((unsigned char)p[n + 1]) || !is_hex((unsigned char)p[n + 2])) {
                *bad_escape = 1;
                return n;
            }
            n += 3;
        } else if (is_alnum(c) || strchr(MARK, c) != NULL || strchr(extra, c) != NULL) {
            n++;
        } else {
            return n;
        }
    }
}

static void copy(char *dst, const char *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Hostname (labels of alphanumerics and inner dashes), IPv4, or [IPv6]. */
static size_t host_len(const char *p)
{
    size_t n = 0;
    if (p[0] == '[') {
        for (n = 1; is_hex((unsigned char)p[n]) || p[n] == ':' || p[n] == '.'; n++)
            ;
        return (p[n] == ']' && n > 1) ? n + 1 : 0;
    }
    for (;;) {
        size_t label = 0;
        while (is_alnum((unsigned char)p[n + label]) || p[n + label] == '-')
            label++;
        if (label == 0 || label > 63 || p[n] == '-' || p[n + label - 1] == '-')
            return 0;
        n += label;
        if (p[n] != '.')
            return n;
        n++;
    }
}

static int header_allowed(const char *name, size_t n)
{
    static const char *const exact[] = {"User-to-User", "Remote-Party-ID", "P-Preferred-Identity", "P-Called-Party-ID"};
    if (n > 2 && strncasecmp(name, "x-", 2) == 0)
        return 1;
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strlen(exact[i]) == n && strncasecmp(name, exact[i], n) == 0)
            return 1;
    return 0;
}

/* `p` points after the host[:port]: zero or more ;name[=value]. */
static const char *parse_params(const char **pp, target_t *out)
{
    const char *p = *pp;
    int bad = 0;
    while (*p == ';') {
        const char *name = ++p;
        size_t nlen = span(p, PARAM_UNRESERVED, &bad);
        if (bad)
            return R_ESCAPE;
        if (nlen == 0)
            return R_PARAM;
        p += nlen;
        if (*p == '=') {
            const char *val = ++p;
            size_t vlen = span(p, PARAM_UNRESERVED, &bad);
            if (bad)
                return R_ESCAPE;
            if (vlen == 0)
                return R_PARAM;
            p += vlen;
            if (nlen == 9 && strncasecmp(name, "transport", 9) == 0)
                copy(out->transport, val, vlen);
        }
        if (*p != ';' && *p != '?' && *p != '\0')
            return R_PARAM;
    }
    *pp = p;
    return NULL;
}

/* `p` points at '?' or the end: ?name=value&name=value. */
static const char *parse_headers(const char *p)
{
    int bad = 0;
    if (*p == '\0')
        return NULL;
    do {
        const char *name = ++p;
        size_t nlen = span(p, HNV_UNRESERVED, &bad);
        if (bad)
            return R_ESCAPE;
        if (nlen == 0 || p[nlen] != '=')
            return R_HEADER;
        if (!header_allowed(name, nlen))
            return R_HEADER_NAME;
        p += nlen + 1;
        p += span(p, HNV_UNRESERVED, &bad);
        if (bad)
            return R_ESCAPE;
    } while (*p == '&');
    return *p == '\0' ? NULL : R_HEADER;
}

static const char *parse_sip(const char *in, target_t *out)
{
    const char *rest = in, *scheme = "sip:", *p, *at, *r;
    size_t n;
    int bad = 0;

    if (has_prefix_ci(in, "sips:")) {
        scheme = "sips:";
        out->secure = 1;
        rest = in + 5;
    } else if (has_prefix_ci(in, "sip:")) {
        rest = in + 4;
    } else {
        /* "user@host" without scheme; "http://x@y" is some other scheme. */
        n = 0;
        if ((in[0] >= 'a' && in[0] <= 'z') || (in[0] >= 'A' && in[0] <= 'Z'))
            while (is_alnum((unsigned char)in[n]) || in[n] == '+' || in[n] == '-' || in[n] == '.')
                n++;
        if (n > 0 && in[n] == ':' && (at = strchr(in, '@')) != NULL && at > in + n && in[n + 1] == '/')
            return R_SCHEME;
    }

    for (p = rest; *p != '\0'; p++) {
        if (*p == ' ')
            return R_SPACE;
        if (*p == '<' || *p == '>')
            return R_ANGLE;
        if (*p == '"')
            return R_QUOTE;
        if ((unsigned char)*p >= 0x80)
            return R_NONASCII;
    }
    if (strlen(scheme) + strnlen(rest, TARGET_URI_MAX + 1) > TARGET_URI_MAX)
        return R_TOOLONG;

    /* user: everything up to the first '@'. */
    at = strchr(rest, '@');
    if (at == NULL || at == rest)
        return R_NOUSER;
    n = span(rest, USER_UNRESERVED, &bad);
    if (bad)
        return R_ESCAPE;
    if (rest + n != at)
        return rest[n] == ':' ? R_PASSWORD : R_USER;
    copy(out->user, rest, n);

    /* host[:port] */
    p = at + 1;
    if (*p == '\0' || *p == ';' || *p == '?' || *p == ':')
        return R_NOHOST;
    n = host_len(p);
    if (n == 0)
        return R_HOST;
    copy(out->host, p, n);
    p += n;
    if (*p == ':') {
        long port = 0;
        for (n = 1; p[n] >= '0' && p[n] <= '9' && n <= 5; n++)
            port = port * 10 + (p[n] - '0');
        if (n == 1 || port < 1 || port > 65535 || (p[n] != ';' && p[n] != '?' && p[n] != '\0'))
            return R_PORT;
        out->port = (int)port;
        p += n;
    }
    if (*p != ';' && *p != '?' && *p != '\0')
        return R_HOST;

    if ((r = parse_params(&p, out)) != NULL)
        return r;
    if ((r = parse_headers(p)) != NULL)
        return r;

    strcpy(out->value, scheme);
    strcat(out->value, rest);
    out->kind = TARGET_SIP;
    return NULL;
}

/* Length of "TECH/" when `in` starts with a channel technology Asterisk dials, else 0. */
static size_t dial_tech_len(const char *in)
{
    static const char *const techs[] = {"PJSIP/", "SIP/", "IAX2/", "DAHDI/", "Local/"};
    for (size_t i = 0; i < sizeof techs / sizeof techs[0]; i++)
        if (has_prefix_ci(in, techs[i]))
            return strlen(techs[i]);
    return 0;
}

static const char *parse_dial(const char *in, size_t tech, target_t *out)
{
    const char *res = in + tech;
    size_t n = strlen(res);
    if (n == 0)
        return R_DIAL_EMPTY;
    if (n > TARGET_DIAL_RESOURCE_MAX)
        return R_DIAL_LONG;
    for (const unsigned char *p = (const unsigned char *)res; *p != '\0'; p++) {
        if (*p >= 0x80)
            return R_DIAL_NONASCII;
        /* the characters asterisk/ari_url.c passes to Asterisk: what parses here can be dialed there */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) &&
            strchr("-._~+*#@:;=/%?[]", *p) == NULL)
            return R_DIAL_CHAR;
    }
    memcpy(out->value, in, tech + n + 1);
    out->kind = TARGET_DIAL;
    return NULL;
}

/* "Word/..." without '@': meant as a dial string with a technology we do not dial. */
static int looks_like_tech(const char *in)
{
    size_t n = 0;
    if (!((in[0] >= 'a' && in[0] <= 'z') || (in[0] >= 'A' && in[0] <= 'Z')))
        return 0;
    while (is_alnum((unsigned char)in[n]) || in[n] == '_')
        n++;
    return in[n] == '/';
}

int target_parse(const char *in, const char *default_cc, target_t *out, const char **why)
{
    size_t tech;
    const char *r;

    if (out == NULL)
        return fail(why, R_NOOUT);
    memset(out, 0, sizeof *out);
    if (in == NULL || in[0] == '\0')
        return fail(why, R_EMPTY);
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
        if (*p == '\r' || *p == '\n')
            return fail(why, R_CRLF);
        if (*p < 0x20 || *p == 0x7f)
            return fail(why, R_CONTROL);
    }

    if ((tech = dial_tech_len(in)) > 0) {
        r = parse_dial(in, tech, out);
    } else if (has_prefix_ci(in, "sip:") || has_prefix_ci(in, "sips:") || strchr(in, '@') != NULL) {
        r = parse_sip(in, out);
    } else {
        r = NULL;
        if (e164_normalize(in, default_cc, out->value, sizeof out->value, &r) == 0)
            out->kind = TARGET_NUMBER;
        else if (looks_like_tech(in))
            r = R_DIAL_TECH;
    }
    if (r != NULL) {
        memset(out, 0, sizeof *out);
        return fail(why, r);
    }
    return 0;
}
