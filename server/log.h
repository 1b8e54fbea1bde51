/*
 * log: one line per event on stderr, logfmt style:
 *   ts=2026-11-22T10:00:00.123Z level=info event=http.request rid=... key=value ...
 * The caller passes the event name and a printf format for the key=value tail;
 * values that may hold spaces or quotes go through log_quote first.
 * The level is set once by log_init() before any thread starts and is read-only after.
 *
 * A thread that called log_thread_begin() (a worker) collects its lines in its own buffer and
 * writes them out with one write() of whole lines at log_flush(), when the buffer is nearly
 * full, at log_thread_end(), and at once for a warn or error line (with what came before it,
 * keeping the thread's order). Other threads write each line at once. Lines of two threads
 * never interleave mid-line: each write() holds whole lines, at most PIPE_BUF bytes when stderr
 * is a pipe or socket.
 */
#ifndef SB_LOG_H
#define SB_LOG_H

#include <stddef.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int log_level_parse(const char *s, log_level_t *out);
void log_init(log_level_t level);
int log_enabled(log_level_t level);

/* Buffers the calling thread's lines from now on (the buffer is the thread's own, on the
 * heap); 0, or -1 out of memory (the thread then stays unbuffered). */
int log_thread_begin(void);
/* Writes the calling thread's buffered lines; nothing for an unbuffered thread. */
void log_flush(void);
/* Flushes and frees the calling thread's buffer; call it before the thread ends. */
void log_thread_end(void);

void log_emit(log_level_t level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(ev, ...) (log_enabled(LOG_DEBUG) ? log_emit(LOG_DEBUG, ev, __VA_ARGS__) : (void)0)
#define log_info(ev, ...)  log_emit(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_emit(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_emit(LOG_ERROR, ev, __VA_ARGS__)

/*
 * Writes s (len bytes, or strlen when len is (size_t)-1) into buf as a quoted logfmt value,
 * escaping quotes, backslashes and control bytes, truncating with "..." when it does not fit.
 * Returns buf, always NUL-terminated. bufsz must be at least 8.
 */
char *log_quote(char *buf, size_t bufsz, const char *s, size_t len);

#endif
