/*
 * switchboard-sim load: what the load generator (load.c) builds on that does no I/O on its
 * event loop: Twilio signatures, HTTP response heads, WebSocket client frames, the latency
 * histogram, the caller's audio, jambonz's listen verb and its sequence markers, /proc
 * readers, and the report.
 */
#ifndef SB_SIM_LOAD_H
#define SB_SIM_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Latency histogram over signed microseconds, fixed buckets so recording never allocates:
 * 10 us steps from -10 ms to 100 ms (an echo may come back a hair early: the server's timer
 * has millisecond resolution), then 1 ms steps to 10 s, then one overflow bucket. */
#define HIST_MIN_US   (-10000)
#define HIST_FINE_US  10
#define HIST_FINE_N   11000
#define HIST_COARSE_N 9900
#define HIST_N        (HIST_FINE_N + HIST_COARSE_N + 1)

typedef struct hist {
    uint32_t b[HIST_N];
    uint64_t n;
    int64_t min, max;
} hist_t;

void hist_add(hist_t *h, int64_t us);
/* the value at quantile q (0..1), in microseconds; 0 when empty */
int64_t hist_quantile(const hist_t *h, double q);

uint64_t prng_next(uint64_t *state);

/* base64 of n bytes into out (NUL-terminated); returns the length written */
size_t b64_encode(const void *in, size_t n, char *out);
/* the 9 bytes that 12 base64 characters stand for; -1 if one is not base64 */
int b64_decode12(const char *in, unsigned char out[9]);

/* application/x-www-form-urlencoded value, NUL-terminated; -1 if it does not fit */
int form_escape(const char *s, char *out, size_t outsz);
/* X-Twilio-Signature: base64(HMAC-SHA1(token, url + name1 value1 name2 value2 ...)), the
 * pairs already sorted by name; out holds at least 29 bytes */
void twilio_signature(const char *token, const char *url, const char *const *pairs, size_t npairs, char *out);
/* Sec-WebSocket-Accept expected for a Sec-WebSocket-Key; out holds at least 29 bytes */
void ws_accept_for(const char *key, char *out);

/* A masked client frame (FIN set) of len payload bytes into dst, which holds len + 14;
 * returns the frame's length */
size_t ws_client_frame(unsigned char *dst, int opcode, const void *payload, size_t len, uint32_t mask);

typedef struct ws_frame {
    int opcode, fin;
    size_t head, len; /* header bytes, payload bytes */
} ws_frame_t;
/* 1 a whole server frame is at buf, 0 need more bytes, -1 not a valid server frame */
int ws_parse(const unsigned char *buf, size_t avail, ws_frame_t *f);
/* the same for the frame's header alone (head and len set): a long binary frame is read as
 * its payload arrives, not buffered whole */
int ws_parse_head(const unsigned char *buf, size_t avail, ws_frame_t *f);
/* Checks json_top_string on a document with nesting and decoys; 0, or -1 after saying on
 * stderr what failed. The fake OpenAI server's frames use server/wsframe.h, tested there. */
int load_selfcheck(void);

/* The head of an HTTP/1.1 response: 1 complete (status, head_len, content_length or -1),
 * 0 need more, -1 not HTTP */
int http_head(const char *buf, size_t len, int *status, size_t *head_len, long *content_length);
/* a header's value (case-insensitive name) into out; 0 found, -1 not */
int http_header_value(const char *head, size_t head_len, const char *name, char *out, size_t outsz);
/* The raw text of a string member of doc's top-level object (nested objects skipped, escapes
 * left as written): 0 found (*val, *vlen), -1 not (absent, not a string, not an object) */
int json_top_string(const char *doc, size_t len, const char *key, const char **val, size_t *vlen);
/* the text between `after` and the next `"` in doc, &amp; unescaped; 0 found, -1 not */
int text_after(const char *doc, size_t len, const char *after, char *out, size_t outsz);
/* the <Parameter name value/>s of a TwiML document as JSON members ("a":"1","b":"2") */
void twiml_params_json(const char *doc, size_t len, char *out, size_t outsz);

#define FRAME_MS    20
#define FRAME_BYTES 160 /* 20 ms of 8 kHz mu-law */
#define FRAME_B64   216

/* G.711 mu-law as the server's (the Sun reference): linear -> code, code -> linear */
unsigned char mulaw_from_linear(int sample);
int16_t mulaw_to_linear(unsigned char code);

/* ---- jambonz ----
 * The listen verb of a /jambonz/call answer (a JSON array of verbs): its url, sampleRate
 * (0 when absent) and the members of its metadata object as JSON text ("a":"1","b":"2"), to
 * merge into the first message. 0, or -1 when there is no listen verb with a url. */
int jambonz_listen_verb(const char *doc, size_t len, char *url, size_t urlsz, int *rate, char *meta, size_t metasz);

