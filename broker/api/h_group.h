/*
 * Private glue between the group handler files (h_group.c, h_offsets.c): one kb_gstate_t per
 * broker holds the coordinator (group.c), the offsets log (offsets_store.c) and a uv timer that
 * fires at the coordinator's next deadline, kept in the broker's slot for kb_group_subsys
 * (broker/core/subsys.h), which creates and frees it. Loop thread only.
 */
#ifndef KB_H_GROUP_H
#define KB_H_GROUP_H

#include "broker/group/group.h"
#include "broker/kb.h"
#include "broker/core/clock.h"
#include "broker/core/subsys.h"
#include "broker/group/offsets_store.h"
#include "protocol/gen/kp_describe_groups.h"

#define KB_OFFSET_METADATA_MAX 4096 /* Kafka's offset.metadata.max.bytes */
/* Kafka reads no string longer than this (its compact strings included); the offsets log
 * stores strings with an int16 length, so longer ones are refused as malformed requests. */
#define KB_GROUP_STR_MAX 32767

static inline bool kb_gstr_too_long(kp_str_t s)
{
    return s.len > KB_GROUP_STR_MAX;
}

/* The coordinator's now: the mono clock for its deadlines, the wall clock for its data. */
static inline kb_gtime_t kb_gnow(void)
{
    return (kb_gtime_t){.mono = kb_mono_ms(), .wall = kb_wall_ms()};
}

typedef struct kb_gstate {
    kb_broker_t *broker;
    kb_gcoord_t *coord;
    kb_ostore_t *ostore; /* NULL if the offsets log could not be opened: coordinator down */
    uv_timer_t *timer;   /* heap; freed in its close callback */
    kb_req_t *current;   /* the request whose handler is running */
    bool current_done;   /* its held result was delivered synchronously */
    int64_t last_end;    /* end offset of the last metadata append (for a sync) */
    bool appended;
} kb_gstate_t;

extern const kb_subsys_t kb_group_subsys;
/* "consumer" is in group.coordinator.rebalance.protocols. */
bool kb_group_consumer_enabled(const kb_config_t *cfg);

/* Arena copies for responses (h_group.c): a view (len -1 = null stays null), a C string
 * (NULL = null), bytes; and the client host as Kafka reports it ("/ip"). */
kp_str_t kb_group_arena_view(kp_arena_t *a, kp_str_t s);
kp_str_t kb_group_arena_str(kp_arena_t *a, const char *s);
kp_bytes_t kb_group_arena_bytes(kp_arena_t *a, kp_bytes_t b);
kp_str_t kb_group_client_host(kb_req_t *req);

/* DescribeGroups' answer for a consumer group (h_cgroup.c): state, protocol type "consumer",
 * the assignor as protocol data, members with ConsumerProtocol-encoded subscription and
 * assignment, as lag exporters expect from a classic consumer group. */
int kb_cgroup_describe_classic(kb_req_t *req, const kb_group_t *g,
                               kp_describe_groups_resp_described_group_t *d);
/* The broker's group state, or NULL before init / after close. */
kb_gstate_t *kb_gstate(kb_broker_t *b);
/* Re-arms the deadline timer; call after anything that may have changed deadlines. */
void kb_gstate_arm(kb_gstate_t *gs);

/*
 * Deferred answers: the handler has filled its response struct (in the request arena); it is
 * encoded once everything below `end` is fsynced. On a failed fsync every partition/group
 * that had NONE gets COORDINATOR_NOT_AVAILABLE instead. Returns KB_PENDING, or KB_DONE after
 * encoding at once when the sync could not be scheduled (with the same error substitution).
 */
typedef enum {
    KB_GDEFER_COMMIT,
    KB_GDEFER_DELETE_GROUPS,
    KB_GDEFER_OFFSET_DELETE,
} kb_gdefer_kind_t;
int kb_gdefer(kb_gstate_t *gs, kb_req_t *req, kb_gdefer_kind_t kind, void *resp, int64_t end);
/* Encodes a deferred kind now (used by kb_gdefer and by handlers with nothing to wait for). */
int kb_gdefer_encode(kb_req_t *req, kb_gdefer_kind_t kind, void *resp, int status);

#endif
