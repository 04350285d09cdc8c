/* A ping-pong echo load client on epoll, built by benchmarks/echo.py at run time.
 *
 *   echo_client HOST PORT ACTIVE SIZE SECONDS IDLE INFLIGHT TIMEOUT
 *
 * It opens IDLE idle connections, then ACTIVE active ones (TCP_NODELAY on each; to a
 * loopback server from source addresses 127.0.0.2-9, so that connect() finds a free local
 * port at once), and checks that each one is served: one byte out, the same byte back (the "first echo"). At most
 * INFLIGHT connections wait for their first echo at once (0: no limit), so a burst of clients
 * is paced by the server's accepting, not by the kernel's listen queue. Then it prints
 *
 *   CONNECTED {"connected": .., "failed": .., "lost": .., "seconds": ..}
 *
 * and waits for a line on stdin. "go": each active connection sends SIZE bytes, reads the
 * echo back in full, checks every byte against what it sent (a different slice of a pattern
 * on every round and connection, so a byte from the wrong place is caught), and sends again,
 * for SECONDS seconds; then it waits (up to TIMEOUT s) for the rounds under way and prints
 *
 *   RESULT {"round_trips": .., "bytes_verified": .., "mismatches": .., "errors": ..,
 *           "unfinished": .., "elapsed": .., "p50_us": .., "p99_us": .., "quantiles": [..]}
 *
 * "check": one byte to every idle connection, the same byte back within TIMEOUT s:
 *   IDLE {"alive": .., "checked": ..}
 * EOF on stdin (the parent has gone, or is done) ends it at any point.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING, FIRST, READY, SENDING, RECEIVING, DONE, CLOSED };
#define STDIN_KEY 0xFFFFFFFFu
#define QUANTILES 100

typedef struct {
    int fd, state;
    size_t sent, received; /* bytes of this round */
    uint32_t round;
    double started;        /* when this round's first byte went out */
    uint32_t events;       /* what epoll reports for it now */
} conn_t;

static conn_t *conns;
static int ep, total, n_idle, spread;
static size_t size;
static unsigned char *pattern, *inbuf;
static double *lat; /* microseconds per round trip */
static size_t n_lat, cap_lat;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void watch(int i, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, op, conns[i].fd, &ev);
}

static void drop(int i) {
    if (conns[i].fd >= 0) close(conns[i].fd); /* close() also removes it from epoll */
    conns[i].fd = -1;
    conns[i].state = CLOSED;
}

/* Lines from the parent that arrived during a phase wait here; EOF ends us once they are done
 * (each phase is bounded in time anyway). */
static char commands[256];
static size_t n_commands;
static int stdin_closed;

static void stdin_event(void) {
    ssize_t n = read(0, commands + n_commands, sizeof commands - 1 - n_commands);
    if (n > 0) { n_commands += (size_t)n; return; }
    stdin_closed = 1;
    epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
}

static int read_line(char *buf, size_t cap) { /* blocking; 0 at EOF */
    for (;;) {
        char *end = memchr(commands, '\n', n_commands);
        if (end) {
            size_t len = (size_t)(end - commands);
            snprintf(buf, cap, "%.*s", (int)len, commands);
            memmove(commands, end + 1, n_commands - len - 1);
            n_commands -= len + 1;
            return 1;
        }
        if (stdin_closed || n_commands >= sizeof commands - 1) return 0;
        ssize_t n = read(0, commands + n_commands, sizeof commands - 1 - n_commands);
        if (n <= 0) return 0;
        n_commands += (size_t)n;
    }
}

static unsigned char first_byte(int i) { return (unsigned char)(i * 7 + 1); }

static const unsigned char *expected(int i) { /* this round's message for connection i */
    return pattern + ((size_t)i * 37 + conns[i].round) % 256;
}

/* -- connecting ---------------------------------------------------------------------------- */
static int open_one(int i, struct sockaddr_in *addr) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    conns[i].fd = fd;
    if (fd < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (spread) { /* a source address among 127.0.0.2-9: without it, thousands of connections
                   * from one address to one port make each connect() search the ports in use */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7F000002u + (uint32_t)(i % 8));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        bind(fd, (struct sockaddr *)&src, sizeof src);
    }
    if (connect(fd, (struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS) {
        drop(i);
        return -1;
    }
    conns[i].state = CONNECTING;
    watch(i, EPOLLOUT, EPOLL_CTL_ADD);
    return 0;
}

static int advance_connect(int i) { /* 1: first echo done, -1: failed, 0: not yet */
    conn_t *c = &conns[i];
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        unsigned char b = first_byte(i);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || send(c->fd, &b, 1, 0) != 1) return -1; /* a fresh socket takes 1 byte */
        c->state = FIRST;
        watch(i, EPOLLIN, EPOLL_CTL_MOD);
        return 0;
    }
    unsigned char b;
    ssize_t n = recv(c->fd, &b, 1, 0);
    if (n < 0 && errno == EAGAIN) return 0;
    if (n != 1 || b != first_byte(i)) return -1;
    c->state = READY;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    return 1;
}

