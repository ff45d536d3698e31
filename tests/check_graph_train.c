/* Check suite of training with batch statistics (lib/nn/graph_train.c, docs/net.md,
 * "Training"): batchnorm's training-mode forward and backward against a double reference
 * and its central finite differences (alone, and inside a net through the whole training
 * pass, both backends); the running statistics after training steps against the formula;
 * the training logits against inference with the running statistics set to the batch's;
 * sequential nets with batchnorm training exactly as the same chain written as a graph;
 * determinism; tiny training runs whose loss falls and whose inference (running statistics)
 * is accurate; a minibatch of one image; NaN inputs. */
#include "testutil.h"

#include "internal.h"
#include "nn/graph.h"
#include "nn/graph_train.h"

#include <math.h>
#include <string.h>

static uint64_t g_rng = 0x2545f4914f6cdd1dULL;

static double urand(void)
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

static void fill(float *a, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * urand());
}

/* ---- batchnorm alone ----------------------------------------------------------------- */

/* Double reference of training-mode batchnorm: y from x (n images of c x hw). */
static void bn_ref(int32_t n, int32_t c, int32_t hw, const double *x, const double *w,
                   const double *b, double eps, double *y)
{
    for (int32_t k = 0; k < c; k++) {
        double s = 0, q = 0, M = (double)n * hw;
        for (int32_t r = 0; r < n; r++)
            for (int32_t p = 0; p < hw; p++) s += x[((size_t)r * c + k) * hw + p];
        const double mean = s / M;
        for (int32_t r = 0; r < n; r++)
            for (int32_t p = 0; p < hw; p++) {
                double d = x[((size_t)r * c + k) * hw + p] - mean;
                q += d * d;
            }
        const double is = 1.0 / sqrt(q / M + eps);
        for (int32_t r = 0; r < n; r++)
            for (int32_t p = 0; p < hw; p++) {
                size_t j = ((size_t)r * c + k) * hw + p;
                y[j] = (x[j] - mean) * is * w[k] + b[k];
            }
    }
}

/* L = sum dy * y of the reference. */
static double bn_loss(int32_t n, int32_t c, int32_t hw, const double *x, const double *w,
                      const double *b, double eps, const double *dy, double *y)
{
    bn_ref(n, c, hw, x, w, b, eps, y);
    double l = 0;
    for (size_t j = 0; j < (size_t)n * c * hw; j++) l += dy[j] * y[j];
    return l;
}

static const struct { int32_t n, c, h, w; } k_bn_shapes[] = {
    { 3, 2, 3, 2 }, { 5, 4, 1, 1 }, { 1, 3, 4, 4 }, { 8, 1, 2, 3 },
};

/* Forward against the double reference; dx, dweight, dbias against central differences
 * of the reference (added into what the buffers held), both forms. */
