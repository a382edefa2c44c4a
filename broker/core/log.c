/*
 * Broker log: one line per message on stderr, "2026-01-02T03:04:05.678Z INFO  text".
 *
 * Thread-safety: kb_log may be called from any thread (the storage flusher logs through it);
 * each line is formatted into a local buffer and written with one write(2), so lines from
 * different threads never interleave. The level is read without a lock; a torn read of an int
 * is not possible on the targets we build for.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "broker/kb.h"

static volatile int log_level = KB_LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

void kb_log_set_level(int level)
{
    if (level < KB_LOG_ERROR) level = KB_LOG_ERROR;
    if (level > KB_LOG_DEBUG) level = KB_LOG_DEBUG;
    log_level = level;
}

void kb_log(int level, const char *fmt, ...)
{
    if (level > log_level) return;
    if (level < KB_LOG_ERROR) level = KB_LOG_ERROR;
    if (level > KB_LOG_DEBUG) level = KB_LOG_DEBUG;

    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2; /* truncated: keep the newline */
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}