static void connect_all(struct sockaddr_in *addr, int inflight, double timeout) {
    int next = 0, pending = 0, connected = 0, failed = 0, lost = 0, finished = 0;
    double start = now(), deadline = start + timeout;
    struct epoll_event evs[512];
    while (finished < total && now() < deadline) {
        while (next < total && (inflight <= 0 || pending < inflight)) {
            if (open_one(next++, addr) < 0) { failed++; finished++; }
            else pending++;
        }
        int n = epoll_wait(ep, evs, 512, 100);
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == STDIN_KEY) { stdin_event(); continue; }
            int i = (int)evs[k].data.u32, was = conns[i].state, r = advance_connect(i);
            if (r == 0) continue;
            pending--; finished++;
            if (r > 0) connected++;
            else { drop(i); if (was == CONNECTING) failed++; else lost++; }
        }
    }
    failed += total - next; /* never opened: the time ran out first */
    for (int i = 0; i < next; i++) /* no first echo in time: lost */
        if (conns[i].state == CONNECTING || conns[i].state == FIRST) { drop(i); lost++; }
    printf("CONNECTED {\"connected\": %d, \"failed\": %d, \"lost\": %d, \"seconds\": %.3f}\n",
           connected, failed, lost, now() - start);
    fflush(stdout);
}

/* -- ping-pong ------------------------------------------------------------------------------ */
static int send_some(int i) { /* -1 on error; the rest waits for EPOLLOUT */
    conn_t *c = &conns[i];
    ssize_t n = send(c->fd, expected(i) + c->sent, size - c->sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    c->sent += (size_t)n;
    return 0;
}

static void want(int i, uint32_t events) { /* change what epoll reports only when needed */
    if (conns[i].events != events) watch(i, events, EPOLL_CTL_MOD);
    conns[i].events = events;
}

static int start_round(int i) { /* send at once (it nearly always all fits), then wait */
    conns[i].sent = conns[i].received = 0;
    conns[i].state = SENDING;
    conns[i].started = now();
    if (send_some(i) < 0) return -1;
    want(i, conns[i].sent < size ? EPOLLIN | EPOLLOUT : EPOLLIN);
    return 0;
}

static int pump(int i, int *mismatches) { /* move bytes; 1 when the round is complete */
    conn_t *c = &conns[i];
    const unsigned char *want = expected(i);
    if (c->sent < size && send_some(i) < 0) return -1;
    /* read no more than this round's echo: a byte too many shows up in the next round */
    ssize_t n = recv(c->fd, inbuf, size - c->received, 0);
    if (n == 0) return -1;
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    if (memcmp(inbuf, want + c->received, (size_t)n) != 0) { (*mismatches)++; return -1; }
    c->received += (size_t)n;
    return c->received == size;
}

static void record(double us) {
    if (n_lat == cap_lat) {
        cap_lat = cap_lat ? 2 * cap_lat : 1 << 16;
        lat = realloc(lat, cap_lat * sizeof *lat);
    }
    lat[n_lat++] = us;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The nearest rank, as labkit.percentiles defines it: the smallest latency with at least p %
   of them at or below it (index ceil(p/100 * n) - 1 of the sorted list). */
static double percentile(double p) {
    if (!n_lat) return -1;
    double x = p / 100 * n_lat - 1e-9;  /* 99 % of 100 is rank 99, not 100 after rounding */
    size_t k = (size_t)x;
    if ((double)k < x) k++;             /* ceil without libm */
    k = k ? k - 1 : 0;
    return lat[k < n_lat ? k : n_lat - 1];
}

static void ping_pong(double seconds, double timeout) {
    int active = 0, errors = 0, mismatches = 0, unfinished = 0;
    long round_trips = 0;
    struct epoll_event evs[512];
    double start = now(), end = start + seconds, drain_end = end + timeout, t = start;
    for (int i = n_idle; i < total; i++) {
        if (conns[i].state != READY) continue;
        conns[i].events = EPOLLIN;
        watch(i, EPOLLIN, EPOLL_CTL_ADD);
        active++;
        if (start_round(i) < 0) { errors++; drop(i); }
    }
    int busy = active - errors;
    while (busy > 0 && t < drain_end) {
        int n = epoll_wait(ep, evs, 512, 100);
        t = now();
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == STDIN_KEY) { stdin_event(); continue; }
            int i = (int)evs[k].data.u32;
            if (conns[i].state != SENDING) continue; /* closed earlier in this batch */
            int r = pump(i, &mismatches);
            if (r == 0 && conns[i].sent == size) want(i, EPOLLIN);
            if (r == 1) {
                t = now(); /* the round's last byte has just come */
                record((t - conns[i].started) * 1e6);
                round_trips++;
                conns[i].round++;
                if (t >= end) { /* done: quiet, but kept open until we exit */
                    conns[i].state = DONE;
                    epoll_ctl(ep, EPOLL_CTL_DEL, conns[i].fd, NULL);
                    busy--;
                    continue;
                }
                r = start_round(i);
            }
            if (r < 0) { errors++; drop(i); busy--; }
        }
    }
    for (int i = n_idle; i < total; i++)
        if (conns[i].state == SENDING) { unfinished++; drop(i); }
    double elapsed = t - start;
    qsort(lat, n_lat, sizeof *lat, by_value);
    printf("RESULT {\"connections\": %d, \"round_trips\": %ld, \"bytes_verified\": %ld, "
           "\"mismatches\": %d, \"errors\": %d, \"unfinished\": %d, \"elapsed\": %.6f, "
           "\"p50_us\": %.2f, \"p99_us\": %.2f, \"quantiles\": [",
           active, round_trips, round_trips * (long)size, mismatches, errors, unfinished,
           elapsed, percentile(50), percentile(99));
    for (int q = 0; q < QUANTILES; q++)
        printf("%s%.2f", q ? ", " : "", percentile((q + 0.5) * 100.0 / QUANTILES));
    printf("]}\n");
    fflush(stdout);
}

