/* Momentum iterative FGSM (Dong et al., arXiv:1710.06081): g <- mu g + grad/|grad|_1, steps along
 * sign(g) projected onto the Linf ball ∩ box; Foolbox's defaults (10 steps
 * of 0.2 * epsilon, mu = 1). Minimising through the shared epsilon search of lib/iterate.c. */
#include "iterate.h"

static const foolc__param mifgsm_linf_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 10, 1, 1000, 1,
              "gradient steps per epsilon"),
    FOOLC__IP(rel_stepsize, 0.2, 0.0001, 10, 0,
              "step size relative to epsilon"),
    FOOLC__IP(momentum, 1, 0, 10, 0,
              "decay of the accumulated L1-normalised gradient"),
    FOOLC__IP(loss, 0, 0, 1, 1,
              "0 cross-entropy, 1 the criterion's logit margin"),
};

/* Values of the fields this attack does not expose. */
static const foolc__iter_config mifgsm_linf_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .steps = 10, .rel_stepsize = 0.2,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 1};

static foolc_status mifgsm_linf_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(mifgsm_linf_params, FOOLC__COUNT(mifgsm_linf_params), config,
                           &mifgsm_linf_fixed, &c);
    return foolc__iter_config_run(run, FOOLC_LINF, &c, 0);
}

const foolc__attack_vt foolc__attack_mifgsm_linf = {
    .name = "mifgsm-linf",
    .summary = "momentum iterative FGSM; searches the smallest Linf epsilon per sample",
    .norm = FOOLC_LINF,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = mifgsm_linf_params,
    .n_params = FOOLC__COUNT(mifgsm_linf_params),
    .config_size = sizeof(foolc__iter_config),
    .run = mifgsm_linf_run,
};
