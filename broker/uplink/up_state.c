/*
 * The uplink's two files in the first log dir.
 *
 * uplink.checkpoint (durable; written to uplink.checkpoint.tmp, fsynced, renamed over, and the
 * directory fsynced, so a power cut leaves the old or the new file, never a torn one; the
 * once-a-second save does that on the threadpool, not on the loop). Text:
 *   depot-uplink 1 <cluster-id>
 *   p <local topic> <partition> <central topic> <acked>      every offset below acked is on
 *                                                             the central side
 *   s <central topic> <central partition> <scan_from>        no record of ours beyond what the
 *                                                             p lines cover lies below scan_from
 *   m transactions | m read-back                             the mode of the last producer
 *                                                             session (a transactional session
 *                                                             after a read-back one reads back
 *                                                             once more: up_txn.c)
 * A p line whose central topic is not the current prefix + name (uplink.topic.prefix changed)
 * is ignored: that partition starts over against the new central topic. A file written for
 * another cluster id (a wiped and recreated log dir) is ignored with a warning.
 *
 * uplink.status (rewritten every second with temp + rename, not fsynced): one line per link
 * and per partition, tab-separated key=value fields, read by `depotctl uplink status`:
 *   uplink  state= bootstrap= last_error= last_success_ms= resyncs= send_errors= updated_ms=
 *           mode= (transactions, read-back, or empty before the first session) mode_reason=
 *           (why not transactions) last_commit_ms= (wall clock of the last committed
 *           transaction, 0 = none) commits= transactional_id=
 *   part    topic= partition= central= central_partition= (-1: not resolved) hashed= (1: records
 *           go by key hash, central_partition is where keyless ones go) local_start= local_end= forwarded=
 *           lag_records= lag_bytes= (the local log's bytes, as stored, from the batch holding
 *           the first unforwarded offset to the log end; -1 if storage could not tell) inflight= forwarded_records= forwarded_bytes= (record
 *           bytes as the bandwidth cap counts them, since start) dropped_records=
 *           dropped_ranges= readback_found= error= (the topic's last resolve error)
 * Values never contain tabs or newlines (they are replaced by spaces).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/uplink/up_int.h"

#define CKPT_LINE_MAX 1024

static up_topic_t *find_central(up_t *u, const char *central)
{
    for (up_topic_t *t = u->topics; t; t = t->next)
        if (!t->gone && !strcmp(t->central, central)) return t;
    return NULL;
}

static void load_scan(up_topic_t *t, int64_t q, int64_t v)
{
    if (q < 0 || q >= 100000) return;
    if (q >= t->ckpt_nscan) {
        int64_t *n = realloc(t->ckpt_scan, (size_t)(q + 1) * sizeof *n);
        if (!n) return;
        for (int64_t i = t->ckpt_nscan; i <= q; i++)
            n[i] = -1;
        t->ckpt_scan = n;
        t->ckpt_nscan = (int32_t)(q + 1);
    }
    t->ckpt_scan[q] = v;
}

static void load_line(up_t *u, char *line)
{
    char a[256], c[256];
    long long n1, n2;
    if (sscanf(line, "p %255s %lld %255s %lld", a, &n1, c, &n2) == 4) {
        up_topic_t *t = up_topic_find(u, a);
        if (!t || n1 < 0 || n1 >= t->nparts || n2 < 0) return;
        if (strcmp(t->central, c)) {
            kb_log(KB_LOG_WARN, "uplink: %s/%lld was forwarded to %s, now %s: starting over",
                   a, n1, c, t->central);
            return;
        }
        up_part_t *p = &t->parts[n1];
        p->acked = p->ckpt_acked = p->next_send = n2;
        p->known = true;
    } else if (sscanf(line, "s %255s %lld %lld", c, &n1, &n2) == 3) {
        up_topic_t *t = find_central(u, c);
        if (t) load_scan(t, n1, n2);
    } else if (sscanf(line, "m %255s", c) == 1) {
        u->prev_txn = !strcmp(c, "transactions");
    }
}

int up_ckpt_load(up_t *u)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", u->dir, UP_CKPT_FILE);
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : K_ERR_IO;
    char line[CKPT_LINE_MAX];
    char cid[128] = "";
    int version = 0;
    if (!fgets(line, sizeof line, f) || sscanf(line, "depot-uplink %d %127s", &version, cid) != 2 ||
        version != 1) {
        kb_log(KB_LOG_WARN, "uplink: %s: unreadable header, ignored", path);
        fclose(f);
        return K_ERR_CORRUPT;
    }
    if (strcmp(cid, u->cluster_id)) {
        kb_log(KB_LOG_WARN, "uplink: %s belongs to cluster %s, this store is %s: ignored", path,
               cid, u->cluster_id);
        fclose(f);
        return 0;
    }
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        load_line(u, line);
        n++;
    }
    fclose(f);
    kb_log(KB_LOG_INFO, "uplink: checkpoint loaded (%d entries)", n);
    return 0;
}

static int write_all(FILE *f, up_t *u)
{
    fprintf(f, "depot-uplink 1 %s\n", u->cluster_id);
    fprintf(f, "m %s\n", u->prev_txn ? "transactions" : "read-back");
    for (up_topic_t *t = u->topics; t; t = t->next) {
        if (t->gone) continue;
        for (int32_t i = 0; i < t->nparts; i++)
            if (t->parts[i].known)
                fprintf(f, "p %s %d %s %" PRId64 "\n", t->name, i, t->central, t->parts[i].acked);
        up_scan_update(t); /* scan_from with what acked covers now, written with acked */
        const int64_t *scan = t->scan_from ? t->scan_from : t->ckpt_scan;
        int32_t n = t->scan_from ? t->ncentral : t->ckpt_nscan;
        for (int32_t q = 0; q < n; q++)
            if (scan[q] >= 0) fprintf(f, "s %s %d %" PRId64 "\n", t->central, q, scan[q]);
    }
    return ferror(f) ? K_ERR_IO : 0;
}

