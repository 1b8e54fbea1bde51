/* libFuzzer target for e164_normalize: no crash, and every success is E.164 and a fixed point. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/e164.h"

static const char *const default_ccs[] = {"1", "44", "39", "353", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (in == NULL)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';

    /* The first byte picks the default country code, so every branch is reachable. */
    const char *cc = default_ccs[size > 0 ? data[0] % 5 : 0];
    char out[E164_BUFSZ], again[E164_BUFSZ];
    const char *why = NULL;
    if (e164_normalize(in, cc, out, sizeof out, &why) == 0) {
        size_t len = strlen(out);
        if (out[0] != '+' || len < 9 || len > 16 || strspn(out + 1, "0123456789") != len - 1)
            abort();
        if (e164_normalize(out, cc, again, sizeof again, &why) != 0 || strcmp(out, again) != 0)
            abort();
    } else if (why == NULL || out[0] != '\0') {
        abort();
    }
    free(in);
    return 0;
}
