/* Brendel-Bethge L1 attack (arXiv:1907.01003): each step solves min ||x + delta - x0||_1
 * s.t. b . delta = c, the box and ||delta||_2 <= r: exactly by a fractional knapsack when
 * the radius is not binding, else by the Lagrangian's per-coordinate closed form with its
 * two multipliers found by bounded one-dimensional searches (no matrices). */
#include "bb.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef foolc__bb_config bb_l1_config;

static const foolc__param bb_l1_params[] = {FOOLC__BB_PARAMS(1)};

typedef struct l1_ctx {
    const foolc__bb_prob *p;
    const double *l, *h;
    double tau;      /* L1 weight relative to the quadratic term: 2 / (2 mu) */
    double *out;
} l1_ctx;

/* delta_i minimising (delta - kappa b_i)^2 + tau |delta - u_i| inside [l_i, h_i]. */
static double l1_delta(void *ctx, double kappa, double *slope)
{
    l1_ctx *c = ctx;
    const foolc__bb_prob *p = c->p;
    double g = 0, s = 0, ht = 0.5 * c->tau;
    for (size_t i = 0; i < p->d; i++) {
        double v = kappa * p->b[i], u = p->u[i], dl;
        int moving = 1;
        if (v < u - ht) dl = v + ht;
        else if (v > u + ht) dl = v - ht;
        else { dl = u; moving = 0; }
        if (dl <= c->l[i]) { dl = c->l[i]; moving = 0; }
        else if (dl >= c->h[i]) { dl = c->h[i]; moving = 0; }
        if (moving) s += p->b[i] * p->b[i];
        g += p->b[i] * dl;
        if (c->out) c->out[i] = dl;
    }
    *slope = s;
    return g;
}

/* Without the trust region the problem is a fractional knapsack: start at x0 (delta = u)
 * and cover the missing b . delta with the coordinates of largest |b_i| first. */
static double l1_greedy(const foolc__bb_prob *p, const double *l, const double *h,
                        double *dl)
{
    size_t d = p->d;
    foolc__bb_key *key = p->iw;
    double e = p->c, n2 = 0;
    for (size_t i = 0; i < d; i++) {
        dl[i] = p->u[i];
        e -= p->b[i] * dl[i];
        key[i].key = fabs(p->b[i]);
        key[i].i = (int32_t)i;
    }
    foolc__bb_sort_desc(key, d);
    for (size_t q = 0; q < d && e != 0; q++) {
        size_t i = (size_t)key[q].i;
        double b = p->b[i];
        if (b == 0) break;
        double room = (e > 0) == (b > 0) ? h[i] - dl[i] : l[i] - dl[i];
        double gain = b * room;
        if (fabs(gain) >= fabs(e)) {
            dl[i] += e / b;
            e = 0;
        } else {
            dl[i] += room;
            e -= gain;
        }
    }
    for (size_t i = 0; i < d; i++) n2 += dl[i] * dl[i];
    return n2;
}

static void bb_l1_solve(foolc__bb_prob *p)
{
    size_t d = p->d;
    double *l = p->w, *h = l + d, *dt = h + d, *best = dt + d, bb, scale;
    if (foolc__bb_sparse_start(p, l, h, dt, l1_greedy, &bb, &scale)) return;
    /* tau -> 0 gives the smallest L2 step (feasible), tau -> inf the greedy one (not):
     * bisect log tau for the largest tau whose step fits the radius. */
    double r2 = p->r * p->r, width = p->hi - p->lo;
    memcpy(best, p->delta, d * sizeof(double));
    double lt = log(4 * width) - 30, ht = log(4 * width) + 2, kappa = bb > 0 ? p->c / bb : 0;
    double tol = 1e-9 * (fabs(p->c) + 1e-12 * scale);
    l1_ctx c = {p, l, h, 0, NULL};
    for (int it = 0; it < 24; it++) {
        double mt = 0.5 * (lt + ht), s;
        c.tau = exp(mt);
        c.out = NULL;
        kappa = foolc__bb_root(l1_delta, &c, p->c, kappa, fabs(kappa) * 0.5 + 1e-12, tol, 60,
                               NULL, NULL);
        c.out = dt;
        l1_delta(&c, kappa, &s);
        double n2 = 0, bd = 0;
        for (size_t i = 0; i < d; i++) {
            n2 += dt[i] * dt[i];
            bd += p->b[i] * dt[i];
        }
        if (n2 <= r2 && fabs(bd - p->c) <= 1e-6 * (fabs(p->c) + 1e-9 * scale)) {
            lt = mt;
            memcpy(best, dt, d * sizeof(double));
        } else {
            ht = mt;
        }
    }
    memcpy(p->delta, best, d * sizeof(double));
}

static foolc_status bb_l1_run(foolc__run *run, const void *config)
{
    return foolc__bb_run(run, config, bb_l1_solve);
}

FOOLC__ATTACK(bb_l1, "bb-l1", FOOLC_L1, FOOLC__GRAD, bb_l1_params, bb_l1_config, bb_l1_run, NULL,
              "Brendel-Bethge: walks the decision boundary towards the input (L1)");
