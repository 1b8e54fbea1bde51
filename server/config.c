#include "server/config.h"
#include "server/log.h"
#include "server/e164.h"
#include "server/target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { K_STR, K_INT, K_PORT, K_TLS_PORT, K_ENUM, K_URL, K_LOGLEVEL, K_SIZE } kind_t;

typedef struct {
    config_setting_t pub;
    kind_t kind;
    size_t off;
    long min, max;
    const char *const *choices; /* K_ENUM: NULL-terminated, index stored as int */
} setting_t;

static const char *const ai_choices[] = {"none", "echo", "openai", "elevenlabs", NULL};
static const char *const cid_choices[] = {"original", "business", NULL};
static const char *const shape_choices[] = {"ga", "beta", NULL};
/* indexed by platform_t */
static const char *const platform_choices[] = {"twilio", "asterisk", "jambonz", NULL};
_Static_assert(sizeof(platform_t) == sizeof(int), "K_ENUM stores an int");

#define OFF(f) offsetof(config_t, f)
#define S(name, def, secret, help, kind, field, mn, mx, ch)                                                            \
    {                                                                                                                  \
        {name, def, secret, help}, kind, OFF(field), mn, mx, ch                                                        \
    }

/* Order matches .env.example; a unit test keeps the two in step. */
static const setting_t settings[] = {
    S("PORT", "8080", 0, "plain HTTP port (0 picks a free one)", K_PORT, port, 0, 65535, NULL),
    S("TLS_PORT", "8443", 0, "HTTPS port, HTTP/1.1 and HTTP/2 by ALPN (0 picks a free one, off disables)", K_TLS_PORT,
      tls_port, 0, 65535, NULL),
    S("TLS_CERT_FILE", NULL, 0, "PEM certificate chain; unset: a self-signed one is generated in the data folder",
      K_STR, tls_cert_file, 0, 0, NULL),
    S("TLS_KEY_FILE", NULL, 0, "PEM private key for TLS_CERT_FILE", K_STR, tls_key_file, 0, 0, NULL),
    S("PUBLIC_BASE_URL", NULL, 0, "the https URL Twilio reaches us at; signatures are checked against it", K_URL,
      public_base_url, 0, 0, NULL),
    S("BIND_ADDRESS", "0.0.0.0", 0, "address the listeners bind to", K_STR, bind_address, 0, 0, NULL),
    S("DATABASE_PATH", "data/switchboard.db", 0, "SQLite file; its folder is the data folder", K_STR, database_path, 0,
      0, NULL),
    S("DATABASE_URL", NULL, 1,
      "postgresql://user:password@host:port/db: PostgreSQL, shared by several instances; wins over DATABASE_PATH",
      K_STR, database_url, 0, 0, NULL),
    S("DATABASE_POOL", "4", 0, "PostgreSQL connections per worker", K_INT, database_pool, 1, 64, NULL),
    S("WORKERS", NULL, 0, "worker threads, each with its own event loop (default: number of cores)", K_INT, workers, 1,
      256, NULL),
    S("LOG_LEVEL", "info", 0, "debug, info, warn or error", K_LOGLEVEL, log_level, 0, 0, NULL),
    S("MAX_REQUEST_BODY", "65536", 0, "largest request body in bytes; larger gets 413", K_SIZE, max_request_body, 1024,
      16 * 1024 * 1024, NULL),
    S("SHUTDOWN_TIMEOUT_S", "10", 0, "on SIGTERM, how long in-flight requests may take to finish", K_INT,
      shutdown_timeout_s, 0, 3600, NULL),
    S("TWILIO_ACCOUNT_SID", NULL, 0, "AC...; without it outbound calls run in simulation mode", K_STR,
      twilio_account_sid, 0, 0, NULL),
    S("TWILIO_AUTH_TOKEN", NULL, 1, "auth token; when set every /twilio/* request must carry a valid signature", K_STR,
      twilio_auth_token, 0, 0, NULL),
    S("TWILIO_API_KEY_SID", NULL, 0, "SK...; REST calls use the API key instead of the auth token when set", K_STR,
      twilio_api_key_sid, 0, 0, NULL),
    S("TWILIO_API_KEY_SECRET", NULL, 1, "secret of TWILIO_API_KEY_SID", K_STR, twilio_api_key_secret, 0, 0, NULL),
    S("TWILIO_PHONE_NUMBER", NULL, 0, "the business number, E.164; caller ID for outbound calls", K_STR,
      twilio_phone_number, 0, 0, NULL),
    S("TWILIO_API_BASE", "https://api.twilio.com", 0, "Twilio REST base URL (tests point it at a fake)", K_URL,
      twilio_api_base, 0, 0, NULL),
    S("TWILIO_CA_FILE", NULL, 0, "extra CA certificate (PEM) trusted for TWILIO_API_BASE; for tests", K_STR,
      twilio_ca_file, 0, 0, NULL),
    S("TWILIO_CONNECT_TIMEOUT_MS", "3000", 0, "connect timeout of Twilio REST requests", K_INT,
      twilio_connect_timeout_ms, 100, 60000, NULL),
    S("TWILIO_TIMEOUT_MS", "10000", 0, "total timeout of one Twilio REST request", K_INT, twilio_timeout_ms, 500,
      120000, NULL),
    S("AI_PROVIDER", NULL, 0, "openai, elevenlabs, echo or none (default: openai with OPENAI_API_KEY, else echo)",
      K_ENUM, ai_provider, 0, 0, ai_choices),
    S("OPENAI_API_KEY", NULL, 1, "OpenAI API key", K_STR, openai_api_key, 0, 0, NULL),
    S("OPENAI_REALTIME_URL", "wss://api.openai.com/v1/realtime", 0, "Realtime API WebSocket URL", K_URL,
      openai_realtime_url, 0, 0, NULL),
    S("OPENAI_REALTIME_MODEL", "gpt-realtime", 0, "Realtime model", K_STR, openai_realtime_model, 0, 0, NULL),
    S("OPENAI_REALTIME_SHAPE", "ga", 0, "ga (audio/pcmu, the GA events) or beta (g711_ulaw, OpenAI-Beta: realtime=v1)",
      K_ENUM, openai_beta, 0, 0, shape_choices),
    S("AI_CONNECT_TIMEOUT_MS", "3000", 0, "how long the AI may take to answer before the call goes to a person", K_INT,
      ai_connect_timeout_ms, 200, 60000, NULL),
    S("AI_CA_FILE", NULL, 0, "extra CA certificate (PEM) trusted for the AI and ARI WebSockets; for tests", K_STR,
      ai_ca_file, 0, 0, NULL),
    S("AI_VOICE", "alloy", 0, "voice of the AI agent", K_STR, ai_voice, 0, 0, NULL),
    S("AI_INSTRUCTIONS", "You are a friendly phone agent. Keep answers short.", 0,
      "system instructions for the AI agent", K_STR, ai_instructions, 0, 0, NULL),
    S("ELEVENLABS_PHONE_NUMBER", NULL, 0, "ElevenLabs agent phone number, E.164, for forwarding", K_STR,
      elevenlabs_phone_number, 0, 0, NULL),
    S("ELEVENLABS_AGENT_ID", NULL, 0, "ElevenLabs Conversational AI agent id", K_STR, elevenlabs_agent_id, 0, 0, NULL),
    S("ELEVENLABS_API_KEY", NULL, 1, "ElevenLabs API key", K_STR, elevenlabs_api_key, 0, 0, NULL),
    S("ELEVENLABS_CONVAI_URL", "wss://api.elevenlabs.io/v1/convai/conversation", 0,
      "Conversational AI WebSocket URL (agent_id is added to its query)", K_URL, elevenlabs_convai_url, 0, 0, NULL),
    S("ELEVENLABS_WEBHOOK_SECRET", NULL, 1, "secret of the ElevenLabs post-call webhook signature", K_STR,
      elevenlabs_webhook_secret, 0, 0, NULL),
    S("JWT_SECRET", NULL, 1, "HS256 secret of the application API's bearer tokens", K_STR, jwt_secret, 0, 0, NULL),
    S("JWT_ISSUER", NULL, 0, "when set, tokens must carry this iss", K_STR, jwt_issuer, 0, 0, NULL),
    S("JWT_AUDIENCE", NULL, 0, "when set, tokens must carry this aud", K_STR, jwt_audience, 0, 0, NULL),
    S("METRICS_TOKEN", NULL, 1,
      "bearer token GET /metrics requires; unset: only loopback clients (no proxy between) may scrape", K_STR,
      metrics_token, 0, 0, NULL),
    S("DEFAULT_TENANT_ID", "1", 0, "tenant for numbers no tenant claims; created from these settings on first start",
      K_INT, default_tenant_id, 1, INT_MAX, NULL),
    S("PRIMARY_TRANSFER_TARGET", NULL, 0,
      "first transfer target: E.164 number, SIP URI or Asterisk dial string (PJSIP/2000)", K_STR,
      primary_transfer_target, 0, 0, NULL),
    S("SECONDARY_TRANSFER_TARGET", NULL, 0, "tried when the primary is busy or does not answer", K_STR,
      secondary_transfer_target, 0, 0, NULL),
    S("VOICEMAIL_TARGET", NULL, 0, "last resort: a number or SIP URI; unset: Twilio records a message", K_STR,
      voicemail_target, 0, 0, NULL),
    S("TRANSFER_TIMEOUT", "30", 0, "seconds a transfer target may ring", K_INT, transfer_timeout, 5, 600, NULL),
    S("CALLER_ID_POLICY", "original", 0, "caller ID on transfers: original (the caller) or business", K_ENUM,
      caller_id_policy, 0, 0, cid_choices),
    S("FREEPBX_SIP_USERNAME", NULL, 0, "SIP digest username for transfers to the PBX", K_STR, freepbx_sip_username, 0,
      0, NULL),
    S("FREEPBX_SIP_PASSWORD", NULL, 1, "SIP digest password", K_STR, freepbx_sip_password, 0, 0, NULL),
    S("SILENCE_TIMEOUT_S", "20", 0, "seconds of silence before the AI call falls back", K_INT, silence_timeout_s, 1,
      3600, NULL),
    S("MAX_CALL_S", "3600", 0, "longest AI call in seconds", K_INT, max_call_s, 2, 86400, NULL),
    S("MAX_CONCURRENT_CALLS", "50", 0, "calls at once per tenant (0: no limit)", K_INT, max_concurrent_calls, 0, 100000,
      NULL),
    S("RECORDINGS_DIR", NULL, 0, "where call recordings are written; unset: calls are not recorded", K_STR,
      recordings_dir, 0, 0, NULL),
    S("DEFAULT_COUNTRY_CODE", "1", 0, "country calling code for numbers written without one", K_STR,
      default_country_code, 0, 0, NULL),
    S("ARI_URL", NULL, 0, "Asterisk's HTTP server, http(s)://host:port[/prefix]; unset: Asterisk is off", K_STR,
      ari_url, 0, 0, NULL),
    S("ARI_USERNAME", NULL, 0, "ARI user (ari.conf); required with ARI_URL", K_STR, ari_username, 0, 0, NULL),
    S("ARI_PASSWORD", NULL, 1, "password of ARI_USERNAME; required with ARI_URL", K_STR, ari_password, 0, 0, NULL),
    S("ARI_APP", "switchboard", 0, "the Stasis application name the dialplan sends calls to", K_STR, ari_app, 0, 0,
      NULL),
    S("RTP_ADDRESS", "127.0.0.1", 0, "address Asterisk sends call audio to (external_host): IP or hostname", K_STR,
      rtp_address, 0, 0, NULL),
    S("RTP_BIND_ADDRESS", NULL, 0, "IP address the RTP sockets bind to (default: RTP_ADDRESS); for hosts behind NAT",
      K_STR, rtp_bind_address, 0, 0, NULL),
    S("RTP_PORT_MIN", "20000", 0, "lowest UDP port of the RTP sockets", K_INT, rtp_port_min, 1024, 65535, NULL),
    S("RTP_PORT_MAX", "20999", 0, "highest UDP port of the RTP sockets", K_INT, rtp_port_max, 1024, 65535, NULL),
    S("ASTERISK_TRUNK", NULL, 0, "PJSIP endpoint to the public network (numbers and SIP URIs are dialed through it)",
      K_STR, asterisk_trunk, 0, 0, NULL),
    S("DEFAULT_PLATFORM", "twilio", 0,
      "platform of tenants that name none: twilio, asterisk (needs ARI_URL) or jambonz (needs JAMBONZ_API_BASE)",
      K_ENUM, default_platform, 0, 0, platform_choices),
    S("JAMBONZ_WEBHOOK_SECRET", NULL, 1,
      "the jambonz account's webhook secret; when set every /jambonz/* hook must carry a valid Jambonz-Signature",
      K_STR, jambonz_webhook_secret, 0, 0, NULL),
    S("JAMBONZ_API_BASE", NULL, 0,
      "jambonz REST API base URL (https://api.jambonz.cloud); unset: no outbound or live control", K_URL,
      jambonz_api_base, 0, 0, NULL),
    S("JAMBONZ_ACCOUNT_SID", NULL, 0, "jambonz account sid; required with JAMBONZ_API_BASE", K_STR, jambonz_account_sid,
      0, 0, NULL),
    S("JAMBONZ_API_KEY", NULL, 1, "jambonz API key (bearer token); required with JAMBONZ_API_BASE", K_STR,
      jambonz_api_key, 0, 0, NULL),
    S("JAMBONZ_CA_FILE", NULL, 0, "extra CA certificate (PEM) trusted for JAMBONZ_API_BASE; for tests", K_STR,
      jambonz_ca_file, 0, 0, NULL),
    S("JAMBONZ_TRUNK", NULL, 0, "jambonz carrier that phone-number transfer targets go out through; unset: the default",
      K_STR, jambonz_trunk, 0, 0, NULL),
    S("JAMBONZ_PHONE_NUMBER", NULL, 0, "caller ID of outbound jambonz calls, E.164 (default: TWILIO_PHONE_NUMBER)",
      K_STR, jambonz_phone_number, 0, 0, NULL),
    S("JAMBONZ_SAMPLE_RATE", "8000", 0, "sample rate of the listen socket's L16 audio: 8000 or 16000", K_INT,
      jambonz_sample_rate, 8000, 16000, NULL),
};

