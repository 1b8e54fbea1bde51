/* switchboard-sim load: the parts that do no I/O on the loop; see load.h */
#define _GNU_SOURCE /* memmem */
#include "tools/sim/load.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- histogram ---- */

static size_t hist_bucket(int64_t us)
{
    if (us < HIST_MIN_US)
        us = HIST_MIN_US;
    int64_t off = us - HIST_MIN_US;
    if (off < (int64_t)HIST_FINE_N * HIST_FINE_US)
        return (size_t)(off / HIST_FINE_US);
    int64_t coarse = (off - (int64_t)HIST_FINE_N * HIST_FINE_US) / 1000;
    return coarse < HIST_COARSE_N ? HIST_FINE_N + (size_t)coarse : HIST_N - 1;
}

/* the middle of a bucket, so a quantile is off by half a step at most */
static int64_t hist_value(size_t i)
{
    if (i < HIST_FINE_N)
        return HIST_MIN_US + (int64_t)i * HIST_FINE_US + HIST_FINE_US / 2;
    return HIST_MIN_US + (int64_t)HIST_FINE_N * HIST_FINE_US + (int64_t)(i - HIST_FINE_N) * 1000 + 500;
}

void hist_add(hist_t *h, int64_t us)
{
    h->b[hist_bucket(us)]++;
    if (h->n == 0 || us < h->min)
        h->min = us;
    if (h->n == 0 || us > h->max)
        h->max = us;
    h->n++;
}

int64_t hist_quantile(const hist_t *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.5), seen = 0;
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < HIST_N; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            int64_t v = hist_value(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* xorshift64*: masks, keys and sids need to differ, not to be secret */
uint64_t prng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- base64, form encoding, signatures ---- */

size_t b64_encode(const void *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int b64_digit(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int b64_decode12(const char *in, unsigned char out[9])
{
    for (int g = 0; g < 3; g++) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++) {
            int d = b64_digit(in[g * 4 + i]);
            if (d < 0)
                return -1;
            v = v << 6 | (uint32_t)d;
        }
        out[g * 3] = (unsigned char)(v >> 16);
        out[g * 3 + 1] = (unsigned char)(v >> 8);
        out[g * 3 + 2] = (unsigned char)v;
    }
    return 0;
}

int form_escape(const char *s, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (o + 4 > outsz)
            return -1;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-_.*", c)) {
            out[o++] = (char)c;
        } else if (c == ' ') {
            out[o++] = '+';
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

void twilio_signature(const char *token, const char *url, const char *const *pairs, size_t npairs, char *out)
{
    char data[4096];
    size_t n = (size_t)snprintf(data, sizeof(data), "%s", url);
    for (size_t i = 0; i < npairs * 2 && n < sizeof(data); i++)
        n += (size_t)snprintf(data + n, sizeof(data) - n, "%s", pairs[i]);
    if (n >= sizeof(data))
        n = sizeof(data) - 1;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha1(), token, (int)strlen(token), (const unsigned char *)data, n, mac, &maclen);
    b64_encode(mac, maclen, out);
}

void ws_accept_for(const char *key, char *out)
{
    char buf[128];
    int n = snprintf(buf, sizeof(buf), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)buf, (size_t)n, md);
    b64_encode(md, sizeof(md), out);
}

/* ---- WebSocket framing (RFC 6455 §5.2): client frames masked, server frames not ---- */

