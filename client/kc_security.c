/*
 * Security administration: ACLs (CreateAcls, DescribeAcls, DeleteAcls) and SCRAM credentials
 * (DescribeUserScramCredentials, AlterUserScramCredentials: the salted password is computed
 * here, so the password itself never leaves the client). Sent to the controller, like topics.
 */
#include "client/kc_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/gen/kp_alter_user_scram_credentials.h"
#include "protocol/gen/kp_create_acls.h"
#include "protocol/gen/kp_delete_acls.h"
#include "protocol/gen/kp_describe_acls.h"
#include "protocol/gen/kp_describe_user_scram_credentials.h"
#include "protocol/kp_errors.h"

static int boot_conn(kc_client_t *c, kc_conn_t **conn)
{
    kc_metadata_t *md;
    int rc = kc_metadata_get(c, NULL, 0, false, &md);
    if (rc) return rc;
    int32_t id = md->controller_id;
    kc_metadata_free(md);
    return kc_client_conn(c, id, conn);
}

static kp_str_t nstr(const char *s)
{
    return s ? kp_str(s) : (kp_str_t){NULL, -1};
}

int kc_acl_create(kc_client_t *c, const kc_acl_t *acls, int n)
{
    kc_clear_error(c);
    kc_conn_t *conn;
    int rc = boot_conn(c, &conn);
    if (rc) return rc;
    kp_create_acls_req_acl_creation_t *cr = calloc((size_t)n + 1, sizeof *cr);
    if (!cr) return kc_fail(c, K_ERR_NOMEM, 0, "out of memory");
    for (int i = 0; i < n; i++) {
        kp_create_acls_req_acl_creation_init(&cr[i]);
        cr[i].resource_type = acls[i].resource_type;
        cr[i].resource_name = kp_str(acls[i].name);
        cr[i].resource_pattern_type = acls[i].pattern_type;
        cr[i].principal = kp_str(acls[i].principal);
        cr[i].host = kp_str(acls[i].host);
        cr[i].operation = acls[i].operation;
        cr[i].permission_type = acls[i].permission;
    }
    kp_create_acls_req_t req = {cr, n};
    kp_create_acls_resp_t resp;
    kp_create_acls_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_CREATE_ACLS, &req, &resp, &rx, 0);
    for (int i = 0; !rc && i < resp.results_count; i++)
        if (resp.results[i].error_code)
            rc = kc_kafka_fail(c, resp.results[i].error_code, "creating ACLs",
                               resp.results[i].error_message);
    kc_rx_deinit(&rx);
    free(cr);
    return rc;
}

/* Calls fn for every ACL the broker holds that the filter selects. */
int kc_acl_describe(kc_client_t *c, const kc_acl_t *filter,
                    void (*fn)(void *ud, const kc_acl_t *acl), void *ud)
{
    kc_clear_error(c);
    kc_conn_t *conn;
    int rc = boot_conn(c, &conn);
    if (rc) return rc;
    kp_describe_acls_req_t req = {filter->resource_type, nstr(filter->name),
                                  filter->pattern_type, nstr(filter->principal),
                                  nstr(filter->host), filter->operation, filter->permission};
    kp_describe_acls_resp_t resp;
    kp_describe_acls_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_DESCRIBE_ACLS, &req, &resp, &rx, 0);
    if (!rc && resp.error_code)
        rc = kc_kafka_fail(c, resp.error_code, "describing ACLs", resp.error_message);
    for (int r = 0; !rc && r < resp.resources_count; r++) {
        const kp_describe_acls_resp_describe_acls_resource_t *res = &resp.resources[r];
        for (int i = 0; i < res->acls_count; i++) {
            char name[512], principal[512], host[256];
            snprintf(name, sizeof name, "%.*s", (int)res->resource_name.len, res->resource_name.ptr);
            snprintf(principal, sizeof principal, "%.*s", (int)res->acls[i].principal.len,
                     res->acls[i].principal.ptr);
            snprintf(host, sizeof host, "%.*s", (int)res->acls[i].host.len, res->acls[i].host.ptr);
            kc_acl_t a = {res->resource_type, res->pattern_type, res->acls[i].operation,
                          res->acls[i].permission_type, name, principal, host};
            fn(ud, &a);
        }
    }
    kc_rx_deinit(&rx);
    return rc;
}