#undef S
#undef OFF

size_t config_setting_count(void)
{
    return sizeof(settings) / sizeof(settings[0]);
}

const config_setting_t *config_setting_at(size_t i)
{
    return i < config_setting_count() ? &settings[i].pub : NULL;
}

typedef struct {
    char *key, *value;
} kv_t;

typedef struct {
    kv_t *items;
    size_t n;
} dotenv_t;

static void dotenv_free(dotenv_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->items[i].key);
        free(d->items[i].value);
    }
    free(d->items);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* KEY=VALUE lines; '#' comments; optional "export "; single or double quotes stripped. */
static int dotenv_read(const char *path, int required, dotenv_t *d, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (!required && errno == ENOENT)
            return 0;
        snprintf(err, errsz, "cannot read env file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[8192];
    int lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        if (strncmp(s, "export ", 7) == 0)
            s = trim(s + 7);
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errsz, "%s:%d: expected KEY=VALUE", path, lineno);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val[vl - 1] = '\0';
            val++;
        } else {
            char *hash = strstr(val, " #"); /* inline comment after an unquoted value */
            if (hash != NULL)
                *hash = '\0', val = trim(val);
        }
        kv_t *grown = realloc(d->items, (d->n + 1) * sizeof(*grown));
        if (grown == NULL) {
            fclose(f);
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        d->items = grown;
        d->items[d->n].key = strdup(key);
        d->items[d->n].value = strdup(val);
        d->n++;
    }
    fclose(f);
    return 0;
}

