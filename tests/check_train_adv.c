/* PGD adversarial training (foolc_train_opts adv_eps, adv_steps, adv_step; issue 18, item
 * 4): the options are checked; a struct of the header before them trains as plain
 * training does; the same seed gives the same weights; and a small MLP trained on PGD
 * points at Linf 0.1 is more robust than the same net trained plainly on the same images:
 * pgd-linf's minimal Linf perturbation is larger on the test images both classify right,
 * and fewer of them fall within 0.05. */
#include "testutil.h"

#include <math.h>
#include <stddef.h>

#define ADV_TRAIN 12000  /* training images */
#define ADV_TEST 40      /* test images looked at */

static const char *const k_arch = "input c=1 h=28 w=28; flatten; dense out=32; relu; "
                                  "dense out=10";

/* A fresh 784-32-10 MLP (seed 1) trained 3 epochs on the first ADV_TRAIN images with PGD
 * at Linf eps (0: plain) in 3 steps; o_size as the caller's struct. */
static foolc_net *train_mlp(const foolc_data *train, double eps, size_t o_size)
{
    foolc_net *net;
    ck_ok(foolc_net_new(k_arch, 1, &net));
    foolc_data sub = *train;
    sub.shape.n = ADV_TRAIN;
    foolc_train_opts to;
    foolc_train_defaults(&to);
    to.epochs = 3;
    to.adv_eps = eps;
    to.adv_steps = 3;
    ck_ok(foolc_net_train_sized(net, &sub, &to, o_size, NULL, NULL, NULL));
    return net;
}

static void logits_of(foolc_net *net, const foolc_data *test, float *z)
{
    ck_ok(foolc_net_forward(net, test->x, ADV_TEST, z));
}

