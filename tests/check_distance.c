/* Distances against hand-computed values; projections onto ball ∩ box: in the set,
 * idempotent, and optimal by the variational inequality and a brute-force grid in 2-D. */
#include "testutil.h"
#include "linear.h"

START_TEST(test_distances_by_hand)
{
    const float a[4] = {0, 0.5f, 1, 0.25f}, b[4] = {0, 0.25f, 0.5f, 1};
    ck_assert_double_eq(foolc_distance(FOOLC_L0, a, b, 4), 3);
    ck_assert_double_eq_tol(foolc_distance(FOOLC_L1, a, b, 4), 0.25 + 0.5 + 0.75, 1e-12);
    ck_assert_double_eq_tol(foolc_distance(FOOLC_L2, a, b, 4),
                            sqrt(0.0625 + 0.25 + 0.5625), 1e-12);
    ck_assert_double_eq_tol(foolc_distance(FOOLC_LINF, a, b, 4), 0.75, 1e-12);
    ck_assert_double_eq_tol(foolc_distance(FOOLC_MSE, a, b, 4), (0.0625 + 0.25 + 0.5625) / 4,
                            1e-12);
    ck_assert_double_eq(foolc_distance(FOOLC_L2, a, a, 4), 0);
    ck_assert(isnan(foolc_distance(FOOLC_NORM_COUNT, a, b, 4)));
    ck_assert(isnan(foolc_distance(FOOLC_L2, NULL, b, 4)));
}
END_TEST

START_TEST(test_norm_names)
{
    foolc_norm p;
    for (int i = 0; i < FOOLC_NORM_COUNT; i++) {
        ck_ok(foolc_norm_parse(foolc_norm_name((foolc_norm)i), &p));
        ck_assert_int_eq(p, i);
    }
    ck_ok(foolc_norm_parse("Inf", &p));
    ck_assert_int_eq(p, FOOLC_LINF);
    ck_status(foolc_norm_parse("l3", &p), FOOLC_E_INVALID);
    ck_assert_ptr_null(foolc_norm_name(FOOLC_NORM_COUNT));
}
END_TEST

static double dot_diff(const float *v, const float *u, const float *w, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++) s += ((double)v[i] - u[i]) * ((double)w[i] - u[i]);
    return s;
}

/* For random v: u = P(v) is in the ball and box, P(u) = u, and (v-u).(w-u) <= 0 for random
 * feasible w (the optimality condition of a projection onto a convex set). */
START_TEST(test_projection_properties)
{
    const foolc_norm norms[3] = {FOOLC_L1, FOOLC_L2, FOOLC_LINF};
    const int dims[3] = {2, 3, 17};
    uint64_t h = 1;
    for (int ni = 0; ni < 3; ni++)
        for (int di = 0; di < 3; di++)
            for (int trial = 0; trial < 40; trial++) {
                int d = dims[di];
                float x0[17], v[17], u[17], u2[17], w[17];
                for (int i = 0; i < d; i++) {
                    x0[i] = (float)(0.5 + 0.5 * lin_hash(h++));
                    v[i] = (float)(x0[i] + 1.5 * lin_hash(h++));
                }
                double eps = 0.05 + 0.5 * (1 + lin_hash(h++));
                ck_ok(foolc_project(norms[ni], x0, v, (size_t)d, eps, 0, 1, u));
                double nu = foolc_distance(norms[ni], x0, u, (size_t)d);
                ck_assert_msg(nu <= eps * (1 + 1e-5) + 1e-6, "norm %d: %g > eps %g", ni, nu, eps);
                for (int i = 0; i < d; i++) ck_assert(u[i] >= 0 && u[i] <= 1);
                ck_ok(foolc_project(norms[ni], x0, u, (size_t)d, eps, 0, 1, u2));
                for (int i = 0; i < d; i++) ck_assert_float_eq_tol(u[i], u2[i], 1e-5f);
                int tested = 0;
                for (int r = 0; r < 400 && tested < 60; r++) {
                    for (int i = 0; i < d; i++) w[i] = (float)(0.5 + 0.5 * lin_hash(h++));
                    if (foolc_distance(norms[ni], x0, w, (size_t)d) > eps) continue;
                    tested++;
                    ck_assert_msg(dot_diff(v, u, w, d) <= 1e-4, "norm %d d %d: not optimal",
                                  ni, d);
                }
            }
}
END_TEST

