/*
 * bench_rtp_load: the RTP side of bench/asterisk_load.mjs when node is too coarse a clock.
 * The fake Asterisk (node) still plays ARI; this program owns every ExternalMedia socket:
 * it binds them, sends one 20 ms PCMU packet per call every 20 ms from each (the calls spread
 * over the period by index, one 1 ms timerfd tick sending each phase's frames, as
 * switchboard-sim-load does), and reads switchboard's packets with their kernel arrival time
 * (SO_TIMESTAMPNS), so neither latency nor jitter includes this program's own scheduling.
 *
 * Protocol, one line each way:
 *   argv[1] = N: N sockets are bound on 127.0.0.1 (ephemeral ports); stdout "ports P0 ... PN-1"
 *   stdin "leg I HOST PORT": socket I is switchboard's RTP peer at HOST:PORT; streaming starts
 *   stdin "window MS PID": a measuring window opens now for MS ms (PID: the server, for its
 *         CPU from /proc/PID/stat and its peak VmRSS; every other process's CPU is summed
 *         too); after it and a drain, stdout "report {json}" and the sending stops
 *   stdin closed: exit
 * The report: added latency (echo arrival - send - 100 ms) per frame and per call, frames
 * lost, pacing jitter per call (|inter-arrival - 20 ms|) and split into switchboard's tick
 * (the start of each burst of its packets, against 20 ms) and the burst's length, and this
 * program's own send lag and CPU.
 * Payload tag: bytes 0-1 A5 5A, 2-5 the call, 6-9 the frame number (big-endian); the rest a
 * 440 Hz tone. switchboard's silence (0xFF) and anything untagged count only for pacing.
 * Built by bench/asterisk_load.mjs on first use, next to the server binary:
 *   cc -O2 -Wall -o bench_rtp_load bench/rtp_load.c -lm
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define FRAME_MS  20
#define FRAME     160
#define PKT       (12 + FRAME)
#define SLOTS     1024 /* frames remembered per call: 20 s, so a late echo counts late, not lost */
#define ECHO_MS   100
#define DRAIN_MS  600
#define BATCH     16
#define STDIN_TAG 0xFFFFFFFFu
#define TIMER_TAG 0xFFFFFFFEu

typedef struct leg {
    int fd, live;
    uint32_t idx, ssrc, ts, frame;
    uint16_t seq;
    int marker;
    int64_t next_due_ms;
    struct leg *next_in_phase;
    /* receive: the last packet's arrival (kernel time, ns) and sequence number */
    int64_t last_ns;
    uint16_t last_seq;
    int has_last;
    double lat_sum; /* the call's own echoes in the window: its mean added latency */
    uint64_t lat_n;
    uint32_t sent_frame[SLOTS]; /* frame + 1 while its echo is awaited */
    int64_t sent_ns[SLOTS];     /* CLOCK_REALTIME, as SO_TIMESTAMPNS */
} leg_t;

typedef struct vec {
    double *v;
    size_t n, cap;
} vec_t;

static leg_t *legs;
static unsigned nlegs;
static leg_t *phases[FRAME_MS];
static uint8_t tone[8000];
static int64_t t0_ms, last_ms = -1;
static int64_t win_start = INT64_MAX, win_end = INT64_MAX, drain_end = INT64_MAX; /* realtime ns */
static int64_t win_start_mono_ms = INT64_MAX, win_end_mono_ms = INT64_MAX;
static int sending = 1, srv_pid;
static long cpu0_ticks, rss_peak;
static int64_t next_rss_ms;
static double self0;
static vec_t lat, jit, lag, wait_us, arrivals;
static uint64_t sent_win, echoed_win, late_echoes, unmatched, gaps, reordered, rx_win, silence_win, send_err;
static double interval_sum;
static uint64_t interval_n;
static double report_win_s, report_cpu_s, report_self_s, report_others_s, report_kthreads_s;
static long others0_ticks, kthreads0_ticks;

