/* Kafka's sampled rate and throttle time (rate.h). */
#include "broker/quota/rate.h"

#include <math.h>
#include <string.h>

void kb_rate_init(kb_rate_t *r)
{
    memset(r, 0, sizeof *r);
}

static int num_of(const kb_rate_cfg_t *cfg)
{
    return cfg->num < 1 ? 1 : cfg->num > KB_RATE_MAX_SAMPLES ? KB_RATE_MAX_SAMPLES : cfg->num;
}

/* Samples a full span old hold nothing that still counts (Kafka's purgeObsoleteSamples). */
static void purge(kb_rate_t *r, const kb_rate_cfg_t *cfg, int64_t now_ms)
{
    int64_t expire = (int64_t)num_of(cfg) * cfg->window_ms;
    for (int i = 0; i < r->n; i++)
        if (now_ms - r->start_ms[i] >= expire) {
            r->start_ms[i] = now_ms;
            r->value[i] = 0;
        }
}

void kb_rate_record(kb_rate_t *r, const kb_rate_cfg_t *cfg, double v, int64_t now_ms)
{
    if (r->n == 0) {
        r->n = 1;
        r->cur = 0;
        r->start_ms[0] = now_ms;
        r->value[0] = 0;
    } else if (now_ms >= r->start_ms[r->cur] + cfg->window_ms) {
        /* The current window is over: the next slot (the oldest once all are in use) starts
         * a new one at now, as Kafka's SampledStat.advance does. */
        int next = (r->cur + 1) % num_of(cfg);
        if (next >= r->n) {
            next = r->n++;
        }
        r->cur = next;
        r->start_ms[next] = now_ms;
        r->value[next] = 0;
    }
    r->value[r->cur] += v;
}

int64_t kb_rate_window_ms(kb_rate_t *r, const kb_rate_cfg_t *cfg, int64_t now_ms)
{
    purge(r, cfg, now_ms);
    int64_t oldest = now_ms;
    for (int i = 0; i < r->n; i++)
        if (r->start_ms[i] < oldest) oldest = r->start_ms[i];
    int64_t elapsed = now_ms - oldest;
    int64_t full = cfg->window_ms > 0 ? elapsed / cfg->window_ms : 0;
    int64_t min_full = num_of(cfg) - 1;
    if (full < min_full) elapsed += (min_full - full) * cfg->window_ms;
    return elapsed > 0 ? elapsed : 1;
}

double kb_rate_measure(kb_rate_t *r, const kb_rate_cfg_t *cfg, int64_t now_ms)
{
    purge(r, cfg, now_ms);
    double sum = 0;
    for (int i = 0; i < r->n; i++)
        sum += r->value[i];
    return sum * 1000.0 / (double)kb_rate_window_ms(r, cfg, now_ms);
}

int64_t kb_rate_throttle_ms(kb_rate_t *r, const kb_rate_cfg_t *cfg, double bound,
                            int64_t now_ms)
{
    if (!(bound > 0)) return 0;
    double rate = kb_rate_measure(r, cfg, now_ms);
    if (!(rate > bound)) return 0;
    double ms = (rate - bound) / bound * (double)kb_rate_window_ms(r, cfg, now_ms);
    if (ms > (double)INT32_MAX) return INT32_MAX;
    return (int64_t)llround(ms);
}
