/*
 * Dynamic broker configs (see h_admin.h): the layer AlterConfigs / IncrementalAlterConfigs put
 * over server.properties, its persistence, and its subsystem.
 *
 * File <first log dir>/depot-broker-configs.properties, rewritten atomically (tmp, fsync,
 * rename, directory fsync) after every change, on libuv's threadpool, one write at a time in
 * the order the changes came (kb_dynconf_alter); the change goes live once it is durable:
 *
 *     # depot dynamic broker configs (AlterConfigs); applied over server.properties at start
 *     <source>.<key>=<value>        source 2 = this broker ("1"), 3 = cluster default ("")
 *
 * A line whose key is no longer dynamic or whose value no longer parses is skipped with a
 * warning at start (the static value stays).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/api/h_admin.h"
#include "broker/api/h_common.h"
#include "broker/core/util.h"
#include "protocol/kp_errors.h"

#define DYN_FILE "depot-broker-configs.properties"
#define MAX_ROWS 256

typedef struct dyn_job dyn_job_t;

typedef struct {
    kb_config_t static_cfg; /* shallow copy at start: only its scalar rows are read */
    int8_t source[MAX_ROWS];
    /* Changes waiting for their file write, oldest first; the head is being written. The
     * last one's next/src is the layer every new change is computed on. */
    dyn_job_t *q_head, *q_tail;
} dynconf_t;

/* One change of the layer on its way to disk. Heap, owned by the queue until done. */
struct dyn_job {
    uv_work_t work;
    dynconf_t *d; /* NULL once the subsystem closed under a running write */
    kb_broker_t *b;
    kb_req_t *req;
    kb_dynconf_done_fn done;
    void *ud;
    kb_config_t next; /* the whole config with this change (and those before it) */
    int8_t src[MAX_ROWS];
    char dir[4096];
    char *text; /* the file's bytes (open_memstream), owned */
    size_t len;
    int rc, err;
    const char *what;
    dyn_job_t *q_next;
};

static dynconf_t *state(kb_broker_t *b)
{
    void **slot = b ? kb_broker_slot(b, &kb_dynconf_subsys) : NULL;
    return slot ? *slot : NULL;
}

int kb_dynconf_source(kb_broker_t *b, int i)
{
    dynconf_t *d = state(b);
    return d && i >= 0 && i < MAX_ROWS ? d->source[i] : 0;
}

const kb_config_t *kb_dynconf_static(kb_broker_t *b)
{
    dynconf_t *d = state(b);
    return d ? &d->static_cfg : NULL;
}

char *kb_admin_cstr(kb_req_t *req, kp_str_t s)
{
    if (s.len < 0 || (s.len > 0 && memchr(s.ptr, 0, (size_t)s.len))) return NULL;
    char *c = kp_arena_alloc(&req->arena, (size_t)s.len + 1);
    if (!c) return NULL;
    kb_str_copy(s, c, (size_t)s.len + 1);
    return c;
}

static void path_of(kb_broker_t *b, char *buf, size_t len, const char *suffix)
{
    snprintf(buf, len, "%s/%s%s", kb_broker_config(b)->log_dirs[0], DYN_FILE, suffix);
}

/* The file's text for the layer of cfg (rows with a source), heap (*text, owned by the
 * caller); 0 or K_ERR_NOMEM. */
static int render(const kb_config_t *cfg, const int8_t *source, char **text, size_t *len)
{
    char val[1024];
    FILE *f = open_memstream(text, len);
    if (!f) return K_ERR_NOMEM;
    fprintf(f, "# depot dynamic broker configs (AlterConfigs); applied over server.properties "
               "at start\n");
    for (int i = 0; i < kb_config_count() && i < MAX_ROWS; i++) {
        if (!source[i]) continue;
        kb_config_value(cfg, i, val, sizeof val);
        fprintf(f, "%d.%s=%s\n", source[i], kb_config_info(i)->name, val);
    }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        free(*text);
        *text = NULL;
        return K_ERR_NOMEM;
    }
    return 0;
}

static void log_write_failure(const char *dir, int err, const char *what)
{
    kb_log(KB_LOG_ERROR, "%s/%s: cannot write dynamic broker configs: %s failed: %s", dir,
           DYN_FILE, what, strerror(err));
}

/* Loads the persisted layer into the live config. Bad lines are skipped with a warning. */
static void load(kb_broker_t *b, dynconf_t *d)
{
    char path[4096], why[200];
    path_of(b, path, sizeof path, "");
    FILE *f = fopen(path, "r");
    if (!f) return;
    kb_config_t *cfg = kb_broker_config_mut(b);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        line[strcspn(line, "\r\n")] = 0;
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq || line[0] < '2' || line[0] > '3' || line[1] != '.') continue;
        *eq = 0;
        int i = kb_config_find(line + 2);
        if (i < 0 || i >= MAX_ROWS || kb_config_set_dynamic(cfg, i, eq + 1, why, sizeof why)) {
            kb_log(KB_LOG_WARN, "%s: skipping %s=%s", path, line + 2, eq + 1);
            continue;
        }
        d->source[i] = (int8_t)(line[0] - '0');
        kb_log(KB_LOG_INFO, "dynamic broker config %s=%s", line + 2, eq + 1);
    }
    free(line);
    fclose(f);
}