size_t ws_client_frame(unsigned char *dst, int opcode, const void *payload, size_t len, uint32_t mask)
{
    size_t h = 0;
    dst[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        dst[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        dst[h++] = 0x80 | 126;
        dst[h++] = (unsigned char)(len >> 8);
        dst[h++] = (unsigned char)len;
    } else {
        dst[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            dst[h++] = (unsigned char)((uint64_t)len >> (i * 8));
    }
    unsigned char m[4] = {(unsigned char)(mask >> 24), (unsigned char)(mask >> 16), (unsigned char)(mask >> 8),
                          (unsigned char)mask};
    memcpy(dst + h, m, 4);
    h += 4;
    /* eight bytes at a time: this runs for every frame sent */
    uint64_t m8;
    memcpy(&m8, m, 4);
    memcpy((unsigned char *)&m8 + 4, m, 4);
    const unsigned char *p = payload;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= m8;
        memcpy(dst + h + i, &w, 8);
    }
    for (; i < len; i++)
        dst[h + i] = p[i] ^ m[i & 3];
    return h + len;
}

int ws_parse(const unsigned char *buf, size_t avail, ws_frame_t *f)
{
    int r = ws_parse_head(buf, avail, f);
    return r <= 0 ? r : avail >= f->head + f->len ? 1 : 0;
}

int ws_parse_head(const unsigned char *buf, size_t avail, ws_frame_t *f)
{
    if (avail < 2)
        return 0;
    if ((buf[1] & 0x80) || (buf[0] & 0x70))
        return -1; /* a masked server frame, or extension bits we never negotiated */
    f->fin = buf[0] >> 7;
    f->opcode = buf[0] & 15;
    size_t len = buf[1] & 127, h = 2;
    if (len == 126) {
        if (avail < 4)
            return 0;
        len = (size_t)buf[2] << 8 | buf[3];
        h = 4;
    } else if (len == 127) {
        if (avail < 10)
            return 0;
        uint64_t l = 0;
        for (int i = 0; i < 8; i++)
            l = l << 8 | buf[2 + i];
        if (l > (1u << 30))
            return -1;
        len = (size_t)l;
        h = 10;
    }
    f->head = h;
    f->len = len;
    return 1;
}

static int selfcheck_fail(const char *what)
{
    fprintf(stderr, "load_selfcheck: %s\n", what);
    return -1;
}

int load_selfcheck(void)
{
    static const char doc[] = "{ \"event_id\":\"e\", \"session\":{\"type\":\"realtime\",\"x\":[1,\"}\"]},"
                              "\"type\" : \"session.update\", \"n\":3}";
    const char *v;
    size_t vl;
    if (json_top_string(doc, sizeof(doc) - 1, "type", &v, &vl) != 0 || vl != 14 ||
        memcmp(v, "session.update", 14) != 0 || json_top_string(doc, sizeof(doc) - 1, "n", &v, &vl) == 0 ||
        json_top_string(doc, sizeof(doc) - 1, "x", &v, &vl) == 0)
        return selfcheck_fail("json_top_string read the wrong member");
    return 0;
}

/* ---- HTTP/1.1 responses and TwiML ---- */

int http_head(const char *buf, size_t len, int *status, size_t *head_len, long *content_length)
{
    if (len >= 5 && memcmp(buf, "HTTP/", 5) != 0)
        return -1;
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    *head_len = (size_t)(end - buf) + 4;
    const char *sp = memchr(buf, ' ', *head_len);
    if (sp == NULL || sp + 4 > end)
        return -1;
    *status = atoi(sp + 1);
    char v[32];
    *content_length = http_header_value(buf, *head_len, "content-length", v, sizeof(v)) == 0 ? atol(v) : -1;
    return 1;
}

int http_header_value(const char *head, size_t head_len, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    const char *end = head + head_len;
    for (const char *l = memchr(head, '\n', head_len); l != NULL && l + 1 < end;
         l = memchr(l + 1, '\n', (size_t)(end - l - 1))) {
        const char *s = l + 1;
        if ((size_t)(end - s) <= nl || strncasecmp(s, name, nl) != 0 || s[nl] != ':')
            continue;
        s += nl + 1;
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
        const char *e = s;
        while (e < end && *e != '\r' && *e != '\n')
            e++;
        if ((size_t)(e - s) >= outsz)
            return -1;
        memcpy(out, s, (size_t)(e - s));
        out[e - s] = '\0';
        return 0;
    }
    return -1;
}

int text_after(const char *doc, size_t len, const char *after, char *out, size_t outsz)
{
    const char *s = memmem(doc, len, after, strlen(after));
    if (s == NULL)
        return -1;
    s += strlen(after);
    const char *e = memchr(s, '"', (size_t)(doc + len - s));
    if (e == NULL)
        return -1;
    size_t o = 0;
    while (s < e) {
        if (o + 1 >= outsz)
            return -1;
        if (e - s >= 5 && memcmp(s, "&amp;", 5) == 0) {
            out[o++] = '&';
            s += 5;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    return 0;
}

void twiml_params_json(const char *doc, size_t len, char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = '\0';
    for (const char *p = doc; (p = memmem(p, len - (size_t)(p - doc), "<Parameter ", 11)) != NULL; p += 11) {
        char name[64], value[128];
        const char *end = memchr(p, '>', len - (size_t)(p - doc));
        size_t el = end != NULL ? (size_t)(end - p) : 0;
        if (text_after(p, el, "name=\"", name, sizeof(name)) != 0 ||
            text_after(p, el, "value=\"", value, sizeof(value)) != 0 || strpbrk(name, "\"\\") != NULL ||
            strpbrk(value, "\"\\") != NULL)
            continue; /* nothing of ours needs JSON escapes: skip rather than escape */
        int n = snprintf(out + o, outsz - o, "%s\"%s\":\"%s\"", o ? "," : "", name, value);
        if (n < 0 || o + (size_t)n >= outsz)
            break;
        o += (size_t)n;
    }
}

/* ---- audio ---- */

/* G.711 mu-law (the classic Sun reference encoder) */
unsigned char mulaw_from_linear(int sample)
{
    const int bias = 0x84, clip = 32635;
    int sign = sample < 0 ? 0x80 : 0;
    if (sign)
        sample = -sample;
    if (sample > clip)
        sample = clip;
    sample += bias;
    int exp = 7;
    for (int m = 0x4000; exp > 0 && !(sample & m); m >>= 1)
        exp--;
    int mant = (sample >> (exp + 3)) & 15;
    return (unsigned char)~(sign | exp << 4 | mant);
}

int16_t mulaw_to_linear(unsigned char code)
{
    int u = (unsigned char)~code;
    int t = (((u & 15) << 3) + 0x84) << ((u & 0x70) >> 4);
    return (int16_t)(u & 0x80 ? 0x84 - t : t - 0x84);
}

/* ---- jambonz: the listen verb, the sequence markers ---- */

static const char *json_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* past the JSON value at p, or NULL when there is none (only as much checking as skipping it
 * needs: the server's answer is trusted to be JSON) */
static const char *json_skip(const char *p, const char *e)
{
    if (p >= e)
        return NULL;
    if (*p == '"') {
        for (p++; p < e; p++) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                return p + 1;
        }
        return NULL;
    }
    if (*p == '{' || *p == '[') {
        int depth = 0;
        for (; p < e; p++) {
            if (*p == '"') {
                if ((p = json_skip(p, e)) == NULL)
                    return NULL;
                p--;
            } else if (*p == '{' || *p == '[') {
                depth++;
            } else if ((*p == '}' || *p == ']') && --depth == 0) {
                return p + 1;
            }
        }
        return NULL;
    }
    const char *s = p;
    while (p < e && !strchr(",]} \t\r\n", *p))
        p++;
    return p > s ? p : NULL;
}

/* a JSON string's text (\/ and \" unescaped; other escapes refused) into out; 0 or -1 */
static int json_text(const char *v, const char *end, char *out, size_t outsz)
{
    size_t o = 0;
    if (v >= end || *v != '"')
        return -1;
    for (v++; v < end - 1; v++) {
        if (*v == '\\') {
            if (++v >= end - 1 || (*v != '/' && *v != '"' && *v != '\\'))
                return -1;
        }
        if (o + 1 >= outsz)
            return -1;
        out[o++] = *v;
    }
    out[o] = '\0';
    return 0;
}

int json_top_string(const char *doc, size_t len, const char *key, const char **val, size_t *vlen)
{
    const char *e = doc + len, *p = json_ws(doc, e);
    size_t kl = strlen(key);
    if (p >= e || *p != '{')
        return -1;
    for (p = json_ws(p + 1, e); p < e && *p == '"';) {
        const char *ke = json_skip(p, e), *v = ke != NULL ? json_ws(ke, e) : NULL;
        if (v == NULL || v >= e || *v != ':')
            return -1;
        v = json_ws(v + 1, e);
        const char *ve = json_skip(v, e);
        if (ve == NULL)
            return -1;
        if ((size_t)(ke - p) == kl + 2 && memcmp(p + 1, key, kl) == 0) {
            if (*v != '"')
                return -1;
            *val = v + 1;
            *vlen = (size_t)(ve - v - 2);
            return 0;
        }
        p = json_ws(ve, e);
        if (p < e && *p == ',')
            p = json_ws(p + 1, e);
    }
    return -1;
}

int jambonz_listen_verb(const char *doc, size_t len, char *url, size_t urlsz, int *rate, char *meta, size_t metasz)
{
    const char *e = doc + len, *p = json_ws(doc, e);
    if (p >= e || *p != '[')
        return -1;
    for (p = json_ws(p + 1, e); p < e && *p == '{';) {
        const char *obj_end = json_skip(p, e);
        if (obj_end == NULL)
            return -1;
        int listen = 0;
        const char *u = NULL, *ue = NULL, *m = NULL, *me = NULL;
        long r = 0;
        /* the members of this verb */
        for (const char *k = json_ws(p + 1, obj_end); k < obj_end && *k == '"';) {
            const char *ke = json_skip(k, obj_end), *v = ke != NULL ? json_ws(ke, obj_end) : NULL;
            if (v == NULL || v >= obj_end || *v != ':')
                return -1;
            v = json_ws(v + 1, obj_end);
            const char *ve = json_skip(v, obj_end);
            if (ve == NULL)
                return -1;
            size_t kl = (size_t)(ke - k);
            if (kl == 6 && memcmp(k, "\"verb\"", 6) == 0)
                listen = ve - v == 8 && memcmp(v, "\"listen\"", 8) == 0;
            else if (kl == 5 && memcmp(k, "\"url\"", 5) == 0)
                u = v, ue = ve;
            else if (kl == 12 && memcmp(k, "\"sampleRate\"", 12) == 0)
                r = strtol(v, NULL, 10);
            else if (kl == 10 && memcmp(k, "\"metadata\"", 10) == 0 && *v == '{')
                m = v + 1, me = ve - 1;
            k = json_ws(ve, obj_end);
            if (k < obj_end && *k == ',')
                k = json_ws(k + 1, obj_end);
        }
        if (listen) {
            if (u == NULL || json_text(u, ue, url, urlsz) != 0)
                return -1;
            *rate = r > 0 && r < 1000000 ? (int)r : 0;
            meta[0] = '\0';
            if (m != NULL) { /* its members as written, blanks around them trimmed */
                m = json_ws(m, me);
                while (me > m && strchr(" \t\r\n", me[-1]))
                    me--;
                if ((size_t)(me - m) >= metasz)
                    return -1;
                memcpy(meta, m, (size_t)(me - m));
                meta[me - m] = '\0';
            }
            return 0;
        }
        p = json_ws(obj_end, e);
        if (p < e && *p == ',')
            p = json_ws(p + 1, e);
    }
    return -1;
}

/* where the marker samples are read in an echoed unit: at 8 kHz where they were written; at
 * 16 kHz inside the plateaus' clean cores. The cores measured through jambonz/pcm.c's filters
 * (random codes, steps from the largest value to 0, frames the echo dropped): samples 77-165
 * and 237-319 of the 320; these positions keep 28 and 17 samples from their edges. */
static const uint16_t pos8[JM_N8] = {0, 1, 2, 3, 4};
static const uint16_t pos16[JM_N16] = {105, 121, 137, 260, 281, 302};

const uint16_t *jm_pos(int wide, int *n)
{
    *n = wide ? JM_N16 : JM_N8;
    return wide ? pos16 : pos8;
}

static void put_le16(unsigned char *p, int16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)((uint16_t)v >> 8);
}

static unsigned jm_check(uint32_t seq)
{
    return (seq ^ seq >> 7 ^ seq >> 14 ^ seq >> 21 ^ 0x2A) & 0x7F;
}

void jm_put(unsigned char *le, int wide, uint32_t seq)
{
    if (!wide) {
        for (int i = 0; i < 4; i++)
            put_le16(le + 2 * i, mulaw_to_linear((unsigned char)(0x80 | (seq >> (7 * i) & 0x7F))));
        put_le16(le + 8, mulaw_to_linear((unsigned char)(0x80 | jm_check(seq))));
        return;
    }
    unsigned char a[2], b[2];
    put_le16(a, mulaw_to_linear((unsigned char)(0x80 | (seq & 0x7F))));
    put_le16(b, mulaw_to_linear((unsigned char)(0x80 | (seq >> 7 & 0x7F))));
    for (int i = 0; i < 160; i++) {
        memcpy(le + 2 * i, a, 2);
        memcpy(le + 320 + 2 * i, b, 2);
    }
}

int64_t jm_get(const int16_t *s, int wide)
{
    if (!wide) {
        uint32_t seq = 0;
        for (int i = 0; i < JM_N8; i++) {
            unsigned char code = mulaw_from_linear(s[i]);
            if (!(code & 0x80) || mulaw_to_linear(code) != s[i])
                return -1; /* not a decode output: not our marker, or not exact */
            if (i < 4)
                seq |= (uint32_t)(code & 0x7F) << (7 * i);
            else if ((code & 0x7F) != jm_check(seq))
                return -1;
        }
        return seq;
    }
    unsigned char c[JM_N16];
    for (int i = 0; i < JM_N16; i++)
        c[i] = mulaw_from_linear(s[i]);
    if (!(c[0] & 0x80) || c[0] != c[1] || c[1] != c[2] || !(c[3] & 0x80) || c[3] != c[4] || c[4] != c[5])
        return -1;
    return (int64_t)(c[0] & 0x7F) | (int64_t)(c[3] & 0x7F) << 7;
}

/* ---- /proc ---- */

static ssize_t read_small(const char *path, char *buf, size_t sz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sz - 1);
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

int64_t proc_cpu_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return -1;
    /* the command name may hold spaces and parentheses: count fields after the last ')' */
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st);
}

