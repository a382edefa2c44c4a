/*
 * depotctl: command-line producer, consumer and topic admin for Depot (or any Kafka broker),
 * with the flags of Kafka's console tools where they overlap.
 *
 *   depotctl produce --topic T [--property parse.key=true] [--property key.separator=:]
 *                    [--property parse.headers=true]   (lines "h1:v1,h2:v2<TAB>key:value")
 *   depotctl consume --topic T [--from-beginning] [--partition P [--offset O]]
 *                    [--max-messages N] [--timeout-ms MS] [--property print.key=true]
 *                    [--property print.{headers,timestamp,partition,offset}=true]
 *   depotctl topics  --list | --create | --delete | --describe [--topic T] [--partitions N]
 *                    [--replication-factor R] [--config k=v]...
 *   depotctl consume --topic T --group G ...     (depotctl_groups.c)
 *   depotctl groups  --list | --describe --group G | --reset-offsets ...   (depotctl_groups.c)
 *   depotctl connect-standalone WORKER.properties CONNECTOR.properties...  (connect_*.c)
 *   depotctl status [--metrics-url http://H:P] [--json]   (depotctl_status.c, over HTTP)
 *   depotctl schemas list|get|register|check ...   (depotctl_schemas.c, over HTTP)
 *   depotctl uplink status [--data-dir DIR] [--json]   (depotctl_uplink.c)
 * Every command takes --bootstrap-server H:P (default 127.0.0.1:9092). Failures print the
 * Kafka error name and a sentence, and exit 1 (2 for usage errors).
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/connect.h"
#include "client/depotctl.h"
#include "protocol/kp_errors.h"

#define MAX_HEADERS 32

volatile sig_atomic_t ctl_stop;

static void on_signal(int sig)
{
    (void)sig;
    ctl_stop = 1;
}

static void usage(void)
{
    fputs("usage: depotctl produce --topic T [--bootstrap-server H:P] [--property parse.key=true]\n"
          "                        [--property key.separator=S] [--property parse.headers=true]\n"
          "                        [--partition P]\n"
          "                        [--compression-codec none|gzip|snappy|lz4|zstd] [--acks A]\n"
          "       depotctl consume --topic T [--bootstrap-server H:P] [--from-beginning]\n"
          "                        [--partition P [--offset O|earliest|latest]]\n"
          "                        [--max-messages N] [--timeout-ms MS]\n"
          "                        [--property print.key=true] [--property key.separator=S]\n"
          "                        [--property print.{headers,timestamp,partition,offset}=true]\n"
          "                        [--group G]   (join group G, commit after printing)\n"
          "       depotctl topics  --list|--create|--delete|--describe [--topic T]\n"
          "                        [--bootstrap-server H:P] [--partitions N]\n"
          "                        [--replication-factor R] [--config k=v]...\n"
          "       depotctl acls    --add|--remove|--list [--allow-principal P] [--deny-principal P]\n"
          "                        [--operation OP]... [--topic T|--group G|--cluster]\n"
          "                        [--resource-pattern-type literal|prefixed|match|any]\n"
          "       depotctl users   list | add --user U --password P [--mechanism M] | delete --user U\n"
          "       (every command: --command-config FILE with Kafka client SASL properties)\n"
          "       depotctl groups  --list | --describe --group G\n"
          "       depotctl groups  --reset-offsets --group G --topic T\n"
          "                        --to-earliest|--to-latest|--to-offset N [--execute]\n"
          "       depotctl connect-standalone WORKER.properties CONNECTOR.properties...\n"
          "       depotctl status  [--metrics-url http://127.0.0.1:9644] [--json]\n"
          "                        [--timeout-ms MS]   (the broker's metrics listener)\n"
          "       depotctl schemas list|get|register|check [--registry URL] ...\n"
          "       depotctl uplink status [--data-dir DIR] [--json]\n",
          stderr);
}

int ctl_bad(const char *fmt, const char *arg)
{
    fprintf(stderr, "depotctl: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    usage();
    return 2;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static int set_property(opts_t *o, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq) return ctl_bad("--property wants key=value, got '%s'", kv);
    size_t kl = (size_t)(eq - kv);
    const char *v = eq + 1;
    static const struct {
        const char *name;
        size_t off;
    } flags[] = {
        {"parse.key", offsetof(opts_t, parse_key)},
        {"print.key", offsetof(opts_t, print_key)},
        {"parse.headers", offsetof(opts_t, parse_headers)},
        {"print.headers", offsetof(opts_t, print_headers)},
        {"print.timestamp", offsetof(opts_t, print_timestamp)},
        {"print.offset", offsetof(opts_t, print_offset)},
        {"print.partition", offsetof(opts_t, print_partition)},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (strlen(flags[i].name) == kl && !strncmp(kv, flags[i].name, kl)) {
            *(bool *)((char *)o + flags[i].off) = !strcmp(v, "true");
            return 0;
        }
    if (kl == 13 && !strncmp(kv, "key.separator", kl))
        o->key_sep = v;
    else
        fprintf(stderr, "depotctl: ignoring unknown property '%s'\n", kv);
    return 0;
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->bootstrap = "127.0.0.1:9092";
    o->partition = -1;
    o->max_messages = -1;
    o->timeout_ms = -1;
    o->key_sep = "\t";
    o->acks = -1;
    o->partitions = 1;
    o->replication = 1;
    if (argc < 2) return ctl_bad("%s", "missing command");
    o->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        char *a = argv[i], *val = NULL, *eq = NULL;
        if (!strncmp(a, "--", 2) && (eq = strchr(a, '='))) {
            *eq = 0; /* --flag=value */
            val = eq + 1;
        }
        const char *flags_with_value[] = {"--bootstrap-server",
                                          "--topic",
                                          "--partition",
                                          "--offset",
                                          "--max-messages",
                                          "--timeout-ms",
                                          "--property",
                                          "--compression-codec",
                                          "--acks",
                                          "--partitions",
                                          "--replication-factor",
                                          "--config",
                                          "--group",
                                          "--to-offset",
                                          "--command-config",
                                          NULL};
        bool wants = false;
        for (int k = 0; flags_with_value[k]; k++)
            wants = wants || !strcmp(a, flags_with_value[k]);
        if (wants && !val) {
            if (i + 1 >= argc) return ctl_bad("%s needs a value", a);
            val = argv[++i];
        }
        long n;
        if (!strcmp(a, "--bootstrap-server"))
            o->bootstrap = val;
        else if (!strcmp(a, "--topic"))
            o->topic = val;
        else if (!strcmp(a, "--group"))
            o->group = val;
        else if (!strcmp(a, "--command-config"))
            o->command_config = val;
        else if (!strcmp(a, "--to-offset")) {
            o->reset_to = "offset";
            o->to_offset = val;
        } else if (!strcmp(a, "--to-earliest") || !strcmp(a, "--to-latest"))
            o->reset_to = a + 5;
        else if (!strcmp(a, "--execute"))
            o->execute = true;
        else if (!strcmp(a, "--dry-run"))
            o->execute = false;
        else if (!strcmp(a, "--reset-offsets"))
            o->action = "reset";
        else if (!strcmp(a, "--partition")) {
            if (!parse_long(val, 0, INT32_MAX, &n)) return ctl_bad("bad --partition '%s'", val);
            o->partition = (int32_t)n;
        } else if (!strcmp(a, "--offset"))
            o->offset = val;
        else if (!strcmp(a, "--max-messages")) {
            if (!parse_long(val, 0, __LONG_MAX__, &n))
                return ctl_bad("bad --max-messages '%s'", val);
            o->max_messages = n;
        } else if (!strcmp(a, "--timeout-ms")) {
            if (!parse_long(val, 0, INT32_MAX, &n)) return ctl_bad("bad --timeout-ms '%s'", val);
            o->timeout_ms = n;
        } else if (!strcmp(a, "--property")) {
            int rc = set_property(o, val);
            if (rc) return rc;
        } else if (!strcmp(a, "--compression-codec"))
            o->compression = val;
        else if (!strcmp(a, "--acks")) {
            if (!strcmp(val, "all"))
                n = -1;
            else if (!parse_long(val, -1, 1, &n))
                return ctl_bad("bad --acks '%s' (want all, -1, 0 or 1)", val);
            o->acks = (int)n;
        } else if (!strcmp(a, "--partitions")) {
            if (!parse_long(val, 1, INT32_MAX, &n)) return ctl_bad("bad --partitions '%s'", val);
            o->partitions = (int32_t)n;
        } else if (!strcmp(a, "--replication-factor")) {
            if (!parse_long(val, 1, INT16_MAX, &n))
                return ctl_bad("bad --replication-factor '%s'", val);
            o->replication = (int16_t)n;
        } else if (!strcmp(a, "--config")) {
            char *kv = strdup(val);
            char *e = kv ? strchr(kv, '=') : NULL;
            if (!e || o->nconfigs == MAX_CONFIGS) {
                free(kv);
                return ctl_bad("bad --config '%s' (want key=value)", val);
            }
            *e = 0;
            o->owned[o->nconfigs] = kv;
            o->configs[o->nconfigs++] = (kc_config_entry_t){kv, e + 1};
        } else if (!strcmp(a, "--from-beginning"))
            o->from_beginning = true;
        else if (!strcmp(a, "--list") || !strcmp(a, "--create") || !strcmp(a, "--delete") ||
                 !strcmp(a, "--describe"))
            o->action = a + 2;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            exit(0);
        } else
            return ctl_bad("unknown option '%s'", a);
    }
    return 0;
}

