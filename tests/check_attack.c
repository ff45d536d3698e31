/* Attacks: the property loop every registered attack must pass (adversarial, in the box,
 * distance recomputed, input untouched, deterministic whatever the model's batch size,
 * error paths, parameters at their limits), and FGSM against closed-form minima. */
#include "testutil.h"
#include "linear.h"

#define D 16
#define K 4
#define N 6

static lin_model g_m;
static float g_x[N * D], g_xadv[N * D], g_dist[N];
static int32_t g_y[N];
static uint8_t g_ok[N];
static foolc_counts g_q[N];

/* A 4-class linear model and N inputs it classifies as their labels. */
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

static foolc_result result(void)
{
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    return r;
}

static int lin_pred_of(const lin_model *m, const float *x)
{
    float z[LIN_MAXK];
    lin_logits(m, x, z);
    int best = 0;
    for (int j = 1; j < m->k; j++) if (z[j] > z[best]) best = j;
    return best;
}

static int lin_pred(const float *x) { return lin_pred_of(&g_m, x); }

/* The soundness properties of a run's results, whatever its status; returns whether every
 * sample succeeded. */
static int assert_props(const char *name, foolc_norm norm)
{
    int all = 1;
    for (int i = 0; i < N; i++) {
        const float *xa = g_xadv + i * D, *x0 = g_x + i * D;
        for (int j = 0; j < D; j++) ck_assert(xa[j] >= 0 && xa[j] <= 1);
        if (!g_ok[i]) {
            all = 0;
            ck_assert(isinf(g_dist[i]));
            ck_assert_mem_eq(xa, x0, D * sizeof(float));
            continue;
        }
        ck_assert_msg(lin_pred(xa) != g_y[i], "%s: sample %d not adversarial", name, i);
        ck_assert_float_eq_tol(g_dist[i], (float)foolc_distance(norm, x0, xa, D), 1e-6f);
        ck_assert(g_q[i].forward + g_q[i].decided > 0);
    }
    return all;
}

/* A finished run: OK or NOT_FOUND, sound results, OK exactly when every sample succeeded. */
static void assert_sound(const char *name, foolc_status st, foolc_norm norm)
{
    ck_assert_msg(st == FOOLC_OK || st == FOOLC_NOT_FOUND, "%s: %s", name, foolc_errmsg());
    ck_assert_int_eq(st == FOOLC_OK, assert_props(name, norm));
}

