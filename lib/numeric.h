/* Numeric utilities shared by every attack family, written once: clamping, the dual norm
 * of a step's geometry, the k-th largest value, an ordering by decreasing key and the exact
 * Euclidean projection onto an Lp ball intersected with the box (the public foolc_project
 * runs the same code). Internal to the library. */
#ifndef FOOLC_NUMERIC_H
#define FOOLC_NUMERIC_H

#include "attack_impl.h"

#include <stddef.h>
#include <stdint.h>

#define FOOLC__PI 3.14159265358979323846

static inline double foolc__clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The dual norm of g for the ball norm p (Linf -> L1, L2 -> L2, L1 -> Linf), sequential
 * double sums. */
double foolc__dual_norm(foolc_norm p, const float *g, size_t d);

/* The k-th largest (k >= 1) of v[0..n) by quickselect; v is reordered. */
float foolc__kth_largest(float *v, size_t n, size_t k);

/* Sorts ord (indices into key) by decreasing key: a heap sort, no allocation. */
void foolc__order_desc(int32_t *ord, const float *key, size_t n);

/* The exact Euclidean projection of v onto {u : |u - x0|_p <= eps} ∩ [lo, hi]^d in place
 * (p = Linf, L2 or L1), by sorting breakpoints. work: FOOLC__PROJECT_WORK(d) floats. */
#define FOOLC__PROJECT_WORK(d) (3 * (size_t)(d))
void foolc__project(foolc_norm p, const float *x0, float *v, size_t d, double eps, float lo,
                    float hi, float *work);

#endif
