/* config: defaults, .env parsing, environment precedence, errors naming the setting,
 * and .env.example listing exactly the settings the loader knows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/config.h"

static const char *example_path;

static void clear_env(void)
{
    for (size_t i = 0; i < config_setting_count(); i++)
        unsetenv(config_setting_at(i)->name);
}

static char *write_tmp(const char *content)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/sb-test-env-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void defaults(void **state)
{
    (void)state;
    clear_env();
    config_t c;
    char err[256];
    assert_int_equal(config_load(&c, "/dev/null", err, sizeof(err)), 0);
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.tls_port, 8443);
    assert_string_equal(c.database_path, "data/switchboard.db");
    assert_string_equal(c.data_dir, "data");
    assert_string_equal(c.twilio_api_base, "https://api.twilio.com");
    assert_int_equal(c.ai_provider, AI_ECHO);
    assert_int_equal(c.transfer_timeout, 30);
    assert_int_equal(c.silence_timeout_s, 20);
    assert_int_equal(c.caller_id_policy, CALLER_ID_ORIGINAL);
    assert_int_equal((int)c.max_request_body, 65536);
    assert_true(c.workers >= 1);
    assert_null(c.twilio_auth_token);
    assert_false(config_twilio_configured(&c));
    /* Asterisk is off until ARI_URL is set */
    assert_null(c.ari_url);
    assert_null(c.ari_username);
    assert_null(c.ari_password);
    assert_string_equal(c.ari_app, "switchboard");
    assert_string_equal(c.rtp_address, "127.0.0.1");
    assert_string_equal(c.rtp_bind_address, "127.0.0.1");
    assert_int_equal(c.rtp_port_min, 20000);
    assert_int_equal(c.rtp_port_max, 20999);
    assert_null(c.asterisk_trunk);
    assert_int_equal(c.default_platform, PLATFORM_TWILIO);
    config_free(&c);
}

