/* Internals shared by group.c and group_offsets.c (not for other modules). */
#ifndef KB_GROUP_INT_H
#define KB_GROUP_INT_H

#include "broker/group/group.h"

struct kb_gcoord {
    kb_gcoord_opts_t opts;
    kb_gmap_t groups; /* group id -> kb_group_t*, owned */
    uint64_t rng;
    int64_t next_retention_check;
    bool first_poll;
};

/* Copy of a view (NULL for a null string or on allocation failure). */
char *kb_gstrdup(kp_str_t s);
/* NUL-terminated a equals view b; two nulls are equal. */
bool kb_gstreq(const char *a, kp_str_t b);
/* kb_gstrdup that also gives the length (any bytes, NUL included); *len 0 when s is null. */
char *kb_gstrdup_len(kp_str_t s, int32_t *len);
/* m is the static member with group.instance.id id (byte for byte). */
bool kb_gmember_instance_is(const kb_gmember_t *m, kp_str_t id);
/* Recomputes g->subscribed from the members' consumer-protocol subscriptions. */
void kb_group_subscriptions_update(kb_group_t *g);
/* Offset retention for one group; may destroy the group (Empty and no offsets left). */
void kb_group_offsets_expire(kb_gcoord_t *c, kb_group_t *g, int64_t now);
/* Internal: remove from the table and free (the group must hold no requests). */
void kb_group_destroy(kb_gcoord_t *c, kb_group_t *g);
kb_group_t *kb_group_create(kb_gcoord_t *c, kp_str_t group_id, int64_t now);
void kb_group_store(kb_gcoord_t *c, kb_group_t *g);
void kb_gmember_free(kb_gmember_t *m);

#endif
