/* Certified radii (foolc_certify, IBP and CROWN): exact on linear models against closed-form
 * minima (box inactive and active), sound on small ReLU nets against dense sampling inside
 * the certified ball and against every registered attack, the same bounds for a conv,
 * average pool or batchnorm layer as for its dense equivalent, and the error paths. */
#include "testutil.h"
#include "linear.h"

#include <math.h>

/* ---- helpers ------------------------------------------------------------------------ */

/* Deterministic weights in [-scale, scale) for every parameter of net. */
static void set_random(foolc_net *net, double scale, uint64_t seed)
{
    int64_t P = foolc_net_param_count(net);
    float *p = malloc((size_t)P * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (int64_t i = 0; i < P; i++) p[i] = (float)(scale * lin_hash(seed * 1000003 + (uint64_t)i));
    ck_ok(foolc_net_set_params(net, p));
    free(p);
}

static int32_t argmax_of(foolc_net *net, const float *x)
{
    float z[16];
    int32_t k = foolc_net_classes(net);
    ck_assert_int_le(k, 16);
    ck_ok(foolc_net_forward(net, x, 1, z));
    int32_t b = 0;
    for (int32_t j = 1; j < k; j++)
        if (z[j] > z[b]) b = j;
    return b;
}

/* Is x adversarial for label (misclassification; a tie counts)? */
static int is_adv(foolc_net *net, const float *x, int32_t label)
{
    float z[16];
    int32_t k = foolc_net_classes(net);
    ck_ok(foolc_net_forward(net, x, 1, z));
    for (int32_t j = 0; j < k; j++)
        if (j != label && z[j] >= z[label]) return 1;
    return 0;
}

static double certify1(foolc_net *net, const float *x, int32_t label, foolc_certify_method me,
                       foolc_norm norm, double lo, double hi)
{
    foolc_certify_opts o;
    foolc_certify_defaults(&o);
    o.method = me;
    o.norm = norm;
    o.lo = lo;
    o.hi = hi;
    double r = -1, u = 0;
    ck_ok(foolc_certify(net, x, &label, NULL, 1, &o, &r, &u));
    ck_assert(r >= 0);
    ck_assert(isinf(u));
    return r;
}

/* ---- linear models: CROWN is exact ---------------------------------------------------- */

#define LD 6
#define LK 3

/* Closed-form minimal distance from x to the half-space a . x' <= -m0 (m0 > 0: the margin
 * a . x + m0 ... written as margin(x') = m0 + a . (x' - x)) within the box [lo, hi]: the
 * cheapest decrease of the margin per unit of norm, coordinate by coordinate. */
static double min_to_halfspace(const double *a, double m0, const float *x, int d,
                               foolc_norm norm, double lo, double hi)
{
    /* cap[i]: how far coordinate i can move in the decreasing direction */
    double cap[LD], w[LD];
    for (int i = 0; i < d; i++) {
        w[i] = fabs(a[i]);
        cap[i] = a[i] > 0 ? x[i] - lo : a[i] < 0 ? hi - x[i] : 0;
    }
    if (norm == FOOLC_LINF) {
        /* decrease(r) = sum w_i min(r, cap_i): piecewise linear, solve decrease = m0 */
        for (double r = 0;;) {
            double slope = 0, next = INFINITY, dec = 0;
            for (int i = 0; i < d; i++) {
                dec += w[i] * fmin(r, cap[i]);
                if (cap[i] > r && w[i] > 0) {
                    slope += w[i];
                    if (cap[i] < next) next = cap[i];
                }
            }
            if (slope == 0) return INFINITY;
            double need = (m0 - dec) / slope;
            if (r + need <= next) return r + need;
            r = next;
        }
    }
    if (norm == FOOLC_L1) {
        /* spend on the largest weights first */
        int used[LD] = { 0 };
        double dec = 0, r = 0;
        for (;;) {
            int b = -1;
            for (int i = 0; i < d; i++)
                if (!used[i] && w[i] > 0 && cap[i] > 0 && (b < 0 || w[i] > w[b])) b = i;
            if (b < 0) return INFINITY;
            used[b] = 1;
            if (dec + w[b] * cap[b] >= m0) return r + (m0 - dec) / w[b];
            dec += w[b] * cap[b];
            r += cap[b];
        }
    }
    /* L2: delta_i = min(t w_i, cap_i), t by bisection so that sum w_i delta_i = m0 */
    double tmax = 1;
    double full = 0;
    for (int i = 0; i < d; i++) full += w[i] * cap[i];
    if (full < m0) return INFINITY;
    for (;;) {
        double s = 0;
        for (int i = 0; i < d; i++) s += w[i] * fmin(tmax * w[i], cap[i]);
        if (s >= m0) break;
        tmax *= 2;
    }
    double t0 = 0, t1 = tmax;
    for (int it = 0; it < 200; it++) {
        double t = 0.5 * (t0 + t1), s = 0;
        for (int i = 0; i < d; i++) s += w[i] * fmin(t * w[i], cap[i]);
        if (s >= m0) t1 = t;
        else t0 = t;
    }
    double n2 = 0;
    for (int i = 0; i < d; i++) {
        double dl = fmin(t1 * w[i], cap[i]);
        n2 += dl * dl;
    }
    return sqrt(n2);
}

/* The true minimal misclassification distance of the linear net from x. */
static double linear_min(const float *p, const float *x, int32_t label, foolc_norm norm,
                         double lo, double hi)
{
    const float *W = p, *b = p + LK * LD;
    double best = INFINITY;
    for (int j = 0; j < LK; j++) {
        if (j == label) continue;
        double a[LD], m0 = (double)b[label] - b[j];
        for (int i = 0; i < LD; i++) {
            a[i] = (double)W[label * LD + i] - W[j * LD + i];
            m0 += a[i] * x[i];
        }
        double r = min_to_halfspace(a, m0, x, LD, norm, lo, hi);
        if (r < best) best = r;
    }
    return best;
}

START_TEST(test_linear_exact)
{
    foolc_net *net;
    ck_ok(foolc_net_new("input c=6 h=1 w=1; dense out=3", 1, &net));
    const foolc_norm norms[3] = { FOOLC_LINF, FOOLC_L2, FOOLC_L1 };
    int checked = 0;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        set_random(net, 1.0, seed);
        float p[LK * LD + LK];
        ck_ok(foolc_net_get_params(net, p));
        float x[LD];
        for (int i = 0; i < LD; i++) x[i] = (float)(0.5 + 0.45 * lin_hash(77 * seed + (uint64_t)i));
        int32_t label = argmax_of(net, x);
        for (int k = 0; k < 3; k++) {
            /* box inactive (wide) and the unit box, active for most samples */
            for (int box = 0; box < 2; box++) {
                double lo = box ? 0 : -1e3, hi = box ? 1 : 1e3;
                double truth = linear_min(p, x, label, norms[k], lo, hi);
                double r = certify1(net, x, label, FOOLC_CERTIFY_CROWN, norms[k], lo, hi);
                double ri = certify1(net, x, label, FOOLC_CERTIFY_IBP, norms[k], lo, hi);
                if (isinf(truth)) {
                    ck_assert_msg(r > 0, "seed %d norm %d", (int)seed, k);
                    continue;
                }
                /* sound, and exact (to the bisection's rtol and the rounding margin) where
                 * the relaxation is exact: no box, or the Linf box */
                ck_assert_msg(r <= truth * (1 + 1e-9), "seed %d %s box %d: certified %g > "
                              "true %g", (int)seed, foolc_norm_name(norms[k]), box, r, truth);
                ck_assert(ri <= r * (1 + 2e-3));
                if (!box || norms[k] == FOOLC_LINF)
                    ck_assert_msg(r >= truth * (1 - 3e-3), "seed %d %s box %d: certified %g "
                                  "< true %g", (int)seed, foolc_norm_name(norms[k]), box, r,
                                  truth);
                checked++;
            }
        }
    }
    ck_assert_int_ge(checked, 30);
    foolc_net_free(net);
}
END_TEST

