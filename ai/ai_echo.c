/*
 * echo: plays the caller's audio back ECHO_DELAY_MS later. A diagnostic for one-way-audio
 * problems, and the provider when no AI is configured. It says nothing on its own, and
 * reports the caller as active when a frame carries sound (there is no model to do VAD).
 * One timer per session, armed for the oldest frame's due time.
 */
#include "ai/ai.h"
#include "server/worker.h"

#include <stdlib.h>
#include <string.h>

#define ECHO_DELAY_MS  100
#define ECHO_SLOTS     16  /* 320 ms of 20 ms frames: the delay needs 5, the rest absorbs jitter */
#define ECHO_FRAME_MAX 216 /* base64 of a 20 ms frame */

struct ai_session {
    uv_timer_t timer; /* first: the handle's close callback frees the session */
    const ai_events_t *ev;
    void *bridge;
    char frames[ECHO_SLOTS][ECHO_FRAME_MAX];
    uint8_t lens[ECHO_SLOTS];
    uint64_t at[ECHO_SLOTS];
    unsigned head, count;
    unsigned long dropped;
    int ready_sent, quiet, active_pending;
    unsigned seen; /* frames received, to sample the VAD */
};

/* mu-law byte to |linear| magnitude, enough to tell sound from silence */
static int mulaw_mag(unsigned char u)
{
    u = (unsigned char)~u;
    int exp = (u >> 4) & 7, mant = u & 15;
    return ((mant << 3) + 132) << exp;
}

static void on_due(uv_timer_t *t);

static void arm(ai_session_t *s)
{
    if (s->count == 0)
        return;
    uint64_t now = uv_now(s->timer.loop), due = s->at[s->head] + ECHO_DELAY_MS;
    uv_timer_start(&s->timer, on_due, due > now ? due - now : 0, 0);
}

static void on_due(uv_timer_t *t)
{
    ai_session_t *s = (ai_session_t *)t;
    uint64_t now = uv_now(t->loop);
    if (!s->ready_sent) {
        s->ready_sent = 1;
        s->ev->ready(s->bridge);
    }
    if (s->active_pending) {
        s->active_pending = 0;
        if (s->ev->caller_active != NULL)
            s->ev->caller_active(s->bridge);
    }
    while (s->count > 0 && now - s->at[s->head] >= ECHO_DELAY_MS) {
        unsigned i = s->head;
        s->head = (s->head + 1) % ECHO_SLOTS;
        s->count--;
        s->ev->audio(s->bridge, s->frames[i], s->lens[i], "echo");
    }
    arm(s);
}

static ai_session_t *echo_open(worker_t *w, const ai_open_t *p, const ai_events_t *ev, void *bridge)
{
    (void)p;
    ai_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->ev = ev;
    s->bridge = bridge;
    uv_timer_init(&w->loop, &s->timer);
    uv_timer_start(&s->timer, on_due, 0, 0); /* "ready" on the next loop turn, never from open() */
    return s;
}

static void echo_send_audio(ai_session_t *s, const char *b64, size_t len)
{
    if (len > ECHO_FRAME_MAX) {
        s->dropped++;
        return;
    }
    if (s->count == ECHO_SLOTS) { /* drop the oldest */
        s->head = (s->head + 1) % ECHO_SLOTS;
        s->count--;
        s->dropped++;
    }
    unsigned i = (s->head + s->count) % ECHO_SLOTS;
    memcpy(s->frames[i], b64, len);
    s->lens[i] = (uint8_t)len;
    s->at[i] = uv_now(s->timer.loop);
    if (s->count++ == 0 && s->ready_sent)
        arm(s);
    /* sound after a quiet spell counts as the caller being there; a look every 100 ms is
     * plenty for that, and keeps the decode off most frames */
    if (++s->seen % 5 != 0)
        return;
    unsigned char pcm[162];
    long n = ai_b64_decode(b64, len, pcm, sizeof(pcm));
    long sum = 0;
    for (long k = 0; k < n; k++)
        sum += mulaw_mag(pcm[k]);
    if (n > 0 && sum / n > 800) {
        if (s->quiet >= 2)
            s->active_pending = 1;
        s->quiet = 0;
    } else {
        s->quiet++;
    }
}

static void echo_interrupt(ai_session_t *s, const char *item_id, unsigned audio_end_ms)
{
    (void)item_id;
    (void)audio_end_ms;
    s->head = s->count = 0; /* what was not played back yet is gone */
}

static void echo_tool_result(ai_session_t *s, const char *call_id, const char *output_json)
{
    (void)s;
    (void)call_id;
    (void)output_json;
}

static void echo_say(ai_session_t *s, const char *instructions)
{
    (void)s;
    (void)instructions; /* the echo agent has no voice of its own */
}

static unsigned long echo_dropped(const ai_session_t *s)
{
    return s->dropped;
}

static void echo_close(ai_session_t *s)
{
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, (uv_close_cb)free);
}

const ai_provider_t ai_echo_provider = {
    "echo", echo_open, echo_send_audio, echo_interrupt, echo_tool_result, echo_say, echo_dropped, echo_close,
};
