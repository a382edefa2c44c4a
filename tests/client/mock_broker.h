/*
 * A scripted in-process Kafka broker for client tests: one thread, poll() over loopback
 * sockets, answering ApiVersions, Metadata and Produce through the generated codecs.
 * Produce answers follow mb->produce_errors (one code per request, the last one repeating),
 * and every received batch is kept for the test to inspect; acknowledged batches go to an
 * in-memory log per partition that Fetch and ListOffsets serve. Not a real broker: one topic,
 * node 1.
 */
#include <poll.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/gen/kp_msgs.h"
#include "protocol/kp_batch.h"
#include "protocol/kp_header.h"

#define MB_MAX_CONNS 8
#define MB_MAX_BATCHES 64

typedef struct {
    int lfd, port;
    pthread_t thr;
    _Atomic int quit; /* set by mb_stop, polled by the server thread (TSan: atomic, not volatile) */
    /* script */
    const char *topic;
    int32_t npartitions;
    int16_t produce_errors[16];
    int nproduce_errors;
    int close_on_produce; /* close the connection instead of answering this many Produces */
    int16_t produce_max, fetch_max, metadata_max;
    int16_t api_versions_max; /* newer ApiVersions get the KIP-511 v0 error answer */
    int api_versions_calls;
    /* observations (read after mb_stop) */
    int produce_requests;
    int16_t produce_version;
    uint8_t *batches[MB_MAX_BATCHES];
    size_t batch_len[MB_MAX_BATCHES];
    int32_t batch_partition[MB_MAX_BATCHES];
    int nbatches;
    int64_t next_offset[16];
    /* the partition logs: acknowledged batches with their offsets stamped */
    kp_buf_t log[16];
    size_t fetch_limit; /* cut answers at this many bytes per partition (0 = all) */
    char created[8][64];
    int ncreated, deleted;
    /* groups: one member; JoinGroup asks for a member id first (KIP-394) */
    int joins, syncs, heartbeats, commits;
    int rebalance_on_heartbeat; /* answer REBALANCE_IN_PROGRESS to this heartbeat (1-based) */
    int32_t generation;
    uint8_t sub[256], asg[256]; /* last subscription / the leader's assignment */
    size_t sub_len, asg_len;
    int64_t committed[16]; /* -1 = none; set by OffsetCommit */
} mock_broker_t;

static int mb_send(int fd, kp_buf_t *b)
{
    kp_buf_patch_i32(b, 0, (int32_t)(b->len - 4));
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        off += (size_t)w;
    }
    return 0;
}

static void mb_api_versions(mock_broker_t *mb, kp_buf_t *out, int16_t ver)
{
    mb->api_versions_calls++;
    if (ver > mb->api_versions_max) {
        /* KIP-511: v0 body, UNSUPPORTED_VERSION, and our own range for key 18. */
        kp_api_versions_resp_api_version_t self = {KP_API_API_VERSIONS, 0, mb->api_versions_max};
        kp_api_versions_resp_t r;
        kp_api_versions_resp_init(&r);
        r.error_code = 35;
        r.api_keys = &self;
        r.api_keys_count = 1;
        kp_api_versions_resp_encode(out, 0, &r);
        return;
    }
    kp_api_versions_resp_api_version_t keys[] = {
        {KP_API_PRODUCE, 0, mb->produce_max},
        {KP_API_FETCH, 4, mb->fetch_max},
        {KP_API_LIST_OFFSETS, 1, 5},
        {KP_API_METADATA, 0, mb->metadata_max},
        {KP_API_API_VERSIONS, 0, mb->api_versions_max},
        {KP_API_CREATE_TOPICS, 2, 4},
        {KP_API_DELETE_TOPICS, 1, 3},
        {KP_API_FIND_COORDINATOR, 0, 3},
        {KP_API_JOIN_GROUP, 0, 7},
        {KP_API_SYNC_GROUP, 0, 5},
        {KP_API_HEARTBEAT, 0, 4},
        {KP_API_LEAVE_GROUP, 0, 4},
        {KP_API_OFFSET_COMMIT, 2, 8},
        {KP_API_OFFSET_FETCH, 1, 7},
    };
    kp_api_versions_resp_t r;
    kp_api_versions_resp_init(&r);
    r.api_keys = keys;
    r.api_keys_count = sizeof keys / sizeof keys[0];
    kp_api_versions_resp_encode(out, ver, &r);
}

