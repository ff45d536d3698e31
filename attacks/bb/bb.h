/* Brendel-Bethge attacks (arXiv:1907.01003): the boundary-walking loop shared by bb-l0,
 * bb-l1, bb-l2 and bb-linf, their parameter table, their starting points, and the pieces
 * the per-norm trust-region solvers share (clipped steps along the boundary normal). */
#ifndef FOOLC_BB_H
#define FOOLC_BB_H

#include "attack_impl.h"
#include "numeric.h"

#include <stddef.h>

/* The parameters of every bb-* attack (a struct of doubles, as parameter tables need). */
typedef struct foolc__bb_config {
    double steps, lr, lr_decay, lr_num_decay, momentum, overshoot, binary_search_steps,
        init, init_tries, init_steps, patience, shrinks, rtol;
} foolc__bb_config;

/* The parameter table, with the default learning rate lr0 (per norm). */
#define FOOLC__BB_PARAMS(lr0)                                                                      \
    FOOLC__PARAM(foolc__bb_config, steps, 1000, 1, 20000, 1,                                       \
                 "largest number of boundary steps per sample"),                                   \
    FOOLC__PARAM(foolc__bb_config, lr, lr0, 1e-6, 10, 0,                                           \
                 "initial trust-region radius, relative to the current L2 distance to the input"), \
    FOOLC__PARAM(foolc__bb_config, lr_decay, 0.5, 0.01, 1, 0,                                      \
                 "factor applied to the radius lr_num_decay times over the steps"),                \
    FOOLC__PARAM(foolc__bb_config, lr_num_decay, 10, 0, 100, 1,                                    \
                 "number of radius decays, at regular intervals of steps / lr_num_decay"),         \
    FOOLC__PARAM(foolc__bb_config, momentum, 0.8, 0, 0.99, 0,                                      \
                 "averaging of the boundary normal over steps (0: the current gradient only)"),    \
    FOOLC__PARAM(foolc__bb_config, overshoot, 1.1, 1, 2, 0,                                        \
                 "aim at overshoot times the linearised distance to the boundary"),                \
    FOOLC__PARAM(foolc__bb_config, binary_search_steps, 10, 0, 50, 1,                              \
                 "bisection steps from the starting point towards the input"),                     \
    FOOLC__PARAM(foolc__bb_config, init, 3, 0, 3, 1,                                               \
                 "starting point [noise|pool|attack|best]: 0 blended uniform noise, 1 the pool "   \
                 "of "                                                                             \
                 "foolc_attack_set_starts, 2 the attack of foolc_attack_set_init (default: the "   \
                 "norm's "                                                                         \
                 "minimum-norm attack), 3 walks from both 2 and 0 and keeps the better"),          \
    FOOLC__PARAM(foolc__bb_config, init_tries, 100, 1, 1000, 1,                                    \
                 "noise draws (init 0) or closest pool images (init 1) tried per sample"),         \
    FOOLC__PARAM(foolc__bb_config, init_steps, 100, 1, 1000, 1,                                    \
                 "linear-search steps on the blend factor (init 0)"),                              \
    FOOLC__PARAM(foolc__bb_config, patience, 25, 1, 20000, 1,                                      \
                 "a sample whose best distance improved by less than rtol in this many steps "    \
                 "halves its trust-region radius"),                                                \
    FOOLC__PARAM(foolc__bb_config, shrinks, 6, 0, 50, 1,                                           \
                 "radius halvings after which a sample stops at its next stall (0: at its "        \
                 "first)"),                                                                        \
    FOOLC__PARAM(foolc__bb_config, rtol, 1e-4, 0, 0.5, 0,                                          \
                 "relative improvement that counts as progress for patience")

/* The solvers' per-coordinate loops run in blocks of FOOLC__BLOCK (lib/numeric.h) with one
 * partial sum per lane, under FOOLC__VEC (lib/numeric.h: selects, one clone per ISA; every
 * clone sums each lane in the same order without contraction, so all give the same bits). */
#define FOOLC__BB_VEC FOOLC__VEC

/* The L0 and L1 solvers bisect log tau (the price of a changed coordinate or of L1 mass)
 * until the bracket is narrower than BB_TAU_TOL (5 % in tau: 10 bisections, where 24 ran
 * before to 2e-6 with the same medians; docs/attacks-bb.md); L0's multiplier search, whose
 * function jumps across its target, stops at BB_L0_KAPPA_TOL relative (1e-4 before: 17 %
 * more evaluations, the same mean on 50 CNN and 60 MLP images), and its bisection stops
 * once a step changes no more coordinates than the greedy (foolc__bb_prob.fewest). */
#define BB_TAU_TOL 0.05
#define BB_L0_KAPPA_TOL 1e-3

