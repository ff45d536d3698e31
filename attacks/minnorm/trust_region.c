/* Trust-region attack (Yao et al., arXiv:1812.06371), L2 and Linf. Under misclassification
 * with more than two classes, each sample first picks its target class: among the
 * `candidates` classes c with the largest clean logits, the one whose linearised boundary
 * is nearest, (z_y - z_c) / ||grad (z_y - z_c)||_dual (one backward row per candidate);
 * other criteria follow their margin. Then, until the point is adversarial, steps of the
 * steepest descent of f = z_y - z_target in the attack's norm (-sign g, or -g / ||g||_2), of
 * length min(f / ||g||_dual, eps) (the linearised boundary, or the trust region's radius
 * when that is nearer), plus 1e-4 times the box width, times (1 + overshoot). With
 * `adaptive`, the radius eps follows the agreement of the model with its linearisation:
 * rho = (actual decrease of f) / (predicted decrease, -g . step), measured at the next
 * iterate's own forward pass (no extra model call): eps grows by 1.2 when rho > 0.9 and
 * shrinks by 1.2 when rho < 0.5, within [eps_min, eps_max]. (The reference implementation
 * divides the decrease of the label's logit by eps instead, which depends on the scale of
 * the logits.) The first adversarial point is offered; the attack ends with the class-pair
 * boundary polish and the final search of attacks/minnorm/common.c. */
#include "arena.h"
#include "minnorm.h"
#include "numeric.h"

#include <math.h>
#include <string.h>

typedef struct tr_config {
    double steps, eps, adaptive, eps_min, eps_max, candidates, worst_case, overshoot, polish,
        bisect;
} tr_config;

static foolc_status tr_run(foolc__run *run, const void *config)
{
    const tr_config *cfg = config;
    foolc_norm p = run->norm;
    size_t d = run->d;
    int32_t m = run->n_todo, k = run->k, steps = (int32_t)cfg->steps;
    int pairs = k > 2 && foolc__run_crit_kind(run) == FOOLC__CRIT_MISCLASSIFICATION;
    int32_t nc = pairs ? (cfg->candidates < k - 1 ? (int32_t)cfg->candidates : k - 1) : 1;
    int32_t rows = m * nc;
    size_t rd = foolc__mul((size_t)rows, d);
    const double width = (double)run->hi - run->lo;
    foolc__arena ar = {0};
    float *xs, *grad, *logits, *xb;
    double *f, *eps, *fprev, *pred;
    int32_t *sid, *cls, *tgt, *at, *cand;
    uint8_t *adv, *act;
    foolc_status st;
    for (int pass = 0; pass < 2; pass++) {
        xs = foolc__arena_take(&ar, rd, sizeof(float));
        grad = foolc__arena_take(&ar, rd, sizeof(float));
        xb = foolc__arena_take(&ar, foolc__mul((size_t)m, d), sizeof(float));
        logits = foolc__arena_take(&ar, foolc__mul((size_t)rows, (size_t)k), sizeof(float));
        f = foolc__arena_take(&ar, (size_t)rows, sizeof(double));
        eps = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        fprev = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        pred = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        sid = foolc__arena_take(&ar, (size_t)rows, sizeof(int32_t));
        cls = foolc__arena_take(&ar, (size_t)rows, sizeof(int32_t));
        tgt = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        at = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        cand = foolc__arena_take(&ar, (size_t)nc, sizeof(int32_t));
        adv = foolc__arena_take(&ar, (size_t)rows, 1);
        act = foolc__arena_take(&ar, (size_t)m, 1);
        if (pass == 0 && (st = foolc__arena_alloc(&ar, "trust-region buffers")) < 0) return st;
    }
    foolc__pair pc = {run, NULL, cls};
    for (int32_t a = 0; a < m; a++) {
        memcpy(xb + (size_t)a * d, run->x + (size_t)run->todo[a] * d, d * sizeof(float));
        eps[a] = cfg->eps * width;
        act[a] = 1;
        fprev[a] = NAN;
        tgt[a] = -1;
    }
    /* The target of each sample (pairs): the candidate whose linearised boundary is nearest
     * (or, with worst_case, farthest) at the clean input. */
    if (pairs) {
        if (nc < k - 1 &&
            (st = foolc__run_scores(run, xb, run->todo, m, logits)) < 0)
            goto out;
        for (int32_t a = m - 1; a >= 0; a--) {
            int32_t y = run->labels[run->todo[a]];
            const float *z = logits + (size_t)a * k;
            for (int32_t q = 0; q < nc; q++) {   /* the nc largest logits but y's, in order */
                int32_t best = -1;
                for (int32_t c = 0; c < k; c++) {
                    if (c == y) continue;
                    int used = 0;
                    for (int32_t t = 0; t < q; t++) used |= cand[t] == c;
                    if (!used && (best < 0 || (nc < k - 1 && z[c] > z[best]))) best = c;
                }
                cand[q] = best;
            }
            for (int32_t q = 0; q < nc; q++) {
                int32_t r = a * nc + q;
                memcpy(xs + (size_t)r * d, xb + (size_t)a * d, d * sizeof(float));
                sid[r] = run->todo[a];
                cls[r] = cand[q];
            }
        }
        if ((st = foolc__run_grad_rows(run, xs, sid, rows, foolc__pair_row, &pc, grad, logits,
                                       NULL, f)) < 0)
            goto out;
        for (int32_t a = 0; a < m; a++) {
            double best = 0;
            for (int32_t q = 0; q < nc; q++) {
                int32_t r = a * nc + q;
                double gn = foolc__dual_norm(p, grad + (size_t)r * d, d);
                double per = fmax(f[r], 0) / fmax(gn, 1e-30);
                if (tgt[a] < 0 || (cfg->worst_case ? per > best : per < best)) {
                    best = per;
                    tgt[a] = cls[r];
                }
            }
        }
    }
    for (int32_t it = 0; it <= steps; it++) {
        int32_t na = 0;
        for (int32_t a = 0; a < m; a++) {
            if (!act[a]) continue;
            memcpy(xs + (size_t)na * d, xb + (size_t)a * d, d * sizeof(float));
            sid[na] = run->todo[a];
            cls[na] = tgt[a];
            at[na++] = a;
        }
        if (na == 0) break;
        if (pairs)
            st = foolc__run_grad_rows(run, xs, sid, na, foolc__pair_row, &pc, grad, logits, NULL,
                                      f);
        else
            st = foolc__mn_margin_grad(run, xs, sid, na, NULL, INFINITY, grad, f, NULL, logits);
        if (st < 0 || (st = foolc__run_logits_adv(run, logits, sid, na, adv, NULL)) < 0) goto out;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = at[q];
            float *xa = xb + (size_t)a * d;
            const float *g = grad + (size_t)q * d;
            if (adv[q]) {
                foolc__run_offer(run, sid[q], xa);
                act[a] = 0;
                continue;
            }
            if (it == steps) continue;   /* the last point was only checked */
            if (cfg->adaptive && isfinite(fprev[a]) && pred[a] > 0) {
                double rho = (fprev[a] - f[q]) / pred[a];
                if (rho > 0.9) eps[a] *= 1.2;
                else if (rho < 0.5) eps[a] /= 1.2;
                eps[a] = foolc__clamp(eps[a], cfg->eps_min * width, cfg->eps_max * width);
            }
            double gn = foolc__dual_norm(p, g, d), g2 = foolc__norm(FOOLC_L2, g, d);
            if (!(gn > 0) || !(g2 > 0)) {
                act[a] = 0;   /* no gradient: nowhere to go */
                continue;
            }
            double per = fmax(f[q], 0) / gn;
            if (per < eps[a]) eps[a] = per;   /* as the reference: the radius follows */
            double len = (eps[a] + 1e-4 * width) * (1 + cfg->overshoot), dec = 0;
            for (size_t j = 0; j < d; j++) {
                double dir = p == FOOLC_LINF ? (g[j] > 0 ? -1 : g[j] < 0 ? 1 : 0) : -g[j] / g2;
                float v = (float)foolc__clamp((double)xa[j] + len * dir, run->lo, run->hi);
                dec -= (double)g[j] * ((double)v - xa[j]);
                xa[j] = v;
            }
            fprev[a] = f[q];
            pred[a] = dec;
        }
        if (it < steps && (st = foolc__run_progress(run, it, steps)) < 0) goto out;
    }
    st = foolc__mn_polish_classes(run, p, (int32_t)cfg->polish, FOOLC__POLISH_MAX_CLASSES);
    if (st >= 0) st = foolc__mn_finish(run, (int32_t)cfg->bisect);
