/* MSE distance: the mean squared difference per coordinate. */
#include "attack_impl.h"

static double mse_eval(const float *x0, const float *x, size_t len)
{
    if (len == 0) return 0;
    double s = 0;
    for (size_t i = 0; i < len; i++) {
        double t = (double)x[i] - (double)x0[i];
        s += t * t;
    }
    return s / (double)len;
}

const foolc__distance_vt foolc__distance_mse = {"mse", FOOLC_MSE, mse_eval};
