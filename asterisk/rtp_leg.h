/*
 * rtp_leg: the bridge's media leg (call/bridge.h) over RTP, for an Asterisk ExternalMedia
 * channel. One UDP socket per call, bound on RTP_BIND_ADDRESS at a port of RTP_PORT_MIN..MAX;
 * Asterisk sends to it and reads what we send from it (strict RTP: we must send from the very
 * socket it sends to). Packets from anywhere but Asterisk's end (UNICASTRTP_LOCAL_ADDRESS and
 * _PORT) are dropped and counted.
 *
 * Pacing: one 20 ms tick per worker (rtp_pool_t) drives every leg: each tick a leg hands the
 * jitter buffer's next caller frame to the bridge (base64, as the AI providers take it) and
 * sends one frame of agent audio, or mu-law silence when the agent is quiet. Agent audio waits
 * in the leg's queue (it arrives faster than real time); a mark is reported to the bridge once
 * the audio before it has actually been sent, and clear() drops what is queued at once, so
 * barge-in truncation counts exactly what the caller heard.
 *
 * Ownership: the pool belongs to the worker's Asterisk application (rtp_pool_close() when it
 * stops; legs still open are closed). A leg is the app's from rtp_leg_open() to rtp_leg_close()
 * (memory freed once its socket has closed, on the loop). The bridge given to rtp_leg_attach()
 * is the leg's caller until rtp_leg_close(), which calls bridge_leg_gone() for it.
 */
#ifndef SB_ASTERISK_RTP_LEG_H
#define SB_ASTERISK_RTP_LEG_H

#include <stddef.h>
#include <stdint.h>

#include "call/bridge.h"

struct worker;
typedef struct rtp_pool rtp_pool_t;
typedef struct rtp_leg rtp_leg_t;

rtp_pool_t *rtp_pool_new(struct worker *w);
void rtp_pool_close(rtp_pool_t *p);
/* Legs open. */
unsigned rtp_pool_legs(const rtp_pool_t *p);

/* What the leg tells its owner (the app): the bridge closed the AI part (next_action as in
 * media_leg_t.close). Called from inside the bridge: the owner may not close the leg there,
 * only remember what to do (the leg is closed later, from the owner's own event). */
typedef void (*rtp_leg_closed_cb)(void *owner, const char *next_action, const char *reason);

/* A socket on a free port of the range; *port receives it. NULL with err set when none is free. */
rtp_leg_t *rtp_leg_open(rtp_pool_t *p, const char *session_id, rtp_leg_closed_cb closed, void *owner, int *port,
                        char *err, size_t errsz);
/* Asterisk's end of the stream (UNICASTRTP_LOCAL_ADDRESS/PORT); 0, or -1 when addr is not an IP. */
int rtp_leg_set_remote(rtp_leg_t *l, const char *addr, int port);
/* From now on caller audio goes to b and b's agent audio is sent. */
void rtp_leg_attach(rtp_leg_t *l, bridge_t *b);
/* Stops sending and receiving; the bridge (if attached) gets bridge_leg_gone(). */
void rtp_leg_close(rtp_leg_t *l);

typedef struct rtp_leg_stats {
    uint64_t rx_packets, tx_packets, tx_silence, foreign, not_rtp, oversized, early;
    uint64_t late, duplicates, lost, reordered, wrong_pt, bad;
    uint64_t out_dropped; /* agent audio refused: the queue was full */
} rtp_leg_stats_t;

void rtp_leg_stats(const rtp_leg_t *l, rtp_leg_stats_t *out);
/* Bytes this leg holds (its queue included). */
size_t rtp_leg_memory(const rtp_leg_t *l);

/* The media_leg_t the bridge is given, with the leg as its ctx. */
extern const media_leg_t rtp_leg_media;

#endif