/* -- are the idle ones still there? ------------------------------------------------------- */
static void check_idle(double timeout) {
    int checked = 0, alive = 0, waiting = 0;
    struct epoll_event evs[512];
    for (int i = 0; i < n_idle; i++) {
        if (conns[i].state != READY) continue;
        unsigned char b = first_byte(i + 1);
        checked++;
        if (send(conns[i].fd, &b, 1, MSG_NOSIGNAL) != 1) continue;
        watch(i, EPOLLIN, EPOLL_CTL_ADD);
        waiting++;
    }
    double deadline = now() + timeout;
    while (waiting > 0 && now() < deadline) {
        int n = epoll_wait(ep, evs, 512, 100);
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == STDIN_KEY) { stdin_event(); continue; }
            int i = (int)evs[k].data.u32;
            unsigned char b;
            ssize_t got = recv(conns[i].fd, &b, 1, 0);
            if (got < 0 && errno == EAGAIN) continue;
            if (got == 1 && b == first_byte(i + 1)) alive++;
            epoll_ctl(ep, EPOLL_CTL_DEL, conns[i].fd, NULL);
            waiting--;
        }
    }
    printf("IDLE {\"alive\": %d, \"checked\": %d}\n", alive, checked);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: %s HOST PORT ACTIVE SIZE SECONDS IDLE INFLIGHT TIMEOUT\n", argv[0]);
        return 2;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
    int active = atoi(argv[3]);
    size = (size_t)atol(argv[4]);
    double seconds = atof(argv[5]), timeout = atof(argv[8]);
    n_idle = atoi(argv[6]);
    total = n_idle + active;
    if (size < 1 || active < 0 || n_idle < 0) { fprintf(stderr, "bad sizes\n"); return 2; }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max; /* a socket each: as many as we may */
    setrlimit(RLIMIT_NOFILE, &rl);
    conns = calloc((size_t)total + 1, sizeof *conns);
    for (int i = 0; i < total; i++) { conns[i].fd = -1; conns[i].state = CLOSED; }
    pattern = malloc(size + 256);
    inbuf = malloc(size);
    for (size_t k = 0; k < size + 256; k++) pattern[k] = (unsigned char)((k * 2654435761u) >> 13);
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = STDIN_KEY};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    spread = (ntohl(addr.sin_addr.s_addr) >> 24) == 127; /* loopback: all of 127/8 is ours */
    connect_all(&addr, atoi(argv[7]), timeout);
    char line[64];
    while (read_line(line, sizeof line)) {
        if (!strcmp(line, "go")) ping_pong(seconds, timeout);
        else if (!strcmp(line, "check")) check_idle(timeout);
    }
    return 0;
}
