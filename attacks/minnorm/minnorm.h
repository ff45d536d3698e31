/* Shared machinery of the minimum-norm attacks (C&W, EAD, DDN, FMN, FAB, NewtonFool):
 * gradients of per-row custom losses on logits with queries attributed per sample,
 * adversarial flags from logits, projections onto Lp balls and the exact per-norm
 * projections onto a hyperplane intersected with the box that FAB uses. */
#ifndef FOOLC_MINNORM_H
#define FOOLC_MINNORM_H

#include "attack_impl.h"
#include "numeric.h"

#include <math.h>


/* Gradient of scale[a] * max(margin, -kappa) where margin is the run's criterion margin
 * (scale NULL: 1; kappa = INFINITY: the plain margin). margin (m) receives the raw margin,
 * adv (m, may be NULL) the criterion's verdict at that very point. */
foolc_status foolc__mn_margin_grad(foolc__run *run, const float *xs, const int32_t *idx,
                                   int32_t m, const double *scale, double kappa, float *grad,
                                   double *margin, uint8_t *adv, float *logits);

/* A margin below -foolc__mn_safe(z, k) survives the rounding differences between batch
 * sizes (the core verifies in another batch): 2e-6 * (1 + max |z_j|). For attacks whose
 * iterates converge onto the boundary itself. */
double foolc__mn_safe(const float *z, int32_t k);

/* Whether each of m images xs of samples idx is adversarial with that safety margin (scores
 * models; logits m*k), and f (may be NULL) the margin the verdict compares: criterion
 * margin + foolc__mn_safe, negative where safely adversarial. */
foolc_status foolc__mn_safe_adv(foolc__run *run, const float *xs, const int32_t *idx, int32_t m,
                                float *logits, uint8_t *adv, double *f);

/* A coordinate j with its ranking key; foolc__mn_cmp_rank (qsort) orders by key, largest
 * first, ties by j ascending (a total order: the same ranking on every platform). */
typedef struct foolc__mn_rank {
    double key;
    int32_t j;
} foolc__mn_rank;
int foolc__mn_cmp_rank(const void *a, const void *b);

/* The scale of a row of logits z (k), max(1, (max_j z_j - min_j z_j) / 100): DeepFool's
 * overshoot is in its units; 1 on the usual logit ranges, where
 * nothing changes, and proportional to the logits' scale on a model whose logits are
 * multiplied by a large factor (a saturated or distilled net). (C&W, EAD and PDPGD weigh
 * margin / T, T the logits' temperature at the clean input, foolc__logit_temp: proportional
 * at every scale.) */
double foolc__mn_logit_scale(const float *z, int32_t k);

/* The search on the path from the clean input (t = 0) to xadv (t = 1) for the point
 * nearest the clean input that is adversarial with a safety margin: its margin must be
 * below -foolc__mn_safe, so the final point never sits so close to the boundary that the
 * core's verification (another batch) could flip it. In Linf the perturbation is clipped
 * rather than scaled. Illinois regula falsi on the margin, with midpoints when it stalls,
 * to a bracket 2^-steps wide (as fine as `steps` halvings; about a third of their
 * queries). Offers the adversarial end of each final bracket. */
foolc_status foolc__mn_bisect(foolc__run *run, const int32_t *idx, int32_t m, float *xadv,
                              int32_t steps);
/* The successful samples among todo: their number and, where xs / sid are not NULL, their
 * best adversarials (rows of xs) and sample ids. */
int32_t foolc__mn_successes(const foolc__run *run, float *xs, int32_t *sid);
/* Runs foolc__mn_bisect from every successful sample's best adversarial among todo. */
foolc_status foolc__mn_finish(foolc__run *run, int32_t steps);

/* Boundary polish of every successful sample among todo, from its best adversarial: each
 * step linearises the margin at the current point and moves to the smallest perturbation
 * of the clean input (in norm, within the box) that reaches a margin of -2 foolc__mn_safe
 * there (foolc__mn_plane_proj); adversarial points are offered. One forward and backward
 * per step and sample; a sample stops when its next point would be no smaller than its
 * best. For attacks whose optimiser ends near, not on, the locally minimal point. */
