/*
 * libFuzzer target: rtp_parse on the whole input (checked against the documented layout),
 * then the input as a script for one jitter buffer: raw packets, well-formed PCMU packets
 * with fuzzed sequence numbers and SSRCs, and pops; the buffer's invariants are checked
 * after every step.
 *   script: op byte; op % 4 == 0: pop; 1: raw packet (length byte, bytes);
 *   2: PCMU packet (seq delta byte, signed; op bit 2 picks the SSRC, bit 3 PCMA, bit 4 80 bytes);
 *   3: PCMU packet at an absolute seq (two bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "asterisk/rtp.h"

static void check_packet(const uint8_t *buf, size_t len, const rtp_packet_t *p)
{
    const uint8_t *end = buf + len;
    if (p->payload < buf + RTP_HEADER_LEN || p->payload > end || p->payload_len > (size_t)(end - p->payload))
        abort();
    if ((size_t)(p->payload - buf) + p->payload_len + p->padding != len)
        abort();
    if (p->csrc_count > 15 || (p->csrc_count != 0) != (p->csrc != NULL))
        abort();
    if (p->has_ext != (p->ext != NULL) || p->ext_len % 4 != 0 || (p->ext && p->ext + p->ext_len != p->payload))
        abort();
    if (p->pt > 127 || p->marker > 1)
        abort();
    if (!p->has_ext && p->payload != buf + RTP_HEADER_LEN + 4 * (size_t)p->csrc_count)
        abort();
}

static void check_jb(const rtp_jb_t *jb, const rtp_jb_stats_t *before)
{
    unsigned full = 0;
    for (unsigned i = 0; i < RTP_JB_SLOTS; i++) {
        const rtp_jb_slot_t *s = &jb->slot[i];
        if (!s->full)
            continue;
        full++;
        /* a frame sits in its own slot, inside the window starting at the playout point */
        if (s->seq % RTP_JB_SLOTS != i || (uint16_t)(s->seq - jb->next) >= RTP_JB_SLOTS)
            abort();
    }
    if (full != jb->count || rtp_jb_depth(jb) > RTP_JB_SLOTS || jb->wait > jb->delay)
        abort();
    /* counters only grow */
    const uint64_t *a = (const uint64_t *)before, *b = (const uint64_t *)&jb->stats;
    for (size_t i = 0; i < sizeof(rtp_jb_stats_t) / sizeof(uint64_t); i++)
        if (b[i] < a[i])
            abort();
}

static void push_pcmu(rtp_jb_t *jb, uint16_t seq, uint8_t op)
{
    uint8_t pkt[RTP_PCMU_PACKET];
    rtp_packet_t p;
    size_t size = op & 16 ? 80 : RTP_PCMU_FRAME;
    rtp_write_header(pkt, op & 8 ? 8 : 0, 0, seq, seq * 160u, op & 4 ? 0x1234 : 0xABCD);
    memset(pkt + RTP_HEADER_LEN, (uint8_t)seq, size);
    if (rtp_parse(pkt, RTP_HEADER_LEN + size, &p) != RTP_OK)
        abort();
    rtp_jb_result_t r = rtp_jb_push(jb, &p);
    if (r == RTP_JB_ACCEPTED && (p.pt != 0 || p.payload_len != RTP_PCMU_FRAME))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so ASan catches any read past the end */
    uint8_t *buf = malloc(size != 0 ? size : 1);
    rtp_packet_t p;
    rtp_jb_t jb;
    uint8_t out[RTP_PCMU_FRAME];

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    if (rtp_parse(buf, size, &p) == RTP_OK)
        check_packet(buf, size, &p);
    else if (p.payload != NULL || p.payload_len != 0)
        abort();
    (void)rtp_strerror(rtp_parse(buf, size, &p));

    if (rtp_jb_init(&jb, size ? data[0] % RTP_JB_SLOTS : 2) != RTP_OK)
        abort();
    uint16_t seq = 0;
    size_t i = 1;
    while (i < size) {
        rtp_jb_stats_t before = jb.stats;
        uint8_t op = data[i++];
        switch (op % 4) {
        case 0: {
            rtp_jb_pop_t r = rtp_jb_pop(&jb, out);
            if (r != RTP_JB_AUDIO)
                for (size_t k = 0; k < sizeof out; k++)
                    if (out[k] != RTP_ULAW_SILENCE)
                        abort();
            if (r == RTP_JB_LOST && jb.stats.lost != before.lost + 1)
                abort();
            break;
        }
        case 1: {
            size_t len = i < size ? data[i++] : 0;
            if (len > size - i)
                len = size - i;
            if (rtp_parse(buf + i, len, &p) == RTP_OK) {
                check_packet(buf + i, len, &p);
                (void)rtp_jb_push(&jb, &p);
            }
            i += len;
            break;
        }
        case 2:
            seq = (uint16_t)(seq + (i < size ? (int8_t)data[i++] : 1));
            push_pcmu(&jb, seq, op);
            break;
        default:
            if (size - i >= 2) {
                seq = (uint16_t)(data[i] << 8 | data[i + 1]);
                i += 2;
            }
            push_pcmu(&jb, seq, op);
            break;
        }
        check_jb(&jb, &before);
    }

    rtp_tx_t tx;
    uint8_t pkt[RTP_PCMU_PACKET];
    rtp_tx_init(&tx, 1, seq, 2);
    if (rtp_tx_packet(&tx, out, pkt) != RTP_PCMU_PACKET || rtp_parse(pkt, sizeof pkt, &p) != RTP_OK || p.seq != seq ||
        p.payload_len != RTP_PCMU_FRAME || memcmp(p.payload, out, RTP_PCMU_FRAME) != 0)
        abort();

    free(buf);
    return 0;
}