long proc_rss_kib(int pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return -1;
    const char *p = strstr(buf, "VmRSS:");
    return p != NULL ? atol(p + 6) : -1;
}

/* ---- the caller's audio ---- */

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            unsigned char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (nb == NULL)
                break;
            buf = nb;
        }
        size_t n = fread(buf + *len, 1, cap - *len, f);
        if (n == 0)
            break;
        *len += n;
    }
    fclose(f);
    return buf;
}

int load_audio(const char *path, unsigned char **pcm, char (**b64)[FRAME_B64 + 1], size_t *nframes)
{
    size_t len = FRAME_BYTES;
    unsigned char *raw;
    if (path != NULL) {
        raw = read_file(path, &len);
        if (raw == NULL || len == 0 || (len >= 4 && memcmp(raw, "RIFF", 4) == 0)) {
            fprintf(stderr, "--audio %s: %s\n", path,
                    raw == NULL ? strerror(errno)
                                : "want raw 8 kHz mu-law (sox in.wav -t raw -e mu-law -r 8000 -c 1 out.mulaw)");
            free(raw);
            return -1;
        }
    } else {
        /* 300 Hz is six whole periods in a 20 ms frame: one frame loops without a click */
        raw = malloc(FRAME_BYTES);
        if (raw == NULL)
            return -1;
        for (int i = 0; i < FRAME_BYTES; i++)
            raw[i] = mulaw_from_linear((int)lrint(8000 * sin(2 * M_PI * 300 * i / 8000.0)));
    }
    size_t n = (len + FRAME_BYTES - 1) / FRAME_BYTES;
    *pcm = malloc(n * FRAME_BYTES);
    *b64 = malloc(n * sizeof(**b64));
    if (*pcm == NULL || *b64 == NULL) {
        free(raw);
        return -1;
    }
    memset(*pcm, 0xff, n * FRAME_BYTES); /* mu-law silence pads the last frame */
    memcpy(*pcm, raw, len);
    free(raw);
    for (size_t i = 0; i < n; i++)
        b64_encode(*pcm + i * FRAME_BYTES, FRAME_BYTES, (*b64)[i]);
    *nframes = n;
    return 0;
}

