/* HopSkipJump in L2 (arXiv:1904.02144): a decision-only attack that walks along the
 * boundary with gradient directions estimated from sign probes. The algorithm lives in
 * lib/hsj.c, shared with the other norm; this file is its registry entry. */
#include "decision.h"

static foolc_status hsj_l2_run(foolc__run *run, const void *config)
{
    return foolc__hsj_run(run, config, 0);
}

const foolc__attack_vt foolc__attack_hsj_l2 = {
    .name = "hsj-l2",
    .summary = "HopSkipJump: boundary search with sign-probe gradient estimates (L2)",
    .norm = FOOLC_L2,
    .needs = FOOLC_NEEDS_DECISION,
    .params = foolc__hsj_params,
    .n_params = sizeof(foolc__hsj_config) / sizeof(double),
    .config_size = sizeof(foolc__hsj_config),
    .run = hsj_l2_run,
};
