/*
 * Load generator on librdkafka, the client most factory applications run.
 *
 *   loadgen create  -b HOST:PORT -t TOPIC -p PARTITIONS [--config KEY=VALUE]...
 *   loadgen delete  -b HOST:PORT -t TOPIC
 *   loadgen produce -b HOST:PORT -t TOPIC -n BYTES -s MSGSIZE [--acks 1|all] [--linger MS]
 *                   [--batch BYTES] [-p PARTITIONS]
 *   loadgen consume -b HOST:PORT -t TOPIC [-n BYTES] [-p PARTITIONS] [--loop] [--timeout S]
 *   loadgen e2e     -b HOST:PORT -t TOPIC --rate MSGS/S -d SECONDS -s MSGSIZE [--acks 1|all]
 *
 * produce: N bytes of values (N/MSGSIZE messages), partitions round-robin; MB/s counts value
 *   bytes from the first produce call to the last delivery report (MB = 10^6 bytes).
 * consume: reads every partition from the beginning with the queue consumer (no group, so no
 *   coordinator in the way) until N bytes or, without -n, until every partition hits its end;
 *   --loop seeks back to the beginning at the end (the mock keeps only ~5 MB per partition).
 * e2e: a paced producer stamps CLOCK_MONOTONIC into each value; a consumer in another thread
 *   of this process, started at the end of the log, computes produce->consume latency. The
 *   first second is warm-up and not counted.
 * delete: DeleteTopics, so a produce run's data leaves the page cache before the next run
 *   (docs/benchmarks.md, "the run-to-run swing"); a topic already gone counts as deleted.
 * Each command prints one JSON line on stdout.
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"

typedef struct {
    const char *cmd, *brokers, *topic, *acks;
    int64_t bytes;
    int msg_size, partitions, linger_ms, batch_bytes, loop, timeout_s;
    const char *configs[8]; /* create: topic configs, "key=value" */
    int nconfigs;
    double rate, duration_s;
} opts_t;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, why);
    exit(1);
}

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
        die(k, err);
}

static rd_kafka_conf_t *base_conf(const opts_t *o)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    conf_set(c, "bootstrap.servers", o->brokers);
    conf_set(c, "client.id", "depot-bench");
    conf_set(c, "log_level", "4");
    if (getenv("LOADGEN_DEBUG"))
        conf_set(c, "debug", getenv("LOADGEN_DEBUG"));
    return c;
}

static rd_kafka_t *new_handle(rd_kafka_type_t type, rd_kafka_conf_t *c)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    if (!rk)
        die("rd_kafka_new", err);
    return rk;
}

