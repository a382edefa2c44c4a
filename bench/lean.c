/*
 * Lean load generator on Depot's own protocol layer (protocol/ only, linked from libkp.a), so
 * the client is not what limits the numbers: batches are built once and raw requests are
 * pipelined over one socket.
 *
 *   lean produce -b HOST:PORT -t TOPIC -n BYTES -s MSGSIZE [--acks 1|-1] [--batch BYTES]
 *                [-p PARTITIONS] [--ppr PARTS_PER_REQUEST] [--inflight N]
 *   lean fetch   -b HOST:PORT -t TOPIC [-n BYTES] [-p PARTITIONS] [--max BYTES] [--verify]
 *                [--follow]
 *   lean conns   -b HOST:PORT -c COUNT
 *   lean e2e     -b HOST:PORT -t TOPIC --rate MSGS/S -d SECONDS [-s MSGSIZE] [--acks 1|-1]
 *
 * produce: one RecordBatch of --batch bytes of MSGSIZE values is built once and sent again and
 *   again (producer id -1, so the broker does no sequence checks), one batch per partition,
 *   --ppr partitions per request, round-robin, --inflight requests outstanding. MB/s counts
 *   value bytes acknowledged (MB = 10^6 bytes); request latency p50/p99 is send -> response.
 * fetch: reads every partition from offset 0, one Fetch per partition outstanding, walking
 *   batch headers for the next offset; ends at N bytes of batches or, without -n, when every
 *   partition reaches its high watermark. --follow waits for data (produce+consume at once).
 *   --verify checks each batch's CRC-32C too.
 * e2e: one thread, two connections: a producer sends one-record batches at a fixed rate, the
 *   value stamped with CLOCK_MONOTONIC, while a long-poll Fetch (max_wait 500 ms, min_bytes 1)
 *   is always outstanding on partition 0 of a fresh topic; latency is stamp -> the moment the
 *   Fetch response is parsed. At most --inflight Produce requests are outstanding; messages
 *   that come due meanwhile share the next batch (stamped with their due time). No client library threads in the way: this is the broker's own
 *   produce->consume latency (plus two loopback hops). The first second is not counted.
 * conns: opens COUNT connections, does ApiVersions on each, prints {"ready": COUNT} and holds
 *   them until stdin closes (the caller measures the broker's memory meanwhile).
 * Each command prints one JSON line on stdout.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_net.h"
#include "bench/bench_util.h"
#include "protocol/gen/kp_fetch.h"
#include "protocol/gen/kp_produce.h"
#include "protocol/kp_batch.h"
#include "protocol/kp_header.h"

typedef struct {
    const char *cmd, *brokers, *topic;
    int64_t bytes, batch_bytes, max_bytes;
    int msg_size, partitions, ppr, inflight, acks, verify, follow, conns;
    double rate, duration_s;
} opts_t;

static void die(const char *msg)
{
    fprintf(stderr, "lean: %s\n", msg);
    exit(1);
}

static void open_conn(bench_conn_t *c, const opts_t *o)
{
    if (bench_conn_open(c, o->brokers) < 0 || bench_conn_handshake(c) < 0)
        die("cannot connect");
}

/* ------------------------------------------------------------------------------------------ */

/* Builds one batch of about batch_bytes of msg_size values; returns the record count. */
static int32_t build_batch(const opts_t *o, kp_buf_t *out)
{
    uint8_t *value = malloc((size_t)o->msg_size);
    if (!value)
        die("out of memory");
    bench_fill_pattern(value, (size_t)o->msg_size, 13);
    kp_batch_builder_t bb;
    kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
    int32_t n = 0;
    int64_t now_ms = bench_now_ns() / 1000000;
    do {
        kp_bytes_t v = {value, o->msg_size};
        if (kp_batch_builder_add(&bb, now_ms, (kp_bytes_t){NULL, -1}, v, NULL, 0) < 0)
            die("batch builder");
        n++;
    } while ((int64_t)n * (o->msg_size + 8) < o->batch_bytes);
    if (kp_batch_builder_finish(&bb, out) < 0)
        die("batch builder finish");
    kp_batch_builder_deinit(&bb);
    free(value);
    return n;
}

typedef struct {
    int64_t acked_values, acked_batch_bytes, requests, errors;
    int16_t first_error;
    bench_samples_t lat_us;
} produce_stats_t;