static void mb_metadata(mock_broker_t *mb, kp_buf_t *out, int16_t ver, const kp_metadata_req_t *req)
{
    kp_metadata_resp_metadata_response_broker_t br;
    kp_metadata_resp_metadata_response_broker_init(&br);
    br.node_id = 1;
    br.host = kp_str("127.0.0.1");
    br.port = mb->port;
    static int32_t one[1] = {1};
    kp_metadata_resp_metadata_response_partition_t parts[16];
    for (int32_t i = 0; i < mb->npartitions; i++) {
        kp_metadata_resp_metadata_response_partition_init(&parts[i]);
        parts[i].partition_index = i;
        parts[i].leader_id = 1;
        parts[i].replica_nodes = one;
        parts[i].replica_nodes_count = 1;
        parts[i].isr_nodes = one;
        parts[i].isr_nodes_count = 1;
    }
    kp_metadata_resp_metadata_response_topic_t topics[8];
    int32_t nt = 0;
    int32_t asked = req->topics_count < 0 ? 1 : req->topics_count;
    for (int32_t i = 0; i < asked && nt < 8; i++) {
        kp_metadata_resp_metadata_response_topic_init(&topics[nt]);
        kp_str_t name = req->topics_count < 0 ? kp_str(mb->topic) : req->topics[i].name;
        topics[nt].name = name;
        if (kp_str_eq(name, mb->topic)) {
            topics[nt].partitions = parts;
            topics[nt].partitions_count = mb->npartitions;
        } else {
            topics[nt].error_code = 3; /* UNKNOWN_TOPIC_OR_PARTITION */
        }
        nt++;
    }
    kp_metadata_resp_t r;
    kp_metadata_resp_init(&r);
    r.brokers = &br;
    r.brokers_count = 1;
    r.cluster_id = kp_str("mock");
    r.controller_id = 1;
    r.topics = topics;
    r.topics_count = nt;
    kp_metadata_resp_encode(out, ver, &r);
}

/* Returns 1 when the connection should be closed instead of answered. */
static int mb_produce(mock_broker_t *mb, kp_buf_t *out, int16_t ver, const kp_produce_req_t *req)
{
    int n = mb->produce_requests++;
    mb->produce_version = ver;
    if (n < mb->close_on_produce) return 1;
    int16_t err = mb->nproduce_errors == 0  ? 0
                  : n < mb->nproduce_errors ? mb->produce_errors[n]
                                            : mb->produce_errors[mb->nproduce_errors - 1];
    kp_produce_resp_topic_produce_response_t tr[8];
    kp_produce_resp_partition_produce_response_t pr[64];
    int32_t npr = 0;
    for (int32_t t = 0; t < req->topic_data_count && t < 8; t++) {
        kp_produce_resp_topic_produce_response_init(&tr[t]);
        tr[t].name = req->topic_data[t].name;
        tr[t].partition_responses = &pr[npr];
        for (int32_t k = 0; k < req->topic_data[t].partition_data_count && npr < 64; k++) {
            const kp_produce_req_partition_produce_data_t *pd =
                &req->topic_data[t].partition_data[k];
            kp_produce_resp_partition_produce_response_t *p = &pr[npr++];
            kp_produce_resp_partition_produce_response_init(p);
            p->index = pd->index;
            p->error_code = err;
            tr[t].partition_responses_count++;
            if (mb->nbatches < MB_MAX_BATCHES && pd->records.len > 0) {
                uint8_t *copy = malloc((size_t)pd->records.len);
                memcpy(copy, pd->records.ptr, (size_t)pd->records.len);
                mb->batches[mb->nbatches] = copy;
                mb->batch_len[mb->nbatches] = (size_t)pd->records.len;
                mb->batch_partition[mb->nbatches++] = pd->index;
            }
            if (!err && pd->index >= 0 && pd->index < 16) {
                kp_batch_hdr_t h;
                p->base_offset = mb->next_offset[pd->index];
                if (kp_batch_hdr_parse(pd->records.ptr, (size_t)pd->records.len, &h) == 0) {
                    size_t at =
                        kp_put_raw(&mb->log[pd->index], pd->records.ptr, (size_t)pd->records.len);
                    kp_batch_set_base_offset(mb->log[pd->index].data + at, p->base_offset);
                    mb->next_offset[pd->index] += h.last_offset_delta + 1;
                }
            }
        }
    }
    kp_produce_resp_t r;
    kp_produce_resp_init(&r);
    r.responses = tr;
    r.responses_count = req->topic_data_count < 8 ? req->topic_data_count : 8;
    if (req->acks == 0) return 2; /* no answer at all */
    kp_produce_resp_encode(out, ver, &r);
    return 0;
}

