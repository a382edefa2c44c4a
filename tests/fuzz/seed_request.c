/*
 * Writes the fuzz_request seed corpus: every golden request body (kafka-python and
 * @platformatic/kafka fixtures, tests/protocol/fixtures/) framed with the request header
 * version its API and version call for. Usage: seed_request <dir>. Built by run.sh.
 */
#include <stdio.h>
#include <stdlib.h>

#include "protocol/kp_header.h"
#include "tests/protocol/fixtures/kp_fixtures.h"
#include "tests/protocol/fixtures/kp_fixtures_plt.h"

static int write_seed(const char *dir, const kp_fixture_t *f)
{
    kp_buf_t b;
    kp_buf_init(&b);
    kp_req_header_t h = {f->key, f->version, 7, kp_str("seed")};
    kp_req_header_encode(&b, &h);
    kp_put_raw(&b, f->data, f->len);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%d-%d.bin", dir, f->name, f->key, f->version);
    FILE *fp = fopen(path, "wb");
    int ok = fp && !b.err && fwrite(b.data, 1, b.len, fp) == b.len;
    if (fp) fclose(fp);
    kp_buf_deinit(&b);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seed_request <dir>\n");
        return 2;
    }
    int n = 0;
    for (size_t i = 0; i < sizeof kp_fixtures / sizeof kp_fixtures[0]; i++)
        if (!kp_fixtures[i].is_response && write_seed(argv[1], &kp_fixtures[i]) == 0) n++;
    for (size_t i = 0; i < sizeof kp_plt_fixtures / sizeof kp_plt_fixtures[0]; i++)
        if (write_seed(argv[1], &kp_plt_fixtures[i]) == 0) n++;
    printf("wrote %d seeds to %s\n", n, argv[1]);
    return n > 0 ? 0 : 1;
}
