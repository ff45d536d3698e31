/* The library's one random generator: counter-based, from SplitMix64's finaliser (a strong
 * 64-bit mix), so that any draw can be computed from (key, counter) alone and no result
 * depends on the order in which draws are made, the batch or the thread. Two ways to key
 * it, both on the same mix:
 *   - foolc__rng (lib/attack_impl.h, lib/rng.c): the attacks' sequential streams, keyed by
 *     (seed, sample, stream);
 *   - foolc__rng_key / foolc__rng_at: random access keyed by (seed, stream), for weight
 *     initialisation and shuffling in the network engine. */
#ifndef FOOLC_RNG_H
#define FOOLC_RNG_H

#include <stddef.h>
#include <stdint.h>

#define FOOLC__GOLDEN 0x9E3779B97F4A7C15ull   /* 2^64 / golden ratio: SplitMix64's step */

/* SplitMix64's finaliser. */
static inline uint64_t foolc__mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The key of stream `stream` under `seed`. */
static inline uint64_t foolc__rng_key(uint64_t seed, uint64_t stream)
{
    return foolc__mix64(seed ^ foolc__mix64(stream + 0x632BE59BD9B4E019ull));
}

/* Draw ctr of the stream with key `key` (SplitMix64's output number ctr + 1 from key). */
static inline uint64_t foolc__rng_at(uint64_t key, uint64_t ctr)
{
    return foolc__mix64(key + (ctr + 1) * FOOLC__GOLDEN);
}

/* The same draw as a double in [0, 1) (its top 53 bits). */
static inline double foolc__rng_at_uniform(uint64_t key, uint64_t ctr)
{
    return (double)(foolc__rng_at(key, ctr) >> 11) * 0x1.0p-53;
}

/* Bulk draws of an attack's stream (struct foolc__rng, lib/attack_impl.h), in blocks
 * vectorised per ISA: out[0..n) receives the next n values of foolc__rng_u64 (the same
 * values in the same order; the stream advances by n). */
struct foolc__rng;
void foolc__rng_fill_u64(struct foolc__rng *r, uint64_t *out, size_t n);
/* n standard normal floats by Box-Muller on the stream's next ceil(n / 2) values (both of a
 * pair's normals used; the stream advances by ceil(n / 2)), vectorised: the logarithm, sine
 * and cosine are polynomials in float (relative error below 1e-6) evaluated with the same
 * operations in every clone, so the same bits on every ISA. Draw k of a call is a function of
 * (key, counter) alone, independent of how the caller batches. */
void foolc__rng_fill_normal(struct foolc__rng *r, float *out, size_t n);

#endif
