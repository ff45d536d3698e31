/* Brendel-Bethge L0 attack (arXiv:1907.01003): each step minimises the count of changed
 * coordinates s.t. b . delta = c, the box and a trust region on the moving coordinates: a
 * greedy when the region is not binding, else the Lagrangian's per-coordinate choice (reset
 * or move) with bounded multiplier searches and a one-coordinate touch-up. */
#include "bb.h"
#include "numeric.h"

#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

typedef foolc__bb_config bb_l0_config;

static const foolc__param bb_l0_params[] = {FOOLC__BB_PARAMS(1)};

typedef struct l0_ctx {
    foolc__bb_sparse *s;
    double tau;      /* price of a changed coordinate, in units of the quadratic term */
    double *out;     /* gathered delta of the last evaluation: its first n entries */
    size_t n;
    double last;     /* kappa of the last evaluation (out holds its delta) */
    double g, n2;    /* its b . delta and the squared norm of its changed coordinates */
} l0_ctx;

/* delta_i minimising tau [delta != u_i] + [delta != u_i] (delta - kappa b_i)^2
 * + [delta == u_i] (u_i^2 - 2 kappa b_i u_i) inside [l_i, h_i]: the trust region holds the
 * coordinates that move, not those reset to x0 (a reset is exact, not a step along the
 * linearisation, and with it counted no reset of a large change would ever fit). Into
 * out[i]; adds b_i delta_i to G, delta_i^2 to N when it changes and b_i^2 to S when
 * delta_i moves freely. */
#define L0_COORD(i, G, S, N)                                                                       \
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
        N += dl_ != u_ ? dl_ * dl_ : 0.0;                                                          \
        out[i] = dl_;                                                                              \
    } while (0)

FOOLC__BB_VEC
static double l0_block(size_t d, const double *restrict b, const double *restrict u,
                       const double *restrict l, const double *restrict h, double kappa,
                       double tau, double *restrict out, double *slope, double *norm2)
{
    double ga[FOOLC__BLOCK] = {0}, sa[FOOLC__BLOCK] = {0}, na[FOOLC__BLOCK] = {0}, g = 0, s = 0,
           n = 0;
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) L0_COORD(i + k, ga[k], sa[k], na[k]);
    for (; i < d; i++) L0_COORD(i, g, s, n);
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
 * the sparse order that can change: a coordinate with u_i = 0 is kept while
 * (kappa b_i)^2 <= tau. */
static double l0_delta(void *ctx, double kappa, double *slope)
{
    l0_ctx *c = ctx;
    foolc__bb_sparse *s = c->s;
    c->last = kappa;
    c->n = foolc__bb_sparse_count(s, sqrt(c->tau) / fabs(kappa));
    c->g = l0_block(c->n, s->b, s->u, s->l, s->h, kappa, c->tau, c->out, slope, &c->n2);
    return c->g;
}

/* The greedy's keys |b_i| times the room of coordinate i in the direction that helps. */
#define KEY_COORD(i)                                                                               \
    do {                                                                                           \
        double hr_ = h[i] - u[i], lr_ = l[i] - u[i];                                               \
        double ru_ = b[i] > 0 ? hr_ : lr_, rd_ = b[i] > 0 ? lr_ : hr_;                             \
        double room_ = up ? ru_ : rd_;                                                             \
        kv[i] = fabs(b[i] * room_);                                                                \
    } while (0)

FOOLC__BB_VEC
static void greedy_keys(size_t d, const double *restrict b, const double *restrict u,
                        const double *restrict l, const double *restrict h, int up,
                        double *restrict kv)
{
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) KEY_COORD(i + k);
    for (; i < d; i++) KEY_COORD(i);
}

/* Without the trust region: start at x0 (delta = u) and change the coordinates that can
 * move b . delta the most (|b_i| times their room in the box) until c is reached. Only the
 * first L0_GREEDY_TOP keys are ordered, then L0_GREEDY_TOP2, unless the greedy needs more
 * (each stage gives the same order; the small first one is far cheaper). */