/* Checkpoint files are written one at a time (ckpt_mu) and numbered on the loop when their
 * contents are taken: a write whose number is not above the newest on disk is dropped, so an
 * older snapshot never replaces a newer one (the synchronous save at close may overtake a
 * background one). One uplink per process, so the state is process-wide. */
static pthread_mutex_t ckpt_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t ckpt_on_disk; /* under ckpt_mu */

/* The snapshot of one checkpoint: its text and the acked values it holds. Owned by the caller
 * (sync) or by the background job (async), freed by snap_free. */
typedef struct {
    char *text;
    size_t len;
    uint64_t gen;
    up_part_t **parts; /* topics live until up_free, which waits for the job */
    int64_t *acked;
    size_t n;
} ckpt_snap_t;

static void snap_free(ckpt_snap_t *sn)
{
    free(sn->text);
    free(sn->parts);
    free(sn->acked);
}

static int snap_take(up_t *u, ckpt_snap_t *sn)
{
    *sn = (ckpt_snap_t){0};
    FILE *f = open_memstream(&sn->text, &sn->len);
    if (!f) return K_ERR_NOMEM;
    int rc = write_all(f, u);
    if (fclose(f) != 0) rc = K_ERR_NOMEM;
    size_t n = 0;
    for (up_topic_t *t = u->topics; t; t = t->next)
        n += (size_t)t->nparts;
    sn->parts = malloc((n ? n : 1) * sizeof *sn->parts);
    sn->acked = malloc((n ? n : 1) * sizeof *sn->acked);
    if (rc || !sn->parts || !sn->acked) {
        snap_free(sn);
        return K_ERR_NOMEM;
    }
    for (up_topic_t *t = u->topics; t; t = t->next)
        for (int32_t i = 0; i < t->nparts; i++)
            if (t->parts[i].known) {
                sn->parts[sn->n] = &t->parts[i];
                sn->acked[sn->n++] = t->parts[i].acked;
            }
    sn->gen = ++u->ckpt_gen;
    return 0;
}

/* temp file, fsync, rename, directory fsync; any thread. */
static int snap_write(const char *dir, const ckpt_snap_t *sn)
{
    char path[1200], tmp[1210];
    snprintf(path, sizeof path, "%s/%s", dir, UP_CKPT_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    pthread_mutex_lock(&ckpt_mu);
    int rc = 0;
    if (sn->gen <= ckpt_on_disk) goto out; /* a newer one is there already */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = K_ERR_IO;
        goto out;
    }
    for (size_t done = 0; rc == 0 && done < sn->len;) {
        ssize_t w = write(fd, sn->text + done, sn->len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) rc = K_ERR_IO;
        else done += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0) rc = K_ERR_IO;
    if (close(fd) != 0) rc = K_ERR_IO;
    if (rc == 0 && rename(tmp, path) != 0) rc = K_ERR_IO;
    if (rc == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) rc = K_ERR_IO;
        if (dfd >= 0) close(dfd);
    }
    if (rc == 0) ckpt_on_disk = sn->gen;
