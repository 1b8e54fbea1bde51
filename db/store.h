/*
 * store: the only way the server reaches its database. Every statement is prepared
 * (and cached per connection); no SQL lives outside db/.
 *
 * A store_t is one connection, owned by one thread (each worker opens its own).
 * store_open() returns a handle the caller releases with store_close(). Errors are
 * returned as -1 with a message written into the caller's err buffer (or, for calls
 * without one, available from store_errmsg() until the next call on that store).
 */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct store store_t;

/* A schema migration: version must increase; sql may hold several statements. */
typedef struct store_migration {
    int version;
    const char *name;
    const char *sql;
} store_migration_t;

/* The migrations embedded from db/migrations at build time, in version order. */
extern const store_migration_t store_migrations[];
extern const size_t store_migrations_count;

/* The same for PostgreSQL (db/migrations/pg/ where a file must differ). */
extern const store_migration_t store_migrations_pg[];
extern const size_t store_migrations_pg_count;

/*
 * target is a postgres:// or postgresql:// URL (DATABASE_URL): PostgreSQL, connected on first
 * use; anything else is a SQLite file (DATABASE_PATH), opened (created when missing) in WAL mode
 * with a busy timeout and foreign keys on. SQLite connections never checkpoint on their own
 * (that fsyncs): the process runs store_checkpoint() from a thread that serves no requests.
 */
int store_open(const char *target, store_t **out, char *err, size_t errsz);
void store_close(store_t *st);
const char *store_errmsg(store_t *st);
/* "sqlite" or "postgresql". */
const char *store_engine_name(const store_t *st);

/*
 * How a store waits without blocking its loop: the caller's fibers. current() is the running
 * fiber (NULL on the thread's own stack); suspend() returns when resume() is called on it.
 */
typedef struct store_sched {
    void *(*current)(void *ctx);
    void (*suspend)(void *ctx);
    void (*resume)(void *ctx, void *fiber);
    /* starts fn(arg) on a fiber of its own, now or (called on a fiber) once that one suspends:
     * the writer of queued writes (see store_attach); 0, or -1 */
    int (*run)(void *ctx, void (*fn)(void *arg), void *arg);
    /* a queued write failed: op names it (the caller logs it once, where it is handled); or op
     * "loop_wait": a call off a fiber had to wait in poll(2), a defect (said once per connection) */
    void (*log)(void *ctx, const char *op, const char *err);
    void *ctx;
} store_sched_t;

/*
 * PostgreSQL: from now on the store lives on `loop` (the caller's thread) with up to
 * `connections` connections; a call made on a fiber sends its queries asynchronously and
 * suspends the fiber until the answer is in. Write-only calls made on the thread's own stack
 * (store_call_event, _set_next_action, _transcript_add, _recording_path, _stream, _transfer_begin/
 * _end, _status, _amd, store_outbound_placed/_failed) are copied into a bounded queue that one
 * fiber writes in order, and return 0 at once; other calls there still work but wait in
 * poll(2), which sched.log reports. SQLite: nothing changes (0). 0 or -1 (errmsg).
 */
int store_attach(store_t *st, uv_loop_t *loop, const store_sched_t *sched, int connections);
/* 1: fn(arg) will run once every write queued so far (as above) has been written or has
 * failed, so what follows a write can wait for it without waiting on the loop (the platform
 * told to hang up reads the next action just written). 0: nothing is queued (or the queue is
 * full): fn is not called, go on now. */
int store_after_queued(store_t *st, void (*fn)(void *arg), void *arg);
/* On a fiber: returns once every write queued so far on this store has been written (or has
 * failed), so a webhook reads what this worker's legs and callbacks queued before it came
 * (jambonz's actionHook after the listen socket closed). Elsewhere, or nothing queued: at once. */
void store_wait_queued(store_t *st);
/* on=1 until the matching on=0: the write-only calls listed above are queued even on a fiber,
 * so a fiber can run code written for the loop (whose state must not change under it while it
 * waits) without being suspended. Nests. No effect on SQLite or a store not attached. */
void store_defer_writes(store_t *st, int on);
/* The calling fiber is done with the store: its statement state is recycled. PostgreSQL only. */
void store_release(store_t *st);
/* Queued writes are waiting or being written (a stopping worker waits for them). */
int store_busy(const store_t *st);
/* A stopping worker's last word: every fiber waiting on the database is resumed with a failure
 * (and runs to its end, each further wait failing at once) so none is left on a closed store. */
void store_abort_waits(store_t *st);

/* Applies the embedded migrations of the store's engine (store_migrate). */
int store_migrate_embedded(store_t *st, int *applied, char *err, size_t errsz);

/*
 * Applies the migrations not yet recorded in schema_migrations, all in one transaction (on
 * PostgreSQL under an advisory lock, so instances starting together do not race):
 * on any failure nothing is applied and -1 is returned with the failing migration named.
 * *applied (may be NULL) receives how many ran.
 */
