/*
 * Small helpers shared by the benchmark programs: clocks, size parsing, percentiles and a
 * one-line JSON result writer. Every bench program prints exactly one JSON object on stdout
 * (its result) so bench/run.py can parse it; progress and errors go to stderr.
 *
 * Thread-safety: bench_json_* keeps no state beyond the FILE it writes; the rest is pure.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* CLOCK_MONOTONIC in nanoseconds (system-wide, so two processes can compare stamps). */
int64_t bench_now_ns(void);

/* "4096", "4k", "1M", "2G" (binary multiples) -> bytes; -1 on a bad string. */
int64_t bench_parse_size(const char *s);

/* Sorts v in place and returns the q-quantile (0..1) by nearest rank; 0 when n == 0. */
double bench_quantile_sorted(const double *v, size_t n, double q);
void bench_sort(double *v, size_t n);

/* A growable array of latency samples (owned by the struct; free with bench_samples_free). */
typedef struct {
    double *v;
    size_t n, cap;
} bench_samples_t;
void bench_samples_add(bench_samples_t *s, double x);
void bench_samples_free(bench_samples_t *s);

/* JSON object writer: bench_json_begin, then fields, then bench_json_end (adds newline). */
typedef struct {
    FILE *f;
    bool first;
} bench_json_t;
void bench_json_begin(bench_json_t *j, FILE *f);
void bench_json_num(bench_json_t *j, const char *key, double v);
void bench_json_int(bench_json_t *j, const char *key, int64_t v);
void bench_json_str(bench_json_t *j, const char *key, const char *v);
void bench_json_end(bench_json_t *j);

/* Splits "host:port" into host (caller's buffer) and port; returns 0 or -1. */
int bench_split_hostport(const char *s, char *host, size_t hostlen, int *port);

/* Fills buf with a deterministic, poorly-compressible pattern. */
void bench_fill_pattern(uint8_t *buf, size_t len, uint32_t seed);

/* write(2) until all n bytes are written (EINTR retried); 0, or -1 with errno set. */
int bench_write_all(int fd, const uint8_t *p, size_t n);

/* Raises RLIMIT_NOFILE's soft limit to the hard limit (for many-connection tests). */
void bench_raise_nofile(void);

#endif
