/*
 * Consumer groups (KIP-848): membership, epochs, subscriptions, target assignment and the
 * heartbeat. See cgroup.h for the model; the assignors and the reconciliation of one member
 * are in cgroup_assign.c.
 */
#include "broker/group/cgroup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/group/group_int.h"
#include "protocol/k_status.h"
#include "protocol/kp_errors.h"

#define KB_CGROUP_NAMES_MAX 10000 /* subscribed topic names in one heartbeat */

/* ------------------------------------------------------------------------------------------ */
/* Topics: interning and the snapshot                                                          */

/* The interned index of name (added if new), or -1 without memory. */
static int32_t intern(kb_cgroup_t *cg, const char *name, size_t len)
{
    for (int32_t i = 0; i < cg->n_topics; i++)
        if (strlen(cg->topics[i]) == len && !memcmp(cg->topics[i], name, len))
            return i;
    char **t = realloc(cg->topics, ((size_t)cg->n_topics + 1) * sizeof *t);
    if (!t)
        return -1;
    cg->topics = t;
    if (!(t[cg->n_topics] = kb_gstrdup((kp_str_t){name, (int32_t)len})))
        return -1;
    return cg->n_topics++;
}

static const kb_ctopic_t *snap_find(const kb_ctopics_t *s, const char *name)
{
    int32_t lo = 0, hi = s->n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->v[mid].name, name);
        if (!c)
            return &s->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static const kb_ctopic_t *snap_find_id(const kb_ctopics_t *s, kp_uuid_t id)
{
    for (int32_t i = 0; i < s->n; i++)
        if (!memcmp(&s->v[i].id, &id, sizeof id))
            return &s->v[i];
    return NULL;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static int int_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sorted, unique union of the members' subscribed topics (names and regex matches). */
static int32_t *subscribed_union(const kb_cgroup_t *cg, int32_t *n_out)
{
    int32_t n = 0;
    for (int32_t i = 0; i < cg->n_members; i++)
        n += cg->members[i]->n_sub + cg->members[i]->n_rx;
    int32_t *u = malloc(((size_t)n + 1) * sizeof *u);
    if (!u)
        return NULL;
    n = 0;
    for (int32_t i = 0; i < cg->n_members; i++) {
        const kb_cmember_t *m = cg->members[i];
        if (m->n_sub) /* memcpy from NULL is undefined even for 0 bytes */
            memcpy(u + n, m->sub, (size_t)m->n_sub * sizeof *u);
        n += m->n_sub;
        if (m->n_rx)
            memcpy(u + n, m->rx, (size_t)m->n_rx * sizeof *u);
        n += m->n_rx;
    }
    qsort(u, (size_t)n, sizeof *u, int_cmp);
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if (!k || u[k - 1] != u[i])
            u[k++] = u[i];
    *n_out = k;
    return u;
}

/* Hash of the subscribed topics' metadata (name, id, partition count; missing ones too). */
static uint64_t meta_hash(const kb_cgroup_t *cg, const kb_ctopics_t *s)
{
    int32_t n = 0;
    int32_t *u = subscribed_union(cg, &n);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int32_t i = 0; u && i < n; i++) {
        const char *name = cg->topics[u[i]];
        const kb_ctopic_t *t = snap_find(s, name);
        h = fnv(h, name, strlen(name) + 1);
        if (t) {
            h = fnv(h, &t->id, sizeof t->id);
            h = fnv(h, &t->partitions, sizeof t->partitions);
        }
    }
    free(u);
    return h;
}

/* Hash of the snapshot's topic names: a regex is resolved again only when it changes. */
static uint64_t names_hash(const kb_ctopics_t *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int32_t i = 0; i < s->n; i++)
        h = fnv(h, s->v[i].name, strlen(s->v[i].name) + 1);
    return h;
}

/* ------------------------------------------------------------------------------------------ */
/* Members                                                                                     */

