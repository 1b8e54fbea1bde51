/* switchboard: TwiML webhook application server. main() loads the settings, prepares the
 * database and listeners on this thread, runs the workers and waits for SIGTERM/SIGINT. */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db/store.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/jwt.h"
#include "server/h1guard.h"
#include "server/http.h"
#include "server/listen.h"
#include "server/log.h"
#include "server/tls.h"
#include "server/worker.h"

#define MAX_WORKERS WORKERS_MAX

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: switchboard [--env-file FILE] [serve | token ... | version | help]\n"
               "  serve     run the server (default); settings from the environment and .env\n"
               "  token --tenant ID --role agent|admin [--ttl 1h] [--sub NAME]\n"
               "            print a bearer token for the API, signed with JWT_SECRET (or the\n"
               "            secret the server generated into its data folder)\n"
               "  version   print the version\n");
}

static int mint_token(config_t *cfg, int argc, char **argv)
{
    long tenant = 0, ttl = 3600;
    jwt_role_t role = 0;
    const char *sub = "switchboard-cli";
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (v == NULL)
            goto bad;
        if (strcmp(argv[i], "--tenant") == 0) {
            tenant = strtol(v, &end, 10);
            if (*end != '\0' || tenant < 1)
                goto bad;
        } else if (strcmp(argv[i], "--role") == 0) {
            if (jwt_role_parse(v, &role) != 0)
                goto bad;
        } else if (strcmp(argv[i], "--ttl") == 0) {
            if (jwt_parse_ttl(v, &ttl) != 0)
                goto bad;
        } else if (strcmp(argv[i], "--sub") == 0) {
            sub = v;
        } else {
            goto bad;
        }
        i++;
    }
    if (tenant == 0 || role == 0)
        goto bad;
    char err[512];
    if (mkdir_p(cfg->data_dir) != 0 || auth_ensure_secret(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "switchboard: %s\n", mkdir_p(cfg->data_dir) != 0 ? "cannot create the data folder" : err);
        return 1;
    }
    jwt_settings_t s = {cfg->jwt_secret, cfg->jwt_issuer, cfg->jwt_audience, JWT_DEFAULT_LEEWAY};
    char *tok = NULL;
    const char *why = NULL;
    if (jwt_mint(&s, sub, tenant, role, (long)time(NULL), ttl, &tok, &why) != 0) {
        fprintf(stderr, "switchboard: cannot mint a token: %s\n", why);
        return 1;
    }
    printf("%s\n", tok);
    free(tok);
    return 0;
bad:
    fprintf(stderr, "usage: switchboard token --tenant ID --role agent|admin [--ttl 90s|15m|1h|7d] [--sub NAME]\n");
    return 2;
}

static void log_settings(const config_t *cfg)
{
    char buf[512];
    log_info("config.loaded",
             "workers=%d port=%d tls_port=%d database=%s public_base_url=%s twilio_configured=%s ai_provider=%s "
             "auth_token=%s jwt_secret=%s max_request_body=%zu",
             cfg->workers, cfg->port, cfg->tls_port,
             /* the URL carries a password: only which engine */
             cfg->database_url != NULL ? "postgresql" : log_quote(buf, sizeof(buf), cfg->database_path, (size_t)-1),
             cfg->public_base_url ? cfg->public_base_url : "unset", config_twilio_configured(cfg) ? "yes" : "no",
             config_ai_provider_name(cfg->ai_provider), cfg->twilio_auth_token ? "set" : "unset",
             cfg->jwt_secret ? "set" : "unset", cfg->max_request_body);
    if (cfg->twilio_auth_token == NULL)
        log_warn("config.no_auth_token", "msg=\"TWILIO_AUTH_TOKEN unset: webhook signatures are not checked "
                                         "(simulation only; never expose this server so)\"");
    if (cfg->jambonz_webhook_secret == NULL)
        log_warn("config.no_jambonz_secret", "msg=\"JAMBONZ_WEBHOOK_SECRET unset: jambonz hooks and listen sockets are "
                                             "not authenticated (simulation only; never expose this server so)\"");
    if (!config_twilio_configured(cfg))
        log_info("config.simulation", "msg=\"no Twilio credentials: outbound calls run in simulation mode\"");
}

/* Database: create the folder, apply migrations once, ensure the default tenant. -1: it could
 * not be reached (PostgreSQL: try again later); -2: it answered and refused (a migration's SQL
 * failed): trying again cannot help, start-up stops as it does on SQLite. */
