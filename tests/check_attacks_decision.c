/* Decision-based attacks: closed-form minima on two-class linear models (Boundary and
 * HopSkipJump-L2 against |w.x + b| / ||w||_2, HopSkipJump-Linf against |w.x + b| / ||w||_1),
 * every decision attack on a model that offers only decisions, determinism whatever the
 * model's batch size, and samples without a starting point reported without failing the
 * batch. */
#include "testutil.h"
#include "linear.h"

#include <string.h>

#define D 16
#define N 6

/* The decision attacks of issue 6 (others may be added to the registry). */
static const char *const k_decision[] = {
    "binarization", "blended-noise", "blur", "boundary", "contrast", "dataset",
    "gaussian-noise-l2", "gaussian-noise-linf", "hsj-l2", "hsj-linf", "inversion",
    "pointwise", "salt-and-pepper", "uniform-noise-l2", "uniform-noise-linf",
};
#define N_DEC ((int)(sizeof k_decision / sizeof k_decision[0]))

static float g_x[N * D], g_xadv[N * D], g_dist[N];
static int32_t g_y[N];
static uint8_t g_ok[N];
static foolc_counts g_q[N];

static int pred(const lin_model *m, const float *x)
{
    float z[LIN_MAXK];
    lin_logits(m, x, z);
    int best = 0;
    for (int j = 1; j < m->k; j++) if (z[j] > z[best]) best = j;
    return best;
}

/* A two-class model with zero biases and inputs whose minimal perturbations stay inside
 * the box in both norms; want2 / wantinf are the exact minima. */
static void two_class(lin_model *m2, double *want2, double *wantinf)
{
    lin_random(m2, D, 2, 0.05, 5);
    m2->b[0] = m2->b[1] = 0;
    for (int i = 0; i < N; i++) {
        double wx = 0, w1 = 0, w2 = 0, wmax = 0;
        for (int j = 0; j < D; j++) {
            g_x[i * D + j] = (float)(0.5 + 0.2 * lin_hash(77 + (uint64_t)(i * D + j)));
            double w = m2->W[1][j] - m2->W[0][j];
            wx += w * g_x[i * D + j];
            w1 += fabs(w);
            w2 += w * w;
            wmax = fmax(wmax, fabs(w));
        }
        g_y[i] = wx > 0;
        want2[i] = fabs(wx) / sqrt(w2);
        wantinf[i] = fabs(wx) / w1;
        /* Away from the box: the L2 minimiser moves coordinate j by |wx| |w_j| / ||w||^2. */
        ck_assert_msg(fabs(wx) * wmax / w2 < 0.29 && wantinf[i] < 0.29, "fixture reaches box");
    }
}

static void check_close(const char *name, const double *want, double tol)
{
    for (int i = 0; i < N; i++) {
        ck_assert_msg(g_ok[i], "%s: sample %d not found", name, i);
        ck_assert_msg(g_dist[i] >= want[i] * (1 - 1e-4), "%s: below the minimum %g < %g",
                      name, (double)g_dist[i], want[i]);
        ck_assert_msg(g_dist[i] <= want[i] * (1 + tol), "%s: sample %d: %g vs minimum %g",
                      name, i, (double)g_dist[i], want[i]);
        ck_assert_uint_eq(g_q[i].forward, 0);     /* decisions only */
        ck_assert(g_q[i].decided > 0);
    }
}

/* _i: 0 boundary, 1 hsj-l2, 2 hsj-linf, 3 boundary with Foolbox's step-size schedule and
 * no direction memory. */
START_TEST(test_closed_form)
{
    static const char *const names[] = {"boundary", "hsj-l2", "hsj-linf", "boundary"};
    const char *name = names[_i];
    lin_model m2;
    double want2[N], wantinf[N];
    two_class(&m2, want2, wantinf);
    foolc_oracle o = lin_oracle(&m2, 8, 1);
    ck_assert(o.scores == NULL && o.value_and_grad == NULL && o.decision != NULL);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    if (_i == 3) {
        ck_ok(foolc_attack_set(a, "schedule", 0));
        ck_ok(foolc_attack_set(a, "memory", 0));
    }
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {N, 1, 1, D};
    ck_ok(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r));
    check_close(name, _i == 2 ? wantinf : want2, 0.05);
    for (int i = 0; i < N; i++) ck_assert_int_ne(pred(&m2, g_xadv + i * D), g_y[i]);
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* A 4-class model and inputs it classifies as their labels (as in check_attack.c). */
static void four_class(lin_model *m4)
{
    lin_random(m4, D, 4, 0.5, 11);
    for (int i = 0; i < N * D; i++) g_x[i] = (float)(0.5 + 0.3 * lin_hash(1000 + (uint64_t)i));
    for (int i = 0; i < N; i++) g_y[i] = pred(m4, g_x + i * D);
}

