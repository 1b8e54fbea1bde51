/* jambonz_listen: GET /jambonz/listen, the WebSocket jambonz's listen verb streams a call's
 * audio to (subprotocol audio.jambonz.org or audio.drachtio.org). The first text frame (the
 * metadata) ties it to a session: the AI conversation through the bridge, or a voicemail
 * being recorded. L16 little-endian in and out, mu-law 8 kHz inside. */
#ifndef SB_HANDLERS_JAMBONZ_LISTEN_H
#define SB_HANDLERS_JAMBONZ_LISTEN_H

#include "server/http.h"

#define JAMBONZ_LISTEN_MAX_MSG (64 * 1024) /* a binary frame: 2 s of 16 kHz L16 */

void jambonz_listen_upgrade(http_req_t *r);

#endif
