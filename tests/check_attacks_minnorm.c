/* The minimum-norm attacks (C&W, EAD, DDN, FMN, FAB, NewtonFool) against closed-form
 * minima of two-class linear models, the exact L0 minimum of a linear model in a box,
 * targeted runs landing in their target class, full success on a small Fashion-MNIST
 * network trained in the test, and the selection-based projections against sorting. */
#include "testutil.h"
#include "linear.h"
#include "minnorm/minnorm.h"

#include <stdlib.h>

#define D 16
#define N 6

static float g_xadv[64 * 784], g_dist[64];
static uint8_t g_ok[64];
static foolc_counts g_q[64];

/* A two-class linear model with no bias and N inputs; with shift_min, inputs moved so that
 * their minima are known sizes well inside the box. */
static void two_class(lin_model *m2, float *x, int32_t *y, double wscale, double spread,
                      int shift_min)
{
    lin_random(m2, D, 2, wscale, 5);
    m2->b[0] = m2->b[1] = 0;
    for (int i = 0; i < N; i++) {
        double wx = 0;
        for (int j = 0; j < D; j++) {
            x[i * D + j] = (float)(0.5 + spread * lin_hash(77 + (uint64_t)(i * D + j)));
            wx += (m2->W[1][j] - m2->W[0][j]) * x[i * D + j];
        }
        y[i] = wx > 0;
        if (!shift_min) continue;
        /* Moves the input along w so that its L2 minimum is 0.04 + 0.02 i. */
        double n2 = 0;
        for (int j = 0; j < D; j++) n2 += pow(m2->W[1][j] - m2->W[0][j], 2);
        double sg = wx > 0 ? 1 : -1, shift = sg * (0.04 + 0.02 * i) - wx / sqrt(n2);
        for (int j = 0; j < D; j++)
            x[i * D + j] += (float)(shift * (m2->W[1][j] - m2->W[0][j]) / sqrt(n2));
    }
}

