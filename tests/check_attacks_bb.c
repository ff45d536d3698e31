/* Brendel-Bethge attacks against closed-form minima on two-class linear models (L2, L1,
 * Linf within 1 % and never below; L0 within one coordinate), starting points (pool,
 * another attack, none, not adversarial, the best of two walks), targeted runs,
 * batch-size independence and parameters set by name. */
#include "testutil.h"
#include "linear.h"

#include <math.h>
#include <string.h>

#define D 16
#define N 6

static lin_model g_two;
static float g_x[N * D], g_xadv[N * D], g_dist[N];
static int32_t g_y[N];
static uint8_t g_ok[N];
static foolc_counts g_q[N];
static double g_f[N];     /* w . x + b per sample */
static double g_w[D];     /* W1 - W0 */

/* A two-class linear model of weight scale s and inputs in [0.3, 0.7]; with ft > 0 each
 * input is then moved along w so that |w . x + b| = ft (1 + 0.2 i), sign kept. */
static void two_class(double s, double ft)
{
    lin_random(&g_two, D, 2, s, 5);
    g_two.b[0] = g_two.b[1] = 0;
    if (ft < 0) {   /* weights of similar size, so that no single coordinate flips a class */
        for (int j = 0; j < D; j++) {
            g_two.W[0][j] = 0;
            g_two.W[1][j] = s * (0.75 + 0.25 * lin_hash(300 + (uint64_t)j)) *
                            (lin_hash(400 + (uint64_t)j) > 0 ? 1 : -1);
        }
        ft = -ft;
    }
    for (int j = 0; j < D; j++) g_w[j] = g_two.W[1][j] - g_two.W[0][j];
    for (int i = 0; i < N; i++) {
        double f = 0;
        for (int j = 0; j < D; j++) {
            g_x[i * D + j] = (float)(0.5 + 0.2 * lin_hash(77 + (uint64_t)(i * D + j)));
            f += g_w[j] * g_x[i * D + j];
        }
        if (ft > 0) {
            double ww = 0, want = copysign(ft * (1 + 0.2 * i), f);
            for (int j = 0; j < D; j++) ww += g_w[j] * g_w[j];
            double f0 = f;
            f = 0;
            for (int j = 0; j < D; j++) {
                g_x[i * D + j] = (float)(g_x[i * D + j] + (want - f0) * g_w[j] / ww);
                ck_assert(g_x[i * D + j] >= 0 && g_x[i * D + j] <= 1);
                f += g_w[j] * g_x[i * D + j];
            }
        }
        g_f[i] = f;
        g_y[i] = f > 0;
    }
}

/* The exact minimum of sample i in norm p for the two-class model (away from the box for
 * L1, L2, Linf; in the box for L0: fewest coordinates whose full range covers |f|). */
static double exact_min(foolc_norm p, int i)
{
    double n1 = 0, n2 = 0, ninf = 0;
    for (int j = 0; j < D; j++) {
        n1 += fabs(g_w[j]);
        n2 += g_w[j] * g_w[j];
        ninf = fmax(ninf, fabs(g_w[j]));
    }
    double f = fabs(g_f[i]);
    if (p == FOOLC_L2) return f / sqrt(n2);
    if (p == FOOLC_LINF) return f / n1;
    if (p == FOOLC_L1) return f / ninf;
    double cap[D];
    for (int j = 0; j < D; j++) {
        /* Moving coordinate j to the bound that lowers |f| the most. */
        double xj = g_x[i * D + j], s = g_f[i] > 0 ? -1 : 1;
        cap[j] = fmax(s * g_w[j] * (1 - xj), s * g_w[j] * (0 - xj));
    }
    for (int a = 0; a < D; a++)
        for (int b = a + 1; b < D; b++)
            if (cap[b] > cap[a]) { double t = cap[a]; cap[a] = cap[b]; cap[b] = t; }
    double sum = 0;
    for (int k = 0; k < D; k++) {
        sum += cap[k];
        if (sum > f) return k + 1;
    }
    return INFINITY;
}

static foolc_result result(void)
{
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    return r;
}

static const char *const k_names[4] = {"bb-l0", "bb-l1", "bb-l2", "bb-linf"};
static const foolc_norm k_norms[4] = {FOOLC_L0, FOOLC_L1, FOOLC_L2, FOOLC_LINF};

