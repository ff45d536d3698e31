/* EAD, elastic-net attack (Chen et al., arXiv:1709.04114): minimises
 * c * max(margin, -kappa) + ||x - x0||_2^2 + beta * ||x - x0||_1 with ISTA or FISTA steps
 * (gradient step on the smooth part, then shrinkage-thresholding around x0 and the box),
 * a per-sample binary search over c, and the L1 decision rule for the best adversarial. */
#include "minnorm.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct ead_config {
    double steps, binary_search_steps, initial_stepsize, confidence, initial_const, regularization,
        fista, abort_early, bisect, polish;
} ead_config;

static const foolc__param ead_params[] = {
    FOOLC__PARAM(ead_config, steps, 1000, 1, 10000, 1,
                 "ISTA/FISTA iterations per value of the constant c"),
    {"binary_search_steps", 9, 1, 20, offsetof(ead_config, binary_search_steps), 1,
     "values of c tried per sample (x10 until success, then bisection)"},
    {"initial_stepsize", 0.01, 1e-6, 10, offsetof(ead_config, initial_stepsize), 0,
     "first step size; decays as (1 - k/steps)^0.5"},
    FOOLC__PARAM(ead_config, confidence, 0, 0, 1000, 0,
                 "kappa: the logit margin by which a point must be adversarial to count"),
    FOOLC__PARAM(ead_config, initial_const, 1e-3, 1e-6, 1e6, 0,
                 "first value of c, the weight of the margin term"),
    {"regularization", 0.01, 0, 10, offsetof(ead_config, regularization), 0,
     "beta: weight of the L1 term and the shrinkage threshold"},
    FOOLC__PARAM(ead_config, fista, 1, 0, 1, 1,
                 "[ista|fista] 1 for FISTA (momentum), 0 for plain ISTA"),
    FOOLC__PARAM(ead_config, abort_early, 1, 0, 1, 1,
                 "1 stops a sample's inner loop when its loss stalls (checked every steps/10)"),
    FOOLC__PARAM(ead_config, bisect, 20, 0, 50, 1,
                 "final search from the clean input towards the best adversarial, to a bracket "
                 "2^-bisect wide"),
    FOOLC__PARAM(ead_config, polish, 10, 0, 100, 1,
                 "final boundary steps in L1, one linearised class pair per other class"),
};

/* FP exceptions are never trapped here: telling gcc so lets it if-convert the clamps. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/* The per-element work runs in blocks of FOOLC__BLOCK floats (minnorm.h). */
#define EAD_B FOOLC__BLOCK

/* One ISTA/FISTA element update (n <= EAD_B): from the slack point y with gradient g of
 * the margin term, x' = x0 + S_beta(y - alpha (2 (y - x0) + g) - x0) in the box, then
 * y' = x' + mom (x' - x) in the box. Adds (y - x0)^2 and |y - x0| into s2 and s1. */
static inline void ead_block(size_t n, const float *restrict x0, const float *restrict g,
                             float alpha, float beta, float mom, float lo, float hi,
                             float *restrict x, float *restrict y, float *restrict s2,
                             float *restrict s1)
{
    for (size_t k = 0; k < n; k++) {
        float diff = y[k] - x0[k];
        s2[k] += diff * diff;
        s1[k] += fabsf(diff);
        float z = diff - alpha * (2.0f * diff + g[k]);
        z = z > beta ? z - beta : z < -beta ? z + beta : 0.0f;
        float xn = x0[k] + z;
        xn = xn < lo ? lo : xn > hi ? hi : xn;
        float yn = xn + mom * (xn - x[k]);
        yn = yn < lo ? lo : yn > hi ? hi : yn;
        x[k] = xn;
        y[k] = yn;
    }
}

/* ead_block over d floats; *l2 = ||y - x0||^2 and *l1 = ||y - x0||_1 before the step. */
static void ead_step(size_t d, const float *restrict x0, const float *restrict g, float alpha,
                     float beta, float mom, float lo, float hi, float *restrict x,
                     float *restrict y, double *l2, double *l1)
{
    float s2[EAD_B] = {0}, s1[EAD_B] = {0};
    size_t j = 0;
    for (; j + EAD_B <= d; j += EAD_B)
        ead_block(EAD_B, x0 + j, g + j, alpha, beta, mom, lo, hi, x + j, y + j, s2, s1);
    ead_block(d - j, x0 + j, g + j, alpha, beta, mom, lo, hi, x + j, y + j, s2, s1);
    *l2 = *l1 = 0;
    for (size_t k = 0; k < EAD_B; k++) {
        *l2 += s2[k];
        *l1 += s1[k];
    }
}

