/*
 * jambonz_render: renders seeded jambonz call plans and verbs through jambonz/plan.h and
 * jambonz/verbs.h, one JSON verb array per line. tests/integration/jambonz_verbs.test.mjs
 * checks every line with jambonz's own @jambonz/verb-specifications.
 *
 *     jambonz_render --seeds N [--first S]
 *
 * Line i is built from seed S + i (S defaults to 1) alone, so one line is reproduced with
 * --seeds 1 --first <seed>. Each array is 1..4 segments: a plan (AI listen, transfer to a
 * number, SIP URI or user, refer, voicemail, goodbye, busy decline) or a single writer verb
 * (dial with several targets, say, pause, redirect, config, hangup, listen, sip:decline),
 * every input picked from the seed. Inputs are valid by construction: a -1 from the writer is
 * a bug, reported on stderr with exit status 1.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jambonz/plan.h"
#include "jambonz/verbs.h"
#include "server/target.h"

/* splitmix64: small, and the same stream on every platform. */
typedef struct {
    uint64_t s;
} rng_t;

static uint64_t next(rng_t *r)
{
    uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int below(rng_t *r, int n)
{
    return (int)(next(r) % (uint64_t)n);
}

static int chance(rng_t *r, int percent)
{
    return below(r, 100) < percent;
}

#define PICK(r, arr) ((arr)[below((r), (int)(sizeof(arr) / sizeof((arr)[0])))])

/* NULL or a pick: half the optional inputs are left unset. */
#define MAYBE(r, arr) (chance((r), 50) ? PICK((r), (arr)) : NULL)

static const char *const texts[] = {
    "Hello, how can I help you today?",
    "Transferring you now.",
    "Please hold while I connect you.",
    "Please leave a message after the beep.",
    "Goodbye.",
    "Bonjour, \xc3\xa7"
    "a va ? \xe2\x80\x94 \"quoted\" and a\nnew line",
    "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf \xf0\x9f\x98\x80",
    "<speak>Hi <break time=\"500ms\"/> there</speak>",
};
static const char *const numbers[] = {"+14155550100", "(415) 555-0101", "+442071838750", "+4930901820", "4155550102"};
static const char *const sip_uris[] = {
    "sip:2000@pbx.example.com",
    "sips:alice@example.com:5061;transport=tls",
    "sip:+14155550100@sip.didww.com;transport=tcp",
    "sip:2000@[2001:db8::1]:5080",
    "sip:ops@pbx.example.com?X-Ticket=42",
    "bob@10.0.0.5",
};
static const char *const users[] = {"alice@acme.sip.example.com", "bob@support.sip.jambonz.cloud",
                                    "1001@tenant.example"};
static const char *const trunks[] = {"didww", "twilio-elastic", "Carrier A"};
static const char *const caller_ids[] = {"+18005550199", "+14155550100", "anonymous", "+442071838750"};
static const char *const hooks[] = {
    "https://sb.example.com/jambonz/action?session=S1&step=dial&attempt=0",
    "https://sb.example.com/jambonz/action?session=S1&step=listen",
    "/jambonz/action?session=S2&step=voicemail&attempt=3",
    "https://sb.example.com:8443/prefix/jambonz/action?session=S3&step=refer",
};
static const char *const ws_urls[] = {"wss://sb.example.com/jambonz/listen", "ws://127.0.0.1:8080/jambonz/listen",
                                      "wss://sb.example.com/prefix/jambonz/listen"};
static const char *const sessions[] = {"S1", "3f2a9c1e-6f0b-4a57-9d1e-0c2b5a7e8f90", "sess_42"};
static const char *const tenants[] = {"1", "7", "123456"};
static const char *const agents[] = {"sales", "support", "collections"};
static const char *const vendors[] = {"google", "aws", "microsoft", "elevenlabs", "deepgram"};
static const char *const languages[] = {"en-US", "en-GB", "de-DE", "ja-JP"};
static const char *const voices[] = {"en-US-Wavenet-C", "Joanna", "en-US-AvaNeural", "21m00Tcm4TlvDq8ikWAM"};
static const int rates[] = {8000, 16000, 24000, 48000};

static jv_synth_t synth(rng_t *r)
{
    return (jv_synth_t){.vendor = PICK(r, vendors), .language = MAYBE(r, languages), .voice = MAYBE(r, voices)};
}

static jv_bool_t tri(rng_t *r)
{
    return (jv_bool_t)below(r, 3);
}

static target_t target(rng_t *r, int sip)
{
    target_t t;
    const char *why = NULL, *in = sip ? PICK(r, sip_uris) : PICK(r, numbers);
    if (target_parse(in, "1", &t, &why) != 0) {
        fprintf(stderr, "jambonz_render: target_parse(%s): %s\n", in, why);
        exit(1);
    }
    return t;
}

static int seg_ai_listen(rng_t *r, json_t *v)
{
    int with_auth = chance(r, 50);
    jplan_listen_t p = {
        .greeting = MAYBE(r, texts),
        .url = PICK(r, ws_urls),
        .action_hook = PICK(r, hooks),
        .sample_rate = chance(r, 50) ? 8000 : 16000,
        .session_id = PICK(r, sessions),
        .tenant_id = PICK(r, tenants),
        .agent_type = MAYBE(r, agents),
        .ws_username = with_auth ? "S1" : NULL,
        .ws_password = with_auth ? "9b1f4c0e2d7a8b3c" : NULL,
    };
    return jplan_ai_listen(v, &p);
}

static int seg_transfer(rng_t *r, json_t *v, int kind)
{
    target_t t = target(r, kind == 1);
    int with_auth = chance(r, 50);
    jplan_transfer_t p = {
        .notice = MAYBE(r, texts),
        .target = kind == 2 ? NULL : &t,
        .user = kind == 2 ? PICK(r, users) : NULL,
        .trunk = MAYBE(r, trunks),
        .sip_username = with_auth ? "pbxuser" : NULL,
        .sip_password = with_auth ? "pbx pass\"word" : NULL,
        .caller_id = MAYBE(r, caller_ids),
        .timeout_s = below(r, 4) * 15,
        .answer_on_bridge = chance(r, 50),
        .action_hook = MAYBE(r, hooks),
    };
    return jplan_transfer(v, &p);
}

static int seg_refer(rng_t *r, json_t *v)
{
    target_t t = target(r, chance(r, 60));
    jplan_refer_t p = {
        .notice = MAYBE(r, texts),
        .target = &t,
        .referred_by = chance(r, 50) ? "sip:+18005550199@sb.example.com" : NULL,
        .action_hook = MAYBE(r, hooks),
    };
    return jplan_refer(v, &p);
}

static int seg_voicemail(rng_t *r, json_t *v)
{
    int with_auth = chance(r, 50);
    jplan_voicemail_t p = {
        .prompt = PICK(r, texts),
        .url = PICK(r, ws_urls),
        .action_hook = PICK(r, hooks),
        .session_id = PICK(r, sessions),
        .max_length_s = 30 + below(r, 271),
        .ws_username = with_auth ? "S2" : NULL,
        .ws_password = with_auth ? "pw" : NULL,
    };
    return jplan_voicemail(v, &p);
}

/* 2..JV_MAX_TARGETS targets of every type, rung at once. */
static int seg_dial(rng_t *r, json_t *v)
{
    jv_target_t ts[JV_MAX_TARGETS];
    target_t parsed[JV_MAX_TARGETS];
    jv_auth_t auth = {"u1", "p1"};
    int n = chance(r, 10) ? JV_MAX_TARGETS : 2 + below(r, JV_MAX_TARGETS - 1);
    for (int i = 0; i < n; i++) {
        switch (below(r, 3)) {
        case 0:
            parsed[i] = target(r, 0);
            ts[i] = (jv_target_t){.type = JV_TARGET_PHONE, .number = parsed[i].value, .trunk = MAYBE(r, trunks)};
            break;
        case 1:
            parsed[i] = target(r, 1);
            ts[i] =
                (jv_target_t){.type = JV_TARGET_SIP, .sip_uri = parsed[i].value, .auth = chance(r, 50) ? &auth : NULL};
            break;
        default:
            ts[i] = (jv_target_t){.type = JV_TARGET_USER, .name = PICK(r, users)};
        }
    }
    jv_dial_opts_t o = {
        .caller_id = MAYBE(r, caller_ids),
        .caller_name = chance(r, 30) ? "Acme \"Support\"" : NULL,
        .answer_on_bridge = tri(r),
        .timeout = below(r, 3) * 20,
        .time_limit = chance(r, 30) ? 3600 : 0,
        .action_hook = MAYBE(r, hooks),
        .dial_music = chance(r, 20) ? "https://sb.example.com/ring.mp3" : NULL,
    };
    return jv_dial(v, ts, (size_t)n, &o);
}

static int seg_say(rng_t *r, json_t *v)
{
    jv_synth_t s = synth(r);
    jv_say_opts_t o = {.synthesizer = chance(r, 50) ? &s : NULL, .loop = below(r, 3), .early_media = tri(r)};
    return jv_say(v, PICK(r, texts), &o);
}

static int seg_config(rng_t *r, json_t *v)
{
    jv_synth_t s = synth(r);
    int what = below(r, 3); /* synthesizer, notifyEvents, both */
    jv_config_opts_t o = {
        .synthesizer = what != 1 ? &s : NULL,
        .notify_events = what != 0 ? (chance(r, 50) ? JV_TRUE : JV_FALSE) : JV_UNSET,
    };
    return jv_config(v, &o);
}

static int seg_hangup(rng_t *r, json_t *v)
{
    static const jv_header_t h[] = {{"X-Reason", "transfer failed"}, {"X-Session-Id", "S1"}, {"User-to-User", "42"}};
    return jv_hangup(v, h, (size_t)below(r, 4));
}

static int seg_listen(rng_t *r, json_t *v)
{
    static const char *const mixes[] = {"mono", "stereo", "mixed"};
    static const char *const keys[] = {"#", "*", "0", "9"};
    int rate = PICK(r, rates);
    json_t *meta = chance(r, 50) ? json_pack("{s:s,s:i,s:b,s:{s:s}}", "session_id", PICK(r, sessions), "n",
                                             below(r, 100), "flag", chance(r, 50), "nested", "k", "v")
                                 : NULL;
    jv_bidi_t bidi = {.enabled = tri(r), .streaming = tri(r), .sample_rate = chance(r, 50) ? rate : 0};
    jv_auth_t auth = {"user", "pass"};
    jv_listen_opts_t o = {
        .action_hook = MAYBE(r, hooks),
        .mix_type = MAYBE(r, mixes),
        .sample_rate = chance(r, 70) ? rate : 0,
        .metadata = meta,
        .bidirectional_audio = chance(r, 50) ? &bidi : NULL,
        .pass_dtmf = tri(r),
        .max_length = chance(r, 30) ? 60 : 0,
        .play_beep = tri(r),
        .finish_on_key = MAYBE(r, keys),
        .timeout = chance(r, 30) ? 10 : 0,
        .ws_auth = chance(r, 30) ? &auth : NULL,
    };
    int rc = jv_listen(v, PICK(r, ws_urls), &o);
    json_decref(meta);
    return rc;
}

static int seg_decline(rng_t *r, json_t *v)
{
    static const int statuses[] = {404, 480, 486, 503, 603};
    static const char *const reasons[] = {"Not Found", "Temporarily Unavailable", "Busy Here", "Decline"};
    return jv_sip_decline(v, PICK(r, statuses), MAYBE(r, reasons));
}

static int segment(rng_t *r, json_t *v, int kind)
{
    switch (kind) {
    case 0:
        return seg_ai_listen(r, v);
    case 1:
    case 2:
    case 3:
        return seg_transfer(r, v, kind - 1); /* number, SIP, user */
    case 4:
        return seg_refer(r, v);
    case 5:
        return seg_voicemail(r, v);
    case 6:
        return jplan_goodbye(v, MAYBE(r, texts));
    case 7:
        return jplan_decline_busy(v);
    case 8:
        return seg_dial(r, v);
    case 9:
        return seg_say(r, v);
    case 10:
        return jv_pause(v, 1 + below(r, 5));
    case 11:
        return jv_redirect(v, PICK(r, hooks));
    case 12:
        return seg_config(r, v);
    case 13:
        return seg_hangup(r, v);
    case 14:
        return seg_listen(r, v);
    default:
        return seg_decline(r, v);
    }
}

#define KINDS 16

int main(int argc, char **argv)
{
    long long count = -1, first = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seeds") == 0)
            count = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--first") == 0)
            first = atoll(argv[i + 1]);
        else
            count = -1, i = argc;
    }
    if (count < 0 || argc % 2 == 0) {
        fprintf(stderr, "usage: jambonz_render --seeds N [--first S]\n");
        return 2;
    }
    for (long long i = 0; i < count; i++) {
        uint64_t seed = (uint64_t)(first + i);
        rng_t r = {seed};
        json_t *v = json_array();
        int n = 1 + below(&r, 4);
        for (int k = 0; k < n; k++) {
            int kind = below(&r, KINDS);
            if (v == NULL || segment(&r, v, kind) != 0) {
                fprintf(stderr, "jambonz_render: seed %llu: segment %d (kind %d) refused\n", (unsigned long long)seed,
                        k, kind);
                return 1;
            }
        }
        char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s == NULL) {
            fprintf(stderr, "jambonz_render: seed %llu: out of memory\n", (unsigned long long)seed);
            return 1;
        }
        puts(s);
        free(s);
        json_decref(v);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