/* Partition count from metadata when -p was not given. */
static int topic_partitions(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    for (int tries = 0; tries < 20 && n <= 0; tries++) {
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && !md->topics[0].err)
                n = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        if (n <= 0) {
            struct timespec ts = {0, 250 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    rd_kafka_topic_destroy(rkt);
    if (n <= 0)
        die(topic, "no metadata for topic");
    return n;
}

/* ------------------------------------------------------------------------------------------ */

/* The admin result of this type from q (other events on it are logged), or NULL after 30 s. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type,
                                    const char *what)
{
    int64_t deadline = bench_now_ns() + 30 * 1000000000LL;
    while (bench_now_ns() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 1000);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == type)
            return ev;
        fprintf(stderr, "loadgen: %s: event %s: %s\n", what, rd_kafka_event_name(ev),
                rd_kafka_event_error_string(ev) ? rd_kafka_event_error_string(ev) : "");
        rd_kafka_event_destroy(ev);
    }
    return NULL;
}

/* The one topic's outcome in a CreateTopics or DeleteTopics result (NULL: timed out); *why,
 * valid while ev lives, says it in words. */
static rd_kafka_resp_err_t topic_outcome(rd_kafka_event_t *ev, const char **why)
{
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = NULL;
    const rd_kafka_CreateTopics_result_t *cr = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    const rd_kafka_DeleteTopics_result_t *dr = ev ? rd_kafka_event_DeleteTopics_result(ev) : NULL;
    if (cr)
        tr = rd_kafka_CreateTopics_result_topics(cr, &n);
    else if (dr)
        tr = rd_kafka_DeleteTopics_result_topics(dr, &n);
    if (!ev) {
        *why = "timed out";
        return RD_KAFKA_RESP_ERR__TIMED_OUT;
    }
    if (rd_kafka_event_error(ev)) {
        *why = rd_kafka_event_error_string(ev);
        return rd_kafka_event_error(ev);
    }
    if (n != 1) {
        *why = "no result for the topic";
        return RD_KAFKA_RESP_ERR__FAIL;
    }
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[0]);
    *why = rd_kafka_err2str(e);
    return e;
}

static int cmd_delete(const opts_t *o)
{
    rd_kafka_t *rk = new_handle(RD_KAFKA_PRODUCER, base_conf(o));
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(o->topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, "delete");
    const char *why;
    rd_kafka_resp_err_t e = topic_outcome(ev, &why);
    int rc = e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? 0 : 1;
    if (rc)
        fprintf(stderr, "loadgen: delete %s: %s\n", o->topic, why);
    else
        printf("{\"deleted\": \"%s\"}\n", o->topic);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

static int cmd_create(const opts_t *o)
{
    rd_kafka_t *rk = new_handle(RD_KAFKA_PRODUCER, base_conf(o));
    char err[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(o->topic, o->partitions > 0 ? o->partitions : 1, 1, err, sizeof err);
    if (!nt)
        die("NewTopic", err);
    for (int i = 0; i < o->nconfigs; i++) { /* "key=value", e.g. flush.messages=1 for Kafka */
        char kv[256];
        snprintf(kv, sizeof kv, "%s", o->configs[i]);
        char *eq = strchr(kv, '=');
        if (!eq)
            die("--config", "expects key=value");
        *eq = '\0';
        if (rd_kafka_NewTopic_set_config(nt, kv, eq + 1))
            die("--config", kv);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, "create");
    const char *why;
    rd_kafka_resp_err_t e = topic_outcome(ev, &why);
    int rc = e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS ? 0 : 1;
    if (rc)
        fprintf(stderr, "loadgen: create %s: %s\n", o->topic, why);
    else
        printf("{\"created\": \"%s\", \"partitions\": %d}\n", o->topic, o->partitions);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

typedef struct {
    int64_t acked_bytes, acked_msgs, errors, last_dr_ns;
    rd_kafka_resp_err_t first_err;
} dr_state_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    dr_state_t *st = opaque;
    if (m->err) {
        if (!st->errors++)
            st->first_err = m->err;
    } else {
        st->acked_bytes += (int64_t)m->len;
        st->acked_msgs++;
    }
    st->last_dr_ns = bench_now_ns();
}

static rd_kafka_t *new_producer(const opts_t *o, dr_state_t *st, int linger_ms)
{
    char v[32];
    rd_kafka_conf_t *c = base_conf(o);
    conf_set(c, "acks", o->acks);
    snprintf(v, sizeof v, "%d", linger_ms);
    conf_set(c, "linger.ms", v);
    if (o->batch_bytes > 0) {
        snprintf(v, sizeof v, "%d", o->batch_bytes);
        conf_set(c, "batch.size", v);
    }
    conf_set(c, "queue.buffering.max.messages", "1000000");
    conf_set(c, "queue.buffering.max.kbytes", "524288");
    conf_set(c, "enable.idempotence", "false");
    conf_set(c, "compression.codec", "none");
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, st);
    return new_handle(RD_KAFKA_PRODUCER, c);
}

static void produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t part, void *p, size_t len,
                        int flags)
{
    while (rd_kafka_produce(rkt, part, flags, p, len, NULL, 0, NULL) == -1) {
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            die("produce", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 1);
    }
}

static int cmd_produce(const opts_t *o)
{
    dr_state_t st = {0};
    rd_kafka_t *rk = new_producer(o, &st, o->linger_ms);
    int parts = o->partitions > 0 ? o->partitions : topic_partitions(rk, o->topic);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    uint8_t *payload = malloc((size_t)o->msg_size);
    if (!payload)
        die("malloc", "payload");
    bench_fill_pattern(payload, (size_t)o->msg_size, 11);
    int64_t count = o->bytes / o->msg_size;

    int64_t t0 = bench_now_ns();
    for (int64_t i = 0; i < count; i++) {
        /* The payload is constant, so librdkafka may reference it without copying. */
        produce_one(rk, rkt, (int32_t)(i % parts), payload, (size_t)o->msg_size, 0);
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_poll(rk, 50);
    double secs = (double)(st.last_dr_ns - t0) / 1e9;

    bench_json_t j;
    bench_json_begin(&j, stdout);
    bench_json_str(&j, "acks", o->acks);
    bench_json_int(&j, "msg_size", o->msg_size);
    bench_json_int(&j, "msgs", st.acked_msgs);
    bench_json_int(&j, "bytes", st.acked_bytes);
    bench_json_int(&j, "errors", st.errors);
    bench_json_str(&j, "first_error", st.errors ? rd_kafka_err2str(st.first_err) : "");
    bench_json_num(&j, "secs", secs);
    bench_json_num(&j, "mbps", (double)st.acked_bytes / secs / 1e6);
    bench_json_num(&j, "msgs_per_s", (double)st.acked_msgs / secs);
    bench_json_end(&j);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(payload);
    return st.errors ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */

static rd_kafka_t *new_consumer(const opts_t *o, const char *wait_ms)
{
    rd_kafka_conf_t *c = base_conf(o);
    conf_set(c, "enable.partition.eof", "true");
    conf_set(c, "fetch.wait.max.ms", wait_ms);
    conf_set(c, "queued.max.messages.kbytes", "65536");
    return new_handle(RD_KAFKA_CONSUMER, c);
}

static int cmd_consume(const opts_t *o)
{
    rd_kafka_t *rk = new_consumer(o, "100");
    int parts = o->partitions > 0 ? o->partitions : topic_partitions(rk, o->topic);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int p = 0; p < parts; p++)
        if (rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q) == -1)
            die("consume_start", rd_kafka_err2str(rd_kafka_last_error()));

    enum { BATCH = 4096 };
    rd_kafka_message_t *msgs[BATCH];
    char *eof = calloc((size_t)parts, 1);
    int64_t bytes = 0, n = 0, errors = 0, t0 = 0, t1 = 0;
    int eofs = 0, passes = 1;
    int64_t deadline = bench_now_ns() + (int64_t)o->timeout_s * 1000000000;
    while (bench_now_ns() < deadline) {
        ssize_t got = rd_kafka_consume_batch_queue(q, 100, msgs, BATCH);
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (m->partition >= 0 && m->partition < parts && !eof[m->partition]) {
                    eof[m->partition] = 1;
                    eofs++;
                }
            } else if (m->err) {
                if (!errors++)
                    fprintf(stderr, "loadgen: consume: %s\n", rd_kafka_message_errstr(m));
            } else {
                if (!t0)
                    t0 = bench_now_ns();
                bytes += (int64_t)m->len;
                n++;
                t1 = bench_now_ns();
            }
            rd_kafka_message_destroy(m);
        }
        if (o->bytes > 0 && bytes >= o->bytes)
            break;
        if (eofs == parts && o->bytes <= 0)
            break;
        if (eofs == parts && o->loop && bytes > 0) {
            for (int p = 0; p < parts; p++) {
                rd_kafka_seek(rkt, p, RD_KAFKA_OFFSET_BEGINNING, 5000);
                eof[p] = 0;
            }
            eofs = 0;
            passes++;
        }
    }
    for (int p = 0; p < parts; p++)
        rd_kafka_consume_stop(rkt, p);
    double secs = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
    int ok = bytes > 0 && (o->bytes <= 0 || bytes >= o->bytes);
    bench_json_t j;
    bench_json_begin(&j, stdout);
    bench_json_int(&j, "msgs", n);
    bench_json_int(&j, "bytes", bytes);
    bench_json_int(&j, "passes", passes);
    bench_json_int(&j, "errors", errors);
    bench_json_num(&j, "secs", secs);
    bench_json_num(&j, "mbps", secs > 0 ? (double)bytes / secs / 1e6 : 0);
    bench_json_num(&j, "msgs_per_s", secs > 0 ? (double)n / secs : 0);
    bench_json_end(&j);
    free(eof);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const opts_t *o;
    int parts;
    _Atomic int ready, stop;
    _Atomic int64_t warm_seq; /* samples from messages with seq >= this only */
    _Atomic int64_t last_seq; /* set by the producer when done: stop after this one */
    int64_t received;
    bench_samples_t lat; /* milliseconds */
} e2e_t;

