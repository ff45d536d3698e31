/* Brendel-Bethge Linf attack (arXiv:1907.01003): each boundary step finds the smallest eps
 * such that the linearised boundary b . delta = c can be reached inside the cube of
 * radius eps around the input, the box [lo, hi] and the L2 trust region (a Newton search
 * for the cube alone, then a bounded bisection on eps whose tests are smallest-L2 steps). */
#include "bb.h"
#include "numeric.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

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

/* One pass for a test of eps: the cube's bounds (into l, h), their range sums (gmin, gmax,
 * -, scale) and, at beta, g = b . clip(beta b), its slope and |clip|^2 (into first[1..3]),
 * each summed in the lanes and the order of walk.c's range_sums and g_beta (the same
 * bits as their three passes); and the linear piece of g around beta (first[4..5]: the
 * nearest betas, ib = 1 / b, where a coordinate's clipping changes) with the clipped
 * coordinates' part of |clip|^2 (first[6]), for foolc__bb_min_norm_first. */
#define TEST_COORD(i, GMIN, GMAX, SC, G, S, N, PL, PH)                                             \
    do {                                                                                           \
        CUBE_COORD(i);                                                                             \
        double b_ = b[i], lo_ = b_ > 0 ? l[i] : h[i], hi_ = b_ > 0 ? h[i] : l[i];                  \
        GMIN += b_ * lo_;                                                                          \
        GMAX += b_ * hi_;                                                                          \
        SC += fabs(b_) * (h[i] - l[i]);                                                            \
        double v_ = beta * b_, w_;                                                                 \
        int free_ = (v_ > l[i]) & (v_ < h[i]);                                                     \
        w_ = v_ < l[i] ? l[i] : v_;                                                                \
        w_ = w_ > h[i] ? h[i] : w_;                                                                \
        v_ = v_ <= l[i] ? l[i] : v_;                                                               \
        v_ = v_ >= h[i] ? h[i] : v_;                                                               \
        S += free_ ? b_ * b_ : 0.0;                                                                \
        G += b_ * v_;                                                                              \
        N += w_ * w_;                                                                              \
        /* The betas where this coordinate's clipping changes: l_i / b_i and h_i / b_i. */        \
        double qa_ = l[i] * ib[i], qb_ = h[i] * ib[i];                                             \
        double fl_ = qa_ < qb_ ? qa_ : qb_, fh_ = qa_ < qb_ ? qb_ : qa_;                           \
        double pl_ = beta > fh_ ? fh_ : -INFINITY, ph_ = beta < fl_ ? fl_ : INFINITY;              \
        pl_ = free_ ? fl_ : pl_;                                                                   \
        ph_ = free_ ? fh_ : ph_;                                                                   \
        pl_ = b_ != 0 ? pl_ : -INFINITY;                                                           \
        ph_ = b_ != 0 ? ph_ : INFINITY;                                                            \
        PL = pl_ > PL ? pl_ : PL;                                                                  \
        PH = ph_ < PH ? ph_ : PH;                                                                  \
    } while (0)

FOOLC__BB_VEC
static void test_block(size_t d, const double *restrict x, const double *restrict u,
                       const double *restrict b, const double *restrict ib, double lo,
                       double hi, double eps, double beta, double *restrict l,
                       double *restrict h, double sums[4], double first[7])
{
    double a0[FOOLC__BLOCK] = {0}, a1[FOOLC__BLOCK] = {0}, a3[FOOLC__BLOCK] = {0},
           ga[FOOLC__BLOCK] = {0}, sa[FOOLC__BLOCK] = {0}, na[FOOLC__BLOCK] = {0},
           pla[FOOLC__BLOCK], pha[FOOLC__BLOCK];
    double s0 = 0, s1 = 0, s3 = 0, g = 0, s = 0, n = 0, pl = -INFINITY, ph = INFINITY;
    for (size_t k = 0; k < FOOLC__BLOCK; k++) {
        pla[k] = -INFINITY;
        pha[k] = INFINITY;
    }
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++)
            TEST_COORD(i + k, a0[k], a1[k], a3[k], ga[k], sa[k], na[k], pla[k], pha[k]);
    for (; i < d; i++) TEST_COORD(i, s0, s1, s3, g, s, n, pl, ph);
    for (size_t k = 0; k < FOOLC__BLOCK; k++) {
        s0 += a0[k];
        s1 += a1[k];
        s3 += a3[k];
        g += ga[k];
        s += sa[k];
        n += na[k];
        pl = pla[k] > pl ? pla[k] : pl;
        ph = pha[k] < ph ? pha[k] : ph;
    }
    first[4] = pl;
    first[5] = ph;
    first[6] = n - beta * beta * s;   /* the clipped coordinates' part of n */
    sums[0] = s0;
    sums[1] = s1;
    sums[3] = s3;
    first[0] = beta;
    first[1] = g;
    first[2] = s;
    first[3] = n;
}

