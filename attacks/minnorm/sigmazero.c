/* sigma-zero (Cinà et al., arXiv:2402.01879), L0: Adam on the perturbation minimises
 * max(margin, 0) + mean_j delta_j^2 / (delta_j^2 + sigma) (a smooth L0), the gradient
 * normalised by its Linf norm, the step size cosine-annealed from eta_0 to eta_0 / 10; after
 * each step a per-sample threshold tau zeroes the components smaller than it, and moves by
 * tau_factor times the step size: up while the point is adversarial (sparser), down while
 * it is not. One forward+backward per step and sample; the smallest adversarial seen (in
 * L0) is kept, then (polish) the L0 polish of attacks/minnorm/pdpgd.c (per class pair, the
 * fewest coordinates pushed to the box, then a pruning of the best point). */
#include "arena.h"
#include "minnorm.h"
#include "numeric.h"

#include <math.h>
#include <string.h>

typedef struct sigmazero_config {
    double steps, eta, sigma, tau, tau_factor, polish;
} sigmazero_config;

static const foolc__param sigmazero_params[] = {
    FOOLC__PARAM(sigmazero_config, steps, 1000, 1, 100000, 1, "iterations"),
    FOOLC__PARAM(sigmazero_config, eta, 1, 1e-6, 100, 0,
                 "first step size; cosine-annealed to a tenth of it"),
    FOOLC__PARAM(sigmazero_config, sigma, 0.001, 1e-9, 1, 0,
                 "smoothing of the L0 approximation delta^2 / (delta^2 + sigma)"),
    FOOLC__PARAM(sigmazero_config, tau, 0.3, 0, 1, 0,
                 "first threshold below which components are zeroed (times the box width)"),
    FOOLC__PARAM(sigmazero_config, tau_factor, 0.01, 0, 1, 0,
                 "the threshold moves by this times the step size per step"),
    FOOLC__PARAM(sigmazero_config, polish, 1, 0, 1, 1,
                 "[off|on] the final L0 polish (per class pair, then a pruning)"),
};

static foolc_status sigmazero_run(foolc__run *run, const void *config)
{
    const sigmazero_config *cfg = config;
    size_t d = run->d;
    int32_t m = run->n_todo, steps = (int32_t)cfg->steps;
    size_t md = foolc__mul((size_t)m, d);
    const double width = (double)run->hi - run->lo, sg = cfg->sigma;
    foolc__arena ar = {0};
    float *delta, *xs, *grad, *ma, *va;
    double *g, *tau, *margin;
    int32_t *sid;
    uint8_t *adv;
    foolc_status st;
    for (int pass = 0; pass < 2; pass++) {
        delta = foolc__arena_take(&ar, md, sizeof(float));
        xs = foolc__arena_take(&ar, md, sizeof(float));
        grad = foolc__arena_take(&ar, md, sizeof(float));
        ma = foolc__arena_take(&ar, md, sizeof(float));
        va = foolc__arena_take(&ar, md, sizeof(float));
        g = foolc__arena_take(&ar, d, sizeof(double));
        tau = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        margin = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        sid = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        adv = foolc__arena_take(&ar, (size_t)m, 1);
        if (pass == 0 && (st = foolc__arena_alloc(&ar, "sigma-zero buffers")) < 0) return st;
    }
    memset(delta, 0, md * sizeof(float));
    memset(ma, 0, md * sizeof(float));
    memset(va, 0, md * sizeof(float));
    for (int32_t a = 0; a < m; a++) {
        sid[a] = run->todo[a];
        tau[a] = cfg->tau * width;
    }
    const double b1 = 0.9, b2 = 0.999;
    double eta = cfg->eta;
    for (int32_t it = 0; it < steps; it++) {
        for (int32_t a = 0; a < m; a++)
            foolc__mn_clip_step(run->x + (size_t)sid[a] * d, delta + (size_t)a * d, d,
                                run->lo, run->hi, xs + (size_t)a * d);
        /* The gradient of max(margin, 0) (kappa 0), the verdict and the margin. */
        if ((st = foolc__mn_margin_grad(run, xs, sid, m, NULL, 0, grad, margin, adv, NULL)) < 0)
            goto out;
        double bc1 = 1 - pow(b1, it + 1), bc2 = sqrt(1 - pow(b2, it + 1));
        double eta_next = 0.1 * cfg->eta + 0.9 * cfg->eta * (1 + cos(FOOLC__PI * it / steps)) / 2;
        for (int32_t a = 0; a < m; a++) {
            float *da = delta + (size_t)a * d, *mq = ma + (size_t)a * d, *vq = va + (size_t)a * d;
            const float *ga = grad + (size_t)a * d, *x0 = run->x + (size_t)sid[a] * d;
            if (adv[a]) foolc__run_offer(run, sid[a], xs + (size_t)a * d);
            double gmax = 0;
            for (size_t j = 0; j < d; j++) {
                double dj = da[j], q = dj * dj + sg;
                g[j] = (double)ga[j] + 2 * dj * sg / (q * q) / (double)d;
                gmax = fmax(gmax, fabs(g[j]));
            }
            gmax = fmax(gmax, 1e-12);
            for (size_t j = 0; j < d; j++) {
                double gj = g[j] / gmax;
                double mm = b1 * mq[j] + (1 - b1) * gj, vv = b2 * vq[j] + (1 - b2) * gj * gj;
                mq[j] = (float)mm;
                vq[j] = (float)vv;
                da[j] = (float)(da[j] - eta / bc1 * mm / (sqrt(vv) / bc2 + 1e-8));
            }
            foolc__mn_box(x0, da, d, run->lo, run->hi);
            tau[a] = foolc__clamp(tau[a] + (adv[a] ? 1 : -1) * cfg->tau_factor * eta_next * width,
                                  0, width);
            for (size_t j = 0; j < d; j++)
                if (fabs((double)da[j]) < tau[a]) da[j] = 0;
        }
        eta = eta_next;
        if ((st = foolc__run_progress(run, it, steps)) < 0) goto out;
    }
    st = cfg->polish > 0 ? foolc__mn_l0_polish(run) : FOOLC_OK;
out:
    foolc__arena_free(&ar);
    return st;
}

FOOLC__ATTACK(sigma_zero, "sigma-zero", FOOLC_L0, FOOLC__GRAD, sigmazero_params, sigmazero_config,
              sigmazero_run, NULL,
              "sigma-zero (L0): Adam on the margin plus a smooth L0, adaptive sparsity threshold");
