/* Gradient attacks I (FGM, BIM, PGD, MI-FGSM, APGD, DeepFool) against closed-form minima of
 * linear models: two classes away from the box, several classes, two classes with the box
 * active (Linf by bisection, L2 by KKT water-filling, L1 by the greedy over |w|); targeted
 * runs; and every attack on a small Fashion-MNIST network trained in the test. */
#include "testutil.h"
#include "linear.h"

#define D 16
#define N 6

static float g_xadv[64 * 784], g_dist[64];
static uint8_t g_ok[64];
static foolc_counts g_q[64];

typedef struct named {
    const char *name;
    foolc_norm norm;
} named;

static const named k_attacks[] = {
    {"fgsm", FOOLC_LINF},      {"bim-linf", FOOLC_LINF},   {"pgd-linf", FOOLC_LINF},
    {"mifgsm-linf", FOOLC_LINF}, {"apgd-linf", FOOLC_LINF}, {"deepfool-linf", FOOLC_LINF},
    {"fgm-l2", FOOLC_L2},      {"bim-l2", FOOLC_L2},       {"pgd-l2", FOOLC_L2},
    {"mifgsm-l2", FOOLC_L2},   {"apgd-l2", FOOLC_L2},      {"deepfool-l2", FOOLC_L2},
    {"fgm-l1", FOOLC_L1},      {"bim-l1", FOOLC_L1},       {"pgd-l1", FOOLC_L1},
};
#define N_ATT ((int)(sizeof k_attacks / sizeof k_attacks[0]))

static int argmax(const lin_model *m, const float *x)
{
    float z[LIN_MAXK];
    lin_logits(m, x, z);
    int best = 0;
    for (int j = 1; j < m->k; j++) if (z[j] > z[best]) best = j;
    return best;
}

/* The dual norm of w for the attack norm p. */
static double dual(foolc_norm p, const double *w, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) {
        double v = fabs(w[j]);
        if (p == FOOLC_LINF) s += v;
        else if (p == FOOLC_L2) s += v * v;
        else if (v > s) s = v;
    }
    return p == FOOLC_L2 ? sqrt(s) : s;
}

/* Exact minimal perturbation in norm p that brings f(x) = w.x + c to 0 inside [0, 1]^d,
 * moving against sign(f): Linf by bisection on eps of f(clip(x - s eps sign w)); L2 by
 * water-filling delta_j = clip(-s lam w_j) with lam by bisection; L1 greedily over the
 * coordinates by decreasing |w_j| up to their box caps. */
static double box_minimum(foolc_norm p, const double *w, double f, const float *x, int d)
{
    double s = f > 0 ? 1 : -1, af = fabs(f);
    if (p == FOOLC_L1) {
        int used[LIN_MAXD] = {0};
        double dist = 0;
        for (int it = 0; it < d && af > 0; it++) {
            int b = -1;
            for (int j = 0; j < d; j++)
                if (!used[j] && (b < 0 || fabs(w[j]) > fabs(w[b]))) b = j;
            used[b] = 1;
            double dir = -s * (w[b] > 0 ? 1 : -1);
            double cap = dir > 0 ? 1.0 - x[b] : x[b];
            double gain = fabs(w[b]) * cap;
            if (gain >= af) return dist + af / fabs(w[b]);
            dist += cap;
            af -= gain;
        }
        return INFINITY;
    }
    double lo = 0, hi = p == FOOLC_LINF ? 1 : 1e6;
    double best = INFINITY;
    for (int it = 0; it < 200; it++) {
        double t = 0.5 * (lo + hi), red = 0, n2 = 0, ninf = 0;
        for (int j = 0; j < d; j++) {
            double want = p == FOOLC_LINF ? -s * t * (w[j] > 0 ? 1 : w[j] < 0 ? -1 : 0)
                                          : -s * t * w[j];
            double e = want < -x[j] ? -x[j] : want > 1 - x[j] ? 1 - x[j] : want;
            red += -s * w[j] * e;
            n2 += e * e;
            ninf = fmax(ninf, fabs(e));
        }
        if (red >= af) {
            hi = t;
            best = p == FOOLC_LINF ? ninf : sqrt(n2);
        } else {
            lo = t;
        }
    }
    return best;
}