START_TEST(test_decision_only)    /* _i indexes k_decision */
{
    const char *name = k_decision[_i];
    unsigned needs;
    foolc_norm norm;
    ck_ok(foolc_attack_describe(name, &norm, &needs, NULL, NULL));
    ck_assert_uint_eq(needs, FOOLC_NEEDS_DECISION);
    lin_model m4;
    four_class(&m4);
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {N, 1, 1, D};
    float xa[2][N * D], dist[2][N];
    int32_t batches[2] = {5, 1};
    for (int b = 0; b < 2; b++) {
        foolc_oracle o = lin_oracle(&m4, batches[b], 1);
        foolc_model *m;
        ck_ok(foolc_model_new(&o, &m));
        ck_assert_uint_eq(foolc_model_caps(m), FOOLC_NEEDS_DECISION);
        foolc_status st = foolc_attack_run(a, m, s, g_x, g_y, NULL, 9, &r);
        ck_assert_msg(st == FOOLC_OK || st == FOOLC_NOT_FOUND, "%s: %s", name, foolc_errmsg());
        int found = 0;
        for (int i = 0; i < N; i++) {
            const float *x = g_xadv + i * D;
            for (int j = 0; j < D; j++) ck_assert(x[j] >= 0 && x[j] <= 1);
            ck_assert_uint_eq(g_q[i].forward, 0);
            if (!g_ok[i]) continue;
            found++;
            ck_assert_int_ne(pred(&m4, x), g_y[i]);
            ck_assert_float_eq_tol(g_dist[i], (float)foolc_distance(norm, g_x + i * D, x, D),
                                   1e-6f);
        }
        ck_assert_msg(found >= N - 1, "%s found %d of %d", name, found, N);
        foolc_counts c = foolc_model_counts(m);
        ck_assert_uint_eq(c.forward, 0);
        ck_assert_uint_eq(c.backward, 0);
        memcpy(xa[b], g_xadv, sizeof g_xadv);
        memcpy(dist[b], g_dist, sizeof g_dist);
        foolc_model_free(m);
    }
    /* The same bytes whatever the model's batch size. */
    ck_assert_mem_eq(xa[0], xa[1], sizeof xa[0]);
    ck_assert_mem_eq(dist[0], dist[1], sizeof dist[0]);
    foolc_attack_free(a);
}
END_TEST

START_TEST(test_gradient_attacks_refused)
{
    lin_model m4;
    four_class(&m4);
    foolc_oracle o = lin_oracle(&m4, 4, 1);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {N, 1, 1, D};
    foolc_attack *a;
    ck_ok(foolc_attack_new("fgsm", &a));
    ck_status(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r), FOOLC_E_UNSUPPORTED);
    foolc_attack_free(a);
    /* A criterion that needs scores is refused for a decision attack too. */
    foolc_criterion *c;
    ck_ok(foolc_criterion_new("confidence", &c));
    ck_ok(foolc_attack_new("boundary", &a));
    ck_ok(foolc_attack_set_criterion(a, c));
    ck_status(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r), FOOLC_E_UNSUPPORTED);
    foolc_attack_free(a);
    foolc_criterion_free(c);
    foolc_model_free(m);
}
END_TEST

/* Three classes where class 2 never wins: samples targeted at class 2 have no starting
 * point and are reported as not found with the reason; the others are attacked. */
