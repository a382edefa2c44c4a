/*
 * A byte rate over a sliding set of windows, measured the way Kafka's client quotas measure
 * it (org.apache.kafka.common.metrics.stats.Rate over a SampledStat): quota.window.num
 * samples of quota.window.size.seconds each. A record goes into the current sample; the
 * current sample is replaced by a fresh one once it is a window old; samples older than
 * num * size are reset when measured. The rate is the sum of the samples divided by the time
 * since the oldest sample started, but never by less than num - 1 full windows (so a client's
 * first bytes are spread over the whole span: Kafka's burst allowance).
 *
 * Throttle time (Kafka's QuotaUtils.throttleTime): when the rate exceeds the bound after a
 * record, (rate - bound) / bound * window span, in ms, rounded: how long the client must stay
 * quiet for the rate to come back to the bound.
 *
 * Pure arithmetic on caller-given times: no clock, no allocation; O(num) per call (num <= 64).
 * Thread: whoever owns the struct.
 */
#ifndef KB_QUOTA_RATE_H
#define KB_QUOTA_RATE_H

#include <stdint.h>

#define KB_RATE_MAX_SAMPLES 64

typedef struct {
    int64_t start_ms[KB_RATE_MAX_SAMPLES]; /* when each sample's window began */
    double value[KB_RATE_MAX_SAMPLES];
    int n;   /* samples in use (grow up to num) */
    int cur; /* the one being filled */
} kb_rate_t;

typedef struct {
    int num;           /* quota.window.num, 1..KB_RATE_MAX_SAMPLES */
    int64_t window_ms; /* quota.window.size.seconds * 1000 */
} kb_rate_cfg_t;

void kb_rate_init(kb_rate_t *r);
/* Adds v (may be negative: Kafka's "unrecord" of a throttled fetch) at now_ms. */
void kb_rate_record(kb_rate_t *r, const kb_rate_cfg_t *cfg, double v, int64_t now_ms);
/* The span the rate is measured over, in ms (Kafka's Rate.windowSize). */
int64_t kb_rate_window_ms(kb_rate_t *r, const kb_rate_cfg_t *cfg, int64_t now_ms);
/* Units per second at now_ms. */
double kb_rate_measure(kb_rate_t *r, const kb_rate_cfg_t *cfg, int64_t now_ms);
/* 0 when the rate is within bound, else the throttle time in ms (bound > 0). */
int64_t kb_rate_throttle_ms(kb_rate_t *r, const kb_rate_cfg_t *cfg, double bound,
                            int64_t now_ms);

#endif
