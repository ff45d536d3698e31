/* Distances against hand-computed values; projections onto ball ∩ box: in the set,
 * idempotent, and optimal by the variational inequality and a brute-force grid in 2-D. */
#include "testutil.h"
#include "linear.h"
#include "numeric.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- the projections against each other's reference ---- */

static double clampd(double v, double a, double b) { return v < a ? a : v > b ? b : v; }

/* Uniform in [0, 1) from the counter *st. */
static double test_uniform(uint64_t *st) { return 0.5 + 0.5 * lin_hash((*st)++); }

/* The reference: the same projections by bisection on the scale (L2) or threshold (L1), then
 * the closed form on the active set bracketed (foolc_project's former implementation). */
/* Coordinate i of the L2 solution for scale t: clip(t*delta, a, b). */
static double ref_l2_norm2_at(const float *x0, const float *v, size_t len, float lo, float hi,
                          double t)
{
    double s = 0;
    for (size_t i = 0; i < len; i++) {
        double e = clampd(t * ((double)v[i] - x0[i]), (double)lo - x0[i], (double)hi - x0[i]);
        s += e * e;
    }
    return s;
}

/* The scale t in (0, 1] at which ||clip(t*delta, a, b)||_2 = eps: bisection to bracket the
 * active set, then the closed form on that set. */
static double ref_l2_scale(const float *x0, const float *v, size_t len, float lo, float hi,
                       double eps)
{
    double tl = 0, th = 1, e2 = eps * eps;
    for (int it = 0; it < 200 && th - tl > 1e-17; it++) {
        double tm = 0.5 * (tl + th);
        if (ref_l2_norm2_at(x0, v, len, lo, hi, tm) > e2) th = tm; else tl = tm;
    }
    /* On the active set at tl: clipped coordinates contribute C, free ones t^2 * S. */
    double S = 0, C = 0, tm = 0.5 * (tl + th);
    for (size_t i = 0; i < len; i++) {
        double dl = (double)v[i] - x0[i], a = (double)lo - x0[i], b = (double)hi - x0[i];
        double e = tm * dl;
        if (e < a) C += a * a; else if (e > b) C += b * b; else S += dl * dl;
    }
    if (S > 0 && e2 > C) {
        double t = sqrt((e2 - C) / S);
        if (t >= tl && t <= th) return t;
    }
    return tl;
}

static double ref_l1_norm_at(const float *x0, const float *v, size_t len, float lo, float hi,
                         double lam)
{
    double s = 0;
    for (size_t i = 0; i < len; i++) {
        double dl = (double)v[i] - x0[i];
        double m = fabs(dl) - lam;
        if (m <= 0) continue;
        double e = clampd(dl > 0 ? m : -m, (double)lo - x0[i], (double)hi - x0[i]);
        s += fabs(e);
    }
    return s;
}

/* The threshold lam >= 0 at which ||clip(soft(delta, lam), a, b)||_1 = eps. */
static double ref_l1_threshold(const float *x0, const float *v, size_t len, float lo, float hi,
                           double eps)
{
    double ll = 0, lh = 0;
    for (size_t i = 0; i < len; i++) {
        double a = fabs((double)v[i] - x0[i]);
        if (a > lh) lh = a;
    }
    for (int it = 0; it < 200 && lh - ll > 1e-17 * (1 + lh); it++) {
        double lm = 0.5 * (ll + lh);
        if (ref_l1_norm_at(x0, v, len, lo, hi, lm) > eps) ll = lm; else lh = lm;
    }
    /* Closed form on the active set: sum over free coordinates (|d| - lam) + clipped = eps. */
    double lm = 0.5 * (ll + lh), F = 0, C = 0;
    size_t nfree = 0;
    for (size_t i = 0; i < len; i++) {
        double dl = (double)v[i] - x0[i], m = fabs(dl) - lm;
        if (m <= 0) continue;
        double cap = dl > 0 ? (double)hi - x0[i] : x0[i] - (double)lo;
        if (m >= cap) C += cap; else { F += fabs(dl); nfree++; }
    }
    if (nfree) {
        double lam = (F + C - eps) / (double)nfree;
        if (lam >= ll && lam <= lh) return lam;
    }
    return lh;
}


static void ref_project(foolc_norm p, const float *x0, const float *v, size_t len, double eps,
                        float lo, float hi, float *out)
{
    if (p == FOOLC_LINF) {
        for (size_t i = 0; i < len; i++)
            out[i] = (float)clampd(v[i], fmax((double)lo, x0[i] - eps),
                                   fmin((double)hi, x0[i] + eps));
    } else if (p == FOOLC_L2) {
        double t = 1;
        if (ref_l2_norm2_at(x0, v, len, lo, hi, 1) > eps * eps)
            t = ref_l2_scale(x0, v, len, lo, hi, eps);
        for (size_t i = 0; i < len; i++)
            out[i] = (float)clampd(x0[i] + t * ((double)v[i] - x0[i]), lo, hi);
    } else {
        double lam = 0;
        if (ref_l1_norm_at(x0, v, len, lo, hi, 0) > eps)
            lam = ref_l1_threshold(x0, v, len, lo, hi, eps);
        for (size_t i = 0; i < len; i++) {
            double dl = (double)v[i] - x0[i], m = fabs(dl) - lam;
            out[i] = (float)clampd(x0[i] + (m > 0 ? (dl > 0 ? m : -m) : 0), lo, hi);
        }
    }
}

/* foolc_project (the library's one ball ∩ box projection, exact by sorted breakpoints)
 * matches the bisection reference with the box active, in L1, L2 and Linf. */
