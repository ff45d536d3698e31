/* Numeric utilities every attack family uses, written once (lib/numeric.h). */
/* FP exceptions are never trapped here: telling gcc so lets it if-convert the clamps. Set
 * before the headers, so that their inline helpers (foolc__clamp) carry the same options and
 * gcc inlines them (it does not inline across differing optimize options). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "numeric.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

FOOLC__VEC
double foolc__norm(foolc_norm p, const float *v, size_t d)
{
    double acc[FOOLC__BLOCK] = {0}, s = 0;
    size_t j = 0;
    switch (p) {
    case FOOLC_L0:
        for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
            for (size_t k = 0; k < FOOLC__BLOCK; k++) acc[k] += v[j + k] != 0.0f;
        for (; j < d; j++) s += v[j] != 0.0f;
        break;
    case FOOLC_L1:
        for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
            for (size_t k = 0; k < FOOLC__BLOCK; k++) acc[k] += fabs((double)v[j + k]);
        for (; j < d; j++) s += fabs((double)v[j]);
        break;
    case FOOLC_LINF: {
        float mx[FOOLC__BLOCK] = {0}, m = 0;
        for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
            for (size_t k = 0; k < FOOLC__BLOCK; k++) {
                float a = fabsf(v[j + k]);
                mx[k] = a > mx[k] ? a : mx[k];
            }
        for (; j < d; j++) m = fabsf(v[j]) > m ? fabsf(v[j]) : m;
        for (size_t k = 0; k < FOOLC__BLOCK; k++) m = mx[k] > m ? mx[k] : m;
        return m;
    }
    default:
        for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
            for (size_t k = 0; k < FOOLC__BLOCK; k++) acc[k] += (double)v[j + k] * v[j + k];
        for (; j < d; j++) s += (double)v[j] * v[j];
        break;
    }
    for (size_t k = 0; k < FOOLC__BLOCK; k++) s += acc[k];
    return p == FOOLC_L2 ? sqrt(s) : s;
}

double foolc__dual_norm(foolc_norm p, const float *v, size_t d)
{
    switch (p) {
    case FOOLC_L1: return foolc__norm(FOOLC_LINF, v, d);
    case FOOLC_LINF: return foolc__norm(FOOLC_L1, v, d);
    case FOOLC_L0: return foolc__norm(FOOLC_LINF, v, d);
    default: return foolc__norm(FOOLC_L2, v, d);
    }
}

float foolc__kth_largest(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    k--;
    while (lo < hi) {
        float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
        double piv = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
        size_t i = lo, j = hi;
        for (;;) {   /* Hoare partition, descending: [lo, j] >= piv >= [j + 1, hi] */
            while (a[i] > piv) i++;
            while (a[j] < piv) j--;
            if (i >= j) break;
            float t = a[i];
            a[i] = a[j];
            a[j] = t;
            i++;
            j--;
        }
        if (k <= j) hi = j;
        else lo = j + 1;
    }
    return a[k];
}

typedef struct bp {
    float t, c2, u2;     /* saturation time cap/|u|, cap^2, u^2 of one coordinate */
} bp;

/* A float's bits as an unsigned key in the order of the values (-0 and +0 one key, as the
 * comparisons see them; no NaN here). */
