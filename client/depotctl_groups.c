/*
 * depotctl's consumer-group commands, printed the way kafka-consumer-groups.sh prints them:
 *   groups --list
 *   groups --describe --group G        (members, assignments, committed offset, log end, lag)
 *   groups --reset-offsets --group G --topic T --to-earliest|--to-latest|--to-offset N
 *          [--execute]                 (dry run without --execute; only for an empty group)
 *   consume --topic T --group G        (joins the group, commits after printing)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/depotctl.h"
#include "client/kc_group.h"
#include "protocol/kp_errors.h"

#define COMMIT_EVERY 500

int cmd_consume_group(kc_client_t *c, const opts_t *o)
{
    const char *topics[1] = {o->topic};
    kc_group_config_t gc = {
        .group_id = o->group, .topics = topics, .ntopics = 1, .from_beginning = o->from_beginning};
    kc_group_t *g = kc_group_new(c, &gc);
    if (!g) return ctl_fail(c);
    long count = 0, uncommitted = 0;
    int64_t idle_since = kc_now_ms();
    int rc = 0;
    while (!ctl_stop && (o->max_messages < 0 || count < o->max_messages)) {
        kc_message_t m;
        int r = kc_group_poll(g, 200, &m);
        if (r < 0) {
            rc = ctl_fail(c);
            break;
        }
        if (r == 0) {
            /* Idle: commit what was printed, so lag tools see it. */
            if (uncommitted && kc_group_commit(g) == 0) uncommitted = 0;
            if (o->timeout_ms >= 0 && kc_now_ms() - idle_since >= o->timeout_ms) break;
            continue;
        }
        ctl_print_message(o, &m);
        count++;
        idle_since = kc_now_ms();
        if (++uncommitted >= COMMIT_EVERY && kc_group_commit(g) == 0) uncommitted = 0;
    }
    if (!rc && uncommitted && kc_group_commit(g)) rc = ctl_fail(c);
    kc_group_close(g);
    fprintf(stderr, "Processed a total of %ld messages\n", count);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int groups_list(kc_client_t *c)
{
    kc_group_list_t *l;
    if (kc_list_groups(c, &l)) return ctl_fail(c);
    char **names = calloc((size_t)l->n + 1, sizeof *names);
    for (int i = 0; names && i < l->n; i++)
        names[i] = l->v[i].group_id;
    if (names) qsort(names, (size_t)l->n, sizeof *names, cmp_str);
    for (int i = 0; names && i < l->n; i++)
        puts(names[i]);
    free(names);
    kc_group_list_free(l);
    return 0;
}

/* One row per partition: assigned ones (with their member) and committed ones. */
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t committed; /* -1 = none */
    const kc_group_member_t *owner;
} row_t;

static int cmp_row(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    int t = strcmp(x->topic, y->topic);
    return t ? t : (x->partition > y->partition) - (x->partition < y->partition);
}

static row_t *row_get(row_t **rows, int *n, int *cap, const char *topic, int32_t partition)
{
    for (int i = 0; i < *n; i++)
        if ((*rows)[i].partition == partition && !strcmp((*rows)[i].topic, topic))
            return &(*rows)[i];
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        row_t *v = realloc(*rows, sizeof *v * (size_t)nc);
        if (!v) return NULL;
        *rows = v;
        *cap = nc;
    }
    row_t *r = &(*rows)[(*n)++];
    *r = (row_t){topic, partition, -1, NULL};
    return r;
}

static char *arena_cstr(kp_arena_t *a, kp_str_t s)
{
    char *p = s.len >= 0 ? kp_arena_alloc(a, (size_t)s.len + 1) : NULL;
    if (p && s.len) memcpy(p, s.ptr, (size_t)s.len);
    if (p) p[s.len] = 0;
    return p;
}

static int groups_describe(kc_client_t *c, const char *group)
{
    kc_group_desc_t *d = NULL;
    kc_offsets_t *co = NULL;
    if (kc_describe_group(c, group, &d) || kc_fetch_committed(c, group, &co)) {
        kc_group_desc_free(d);
        return ctl_fail(c);
    }
    int rc = 0;
    if (!strcmp(d->state ? d->state : "", "Dead") && co->n == 0) {
        fprintf(stderr,
                "depotctl: describing group %s: GROUP_ID_NOT_FOUND: consumer group '%s' "
                "does not exist.\n",
                group, group);
        rc = 1;
        goto out;
    }
    row_t *rows = NULL;
    int n = 0, cap = 0;
    for (int i = 0; i < d->nmembers; i++) {
        const kc_assignment_t *as = &d->members[i].assignment;
        for (int32_t k = 0; k < as->nparts; k++) {
            /* The assignment's topic is a view; make it a C string in the group's arena. */
            char *t = arena_cstr(&d->arena, as->parts[k].topic);
            for (int32_t q = 0; t && q < as->parts[k].npartitions; q++) {
                row_t *r = row_get(&rows, &n, &cap, t, as->parts[k].partitions[q]);
                if (r) r->owner = &d->members[i];
            }
        }
    }
    for (int i = 0; i < co->n; i++) {
        row_t *r = row_get(&rows, &n, &cap, co->v[i].topic, co->v[i].partition);
        if (r) r->committed = co->v[i].offset;
    }
    qsort(rows, (size_t)n, sizeof *rows, cmp_row);
    if (d->nmembers == 0) printf("\nConsumer group '%s' has no active members.\n", group);
    printf("\n%-30s %-30s %-10s %-15s %-15s %-15s %-45s %-15s %s\n", "GROUP", "TOPIC", "PARTITION",
           "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID");
    for (int i = 0; i < n; i++) {
        row_t *r = &rows[i];
        int64_t end = -1;
        char cur[24] = "-", endbuf[24] = "-", lag[24] = "-";
        if (kc_list_offset(c, r->topic, r->partition, KC_OFFSET_END, &end) == 0)
            snprintf(endbuf, sizeof endbuf, "%lld", (long long)end);
        if (r->committed >= 0) {
            snprintf(cur, sizeof cur, "%lld", (long long)r->committed);
            if (end >= 0) snprintf(lag, sizeof lag, "%lld", (long long)(end - r->committed));
        }
        const kc_group_member_t *m = r->owner;
        printf("%-30s %-30s %-10d %-15s %-15s %-15s %-45s %-15s %s\n", group, r->topic,
               r->partition, cur, endbuf, lag, m && m->member_id ? m->member_id : "-",
               m && m->client_host ? m->client_host : "-", m && m->client_id ? m->client_id : "-");
    }
    free(rows);
out:
    kc_offsets_free(co);
    kc_group_desc_free(d);
    return rc;
}