foolc_status foolc__mn_polish(foolc__run *run, foolc_norm norm, int32_t steps);

/* The same polish with, under the misclassification criterion and more than two classes,
 * one candidate per other class (the `classes` ones with the largest logits at the best
 * point, at most FOOLC__POLISH_MAX_CLASSES; all when classes >= k - 1, without the forward
 * pass that ranks them): each linearises z_label - z_class instead of the criterion's
 * margin, so a sample whose attack headed for a farther class still reaches the nearest
 * boundary (exactly, on a linear model). classes = 0: foolc__mn_polish. Up to `classes`
 * forward+backward images per sample in the first step; candidates whose target is no
 * smaller than the sample's best stop, so later steps cost about one. */
#define FOOLC__POLISH_MAX_CLASSES 32
foolc_status foolc__mn_polish_classes(foolc__run *run, foolc_norm norm, int32_t steps,
                                      int32_t classes);

/* The L0 polish of every successful sample among todo (pdpgd.c): for each candidate (under
 * misclassification with more than two classes, each other class c with the pair margin
 * z_y - z_c, at most FOOLC__POLISH_MAX_CLASSES: then those with the largest logits at the
 * best point, one forward pass; otherwise the criterion's margin), the
 * margin's gradient g at the best point ranks the coordinates by |g_j| * room_j (how far
 * the box lets x0_j move the way that lowers the margin), and a bisection over how many of
 * the top ones are pushed to the box finds the fewest that are adversarial (exact for a
 * model linear in the input); then the best point is pruned: its changed coordinates ranked
 * by |g_j delta_j| (the criterion's margin gradient there), a bisection over how many keep
 * their values. About one backward and log2(d) forward images per candidate. */
foolc_status foolc__mn_l0_polish(foolc__run *run);



/* v += s g; v *= f; delta = clip(x0 + delta, lo, hi) - x0 (d floats each, in float). */
void foolc__mn_axpy(float *restrict v, const float *restrict g, double s, size_t d);
void foolc__mn_scale(float *v, double f, size_t d);
void foolc__mn_box(const float *restrict x0, float *restrict delta, size_t d, float lo,
                   float hi);

/* Zeroes the components of the gradient g at x whose descent would leave [lo, hi]. */
void foolc__mn_box_grad(const float *restrict x, float *restrict g, size_t d, float lo,
                        float hi);

/* Clips x0 + delta to [lo, hi] and writes the result to out (both d). */
void foolc__mn_clip_step(const float *x0, const float *delta, size_t d, float lo, float hi,
                         float *out);

/* Minimal-Lp step onto a hyperplane within the box: finds delta (d) with w.delta = c and
 * p + delta in [lo, hi] that minimises ||delta||_norm (L1, L2 or Linf), exactly. When the
 * box makes c unreachable, delta is the box corner that goes furthest. work: 2*d doubles
 * plus d size_t (one block of at least foolc__mn_plane_work(d) bytes). Returns 1 when c
 * is reachable. */
size_t foolc__mn_plane_work(size_t d);
int foolc__mn_plane_proj(foolc_norm norm, const float *p, const float *w, double c, size_t d,
                         float lo, float hi, float *delta, void *work);



/* The search over C&W's and EAD's trade-off constant c after one run at c, per sample: the
 * bracket [lower, upper] (from 0 and inf) narrows to the side the run's success shows, and
 * c grows tenfold while no run has succeeded, else moves to the bracket's midpoint. */
static inline void foolc__mn_const_next(double *c, double *lower, double *upper, int found)
{
    if (found) *upper = *upper < *c ? *upper : *c;
    else *lower = *lower > *c ? *lower : *c;
    *c = *upper == INFINITY ? *c * 10 : 0.5 * (*lower + *upper);
}

/* ---- FMN (fmn.c) and FAB (fab.c) configs ---- */
typedef struct foolc__fmn_config {
    double steps, max_stepsize, min_stepsize, gamma, bisect, polish, rounds, noise, race_decision;
} foolc__fmn_config;

typedef struct foolc__fab_config {
    double steps, restarts, alpha_max, eta, beta, classes, bisect;
} foolc__fab_config;
#endif
