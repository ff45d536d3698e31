/* Fast gradient method in L1, made minimising: one gradient per sample and loss, then for each L1
 * budget the exact maximiser of the linearised loss over the L1 ball ∩ box (the budget goes to
 * the coordinates by decreasing |grad|, each up to the box); the budget is found per sample by
 * the shared epsilon search. */
#include "iterate.h"

static const foolc__param fgm_l1_params[] = {
    FOOLC__IP(epsilon, 0, 0, 1e9, 0, "fixed L1 budget; 0 searches the smallest per sample"),
    FOOLC__IP(rtol, 1e-3, 1e-9, 0.5, 0, "relative tolerance at which the bisection stops"),
    FOOLC__IP(growth, 2, 1.01, 100, 0, "factor by which the search grows the budget"),
    FOOLC__IP(eps_init, 0.1, 1e-9, 1e9, 0, "first budget tried by the search"),
    FOOLC__IP(loss, 2, 0, 2, 1,
              "gradient of 0 cross-entropy, 1 the criterion's logit margin, 2 both (best kept)"),
};

static const foolc__iter_config fgm_l1_fixed = {
    .rtol = 1e-3, .growth = 2, .eps_init = 0.1, .loss = 2};

static foolc_status fgm_l1_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(fgm_l1_params, FOOLC__COUNT(fgm_l1_params), config,
                           &fgm_l1_fixed, &c);
    foolc__search_opts s = {c.epsilon, c.rtol, c.growth, c.eps_init, 0};
    return foolc__fgm_run(run, FOOLC_L1, (int)c.loss, &s);
}

const foolc__attack_vt foolc__attack_fgm_l1 = {
    .name = "fgm-l1",

    .summary = "fast gradient method in L1 (greedy over |grad|); searches the smallest budget",
    .norm = FOOLC_L1,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = fgm_l1_params,
    .n_params = FOOLC__COUNT(fgm_l1_params),
    .config_size = sizeof(foolc__iter_config),
    .run = fgm_l1_run,
};
