/* Handler helpers behind util.h. */
#include "broker/core/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool kb_str_copy(kp_str_t s, char *buf, size_t len)
{
    if (s.len < 0 || (size_t)s.len >= len) return false;
    if (s.len) memcpy(buf, s.ptr, (size_t)s.len);
    buf[s.len] = 0;
    return true;
}

kp_str_t kb_arena_printf(kp_arena_t *a, const char *fmt, ...)
{
    kp_str_t out = {NULL, -1};
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return out;
    char *p = kp_arena_alloc(a, (size_t)n + 1);
    if (!p) return out;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    out.ptr = p;
    out.len = n;
    return out;
}

char *kb_arena_strdup(kp_arena_t *a, const char *s)
{
    size_t n = strlen(s);
    char *p = kp_arena_alloc(a, n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

bool kb_topic_internal(const char *name, size_t len)
{
    static const char *const internal[] = {KB_CONSUMER_OFFSETS_TOPIC, "_schemas", "__audit"};
    for (size_t i = 0; name && i < sizeof internal / sizeof internal[0]; i++)
        if (strlen(internal[i]) == len && memcmp(internal[i], name, len) == 0)
            return true;
    return false;
}
