/*
 * DescribeUserScramCredentials (50) and AlterUserScramCredentials (51), v0: the SCRAM
 * credential store through Kafka's own admin API (kafka-configs --entity-type users,
 * AdminClient.alterUserScramCredentials, depotctl users). Describing needs DESCRIBE on the
 * cluster, altering ALTER on the cluster (only enforced when an authorizer is on, as in Kafka).
 * An upsertion carries the salted password, never the password; the store keeps StoredKey and
 * ServerKey derived from it. A change is made on a copy of the store, its file written durably
 * off the loop (h_auth_writes.h), and only then applied in memory and answered: a credential
 * authenticates once it is durable. A failed write changes nothing in memory (= the disk) and
 * answers UNKNOWN_SERVER_ERROR.
 */
#include <string.h>

#include "broker/api/h_auth_writes.h"
#include "broker/auth/audit.h"
#include "broker/auth/auth.h"
#include "broker/auth/sasl.h"
#include "broker/core/util.h"
#include "protocol/gen/kp_alter_user_scram_credentials.h"
#include "protocol/gen/kp_describe_user_scram_credentials.h"
#include "protocol/kp_errors.h"

typedef kp_describe_user_scram_credentials_resp_describe_user_scram_credentials_result_t dres_t;
typedef kp_describe_user_scram_credentials_resp_credential_info_t cinfo_t;
typedef kp_alter_user_scram_credentials_resp_alter_user_scram_credentials_result_t ares_t;

/* Fills r with user's credentials (0 of them: RESOURCE_NOT_FOUND). */
static int describe_one(kb_req_t *req, kb_creds_t *c, const char *user, dres_t *r)
{
    kp_describe_user_scram_credentials_resp_describe_user_scram_credentials_result_init(r);
    r->user = kp_str(kb_arena_strdup(&req->arena, user));
    int n = kb_creds_count(c), k = 0;
    cinfo_t *ci = kp_arena_alloc(&req->arena, 2 * sizeof *ci);
    if (!ci || !r->user.ptr) return K_ERR_NOMEM;
    for (int i = 0; i < n && k < 2; i++)
        if (!strcmp(kb_creds_user(c, i), user)) {
            kp_describe_user_scram_credentials_resp_credential_info_init(&ci[k]);
            ci[k].mechanism = (int8_t)kb_creds_cred(c, i)->mech;
            ci[k].iterations = kb_creds_cred(c, i)->iterations;
            k++;
        }
    r->credential_infos = ci;
    r->credential_infos_count = k;
    if (!k) {
        r->error_code = KP_ERR_RESOURCE_NOT_FOUND;
        r->error_message = kp_str("Attempt to describe a user credential that does not exist");
    }
    return 0;
}

