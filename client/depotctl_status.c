/*
 * depotctl status: the dashboard's overview in the terminal. Reads GET /api/overview from the
 * broker's metrics listener (metrics.listeners) rather than the Kafka protocol, because the
 * flash budget, process figures and history exist only there, and one request gives a
 * consistent picture.
 *
 *   depotctl status [--metrics-url http://127.0.0.1:9644] [--json] [--timeout-ms MS]
 *
 * Exit status: 0 when the broker answered and is ready, 1 when it answered not ready or could
 * not be reached (the reason on stderr), 2 for usage errors.
 */
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/depotctl.h"

#define MAX_RESPONSE (16 << 20)

static void human(double n, char *out, size_t cap)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while ((n >= 1024 || n <= -1024) && i < 4) {
        n /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", n, u[i]);
}

/* "http://host:port[/]" → host, port. */
static int parse_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
    if (strncasecmp(url, "http://", 7)) return -1;
    const char *h = url + 7, *end = h + strcspn(h, "/");
    const char *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb || rb[1] != ':') return -1;
        colon = rb + 1;
        h++;
        if ((size_t)(rb - h) >= hostlen) return -1;
        snprintf(host, hostlen, "%.*s", (int)(rb - h), h);
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        if (!colon || (size_t)(colon - h) >= hostlen) return -1;
        snprintf(host, hostlen, "%.*s", (int)(colon - h), h);
    }
    if (end - colon - 1 <= 0 || (size_t)(end - colon) > portlen) return -1;
    snprintf(port, portlen, "%.*s", (int)(end - colon - 1), colon + 1);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* GET path over HTTP/1.1 with Connection: close; returns the body (malloc'd) or NULL with a
 * reason in err. *status gets the HTTP status. */
static char *http_get(const char *url, const char *path, long timeout_ms, int *status, char *err,
                      size_t errlen)
{
    char host[256], port[16];
    if (parse_url(url, host, sizeof host, port, sizeof port) < 0) {
        snprintf(err, errlen, "bad --metrics-url '%s' (want http://host:port)", url);
        return NULL;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return NULL;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            snprintf(err, errlen, "cannot connect to %s: %s", url, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) return NULL;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: depotctl\r\n"
                     "Accept: application/json\r\nConnection: close\r\n\r\n",
                     path, host, port);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int64_t deadline = now_ms() + timeout_ms;
    bool ok = send(fd, req, (size_t)n, MSG_NOSIGNAL) == n;
    while (ok) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            snprintf(err, errlen, "%s: no answer within %ld ms", url, timeout_ms);
            ok = false;
            break;
        }
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *b = cap <= MAX_RESPONSE ? realloc(buf, cap) : NULL;
            if (!b) {
                snprintf(err, errlen, "%s: answer too large", url);
                ok = false;
                break;
            }
            buf = b;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0) {
            snprintf(err, errlen, "%s: %s", url, strerror(errno));
            ok = false;
        }
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    if (!ok || !buf) {
        if (ok) snprintf(err, errlen, "%s: empty answer", url);
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    char *body = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", status) != 1 || !body) {
        snprintf(err, errlen, "%s: not an HTTP answer", url);
        free(buf);
        return NULL;
    }
    body += 4;
    memmove(buf, body, strlen(body) + 1);
    return buf;
}

static json_int_t jint(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void print_header(json_t *o)
{
    double up = json_number_value(json_object_get(o, "uptime_s"));
    printf("Depot %s  node %d  cluster %s  up %dh %02dm  %s\n", jstr(o, "version"),
           (int)jint(o, "node_id"), jstr(o, "cluster_id"), (int)(up / 3600),
           (int)((long)up % 3600) / 60,
           json_is_true(json_object_get(o, "ready")) ? "ready" : "NOT READY");
    json_t *f = json_object_get(o, "flash");
    char used[32], free_[32], budget[32];
    human((double)jint(f, "used_bytes"), used, sizeof used);
    human((double)jint(f, "free_bytes"), free_, sizeof free_);
    if (jint(f, "budget_bytes") > 0) {
        human((double)jint(f, "budget_bytes"), budget, sizeof budget);
        printf("Flash      %s used of %s budget (%.1f%%), %s free\n", used, budget,
               100.0 * (double)jint(f, "used_bytes") / (double)jint(f, "budget_bytes"), free_);
    } else {
        printf("Flash      %s used, %s free on the file system (no budget set)\n", used, free_);
    }
    json_t *p = json_object_get(o, "process");
    char rss[32];
    human((double)jint(p, "rss_bytes"), rss, sizeof rss);
    printf("Process    RSS %s, CPU %.1f s, %d/%d fds\n", rss,
           json_number_value(json_object_get(p, "cpu_seconds")), (int)jint(p, "open_fds"),
           (int)jint(p, "max_fds"));
    printf("Listeners ");
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(o, "listeners"), i, l) printf(
        " %s %s (%d conn)", jstr(l, "name"), jstr(l, "address"), (int)jint(l, "connections"));
    json_array_foreach(json_object_get(o, "http"), i, l)
        printf("  http %s (%d conn)", jstr(l, "name"), (int)jint(l, "connections"));
    printf("\n");
}

