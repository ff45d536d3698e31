/* Check suite of graph nets (docs/net.md, "Graph architecture text"): every op's input and
 * weight gradients against central finite differences on the reference backend, the fast
 * backend against the reference (forward, input and weight gradients) on single-op graphs
 * and whole graphs (residual block with a projection shortcut and batchnorm, depthwise-
 * separable block, GELU MLP, concat branch, normalisation inside, squeeze-and-excitation,
 * NHWC transpose), a chain written as a graph against the sequential engine, batch
 * invariance, save and load to the same bytes, training, NaN/Inf reports, and malformed
 * texts (errors naming the line). */
#include "testutil.h"

#include "internal.h"
#include "nn/graph.h"

#include <math.h>
#include <omp.h>
#include <string.h>

static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;

static double urand(void)
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

static void fill(float *a, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * urand());
}

/* A graph net with random (not initial) weights, constants and running statistics. */
static foolc_net *gnet(const char *arch, uint64_t seed)
{
    foolc_net *net = NULL;
    ck_ok(foolc_net_new(arch, seed, &net));
    ck_assert_ptr_nonnull(net->graph);
    g_rng = seed * 7919 + 1;
    for (int32_t i = 0; i < net->L; i++) {
        nn_gnode *nd = &net->graph->nodes[i];
        if (nd->op == G_BN) {
            fill(nd->w, (size_t)nd->ns, 0.5, 1.5);
            fill(nd->b, (size_t)nd->ns, -0.5, 0.5);
            fill(nd->mean, (size_t)nd->ns, -0.3, 0.3);
            fill(nd->var, (size_t)nd->ns, 0.5, 2.0);
        }
        if (nd->op == G_PRELU) fill(nd->w, (size_t)nd->nw, 0.05, 0.5);
        if (nd->nc) {
            int divlike = nd->op == G_DIV || nd->op == G_MUL;
            fill(nd->cst, (size_t)nd->nc, divlike ? 0.5 : -0.5, divlike ? 2.0 : 0.5);
        }
    }
    net->pver++;
    return net;
}

static size_t in_size(const foolc_net *net)
{
    foolc_shape s = foolc_net_input(net);
    return (size_t)s.c * s.h * s.w;
}

/* The seed: d loss / d logits = r (fixed per call through user). */
static int seed_r(void *user, const float *logits, int32_t n, int32_t k, float *dl)
{
    (void)logits;
    memcpy(dl, user, (size_t)n * (size_t)k * sizeof *dl);
    return 0;
}

/* loss = sum r * logits, in double. */
static double loss_of(foolc_net *net, const float *x, int32_t n, const float *r)
{
    const int32_t k = foolc_net_classes(net);
    float *lg = malloc((size_t)n * k * sizeof *lg);
    ck_ok(foolc_net_forward(net, x, n, lg));
    double s = 0;
    for (size_t j = 0; j < (size_t)n * k; j++) s += (double)r[j] * lg[j];
    free(lg);
    return s;
}

/* ---- single ops ---------------------------------------------------------------------- */

#define TAIL "; f = flatten(o); logits = dense(f) out=3"
static const char *const k_ops[] = {
    /* conv2d: groups, dilation, asymmetric pads, stride, rectangular kernel */
    "input c=4 h=7 w=7; o = conv2d(x) out=6 k=3,2 s=2,1 p=1,0,2,1 d=2,1 groups=2" TAIL,
    "input c=4 h=6 w=6; o = conv2d(x) out=4 k=3 p=1 groups=4 bias=0" TAIL,
    "input c=3 h=5 w=5; o = conv2d(x) out=5 k=1" TAIL,
    "input c=3 h=5 w=5; f = flatten(x); logits = dense(f) out=3 bias=0",
    /* two-tensor binary ops with broadcast */
    "input c=3 h=4 w=4; a = conv2d(x) out=3 k=1; g = globalavgpool(x); o = add(a, g)" TAIL,
    "input c=3 h=4 w=4; a = conv2d(x) out=3 k=1; g = globalavgpool(x); o = sub(g, a)" TAIL,
    "input c=3 h=4 w=4; a = conv2d(x) out=3 k=1; g = globalavgpool(x); o = mul(a, g)" TAIL,
    "input c=3 h=4 w=4; a = conv2d(x) out=3 k=1; s = sigmoid(a); d = add(s) value=0.5; "
    "o = div(x, d)" TAIL,
    /* constants */
    "input c=3 h=4 w=4; n = sub(x) const=c; o = div(n) const=c" TAIL,
    "input c=3 h=4 w=4; n = mul(x) const=chw; o = add(n) const=1" TAIL,
    "input c=3 h=4 w=4; n = sub(x) value=2 left=1; o = div(n) value=3 left=1" TAIL,
    /* element-wise */
    "input c=3 h=4 w=4; o = relu(x)" TAIL,
    "input c=3 h=4 w=4; o = leakyrelu(x) alpha=0.1" TAIL,
    "input c=3 h=4 w=4; o = prelu(x)" TAIL,
    "input c=3 h=4 w=4; o = prelu(x) slopes=1" TAIL,
    "input c=3 h=4 w=4; o = sigmoid(x)" TAIL,
    "input c=3 h=4 w=4; o = tanh(x)" TAIL,
    "input c=3 h=4 w=4; o = clip(x) min=-0.3 max=0.4" TAIL,
    "input c=3 h=4 w=4; o = elu(x) alpha=0.7" TAIL,
    "input c=3 h=4 w=4; o = softplus(x)" TAIL,
    "input c=3 h=4 w=4; o = erf(x)" TAIL,
    "input c=3 h=4 w=4; o = hardsigmoid(x) alpha=0.6 beta=0.5" TAIL,
    "input c=3 h=4 w=4; m = mul(x) value=4; o = hardswish(m)" TAIL,
    "input c=3 h=4 w=4; o = identity(x)" TAIL,
    "input c=3 h=4 w=4; o = batchnorm(x) eps=0.001" TAIL,
    /* pooling and shapes */
    "input c=2 h=7 w=7; o = maxpool2d(x) k=3 s=2 p=1" TAIL,
    "input c=2 h=7 w=6; o = maxpool2d(x) k=2,3 s=1,2 p=1,0,0,2" TAIL,
    "input c=2 h=7 w=7; o = avgpool2d(x) k=3 s=2 p=1" TAIL,
    "input c=2 h=7 w=7; o = avgpool2d(x) k=3 s=2 p=1 count_pad=0" TAIL,
    "input c=3 h=4 w=4; o = globalavgpool(x)" TAIL,
    "input c=2 h=4 w=6; o = reshape(x) shape=6,8" TAIL,
    "input c=2 h=3 w=5; o = transpose(x) perm=1,2,0" TAIL,
    "input c=2 h=4 w=4; a = conv2d(x) out=3 k=1; o = concat(x, a, x)" TAIL,
    "input c=2 h=4 w=4; a = conv2d(x) out=2 k=1; o = concat(x, a) axis=2" TAIL,
    "input c=2 h=4 w=4; o = pad(x) pads=1,0,2,1 value=0.5" TAIL,
    "input c=3 h=4 w=4; f = flatten(x); d = dense(f) out=4; logits = softmax(d)",
    "input c=3 h=4 w=4; f = flatten(x); d = dense(f) out=4; logits = logsoftmax(d)",
};

