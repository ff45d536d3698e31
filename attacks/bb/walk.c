/* The Brendel-Bethge loop shared by bb-l0, bb-l1, bb-l2 and bb-linf: starting points, a
 * bisection towards the input along the norm's own path, then per-sample boundary steps
 * solved by the norm's trust-region solver, with momentum, a radius schedule and a
 * per-sample convergence stop. */
#include "bb.h"
#include "numeric.h"
#include "decision/decision.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pieces the solvers share ---- */

/* x is in the box up to rounding: l <= 0 <= h. */
#define BOX_COORD(i)                                                                               \
    do {                                                                                           \
        double a_ = lo - x[i], c_ = hi - x[i];                                                     \
        l[i] = a_ > 0 ? 0 : a_;                                                                    \
        h[i] = c_ < 0 ? 0 : c_;                                                                    \
    } while (0)

FOOLC__BB_VEC
static void box_block(size_t d, const double *restrict x, double lo, double hi,
                      double *restrict l, double *restrict h)
{
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) BOX_COORD(i + k);
    for (; i < d; i++) BOX_COORD(i);
}

void foolc__bb_box(const foolc__bb_prob *p, double *l, double *h)
{
    box_block(p->d, p->x, p->lo, p->hi, l, h);
}

FOOLC__BB_VEC
double foolc__bb_dot(size_t d, const double *restrict a, const double *restrict b)
{
    double acc[FOOLC__BLOCK] = {0}, s = 0;
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) acc[k] += a[i + k] * b[i + k];
    for (; i < d; i++) s += a[i] * b[i];
    for (size_t k = 0; k < FOOLC__BLOCK; k++) s += acc[k];
    return s;
}

/* g(beta) = b . clip(beta b, l, h), its slope (sum of b_i^2 over unclipped i) and
 * |clip(beta b, l, h)|^2 (as clip_step sums it). */
#define G_BETA_COORD(i, G, S, N)                                                                   \
    do {                                                                                           \
        double v_ = beta * b[i], w_;                                                               \
        int free_ = (v_ > l[i]) & (v_ < h[i]);                                                     \
        w_ = v_ < l[i] ? l[i] : v_;                                                                \
        w_ = w_ > h[i] ? h[i] : w_;                                                                \
        v_ = v_ <= l[i] ? l[i] : v_;                                                               \
        v_ = v_ >= h[i] ? h[i] : v_;                                                               \
        S += free_ ? b[i] * b[i] : 0.0;                                                            \
        G += b[i] * v_;                                                                            \
        N += w_ * w_;                                                                              \
    } while (0)

FOOLC__BB_VEC
static double g_beta(size_t d, const double *restrict b, const double *restrict l,
                     const double *restrict h, double beta, double *slope, double *norm2)
{
    double ga[FOOLC__BLOCK] = {0}, sa[FOOLC__BLOCK] = {0}, na[FOOLC__BLOCK] = {0}, g = 0, s = 0,
           n = 0;
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) G_BETA_COORD(i + k, ga[k], sa[k], na[k]);
    for (; i < d; i++) G_BETA_COORD(i, g, s, n);
    for (size_t k = 0; k < FOOLC__BLOCK; k++) {
        g += ga[k];
        s += sa[k];
        n += na[k];
    }
    *slope = s;
    *norm2 = n;
    return g;
}

/* Up: h where b_i > 0, l where b_i < 0, 0 clamped where b_i = 0; down: l where b_i > 0,
 * else h. */
#define CORNER_COORD(i, N, STORE)                                                                  \
    do {                                                                                           \
        double z_ = l[i] > 0 ? l[i] : 0.0;                                                         \
        z_ = h[i] < z_ ? h[i] : z_;                                                                \
        double vu_ = b[i] < 0 ? l[i] : z_;                                                         \
        vu_ = b[i] > 0 ? h[i] : vu_;                                                               \
        double vd_ = b[i] > 0 ? l[i] : h[i];                                                       \
        double v_ = up ? vu_ : vd_;                                                                \
        STORE;                                                                                     \
        N += v_ * v_;                                                                              \
    } while (0)

FOOLC__BB_VEC
static double corner_norm(size_t d, const double *restrict b, const double *restrict l,
                          const double *restrict h, int up)
{
    double n2 = 0;
#define CORNER_NORM(i, N2) CORNER_COORD(i, N2, (void)0)
    FOOLC__BLOCKED_SUM(d, CORNER_NORM, n2);
#undef CORNER_NORM
    return n2;
}

FOOLC__BB_VEC
static double corner_fill(size_t d, const double *restrict b, const double *restrict l,
                          const double *restrict h, int up, double *restrict delta)
{
    double n2 = 0;
#define CORNER_FILL(i, N2) CORNER_COORD(i, N2, delta[i] = v_)
    FOOLC__BLOCKED_SUM(d, CORNER_FILL, n2);
#undef CORNER_FILL
    return n2;
}

/* The corner in b's direction (up) or against it: every coordinate at its limit (0
 * clamped where b_i = 0) into delta (when not NULL); returns |delta|^2. */
static double corner_step(size_t d, const double *b, const double *l, const double *h, int up,
                          double *delta)
{
    return delta ? corner_fill(d, b, l, h, up, delta) : corner_norm(d, b, l, h, up);
}

/* The range [gmin, gmax] of b . delta over the bounds, |b|^2 and sum |b_i| (h_i - l_i). */
#define RANGE_COORD(i, GMIN, GMAX, BB, SC)                                                         \
    do {                                                                                           \
        double b_ = b[i], lo_ = b_ > 0 ? l[i] : h[i], hi_ = b_ > 0 ? h[i] : l[i];                  \
        GMIN += b_ * lo_;                                                                          \
        GMAX += b_ * hi_;                                                                          \
        BB += b_ * b_;                                                                             \
        SC += fabs(b_) * (h[i] - l[i]);                                                            \
    } while (0)

