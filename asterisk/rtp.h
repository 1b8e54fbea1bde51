/*
 * rtp: RTP (RFC 3550) for the Asterisk ExternalMedia leg: packet parsing and header writing,
 * a receive jitter/reorder buffer for one 20 ms PCMU stream, and a sender for the other way.
 * Pure functions: no I/O, no allocation, no clock; the caller's 20 ms pacing timer drives
 * rtp_jb_pop() and the sender.
 *
 * Ownership: rtp_parse() points into the caller's buffer (no copy): the rtp_packet_t lives as
 * long as that buffer. rtp_jb_t and rtp_tx_t are plain caller-owned structs (embed them in the
 * call's state); rtp_jb_push() copies the payload, so the packet buffer may be reused at once.
 *
 * Jitter buffer rules (one stream, payload type 0, 160 bytes = 20 ms of mu-law):
 * - Frames are placed by sequence number in RTP_JB_SLOTS slots; pop plays them in order.
 *   The first packet (or the first after a restart) anchors playout; the next `delay` pops
 *   give idle silence, so packets reordered within that delay are put back in order.
 * - A missing frame is played as 0xFF silence and counted as lost. After RTP_JB_SLOTS misses
 *   in a row with nothing buffered the stream counts as paused: pops go idle (not lost) and
 *   the next packet re-anchors, so a sender that paused never makes everything "late"
 *   (a pause thus shows as RTP_JB_SLOTS lost frames).
 * - Behind the playout point by up to RTP_JB_MAX_MISORDER: late, dropped. Ahead beyond the
 *   slots (a burst after a stall): the oldest frames are skipped (overflow) to keep latency
 *   bounded by RTP_JB_SLOTS frames. When more than delay + 1 frames stay buffered for 1 s
 *   (the sender's clock is faster than ours), one frame is skipped (overflow).
 * - A jump beyond RTP_JB_MAX_MISORDER behind or RTP_JB_MAX_DROPOUT ahead is held as suspect
 *   (counted bad) and restarts the buffer only when the next packet follows it (RFC 3550 A.1),
 *   so one stray packet cannot flush the stream. A new SSRC restarts at once.
 * - Other payload types are refused (wrong_pt). Payloads other than 160 bytes are refused
 *   (bad), not re-framed: Asterisk packetises ulaw at the format's 20 ms framing, and any
 *   other size means a mis-configured peer whose audio would be wrong anyway. Watch `bad`.
 * - The caller filters packets by source address and port; the buffer trusts what it gets.
 * Sequence numbers wrap at 65535; comparisons are modulo 2^16.
 */
#ifndef SB_RTP_H
#define SB_RTP_H

#include <stddef.h>
#include <stdint.h>

#define RTP_HEADER_LEN   12
#define RTP_PT_PCMU      0
#define RTP_PCMU_FRAME   160 /* 20 ms of 8 kHz mu-law */
#define RTP_PCMU_PACKET  (RTP_HEADER_LEN + RTP_PCMU_FRAME)
#define RTP_ULAW_SILENCE 0xFF

enum {
    RTP_OK = 0,
    RTP_ESHORT = -1,   /* shorter than the 12-byte fixed header */
    RTP_EVERSION = -2, /* version is not 2 */
    RTP_ECSRC = -3,    /* CSRC list runs past the end */
    RTP_EEXT = -4,     /* extension header or its data runs past the end */
    RTP_EPADDING = -5, /* padding count 0 or larger than what follows the headers */
    RTP_ERTCP = -6,    /* second byte 192..223: an RTCP packet (RFC 5761), not RTP */
    RTP_EINVAL = -7,   /* bad argument (rtp_jb_init delay) */
};

typedef struct rtp_packet {
    uint8_t marker;
    uint8_t pt;
    uint16_t seq;
    uint32_t ts;
    uint32_t ssrc;
    uint8_t csrc_count;   /* 0..15 */
    const uint8_t *csrc;  /* csrc_count big-endian 32-bit ids, in the buffer */
    uint8_t has_ext;      /* the X bit */
    uint16_t ext_profile; /* "defined by profile" field, 0xBEDE for RFC 8285 one-byte */
    const uint8_t *ext;   /* extension data (after its 4-byte header), ext_len bytes */
    size_t ext_len;       /* a multiple of 4 */
    uint8_t padding;      /* padding bytes removed from the end, 0 when P is clear */
    const uint8_t *payload;
    size_t payload_len; /* may be 0 */
} rtp_packet_t;

/* Validates buf and fills *out (pointing into buf). *out is zeroed on error. */
int rtp_parse(const uint8_t *buf, size_t len, rtp_packet_t *out);
/* Writes a 12-byte header: version 2, no padding, extension or CSRC; pt is masked to 7 bits. */
void rtp_write_header(uint8_t out[RTP_HEADER_LEN], uint8_t pt, int marker, uint16_t seq, uint32_t ts, uint32_t ssrc);
/* Static string; never NULL. */
const char *rtp_strerror(int err);

