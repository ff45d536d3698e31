/* Certified lower bounds: per sample, a radius r such that no point of the ball of radius r
 * around the input (intersected with the box) satisfies the criterion. The other side of
 * an attack's minimal perturbation, which is an upper bound on the true distance to the
 * decision boundary: the true distance lies in [certified radius, found distance].
 *
 * Built-in nets only (foolc/net.h): the bounds come from the net's weights. Methods:
 *   IBP    interval bound propagation (fast, loose);
 *   CROWN  backward linear relaxation with adaptive lower ReLU slopes (CROWN-Ada);
 *   EXACT  a mixed-integer program with big-M constants from the CROWN bounds (small nets;
 *          the exact minimum, or an interval when the time limit is hit).
 * Supported layers: dense, conv2d, relu, maxpool2d, avgpool2d, batchnorm (its running
 * statistics: an affine map), flatten, and softmax as the last layer (which changes no
 * decision, so the bounds are on the logits). */
#ifndef FOOLC_CERTIFY_H
#define FOOLC_CERTIFY_H

#include "common.h"
#include "status.h"
#include "distance.h"
#include "oracle.h"
#include "net.h"
#include "eval.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Enum values only grow; FOOLC_CERTIFY_METHOD_COUNT closes the list. */
typedef enum foolc_certify_method {
    FOOLC_CERTIFY_IBP = 0,
    FOOLC_CERTIFY_CROWN = 1,
    FOOLC_CERTIFY_EXACT = 2,
    FOOLC_CERTIFY_METHOD_COUNT
} foolc_certify_method;

/* "ibp", "crown", "exact"; NULL for an out-of-range value. */
FOOLC_API const char *foolc_certify_method_name(foolc_certify_method m);
/* Parses a name (case-insensitive). */
FOOLC_API FOOLC_WUR foolc_status foolc_certify_method_parse(const char *name,
                                                            foolc_certify_method *out);

/* Options; foolc_certify_defaults fills them. Fields are only ever appended. */
typedef struct foolc_certify_opts {
    foolc_certify_method method;  /* default FOOLC_CERTIFY_CROWN */
    foolc_norm norm;              /* FOOLC_L1, FOOLC_L2 or FOOLC_LINF (default) */
    double rtol;                  /* relative tolerance of the radius's bisection, in
                                     (0, 1); default 1e-3 */
    double lo, hi;                /* the box; NaN (the default): the net's bounds */
    double time_limit;            /* EXACT: seconds per sample, > 0; default 60 */
    const double *hint;           /* NULL (default) or n values: distances of adversarials
                                     already found (an upper bound each; inf or NaN: none),
                                     where the search for the radius starts */
} foolc_certify_opts;

/* foolc_certify_defaults and foolc_certify are macros that pass
 * sizeof(foolc_certify_opts) to their _sized forms (as foolc_net_train does): options a
 * later version adds keep their defaults for programs built against this header; a struct
 * smaller than the first version's is FOOLC_E_VERSION. */
FOOLC_API foolc_status foolc_certify_defaults_sized(foolc_certify_opts *o, size_t size);
#define foolc_certify_defaults(o) \
    ((void)foolc_certify_defaults_sized((o), sizeof(foolc_certify_opts)))

/* For each of the n samples x (n * c*h*w floats, NCHW, inside the box), radius[i] = a
 * certified radius in the norm: every x' with ||x' - x_i|| <= radius[i] inside the box
 * keeps the criterion unsatisfied: with targets == NULL the net's argmax stays labels[i]
 * (misclassification; a tie counts as adversarial), else the argmax never becomes
 * targets[i] (some other class's logit stays above the target's; labels are then only
 * checked for range). The radius is the bisection's
 * lower end, within rtol (relative) of the largest radius the method can certify; 0 when
 * the sample is already adversarial; +inf when the method certifies the whole box.
 * upper (NULL or n values): an upper end of the true minimal distance as far as the method
 * knows it: EXACT's upper bound (equal to the radius within rtol when solved), +inf for IBP
 * and CROWN (which know no adversarial). radius and upper must not overlap x, labels or
 * targets.
 * Returns FOOLC_OK; FOOLC_NOT_FOUND when EXACT hit its time limit on some sample (its
 * interval [radius, upper] is then wider than rtol). Errors: FOOLC_E_INVALID (NULL, n < 0,
 * bad options, labels or targets out of range, x not finite or outside the box, aliasing
 * outputs), FOOLC_E_UNSUPPORTED (a layer the method cannot bound, named in the message;
 * EXACT when the library was built without it), FOOLC_E_NOMEM, FOOLC_E_VERSION. */
FOOLC_API FOOLC_WUR foolc_status foolc_certify_sized(foolc_net *net, const float *x,
                                                     const int32_t *labels,
                                                     const int32_t *targets, int32_t n,
                                                     const foolc_certify_opts *o,
                                                     size_t o_size, double *radius,
                                                     double *upper);
#define foolc_certify(net, x, labels, targets, n, o, radius, upper)                     \
    foolc_certify_sized((net), (x), (labels), (targets), (n), (o),                      \
                        sizeof(foolc_certify_opts), (radius), (upper))

/* The same for a model given as an oracle: it must be a built-in net's oracle
 * (foolc_net_oracle); any other model (callbacks) is FOOLC_E_UNSUPPORTED, since its weights
 * are out of reach. The box defaults to the oracle's lo, hi. */
FOOLC_API FOOLC_WUR foolc_status foolc_certify_oracle_sized(const foolc_oracle *model,
                                                            const float *x,
                                                            const int32_t *labels,
                                                            const int32_t *targets, int32_t n,
                                                            const foolc_certify_opts *o,
                                                            size_t o_size, double *radius,
                                                            double *upper);
#define foolc_certify_oracle(model, x, labels, targets, n, o, radius, upper)            \
    foolc_certify_oracle_sized((model), (x), (labels), (targets), (n), (o),             \
                               sizeof(foolc_certify_opts), (radius), (upper))

/* Adds to the evaluation ev a step (foolc_eval_add_step) named "certify" with the columns
 * "linf", "l2" and "l1": per sample, the certified radius of o's method (o->norm and o->hint
 * are ignored) in each of those norms the evaluation reports (foolc_eval_norms; NaN in the
 * others, and in a norm the exact method does not solve), searched from the best distance the attacks found for the sample. o is borrowed:
 * it must outlive the evaluation. The evaluation's model must be a built-in net's oracle
 * (the step then fails with FOOLC_E_UNSUPPORTED; check first with foolc_certify_oracle and
 * n = 0, which checks the model and the options). Steps run after the attacks, so the found
 * distances are there, and are saved and resumed with the evaluation's chunks. */
FOOLC_API FOOLC_WUR foolc_status foolc_certify_eval_add_sized(foolc_eval *ev,
                                                              const foolc_certify_opts *o,
                                                              size_t o_size);
#define foolc_certify_eval_add(ev, o) \
    foolc_certify_eval_add_sized((ev), (o), sizeof(foolc_certify_opts))

#ifdef __cplusplus
}
#endif
#endif