static inline uint32_t float_key(float f)
{
    uint32_t u;
    if (f == 0) f = 0;   /* -0 -> +0 */
    memcpy(&u, &f, sizeof u);
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

/* Sorts n items (type T, its first member a float key, read by KEY) by increasing key,
 * stably (equal keys keep their order, as glibc's merge sort kept them): LSD radix sort on
 * the key's 4 bytes, skipping the bytes all keys share. tmp holds n items. Returns the
 * sorted array: v or tmp. O(n), no comparisons. */
#define FOOLC__RADIX_SORT(NAME, T, KEY)                                                      \
    static T *NAME(T *v, T *tmp, size_t n)                                                  \
    {                                                                                        \
        uint32_t cnt[4][256];                                                                \
        memset(cnt, 0, sizeof cnt);                                                          \
        for (size_t i = 0; i < n; i++) {                                                     \
            uint32_t k = float_key(KEY(v[i]));                                               \
            cnt[0][k & 255]++;                                                               \
            cnt[1][(k >> 8) & 255]++;                                                        \
            cnt[2][(k >> 16) & 255]++;                                                       \
            cnt[3][k >> 24]++;                                                               \
        }                                                                                    \
        T *src = v, *dst = tmp;                                                              \
        for (int b = 0; b < 4; b++) {                                                        \
            uint32_t *c = cnt[b], sum = 0;                                                   \
            if (c[(float_key(KEY(src[0])) >> (8 * b)) & 255] == n) continue;                 \
            for (int i = 0; i < 256; i++) {                                                  \
                uint32_t t = c[i];                                                           \
                c[i] = sum;                                                                  \
                sum += t;                                                                    \
            }                                                                                \
            for (size_t i = 0; i < n; i++) dst[c[(float_key(KEY(src[i])) >> (8 * b)) & 255]++] = src[i]; \
            T *t = src;                                                                      \
            src = dst;                                                                       \
            dst = t;                                                                         \
        }                                                                                    \
        return src;                                                                          \
    }
#define FOOLC__KEY_SELF(x) (x)
#define FOOLC__KEY_T(x) ((x).t)
FOOLC__RADIX_SORT(radix_sort_float, float, FOOLC__KEY_SELF)
FOOLC__RADIX_SORT(radix_sort_bp, bp, FOOLC__KEY_T)

/* v = clip(v, max(lo, x0 - eps), min(hi, x0 + eps)) in double, per coordinate (in blocks,
 * selects instead of fmax/fmin: the same values). */
#define LINF_COORD(j)                                                                          \
    do {                                                                                       \
        double a_ = x0[j] - eps, b_ = x0[j] + eps, v_ = v[j];                                  \
        a_ = a_ > lo ? a_ : lo;                                                                \
        b_ = b_ < hi ? b_ : hi;                                                                \
        double c_ = v_ > b_ ? b_ : v_;                                                         \
        v[j] = (float)(v_ < a_ ? a_ : c_);                                                     \
    } while (0)

FOOLC__VEC
static void project_linf(const float *restrict x0, float *restrict v, size_t d, double eps,
                         double lo, double hi)
{
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) LINF_COORD(j + k);
    for (; j < d; j++) LINF_COORD(j);
}

/* v = clip(x0 + t (v - x0), lo, hi) in double, per coordinate. */
#define SCALE_COORD(j)                                                                         \
    do {                                                                                       \
        double y_ = x0[j] + t * ((double)v[j] - x0[j]);                                        \
        v[j] = (float)(y_ < lo ? lo : y_ > hi ? hi : y_);                                      \
    } while (0)

FOOLC__VEC
static void scale_clip(const float *restrict x0, float *restrict v, size_t d, double t,
                       double lo, double hi)
{
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) SCALE_COORD(j + k);
    for (; j < d; j++) SCALE_COORD(j);
}

/* |clip(v, lo, hi) - x0|^2, one double sum per lane. */
#define L2_CLIPPED(j, G)                                                                       \
    do {                                                                                       \
        float c_ = v[j] < lo ? lo : v[j];                                                      \
        c_ = c_ > hi ? hi : c_;                                                                \
        double e_ = (double)c_ - x0[j];                                                        \
        G += e_ * e_;                                                                          \
    } while (0)

FOOLC__VEC
static double l2_clipped(const float *restrict x0, const float *restrict v, size_t d, float lo,
                         float hi)
{
    double g = 0;
    FOOLC__BLOCKED_SUM(d, L2_CLIPPED, g);
    return g;
}

/* Returns |v - x0|^2 (one double sum per lane); per coordinate, with u = v_j - x0_j and cap
 * the room in u's direction, its breakpoint cap / |u| (tb; cap where u = 0, which the
 * caller skips), cap^2 and u^2 in float. */
#define L2_BREAK(j, S)                                                                         \
    do {                                                                                       \
        double u_ = (double)v[j] - x0[j], x_ = x0[j];                                          \
        double cap_ = u_ > 0 ? (double)hi - x_ : x_ - (double)lo;                              \
        double a_ = fabs(u_);                                                                  \
        a_ = a_ > 0 ? a_ : 1.0;                                                                \
        S += u_ * u_;                                                                          \
        tb[j] = (float)(cap_ / a_);                                                            \
        c2[j] = (float)(cap_ * cap_);                                                          \
        u2[j] = (float)(u_ * u_);                                                              \
    } while (0)

