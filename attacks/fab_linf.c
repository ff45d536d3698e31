/* FAB Linf (fast adaptive boundary, Croce & Hein 2020; AutoAttack's minimum-norm attack): the
 * parameter table and descriptor; the algorithm is shared by the three norms in lib/fab.c. */
#include "minnorm.h"

#include <stddef.h>

static const foolc__param fab_params[] = {
    {"steps", 100, 1, 10000, offsetof(foolc__fab_config, steps), 1, "iterations per restart"},
    {"restarts", 1, 1, 100, offsetof(foolc__fab_config, restarts), 1,
     "runs; the first starts at the clean input, later ones at random points"},
    {"alpha_max", 0.1, 0, 1, offsetof(foolc__fab_config, alpha_max), 0,
     "largest weight of the projection of the clean input in each step"},
    {"eta", 1.05, 1, 2, offsetof(foolc__fab_config, eta), 0,
     "extrapolation factor of the projection step"},
    {"beta", 0.9, 0, 1, offsetof(foolc__fab_config, beta), 0,
     "backward step towards the clean input after an adversarial step"},
    {"classes", 0, 0, 1000, offsetof(foolc__fab_config, classes), 1,
     "other classes linearised per step (top by logit; 0 = all; untargeted only)"},
    {"bisect", 20, 0, 50, offsetof(foolc__fab_config, bisect), 1,
     "final search towards the clean input, to a bracket 2^-bisect wide"},
};

static foolc_status fab_run(foolc__run *run, const void *config)
{
    return foolc__fab_run(run, config, FOOLC_LINF);
}

const foolc__attack_vt foolc__attack_fab_linf = {
    .name = "fab-linf",
    .summary = "fast adaptive boundary (Linf): exact projections on linearised boundaries",
    .norm = FOOLC_LINF,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = fab_params,
    .n_params = sizeof fab_params / sizeof fab_params[0],
    .config_size = sizeof(foolc__fab_config),
    .run = fab_run,
};