static int prepare_store(const config_t *cfg, char *err, size_t errsz)
{
    if (mkdir_p(cfg->data_dir) != 0) {
        snprintf(err, errsz, "DATABASE_PATH: cannot create folder %s: %s", cfg->data_dir, strerror(errno));
        return -1;
    }
    store_t *st;
    if (store_open(config_store_target(cfg), &st, err, errsz) != 0)
        return -1;
    int applied = 0, rc = -1;
    if (store_migrate_embedded(st, &applied, err, errsz) != 0) {
        if (store_schema_version(st) >= 0) /* still answering: the migration itself failed */
            rc = -2;
        goto out;
    }
    log_info("db.migrated", "applied=%d schema_version=%d", applied, store_schema_version(st));
    int created = store_tenant_ensure(st, cfg->default_tenant_id, "default");
    if (created < 0) {
        snprintf(err, errsz, "default tenant: %s", store_errmsg(st));
        goto out;
    }
    if (created)
        log_info("db.tenant_created", "tenant=%ld", cfg->default_tenant_id);
    rc = 0;
out:
    store_close(st);
    return rc;
}

/* The main thread waits for a signal and meanwhile checkpoints the WAL once a second: the
 * checkpoint's fsync stays off the workers' loops. With PostgreSQL it instead prepares the
 * database (migrations, the default tenant) until that succeeds, backing off from 1 s to 16 s:
 * an instance started while the database is down serves (/health answers 503) and waits.
 * Returns the signal. */
static int wait_and_checkpoint(const config_t *cfg, const sigset_t *sigs, int prepared, int *failed)
{
    char err[512];
    store_t *st = NULL;
    if (cfg->database_url == NULL && store_open(cfg->database_path, &st, err, sizeof(err)) != 0)
        log_error("db.checkpointer", "error=\"%s\"", err);
    struct timespec tick = {1, 0};
    int sig, wait_s = 1, waited = 0;
    while ((sig = sigtimedwait(sigs, NULL, &tick)) < 0) {
        if (!prepared && ++waited >= wait_s) {
            waited = 0;
            int prc = prepare_store(cfg, err, sizeof(err));
            if (prc == 0) {
                prepared = 1;
                log_info("db.ready", "engine=postgresql");
            } else if (prc == -2) {
                log_error("db.migration_failed", "error=\"%s\"", err);
                sig = SIGTERM; /* stop as a signal would: the workers drain and exit; status 1 */
                *failed = 1;
                break;
            } else {
                wait_s = wait_s < 16 ? wait_s * 2 : 16;
                log_warn("db.unavailable", "retry_s=%d error=\"%s\"", wait_s, err);
            }
        }
        int frames = 0, done = 0;
        if (st != NULL && store_checkpoint(st, &frames, &done) != 0)
            log_error("db.checkpoint_failed", "error=\"%s\"", store_errmsg(st));
        else if (frames > 0)
            log_debug("db.checkpoint", "wal_frames=%d checkpointed=%d", frames, done);
    }
    if (st != NULL)
        store_checkpoint(st, NULL, NULL);
    store_close(st);
    return sig;
}

