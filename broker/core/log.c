/*
 * Broker log: one line per event on stderr, in one of two formats (log.format):
 *   text  "2026-01-02T03:04:05.678Z INFO  text"
 *   json  {"ts":"2026-01-02T03:04:05.678Z","level":"info","msg":"text"}
 * journald keeps either (one line = one entry); log shippers parse the json one without a
 * pattern. A message's own line breaks become spaces (text) or \n escapes (json), so one event
 * never spans lines.
 *
 * Thread-safety: kb_log may be called from any thread (the storage flusher logs through it);
 * each line is formatted into a local buffer and written with one write(2), so lines from
 * different threads never interleave. Level and format are process-wide settings made once at
 * start (main.c), read without a lock; a torn read of an int is not possible on our targets.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "broker/kb.h"
#include "broker/core/clock.h"

static volatile int log_level = KB_LOG_INFO;
static volatile int log_format = KB_LOG_FORMAT_TEXT;

static const char *const level_names[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};
static const char *const level_json[] = {"error", "warn", "info", "debug"};

void kb_log_set_level(int level)
{
    if (level < KB_LOG_ERROR) level = KB_LOG_ERROR;
    if (level > KB_LOG_DEBUG) level = KB_LOG_DEBUG;
    log_level = level;
}

void kb_log_set_format(int format)
{
    log_format = format == KB_LOG_FORMAT_JSON ? KB_LOG_FORMAT_JSON : KB_LOG_FORMAT_TEXT;
}

/* Appends msg to out[*n..cap) as the inside of a JSON string; stops short of cap. */
static void json_escape(char *out, size_t *n, size_t cap, const char *msg)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        char esc = 0;
        switch (*p) {
        case '"':
            esc = '"';
            break;
        case '\\':
            esc = '\\';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        case '\t':
            esc = 't';
            break;
        default:
            break;
        }
        if (esc || *p < 0x20) {
            if (*n + 6 >= cap) return;
            out[(*n)++] = '\\';
            if (esc) {
                out[(*n)++] = esc;
            } else {
                memcpy(out + *n, "u00", 3);
                *n += 3;
                out[(*n)++] = hex[*p >> 4];
                out[(*n)++] = hex[*p & 15];
            }
        } else {
            if (*n + 1 >= cap) return;
            out[(*n)++] = (char)*p;
        }
    }
}

void kb_log(int level, const char *fmt, ...)
{
    if (level > log_level) return;
    if (level < KB_LOG_ERROR) level = KB_LOG_ERROR;
    if (level > KB_LOG_DEBUG) level = KB_LOG_DEBUG;

    char msg[2048], line[4096], ts[80];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0) msg[0] = 0;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    size_t len;
    if (log_format == KB_LOG_FORMAT_JSON) {
        len = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                               level_json[level]);
        json_escape(line, &len, sizeof line - 4, msg);
        memcpy(line + len, "\"}", 2);
        len += 2;
    } else {
        for (char *p = msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
        int n = snprintf(line, sizeof line - 1, "%s %s %s", ts, level_names[level], msg);
        len = n < 0 ? 0 : (size_t)n;
        if (len > sizeof line - 2) len = sizeof line - 2; /* truncated: keep the newline */
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}