int store_migrate(store_t *st, const store_migration_t *list, size_t n, int *applied, char *err, size_t errsz);

/*
 * Group commit. With batching on, each write function is still atomic on its own (a
 * savepoint), but all of them join one transaction that store_batch_commit() ends: a worker
 * commits once per event-loop iteration and only then sends the responses that depend on
 * those writes. store_batch_pending() says a batch transaction is open. A failed commit
 * rolls the whole batch back and returns -1.
 */
void store_set_batching(store_t *st, int on);
int store_batch_pending(const store_t *st);
int store_batch_commit(store_t *st);

/* PASSIVE WAL checkpoint (never blocks writers); frame counts may be NULL. */
int store_checkpoint(store_t *st, int *wal_frames, int *checkpointed);

/* Highest applied migration version, 0 for a fresh database, -1 on error. */
int store_schema_version(store_t *st);

/* Creates tenant `id` named `name` unless it exists; returns 1 when created, 0 when present, -1 on error. */
int store_tenant_ensure(store_t *st, long id, const char *name);

/* Cheap liveness probe that touches the schema: counts calls not yet ended. 0 on success. */
int store_active_calls(store_t *st, long *count);

/* ---- tenants ------------------------------------------------------------------------
 * Text columns are copied into fixed buffers ("" where the column is NULL: the caller then
 * uses the server's setting); max_concurrent_calls is -1 when NULL. */
#define STORE_TEXT 512
typedef struct store_tenant {
    long id;
    char name[128];
    char greeting[STORE_TEXT];
    char ai_provider[16];
    char inbound_mode[24]; /* ai, transfer, elevenlabs_forward */
    char primary_target[256], secondary_target[256], voicemail_target[256];
    char caller_id_policy[16];
    long max_concurrent_calls;
    char amd_action[16]; /* hangup, message; "" = hangup */
    char amd_message[STORE_TEXT];
    char agent_instructions[2048]; /* JSON object agent_type -> instructions */
    char ai_voice[32];
    char ai_instructions[2048];
    char platform[16]; /* twilio, asterisk; "" = the DEFAULT_PLATFORM setting */
} store_tenant_t;

/* The tenant that owns DID `number`, else tenant `fallback_id`. 0 found, 1 neither exists, -1 error. */
int store_tenant_for_number(store_t *st, const char *number, long fallback_id, store_tenant_t *out);
int store_tenant_get(store_t *st, long id, store_tenant_t *out);

/* ---- calls --------------------------------------------------------------------------- */
typedef struct store_call {
    long id;
    char session_id[40];
    long tenant_id;
    char direction[12];
    char call_sid[64];
    char from_number[64], to_number[64];
    char status[16];
    long status_seq;
    int ended; /* ended_at is set */
    char next_action[16];
    int transfer_attempt;
    char transfer_target[256];
    char transfer_reason[256];
    char agent_type[32];
    char platform[16]; /* twilio, asterisk, jambonz: what carried the call */
} store_call_t;

typedef struct store_inbound {
    const char *session_id; /* new random id, used when the call is new */
    long tenant_id;
    const char *call_sid, *from_number, *to_number, *status;
    long limit;             /* live calls allowed for the tenant; 0: no limit */
    const char *event_json; /* detail of the call.started event */
    const char *platform;   /* twilio, asterisk, jambonz; NULL: twilio */
} store_inbound_t;

/*
 * Records an inbound call once per CallSid (a retried webhook finds the first row), in one
 * transaction with its call.started event. When the tenant already has `limit` live calls the
 * row is written ended, status busy, with a call.rejected event, and *rejected is 1.
 * *created is 0 when the CallSid was already known. 0, or -1 with nothing written.
 */
int store_call_start_inbound(store_t *st, const store_inbound_t *in, store_call_t *out, int *created, int *rejected);

/* 0 found, 1 unknown, -1 error. */
int store_call_by_session(store_t *st, const char *session_id, store_call_t *out);
int store_call_by_sid(store_t *st, const char *call_sid, store_call_t *out);

/* Appends to the call's timeline; detail_json may be NULL. */
int store_call_event(store_t *st, long call_id, const char *type, const char *detail_json);

/* A transfer attempt begins (target dialed) or ends (outcome): the call row and an event, atomically. */
int store_call_transfer_begin(store_t *st, long call_id, int attempt, const char *target, const char *event_json);
int store_call_transfer_end(store_t *st, long call_id, int attempt, const char *outcome, const char *event_json);

/* What /twilio/connect_action answers next ("transfer", "hangup"), with the reason given. */
int store_call_set_next_action(store_t *st, long call_id, const char *action, const char *reason);

