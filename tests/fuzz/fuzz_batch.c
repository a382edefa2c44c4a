/*
 * libFuzzer target: RecordBatch v2 validation, the batch walk and record iteration (with
 * decompression bounded to 1 MiB) over arbitrary bytes. Iteration also runs on batches that
 * fail the CRC, since readers of already-validated data skip that check.
 */
#include <stddef.h>
#include <stdint.h>

#include "protocol/kp_batch.h"

static void walk_records(const uint8_t *p, size_t len)
{
    kp_records_t it;
    kp_record_t rec;
    if (kp_records_init(&it, p, len, 1u << 20) == 0) {
        while (kp_records_next(&it, &rec) == 1) {
            kp_reader_t hr;
            kp_record_header_t h;
            kp_reader_init(&hr, rec.headers, rec.headers_len);
            while (kp_record_header_next(&hr, &h) == 1)
                ;
        }
    }
    kp_records_deinit(&it);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kp_batch_hdr_t h;
    (void)kp_batch_validate(data, size, &h);
    (void)kp_batch_size(data, size);
    kp_batch_iter_t bi;
    const uint8_t *b;
    size_t blen;
    kp_batch_iter_init(&bi, data, size, false);
    while (kp_batch_iter_next(&bi, &b, &blen) == 1)
        walk_records(b, blen);
    walk_records(data, size);
    return 0;
}