FOOLC__BB_VEC
static void range_sums(size_t d, const double *restrict b, const double *restrict l,
                       const double *restrict h, double out[4])
{
    double a0[FOOLC__BLOCK] = {0}, a1[FOOLC__BLOCK] = {0}, a2[FOOLC__BLOCK] = {0},
           a3[FOOLC__BLOCK] = {0}, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) RANGE_COORD(i + k, a0[k], a1[k], a2[k], a3[k]);
    for (; i < d; i++) RANGE_COORD(i, s0, s1, s2, s3);
    for (size_t k = 0; k < FOOLC__BLOCK; k++) {
        s0 += a0[k];
        s1 += a1[k];
        s2 += a2[k];
        s3 += a3[k];
    }
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
    out[3] = s3;
}

/* delta = clip(beta b, l, h); returns |delta|^2. */
#define CLIP_COORD(i, N2)                                                                          \
    do {                                                                                           \
        double v_ = beta * b[i];                                                                   \
        v_ = v_ < l[i] ? l[i] : v_;                                                                \
        v_ = v_ > h[i] ? h[i] : v_;                                                                \
        delta[i] = v_;                                                                             \
        N2 += v_ * v_;                                                                             \
    } while (0)

FOOLC__BB_VEC
static double clip_step(size_t d, const double *restrict b, const double *restrict l,
                        const double *restrict h, double beta, double *restrict delta)
{
    double n2 = 0;
    FOOLC__BLOCKED_SUM(d, CLIP_COORD, n2);
    return n2;
}

/* Newton steps on the non-decreasing, piecewise-linear g from beta (g, slope and n2 its
 * values there; exact within a linear piece), kept inside the bracket the steps have
 * found; where a step leaves it, bisection once both ends are known, else a doubling step
 * outwards. From a warm start near the root this takes two or three evaluations. */
static void min_norm_newton(size_t d, const double *b, const double *l, const double *h,
                            double c, double tol, double bb, double beta, double g,
                            double slope, double n2, const double *piece,
                            double *beta_io, double *delta, double *norm2)
{
    double bl = -INFINITY, bh = INFINITY;
    if (piece && !delta && fabs(g - c) > tol && slope > 0) {
        /* The caller gave the linear piece of g around beta, [piece[0], piece[1]], and the
         * clipped coordinates' |delta|^2, piece[2]: a Newton step well inside it is the
         * root, with |delta|^2 = piece[2] + nb^2 slope, without evaluating g there. */
        double nb = beta + (c - g) / slope, m = 1e-9 * fabs(nb) + 1e-300;
        if (nb > piece[0] + m && nb < piece[1] - m) {
            if (beta_io) *beta_io = nb;
            *norm2 = piece[2] + nb * nb * slope;
            return;
        }
    }
    double step = fabs(beta) > 0 ? fabs(beta) : 1.0 / (sqrt(bb) + 1e-300);
    for (int it = 0; it < 400; it++) {
        if (fabs(g - c) <= tol) break;
        if (g < c) bl = beta; else bh = beta;
        double nb = slope > 0 ? beta + (c - g) / slope : NAN;
        if (!(nb > bl && nb < bh)) {
            if (isfinite(bl) && isfinite(bh)) {
                nb = 0.5 * (bl + bh);
            } else {
                nb = g < c ? beta + step : beta - step;
                step *= 2;
            }
        }
        if (nb == beta) break;
        beta = nb;
        g = g_beta(d, b, l, h, beta, &slope, &n2);
    }
    *norm2 = delta ? clip_step(d, b, l, h, beta, delta) : n2;
    if (beta_io) *beta_io = beta;
}

/* The reach test and the corner of the smallest step; returns -1 when c is out of reach,
 * 1 at a corner (*norm2 set, delta filled when not NULL), else 0 with *tol set. */
static int min_norm_ends(size_t d, const double *b, const double *l, const double *h,
                         double c, const double sums[4], double *delta, double *norm2,
                         double *tol)
{
    double gmin = sums[0], gmax = sums[1], scale = sums[3];
    *tol = 1e-12 * (fabs(c) + scale) + 1e-300;
    if (c > gmax + *tol || c < gmin - *tol) return -1;
    if (c >= gmax - *tol || c <= gmin + *tol) {
        /* A corner of the bounds: every coordinate at its limit in b's direction. */
        *norm2 = corner_step(d, b, l, h, c >= gmax - *tol, delta);
        return 1;
    }
    return 0;
}

/* The first Newton point: the warm start when finite and non-zero, else c / |b|^2. */
double foolc__bb_beta0(double c, double bb, const double *beta_io)
{
    double b0 = bb > 0 ? c / bb : 0;
    if (beta_io && isfinite(*beta_io) && *beta_io != 0) b0 = *beta_io;
    return b0;
}

/* foolc__bb_min_norm_warm, also giving its range sums (gmin, gmax, |b|^2, scale). */
static int min_norm_sums(size_t d, const double *b, const double *l, const double *h, double c,
                         double *beta_io, double *delta, double *norm2, double sums[4])
{
    double tol;
    range_sums(d, b, l, h, sums);
    int end = min_norm_ends(d, b, l, h, c, sums, delta, norm2, &tol);
    if (end) return end > 0;
    double slope, n2, b0 = foolc__bb_beta0(c, sums[2], beta_io);
    double g = g_beta(d, b, l, h, b0, &slope, &n2);
    min_norm_newton(d, b, l, h, c, tol, sums[2], b0, g, slope, n2, NULL, beta_io, delta,
                    norm2);
    return 1;
}

int foolc__bb_min_norm_first(size_t d, const double *b, const double *l, const double *h,
                             double c, const double sums[4], const double first[7],
                             double *beta_io, double *norm2)
{
    double tol;
    int end = min_norm_ends(d, b, l, h, c, sums, NULL, norm2, &tol);
    if (end) return end > 0;
    min_norm_newton(d, b, l, h, c, tol, sums[2], first[0], first[1], first[2], first[3],
                    first + 4, beta_io, NULL, norm2);
    return 1;
}

int foolc__bb_min_norm_warm(size_t d, const double *b, const double *l, const double *h,
                            double c, double *beta_io, double *delta, double *norm2)
{
    double sums[4];
    return min_norm_sums(d, b, l, h, c, beta_io, delta, norm2, sums);
}

int foolc__bb_min_norm(size_t d, const double *b, const double *l, const double *h, double c,
                       double *delta, double *norm2)
{
    return foolc__bb_min_norm_warm(d, b, l, h, c, NULL, delta, norm2);
}

