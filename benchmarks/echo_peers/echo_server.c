/* The floor: a plain C echo server on epoll, level-triggered, built by benchmarks/echo.py.
 *
 *   echo_server PORT        (binds 127.0.0.1; PORT 0: the OS picks one)
 *
 * It prints READY {"host": "127.0.0.1", "port": .., "pid": ..} like labkit's servers, and exits
 * when its stdin reaches EOF (the parent has gone). Each readable client is read once and its
 * bytes are sent back at once; what the socket will not take waits, and that client is not
 * read again until it has gone out (EPOLLOUT), so a client that does not read cannot make
 * us buffer without end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct { char *rest; size_t len, off; } pending_t; /* per descriptor */

static int ep;
static pending_t *pending;
static char buf[65536];

static void watch(int fd, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    epoll_ctl(ep, op, fd, &ev);
}

static void finish(int fd) {
    free(pending[fd].rest);
    pending[fd] = (pending_t){0};
    close(fd);
}

static void serve(int fd, uint32_t events) {
    pending_t *p = &pending[fd];
    if (p->rest) { /* writable again: send what waits, then read again */
        ssize_t n = send(fd, p->rest + p->off, p->len - p->off, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) return finish(fd);
        if (n > 0 && (p->off += (size_t)n) == p->len) {
            free(p->rest);
            *p = (pending_t){0};
            watch(fd, EPOLLIN, EPOLL_CTL_MOD);
        }
        return;
    }
    (void)events;
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN)) return finish(fd);
    if (got < 0) return;
    ssize_t n = send(fd, buf, (size_t)got, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) return finish(fd);
    if (n < 0) n = 0;
    if (n < got) { /* keep the rest; stop reading this client until it has gone out */
        p->len = (size_t)(got - n);
        p->off = 0;
        p->rest = malloc(p->len);
        memcpy(p->rest, buf + n, p->len);
        watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
    }
}

int main(int argc, char **argv) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    pending = calloc(rl.rlim_cur + 1, sizeof *pending);
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 0)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&addr, len) < 0 || listen(lfd, 4096) < 0) {
        perror("cannot start");
        return 2;
    }
    getsockname(lfd, (struct sockaddr *)&addr, &len);
    ep = epoll_create1(0);
    watch(lfd, EPOLLIN, EPOLL_CTL_ADD);
    watch(0, EPOLLIN, EPOLL_CTL_ADD); /* stdin: EOF means our parent has gone */
    printf("READY {\"host\": \"127.0.0.1\", \"port\": %d, \"pid\": %d}\n", ntohs(addr.sin_port), getpid());
    fflush(stdout);
    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        for (int k = 0; k < n; k++) {
            int fd = evs[k].data.fd;
            if (fd == 0) {
                if (read(0, buf, sizeof buf) <= 0) return 0;
            } else if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) watch(c, EPOLLIN, EPOLL_CTL_ADD);
            } else {
                serve(fd, evs[k].events);
            }
        }
    }
}
