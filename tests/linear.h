/* A linear model fixture with hand-written gradients: logits = W x + b over d inputs and k
 * classes, served through the oracle interface, with switches to make it misbehave. */
#ifndef FOOLC_TEST_LINEAR_H
#define FOOLC_TEST_LINEAR_H

#include <math.h>
#include <string.h>
#include "foolc.h"

#define LIN_MAXD 64
#define LIN_MAXK 10

typedef struct lin_model {
    int32_t d, k;
    double W[LIN_MAXK][LIN_MAXD], b[LIN_MAXK];
    int fail_after;      /* callbacks fail after this many calls (0: never) */
    int nan_after;       /* logits become NaN after this many calls (0: never) */
    int calls;
    int seed_twice;      /* value_and_grad calls the seed twice */
    double shift1;       /* added to logit 1 (a model that rounds differently later) */
} lin_model;

static inline void lin_logits(const lin_model *m, const float *x, float *z)
{
    for (int j = 0; j < m->k; j++) {
        double s = m->b[j];
        for (int i = 0; i < m->d; i++) s += m->W[j][i] * x[i];
        z[j] = (float)(j == 1 ? s + m->shift1 : s);
    }
}

static inline int lin_misbehave(lin_model *m, float *z, int32_t n)
{
    m->calls++;
    if (m->fail_after && m->calls > m->fail_after) return 7;
    if (m->nan_after && m->calls > m->nan_after) z[(size_t)(n - 1) * m->k] = NAN;
    return 0;
}

static inline int lin_scores(void *user, const float *x, int32_t n, float *logits)
{
    lin_model *m = user;
    for (int32_t i = 0; i < n; i++) lin_logits(m, x + (size_t)i * m->d, logits + (size_t)i * m->k);
    return lin_misbehave(m, logits, n);
}

static inline int lin_vg(void *user, const float *x, int32_t n, foolc_seed_fn seed,
                         void *seed_user, float *logits, float *grad)
{
    lin_model *m = user;
    float dz[LIN_MAXK * 256];
    if (n > 256) return 3;
    for (int32_t i = 0; i < n; i++) lin_logits(m, x + (size_t)i * m->d, logits + (size_t)i * m->k);
    int rc = lin_misbehave(m, logits, n);
    if (rc) return rc;
    if (seed(seed_user, logits, n, m->k, dz)) return 1;
    if (m->seed_twice && seed(seed_user, logits, n, m->k, dz)) return 1;
    for (int32_t i = 0; i < n; i++)
        for (int a = 0; a < m->d; a++) {
            double s = 0;
            for (int j = 0; j < m->k; j++) s += m->W[j][a] * dz[(size_t)i * m->k + j];
            grad[(size_t)i * m->d + a] = (float)s;
        }
    return 0;
}

static inline int lin_decision(void *user, const float *x, int32_t n, int32_t *label)
{
    lin_model *m = user;
    float z[LIN_MAXK];
    for (int32_t i = 0; i < n; i++) {
        lin_logits(m, x + (size_t)i * m->d, z);
        int best = 0;
        for (int j = 1; j < m->k; j++) if (z[j] > z[best]) best = j;
        label[i] = best;
    }
    m->calls++;
    return m->fail_after && m->calls > m->fail_after ? 7 : 0;
}

/* An oracle over m: all three callbacks unless decision_only, at most max_batch per call. */
static inline foolc_oracle lin_oracle(lin_model *m, int32_t max_batch, int decision_only)
{
    foolc_oracle o;
    memset(&o, 0, sizeof o);
    o.version = FOOLC_ORACLE_VERSION;
    o.input.n = max_batch;
    o.input.c = 1;
    o.input.h = 1;
    o.input.w = m->d;
    o.n_classes = m->k;
    o.lo = 0;
    o.hi = 1;
    o.user = m;
    if (!decision_only) {
        o.scores = lin_scores;
        o.value_and_grad = lin_vg;
    }
    o.decision = decision_only ? lin_decision : NULL;
    return o;
}

/* A deterministic pseudo-random double in [-1, 1) from an integer. */
static inline double lin_hash(uint64_t i)
{
    uint64_t z = i * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-52 - 1.0;
}

/* Fills a random model with weights of scale w. */
static inline void lin_random(lin_model *m, int32_t d, int32_t k, double w, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->d = d;
    m->k = k;
    for (int j = 0; j < k; j++) {
        m->b[j] = 0.1 * lin_hash(seed * 1000 + (uint64_t)j);
        for (int i = 0; i < d; i++) m->W[j][i] = w * lin_hash(seed * 100000 + (uint64_t)(j * d + i) + 7);
    }
}

#endif