/* A two-class model with zero biases and N inputs, each moved along w so that f = w.x has
 * the prescribed value. */
static void two_class(lin_model *m, float *x, int32_t *y, double *f)
{
    lin_random(m, D, 2, 0.05, 5);
    m->b[0] = m->b[1] = 0;
    double w[D], w2 = 0;
    for (int j = 0; j < D; j++) {
        w[j] = m->W[1][j] - m->W[0][j];
        w2 += w[j] * w[j];
    }
    for (int i = 0; i < N; i++) {
        double fx = 0;
        for (int j = 0; j < D; j++) {
            double h = lin_hash(77 + (uint64_t)(i * D + j));
            double v = 0.5 + 0.1 * h;
            x[i * D + j] = (float)v;
            fx += w[j] * v;
        }
        double target = (i % 2 ? 1 : -1) * (0.006 + 0.002 * i);
        for (int j = 0; j < D; j++) {
            double v = x[i * D + j] + (target - fx) * w[j] / w2;
            x[i * D + j] = (float)(v < 0.005 ? 0.005 : v > 0.995 ? 0.995 : v);
        }
        double ff = 0;
        for (int j = 0; j < D; j++) ff += w[j] * x[i * D + j];
        f[i] = ff;
        y[i] = ff > 0;
    }
}

/* A parameter run_one sets when the attack has it (NULL: none). */
static const char *g_key;
static double g_val;