static const char *lookup(const dotenv_t *d, const char *name)
{
    const char *v = getenv(name);
    if (v != NULL)
        return v;
    for (size_t i = d->n; i-- > 0;)
        if (strcmp(d->items[i].key, name) == 0)
            return d->items[i].value;
    return NULL;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int bad(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return -1;
}

static int apply(config_t *cfg, const setting_t *s, const char *v, char *err, size_t errsz)
{
    char *base = (char *)cfg;
    const char *name = s->pub.name;
    long n;
    switch (s->kind) {
    case K_STR:
    case K_URL:
        if (s->kind == K_URL && strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0 &&
            strncmp(v, "ws://", 5) != 0 && strncmp(v, "wss://", 6) != 0)
            return bad(err, errsz, "%s must be an http(s):// or ws(s):// URL", name);
        if (strpbrk(v, "\r\n") != NULL)
            return bad(err, errsz, "%s must not contain line breaks", name);
        *(char **)(base + s->off) = strdup(v);
        return 0;
    case K_PORT:
    case K_TLS_PORT:
        if (s->kind == K_TLS_PORT && strcmp(v, "off") == 0) {
            *(int *)(base + s->off) = -1;
            return 0;
        }
        if (parse_long(v, &n) != 0 || n < s->min || n > s->max)
            return bad(err, errsz, "%s must be a port number from 0 to 65535%s, not \"%s\"", name,
                       s->kind == K_TLS_PORT ? " or off" : "", v);
        *(int *)(base + s->off) = (int)n;
        return 0;
    case K_INT:
    case K_SIZE:
        if (parse_long(v, &n) != 0 || n < s->min || n > s->max)
            return bad(err, errsz, "%s must be a whole number from %ld to %ld, not \"%s\"", name, s->min, s->max, v);
        if (s->kind == K_SIZE)
            *(size_t *)(base + s->off) = (size_t)n;
        else if (s->off == offsetof(config_t, default_tenant_id))
            *(long *)(base + s->off) = n;
        else
            *(int *)(base + s->off) = (int)n;
        return 0;
    case K_ENUM:
        for (int i = 0; s->choices[i] != NULL; i++) {
            if (strcmp(v, s->choices[i]) == 0) {
                *(int *)(base + s->off) = i;
                return 0;
            }
        }
        return bad(err, errsz, "%s: unknown value \"%s\"", name, v);
    case K_LOGLEVEL: {
        log_level_t l;
        if (log_level_parse(v, &l) != 0)
            return bad(err, errsz, "LOG_LEVEL must be debug, info, warn or error, not \"%s\"", v);
        *(int *)(base + s->off) = (int)l;
        return 0;
    }
    }
    return bad(err, errsz, "%s: internal error", name);
}

static int check_readable(const char *name, const char *path, char *err, size_t errsz)
{
    if (path != NULL && access(path, R_OK) != 0)
        return bad(err, errsz, "%s: cannot read %s: %s", name, path, strerror(errno));
    return 0;
}

static int is_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

/* [A-Za-z0-9_.-]{1,64}: ARI_APP and ASTERISK_TRUNK travel in ARI query strings and dial strings */
static int check_name(const char *name, const char *v, char *err, size_t errsz)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64)
        return bad(err, errsz, "%s must be 1 to 64 characters", name);
    for (size_t i = 0; i < n; i++)
        if (!is_name_char((unsigned char)v[i]))
            return bad(err, errsz, "%s may hold only letters, digits, '_', '.' and '-', not \"%s\"", name, v);
    return 0;
}