static void strs_free(char **v, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void member_free(kb_cmember_t *m)
{
    if (!m)
        return;
    free(m->member_id);
    free(m->instance_id);
    free(m->rack_id);
    free(m->client_id);
    free(m->client_host);
    free(m->sub);
    strs_free(m->sub_names, m->n_sub_names);
    if (m->regex)
        regfree(&m->re);
    free(m->regex);
    free(m->rx);
    kb_tpset_free(&m->assigned);
    kb_tpset_free(&m->revoking);
    kb_tpset_free(&m->target);
    free(m);
}

void kb_cgroup_free(kb_cgroup_t *cg)
{
    if (!cg)
        return;
    for (int32_t i = 0; i < cg->n_members; i++)
        member_free(cg->members[i]);
    free(cg->members);
    strs_free(cg->topics, cg->n_topics);
    free(cg);
}

static kb_cmember_t *member_find(const kb_cgroup_t *cg, kp_str_t id)
{
    for (int32_t i = 0; id.len >= 0 && i < cg->n_members; i++)
        if (kb_gstreq(cg->members[i]->member_id, id))
            return cg->members[i];
    return NULL;
}

static kb_cmember_t *static_find(const kb_cgroup_t *cg, kp_str_t instance_id)
{
    for (int32_t i = 0; instance_id.len >= 0 && i < cg->n_members; i++) {
        const kb_cmember_t *m = cg->members[i];
        if (m->instance_id && m->instance_id_len == instance_id.len &&
            !memcmp(m->instance_id, instance_id.ptr, (size_t)instance_id.len))
            return cg->members[i];
    }
    return NULL;
}

static void member_remove(kb_cgroup_t *cg, kb_cmember_t *m)
{
    for (int32_t i = 0; i < cg->n_members; i++)
        if (cg->members[i] == m) {
            memmove(cg->members + i, cg->members + i + 1,
                    (size_t)(cg->n_members - i - 1) * sizeof *cg->members);
            cg->n_members--;
            break;
        }
    member_free(m);
    cg->epoch++; /* membership changed: a new target */
}

static kb_cmember_t *member_add(kb_cgroup_t *cg, kp_str_t id)
{
    kb_cmember_t **v = realloc(cg->members, ((size_t)cg->n_members + 1) * sizeof *v);
    if (!v)
        return NULL;
    cg->members = v;
    kb_cmember_t *m = calloc(1, sizeof *m);
    if (!m || !(m->member_id = kb_gstrdup(id))) {
        free(m);
        return NULL;
    }
    m->assignor = -1;
    v[cg->n_members++] = m;
    return m; /* the heartbeat bumps the group epoch (once for all its changes) */
}

/* A member id for a v0 join without one: 22 characters like Kafka's base64 UUIDs. */
static void member_id_make(kb_gcoord_t *c, char out[23])
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 22; i++) {
        c->rng ^= c->rng << 13;
        c->rng ^= c->rng >> 7;
        c->rng ^= c->rng << 17;
        out[i] = b64[c->rng & 63];
    }
    out[22] = 0;
}

