/* Brendel-Bethge L1 attack (arXiv:1907.01003): each step solves min ||x + delta - x0||_1
 * s.t. b . delta = c, the box and ||delta||_2 <= r: exactly by a fractional knapsack when
 * the radius is not binding, else by the Lagrangian's per-coordinate closed form with its
 * two multipliers found by bounded one-dimensional searches (no matrices). */
#include "bb.h"
#include "numeric.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef foolc__bb_config bb_l1_config;

static const foolc__param bb_l1_params[] = {FOOLC__BB_PARAMS(1)};

typedef struct l1_ctx {
    foolc__bb_sparse *s;
    double tau;      /* L1 weight relative to the quadratic term: 2 / (2 mu) */
    double *out;     /* gathered delta of the last evaluation: its first n entries */
    size_t n;
    double last;     /* kappa of the last evaluation (out holds its delta) */
    double g, n2;    /* its b . delta and |delta|^2 */
} l1_ctx;

/* delta_i minimising (delta - kappa b_i)^2 + tau |delta - u_i| inside [l_i, h_i] into
 * out[i]; adds b_i . delta_i to G, delta_i^2 to N and, when delta_i moves freely (inside
 * its bounds), b_i^2 to S. A macro, so the vectorised function below gets it inlined. */
#define L1_COORD(i, G, S, N)                                                                       \
    do {                                                                                           \
        double v_ = kappa * b[i], vl_ = u[i] - ht, vh_ = u[i] + ht;                                \
        double dl_ = v_ < vl_ ? v_ + ht : u[i];                                                    \
        dl_ = v_ > vh_ ? v_ - ht : dl_;                                                            \
        int mv_ = ((v_ < vl_) | (v_ > vh_)) & (dl_ > l[i]) & (dl_ < h[i]);                         \
        dl_ = dl_ < l[i] ? l[i] : dl_;                                                             \
        dl_ = dl_ > h[i] ? h[i] : dl_;                                                             \
        out[i] = dl_;                                                                              \
        G += b[i] * dl_;                                                                           \
        N += dl_ * dl_;                                                                            \
        S += mv_ ? b[i] * b[i] : 0.0;                                                              \
    } while (0)

FOOLC__BB_VEC
static double l1_block(size_t d, const double *restrict b, const double *restrict u,
                       const double *restrict l, const double *restrict h, double kappa,
                       double ht, double *restrict out, double *slope, double *norm2)
{
    double ga[FOOLC__BLOCK] = {0}, sa[FOOLC__BLOCK] = {0}, na[FOOLC__BLOCK] = {0}, g = 0, s = 0,
           n = 0;
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) L1_COORD(i + k, ga[k], sa[k], na[k]);
    for (; i < d; i++) L1_COORD(i, g, s, n);
    for (size_t k = 0; k < FOOLC__BLOCK; k++) {
        g += ga[k];
        s += sa[k];
        n += na[k];
    }
    *slope = s;
    *norm2 = n;
    return g;
}

/* b . delta(kappa) for the coordinates above (into c->out) and its slope, on the prefix of
 * the sparse order that can move: a coordinate with u_i = 0 stays at 0 while
 * |kappa b_i| <= tau / 2. */
static double l1_delta(void *ctx, double kappa, double *slope)
{
    l1_ctx *c = ctx;
    foolc__bb_sparse *s = c->s;
    double ht = 0.5 * c->tau;
    c->last = kappa;
    c->n = foolc__bb_sparse_count(s, ht / fabs(kappa));
    c->g = l1_block(c->n, s->b, s->u, s->l, s->h, kappa, ht, c->out, slope, &c->n2);
    return c->g;
}

/* Without the trust region the problem is a fractional knapsack: start at x0 (delta = u)
 * and cover the missing b . delta with the coordinates of largest |b_i| first. Only the
 * first L1_GREEDY_TOP keys are ordered, then L1_GREEDY_TOP2, unless the greedy needs more
 * (on the reference CNN it needs at most 16 keys in 95 % of the steps; keeping the top 16
 * costs a tenth of keeping the top 64, and every stage gives the same order). */
#define L1_GREEDY_TOP 16
#define L1_GREEDY_TOP2 64
FOOLC__BB_VEC
static void abs_block(size_t d, const double *restrict b, double *restrict a)
{
    for (size_t i = 0; i < d; i++) a[i] = fabs(b[i]);
}

