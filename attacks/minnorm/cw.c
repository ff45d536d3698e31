/* Carlini-Wagner L2 (arXiv:1608.04644): a tanh change of variables keeps the point in the
 * model's box, Adam minimises ||x - x0||^2 + c * max(margin, -kappa), and a per-sample
 * binary search tunes c; each sample aborts early on its own loss, never the batch's.
 * Departures from the paper: a stalled loss first quarters Adam's rate, only settled
 * iterates count as success for the search over c (every adversarial iterate is kept),
 * each new c starts from the best adversarial so far or, before one, from the last
 * iterate of a run still progressing (warm_start), and a few boundary steps polish the
 * result (foolc__mn_polish) before the final search towards the clean input. */
#include "arena.h"
#include "minnorm.h"

#include <math.h>
#include <stddef.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

/* FP exceptions are never trapped here: telling gcc so lets it if-convert the clamps. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/* The per-element work runs in blocks of FOOLC__BLOCK floats (minnorm.h). */
#define CW_B FOOLC__BLOCK

/* tanh of n <= CW_B floats without libm: tanh a = expm1(2a) / (expm1(2a) + 2) for a = |x|
 * (clamped at 9, where tanh rounds to 1 in float), expm1(y) = 2^e (1 + q) - 1 with
 * y = e ln2 + r, |r| <= ln2 / 2 and q = e^r - 1 by its Taylor series to r^7 (truncation
 * below 1e-8). Within a few ulp of tanhf, with no cancellation near 0 (there e = 0). */
static inline void tanh_block(const float *restrict x, float *restrict t, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        float a = fabsf(x[k]);
        a = a < 9.0f ? a : 9.0f;
        float y = 2.0f * a;
        int32_t e = (int32_t)(y * 1.44269504f + 0.5f);
        float fe = (float)e;
        float r = (y - fe * 0.693359375f) + fe * 2.12194440e-4f;   /* ln2 in two parts */
        float q = r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 +
                  r * (1.0f / 720 + r * (1.0f / 5040)))))));
        union { int32_t i; float f; } p2;
        p2.i = (e + 127) << 23;   /* 2^e, 0 <= e <= 26 */
        float em = p2.f * q + (p2.f - 1.0f);
        float v = em / (em + 2.0f);
        t[k] = copysignf(v, x[k]);
    }
}

/* The point of the tanh variables w (n <= CW_B): th = tanh w, xo = lo + half (th + 1) in
 * the box. */
static inline void map_block(const float *restrict w, size_t n, float lo, float hi, float half,
                             float *restrict th, float *restrict xo)
{
    tanh_block(w, th, n);
    for (size_t k = 0; k < n; k++) {
        float v = lo + half * (th[k] + 1.0f);
        xo[k] = v < lo ? lo : v > hi ? hi : v;
    }
}

static void cw_map(const float *restrict w, size_t d, float lo, float hi, float half,
                   float *restrict th, float *restrict xo)
{
    size_t j = 0;
    for (; j + CW_B <= d; j += CW_B) map_block(w + j, CW_B, lo, hi, half, th + j, xo + j);
    map_block(w + j, d - j, lo, hi, half, th + j, xo + j);
}

static inline void sqrt_block(float *v)
{
#if defined(__SSE__)
    for (size_t k = 0; k < CW_B; k += 4) _mm_storeu_ps(v + k, _mm_sqrt_ps(_mm_loadu_ps(v + k)));
#else
    for (size_t k = 0; k < CW_B; k++) v[k] = sqrtf(v[k]);
#endif
}

/* One Adam step on the tanh variables w (moments m, v) of one sample from the gradient g
 * of the margin term at the point xq (th = tanh w) with clean input x0: the gradient in w
 * is (2 (xq - x0) + g) half (1 - th^2). lrb1 = rate / (1 - 0.9^t), ib2 = 1 / (1 - 0.999^t).
 * Returns ||xq - x0||^2. */
static double cw_adam(size_t d, const float *restrict xq, const float *restrict x0,
                      const float *restrict g, const float *restrict th, float half, float lrb1,
                      float ib2, float *restrict w, float *restrict m, float *restrict v)
{
    float acc[CW_B] = {0}, den[CW_B];
    size_t j = 0;
    for (; j + CW_B <= d; j += CW_B) {
        for (size_t k = 0; k < CW_B; k++) {
            size_t i = j + k;
            float diff = xq[i] - x0[i], t = th[i];
            acc[k] += diff * diff;
            float gw = (2.0f * diff + g[i]) * half * (1.0f - t * t);
            m[i] = 0.9f * m[i] + 0.1f * gw;
            v[i] = 0.999f * v[i] + 0.001f * gw * gw;
            den[k] = v[i] * ib2;
        }
        sqrt_block(den);
        for (size_t k = 0; k < CW_B; k++) w[j + k] -= lrb1 * m[j + k] / (den[k] + 1e-8f);
    }
    double l2 = 0;
    for (size_t k = 0; k < CW_B; k++) l2 += acc[k];
    for (; j < d; j++) {
        float diff = xq[j] - x0[j], t = th[j];
        l2 += (double)diff * diff;
        float gw = (2.0f * diff + g[j]) * half * (1.0f - t * t);
        m[j] = 0.9f * m[j] + 0.1f * gw;
        v[j] = 0.999f * v[j] + 0.001f * gw * gw;
        w[j] -= lrb1 * m[j] / (sqrtf(v[j] * ib2) + 1e-8f);
    }
    return l2;
}

