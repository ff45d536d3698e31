/* Per-sample warm starts: foolc_attack_set_sample_starts (errors, borrowing, a row that is
 * not usable ignored per sample, a usable one giving a result at least as close, the same
 * bytes whatever the batch) and the evaluation's warm starts (each sample's best point so
 * far offered to bb-* and polish-*: the same bytes whatever the chunk size and after a resume; the
 * chunk order they need). The model is a small two-layer net with tanh
 * units and hand-written gradients, per image (no batch effects). */
#include "testutil.h"

#include <math.h>

#define D 12
#define H 6
#define K 3
#define N 9

static float g_w1[H][D], g_w2[K][H];

static void weights(void)
{
    uint64_t r = 17;
    for (int h = 0; h < H; h++)
        for (int j = 0; j < D; j++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            g_w1[h][j] = ((float)(r >> 40) / (float)(1 << 24) - 0.5f) * 2.0f;
        }
    for (int k = 0; k < K; k++)
        for (int h = 0; h < H; h++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            g_w2[k][h] = ((float)(r >> 40) / (float)(1 << 24) - 0.5f) * 3.0f;
        }
}

static void forward(const float *x, double *a, float *z)
{
    for (int h = 0; h < H; h++) {
        double s = 0;
        for (int j = 0; j < D; j++) s += g_w1[h][j] * (x[j] - 0.5);
        a[h] = tanh(s);
    }
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int h = 0; h < H; h++) s += g_w2[k][h] * a[h];
        z[k] = (float)s;
    }
}

static int net_scores(void *user, const float *x, int32_t n, float *z)
{
    (void)user;
    double a[H];
    for (int32_t i = 0; i < n; i++) forward(x + (size_t)i * D, a, z + (size_t)i * K);
    return 0;
}

static int net_vag(void *user, const float *x, int32_t n, foolc_seed_fn seed, void *su,
                   float *z, float *g)
{
    (void)user;
    if (n > 64) return 1;
    double a[64][H];
    for (int32_t i = 0; i < n; i++) forward(x + (size_t)i * D, a[i], z + (size_t)i * K);
    float dz[64 * K];
    if (seed(su, z, n, K, dz)) return 1;
    for (int32_t i = 0; i < n; i++) {
        double da[H];
        for (int h = 0; h < H; h++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += g_w2[k][h] * dz[i * K + k];
            da[h] = s * (1 - a[i][h] * a[i][h]);
        }
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int h = 0; h < H; h++) s += g_w1[h][j] * da[h];
            g[(size_t)i * D + j] = (float)s;
        }
    }
    return 0;
}

static foolc_model *net_model(void)
{
    weights();
    foolc_oracle o = {FOOLC_ORACLE_VERSION, {64, 1, 1, D}, K, 0, 1, NULL, net_scores, net_vag,
                      NULL};
    foolc_model *m;
    ck_ok(foolc_model_new(&o, &m));
    return m;
}

static float g_x[N * D];
static int32_t g_y[N];

static void samples(void)
{
    weights(); /* the labels are the net's */
    uint64_t r = 5;
    for (int i = 0; i < N * D; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        g_x[i] = (float)(r >> 40) / (float)(1 << 24);
    }
    float z[N * K];
    net_scores(NULL, g_x, N, z);
    for (int i = 0; i < N; i++) {
        g_y[i] = 0;
        for (int k = 1; k < K; k++) if (z[i * K + k] > z[i * K + g_y[i]]) g_y[i] = k;
    }
}

typedef struct out {
    float xa[N * D], dist[N];
    uint8_t ok[N];
    foolc_counts q[N];
} out;

/* Attack `name` (with `steps` steps where it has them) on samples b..b+n-1, with per-sample
 * starts `st` (rows of those samples; NULL: none). */
static int32_t g_per = 1;   /* starts per sample in run()'s rows */
static int g_noise;         /* the polish attacks' noise chains (run() sets 0 by default) */
static int g_race;          /* the polish attacks' race_decision (0 by default) */

static foolc_status run(foolc_model *m, const char *name, int32_t b, int32_t n,
                        const float *st, out *o)
{
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    double v;
    if (foolc_attack_get(a, "steps", &v) >= 0) ck_ok(foolc_attack_set(a, "steps", 30));
    if (foolc_attack_get(a, "noise", &v) >= 0) ck_ok(foolc_attack_set(a, "noise", g_noise));
    if (foolc_attack_get(a, "race_decision", &v) >= 0)
        ck_ok(foolc_attack_set(a, "race_decision", g_race));
    foolc_attack_set_first_id(a, (uint64_t)b);
    if (st) ck_ok(foolc_attack_set_sample_starts(a, st, n * g_per));
    foolc_result res = {o->xa + b * D, o->dist + b, o->ok + b, o->q + b};
    foolc_shape sh = {n, 1, 1, D};
    foolc_status s = foolc_attack_run(a, m, sh, g_x + b * D, g_y + b, NULL, 3, &res);
    foolc_attack_free(a);
    return s;
}