START_TEST(test_attack_is_sound)          /* every attack in the registry */
{
    const char *name = foolc_attack_name(_i);
    foolc_norm norm;
    unsigned needs;
    ck_ok(foolc_attack_describe(name, &norm, &needs, NULL, NULL));
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    ck_assert_str_eq(foolc_attack_get_name(a), name);
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    float xcopy[N * D];
    memcpy(xcopy, g_x, sizeof g_x);
    foolc_result r = result();
    foolc_shape s = {N, 1, 1, D};
    assert_sound(name, foolc_attack_run(a, m, s, g_x, g_y, NULL, 7, &r), norm);
    ck_assert_mem_eq(g_x, xcopy, sizeof g_x);                       /* input untouched */
    int found = 0;
    for (int i = 0; i < N; i++) found += g_ok[i];
    ck_assert_msg(found >= N - 1, "%s found only %d of %d", name, found, N);

    /* Same seed, same bytes, whatever batch size the model accepts. */
    float xadv1[N * D], dist1[N];
    memcpy(xadv1, g_xadv, sizeof xadv1);
    memcpy(dist1, g_dist, sizeof dist1);
    foolc_model *m1;
    foolc_oracle o1 = lin_oracle(&g_m, 1, 0);
    ck_ok(foolc_model_new(&o1, &m1));
    assert_sound(name, foolc_attack_run(a, m1, s, g_x, g_y, NULL, 7, &r), norm);
    ck_assert_mem_eq(xadv1, g_xadv, sizeof xadv1);
    ck_assert_mem_eq(dist1, g_dist, sizeof dist1);
    foolc_model_free(m1);

    /* Unsupported models fail early. */
    foolc_oracle od = lin_oracle(&g_m, 4, 1);
    foolc_model *md;
    ck_ok(foolc_model_new(&od, &md));
    foolc_status st = foolc_attack_run(a, md, s, g_x, g_y, NULL, 7, &r);
    if (needs & (FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES)) {
        ck_assert_int_eq(st, FOOLC_E_UNSUPPORTED);
        ck_assert_ptr_nonnull(strstr(foolc_errmsg(), name));
    } else {
        assert_sound(name, st, norm);
    }
    foolc_model_free(md);

    /* A callback failing mid-run gives FOOLC_E_ORACLE; what was found is still sound. */
    g_m.calls = 0;
    g_m.fail_after = 3;
    st = foolc_attack_run(a, m, s, g_x, g_y, NULL, 7, &r);
    g_m.fail_after = 0;
    ck_assert_int_eq(st, FOOLC_E_ORACLE);
    assert_props(name, norm);

    /* Bad arguments name what is wrong. */
    foolc_shape bad = {N, 1, 2, D};
    ck_status(foolc_attack_run(a, m, bad, g_x, g_y, NULL, 7, &r), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "shape"));
    int32_t y_bad[N];
    memcpy(y_bad, g_y, sizeof y_bad);
    y_bad[2] = K;
    ck_status(foolc_attack_run(a, m, s, g_x, y_bad, NULL, 7, &r), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "sample 2"));
    float x_bad[N * D];
    memcpy(x_bad, g_x, sizeof x_bad);
    x_bad[5] = 1.5f;
    ck_status(foolc_attack_run(a, m, s, x_bad, g_y, NULL, 7, &r), FOOLC_E_INVALID);
    x_bad[5] = NAN;
    ck_status(foolc_attack_run(a, m, s, x_bad, g_y, NULL, 7, &r), FOOLC_E_INVALID);
    ck_status(foolc_attack_run(a, NULL, s, g_x, g_y, NULL, 7, &r), FOOLC_E_INVALID);
    ck_status(foolc_attack_run(a, m, s, g_x, g_y, NULL, 7, NULL), FOOLC_E_INVALID);
    foolc_shape empty = {0, 1, 1, D};
    ck_ok(foolc_attack_run(a, m, empty, NULL, NULL, NULL, 7, &r));

    /* Every parameter at its minimum and at its maximum still gives sound results. */
    int32_t np;
    ck_ok(foolc_attack_describe(name, NULL, NULL, &np, NULL));
    for (int32_t p = 0; p < np; p++) {
        const char *key;
        double dflt, lo, hi;
        ck_ok(foolc_attack_param(name, p, &key, &dflt, &lo, &hi, NULL));
        double vals[2] = {lo, hi};
        for (int v = 0; v < 2; v++) {
            ck_ok(foolc_attack_set(a, key, vals[v]));
            assert_sound(name, foolc_attack_run(a, m, s, g_x, g_y, NULL, 3, &r), norm);
            ck_ok(foolc_attack_set(a, key, dflt));
        }
        double got;
        ck_ok(foolc_attack_get(a, key, &got));
        ck_assert_double_eq(got, dflt);
        /* Outside the range: rejected with a message naming the key; the value is kept. */
        double out[2] = {lo - (fabs(lo) + 1) * 1e-3, hi + (fabs(hi) + 1) * 1e-3};
        for (int v = 0; v < 2; v++) {
            ck_status(foolc_attack_set(a, key, out[v]), FOOLC_E_INVALID);
            ck_assert_ptr_nonnull(strstr(foolc_errmsg(), key));
            ck_ok(foolc_attack_get(a, key, &got));
            ck_assert_double_eq(got, dflt);
        }
    }
    foolc_model_free(m);
    foolc_attack_free(a);
}
END_TEST