void foolc__bb_progress(const foolc__bb_prob *p, const double *l, const double *h)
{
    size_t d = p->d;
    double s = p->c >= 0 ? 1 : -1, bb = 0, n2 = 0;
    for (size_t i = 0; i < d; i++) {
        double v = s * p->b[i];
        p->delta[i] = v > 0 ? h[i] : v < 0 ? l[i] : 0;
        n2 += p->delta[i] * p->delta[i];
        bb += p->b[i] * p->b[i];
    }
    if (n2 <= p->r * p->r || bb == 0) return;
    /* ||clip(t s b)|| grows with t: bisect t for radius r (t = r / ||b|| is below it). */
    double tl = p->r / sqrt(bb), th = 2 * tl;
    for (int k = 0; k < 200; k++, th *= 2) {
        double m2 = 0;
        for (size_t i = 0; i < d; i++) {
            double v = foolc__clamp(th * s * p->b[i], l[i], h[i]);
            m2 += v * v;
        }
        if (m2 >= p->r * p->r) break;
        tl = th;
    }
    for (int it = 0; it < 60; it++) {
        double t = 0.5 * (tl + th), m2 = 0;
        for (size_t i = 0; i < d; i++) {
            double v = foolc__clamp(t * s * p->b[i], l[i], h[i]);
            m2 += v * v;
        }
        if (m2 <= p->r * p->r) tl = t; else th = t;
    }
    for (size_t i = 0; i < d; i++) p->delta[i] = foolc__clamp(tl * s * p->b[i], l[i], h[i]);
}

/* foolc__bb_unreachable, also giving the range sums of the box. */
static int unreachable_sums(foolc__bb_prob *p, double *l, double *h, double sums[4])
{
    foolc__bb_box(p, l, h);
    double n2;
    if (min_norm_sums(p->d, p->b, l, h, p->c, NULL, p->delta, &n2, sums) &&
        n2 <= p->r * p->r)
        return 0;
    foolc__bb_progress(p, l, h);
    return 1;
}

int foolc__bb_sparse_start(foolc__bb_prob *p, double *l, double *h, double *dt,
                           foolc__bb_greedy_fn greedy, double *bb, double *scale)
{
    double sums[4];
    if (unreachable_sums(p, l, h, sums)) return 1;   /* p->delta: the smallest L2 step */
    if (greedy(p, l, h, dt) <= p->r * p->r) return 1;   /* greedy wrote p->delta */
    *bb = sums[2];
    *scale = sums[3];
    return 0;
}

int foolc__bb_unreachable(foolc__bb_prob *p, double *l, double *h)
{
    double sums[4];
    return unreachable_sums(p, l, h, sums);
}

double foolc__bb_root(foolc__bb_fn fn, void *ctx, double c, double t0, double step0, double tol,
                      double xtol, int maxit, double *below, double *above)
{
    double slope, t = t0, g = fn(ctx, t, &slope), tl = -INFINITY, th = INFINITY;
    double step = step0 > 0 ? step0 : 1, gth = g, sth = slope;   /* fn and slope at th */
    int n = 1;
    /* Bracket: walk away from t0 with doubling steps. */
    if (g < c) {
        tl = t;
        for (double tt = t + step; n < maxit; tt += step, step *= 2) {
            double s2, g2 = fn(ctx, tt, &s2);
            n++;
            if (g2 >= c) {
                th = tt;
                gth = g2;
                sth = s2;
                break;
            }
            tl = tt;
        }
    } else if (g > c) {
        th = t;
        for (double tt = t - step; n < maxit; tt -= step, step *= 2) {
            double s2, g2 = fn(ctx, tt, &s2);
            n++;
            if (g2 <= c) { tl = tt; break; }
            th = tt;
            gth = g2;
            sth = s2;
        }
    } else {
        tl = th = t;
    }
    if (isinf(tl) || isinf(th)) {
        if (below) *below = isinf(tl) ? th : tl;
        if (above) *above = isinf(th) ? tl : th;
        return isinf(th) ? tl : th;
    }
    /* Newton inside the bracket (exact within a linear piece), bisection otherwise, from th
     * with the values the bracket's walk computed there (counted as one evaluation, as
     * when it was evaluated again: fn is deterministic, so the same steps follow; the
     * callers' buffers then hold the last evaluation's, which need not be th's). */
    t = th;
    g = gth;
    slope = sth;
    n++;
    /* Also stops once the bracket is below xtol relative: a function with a jump across c
     * has no root, and bisecting it further only refines where the jump is. */
    while (n < maxit && fabs(g - c) > tol && th - tl > xtol * fmax(fabs(tl), fabs(th))) {
        double nt = slope > 0 ? t + (c - g) / slope : 0.5 * (tl + th);
        if (!(nt > tl && nt < th)) nt = 0.5 * (tl + th);
        if (nt == t) break;
        t = nt;
        g = fn(ctx, t, &slope);
        n++;
        if (g < c) tl = t;
        else if (g > c) th = t;
        else tl = th = t;
    }
    if (fabs(g - c) <= tol) tl = th = t;
    if (below) *below = tl;
    if (above) *above = th;
    return t;
}

/* The order of doubles as unsigned integers, reversed: ascending r means descending key. */
static uint64_t desc_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    u = u >> 63 ? ~u : u ^ ((uint64_t)1 << 63);
    return ~u;
}

/* A stable least-significant-digit radix sort on the keys' bits, one byte per pass (passes
 * in which every key has the same byte are skipped): ties keep their input order, and n
 * keys cost 8 n moves at most, where qsort's comparisons dominated the L1 and L0 steps. */
void foolc__bb_sort_desc(foolc__bb_key *k, size_t n)
{
    foolc__bb_key *src = k, *dst = k + n;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t cnt[256] = {0};
        for (size_t i = 0; i < n; i++) cnt[(desc_bits(src[i].key) >> shift) & 255]++;
        if (n == 0 || cnt[(desc_bits(src[0].key) >> shift) & 255] == n) continue;
        size_t pos = 0;
        for (int j = 0; j < 256; j++) {
            size_t c = cnt[j];
            cnt[j] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++) dst[cnt[(desc_bits(src[i].key) >> shift) & 255]++] = src[i];
        foolc__bb_key *t = src;
        src = dst;
        dst = t;
    }
    if (src != k) memcpy(k, src, n * sizeof *k);
}

