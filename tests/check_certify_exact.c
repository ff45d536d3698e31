/* Check suite of method=exact (lib/certify/exact.c): the MILP's minimum against exhaustive
 * enumeration of activation patterns on two- and three-layer ReLU nets of a few neurons
 * (each pattern's linear region solved as an LP), against the closed form of linear models
 * (box active and inactive), never above any registered attack's distance (dense, conv,
 * avgpool and batchnorm nets), the time-limited interval (lower <= upper, the upper end a
 * verified adversarial), and the refusals. */
#include "testutil.h"

#include "certify/exact.h"
#include "internal.h"

#include <glpk.h>
#include <math.h>
#include <string.h>

static uint64_t g_rng = 0x9E3779B97F4A7C15ULL;

static double urand(void) /* [0, 1) */
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

static foolc_net *mknet(const char *arch, uint64_t seed, double scale)
{
    foolc_net *net = NULL;
    ck_ok(foolc_net_new(arch, seed, &net));
    int64_t np = foolc_net_param_count(net);
    float *p = malloc((size_t)np * sizeof *p);
    ck_assert_ptr_nonnull(p);
    ck_ok(foolc_net_get_params(net, p));
    for (int64_t i = 0; i < np; i++) p[i] = (float)(p[i] * scale);
    ck_ok(foolc_net_set_params(net, p));
    free(p);
    return net;
}

