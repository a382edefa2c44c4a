/*
 * A small chained hash map with byte-string keys, for the group coordinator (groups by id,
 * committed offsets by topic/partition). Keys are copied into the entry; values are opaque
 * pointers owned by the caller. Pure data structure: any thread, one at a time per map.
 *
 * Iteration: kb_gmap_next(m, NULL) gives the first entry, then pass the previous one. The map
 * must not change during a walk, except that the entry just returned may be deleted if the
 * caller fetched its successor first.
 */
#ifndef KB_GROUP_MAP_H
#define KB_GROUP_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct kb_gmap_ent {
    struct kb_gmap_ent *next;
    uint64_t hash;
    void *val;
    size_t klen;
    uint8_t key[]; /* klen bytes, then a NUL so string keys can be printed */
} kb_gmap_ent_t;

typedef struct {
    kb_gmap_ent_t **buckets;
    size_t nbuckets; /* power of two, 0 before the first insert */
    size_t count;
} kb_gmap_t;

void kb_gmap_init(kb_gmap_t *m);
/* Frees every entry; free_val (may be NULL) is called on each value. */
void kb_gmap_deinit(kb_gmap_t *m, void (*free_val)(void *));
void *kb_gmap_get(const kb_gmap_t *m, const void *key, size_t klen);
kb_gmap_ent_t *kb_gmap_find(const kb_gmap_t *m, const void *key, size_t klen);
/* Inserts or replaces. *old (if given) receives the replaced value or NULL. 0 or K_ERR_NOMEM. */
int kb_gmap_put(kb_gmap_t *m, const void *key, size_t klen, void *val, void **old);
/* Removes the entry; returns its value (NULL when absent). */
void *kb_gmap_del(kb_gmap_t *m, const void *key, size_t klen);
kb_gmap_ent_t *kb_gmap_next(const kb_gmap_t *m, const kb_gmap_ent_t *prev);

#endif
