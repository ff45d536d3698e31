/* foolc__dec_nearest (attacks/decision/nearest.c) against a scan of every row with the exact
 * double distances: the same rows in the same order (ties: the lower row first), untargeted,
 * targeted and with the run's own inputs as the pool, with 4 x 4 tiles (partial at the edges)
 * and with runs of 16 coordinates; and the pool's summary kept by the attack (run->starts_sum):
 * filled by the first call, reused by the next, and after the pool changed and the summary was
 * cleared (what foolc_attack_set_starts does) the new pool's list. Then the kept pools of
 * images (DCT coefficients, the pool's order, chunk boxes, 8-bit codes) on pools built to
 * defeat each bound: rows that differ from a sample only in frequencies the coefficients leave
 * out, or by less than a quantisation step, exact duplicates (ties), constant rows, rows and a
 * sample too large for the float bounds, a target class with fewer rows than k, several
 * channels, more samples than one group, and k = 1 and k = 50; and every allocation of a
 * kept pool's first call failing in turn: an error or the right lists, and the next call
 * right; and a kept pool's codes built over several calls for different samples. */
#include "testutil.h"
#include "attack_impl.h"
#include "internal.h"
#include "decision/decision.h"

#include <math.h>
#include <stdint.h>
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

/* The lists cs, cnt of foolc__dec_nearest for samples idx (m, k per sample) are the scan's,
 * row for row and bit for bit. */
static void same_as_scan(const foolc__run *run, const int32_t *idx, int32_t m, int32_t k,
                         const float *px, const int32_t *py, int32_t np, int self,
                         const foolc__pool_cand *cs, const int32_t *cnt)
{
    foolc__pool_cand *ref = malloc((size_t)k * sizeof *ref);
    ck_assert_ptr_nonnull(ref);
    for (int32_t a = 0; a < m; a++) {
        int32_t c = brute(run, idx[a], px, py, np, self, k, ref);
        ck_assert_int_eq(cnt[a], c);
        for (int32_t t = 0; t < c; t++) {
            ck_assert_int_eq(cs[(size_t)a * k + t].row, ref[t].row);
            ck_assert(cs[(size_t)a * k + t].dist == ref[t].dist);
        }
    }
    free(ref);
}

static void check_lists(const foolc__run *run, const float *px, const int32_t *py, int32_t np,
                        int self)
{
    int32_t idx[NS], cnt[NS];
    foolc__pool_cand cs[NS * K];
    for (int32_t a = 0; a < NS; a++) idx[a] = NS - 1 - a;   /* any order of samples */
    ck_ok(foolc__dec_nearest(run, idx, NS, K, px, py, np, self, cs, cnt));
    same_as_scan(run, idx, NS, K, px, py, np, self, cs, cnt);
}

/* A run over the samples x (n of d values, labels lab, shape sh) with the pool px, py (np) as the
 * caller's starting points; no summary yet (starts_sum NULL). */
