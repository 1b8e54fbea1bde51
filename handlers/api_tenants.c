#include "handlers/api_tenants.h"
#include "server/log.h"
#include "server/worker.h"
#include "server/e164.h"
#include "server/form.h"
#include "server/target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NUMBERS 64

static int operator(const http_req_t *r)
{
    return r->tenant_id == r->w->app->cfg.default_tenant_id;
}

/* The {id} capture; 0 (and *id) or answered 404. Other tenants read as missing. */
static int tenant_param(http_req_t *r, long *id)
{
    h2o_iovec_t p = http_param(r, 0);
    char buf[24];
    char *end;
    if (p.len == 0 || p.len >= sizeof(buf))
        goto missing;
    memcpy(buf, p.base, p.len);
    buf[p.len] = '\0';
    *id = strtol(buf, &end, 10);
    if (*end != '\0' || *id < 1 || (!operator(r) && *id != r->tenant_id))
        goto missing;
    return 0;
missing:
    http_send_error(r, 404, "not_found", "no such tenant", NULL);
    return -1;
}

void api_tenants_list(http_req_t *r)
{
    json_t *rows;
    if (store_tenants_list(r->w->store, operator(r) ? 0 : r->tenant_id, &rows) != 0) {
        http_send_error(r, 503, "db_unavailable", "the tenants could not be read", NULL);
        return;
    }
    http_send_json(r, 200, json_pack("{s:o}", "tenants", rows));
}

void api_tenants_get(http_req_t *r)
{
    long id;
    if (tenant_param(r, &id) != 0)
        return;
    json_t *t;
    int rc = store_tenant_detail(r->w->store, id, &t);
    if (rc < 0)
        http_send_error(r, 503, "db_unavailable", "the tenant could not be read", NULL);
    else if (rc == 1)
        http_send_error(r, 404, "not_found", "no such tenant", NULL);
    else
        http_send_json(r, 200, t);
}

typedef struct {
    store_tenant_input_t in;
    char targets[3][256];
    char numbers[MAX_NUMBERS][E164_BUFSZ];
    const char *number_ptrs[MAX_NUMBERS];
    char *agent_instructions;
} parsed_t;

static const char *const string_fields[] = {"name", "greeting", "ai_voice", "ai_instructions", "amd_message", NULL};

static int one_of(const char *v, const char *const *choices)
{
    for (; *choices; choices++)
        if (strcmp(v, *choices) == 0)
            return 1;
    return 0;
}

/* Validates the body into p; 0, or answered 400 naming the field and -1. */
static int parse_body(http_req_t *r, json_t *o, parsed_t *p)
{
    const config_t *cfg = &r->w->app->cfg;
    store_tenant_input_t *in = &p->in;
    in->max_concurrent_calls = -1;
    static const char *const known[] = {"name",
                                        "greeting",
                                        "ai_provider",
                                        "ai_voice",
                                        "ai_instructions",
                                        "inbound_mode",
                                        "primary_target",
                                        "secondary_target",
                                        "voicemail_target",
                                        "caller_id_policy",
                                        "max_concurrent_calls",
                                        "amd_action",
                                        "amd_message",
                                        "agent_instructions",
                                        "numbers",
                                        "platform",
                                        NULL};
    const char *key;
    json_t *v;
    char field[64];
    json_object_foreach(o, key, v)
    {
        snprintf(field, sizeof(field), "%.*s", (int)form_utf8_prefix(key, strlen(key), sizeof(field) - 1), key);
        if (!one_of(key, known)) {
            http_send_error(r, 400, "invalid_field", "unknown field", field);
            return -1;
        }
        if (json_is_null(v))
            continue;
        if (strcmp(key, "max_concurrent_calls") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100000) {
                http_send_error(r, 400, "invalid_field", "a whole number from 0 (no limit) to 100000", field);
                return -1;
            }
            in->max_concurrent_calls = (long)json_integer_value(v);
        } else if (strcmp(key, "numbers") == 0 || strcmp(key, "agent_instructions") == 0) {
            continue; /* below */
        } else if (!json_is_string(v) || json_string_length(v) > (strcmp(key, "ai_instructions") == 0 ? 8000 : 500)) {
            http_send_error(r, 400, "invalid_field", "must be a string (at most 500 characters; 8000 for instructions)",
                            field);
            return -1;
        }
    }