static void mb_fetch(mock_broker_t *mb, kp_buf_t *out, int16_t ver, const kp_fetch_req_t *req)
{
    kp_fetch_resp_fetchable_topic_response_t tr[4];
    kp_fetch_resp_partition_data_t pd[16];
    int32_t npd = 0, nt = 0;
    for (int32_t t = 0; t < req->topics_count && t < 4; t++, nt++) {
        kp_fetch_resp_fetchable_topic_response_init(&tr[t]);
        tr[t].topic = req->topics[t].topic;
        tr[t].partitions = &pd[npd];
        for (int32_t k = 0; k < req->topics[t].partitions_count && npd < 16; k++) {
            const kp_fetch_req_fetch_partition_t *fp = &req->topics[t].partitions[k];
            kp_fetch_resp_partition_data_t *p = &pd[npd++];
            tr[t].partitions_count++;
            kp_fetch_resp_partition_data_init(p);
            p->partition_index = fp->partition;
            p->preferred_read_replica = -1;
            p->records = (kp_bytes_t){NULL, 0};
            if (fp->partition < 0 || fp->partition >= mb->npartitions) {
                p->error_code = 3;
                continue;
            }
            int64_t hw = mb->next_offset[fp->partition];
            p->high_watermark = p->last_stable_offset = hw;
            p->log_start_offset = 0;
            if (fp->fetch_offset > hw) {
                p->error_code = 1; /* OFFSET_OUT_OF_RANGE */
                continue;
            }
            /* Start at the batch holding fetch_offset, as a broker does. */
            kp_buf_t *log = &mb->log[fp->partition];
            kp_batch_iter_t it;
            const uint8_t *b;
            size_t blen;
            kp_batch_iter_init(&it, log->data, log->len, true);
            while (kp_batch_iter_next(&it, &b, &blen) == 1) {
                kp_batch_hdr_t h;
                kp_batch_hdr_parse(b, blen, &h);
                if (h.base_offset + h.last_offset_delta >= fp->fetch_offset) {
                    size_t n = (size_t)(log->data + log->len - b);
                    /* Cut through a later batch, but always send the first one whole
                     * (KIP-74), as a real broker does. */
                    size_t limit = mb->fetch_limit > blen ? mb->fetch_limit : blen;
                    if (mb->fetch_limit && n > limit) n = limit;
                    p->records = (kp_bytes_t){b, (int32_t)n};
                    break;
                }
            }
        }
    }
    kp_fetch_resp_t r;
    kp_fetch_resp_init(&r);
    r.responses = tr;
    r.responses_count = nt;
    kp_fetch_resp_encode(out, ver, &r);
}

static void mb_list_offsets(mock_broker_t *mb, kp_buf_t *out, int16_t ver,
                            const kp_list_offsets_req_t *req)
{
    kp_list_offsets_resp_list_offsets_topic_response_t tr[4];
    kp_list_offsets_resp_list_offsets_partition_response_t pr[16];
    int32_t npr = 0, nt = 0;
    for (int32_t t = 0; t < req->topics_count && t < 4; t++, nt++) {
        kp_list_offsets_resp_list_offsets_topic_response_init(&tr[t]);
        tr[t].name = req->topics[t].name;
        tr[t].partitions = &pr[npr];
        for (int32_t k = 0; k < req->topics[t].partitions_count && npr < 16; k++) {
            const kp_list_offsets_req_list_offsets_partition_t *rp = &req->topics[t].partitions[k];
            kp_list_offsets_resp_list_offsets_partition_response_t *p = &pr[npr++];
            tr[t].partitions_count++;
            kp_list_offsets_resp_list_offsets_partition_response_init(p);
            p->partition_index = rp->partition_index;
            if (rp->partition_index < 0 || rp->partition_index >= mb->npartitions)
                p->error_code = 3;
            else
                p->offset = rp->timestamp == -2 ? 0 : mb->next_offset[rp->partition_index];
        }
    }
    kp_list_offsets_resp_t r;
    kp_list_offsets_resp_init(&r);
    r.topics = tr;
    r.topics_count = nt;
    kp_list_offsets_resp_encode(out, ver, &r);
}

