/*
 * Dynamic broker configs (see h_admin.h): the layer AlterConfigs / IncrementalAlterConfigs put
 * over server.properties, its persistence, and its subsystem.
 *
 * File <first log dir>/depot-broker-configs.properties, rewritten atomically (tmp, fsync,
 * rename, directory fsync) after every change:
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
#include "broker/core/util.h"
#include "protocol/kp_errors.h"

#define DYN_FILE "depot-broker-configs.properties"
#define MAX_ROWS 256

typedef struct {
    kb_config_t static_cfg; /* shallow copy at start: only its scalar rows are read */
    int8_t source[MAX_ROWS];
} dynconf_t;

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

/* Writes the layer of cfg (rows with a source) atomically. 0 or K_ERR_IO (errno logged). */
static int persist(kb_broker_t *b, const kb_config_t *cfg, const int8_t *source)
{
    char path[4096], tmp[4200], val[1024];
    path_of(b, path, sizeof path, "");
    path_of(b, tmp, sizeof tmp, ".tmp");
    FILE *f = fopen(tmp, "w");
    if (!f) goto fail;
    fprintf(f, "# depot dynamic broker configs (AlterConfigs); applied over server.properties "
               "at start\n");
    for (int i = 0; i < kb_config_count() && i < MAX_ROWS; i++) {
        if (!source[i]) continue;
        kb_config_value(cfg, i, val, sizeof val);
        fprintf(f, "%d.%s=%s\n", source[i], kb_config_info(i)->name, val);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) goto fail;
    int dfd = open(kb_broker_config(b)->log_dirs[0], O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
fail:
    kb_log(KB_LOG_ERROR, "%s: cannot write dynamic broker configs: %s", path, strerror(errno));
    unlink(tmp);
    return K_ERR_IO;
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

static void dynconf_close(kb_broker_t *b)
{
    void **slot = kb_broker_slot(b, &kb_dynconf_subsys);
    if (!slot) return;
    free(*slot);
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

int16_t kb_dynconf_alter(kb_req_t *req, const kb_dynconf_change_t *changes, int n, bool replace,
                         int source, bool validate_only, kp_str_t *msg)
{
    dynconf_t *d = state(req->broker);
    if (!d) {
        *msg = kp_str("Dynamic broker configs are not available");
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    /* Work on copies; the live config changes only when everything validated and the file
     * was written. The copy shares log_dirs pointers, which no dynamic row touches. */
    kb_config_t next = *kb_broker_config(req->broker);
    int8_t src[MAX_ROWS];
    memcpy(src, d->source, sizeof src);
    if (replace) {
        for (int i = 0; i < kb_config_count() && i < MAX_ROWS; i++) {
            if (!src[i]) continue;
            kb_config_copy_value(&next, &d->static_cfg, i);
            src[i] = 0;
        }
    }
    /* kb_config_set_dynamic applies log.level at once; a trial that does not end in a change
     * puts the live level back. */
    bool level = false;
    for (int k = 0; k < n; k++)
        level |= changes[k].name && !strcmp(changes[k].name, "log.level");
    level |= replace;
    int16_t ec = KP_ERR_NONE;
    for (int k = 0; k < n && ec == KP_ERR_NONE; k++)
        ec = change_one(req, d, &next, src, &changes[k], source, msg);
    if (ec == KP_ERR_NONE && !validate_only && persist(req->broker, &next, src) < 0) {
        *msg = kp_str("Could not persist the dynamic broker configs");
        ec = KP_ERR_KAFKA_STORAGE_ERROR;
    }
    if (ec != KP_ERR_NONE || validate_only) {
        if (level) kb_log_set_level(kb_broker_config(req->broker)->log_level);
        return ec;
    }
    *kb_broker_config_mut(req->broker) = next;
    memcpy(d->source, src, sizeof src);
    ks_store_t *store = kb_broker_store(req->broker);
    if (store) ks_store_set_defaults(store, &next.topic_defaults);
    kb_log(KB_LOG_INFO, "dynamic broker configs changed (asked by %s)", kb_conn_peer(req->conn));
    return KP_ERR_NONE;
}
