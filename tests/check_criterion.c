/* Criteria against hand-computed values; margins' gradients against finite differences;
 * custom callbacks; parameters; label-only evaluation. */
#include "testutil.h"
#include "linear.h"

START_TEST(test_misclassification)
{
    foolc_criterion *c;
    ck_ok(foolc_criterion_new("misclassification", &c));
    const float z[6] = {1, 3, 2, 5, 0, 4};   /* two rows of 3 */
    const int32_t y[2] = {1, 0};
    uint8_t adv[2];
    double m[2];
    float dm[6];
    ck_ok(foolc_criterion_eval(c, z, 2, 3, y, NULL, adv, m, dm));
    ck_assert_int_eq(adv[0], 0);
    ck_assert_double_eq(m[0], 1);              /* 3 - 2 */
    ck_assert_float_eq(dm[1], 1);
    ck_assert_float_eq(dm[2], -1);
    ck_assert_float_eq(dm[0], 0);
    ck_assert_int_eq(adv[1], 0);               /* row {5, 0, 4}: label 0 is the argmax */
    ck_assert_double_eq(m[1], 1);              /* 5 - 4 */
    const int32_t y2[1] = {2};                 /* label 2 in row {5, 0, 4}: misclassified */
    ck_ok(foolc_criterion_eval(c, z + 3, 1, 3, y2, NULL, adv, m, NULL));
    ck_assert_int_eq(adv[0], 1);
    ck_assert_double_eq(m[0], -1);
    foolc_criterion_free(c);
}
END_TEST

START_TEST(test_targeted_and_topk)
{
    foolc_criterion *t, *k;
    ck_ok(foolc_criterion_new("targeted", &t));
    ck_assert(foolc_criterion_needs_targets(t));
    const float z[4] = {1, 4, 3, 2};
    const int32_t y = 0, tgt = 2;
    uint8_t adv;
    double m;
    ck_ok(foolc_criterion_eval(t, z, 1, 4, &y, &tgt, &adv, &m, NULL));
    ck_assert_double_eq(m, 1);                 /* 4 - 3 */
    ck_assert_int_eq(adv, 0);
    ck_status(foolc_criterion_eval(t, z, 1, 4, &y, NULL, &adv, &m, NULL), FOOLC_E_INVALID);
    ck_ok(foolc_criterion_new("top-k", &k));
    ck_ok(foolc_criterion_set(k, "k", 2));
    const int32_t y3 = 3;                      /* z[3] = 2, others above: 4, 3 */
    ck_ok(foolc_criterion_eval(k, z, 1, 4, &y3, NULL, &adv, &m, NULL));
    ck_assert_double_eq(m, -1);                /* 2 - 3 (second best other) */
    ck_assert_int_eq(adv, 1);
    ck_ok(foolc_criterion_set(k, "k", 3));
    ck_ok(foolc_criterion_eval(k, z, 1, 4, &y3, NULL, &adv, &m, NULL));
    ck_assert_double_eq(m, 1);                 /* 2 - 1 */
    ck_assert_int_eq(adv, 0);
    ck_status(foolc_criterion_set(k, "k", 0), FOOLC_E_INVALID);
    ck_status(foolc_criterion_set(k, "k", 2.5), FOOLC_E_INVALID);
    ck_status(foolc_criterion_set(k, "p", 0.5), FOOLC_E_INVALID);
    foolc_criterion_free(t);
    foolc_criterion_free(k);
}
END_TEST

START_TEST(test_confidence)
{
    foolc_criterion *c;
    ck_ok(foolc_criterion_new("confidence", &c));
    ck_ok(foolc_criterion_set(c, "p", 0.8));
    /* softmax of {0, log 9} = {0.1, 0.9}: label 0, class 1 at 0.9 >= 0.8. */
    float z[2] = {0, (float)log(9.0)};
    int32_t y = 0;
    uint8_t adv;
    double m;
    ck_ok(foolc_criterion_eval(c, z, 1, 2, &y, NULL, &adv, &m, NULL));
    ck_assert_int_eq(adv, 1);
    ck_assert_double_eq_tol(m, fmax(-log(9.0), log(0.8) - log(0.9)), 1e-6);
    ck_ok(foolc_criterion_set(c, "p", 0.95));
    ck_ok(foolc_criterion_eval(c, z, 1, 2, &y, NULL, &adv, &m, NULL));
    ck_assert_int_eq(adv, 0);
    ck_assert_double_eq_tol(m, log(0.95) - log(0.9), 1e-6);
    /* Saturated logits stay finite (stable log-sum-exp). */
    float big[3] = {1e30f, -1e30f, 3e30f};
    ck_ok(foolc_criterion_eval(c, big, 1, 3, &y, NULL, &adv, &m, NULL));
    ck_assert(isfinite(m));
    ck_assert_int_eq(adv, 1);
    foolc_criterion_free(c);
}
END_TEST