/* F(e) = sum_i |b_i| min(e, k_i): how far b . delta can move from b . u inside the cube of
 * radius e around x0 (and the box), k_i the room of x0_i in the direction that helps. */
typedef struct reach_ctx {
    size_t d;
    const double *ab, *k;
} reach_ctx;

#define REACH_COORD(i, F, S)                                                                       \
    do {                                                                                           \
        double k_ = k[i], ab_ = ab[i];                                                             \
        double m_ = k_ > e ? e : k_, s_ = k_ > e ? ab_ : 0.0;                                      \
        F += ab_ * m_;                                                                             \
        S += s_;                                                                                   \
    } while (0)

FOOLC__BB_VEC
static double reach_block(size_t d, const double *restrict ab, const double *restrict k,
                          double e, double *slope)
{
    double fa[FOOLC__BLOCK] = {0}, sa[FOOLC__BLOCK] = {0}, f = 0, s = 0;
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t j = 0; j < FOOLC__BLOCK; j++) REACH_COORD(i + j, fa[j], sa[j]);
    for (; i < d; i++) REACH_COORD(i, f, s);
    for (size_t j = 0; j < FOOLC__BLOCK; j++) {
        f += fa[j];
        s += sa[j];
    }
    *slope = s;
    return f;
}

static double reach_fn(void *ctx, double e, double *slope)
{
    const reach_ctx *r = ctx;
    return reach_block(r->d, r->ab, r->k, e, slope);
}

FOOLC__BB_VEC
static double linf_dist(size_t d, const double *restrict a, const double *restrict b)
{
    double acc[FOOLC__BLOCK] = {0}, m = 0;
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t j = 0; j < FOOLC__BLOCK; j++) {
            double v = fabs(a[i + j] - b[i + j]);
            acc[j] = v > acc[j] ? v : acc[j];
        }
    for (; i < d; i++) m = fabs(a[i] - b[i]) > m ? fabs(a[i] - b[i]) : m;
    for (size_t j = 0; j < FOOLC__BLOCK; j++) m = acc[j] > m ? acc[j] : m;
    return m;
}

FOOLC__BB_VEC
static double dot_block(size_t d, const double *restrict a, const double *restrict b)
{
    double acc[FOOLC__BLOCK] = {0}, s = 0;
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t j = 0; j < FOOLC__BLOCK; j++) acc[j] += a[i + j] * b[i + j];
    for (; i < d; i++) s += a[i] * b[i];
    for (size_t j = 0; j < FOOLC__BLOCK; j++) s += acc[j];
    return s;
}

/* The solver's set-up sums: out = {sum |b_i|, sum |b_i| k_i, max |u_i|}, with ab = |b| and
 * k the room of x0 in the direction sg b (clipped at 0). */
#define SETUP_COORD(i, SAB, FM, UM)                                                                \
    do {                                                                                           \
        double x0_ = x[i] + u[i], b_ = b[i];                                                       \
        double k_ = sg * b_ > 0 ? hi - x0_ : lo < x0_ ? x0_ - lo : 0;                              \
        k_ = k_ < 0 ? 0 : k_;                                                                      \
        ab[i] = fabs(b_);                                                                          \
        k[i] = k_;                                                                                 \
        SAB += fabs(b_);                                                                           \
        FM += fabs(b_) * k_;                                                                       \
        UM = fabs(u[i]) > UM ? fabs(u[i]) : UM;                                                    \
    } while (0)