/* ---- the report ---- */

void load_count_reason(load_stats_t *st, const char *why)
{
    for (int i = 0; i < MAX_REASONS; i++) {
        if (st->reasons[i].n == 0)
            snprintf(st->reasons[i].what, sizeof(st->reasons[i].what), "%s", why);
        if (strcmp(st->reasons[i].what, why) == 0 || i == MAX_REASONS - 1) {
            st->reasons[i].n++; /* the last slot collects whatever did not fit */
            return;
        }
    }
}

static double ms(int64_t us)
{
    return (double)us / 1000.0;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

typedef struct figures {
    uint64_t sent, echoed, lost;
    double loss_pct, call_s;
    unsigned calls;
} figures_t;

static figures_t figures_of(const load_stats_t *st)
{
    figures_t f = {.sent = st->sent[0] + st->sent[1], .echoed = st->echoed[0] + st->echoed[1]};
    f.lost = f.sent > f.echoed ? f.sent - f.echoed : 0;
    f.loss_pct = f.sent ? 100.0 * (double)f.lost / (double)f.sent : 0;
    f.calls = st->window_calls ? st->window_calls : st->set_up;
    f.call_s = (double)st->window_calls * st->window_s;
    return f;
}

static void json_hist(const char *name, const hist_t *h, const char *sep)
{
    printf("\"%s\":{\"n\":%llu,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}%s", name, (unsigned long long)h->n,
           ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.99)), ms(h->n ? h->max : 0), sep);
}