START_TEST(test_missing_start)    /* _i: 0 boundary, 1 hsj-l2, 2 hsj-linf */
{
    static const char *const names[] = {"boundary", "hsj-l2", "hsj-linf"};
    lin_model m3;
    memset(&m3, 0, sizeof m3);
    m3.d = D;
    m3.k = 3;
    m3.W[1][0] = 10;
    m3.b[1] = -5;       /* class 1 when x[0] > 0.5, else class 0 */
    m3.b[2] = -100;     /* never */
    for (int i = 0; i < N * D; i++) g_x[i] = (float)(0.3 + 0.1 * lin_hash(5 + (uint64_t)i));
    int32_t t[N];
    for (int i = 0; i < N; i++) {
        g_y[i] = 0;
        t[i] = i % 3 == 1 ? 2 : 1;
    }
    foolc_criterion *c;
    ck_ok(foolc_criterion_new("targeted", &c));
    foolc_oracle o = lin_oracle(&m3, 4, 1);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new(names[_i], &a));
    ck_ok(foolc_attack_set(a, "init_directions", 50));
    ck_ok(foolc_attack_set_criterion(a, c));
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {N, 1, 1, D};
    ck_status(foolc_attack_run(a, m, s, g_x, g_y, t, 1, &r), FOOLC_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "starting point"));
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(g_ok[i], t[i] == 1);
        if (g_ok[i]) {
            ck_assert_int_eq(pred(&m3, g_xadv + i * D), 1);
            /* The exact minimum is 0.5 - x[0] along the first axis. */
            double want = 0.5 - g_x[i * D];
            ck_assert_msg(g_dist[i] <= want * 1.1, "%g vs %g", (double)g_dist[i], want);
        }
    }
    foolc_attack_free(a);
    foolc_model_free(m);
    foolc_criterion_free(c);
}
END_TEST

/* Starting points from a pool (foolc_attack_set_starts) and from another attack
 * (foolc_attack_set_init); the dataset attack beats the closest pool image of another
 * class, which the model classifies as labelled. */
START_TEST(test_starts)
{
    lin_model m4;
    four_class(&m4);
    enum { P = 40 };
    float pool[P * D];
    int32_t py[P];
    for (int p = 0; p < P * D; p++) pool[p] = (float)(0.5 + 0.5 * lin_hash(9000 + (uint64_t)p));
    for (int p = 0; p < P; p++) py[p] = pred(&m4, pool + p * D);
    foolc_oracle o = lin_oracle(&m4, 4, 1);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {N, 1, 1, D};
    foolc_attack *a;
    ck_ok(foolc_attack_new("dataset", &a));
    ck_ok(foolc_attack_set_starts(a, pool, py, P));
    ck_ok(foolc_attack_set(a, "candidates", P));
    ck_ok(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r));
    for (int i = 0; i < N; i++) {
        double closest = INFINITY;
        for (int p = 0; p < P; p++)
            if (py[p] != g_y[i])
                closest = fmin(closest, foolc_distance(FOOLC_L2, g_x + i * D, pool + p * D, D));
        ck_assert(g_ok[i]);
        ck_assert_int_ne(pred(&m4, g_xadv + i * D), g_y[i]);
        ck_assert_msg(g_dist[i] <= closest * (1 + 1e-6), "%g > %g", (double)g_dist[i], closest);
    }
    foolc_attack_free(a);
    const char *walkers[] = {"boundary", "hsj-l2"};
    for (int w = 0; w < 2; w++) {
        for (int mode = 1; mode <= 2; mode++) {
            ck_ok(foolc_attack_new(walkers[w], &a));
            ck_ok(foolc_attack_set(a, "init", mode));
            ck_ok(foolc_attack_set(a, "steps", 20));
            ck_ok(foolc_attack_set_starts(a, pool, py, P));
            ck_ok(foolc_attack_set_init(a, "gaussian-noise-l2"));
            ck_ok(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r));
            for (int i = 0; i < N; i++) ck_assert_int_ne(pred(&m4, g_xadv + i * D), g_y[i]);
            foolc_attack_free(a);
        }
    }
    foolc_model_free(m);
}
END_TEST

Suite *foolc_suite_attacks_decision(void);
Suite *foolc_suite_attacks_decision(void)
{
    Suite *s = suite_create("attacks_decision");
    TCase *tc = tcase_create("decision");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_closed_form, 0, 4);
    tcase_add_loop_test(tc, test_decision_only, 0, N_DEC);
    tcase_add_test(tc, test_gradient_attacks_refused);
    tcase_add_loop_test(tc, test_missing_start, 0, 3);
    tcase_add_test(tc, test_starts);
    suite_add_tcase(s, tc);
    return s;
}