/* Sequence markers in L16 audio that survive L16 -> mu-law -> (echo) -> mu-law -> L16. Each
 * carries 7 bits in a linear value that is a mu-law decode output of a positive code (0x80 |
 * bits): such values round-trip through G.711 bit-exactly (0x7F would not: it decodes to 0,
 * which encodes as 0xFF).
 *   8 kHz:  the first JM_N8 samples of a 20 ms frame: 4 x 7 = 28 bits of the sequence and a
 *           check sample; the rest of the frame is the caller's audio. The server passes the
 *           frame through unfiltered, so the samples come back exact, at the same places of
 *           each 320-byte unit of the echo.
 *   16 kHz: the server resamples (a 43-tap half-band FIR down to 8 kHz, the same filter up
 *           again), so no single sample survives. The frame is two plateaus of 160 samples,
 *           each one such value (7 + 7 = 14 bits): a constant passes a low-pass filter
 *           unchanged once its transients (the filters' length) have passed, and the mu-law
 *           step (>= 1.5 % of the value) absorbs the filters' DC gain error. The echoed 640-byte
 *           unit holds the plateaus shifted by the filters' delay (41 samples); three samples
 *           inside each plateau's clean core (JM_POS16) are read back as mu-law codes, and must
 *           agree. The generator's audio is then the markers alone.
 * jm_put writes the marker of seq into a frame (320 or 640 bytes); jm_get reads the samples
 * found at the positions jm_pos(wide) gives (JM_N8 or JM_N16 of them) and returns the sequence
 * bits (28 or 14), or -1 when they are not a marker. */
#define JM_N8     5
#define JM_N16    6
#define JM_BITS16 14
void jm_put(unsigned char *le, int wide, uint32_t seq);
const uint16_t *jm_pos(int wide, int *n);
int64_t jm_get(const int16_t *s, int wide);

/* The caller's audio as whole frames: raw 8 kHz mu-law from path (looped), or with path NULL
 * a 300 Hz tone; each frame also base64-encoded once, so sending one costs a copy. 0 or -1. */
int load_audio(const char *path, unsigned char **pcm, char (**b64)[FRAME_B64 + 1], size_t *nframes);

/* utime + stime of a process in clock ticks; -1 when it is gone */
int64_t proc_cpu_ticks(int pid);
/* VmRSS of a process in KiB; -1 when it is gone */
long proc_rss_kib(int pid);

enum { PLATFORM_TWILIO, PLATFORM_JAMBONZ };

typedef struct load_opts {
    const char *url, *audio, *token, *public_url, *from, *to, *platform_name;
    unsigned ncalls;
    double ramp, duration;
    int pid, json, echo_delay_ms;
    int platform;                 /* PLATFORM_*, from --platform */
    int rate;                     /* jambonz: L16 rate sent, 8000 or 16000; 0: as the listen verb says */
    const char *marks_name;       /* --marks: playout (the default) or now */
    int marks_now;                /* jambonz: answer marks on receipt, not once played */
    char hostport[280];           /* the Host header */
    char public_base[512];        /* what signatures cover: --public-url, else --url, no trailing slash */
    struct sockaddr_storage addr; /* --url resolved */
    int openai_port;              /* --openai-port: play OpenAI's Realtime server there; 0 off */
    int openai_delay_ms;          /* --openai-delay: append to its delta (default --echo-delay-ms) */
} load_opts_t;

/* The command line (--help prints and exits); 0, or -1 after saying why. Also raises the
 * open-files limit: each call holds a socket, two during its set-up. */
int load_parse_args(int argc, char **argv, load_opts_t *o);

#define MAX_REASONS 32

/* What the embedded fake OpenAI Realtime server (load_openai.h) counted over the whole run */
typedef struct openai_counts {
    uint64_t accepted;        /* TCP connections accepted */
    uint64_t upgraded;        /* of them, WebSocket upgrades answered 101 */
    uint64_t bad_handshakes;  /* answered 400 (not a GET upgrade, no key, a head over 8 KiB) */
    uint64_t protocol_errors; /* closed with 1002 or 1009 (unmasked, invalid, over 1 MiB) */
    uint64_t appends;         /* input_audio_buffer.append received */
    uint64_t deltas;          /* response.output_audio.delta sent */
    uint64_t dropped;         /* appends not echoed: the pending ring or the output buffer full, audio too long */
    uint64_t expired;         /* appends never answered: their connection closed, or the run ended, first */
    uint64_t other;           /* session.update, response.create and the messages ignored */
} openai_counts_t;

/* What a run measured. lat[0] and frames[0]: during the ramp; [1]: the steady window */
typedef struct load_stats {
    unsigned requested, set_up, failed, dropped, window_calls;
    double ramp, window_s;
    int echo_delay_ms, pid;
    hist_t webhook, lat[2], lag; /* lag: frames sent behind their due time */
    uint64_t sent[2], echoed[2], overflow, unmatched, marks, clears, odd_frames;
    /* jambonz: the rate the calls used (-1 mixed), marks answered before their audio had
     * played (the generator's queue of pending marks was full), clearMarks and disconnect
     * messages; clears above counts killAudio */
    int platform, rate;
    uint64_t marks_early, clear_marks, disconnects;
    struct {
        char what[96];
        unsigned n;
    } reasons[MAX_REASONS];
    double server_cpu_s, client_cpu_s; /* over the window; server < 0 when unknown */
    /* --openai-port: its port (0: the fake did not run), its delay, its thread's CPU over the
     * window (part of client_cpu_s) and its counters, read once its thread has ended */
    int openai_port, openai_delay_ms;
    double openai_cpu_s;
    openai_counts_t openai;
    long rss_before, rss_peak, client_rss_kib;
} load_stats_t;

void load_count_reason(load_stats_t *st, const char *why);
/* prints the table (or JSON); returns the exit code: 0 all set up and under 1 % lost */
int load_report(const load_stats_t *st, int json);

#endif
