/* Chained hash map for the group coordinator; see group_map.h. */
#include "broker/group/group_map.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/k_status.h"

static uint64_t hash_bytes(const void *key, size_t len)
{
    /* FNV-1a: keys are short and not attacker-sized beyond a request's strings. */
    const uint8_t *p = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void kb_gmap_init(kb_gmap_t *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

void kb_gmap_deinit(kb_gmap_t *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        kb_gmap_ent_t *e = m->buckets[i];
        while (e) {
            kb_gmap_ent_t *n = e->next;
            if (free_val)
                free_val(e->val);
            free(e);
            e = n;
        }
    }
    free(m->buckets);
    kb_gmap_init(m);
}

static kb_gmap_ent_t **slot(const kb_gmap_t *m, const void *key, size_t klen, uint64_t h)
{
    kb_gmap_ent_t **pp = &m->buckets[h & (m->nbuckets - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0))
        pp = &(*pp)->next;
    return pp;
}

kb_gmap_ent_t *kb_gmap_find(const kb_gmap_t *m, const void *key, size_t klen)
{
    if (!m->nbuckets)
        return NULL;
    return *slot(m, key, klen, hash_bytes(key, klen));
}

void *kb_gmap_get(const kb_gmap_t *m, const void *key, size_t klen)
{
    kb_gmap_ent_t *e = kb_gmap_find(m, key, klen);
    return e ? e->val : NULL;
}

static int grow(kb_gmap_t *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 16;
    kb_gmap_ent_t **b = calloc(nb, sizeof *b);
    if (!b)
        return K_ERR_NOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        kb_gmap_ent_t *e = m->buckets[i];
        while (e) {
            kb_gmap_ent_t *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

int kb_gmap_put(kb_gmap_t *m, const void *key, size_t klen, void *val, void **old)
{
    if (old)
        *old = NULL;
    if (m->count + 1 > m->nbuckets && grow(m) < 0 && !m->nbuckets)
        return K_ERR_NOMEM;
    uint64_t h = hash_bytes(key, klen);
    kb_gmap_ent_t **pp = slot(m, key, klen, h);
    if (*pp) {
        if (old)
            *old = (*pp)->val;
        (*pp)->val = val;
        return 0;
    }
    kb_gmap_ent_t *e = malloc(sizeof *e + klen + 1);
    if (!e)
        return K_ERR_NOMEM;
    e->next = NULL;
    e->hash = h;
    e->val = val;
    e->klen = klen;
    memcpy(e->key, key, klen);
    e->key[klen] = 0;
    *pp = e;
    m->count++;
    return 0;
}

void *kb_gmap_del(kb_gmap_t *m, const void *key, size_t klen)
{
    if (!m->nbuckets)
        return NULL;
    kb_gmap_ent_t **pp = slot(m, key, klen, hash_bytes(key, klen));
    kb_gmap_ent_t *e = *pp;
    if (!e)
        return NULL;
    void *v = e->val;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}

kb_gmap_ent_t *kb_gmap_next(const kb_gmap_t *m, const kb_gmap_ent_t *prev)
{
    size_t i = 0;
    if (prev) {
        if (prev->next)
            return prev->next;
        i = (prev->hash & (m->nbuckets - 1)) + 1;
    }
    for (; i < m->nbuckets; i++)
        if (m->buckets[i])
            return m->buckets[i];
    return NULL;
}
