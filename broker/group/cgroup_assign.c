/*
 * Consumer groups (KIP-848), the pure parts: partition sets, the server-side assignors
 * (uniform, range) and the reconciliation of one member towards its target assignment.
 * See cgroup.h for the model.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/group/cgroup.h"
#include "protocol/k_status.h"

/* ------------------------------------------------------------------------------------------ */
/* Partition sets                                                                              */

void kb_tpset_free(kb_tpset_t *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int32_t tpset_lower(const kb_tpset_t *s, uint64_t k)
{
    int32_t lo = 0, hi = s->n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (s->v[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool kb_tpset_has(const kb_tpset_t *s, uint64_t k)
{
    int32_t i = tpset_lower(s, k);
    return i < s->n && s->v[i] == k;
}

static int tpset_reserve(kb_tpset_t *s, int32_t n)
{
    if (n <= s->cap)
        return 0;
    int32_t cap = s->cap ? s->cap : 8;
    while (cap < n)
        cap *= 2;
    uint64_t *v = realloc(s->v, (size_t)cap * sizeof *v);
    if (!v)
        return K_ERR_NOMEM;
    s->v = v;
    s->cap = cap;
    return 0;
}

int kb_tpset_add(kb_tpset_t *s, uint64_t k)
{
    int32_t i = tpset_lower(s, k);
    if (i < s->n && s->v[i] == k)
        return 0;
    if (tpset_reserve(s, s->n + 1))
        return K_ERR_NOMEM;
    memmove(s->v + i + 1, s->v + i, (size_t)(s->n - i) * sizeof *s->v);
    s->v[i] = k;
    s->n++;
    return 0;
}

/* Appends k, which must sort after every key in s (building in order). */
static int tpset_push(kb_tpset_t *s, uint64_t k)
{
    if (tpset_reserve(s, s->n + 1))
        return K_ERR_NOMEM;
    s->v[s->n++] = k;
    return 0;
}

int kb_tpset_copy(kb_tpset_t *dst, const kb_tpset_t *src)
{
    dst->n = 0;
    if (tpset_reserve(dst, src->n))
        return K_ERR_NOMEM;
    if (src->n)
        memcpy(dst->v, src->v, (size_t)src->n * sizeof *src->v);
    dst->n = src->n;
    return 0;
}

bool kb_tpset_equal(const kb_tpset_t *a, const kb_tpset_t *b)
{
    return a->n == b->n && (!a->n || !memcmp(a->v, b->v, (size_t)a->n * sizeof *a->v));
}

int32_t kb_tpset_topic_parts(const kb_tpset_t *s, int32_t t, int32_t *out)
{
    int32_t n = 0;
    for (int32_t i = tpset_lower(s, KB_TP(t, 0)); i < s->n && KB_TP_TOPIC(s->v[i]) == t; i++) {
        if (out)
            out[n] = KB_TP_PART(s->v[i]);
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Assignor names                                                                              */

static const char *const assignor_names[KB_ASSIGNOR_N] = {"uniform", "range"};
static const char *const assignor_classes[KB_ASSIGNOR_N] = {
    "org.apache.kafka.coordinator.group.assignor.UniformAssignor",
    "org.apache.kafka.coordinator.group.assignor.RangeAssignor",
};

int kb_assignor_parse(const char *s, size_t len)
{
    for (int i = 0; i < KB_ASSIGNOR_N; i++)
        if ((strlen(assignor_names[i]) == len && !strncasecmp(s, assignor_names[i], len)) ||
            (strlen(assignor_classes[i]) == len && !memcmp(s, assignor_classes[i], len)))
            return i;
    return -1;
}

const char *kb_assignor_name(int a)
{
    return a >= 0 && a < KB_ASSIGNOR_N ? assignor_names[a] : "";
}

int kb_assignors_parse(const char *list, int *out, int *n)
{
    *n = 0;
    const char *p = list ? list : "";
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        size_t len = (size_t)(e - p);
        while (len && p[len - 1] == ' ')
            len--;
        if (len) {
            int a = kb_assignor_parse(p, len);
            if (a < 0)
                return K_ERR_INVAL;
            bool dup = false;
            for (int i = 0; i < *n; i++)
                dup |= out[i] == a;
            if (!dup && *n < KB_ASSIGNOR_N)
                out[(*n)++] = a;
        }
        p = e;
    }
    return *n ? 0 : K_ERR_INVAL;
}

/* ------------------------------------------------------------------------------------------ */
/* Assignors                                                                                   */

static bool subscribes(const kb_cassign_member_t *m, int32_t t)
{
    int32_t lo = 0, hi = m->n_topics;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (m->topics[mid] == t)
            return true;
        if (m->topics[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Every partition of every topic someone subscribes to, sorted. */
static int all_partitions(const kb_cassign_member_t *m, int32_t n, const int32_t *parts,
                          int32_t n_topics, kb_tpset_t *all)
{
    for (int32_t t = 0; t < n_topics; t++) {
        bool any = false;
        for (int32_t i = 0; i < n && !any; i++)
            any = subscribes(&m[i], t);
        for (int32_t p = 0; any && p < parts[t]; p++)
            if (tpset_push(all, KB_TP(t, p)))
                return K_ERR_NOMEM;
    }
    return 0;
}

/* The subscriber of topic t with the fewest partitions (ties: the first), -1 if none. */
static int32_t least_loaded(const kb_cassign_member_t *m, int32_t n, const int32_t *count,
                            int32_t t)
{
    int32_t best = -1;
    for (int32_t i = 0; i < n; i++)
        if (subscribes(&m[i], t) && (best < 0 || count[i] < count[best]))
            best = i;
    return best;
}

/* Moves partitions from members with two or more than another subscriber of the same topic
 * until none can move: each move lowers the sum of squared counts, so this ends. */
static void balance(const kb_cassign_member_t *m, int32_t n, const kb_tpset_t *all,
                    int32_t *owner, int32_t *count)
{
    bool moved = true;
    for (int pass = 0; moved && pass < 1000000; pass++) {
        moved = false;
        for (int32_t k = 0; k < all->n; k++) {
            int32_t a = owner[k];
            if (a < 0)
                continue;
            int32_t b = least_loaded(m, n, count, KB_TP_TOPIC(all->v[k]));
            if (b >= 0 && count[b] < count[a] - 1) {
                owner[k] = b;
                count[a]--;
                count[b]++;
                moved = true;
            }
        }
    }
}

int kb_cassign_uniform(kb_cassign_member_t *m, int32_t n, const int32_t *parts, int32_t n_topics)
{
    kb_tpset_t all = {0};
    int rc = all_partitions(m, n, parts, n_topics, &all);
    int32_t *owner = malloc(((size_t)all.n + 1) * sizeof *owner);
    int32_t *count = calloc((size_t)n + 1, sizeof *count);
    if (rc || !owner || !count) {
        rc = K_ERR_NOMEM;
        goto out;
    }
    for (int32_t k = 0; k < all.n; k++)
        owner[k] = -1;
    /* Sticky: previous owners keep what they still subscribe to. */
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; m[i].prev && j < m[i].prev->n; j++) {
            uint64_t key = m[i].prev->v[j];
            int32_t k = tpset_lower(&all, key);
            if (k < all.n && all.v[k] == key && owner[k] < 0 && subscribes(&m[i], KB_TP_TOPIC(key))) {
                owner[k] = i;
                count[i]++;
            }
        }
    for (int32_t k = 0; k < all.n; k++)
        if (owner[k] < 0 && (owner[k] = least_loaded(m, n, count, KB_TP_TOPIC(all.v[k]))) >= 0)
            count[owner[k]]++;
    balance(m, n, &all, owner, count);
    for (int32_t i = 0; i < n; i++)
        m[i].out.n = 0;
    for (int32_t k = 0; k < all.n && !rc; k++)
        if (owner[k] >= 0)
            rc = tpset_push(&m[owner[k]].out, all.v[k]);
out:
    free(owner);
    free(count);
    kb_tpset_free(&all);
    return rc;
}

int kb_cassign_range(kb_cassign_member_t *m, int32_t n, const int32_t *parts, int32_t n_topics)
{
    int32_t *subs = malloc(((size_t)n + 1) * sizeof *subs);
    if (!subs)
        return K_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++)
        m[i].out.n = 0;
    int rc = 0;
    for (int32_t t = 0; t < n_topics && !rc; t++) {
        int32_t ns = 0;
        for (int32_t i = 0; i < n; i++)
            if (subscribes(&m[i], t))
                subs[ns++] = i;
        if (!ns || parts[t] <= 0)
            continue;
        int32_t q = parts[t] / ns, r = parts[t] % ns, p = 0;
        for (int32_t j = 0; j < ns && !rc; j++)
            for (int32_t c = q + (j < r ? 1 : 0); c > 0 && !rc; c--)
                rc = tpset_push(&m[subs[j]].out, KB_TP(t, p++));
    }
    free(subs);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Reconciliation                                                                              */

/* Another member has k assigned or pending revocation. */
static bool owned_by_other(const kb_cgroup_t *cg, const kb_cmember_t *self, uint64_t k)
{
    for (int32_t i = 0; i < cg->n_members; i++) {
        const kb_cmember_t *o = cg->members[i];
        if (o != self && (kb_tpset_has(&o->assigned, k) || kb_tpset_has(&o->revoking, k)))
            return true;
    }
    return false;
}

/* Kafka's computeNextAssignment: keep current ∩ target, revoke current - target, add the
 * free part of target - current. */
static int next_assignment(kb_cgroup_t *cg, kb_cmember_t *m)
{
    kb_tpset_t keep = {0}, revoke = {0};
    bool unreleased = false;
    int rc = 0;
    for (int32_t i = 0; i < m->assigned.n && !rc; i++) {
        uint64_t k = m->assigned.v[i];
        rc = kb_tpset_has(&m->target, k) ? tpset_push(&keep, k) : tpset_push(&revoke, k);
    }
    if (!rc && revoke.n == 0) {
        for (int32_t i = 0; i < m->target.n && !rc; i++) {
            uint64_t k = m->target.v[i];
            if (kb_tpset_has(&keep, k))
                continue;
            if (owned_by_other(cg, m, k))
                unreleased = true;
            else
                rc = kb_tpset_add(&keep, k);
        }
    }
    if (rc) {
        kb_tpset_free(&keep);
        kb_tpset_free(&revoke);
        return rc;
    }
    bool changed = !kb_tpset_equal(&keep, &m->assigned);
    kb_tpset_free(&m->assigned);
    kb_tpset_free(&m->revoking);
    m->assigned = keep;
    m->revoking = revoke;
    if (revoke.n) {
        m->state = KB_CM_UNREVOKED; /* the epoch stays until the revocation is acknowledged */
    } else {
        m->state = unreleased ? KB_CM_UNRELEASED : KB_CM_STABLE;
        if (m->epoch != cg->target_epoch) {
            m->prev_epoch = m->epoch;
            m->epoch = cg->target_epoch;
            changed = true;
        }
    }
    if (changed)
        m->send_assignment = true;
    return 0;
}

int kb_cmember_reconcile(kb_cgroup_t *cg, kb_cmember_t *m, const kb_tpset_t *owned)
{
    switch (m->state) {
    case KB_CM_STABLE:
        if (m->epoch == cg->target_epoch)
            return 0;
        return next_assignment(cg, m);
    case KB_CM_UNREVOKED:
        /* Still owns something it must give up (or did not say): wait. */
        if (!owned)
            return 0;
        for (int32_t i = 0; i < m->revoking.n; i++)
            if (kb_tpset_has(owned, m->revoking.v[i]))
                return 0;
        kb_tpset_free(&m->revoking);
        return next_assignment(cg, m);
    case KB_CM_UNRELEASED:
        return next_assignment(cg, m);
    }
    return 0;
}
