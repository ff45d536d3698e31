/* Brendel-Bethge L0 attack (arXiv:1907.01003): each step minimises the count of changed
 * coordinates s.t. b . delta = c, the box and a trust region on the moving coordinates: a
 * greedy when the region is not binding, else the Lagrangian's per-coordinate choice (reset
 * or move) with bounded multiplier searches and a one-coordinate touch-up. */
#include "bb.h"
#include "numeric.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef foolc__bb_config bb_l0_config;

static const foolc__param bb_l0_params[] = {FOOLC__BB_PARAMS(1)};

typedef struct l0_ctx {
    const foolc__bb_prob *p;
    const double *l, *h;
    double tau;      /* price of a changed coordinate, in units of the quadratic term */
    double *out;     /* delta of the last evaluation, d */
    double last;     /* kappa of the last evaluation (out holds its delta) */
} l0_ctx;

/* delta_i minimising tau [delta != u_i] + [delta != u_i] (delta - kappa b_i)^2
 * + [delta == u_i] (u_i^2 - 2 kappa b_i u_i) inside [l_i, h_i]: the trust region holds the
 * coordinates that move, not those reset to x0 (a reset is exact, not a step along the
 * linearisation, and with it counted no reset of a large change would ever fit). Into
 * out[i]; adds b_i delta_i to G and b_i^2 to S when delta_i moves freely. */
#define L0_COORD(i, G, S)                                                                          \
    do {                                                                                           \
        double v_ = kappa * b[i], u_ = u[i];                                                       \
        double mv_ = v_ <= l[i] ? l[i] : v_;                                                       \
        mv_ = mv_ >= h[i] ? h[i] : mv_;                                                            \
        double keep_ = (u_ - v_) * (u_ - v_) - u_ * u_, move_ = tau + (mv_ - v_) * (mv_ - v_);     \
        double dl_ = keep_ <= move_ ? u_ : mv_;                                                    \
        double fb_ = v_ > l[i] ? b[i] * b[i] : 0.0;                                                \
        fb_ = v_ < h[i] ? fb_ : 0.0;                                                               \
        S += keep_ <= move_ ? 0.0 : fb_;                                                           \
        G += b[i] * dl_;                                                                           \
        out[i] = dl_;                                                                              \
    } while (0)

FOOLC__BB_VEC
static double l0_block(size_t d, const double *restrict b, const double *restrict u,
                       const double *restrict l, const double *restrict h, double kappa,
                       double tau, double *restrict out, double *slope)
{
    double ga[FOOLC__BLOCK] = {0}, sa[FOOLC__BLOCK] = {0}, g = 0, s = 0;
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) L0_COORD(i + k, ga[k], sa[k]);
    for (; i < d; i++) L0_COORD(i, g, s);
    for (size_t k = 0; k < FOOLC__BLOCK; k++) {
        g += ga[k];
        s += sa[k];
    }
    *slope = s;
    return g;
}

/* b . delta(kappa) for the coordinates above (into c->out) and its slope. */
static double l0_delta(void *ctx, double kappa, double *slope)
{
    l0_ctx *c = ctx;
    const foolc__bb_prob *p = c->p;
    c->last = kappa;
    return l0_block(p->d, p->b, p->u, c->l, c->h, kappa, c->tau, c->out, slope);
}

/* Without the trust region: start at x0 (delta = u) and change the coordinates that can
 * move b . delta the most (|b_i| times their room in the box) until c is reached. Only the
 * first L0_GREEDY_TOP keys are ordered, then L0_GREEDY_TOP2, unless the greedy needs more
 * (each stage gives the same order; the small first one is far cheaper). */
#define L0_GREEDY_TOP 16
#define L0_GREEDY_TOP2 64
static double l0_greedy(const foolc__bb_prob *p, const double *l, const double *h,
                        double *dl)
{
    size_t d = p->d;
    foolc__bb_key *key = p->iw;
    double e0 = p->c, n2 = 0;
    for (size_t i = 0; i < d; i++) e0 -= p->b[i] * p->u[i];
    for (size_t i = 0; i < d; i++) {
        double b = p->b[i], room = (e0 > 0) == (b > 0) ? h[i] - p->u[i] : l[i] - p->u[i];
        key[i].key = fabs(b * room);
        key[i].i = (int32_t)i;
    }
    for (size_t top = L0_GREEDY_TOP;; top = top < L0_GREEDY_TOP2 ? L0_GREEDY_TOP2 : d) {
        size_t nk = foolc__bb_top_desc(key, d, top);
        double e = e0;
        size_t q = 0;
        memcpy(dl, p->u, d * sizeof(double));
        for (; q < nk && e != 0; q++) {
            size_t i = (size_t)key[q].i;
            double b = p->b[i];
            if (key[q].key == 0) break;
            double room = (e > 0) == (b > 0) ? h[i] - dl[i] : l[i] - dl[i];
            if (key[q].key >= fabs(e)) {
                dl[i] += e / b;
                e = 0;
            } else {
                dl[i] += room;
                e -= b * room;
            }
        }
        if (e == 0 || q < nk || nk == d) break;
        /* The top keys did not suffice: order them all (the keys are rebuilt, as the
         * partial order left the rest unspecified). */
        for (size_t i = 0; i < d; i++) {
            double b = p->b[i], room = (e0 > 0) == (b > 0) ? h[i] - p->u[i] : l[i] - p->u[i];
            key[i].key = fabs(b * room);
            key[i].i = (int32_t)i;
        }
    }
    for (size_t i = 0; i < d; i++) n2 += dl[i] != p->u[i] ? dl[i] * dl[i] : 0;
    return n2;
}