/* Insertion into a sorted buffer buf of the m largest of src (n > m) so far: most keys fail
 * the first comparison, so this is one pass when m is small. A key equal to the buffer's
 * last ranks after it (a later input), as the stable sort orders them. */
static void insert_top(const foolc__bb_key *src, size_t n, size_t m, foolc__bb_key *buf)
{
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (cnt == m && !(src[i].key > buf[m - 1].key)) continue;
        size_t j = cnt < m ? cnt++ : m - 1;
        while (j > 0 && buf[j - 1].key < src[i].key) {
            buf[j] = buf[j - 1];
            j--;
        }
        buf[j] = src[i];
    }
}

FOOLC__BB_VEC
static size_t count_at_least(size_t n, const double *restrict v, double t)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += v[i] >= t;
    return c;
}

size_t foolc__bb_top_vals(const double *v, size_t n, size_t m, foolc__bb_key *k)
{
    foolc__bb_key *src = k + n;
    if (m >= n) {
        for (size_t i = 0; i < n; i++) {
            k[i].key = v[i];
            k[i].i = (int32_t)i;
        }
        foolc__bb_sort_desc(k, n);
        return n;
    }
    if (m >= 2 && m <= 64 && n >= 8 * m) {
        /* A threshold first: t, the (m/2)-th largest of every fourth value, leaves about
         * 2 m values at or above it. When at least m do (so the m largest are among them)
         * and not too many, only those are keyed, in input order, and ranked: the same m
         * keys in the same order as ranking all. */
        double top[32];
        size_t r = m / 2, c = 0;
        for (size_t i = 0; i < n; i += 4) {
            double x = v[i];
            if (c == r && !(x > top[r - 1])) continue;
            size_t j = c < r ? c++ : r - 1;
            while (j > 0 && top[j - 1] < x) {
                top[j] = top[j - 1];
                j--;
            }
            top[j] = x;
        }
        double t = top[r - 1];
        size_t above = c == r ? count_at_least(n, v, t) : 0;
        if (above >= m && above <= n / 2) {
            size_t q = 0;
            for (size_t i = 0; i < n; i++)
                if (v[i] >= t) {
                    src[q].key = v[i];
                    src[q++].i = (int32_t)i;
                }
            insert_top(src, q, m, k);
            return m;
        }
    }
    for (size_t i = 0; i < n; i++) {
        src[i].key = v[i];
        src[i].i = (int32_t)i;
    }
    insert_top(src, n, m, k);
    return m;
}

/* ---- the sparse candidates of the L1 and L0 solvers ---- */

/* The bucket of |v| >= 0 (or NaN): its exponent and first mantissa bit, half octaves in
 * the order of |v| (NaN and infinity above every finite value). */
static int bb_bucket(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return (int)((u >> 51) & 0xfff);
}

/* key[i] = bb_bucket(|b_i|) (its bits, written out for the vector loop) where u_i = 0 and
 * b_i != 0, else -1; returns how many have a bucket, their largest bucket in *kmax and
 * smallest in *kmin (-1 and INT32_MAX for none). */
#define SPARSE_KEY(i, MX, MN, NZ)                                                                  \
    do {                                                                                           \
        uint64_t w_;                                                                               \
        memcpy(&w_, &b[i], sizeof w_);                                                             \
        int32_t k_ = (int32_t)((w_ & 0x7fffffffffffffffull) >> 51);                                \
        int32_t ok_ = (u[i] == 0) & (b[i] != 0);                                                   \
        key[i] = ok_ ? k_ : -1;                                                                    \
        MX = ok_ && k_ > MX ? k_ : MX;                                                             \
        MN = ok_ && k_ < MN ? k_ : MN;                                                             \
        NZ += ok_;                                                                                 \
    } while (0)

FOOLC__BB_VEC
static size_t sparse_keys(size_t d, const double *restrict b, const double *restrict u,
                          int32_t *restrict key, int32_t *kmax, int32_t *kmin)
{
    int32_t mx[FOOLC__BLOCK], mn[FOOLC__BLOCK], hi = -1, lo = INT32_MAX;
    size_t za[FOOLC__BLOCK] = {0}, nz = 0;
    for (size_t k = 0; k < FOOLC__BLOCK; k++) {
        mx[k] = -1;
        mn[k] = INT32_MAX;
    }
    size_t i = 0;
    for (; i + FOOLC__BLOCK <= d; i += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) SPARSE_KEY(i + k, mx[k], mn[k], za[k]);
    for (; i < d; i++) SPARSE_KEY(i, hi, lo, nz);
    for (size_t k = 0; k < FOOLC__BLOCK; k++) {
        hi = mx[k] > hi ? mx[k] : hi;
        lo = mn[k] < lo ? mn[k] : lo;
        nz += za[k];
    }
    *kmax = hi;
    *kmin = lo;
    return nz;
}

void foolc__bb_sparse_init(foolc__bb_sparse *s, const foolc__bb_prob *p, const double *l,
                           const double *h, double *gather, int32_t *idx)
{
    size_t d = p->d, nnz = 0;
    int32_t *key = idx + d, kmax, kmin;
    s->b = gather;
    s->u = gather + d;
    s->l = gather + 2 * d;
    s->h = gather + 3 * d;
    size_t nz = sparse_keys(d, p->b, p->u, key, &kmax, &kmin);
    for (size_t i = 0; i < d; i++)
        if (p->u[i] != 0) {
            idx[nnz] = (int32_t)i;
            s->b[nnz] = p->b[i];
            s->u[nnz] = p->u[i];
            s->l[nnz] = l[i];
            s->h[nnz++] = h[i];
        }
    if (nz && kmin < kmax - (FOOLC__BB_BUCKETS - 1)) kmin = kmax - (FOOLC__BB_BUCKETS - 1);
    /* Each bucket's coordinates in a list, in input order (the link of coordinate i
     * overwrites its key, which is read first; an earlier coordinate's is read already). */
    size_t cnt[FOOLC__BB_BUCKETS] = {0};
    int32_t tail[FOOLC__BB_BUCKETS], *link = key;
    for (int j = 0; j < FOOLC__BB_BUCKETS; j++) s->head[j] = tail[j] = -1;
    if (nz)
        for (size_t i = 0; i < d; i++) {
            int32_t k = key[i];
            if (k < 0) continue;
            int j = kmax - (k < kmin ? kmin : k);
            cnt[j]++;
            link[i] = -1;
            if (tail[j] < 0) s->head[j] = (int32_t)i;
            else link[tail[j]] = (int32_t)i;
            tail[j] = (int32_t)i;
        }
    size_t pos = 0;
    for (int j = 0; j < FOOLC__BB_BUCKETS; j++) {
        pos += cnt[j];
        s->cum[j] = pos;
    }
    s->nnz = s->built = nnz;
    s->nc = nnz + nz;
    s->kmin = kmin;
    s->kmax = kmax;
    s->idx = idx;
    s->link = link;
    s->next = 0;
    s->pb = p->b;
    s->pl = l;
    s->ph = h;
}

