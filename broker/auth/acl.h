/*
 * ACLs with Kafka's model and semantics (KIP-11, KIP-290 prefixed patterns), and the
 * authorizer installed with kb_auth_set_authorizer when authorizer.class.name is set.
 *
 * A binding: resource (type, name, pattern LITERAL or PREFIXED) + entry (principal, host,
 * operation, permission ALLOW or DENY). Numbers are Kafka's (AclOperation, ResourceType,
 * PatternType, AclPermissionType) so they go on the wire unchanged.
 *
 * Decision for (principal, host, op, resource), as Kafka's StandardAuthorizer:
 *   1. a super user (super.users) is allowed;
 *   2. the bindings that apply are those whose pattern matches the resource (LITERAL equal
 *      name, LITERAL "*", PREFIXED a prefix of the name) and whose principal (or User:*) and
 *      host (or *) match;
 *   3. any DENY for op (or ALL) → denied;
 *   4. any ALLOW for op, ALL, or an operation implying op (READ/WRITE/DELETE/ALTER imply
 *      DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS) → allowed;
 *   5. no binding at all on the resource (any principal, any operation) →
 *      allow.everyone.if.no.acl.found; otherwise denied.
 *
 * Storage: <log.dirs[0]>/__acls, rewritten atomically on every change (same discipline and
 * per-line CRC-32C as the credential file, see creds.h):
 *
 *   <crc> <resource_type> <pattern_type> <operation> <permission> <principal> <host> <name>
 *
 * numbers in decimal, the three strings percent-encoded. A corrupt line stops the start
 * (file:line in the log): losing an ACL silently could open or close the plant.
 *
 * Thread: loop thread (kb_acls_render and the clones: any thread that owns them).
 */
#ifndef KB_ACL_H
#define KB_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/auth/auth.h"
#include "broker/core/subsys.h"

/* Kafka's PatternType and AclPermissionType codes. */
enum { KB_PAT_ANY = 1, KB_PAT_MATCH = 2, KB_PAT_LITERAL = 3, KB_PAT_PREFIXED = 4 };
enum { KB_PERM_ANY = 1, KB_PERM_DENY = 2, KB_PERM_ALLOW = 3 };

#define KB_ACL_FILE "__acls"
#define KB_ACL_MAX 100000 /* bindings; a CreateAcls beyond it is refused */

typedef struct {
    int8_t resource_type;
    int8_t pattern_type; /* LITERAL or PREFIXED in a binding */
    int8_t operation;
    int8_t permission;
    char *name;      /* owned by the list */
    char *principal; /* "User:alice", "User:*" */
    char *host;      /* "*" or an address */
} kb_acl_t;

/* A filter (DescribeAcls, DeleteAcls): NULL strings match anything; ANY codes match all;
 * pattern MATCH selects the bindings that would apply to the named resource. */
typedef struct {
    int8_t resource_type;
    int8_t pattern_type;
    int8_t operation;
    int8_t permission;
    const char *name;
    size_t name_len;
    const char *principal;
    size_t principal_len;
    const char *host;
    size_t host_len;
} kb_acl_filter_t;

typedef struct kb_acls kb_acls_t;

int kb_acls_open(const char *dir, kb_acls_t **out, char *err, size_t errlen);
/* An empty list that is never saved (scratch, tests); NULL when out of memory. */
kb_acls_t *kb_acls_new(void);
void kb_acls_free(kb_acls_t *a);
int kb_acls_count(const kb_acls_t *a);
const kb_acl_t *kb_acls_at(const kb_acls_t *a, int i);
/* Adds a binding (copied); an identical one already present is not duplicated. */
int kb_acls_add(kb_acls_t *a, const kb_acl_t *b);
/* Does the filter select binding b? */
bool kb_acl_filter_matches(const kb_acl_filter_t *f, const kb_acl_t *b);
int kb_acls_remove_at(kb_acls_t *a, int i);
/* Writes the list to its file durably, here (start-up, tests; a request goes through
 * h_auth_writes.c instead). */
int kb_acls_save(kb_acls_t *a);
/* The file's text for a (heap, owned by the caller in *text); 0 or a negative status. */
int kb_acls_render(const kb_acls_t *a, char **text, size_t *len);
/* A copy of a's bindings that is never saved (owned by the caller); NULL out of memory. */
kb_acls_t *kb_acls_clone(const kb_acls_t *a);
/* Exchanges the bindings of live and other (each keeps its dir): a change computed on a
 * clone goes live in one step once its file is durable. */
void kb_acls_swap(kb_acls_t *live, kb_acls_t *other);
/* The directory a's file is in; NULL for a list that is never saved. */
const char *kb_acls_dir(const kb_acls_t *a);

/* Validates a binding from the wire; returns 0 or a reason in why. */
int kb_acl_validate(const kb_acl_t *b, char *why, size_t whylen);

/*
 * The decision (see above). principal is "Type:name", host the client's address (no port).
 * super_users is the super.users value (';'-separated principals).
 */
bool kb_acls_authorize(const kb_acls_t *a, const char *super_users, bool allow_if_no_acl,
                       const char *principal, const char *host, int op, int resource_type,
                       const char *name, size_t len);

/* Names for logs and depotctl ("READ", "TOPIC", "PREFIXED", "ALLOW"); NULL when unknown. */
const char *kb_acl_op_name(int op);
const char *kb_acl_res_name(int res);
const char *kb_acl_pattern_name(int pat);
const char *kb_acl_perm_name(int perm);

/* The authorizer subsystem (broker/subsystems.c): loads the ACLs and installs the authorizer
 * when authorizer.class.name is set. */
extern const kb_subsys_t kb_acl_subsys;
/* The broker's ACL list, NULL when no authorizer is configured. */
kb_acls_t *kb_acl_list(kb_broker_t *b);

#endif