/* ---- receive jitter/reorder buffer ---- */

#define RTP_JB_SLOTS        8    /* frames held at most: 160 ms */
#define RTP_JB_MAX_MISORDER 100  /* frames behind the playout point still called late */
#define RTP_JB_MAX_DROPOUT  3000 /* frames ahead still taken as the same stream */

typedef enum {
    RTP_JB_ACCEPTED = 0,
    RTP_JB_DUPLICATE,  /* that sequence number is already buffered */
    RTP_JB_LATE,       /* its turn to play has passed */
    RTP_JB_WRONG_PT,   /* payload type is not 0 */
    RTP_JB_WRONG_SIZE, /* payload is not 160 bytes (counted in bad) */
    RTP_JB_JUMP,       /* sequence jump held as suspect (counted in bad) */
} rtp_jb_result_t;

typedef enum {
    RTP_JB_AUDIO = 0, /* a received frame */
    RTP_JB_LOST,      /* the frame is missing: silence, counted as lost */
    RTP_JB_IDLE,      /* no stream yet, paused, or filling the playout delay: silence */
} rtp_jb_pop_t;

typedef struct rtp_jb_stats {
    uint64_t received;   /* accepted into the buffer */
    uint64_t duplicates; /* refused as duplicate */
    uint64_t late;       /* refused as late */
    uint64_t lost;       /* missing frames played as silence (or skipped by a jump ahead) */
    uint64_t reordered;  /* accepted after a packet with a higher sequence number */
    uint64_t wrong_pt;   /* refused: payload type */
    uint64_t bad;        /* refused: size, or a suspect sequence jump */
    uint64_t overflow;   /* buffered or expected frames skipped to bound latency */
    uint64_t restarts;   /* SSRC changes and confirmed sequence jumps */
} rtp_jb_stats_t;

typedef struct rtp_jb_slot {
    uint16_t seq;
    uint8_t full;
    uint8_t data[RTP_PCMU_FRAME];
} rtp_jb_slot_t;

/* Opaque in spirit: read only `stats`; the rest is the buffer's own state. */
typedef struct rtp_jb {
    rtp_jb_stats_t stats;
    rtp_jb_slot_t slot[RTP_JB_SLOTS];
    uint32_t ssrc;
    uint16_t next;    /* sequence number the next pop plays */
    uint16_t top;     /* highest sequence number accepted since the anchor */
    uint16_t bad_seq; /* a suspect jump is confirmed by a packet with this number */
    uint8_t state;
    uint8_t delay;   /* pops of idle silence after an anchor */
    uint8_t wait;    /* pops left before playout starts */
    uint8_t misses;  /* missing frames in a row with nothing buffered */
    uint8_t has_bad; /* bad_seq is set */
    uint8_t deep;    /* pops in a row with more than delay + 1 frames buffered */
    uint8_t count;   /* full slots */
} rtp_jb_t;

/* delay: 0 .. RTP_JB_SLOTS - 1 frames (2 suits a LAN). RTP_EINVAL otherwise. */
int rtp_jb_init(rtp_jb_t *jb, unsigned delay);
/* p from rtp_parse(). */
rtp_jb_result_t rtp_jb_push(rtp_jb_t *jb, const rtp_packet_t *p);
/* Every 20 ms: writes the next frame, or 160 bytes of 0xFF. */
rtp_jb_pop_t rtp_jb_pop(rtp_jb_t *jb, uint8_t out[RTP_PCMU_FRAME]);
/* Frames buffered from the playout point on (0 when idle). */
unsigned rtp_jb_depth(const rtp_jb_t *jb);

/* ---- sender ---- */

/* One outgoing PCMU stream: seq + 1 and ts + 160 per packet; marker on the first. */
typedef struct rtp_tx {
    uint32_t ssrc;
    uint32_t ts;
    uint16_t seq;
    uint8_t started;
} rtp_tx_t;

/* ssrc, seq and ts should be random (RFC 3550 5.1): the caller draws them. */
void rtp_tx_init(rtp_tx_t *tx, uint32_t ssrc, uint16_t seq, uint32_t ts);
/* The next packet's header, then advances: for a gathered send (header + payload iovecs). */
void rtp_tx_header(rtp_tx_t *tx, uint8_t out[RTP_HEADER_LEN]);
/* A whole packet of RTP_PCMU_PACKET bytes from 160 bytes of mu-law; returns RTP_PCMU_PACKET. */
size_t rtp_tx_packet(rtp_tx_t *tx, const uint8_t ulaw[RTP_PCMU_FRAME], uint8_t out[RTP_PCMU_PACKET]);

#endif