FOOLC__VEC
static double l2_breaks(const float *restrict x0, const float *restrict v, size_t d, float lo,
                        float hi, float *restrict tb, float *restrict c2, float *restrict u2)
{
    double s = 0;
    FOOLC__BLOCKED_SUM(d, L2_BREAK, s);
    return s;
}

FOOLC__VEC
void foolc__clip_box(float *restrict v, size_t d, float lo, float hi)
{
#define CLIP_COORD(j) v[j] = v[j] < lo ? lo : v[j] > hi ? hi : v[j]
    FOOLC__BLOCKED(d, CLIP_COORD);
#undef CLIP_COORD
}

/* The exact projection of v onto {|u - x0|_p <= eps} ∩ [lo, hi]^d (p = L2 or L1) in place,
 * by sorting breakpoints instead of bisecting: with u = v - x0 and cap_j the room of
 * coordinate j in the direction of u_j, the L2 projection is clip(x0 + t u) where
 * sum_j min(t |u_j|, cap_j)^2 = eps^2, piecewise quadratic in t with breakpoints
 * cap_j / |u_j|; the L1 projection is x0 + sign(u) min(max(|u| - lam, 0), cap) where
 * sum_j min(max(|u_j| - lam, 0), cap_j) = eps, piecewise linear in lam with breakpoints
 * |u_j| and |u_j| - cap_j. When clip(v) already lies in the ball it is the answer. work
 * holds FOOLC__PROJECT_WORK(d) floats: the breakpoints and room to sort them (radix_sort,
 * the order a stable comparison sort gives, so the sweep adds in the same order). */
