/* Numeric utilities shared by every attack family, written once: clamping, the dual norm
 * of a step's geometry, the k-th largest value, an ordering by decreasing key and the exact
 * Euclidean projection onto an Lp ball intersected with the box (the public foolc_project
 * runs the same code). Internal to the library. */
#ifndef FOOLC_NUMERIC_H
#define FOOLC_NUMERIC_H

#include "attack_impl.h"

#include <stddef.h>
#include <stdint.h>

#define FOOLC__PI 3.14159265358979323846

static inline double foolc__clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* FOOLC__VEC on a function with per-element loops lets gcc turn its comparisons into
 * selects (the library never reads floating-point exception flags, so no-trapping-math
 * changes no value) and builds one clone per ISA (AVX-512, AVX2, baseline). (The library
 * is built with -fno-math-errno, the Makefile's ALL_CFLAGS: it never reads errno after a
 * math function, and sqrt, correctly rounded either way, becomes the vector instruction.)
 * Loops whose elements are independent give the same bits in every clone; sums must keep one order
 * per lane without contraction. No clones under ThreadSanitizer: the clones' resolver runs
 * while the loader relocates, before TSan's runtime is up. */
#if defined(__SANITIZE_THREAD__)
#define FOOLC__NO_CLONES 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FOOLC__NO_CLONES 1
#endif
#endif
#if defined(__GNUC__) && !defined(__clang__)
#if defined(__x86_64__) && !defined(FOOLC__NO_CLONES)
#define FOOLC__VEC                                                                          \
    __attribute__((optimize("no-trapping-math"),                                           \
                   target_clones("avx512f", "arch=haswell", "default")))
#else
#define FOOLC__VEC __attribute__((optimize("no-trapping-math")))
#endif
#else
#define FOOLC__VEC
#endif

/* Per-element loops run in blocks of FOOLC__BLOCK floats with a fixed trip count, which
 * gcc -O2 vectorises (its cheap cost model skips loops of unknown length); the tail is
 * scalar. Sums accumulate in double, one partial sum per lane. */
#define FOOLC__BLOCK 8

/* An element-wise loop in blocks of FOOLC__BLOCK and a scalar tail: AT(j) is the body for
 * coordinate j, a macro that must not depend on the order of the coordinates (so every ISA
 * clone gives the same bits). */
#define FOOLC__BLOCKED(d, AT)                                                                  \
    do {                                                                                       \
        size_t j_ = 0;                                                                         \
        for (; j_ + FOOLC__BLOCK <= (d); j_ += FOOLC__BLOCK)                                   \
            for (size_t b_ = 0; b_ < FOOLC__BLOCK; b_++) AT(j_ + b_);                          \
        for (; j_ < (d); j_++) AT(j_);                                                         \
    } while (0)

/* The same loop adding into one double sum S per lane: AT(j, A) adds coordinate j's term
 * to A; the tail adds into S, then the lanes in order (the same bits in every clone). */
#define FOOLC__BLOCKED_SUM(d, AT, S)                                                           \
    do {                                                                                       \
        double l_[FOOLC__BLOCK] = {0};                                                         \
        size_t j_ = 0;                                                                         \
        for (; j_ + FOOLC__BLOCK <= (d); j_ += FOOLC__BLOCK)                                   \
            for (size_t b_ = 0; b_ < FOOLC__BLOCK; b_++) AT(j_ + b_, l_[b_]);                  \
        for (; j_ < (d); j_++) AT(j_, S);                                                      \
        for (size_t b_ = 0; b_ < FOOLC__BLOCK; b_++) S += l_[b_];                             \
    } while (0)

/* The Lp norm of v (p: FOOLC_L0, _L1, _L2, _LINF), and the dual norm that turns a
 * linearised margin into a distance in norm p (Linf -> L1, L2 -> L2, L1 and L0 -> Linf). */
double foolc__norm(foolc_norm p, const float *v, size_t d);
double foolc__dual_norm(foolc_norm p, const float *v, size_t d);

/* The k-th largest (1 <= k <= n) of v[0..n) by quickselect with a median-of-three pivot
 * (v is reordered): O(n) expected. */
float foolc__kth_largest(float *v, size_t n, size_t k);

/* The k-th largest (1 <= k <= d) of |v_j| (v unchanged): for k <= 32 by one scan that
 * keeps the k largest in order (most values fail the first comparison), else by
 * quickselect on a copy in work (d doubles). */
double foolc__kth_magnitude(const float *v, size_t d, size_t k, double *work);

/* Sorts ord (indices into key) by decreasing key: a heap sort, no allocation. */
void foolc__order_desc(int32_t *ord, const float *key, size_t n);

/* v = clip(v, lo, hi) in place (d floats). */
void foolc__clip_box(float *v, size_t d, float lo, float hi);

/* The exact Euclidean projection of v onto {u : |u - x0|_p <= eps} ∩ [lo, hi]^d in place
 * (p = Linf, L2 or L1), by sorting breakpoints. work: FOOLC__PROJECT_WORK(d) floats. */
#define FOOLC__PROJECT_WORK(d) (9 * (size_t)(d))
void foolc__project(foolc_norm p, const float *x0, float *v, size_t d, double eps, float lo,
                    float hi, float *work);

/* Projects delta (d) in place onto the Lp ball of radius r around 0, box ignored (L0 keeps
 * the floor(r) largest magnitudes, ties in index order; L1 is the exact Euclidean
 * projection, by Michelot's fixed point). work: d doubles (L0 and L1 only; may be NULL
 * otherwise). With the box inactive it equals foolc__project around x0 = 0. */
void foolc__project_ball(foolc_norm p, float *delta, size_t d, double r, double *work);

/* The L1 case's soft threshold: 0 when |v|_1 <= r (v is its own projection), else 1 and
 * *theta, with which sign(v_j) max(|v_j| - theta, 0) (computed in double, rounded to float)
 * is the projection of v (d) onto the L1 ball of radius r (INFINITY when r <= 0: all 0).
 * work: d doubles. */
int foolc__l1_ball_theta(const float *v, size_t d, double r, double *work, double *theta);

/* foolc__l1_ball_theta's theta by Newton passes over v in lanes, without its collection
 * and index-order sums (pdpgd-linf's Moreau step): the same bits where the double sums of
 * the float magnitudes are exact (magnitudes within ~2^29 of each other), else a few ulps
 * apart (a residual of at most 2 ulps of |v|_1 in 200,000 random cases, 10 for the index
 * order). start: a guess of theta (the last one for a slowly moving v and r; 0 for none),
 * which saves passes and not changes the result. work (d doubles) only for non-finite v. */
int foolc__l1_ball_theta_lanes(const float *v, size_t d, double r, double start, double *work,
                               double *theta);

#endif