/* pgd-linf's minimal Linf distance on each of the n images (infinite where not found). */
static void pgd_dist(foolc_net *net, const float *x, const int32_t *y, int32_t n, float *dist)
{
    static float xadv[ADV_TEST * 784];
    static uint8_t ok[ADV_TEST];
    static foolc_counts q[ADV_TEST];
    foolc_oracle o;
    ck_ok(foolc_net_oracle(net, ADV_TEST, &o));
    foolc_model *m;
    foolc_attack *a;
    ck_ok(foolc_model_new(&o, &m));
    ck_ok(foolc_attack_new("pgd-linf", &a));
    foolc_result r = {xadv, dist, ok, q};
    foolc_shape sh = {n, 1, 28, 28};
    ck_ok(foolc_attack_run(a, m, sh, x, y, NULL, 1, &r));
    for (int32_t i = 0; i < n; i++)
        if (!ok[i]) dist[i] = INFINITY;
    foolc_attack_free(a);
    foolc_model_free(m);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

START_TEST(test_adv_options)
{
    foolc_net *net;
    ck_ok(foolc_net_new(k_arch, 1, &net));
    float x[784] = {0};
    int32_t y = 3;
    foolc_data d = {{1, 1, 28, 28}, 10, x, &y};
    foolc_train_opts to;
    foolc_train_defaults(&to);
    ck_assert(to.adv_eps == 0 && to.adv_steps == 7 && to.adv_step == 0);
    to.epochs = 1;
    to.adv_eps = -0.1;
    ck_status(foolc_net_train(net, &d, &to, NULL, NULL, NULL), FOOLC_E_INVALID);
    to.adv_eps = NAN;
    ck_status(foolc_net_train(net, &d, &to, NULL, NULL, NULL), FOOLC_E_INVALID);
    to.adv_eps = 0.1;
    to.adv_steps = 0;
    ck_status(foolc_net_train(net, &d, &to, NULL, NULL, NULL), FOOLC_E_INVALID);
    ck_assert_msg(strstr(foolc_errmsg(), "adv_steps") != NULL, "%s", foolc_errmsg());
    to.adv_steps = 2;
    to.adv_step = -1;
    ck_status(foolc_net_train(net, &d, &to, NULL, NULL, NULL), FOOLC_E_INVALID);
    to.adv_step = 0;
    ck_ok(foolc_net_train(net, &d, &to, NULL, NULL, NULL));
    foolc_net_free(net);
}
END_TEST

START_TEST(test_adv_robust)
{
    foolc_data train, test;
    if (foolc_data_load("fashion-mnist", "train", &train) < 0)
        FOOLC_SKIP("Fashion-MNIST is not installed (Debian: dataset-fashion-mnist)");
    ck_ok(foolc_data_load("fashion-mnist", "test", &test));
    /* A struct that ends before adv_eps trains plainly: the same weights as adv_eps = 0. */
    foolc_net *plain = train_mlp(&train, 0, sizeof(foolc_train_opts));
    foolc_net *old = train_mlp(&train, 0.1, offsetof(foolc_train_opts, adv_eps));
    foolc_net *adv = train_mlp(&train, 0.1, sizeof(foolc_train_opts));
    foolc_net *adv2 = train_mlp(&train, 0.1, sizeof(foolc_train_opts));
    static float z[4][ADV_TEST * 10];
    logits_of(plain, &test, z[0]);
    logits_of(old, &test, z[1]);
    logits_of(adv, &test, z[2]);
    logits_of(adv2, &test, z[3]);
    ck_assert_msg(!memcmp(z[0], z[1], sizeof z[0]), "an older struct did not train plainly");
    ck_assert_msg(!memcmp(z[2], z[3], sizeof z[2]), "adversarial training is not deterministic");
    ck_assert_msg(memcmp(z[0], z[2], sizeof z[0]), "adv_eps changed nothing");

    /* The test images both nets classify right. */
    static float x[ADV_TEST * 784];
    int32_t y[ADV_TEST], n = 0;
    for (int i = 0; i < ADV_TEST; i++) {
        int a0 = 0, a2 = 0;
        for (int j = 1; j < 10; j++) {
            if (z[0][i * 10 + j] > z[0][i * 10 + a0]) a0 = j;
            if (z[2][i * 10 + j] > z[2][i * 10 + a2]) a2 = j;
        }
        if (a0 != test.y[i] || a2 != test.y[i]) continue;
        memcpy(x + (size_t)n * 784, test.x + (size_t)i * 784, 784 * sizeof(float));
        y[n++] = test.y[i];
    }
    ck_assert_msg(n >= ADV_TEST / 2, "only %d of %d test images right on both nets", (int)n,
                  ADV_TEST);
    static float d0[ADV_TEST], d2[ADV_TEST];
    pgd_dist(plain, x, y, n, d0);
    pgd_dist(adv, x, y, n, d2);
    int in0 = 0, in2 = 0;
    for (int32_t i = 0; i < n; i++) {
        in0 += d0[i] <= 0.05f;
        in2 += d2[i] <= 0.05f;
    }
    qsort(d0, (size_t)n, sizeof *d0, cmp_float);
    qsort(d2, (size_t)n, sizeof *d2, cmp_float);
    ck_assert_msg(d2[n / 2] > 1.5f * d0[n / 2] && in2 < in0,
                  "pgd-linf median %g (%d of %d within 0.05) on the adversarially trained "
                  "net, %g (%d) on the plain one", (double)d2[n / 2], in2, (int)n,
                  (double)d0[n / 2], in0);
    foolc_net_free(plain);
    foolc_net_free(old);
    foolc_net_free(adv);
    foolc_net_free(adv2);
    foolc_data_free(&train);
    foolc_data_free(&test);
}
END_TEST

Suite *foolc_suite_train_adv(void);
Suite *foolc_suite_train_adv(void)
{
    Suite *s = suite_create("train_adv");
    TCase *tc = tcase_create("pgd");
    tcase_set_timeout(tc, 600); /* two trainings: minutes under ASan on a loaded machine */
    tcase_add_test(tc, test_adv_options);
    tcase_add_test(tc, test_adv_robust);
    suite_add_tcase(s, tc);
    return s;
}
