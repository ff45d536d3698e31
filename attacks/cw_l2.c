/* Carlini-Wagner L2 (arXiv:1608.04644): a tanh change of variables keeps the point in the
 * model's box, Adam minimises ||x - x0||^2 + c * max(margin, -kappa), and a per-sample
 * binary search tunes c; each sample aborts early on its own loss, never the batch's.
 * Departures from the paper: a stalled loss first quarters Adam's rate, and only settled
 * iterates count as success for the search over c (every adversarial iterate is kept). */
#include "minnorm.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct cw_config {
    double steps, bss, stepsize, confidence, initial_const, abort_early, bisect;
} cw_config;

static const foolc__param cw_params[] = {
    {"steps", 1000, 1, 10000, offsetof(cw_config, steps), 1,
     "Adam steps per value of the constant c"},
    {"binary_search_steps", 9, 1, 20, offsetof(cw_config, bss), 1,
     "values of c tried per sample (x10 until success, then bisection)"},
    {"stepsize", 0.01, 1e-6, 10, offsetof(cw_config, stepsize), 0,
     "Adam learning rate in the tanh space"},
    {"confidence", 0, 0, 1000, offsetof(cw_config, confidence), 0,
     "kappa: the logit margin by which a point must be adversarial to count"},
    {"initial_const", 1e-3, 1e-6, 1e6, offsetof(cw_config, initial_const), 0,
     "first value of c, the weight of the margin term"},
    {"abort_early", 1, 0, 1, offsetof(cw_config, abort_early), 1,
     "1: when a sample's loss stalls (checked every steps/10) its rate is quartered, and "
     "after two cuts its inner loop stops"},
    {"bisect", 20, 0, 50, offsetof(cw_config, bisect), 1,
     "final bisection steps from the clean input towards the best adversarial"},
};

static foolc_status cw_run(foolc__run *run, const void *config)
{
    const cw_config *cfg = config;
    size_t d = run->d;
    int32_t m = run->n_todo, steps = (int32_t)cfg->steps;
    size_t md = foolc__mul((size_t)m, d);
    double kappa = cfg->confidence, half = 0.5 * ((double)run->hi - run->lo);
    double *w = foolc__malloc(foolc__mul(md, 3 * sizeof(double)) +
                              foolc__mul((size_t)m, 7 * sizeof(double)));
    float *xs = foolc__malloc(foolc__mul(md, 3 * sizeof(float)) +
                              foolc__mul((size_t)m, (size_t)run->k * sizeof(float)));
    int32_t *act = foolc__malloc(foolc__mul((size_t)m, 2 * sizeof(int32_t) + 3));
    foolc_status st = FOOLC_OK;
    if (!w || !xs || !act) {
        st = foolc__nomem("cw-l2 buffers");
        goto out;
    }
    double *am = w + md, *av = am + md, *c = av + md, *lower = c + m, *upper = lower + m;
    double *prev = upper + m, *scale = prev + m, *margin = scale + m, *lr = margin + m;
    float *grad = xs + md, *th = grad + md, *logits = th + md;
    int32_t *sid = act + m;
    uint8_t *alive = (uint8_t *)(sid + m), *found = alive + m, *adv = found + m;
    for (int32_t a = 0; a < m; a++) {
        c[a] = cfg->initial_const;
        lower[a] = 0;
        upper[a] = INFINITY;
    }
    int32_t chk = steps >= 10 ? (steps + 9) / 10 : steps;
    for (int32_t b = 0; b < (int32_t)cfg->bss; b++) {
        for (int32_t a = 0; a < m; a++) {
            const float *x0 = run->x + (size_t)run->todo[a] * d;
            for (size_t j = 0; j < d; j++) {
                double u = ((double)x0[j] - run->lo) / half - 1.0;
                u = u > 0.999999 ? 0.999999 : u < -0.999999 ? -0.999999 : u;
                w[(size_t)a * d + j] = atanh(u);
            }
            memset(am + (size_t)a * d, 0, d * sizeof(double));
            memset(av + (size_t)a * d, 0, d * sizeof(double));
            alive[a] = 1;
            found[a] = 0;
            prev[a] = INFINITY;
            lr[a] = cfg->stepsize;
        }
        for (int32_t it = 0; it < steps; it++) {
            int32_t na = 0;
            for (int32_t a = 0; a < m; a++) {
                if (!alive[a]) continue;
                float *o = xs + (size_t)na * d, *ta = th + (size_t)na * d;
                const double *wa = w + (size_t)a * d;
                for (size_t j = 0; j < d; j++) {
                    double t = tanhf((float)wa[j]), v = run->lo + half * (t + 1.0);
                    ta[j] = (float)t;
                    o[j] = v < run->lo ? run->lo : v > run->hi ? run->hi : (float)v;
                }
                act[na] = a;
                sid[na] = run->todo[a];
                scale[na] = c[a];
                na++;
            }
            if (na == 0) break;
            if ((st = foolc__mn_margin_grad(run, xs, sid, na, scale, kappa, grad, margin, adv,
                                            logits)) < 0)
                goto out;
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
                double l2 = 0;
                double *wa = w + (size_t)a * d, *ma = am + (size_t)a * d, *va = av + (size_t)a * d;
                for (size_t j = 0; j < d; j++) {
                    double diff = (double)xq[j] - x0[j], t = tq[j];
                    l2 += diff * diff;
                    double gw = (2 * diff + g[j]) * half * (1 - t * t);
                    ma[j] = 0.9 * ma[j] + 0.1 * gw;
                    va[j] = 0.999 * va[j] + 0.001 * gw * gw;
                    wa[j] -= lr[a] * (ma[j] / b1) / (sqrt(va[j] / b2) + 1e-8);
                }
                double loss = l2 + c[a] * fmax(margin[q], -kappa);
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
                                          (int64_t)cfg->bss * steps)) < 0)
                goto out;
        }
        for (int32_t a = 0; a < m; a++) {
            if (found[a]) upper[a] = fmin(upper[a], c[a]);
            else lower[a] = fmax(lower[a], c[a]);
            c[a] = isinf(upper[a]) ? c[a] * 10 : 0.5 * (lower[a] + upper[a]);
        }
    }
    st = foolc__mn_finish(run, (int32_t)cfg->bisect);
out:
    foolc__free(w);
    foolc__free(xs);
    foolc__free(act);
    return st;
}

const foolc__attack_vt foolc__attack_cw_l2 = {
    .name = "cw-l2",
    .summary = "Carlini-Wagner L2: tanh box, Adam, per-sample binary search over c",
    .norm = FOOLC_L2,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = cw_params,
    .n_params = sizeof cw_params / sizeof cw_params[0],
    .config_size = sizeof(cw_config),
    .run = cw_run,
};