typedef struct store_status {
    const char *call_sid, *status;
    const char *session_id; /* when set, the call is found by session (and learns call_sid) */
    long seq;               /* SequenceNumber; -1 when absent */
    long duration_s;        /* CallDuration; -1 when absent */
    long sip_code;          /* SipResponseCode; -1 when absent */
    const char *at;         /* Timestamp as sent, may be NULL */
    const char *event_json;
} store_status_t;

/*
 * Applies a status callback to the call's state machine: queued < initiated < ringing <
 * in-progress < terminal (completed, busy, failed, no-answer, canceled). An older
 * SequenceNumber, a duplicate, a lower state or anything after a terminal state is recorded
 * as an event but changes nothing. *applied says whether the row changed. 1 when the call
 * is unknown (nothing written), 0 done, -1 error.
 */
int store_call_status(store_t *st, const store_status_t *s, int *applied);

/* Told each time store_call_status() moves a call into a terminal state, on the store's thread,
 * also when a status queued off a fiber is written later: c is the row before the change,
 * status the new state; both only for the call. fn NULL: nobody is told. */
typedef void (*store_call_end_fn)(void *arg, const store_call_t *c, const char *status);
void store_on_call_end(store_t *st, store_call_end_fn fn, void *arg);

/* Told how long each commit took, on the store's thread: SQLite's group commit
 * (store_batch_commit), PostgreSQL's COMMIT of a unit (its round trip, the WAL flush
 * included). fn NULL: nobody is told. */
typedef void (*store_commit_fn)(void *arg, uint64_t dur_ns);
void store_on_commit(store_t *st, store_commit_fn fn, void *arg);

/* Rank of a Twilio call status; -1 for an unknown word. Terminal states rank 4. */
int store_status_rank(const char *status);

typedef struct store_recording {
    const char *call_sid, *session_id; /* either identifies the call */
    const char *recording_sid, *url, *status;
    long duration_s;
    const char *event_json;
} store_recording_t;
/* 1 when the call is unknown, 0 done, -1 error. */
int store_call_recording(store_t *st, const store_recording_t *r);

/* ---- outbound sessions and the application API --------------------------------------- */

/* The customer with external_id in the tenant, created (with phone) when new; *id receives it. */
int store_customer_upsert(store_t *st, long tenant_id, const char *external_id, const char *phone, long *id);

typedef struct store_outbound {
    const char *session_id;
    long tenant_id;
    const char *customer_external_id;
    const char *to, *from, *agent_type;
    const char *idempotency_key; /* NULL: none */
    const char *platform;        /* twilio, asterisk, jambonz; NULL: twilio */
} store_outbound_t;

/*
 * Creates the session row of an outbound call (status "initiating") and its customer, in one
 * unit. With an idempotency key already used in the tenant: nothing is written, *existing is
 * 1, out is that session and saved_response receives the answer stored for it ("" while the
 * first request is still in flight).
 */
int store_outbound_create(store_t *st, const store_outbound_t *in, store_call_t *out, int *existing,
                          char *saved_response, size_t saved_size);

/* The outcome of placing the call: Twilio's sid and status (a NULL sid: simulated, the row
 * ends), or the failure (the row ends). response_json is what the API answered, kept for an
 * idempotent retry; release_key frees the idempotency key instead (a transient failure the
 * client should be able to retry for real). */
int store_outbound_placed(store_t *st, long call_id, const char *call_sid, const char *status,
                          const char *response_json);
int store_outbound_failed(store_t *st, long call_id, const char *status, int error_code, const char *message,
                          const char *response_json, int release_key);

/* AnsweredBy of answering-machine detection, with its event. */
int store_call_amd(store_t *st, long call_id, const char *answered_by, const char *event_json);

typedef struct store_call_filter {
    long tenant_id;
    const char *status, *direction, *from, *to;
    const char *since, *until; /* ISO-8601, compared with started_at */
    const char *platform;      /* twilio, asterisk, jambonz; NULL: any */
    long before_id;            /* cursor: rows with a smaller id */
    int limit;
} store_call_filter_t;

/* Newest first. *rows is a new JSON array the caller releases (json_decref); *next_cursor is
 * the id to continue from, 0 at the end. */
int store_calls_list(store_t *st, const store_call_filter_t *f, json_t **rows, long *next_cursor);

/* The call with its events, transcript, bookings, tickets and recording, or 1 when the tenant
 * has no such session. *out is a new JSON object the caller releases. */
int store_call_detail(store_t *st, long tenant_id, const char *session_id, json_t **out);

/* ---- the dashboard's live feed and day picture (store_live.c) ---- */
/* Where the feed has read up to: every change a person sees on a call comes with a call event
 * or a transcript line, and both tables' ids only grow, in commit order. */
typedef struct store_live_cursor {
    long event_id, transcript_id;
} store_live_cursor_t;

