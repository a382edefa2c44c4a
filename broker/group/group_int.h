/* Internals shared by the coordinator's files in broker/group/ (not for other modules). */
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

/* A consumer group (KIP-848) with members: never Empty for retention, deletion or joins. */
bool kb_group_has_cmembers(const kb_group_t *g);
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
void kb_group_offsets_expire(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now);
/* Internal: remove from the table and free (the group must hold no requests). */
void kb_group_destroy(kb_gcoord_t *c, kb_group_t *g);
kb_group_t *kb_group_create(kb_gcoord_t *c, kp_str_t group_id, kb_gtime_t now);
void kb_group_store(kb_gcoord_t *c, kb_group_t *g);
void kb_gmember_free(kb_gmember_t *m);

/* ---- shared by group.c, group_join.c and group_rebalance.c (the coordinator's parts) ---- */

/* Enters state s; state_ts takes the wall clock (it is data: the offsets log stores it). */
void kb_group_transition(kb_group_t *g, kb_group_state_t s, kb_gtime_t now);
/* Members' protocol lists: copy (0 or K_ERR_NOMEM), free, and equality with a request's. */
int kb_gprotos_copy(const kb_gproto_in_t *in, int32_t n, kb_gproto_t **out);
void kb_gprotos_free(kb_gproto_t *p, int32_t n);
bool kb_gprotos_match(const kb_gmember_t *m, const kb_gproto_in_t *in, int32_t n);
kb_gmember_t *kb_group_member_find(const kb_group_t *g, kp_str_t id);
/* The member holding a static instance id, or NULL (also for a null id). */
kb_gmember_t *kb_group_static_member(const kb_group_t *g, kp_str_t instance_id);
/* Kafka's isStaticMemberFenced: the instance id is known and bound to another member id. */
bool kb_group_static_fenced(const kb_group_t *g, kp_str_t instance_id, kp_str_t member_id);
bool kb_group_is_leader(const kb_group_t *g, const kb_gmember_t *m);
int kb_group_set_leader(kb_group_t *g, const char *member_id);
/* Every member has a held JoinGroup and nobody is pending MEMBER_ID_REQUIRED. */
bool kb_group_all_joined(const kb_group_t *g);
/* Members told MEMBER_ID_REQUIRED (deadline on the mono clock). */
int kb_group_pending_find(const kb_group_t *g, kp_str_t member_id);
void kb_group_pending_remove_at(kb_group_t *g, int32_t i);
int kb_group_pending_add(kb_group_t *g, const char *member_id, int64_t deadline);
/* A group that a failed join created and nothing else uses: forget it again. */
void kb_group_maybe_discard(kb_gcoord_t *c, kb_group_t *g);
/* Results through opts.join_done/sync_done; *_respond answers the member's held request. */
void kb_gjoin_error(kb_gcoord_t *c, void *waiter, const char *member_id, int16_t err);
void kb_gsync_error(kb_gcoord_t *c, void *waiter, int16_t err);
void kb_gjoin_respond(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m, bool with_members,
                      const char *leader, bool skip_assignment);
void kb_gsync_respond(kb_gcoord_t *c, kb_group_t *g, kb_gmember_t *m, int16_t err);
/* The member's session deadline: now.mono + timeout. */
void kb_gmember_hb_schedule(kb_gmember_t *m, kb_gtime_t now, int64_t timeout);

/* group_rebalance.c */
void kb_group_propagate_assignment(kb_gcoord_t *c, kb_group_t *g, int16_t err, kb_gtime_t now);
void kb_group_prepare_rebalance(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now);
/* Starts a rebalance unless one is already preparing (Kafka's maybePrepareRebalance). */
void kb_group_maybe_rebalance(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now);
const char *kb_group_select_protocol(const kb_group_t *g);
bool kb_group_supports_protocols(const kb_group_t *g, kp_str_t type, const kb_gproto_in_t *p,
                                 int32_t n);
void kb_group_try_complete_join(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now);
/* Runs the group's expired deadlines (pending members, sessions, join and sync phases). */
void kb_group_poll_deadlines(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now);

#endif