static void *e2e_consumer(void *arg)
{
    e2e_t *e = arg;
    rd_kafka_t *rk = new_consumer(e->o, "500");
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, e->o->topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int p = 0; p < e->parts; p++)
        rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_END, q);
    int eofs = 0;
    int64_t seen_last = -1;
    while (!e->stop) {
        /* One message at a time: the batch call waits to fill its batch, adding latency. */
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 100);
        if (!m)
            continue;
        int64_t now = bench_now_ns();
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (++eofs >= e->parts)
                e->ready = 1;
        } else if (!m->err && m->len >= 16) {
            int64_t sent, seq;
            memcpy(&sent, m->payload, 8);
            memcpy(&seq, (const char *)m->payload + 8, 8);
            e->received++;
            if (seq >= e->warm_seq)
                bench_samples_add(&e->lat, (double)(now - sent) / 1e6);
            if (seq > seen_last)
                seen_last = seq;
            if (e->last_seq >= 0 && seen_last >= e->last_seq)
                e->stop = 1;
        }
        rd_kafka_message_destroy(m);
    }
    for (int p = 0; p < e->parts; p++)
        rd_kafka_consume_stop(rkt, p);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return NULL;
}

static void sleep_until(int64_t t_ns)
{
    struct timespec ts = {t_ns / 1000000000, t_ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static int cmd_e2e(const opts_t *o)
{
    dr_state_t st = {0};
    rd_kafka_t *rk = new_producer(o, &st, o->linger_ms);
    e2e_t e = {.o = o, .warm_seq = INT64_MAX, .last_seq = -1};
    e.parts = o->partitions > 0 ? o->partitions : topic_partitions(rk, o->topic);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    pthread_t th;
    pthread_create(&th, NULL, e2e_consumer, &e);
    for (int i = 0; i < 200 && !e.ready; i++)
        sleep_until(bench_now_ns() + 50 * 1000000);

    size_t size = o->msg_size < 16 ? 16 : (size_t)o->msg_size;
    uint8_t *payload = malloc(size);
    bench_fill_pattern(payload, size, 5);
    int64_t warm = (int64_t)o->rate; /* one second of warm-up */
    int64_t total = warm + (int64_t)(o->rate * o->duration_s);
    e.warm_seq = warm;
    int64_t t0 = bench_now_ns();
    double gap_ns = 1e9 / o->rate;
    for (int64_t seq = 0; seq < total; seq++) {
        sleep_until(t0 + (int64_t)((double)seq * gap_ns));
        int64_t now = bench_now_ns();
        memcpy(payload, &now, 8);
        memcpy(payload + 8, &seq, 8);
        produce_one(rk, rkt, (int32_t)(seq % e.parts), payload, size, RD_KAFKA_MSG_F_COPY);
        rd_kafka_poll(rk, 0);
    }
    double send_secs = (double)(bench_now_ns() - t0) / 1e9;
    e.last_seq = total - 1;
    rd_kafka_flush(rk, 30000);
    int64_t deadline = bench_now_ns() + 10 * 1000000000LL;
    while (!e.stop && bench_now_ns() < deadline)
        sleep_until(bench_now_ns() + 10 * 1000000);
    e.stop = 1;
    pthread_join(th, NULL);

    bench_sort(e.lat.v, e.lat.n);
    bench_json_t j;
    bench_json_begin(&j, stdout);
    bench_json_str(&j, "acks", o->acks);
    bench_json_num(&j, "rate_target", o->rate);
    bench_json_num(&j, "rate_sent", (double)total / send_secs);
    bench_json_int(&j, "sent", total);
    bench_json_int(&j, "received", e.received);
    bench_json_int(&j, "samples", (int64_t)e.lat.n);
    bench_json_int(&j, "errors", st.errors);
    bench_json_num(&j, "p50_ms", bench_quantile_sorted(e.lat.v, e.lat.n, 0.50));
    bench_json_num(&j, "p99_ms", bench_quantile_sorted(e.lat.v, e.lat.n, 0.99));
    bench_json_num(&j, "p999_ms", bench_quantile_sorted(e.lat.v, e.lat.n, 0.999));
    bench_json_num(&j, "max_ms", e.lat.n ? e.lat.v[e.lat.n - 1] : 0);
    bench_json_end(&j);
    int ok = e.lat.n > 0 && st.errors == 0;
    bench_samples_free(&e.lat);
    free(payload);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: loadgen create|delete|produce|consume|e2e -b HOST:PORT -t TOPIC [options]\n"
                    "  (see the comment at the top of bench/loadgen.c)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {.acks = "1", .msg_size = 1024, .linger_ms = 5, .timeout_s = 300,
                .rate = 1000, .duration_s = 5};
    if (argc < 2)
        usage();
    o.cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--loop")) {
            o.loop = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "-b")) o.brokers = v;
        else if (!strcmp(a, "-t")) o.topic = v;
        else if (!strcmp(a, "-n")) o.bytes = bench_parse_size(v);
        else if (!strcmp(a, "-s")) o.msg_size = (int)bench_parse_size(v);
        else if (!strcmp(a, "-p")) o.partitions = atoi(v);
        else if (!strcmp(a, "--acks")) o.acks = v;
        else if (!strcmp(a, "--linger")) o.linger_ms = atoi(v);
        else if (!strcmp(a, "--batch")) o.batch_bytes = (int)bench_parse_size(v);
        else if (!strcmp(a, "--timeout")) o.timeout_s = atoi(v);
        else if (!strcmp(a, "--rate")) o.rate = atof(v);
        else if (!strcmp(a, "-d")) o.duration_s = atof(v);
        else if (!strcmp(a, "--config") && o.nconfigs < 8) o.configs[o.nconfigs++] = v;
        else usage();
    }
    if (!o.brokers || !o.topic || o.msg_size <= 0 || o.rate <= 0)
        usage();
    if (!strcmp(o.cmd, "create"))
        return cmd_create(&o);
    if (!strcmp(o.cmd, "delete"))
        return cmd_delete(&o);
    if (!strcmp(o.cmd, "produce"))
        return o.bytes > 0 ? cmd_produce(&o) : 2;
    if (!strcmp(o.cmd, "consume"))
        return cmd_consume(&o);
    if (!strcmp(o.cmd, "e2e"))
        return cmd_e2e(&o);
    usage();
    return 2;
}
