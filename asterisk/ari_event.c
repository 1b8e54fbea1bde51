#include "asterisk/ari_event.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INT_FIELD_MAX 3600000 /* causes, SIP codes and DTMF durations are far below */

static const char *const type_names[] = {
    [ARI_EVENT_OTHER] = "other",
    [ARI_EVENT_STASIS_START] = "StasisStart",
    [ARI_EVENT_STASIS_END] = "StasisEnd",
    [ARI_EVENT_CHANNEL_DESTROYED] = "ChannelDestroyed",
    [ARI_EVENT_CHANNEL_HANGUP_REQUEST] = "ChannelHangupRequest",
    [ARI_EVENT_CHANNEL_DTMF_RECEIVED] = "ChannelDtmfReceived",
    [ARI_EVENT_CHANNEL_STATE_CHANGE] = "ChannelStateChange",
    [ARI_EVENT_DIAL] = "Dial",
    [ARI_EVENT_CHANNEL_ENTERED_BRIDGE] = "ChannelEnteredBridge",
    [ARI_EVENT_CHANNEL_LEFT_BRIDGE] = "ChannelLeftBridge",
    [ARI_EVENT_BRIDGE_DESTROYED] = "BridgeDestroyed",
    [ARI_EVENT_PLAYBACK_STARTED] = "PlaybackStarted",
    [ARI_EVENT_PLAYBACK_FINISHED] = "PlaybackFinished",
};
#define NTYPES (sizeof(type_names) / sizeof(type_names[0]))

/* Where a field lives, for messages: "channel", "bridge", or "" at the top. */
typedef struct ctx {
    char *error; /* ARI_ERROR_LEN bytes */
    const char *where;
} ctx_t;