/* FGSM on a two-class linear model away from the box: the minimal Linf perturbation is
 * |w.x + b| / ||w||_1 with w = W1 - W0, b = b1 - b0. */
START_TEST(test_fgsm_closed_form)
{
    lin_model m2;
    lin_random(&m2, D, 2, 0.05, 5);
    m2.b[0] = m2.b[1] = 0;
    foolc_oracle o = lin_oracle(&m2, 8, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    float x[N * D];
    int32_t y[N];
    double want[N];
    for (int i = 0; i < N; i++) {
        double wx = 0, w1 = 0;
        for (int j = 0; j < D; j++) {
            x[i * D + j] = (float)(0.5 + 0.2 * lin_hash(77 + (uint64_t)(i * D + j)));
            double w = m2.W[1][j] - m2.W[0][j];
            wx += w * x[i * D + j];
            w1 += fabs(w);
        }
        wx += m2.b[1] - m2.b[0];
        y[i] = wx > 0;
        want[i] = fabs(wx) / w1;
        ck_assert_msg(want[i] < 0.29, "fixture: minimum %g reaches the box", want[i]);
    }
    foolc_attack *a;
    ck_ok(foolc_attack_new("fgsm", &a));
    for (int loss = 0; loss <= 2; loss++) {
        ck_ok(foolc_attack_set(a, "loss", loss));
        foolc_result r = {g_xadv, g_dist, g_ok, g_q};
        foolc_shape s = {N, 1, 1, D};
        ck_ok(foolc_attack_run(a, m, s, x, y, NULL, 1, &r));
        for (int i = 0; i < N; i++) {
            ck_assert(g_ok[i]);
            ck_assert_msg(g_dist[i] >= want[i] * (1 - 1e-5), "below the minimum: %g < %g",
                          (double)g_dist[i], want[i]);
            ck_assert_msg(g_dist[i] <= want[i] * 1.01, "sample %d: %g vs minimum %g", i,
                          (double)g_dist[i], want[i]);
            ck_assert(g_q[i].backward >= 1 && g_q[i].forward < 100);
        }
    }
    /* Fixed epsilon: below the minimum nothing is found, above it everything. */
    ck_ok(foolc_attack_set(a, "loss", 2));
    ck_ok(foolc_attack_set(a, "epsilon", 0.29));
    foolc_result r = {g_xadv, g_dist, g_ok, NULL};
    foolc_shape s = {N, 1, 1, D};
    ck_ok(foolc_attack_run(a, m, s, x, y, NULL, 1, &r));
    for (int i = 0; i < N; i++) ck_assert_float_eq_tol(g_dist[i], 0.29f, 1e-6f);
    ck_ok(foolc_attack_set(a, "epsilon", 1e-6));
    ck_status(foolc_attack_run(a, m, s, x, y, NULL, 1, &r), FOOLC_NOT_FOUND);
    for (int i = 0; i < N; i++) ck_assert(!g_ok[i]);
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* After the attack's last progress report, the model moves logit 1 up a little, as a model
 * may round differently in the verification's batch: boundary points flip back, and the
 * verification recovers them by pushing outwards instead of losing them. */
static int shift_when_done(void *user, int64_t done, int64_t total)
{
    lin_model *m = user;
    if (done == total) m->shift1 = m->b[2];   /* b[2] carries the shift to apply */
    return 0;
}

START_TEST(test_verification_recovers_flips)
{
    lin_model m2;
    lin_random(&m2, D, 2, 0.05, 9);
    m2.b[0] = m2.b[1] = 0;
    float x[N * D];
    int32_t y[N];
    double want[N], min_margin = INFINITY, w1 = 0;
    for (int j = 0; j < D; j++) w1 += fabs(m2.W[1][j] - m2.W[0][j]);
    for (int i = 0, t = 0; i < N; t++) {        /* samples of class 1 only */
        double wx = 0;
        for (int j = 0; j < D; j++) {
            x[i * D + j] = (float)(0.5 + 0.2 * lin_hash(500 + (uint64_t)(t * D + j)));
            wx += (m2.W[1][j] - m2.W[0][j]) * x[i * D + j];
        }
        if (wx <= 0 || wx / w1 > 0.25) continue;
        y[i] = 1;
        want[i] = wx / w1;
        min_margin = fmin(min_margin, wx);
        i++;
    }
    m2.b[2] = 0.002 * min_margin;               /* the shift, applied after the attack */
    foolc_oracle o = lin_oracle(&m2, 8, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new("fgsm", &a));
    ck_ok(foolc_attack_set(a, "loss", 0));
    foolc_attack_set_progress(a, shift_when_done, &m2);
    foolc_result r = {g_xadv, g_dist, g_ok, g_q};
    foolc_shape s = {N, 1, 1, D};
    ck_ok(foolc_attack_run(a, m, s, x, y, NULL, 1, &r));
    ck_assert(m2.shift1 > 0);
    int pushed = 0;   /* the search stops within rtol 1e-3; beyond that, the push acted */
    for (int i = 0; i < N; i++) pushed += g_dist[i] > want[i] * 1.0015;
    ck_assert_int_ge(pushed, 1);
    for (int i = 0; i < N; i++) {
        ck_assert(g_ok[i]);
        ck_assert_int_eq(lin_pred_of(&m2, g_xadv + i * D), 0);   /* under the shifted model */
        ck_assert(g_dist[i] >= want[i] && g_dist[i] <= want[i] * 1.02);
        ck_assert_float_eq_tol(g_dist[i],
                               (float)foolc_distance(FOOLC_LINF, x + i * D, g_xadv + i * D, D),
                               1e-6f);
    }
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* Counts progress calls, those with a known total, and cancels at call `stop` (0: never). */
typedef struct prog_count {
    int calls, reports, stop;
} prog_count;

static int count_progress(void *user, int64_t done, int64_t total)
{
    prog_count *p = user;
    p->calls++;
    if (total > 0 && done >= 0 && done <= total) p->reports++;
    return p->stop > 0 && p->calls >= p->stop;
}

/* Every attack reports progress with a known total, and honours a cancel from the progress
 * callback at its first call and at its third: FOOLC_E_CANCELLED, the callback not called
 * again, and whatever was found before is sound. */
START_TEST(test_attack_progress_cancel)   /* every attack in the registry */
{
    const char *name = foolc_attack_name(_i);
    foolc_norm norm;
    ck_ok(foolc_attack_describe(name, &norm, NULL, NULL, NULL));
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_result r = result();
    foolc_shape s = {N, 1, 1, D};
    prog_count p = {0, 0, 0};
    foolc_attack_set_progress(a, count_progress, &p);
    assert_sound(name, foolc_attack_run(a, m, s, g_x, g_y, NULL, 7, &r), norm);
    ck_assert_msg(p.reports >= 1, "%s: no progress report with a known total", name);
    for (int stop = 1; stop <= 3; stop += 2) {
        prog_count c = {0, 0, stop};
        foolc_attack_set_progress(a, count_progress, &c);
        foolc_status st = foolc_attack_run(a, m, s, g_x, g_y, NULL, 7, &r);
        if (p.calls >= stop) {
            ck_assert_msg(st == FOOLC_E_CANCELLED, "%s: cancel at call %d ignored (%s)", name,
                          stop, foolc_status_str(st));
            ck_assert_int_eq(c.calls, stop);
            ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "cancelled"));
        }
        assert_props(name, norm);
    }
    foolc_model_free(m);
    foolc_attack_free(a);
}
END_TEST

/* Outputs that share memory with inputs (or with each other) are refused before anything is
 * written: an attack writing x_adv over x reported every distance as 0. */
START_TEST(test_aliased_buffers)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new("fgsm", &a));
    foolc_shape s = {N, 1, 1, D};
    float x[N * D], xcopy[N * D];
    memcpy(x, g_x, sizeof x);
    memcpy(xcopy, g_x, sizeof x);
    int32_t y[N + 8];
    memcpy(y, g_y, sizeof g_y);
    foolc_result r = {x, g_dist, g_ok, g_q};                 /* x_adv is x */
    ck_status(foolc_attack_run(a, m, s, x, y, NULL, 1, &r), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "x_adv overlaps the input x"));
    ck_assert_mem_eq(x, xcopy, sizeof x);
    r.x_adv = x + D;                                          /* partly */
    ck_status(foolc_attack_run(a, m, s, x, y, NULL, 1, &r), FOOLC_E_INVALID);
    r.x_adv = g_xadv;
    r.distance = (float *)(void *)y;                          /* distance over labels */
    ck_status(foolc_attack_run(a, m, s, x, y, NULL, 1, &r), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "labels"));
    r.distance = g_dist;
    r.success = (uint8_t *)g_dist;                            /* two outputs */
    ck_status(foolc_attack_run(a, m, s, x, y, NULL, 1, &r), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "overlaps result distance"));
    r.success = g_ok;
    ck_assert_mem_eq(x, xcopy, sizeof x);
    /* Separate buffers, even adjacent ones, are fine. */
    assert_sound("fgsm", foolc_attack_run(a, m, s, x, y, NULL, 1, &r), FOOLC_LINF);
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* The result's size travels with the call (foolc_attack_run is a macro passing
 * sizeof(foolc_result)): a smaller one is refused with FOOLC_E_VERSION before anything is
 * written; a larger one (a later header's) is read for the fields this library knows; the
 * function itself takes this header's struct. */
START_TEST(test_result_size)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new("fgsm", &a));
    foolc_shape s = {N, 1, 1, D};
    struct { foolc_result r; double later_field; } big = {result(), 0};
    foolc_result r = result();
    ck_status(foolc_attack_run_sized(a, m, s, g_x, g_y, NULL, 1, &r, sizeof r - 1),
              FOOLC_E_VERSION);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "foolc_result"));
    ck_status(foolc_attack_run_sized(a, m, s, g_x, g_y, NULL, 1, &r, 0), FOOLC_E_VERSION);
    assert_sound("fgsm", foolc_attack_run_sized(a, m, s, g_x, g_y, NULL, 1, &big.r, sizeof big),
                 FOOLC_LINF);
    float d1[N];
    memcpy(d1, g_dist, sizeof d1);
    /* The function itself (not the macro) takes this header's struct: the same results,
     * the query counts filled. */
    memset(g_q, 0, sizeof g_q);
    assert_sound("fgsm", (foolc_attack_run)(a, m, s, g_x, g_y, NULL, 1, &r), FOOLC_LINF);
    ck_assert_mem_eq(d1, g_dist, sizeof d1);
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* Enumerated parameters take their values' names (the CLI's --set, Python's Attack.set):
 * `pgd-linf.loss=margin` and `apgd-linf.loss=dlr` failed when only fgsm named its values. */