static foolc__run pool_run(const float *x, const int32_t *lab, int32_t n, size_t d,
                           foolc_shape sh, const float *px, const int32_t *py, int32_t np)
{
    foolc__run run;
    memset(&run, 0, sizeof run);
    run.d = d;
    run.x = x;
    run.labels = lab;
    run.n = n;
    run.shape = sh;
    run.starts_x = px;
    run.starts_y = py;
    run.n_starts = np;
    return run;
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
    foolc__run run = pool_run(x, lab, NS, D, (foolc_shape){NS, _i ? 0 : 1, _i ? 0 : H, _i ? 0 : W},
                              pool, py, NP);
    foolc__pool_sum sum = {0};
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

/* A kept pool of images (the DCT way) against the scan. _i: 0 one channel of 16 x 16, 1
 * three channels of 9 x 11, 2 one channel of 28 x 28 with k = 1, 3 the same with k = 50. */
START_TEST(test_nearest_kept_adversarial)
{
    static const int C[] = {1, 3, 1, 1}, H[] = {16, 9, 28, 28}, W[] = {16, 11, 28, 28};
    static const int KK[] = {7, 7, 1, 50};
    enum { P = 2500, M = 40, KMAX = 50 };
    int c = C[_i], h = H[_i], w = W[_i], k = KK[_i];
    size_t d = (size_t)c * (size_t)h * (size_t)w;
    float *pool = malloc((size_t)P * d * sizeof(float)), *x = malloc((size_t)M * d * sizeof(float));
    int32_t *py = malloc(P * sizeof(int32_t)), lab[M], tgt[M], idx[M], cnt[M];
    foolc__pool_cand *cs = malloc((size_t)M * KMAX * sizeof *cs);
    ck_assert(pool && x && py && cs);
    g_state = 1000 + (uint64_t)_i;
    /* Smooth images: a few random low-frequency blobs per prototype, plus noise. */
    enum { NPROTO = 12 };
    float *proto = malloc(NPROTO * d * sizeof(float));
    ck_assert_ptr_nonnull(proto);
    for (int q = 0; q < NPROTO; q++)
        for (int ch = 0; ch < c; ch++) {
            double fx = 1 + 3 * unif(), fy = 1 + 3 * unif(), ph = 6.3 * unif(), amp = unif();
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++)
                    proto[(size_t)q * d + ((size_t)ch * h + y) * w + xx] =
                        (float)(0.5 + 0.4 * amp * sin(fx * xx / w * 3.1 + fy * y / h * 3.1 + ph));
        }
    for (int p = 0; p < P; p++) {
        int q = (int)(unif() * NPROTO);
        py[p] = (int32_t)(unif() * 5);
        for (size_t j = 0; j < d; j++)
            pool[(size_t)p * d + j] = proto[(size_t)q * d + j] + (float)(0.1 * (unif() - 0.5));
    }
    for (int a = 0; a < M; a++) {
        int p = (int)(unif() * P);
        for (size_t j = 0; j < d; j++)
            x[(size_t)a * d + j] = pool[(size_t)p * d + j] + (float)(0.05 * (unif() - 0.5));
        lab[a] = (py[p] + 1) % 5;
        tgt[a] = a % 7 == 0 ? 4 : (lab[a] + 1) % 5;   /* class 4: made rare below */
        idx[a] = M - 1 - a;
    }
    for (int p = 0; p < P; p++)   /* class 4: only a few rows (fewer than k for some) */
        if (py[p] == 4 && p % 97) py[p] = 3;
    /* Rows against the bounds, near sample 0 (a label of 0 .. 3 but its own). */
    const float *x0 = x + (size_t)(M - 1) * d;   /* idx[0] = M - 1 */
    int32_t other = lab[M - 1] == 0 ? 1 : 0;
    for (int r = 0; r < 6; r++) {   /* x0 plus a checkerboard: high frequencies only */
        float *row = pool + (size_t)(100 + r) * d;
        for (size_t j = 0; j < d; j++)
            row[j] = x0[j] + (float)(0.02 * (r + 1) *
                                     (((j % (size_t)w) + j / (size_t)w) % 2 ? 1 : -1));
        py[100 + r] = other;
    }
    for (int r = 0; r < 4; r++) {   /* x0 moved by less than a quantisation step */
        float *row = pool + (size_t)(200 + r) * d;
        for (size_t j = 0; j < d; j++)
            row[j] = x0[j] + (float)(0.0007 * (r + 1) * (j % 3 ? 1 : -1));
        py[200 + r] = other;
    }
    for (int r = 0; r < 3; r++) {   /* exact duplicates: ties, the lower row first */
        memcpy(pool + (size_t)(300 + 700 * r) * d, pool + (size_t)200 * d, d * sizeof(float));
        py[300 + 700 * r] = other;
    }
    for (size_t j = 0; j < d; j++) pool[(size_t)400 * d + j] = 0.5f;   /* a constant row */
    py[400] = other;
    for (size_t j = 0; j < d; j++) pool[(size_t)401 * d + j] = x0[j];  /* and one far off */
    pool[(size_t)401 * d + 3] = 1e18f;   /* |p|^2 beyond the float bounds: never pruned */
    py[401] = other;
    /* One sample too large for the float bounds itself. */
    x[(size_t)5 * d + 1] = 3e17f;
    foolc__run run = pool_run(x, lab, M, d, (foolc_shape){M, c, h, w}, pool, py, P);
    foolc__pool_sum sum = {0};
    run.starts_sum = &sum;
    for (int mode = 0; mode < 4; mode++) {   /* untargeted twice (fill, reuse), targeted, none */
        run.targets = mode == 2 ? tgt : NULL;
        const int32_t *lbl = mode == 3 ? NULL : py;
        ck_ok(foolc__dec_nearest(&run, idx, M, k, pool, lbl, P, 0, cs, cnt));
        ck_assert_ptr_nonnull(sum.v);
        ck_assert_int_eq(sum.n, P);
        ck_assert(sum.v[0] == 2.0);   /* nearest.c's header: the DCT layout (NEAR_DCT) */
        same_as_scan(&run, idx, M, k, pool, lbl, P, 0, cs, cnt);
    }
    /* Sample 0's closest rows are the planted ones, ties in row order. */
    run.targets = NULL;
    ck_ok(foolc__dec_nearest(&run, idx, 1, k, pool, py, P, 0, cs, cnt));
    ck_assert_int_ge(cnt[0], 1);
    ck_assert(cs[0].row == 200);
    if (k >= 3) {
        ck_assert_int_eq(cs[1].row, 300);
        ck_assert_int_eq(cs[2].row, 1000);
    }
    foolc__pool_sum_clear(&sum);
    free(proto);
    free(pool);
    free(x);
    free(py);
    free(cs);
}
END_TEST

/* Each allocation of the call that fills a kept pool's summary failing in turn: the call
 * fails with FOOLC_E_NOMEM or gives the scan's lists (a summary it could not have is not an
 * error), and the next call, without failures, gives them. */
