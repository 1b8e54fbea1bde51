#include "asterisk/rtp.h"

#include <string.h>

#define DRIFT_POPS 50 /* 1 s of pops with too much buffered before one frame is skipped */

enum { JB_NEW, JB_IDLE, JB_RUN };

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int rtp_parse(const uint8_t *buf, size_t len, rtp_packet_t *out)
{
    size_t off = RTP_HEADER_LEN, end = len;

    memset(out, 0, sizeof(*out));
    if (len < RTP_HEADER_LEN)
        return RTP_ESHORT;
    if (buf[0] >> 6 != 2)
        return RTP_EVERSION;
    /* RTCP sender/receiver reports and friends (RFC 5761 section 4) would parse as RTP */
    if (buf[1] >= 192 && buf[1] <= 223)
        return RTP_ERTCP;

    unsigned cc = buf[0] & 0x0F;
    if (len - off < 4 * (size_t)cc)
        return RTP_ECSRC;
    const uint8_t *csrc = buf + off;
    off += 4 * (size_t)cc;

    const uint8_t *ext = NULL;
    size_t ext_len = 0;
    uint16_t profile = 0;
    if (buf[0] & 0x10) {
        if (len - off < 4)
            return RTP_EEXT;
        profile = get16(buf + off);
        ext_len = 4 * (size_t)get16(buf + off + 2);
        off += 4;
        if (len - off < ext_len)
            return RTP_EEXT;
        ext = buf + off;
        off += ext_len;
    }

    uint8_t pad = 0;
    if (buf[0] & 0x20) {
        /* the count includes itself, so 0 is invalid; it may not eat into the headers */
        pad = buf[len - 1];
        if (pad == 0 || pad > len - off)
            return RTP_EPADDING;
        end -= pad;
    }

    out->marker = buf[1] >> 7;
    out->pt = buf[1] & 0x7F;
    out->seq = get16(buf + 2);
    out->ts = get32(buf + 4);
    out->ssrc = get32(buf + 8);
    out->csrc_count = (uint8_t)cc;
    out->csrc = cc ? csrc : NULL;
    out->has_ext = ext != NULL;
    out->ext_profile = profile;
    out->ext = ext;
    out->ext_len = ext_len;
    out->padding = pad;
    out->payload = buf + off;
    out->payload_len = end - off;
    return RTP_OK;
}

void rtp_write_header(uint8_t out[RTP_HEADER_LEN], uint8_t pt, int marker, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
    out[0] = 0x80;
    out[1] = (uint8_t)((marker ? 0x80 : 0) | (pt & 0x7F));
    put16(out + 2, seq);
    put32(out + 4, ts);
    put32(out + 8, ssrc);
}

const char *rtp_strerror(int err)
{
    switch (err) {
    case RTP_OK:
        return "ok";
    case RTP_ESHORT:
        return "shorter than an RTP header";
    case RTP_EVERSION:
        return "RTP version is not 2";
    case RTP_ECSRC:
        return "CSRC list past the end of the packet";
    case RTP_EEXT:
        return "header extension past the end of the packet";
    case RTP_EPADDING:
        return "bad padding count";
    case RTP_ERTCP:
        return "an RTCP packet, not RTP";
    case RTP_EINVAL:
        return "invalid argument";
    }
    return "unknown RTP error";
}

/* ---- jitter buffer ---- */

static void slot_clear(rtp_jb_t *jb, rtp_jb_slot_t *s)
{
    if (s->full) {
        s->full = 0;
        jb->count--;
    }
}

static void slot_store(rtp_jb_t *jb, const rtp_packet_t *p)
{
    rtp_jb_slot_t *s = &jb->slot[p->seq % RTP_JB_SLOTS];
    if (!s->full)
        jb->count++;
    s->full = 1;
    s->seq = p->seq;
    memcpy(s->data, p->payload, RTP_PCMU_FRAME);
}

/* The buffered frame with this number, or NULL. */
static rtp_jb_slot_t *slot_get(rtp_jb_t *jb, uint16_t seq)
{
    rtp_jb_slot_t *s = &jb->slot[seq % RTP_JB_SLOTS];
    return s->full && s->seq == seq ? s : NULL;
}

/* Playout restarts at p: what was buffered belonged to the old stream. */
static void anchor(rtp_jb_t *jb, const rtp_packet_t *p)
{
    for (unsigned i = 0; i < RTP_JB_SLOTS; i++)
        jb->slot[i].full = 0;
    jb->count = 0;
    jb->ssrc = p->ssrc;
    jb->next = jb->top = p->seq;
    jb->wait = jb->delay;
    jb->misses = jb->deep = jb->has_bad = 0;
    jb->state = JB_RUN;
    slot_store(jb, p);
    jb->stats.received++;
}

/* Moves the playout point n frames on without playing them. */
static void skip(rtp_jb_t *jb, uint32_t n)
{
    uint32_t buffered = 0;
    for (uint32_t i = 0; i < n && i < RTP_JB_SLOTS; i++) {
        rtp_jb_slot_t *s = slot_get(jb, (uint16_t)(jb->next + i));
        if (s != NULL) {
            slot_clear(jb, s);
            buffered++;
        }
    }
    jb->stats.overflow += buffered;
    jb->stats.lost += n - buffered;
    jb->next = (uint16_t)(jb->next + n);
    jb->misses = 0;
}