static void mb_create_topics(mock_broker_t *mb, kp_buf_t *out, int16_t ver,
                             const kp_create_topics_req_t *req)
{
    kp_create_topics_resp_creatable_topic_result_t res[4];
    int32_t n = req->topics_count < 4 ? req->topics_count : 4;
    for (int32_t i = 0; i < n; i++) {
        kp_create_topics_resp_creatable_topic_result_init(&res[i]);
        res[i].name = req->topics[i].name;
        if (kp_str_eq(req->topics[i].name, mb->topic)) {
            res[i].error_code = 36; /* TOPIC_ALREADY_EXISTS */
            res[i].error_message = kp_str("Topic already exists.");
        } else if (mb->ncreated < 8) {
            snprintf(mb->created[mb->ncreated++], 64, "%.*s:%d:%d", req->topics[i].name.len,
                     req->topics[i].name.ptr, req->topics[i].num_partitions,
                     req->topics[i].configs_count);
        }
    }
    kp_create_topics_resp_t r;
    kp_create_topics_resp_init(&r);
    r.topics = res;
    r.topics_count = n;
    kp_create_topics_resp_encode(out, ver, &r);
}

static void mb_delete_topics(mock_broker_t *mb, kp_buf_t *out, int16_t ver,
                             const kp_delete_topics_req_t *req)
{
    kp_delete_topics_resp_deletable_topic_result_t res;
    kp_delete_topics_resp_deletable_topic_result_init(&res);
    res.name = req->topic_names_count > 0 ? req->topic_names[0] : req->topics[0].name;
    if (kp_str_eq(res.name, mb->topic))
        mb->deleted++;
    else
        res.error_code = 3;
    kp_delete_topics_resp_t r;
    kp_delete_topics_resp_init(&r);
    r.responses = &res;
    r.responses_count = 1;
    kp_delete_topics_resp_encode(out, ver, &r);
}

