/* The model wrapper: exact query counts, chunking, budgets, NaN/Inf and failing callbacks
 * turned into errors, derived decisions, and the seed protocol of value_and_grad. */
#include "testutil.h"
#include "linear.h"

static lin_model g_m;

static void setup(void) { lin_random(&g_m, 5, 3, 1.0, 3); }

START_TEST(test_new_errors)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m = (foolc_model *)1;
    ck_status(foolc_model_new(NULL, &m), FOOLC_E_INVALID);
    ck_assert_ptr_null(m);
    o.version = 99;
    ck_status(foolc_model_new(&o, &m), FOOLC_E_VERSION);
    o = lin_oracle(&g_m, 0, 0);
    ck_status(foolc_model_new(&o, &m), FOOLC_E_INVALID);
    o = lin_oracle(&g_m, 4, 0);
    o.lo = 1;
    ck_status(foolc_model_new(&o, &m), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "lo < hi"));
    o = lin_oracle(&g_m, 4, 0);
    o.scores = NULL;
    ck_status(foolc_model_new(&o, &m), FOOLC_E_INVALID);
    o = lin_oracle(&g_m, 4, 0);
    o.n_classes = 1;
    ck_status(foolc_model_new(&o, &m), FOOLC_E_INVALID);
    foolc_model_free(NULL);
}
END_TEST

START_TEST(test_counts_and_chunks)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    ck_assert_uint_eq(foolc_model_caps(m),
                      FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES | FOOLC_NEEDS_DECISION);
    float x[11 * 5], z[11 * 3], zr[3];
    for (int i = 0; i < 55; i++) x[i] = (float)(0.5 + 0.5 * lin_hash((uint64_t)i));
    ck_ok(foolc_model_scores(m, x, 11, z));
    ck_assert_int_eq(g_m.calls, 3);                  /* 4 + 4 + 3 */
    for (int i = 0; i < 11; i++) {
        lin_logits(&g_m, x + 5 * i, zr);
        for (int j = 0; j < 3; j++) ck_assert_float_eq(z[3 * i + j], zr[j]);
    }
    int32_t lab[11];
    ck_ok(foolc_model_decision(m, x, 11, lab));
    for (int i = 0; i < 11; i++) {
        int best = 0;
        for (int j = 1; j < 3; j++) if (z[3 * i + j] > z[3 * i + best]) best = j;
        ck_assert_int_eq(lab[i], best);
    }
    foolc_counts c = foolc_model_counts(m);
    ck_assert_uint_eq(c.forward, 11);
    ck_assert_uint_eq(c.decided, 11);
    ck_assert_uint_eq(c.backward, 0);
    foolc_model_reset_counts(m);
    c = foolc_model_counts(m);
    ck_assert_uint_eq(c.forward + c.decided + c.backward, 0);
    ck_status(foolc_model_scores(m, x, 0, z), FOOLC_E_INVALID);
    ck_status(foolc_model_scores(m, NULL, 1, z), FOOLC_E_INVALID);
    foolc_model_free(m);
}
END_TEST

typedef struct loss_rec { int calls; int32_t firsts[8]; } loss_rec;

/* loss = sum of logits: dloss/dlogits = 1, so grad = sum_j W[j]. */
static int sum_loss(void *user, int32_t first, const float *z, int32_t n, int32_t k, float *dz,
                    float *loss)
{
    loss_rec *r = user;
    if (r->calls < 8) r->firsts[r->calls] = first;
    r->calls++;
    for (int32_t i = 0; i < n; i++) {
        double s = 0;
        for (int32_t j = 0; j < k; j++) { dz[i * k + j] = 1; s += z[i * k + j]; }
        if (loss) loss[i] = (float)s;
    }
    return 0;
}

static int failing_loss(void *user, int32_t first, const float *z, int32_t n, int32_t k,
                        float *dz, float *loss)
{
    (void)user, (void)first, (void)z, (void)n, (void)k, (void)dz, (void)loss;
    return 1;
}

