#define _GNU_SOURCE
#include "server/h1guard.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>
#include <sys/types.h>

/* picohttpparser's public structures, as bundled with h2o 2.2.5 (its header is not installed) */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};

enum { IN_CHUNK_SIZE, IN_CHUNK_EXT, IN_CHUNK_DATA }; /* the decoder's first states */

typedef int (*parse_request_fn)(const char *, size_t, const char **, size_t *, const char **, size_t *, int *,
                                struct phr_header *, size_t *, size_t);
typedef ssize_t (*decode_chunked_fn)(struct phr_chunked_decoder *, char *, size_t *);

/* Written once (pthread_once, or before the workers start) and only read after. */
static parse_request_fn real_parse_request;
static decode_chunked_fn real_decode_chunked;
static size_t max_chunk = (size_t)-1;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static void resolve(void)
{
    real_parse_request = (parse_request_fn)dlsym(RTLD_NEXT, "phr_parse_request");
    real_decode_chunked = (decode_chunked_fn)dlsym(RTLD_NEXT, "phr_decode_chunked");
}

int h1guard_init(size_t limit, char *errbuf, size_t errlen)
{
    pthread_once(&resolve_once, resolve);
    if (real_parse_request == NULL || real_decode_chunked == NULL) {
        snprintf(errbuf, errlen, "libh2o's phr_parse_request/phr_decode_chunked not found behind this binary");
        return -1;
    }
    max_chunk = limit;
    return 0;
}

static int named(const struct phr_header *h, const char *name, size_t len)
{
    return h->name != NULL && h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len)
{
    pthread_once(&resolve_once, resolve);
    int rc =
        real_parse_request(buf, len, method, method_len, path, path_len, minor_version, headers, num_headers, last_len);
    if (rc <= 0)
        return rc;
    size_t n = *num_headers, cl = 0, te = 0, first_cl = 0;
    for (size_t i = 0; i < n; i++) {
        if (named(&headers[i], "content-length", 14)) {
            if (cl++ == 0)
                first_cl = i;
        } else if (named(&headers[i], "transfer-encoding", 17)) {
            te++;
        }
    }
    if (te > 1 || (te > 0 && cl > 0)) {
        for (size_t i = 0; i < n; i++)
            if (named(&headers[i], "transfer-encoding", 17))
                headers[i].value_len = 0; /* h2o: 400 unknown transfer-encoding */
    } else if (cl > 1) {
        headers[first_cl].value_len = 0; /* h2o takes the first: 400 broken content-length header */
    }
    return rc;
}

ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz)
{
    pthread_once(&resolve_once, resolve);
    ssize_t rc = real_decode_chunked(decoder, buf, bufsz);
    /* The size only grows while its digits arrive and only shrinks while its bytes do: refuse
     * as soon as it passes the limit, not when the bytes have come (h2o's own check). */
    if (rc == -2 && decoder->_state <= IN_CHUNK_DATA && decoder->bytes_left_in_chunk > max_chunk)
        return -1;
    return rc;
}
