/*
 * libFuzzer target: ari_event_parse and ari_event_parse_media on arbitrary bytes, checked
 * against the documented limits and invariants; then the same bytes (up to a NUL) through
 * ari_url_escape (decoded back to the input), ari_url_build and ari_dialstring.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "asterisk/ari_event.h"
#include "asterisk/ari_url.h"

static void check_str(const char *s, size_t max)
{
    if (memchr(s, '\0', max + 1) == NULL)
        abort();
}

static void check_channel(const ari_channel_t *c)
{
    check_str(c->id, ARI_ID_MAX);
    check_str(c->name, ARI_NAME_MAX);
    check_str(c->state, ARI_TEXT_MAX);
    check_str(c->caller_number, ARI_TEXT_MAX);
    check_str(c->caller_name, ARI_TEXT_MAX);
    check_str(c->exten, ARI_TEXT_MAX);
    check_str(c->context, ARI_TEXT_MAX);
    check_str(c->rtp_address, ARI_ADDR_MAX);
    if (c->id[0] == '\0' || c->rtp_port > 65535)
        abort();
}

static void check_event(const ari_event_t *ev, int err)
{
    check_str(ev->error, ARI_ERROR_LEN - 1);
    if (err != 0) {
        if (err < ARI_EVENT_ELIMIT || err > ARI_EVENT_EJSON || ev->error[0] == '\0' || ev->type != ARI_EVENT_OTHER ||
            ev->has_channel || ev->nargs != 0)
            abort();
        return;
    }
    if ((unsigned)ev->type > ARI_EVENT_PLAYBACK_FINISHED || ev->type_name[0] == '\0')
        abort();
    if (ev->type != ARI_EVENT_OTHER && strcmp(ari_event_type_str(ev->type), ev->type_name) != 0)
        abort();
    check_str(ev->type_name, ARI_TYPE_MAX);
    check_str(ev->application, ARI_ID_MAX);
    if (ev->has_channel)
        check_channel(&ev->channel);
    if (ev->nargs > ARI_ARGS_MAX)
        abort();
    for (size_t i = 0; i < ev->nargs; i++)
        check_str(ev->args[i], ARI_ARG_MAX);
    const char *t = ari_event_arg(ev, "tenant");
    if (t != NULL && (t < ev->args[0] || t >= (const char *)ev->args[ARI_ARGS_MAX]))
        abort();
    check_str(ev->cause_txt, ARI_TEXT_MAX);
    check_str(ev->dialstatus, ARI_TEXT_MAX);
    check_str(ev->peer_id, ARI_ID_MAX);
    check_str(ev->bridge_id, ARI_ID_MAX);
    check_str(ev->playback_id, ARI_ID_MAX);
    if (ev->type == ARI_EVENT_CHANNEL_DTMF_RECEIVED && (ev->digit <= ' ' || ev->digit > '~'))
        abort();
    if (ev->type == ARI_EVENT_DIAL && strcmp(ev->peer_id, ev->channel.id) != 0)
        abort();
    (void)ari_cause_outcome(ev->cause);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_strings(const char *s)
{
    char out[3 * 512 + 1], back[512];
    int n = ari_url_escape(out, sizeof out, s);
    if (strlen(s) < 512) {
        /* always fits, and decodes back to s */
        size_t k = 0;
        if (n < 0 || (size_t)n != strlen(out))
            abort();
        for (int i = 0; i < n; i++) {
            if (out[i] == '%') {
                if (hexval(out[i + 1]) < 0 || hexval(out[i + 2]) < 0)
                    abort();
                back[k++] = (char)(hexval(out[i + 1]) << 4 | hexval(out[i + 2]));
                i += 2;
            } else if (strchr("-._~", out[i]) || (out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'z') ||
                       (out[i] >= 'A' && out[i] <= 'Z')) {
                back[k++] = out[i];
            } else {
                abort();
            }
        }
        if (k != strlen(s) || memcmp(back, s, k) != 0)
            abort();
    }
    (void)ari_url_build(out, sizeof out, (const char *const[]){"channels", s, "answer", NULL},
                        (const char *const[]){"endpoint", s, "app", "switchboard", NULL});

    char dial[ARI_DIALSTRING_MAX + 1];
    n = ari_dialstring(s, "didww", dial, sizeof dial);
    if (n >= 0) {
        if ((size_t)n != strlen(dial) || n > ARI_DIALSTRING_MAX || strpbrk(dial, " ,&|\r\n\t\"<>") != NULL)
            abort();
        if (strcmp(dial, s) != 0 && strncmp(dial, "PJSIP/", 6) != 0)
            abort();
    } else if (dial[0] != '\0') {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so ASan catches any read past the end */
    char *s = malloc(size != 0 ? size : 1);
    static ari_event_t ev;
    ari_channel_t ch;
    char error[ARI_ERROR_LEN];

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    check_event(&ev, ari_event_parse(s, size, &ev));

    int err = ari_event_parse_media(s, size, &ch, error);
    check_str(error, ARI_ERROR_LEN - 1);
    if (err == 0) {
        check_channel(&ch);
        if (ch.rtp_address[0] == '\0' || ch.rtp_port == 0)
            abort();
    } else if (ch.id[0] != '\0' || error[0] == '\0') {
        abort();
    }
    free(s);

    char *z = malloc(size + 1);
    if (z == NULL)
        return 0;
    memcpy(z, data, size);
    z[size] = '\0';
    check_strings(z);
    free(z);
    return 0;
}