static void report_json(const load_stats_t *st, const figures_t *f, int ok)
{
    printf("{\"calls\":{\"requested\":%u,\"set_up\":%u,\"failed\":%u,\"dropped\":%u,\"in_window\":%u,\"reasons\":{",
           st->requested, st->set_up, st->failed, st->dropped, st->window_calls);
    for (int i = 0, first = 1; i < MAX_REASONS && st->reasons[i].n; i++, first = 0) {
        printf("%s", first ? "" : ",");
        json_string(st->reasons[i].what);
        printf(":%u", st->reasons[i].n);
    }
    printf("}},\"platform\":\"%s\",\"sample_rate\":%d,", st->platform == PLATFORM_JAMBONZ ? "jambonz" : "twilio",
           st->platform == PLATFORM_JAMBONZ ? st->rate : 8000);
    if (st->platform == PLATFORM_JAMBONZ)
        printf("\"jambonz\":{\"marks_early\":%llu,\"kill_audio\":%llu,\"clear_marks\":%llu,\"disconnects\":%llu},",
               (unsigned long long)st->marks_early, (unsigned long long)st->clears, (unsigned long long)st->clear_marks,
               (unsigned long long)st->disconnects);
    printf("\"ramp_per_s\":%.1f,\"window_s\":%.3f,\"echo_delay_ms\":%d,", st->ramp, st->window_s, st->echo_delay_ms);
    json_hist("webhook_ms", &st->webhook, ",");
    json_hist("added_latency_ms", &st->lat[1], ",");
    json_hist("ramp_added_latency_ms", &st->lat[0], ",");
    json_hist("client_send_lag_ms", &st->lag, ",");
    printf("\"frames\":{\"sent\":%llu,\"echoed\":%llu,\"lost\":%llu,\"loss_pct\":%.4f,\"window_sent\":%llu,"
           "\"window_echoed\":%llu,\"send_overflow\":%llu,\"unmatched\":%llu},\"marks_acked\":%llu,",
           (unsigned long long)f->sent, (unsigned long long)f->echoed, (unsigned long long)f->lost, f->loss_pct,
           (unsigned long long)st->sent[1], (unsigned long long)st->echoed[1], (unsigned long long)st->overflow,
           (unsigned long long)st->unmatched, (unsigned long long)st->marks);
    if (st->pid && st->server_cpu_s >= 0)
        printf("\"server\":{\"pid\":%d,\"cpu_pct\":%.1f,\"cpu_ms_per_call_s\":%.4f,\"rss_before_kib\":%ld,"
               "\"rss_peak_kib\":%ld,\"rss_per_call_kib\":%.1f},",
               st->pid, 100 * st->server_cpu_s / st->window_s, f->call_s ? 1000 * st->server_cpu_s / f->call_s : 0,
               st->rss_before, st->rss_peak, f->calls ? (double)(st->rss_peak - st->rss_before) / f->calls : 0);
    printf("\"client\":{\"cpu_pct\":%.1f,\"cpu_ms_per_call_s\":%.4f,\"rss_peak_kib\":%ld},",
           st->window_s ? 100 * st->client_cpu_s / st->window_s : 0,
           f->call_s ? 1000 * st->client_cpu_s / f->call_s : 0, st->client_rss_kib);
    if (st->openai_port) {
        const openai_counts_t *c = &st->openai;
        printf("\"openai\":{\"port\":%d,\"delay_ms\":%d,\"cpu_pct\":%.1f,\"accepted\":%llu,\"upgraded\":%llu,"
               "\"bad_handshakes\":%llu,\"protocol_errors\":%llu,\"appends\":%llu,\"deltas\":%llu,\"dropped\":%llu,"
               "\"expired\":%llu,\"other\":%llu},",
               st->openai_port, st->openai_delay_ms, st->window_s ? 100 * st->openai_cpu_s / st->window_s : 0,
               (unsigned long long)c->accepted, (unsigned long long)c->upgraded, (unsigned long long)c->bad_handshakes,
               (unsigned long long)c->protocol_errors, (unsigned long long)c->appends, (unsigned long long)c->deltas,
               (unsigned long long)c->dropped, (unsigned long long)c->expired, (unsigned long long)c->other);
    }
    printf("\"ok\":%s}\n", ok ? "true" : "false");
}