/* Rates over the last history interval. */
static void print_rates(json_t *o)
{
    json_t *h = json_object_get(o, "history");
    json_t *t = json_object_get(h, "t_ms"), *bi = json_object_get(h, "bytes_in"),
           *mi = json_object_get(h, "messages_in");
    size_t n = json_array_size(t);
    if (n < 2) {
        printf("Rates      (collecting samples)\n");
        return;
    }
    double dt = (double)(json_integer_value(json_array_get(t, n - 1)) -
                         json_integer_value(json_array_get(t, n - 2))) /
                1000.0;
    double db = (double)(json_integer_value(json_array_get(bi, n - 1)) -
                         json_integer_value(json_array_get(bi, n - 2)));
    double dm = (double)(json_integer_value(json_array_get(mi, n - 1)) -
                         json_integer_value(json_array_get(mi, n - 2)));
    char b[32];
    human(dt > 0 && db > 0 ? db / dt : 0, b, sizeof b);
    printf("Rates      in %s/s, %.1f msgs/s (last %.0f s)\n", b, dt > 0 && dm > 0 ? dm / dt : 0,
           dt);
}

static void print_tables(json_t *o)
{
    size_t i, k;
    json_t *t, *g, *p;
    printf("\n%-40s %10s %12s %14s\n", "TOPIC", "PARTITIONS", "SIZE", "RECORDS");
    json_array_foreach(json_object_get(o, "topics"), i, t)
    {
        if (json_is_true(json_object_get(t, "internal"))) continue;
        char size[32];
        human((double)jint(t, "size_bytes"), size, sizeof size);
        printf("%-40s %10d %12s %14lld\n", jstr(t, "name"), (int)jint(t, "partitions"), size,
               (long long)jint(t, "records"));
    }
    printf("\n%-40s %-20s %8s %14s\n", "GROUP", "STATE", "MEMBERS", "LAG");
    json_array_foreach(json_object_get(o, "groups"), i, g)
    {
        printf("%-40s %-20s %8d %14lld\n", jstr(g, "group"), jstr(g, "state"),
               (int)jint(g, "members"), (long long)jint(g, "lag"));
        json_array_foreach(json_object_get(g, "partitions"), k, p)
            printf("    %s[%d] committed %lld, end %lld, lag %lld\n", jstr(p, "topic"),
                   (int)jint(p, "partition"), (long long)jint(p, "committed"),
                   (long long)jint(p, "log_end"), (long long)jint(p, "lag"));
    }
}

int ctl_status(int argc, char **argv)
{
    const char *url = "http://127.0.0.1:9644";
    bool raw = false;
    long timeout_ms = 5000;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--metrics-url") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            raw = true;
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            timeout_ms = strtol(argv[++i], NULL, 10);
        else
            return ctl_bad("status: unknown option '%s'", argv[i]);
    }
    if (timeout_ms <= 0) return ctl_bad("status: bad --timeout-ms%s", "");
    char err[512] = "";
    int status = 0;
    char *body = http_get(url, "/api/overview", timeout_ms, &status, err, sizeof err);
    if (!body) {
        fprintf(stderr, "depotctl: status: %s\n", err);
        return 1;
    }
    if (status != 200) {
        fprintf(stderr, "depotctl: status: %s/api/overview answered %d\n", url, status);
        free(body);
        return 1;
    }
    json_error_t je;
    json_t *o = json_loads(body, 0, &je);
    if (raw) fputs(body, stdout), fputc('\n', stdout);
    free(body);
    if (!o || !json_is_object(o)) {
        fprintf(stderr, "depotctl: status: bad JSON from %s: %s\n", url, o ? "" : je.text);
        json_decref(o);
        return 1;
    }
    if (!raw) {
        print_header(o);
        print_rates(o);
        print_tables(o);
    }
    int rc = json_is_true(json_object_get(o, "ready")) ? 0 : 1;
    json_decref(o);
    return rc;
}
