/* Inversion (Foolbox's InversionAttack, Hosseini et al., arXiv:1703.06857), made
 * minimising in L2: per sample the smallest eps at which x + eps * (inv - x) is
 * adversarial, inv = lo + hi - x being the inverted image (a linear scan, then bisection). */
#include "decision.h"

#include <stddef.h>

typedef struct inversion_config {
    double steps, rtol, max_queries;
} inversion_config;

static const foolc__param inversion_params[] = {
    FOOLC__PARAM(inversion_config, steps, 10, 1, 10000, 1,
                 "linear-scan steps towards the inverted image; 1 is a binary search"),
    FOOLC__PARAM(inversion_config, rtol, 1e-4, 1e-9, 0.5, 0, "relative tolerance of the bisection"),
    FOOLC__PARAM(inversion_config, max_queries, 0, 0, 1e12, 1,
                 "model images per sample at most; 0 means no limit"),
};

static foolc_status inversion_make(void *ctx, foolc__run *run, const int32_t *idx,
                                  const double *eps, int32_t m, float *out, uint8_t *adv)
{
    (void)ctx, (void)adv;
    size_t d = run->d;
    double sum = (double)run->lo + run->hi;
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)idx[a] * d;
        float *o = out + (size_t)a * d;
        for (size_t j = 0; j < d; j++) {
            double v = x0[j] + eps[a] * (sum - 2.0 * x0[j]);
            o[j] = v < run->lo ? run->lo : v > run->hi ? run->hi : (float)v;
        }
    }
    return FOOLC_OK;
}

static foolc_status inversion_run(foolc__run *run, const void *config)
{
    const inversion_config *c = config;
    foolc__scan_opts o = {.emax = 1.0, .steps = (int32_t)c->steps, .rtol = c->rtol,
                          .max_q = c->max_queries, .report = 1};
    return foolc__dec_scan(run, run->todo, run->n_todo, &o, inversion_make, NULL, NULL, NULL);
}

FOOLC__ATTACK(inversion, "inversion", FOOLC_L2, FOOLC_NEEDS_DECISION, inversion_params,
              inversion_config, inversion_run, NULL,
              "blend towards the inverted image lo + hi - x, smallest adversarial amount (L2)");
