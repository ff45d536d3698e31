/* Allocation failures, the way zlib's infcover does it: for every registered attack, the
 * n-th allocation of a run fails, for n = 1, 2, ... until a run makes fewer than n
 * allocations. Each failing run must return FOOLC_E_NOMEM with a message and sound
 * results (never a crash, a leak under ASan, or OK with partial results), and the run that
 * completes must give the same bytes as a run without the hook. */
#include "testutil.h"
#include "linear.h"
#include "internal.h"

#define D 16
#define K 4
#define N 2
#define MAX_ALLOCS 5000   /* a run making more than this is a finding in itself */

static lin_model g_m;
static float g_x[N * D], g_xadv[N * D], g_dist[N];
static int32_t g_y[N];
static uint8_t g_ok[N];
static foolc_counts g_q[N];

/* A 4-class linear model and N inputs it classifies as their labels (check_attack's). */
static void setup(void)
{
    lin_random(&g_m, D, K, 0.5, 11);
    for (int i = 0; i < N * D; i++) g_x[i] = (float)(0.5 + 0.3 * lin_hash(1000 + (uint64_t)i));
    for (int i = 0; i < N; i++) {
        float z[K];
        lin_logits(&g_m, g_x + i * D, z);
        int best = 0;
        for (int j = 1; j < K; j++) if (z[j] > z[best]) best = j;
        g_y[i] = best;
    }
}

static int lin_pred(const float *x)
{
    float z[K];
    lin_logits(&g_m, x, z);
    int best = 0;
    for (int j = 1; j < K; j++) if (z[j] > z[best]) best = j;
    return best;
}

/* Results that hold whatever the status: in the box; a success is adversarial at its
 * recomputed distance; a failure is the input at an infinite distance. */
static void assert_sound(const char *name, uint64_t n, foolc_norm norm)
{
    for (int i = 0; i < N; i++) {
        const float *xa = g_xadv + i * D, *x0 = g_x + i * D;
        for (int j = 0; j < D; j++)
            ck_assert_msg(xa[j] >= 0 && xa[j] <= 1, "%s, allocation %llu failing: sample %d "
                          "outside the box", name, (unsigned long long)n, i);
        if (!g_ok[i]) {
            ck_assert_msg(isinf(g_dist[i]) && memcmp(xa, x0, D * sizeof(float)) == 0,
                          "%s, allocation %llu failing: sample %d not found but not reset",
                          name, (unsigned long long)n, i);
            continue;
        }
        ck_assert_msg(lin_pred(xa) != g_y[i], "%s, allocation %llu failing: sample %d not "
                      "adversarial", name, (unsigned long long)n, i);
        ck_assert_float_eq_tol(g_dist[i], (float)foolc_distance(norm, x0, xa, D), 1e-6f);
    }
}

/* Fewer iterations where the attack has them, so that the loop stays short. */
static void cheapen(foolc_attack *a, const char *name)
{
    static const struct { const char *key; double value; } k_cheap[] = {
        {"steps", 4}, {"binary_search_steps", 3}, {"init_tries", 5}, {"init_steps", 5},
        {"restarts", 1}, {"trim", 2},
    };
    int32_t np;
    ck_ok(foolc_attack_describe(name, NULL, NULL, &np, NULL));
    for (int32_t p = 0; p < np; p++) {
        const char *key;
        double dflt, lo, hi;
        ck_ok(foolc_attack_param(name, p, &key, &dflt, &lo, &hi, NULL));
        for (size_t c = 0; c < sizeof k_cheap / sizeof k_cheap[0]; c++) {
            if (strcmp(key, k_cheap[c].key) != 0) continue;
            double v = k_cheap[c].value < lo ? lo : k_cheap[c].value;
            if (v < dflt) ck_ok(foolc_attack_set(a, key, v));
        }
    }
}

/* foolc_attack_new of every attack, failing each of its allocations in turn. */
START_TEST(test_new_fails_cleanly)
{
    const char *name = foolc_attack_name(_i);
    uint64_t n;
    for (n = 1; n < 100; n++) {
        foolc_attack *a = NULL;
        foolc__alloc_fail_at(n);
        foolc_status st = foolc_attack_new(name, &a);
        uint64_t made = foolc__alloc_fail_at(0);
        if (made < n) {               /* the failure was never reached */
            ck_ok(st);
            foolc_attack_free(a);
            break;
        }
        ck_assert_msg(st == FOOLC_E_NOMEM, "%s: new with allocation %llu failing -> %s",
                      name, (unsigned long long)n, foolc_status_str(st));
        ck_assert_ptr_null(a);
        ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "out of memory"));
    }
    ck_assert_int_gt(n, 1);           /* it allocates, so at least one run failed */
    ck_assert_int_lt(n, 100);
}
END_TEST

