/* VFGA, the voting folded Gaussian attack (Césaire et al., arXiv:2011.12423), L0: a greedy
 * walk that changes one more coordinate per step. The gradient of the loss (cross-entropy:
 * the label's log-probability, or the target's) picks the coordinate whose increase and the
 * one whose decrease would lower it most among those not yet changed (gradient times the
 * room to the box); n_samples folded-Gaussian values are drawn for each, |N(0, 1)| times
 * the room (clipped), and the candidate that is adversarial, else that lowers the loss
 * most, becomes the next point. Per sample the draws come from its own stream, keyed by the
 * step. A sample stops at its first adversarial; then (polish) the L0 polish of
 * attacks/minnorm/pdpgd.c: per class pair the fewest coordinates pushed to the box, then a
 * pruning of the best point (the pruning alone removed nothing on 20 images of the
 * reference CNN). */
#include "arena.h"
#include "minnorm.h"
#include "numeric.h"

#include <math.h>
#include <string.h>

typedef struct vfga_config {
    double max_iter, n_samples, polish;
} vfga_config;

static const foolc__param vfga_params[] = {
    FOOLC__PARAM(vfga_config, max_iter, 0, 0, 1e7, 1,
                 "steps (coordinates changed) at most; 0 = every coordinate"),
    FOOLC__PARAM(vfga_config, n_samples, 10, 1, 1000, 1,
                 "values drawn per step for each of the two coordinates"),
    FOOLC__PARAM(vfga_config, polish, 1, 0, 1, 1,
                 "[off|on] the final L0 polish (per class pair, then a pruning)"),
};

/* What the candidates are ranked by, lower being more adversarial: the label's
 * log-probability (misclassification), minus the target's (targeted), of the logits at the
 * sample's temperature (foolc__run_temp, as the cross-entropy of the gradient: the ranking
 * does not change when the logits are multiplied by a positive factor, where the plain
 * softmax of logits scaled by 1e3 rounds every candidate to log-probability 0), else the
 * criterion's margin (mg). */
static double vfga_value(const foolc__run *run, foolc__crit_kind kind, const float *z,
                         int32_t s, double mg)
{
    if (kind == FOOLC__CRIT_OTHER) return mg;
    int32_t k = run->k, c = kind == FOOLC__CRIT_TARGETED ? run->targets[s] : run->labels[s];
    double mean, it = 1 / foolc__run_temp(run, s, z, k, &mean), umax = -INFINITY, sum = 0;
    for (int32_t j = 0; j < k; j++) umax = fmax(umax, ((double)z[j] - mean) * it);
    for (int32_t j = 0; j < k; j++) sum += exp(((double)z[j] - mean) * it - umax);
    double logp = ((double)z[c] - mean) * it - umax - log(sum);
    return kind == FOOLC__CRIT_TARGETED ? -logp : logp;
}

