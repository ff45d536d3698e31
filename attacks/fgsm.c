/* FGSM (Goodfellow et al., arXiv:1412.6572), made minimising: one input gradient per
 * sample and loss, then the smallest Linf step along its sign that is adversarial, found
 * per sample by the shared epsilon search (grow, then bisect). */
#include "attack_impl.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct fgsm_config {
    double epsilon, eps_init, eps_max, growth, rtol, loss;
} fgsm_config;

static const foolc__param fgsm_params[] = {
    {"epsilon", 0, 0, 1e9, offsetof(fgsm_config, epsilon), 0,
     "fixed Linf step; 0 searches for the smallest adversarial step per sample"},
    {"eps_init", 1e-3, 1e-9, 1e9, offsetof(fgsm_config, eps_init), 0,
     "first step tried by the search"},
    {"eps_max", 0, 0, 1e9, offsetof(fgsm_config, eps_max), 0,
     "largest step tried; 0 means the width of the model's box"},
    {"growth", 2, 1.01, 100, offsetof(fgsm_config, growth), 0,
     "factor by which the search grows the step until it succeeds"},
    {"rtol", 1e-3, 1e-9, 0.5, offsetof(fgsm_config, rtol), 0,
     "relative tolerance at which the bisection stops"},
    {"loss", 2, 0, 2, offsetof(fgsm_config, loss), 1,
     "[ce|margin|both] gradient of 0 cross-entropy, 1 the criterion's logit margin, 2 both "
     "(best kept)"},
};

typedef struct fgsm_ctx {
    float *dir;   /* n*d signs of the descent direction, by sample */
} fgsm_ctx;

static foolc_status fgsm_make(void *ctx, foolc__run *run, const int32_t *idx, const double *eps,
                              int32_t m, float *out, uint8_t *adv)
{
    (void)adv;
    fgsm_ctx *c = ctx;
    size_t d = run->d;
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)idx[a] * d, *s = c->dir + (size_t)idx[a] * d;
        float *o = out + (size_t)a * d;
        for (size_t j = 0; j < d; j++) {
            double v = (double)x0[j] + eps[a] * (double)s[j];
            o[j] = v < run->lo ? run->lo : v > run->hi ? run->hi : (float)v;
        }
    }
    return FOOLC_OK;
}

static foolc_status fgsm_run(foolc__run *run, const void *config)
{
    const fgsm_config *cfg = config;
    size_t d = run->d, nd = foolc__mul((size_t)run->n, d);
    int32_t m = run->n_todo;
    float *dir = foolc__malloc(foolc__mul(nd, sizeof(float)));
    float *grad = foolc__malloc(foolc__mul(foolc__mul((size_t)m, d), sizeof(float)));
    float *xs = foolc__malloc(foolc__mul(foolc__mul((size_t)m, d), sizeof(float)));
    foolc_status st = FOOLC_OK;
    if (!dir || !grad || !xs) {
        st = foolc__nomem("fgsm buffers");
        goto out;
    }
    foolc__eps_opts eo = {cfg->eps_init, cfg->eps_max > 0 ? cfg->eps_max : run->hi - run->lo,
                          cfg->growth, cfg->rtol, cfg->epsilon};
    fgsm_ctx ctx = {dir};
    for (int pass = 0; pass < 2; pass++) {
        int use = (int)cfg->loss;
        if (use != 2 && use != pass) continue;
        foolc__loss loss = pass == 0 ? FOOLC__LOSS_CE : FOOLC__LOSS_MARGIN;
        for (int32_t a = 0; a < m; a++)
            memcpy(xs + (size_t)a * d, run->x + (size_t)run->todo[a] * d, d * sizeof(float));
        if ((st = foolc__run_grad(run, xs, run->todo, m, loss, grad, NULL, NULL)) < 0) goto out;
        for (int32_t a = 0; a < m; a++) {
            const float *g = grad + (size_t)a * d;
            float *s = dir + (size_t)run->todo[a] * d;
            for (size_t j = 0; j < d; j++) s[j] = g[j] > 0 ? -1.0f : g[j] < 0 ? 1.0f : 0.0f;
        }
        if ((st = foolc__eps_search(run, run->todo, m, &eo, fgsm_make, &ctx)) < 0) goto out;
    }
out:
    foolc__free(dir);
    foolc__free(grad);
    foolc__free(xs);
    return st;
}

const foolc__attack_vt foolc__attack_fgsm = {
    .name = "fgsm",
    .summary = "fast gradient sign method; searches the smallest Linf step per sample",
    .norm = FOOLC_LINF,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = fgsm_params,
    .n_params = sizeof fgsm_params / sizeof fgsm_params[0],
    .config_size = sizeof(fgsm_config),
    .run = fgsm_run,
};
