/* The model wrapper: exact query counts, chunking, budgets, NaN/Inf and failing callbacks
 * turned into errors, derived decisions, and the seed protocol of value_and_grad. */
#include "testutil.h"
#include "linear.h"

#include "internal.h"

#include <pthread.h>
#include <string.h>

static lin_model g_m;

static void setup(void) { lin_random(&g_m, 5, 3, 1.0, 3); }

START_TEST(test_new_errors)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m = (foolc_model *)1;
    ck_status(foolc_model_new(NULL, &m), FOOLC_E_INVALID);
    ck_assert_ptr_null(m);
    o.version = 99;
    ck_status(foolc_model_new(&o, &m), FOOLC_E_VERSION);
    o = lin_oracle(&g_m, 0, 0);
    ck_status(foolc_model_new(&o, &m), FOOLC_E_INVALID);
    o = lin_oracle(&g_m, 4, 0);
    o.lo = 1;
    ck_status(foolc_model_new(&o, &m), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "lo < hi"));
    o = lin_oracle(&g_m, 4, 0);
    o.scores = NULL;
    ck_status(foolc_model_new(&o, &m), FOOLC_E_INVALID);
    o = lin_oracle(&g_m, 4, 0);
    o.n_classes = 1;
    ck_status(foolc_model_new(&o, &m), FOOLC_E_INVALID);
    foolc_model_free(NULL);
}
END_TEST

START_TEST(test_counts_and_chunks)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    ck_assert_uint_eq(foolc_model_caps(m),
                      FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES | FOOLC_NEEDS_DECISION);
    float x[11 * 5], z[11 * 3], zr[3];
    for (int i = 0; i < 55; i++) x[i] = (float)(0.5 + 0.5 * lin_hash((uint64_t)i));
    ck_ok(foolc_model_scores(m, x, 11, z));
    ck_assert_int_eq(g_m.calls, 3);                  /* 4 + 4 + 3 */
    for (int i = 0; i < 11; i++) {
        lin_logits(&g_m, x + 5 * i, zr);
        for (int j = 0; j < 3; j++) ck_assert_float_eq(z[3 * i + j], zr[j]);
    }
    int32_t lab[11];
    ck_ok(foolc_model_decision(m, x, 11, lab));
    for (int i = 0; i < 11; i++) {
        int best = 0;
        for (int j = 1; j < 3; j++) if (z[3 * i + j] > z[3 * i + best]) best = j;
        ck_assert_int_eq(lab[i], best);
    }
    foolc_counts c = foolc_model_counts(m);
    ck_assert_uint_eq(c.forward, 11);
    ck_assert_uint_eq(c.decided, 11);
    ck_assert_uint_eq(c.backward, 0);
    foolc_model_reset_counts(m);
    c = foolc_model_counts(m);
    ck_assert_uint_eq(c.forward + c.decided + c.backward, 0);
    ck_status(foolc_model_scores(m, x, 0, z), FOOLC_E_INVALID);
    ck_status(foolc_model_scores(m, NULL, 1, z), FOOLC_E_INVALID);
    foolc_model_free(m);
}
END_TEST

typedef struct loss_rec { int calls; int32_t firsts[8]; } loss_rec;

/* loss = sum of logits: dloss/dlogits = 1, so grad = sum_j W[j]. */
static int sum_loss(void *user, int32_t first, const float *z, int32_t n, int32_t k, float *dz,
                    float *loss)
{
    loss_rec *r = user;
    if (r->calls < 8) r->firsts[r->calls] = first;
    r->calls++;
    for (int32_t i = 0; i < n; i++) {
        double s = 0;
        for (int32_t j = 0; j < k; j++) { dz[i * k + j] = 1; s += z[i * k + j]; }
        if (loss) loss[i] = (float)s;
    }
    return 0;
}

static int failing_loss(void *user, int32_t first, const float *z, int32_t n, int32_t k,
                        float *dz, float *loss)
{
    (void)user, (void)first, (void)z, (void)n, (void)k, (void)dz, (void)loss;
    return 1;
}