/* ---- whole graphs -------------------------------------------------------------------- */

static const char *const k_graphs[] = {
    /* residual block with a projection shortcut and batchnorm */
    "input c=2 h=8 w=8; a = conv2d(x) out=4 k=3 s=2 p=1 bias=0; ab = batchnorm(a); "
    "ar = relu(ab); b = conv2d(ar) out=4 k=3 p=1 bias=0; bb = batchnorm(b); "
    "sc = conv2d(x) out=4 k=1 s=2 bias=0; sb = batchnorm(sc); s = add(bb, sb); r = relu(s); "
    "g = globalavgpool(r); f = flatten(g); logits = dense(f) out=3",
    /* depthwise-separable block with ReLU6 */
    "input c=3 h=6 w=6; d = conv2d(x) out=3 k=3 p=1 groups=3 bias=0; db = batchnorm(d); "
    "dr = clip(db) min=0 max=6; p = conv2d(dr) out=5 k=1 bias=0; pb = batchnorm(p); "
    "pr = clip(pb) min=0 max=6; g = globalavgpool(pr); f = flatten(g); "
    "logits = dense(f) out=3",
    /* GELU MLP as PyTorch exports it */
    "input c=1 h=4 w=4; f = flatten(x); h = dense(f) out=8; q = div(h) value=1.4142135; "
    "e = erf(q); e1 = add(e) value=1; m = mul(h, e1); gl = mul(m) value=0.5; "
    "logits = dense(gl) out=3",
    /* concat branch */
    "input c=2 h=6 w=6; a = conv2d(x) out=3 k=1; b = conv2d(x) out=2 k=3 p=1; "
    "bm = maxpool2d(x) k=3 s=1 p=1; c = concat(a, b, bm); cr = relu(c); "
    "p = avgpool2d(cr) k=2; f = flatten(p); logits = dense(f) out=3",
    /* normalisation inside, then a small CNN */
    "input c=3 h=6 w=6; n = sub(x) const=c; s = div(n) const=c; a = conv2d(s) out=4 k=3; "
    "r = relu(a); m = maxpool2d(r) k=2; f = flatten(m); logits = dense(f) out=3",
    /* squeeze-and-excitation with hardswish and PReLU */
    "input c=4 h=5 w=5; a = conv2d(x) out=4 k=3 p=1; h = hardswish(a); g = globalavgpool(h); "
    "f = flatten(g); e = dense(f) out=2; er = prelu(e); e2 = dense(er) out=4; "
    "es = hardsigmoid(e2) alpha=0.1666667; sr = reshape(es) shape=4,1,1; s = mul(h, sr); "
    "o = add(s, x); p = globalavgpool(o); pf = flatten(p); logits = dense(pf) out=3",
    /* an NHWC export: transpose in, pad, transpose out */
    "input c=3 h=5 w=4; t = transpose(x) perm=1,2,0; u = transpose(t) perm=2,0,1; "
    "p = pad(u) pads=1,1,1,1; a = conv2d(p) out=4 k=3 s=2; l = leakyrelu(a); "
    "e = elu(l); f = flatten(e); d = dense(f) out=6; s = softplus(d); t2 = tanh(s); "
    "logits = dense(t2) out=3",
};

#define N_OPS ((int)(sizeof k_ops / sizeof k_ops[0]))
#define N_GRAPHS ((int)(sizeof k_graphs / sizeof k_graphs[0]))