/* Gathers whole buckets, largest |b_i| first, until the first n positions are written: the
 * order a counting sort of all gives, for the prefix the solver reads. */
static void sparse_fill(foolc__bb_sparse *s, size_t n)
{
    while (s->built < n && s->next < FOOLC__BB_BUCKETS) {
        size_t q = s->built;
        for (int32_t i = s->head[s->next]; i >= 0; i = s->link[i], q++) {
            s->idx[q] = i;
            s->b[q] = s->pb[i];
            s->u[q] = 0;
            s->l[q] = s->pl[i];
            s->h[q] = s->ph[i];
        }
        s->built = q;
        s->next++;
    }
}

size_t foolc__bb_sparse_count(foolc__bb_sparse *s, double t)
{
    size_t nz = s->nc - s->nnz, n;
    int kq = bb_bucket(t) - 1;   /* one bucket of slack below t's: rounding */
    if (nz == 0 || kq > s->kmax) n = s->nnz;
    else if (kq <= s->kmin) n = s->nc;
    else n = s->nnz + s->cum[s->kmax - kq];
    sparse_fill(s, n);
    return n;
}

size_t foolc__bb_sparse_bucket_end(const foolc__bb_sparse *s, size_t j)
{
    if (j < s->nnz) return s->nnz;
    int k = bb_bucket(fabs(s->b[j]));
    return s->nnz + s->cum[s->kmax - (k < s->kmin ? s->kmin : k)];
}

void foolc__bb_sparse_scatter(const foolc__bb_sparse *s, const double *v, size_t n, size_t d,
                              double *out)
{
    memset(out, 0, d * sizeof(double));
    for (size_t j = 0; j < n; j++) out[s->idx[j]] = v[j];
}

/* ---- the norm's path from the input to a starting point ---- */

/* The point at t in [0, 1] on the path from x0 (t = 0) to x1 (t = 1) that suits the norm:
 * a straight line for L2, a shrinking cube for Linf, soft thresholding for L1 and keeping
 * the largest changes for L0. m is max |x1 - x0|. */
static void path_point(foolc_norm norm, const float *x0, const float *x1, size_t d, double m,
                       double t, float lo, float hi, float *o)
{
    if (t >= 1) {
        memcpy(o, x1, d * sizeof(float));
        return;
    }
    double th = (1 - t) * m, cap = t * m;
    for (size_t j = 0; j < d; j++) {
        double dd = (double)x1[j] - x0[j], v;
        switch (norm) {
        case FOOLC_LINF: v = x0[j] + foolc__clamp(dd, -cap, cap); break;
        case FOOLC_L1: {
            double a = fabs(dd) - th;
            v = a > 0 ? x0[j] + copysign(a, dd) : x0[j];
            break;
        }
        case FOOLC_L0: v = fabs(dd) > th ? x1[j] : x0[j]; break;
        default: v = x0[j] + t * dd; break;
        }
        float f = (float)v;
        o[j] = f < lo ? lo : f > hi ? hi : f;
    }
}

/* Sample sid[a]'s path to its starting point xs row a (the bracket search's path). */
typedef struct bb_path {
    const int32_t *sid;
    const float *xs;
    const double *mx;   /* max |x1 - x0| per row */
} bb_path;

static void bb_path_point(void *ctx, const foolc__run *run, int32_t a, double t, float *out)
{
    const bb_path *c = ctx;
    size_t d = run->d;
    path_point(run->norm, run->x + (size_t)c->sid[a] * d, c->xs + (size_t)a * d, d, c->mx[a],
               t, run->lo, run->hi, out);
}

/* Bisection on the path from each sample's input to xs (m rows, adversarial ones only:
 * ok[a] is cleared for rows that are not): xs ends at the adversarial end of the final
 * bracket, which is offered. */
static foolc_status bisect_path(foolc__run *run, const int32_t *sid, int32_t m, float *xs,
                                int32_t steps, uint8_t *ok)
{
    size_t d = run->d;
    double *lo = foolc__malloc((size_t)m * 3 * sizeof(double));
    float *xb = foolc__malloc(foolc__mul(foolc__mul((size_t)m, d), sizeof(float)));
    int32_t *act = foolc__malloc((size_t)m * 2 * sizeof(int32_t));
    uint8_t *adv = foolc__malloc((size_t)m);
    foolc_status st = FOOLC_OK;
    if (!lo || !xb || !act || !adv) {
        st = foolc__nomem("bb bisection");
        goto out;
    }
    double *hi = lo + m, *mx = hi + m;
    int32_t *ids = act + m, na = 0;
    for (int32_t a = 0; a < m; a++)
        if (ok[a]) {
            memcpy(xb + (size_t)na * d, xs + (size_t)a * d, d * sizeof(float));
            ids[na] = sid[a];
            act[na++] = a;
        }
    if ((st = foolc__run_is_adv(run, xb, ids, na, adv, NULL)) < 0) goto out;
    int32_t keep = 0;
    for (int32_t q = 0; q < na; q++) {
        int32_t a = act[q];
        if (!adv[q]) {
            ok[a] = 0;
            continue;
        }
        const float *x0 = run->x + (size_t)sid[a] * d, *x1 = xs + (size_t)a * d;
        double m0 = 0;
        for (size_t j = 0; j < d; j++) m0 = fmax(m0, fabs((double)x1[j] - x0[j]));
        lo[a] = 0;
        hi[a] = 1;
        mx[a] = m0;
        act[keep++] = a;
    }
    na = keep;
    bb_path bp = {sid, xs, mx};
    foolc__bracket_opts o = {.path = bb_path_point, .path_ctx = &bp, .steps = steps};
    if ((st = foolc__run_bracket(run, sid, act, na, lo, hi, NULL, NULL, &o)) < 0) goto out;
    for (int32_t q = 0; q < na; q++) {
        int32_t a = act[q];
        float *x1 = xs + (size_t)a * d;
        bb_path_point(&bp, run, a, hi[a], xb);
        memcpy(x1, xb, d * sizeof(float));
        foolc__run_offer(run, sid[a], x1);
    }
out:
    foolc__free(lo);
    foolc__free(xb);
    foolc__free(act);
    foolc__free(adv);
    return st;
}

