/*
 * Kafka Connect's file connectors (FileStreamSource / FileStreamSink) run standalone on the kc
 * client, from unmodified Connect property files. See docs/connect.md.
 *
 * Single-threaded: one process runs every connector in one poll loop.
 */
#ifndef KC_CONNECT_H
#define KC_CONNECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/k_status.h"

/* ---- Java .properties files ------------------------------------------------------------- */

typedef struct {
    char **keys, **vals; /* owned */
    int n;
} kc_props_t;

/* Parses text as java.util.Properties does: '#'/'!' comments, key=value, key:value or
 * "key value", backslash line continuations and escapes (\t \n \r \f \uXXXX). A later key
 * replaces an earlier one. 0 or K_ERR_NOMEM. */
int kc_props_parse(kc_props_t *p, const char *text, size_t len);
/* Reads and parses a file; 0, K_ERR_IO (errno kept) or K_ERR_NOMEM. */
int kc_props_load(kc_props_t *p, const char *path);
const char *kc_props_get(const kc_props_t *p, const char *key); /* NULL if absent */
void kc_props_free(kc_props_t *p);

/* ---- validated configuration --------------------------------------------------------------- */

/* JSON_PLAIN: JsonConverter with schemas.enable=false (text passed through); JSON_SCHEMA:
 * JsonConverter with schemas enabled (Kafka's default): string envelopes, connect_json.c. */
typedef enum { KC_CONV_STRING, KC_CONV_BYTES, KC_CONV_JSON_PLAIN, KC_CONV_JSON_SCHEMA } kc_converter_t;

typedef struct {
    const char *bootstrap;
    const char *offset_file; /* offset.storage.file.filename */
    int64_t offset_flush_ms; /* offset.flush.interval.ms (default 60000) */
    kc_converter_t key_conv, value_conv;
} kc_worker_config_t;

typedef enum { KC_FILE_SOURCE, KC_FILE_SINK } kc_connector_kind_t;

typedef struct {
    const char *name;
    kc_connector_kind_t kind;
    int tasks_max;
    const char *file;  /* NULL/empty: stdin (source) or stdout (sink), as Kafka does */
    const char *topic; /* source */
    char **topics;     /* sink: owned, split on commas */
    int ntopics;
    int batch_size; /* source lines per produce (default 2000) */
} kc_connector_config_t;

/* Both fill *out with pointers into p (which must outlive out) and, on a bad or missing key,
 * write a sentence naming it into err and return K_ERR_INVAL. */
int kc_worker_config(const kc_props_t *p, kc_worker_config_t *out, char *err, size_t errlen);
int kc_connector_config(const kc_props_t *p, kc_connector_config_t *out, char *err, size_t errlen);
void kc_connector_config_deinit(kc_connector_config_t *cc);

/* ---- the source's offset file ---------------------------------------------------------------- */

/* One line per source file: "<connector>\t<inode>\t<position>\t<file>\n". Read: position and
 * inode of (connector, file), 0 if found, K_ERR_NOENT if not (or no offset file yet). Write
 * replaces that entry, keeping the others: tmp file + fsync + rename + fsync of the dir. */
int kc_offset_file_read(const char *path, const char *connector, const char *file, uint64_t *inode,
                        int64_t *position);
int kc_offset_file_write(const char *path, const char *connector, const char *file, uint64_t inode,
                         int64_t position);

/* depotctl connect-standalone WORKER.properties CONNECTOR.properties...: returns the exit
 * status (0 after SIGTERM/SIGINT with everything flushed). */
int kc_connect_standalone(int argc, char **argv);

#endif