static void push(vec_t *v, double x)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 65536;
        v->v = realloc(v->v, v->cap * sizeof(double));
        if (v->v == NULL) {
            perror("realloc");
            exit(2);
        }
    }
    v->v[v->n++] = x;
}

static int64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    return now_ns(CLOCK_MONOTONIC) / 1000000 - t0_ms;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long proc_cpu_ticks(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

/* The CPU time of every other process (utime + stime + cutime + cstime, clock ticks): a
 * short-lived process's time shows in its parent's cutime once it is reaped, so the
 * difference over the window counts it too. /proc/stat's busy time would be simpler, but it
 * is sampled at the timer tick and undercounts work that timers wake, like all of this. */
static long others_ticks(long *kthreads)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    long sum = 0;
    *kthreads = 0;
    int me = getpid(), parent = getppid();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == me || pid == parent || pid == srv_pid)
            continue;
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        unsigned long ut, st;
        long cut, cst;
        int ppid;
        if (p != NULL && sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", &ppid, &ut, &st,
                                &cut, &cst) == 5) {
            if (pid == 2 || ppid == 2)
                *kthreads += (long)(ut + st); /* softirq work may land here: our own packets too */
            else
                sum += (long)(ut + st) + cut + cst;
        }
    }
    closedir(d);
    return sum;
}

static long proc_rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static uint8_t mulaw(int s)
{
    int sign = s < 0 ? 0x80 : 0, m = (s < 0 ? -s : s);
    if (m > 32635)
        m = 32635;
    m += 0x84;
    int exp = 7;
    for (int mask = 0x4000; (m & mask) == 0 && exp > 0; mask >>= 1)
        exp--;
    return (uint8_t)~(sign | exp << 4 | ((m >> (exp + 3)) & 0x0F));
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- sending ---- */

static void send_frame(leg_t *l, int64_t due_ms)
{
    uint8_t b[PKT];
    uint32_t f = l->frame++;
    b[0] = 0x80;
    b[1] = l->marker ? 0x80 : 0;
    l->marker = 0;
    b[2] = (uint8_t)(l->seq >> 8);
    b[3] = (uint8_t)l->seq;
    put32(b + 4, l->ts);
    put32(b + 8, l->ssrc);
    l->seq++;
    l->ts += FRAME;
    size_t off = (size_t)f * FRAME % sizeof(tone);
    memcpy(b + 12, tone + off, FRAME);
    b[12] = 0xA5;
    b[13] = 0x5A;
    put32(b + 14, l->idx);
    put32(b + 18, f);
    unsigned s = f % SLOTS;
    int64_t t = now_ns(CLOCK_REALTIME);
    l->sent_frame[s] = f + 1;
    l->sent_ns[s] = t;
    if (send(l->fd, b, sizeof(b), MSG_DONTWAIT) != (ssize_t)sizeof(b)) {
        l->sent_frame[s] = 0;
        send_err++; /* ECONNREFUSED after the peer closed, or a full buffer */
        return;
    }
    if (t >= win_start && t <= win_end) {
        sent_win++;
        push(&lag, (double)(now_ns(CLOCK_MONOTONIC) - t0_ms * 1000000) / 1e6 - (double)due_ms);
    }
}

static void on_tick(void)
{
    int64_t ms = mono_ms();
    if (sending) {
        int64_t from = ms - last_ms > FRAME_MS ? ms - FRAME_MS + 1 : last_ms + 1;
        for (int64_t m = from; m <= ms; m++)
            for (leg_t *l = phases[m % FRAME_MS]; l != NULL; l = l->next_in_phase)
                while (l->live && l->next_due_ms <= ms) {
                    send_frame(l, l->next_due_ms);
                    l->next_due_ms += FRAME_MS;
                }
    }
    last_ms = ms;
    if (srv_pid && ms >= next_rss_ms && ms <= win_end_mono_ms) {
        long r = proc_rss_kib(srv_pid);
        if (r > rss_peak)
            rss_peak = r;
        next_rss_ms = ms + 250;
    }
}

/* ---- receiving ---- */

static void on_packet(leg_t *l, const uint8_t *m, size_t len, int64_t t)
{
    if (len < 12 || m[0] >> 6 != 2)
        return;
    uint16_t seq = (uint16_t)(m[2] << 8 | m[3]);
    int in_win = t >= win_start && t <= win_end;
    if (l->has_last) {
        uint16_t d = (uint16_t)(seq - l->last_seq);
        if (d == 0 || d > 0x8000) {
            reordered++;
        } else if (in_win) {
            if (d == 1) {
                double iv = (double)(t - l->last_ns) / 1e6;
                push(&jit, fabs(iv - FRAME_MS));
                interval_sum += iv;
                interval_n++;
            } else {
                gaps += d - 1u;
            }
        }
    }
    if (!l->has_last || (uint16_t)(seq - l->last_seq) < 0x8000) {
        l->has_last = 1;
        l->last_ns = t;
        l->last_seq = seq;
    }
    if (in_win) {
        rx_win++;
        push(&arrivals, (double)(t - win_start) / 1e6);
    }
    size_t p = 12 + (size_t)(m[0] & 0x0F) * 4;
    if (len < p + FRAME || m[p] != 0xA5 || m[p + 1] != 0x5A) {
        if (in_win)
            silence_win++;
        return;
    }
    uint32_t idx = get32(m + p + 2), f = get32(m + p + 6);
    unsigned s = f % SLOTS;
    if (idx != l->idx || l->sent_frame[s] != f + 1) {
        unmatched++;
        return;
    }
    l->sent_frame[s] = 0;
    int64_t sent = l->sent_ns[s];
    if (sent >= win_start && sent <= win_end) {
        if (t <= drain_end) {
            double ms = (double)(t - sent) / 1e6 - ECHO_MS;
            push(&lat, ms);
            l->lat_sum += ms;
            l->lat_n++;
            echoed_win++;
        } else {
            late_echoes++;
        }
    }
}

static void on_readable(leg_t *l)
{
    for (;;) {
        struct mmsghdr mm[BATCH];
        struct iovec iov[BATCH];
        uint8_t bufs[BATCH][512];
        char ctl[BATCH][CMSG_SPACE(sizeof(struct timespec))];
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
            mm[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1, .msg_control = ctl[i],
                                            .msg_controllen = sizeof(ctl[i])};
        }
        int n = recvmmsg(l->fd, mm, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        int64_t user = now_ns(CLOCK_REALTIME);
        for (int i = 0; i < n; i++) {
            int64_t t = user;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&mm[i].msg_hdr); c != NULL; c = CMSG_NXTHDR(&mm[i].msg_hdr, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof(ts));
                    t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
                }
            if (t >= win_start && t <= win_end)
                push(&wait_us, (double)(user - t) / 1e6); /* how long it sat in the socket */
            on_packet(l, bufs[i], mm[i].msg_len, t);
        }
        if (n < BATCH)
            return;
    }
}

