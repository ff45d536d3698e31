/* The contract between foolc_certify (lib/certify/certify.c), the bound propagation
 * (lib/certify/bounds.c: IBP and CROWN) and the exact method (lib/certify/exact.c, a MILP
 * whose big-M constants come from foolc__cert_bounds). */
#ifndef FOOLC_CERTIFY_IMPL_H
#define FOOLC_CERTIFY_IMPL_H

#include "internal.h"
#include "nn/nn.h"

/* Checks that every layer of net is one the bounds know (dense, conv2d, relu, maxpool2d,
 * avgpool2d, batchnorm, flatten, softmax as the last layer); the error names the first
 * other one ("certify: layer 3 (foo) is not supported"). who prefixes the message. */
foolc_status foolc__cert_check_net(const foolc_net *net, const char *who);

/* The bounds of every tensor of net live in one array of doubles: tensor t (t = 0..L:
 * tensor t is layer t's input, tensor L the logits; as nn_plan numbers them) starts at
 * foolc__cert_offset(net, t) and has nn_numel of its dims values (NCHW of one image);
 * foolc__cert_offset(net, L + 1) is the total. The logits of a net ending in softmax are
 * the tensor before the softmax (tensor L - 1); tensor L then holds [0, 1]. */
int64_t foolc__cert_offset(const foolc_net *net, int32_t t);

/* Lower and upper bounds lb, ub (foolc__cert_offset(net, L + 1) doubles each) on every
 * tensor of net over the inputs {x' : ||x' - x||_norm <= r} ∩ [lo, hi]^d (norm L1, L2 or
 * LINF; r >= 0; x one image inside the box) by method IBP or CROWN. Tensor 0 gets the
 * interval [max(lo, x - r), min(hi, x + r)]; a ReLU's input tensor gets its pre-activation
 * bounds, which is what big-M constants need. Computed in double and widened by a float
 * rounding tolerance: every value the float engine computes for such an x' lies inside
 * (up to its own rounding). CROWN bounds are intersected with the IBP ones, so they are
 * never looser; a layer whose CROWN pass would need too much memory keeps its IBP bounds.
 * Errors: FOOLC_E_INVALID (bad method or norm), FOOLC_E_UNSUPPORTED (see
 * foolc__cert_check_net), FOOLC_E_NOMEM. */
foolc_status foolc__cert_bounds(const foolc_net *net, const float *x, foolc_norm norm,
                                double r, double lo, double hi, foolc_certify_method method,
                                double *lb, double *ub);

/* The certified radius of one sample by IBP or CROWN (o->method), searched as
 * foolc_certify does (bisection to o->rtol from hint when finite and > 0); target < 0 for
 * misclassification. o is resolved: o->lo, o->hi are the box. */
foolc_status foolc__cert_radius(const foolc_net *net, const float *x, int32_t label,
                                int32_t target, const foolc_certify_opts *o, double hint,
                                double *radius);

/* The exact method (lib/certify/exact.c). foolc_certify calls it after every check: the net
 * is supported (foolc__cert_check_net), x is finite and inside the box, labels and targets
 * are in range, n >= 1, o is resolved (defaults filled, o->lo < o->hi finite, o->method ==
 * FOOLC_CERTIFY_EXACT, o->norm one of L1, L2, LINF). Same contract for radius and upper as
 * foolc_certify (FOOLC_NOT_FOUND when the time limit left some interval open;
 * FOOLC_E_UNSUPPORTED with a message for a norm or net it cannot solve). */
foolc_status foolc__certify_exact(foolc_net *net, const float *x, const int32_t *labels,
                                  const int32_t *targets, int32_t n,
                                  const foolc_certify_opts *o, double *radius, double *upper);

#endif
