/* Brendel-Bethge Linf attack (arXiv:1907.01003): each boundary step finds the smallest eps
 * such that the linearised boundary b . delta = c can be reached inside the cube of
 * radius eps around the input, the box [lo, hi] and the L2 trust region (two bounded
 * bisections on eps, each test a smallest-L2 step inside the bounds). */
#include "bb.h"

#include <math.h>
#include <stddef.h>

typedef foolc__bb_config bb_linf_config;

static const foolc__param bb_linf_params[] = {FOOLC__BB_PARAMS(1)};

/* Bounds of delta inside the box and the eps-cube around x0 (never empty: x0 is in both). */
static void cube(const foolc__bb_prob *p, double eps, double *l, double *h)
{
    for (size_t i = 0; i < p->d; i++) {
        double a = p->lo - p->x[i], b = p->u[i] - eps;
        double c = p->hi - p->x[i], e = p->u[i] + eps;
        l[i] = a > b ? a : b;
        h[i] = c < e ? c : e;
        if (l[i] > h[i]) l[i] = h[i] = p->u[i];
    }
}

/* Whether b . delta = c is within reach of the bounds. */
static int reach(const foolc__bb_prob *p, const double *l, const double *h)
{
    double gmin = 0, gmax = 0, scale = 0;
    for (size_t i = 0; i < p->d; i++) {
        double b = p->b[i];
        gmin += b * (b > 0 ? l[i] : h[i]);
        gmax += b * (b > 0 ? h[i] : l[i]);
        scale += fabs(b) * (h[i] - l[i]);
    }
    double tol = 1e-12 * (fabs(p->c) + scale);
    return p->c <= gmax + tol && p->c >= gmin - tol;
}

static void bb_linf_solve(foolc__bb_prob *p)
{
    size_t d = p->d;
    double *l = p->w, *h = l + d, *dt = h + d, n2;
    if (foolc__bb_unreachable(p, l, h)) return;
    /* Smallest eps at which the boundary is reachable at all (ignoring the radius). */
    double width = p->hi - p->lo, el = 0, eh = width;
    for (int it = 0; it < 60 && eh - el > 1e-12 * width; it++) {
        double e = 0.5 * (el + eh);
        cube(p, e, l, h);
        if (reach(p, l, h)) eh = e; else el = e;
    }
    cube(p, eh, l, h);
    if (foolc__bb_min_norm(d, p->b, l, h, p->c, dt, &n2) && n2 <= p->r * p->r) {
        for (size_t i = 0; i < d; i++) p->delta[i] = dt[i];
        return;
    }
    /* Otherwise the smallest eps whose smallest step also fits the trust region; eps =
     * width is feasible (the box check above), p->delta holds its step. */
    el = eh;
    eh = width;
    for (int it = 0; it < 50 && eh - el > 1e-9 * width; it++) {
        double e = 0.5 * (el + eh);
        cube(p, e, l, h);
        if (foolc__bb_min_norm(d, p->b, l, h, p->c, dt, &n2) && n2 <= p->r * p->r) {
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

const foolc__attack_vt foolc__attack_bb_linf = {
    .name = "bb-linf",
    .summary = "Brendel-Bethge: walks the decision boundary towards the input (Linf)",
    .norm = FOOLC_LINF,
    .needs = FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES,
    .params = bb_linf_params,
    .n_params = sizeof bb_linf_params / sizeof bb_linf_params[0],
    .config_size = sizeof(bb_linf_config),
    .run = bb_linf_run,
};
