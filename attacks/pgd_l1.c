/* Projected gradient descent in L1 with sparse steps (SLIDE-style, arXiv:1904.13000): each step
 * moves the coordinates above the `quantile` of |grad| by their sign, then the exact projection
 * onto the L1 ball ∩ box; dense L1 steps (Foolbox's L1PGD) are known to be weak. Minimising
 * through the shared epsilon search of lib/iterate.c. */
#include "iterate.h"

static const foolc__param pgd_l1_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 50, 1, 1000, 1,
              "gradient steps per start"),
    FOOLC__IP(rel_stepsize, 0.05, 0.0001, 10, 0,
              "step size relative to epsilon"),
    FOOLC__IP(quantile, 0.99, 0, 0.999, 0,
              "coordinates above this quantile of |grad| move"),
    FOOLC__IP(random_start, 0, 0, 1, 1,
              "1: the first start is random in the ball (later ones always are)"),
    FOOLC__IP(restarts, 1, 1, 20, 1,
              "starts per epsilon (best kept)"),
    FOOLC__IP(loss, 0, 0, 1, 1,
              "0 cross-entropy, 1 the criterion's logit margin"),
};

/* Values of the fields this attack does not expose. */
static const foolc__iter_config pgd_l1_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .steps = 50, .rel_stepsize = 0.05,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 0};

static foolc_status pgd_l1_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(pgd_l1_params, FOOLC__COUNT(pgd_l1_params), config,
                           &pgd_l1_fixed, &c);
    return foolc__iter_config_run(run, FOOLC_L1, &c, 0);
}

const foolc__attack_vt foolc__attack_pgd_l1 = {
    .name = "pgd-l1",
    .summary = "sparse-step L1 PGD with restarts; searches the smallest L1 epsilon per sample",
    .norm = FOOLC_L1,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = pgd_l1_params,
    .n_params = FOOLC__COUNT(pgd_l1_params),
    .config_size = sizeof(foolc__iter_config),
    .run = pgd_l1_run,
};