static void table_hist(const char *label, const hist_t *h, const char *note)
{
    if (h->n == 0) {
        printf("%-16s -\n", label);
        return;
    }
    printf("%-16s p50 %7.2f ms   p99 %7.2f ms   max %7.2f ms   (%llu%s)\n", label, ms(hist_quantile(h, 0.5)),
           ms(hist_quantile(h, 0.99)), ms(h->max), (unsigned long long)h->n, note);
}

static void report_table(const load_stats_t *st, const figures_t *f, int ok)
{
    char what[64] = "Twilio";
    if (st->platform == PLATFORM_JAMBONZ && st->rate > 0)
        snprintf(what, sizeof(what), "jambonz (L16 %d kHz)", st->rate / 1000);
    else if (st->platform == PLATFORM_JAMBONZ)
        snprintf(what, sizeof(what), "jambonz (L16 %s)", st->rate < 0 ? "8 and 16 kHz" : "-");
    printf("switchboard-sim load: %u %s calls at %.0f/s; window %.1f s with %u calls; %s delay %d ms\n", st->requested,
           what, st->ramp, st->window_s, st->window_calls, st->openai_port ? "fake OpenAI" : "echo",
           st->openai_port ? st->openai_delay_ms : st->echo_delay_ms);
    printf("%-16s set up %u of %u, failed %u, dropped mid-call %u\n", "calls", st->set_up, st->requested, st->failed,
           st->dropped);
    for (int i = 0; i < MAX_REASONS && st->reasons[i].n; i++)
        printf("%-16s %6u x %s\n", "", st->reasons[i].n, st->reasons[i].what);
    table_hist("webhook", &st->webhook, " webhooks");
    table_hist("added latency", &st->lat[1], " frames in the window");
    table_hist("  during ramp", &st->lat[0], " frames");
    printf("%-16s sent %llu, echoed %llu, lost %llu (%.3f %%); %llu marks acked", "frames", (unsigned long long)f->sent,
           (unsigned long long)f->echoed, (unsigned long long)f->lost, f->loss_pct, (unsigned long long)st->marks);
    if (st->platform == PLATFORM_JAMBONZ)
        printf(" at playout (%llu early)", (unsigned long long)st->marks_early);
    if (st->overflow || st->unmatched)
        printf("; %llu not sent (buffer full), %llu echoes unmatched", (unsigned long long)st->overflow,
               (unsigned long long)st->unmatched);
    printf("\n");
    if (st->platform == PLATFORM_JAMBONZ && (st->clears || st->clear_marks || st->disconnects))
        printf("%-16s %llu killAudio, %llu clearMarks, %llu disconnect\n", "jambonz", (unsigned long long)st->clears,
               (unsigned long long)st->clear_marks, (unsigned long long)st->disconnects);
    if (st->pid && st->server_cpu_s >= 0) {
        printf("%-16s %.1f %% of a core, %.4f ms per call-second (pid %d)\n", "server CPU",
               100 * st->server_cpu_s / st->window_s, f->call_s ? 1000 * st->server_cpu_s / f->call_s : 0, st->pid);
        printf("%-16s %.1f MiB before, %.1f MiB peak, %.1f KiB per call\n", "server RSS", st->rss_before / 1024.0,
               st->rss_peak / 1024.0, f->calls ? (double)(st->rss_peak - st->rss_before) / f->calls : 0);
    }
    if (st->window_s > 0)
        printf("%-16s %.1f %% of a core, %.4f ms per call-second; RSS %.1f MiB\n", "client CPU",
               100 * st->client_cpu_s / st->window_s, f->call_s ? 1000 * st->client_cpu_s / f->call_s : 0,
               st->client_rss_kib / 1024.0);
    if (st->openai_port) {
        const openai_counts_t *c = &st->openai;
        printf("%-16s 127.0.0.1:%d: %llu connections (%llu upgraded, %llu refused, %llu protocol errors)\n",
               "fake OpenAI", st->openai_port, (unsigned long long)c->accepted, (unsigned long long)c->upgraded,
               (unsigned long long)c->bad_handshakes, (unsigned long long)c->protocol_errors);
        printf("%-16s %llu appends, %llu deltas, %llu dropped, %llu expired, %llu other messages\n", "",
               (unsigned long long)c->appends, (unsigned long long)c->deltas, (unsigned long long)c->dropped,
               (unsigned long long)c->expired, (unsigned long long)c->other);
        if (st->window_s > 0)
            printf("%-16s %.1f %% of a core (part of the client's)\n", "fake OpenAI CPU",
                   100 * st->openai_cpu_s / st->window_s);
    }
    table_hist("client lag", &st->lag, " frames, sent behind their due time");
    printf("%-16s %s\n", "result", ok ? "ok" : "FAILED (calls not set up, or 1 % of frames or more lost)");
}