START_TEST(test_bn_fd)
{
    const int32_t n = k_bn_shapes[_i].n, c = k_bn_shapes[_i].c;
    const int32_t H = k_bn_shapes[_i].h, W = k_bn_shapes[_i].w, hw = H * W;
    const size_t len = (size_t)n * c * hw;
    g_rng = 77 + (uint64_t)_i;
    float *x = malloc(len * sizeof *x), *y = malloc(len * sizeof *y), *dy = malloc(len * sizeof *dy);
    float *dx = malloc(len * sizeof *dx), *dx0 = malloc(len * sizeof *dx0);
    double *xd = malloc(len * sizeof *xd), *yd = malloc(len * sizeof *yd);
    double *dyd = malloc(len * sizeof *dyd), *tmp = malloc(len * sizeof *tmp);
    float wf[8], bf[8], dw[8], db[8];
    double wd[8], bd[8], bmean[8], bvar[8], binv[8];
    fill(x, len, -1.5, 2.5);
    fill(dy, len, -1, 1);
    fill(dx0, len, -0.1, 0.1);
    fill(wf, (size_t)c, 0.5, 1.5);
    fill(bf, (size_t)c, -0.5, 0.5);
    for (size_t j = 0; j < len; j++) xd[j] = x[j], dyd[j] = dy[j];
    for (int32_t k = 0; k < c; k++) wd[k] = wf[k], bd[k] = bf[k];
    nn_gnode nd;
    memset(&nd, 0, sizeof nd);
    nd.op = G_BN;
    nd.w = wf;
    nd.b = bf;
    nd.eps = 1e-3;
    nd.ns = c;
    const nn_dims in = { c, H, W };
    bn_ref(n, c, hw, xd, wd, bd, nd.eps, yd);
    for (int fast = 0; fast <= 1; fast++) {
        foolc__nn_bn_train_forward(&nd, in, fast, n, x, y, bmean, bvar, binv);
        for (size_t j = 0; j < len; j++)
            ck_assert_msg(fabs(y[j] - yd[j]) <= 2e-6 * (1 + fabs(yd[j])), "fast %d y[%zu] %g vs %g",
                          fast, j, (double)y[j], yd[j]);
        for (int32_t k = 0; k < c; k++) {
            double s = 0;
            for (int32_t r = 0; r < n; r++)
                for (int32_t p = 0; p < hw; p++) s += xd[((size_t)r * c + k) * hw + p];
            ck_assert(fabs(bmean[k] - s / ((double)n * hw)) <= 1e-12 * (1 + fabs(bmean[k])));
            ck_assert(bvar[k] >= 0 && fabs(binv[k] - 1 / sqrt(bvar[k] + nd.eps)) <= 1e-12 * binv[k]);
        }
        memcpy(dx, dx0, len * sizeof *dx);
        for (int32_t k = 0; k < c; k++) dw[k] = 0.25f, db[k] = -0.5f;
        foolc__nn_bn_train_backward(&nd, in, fast, n, x, dy, dx, dw, db, bmean, binv);
        const double h = 1e-5;
        for (size_t j = 0; j < len; j++) {
            const double keep = xd[j];
            xd[j] = keep + h;
            double lp = bn_loss(n, c, hw, xd, wd, bd, nd.eps, dyd, tmp);
            xd[j] = keep - h;
            double lm = bn_loss(n, c, hw, xd, wd, bd, nd.eps, dyd, tmp);
            xd[j] = keep;
            const double fd = (lp - lm) / (2 * h), got = (double)dx[j] - dx0[j];
            ck_assert_msg(fabs(got - fd) <= 2e-4 * (1 + fabs(fd)),
                          "shape %d fast %d dx[%zu] %g, differences %g", _i, fast, j, got, fd);
        }
        for (int32_t k = 0; k < c; k++) {
            const double kw = wd[k], kb = bd[k];
            wd[k] = kw + h;
            double lp = bn_loss(n, c, hw, xd, wd, bd, nd.eps, dyd, tmp);
            wd[k] = kw - h;
            double lm = bn_loss(n, c, hw, xd, wd, bd, nd.eps, dyd, tmp);
            wd[k] = kw;
            double fd = (lp - lm) / (2 * h);
            ck_assert_msg(fabs(dw[k] - 0.25 - fd) <= 1e-4 * (1 + fabs(fd)), "dweight[%d] %g vs %g",
                          (int)k, dw[k] - 0.25, fd);
            bd[k] = kb + h;
            lp = bn_loss(n, c, hw, xd, wd, bd, nd.eps, dyd, tmp);
            bd[k] = kb - h;
            lm = bn_loss(n, c, hw, xd, wd, bd, nd.eps, dyd, tmp);
            bd[k] = kb;
            fd = (lp - lm) / (2 * h);
            ck_assert_msg(fabs(db[k] + 0.5 - fd) <= 1e-4 * (1 + fabs(fd)), "dbias[%d] %g vs %g",
                          (int)k, db[k] + 0.5, fd);
        }
        /* Without dx, dweight or dbias: nothing else is touched. */
        foolc__nn_bn_train_backward(&nd, in, fast, n, x, dy, NULL, NULL, NULL, bmean, binv);
    }
    /* The input gradient sums to zero over each channel (the mean is subtracted). */
    for (int32_t k = 0; k < c && n * hw > 1; k++) {
        double s = 0, a = 0;
        for (int32_t r = 0; r < n; r++)
            for (int32_t p = 0; p < hw; p++) {
                size_t j = ((size_t)r * c + k) * hw + p;
                s += (double)dx[j] - dx0[j];
                a += fabs((double)dx[j] - dx0[j]);
            }
        ck_assert_msg(fabs(s) <= 1e-5 * (1 + a), "channel %d: sum %g", (int)k, s);
    }
    free(x), free(y), free(dy), free(dx), free(dx0), free(xd), free(yd), free(dyd), free(tmp);
}
END_TEST