static foolc_status vfga_chunk(foolc__run *run, const vfga_config *cfg, const int32_t *todo,
                               int32_t m)
{
    size_t d = run->d, k = (size_t)run->k;
    int32_t ns = (int32_t)cfg->n_samples, nc = 2 * ns;
    size_t steps = cfg->max_iter > 0 && cfg->max_iter < (double)d ? (size_t)cfg->max_iter : d;
    size_t mc = foolc__mul((size_t)m, (size_t)nc);
    foolc__crit_kind kind = foolc__run_crit_kind(run);
    foolc__arena ar = {0};
    float *xc, *grad, *cand, *logits;
    double *margin;
    int32_t *sid, *cid;
    uint8_t *used, *act, *adv;
    foolc_status st;
    for (int pass = 0; pass < 2; pass++) {
        xc = foolc__arena_take(&ar, foolc__mul((size_t)m, d), sizeof(float));
        grad = foolc__arena_take(&ar, foolc__mul((size_t)m, d), sizeof(float));
        cand = foolc__arena_take(&ar, foolc__mul(mc, d), sizeof(float));
        logits = foolc__arena_take(&ar, foolc__mul(mc, k), sizeof(float));
        margin = foolc__arena_take(&ar, mc, sizeof(double));
        sid = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        cid = foolc__arena_take(&ar, mc, sizeof(int32_t));
        used = foolc__arena_take(&ar, foolc__mul((size_t)m, d), 1);
        act = foolc__arena_take(&ar, (size_t)m, 1);
        adv = foolc__arena_take(&ar, mc, 1);
        if (pass == 0 && (st = foolc__arena_alloc(&ar, "vfga buffers")) < 0) return st;
    }
    memset(used, 0, (size_t)m * d);
    for (int32_t a = 0; a < m; a++) {
        memcpy(xc + (size_t)a * d, run->x + (size_t)todo[a] * d, d * sizeof(float));
        sid[a] = todo[a];
        act[a] = 1;
    }
    int32_t na = m;   /* the active samples, compacted to the front (rows move with them) */
    for (size_t it = 0; it < steps; it++) {
        int32_t live = 0;
        for (int32_t a = 0; a < na; a++) {
            if (!act[a]) continue;
            if (a != live) {
                memcpy(xc + (size_t)live * d, xc + (size_t)a * d, d * sizeof(float));
                memcpy(used + (size_t)live * d, used + (size_t)a * d, d);
                sid[live] = sid[a];
            }
            act[live++] = 1;
        }
        na = live;
        if (na == 0) break;
        st = foolc__run_grad(run, xc, sid, na, FOOLC__LOSS_CE, grad, NULL, NULL);
        if (st < 0) goto out;
        for (int32_t q = 0; q < na; q++) {
            const float *x = xc + (size_t)q * d, *g = grad + (size_t)q * d;
            const uint8_t *u = used + (size_t)q * d;
            /* The coordinate to raise: max (hi - x_j) (-g_j); to lower: max (x_j - lo) g_j. */
            size_t ip = d, im = d;
            double bp = -INFINITY, bm = -INFINITY;
            for (size_t j = 0; j < d; j++) {
                if (u[j]) continue;
                double vp = ((double)run->hi - x[j]) * -(double)g[j];
                double vm = ((double)x[j] - run->lo) * (double)g[j];
                if (vp > bp) {
                    bp = vp;
                    ip = j;
                }
                if (vm > bm) {
                    bm = vm;
                    im = j;
                }
            }
            foolc__rng r;
            foolc__rng_for(&r, run, sid[q], FOOLC__STREAM_VFGA + (uint64_t)it);
            for (int32_t c = 0; c < nc; c++) {
                float *o = cand + ((size_t)q * (size_t)nc + (size_t)c) * d;
                memcpy(o, x, d * sizeof(float));
                double e = fabs(foolc__rng_normal(&r));
                if (c < ns && ip < d)
                    o[ip] = (float)foolc__clamp(x[ip] + e * ((double)run->hi - x[ip]), run->lo,
                                                run->hi);
                else if (c >= ns && im < d)
                    o[im] = (float)foolc__clamp(x[im] - e * ((double)x[im] - run->lo), run->lo,
                                                run->hi);
                cid[(size_t)q * (size_t)nc + (size_t)c] = sid[q];
            }
        }
        int32_t nq = na * nc;
        if ((st = foolc__run_scores(run, cand, cid, nq, logits)) < 0) goto out;
        if ((st = foolc__run_logits_adv(run, logits, cid, nq, adv, margin)) < 0) goto out;
        for (int32_t q = 0; q < na; q++) {
            int32_t best = -1, best_adv = 0;
            double bv = INFINITY;
            for (int32_t c = 0; c < nc; c++) {
                size_t row = (size_t)q * (size_t)nc + (size_t)c;
                double v = vfga_value(run, kind, logits + row * k, sid[q], margin[row]);
                if (best < 0 || (adv[row] && !best_adv) || (adv[row] == best_adv && v < bv)) {
                    best = c;
                    best_adv = adv[row];
                    bv = v;
                }
            }
            const float *o = cand + ((size_t)q * (size_t)nc + (size_t)best) * d;
            float *x = xc + (size_t)q * d;
            uint8_t *u = used + (size_t)q * d;
            for (size_t j = 0; j < d; j++)
                if (o[j] != x[j]) u[j] = 1;
            /* The coordinate tried is spent even when its draw left it where it was. */
            size_t at = d;
            for (size_t j = 0; j < d && at == d; j++)
                if (o[j] != x[j]) at = j;
            if (at == d) {
                /* nothing moved (both coordinates at the box): spend the chosen one */
                const float *g = grad + (size_t)q * d;
                size_t pick = d;
                double bp = -INFINITY;
                for (size_t j = 0; j < d; j++) {
                    if (u[j]) continue;
                    double vv = fmax(((double)run->hi - x[j]) * -(double)g[j],
                                     ((double)x[j] - run->lo) * (double)g[j]);
                    if (vv > bp) {
                        bp = vv;
                        pick = j;
                    }
                }
                if (pick < d) u[pick] = 1;
                else act[q] = 0;   /* every coordinate spent */
            }
            memcpy(x, o, d * sizeof(float));
            if (best_adv) {
                foolc__run_offer(run, sid[q], x);
                act[q] = 0;
            }
        }
        if ((st = foolc__run_progress(run, (int64_t)it, (int64_t)steps)) < 0) goto out;
    }
    st = FOOLC_OK;
out:
    foolc__arena_free(&ar);
    return st;
}

static foolc_status vfga_run(foolc__run *run, const void *config)
{
    const vfga_config *cfg = config;
    int32_t per = 4096 / (int32_t)(2 * cfg->n_samples);
    if (per < 1) per = 1;
    foolc_status st = foolc__run_temps(run);
    for (int32_t b = 0; b < run->n_todo && st >= 0; b += per)
        st = vfga_chunk(run, cfg, run->todo + b, run->n_todo - b < per ? run->n_todo - b : per);
    if (st >= 0 && cfg->polish > 0) st = foolc__mn_l0_polish(run);
    return st;
}

FOOLC__ATTACK(vfga, "vfga", FOOLC_L0, FOOLC__GRAD, vfga_params, vfga_config, vfga_run, NULL,
              "voting folded Gaussian attack (L0): one more coordinate per step, values drawn "
              "around the gradient's choice");
