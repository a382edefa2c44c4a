/*
 * Kafka's record compression codecs, all through their reference libraries: gzip (zlib, gzip
 * wrapper), snappy (libsnappy; xerial framing on output as the Java client writes it, raw or
 * xerial accepted on input since librdkafka may write raw), lz4 (the LZ4 *frame* format, 64 KiB
 * independent blocks as Kafka's Java reader requires), zstd.
 *
 * Both directions append to the caller's kp_buf_t; on failure out->len is put back where it
 * was. Decompression never produces more than max_out bytes: past that it stops with
 * K_ERR_TOOLARGE, so a small batch inflating to gigabytes costs at most max_out of memory.
 * Undecodable input is K_ERR_MALFORMED. Thread-safety: reentrant (no shared state).
 */
#include "protocol/kp_batch.h"

#include <limits.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#define STEP_MIN (64 * 1024)

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16    /* magic, version int32 (1), min compatible version int32 (1) */
#define XERIAL_BLOCK (32 * 1024) /* the Java client's default block size */

/*
 * Reserves the next output window for a streaming decoder: at most max_out + 1 bytes in total
 * are ever offered, so overflowing max_out is detectable without unbounded growth.
 */
static int out_window(kp_buf_t *out, size_t start, size_t max_out, size_t hint, size_t *step)
{
    size_t produced = out->len - start;
    size_t room = (max_out == SIZE_MAX ? SIZE_MAX : max_out + 1) - produced;
    size_t want = out->cap - out->len;
    if (want < STEP_MIN) want = hint > STEP_MIN ? hint : STEP_MIN;
    if (want > room) want = room;
    if (kp_buf_reserve(out, want)) return K_ERR_NOMEM;
    *step = want;
    return 0;
}

/* ---- gzip ------------------------------------------------------------------------------- */

static int gzip_compress(const uint8_t *in, size_t len, int level, kp_buf_t *out)
{
    if (len > UINT_MAX) return K_ERR_TOOLARGE;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (level == KP_LEVEL_DEFAULT || level < -1 || level > 9) level = Z_DEFAULT_COMPRESSION;
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return K_ERR_NOMEM;
    size_t bound = deflateBound(&z, (uLong)len);
    int rc = kp_buf_reserve(out, bound);
    if (!rc) {
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)len;
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)bound;
        rc = deflate(&z, Z_FINISH) == Z_STREAM_END ? 0 : K_ERR_NOMEM;
        if (!rc) out->len += bound - z.avail_out;
    }
    deflateEnd(&z);
    return rc;
}

static int gzip_decompress(const uint8_t *in, size_t len, size_t max_out, kp_buf_t *out)
{
    if (len > UINT_MAX) return K_ERR_TOOLARGE;
    size_t start = out->len;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) /* gzip or zlib wrapper */
        return K_ERR_NOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    int rc = 0;
    for (;;) {
        size_t step;
        if ((rc = out_window(out, start, max_out, len * 4, &step))) break;
        if (step > UINT_MAX) step = UINT_MAX;
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)step;
        int zr = inflate(&z, Z_NO_FLUSH);
        size_t n = step - z.avail_out;
        out->len += n;
        if (out->len - start > max_out) {
            rc = K_ERR_TOOLARGE;
            break;
        }
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0) break;
            inflateReset(&z); /* another gzip member follows, as GZIPInputStream allows */
            continue;
        }
        if ((zr != Z_OK && zr != Z_BUF_ERROR) || (z.avail_in == 0 && z.avail_out != 0) ||
            (zr == Z_BUF_ERROR && n == 0)) {
            rc = K_ERR_MALFORMED;
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}

/* ---- snappy ----------------------------------------------------------------------------- */

static int snappy_block_compress(const uint8_t *in, size_t len, kp_buf_t *out)
{
    size_t bound = snappy_max_compressed_length(len);
    if (kp_buf_reserve(out, bound)) return K_ERR_NOMEM;
    size_t n = bound;
    if (snappy_compress((const char *)in, len, (char *)out->data + out->len, &n) != SNAPPY_OK)
        return K_ERR_NOMEM;
    out->len += n;
    return 0;
}

