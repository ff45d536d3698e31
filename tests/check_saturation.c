/* Saturated logits on a real net (issue 18, item 2): every gradient attack of the registry,
 * with its default parameters, on a small MLP trained on Fashion-MNIST whose logits (and
 * the seed's d loss / d logits) are multiplied by 1e3 and by 1e30 through a callback oracle
 * (tests/linear.h's lin_scaled), and on the same architecture trained at softmax
 * temperature 100 (defensive distillation) and used as it is, against the same net with its
 * logits divided by 100: every sample found and the median distance within 1 % of the
 * unscaled one. The losses are taken of the logits at their temperature
 * (foolc__logit_temp, lib/loss.c), so a scaling changes no attack's path beyond rounding
 * (docs/reliability.md, "Saturated logits"). The linear-model form of this test, with the
 * exact minima, is check_attacks_grad's case linear-box-saturated. */
#include "linear.h"
#include "testutil.h"

#include <math.h>

#define SAT_N 4      /* images per net */
#define SAT_NETS 2   /* the plain MLP, the distilled one */

static foolc_net *g_net[SAT_NETS];
static float g_x[SAT_NETS][SAT_N * 784], g_xadv[SAT_N * 784], g_dist[SAT_N];
static int32_t g_y[SAT_NETS][SAT_N], g_n[SAT_NETS];
static uint8_t g_ok[SAT_N];
static foolc_counts g_q[SAT_N];

/* A 784-32-10 MLP trained 2 epochs on 6,000 training images at softmax temperature t, and
 * the first SAT_N test images it classifies right. */
static void train_net(int w, double t, const foolc_data *train, const foolc_data *test)
{
    g_net[w] = NULL;
    ck_ok(foolc_net_new("input c=1 h=28 w=28; flatten; dense out=32; relu; dense out=10", 1,
                        &g_net[w]));
    foolc_data sub = *train;
    sub.shape.n = 6000;
    foolc_train_opts to;
    foolc_train_defaults(&to);
    to.epochs = 2;
    to.temperature = t;
    ck_ok(foolc_net_train(g_net[w], &sub, &to, NULL, NULL, NULL));
    g_n[w] = 0;
    for (int i = 0; i < 200 && g_n[w] < SAT_N; i++) {
        float z[10];
        ck_ok(foolc_net_forward(g_net[w], test->x + (size_t)i * 784, 1, z));
        int best = 0;
        for (int j = 1; j < 10; j++) if (z[j] > z[best]) best = j;
        if (best != test->y[i]) continue;
        memcpy(g_x[w] + (size_t)g_n[w] * 784, test->x + (size_t)i * 784, 784 * sizeof(float));
        g_y[w][g_n[w]++] = best;
    }
}

static void sat_setup(void)
{
    foolc_data train, test;
    if (foolc_data_load("fashion-mnist", "train", &train) < 0) return;
    ck_ok(foolc_data_load("fashion-mnist", "test", &test));
    train_net(0, 1, &train, &test);
    train_net(1, 100, &train, &test);
    foolc_data_free(&train);
    foolc_data_free(&test);
}

static void sat_teardown(void)
{
    for (int w = 0; w < SAT_NETS; w++) foolc_net_free(g_net[w]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fewer iterations for the attacks that take most (the same at every scale): the suite stays
 * within seconds of CPU. */
static const struct { const char *name, *key; double v; } k_less[] = {
    {"cw-l2", "steps", 200},      {"ead", "steps", 200},
    {"sdf", "steps", 20},         {"alma-l1", "steps", 200},
    {"alma-l2", "steps", 200},    {"sigma-zero", "steps", 200},
};

/* Runs attack `name` on net w with its logits multiplied by s: the median distance, every
 * sample required to be found. */
static double median_at(const char *name, int w, double s)
{
    static float buf[8 * 10];
    foolc_oracle no;
    ck_ok(foolc_net_oracle(g_net[w], 8, &no));
    lin_scaled ws = {no, s, NULL, NULL, buf};
    foolc_oracle o = lin_scaled_oracle(&ws);
    foolc_model *m;
    foolc_attack *a;
    ck_ok(foolc_model_new(&o, &m));
    ck_ok(foolc_attack_new(name, &a));
    for (size_t q = 0; q < sizeof k_less / sizeof k_less[0]; q++)
        if (!strcmp(name, k_less[q].name)) ck_ok(foolc_attack_set(a, k_less[q].key, k_less[q].v));
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape sh = {g_n[w], 1, 28, 28};
    foolc_status st = foolc_attack_run(a, m, sh, g_x[w], g_y[w], NULL, 1, &r);
    ck_assert_msg(st == FOOLC_OK, "%s, net %d, logits x %g: %s (%s)", name, w, s,
                  foolc_status_str(st), foolc_errmsg());
    double dd[SAT_N];
    for (int i = 0; i < g_n[w]; i++) {
        ck_assert_msg(g_ok[i], "%s, net %d, logits x %g: sample %d not found", name, w, s, i);
        dd[i] = g_dist[i];
    }
    qsort(dd, (size_t)g_n[w], sizeof dd[0], cmp_double);
    foolc_attack_free(a);
    foolc_model_free(m);
    return g_n[w] % 2 ? dd[g_n[w] / 2] : 0.5 * (dd[g_n[w] / 2 - 1] + dd[g_n[w] / 2]);
}

START_TEST(test_saturated_net)
{
    const char *name = foolc_attack_name(_i);
    unsigned needs;
    ck_ok(foolc_attack_describe(name, NULL, &needs, NULL, NULL));
    if (!(needs & FOOLC_NEEDS_GRAD)) return;
    if (!g_net[0]) FOOLC_SKIP("Fashion-MNIST is not installed (Debian: dataset-fashion-mnist)");
    /* The plain MLP at 1, 1e3, 1e30; the distilled one at 1/100 (its training temperature,
     * the reference) and as it is. */
    static const struct { int w; double ref, s[2]; } k_runs[SAT_NETS] = {
        {0, 1, {1e3, 1e30}}, {1, 0.01, {1, 0}}};
    for (int r = 0; r < SAT_NETS; r++) {
        int w = k_runs[r].w;
        ck_assert_int_eq(g_n[w], SAT_N);
        double base = median_at(name, w, k_runs[r].ref);
        for (int q = 0; q < 2 && k_runs[r].s[q] > 0; q++) {
            double med = median_at(name, w, k_runs[r].s[q]);
            ck_assert_msg(fabs(med / base - 1) <= 0.01,
                          "%s, net %d: median %g with logits x %g, %g with logits x %g", name,
                          w, med, k_runs[r].s[q], base, k_runs[r].ref);
        }
    }
}
END_TEST

Suite *foolc_suite_saturation(void);
Suite *foolc_suite_saturation(void)
{
    Suite *s = suite_create("saturation");
    TCase *tc = tcase_create("net");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, sat_setup, sat_teardown);
    tcase_add_loop_test(tc, test_saturated_net, 0, foolc_attack_count());
    suite_add_tcase(s, tc);
    return s;
}