static void run_one(const lin_model *lm, const char *name, const float *x, const int32_t *y,
                    const int32_t *t, int32_t n, const char *crit, foolc_status want)
{
    foolc_oracle o = lin_oracle((lin_model *)lm, 8, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    double old;
    if (g_key && foolc_attack_get(a, g_key, &old) == FOOLC_OK)
        ck_ok(foolc_attack_set(a, g_key, g_val));
    foolc_criterion *c = NULL;
    if (crit) {
        ck_ok(foolc_criterion_new(crit, &c));
        ck_ok(foolc_attack_set_criterion(a, c));
    }
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {n, 1, 1, lm->d};
    foolc_status st = foolc_attack_run(a, m, s, x, y, t, 1, &r);
    ck_assert_msg(st == want || want == FOOLC_NOT_FOUND, "%s: %s (%s)", name,
                  foolc_status_str(st), foolc_errmsg());
    foolc_attack_free(a);
    foolc_criterion_free(c);
    foolc_model_free(m);
}

/* Away from the box: L2 = |f| / |w|_2, Linf = |f| / |w|_1, L1 = |f| / |w|_inf; every attack
 * within 1 % of its norm's minimum and never below it. */
START_TEST(test_two_class_closed_form)
{
    const named *at = &k_attacks[_i];
    lin_model lm;
    float x[N * D];
    int32_t y[N];
    double f[N], w[D];
    two_class(&lm, x, y, f);
    for (int j = 0; j < D; j++) w[j] = lm.W[1][j] - lm.W[0][j];
    run_one(&lm, at->name, x, y, NULL, N, NULL, FOOLC_OK);
    for (int i = 0; i < N; i++) {
        double want = fabs(f[i]) / dual(at->norm, w, D);
        ck_assert_msg(want < 0.25, "fixture: minimum %g reaches the box", want);
        ck_assert_msg(g_ok[i], "%s: sample %d not found", at->name, i);
        ck_assert_msg(g_dist[i] >= want * (1 - 1e-5), "%s: sample %d below the minimum: %g < %g",
                      at->name, i, (double)g_dist[i], want);
        ck_assert_msg(g_dist[i] <= want * 1.01, "%s: sample %d: %g vs minimum %g", at->name,
                      i, (double)g_dist[i], want);
        ck_assert(g_q[i].backward >= 1);
    }
}
END_TEST

/* The box active: per sample a model whose bias sets f, and an input whose coordinates sit
 * close to the face the minimal perturbation moves them towards (two of every three). */
START_TEST(test_two_class_box)
{
    const named *at = &k_attacks[_i];
    lin_model lm;
    lin_random(&lm, D, 2, 0.05, 5);
    lm.b[0] = 0;
    double w[D];
    for (int j = 0; j < D; j++) w[j] = lm.W[1][j] - lm.W[0][j];
    int active = 0;
    for (int i = 0; i < N; i++) {
        double s = i % 2 ? 1 : -1, f = s * (0.03 + 0.01 * i), wx = 0;
        float x[D];
        for (int j = 0; j < D; j++) {
            double h = lin_hash(500 + (uint64_t)(i * D + j));
            int up = -s * w[j] > 0;
            x[j] = (float)(j % 3 == 0 ? 0.5 + 0.1 * h : up ? 0.97 + 0.02 * h : 0.03 + 0.02 * h);
            wx += w[j] * x[j];
        }
        lm.b[1] = f - wx;
        int32_t y = f > 0;
        run_one(&lm, at->name, x, &y, NULL, 1, NULL, FOOLC_OK);
        double want = box_minimum(at->norm, w, f, x, D);
        double free_min = fabs(f) / dual(at->norm, w, D);
        active += want > free_min * 1.02;
        ck_assert_msg(isfinite(want), "fixture: sample %d cannot be fooled", i);
        ck_assert_msg(g_ok[0], "%s: sample %d not found", at->name, i);
        ck_assert_msg(g_dist[0] >= want * (1 - 1e-5), "%s: sample %d below the minimum: %g < %g",
                      at->name, i, (double)g_dist[0], want);
        ck_assert_msg(g_dist[0] <= want * 1.03, "%s: sample %d: %g vs box minimum %g (free %g)",
                      at->name, i, (double)g_dist[0], want, free_min);
    }
    ck_assert_msg(active >= N / 2, "fixture: the box binds for only %d samples", active);
}
END_TEST

/* Several classes: the minimum over the pairwise hyperplanes, |z_y - z_j| / |W_y - W_j|.
 * The iterative attacks descend the criterion's margin here (loss = 1): its minimiser over a
 * ball is the closest hyperplane's, whereas cross-entropy (their default, better on
 * networks) weighs all classes and can stop short of the nearest one. */
static const char *const k_multi[] = {"pgd-l2", "deepfool-l2", "apgd-l2", "bim-l2",
                                      "deepfool-linf"};

START_TEST(test_multi_class)
{
    const char *name = k_multi[_i];
    foolc_norm p;
    ck_ok(foolc_attack_describe(name, &p, NULL, NULL, NULL));
    lin_model lm;
    lin_random(&lm, D, 5, 0.05, 9);
    float x[N * D];
    int32_t y[N];
    double want[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++)
            x[i * D + j] = (float)(0.5 + 0.05 * lin_hash(300 + (uint64_t)(i * D + j)));
        /* Move most of the way towards the runner-up's hyperplane, so that the minima are
         * small and several classes are close. */
        float z[LIN_MAXK] = {0};
        lin_logits(&lm, x + i * D, z);
        y[i] = argmax(&lm, x + i * D);
        int ru = y[i] == 0 ? 1 : 0;
        for (int c = 0; c < lm.k; c++) if (c != y[i] && z[c] > z[ru]) ru = c;
        double w2 = 0, wr[D];
        for (int j = 0; j < D; j++) {
            wr[j] = lm.W[y[i]][j] - lm.W[ru][j];
            w2 += wr[j] * wr[j];
        }
        for (int j = 0; j < D; j++)
            x[i * D + j] -= (float)(0.8 * ((double)z[y[i]] - z[ru]) * wr[j] / w2);
        lin_logits(&lm, x + i * D, z);
        ck_assert_int_eq(argmax(&lm, x + i * D), y[i]);
        want[i] = INFINITY;
        for (int c = 0; c < lm.k; c++) {
            if (c == y[i]) continue;
            double w[D];
            for (int j = 0; j < D; j++) w[j] = lm.W[y[i]][j] - lm.W[c][j];
            want[i] = fmin(want[i], ((double)z[y[i]] - z[c]) / dual(p, w, D));
        }
        ck_assert_msg(want[i] < 0.2, "fixture: minimum %g reaches the box", want[i]);
    }
    g_key = "loss";
    g_val = 1;
    run_one(&lm, name, x, y, NULL, N, NULL, FOOLC_OK);
    g_key = NULL;
    for (int i = 0; i < N; i++) {
        ck_assert(g_ok[i]);
        ck_assert_msg(g_dist[i] >= want[i] * (1 - 1e-4), "%s: below the minimum", name);
        ck_assert_msg(g_dist[i] <= want[i] * 1.01, "%s: sample %d: %g vs minimum %g", name, i,
                      (double)g_dist[i], want[i]);
    }
}
END_TEST

