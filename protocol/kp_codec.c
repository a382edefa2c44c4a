/* Out-of-line helpers for the generated codecs (see kp_codec.h). */
#include "protocol/kp_codec.h"

void kp_put_tag_frame(kp_buf_t *b, uint32_t tag, size_t start)
{
    if (b->err) return;
    size_t size = b->len - start;
    uint8_t head[16]; /* two varints: a u32 tag (5) and a size (10) */
    size_t n = 0;
    /* the value is usually tiny, so shifting it right is cheaper than a second buffer */
    for (uint64_t v = tag;; v >>= 7) {
        head[n++] = (uint8_t)(v | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80) break;
    }
    for (uint64_t v = size;; v >>= 7) {
        head[n++] = (uint8_t)(v | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80) break;
    }
    if (kp_buf_reserve(b, n)) return;
    memmove(b->data + start + n, b->data + start, size);
    memcpy(b->data + start, head, n);
    b->len += n;
}
