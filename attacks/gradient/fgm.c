/* The fast gradient method in L1, L2 and Linf (FGSM is its Linf case), made minimising:
 * one gradient per sample and loss, then the smallest adversarial along the exact maximiser
 * of the linearised loss over ball ∩ box, whose radius the epsilon search finds; at the
 * end the registry entries of fgsm, fgm-l1 and fgm-l2. */
#include "gradient.h"
#include "numeric.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fgm_ctx {
    foolc_norm norm;
    float *dir;        /* n*d: unit descent direction (L2), signs (Linf), -grad (L1) */
    int32_t *order;    /* n*d: L1 coordinates by decreasing |grad| */
    int dense;         /* L1: the dense path clip(x0 + t u / |u|_1) instead of the greedy */
} fgm_ctx;

static foolc_status fgm_make(void *ctx, foolc__run *run, const int32_t *idx, const double *eps,
                             int32_t m, float *out, uint8_t *adv)
{
    (void)adv;
    fgm_ctx *c = ctx;
    size_t d = run->d;
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)idx[a] * d, *u = c->dir + (size_t)idx[a] * d;
        float *o = out + (size_t)a * d;
        if (c->norm != FOOLC_L1 || c->dense) {
            /* clip(x0 + eps u): the exact maximiser of the linearised loss over the Linf
             * ball ∩ box, and for L2 the water-filling path of the ball ∩ box. */
            double sc = 1;
            if (c->norm == FOOLC_L1) {
                double l1 = 0;
                for (size_t j = 0; j < d; j++) l1 += fabs((double)u[j]);
                sc = l1 > 0 ? 1 / l1 : 0;
            }
            for (size_t j = 0; j < d; j++)
                o[j] = (float)foolc__clamp((double)x0[j] + eps[a] * sc * u[j], run->lo, run->hi);
            continue;
        }
        /* L1: spend the budget on the coordinates by decreasing |grad|, each up to the box. */
        memcpy(o, x0, d * sizeof(float));
        const int32_t *ord = c->order + (size_t)idx[a] * d;
        double left = eps[a];
        for (size_t q = 0; q < d && left > 0; q++) {
            int32_t j = ord[q];
            if (u[j] == 0) break;
            double cap = u[j] > 0 ? (double)run->hi - x0[j] : (double)x0[j] - run->lo;
            double amt = cap < left ? cap : left;
            o[j] = (float)foolc__clamp((double)x0[j] + (u[j] > 0 ? amt : -amt), run->lo, run->hi);
            left -= amt;
        }
    }
    return FOOLC_OK;
}

foolc_status foolc__fgm_run(foolc__run *run, foolc_norm norm, int loss_mode,
                            const foolc__search_opts *so)
{
    size_t d = run->d, nd = foolc__mul((size_t)run->n, d);
    int32_t m = run->n_todo;
    size_t md = foolc__mul((size_t)m, d);
    float *dir = foolc__malloc(foolc__mul(nd, sizeof(float)));
    float *grad = foolc__malloc(foolc__mul(md, sizeof(float)));
    float *xs = foolc__malloc(foolc__mul(md, sizeof(float)));
    float *key = foolc__malloc(foolc__mul(d, sizeof(float)));
    int32_t *order = norm == FOOLC_L1 ? foolc__malloc(foolc__mul(nd, sizeof(int32_t))) : NULL;
    foolc_status st = FOOLC_OK;
    if (!dir || !grad || !xs || !key || (norm == FOOLC_L1 && !order)) {
        st = foolc__nomem("fgm buffers");
        goto out;
    }
    double diam = foolc__box_diameter(run, norm);
    foolc__eps_opts eo = {.eps_init = so->eps_init, .eps_max = so->eps_max > 0 ? so->eps_max : diam,
                          .growth = so->growth, .rtol = so->rtol, .fixed = so->epsilon};
    fgm_ctx ctx = {norm, dir, order, 0};
    for (int pass = 0; pass < 2; pass++) {
        if (loss_mode != 2 && loss_mode != pass) continue;
        foolc__loss loss = pass == 0 ? FOOLC__LOSS_CE : FOOLC__LOSS_MARGIN;
        for (int32_t a = 0; a < m; a++)
            memcpy(xs + (size_t)a * d, run->x + (size_t)run->todo[a] * d, d * sizeof(float));
        if ((st = foolc__run_grad(run, xs, run->todo, m, loss, grad, NULL, NULL)) < 0) goto out;
        for (int32_t a = 0; a < m; a++) {
            int32_t i = run->todo[a];
            const float *g = grad + (size_t)a * d, *x0 = run->x + (size_t)i * d;
            float *u = dir + (size_t)i * d;
            double s2 = 0;
            for (size_t j = 0; j < d; j++) {
                float v = -g[j];
                /* Coordinates that cannot move in their direction carry no budget. */
                if ((x0[j] <= run->lo && v < 0) || (x0[j] >= run->hi && v > 0)) v = 0;
                u[j] = v;
                s2 += (double)v * v;
            }
            if (norm == FOOLC_LINF) {
                for (size_t j = 0; j < d; j++) u[j] = u[j] > 0 ? 1.0f : u[j] < 0 ? -1.0f : 0.0f;
            } else if (norm == FOOLC_L2) {
                float inv = s2 > 0 ? (float)(1 / sqrt(s2)) : 0.0f;
                for (size_t j = 0; j < d; j++) u[j] *= inv;
            } else {
                for (size_t j = 0; j < d; j++) key[j] = fabsf(u[j]);
                foolc__order_desc(order + (size_t)i * d, key, d);
            }
        }
        ctx.dense = 0;
        if ((st = foolc__eps_search(run, run->todo, m, &eo, fgm_make, &ctx)) < 0) goto out;
        /* L1: the greedy path is exact for linear models but concentrates the budget on few
         * pixels, where a network's linearisation is poor; the dense path (Foolbox's L1
         * FGM) is searched too, the smaller result kept. */
        ctx.dense = 1;
        if (norm == FOOLC_L1 &&
            (st = foolc__eps_search(run, run->todo, m, &eo, fgm_make, &ctx)) < 0) goto out;
    }
out:
    foolc__free(dir);
    foolc__free(grad);
    foolc__free(xs);
    foolc__free(key);
    foolc__free(order);
    return st;
}