/* One trust-region subproblem, in double precision: find delta minimising the attack's
 * distance from x + delta to x0 subject to b . delta = c, lo <= x + delta <= hi and
 * ||delta||_2 <= r. When the boundary cannot be reached inside the box and the trust
 * region, the solver returns the largest step towards it (foolc__bb_progress). */
typedef struct foolc__bb_prob {
    size_t d;
    const double *x;     /* current point */
    const double *u;     /* x0 - x */
    const double *b;     /* boundary normal estimate */
    double c, r, lo, hi;
    double uu;           /* |u|^2 */
    double *delta;       /* out, d */
    double *w;           /* scratch: FOOLC__BB_SCRATCH * d doubles */
    size_t fewest;       /* out, bb-l0's greedy: the fewest coordinates whose change reaches
                          * b . delta = c in the box, a lower bound on every step's count */
    void *iw;            /* scratch: 2 * d index/key pairs (foolc__bb_key) */
} foolc__bb_prob;

#define FOOLC__BB_SCRATCH 10

typedef struct foolc__bb_key {
    double key;
    int32_t i;
} foolc__bb_key;

typedef void (*foolc__bb_solve_fn)(foolc__bb_prob *p);

/* Runs a bb attack on run->todo: starting points, a bisection towards the input along the
 * norm's path, then boundary steps with solve, offering every point the logits show to be
 * adversarial. Samples without a starting point fail; their reason is recorded in the
 * run's message (FOOLC_NOT_FOUND, not an error) and the others go on. */
foolc_status foolc__bb_run(foolc__run *run, const foolc__bb_config *cfg,
                           foolc__bb_solve_fn solve);

/* delta = clip(beta * b, l, h) with b . delta = c (beta by a safeguarded Newton search on a
 * monotone piecewise-linear function): the smallest L2 step that reaches the linearised
 * boundary inside the bounds [l, h] (d each, l <= h). Returns 0 when c is out of reach;
 * *norm2 receives ||delta||^2. */
int foolc__bb_min_norm(size_t d, const double *b, const double *l, const double *h, double c,
                       double *delta, double *norm2);
/* The same, with the Newton search started from *beta_io (when finite and non-zero) and
 * the root written back: for a sequence of nearby problems. delta may be NULL (only
 * *norm2, the same value, and the root). */
int foolc__bb_min_norm_warm(size_t d, const double *b, const double *l, const double *h,
                            double c, double *beta_io, double *delta, double *norm2);
/* foolc__bb_min_norm_warm without delta, for callers that computed the range sums
 * (gmin, gmax, |b|^2, sum |b_i| (h_i - l_i), each in FOOLC__BLOCK lanes as
 * foolc__bb_dot sums) and the first Newton point's values in their own pass: first =
 * {beta0, g, slope, n2, lo, hi, nc} with g = b . clip(beta0 b, l, h), slope = sum b_i^2
 * over the unclipped, n2 = |clip|^2, beta0 = foolc__bb_beta0(c, |b|^2, beta_io), [lo, hi]
 * the linear piece of g around beta0 and nc the clipped coordinates' part of n2. A Newton
 * step well inside the piece is the root (its norm by the piece's formula); else the
 * search goes on as foolc__bb_min_norm_warm's. */
int foolc__bb_min_norm_first(size_t d, const double *b, const double *l, const double *h,
                             double c, const double sums[4], const double first[7],
                             double *beta_io, double *norm2);
double foolc__bb_beta0(double c, double bb, const double *beta_io);
/* The largest step towards the boundary: maximises sign(c) b . delta subject to the box
 * and ||delta||_2 <= r (delta = clip(t sign(c) b) for the right t >= 0). */
void foolc__bb_progress(const foolc__bb_prob *p, const double *l, const double *h);
/* sum a_i b_i, one partial sum per lane (FOOLC__BB_VEC). */
double foolc__bb_dot(size_t d, const double *a, const double *b);
/* Fills l and h with the box bounds of delta: lo - x and hi - x. */
void foolc__bb_box(const foolc__bb_prob *p, double *l, double *h);
/* The generic first stage of every solver: when the boundary cannot be reached inside the
 * box and the trust region, writes the progress step and returns 1; else returns 0 (l, h
 * hold the box bounds). */
int foolc__bb_unreachable(foolc__bb_prob *p, double *l, double *h);
/* The first stages of the L0 and L1 solvers: returns 1 when the problem is solved already,
 * by the progress step (unreachable) or by the greedy step (greedy returns its squared L2
 * norm and writes the step to p->delta only when it fits the trust region; dt is its
 * scratch, 2 d doubles) when it fits; else 0, with delta holding
 * the smallest L2 step (a feasible fallback), *bb = |b|^2 and *scale = sum |b_i| (h_i -
 * l_i) for the search over the solver's family of steps. */