START_TEST(test_bb_closed_form)
{
    foolc_norm p = k_norms[_i];
    two_class(0.05, p == FOOLC_L1 ? 0.008 : p == FOOLC_L0 ? -0.1 : 0);
    foolc_oracle o = lin_oracle(&g_two, 8, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new(k_names[_i], &a));
    foolc_result r = result();
    foolc_shape s = {N, 1, 1, D};
    ck_ok(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r));
    for (int i = 0; i < N; i++) {
        double want = exact_min(p, i);
        ck_assert(g_ok[i]);
        if (p == FOOLC_L0) {
            ck_assert_msg(want >= 2 && want < D, "fixture: L0 minimum %g", want);
            ck_assert_msg(g_dist[i] >= want && g_dist[i] <= want + 1,
                          "bb-l0 sample %d: %g coordinates vs minimum %g", i,
                          (double)g_dist[i], want);
        } else {
            ck_assert_msg(want < 0.29, "fixture: minimum %g reaches the box", want);
            ck_assert_msg(g_dist[i] >= want * (1 - 1e-5), "%s below the minimum: %g < %g",
                          k_names[_i], (double)g_dist[i], want);
            ck_assert_msg(g_dist[i] <= want * 1.01, "%s sample %d: %g vs minimum %g",
                          k_names[_i], i, (double)g_dist[i], want);
        }
        ck_assert(g_q[i].backward >= 1);
    }
    /* The same bytes whatever batch size the model accepts. */
    float xadv[N * D], dist[N];
    memcpy(xadv, g_xadv, sizeof xadv);
    memcpy(dist, g_dist, sizeof dist);
    foolc_oracle o1 = lin_oracle(&g_two, 1, 0);
    foolc_model *m1;
    ck_ok(foolc_model_new(&o1, &m1));
    ck_ok(foolc_attack_run(a, m1, s, g_x, g_y, NULL, 1, &r));
    ck_assert_mem_eq(xadv, g_xadv, sizeof xadv);
    ck_assert_mem_eq(dist, g_dist, sizeof dist);
    foolc_model_free(m1);
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* Starting points: a pool (closest adversarial images), another attack, none at all, and
 * a pool whose images are not adversarial for some samples. */
START_TEST(test_bb_starting_points)
{
    two_class(0.05, k_norms[_i] == FOOLC_L1 ? 0.008 : 0);
    foolc_oracle o = lin_oracle(&g_two, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new(k_names[_i], &a));
    foolc_result r = result();
    foolc_shape s = {N, 1, 1, D};

    /* A pool: for each class, images pushed far to the other side. */
    float pool[4 * D];
    int32_t py[4];
    for (int c = 0; c < 4; c++) {
        py[c] = c & 1;
        for (int j = 0; j < D; j++) {
            double toward = (py[c] ? g_w[j] > 0 : g_w[j] < 0) ? 1.0 : 0.0;
            pool[c * D + j] = (float)(c < 2 ? toward : 0.5 * toward + 0.25);
        }
    }
    /* Without a pool the batch's own inputs of the other class serve as starting points. */
    ck_ok(foolc_attack_set(a, "init", 1));
    foolc_status st0 = foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r);
    ck_assert(st0 == FOOLC_OK || st0 == FOOLC_NOT_FOUND);
    int found0 = 0;
    for (int i = 0; i < N; i++) {
        if (!g_ok[i]) continue;
        found0++;
        if (k_norms[_i] != FOOLC_L0)
            ck_assert(g_dist[i] <= exact_min(k_norms[_i], i) * 1.01);
    }
    ck_assert_int_ge(found0, 1);
    ck_ok(foolc_attack_set_starts(a, pool, py, 4));
    ck_ok(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r));
    for (int i = 0; i < N; i++) {
        ck_assert(g_ok[i]);
        if (k_norms[_i] != FOOLC_L0)
            ck_assert(g_dist[i] <= exact_min(k_norms[_i], i) * 1.01);
    }
    /* Pool images that are not adversarial (the inputs themselves, labelled otherwise):
     * reported, not crashed on; samples 0 and 1 get a real starting point and go on. */
    float bad[N * D];
    int32_t by[N];
    memcpy(bad, g_x, sizeof bad);
    for (int i = 0; i < N; i++) by[i] = 1 - g_y[i];
    memcpy(bad, pool + (size_t)(1 - g_y[0]) * D, D * sizeof(float));
    memcpy(bad + D, pool + (size_t)(1 - g_y[1]) * D, D * sizeof(float));
    by[0] = 1 - g_y[0];
    by[1] = 1 - g_y[1];
    ck_ok(foolc_attack_set_starts(a, bad, by, N));
    ck_status(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r), FOOLC_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "no starting point for"));
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), k_names[_i]));
    ck_assert(g_ok[0] && g_ok[1]);
    int found = 0;
    for (int i = 0; i < N; i++) found += g_ok[i];
    ck_assert_int_le(found, 2 + 2);   /* the inputs of other samples may be adversarial */
    ck_ok(foolc_attack_set_starts(a, NULL, NULL, 0));
    ck_status(foolc_attack_set_starts(a, NULL, NULL, 3), FOOLC_E_INVALID);

    /* Another attack as the starting point. */
    ck_ok(foolc_attack_set(a, "init", 2));
    ck_status(foolc_attack_set_init(a, "no-such-attack"), FOOLC_E_INVALID);
    ck_status(foolc_attack_set_init(a, k_names[_i]), FOOLC_E_INVALID);
    ck_ok(foolc_attack_set_init(a, "fgsm"));
    ck_ok(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r));
    for (int i = 0; i < N; i++) {
        ck_assert(g_ok[i]);
        if (k_norms[_i] != FOOLC_L0)
            ck_assert(g_dist[i] <= exact_min(k_norms[_i], i) * 1.01);
    }
    ck_ok(foolc_attack_set_init(a, NULL));
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* Targeted on a 4-class model: every success lands in its target class, and the queries
 * of a converged sample stop growing with the step budget. */