/* ---- registry entries ---- */

static foolc_status fgm_entry_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(run->vt->params, run->vt->n_params, config, run->vt->variant, &c);
    foolc__search_opts s = {.epsilon = c.epsilon, .eps_max = c.eps_max, .rtol = c.rtol,
                            .growth = c.growth, .eps_init = c.eps_init};
    return foolc__fgm_run(run, run->norm, (int)c.loss, &s);
}

/* FGSM (Goodfellow et al., arXiv:1412.6572): FGM in Linf, the sign of the gradient. */
static const foolc__param fgsm_params[] = {
    FOOLC__IP(epsilon, 0, 0, 1e9, 0,
              "fixed Linf step; 0 searches for the smallest adversarial step per sample"),
    FOOLC__IP(eps_init, 1e-3, 1e-9, 1e9, 0, "first step tried by the search"),
    FOOLC__IP(eps_max, 0, 0, 1e9, 0, "largest step tried; 0 means the width of the model's box"),
    FOOLC__IP(growth, 2, 1.01, 100, 0,
              "factor by which the search grows the step until it succeeds"),
    FOOLC__IP(rtol, 1e-3, 1e-9, 0.5, 0, "relative tolerance at which the bisection stops"),
    FOOLC__IP(loss, 2, 0, 2, 1,
              "[ce|margin|both] gradient of 0 cross-entropy, 1 the criterion's logit margin, 2 "
              "both (best kept)"),
};
static const foolc__iter_config fgsm_fixed = {.rtol = 1e-3, .growth = 2, .eps_init = 1e-3,
                                              .loss = 2};
FOOLC__ATTACK(fgsm, "fgsm", FOOLC_LINF, FOOLC__GRAD, fgsm_params, foolc__iter_config, fgm_entry_run,
              &fgsm_fixed, "fast gradient sign method; searches the smallest Linf step per sample");

/* Fast gradient method in L1, made minimising: one gradient per sample and loss, then for each L1
 * budget the exact maximiser of the linearised loss over the L1 ball ∩ box (the budget goes to
 * the coordinates by decreasing |grad|, each up to the box); the budget is found per sample by
 * the shared epsilon search. */
static const foolc__param fgm_l1_params[] = {
    FOOLC__IP(epsilon, 0, 0, 1e9, 0, "fixed L1 budget; 0 searches the smallest per sample"),
    FOOLC__IP(rtol, 1e-3, 1e-9, 0.5, 0, "relative tolerance at which the bisection stops"),
    FOOLC__IP(growth, 2, 1.01, 100, 0, "factor by which the search grows the budget"),
    FOOLC__IP(eps_init, 0.1, 1e-9, 1e9, 0, "first budget tried by the search"),
    FOOLC__IP(loss, 2, 0, 2, 1,
              "[ce|margin|both] gradient of 0 cross-entropy, 1 the criterion's logit margin, 2 "
              "both (best kept)"),
};

static const foolc__iter_config fgm_l1_fixed = {
    .rtol = 1e-3, .growth = 2, .eps_init = 0.1, .loss = 2};
FOOLC__ATTACK(fgm_l1, "fgm-l1", FOOLC_L1, FOOLC__GRAD, fgm_l1_params, foolc__iter_config,
              fgm_entry_run, &fgm_l1_fixed,
              "fast gradient method in L1 (greedy over |grad|); searches the smallest budget");

/* Fast gradient method in L2 (Goodfellow et al., arXiv:1412.6572), made minimising: one gradient
 * per sample and loss, then the smallest adversarial on the path clip(x0 + t g/|g|_2), which is
 * the exact maximiser of the linearised loss over the L2 ball ∩ box (KKT water-filling); t is
 * found per sample by the shared epsilon search. */
static const foolc__param fgm_l2_params[] = {
    FOOLC__IP(epsilon, 0, 0, 1e9, 0, "fixed L2 budget; 0 searches the smallest per sample"),
    FOOLC__IP(rtol, 1e-3, 1e-9, 0.5, 0, "relative tolerance at which the bisection stops"),
    FOOLC__IP(growth, 2, 1.01, 100, 0, "factor by which the search grows the budget"),
    FOOLC__IP(eps_init, 0.01, 1e-9, 1e9, 0, "first budget tried by the search"),
    FOOLC__IP(loss, 2, 0, 2, 1,
              "[ce|margin|both] gradient of 0 cross-entropy, 1 the criterion's logit margin, 2 "
              "both (best kept)"),
};

static const foolc__iter_config fgm_l2_fixed = {
    .rtol = 1e-3, .growth = 2, .eps_init = 0.01, .loss = 2};
FOOLC__ATTACK(fgm_l2, "fgm-l2", FOOLC_L2, FOOLC__GRAD, fgm_l2_params, foolc__iter_config,
              fgm_entry_run, &fgm_l2_fixed,
              "fast gradient method in L2; searches the smallest step per sample");