static int fail(const ctx_t *c, int err, const char *key, const char *fmt, ...)
{
    char what[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(c->error, ARI_ERROR_LEN, "%s%s%s: %s", c->where, c->where[0] ? "." : "", key, what);
    return err;
}

/* Copies obj[key] (a string of at most max bytes) into dst; "" when absent and optional. */
static int get_str(const ctx_t *c, json_t *obj, const char *key, char *dst, size_t max, int required)
{
    json_t *v = json_object_get(obj, key);
    dst[0] = '\0';
    if (v == NULL)
        return required ? fail(c, ARI_EVENT_EMISSING, key, "missing") : 0;
    if (!json_is_string(v))
        return fail(c, ARI_EVENT_EFIELD, key, "not a string");
    /* jansson refuses \u0000 by default, so the length is the C string's */
    size_t len = json_string_length(v);
    if (len > max)
        return fail(c, ARI_EVENT_ELIMIT, key, "longer than %zu bytes", max);
    memcpy(dst, json_string_value(v), len + 1);
    return 0;
}

static int get_int(const ctx_t *c, json_t *obj, const char *key, int *dst, int absent, int required)
{
    json_t *v = json_object_get(obj, key);
    *dst = absent;
    if (v == NULL)
        return required ? fail(c, ARI_EVENT_EMISSING, key, "missing") : 0;
    if (!json_is_integer(v))
        return fail(c, ARI_EVENT_EFIELD, key, "not an integer");
    json_int_t n = json_integer_value(v);
    if (n < 0 || n > INT_FIELD_MAX)
        return fail(c, ARI_EVENT_ELIMIT, key, "out of range");
    *dst = (int)n;
    return 0;
}

/* obj[key] as an object; NULL with *err 0 when absent and optional. */
static json_t *get_obj(const ctx_t *c, json_t *obj, const char *key, int required, int *err)
{
    json_t *v = json_object_get(obj, key);
    *err = 0;
    if (v == NULL && required)
        *err = fail(c, ARI_EVENT_EMISSING, key, "missing");
    else if (v != NULL && !json_is_object(v))
        *err = fail(c, ARI_EVENT_EFIELD, key, "not an object");
    return *err ? NULL : v;
}

/* An address Asterisk printed (IPv4, IPv6, maybe a %zone): no room for anything else. */
static int check_addr(const ctx_t *c, const char *key, const char *s)
{
    if (s[0] == '\0')
        return fail(c, ARI_EVENT_EFIELD, key, "empty");
    for (; *s; s++)
        if (!(*s >= '0' && *s <= '9') && !(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
            strchr(".:%-_", *s) == NULL)
            return fail(c, ARI_EVENT_EFIELD, key, "not an IP address");
    return 0;
}

/* A port as Asterisk sends it: a string in channelvars, an integer in 16.6's reply. */
static int get_port(const ctx_t *c, json_t *obj, const char *key, unsigned *dst)
{
    json_t *v = json_object_get(obj, key);
    long n = -1;
    *dst = 0;
    if (v == NULL)
        return 0;
    if (json_is_integer(v)) {
        if (json_integer_value(v) >= 1 && json_integer_value(v) <= 65535)
            n = (long)json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len >= 1 && len <= 5 && strspn(s, "0123456789") == len)
            n = strtol(s, NULL, 10);
    } else {
        return fail(c, ARI_EVENT_EFIELD, key, "not a string or integer");
    }
    if (n < 1 || n > 65535)
        return fail(c, ARI_EVENT_EFIELD, key, "not a port number");
    *dst = (unsigned)n;
    return 0;
}

/* The fields of a Channel object o, named `key` in messages. */
static int channel_fields(const ctx_t *c, json_t *o, const char *key, ari_channel_t *ch)
{
    ctx_t in = {c->error, key};
    char path[32];
    ctx_t sc = {c->error, path};
    json_t *sub;
    int err;

    if ((err = get_str(&in, o, "id", ch->id, ARI_ID_MAX, 1)) ||
        (err = get_str(&in, o, "name", ch->name, ARI_NAME_MAX, 1)) ||
        (err = get_str(&in, o, "state", ch->state, ARI_TEXT_MAX, 1)))
        return err;
    if (ch->id[0] == '\0')
        return fail(&in, ARI_EVENT_EFIELD, "id", "empty");

    snprintf(path, sizeof(path), "%s.caller", key);
    if ((sub = get_obj(&in, o, "caller", 0, &err)) != NULL &&
        ((err = get_str(&sc, sub, "number", ch->caller_number, ARI_TEXT_MAX, 0)) ||
         (err = get_str(&sc, sub, "name", ch->caller_name, ARI_TEXT_MAX, 0))))
        return err;
    if (err)
        return err;

    snprintf(path, sizeof(path), "%s.dialplan", key);
    if ((sub = get_obj(&in, o, "dialplan", 0, &err)) != NULL &&
        ((err = get_str(&sc, sub, "exten", ch->exten, ARI_TEXT_MAX, 0)) ||
         (err = get_str(&sc, sub, "context", ch->context, ARI_TEXT_MAX, 0))))
        return err;
    if (err)
        return err;

    snprintf(path, sizeof(path), "%s.channelvars", key);
    if ((sub = get_obj(&in, o, "channelvars", 0, &err)) != NULL &&
        ((err = get_str(&sc, sub, "UNICASTRTP_LOCAL_ADDRESS", ch->rtp_address, ARI_ADDR_MAX, 0)) ||
         (json_object_get(sub, "UNICASTRTP_LOCAL_ADDRESS") &&
          (err = check_addr(&sc, "UNICASTRTP_LOCAL_ADDRESS", ch->rtp_address))) ||
         (err = get_port(&sc, sub, "UNICASTRTP_LOCAL_PORT", &ch->rtp_port))))
        return err;
    return err;
}

static int parse_channel(const ctx_t *c, json_t *obj, const char *key, ari_channel_t *ch, int required, int *present)
{
    int err;
    json_t *o = get_obj(c, obj, key, required, &err);
    *present = o != NULL;
    return o != NULL ? channel_fields(c, o, key, ch) : err;
}

/* StasisStart's args: a list of at most ARI_ARGS_MAX strings. */
static int parse_args(const ctx_t *c, json_t *obj, ari_event_t *ev)
{
    json_t *a = json_object_get(obj, "args");
    if (a == NULL)
        return fail(c, ARI_EVENT_EMISSING, "args", "missing");
    if (!json_is_array(a))
        return fail(c, ARI_EVENT_EFIELD, "args", "not a list");
    if (json_array_size(a) > ARI_ARGS_MAX)
        return fail(c, ARI_EVENT_ELIMIT, "args", "more than %d", ARI_ARGS_MAX);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_string(v))
            return fail(c, ARI_EVENT_EFIELD, "args", "item %zu is not a string", i);
        if (json_string_length(v) > ARI_ARG_MAX)
            return fail(c, ARI_EVENT_ELIMIT, "args", "item %zu longer than %d bytes", i, ARI_ARG_MAX);
        memcpy(ev->args[i], json_string_value(v), json_string_length(v) + 1);
    }
    ev->nargs = json_array_size(a);
    return 0;
}

