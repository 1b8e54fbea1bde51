/*
 * ws: server-side WebSockets for the worker: h2o's HTTP/1.1 upgrade, then our own framing on
 * its socket (server/wsframe.h). Messages from the peer arrive whole through the handler, an
 * unfragmented one unmasked where it lies in the read buffer (valid during the call only);
 * a frame announcing more than max_msg bytes (1009, at once, nothing buffered), binary frames
 * without on_binary (1003) and protocol errors (1002) end the connection with that status code
 * after telling the handler why. Outgoing messages are queued (bounded) and flushed once per
 * loop iteration by ws_flush() (the worker calls it); their frames are gathered into one
 * buffer, so a burst of sends (an audio frame and its mark) costs one write.
 *
 * Lifetime: the connection belongs to the worker; the handler's on_closed is the last call
 * for it, after which the ws_conn_t is gone. Never use a ws_conn_t after on_closed.
 */
#ifndef SB_WS_H
#define SB_WS_H

#include <stddef.h>

#include "server/http.h"

struct worker;
typedef struct ws_conn ws_conn_t;

typedef struct ws_handler {
    void (*on_text)(void *data, const char *msg, size_t len);
    /* binary frame without on_binary (1003), too big (1009), bad frames (1002): the connection is closing */
    void (*on_error)(void *data, const char *what, int code);
    void (*on_closed)(void *data);
    /* NULL: binary frames are refused (1003) */
    void (*on_binary)(void *data, const unsigned char *msg, size_t len);
} ws_handler_t;

/* Upgrades an HTTP/1.1 request. Returns NULL after answering 400 (not a WebSocket handshake,
 * or HTTP/2) itself. */
ws_conn_t *ws_upgrade(http_req_t *r, size_t max_msg, const ws_handler_t *h, void *data);
/* As ws_upgrade, answering Sec-WebSocket-Protocol: subprotocol (one the client offered, chosen
 * by the caller; a static string). */
ws_conn_t *ws_upgrade_protocol(http_req_t *r, size_t max_msg, const char *subprotocol, const ws_handler_t *h,
                               void *data);
/* Is `name` among the subprotocols the client offered (Sec-WebSocket-Protocol, comma-separated)? */
int ws_offered_protocol(http_req_t *r, const char *name);
/* Queues a text message. 0, or -1 when the queue is full (the message is dropped). */
int ws_send_text(ws_conn_t *c, const char *msg, size_t len);
/* Queues a binary message (copied). 0, or -1 when the queue is full. */
int ws_send_binary(ws_conn_t *c, const void *msg, size_t len);
/* Queues a close frame; on_closed follows once the socket is done. */
void ws_close(ws_conn_t *c, int code, const char *reason);
/* Writes what the worker's connections queued. */
void ws_flush(struct worker *w);
/* Going away (1001) for every connection of the worker: at shutdown. */
void ws_close_all(struct worker *w);

#define WS_QUEUE_MAX 512 /* queued outgoing messages per connection (about 10 s of audio) */

#endif