static int dynconf_init(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_dynconf_subsys);
    if (!slot) return K_ERR_INVAL;
    dynconf_t *d = calloc(1, sizeof *d); /* owned by the slot until close */
    if (!d) return K_ERR_NOMEM;
    d->static_cfg = *kb_broker_config(b);
    *slot = d;
    load(b, d);
    ks_store_t *store = kb_broker_store(b);
    if (store) ks_store_set_defaults(store, &kb_broker_config(b)->topic_defaults);
    return 0;
}

static void job_free(dyn_job_t *j)
{
    free(j->text);
    free(j);
}

static void dynconf_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_dynconf_subsys);
    if (!slot || !*slot) return;
    dynconf_t *d = *slot;
    /* The write in flight finishes on its own (and fails its request); the ones behind it
     * never start. */
    dyn_job_t *j = d->q_head;
    if (j) {
        j->d = NULL;
        for (dyn_job_t *n = j->q_next; (j = n) != NULL;) {
            n = j->q_next;
            j->done(j->req, j->ud, KP_ERR_UNKNOWN_SERVER_ERROR, kp_str("The broker is stopping"));
            job_free(j);
        }
    }
    free(d);
    *slot = NULL;
}

const kb_subsys_t kb_dynconf_subsys = {
    .name = "dynamic-configs",
    .init = dynconf_init,
    .close = dynconf_close,
};

/* Applies one change to cfg/source; KP_ERR_NONE or an error with *msg. */
static int16_t change_one(kb_req_t *req, dynconf_t *d, kb_config_t *cfg, int8_t *source,
                          const kb_dynconf_change_t *c, int src, kp_str_t *msg)
{
    char why[200];
    int i = kb_config_find(c->name);
    if (i < 0 || i >= MAX_ROWS) {
        *msg = kb_arena_printf(&req->arena, "Unknown broker config name: %s", c->name);
        return KP_ERR_INVALID_CONFIG;
    }
    if (!kb_config_is_dynamic(i)) {
        *msg = kb_arena_printf(&req->arena, "Cannot update these configs dynamically: Set(%s)",
                               c->name);
        return KP_ERR_INVALID_REQUEST;
    }
    if (c->op == KB_CFG_APPEND || c->op == KB_CFG_SUBTRACT) {
        *msg = kb_arena_printf(&req->arena, "Config value %s is not allowed for config key: %s",
                               c->op == KB_CFG_APPEND ? "append" : "subtract", c->name);
        return KP_ERR_INVALID_CONFIG;
    }
    if (c->op == KB_CFG_DELETE) {
        kb_config_copy_value(cfg, &d->static_cfg, i);
        source[i] = 0;
        return KP_ERR_NONE;
    }
    if (kb_config_set_dynamic(cfg, i, c->value, why, sizeof why) < 0) {
        *msg = kb_arena_printf(&req->arena, "Invalid value %s for configuration %s: %s",
                               c->value, c->name, why);
        return KP_ERR_INVALID_CONFIG;
    }
    source[i] = (int8_t)src;
    return KP_ERR_NONE;
}

/* The live config becomes next (a change that is durable). */
static void apply(kb_broker_t *b, dynconf_t *d, const kb_config_t *next, const int8_t *src)
{
    *kb_broker_config_mut(b) = *next;
    memcpy(d->source, src, sizeof d->source);
    ks_store_t *store = kb_broker_store(b);
    if (store) ks_store_set_defaults(store, &next->topic_defaults);
}

static void job_work(uv_work_t *w)
{
    dyn_job_t *j = w->data;
    j->rc = kb_write_file_durably(j->dir, DYN_FILE, j->text, j->len, &j->err, &j->what);
}

static void job_after(uv_work_t *w, int status);

/* Starts the write of the queue's head; on a refusal the head fails at once. */
static void job_start(dynconf_t *d)
{
    dyn_job_t *j = d->q_head;
    if (!j) return;
    if (uv_queue_work(kb_broker_loop(j->b), &j->work, job_work, job_after) != 0) {
        j->rc = K_ERR_NOMEM;
        j->err = ENOMEM;
        j->what = "queueing the write";
        job_after(&j->work, 0);
    }
}

