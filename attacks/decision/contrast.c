/* Contrast reduction (Foolbox's L2 contrast-reduction attacks, binary and linear search),
 * minimising in L2: per sample the smallest eps at which x + eps * (mid - x) is adversarial,
 * mid being the centre of the model's box; steps = 1 is a plain binary search, more steps
 * a linear scan whose bracket is then bisected. Past eps = 1 (the flat image) the contrast
 * reverses, up to the image inverted about mid at eps = 2, for inputs of the flat image's
 * own class, which no reduction can change (eps_max = 1 keeps to pure reduction). */
#include "decision.h"

#include <stddef.h>

typedef struct contrast_config {
    double eps_max, steps, rtol, max_queries;
} contrast_config;

static const foolc__param contrast_params[] = {
    FOOLC__PARAM(contrast_config, eps_max, 2, 0.01, 2, 0,
                 "largest amount: 1 is the flat image at the box centre, 2 the contrast fully "
                 "reversed"),
    FOOLC__PARAM(contrast_config, steps, 20, 1, 10000, 1,
                 "linear-scan steps over (0, eps_max]; 1 is a binary search"),
    FOOLC__PARAM(contrast_config, rtol, 1e-4, 1e-9, 0.5, 0, "relative tolerance of the bisection"),
    FOOLC__PARAM(contrast_config, max_queries, 0, 0, 1e12, 1,
                 "model images per sample at most; 0 means no limit"),
};

static foolc_status contrast_make(void *ctx, foolc__run *run, const int32_t *idx,
                                  const double *eps, int32_t m, float *out, uint8_t *adv)
{
    (void)ctx, (void)adv;
    size_t d = run->d;
    double mid = 0.5 * ((double)run->lo + run->hi);
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)idx[a] * d;
        float *o = out + (size_t)a * d;
        for (size_t j = 0; j < d; j++) {
            double v = x0[j] + eps[a] * (mid - x0[j]);
            o[j] = v < run->lo ? run->lo : v > run->hi ? run->hi : (float)v;
        }
    }
    return FOOLC_OK;
}

static foolc_status contrast_run(foolc__run *run, const void *config)
{
    const contrast_config *c = config;
    foolc__scan_opts o = {.emax = c->eps_max, .steps = (int32_t)c->steps, .rtol = c->rtol,
                          .max_q = c->max_queries, .report = 1};
    return foolc__dec_scan(run, run->todo, run->n_todo, &o, contrast_make, NULL, NULL, NULL);
}

FOOLC__ATTACK(contrast, "contrast", FOOLC_L2, FOOLC_NEEDS_DECISION, contrast_params,
              contrast_config, contrast_run, NULL,
              "contrast reduction towards the box centre, smallest adversarial amount (L2)");