void foolc__project(foolc_norm p, const float *x0, float *v, size_t d, double eps, float lo,
                    float hi, float *work)
{
    if (p == FOOLC_LINF) {
        project_linf(x0, v, d, eps, lo, hi);
        return;
    }
    if (p == FOOLC_L2) {
        /* Vectorised passes: |clip(v) - x0|^2; when that is outside the ball |v - x0|^2
         * and every coordinate's breakpoint, then the moving ones (v_j != x0_j) gathered. */
        if (l2_clipped(x0, v, d, lo, hi) <= eps * eps) {
            foolc__clip_box(v, d, lo, hi);
            return;
        }
        bp *w = (bp *)work;
        float *tb = (float *)(w + d), *c2 = tb + d, *u2 = c2 + d;
        double sfree = l2_breaks(x0, v, d, lo, hi, tb, c2, u2);
        size_t n = 0;
        for (size_t j = 0; j < d; j++)
            if (v[j] != x0[j]) w[n++] = (bp){tb[j], c2[j], u2[j]};
        /* Coordinates saturate in the order of their breakpoints; between two of them
         * F(t) = ssat + t^2 sfree. The sweep stops at the first breakpoint beyond the
         * root, usually below 1 (clip(v) lies outside the ball), so only the breakpoints
         * below 1 are sorted, then the smallest of the others (the first in a stable
         * order) is tried; when the sweep needs more, all are sorted and it runs again.
         * Either way it visits the breakpoints in the order of a stable sort of all. */
        bp *cand = w + d;
        size_t m = 0;
        for (size_t q = 0; q < n; q++)
            if (w[q].t < 1.0f) cand[m++] = w[q];
        bp *sw = m > 0 ? radix_sort_bp(cand, cand + d, m) : cand;
        double e2 = eps * eps, sfree0 = sfree, ssat = 0, t = 1;
        size_t k = 0;
        int found = 0;
        for (; k < m; k++) {
            double tk = sw[k].t;
            if (ssat + tk * tk * sfree >= e2) break;
            ssat += sw[k].c2;
            sfree -= sw[k].u2;
        }
        if (k < m) {
            found = 1;
        } else if (m == n) {
            if (n > 0) t = sw[n - 1].t;
        } else {
            size_t qmin = n;
            for (size_t q = 0; q < n; q++)
                if (!(w[q].t < 1.0f) && (qmin == n || w[q].t < w[qmin].t)) qmin = q;
            double tk = w[qmin].t;
            if (ssat + tk * tk * sfree >= e2) {
                found = 1;
            } else {   /* the rare case: sort all and sweep again */
                sw = radix_sort_bp(w, w + d, n);
                ssat = 0;
                sfree = sfree0;
                for (k = 0; k < n; k++) {
                    tk = sw[k].t;
                    if (ssat + tk * tk * sfree >= e2) break;
                    ssat += sw[k].c2;
                    sfree -= sw[k].u2;
                }
                if (k < n) found = 1;
                else t = sw[n - 1].t;
            }
        }
        if (found && sfree > 0) {
            t = sqrt(fmax(e2 - ssat, 0) / sfree);
        } else if (found) {   /* the largest breakpoint, as the last of the sorted ones */
            t = w[0].t;
            for (size_t q = 1; q < n; q++) t = w[q].t > t ? w[q].t : t;
        }
        scale_clip(x0, v, d, t, lo, hi);
        return;
    }
    double g0 = 0;   /* L1: the norm of clip(v) - x0 */
    for (size_t j = 0; j < d; j++) g0 += fabs(foolc__clamp(v[j], lo, hi) - x0[j]);
    if (g0 <= eps) {
        foolc__clip_box(v, d, lo, hi);
        return;
    }
    /* Sweep lam downwards over the merged breakpoints. */
    float *a = work, *b = work + d, *tmp = work + 2 * d;
    size_t n = 0;
    for (size_t j = 0; j < d; j++) {
        double u = fabs((double)v[j] - x0[j]);
        if (u == 0) continue;
        double cap = (double)v[j] > x0[j] ? (double)hi - x0[j] : (double)x0[j] - lo;
        a[n] = (float)u;
        b[n] = (float)(u - cap);
        n++;
    }
    if (n > 0) {
        a = radix_sort_float(a, tmp, n);
        if (a == tmp) tmp = work;   /* the room left free */
        b = radix_sort_float(b, tmp, n);
    }
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

/* The k-th largest (1-based, 1 <= k <= d) of |v_j|: for small k (FMN-L0's usual radius)
 * by one scan that keeps the k largest in a sorted array (almost every value fails the
 * first comparison); else by quickselect on a copy in work (d doubles). */
double foolc__kth_magnitude(const float *v, size_t d, size_t k, double *work)
{
    enum { SMALL = 32 };
    if (k > SMALL) {
        float *w = (float *)work;
        for (size_t j = 0; j < d; j++) w[j] = fabsf(v[j]);
        return foolc__kth_largest(w, d, k);
    }
    double top[SMALL];
    size_t n = 0;
    for (size_t j = 0; j < d; j++) {
        double a = fabs((double)v[j]);
        if (n == k && !(a > top[k - 1])) continue;
        size_t i = n < k ? n++ : k - 1;   /* the slot freed: the end, or the smallest */
        for (; i > 0 && top[i - 1] < a; i--) top[i] = top[i - 1];
        top[i] = a;
    }
    return top[k - 1];
}

/* delta_j = sign(delta_j) max(|delta_j| - theta, 0), per coordinate in blocks. */
#define SOFT_COORD(j)                                                                          \
    do {                                                                                       \
        double a_ = fabs((double)delta[j]) - theta;                                            \
        float m_ = (float)a_;                                                                  \
        delta[j] = a_ > 0 ? (delta[j] > 0 ? m_ : -m_) : 0.0f;                                  \
    } while (0)

FOOLC__VEC
static void soft_threshold(float *restrict delta, size_t d, double theta)
{
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) SOFT_COORD(j + k);
    for (; j < d; j++) SOFT_COORD(j);
}

/* The L1 norm of v with foolc__norm's bits (the same lanes, added in the same order), the
 * number of non-zero coordinates and max |v_j|, in one pass. */
