/* Distances by norm (dispatching to the modules in distances/) and exact Euclidean
 * projections onto an L1, L2 or Linf ball around x0 intersected with the box [lo, hi]. */
#include "attack_impl.h"

#include <math.h>
#include <strings.h>

#define X(name, norm) extern const foolc__distance_vt foolc__distance_##name;
#include "../distances/list.h"
#undef X

static const foolc__distance_vt *const k_distances[] = {
#define X(name, norm) [norm] = &foolc__distance_##name,
#include "../distances/list.h"
#undef X
};

const foolc__distance_vt *foolc__distance_get(foolc_norm p)
{
    if ((int)p < 0 || p >= FOOLC_NORM_COUNT) return NULL;
    return k_distances[p];
}

const char *foolc_norm_name(foolc_norm p)
{
    const foolc__distance_vt *vt = foolc__distance_get(p);
    return vt ? vt->name : NULL;
}

foolc_status foolc_norm_parse(const char *name, foolc_norm *out)
{
    if (!name || !out) return foolc__error(FOOLC_E_INVALID, "norm: NULL argument");
    if (!strcasecmp(name, "inf") || !strcasecmp(name, "l-inf") || !strcasecmp(name, "linfinity")) {
        *out = FOOLC_LINF;
        return FOOLC_OK;
    }
    for (int i = 0; i < FOOLC_NORM_COUNT; i++)
        if (!strcasecmp(name, k_distances[i]->name)) {
            *out = (foolc_norm)i;
            return FOOLC_OK;
        }
    return foolc__error(FOOLC_E_INVALID, "norm: unknown name '%s' (l0, l1, l2, linf, mse)", name);
}

double foolc_distance(foolc_norm p, const float *x0, const float *x, size_t len)
{
    const foolc__distance_vt *vt = foolc__distance_get(p);
    if (!vt || (len && (!x0 || !x))) return NAN;
    return vt->eval(x0, x, len);
}

static double clampd(double v, double a, double b) { return v < a ? a : v > b ? b : v; }

/* Coordinate i of the L2 solution for scale t: clip(t*delta, a, b). */
static double l2_norm2_at(const float *x0, const float *v, size_t len, float lo, float hi,
                          double t)
{
    double s = 0;
    for (size_t i = 0; i < len; i++) {
        double e = clampd(t * ((double)v[i] - x0[i]), (double)lo - x0[i], (double)hi - x0[i]);
        s += e * e;
    }
    return s;
}

/* The scale t in (0, 1] at which ||clip(t*delta, a, b)||_2 = eps: bisection to bracket the
 * active set, then the closed form on that set. */
static double l2_scale(const float *x0, const float *v, size_t len, float lo, float hi,
                       double eps)
{
    double tl = 0, th = 1, e2 = eps * eps;
    for (int it = 0; it < 200 && th - tl > 1e-17; it++) {
        double tm = 0.5 * (tl + th);
        if (l2_norm2_at(x0, v, len, lo, hi, tm) > e2) th = tm; else tl = tm;
    }
    /* On the active set at tl: clipped coordinates contribute C, free ones t^2 * S. */
    double S = 0, C = 0, tm = 0.5 * (tl + th);
    for (size_t i = 0; i < len; i++) {
        double dl = (double)v[i] - x0[i], a = (double)lo - x0[i], b = (double)hi - x0[i];
        double e = tm * dl;
        if (e < a) C += a * a; else if (e > b) C += b * b; else S += dl * dl;
    }
    if (S > 0 && e2 > C) {
        double t = sqrt((e2 - C) / S);
        if (t >= tl && t <= th) return t;
    }
    return tl;
}

static double l1_norm_at(const float *x0, const float *v, size_t len, float lo, float hi,
                         double lam)
{
    double s = 0;
    for (size_t i = 0; i < len; i++) {
        double dl = (double)v[i] - x0[i];
        double m = fabs(dl) - lam;
        if (m <= 0) continue;
        double e = clampd(dl > 0 ? m : -m, (double)lo - x0[i], (double)hi - x0[i]);
        s += fabs(e);
    }
    return s;
}

/* The threshold lam >= 0 at which ||clip(soft(delta, lam), a, b)||_1 = eps. */
static double l1_threshold(const float *x0, const float *v, size_t len, float lo, float hi,
                           double eps)
{
    double ll = 0, lh = 0;
    for (size_t i = 0; i < len; i++) {
        double a = fabs((double)v[i] - x0[i]);
        if (a > lh) lh = a;
    }
    for (int it = 0; it < 200 && lh - ll > 1e-17 * (1 + lh); it++) {
        double lm = 0.5 * (ll + lh);
        if (l1_norm_at(x0, v, len, lo, hi, lm) > eps) ll = lm; else lh = lm;
    }
    /* Closed form on the active set: sum over free coordinates (|d| - lam) + clipped = eps. */
    double lm = 0.5 * (ll + lh), F = 0, C = 0;
    size_t nfree = 0;
    for (size_t i = 0; i < len; i++) {
        double dl = (double)v[i] - x0[i], m = fabs(dl) - lm;
        if (m <= 0) continue;
        double cap = dl > 0 ? (double)hi - x0[i] : x0[i] - (double)lo;
        if (m >= cap) C += cap; else { F += fabs(dl); nfree++; }
    }
    if (nfree) {
        double lam = (F + C - eps) / (double)nfree;
        if (lam >= ll && lam <= lh) return lam;
    }
    return lh;
}

foolc_status foolc_project(foolc_norm p, const float *x0, const float *v, size_t len,
                           double eps, float lo, float hi, float *out)
{
    if (!x0 || !v || !out) return foolc__error(FOOLC_E_INVALID, "project: NULL argument");
    if (!(eps >= 0) || !isfinite(eps))
        return foolc__error(FOOLC_E_INVALID, "project: eps must be finite and >= 0, got %g", eps);
    if (!(lo < hi)) return foolc__error(FOOLC_E_INVALID, "project: need lo < hi, got [%g, %g]",
                                        (double)lo, (double)hi);
    switch (p) {
    case FOOLC_LINF:
        for (size_t i = 0; i < len; i++) {
            double a = fmax((double)lo, x0[i] - eps), b = fmin((double)hi, x0[i] + eps);
            out[i] = (float)clampd(v[i], a, b);
        }
        return FOOLC_OK;
    case FOOLC_L2: {
        double t = 1;
        if (l2_norm2_at(x0, v, len, lo, hi, 1) > eps * eps) t = l2_scale(x0, v, len, lo, hi, eps);
        for (size_t i = 0; i < len; i++)
            out[i] = (float)clampd(x0[i] + t * ((double)v[i] - x0[i]), lo, hi);
        return FOOLC_OK;
    }
    case FOOLC_L1: {
        double lam = 0;
        if (l1_norm_at(x0, v, len, lo, hi, 0) > eps) lam = l1_threshold(x0, v, len, lo, hi, eps);
        for (size_t i = 0; i < len; i++) {
            double dl = (double)v[i] - x0[i], m = fabs(dl) - lam;
            double e = m > 0 ? (dl > 0 ? m : -m) : 0;
            out[i] = (float)clampd(x0[i] + e, lo, hi);
        }
        return FOOLC_OK;
    }
    default:
        return foolc__error(FOOLC_E_INVALID, "project: norm %d has no ball projection "
                            "(l1, l2, linf)", (int)p);
    }
}
