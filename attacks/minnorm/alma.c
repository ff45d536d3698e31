/* ALMA, the augmented Lagrangian method for adversarial attacks (Rony et al.,
 * arXiv:2011.11857), in L1 and L2: minimises ||delta|| + P(l(x0 + delta); rho, mu), with l
 * the difference-of-logits ratio (DLR; the criterion's margin where DLR is undefined) and
 * P the penalty-Lagrangian P2, by RMSProp with momentum on delta. The multiplier mu follows
 * P'(l) by an exponential moving average, the penalty rho grows by gamma every check_steps
 * steps where the constraint neither holds nor improved by tau; the step size decays
 * exponentially from the first success. The first step size is found by a line search so
 * that the first step moves init_lr_distance in the attack's norm. Ends with the boundary
 * polish and the final search of attacks/minnorm/common.c. */
#include "arena.h"
#include "minnorm.h"
#include "numeric.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct alma_config {
    double steps, lr_init, lr_reduction, init_lr_distance, mu_init, rho_init, check_steps,
        tau, gamma, alpha, loss, polish, bisect;
} alma_config;

/* P2 of the paper: y >= 0: mu y + mu rho y^2 + rho^2 y^3 / 6; y < 0: mu y / (1 - rho y).
 * Its derivative in y. */
static double p2_prime(double y, double rho, double mu)
{
    if (y >= 0) return mu + 2 * mu * rho * y + 0.5 * rho * rho * y * y;
    double q = 1 - rho * y;
    return mu / (q * q);
}

/* ||clip(x0 - lr g) - x0|| in norm p. */
static double step_dist(const foolc__run *run, foolc_norm p, const float *x0, const double *g,
                        double lr)
{
    double s = 0;
    for (size_t j = 0; j < run->d; j++) {
        double v = foolc__clamp((double)x0[j] - lr * g[j], run->lo, run->hi) - x0[j];
        s += p == FOOLC_L1 ? fabs(v) : v * v;
    }
    return p == FOOLC_L1 ? s : sqrt(s);
}

/* The step size lr with ||clip(x0 - lr g) - x0|| = target (the paper's epsilon): doubling
 * from 1 until past it, then 20 bisections, as the reference implementation. No model
 * call. A direction the box blocks entirely gives up after 64 doublings. */
static double init_lr(const foolc__run *run, foolc_norm p, const float *x0, const double *g,
                      double target)
{
    double lr = 1, lower = 0;
    for (int t = 0; t < 64 && !(step_dist(run, p, x0, g, lr) > target); t++) {
        lower = lr;
        lr *= 2;
    }
    for (int t = 0; t < 20; t++) {
        double mid = 0.5 * (lower + lr);
        if (step_dist(run, p, x0, g, mid) > target) lr = mid;
        else lower = mid;
    }
    return 0.5 * (lr + lower);
}

/* RMSProp with momentum (both weighted by alpha), in double per element. */
FOOLC__VEC
static void rmsprop(size_t d, const double *restrict g, double al, double step,
                    float *restrict sa, float *restrict ma, float *restrict da)
{
#define RMSPROP(j)                                                                                 \
    do {                                                                                           \
        double s_ = al * sa[j] + (1 - al) * g[j] * g[j];                                           \
        s_ = s_ > FLT_MAX ? FLT_MAX : s_;                                                          \
        double mv_ = al * ma[j] + g[j] / (sqrt(s_) + 1e-8);                                        \
        sa[j] = (float)s_;                                                                         \
        ma[j] = (float)mv_;                                                                        \
        da[j] = (float)(da[j] - step * mv_);                                                       \
    } while (0)
    FOOLC__BLOCKED(d, RMSPROP);
#undef RMSPROP
}