START_TEST(test_api_errors)
{
    samples();
    foolc_model *m = net_model();
    float st[N * D];
    memcpy(st, g_x, sizeof st);
    ck_status(foolc_attack_set_sample_starts(NULL, st, N), FOOLC_E_INVALID);
    foolc_attack *a;
    ck_ok(foolc_attack_new("bb-l2", &a));
    ck_status(foolc_attack_set_sample_starts(a, st, -1), FOOLC_E_INVALID);
    ck_status(foolc_attack_set_sample_starts(a, NULL, 2), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "NULL x"));
    ck_ok(foolc_attack_set_sample_starts(a, NULL, 0)); /* clears */
    ck_ok(foolc_attack_set_sample_starts(a, st, N - 1));
    out o;
    foolc_result res = {o.xa, o.dist, o.ok, NULL};
    foolc_shape sh = {N, 1, 1, D};
    ck_status(foolc_attack_run(a, m, sh, g_x, g_y, NULL, 3, &res), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "per-sample starts"));
    ck_ok(foolc_attack_set_sample_starts(a, NULL, 0));
    ck_assert(foolc_attack_run(a, m, sh, g_x, g_y, NULL, 3, &res) >= 0);
    /* Attacks without a start of their own take the call and ignore the rows. */
    foolc_attack *f;
    ck_ok(foolc_attack_new("fgsm", &f));
    ck_ok(foolc_attack_set_sample_starts(f, st, N));
    ck_assert(foolc_attack_run(f, m, sh, g_x, g_y, NULL, 3, &res) >= 0);
    foolc_attack_free(f);
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* Rows that are not usable (NaN, outside the box, the clean input, not adversarial) leave
 * their samples' results as without starts; a usable one gives a result at least as close
 * as the start; the same bytes when the samples run in other batches. */
static void check_rows(const char *name)
{
    samples();
    foolc_model *m = net_model();
    static out plain, warm, split, good;
    ck_assert(run(m, "deepfool-l2", 0, N, NULL, &good) >= 0);
    ck_assert(run(m, name, 0, N, NULL, &plain) >= 0);
    float st[N * D];
    memcpy(st, good.xa, sizeof st);
    for (int j = 0; j < D; j++) st[0 * D + j] = NAN;             /* none */
    st[1 * D + 3] = 1.5f;                                          /* outside the box */
    memcpy(st + 2 * D, g_x + 2 * D, D * sizeof(float));           /* the clean input */
    for (int j = 0; j < D; j++)                                    /* barely moved: clean */
        st[3 * D + j] = g_x[3 * D + j] + 1e-4f * (good.xa[3 * D + j] - g_x[3 * D + j]);
    ck_assert(run(m, name, 0, N, st, &warm) >= 0);
    /* batches of 4, 4 and 1 with their rows */
    ck_assert(run(m, name, 0, 4, st, &split) >= 0);
    ck_assert(run(m, name, 4, 4, st + 4 * D, &split) >= 0);
    ck_assert(run(m, name, 8, 1, st + 8 * D, &split) >= 0);
    ck_assert_mem_eq(warm.xa, split.xa, sizeof warm.xa);
    ck_assert_mem_eq(warm.dist, split.dist, sizeof warm.dist);
    ck_assert_mem_eq(warm.q, split.q, sizeof warm.q);
    for (int i = 0; i < 4; i++) { /* ignored: as without starts */
        ck_assert_msg(warm.dist[i] == plain.dist[i], "%s sample %d: %g vs %g", name, i,
                      (double)warm.dist[i], (double)plain.dist[i]);
        ck_assert_mem_eq(warm.xa + i * D, plain.xa + i * D, D * sizeof(float));
    }
    int used = 0;
    for (int i = 4; i < N; i++) {
        if (!good.ok[i]) continue;
        used++;
        ck_assert(warm.ok[i]);
        ck_assert_msg(warm.dist[i] <= good.dist[i], "%s sample %d: %g from a start at %g",
                      name, i, (double)warm.dist[i], (double)good.dist[i]);
    }
    ck_assert_int_gt(used, 2);
    foolc_model_free(m);
}

START_TEST(test_rows_bb) { check_rows("bb-l2"); }
END_TEST
START_TEST(test_rows_boundary) { check_rows("boundary"); }
END_TEST
START_TEST(test_rows_hsj) { check_rows("hsj-linf"); }
END_TEST
START_TEST(test_rows_fmn) { check_rows("fmn-l2"); }
END_TEST