/* ---- small ReLU nets: sound by dense sampling, close to the truth in 2-d --------------- */

static const char *const relu_nets[] = {
    "input c=2 h=1 w=1; dense out=5; relu; dense out=3",
    "input c=2 h=1 w=1; dense out=6; relu; dense out=6; relu; dense out=3",
};

/* The smallest Linf distance to an adversarial on a grid of the unit square (an upper
 * bound on the true minimum, within the grid's spacing). */
static double grid_min(foolc_net *net, const float *x, int32_t label, foolc_norm norm, int G)
{
    double best = INFINITY;
    float *pts = malloc((size_t)G * G * 2 * sizeof *pts), *z = malloc((size_t)G * G * 3 * sizeof *z);
    ck_assert(pts && z);
    for (int a = 0; a < G; a++)
        for (int b = 0; b < G; b++) {
            pts[(a * G + b) * 2] = (float)a / (G - 1);
            pts[(a * G + b) * 2 + 1] = (float)b / (G - 1);
        }
    ck_ok(foolc_net_forward(net, pts, G * G, z));
    for (int i = 0; i < G * G; i++) {
        int adv = 0;
        for (int j = 0; j < 3; j++)
            if (j != label && z[i * 3 + j] >= z[i * 3 + label]) adv = 1;
        if (!adv) continue;
        double d0 = fabs(pts[2 * i] - x[0]), d1 = fabs(pts[2 * i + 1] - x[1]);
        double d = norm == FOOLC_LINF ? fmax(d0, d1) : norm == FOOLC_L2 ? hypot(d0, d1) : d0 + d1;
        if (d < best) best = d;
    }
    free(pts);
    free(z);
    return best;
}

