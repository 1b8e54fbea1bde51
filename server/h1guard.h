/*
 * h1guard: HTTP/1 framing checks that Debian's h2o (2.2.5) does not make.
 *
 * h2o 2.2.5 takes the first of two Content-Length headers, lets Transfer-Encoding win over
 * Content-Length, and waits for the bytes of a chunk announced as 2^64-1 long. Behind a proxy
 * that reads the framing otherwise, the first two are request smuggling; the third holds a
 * connection until the request timeout.
 *
 * libh2o calls its bundled picohttpparser through the PLT, so this module defines
 * phr_parse_request and phr_decode_chunked itself: each calls libh2o's own (found with
 * dlsym(RTLD_NEXT)) and then refuses what is ambiguous or too large in a way h2o already
 * answers with a 400 through h2o_send_error_generic, which server/http.c renders as ours
 * (JSON or the platform's apology, X-Request-Id, one access-log line) and after which h2o
 * closes the connection:
 *   - Transfer-Encoding with Content-Length, or Transfer-Encoding twice: every
 *     Transfer-Encoding value is blanked ("unknown transfer-encoding");
 *   - Content-Length twice: the first is blanked ("broken content-length header");
 *   - a chunk announced longer than the body limit: the decoder reports an error as soon as
 *     the size is read ("broken chunked-encoding"), before any of its bytes.
 * The structures are picohttpparser's as bundled with h2o 2.2.5; CMakeLists.txt requires
 * that libh2o version. tests/integration/http_edges.test.mjs shows each case on the wire.
 */
#ifndef SB_H1GUARD_H
#define SB_H1GUARD_H

#include <stddef.h>

/* Sets the largest chunk accepted (MAX_REQUEST_BODY) and finds libh2o's parser functions.
 * Call once before any worker starts; 0, or -1 (with errbuf set) when libh2o's functions are
 * not found, i.e. this binary's definitions are not in front of libh2o's. */
int h1guard_init(size_t max_chunk, char *errbuf, size_t errlen);

#endif
