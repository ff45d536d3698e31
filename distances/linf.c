/* Linf distance: the largest absolute difference of any coordinate. */
#include "attack_impl.h"

#include <math.h>

static double linf_eval(const float *x0, const float *x, size_t len)
{
    double m = 0;
    for (size_t i = 0; i < len; i++) {
        double t = fabs((double)x[i] - (double)x0[i]);
        if (t > m) m = t;
    }
    return m;
}

const foolc__distance_vt foolc__distance_linf = {"linf", FOOLC_LINF, linf_eval};