/* Targeted: every success lands in the target class, and nearly all succeed. */
START_TEST(test_targeted)
{
    const named *at = &k_attacks[_i];
    lin_model lm;
    lin_random(&lm, D, 4, 0.5, 11);
    float x[N * D];
    int32_t y[N], t[N];
    for (int i = 0; i < N * D; i++) x[i] = (float)(0.5 + 0.3 * lin_hash(1000 + (uint64_t)i));
    for (int i = 0; i < N; i++) {
        y[i] = argmax(&lm, x + i * D);
        t[i] = (y[i] + 1 + i % 3) % 4;
    }
    run_one(&lm, at->name, x, y, t, N, "targeted", FOOLC_NOT_FOUND);
    int hits = 0;
    for (int i = 0; i < N; i++)
        if (g_ok[i]) {
            ck_assert_int_eq(argmax(&lm, g_xadv + i * D), t[i]);
            hits++;
        }
    ck_assert_msg(hits >= N - 1, "%s: %d of %d targets reached", at->name, hits, N);
}
END_TEST

/* A fixed epsilon: success exactly where the minimum is below it (iterative attacks). */
START_TEST(test_fixed_epsilon)
{
    const named *at = &k_attacks[_i];
    lin_model lm;
    float x[N * D];
    int32_t y[N];
    double f[N], w[D];
    two_class(&lm, x, y, f);
    for (int j = 0; j < D; j++) w[j] = lm.W[1][j] - lm.W[0][j];
    double mins[N], eps = 0;
    for (int i = 0; i < N; i++) {
        mins[i] = fabs(f[i]) / dual(at->norm, w, D);
        eps += mins[i] / N;
    }
    foolc_oracle o = lin_oracle(&lm, 8, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new(at->name, &a));
    ck_ok(foolc_attack_set(a, "epsilon", eps));
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {N, 1, 1, D};
    foolc_status st = foolc_attack_run(a, m, s, x, y, NULL, 1, &r);
    ck_assert(st == FOOLC_OK || st == FOOLC_NOT_FOUND);
    for (int i = 0; i < N; i++) {
        if (fabs(mins[i] - eps) < 0.02 * eps) continue;
        ck_assert_msg(g_ok[i] == (mins[i] < eps), "%s: sample %d min %g eps %g found %d",
                      at->name, i, mins[i], eps, g_ok[i]);
        if (g_ok[i]) ck_assert(g_dist[i] <= eps * (1 + 1e-5));
    }
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* DeepFool's per-class gradients come from one call per step over the replicated batch:
 * on a two-class model one step suffices, so the gradient images are exactly one per
 * sample, and the trim costs forward passes only. */
START_TEST(test_deepfool_batched)
{
    lin_model lm;
    float x[N * D];
    int32_t y[N];
    double f[N];
    two_class(&lm, x, y, f);
    lin_model l5;
    lin_random(&l5, D, 5, 0.05, 9);
    run_one(&lm, "deepfool-l2", x, y, NULL, N, NULL, FOOLC_OK);
    for (int i = 0; i < N; i++)
        ck_assert_msg(g_q[i].backward == 1, "sample %d: %d backward images", i,
                      (int)g_q[i].backward);
    /* Five classes, candidates 10: four rows per image and step, and a forward pass decides
     * each new iterate. */
    for (int i = 0; i < N; i++) y[i] = argmax(&l5, x + i * D);
    run_one(&l5, "deepfool-l2", x, y, NULL, N, NULL, FOOLC_OK);
    for (int i = 0; i < N; i++) ck_assert_uint_eq(g_q[i].backward % 4, 0);
}
END_TEST

/* A small MLP trained for a few seconds on Fashion-MNIST: every attack fools every one of
 * a handful of correctly classified images. */
static foolc_net *g_net;
static foolc_data g_test;
static float g_fx[8 * 784];
static int32_t g_fy[8];
static int g_fn;

static void net_setup(void)
{
    foolc_data train;
    g_net = NULL;
    if (foolc_data_load("fashion-mnist", "train", &train) < 0) return;
    ck_ok(foolc_data_load("fashion-mnist", "test", &g_test));
    ck_ok(foolc_net_new("input c=1 h=28 w=28; flatten; dense out=32; relu; dense out=10", 1,
                        &g_net));
    foolc_data sub = train;
    sub.shape.n = 6000;
    foolc_train_opts to;
    foolc_train_defaults(&to);
    to.epochs = 2;
    ck_ok(foolc_net_train(g_net, &sub, &to, NULL, NULL, NULL));
    foolc_data_free(&train);
    g_fn = 0;
    for (int i = 0; i < 100 && g_fn < 6; i++) {
        float z[10];
        ck_ok(foolc_net_forward(g_net, g_test.x + (size_t)i * 784, 1, z));
        int best = 0;
        for (int j = 1; j < 10; j++) if (z[j] > z[best]) best = j;
        if (best != g_test.y[i]) continue;
        memcpy(g_fx + g_fn * 784, g_test.x + (size_t)i * 784, 784 * sizeof(float));
        g_fy[g_fn++] = best;
    }
}

static void net_teardown(void)
{
    foolc_net_free(g_net);
    foolc_data_free(&g_test);
}

START_TEST(test_fashion_mnist)
{
    if (!g_net) FOOLC_SKIP("Fashion-MNIST is not installed (Debian: dataset-fashion-mnist)");
    const char *name = k_attacks[_i].name;
    ck_assert_int_ge(g_fn, 6);
    foolc_oracle o;
    ck_ok(foolc_net_oracle(g_net, 8, &o));
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {g_fn, 1, 28, 28};
    ck_ok(foolc_attack_run(a, m, s, g_fx, g_fy, NULL, 1, &r));
    for (int i = 0; i < g_fn; i++) {
        ck_assert(g_ok[i]);
        float z[10];
        ck_ok(foolc_net_forward(g_net, g_xadv + i * 784, 1, z));
        int best = 0;
        for (int j = 1; j < 10; j++) if (z[j] > z[best]) best = j;
        ck_assert_int_ne(best, g_fy[i]);
    }
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* ---- issue 18: linear models with the box active, and saturated logits ---- */

/* The configurations (inputs, classes) and every attack that searches a minimum, gradient
 * ones (median <= 1.01, max <= 1.05 of the exact minimum) and decision ones (median <= 1.02;
 * pointwise <= 1.10 in L0), with the configurations each is tested on. */
static const int32_t k_cfg[4][2] = {{64, 2}, {64, 10}, {784, 2}, {784, 10}};
#define LIN_N 6

static const struct lin_case {
    const char *name;
    double med, max;
    int cfgs;   /* bit c: configuration c */
} k_lin[] = {
    {"cw-l2", 1.01, 1.05, 15},       {"ead", 1.01, 1.05, 15},        {"ddn", 1.01, 1.05, 15},
    {"newtonfool", 1.01, 1.05, 15},  {"fmn-l0", 1.01, 1.05, 15},     {"fmn-l1", 1.01, 1.05, 15},
    {"fmn-l2", 1.01, 1.05, 15},      {"fmn-linf", 1.01, 1.05, 15},   {"fab-l1", 1.01, 1.05, 15},
    {"fab-l2", 1.01, 1.05, 15},      {"fab-linf", 1.01, 1.05, 15},   {"pgd-linf", 1.01, 1.05, 15},
    {"pgd-l2", 1.01, 1.05, 15},      {"pgd-l1", 1.01, 1.05, 15},     {"bim-linf", 1.01, 1.05, 15},
    {"bim-l2", 1.01, 1.05, 15},      {"bim-l1", 1.01, 1.05, 15},     {"mifgsm-linf", 1.01, 1.05, 15},
    {"mifgsm-l2", 1.01, 1.05, 15},   {"apgd-linf", 1.01, 1.05, 15},  {"apgd-l2", 1.01, 1.05, 15},
    {"fgsm", 1.01, 1.05, 15},        {"fgm-l2", 1.01, 1.05, 15},     {"fgm-l1", 1.01, 1.05, 15},
    {"deepfool-l2", 1.01, 1.05, 15}, {"deepfool-linf", 1.01, 1.05, 15},
    /* Decision attacks, median only, on 64 inputs (with 784 hsj-l2 is 3.5 % and hsj-linf
     * 10 % above the minimum, pointwise 1.7-2x in L0: docs/bench.md, issue 18 open). */
    {"hsj-l2", 1.02, 1e9, 3},        {"hsj-linf", 1.02, 1e9, 3},     {"boundary", 1.02, 1e9, 3},
};
#define N_LIN ((int)(sizeof k_lin / sizeof k_lin[0]))

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Each attack on each configuration: all found, median and max of distance / exact minimum
 * within the case's bounds, none below the minimum (float rounding aside). */
START_TEST(test_linear_box_exact)
{
    const struct lin_case *lc = &k_lin[_i];
    static lin_model lm;
    static float x[LIN_N * 784];
    int32_t y[LIN_N];
    foolc_norm p;
    ck_ok(foolc_attack_describe(lc->name, &p, NULL, NULL, NULL));
    for (int c = 0; c < 4; c++) {
        if (!(lc->cfgs >> c & 1)) continue;
        int32_t d = k_cfg[c][0];
        lin_box_config(&lm, d, k_cfg[c][1], LIN_N, x, y);
        g_key = NULL;
        run_one(&lm, lc->name, x, y, NULL, LIN_N, NULL, FOOLC_OK);
        double r[LIN_N];
        for (int i = 0; i < LIN_N; i++) {
            double want = lin_box_min(&lm, x + (size_t)i * d, y[i], p);
            ck_assert_msg(g_ok[i], "%s d=%d k=%d: sample %d not found", lc->name, d,
                          k_cfg[c][1], i);
            r[i] = g_dist[i] / want;
            ck_assert_msg(r[i] >= 0.999, "%s d=%d k=%d: sample %d at %g below the minimum %g",
                          lc->name, d, k_cfg[c][1], i, (double)g_dist[i], want);
        }
        qsort(r, LIN_N, sizeof r[0], cmp_double);
        double med = 0.5 * (r[LIN_N / 2 - 1] + r[LIN_N / 2]);
        ck_assert_msg(med <= lc->med && r[LIN_N - 1] <= lc->max,
                      "%s d=%d k=%d: ratio median %.4f, max %.4f (bounds %g, %g)", lc->name, d,
                      k_cfg[c][1], med, r[LIN_N - 1], lc->med, lc->max);
    }
}
END_TEST

/* Every gradient attack of the registry on a 10-class linear model whose logits are
 * multiplied by 1e3 and by 1e30 (a softmax rounded to one-hot): every sample found, the
 * median distance within 1 % of the unscaled one. Left out: the new attacks (issue 18,
 * item 3) whose files are still being written and which do not meet this yet. */
static const char *const k_sat_pending[] = {"cw-linf"};
#define SAT_N 4
START_TEST(test_saturated_logits)
{
    const char *name = foolc_attack_name(_i);
    unsigned needs;
    foolc_norm p;
    ck_ok(foolc_attack_describe(name, &p, &needs, NULL, NULL));
    if (!(needs & FOOLC_NEEDS_GRAD)) return;
    for (size_t q = 0; q < sizeof k_sat_pending / sizeof k_sat_pending[0]; q++)
        if (!strcmp(name, k_sat_pending[q])) return;
    static lin_model lm;
    float x[SAT_N * 64], buf[256 * LIN_MAXK];
    int32_t y[SAT_N];
    lin_box_config(&lm, 64, 10, SAT_N, x, y);
    static const double scales[] = {1, 1e3, 1e30};
    double base = 0;
    for (int s = 0; s < 3; s++) {
        lin_scaled w = {lin_oracle(&lm, 256, 0), scales[s], NULL, NULL, buf};
        foolc_oracle o = lin_scaled_oracle(&w);
        foolc_model *m;
        foolc_attack *a;
        ck_ok(foolc_model_new(&o, &m));
        ck_ok(foolc_attack_new(name, &a));
        foolc_result r = {g_xadv, g_dist, g_ok, g_q};
        foolc_shape sh = {SAT_N, 1, 1, 64};
        foolc_status st = foolc_attack_run(a, m, sh, x, y, NULL, 1, &r);
        ck_assert_msg(st == FOOLC_OK, "%s at scale %g: %s (%s)", name, scales[s],
                      foolc_status_str(st), foolc_errmsg());
        double dd[SAT_N];
        for (int i = 0; i < SAT_N; i++) dd[i] = g_dist[i];
        qsort(dd, SAT_N, sizeof dd[0], cmp_double);
        double med = 0.5 * (dd[SAT_N / 2 - 1] + dd[SAT_N / 2]);
        if (s == 0) base = med;
        else
            ck_assert_msg(fabs(med / base - 1) <= 0.01, "%s at scale %g: median %g, unscaled %g",
                          name, scales[s], med, base);
        foolc_attack_free(a);
        foolc_model_free(m);
    }
}
END_TEST

Suite *foolc_suite_attacks_grad(void);
Suite *foolc_suite_attacks_grad(void)
{
    Suite *s = suite_create("attacks_grad");
    TCase *tc = tcase_create("linear");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_two_class_closed_form, 0, N_ATT);
    tcase_add_loop_test(tc, test_two_class_box, 0, N_ATT);
    tcase_add_loop_test(tc, test_multi_class, 0, (int)(sizeof k_multi / sizeof k_multi[0]));
    tcase_add_loop_test(tc, test_targeted, 0, N_ATT);
    tcase_add_loop_test(tc, test_fixed_epsilon, 0, N_ATT);
    tcase_add_test(tc, test_deepfool_batched);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("linear-box-saturated");
    tcase_set_timeout(tl, 60);
    tcase_add_loop_test(tl, test_linear_box_exact, 0, N_LIN);
    tcase_add_loop_test(tl, test_saturated_logits, 0, foolc_attack_count());
    suite_add_tcase(s, tl);
    TCase *tn = tcase_create("fashion-mnist");
    tcase_set_timeout(tn, 60);
    tcase_add_unchecked_fixture(tn, net_setup, net_teardown);
    tcase_add_loop_test(tn, test_fashion_mnist, 0, N_ATT);
    suite_add_tcase(s, tn);
    return s;
}
