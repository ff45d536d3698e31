/* Batch invariance of the built-in engine (issue 17, item 2; docs/net.md, "Batch
 * invariance"): an image's logits and input gradient are the same bits alone and at any
 * position in a batch of 3, 7, 64 or 256, on both backends, for every layer kind alone and
 * for the default CNN and MLP; and a deterministic attack gives the same bytes whatever
 * batch size the net's oracle accepts. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>

#define CNN                                                                                 \
    "input c=1 h=28 w=28; conv2d out=32 k=3 p=1; relu; maxpool2d k=2; "                     \
    "conv2d out=64 k=3 p=1; relu; maxpool2d k=2; flatten; dense out=128; relu; dense out=10"
#define MLP "input c=1 h=28 w=28; flatten; dense out=256; relu; dense out=256; relu; dense out=10"

/* The default nets, then every layer kind alone (in the shapes that pick each of the fast
 * backend's paths: a first-layer convolution served by the engine's own input gradient, a
 * strided one, one with many input channels; pooling with padding; a lone dense row). */
static const char *const k_nets[] = {
    CNN,
    MLP,
    "input c=1 h=9 w=9; conv2d out=20 k=3 p=1",
    "input c=3 h=9 w=9; conv2d out=5 k=3 s=2 p=1",
    "input c=24 h=8 w=8; conv2d out=17 k=3",
    "input c=50 h=1 w=1; dense out=37",
    "input c=300 h=1 w=1; dense out=1",
    "input c=4 h=6 w=6; relu",
    "input c=4 h=6 w=6; maxpool2d k=2",
    "input c=4 h=7 w=7; maxpool2d k=3 s=2 p=1",
    "input c=4 h=7 w=7; avgpool2d k=3 s=2 p=1",
    "input c=4 h=5 w=5; flatten",
    "input c=4 h=5 w=5; batchnorm",
    "input c=12 h=1 w=1; softmax",
};
#define N_NETS ((int)(sizeof k_nets / sizeof k_nets[0]))

static const int32_t k_sizes[] = { 3, 7, 64, 256 };

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* n values uniform in [lo, hi), keyed by key. */
static void fill(float *v, size_t n, float lo, float hi, uint64_t key)
{
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)((double)(mix(key * 1000003u + i) >> 11) * 0x1p-53);
}

/* A seed that depends on its own row only: d loss / d logit j = cos(j) + logit / 4. */
static int seed_row(void *user, const float *lg, int32_t n, int32_t k, float *dl)
{
    (void)user;
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++)
        dl[i] = cosf((float)(i % (size_t)k)) + 0.25f * lg[i];
    return 0;
}

/* The first index where a and b differ in their bits, or -1. */
static long first_diff(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i]) != 0) return (long)i;
    return -1;
}

static foolc_net *mknet(const char *arch, uint64_t seed)
{
    foolc_net *net = NULL;
    ck_ok(foolc_net_new(arch, seed, &net));
    /* Random biases and batchnorm affines too (they start at 0 and 1). */
    int64_t np = foolc_net_param_count(net);
    if (np > 0) {
        float *p = malloc((size_t)np * sizeof *p);
        ck_assert_ptr_nonnull(p);
        ck_ok(foolc_net_get_params(net, p));
        for (int64_t i = 0; i < np; i++)
            if (p[i] == 0.0f || p[i] == 1.0f) fill(&p[i], 1, -0.5f, 1.5f, 77 + (uint64_t)i);
        ck_ok(foolc_net_set_params(net, p));
        free(p);
    }
    return net;
}

/* Net i on backend b: image x0 alone, then at the start, middle and end of batches of every
 * size in k_sizes among other images; logits (forward and gradient passes) and input
 * gradients must be the same bits. */
