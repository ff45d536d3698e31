/* foolc__dec_nearest (attacks/decision/nearest.c) against a scan of every row with the exact
 * double distances: the same rows in the same order (ties: the lower row first), untargeted,
 * targeted and with the run's own inputs as the pool, with 4 x 4 tiles (partial at the edges)
 * and with runs of 16 coordinates; and the pool's summary kept by the attack (run->starts_sum):
 * filled by the first call, reused by the next, and after the pool changed and the summary was
 * cleared (what foolc_attack_set_starts does) the new pool's list. */
#include "testutil.h"
#include "attack_impl.h"
#include "decision/decision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NS = 5, NP = 700, K = 7, NCLS = 3 };

static uint64_t g_state;
static double unif(void)
{
    g_state = g_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(g_state >> 11) * 0x1.0p-53;
}

/* The k closest rows by a full scan, as the original dataset attack did it. */
static int32_t brute(const foolc__run *run, int32_t i, const float *px, const int32_t *py,
                     int32_t np, int self, int32_t k, foolc__pool_cand *out)
{
    int32_t c = 0;
    const float *x0 = run->x + (size_t)i * run->d;
    for (int32_t p = 0; p < np; p++) {
        if (self && p == i) continue;
        if (py && (run->targets ? py[p] != run->targets[i] : py[p] == run->labels[i]))
            continue;
        double s = 0;
        for (size_t j = 0; j < run->d; j++) {
            double v = (double)px[(size_t)p * run->d + j] - x0[j];
            s += v * v;
        }
        if (c == k && !(s < out[c - 1].dist)) continue;
        int32_t t = c < k ? c++ : k - 1;
        while (t > 0 && out[t - 1].dist > s) {
            out[t] = out[t - 1];
            t--;
        }
        out[t].dist = s;
        out[t].row = p;
    }
    return c;
}

static void check_lists(const foolc__run *run, const float *px, const int32_t *py, int32_t np,
                        int self)
{
    int32_t idx[NS], cnt[NS];
    foolc__pool_cand cs[NS * K], ref[K];
    for (int32_t a = 0; a < NS; a++) idx[a] = NS - 1 - a;   /* any order of samples */
    ck_ok(foolc__dec_nearest(run, idx, NS, K, px, py, np, self, cs, cnt));
    for (int32_t a = 0; a < NS; a++) {
        int32_t c = brute(run, idx[a], px, py, np, self, K, ref);
        ck_assert_int_eq(cnt[a], c);
        for (int32_t t = 0; t < c; t++) {
            ck_assert_int_eq(cs[a * K + t].row, ref[t].row);
            ck_assert(cs[a * K + t].dist == ref[t].dist);
        }
    }
}

START_TEST(test_nearest_against_scan)
{
    /* _i: 0 tiles of 10 x 13 pixels, 1 runs of 16 coordinates (no image shape). */
    enum { H = 10, W = 13, D = H * W };
    float *pool = malloc((size_t)NP * D * sizeof(float)), x[NS * D];
    int32_t py[NP], lab[NS], tgt[NS];
    ck_assert_ptr_nonnull(pool);
    g_state = 17 + (uint64_t)_i;
    /* Clustered rows (a few prototypes plus noise), so that the closest rows are close. */
    float proto[4][D];
    for (int c = 0; c < 4; c++)
        for (int j = 0; j < D; j++) proto[c][j] = (float)unif();
    for (int p = 0; p < NP; p++) {
        int c = p % 4;
        py[p] = (int32_t)(unif() * NCLS);
        for (int j = 0; j < D; j++)
            pool[p * D + j] = proto[c][j] + (float)(0.2 * (unif() - 0.5));
    }
    /* Exact ties: duplicates of row 3 further on. */
    memcpy(pool + 500 * D, pool + 3 * D, D * sizeof(float));
    memcpy(pool + 650 * D, pool + 3 * D, D * sizeof(float));
    py[500] = py[650] = py[3];
    for (int a = 0; a < NS; a++) {
        for (int j = 0; j < D; j++) x[a * D + j] = pool[3 * D + j] + (float)(0.05 * unif());
        lab[a] = (py[3] + 1 + a % 2) % NCLS;
        tgt[a] = py[3];
    }
    foolc__run run;
    memset(&run, 0, sizeof run);
    run.d = D;
    run.x = x;
    run.labels = lab;
    run.n = NS;
    run.shape = (foolc_shape){NS, _i ? 0 : 1, _i ? 0 : H, _i ? 0 : W};
    foolc__pool_sum sum = {0};
    run.starts_x = pool;
    run.starts_y = py;
    run.n_starts = NP;
    /* Without a summary, then filling it, then reading it. */
    check_lists(&run, pool, py, NP, 0);
    run.starts_sum = &sum;
    check_lists(&run, pool, py, NP, 0);
    ck_assert_ptr_nonnull(sum.v);
    ck_assert_int_eq(sum.n, NP);
    const double *kept = sum.v;
    check_lists(&run, pool, py, NP, 0);
    ck_assert_ptr_eq(sum.v, kept);   /* reused, not recomputed */
    /* Targeted: only rows of the target class. */
    run.targets = tgt;
    check_lists(&run, pool, py, NP, 0);
    run.targets = NULL;
    /* No labels: every row a candidate. */
    check_lists(&run, pool, NULL, NP, 0);
    /* The pool changes; the caller says so (foolc_attack_set_starts clears the summary). */
    for (int j = 0; j < D; j++) pool[42 * D + j] = x[j];
    py[42] = (lab[0] + 1) % NCLS;
    foolc__pool_sum_clear(&sum);
    check_lists(&run, pool, py, NP, 0);
    ck_assert_ptr_nonnull(sum.v);
    /* A smaller pool under the same summary: recomputed for its rows. */
    run.n_starts = 100;
    check_lists(&run, pool, py, 100, 0);
    ck_assert_int_eq(sum.n, 100);
    /* The run's own inputs as the pool (no summary used). */
    check_lists(&run, x, lab, NS, 1);
    foolc__pool_sum_clear(&sum);
    ck_assert_ptr_null(sum.v);
    free(pool);
}
END_TEST

Suite *foolc_suite_nearest(void);
Suite *foolc_suite_nearest(void)
{
    Suite *s = suite_create("nearest");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_nearest_against_scan, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