static int snappy_xerial_compress(const uint8_t *in, size_t len, kp_buf_t *out)
{
    kp_put_raw(out, xerial_magic, sizeof xerial_magic);
    kp_put_i32(out, 1);
    kp_put_i32(out, 1);
    for (size_t pos = 0; pos < len && !out->err;) {
        size_t n = len - pos < XERIAL_BLOCK ? len - pos : XERIAL_BLOCK;
        size_t at = kp_put_i32(out, 0);
        if (out->err || snappy_block_compress(in + pos, n, out)) return K_ERR_NOMEM;
        kp_buf_patch_i32(out, at, (int32_t)(out->len - at - 4));
        pos += n;
    }
    return out->err;
}

static int snappy_block_decompress(const uint8_t *in, size_t len, size_t start, size_t max_out,
                                   kp_buf_t *out)
{
    size_t n;
    if (snappy_uncompressed_length((const char *)in, len, &n) != SNAPPY_OK) return K_ERR_MALFORMED;
    if (n > max_out - (out->len - start)) return K_ERR_TOOLARGE;
    if (kp_buf_reserve(out, n)) return K_ERR_NOMEM;
    if (snappy_uncompress((const char *)in, len, (char *)out->data + out->len, &n) != SNAPPY_OK)
        return K_ERR_MALFORMED;
    out->len += n;
    return 0;
}

static int snappy_decompress_any(const uint8_t *in, size_t len, size_t max_out, kp_buf_t *out)
{
    size_t start = out->len;
    if (len < XERIAL_HEADER_SIZE || memcmp(in, xerial_magic, sizeof xerial_magic) != 0)
        return snappy_block_decompress(in, len, start, max_out, out);
    kp_reader_t r;
    kp_reader_init(&r, in + XERIAL_HEADER_SIZE, len - XERIAL_HEADER_SIZE);
    while (kp_remaining(&r) > 0) {
        int32_t n = kp_read_i32(&r);
        const uint8_t *chunk = n >= 0 ? kp_read_raw(&r, (size_t)n) : NULL;
        if (!chunk) return K_ERR_MALFORMED;
        int rc = snappy_block_decompress(chunk, (size_t)n, start, max_out, out);
        if (rc) return rc;
    }
    return 0;
}

/* ---- lz4 -------------------------------------------------------------------------------- */

static int lz4_compress(const uint8_t *in, size_t len, int level, kp_buf_t *out)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    /* The default stays liblz4's fast mode (what clients use); a level asked for is LZ4HC's. */
    prefs.compressionLevel = level == KP_LEVEL_DEFAULT ? 0 : level;
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t bound = LZ4F_compressFrameBound(len, &prefs);
    if (kp_buf_reserve(out, bound)) return K_ERR_NOMEM;
    size_t n = LZ4F_compressFrame(out->data + out->len, bound, in, len, &prefs);
    if (LZ4F_isError(n)) return K_ERR_NOMEM;
    out->len += n;
    return 0;
}

static int lz4_decompress(const uint8_t *in, size_t len, size_t max_out, kp_buf_t *out)
{
    size_t start = out->len;
    LZ4F_dctx *dctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) return K_ERR_NOMEM;
    int rc = 0;
    size_t pos = 0;
    for (;;) {
        size_t step;
        if ((rc = out_window(out, start, max_out, len * 4, &step))) break;
        size_t dst_n = step, src_n = len - pos;
        size_t hint = LZ4F_decompress(dctx, out->data + out->len, &dst_n, in + pos, &src_n, NULL);
        if (LZ4F_isError(hint)) {
            rc = K_ERR_MALFORMED;
            break;
        }
        pos += src_n;
        out->len += dst_n;
        if (out->len - start > max_out) {
            rc = K_ERR_TOOLARGE;
            break;
        }
        if (hint == 0 && pos == len) break; /* frame complete, input used up */
        if (src_n == 0 && dst_n == 0) {
            rc = K_ERR_MALFORMED; /* truncated: the decoder wants input we do not have */
            break;
        }
    }
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

