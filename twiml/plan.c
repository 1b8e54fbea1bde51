#include "twiml/plan.h"

#include <stddef.h>

int plan_transfer(twiml_doc_t *doc, const plan_transfer_t *p)
{
    if (p->notice != NULL)
        twiml_say(doc, p->notice, NULL);
    /* answerOnBridge keeps the caller hearing ringing, not silence, until the agent answers */
    twiml_dial_opts_t dial = {
        .action = p->action_url,
        .method = p->action_url ? "POST" : NULL,
        .timeout = p->timeout_s,
        .caller_id = p->caller_id,
        .answer_on_bridge = TWIML_TRUE,
    };
    twiml_dial_begin(doc, &dial);
    if (p->target->kind == TARGET_SIP) {
        twiml_sip_opts_t sip = {.username = p->sip_username, .password = p->sip_password};
        twiml_sip(doc, p->target->value, &sip);
    } else {
        twiml_number(doc, p->target->value, NULL);
    }
    twiml_dial_end(doc);
    if (p->apology != NULL)
        twiml_say(doc, p->apology, NULL);
    return twiml_hangup(doc);
}

int plan_ai_stream(twiml_doc_t *doc, const plan_stream_t *p)
{
    if (p->greeting != NULL && p->greeting[0] != '\0')
        twiml_say(doc, p->greeting, NULL);
    twiml_connect_opts_t conn = {.action = p->action_url, .method = p->action_url ? "POST" : NULL};
    twiml_connect_begin(doc, &conn);
    twiml_stream_opts_t stream = {.url = p->stream_url};
    twiml_stream_begin(doc, &stream);
    twiml_parameter(doc, "session_id", p->session_id);
    twiml_parameter(doc, "tenant_id", p->tenant_id);
    if (p->agent_type != NULL && p->agent_type[0] != '\0')
        twiml_parameter(doc, "agent_type", p->agent_type);
    twiml_stream_end(doc);
    return twiml_connect_end(doc);
}

int plan_voicemail(twiml_doc_t *doc, const plan_voicemail_t *p)
{
    static const char *const events[] = {"completed", NULL};
    if (p->prompt != NULL)
        twiml_say(doc, p->prompt, NULL);
    twiml_record_opts_t rec = {
        .action = p->action_url,
        .method = p->action_url ? "POST" : NULL,
        .max_length = p->max_length_s,
        .play_beep = TWIML_TRUE,
        .finish_on_key = "#",
        .recording_status_callback = p->recording_callback_url,
        .recording_status_callback_event = p->recording_callback_url ? events : NULL,
    };
    twiml_record(doc, &rec);
    /* reached only when the caller records nothing */
    twiml_say(doc, "We did not receive a message. Goodbye.", NULL);
    return twiml_hangup(doc);
}

int plan_goodbye(twiml_doc_t *doc, const char *text)
{
    if (text != NULL)
        twiml_say(doc, text, NULL);
    return twiml_hangup(doc);
}

int plan_reject_busy(twiml_doc_t *doc, const char *apology)
{
    if (apology != NULL)
        twiml_say(doc, apology, NULL);
    twiml_reject_opts_t rej = {.reason = "busy"};
    return twiml_reject(doc, &rej);
}
