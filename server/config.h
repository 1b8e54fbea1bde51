/*
 * config: every setting of the server, read from the environment and an optional .env file
 * (the environment wins). Values are validated at load; a bad value is reported with the
 * setting's name and stops start-up. config_t owns its strings; config_free() releases them.
 * After load the config is read-only and shared by all workers.
 */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stddef.h>

typedef enum { AI_NONE = 0, AI_ECHO, AI_OPENAI, AI_ELEVENLABS } ai_kind_t;
typedef enum { CALLER_ID_ORIGINAL = 0, CALLER_ID_BUSINESS } caller_id_policy_t;
/* The telephony platform that carries a call (calls.platform, tenants.platform). */
typedef enum { PLATFORM_TWILIO = 0, PLATFORM_ASTERISK, PLATFORM_JAMBONZ } platform_t;

typedef struct config {
    int port;     /* 0: ephemeral, chosen at bind */
    int tls_port; /* 0: ephemeral; -1: TLS off */
    char *tls_cert_file, *tls_key_file;
    char *public_base_url;
    char *database_path;
    char *database_url; /* PostgreSQL when set (wins over database_path) */
    int database_pool;  /* PostgreSQL connections per worker */
    char *data_dir;     /* directory of database_path; generated TLS certificate goes here */
    int workers;
    int log_level; /* log_level_t */
    size_t max_request_body;
    int shutdown_timeout_s;
    char *bind_address;

    char *twilio_account_sid, *twilio_auth_token, *twilio_api_key_sid, *twilio_api_key_secret;
    char *twilio_phone_number, *twilio_api_base;
    char *twilio_ca_file;
    int twilio_connect_timeout_ms, twilio_timeout_ms;

    ai_kind_t ai_provider;
    char *openai_api_key, *openai_realtime_url, *openai_realtime_model, *ai_voice, *ai_instructions;
    int openai_beta; /* OPENAI_REALTIME_SHAPE=beta: the beta session shape (g711_ulaw, OpenAI-Beta header) */
    int ai_connect_timeout_ms;
    char *ai_ca_file; /* extra CA trusted by the client TLS context (AI and ARI WebSockets); NULL: none */
    char *elevenlabs_phone_number, *elevenlabs_agent_id, *elevenlabs_api_key, *elevenlabs_webhook_secret;
    char *elevenlabs_convai_url;

    char *jwt_secret, *jwt_issuer, *jwt_audience;
    char *metrics_token; /* GET /metrics wants it as a bearer token; NULL: loopback clients only */
    long default_tenant_id;
    char *primary_transfer_target, *secondary_transfer_target, *voicemail_target;
    int transfer_timeout;
    caller_id_policy_t caller_id_policy;
    char *freepbx_sip_username, *freepbx_sip_password;
    int silence_timeout_s, max_call_s, max_concurrent_calls;
    char *recordings_dir;
    char *default_country_code;

    /* Asterisk (ARI): ari_url NULL means Asterisk is off. ari_url is http(s)://host[:port][/prefix]
     * with no trailing slash; ari_username and ari_password are both set when ari_url is. */
    char *ari_url, *ari_username, *ari_password;
    char *ari_app;          /* Stasis application name, [A-Za-z0-9_.-]{1,64} */
    char *rtp_address;      /* told to Asterisk as external_host: an IPv4/IPv6 literal (no brackets) or a hostname */
    char *rtp_bind_address; /* where RTP sockets bind: an IP literal, never NULL (default: rtp_address) */
    int rtp_port_min, rtp_port_max; /* 1024..65535, min <= max */
    char *asterisk_trunk;           /* PJSIP endpoint to the public network, [A-Za-z0-9_.-]{1,64}; NULL: none */
    platform_t default_platform;    /* for tenants whose platform is "": twilio, asterisk or jambonz */

    /* jambonz: webhooks are always served; the REST API (outbound, live control) is on when
     * jambonz_api_base is set, and then account sid and API key are set too. */
    char *jambonz_webhook_secret;
    char *jambonz_api_base; /* http(s)://host[:port], no trailing slash; NULL: REST off */
    char *jambonz_account_sid, *jambonz_api_key;
    char *jambonz_ca_file;
    char *jambonz_trunk;        /* carrier of phone targets; NULL: jambonz's default routing */
    char *jambonz_phone_number; /* outbound caller ID; NULL: TWILIO_PHONE_NUMBER */
    int jambonz_sample_rate;    /* 8000 or 16000: the listen socket's L16 rate */
} config_t;

/* One row per setting, in .env.example order; used by the loader, the start-up summary and tests. */
typedef struct config_setting {
    const char *name;
    const char *default_value; /* NULL: unset by default */
    int secret;                /* never printed */
    const char *help;
} config_setting_t;

size_t config_setting_count(void);
const config_setting_t *config_setting_at(size_t i); /* NULL past the end */

/*
 * Loads settings: env_file may be NULL (then ".env" is read when it exists).
 * On error returns -1 and writes a message naming the setting into err.
 */
int config_load(config_t *cfg, const char *env_file, char *err, size_t errsz);
void config_free(config_t *cfg);
/* What store_open() takes: DATABASE_URL when set, else DATABASE_PATH. */
const char *config_store_target(const config_t *cfg);

/* Twilio REST credentials present (account SID plus auth token or API key pair). */
int config_twilio_configured(const config_t *cfg);
const char *config_ai_provider_name(ai_kind_t p);

/* "twilio", "asterisk", "jambonz" ("unknown" out of range); a static string. */
const char *config_platform_name(platform_t p);
/* The reverse, lowercase names only: 0, or -1 (out untouched) for anything else. */
int config_platform_parse(const char *s, platform_t *out);

#endif
