/*
 * Reference: loopback TCP bandwidth between two processes, the ceiling for replay.
 *
 *   ref_tcp SIZE [CHUNK]
 *
 * The parent listens on 127.0.0.1 (ephemeral port) and receives; a forked child connects and
 * sends SIZE bytes in CHUNK-byte writes (default 1 MiB), like a broker answering big fetches.
 * The clock runs from the first byte received to the last. Prints one JSON line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_util.h"

static int sender(int port, int64_t size, size_t chunk)
{
    uint8_t *buf = malloc(chunk);
    if (!buf)
        return 1;
    bench_fill_pattern(buf, chunk, 3);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("ref_tcp: connect");
        return 1;
    }
    for (int64_t left = size; left > 0;) {
        size_t n = left < (int64_t)chunk ? (size_t)left : chunk;
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            perror("ref_tcp: write");
            return 1;
        }
        left -= w;
    }
    close(fd);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ref_tcp SIZE [CHUNK]\n");
        return 2;
    }
    int64_t size = bench_parse_size(argv[1]);
    int64_t chunk = argc > 2 ? bench_parse_size(argv[2]) : 1024 * 1024;
    if (size <= 0 || chunk <= 0)
        return 2;

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
        perror("ref_tcp: listen");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0)
        _exit(sender(ntohs(a.sin_port), size, (size_t)chunk));

    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
        perror("ref_tcp: accept");
        kill(pid, SIGKILL);
        return 1;
    }
    uint8_t *buf = malloc((size_t)chunk);
    int64_t got = 0, t0 = 0;
    while (buf) {
        ssize_t r = read(fd, buf, (size_t)chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (!got)
            t0 = bench_now_ns();
        got += r;
    }
    int64_t t1 = bench_now_ns();
    int status = 0;
    waitpid(pid, &status, 0);
    free(buf);
    if (got != size || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "ref_tcp: received %lld of %lld bytes\n", (long long)got,
                (long long)size);
        return 1;
    }
    bench_json_t j;
    bench_json_begin(&j, stdout);
    bench_json_int(&j, "bytes", size);
    bench_json_int(&j, "chunk", chunk);
    bench_json_num(&j, "mbps", (double)size / ((double)(t1 - t0) / 1e9) / 1e6);
    bench_json_end(&j);
    return 0;
}