int load_report(const load_stats_t *st, int json)
{
    figures_t f = figures_of(st);
    int ok = st->set_up == st->requested && f.sent > 0 && f.loss_pct < 1.0;
    if (json)
        report_json(st, &f, ok);
    else
        report_table(st, &f, ok);
    return ok ? 0 : 1;
}

/* ---- the command line ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: switchboard-sim-load --url http://127.0.0.1:PORT [--calls N=100] [--ramp CALLS_PER_S=50]\n"
               "         [--duration S=10] [--audio file.mulaw] [--auth-token T [--public-url https://host]]\n"
               "         [--pid SERVER_PID] [--json] [--echo-delay-ms 100] [--from E164] [--to E164]\n"
               "         [--platform twilio|jambonz] [--rate 8000|16000] [--marks playout|now]\n"
               "         [--openai-port N [--openai-delay MS]]\n"
               "N concurrent calls (Twilio: voice webhook, then a Media Stream; jambonz: /jambonz/call, then\n"
               "the listen verb's WebSocket with binary L16) at real-time pace against a switchboard whose\n"
               "AI_PROVIDER is echo. Calls start at --ramp per second; once all are up, a window of\n"
               "--duration seconds measures per-frame added latency (round trip minus the echo delay),\n"
               "frames lost and, with --pid, the server's CPU and RSS. --audio: raw 8 kHz mu-law, looped\n"
               "(default a 300 Hz tone). --rate: the L16 rate of the jambonz leg (default: the listen\n"
               "verb's sampleRate); at 16000 the audio is the sequence markers alone (see load.h).\n"
               "--marks: jambonz's marks are answered once the audio before them has played (playout,\n"
               "the default), or on receipt (now).\n"
               "--openai-port N: also play OpenAI's Realtime server on 127.0.0.1:N, on a thread of its own,\n"
               "for a switchboard with AI_PROVIDER=openai and OPENAI_REALTIME_URL=ws://127.0.0.1:N/v1/realtime:\n"
               "each input_audio_buffer.append comes back as a response.output_audio.delta of the same\n"
               "base64 --openai-delay ms later (default: --echo-delay-ms), and that delay is the one the\n"
               "added latency has removed.\n"
               "Exit 0 when every call was set up and under 1 %% of frames were lost, 1 otherwise, 2 on\n"
               "bad arguments.\n");
}

/* http://host[:port][/]: resolved once, before the loop starts */
static int resolve_url(load_opts_t *o)
{
    if (strncmp(o->url, "http://", 7) != 0) {
        fprintf(stderr, "--url: only http:// (the simulator talks to the server's plain listener)\n");
        return -1;
    }
    const char *h = o->url + 7;
    snprintf(o->hostport, sizeof(o->hostport), "%.*s", (int)strcspn(h, "/?#"), h);
    char host[sizeof(o->hostport)], port[16] = "80";
    snprintf(host, sizeof(host), "%s", o->hostport);
    char *colon = strrchr(host, ':');
    if (colon != NULL && strchr(colon, ']') == NULL) {
        snprintf(port, sizeof(port), "%s", colon + 1);
        *colon = '\0';
    }
    if (host[0] == '[') { /* [::1] */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "--url %s: %s\n", o->url, gai_strerror(rc));
        return -1;
    }
    memcpy(&o->addr, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

static void raise_nofile(unsigned ncalls)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)ncalls * 2 + 32)
        fprintf(stderr, "warning: open files limited to %llu; %u calls need about %u (ulimit -n)\n",
                (unsigned long long)rl.rlim_cur, ncalls, ncalls * 2 + 32);
}

