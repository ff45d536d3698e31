/* L0 distance: the number of coordinates in which two images differ. */
#include "attack_impl.h"

static double l0_eval(const float *x0, const float *x, size_t len)
{
    size_t c = 0;
    for (size_t i = 0; i < len; i++) c += x0[i] != x[i];
    return (double)c;
}

const foolc__distance_vt foolc__distance_l0 = {"l0", FOOLC_L0, l0_eval};