/* The margin gradient of every built-in criterion matches central differences. */
START_TEST(test_margin_gradients)
{
    const char *names[4] = {"misclassification", "targeted", "top-k", "confidence"};
    uint64_t h = 5;
    for (int ci = 0; ci < 4; ci++) {
        foolc_criterion *c;
        ck_ok(foolc_criterion_new(names[ci], &c));
        if (ci == 2) ck_ok(foolc_criterion_set(c, "k", 2));
        for (int trial = 0; trial < 20; trial++) {
            float z[6], dz[6];
            for (int j = 0; j < 6; j++) z[j] = (float)(3 * lin_hash(h++));
            int32_t y = trial % 6, t = (trial + 2) % 6;
            double m;
            ck_ok(foolc_criterion_eval(c, z, 1, 6, &y, &t, NULL, &m, dz));
            for (int j = 0; j < 6; j++) {
                const float e = 1e-3f;
                float zp[6], zm[6];
                memcpy(zp, z, sizeof z);
                memcpy(zm, z, sizeof z);
                zp[j] += e;
                zm[j] -= e;
                double mp, mm;
                ck_ok(foolc_criterion_eval(c, zp, 1, 6, &y, &t, NULL, &mp, NULL));
                ck_ok(foolc_criterion_eval(c, zm, 1, 6, &y, &t, NULL, &mm, NULL));
                double fd = (mp - mm) / (2.0 * e);
                ck_assert_msg(fabs(fd - dz[j]) < 2e-2, "%s: d/dz%d %g vs %g", names[ci], j,
                              (double)dz[j], fd);
            }
        }
        foolc_criterion_free(c);
    }
}
END_TEST

static int custom_fn(void *user, const float *z, int32_t k, int32_t label, int32_t target,
                     double *margin, float *dm)
{
    (void)target;
    int *calls = user;
    (*calls)++;
    if (label < 0) return 1;
    *margin = (double)z[0] - 0.5;               /* adversarial when logit 0 drops below 0.5 */
    if (dm) for (int j = 0; j < k; j++) dm[j] = j == 0;
    return z[1] > 100 ? 9 : 0;
}

START_TEST(test_custom_and_labels)
{
    foolc_criterion *c, *m;
    int calls = 0;
    ck_ok(foolc_criterion_custom(custom_fn, &calls, &c));
    ck_assert_str_eq(foolc_criterion_name(c), "custom");
    float z[4] = {0.25f, 1, 2, 1000};
    int32_t y[2] = {0, 1};
    uint8_t adv[2];
    ck_ok(foolc_criterion_eval(c, z, 1, 2, y, NULL, adv, NULL, NULL));
    ck_assert_int_eq(adv[0], 1);
    ck_status(foolc_criterion_eval(c, z, 2, 2, y, NULL, adv, NULL, NULL), FOOLC_E_ORACLE);
    ck_assert_int_eq(calls, 3);
    ck_assert(!foolc_criterion_label_only(c));
    int32_t pred[2] = {0, 0};
    ck_status(foolc_criterion_eval_labels(c, pred, 2, y, NULL, adv), FOOLC_E_UNSUPPORTED);
    ck_ok(foolc_criterion_new("misclassification", &m));
    ck_ok(foolc_criterion_eval_labels(m, pred, 2, y, NULL, adv));
    ck_assert_int_eq(adv[0], 0);
    ck_assert_int_eq(adv[1], 1);
    foolc_criterion_free(m);
    ck_status(foolc_criterion_new("nope", &m), FOOLC_E_INVALID);
    ck_assert_ptr_null(m);
    int32_t bad = 7;
    ck_status(foolc_criterion_eval(c, z, 1, 2, &bad, NULL, adv, NULL, NULL), FOOLC_E_INVALID);
    foolc_criterion_free(c);
    foolc_criterion_free(NULL);
}
END_TEST

Suite *foolc_suite_criterion(void);
Suite *foolc_suite_criterion(void)
{
    Suite *s = suite_create("criterion");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_misclassification);
    tcase_add_test(tc, test_targeted_and_topk);
    tcase_add_test(tc, test_confidence);
    tcase_add_test(tc, test_margin_gradients);
    tcase_add_test(tc, test_custom_and_labels);
    suite_add_tcase(s, tc);
    return s;
}
