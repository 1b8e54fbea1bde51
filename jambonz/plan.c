#include "jambonz/plan.h"

#include "jambonz/verbs.h"

static int set(json_t *o, const char *key, json_t *v)
{
    return v == NULL || json_object_set_new(o, key, v) != 0 ? -1 : 0;
}

static int given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* A plan is written to a scratch array and appended whole, so a failure leaves `verbs` as it was. */
static json_t *scratch(json_t *verbs)
{
    return json_is_array(verbs) ? json_array() : NULL;
}

static int commit(json_t *verbs, json_t *tmp, int err)
{
    if (tmp == NULL)
        return -1;
    if (err == 0)
        err = json_array_extend(verbs, tmp);
    json_decref(tmp);
    return err != 0 ? -1 : 0;
}

/* Optional text said first; unset says nothing. */
static int say_opt(json_t *tmp, const char *text)
{
    return given(text) ? jv_say(tmp, text, NULL) : 0;
}

int jplan_ai_listen(json_t *verbs, const jplan_listen_t *p)
{
    json_t *tmp = scratch(verbs), *meta = json_object();
    int err = tmp == NULL || meta == NULL || !given(p->session_id) || !given(p->tenant_id) || p->sample_rate <= 0 ||
              given(p->ws_username) != given(p->ws_password);
    err = err || set(meta, "session_id", json_string(p->session_id)) ||
          set(meta, "tenant_id", json_string(p->tenant_id)) ||
          (given(p->agent_type) && set(meta, "agent_type", json_string(p->agent_type)));
    if (!err) {
        /* streaming back at the same rate: the agent's audio is played as it arrives */
        jv_bidi_t bidi = {.enabled = JV_TRUE, .streaming = JV_TRUE, .sample_rate = p->sample_rate};
        jv_auth_t auth = {.username = p->ws_username, .password = p->ws_password};
        jv_listen_opts_t o = {
            .action_hook = p->action_hook,
            .mix_type = "mono",
            .sample_rate = p->sample_rate,
            .metadata = meta,
            .bidirectional_audio = &bidi,
            .pass_dtmf = JV_TRUE,
            .ws_auth = given(p->ws_username) ? &auth : NULL,
        };
        err = say_opt(tmp, p->greeting) || jv_listen(tmp, p->url, &o);
    }
    json_decref(meta);
    return commit(verbs, tmp, err);
}

int jplan_transfer(json_t *verbs, const jplan_transfer_t *p)
{
    jv_auth_t auth = {.username = p->sip_username, .password = p->sip_password};
    jv_target_t t = {0};
    if ((p->target != NULL) == given(p->user))
        return -1;
    if (given(p->user)) {
        t = (jv_target_t){.type = JV_TARGET_USER, .name = p->user};
    } else if (p->target->kind == TARGET_NUMBER) {
        t = (jv_target_t){.type = JV_TARGET_PHONE, .number = p->target->value};
    } else if (p->target->kind == TARGET_SIP) {
        t = (jv_target_t){.type = JV_TARGET_SIP, .sip_uri = p->target->value};
    } else {
        return -1; /* an Asterisk dial string */
    }
    /* each setting goes to the target kind it is for (the writer refuses the others) */
    if (t.type == JV_TARGET_SIP && (given(p->sip_username) || given(p->sip_password)))
        t.auth = &auth; /* half a pair: the writer refuses it */
    if (t.type == JV_TARGET_PHONE)
        t.trunk = p->trunk;
    jv_dial_opts_t o = {
        .caller_id = p->caller_id,
        .answer_on_bridge = p->answer_on_bridge ? JV_TRUE : JV_UNSET,
        .timeout = p->timeout_s,
        .action_hook = p->action_hook,
    };
    json_t *tmp = scratch(verbs);
    int err = tmp == NULL || say_opt(tmp, p->notice) || jv_dial(tmp, &t, 1, &o);
    return commit(verbs, tmp, err);
}

int jplan_refer(json_t *verbs, const jplan_refer_t *p)
{
    if (p->target == NULL || (p->target->kind != TARGET_NUMBER && p->target->kind != TARGET_SIP))
        return -1;
    jv_refer_opts_t o = {.referred_by = p->referred_by, .action_hook = p->action_hook};
    json_t *tmp = scratch(verbs);
    int err = tmp == NULL || say_opt(tmp, p->notice) || jv_sip_refer(tmp, p->target->value, &o);
    return commit(verbs, tmp, err);
}

int jplan_voicemail(json_t *verbs, const jplan_voicemail_t *p)
{
    json_t *tmp = scratch(verbs), *meta = json_object();
    int err = tmp == NULL || meta == NULL || !given(p->prompt) || !given(p->session_id) || p->max_length_s <= 0 ||
              given(p->ws_username) != given(p->ws_password) || set(meta, "session_id", json_string(p->session_id)) ||
              set(meta, "voicemail", json_true());
    if (!err) {
        jv_auth_t auth = {.username = p->ws_username, .password = p->ws_password};
        /* 8 kHz is the phone line's own rate: a higher one only makes the file bigger */
        jv_listen_opts_t o = {
            .action_hook = p->action_hook,
            .mix_type = "mono",
            .sample_rate = 8000,
            .metadata = meta,
            .max_length = p->max_length_s,
            .play_beep = JV_TRUE,
            .finish_on_key = "#",
            .ws_auth = given(p->ws_username) ? &auth : NULL,
        };
        err = jv_say(tmp, p->prompt, NULL) || jv_listen(tmp, p->url, &o);
    }
    json_decref(meta);
    return commit(verbs, tmp, err);
}

int jplan_goodbye(json_t *verbs, const char *text)
{
    json_t *tmp = scratch(verbs);
    int err = tmp == NULL || say_opt(tmp, text) || jv_hangup(tmp, NULL, 0);
    return commit(verbs, tmp, err);
}

int jplan_decline_busy(json_t *verbs)
{
    /* the writer builds one verb whole: nothing to undo */
    return jv_sip_decline(verbs, 486, "Busy Here");
}