/* ---- the report ---- */

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void summary(const char *name, vec_t *v, const char *sep)
{
    if (v->n == 0) {
        printf("\"%s\":{\"n\":0,\"p50\":null,\"p99\":null,\"max\":null}%s", name, sep);
        return;
    }
    qsort(v->v, v->n, sizeof(double), cmp);
    size_t i50 = (size_t)ceil(0.5 * (double)v->n) - 1, i99 = (size_t)ceil(0.99 * (double)v->n) - 1;
    size_t i999 = (size_t)ceil(0.999 * (double)v->n) - 1, over1 = 0, over2 = 0;
    for (size_t i = 0; i < v->n; i++) {
        over1 += v->v[i] > 1.0;
        over2 += v->v[i] > 2.0;
    }
    printf("\"%s\":{\"n\":%zu,\"min\":%.3f,\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,\"over_1ms\":%zu,"
           "\"over_2ms\":%zu}%s",
           name, v->n, v->v[0], v->v[i50], v->v[i99], v->v[i999], v->v[v->n - 1], over1, over2, sep);
}

static void report(void)
{
    uint64_t lost = sent_win > echoed_win ? sent_win - echoed_win : 0;
    vec_t per_call = {0};
    for (unsigned i = 0; i < nlegs; i++)
        if (legs[i].lat_n > 0)
            push(&per_call, legs[i].lat_sum / (double)legs[i].lat_n);
    printf("report {");
    summary("added_latency_ms", &lat, ",");
    summary("call_mean_latency_ms", &per_call, ",");
    printf("\"frames\":{\"window_sent\":%llu,\"window_echoed\":%llu,\"lost\":%llu,\"loss_pct\":%.4f,"
           "\"echoed_after_drain\":%llu,\"unmatched\":%llu,\"send_errors\":%llu},",
           (unsigned long long)sent_win, (unsigned long long)echoed_win, (unsigned long long)lost,
           sent_win ? 100.0 * (double)lost / (double)sent_win : 0.0, (unsigned long long)late_echoes,
           (unsigned long long)unmatched, (unsigned long long)send_err);
    /* switchboard sends every call's packet from one 20 ms tick: its packets arrive in bursts.
     * A burst starts after a 3 ms silence; how its start strays from 20 ms is the tick's own
     * jitter (its timer, or the loop busy when it was due), its length the send loop's. */
    vec_t tick = {0}, burst = {0};
    qsort(arrivals.v, arrivals.n, sizeof(double), cmp);
    double start = -1, last = -1;
    for (size_t i = 0; i < arrivals.n; i++) {
        double a = arrivals.v[i];
        if (start < 0 || a - last > 3.0) {
            if (start >= 0) {
                push(&burst, last - start);
                push(&tick, fabs(a - start - FRAME_MS));
            }
            start = a;
        }
        last = a;
    }
    printf("\"pacing\":{");
    summary("tick_jitter_ms", &tick, ",");
    summary("burst_ms", &burst, ",");
    summary("jitter_ms", &jit, ",");
    printf("\"mean_interval_ms\":%.4f,\"packets_in_window\":%llu,\"silence_packets_in_window\":%llu,"
           "\"seq_gaps\":%llu,\"reordered\":%llu},",
           interval_n ? interval_sum / (double)interval_n : 0.0, (unsigned long long)rx_win,
           (unsigned long long)silence_win, (unsigned long long)gaps, (unsigned long long)reordered);
    printf("\"window_s\":%.3f,\"others_cpu_s\":%.3f,\"kernel_threads_cpu_s\":%.3f,\"server\":{\"cpu_s\":%.3f,"
           "\"rss_peak_kib\":%ld},",
           report_win_s, report_others_s, report_kthreads_s, report_cpu_s, rss_peak);
    printf("\"client\":{\"cpu_pct\":%.2f,", report_win_s > 0 ? 100.0 * report_self_s / report_win_s : 0.0);
    summary("send_lag_ms", &lag, ",");
    summary("socket_wait_ms", &wait_us, "");
    printf("}}\n");
    fflush(stdout);
}

