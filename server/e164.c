/* e164: phone number normalisation, see e164.h for the rules. */
#include "server/e164.h"

#include <string.h>

#define E164_MIN_DIGITS 8
#define E164_MAX_DIGITS 15

static const char R_EMPTY[] = "phone number is empty";
static const char R_TOOLONG[] = "phone number is longer than 64 bytes";
static const char R_CONTROL[] = "phone number contains a control character";
static const char R_LETTERS[] = "phone number contains letters";
static const char R_PLUS[] = "phone number has a plus sign that is not at the start";
static const char R_CHAR[] =
    "phone number contains a character other than digits, spaces, dashes, dots and parentheses";
static const char R_PARENS[] = "phone number has unbalanced or nested parentheses";
static const char R_NODIGITS[] = "phone number contains no digits";
static const char R_FEW[] = "phone number has too few digits (E.164 needs at least 8 including the country code)";
static const char R_MANY[] = "phone number has too many digits (E.164 allows at most 15)";
static const char R_CC0[] = "phone number has a country code starting with 0";
static const char R_NANP_FEW[] = "phone number has too few digits for a NANP number (+1 and 10 digits)";
static const char R_NANP_MANY[] = "phone number has too many digits for a NANP number (+1 and 10 digits)";
static const char R_NANP_AREA[] = "phone number has a NANP area code starting with 0 or 1";
static const char R_DEFCC[] = "default country code must be 1 to 3 digits not starting with 0";
static const char R_OUTSZ[] = "output buffer too small for the phone number";

static int fail(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return -1;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int valid_cc(const char *cc)
{
    size_t n = strlen(cc);
    if (n < 1 || n > 3 || cc[0] == '0')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_digit((unsigned char)cc[i]))
            return 0;
    return 1;
}

/* Collects the digits of `in` into `digits` (NUL-terminated), checking the
 * separators. `*plus` tells whether the number started with '+'. */
static const char *scan(const char *in, char *digits, size_t *nd, int *plus)
{
    const unsigned char *p;
    int in_parens = 0, started = 0;
    size_t paren_at = 0;

    /* Control characters first: they matter more than any other mistake. */
    for (p = (const unsigned char *)in; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return R_CONTROL;

    *nd = 0;
    *plus = 0;
    for (p = (const unsigned char *)in; *p != '\0'; p++) {
        int c = *p;
        if (is_digit(c)) {
            digits[(*nd)++] = (char)c;
            started = 1;
        } else if (is_alpha(c)) {
            return R_LETTERS;
        } else if (c == '+') {
            /* Only spaces may come before the one '+'. */
            if (started)
                return R_PLUS;
            *plus = 1;
            started = 1;
        } else if (c == '(') {
            if (in_parens)
                return R_PARENS;
            in_parens = 1;
            paren_at = *nd;
            started = 1;
        } else if (c == ')') {
            if (!in_parens)
                return R_PARENS;
            in_parens = 0;
            /* "+44 (0)20 ...": the optional trunk prefix is not dialled. */
            if (*nd == paren_at + 1 && digits[paren_at] == '0')
                (*nd)--;
        } else if (c == '-' || c == '.') {
            started = 1;
        } else if (c != ' ') {
            return R_CHAR;
        }
    }
    digits[*nd] = '\0';
    if (in_parens)
        return R_PARENS;
    if (*nd == 0)
        return R_NODIGITS;
    return NULL;
}

int e164_normalize(const char *in, const char *default_cc, char *out, size_t outsz, const char **why)
{
    char digits[E164_MAX_INPUT + 1];
    char full[E164_MAX_INPUT + 4]; /* country code + national digits */
    const char *d, *r;
    size_t nd, len;
    int plus;

    if (out != NULL && outsz > 0)
        out[0] = '\0';
    if (default_cc == NULL || default_cc[0] == '\0')
        default_cc = "1";
    if (!valid_cc(default_cc))
        return fail(why, R_DEFCC);
    if (in == NULL || in[0] == '\0')
        return fail(why, R_EMPTY);
    if (strnlen(in, E164_MAX_INPUT + 1) > E164_MAX_INPUT)
        return fail(why, R_TOOLONG);
    if ((r = scan(in, digits, &nd, &plus)) != NULL)
        return fail(why, r);

    int nanp = strcmp(default_cc, "1") == 0;
    d = digits;
    if (plus) {
        strcpy(full, d);
    } else if (strncmp(d, "00", 2) == 0) {
        strcpy(full, d + 2);
    } else if (nanp && strncmp(d, "011", 3) == 0) {
        strcpy(full, d + 3);
    } else {
        /* A national number: drop the trunk prefix, prepend the country. */
        if (nanp && d[0] == '1') /* NANP area codes never start with 1: a trunk prefix */
            d++;
        else if (!nanp && d[0] == '0' && strcmp(default_cc, "39") != 0)
            d++;
        strcpy(full, default_cc);
        strcat(full, d);
    }

    len = strlen(full);
    if (len > 0 && full[0] == '0')
        return fail(why, R_CC0);
    if (len > E164_MAX_DIGITS)
        return fail(why, R_MANY);
    if (len > 0 && full[0] == '1') {
        if (len < 11)
            return fail(why, R_NANP_FEW);
        if (len > 11)
            return fail(why, R_NANP_MANY);
        if (full[1] == '0' || full[1] == '1')
            return fail(why, R_NANP_AREA);
    }
    if (len < E164_MIN_DIGITS)
        return fail(why, R_FEW);
    if (out == NULL || outsz < len + 2)
        return fail(why, R_OUTSZ);
    out[0] = '+';
    memcpy(out + 1, full, len + 1);
    return 0;
}
