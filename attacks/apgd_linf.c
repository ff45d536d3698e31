/* Auto-PGD in Linf (Croce & Hein, arXiv:2003.01690): step size 2 * epsilon halved at checkpoints
 * when progress stalls (restarting from the best point), momentum 0.75, CE or DLR loss.
 * Minimising through the shared epsilon search of lib/iterate.c. */
#include "iterate.h"

static const foolc__param apgd_linf_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 50, 1, 1000, 1,
              "iterations per start (AutoAttack uses 100 at a fixed epsilon)"),
    FOOLC__IP(random_start, 0, 0, 1, 1,
              "1: the first start is random in the ball (later ones always are)"),
    FOOLC__IP(restarts, 1, 1, 20, 1,
              "starts per epsilon (best kept)"),
    FOOLC__IP(loss, 0, 0, 2, 1,
              "0 cross-entropy, 1 the criterion's logit margin, 2 DLR"),
};

/* Values of the fields this attack does not expose. */
static const foolc__iter_config apgd_linf_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .steps = 50, .rel_stepsize = 2,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 0};

static foolc_status apgd_linf_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(apgd_linf_params, FOOLC__COUNT(apgd_linf_params), config,
                           &apgd_linf_fixed, &c);
    return foolc__iter_config_run(run, FOOLC_LINF, &c, 1);
}

const foolc__attack_vt foolc__attack_apgd_linf = {
    .name = "apgd-linf",
    .summary = "step-size-free PGD (AutoAttack); searches the smallest Linf epsilon per sample",
    .norm = FOOLC_LINF,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = apgd_linf_params,
    .n_params = FOOLC__COUNT(apgd_linf_params),
    .config_size = sizeof(foolc__iter_config),
    .run = apgd_linf_run,
};