static void job_after(uv_work_t *w, int status)
{
    (void)status;
    dyn_job_t *j = w->data;
    dynconf_t *d = j->d;
    kp_str_t failed = kp_str("Could not persist the dynamic broker configs");
    if (j->rc < 0) log_write_failure(j->dir, j->err, j->what);
    if (!d) { /* the subsystem closed meanwhile */
        j->done(j->req, j->ud, KP_ERR_UNKNOWN_SERVER_ERROR, kp_str("The broker is stopping"));
        job_free(j);
        return;
    }
    d->q_head = j->q_next;
    if (!d->q_head) d->q_tail = NULL;
    if (j->rc == 0) {
        apply(j->b, d, &j->next, j->src);
        kb_log(KB_LOG_INFO, "dynamic broker configs changed (asked by %s)",
               j->req->conn ? kb_conn_peer(j->req->conn) : "-");
        j->done(j->req, j->ud, KP_ERR_NONE, (kp_str_t){NULL, -1});
    } else {
        /* Every change behind it was computed on top of it: they fail too. */
        j->done(j->req, j->ud, KP_ERR_KAFKA_STORAGE_ERROR, failed);
        for (dyn_job_t *n; (n = d->q_head) != NULL;) {
            d->q_head = n->q_next;
            n->done(n->req, n->ud, KP_ERR_KAFKA_STORAGE_ERROR, failed);
            job_free(n);
        }
        d->q_tail = NULL;
        kb_log_set_level(kb_broker_config(j->b)->log_level); /* a trial level goes back */
    }
    job_free(j);
    job_start(d);
}

/* Writes j's text here, on the loop, and applies next when it is durable. Frees j. */
static int16_t write_now(kb_broker_t *b, dynconf_t *d, dyn_job_t *j, const kb_config_t *next,
                         const int8_t *src)
{
    int rc = kb_write_file_durably(j->dir, DYN_FILE, j->text, j->len, &j->err, &j->what);
    if (rc < 0) log_write_failure(j->dir, j->err, j->what);
    else apply(b, d, next, src);
    job_free(j);
    return rc < 0 ? KP_ERR_KAFKA_STORAGE_ERROR : KP_ERR_NONE;
}

/* Queues next for writing (or, without a connection or a threadpool, writes it here). */
static int16_t persist(kb_req_t *req, dynconf_t *d, const kb_config_t *next, const int8_t *src,
                       kb_dynconf_done_fn done, void *ud, bool *queued)
{
    dyn_job_t *j = calloc(1, sizeof *j); /* owned by the queue until done */
    if (!j || render(next, src, &j->text, &j->len) < 0) {
        free(j);
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    snprintf(j->dir, sizeof j->dir, "%s", kb_broker_config(req->broker)->log_dirs[0]);
    if (!req->conn || !done) return write_now(req->broker, d, j, next, src);
    j->d = d;
    j->b = req->broker;
    j->req = req;
    j->done = done;
    j->ud = ud;
    j->next = *next;
    memcpy(j->src, src, sizeof j->src);
    j->work.data = j;
    if (d->q_tail) { /* waits for the writes before it */
        d->q_tail->q_next = j;
        d->q_tail = j;
    } else if (uv_queue_work(kb_broker_loop(req->broker), &j->work, job_work, job_after) == 0) {
        d->q_head = d->q_tail = j;
    } else {
        return write_now(req->broker, d, j, next, src);
    }
    *queued = true;
    return KP_ERR_NONE;
}

int16_t kb_dynconf_alter(kb_req_t *req, const kb_dynconf_change_t *changes, int n, bool replace,
                         int source, bool validate_only, kp_str_t *msg, kb_dynconf_done_fn done,
                         void *ud, bool *queued)
{
    dynconf_t *d = state(req->broker);
    *queued = false;
    if (!d) {
        *msg = kp_str("Dynamic broker configs are not available");
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    /* Work on copies of the layer as the queued changes leave it; the live config changes
     * only when everything validated and the file is durable. The copy shares log_dirs
     * pointers, which no dynamic row touches. Heap: the config is large. */
    kb_config_t *next = malloc(sizeof *next);
    if (!next) {
        *msg = kp_str("Out of memory");
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    *next = d->q_tail ? d->q_tail->next : *kb_broker_config(req->broker);
    int8_t src[MAX_ROWS];
    memcpy(src, d->q_tail ? d->q_tail->src : d->source, sizeof src);
    if (replace) {
        for (int i = 0; i < kb_config_count() && i < MAX_ROWS; i++) {
            if (!src[i]) continue;
            kb_config_copy_value(next, &d->static_cfg, i);
            src[i] = 0;
        }
    }
    /* kb_config_set_dynamic applies log.level at once; a trial that does not end in a change
     * puts the live level back. */
    bool level = replace;
    for (int k = 0; k < n; k++)
        level |= changes[k].name && !strcmp(changes[k].name, "log.level");
    int16_t ec = KP_ERR_NONE;
    for (int k = 0; k < n && ec == KP_ERR_NONE; k++)
        ec = change_one(req, d, next, src, &changes[k], source, msg);
    if (ec == KP_ERR_NONE && !validate_only) {
        ec = persist(req, d, next, src, done, ud, queued);
        if (ec != KP_ERR_NONE) *msg = kp_str("Could not persist the dynamic broker configs");
        else if (!*queued)
            kb_log(KB_LOG_INFO, "dynamic broker configs changed (asked by %s)",
                   req->conn ? kb_conn_peer(req->conn) : "-");
    }
    if ((ec != KP_ERR_NONE || validate_only) && level)
        kb_log_set_level(d->q_tail ? d->q_tail->next.log_level
                                   : kb_broker_config(req->broker)->log_level);
    free(next);
    return ec;
}
