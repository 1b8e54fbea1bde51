#include "jambonz/verbs.h"

#include <string.h>
#include <strings.h>

/* Control characters would let a value break out of the SIP header it lands in. */
static int clean(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int set(json_t *o, const char *key, json_t *v)
{
    return v == NULL || json_object_set_new(o, key, v) != 0 ? -1 : 0;
}

/* The put_* helpers return 0 when the value is written or unset, -1 when it is invalid or
 * memory runs out. */
static int put_text(json_t *o, const char *key, const char *s)
{
    return s == NULL || s[0] == '\0' ? 0 : set(o, key, json_string(s));
}

static int put_str(json_t *o, const char *key, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    return clean(s) ? set(o, key, json_string(s)) : -1;
}

static int need_str(json_t *o, const char *key, const char *s)
{
    return s == NULL || s[0] == '\0' ? -1 : put_str(o, key, s);
}

static int put_int(json_t *o, const char *key, int n)
{
    if (n < 0)
        return -1;
    return n == 0 ? 0 : set(o, key, json_integer(n));
}

static int put_bool(json_t *o, const char *key, jv_bool_t b)
{
    switch (b) {
    case JV_UNSET:
        return 0;
    case JV_FALSE:
    case JV_TRUE:
        return set(o, key, json_boolean(b == JV_TRUE));
    }
    return -1;
}

static int rate_ok(int rate)
{
    return rate >= 0 && rate <= 48000 && rate % 8000 == 0;
}

static int put_auth(json_t *o, const char *key, const jv_auth_t *a)
{
    if (a == NULL)
        return 0;
    json_t *v = json_object();
    if (v == NULL || need_str(v, "username", a->username) || need_str(v, "password", a->password)) {
        json_decref(v);
        return -1;
    }
    return set(o, key, v);
}

static int put_synth(json_t *o, const char *key, const jv_synth_t *s)
{
    if (s == NULL)
        return 0;
    json_t *v = json_object();
    if (v == NULL || need_str(v, "vendor", s->vendor) || put_str(v, "language", s->language) ||
        put_str(v, "voice", s->voice)) {
        json_decref(v);
        return -1;
    }
    return set(o, key, v);
}

static int token_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 64)
        return 0;
    return s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")] == '\0';
}

static int put_headers(json_t *o, const jv_header_t *h, size_t n)
{
    if (n == 0)
        return 0;
    if (h == NULL || n > JV_MAX_HEADERS)
        return -1;
    json_t *v = json_object();
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int bad = !token_ok(h[i].name) || h[i].value == NULL || !clean(h[i].value);
        /* SIP header names are case-insensitive: two spellings would be one header twice */
        for (size_t j = 0; j < i && !bad; j++)
            bad = strcasecmp(h[i].name, h[j].name) == 0;
        if (bad || set(v, h[i].name, json_string(h[i].value))) {
            json_decref(v);
            return -1;
        }
    }
    return set(o, "headers", v);
}