static int groups_reset(kc_client_t *c, const opts_t *o)
{
    if (!o->topic) return ctl_bad("%s", "--reset-offsets needs --topic");
    if (!o->reset_to)
        return ctl_bad("%s", "--reset-offsets needs --to-earliest, --to-latest or --to-offset N");
    char *end;
    long long to = o->to_offset ? strtoll(o->to_offset, &end, 10) : 0;
    if (o->to_offset && (!*o->to_offset || *end || to < 0))
        return ctl_bad("bad --to-offset '%s'", o->to_offset);
    kc_group_desc_t *d;
    if (kc_describe_group(c, o->group, &d)) return ctl_fail(c);
    bool empty = d->nmembers == 0;
    if (!empty)
        fprintf(stderr,
                "depotctl: resetting offsets of group %s: NON_EMPTY_GROUP: assignments can only "
                "be reset if the group is inactive, but its state is %s; stop its consumers "
                "first.\n",
                o->group, d->state ? d->state : "unknown");
    kc_group_desc_free(d);
    if (!empty) return 1;
    kc_metadata_t *md;
    const char *one[1] = {o->topic};
    if (kc_metadata_get(c, one, 1, false, &md)) return ctl_fail(c);
    const kc_topic_md_t *t = kc_metadata_topic(md, o->topic);
    if (!t || t->error_code) {
        fprintf(stderr, "depotctl: resetting offsets of group %s: %s: %s\n", o->group,
                kp_error_name(t ? t->error_code : KP_ERR_UNKNOWN_TOPIC_OR_PARTITION),
                kp_error_message(t ? t->error_code : KP_ERR_UNKNOWN_TOPIC_OR_PARTITION));
        kc_metadata_free(md);
        return 1;
    }
    int np = t->npartitions;
    kc_offset_t *offs = calloc((size_t)np + 1, sizeof *offs);
    if (!offs) {
        kc_metadata_free(md);
        return ctl_fail(c);
    }
    int rc = 0;
    for (int i = 0; !rc && i < np; i++) {
        int32_t p = t->partitions[i].partition;
        int64_t lo, hi;
        if (kc_list_offset(c, o->topic, p, KC_OFFSET_BEGINNING, &lo) ||
            kc_list_offset(c, o->topic, p, KC_OFFSET_END, &hi)) {
            rc = ctl_fail(c);
            break;
        }
        int64_t v = !strcmp(o->reset_to, "earliest") ? lo
                    : !strcmp(o->reset_to, "latest") ? hi
                                                     : to;
        if (v < lo) v = lo; /* Kafka clamps to the log's range */
        if (v > hi) v = hi;
        offs[i] = (kc_offset_t){o->topic, p, v, 0};
    }
    if (!rc && o->execute && kc_commit_offsets(c, o->group, offs, np)) rc = ctl_fail(c);
    if (!rc) {
        printf("\n%-30s %-30s %-10s %-15s\n", "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET");
        for (int i = 0; i < np; i++)
            printf("%-30s %-30s %-10d %-15lld\n", o->group, o->topic, offs[i].partition,
                   (long long)offs[i].offset);
        if (!o->execute) fprintf(stderr, "(dry run: add --execute to apply)\n");
    }
    free(offs);
    kc_metadata_free(md);
    return rc;
}

int cmd_groups(kc_client_t *c, const opts_t *o)
{
    if (!o->action) return ctl_bad("%s", "groups needs --list, --describe or --reset-offsets");
    if (!strcmp(o->action, "list")) return groups_list(c);
    if (!o->group) return ctl_bad("--%s needs --group", o->action);
    if (!strcmp(o->action, "describe")) return groups_describe(c, o->group);
    if (!strcmp(o->action, "reset")) return groups_reset(c, o);
    return ctl_bad("groups does not take --%s", o->action);
}
