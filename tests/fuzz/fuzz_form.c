/*
 * libFuzzer target: form_parse on arbitrary bytes, checked against form_parse_buf and the
 * documented invariants, then the signature checks over the result (fixed token and URL),
 * form_parse_query and sig_build_url over the same bytes as a request target; form_bad_key
 * names a key only for input that did not parse.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/form.h"
#include "server/sig.h"

#define TOKEN "12345"
#define URL   "https://mycompany.com/twilio/voice?tenant=1"

static void check_form(const form_t *f, const form_limits_t *lim)
{
    if (f->count > lim->max_pairs)
        abort();
    for (size_t i = 0; i < f->count; i++) {
        const form_pair_t *p = &f->pairs[i];
        if (p->key_len == 0 || p->key_len > lim->max_key || p->value_len > lim->max_value ||
            strlen(p->key) != p->key_len || strlen(p->value) != p->value_len)
            abort();
    }
}

static void check_same(const form_t *a, const form_t *b)
{
    if (a->count != b->count)
        abort();
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->pairs[i].key, b->pairs[i].key) != 0 || strcmp(a->pairs[i].value, b->pairs[i].value) != 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const form_limits_t lim = {FORM_MAX_PAIRS, FORM_MAX_KEY, FORM_MAX_VALUE};
    /* a copy of exactly size bytes, so ASan catches any read past the end */
    char *s = malloc(size != 0 ? size : 1);
    form_t *f = NULL, *g = NULL;
    int err, err2;

    if (s == NULL)
        return 0;
    memcpy(s, data, size);

    err = form_parse(s, size, NULL, &f);
    size_t need = form_buf_size(s, size, NULL);
    char *buf = malloc(need + 1);
    if (buf != NULL) {
        /* odd offset: the parser must align inside the buffer and stay within need bytes */
        err2 = form_parse_buf(buf + 1, need, s, size, NULL, &g);
        if (err != err2 && err != FORM_ENOMEM)
            abort();
    }

    if (err == FORM_OK) {
        char sig[SIG_LEN + 1];
        check_form(f, &lim);
        if (g != NULL)
            check_same(f, g);
        if (f->count > 0) {
            size_t pos = 0, n = 0;
            const char *first = form_get(f, f->pairs[0].key);
            if (first != f->pairs[0].value)
                abort();
            while (form_get_next(f, f->pairs[0].key, &pos) != NULL)
                n++;
            if (n == 0 || n > f->count)
                abort();
        }
        if (sig_compute(TOKEN, URL, f, sig) != SIG_OK)
            abort();
        if (sig_validate_form(TOKEN, URL, f, sig, SIG_LEN) != 1)
            abort();
        if (sig_validate_form(TOKEN, URL, f, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", SIG_LEN) != 0 &&
            strcmp(sig, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=") != 0)
            abort();
        /* raw input as a header value of any length */
        (void)sig_validate_form(TOKEN, URL, f, s, size);
    } else if (f != NULL || g != NULL) {
        abort();
    }
    /* the key blamed for a parse failure: only when there is one, NUL-terminated UTF-8 */
    char key[FORM_MAX_KEY + 1];
    if (form_bad_key(s, size, key, sizeof(key))) {
        if (err == FORM_OK || !form_utf8_valid(key, strlen(key)) || strlen(key) > FORM_MAX_KEY)
            abort();
    }
    form_free(f);
    free(buf);

    /* the same bytes as a request target */
    f = NULL;
    if (form_parse_query(s, size, NULL, &f) == FORM_OK)
        check_form(f, &lim);
    form_free(f);

    char url[512];
    if (sig_build_url(url, sizeof(url), "https://example.com/sb/", s, size, NULL) == SIG_OK) {
        (void)sig_validate_form(TOKEN, url, NULL, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", SIG_LEN);
        (void)sig_validate_json(TOKEN, url, s, size, s, size);
    }

    free(s);
    return 0;
}