START_TEST(test_value_and_grad)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    float x[6 * 5], g[6 * 5], loss[6], z[6 * 3];
    for (int i = 0; i < 30; i++) x[i] = 0.5f;
    loss_rec r = {0, {0}};
    ck_ok(foolc_model_value_and_grad(m, x, 6, sum_loss, &r, z, loss, g));
    ck_assert_int_eq(r.calls, 2);
    ck_assert_int_eq(r.firsts[0], 0);
    ck_assert_int_eq(r.firsts[1], 4);
    for (int i = 0; i < 6; i++) {
        double s = 0;
        for (int j = 0; j < 3; j++) s += z[3 * i + j];
        ck_assert_float_eq_tol(loss[i], (float)s, 1e-5f);
        for (int a = 0; a < 5; a++)
            ck_assert_float_eq_tol(g[5 * i + a],
                                   (float)(g_m.W[0][a] + g_m.W[1][a] + g_m.W[2][a]), 1e-5f);
    }
    foolc_counts c = foolc_model_counts(m);
    ck_assert_uint_eq(c.forward, 6);
    ck_assert_uint_eq(c.backward, 6);
    ck_ok(foolc_model_value_and_grad(m, x, 6, sum_loss, &r, NULL, NULL, g));  /* NULL logits */
    ck_status(foolc_model_value_and_grad(m, x, 6, failing_loss, NULL, z, NULL, g),
              FOOLC_E_ORACLE);
    g_m.seed_twice = 1;
    ck_status(foolc_model_value_and_grad(m, x, 2, sum_loss, &r, z, NULL, g), FOOLC_E_ORACLE);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "seed 2 times"));
    g_m.seed_twice = 0;
    foolc_model_free(m);

    o = lin_oracle(&g_m, 4, 1);                         /* decision-only */
    ck_ok(foolc_model_new(&o, &m));
    ck_assert_uint_eq(foolc_model_caps(m), FOOLC_NEEDS_DECISION);
    ck_status(foolc_model_value_and_grad(m, x, 1, sum_loss, &r, z, NULL, g),
              FOOLC_E_UNSUPPORTED);
    ck_status(foolc_model_scores(m, x, 1, z), FOOLC_E_UNSUPPORTED);
    foolc_model_free(m);
}
END_TEST

START_TEST(test_budget)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    ck_ok(foolc_model_set_budget(m, 10));
    ck_assert_uint_eq(foolc_model_budget(m), 10);
    float x[8 * 5] = {0}, z[8 * 3];
    int32_t lab[8];
    ck_ok(foolc_model_scores(m, x, 8, z));
    ck_status(foolc_model_scores(m, x, 3, z), FOOLC_E_BUDGET);   /* refused whole */
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "budget of 10"));
    ck_assert_uint_eq(foolc_model_counts(m).forward, 8);
    ck_ok(foolc_model_decision(m, x, 2, lab));
    ck_status(foolc_model_decision(m, x, 1, lab), FOOLC_E_BUDGET);
    foolc_model_free(m);
}
END_TEST

START_TEST(test_nonfinite_and_failures)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    float x[6 * 5] = {0}, z[6 * 3], g[6 * 5];
    loss_rec r = {0, {0}};
    g_m.nan_after = 1;
    ck_ok(foolc_model_scores(m, x, 4, z));
    ck_status(foolc_model_scores(m, x, 6, z), FOOLC_E_NONFINITE);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "sample 3"));   /* last of the 1st chunk */
    ck_status(foolc_model_value_and_grad(m, x, 2, sum_loss, &r, z, NULL, g), FOOLC_E_NONFINITE);
    int32_t lab[2];
    ck_status(foolc_model_decision(m, x, 2, lab), FOOLC_E_NONFINITE);
    g_m.nan_after = 0;
    g_m.calls = 0;
    g_m.fail_after = 1;
    ck_ok(foolc_model_scores(m, x, 2, z));
    ck_status(foolc_model_scores(m, x, 2, z), FOOLC_E_ORACLE);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "returned 7"));
    g_m.fail_after = 0;
    foolc_model_free(m);
}
END_TEST

/* ---- the error message and threads ---------------------------------------------------- */

/* foolc_errmsg's contract (status.h): a call that returns a status clears the message when
 * it starts, so a failure leaves its own detail and a later success an empty message; the
 * model calls that attacks make leave it as it was when they succeed. */
