#include "server/auth.h"
#include "server/jwt.h"
#include "server/log.h"
#include "server/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void unauthorized(http_req_t *r, const char *why, int had_token)
{
    char hdr[160];
    snprintf(hdr, sizeof(hdr), "Bearer realm=\"switchboard\"%s", had_token ? ", error=\"invalid_token\"" : "");
    http_add_header(r, "www-authenticate", hdr);
    http_send_error(r, 401, "unauthorized", why, NULL);
}

int auth_check(http_req_t *r, auth_need_t need)
{
    const config_t *cfg = &r->w->app->cfg;
    h2o_iovec_t h = http_header(r, "authorization");
    if (h.len < 7 || strncasecmp(h.base, "bearer ", 7) != 0) {
        unauthorized(r, "an Authorization: Bearer token is required", 0);
        return -1;
    }
    const char *tok = h.base + 7;
    size_t len = h.len - 7;
    while (len > 0 && *tok == ' ')
        tok++, len--;
    jwt_settings_t s = {cfg->jwt_secret, cfg->jwt_issuer, cfg->jwt_audience, JWT_DEFAULT_LEEWAY};
    jwt_claims_t c;
    const char *why = NULL;
    if (jwt_verify(&s, tok, len, (long)time(NULL), &c, &why) != 0) {
        log_info("auth.refused", "rid=%s why=\"%s\"", r->rid, why);
        unauthorized(r, why, 1);
        return -1;
    }
    r->tenant_id = c.tenant_id;
    r->role = (int)c.role;
    r->exp = c.exp;
    snprintf(r->sub, sizeof(r->sub), "%s", c.sub);
    if (need == AUTH_ADMIN && c.role != JWT_ROLE_ADMIN) {
        http_send_error(r, 403, "forbidden", "this needs the admin role", NULL);
        return -1;
    }
    return 0;
}

int auth_ensure_secret(config_t *cfg, char *err, size_t errsz)
{
    if (cfg->jwt_secret != NULL)
        return 0;
    char path[4096], buf[128];
    snprintf(path, sizeof(path), "%s/jwt-secret", cfg->data_dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        buf[n] = '\0';
        if (n < 32) {
            snprintf(err, errsz, "JWT_SECRET unset and %s is too short (32 characters or more)", path);
            return -1;
        }
        cfg->jwt_secret = strdup(buf);
        return 0;
    }
    unsigned char raw[32];
    static const char hex[] = "0123456789abcdef";
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        snprintf(err, errsz, "JWT_SECRET unset and no random bytes to generate one");
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 15];
    }
    buf[64] = '\0';
    /* O_EXCL: two processes starting at once must not write two different secrets */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return auth_ensure_secret(cfg, err, errsz);
        snprintf(err, errsz, "JWT_SECRET unset and cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    buf[64] = '\n';
    int ok = write(fd, buf, 65) == 65;
    close(fd);
    buf[64] = '\0';
    if (!ok) {
        snprintf(err, errsz, "JWT_SECRET unset and cannot write %s", path);
        unlink(path);
        return -1;
    }
    cfg->jwt_secret = strdup(buf);
    log_info("auth.secret_generated", "path=\"%s\" msg=\"JWT_SECRET unset: tokens are signed with this file's secret\"",
             path);
    return 0;
}