static void check_net_invariant(int i, foolc_backend b)
{
    foolc_net *net = mknet(k_nets[i], 5 + (uint64_t)i);
    ck_ok(foolc_net_set_backend(net, b));
    const foolc_shape in = foolc_net_input(net);
    const size_t d = (size_t)in.c * in.h * in.w, k = (size_t)foolc_net_classes(net);
    const int32_t nmax = 256;
    float *x0 = malloc(d * sizeof *x0), *x = malloc(nmax * d * sizeof *x);
    float *f1 = malloc(k * sizeof *f1), *g1 = malloc(k * sizeof *g1);
    float *dx1 = malloc(d * sizeof *dx1);
    float *lg = malloc(nmax * k * sizeof *lg), *dx = malloc(nmax * d * sizeof *dx);
    ck_assert(x0 && x && f1 && g1 && dx1 && lg && dx);
    fill(x0, d, -1.0f, 1.0f, 1);
    ck_ok(foolc_net_forward(net, x0, 1, f1));
    ck_ok(foolc_net_grad(net, x0, 1, seed_row, NULL, g1, dx1, NULL));
    long at = first_diff(f1, g1, k);
    ck_assert_msg(at < 0, "%s (backend %d): forward and gradient logits differ at %ld",
                  k_nets[i], (int)b, at);
    /* The reference CNN is slow on the reference backend: one position per size there. */
    const int slow = b == FOOLC_BACKEND_REFERENCE && d * k > 5000;
    for (size_t si = 0; si < sizeof k_sizes / sizeof k_sizes[0]; si++) {
        const int32_t n = k_sizes[si];
        const int32_t pos[3] = { n - 1, 0, n / 2 };
        for (int pi = 0; pi < (slow ? 1 : 3); pi++) {
            const int32_t p = pos[pi];
            fill(x, (size_t)n * d, -1.0f, 1.0f, 100 + (uint64_t)n * 7 + (uint64_t)pi);
            memcpy(x + (size_t)p * d, x0, d * sizeof *x);
            ck_ok(foolc_net_forward(net, x, n, lg));
            at = first_diff(lg + (size_t)p * k, f1, k);
            ck_assert_msg(at < 0, "%s (backend %d): forward logit %ld of the image at %d of %d: "
                          "%.9g, alone %.9g", k_nets[i], (int)b, at, (int)p, (int)n,
                          at < 0 ? 0.0 : (double)lg[(size_t)p * k + (size_t)at],
                          at < 0 ? 0.0 : (double)f1[at]);
            ck_ok(foolc_net_grad(net, x, n, seed_row, NULL, lg, dx, NULL));
            at = first_diff(lg + (size_t)p * k, f1, k);
            ck_assert_msg(at < 0, "%s (backend %d): gradient pass logit %ld of the image at %d "
                          "of %d differs", k_nets[i], (int)b, at, (int)p, (int)n);
            at = first_diff(dx + (size_t)p * d, dx1, d);
            ck_assert_msg(at < 0, "%s (backend %d): input gradient %ld of the image at %d of "
                          "%d: %.9g, alone %.9g", k_nets[i], (int)b, at, (int)p, (int)n,
                          at < 0 ? 0.0 : (double)dx[(size_t)p * d + (size_t)at],
                          at < 0 ? 0.0 : (double)dx1[at]);
        }
    }
    free(x0);
    free(x);
    free(f1);
    free(g1);
    free(dx1);
    free(lg);
    free(dx);
    foolc_net_free(net);
}

START_TEST(test_batch_invariant_fast) { check_net_invariant(_i, FOOLC_BACKEND_FAST); }
END_TEST

START_TEST(test_batch_invariant_reference)
{
    check_net_invariant(_i, FOOLC_BACKEND_REFERENCE);
}
END_TEST

/* A forward pass of more than one chunk (foolc_net_forward works in chunks of 256): every
 * image as alone. */