#define STR(k) (json_is_string(json_object_get(o, k)) ? json_string_value(json_object_get(o, k)) : NULL)
    in->name = STR("name");
    if (in->name == NULL || in->name[0] == '\0') {
        http_send_error(r, 400, "invalid_field", "required", "name");
        return -1;
    }
    for (int i = 0; string_fields[i]; i++)
        (void)STR(string_fields[i]);
    in->greeting = STR("greeting");
    in->ai_voice = STR("ai_voice");
    in->ai_instructions = STR("ai_instructions");
    in->amd_message = STR("amd_message");
    static const char *const providers[] = {"openai", "elevenlabs", "echo", "none", NULL};
    static const char *const modes[] = {"ai", "transfer", "elevenlabs_forward", NULL};
    static const char *const policies[] = {"original", "business", NULL};
    static const char *const amd[] = {"hangup", "message", NULL};
    struct {
        const char *name;
        const char *const *choices;
        const char **dst;
    } enums[] = {{"ai_provider", providers, &in->ai_provider},
                 {"inbound_mode", modes, &in->inbound_mode},
                 {"caller_id_policy", policies, &in->caller_id_policy},
                 {"amd_action", amd, &in->amd_action}};
    for (size_t i = 0; i < sizeof(enums) / sizeof(enums[0]); i++) {
        const char *val = STR(enums[i].name);
        if (val != NULL && !one_of(val, enums[i].choices)) {
            char msg[128] = "must be one of:";
            for (const char *const *c = enums[i].choices; *c; c++)
                strncat(msg, " ", sizeof(msg) - strlen(msg) - 1), strncat(msg, *c, sizeof(msg) - strlen(msg) - 1);
            http_send_error(r, 400, "invalid_field", msg, enums[i].name);
            return -1;
        }
        *enums[i].dst = val;
    }
    /* "" follows DEFAULT_PLATFORM; jambonz is not served yet */
    static const char *const platforms[] = {"", "twilio", "asterisk", NULL};
    in->platform = STR("platform");
    if (in->platform != NULL && !one_of(in->platform, platforms)) {
        http_send_error(r, 400, "invalid_field", "must be \"\" (the DEFAULT_PLATFORM setting), twilio or asterisk",
                        "platform");
        return -1;
    }
    if (in->amd_action != NULL && strcmp(in->amd_action, "message") == 0 &&
        (in->amd_message == NULL || in->amd_message[0] == '\0')) {
        http_send_error(r, 400, "invalid_field", "required when amd_action is message", "amd_message");
        return -1;
    }
    const char *tnames[3] = {"primary_target", "secondary_target", "voicemail_target"};
    const char **tdst[3] = {&in->primary_target, &in->secondary_target, &in->voicemail_target};
    for (int i = 0; i < 3; i++) {
        const char *val = STR(tnames[i]);
        if (val == NULL)
            continue;
        target_t t;
        const char *why;
        if (target_parse(val, cfg->default_country_code, &t, &why) != 0) {
            http_send_error(r, 400, "invalid_target", why, tnames[i]);
            return -1;
        }
        snprintf(p->targets[i], sizeof(p->targets[i]), "%s", t.value);
        *tdst[i] = p->targets[i];
    }
#undef STR
    json_t *ai = json_object_get(o, "agent_instructions");
    if (ai != NULL && !json_is_null(ai)) {
        const char *k;
        json_t *val;
        int ok = json_is_object(ai) && json_object_size(ai) <= 32;
        json_object_foreach(ai, k, val) ok &= json_is_string(val) && json_string_length(val) <= 8000 && strlen(k) <= 32;
        if (!ok) {
            http_send_error(r, 400, "invalid_field", "an object of at most 32 agent types to instruction strings",
                            "agent_instructions");
            return -1;
        }
        p->agent_instructions = json_dumps(ai, JSON_COMPACT);
        in->agent_instructions = p->agent_instructions;
    }
    json_t *nums = json_object_get(o, "numbers");
    if (nums != NULL && !json_is_null(nums)) {
        if (!json_is_array(nums) || json_array_size(nums) > MAX_NUMBERS) {
            http_send_error(r, 400, "invalid_field", "a list of at most 64 E.164 numbers", "numbers");
            return -1;
        }
        size_t i;
        json_t *n;
        json_array_foreach(nums, i, n)
        {
            const char *why = "must be a string";
            if (!json_is_string(n) ||
                e164_normalize(json_string_value(n), cfg->default_country_code, p->numbers[i], E164_BUFSZ, &why) != 0) {
                http_send_error(r, 400, "invalid_number", why, "numbers");
                return -1;
            }
            for (size_t j = 0; j < i; j++)
                if (strcmp(p->numbers[j], p->numbers[i]) == 0) {
                    http_send_error(r, 400, "invalid_number", "listed twice", "numbers");
                    return -1;
                }
            p->number_ptrs[i] = p->numbers[i];
        }
        in->numbers = p->number_ptrs;
        in->nnumbers = json_array_size(nums);
    }
    return 0;
}

static void save(http_req_t *r, long id)
{
    json_t *o = json_loadb(r->req->entity.base, r->req->entity.len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o)) {
        http_send_error(r, 400, "invalid_json", "the body must be a JSON object", NULL);
        json_decref(o);
        return;
    }
    parsed_t *p = calloc(1, sizeof(*p));
    if (p == NULL || parse_body(r, o, p) != 0)
        goto out;
    long out_id = 0;
    char conflict[E164_BUFSZ] = "";
    int rc = store_tenant_save(r->w->store, id, &p->in, &out_id, conflict, sizeof(conflict));
    if (rc == 1) {
        http_send_error(r, 404, "not_found", "no such tenant", NULL);
    } else if (rc == 2) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s belongs to another tenant", conflict);
        http_send_error(r, 409, "number_taken", msg, "numbers");
    } else if (rc < 0) {
        log_error("db.error", "rid=%s op=tenant_save error=\"%s\"", r->rid, store_errmsg(r->w->store));
        http_send_error(r, 503, "db_unavailable", "the tenant could not be saved", NULL);
    } else {
        json_t *t;
        if (store_tenant_detail(r->w->store, out_id, &t) != 0)
            http_send_error(r, 503, "db_unavailable", "the tenant could not be read back", NULL);
        else
            http_send_json(r, id == 0 ? 201 : 200, t);
        log_info("tenant.saved", "rid=%s tenant=%ld by=%s", r->rid, out_id, r->sub);
    }
out:
    if (p != NULL)
        free(p->agent_instructions);
    free(p);
    json_decref(o);
}

void api_tenants_create(http_req_t *r)
{
    if (!operator(r)) {
        http_send_error(r, 403, "forbidden", "only an admin of the default tenant creates tenants", NULL);
        return;
    }
    save(r, 0);
}

void api_tenants_update(http_req_t *r)
{
    long id;
    if (tenant_param(r, &id) == 0)
        save(r, id);
}
