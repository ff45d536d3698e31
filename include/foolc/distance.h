/* Distances between images and projections onto norm balls intersected with the box. */
#ifndef FOOLC_DISTANCE_H
#define FOOLC_DISTANCE_H

#include "common.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Enum values only grow; FOOLC_NORM_COUNT closes the list. */
typedef enum foolc_norm {
    FOOLC_L0 = 0,   /* number of coordinates that differ */
    FOOLC_L1 = 1,
    FOOLC_L2 = 2,
    FOOLC_LINF = 3,
    FOOLC_MSE = 4,  /* mean squared difference */
    FOOLC_NORM_COUNT
} foolc_norm;

/* "l0", "l1", "l2", "linf", "mse"; NULL for an out-of-range value. */
FOOLC_API const char *foolc_norm_name(foolc_norm p);
/* Parses a name (case-insensitive; "inf" and "l-inf" are accepted for linf). */
FOOLC_API FOOLC_WUR foolc_status foolc_norm_parse(const char *name, foolc_norm *out);

/* The distance between x0 and x (len floats each), computed in double precision.
 * Returns NaN for a bad norm or NULL input. */
FOOLC_API double foolc_distance(foolc_norm p, const float *x0, const float *x, size_t len);

/* out = the exact Euclidean projection of v onto {u : ||u - x0||_p <= eps} ∩ [lo, hi]^len
 * for p in L1, L2, LINF. x0 must lie in the box; v and out may alias.
 * Errors: FOOLC_E_INVALID (NULL, eps < 0, lo >= hi, unsupported norm), FOOLC_E_NOMEM. */
FOOLC_API FOOLC_WUR foolc_status foolc_project(foolc_norm p, const float *x0, const float *v,
                                               size_t len, double eps, float lo, float hi,
                                               float *out);

#ifdef __cplusplus
}
#endif
#endif
