/* jambonz_call: the jambonz application's webhooks (DESIGN "Platforms -> jambonz").
 *   POST /jambonz/call      the call hook: a new inbound call (tenant by `to`), or ?session=
 *                           for an outbound call we placed through the REST API
 *   POST /jambonz/status    the call status hook: the same state machine as Twilio's
 *   POST /jambonz/action    actionHooks: ?session=&step=listen|dial|voicemail|live|forward[&attempt=N]
 */
#ifndef SB_HANDLERS_JAMBONZ_CALL_H
#define SB_HANDLERS_JAMBONZ_CALL_H

#include "server/http.h"

void jambonz_call(http_req_t *r);
void jambonz_status(http_req_t *r);
void jambonz_action(http_req_t *r);

#endif