typedef struct cw_config {
    double steps, binary_search_steps, stepsize, confidence, initial_const, abort_early, bisect,
        polish, warm_start;
} cw_config;

static const foolc__param cw_params[] = {
    FOOLC__PARAM(cw_config, steps, 1000, 1, 10000, 1, "Adam steps per value of the constant c"),
    FOOLC__PARAM(cw_config, binary_search_steps, 9, 1, 20, 1,
                 "values of c tried per sample (x10 until success, then bisection)"),
    FOOLC__PARAM(cw_config, stepsize, 0.01, 1e-6, 10, 0, "Adam learning rate in the tanh space"),
    FOOLC__PARAM(cw_config, confidence, 0, 0, 1000, 0,
                 "kappa: the logit margin by which a point must be adversarial to count"),
    FOOLC__PARAM(cw_config, initial_const, 1e-3, 1e-6, 1e6, 0,
                 "first value of c, the weight of the margin term"),
    FOOLC__PARAM(cw_config, abort_early, 1, 0, 1, 1,
                 "1: when a sample's loss stalls (checked every steps/10) its rate is quartered, "
                 "and after two cuts its inner loop stops"),
    FOOLC__PARAM(cw_config, bisect, 20, 0, 50, 1,
                 "final search from the clean input towards the best adversarial, to a bracket "
                 "2^-bisect wide"),
    FOOLC__PARAM(cw_config, polish, 10, 0, 100, 1,
                 "final boundary steps from the best adversarial (minimal step onto the linearised "
                 "boundary, as DeepFool from the clean input); 0 = none"),
    FOOLC__PARAM(cw_config, warm_start, 1, 0, 1, 1,
                 "1: each value of c after the first starts from the sample's best adversarial so "
                 "far, or, while it has none, its last iterate if that run had not stalled (Adam's "
                 "moments reset); 0: from the clean input, as the paper"),
};