/* The two-class fixture with minima of known sizes, as a model (batches of 8). */
static foolc_model *two_class_model(lin_model *m2, float *x, int32_t *y)
{
    two_class(m2, x, y, 0.05, 0.2, 1);
    foolc_oracle o = lin_oracle(m2, 8, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    return m;
}

/* Closed-form minimum of sample i in norm p (L1, L2, Linf) away from the box. */
static double lin_min(const lin_model *m2, const float *xi, foolc_norm p)
{
    double wx = 0, n1 = 0, n2 = 0, ninf = 0;
    for (int j = 0; j < D; j++) {
        double w = m2->W[1][j] - m2->W[0][j];
        wx += w * xi[j];
        n1 += fabs(w);
        n2 += w * w;
        ninf = fabs(w) > ninf ? fabs(w) : ninf;
    }
    wx += m2->b[1] - m2->b[0];
    return fabs(wx) / (p == FOOLC_L1 ? ninf : p == FOOLC_L2 ? sqrt(n2) : n1);
}

/* Runs attack `name` with up to two parameter overrides; returns the status. */
/* Set: run_attack turns the attack's boundary polish off (tests of the final search alone). */
static int g_no_polish;

static foolc_status run_attack(const char *name, foolc_model *m, const float *x,
                               const int32_t *y, const int32_t *t, int32_t n, int32_t d,
                               const foolc_criterion *c, const char *k1, double v1)
{
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    if (k1) ck_ok(foolc_attack_set(a, k1, v1));
    if (g_no_polish) ck_ok(foolc_attack_set(a, "polish", 0));
    if (c) ck_ok(foolc_attack_set_criterion(a, c));
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {n, 1, 1, d};
    foolc_status st = foolc_attack_run(a, m, s, x, y, t, 3, &r);
    foolc_attack_free(a);
    return st;
}

static const struct { const char *name; foolc_norm norm; } k_closed[] = {
    {"cw-l2", FOOLC_L2},     {"ddn", FOOLC_L2},       {"fmn-l2", FOOLC_L2},
    {"fab-l2", FOOLC_L2},    {"newtonfool", FOOLC_L2}, {"ead", FOOLC_L1},
    {"fmn-l1", FOOLC_L1},    {"fab-l1", FOOLC_L1},    {"fmn-linf", FOOLC_LINF},
    {"fab-linf", FOOLC_LINF},
};

/* Each attack within 1 % of the closed-form minimum of its norm, never below it. */
START_TEST(test_closed_form)
{
    const char *name = k_closed[_i].name;
    foolc_norm p = k_closed[_i].norm;
    lin_model m2;
    float x[N * D];
    int32_t y[N];
    foolc_model *m = two_class_model(&m2, x, y);
    ck_ok(run_attack(name, m, x, y, NULL, N, D, NULL, NULL, 0));
    for (int i = 0; i < N; i++) {
        double want = lin_min(&m2, x + i * D, p);
        ck_assert_msg(want < 0.25, "fixture: minimum %g reaches the box", want);
        ck_assert(g_ok[i]);
        ck_assert_msg(g_dist[i] >= want * (1 - 1e-5), "%s sample %d below the minimum: %g < %g",
                      name, i, (double)g_dist[i], want);
        ck_assert_msg(g_dist[i] <= want * 1.01, "%s sample %d: %g vs minimum %g", name, i,
                      (double)g_dist[i], want);
        ck_assert(g_q[i].forward > 0);
    }
    foolc_model_free(m);
}
END_TEST

/* The final search on the segment from the clean input to the best adversarial: two DDN
 * steps leave the iterate far past the boundary; the search must end on the boundary (the
 * margin of a linear model is linear along the segment: within 2^-20 of the margin's
 * range) in far fewer queries than the 20 halvings of a plain bisection. */
START_TEST(test_final_search)
{
    lin_model m2;
    float x[N * D];
    int32_t y[N];
    foolc_model *m = two_class_model(&m2, x, y);
    g_no_polish = 1;
    ck_ok(run_attack("ddn", m, x, y, NULL, N, D, NULL, "steps", 2));
    g_no_polish = 0;
    for (int i = 0; i < N; i++) {
        float z0[2], z[2];
        lin_logits(&m2, x + i * D, z0);
        lin_logits(&m2, g_xadv + i * D, z);
        double m0 = fabs((double)z0[1] - z0[0]), mg = (double)z[y[i]] - z[1 - y[i]];
        ck_assert(g_ok[i]);
        ck_assert_msg(mg < 0, "sample %d not adversarial (margin %g)", i, mg);
        ck_assert_msg(-mg <= 2e-6 * m0 + 1e-5, "sample %d: margin %g, clean %g", i, mg, m0);
        /* 2 steps, the adversarial end, the clean end, then the search itself (8-9 in
         * all here; halvings to the same width: 23) */
        ck_assert_msg(g_q[i].forward <= 2 + 2 + 8, "sample %d: %lld forward passes", i,
                      (long long)g_q[i].forward);
    }
    foolc_model_free(m);
}
END_TEST

/* The exact L0 minimum of a two-class linear model in the box [0, 1]: coordinate j can
 * move the margin by at most |w_j| * cap_j; the greedy sum of the largest is optimal. */
static int l0_min(const lin_model *m2, const float *xi)
{
    double wx = 0, gain[D];
    for (int j = 0; j < D; j++) wx += (m2->W[1][j] - m2->W[0][j]) * xi[j];
    wx += m2->b[1] - m2->b[0];
    for (int j = 0; j < D; j++) {
        double w = m2->W[1][j] - m2->W[0][j];
        double toward = wx > 0 ? -w : w;   /* the sign that reduces |wx| */
        gain[j] = toward > 0 ? toward * (1.0 - xi[j]) : -toward * xi[j];
    }
    double need = fabs(wx);
    for (int count = 1; count <= D; count++) {
        int best = 0;
        for (int j = 1; j < D; j++) if (gain[j] > gain[best]) best = j;
        need -= gain[best];
        gain[best] = -1;
        if (need < 0) return count;
    }
    return D + 1;
}

START_TEST(test_fmn_l0_exact)
{
    lin_model m2;
    float x[N * D];
    int32_t y[N];
    two_class(&m2, x, y, 0.5, 0.45, 0);
    m2.b[1] = 1.5;     /* margins that need several coordinates */
    for (int i = 0; i < N; i++) {
        float z[2];
        lin_logits(&m2, x + i * D, z);
        y[i] = z[1] > z[0];
    }
    foolc_oracle o = lin_oracle(&m2, 8, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    ck_ok(run_attack("fmn-l0", m, x, y, NULL, N, D, NULL, NULL, 0));
    int multi = 0;
    for (int i = 0; i < N; i++) {
        int want = l0_min(&m2, x + i * D);
        multi += want > 1;
        ck_assert(g_ok[i]);
        ck_assert_msg((int)g_dist[i] == want, "fmn-l0 sample %d: %g vs minimum %d", i,
                      (double)g_dist[i], want);
    }
    ck_assert_int_ge(multi, 2);
    foolc_model_free(m);
}
END_TEST

static const char *const k_targeted[] = {"cw-l2", "ead", "ddn", "fmn-l0", "fmn-l1", "fmn-l2",
                                         "fmn-linf", "fab-linf", "fab-l2", "fab-l1"};

/* Targeted runs on a 4-class model land in the target class. */
START_TEST(test_targeted)
{
    const char *name = k_targeted[_i];
    lin_model m4;
    lin_random(&m4, D, 4, 0.5, 11);
    float x[N * D];
    int32_t y[N], t[N];
    for (int i = 0; i < N * D; i++) x[i] = (float)(0.5 + 0.3 * lin_hash(1000 + (uint64_t)i));
    for (int i = 0; i < N; i++) {
        float z[4];
        lin_logits(&m4, x + i * D, z);
        int best = 0;
        for (int j = 1; j < 4; j++) if (z[j] > z[best]) best = j;
        y[i] = best;
        t[i] = (best + 1 + i % 3) % 4;
    }
    foolc_oracle o = lin_oracle(&m4, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_criterion *c;
    ck_ok(foolc_criterion_new("targeted", &c));
    foolc_status st = run_attack(name, m, x, y, t, N, D, c, NULL, 0);
    ck_assert_msg(st == FOOLC_OK || st == FOOLC_NOT_FOUND, "%s: %s", name, foolc_errmsg());
    int hits = 0;
    for (int i = 0; i < N; i++) {
        if (!g_ok[i]) continue;
        float z[4];
        lin_logits(&m4, g_xadv + i * D, z);
        for (int j = 0; j < 4; j++) if (j != t[i]) ck_assert(z[t[i]] > z[j]);
        hits++;
    }
    ck_assert_msg(hits >= N - 1, "%s: %d of %d targeted", name, hits, N);
    foolc_criterion_free(c);
    foolc_model_free(m);
}
END_TEST

/* NewtonFool is untargeted only: a targeted criterion is refused. */
START_TEST(test_newtonfool_untargeted_only)
{
    lin_model m4;
    lin_random(&m4, D, 4, 0.5, 11);
    float x[D];
    for (int j = 0; j < D; j++) x[j] = 0.5f;
    int32_t y = 0, t = 1;
    foolc_oracle o = lin_oracle(&m4, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_criterion *c;
    ck_ok(foolc_criterion_new("targeted", &c));
    float z[4];
    lin_logits(&m4, x, z);
    for (int j = 1; j < 4; j++) if (z[j] > z[y]) y = j;
    t = (y + 1) % 4;
    ck_status(run_attack("newtonfool", m, x, &y, &t, 1, D, c, NULL, 0), FOOLC_E_UNSUPPORTED);
    foolc_criterion_free(c);
    foolc_model_free(m);
}
END_TEST

/* A small MLP trained for a few seconds on Fashion-MNIST: every attack fools it on every
 * correctly classified image of a handful. */
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
    for (int i = 0; i < 100 && g_fn < 8; i++) {
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

static const char *const k_all[] = {"cw-l2", "ead", "ddn", "fmn-l0", "fmn-l1", "fmn-l2",
                                    "fmn-linf", "fab-linf", "fab-l2", "fab-l1", "newtonfool"};

START_TEST(test_fashion_mnist)
{
    if (!g_net) FOOLC_SKIP("Fashion-MNIST is not installed (Debian: dataset-fashion-mnist)");
    const char *name = k_all[_i];
    ck_assert_int_ge(g_fn, 6);
    foolc_oracle o;
    ck_ok(foolc_net_oracle(g_net, 8, &o));
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    if (!strcmp(name, "cw-l2") || !strcmp(name, "ead")) ck_ok(foolc_attack_set(a, "steps", 200));
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {g_fn, 1, 28, 28};
    ck_ok(foolc_attack_run(a, m, s, g_fx, g_fy, NULL, 1, &r));
    /* Re-evaluated in one batch, as the library's verification does (a point bisected to
     * the boundary may flip under another batch size's rounding). */
    float z_all[8 * 10];
    ck_ok(foolc_net_forward(g_net, g_xadv, g_fn, z_all));
    for (int i = 0; i < g_fn; i++) {
        ck_assert(g_ok[i]);
        const float *z = z_all + i * 10;
        int best = 0;
        for (int j = 1; j < 10; j++) if (z[j] > z[best]) best = j;
        ck_assert_int_ne(best, g_fy[i]);
    }
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* ---- The O(d) projections (quickselect, Michelot) against sort-based references ---- */

static int cmp_dbl_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

typedef struct ref_key {
    double key;
    size_t i;
} ref_key;

static int cmp_ref_key(const void *a, const void *b)
{
    const ref_key *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key ? 1 : (x->i > y->i) - (x->i < y->i);
}

/* The L1-ball projection by a full sort (the textbook algorithm). */
static void ref_l1_ball(float *v, size_t d, double r)
{
    double *u = malloc(d * sizeof *u), cum = 0, theta = 0, n1 = 0;
    for (size_t j = 0; j < d; j++) n1 += fabs((double)v[j]);
    if (n1 > r) {
        for (size_t j = 0; j < d; j++) u[j] = fabs((double)v[j]);
        qsort(u, d, sizeof *u, cmp_dbl_desc);
        for (size_t j = 0; j < d; j++) {
            cum += u[j];
            double t = (cum - r) / (double)(j + 1);
            if (u[j] - t > 0) theta = t;
            else break;
        }
        for (size_t j = 0; j < d; j++) {
            double a = fabs((double)v[j]) - theta;
            v[j] = a > 0 ? (float)(v[j] > 0 ? a : -a) : 0.0f;
        }
    }
    free(u);
}

/* The minimal-norm step onto w.delta = c within the box by sorting breakpoints. */
static void ref_plane(foolc_norm norm, const float *p, const float *w, double c, size_t d,
                      float lo, float hi, float *delta)
{
    double *dir = calloc(d, sizeof *dir), *cap = calloc(d, sizeof *cap);
    ref_key *ord = calloc(d, sizeof *ord);
    double sg = c > 0 ? 1 : -1, need = fabs(c);
    size_t n = 0;
    memset(delta, 0, d * sizeof *delta);
    for (size_t j = 0; j < d; j++) {
        double a = fabs((double)w[j]);
        dir[j] = w[j] == 0 ? 0 : (w[j] > 0 ? sg : -sg);
        cap[j] = dir[j] > 0 ? (double)hi - p[j] : dir[j] < 0 ? (double)p[j] - lo : 0;
        if (cap[j] < 0) cap[j] = 0;
        if (a == 0 || cap[j] == 0) continue;
        ord[n].key = norm == FOOLC_L1 ? -a : cap[j] / (norm == FOOLC_L2 ? a : 1.0);
        ord[n++].i = j;
    }
    qsort(ord, n, sizeof *ord, cmp_ref_key);
    if (norm == FOOLC_L1) {
        double left = need;
        for (size_t q = 0; q < n && left > 0; q++) {
            size_t j = ord[q].i;
            double a = fabs((double)w[j]), take = fmin(cap[j], left / a);
            delta[j] = (float)(dir[j] * take);
            left -= a * take;
        }
    } else {
        double slope = 0, sat = 0;
        for (size_t q = 0; q < n; q++) {
            double a = fabs((double)w[ord[q].i]);
            slope += a * (norm == FOOLC_L2 ? a : 1.0);
        }
        size_t q = 0;
        for (; q < n; q++) {
            size_t j = ord[q].i;
            double a = fabs((double)w[j]);
            if (sat + ord[q].key * slope >= need) break;
            sat += a * cap[j];
            slope -= a * (norm == FOOLC_L2 ? a : 1.0);
        }
        double lam = q < n && slope > 0 ? (need - sat) / slope : ord[n - 1].key;
        for (size_t r = 0; r < n; r++) {
            size_t j = ord[r].i;
            double alpha = norm == FOOLC_L2 ? fabs((double)w[j]) : 1.0;
            delta[j] = (float)(dir[j] * fmin(lam * alpha, cap[j]));
        }
    }
    free(dir);
    free(cap);
    free(ord);
}

START_TEST(test_projections_vs_sort)
{
    enum { DD = 300 };
    float v[DD], u[DD], p[DD], w[DD], e1[DD], e2[DD];
    double work[DD];
    void *pw = malloc(foolc__mn_plane_work(DD));
    uint64_t st = 12345;
    for (int trial = 0; trial < 300; trial++) {
        size_t d = 1 + (size_t)(trial * 37) % DD;
        int quant = trial % 3 == 0;   /* many ties */
        for (size_t j = 0; j < d; j++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            double r1 = (double)(st >> 11) / 9007199254740992.0;
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            double r2 = (double)(st >> 11) / 9007199254740992.0;
            v[j] = (float)(quant ? floor(r1 * 8) / 8 - 0.5 : r1 - 0.5);
            if (trial % 5 == 0 && j % 3 == 0) v[j] = 0;
            p[j] = (float)r2;
            w[j] = quant ? (float)(floor(r1 * 5) - 2) : v[j];
        }
        double n1 = 0;
        for (size_t j = 0; j < d; j++) n1 += fabs((double)v[j]);
        /* L1 ball, radius a fraction of the norm. */
        double r = n1 * (0.05 + 0.9 * (trial % 7) / 7.0);
        memcpy(u, v, d * sizeof *v);
        foolc__project_ball(FOOLC_L1, u, d, r, work);
        memcpy(e1, v, d * sizeof *v);
        ref_l1_ball(e1, d, r);
        for (size_t j = 0; j < d; j++) ck_assert_float_eq_tol(u[j], e1[j], 1e-5);
        /* L0 ball: the floor(r) largest magnitudes kept, ties in index order. */
        double r0 = (double)((size_t)trial % (d + 1)) + 0.5;
        memcpy(u, v, d * sizeof *v);
        foolc__project_ball(FOOLC_L0, u, d, r0, work);
        size_t kept = 0;
        for (size_t j = 0; j < d; j++) kept += u[j] != 0;
        size_t nz = 0;
        for (size_t j = 0; j < d; j++) nz += v[j] != 0;
        size_t want = (size_t)r0 < nz ? (size_t)r0 : nz;
        ck_assert_uint_eq(kept, want);
        for (size_t j = 0; j < d; j++) {
            if (u[j] == 0) continue;
            ck_assert_float_eq(u[j], v[j]);
            size_t bigger = 0;   /* a kept entry is not beaten by more than want-1 others */
            for (size_t q = 0; q < d; q++) bigger += fabsf(v[q]) > fabsf(v[j]);
            ck_assert_uint_lt(bigger, want);
        }
        /* Hyperplane steps in L1, L2, Linf with reachable and unreachable targets. */
        double reach = 0;
        for (size_t j = 0; j < d; j++) reach += fabs((double)w[j]) * (w[j] > 0 ? 1 - p[j] : p[j]);
        double c = reach * (trial % 4 == 3 ? 1.5 : 0.02 + 0.3 * (trial % 11) / 11.0);
        if (trial % 2) c = -c;
        static const foolc_norm k_pn[3] = {FOOLC_L1, FOOLC_L2, FOOLC_LINF};
        for (int t = 0; t < 3; t++) {
            foolc__mn_plane_proj(k_pn[t], p, w, c, d, 0.0f, 1.0f, e1, pw);
            ref_plane(k_pn[t], p, w, c, d, 0.0f, 1.0f, e2);
            for (size_t j = 0; j < d; j++) ck_assert_float_eq_tol(e1[j], e2[j], 1e-5);
        }
    }
    free(pw);
}
END_TEST

Suite *foolc_suite_attacks_minnorm(void);
Suite *foolc_suite_attacks_minnorm(void)
{
    Suite *s = suite_create("attacks_minnorm");
    TCase *tc = tcase_create("linear");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_closed_form, 0, (int)(sizeof k_closed / sizeof k_closed[0]));
    tcase_add_test(tc, test_fmn_l0_exact);
    tcase_add_test(tc, test_final_search);
    tcase_add_loop_test(tc, test_targeted, 0, (int)(sizeof k_targeted / sizeof k_targeted[0]));
    tcase_add_test(tc, test_newtonfool_untargeted_only);
    tcase_add_test(tc, test_projections_vs_sort);
    suite_add_tcase(s, tc);
    TCase *tn = tcase_create("fashion-mnist");
    tcase_set_timeout(tn, 60);
    tcase_add_unchecked_fixture(tn, net_setup, net_teardown);
    tcase_add_loop_test(tn, test_fashion_mnist, 0, (int)(sizeof k_all / sizeof k_all[0]));
    suite_add_tcase(s, tn);
    return s;
}