/* The newest ids: a new reader starts there. */
int store_live_cursor(store_t *st, store_live_cursor_t *c);
/* The calls (list rows, with their "tenant_id") changed after *c, oldest first, and *c moved on.
 * 0 with *rows a new array the caller releases; 1 when more than max calls changed (*rows NULL,
 * *c moved on anyway: readers should reload); -1 error. */
int store_live_changes(store_t *st, store_live_cursor_t *c, int max, json_t **rows);

/* The tenant's calls started in [since, until) (ISO-8601): counts per hour from since, and by
 * outcome (in_progress, ai, transferred, voicemail, failed, simulated). *out is a new object
 * {"total", "buckets":[{"start","calls"}], "outcomes":{...}} the caller releases. */
int store_call_stats(store_t *st, long tenant_id, const char *since, const char *until, int hours, json_t **out);

/* ---- tenants (admin API) ---- */
int store_tenants_list(store_t *st, long only_id, json_t **rows);
/* 1 when unknown. */
int store_tenant_detail(store_t *st, long id, json_t **out);

typedef struct store_tenant_input {
    const char *name, *greeting, *ai_provider, *ai_voice, *ai_instructions, *inbound_mode;
    const char *primary_target, *secondary_target, *voicemail_target, *caller_id_policy;
    const char *amd_action, *amd_message, *agent_instructions;
    long max_concurrent_calls;  /* -1: setting */
    const char *platform;       /* "", twilio, asterisk; NULL: "" (the DEFAULT_PLATFORM setting) */
    const char *const *numbers; /* NULL: keep the DIDs; else the full list */
    size_t nnumbers;
} store_tenant_input_t;

/* Creates (id 0) or replaces a tenant's settings. 0 ok (*out_id), 1 unknown id, 2 a number
 * belongs to another tenant (conflict_number receives it), -1 error. */
int store_tenant_save(store_t *st, long id, const store_tenant_input_t *in, long *out_id, char *conflict_number,
                      size_t conflict_size);

/* ---- the audio bridge ---- */
int store_transcript_add(store_t *st, long call_id, const char *role, const char *text);
/* A booking or ticket made during a call; *id receives the new row. */
int store_booking_add(store_t *st, long tenant_id, long call_id, const char *name, const char *date, const char *time,
                      const char *notes, long *id);
int store_ticket_add(store_t *st, long tenant_id, long call_id, const char *summary, const char *priority, long *id);
int store_call_stream(store_t *st, long call_id, const char *stream_sid);
int store_call_recording_path(store_t *st, long call_id, const char *path);
/* The recording file of the tenant's call; 1 when none. */
int store_call_recording_file(store_t *st, long tenant_id, const char *session_id, char *path, size_t pathsz);

/* ---- ElevenLabs post-call webhook (store_post_call.c) ---- */
typedef struct store_post_call {
    const char *conversation_id; /* required */
    const char *agent_id, *call_sid;
    const char *external_number; /* E.164, or NULL */
    const char *agent_number;    /* E.164, or NULL: picks the tenant of a phone match */
    long event_timestamp;        /* unix seconds; 0 when absent */
    long ref_time;               /* unix seconds the phone match is centred on */
    long window_s;               /* phone match: calls started within ref_time +- window_s */
    long default_tenant_id;
    const char *summary, *recording_url; /* may be NULL */
    const char *const *roles;            /* "caller" or "agent", with texts[i] */
    const char *const *texts;
    size_t nturns;
    const char *intent; /* book_appointment, raise_ticket, other */
    int make_booking;   /* the booking fields below are valid */
    const char *booking_name, *booking_date, *booking_time, *booking_notes;
    int make_ticket;
    const char *ticket_summary, *ticket_priority;
    const char *customer_name; /* for a new customer, may be NULL */
    json_t *detail;            /* post_call.received detail; matched_by, ids and skips are added */
    const char *payload;       /* kept for an orphan (bounded by the caller), may be NULL */
} store_post_call_t;

typedef struct store_post_call_result {
    int duplicate; /* the conversation was already received: nothing written */
    int orphan;    /* no session found: stored as an orphan conversation */
    long call_id, tenant_id, customer_id, booking_id, ticket_id;
    char session_id[40];
    char matched_by[20]; /* call_sid, conversation_id, phone */
} store_post_call_result_t;

/*
 * Records a post-call conversation in one unit: finds the session (call SID, conversation id,
 * then the external number within the window, in the tenant of agent_number or the default
 * tenant), stores the transcript (unless the call already has one), the summary, recording URL
 * and conversation id, upserts the customer by phone, adds the booking or ticket and the
 * post_call.received event. Unknown session: an orphan row. 0 done, -1 error (nothing written).
 */
int store_post_call(store_t *st, const store_post_call_t *in, store_post_call_result_t *out);

#endif
