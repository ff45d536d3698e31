/* FAB, fast adaptive boundary (Croce & Hein, arXiv:1907.02044) in Linf, L2 and L1: each
 * step linearises the decision boundary of the closest class, projects both the iterate
 * and the clean input onto that hyperplane within the box (exact minimal-norm solvers),
 * mixes the two with a bias towards the clean input, extrapolates by eta and, once
 * adversarial, steps back towards the clean input by beta. */
#include "arena.h"
#include "minnorm.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static foolc_status fab_run(foolc__run *run, const void *config)
{
    const foolc__fab_config *cfg = config;
    foolc_norm p = run->norm;
    size_t d = run->d;
    int32_t m = run->n_todo, k = run->k, steps = (int32_t)cfg->steps;
    size_t md = foolc__mul((size_t)m, d);
    int multi = foolc__run_crit_kind(run) == FOOLC__CRIT_MISCLASSIFICATION;
    int32_t ncls = multi ? (cfg->classes > 0 && cfg->classes < k - 1 ? (int32_t)cfg->classes
                                                                     : k - 1) : 1;
    foolc__arena ar = {0};
    float *x, *xs, *grad, *w, *d1, *d2, *logits;
    void *work;
    double *gval, *best, *ratio, *margin;
    int32_t *sid, *cls, *order;
    uint8_t *adv;
    foolc_status st = FOOLC_OK;
    for (int pass = 0; pass < 2; pass++) {
        x = foolc__arena_take(&ar, md, sizeof(float));
        xs = foolc__arena_take(&ar, md, sizeof(float));
        grad = foolc__arena_take(&ar, md, sizeof(float));
        w = foolc__arena_take(&ar, md, sizeof(float));
        d1 = foolc__arena_take(&ar, md, sizeof(float));
        d2 = foolc__arena_take(&ar, md, sizeof(float));
        logits = foolc__arena_take(&ar, foolc__mul((size_t)m, (size_t)k), sizeof(float));
        work = foolc__arena_take(&ar, foolc__mn_plane_work(d), 1);
        gval = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        best = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        ratio = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        margin = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        sid = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        cls = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        order = foolc__arena_take(&ar, foolc__mul((size_t)m, (size_t)ncls), sizeof(int32_t));
        adv = foolc__arena_take(&ar, (size_t)m, 1);
        if (pass == 0 && (st = foolc__arena_alloc(&ar, "fab buffers")) < 0) return st;
    }
    for (int32_t a = 0; a < m; a++) {
        sid[a] = run->todo[a];
        best[a] = INFINITY;
    }
    int64_t total = (int64_t)cfg->restarts * steps;
    for (int32_t r = 0; r < (int32_t)cfg->restarts; r++) {
        /* Start at the clean input, later restarts at a random point of radius half the
         * best distance (or a tenth of the box when nothing was found yet). */
        for (int32_t a = 0; a < m; a++) {
            const float *x0 = run->x + (size_t)sid[a] * d;
            float *xa = x + (size_t)a * d;
            memcpy(xa, x0, d * sizeof(float));
            if (r == 0) continue;
            foolc__rng g;
            foolc__rng_for(&g, run, sid[a], FOOLC__STREAM_FAB + (uint64_t)r);
            for (size_t j = 0; j < d; j++) d1[j] = (float)(2 * foolc__rng_uniform(&g) - 1);
            double rad = isfinite(best[a]) ? 0.5 * best[a]
                         : 0.1 * ((double)run->hi - run->lo) *
                           (p == FOOLC_L2 ? sqrt((double)d) : p == FOOLC_L1 ? (double)d : 1);
            double nn = foolc__norm(p, d1, d);
            for (size_t j = 0; j < d; j++) d1[j] = (float)(d1[j] * (nn > 0 ? rad / nn : 0));
            foolc__mn_clip_step(x0, d1, d, run->lo, run->hi, xa);
        }
        for (int32_t it = 0; it < steps; it++) {
            /* The closest linearised boundary: class by class, keep the smallest
             * |g| / ||grad g||_dual per sample in w and gval. */
            for (int32_t c = 0; c < ncls; c++) {
                if (c == 0) {
                    st = foolc__mn_margin_grad(run, x, sid, m, NULL, INFINITY, grad, margin,
                                               adv, logits);
                } else {
                    for (int32_t a = 0; a < m; a++) cls[a] = order[(size_t)a * ncls + c];
                    foolc__pair pc = {run, NULL, cls};
                    st = foolc__run_grad_rows(run, x, sid, m, foolc__pair_row, &pc, grad, NULL,
                                              NULL, margin);
                }
                if (st < 0) goto out;
                for (int32_t a = 0; a < m; a++) {
                    const float *g = grad + (size_t)a * d;
                    if (c == 0) {
                        if (adv[a]) {
                            foolc__run_offer(run, sid[a], x + (size_t)a * d);
                            double nd = foolc_distance(p, run->x + (size_t)sid[a] * d,
                                                       x + (size_t)a * d, d);
                            best[a] = fmin(best[a], nd);
                        }
                        /* Other classes by decreasing logit (pair passes use them). */
                        if (multi) {
                            const float *z = logits + (size_t)a * (size_t)k;
                            int32_t y = run->labels[sid[a]], *o = order + (size_t)a * ncls;
                            for (int32_t q = 0; q < ncls; q++) {
                                int32_t bj = -1;
                                for (int32_t j = 0; j < k; j++) {
                                    int used = j == y;
                                    for (int32_t u = 0; u < q && !used; u++) used = o[u] == j;
                                    if (!used && (bj < 0 || z[j] > z[bj])) bj = j;
                                }
                                o[q] = bj;
                            }
                        }
                    }
                    double dn = foolc__dual_norm(p, g, d), rt = fabs(margin[a]) / (dn + 1e-12);
                    if (c == 0 || rt < ratio[a]) {
                        ratio[a] = rt;
                        gval[a] = margin[a];
                        memcpy(w + (size_t)a * d, g, d * sizeof(float));
                    }
                }
            }
            /* Projections of the iterate and of the clean input, then the mixed step. */
            for (int32_t a = 0; a < m; a++) {
                const float *x0 = run->x + (size_t)sid[a] * d, *wa = w + (size_t)a * d;
                float *xa = x + (size_t)a * d, *e1 = d1 + (size_t)a * d, *e2 = d2 + (size_t)a * d;
                double wx = 0;
                for (size_t j = 0; j < d; j++) wx += (double)wa[j] * ((double)x0[j] - xa[j]);
                foolc__mn_plane_proj(p, xa, wa, -gval[a], d, run->lo, run->hi, e1, work);
                foolc__mn_plane_proj(p, x0, wa, -gval[a] - wx, d, run->lo, run->hi, e2, work);
                double a1 = fmax(foolc__norm(p, e1, d), 1e-8);
                double a2 = fmax(foolc__norm(p, e2, d), 1e-8);
                double al = fmin(fmax(a1 / (a1 + a2), 0), cfg->alpha_max);
                /* A sample with no adversarial after 10 steps is one whose boundary the
                 * linearisation keeps missing (sparse L1 steps on a ReLU net undershoot):
                 * its extrapolation grows by 5 % a step, up to 10x, until it crosses. */
                double eta = cfg->eta;
                if (!isfinite(best[a]) && it > 10) eta *= fmin(pow(1.05, it - 10), 10.0);
                float *o = xs + (size_t)a * d;
                for (size_t j = 0; j < d; j++) {
                    double v = (1 - al) * ((double)xa[j] + eta * e1[j]) +
                               al * ((double)x0[j] + eta * e2[j]);
                    o[j] = v < run->lo ? run->lo : v > run->hi ? run->hi : (float)v;
                }
            }
            if ((st = foolc__run_is_adv(run, xs, sid, m, adv, NULL)) < 0) goto out;
            for (int32_t a = 0; a < m; a++) {
                const float *x0 = run->x + (size_t)sid[a] * d;
                float *o = xs + (size_t)a * d, *xa = x + (size_t)a * d;
                if (adv[a]) {
                    foolc__run_offer(run, sid[a], o);
                    best[a] = fmin(best[a], foolc_distance(p, x0, o, d));
                    for (size_t j = 0; j < d; j++)
                        xa[j] = (float)((double)x0[j] + cfg->beta * ((double)o[j] - x0[j]));
                } else {
                    memcpy(xa, o, d * sizeof(float));
                }
            }
            if ((st = foolc__run_progress(run, (int64_t)r * steps + it, total)) < 0) goto out;
        }
    }
    st = foolc__mn_finish(run, (int32_t)cfg->bisect);
out:
    foolc__arena_free(&ar);
    return st;
}

