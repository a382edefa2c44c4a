/*
 * depotctl acls and depotctl users, with kafka-acls' flags where they overlap:
 *
 *   depotctl acls --add|--remove --allow-principal P | --deny-principal P [--allow-host H]
 *                 [--deny-host H] --operation OP [--operation OP]... --topic T | --group G |
 *                 --cluster | --transactional-id ID [--resource-pattern-type literal|prefixed]
 *   depotctl acls --list [--topic T | --group G | --cluster] [--principal P]
 *                 [--resource-pattern-type any|match|literal|prefixed]
 *   depotctl users list
 *   depotctl users add --user U --password P [--mechanism SCRAM-SHA-256|SCRAM-SHA-512]
 *                      [--iterations N]          (both mechanisms when --mechanism is absent)
 *   depotctl users delete --user U [--mechanism M]
 *
 * ACL flags are parsed here (sec_opt) so the shared option parser stays small.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/depotctl.h"

static const char *const ops[] = {NULL, "Any", "All", "Read", "Write", "Create", "Delete",
                                  "Alter", "Describe", "ClusterAction", "DescribeConfigs",
                                  "AlterConfigs", "IdempotentWrite", "CreateTokens",
                                  "DescribeTokens"};
static const char *const ress[] = {NULL, "Any", "Topic", "Group", "Cluster", "TransactionalId",
                                   "DelegationToken", "User"};
static const char *const pats[] = {NULL, "Any", "Match", "Literal", "Prefixed"};
static const char *const perms[] = {NULL, "Any", "Deny", "Allow"};

static int lookup(const char *const *tab, int n, const char *s)
{
    for (int i = 1; i < n; i++) {
        /* kafka-acls accepts Read, READ, read; ClusterAction also as cluster_action */
        char a[40], b[40];
        size_t k = 0;
        for (const char *p = tab[i]; *p && k < sizeof a - 1; p++)
            a[k++] = (char)(*p | 0x20);
        a[k] = 0;
        k = 0;
        for (const char *p = s; *p && k < sizeof b - 1; p++)
            if (*p != '_' && *p != '-') b[k++] = (char)(*p | 0x20);
        b[k] = 0;
        if (!strcmp(a, b)) return i;
    }
    return -1;
}

typedef struct {
    const char *action;
    const char *allow[16], *deny[16], *allow_host, *deny_host, *principal;
    int nallow, ndeny;
    int op[16], nops;
    int res_type;
    const char *res_name;
    int pattern;
} acl_opts_t;

static int parse_acl_args(int argc, char **argv, acl_opts_t *a)
{
    memset(a, 0, sizeof *a);
    a->pattern = -1;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = strcmp(f, "--add") && strcmp(f, "--remove") && strcmp(f, "--list") &&
                     strcmp(f, "--cluster") && strcmp(f, "--force") && strncmp(f, "--bootstrap", 11) &&
                     strcmp(f, "--command-config");
        if (!strcmp(f, "--bootstrap-server") || !strcmp(f, "--command-config")) {
            i++;
            continue;
        }
        if (takes && !v) return ctl_bad("%s needs a value", f);
        if (!strcmp(f, "--add") || !strcmp(f, "--remove") || !strcmp(f, "--list"))
            a->action = f + 2;
        else if (!strcmp(f, "--force"))
            ;
        else if (!strcmp(f, "--cluster"))
            a->res_type = 4, a->res_name = "kafka-cluster";
        else if (!strcmp(f, "--topic"))
            a->res_type = 2, a->res_name = v, i++;
        else if (!strcmp(f, "--group"))
            a->res_type = 3, a->res_name = v, i++;
        else if (!strcmp(f, "--transactional-id"))
            a->res_type = 5, a->res_name = v, i++;
        else if (!strcmp(f, "--allow-principal") && a->nallow < 16)
            a->allow[a->nallow++] = v, i++;
        else if (!strcmp(f, "--deny-principal") && a->ndeny < 16)
            a->deny[a->ndeny++] = v, i++;
        else if (!strcmp(f, "--principal"))
            a->principal = v, i++;
        else if (!strcmp(f, "--allow-host"))
            a->allow_host = v, i++;
        else if (!strcmp(f, "--deny-host"))
            a->deny_host = v, i++;
        else if (!strcmp(f, "--operation") && a->nops < 16) {
            if ((a->op[a->nops++] = lookup(ops, 15, v)) < 0) return ctl_bad("unknown operation %s", v);
            i++;
        } else if (!strcmp(f, "--resource-pattern-type")) {
            if ((a->pattern = lookup(pats, 5, v)) < 0) return ctl_bad("bad pattern type %s", v);
            i++;
        } else
            return ctl_bad("unknown acls option '%s'", f);
    }
    if (!a->action) return ctl_bad("%s", "acls needs --add, --remove or --list");
    return 0;
}