int kb_handle_describe_user_scram_credentials(kb_req_t *req)
{
    kp_describe_user_scram_credentials_req_t m;
    kp_describe_user_scram_credentials_req_init(&m);
    if (kp_describe_user_scram_credentials_req_decode(&req->body, req->hdr.api_version,
                                                      &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    kp_describe_user_scram_credentials_resp_t resp;
    kp_describe_user_scram_credentials_resp_init(&resp);
    kb_creds_t *c = kb_sasl_creds(req->broker);
    if (!kb_authorize_cluster(req, KB_OP_DESCRIBE)) {
        resp.error_code = KP_ERR_CLUSTER_AUTHORIZATION_FAILED;
    } else if (m.users_count <= 0) { /* null or empty: every user */
        int n = kb_creds_count(c), k = 0;
        dres_t *out = n ? kp_arena_alloc(&req->arena, (size_t)n * sizeof *out) : NULL;
        if (n && !out) return K_ERR_NOMEM;
        for (int i = 0; i < n; i++) {
            const char *u = kb_creds_user(c, i);
            bool seen = false;
            for (int j = 0; j < k && !seen; j++)
                seen = !strcmp(out[j].user.ptr, u);
            if (!seen && describe_one(req, c, u, &out[k++]) < 0) return K_ERR_NOMEM;
        }
        resp.results = out;
        resp.results_count = k;
    } else {
        int n = m.users_count;
        dres_t *out = kp_arena_alloc(&req->arena, (size_t)n * sizeof *out);
        if (!out) return K_ERR_NOMEM;
        for (int i = 0; i < n; i++) {
            char user[KB_SCRAM_MAX_USER + 1];
            bool dup = false;
            for (int j = 0; j < n && !dup; j++)
                dup = j != i && m.users[j].name.len == m.users[i].name.len &&
                      (m.users[i].name.len <= 0 ||
                       !memcmp(m.users[j].name.ptr, m.users[i].name.ptr,
                               (size_t)m.users[i].name.len));
            if (!kb_str_copy(m.users[i].name, user, sizeof user)) user[0] = 0;
            if (describe_one(req, c, user, &out[i]) < 0) return K_ERR_NOMEM;
            if (dup) {
                out[i].error_code = KP_ERR_DUPLICATE_RESOURCE;
                out[i].error_message = kp_str("Cannot describe SCRAM credentials for the same "
                                              "user twice in a single request");
                out[i].credential_infos_count = 0;
            }
        }
        resp.results = out;
        resp.results_count = n;
    }
    int rc = kp_describe_user_scram_credentials_resp_encode(&req->resp, req->hdr.api_version,
                                                            &resp);
    return rc < 0 ? rc : KB_DONE;
}

/* Same (user, mechanism) twice in one request? */
static bool twice(const kp_alter_user_scram_credentials_req_t *m, kp_str_t name, int mech)
{
    int k = 0;
    for (int i = 0; i < m->deletions_count; i++)
        k += m->deletions[i].mechanism == mech && m->deletions[i].name.len == name.len &&
             (name.len <= 0 || !memcmp(m->deletions[i].name.ptr, name.ptr, (size_t)name.len));
    for (int i = 0; i < m->upsertions_count; i++)
        k += m->upsertions[i].mechanism == mech && m->upsertions[i].name.len == name.len &&
             (name.len <= 0 || !memcmp(m->upsertions[i].name.ptr, name.ptr, (size_t)name.len));
    return k > 1;
}

static int16_t do_delete(kb_creds_t *c, const kp_alter_user_scram_credentials_req_t *m,
                         int i, const char **msg)
{
    const kp_alter_user_scram_credentials_req_scram_credential_deletion_t *d = &m->deletions[i];
    char user[KB_SCRAM_MAX_USER + 1];
    if (!kb_str_copy(d->name, user, sizeof user) || !user[0]) {
        *msg = "user name is empty or too long";
        return KP_ERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (!kb_scram_digest_len(d->mechanism)) {
        *msg = "unknown SCRAM mechanism";
        return KP_ERR_UNSUPPORTED_SASL_MECHANISM;
    }
    if (twice(m, d->name, d->mechanism)) {
        *msg = "a user's credential for one mechanism may change only once per request";
        return KP_ERR_DUPLICATE_RESOURCE;
    }
    if (kb_creds_delete(c, user, d->mechanism) < 0) {
        *msg = "Attempt to delete a user credential that does not exist";
        return KP_ERR_RESOURCE_NOT_FOUND;
    }
    return 0;
}

static int16_t do_upsert(kb_creds_t *c, const kp_alter_user_scram_credentials_req_t *m, int i,
                         const char **msg)
{
    const kp_alter_user_scram_credentials_req_scram_credential_upsertion_t *u = &m->upsertions[i];
    char user[KB_SCRAM_MAX_USER + 1];
    size_t dl = kb_scram_digest_len(u->mechanism);
    if (!kb_str_copy(u->name, user, sizeof user) || !user[0]) {
        *msg = "user name is empty or too long";
        return KP_ERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (!dl) {
        *msg = "unknown SCRAM mechanism";
        return KP_ERR_UNSUPPORTED_SASL_MECHANISM;
    }
    if (twice(m, u->name, u->mechanism)) {
        *msg = "a user's credential for one mechanism may change only once per request";
        return KP_ERR_DUPLICATE_RESOURCE;
    }
    if (u->iterations < KB_SCRAM_MIN_ITERATIONS || u->iterations > KB_SCRAM_MAX_ITERATIONS) {
        *msg = "iterations must be between 4096 and 16384";
        return KP_ERR_UNACCEPTABLE_CREDENTIAL;
    }
    kb_scram_cred_t cred;
    if (u->salt.len <= 0 || u->salt.len > KB_SCRAM_MAX_SALT ||
        u->salted_password.len != (int32_t)dl ||
        kb_scram_cred_from_salted(u->mechanism, u->salt.ptr, (size_t)u->salt.len,
                                  u->iterations, u->salted_password.ptr, dl, &cred) < 0) {
        *msg = "salt or salted password has the wrong size";
        return KP_ERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (kb_creds_upsert(c, user, &cred) < 0) {
        *msg = "out of memory";
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    return 0;
}

/* AlterUserScramCredentials between its handler and its answer (in the request's arena). */
typedef struct {
    kp_alter_user_scram_credentials_resp_t resp;
    int nd;
} alter_ctx_t;

static int alter_done(kb_req_t *req, void *ud, bool ok)
{
    alter_ctx_t *x = ud;
    for (int i = 0; i < x->resp.results_count; i++) {
        ares_t *o = &x->resp.results[i];
        if (o->error_code) continue;
        if (!ok) {
            o->error_code = KP_ERR_UNKNOWN_SERVER_ERROR;
            o->error_message = kp_str("the credential file could not be written");
            continue;
        }
        kb_log(KB_LOG_INFO, "SCRAM credential of '%.*s' %s by %s:%s",
               o->user.len > 0 ? (int)o->user.len : 0, o->user.ptr,
               i < x->nd ? "deleted" : "set", kb_conn_principal(req->conn)->type,
               kb_conn_principal(req->conn)->name);
    }
    int rc = kp_alter_user_scram_credentials_resp_encode(&req->resp, req->hdr.api_version,
                                                         &x->resp);
    return rc < 0 ? rc : KB_DONE;
}

static void creds_apply(kb_broker_t *b, void *next)
{
    kb_creds_t *live = kb_sasl_creds(b);
    if (live) kb_creds_swap(live, next);
}

static void creds_free(void *next)
{
    kb_creds_free(next);
}

/* Hands next (owned from here on) to the credential file's write queue; alter_done answers. */
static int save_later(kb_req_t *req, kb_creds_t *next, alter_ctx_t *x)
{
    char *text = NULL;
    size_t len = 0;
    const char *dir = kb_creds_dir(kb_sasl_creds(req->broker));
    if (!dir || kb_creds_render(next, &text, &len) < 0) {
        kb_creds_free(next);
        return alter_done(req, x, false);
    }
    kb_authw_t w = {KB_AUTHW_CREDS, dir, KB_CREDS_FILE, text, len, next, creds_free,
                    creds_apply, alter_done, x};
    return kb_authw_submit(req, &w);
}

int kb_handle_alter_user_scram_credentials(kb_req_t *req)
{
    kp_alter_user_scram_credentials_req_t m;
    kp_alter_user_scram_credentials_req_init(&m);
    if (kp_alter_user_scram_credentials_req_decode(&req->body, req->hdr.api_version,
                                                   &req->arena, &m) < 0)
        return K_ERR_MALFORMED;
    int nd = m.deletions_count > 0 ? m.deletions_count : 0;
    int nu = m.upsertions_count > 0 ? m.upsertions_count : 0;
    alter_ctx_t *x = kp_arena_alloc(&req->arena, sizeof *x);
    if (!x) return K_ERR_NOMEM;
    kp_alter_user_scram_credentials_resp_init(&x->resp);
    x->nd = nd;
    ares_t *out = nd + nu ? kp_arena_alloc(&req->arena, (size_t)(nd + nu) * sizeof *out) : NULL;
    if (nd + nu && !out) return K_ERR_NOMEM;
    x->resp.results = out;
    x->resp.results_count = nd + nu;
    for (int i = 0; i < nd + nu; i++) { /* which users, for the audit trail's intent */
        kp_str_t u = i < nd ? m.deletions[i].name : m.upsertions[i - nd].name;
        int mech = i < nd ? m.deletions[i].mechanism : m.upsertions[i - nd].mechanism;
        kb_audit_detail_add(req, "%s %.*s mechanism %d", i < nd ? "delete" : "upsert",
                            (int)(u.len < 0 || !u.ptr ? 0 : u.len > 300 ? 300 : u.len), u.ptr ? u.ptr : "",
                            mech);
    }
    bool allowed = kb_authorize_cluster(req, KB_OP_ALTER);
    /* The change is computed on a copy of the newest store (the one queued writes leave). */
    kb_creds_t *live = kb_sasl_creds(req->broker), *c = NULL;
    if (allowed && live) {
        void *latest = kb_authw_latest(req->broker, KB_AUTHW_CREDS);
        c = kb_creds_clone(latest ? latest : live); /* owned here until handed on */
        if (!c) return K_ERR_NOMEM;
    }
    int changed = 0;
    for (int i = 0; i < nd + nu; i++) {
        kp_alter_user_scram_credentials_resp_alter_user_scram_credentials_result_init(&out[i]);
        out[i].user = i < nd ? m.deletions[i].name : m.upsertions[i - nd].name;
        const char *msg = NULL;
        int16_t err = !allowed ? KP_ERR_CLUSTER_AUTHORIZATION_FAILED
                      : !c     ? KP_ERR_UNKNOWN_SERVER_ERROR
                      : i < nd ? do_delete(c, &m, i, &msg)
                               : do_upsert(c, &m, i - nd, &msg);
        out[i].error_code = err;
        if (msg) out[i].error_message = kp_str(msg);
        changed += !err;
    }
    if (changed) return save_later(req, c, x);
    kb_creds_free(c);
    return alter_done(req, x, true);
}