/* ---- registry entries ---- */

static const foolc__param fab_params[] = {
    FOOLC__PARAM(foolc__fab_config, steps, 100, 1, 10000, 1, "iterations per restart"),
    FOOLC__PARAM(foolc__fab_config, restarts, 1, 1, 100, 1,
                 "runs; the first starts at the clean input, later ones at random points"),
    FOOLC__PARAM(foolc__fab_config, alpha_max, 0.1, 0, 1, 0,
                 "largest weight of the projection of the clean input in each step"),
    FOOLC__PARAM(foolc__fab_config, eta, 1.05, 1, 2, 0,
                 "extrapolation factor of the projection step"),
    FOOLC__PARAM(foolc__fab_config, beta, 0.9, 0, 1, 0,
                 "backward step towards the clean input after an adversarial step"),
    FOOLC__PARAM(foolc__fab_config, classes, 0, 0, 1000, 1,
                 "other classes linearised per step (top by logit; 0 = all; untargeted only)"),
    FOOLC__PARAM(foolc__fab_config, bisect, 20, 0, 50, 1,
                 "final search towards the clean input, to a bracket 2^-bisect wide"),
};

FOOLC__ATTACK(fab_l1, "fab-l1", FOOLC_L1, FOOLC__GRAD, fab_params, foolc__fab_config, fab_run, NULL,
              "fast adaptive boundary (L1): exact projections on linearised boundaries");
FOOLC__ATTACK(fab_l2, "fab-l2", FOOLC_L2, FOOLC__GRAD, fab_params, foolc__fab_config, fab_run, NULL,
              "fast adaptive boundary (L2): exact projections on linearised boundaries");
FOOLC__ATTACK(fab_linf, "fab-linf", FOOLC_LINF, FOOLC__GRAD, fab_params, foolc__fab_config, fab_run,
              NULL, "fast adaptive boundary (Linf): exact projections on linearised boundaries");
