/* libFuzzer target for target_parse: no crash, and every success (number, SIP URI, dial string) is well formed
 * and a fixed point. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (in == NULL)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';

    target_t t, again;
    const char *why = NULL;
    if (target_parse(in, "1", &t, &why) == 0) {
        size_t len = strnlen(t.value, sizeof t.value);
        if (len == 0 || len > TARGET_URI_MAX)
            abort();
        /* Nothing that could break a SIP message or the XML around it survives. */
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)t.value[i];
            if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"')
                abort();
        }
        if (t.kind == TARGET_SIP && (strncmp(t.value, "sip:", 4) != 0 && strncmp(t.value, "sips:", 5) != 0))
            abort();
        if (t.kind == TARGET_SIP && (t.user[0] == '\0' || t.host[0] == '\0'))
            abort();
        if (t.kind == TARGET_NUMBER && t.value[0] != '+')
            abort();
        /* a dial string is TECH/resource as written, with none of Dial()'s separators */
        if (t.kind == TARGET_DIAL && (strchr(t.value, '/') == NULL || strpbrk(t.value, ",&'") != NULL ||
                                      strcmp(t.value, in) != 0 || t.user[0] != '\0' || t.host[0] != '\0'))
            abort();
        if (t.kind != TARGET_NUMBER && t.kind != TARGET_SIP && t.kind != TARGET_DIAL)
            abort();
        if (target_parse(t.value, "1", &again, &why) != 0 || strcmp(t.value, again.value) != 0 ||
            t.kind != again.kind || strcmp(t.user, again.user) != 0 || strcmp(t.host, again.host) != 0 ||
            t.port != again.port || strcmp(t.transport, again.transport) != 0)
            abort();
    } else if (why == NULL || t.kind != 0 || t.value[0] != '\0') {
        abort();
    }
    free(in);
    return 0;
}
