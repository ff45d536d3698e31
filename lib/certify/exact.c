/* The exact method's place holder: the MILP solver lands here (issue 19, item 2). Until
 * then EXACT is refused with FOOLC_E_UNSUPPORTED. */
#include "certify_impl.h"

foolc_status foolc__certify_exact(foolc_net *net, const float *x, const int32_t *labels,
                                  const int32_t *targets, int32_t n,
                                  const foolc_certify_opts *o, double *radius, double *upper)
{
    (void)net, (void)x, (void)labels, (void)targets, (void)n, (void)o, (void)radius,
        (void)upper;
    return foolc__error(FOOLC_E_UNSUPPORTED, "certify: method 'exact' is not built into "
                        "this library yet");
}
