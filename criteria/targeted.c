/* Targeted misclassification: adversarial when the target's logit is strictly larger than
 * every other. Margin: max_{j != target} z[j] - z[target]. */
#include "attack_impl.h"

static void targeted_eval(const double *params, const float *z, int32_t k, int32_t label,
                          int32_t target, double *margin, float *dmargin)
{
    (void)params, (void)label;
    int32_t best = target == 0 ? 1 : 0;
    for (int32_t j = 0; j < k; j++)
        if (j != target && z[j] > z[best]) best = j;
    *margin = (double)z[best] - (double)z[target];
    if (dmargin) {
        for (int32_t j = 0; j < k; j++) dmargin[j] = 0;
        dmargin[best] = 1;
        dmargin[target] = -1;
    }
}

static int targeted_label(int32_t pred, int32_t label, int32_t target)
{
    (void)label;
    return pred == target;
}

const foolc__criterion_vt foolc__criterion_targeted = {
    .name = "targeted", .needs_targets = 1, .label_only = 1,
    .eval = targeted_eval, .is_adv_label = targeted_label,
};
