/*
 * Broker configuration: one table (broker/core/config.c) drives parsing of server.properties,
 * --set overrides, validation, DescribeConfigs(BROKER) and docs/configuration.md.
 *
 * Thread: loop thread (or main before the loop starts). No global state: a kb_config_t is
 * self-contained and owns its log_dirs strings until kb_config_deinit.
 */
#ifndef KB_CONFIG_H
#define KB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "broker/kb.h"

/* Kafka's DescribeConfigs ConfigType values. */
enum {
    KB_CT_BOOLEAN = 1,
    KB_CT_STRING = 2,
    KB_CT_INT = 3,
    KB_CT_LONG = 5,
    KB_CT_DOUBLE = 6,
    KB_CT_LIST = 7,
};

/* Kafka's DescribeConfigs ConfigSource values. */
enum {
    KB_CS_DYNAMIC_TOPIC = 1,
    KB_CS_DYNAMIC_BROKER = 2,
    KB_CS_DYNAMIC_DEFAULT_BROKER = 3,
    KB_CS_STATIC_BROKER = 4,
    KB_CS_DEFAULT = 5,
};

/*
 * Fills cfg from the defaults, then the properties file `path` (NULL = none), then each
 * "KEY=VALUE" in sets (later wins). Unknown keys are logged as warnings and counted in
 * *n_warnings (may be NULL). A bad value or unreadable file returns K_ERR_INVAL / K_ERR_IO
 * with a message naming the key (or file) in err; cfg is then left deinitialised.
 */
int kb_config_load(kb_config_t *cfg, const char *path, const char *const *sets, int n_sets,
                   char *err, size_t errlen, int *n_warnings);
void kb_config_deinit(kb_config_t *cfg);

/* Writes the configuration reference (markdown) generated from the table. */
void kb_config_print_doc(FILE *out);
/* Writes a server.properties: the given "key=value" lines active, then every key of the table
 * with its documentation and its default, commented out (the Debian package's conffile). */
void kb_config_print_properties(FILE *out, const char *const *active, int n_active);

/* Read access to the table, for DescribeConfigs. Index 0 .. kb_config_count()-1. */
typedef struct {
    const char *name;
    const char *doc;
    int config_type;       /* KB_CT_* */
    const char *topic_key; /* the topic-level synonym ("retention.ms"), or NULL */
} kb_config_info_t;

int kb_config_count(void);
const kb_config_info_t *kb_config_info(int i);
/* The current value as text (NULL-free; "" for an unset optional key). */
void kb_config_value(const kb_config_t *cfg, int i, char *buf, size_t len);
/* True when the value equals the built-in default. */
bool kb_config_is_default(const kb_config_t *cfg, int i);
/* Index of the broker key whose topic-level synonym is topic_key, or -1. */
int kb_config_find_by_topic_key(const char *topic_key);
/* Index of a broker key by name, or -1. */
int kb_config_find(const char *name);

/* Dynamic broker configs (AlterConfigs / IncrementalAlterConfigs on the broker resource):
 * the topic defaults (rows with a topic_key) and log.level take effect without a restart;
 * the caller hands cfg->topic_defaults to ks_store_set_defaults afterwards. */
bool kb_config_is_dynamic(int i);
/* Row i's built-in default as text, NULL when it has none (it is derived or unset). */
const char *kb_config_default_text(int i);
/* Parses and sets row i; K_ERR_INVAL with the reason in why (cfg unchanged). */
int kb_config_set_dynamic(kb_config_t *cfg, int i, const char *value, char *why, size_t whylen);
/* Copies row i's value from src (e.g. the static configuration, to undo a dynamic one). */
void kb_config_copy_value(kb_config_t *dst, const kb_config_t *src, int i);

#endif
