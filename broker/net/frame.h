/*
 * Kafka framing without a socket: a 4-byte big-endian size, then that many bytes. The framer
 * is fed whatever bytes arrive and hands out each complete frame as its own heap buffer.
 *
 * Ownership: a frame passed to on_frame belongs to the callee (free() it). The framer owns
 * only a partially received frame, released by kb_framer_deinit.
 * Thread: one framer per connection, on the loop thread.
 */
#ifndef KB_FRAME_H
#define KB_FRAME_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t hdr[4];
    int hdr_have;
    uint8_t *frame; /* partial frame being filled (owned) */
    size_t len, have, cap;
    size_t max; /* largest accepted frame size */
} kb_framer_t;

/* on_frame returns 0 to continue, 1 to stop after this frame (backpressure), or < 0 to fail. */
typedef int (*kb_frame_fn)(void *ud, uint8_t *frame, size_t len);

void kb_framer_init(kb_framer_t *f, size_t max);
void kb_framer_deinit(kb_framer_t *f);

/*
 * Consumes bytes from data until all are used or on_frame asks to stop; *used says how many
 * were consumed (the caller keeps the rest for later). Returns 0, 1 when stopped,
 * K_ERR_TOOLARGE / K_ERR_MALFORMED for a size <= 0 or > max, K_ERR_NOMEM, or on_frame's
 * negative result.
 */
int kb_framer_feed(kb_framer_t *f, const uint8_t *data, size_t len, size_t *used,
                   kb_frame_fn on_frame, void *ud);

/*
 * Direct reads (no copy through the connection's read buffer): while a frame of known size is
 * incomplete, kb_framer_direct gives the place where its next bytes go (*n > 0: at most the
 * rest of this frame), and kb_framer_commit(f, n, ...) records n bytes read there, handing
 * the frame to on_frame once complete (its result, as kb_framer_feed's). kb_framer_direct
 * returns 0 when no frame is in progress, K_ERR_NOMEM if its buffer could not grow.
 */
int kb_framer_direct(kb_framer_t *f, uint8_t **p, size_t *n);
int kb_framer_commit(kb_framer_t *f, size_t n, kb_frame_fn on_frame, void *ud);

/*
 * Room past the end of the frame in progress (0 if none; *p its start): a read may fill the
 * rest of the frame and go on into it, and the caller moves what landed there (the next
 * frame's first bytes) to its own buffer before kb_framer_commit hands the frame over.
 */
size_t kb_framer_slack(const kb_framer_t *f, uint8_t **p);

#endif
