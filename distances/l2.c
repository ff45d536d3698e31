/* L2 distance: the Euclidean norm of the difference, accumulated in double precision. */
#include "attack_impl.h"

#include <math.h>

static double l2_eval(const float *x0, const float *x, size_t len)
{
    double s = 0;
    for (size_t i = 0; i < len; i++) {
        double t = (double)x[i] - (double)x0[i];
        s += t * t;
    }
    return sqrt(s);
}

const foolc__distance_vt foolc__distance_l2 = {"l2", FOOLC_L2, l2_eval};