START_TEST(test_enum_names)
{
    static const struct { const char *attack, *key, *name; double value; } k[] = {
        {"pgd-linf", "loss", "margin", 1},    {"pgd-l2", "loss", "ce", 0},
        {"bim-l1", "loss", "margin", 1},      {"mifgsm-linf", "loss", "margin", 1},
        {"apgd-linf", "loss", "dlr", 2},      {"apgd-l2", "loss", "margin", 1},
        {"fgsm", "loss", "both", 2},          {"fgm-l2", "loss", "ce", 0},
        {"fgm-l1", "loss", "margin", 1},      {"ddn", "loss", "margin", 1},
        {"ead", "fista", "ista", 0},          {"binarization", "upper", "down", 0},
        {"boundary", "schedule", "statistics", 0}, {"hsj-l2", "init", "pool", 1},
        {"bb-l2", "init", "best", 3},         {"boundary", "init", "attack", 2},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        foolc_attack *a;
        ck_ok(foolc_attack_new(k[i].attack, &a));
        ck_ok(foolc_attack_set_text(a, k[i].key, k[i].name));
        double v;
        ck_ok(foolc_attack_get(a, k[i].key, &v));
        ck_assert_msg(v == k[i].value, "%s.%s=%s gave %g", k[i].attack, k[i].key, k[i].name, v);
        ck_status(foolc_attack_set_text(a, k[i].key, "no-such-value"), FOOLC_E_INVALID);
        foolc_attack_free(a);
    }
}
END_TEST