/* ---- inside a net: the whole training pass ------------------------------------------- */

/* conv -> batchnorm (2-d) -> tanh -> flatten -> batchnorm (1-d) -> dense. */
static const char *const k_fd_net =
    "input c=2 h=4 w=4; a = conv2d(x) out=3 k=3 p=1; b = batchnorm(a) eps=0.001; r = tanh(b); "
    "f = flatten(r); fb = batchnorm(f) eps=0.01; logits = dense(fb) out=3";
enum { FD_N = 5, FD_K = 3 };

/* The net's loss sum(u * logits) in double with batch statistics, for flat parameters p. */
static double net_ref(const foolc_net *net, const double *p, const float *x, const double *u,
                      double *logits)
{
    const nn_graph *g = net->graph;
    const nn_gnode *A = &g->nodes[0], *B = &g->nodes[1], *FB = &g->nodes[4], *L = &g->nodes[5];
    double a[FD_N * 48], r[FD_N * 48], f[FD_N * 48];
    for (int s = 0; s < FD_N; s++)
        for (int o = 0; o < 3; o++)
            for (int oy = 0; oy < 4; oy++)
                for (int ox = 0; ox < 4; ox++) {
                    double acc = p[A->boff + o];
                    for (int ci = 0; ci < 2; ci++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = oy - 1 + ky, ix = ox - 1 + kx;
                                if (iy < 0 || iy >= 4 || ix < 0 || ix >= 4) continue;
                                acc += p[A->woff + ((o * 2 + ci) * 3 + ky) * 3 + kx] *
                                       x[((s * 2 + ci) * 4 + iy) * 4 + ix];
                            }
                    a[((s * 3 + o) * 4 + oy) * 4 + ox] = acc;
                }
    bn_ref(FD_N, 3, 16, a, p + B->woff, p + B->boff, B->eps, r);
    for (int j = 0; j < FD_N * 48; j++) r[j] = tanh(r[j]);
    bn_ref(FD_N, 48, 1, r, p + FB->woff, p + FB->boff, FB->eps, f);
    double l = 0;
    for (int s = 0; s < FD_N; s++)
        for (int k = 0; k < FD_K; k++) {
            double acc = p[L->boff + k];
            for (int j = 0; j < 48; j++) acc += p[L->woff + k * 48 + j] * f[s * 48 + j];
            logits[s * FD_K + k] = acc;
            l += u[s * FD_K + k] * acc;
        }
    return l;
}

static int seed_u(void *user, const float *logits, int32_t n, int32_t k, float *d)
{
    (void)logits;
    const double *u = user;
    for (int32_t j = 0; j < n * k; j++) d[j] = (float)u[j];
    return 0;
}

/* The pass's logits against the double reference; its parameter gradient against central
 * differences of the reference, every coordinate, both backends; the running statistics
 * untouched by a pass. */