/* ---- commands ---- */

static void command(char *line, int64_t *window_ms)
{
    unsigned i;
    char host[64];
    int port, ms, pid;
    if (sscanf(line, "leg %u %63s %d", &i, host, &port) == 3 && i < nlegs) {
        leg_t *l = &legs[i];
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (inet_pton(AF_INET, host, &a.sin_addr) != 1 || connect(l->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            fprintf(stderr, "bench_rtp_load: leg %u: cannot connect to %s:%d\n", i, host, port);
            return;
        }
        /* the first frame a period from now, in this call's phase of the 20 ms period */
        int64_t first = mono_ms() + FRAME_MS, phase = i % FRAME_MS;
        l->next_due_ms = first + (phase - first % FRAME_MS + FRAME_MS) % FRAME_MS;
        l->live = 1;
        l->next_in_phase = phases[phase];
        phases[phase] = l;
    } else if (sscanf(line, "window %d %d", &ms, &pid) == 2) {
        srv_pid = pid;
        cpu0_ticks = proc_cpu_ticks(pid);
        others0_ticks = others_ticks(&kthreads0_ticks);
        rss_peak = proc_rss_kib(pid);
        self0 = self_cpu_s();
        win_start = now_ns(CLOCK_REALTIME);
        win_end = win_start + (int64_t)ms * 1000000;
        drain_end = win_end + (int64_t)DRAIN_MS * 1000000;
        win_start_mono_ms = mono_ms();
        win_end_mono_ms = win_start_mono_ms + ms;
        *window_ms = ms;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || (nlegs = (unsigned)atoi(argv[1])) == 0) {
        fprintf(stderr, "usage: bench_rtp_load N (then commands on stdin: see bench/rtp_load.c)\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (size_t i = 0; i < sizeof(tone); i++)
        tone[i] = mulaw((int)lround(12000 * sin(2 * M_PI * 440 * (double)i / 8000)));
    legs = calloc(nlegs, sizeof(leg_t));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    srandom((unsigned)(now_ns(CLOCK_REALTIME) ^ getpid()));
    printf("ports");
    for (unsigned i = 0; i < nlegs; i++) {
        leg_t *l = &legs[i];
        l->idx = i;
        l->ssrc = (uint32_t)random();
        l->seq = (uint16_t)random();
        l->ts = (uint32_t)random();
        l->marker = 1;
        l->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0 ||
            bind(l->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(l->fd, (struct sockaddr *)&a, &al) != 0) {
            perror("bench_rtp_load: socket");
            return 2;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &ev);
        printf(" %u", ntohs(a.sin_port));
    }
    printf("\n");
    fflush(stdout);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_interval = {0, 1000000}, .it_value = {0, 1000000}};
    timerfd_settime(tfd, 0, &its, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TIMER_TAG};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    ev.data.u32 = STDIN_TAG;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    t0_ms = now_ns(CLOCK_MONOTONIC) / 1000000;

    char in[1 << 16];
    size_t inlen = 0;
    int64_t window_ms = -1;
    int reported = 0, stdin_open = 1;
    while (stdin_open || !reported) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno != EINTR)
            return 2;
        for (int k = 0; k < n; k++) {
            uint32_t tag = evs[k].data.u32;
            if (tag == TIMER_TAG) {
                uint64_t exp;
                if (read(tfd, &exp, sizeof(exp)) > 0)
                    on_tick();
            } else if (tag == STDIN_TAG) {
                ssize_t r = read(0, in + inlen, sizeof(in) - 1 - inlen);
                if (r <= 0) {
                    stdin_open = 0;
                    epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
                    if (window_ms < 0)
                        reported = 1; /* nothing to report: exit */
                    continue;
                }
                inlen += (size_t)r;
                in[inlen] = '\0';
                char *line = in, *nl;
                while ((nl = strchr(line, '\n')) != NULL) {
                    *nl = '\0';
                    command(line, &window_ms);
                    line = nl + 1;
                }
                inlen -= (size_t)(line - in);
                memmove(in, line, inlen);
            } else {
                on_readable(&legs[tag]);
            }
        }
        if (window_ms >= 0 && report_win_s == 0 && now_ns(CLOCK_REALTIME) >= win_end) {
            report_win_s = (double)(now_ns(CLOCK_REALTIME) - win_start) / 1e9;
            long c1 = proc_cpu_ticks(srv_pid);
            report_cpu_s = cpu0_ticks >= 0 && c1 >= 0 ? (double)(c1 - cpu0_ticks) / (double)sysconf(_SC_CLK_TCK) : -1;
            report_self_s = self_cpu_s() - self0;
            long k1, o1 = others_ticks(&k1);
            double tck = (double)sysconf(_SC_CLK_TCK);
            report_others_s = others0_ticks >= 0 && o1 >= 0 ? (double)(o1 - others0_ticks) / tck : -1;
            report_kthreads_s = others0_ticks >= 0 && o1 >= 0 ? (double)(k1 - kthreads0_ticks) / tck : -1;
        }
        if (window_ms >= 0 && !reported && now_ns(CLOCK_REALTIME) >= drain_end) {
            sending = 0;
            report();
            reported = 1;
        }
    }
    return 0;
}