/* The id of obj[key] (a Bridge or a Playback), required. */
static int parse_ref(const ctx_t *c, json_t *obj, const char *key, char *dst)
{
    int err;
    json_t *o = get_obj(c, obj, key, 1, &err);
    if (o == NULL)
        return err;
    ctx_t in = {c->error, key};
    if ((err = get_str(&in, o, "id", dst, ARI_ID_MAX, 1)) != 0)
        return err;
    return dst[0] ? 0 : fail(&in, ARI_EVENT_EFIELD, "id", "empty");
}

static int parse_fields(const ctx_t *c, json_t *root, ari_event_t *ev)
{
    int err;
    if ((err = get_str(c, root, "application", ev->application, ARI_ID_MAX, 1)) != 0)
        return err;
    switch (ev->type) {
    case ARI_EVENT_STASIS_START:
        if ((err = parse_args(c, root, ev)) != 0)
            return err;
        return parse_channel(c, root, "channel", &ev->channel, 1, &ev->has_channel);
    case ARI_EVENT_CHANNEL_DESTROYED:
        if ((err = get_int(c, root, "cause", &ev->cause, -1, 1)) ||
            (err = get_int(c, root, "tech_cause", &ev->tech_cause, 0, 0)) ||
            (err = get_str(c, root, "cause_txt", ev->cause_txt, ARI_TEXT_MAX, 1)))
            return err;
        return parse_channel(c, root, "channel", &ev->channel, 1, &ev->has_channel);
    case ARI_EVENT_CHANNEL_HANGUP_REQUEST:
        if ((err = get_int(c, root, "cause", &ev->cause, -1, 0)) ||
            (err = get_int(c, root, "tech_cause", &ev->tech_cause, 0, 0)))
            return err;
        return parse_channel(c, root, "channel", &ev->channel, 1, &ev->has_channel);
    case ARI_EVENT_CHANNEL_DTMF_RECEIVED: {
        char d[ARI_TEXT_MAX + 1];
        if ((err = get_str(c, root, "digit", d, ARI_TEXT_MAX, 1)) ||
            (err = get_int(c, root, "duration_ms", &ev->duration_ms, 0, 1)))
            return err;
        if (d[0] <= ' ' || d[0] > '~' || d[1] != '\0')
            return fail(c, ARI_EVENT_EFIELD, "digit", "not one printable character");
        ev->digit = d[0];
        return parse_channel(c, root, "channel", &ev->channel, 1, &ev->has_channel);
    }
    case ARI_EVENT_DIAL:
        if ((err = get_str(c, root, "dialstatus", ev->dialstatus, ARI_TEXT_MAX, 1)) ||
            (err = parse_channel(c, root, "peer", &ev->channel, 1, &ev->has_channel)))
            return err;
        memcpy(ev->peer_id, ev->channel.id, sizeof(ev->peer_id));
        return 0;
    case ARI_EVENT_CHANNEL_ENTERED_BRIDGE:
    case ARI_EVENT_CHANNEL_LEFT_BRIDGE:
        if ((err = parse_ref(c, root, "bridge", ev->bridge_id)) != 0)
            return err;
        return parse_channel(c, root, "channel", &ev->channel, ev->type == ARI_EVENT_CHANNEL_LEFT_BRIDGE,
                             &ev->has_channel);
    case ARI_EVENT_BRIDGE_DESTROYED:
        return parse_ref(c, root, "bridge", ev->bridge_id);
    case ARI_EVENT_PLAYBACK_STARTED:
    case ARI_EVENT_PLAYBACK_FINISHED:
        return parse_ref(c, root, "playback", ev->playback_id);
    default: /* StasisEnd, ChannelStateChange */
        return parse_channel(c, root, "channel", &ev->channel, 1, &ev->has_channel);
    }
}

/* Parses len bytes into an object, or fails with a message. */
static json_t *load(const ctx_t *c, const char *json, size_t len, int *err)
{
    json_error_t je;
    json_t *root;
    *err = 0;
    if (len > ARI_EVENT_MAX_LEN) {
        *err = fail(c, ARI_EVENT_ELIMIT, "event", "longer than %d bytes", ARI_EVENT_MAX_LEN);
        return NULL;
    }
    if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je)) == NULL) {
        snprintf(c->error, ARI_ERROR_LEN, "not JSON: %.100s at byte %d", je.text, je.position);
        *err = ARI_EVENT_EJSON;
    } else if (!json_is_object(root)) {
        json_decref(root);
        root = NULL;
        *err = fail(c, ARI_EVENT_EOBJECT, "event", "not an object");
    }
    return root;
}

