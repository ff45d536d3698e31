/* DeepFool in Linf (Moosavi-Dezfooli et al., arXiv:1511.04599): at each step the closest
 * linearised boundary in Linf (|f| / |grad f|_1) among the top-`candidates` classes, all their
 * gradients from one forward+backward over the image replicated once per class; steps along
 * sign(grad) accumulate with (1 + overshoot), trimmed at the end by bisection along the path. */
#include "iterate.h"

static const foolc__param deepfool_linf_params[] = {
    FOOLC__IP(epsilon, 0, 0, 1e9, 0,
              "0 minimises; > 0 keeps only results within this Linf distance"),
    FOOLC__IP(rtol, 1e-3, 1e-6, 0.5, 0, "relative tolerance of the final overshoot trim"),
    FOOLC__IP(steps, 50, 1, 1000, 1, "largest number of DeepFool steps"),
    FOOLC__IP(candidates, 10, 2, 1000, 1,
              "classes considered: the label and the top logits of the clean input"),
    FOOLC__IP(overshoot, 0.02, 0, 1, 0, "relative overshoot of the accumulated step"),
};

static const foolc__iter_config deepfool_linf_fixed = {.rtol = 1e-3, .steps = 50, .candidates = 10,
                                                  .overshoot = 0.02};

static foolc_status deepfool_linf_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(deepfool_linf_params, FOOLC__COUNT(deepfool_linf_params), config,
                           &deepfool_linf_fixed, &c);
    foolc__deepfool_opts o = {FOOLC_LINF, (int32_t)c.steps, (int32_t)c.candidates, c.overshoot,
                              c.rtol, c.epsilon};
    return foolc__deepfool_run(run, &o);
}

const foolc__attack_vt foolc__attack_deepfool_linf = {
    .name = "deepfool-linf",
    .summary = "DeepFool, batched over candidate classes; naturally minimal in Linf",
    .norm = FOOLC_LINF,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = deepfool_linf_params,
    .n_params = FOOLC__COUNT(deepfool_linf_params),
    .config_size = sizeof(foolc__iter_config),
    .run = deepfool_linf_run,
};