/* polish-*: the rows' properties of check_rows; without starts FMN's descent from the clean
 * input, then the rounds: every sample fmn-l2 breaks, about as close or closer. */
START_TEST(test_rows_polish)
{
    check_rows("polish-linf");
    foolc_model *m = net_model();
    static out none, fmn;
    ck_assert(run(m, "polish-l2", 0, N, NULL, &none) >= 0);
    ck_assert(run(m, "fmn-l2", 0, N, NULL, &fmn) >= 0);
    int any = 0;
    for (int i = 0; i < N; i++) {
        if (!fmn.ok[i]) continue;
        any++;
        ck_assert(none.ok[i]);
        ck_assert_msg(none.dist[i] <= 1.01f * fmn.dist[i], "sample %d: %g vs fmn-l2 %g", i,
                      (double)none.dist[i], (double)fmn.dist[i]);
    }
    ck_assert_int_gt(any, 2);
    foolc_model_free(m);
}
END_TEST

/* Two starts per sample (2N rows, row 2i + j sample i's start j): polish descends from each
 * usable one; the result is at least as close as the closer usable start, and the same
 * when the two rows swap places. Rows of another multiple are refused. */
START_TEST(test_two_starts)
{
    samples();
    foolc_model *m = net_model();
    static out good, far, two, swapped;
    ck_assert(run(m, "deepfool-l2", 0, N, NULL, &good) >= 0);
    /* A farther start: the adversarial pushed away from the clean input, where still so. */
    float st[2 * N * D], sw[2 * N * D];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            float x0 = g_x[i * D + j], xa = good.xa[i * D + j];
            float f = fminf(1.0f, fmaxf(0.0f, x0 + 1.5f * (xa - x0)));
            st[(2 * i) * D + j] = i % 3 == 0 ? NAN : xa;         /* none for every third */
            st[(2 * i + 1) * D + j] = f;
            sw[(2 * i) * D + j] = f;
            sw[(2 * i + 1) * D + j] = st[(2 * i) * D + j];
            far.xa[i * D + j] = f;
        }
    g_per = 2;
    ck_assert(run(m, "polish-l2", 0, N, st, &two) >= 0);
    ck_assert(run(m, "polish-l2", 0, N, sw, &swapped) >= 0);
    g_per = 1;
    int used = 0;
    for (int i = 0; i < N; i++) {
        if (!good.ok[i]) continue;
        used++;
        ck_assert(two.ok[i] && swapped.ok[i]);
        if (i % 3)
            ck_assert_msg(two.dist[i] <= good.dist[i], "sample %d: %g from %g (ok %d)", i,
                          (double)two.dist[i], (double)good.dist[i], two.ok[i]);
        ck_assert(two.dist[i] <= (float)foolc_distance(FOOLC_L2, g_x + i * D, far.xa + i * D, D) ||
                  !isfinite(two.dist[i]));
        ck_assert_msg(fabsf(two.dist[i] - swapped.dist[i]) <= 1e-3f * two.dist[i],
                      "sample %d: %g vs %g swapped", i, (double)two.dist[i],
                      (double)swapped.dist[i]);
    }
    ck_assert_int_gt(used, 2);
    foolc_attack *a;
    ck_ok(foolc_attack_new("polish-l2", &a));
    ck_ok(foolc_attack_set_sample_starts(a, st, N + 1));
    foolc_result res = {two.xa, two.dist, two.ok, NULL};
    foolc_shape sh = {N, 1, 1, D};
    ck_status(foolc_attack_run(a, m, sh, g_x, g_y, NULL, 3, &res), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "multiple"));
    foolc_attack_free(a);
    foolc_model_free(m);
}
END_TEST

/* An evaluation of the three attacks (added in this order; steps[t] their "steps", NULL:
 * the default) on the samples, run. */
static foolc_eval *eval3(foolc_model *m, const char *const names[3], const char *const steps[3])
{
    foolc_eval_opts o;
    ck_ok(foolc_eval_defaults(&o));
    o.seed = 3;   /* run()'s: the polish's noise chains draw from it */
    foolc_eval *ev;
    ck_ok(foolc_eval_new(m, &o, &ev));
    for (int t = 0; t < 3; t++) ck_ok(foolc_eval_add_attack(ev, names[t]));
    for (int t = 0; t < 3; t++)
        if (steps[t]) ck_ok(foolc_eval_set(ev, names[t], "steps", steps[t]));
    ck_ok(foolc_eval_set_samples(ev, g_x, g_y, NULL, N));
    ck_assert(foolc_eval_run(ev) >= 0);
    return ev;
}

/* In an evaluation polish-l2 runs last whatever the order it was added in, from each
 * sample's best L2 point of the attacks before it, and never ends farther. */