/* Fresh handles each time: what a model or an attack allocates on its first run only (the
 * model's scratch buffers, say) is failed too. */
static void fresh(const char *name, int decision_only, foolc_attack **a, foolc_model **m)
{
    foolc_oracle o = lin_oracle(&g_m, 4, decision_only);
    ck_ok(foolc_model_new(&o, m));
    ck_ok(foolc_attack_new(name, a));
    cheapen(*a, name);
}

/* _i: the attack, on a model with every callback, then (from foolc_attack_count() on) on a
 * decision-only model for the attacks that need nothing more. */
START_TEST(test_run_fails_cleanly)
{
    const int32_t count = foolc_attack_count();
    const char *name = foolc_attack_name(_i % count);
    const int decision_only = _i >= count;
    foolc_norm norm;
    unsigned needs;
    ck_ok(foolc_attack_describe(name, &norm, &needs, NULL, NULL));
    if (decision_only && (needs & (FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES))) return;
    foolc_attack *a;
    foolc_model *m;
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {N, 1, 1, D};

    /* The reference: a run without the hook. */
    fresh(name, decision_only, &a, &m);
    foolc__alloc_fail_at(0);
    foolc_status want = foolc_attack_run(a, m, s, g_x, g_y, NULL, 5, &r);
    uint64_t allocs = foolc__alloc_fail_at(0);
    foolc_attack_free(a);
    foolc_model_free(m);
    ck_assert_msg(want == FOOLC_OK || want == FOOLC_NOT_FOUND, "%s: %s", name, foolc_errmsg());
    ck_assert_msg(allocs <= MAX_ALLOCS, "%s: %llu allocations for %d samples", name,
                  (unsigned long long)allocs, N);
    float ref_x[N * D], ref_d[N];
    uint8_t ref_ok[N];
    memcpy(ref_x, g_xadv, sizeof ref_x);
    memcpy(ref_d, g_dist, sizeof ref_d);
    memcpy(ref_ok, g_ok, sizeof ref_ok);

    uint64_t n;
    for (n = 1; n <= allocs + 1; n++) {
        fresh(name, decision_only, &a, &m);
        foolc__alloc_fail_at(n);
        foolc_status st = foolc_attack_run(a, m, s, g_x, g_y, NULL, 5, &r);
        uint64_t made = foolc__alloc_fail_at(0);
        foolc_attack_free(a);
        foolc_model_free(m);
        if (made < n) {               /* complete: same status and bytes as the reference */
            ck_assert_int_eq(st, want);
            ck_assert_mem_eq(g_xadv, ref_x, sizeof ref_x);
            ck_assert_mem_eq(g_dist, ref_d, sizeof ref_d);
            ck_assert_mem_eq(g_ok, ref_ok, sizeof ref_ok);
            break;
        }
        ck_assert_msg(st == FOOLC_E_NOMEM, "%s: allocation %llu of %llu failing -> %s (%s)",
                      name, (unsigned long long)n, (unsigned long long)allocs,
                      foolc_status_str(st), foolc_errmsg());
        ck_assert_msg(strstr(foolc_errmsg(), "out of memory") != NULL, "%s: message '%s'",
                      name, foolc_errmsg());
        assert_sound(name, n, norm);
    }
    /* Every allocation failed once, the same number as without the hook. */
    ck_assert_msg(n == allocs + 1, "%s: %llu allocations without the hook, completed when "
                  "allocation %llu failed", name, (unsigned long long)allocs,
                  (unsigned long long)n);
    if (getenv("FOOLC_TEST_VERBOSE"))
        printf("faults: %-20s %4llu allocations in a run%s\n", name, (unsigned long long)allocs,
               decision_only ? " (decision-only model)" : "");
}
END_TEST

/* foolc_model_new likewise. */
START_TEST(test_model_new_fails_cleanly)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    uint64_t n;
    for (n = 1; n < 100; n++) {
        foolc_model *m = NULL;
        foolc__alloc_fail_at(n);
        foolc_status st = foolc_model_new(&o, &m);
        uint64_t made = foolc__alloc_fail_at(0);
        if (made < n) { ck_ok(st); foolc_model_free(m); break; }
        ck_status(st, FOOLC_E_NOMEM);
        ck_assert_ptr_null(m);
    }
    ck_assert_int_gt(n, 1);
}
END_TEST

Suite *foolc_suite_faults(void);
Suite *foolc_suite_faults(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("alloc");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_model_new_fails_cleanly);
    tcase_add_loop_test(tc, test_new_fails_cleanly, 0, foolc_attack_count());
    tcase_add_loop_test(tc, test_run_fails_cleanly, 0, 2 * foolc_attack_count());
    suite_add_tcase(s, tc);
    return s;
}
