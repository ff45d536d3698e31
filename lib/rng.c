/* The counter-based random stream: each draw is a strong 64-bit mix of (key, counter), the
 * key derived from (seed, sample, stream), so draws never depend on batching or threads. */
#include "attack_impl.h"

#include <math.h>

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void foolc__rng_init(foolc__rng *r, uint64_t seed, uint64_t sample, uint64_t stream)
{
    r->key = mix64(mix64(mix64(seed) ^ sample) ^ (stream * 0xD1B54A32D192ED03ull));
    r->ctr = 0;
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
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
