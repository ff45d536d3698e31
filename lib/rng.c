/* The counter-based random stream: each draw is a strong 64-bit mix of (key, counter), the
 * key derived from (seed, sample, stream), so draws never depend on batching or threads. */
#include "attack_impl.h"
#include "numeric.h"
#include "rng.h"

#include <math.h>

/* One SplitMix64 step: the finaliser of z advanced by the golden increment. */
static uint64_t mix64(uint64_t z) { return foolc__mix64(z + FOOLC__GOLDEN); }

void foolc__rng_init(foolc__rng *r, uint64_t seed, uint64_t sample, uint64_t stream)
{
    r->key = mix64(mix64(mix64(seed) ^ sample) ^ (stream * 0xD1B54A32D192ED03ull));
    r->ctr = 0;
}

void foolc__rng_for(foolc__rng *r, const foolc__run *run, int32_t i, uint64_t stream)
{
    foolc__rng_init(r, run->seed, foolc__run_id(run, i), stream);
}

uint64_t foolc__rng_u64(foolc__rng *r)
{
    return mix64(r->key ^ mix64(r->ctr++));
}

double foolc__rng_uniform(foolc__rng *r)
{
    return (double)(foolc__rng_u64(r) >> 11) * 0x1.0p-53;
}

double foolc__rng_normal(foolc__rng *r)
{
    /* Box-Muller with u1 in (0, 1]; one value per pair keeps draws independent of parity. */
    double u1 = 1.0 - foolc__rng_uniform(r), u2 = foolc__rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2 * FOOLC__PI * u2);
}

/* foolc__rng_u64's values n at a time: each is a function of (key, counter) alone, so the
 * blocks give the bits of the one-at-a-time calls in every clone (integer arithmetic). */
FOOLC__VEC
void foolc__rng_fill_u64(foolc__rng *r, uint64_t *out, size_t n)
{
    uint64_t key = r->key, c = r->ctr;
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= n; j += FOOLC__BLOCK)
        for (size_t b = 0; b < FOOLC__BLOCK; b++)
            out[j + b] = foolc__mix64((key ^ foolc__mix64(c + j + b + FOOLC__GOLDEN)) +
                                      FOOLC__GOLDEN);
    for (; j < n; j++)
        out[j] = foolc__mix64((key ^ foolc__mix64(c + j + FOOLC__GOLDEN)) + FOOLC__GOLDEN);
    r->ctr = c + n;
}

/* Box-Muller on one 64-bit value: u1 = k1 2^-24 in (0, 1] from the top 24 bits, the angle
 * 2 pi k2 2^-24 from the next 24 (its quadrant from k2's top two bits, the rest an angle in
 * [0, pi / 2)). ln u1 = e ln 2 + ln m with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s),
 * s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^9; sine and cosine by their
 * Taylor series to phi^11 and phi^12. Floats only, each operation rounded once (no
 * contraction in C11 mode), integer bit operations exact: the same bits in every clone. */
#define FOOLC__LN2F 0.693147180559945309f
#define FOOLC__PI2F 1.57079632679489662f
static inline __attribute__((always_inline)) void normal_one(uint64_t zj, float *c0,
                                                              float *s0)
{
    {
        int32_t k1 = (int32_t)(zj >> 40) + 1, k2 = (int32_t)((zj >> 16) & 0xFFFFFFu);
        /* k1 = 2^e m with m in [1, 2), from the float's bits (k1 <= 2^24 is exact). */
        union { float f; int32_t i; } b = {.f = (float)k1};
        int32_t e = ((b.i >> 23) & 0xFF) - 127;
        b.i = (b.i & 0x7FFFFF) | 0x3F800000;
        float m = b.f;
        int32_t big = m > 1.41421356f;
        m = m * (1.0f - 0.5f * (float)big);
        e = e + big;
        float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
        float lnm = 2.0f * s *
                    (1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9)))));
        /* ln u1 = ln k1 - 24 ln 2 = (e - 24) ln 2 + ln m, at most 0. */
        float lnu = (float)(e - 24) * FOOLC__LN2F + lnm;
        /* r = sqrt(-2 ln u1) as x / sqrt(x) by three Newton steps from the bit-level guess
         * (sqrtf would be a call: math-errno); relative error about 1e-7, and 0 at x = 0. */
        float x = -2.0f * lnu;
        x = fabsf(x);   /* -0 or a rounding below 0 at u1 = 1 */
        union { float f; int32_t i; } g = {.f = x};
        g.i = 0x5F3759DF - (g.i >> 1);
        float y = g.f, hx = 0.5f * x;
        y = y * (1.5f - hx * y * y);
        y = y * (1.5f - hx * y * y);
        y = y * (1.5f - hx * y * y);
        float r = x * y;
        uint32_t q = (uint32_t)k2 >> 22;
        float ph = (float)(k2 & 0x3FFFFF) * 0x1.0p-22f * FOOLC__PI2F, p2 = ph * ph;
        float sn = ph * (1.0f + p2 * (-1.0f / 6 + p2 * (1.0f / 120 + p2 * (-1.0f / 5040 +
                   p2 * (1.0f / 362880 + p2 * (-1.0f / 39916800))))));
        float cs = 1.0f + p2 * (-0.5f + p2 * (1.0f / 24 + p2 * (-1.0f / 720 + p2 * (1.0f / 40320 +
                   p2 * (-1.0f / 3628800 + p2 * (1.0f / 479001600))))));
        /* Quadrant q: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c), by bit operations. */
        union { float f; uint32_t i; } uc = {.f = cs}, us = {.f = sn};
        uint32_t swap = 0u - (q & 1u);
        union { float f; uint32_t i; } cq = {.i = (uc.i & ~swap) | (us.i & swap)},
                                       sq = {.i = (us.i & ~swap) | (uc.i & swap)};
        cq.i ^= ((q ^ (q >> 1)) & 1u) << 31;
        sq.i ^= ((q >> 1) & 1u) << 31;
        *c0 = r * cq.f;
        *s0 = r * sq.f;
    }
}

FOOLC__VEC
static void normal_from(const uint64_t *restrict z, float *restrict c0, float *restrict s0,
                        size_t n)
{
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= n; j += FOOLC__BLOCK)
        for (size_t b = 0; b < FOOLC__BLOCK; b++) normal_one(z[j + b], &c0[j + b], &s0[j + b]);
    for (; j < n; j++) normal_one(z[j], &c0[j], &s0[j]);
}

void foolc__rng_fill_normal(foolc__rng *r, float *out, size_t n)
{
    enum { CHUNK = 128 };
    uint64_t z[CHUNK];
    float c[CHUNK], s[CHUNK];
    size_t pairs = (n + 1) / 2;
    for (size_t k0 = 0; k0 < pairs; k0 += CHUNK) {
        size_t nb = pairs - k0 < CHUNK ? pairs - k0 : CHUNK;
        foolc__rng_fill_u64(r, z, nb);
        normal_from(z, c, s, nb);
        for (size_t k = 0; k < nb; k++) {
            size_t j = 2 * (k0 + k);
            out[j] = c[k];
            if (j + 1 < n) out[j + 1] = s[k];
        }
    }
}
