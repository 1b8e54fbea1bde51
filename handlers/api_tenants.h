/* api_tenants: tenant settings for admins. An admin of the default tenant (the operator)
 * manages every tenant; any other admin only its own, and cannot create tenants. */
#ifndef SB_HANDLERS_API_TENANTS_H
#define SB_HANDLERS_API_TENANTS_H

#include "server/http.h"

void api_tenants_list(http_req_t *r);
void api_tenants_get(http_req_t *r);
void api_tenants_create(http_req_t *r);
void api_tenants_update(http_req_t *r);

#endif