out:
    pthread_mutex_unlock(&ckpt_mu);
    if (rc < 0) kb_log(KB_LOG_ERROR, "uplink: checkpoint %s not written: %s", path, strerror(errno));
    return rc;
}

/* What the snapshot holds is durable now: the retention floor may follow (never backwards:
 * a newer save may have raised it already). */
static void snap_done(const ckpt_snap_t *sn)
{
    for (size_t i = 0; i < sn->n; i++)
        if (sn->acked[i] > sn->parts[i]->ckpt_acked) sn->parts[i]->ckpt_acked = sn->acked[i];
}

int up_ckpt_save(up_t *u)
{
    ckpt_snap_t sn;
    int rc = snap_take(u, &sn);
    if (rc == 0) rc = snap_write(u->dir, &sn);
    if (rc == 0) {
        snap_done(&sn);
        u->ckpt_dirty = false;
    }
    snap_free(&sn);
    return rc;
}

/* The background save: the snapshot is taken on the loop, written on the threadpool. */
typedef struct {
    uv_work_t work;
    up_t *u;
    ckpt_snap_t sn;
    char dir[1024];
    int rc;
} ckpt_job_t;

static void ckpt_work(uv_work_t *w)
{
    ckpt_job_t *j = w->data;
    j->rc = snap_write(j->dir, &j->sn);
}

static void ckpt_after(uv_work_t *w, int status)
{
    ckpt_job_t *j = w->data;
    up_t *u = j->u;
    u->ckpt_busy = false;
    if (status == 0 && j->rc == 0)
        snap_done(&j->sn);
    else
        u->ckpt_dirty = true; /* the next tick tries again */
    snap_free(&j->sn);
    free(j);
    if (u->stopping) up_job_orphaned(u);
}

