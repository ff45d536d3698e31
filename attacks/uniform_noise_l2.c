/* Additive uniform noise in L2 (Foolbox's repeated additive-noise attacks), made minimising:
 * per sample, repeated noise directions, each scaled to the smallest adversarial size; the
 * smallest adversarial over all draws is kept. The search lives in lib/decision.c. */
#include "decision.h"

static foolc_status uniform_noise_l2_run(foolc__run *run, const void *config)
{
    return foolc__noise_run(run, config, 0, 0);
}

const foolc__attack_vt foolc__attack_uniform_noise_l2 = {
    .name = "uniform-noise-l2",
    .summary = "repeated additive uniform noise, smallest adversarial scale per draw (L2)",
    .norm = FOOLC_L2,
    .needs = FOOLC_NEEDS_DECISION,
    .params = foolc__noise_params,
    .n_params = sizeof(foolc__noise_config) / sizeof(double),
    .config_size = sizeof(foolc__noise_config),
    .run = uniform_noise_l2_run,
};