static foolc_status alma_run(foolc__run *run, const void *config)
{
    const alma_config *cfg = config;
    foolc_norm p = run->norm;
    size_t d = run->d;
    int32_t m = run->n_todo, steps = (int32_t)cfg->steps, check = (int32_t)cfg->check_steps;
    size_t md = foolc__mul((size_t)m, d);
    foolc__arena ar = {0};
    float *delta, *xs, *grad, *sq, *mom, *logits, *lossf;
    double *g, *mu, *rho, *lr, *prev;
    int32_t *sid, *found_at;
    uint8_t *adv, *found;
    foolc_status st;
    for (int pass = 0; pass < 2; pass++) {
        delta = foolc__arena_take(&ar, md, sizeof(float));
        xs = foolc__arena_take(&ar, md, sizeof(float));
        grad = foolc__arena_take(&ar, md, sizeof(float));
        sq = foolc__arena_take(&ar, md, sizeof(float));
        mom = foolc__arena_take(&ar, md, sizeof(float));
        logits = foolc__arena_take(&ar, foolc__mul((size_t)m, (size_t)run->k), sizeof(float));
        lossf = foolc__arena_take(&ar, (size_t)m, sizeof(float));
        g = foolc__arena_take(&ar, d, sizeof(double));
        mu = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        rho = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        lr = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        prev = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        sid = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        found_at = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        adv = foolc__arena_take(&ar, (size_t)m, 1);
        found = foolc__arena_take(&ar, (size_t)m, 1);
        if (pass == 0 && (st = foolc__arena_alloc(&ar, "alma buffers")) < 0) return st;
    }
    memset(delta, 0, md * sizeof(float));
    memset(mom, 0, md * sizeof(float));
    for (size_t j = 0; j < md; j++) sq[j] = 1;
    for (int32_t a = 0; a < m; a++) {
        sid[a] = run->todo[a];
        mu[a] = cfg->mu_init;
        rho[a] = cfg->rho_init;
        lr[a] = cfg->lr_init;
        prev[a] = 0;
        found[a] = 0;
        found_at[a] = steps + 1;
    }
    const double al = cfg->alpha;
    foolc__loss loss = cfg->loss ? FOOLC__LOSS_MARGIN : FOOLC__LOSS_DLR;
    for (int32_t it = 0; it < steps; it++) {
        for (int32_t a = 0; a < m; a++)
            foolc__mn_clip_step(run->x + (size_t)sid[a] * d, delta + (size_t)a * d, d,
                                run->lo, run->hi, xs + (size_t)a * d);
        if ((st = foolc__run_grad(run, xs, sid, m, loss, grad, lossf, logits)) < 0) goto out;
        if ((st = foolc__run_logits_adv(run, logits, sid, m, adv, NULL)) < 0) goto out;
        for (int32_t a = 0; a < m; a++) {
            const float *x0 = run->x + (size_t)sid[a] * d, *ga = grad + (size_t)a * d;
            float *da = delta + (size_t)a * d, *sa = sq + (size_t)a * d, *ma = mom + (size_t)a * d;
            double y = lossf[a];
            if (it == 0) {
                prev[a] = y;
            } else if ((it + 1) % check == 0) {
                if (!(found[a] || y < cfg->tau * prev[a])) rho[a] *= cfg->gamma;
                prev[a] = y;
            }
            if (it > 0) {
                double nm = al * mu[a] + (1 - al) * p2_prime(y, rho[a], mu[a]);
                mu[a] = foolc__clamp(nm, 1e-6, 1e12);
            }
            if (adv[a]) {
                foolc__run_offer(run, sid[a], xs + (size_t)a * d);
                if (!found[a]) {
                    found[a] = 1;
                    found_at[a] = it;
                }
            }
            /* The gradient of the objective in delta: P'(l) grad l, plus (after the first
             * step, as the paper) the norm's gradient. */
            double pp = p2_prime(y, rho[a], mu[a]);
            double dn = it > 0 && p == FOOLC_L2 ? foolc__norm(FOOLC_L2, da, d) : 0;
            double gn = 0;
            for (size_t j = 0; j < d; j++) {
                double v = pp * ga[j];
                if (it > 0)
                    v += p == FOOLC_L2 ? (dn > 0 ? da[j] / dn : 0)
                                       : (da[j] > 0 ? 1 : da[j] < 0 ? -1 : 0);
                g[j] = v;
                gn += v * v;
            }
            if (it == 0 && cfg->init_lr_distance > 0) {
                if (!(sqrt(gn) > 1e-6)) {   /* no usable gradient: a random direction */
                    foolc__rng r;
                    foolc__rng_for(&r, run, sid[a], FOOLC__STREAM_ALMA);
                    double s2 = 0;
                    for (size_t j = 0; j < d; j++) {
                        g[j] = foolc__rng_normal(&r);
                        s2 += g[j] * g[j];
                    }
                    s2 = s2 > 0 ? 1 / sqrt(s2) : 0;
                    for (size_t j = 0; j < d; j++) g[j] *= s2;
                }
                lr[a] = init_lr(run, p, x0, g, cfg->init_lr_distance);
            }
            double decay = 1;
            if (it > found_at[a])
                decay = pow(cfg->lr_reduction,
                            (double)(it - found_at[a]) / (double)(steps - found_at[a]));
            double step = lr[a] * decay;
            rmsprop(d, g, al, step, sa, ma, da);
            foolc__mn_box(x0, da, d, run->lo, run->hi);
        }
        if ((st = foolc__run_progress(run, it, steps)) < 0) goto out;
    }
    if ((st = foolc__mn_polish(run, p, (int32_t)cfg->polish)) < 0) goto out;
    st = foolc__mn_finish(run, (int32_t)cfg->bisect);
out:
    foolc__arena_free(&ar);
    return st;
}

