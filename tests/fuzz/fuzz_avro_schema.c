/*
 * libFuzzer target: the registry's Avro schema parser (broker/registry/avro_parse.c) over
 * arbitrary text. The input is split at its first NUL byte: before it, the schema text; after
 * it, bytes run through the binary validator when the schema parsed. A schema that parses must
 * have both canonical forms and must be able to read its own data (resolution against itself).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/registry/avro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    kb_avro_schema_t *s = NULL;
    char err[256];
    if (kb_avro_parse((const char *)data, text_len, NULL, NULL, 0, &s, err, sizeof err) != 0)
        return 0;
    char *pcf = kb_avro_pcf(s), *id = kb_avro_identity(s);
    if (!pcf || !id)
        abort();
    /* The canonical form is itself a schema with the same canonical form. */
    kb_avro_schema_t *again = NULL;
    if (kb_avro_parse(pcf, strlen(pcf), NULL, NULL, 0, &again, err, sizeof err) != 0)
        abort();
    char *pcf2 = kb_avro_pcf(again);
    if (!pcf2 || strcmp(pcf, pcf2) != 0)
        abort();
    if (!kb_avro_can_read(s, s, err, sizeof err))
        abort();
    if (nul)
        (void)kb_avro_validate(s, nul + 1, size - text_len - 1, err, sizeof err);
    free(pcf), free(pcf2), free(id);
    kb_avro_schema_free(again);
    kb_avro_schema_free(s);
    return 0;
}
