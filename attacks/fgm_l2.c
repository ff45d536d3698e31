/* Fast gradient method in L2 (Goodfellow et al., arXiv:1412.6572), made minimising: one gradient
 * per sample and loss, then the smallest adversarial on the path clip(x0 + t g/|g|_2), which is
 * the exact maximiser of the linearised loss over the L2 ball ∩ box (KKT water-filling); t is
 * found per sample by the shared epsilon search. */
#include "iterate.h"

static const foolc__param fgm_l2_params[] = {
    FOOLC__IP(epsilon, 0, 0, 1e9, 0, "fixed L2 budget; 0 searches the smallest per sample"),
    FOOLC__IP(rtol, 1e-3, 1e-9, 0.5, 0, "relative tolerance at which the bisection stops"),
    FOOLC__IP(growth, 2, 1.01, 100, 0, "factor by which the search grows the budget"),
    FOOLC__IP(eps_init, 0.01, 1e-9, 1e9, 0, "first budget tried by the search"),
    FOOLC__IP(loss, 2, 0, 2, 1,
              "gradient of 0 cross-entropy, 1 the criterion's logit margin, 2 both (best kept)"),
};

static const foolc__iter_config fgm_l2_fixed = {
    .rtol = 1e-3, .growth = 2, .eps_init = 0.01, .loss = 2};

static foolc_status fgm_l2_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(fgm_l2_params, FOOLC__COUNT(fgm_l2_params), config,
                           &fgm_l2_fixed, &c);
    foolc__search_opts s = {c.epsilon, c.rtol, c.growth, c.eps_init, 0};
    return foolc__fgm_run(run, FOOLC_L2, (int)c.loss, &s);
}

const foolc__attack_vt foolc__attack_fgm_l2 = {
    .name = "fgm-l2",
    .summary = "fast gradient method in L2; searches the smallest step per sample",
    .norm = FOOLC_L2,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = fgm_l2_params,
    .n_params = FOOLC__COUNT(fgm_l2_params),
    .config_size = sizeof(foolc__iter_config),
    .run = fgm_l2_run,
};