int kc_acl_delete(kc_client_t *c, const kc_acl_t *filter, int *deleted)
{
    kc_clear_error(c);
    kc_conn_t *conn;
    int rc = boot_conn(c, &conn);
    if (rc) return rc;
    kp_delete_acls_req_delete_acls_filter_t f = {filter->resource_type, nstr(filter->name),
                                                filter->pattern_type, nstr(filter->principal),
                                                nstr(filter->host), filter->operation,
                                                filter->permission};
    kp_delete_acls_req_t req = {&f, 1};
    kp_delete_acls_resp_t resp;
    kp_delete_acls_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_DELETE_ACLS, &req, &resp, &rx, 0);
    if (!rc && resp.filter_results_count != 1)
        rc = kc_fail(c, K_ERR_MALFORMED, 0, "DeleteAcls: no result for the filter");
    if (!rc && resp.filter_results[0].error_code)
        rc = kc_kafka_fail(c, resp.filter_results[0].error_code, "deleting ACLs",
                           resp.filter_results[0].error_message);
    if (!rc && deleted) *deleted = resp.filter_results[0].matching_acls_count;
    kc_rx_deinit(&rx);
    return rc;
}

int kc_scram_list(kc_client_t *c, void (*fn)(void *ud, const char *user, int mech, int iter),
                  void *ud)
{
    kc_clear_error(c);
    kc_conn_t *conn;
    int rc = boot_conn(c, &conn);
    if (rc) return rc;
    kp_describe_user_scram_credentials_req_t req = {NULL, -1};
    kp_describe_user_scram_credentials_resp_t resp;
    kp_describe_user_scram_credentials_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_DESCRIBE_USER_SCRAM_CREDENTIALS, &req, &resp, &rx, 0);
    if (!rc && resp.error_code)
        rc = kc_kafka_fail(c, resp.error_code, "listing users", resp.error_message);
    for (int i = 0; !rc && i < resp.results_count; i++) {
        char user[300];
        snprintf(user, sizeof user, "%.*s", (int)resp.results[i].user.len, resp.results[i].user.ptr);
        for (int k = 0; k < resp.results[i].credential_infos_count; k++)
            fn(ud, user, resp.results[i].credential_infos[k].mechanism,
               resp.results[i].credential_infos[k].iterations);
    }
    kc_rx_deinit(&rx);
    return rc;
}

/* mech 1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512; password NULL deletes. */
int kc_scram_alter(kc_client_t *c, const char *user, int mech, const char *password,
                   int iterations)
{
    kc_clear_error(c);
    const EVP_MD *md = mech == 1 ? EVP_sha256() : mech == 2 ? EVP_sha512() : NULL;
    if (!md) return kc_fail(c, K_ERR_INVAL, 0, "unknown SCRAM mechanism");
    kc_conn_t *conn;
    int rc = boot_conn(c, &conn);
    if (rc) return rc;
    uint8_t salt[32], salted[64];
    kp_alter_user_scram_credentials_req_scram_credential_deletion_t del = {kp_str(user),
                                                                          (int8_t)mech};
    kp_alter_user_scram_credentials_req_scram_credential_upsertion_t up;
    kp_alter_user_scram_credentials_req_t req = {NULL, 0, NULL, 0};
    if (password) {
        if (RAND_bytes(salt, sizeof salt) != 1) return kc_fail(c, K_ERR_IO, 0, "no randomness");
        PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof salt, iterations, md,
                          EVP_MD_size(md), salted);
        up = (kp_alter_user_scram_credentials_req_scram_credential_upsertion_t){
            kp_str(user), (int8_t)mech, iterations, {salt, sizeof salt},
            {salted, EVP_MD_size(md)}};
        req.upsertions = &up;
        req.upsertions_count = 1;
    } else {
        req.deletions = &del;
        req.deletions_count = 1;
    }
    kp_alter_user_scram_credentials_resp_t resp;
    kp_alter_user_scram_credentials_resp_init(&resp);
    kc_rx_t rx;
    kc_rx_init(&rx);
    rc = kc_conn_call(c, conn, KP_API_ALTER_USER_SCRAM_CREDENTIALS, &req, &resp, &rx, 0);
    OPENSSL_cleanse(salted, sizeof salted);
    if (!rc && resp.results_count != 1)
        rc = kc_fail(c, K_ERR_MALFORMED, 0, "AlterUserScramCredentials: no result");
    if (!rc && resp.results[0].error_code)
        rc = kc_kafka_fail(c, resp.results[0].error_code, "changing a SCRAM credential",
                           resp.results[0].error_message);
    kc_rx_deinit(&rx);
    return rc;
}