START_TEST(test_pass_fd)
{
    foolc_net *net = NULL;
    ck_ok(foolc_net_new(k_fd_net, 4, &net));
    const int64_t P = foolc_net_param_count(net);
    g_rng = 1234;
    fill(net->params, (size_t)P, -0.6, 0.6);
    /* batchnorm weights away from 0 */
    for (int i = 1; i <= 4; i += 3) fill(net->graph->nodes[i].w, (size_t)net->graph->nodes[i].ns, 0.6, 1.4);
    net->pver++;
    float x[FD_N * 32];
    double u[FD_N * FD_K], lref[FD_N * FD_K], ltmp[FD_N * FD_K];
    fill(x, FD_N * 32, 0, 1);
    for (int j = 0; j < FD_N * FD_K; j++) u[j] = urand() * 2 - 1;
    double *p = malloc((size_t)P * sizeof *p);
    float *stats0 = malloc((size_t)net->n_stats * sizeof *stats0);
    memcpy(stats0, net->stats, (size_t)net->n_stats * sizeof *stats0);
    for (int64_t j = 0; j < P; j++) p[j] = net->params[j];
    net_ref(net, p, x, u, lref);
    for (int backend = 0; backend <= 1; backend++) {
        ck_ok(foolc_net_set_backend(net, backend ? FOOLC_BACKEND_REFERENCE : FOOLC_BACKEND_FAST));
        nn_gtrain *gt = NULL;
        ck_ok(foolc__nn_gtrain_new(net, 8, &gt));
        float *g = calloc((size_t)P, sizeof *g);
        ck_ok(foolc__nn_gtrain_pass(gt, x, FD_N, seed_u, u, g));
        const float *lg = foolc__nn_gtrain_logits(gt);
        for (int j = 0; j < FD_N * FD_K; j++)
            ck_assert_msg(fabs(lg[j] - lref[j]) <= 1e-5 * (1 + fabs(lref[j])),
                          "backend %d logit %d: %g vs %g", backend, j, (double)lg[j], lref[j]);
        const double h = 1e-5;
        for (int64_t j = 0; j < P; j++) {
            const double keep = p[j];
            p[j] = keep + h;
            double lp = net_ref(net, p, x, u, ltmp);
            p[j] = keep - h;
            double lm = net_ref(net, p, x, u, ltmp);
            p[j] = keep;
            double fd = (lp - lm) / (2 * h);
            ck_assert_msg(fabs(g[j] - fd) <= 2e-4 * (1 + fabs(fd)),
                          "backend %d: d params[%lld] %g, differences %g", backend, (long long)j,
                          (double)g[j], fd);
        }
        ck_assert(memcmp(stats0, net->stats, (size_t)net->n_stats * sizeof *stats0) == 0);
        /* A second pass gives the same bytes. */
        float *g2 = calloc((size_t)P, sizeof *g2);
        ck_ok(foolc__nn_gtrain_pass(gt, x, FD_N, seed_u, u, g2));
        ck_assert(memcmp(g, g2, (size_t)P * sizeof *g) == 0);
        foolc__nn_gtrain_free(gt);
        free(g), free(g2);
    }
    free(p), free(stats0);
    foolc_net_free(net);
}
END_TEST

/* ---- running statistics ------------------------------------------------------------- */

/* Batchnorm on the input itself, so its batch statistics are those of the data. */
static const char *const k_stat_net[] = {
    "input c=2 h=3 w=3; b = batchnorm(x); f = flatten(b); logits = dense(f) out=3",
    "input c=2 h=3 w=3; batchnorm; flatten; dense out=3",
};

static void stats_of(const float *x, int32_t n, int32_t c, int32_t hw, int32_t k, double *mean,
                     double *var)
{
    double s = 0, q = 0, M = (double)n * hw;
    for (int32_t r = 0; r < n; r++)
        for (int32_t p = 0; p < hw; p++) s += x[((size_t)r * c + k) * hw + p];
    *mean = s / M;
    for (int32_t r = 0; r < n; r++)
        for (int32_t p = 0; p < hw; p++) {
            double d = x[((size_t)r * c + k) * hw + p] - *mean;
            q += d * d;
        }
    *var = q / M;
}

/* One step over the whole set, then a second: running = 0.9 running + 0.1 batch (the
 * variance unbiased); saved and loaded with the model; inference with the running statistics
 * set to the batch's (biased) gives the training pass's logits. Graph and sequential. */
