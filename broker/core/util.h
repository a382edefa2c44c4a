/*
 * Small helpers for handlers: text that must outlive a handler's stack but not its request
 * lives in the request's arena (freed with the request).
 */
#ifndef KB_UTIL_H
#define KB_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/kb.h"

/* Copies s into buf as a C string; false if s is null or does not fit. */
bool kb_str_copy(kp_str_t s, char *buf, size_t len);
/* printf into the arena; returns a kp_str_t view ({NULL,-1} if out of memory). */
kp_str_t kb_arena_printf(kp_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A copy of s in the arena (NUL-terminated); NULL if out of memory. */
char *kb_arena_strdup(kp_arena_t *a, const char *s);

/* The topic Kafka clients treat as internal. */
#define KB_CONSUMER_OFFSETS_TOPIC "__consumer_offsets"

/* Topics the broker writes itself: the group offsets log, the schema registry's _schemas and
 * the audit log's __audit. Clients may read them but not produce to them or delete their
 * records (INVALID_TOPIC_EXCEPTION, as Kafka answers for its internal topics) nor delete them:
 * a record produced into __consumer_offsets would be replayed as a commit at the next start. */
bool kb_topic_internal(const char *name, size_t len);

/* Writes dir/name atomically and durably through the storage I/O seam (tmp, write, fsync,
 * rename, directory fsync), from any thread (admin changes' threadpool jobs, start-up): it
 * logs nothing, *err gets the errno of the failed call and *what its name. 0 or a negative
 * status. The one durable-write routine of the broker's own small files. */
int kb_write_file_durably(const char *dir, const char *name, const void *data, size_t len,
                          int *err, const char **what);
/* The same with the new file's mode (0600 for the SCRAM credentials and the ACLs). */
int kb_write_file_durably_mode(const char *dir, const char *name, const void *data, size_t len,
                               int mode, int *err, const char **what);

#endif