FOOLC__VEC
static size_t l1_stats(const float *restrict v, size_t d, double *sum, double *mx)
{
    double acc[FOOLC__BLOCK] = {0}, top[FOOLC__BLOCK] = {0}, s = 0, m = 0;
    uint32_t cnt[FOOLC__BLOCK] = {0};
    size_t c = 0, j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) {
            double a = fabs((double)v[j + k]);
            acc[k] += a;
            cnt[k] += a > 0;
            top[k] = a > top[k] ? a : top[k];
        }
    for (; j < d; j++) {
        double a = fabs((double)v[j]);
        s += a;
        c += a > 0;
        m = a > m ? a : m;
    }
    for (size_t k = 0; k < FOOLC__BLOCK; k++) {
        s += acc[k];
        c += cnt[k];
        m = top[k] > m ? top[k] : m;
    }
    *sum = s;
    *mx = m;
    return c;
}

/* The non-zero |v_j| above lb into work in index order, without branches (where about
 * half are kept, a branch per coordinate mispredicts); blocks with none above lb are
 * skipped after a test in lanes. Returns their number. */
FOOLC__VEC
static size_t l1_collect(const float *restrict v, size_t d, double lb, double *restrict work)
{
    size_t n = 0, j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK) {
        int any = 0;
        for (size_t k = 0; k < FOOLC__BLOCK; k++) any |= fabs((double)v[j + k]) > lb;
        if (!any) continue;
        for (size_t k = 0; k < FOOLC__BLOCK; k++) {
            double a = fabs((double)v[j + k]);
            work[n] = a;
            n += a > lb && a > 0;
        }
    }
    for (; j < d; j++) {
        double a = fabs((double)v[j]);
        work[n] = a;
        n += a > lb && a > 0;
    }
    return n;
}

int foolc__l1_ball_theta(const float *v, size_t d, double r, double *work, double *theta_out)
{
    /* L1: Euclidean projection onto the L1 ball, a soft threshold at the theta with
     * sum_j max(|v_j| - theta, 0) = r, found by Michelot's fixed point: theta = (sum of
     * the kept magnitudes - r) / their count, dropping those at or below theta, until
     * none drops (exact; theta only grows). It starts from the magnitudes above a lower
     * bound of theta (any set S of them gives one, (sum_S - r) / |S|), a superset of the
     * kept ones, so it ends on the same set as from all non-zero ones, with the same sums
     * in index order: the same bits (3,500,000 random projections, ties and radii near
     * the norm among them, against the code that started from all). Where few are kept
     * (FMN), max |v_j| - r leaves only those few to collect. */
    double sum, mx;
    size_t n = l1_stats(v, d, &sum, &mx);
    if (sum <= r) return 0;   /* sum has foolc__norm(FOOLC_L1)'s bits */
    if (r <= 0) {
        *theta_out = INFINITY;
        return 1;
    }
    /* Lower bounds of theta: Michelot's first iterate and max |v_j| - r; less a margin for
     * the rounding of sum (lane sums, not the index-order ones), at most d ulps of it. */
    double lb = (sum - r) / (double)n;
    if (mx - r > lb) lb = mx - r;
    lb -= 1e-9 * fabs(lb) + 4 * (double)d * DBL_EPSILON * sum;
    n = l1_collect(v, d, lb, work);
    if (n == 0) n = l1_collect(v, d, 0, work);   /* non-finite input */
    sum = 0;
    for (size_t j = 0; j < n; j++) sum += work[j];
    double theta = (sum - r) / (double)n;
    for (;;) {
        size_t kept = 0;
        double s = 0;
        for (size_t j = 0; j < n; j++)
            if (work[j] > theta) {
                work[kept++] = work[j];
                s += work[j];
            }
        if (kept == n || kept == 0) break;
        n = kept;
        theta = (s - r) / (double)n;
    }
    *theta_out = theta;
    return 1;
}

/* The sum (in FOOLC__BLOCK lanes, added in a fixed order) and the number of the |v_j| above
 * theta >= 0. */
FOOLC__VEC
static size_t l1_above(const float *restrict v, size_t d, double theta, double *sum)
{
    double acc[FOOLC__BLOCK] = {0}, s = 0;
    uint32_t cnt[FOOLC__BLOCK] = {0};
    size_t c = 0, j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) {
            double a = fabs((double)v[j + k]);
            acc[k] += a > theta ? a : 0;
            cnt[k] += a > theta;
        }
    for (; j < d; j++) {
        double a = fabs((double)v[j]);
        s += a > theta ? a : 0;
        c += a > theta;
    }
    for (size_t k = 0; k < FOOLC__BLOCK; k++) {
        s += acc[k];
        c += cnt[k];
    }
    *sum = s;
    return c;
}