START_TEST(test_eval_polish)
{
    samples();
    foolc_model *m = net_model();
    foolc_eval *ev = eval3(m, (const char *const[]){"polish-l2", "boundary", "deepfool-l2"},
                           (const char *const[]){"30", "30", NULL});
    ck_assert_str_eq(foolc_eval_attack_name(ev, 2), "polish-l2");
    int lower = 0, any = 0;
    for (int32_t i = 0; i < N; i++) {
        float before = INFINITY;
        for (int32_t t = 0; t < 2; t++)
            if (foolc_eval_success(ev, t)[i])
                before = fminf(before, foolc_eval_dist(ev, t)[i * FOOLC_NORM_COUNT + FOOLC_L2]);
        float after = foolc_eval_dist(ev, 2)[i * FOOLC_NORM_COUNT + FOOLC_L2];
        ck_assert_int_eq(foolc_eval_success(ev, 2)[i], isfinite(before));
        ck_assert(after <= before);
        any += isfinite(before);
        lower += after < before;
    }
    ck_assert_int_gt(any, 2);
    ck_assert_int_gt(lower, 0);
    foolc_eval_free(ev);
    foolc_model_free(m);
}
END_TEST

/* Starts after the first two race: with a far start as row 2 (a side chain) polish-l1
 * spends fewer gradient images than with it as row 1 (a main chain, every round), and both
 * end at least as close as the good start. With race_decision 1 row 1 races too: the far
 * start as row 1 then gives the side chain's run, byte for byte. */
START_TEST(test_side_race)
{
    samples();
    foolc_model *m = net_model();
    static out good, side, main2, raced;
    ck_assert(run(m, "deepfool-l2", 0, N, NULL, &good) >= 0);
    static float st[3 * N * D], sw[3 * N * D];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            float x0 = g_x[i * D + j], xa = good.xa[i * D + j];
            float f = fminf(1.0f, fmaxf(0.0f, x0 + 2.0f * (xa - x0)));
            st[(3 * i) * D + j] = sw[(3 * i) * D + j] = xa;
            st[(3 * i + 1) * D + j] = NAN;
            st[(3 * i + 2) * D + j] = f;
            sw[(3 * i + 1) * D + j] = f;
            sw[(3 * i + 2) * D + j] = NAN;
        }
    g_per = 3;
    ck_assert(run(m, "polish-l1", 0, N, st, &side) >= 0);
    ck_assert(run(m, "polish-l1", 0, N, sw, &main2) >= 0);
    g_race = 1;
    ck_assert(run(m, "polish-l1", 0, N, sw, &raced) >= 0);
    g_race = 0;
    g_per = 1;
    ck_assert(!memcmp(raced.xa, side.xa, sizeof side.xa));
    ck_assert(!memcmp(raced.dist, side.dist, sizeof side.dist));
    ck_assert(!memcmp(raced.ok, side.ok, sizeof side.ok));
    for (int i = 0; i < N; i++)
        ck_assert(raced.q[i].backward == side.q[i].backward &&
                  raced.q[i].forward == side.q[i].forward);
    uint64_t bs = 0, bm = 0;
    int used = 0;
    for (int i = 0; i < N; i++) {
        bs += side.q[i].backward;
        bm += main2.q[i].backward;
        if (!good.ok[i]) continue;
        used++;
        float d0 = (float)foolc_distance(FOOLC_L1, g_x + i * D, good.xa + i * D, D);
        ck_assert(side.ok[i] && main2.ok[i]);
        ck_assert_msg(side.dist[i] <= d0 && main2.dist[i] <= d0, "sample %d: %g, %g from %g",
                      i, (double)side.dist[i], (double)main2.dist[i], (double)d0);
    }
    ck_assert_int_gt(used, 2);
    ck_assert_msg(bs < bm, "gradient images: %llu with a side chain, %llu with a main one",
                  (unsigned long long)bs, (unsigned long long)bm);
    foolc_model_free(m);
}
END_TEST

/* polish-l1's noise chains (parameter noise): two more chains per sample, each from a
 * blended-noise point of its own, that race like the side starts. Every sample ends at least
 * as close as its start and as without them (the start's chain is the same); here the start's
 * chain wins, so each noise chain runs its first round only (30 gradient images of the 4
 * rounds' 120); the same bytes when the samples run in other batches (the noise is keyed by
 * the sample). */