static void produce_response(const uint8_t *f, size_t n, int16_t ver, int64_t sent_ns,
                             int64_t values_per_part, int64_t batch_len, kp_arena_t *a,
                             produce_stats_t *st)
{
    kp_reader_t r;
    kp_reader_init(&r, f, n);
    int32_t corr;
    kp_produce_resp_t resp;
    kp_arena_reset(a);
    if (kp_resp_header_decode(&r, KP_API_PRODUCE, ver, &corr) < 0 ||
        kp_produce_resp_decode(&r, ver, a, &resp) < 0)
        die("malformed Produce response");
    for (int32_t t = 0; t < resp.responses_count; t++) {
        const kp_produce_resp_topic_produce_response_t *tr = &resp.responses[t];
        for (int32_t p = 0; p < tr->partition_responses_count; p++) {
            int16_t ec = tr->partition_responses[p].error_code;
            if (ec) {
                if (!st->errors++)
                    st->first_error = ec;
            } else {
                st->acked_values += values_per_part;
                st->acked_batch_bytes += batch_len;
            }
        }
    }
    st->requests++;
    bench_samples_add(&st->lat_us, (double)(bench_now_ns() - sent_ns) / 1e3);
}

static int cmd_produce(const opts_t *o)
{
    bench_conn_t c;
    open_conn(&c, o);
    int16_t ver = bench_conn_pick(&c, KP_API_PRODUCE, 3, 11);
    if (ver < 0)
        die("broker offers no Produce version >= 3");
    kp_buf_t batch;
    kp_buf_init(&batch);
    int32_t per_batch = build_batch(o, &batch);
    int64_t values_per_part = (int64_t)per_batch * o->msg_size;
    int parts = o->partitions, ppr = o->ppr < parts ? o->ppr : parts;

    kp_produce_req_partition_produce_data_t *pd = calloc((size_t)ppr, sizeof *pd);
    kp_produce_req_topic_produce_data_t td = {kp_str(o->topic), pd, ppr};
    kp_produce_req_t req;
    kp_produce_req_init(&req);
    req.acks = (int16_t)o->acks;
    req.timeout_ms = 30000;
    req.topic_data = &td;
    req.topic_data_count = 1;

    int64_t *sent_at = calloc((size_t)o->inflight, sizeof *sent_at);
    produce_stats_t st = {0};
    kp_arena_t arena;
    kp_arena_init(&arena, NULL, 0, 0);
    kp_buf_t b;
    kp_buf_init(&b);
    int64_t target = o->bytes, queued = 0, head = 0, tail = 0;
    int next_part = 0;
    int32_t corr = 100;
    int64_t t0 = bench_now_ns();
    while (queued < target || tail < head) {
        const uint8_t *f;
        size_t n;
        if (queued < target && head - tail < o->inflight) {
            for (int i = 0; i < ppr; i++) {
                pd[i].index = next_part;
                pd[i].records = (kp_bytes_t){batch.data, (int32_t)batch.len};
                next_part = (next_part + 1) % parts;
            }
            kp_buf_reset(&b);
            bench_frame_begin(&b, KP_API_PRODUCE, ver, corr++);
            kp_produce_req_encode(&b, ver, &req);
            bench_frame_end(&b);
            if (b.err)
                die("encode Produce");
            sent_at[head % o->inflight] = bench_now_ns();
            if (bench_conn_send_all(&c, b.data, b.len) < 0)
                die("send");
            head++;
            queued += values_per_part * ppr;
            /* Take any responses already here without blocking, to keep the window open. */
            int r;
            while (tail < head && (r = bench_conn_try_frame(&c, &f, &n)) == 1) {
                produce_response(f, n, ver, sent_at[tail % o->inflight], values_per_part,
                                 (int64_t)batch.len, &arena, &st);
                tail++;
            }
            continue;
        }
        if (bench_conn_recv_frame(&c, &f, &n) < 0)
            die("receive");
        produce_response(f, n, ver, sent_at[tail % o->inflight], values_per_part,
                         (int64_t)batch.len, &arena, &st);
        tail++;
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    bench_sort(st.lat_us.v, st.lat_us.n);
    bench_json_t j;
    bench_json_begin(&j, stdout);
    bench_json_int(&j, "acks", o->acks);
    bench_json_int(&j, "produce_version", ver);
    bench_json_int(&j, "msg_size", o->msg_size);
    bench_json_int(&j, "batch_bytes", (int64_t)batch.len);
    bench_json_int(&j, "bytes", st.acked_values);
    bench_json_int(&j, "batch_bytes_total", st.acked_batch_bytes);
    bench_json_int(&j, "requests", st.requests);
    bench_json_int(&j, "errors", st.errors);
    bench_json_int(&j, "first_error", st.first_error);
    bench_json_num(&j, "secs", secs);
    bench_json_num(&j, "mbps", (double)st.acked_values / secs / 1e6);
    bench_json_num(&j, "wire_mbps", (double)st.acked_batch_bytes / secs / 1e6);
    bench_json_num(&j, "msgs_per_s", (double)st.acked_values / o->msg_size / secs);
    bench_json_num(&j, "req_p50_us", bench_quantile_sorted(st.lat_us.v, st.lat_us.n, 0.5));
    bench_json_num(&j, "req_p99_us", bench_quantile_sorted(st.lat_us.v, st.lat_us.n, 0.99));
    bench_json_end(&j);
    bench_samples_free(&st.lat_us);
    kp_arena_deinit(&arena);
    kp_buf_deinit(&b);
    kp_buf_deinit(&batch);
    free(sent_at);
    free(pd);
    bench_conn_close(&c);
    return st.errors || st.acked_values == 0 ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */

typedef struct {
    int64_t next_offset, hw;
    int busy, done;
} part_state_t;

typedef struct {
    int64_t bytes, records, batches, errors, empty;
    int16_t first_error;
} fetch_stats_t;

static void send_fetch(bench_conn_t *c, const opts_t *o, int16_t ver, int32_t corr, int part,
                       int64_t offset, kp_buf_t *b)
{
    kp_fetch_req_fetch_partition_t fp;
    kp_fetch_req_fetch_partition_init(&fp);
    fp.partition = part;
    fp.current_leader_epoch = -1;
    fp.fetch_offset = offset;
    fp.last_fetched_epoch = -1;
    fp.log_start_offset = -1;
    fp.partition_max_bytes = (int32_t)o->max_bytes;
    kp_fetch_req_fetch_topic_t ft;
    kp_fetch_req_fetch_topic_init(&ft);
    ft.topic = kp_str(o->topic);
    ft.partitions = &fp;
    ft.partitions_count = 1;
    kp_fetch_req_t req;
    kp_fetch_req_init(&req);
    req.replica_id = -1;
    req.max_wait_ms = 500;
    req.min_bytes = 1;
    req.max_bytes = (int32_t)o->max_bytes;
    req.session_epoch = -1; /* a full fetch, no session */
    req.topics = &ft;
    req.topics_count = 1;
    req.cluster_id = (kp_str_t){NULL, -1};
    req.rack_id = kp_str("");
    kp_buf_reset(b);
    bench_frame_begin(b, KP_API_FETCH, ver, corr);
    kp_fetch_req_encode(b, ver, &req);
    bench_frame_end(b);
    if (b->err || bench_conn_send_all(c, b->data, b->len) < 0)
        die("send Fetch");
}

/* Walks the records of one partition's answer; advances its next offset. */
static void take_records(const opts_t *o, kp_bytes_t recs, part_state_t *ps, fetch_stats_t *st)
{
    if (recs.len <= 0)
        return;
    kp_batch_iter_t it;
    kp_batch_iter_init(&it, recs.ptr, (size_t)recs.len, false);
    const uint8_t *bp;
    size_t blen;
    while (kp_batch_iter_next(&it, &bp, &blen) == 1) {
        kp_batch_hdr_t h;
        int rc = o->verify ? kp_batch_validate(bp, blen, &h) : kp_batch_hdr_parse(bp, blen, &h);
        if (rc < 0)
            die("bad batch in Fetch response");
        if (h.base_offset + h.last_offset_delta < ps->next_offset)
            continue; /* a batch starting before the fetch offset: already counted */
        ps->next_offset = h.base_offset + h.last_offset_delta + 1;
        st->bytes += (int64_t)blen;
        st->records += h.records_count;
        st->batches++;
    }
}

static void fetch_response(const opts_t *o, const uint8_t *f, size_t n, int16_t ver,
                           part_state_t *ps, kp_arena_t *a, fetch_stats_t *st)
{
    kp_reader_t r;
    kp_reader_init(&r, f, n);
    int32_t corr;
    kp_fetch_resp_t resp;
    kp_arena_reset(a);
    if (kp_resp_header_decode(&r, KP_API_FETCH, ver, &corr) < 0 ||
        kp_fetch_resp_decode(&r, ver, a, &resp) < 0)
        die("malformed Fetch response");
    for (int32_t t = 0; t < resp.responses_count; t++) {
        const kp_fetch_resp_fetchable_topic_response_t *tr = &resp.responses[t];
        for (int32_t p = 0; p < tr->partitions_count; p++) {
            const kp_fetch_resp_partition_data_t *pdat = &tr->partitions[p];
            int idx = pdat->partition_index;
            if (idx < 0 || idx >= o->partitions)
                continue;
            part_state_t *s = &ps[idx];
            s->busy = 0;
            if (pdat->error_code == 1 && pdat->log_start_offset > s->next_offset) {
                /* OFFSET_OUT_OF_RANGE: the log starts later (retention, or the mock's 5 MB
                 * window); replay from where it starts now. */
                s->next_offset = pdat->log_start_offset;
                continue;
            }
            if (pdat->error_code) {
                if (!st->errors++)
                    st->first_error = pdat->error_code;
                s->done = 1;
                continue;
            }
            s->hw = pdat->high_watermark;
            int64_t before = st->bytes;
            take_records(o, pdat->records, s, st);
            if (st->bytes == before)
                st->empty++;
            if (!o->follow && s->next_offset >= s->hw)
                s->done = 1;
        }
    }
}

static int cmd_fetch(const opts_t *o)
{
    bench_conn_t c;
    open_conn(&c, o);
    int16_t ver = bench_conn_pick(&c, KP_API_FETCH, 4, 12); /* v13+ names topics by id */
    if (ver < 0)
        die("broker offers no Fetch version in 4..12");
    part_state_t *ps = calloc((size_t)o->partitions, sizeof *ps);
    fetch_stats_t st = {0};
    kp_arena_t arena;
    kp_arena_init(&arena, NULL, 0, 0);
    kp_buf_t b;
    kp_buf_init(&b);
    int32_t corr = 1000;
    int64_t t0 = 0, t1 = 0, start = bench_now_ns();
    int inflight = 0;
    for (;;) {
        int active = 0;
        for (int p = 0; p < o->partitions; p++) {
            if (ps[p].done)
                continue;
            active++;
            if (!ps[p].busy && (o->bytes <= 0 || st.bytes < o->bytes)) {
                send_fetch(&c, o, ver, corr++, p, ps[p].next_offset, &b);
                ps[p].busy = 1;
                inflight++;
            }
        }
        if (!inflight || (!active && !inflight))
            break;
        const uint8_t *f;
        size_t n;
        if (bench_conn_recv_frame(&c, &f, &n) < 0)
            die("receive");
        inflight--;
        int64_t before = st.bytes;
        fetch_response(o, f, n, ver, ps, &arena, &st);
        if (st.bytes > before) {
            if (!t0)
                t0 = bench_now_ns(); /* clock starts at the first data, like the consumer's */
            t1 = bench_now_ns();
        }
        if (o->bytes > 0 && st.bytes >= o->bytes && !inflight)
            break;
        if (o->follow && bench_now_ns() - start > 600 * 1000000000LL)
            break;
    }
    /* Replay counts from the first request (time to first byte is part of replay); follow
     * mode from the first data, since it starts before the producer. */
    double secs = t1 ? (double)(t1 - (o->follow ? t0 : start)) / 1e9 : 0;
    bench_json_t j;
    bench_json_begin(&j, stdout);
    bench_json_int(&j, "fetch_version", ver);
    bench_json_int(&j, "bytes", st.bytes);
    bench_json_int(&j, "records", st.records);
    bench_json_int(&j, "batches", st.batches);
    bench_json_int(&j, "empty_responses", st.empty);
    bench_json_int(&j, "errors", st.errors);
    bench_json_int(&j, "first_error", st.first_error);
    bench_json_num(&j, "secs", secs);
    bench_json_num(&j, "mbps", secs > 0 ? (double)st.bytes / secs / 1e6 : 0);
    bench_json_num(&j, "records_per_s", secs > 0 ? (double)st.records / secs : 0);
    bench_json_end(&j);
    kp_arena_deinit(&arena);
    kp_buf_deinit(&b);
    free(ps);
    bench_conn_close(&c);
    return st.errors || st.bytes == 0 ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */

typedef struct {
    int64_t next_offset, received, warm_seq;
    bench_samples_t lat_ms;
} e2e_state_t;

static void e2e_fetched(const opts_t *o, const uint8_t *f, size_t n, int16_t ver, kp_arena_t *a,
                        e2e_state_t *st)
{
    kp_reader_t r;
    kp_reader_init(&r, f, n);
    int32_t corr;
    kp_fetch_resp_t resp;
    kp_arena_reset(a);
    if (kp_resp_header_decode(&r, KP_API_FETCH, ver, &corr) < 0 ||
        kp_fetch_resp_decode(&r, ver, a, &resp) < 0)
        die("malformed Fetch response");
    int64_t now = bench_now_ns();
    for (int32_t t = 0; t < resp.responses_count; t++) {
        for (int32_t p = 0; p < resp.responses[t].partitions_count; p++) {
            const kp_fetch_resp_partition_data_t *pd = &resp.responses[t].partitions[p];
            if (pd->error_code)
                die("Fetch error in e2e");
            if (pd->records.len <= 0)
                continue;
            kp_batch_iter_t it;
            kp_batch_iter_init(&it, pd->records.ptr, (size_t)pd->records.len, false);
            const uint8_t *bp;
            size_t blen;
            while (kp_batch_iter_next(&it, &bp, &blen) == 1) {
                kp_records_t rit;
                if (kp_records_init(&rit, bp, blen, 1 << 20) < 0)
                    die("bad batch in e2e");
                if (rit.hdr.base_offset + rit.hdr.last_offset_delta >= st->next_offset) {
                    kp_record_t rec;
                    while (kp_records_next(&rit, &rec) == 1) {
                        int64_t sent, seq;
                        if (rec.value.len < 16)
                            continue;
                        memcpy(&sent, rec.value.ptr, 8);
                        memcpy(&seq, rec.value.ptr + 8, 8);
                        st->received++;
                        if (seq >= st->warm_seq)
                            bench_samples_add(&st->lat_ms, (double)(now - sent) / 1e6);
                    }
                    st->next_offset = rit.hdr.base_offset + rit.hdr.last_offset_delta + 1;
                }
                kp_records_deinit(&rit);
            }
        }
    }
    (void)o;
}

static int cmd_e2e(const opts_t *o)
{
    bench_conn_t pc, cc;
    open_conn(&pc, o);
    open_conn(&cc, o);
    int16_t pver = bench_conn_pick(&pc, KP_API_PRODUCE, 3, 11);
    int16_t fver = bench_conn_pick(&cc, KP_API_FETCH, 4, 12);
    if (pver < 0 || fver < 0)
        die("no usable Produce/Fetch version");
    size_t size = o->msg_size < 16 ? 16 : (size_t)o->msg_size;
    uint8_t *value = malloc(size);
    bench_fill_pattern(value, size, 17);
    kp_arena_t arena;
    kp_arena_init(&arena, NULL, 0, 0);
    kp_buf_t b, batch;
    kp_buf_init(&b);
    kp_buf_init(&batch);
    opts_t fo = *o;
    fo.partitions = 1;
    fo.max_bytes = 1 << 20;

    e2e_state_t st = {.warm_seq = (int64_t)o->rate};
    int64_t total = st.warm_seq + (int64_t)(o->rate * o->duration_s);
    int64_t t0 = bench_now_ns(), seq = 0, produce_out = 0, errors = 0;
    int16_t first_error = 0;
    double gap_ns = 1e9 / o->rate;
    int32_t corr = 1;
    send_fetch(&cc, &fo, fver, corr++, 0, 0, &b);
    int64_t end_by = 0;
    for (;;) {
        int64_t now = bench_now_ns();
        if (seq < total && now >= t0 + (int64_t)((double)seq * gap_ns) &&
            produce_out < o->inflight) {
            /* Everything due goes in one batch, stamped with the time it was due: with the
             * window full, messages wait and coalesce as they would in a client's queue. */
            kp_batch_builder_t bb;
            kp_batch_builder_init(&bb, KP_COMPRESSION_NONE);
            /* At most ~900 KB per batch: after a long stall (a busy box) more would exceed
             * the broker's message.max.bytes (1 MB) and come back MESSAGE_TOO_LARGE. */
            int most = (int)(900000 / (size + 32));
            for (int k = 0; k < (most > 0 ? most : 1) && seq < total; k++, seq++) {
                int64_t due = t0 + (int64_t)((double)seq * gap_ns);
                if (due > now)
                    break;
                memcpy(value, &due, 8);
                memcpy(value + 8, &seq, 8);
                kp_batch_builder_add(&bb, now / 1000000, (kp_bytes_t){NULL, -1},
                                     (kp_bytes_t){value, (int32_t)size}, NULL, 0);
            }
            kp_buf_reset(&batch);
            if (kp_batch_builder_finish(&bb, &batch) < 0)
                die("batch");
            kp_batch_builder_deinit(&bb);
            kp_produce_req_partition_produce_data_t pd = {0, {batch.data, (int32_t)batch.len}};
            kp_produce_req_topic_produce_data_t td = {kp_str(o->topic), &pd, 1};
            kp_produce_req_t req;
            kp_produce_req_init(&req);
            req.acks = (int16_t)o->acks;
            req.timeout_ms = 30000;
            req.topic_data = &td;
            req.topic_data_count = 1;
            kp_buf_reset(&b);
            bench_frame_begin(&b, KP_API_PRODUCE, pver, corr++);
            kp_produce_req_encode(&b, pver, &req);
            bench_frame_end(&b);
            if (b.err || bench_conn_send_all(&pc, b.data, b.len) < 0)
                die("send Produce");
            produce_out++;
            if (seq == total)
                end_by = bench_now_ns() + 10 * 1000000000LL;
            continue;
        }
        if (seq >= total && (st.received >= total || bench_now_ns() > end_by))
            break;
        int64_t next = seq < total && produce_out < o->inflight
                           ? t0 + (int64_t)((double)seq * gap_ns)
                           : now + 100000000;
        int wait_ms = (int)((next - now) / 1000000);
        struct pollfd pf[2] = {{.fd = pc.fd, .events = POLLIN}, {.fd = cc.fd, .events = POLLIN}};
        if (poll(pf, 2, wait_ms < 0 ? 0 : wait_ms) < 0)
            continue;
        const uint8_t *f;
        size_t n;
        int r;
        while ((r = bench_conn_try_frame(&pc, &f, &n)) == 1) {
            kp_reader_t rd;
            kp_reader_init(&rd, f, n);
            int32_t c;
            kp_produce_resp_t resp;
            kp_arena_reset(&arena);
            if (kp_resp_header_decode(&rd, KP_API_PRODUCE, pver, &c) < 0 ||
                kp_produce_resp_decode(&rd, pver, &arena, &resp) < 0)
                die("malformed Produce response");
            for (int32_t t = 0; t < resp.responses_count; t++)
                for (int32_t p = 0; p < resp.responses[t].partition_responses_count; p++) {
                    int16_t ec = resp.responses[t].partition_responses[p].error_code;
                    if (ec && !errors++)
                        first_error = ec;
                }
            produce_out--;
        }
        if (r < 0)
            die("producer connection");
        while ((r = bench_conn_try_frame(&cc, &f, &n)) == 1) {
            e2e_fetched(o, f, n, fver, &arena, &st);
            send_fetch(&cc, &fo, fver, corr++, 0, st.next_offset, &b);
        }
        if (r < 0)
            die("consumer connection");
    }
    bench_sort(st.lat_ms.v, st.lat_ms.n);
    bench_json_t j;
    bench_json_begin(&j, stdout);
    bench_json_int(&j, "acks", o->acks);
    bench_json_num(&j, "rate_target", o->rate);
    bench_json_int(&j, "sent", total);
    bench_json_int(&j, "received", st.received);
    bench_json_int(&j, "samples", (int64_t)st.lat_ms.n);
    bench_json_int(&j, "errors", errors);
    bench_json_int(&j, "first_error", first_error);
    bench_json_num(&j, "p50_ms", bench_quantile_sorted(st.lat_ms.v, st.lat_ms.n, 0.50));
    bench_json_num(&j, "p99_ms", bench_quantile_sorted(st.lat_ms.v, st.lat_ms.n, 0.99));
    bench_json_num(&j, "p999_ms", bench_quantile_sorted(st.lat_ms.v, st.lat_ms.n, 0.999));
    bench_json_num(&j, "max_ms", st.lat_ms.n ? st.lat_ms.v[st.lat_ms.n - 1] : 0);
    bench_json_end(&j);
    /* A rejected request is reported (errors, first_error), not fatal: the latency of what
     * was accepted is still the measurement. */
    int ok = st.lat_ms.n > 0;
    bench_samples_free(&st.lat_ms);
    kp_arena_deinit(&arena);
    kp_buf_deinit(&b);
    kp_buf_deinit(&batch);
    free(value);
    bench_conn_close(&pc);
    bench_conn_close(&cc);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */

static int cmd_conns(const opts_t *o)
{
    bench_raise_nofile();
    bench_conn_t *cs = calloc((size_t)o->conns, sizeof *cs);
    if (!cs)
        die("out of memory");
    int ok = 0;
    for (int i = 0; i < o->conns; i++) {
        if (bench_conn_open(&cs[i], o->brokers) < 0 || bench_conn_handshake(&cs[i]) < 0)
            break;
        ok++;
        /* Hand the receive buffer back: an idle client should not hold 64 KiB per socket. */
        free(cs[i].rbuf);
        cs[i].rbuf = NULL;
        cs[i].rcap = cs[i].rstart = cs[i].rend = 0;
    }
    printf("{\"ready\": %d, \"wanted\": %d}\n", ok, o->conns);
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    for (int i = 0; i < ok; i++)
        bench_conn_close(&cs[i]);
    free(cs);
    return ok == o->conns ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: lean produce|fetch|e2e|conns -b HOST:PORT [options]\n"
                    "  (see the comment at the top of bench/lean.c)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {.msg_size = 1024, .partitions = 1, .ppr = 1, .inflight = 8, .acks = 1,
                .rate = 1000, .duration_s = 5,
                .batch_bytes = 256 * 1024, .max_bytes = 8 * 1024 * 1024, .conns = 1000};
    if (argc < 2)
        usage();
    o.cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--verify")) {
            o.verify = 1;
            continue;
        }
        if (!strcmp(a, "--follow")) {
            o.follow = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "-b")) o.brokers = v;
        else if (!strcmp(a, "-t")) o.topic = v;
        else if (!strcmp(a, "-n")) o.bytes = bench_parse_size(v);
        else if (!strcmp(a, "-s")) o.msg_size = (int)bench_parse_size(v);
        else if (!strcmp(a, "-p")) o.partitions = atoi(v);
        else if (!strcmp(a, "--ppr")) o.ppr = atoi(v);
        else if (!strcmp(a, "--inflight")) o.inflight = atoi(v);
        else if (!strcmp(a, "--acks")) o.acks = !strcmp(v, "all") ? -1 : atoi(v);
        else if (!strcmp(a, "--batch")) o.batch_bytes = bench_parse_size(v);
        else if (!strcmp(a, "--max")) o.max_bytes = bench_parse_size(v);
        else if (!strcmp(a, "-c")) o.conns = atoi(v);
        else if (!strcmp(a, "--rate")) o.rate = atof(v);
        else if (!strcmp(a, "-d")) o.duration_s = atof(v);
        else usage();
    }
    if (!o.brokers || o.partitions < 1 || o.ppr < 1 || o.inflight < 1 || o.msg_size < 1 ||
        o.batch_bytes < 1 || o.max_bytes < 1 || o.max_bytes > INT32_MAX || o.rate <= 0)
        usage();
    if (!strcmp(o.cmd, "conns"))
        return cmd_conns(&o);
    if (!o.topic)
        usage();
    if (!strcmp(o.cmd, "produce"))
        return o.bytes > 0 ? cmd_produce(&o) : 2;
    if (!strcmp(o.cmd, "fetch"))
        return cmd_fetch(&o);
    if (!strcmp(o.cmd, "e2e"))
        return cmd_e2e(&o);
    usage();
    return 2;
}
