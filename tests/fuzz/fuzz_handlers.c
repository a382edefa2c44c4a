/*
 * libFuzzer target: sequences of decoded-and-valid requests of every served API against a real
 * broker running in this process (its loop on a thread, its store in a temp dir under /dev/shm
 * when there is one), over a loopback connection, as a client would send them.
 *
 * Input: up to MAX_REQS records of [api selector u8][version selector u8][length u16][body].
 * The selectors pick one of the APIs the broker advertises (kb_dispatch_apis) and a version in
 * its range; the body is decoded with that API's generated request decoder and only what
 * decodes is sent, re-encoded by the generated encoder (so every request is well-formed and
 * the fuzzer explores field values, not framing). Sizes that would only fill the disk are
 * clamped (partition counts). DeleteTopics of the watched topic "t" is dropped so the
 * invariants below have something to watch.
 *
 * Asserted (abort() on violation, so libFuzzer keeps the input):
 *  - every response decodes with the API's response decoder, to its last byte;
 *  - responses come back in request order (correlation ids), none is invented;
 *  - the log end offsets of t-0 and t-1 (ListOffsets latest) never go backwards;
 *  - an OffsetCommit answered without error is what OffsetFetch reads back, when nothing
 *    after it in the sequence could have changed it.
 * No crash and no leak: the target is built with ASan/UBSan/LSan (tests/fuzz/run.sh). The
 * broker's state lives across inputs (as a real broker's does), so a crash may need the
 * inputs before it; libFuzzer's -runs replays from the corpus show them.
 * A request the broker holds (a long poll, a JoinGroup waiting for members) ends the
 * sequence: the connection is closed, which exercises the cancellation path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker/core/config.h"
#include "broker/core/server.h"
#include "protocol/gen/kp_alter_client_quotas.h"
#include "protocol/gen/kp_create_partitions.h"
#include "protocol/gen/kp_create_topics.h"
#include "protocol/gen/kp_delete_topics.h"
#include "protocol/gen/kp_list_offsets.h"
#include "protocol/gen/kp_offset_commit.h"
#include "protocol/gen/kp_offset_fetch.h"
#include "protocol/gen/kp_produce.h"
#include "protocol/kp_header.h"

#define MAX_REQS 12
#define MAX_PARTS 4
#define RESP_WAIT_MS 300    /* longer: the request is held (long poll, JoinGroup) */
#define CHECK_WAIT_MS 20000 /* the invariant checks must be answered (a busy shared machine) */

static kb_config_t cfg;
static uv_loop_t loop;
static kb_broker_t *broker;
static pthread_t thread;
static int port;
static kb_api_range_t apis[64];
static int napis;
static int64_t watched_end[2];

static void *run_loop(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static char dir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* At libFuzzer's normal exit (the broker thread still runs; nothing is read after). A crash
 * leaves the directory for a look; its path is printed at start. */
static void remove_data(void)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void start_broker(void)
{
    struct stat st;
    snprintf(dir, sizeof dir, "%s/fuzzhXXXXXX", stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir)) abort();
    char dirs[96];
    snprintf(dirs, sizeof dirs, "log.dirs=%s", dir);
    const char *sets[] = {"listeners=PLAINTEXT://127.0.0.1:0", dirs, "num.partitions=2",
                          "fetch.long.poll.max.ms=50", "group.initial.rebalance.delay.ms=0",
                          "group.min.session.timeout.ms=1", "log.segment.bytes=65536",
                          "auto.create.topics.enable=true"};
    char err[256];
    kb_log_set_level(KB_LOG_ERROR);
    if (kb_config_load(&cfg, NULL, sets, sizeof sets / sizeof sets[0], err, sizeof err, NULL) < 0) {
        fprintf(stderr, "fuzz_handlers: config: %s\n", err);
        abort();
    }
    uv_loop_init(&loop);
    if (kb_broker_new(&cfg, &loop, &broker) < 0 || kb_broker_start(broker) < 0) abort();
    port = kb_broker_port(broker);
    ks_topic_t *t;
    if (ks_topic_create(kb_broker_store(broker), "t", 2, NULL, &t) < 0) abort();
    napis = kb_dispatch_apis(apis, 64);
    atexit(remove_data);
    if (pthread_create(&thread, NULL, run_loop, NULL) != 0) abort();
    fprintf(stderr, "fuzz_handlers: broker on port %d, data in %s, %d APIs\n", port, dir, napis);
}