START_TEST(test_noise_chains)
{
    samples();
    foolc_model *m = net_model();
    static out good, plain, noisy, split;
    ck_assert(run(m, "deepfool-l2", 0, N, NULL, &good) >= 0);
    ck_assert(run(m, "polish-l1", 0, N, good.xa, &plain) >= 0);
    g_noise = 2;
    ck_assert(run(m, "polish-l1", 0, N, good.xa, &noisy) >= 0);
    ck_assert(run(m, "polish-l1", 0, 5, good.xa, &split) >= 0);
    ck_assert(run(m, "polish-l1", 5, 4, good.xa + 5 * D, &split) >= 0);
    g_noise = 0;
    ck_assert_mem_eq(noisy.xa, split.xa, sizeof noisy.xa);
    ck_assert_mem_eq(noisy.q, split.q, sizeof noisy.q);
    int used = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(noisy.q[i].backward == plain.q[i].backward + 2 * 30,
                      "sample %d: %llu gradient images with noise chains, %llu without", i,
                      (unsigned long long)noisy.q[i].backward,
                      (unsigned long long)plain.q[i].backward);
        if (!good.ok[i]) continue;
        used++;
        float d0 = (float)foolc_distance(FOOLC_L1, g_x + i * D, good.xa + i * D, D);
        ck_assert(noisy.ok[i]);
        ck_assert_msg(noisy.dist[i] <= d0, "sample %d: %g from %g", i, (double)noisy.dist[i],
                      (double)d0);
        ck_assert_msg(noisy.dist[i] <= plain.dist[i], "sample %d: %g with noise chains, %g "
                      "without", i, (double)noisy.dist[i], (double)plain.dist[i]);
    }
    ck_assert_int_gt(used, 2);
    foolc_model_free(m);
}
END_TEST

/* In an evaluation the polish attack names[0] (norm p) also starts from the point of the side
 * source names[1] before it (and from names[2]'s when `both`, else names[2] is no side
 * source): the same bytes and images as names[0] alone with the rows best point so far, none
 * (no decision-based attack), then each side source's point (where not already the first);
 * at least as close as one round of names[0] from names[1]'s point alone (the same first
 * round, without the final searches) and as names[2]'s point. */
static void check_side(const char *const names[3], const char *const steps[3], foolc_norm p,
                       int both)
{
    samples();
    foolc_model *m = net_model();
    foolc_eval *ev = eval3(m, names, steps);
    ck_assert_str_eq(foolc_eval_attack_name(ev, 1), names[1]);
    ck_assert_str_eq(foolc_eval_attack_name(ev, 2), names[0]);
    const uint8_t *ok0 = foolc_eval_success(ev, 1);
    static float st[N * D];
    memcpy(st, foolc_eval_x_adv(ev, 1), sizeof st);
    for (int i = 0; i < N; i++)
        if (!ok0[i])
            for (int j = 0; j < D; j++) st[i * D + j] = NAN;
    const int r = 3 + both;
    static float rows[4 * N * D];
    int sides = 0;   /* samples with a side row */
    for (int i = 0; i < N; i++) {
        const float *d0 = foolc_eval_dist(ev, 0), *d1 = foolc_eval_dist(ev, 1);
        const uint8_t ok2 = foolc_eval_success(ev, 0)[i];
        int f = !ok2 ? 1 : !ok0[i] ? 0
                : d1[i * FOOLC_NORM_COUNT + p] < d0[i * FOOLC_NORM_COUNT + p];
        for (int j = 0; j < D; j++) {
            float *row = rows + (size_t)(r * i) * D + j;
            row[0] = foolc_eval_x_adv(ev, f)[i * D + j];
            row[D] = NAN;
            if (both) row[2 * D] = f == 0 || !ok2 ? NAN : foolc_eval_x_adv(ev, 0)[i * D + j];
            row[(r - 1) * D] = f == 1 ? NAN : st[i * D + j];
        }
        sides += (f == 0 && ok0[i]) || (both && f == 1 && ok2);
    }
    ck_assert_int_gt(sides, 0);
    static out alone;
    foolc_attack *a;
    double noise;   /* alone with the evaluation's (default) noise chains */
    ck_ok(foolc_attack_new(names[0], &a));
    ck_ok(foolc_attack_get(a, "noise", &noise));
    foolc_attack_free(a);
    g_per = r;
    g_noise = (int)noise;
    ck_assert(run(m, names[0], 0, N, rows, &alone) >= 0);
    g_per = 1;
    g_noise = 0;
    ck_assert_mem_eq(alone.xa, foolc_eval_x_adv(ev, 2), sizeof alone.xa);
    ck_assert_mem_eq(alone.q, foolc_eval_queries(ev, 2), sizeof alone.q);
    ck_ok(foolc_attack_new(names[0], &a));
    ck_ok(foolc_attack_set(a, "steps", 30));
    ck_ok(foolc_attack_set(a, "rounds", 1));
    ck_ok(foolc_attack_set(a, "noise", 0));
    ck_ok(foolc_attack_set(a, "bisect", 0));
    ck_ok(foolc_attack_set(a, "polish", 0));
    ck_ok(foolc_attack_set_sample_starts(a, st, N));
    static out one;
    foolc_result res = {one.xa, one.dist, one.ok, one.q};
    foolc_shape sh = {N, 1, 1, D};
    ck_assert(foolc_attack_run(a, m, sh, g_x, g_y, NULL, 3, &res) >= 0);
    foolc_attack_free(a);
    int any = 0;
    for (int32_t i = 0; i < N; i++) {
        float after = foolc_eval_dist(ev, 2)[i * FOOLC_NORM_COUNT + p];
        float other = foolc_eval_dist(ev, 0)[i * FOOLC_NORM_COUNT + p];
        if (foolc_eval_success(ev, 0)[i]) ck_assert(after <= other);
        if (!ok0[i]) continue;
        any++;
        ck_assert(one.ok[i]);
        ck_assert_msg(after <= one.dist[i], "sample %d: %g in the evaluation, %g from "
                      "%s's point alone", i, (double)after, (double)one.dist[i], names[1]);
    }
    ck_assert_int_gt(any, 2);
    foolc_eval_free(ev);
    foolc_model_free(m);
}