static void mb_group(mock_broker_t *mb, kp_buf_t *out, int16_t key, int16_t ver, const void *req)
{
    if (key == KP_API_FIND_COORDINATOR) {
        kp_find_coordinator_resp_t r;
        kp_find_coordinator_resp_init(&r);
        r.node_id = 1;
        r.host = kp_str("127.0.0.1");
        r.port = mb->port;
        kp_find_coordinator_resp_encode(out, ver, &r);
    } else if (key == KP_API_JOIN_GROUP) {
        const kp_join_group_req_t *q = req;
        kp_join_group_resp_t r;
        kp_join_group_resp_init(&r);
        mb->joins++;
        if (q->member_id.len == 0 && ver >= 4) {
            r.error_code = 79; /* MEMBER_ID_REQUIRED */
            r.member_id = kp_str("m-1");
        } else {
            if (q->protocols_count > 0 && q->protocols[0].metadata.len <= 256) {
                mb->sub_len = (size_t)q->protocols[0].metadata.len;
                memcpy(mb->sub, q->protocols[0].metadata.ptr, mb->sub_len);
            }
            static kp_join_group_resp_join_group_response_member_t m;
            kp_join_group_resp_join_group_response_member_init(&m);
            m.member_id = kp_str("m-1");
            m.metadata = (kp_bytes_t){mb->sub, (int32_t)mb->sub_len};
            r.generation_id = ++mb->generation;
            r.protocol_name = kp_str("range");
            r.leader = kp_str("m-1");
            r.member_id = kp_str("m-1");
            r.members = &m;
            r.members_count = 1;
        }
        kp_join_group_resp_encode(out, ver, &r);
    } else if (key == KP_API_SYNC_GROUP) {
        const kp_sync_group_req_t *q = req;
        mb->syncs++;
        if (q->assignments_count > 0 && q->assignments[0].assignment.len <= 256) {
            mb->asg_len = (size_t)q->assignments[0].assignment.len;
            memcpy(mb->asg, q->assignments[0].assignment.ptr, mb->asg_len);
        }
        kp_sync_group_resp_t r;
        kp_sync_group_resp_init(&r);
        r.assignment = (kp_bytes_t){mb->asg, (int32_t)mb->asg_len};
        kp_sync_group_resp_encode(out, ver, &r);
    } else if (key == KP_API_HEARTBEAT) {
        kp_heartbeat_resp_t r;
        kp_heartbeat_resp_init(&r);
        if (++mb->heartbeats == mb->rebalance_on_heartbeat) r.error_code = 27;
        kp_heartbeat_resp_encode(out, ver, &r);
    } else if (key == KP_API_LEAVE_GROUP) {
        kp_leave_group_resp_t r;
        kp_leave_group_resp_init(&r);
        kp_leave_group_resp_encode(out, ver, &r);
    } else if (key == KP_API_OFFSET_COMMIT) {
        const kp_offset_commit_req_t *q = req;
        static kp_offset_commit_resp_offset_commit_response_partition_t pr[16];
        kp_offset_commit_resp_offset_commit_response_topic_t tr;
        kp_offset_commit_resp_offset_commit_response_topic_init(&tr);
        mb->commits++;
        if (q->topics_count > 0) {
            tr.name = q->topics[0].name;
            for (int32_t i = 0; i < q->topics[0].partitions_count && i < 16; i++) {
                const kp_offset_commit_req_offset_commit_request_partition_t *p =
                    &q->topics[0].partitions[i];
                kp_offset_commit_resp_offset_commit_response_partition_init(&pr[i]);
                pr[i].partition_index = p->partition_index;
                if (p->partition_index >= 0 && p->partition_index < 16)
                    mb->committed[p->partition_index] = p->committed_offset;
                tr.partitions_count++;
            }
            tr.partitions = pr;
        }
        kp_offset_commit_resp_t r;
        kp_offset_commit_resp_init(&r);
        r.topics = &tr;
        r.topics_count = q->topics_count > 0 ? 1 : 0;
        kp_offset_commit_resp_encode(out, ver, &r);
    } else if (key == KP_API_OFFSET_FETCH) {
        static kp_offset_fetch_resp_offset_fetch_response_partition_t pr[16];
        kp_offset_fetch_resp_offset_fetch_response_topic_t tr;
        kp_offset_fetch_resp_offset_fetch_response_topic_init(&tr);
        tr.name = kp_str(mb->topic);
        tr.partitions = pr;
        for (int32_t i = 0; i < mb->npartitions && i < 16; i++) {
            if (mb->committed[i] < 0) continue;
            kp_offset_fetch_resp_offset_fetch_response_partition_init(&pr[tr.partitions_count]);
            pr[tr.partitions_count].partition_index = i;
            pr[tr.partitions_count].committed_offset = mb->committed[i];
            tr.partitions_count++;
        }
        kp_offset_fetch_resp_t r;
        kp_offset_fetch_resp_init(&r);
        r.topics = &tr;
        r.topics_count = 1;
        kp_offset_fetch_resp_encode(out, ver, &r);
    }
}

/* Handles one request frame; returns -1 to close the connection. */
static int mb_handle(mock_broker_t *mb, int fd, const uint8_t *frame, size_t len)
{
    kp_reader_t r;
    kp_reader_init(&r, frame, len);
    kp_req_header_t h;
    if (kp_req_header_decode(&r, &h)) return -1;
    const kp_api_t *api = kp_api_get(h.api_key);
    if (!api) return -1;
    void *req = calloc(1, api->req_size);
    kp_arena_t a;
    kp_arena_init(&a, NULL, 0, 0);
    int rc = api->req_decode(&r, h.api_version, &a, req);
    kp_buf_t out;
    kp_buf_init(&out);
    kp_put_i32(&out, 0);
    kp_resp_header_encode(&out, h.api_key, h.api_version, h.correlation_id);
    int action = 0;
    if (rc)
        action = 1;
    else if (h.api_key == KP_API_API_VERSIONS)
        mb_api_versions(mb, &out, h.api_version);
    else if (h.api_key == KP_API_METADATA)
        mb_metadata(mb, &out, h.api_version, req);
    else if (h.api_key == KP_API_PRODUCE)
        action = mb_produce(mb, &out, h.api_version, req);
    else if (h.api_key == KP_API_FETCH)
        mb_fetch(mb, &out, h.api_version, req);
    else if (h.api_key == KP_API_LIST_OFFSETS)
        mb_list_offsets(mb, &out, h.api_version, req);
    else if (h.api_key == KP_API_CREATE_TOPICS)
        mb_create_topics(mb, &out, h.api_version, req);
    else if (h.api_key == KP_API_DELETE_TOPICS)
        mb_delete_topics(mb, &out, h.api_version, req);
    else if (h.api_key == KP_API_FIND_COORDINATOR || h.api_key == KP_API_JOIN_GROUP ||
             h.api_key == KP_API_SYNC_GROUP || h.api_key == KP_API_HEARTBEAT ||
             h.api_key == KP_API_LEAVE_GROUP || h.api_key == KP_API_OFFSET_COMMIT ||
             h.api_key == KP_API_OFFSET_FETCH)
        mb_group(mb, &out, h.api_key, h.api_version, req);
    else
        action = 1;
    int ret = 0;
    if (action == 1 || (action == 0 && mb_send(fd, &out))) ret = -1;
    kp_buf_deinit(&out);
    kp_arena_deinit(&a);
    free(req);
    return ret;
}