static const char *arch_at(int i) { return i < N_OPS ? k_ops[i] : k_graphs[i - N_OPS]; }

/* Input and weight gradients of the reference backend against central differences along
 * random directions (the loss sum r . logits is computed in double from float logits). */
START_TEST(test_graph_fd)
{
    const char *arch = arch_at(_i);
    foolc_net *net = gnet(arch, 11 + (uint64_t)_i);
    ck_ok(foolc_net_set_backend(net, FOOLC_BACKEND_REFERENCE));
    const int32_t n = 2, k = foolc_net_classes(net);
    const size_t d = in_size(net), P = (size_t)foolc_net_param_count(net);
    float *x = malloc(n * d * sizeof *x), *r = malloc((size_t)n * k * sizeof *r);
    float *dx = malloc(n * d * sizeof *dx), *dp = malloc((P + 1) * sizeof *dp);
    float *xp = malloc(n * d * sizeof *xp), *p0 = malloc((P + 1) * sizeof *p0);
    float *pp = malloc((P + 1) * sizeof *pp), *v = malloc((n * d + P + 1) * sizeof *v);
    g_rng = 1000 + (uint64_t)_i;
    fill(x, n * d, -1, 1);
    fill(r, (size_t)n * k, -1, 1);
    ck_ok(foolc_net_grad(net, x, n, seed_r, r, NULL, dx, dp));
    ck_ok(foolc_net_get_params(net, p0));
    const double h = 1e-3;
    for (int dir = 0; dir < 3; dir++) {
        /* input direction */
        fill(v, n * d, -1, 1);
        double an = 0;
        for (size_t j = 0; j < n * d; j++) an += (double)dx[j] * v[j];
        for (size_t j = 0; j < n * d; j++) xp[j] = (float)(x[j] + h * v[j]);
        double lp = loss_of(net, xp, n, r);
        for (size_t j = 0; j < n * d; j++) xp[j] = (float)(x[j] - h * v[j]);
        double lm = loss_of(net, xp, n, r);
        double fd = (lp - lm) / (2 * h);
        ck_assert_msg(fabs(fd - an) <= 2e-3 + 2e-2 * fabs(an),
                      "%s: input direction %d: fd %.6g analytic %.6g", arch, dir, fd, an);
        if (!P) continue;
        /* weight direction */
        fill(v, P, -1, 1);
        double aw = 0;
        for (size_t j = 0; j < P; j++) aw += (double)dp[j] * v[j];
        for (size_t j = 0; j < P; j++) pp[j] = (float)(p0[j] + h * v[j]);
        ck_ok(foolc_net_set_params(net, pp));
        lp = loss_of(net, x, n, r);
        for (size_t j = 0; j < P; j++) pp[j] = (float)(p0[j] - h * v[j]);
        ck_ok(foolc_net_set_params(net, pp));
        lm = loss_of(net, x, n, r);
        ck_ok(foolc_net_set_params(net, p0));
        fd = (lp - lm) / (2 * h);
        ck_assert_msg(fabs(fd - aw) <= 2e-3 + 2e-2 * fabs(aw),
                      "%s: weight direction %d: fd %.6g analytic %.6g", arch, dir, fd, aw);
    }
    free(x); free(r); free(dx); free(dp); free(xp); free(p0); free(pp); free(v);
    foolc_net_free(net);
}
END_TEST

static double max_rel(const float *a, const float *b, size_t n)
{
    double scale = 0, m = 0;
    for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs((double)b[j]));
    for (size_t j = 0; j < n; j++) m = fmax(m, fabs((double)a[j] - b[j]));
    return m / (scale > 0 ? scale : 1);
}

/* The fast backend against the reference: logits, input and weight gradients. */
START_TEST(test_graph_fast_vs_ref)
{
    const char *arch = arch_at(_i);
    foolc_net *f = gnet(arch, 21 + (uint64_t)_i), *rf = gnet(arch, 21 + (uint64_t)_i);
    ck_ok(foolc_net_set_backend(rf, FOOLC_BACKEND_REFERENCE));
    const int32_t k = foolc_net_classes(f);
    const size_t d = in_size(f), P = (size_t)foolc_net_param_count(f);
    const int32_t sizes[] = { 1, 5 };
    for (int si = 0; si < 2; si++) {
        const int32_t n = sizes[si];
        float *x = malloc(n * d * sizeof *x), *r = malloc((size_t)n * k * sizeof *r);
        float *l1 = malloc((size_t)n * k * sizeof *l1), *l2 = malloc((size_t)n * k * sizeof *l2);
        float *d1 = malloc(n * d * sizeof *d1), *d2 = malloc(n * d * sizeof *d2);
        float *p1 = malloc((P + 1) * sizeof *p1), *p2 = malloc((P + 1) * sizeof *p2);
        g_rng = 77 + (uint64_t)n;
        fill(x, n * d, 0, 1);
        fill(r, (size_t)n * k, -1, 1);
        ck_ok(foolc_net_grad(f, x, n, seed_r, r, l1, d1, p1));
        ck_ok(foolc_net_grad(rf, x, n, seed_r, r, l2, d2, p2));
        ck_assert_msg(max_rel(l1, l2, (size_t)n * k) < 1e-5, "%s: logits", arch);
        ck_assert_msg(max_rel(d1, d2, n * d) < 1e-4, "%s: dx %g", arch, max_rel(d1, d2, n * d));
        ck_assert_msg(max_rel(p1, p2, P) < 1e-4, "%s: dparams %g", arch, max_rel(p1, p2, P));
        /* Without weight gradients the fast backend folds batchnorms into convolutions. */
        ck_ok(foolc_net_grad(f, x, n, seed_r, r, l1, d1, NULL));
        ck_assert_msg(max_rel(l1, l2, (size_t)n * k) < 1e-5, "%s: logits (no dparams)", arch);
        ck_assert_msg(max_rel(d1, d2, n * d) < 1e-4, "%s: dx (no dparams) %g", arch,
                      max_rel(d1, d2, n * d));
        free(x); free(r); free(l1); free(l2); free(d1); free(d2); free(p1); free(p2);
    }
    foolc_net_free(f);
    foolc_net_free(rf);
}
END_TEST

