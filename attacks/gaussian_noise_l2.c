/* Additive Gaussian noise in L2 (Foolbox's repeated additive-noise attacks), made minimising:
 * per sample, repeated noise directions, each scaled to the smallest adversarial size; the
 * smallest adversarial over all draws is kept. The search lives in lib/decision.c. */
#include "decision.h"

static foolc_status gaussian_noise_l2_run(foolc__run *run, const void *config)
{
    return foolc__noise_run(run, config, 1, 0);
}

const foolc__attack_vt foolc__attack_gaussian_noise_l2 = {
    .name = "gaussian-noise-l2",
    .summary = "repeated additive Gaussian noise, smallest adversarial scale per draw (L2)",
    .norm = FOOLC_L2,
    .needs = FOOLC_NEEDS_DECISION,
    .params = foolc__noise_params,
    .n_params = sizeof(foolc__noise_config) / sizeof(double),
    .config_size = sizeof(foolc__noise_config),
    .run = gaussian_noise_l2_run,
};