/* Counts say one thing (issue 15, item 6): the attack's work. A sample already adversarial
 * costs one image (the clean check); the library's verification is neither counted nor
 * charged; under a budget, the model's totals and the per-sample sums never pass it. */
START_TEST(test_counts_and_budget)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_shape s = {N, 1, 1, D};
    foolc_result r = result();
    /* Labels that the model already gets wrong: every sample is adversarial at x. */
    int32_t wrong[N];
    for (int i = 0; i < N; i++) wrong[i] = (g_y[i] + 1) % K;
    static const char *const names[] = {"fgsm", "hsj-l2", "ddn"};
    for (int t = 0; t < 3; t++) {
        foolc_attack *a;
        ck_ok(foolc_attack_new(names[t], &a));
        foolc_norm norm;
        ck_ok(foolc_attack_describe(names[t], &norm, NULL, NULL, NULL));
        foolc_model_reset_counts(m);
        ck_ok(foolc_attack_run(a, m, s, g_x, wrong, NULL, 1, &r));
        for (int i = 0; i < N; i++) {
            ck_assert(g_ok[i] && g_dist[i] == 0);
            ck_assert_msg(g_q[i].forward + g_q[i].decided == 1, "%s: sample %d cost %llu",
                          names[t], i,
                          (unsigned long long)(g_q[i].forward + g_q[i].decided));
        }
        foolc_counts tot = foolc_model_counts(m);
        ck_assert_int_eq(tot.forward + tot.decided, N);
        /* Under a budget: the totals and the per-sample sums stay within it. */
        for (uint64_t budget = 3; budget <= 400; budget = budget * 3 + 1) {
            foolc_model_reset_counts(m);
            ck_ok(foolc_model_set_budget(m, budget));
            foolc_status st = foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r);
            ck_assert(st == FOOLC_OK || st == FOOLC_NOT_FOUND || st == FOOLC_E_BUDGET);
            tot = foolc_model_counts(m);
            uint64_t sum = 0;
            for (int i = 0; i < N; i++) sum += g_q[i].forward + g_q[i].decided;
            ck_assert_msg(tot.forward + tot.decided <= budget, "%s: %llu images under a "
                          "budget of %llu", names[t],
                          (unsigned long long)(tot.forward + tot.decided),
                          (unsigned long long)budget);
            ck_assert_int_eq(sum, tot.forward + tot.decided);
            if (st == FOOLC_E_BUDGET)
                ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "budget"));
            assert_props(names[t], norm);
        }
        ck_ok(foolc_model_set_budget(m, 0));
        foolc_attack_free(a);
    }
    foolc_model_free(m);
}
END_TEST