static int serve(app_t *app)
{
    config_t *cfg = &app->cfg;
    char err[512];
    int rc = 1, nworkers = cfg->workers, started = 0;
    int fds_plain[MAX_WORKERS], fds_tls[MAX_WORKERS];
    worker_t *workers = calloc((size_t)nworkers, sizeof(*workers));
    for (int i = 0; i < nworkers; i++)
        fds_plain[i] = fds_tls[i] = -1;

    /* PostgreSQL: a first try here; if the database is not up yet the main thread keeps trying */
    int prepared = 0;
    if (cfg->database_url != NULL) {
        if (mkdir_p(cfg->data_dir) != 0) {
            snprintf(err, sizeof(err), "data folder %s: %s", cfg->data_dir, strerror(errno));
            goto fail;
        }
        int prc = prepare_store(cfg, err, sizeof(err));
        if (prc == -2)
            goto fail;
        prepared = prc == 0;
        if (!prepared)
            log_warn("db.unavailable", "retry_s=1 error=\"%s\"", err);
    } else if (prepare_store(cfg, err, sizeof(err)) != 0) {
        goto fail;
    } else {
        prepared = 1;
    }
    if (auth_ensure_secret(cfg, err, sizeof(err)) != 0)
        goto fail;
    if (cfg->tls_port >= 0 && (app->ssl = tls_server_ctx(cfg, err, sizeof(err))) == NULL)
        goto fail;
    if ((app->client_ssl = tls_client_ctx(cfg->ai_ca_file, err, sizeof(err))) == NULL)
        goto fail;
    if (listen_open("PORT", cfg->bind_address, &cfg->port, fds_plain, nworkers, err, sizeof(err)) != 0)
        goto fail;
    if (cfg->tls_port >= 0 &&
        listen_open("TLS_PORT", cfg->bind_address, &cfg->tls_port, fds_tls, nworkers, err, sizeof(err)) != 0)
        goto fail;

    if (h1guard_init(cfg->max_request_body, err, sizeof(err)) != 0)
        goto fail;
    h2o_config_init(&app->h2o);
    app->h2o.max_request_entity_size = cfg->max_request_body;
    app->h2o.http1.upgrade_to_http2 = 0; /* HTTP/2 over TLS (ALPN) only, not h2c on the plain port */
    app->h2o.server_name = h2o_iovec_init(H2O_STRLIT("switchboard"));
    http_register(&app->h2o);
    app->started_ms = uv_hrtime() / 1000000;
    RAND_bytes((unsigned char *)&app->rid_salt, sizeof(app->rid_salt));

    /* workers inherit this mask: only the main thread takes SIGTERM/SIGINT */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    for (; started < nworkers; started++) {
        if (worker_start(&workers[started], app, started, fds_plain[started], fds_tls[started]) != 0) {
            snprintf(err, sizeof(err), "worker %d: %s", started, workers[started].errbuf);
            fds_plain[started] = fds_tls[started] = -1; /* the worker closed them */
            break;
        }
        fds_plain[started] = fds_tls[started] = -1;
    }
    if (started == nworkers) {
        log_info("server.listening", "port=%d tls_port=%d workers=%d version=%s", cfg->port, cfg->tls_port, nworkers,
                 SB_VERSION);
        int failed = 0;
        int sig = wait_and_checkpoint(cfg, &sigs, prepared, &failed);
        if (failed) {
            snprintf(err, sizeof(err), "the database refused the migrations (see db.migration_failed)");
            log_info("server.stopping", "reason=migration_failed");
        } else {
            log_info("server.stopping", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            rc = 0;
        }
    }
    for (int i = 0; i < started; i++)
        worker_stop(&workers[i]);
    for (int i = 0; i < started; i++)
        worker_join(&workers[i]);
    if (rc == 0) {
        log_info("server.stopped", "msg=\"clean exit\"");
        goto out;
    }
fail:
    log_error("server.start_failed", "error=\"%s\"", err);
    fprintf(stderr, "switchboard: %s\n", err);
out:
    for (int i = 0; i < nworkers; i++) {
        if (fds_plain[i] >= 0)
            close(fds_plain[i]);
        if (fds_tls[i] >= 0)
            close(fds_tls[i]);
    }
    if (started > 0 || app->h2o.hosts != NULL)
        h2o_config_dispose(&app->h2o);
    SSL_CTX_free(app->ssl);
    SSL_CTX_free(app->client_ssl);
    free(workers);
    return rc;
}

int main(int argc, char **argv)
{
    const char *env_file = NULL, *cmd = "serve";
    int cmd_at = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc) {
            env_file = argv[++i];
        } else if (argv[i][0] != '-') {
            cmd = argv[i];
            cmd_at = i;
            break; /* the rest belongs to the command */
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(cmd, "version") == 0) {
        printf("switchboard %s\n", SB_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "token") != 0) {
        usage(stderr);
        return 2;
    }

    app_t app; /* outlives every worker: serve() joins them before returning */
    app_status_t status;
    memset(&app, 0, sizeof(app));
    memset(&status, 0, sizeof(status));
    app.status = &status;
    char err[512];
    if (config_load(&app.cfg, env_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "switchboard: configuration error: %s\n", err);
        return 2;
    }
    if (strcmp(cmd, "token") == 0) {
        int rc = mint_token(&app.cfg, argc - cmd_at - 1, argv + cmd_at + 1);
        config_free(&app.cfg);
        return rc;
    }
    if (app.cfg.workers > MAX_WORKERS)
        app.cfg.workers = MAX_WORKERS;
    log_init((log_level_t)app.cfg.log_level);
    /* every connection belongs to one thread: no global allocator statistics (and their mutex) */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_settings(&app.cfg);

    int rc = serve(&app);

    curl_global_cleanup();
    config_free(&app.cfg);
    return rc;
}