/* ---- starting points ---- */

/* The init attack: the caller's (foolc_attack_set_init), else the gradient minimum-norm
 * attack of the run's norm, whose result the walk refines. */
static const char *init_name(const foolc__run *run)
{
    if (run->init_attack) return run->init_attack;
    switch (run->norm) {
    case FOOLC_L0: return "fmn-l0";
    case FOOLC_L1: return "fmn-l1";
    case FOOLC_LINF: return "fmn-linf";
    default: return "ddn";
    }
}

/* Starting points for samples sid (m) by mode (NOISE, POOL or ATTACK; NOISE falls back to
 * the attack where no noise is adversarial unless `second`, the second walk of init=best,
 * which has run the attack already): xs rows and ok flags; the reason for failures goes to
 * why. */
static foolc_status own_starts(foolc__run *run, const foolc__bb_config *cfg, foolc__start mode,
                               int second,
                               const int32_t *sid, int32_t m, float *xs, uint8_t *ok,
                               char *why, size_t why_len)
{
    int32_t tries = (int32_t)cfg->init_tries;
    for (int32_t a = 0; a < m; a++) {
        ok[a] = 0;
        memcpy(xs + (size_t)a * run->d, run->x + (size_t)sid[a] * run->d,
               run->d * sizeof(float));
    }
    if (mode == FOOLC__START_POOL) {
        int own = 0;
        FOOLC__CHECK(foolc__dec_start_pool(run, sid, m, tries, 0, xs, ok, &own));
        snprintf(why, why_len, "none of the %d closest %s of another class is adversarial",
                 tries, own ? "inputs of the batch (no pool set)" : "pool images");
        return FOOLC_OK;
    }
    if (mode == FOOLC__START_ATTACK) {
        const char *name = init_name(run);
        snprintf(why, why_len, "init attack %s found no adversarial", name);
        foolc_status st = foolc__run_subattack(run, name, sid, m, xs, ok);
        return st < 0 ? st : FOOLC_OK;
    }
    FOOLC__CHECK(foolc__init_blended(run, sid, m, tries, (int32_t)cfg->init_steps,
                                     FOOLC__BLEND_RTOL, 0, xs, ok, FOOLC__STREAM_BLENDED));
    /* Noise that the model never puts outside the sample's class (a "noise class") gives
     * no start: those samples fall back to the init attack. */
    int32_t nf = 0;
    for (int32_t a = 0; a < m; a++) nf += !ok[a];
    if (second) {
        snprintf(why, why_len, "no adversarial among %d uniform-noise draws", tries);
        return FOOLC_OK;
    }
    const char *name = init_name(run);
    snprintf(why, why_len, "no adversarial among %d uniform-noise draws, nor from %s", tries,
             name);
    if (nf == 0) return FOOLC_OK;
    int32_t *fid = foolc__malloc((size_t)nf * (sizeof(int32_t) + 1));
    float *fx = foolc__malloc(foolc__mul(foolc__mul((size_t)nf, run->d), sizeof(float)));
    foolc_status st = FOOLC_OK;
    if (!fid || !fx) {
        st = foolc__nomem("bb fallback start");
        goto out;
    }
    uint8_t *fok = (uint8_t *)(fid + nf);
    nf = 0;
    for (int32_t a = 0; a < m; a++)
        if (!ok[a]) fid[nf++] = sid[a];
    st = foolc__run_subattack(run, name, fid, nf, fx, fok);
    if (st < 0) goto out;
    st = FOOLC_OK;
    nf = 0;
    for (int32_t a = 0; a < m; a++) {
        if (ok[a]) continue;
        if (fok[nf]) {
            ok[a] = 1;
            memcpy(xs + (size_t)a * run->d, fx + (size_t)nf * run->d, run->d * sizeof(float));
        }
        nf++;
    }
out:
    foolc__free(fid);
    foolc__free(fx);
    return st;
}

/* Starting points of a walk: the mode's own (walks 0 and 1, `second` 0 or 1), or for the
 * walk from the caller's per-sample starts (`second` 2, WARM_WALK) only those rows that are
 * usable (foolc__dec_sample_starts); the other samples sit that walk out. */
#define WARM_WALK 2
static foolc_status init_starts(foolc__run *run, const foolc__bb_config *cfg, foolc__start mode,
                                int second,
                                const int32_t *sid, int32_t m, float *xs, uint8_t *ok,
                                char *why, size_t why_len)
{
    if (second != WARM_WALK)
        return own_starts(run, cfg, mode, second, sid, m, xs, ok, why, why_len);
    for (int32_t a = 0; a < m; a++) {
        ok[a] = 0;
        memcpy(xs + (size_t)a * run->d, run->x + (size_t)sid[a] * run->d,
               run->d * sizeof(float));
    }
    snprintf(why, why_len, "no usable per-sample start");
    return foolc__dec_sample_starts(run, sid, m, 0, xs, ok);
}

/* ---- the loop ---- */

/* One step's problem: the boundary normal averaged over steps (bq = g at the first), x,
 * u = x0 - x and b in double; returns |u|^2. */
