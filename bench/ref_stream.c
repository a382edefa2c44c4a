/*
 * References for a persisting broker: the least a broker must do per byte, measured on the
 * same box in the same run (issue 18).
 *
 *   ref_stream sink   DIR SIZE [--write BYTES] [--sync-mib]
 *   ref_stream source DIR SIZE [--chunk BYTES]
 *
 * sink: a forked sender connects over loopback TCP and streams SIZE bytes in --write-sized
 *   writes (default 256 KiB, the lean producer's batch); the measured process accepts, reads
 *   each --write-sized piece whole into one reusable buffer and appends it with one write() to
 *   a fresh file in DIR (the same append sizes a broker makes), with --sync-mib an fdatasync
 *   after every MiB appended (the acks=all limit). That is: receive the bytes from a socket and
 *   append them to a file, nothing more.
 * source: SIZE bytes are written to a file in DIR first (not timed, left in the page cache, as
 *   a just-produced backlog is); then a forked reader connects and reads it all in 1 MiB reads
 *   while the measured process sendfile()s the file to it in --chunk pieces (default 1 MiB, a
 *   Fetch's max partition bytes). That is: send a file's bytes to a socket, nothing more.
 *
 * The clock runs from accept to the last byte; cpu_s is the measured process's own user+system
 * time (getrusage RUSAGE_SELF: the forked peer is not counted), so cpu_s_per_gb compares with a
 * broker's CPU per GB. MB = 10^6 bytes. Prints one JSON line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_util.h"

#define MiB (1024 * 1024)

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("ref_stream: connect");
        return -1;
    }
    return fd;
}

/* The peer (child): sends size bytes in chunk writes. */
static int peer_send(int port, int64_t size, size_t chunk)
{
    uint8_t *buf = malloc(chunk);
    int fd = connect_to(port);
    if (!buf || fd < 0)
        return 1;
    bench_fill_pattern(buf, chunk, 11);
    for (int64_t left = size; left > 0;) {
        size_t n = left < (int64_t)chunk ? (size_t)left : chunk;
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            perror("ref_stream: write");
            return 1;
        }
        left -= w;
    }
    close(fd);
    free(buf);
    return 0;
}

/* The peer (child): reads until EOF; exits 0 when it got size bytes. */
static int peer_recv(int port, int64_t size)
{
    uint8_t *buf = malloc(MiB);
    int fd = connect_to(port);
    if (!buf || fd < 0)
        return 1;
    int64_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf, MiB);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += r;
    }
    close(fd);
    free(buf);
    return got == size ? 0 : 1;
}

static int read_full(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return got ? (int)-1 : 0;
        got += (size_t)r;
    }
    return 1;
}

/* The measured side of sink: returns bytes appended or -1. */
static int64_t sink(int cfd, int ffd, size_t wsize, int sync_mib, int64_t *syncs)
{
    uint8_t *buf = malloc(wsize);
    if (!buf)
        return -1;
    int64_t total = 0, since = 0;
    for (;;) {
        int r = read_full(cfd, buf, wsize);
        if (r < 0) { /* the last piece may be short: size need not be a multiple */
            free(buf);
            return -1;
        }
        if (r == 0)
            break;
        if (bench_write_all(ffd, buf, wsize) < 0) {
            perror("ref_stream: append");
            free(buf);
            return -1;
        }
        total += (int64_t)wsize;
        since += (int64_t)wsize;
        if (sync_mib && since >= MiB) {
            if (fdatasync(ffd) < 0) {
                perror("ref_stream: fdatasync");
                free(buf);
                return -1;
            }
            (*syncs)++;
            since = 0;
        }
    }
    free(buf);
    return total;
}

static int64_t source(int cfd, int ffd, int64_t size, size_t chunk)
{
    off_t off = 0;
    while (off < size) {
        size_t n = size - off < (int64_t)chunk ? (size_t)(size - off) : chunk;
        ssize_t w = sendfile(cfd, ffd, &off, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("ref_stream: sendfile");
            return -1;
        }
    }
    shutdown(cfd, SHUT_WR);
    return (int64_t)off;
}

static int make_file(const char *path, int64_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    uint8_t *buf = malloc(MiB);
    if (fd < 0 || !buf) {
        free(buf);
        return -1;
    }
    bench_fill_pattern(buf, MiB, 13);
    for (int64_t left = size; left > 0; left -= MiB)
        if (bench_write_all(fd, buf, left < MiB ? (size_t)left : MiB) < 0) {
            free(buf);
            close(fd);
            return -1;
        }
    free(buf);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "sink") && strcmp(argv[1], "source"))) {
        fprintf(stderr, "usage: ref_stream sink DIR SIZE [--write BYTES] [--sync-mib]\n"
                        "       ref_stream source DIR SIZE [--chunk BYTES]\n");
        return 2;
    }
    int is_sink = !strcmp(argv[1], "sink");
    int64_t size = bench_parse_size(argv[3]);
    int64_t wsize = 256 * 1024, chunk = MiB;
    int sync_mib = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--sync-mib"))
            sync_mib = 1;
        else if (!strcmp(argv[i], "--write") && i + 1 < argc)
            wsize = bench_parse_size(argv[++i]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            chunk = bench_parse_size(argv[++i]);
        else
            return 2;
    }
    if (size <= 0 || wsize <= 0 || chunk <= 0)
        return 2;
    size -= size % wsize; /* whole appends */
    char path[4096];
    snprintf(path, sizeof path, "%s/ref-stream-%d.bin", argv[2], (int)getpid());
    int ffd = is_sink ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644)
                      : make_file(path, size);
    if (ffd < 0) {
        perror("ref_stream: data file");
        return 1;
    }

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
        perror("ref_stream: listen");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0)
        _exit(is_sink ? peer_send(ntohs(a.sin_port), size, (size_t)wsize)
                      : peer_recv(ntohs(a.sin_port), size));
    int cfd = accept(lfd, NULL, NULL);
    if (cfd < 0) {
        perror("ref_stream: accept");
        kill(pid, SIGKILL);
        return 1;
    }
    double c0 = cpu_now();
    int64_t t0 = bench_now_ns(), syncs = 0;
    int64_t moved = is_sink ? sink(cfd, ffd, (size_t)wsize, sync_mib, &syncs)
                            : source(cfd, ffd, size, (size_t)chunk);
    int64_t t1 = bench_now_ns();
    double cpu = cpu_now() - c0;
    close(cfd);
    int status = 0;
    waitpid(pid, &status, 0);
    close(ffd);
    unlink(path);
    if (moved != size || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "ref_stream: moved %lld of %lld bytes\n", (long long)moved,
                (long long)size);
        return 1;
    }
    double secs = (double)(t1 - t0) / 1e9;
    bench_json_t j;
    bench_json_begin(&j, stdout);
    bench_json_str(&j, "mode", is_sink ? (sync_mib ? "sink_sync" : "sink") : "source");
    bench_json_int(&j, "bytes", size);
    bench_json_int(&j, "piece", is_sink ? wsize : chunk);
    bench_json_num(&j, "mbps", (double)size / secs / 1e6);
    bench_json_num(&j, "cpu_s", cpu);
    bench_json_num(&j, "cpu_s_per_gb", cpu / ((double)size / 1e9));
    bench_json_int(&j, "fsyncs", syncs);
    bench_json_end(&j);
    return 0;
}
