/* Additive Gaussian noise in Linf (Foolbox's repeated additive-noise attacks), made minimising:
 * per sample, repeated noise directions, each scaled to the smallest adversarial size; the
 * smallest adversarial over all draws is kept. The search lives in lib/decision.c. */
#include "decision.h"

static foolc_status gaussian_noise_linf_run(foolc__run *run, const void *config)
{
    return foolc__noise_run(run, config, 1, 1);
}

const foolc__attack_vt foolc__attack_gaussian_noise_linf = {
    .name = "gaussian-noise-linf",
    .summary = "repeated additive Gaussian noise, smallest adversarial scale per draw (Linf)",
    .norm = FOOLC_LINF,
    .needs = FOOLC_NEEDS_DECISION,
    .params = foolc__noise_params,
    .n_params = sizeof(foolc__noise_config) / sizeof(double),
    .config_size = sizeof(foolc__noise_config),
    .run = gaussian_noise_linf_run,
};