static double l1_greedy(foolc__bb_prob *p, const double *l, const double *h,
                        double *mv)
{
    size_t d = p->d, nm = 0;
    foolc__bb_key *key = p->iw;
    double e0 = p->c - foolc__bb_dot(d, p->b, p->u), n2 = p->uu, *kv = mv + d;
    abs_block(d, p->b, kv);
    for (size_t top = L1_GREEDY_TOP;; top = top < L1_GREEDY_TOP2 ? L1_GREEDY_TOP2 : d) {
        size_t nk = foolc__bb_top_vals(kv, d, top, key), q = 0;
        double e = e0;
        /* The moved coordinates' new values into mv (key q's coordinate), the others stay
         * at u_i; the norm from |u|^2. */
        n2 = p->uu;
        for (; q < nk && e != 0; q++) {
            size_t i = (size_t)key[q].i;
            double b = p->b[i], u = p->u[i];
            if (b == 0) break;
            double room = (e > 0) == (b > 0) ? h[i] - u : l[i] - u;
            double gain = b * room;
            if (fabs(gain) >= fabs(e)) {
                mv[q] = u + e / b;
                e = 0;
            } else {
                mv[q] = u + room;
                e -= gain;
            }
            n2 += mv[q] * mv[q] - u * u;
        }
        nm = q;
        if (e == 0 || q < nk || nk == d) break;
    }
    if (n2 <= p->r * p->r) {   /* the step is used: write it */
        memcpy(p->delta, p->u, d * sizeof(double));
        for (size_t q = 0; q < nm; q++) p->delta[key[q].i] = mv[q];
    }
    return n2;
}

static void bb_l1_solve(foolc__bb_prob *p)
{
    size_t d = p->d;
    double *l = p->w, *h = l + d, *dt = h + d, *gather = dt + d, *best = gather + 4 * d, bb,
           scale;
    /* dt and the first row of gather are the greedy's scratch */
    if (foolc__bb_sparse_start(p, l, h, dt, l1_greedy, &bb, &scale)) return;
    foolc__bb_sparse sp;
    foolc__bb_sparse_init(&sp, p, l, h, gather, p->iw);
    /* tau -> 0 gives the smallest L2 step (feasible, in p->delta), tau -> inf the greedy
     * one (not): bisect log tau for the largest tau whose step fits the radius. */
    double r2 = p->r * p->r, width = p->hi - p->lo;
    double lt = log(4 * width) - 30, ht = log(4 * width) + 2, kappa = bb > 0 ? p->c / bb : 0;
    double tol = 1e-9 * (fabs(p->c) + 1e-12 * scale);
    size_t best_n = 0;
    int found = 0;
    l1_ctx c = {&sp, 0, dt, 0, NAN, 0, 0};
    for (int it = 0; it < 24 && ht - lt > BB_TAU_TOL; it++) {
        double mt = 0.5 * (lt + ht), s;
        c.tau = exp(mt);
        kappa = foolc__bb_root(l1_delta, &c, p->c, kappa, fabs(kappa) * 0.5 + 1e-12, tol, 1e-9,
                               60, NULL, NULL);
        if (kappa != c.last) l1_delta(&c, kappa, &s);   /* the root's last evaluation */
        if (c.n2 <= r2 && fabs(c.g - p->c) <= 1e-6 * (fabs(p->c) + 1e-9 * scale)) {
            lt = mt;
            double *t = best;   /* out becomes the best; the old best's room the next out */
            best = c.out;
            c.out = t;
            best_n = c.n;
            found = 1;
            c.last = NAN;
        } else {
            ht = mt;
        }
    }
    if (found) foolc__bb_sparse_scatter(&sp, best, best_n, d, p->delta);
}

static foolc_status bb_l1_run(foolc__run *run, const void *config)
{
    return foolc__bb_run(run, config, bb_l1_solve);
}

FOOLC__ATTACK(bb_l1, "bb-l1", FOOLC_L1, FOOLC__GRAD, bb_l1_params, bb_l1_config, bb_l1_run, NULL,
              "Brendel-Bethge: walks the decision boundary towards the input (L1)");
