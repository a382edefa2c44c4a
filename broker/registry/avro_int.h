/* Internals shared by the broker/registry/avro_*.c files (not for other rooms). */
#ifndef KB_AVRO_INT_H
#define KB_AVRO_INT_H

#include "broker/registry/avro.h"

struct kb_avro_schema {
    kb_avro_node_t *root;
    kb_avro_node_t **nodes; /* every node allocated for this schema, freed together */
    int n_nodes, cap_nodes;
    kb_avro_node_t **named; /* record/enum/fixed nodes, in definition order */
    int n_named, cap_named;
};

/* snprintf into err unless a message is already there (the innermost reason wins). */
void kb_avro_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether a named-type node is defined by `name` (its fullname or an alias). */
bool kb_avro_is_named(kb_avro_type_t t);

#endif
