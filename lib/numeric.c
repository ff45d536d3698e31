/* Numeric utilities every attack family uses, written once (lib/numeric.h). */
#include "numeric.h"

#include <math.h>
#include <stdlib.h>

/* The dual norm of g for the ball norm p (Linf -> L1, L2 -> L2, L1 -> Linf). */
double foolc__dual_norm(foolc_norm p, const float *g, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        double v = fabs((double)g[j]);
        if (p == FOOLC_LINF) s += v;
        else if (p == FOOLC_L2) s += v * v;
        else if (v > s) s = v;
    }
    return p == FOOLC_L2 ? sqrt(s) : s;
}

/* The k-th largest (k >= 1) of v[0..n) by quickselect; v is reordered. */
float foolc__kth_largest(float *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float piv = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > piv) i++;
            while (v[j] < piv) j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    return v[want];
}

/* The step direction for descending a loss with gradient g at x: Linf sign(-g); L2 -g/|g|_2;
 * L1 the signs of -g on the coordinates above the quantile of |g|, scaled to L1 norm 1
 * (Tramèr & Boneh's SLIDE). For L1 and L2, coordinates at a face of the box that the step
 * would push outwards are left out. Returns 0 when the direction is zero. */
static int cmp_float_asc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

typedef struct bp {
    float t, c2, u2;     /* saturation time cap/|u|, cap^2, u^2 of one coordinate */
} bp;

static int cmp_bp(const void *a, const void *b)
{
    return cmp_float_asc(&((const bp *)a)->t, &((const bp *)b)->t);
}

/* The exact projection of v onto {|u - x0|_p <= eps} ∩ [lo, hi]^d (p = L2 or L1) in place,
 * by sorting breakpoints instead of bisecting: with u = v - x0 and cap_j the room of
 * coordinate j in the direction of u_j, the L2 projection is clip(x0 + t u) where
 * sum_j min(t |u_j|, cap_j)^2 = eps^2, piecewise quadratic in t with breakpoints
 * cap_j / |u_j|; the L1 projection is x0 + sign(u) min(max(|u| - lam, 0), cap) where
 * sum_j min(max(|u_j| - lam, 0), cap_j) = eps, piecewise linear in lam with breakpoints
 * |u_j| and |u_j| - cap_j. When clip(v) already lies in the ball it is the answer. work
 * holds 3 d floats. */
void foolc__project(foolc_norm p, const float *x0, float *v, size_t d, double eps, float lo,
                    float hi, float *work)
{
    if (p == FOOLC_LINF) {
        for (size_t j = 0; j < d; j++) {
            double a = fmax((double)lo, x0[j] - eps), b = fmin((double)hi, x0[j] + eps);
            v[j] = (float)foolc__clamp(v[j], a, b);
        }
        return;
    }
    double g0 = 0;   /* the norm of clip(v) - x0 */
    for (size_t j = 0; j < d; j++) {
        double e = foolc__clamp(v[j], lo, hi) - x0[j];
        g0 += p == FOOLC_L2 ? e * e : fabs(e);
    }
    if (g0 <= (p == FOOLC_L2 ? eps * eps : eps)) {
        for (size_t j = 0; j < d; j++) v[j] = (float)foolc__clamp(v[j], lo, hi);
        return;
    }
    if (p == FOOLC_L2) {
        bp *w = (bp *)work;
        size_t n = 0;
        double sfree = 0;
        for (size_t j = 0; j < d; j++) {
            double u = (double)v[j] - x0[j];
            if (u == 0) continue;
            double cap = u > 0 ? (double)hi - x0[j] : (double)x0[j] - lo;
            w[n].t = (float)(cap / fabs(u));
            w[n].c2 = (float)(cap * cap);
            w[n].u2 = (float)(u * u);
            sfree += u * u;
            n++;
        }
        qsort(w, n, sizeof *w, cmp_bp);
        /* Coordinates saturate in the order of their breakpoints; between two of them
         * F(t) = ssat + t^2 sfree. */
        double e2 = eps * eps, ssat = 0, t;
        size_t k = 0;
        for (; k < n; k++) {
            double tk = w[k].t;
            if (ssat + tk * tk * sfree >= e2) break;
            ssat += w[k].c2;
            sfree -= w[k].u2;
        }
        if (k < n && sfree > 0) t = sqrt(fmax(e2 - ssat, 0) / sfree);
        else t = n > 0 ? w[n - 1].t : 1;
        for (size_t j = 0; j < d; j++)
            v[j] = (float)foolc__clamp(x0[j] + t * ((double)v[j] - x0[j]), lo, hi);
        return;
    }
    /* L1: sweep lam downwards over the merged breakpoints. */
    float *a = work, *b = work + d;
    size_t n = 0;
    for (size_t j = 0; j < d; j++) {
        double u = fabs((double)v[j] - x0[j]);
        if (u == 0) continue;
        double cap = (double)v[j] > x0[j] ? (double)hi - x0[j] : (double)x0[j] - lo;
        a[n] = (float)u;
        b[n] = (float)(u - cap);
        n++;
    }
    qsort(a, n, sizeof(float), cmp_float_asc);
    qsort(b, n, sizeof(float), cmp_float_asc);
    size_t ia = n, ib = n;   /* next (largest remaining) breakpoint of each kind */
    double g = 0, lam = n ? a[n - 1] : 0, slope = 0;
    while (ia > 0 || ib > 0) {
        double next = ia > 0 && (ib == 0 || a[ia - 1] >= b[ib - 1]) ? a[ia - 1] : b[ib - 1];
        if (next < 0) next = 0;
        if (g + slope * (lam - next) >= eps) break;
        g += slope * (lam - next);
        lam = next;
        if (lam <= 0) break;
        if (ia > 0 && (ib == 0 || a[ia - 1] >= b[ib - 1])) {
            slope += 1;
            ia--;
        } else {
            slope -= 1;
            ib--;
        }
    }
    if (slope > 0 && g < eps) lam = fmax(lam - (eps - g) / slope, 0);
    for (size_t j = 0; j < d; j++) {
        double u = (double)v[j] - x0[j], m = fabs(u) - lam;
        double e = m > 0 ? (u > 0 ? m : -m) : 0;
        v[j] = (float)foolc__clamp(x0[j] + e, lo, hi);
    }
}

/* Sorts ord (indices into key) by decreasing key: a heap sort, no allocation. */
void foolc__order_desc(int32_t *ord, const float *key, size_t n)
{
    for (size_t q = 0; q < n; q++) ord[q] = (int32_t)q;
    if (n < 2) return;
    /* Min-heap on key, then extracting the minimum to the end gives decreasing order. */
    for (size_t start = n / 2; start-- > 0;) {
        size_t r = start;
        for (;;) {
            size_t c = 2 * r + 1;
            if (c >= n) break;
            if (c + 1 < n && key[ord[c + 1]] < key[ord[c]]) c++;
            if (key[ord[c]] < key[ord[r]]) {
                int32_t t = ord[c]; ord[c] = ord[r]; ord[r] = t;
                r = c;
            } else break;
        }
    }
    for (size_t end = n - 1; end > 0; end--) {
        int32_t t = ord[0]; ord[0] = ord[end]; ord[end] = t;
        size_t r = 0;
        for (;;) {
            size_t c = 2 * r + 1;
            if (c >= end) break;
            if (c + 1 < end && key[ord[c + 1]] < key[ord[c]]) c++;
            if (key[ord[c]] < key[ord[r]]) {
                int32_t t2 = ord[c]; ord[c] = ord[r]; ord[r] = t2;
                r = c;
            } else break;
        }
    }
}
