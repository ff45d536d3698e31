/* DDN, decoupled direction and norm (Rony et al., arXiv:1811.09600), L2: a normalised
 * gradient step with cosine-annealed size fixes the direction, and the norm is set apart:
 * it shrinks by (1 - gamma) while the point is adversarial and grows by (1 + gamma)
 * otherwise. Per sample; the smallest adversarial seen is kept, then bisected. */
#include "minnorm.h"
#include "numeric.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct ddn_config {
    double steps, init_epsilon, gamma, stepsize, loss, bisect, polish;
} ddn_config;

static const foolc__param ddn_params[] = {
    FOOLC__PARAM(ddn_config, steps, 100, 1, 10000, 1, "iterations"),
    FOOLC__PARAM(ddn_config, init_epsilon, 1, 1e-6, 1e6, 0, "first L2 norm of the perturbation"),
    FOOLC__PARAM(ddn_config, gamma, 0.05, 1e-4, 0.9, 0, "relative change of the norm per step"),
    FOOLC__PARAM(ddn_config, stepsize, 1, 1e-6, 1e3, 0,
                 "first step size alpha; cosine-annealed to 1 % of it"),
    FOOLC__PARAM(ddn_config, loss, 0, 0, 1, 1,
                 "[ce|margin] 0 cross-entropy (the paper's), 1 the criterion's logit margin"),
    FOOLC__PARAM(ddn_config, bisect, 20, 0, 50, 1,
                 "final search from the clean input towards the best adversarial, to a bracket "
                 "2^-bisect wide"),
    FOOLC__PARAM(ddn_config, polish, 10, 0, 100, 1,
                 "final boundary steps, one linearised class pair per other class"),
};

static foolc_status ddn_run(foolc__run *run, const void *config)
{
    const ddn_config *cfg = config;
    size_t d = run->d;
    int32_t m = run->n_todo, steps = (int32_t)cfg->steps, k = run->k;
    size_t md = foolc__mul((size_t)m, d);
    float *delta = foolc__malloc(foolc__mul(md, 3 * sizeof(float)) +
                                 foolc__mul((size_t)m, (size_t)k * sizeof(float)));
    double *eps = foolc__malloc(foolc__mul((size_t)m, 2 * sizeof(double)));
    int32_t *sid = foolc__malloc(foolc__mul((size_t)m, sizeof(int32_t) + 1));
    foolc_status st = FOOLC_OK;
    if (!delta || !eps || !sid) {
        st = foolc__nomem("ddn buffers");
        goto out;
    }
    float *xs = delta + md, *grad = xs + md, *logits = grad + md;
    double *worst = eps + m;
    uint8_t *adv = (uint8_t *)(sid + m);
    memset(delta, 0, md * sizeof(float));
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)run->todo[a] * d;
        double w2 = 0;
        for (size_t j = 0; j < d; j++) {
            double r = fmax((double)x0[j] - run->lo, (double)run->hi - x0[j]);
            w2 += r * r;
        }
        worst[a] = sqrt(w2);
        eps[a] = cfg->init_epsilon;
        sid[a] = run->todo[a];
    }
    foolc__loss loss = cfg->loss ? FOOLC__LOSS_MARGIN : FOOLC__LOSS_CE;
    for (int32_t it = 0; it < steps; it++) {
        double alpha = cfg->stepsize * (0.01 + 0.99 * (1 + cos(FOOLC__PI * it / steps)) / 2);
        for (int32_t a = 0; a < m; a++)
            foolc__mn_clip_step(run->x + (size_t)sid[a] * d, delta + (size_t)a * d, d,
                                run->lo, run->hi, xs + (size_t)a * d);
        if ((st = foolc__run_grad(run, xs, sid, m, loss, grad, NULL, logits)) < 0) goto out;
        if ((st = foolc__run_logits_adv(run, logits, sid, m, adv, NULL)) < 0) goto out;
        for (int32_t a = 0; a < m; a++) {
            float *da = delta + (size_t)a * d;
            const float *g = grad + (size_t)a * d, *x0 = run->x + (size_t)sid[a] * d;
            if (adv[a]) foolc__run_offer(run, sid[a], xs + (size_t)a * d);
            double gn = foolc__norm(FOOLC_L2, g, d);
            if (gn > 0) foolc__mn_axpy(da, g, -alpha / gn, d);
            eps[a] = fmin(eps[a] * (adv[a] ? 1 - cfg->gamma : 1 + cfg->gamma), worst[a]);
            double dn = foolc__norm(FOOLC_L2, da, d);
            if (dn > 0) foolc__mn_scale(da, eps[a] / dn, d);
            /* Back into the box, as the paper's clamp. */
            foolc__mn_box(x0, da, d, run->lo, run->hi);
        }
        if ((st = foolc__run_progress(run, it, steps)) < 0) goto out;
    }
    st = foolc__mn_polish_classes(run, FOOLC_L2, (int32_t)cfg->polish,
                                  FOOLC__POLISH_MAX_CLASSES);
    if (st >= 0) st = foolc__mn_finish(run, (int32_t)cfg->bisect);
out:
    foolc__free(delta);
    foolc__free(eps);
    foolc__free(sid);
    return st;
}

FOOLC__ATTACK(ddn, "ddn", FOOLC_L2, FOOLC__GRAD, ddn_params, ddn_config, ddn_run, NULL,
              "decoupled direction and norm (L2): normalised steps, norm shrinks or grows");
