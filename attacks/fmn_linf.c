/* FMN Linf (fast minimum-norm, Pintor et al. 2021): the parameter table and descriptor; the
 * algorithm is shared by the four norms in lib/fmn.c. */
#include "minnorm.h"

#include <stddef.h>

static const foolc__param fmn_params[] = {
    {"steps", 100, 1, 10000, offsetof(foolc__fmn_config, steps), 1, "iterations"},
    {"max_stepsize", 1, 1e-6, 1e3, offsetof(foolc__fmn_config, max_stepsize), 0,
     "first step size (L2-normalised gradient); cosine-annealed"},
    {"min_stepsize", 0, 0, 1e3, offsetof(foolc__fmn_config, min_stepsize), 0,
     "last step size; 0 means max_stepsize / 100"},
    {"gamma", 0.05, 1e-4, 0.9, offsetof(foolc__fmn_config, gamma), 0,
     "first relative change of epsilon per step; cosine-annealed to 0.001"},
    {"bisect", 20, 0, 50, offsetof(foolc__fmn_config, bisect), 1,
     "final search towards the clean input, to a bracket 2^-bisect wide (not used by L0)"},
    {"polish", 10, 0, 100, offsetof(foolc__fmn_config, polish), 1,
     "final boundary steps from the best adversarial (minimal step onto the linearised "
     "boundary from the clean input); 0 = none"},

};

static foolc_status fmn_run(foolc__run *run, const void *config)
{
    return foolc__fmn_run(run, config, FOOLC_LINF);
}

const foolc__attack_vt foolc__attack_fmn_linf = {
    .name = "fmn-linf",
    .summary = "fast minimum-norm attack (Linf): margin steps, adaptive epsilon-ball projection",
    .norm = FOOLC_LINF,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = fmn_params,
    .n_params = sizeof fmn_params / sizeof fmn_params[0],
    .config_size = sizeof(foolc__fmn_config),
    .run = fmn_run,
};