/* The message contract of status.h on the attack, criterion and distance functions: after
 * an error, a successful call of each leaves the message empty. */
static void fail_first(void)
{
    foolc_attack *bad;
    ck_status(foolc_attack_new("no-such-attack", &bad), FOOLC_E_INVALID);
    ck_assert(foolc_errmsg()[0] != 0);
}
#define CK_CLEARS(call) do { fail_first(); ck_ok(call); \
        ck_assert_msg(foolc_errmsg()[0] == 0, "%s left \"%s\"", #call, foolc_errmsg()); } while (0)

START_TEST(test_errmsg_cleared)
{
    foolc_norm norm;
    unsigned needs;
    int32_t np;
    const char *summary, *key, *help;
    double dflt, lo, hi, v;
    CK_CLEARS(foolc_attack_describe("fgsm", &norm, &needs, &np, &summary));
    CK_CLEARS(foolc_attack_param("fgsm", 0, &key, &dflt, &lo, &hi, &help));
    foolc_attack *a;
    CK_CLEARS(foolc_attack_new("pgd-linf", &a));
    CK_CLEARS(foolc_attack_set(a, "steps", 5));
    CK_CLEARS(foolc_attack_set_text(a, "loss", "margin"));
    CK_CLEARS(foolc_attack_get(a, "steps", &v));
    foolc_criterion *c;
    CK_CLEARS(foolc_criterion_new("top-k", &c));
    CK_CLEARS(foolc_criterion_set(c, "k", 2));
    CK_CLEARS(foolc_attack_set_criterion(a, c));
    CK_CLEARS(foolc_attack_set_init(a, "fgsm"));
    CK_CLEARS(foolc_attack_set_starts(a, g_x, g_y, N));
    CK_CLEARS(foolc_norm_parse("l2", &norm));
    float u[D];
    CK_CLEARS(foolc_project(FOOLC_L2, g_x, g_x + D, D, 0.1, 0, 1, u));
    foolc_attack_free(a);
    foolc_criterion_free(c);
}
END_TEST

/* Randomness keyed by sample id (issue 17, item 1): each sample run alone, with its id given
 * by foolc_attack_set_first_id, gives the bytes it gives in the whole batch, for every
 * attack whose result for a sample depends on that sample alone (dataset, whose pool is the
 * batch itself when none is set, is the exception). */
START_TEST(test_sample_ids)
{
    const char *name = foolc_attack_name(_i);
    if (!strcmp(name, "dataset")) return;
    foolc_norm norm;
    ck_ok(foolc_attack_describe(name, &norm, NULL, NULL, NULL));
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_result r = result();
    foolc_shape s = {N, 1, 1, D};
    assert_sound(name, foolc_attack_run(a, m, s, g_x, g_y, NULL, 7, &r), norm);
    float xadv[N * D], dist[N];
    uint8_t ok[N];
    memcpy(xadv, g_xadv, sizeof xadv);
    memcpy(dist, g_dist, sizeof dist);
    memcpy(ok, g_ok, sizeof ok);
    foolc_shape one = {1, 1, 1, D};
    for (int i = 0; i < N; i++) {
        float xa[D], di;
        uint8_t oi;
        foolc_result ri = {xa, &di, &oi, NULL};
        foolc_attack_set_first_id(a, (uint64_t)i);
        foolc_status st = foolc_attack_run(a, m, one, g_x + i * D, g_y + i, NULL, 7, &ri);
        ck_assert(st == FOOLC_OK || st == FOOLC_NOT_FOUND);
        ck_assert_int_eq(oi, ok[i]);
        ck_assert_msg(!memcmp(xa, xadv + i * D, sizeof xa) && di == dist[i],
                      "%s: sample %d alone differs from the batch (%g vs %g)", name, i,
                      (double)di, (double)dist[i]);
    }
    /* At other positions: the batch reversed, each sample keeping its id. */
    foolc_attack_set_first_id(a, 0);
    float xr[N * D];
    int32_t yr[N];
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        memcpy(xr + i * D, g_x + (N - 1 - i) * D, D * sizeof(float));
        yr[i] = g_y[N - 1 - i];
        ids[i] = (uint64_t)(N - 1 - i);
    }
    ck_ok(foolc_attack_set_ids(a, ids, N));
    foolc_status st = foolc_attack_run(a, m, s, xr, yr, NULL, 7, &r);
    ck_assert(st == FOOLC_OK || st == FOOLC_NOT_FOUND);
    for (int i = 0; i < N; i++) {
        int j = N - 1 - i;
        ck_assert_int_eq(g_ok[i], ok[j]);
        ck_assert_msg(!memcmp(g_xadv + i * D, xadv + j * D, D * sizeof(float)),
                      "%s: sample %d at position %d differs", name, j, i);
    }
    ck_status(foolc_attack_run(a, m, one, g_x, g_y, NULL, 7, &r), FOOLC_E_INVALID);
    ck_ok(foolc_attack_set_ids(a, NULL, 0));
    foolc_model_free(m);
    foolc_attack_free(a);
}
END_TEST

