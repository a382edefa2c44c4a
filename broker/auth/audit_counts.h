/*
 * The audit trail's access counters, kept where a kill -9 cannot take them: a file
 * (<first log dir>/__audit_counts) mapped MAP_SHARED, one fixed slot per (principal,
 * operation, resource) counted since its last summary record. A count is a store into the
 * page cache, which outlives the process (not a power cut: counts are not fsynced, by design
 * they are cheap). At the next start the leftover counts are written as summary records marked
 * "recovered" (audit.c).
 *
 * A slot also remembers, while its summary record is being appended, the __audit offset that
 * record gets (`pending`): if the process dies between the append and the reset of the count,
 * the next start sees the record is there (log end > pending) and does not count it twice.
 *
 * Capacity: KB_ACOUNTS_SLOTS slots; a key that does not fit (too long, table full) is counted
 * in memory only, as before this file existed. Thread: loop thread.
 */
#ifndef KB_AUDIT_COUNTS_H
#define KB_AUDIT_COUNTS_H

#include <stdbool.h>
#include <stdint.h>

#define KB_ACOUNTS_FILE "__audit_counts"
#define KB_ACOUNTS_SLOTS 4096

typedef struct kb_acounts kb_acounts_t;

/* Opens (creating) the file in dir and maps it. < 0 when it cannot (the caller counts in
 * memory only and says so). */
int kb_acounts_open(const char *dir, kb_acounts_t **out);
void kb_acounts_close(kb_acounts_t *c);

/* Calls fn for every slot left with a count by an unclean stop whose summary record is not in
 * __audit (log_end: __audit's log end now), then frees every slot. fn writes the record; it is
 * given the offset its record will get through *pending before it appends. */
typedef int (*kb_acounts_fn)(void *ud, int op, int res, const char *key, const char *ctx,
                             uint64_t count);
int kb_acounts_recover(kb_acounts_t *c, int64_t log_end, kb_acounts_fn fn, void *ud);

/* A new slot for (op, res, key), or -1 (full, too long, no file). */
int kb_acounts_alloc(kb_acounts_t *c, int op, int res, const char *key);
/* The slot's count and latest request context (\n-separated, see audit.c). */
void kb_acounts_set(kb_acounts_t *c, int slot, uint64_t count, const char *ctx);
/* Around the append of a slot's summary record: begin with the offset it will get; done once
 * it is appended (count reset). */
void kb_acounts_begin(kb_acounts_t *c, int slot, int64_t offset);
void kb_acounts_done(kb_acounts_t *c, int slot);

#endif
