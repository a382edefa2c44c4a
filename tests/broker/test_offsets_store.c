/* Unit tests for the durable offsets log (broker/group/offsets_store.c) on a real store in a temp
 * dir: commits survive a reopen, group metadata round-trips, tombstones delete, garbage is
 * skipped, and snapshots keep the log bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/group/group.h"
#include "broker/group/offsets_store.h"
#include "protocol/kp_batch.h"
#include "protocol/kp_errors.h"

/* Both clocks at the same reading: the coordinator's behaviour before it had two. */
#define T(ms) ((kb_gtime_t){.mono = (ms), .wall = (ms)})

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    char sub[4096];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rm_rf(sub);
    }
    closedir(d);
    rmdir(path);
}

static void on_join(void *ud, void *w, const kb_join_result_t *r)
{
    (void)ud;
    *(int16_t *)w = r->error_code;
}

static void on_sync(void *ud, void *w, const kb_sync_result_t *r)
{
    (void)ud;
    *(int16_t *)w = r->error_code;
}

typedef struct {
    char dir[64];
    ks_store_t *store;
    kb_gcoord_t *coord;
    kb_ostore_t *os;
} env_t;

static void store_group(void *ud, const kb_group_t *g)
{
    env_t *e = ud;
    int64_t end;
    if (e->os)
        assert_int_equal(kb_ostore_append_group(e->os, g, 1000, &end), 0);
}

static bool env_cleaner; /* open the store with the log cleaner running */

static void env_open(env_t *e, int64_t segment_bytes)
{
    const char *dirs[] = {e->dir};
    ks_store_opts_t o;
    memset(&o, 0, sizeof o);
    o.cleaner.enable = env_cleaner;
    o.cleaner.backoff_ms = 10;
    o.dirs = dirs;
    o.n_dirs = 1;
    o.max_open_files = 64;
    o.node_id = 1;
    ks_topic_config_default(&o.defaults);
    assert_int_equal(ks_store_open(&o, &e->store), 0);
    kb_gcoord_opts_t co = {
        .min_session_timeout_ms = 6000,
        .max_session_timeout_ms = 300000,
        .offsets_retention_ms = 7LL * 24 * 3600 * 1000,
        .join_done = on_join,
        .sync_done = on_sync,
        .store_group = store_group,
        .ud = e,
    };
    e->os = NULL;
    assert_int_equal(kb_gcoord_new(&co, &e->coord), 0);
    assert_int_equal(kb_ostore_open(e->store, e->coord, segment_bytes, T(1000), &e->os), 0);
}

static void env_close(env_t *e)
{
    kb_ostore_close(e->os);
    e->os = NULL;
    kb_gcoord_free(e->coord);
    ks_store_close(e->store);
}

typedef struct {
    int calls;
    int status;
} wait_t;

static void on_synced(void *arg, int status)
{
    wait_t *w = arg;
    w->calls++;
    w->status = status;
}

static void sync_wait(env_t *e, int64_t end)
{
    wait_t w = {0};
    assert_int_equal(kb_ostore_sync(e->os, end, on_synced, &w), 0);
    for (int i = 0; i < 10000 && !w.calls; i++) {
        ks_store_run_completions(e->store);
        if (!w.calls)
            usleep(500);
    }
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.status, 0);
}

static void commit(env_t *e, const char *group, const char *topic, int32_t part, int64_t off,
                   const char *md)
{
    kb_ostore_rec_t r = {.topic = kp_str(topic), .partition = part};
    r.o.offset = off;
    r.o.leader_epoch = 3;
    r.o.metadata = (char *)md;
    r.o.metadata_len = md ? (int32_t)strlen(md) : 0;
    r.o.commit_ts = 1000;
    r.o.expire_ts = -1;
    int64_t end = 0;
    assert_int_equal(kb_ostore_append_offsets(e->os, kp_str(group), &r, 1, 1000, &end), 0);
    assert_int_equal(kb_group_offset_put(e->coord, kp_str(group), kp_str(topic), part, &r.o), 0);
    kb_ostore_maybe_compact(e->os, 1000);
    sync_wait(e, end);
}

