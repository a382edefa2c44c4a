/* depot: the broker executable. Parses the command line and configuration, runs the loop. */
#include <errno.h>
#include <malloc.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/auth/creds.h"
#include "broker/core/config.h"
#include "broker/core/notify.h"
#include "broker/core/server.h"
#include "broker/uplink/uplink.h"
#include "storage/ks_io.h"

/*
 * Test hooks (tests/e2e/test_audit_loop.py), through the storage I/O seam; unset in
 * production. DEPOT_TEST_FSYNC_DELAY_MS=N makes every data fdatasync take N ms longer, as a
 * slow flash card would, so a test can show which waits for an fsync stall the loop.
 * DEPOT_TEST_FSYNC_EIO=SUBSTR:FLAG makes an fdatasync of a file whose path contains SUBSTR
 * fail with EIO while the file FLAG exists (a flash error at a moment the test picks).
 */
static long fsync_delay_ms;
static char eio_sub[256], eio_flag[1024];

static int hooked_fdatasync(int fd)
{
    struct timespec ts = {fsync_delay_ms / 1000, (fsync_delay_ms % 1000) * 1000000L};
    while (fsync_delay_ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    char link[64], path[1024];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = eio_sub[0] && access(eio_flag, F_OK) == 0
                    ? readlink(link, path, sizeof path - 1)
                    : -1;
    if (n > 0 && (path[n] = 0, strstr(path, eio_sub))) {
        errno = EIO;
        return -1;
    }
    return ks_io_posix.fdatasync(fd);
}

static void test_hooks(void)
{
    const char *v = getenv("DEPOT_TEST_FSYNC_DELAY_MS");
    fsync_delay_ms = v ? strtol(v, NULL, 10) : 0;
    if (fsync_delay_ms < 0 || fsync_delay_ms > 60000) fsync_delay_ms = 0;
    const char *e = getenv("DEPOT_TEST_FSYNC_EIO"), *colon = e ? strchr(e, ':') : NULL;
    if (colon && colon > e && (size_t)(colon - e) < sizeof eio_sub) {
        snprintf(eio_sub, sizeof eio_sub, "%.*s", (int)(colon - e), e);
        snprintf(eio_flag, sizeof eio_flag, "%s", colon + 1);
    }
    if (fsync_delay_ms > 0 || eio_sub[0]) {
        ks_io.fdatasync = hooked_fdatasync; /* before any store is open (ks_io.h) */
        fprintf(stderr, "depot: test hook: every fdatasync is %ld ms slower%s%s\n",
                fsync_delay_ms, eio_sub[0] ? "; EIO for paths with " : "", eio_sub);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: depot [--config FILE] [--set KEY=VALUE]...\n"
                 "       depot [--config FILE] --add-scram 'SCRAM-SHA-256=[name=U,password=P]'...\n"
                 "       depot --print-config-doc | --version | --help\n"
                 "       depot --print-config-properties [KEY=VALUE]...\n"
                 "\n"
                 "Depot is a single-node broker that speaks the Apache Kafka wire protocol.\n"
                 "  --config FILE       read a Kafka-style server.properties file\n"
                 "  --set KEY=VALUE     override one key (after the file); repeatable\n"
                 "  --add-scram CRED    store a SCRAM credential in log.dirs and exit (before any\n"
                 "                      listener opens; repeatable; iterations= accepted)\n"
                 "  --print-config-doc  print the configuration reference (markdown)\n"
                 "  --print-config-properties [KEY=VALUE]...\n"
                 "                      print a server.properties: the given lines set, every\n"
                 "                      key documented and commented out at its default\n"
                 "Keys and defaults: docs/configuration.md. Stop with SIGTERM or Ctrl-C.\n");
}

/* --add-scram: writes the credentials into the first log dir and exits, as Kafka's
 * kafka-storage format --add-scram bootstraps users before any listener is open. */
static int add_scram(const kb_config_t *cfg, const char **args, int n)
{
    char err[512] = "";
    kb_creds_t *c = NULL;
    if (mkdir(cfg->log_dirs[0], 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "depot: %s: %s\n", cfg->log_dirs[0], strerror(errno));
        return 1;
    }
    if (kb_creds_open(cfg->log_dirs[0], &c, err, sizeof err) < 0) {
        fprintf(stderr, "depot: %s\n", err);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char user[256];
        int mech = 0;
        if (kb_creds_add_arg(c, args[i], user, sizeof user, &mech, err, sizeof err) < 0) {
            fprintf(stderr, "depot: --add-scram: %s\n", err);
            rc = 2;
        } else {
            printf("depot: %s credential for %s stored in %s\n", kb_scram_mech_name(mech), user,
                   cfg->log_dirs[0]);
        }
    }
    if (rc == 0 && kb_creds_save(c) < 0) {
        fprintf(stderr, "depot: cannot write the credential file in %s\n", cfg->log_dirs[0]);
        rc = 1;
    }
    kb_creds_free(c);
    return rc;
}

/* The command line. Returns -1 to go on, else the exit status (--help, --version, a bad
 * argument). sets/scram have argc slots (owned by the caller). */
typedef struct {
    const char *path;
    const char **sets, **scram;
    int n_sets, n_scram;
} args_t;

static int parse_args(int argc, char **argv, args_t *a)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(s, "--version")) {
            printf("depot %s (librdkafka %s)\n", DEPOT_VERSION, kb_uplink_client_version());
            return 0;
        } else if (!strcmp(s, "--print-config-doc")) {
            kb_config_print_doc(stdout);
            return 0;
        } else if (!strcmp(s, "--print-config-properties")) {
            /* the remaining arguments are "key=value" lines to set (the package's choices) */
            kb_config_print_properties(stdout, (const char *const *)argv + i + 1, argc - i - 1);
            return 0;
        } else if ((!strcmp(s, "--config") || !strcmp(s, "-c")) && i + 1 < argc) {
            a->path = argv[++i];
        } else if (!strncmp(s, "--config=", 9)) {
            a->path = s + 9;
        } else if (!strcmp(s, "--set") && i + 1 < argc) {
            a->sets[a->n_sets++] = argv[++i];
        } else if (!strncmp(s, "--set=", 6)) {
            a->sets[a->n_sets++] = s + 6;
        } else if (!strcmp(s, "--add-scram") && i + 1 < argc) {
            a->scram[a->n_scram++] = argv[++i];
        } else if (s[0] != '-' && !a->path) {
            a->path = s; /* like kafka-server-start.sh server.properties */
        } else {
            fprintf(stderr, "depot: unknown argument '%s'\n", s);
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    /* First: a SIGTERM during configuration or start-up waits for the loop's handler (a clean
     * stop) instead of killing the process half-started, and a SIGHUP (TLS reload) is not
     * fatal then either. */
    kb_broker_hold_signals();
    args_t a = {NULL, calloc((size_t)argc, sizeof(char *)), calloc((size_t)argc, sizeof(char *)),
                0, 0};
    if (!a.sets || !a.scram) return 1;
    /* Produce frames and fetch responses are megabytes each. Above glibc's default mmap
     * threshold every one would be a fresh mmap, page-faulted in and unmapped again: bench/
     * measured about 3x the CPU per GB from that alone. Keep them in the heap instead, and
     * give memory back to the OS once more than 16 MiB is free at its top (idle RSS). */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    int done = parse_args(argc, argv, &a);
    const char **sets = a.sets, **scram = a.scram;
    const char *path = a.path;
    int n_sets = a.n_sets, n_scram = a.n_scram;
    if (done >= 0) {
        free(sets);
        free(scram);
        return done;
    }

    kb_config_t cfg;
    char err[512] = "";
    int rc = kb_config_load(&cfg, path, sets, n_sets, err, sizeof err, NULL);
    free(sets);
    if (rc < 0) {
        fprintf(stderr, "depot: configuration error: %s\n", err);
        free(scram);
        return 2;
    }
    kb_log_set_level(cfg.log_level);
    kb_log_set_format(cfg.log_format);
    if (n_scram > 0) {
        rc = add_scram(&cfg, scram, n_scram);
        free(scram);
        kb_config_deinit(&cfg);
        return rc;
    }
    free(scram);

    test_hooks();
    /* Tests only: a slow flash chip (storage/ks_io.h), so e2e tests can show which waits
     * stall the loop. Never set in production. */
    const char *slow = getenv("DEPOT_TEST_SLOW_FSYNC_MS");
    if (slow && atoi(slow) > 0) {
        ks_io_slow_syncs(atoi(slow));
        kb_log(KB_LOG_WARN, "DEPOT_TEST_SLOW_FSYNC_MS: every fsync sleeps %d ms first",
               atoi(slow));
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    kb_broker_t *b = NULL;
    int exit_code = 0;
    if (kb_broker_new(&cfg, &loop, &b) < 0) {
        exit_code = 1;
    } else if (kb_broker_start(b) < 0) {
        exit_code = 1;
    } else {
        /* systemd (Type=notify): the store is open and every listener accepts. */
        if (kb_notify("READY=1\nSTATUS=serving") < 0)
            kb_log(KB_LOG_WARN, "could not notify NOTIFY_SOCKET of readiness");
        uv_run(&loop, UV_RUN_DEFAULT);
        kb_log(KB_LOG_INFO, "Depot stopped");
    }
    kb_broker_free(b);
    uv_loop_close(&loop);
    kb_config_deinit(&cfg);
    return exit_code;
}