FOOLC__BB_VEC
static void setup_block(size_t d, const double *restrict x, const double *restrict u,
                        const double *restrict b, double lo, double hi, double sg,
                        double *restrict ab, double *restrict k, double out[3])
{
    double a0[FOOLC__BLOCK] = {0}, a1[FOOLC__BLOCK] = {0}, a2[FOOLC__BLOCK] = {0}, s0 = 0,
           s1 = 0, s2 = 0;
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t j = 0; j < FOOLC__BLOCK; j++) SETUP_COORD(i + j, a0[j], a1[j], a2[j]);
    for (; i < d; i++) SETUP_COORD(i, s0, s1, s2);
    for (size_t j = 0; j < FOOLC__BLOCK; j++) {
        s0 += a0[j];
        s1 += a1[j];
        s2 = a2[j] > s2 ? a2[j] : s2;
    }
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
}

static void bb_linf_solve(foolc__bb_prob *p)
{
    size_t d = p->d;
    double *l = p->w, *h = l + d, *dt = h + d, *ab = dt + d, *k = ab + d, n2;
    if (foolc__bb_unreachable(p, l, h)) return;
    /* Smallest eps at which the boundary is reachable at all (ignoring the radius): the
     * root of the concave, piecewise-linear F(eps) = |c - b . u|, by a bracketed Newton
     * search (exact within a linear piece). */
    double width = p->hi - p->lo, bu = dot_block(d, p->b, p->u);
    double t = p->c - bu, sg = t >= 0 ? 1 : -1, sums[3];
    setup_block(d, p->x, p->u, p->b, p->lo, p->hi, sg, ab, k, sums);
    double sab = sums[0], fmaxv = sums[1], umax = sums[2];
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
     * smallest step (in p->delta, found feasible above) is in the cube of radius
     * max |delta - u| (and moves no coordinate by more than r, so eps = max |u| + r is
     * feasible too): the bisection starts from the smaller; the Newton searches start from
     * the last roots (extrapolated from the last two).
     * Bisection to 1e-5 of the box width (regula falsi measured more evaluations: the
     * Newton searches' warm starts like small moves). */
    double el = eh, best_e = NAN, best_beta = NAN, tsum[4], first[7], *ib = k + 2 * d;
    tsum[2] = foolc__bb_dot(d, p->b, p->b);
    for (size_t i = 0; i < d; i++) ib[i] = p->b[i] != 0 ? 1 / p->b[i] : 0;
    eh = fmin(width, fmin(umax + p->r, linf_dist(d, p->delta, p->u)));
    double e1 = NAN, b1 = NAN, e2 = NAN, b2 = NAN;   /* the last two tests' eps and root */
    for (int it = 0; it < 50 && eh - el > 1e-5 * width; it++) {
        double e = 0.5 * (el + eh), bw = beta;
        if (e1 == e1 && e2 == e2 && e1 != e2) {
            double pr = b1 + (e - e1) * (b1 - b2) / (e1 - e2);
            if (isfinite(pr) && pr != 0 && (pr > 0) == (b1 > 0)) bw = pr;
        }
        /* The tests need the step's norm only; the best one's step is computed again at the
         * end from its eps and root (the same search from its own result: the same step).
         * The cube, its sums and the first Newton point in one pass. */
        test_block(d, p->x, p->u, p->b, ib, p->lo, p->hi, e,
                   foolc__bb_beta0(p->c, tsum[2], &bw), l, h, tsum, first);
        int ok = foolc__bb_min_norm_first(d, p->b, l, h, p->c, tsum, first, &bw, &n2);
        if (ok && bw != beta) {
            e2 = e1;
            b2 = b1;
            e1 = e;
            b1 = bw;
        }
        beta = bw;
        if (ok && n2 <= p->r * p->r) {
            eh = e;
            best_e = e;
            best_beta = beta;
        } else {
            el = e;
        }
    }
    if (best_e == best_e) {
        cube(p, best_e, l, h);
        foolc__bb_min_norm_warm(d, p->b, l, h, p->c, &best_beta, p->delta, &n2);
    }
}

static foolc_status bb_linf_run(foolc__run *run, const void *config)
{
    return foolc__bb_run(run, config, bb_linf_solve);
}

FOOLC__ATTACK(bb_linf, "bb-linf", FOOLC_LINF, FOOLC__GRAD, bb_linf_params, bb_linf_config,
              bb_linf_run, NULL,
              "Brendel-Bethge: walks the decision boundary towards the input (Linf)");