START_TEST(test_relu_2d)
{
    foolc_net *net;
    ck_ok(foolc_net_new(relu_nets[_i], 3, &net));
    const foolc_norm norms[3] = { FOOLC_LINF, FOOLC_L2, FOOLC_L1 };
    const int G = 401;
    int close = 0, cases = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        set_random(net, 1.5, 100 * seed + (uint64_t)_i);
        float x[2] = { (float)(0.5 + 0.3 * lin_hash(seed * 7)), (float)(0.5 + 0.3 * lin_hash(seed * 7 + 1)) };
        int32_t label = argmax_of(net, x);
        for (int k = 0; k < 3; k++) {
            double truth = grid_min(net, x, label, norms[k], G);
            double rc = certify1(net, x, label, FOOLC_CERTIFY_CROWN, norms[k], 0, 1);
            double ri = certify1(net, x, label, FOOLC_CERTIFY_IBP, norms[k], 0, 1);
            if (isinf(truth)) continue;
            /* the grid's minimum is at most a grid step above the truth */
            ck_assert_msg(rc <= truth + 1e-9, "crown %g > grid %g", rc, truth);
            ck_assert_msg(ri <= truth + 1e-9, "ibp %g > grid %g", ri, truth);
            /* sound: nothing adversarial in the certified ball (on the grid and on its
             * boundary) */
            for (int t = 0; t < 2000; t++) {
                double ang = 6.283185307179586 * t / 2000.0, c = cos(ang), s = sin(ang);
                double scale = norms[k] == FOOLC_LINF ? 1 / fmax(fabs(c), fabs(s))
                             : norms[k] == FOOLC_L2 ? 1 : 1 / (fabs(c) + fabs(s));
                for (int f = 1; f <= 4; f++) {
                    float p[2] = { (float)(x[0] + rc * f / 4 * scale * c),
                                   (float)(x[1] + rc * f / 4 * scale * s) };
                    if (p[0] < 0 || p[0] > 1 || p[1] < 0 || p[1] > 1) continue;
                    ck_assert_msg(!is_adv(net, p, label), "adversarial inside the certified "
                                  "ball: r %g, point at %g", rc, rc * f / 4);
                }
            }
            cases++;
            if (rc >= truth / 3) close++;
        }
    }
    ck_assert_int_ge(cases, 6);
    /* tiny nets: CROWN within a factor 3 of the truth in most cases */
    ck_assert_msg(close * 3 >= cases * 2, "close in %d of %d", close, cases);
    foolc_net_free(net);
}
END_TEST

/* Random points inside the certified ball ∩ box of an 8-d net with conv, pooling and
 * batchnorm layers: vertices of the Linf ball, points on the L2 sphere, L1 ball corners. */