START_TEST(test_errmsg_contract)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m = NULL;
    foolc_net *net = NULL;
    foolc_npz *z = NULL;
    float x[2 * 5] = { 0 }, z3[2 * 3];
#define FAIL_THEN_OK(bad, good)                                                            \
    do {                                                                                   \
        ck_assert_int_lt((bad), 0);                                                        \
        ck_assert_msg(foolc_errmsg()[0] != '\0', "%s left no message", #bad);              \
        ck_ok(good);                                                                       \
        ck_assert_msg(foolc_errmsg()[0] == '\0', "%s kept '%s'", #good, foolc_errmsg());   \
    } while (0)
    FAIL_THEN_OK(foolc_model_new(NULL, &m), foolc_model_new(&o, &m));
    FAIL_THEN_OK(foolc_model_set_budget(NULL, 3), foolc_model_set_budget(m, 0));
    FAIL_THEN_OK(foolc_net_new("input c=5 h=1 w=1; bogus", 1, &net),
                 foolc_net_new("input c=5 h=1 w=1; dense out=3", 1, &net));
    FAIL_THEN_OK(foolc_net_forward(net, NULL, 2, z3), foolc_net_forward(net, x, 2, z3));
    FAIL_THEN_OK(foolc_net_set_backend(net, (foolc_backend)7),
                 foolc_net_set_backend(net, FOOLC_BACKEND_FAST));
    FAIL_THEN_OK(foolc_net_oracle(net, 0, &o), foolc_net_oracle(net, 2, &o));
    FAIL_THEN_OK(foolc_npz_new(NULL), foolc_npz_new(&z));
    float v[3] = { 1, 2, 3 };
    foolc_array a = { FOOLC_F32, 1, { 3 }, v };
    FAIL_THEN_OK(foolc_npz_add(z, "", &a), foolc_npz_add(z, "v", &a));
    foolc_npz_free(z);
    FAIL_THEN_OK(foolc_npz_read("/nonexistent/x.npz", &z), foolc_npz_new(&z));
    foolc_npz_free(z);
    foolc_array b;
    FAIL_THEN_OK(foolc_idx_read("/nonexistent/x-idx1-ubyte", &b), foolc_npz_new(&z));
    foolc_npz_free(z);
    foolc_data d;
    FAIL_THEN_OK(foolc_data_load("no-such-set", NULL, &d), foolc_npz_new(&z));
    foolc_npz_free(z);
    /* The model's calls: a success does not hide an earlier note. */
    ck_status(foolc_model_set_budget(NULL, 1), FOOLC_E_INVALID);
    char before[256];
    snprintf(before, sizeof before, "%s", foolc_errmsg());
    ck_ok(foolc_model_scores(m, x, 2, z3));
    ck_assert_str_eq(foolc_errmsg(), before);
    foolc_model_free(m);
    foolc_net_free(net);
#undef FAIL_THEN_OK
}
END_TEST

/* The allocation hook counts and fails allocations of the calling thread only. */
static void *alloc_elsewhere(void *arg)
{
    foolc_npz *z = NULL;
    *(foolc_status *)arg = foolc_npz_new(&z);
    foolc_npz_free(z);
    return NULL;
}

START_TEST(test_alloc_hook_per_thread)
{
    foolc__alloc_fail_at(1);
    pthread_t t;
    foolc_status other = FOOLC_E_INTERNAL;
    ck_assert_int_eq(pthread_create(&t, NULL, alloc_elsewhere, &other), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_status(other, FOOLC_OK);                    /* not this thread's first allocation */
    foolc_npz *z = NULL;
    ck_status(foolc_npz_new(&z), FOOLC_E_NOMEM);  /* but this is */
    ck_assert_uint_eq(foolc__alloc_fail_at(0), 1);
}
END_TEST

/* Two attacks on two models (built-in nets) in two threads give the bytes they give one
 * after the other on one thread; each thread's error message is its own. */
typedef struct thread_job {
    const char *arch, *attack;
    uint64_t seed;
    float x[6 * 64], x_adv[6 * 64], dist[6];
    int32_t y[6];
    uint8_t succ[6];
    foolc_counts q[6];
    foolc_status st, st_bad;
    char msg[128];
} thread_job;

static void *run_job(void *arg)
{
    thread_job *j = arg;
    foolc_net *net = NULL;
    foolc_model *m = NULL;
    foolc_attack *a = NULL;
    foolc_oracle o;
    j->st = foolc_net_new(j->arch, j->seed, &net);
    if (j->st == FOOLC_OK) j->st = foolc_net_oracle(net, 4, &o);
    if (j->st == FOOLC_OK) j->st = foolc_model_new(&o, &m);
    if (j->st == FOOLC_OK) j->st = foolc_model_decision(m, j->x, 6, j->y);
    if (j->st == FOOLC_OK) j->st = foolc_attack_new(j->attack, &a);
    if (j->st == FOOLC_OK) j->st = foolc_attack_set(a, "steps", 20);
    if (j->st == FOOLC_OK) {
        foolc_result r = { j->x_adv, j->dist, j->succ, j->q };
        const foolc_shape shape = { 6, 1, 8, 8 };
        j->st = foolc_attack_run(a, m, shape, j->x, j->y, NULL, 7, &r);
    }
    foolc_attack *none = NULL;
    j->st_bad = foolc_attack_new(j->arch == NULL ? "" : j->attack + 1, &none);
    snprintf(j->msg, sizeof j->msg, "%s", foolc_errmsg());
    foolc_attack_free(a);
    foolc_model_free(m);
    foolc_net_free(net);
    return NULL;
}

static void job_init(thread_job *j, const char *arch, const char *attack, uint64_t seed)
{
    memset(j, 0, sizeof *j);
    j->arch = arch;
    j->attack = attack;
    j->seed = seed;
    for (int i = 0; i < 6 * 64; i++)
        j->x[i] = (float)(0.5 + 0.5 * lin_hash(seed * 1000 + (uint64_t)i));
}

static void same_job(const thread_job *a, const thread_job *b)
{
    ck_assert_msg(a->st == b->st, "%s: status %d alone, %d in a thread", a->attack, a->st,
                  b->st);
    ck_assert(a->st >= 0);
    ck_assert(memcmp(a->x_adv, b->x_adv, sizeof a->x_adv) == 0);
    ck_assert(memcmp(a->dist, b->dist, sizeof a->dist) == 0);
    ck_assert(memcmp(a->succ, b->succ, sizeof a->succ) == 0);
    ck_assert(memcmp(a->q, b->q, sizeof a->q) == 0);
    ck_status(b->st_bad, FOOLC_E_INVALID);
    ck_assert_msg(strstr(b->msg, a->attack + 1) != NULL, "thread of %s read '%s'", a->attack,
                  b->msg);
}

START_TEST(test_two_threads)
{
    static const char *const cnn =
        "input c=1 h=8 w=8; conv2d out=4 k=3 p=1; relu; maxpool2d k=2; flatten; dense out=5";
    static const char *const mlp = "input c=1 h=8 w=8; flatten; dense out=16; relu; dense out=5";
    thread_job a1, b1, a2, b2;
    job_init(&a1, cnn, "ddn", 1);
    job_init(&b1, mlp, "pgd-linf", 2);
    run_job(&a1);
    run_job(&b1);
    ck_assert_msg(a1.succ[0] || a1.succ[1] || a1.succ[2], "ddn found nothing");
    for (int round = 0; round < 3; round++) {
        job_init(&a2, cnn, "ddn", 1);
        job_init(&b2, mlp, "pgd-linf", 2);
        pthread_t ta, tb;
        ck_assert_int_eq(pthread_create(&ta, NULL, run_job, &a2), 0);
        ck_assert_int_eq(pthread_create(&tb, NULL, run_job, &b2), 0);
        ck_assert_int_eq(pthread_join(ta, NULL), 0);
        ck_assert_int_eq(pthread_join(tb, NULL), 0);
        same_job(&a1, &a2);
        same_job(&b1, &b2);
    }
}
END_TEST

Suite *foolc_suite_model(void);
Suite *foolc_suite_model(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_new_errors);
    tcase_add_test(tc, test_counts_and_chunks);
    tcase_add_test(tc, test_value_and_grad);
    tcase_add_test(tc, test_budget);
    tcase_add_test(tc, test_nonfinite_and_failures);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_errmsg_contract);
    tcase_add_test(tc, test_alloc_hook_per_thread);
    tcase_add_test(tc, test_two_threads);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