START_TEST(test_running_stats)
{
    const int32_t n = 20, c = 2, hw = 9;
    float x[20 * 18];
    int32_t y[20];
    g_rng = 55;
    fill(x, sizeof x / sizeof *x, 0, 1);
    for (int32_t i = 0; i < n; i++) {
        y[i] = i % 3;
        for (int32_t j = 0; j < hw; j++) x[((size_t)i * c + 1) * hw + j] = 3.0f * x[((size_t)i * c + 1) * hw + j] - 2.0f;
    }
    foolc_data tr = { .shape = { n, c, 3, 3 }, .x = x, .y = y, .n_classes = 3 };
    foolc_net *net = NULL;
    ck_ok(foolc_net_new(k_stat_net[_i], 3, &net));
    float *mean = net->layers[0].mean, *var = net->layers[0].var;
    foolc_train_opts o;
    foolc_train_defaults(&o);
    o.epochs = 1;
    o.batch = n;
    ck_ok(foolc_net_train(net, &tr, &o, NULL, NULL, NULL));
    double bm[2], bv[2];
    for (int32_t k = 0; k < c; k++) {
        stats_of(x, n, c, hw, k, &bm[k], &bv[k]);
        const double em = 0.1 * bm[k], ev = 0.9 + 0.1 * bv[k] * 180.0 / 179.0;
        ck_assert_msg(fabs(mean[k] - em) <= 1e-6 * (1 + fabs(em)), "mean[%d] %g vs %g", (int)k,
                      (double)mean[k], em);
        ck_assert_msg(fabs(var[k] - ev) <= 1e-6 * ev, "var[%d] %g vs %g", (int)k, (double)var[k], ev);
    }
    /* A second step (the order differs, the batch is the same set). */
    const float m1[2] = { mean[0], mean[1] }, v1[2] = { var[0], var[1] };
    o.seed = 9;
    ck_ok(foolc_net_train(net, &tr, &o, NULL, NULL, NULL));
    for (int32_t k = 0; k < c; k++) {
        const double em = 0.9 * m1[k] + 0.1 * bm[k], ev = 0.9 * v1[k] + 0.1 * bv[k] * 180.0 / 179.0;
        ck_assert(fabs(mean[k] - em) <= 1e-6 * (1 + fabs(em)));
        ck_assert(fabs(var[k] - ev) <= 1e-6 * ev);
    }
    /* Saved with the model. */
    char path[] = "/tmp/foolc_gtrain_XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    ck_ok(foolc_net_save(net, path));
    foolc_net *back = NULL;
    ck_ok(foolc_net_load(path, &back));
    unlink(path);
    ck_assert(back->n_stats == net->n_stats);
    ck_assert(memcmp(back->stats, net->stats, (size_t)net->n_stats * sizeof(float)) == 0);
    foolc_net_free(back);
    /* Inference with the batch's statistics = the training pass. */
    nn_gtrain *gt = NULL;
    ck_ok(foolc__nn_gtrain_new(net, n, &gt));
    double u[20 * 3];
    for (int j = 0; j < n * 3; j++) u[j] = urand() - 0.5;
    float *g = calloc((size_t)foolc_net_param_count(net), sizeof *g);
    ck_ok(foolc__nn_gtrain_pass(gt, x, n, seed_u, u, g));
    for (int32_t k = 0; k < c; k++) {
        mean[k] = (float)bm[k];
        var[k] = (float)bv[k];
    }
    net->pver++;
    float li[20 * 3];
    ck_ok(foolc_net_forward(net, x, n, li));
    const float *lt = foolc__nn_gtrain_logits(gt);
    for (int j = 0; j < n * 3; j++)
        ck_assert_msg(fabs(li[j] - lt[j]) <= 1e-5 * (1 + fabs(lt[j])), "logit %d: %g vs %g", j,
                      (double)li[j], (double)lt[j]);
    foolc__nn_gtrain_free(gt);
    free(g);
    foolc_net_free(net);
}
END_TEST

/* ---- training runs ------------------------------------------------------------------ */

/* Three classes of 1x6x6 images: a class pattern plus noise, shifted and scaled per image
 * (what batch statistics absorb). */
static void synth(foolc_data *d, int32_t n, uint64_t seed)
{
    g_rng = 99;
    float pat[3][36];
    fill(&pat[0][0], 3 * 36, 0, 1);
    g_rng = seed;
    d->shape = (foolc_shape){ n, 1, 6, 6 };
    d->n_classes = 3;
    d->x = malloc((size_t)n * 36 * sizeof(float));
    d->y = malloc((size_t)n * sizeof(int32_t));
    for (int32_t i = 0; i < n; i++) {
        d->y[i] = (int32_t)(urand() * 3);
        for (int j = 0; j < 36; j++) {
            double v = pat[d->y[i]][j] + 0.35 * (urand() - 0.5);
            d->x[(size_t)i * 36 + j] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
        }
    }
}