static void *mb_main(void *arg)
{
    mock_broker_t *mb = arg;
    struct pollfd pf[MB_MAX_CONNS + 1];
    kp_buf_t in[MB_MAX_CONNS + 1];
    int n = 1;
    pf[0] = (struct pollfd){.fd = mb->lfd, .events = POLLIN};
    while (!mb->quit) {
        if (poll(pf, (nfds_t)n, 50) <= 0) continue;
        if ((pf[0].revents & POLLIN) && n <= MB_MAX_CONNS) {
            int fd = accept(mb->lfd, NULL, NULL);
            if (fd >= 0) {
                pf[n] = (struct pollfd){.fd = fd, .events = POLLIN};
                kp_buf_init(&in[n]);
                n++;
            }
        }
        for (int i = 1; i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            uint8_t tmp[65536];
            ssize_t got = recv(pf[i].fd, tmp, sizeof tmp, 0);
            bool drop = got <= 0;
            if (!drop) kp_put_raw(&in[i], tmp, (size_t)got);
            while (!drop && in[i].len >= 4) {
                uint32_t sz = (uint32_t)in[i].data[0] << 24 | (uint32_t)in[i].data[1] << 16 |
                              (uint32_t)in[i].data[2] << 8 | in[i].data[3];
                if (in[i].len < 4 + (size_t)sz) break;
                drop = mb_handle(mb, pf[i].fd, in[i].data + 4, sz) < 0;
                memmove(in[i].data, in[i].data + 4 + sz, in[i].len - 4 - sz);
                in[i].len -= 4 + sz;
            }
            if (drop) {
                close(pf[i].fd);
                kp_buf_deinit(&in[i]);
                pf[i] = pf[n - 1];
                in[i] = in[n - 1];
                n--;
                i--;
            }
        }
    }
    for (int i = 1; i < n; i++) {
        close(pf[i].fd);
        kp_buf_deinit(&in[i]);
    }
    return NULL;
}

static void mb_start(mock_broker_t *mb)
{
    mb->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(mb->lfd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t sl = sizeof sa;
    getsockname(mb->lfd, (struct sockaddr *)&sa, &sl);
    mb->port = ntohs(sa.sin_port);
    listen(mb->lfd, 8);
    if (!mb->topic) mb->topic = "t";
    if (!mb->npartitions) mb->npartitions = 1;
    if (!mb->produce_max) mb->produce_max = 7;
    if (!mb->fetch_max) mb->fetch_max = 11;
    if (!mb->metadata_max) mb->metadata_max = 9;
    if (!mb->api_versions_max) mb->api_versions_max = 3;
    for (int i = 0; i < 16; i++)
        if (!mb->committed[i]) mb->committed[i] = -1;
    pthread_create(&mb->thr, NULL, mb_main, mb);
}

static void mb_stop(mock_broker_t *mb)
{
    mb->quit = 1;
    pthread_join(mb->thr, NULL);
    close(mb->lfd);
}

static void mb_free(mock_broker_t *mb)
{
    for (int i = 0; i < mb->nbatches; i++)
        free(mb->batches[i]);
    for (int i = 0; i < 16; i++)
        kp_buf_deinit(&mb->log[i]);
}
