/*
 * Private to the configuration module: the row type shared by the table (config_table.c) and
 * the code that parses, renders and documents it (config.c).
 */
#ifndef KB_CONFIG_INT_H
#define KB_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "broker/core/config.h"

/* T_STR: a fixed char array in the config. T_STRING: a char * owned by the config. T_PREFIX:
 * a family of keys "<name><subkey>" whose "subkey=value" pairs are collected in order
 * (uplink.producer.<key>). */
typedef enum {
    T_INT,
    T_LONG,
    T_BOOL,
    T_ENUM,
    T_DIRS,
    T_LISTENERS,
    T_ADVERTISED,
    T_PROTOMAP,
    T_STR,
    T_DOUBLE,
    T_STRING,
    T_PREFIX
} vtype_t;

typedef struct entry entry_t;
struct entry {
    kb_config_info_t info;
    vtype_t type;
    const char *def; /* NULL: applied only when set */
    int64_t min, max;
    ptrdiff_t off;              /* destination in kb_config_t (int32/int64/bool/int) */
    int width;                  /* 4 or 8 for T_INT/T_LONG/T_ENUM; 1 for T_BOOL; T_STR: the
                                 * size of the char array */
    int64_t scale;              /* stored = value * scale (time units); 0 = 1 */
    const char *const *choices; /* T_ENUM, NULL-terminated; stored as the index */
    const char *alias;          /* an older name for the same key */
};

#define OFF(f) offsetof(kb_config_t, f)
#define TOFF(f) offsetof(kb_config_t, topic_defaults.f)
#define I32MAX INT32_MAX
#define I64MAX INT64_MAX
/* Upper bound on the rows, for per-row arrays (checked by a static assert in the table). */
#define KB_CONFIG_MAX_ENTRIES 256

extern const entry_t kb_config_table[];
extern const int kb_config_table_n;

#endif