static const char *const k_train_nets[] = {
    /* a residual block with batchnorm, as the resnet preset */
    "input c=1 h=6 w=6; a = conv2d(x) out=6 k=3 p=1 bias=0; ab = batchnorm(a); ar = relu(ab); "
    "b = conv2d(ar) out=6 k=3 p=1 bias=0; bb = batchnorm(b); sc = conv2d(x) out=6 k=1 bias=0; "
    "scb = batchnorm(sc); s = add(bb, scb); r = relu(s); g = globalavgpool(r); f = flatten(g); "
    "logits = dense(f) out=3",
    /* a sequential net with batchnorm, 2-d and 1-d */
    "input c=1 h=6 w=6; conv2d out=6 k=3 p=1; batchnorm; relu; maxpool2d k=2; flatten; "
    "dense out=16; batchnorm; relu; dense out=3",
};

/* The loss falls, inference with the running statistics is accurate, and the same seed
 * gives the same parameters and statistics, bit for bit. */
START_TEST(test_train_runs)
{
    foolc_data tr, te;
    synth(&tr, 300, 5);
    synth(&te, 200, 6);
    foolc_net *a = NULL, *b = NULL;
    ck_ok(foolc_net_new(k_train_nets[_i], 2, &a));
    ck_ok(foolc_net_new(k_train_nets[_i], 2, &b));
    foolc_train_opts o;
    foolc_train_defaults(&o);
    o.batch = 32;
    o.lr = 1e-2;
    o.seed = 3;
    o.epochs = 1;
    double l1 = 0, l2 = 0, acc = 0, lb = 0;
    ck_ok(foolc_net_train(a, &tr, &o, NULL, NULL, &l1));
    o.epochs = 12;
    ck_ok(foolc_net_train(a, &tr, &o, NULL, NULL, &l2));
    ck_ok(foolc_net_accuracy(a, te.x, te.y, 200, &acc));
    ck_assert_msg(l2 < 0.5 * l1 && l2 < 0.3, "loss %g after 1 epoch, %g after 13", l1, l2);
    ck_assert_msg(acc >= 0.95, "accuracy %g", acc);
    /* The running statistics moved away from their start (0 and 1). */
    int moved = 0;
    for (int64_t j = 0; j < a->n_stats; j++) {
        ck_assert(isfinite(a->stats[j]));
        moved += a->stats[j] != 0.0f && a->stats[j] != 1.0f;
    }
    ck_assert(moved > 0);
    o.epochs = 1;
    ck_ok(foolc_net_train(b, &tr, &o, NULL, NULL, &lb));
    o.epochs = 12;
    ck_ok(foolc_net_train(b, &tr, &o, NULL, NULL, &lb));
    ck_assert(lb == l2);
    ck_assert(memcmp(a->params, b->params, (size_t)a->n_params * sizeof(float)) == 0);
    ck_assert(memcmp(a->stats, b->stats, (size_t)a->n_stats * sizeof(float)) == 0);
    free(tr.x), free(tr.y), free(te.x), free(te.y);
    foolc_net_free(a), foolc_net_free(b);
}
END_TEST

/* A sequential net with batchnorm trains exactly as the same chain written as a graph (its
 * graph twin): the same parameters and running statistics, bit for bit. */
START_TEST(test_sequential_as_graph)
{
    static const char *seq = "input c=1 h=6 w=6; conv2d out=4 k=3 s=1 p=1; batchnorm eps=0.001; "
                             "relu; avgpool2d k=2; flatten; dense out=8; batchnorm; relu; "
                             "dense out=3";
    static const char *gr = "input c=1 h=6 w=6; 0 = conv2d(x) out=4 k=3 s=1 p=1; "
                            "1 = batchnorm(0) eps=0.001; 2 = relu(1); 3 = avgpool2d(2) k=2; "
                            "4 = flatten(3); 5 = dense(4) out=8; 6 = batchnorm(5); "
                            "7 = relu(6); 8 = dense(7) out=3";
    foolc_data tr;
    synth(&tr, 100, 8);
    foolc_net *a = NULL, *b = NULL;
    ck_ok(foolc_net_new(seq, 6, &a));
    ck_ok(foolc_net_new(gr, 6, &b));
    ck_assert(a->graph == NULL && b->graph != NULL);
    ck_assert(memcmp(a->params, b->params, (size_t)a->n_params * sizeof(float)) == 0);
    foolc_train_opts o;
    foolc_train_defaults(&o);
    o.batch = 16;
    o.epochs = 3;
    o.seed = 4;
    double la = 0, lb = 0;
    ck_ok(foolc_net_train(a, &tr, &o, NULL, NULL, &la));
    ck_ok(foolc_net_train(b, &tr, &o, NULL, NULL, &lb));
    ck_assert(la == lb);
    ck_assert(a->n_stats == b->n_stats);
    ck_assert(memcmp(a->params, b->params, (size_t)a->n_params * sizeof(float)) == 0);
    ck_assert(memcmp(a->stats, b->stats, (size_t)a->n_stats * sizeof(float)) == 0);
    free(tr.x), free(tr.y);
    foolc_net_free(a), foolc_net_free(b);
}
END_TEST