static bool replace_str(char **dst, int32_t *dst_len, kp_str_t s)
{
    int32_t len = 0;
    char *p = kb_gstrdup_len(s, &len);
    if (s.len >= 0 && !p)
        return false;
    free(*dst);
    *dst = p;
    if (dst_len)
        *dst_len = len;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Subscriptions                                                                               */

/* SubscribedTopicNames: 1 changed, 0 same, K_ERR_NOMEM. */
static int set_names(kb_cgroup_t *cg, kb_cmember_t *m, const kp_str_t *names, int32_t n)
{
    int32_t *sub = malloc(((size_t)n + 1) * sizeof *sub);
    char **sn = calloc((size_t)n + 1, sizeof *sn);
    int32_t k = 0;
    if (!sub || !sn)
        goto nomem;
    for (int32_t i = 0; i < n; i++) {
        if (names[i].len <= 0)
            continue;
        int32_t t = intern(cg, names[i].ptr, (size_t)names[i].len);
        if (t < 0 || !(sn[k] = kb_gstrdup(names[i])))
            goto nomem;
        sub[k++] = t;
    }
    qsort(sub, (size_t)k, sizeof *sub, int_cmp);
    int32_t u = 0;
    for (int32_t i = 0; i < k; i++)
        if (!u || sub[u - 1] != sub[i])
            sub[u++] = sub[i];
    bool same = u == m->n_sub && (!u || !memcmp(sub, m->sub, (size_t)u * sizeof *sub));
    free(m->sub);
    strs_free(m->sub_names, m->n_sub_names);
    m->sub = sub;
    m->n_sub = u;
    m->sub_names = sn;
    m->n_sub_names = k;
    return same ? 0 : 1;
nomem:
    free(sub);
    strs_free(sn, k);
    return K_ERR_NOMEM;
}

/* RE2's non-capturing group "(?:" becomes POSIX "(" (same matches; clients such as franz-go
 * wrap every pattern in it). Elsewhere the text is copied as is: out has room for strlen(in)
 * + 1 bytes. Escapes and bracket expressions are skipped over so "\\(?:" and "[(?:]" stay. */
static void rx_to_posix(const char *in, char *out)
{
    bool bracket = false;
    while (*in) {
        if (*in == '\\' && in[1]) {
            *out++ = *in++;
            *out++ = *in++;
            continue;
        }
        if (bracket) {
            bracket = *in != ']';
        } else if (*in == '[') {
            bracket = true;
            *out++ = *in++;
            if (*in == '^')
                *out++ = *in++;
            if (*in == ']') /* a leading ']' is a member, not the end */
                *out++ = *in++;
            continue;
        } else if (in[0] == '(' && in[1] == '?' && in[2] == ':') {
            *out++ = '(';
            in += 3;
            continue;
        }
        *out++ = *in++;
    }
    *out = 0;
}

/* SubscribedTopicRegex ("" = none): 1 changed, 0 same, K_ERR_INVAL (bad), K_ERR_NOMEM. */
static int set_regex(kb_cmember_t *m, kp_str_t rx)
{
    if (m->regex && kb_gstreq(m->regex, rx))
        return 0;
    if (!m->regex && rx.len <= 0)
        return 0;
    regex_t re;
    char *copy = NULL, *anchored = NULL;
    if (rx.len > 0) {
        if (memchr(rx.ptr, 0, (size_t)rx.len) || !(copy = kb_gstrdup(rx)))
            return copy ? K_ERR_INVAL : K_ERR_NOMEM;
        /* The whole name must match, as Java's Matcher.matches(). */
        size_t n = strlen(copy) + 5;
        char *posix = malloc(n);
        if (!posix || !(anchored = malloc(n))) {
            free(posix);
            free(copy);
            return K_ERR_NOMEM;
        }
        rx_to_posix(copy, posix);
        snprintf(anchored, n, "^(%s)$", posix);
        free(posix);
        int rc = regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB);
        free(anchored);
        if (rc) {
            free(copy);
            return K_ERR_INVAL;
        }
    }
    if (m->regex)
        regfree(&m->re);
    free(m->regex);
    m->regex = copy;
    if (copy)
        m->re = re;
    free(m->rx);
    m->rx = NULL;
    m->n_rx = 0;
    m->rx_topics_hash = 0;
    return 1;
}

/* Resolves the member's regex against the snapshot (when the regex or the topic names
 * changed): 1 when the matched set changed, 0 same, K_ERR_NOMEM. */