static const kb_offset_t *get(env_t *e, const char *group, const char *topic, int32_t part)
{
    kb_group_t *g = kb_gcoord_find(e->coord, kp_str(group));
    return g ? kb_group_offset_get(g, kp_str(topic), part) : NULL;
}

static void env_init(env_t *e)
{
    memset(e, 0, sizeof *e);
    env_cleaner = false;
    strcpy(e->dir, "/tmp/depot-ostore-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
}

static void test_ostore_commits_survive_reopen(void **st)
{
    (void)st;
    env_t e;
    env_init(&e);
    env_open(&e, 0);
    commit(&e, "g1", "t", 0, 10, "meta");
    commit(&e, "g1", "t", 1, 20, NULL);
    commit(&e, "g1", "t", 0, 11, "meta2");
    commit(&e, "g2", "u", 5, 99, "");
    env_close(&e);

    env_open(&e, 0);
    const kb_offset_t *o = get(&e, "g1", "t", 0);
    assert_non_null(o);
    assert_int_equal(o->offset, 11);
    assert_int_equal(o->leader_epoch, 3);
    assert_string_equal(o->metadata, "meta2");
    o = get(&e, "g1", "t", 1);
    assert_non_null(o);
    assert_int_equal(o->offset, 20);
    assert_null(o->metadata);
    assert_int_equal(get(&e, "g2", "u", 5)->offset, 99);
    int64_t n, skipped;
    kb_ostore_load_stats(e.os, &n, &skipped);
    assert_int_equal(n, 4);
    assert_int_equal(skipped, 0);
    env_close(&e);
    rm_rf(e.dir);
}

/* Offset metadata is any bytes: an embedded NUL and non-ASCII come back byte for byte, live
 * and after a reopen (replay of the offsets log). */
static void test_ostore_metadata_bytes_round_trip(void **st)
{
    (void)st;
    static const char md[] = "a\0b\xc3\xa9\xff\0"; /* 8 bytes incl. the trailing NUL */
    env_t e;
    env_init(&e);
    env_open(&e, 0);
    kb_ostore_rec_t r = {.topic = kp_str("t"), .partition = 0};
    r.o.offset = 7;
    r.o.leader_epoch = -1;
    r.o.metadata = (char *)md;
    r.o.metadata_len = (int32_t)sizeof md;
    r.o.expire_ts = -1;
    int64_t end = 0;
    assert_int_equal(kb_ostore_append_offsets(e.os, kp_str("g"), &r, 1, 1000, &end), 0);
    assert_int_equal(kb_group_offset_put(e.coord, kp_str("g"), kp_str("t"), 0, &r.o), 0);
    sync_wait(&e, end);
    for (int round = 0; round < 2; round++) {
        const kb_offset_t *o = get(&e, "g", "t", 0);
        assert_non_null(o);
        assert_int_equal(o->metadata_len, sizeof md);
        assert_memory_equal(o->metadata, md, sizeof md);
        env_close(&e);
        env_open(&e, 0);
    }
    env_close(&e);
    rm_rf(e.dir);
}

static void test_ostore_tombstones_and_group_delete(void **st)
{
    (void)st;
    env_t e;
    env_init(&e);
    env_open(&e, 0);
    commit(&e, "g1", "t", 0, 10, "");
    commit(&e, "g1", "t", 1, 11, "");
    commit(&e, "g2", "t", 0, 12, "");
    kb_ostore_rec_t r = {.topic = kp_str("t"), .partition = 1, .tombstone = true};
    int64_t end;
    assert_int_equal(kb_ostore_append_offsets(e.os, kp_str("g1"), &r, 1, 1000, &end), 0);
    /* deleting the group writes its tombstone */
    assert_int_equal(kb_group_delete(e.coord, kp_str("g2")), KP_ERR_NONE);
    sync_wait(&e, ks_part_log_end(kb_ostore_part(e.os)));
    env_close(&e);

    env_open(&e, 0);
    assert_non_null(get(&e, "g1", "t", 0));
    assert_null(get(&e, "g1", "t", 1));
    assert_null(kb_gcoord_find(e.coord, kp_str("g2")));
    env_close(&e);
    rm_rf(e.dir);
}

static void test_ostore_group_metadata_round_trip(void **st)
{
    (void)st;
    env_t e;
    env_init(&e);
    env_open(&e, 0);
    int16_t jerr = -99, serr = -99;
    kb_gproto_in_t pr = {kp_str("range"), {(const uint8_t *)"SUB", 3}};
    kb_join_params_t p = {
        .group_id = kp_str("g"),
        .member_id = kp_str(""),
        .group_instance_id = kp_str("inst"),
        .client_id = kp_str("c"),
        .client_host = kp_str("/10.0.0.1"),
        .protocol_type = kp_str("consumer"),
        .session_timeout_ms = 10000,
        .rebalance_timeout_ms = 30000,
        .protocols = &pr,
        .n_protocols = 1,
    };
    kb_group_join(e.coord, &p, T(1000), &jerr);
    assert_int_equal(jerr, KP_ERR_NONE);
    kb_group_t *g = kb_gcoord_find(e.coord, kp_str("g"));
    char mid[128];
    snprintf(mid, sizeof mid, "%s", g->members->member_id);
    kb_gassign_in_t a = {kp_str(mid), {(const uint8_t *)"ASSIGN", 6}};
    kb_sync_params_t sp = {.group_id = kp_str("g"),
                           .member_id = kp_str(mid),
                           .group_instance_id = kp_str("inst"),
                           .protocol_type = {NULL, -1},
                           .protocol_name = {NULL, -1},
                           .generation_id = 1,
                           .assignments = &a,
                           .n_assignments = 1};
    kb_group_sync(e.coord, &sp, T(1000), &serr);
    assert_int_equal(serr, KP_ERR_NONE);
    sync_wait(&e, ks_part_log_end(kb_ostore_part(e.os)));
    env_close(&e);

    env_open(&e, 0);
    g = kb_gcoord_find(e.coord, kp_str("g"));
    assert_non_null(g);
    assert_int_equal(g->state, KB_GROUP_STABLE);
    assert_int_equal(g->generation_id, 1);
    assert_string_equal(g->protocol_name, "range");
    assert_string_equal(g->leader_id, mid);
    assert_int_equal(g->n_members, 1);
    assert_string_equal(g->members->instance_id, "inst");
    assert_string_equal(g->members->client_host, "/10.0.0.1");
    assert_int_equal(g->members->assignment_len, 6);
    assert_memory_equal(g->members->assignment, "ASSIGN", 6);
    assert_int_equal(kb_group_heartbeat(e.coord, kp_str("g"), 1, kp_str(mid), kp_str("inst"), T(2000)),
                     KP_ERR_NONE);
    env_close(&e);
    rm_rf(e.dir);
}

static void test_ostore_skips_garbage_records(void **st)
{
    (void)st;
    env_t e;
    env_init(&e);
    env_open(&e, 0);
    commit(&e, "g1", "t", 0, 7, "");
    /* Someone produced junk into the internal topic. */
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    kp_bytes_t k = {(const uint8_t *)"\x00\x00\xff", 3}, v = {(const uint8_t *)"zz", 2};
    assert_int_equal(kp_batch_builder_add(&bb, 1, k, v, NULL, 0), 0);
    kp_bytes_t k2 = {(const uint8_t *)"\x00\x07", 2};
    assert_int_equal(kp_batch_builder_add(&bb, 1, k2, v, NULL, 0), 0);
    kp_buf_t out;
    kp_buf_init(&out);
    assert_int_equal(kp_batch_builder_finish(&bb, &out), 0);
    ks_append_result_t res;
    assert_int_equal(ks_part_append(kb_ostore_part(e.os), out.data, out.len, 1000, &res), 0);
    kp_buf_deinit(&out);
    kp_batch_builder_deinit(&bb);
    commit(&e, "g1", "t", 1, 8, "");
    env_close(&e);

    env_open(&e, 0);
    int64_t n, skipped;
    kb_ostore_load_stats(e.os, &n, &skipped);
    assert_int_equal(skipped, 2);
    assert_int_equal(n, 2);
    assert_int_equal(get(&e, "g1", "t", 0)->offset, 7);
    assert_int_equal(get(&e, "g1", "t", 1)->offset, 8);
    env_close(&e);
    rm_rf(e.dir);
}

static void test_ostore_snapshots_keep_log_bounded(void **st)
{
    (void)st;
    env_t e;
    env_init(&e);
    env_open(&e, 4096);
    int64_t max_size = 0;
    for (int i = 0; i < 1000; i++) {
        char topic[16];
        snprintf(topic, sizeof topic, "t%d", i % 7);
        commit(&e, "g", topic, i % 3, i, "some-metadata");
        int64_t sz = ks_part_size_bytes(kb_ostore_part(e.os));
        if (sz > max_size)
            max_size = sz;
    }
    /* 1000 commits of ~100 bytes each would be ~100 KB unbounded. */
    assert_true(ks_part_log_start(kb_ostore_part(e.os)) > 0);
    assert_true(max_size < 32 * 1024);
    env_close(&e);

    env_open(&e, 4096);
    for (int t = 0; t < 7; t++)
        for (int p = 0; p < 3; p++) {
            char topic[16];
            snprintf(topic, sizeof topic, "t%d", t);
            int last = -1;
            for (int i = 0; i < 1000; i++)
                if (i % 7 == t && i % 3 == p)
                    last = i;
            const kb_offset_t *o = get(&e, "g", topic, p);
            assert_non_null(o);
            assert_int_equal(o->offset, last);
            assert_string_equal(o->metadata, "some-metadata");
        }
    env_close(&e);
    rm_rf(e.dir);
}

/* With the log cleaner running the topic is compacted, not snapshotted and trimmed: the log
 * start stays 0, the size stays bounded, and a deleted group's offsets stay deleted after the
 * cleaner dropped the group tombstone. */
static void test_ostore_compacted_by_the_cleaner(void **st)
{
    (void)st;
    env_t e;
    env_init(&e);
    env_cleaner = true;
    env_open(&e, 4096);
    ks_part_t *p = kb_ostore_part(e.os);
    ks_topic_t *t = ks_part_topic(p);
    assert_true(ks_cleanup_compacts(ks_topic_config(t)->cleanup_policy));
    assert_int_equal(ks_topic_set_config(t, "delete.retention.ms", "0"), 0);
    commit(&e, "gone", "x", 0, 5, "");
    commit(&e, "gone", "x", 1, 6, "");
    assert_int_equal(kb_group_delete(e.coord, kp_str("gone")), KP_ERR_NONE);
    for (int i = 0; i < 1000; i++) {
        char topic[16];
        snprintf(topic, sizeof topic, "t%d", i % 7);
        commit(&e, "g", topic, i % 3, i, "some-metadata");
    }
    assert_int_equal(ks_part_log_start(p), 0); /* no snapshot trim */
    ks_cleaner_stats_t cs = {0};
    for (int i = 0; i < 1000 && (ks_part_size_bytes(p) > 32 * 1024 || !cs.tombstones_removed);
         i++) {
        usleep(10000);
        ks_store_run_completions(e.store);
        ks_store_cleaner_stats(e.store, &cs);
    }
    assert_true(ks_part_size_bytes(p) < 32 * 1024);
    assert_true(cs.tombstones_removed >= 3); /* the group's and its two offsets' */
    env_close(&e);
    env_open(&e, 4096);
    assert_null(kb_gcoord_find(e.coord, kp_str("gone")));
    const kb_offset_t *o = get(&e, "g", "t6", 2);
    assert_non_null(o);
    assert_int_equal(o->offset, 986); /* the last i < 1000 with i % 7 == 6, i % 3 == 2 */
    env_close(&e);
    rm_rf(e.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ostore_commits_survive_reopen),
        cmocka_unit_test(test_ostore_tombstones_and_group_delete),
        cmocka_unit_test(test_ostore_compacted_by_the_cleaner),
        cmocka_unit_test(test_ostore_group_metadata_round_trip),
        cmocka_unit_test(test_ostore_metadata_bytes_round_trip),
        cmocka_unit_test(test_ostore_skips_garbage_records),
        cmocka_unit_test(test_ostore_snapshots_keep_log_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
