/* The public structs' layouts, checked when the library is compiled. Structs that may grow
 * (foolc_result, foolc_train_opts, foolc_oracle) carry their size or version into the
 * library (foolc_attack_run and foolc_net_train are macros passing sizeof; the oracle has
 * its version field); the plain descriptors below are frozen instead, and an edit that
 * changes them fails here rather than in every program built against an older header. */
#include "internal.h"

#include <stddef.h>

_Static_assert(offsetof(foolc_array, ndim) == sizeof(foolc_dtype) &&
                   offsetof(foolc_array, shape) == 8 &&
                   offsetof(foolc_array, data) == 8 + FOOLC_MAX_DIMS * sizeof(int64_t) &&
                   sizeof(foolc_array) == offsetof(foolc_array, data) + sizeof(void *),
               "foolc_array is frozen (include/foolc/data.h): add functions, not fields");
_Static_assert(offsetof(foolc_data, n_classes) == sizeof(foolc_shape) &&
                   offsetof(foolc_data, y) == offsetof(foolc_data, x) + sizeof(float *) &&
                   sizeof(foolc_data) == offsetof(foolc_data, y) + sizeof(int32_t *),
               "foolc_data is frozen (include/foolc/data.h): add functions, not fields");
_Static_assert(sizeof(foolc_shape) == 4 * sizeof(int32_t), "foolc_shape is frozen");
