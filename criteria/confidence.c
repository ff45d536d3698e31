/* Confident misclassification: adversarial when another class j has the largest logit and
 * softmax probability >= p. Margin: max(z[label] - z[j], log p - log softmax(z)[j]), with j
 * the best other class; computed with a stable log-sum-exp. */
#include "attack_impl.h"

#include <math.h>

typedef struct confidence_config {
    double p;
} confidence_config;

static const foolc__param confidence_params[] = {
    FOOLC__PARAM(confidence_config, p, 0.9, 1e-6, 1 - 1e-6, 0,
                 "the softmax probability the wrong class must reach"),
};

static void confidence_eval(const double *params, const float *z, int32_t k, int32_t label,
                            int32_t target, double *margin, float *dmargin)
{
    (void)target;
    int32_t best = label == 0 ? 1 : 0, top = 0;
    for (int32_t j = 0; j < k; j++) {
        if (j != label && z[j] > z[best]) best = j;
        if (z[j] > z[top]) top = j;
    }
    double s = 0;
    for (int32_t j = 0; j < k; j++) s += exp((double)z[j] - z[top]);
    double lse = (double)z[top] + log(s);
    double m1 = (double)z[label] - (double)z[best];
    double m2 = log(params[0]) - ((double)z[best] - lse);
    *margin = m1 > m2 ? m1 : m2;
    if (dmargin) {
        for (int32_t j = 0; j < k; j++) dmargin[j] = 0;
        if (m1 > m2) {
            dmargin[label] = 1;
            dmargin[best] = -1;
        } else {
            /* d(-log softmax_best)/dz = softmax - e_best */
            for (int32_t j = 0; j < k; j++) dmargin[j] = (float)exp((double)z[j] - lse);
            dmargin[best] -= 1;
        }
    }
}

const foolc__criterion_vt foolc__criterion_confidence = {
    .name = "confidence", .params = confidence_params,
    .n_params = FOOLC__COUNT(confidence_params), .eval = confidence_eval,
};