/* one row per option: where its value goes and what kind it is (s string, u/i integer, d real, b flag) */
static const struct {
    struct option opt;
    char kind;
    size_t off;
} options[] = {
#define OPT(name, kind, field)                                                                                         \
    {                                                                                                                  \
        {name, kind == 'b' ? 0 : 1, 0, 0}, kind, offsetof(load_opts_t, field)                                          \
    }
    OPT("url", 's', url),
    OPT("calls", 'u', ncalls),
    OPT("ramp", 'd', ramp),
    OPT("duration", 'd', duration),
    OPT("audio", 's', audio),
    OPT("auth-token", 's', token),
    OPT("public-url", 's', public_url),
    OPT("pid", 'i', pid),
    OPT("json", 'b', json),
    OPT("echo-delay-ms", 'i', echo_delay_ms),
    OPT("from", 's', from),
    OPT("to", 's', to),
    OPT("platform", 's', platform_name),
    OPT("rate", 'i', rate),
    OPT("marks", 's', marks_name),
    OPT("openai-port", 'i', openai_port),
    OPT("openai-delay", 'i', openai_delay_ms),
#undef OPT
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static int set_option(load_opts_t *o, size_t i, const char *arg)
{
    void *dst = (char *)o + options[i].off;
    char *end = NULL;
    switch (options[i].kind) {
    case 's':
        *(const char **)dst = arg;
        return 0;
    case 'b':
        *(int *)dst = 1;
        return 0;
    case 'd':
        *(double *)dst = strtod(arg, &end);
        break;
    case 'u':
        *(unsigned *)dst = (unsigned)strtoul(arg, &end, 10);
        break;
    default:
        *(int *)dst = (int)strtol(arg, &end, 10);
    }
    if (end == arg || *end != '\0') {
        fprintf(stderr, "--%s: not a number: %s\n", options[i].opt.name, arg);
        return -1;
    }
    return 0;
}

int load_parse_args(int argc, char **argv, load_opts_t *o)
{
    struct option longopts[NOPTIONS + 2];
    for (size_t i = 0; i < NOPTIONS; i++) {
        longopts[i] = options[i].opt;
        longopts[i].val = (int)i;
    }
    longopts[NOPTIONS] = (struct option){"help", 0, 0, 'h'};
    longopts[NOPTIONS + 1] = (struct option){0, 0, 0, 0};
    *o = (load_opts_t){.ncalls = 100,
                       .ramp = 50,
                       .duration = 10,
                       .echo_delay_ms = 100,
                       .from = "+14155550111",
                       .to = "+14155550100",
                       .openai_port = -1,
                       .openai_delay_ms = -1};
    for (int c; (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
        if (c == 'h') {
            usage(stdout);
            exit(0);
        }
        if (c < 0 || (size_t)c >= NOPTIONS || set_option(o, (size_t)c, optarg) != 0) {
            usage(stderr);
            return -1;
        }
    }
    if (o->url == NULL || o->ncalls == 0 || o->ramp <= 0 || o->duration < 0 || optind != argc) {
        usage(stderr);
        return -1;
    }
    if (o->platform_name == NULL || strcmp(o->platform_name, "twilio") == 0) {
        o->platform = PLATFORM_TWILIO;
    } else if (strcmp(o->platform_name, "jambonz") == 0) {
        o->platform = PLATFORM_JAMBONZ;
    } else {
        fprintf(stderr, "--platform: twilio or jambonz, not %s\n", o->platform_name);
        return -1;
    }
    if (o->rate != 0 && (o->platform != PLATFORM_JAMBONZ || (o->rate != 8000 && o->rate != 16000))) {
        fprintf(stderr, "--rate: 8000 or 16000, with --platform jambonz\n");
        return -1;
    }
    if (o->marks_name != NULL && strcmp(o->marks_name, "playout") != 0 && strcmp(o->marks_name, "now") != 0) {
        fprintf(stderr, "--marks: playout or now, not %s\n", o->marks_name);
        return -1;
    }
    o->marks_now = o->marks_name != NULL && strcmp(o->marks_name, "now") == 0;
    if (o->openai_port != -1 && (o->openai_port < 1 || o->openai_port > 65535)) {
        fprintf(stderr, "--openai-port: 1 to 65535, not %d\n", o->openai_port);
        return -1;
    }
    if (o->openai_delay_ms != -1 && (o->openai_delay_ms < 0 || o->openai_delay_ms > 60000)) {
        fprintf(stderr, "--openai-delay: 0 to 60000 ms, not %d\n", o->openai_delay_ms);
        return -1;
    }
    if (o->openai_port == -1 && o->openai_delay_ms != -1)
        fprintf(stderr, "warning: --openai-delay without --openai-port: no fake OpenAI runs\n");
    if (o->openai_port == -1)
        o->openai_port = 0;
    if (o->openai_delay_ms == -1)
        o->openai_delay_ms = o->echo_delay_ms;
    if (o->platform == PLATFORM_JAMBONZ && (o->token != NULL || o->public_url != NULL))
        fprintf(stderr, "warning: --auth-token and --public-url are Twilio's: jambonz hooks go unsigned\n");
    snprintf(o->public_base, sizeof(o->public_base), "%s", o->public_url != NULL ? o->public_url : o->url);
    o->public_base[strcspn(o->public_base, "?#")] = '\0';
    for (size_t l = strlen(o->public_base); l > 0 && o->public_base[l - 1] == '/'; l--)
        o->public_base[l - 1] = '\0';
    raise_nofile(o->ncalls);
    return resolve_url(o);
}
