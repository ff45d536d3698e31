/* HopSkipJump in Linf (arXiv:1904.02144): a decision-only attack that walks along the
 * boundary with gradient directions estimated from sign probes. The algorithm lives in
 * lib/hsj.c, shared with the other norm; this file is its registry entry. */
#include "decision.h"

static foolc_status hsj_linf_run(foolc__run *run, const void *config)
{
    return foolc__hsj_run(run, config, 1);
}

const foolc__attack_vt foolc__attack_hsj_linf = {
    .name = "hsj-linf",
    .summary = "HopSkipJump: boundary search with sign-probe gradient estimates (Linf)",
    .norm = FOOLC_LINF,
    .needs = FOOLC_NEEDS_DECISION,
    .params = foolc__hsj_params,
    .n_params = sizeof(foolc__hsj_config) / sizeof(double),
    .config_size = sizeof(foolc__hsj_config),
    .run = hsj_linf_run,
};
