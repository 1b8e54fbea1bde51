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
    const char *secret[] = {"TWILIO_AUTH_TOKEN",   "TWILIO_API_KEY_SECRET",     "OPENAI_API_KEY",
                            "ELEVENLABS_API_KEY",  "ELEVENLABS_WEBHOOK_SECRET", "JWT_SECRET",
                            "FREEPBX_SIP_PASSWORD"};
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