static foolc_status cw_run(foolc__run *run, const void *config)
{
    const cw_config *cfg = config;
    size_t d = run->d;
    int32_t m = run->n_todo, steps = (int32_t)cfg->steps;
    size_t md = foolc__mul((size_t)m, d);
    double kappa = cfg->confidence, half = 0.5 * ((double)run->hi - run->lo);
    foolc__arena ar = {0};
    float *w, *am, *av, *xs, *grad, *th, *logits;
    double *c, *lower, *upper, *prev, *scale, *margin, *lr, *sig;
    int32_t *act, *sid;
    uint8_t *alive, *found, *adv;
    foolc_status st = FOOLC_OK;
    for (int pass = 0; pass < 2; pass++) {
        w = foolc__arena_take(&ar, md, sizeof(float));
        am = foolc__arena_take(&ar, md, sizeof(float));
        av = foolc__arena_take(&ar, md, sizeof(float));
        xs = foolc__arena_take(&ar, md, sizeof(float));
        grad = foolc__arena_take(&ar, md, sizeof(float));
        th = foolc__arena_take(&ar, md, sizeof(float));
        logits = foolc__arena_take(&ar, foolc__mul((size_t)m, (size_t)run->k), sizeof(float));
        c = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        lower = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        upper = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        prev = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        scale = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        margin = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        lr = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        sig = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        act = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        sid = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        alive = foolc__arena_take(&ar, (size_t)m, 1);
        found = foolc__arena_take(&ar, (size_t)m, 1);
        adv = foolc__arena_take(&ar, (size_t)m, 1);
        if (pass == 0 && (st = foolc__arena_alloc(&ar, "cw-l2 buffers")) < 0) return st;
    }
    for (int32_t a = 0; a < m; a++) {
        c[a] = cfg->initial_const;
        lower[a] = 0;   /* the search over c (foolc__mn_const_next) */
        upper[a] = INFINITY;
        sig[a] = 0;     /* the logits' temperature at the first evaluation (the clean input) */
    }
    int32_t chk = steps >= 10 ? (steps + 9) / 10 : steps;
    for (int32_t b = 0; b < (int32_t)cfg->binary_search_steps; b++) {
        for (int32_t a = 0; a < m; a++) {
            /* The start: the clean input or, with warm_start, the best adversarial so far
             * and, while there is none, the last iterate of a run that was still making
             * progress when its steps ran out (w as it is: the search goes on where the
             * smaller c left it; a run that stalled restarts from the clean input). */
            int32_t i = run->todo[a];
            int warm = cfg->warm_start && b > 0, won = run->res->success[i];
            const float *start = warm && won ? run->res->x_adv + (size_t)i * d
                                             : run->x + (size_t)i * d;
            int keep_w = warm && !won && alive[a];
            for (size_t j = 0; j < d && !keep_w; j++) {
                double u = ((double)start[j] - run->lo) / half - 1.0;
                u = u > 0.999999 ? 0.999999 : u < -0.999999 ? -0.999999 : u;
                w[(size_t)a * d + j] = (float)atanh(u);
            }
            memset(am + (size_t)a * d, 0, d * sizeof(float));
            memset(av + (size_t)a * d, 0, d * sizeof(float));
            alive[a] = 1;
            found[a] = 0;
            prev[a] = INFINITY;
            lr[a] = cfg->stepsize;
        }
        for (int32_t it = 0; it < steps; it++) {
            int32_t na = 0;
            for (int32_t a = 0; a < m; a++) {
                if (!alive[a]) continue;
                cw_map(w + (size_t)a * d, d, run->lo, run->hi, (float)half,
                       th + (size_t)na * d, xs + (size_t)na * d);
                act[na] = a;
                sid[na] = run->todo[a];
                scale[na] = c[a] / (sig[a] > 0 ? sig[a] : 1);
                na++;
            }
            if (na == 0) break;
            if ((st = foolc__mn_margin_grad(run, xs, sid, na, scale, kappa, grad, margin, adv,
                                            logits)) < 0)
                goto out;
            for (int32_t q = 0; q < na; q++) {   /* c weighs margin / logit scale */
                int32_t a = act[q];
                if (sig[a] > 0) continue;
                sig[a] = foolc__logit_temp(logits + (size_t)q * (size_t)run->k, run->k, NULL);
                if (sig[a] != 1) foolc__mn_scale(grad + (size_t)q * d, 1 / sig[a], d);
            }
            double b1 = 1 - pow(0.9, it + 1), b2 = 1 - pow(0.999, it + 1);
            for (int32_t q = 0; q < na; q++) {
                int32_t a = act[q];
                const float *x0 = run->x + (size_t)sid[q] * d, *xq = xs + (size_t)q * d;
                const float *g = grad + (size_t)q * d, *tq = th + (size_t)q * d;
                double safe = foolc__mn_safe(logits + (size_t)q * (size_t)run->k, run->k);
                if (adv[q] && margin[q] <= -kappa && margin[q] < -safe) {
                    /* Only settled iterates say that c is large enough: Adam's first
                     * steps cross the boundary even when c is too small to stay there. */
                    if (lr[a] < cfg->stepsize || 2 * it >= steps) found[a] = 1;
                    foolc__run_offer(run, sid[q], xq);
                }
                size_t off = (size_t)a * d;
                double l2 = cw_adam(d, xq, x0, g, tq, (float)half, (float)(lr[a] / b1),
                                    (float)(1 / b2), w + off, am + off, av + off);
                double loss = l2 + c[a] / sig[a] * fmax(margin[q], -kappa);
                if (cfg->abort_early && (it + 1) % chk == 0) {
                    /* A stalled loss is usually Adam circling the boundary: quarter the
                     * rate (twice) before giving up on this c. */
                    if (loss > 0.9999 * prev[a]) {
                        if (lr[a] > cfg->stepsize * 0.1) lr[a] *= 0.25;
                        else alive[a] = 0;
                    }
                    prev[a] = loss;
                }
            }
            if ((st = foolc__run_progress(run, (int64_t)b * steps + it,
                                          (int64_t)cfg->binary_search_steps * steps)) < 0)
                goto out;
        }
        for (int32_t a = 0; a < m; a++) foolc__mn_const_next(&c[a], &lower[a], &upper[a], found[a]);
    }
    if (cfg->confidence == 0) {   /* the polish aims at the boundary, not beyond kappa */
        if ((st = foolc__mn_polish(run, FOOLC_L2, (int32_t)cfg->polish)) < 0) goto out;
    }
    st = foolc__mn_finish(run, (int32_t)cfg->bisect);
out:
    foolc__arena_free(&ar);
    return st;
}

FOOLC__ATTACK(cw_l2, "cw-l2", FOOLC_L2, FOOLC__GRAD, cw_params, cw_config, cw_run, NULL,
              "Carlini-Wagner L2: tanh box, Adam, per-sample binary search over c");