START_TEST(test_projection_against_reference)
{
    enum { D = 300 };
    static float x0[D], v[D], u[D], r[D];
    const foolc_norm norms[3] = {FOOLC_L1, FOOLC_L2, FOOLC_LINF};
    uint64_t st = 12345;
    for (int trial = 0; trial < 60; trial++) {
        for (int i = 0; i < D; i++) {
            x0[i] = (float)test_uniform(&st);
            /* Many coordinates far outside the box, so that it is active. */
            v[i] = x0[i] + (float)(3 * (test_uniform(&st) - 0.5));
        }
        for (int ni = 0; ni < 3; ni++) {
            double eps = (ni == 0 ? 20 : ni == 1 ? 3 : 0.3) * test_uniform(&st);
            ck_ok(foolc_project(norms[ni], x0, v, D, eps, 0, 1, u));
            ref_project(norms[ni], x0, v, D, eps, 0, 1, r);
            for (int i = 0; i < D; i++)
                ck_assert_msg(fabs((double)u[i] - r[i]) <= 2e-5, "norm %d trial %d coord %d: "
                              "%.8g vs reference %.8g", ni, trial, i, (double)u[i], (double)r[i]);
        }
    }
}
END_TEST

/* The ball-only projection (FMN's) equals the ball ∩ box projection around 0 when the box
 * is too wide to matter, in L1, L2 and Linf. */
START_TEST(test_projection_ball_only)
{
    enum { D = 200 };
    static float zero[D], v[D], u[D], b[D];
    static double work[D];
    static float pw[FOOLC__PROJECT_WORK(D)];
    const foolc_norm norms[3] = {FOOLC_L1, FOOLC_L2, FOOLC_LINF};
    uint64_t st = 777;
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < D; i++) v[i] = (float)(2 * test_uniform(&st) - 1);
        for (int ni = 0; ni < 3; ni++) {
            double eps = (ni == 0 ? 30 : ni == 1 ? 4 : 0.5) * test_uniform(&st);
            memcpy(u, v, sizeof u);
            memcpy(b, v, sizeof b);
            foolc__project(norms[ni], zero, u, D, eps, -1e6f, 1e6f, pw);
            foolc__project_ball(norms[ni], b, D, eps, work);
            for (int i = 0; i < D; i++)
                ck_assert_msg(fabs((double)u[i] - b[i]) <= 1e-5, "norm %d trial %d coord %d: "
                              "%.8g vs %.8g", ni, trial, i, (double)u[i], (double)b[i]);
        }
    }
}
END_TEST

/* One k-th largest: against a sort, with ties and for every k. */
static int desc_cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

START_TEST(test_kth_largest)
{
    enum { N = 57 };
    float v[N], w[N], sorted[N];
    uint64_t st = 99;
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < N; i++) v[i] = (float)(int)(10 * test_uniform(&st));  /* ties */
        memcpy(sorted, v, sizeof v);
        qsort(sorted, N, sizeof(float), desc_cmp);
        for (size_t k = 1; k <= N; k++) {
            memcpy(w, v, sizeof v);
            ck_assert_float_eq(foolc__kth_largest(w, N, k), sorted[k - 1]);
        }
    }
}
END_TEST

/* pdpgd-linf's lane threshold: the index-order one's theta to a few ulps of |v|_1, the same
 * bits from any start, and sum max(|v_j| - theta, 0) = r. */
START_TEST(test_l1_theta_lanes)
{
    enum { D = 784 };
    static float v[D];
    static double work[D];
    const size_t dims[] = {1, 7, 64, D};
    uint64_t st = 7;
    for (int trial = 0; trial < 200; trial++) {
        size_t d = dims[trial % 4];
        double l1 = 0;
        for (size_t j = 0; j < d; j++) {
            double u = test_uniform(&st);
            v[j] = trial % 5 == 0 ? (float)(int)(4 * u) / 4                 /* ties */
                   : trial % 5 == 1 && u < 0.8 ? 0.0f                       /* sparse */
                   : (float)((u - 0.5) * (trial % 3 == 0 ? 1e-3 : 2));
            l1 += fabs((double)v[j]);
        }
        const double fr[] = {0.05, 0.5, 0.99, 1.5};
        double r = l1 * fr[trial % 4] + (trial % 7 == 0 ? 1e-6 : 0);
        double t_ref = -1, t0 = -1;
        int k_ref = foolc__l1_ball_theta(v, d, r, work, &t_ref);
        int k0 = foolc__l1_ball_theta_lanes(v, d, r, 0, work, &t0);
        ck_assert_int_eq(k0, k_ref);
        if (!k_ref) continue;
        ck_assert_msg(fabs(t0 - t_ref) <= 16 * DBL_EPSILON * l1,
                      "trial %d: theta %.17g, index order %.17g", trial, t0, t_ref);
        double kept = 0;
        for (size_t j = 0; j < d; j++) kept += fmax(fabs((double)v[j]) - t0, 0);
        ck_assert_msg(fabs(kept - r) <= 1e-12 * l1 + 1e-300, "trial %d: kept %.17g of %.17g",
                      trial, kept, r);
        const double starts[] = {t0, t0 / 2, 2 * t0 + 1e-3, 1e30};
        for (int s = 0; s < 4; s++) {
            double t = -1;
            ck_assert_int_eq(foolc__l1_ball_theta_lanes(v, d, r, starts[s], work, &t), 1);
            ck_assert_msg(t == t0, "trial %d: start %g gives %.17g, from 0 %.17g", trial,
                          starts[s], t, t0);
        }
    }
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
    tcase_add_test(tc, test_projection_against_reference);
    tcase_add_test(tc, test_projection_ball_only);
    tcase_add_test(tc, test_kth_largest);
    tcase_add_test(tc, test_l1_theta_lanes);
    suite_add_tcase(s, tc);
    return s;
}