#define L0_GREEDY_TOP 16
#define L0_GREEDY_TOP2 64
static double l0_greedy(foolc__bb_prob *p, const double *l, const double *h,
                        double *mv)
{
    size_t d = p->d, nm = 0;
    foolc__bb_key *key = p->iw;
    double e0 = p->c - foolc__bb_dot(d, p->b, p->u), n2 = 0;
    double *kv = mv + d;
    greedy_keys(d, p->b, p->u, l, h, e0 > 0, kv);
    for (size_t top = L0_GREEDY_TOP;; top = top < L0_GREEDY_TOP2 ? L0_GREEDY_TOP2 : d) {
        size_t nk = foolc__bb_top_vals(kv, d, top, key);
        double e = e0;
        size_t q = 0;
        /* The moved coordinates' new values into mv (key q's coordinate), the others stay
         * at u_i (unchanged: no part of the norm). */
        n2 = 0;
        for (; q < nk && e != 0; q++) {
            size_t i = (size_t)key[q].i;
            double b = p->b[i], u = p->u[i];
            if (key[q].key == 0) break;
            double room = (e > 0) == (b > 0) ? h[i] - u : l[i] - u;
            if (key[q].key >= fabs(e)) {
                mv[q] = u + e / b;
                e = 0;
            } else {
                mv[q] = u + room;
                e -= b * room;
            }
            n2 += mv[q] != u ? mv[q] * mv[q] : 0.0;
        }
        nm = q;
        if (e == 0 || q < nk || nk == d) break;
    }
    p->fewest = nm;   /* the fewest for any step: the largest changes taken first */
    if (n2 <= p->r * p->r) {   /* the step is used: write it */
        memcpy(p->delta, p->u, d * sizeof(double));
        for (size_t q = 0; q < nm; q++) p->delta[key[q].i] = mv[q];
    }
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

/* Lands on b . delta = c by changing one coordinate of the last evaluation (c->out),
 * preferring one already changed (the count stays) and then the smallest norm (then the
 * lowest index); returns the resulting squared norm. The coordinates past the evaluated
 * prefix are at u_i = 0 and cost a change: they are tried (largest |b_i| first: the
 * smallest move) only when no cheaper one fits. work: 2 d doubles. */
static double l0_touchup(l0_ctx *c, double target, double r2, double *work)
{
    foolc__bb_sparse *s = c->s;
    size_t n = c->n, bi = SIZE_MAX;
    double e = target - c->g, n2 = c->n2, best_n2 = INFINITY, best_cost = 2;
    double *m2 = work, *cost = work + s->nc;
    if (e == 0) return n2;
    touch_costs(n, s->b, s->u, s->l, s->h, c->out, e, n2, r2, m2, cost);
    int32_t bidx = INT32_MAX;
    for (size_t j = 0; j < n; j++)
        if (cost[j] < best_cost ||
            (cost[j] == best_cost &&
             (m2[j] < best_n2 || (m2[j] == best_n2 && s->idx[j] < bidx)))) {
            best_cost = cost[j];
            best_n2 = m2[j];
            bi = j;
            bidx = s->idx[j];
        }
    /* The tail is in buckets of decreasing |b_i|, so the move grows from one bucket to the
     * next: the search ends with the first bucket that holds a candidate. */
    size_t end = s->nc;
    int got = 0;
    /* A move of e / b_j fits the radius only where |b_j| >= |e| / sqrt(r2 - n2). */
    if (best_cost >= 2 && end > n)
        end = r2 > n2 ? foolc__bb_sparse_count(s, fabs(e) / sqrt(r2 - n2)) : n;
    if (best_cost >= 2)
        for (size_t j = n; j < end; j++) {
            double nd = e / s->b[j], m = n2 + (nd != 0 ? nd * nd : 0.0);
            if (!(nd >= s->l[j] && nd <= s->h[j] && m <= r2)) continue;
            double cj = nd != 0 ? 2 : 1;
            if (cj < best_cost ||
                (cj == best_cost && (m < best_n2 || (m == best_n2 && s->idx[j] < bidx)))) {
                best_cost = cj;
                best_n2 = m;
                bi = j;
                bidx = s->idx[j];
                if (!got) {
                    size_t be = foolc__bb_sparse_bucket_end(s, j);
                    end = be < end ? be : end;
                    got = 1;
                }
            }
        }
    if (bi == SIZE_MAX) return n2;
    if (bi >= n) {
        for (size_t j = n; j < bi; j++) c->out[j] = 0;
        c->out[bi] = 0;
        c->n = bi + 1;
    }
    c->out[bi] += e / s->b[bi];
    return best_n2;
}

FOOLC__BB_VEC
static size_t count_block(size_t d, const double *restrict dl, const double *restrict u)
{
    size_t n = 0;
    for (size_t i = 0; i < d; i++) n += dl[i] != u[i];
    return n;
}

static void bb_l0_solve(foolc__bb_prob *p)
{
    size_t d = p->d;
    double *l = p->w, *h = l + d, *dt = h + d, *gather = dt + d, *best = gather + 4 * d,
           *work = best + d, bb, scale;
    /* dt and the first row of gather are the greedy's scratch */
    if (foolc__bb_sparse_start(p, l, h, dt, l0_greedy, &bb, &scale)) return;
    foolc__bb_sparse sp;
    foolc__bb_sparse_init(&sp, p, l, h, gather, p->iw);
    /* tau -> 0 gives the smallest L2 step (in p->delta), large tau resets every coordinate
     * it can: bisect log tau for the most resets whose step fits the radius. */
    double r2 = p->r * p->r, width = p->hi - p->lo;
    size_t best_cnt = count_block(d, p->delta, p->u), best_n = 0;
    int found = 0;
    double lt = 2 * log(width) - 30, ht = 2 * log(width) + 3, kappa = bb > 0 ? p->c / bb : 0;
    double tol = 1e-9 * (fabs(p->c) + 1e-12 * scale);
    l0_ctx c = {&sp, 0, dt, 0, NAN, 0, 0};
    for (int it = 0; it < 24 && ht - lt > BB_TAU_TOL; it++) {
        double mt = 0.5 * (lt + ht), s, kb, ka;
        c.tau = exp(mt);
        kappa = foolc__bb_root(l0_delta, &c, p->c, kappa, fabs(kappa) * 0.5 + 1e-12, tol,
                               BB_L0_KAPPA_TOL, 60, &kb, &ka);
        /* At a jump take the side that reaches c, then land on it exactly. */
        kappa = p->c >= 0 ? ka : kb;
        if (kappa != c.last) l0_delta(&c, kappa, &s);   /* out holds the last evaluation's */
        double n2 = l0_touchup(&c, p->c, r2, work), bd = 0;
        for (size_t j = 0; j < c.n; j++) bd += sp.b[j] * c.out[j];
        if (n2 <= r2 && fabs(bd - p->c) <= 1e-6 * (fabs(p->c) + 1e-9 * scale)) {
            lt = mt;
            size_t cnt = count_block(c.n, c.out, sp.u);
            if (cnt <= best_cnt) {
                best_cnt = cnt;
                double *t = best;   /* out becomes the best; the old best's room the next out */
                best = c.out;
                c.out = t;
                best_n = c.n;
                found = 1;
                if (cnt <= p->fewest) break;   /* no step changes fewer */
            }
        } else {
            ht = mt;
        }
        c.last = NAN;   /* the touch-up changed out */
    }
    if (found) foolc__bb_sparse_scatter(&sp, best, best_n, d, p->delta);
}

static foolc_status bb_l0_run(foolc__run *run, const void *config)
{
    return foolc__bb_run(run, config, bb_l0_solve);
}

FOOLC__ATTACK(bb_l0, "bb-l0", FOOLC_L0, FOOLC__GRAD, bb_l0_params, bb_l0_config, bb_l0_run, NULL,
              "Brendel-Bethge: walks the decision boundary towards the input (L0)");