/* Each image alone gives the bits it gets inside a batch (both backends). */
START_TEST(test_graph_batch_invariance)
{
    const char *arch = k_graphs[_i];
    for (int b = 0; b < 2; b++) {
        foolc_net *net = gnet(arch, 5);
        ck_ok(foolc_net_set_backend(net, b ? FOOLC_BACKEND_REFERENCE : FOOLC_BACKEND_FAST));
        const int32_t n = 7, k = foolc_net_classes(net);
        const size_t d = in_size(net);
        float *x = malloc(n * d * sizeof *x), *lb = malloc((size_t)n * k * sizeof *lb);
        float *l1 = malloc((size_t)k * sizeof *l1), *r = malloc((size_t)n * k * sizeof *r);
        float *dxb = malloc(n * d * sizeof *dxb), *dx1 = malloc(d * sizeof *dx1);
        g_rng = 3;
        fill(x, n * d, 0, 1);
        fill(r, (size_t)n * k, -1, 1);
        ck_ok(foolc_net_grad(net, x, n, seed_r, r, lb, dxb, NULL));
        for (int32_t s = 0; s < n; s++) {
            ck_ok(foolc_net_grad(net, x + s * d, 1, seed_r, r + (size_t)s * k, l1, dx1, NULL));
            ck_assert_msg(memcmp(l1, lb + (size_t)s * k, (size_t)k * sizeof *l1) == 0,
                          "%s: logits of sample %d differ alone (backend %d)", arch, (int)s, b);
            ck_assert_msg(memcmp(dx1, dxb + s * d, d * sizeof *dx1) == 0,
                          "%s: dx of sample %d differs alone (backend %d)", arch, (int)s, b);
        }
        free(x); free(lb); free(l1); free(r); free(dxb); free(dx1);
        foolc_net_free(net);
    }
}
END_TEST

/* Batch invariance of the fast backend's chunks and threads: a residual net with strided,
 * 1x1, depthwise, dilated and asymmetrically padded convolutions (oneDNN primitives made for
 * chunks of 1 to 64 images, tensors kept in oneDNN's blocked format between convolutions and
 * element-wise ops), folded and unfolded batchnorms, pooling and concat gives every image
 * alone the bits it gets in batches of 2, 7, 64 and 128 at several places, with one and with
 * two OpenMP threads (graph_run.c: a pass's chunks on threads); it agrees with the reference
 * backend; an overflow inside the blocked part is named by its line. */
