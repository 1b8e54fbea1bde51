/*
 * ari_event: one Asterisk ARI event (a text frame of the /ari/events WebSocket) parsed into a
 * fixed struct holding what switchboard uses; plus the reply of POST /channels/externalMedia
 * and the mapping of hang-up causes to switchboard's call outcomes.
 *
 * Validation: the frame must be a JSON object (at most ARI_EVENT_MAX_LEN bytes, no duplicate
 * keys, no NUL in strings) with a string "type". Event types switchboard does not use
 * (ApplicationRegistered, ChannelVarset, ...) parse as ARI_EVENT_OTHER with only type_name
 * set: they are not errors. For the known types, the fields switchboard needs are required
 * (see the struct); optional fields are type-checked when present; unknown fields are
 * ignored. Every string a remote party controls has a limit (ARI_*_MAX bytes); longer is an
 * error, never truncated. Field names and shapes follow Asterisk's rest-api/api-docs.
 *
 * Ownership: nothing is kept from the input; the result is copied into the caller's struct
 * (about 3.5 KB: keep it off small stacks or reuse one). On error the struct holds the error
 * message in `error` ("channel.id: missing") and nothing else is meaningful.
 */
#ifndef SB_ARI_EVENT_H
#define SB_ARI_EVENT_H

#include <stddef.h>

#define ARI_EVENT_MAX_LEN 65536 /* bytes of JSON in one event or reply */
#define ARI_ID_MAX        127   /* channel, bridge, playback ids; application */
#define ARI_NAME_MAX      255   /* channel name, "PJSIP/didww-0000002a" */
#define ARI_TEXT_MAX      127   /* state, caller name/number, exten, context, cause_txt, dialstatus */
#define ARI_TYPE_MAX      63    /* event type name */
#define ARI_ARGS_MAX      8     /* StasisStart arguments */
#define ARI_ARG_MAX       255   /* bytes per argument */
#define ARI_ADDR_MAX      63    /* UNICASTRTP_LOCAL_ADDRESS: IPv4, IPv6 (with a %zone) */
#define ARI_ERROR_LEN     160   /* error message buffer, NUL included */

enum {
    ARI_EVENT_OK = 0,
    ARI_EVENT_EJSON = -1,    /* not JSON, or duplicate keys */
    ARI_EVENT_EOBJECT = -2,  /* not a JSON object */
    ARI_EVENT_ETYPE = -3,    /* no "type", not a string, or empty */
    ARI_EVENT_EMISSING = -4, /* a required field is missing */
    ARI_EVENT_EFIELD = -5,   /* a field has the wrong type or an invalid value */
    ARI_EVENT_ELIMIT = -6,   /* the input, a string, a list or a number is over its limit */
};

typedef enum {
    ARI_EVENT_OTHER = 0, /* any type not below: ignore it */
    ARI_EVENT_STASIS_START,
    ARI_EVENT_STASIS_END,
    ARI_EVENT_CHANNEL_DESTROYED,
    ARI_EVENT_CHANNEL_HANGUP_REQUEST,
    ARI_EVENT_CHANNEL_DTMF_RECEIVED,
    ARI_EVENT_CHANNEL_STATE_CHANGE,
    ARI_EVENT_DIAL,
    ARI_EVENT_CHANNEL_ENTERED_BRIDGE,
    ARI_EVENT_CHANNEL_LEFT_BRIDGE,
    ARI_EVENT_BRIDGE_DESTROYED,
    ARI_EVENT_PLAYBACK_STARTED,
    ARI_EVENT_PLAYBACK_FINISHED,
} ari_event_type_t;

/* A Channel object: id, name and state required; the rest "" (or 0) when absent. */
typedef struct ari_channel {
    char id[ARI_ID_MAX + 1];
    char name[ARI_NAME_MAX + 1];
    char state[ARI_TEXT_MAX + 1]; /* "Down", "Ring", "Ringing", "Up", "Busy", ... */
    char caller_number[ARI_TEXT_MAX + 1];
    char caller_name[ARI_TEXT_MAX + 1];
    char exten[ARI_TEXT_MAX + 1]; /* dialplan.exten: the DID on a trunk */
    char context[ARI_TEXT_MAX + 1];
    char rtp_address[ARI_ADDR_MAX + 1]; /* channelvars.UNICASTRTP_LOCAL_ADDRESS */
    unsigned rtp_port;                  /* channelvars.UNICASTRTP_LOCAL_PORT, 1..65535 */
} ari_channel_t;

