/* Projected gradient descent in Linf (Madry et al., arXiv:1706.06083): random start in the ball,
 * signed gradient steps projected onto the Linf ball ∩ box, random restarts; Foolbox's defaults
 * (40 steps of 0.01/0.3 * epsilon). Minimising through the shared epsilon search of
 * lib/iterate.c. */
#include "iterate.h"

static const foolc__param pgd_linf_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 40, 1, 1000, 1,
              "gradient steps per start"),
    FOOLC__IP(rel_stepsize, 0.01 / 0.3, 0.0001, 10, 0,
              "step size relative to epsilon"),
    FOOLC__IP(random_start, 0, 0, 1, 1,
              "1: the first start is random in the ball (later ones always are)"),
    FOOLC__IP(restarts, 1, 1, 20, 1,
              "starts per epsilon (best kept)"),
    FOOLC__IP(loss, 0, 0, 1, 1,
              "0 cross-entropy, 1 the criterion's logit margin"),
};

/* Values of the fields this attack does not expose. */
static const foolc__iter_config pgd_linf_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .steps = 40,
    .rel_stepsize = 0.01 / 0.3, .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99,
    .momentum = 0};

static foolc_status pgd_linf_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(pgd_linf_params, FOOLC__COUNT(pgd_linf_params), config,
                           &pgd_linf_fixed, &c);
    return foolc__iter_config_run(run, FOOLC_LINF, &c, 0);
}

const foolc__attack_vt foolc__attack_pgd_linf = {
    .name = "pgd-linf",
    .summary = "PGD with random starts; searches the smallest Linf epsilon per sample",
    .norm = FOOLC_LINF,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = pgd_linf_params,
    .n_params = FOOLC__COUNT(pgd_linf_params),
    .config_size = sizeof(foolc__iter_config),
    .run = pgd_linf_run,
};