/* In 2-D, the projection matches a brute-force search over a fine grid of the set. */
START_TEST(test_projection_brute_force)
{
    const foolc_norm norms[3] = {FOOLC_L1, FOOLC_L2, FOOLC_LINF};
    uint64_t h = 99;
    for (int ni = 0; ni < 3; ni++)
        for (int trial = 0; trial < 10; trial++) {
            float x0[2] = {(float)(0.5 + 0.45 * lin_hash(h++)), (float)(0.5 + 0.45 * lin_hash(h++))};
            float v[2] = {(float)(x0[0] + 2 * lin_hash(h++)), (float)(x0[1] + 2 * lin_hash(h++))};
            double eps = 0.1 + 0.3 * (1 + lin_hash(h++)), best = INFINITY;
            float u[2];
            ck_ok(foolc_project(norms[ni], x0, v, 2, eps, 0, 1, u));
            const int G = 600;
            for (int a = 0; a <= G; a++)
                for (int b = 0; b <= G; b++) {
                    float w[2] = {(float)a / G, (float)b / G};
                    if (foolc_distance(norms[ni], x0, w, 2) > eps) continue;
                    double dd = hypot((double)w[0] - v[0], (double)w[1] - v[1]);
                    if (dd < best) best = dd;
                }
            double got = hypot((double)u[0] - v[0], (double)u[1] - v[1]);
            ck_assert_msg(got <= best + 1e-6, "norm %d: projection %g worse than grid %g", ni,
                          got, best);
            ck_assert_msg(got >= best - 4.0 / G, "norm %d: grid %g far below %g?", ni, best, got);
        }
}
END_TEST

START_TEST(test_projection_errors)
{
    float x0[2] = {0.5f, 0.5f}, v[2] = {1, 1}, u[2];
    ck_status(foolc_project(FOOLC_L2, x0, v, 2, -1, 0, 1, u), FOOLC_E_INVALID);
    ck_status(foolc_project(FOOLC_L2, x0, v, 2, 0.1, 1, 0, u), FOOLC_E_INVALID);
    ck_status(foolc_project(FOOLC_L0, x0, v, 2, 0.1, 0, 1, u), FOOLC_E_INVALID);
    ck_status(foolc_project(FOOLC_L2, NULL, v, 2, 0.1, 0, 1, u), FOOLC_E_INVALID);
    /* Closed forms: L2 without active box scales, L1 soft-thresholds. */
    float a0[2] = {0.5f, 0.5f}, a1[2] = {0.8f, 0.9f};
    ck_ok(foolc_project(FOOLC_L2, a0, a1, 2, 0.25, 0, 1, u));
    ck_assert_float_eq_tol(u[0], 0.5f + 0.3f * 0.5f, 1e-6f);
    ck_assert_float_eq_tol(u[1], 0.5f + 0.4f * 0.5f, 1e-6f);
    ck_ok(foolc_project(FOOLC_L1, a0, a1, 2, 0.3, 0, 1, u));
    ck_assert_float_eq_tol(u[0], 0.6f, 1e-6f);   /* threshold 0.2: 0.1 and 0.2 */
    ck_assert_float_eq_tol(u[1], 0.7f, 1e-6f);
}
END_TEST

Suite *foolc_suite_distance(void);
Suite *foolc_suite_distance(void)
{
    Suite *s = suite_create("distance");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_distances_by_hand);
    tcase_add_test(tc, test_norm_names);
    tcase_add_test(tc, test_projection_properties);
    tcase_add_test(tc, test_projection_brute_force);
    tcase_add_test(tc, test_projection_errors);
    suite_add_tcase(s, tc);
    return s;
}
