/*
 * curlm: a libcurl multi handle driven by a libuv loop (uv_poll per socket, one uv_timer),
 * so HTTP client requests never block the worker.
 *
 * curlm_add() takes an easy handle the caller configured; when the transfer ends, done()
 * runs on the loop with the result, after the handle was removed from the multi: the
 * callback owns the easy handle from then on (curl_easy_cleanup it or reuse it).
 * curlm_cancel() removes a running transfer without calling done().
 * curlm_close() cancels nothing: remove your transfers first. It frees the curlm_t once its
 * uv handles have closed, so keep running the loop after it.
 */
#ifndef SB_CURLM_H
#define SB_CURLM_H

#include <curl/curl.h>
#include <uv.h>

typedef struct curlm curlm_t;
typedef void (*curlm_done_cb)(CURL *easy, CURLcode result, void *data);

curlm_t *curlm_new(uv_loop_t *loop);
int curlm_add(curlm_t *m, CURL *easy, curlm_done_cb done, void *data);
void curlm_cancel(curlm_t *m, CURL *easy);
int curlm_running(const curlm_t *m);
void curlm_close(curlm_t *m);

#endif