START_TEST(test_graph_chunk_thread_invariance)
{
    static const char *arch =
        "input c=3 h=16 w=16; c1 = conv2d(x) out=16 k=3 p=1 bias=0; b1 = batchnorm(c1); "
        "r1 = relu(b1); a1 = conv2d(r1) out=32 k=3 s=2 p=1; a1r = relu(a1); "
        "a2 = conv2d(a1r) out=32 k=3 p=1,2,3,2 d=2 bias=0; a2b = batchnorm(a2); "
        "p1 = conv2d(r1) out=32 k=1 s=2 bias=0; p1b = batchnorm(p1); s1 = add(a2b, p1b); "
        "o1 = relu(s1); dw = conv2d(o1) out=32 k=3 p=1 groups=32; dwr = relu(dw); "
        "m1 = maxpool2d(dwr) k=2; q1 = avgpool2d(o1) k=2; cat = concat(m1, q1) axis=0; "
        "g = globalavgpool(cat); f = flatten(g); logits = dense(f) out=10";
    foolc_net *net = gnet(arch, 11);
    const int32_t T = 140, k = foolc_net_classes(net);
    const size_t d = in_size(net);
    float *x = malloc(T * d * sizeof *x), *r = malloc((size_t)T * k * sizeof *r);
    float *l1 = malloc((size_t)T * k * sizeof *l1), *d1 = malloc(T * d * sizeof *d1);
    float *lb = malloc((size_t)T * k * sizeof *lb), *db = malloc(T * d * sizeof *db);
    g_rng = 5;
    fill(x, T * d, 0, 1);
    fill(r, (size_t)T * k, -1, 1);
    for (int32_t s = 0; s < T; s++)
        ck_ok(foolc_net_grad(net, x + s * d, 1, seed_r, r + (size_t)s * k, l1 + (size_t)s * k,
                             d1 + s * d, NULL));
    static const int32_t sizes[] = { 2, 7, 64, 128 }, offs[] = { 0, 5, 12 };
    for (int th = 1; th <= 2; th++) {
        omp_set_num_threads(th);
        for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++)
            for (size_t o = 0; o < sizeof offs / sizeof *offs; o++) {
                const int32_t n = sizes[a], at = offs[o];
                const float *rr = r + (size_t)at * k;
                ck_ok(foolc_net_grad(net, x + at * d, n, seed_r, (void *)rr, lb, db, NULL));
                ck_assert_msg(!memcmp(lb, l1 + (size_t)at * k, (size_t)n * k * sizeof *lb),
                              "logits of a batch of %d at %d (%d threads)", (int)n, (int)at, th);
                ck_assert_msg(!memcmp(db, d1 + at * d, n * d * sizeof *db),
                              "dx of a batch of %d at %d (%d threads)", (int)n, (int)at, th);
                ck_ok(foolc_net_forward(net, x + at * d, n, lb));
                ck_assert_msg(!memcmp(lb, l1 + (size_t)at * k, (size_t)n * k * sizeof *lb),
                              "forward of a batch of %d at %d (%d threads)", (int)n, (int)at,
                              th);
            }
    }
    omp_set_num_threads(1);
    foolc_net *ref = gnet(arch, 11);
    ck_ok(foolc_net_set_backend(ref, FOOLC_BACKEND_REFERENCE));
    ck_ok(foolc_net_grad(ref, x, 9, seed_r, r, lb, db, NULL));
    ck_assert_msg(max_rel(l1, lb, (size_t)9 * k) < 1e-5, "logits against the reference %g",
                  max_rel(l1, lb, (size_t)9 * k));
    ck_assert_msg(max_rel(d1, db, 9 * d) < 1e-4, "dx against the reference %g",
                  max_rel(d1, db, 9 * d));
    foolc_net_free(ref);
    /* a2 (blocked input and output, its batchnorm folded) overflows on sample 3. */
    nn_gnode *a2 = &net->graph->nodes[5];
    ck_assert_str_eq(a2->name, "a2");
    for (int64_t j = 0; j < a2->nw; j++) a2->w[j] = 1e30f;
    net->pver++;
    for (size_t j = 0; j < d; j++) x[3 * d + j] = 1e12f;
    ck_status(foolc_net_forward(net, x, 7, lb), FOOLC_E_NONFINITE);
    ck_assert_msg(strstr(foolc_errmsg(), "line 7 (a2 = conv2d): sample 3 reaches"), "%s",
                  foolc_errmsg());
    ck_assert(isnan(lb[3 * k]) && isfinite(lb[2 * k]) && isfinite(lb[4 * k]));
    free(x); free(r); free(l1); free(d1); free(lb); free(db);
    foolc_net_free(net);
}
END_TEST

/* A chain written as a graph computes what the sequential engine computes (same flat
 * parameter order: conv and dense weight then bias). */
START_TEST(test_graph_chain_matches_sequential)
{
    foolc_net *s = NULL, *g = NULL;
    ck_ok(foolc_net_new("input c=1 h=8 w=8; conv2d out=4 k=3 p=1; relu; maxpool2d k=2; "
                        "conv2d out=6 k=3; relu; flatten; dense out=10; relu; dense out=3", 4, &s));
    ck_ok(foolc_net_new("input c=1 h=8 w=8; 0 = conv2d(x) out=4 k=3 p=1; 1 = relu(0); "
                        "2 = maxpool2d(1) k=2; 3 = conv2d(2) out=6 k=3; 4 = relu(3); "
                        "5 = flatten(4); 6 = dense(5) out=10; 7 = relu(6); 8 = dense(7) out=3",
                        4, &g));
    const size_t P = (size_t)foolc_net_param_count(s);
    ck_assert_int_eq((int)P, (int)foolc_net_param_count(g));
    float *ps = malloc(P * sizeof *ps), *pg = malloc(P * sizeof *pg);
    ck_ok(foolc_net_get_params(s, ps));
    ck_ok(foolc_net_get_params(g, pg));
    /* Same names, same seed streams: the same initial weights. */
    ck_assert(memcmp(ps, pg, P * sizeof *ps) == 0);
    ck_assert(foolc_net_flops(s) == foolc_net_flops(g));
    const int32_t n = 4;
    float x[4 * 64], r[4 * 3], ls[12], lg[12], ds[4 * 64], dg[4 * 64];
    g_rng = 8;
    fill(x, sizeof x / sizeof *x, 0, 1);
    fill(r, 12, -1, 1);
    for (int b = 0; b < 2; b++) {
        foolc_backend be = b ? FOOLC_BACKEND_REFERENCE : FOOLC_BACKEND_FAST;
        ck_ok(foolc_net_set_backend(s, be));
        ck_ok(foolc_net_set_backend(g, be));
        ck_ok(foolc_net_grad(s, x, n, seed_r, r, ls, ds, NULL));
        ck_ok(foolc_net_grad(g, x, n, seed_r, r, lg, dg, NULL));
        ck_assert_msg(max_rel(lg, ls, 12) < 1e-5, "logits %g", max_rel(lg, ls, 12));
        ck_assert_msg(max_rel(dg, ds, 4 * 64) < 1e-4, "dx %g", max_rel(dg, ds, 4 * 64));
    }
    free(ps);
    free(pg);
    foolc_net_free(s);
    foolc_net_free(g);
}
END_TEST

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Saving writes the canonical text and every member; loading gives the same net, the same
 * logits, and saving again the same bytes. */