START_TEST(test_sound_sampling)
{
    const char *arch = _i == 0
        ? "input c=8 h=1 w=1; dense out=10; relu; dense out=10; relu; dense out=4"
        : "input c=2 h=4 w=4; conv2d out=3 k=3 s=1 p=1; batchnorm; relu; maxpool2d k=2 s=2 p=0; "
          "conv2d out=4 k=2 s=1 p=0; relu; avgpool2d k=1 s=1 p=0; flatten; dense out=4; softmax";
    foolc_net *net;
    ck_ok(foolc_net_new(arch, 5, &net));
    set_random(net, 0.8, 41 + (uint64_t)_i);
    foolc_shape in = foolc_net_input(net);
    const int d = in.c * in.h * in.w;
    const foolc_norm norms[3] = { FOOLC_LINF, FOOLC_L2, FOOLC_L1 };
    float *x = malloc((size_t)d * sizeof *x), *p = malloc((size_t)d * sizeof *p);
    ck_assert(x && p);
    int positive = 0;
    for (uint64_t s = 0; s < 4; s++) {
        for (int i = 0; i < d; i++) x[i] = (float)(0.5 + 0.4 * lin_hash(900 + s * 97 + (uint64_t)i));
        int32_t label = argmax_of(net, x);
        for (int k = 0; k < 3; k++)
            for (int me = 0; me < 2; me++) {
                double r = certify1(net, x, label, (foolc_certify_method)me, norms[k], 0, 1);
                ck_assert(isfinite(r));
                positive += r > 0;
                for (int t = 0; t < 3000; t++) {
                    uint64_t key = 1u << 20 | (uint64_t)t << 8 | s << 4 | (uint64_t)k << 2 | (uint64_t)me;
                    double n2 = 0, n1 = 0;
                    for (int i = 0; i < d; i++) {
                        double v = lin_hash(key * 131 + (uint64_t)i);
                        if (norms[k] == FOOLC_LINF) v = v < 0 ? -1 : 1;
                        else if (norms[k] == FOOLC_L1) v = (i == (int)(t % d)) ? (v < 0 ? -1 : 1) : (t % 3 ? 0 : v);
                        p[i] = (float)v;
                        n2 += v * v;
                        n1 += fabs(v);
                    }
                    double sc = norms[k] == FOOLC_LINF ? 1 : norms[k] == FOOLC_L2 ? 1 / sqrt(n2) : 1 / n1;
                    double f = t % 4 == 3 ? 0.5 : 1.0;
                    for (int i = 0; i < d; i++) {
                        double v = x[i] + r * f * sc * p[i];
                        p[i] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);  /* inside ball ∩ box */
                    }
                    ck_assert_msg(!is_adv(net, p, label), "%s %s: adversarial inside the "
                                  "certified ball of radius %g", foolc_norm_name(norms[k]),
                                  me ? "crown" : "ibp", r);
                }
            }
    }
    ck_assert_int_ge(positive, 12);
    free(x);
    free(p);
    foolc_net_free(net);
}
END_TEST

/* ---- every registered attack stays above the certified radius -------------------------- */

#define AN 4
#define AD 8

START_TEST(test_attacks_above_bound)
{
    const char *name = foolc_attack_name(_i);
    foolc_norm norm;
    unsigned needs;
    ck_ok(foolc_attack_describe(name, &norm, &needs, NULL, NULL));
    if (norm != FOOLC_L1 && norm != FOOLC_L2 && norm != FOOLC_LINF) return;
    foolc_net *net;
    ck_ok(foolc_net_new("input c=8 h=1 w=1; dense out=8; relu; dense out=8; relu; dense out=3",
                        9, &net));
    set_random(net, 1.0, 5);
    float x[AN * AD], xa[AN * AD], dist[AN];
    int32_t y[AN];
    uint8_t ok[AN];
    for (int i = 0; i < AN * AD; i++) x[i] = (float)(0.5 + 0.4 * lin_hash(300 + (uint64_t)i));
    for (int i = 0; i < AN; i++) y[i] = argmax_of(net, x + i * AD);
    double rad[AN];
    foolc_certify_opts o;
    foolc_certify_defaults(&o);
    o.norm = norm;
    ck_ok(foolc_certify(net, x, y, NULL, AN, &o, rad, NULL));
    foolc_oracle orc;
    foolc_model *m;
    ck_ok(foolc_net_oracle(net, 16, &orc));
    ck_ok(foolc_model_new(&orc, &m));
    foolc_attack *a;
    ck_ok(foolc_attack_new(name, &a));
    foolc_result r = { xa, dist, ok, NULL };
    foolc_shape s = { AN, AD, 1, 1 };
    foolc_status st = foolc_attack_run(a, m, s, x, y, NULL, 3, &r);
    ck_assert_msg(st >= 0 || st == FOOLC_E_UNSUPPORTED, "%s: %s", name, foolc_errmsg());
    for (int i = 0; st >= 0 && i < AN; i++)
        if (ok[i])
            ck_assert_msg(dist[i] >= rad[i] * (1 - 1e-5) - 1e-6, "%s: sample %d found %g below "
                          "the certified radius %g", name, i, (double)dist[i], rad[i]);
    foolc_attack_free(a);
    foolc_model_free(m);
    foolc_net_free(net);
}
END_TEST