static foolc_status ead_run(foolc__run *run, const void *config)
{
    const ead_config *cfg = config;
    size_t d = run->d;
    int32_t m = run->n_todo, steps = (int32_t)cfg->steps, k = run->k;
    size_t md = foolc__mul((size_t)m, d);
    double kappa = cfg->confidence, beta = cfg->regularization;
    float *xk = foolc__malloc(foolc__mul(md, 4 * sizeof(float)) +
                              foolc__mul((size_t)m, (size_t)k * sizeof(float)));
    double *c = foolc__malloc(foolc__mul((size_t)m, 7 * sizeof(double)));
    int32_t *act = foolc__malloc(foolc__mul((size_t)m, 2 * sizeof(int32_t) + 4));
    foolc_status st = FOOLC_OK;
    if (!xk || !c || !act) {
        st = foolc__nomem("ead buffers");
        goto out;
    }
    float *yk = xk + md, *xs = yk + md, *grad = xs + md, *logits = grad + md;
    double *lower = c + m, *upper = lower + m, *prev = upper + m, *scale = prev + m;
    double *margin = scale + m, *sig = margin + m;
    int32_t *sid = act + m;
    uint8_t *alive = (uint8_t *)(sid + m), *found = alive + m, *adv = found + m;
    for (int32_t a = 0; a < m; a++) {
        c[a] = cfg->initial_const;
        lower[a] = 0;   /* the search over c (foolc__mn_const_next) */
        upper[a] = INFINITY;
        sig[a] = 0;     /* the logits' temperature at the first evaluation (the clean input) */
    }
    int32_t chk = steps >= 10 ? (steps + 9) / 10 : steps;
    for (int32_t b = 0; b < (int32_t)cfg->binary_search_steps; b++) {
        for (int32_t a = 0; a < m; a++) {
            const float *x0 = run->x + (size_t)run->todo[a] * d;
            memcpy(xk + (size_t)a * d, x0, d * sizeof(float));
            memcpy(yk + (size_t)a * d, x0, d * sizeof(float));
            alive[a] = 1;
            found[a] = 0;
            prev[a] = INFINITY;
        }
        for (int32_t it = 0; it < steps; it++) {
            int32_t na = 0;
            for (int32_t a = 0; a < m; a++) {
                if (!alive[a]) continue;
                memcpy(xs + (size_t)na * d, yk + (size_t)a * d, d * sizeof(float));
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
                sig[a] = foolc__logit_temp(logits + (size_t)q * (size_t)k, k, NULL);
                if (sig[a] != 1) foolc__mn_scale(grad + (size_t)q * d, 1 / sig[a], d);
            }
            double alpha = cfg->initial_stepsize * sqrt(1.0 - (double)it / steps);
            double mom = cfg->fista ? (double)it / (it + 3.0) : 0.0;
            for (int32_t q = 0; q < na; q++) {
                int32_t a = act[q];
                const float *x0 = run->x + (size_t)sid[q] * d, *g = grad + (size_t)q * d;
                float *xa = xk + (size_t)a * d, *ya = yk + (size_t)a * d;
                float *xq = xs + (size_t)q * d;
                double safe = foolc__mn_safe(logits + (size_t)q * (size_t)k, k);
                if (adv[q] && margin[q] <= -kappa && margin[q] < -safe) {
                    found[a] = 1;
                    foolc__run_offer(run, sid[q], xq);
                }
                double l2, l1;
                ead_step(d, x0, g, (float)alpha, (float)beta, (float)mom, run->lo, run->hi, xa,
                         ya, &l2, &l1);
                memcpy(xq, xa, d * sizeof(float));   /* x_k is checked below */
                double loss = c[a] / sig[a] * fmax(margin[q], -kappa) + l2 + beta * l1;
                /* From y = x0 the shrinkage kept every value at x0: the next steps see the
                 * same point with smaller steps, so this c can never move: stop it now (the
                 * search over c raises it) instead of after two abort checks. */
                if (l1 == 0 && !memcmp(xa, x0, d * sizeof(float))) alive[a] = 0;
                if (cfg->abort_early && (it + 1) % chk == 0) {
                    if (loss > 0.9999 * prev[a]) alive[a] = 0;
                    prev[a] = loss;
                }
            }
            /* The shrunk iterates x_k are the sparse ones: check them too (one forward). */
            if (mom > 0) {
                if ((st = foolc__run_scores(run, xs, sid, na, logits)) < 0) goto out;
                if ((st = foolc__run_logits_adv(run, logits, sid, na, adv, margin)) < 0) goto out;
                for (int32_t q = 0; q < na; q++)
                    if (adv[q] && margin[q] <= -kappa &&
                        margin[q] < -foolc__mn_safe(logits + (size_t)q * (size_t)k, k)) {
                        found[act[q]] = 1;
                        foolc__run_offer(run, sid[q], xs + (size_t)q * d);
                    }
            }
            if ((st = foolc__run_progress(run, (int64_t)b * steps + it,
                                          (int64_t)cfg->binary_search_steps * steps)) < 0)
                goto out;
        }
        for (int32_t a = 0; a < m; a++) foolc__mn_const_next(&c[a], &lower[a], &upper[a], found[a]);
    }
    st = foolc__mn_polish_classes(run, FOOLC_L1, (int32_t)cfg->polish,
                                  FOOLC__POLISH_MAX_CLASSES);
    if (st >= 0) st = foolc__mn_finish(run, (int32_t)cfg->bisect);
out:
    foolc__free(xk);
    foolc__free(c);
    foolc__free(act);
    return st;
}

FOOLC__ATTACK(ead, "ead", FOOLC_L1, FOOLC__GRAD, ead_params, ead_config, ead_run, NULL,
              "elastic-net attack (EAD): ISTA/FISTA, per-sample search over c, L1 rule");
