/* Brendel-Bethge Linf attack (arXiv:1907.01003): each boundary step finds the smallest eps
 * such that the linearised boundary b . delta = c can be reached inside the cube of
 * radius eps around the input, the box [lo, hi] and the L2 trust region (a Newton search
 * for the cube alone, then a bounded bisection on eps whose tests are smallest-L2 steps). */
#include "bb.h"
#include "numeric.h"

#include <math.h>
#include <stddef.h>

typedef foolc__bb_config bb_linf_config;

static const foolc__param bb_linf_params[] = {FOOLC__BB_PARAMS(1)};

/* Bounds of delta inside the box and the eps-cube around x0 (never empty: x0 is in both). */
#define CUBE_COORD(i)                                                                              \
    do {                                                                                           \
        double a_ = lo - x[i], b_ = u[i] - eps, c_ = hi - x[i], e_ = u[i] + eps;                   \
        double l_ = a_ > b_ ? a_ : b_, h_ = c_ < e_ ? c_ : e_;                                     \
        int empty_ = l_ > h_;                                                                      \
        l[i] = empty_ ? u[i] : l_;                                                                 \
        h[i] = empty_ ? u[i] : h_;                                                                 \
    } while (0)

FOOLC__BB_VEC
static void cube_block(size_t d, const double *restrict x, const double *restrict u, double lo,
                       double hi, double eps, double *restrict l, double *restrict h)
{
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) CUBE_COORD(i + k);
    for (; i < d; i++) CUBE_COORD(i);
}

static void cube(const foolc__bb_prob *p, double eps, double *l, double *h)
{
    cube_block(p->d, p->x, p->u, p->lo, p->hi, eps, l, h);
}

/* F(e) = sum_i |b_i| min(e, k_i): how far b . delta can move from b . u inside the cube of
 * radius e around x0 (and the box), k_i the room of x0_i in the direction that helps. */
typedef struct reach_ctx {
    size_t d;
    const double *ab, *k;
} reach_ctx;

static double reach_fn(void *ctx, double e, double *slope)
{
    const reach_ctx *r = ctx;
    double f = 0, s = 0;
    for (size_t i = 0; i < r->d; i++) {
        if (r->k[i] > e) {
            f += r->ab[i] * e;
            s += r->ab[i];
        } else {
            f += r->ab[i] * r->k[i];
        }
    }
    *slope = s;
    return f;
}

static void bb_linf_solve(foolc__bb_prob *p)
{
    size_t d = p->d;
    double *l = p->w, *h = l + d, *dt = h + d, *ab = dt + d, *k = ab + d, n2;
    if (foolc__bb_unreachable(p, l, h)) return;
    /* Smallest eps at which the boundary is reachable at all (ignoring the radius): the
     * root of the concave, piecewise-linear F(eps) = |c - b . u|, by a bracketed Newton
     * search (exact within a linear piece). */
    double width = p->hi - p->lo, bu = 0, sab = 0, fmaxv = 0, umax = 0;
    for (size_t i = 0; i < d; i++) bu += p->b[i] * p->u[i];
    double t = p->c - bu, sg = t >= 0 ? 1 : -1;
    for (size_t i = 0; i < d; i++) {
        double x0 = p->x[i] + p->u[i];
        ab[i] = fabs(p->b[i]);
        k[i] = sg * p->b[i] > 0 ? p->hi - x0 : p->lo < x0 ? x0 - p->lo : 0;
        if (k[i] < 0) k[i] = 0;
        sab += ab[i];
        fmaxv += ab[i] * k[i];
        umax = fmax(umax, fabs(p->u[i]));
    }
    double eh = 0;
    if (fabs(t) > 0 && sab > 0) {
        reach_ctx rc = {d, ab, k};
        double e0 = fabs(t) / sab, above = width;
        foolc__bb_root(reach_fn, &rc, fabs(t), e0, e0, 1e-12 * (fabs(t) + fmaxv), 1e-9, 200, NULL,
                       &above);
        eh = fmin(width, fmax(0, above));
    }
    double beta = NAN;
    cube(p, eh, l, h);
    if (foolc__bb_min_norm_warm(d, p->b, l, h, p->c, &beta, dt, &n2) && n2 <= p->r * p->r) {
        for (size_t i = 0; i < d; i++) p->delta[i] = dt[i];
        return;
    }
    /* Otherwise the smallest eps whose smallest step also fits the trust region. The box's
     * smallest step (in p->delta, found feasible above) moves no coordinate by more than
     * r, so eps = max |u| + r is feasible; the Newton searches start from the last root.
     * Bisection to 1e-5 of the box width (regula falsi measured more evaluations: the
     * Newton searches' warm starts like small moves). */
    double el = eh;
    eh = fmin(width, umax + p->r);
    for (int it = 0; it < 50 && eh - el > 1e-5 * width; it++) {
        double e = 0.5 * (el + eh);
        cube(p, e, l, h);
        if (foolc__bb_min_norm_warm(d, p->b, l, h, p->c, &beta, dt, &n2) &&
            n2 <= p->r * p->r) {
            eh = e;
            for (size_t i = 0; i < d; i++) p->delta[i] = dt[i];
        } else {
            el = e;
        }
    }
}

static foolc_status bb_linf_run(foolc__run *run, const void *config)
{
    return foolc__bb_run(run, config, bb_linf_solve);
}

FOOLC__ATTACK(bb_linf, "bb-linf", FOOLC_LINF, FOOLC__GRAD, bb_linf_params, bb_linf_config,
              bb_linf_run, NULL,
              "Brendel-Bethge: walks the decision boundary towards the input (Linf)");