START_TEST(test_batch_invariant_chunks)
{
    foolc_net *net = mknet(MLP, 9);
    const size_t d = 784, k = 10;
    const int32_t n = 300;
    float *x = malloc(n * d * sizeof *x), *lg = malloc(n * k * sizeof *lg), one[10];
    ck_assert(x && lg);
    fill(x, n * d, 0.0f, 1.0f, 3);
    ck_ok(foolc_net_forward(net, x, n, lg));
    for (int32_t r = 0; r < n; r += 23) {
        ck_ok(foolc_net_forward(net, x + (size_t)r * d, 1, one));
        ck_assert_msg(first_diff(one, lg + (size_t)r * k, k) < 0, "image %d of %d", (int)r,
                      (int)n);
    }
    free(x);
    free(lg);
    foolc_net_free(net);
}
END_TEST

/* Deterministic attacks on 24 images give the same bytes through an oracle of max_batch 24
 * and of 5 (the report: 2 of 24 deepfool-l2 samples and 1 bb-l2 sample differed). */
static const char *const k_attacks[] = { "deepfool-l2", "bb-l2" };

START_TEST(test_batch_invariant_attacks)
{
    enum { N = 24, D = 784, K = 10 };
    foolc_net *net = mknet(CNN, 21);
    float *x = malloc(N * D * sizeof *x), lg[N * K];
    ck_assert_ptr_nonnull(x);
    fill(x, N * D, 0.0f, 1.0f, 17);
    ck_ok(foolc_net_forward(net, x, N, lg));
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        y[i] = 0;
        for (int j = 1; j < K; j++)
            if (lg[i * K + j] > lg[i * K + y[i]]) y[i] = j;
    }
    float *adv[2], dist[2][N];
    uint8_t ok[2][N];
    foolc_counts q[2][N];
    const int32_t batches[2] = { N, 5 };
    for (int r = 0; r < 2; r++) {
        adv[r] = malloc(N * D * sizeof *adv[r]);
        ck_assert_ptr_nonnull(adv[r]);
        foolc_oracle o;
        ck_ok(foolc_net_oracle(net, batches[r], &o));
        foolc_model *m = NULL;
        ck_ok(foolc_model_new(&o, &m));
        foolc_attack *a = NULL;
        ck_ok(foolc_attack_new(k_attacks[_i], &a));
        foolc_shape s = { N, 1, 28, 28 };
        foolc_result res = { adv[r], dist[r], ok[r], q[r] };
        foolc_status st = foolc_attack_run(a, m, s, x, y, NULL, 1, &res);
        ck_assert_msg(st == FOOLC_OK || st == FOOLC_NOT_FOUND, "%s: %s", k_attacks[_i],
                      foolc_errmsg());
        foolc_attack_free(a);
        foolc_model_free(m);
    }
    int found = 0;
    for (int i = 0; i < N; i++) {
        found += ok[0][i];
        ck_assert_msg(ok[0][i] == ok[1][i] && !memcmp(&dist[0][i], &dist[1][i], sizeof(float)) &&
                          first_diff(adv[0] + (size_t)i * D, adv[1] + (size_t)i * D, D) < 0,
                      "%s sample %d: max_batch 24 gives %d %.9g, max_batch 5 %d %.9g",
                      k_attacks[_i], i, ok[0][i], (double)dist[0][i], ok[1][i],
                      (double)dist[1][i]);
    }
    ck_assert_msg(found >= N / 2, "%s: only %d of %d found", k_attacks[_i], found, N);
    free(adv[0]);
    free(adv[1]);
    free(x);
    foolc_net_free(net);
}
END_TEST

Suite *foolc_suite_batch(void);
Suite *foolc_suite_batch(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_batch_invariant_fast, 0, N_NETS);
    tcase_add_loop_test(tc, test_batch_invariant_reference, 0, N_NETS);
    tcase_add_test(tc, test_batch_invariant_chunks);
    suite_add_tcase(s, tc);
    TCase *ta = tcase_create("attacks");
    tcase_set_timeout(ta, 600);
    tcase_add_loop_test(ta, test_batch_invariant_attacks, 0,
                        (int)(sizeof k_attacks / sizeof k_attacks[0]));
    suite_add_tcase(s, ta);
    return s;
}
