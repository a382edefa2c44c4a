/*
 * The SCRAM credential store: one file in the first log dir, loaded at start, rewritten
 * atomically on every change (temp file + fsync + rename + directory fsync), so a power cut
 * leaves either the old or the new set, never a mix.
 *
 * File format (<log.dirs[0]>/__scram_credentials), text, one credential per line:
 *
 *   # comment lines start with '#'
 *   <crc> <mechanism> <iterations> <salt> <stored_key> <server_key> <user>
 *
 *   crc         CRC-32C of everything after "<crc> " on the line, 8 lowercase hex digits
 *   mechanism   SCRAM-SHA-256 or SCRAM-SHA-512
 *   iterations  decimal, 4096..16384
 *   salt, stored_key, server_key   base64 (padded)
 *   user        the user name, percent-encoded (%XX for bytes outside [A-Za-z0-9._@-])
 *
 * No password is ever written. A line that fails its CRC or does not parse makes the load
 * fail with file:line in the error: the broker does not start rather than silently drop a
 * user (or worse, keep a corrupted key).
 *
 * Ownership: the store owns its entries; kb_creds_find copies a credential out.
 * Thread: loop thread (or main, for --add-scram before the loop runs); kb_creds_render of a
 * clone may run on any thread that owns it.
 */
#ifndef KB_CREDS_H
#define KB_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/auth/scram.h"

#define KB_CREDS_FILE "__scram_credentials"

typedef struct kb_creds kb_creds_t;

/* Loads dir/__scram_credentials (a missing file is an empty store). On K_ERR_CORRUPT /
 * K_ERR_IO err names the file and line. */
int kb_creds_open(const char *dir, kb_creds_t **out, char *err, size_t errlen);
void kb_creds_free(kb_creds_t *c);

/* 0 and *cred, or K_ERR_NOENT. */
int kb_creds_find(const kb_creds_t *c, const char *user, int mech, kb_scram_cred_t *cred);
/* Adds or replaces user's credential for cred->mech (in memory; kb_creds_save persists). */
int kb_creds_upsert(kb_creds_t *c, const char *user, const kb_scram_cred_t *cred);
/* Removes user's credential for mech; K_ERR_NOENT if there was none. */
int kb_creds_delete(kb_creds_t *c, const char *user, int mech);
/* Writes the whole store atomically, here (start-up: --add-scram; a request goes through
 * h_auth_writes.c instead). */
int kb_creds_save(kb_creds_t *c);
/* The file's text for c (heap, owned by the caller in *text: cleanse before freeing). */
int kb_creds_render(const kb_creds_t *c, char **text, size_t *len);
/* A copy of c (owned by the caller); NULL out of memory. */
kb_creds_t *kb_creds_clone(const kb_creds_t *c);
/* Exchanges the entries of live and other (each keeps its dir): a change computed on a clone
 * goes live in one step once its file is durable. */
void kb_creds_swap(kb_creds_t *live, kb_creds_t *other);
const char *kb_creds_dir(const kb_creds_t *c);

/* Iteration (in insertion order). */
int kb_creds_count(const kb_creds_t *c);
const char *kb_creds_user(const kb_creds_t *c, int i);
const kb_scram_cred_t *kb_creds_cred(const kb_creds_t *c, int i);

/*
 * Applies one --add-scram argument in Kafka's kafka-storage syntax,
 * 'SCRAM-SHA-256=[name=admin,password=admin-secret,iterations=8192]' (values may be quoted),
 * to the store in memory; user_out/mech_out say what was added. err explains a bad argument.
 */
int kb_creds_add_arg(kb_creds_t *c, const char *arg, char *user_out, size_t ucap, int *mech_out,
                     char *err, size_t errlen);

/* kb_write_file_durably (core/util.h) that logs its failure: the synchronous write of
 * start-up and tests. */
int kb_auth_write_atomic(const char *dir, const char *name, const char *data, size_t len);

#endif
