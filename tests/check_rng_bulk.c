/* The bulk draws of lib/rng.c: foolc__rng_fill_u64 gives the values of foolc__rng_u64 one at
 * a time and leaves the stream where they would; foolc__rng_fill_normal is the Box-Muller
 * pair of each 64-bit draw (against a double-precision reference), independent of how the
 * caller splits its calls, finite, with a standard normal's moments. Its clones
 * (FOOLC__VEC: avx512f, haswell, default) are chosen by the CPU at load time with no knob to
 * force another, so the bits of the other clones are not compared here. */
#include "testutil.h"
#include "attack_impl.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_fill_u64_one_at_a_time)
{
    const size_t ns[] = {0, 1, 7, 64, 1000};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        size_t n = ns[t];
        foolc__rng a, b;
        foolc__rng_init(&a, 1234 + t, 5, 77);
        b = a;
        /* Start mid-stream too: the counter need not be a multiple of the block. */
        for (size_t j = 0; j < 3 + t; j++) {
            (void)foolc__rng_u64(&a);
            (void)foolc__rng_u64(&b);
        }
        uint64_t *bulk = malloc((n ? n : 1) * sizeof *bulk);
        ck_assert_ptr_nonnull(bulk);
        foolc__rng_fill_u64(&a, bulk, n);
        for (size_t j = 0; j < n; j++) ck_assert_uint_eq(bulk[j], foolc__rng_u64(&b));
        /* The same state: the same key and counter, and the same next draws. */
        ck_assert_uint_eq(a.key, b.key);
        ck_assert_uint_eq(a.ctr, b.ctr);
        for (int j = 0; j < 5; j++) ck_assert_uint_eq(foolc__rng_u64(&a), foolc__rng_u64(&b));
        free(bulk);
    }
}
END_TEST

START_TEST(test_fill_normal_reference)
{
    /* Each pair (out[2k], out[2k + 1]) is Box-Muller on the stream's draw k:
     * u1 = ((z >> 40) + 1) 2^-24, angle 2 pi ((z >> 16) mod 2^24) 2^-24. */
    enum { N = 4001 };   /* odd: the last pair's sine is dropped */
    float *out = malloc(N * sizeof *out);
    uint64_t *z = malloc((N + 1) / 2 * sizeof *z);
    ck_assert(out && z);
    foolc__rng a, b;
    foolc__rng_init(&a, 42, 3, 9);
    b = a;
    foolc__rng_fill_normal(&a, out, N);
    foolc__rng_fill_u64(&b, z, (N + 1) / 2);
    ck_assert_uint_eq(a.ctr, b.ctr);   /* the stream advanced by ceil(n / 2) */
    for (size_t k = 0; k < (N + 1) / 2; k++) {
        double u1 = (double)((z[k] >> 40) + 1) * 0x1.0p-24;
        double ang = 6.283185307179586477 * (double)((z[k] >> 16) & 0xFFFFFFu) * 0x1.0p-24;
        double r = sqrt(-2 * log(u1)), c = r * cos(ang), s = r * sin(ang);
        ck_assert_msg(fabs(out[2 * k] - c) <= 1e-5 * (1 + fabs(c)), "draw %zu: %.9g vs %.9g",
                      2 * k, (double)out[2 * k], c);
        if (2 * k + 1 < N)
            ck_assert_msg(fabs(out[2 * k + 1] - s) <= 1e-5 * (1 + fabs(s)),
                          "draw %zu: %.9g vs %.9g", 2 * k + 1, (double)out[2 * k + 1], s);
    }
    free(out);
    free(z);
}
END_TEST

START_TEST(test_fill_normal_split)
{
    enum { N = 1000 };
    float whole[N], part[N];
    foolc__rng r0;
    foolc__rng_init(&r0, 7, 11, 13);
    foolc__rng a = r0;
    foolc__rng_fill_normal(&a, whole, N);
    /* Splits at even counts (whole pairs; crossing the internal chunk of 128 pairs too):
     * the same values, the stream at the same place. */
    const size_t splits[] = {0, 2, 6, 126, 256, 258, 500, 998, 1000};
    for (size_t t = 0; t < sizeof splits / sizeof splits[0]; t++) {
        size_t n1 = splits[t];
        foolc__rng b = r0;
        memset(part, 0xFF, sizeof part);
        foolc__rng_fill_normal(&b, part, n1);
        foolc__rng_fill_normal(&b, part + n1, N - n1);
        ck_assert_msg(!memcmp(whole, part, sizeof whole), "split at %zu", n1);
        ck_assert_uint_eq(a.ctr, b.ctr);
    }
    /* Several calls of two values each: the same as one call. */
    foolc__rng b = r0;
    for (size_t j = 0; j < N; j += 2) foolc__rng_fill_normal(&b, part + j, 2);
    ck_assert(!memcmp(whole, part, sizeof whole));
    /* An odd first part uses its last draw's cosine only: the next call starts on the
     * following draw, so its values are whole[n1 + 1 ...]. */
    const size_t odd[] = {1, 7, 255, 257, 999};
    for (size_t t = 0; t < sizeof odd / sizeof odd[0]; t++) {
        size_t n1 = odd[t];
        foolc__rng c = r0;
        foolc__rng_fill_normal(&c, part, n1);
        ck_assert(!memcmp(whole, part, n1 * sizeof(float)));
        foolc__rng_fill_normal(&c, part, N - n1 - 1);
        ck_assert_msg(!memcmp(whole + n1 + 1, part, (N - n1 - 1) * sizeof(float)),
                      "odd split at %zu", n1);
    }
}
END_TEST

START_TEST(test_fill_normal_moments)
{
    enum { N = 1000000 };
    float *v = malloc(N * sizeof *v);
    ck_assert_ptr_nonnull(v);
    foolc__rng r;
    foolc__rng_init(&r, 2026, 1, 5);
    foolc__rng_fill_normal(&r, v, N);
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    for (size_t j = 0; j < N; j++) {
        ck_assert_msg(isfinite(v[j]), "draw %zu: %g", j, (double)v[j]);
        s1 += v[j];
    }
    double mean = s1 / N;
    for (size_t j = 0; j < N; j++) {
        double x = v[j] - mean, x2 = x * x;
        s2 += x2;
        s3 += x2 * x;
        s4 += x2 * x2;
    }
    double var = s2 / N, kurt = (s4 / N) / (var * var);
    ck_assert_msg(fabs(mean) < 0.005, "mean %g", mean);
    ck_assert_msg(fabs(var - 1) < 0.01, "variance %g", var);
    ck_assert_msg(fabs(kurt - 3) < 0.05, "kurtosis %g", kurt);
    ck_assert_msg(fabs(s3 / N / (var * sqrt(var))) < 0.02, "skewness %g",
                  s3 / N / (var * sqrt(var)));
    free(v);
}
END_TEST

Suite *foolc_suite_rng_bulk(void);
Suite *foolc_suite_rng_bulk(void)
{
    Suite *s = suite_create("rng_bulk");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fill_u64_one_at_a_time);
    tcase_add_test(tc, test_fill_normal_reference);
    tcase_add_test(tc, test_fill_normal_split);
    tcase_add_test(tc, test_fill_normal_moments);
    suite_add_tcase(s, tc);
    return s;
}