static int is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Dot-separated labels of letters, digits and inner dashes, the last not all digits (that is a
 * mistyped IPv4 address); n bytes of s. */
static int is_hostname(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    size_t label = 0;
    int digits = 1;
    for (size_t i = 0; i <= n; i++) {
        int c = i < n ? (unsigned char)s[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
                return 0;
            if (i == n && digits)
                return 0;
            label = 0;
            digits = 1;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') {
            label++;
            digits &= c >= '0' && c <= '9';
        } else {
            return 0;
        }
    }
    return 1;
}

/* An IPv4 address or a hostname; n bytes of s. */
static int is_host(const char *s, size_t n)
{
    char buf[256];
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    unsigned char a[4];
    return inet_pton(AF_INET, buf, a) == 1 || is_hostname(s, n);
}

/* http(s)://host[:port][/prefix]: the REST base and the events socket are built by appending to it */
static int check_ari_url(const char *v, char *err, size_t errsz)
{
    const char *p;
    if (strncmp(v, "http://", 7) == 0)
        p = v + 7;
    else if (strncmp(v, "https://", 8) == 0)
        p = v + 8;
    else
        return bad(err, errsz, "ARI_URL must start with http:// or https:// (e.g. http://127.0.0.1:8088)");
    if (strlen(v) > 512)
        return bad(err, errsz, "ARI_URL must be at most 512 characters");
    if (strpbrk(v, "?#") != NULL)
        return bad(err, errsz, "ARI_URL must not have a query or fragment");
    size_t auth = strcspn(p, "/");
    if (memchr(p, '@', auth) != NULL)
        return bad(err, errsz, "ARI_URL must not carry credentials: use ARI_USERNAME and ARI_PASSWORD");
    const char *port = NULL;
    if (p[0] == '[') {
        const char *rb = memchr(p, ']', auth);
        char v6[64];
        size_t hl = rb != NULL ? (size_t)(rb - p - 1) : 0;
        if (rb == NULL || hl == 0 || hl >= sizeof(v6))
            return bad(err, errsz, "ARI_URL has an invalid host");
        memcpy(v6, p + 1, hl);
        v6[hl] = '\0';
        unsigned char buf[16];
        if (inet_pton(AF_INET6, v6, buf) != 1)
            return bad(err, errsz, "ARI_URL has an invalid IPv6 address");
        if (rb + 1 < p + auth) {
            if (rb[1] != ':')
                return bad(err, errsz, "ARI_URL has an invalid host");
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', auth);
        size_t hl = colon != NULL ? (size_t)(colon - p) : auth;
        if (!is_host(p, hl))
            return bad(err, errsz, "ARI_URL has an invalid host");
        port = colon != NULL ? colon + 1 : NULL;
    }
    if (port != NULL) {
        long n = 0;
        const char *end = p + auth, *c = port;
        for (; c < end && *c >= '0' && *c <= '9' && n <= 65535; c++)
            n = n * 10 + (*c - '0');
        if (c == port || c != end || n < 1 || n > 65535)
            return bad(err, errsz, "ARI_URL has an invalid port (expected 1-65535)");
    }
    const char *path = p + auth;
    if (path[0] == '\0')
        return 0;
    if (path[strlen(path) - 1] == '/')
        return bad(err, errsz, "ARI_URL must not end with '/' (give http://host:port or http://host:port/prefix)");
    for (const char *c = path; *c != '\0'; c++) {
        if (*c == '/' && c[1] == '/')
            return bad(err, errsz, "ARI_URL has an empty path segment");
        if (!is_name_char((unsigned char)*c) && strchr("/~%!$&'()*+,;=:@", *c) == NULL)
            return bad(err, errsz, "ARI_URL has an invalid character in its path");
    }
    return 0;
}

/* The Asterisk settings, checked whether or not ARI_URL is set: a typo must not wait for the first call. */
static int check_asterisk(config_t *cfg, char *err, size_t errsz)
{
    if (cfg->ari_url != NULL) {
        if (check_ari_url(cfg->ari_url, err, errsz) != 0)
            return -1;
        if (cfg->ari_username == NULL || cfg->ari_password == NULL)
            return bad(err, errsz, "ARI_URL is set but %s is not: Asterisk needs both ARI_USERNAME and ARI_PASSWORD",
                       cfg->ari_username == NULL ? "ARI_USERNAME" : "ARI_PASSWORD");
    }
    /* basic auth sends "user:password" (ari.c holds it in 512 bytes) */
    if (cfg->ari_username != NULL && (strlen(cfg->ari_username) > 255 || strchr(cfg->ari_username, ':') != NULL))
        return bad(err, errsz, "ARI_USERNAME must be at most 255 characters and hold no ':'");
    if (cfg->ari_password != NULL && strlen(cfg->ari_password) > 255)
        return bad(err, errsz, "ARI_PASSWORD must be at most 255 characters");
    if (check_name("ARI_APP", cfg->ari_app, err, errsz) != 0)
        return -1;
    if (cfg->asterisk_trunk != NULL && check_name("ASTERISK_TRUNK", cfg->asterisk_trunk, err, errsz) != 0)
        return -1;

    /* "[2001:db8::1]" is accepted and kept bare: external_host brackets it itself */
    size_t n = strlen(cfg->rtp_address);
    if (n > 2 && cfg->rtp_address[0] == '[' && cfg->rtp_address[n - 1] == ']') {
        memmove(cfg->rtp_address, cfg->rtp_address + 1, n - 2);
        cfg->rtp_address[n - 2] = '\0';
        if (strchr(cfg->rtp_address, ':') == NULL || !is_ip_literal(cfg->rtp_address))
            return bad(err, errsz, "RTP_ADDRESS: \"[%s]\" is not an IPv6 address", cfg->rtp_address);
    }
    int rtp_ip = is_ip_literal(cfg->rtp_address);
    if (!rtp_ip && !is_hostname(cfg->rtp_address, strlen(cfg->rtp_address)))
        return bad(err, errsz, "RTP_ADDRESS must be an IPv4 or IPv6 address or a hostname, not \"%s\"",
                   cfg->rtp_address);
    if (cfg->rtp_bind_address != NULL) {
        if (!is_ip_literal(cfg->rtp_bind_address))
            return bad(err, errsz, "RTP_BIND_ADDRESS must be an IPv4 or IPv6 address, not \"%s\"",
                       cfg->rtp_bind_address);
    } else if (!rtp_ip) {
        return bad(err, errsz,
                   "RTP_BIND_ADDRESS is needed: RTP_ADDRESS \"%s\" is a hostname, and the RTP sockets bind to an IP "
                   "address (0.0.0.0 for all)",
                   cfg->rtp_address);
    } else if ((cfg->rtp_bind_address = strdup(cfg->rtp_address)) == NULL) {
        return bad(err, errsz, "out of memory");
    }
    if (cfg->rtp_port_min > cfg->rtp_port_max)
        return bad(err, errsz, "RTP_PORT_MIN (%d) must not be above RTP_PORT_MAX (%d)", cfg->rtp_port_min,
                   cfg->rtp_port_max);

    if (cfg->default_platform == PLATFORM_ASTERISK && cfg->ari_url == NULL)
        return bad(err, errsz, "DEFAULT_PLATFORM=asterisk needs ARI_URL (with ARI_USERNAME and ARI_PASSWORD)");
    return 0;
}

static int check_jambonz(const config_t *cfg, char *err, size_t errsz)
{
    if (cfg->jambonz_sample_rate != 8000 && cfg->jambonz_sample_rate != 16000)
        return bad(err, errsz, "JAMBONZ_SAMPLE_RATE must be 8000 or 16000, not %d", cfg->jambonz_sample_rate);
    if (cfg->jambonz_api_base != NULL) {
        size_t n = strlen(cfg->jambonz_api_base);
        if (cfg->jambonz_api_base[n - 1] == '/')
            return bad(err, errsz, "JAMBONZ_API_BASE must not end with '/' (give https://host[:port])");
        if (cfg->jambonz_account_sid == NULL || cfg->jambonz_api_key == NULL)
            return bad(err, errsz, "JAMBONZ_API_BASE is set but %s is not",
                       cfg->jambonz_account_sid == NULL ? "JAMBONZ_ACCOUNT_SID" : "JAMBONZ_API_KEY");
    }
    /* the sid goes into REST paths: a uuid-like value, never a path of its own */
    if (cfg->jambonz_account_sid != NULL &&
        check_name("JAMBONZ_ACCOUNT_SID", cfg->jambonz_account_sid, err, errsz) != 0)
        return -1;
    if (cfg->jambonz_api_key != NULL &&
        (strlen(cfg->jambonz_api_key) > 255 || strpbrk(cfg->jambonz_api_key, "\r\n") != NULL))
        return bad(err, errsz, "JAMBONZ_API_KEY must be at most 255 characters on one line");
    if (cfg->jambonz_trunk != NULL && strlen(cfg->jambonz_trunk) > 128)
        return bad(err, errsz, "JAMBONZ_TRUNK must be at most 128 characters");
    if (cfg->default_platform == PLATFORM_JAMBONZ && cfg->jambonz_api_base == NULL)
        return bad(err, errsz,
                   "DEFAULT_PLATFORM=jambonz needs JAMBONZ_API_BASE (with JAMBONZ_ACCOUNT_SID and JAMBONZ_API_KEY)");
    return 0;
}

int config_load(config_t *cfg, const char *env_file, char *err, size_t errsz)
{
    dotenv_t d = {0};
    memset(cfg, 0, sizeof(*cfg));
    if (dotenv_read(env_file != NULL ? env_file : ".env", env_file != NULL, &d, err, errsz) != 0)
        goto fail;

    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        const setting_t *s = &settings[i];
        const char *v = lookup(&d, s->pub.name);
        if (v != NULL && *v == '\0')
            v = NULL; /* NAME= in .env means unset */
        if (v == NULL)
            v = s->pub.default_value;
        if (v == NULL)
            continue;
        if (apply(cfg, s, v, err, errsz) != 0)
            goto fail;
    }

    if (lookup(&d, "WORKERS") == NULL || *lookup(&d, "WORKERS") == '\0') {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = cores > 0 ? (int)(cores > 256 ? 256 : cores) : 1;
    }
    const char *ai = lookup(&d, "AI_PROVIDER");
    if (ai == NULL || *ai == '\0')
        cfg->ai_provider = cfg->openai_api_key != NULL ? AI_OPENAI : AI_ECHO;
    if (cfg->ai_provider == AI_OPENAI && cfg->openai_api_key == NULL) {
        bad(err, errsz, "AI_PROVIDER=openai needs OPENAI_API_KEY");
        goto fail;
    }
    if (cfg->ai_provider == AI_ELEVENLABS && (cfg->elevenlabs_agent_id == NULL || cfg->elevenlabs_api_key == NULL)) {
        bad(err, errsz, "AI_PROVIDER=elevenlabs needs ELEVENLABS_AGENT_ID and ELEVENLABS_API_KEY");
        goto fail;
    }
    if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL)) {
        bad(err, errsz, "%s is set but %s is not: set both or neither",
            cfg->tls_cert_file ? "TLS_CERT_FILE" : "TLS_KEY_FILE",
            cfg->tls_cert_file ? "TLS_KEY_FILE" : "TLS_CERT_FILE");
        goto fail;
    }
    if (check_readable("TWILIO_CA_FILE", cfg->twilio_ca_file, err, errsz) != 0 ||
        check_readable("JAMBONZ_CA_FILE", cfg->jambonz_ca_file, err, errsz) != 0 ||
        check_readable("AI_CA_FILE", cfg->ai_ca_file, err, errsz) != 0 ||
        check_readable("TLS_CERT_FILE", cfg->tls_cert_file, err, errsz) != 0 ||
        check_readable("TLS_KEY_FILE", cfg->tls_key_file, err, errsz) != 0)
        goto fail;
    if (check_asterisk(cfg, err, errsz) != 0 || check_jambonz(cfg, err, errsz) != 0)
        goto fail;
    if (cfg->twilio_api_key_sid != NULL && cfg->twilio_api_key_secret == NULL) {
        bad(err, errsz, "TWILIO_API_KEY_SID is set but TWILIO_API_KEY_SECRET is not");
        goto fail;
    }
    if (cfg->port != 0 && cfg->port == cfg->tls_port) {
        bad(err, errsz, "PORT and TLS_PORT must differ (both %d)", cfg->port);
        goto fail;
    }

    /* transfer targets and numbers are checked now: a typo must not surface as a failed transfer */
    char e164[E164_BUFSZ];
    const char *why = NULL;
    if (e164_normalize("2025550100", cfg->default_country_code, e164, sizeof(e164), &why) != 0 &&
        strstr(why, "country") != NULL) {
        bad(err, errsz, "DEFAULT_COUNTRY_CODE: %s", why);
        goto fail;
    }
    struct {
        const char *name;
        char **value;
    } targets[] = {{"PRIMARY_TRANSFER_TARGET", &cfg->primary_transfer_target},
                   {"SECONDARY_TRANSFER_TARGET", &cfg->secondary_transfer_target},
                   {"VOICEMAIL_TARGET", &cfg->voicemail_target}};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        if (*targets[i].value == NULL)
            continue;
        target_t t;
        if (target_parse(*targets[i].value, cfg->default_country_code, &t, &why) != 0) {
            bad(err, errsz, "%s: \"%s\" is not a phone number, SIP URI or Asterisk dial string: %s", targets[i].name,
                *targets[i].value, why);
            goto fail;
        }
        free(*targets[i].value);
        *targets[i].value = strdup(t.value);
    }
    const char *numbers[][2] = {{"TWILIO_PHONE_NUMBER", cfg->twilio_phone_number},
                                {"ELEVENLABS_PHONE_NUMBER", cfg->elevenlabs_phone_number}};
    for (size_t i = 0; i < 2; i++) {
        if (numbers[i][1] != NULL &&
            e164_normalize(numbers[i][1], cfg->default_country_code, e164, sizeof(e164), &why) != 0) {
            bad(err, errsz, "%s: \"%s\": %s", numbers[i][0], numbers[i][1], why);
            goto fail;
        }
    }
    if (cfg->twilio_phone_number != NULL) {
        e164_normalize(cfg->twilio_phone_number, cfg->default_country_code, e164, sizeof(e164), &why);
        free(cfg->twilio_phone_number);
        cfg->twilio_phone_number = strdup(e164);
    }

    if (cfg->database_url != NULL && strncmp(cfg->database_url, "postgresql://", 13) != 0 &&
        strncmp(cfg->database_url, "postgres://", 11) != 0) {
        bad(err, errsz, "DATABASE_URL: must begin with postgresql:// or postgres://");
        goto fail;
    }
    const char *slash = strrchr(cfg->database_path, '/');
    cfg->data_dir = slash == NULL ? strdup(".")
                                  : strndup(cfg->database_path,
                                            slash == cfg->database_path ? 1 : (size_t)(slash - cfg->database_path));
    dotenv_free(&d);
    return 0;