static void dotenv_and_precedence(void **state)
{
    (void)state;
    clear_env();
    char *path = write_tmp("# comment\n"
                           "export PORT=9090\n"
                           "TLS_PORT=off\n"
                           "TWILIO_ACCOUNT_SID=\"AC123\"\n"
                           "TWILIO_AUTH_TOKEN='tok en'\n"
                           "AI_INSTRUCTIONS=Be brief # inline comment\n"
                           "CALLER_ID_POLICY=business\n"
                           "DATABASE_PATH=/tmp/x/y.db\n"
                           "PRIMARY_TRANSFER_TARGET=2000@pbx.example.com;transport=tcp\n"
                           "SECONDARY_TRANSFER_TARGET=(415) 555-0100\n"
                           "TWILIO_PHONE_NUMBER=415.555.0199\n");
    setenv("PORT", "7070", 1); /* the environment wins over .env */
    config_t c;
    char err[256];
    assert_int_equal(config_load(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.port, 7070);
    assert_int_equal(c.tls_port, -1);
    assert_string_equal(c.twilio_account_sid, "AC123");
    assert_string_equal(c.twilio_auth_token, "tok en");
    assert_string_equal(c.ai_instructions, "Be brief");
    assert_int_equal(c.caller_id_policy, CALLER_ID_BUSINESS);
    assert_string_equal(c.data_dir, "/tmp/x");
    assert_string_equal(c.primary_transfer_target, "sip:2000@pbx.example.com;transport=tcp");
    assert_string_equal(c.secondary_transfer_target, "+14155550100");
    assert_string_equal(c.twilio_phone_number, "+14155550199");
    assert_true(config_twilio_configured(&c));
    config_free(&c);
    unlink(path);
    clear_env();
}

static void expect_error(const char *name, const char *value, const char *needle);

/* Loads with the settings in env (NAME, VALUE pairs, NULL-terminated) set. */
static int load_with(config_t *c, char *err, size_t errsz, const char *const *env)
{
    clear_env();
    for (size_t i = 0; env[i] != NULL; i += 2)
        setenv(env[i], env[i + 1], 1);
    int rc = config_load(c, "/dev/null", err, errsz);
    clear_env();
    return rc;
}

static void asterisk_settings(void **state)
{
    (void)state;
    config_t c;
    char err[256] = "";
    const char *const full[] = {"ARI_URL",
                                "http://10.0.0.5:8088/asterisk",
                                "ARI_USERNAME",
                                "switchboard",
                                "ARI_PASSWORD",
                                "s3cret:with:colons",
                                "ARI_APP",
                                "sb-1.prod_2",
                                "RTP_ADDRESS",
                                "media.example.com",
                                "RTP_BIND_ADDRESS",
                                "0.0.0.0",
                                "RTP_PORT_MIN",
                                "30000",
                                "RTP_PORT_MAX",
                                "30000",
                                "ASTERISK_TRUNK",
                                "didww",
                                "DEFAULT_PLATFORM",
                                "asterisk",
                                NULL};
    if (load_with(&c, err, sizeof(err), full) != 0)
        fail_msg("refused: %s", err);
    assert_string_equal(c.ari_url, "http://10.0.0.5:8088/asterisk");
    assert_string_equal(c.ari_username, "switchboard");
    assert_string_equal(c.ari_password, "s3cret:with:colons");
    assert_string_equal(c.ari_app, "sb-1.prod_2");
    assert_string_equal(c.rtp_address, "media.example.com");
    assert_string_equal(c.rtp_bind_address, "0.0.0.0");
    assert_int_equal(c.rtp_port_min, 30000);
    assert_int_equal(c.rtp_port_max, 30000);
    assert_string_equal(c.asterisk_trunk, "didww");
    assert_int_equal(c.default_platform, PLATFORM_ASTERISK);
    config_free(&c);

    /* IPv6: brackets dropped (external_host adds its own); the bind address follows RTP_ADDRESS */
    const char *const v6[] = {"ARI_URL", "https://[::1]:8089", "ARI_USERNAME",  "u", "ARI_PASSWORD",
                              "p",       "RTP_ADDRESS",        "[2001:db8::5]", NULL};
    if (load_with(&c, err, sizeof(err), v6) != 0)
        fail_msg("refused: %s", err);
    assert_string_equal(c.rtp_address, "2001:db8::5");
    assert_string_equal(c.rtp_bind_address, "2001:db8::5");
    assert_int_equal(c.default_platform, PLATFORM_TWILIO);
    config_free(&c);

    static const char *const urls[] = {"http://127.0.0.1:8088", "http://localhost",
                                       "https://pbx.example.com:443/ari-proxy", "http://pbx:8088/a/b", NULL};
    for (size_t i = 0; urls[i] != NULL; i++) {
        const char *const env[] = {"ARI_URL", urls[i], "ARI_USERNAME", "u", "ARI_PASSWORD", "p", NULL};
        if (load_with(&c, err, sizeof(err), env) != 0)
            fail_msg("%s refused: %s", urls[i], err);
        config_free(&c);
    }

    /* a secret never appears in a message */
    const char *const no_user[] = {"ARI_URL", "http://127.0.0.1:8088", "ARI_PASSWORD", "hunter2", NULL};
    assert_int_equal(load_with(&c, err, sizeof(err), no_user), -1);
    assert_non_null(strstr(err, "ARI_USERNAME"));
    assert_null(strstr(err, "hunter2"));
    const char *const long_pw[] = {"ARI_PASSWORD",
                                   "hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2"
                                   "hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2"
                                   "hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2"
                                   "hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2"
                                   "hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2",
                                   NULL};
    assert_int_equal(load_with(&c, err, sizeof(err), long_pw), -1);
    assert_non_null(strstr(err, "ARI_PASSWORD"));
    assert_null(strstr(err, "hunter2"));
}

static void platforms(void **state)
{
    (void)state;
    platform_t p = PLATFORM_JAMBONZ;
    assert_string_equal(config_platform_name(PLATFORM_TWILIO), "twilio");
    assert_string_equal(config_platform_name(PLATFORM_ASTERISK), "asterisk");
    assert_string_equal(config_platform_name(PLATFORM_JAMBONZ), "jambonz");
    assert_string_equal(config_platform_name((platform_t)7), "unknown");
    assert_int_equal(config_platform_parse("twilio", &p), 0);
    assert_int_equal(p, PLATFORM_TWILIO);
    assert_int_equal(config_platform_parse("asterisk", &p), 0);
    assert_int_equal(p, PLATFORM_ASTERISK);
    assert_int_equal(config_platform_parse("jambonz", &p), 0);
    assert_int_equal(p, PLATFORM_JAMBONZ);
    assert_int_equal(config_platform_parse("Asterisk", &p), -1);
    assert_int_equal(config_platform_parse("", &p), -1);
    assert_int_equal(config_platform_parse("sip", &p), -1);
    assert_int_equal(config_platform_parse(NULL, &p), -1);
    assert_int_equal(p, PLATFORM_JAMBONZ); /* untouched on failure */
}

/* name=value on top of a working Asterisk set-up must fail with a message holding needle. */
static void expect_ari_error(const char *name, const char *value, const char *needle)
{
    const char *const base[] = {"ARI_URL", "http://127.0.0.1:8088", "ARI_USERNAME", "u", "ARI_PASSWORD", "p"};
    const char *env[10];
    size_t n = 0;
    for (size_t i = 0; i < 6; i += 2) {
        if (strcmp(base[i], name) != 0) {
            env[n++] = base[i];
            env[n++] = base[i + 1];
        }
    }
    env[n++] = name;
    env[n++] = value;
    env[n] = NULL;
    config_t c;
    char err[256] = "";
    if (load_with(&c, err, sizeof(err), env) == 0)
        fail_msg("%s=%s accepted", name, value);
    if (strstr(err, needle) == NULL)
        fail_msg("%s=%s: error \"%s\" does not name %s", name, value, err, needle);
}

static void asterisk_errors_name_the_setting(void **state)
{
    (void)state;
    expect_ari_error("ARI_URL", "127.0.0.1:8088", "ARI_URL");
    expect_ari_error("ARI_URL", "ws://127.0.0.1:8088", "ARI_URL");
    expect_ari_error("ARI_URL", "ftp://127.0.0.1", "ARI_URL");
    expect_ari_error("ARI_URL", "http://", "ARI_URL");
    expect_ari_error("ARI_URL", "http://:8088", "ARI_URL");
    expect_ari_error("ARI_URL", "http://127.0.0.1:8088/", "ARI_URL");
    expect_ari_error("ARI_URL", "http://127.0.0.1:8088/ari/", "ARI_URL");
    expect_ari_error("ARI_URL", "http://127.0.0.1:8088?x=1", "ARI_URL");
    expect_ari_error("ARI_URL", "http://127.0.0.1:8088#top", "ARI_URL");
    expect_ari_error("ARI_URL", "http://user:pw@127.0.0.1:8088", "ARI_URL");
    expect_ari_error("ARI_URL", "http://127.0.0.1:0", "ARI_URL");
    expect_ari_error("ARI_URL", "http://127.0.0.1:65536", "ARI_URL");
    expect_ari_error("ARI_URL", "http://127.0.0.1:", "ARI_URL");
    expect_ari_error("ARI_URL", "http://127.0.0.1:80a", "ARI_URL");
    expect_ari_error("ARI_URL", "http://pbx_1.example.com", "ARI_URL");
    expect_ari_error("ARI_URL", "http://10.0.0.256:8088", "ARI_URL");
    expect_ari_error("ARI_URL", "http://[::g]:8088", "ARI_URL");
    expect_ari_error("ARI_URL", "http://[::1]x", "ARI_URL");
    expect_ari_error("ARI_URL", "http://pbx//ari", "ARI_URL");
    expect_ari_error("ARI_URL", "http://pbx/a b", "ARI_URL");
    expect_ari_error("ARI_USERNAME", "", "ARI_USERNAME"); /* empty is unset */
    expect_ari_error("ARI_USERNAME", "a:b", "ARI_USERNAME");
    expect_ari_error("ARI_PASSWORD", "", "ARI_PASSWORD");
    expect_ari_error("ARI_APP", "my app", "ARI_APP");
    expect_ari_error("ARI_APP", "app&x=1", "ARI_APP");
    expect_ari_error("ARI_APP", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ARI_APP");
    expect_ari_error("RTP_ADDRESS", "10.0.0.256", "RTP_ADDRESS");
    expect_ari_error("RTP_ADDRESS", "media host", "RTP_ADDRESS");
    expect_ari_error("RTP_ADDRESS", "[10.0.0.1]", "RTP_ADDRESS");
    expect_ari_error("RTP_ADDRESS", "-media.example.com", "RTP_ADDRESS");
    expect_ari_error("RTP_ADDRESS", "media.example.com", "RTP_BIND_ADDRESS"); /* a hostname cannot be bound */
    expect_ari_error("RTP_BIND_ADDRESS", "localhost", "RTP_BIND_ADDRESS");
    expect_ari_error("RTP_BIND_ADDRESS", "[::1]", "RTP_BIND_ADDRESS");
    expect_ari_error("RTP_PORT_MIN", "80", "RTP_PORT_MIN");
    expect_ari_error("RTP_PORT_MIN", "65536", "RTP_PORT_MIN");
    expect_ari_error("RTP_PORT_MAX", "1023", "RTP_PORT_MAX");
    expect_ari_error("RTP_PORT_MAX", "lots", "RTP_PORT_MAX");
    expect_ari_error("RTP_PORT_MAX", "19999", "RTP_PORT_MIN"); /* below the minimum's default */
    expect_ari_error("ASTERISK_TRUNK", "didww/x", "ASTERISK_TRUNK");
    expect_ari_error("ASTERISK_TRUNK", "did ww", "ASTERISK_TRUNK");
    expect_ari_error("DEFAULT_PLATFORM", "freeswitch", "DEFAULT_PLATFORM");
    expect_ari_error("DEFAULT_PLATFORM", "Asterisk", "DEFAULT_PLATFORM");
    expect_ari_error("DEFAULT_PLATFORM", "jambonz", "DEFAULT_PLATFORM");
    expect_ari_error("PRIMARY_TRANSFER_TARGET", "PJSIP/20 00", "PRIMARY_TRANSFER_TARGET");
    expect_ari_error("VOICEMAIL_TARGET", "Skype/2000", "VOICEMAIL_TARGET");

    /* without ARI_URL: Asterisk needs it, and the other checks still run */
    expect_error("DEFAULT_PLATFORM", "asterisk", "ARI_URL");
    expect_error("ARI_APP", "bad app", "ARI_APP");
    expect_error("RTP_PORT_MIN", "21000", "RTP_PORT_MIN");
}

static void dial_string_targets(void **state)
{
    (void)state;
    config_t c;
    char err[256] = "";
    const char *const env[] = {"PRIMARY_TRANSFER_TARGET", "PJSIP/2000", "SECONDARY_TRANSFER_TARGET",
                               "Local/100@from-internal", NULL};
    if (load_with(&c, err, sizeof(err), env) != 0)
        fail_msg("refused: %s", err);
    assert_string_equal(c.primary_transfer_target, "PJSIP/2000");
    assert_string_equal(c.secondary_transfer_target, "Local/100@from-internal");
    config_free(&c);
}

static void expect_error(const char *name, const char *value, const char *needle)
{
    clear_env();
    setenv(name, value, 1);
    config_t c;
    char err[256] = "";
    assert_int_equal(config_load(&c, "/dev/null", err, sizeof(err)), -1);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not name %s", err, needle);
    clear_env();
}

static void errors_name_the_setting(void **state)
{
    (void)state;
    expect_error("PORT", "http", "PORT");
    expect_error("PORT", "70000", "PORT");
    expect_error("TLS_PORT", "-5", "TLS_PORT");
    expect_error("WORKERS", "0", "WORKERS");
    expect_error("LOG_LEVEL", "loud", "LOG_LEVEL");
    expect_error("AI_PROVIDER", "skynet", "AI_PROVIDER");
    expect_error("AI_PROVIDER", "openai", "OPENAI_API_KEY");
    expect_error("AI_PROVIDER", "elevenlabs", "ELEVENLABS_AGENT_ID");
    expect_error("CALLER_ID_POLICY", "random", "CALLER_ID_POLICY");
    expect_error("TRANSFER_TIMEOUT", "2", "TRANSFER_TIMEOUT");
    expect_error("PUBLIC_BASE_URL", "example.com", "PUBLIC_BASE_URL");
    expect_error("MAX_REQUEST_BODY", "lots", "MAX_REQUEST_BODY");
    expect_error("TLS_CERT_FILE", "/nonexistent/cert.pem", "TLS_KEY_FILE"); /* one without the other */
    expect_error("AI_CA_FILE", "/nonexistent/ca.pem", "AI_CA_FILE");
    expect_error("PRIMARY_TRANSFER_TARGET", "sip:2000@", "PRIMARY_TRANSFER_TARGET");
    expect_error("SECONDARY_TRANSFER_TARGET", "call bob", "SECONDARY_TRANSFER_TARGET");
    expect_error("VOICEMAIL_TARGET", "<sip:vm@pbx.example.com>", "VOICEMAIL_TARGET");
    expect_error("TWILIO_PHONE_NUMBER", "12", "TWILIO_PHONE_NUMBER");
    expect_error("DEFAULT_COUNTRY_CODE", "0x", "DEFAULT_COUNTRY_CODE");

    clear_env();
    setenv("TLS_CERT_FILE", "/nonexistent/cert.pem", 1);
    setenv("TLS_KEY_FILE", "/nonexistent/key.pem", 1);
    config_t c;
    char err[256];
    assert_int_equal(config_load(&c, "/dev/null", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "TLS_CERT_FILE"));
    clear_env();

    /* a named env file that is missing is an error; the implicit .env is optional */
    assert_int_equal(config_load(&c, "/nonexistent/.env", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/.env"));
}

static void secrets_are_marked(void **state)
{
    (void)state;
    const char *secret[] = {"TWILIO_AUTH_TOKEN",
                            "TWILIO_API_KEY_SECRET",
                            "OPENAI_API_KEY",
                            "ELEVENLABS_API_KEY",
                            "ELEVENLABS_WEBHOOK_SECRET",
                            "JWT_SECRET",
                            "FREEPBX_SIP_PASSWORD",
                            "ARI_PASSWORD"};
    for (size_t j = 0; j < sizeof(secret) / sizeof(secret[0]); j++) {
        int found = 0;
        for (size_t i = 0; i < config_setting_count(); i++)
            if (strcmp(config_setting_at(i)->name, secret[j]) == 0)
                found = config_setting_at(i)->secret;
        if (!found)
            fail_msg("%s is not marked secret", secret[j]);
    }
}

/* Every setting the loader knows is documented in .env.example, and nothing else is. */
static void env_example_in_step(void **state)
{
    (void)state;
    FILE *f = fopen(example_path, "r");
    if (f == NULL)
        fail_msg("cannot read %s", example_path);
    char line[1024];
    size_t listed = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = line;
        if (*s == '#')
            s++;
        while (*s == ' ')
            s++;
        char *eq = strchr(s, '=');
        if (eq == NULL || s[0] < 'A' || s[0] > 'Z')
            continue;
        *eq = '\0';
        int known = 0;
        for (size_t i = 0; i < config_setting_count(); i++)
            known |= strcmp(config_setting_at(i)->name, s) == 0;
        if (!known)
            fail_msg(".env.example lists %s, which the server does not read", s);
        listed++;
    }
    fclose(f);
    for (size_t i = 0; i < config_setting_count(); i++) {
        const char *name = config_setting_at(i)->name;
        FILE *g = fopen(example_path, "r");
        int seen = 0;
        while (fgets(line, sizeof(line), g) != NULL) {
            char *s = line[0] == '#' ? line + 1 : line;
            while (*s == ' ')
                s++;
            if (strncmp(s, name, strlen(name)) == 0 && s[strlen(name)] == '=')
                seen = 1;
        }
        fclose(g);
        if (!seen)
            fail_msg("%s is missing from .env.example", name);
    }
    assert_int_equal(listed, config_setting_count());
}

int main(int argc, char **argv)
{
    example_path = argc > 1 ? argv[1] : ".env.example";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(dotenv_and_precedence),
        cmocka_unit_test(errors_name_the_setting),
        cmocka_unit_test(secrets_are_marked),
        cmocka_unit_test(env_example_in_step),
        cmocka_unit_test(asterisk_settings),
        cmocka_unit_test(platforms),
        cmocka_unit_test(asterisk_errors_name_the_setting),
        cmocka_unit_test(dial_string_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
