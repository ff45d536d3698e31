/* DeepFool in L2 (Moosavi-Dezfooli et al., arXiv:1511.04599): at each step the closest linearised
 * boundary among the top-`candidates` classes, all their gradients from one forward+backward over
 * the image replicated once per class; steps accumulate and are applied with (1 + overshoot), and
 * the overshoot is trimmed at the end by bisection along the same path. */
#include "iterate.h"

static const foolc__param deepfool_l2_params[] = {
    FOOLC__IP(epsilon, 0, 0, 1e9, 0,
              "0 minimises; > 0 keeps only results within this L2 distance"),
    FOOLC__IP(rtol, 1e-3, 1e-6, 0.5, 0, "relative tolerance of the final overshoot trim"),
    FOOLC__IP(steps, 50, 1, 1000, 1, "largest number of DeepFool steps"),
    FOOLC__IP(candidates, 10, 2, 1000, 1,
              "classes considered: the label and the top logits of the clean input"),
    FOOLC__IP(overshoot, 0.02, 0, 1, 0, "relative overshoot of the accumulated step"),
};

static const foolc__iter_config deepfool_l2_fixed = {.rtol = 1e-3, .steps = 50, .candidates = 10,
                                                  .overshoot = 0.02};

static foolc_status deepfool_l2_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(deepfool_l2_params, FOOLC__COUNT(deepfool_l2_params), config,
                           &deepfool_l2_fixed, &c);
    foolc__deepfool_opts o = {FOOLC_L2, (int32_t)c.steps, (int32_t)c.candidates, c.overshoot,
                              c.rtol, c.epsilon};
    return foolc__deepfool_run(run, &o);
}

const foolc__attack_vt foolc__attack_deepfool_l2 = {
    .name = "deepfool-l2",
    .summary = "DeepFool, batched over candidate classes; naturally minimal in L2",
    .norm = FOOLC_L2,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = deepfool_l2_params,
    .n_params = FOOLC__COUNT(deepfool_l2_params),
    .config_size = sizeof(foolc__iter_config),
    .run = deepfool_l2_run,
};