/* ---- conv, pooling and batchnorm against their dense equivalents ----------------------- */

/* Radii of net a and net b (same input size d) for every norm and method, equal; IBP
 * in L2 and L1 only when ibp_all (its ball bound reaches through one first affine layer,
 * dense or conv, not through a pooling and a batchnorm in a row). */
static void same_radii(foolc_net *a, foolc_net *b, int d, int ibp_all)
{
    const foolc_norm norms[3] = { FOOLC_LINF, FOOLC_L2, FOOLC_L1 };
    float x[64];
    ck_assert_int_le(d, 64);
    int positive = 0;
    for (uint64_t s = 0; s < 3; s++) {
        for (int i = 0; i < d; i++) x[i] = (float)(0.5 + 0.4 * lin_hash(50 + 31 * s + (uint64_t)i));
        int32_t la = argmax_of(a, x);
        ck_assert_int_eq(la, argmax_of(b, x));
        for (int k = 0; k < 3; k++)
            for (int me = 0; me < 2; me++) {
                if (!me && !ibp_all && norms[k] != FOOLC_LINF) continue;
                double ra = certify1(a, x, la, (foolc_certify_method)me, norms[k], 0, 1);
                double rb = certify1(b, x, la, (foolc_certify_method)me, norms[k], 0, 1);
                ck_assert_msg(fabs(ra - rb) <= 3e-3 * fmax(ra, rb) + 1e-9, "%s %s: %g vs %g",
                              foolc_norm_name(norms[k]), me ? "crown" : "ibp", ra, rb);
                positive += ra > 0;
            }
    }
    ck_assert_int_ge(positive, 6);
}

START_TEST(test_conv_as_dense)
{
    /* conv2d 1x4x4 -> 2x4x4 (k=3, p=1), relu, flatten, dense 3; and the same written out */
    foolc_net *a, *b;
    ck_ok(foolc_net_new("input c=1 h=4 w=4; conv2d out=2 k=3 s=1 p=1; relu; flatten; dense out=3",
                        1, &a));
    ck_ok(foolc_net_new("input c=16 h=1 w=1; dense out=32; relu; dense out=3", 1, &b));
    set_random(a, 0.7, 12);
    float pa[18 + 2 + 96 + 3], pb[512 + 32 + 96 + 3];
    ck_assert_int_eq(foolc_net_param_count(a), (int64_t)(sizeof pa / sizeof *pa));
    ck_assert_int_eq(foolc_net_param_count(b), (int64_t)(sizeof pb / sizeof *pb));
    ck_ok(foolc_net_get_params(a, pa));
    memset(pb, 0, sizeof pb);
    for (int o = 0; o < 2; o++)
        for (int oh = 0; oh < 4; oh++)
            for (int ow = 0; ow < 4; ow++) {
                int row = (o * 4 + oh) * 4 + ow;
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++) {
                        int ih = oh - 1 + kh, iw = ow - 1 + kw;
                        if (ih < 0 || ih >= 4 || iw < 0 || iw >= 4) continue;
                        pb[row * 16 + ih * 4 + iw] = pa[(o * 3 + kh) * 3 + kw];
                    }
                pb[512 + row] = pa[18 + o];
            }
    memcpy(pb + 544, pa + 20, 99 * sizeof(float));
    ck_ok(foolc_net_set_params(b, pb));
    same_radii(a, b, 16, 1);
    foolc_net_free(a);
    foolc_net_free(b);
}
END_TEST

