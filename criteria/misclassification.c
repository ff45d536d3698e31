/* Misclassification: adversarial when some other class has a strictly larger logit than
 * the label. Margin: z[label] - max_{j != label} z[j]. */
#include "attack_impl.h"

static void misclass_eval(const double *params, const float *z, int32_t k, int32_t label,
                          int32_t target, double *margin, float *dmargin)
{
    (void)params, (void)target;
    int32_t best = label == 0 ? 1 : 0;
    for (int32_t j = 0; j < k; j++)
        if (j != label && z[j] > z[best]) best = j;
    *margin = (double)z[label] - (double)z[best];
    if (dmargin) {
        for (int32_t j = 0; j < k; j++) dmargin[j] = 0;
        dmargin[label] = 1;
        dmargin[best] = -1;
    }
}

static int misclass_label(int32_t pred, int32_t label, int32_t target)
{
    (void)target;
    return pred != label;
}

const foolc__criterion_vt foolc__criterion_misclassification = {
    .name = "misclassification", .label_only = 1,
    .eval = misclass_eval, .is_adv_label = misclass_label,
};