out:
    foolc__arena_free(&ar);
    return st;
}

/* ---- registry entries ---- */

/* The parameters both norms share; the reference implementation's, with the adaptive
 * radius (the paper's) on. */
#define TR_PARAMS                                                                            \
    FOOLC__PARAM(tr_config, steps, 100, 1, 100000, 1,                                        \
                 "steps at most (one forward+backward each; a sample stops when adversarial)"), \
    FOOLC__PARAM(tr_config, eps, 0.001, 1e-9, 1, 0,                                          \
                 "first trust-region radius (times the box width)"),                         \
    FOOLC__PARAM(tr_config, adaptive, 1, 0, 1, 1,                                            \
                 "[fixed|adaptive] 1: the radius follows the model's agreement with its "    \
                 "linearisation"),                                                            \
    FOOLC__PARAM(tr_config, candidates, 9, 1, 1000, 1,                                       \
                 "classes considered as the target (largest clean logits; misclassification)"), \
    FOOLC__PARAM(tr_config, worst_case, 0, 0, 1, 1,                                          \
                 "[best|worst] 1: target the class whose linearised boundary is farthest"),  \
    FOOLC__PARAM(tr_config, overshoot, 0.02, 0, 1, 0, "relative overshoot of every step"),   \
    FOOLC__PARAM(tr_config, polish, 10, 0, 100, 1,                                           \
                 "final boundary steps from the best adversarial; 0 = none"),                \
    FOOLC__PARAM(tr_config, bisect, 20, 0, 50, 1,                                            \
                 "final search towards the clean input, to a bracket 2^-bisect wide")

static const foolc__param tr_l2_params[] = {
    TR_PARAMS,
    FOOLC__PARAM(tr_config, eps_min, 0.0005, 1e-9, 1, 0,
                 "smallest adaptive radius (times the box width)"),
    FOOLC__PARAM(tr_config, eps_max, 0.05, 1e-9, 100, 0,
                 "largest adaptive radius (times the box width)"),
};

static const foolc__param tr_linf_params[] = {
    TR_PARAMS,
    FOOLC__PARAM(tr_config, eps_min, 0.0001, 1e-9, 1, 0,
                 "smallest adaptive radius (times the box width)"),
    FOOLC__PARAM(tr_config, eps_max, 0.01, 1e-9, 1, 0,
                 "largest adaptive radius (times the box width)"),
};

FOOLC__ATTACK(tr_l2, "tr-l2", FOOLC_L2, FOOLC__GRAD, tr_l2_params, tr_config, tr_run, NULL,
              "trust-region attack (L2): steepest steps within an adaptive radius");
FOOLC__ATTACK(tr_linf, "tr-linf", FOOLC_LINF, FOOLC__GRAD, tr_linf_params, tr_config, tr_run,
              NULL, "trust-region attack (Linf): sign steps within an adaptive radius");