START_TEST(test_avgpool_bn_as_dense)
{
    /* dense 8 -> 2x2x2 ... kept flat: avgpool on a 1-channel 4x4 input (k=2 s=2), then
     * batchnorm on the pooled 1x2x2, relu, flatten, dense 3; and the same written out. */
    foolc_net *a, *b;
    ck_ok(foolc_net_new("input c=1 h=4 w=4; avgpool2d k=2 s=2 p=0; batchnorm; relu; flatten; "
                        "dense out=3", 1, &a));
    ck_ok(foolc_net_new("input c=16 h=1 w=1; dense out=4; relu; dense out=3", 1, &b));
    set_random(a, 1.5, 13);
    float pa[1 + 1 + 12 + 3], pb[64 + 4 + 12 + 3];
    ck_assert_int_eq(foolc_net_param_count(a), (int64_t)(sizeof pa / sizeof *pa));
    ck_ok(foolc_net_get_params(a, pa));
    /* batchnorm with running mean 0, var 1: y = x / sqrt(1 + eps) * w + b */
    const double s = pa[0] / sqrt(1.0 + 1e-5);
    memset(pb, 0, sizeof pb);
    for (int oh = 0; oh < 2; oh++)
        for (int ow = 0; ow < 2; ow++) {
            int row = oh * 2 + ow;
            for (int kh = 0; kh < 2; kh++)
                for (int kw = 0; kw < 2; kw++)
                    pb[row * 16 + (2 * oh + kh) * 4 + 2 * ow + kw] = (float)(s / 4);
            pb[64 + row] = pa[1];
        }
    memcpy(pb + 68, pa + 2, 15 * sizeof(float));
    ck_ok(foolc_net_set_params(b, pb));
    same_radii(a, b, 16, 0);
    foolc_net_free(a);
    foolc_net_free(b);
}
END_TEST

/* ---- targeted ------------------------------------------------------------------------- */

START_TEST(test_targeted)
{
    foolc_net *net;
    ck_ok(foolc_net_new("input c=6 h=1 w=1; dense out=3", 1, &net));
    set_random(net, 1.0, 3);
    float x[LD];
    for (int i = 0; i < LD; i++) x[i] = (float)(0.5 + 0.3 * lin_hash(5 + (uint64_t)i));
    int32_t label = argmax_of(net, x), t = (label + 1) % 3;
    foolc_certify_opts o;
    foolc_certify_defaults(&o);
    o.lo = -100;
    o.hi = 100;
    double ru, rt;
    ck_ok(foolc_certify(net, x, &label, NULL, 1, &o, &ru, NULL));
    ck_ok(foolc_certify(net, x, &label, &t, 1, &o, &rt, NULL));
    /* reaching one class is at least as far as leaving the label */
    ck_assert(rt >= ru * (1 - 2e-3));
    /* and no farther than making t beat the label alone (a lower bound is below it) */
    float p[LK * LD + LK];
    ck_ok(foolc_net_get_params(net, p));
    double a[LD], m0 = (double)p[LK * LD + label] - p[LK * LD + t];
    for (int i = 0; i < LD; i++) {
        a[i] = (double)p[label * LD + i] - p[t * LD + i];
        m0 += a[i] * x[i];
    }
    double n1 = 0;
    for (int i = 0; i < LD; i++) n1 += fabs(a[i]);
    ck_assert(rt <= m0 / n1 * (1 + 1e-9));
    /* a target equal to the prediction: adversarial already */
    ck_ok(foolc_certify(net, x, &label, &label, 1, &o, &rt, NULL));
    ck_assert(rt == 0);
    foolc_net_free(net);
}
END_TEST

/* ---- errors --------------------------------------------------------------------------- */