/* ---- registry entries ---- */

/* The parameters both norms share; the paper's settings (its MNIST runs at 1000 steps). */
#define ALMA_PARAMS                                                                          \
    FOOLC__PARAM(alma_config, steps, 1000, 1, 10000, 1, "iterations"),                       \
    FOOLC__PARAM(alma_config, lr_init, 0.1, 1e-6, 1e3, 0,                                    \
                 "first step size when init_lr_distance is 0"),                              \
    FOOLC__PARAM(alma_config, lr_reduction, 0.01, 1e-6, 1, 0,                               \
                 "the step size decays exponentially to this fraction from the first "       \
                 "success to the last step"),                                                 \
    FOOLC__PARAM(alma_config, mu_init, 1, 1e-6, 1e6, 0, "first Lagrange multiplier mu"),    \
    FOOLC__PARAM(alma_config, rho_init, 1, 1e-6, 1e6, 0, "first penalty parameter rho"),    \
    FOOLC__PARAM(alma_config, check_steps, 10, 1, 10000, 1,                                  \
                 "steps between checks of the constraint's improvement (M)"),                \
    FOOLC__PARAM(alma_config, tau, 0.95, 0, 1, 0,                                            \
                 "improvement rate: rho grows unless the loss fell below tau times its "     \
                 "value at the last check"),                                                  \
    FOOLC__PARAM(alma_config, gamma, 1.2, 1, 100, 0, "growth of rho"),                      \
    FOOLC__PARAM(alma_config, alpha, 0.9, 0, 0.9999, 0,                                      \
                 "weight of the moving averages (mu, RMSProp, momentum)"),                   \
    FOOLC__PARAM(alma_config, loss, 0, 0, 1, 1,                                              \
                 "[dlr|margin] 0 the difference of logits ratio (the paper's), 1 the "      \
                 "criterion's margin"),                                                       \
    FOOLC__PARAM(alma_config, polish, 10, 0, 100, 1,                                         \
                 "final boundary steps from the best adversarial; 0 = none"),                \
    FOOLC__PARAM(alma_config, bisect, 20, 0, 50, 1,                                          \
                 "final search towards the clean input, to a bracket 2^-bisect wide")

static const foolc__param alma_l1_params[] = {
    ALMA_PARAMS,
    FOOLC__PARAM(alma_config, init_lr_distance, 0.5, 0, 1e6, 0,
                 "the first step moves this far in L1 (epsilon); 0 = lr_init"),
};

static const foolc__param alma_l2_params[] = {
    ALMA_PARAMS,
    FOOLC__PARAM(alma_config, init_lr_distance, 0.1, 0, 1e6, 0,
                 "the first step moves this far in L2 (epsilon); 0 = lr_init"),
};

FOOLC__ATTACK(alma_l1, "alma-l1", FOOLC_L1, FOOLC__GRAD, alma_l1_params, alma_config, alma_run,
              NULL, "augmented Lagrangian attack (L1): penalty-Lagrangian, RMSProp steps");
FOOLC__ATTACK(alma_l2, "alma-l2", FOOLC_L2, FOOLC__GRAD, alma_l2_params, alma_config, alma_run,
              NULL, "augmented Lagrangian attack (L2): penalty-Lagrangian, RMSProp steps");
