/*
 * Reference broker: librdkafka's in-memory mock cluster (one broker) in its own process, so
 * its CPU time and memory can be read from /proc like Depot's.
 *
 *   mock_broker [TOPIC:PARTITIONS ...]
 *
 * Prints the bootstrap address ("127.0.0.1:PORT") on one line, then serves until stdin
 * closes or SIGTERM/SIGINT. Topics named on the command line are created up front.
 * Note: the mock keeps at most ~5 MB (or 100,000 batches) per partition and drops the
 * oldest beyond that, and never touches a disk; scenarios that compare against it size
 * their data to fit.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The handle only hosts the mock; keep its own background chatter quiet. */
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "mock_broker: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc) {
        fprintf(stderr, "mock_broker: cannot create mock cluster\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        char name[256];
        const char *colon = strrchr(argv[i], ':');
        int parts = colon ? atoi(colon + 1) : 1;
        size_t n = colon ? (size_t)(colon - argv[i]) : strlen(argv[i]);
        if (n >= sizeof name || parts < 1) {
            fprintf(stderr, "mock_broker: bad topic spec %s\n", argv[i]);
            return 2;
        }
        memcpy(name, argv[i], n);
        name[n] = 0;
        if (rd_kafka_mock_topic_create(mc, name, parts, 1)) {
            fprintf(stderr, "mock_broker: cannot create %s\n", name);
            return 1;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        int r = poll(&p, 1, 200);
        if (r > 0) {
            char c[64];
            if (read(0, c, sizeof c) <= 0)
                break;
        }
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