/* Closes with a reset: no TIME_WAIT left behind per run (the broker sees a peer reset,
 * one more path worth fuzzing). */
static void close_conn(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

/* wait_ms: how long a response may take before the request counts as held. */
static int connect_broker(int wait_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) abort();
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Hundreds of thousands of runs open a connection or three each: a refusal here is the
     * harness running out of ephemeral ports or the backlog, not a broker fault; retry. */
    int tries = 0;
    while (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (++tries > 500 || (errno != EADDRNOTAVAIL && errno != ECONNREFUSED &&
                              errno != EAGAIN && errno != EINTR)) {
            fprintf(stderr, "fuzz_handlers: connect: %s after %d tries\n", strerror(errno),
                    tries);
            abort();
        }
        close(fd);
        usleep(10000);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) abort();
    }
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static bool read_n(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue; /* libFuzzer's -timeout alarm */
        if (r <= 0) return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* Frames one request (header + body encoded from msg); false if the connection is gone. */
static bool send_req(int fd, const kp_api_t *api, int16_t v, int32_t corr, const void *msg)
{
    kp_buf_t b;
    kp_buf_init(&b);
    size_t at = kp_put_i32(&b, 0);
    kp_req_header_t h = {api->key, v, corr, kp_str("fuzz")};
    kp_req_header_encode(&b, &h);
    if (api->req_encode(&b, v, msg) != 0) abort(); /* a decoded message must encode */
    kp_buf_patch_i32(&b, at, (int32_t)(b.len - at - 4));
    bool ok = send(fd, b.data, b.len, MSG_NOSIGNAL) == (ssize_t)b.len;
    kp_buf_deinit(&b);
    return ok;
}

/* Reads the next response: 1 decoded into resp (arena a), 0 connection closed or timed out.
 * A response that does not decode, or answers another correlation id, aborts. */
static int recv_resp(int fd, const kp_api_t *api, int16_t v, int32_t corr, kp_arena_t *a,
                     void *resp, uint8_t **frame)
{
    uint8_t hdr[4];
    *frame = NULL;
    if (!read_n(fd, hdr, 4)) return 0;
    uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (n == 0 || n > (256u << 20)) abort();
    uint8_t *buf = malloc(n);
    if (!buf) abort();
    if (!read_n(fd, buf, n)) {
        free(buf);
        return 0;
    }
    kp_reader_t r;
    kp_reader_init(&r, buf, n);
    int32_t got;
    if (kp_resp_header_decode(&r, api->key, v, &got) != 0 || got != corr) abort();
    if (api->resp_decode(&r, v, a, resp) != 0 || kp_remaining(&r) != 0) abort();
    *frame = buf;
    return 1;
}

typedef struct {
    const kp_api_t *api;
    int16_t v;
    int32_t corr;
    void *msg;
    bool answered; /* a response is expected (not an acks=0 Produce) */
} sent_t;

/* Keeps requests from only filling the disk, and keeps the watched topic alive. False: skip. */
static bool tame(const kp_api_t *api, int16_t v, void *msg)
{
    (void)v;
    if (api->key == KP_API_CREATE_TOPICS) {
        kp_create_topics_req_t *m = msg;
        for (int32_t i = 0; i < m->topics_count; i++)
            if (m->topics[i].num_partitions > MAX_PARTS) m->topics[i].num_partitions = MAX_PARTS;
        m->topics_count = m->topics_count > 2 ? 2 : m->topics_count;
    } else if (api->key == KP_API_CREATE_PARTITIONS) {
        kp_create_partitions_req_t *m = msg;
        for (int32_t i = 0; i < m->topics_count; i++)
            if (m->topics[i].count > MAX_PARTS) m->topics[i].count = MAX_PARTS;
    } else if (api->key == KP_API_ALTER_CLIENT_QUOTAS) {
        /* validated, never stored: a random quota would throttle the rest of the campaign */
        ((kp_alter_client_quotas_req_t *)msg)->validate_only = true;
    } else if (api->key == KP_API_DELETE_TOPICS) {
        kp_delete_topics_req_t *m = msg;
        for (int32_t i = 0; i < m->topic_names_count; i++)
            if (kp_str_eq(m->topic_names[i], "t")) return false;
        for (int32_t i = 0; i < m->topics_count; i++) /* a null name is by id: could be t's */
            if (m->topics[i].name.len < 0 || kp_str_eq(m->topics[i].name, "t")) return false;
    }
    return true;
}

/* ListOffsets latest for t-0 and t-1 on a fresh connection: never lower than seen before. */
static void check_log_ends(void)
{
    int fd = connect_broker(CHECK_WAIT_MS);
    kp_list_offsets_req_list_offsets_partition_t p[2];
    for (int i = 0; i < 2; i++) {
        kp_list_offsets_req_list_offsets_partition_init(&p[i]);
        p[i].partition_index = i;
        p[i].timestamp = -1;
    }
    kp_list_offsets_req_list_offsets_topic_t t;
    kp_list_offsets_req_list_offsets_topic_init(&t);
    t.name = kp_str("t");
    t.partitions = p;
    t.partitions_count = 2;
    kp_list_offsets_req_t q;
    kp_list_offsets_req_init(&q);
    q.replica_id = -1;
    q.topics = &t;
    q.topics_count = 1;
    const kp_api_t *api = kp_api_get(KP_API_LIST_OFFSETS);
    kp_list_offsets_resp_t r;
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    uint8_t *frame = NULL;
    if (!send_req(fd, api, 1, 7, &q) || recv_resp(fd, api, 1, 7, &a, &r, &frame) != 1) {
        perror("fuzz_handlers: ListOffsets of t not answered");
        abort();
    }
    for (int32_t i = 0; i < r.topics_count; i++)
        for (int32_t j = 0; j < r.topics[i].partitions_count; j++) {
            const kp_list_offsets_resp_list_offsets_partition_response_t *pr =
                &r.topics[i].partitions[j];
            if (pr->error_code != 0 || pr->partition_index < 0 || pr->partition_index > 1)
                continue; /* (t cannot be deleted; an error here is a broker answer, not a loss) */
            if (pr->offset < watched_end[pr->partition_index]) {
                fprintf(stderr, "t-%d log end went back: %lld after %lld\n", pr->partition_index,
                        (long long)pr->offset, (long long)watched_end[pr->partition_index]);
                abort();
            }
            watched_end[pr->partition_index] = pr->offset;
        }
    free(frame);
    kp_arena_deinit(&a);
    close_conn(fd);
}

/* The last successful commit of the sequence, if nothing after it touched offsets. */
typedef struct {
    bool valid;
    char group[256], topic[256];
    int32_t partition;
    int64_t offset;
} commit_t;

static void note_commit(commit_t *c, const kp_offset_commit_req_t *q,
                        const kp_offset_commit_resp_t *r)
{
    c->valid = false;
    if (q->topics_count != 1 || q->topics[0].partitions_count != 1 || r->topics_count != 1 ||
        r->topics[0].partitions_count != 1 || r->topics[0].partitions[0].error_code != 0)
        return;
    kp_str_t g = q->group_id, t = q->topics[0].name;
    if (g.len <= 0 || t.len <= 0 || g.len >= 256 || t.len >= 256) return;
    if (memchr(g.ptr, 0, (size_t)g.len) || memchr(t.ptr, 0, (size_t)t.len)) return;
    memcpy(c->group, g.ptr, (size_t)g.len);
    c->group[g.len] = 0;
    memcpy(c->topic, t.ptr, (size_t)t.len);
    c->topic[t.len] = 0;
    c->partition = q->topics[0].partitions[0].partition_index;
    c->offset = q->topics[0].partitions[0].committed_offset;
    c->valid = true;
}

static void check_commit(const commit_t *c)
{
    if (!c->valid) return;
    int fd = connect_broker(CHECK_WAIT_MS);
    kp_offset_fetch_req_offset_fetch_request_topic_t t;
    kp_offset_fetch_req_offset_fetch_request_topic_init(&t);
    t.name = kp_str(c->topic);
    int32_t part = c->partition;
    t.partition_indexes = &part;
    t.partition_indexes_count = 1;
    kp_offset_fetch_req_t q;
    kp_offset_fetch_req_init(&q);
    q.group_id = kp_str(c->group);
    q.topics = &t;
    q.topics_count = 1;
    const kp_api_t *api = kp_api_get(KP_API_OFFSET_FETCH);
    kp_offset_fetch_resp_t r;
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    uint8_t *frame = NULL;
    if (!send_req(fd, api, 1, 9, &q) || recv_resp(fd, api, 1, 9, &a, &r, &frame) != 1) {
        perror("fuzz_handlers: OffsetFetch not answered");
        abort();
    }
    if (r.topics_count != 1 || r.topics[0].partitions_count != 1 ||
        r.topics[0].partitions[0].error_code != 0 ||
        r.topics[0].partitions[0].committed_offset != c->offset) {
        fprintf(stderr, "commit %s %s-%d at %lld not read back\n", c->group, c->topic,
                c->partition, (long long)c->offset);
        abort();
    }
    free(frame);
    kp_arena_deinit(&a);
    close_conn(fd);
}

/* Whether a request may change committed offsets after a commit we are tracking. */
static bool touches_offsets(int16_t key)
{
    return key == KP_API_OFFSET_COMMIT || key == KP_API_OFFSET_DELETE ||
           key == KP_API_DELETE_GROUPS || key == KP_API_DELETE_TOPICS ||
           key == KP_API_JOIN_GROUP || key == KP_API_SYNC_GROUP || key == KP_API_LEAVE_GROUP ||
           key == KP_API_HEARTBEAT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool started;
    if (!started) {
        start_broker();
        started = true;
    }
    sent_t sent[MAX_REQS];
    kp_arena_t arenas[MAX_REQS];
    int n = 0;
    size_t at = 0;
    int fd = connect_broker(RESP_WAIT_MS);
    bool alive = true;
    while (n < MAX_REQS && size - at >= 4 && alive) {
        const kb_api_range_t *ar = &apis[data[at] % napis];
        int span = ar->max_version - ar->min_version + 1;
        int16_t v = (int16_t)(ar->min_version + data[at + 1] % span);
        size_t len = (size_t)data[at + 2] << 8 | data[at + 3];
        at += 4;
        if (len > size - at) len = size - at;
        const kp_api_t *api = kp_api_get(ar->key);
        kp_arena_init(&arenas[n], NULL, 0, 1u << 22);
        void *msg = kp_arena_alloc(&arenas[n], api->req_size);
        kp_reader_t r;
        kp_reader_init(&r, data + at, len);
        at += len;
        if (!msg || api->req_decode(&r, v, &arenas[n], msg) != 0 || !tame(api, v, msg)) {
            kp_arena_deinit(&arenas[n]);
            continue;
        }
        bool answered = !(api->key == KP_API_PRODUCE && ((kp_produce_req_t *)msg)->acks == 0);
        sent[n] = (sent_t){api, v, 1000 + n, msg, answered};
        alive = send_req(fd, api, v, sent[n].corr, msg);
        n++;
    }
    commit_t commit = {0};
    for (int i = 0; i < n && alive; i++) {
        if (!sent[i].answered) continue;
        void *resp = kp_arena_alloc(&arenas[i], sent[i].api->resp_size);
        uint8_t *frame = NULL;
        if (!resp || recv_resp(fd, sent[i].api, sent[i].v, sent[i].corr, &arenas[i], resp,
                               &frame) != 1) {
            alive = false; /* held or closed: what is left is not answered (cancel path) */
            break;
        }
        if (sent[i].api->key == KP_API_OFFSET_COMMIT)
            note_commit(&commit, sent[i].msg, resp);
        else if (touches_offsets(sent[i].api->key))
            commit.valid = false;
        free(frame);
    }
    for (int i = n - 1; i >= 0 && commit.valid; i--) { /* unanswered ones may still act */
        if (sent[i].api->key == KP_API_OFFSET_COMMIT) break;
        if (touches_offsets(sent[i].api->key)) commit.valid = false;
    }
    close_conn(fd);
    if (alive) check_commit(&commit);
    check_log_ends();
    for (int i = 0; i < n; i++)
        kp_arena_deinit(&arenas[i]);
    return 0;
}
