#include "server/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 2048        /* a line, its newline included, is at most LINE_MAX_LEN - 1 bytes */
#define BUF_SIZE     (32 * 1024) /* a buffered thread's lines between flushes */

/* Written once by log_init() before threads start; read-only afterwards. */
static log_level_t min_level = LOG_INFO;
/* Largest write(): PIPE_BUF keeps a pipe's writes whole against other writers. */
static size_t write_max = PIPE_BUF;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The calling thread's buffer; buf is NULL for an unbuffered thread. */
static _Thread_local struct {
    char *buf;
    size_t len;
} tbuf;

/* "ts=YYYY-MM-DDTHH:MM:SS." for the second last formatted on this thread. */
static _Thread_local struct {
    time_t sec;
    size_t len;
    char text[48];
} ts_cache = {(time_t)-1, 0, {0}};

int log_level_parse(const char *s, log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

void log_init(log_level_t level)
{
    struct stat st;
    min_level = level;
    /* a file takes a whole buffer in one write(); only pipes and sockets need PIPE_BUF pieces */
    if (fstat(STDERR_FILENO, &st) == 0 && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
        write_max = BUF_SIZE;
}

int log_enabled(log_level_t level)
{
    return level >= min_level;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report it: the lines are dropped */
        p += w;
        n -= (size_t)w;
    }
}

/* Whole lines, at most write_max bytes per write(). */
static void write_lines(const char *p, size_t n)
{
    while (n > 0) {
        size_t k = n;
        if (k > write_max) {
            k = write_max;
            while (k > 0 && p[k - 1] != '\n') /* a line is shorter than write_max: one ends here */
                k--;
            if (k == 0)
                k = write_max;
        }
        write_all(p, k);
        p += k;
        n -= k;
    }
}

int log_thread_begin(void)
{
    if (tbuf.buf == NULL && (tbuf.buf = malloc(BUF_SIZE)) == NULL)
        return -1;
    return 0;
}

void log_flush(void)
{
    if (tbuf.len == 0)
        return;
    write_lines(tbuf.buf, tbuf.len);
    tbuf.len = 0;
}

void log_thread_end(void)
{
    log_flush();
    free(tbuf.buf);
    tbuf.buf = NULL;
}

/* Appends n bytes of s at *at, cut off at LINE_MAX_LEN - 1 bytes as snprintf would. */
static void append(char *line, size_t *at, const char *s, size_t n)
{
    size_t room = LINE_MAX_LEN - 1 - *at;
    if (n > room)
        n = room;
    memcpy(line + *at, s, n);
    *at += n;
}

/* "ts=...Z level=L event=E": the date is formatted once a second (snprintf was a visible cost). */
static size_t format_head(char *line, log_level_t level, const char *event)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != ts_cache.sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int n = snprintf(ts_cache.text, sizeof(ts_cache.text), "ts=%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        ts_cache.len = n > 0 && (size_t)n < sizeof(ts_cache.text) ? (size_t)n : 0;
        ts_cache.sec = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000;
    char frac[3] = {(char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10)};
    size_t at = 0;
    append(line, &at, ts_cache.text, ts_cache.len);
    append(line, &at, frac, sizeof(frac));
    append(line, &at, "Z level=", 8);
    append(line, &at, level_names[level], strlen(level_names[level]));
    append(line, &at, " event=", 7);
    append(line, &at, event, strlen(event));
    return at;
}

/* One line with its newline into line (LINE_MAX_LEN bytes); returns its length. */
static size_t format_line(char *line, log_level_t level, const char *event, const char *fmt, va_list ap)
{
    size_t n = format_head(line, level, event);
    if (fmt != NULL && fmt[0] != '\0' && n < LINE_MAX_LEN - 2) {
        line[n++] = ' ';
        int m = vsnprintf(line + n, LINE_MAX_LEN - n, fmt, ap);
        if (m > 0)
            n += (size_t)m;
    }
    if (n >= LINE_MAX_LEN - 1)
        n = LINE_MAX_LEN - 2;
    line[n++] = '\n';
    return n;
}

void log_emit(log_level_t level, const char *event, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char stack[LINE_MAX_LEN];
    char *line = stack;
    if (tbuf.buf != NULL) {
        if (BUF_SIZE - tbuf.len < LINE_MAX_LEN)
            log_flush();
        line = tbuf.buf + tbuf.len; /* formatted in place: no copy */
    }
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(line, level, event, fmt, ap);
    va_end(ap);
    if (tbuf.buf == NULL) {
        write_all(line, n); /* one write() per line keeps lines from different threads whole */
        return;
    }
    tbuf.len += n;
    if (level >= LOG_WARN)
        log_flush();
}

char *log_quote(char *buf, size_t bufsz, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (s == NULL)
        s = "";
    if (len == (size_t)-1)
        len = strlen(s);
    size_t o = 0, limit = bufsz - 5; /* room for "...", closing quote and NUL */
    buf[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[4];
        size_t tl = 0;
        if (c == '"' || c == '\\') {
            tmp[tl++] = '\\';
            tmp[tl++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            tmp[tl++] = '\\';
            tmp[tl++] = 'x';
            tmp[tl++] = hex[c >> 4];
            tmp[tl++] = hex[c & 15];
        } else {
            tmp[tl++] = (char)c;
        }
        if (o + tl > limit) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, tmp, tl);
        o += tl;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