static json_t *verb_new(const char *name)
{
    json_t *o = json_object();
    if (o != NULL && set(o, "verb", json_string(name)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Appends `o` when `err` is 0; frees it either way on failure. */
static int finish(json_t *verbs, json_t *o, int err)
{
    if (err != 0 || o == NULL || json_array_append_new(verbs, o) != 0) {
        if (err != 0)
            json_decref(o);
        return -1;
    }
    return 0;
}

int jv_say(json_t *verbs, const char *text, const jv_say_opts_t *opts)
{
    static const jv_say_opts_t none;
    const jv_say_opts_t *p = opts != NULL ? opts : &none;
    if (!json_is_array(verbs) || text == NULL || text[0] == '\0')
        return -1;
    json_t *o = verb_new("say");
    if (o == NULL)
        return -1;
    int err = put_text(o, "text", text) || put_synth(o, "synthesizer", p->synthesizer) || put_int(o, "loop", p->loop) ||
              put_bool(o, "earlyMedia", p->early_media);
    return finish(verbs, o, err);
}

int jv_pause(json_t *verbs, int length_s)
{
    if (!json_is_array(verbs) || length_s <= 0)
        return -1;
    json_t *o = verb_new("pause");
    if (o == NULL)
        return -1;
    return finish(verbs, o, put_int(o, "length", length_s));
}

int jv_hangup(json_t *verbs, const jv_header_t *headers, size_t n_headers)
{
    if (!json_is_array(verbs))
        return -1;
    json_t *o = verb_new("hangup");
    if (o == NULL)
        return -1;
    return finish(verbs, o, put_headers(o, headers, n_headers));
}

int jv_sip_decline(json_t *verbs, int status, const char *reason)
{
    if (!json_is_array(verbs) || status < 400 || status > 699)
        return -1;
    json_t *o = verb_new("sip:decline");
    if (o == NULL)
        return -1;
    return finish(verbs, o, put_int(o, "status", status) || put_str(o, "reason", reason));
}

int jv_redirect(json_t *verbs, const char *action_hook)
{
    if (!json_is_array(verbs))
        return -1;
    json_t *o = verb_new("redirect");
    if (o == NULL)
        return -1;
    return finish(verbs, o, need_str(o, "actionHook", action_hook));
}

static int put_bidi(json_t *o, const jv_bidi_t *b)
{
    if (b == NULL)
        return 0;
    json_t *v = json_object();
    if (v == NULL || !rate_ok(b->sample_rate) || put_bool(v, "enabled", b->enabled) ||
        put_bool(v, "streaming", b->streaming) || put_int(v, "sampleRate", b->sample_rate)) {
        json_decref(v);
        return -1;
    }
    return set(o, "bidirectionalAudio", v);
}

static int put_mix(json_t *o, const char *mix)
{
    if (mix == NULL || mix[0] == '\0')
        return 0;
    if (strcmp(mix, "mono") != 0 && strcmp(mix, "stereo") != 0 && strcmp(mix, "mixed") != 0)
        return -1;
    return set(o, "mixType", json_string(mix));
}

static int put_metadata(json_t *o, const json_t *m)
{
    if (m == NULL)
        return 0;
    return json_is_object(m) ? set(o, "metadata", json_deep_copy(m)) : -1;
}

static int put_key(json_t *o, const char *key)
{
    if (key == NULL || key[0] == '\0')
        return 0;
    return key[1] == '\0' && strchr("0123456789*#", key[0]) != NULL ? set(o, "finishOnKey", json_string(key)) : -1;
}

int jv_listen(json_t *verbs, const char *url, const jv_listen_opts_t *opts)
{
    static const jv_listen_opts_t none;
    const jv_listen_opts_t *p = opts != NULL ? opts : &none;
    if (!json_is_array(verbs) || !rate_ok(p->sample_rate))
        return -1;
    json_t *o = verb_new("listen");
    if (o == NULL)
        return -1;
    int err = need_str(o, "url", url) || put_str(o, "actionHook", p->action_hook) || put_mix(o, p->mix_type) ||
              put_int(o, "sampleRate", p->sample_rate) || put_metadata(o, p->metadata) ||
              put_bidi(o, p->bidirectional_audio) || put_bool(o, "passDtmf", p->pass_dtmf) ||
              put_int(o, "maxLength", p->max_length) || put_bool(o, "playBeep", p->play_beep) ||
              put_key(o, p->finish_on_key) || put_int(o, "timeout", p->timeout) || put_auth(o, "wsAuth", p->ws_auth);
    return finish(verbs, o, err);
}

static int unused(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static json_t *target_new(const jv_target_t *t)
{
    json_t *o = json_object();
    int err = o == NULL;
    switch (t->type) {
    case JV_TARGET_PHONE:
        err = err || !unused(t->sip_uri) || !unused(t->name) || t->auth != NULL ||
              set(o, "type", json_string("phone")) || need_str(o, "number", t->number) || put_str(o, "trunk", t->trunk);
        break;
    case JV_TARGET_SIP:
        err = err || !unused(t->number) || !unused(t->name) || !unused(t->trunk) ||
              set(o, "type", json_string("sip")) || need_str(o, "sipUri", t->sip_uri) || put_auth(o, "auth", t->auth);
        break;
    case JV_TARGET_USER:
        err = err || !unused(t->number) || !unused(t->sip_uri) || !unused(t->trunk) || t->auth != NULL ||
              set(o, "type", json_string("user")) || need_str(o, "name", t->name);
        break;
    default:
        err = 1;
    }
    if (err) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int put_targets(json_t *o, const jv_target_t *targets, size_t n)
{
    if (targets == NULL || n == 0 || n > JV_MAX_TARGETS)
        return -1;
    json_t *arr = json_array();
    if (arr == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(arr, target_new(&targets[i])) != 0) {
            json_decref(arr);
            return -1;
        }
    }
    return set(o, "target", arr);
}

int jv_dial(json_t *verbs, const jv_target_t *targets, size_t n_targets, const jv_dial_opts_t *opts)
{
    static const jv_dial_opts_t none;
    const jv_dial_opts_t *p = opts != NULL ? opts : &none;
    if (!json_is_array(verbs))
        return -1;
    json_t *o = verb_new("dial");
    if (o == NULL)
        return -1;
    int err = put_targets(o, targets, n_targets) || put_str(o, "callerId", p->caller_id) ||
              put_str(o, "callerName", p->caller_name) || put_bool(o, "answerOnBridge", p->answer_on_bridge) ||
              put_int(o, "timeout", p->timeout) || put_int(o, "timeLimit", p->time_limit) ||
              put_str(o, "actionHook", p->action_hook) || put_str(o, "dialMusic", p->dial_music);
    return finish(verbs, o, err);
}

int jv_sip_refer(json_t *verbs, const char *refer_to, const jv_refer_opts_t *opts)
{
    static const jv_refer_opts_t none;
    const jv_refer_opts_t *p = opts != NULL ? opts : &none;
    if (!json_is_array(verbs))
        return -1;
    json_t *o = verb_new("sip:refer");
    if (o == NULL)
        return -1;
    int err = need_str(o, "referTo", refer_to) || put_str(o, "referredBy", p->referred_by) ||
              put_str(o, "actionHook", p->action_hook);
    return finish(verbs, o, err);
}

int jv_config(json_t *verbs, const jv_config_opts_t *opts)
{
    if (!json_is_array(verbs) || opts == NULL || (opts->synthesizer == NULL && opts->notify_events == JV_UNSET))
        return -1;
    json_t *o = verb_new("config");
    if (o == NULL)
        return -1;
    int err = put_synth(o, "synthesizer", opts->synthesizer) || put_bool(o, "notifyEvents", opts->notify_events);
    return finish(verbs, o, err);
}