START_TEST(test_value_and_grad)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    float x[6 * 5], g[6 * 5], loss[6], z[6 * 3];
    for (int i = 0; i < 30; i++) x[i] = 0.5f;
    loss_rec r = {0, {0}};
    ck_ok(foolc_model_value_and_grad(m, x, 6, sum_loss, &r, z, loss, g));
    ck_assert_int_eq(r.calls, 2);
    ck_assert_int_eq(r.firsts[0], 0);
    ck_assert_int_eq(r.firsts[1], 4);
    for (int i = 0; i < 6; i++) {
        double s = 0;
        for (int j = 0; j < 3; j++) s += z[3 * i + j];
        ck_assert_float_eq_tol(loss[i], (float)s, 1e-5f);
        for (int a = 0; a < 5; a++)
            ck_assert_float_eq_tol(g[5 * i + a],
                                   (float)(g_m.W[0][a] + g_m.W[1][a] + g_m.W[2][a]), 1e-5f);
    }
    foolc_counts c = foolc_model_counts(m);
    ck_assert_uint_eq(c.forward, 6);
    ck_assert_uint_eq(c.backward, 6);
    ck_ok(foolc_model_value_and_grad(m, x, 6, sum_loss, &r, NULL, NULL, g));  /* NULL logits */
    ck_status(foolc_model_value_and_grad(m, x, 6, failing_loss, NULL, z, NULL, g),
              FOOLC_E_ORACLE);
    g_m.seed_twice = 1;
    ck_status(foolc_model_value_and_grad(m, x, 2, sum_loss, &r, z, NULL, g), FOOLC_E_ORACLE);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "seed 2 times"));
    g_m.seed_twice = 0;
    foolc_model_free(m);

    o = lin_oracle(&g_m, 4, 1);                         /* decision-only */
    ck_ok(foolc_model_new(&o, &m));
    ck_assert_uint_eq(foolc_model_caps(m), FOOLC_NEEDS_DECISION);
    ck_status(foolc_model_value_and_grad(m, x, 1, sum_loss, &r, z, NULL, g),
              FOOLC_E_UNSUPPORTED);
    ck_status(foolc_model_scores(m, x, 1, z), FOOLC_E_UNSUPPORTED);
    foolc_model_free(m);
}
END_TEST

START_TEST(test_budget)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    ck_ok(foolc_model_set_budget(m, 10));
    ck_assert_uint_eq(foolc_model_budget(m), 10);
    float x[8 * 5] = {0}, z[8 * 3];
    int32_t lab[8];
    ck_ok(foolc_model_scores(m, x, 8, z));
    ck_status(foolc_model_scores(m, x, 3, z), FOOLC_E_BUDGET);   /* refused whole */
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "budget of 10"));
    ck_assert_uint_eq(foolc_model_counts(m).forward, 8);
    ck_ok(foolc_model_decision(m, x, 2, lab));
    ck_status(foolc_model_decision(m, x, 1, lab), FOOLC_E_BUDGET);
    foolc_model_free(m);
}
END_TEST

START_TEST(test_nonfinite_and_failures)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    float x[6 * 5] = {0}, z[6 * 3], g[6 * 5];
    loss_rec r = {0, {0}};
    g_m.nan_after = 1;
    ck_ok(foolc_model_scores(m, x, 4, z));
    ck_status(foolc_model_scores(m, x, 6, z), FOOLC_E_NONFINITE);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "sample 3"));   /* last of the 1st chunk */
    ck_status(foolc_model_value_and_grad(m, x, 2, sum_loss, &r, z, NULL, g), FOOLC_E_NONFINITE);
    int32_t lab[2];
    ck_status(foolc_model_decision(m, x, 2, lab), FOOLC_E_NONFINITE);
    g_m.nan_after = 0;
    g_m.calls = 0;
    g_m.fail_after = 1;
    ck_ok(foolc_model_scores(m, x, 2, z));
    ck_status(foolc_model_scores(m, x, 2, z), FOOLC_E_ORACLE);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "returned 7"));
    g_m.fail_after = 0;
    foolc_model_free(m);
}
END_TEST

Suite *foolc_suite_model(void);
Suite *foolc_suite_model(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_new_errors);
    tcase_add_test(tc, test_counts_and_chunks);
    tcase_add_test(tc, test_value_and_grad);
    tcase_add_test(tc, test_budget);
    tcase_add_test(tc, test_nonfinite_and_failures);
    suite_add_tcase(s, tc);
    return s;
}