void up_ckpt_save_async(up_t *u)
{
    if (u->ckpt_busy) return; /* still dirty: the next tick writes what is new then */
    ckpt_job_t *j = calloc(1, sizeof *j);
    if (!j) return;
    if (snap_take(u, &j->sn) < 0) {
        free(j);
        return;
    }
    j->u = u;
    j->work.data = j;
    snprintf(j->dir, sizeof j->dir, "%s", u->dir);
    u->ckpt_dirty = false;
    if (uv_queue_work(u->loop, &j->work, ckpt_work, ckpt_after) < 0) {
        u->ckpt_dirty = true;
        snap_free(&j->sn);
        free(j);
        return;
    }
    u->ckpt_busy = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Status                                                                                       */

static void clean(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
    for (char *c = dst; *c; c++)
        if (*c == '\t' || *c == '\n' || *c == '\r') *c = ' ';
}

static void write_part(FILE *f, up_t *u, up_topic_t *t, up_part_t *p)
{
    ks_topic_t *kt = ks_topic_find(u->store, t->name, strlen(t->name));
    ks_part_t *kp = kt ? ks_topic_part(kt, p->partition) : NULL;
    int64_t start = kp ? ks_part_log_start(kp) : 0, end = kp ? ks_part_log_end(kp) : 0;
    int64_t fwd = p->acked < start ? start : p->acked;
    int64_t lag = end > fwd ? end - fwd : 0;
    /* Exact, from storage positions: the log's bytes from the batch holding the first
     * unforwarded offset to the log end (an index lookup, only when something lags). */
    int64_t lag_bytes = 0;
    if (kp && lag > 0 && ks_part_bytes_from(kp, fwd, &lag_bytes) < 0) lag_bytes = -1;
    char err[200];
    clean(err, sizeof err, t->error);
    fprintf(f,
            "part\ttopic=%s\tpartition=%d\tcentral=%s\tcentral_partition=%d\thashed=%d"
            "\tlocal_start=%" PRId64
            "\tlocal_end=%" PRId64 "\tforwarded=%" PRId64 "\tlag_records=%" PRId64
            "\tlag_bytes=%" PRId64 "\tinflight=%u\tforwarded_records=%" PRId64 "\tforwarded_bytes=%" PRId64
            "\tdropped_records=%" PRId64 "\tdropped_ranges=%" PRId64 "\treadback_found=%" PRId64
            "\terror=%s\n",
            t->name, p->partition, t->central, p->central_part, t->hashed && t->ncentral > 0,
            start, end, fwd, lag, lag_bytes,
            p->q_len, p->fwd_records, p->fwd_bytes, p->dropped_records, p->dropped_ranges, p->readback_found,
            err);
}

static const char *mode_name(const up_t *u)
{
    return u->mode_logged < 0 ? "" : u->txn ? "transactions" : "read-back";
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

void up_status_json(up_t *u, FILE *f)
{
    fprintf(f, "{\"link\": {\"state\": ");
    json_str(f, u->link);
    fprintf(f, ", \"mode\": ");
    json_str(f, mode_name(u));
    fprintf(f, ", \"last_commit_ms\": %" PRId64 ", \"commits\": %" PRId64, u->last_commit_ms,
            u->commits);
    fprintf(f, ", \"bootstrap\": ");
    json_str(f, u->cfg->uplink_bootstrap);
    fprintf(f, ", \"last_error\": ");
    json_str(f, u->last_error);
    fprintf(f, ", \"last_success_ms\": %" PRId64 ", \"resyncs\": %" PRId64 "}, \"partitions\": [",
            u->last_success_ms, u->resyncs);
    int n = 0;
    for (up_topic_t *t = u->topics; t; t = t->next) {
        if (t->gone) continue;
        ks_topic_t *kt = ks_topic_find(u->store, t->name, strlen(t->name));
        for (int32_t i = 0; i < t->nparts; i++) {
            up_part_t *p = &t->parts[i];
            ks_part_t *kp = kt ? ks_topic_part(kt, i) : NULL;
            int64_t start = kp ? ks_part_log_start(kp) : 0, end = kp ? ks_part_log_end(kp) : 0;
            int64_t fwd = p->acked < start ? start : p->acked;
            fprintf(f, "%s{\"topic\": ", n++ ? ", " : "");
            json_str(f, t->name);
            fprintf(f, ", \"partition\": %d, \"central\": ", (int)i);
            json_str(f, t->central);
            fprintf(f, ", \"central_partition\": %d, \"hashed\": %s, \"local_end\": %" PRId64
                       ", \"forwarded\": %" PRId64 ", \"lag_records\": %" PRId64
                       ", \"forwarded_bytes\": %" PRId64 ", \"dropped_records\": %" PRId64
                       ", \"error\": ",
                    p->central_part, t->hashed && t->ncentral > 0 ? "true" : "false", end, fwd,
                    end > fwd ? end - fwd : 0, p->fwd_bytes,
                    p->dropped_records);
            json_str(f, t->error);
            fputc('}', f);
        }
    }
    fprintf(f, "]}\n");
}

void up_status_write(up_t *u)
{
    char path[1200], tmp[1210];
    snprintf(path, sizeof path, "%s/%s", u->dir, UP_STATUS_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    char err[520], boot[300], why[300], tid[300];
    clean(err, sizeof err, u->last_error);
    clean(boot, sizeof boot, u->cfg->uplink_bootstrap);
    clean(why, sizeof why, u->mode_reason);
    clean(tid, sizeof tid, u->txn_id);
    fprintf(f,
            "uplink\tstate=%s\tbootstrap=%s\tlast_error=%s\tlast_success_ms=%" PRId64
            "\tresyncs=%" PRId64 "\tsend_errors=%" PRId64 "\tupdated_ms=%" PRId64
            "\tmode=%s\tmode_reason=%s\tlast_commit_ms=%" PRId64 "\tcommits=%" PRId64
            "\ttransactional_id=%s\n",
            u->link, boot, err, u->last_success_ms, u->resyncs, u->send_errors, up_wall_ms(),
            mode_name(u), why, u->last_commit_ms, u->commits, u->txn ? tid : "");
    for (up_topic_t *t = u->topics; t; t = t->next) {
        if (t->gone) continue;
        for (int32_t i = 0; i < t->nparts; i++)
            write_part(f, u, t, &t->parts[i]);
    }
    bool ok = fflush(f) == 0 && !ferror(f);
    if (fclose(f) != 0) ok = false;
    if (ok) rename(tmp, path);
}

/* ------------------------------------------------------------------------------------------ */
/* /metrics families (uplink.c registers them with the metrics room)                          */

static void prom_label(kb_http_req_t *req, const char *v)
{
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') kb_http_printf(req, "\\%c", *v);
        else if (*v == '\n') kb_http_printf(req, "\\n");
        else kb_http_printf(req, "%c", *v);
    }
}

static void prom_part_family(kb_http_req_t *req, up_t *u, const char *name, const char *type,
                             const char *help, int which)
{
    kb_http_printf(req, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (up_topic_t *t = u->topics; t; t = t->next) {
        if (t->gone) continue;
        ks_topic_t *kt = ks_topic_find(u->store, t->name, strlen(t->name));
        for (int32_t i = 0; i < t->nparts; i++) {
            up_part_t *p = &t->parts[i];
            ks_part_t *kp = kt ? ks_topic_part(kt, i) : NULL;
            int64_t start = kp ? ks_part_log_start(kp) : 0, end = kp ? ks_part_log_end(kp) : 0;
            int64_t fwd = p->acked < start ? start : p->acked;
            int64_t v = which == 0 ? (end > fwd ? end - fwd : 0)
                      : which == 1 ? fwd
                      : which == 2 ? p->fwd_bytes
                                   : p->dropped_records;
            kb_http_printf(req, "%s{topic=\"", name);
            prom_label(req, t->name);
            kb_http_printf(req, "\",partition=\"%d\"} %" PRId64 "\n", (int)i, v);
        }
    }
}

void up_prometheus(kb_http_req_t *req, up_t *u)
{
    kb_http_printf(req, "# HELP depot_uplink_link_state The uplink's link state (1 for the "
                        "current one): up, down or resync.\n# TYPE depot_uplink_link_state gauge\n");
    static const char *const states[] = {"up", "down", "resync"};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        kb_http_printf(req, "depot_uplink_link_state{state=\"%s\"} %d\n", states[i],
                       strcmp(u->link, states[i]) == 0);
    kb_http_printf(req, "# HELP depot_uplink_last_success_timestamp_seconds When the central "
                        "cluster last acknowledged a record (0 = never).\n"
                        "# TYPE depot_uplink_last_success_timestamp_seconds gauge\n"
                        "depot_uplink_last_success_timestamp_seconds %.3f\n",
                   (double)u->last_success_ms / 1000.0);
    kb_http_printf(req, "# HELP depot_uplink_resyncs_total Times the uplink replaced its producer "
                        "and read the central tail back.\n# TYPE depot_uplink_resyncs_total counter\n"
                        "depot_uplink_resyncs_total %" PRId64 "\n",
                   u->resyncs);
    kb_http_printf(req, "# HELP depot_uplink_send_errors_total Delivery errors reported by the "
                        "central producer.\n# TYPE depot_uplink_send_errors_total counter\n"
                        "depot_uplink_send_errors_total %" PRId64 "\n",
                   u->send_errors);
    kb_http_printf(req, "# HELP depot_uplink_transactions_total Transactions the uplink "
                        "committed on the central cluster (records and source positions).\n"
                        "# TYPE depot_uplink_transactions_total counter\n"
                        "depot_uplink_transactions_total %" PRId64 "\n"
                        "# HELP depot_uplink_last_commit_timestamp_seconds When the last "
                        "transaction committed (0 = never, or not in transactions mode).\n"
                        "# TYPE depot_uplink_last_commit_timestamp_seconds gauge\n"
                        "depot_uplink_last_commit_timestamp_seconds %.3f\n",
                   u->commits, (double)u->last_commit_ms / 1000.0);
    prom_part_family(req, u, "depot_uplink_lag_records", "gauge",
                     "Records in the local log not yet acknowledged by the central cluster.", 0);
    prom_part_family(req, u, "depot_uplink_forwarded_offset", "gauge",
                     "Next local offset to forward (everything below is acknowledged).", 1);
    prom_part_family(req, u, "depot_uplink_forwarded_bytes_total", "counter",
                     "Record bytes acknowledged by the central cluster since start.", 2);
    prom_part_family(req, u, "depot_uplink_dropped_records_total", "counter",
                     "Records deleted before forwarding (uplink.retention.hold=false).", 3);
}