/* polish-l1's side sources are the L0 attacks (sparse starts). */
START_TEST(test_eval_sparse)
{
    check_side((const char *const[]){"polish-l1", "sigma-zero", "fgm-l1"},
               (const char *const[]){"30", "40", NULL}, FOOLC_L1, 0);
}
END_TEST

/* polish-linf's are the gradient Linf attacks. */
START_TEST(test_eval_side_linf)
{
    check_side((const char *const[]){"polish-linf", "fmn-linf", "fgsm"},
               (const char *const[]){"30", "30", NULL}, FOOLC_LINF, 1);
}
END_TEST

/* An evaluation: bb-l2 takes warm starts, boundary keeps its own. */
static foolc_eval *make(foolc_model *m, int32_t chunk, int warm)
{
    foolc_eval_opts o;
    ck_ok(foolc_eval_defaults(&o));
    ck_assert_int_eq(o.warm_start, 1);
    o.chunk = chunk;
    o.seed = 2;
    o.warm_start = warm;
    foolc_eval *ev;
    ck_ok(foolc_eval_new(m, &o, &ev));
    ck_ok(foolc_eval_add_attack(ev, "fgsm"));
    ck_ok(foolc_eval_add_attack(ev, "deepfool-l2"));
    ck_ok(foolc_eval_add_attack(ev, "bb-l2"));
    ck_ok(foolc_eval_add_attack(ev, "boundary"));
    ck_ok(foolc_eval_set(ev, "bb-l2", "steps", "40"));
    ck_ok(foolc_eval_set(ev, "boundary", "steps", "30"));
    ck_ok(foolc_eval_set_samples(ev, g_x, g_y, NULL, N));
    return ev;
}

static void same(foolc_eval *a, foolc_eval *b)
{
    for (int32_t t = 0; t < foolc_eval_attacks(a); t++) {
        ck_assert_mem_eq(foolc_eval_dist(a, t), foolc_eval_dist(b, t),
                         N * FOOLC_NORM_COUNT * sizeof(float));
        ck_assert_mem_eq(foolc_eval_x_adv(a, t), foolc_eval_x_adv(b, t), N * D * sizeof(float));
        ck_assert_mem_eq(foolc_eval_queries(a, t), foolc_eval_queries(b, t),
                         N * sizeof(foolc_counts));
    }
}

