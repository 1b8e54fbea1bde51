/*
 * switchboard-sim load --openai-port: a fake OpenAI Realtime server (GA shapes) on a thread and
 * a libuv loop of its own, so one process plays both Twilio and the AI for a switchboard with
 * AI_PROVIDER=openai, and a benchmark fits three parties on two cores.
 *
 * It answers an HTTP/1.1 GET upgrade on any path with 101 (anything else: 400), then reads
 * masked client frames (text messages reassembled up to 1 MiB; ping answered, close echoed)
 * and finds each message's type without parsing JSON on the hot path:
 *   session.update             -> session.updated, at once
 *   response.create            -> response.created and response.done (no audio), at once
 *   input_audio_buffer.append  -> response.output_audio.delta carrying the same base64, byte
 *                                 for byte, delay_ms later (the load generator's tag in it)
 *   anything else              -> ignored
 * It allocates per connection, never per message: appends wait in one preallocated ring (the
 * delay is constant, so due times are in arrival order: one FIFO and one timer for every
 * connection), and the deltas of one connection due at one timer run leave in one write.
 *
 * Ownership: openai_fake_start() returns a fake the caller owns; its thread owns everything
 * inside it (connections, ring, counters) until openai_fake_stop(), which closes every handle,
 * joins the thread, hands the counters back and frees it all. Between the two, only
 * openai_fake_cpu_s() may be called, from any thread.
 */
#ifndef SB_SIM_LOAD_OPENAI_H
#define SB_SIM_LOAD_OPENAI_H

#include <stddef.h>

#include "tools/sim/load.h"

typedef struct openai_fake openai_fake_t;

/* Listens on 127.0.0.1:port (1..65535) and starts the fake's thread. delay_ms: from an append to
 * its delta. ring: appends that may wait for their delta at once; more are dropped and counted.
 * NULL after saying why on stderr (the port taken, no memory, the frame parser's self-check). */
openai_fake_t *openai_fake_start(int port, int delay_ms, size_t ring);

/* The CPU time the fake's thread has used so far, in seconds; -1 when it cannot be read */
double openai_fake_cpu_s(const openai_fake_t *f);

/* Stops the fake (every connection closed), joins its thread, copies its counters into *out
 * (when out is not NULL) and frees it. f may be NULL. */
void openai_fake_stop(openai_fake_t *f, openai_counts_t *out);

#endif
