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