/* A net with every parameter uniform in [-1, 1): class boundaries cross the box. */
static foolc_net *mknet_uniform(const char *arch)
{
    foolc_net *net = NULL;
    ck_ok(foolc_net_new(arch, 1, &net));
    int64_t np = foolc_net_param_count(net);
    float *p = malloc((size_t)np * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (int64_t i = 0; i < np; i++) p[i] = (float)(2 * urand() - 1);
    ck_ok(foolc_net_set_params(net, p));
    free(p);
    return net;
}

static int32_t predict(foolc_net *net, const float *x)
{
    float z[16];
    ck_ok(foolc_net_forward(net, x, 1, z));
    int32_t k = foolc_net_classes(net), b = 0;
    for (int32_t j = 1; j < k; j++)
        if (z[j] > z[b]) b = j;
    return b;
}

static foolc__exact_opts opts(foolc_norm norm, int mode)
{
    foolc__exact_opts o;
    memset(&o, 0, sizeof o);
    o.norm = norm;
    o.lo = 0;
    o.hi = 1;
    o.radius = INFINITY;
    o.rtol = 1e-6;
    o.time_limit = 20;
    o.mode = mode;
    o.crown = 1;
    return o;
}

/* ---- enumeration of activation patterns ---------------------------------------------- */

#define EN_MAXD 8
#define EN_MAXH 8

/* An MLP of dense layers (relu between them): sizes n[0] (input) ... n[nl] (classes). */
typedef struct mlp {
    int nl, n[4];
    double W[3][EN_MAXH][EN_MAXH], b[3][EN_MAXH];
} mlp;

static void mlp_from_net(foolc_net *net, mlp *m, int nl, const int *sizes)
{
    int64_t np = foolc_net_param_count(net);
    float *p = malloc((size_t)np * sizeof *p);
    ck_ok(foolc_net_get_params(net, p));
    m->nl = nl;
    memcpy(m->n, sizes, (size_t)(nl + 1) * sizeof *sizes);
    int64_t k = 0;
    for (int l = 0; l < nl; l++) {
        for (int o = 0; o < m->n[l + 1]; o++)
            for (int i = 0; i < m->n[l]; i++) m->W[l][o][i] = p[k++];
        for (int o = 0; o < m->n[l + 1]; o++) m->b[l][o] = p[k++];
    }
    ck_assert_int_eq(k, np);
    free(p);
}

/* min ||x' - x|| over x' in the box [-1, 1], in the linear region of pattern `pat` (bit per hidden
 * neuron), with logit_j >= logit_y (target < 0: for class j; else logit_t >= every other
 * logit); INFINITY when empty. One small LP on GLPK. */
static double region_min(const mlp *m, const float *x, uint32_t pat, int y, int j, int target,
                         foolc_norm norm)
{
    const int d = m->n[0];
    /* the current tensor as an affine map of x': A (rows) x' + c */
    static double A[EN_MAXH][EN_MAXD], c[EN_MAXH], A2[EN_MAXH][EN_MAXD], c2[EN_MAXH];
    int rows = d, bit = 0;
    for (int i = 0; i < d; i++) {
        for (int k = 0; k < d; k++) A[i][k] = i == k;
        c[i] = 0;
    }
    glp_prob *P = glp_create_prob();
    glp_set_obj_dir(P, GLP_MIN);
    /* columns: x' (1..d), then t (Linf) or p, n (L1) */
    glp_add_cols(P, d);
    for (int i = 0; i < d; i++) glp_set_col_bnds(P, i + 1, GLP_DB, -1, 1);   /* the box */
    int ind[2 * EN_MAXD + 4];
    double val[2 * EN_MAXD + 4];
    if (norm == FOOLC_LINF) {
        int t = glp_add_cols(P, 1);
        glp_set_col_bnds(P, t, GLP_LO, 0, 0);
        glp_set_obj_coef(P, t, 1);
        for (int i = 0; i < d; i++) {
            int r = glp_add_rows(P, 2);
            ind[1] = i + 1, ind[2] = t, val[1] = 1, val[2] = -1;
            glp_set_mat_row(P, r, 2, ind, val);
            glp_set_row_bnds(P, r, GLP_UP, 0, x[i]);
            val[2] = 1;
            glp_set_mat_row(P, r + 1, 2, ind, val);
            glp_set_row_bnds(P, r + 1, GLP_LO, x[i], 0);
        }
    } else {
        int p0 = glp_add_cols(P, 2 * d);
        for (int i = 0; i < d; i++) {
            glp_set_col_bnds(P, p0 + i, GLP_LO, 0, 0);
            glp_set_col_bnds(P, p0 + d + i, GLP_LO, 0, 0);
            glp_set_obj_coef(P, p0 + i, 1);
            glp_set_obj_coef(P, p0 + d + i, 1);
            int r = glp_add_rows(P, 1);
            ind[1] = i + 1, ind[2] = p0 + i, ind[3] = p0 + d + i;
            val[1] = 1, val[2] = -1, val[3] = 1;
            glp_set_mat_row(P, r, 3, ind, val);
            glp_set_row_bnds(P, r, GLP_FX, x[i], x[i]);
        }
    }
    for (int l = 0; l < m->nl; l++) {
        int out = m->n[l + 1];
        for (int o = 0; o < out; o++) {
            c2[o] = m->b[l][o];
            for (int k = 0; k < d; k++) A2[o][k] = 0;
            for (int i = 0; i < rows; i++) {
                c2[o] += m->W[l][o][i] * c[i];
                for (int k = 0; k < d; k++) A2[o][k] += m->W[l][o][i] * A[i][k];
            }
        }
        rows = out;
        if (l == m->nl - 1) break;
        for (int o = 0; o < out; o++, bit++) {
            int on = (pat >> bit) & 1;
            int r = glp_add_rows(P, 1);
            for (int k = 0; k < d; k++) ind[k + 1] = k + 1, val[k + 1] = A2[o][k];
            glp_set_mat_row(P, r, d, ind, val);
            if (on) glp_set_row_bnds(P, r, GLP_LO, -c2[o], 0);
            else glp_set_row_bnds(P, r, GLP_UP, 0, -c2[o]);
            for (int k = 0; k < d; k++) A[o][k] = on ? A2[o][k] : 0;
            c[o] = on ? c2[o] : 0;
        }
    }
    /* logits A2 x' + c2 */
    for (int k2 = 0; k2 < m->n[m->nl]; k2++) {
        int a = target >= 0 ? target : j, b = target >= 0 ? k2 : y;
        if (target >= 0 && k2 == target) continue;
        if (target < 0 && k2 > 0) break;
        int r = glp_add_rows(P, 1);
        for (int k = 0; k < d; k++) ind[k + 1] = k + 1, val[k + 1] = A2[a][k] - A2[b][k];
        glp_set_mat_row(P, r, d, ind, val);
        glp_set_row_bnds(P, r, GLP_LO, c2[b] - c2[a], 0);
    }
    glp_smcp sp;
    glp_init_smcp(&sp);
    sp.msg_lev = GLP_MSG_OFF;
    sp.presolve = GLP_ON;
    int rc = glp_simplex(P, &sp);
    double v = INFINITY;
    if (rc == 0 && glp_get_status(P) == GLP_OPT) v = glp_get_obj_val(P);
    glp_delete_prob(P);
    return v;
}

static double enum_min(const mlp *m, const float *x, int y, int target, foolc_norm norm)
{
    int H = 0;
    for (int l = 1; l < m->nl; l++) H += m->n[l];
    double best = INFINITY;
    for (uint32_t pat = 0; pat < (1u << H); pat++) {
        if (target >= 0) {
            double v = region_min(m, x, pat, y, -1, target, norm);
            if (v < best) best = v;
            continue;
        }
        for (int j = 0; j < m->n[m->nl]; j++) {
            if (j == y) continue;
            double v = region_min(m, x, pat, y, j, -1, norm);
            if (v < best) best = v;
        }
    }
    return best;
}

static int check_against_enum(const char *arch, int nl, const int *sizes, uint64_t seed)
{
    glp_term_out(GLP_OFF);
    foolc_net *net = mknet_uniform(arch);
    mlp m;
    mlp_from_net(net, &m, nl, sizes);
    const int d = sizes[0], K = sizes[nl];
    int checked = 0;
    for (int s = 0; s < 4; s++) {
        float x[EN_MAXD], xa[EN_MAXD];
        for (int i = 0; i < d; i++) x[i] = (float)(2 * urand() - 1);
        int32_t y = predict(net, x);
        for (int nrm = 0; nrm < 2; nrm++) {
            foolc_norm norm = nrm ? FOOLC_L1 : FOOLC_LINF;
            for (int mode = 0; mode < 3; mode++) {
                /* mode 2: targeted at the class after the label */
                int32_t target = mode == 2 ? (y + 1) % K : -1;
                foolc__exact_opts o = opts(norm, mode == 1 ? FOOLC__EXACT_SELECTOR
                                                           : FOOLC__EXACT_PER_CLASS);
                o.lo = -1;   /* a box around the origin, where random nets change class */
                foolc__exact_out out;
                ck_ok(foolc__exact_sample(net, x, y, target, &o, &out, xa));
                double want = enum_min(&m, x, y, target, norm);
                ck_assert_msg(out.solved, "%s: not solved [%g, %g]", arch, out.lower,
                              out.upper);
                double tol = 1e-4 * fmax(1, want);
                int agree = isinf(want) ? isinf(out.lower) && isinf(out.upper)
                                        : fabs(out.lower - want) <= tol &&
                                              out.upper <= want + 2 * tol;
                ck_assert_msg(agree,
                              "%s seed %d sample %d %s mode %d: exact [%.8g, %.8g], "
                              "enumeration %.8g", arch, (int)seed, s,
                              foolc_norm_name(norm), mode, out.lower, out.upper, want);
                if (isfinite(out.upper)) {
                    int32_t p = predict(net, xa);
                    ck_assert(target >= 0 ? p == target : p != y);
                    ck_assert_double_eq_tol(foolc_distance(norm, x, xa, (size_t)d),
                                            out.upper, 1e-6);
                    checked++;
                }
            }
        }
    }
    foolc_net_free(net);
    return checked;
}

START_TEST(test_two_layer_enum)
{
    static const int sizes[] = {2, 5, 3};
    int checked = 0;
    for (uint64_t seed = 1; seed <= 3; seed++)
        checked += check_against_enum("input c=1 h=1 w=2; flatten; dense out=5; relu; dense out=3", 2,
                           sizes, seed);
    ck_assert_int_gt(checked, 10);   /* finite minima compared */
}
END_TEST

START_TEST(test_three_layer_enum)
{
    static const int sizes[] = {3, 4, 3, 3};
    int checked = 0;
    for (uint64_t seed = 1; seed <= 3; seed++)
        checked += check_against_enum("input c=1 h=1 w=3; flatten; dense out=4; relu; dense out=3; relu; "
                           "dense out=3", 3, sizes, seed);
    ck_assert_int_gt(checked, 10);
}
END_TEST

/* ---- linear models: the closed form ------------------------------------------------ */

/* min ||delta|| with g . delta >= f inside the box [0, 1] (each coordinate moves towards
 * sign(g_i) by at most its room): Linf by bisection on the piecewise-linear reach, L1 by
 * coordinates in order of decreasing |g_i| (a fractional knapsack). */
static double plane_min(const double *g, double f, const float *x, int d, foolc_norm norm)
{
    double a[64], cap[64], reach = 0;
    if (f <= 0) return 0;
    for (int i = 0; i < d; i++) {
        a[i] = fabs(g[i]);
        cap[i] = g[i] > 0 ? 1.0 - x[i] : g[i] < 0 ? x[i] : 0;
        reach += a[i] * cap[i];
    }
    if (reach < f) return INFINITY;
    if (norm == FOOLC_L1) {
        int used[64] = {0};
        double dist = 0, left = f;
        for (;;) {
            int b = -1;
            for (int i = 0; i < d; i++)
                if (!used[i] && cap[i] > 0 && (b < 0 || a[i] > a[b])) b = i;
            used[b] = 1;
            if (a[b] * cap[b] >= left) return dist + left / a[b];
            dist += cap[b];
            left -= a[b] * cap[b];
        }
    }
    double lo = 0, hi = 1;
    for (int it = 0; it < 200; it++) {
        double t = 0.5 * (lo + hi), gain = 0;
        for (int i = 0; i < d; i++) gain += a[i] * fmin(t, cap[i]);
        if (gain >= f) hi = t;
        else lo = t;
    }
    return hi;
}

START_TEST(test_linear_closed_form)
{
    const int d = 8, K = 4;
    foolc_net *net = mknet("input c=1 h=1 w=8; flatten; dense out=4", 11, 4.0);
    float p[8 * 4 + 4];
    ck_ok(foolc_net_get_params(net, p));
    int box_active = 0, box_inactive = 0;
    for (int s = 0; s < 12; s++) {
        float x[8], xa[8];
        /* half the samples near the box's faces, where the box binds */
        for (int i = 0; i < d; i++)
            x[i] = (float)(s % 2 ? 0.5 + 0.1 * (urand() - 0.5) : (urand() < 0.5 ? 0.02 : 0.98));
        int32_t y = predict(net, x);
        double z[4];
        for (int j = 0; j < K; j++) {
            z[j] = p[32 + j];
            for (int i = 0; i < d; i++) z[j] += (double)p[j * d + i] * x[i];
        }
        for (int nrm = 0; nrm < 2; nrm++) {
            foolc_norm norm = nrm ? FOOLC_L1 : FOOLC_LINF;
            double want = INFINITY, unboxed = INFINITY;
            for (int j = 0; j < K; j++) {
                if (j == y) continue;
                double g[8], gn = 0;
                for (int i = 0; i < d; i++) {
                    g[i] = (double)p[j * d + i] - p[y * d + i];
                    gn = norm == FOOLC_L1 ? fmax(gn, fabs(g[i])) : gn + fabs(g[i]);
                }
                want = fmin(want, plane_min(g, z[y] - z[j], x, d, norm));
                unboxed = fmin(unboxed, (z[y] - z[j]) / gn);   /* dual norm */
            }
            if (want > unboxed * (1 + 1e-6)) box_active++;
            else box_inactive++;
            foolc__exact_opts o = opts(norm, FOOLC__EXACT_PER_CLASS);
            foolc__exact_out out;
            ck_ok(foolc__exact_sample(net, x, y, -1, &o, &out, xa));
            ck_assert(out.solved);
            double tol = 1e-5 * fmax(1, want);
            ck_assert_msg(fabs(out.lower - want) <= tol && out.upper <= want + 2 * tol,
                          "linear sample %d %s: exact [%.9g, %.9g], closed form %.9g", s,
                          foolc_norm_name(norm), out.lower, out.upper, want);
        }
    }
    ck_assert_int_gt(box_active, 0);
    ck_assert_int_gt(box_inactive, 0);
    foolc_net_free(net);
}
END_TEST

/* ---- against the attacks ------------------------------------------------------------ */

static void check_attacks(const char *arch, uint64_t seed, double scale)
{
    static const char *atk[] = {"fmn-linf", "fab-linf", "pgd-linf", "fmn-l1", "fab-l1"};
    foolc_net *net = mknet(arch, seed, scale);
    foolc_shape in = foolc_net_input(net);
    const int N = 3;
    const size_t d = (size_t)in.c * in.h * in.w;
    float *x = malloc(N * d * sizeof *x), *xa = malloc(N * d * sizeof *xa);
    int32_t y[3];
    for (size_t i = 0; i < N * d; i++) x[i] = (float)urand();
    for (int s = 0; s < N; s++) y[s] = predict(net, x + s * d);
    foolc_oracle orc;
    ck_ok(foolc_net_oracle(net, N, &orc));
    foolc_model *m;
    ck_ok(foolc_model_new(&orc, &m));
    /* the lower end, solved or not, is below every attack's distance */
    double ex[2][3];
    int solved = 0;
    for (int nrm = 0; nrm < 2; nrm++)
        for (int s = 0; s < N; s++) {
            foolc__exact_opts o = opts(nrm ? FOOLC_L1 : FOOLC_LINF, FOOLC__EXACT_PER_CLASS);
            o.rtol = 1e-4;
            o.time_limit = 3;
            foolc__exact_out out;
            ck_ok(foolc__exact_sample(net, x + s * d, y[s], -1, &o, &out, NULL));
            ck_assert(out.lower <= out.upper);
            solved += out.solved && isfinite(out.upper);
            ex[nrm][s] = out.lower;
        }
    ck_assert_msg(solved > 0, "%s: no sample solved with a finite minimum", arch);
    /* IBP's and CROWN's certified radii are below the exact minimum; foolc_certify with
     * method EXACT gives the same interval */
    for (int nrm = 0; nrm < 2; nrm++)
        for (int meth = 0; meth < 3; meth++) {
            foolc_certify_opts co;
            foolc_certify_defaults(&co);
            co.method = meth == 0 ? FOOLC_CERTIFY_IBP : meth == 1 ? FOOLC_CERTIFY_CROWN
                                                                 : FOOLC_CERTIFY_EXACT;
            co.norm = nrm ? FOOLC_L1 : FOOLC_LINF;
            co.rtol = 1e-4;
            co.time_limit = 3;
            double rad[3], up[3];
            foolc_status st = foolc_certify(net, x, y, NULL, N, &co, rad, up);
            ck_assert_msg(st == FOOLC_OK || st == FOOLC_NOT_FOUND, "%s", foolc_errmsg());
            for (int k = 0; k < N; k++) {
                ck_assert_msg(rad[k] <= ex[nrm][k] * (1 + 2e-4) + 1e-6 || meth == 2,
                              "%s %s sample %d: certified %.8g above the exact minimum %.8g",
                              arch, foolc_certify_method_name(co.method), k, rad[k],
                              ex[nrm][k]);
                if (meth == 2) ck_assert(rad[k] <= up[k]);
            }
        }
    int compared = 0;
    for (size_t a = 0; a < sizeof atk / sizeof *atk; a++) {
        foolc_attack *at;
        ck_ok(foolc_attack_new(atk[a], &at));
        foolc_norm norm;
        ck_ok(foolc_attack_describe(atk[a], &norm, NULL, NULL, NULL));
        float dist[3];
        uint8_t ok[3];
        foolc_result r = {xa, dist, ok, NULL};
        foolc_shape s = {N, in.c, in.h, in.w};
        foolc_status st = foolc_attack_run(at, m, s, x, y, NULL, 3, &r);
        ck_assert_msg(st == FOOLC_OK || st == FOOLC_NOT_FOUND, "%s: %s", atk[a], foolc_errmsg());
        for (int k = 0; k < N; k++) {
            if (!ok[k]) continue;
            double e = ex[norm == FOOLC_L1][k];
            ck_assert_msg(dist[k] >= e * (1 - 1e-4) - 1e-6,
                          "%s on %s sample %d: %.8g below the exact minimum %.8g", atk[a],
                          arch, k, dist[k], e);
            compared++;
        }
        foolc_attack_free(at);
    }
    ck_assert_int_gt(compared, 0);
    foolc_model_free(m);
    foolc_net_free(net);
    free(x);
    free(xa);
}

START_TEST(test_attacks_not_below_dense)
{
    check_attacks("input c=1 h=4 w=4; flatten; dense out=10; relu; dense out=8; relu; "
                  "dense out=4", 5, 2.0);
}
END_TEST

START_TEST(test_attacks_not_below_conv)
{
    check_attacks("input c=1 h=5 w=5; conv2d out=3 k=3 p=1; batchnorm; relu; avgpool2d k=2; "
                  "conv2d out=4 k=2 s=1; relu; flatten; dense out=4; softmax", 2, 3.0);
}
END_TEST

/* ---- the time limit ----------------------------------------------------------------- */

START_TEST(test_time_limit_interval)
{
    foolc_net *net = mknet("input c=1 h=6 w=6; flatten; dense out=12; relu; dense out=12; "
                           "relu; dense out=10", 8, 1.0);
    const size_t d = 36;
    float x[36], xa[36];
    int hit = 0;
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < d; i++) x[i] = (float)urand();
        int32_t y = predict(net, x);
        for (int nrm = 0; nrm < 2; nrm++) {
            foolc_norm norm = nrm ? FOOLC_L1 : FOOLC_LINF;
            foolc__exact_opts o = opts(norm, FOOLC__EXACT_PER_CLASS);
            o.time_limit = 0.005;
            foolc__exact_out out, full;
            ck_ok(foolc__exact_sample(net, x, y, -1, &o, &out, xa));
            ck_assert(out.seconds < 2);
            ck_assert(out.lower >= 0 && out.lower <= out.upper);
            if (isfinite(out.upper)) {
                ck_assert(predict(net, xa) != y);
                ck_assert_double_eq_tol(foolc_distance(norm, x, xa, d), out.upper, 1e-6);
            }
            hit += !out.solved;
            /* a longer solve's interval meets the limited one */
            o.time_limit = 3;
            ck_ok(foolc__exact_sample(net, x, y, -1, &o, &full, NULL));
            ck_assert_msg(fmax(full.lower, out.lower) <=
                              fmin(full.upper, out.upper) * (1 + 1e-5) + 1e-7,
                          "limited [%g, %g] full [%g, %g]", out.lower, out.upper,
                          full.lower, full.upper);
        }
    }
    ck_assert_msg(hit > 0, "the 5 ms limit never hit");
    foolc_net_free(net);
}
END_TEST