static void print_acl(void *ud, const kc_acl_t *x)
{
    (void)ud;
    printf("%s:%s:%s\t%s\t%s\t%s\t%s\n", ress[x->resource_type > 0 && x->resource_type < 8 ? x->resource_type : 1],
           pats[x->pattern_type > 0 && x->pattern_type < 5 ? x->pattern_type : 1], x->name,
           x->principal, x->host,
           ops[x->operation > 0 && x->operation < 15 ? x->operation : 1],
           perms[x->permission > 0 && x->permission < 4 ? x->permission : 1]);
}

int cmd_acls(kc_client_t *c, int argc, char **argv)
{
    acl_opts_t a;
    int rc = parse_acl_args(argc, argv, &a);
    if (rc) return rc;
    if (!strcmp(a.action, "list")) {
        kc_acl_t f = {a.res_type ? a.res_type : 1, a.pattern > 0 ? a.pattern : (a.res_name ? 3 : 1),
                      1, 1, a.res_name, a.principal, NULL};
        if (a.res_name && a.pattern < 0) f.pattern_type = 3;
        printf("RESOURCE\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION\n");
        return kc_acl_describe(c, &f, print_acl, NULL) ? ctl_fail(c) : 0;
    }
    if (!a.res_type) return ctl_bad("%s", "--topic, --group, --cluster or --transactional-id is required");
    if (!a.nallow && !a.ndeny) return ctl_bad("%s", "--allow-principal or --deny-principal is required");
    if (!a.nops) return ctl_bad("%s", "--operation is required");
    int pattern = a.pattern > 0 ? a.pattern : 3;
    if (!strcmp(a.action, "add") && pattern != 3 && pattern != 4)
        return ctl_bad("%s", "--add wants --resource-pattern-type literal or prefixed");
    for (int p = 0; p < a.nallow + a.ndeny; p++) {
        bool allow = p < a.nallow;
        const char *who = allow ? a.allow[p] : a.deny[p - a.nallow];
        const char *host = allow ? (a.allow_host ? a.allow_host : "*") : (a.deny_host ? a.deny_host : "*");
        for (int k = 0; k < a.nops; k++) {
            kc_acl_t x = {a.res_type, pattern, a.op[k], allow ? 3 : 2, a.res_name, who, host};
            if (!strcmp(a.action, "add")) {
                if (kc_acl_create(c, &x, 1)) return ctl_fail(c);
                printf("added: %s %s %s on %s:%s:%s from host %s\n", perms[x.permission], who,
                       ops[x.operation], ress[x.resource_type], pats[x.pattern_type], x.name, host);
            } else {
                int n = 0;
                if (kc_acl_delete(c, &x, &n)) return ctl_fail(c);
                printf("removed %d: %s %s %s on %s:%s:%s\n", n, perms[x.permission], who,
                       ops[x.operation], ress[x.resource_type], pats[x.pattern_type], x.name);
            }
        }
    }
    return 0;
}

static void print_user(void *ud, const char *user, int mech, int iter)
{
    (void)ud;
    printf("%s\t%s\titerations=%d\n", user, mech == 1 ? "SCRAM-SHA-256" : mech == 2 ? "SCRAM-SHA-512" : "?",
           iter);
}

int cmd_users(kc_client_t *c, int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : NULL, *user = NULL, *pw = NULL, *mech = NULL;
    long iter = 4096;
    for (int i = 3; i < argc; i += 2) { /* every users option takes a value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v && strcmp(argv[i], "--help")) return ctl_bad("%s needs a value", argv[i]);
        if (!strcmp(argv[i], "--user")) user = v;
        else if (!strcmp(argv[i], "--password")) pw = v;
        else if (!strcmp(argv[i], "--mechanism")) mech = v;
        else if (!strcmp(argv[i], "--iterations")) iter = strtol(v, NULL, 10);
        else if (strcmp(argv[i], "--bootstrap-server") && strcmp(argv[i], "--command-config"))
            return ctl_bad("unknown users option '%s'", argv[i]);
    }
    if (!sub) return ctl_bad("%s", "users needs list, add or delete");
    if (!strcmp(sub, "list")) {
        printf("USER\tMECHANISM\tITERATIONS\n");
        return kc_scram_list(c, print_user, NULL) ? ctl_fail(c) : 0;
    }
    if (!user) return ctl_bad("%s", "--user is required");
    int m1 = 1, m2 = 2;
    if (mech && !strcasecmp(mech, "SCRAM-SHA-256")) m2 = 0;
    else if (mech && !strcasecmp(mech, "SCRAM-SHA-512")) m1 = 0;
    else if (mech) return ctl_bad("unknown mechanism %s", mech);
    if (!strcmp(sub, "add")) {
        if (!pw) return ctl_bad("%s", "--password is required");
        if ((m1 && kc_scram_alter(c, user, m1, pw, (int)iter)) ||
            (m2 && kc_scram_alter(c, user, m2, pw, (int)iter)))
            return ctl_fail(c);
        printf("user %s: credentials set\n", user);
        return 0;
    }
    if (!strcmp(sub, "delete")) {
        int done = 0;
        for (int m = 1; m <= 2; m++) {
            if ((m == 1 && !m1) || (m == 2 && !m2)) continue;
            if (kc_scram_alter(c, user, m, NULL, 0) == 0) done++;
            else if (kc_client_kafka_error(c) != 91) return ctl_fail(c); /* 91: none for this mech */
        }
        if (!done) {
            fprintf(stderr, "depotctl: user %s has no SCRAM credential\n", user);
            return 1;
        }
        printf("user %s: deleted\n", user);
        return 0;
    }
    return ctl_bad("unknown users command '%s'", sub);
}