int ctl_fail(kc_client_t *c)
{
    const char *m = kc_client_errmsg(c);
    fprintf(stderr, "depotctl: %s\n", *m ? m : "failed");
    return 1;
}

static int codec_of(const char *s)
{
    const char *names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    if (!s) return KP_COMPRESSION_NONE;
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* parse.headers, as Kafka's console producer reads them: "k1:v1,k2:v2<TAB>" before the key
 * (or value); a header without ':' has a null value. Views into the line, which is cut. */
static int32_t parse_headers(char **rest, kp_record_header_t *h)
{
    char *tab = strchr(*rest, '\t');
    if (!tab) return -1;
    *tab = 0;
    int32_t n = 0;
    for (char *tok = *rest, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next) *next++ = 0;
        if (!*tok) continue;
        if (n == MAX_HEADERS) return -1;
        char *colon = strchr(tok, ':');
        if (colon) *colon = 0;
        h[n].key = (kp_bytes_t){(const uint8_t *)tok, (int32_t)strlen(tok)};
        h[n].value = colon ? (kp_bytes_t){(const uint8_t *)colon + 1, (int32_t)strlen(colon + 1)}
                           : (kp_bytes_t){NULL, -1};
        n++;
    }
    *rest = tab + 1;
    return n;
}

static int cmd_produce(kc_client_t *c, const opts_t *o)
{
    if (!o->topic) return ctl_bad("%s", "produce needs --topic");
    kc_producer_config_t pc;
    kc_producer_config_init(&pc);
    pc.acks = o->acks;
    if ((pc.codec = codec_of(o->compression)) < 0)
        return ctl_bad("unknown --compression-codec '%s'", o->compression);
    kc_producer_t *p = kc_producer_new(c, &pc);
    if (!p) {
        fprintf(stderr, "depotctl: out of memory\n");
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    size_t sep_len = strlen(o->key_sep);
    while (!rc && (n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n') line[--n] = 0;
        char *rest = line;
        kp_record_header_t hdrs[MAX_HEADERS];
        int32_t nh = 0;
        if (o->parse_headers && (nh = parse_headers(&rest, hdrs)) < 0) {
            fprintf(stderr,
                    "depotctl: line %ld: headers must be k:v[,k:v...] then a tab "
                    "(at most %d)\n",
                    lineno, MAX_HEADERS);
            rc = 1;
            break;
        }
        n -= rest - line;
        kp_bytes_t key = {NULL, -1}, value = {(const uint8_t *)rest, (int32_t)n};
        if (o->parse_key) {
            char *s = sep_len ? strstr(rest, o->key_sep) : NULL;
            if (!s) {
                fprintf(stderr, "depotctl: line %ld has no key separator '%s'\n", lineno,
                        o->key_sep);
                rc = 1;
                break;
            }
            key = (kp_bytes_t){(const uint8_t *)rest, (int32_t)(s - rest)};
            value = (kp_bytes_t){(const uint8_t *)s + sep_len, (int32_t)(n - (s - rest) - sep_len)};
        }
        if (kc_producer_send(p, o->topic, o->partition, key, value, hdrs, nh, -1)) rc = ctl_fail(c);
    }
    free(line);
    if (!rc && kc_producer_flush(p)) rc = ctl_fail(c);
    kc_producer_free(p);
    return rc;
}

static void print_bytes(kp_bytes_t b)
{
    if (b.len < 0)
        fputs("null", stdout);
    else
        fwrite(b.ptr, 1, (size_t)b.len, stdout);
}

/* The optional fields before key and value, in the console consumer's order. */
static void print_meta(const opts_t *o, const kc_message_t *m)
{
    if (o->print_timestamp)
        printf("%s:%lld%s", m->timestamp_type ? "LogAppendTime" : "CreateTime",
               (long long)m->timestamp, o->key_sep);
    if (o->print_partition) printf("Partition:%d%s", m->partition, o->key_sep);
    if (o->print_offset) printf("Offset:%lld%s", (long long)m->offset, o->key_sep);
    if (!o->print_headers) return;
    kp_reader_t hr;
    kp_reader_init(&hr, m->headers, m->headers_len);
    kp_record_header_t h;
    int n = 0;
    while (kp_record_header_next(&hr, &h) == 1) {
        fputs(n++ ? "," : "", stdout);
        print_bytes(h.key);
        putchar(':');
        print_bytes(h.value);
    }
    fputs(n ? "" : "NO_HEADERS", stdout);
    fputs(o->key_sep, stdout);
}

void ctl_print_message(const opts_t *o, const kc_message_t *m)
{
    print_meta(o, m);
    if (o->print_key) {
        print_bytes(m->key);
        fputs(o->key_sep, stdout);
    }
    print_bytes(m->value);
    fputc('\n', stdout);
    fflush(stdout);
}

static int cmd_consume(kc_client_t *c, const opts_t *o)
{
    if (!o->topic) return ctl_bad("%s", "consume needs --topic");
    if (o->group) {
        if (o->partition >= 0 || o->offset)
            return ctl_bad("%s", "--group cannot be combined with --partition/--offset");
        return cmd_consume_group(c, o);
    }
    int64_t start = o->from_beginning ? KC_OFFSET_BEGINNING : KC_OFFSET_END;
    if (o->offset) {
        long n;
        if (o->partition < 0) return ctl_bad("%s", "--offset needs --partition");
        if (!strcmp(o->offset, "earliest"))
            start = KC_OFFSET_BEGINNING;
        else if (!strcmp(o->offset, "latest"))
            start = KC_OFFSET_END;
        else if (parse_long(o->offset, 0, __LONG_MAX__, &n))
            start = n;
        else
            return ctl_bad("bad --offset '%s' (want a number, earliest or latest)", o->offset);
    }
    kc_consumer_t *cs = kc_consumer_new(c, o->topic, o->partition >= 0 ? &o->partition : NULL,
                                        o->partition >= 0 ? 1 : 0, start);
    if (!cs) return ctl_fail(c);
    long count = 0;
    int64_t idle_since = kc_now_ms();
    int rc = 0;
    while (!ctl_stop && (o->max_messages < 0 || count < o->max_messages)) {
        kc_message_t m;
        int r = kc_consumer_poll(cs, 200, &m);
        if (r < 0) {
            rc = ctl_fail(c);
            break;
        }
        if (r == 0) {
            if (o->timeout_ms >= 0 && kc_now_ms() - idle_since >= o->timeout_ms) break;
            continue;
        }
        ctl_print_message(o, &m);
        count++;
        idle_since = kc_now_ms();
    }
    fprintf(stderr, "Processed a total of %ld messages\n", count);
    kc_consumer_free(cs);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_ids(const char *label, const int32_t *ids, int32_t n)
{
    printf("\t%s: ", label);
    for (int32_t i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", ids[i]);
}

static void print_uuid_b64(kp_uuid_t u)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < 16; i++) {
        acc = (acc << 8) | u.b[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            putchar(tbl[(acc >> bits) & 63]);
        }
    }
    if (bits) putchar(tbl[(acc << (6 - bits)) & 63]);
}

static int describe_one(kc_client_t *c, const kc_topic_md_t *t)
{
    int32_t rf = t->npartitions ? t->partitions[0].nreplicas : 0;
    printf("Topic: %s", t->name);
    static const kp_uuid_t zero;
    if (memcmp(&t->topic_id, &zero, sizeof zero)) {
        printf("\tTopicId: ");
        print_uuid_b64(t->topic_id);
    }
    printf("\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: ", t->npartitions, rf);
    kc_topic_configs_t *tc = NULL;
    if (kc_client_api_version(c, 32 /* DescribeConfigs */) >= 0 &&
        kc_describe_topic_configs(c, t->name, &tc) == 0) {
        for (int i = 0; i < tc->n; i++)
            printf("%s%s=%s", i ? "," : "", tc->entries[i].name,
                   tc->entries[i].value ? tc->entries[i].value : "");
        kc_topic_configs_free(tc);
    }
    putchar('\n');
    for (int32_t k = 0; k < t->npartitions; k++) {
        const kc_partition_md_t *p = &t->partitions[k];
        printf("\tTopic: %s\tPartition: %d\tLeader: %d", t->name, p->partition, p->leader);
        print_ids("Replicas", p->replicas, p->nreplicas);
        print_ids("Isr", p->isr, p->nisr);
        putchar('\n');
    }
    return 0;
}

static int cmd_topics(kc_client_t *c, const opts_t *o)
{
    if (!o->action) return ctl_bad("%s", "topics needs --list, --create, --delete or --describe");
    if (strcmp(o->action, "list") && strcmp(o->action, "describe") && !o->topic)
        return ctl_bad("--%s needs --topic", o->action);
    if (!strcmp(o->action, "create")) {
        if (kc_create_topic(c, o->topic, o->partitions, o->replication, o->configs, o->nconfigs))
            return ctl_fail(c);
        printf("Created topic %s.\n", o->topic);
        return 0;
    }
    if (!strcmp(o->action, "delete")) {
        if (kc_delete_topic(c, o->topic)) return ctl_fail(c);
        printf("Deleted topic %s.\n", o->topic);
        return 0;
    }
    kc_metadata_t *md;
    const char *one[1] = {o->topic};
    if (kc_metadata_get(c, o->topic ? one : NULL, 1, false, &md)) return ctl_fail(c);
    int rc = 0;
    if (!strcmp(o->action, "list")) {
        char **names = calloc((size_t)md->ntopics + 1, sizeof *names);
        int n = 0;
        for (int32_t i = 0; names && i < md->ntopics; i++)
            if (md->topics[i].name && !md->topics[i].error_code) names[n++] = md->topics[i].name;
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        for (int i = 0; i < n; i++)
            puts(names[i]);
        free(names);
    } else {
        for (int32_t i = 0; i < md->ntopics && !rc; i++) {
            const kc_topic_md_t *t = &md->topics[i];
            if (t->error_code) {
                fprintf(stderr, "depotctl: topic %s: %s: %s\n", t->name ? t->name : o->topic,
                        kp_error_name(t->error_code), kp_error_message(t->error_code));
                rc = 1;
            } else {
                describe_one(c, t);
            }
        }
    }
    kc_metadata_free(md);
    return rc;
}

int main(int argc, char **argv)
{
    opts_t o;
    if (argc >= 2 && !strcmp(argv[1], "connect-standalone"))
        return kc_connect_standalone(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "status")) return ctl_status(argc - 2, argv + 2);
    if (argc >= 2 && (!strcmp(argv[1], "acls") || !strcmp(argv[1], "users")))
        return ctl_security_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "schemas"))
        return ctl_schemas(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "uplink")) return cmd_uplink(argc - 2, argv + 2);
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(o.cmd, "produce") && strcmp(o.cmd, "consume") && strcmp(o.cmd, "topics") &&
        strcmp(o.cmd, "groups"))
        return ctl_bad("unknown command '%s'", o.cmd);
    kc_config_t cfg = {.bootstrap = o.bootstrap, .client_id = "depotctl", .retries = -1};
    if (o.command_config && (rc = ctl_command_config(o.command_config, &cfg))) return rc;
    kc_client_t *c = kc_client_new(&cfg);
    if (!c) {
        fprintf(stderr, "depotctl: out of memory\n");
        return 1;
    }
    if (kc_client_connect(c))
        rc = ctl_fail(c);
    else if (!strcmp(o.cmd, "produce"))
        rc = cmd_produce(c, &o);
    else if (!strcmp(o.cmd, "consume"))
        rc = cmd_consume(c, &o);
    else if (!strcmp(o.cmd, "groups"))
        rc = cmd_groups(c, &o);
    else
        rc = cmd_topics(c, &o);
    kc_client_free(c);
    for (int i = 0; i < o.nconfigs; i++)
        free(o.owned[i]);
    return rc;
}