/* ---- refusals ----------------------------------------------------------------------- */

START_TEST(test_refusals)
{
    float x[16] = {0};
    foolc__exact_out out;
    foolc__exact_opts o = opts(FOOLC_LINF, FOOLC__EXACT_PER_CLASS);
    foolc_net *mp = mknet("input c=1 h=4 w=4; maxpool2d k=2; flatten; dense out=3", 1, 1);
    ck_status(foolc__exact_sample(mp, x, 0, -1, &o, &out, NULL), FOOLC_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "maxpool2d"));
    foolc_net *net = mknet("input c=1 h=4 w=4; flatten; dense out=3", 1, 1);
    o.norm = FOOLC_L2;
    ck_status(foolc__exact_sample(net, x, 0, -1, &o, &out, NULL), FOOLC_E_UNSUPPORTED);
    o.norm = FOOLC_LINF;
    ck_status(foolc__exact_sample(net, x, 3, -1, &o, &out, NULL), FOOLC_E_INVALID);
    o.time_limit = 0;
    ck_status(foolc__exact_sample(net, x, 0, -1, &o, &out, NULL), FOOLC_E_INVALID);
    /* a sample already adversarial is at distance 0 */
    o.time_limit = 5;
    int32_t y = predict(net, x);
    ck_ok(foolc__exact_sample(net, x, (y + 1) % 3, -1, &o, &out, NULL));
    ck_assert(out.solved && out.lower == 0 && out.upper == 0);
    foolc_net_free(mp);
    foolc_net_free(net);
}
END_TEST