START_TEST(test_eval_chunks)
{
    samples();
    foolc_model *m = net_model();
    foolc_eval *a = make(m, 2, 1), *b = make(m, 4, 1), *c = make(m, N, 1), *off = make(m, 4, 0);
    ck_assert(foolc_eval_run(a) >= 0 && foolc_eval_run(b) >= 0 && foolc_eval_run(c) >= 0 &&
              foolc_eval_run(off) >= 0);
    same(a, b);
    same(a, c);
    /* bb-l2 (attack 2): each sample at least as close in L2 as the best before it;
     * boundary (3) keeps its own start. */
    ck_assert_str_eq(foolc_eval_attack_name(a, 2), "bb-l2");
    int differ = 0;
    for (int32_t i = 0; i < N; i++) {
        float before = INFINITY;
        for (int32_t t = 0; t < 2; t++)
            if (foolc_eval_success(a, t)[i])
                before = fminf(before, foolc_eval_dist(a, t)[i * FOOLC_NORM_COUNT + FOOLC_L2]);
        ck_assert(foolc_eval_dist(a, 2)[i * FOOLC_NORM_COUNT + FOOLC_L2] <= before);
        /* the walk from the start spends queries (and never makes a result worse) */
        differ |= foolc_eval_queries(a, 2)[i].forward != foolc_eval_queries(off, 2)[i].forward;
        ck_assert(foolc_eval_dist(a, 2)[i * FOOLC_NORM_COUNT + FOOLC_L2] <=
                  foolc_eval_dist(off, 2)[i * FOOLC_NORM_COUNT + FOOLC_L2]);
    }
    ck_assert(differ); /* the switch does something */
    ck_assert_mem_eq(foolc_eval_x_adv(a, 3), foolc_eval_x_adv(off, 3), N * D * sizeof(float));
    /* The order the warm starts need: bb-l2's chunks after the earlier attacks'. */
    int32_t needs[8];
    int32_t per = (N + 3) / 4;
    ck_assert_int_eq(foolc_eval_chunk_needs(b, 0, needs, 8), 0);
    ck_assert_int_eq(foolc_eval_chunk_needs(b, 2 * per + 1, needs, 8), 2);
    for (int j = 0; j < 2; j++) ck_assert_int_eq(needs[j], j * per + 1);
    ck_assert_int_eq(foolc_eval_chunk_needs(b, 3 * per + 1, needs, 8), 0);
    ck_assert_int_eq(foolc_eval_chunk_needs(off, 2 * per + 1, needs, 8), 0);
    ck_assert_int_eq(foolc_eval_chunk_needs(b, 999, needs, 8), 0);
    foolc_eval *d = make(m, 4, 1);
    ck_status(foolc_eval_run_chunk(d, 2 * per + 1), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "warm starts need"));
    int done = 1;
    ck_ok(foolc_eval_chunk_info(d, 2 * per + 1, NULL, NULL, NULL, &done));
    ck_assert(!done);
    ck_assert(foolc_eval_run_chunk(d, 3 * per + 1) >= 0); /* boundary needs nothing */
    foolc_eval_free(a);
    foolc_eval_free(b);
    foolc_eval_free(c);
    foolc_eval_free(d);
    foolc_eval_free(off);
    foolc_model_free(m);
}
END_TEST

START_TEST(test_eval_resume)
{
    samples();
    foolc_model *m = net_model();
    char path[] = "/tmp/foolc_warm_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(path);
    foolc_eval *whole = make(m, 4, 1), *first = make(m, 4, 1), *rest = make(m, 4, 1);
    ck_assert(foolc_eval_run(whole) >= 0);
    /* the first run stops after bb-l2's first chunk; the second resumes */
    ck_ok(foolc_eval_resume(first, path, "warm test"));
    int32_t per = (N + 3) / 4;
    for (int32_t c = 0; c <= 2 * per; c++) ck_assert(foolc_eval_run_chunk(first, c) >= 0);
    foolc_eval_free(first);
    ck_ok(foolc_eval_resume(rest, path, "warm test"));
    ck_assert(foolc_eval_run(rest) >= 0);
    same(whole, rest);
    /* chunks loaded from text elsewhere, out of order, then the rest run here */
    foolc_eval *load = make(m, 4, 1);
    for (int32_t c = 2 * per - 1; c >= 0; c--) {
        char *text;
        size_t len;
        ck_ok(foolc_eval_chunk_save(whole, c, &text, &len));
        ck_ok(foolc_eval_chunk_load(load, text, len, 1, NULL));
        foolc_free(text);
    }
    ck_assert(foolc_eval_run(load) >= 0);
    same(whole, load);
    foolc_eval_free(whole);
    foolc_eval_free(rest);
    foolc_eval_free(load);
    unlink(path);
    foolc_model_free(m);
}
END_TEST

/* The fewest coordinates of sample i's input that, each left, set to 0 or set to 1, make
 * the net's decision change: every one of the 3^D points (a search over the box's corners:
 * an upper bound of the L0 minimum, which other values could lower). */
static int corner_min(int i)
{
    int best = D + 1;
    float x[D], z[K];
    double a[H];
    int pw = 1;
    for (int j = 0; j < D; j++) pw *= 3;
    for (int c = 1; c < pw; c++) {
        int v = c, cnt = 0;
        for (int j = 0; j < D; j++, v /= 3) {
            x[j] = v % 3 == 0 ? g_x[i * D + j] : (float)(v % 3 - 1);
            cnt += x[j] != g_x[i * D + j];
        }
        if (cnt >= best) continue;
        forward(x, a, z);
        int lab = 0;
        for (int k = 1; k < K; k++) if (z[k] > z[lab]) lab = k;
        if (lab != g_y[i]) best = cnt;
    }
    return best;
}

/* polish-l0 from deepfool-l2's points (every coordinate changed a little, on the boundary):
 * on every sample fewer coordinates than its start and no more than the corner search's
 * minimum (1 or 2 of 12 here, reached in 90-200 images per sample), the same bytes in
 * batches of 4, 4 and 1; without starts, from VFGA's points, never more than VFGA's. */