START_TEST(test_bb_targeted)
{
    lin_model m4;
    lin_random(&m4, D, 4, 0.5, 11);
    float x[N * D];
    int32_t y[N], t[N];
    for (int i = 0; i < N; i++) {
        float z[4];
        for (int j = 0; j < D; j++)
            x[i * D + j] = (float)(0.5 + 0.3 * lin_hash(1000 + (uint64_t)(i * D + j)));
        lin_logits(&m4, x + i * D, z);
        int best = 0;
        for (int j = 1; j < 4; j++) if (z[j] > z[best]) best = j;
        y[i] = best;
        t[i] = (best + 1) % 4;
    }
    foolc_oracle o = lin_oracle(&m4, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_criterion *c;
    ck_ok(foolc_criterion_new("targeted", &c));
    foolc_attack *a;
    ck_ok(foolc_attack_new(k_names[_i], &a));
    ck_ok(foolc_attack_set_criterion(a, c));
    foolc_result r = result();
    foolc_shape s = {N, 1, 1, D};
    foolc_status st = foolc_attack_run(a, m, s, x, y, t, 1, &r);
    ck_assert(st == FOOLC_OK || st == FOOLC_NOT_FOUND);
    int hits = 0;
    for (int i = 0; i < N; i++) {
        if (!g_ok[i]) continue;
        float z[4];
        lin_logits(&m4, g_xadv + i * D, z);
        for (int j = 0; j < 4; j++) ck_assert(j == t[i] || z[j] < z[t[i]]);
        hits++;
    }
    ck_assert_int_ge(hits, N - 1);
    /* Convergence stop: with 20000 steps allowed, samples stop long before. */
    ck_ok(foolc_attack_set(a, "steps", 20000));
    st = foolc_attack_run(a, m, s, x, y, t, 1, &r);
    ck_assert(st == FOOLC_OK || st == FOOLC_NOT_FOUND);
    for (int i = 0; i < N; i++) ck_assert_uint_lt(g_q[i].backward, 5000);
    foolc_attack_free(a);
    foolc_criterion_free(c);
    foolc_model_free(m);
}
END_TEST

/* init 3 (the default) walks from the norm's minimum-norm attack and from blended noise:
 * per sample no worse than either walk alone (init 2, init 0), on a 4-class model where
 * the two often end at different boundaries. */
START_TEST(test_bb_best_of_both)
{
    lin_model m4;
    lin_random(&m4, D, 4, 0.5, 23);
    float x[N * D];
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        float z[4];
        for (int j = 0; j < D; j++)
            x[i * D + j] = (float)(0.5 + 0.3 * lin_hash(2000 + (uint64_t)(i * D + j)));
        lin_logits(&m4, x + i * D, z);
        int best = 0;
        for (int j = 1; j < 4; j++) if (z[j] > z[best]) best = j;
        y[i] = best;
    }
    foolc_oracle o = lin_oracle(&m4, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new(k_names[_i], &a));
    double init;
    ck_ok(foolc_attack_get(a, "init", &init));
    ck_assert(init == 3);
    foolc_result r = result();
    foolc_shape s = {N, 1, 1, D};
    float dist[3][N];
    uint8_t ok[3][N];
    foolc_counts q[3][N];
    const char *mode[3] = {"attack", "noise", "best"};
    for (int k = 0; k < 3; k++) {
        ck_ok(foolc_attack_set_text(a, "init", mode[k]));
        foolc_status st = foolc_attack_run(a, m, s, x, y, NULL, 1, &r);
        ck_assert(st == FOOLC_OK || st == FOOLC_NOT_FOUND);
        memcpy(dist[k], g_dist, sizeof dist[k]);
        memcpy(ok[k], g_ok, sizeof ok[k]);
        memcpy(q[k], g_q, sizeof q[k]);
    }
    for (int i = 0; i < N; i++) {
        ck_assert(ok[2][i] >= ok[0][i] && ok[2][i] >= ok[1][i]);
        if (!ok[2][i]) continue;
        for (int k = 0; k < 2; k++)
            if (ok[k][i])
                ck_assert_msg(dist[2][i] <= dist[k][i] * (1 + 1e-5), "%s sample %d: best %g > "
                              "%s %g", k_names[_i], i, (double)dist[2][i], mode[k],
                              (double)dist[k][i]);
        /* Both walks are paid for (the noise walk skips init 0's fallback attack). */
        ck_assert(q[2][i].backward > q[0][i].backward);
    }
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* Parameters set from text: numbers and the names of an enumerated parameter's values. */
START_TEST(test_bb_param_names)
{
    foolc_attack *a;
    ck_ok(foolc_attack_new("bb-l2", &a));
    const char *names[4] = {"noise", "pool", "attack", "best"};
    double v;
    for (int k = 0; k < 4; k++) {
        ck_ok(foolc_attack_set_text(a, "init", names[k]));
        ck_ok(foolc_attack_get(a, "init", &v));
        ck_assert(v == k);
    }
    ck_ok(foolc_attack_set_text(a, "init", "1"));
    ck_ok(foolc_attack_get(a, "init", &v));
    ck_assert(v == 1);
    ck_status(foolc_attack_set_text(a, "init", "4"), FOOLC_E_INVALID);
    ck_status(foolc_attack_set_text(a, "init", "bes"), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "[noise|pool|attack|best]"));
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "'bes'"));
    ck_status(foolc_attack_set_text(a, "init", ""), FOOLC_E_INVALID);
    ck_status(foolc_attack_set_text(a, "init", NULL), FOOLC_E_INVALID);
    ck_status(foolc_attack_set_text(a, "no-such-key", "1"), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "no-such-key"));
    ck_ok(foolc_attack_set_text(a, "steps", "2e3"));
    ck_ok(foolc_attack_get(a, "steps", &v));
    ck_assert(v == 2000);
    ck_status(foolc_attack_set_text(a, "steps", "many"), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "takes a number"));
    ck_status(foolc_attack_set_text(a, "steps", "10x"), FOOLC_E_INVALID);
    ck_status(foolc_attack_set_text(NULL, "steps", "10"), FOOLC_E_INVALID);
    foolc_attack_free(a);
    ck_ok(foolc_attack_new("fgsm", &a));
    ck_ok(foolc_attack_set_text(a, "loss", "margin"));
    ck_ok(foolc_attack_get(a, "loss", &v));
    ck_assert(v == 1);
    foolc_attack_free(a);
}
END_TEST

Suite *foolc_suite_attacks_bb(void);
Suite *foolc_suite_attacks_bb(void)
{
    Suite *s = suite_create("attacks_bb");
    TCase *tc = tcase_create("bb");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_bb_closed_form, 0, 4);
    tcase_add_loop_test(tc, test_bb_starting_points, 0, 4);
    tcase_add_loop_test(tc, test_bb_targeted, 0, 4);
    tcase_add_loop_test(tc, test_bb_best_of_both, 0, 4);
    tcase_add_test(tc, test_bb_param_names);
    suite_add_tcase(s, tc);
    return s;
}