START_TEST(test_graph_save_load)
{
    const char *arch = k_graphs[_i];
    foolc_net *a = gnet(arch, 9);
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "/tmp/foolc_graph_%d_a.npz", (int)getpid());
    snprintf(p2, sizeof p2, "/tmp/foolc_graph_%d_b.npz", (int)getpid());
    ck_ok(foolc_net_save(a, p1));
    foolc_net *b = NULL;
    ck_ok(foolc_net_load(p1, &b));
    ck_assert_str_eq(foolc_net_arch(a), foolc_net_arch(b));
    /* The canonical text parses to itself. */
    foolc_net *c = NULL;
    ck_ok(foolc_net_new(foolc_net_arch(a), 1, &c));
    ck_assert_str_eq(foolc_net_arch(a), foolc_net_arch(c));
    foolc_net_free(c);
    ck_ok(foolc_net_save(b, p2));
    size_t n1, n2;
    unsigned char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    ck_assert(n1 == n2 && memcmp(b1, b2, n1) == 0);
    const int32_t k = foolc_net_classes(a);
    const size_t d = in_size(a);
    float *x = malloc(3 * d * sizeof *x), la[64], lb[64];
    g_rng = 4;
    fill(x, 3 * d, 0, 1);
    ck_ok(foolc_net_forward(a, x, 3, la));
    ck_ok(foolc_net_forward(b, x, 3, lb));
    ck_assert(memcmp(la, lb, 3 * (size_t)k * sizeof *la) == 0);
    free(x);
    free(b1);
    free(b2);
    unlink(p1);
    unlink(p2);
    foolc_net_free(a);
    foolc_net_free(b);
}
END_TEST