START_TEST(test_bad_input)
{
    foolc_net *net;
    ck_ok(foolc_net_new("input c=4 h=1 w=1; dense out=4; relu; dense out=3", 1, &net));
    float x[8] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f };
    int32_t y[2] = { 0, 1 }, bad_y[2] = { 0, 3 };
    double r[2], u[2];
    foolc_certify_opts o;
    foolc_certify_defaults(&o);
    ck_assert(o.method == FOOLC_CERTIFY_CROWN && o.norm == FOOLC_LINF && o.rtol == 1e-3);
    ck_status(foolc_certify(NULL, x, y, NULL, 2, &o, r, u), FOOLC_E_INVALID);
    ck_status(foolc_certify(net, NULL, y, NULL, 2, &o, r, u), FOOLC_E_INVALID);
    ck_status(foolc_certify(net, x, NULL, NULL, 2, &o, r, u), FOOLC_E_INVALID);
    ck_status(foolc_certify(net, x, y, NULL, 2, &o, NULL, u), FOOLC_E_INVALID);
    ck_status(foolc_certify(net, x, y, NULL, -1, &o, r, u), FOOLC_E_INVALID);
    ck_ok(foolc_certify(net, x, y, NULL, 0, &o, r, u));
    ck_status(foolc_certify(net, x, bad_y, NULL, 2, &o, r, u), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "sample 1"));
    ck_status(foolc_certify(net, x, y, bad_y, 2, &o, r, u), FOOLC_E_INVALID);
    /* outputs overlapping each other or the inputs */
    ck_status(foolc_certify(net, x, y, NULL, 2, &o, r, r), FOOLC_E_INVALID);
    ck_status(foolc_certify(net, x, y, NULL, 2, &o, (double *)(void *)x, u), FOOLC_E_INVALID);
    foolc_certify_opts b = o;
    b.method = FOOLC_CERTIFY_METHOD_COUNT;
    ck_status(foolc_certify(net, x, y, NULL, 2, &b, r, u), FOOLC_E_INVALID);
    b = o;
    b.norm = FOOLC_L0;
    ck_status(foolc_certify(net, x, y, NULL, 2, &b, r, u), FOOLC_E_INVALID);
    b = o;
    b.rtol = 0;
    ck_status(foolc_certify(net, x, y, NULL, 2, &b, r, u), FOOLC_E_INVALID);
    b = o;
    b.lo = 1;
    b.hi = 0;
    ck_status(foolc_certify(net, x, y, NULL, 2, &b, r, u), FOOLC_E_INVALID);
    b = o;
    b.lo = 0.5;
    ck_status(foolc_certify(net, x, y, NULL, 2, &b, r, u), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "outside the box"));
    ck_status(foolc_certify_sized(net, x, y, NULL, 2, &o, 8, r, u), FOOLC_E_VERSION);
    ck_status(foolc_certify_defaults_sized(&b, 4), FOOLC_E_VERSION);
    x[5] = NAN;
    ck_status(foolc_certify(net, x, y, NULL, 2, &o, r, u), FOOLC_E_INVALID);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "NaN"));
    x[5] = 0.6f;
    /* methods by name */
    foolc_certify_method me;
    ck_ok(foolc_certify_method_parse("CROWN", &me));
    ck_assert(me == FOOLC_CERTIFY_CROWN);
    ck_status(foolc_certify_method_parse("lp", &me), FOOLC_E_INVALID);
    ck_assert_str_eq(foolc_certify_method_name(FOOLC_CERTIFY_IBP), "ibp");
    ck_assert_ptr_null(foolc_certify_method_name(FOOLC_CERTIFY_METHOD_COUNT));
    /* a callback model cannot be certified; a net's oracle can */
    lin_model lm;
    lin_random(&lm, 4, 3, 0.5, 1);
    foolc_oracle lo = lin_oracle(&lm, 4, 0);
    ck_status(foolc_certify_oracle(&lo, x, y, NULL, 2, &o, r, u), FOOLC_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "not a built-in net"));
    foolc_oracle no;
    ck_ok(foolc_net_oracle(net, 4, &no));
    double r2[2];
    ck_ok(foolc_certify_oracle(&no, x, y, NULL, 2, &o, r2, NULL));
    ck_ok(foolc_certify(net, x, y, NULL, 2, &o, r, u));
    ck_assert(r[0] == r2[0] && r[1] == r2[1]);
    foolc_net_free(net);
    /* an unsupported layer is named; softmax only as the last layer */
    ck_ok(foolc_net_new("input c=4 h=1 w=1; dense out=4; softmax; dense out=3", 1, &net));
    ck_status(foolc_certify(net, x, y, NULL, 2, &o, r, u), FOOLC_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "softmax"));
    foolc_net_free(net);
    /* graph nets: not yet */
    ck_ok(foolc_net_new("input c=4 h=1 w=1; h = dense(x) out=4; r = relu(h); "
                        "logits = dense(r) out=3", 1, &net));
    ck_status(foolc_certify(net, x, y, NULL, 2, &o, r, u), FOOLC_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "graph"));
    ck_assert_ptr_nonnull(strstr(foolc_errmsg(), "dense"));
    foolc_net_free(net);
}
END_TEST

/* ---- the certify step of an evaluation ------------------------------------------------ */

