/*
 * Confluent's registry modes: GET|PUT|DELETE /mode and /mode/{subject}, kept as MODE records
 * in `_schemas` (key {keytype: MODE, subject, magic: 0}, value {mode}), so they survive a
 * restart and a backup tool sees them where Confluent puts them.
 *
 *   READWRITE  the default: everything as usual.
 *   READONLY   registering and deleting are refused with 42205; reads, lookups,
 *              compatibility tests and configuration changes go on.
 *   IMPORT     registering takes the schema's id (and version) from the request, as a
 *              migration from another registry needs, without compatibility checks
 *              (reg_api_write.c). Switching to IMPORT needs an empty registry (for the
 *              global mode) or an empty subject, i.e. no live versions, unless ?force=true.
 *
 * A subject's own mode wins over the global one. Loop thread.
 */
#include <string.h>

#include "broker/registry/reg_api.h"

void reg_mode_get(reg_call_t *c, const char *subject)
{
    reg_mode_t mode = c->r->global_mode;
    if (subject) {
        reg_subject_t *s = reg_subject_find(c->r, subject);
        if (s && s->has_mode) {
            mode = s->mode;
        } else if (!reg_query_true(c, "defaultToGlobal")) {
            reg_reply_error(c, 404, 40409,
                            "Subject '%.300s' does not have subject-level mode configured",
                            subject);
            return;
        }
    }
    reg_reply_json(c, 200, json_pack("{s:s}", "mode", reg_mode_name(mode)));
}

/* Live versions under subject, or under any subject when subject is NULL. */
static bool has_live(kb_registry_t *r, const char *subject)
{
    if (subject) {
        reg_subject_t *s = reg_subject_find(r, subject);
        return s && reg_subject_live(s) > 0;
    }
    for (int i = 0; i < r->n_subjects; i++)
        if (reg_subject_live(r->subjects[i]) > 0)
            return true;
    return false;
}

void reg_mode_put(reg_call_t *c, const char *subject)
{
    if (subject && !reg_subject_ok(c, subject))
        return;
    json_t *body = reg_body(c);
    if (!body)
        return;
    reg_mode_t mode;
    int rc = reg_mode_parse(json_string_value(json_object_get(body, "mode")), &mode);
    json_decref(body);
    if (rc < 0) {
        reg_reply_error(c, 422, 42204,
                        "Invalid mode. Valid values are READWRITE, READONLY and IMPORT");
        return;
    }
    reg_subject_t *s = subject ? reg_subject_find(c->r, subject) : NULL;
    reg_mode_t now = subject ? reg_subject_mode(c->r, s) : c->r->global_mode;
    if (mode == REG_MODE_IMPORT && now != REG_MODE_IMPORT && !reg_query_true(c, "force") &&
        has_live(c->r, subject)) {
        reg_reply_error(c, 422, 42205, "Cannot import since found existing subjects");
        return;
    }
    json_t *keys[1] = {reg_key_mode(subject)};
    json_t *values[1] = {json_pack("{s:s}", "mode", reg_mode_name(mode))};
    reg_write_then_reply(c, keys, values, 1, json_pack("{s:s}", "mode", reg_mode_name(mode)));
}

void reg_mode_delete(reg_call_t *c, const char *subject)
{
    reg_mode_t prev = c->r->global_mode;
    if (subject) {
        reg_subject_t *s = reg_subject_find(c->r, subject);
        if (!s || !s->has_mode) {
            reg_reply_error(c, 404, 40409,
                            "Subject '%.300s' does not have subject-level mode configured",
                            subject);
            return;
        }
        prev = s->mode;
    }
    json_t *keys[1] = {reg_key_mode(subject)};
    json_t *values[1] = {NULL};
    reg_write_then_reply(c, keys, values, 1, json_pack("{s:s}", "mode", reg_mode_name(prev)));
}

bool reg_mode_writable(reg_call_t *c, const char *subject)
{
    if (reg_subject_mode(c->r, reg_subject_find(c->r, subject)) != REG_MODE_READONLY)
        return true;
    reg_reply_error(c, 422, 42205, "Subject '%.300s' is in read-only mode", subject);
    return false;
}