/* Static storage for what --command-config read (depotctl runs one command). */
static char mech_buf[32], user_buf[256], pw_buf[256], ca_buf[1024], cert_buf[1024], key_buf[1024];

static bool jaas_value(const char *jaas, const char *key, char *out, size_t cap)
{
    const char *p = strstr(jaas, key);
    while (p && p > jaas && p[-1] != ' ' && p[-1] != '\t')
        p = strstr(p + 1, key);
    if (!p) return false;
    p += strlen(key);
    while (*p == ' ') p++;
    if (*p++ != '=') return false;
    while (*p == ' ') p++;
    if (*p++ != '"') return false;
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap) return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return true;
}

int ctl_command_config(const char *path, kc_config_t *cfg)
{
    FILE *f = fopen(path, "r");
    if (!f) return ctl_bad("cannot read --command-config %s", path);
    char line[2048];
    bool sasl = false, tls = false;
    while (fgets(line, sizeof line, f)) {
        char *nl = strpbrk(line, "\r\n");
        if (nl) *nl = 0;
        char *eq = strchr(line, '=');
        if (!eq || line[0] == '#') continue;
        *eq = 0;
        const char *k = line, *v = eq + 1;
        if (!strcmp(k, "security.protocol")) {
            sasl = !strncasecmp(v, "SASL_", 5);
            tls = !strcasecmp(v, "SSL") || !strcasecmp(v, "SASL_SSL");
        } else if (!strcmp(k, "ssl.ca.location") || !strcmp(k, "ssl.truststore.location"))
            snprintf(ca_buf, sizeof ca_buf, "%s", v); /* librdkafka's or Java's (PEM) name */
        else if (!strcmp(k, "ssl.certificate.location") || !strcmp(k, "ssl.keystore.location"))
            snprintf(cert_buf, sizeof cert_buf, "%s", v);
        else if (!strcmp(k, "ssl.key.location"))
            snprintf(key_buf, sizeof key_buf, "%s", v);
        else if (!strcmp(k, "sasl.mechanism") || !strcmp(k, "sasl.mechanisms"))
            snprintf(mech_buf, sizeof mech_buf, "%s", v);
        else if (!strcmp(k, "sasl.username"))
            snprintf(user_buf, sizeof user_buf, "%s", v);
        else if (!strcmp(k, "sasl.password"))
            snprintf(pw_buf, sizeof pw_buf, "%s", v);
        else if (!strcmp(k, "sasl.jaas.config")) {
            jaas_value(v, "username", user_buf, sizeof user_buf);
            jaas_value(v, "password", pw_buf, sizeof pw_buf);
        }
    }
    fclose(f);
    if (tls) {
        if (!ca_buf[0]) return ctl_bad("%s: SSL needs ssl.ca.location (or a PEM "
                                       "ssl.truststore.location)", path);
        cfg->ssl_ca_location = ca_buf;
        cfg->ssl_certificate_location = cert_buf[0] ? cert_buf : NULL;
        cfg->ssl_key_location = key_buf[0] ? key_buf : NULL;
    }
    if (!sasl) return 0;
    if (!mech_buf[0]) snprintf(mech_buf, sizeof mech_buf, "GSSAPI"); /* Kafka's default */
    cfg->sasl_mechanism = mech_buf;
    cfg->sasl_username = user_buf;
    cfg->sasl_password = pw_buf;
    return 0;
}

int ctl_security_main(int argc, char **argv)
{
    const char *bootstrap = "127.0.0.1:9092", *conf = NULL;
    for (int i = 2; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--bootstrap-server")) bootstrap = argv[i + 1];
        if (!strcmp(argv[i], "--command-config")) conf = argv[i + 1];
    }
    kc_config_t cfg = {.bootstrap = bootstrap, .client_id = "depotctl", .retries = -1};
    int rc = conf ? ctl_command_config(conf, &cfg) : 0;
    if (rc) return rc;
    kc_client_t *c = kc_client_new(&cfg);
    if (!c) {
        fprintf(stderr, "depotctl: out of memory\n");
        return 1;
    }
    if (kc_client_connect(c))
        rc = ctl_fail(c);
    else if (!strcmp(argv[1], "acls"))
        rc = cmd_acls(c, argc, argv);
    else
        rc = cmd_users(c, argc, argv);
    kc_client_free(c);
    return rc;
}