/* ---- zstd ------------------------------------------------------------------------------- */

static int zstd_compress(const uint8_t *in, size_t len, int level, kp_buf_t *out)
{
    size_t bound = ZSTD_compressBound(len);
    if (kp_buf_reserve(out, bound)) return K_ERR_NOMEM;
    if (level == KP_LEVEL_DEFAULT) level = 3; /* Kafka's default */
    size_t n = ZSTD_compress(out->data + out->len, bound, in, len, level);
    if (ZSTD_isError(n)) return K_ERR_NOMEM;
    out->len += n;
    return 0;
}

static int zstd_decompress(const uint8_t *in, size_t len, size_t max_out, kp_buf_t *out)
{
    size_t start = out->len;
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds) return K_ERR_NOMEM;
    ZSTD_inBuffer ib = {in, len, 0};
    int rc = 0;
    size_t ret = 1;
    for (;;) {
        size_t step;
        if ((rc = out_window(out, start, max_out, len * 4, &step))) break;
        ZSTD_outBuffer ob = {out->data + out->len, step, 0};
        size_t in_before = ib.pos;
        ret = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(ret)) {
            rc = K_ERR_MALFORMED;
            break;
        }
        out->len += ob.pos;
        if (out->len - start > max_out) {
            rc = K_ERR_TOOLARGE;
            break;
        }
        if (ret == 0 && ib.pos == ib.size) break;
        if (ib.pos == in_before && ob.pos == 0) {
            rc = K_ERR_MALFORMED; /* truncated frame (or empty input) */
            break;
        }
    }
    ZSTD_freeDStream(ds);
    return rc;
}

/* ---- dispatch --------------------------------------------------------------------------- */

/* The codecs write at out->data + out->len: make sure data is never NULL (NULL + 0 is UB). */
static int out_ready(kp_buf_t *out)
{
    return kp_buf_reserve(out, 1);
}

int kp_compress(int codec, const uint8_t *in, size_t len, kp_buf_t *out)
{
    return kp_compress_level(codec, KP_LEVEL_DEFAULT, in, len, out);
}

int kp_compress_level(int codec, int level, const uint8_t *in, size_t len, kp_buf_t *out)
{
    size_t start = out->len;
    int rc;
    if (out_ready(out)) return K_ERR_NOMEM;
    switch (codec) {
    case KP_COMPRESSION_NONE:
        kp_put_raw(out, in, len);
        rc = out->err;
        break;
    case KP_COMPRESSION_GZIP:
        rc = gzip_compress(in, len, level, out);
        break;
    case KP_COMPRESSION_SNAPPY:
        rc = snappy_xerial_compress(in, len, out);
        break;
    case KP_COMPRESSION_LZ4:
        rc = lz4_compress(in, len, level, out);
        break;
    case KP_COMPRESSION_ZSTD:
        rc = zstd_compress(in, len, level, out);
        break;
    default:
        return K_ERR_UNSUPPORTED;
    }
    if (rc && !out->err) out->len = start;
    return rc;
}

int kp_decompress(int codec, const uint8_t *in, size_t len, size_t max_out, kp_buf_t *out)
{
    size_t start = out->len;
    int rc;
    if (out_ready(out)) return K_ERR_NOMEM;
    switch (codec) {
    case KP_COMPRESSION_NONE:
        if (len > max_out) return K_ERR_TOOLARGE;
        kp_put_raw(out, in, len);
        rc = out->err;
        break;
    case KP_COMPRESSION_GZIP:
        rc = gzip_decompress(in, len, max_out, out);
        break;
    case KP_COMPRESSION_SNAPPY:
        rc = snappy_decompress_any(in, len, max_out, out);
        break;
    case KP_COMPRESSION_LZ4:
        rc = lz4_decompress(in, len, max_out, out);
        break;
    case KP_COMPRESSION_ZSTD:
        rc = zstd_decompress(in, len, max_out, out);
        break;
    default:
        return K_ERR_UNSUPPORTED;
    }
    if (rc && !out->err) out->len = start;
    return rc;
}