static int resolve_regex(kb_cgroup_t *cg, kb_cmember_t *m, const kb_ctopics_t *s)
{
    if (!m->regex)
        return 0;
    uint64_t h = names_hash(s);
    if (h == m->rx_topics_hash && m->rx)
        return 0;
    int32_t *rx = malloc(((size_t)s->n + 1) * sizeof *rx);
    if (!rx)
        return K_ERR_NOMEM;
    int32_t n = 0;
    for (int32_t i = 0; i < s->n; i++) {
        const kb_ctopic_t *t = &s->v[i];
        if (t->internal || regexec(&m->re, t->name, 0, NULL, 0) != 0 ||
            (s->may_describe && !s->may_describe(s->ud, t->name)))
            continue;
        int32_t idx = intern(cg, t->name, strlen(t->name));
        if (idx < 0) {
            free(rx);
            return K_ERR_NOMEM;
        }
        rx[n++] = idx;
    }
    qsort(rx, (size_t)n, sizeof *rx, int_cmp);
    bool same = m->rx && n == m->n_rx && (!n || !memcmp(rx, m->rx, (size_t)n * sizeof *rx));
    free(m->rx);
    m->rx = rx;
    m->n_rx = n;
    m->rx_topics_hash = h;
    return same ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Target assignment                                                                           */

static int member_cmp(const void *a, const void *b)
{
    const kb_cmember_t *x = *(kb_cmember_t *const *)a, *y = *(kb_cmember_t *const *)b;
    return strcmp(x->member_id, y->member_id);
}

/* The assignor: the one most members ask for, else the configured default. */
static int pick_assignor(const kb_cgroup_t *cg, const kb_cgroup_opts_t *o)
{
    int votes[KB_ASSIGNOR_N] = {0}, best = -1;
    for (int32_t i = 0; i < cg->n_members; i++)
        if (cg->members[i]->assignor >= 0)
            votes[cg->members[i]->assignor]++;
    for (int a = 0; a < KB_ASSIGNOR_N; a++)
        if (votes[a] && (best < 0 || votes[a] > votes[best]))
            best = a;
    return best >= 0 ? best : (o->n_assignors ? o->assignors[0] : KB_ASSIGNOR_UNIFORM);
}

/* The subscribed topics of m that exist (parts > 0), sorted: into buf. */
static int32_t member_topics(const kb_cmember_t *m, const int32_t *parts, int32_t *buf)
{
    int32_t n = 0;
    for (int32_t i = 0; i < m->n_sub; i++)
        if (parts[m->sub[i]] > 0)
            buf[n++] = m->sub[i];
    for (int32_t i = 0; i < m->n_rx; i++)
        if (parts[m->rx[i]] > 0)
            buf[n++] = m->rx[i];
    qsort(buf, (size_t)n, sizeof *buf, int_cmp);
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if (!k || buf[k - 1] != buf[i])
            buf[k++] = buf[i];
    return k;
}

static int compute_target(kb_gcoord_t *c, kb_cgroup_t *cg, const kb_ctopics_t *s)
{
    int32_t n = cg->n_members, nt = cg->n_topics;
    int32_t *parts = calloc((size_t)nt + 1, sizeof *parts);
    kb_cmember_t **sorted = malloc(((size_t)n + 1) * sizeof *sorted);
    kb_cassign_member_t *am = calloc((size_t)n + 1, sizeof *am);
    int32_t *tbuf = malloc(((size_t)n + 1) * ((size_t)nt + 1) * sizeof *tbuf);
    int rc = K_ERR_NOMEM;
    if (!parts || !sorted || !am || !tbuf)
        goto out;
    for (int32_t t = 0; t < nt; t++) {
        const kb_ctopic_t *ct = snap_find(s, cg->topics[t]);
        parts[t] = ct ? ct->partitions : 0;
    }
    if (n)
        memcpy(sorted, cg->members, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, member_cmp);
    for (int32_t i = 0; i < n; i++) {
        int32_t *buf = tbuf + (size_t)i * ((size_t)nt + 1);
        am[i].topics = buf;
        am[i].n_topics = member_topics(sorted[i], parts, buf);
        am[i].prev = &sorted[i]->target;
    }
    cg->assignor = pick_assignor(cg, &c->opts.consumer);
    rc = cg->assignor == KB_ASSIGNOR_RANGE ? kb_cassign_range(am, n, parts, nt)
                                           : kb_cassign_uniform(am, n, parts, nt);
    if (rc == 0) {
        for (int32_t i = 0; i < n; i++) {
            kb_tpset_free(&sorted[i]->target);
            sorted[i]->target = am[i].out;
            am[i].out = (kb_tpset_t){0};
        }
        cg->target_epoch = cg->epoch;
    }
out:
    for (int32_t i = 0; am && i < n; i++)
        kb_tpset_free(&am[i].out);
    free(parts);
    free(sorted);
    free(am);
    free(tbuf);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The heartbeat                                                                               */

typedef struct {
    kb_gcoord_t *c;
    const kb_chb_params_t *p;
    const kb_ctopics_t *s;
    kb_gtime_t now;
    kb_chb_result_t *out;
    char msg[160];
} hb_t;

static void hb_fail(hb_t *h, int16_t err, const char *msg)
{
    h->out->error_code = err;
    if (msg) {
        if (msg != h->msg)
            snprintf(h->msg, sizeof h->msg, "%s", msg);
        h->out->error_message = h->msg;
    } else {
        h->out->error_message = kp_error_message(err);
    }
}

/* Kafka's request validation for ConsumerGroupHeartbeat: an error or 0. */
static int16_t hb_validate(hb_t *h)
{
    const kb_chb_params_t *p = h->p;
    const char *m = NULL;
    if (p->group_id.len <= 0)
        m = "GroupId can't be empty.";
    else if (p->instance_id.len == 0)
        m = "InstanceId can't be empty.";
    else if (p->rack_id.len == 0)
        m = "RackId can't be empty.";
    else if (p->member_epoch == 0 && p->version >= 1 && p->member_id.len <= 0)
        m = "MemberId can't be empty.";
    else if (p->member_epoch > 0 && p->member_id.len <= 0)
        m = "MemberId can't be empty.";
    else if (p->member_epoch == 0 && p->rebalance_timeout_ms == -1)
        m = "RebalanceTimeoutMs must be provided in first request.";
    else if (p->member_epoch == 0 && p->n_owned > 0)
        m = "TopicPartitions must be empty when (re-)joining.";
    else if (p->member_epoch == 0 && p->n_topic_names < 0 && p->topic_regex.len < 0)
        m = "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.";
    else if (p->member_epoch == KB_CEPOCH_STATIC_LEAVE && p->instance_id.len < 0)
        m = "InstanceId can't be null when MemberEpoch is -2.";
    else if (p->member_epoch < KB_CEPOCH_STATIC_LEAVE)
        m = "MemberEpoch is invalid.";
    else if (p->n_topic_names > KB_CGROUP_NAMES_MAX)
        m = "Too many SubscribedTopicNames.";
    if (m) {
        hb_fail(h, KP_ERR_INVALID_REQUEST, m);
        return KP_ERR_INVALID_REQUEST;
    }
    if (p->server_assignor.len >= 0) {
        int a = kb_assignor_parse(p->server_assignor.ptr, (size_t)p->server_assignor.len);
        bool on = false;
        for (int i = 0; i < h->c->opts.consumer.n_assignors; i++)
            on |= h->c->opts.consumer.assignors[i] == a;
        if (a < 0 || !on) {
            hb_fail(h, KP_ERR_UNSUPPORTED_ASSIGNOR, "ServerAssignor is not supported.");
            return KP_ERR_UNSUPPORTED_ASSIGNOR;
        }
    }
    return 0;
}

/* The group for a heartbeat: found, converted from an Empty classic group, or created at
 * epoch 0. NULL after setting the error. */
static kb_group_t *hb_group(hb_t *h)
{
    kb_group_t *g = kb_gcoord_find(h->c, h->p->group_id);
    if (g && !g->cg) {
        if (g->n_members || g->n_pending || g->state != KB_GROUP_EMPTY) {
            snprintf(h->msg, sizeof h->msg, "Group %.*s is not a consumer group.",
                     (int)(h->p->group_id.len > 100 ? 100 : h->p->group_id.len),
                     h->p->group_id.ptr);
            hb_fail(h, KP_ERR_GROUP_ID_NOT_FOUND, h->msg);
            return NULL;
        }
    } else if (!g) {
        if (h->p->member_epoch != 0) {
            hb_fail(h, KP_ERR_GROUP_ID_NOT_FOUND, NULL);
            return NULL;
        }
        if (!(g = kb_group_create(h->c, h->p->group_id, h->now))) {
            hb_fail(h, KP_ERR_COORDINATOR_NOT_AVAILABLE, NULL);
            return NULL;
        }
    }
    if (!g->cg && !(g->cg = calloc(1, sizeof *g->cg))) {
        hb_fail(h, KP_ERR_COORDINATOR_NOT_AVAILABLE, NULL);
        kb_group_maybe_discard(h->c, g);
        return NULL;
    }
    return g;
}

/* MemberEpoch -1 (leave) or -2 (a static member leaves for now, keeping its partitions). */
static void hb_leave(hb_t *h, kb_cgroup_t *cg)
{
    const kb_chb_params_t *p = h->p;
    kb_cmember_t *m;
    if (p->instance_id.len < 0) {
        m = member_find(cg, p->member_id);
    } else {
        m = static_find(cg, p->instance_id);
        if (m && !kb_gstreq(m->member_id, p->member_id)) {
            hb_fail(h, KP_ERR_FENCED_INSTANCE_ID, NULL);
            return;
        }
    }
    if (!m) {
        hb_fail(h, KP_ERR_UNKNOWN_MEMBER_ID, NULL);
        return;
    }
    h->out->member_id = m->member_id;
    h->out->member_epoch = p->member_epoch;
    if (p->member_epoch == KB_CEPOCH_STATIC_LEAVE) {
        if (m->epoch != KB_CEPOCH_STATIC_LEAVE)
            m->prev_epoch = m->epoch;
        m->epoch = KB_CEPOCH_STATIC_LEAVE;
        return;
    }
    h->out->member_id = NULL; /* m dies below */
    member_remove(cg, m);
}

/* Kafka's throwIfMemberEpochIsInvalid; owned may be NULL. */
static bool epoch_fenced(const kb_cmember_t *m, int32_t epoch, const kb_tpset_t *owned)
{
    if (epoch > m->epoch)
        return true;
    if (epoch < m->epoch) {
        if (epoch != m->prev_epoch || !owned)
            return true;
        for (int32_t i = 0; i < owned->n; i++)
            if (!kb_tpset_has(&m->assigned, owned->v[i]))
                return true;
    }
    return false;
}

/* Finds, creates or takes over (static) the heartbeating member; NULL after an error. */
static kb_cmember_t *hb_member(hb_t *h, kb_cgroup_t *cg, const kb_tpset_t *owned)
{
    const kb_chb_params_t *p = h->p;
    kb_cmember_t *m = NULL;
    char gen[23];
    kp_str_t id = p->member_id;
    if (p->member_epoch == 0 && id.len <= 0) { /* v0: the coordinator names the member */
        member_id_make(h->c, gen);
        id = kp_str(gen);
    }
    kb_cmember_t *sm = static_find(cg, p->instance_id);
    if (p->member_epoch == 0 && sm) {
        if (sm->epoch != KB_CEPOCH_STATIC_LEAVE && !kb_gstreq(sm->member_id, id)) {
            hb_fail(h, KP_ERR_UNRELEASED_INSTANCE_ID, NULL);
            return NULL;
        }
        /* The instance comes back (under a new member id): it takes over its assignment. */
        if (!replace_str(&sm->member_id, NULL, id))
            return NULL;
        if (sm->epoch == KB_CEPOCH_STATIC_LEAVE)
            sm->epoch = sm->prev_epoch;
        sm->send_assignment = true;
        return sm;
    }
    m = member_find(cg, id);
    if (p->member_epoch == 0) {
        if (!m)
            return member_add(cg, id);
        /* A known member rejoins: it owns nothing now. */
        kb_tpset_free(&m->assigned);
        kb_tpset_free(&m->revoking);
        m->state = KB_CM_STABLE;
        m->prev_epoch = m->epoch;
        m->epoch = 0;
        m->send_assignment = true;
        return m;
    }
    if (!m) {
        hb_fail(h, KP_ERR_UNKNOWN_MEMBER_ID, NULL);
        return NULL;
    }
    if (p->instance_id.len >= 0 && sm != m) {
        hb_fail(h, KP_ERR_FENCED_INSTANCE_ID, NULL);
        return NULL;
    }
    if (epoch_fenced(m, p->member_epoch, owned)) {
        hb_fail(h, KP_ERR_FENCED_MEMBER_EPOCH, NULL);
        return NULL;
    }
    return m;
}

/* Applies the heartbeat's non-null fields: 1 when the subscription changed, 0, or < 0. */
static int hb_update(hb_t *h, kb_cgroup_t *cg, kb_cmember_t *m)
{
    const kb_chb_params_t *p = h->p;
    int changed = 0, rc;
    if ((p->instance_id.len >= 0 && !replace_str(&m->instance_id, &m->instance_id_len,
                                                  p->instance_id)) ||
        (p->rack_id.len >= 0 && !replace_str(&m->rack_id, NULL, p->rack_id)) ||
        (p->client_id.len >= 0 && !replace_str(&m->client_id, &m->client_id_len, p->client_id)) ||
        (p->client_host.len >= 0 &&
         !replace_str(&m->client_host, &m->client_host_len, p->client_host)))
        return K_ERR_NOMEM;
    if (p->rebalance_timeout_ms >= 0)
        m->rebalance_timeout_ms = p->rebalance_timeout_ms;
    if (p->server_assignor.len >= 0) {
        int a = kb_assignor_parse(p->server_assignor.ptr, (size_t)p->server_assignor.len);
        changed |= a != m->assignor;
        m->assignor = a;
    }
    if (p->n_topic_names >= 0) {
        if ((rc = set_names(cg, m, p->topic_names, p->n_topic_names)) < 0)
            return rc;
        changed |= rc;
    }
    if (p->topic_regex.len >= 0) {
        if ((rc = set_regex(m, p->topic_regex)) == K_ERR_INVAL) {
            hb_fail(h, KP_ERR_INVALID_REGULAR_EXPRESSION, "SubscribedTopicRegex is not a "
                                                          "valid regular expression.");
            return rc;
        }
        if (rc < 0)
            return rc;
        changed |= rc;
    }
    if ((rc = resolve_regex(cg, m, h->s)) < 0)
        return rc;
    return changed | rc;
}

/* The owned partitions a heartbeat lists, as a set (topics the broker does not know are
 * left out). NULL when not given; *err on no memory. */
static kb_tpset_t *hb_owned(hb_t *h, kb_cgroup_t *cg, kb_tpset_t *buf, int *err)
{
    *err = 0;
    if (h->p->n_owned < 0)
        return NULL;
    for (int32_t i = 0; i < h->p->n_owned; i++) {
        const kb_ctp_in_t *tp = &h->p->owned[i];
        const kb_ctopic_t *t = snap_find_id(h->s, tp->topic_id);
        int32_t idx = t ? intern(cg, t->name, strlen(t->name)) : -2;
        if (idx == -1) {
            *err = K_ERR_NOMEM;
            return NULL;
        }
        for (int32_t j = 0; idx >= 0 && j < tp->n; j++)
            if (kb_tpset_add(buf, KB_TP(idx, tp->partitions[j]))) {
                *err = K_ERR_NOMEM;
                return NULL;
            }
    }
    return buf;
}

/* Group-level work after a member's update: epoch bumps from metadata, a new target, then
 * this member's reconciliation. */
static int hb_advance(hb_t *h, kb_cgroup_t *cg, kb_cmember_t *m, const kb_tpset_t *owned,
                      bool changed)
{
    /* One epoch per heartbeat for everything it changed: a new member, its subscription,
     * the subscribed topics' metadata. */
    uint64_t mh = meta_hash(cg, h->s);
    if (mh != cg->meta_hash) {
        cg->meta_hash = mh;
        changed = true;
    }
    if (changed)
        cg->epoch++;
    if (cg->epoch > cg->target_epoch) {
        int rc = compute_target(h->c, cg, h->s);
        if (rc < 0)
            return rc;
    }
    if (m->epoch == KB_CEPOCH_STATIC_LEAVE)
        return 0;
    kb_cmember_state_t before = m->state;
    int rc = kb_cmember_reconcile(cg, m, owned);
    if (rc < 0)
        return rc;
    if (m->state == KB_CM_UNREVOKED && before != KB_CM_UNREVOKED)
        m->revoke_deadline = h->now.mono + (m->rebalance_timeout_ms > 0
                                                 ? m->rebalance_timeout_ms
                                                 : h->c->opts.consumer.session_timeout_ms);
    return 0;
}

void kb_cgroup_heartbeat(kb_gcoord_t *c, const kb_chb_params_t *p, const kb_ctopics_t *topics,
                         kb_gtime_t now, kb_chb_result_t *out)
{
    hb_t h = {.c = c, .p = p, .s = topics, .now = now, .out = out};
    memset(out, 0, sizeof *out);
    out->heartbeat_interval_ms = c->opts.consumer.heartbeat_interval_ms;
    if (!c->opts.consumer.enabled) {
        hb_fail(&h, KP_ERR_UNSUPPORTED_VERSION, "The consumer group protocol is disabled "
                                                "(group.coordinator.rebalance.protocols).");
        return;
    }
    if (hb_validate(&h))
        return;
    kb_group_t *g = hb_group(&h);
    if (!g)
        return;
    kb_cgroup_t *cg = g->cg;
    out->cg = cg;
    if (p->member_epoch < 0) {
        hb_leave(&h, cg);
        return;
    }
    kb_tpset_t owned_buf = {0};
    int err = 0;
    const kb_tpset_t *owned = hb_owned(&h, cg, &owned_buf, &err);
    bool created = p->member_epoch == 0 && !member_find(cg, p->member_id) &&
                   !static_find(cg, p->instance_id);
    kb_cmember_t *m = err ? NULL : hb_member(&h, cg, owned);
    int rc = m ? hb_update(&h, cg, m) : (err ? err : 0);
    if (m && rc >= 0)
        rc = hb_advance(&h, cg, m, owned, created || rc > 0);
    kb_tpset_free(&owned_buf);
    if (rc < 0 || (!m && !out->error_code)) {
        if (!out->error_code)
            hb_fail(&h, KP_ERR_COORDINATOR_NOT_AVAILABLE, NULL);
        if (m && created)
            member_remove(cg, m);
        if (!cg->n_members)
            kb_group_maybe_discard(c, g);
        return;
    }
    if (!m) {
        if (!cg->n_members)
            kb_group_maybe_discard(c, g);
        return;
    }
    m->session_deadline = now.mono + c->opts.consumer.session_timeout_ms;
    out->member_id = m->member_id;
    out->member_epoch = m->epoch;
    if (m->send_assignment || p->n_owned >= 0 || p->member_epoch == 0) {
        out->assignment = &m->assigned;
        m->send_assignment = false;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Deadlines, offsets checks, describe helpers                                                 */

int64_t kb_cgroup_next_deadline(const kb_group_t *g)
{
    int64_t d = KB_GROUP_NO_DEADLINE;
    const kb_cgroup_t *cg = g->cg;
    for (int32_t i = 0; cg && i < cg->n_members; i++) {
        const kb_cmember_t *m = cg->members[i];
        if (m->session_deadline < d)
            d = m->session_deadline;
        if (m->state == KB_CM_UNREVOKED && m->revoke_deadline < d)
            d = m->revoke_deadline;
    }
    return d;
}

int64_t kb_cgroup_poll(kb_gcoord_t *c, kb_group_t *g, kb_gtime_t now)
{
    (void)c;
    kb_cgroup_t *cg = g->cg;
    for (int32_t i = 0; cg && i < cg->n_members;) {
        kb_cmember_t *m = cg->members[i];
        bool expired = now.mono >= m->session_deadline ||
                       (m->state == KB_CM_UNREVOKED && now.mono >= m->revoke_deadline);
        if (expired)
            member_remove(cg, m); /* shifts the rest down */
        else
            i++;
    }
    return kb_cgroup_next_deadline(g);
}

int16_t kb_cgroup_commit_check(kb_group_t *g, int32_t epoch, kp_str_t member_id,
                               kb_gtime_t now)
{
    (void)now;
    kb_cgroup_t *cg = g->cg;
    if (epoch < 0 && member_id.len <= 0)
        return cg->n_members ? KP_ERR_UNKNOWN_MEMBER_ID : KP_ERR_NONE;
    kb_cmember_t *m = member_find(cg, member_id);
    if (!m)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    if (epoch > m->epoch)
        return KP_ERR_FENCED_MEMBER_EPOCH;
    if (epoch < m->epoch)
        return KP_ERR_STALE_MEMBER_EPOCH;
    return KP_ERR_NONE;
}

int16_t kb_cgroup_fetch_check(const kb_group_t *g, kp_str_t member_id, int32_t epoch)
{
    if (!g->cg || (member_id.len < 0 && epoch < 0))
        return KP_ERR_NONE;
    kb_cmember_t *m = member_find(g->cg, member_id);
    if (!m)
        return KP_ERR_UNKNOWN_MEMBER_ID;
    return epoch == m->epoch ? KP_ERR_NONE : KP_ERR_STALE_MEMBER_EPOCH;
}

const char *kb_cgroup_state_name(const kb_cgroup_t *cg)
{
    if (!cg || !cg->n_members)
        return "Empty";
    if (cg->epoch > cg->target_epoch)
        return "Assigning";
    for (int32_t i = 0; i < cg->n_members; i++) {
        const kb_cmember_t *m = cg->members[i];
        if (m->epoch != KB_CEPOCH_STATIC_LEAVE &&
            (m->state != KB_CM_STABLE || m->epoch != cg->target_epoch))
            return "Reconciling";
    }
    return "Stable";
}

bool kb_cgroup_subscribes(const kb_cgroup_t *cg, kp_str_t topic)
{
    for (int32_t i = 0; cg && i < cg->n_members; i++) {
        const kb_cmember_t *m = cg->members[i];
        for (int32_t j = 0; j < m->n_sub; j++)
            if (kb_gstreq(cg->topics[m->sub[j]], topic))
                return true;
        for (int32_t j = 0; j < m->n_rx; j++)
            if (kb_gstreq(cg->topics[m->rx[j]], topic))
                return true;
    }
    return false;
}

bool kb_group_has_cmembers(const kb_group_t *g)
{
    return g->cg && g->cg->n_members > 0;
}
