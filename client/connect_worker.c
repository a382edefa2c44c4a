/*
 * The standalone worker: loads the worker and connector property files, opens one task per
 * connector (the file connectors never need more than one), and runs them in one loop,
 * alternating between them. SIGTERM/SIGINT: the loop ends, sources record their offsets,
 * sinks commit, and the process exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/connect_int.h"
#include "client/kc_int.h"

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static int load(const char *path, kc_props_t *p)
{
    int rc = kc_props_load(p, path);
    if (rc) fprintf(stderr, "connect: cannot read %s: %s\n", path, k_strerror(rc));
    return rc;
}

static void task_free(kc_task_t *t)
{
    kc_connector_config_deinit(&t->cfg);
    kc_props_free(&t->props);
    kc_client_free(t->c);
}

int kc_connect_standalone(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: depotctl connect-standalone WORKER.properties CONNECTOR.properties...\n",
              stderr);
        return 2;
    }
    kc_props_t wp;
    char err[512];
    kc_worker_config_t w;
    if (load(argv[0], &wp)) return 1;
    if (kc_worker_config(&wp, &w, err, sizeof err)) {
        fprintf(stderr, "connect: %s: %s\n", argv[0], err);
        kc_props_free(&wp);
        return 1;
    }
    int n = argc - 1, rc = 0, opened = 0;
    kc_task_t *tasks = calloc((size_t)n, sizeof *tasks);
    if (!tasks) {
        kc_props_free(&wp);
        return 1;
    }
    for (int i = 0; i < n && !rc; i++) {
        kc_task_t *t = &tasks[i];
        t->fd = t->out_fd = -1;
        t->w = &w;
        if (load(argv[i + 1], &t->props)) {
            rc = 1;
            break;
        }
        if (kc_connector_config(&t->props, &t->cfg, err, sizeof err)) {
            fprintf(stderr, "connect: %s: %s\n", argv[i + 1], err);
            rc = 1;
            break;
        }
        for (int k = 0; k < i; k++)
            if (!strcmp(tasks[k].cfg.name, t->cfg.name)) {
                fprintf(stderr, "connect: %s: a connector named %s is already running\n",
                        argv[i + 1], t->cfg.name);
                rc = 1;
            }
        if (rc) break;
        char cid[300];
        snprintf(cid, sizeof cid, "connector-%s", t->cfg.name);
        kc_config_t cc = {
            .bootstrap = w.bootstrap, .client_id = cid, .retries = 3, .timeout_ms = 15000};
        t->c = kc_client_new(&cc);
        if (!t->c) {
            rc = 1;
            break;
        }
    }
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    signal(SIGPIPE, SIG_IGN);
    /* Connecting waits for the broker: a worker may start before it. */
    for (int i = 0; i < n && !rc && !stopping; i++) {
        kc_task_t *t = &tasks[i];
        while (!stopping && kc_client_connect(t->c)) {
            fprintf(stderr, "connect: %s: %s (retrying)\n", t->cfg.name, kc_client_errmsg(t->c));
            kc_sleep_ms(1000);
        }
        if (stopping) break;
        int r = t->cfg.kind == KC_FILE_SOURCE ? kc_source_open(t) : kc_sink_open(t);
        opened = i + 1;
        if (r)
            rc = 1;
        else
            fprintf(stderr, "connect: %s started (%s)\n", t->cfg.name,
                    t->cfg.kind == KC_FILE_SOURCE ? "FileStreamSource" : "FileStreamSink");
    }
    int sinks = 0;
    for (int i = 0; i < opened; i++)
        sinks += tasks[i].cfg.kind == KC_FILE_SINK;
    while (!rc && !stopping) {
        int moved = 0;
        for (int i = 0; i < opened && !rc && !stopping; i++) {
            kc_task_t *t = &tasks[i];
            /* Sinks wait a little for records (that also paces the loop); sources never wait. */
            int r = t->cfg.kind == KC_FILE_SOURCE ? kc_source_step(t)
                                                  : kc_sink_step(t, 50 / (sinks ? sinks : 1));
            if (r < 0)
                rc = 1;
            else
                moved += r;
        }
        if (!moved && !sinks && !stopping) kc_sleep_ms(50);
    }
    for (int i = 0; i < opened; i++)
        if (tasks[i].cfg.kind == KC_FILE_SOURCE)
            kc_source_close(&tasks[i]);
        else
            kc_sink_close(&tasks[i]);
    for (int i = 0; i < n; i++)
        task_free(&tasks[i]);
    free(tasks);
    kc_props_free(&wp);
    return rc;
}
