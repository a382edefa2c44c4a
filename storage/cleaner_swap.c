/*
 * The crash-safe swap of a cleaner pass (step 4, see cleaner.h) and its recovery at open.
 *
 * When the swap starts, every cleaned segment is on disk beside the live ones as
 * <base>.{log,index,timeindex}.cleaned, fsynced, and the directory fsynced. Then:
 *   a. under mu: the inputs must still be the partition's first segments (else the pass is
 *      given up); p->swapping is set, so nothing removes a segment of p until the swap is
 *      done; the recovery-point checkpoint is rewritten if it is still below the cleaned
 *      range (recovery then never re-scans the cleaned segments as unflushed data).
 *   b. without the lock: the journal <partition>/cleaner-swap is written atomically (tmp,
 *      fsync, rename, directory fsync). This is the commit point.
 *   c. under mu: each <base>.*.cleaned is renamed over <base>.* (replacing the group's first
 *      input in one atomic rename), the group's other inputs are renamed to *.deleted for
 *      the flusher to unlink, and the partition's segment array is updated, so the loop never
 *      sees a file and an in-memory segment that disagree.
 *   d. without the lock: directory fsync, journal unlinked, directory fsync.
 *
 * Journal, text, one item per line:
 *     depot-cleaner-swap 1
 *     k <base>        a cleaned segment: rename <base>.*.cleaned over <base>.*
 *     d <base>        a replaced input: remove <base>.{log,index,timeindex}
 *     end
 *
 * Recovery (ks_cleaner_recover, before the partition's segments are listed at open): a valid
 * journal is replayed (every step is idempotent: a missing *.cleaned was renamed already, a
 * missing input was removed already), then removed; without a journal the pass had not
 * committed and every *.cleaned file is deleted. Either way the directory is left with one
 * consistent set of segments: the old one or the cleaned one, never a mix.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/cleaner.h"

#define JOURNAL_HEAD "depot-cleaner-swap 1\n"

static const char *const sfx[3] = {".log", ".index", ".timeindex"};

/* a: still the same inputs? Then the partition is ours until swapping ends. */
static int begin_swap(cl_job_t *j)
{
    ks_store_t *s = j->s;
    ks_part_t *p = j->p;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (p->clean_abort || s->cl_stop || p->nsegs <= j->nrewrite)
        rc = K_ERR_AGAIN;
    for (int i = 0; rc == 0 && i < j->nrewrite; i++)
        if (p->segs[i] != j->in[i].seg)
            rc = K_ERR_AGAIN;
    if (rc == 0) {
        p->swapping = true;
        if (p->rp_written < j->in[j->nrewrite - 1].next)
            rc = ks_ckpt_write(s, p->dir, KS_RP_FILE, true);
        if (rc)
            p->swapping = false;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int write_journal(cl_job_t *j)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_put_raw(&b, JOURNAL_HEAD, strlen(JOURNAL_HEAD));
    char line[64];
    for (int g = 0; g < j->nout; g++) {
        const cl_out_t *o = &j->out[g];
        int n = snprintf(line, sizeof line, "k %" PRId64 "\n", o->seg->base);
        kp_put_raw(&b, line, (size_t)n);
        for (int i = o->from + 1; i < o->to; i++) {
            n = snprintf(line, sizeof line, "d %" PRId64 "\n", j->in[i].base);
            kp_put_raw(&b, line, (size_t)n);
        }
    }
    kp_put_raw(&b, "end\n", 4);
    /* No store: ks_write_atomic would log, and this is not the loop thread's call. */
    int rc = b.err ? K_ERR_NOMEM : ks_write_atomic(NULL, j->path, KS_CLEAN_JOURNAL, b.data, b.len);
    kp_buf_deinit(&b);
    return rc;
}

/* Frees an input segment's memory, or leaves it to the graveyard while a reader pins it. */
static void let_go(ks_store_t *s, ks_seg_t *seg)
{
    if (ks_seg_pinned(seg)) {
        seg->doomed = true;
        seg->grave_next = s->graveyard;
        s->graveyard = seg;
    } else {
        ks_seg_free(s, seg);
    }
}

/* c, for one group: the renames, then the segment array. Under mu. */
static int swap_group(cl_job_t *j, cl_out_t *o)
{
    ks_store_t *s = j->s;
    ks_part_t *p = j->p;
    ks_seg_t *first = j->in[o->from].seg;
    for (int k = 0; k < 3; k++) {
        /* The input's fd keeps reading the old file if a read holds it right now. */
        ks_file_close(s, &first->f[k]);
        char from[KS_PATH_MAX], to[KS_PATH_MAX];
        cl_output_path(j, o->seg->base, k, true, from, sizeof from);
        cl_output_path(j, o->seg->base, k, false, to, sizeof to);
        if (ks_io.rename(from, to) != 0) {
            int e = errno;
            s->st.io_errors++;
            ks_log(s, KS_LOG_ERROR, "cleaner: rename %s failed: %s; the partition refuses "
                   "writes until the store is reopened (the swap then completes)", from,
                   strerror(e));
            return ks_errno_status(e);
        }
    }
    int64_t in_bytes = 0, in_log = 0;
    for (int i = o->from; i < o->to; i++) {
        ks_seg_t *seg = j->in[i].seg;
        in_bytes += seg->size + seg->idx_size + seg->tidx_size;
        in_log += seg->size;
        if (i > o->from)
            ks_seg_retire(s, seg);
        let_go(s, seg);
    }
    int64_t out_bytes = o->seg->size + o->seg->idx_size + o->seg->tidx_size;
    p->bytes += out_bytes - in_bytes;
    p->log_bytes += o->seg->size - in_log;
    s->st.bytes_on_disk += out_bytes - in_bytes;
    return 0;
}

/* The in-memory segment array: segs[0 .. nrewrite) become the outputs. Under mu. */
static void swap_array(cl_job_t *j, int done)
{
    ks_part_t *p = j->p;
    int nin = done ? j->out[done - 1].to : 0;
    p->seg_gen++; /* segments replaced: the read cache's positions are stale */
    for (int g = 0; g < done; g++) {
        p->segs[g] = j->out[g].seg;
        j->out[g].seg = NULL; /* owned by the partition now */
    }
    if (nin > done) {
        memmove(p->segs + done, p->segs + nin, (size_t)(p->nsegs - nin) * sizeof *p->segs);
        p->nsegs -= nin - done;
    }
}

static void end_journal(cl_job_t *j)
{
    char path[KS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", j->path, KS_CLEAN_JOURNAL);
    /* The renames must be durable before the journal that can redo them goes, and the
     * journal's removal before a later pass writes new *.cleaned files. */
    if (ks_io.fsync_dir(j->path) != 0 || ks_io.unlink(path) != 0 ||
        ks_io.fsync_dir(j->path) != 0)
        ks_log(j->s, KS_LOG_WARN, "cleaner: %s: finishing the swap journal failed: %s (it is "
               "replayed at the next open, harmlessly)", path, strerror(errno));
}

int cl_commit(cl_job_t *j)
{
    int rc = begin_swap(j);
    if (rc)
        return rc;
    rc = write_journal(j);
    ks_store_t *s = j->s;
    pthread_mutex_lock(&s->mu);
    int done = 0;
    if (rc) {
        ks_log(s, KS_LOG_ERROR, "cleaner: %s: writing the swap journal failed: %s", j->path,
               k_strerror(rc));
    } else {
        j->committed = true;
        for (; done < j->nout && rc == 0; done++)
            rc = swap_group(j, &j->out[done]);
        if (rc) {
            done--; /* that group's renames may be half done: the journal finishes them */
            j->p->failed = true;
            j->p->fail_errno = EIO;
        }
        swap_array(j, done);
    }
    j->p->swapping = false;
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        end_journal(j);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Recovery at open                                                                             */

static int replay_line(ks_store_t *s, ks_part_t *p, char op, int64_t base)
{
    char from[KS_PATH_MAX + 16], to[KS_PATH_MAX];
    for (int k = 0; k < 3; k++) {
        snprintf(to, sizeof to, "%s/%020" PRId64 "%s", p->path, base, sfx[k]);
        if (op == 'd') {
            if (ks_io.unlink(to) != 0 && errno != ENOENT)
                return K_ERR_IO;
            continue;
        }
        snprintf(from, sizeof from, "%s%s", to, KS_CLEAN_SFX);
        struct stat st;
        if (ks_io.stat(from, &st) == 0 && ks_io.rename(from, to) != 0) {
            ks_log(s, KS_LOG_ERROR, "%s: rename failed: %s", from, strerror(errno));
            return K_ERR_IO;
        }
    }
    return 0;
}

/* Replays a committed journal. 0 also when there is none or it is not a whole journal
 * (then it never committed: ks_write_atomic renames only a complete, fsynced file). */
static int replay_journal(ks_store_t *s, ks_part_t *p, bool *replayed)
{
    char path[KS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", p->path, KS_CLEAN_JOURNAL);
    char *text;
    *replayed = false;
    int rc = ks_read_small(path, &text, NULL);
    if (rc == K_ERR_NOENT)
        return 0;
    if (rc)
        return rc;
    size_t hl = strlen(JOURNAL_HEAD), n = strlen(text);
    bool whole = strncmp(text, JOURNAL_HEAD, hl) == 0 && n >= 4 &&
                 strcmp(text + n - 4, "end\n") == 0;
    for (char *line = text + hl; whole && rc == 0 && *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        if ((line[0] == 'k' || line[0] == 'd') && line[1] == ' ')
            rc = replay_line(s, p, line[0], strtoll(line + 2, NULL, 10));
        line = nl + 1;
    }
    free(text);
    if (rc)
        return rc;
    if (whole)
        ks_log(s, KS_LOG_WARN, "%s: finishing a log clean interrupted by a stop", p->path);
    else
        ks_log(s, KS_LOG_WARN, "%s: ignoring an incomplete cleaner journal", p->path);
    if (ks_io.fsync_dir(p->path) != 0 || ks_io.unlink(path) != 0 ||
        ks_io.fsync_dir(p->path) != 0)
        return K_ERR_IO;
    *replayed = whole;
    return 0;
}

int ks_cleaner_recover(ks_store_t *s, ks_part_t *p)
{
    bool replayed;
    int rc = replay_journal(s, p, &replayed);
    if (rc) {
        ks_log(s, KS_LOG_ERROR, "%s: cannot finish an interrupted log clean: %s", p->path,
               k_strerror(rc));
        return rc;
    }
    DIR *d = opendir(p->path);
    if (!d)
        return 0; /* list_segments reports it */
    struct dirent *e;
    int removed = 0;
    size_t sl = strlen(KS_CLEAN_SFX);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > sl && strcmp(e->d_name + len - sl, KS_CLEAN_SFX) == 0) {
            char path[KS_PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", p->path, e->d_name);
            removed += ks_io.unlink(path) == 0;
        }
    }
    closedir(d);
    if (removed) {
        ks_log(s, KS_LOG_WARN, "%s: discarded %d files of an unfinished log clean", p->path,
               removed);
        ks_io.fsync_dir(p->path);
    }
    (void)replayed;
    return 0;
}
