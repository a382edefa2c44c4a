/*
 * Who is asking, and may they? The seam every handler calls before it touches a resource.
 *
 * Principal: every connection has one from accept to close. Until SASL or TLS client auth
 * sets another it is User:ANONYMOUS (Kafka's name for an unauthenticated client). The
 * principal is a value inside the connection; handlers read it, the auth room sets it.
 *
 * Authorization: kb_authorize(req, op, resource_type, name) answers whether the request's
 * principal may perform op on the resource. With no authorizer installed (the default, and
 * what Kafka does without authorizer.class.name) everything is allowed. The security room
 * installs one with kb_auth_set_authorizer; handlers never know which. Operation and resource
 * numbers are Kafka's own (AclOperation, ResourceType), so they go on the wire unchanged.
 *
 * What each handler checks follows Kafka's KafkaApis (3.x): Produce WRITE on the topic (and
 * WRITE on the transactional id for transactional batches; idempotent batches need nothing
 * more since Kafka 2.8), Fetch READ on the topic, ListOffsets/Metadata/OffsetForLeaderEpoch
 * DESCRIBE on the topic, group requests READ (DESCRIBE for OffsetFetch/DescribeGroups/
 * FindCoordinator, DELETE for DeleteGroups/OffsetDelete) on the group, CreateTopics CREATE on
 * the cluster or topic, and so on; docs/authorization.md has the table.
 * Thread: loop thread only.
 */
#ifndef KB_AUTH_H
#define KB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/kb.h"

/* Kafka's AclOperation codes. */
enum {
    KB_OP_ANY = 1,
    KB_OP_ALL = 2,
    KB_OP_READ = 3,
    KB_OP_WRITE = 4,
    KB_OP_CREATE = 5,
    KB_OP_DELETE = 6,
    KB_OP_ALTER = 7,
    KB_OP_DESCRIBE = 8,
    KB_OP_CLUSTER_ACTION = 9,
    KB_OP_DESCRIBE_CONFIGS = 10,
    KB_OP_ALTER_CONFIGS = 11,
    KB_OP_IDEMPOTENT_WRITE = 12,
    KB_OP_CREATE_TOKENS = 13,
    KB_OP_DESCRIBE_TOKENS = 14,
};

/* Kafka's ResourceType codes. */
enum {
    KB_RES_ANY = 1,
    KB_RES_TOPIC = 2,
    KB_RES_GROUP = 3,
    KB_RES_CLUSTER = 4,
    KB_RES_TRANSACTIONAL_ID = 5,
    KB_RES_DELEGATION_TOKEN = 6,
    KB_RES_USER = 7,
};

/* The cluster resource's only name, as Kafka spells it. */
#define KB_CLUSTER_NAME "kafka-cluster"

typedef struct {
    char type[16];  /* "User" */
    char name[256]; /* "ANONYMOUS", "alice", "CN=sensor-7,OU=line2" */
} kb_principal_t;

/* The principal of a connection; never NULL for a live connection. */
const kb_principal_t *kb_conn_principal(const kb_conn_t *conn);
/* Sets it (SASL success, TLS client certificate). Names longer than the field are refused. */
int kb_conn_set_principal(kb_conn_t *conn, const char *type, const char *name);
/* Fills p with User:ANONYMOUS. */
void kb_principal_anonymous(kb_principal_t *p);

/*
 * An authorizer answers one question. name is not NUL-terminated (a wire string); len may be
 * 0 for the cluster. It must not block: it runs on the loop for every checked resource.
 */
typedef bool (*kb_authorizer_fn)(void *ud, kb_req_t *req, const kb_principal_t *who, int op,
                                 int resource_type, const char *name, size_t len);

/* Installs (fn != NULL) or removes the broker's authorizer. */
void kb_auth_set_authorizer(kb_broker_t *b, kb_authorizer_fn fn, void *ud);

/* May req's principal perform op on the resource? True when no authorizer is installed. */
bool kb_authorize(kb_req_t *req, int op, int resource_type, const char *name, size_t len);
/* Convenience for wire strings and for the cluster. */
bool kb_authorize_str(kb_req_t *req, int op, int resource_type, kp_str_t name);
bool kb_authorize_cluster(kb_req_t *req, int op);

/*
 * Kafka's authorized_operations bit field for a resource (Metadata, DescribeGroups,
 * DescribeCluster): bit op is set for every operation of the resource type that
 * kb_authorize allows (topic: READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS
 * ALTER_CONFIGS; group: READ DELETE DESCRIBE; cluster: CREATE ALTER DESCRIBE CLUSTER_ACTION
 * DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE).
 */
int32_t kb_authorized_operations(kb_req_t *req, int resource_type, const char *name, size_t len);

#endif
