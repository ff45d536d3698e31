/* A linear model fixture with hand-written gradients: logits = W x + b over d inputs and k
 * classes, served through the oracle interface, with switches to make it misbehave. */
#ifndef FOOLC_TEST_LINEAR_H
#define FOOLC_TEST_LINEAR_H

#include <math.h>
#include <string.h>
#include "foolc.h"

#define LIN_MAXD 784
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

/* The exact minimal perturbation in norm p (FOOLC_L0, L1, L2 or LINF) that makes class j's
 * logit reach class y's, a . delta >= f with a = W_j - W_y and f = z_y - z_j, inside the
 * box [0, 1]^d: each coordinate moves towards sign(a_i) by t_i in [0, cap_i]. Linf: the
 * smallest t with sum |a_i| min(t, cap_i) >= f; L2: delta_i = min(lam |a_i|, cap_i) (the
 * KKT point), lam by bisection; L1: coordinates by decreasing |a_i| up to their caps; L0:
 * coordinates by decreasing |a_i| cap_i, each pushed to its cap. INFINITY when the box
 * cannot reach the plane. */
static inline double lin_plane_min(const lin_model *m, const float *x, int y, int j, foolc_norm p)
{
    static double a[LIN_MAXD], cap[LIN_MAXD];
    static int used[LIN_MAXD];
    int d = m->d;
    float z[LIN_MAXK];
    lin_logits(m, x, z);
    double f = (double)z[y] - (double)z[j], reach = 0;
    if (f <= 0) return 0;
    for (int i = 0; i < d; i++) {
        double ai = m->W[j][i] - m->W[y][i];
        a[i] = fabs(ai);
        cap[i] = ai > 0 ? 1.0 - x[i] : ai < 0 ? x[i] : 0;
        reach += a[i] * cap[i];
        used[i] = 0;
    }
    if (reach < f) return INFINITY;
    if (p == FOOLC_L1 || p == FOOLC_L0) {
        double dist = 0, left = f;
        for (int it = 0; it < d; it++) {
            int b = -1;
            for (int i = 0; i < d; i++) {
                if (used[i] || cap[i] <= 0) continue;
                double key = p == FOOLC_L1 ? a[i] : a[i] * cap[i];
                double kb = b < 0 ? -1 : p == FOOLC_L1 ? a[b] : a[b] * cap[b];
                if (key > kb) b = i;
            }
            if (b < 0) break;
            used[b] = 1;
            double gain = a[b] * cap[b];
            if (gain >= left) return p == FOOLC_L1 ? dist + left / a[b] : dist + 1;
            dist += p == FOOLC_L1 ? cap[b] : 1;
            left -= gain;
        }
        return INFINITY;
    }
    double lo = 0, hi = 1;
    if (p == FOOLC_L2) {   /* lam large enough that every coordinate is at its cap */
        double amin = INFINITY;
        for (int i = 0; i < d; i++) if (a[i] > 0 && cap[i] > 0 && a[i] < amin) amin = a[i];
        hi = 1.0 / amin + 1;
    }
    for (int it = 0; it < 200 && hi - lo > 1e-15 * hi; it++) {
        double t = 0.5 * (lo + hi), gain = 0;
        for (int i = 0; i < d; i++) {
            double e = p == FOOLC_LINF ? t : t * a[i];
            gain += a[i] * (e < cap[i] ? e : cap[i]);
        }
        if (gain >= f) hi = t;
        else lo = t;
    }
    double n2 = 0;
    if (p == FOOLC_LINF) return hi;
    for (int i = 0; i < d; i++) {
        double e = hi * a[i];
        e = e < cap[i] ? e : cap[i];
        n2 += e * e;
    }
    return sqrt(n2);
}

/* The exact minimal adversarial perturbation of x (label y, the model's prediction) in norm
 * p within the box [0, 1]^d: the adversarial set is the union over classes j != y of the
 * half-spaces z_j >= z_y, so its minimum is the smallest of the per-class minima. */
static inline double lin_box_min(const lin_model *m, const float *x, int y, foolc_norm p)
{
    double best = INFINITY;
    for (int j = 0; j < m->k; j++) {
        if (j == y) continue;
        double v = lin_plane_min(m, x, y, j, p);
        if (v < best) best = v;
    }
    return best;
}

/* The linear configurations of issue 18 (tests/check_attacks_grad.c, bench/linear_sat.c):
 * a model of d inputs and k classes (weights of scale 0.05) and n inputs with a fifth of
 * their coordinates at 0 and a tenth at 1, so that the box binds wherever the minimal
 * perturbation pushes them outwards; labels y are the model's predictions. */
static inline void lin_box_config(lin_model *m, int32_t d, int32_t k, int n, float *x, int32_t *y)
{
    lin_random(m, d, k, 0.05, (uint64_t)(d * 10 + k));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) {
            double u = 0.5 * (lin_hash(999 + (uint64_t)(i * d + j)) + 1);
            double v = 0.5 * (lin_hash(31 + (uint64_t)(i * d + j) * 3) + 1);
            x[i * d + j] = (float)(u < 0.2 ? 0 : u < 0.3 ? 1 : v);
        }
        float z[LIN_MAXK];
        lin_logits(m, x + (size_t)i * d, z);
        int b = 0;
        for (int j = 1; j < k; j++) if (z[j] > z[b]) b = j;
        y[i] = b;
    }
}

/* A model whose logits (and so their gradients) are those of an inner oracle times s: the
 * same decisions, a softmax saturated for large s. The seed the library supplies sees the
 * scaled logits, and its d loss / d scaled logits is multiplied by s on the way back. */
typedef struct lin_scaled {
    foolc_oracle inner;
    double s;
    foolc_seed_fn seed;
    void *seed_user;
    float *buf;   /* n_classes * inner.input.n scaled logits */
} lin_scaled;

static inline int lin_scaled_scores(void *user, const float *x, int32_t n, float *logits)
{
    lin_scaled *w = user;
    int rc = w->inner.scores(w->inner.user, x, n, logits);
    for (size_t i = 0; i < (size_t)n * (size_t)w->inner.n_classes; i++)
        logits[i] = (float)(logits[i] * w->s);
    return rc;
}

static inline int lin_scaled_seed(void *user, const float *logits, int32_t n, int32_t k,
                                  float *dlogits)
{
    lin_scaled *w = user;
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++) w->buf[i] = (float)(logits[i] * w->s);
    int rc = w->seed(w->seed_user, w->buf, n, k, dlogits);
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++) dlogits[i] = (float)(dlogits[i] * w->s);
    return rc;
}

static inline int lin_scaled_vg(void *user, const float *x, int32_t n, foolc_seed_fn seed,
                                void *seed_user, float *logits, float *grad)
{
    lin_scaled *w = user;
    w->seed = seed;
    w->seed_user = seed_user;
    int rc = w->inner.value_and_grad(w->inner.user, x, n, lin_scaled_seed, w, logits, grad);
    for (size_t i = 0; i < (size_t)n * (size_t)w->inner.n_classes; i++)
        logits[i] = (float)(logits[i] * w->s);
    return rc;
}

/* The oracle of w (w->inner, w->s and w->buf set by the caller). */
static inline foolc_oracle lin_scaled_oracle(lin_scaled *w)
{
    foolc_oracle o = w->inner;
    o.user = w;
    o.scores = w->inner.scores ? lin_scaled_scores : NULL;
    o.value_and_grad = w->inner.value_and_grad ? lin_scaled_vg : NULL;
    return o;
}

#endif