START_TEST(test_eval_step)
{
    foolc_net *net;
    ck_ok(foolc_net_new("input c=8 h=1 w=1; dense out=8; relu; dense out=8; relu; dense out=3",
                        9, &net));
    set_random(net, 1.0, 5);
    float x[AN * AD];
    int32_t y[AN];
    for (int i = 0; i < AN * AD; i++) x[i] = (float)(0.5 + 0.4 * lin_hash(700 + (uint64_t)i));
    for (int i = 0; i < AN; i++) y[i] = argmax_of(net, x + i * AD);
    foolc_oracle orc;
    foolc_model *m;
    ck_ok(foolc_net_oracle(net, 16, &orc));
    ck_ok(foolc_model_new(&orc, &m));
    foolc_certify_opts co;
    foolc_certify_defaults(&co);
    ck_ok(foolc_certify_oracle(&orc, NULL, NULL, NULL, 0, &co, NULL, NULL));
    foolc_eval *ev;
    ck_ok(foolc_eval_new(m, NULL, &ev));
    ck_ok(foolc_eval_add_attack(ev, "fmn-linf"));
    ck_ok(foolc_eval_add_attack(ev, "ddn"));
    ck_ok(foolc_certify_eval_add(ev, &co));
    ck_ok(foolc_eval_set_samples(ev, x, y, NULL, AN));
    foolc_status st = foolc_eval_run(ev);
    ck_assert_msg(st >= 0, "%s", foolc_errmsg());
    ck_assert_int_eq(foolc_eval_steps(ev), 1);
    ck_assert_str_eq(foolc_eval_step_name(ev, 0), "certify");
    const double *v = foolc_eval_step_values(ev, 0);
    const float *best = foolc_eval_best(ev);
    int finite = 0;
    for (int i = 0; i < AN; i++) {
        ck_assert(foolc_eval_step_done(ev, 0)[i]);
        ck_assert(isnan(v[i * 3 + 2]));            /* no L1 attack: L1 not reported */
        for (int k = 0; k < 2; k++) {
            foolc_norm p = k ? FOOLC_L2 : FOOLC_LINF;
            double r = v[i * 3 + k], b = best[i * FOOLC_NORM_COUNT + p];
            ck_assert(r >= 0);
            if (isfinite(b)) ck_assert_msg(r <= b * (1 + 1e-5) + 1e-6, "%g > %g", r, b);
            /* the same radius as foolc_certify's on its own (within the bisection's rtol) */
            double alone;
            foolc_certify_opts o1 = co;
            o1.norm = p;
            ck_ok(foolc_certify(net, x + i * AD, &y[i], NULL, 1, &o1, &alone, NULL));
            ck_assert_msg(fabs(alone - r) <= 3e-3 * alone, "%g vs %g", alone, r);
            finite += r > 0;
        }
    }
    ck_assert_int_ge(finite, AN);
    foolc_eval_free(ev);
    /* a callback model: the step fails naming it */
    lin_model lm;
    lin_random(&lm, AD, 3, 0.5, 1);
    foolc_oracle lo = lin_oracle(&lm, 4, 0);
    ck_status(foolc_certify_oracle(&lo, NULL, NULL, NULL, 0, &co, NULL, NULL),
              FOOLC_E_UNSUPPORTED);
    ck_status(foolc_certify_eval_add(NULL, &co), FOOLC_E_INVALID);
    foolc_model_free(m);
    foolc_net_free(net);
}
END_TEST

Suite *foolc_suite_certify(void);
Suite *foolc_suite_certify(void)
{
    Suite *s = suite_create("certify");
    TCase *tc = tcase_create("bounds");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_linear_exact);
    tcase_add_loop_test(tc, test_relu_2d, 0, 2);
    tcase_add_loop_test(tc, test_sound_sampling, 0, 2);
    tcase_add_test(tc, test_conv_as_dense);
    tcase_add_test(tc, test_avgpool_bn_as_dense);
    tcase_add_test(tc, test_targeted);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_eval_step);
    suite_add_tcase(s, tc);
    TCase *ta = tcase_create("attacks");
    tcase_set_timeout(ta, 600);
    tcase_add_loop_test(ta, test_attacks_above_bound, 0, foolc_attack_count());
    suite_add_tcase(s, ta);
    return s;
}