static int cancel_at(void *user, int64_t done, int64_t total)
{
    (void)done, (void)total;
    int *left = user;
    return --*left < 0;
}

START_TEST(test_budget_cancel_targets)
{
    foolc_oracle o = lin_oracle(&g_m, 4, 0);
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new("fgsm", &a));
    ck_ok(foolc_attack_set(a, "loss", 0));
    foolc_result r = result();
    foolc_shape s = {N, 1, 1, D};
    /* A budget that runs out mid-search: an error, and whatever was found stays sound. */
    ck_ok(foolc_model_set_budget(m, 2 * N + 30));
    ck_status(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r), FOOLC_E_BUDGET);
    assert_props("fgsm", FOOLC_LINF);
    ck_ok(foolc_model_set_budget(m, 0));
    /* Cancellation through the progress callback. */
    int left = 3;
    foolc_attack_set_progress(a, cancel_at, &left);
    ck_status(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r), FOOLC_E_CANCELLED);
    assert_props("fgsm", FOOLC_LINF);
    foolc_attack_set_progress(a, NULL, NULL);
    /* Targeted: every success lands in the target class. */
    foolc_criterion *c;
    ck_ok(foolc_criterion_new("targeted", &c));
    ck_ok(foolc_attack_set_criterion(a, c));
    ck_status(foolc_attack_run(a, m, s, g_x, g_y, NULL, 1, &r), FOOLC_E_INVALID);
    int32_t t[N];
    for (int i = 0; i < N; i++) t[i] = (g_y[i] + 1) % K;
    foolc_status st = foolc_attack_run(a, m, s, g_x, g_y, t, 1, &r);
    ck_assert(st == FOOLC_OK || st == FOOLC_NOT_FOUND);
    int hits = 0;
    for (int i = 0; i < N; i++)
        if (g_ok[i]) { ck_assert_int_eq(lin_pred(g_xadv + i * D), t[i]); hits++; }
    ck_assert_int_ge(hits, 1);
    ck_ok(foolc_attack_set_criterion(a, NULL));
    foolc_criterion_free(c);
    /* A sample that is already adversarial costs nothing: distance 0. */
    int32_t y2[N];
    memcpy(y2, g_y, sizeof y2);
    y2[0] = (g_y[0] + 1) % K;
    ck_ok(foolc_attack_run(a, m, s, g_x, y2, NULL, 1, &r));
    ck_assert_float_eq(g_dist[0], 0);
    ck_assert_uint_eq(g_q[0].backward, 0);
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

Suite *foolc_suite_attack(void);
Suite *foolc_suite_attack(void)
{
    Suite *s = suite_create("attack");
    TCase *tc = tcase_create("registry");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_attack_is_sound, 0, foolc_attack_count());
    tcase_add_loop_test(tc, test_attack_progress_cancel, 0, foolc_attack_count());
    tcase_add_test(tc, test_aliased_buffers);
    tcase_add_test(tc, test_result_size);
    tcase_add_test(tc, test_enum_names);
    tcase_add_test(tc, test_counts_and_budget);
    tcase_add_test(tc, test_errmsg_cleared);
    tcase_add_loop_test(tc, test_sample_ids, 0, foolc_attack_count());
    tcase_add_test(tc, test_fgsm_closed_form);
    tcase_add_test(tc, test_budget_cancel_targets);
    tcase_add_test(tc, test_verification_recovers_flips);
    suite_add_tcase(s, tc);
    return s;
}