/* For every coordinate i: the squared norm m2[i] after moving dl_i alone by e / b_i onto
 * b . delta = c, and the change cost[i] in the count of changed coordinates plus one
 * (INFINITY where the move leaves [l_i, h_i], exceeds r2 or b_i is 0). */
#define TOUCH_COORD(i)                                                                             \
    do {                                                                                           \
        double nd_ = dl[i] + e / b[i], was_ = dl[i] != u[i] ? dl[i] * dl[i] : 0.0;                 \
        double now_ = nd_ != u[i] ? nd_ * nd_ : 0.0;                                               \
        double m_ = n2 - was_ + now_;                                                              \
        double c_ = (nd_ != u[i] ? 1.0 : 0.0) - (dl[i] != u[i] ? 1.0 : 0.0) + 1.0;                 \
        int ok_ = (b[i] != 0) & (nd_ >= l[i]) & (nd_ <= h[i]) & (m_ <= r2);                        \
        m2[i] = m_;                                                                                \
        cost[i] = ok_ ? c_ : INFINITY;                                                             \
    } while (0)

FOOLC__BB_VEC
static void touch_costs(size_t d, const double *restrict b, const double *restrict u,
                        const double *restrict l, const double *restrict h,
                        const double *restrict dl, double e, double n2, double r2,
                        double *restrict m2, double *restrict cost)
{
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) TOUCH_COORD(i + k);
    for (; i < d; i++) TOUCH_COORD(i);
}

/* Lands on b . delta = c by changing one coordinate, preferring one already changed (the
 * count stays) and then the smallest norm (then the lowest index); returns the resulting
 * squared norm. work: 2 d doubles. */
static double l0_touchup(const foolc__bb_prob *p, const double *l, const double *h, double *dl,
                         double r2, double *work)
{
    size_t d = p->d, bi = d;
    double bd = 0, n2 = 0, best_n2 = INFINITY, best_cost = 2, *m2 = work, *cost = work + d;
    for (size_t i = 0; i < d; i++) {
        bd += p->b[i] * dl[i];
        n2 += dl[i] != p->u[i] ? dl[i] * dl[i] : 0;
    }
    double e = p->c - bd;
    if (e == 0) return n2;
    touch_costs(d, p->b, p->u, l, h, dl, e, n2, r2, m2, cost);
    for (size_t i = 0; i < d; i++)
        if (cost[i] < best_cost || (cost[i] == best_cost && m2[i] < best_n2)) {
            best_cost = cost[i];
            best_n2 = m2[i];
            bi = i;
        }
    if (bi == d) return n2;
    dl[bi] += e / p->b[bi];
    return best_n2;
}

FOOLC__BB_VEC
static size_t count_block(size_t d, const double *restrict dl, const double *restrict u)
{
    size_t n = 0;
    for (size_t i = 0; i < d; i++) n += dl[i] != u[i];
    return n;
}

static size_t count_changed(const foolc__bb_prob *p, const double *dl)
{
    return count_block(p->d, dl, p->u);
}

static void bb_l0_solve(foolc__bb_prob *p)
{
    size_t d = p->d;
    double *l = p->w, *h = l + d, *dt = h + d, *best = dt + d, *work = best + d, bb, scale;
    if (foolc__bb_sparse_start(p, l, h, dt, l0_greedy, &bb, &scale)) return;
    /* tau -> 0 gives the smallest L2 step, large tau resets every coordinate it can:
     * bisect log tau for the most resets whose step fits the radius. */
    double r2 = p->r * p->r, width = p->hi - p->lo;
    memcpy(best, p->delta, d * sizeof(double));
    size_t best_cnt = count_changed(p, best);
    double lt = 2 * log(width) - 30, ht = 2 * log(width) + 3, kappa = bb > 0 ? p->c / bb : 0;
    double tol = 1e-9 * (fabs(p->c) + 1e-12 * scale);
    l0_ctx c = {p, l, h, 0, dt, NAN};
    for (int it = 0; it < 24 && ht - lt > BB_TAU_TOL; it++) {
        double mt = 0.5 * (lt + ht), s, kb, ka;
        c.tau = exp(mt);
        kappa = foolc__bb_root(l0_delta, &c, p->c, kappa, fabs(kappa) * 0.5 + 1e-12, tol,
                               BB_L0_KAPPA_TOL, 60, &kb, &ka);
        /* At a jump take the side that reaches c, then land on it exactly. */
        kappa = p->c >= 0 ? ka : kb;
        if (kappa != c.last) l0_delta(&c, kappa, &s);   /* out holds the last evaluation's */
        double n2 = l0_touchup(p, l, h, dt, r2, work), bd = 0;
        for (size_t i = 0; i < d; i++) bd += p->b[i] * dt[i];
        if (n2 <= r2 && fabs(bd - p->c) <= 1e-6 * (fabs(p->c) + 1e-9 * scale)) {
            lt = mt;
            size_t cnt = count_changed(p, dt);
            if (cnt <= best_cnt) {
                best_cnt = cnt;
                double *t = best;   /* dt becomes the best; the old best's room the next dt */
                best = dt;
                dt = c.out = t;
                c.last = NAN;
            }
        } else {
            ht = mt;
        }
    }
    memcpy(p->delta, best, d * sizeof(double));
}

static foolc_status bb_l0_run(foolc__run *run, const void *config)
{
    return foolc__bb_run(run, config, bb_l0_solve);
}

FOOLC__ATTACK(bb_l0, "bb-l0", FOOLC_L0, FOOLC__GRAD, bb_l0_params, bb_l0_config, bb_l0_run, NULL,
              "Brendel-Bethge: walks the decision boundary towards the input (L0)");