int ari_event_parse(const char *json, size_t len, ari_event_t *ev)
{
    ctx_t c = {ev->error, ""};
    int err;

    memset(ev, 0, sizeof(*ev));
    ev->cause = -1;
    json_t *root = load(&c, json, len, &err);
    if (root == NULL)
        return err;
    json_t *t = json_object_get(root, "type");
    if (t == NULL || !json_is_string(t) || json_string_length(t) == 0)
        err = fail(&c, ARI_EVENT_ETYPE, "type", t == NULL ? "missing" : json_is_string(t) ? "empty" : "not a string");
    else if ((err = get_str(&c, root, "type", ev->type_name, ARI_TYPE_MAX, 1)) == 0) {
        for (size_t i = 1; i < NTYPES; i++)
            if (strcmp(ev->type_name, type_names[i]) == 0)
                ev->type = (ari_event_type_t)i;
        if (ev->type != ARI_EVENT_OTHER)
            err = parse_fields(&c, root, ev);
    }
    json_decref(root);
    if (err != 0) {
        char keep[ARI_ERROR_LEN];
        memcpy(keep, ev->error, sizeof(keep));
        memset(ev, 0, sizeof(*ev));
        memcpy(ev->error, keep, sizeof(keep));
        ev->cause = -1;
    }
    return err;
}

const char *ari_event_arg(const ari_event_t *ev, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < ev->nargs; i++)
        if (strncmp(ev->args[i], key, klen) == 0 && ev->args[i][klen] == '=')
            return ev->args[i] + klen + 1;
    return NULL;
}

int ari_event_parse_media(const char *json, size_t len, ari_channel_t *out, char *error)
{
    char scratch[ARI_ERROR_LEN];
    ctx_t c = {error != NULL ? error : scratch, ""};
    int err;

    memset(out, 0, sizeof(*out));
    c.error[0] = '\0';
    json_t *root = load(&c, json, len, &err);
    if (root == NULL)
        return err;
    /* 16.6 wrapped the channel; later versions answer the Channel itself */
    json_t *ch = json_object_get(root, "channel");
    if (ch != NULL && !json_is_object(ch))
        err = fail(&c, ARI_EVENT_EFIELD, "channel", "not an object");
    else
        err = channel_fields(&c, ch != NULL ? ch : root, "channel", out);
    if (err == 0 && out->rtp_address[0] == '\0') {
        if ((err = get_str(&c, root, "local_address", out->rtp_address, ARI_ADDR_MAX, 0)) == 0 &&
            json_object_get(root, "local_address") != NULL)
            err = check_addr(&c, "local_address", out->rtp_address);
    }
    if (err == 0 && out->rtp_port == 0)
        err = get_port(&c, root, "local_port", &out->rtp_port);
    if (err == 0 && out->rtp_address[0] == '\0')
        err = fail(&c, ARI_EVENT_EMISSING, "channelvars", "no UNICASTRTP_LOCAL_ADDRESS");
    else if (err == 0 && out->rtp_port == 0)
        err = fail(&c, ARI_EVENT_EMISSING, "channelvars", "no UNICASTRTP_LOCAL_PORT");
    json_decref(root);
    if (err != 0)
        memset(out, 0, sizeof(*out));
    return err;
}

const char *ari_event_type_str(ari_event_type_t type)
{
    return (size_t)type < NTYPES ? type_names[type] : "other";
}

const char *ari_event_strerror(int err)
{
    switch (err) {
    case ARI_EVENT_OK:
        return "ok";
    case ARI_EVENT_EJSON:
        return "not JSON";
    case ARI_EVENT_EOBJECT:
        return "not a JSON object";
    case ARI_EVENT_ETYPE:
        return "no event type";
    case ARI_EVENT_EMISSING:
        return "a required field is missing";
    case ARI_EVENT_EFIELD:
        return "a field has the wrong type or value";
    case ARI_EVENT_ELIMIT:
        return "over a size limit";
    }
    return "unknown ARI event error";
}

const char *ari_cause_outcome(int cause)
{
    switch (cause) {
    case 16: /* AST_CAUSE_NORMAL_CLEARING */
        return "completed";
    case 17: /* AST_CAUSE_USER_BUSY */
    case 21: /* AST_CAUSE_CALL_REJECTED: 603 Decline, the callee said no */
        return "busy";
    case 18: /* AST_CAUSE_NO_USER_RESPONSE */
    case 19: /* AST_CAUSE_NO_ANSWER: also a dial timeout */
        return "no-answer";
    default:
        return "failed";
    }
}
