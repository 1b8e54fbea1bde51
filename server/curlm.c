#include "server/curlm.h"

#include <stdlib.h>

struct curlm {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int running;
};

typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
    curlm_t *m;
} sock_t;

typedef struct {
    curlm_done_cb done;
    void *data;
} xfer_t;

static void drain_done(curlm_t *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        xfer_t *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(m->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        if (x != NULL) {
            xfer_t copy = *x;
            free(x);
            copy.done(easy, result, copy.data);
        }
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_t *s = p->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curlm_t *m = s->m;
    curl_multi_socket_action(m->multi, s->fd, flags, &m->running);
    drain_done(m);
}

static void on_timeout(uv_timer_t *t)
{
    curlm_t *m = t->data;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &m->running);
    drain_done(m);
}

static void free_sock(uv_handle_t *h)
{
    free(h->data);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    curlm_t *m = userp;
    sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, free_sock);
            curl_multi_assign(m->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return -1;
        if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->m = m;
        s->poll.data = s;
        curl_multi_assign(m->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    curlm_t *m = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&m->timer);
    else /* never act from inside curl's callback: let the loop call back, even for 0 */
        uv_timer_start(&m->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

curlm_t *curlm_new(uv_loop_t *loop)
{
    curlm_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->loop = loop;
    m->multi = curl_multi_init();
    if (m->multi == NULL) {
        free(m);
        return NULL;
    }
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return m;
}

int curlm_add(curlm_t *m, CURL *easy, curlm_done_cb done, void *data)
{
    xfer_t *x = malloc(sizeof(*x));
    if (x == NULL)
        return -1;
    x->done = done;
    x->data = data;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
    if (curl_multi_add_handle(m->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -1;
    }
    return 0;
}

void curlm_cancel(curlm_t *m, CURL *easy)
{
    xfer_t *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(m->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(x);
}

int curlm_running(const curlm_t *m)
{
    return m->running;
}

static void free_curlm(uv_handle_t *h)
{
    free(h->data);
}

void curlm_close(curlm_t *m)
{
    if (m == NULL)
        return;
    curl_multi_cleanup(m->multi); /* fires CURL_POLL_REMOVE for sockets still open */
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, free_curlm);
}
