/* L1 distance: the sum of absolute differences, accumulated in double precision. */
#include "attack_impl.h"

#include <math.h>

static double l1_eval(const float *x0, const float *x, size_t len)
{
    double s = 0;
    for (size_t i = 0; i < len; i++) s += fabs((double)x[i] - (double)x0[i]);
    return s;
}

const foolc__distance_vt foolc__distance_l1 = {"l1", FOOLC_L1, l1_eval};