int foolc__l1_ball_theta_lanes(const float *v, size_t d, double r, double start, double *work,
                               double *theta_out)
{
    /* Michelot's fixed point as Newton's method on f(theta) = sum_j max(|v_j| - theta, 0)
     * - r (convex, decreasing, piecewise linear; from below theta it never overshoots):
     * theta <- (sum of the |v_j| above theta - r) / their number, each step one pass over
     * v in lanes, from the larger of the lower bounds (|v|_1 - r) / (non-zero count) and
     * max |v_j| - r, until the number above stays (the kept set is then the final one).
     * The sums in lanes round differently from foolc__l1_ball_theta's index-order ones
     * (a few ulps of theta); no collection, no serial sum. A start above those bounds with
     * some |v_j| above it is taken instead: from above theta one step lands below it (f is
     * convex: its piece at the start lies under it), so the passes end on the same set and
     * the same sum in lanes. */
    double sum, mx;
    size_t n = l1_stats(v, d, &sum, &mx);
    if (sum <= r) return 0;   /* sum has foolc__norm(FOOLC_L1)'s bits */
    if (r <= 0) {
        *theta_out = INFINITY;
        return 1;
    }
    if (!isfinite(sum)) return foolc__l1_ball_theta(v, d, r, work, theta_out);
    double theta = (sum - r) / (double)n;
    if (mx - r > theta) theta = mx - r;
    double s0;
    size_t n0 = start > theta && start < mx ? l1_above(v, d, start, &s0) : 0;
    if (n0 > 0) {
        theta = start;
        n = n0;
        sum = s0;
    } else {
        n = l1_above(v, d, theta, &sum);
    }
    for (int it = 0; n > 0 && it < 100; it++) {
        double tn = (sum - r) / (double)n, sn;
        size_t cn = l1_above(v, d, tn, &sn);
        theta = tn;
        if (cn == n) break;
        n = cn;
        sum = sn;
    }
    *theta_out = theta;
    return 1;
}

void foolc__project_ball(foolc_norm p, float *delta, size_t d, double r, double *work)
{
    if (p == FOOLC_L2) {
        double n = foolc__norm(FOOLC_L2, delta, d);
        if (n > r) {
            double f = r / n;
            for (size_t j = 0; j < d; j++) delta[j] = (float)(delta[j] * f);
        }
        return;
    }
    if (p == FOOLC_LINF) {
        const float rf = (float)r;
        size_t j = 0;
        for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
            for (size_t k = 0; k < FOOLC__BLOCK; k++) {
                float v = delta[j + k];
                v = v > rf ? rf : v;
                delta[j + k] = v < -rf ? -rf : v;
            }
        for (; j < d; j++) delta[j] = delta[j] > rf ? rf : delta[j] < -rf ? -rf : delta[j];
        return;
    }
    if (p == FOOLC_L0) {
        size_t keep = r <= 0 ? 0 : r >= (double)d ? d : (size_t)floor(r);
        if (foolc__norm(FOOLC_L0, delta, d) <= (double)keep) return;
        double thr = keep > 0 ? foolc__kth_magnitude(delta, d, keep, work) : INFINITY;
        size_t above = 0;
        for (size_t j = 0; j < d; j++) above += fabs((double)delta[j]) > thr;
        size_t ties = keep - above;   /* values equal to thr kept in index order */
        for (size_t j = 0; j < d; j++) {
            double a = fabs((double)delta[j]);
            if (a > thr) continue;
            if (a == thr && ties > 0) { ties--; continue; }
            delta[j] = 0;
        }
        return;
    }
    double theta;
    if (!foolc__l1_ball_theta(delta, d, r, work, &theta)) return;
    if (r <= 0) {
        memset(delta, 0, d * sizeof *delta);
        return;
    }
    soft_threshold(delta, d, theta);
}
