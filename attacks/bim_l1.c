/* Basic iterative method in L1 with sparse steps (SLIDE, Tramèr & Boneh, arXiv:1904.13000): each
 * step moves the coordinates above the `quantile` of |grad| by their sign, projected onto the L1
 * ball ∩ box; Foolbox's SparseL1DescentAttack defaults (10 steps of 0.2 * epsilon, q = 0.99).
 * Minimising through the shared epsilon search of lib/iterate.c. */
#include "iterate.h"

static const foolc__param bim_l1_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 10, 1, 1000, 1,
              "gradient steps per epsilon"),
    FOOLC__IP(rel_stepsize, 0.2, 0.0001, 10, 0,
              "step size relative to epsilon"),
    FOOLC__IP(quantile, 0.99, 0, 0.999, 0,
              "coordinates above this quantile of |grad| move"),
    FOOLC__IP(loss, 0, 0, 1, 1,
              "0 cross-entropy, 1 the criterion's logit margin"),
};

/* Values of the fields this attack does not expose. */
static const foolc__iter_config bim_l1_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .steps = 10, .rel_stepsize = 0.2,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 0};

static foolc_status bim_l1_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(bim_l1_params, FOOLC__COUNT(bim_l1_params), config,
                           &bim_l1_fixed, &c);
    return foolc__iter_config_run(run, FOOLC_L1, &c, 0);
}

const foolc__attack_vt foolc__attack_bim_l1 = {
    .name = "bim-l1",
    .summary = "sparse L1 descent (SLIDE); searches the smallest L1 epsilon per sample",
    .norm = FOOLC_L1,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = bim_l1_params,
    .n_params = FOOLC__COUNT(bim_l1_params),
    .config_size = sizeof(foolc__iter_config),
    .run = bim_l1_run,
};