fail:
    dotenv_free(&d);
    config_free(cfg);
    return -1;
}

const char *config_store_target(const config_t *cfg)
{
    return cfg->database_url != NULL ? cfg->database_url : cfg->database_path;
}

void config_free(config_t *cfg)
{
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (settings[i].kind == K_STR || settings[i].kind == K_URL) {
            char **p = (char **)((char *)cfg + settings[i].off);
            free(*p);
            *p = NULL;
        }
    }
    free(cfg->data_dir);
    cfg->data_dir = NULL;
}

int config_twilio_configured(const config_t *cfg)
{
    return cfg->twilio_account_sid != NULL &&
           (cfg->twilio_auth_token != NULL || (cfg->twilio_api_key_sid != NULL && cfg->twilio_api_key_secret != NULL));
}

const char *config_ai_provider_name(ai_kind_t p)
{
    return ai_choices[p];
}

const char *config_platform_name(platform_t p)
{
    return (unsigned)p < sizeof(platform_choices) / sizeof(platform_choices[0]) - 1 ? platform_choices[p] : "unknown";
}

int config_platform_parse(const char *s, platform_t *out)
{
    for (int i = 0; s != NULL && platform_choices[i] != NULL; i++) {
        if (strcmp(s, platform_choices[i]) == 0) {
            *out = (platform_t)i;
            return 0;
        }
    }
    return -1;
}
