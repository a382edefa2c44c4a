/*
 * Private interface of the admin handler family: AlterConfigs and IncrementalAlterConfigs
 * (h_alter_configs.c), the dynamic broker config layer (h_broker_configs.c), DescribeConfigs
 * (h_describe_configs.c) and CreatePartitions (h_create_partitions.c). Loop thread only.
 *
 * Dynamic broker configs: AlterConfigs on the BROKER resource ("1" = this node, "" = the
 * cluster default; one node, so both apply here) changes the live kb_config_t and hands the
 * topic defaults to storage (ks_store_set_defaults), so topics without an override follow at
 * once. The layer is persisted in <first log dir>/depot-broker-configs.properties and applied
 * over server.properties at start, as Kafka keeps dynamic configs in its metadata log.
 */
#ifndef KB_H_ADMIN_H
#define KB_H_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/core/config.h"
#include "broker/core/subsys.h"
#include "broker/kb.h"

/* IncrementalAlterConfigs operations (Kafka's AlterConfigOp.OpType). */
enum { KB_CFG_SET = 0, KB_CFG_DELETE = 1, KB_CFG_APPEND = 2, KB_CFG_SUBTRACT = 3 };

extern const kb_subsys_t kb_dynconf_subsys;

/* The source of broker row i: KB_CS_DYNAMIC_BROKER / KB_CS_DYNAMIC_DEFAULT_BROKER when a
 * dynamic value is in force, else 0. */
int kb_dynconf_source(kb_broker_t *b, int i);
/* The configuration as the broker started (server.properties + --set), for synonyms. NULL
 * before the subsystem is up (then there is no dynamic layer either). */
const kb_config_t *kb_dynconf_static(kb_broker_t *b);

/* One requested change to a broker key. value is NUL-terminated (NULL for DELETE). */
typedef struct {
    const char *name;
    int op;
    const char *value;
} kb_dynconf_change_t;

/* Called on the loop when a queued change of the dynamic layer is durable and live (code
 * KP_ERR_NONE) or failed (code and msg, arena text of req, say why; nothing changed). */
typedef void (*kb_dynconf_done_fn)(kb_req_t *req, void *ud, int16_t code, kp_str_t msg);

/*
 * Applies changes to the dynamic layer. replace (legacy AlterConfigs): every dynamic key not
 * named reverts to its static value. source: KB_CS_DYNAMIC_BROKER or _DEFAULT_BROKER. Returns
 * a Kafka error code; on an error, msg (arena text) says why and nothing changed. With
 * validate_only nothing changes either way.
 *
 * A valid change is written to the file on libuv's threadpool (a slow flash write stalls only
 * this request): it returns KP_ERR_NONE with *queued set, and done(req, ud, ...) follows once
 * the file is durable and the live config changed. Changes are computed on top of the ones
 * still queued and written one at a time in arrival order; when a write fails, the changes
 * queued behind it fail too (they were computed on top of it). A request without a connection
 * (unit tests) is written at once and *queued stays false.
 */
int16_t kb_dynconf_alter(kb_req_t *req, const kb_dynconf_change_t *changes, int n, bool replace,
                         int source, bool validate_only, kp_str_t *msg, kb_dynconf_done_fn done,
                         void *ud, bool *queued);

/* A wire string as a C string in the arena; NULL if null, or if it holds a NUL byte (a config
 * name or value never does). */
char *kb_admin_cstr(kb_req_t *req, kp_str_t s);

#endif