int rtp_jb_init(rtp_jb_t *jb, unsigned delay)
{
    memset(jb, 0, sizeof(*jb));
    if (delay >= RTP_JB_SLOTS)
        return RTP_EINVAL;
    jb->delay = (uint8_t)delay;
    jb->state = JB_NEW;
    return RTP_OK;
}

rtp_jb_result_t rtp_jb_push(rtp_jb_t *jb, const rtp_packet_t *p)
{
    if (p->pt != RTP_PT_PCMU) {
        jb->stats.wrong_pt++;
        return RTP_JB_WRONG_PT;
    }
    if (p->payload_len != RTP_PCMU_FRAME) {
        jb->stats.bad++;
        return RTP_JB_WRONG_SIZE;
    }
    if (jb->state == JB_NEW || p->ssrc != jb->ssrc) {
        if (jb->state != JB_NEW)
            jb->stats.restarts++;
        anchor(jb, p);
        return RTP_JB_ACCEPTED;
    }
    if (jb->state == JB_IDLE) {
        anchor(jb, p);
        return RTP_JB_ACCEPTED;
    }

    int d = (int16_t)(uint16_t)(p->seq - jb->next);
    /* still filling the delay: an earlier packet moves the start back if all still fits */
    if (d < 0 && jb->wait > 0 && (uint16_t)(jb->top - p->seq) < RTP_JB_SLOTS) {
        jb->next = p->seq;
        d = 0;
    }
    if (d < 0 && d >= -RTP_JB_MAX_MISORDER) {
        jb->stats.late++;
        return RTP_JB_LATE;
    }
    if (d < 0 || d >= RTP_JB_MAX_DROPOUT) {
        if (jb->has_bad && p->seq == jb->bad_seq) {
            jb->stats.restarts++;
            anchor(jb, p);
            return RTP_JB_ACCEPTED;
        }
        jb->has_bad = 1;
        jb->bad_seq = (uint16_t)(p->seq + 1);
        jb->stats.bad++;
        return RTP_JB_JUMP;
    }
    jb->has_bad = 0;
    if (d >= RTP_JB_SLOTS) {
        skip(jb, (uint32_t)(d - RTP_JB_SLOTS + 1));
        if ((int16_t)(uint16_t)(jb->next - 1 - jb->top) > 0)
            jb->top = (uint16_t)(jb->next - 1);
    }
    if (slot_get(jb, p->seq) != NULL) {
        jb->stats.duplicates++;
        return RTP_JB_DUPLICATE;
    }
    slot_store(jb, p);
    jb->stats.received++;
    if ((int16_t)(uint16_t)(p->seq - jb->top) < 0)
        jb->stats.reordered++;
    else
        jb->top = p->seq;
    return RTP_JB_ACCEPTED;
}

rtp_jb_pop_t rtp_jb_pop(rtp_jb_t *jb, uint8_t out[RTP_PCMU_FRAME])
{
    if (jb->state != JB_RUN || jb->wait > 0) {
        if (jb->state == JB_RUN)
            jb->wait--;
        memset(out, RTP_ULAW_SILENCE, RTP_PCMU_FRAME);
        return RTP_JB_IDLE;
    }

    /* the sender's clock runs faster than our timer: take one frame of latency out */
    if (jb->count > jb->delay + 1u) {
        /* drop a buffered frame; a missing one is played as silence below, which takes the
         * same frame of latency out (skipping it too would count one loss twice) */
        if (++jb->deep >= DRIFT_POPS) {
            if (slot_get(jb, jb->next) != NULL)
                skip(jb, 1);
            jb->deep = 0;
        }
    } else {
        jb->deep = 0;
    }

    rtp_jb_pop_t r;
    rtp_jb_slot_t *s = slot_get(jb, jb->next);
    if (s != NULL) {
        memcpy(out, s->data, RTP_PCMU_FRAME);
        slot_clear(jb, s);
        jb->misses = 0;
        r = RTP_JB_AUDIO;
    } else {
        memset(out, RTP_ULAW_SILENCE, RTP_PCMU_FRAME);
        jb->stats.lost++;
        r = RTP_JB_LOST;
        /* nothing buffered for a while: the sender paused; the next packet re-anchors */
        if (++jb->misses >= RTP_JB_SLOTS && jb->count == 0)
            jb->state = JB_IDLE;
    }
    jb->next++;
    if ((int16_t)(uint16_t)(jb->next - 1 - jb->top) > 0)
        jb->top = (uint16_t)(jb->next - 1);
    return r;
}

unsigned rtp_jb_depth(const rtp_jb_t *jb)
{
    return jb->state == JB_RUN ? jb->count : 0;
}

/* ---- sender ---- */

void rtp_tx_init(rtp_tx_t *tx, uint32_t ssrc, uint16_t seq, uint32_t ts)
{
    tx->ssrc = ssrc;
    tx->seq = seq;
    tx->ts = ts;
    tx->started = 0;
}

void rtp_tx_header(rtp_tx_t *tx, uint8_t out[RTP_HEADER_LEN])
{
    rtp_write_header(out, RTP_PT_PCMU, !tx->started, tx->seq, tx->ts, tx->ssrc);
    tx->started = 1;
    tx->seq++;
    tx->ts += RTP_PCMU_FRAME;
}

size_t rtp_tx_packet(rtp_tx_t *tx, const uint8_t ulaw[RTP_PCMU_FRAME], uint8_t out[RTP_PCMU_PACKET])
{
    rtp_tx_header(tx, out);
    memcpy(out + RTP_HEADER_LEN, ulaw, RTP_PCMU_FRAME);
    return RTP_PCMU_PACKET;
}