/* A last minibatch of one image (a 1-d batchnorm then has one value per channel: its output
 * is its bias, and the running statistics of that step stay); a NaN in the data names the
 * sample; a cancelled run keeps finite statistics. */
START_TEST(test_edges)
{
    foolc_data tr;
    synth(&tr, 33, 10);
    foolc_net *net = NULL;
    ck_ok(foolc_net_new(k_train_nets[1], 2, &net));
    foolc_train_opts o;
    foolc_train_defaults(&o);
    o.batch = 32;
    o.epochs = 2;
    double l = 0;
    ck_ok(foolc_net_train(net, &tr, &o, NULL, NULL, &l));
    ck_assert(isfinite(l));
    for (int64_t j = 0; j < net->n_stats; j++) ck_assert(isfinite(net->stats[j]));
    for (int64_t j = 0; j < net->n_params; j++) ck_assert(isfinite(net->params[j]));
    tr.x[5 * 36 + 7] = NAN;
    o.batch = 33;
    ck_status(foolc_net_train(net, &tr, &o, NULL, NULL, NULL), FOOLC_E_NONFINITE);
    ck_assert_msg(strstr(foolc_errmsg(), "holds NaN") != NULL, "%s", foolc_errmsg());
    free(tr.x), free(tr.y);
    foolc_net_free(net);
}
END_TEST

/* Every allocation failing in turn: FOOLC_E_NOMEM before any step (the parameters and
 * statistics stay as they were), until the run succeeds with the bytes of a run without
 * failures. Graph and sequential (whose graph twin allocates a net of its own). */
START_TEST(test_alloc_fail)
{
    foolc_data tr;
    synth(&tr, 40, 12);
    foolc_net *net = NULL, *ref = NULL;
    ck_ok(foolc_net_new(k_train_nets[_i], 2, &net));
    ck_ok(foolc_net_new(k_train_nets[_i], 2, &ref));
    foolc_train_opts o;
    foolc_train_defaults(&o);
    o.epochs = 1;
    o.batch = 16;
    ck_ok(foolc_net_train(ref, &tr, &o, NULL, NULL, NULL));
    int ok = 0;
    for (uint64_t f = 1; f < 2000 && !ok; f++) {
        foolc__alloc_fail_at(f);
        foolc_status st = foolc_net_train(net, &tr, &o, NULL, NULL, NULL);
        foolc__alloc_fail_at(0);
        if (st == FOOLC_OK) {
            ok = 1;
            break;
        }
        ck_assert_msg(st == FOOLC_E_NOMEM, "allocation %llu: %d (%s)", (unsigned long long)f,
                      (int)st, foolc_errmsg());
    }
    ck_assert(ok);
    ck_assert(memcmp(net->params, ref->params, (size_t)net->n_params * sizeof(float)) == 0);
    ck_assert(memcmp(net->stats, ref->stats, (size_t)net->n_stats * sizeof(float)) == 0);
    free(tr.x), free(tr.y);
    foolc_net_free(net), foolc_net_free(ref);
}
END_TEST

Suite *foolc_suite_graph_train(void);
Suite *foolc_suite_graph_train(void)
{
    Suite *s = suite_create("graph_train");
    TCase *tc = tcase_create("batchnorm");
    tcase_add_loop_test(tc, test_bn_fd, 0, (int)(sizeof k_bn_shapes / sizeof k_bn_shapes[0]));
    tcase_add_test(tc, test_pass_fd);
    tcase_add_loop_test(tc, test_running_stats, 0, 2);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("train");
    tcase_add_loop_test(tc, test_train_runs, 0, 2);
    tcase_add_test(tc, test_sequential_as_graph);
    tcase_add_test(tc, test_edges);
    tcase_add_loop_test(tc, test_alloc_fail, 0, 2);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
