/* Top-k misclassification: adversarial when at least k other classes have strictly larger
 * logits than the label (the label is not among the k best). Margin: z[label] minus the
 * k-th largest logit among the other classes. */
#include "attack_impl.h"

typedef struct topk_config {
    double k;
} topk_config;

static const foolc__param topk_params[] = {
    FOOLC__PARAM(topk_config, k, 5, 1, 1e6, 1, "the label must leave the k largest logits"),
};

static void topk_eval(const double *params, const float *z, int32_t k, int32_t label,
                      int32_t target, double *margin, float *dmargin)
{
    (void)target;
    int32_t want = (int32_t)params[0];
    if (want > k - 1) want = k - 1;
    /* The want-th largest among the others, by repeated selection (k is small). Among equal
     * values the lowest index is taken first. */
    int32_t pick = -1;
    float prev = 0;
    int32_t prev_idx = -1;
    for (int32_t r = 0; r < want; r++) {
        pick = -1;
        for (int32_t j = 0; j < k; j++) {
            if (j == label) continue;
            if (prev_idx >= 0 && (z[j] > prev || (z[j] == prev && j <= prev_idx))) continue;
            if (pick < 0 || z[j] > z[pick]) pick = j;
        }
        prev = z[pick];
        prev_idx = pick;
    }
    *margin = (double)z[label] - (double)z[pick];
    if (dmargin) {
        for (int32_t j = 0; j < k; j++) dmargin[j] = 0;
        dmargin[label] = 1;
        dmargin[pick] = -1;
    }
}

const foolc__criterion_vt foolc__criterion_topk = {
    .name = "top-k", .params = topk_params,
    .n_params = FOOLC__COUNT(topk_params), .eval = topk_eval,
};