/*
 * Required per type (* = required; the rest are 0 / "" when absent):
 *   all known types: application*
 *   StasisStart: channel*, args* (a list of at most ARI_ARGS_MAX strings; may be empty)
 *   StasisEnd, ChannelStateChange: channel*
 *   ChannelDestroyed: channel*, cause*, cause_txt*, tech_cause
 *   ChannelHangupRequest: channel*, cause (-1 when absent), tech_cause
 *   ChannelDtmfReceived: channel*, digit* (one printable character), duration_ms*
 *   Dial: peer* (parsed into channel, its id also in peer_id), dialstatus* ("" at first)
 *   ChannelEnteredBridge: bridge.id*, channel; ChannelLeftBridge: bridge.id*, channel*
 *   BridgeDestroyed: bridge.id*; PlaybackStarted, PlaybackFinished: playback.id*
 */
typedef struct ari_event {
    ari_event_type_t type;
    char type_name[ARI_TYPE_MAX + 1]; /* as received, for logs */
    char application[ARI_ID_MAX + 1];
    int has_channel;
    ari_channel_t channel;
    size_t nargs;
    char args[ARI_ARGS_MAX][ARI_ARG_MAX + 1];
    int cause;      /* Q.850 cause, include/asterisk/causes.h; -1 when absent */
    int tech_cause; /* the SIP status behind it, 0 when absent */
    char cause_txt[ARI_TEXT_MAX + 1];
    char digit; /* '0'-'9', '*', '#', 'A'-'D' in practice */
    int duration_ms;
    char dialstatus[ARI_TEXT_MAX + 1]; /* "", "RINGING", "PROGRESS", "ANSWER", "BUSY", "NOANSWER", ... */
    char peer_id[ARI_ID_MAX + 1];
    char bridge_id[ARI_ID_MAX + 1];
    char playback_id[ARI_ID_MAX + 1];
    char error[ARI_ERROR_LEN];
} ari_event_t;

/* Parses one event frame (len bytes, need not be NUL-terminated). */
int ari_event_parse(const char *json, size_t len, ari_event_t *ev);

/*
 * The value of the first StasisStart argument "key=value" ("tenant=42" gives "42" for key
 * "tenant"), pointing into ev; NULL when none.
 */
const char *ari_event_arg(const ari_event_t *ev, const char *key);

/*
 * The body of a successful POST /channels/externalMedia: a Channel (Asterisk 16.7+, 18+)
 * whose channelvars hold UNICASTRTP_LOCAL_ADDRESS and UNICASTRTP_LOCAL_PORT, or 16.6's
 * {"channel": {...}, "local_address": "...", "local_port": N}, used when the channel has
 * no such variables. The address and port are required. On error `error` (ARI_ERROR_LEN
 * bytes, may be NULL) holds the message.
 */
int ari_event_parse_media(const char *json, size_t len, ari_channel_t *out, char *error);

/* "StasisStart", ... for the enum; "other" for ARI_EVENT_OTHER. Static; never NULL. */
const char *ari_event_type_str(ari_event_type_t type);
/* Static string; never NULL. */
const char *ari_event_strerror(int err);

/*
 * The outcome of a dial attempt that ended with this hang-up cause, in the vocabulary shared
 * by every platform (Twilio's DialCallStatus). Static string:
 *   16 normal clearing                        -> "completed" (answered, then hung up)
 *   17 user busy (SIP 486, 600)               -> "busy"
 *   21 call rejected (SIP 603 Decline; also
 *      401/403/407, which cannot be told apart
 *      by the cause alone: see tech_cause)    -> "busy" (the callee refused, as Twilio
 *                                                 reports a declined call)
 *   18 no user response (SIP 408), 19 no answer
 *      (480, and a dial timeout)              -> "no-answer"
 *   anything else (1 unallocated, 20 not registered, 34/42 congestion, 38 out of order,
 *      127 interworking, 0 unknown, ...)      -> "failed"
 * "canceled" is never returned: Asterisk has no cause for it. A caller that hung the attempt
 * up itself (or saw the caller leave) reports "canceled" from its own state.
 */
const char *ari_cause_outcome(int cause);

#endif
