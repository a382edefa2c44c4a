/* depot: the broker executable. Parses the command line and configuration, runs the loop. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/core/config.h"
#include "broker/core/server.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: depot [--config FILE] [--set KEY=VALUE]...\n"
                 "       depot --print-config-doc | --version | --help\n"
                 "\n"
                 "Depot is a single-node broker that speaks the Apache Kafka wire protocol.\n"
                 "  --config FILE       read a Kafka-style server.properties file\n"
                 "  --set KEY=VALUE     override one key (after the file); repeatable\n"
                 "  --print-config-doc  print the configuration reference (markdown)\n"
                 "Keys and defaults: docs/configuration.md. Stop with SIGTERM or Ctrl-C.\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    const char **sets = calloc((size_t)argc, sizeof *sets);
    int n_sets = 0;
    if (!sets) return 1;
    /* Produce frames and fetch responses are megabytes each. Above glibc's default mmap
     * threshold every one would be a fresh mmap, page-faulted in and unmapped again: bench/
     * measured about 3x the CPU per GB from that alone. Keep them in the heap instead, and
     * give memory back to the OS once more than 16 MiB is free at its top (idle RSS). */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            free(sets);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("depot %s\n", DEPOT_VERSION);
            free(sets);
            return 0;
        } else if (!strcmp(a, "--print-config-doc")) {
            kb_config_print_doc(stdout);
            free(sets);
            return 0;
        } else if ((!strcmp(a, "--config") || !strcmp(a, "-c")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strncmp(a, "--config=", 9)) {
            path = a + 9;
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            sets[n_sets++] = a + 6;
        } else if (a[0] != '-' && !path) {
            path = a; /* like kafka-server-start.sh server.properties */
        } else {
            fprintf(stderr, "depot: unknown argument '%s'\n", a);
            usage(stderr);
            free(sets);
            return 2;
        }
    }

    kb_config_t cfg;
    char err[512] = "";
    int rc = kb_config_load(&cfg, path, sets, n_sets, err, sizeof err, NULL);
    free(sets);
    if (rc < 0) {
        fprintf(stderr, "depot: configuration error: %s\n", err);
        return 2;
    }
    kb_log_set_level(cfg.log_level);
    kb_log_set_format(cfg.log_format);

    uv_loop_t loop;
    uv_loop_init(&loop);
    kb_broker_t *b = NULL;
    int exit_code = 0;
    if (kb_broker_new(&cfg, &loop, &b) < 0) {
        exit_code = 1;
    } else if (kb_broker_start(b) < 0) {
        exit_code = 1;
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
        kb_log(KB_LOG_INFO, "Depot stopped");
    }
    kb_broker_free(b);
    uv_loop_close(&loop);
    kb_config_deinit(&cfg);
    return exit_code;
}
