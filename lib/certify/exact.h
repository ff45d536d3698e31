/* method=exact: the minimal Linf or L1 perturbation of one sample of a small built-in ReLU
 * net by a mixed-integer linear program on GLPK (lib/certify/exact.c). */
#ifndef FOOLC_CERTIFY_EXACT_H
#define FOOLC_CERTIFY_EXACT_H

#include "certify/certify_impl.h"

/* 1: foolc_certify's EXACT takes CROWN's bounds (lib/certify/bounds.c, foolc__cert_bounds)
 * for its big-M constants, intersected with the solver's own interval and LP bounds; 0
 * builds exact.c without bounds.c. */
#ifndef FOOLC__EXACT_USE_CROWN
#define FOOLC__EXACT_USE_CROWN 1
#endif

/* How the misclassification region (a union over the classes j != label of
 * logit_j >= logit_label) is searched. */
enum foolc__exact_mode {
    FOOLC__EXACT_PER_CLASS = 0, /* one MILP per class, the best distance as a cutoff */
    FOOLC__EXACT_SELECTOR = 1   /* one MILP with a binary choosing the class */
};

typedef struct foolc__exact_opts {
    foolc_norm norm;            /* FOOLC_LINF or FOOLC_L1 */
    double lo, hi;              /* the box */
    double radius;              /* an upper bound on the minimum (inf: none known) */
    double rtol;                /* the answer is exact when upper <= lower * (1 + rtol) */
    double time_limit;          /* seconds for this sample (> 0; inf: none) */
    int mode;                   /* enum foolc__exact_mode */
    int no_attack;              /* 1: no FMN run for a first verified upper end */
    int crown;                  /* intersect the interval bounds with CROWN's
                                   (foolc__cert_bounds) */
} foolc__exact_opts;

typedef struct foolc__exact_out {
    double lower;               /* the true minimal distance is >= lower */
    double upper;               /* distance of x_adv, a verified adversarial (inf: none) */
    int solved;                 /* upper <= lower * (1 + rtol) (+ a float tolerance) */
    int64_t milps;              /* branch-and-bound runs */
    int32_t binaries;           /* unstable relus of the last program built */
    double seconds;
} foolc__exact_out;

/* The minimal perturbation of x (the net's input shape, inside the box) that makes the
 * net's argmax differ from label (target < 0; a tie counts) or equal target. x_adv (NULL or
 * numel floats) receives the verified adversarial when out->upper is finite. Returns
 * FOOLC_OK (solved or not: see out), or FOOLC_E_UNSUPPORTED (a layer the program cannot
 * encode, a norm other than Linf and L1), FOOLC_E_INVALID, FOOLC_E_NOMEM, FOOLC_E_BACKEND
 * (GLPK failed), FOOLC_E_NONFINITE (the net's forward pass). Thread-safe for distinct nets
 * (GLPK 5 keeps its environment per thread). */
foolc_status foolc__exact_sample(foolc_net *net, const float *x, int32_t label, int32_t target,
                                 const foolc__exact_opts *o, foolc__exact_out *out,
                                 float *x_adv);

#endif
