/*
 * libFuzzer target: the registry's Avro schema parser (broker/registry/avro_parse.c) over
 * arbitrary text. The input is split at its first NUL byte: before it, the schema text; after
 * it, bytes run through the binary validator when the schema parsed. A schema that parses must
 * have both canonical forms and must be able to read its own data (resolution against itself).
 * Its PCF must parse back to the same PCF, except where the specification's PCF cannot say it:
 * a named type put in the null namespace ("namespace": "") under a namespaced one is written
 * as a bare name, which reads back in the enclosing namespace (docs/schema-registry.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/registry/avro.h"

/* Whether any object in the schema's JSON sets the null namespace explicitly. */
static int null_namespace(json_t *v, int depth)
{
    if (depth > 64)
        return 1; /* too deep to tell: do not claim a PCF mismatch */
    if (json_is_object(v)) {
        json_t *ns = json_object_get(v, "namespace");
        if (ns && (json_is_null(ns) || (json_is_string(ns) && json_string_length(ns) == 0)))
            return 1;
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
            if (null_namespace(x, depth + 1))
                return 1;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
            if (null_namespace(x, depth + 1))
                return 1;
    }
    return 0;
}

static int pcf_is_ambiguous(const uint8_t *text, size_t len)
{
    json_t *j = json_loadb((const char *)text, len, JSON_DECODE_ANY, NULL);
    int r = j ? null_namespace(j, 0) : 1;
    json_decref(j);
    return r;
}

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
    char *pcf2 = NULL;
    int ambiguous = pcf_is_ambiguous(data, text_len);
    if (kb_avro_parse(pcf, strlen(pcf), NULL, NULL, 0, &again, err, sizeof err) != 0) {
        if (!ambiguous)
            abort();
    } else {
        pcf2 = kb_avro_pcf(again);
        if (!pcf2 || (!ambiguous && strcmp(pcf, pcf2) != 0))
            abort();
    }
    if (!kb_avro_can_read(s, s, err, sizeof err))
        abort();
    if (nul)
        (void)kb_avro_validate(s, nul + 1, size - text_len - 1, err, sizeof err);
    free(pcf), free(pcf2), free(id);
    kb_avro_schema_free(again);
    kb_avro_schema_free(s);
    return 0;
}