START_TEST(test_polish_l0)
{
    samples();
    foolc_model *m = net_model();
    static out good, warm, split, plain, vfga;
    ck_assert(run(m, "deepfool-l2", 0, N, NULL, &good) >= 0);
    ck_assert(run(m, "polish-l0", 0, N, good.xa, &warm) >= 0);
    ck_assert(run(m, "polish-l0", 0, 4, good.xa, &split) >= 0);
    ck_assert(run(m, "polish-l0", 4, 4, good.xa + 4 * D, &split) >= 0);
    ck_assert(run(m, "polish-l0", 8, 1, good.xa + 8 * D, &split) >= 0);
    ck_assert_mem_eq(warm.xa, split.xa, sizeof warm.xa);
    ck_assert_mem_eq(warm.q, split.q, sizeof warm.q);
    int used = 0;
    for (int i = 0; i < N; i++) {
        if (!good.ok[i]) continue;
        used++;
        int start = 0, end = 0;
        for (int j = 0; j < D; j++) {
            start += good.xa[i * D + j] != g_x[i * D + j];
            end += warm.xa[i * D + j] != g_x[i * D + j];
        }
        ck_assert(warm.ok[i]);
        ck_assert_int_eq((int)warm.dist[i], end);
        int best = corner_min(i);
        ck_assert_msg(end < start && end <= best, "sample %d: %d coordinates from %d (corner "
                      "search %d)", i, end, start, best);
    }
    ck_assert_int_gt(used, 4);
    ck_assert(run(m, "polish-l0", 0, N, NULL, &plain) >= 0);
    ck_assert(run(m, "vfga", 0, N, NULL, &vfga) >= 0);
    for (int i = 0; i < N; i++)
        if (vfga.ok[i]) {
            ck_assert(plain.ok[i]);
            ck_assert(plain.dist[i] <= vfga.dist[i]);
        }
    foolc_model_free(m);
}
END_TEST

/* The named sets' parameters: every entry sets a valid parameter of an attack of its set. */
START_TEST(test_set_params)
{
    ck_assert_ptr_null(foolc_eval_attack_set_params("nope"));
    ck_assert_ptr_null(foolc_eval_attack_set_params(NULL));
    ck_assert_str_eq(foolc_eval_attack_set_params("quick"), "");
    const char *sets[] = {"auto", "auto-l0", "auto-l1", "auto-l2", "auto-linf", "quick"};
    int any = 0;
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        const char *sp = foolc_eval_attack_set_params(sets[i]);
        const char *list = foolc_eval_attack_set(sets[i]);
        ck_assert_ptr_nonnull(sp);
        for (const char *p = sp; *p;) {
            size_t len = strcspn(p, ",");
            char ent[128], *eq, *dot;
            snprintf(ent, sizeof ent, "%.*s", (int)len, p);
            p += len + (p[len] == ',');
            ck_assert_ptr_nonnull(eq = strchr(ent, '='));
            *eq = '\0';
            ck_assert_ptr_nonnull(dot = strrchr(ent, '.'));
            *dot = '\0';
            char pat[160];
            snprintf(pat, sizeof pat, ",%s,", ent);
            char wrapped[1024];
            snprintf(wrapped, sizeof wrapped, ",%s,", list);
            ck_assert_msg(strstr(wrapped, pat), "%s: %s is not in the set", sets[i], ent);
            foolc_attack *a;
            ck_ok(foolc_attack_new(ent, &a));
            ck_ok(foolc_attack_set_text(a, dot + 1, eq + 1));
            foolc_attack_free(a);
            any++;
        }
    }
    ck_assert_int_gt(any, 0);
}
END_TEST

Suite *foolc_suite_warm(void);
Suite *foolc_suite_warm(void)
{
    Suite *s = suite_create("warm");
    TCase *tc = tcase_create("warm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_api_errors);
    tcase_add_test(tc, test_rows_bb);
    tcase_add_test(tc, test_rows_boundary);
    tcase_add_test(tc, test_rows_hsj);
    tcase_add_test(tc, test_rows_fmn);
    tcase_add_test(tc, test_rows_polish);
    tcase_add_test(tc, test_polish_l0);
    tcase_add_test(tc, test_eval_polish);
    tcase_add_test(tc, test_two_starts);
    tcase_add_test(tc, test_side_race);
    tcase_add_test(tc, test_noise_chains);
    tcase_add_test(tc, test_eval_sparse);
    tcase_add_test(tc, test_eval_side_linf);
    tcase_add_test(tc, test_eval_chunks);
    tcase_add_test(tc, test_eval_resume);
    tcase_add_test(tc, test_set_params);
    suite_add_tcase(s, tc);
    return s;
}