FOOLC__BB_VEC
static double step_setup(size_t d, const float *restrict g, const float *restrict x,
                         const float *restrict x0, int first, double mom, double *restrict bq,
                         double *restrict px, double *restrict pu, double *restrict pb)
{
    double acc[FOOLC__BLOCK] = {0}, un = 0;
    size_t j = 0;
#define STEP_COORD(j, UN, B)                                                                       \
    do {                                                                                           \
        double b_ = B, u_ = (double)x0[j] - x[j];                                                  \
        bq[j] = b_;                                                                                \
        pb[j] = b_;                                                                                \
        px[j] = x[j];                                                                              \
        pu[j] = u_;                                                                                \
        UN += u_ * u_;                                                                             \
    } while (0)
    double m1 = 1 - mom;
    if (first) {   /* bq is not read: it holds no value yet */
        for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
            for (size_t k = 0; k < FOOLC__BLOCK; k++)
                STEP_COORD(j + k, acc[k], (double)g[j + k]);
        for (; j < d; j++) STEP_COORD(j, un, (double)g[j]);
    } else {
        for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
            for (size_t k = 0; k < FOOLC__BLOCK; k++)
                STEP_COORD(j + k, acc[k], mom * bq[j + k] + m1 * g[j + k]);
        for (; j < d; j++) STEP_COORD(j, un, mom * bq[j] + m1 * g[j]);
    }
#undef STEP_COORD
    for (size_t k = 0; k < FOOLC__BLOCK; k++) un += acc[k];
    return un;
}

/* xo = clip(x + delta) in float (x where the sum is NaN). */
FOOLC__BB_VEC
static void step_apply(size_t d, const double *restrict x, const double *restrict delta,
                       const float *restrict xq, float lo, float hi, float *restrict xo)
{
#define APPLY_COORD(j)                                                                             \
    do {                                                                                           \
        double v_ = x[j] + delta[j];                                                               \
        float f_ = v_ == v_ ? (float)v_ : xq[j];                                                   \
        f_ = f_ < lo ? lo : f_;                                                                    \
        xo[j] = f_ > hi ? hi : f_;                                                                 \
    } while (0)
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) APPLY_COORD(j + k);
    for (; j < d; j++) APPLY_COORD(j);
#undef APPLY_COORD
}

/* The margin floor, relative to max |logit|: points closer to the boundary are not offered
 * and the steps aim beyond it. About 100 times the logits' float resolution; at 1e-4 the
 * walks ended 1-4e-4 relative above the minimum (Foolbox's walks, without a floor, were that
 * much closer on 3 of 50 MLP images in L1). A point a model rounds differently when it is
 * verified is pushed outwards there (lib/attack.c, verify). */
#define BB_FLOOR 1e-5

/* How far behind the run's best a second walk may be, BB_BEHIND_AT steps in, and go on. */
#define BB_BEHIND 1.1
#define BB_BEHIND_AT 150

/* Buffers of one run, shared by its walks. */
typedef struct bb_bufs {
    int32_t *sid, *act, *ids, *last, *lab, *tgt, *shrunk;
    float *xs, *xb, *grad, *logits, *loss;
    double *bm, *ref, *rad, *w;
    foolc__bb_key *iw;
    uint8_t *ok, *adv, *found;
} bb_bufs;

/* One walk (`second`: the second of init=best): starting points by mode, the bisection towards
 * the input, then the boundary steps. A sample's convergence is judged on the best distance of
 * this walk (ref), not the run's, so that a second walk is not cut short by the first one's
 * result; every point the logits show to be adversarial is offered and the run keeps the
 * smallest. Samples that got a starting point are flagged in b->found; the reason for the
 * others goes to why. */
static foolc_status walk(foolc__run *run, const foolc__bb_config *cfg, foolc__bb_solve_fn solve,
                         foolc__start mode, int second, bb_bufs *b, char *why,
                         size_t why_len)
{
    int32_t m = run->n_todo, k = run->k;
    size_t d = run->d;
    const foolc__distance_vt *dist = foolc__distance_get(run->norm);
    int32_t *sid = b->sid, *act = b->act, *ids = b->ids, *last = b->last, *shrunk = b->shrunk;
    float *xs = b->xs, *xb = b->xb, *grad = b->grad, *logits = b->logits, *loss = b->loss;
    double *bm = b->bm, *ref = b->ref, *rad = b->rad, *w = b->w;
    uint8_t *ok = b->ok, *adv = b->adv;
    foolc_status st;

    FOOLC__CHECK(init_starts(run, cfg, mode, second, sid, m, xs, ok, why, why_len));
    FOOLC__CHECK(bisect_path(run, sid, m, xs, (int32_t)cfg->binary_search_steps, ok));
    int32_t na = 0;
    for (int32_t a = 0; a < m; a++) {
        if (!ok[a]) continue;
        b->found[a] = 1;
        act[na++] = a;
        ref[a] = dist->eval(run->x + (size_t)sid[a] * d, xs + (size_t)a * d, d);
        last[a] = 0;
        shrunk[a] = 0;
        rad[a] = 1;
    }

    int32_t steps = (int32_t)cfg->steps;
    int32_t interval = cfg->lr_num_decay > 0 ? (int32_t)(steps / cfg->lr_num_decay) : 0;
    if (cfg->lr_num_decay > 0 && interval < 1) interval = 1;
    double lr = cfg->lr, scale = (double)run->hi - run->lo;
    double *px = w + FOOLC__BB_SCRATCH * d, *pu = px + d, *pb = pu + d, *pdel = pb + d;
    foolc__bb_prob prob = {.d = d, .x = px, .u = pu, .b = pb, .lo = run->lo, .hi = run->hi,
                           .delta = pdel, .w = w, .iw = b->iw};
    for (int32_t step = 1; step <= steps && na > 0; step++) {
        if (interval && step > 1 && (step - 1) % interval == 0) lr *= cfg->lr_decay;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q];
            memcpy(xb + (size_t)q * d, xs + (size_t)a * d, d * sizeof(float));
            ids[q] = sid[a];
            b->lab[q] = run->labels[sid[a]];
            b->tgt[q] = run->targets ? run->targets[sid[a]] : 0;
        }
        if ((st = foolc__run_grad(run, xb, ids, na, FOOLC__LOSS_MARGIN, grad, loss, logits)) < 0)
            return st;
        if ((st = foolc_criterion_eval(run->crit, logits, na, k, b->lab,
                                       run->targets ? b->tgt : NULL, adv, NULL, NULL)) < 0)
            return st;
        int32_t keep = 0;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q], i = sid[a];
            const float *xq = xb + (size_t)q * d, *gq = grad + (size_t)q * d;
            const float *x0 = run->x + (size_t)i * d;
            /* The logits' float resolution: points closer to the boundary than this are
             * not offered (a model whose numerics depend on the batch could flip them
             * when the result is verified), and the steps aim beyond it. */
            const float *zq = logits + (size_t)q * (size_t)k;
            double zmax = 0, mg = loss[q];
            for (int32_t j = 0; j < k; j++) zmax = fmax(zmax, fabs((double)zq[j]));
            double floor_m = BB_FLOOR * zmax + 1e-30, best = ref[a];
            if (adv[q] && mg < -0.5 * floor_m) {
                foolc__run_offer(run, i, xq);
                best = fmin(best, dist->eval(x0, xq, d));
            }
            if (best < ref[a] * (1 - cfg->rtol) || (best < ref[a] && cfg->rtol == 0)) {
                ref[a] = best;
                last[a] = step;
            } else if (step - last[a] >= (int32_t)cfg->patience) {
                /* A stall: the sample's own radius halves (the schedule's radius is too
                 * long for it to make progress), until it has `shrinks` times. */
                if (shrunk[a] >= (int32_t)cfg->shrinks)
                    continue;   /* converged: no more queries for this sample */
                shrunk[a]++;
                rad[a] *= 0.5;
                last[a] = step;
            }
            /* The second walk of init=best stops once, BB_BEHIND_AT steps in, it is still
             * far behind the first walk's result: it is not going to catch up. */
            if (second && step >= BB_BEHIND_AT &&
                fmin(best, ref[a]) > BB_BEHIND * run->res->distance[i])
                continue;
            if (run->res->distance[i] == 0) continue;
            /* The boundary normal, averaged over steps. */
            double *bq = bm + (size_t)a * d;
            double un = step_setup(d, gq, xq, x0, step == 1, cfg->momentum, bq, px, pu, pb);
            /* The target margin: past the boundary by (overshoot - 1) times the current
             * margin from outside, back towards it by as much from inside, and never
             * closer to it than floor_m on the adversarial side. */
            double target = mg >= 0 ? -(cfg->overshoot - 1) * mg : (cfg->overshoot - 1) * mg;
            if (target > -floor_m) target = -floor_m;
            prob.c = target - mg;
            prob.r = lr * rad[a] * fmax(sqrt(un), 1e-6 * scale);
            prob.uu = un;
            solve(&prob);
            step_apply(d, px, pdel, xq, run->lo, run->hi, xs + (size_t)a * d);
            act[keep++] = a;
        }
        na = keep;
        FOOLC__CHECK(foolc__run_progress(run, step, steps));
    }
    return FOOLC_OK;
}

