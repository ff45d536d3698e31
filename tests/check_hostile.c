/* Hostile models against every attack of the registry: constant logits, zero gradients,
 * answers that change from call to call for the same input, and huge (finite) logits. Each
 * run must end (a budget bounds it), return OK, NOT_FOUND or BUDGET, never send the model a
 * non-finite or out-of-box input, and report only results that are in the box, at the
 * distance it says, and adversarial where the model is deterministic. */
#include "testutil.h"
#include "linear.h"

#include <math.h>
#include <string.h>

#define D 12
#define N 4
#define K 3
#define BUDGET 60000

enum { H_CONSTANT, H_ZERO_GRAD, H_NOISY, H_HUGE, H_KINDS };
static const char *const k_kind[H_KINDS] = {"constant logits", "zero gradients",
                                            "noisy answers", "huge logits"};

typedef struct hostile {
    lin_model m;
    int kind;
    uint64_t calls;
    int bad_input;       /* the library sent a non-finite or out-of-box value */
} hostile;

static hostile g_h;
static float g_x[N * D], g_xadv[N * D], g_dist[N];
static int32_t g_y[N];
static uint8_t g_ok[N];
static foolc_counts g_q[N];

static void check_inputs(hostile *h, const float *x, int32_t n)
{
    for (size_t i = 0; i < (size_t)n * D; i++)
        if (!isfinite(x[i]) || x[i] < 0 || x[i] > 1) h->bad_input = 1;
}

/* One image's logits as the hostile model answers them on call number `call`. */
static void answer(hostile *h, const float *x, uint64_t call, int32_t row, float *z)
{
    if (h->kind == H_CONSTANT) {
        z[0] = 1;
        for (int j = 1; j < K; j++) z[j] = 0;
        return;
    }
    lin_logits(&h->m, x, z);
    for (int j = 0; j < K; j++) {
        if (h->kind == H_HUGE) z[j] *= 1e30f;
        if (h->kind == H_NOISY)
            z[j] += (float)(0.02 * lin_hash(call * 7919 + (uint64_t)row * K + (uint64_t)j));
    }
}

static int h_scores(void *user, const float *x, int32_t n, float *logits)
{
    hostile *h = user;
    check_inputs(h, x, n);
    uint64_t call = ++h->calls;
    for (int32_t i = 0; i < n; i++) answer(h, x + (size_t)i * D, call, i, logits + (size_t)i * K);
    return 0;
}

static int h_vg(void *user, const float *x, int32_t n, foolc_seed_fn seed, void *seed_user,
                float *logits, float *grad)
{
    hostile *h = user;
    float dz[K * 64];
    if (n > 64) return 3;
    h_scores(user, x, n, logits);
    if (seed(seed_user, logits, n, K, dz)) return 1;
    for (int32_t i = 0; i < n; i++)
        for (int a = 0; a < D; a++) {
            double s = 0;
            if (h->kind != H_CONSTANT && h->kind != H_ZERO_GRAD)
                for (int j = 0; j < K; j++)
                    s += h->m.W[j][a] * dz[(size_t)i * K + j] * (h->kind == H_HUGE ? 1e30 : 1);
            grad[(size_t)i * D + a] = (float)s;
        }
    return 0;
}

static int h_decision(void *user, const float *x, int32_t n, int32_t *label)
{
    hostile *h = user;
    check_inputs(h, x, n);
    uint64_t call = ++h->calls;
    for (int32_t i = 0; i < n; i++) {
        float z[K];
        answer(h, x + (size_t)i * D, call, i, z);
        int best = 0;
        for (int j = 1; j < K; j++) if (z[j] > z[best]) best = j;
        label[i] = best;
    }
    return 0;
}

static int pred(const float *x)
{
    float z[K];
    lin_logits(&g_h.m, x, z);
    int best = 0;
    for (int j = 1; j < K; j++) if (z[j] > z[best]) best = j;
    return best;
}

START_TEST(test_hostile_models)
{
    const char *name = foolc_attack_name(_i);
    foolc_norm norm;
    unsigned needs;
    ck_ok(foolc_attack_describe(name, &norm, &needs, NULL, NULL));
    for (int kind = 0; kind < H_KINDS; kind++) {
        memset(&g_h, 0, sizeof g_h);
        lin_random(&g_h.m, D, K, 0.5, 41);
        g_h.kind = kind;
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < D; j++)
                g_x[i * D + j] = (float)(0.5 + 0.3 * lin_hash(500 + (uint64_t)(i * D + j)));
            g_y[i] = kind == H_CONSTANT ? 0 : pred(g_x + i * D);
        }
        foolc_oracle o;
        memset(&o, 0, sizeof o);
        o.version = FOOLC_ORACLE_VERSION;
        o.input = (foolc_shape){4, 1, 1, D};
        o.n_classes = K;
        o.lo = 0;
        o.hi = 1;
        o.user = &g_h;
        o.scores = h_scores;
        o.value_and_grad = h_vg;
        o.decision = h_decision;
        foolc_model *m;
        ck_ok(foolc_model_new(&o, &m));
        ck_ok(foolc_model_set_budget(m, BUDGET));
        foolc_attack *a;
        ck_ok(foolc_attack_new(name, &a));
        foolc_result r = {g_xadv, g_dist, g_ok, g_q};
        foolc_shape s = {N, 1, 1, D};
        foolc_status st = foolc_attack_run(a, m, s, g_x, g_y, NULL, 3, &r);
        ck_assert_msg(st == FOOLC_OK || st == FOOLC_NOT_FOUND || st == FOOLC_E_BUDGET,
                      "%s on %s: %s (%s)", name, k_kind[kind], foolc_status_str(st),
                      foolc_errmsg());
        ck_assert_msg(!g_h.bad_input, "%s on %s: the model got a non-finite or out-of-box "
                      "input", name, k_kind[kind]);
        uint64_t used = 0;
        for (int i = 0; i < N; i++) {
            const float *x0 = g_x + i * D, *xa = g_xadv + i * D;
            used += g_q[i].forward + g_q[i].decided;
            if (!g_ok[i]) {
                ck_assert(isinf(g_dist[i]));
                ck_assert_mem_eq(xa, x0, D * sizeof(float));
                continue;
            }
            ck_assert_msg(kind != H_CONSTANT, "%s: success on a model that never changes",
                          name);
            for (int j = 0; j < D; j++) ck_assert(xa[j] >= 0 && xa[j] <= 1);
            ck_assert_float_eq_tol(g_dist[i], (float)foolc_distance(norm, x0, xa, D), 1e-6f);
            if (kind != H_NOISY)
                ck_assert_msg(pred(xa) != g_y[i], "%s on %s: sample %d not adversarial", name,
                              k_kind[kind], i);
        }
        /* The budget bounds the queries (verification may add one image per sample). */
        ck_assert_msg(used <= BUDGET + 4 * N, "%s on %s: %llu images", name, k_kind[kind],
                      (unsigned long long)used);
        foolc_attack_free(a);
        foolc_model_free(m);
    }
}
END_TEST

Suite *foolc_suite_hostile(void);
Suite *foolc_suite_hostile(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("every attack");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_hostile_models, 0, foolc_attack_count());
    suite_add_tcase(s, tc);
    return s;
}