/* Three classes of 1x6x6 images: a class pattern plus noise. */
static void synth(foolc_data *d, int32_t n, uint64_t seed)
{
    float pat[3][36];
    g_rng = 99;
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

START_TEST(test_graph_train)
{
    foolc_data tr, te;
    synth(&tr, 300, 5);
    synth(&te, 200, 6);
    foolc_net *net = NULL;
    ck_ok(foolc_net_new("input c=1 h=6 w=6; n = sub(x) value=0.5; a = conv2d(n) out=6 k=3 p=1; "
                        "ab = batchnorm(a); ar = relu(ab); b = conv2d(ar) out=6 k=3 p=1; "
                        "sc = conv2d(n) out=6 k=1; s = add(b, sc); r = prelu(s); "
                        "g = globalavgpool(r); f = flatten(g); h = dense(f) out=8; "
                        "hg = hardswish(h); c = concat(hg, f); logits = dense(c) out=3", 2, &net));
    foolc_train_opts o;
    foolc_train_defaults(&o);
    o.batch = 32;
    o.lr = 1e-2;
    o.seed = 3;
    o.epochs = 1;
    double l1 = 0, l2 = 0, acc = 0;
    ck_ok(foolc_net_train(net, &tr, &o, NULL, NULL, &l1));
    o.epochs = 15;
    ck_ok(foolc_net_train(net, &tr, &o, NULL, NULL, &l2));
    ck_ok(foolc_net_accuracy(net, te.x, te.y, 200, &acc));
    ck_assert_msg(l2 < 0.5 * l1, "loss %g after 1 epoch, %g after 16", l1, l2);
    ck_assert_msg(acc >= 0.9, "accuracy %g", acc);
    free(tr.x); free(tr.y); free(te.x); free(te.y);
    foolc_net_free(net);
}
END_TEST

/* An overflow inside a graph: FOOLC_E_NONFINITE naming the line and the sample, NaN logits
 * for that sample only; a NaN input names the input. */
START_TEST(test_graph_nonfinite)
{
    foolc_net *net = gnet("input c=1 h=2 w=2; m = mul(x) value=1e30; e = mul(m, m); "
                          "r = relu(e); f = flatten(r); logits = dense(f) out=2", 1);
    float x[8] = { 0.1f, 0.2f, 0.3f, 0.4f, 1e-20f, 1e-20f, 1e-20f, 1e-20f }, lg[4];
    ck_status(foolc_net_forward(net, x, 2, lg), FOOLC_E_NONFINITE);
    ck_assert_msg(strstr(foolc_errmsg(), "line 3 (e = mul): sample 0 reaches inf"), "%s",
                  foolc_errmsg());
    ck_assert(isnan(lg[0]) && isnan(lg[1]) && isfinite(lg[2]) && isfinite(lg[3]));
    x[5] = NAN;
    ck_status(foolc_net_forward(net, x, 2, lg), FOOLC_E_NONFINITE);
    ck_assert_msg(strstr(foolc_errmsg(), "the input of sample 1 holds NaN"), "%s",
                  foolc_errmsg());
    foolc_net_free(net);
    /* A convolution whose batchnorm is folded into it still names itself. */
    net = gnet("input c=1 h=2 w=2; m = mul(x) value=1e30; a = conv2d(m) out=2 k=1; "
               "b = batchnorm(a); r = relu(b); f = flatten(r); logits = dense(f) out=2", 1);
    for (int i = 0; i < 2; i++) net->graph->nodes[1].w[i] = 1e20f;
    net->pver++;
    x[5] = 1e-20f;
    ck_status(foolc_net_forward(net, x, 2, lg), FOOLC_E_NONFINITE);
    ck_assert_msg(strstr(foolc_errmsg(), "line 3 (a = conv2d): sample 0 reaches"), "%s",
                  foolc_errmsg());
    ck_assert(isnan(lg[0]) && isfinite(lg[2]));
    foolc_net_free(net);
}
END_TEST

/* ---- malformed texts ----------------------------------------------------------------- */

static const struct {
    const char *arch, *msg;
} k_bad[] = {
    { "input c=1 h=4 w=4; a = relu(b); b = relu(a); logits = flatten(b)",
      "line 2 (a = relu): input 'b' is defined below, at line 3; it depends on this line: a cycle" },
    { "input c=1 h=4 w=4; a = relu(c); b = relu(x); c = add(a, b); logits = flatten(c)",
      "line 2 (a = relu): input 'c' is defined below, at line 4; it depends on this line" },
    { "input c=1 h=4 w=4; b = relu(x); a = relu(q); logits = flatten(a)",
      "line 3 (a = relu): unknown input 'q'" },
    { "input c=1 h=4 w=4; a = relu(a); logits = flatten(a)",
      "line 2 (a = relu): input 'a' is this line's own output (a cycle)" },
    { "input c=1 h=4 w=4; a = relu(x); a = relu(x); logits = flatten(a)",
      "line 3 (a = relu): 'a' is already defined at line 2" },
    { "input c=1 h=4 w=4; a = conv2d(x) out=2 k=3; b = add(a, x); logits = flatten(b)",
      "line 3 (b = add): shapes 2x2x2 and 1x4x4 do not broadcast" },
    { "input c=1 h=4 w=4; a = relu(x); b = relu(x); logits = flatten(b)",
      "line 2 (a = relu): 'a' is never used" },
    { "input c=1 h=4 w=4; a = frob(x); logits = flatten(a)", "line 2 (a = frob): unknown op 'frob'" },
    { "input c=1 h=4 w=4; a = relu(x) alpha=1; logits = flatten(a)",
      "line 2 (a = relu): unknown option 'alpha'" },
    { "input c=1 h=4 w=4; a = conv2d(x) k=3; logits = flatten(a)",
      "line 2 (a = conv2d): missing option 'out'" },
    { "input c=1 h=4 w=4; a = conv2d(x) out=2 k=3 groups=2; logits = flatten(a)",
      "groups=2 must divide the input channels 1" },
    { "input c=1 h=4 w=4; x = relu(x); logits = flatten(x)", "'x' is the input" },
    { "input c=1 h=4 w=4; a = relu(x); relu; logits = flatten(a)",
      "line 3: expected 'name = op(inputs) options'" },
    { "input c=1 h=4 w=4; a = add(x, x, x); logits = flatten(a)", "3 inputs, add takes" },
    { "input c=1 h=4 w=4; a = concat(x); logits = flatten(a)", "1 inputs, concat takes 2 or more" },
    { "input c=1 h=4 w=4; s = softmax(x); logits = flatten(s)", "not flat" },
    { "input c=1 h=4 w=4; f = flatten(x); s = softmax(f); logits = relu(s)",
      "softmax may only be the last line" },
    { "input c=1 h=4 w=4; a = reshape(x) shape=3,5; logits = flatten(a)",
      "shape 3x5x1 has 15 values" },
    { "input c=1 h=4 w=4; a = transpose(x) perm=0,0,1; logits = flatten(a)",
      "not a permutation" },
    { "input c=1 h=4 w=4; a = maxpool2d(x) k=2 p=2; logits = flatten(a)",
      "each must be smaller than the kernel" },
    { "input c=1 h=4 w=4; a = add(x); logits = flatten(a)", "one input needs a constant" },
    { "input c=1 h=4 w=4; a = sub(x) const=q; logits = flatten(a)", "option 'const' must be c, 1 or chw" },
    { "input c=1 h=4 w=4; a b = relu(x); logits = flatten(a)", "bad output name 'a b'" },
    { "input c=1 h=4 w=4; a = relu(x; logits = flatten(a)", "missing ')'" },
    { "input c=1 h=4 w=4; a = conv2d(x) out=2 k=3 p=1,2; logits = flatten(a)",
      "option 'p' has 2 values, expected 1 or 4" },
    { "input c=1 h=4 w=4; a = clip(x) min=2 max=1; logits = flatten(a)", "min=2 is above max=1" },
    { "input c=1 h=4 w=4; a = relu(b); b = relu(x)", "line 2 (a = relu): input 'b' is defined below, at line 3; lines must come after their inputs" },
    { "input c=1 h=4 w=4; a = relu(x); b = relu(a); logits = relu(a)", "line 3 (b = relu): 'b' is never used" },
};

START_TEST(test_graph_bad_text)
{
    foolc_net *net = NULL;
    ck_status(foolc_net_new(k_bad[_i].arch, 1, &net), FOOLC_E_INVALID);
    ck_assert_ptr_null(net);
    ck_assert_msg(strstr(foolc_errmsg(), k_bad[_i].msg), "'%s': got '%s', want '%s'",
                  k_bad[_i].arch, foolc_errmsg(), k_bad[_i].msg);
    /* Inside a model file: FOOLC_E_FORMAT with the same message. */
    foolc_npz *z = NULL;
    ck_ok(foolc_npz_new(&z));
    foolc_array a;
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_U8;
    a.ndim = 1;
    a.shape[0] = (int64_t)strlen(k_bad[_i].arch);
    a.data = (void *)k_bad[_i].arch;
    ck_ok(foolc_npz_add(z, "arch", &a));
    ck_status(foolc_net_from_npz(z, &net), FOOLC_E_FORMAT);
    ck_assert_msg(strstr(foolc_errmsg(), k_bad[_i].msg), "%s", foolc_errmsg());
    foolc_npz_free(z);
}
END_TEST

/* Members of a graph net in an archive: named by the output tensor, checked like the
 * sequential engine's (missing, misshapen, non-finite, unexpected). */
START_TEST(test_graph_members)
{
    const char *arch = "input c=2 h=4 w=4; n = sub(x) const=c; a = conv2d(n) out=3 k=3; "
                       "b = batchnorm(a); f = flatten(b); logits = dense(f) out=2";
    foolc_npz *z = NULL;
    ck_ok(foolc_npz_new(&z));
    foolc_array a;
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_U8;
    a.ndim = 1;
    a.shape[0] = (int64_t)strlen(arch);
    a.data = (void *)arch;
    ck_ok(foolc_npz_add(z, "arch", &a));
    float buf[64];
    for (int i = 0; i < 64; i++) buf[i] = 0.5f;
    struct { const char *name; int nd; int64_t s0, s1, s2, s3; } m[] = {
        { "n.const", 1, 2, 0, 0, 0 }, { "a.weight", 4, 3, 2, 3, 3 }, { "a.bias", 1, 3, 0, 0, 0 },
        { "b.weight", 1, 3, 0, 0, 0 }, { "b.bias", 1, 3, 0, 0, 0 },
        { "b.running_mean", 1, 3, 0, 0, 0 }, { "b.running_var", 1, 3, 0, 0, 0 },
        { "logits.weight", 2, 2, 12, 0, 0 }, { "logits.bias", 1, 2, 0, 0, 0 },
    };
    foolc_net *net = NULL;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        ck_status(foolc_net_from_npz(z, &net), FOOLC_E_FORMAT);
        char want[96];
        snprintf(want, sizeof want, "member '%s' missing", m[i].name);
        ck_assert_msg(strstr(foolc_errmsg(), want), "%s", foolc_errmsg());
        memset(&a, 0, sizeof a);
        a.dtype = FOOLC_F32;
        a.ndim = m[i].nd;
        a.shape[0] = m[i].s0;
        a.shape[1] = m[i].s1;
        a.shape[2] = m[i].s2;
        a.shape[3] = m[i].s3;
        if (strcmp(m[i].name, "logits.weight") == 0) {
            /* first the wrong shape */
            a.shape[1] = 11;
            float big[24] = { 0 };
            a.data = big;
            ck_ok(foolc_npz_add(z, m[i].name, &a));
            ck_status(foolc_net_from_npz(z, &net), FOOLC_E_FORMAT);
            ck_assert_msg(strstr(foolc_errmsg(), "member 'logits.weight' has shape (2, 11), "
                                 "expected (2, 12) (dense at line 6)"), "%s", foolc_errmsg());
            a.shape[1] = 12;
            float w[24];
            for (int j = 0; j < 24; j++) w[j] = 0.1f;
            a.data = w;
            ck_ok(foolc_npz_add(z, m[i].name, &a));
            continue;
        }
        a.data = buf;
        ck_ok(foolc_npz_add(z, m[i].name, &a));
    }
    ck_ok(foolc_net_from_npz(z, &net));
    foolc_net_free(net);
    net = NULL;
    buf[1] = INFINITY;
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_F32;
    a.ndim = 1;
    a.shape[0] = 2;
    a.data = buf;
    ck_ok(foolc_npz_add(z, "n.const", &a));
    ck_status(foolc_net_from_npz(z, &net), FOOLC_E_FORMAT);
    ck_assert_msg(strstr(foolc_errmsg(), "n.const[1] is inf (sub at line 2)"), "%s",
                  foolc_errmsg());
    buf[1] = 0.5f;
    ck_ok(foolc_npz_add(z, "n.const", &a));
    ck_ok(foolc_npz_add(z, "a.foo", &a));
    ck_status(foolc_net_from_npz(z, &net), FOOLC_E_FORMAT);
    ck_assert_msg(strstr(foolc_errmsg(), "unexpected member 'a.foo'"), "%s", foolc_errmsg());
    foolc_npz_free(z);
}
END_TEST

Suite *foolc_suite_graph(void);
Suite *foolc_suite_graph(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("gradients");
    tcase_add_loop_test(tc, test_graph_fd, 0, N_OPS + N_GRAPHS);
    tcase_add_loop_test(tc, test_graph_fast_vs_ref, 0, N_OPS + N_GRAPHS);
    tcase_add_loop_test(tc, test_graph_batch_invariance, 0, N_GRAPHS);
    tcase_add_test(tc, test_graph_chunk_thread_invariance);
    tcase_add_test(tc, test_graph_chain_matches_sequential);
    tcase_add_test(tc, test_graph_nonfinite);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("files");
    tcase_add_loop_test(tc, test_graph_save_load, 0, N_GRAPHS);
    tcase_add_loop_test(tc, test_graph_bad_text, 0, (int)(sizeof k_bad / sizeof k_bad[0]));
    tcase_add_test(tc, test_graph_members);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("train");
    tcase_add_test(tc, test_graph_train);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