typedef double (*foolc__bb_greedy_fn)(foolc__bb_prob *p, const double *l, const double *h,
                                      double *dt);   /* dt: 2 d doubles of scratch */
int foolc__bb_sparse_start(foolc__bb_prob *p, double *l, double *h, double *dt,
                           foolc__bb_greedy_fn greedy, double *bb, double *scale);
/* Solves fn(t) = c for a non-decreasing fn (which also gives its slope, 0 where unknown):
 * brackets the root from t0 with steps growing from step0, then Newton steps kept inside
 * the bracket, bisection otherwise, until |fn - c| <= tol, the bracket is narrower than
 * xtol relative to its ends (where fn jumps across c) or maxit evaluations. Returns
 * the best t; *below and *above (may be NULL) receive the bracket ends, fn <= c at the
 * first and fn >= c at the second (equal to t when it is exact). fn must be deterministic:
 * it is not evaluated twice at a point, so what it leaves in ctx is the last evaluation's,
 * which need not be at the returned t. */
typedef double (*foolc__bb_fn)(void *ctx, double t, double *slope);
double foolc__bb_root(foolc__bb_fn fn, void *ctx, double c, double t0, double step0, double tol,
                      double xtol, int maxit, double *below, double *above);
/* Sorts n keys descending by key, ties in their input order (stable); k has room for 2 n
 * keys, the second half being scratch. */
void foolc__bb_sort_desc(foolc__bb_key *k, size_t n);

/* The m largest of v[0..n) as keys {v_i, i} in k[0..m), in the order foolc__bb_sort_desc
 * gives (ties in index order; all n sorted when m >= n); returns min(m, n). k has room for
 * 2 n keys; v is not changed, so a larger m can follow. */
size_t foolc__bb_top_vals(const double *v, size_t n, size_t m, foolc__bb_key *k);

/* The coordinates an L1 or L0 step can move, in an order that makes the moving ones a
 * prefix. The walk's u = x0 - x is sparse (x0 is restored exactly on most coordinates:
 * about 15 of the CNN's 784 are not in bb-l1's steps), and a coordinate with u_i = 0 moves
 * only when |kappa b_i| exceeds a threshold of the solver's multipliers. So: first the nnz
 * coordinates with u_i != 0, then those with u_i = 0 and b_i != 0 in buckets of
 * decreasing |b_i| (half octaves; input order within a bucket), gathered (b, u, l, h).
 * The solvers evaluate their per-coordinate closed forms on a prefix (nnz plus the
 * buckets that can reach the threshold) instead of all d. */
#define FOOLC__BB_BUCKETS 256
typedef struct foolc__bb_sparse {
    size_t nnz, nc;             /* nc = nnz + the u_i = 0, b_i != 0 coordinates */
    int kmin, kmax;             /* bucket range (smaller buckets are put in kmin's) */
    size_t cum[FOOLC__BB_BUCKETS];  /* u_i = 0 coordinates in buckets kmax .. kmax - j */
    int32_t *idx;               /* nc coordinate indices */
    double *b, *u, *l, *h;      /* gathered, nc each */
    /* Gathered lazily, whole buckets at a time, as foolc__bb_sparse_count reaches them (the
     * solvers read a prefix of some 50 of the CNN's 784): positions below `built` are
     * written, bucket `next` is the first still in its list (head, then link per
     * coordinate, -1 ending each), gathered from pb, pl, ph. */
    size_t built;
    int next;
    int32_t head[FOOLC__BB_BUCKETS];
    const int32_t *link;
    const double *pb, *pl, *ph;
} foolc__bb_sparse;

/* Builds the order (the u_i != 0 coordinates gathered, the others in bucket lists) into
 * gather (4 d doubles); idx: 2 d int32 of scratch (the order in the first d, the lists'
 * links in the second). */
void foolc__bb_sparse_init(foolc__bb_sparse *s, const foolc__bb_prob *p, const double *l,
                           const double *h, double *gather, int32_t *idx);
/* The length of the prefix holding every coordinate with |b_i| >= t (and a few below:
 * those with u_i = 0 beyond it have |b_i| < 0.75 t), gathered by then. */
size_t foolc__bb_sparse_count(foolc__bb_sparse *s, double t);
/* The end of the bucket holding gathered position j (nnz for j < nnz). */
size_t foolc__bb_sparse_bucket_end(const foolc__bb_sparse *s, size_t j);
/* out (d) = 0, then the first n gathered values v put back at their coordinates. */
void foolc__bb_sparse_scatter(const foolc__bb_sparse *s, const double *v, size_t n, size_t d,
                              double *out);

#endif
