/*
 * depotctl uplink status [--data-dir DIR] [--json]
 *
 * Prints the store-and-forward uplink's state, per topic-partition: the local log end, the
 * forwarded offset (everything below it is acknowledged by the central cluster), the lag in
 * records and bytes, plus the link state, the last error and the time of the last success,
 * and how exactly once is kept: transactions (with the last commit) or read-back (with why).
 * The broker rewrites DIR/uplink.status every second (format: broker/uplink/up_state.c); this
 * reads it, so it works on the box itself without any Kafka protocol round trip. DIR is the
 * broker's first log.dirs entry (default ./data, as `make run` uses).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "client/depotctl.h"

#define MAX_FIELDS 24

typedef struct {
    char *k[MAX_FIELDS], *v[MAX_FIELDS];
    int n;
} fields_t;

/* Splits "kind\tk=v\tk=v" in place. Returns the kind. */
static const char *split(char *line, fields_t *f)
{
    f->n = 0;
    line[strcspn(line, "\n")] = 0;
    char *save = NULL;
    const char *kind = strtok_r(line, "\t", &save);
    for (char *tok = strtok_r(NULL, "\t", &save); tok && f->n < MAX_FIELDS;
         tok = strtok_r(NULL, "\t", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq = 0;
        f->k[f->n] = tok;
        f->v[f->n++] = eq + 1;
    }
    return kind ? kind : "";
}

static const char *get(const fields_t *f, const char *k)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->k[i], k)) return f->v[i];
    return "";
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static bool numeric(const char *s)
{
    if (*s == '-') s++;
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

static void json_obj(const fields_t *f)
{
    putchar('{');
    for (int i = 0; i < f->n; i++) {
        printf("%s", i ? ", " : "");
        json_str(f->k[i]);
        printf(": ");
        if (numeric(f->v[i]))
            printf("%s", f->v[i]);
        else
            json_str(f->v[i]);
    }
    putchar('}');
}

static void when(const char *ms, char *buf, size_t len)
{
    long long v = atoll(ms);
    if (v <= 0) {
        snprintf(buf, len, "never");
        return;
    }
    time_t t = (time_t)(v / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    struct timeval now;
    gettimeofday(&now, NULL);
    long long ago = ((long long)now.tv_sec * 1000 + now.tv_usec / 1000 - v) / 1000;
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ (%llds ago)", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ago);
}

/* Exactly once by transactions (with the last commit) or by the read-back (with why). */
static void print_mode(const fields_t *f)
{
    const char *mode = get(f, "mode");
    if (!strcmp(mode, "transactions")) {
        char c[64];
        when(get(f, "last_commit_ms"), c, sizeof c);
        printf("Mode: transactions  Transactional id: %s  Commits: %s\nLast commit: %s\n",
               get(f, "transactional_id"), get(f, "commits"), c);
    } else if (*mode) {
        printf("Mode: %s%s%s\n", mode, *get(f, "mode_reason") ? "  Why: " : "",
               get(f, "mode_reason"));
    } else {
        printf("Mode: - (no producer session yet)\n");
    }
}

int cmd_uplink(int argc, char **argv)
{
    const char *dir = "./data";
    bool json = false;
    if (argc < 1 || strcmp(argv[0], "status")) return ctl_bad("%s", "uplink needs: status");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data-dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else
            return ctl_bad("uplink status: unknown argument '%s'", argv[i]);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/uplink.status", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "depotctl: no uplink status in %s (is uplink.bootstrap.servers set and "
                        "the broker running with log.dirs=%s?)\n", dir, dir);
        return 1;
    }
    char line[4096];
    fields_t fl;
    int nparts = 0;
    bool started = false; /* json: the uplink line (always first) opened the object */
    while (fgets(line, sizeof line, f)) {
        const char *kind = split(line, &fl);
        if (json) {
            if (!strcmp(kind, "uplink") && !started) {
                printf("{\"link\": ");
                json_obj(&fl);
                printf(", \"partitions\": [");
                started = true;
            } else if (!strcmp(kind, "part") && started) {
                printf("%s", nparts++ ? ", " : "");
                json_obj(&fl);
            }
            continue;
        }
        if (!strcmp(kind, "uplink")) {
            char ok[64], upd[64];
            when(get(&fl, "last_success_ms"), ok, sizeof ok);
            when(get(&fl, "updated_ms"), upd, sizeof upd);
            printf("Link: %s  Central: %s  Resyncs: %s\n", get(&fl, "state"),
                   get(&fl, "bootstrap"), get(&fl, "resyncs"));
            print_mode(&fl);
            printf("Last success: %s\nLast error: %s\nStatus written: %s\n\n", ok,
                   *get(&fl, "last_error") ? get(&fl, "last_error") : "-", upd);
            printf("%-28s %5s %-30s %12s %12s %10s %12s %8s\n", "TOPIC", "PART", "CENTRAL",
                   "LOCAL-END", "FORWARDED", "LAG", "LAG-BYTES", "DROPPED");
        } else if (!strcmp(kind, "part")) {
            char central[300];
            const char *cp = get(&fl, "central_partition");
            /* by-key: fewer central partitions, records go by their key's hash */
            snprintf(central, sizeof central, "%s/%s", get(&fl, "central"),
                     !strcmp(get(&fl, "hashed"), "1") ? "by-key" : strcmp(cp, "-1") ? cp : "-");
            printf("%-28s %5s %-30s %12s %12s %10s %12s %8s\n", get(&fl, "topic"),
                   get(&fl, "partition"), central, get(&fl, "local_end"), get(&fl, "forwarded"),
                   get(&fl, "lag_records"), get(&fl, "lag_bytes"), get(&fl, "dropped_records"));
            nparts++;
        }
    }
    fclose(f);
    if (json) printf(started ? "]}\n" : "{}\n");
    return 0;
}
