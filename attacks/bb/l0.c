/* Brendel-Bethge L0 attack (arXiv:1907.01003): each step minimises the count of changed
 * coordinates s.t. b . delta = c, the box and a trust region on the moving coordinates: a
 * greedy when the region is not binding, else the Lagrangian's per-coordinate choice (reset
 * or move) with bounded multiplier searches and a one-coordinate touch-up. */
#include "bb.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef foolc__bb_config bb_l0_config;

static const foolc__param bb_l0_params[] = {FOOLC__BB_PARAMS(1)};

typedef struct l0_ctx {
    const foolc__bb_prob *p;
    const double *l, *h;
    double tau;      /* price of a changed coordinate, in units of the quadratic term */
    double *out;
} l0_ctx;

/* delta_i minimising tau [delta != u_i] + [delta != u_i] (delta - kappa b_i)^2
 * + [delta == u_i] (u_i^2 - 2 kappa b_i u_i) inside [l_i, h_i]: the trust region holds the
 * coordinates that move, not those reset to x0 (a reset is exact, not a step along the
 * linearisation, and with it counted no reset of a large change would ever fit). */
static double l0_delta(void *ctx, double kappa, double *slope)
{
    l0_ctx *c = ctx;
    const foolc__bb_prob *p = c->p;
    double g = 0, s = 0;
    for (size_t i = 0; i < p->d; i++) {
        double v = kappa * p->b[i], u = p->u[i], mv = v, dl;
        int free = 1;
        if (mv <= c->l[i]) { mv = c->l[i]; free = 0; }
        else if (mv >= c->h[i]) { mv = c->h[i]; free = 0; }
        if ((u - v) * (u - v) - u * u <= c->tau + (mv - v) * (mv - v)) {
            dl = u;
        } else {
            dl = mv;
            if (free) s += p->b[i] * p->b[i];
        }
        g += p->b[i] * dl;
        if (c->out) c->out[i] = dl;
    }
    *slope = s;
    return g;
}

/* Without the trust region: start at x0 (delta = u) and change the coordinates that can
 * move b . delta the most (|b_i| times their room in the box) until c is reached. */
static double l0_greedy(const foolc__bb_prob *p, const double *l, const double *h,
                        double *dl)
{
    size_t d = p->d;
    foolc__bb_key *key = p->iw;
    double e = p->c, n2 = 0;
    for (size_t i = 0; i < d; i++) {
        dl[i] = p->u[i];
        e -= p->b[i] * dl[i];
    }
    for (size_t i = 0; i < d; i++) {
        double b = p->b[i], room = (e > 0) == (b > 0) ? h[i] - dl[i] : l[i] - dl[i];
        key[i].key = fabs(b * room);
        key[i].i = (int32_t)i;
    }
    foolc__bb_sort_desc(key, d);
    for (size_t q = 0; q < d && e != 0; q++) {
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
    for (size_t i = 0; i < d; i++) n2 += dl[i] != p->u[i] ? dl[i] * dl[i] : 0;
    return n2;
}

/* Lands on b . delta = c by changing one coordinate, preferring one already changed (the
 * count stays) and then the smallest norm; returns the resulting squared norm. */
static double l0_touchup(const foolc__bb_prob *p, const double *l, const double *h, double *dl,
                         double r2)
{
    size_t d = p->d, bi = d;
    double bd = 0, n2 = 0, best_n2 = INFINITY;
    int best_cost = 2;
    for (size_t i = 0; i < d; i++) {
        bd += p->b[i] * dl[i];
        n2 += dl[i] != p->u[i] ? dl[i] * dl[i] : 0;
    }
    double e = p->c - bd;
    if (e == 0) return n2;
    for (size_t i = 0; i < d; i++) {
        if (p->b[i] == 0) continue;
        double nd = dl[i] + e / p->b[i];
        if (nd < l[i] || nd > h[i]) continue;
        double m2 = n2 - (dl[i] != p->u[i] ? dl[i] * dl[i] : 0) + (nd != p->u[i] ? nd * nd : 0);
        if (m2 > r2) continue;
        int cost = (nd != p->u[i]) - (dl[i] != p->u[i]) + 1;
        if (cost < best_cost || (cost == best_cost && m2 < best_n2)) {
            best_cost = cost;
            best_n2 = m2;
            bi = i;
        }
    }
    if (bi == d) return n2;
    dl[bi] += e / p->b[bi];
    return best_n2;
}

static size_t count_changed(const foolc__bb_prob *p, const double *dl)
{
    size_t n = 0;
    for (size_t i = 0; i < p->d; i++) n += dl[i] != p->u[i];
    return n;
}

static void bb_l0_solve(foolc__bb_prob *p)
{
    size_t d = p->d;
    double *l = p->w, *h = l + d, *dt = h + d, *best = dt + d, bb, scale;
    if (foolc__bb_sparse_start(p, l, h, dt, l0_greedy, &bb, &scale)) return;
    /* tau -> 0 gives the smallest L2 step, large tau resets every coordinate it can:
     * bisect log tau for the most resets whose step fits the radius. */
    double r2 = p->r * p->r, width = p->hi - p->lo;
    memcpy(best, p->delta, d * sizeof(double));
    size_t best_cnt = count_changed(p, best);
    double lt = 2 * log(width) - 30, ht = 2 * log(width) + 3, kappa = bb > 0 ? p->c / bb : 0;
    double tol = 1e-9 * (fabs(p->c) + 1e-12 * scale);
    l0_ctx c = {p, l, h, 0, NULL};
    for (int it = 0; it < 24; it++) {
        double mt = 0.5 * (lt + ht), s, kb, ka;
        c.tau = exp(mt);
        c.out = NULL;
        kappa = foolc__bb_root(l0_delta, &c, p->c, kappa, fabs(kappa) * 0.5 + 1e-12, tol, 60,
                               &kb, &ka);
        /* At a jump take the side that reaches c, then land on it exactly. */
        kappa = p->c >= 0 ? ka : kb;
        c.out = dt;
        l0_delta(&c, kappa, &s);
        double n2 = l0_touchup(p, l, h, dt, r2), bd = 0;
        for (size_t i = 0; i < d; i++) bd += p->b[i] * dt[i];
        if (n2 <= r2 && fabs(bd - p->c) <= 1e-6 * (fabs(p->c) + 1e-9 * scale)) {
            lt = mt;
            size_t cnt = count_changed(p, dt);
            if (cnt <= best_cnt) {
                best_cnt = cnt;
                memcpy(best, dt, d * sizeof(double));
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
