#include "server/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Written once by log_init() before threads start; read-only afterwards. */
static log_level_t min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

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
    min_level = level;
}

int log_enabled(log_level_t level)
{
    return level >= min_level;
}

void log_emit(log_level_t level, const char *event, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     level_names[level], event);
    if (fmt != NULL && fmt[0] != '\0' && n > 0 && (size_t)n < sizeof(line) - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* one fwrite per line keeps lines from different threads whole */
    fwrite(line, 1, (size_t)n, stderr);
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
