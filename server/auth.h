/*
 * auth: the application API's bearer tokens. Routes that need one name the least role;
 * auth_check() answers 401 (with WWW-Authenticate: Bearer) for a missing or bad token and
 * 403 for a role too low, and otherwise fills the request's tenant, role and subject.
 */
#ifndef SB_AUTH_H
#define SB_AUTH_H

#include "server/config.h"
#include "server/http.h"

typedef enum { AUTH_NONE = 0, AUTH_AGENT = 1, AUTH_ADMIN = 2 } auth_need_t;

/* 0: allowed, claims set. -1: already answered. */
int auth_check(http_req_t *r, auth_need_t need);

/* JWT_SECRET, or (unset) the secret generated once into the data folder, into cfg->jwt_secret. */
int auth_ensure_secret(config_t *cfg, char *err, size_t errsz);

#endif