/* Every allocation failing in turn: FOOLC_E_NOMEM (or a result), never a crash; then the
 * same answer as without failures. */
START_TEST(test_alloc_failures)
{
    foolc_net *net = mknet_uniform("input c=1 h=1 w=3; flatten; dense out=4; relu; dense out=3");
    float x[3] = {0.1f, -0.2f, 0.3f};
    int32_t y = predict(net, x);
    for (int nrm = 0; nrm < 2; nrm++) {
        foolc__exact_opts o = opts(nrm ? FOOLC_L1 : FOOLC_LINF, FOOLC__EXACT_PER_CLASS);
        o.lo = -1;
        foolc__exact_out want, got;
        ck_ok(foolc__exact_sample(net, x, y, -1, &o, &want, NULL));
        int ok = 0;
        for (uint64_t n = 1; n < 100000 && !ok; n++) {
            foolc__alloc_fail_at(n);
            foolc_status st = foolc__exact_sample(net, x, y, -1, &o, &got, NULL);
            foolc__alloc_fail_at(0);
            ck_assert_msg(st == FOOLC_OK || st == FOOLC_E_NOMEM, "allocation %d: %s", (int)n,
                          foolc_errmsg());
            if (st == FOOLC_OK) {
                ok = 1;
                ck_assert_double_eq_tol(got.lower, want.lower, 1e-9 + 1e-6 * want.lower);
            }
        }
        ck_assert(ok);
    }
    foolc_net_free(net);
}
END_TEST

Suite *foolc_suite_certify_exact(void);
Suite *foolc_suite_certify_exact(void)
{
    Suite *s = suite_create("certify_exact");
    TCase *tc = tcase_create("exact");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_two_layer_enum);
    tcase_add_test(tc, test_three_layer_enum);
    tcase_add_test(tc, test_linear_closed_form);
    tcase_add_test(tc, test_attacks_not_below_dense);
    tcase_add_test(tc, test_attacks_not_below_conv);
    tcase_add_test(tc, test_time_limit_interval);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}