START_TEST(test_nearest_kept_alloc)
{
    enum { H = 16, W = 16, D = H * W, P = 600, M = 3, KN = 5 };
    float *pool = malloc((size_t)P * D * sizeof(float)), x[M * D];
    int32_t py[P], lab[M], idx[M], cnt[M];
    foolc__pool_cand cs[M * KN];
    ck_assert_ptr_nonnull(pool);
    g_state = 77;
    for (int p = 0; p < P; p++) {
        py[p] = p % 3;
        for (int j = 0; j < D; j++)
            pool[p * D + j] = (float)(0.5 + 0.3 * sin(0.1 * (p % 17) * j) + 0.05 * unif());
    }
    for (int a = 0; a < M; a++) {
        for (int j = 0; j < D; j++) x[a * D + j] = pool[(5 + a) * D + j] + (float)(0.02 * unif());
        lab[a] = a % 3;
        idx[a] = a;
    }
    foolc__run run = pool_run(x, lab, M, D, (foolc_shape){M, 1, H, W}, pool, py, P);
    uint64_t n;
    for (n = 1; n < 200; n++) {
        foolc__pool_sum sum = {0};
        run.starts_sum = &sum;
        foolc__alloc_fail_at(n);
        foolc_status st = foolc__dec_nearest(&run, idx, M, KN, pool, py, P, 0, cs, cnt);
        uint64_t made = foolc__alloc_fail_at(0);
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                ck_ok(foolc__dec_nearest(&run, idx, M, KN, pool, py, P, 0, cs, cnt));
                ck_assert(sum.v && sum.v[0] == 2.0);   /* the DCT layout, filled */
            } else if (st != FOOLC_OK) {
                ck_assert_int_eq(st, FOOLC_E_NOMEM);
                continue;
            }
            same_as_scan(&run, idx, M, KN, pool, py, P, 0, cs, cnt);
        }
        foolc__pool_sum_clear(&sum);
        if (made < n) break;   /* every allocation reached */
    }
    ck_assert_int_gt(n, 5);
    ck_assert_int_lt(n, 200);
    free(pool);
}
END_TEST

/* The codes of a kept pool are built lazily, each row's the first time a call needs them:
 * a summary filled for some samples, then calls for other samples (rows with codes and rows
 * without), then the first samples again, each against the scan; the summary stays the same
 * block, its payload at a multiple of 2 MB (it is that large: its pages advised huge). Odd
 * sides (13 x 11), so the folded DCT has a middle row and column. */
START_TEST(test_nearest_kept_lazy)
{
    enum { H = 13, W = 11, D = H * W, P = 4000, M = 24, KN = 6 };
    float *pool = malloc((size_t)P * D * sizeof(float));
    float *x = malloc((size_t)M * D * sizeof(float));
    int32_t *py = malloc(P * sizeof(int32_t)), lab[M], idx[M], cnt[M];
    foolc__pool_cand cs[M * KN];
    ck_assert(pool && x && py);
    g_state = 4242;
    for (int p = 0; p < P; p++) {
        double f = 0.2 + 0.05 * (p % 23), ph = 0.3 * (p % 7);
        py[p] = p % 4;
        for (int j = 0; j < D; j++)
            pool[(size_t)p * D + j] =
                (float)(0.5 + 0.3 * sin(f * (j % W) + ph) * cos(0.4 * (j / W)) + 0.04 * unif());
    }
    for (int a = 0; a < M; a++) {
        int p = (int)(unif() * P);
        for (int j = 0; j < D; j++)
            x[(size_t)a * D + j] = pool[(size_t)p * D + j] + (float)(0.03 * (unif() - 0.5));
        lab[a] = py[p];
        idx[a] = a;
    }
    foolc__run run = pool_run(x, lab, M, D, (foolc_shape){M, 1, H, W}, pool, py, P);
    foolc__pool_sum sum = {0};
    run.starts_sum = &sum;
    const double *kept = NULL;
    /* Samples 0 .. 7 (fill), 8 .. 23, 16 .. 23 again, 0 .. 7 again, all 24. */
    static const int32_t first[] = {0, 8, 16, 0, 0}, count[] = {8, 16, 8, 8, 24};
    for (int call = 0; call < 5; call++) {
        int32_t m = count[call];
        ck_ok(foolc__dec_nearest(&run, idx + first[call], m, KN, pool, py, P, 0, cs, cnt));
        ck_assert(sum.v && sum.v[0] == 2.0 && sum.n == P);
        if (!kept) {
            kept = sum.v;
            uintptr_t at = (uintptr_t)(sum.v + (size_t)sum.v[2]);
            ck_assert_uint_eq(at % ((uintptr_t)2 << 20), 0);
        }
        ck_assert_ptr_eq(sum.v, kept);   /* one summary, its codes growing */
        same_as_scan(&run, idx + first[call], m, KN, pool, py, P, 0, cs, cnt);
    }
    foolc__pool_sum_clear(&sum);
    free(pool);
    free(x);
    free(py);
}
END_TEST

Suite *foolc_suite_nearest(void);
Suite *foolc_suite_nearest(void)
{
    Suite *s = suite_create("nearest");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_nearest_against_scan, 0, 2);
    tcase_add_loop_test(tc, test_nearest_kept_adversarial, 0, 4);
    tcase_add_test(tc, test_nearest_kept_alloc);
    tcase_add_test(tc, test_nearest_kept_lazy);
    suite_add_tcase(s, tc);
    return s;
}
