/* The REST layer's shared pieces (reg_api.c: routing, replies, reads; reg_api_write.c). */
#ifndef KB_REG_API_H
#define KB_REG_API_H

#include "broker/registry/reg_int.h"

#define REG_MAX_SEGS 8

/* One request being answered. Segments are percent-decoded copies owned by the call. */
typedef struct {
    kb_registry_t *r;
    const kb_reg_request_t *req;
    kb_reg_reply_fn reply;
    void *ctx;
    char *seg[REG_MAX_SEGS];
    int nseg;
} reg_call_t;

/* Each of these answers the client exactly once. body is consumed (NULL = out of memory). */
void reg_reply_json(reg_call_t *c, int status, json_t *body);
void reg_reply_error(reg_call_t *c, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

bool reg_query_true(reg_call_t *c, const char *name);
/* The body as a JSON object, or NULL after answering 400. */
json_t *reg_body(reg_call_t *c);
/* "latest"/-1 -> -1, 1..2^31-1; else answers 42202 and returns K_ERR_INVAL. */
int reg_parse_version(reg_call_t *c, const char *text, int32_t *out);
/* These answer 40401 / 40402 (or 42202) and return NULL when not found. */
reg_subject_t *reg_need_subject(reg_call_t *c, const char *name, bool include_deleted);
reg_version_t *reg_need_version(reg_call_t *c, reg_subject_t *s, const char *vtext,
                                bool include_deleted);
json_t *reg_version_json(const reg_subject_t *s, const reg_version_t *v, const reg_schema_t *sc);

/* reg_api_write.c: POST/PUT/DELETE endpoints; *known as in the read router. */
bool reg_route_writes(reg_call_t *c, const char *method, bool *known);
/* Writes the records and answers `answer` once they are durable (500 if they cannot be
 * written). Consumes keys, values and answer. */
void reg_write_then_reply(reg_call_t *c, json_t **keys, json_t **values, int n, json_t *answer);
/* A subject name fit to store; else answers 42208 and returns false. */
bool reg_subject_ok(reg_call_t *c, const char *subject);

/* reg_mode.c: GET|PUT|DELETE /mode[/{subject}] and the mode checks of the writes. */
void reg_mode_get(reg_call_t *c, const char *subject);
void reg_mode_put(reg_call_t *c, const char *subject);
void reg_mode_delete(reg_call_t *c, const char *subject);
/* False (after answering 42205) when subject is READONLY: no registration or deletion. */
bool reg_mode_writable(reg_call_t *c, const char *subject);

#endif
