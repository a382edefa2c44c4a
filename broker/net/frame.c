/* Frame splitter behind frame.h. */
#include "broker/net/frame.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/k_status.h"

/* A frame's buffer starts at this size and doubles as bytes arrive, so a peer announcing a
 * huge frame and then stalling does not pin the whole announced size. A frame up to
 * FRAME_ONCE (most Produce requests: clients cap them at 1 MiB) gets its whole buffer at
 * once, so its bytes are read straight into it (kb_framer_direct) and never moved again. */
#define FRAME_FIRST_CAP (64 * 1024)
#define FRAME_ONCE (1024 * 1024)
/* Such a frame of at least SLACK_MIN bytes also gets FRAME_SLACK bytes past its end, so the
 * read that completes it can take the start of the next frame too (kb_framer_slack): one read
 * per pipelined Produce instead of two. Small frames arrive several per read anyway. */
#define SLACK_MIN (16 * 1024)
#define FRAME_SLACK 1024

/* The most the current frame's buffer may hold. */
static size_t cap_limit(const kb_framer_t *f)
{
    return f->len + (f->len >= SLACK_MIN && f->len <= FRAME_ONCE ? FRAME_SLACK : 0);
}

void kb_framer_init(kb_framer_t *f, size_t max)
{
    memset(f, 0, sizeof *f);
    f->max = max;
}

void kb_framer_deinit(kb_framer_t *f)
{
    free(f->frame);
    f->frame = NULL;
    f->hdr_have = 0;
    f->have = f->len = f->cap = 0;
}

static int grow(kb_framer_t *f, size_t need)
{
    if (need <= f->cap) return 0;
    size_t cap = f->cap ? f->cap : FRAME_FIRST_CAP;
    while (cap < need)
        cap *= 2;
    if (cap > cap_limit(f)) cap = cap_limit(f);
    uint8_t *p = realloc(f->frame, cap);
    if (!p) return K_ERR_NOMEM;
    f->frame = p;
    f->cap = cap;
    return 0;
}

/* The complete frame goes to on_frame, which owns it from here. */
static int hand_over(kb_framer_t *f, kb_frame_fn on_frame, void *ud)
{
    uint8_t *frame = f->frame;
    size_t flen = f->len;
    f->frame = NULL;
    f->hdr_have = 0;
    f->have = f->len = f->cap = 0;
    return on_frame(ud, frame, flen);
}

int kb_framer_feed(kb_framer_t *f, const uint8_t *data, size_t len, size_t *used,
                   kb_frame_fn on_frame, void *ud)
{
    size_t pos = 0;
    int rc = 0;
    while (pos < len) {
        if (f->hdr_have < 4) {
            f->hdr[f->hdr_have++] = data[pos++];
            if (f->hdr_have < 4) continue;
            int32_t size = (int32_t)(((uint32_t)f->hdr[0] << 24) | ((uint32_t)f->hdr[1] << 16) |
                                     ((uint32_t)f->hdr[2] << 8) | f->hdr[3]);
            if (size <= 0) {
                rc = K_ERR_MALFORMED;
                break;
            }
            if ((size_t)size > f->max) {
                rc = K_ERR_TOOLARGE;
                break;
            }
            f->len = (size_t)size;
            f->have = 0;
            if (f->len <= FRAME_ONCE && (rc = grow(f, cap_limit(f))) < 0) break;
        }
        size_t take = len - pos;
        if (take > f->len - f->have) take = f->len - f->have;
        if (take > 0) {
            if ((rc = grow(f, f->have + take)) < 0) break;
            memcpy(f->frame + f->have, data + pos, take);
            f->have += take;
            pos += take;
        }
        if (f->have < f->len) continue;
        rc = hand_over(f, on_frame, ud);
        if (rc != 0) break;
    }
    *used = pos;
    return rc;
}

int kb_framer_direct(kb_framer_t *f, uint8_t **p, size_t *n)
{
    *n = 0;
    if (f->hdr_have < 4 || f->have >= f->len)
        return 0;
    size_t want = f->len - f->have;
    if (want > FRAME_FIRST_CAP && f->cap - f->have < FRAME_FIRST_CAP)
        want = FRAME_FIRST_CAP; /* grow step by step past FRAME_ONCE, as feed does */
    int rc = grow(f, f->have + want);
    if (rc < 0)
        return rc;
    *p = f->frame + f->have;
    *n = (f->cap < f->len ? f->cap : f->len) - f->have;
    return 0;
}

size_t kb_framer_slack(const kb_framer_t *f, uint8_t **p)
{
    if (f->hdr_have < 4 || f->have >= f->len || f->cap <= f->len)
        return 0;
    *p = f->frame + f->len;
    return f->cap - f->len;
}

int kb_framer_commit(kb_framer_t *f, size_t n, kb_frame_fn on_frame, void *ud)
{
    f->have += n;
    return f->have < f->len ? 0 : hand_over(f, on_frame, ud);
}