foolc_status foolc__bb_run(foolc__run *run, const foolc__bb_config *cfg,
                           foolc__bb_solve_fn solve)
{
    int32_t m = run->n_todo, k = run->k;
    if (m == 0) return FOOLC_OK;
    size_t d = run->d, md = foolc__mul((size_t)m, d);
    bb_bufs b;
    b.sid = foolc__malloc((size_t)m * 7 * sizeof(int32_t));
    b.xs = foolc__malloc(foolc__mul(md, sizeof(float)));
    b.xb = foolc__malloc(foolc__mul(md, sizeof(float)));
    b.grad = foolc__malloc(foolc__mul(md, sizeof(float)));
    b.logits = foolc__malloc(foolc__mul(foolc__mul((size_t)m, (size_t)k), sizeof(float)));
    b.loss = foolc__malloc((size_t)m * sizeof(float));
    b.bm = foolc__malloc(foolc__mul(md, sizeof(double)));
    b.ref = foolc__malloc((size_t)m * 2 * sizeof(double));
    b.w = foolc__malloc(foolc__mul(d, (FOOLC__BB_SCRATCH + 4) * sizeof(double)));
    b.iw = foolc__malloc(foolc__mul(2 * d, sizeof(foolc__bb_key)));
    b.ok = foolc__calloc((size_t)m, 3);
    foolc_status st = FOOLC_OK;
    if (!b.sid || !b.xs || !b.xb || !b.grad || !b.logits || !b.loss || !b.bm || !b.ref ||
        !b.w || !b.iw || !b.ok) {
        st = foolc__nomem("bb buffers");
        goto out;
    }
    b.act = b.sid + m;
    b.ids = b.act + m;
    b.last = b.ids + m;
    b.lab = b.last + m;
    b.tgt = b.lab + m;
    b.shrunk = b.tgt + m;
    b.rad = b.ref + m;
    b.adv = b.ok + m;
    b.found = b.adv + m;
    memcpy(b.sid, run->todo, (size_t)m * sizeof(int32_t));

    /* init 3: a walk from the norm's minimum-norm attack, then one from blended noise; the
     * run keeps each sample's best of both. */
    char why[160] = "", why2[160] = "", both[330];
    foolc__start mode = (foolc__start)(int)cfg->init;
    int best = mode == FOOLC__START_BEST;
    if ((st = walk(run, cfg, solve, best ? FOOLC__START_ATTACK : mode, 0, &b, why,
                   sizeof why)) < 0)
        goto out;
    if (best && (st = walk(run, cfg, solve, FOOLC__START_NOISE, 1, &b, why2, sizeof why2)) < 0)
        goto out;
    /* With per-sample starts, one more walk from them (foolc_attack_set_sample_starts):
     * the walks above as without them, so a start only adds. */
    char why3[160];
    if (run->sample_x &&
        (st = walk(run, cfg, solve, mode, WARM_WALK, &b, why3, sizeof why3)) < 0)
        goto out;
    snprintf(both, sizeof both, "%s%s%s", why, best ? "; " : "", why2);
    foolc__dec_missing(run, b.sid, m, b.found, both);
out:
    foolc__free(b.sid);
    foolc__free(b.xs);
    foolc__free(b.xb);
    foolc__free(b.grad);
    foolc__free(b.logits);
    foolc__free(b.loss);
    foolc__free(b.bm);
    foolc__free(b.ref);
    foolc__free(b.w);
    foolc__free(b.iw);
    foolc__free(b.ok);
    return st;
}
