/* Check suite of the network engine: every layer's input and weight gradients and whole
 * small nets against central finite differences, FAST (oneDNN/OpenBLAS) against REFERENCE
 * at several batch sizes, architecture parsing and its errors, NPZ round trips and broken
 * files, the gradient call's seed contract, training, and injected allocation failures. */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t g_rng = 0x1234567887654321ULL;

static double urand(void) /* [0, 1) */
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

static void fill(float *a, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * urand());
}

static foolc_net *mknet(const char *arch, uint64_t seed)
{
    foolc_net *net = NULL;
    ck_ok(foolc_net_new(arch, seed, &net));
    ck_assert_ptr_nonnull(net);
    return net;
}

static size_t in_size(const foolc_net *net)
{
    foolc_shape s = foolc_net_input(net);
    return (size_t)s.c * s.h * s.w;
}

/* A seed with fixed d(loss)/d(logits) = c, so loss = sum(c * logits). */
typedef struct lin_seed {
    const float *c;
    int calls, ret;
    float logits[64];
    int32_t n, k;
} lin_seed;

static int seed_lin(void *u, const float *logits, int32_t n, int32_t k, float *d)
{
    lin_seed *s = u;
    s->calls++;
    s->n = n;
    s->k = k;
    size_t m = (size_t)n * k;
    memcpy(s->logits, logits, (m < 64 ? m : 64) * sizeof(float));
    memcpy(d, s->c, m * sizeof(float));
    return s->ret;
}

/* sum(c * logits) in double, on the reference backend. */
static double loss_of(foolc_net *net, const float *x, int32_t n, const float *c, float *lg)
{
    ck_ok(foolc_net_forward(net, x, n, lg));
    double l = 0;
    for (size_t i = 0; i < (size_t)n * foolc_net_classes(net); i++) l += (double)c[i] * lg[i];
    return l;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

/* Compares one analytic derivative with central differences of f around a point; returns
 * 1 when checked, 0 when skipped (a kink: the one-sided slopes disagree), fails otherwise. */
static int fd_point(double g, double lp, double l0, double lm, double eps, double scale,
                    const char *what, size_t idx)
{
    double fd = (lp - lm) / (2 * eps), fw = (lp - l0) / eps, bw = (l0 - lm) / eps;
    double tol = 1e-2 * fabs(fd) + 2e-3 * scale + 1e-4;
    if (fabs(fw - bw) > tol) return 0;
    ck_assert_msg(fabs(g - fd) <= tol, "%s[%zu]: backprop %.7g, finite difference %.7g (tol %.3g)",
                  what, idx, g, fd, tol);
    return 1;
}

/* Checks dx and dparams of the backend b against finite differences (evaluated on the
 * reference backend) at up to npts input and parameter coordinates. */
static void fd_check(foolc_net *net, foolc_backend b, int32_t n, double xlo, double xhi,
                     double eps, int npts)
{
    const size_t d = in_size(net), k = (size_t)foolc_net_classes(net);
    const size_t P = (size_t)foolc_net_param_count(net);
    float *x = malloc(n * d * sizeof *x), *c = malloc(n * k * sizeof *c);
    float *lg = malloc(n * k * sizeof *lg), *dx = malloc(n * d * sizeof *dx);
    float *dp = malloc((P + 1) * sizeof *dp), *p = malloc((P + 1) * sizeof *p);
    fill(x, n * d, xlo, xhi);
    fill(c, n * k, -1, 1);
    lin_seed s = { .c = c };
    ck_ok(foolc_net_set_backend(net, b));
    ck_ok(foolc_net_grad(net, x, n, seed_lin, &s, lg, dx, dp));
    ck_assert_int_eq(s.calls, 1);
    ck_ok(foolc_net_set_backend(net, FOOLC_BACKEND_REFERENCE));
    double l0 = loss_of(net, x, n, c, lg);
    int checked = 0, tried = 0;
    double sx = max_abs(dx, n * d);
    for (int t = 0; t < npts && (size_t)t < n * d; t++) {
        size_t j = n * d <= (size_t)npts ? (size_t)t : (size_t)(urand() * (double)(n * d));
        float o = x[j];
        x[j] = (float)(o + eps);
        double lp = loss_of(net, x, n, c, lg);
        x[j] = (float)(o - eps);
        double lm = loss_of(net, x, n, c, lg);
        x[j] = o;
        checked += fd_point(dx[j], lp, l0, lm, eps, sx, "dx", j);
        tried++;
    }
    ck_assert_msg(checked * 2 >= tried, "only %d of %d input points away from kinks", checked,
                  tried);
    ck_ok(foolc_net_get_params(net, p));
    double sp = max_abs(dp, P);
    checked = tried = 0;
    for (int t = 0; t < npts && (size_t)t < P; t++) {
        size_t j = P <= (size_t)npts ? (size_t)t : (size_t)(urand() * (double)P);
        float o = p[j];
        p[j] = (float)(o + eps);
        ck_ok(foolc_net_set_params(net, p));
        double lp = loss_of(net, x, n, c, lg);
        p[j] = (float)(o - eps);
        ck_ok(foolc_net_set_params(net, p));
        double lm = loss_of(net, x, n, c, lg);
        p[j] = o;
        ck_ok(foolc_net_set_params(net, p));
        checked += fd_point(dp[j], lp, l0, lm, eps, sp, "dparams", j);
        tried++;
    }
    ck_assert_msg(checked * 2 >= tried, "only %d of %d parameter points away from kinks",
                  checked, tried);
    free(x), free(c), free(lg), free(dx), free(dp), free(p);
}

/* ---- gradients against finite differences ------------------------------------------- */

static const struct {
    const char *arch;
    double eps;
} k_layers[] = {
    { "input c=3 h=7 w=6; conv2d out=4 k=3 s=1 p=1", 1e-2 },
    { "input c=3 h=7 w=6; conv2d out=5 k=3 s=2 p=1", 1e-2 },
    { "input c=1 h=9 w=9; conv2d out=20 k=3 s=2", 1e-2 },
    { "input c=6 h=5 w=5; conv2d out=3 k=2 s=2", 1e-2 },
    { "input c=17 h=4 w=4; conv2d out=18 k=1", 1e-2 },
    { "input c=5 h=1 w=1; dense out=7", 1e-2 },
    { "input c=2 h=3 w=3; relu", 1e-2 },
    { "input c=3 h=6 w=6; maxpool2d k=2", 1e-2 },
    { "input c=2 h=7 w=7; maxpool2d k=3 s=2 p=1", 1e-2 },
    { "input c=3 h=6 w=6; avgpool2d k=2", 1e-2 },
    { "input c=2 h=7 w=7; avgpool2d k=3 s=2 p=1", 1e-2 },
    { "input c=2 h=3 w=3; flatten", 1e-2 },
    { "input c=3 h=4 w=4; batchnorm", 1e-2 },
    { "input c=6 h=1 w=1; softmax", 1e-3 },
};

static const char *const k_nets[] = {
    "input c=1 h=8 w=8; conv2d out=4 k=3 p=1; relu; maxpool2d k=2; flatten; dense out=5",
    "input c=1 h=4 w=4; flatten; dense out=16; relu; dense out=8; relu; dense out=3",
    "input c=2 h=6 w=6; conv2d out=8 k=3; batchnorm eps=0.001; relu; avgpool2d k=2; flatten; "
    "dense out=4",
    "input c=3 h=9 w=9; conv2d out=16 k=3 s=2 p=1; relu; conv2d out=16 k=3 p=1; "
    "avgpool2d k=3 s=2 p=1; flatten; dense out=4; softmax",
    "input c=2 h=10 w=10; maxpool2d k=2; conv2d out=17 k=3 p=1; relu; conv2d out=3 k=5",
};

/* Gives batchnorm layers non-trivial running statistics through an NPZ round trip. */
static foolc_net *with_random_stats(foolc_net *net)
{
    if (!strstr(foolc_net_arch(net), "batchnorm")) return net;
    char path[256];
    tu_tmpname(path, sizeof path, "bn.npz");
    ck_ok(foolc_net_save(net, path));
    foolc_npz *z = NULL;
    ck_ok(foolc_npz_read(path, &z));
    for (int32_t i = 0; i < foolc_npz_count(z); i++) {
        const char *name = foolc_npz_name(z, i);
        const foolc_array *a = foolc_npz_get(z, name);
        int var = strstr(name, "running_var") != NULL;
        int mean = strstr(name, "running_mean") != NULL;
        if (!var && !mean) continue;
        foolc_array b = *a;
        float *v = malloc((size_t)a->shape[0] * sizeof *v);
        for (int64_t j = 0; j < a->shape[0]; j++)
            v[j] = var ? (float)(0.2 + urand()) : (float)(urand() - 0.5);
        b.data = v;
        ck_ok(foolc_npz_add(z, name, &b));
        free(v);
    }
    foolc_net *out = NULL;
    ck_ok(foolc_net_from_npz(z, &out));
    foolc_npz_free(z);
    unlink(path);
    /* Random weights and biases too (batchnorm starts at 1 and 0). */
    size_t P = (size_t)foolc_net_param_count(out);
    float *p = malloc((P + 1) * sizeof *p);
    fill(p, P, -0.8, 0.8);
    ck_ok(foolc_net_set_params(out, p));
    free(p);
    foolc_net_free(net);
    return out;
}

START_TEST(test_layer_fd)
{
    foolc_net *net = with_random_stats(mknet(k_layers[_i].arch, 3));
    if (strstr(k_layers[_i].arch, "batchnorm") == NULL) {
        size_t P = (size_t)foolc_net_param_count(net);
        float *p = malloc((P + 1) * sizeof *p);
        fill(p, P, -0.5, 0.5);
        ck_ok(foolc_net_set_params(net, p));
        free(p);
    }
    for (int b = 0; b < FOOLC_BACKEND_COUNT; b++)
        fd_check(net, (foolc_backend)b, 2, -1, 1, k_layers[_i].eps, 40);
    foolc_net_free(net);
}
END_TEST

START_TEST(test_net_fd)
{
    foolc_net *net = with_random_stats(mknet(k_nets[_i], 5));
    for (int b = 0; b < FOOLC_BACKEND_COUNT; b++)
        fd_check(net, (foolc_backend)b, 3, 0, 1, 1e-3, 40);
    foolc_net_free(net);
}
END_TEST

/* ---- FAST against REFERENCE --------------------------------------------------------- */

static void assert_close(const float *a, const float *b, size_t n, double rtol, const char *what,
                         int32_t batch)
{
    double s = max_abs(b, n), m = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > m) m = fabs((double)a[i] - b[i]), at = i;
    ck_assert_msg(m <= rtol * s + 1e-6, "%s (n=%d): FAST %.8g vs REFERENCE %.8g at %zu (max %.3g)",
                  what, (int)batch, n ? a[at] : 0.0, n ? b[at] : 0.0, at, s);
}

static void compare_backends(foolc_net *net, int32_t n)
{
    const size_t d = in_size(net), k = (size_t)foolc_net_classes(net);
    const size_t P = (size_t)foolc_net_param_count(net);
    float *x = malloc(n * d * sizeof *x), *c = malloc(n * k * sizeof *c);
    float *l[3], *dx[2], *dp[2];
    for (int i = 0; i < 3; i++) l[i] = malloc(n * k * sizeof(float));
    for (int i = 0; i < 2; i++) {
        dx[i] = malloc(n * d * sizeof(float));
        dp[i] = malloc((P + 1) * sizeof(float));
    }
    fill(x, n * d, 0, 1);
    fill(c, n * k, -1, 1);
    /* Input gradient only (the attack path), first, so that it gets a plan of its own
     * (a plan for dx and dparams would serve it otherwise). */
    float *dxo = malloc(n * d * sizeof *dxo);
    lin_seed so = { .c = c };
    ck_ok(foolc_net_set_backend(net, FOOLC_BACKEND_FAST));
    ck_ok(foolc_net_grad(net, x, n, seed_lin, &so, NULL, dxo, NULL));
    for (int b = 0; b < 2; b++) {
        lin_seed s = { .c = c };
        ck_ok(foolc_net_set_backend(net, b ? FOOLC_BACKEND_REFERENCE : FOOLC_BACKEND_FAST));
        ck_ok(foolc_net_grad(net, x, n, seed_lin, &s, l[b], dx[b], dp[b]));
        ck_assert_int_eq(s.calls, 1);
    }
    ck_ok(foolc_net_set_backend(net, FOOLC_BACKEND_FAST));
    ck_ok(foolc_net_forward(net, x, n, l[2]));
    assert_close(l[0], l[1], n * k, 1e-5, "logits (grad)", n);
    assert_close(l[2], l[1], n * k, 1e-5, "logits (forward)", n);
    assert_close(dx[0], dx[1], n * d, 1e-4, "dx", n);
    assert_close(dp[0], dp[1], P, 1e-4, "dparams", n);
    assert_close(dxo, dx[1], n * d, 1e-4, "dx (own plan)", n);
    /* And from the plan for both. */
    lin_seed s = { .c = c };
    ck_ok(foolc_net_grad(net, x, n, seed_lin, &s, NULL, dx[0], NULL));
    assert_close(dx[0], dx[1], n * d, 1e-4, "dx (no dparams)", n);
    free(x), free(c), free(dxo);
    for (int i = 0; i < 3; i++) free(l[i]);
    for (int i = 0; i < 2; i++) free(dx[i]), free(dp[i]);
}

static const char *const k_cmp[] = {
    "input c=1 h=12 w=12; conv2d out=16 k=3 p=1; relu; maxpool2d k=2; conv2d out=32 k=3 p=1; "
    "relu; maxpool2d k=2; flatten; dense out=24; relu; dense out=10",
    "input c=3 h=11 w=11; conv2d out=20 k=3 s=2 p=1; relu; batchnorm; conv2d out=7 k=3; "
    "avgpool2d k=2; flatten; dense out=5",
    "input c=2 h=8 w=8; relu; maxpool2d k=3 s=2 p=1; conv2d out=16 k=3 p=1; flatten; dense out=4",
    "input c=1 h=6 w=6; flatten; dense out=12; relu; dense out=3; softmax",
    "input c=4 h=5 w=5; conv2d out=3 k=5",
    /* Tensors large enough (at n = 17) for the oneDNN relu and the relu mask in the pool. */
    "input c=4 h=64 w=64; relu; maxpool2d k=2; flatten; dense out=3",
    "input c=1 h=16 w=16; conv2d out=64 k=3 p=1; relu; maxpool2d k=2; conv2d out=16 k=3 p=1; "
    "relu; avgpool2d k=2; flatten; dense out=3",
    /* First layers for the thin input-gradient rule: taps beyond 16, channels beyond a
     * whole block, no padding, non-square. */
    "input c=3 h=9 w=7; conv2d out=20 k=5 p=2; relu; flatten; dense out=3",
    "input c=2 h=8 w=10; conv2d out=40 k=3; maxpool2d k=2; flatten; dense out=4",
    /* conv, relu, max pool chains: odd sizes (a row and column outside every window),
     * k = 3 windows, stride 2, channel counts off whole blocks, an overlapping pool. */
    "input c=3 h=13 w=11; conv2d out=20 k=3 p=1; relu; conv2d out=24 k=3 p=1; relu; "
    "maxpool2d k=2; conv2d out=17 k=3 s=2 p=1; relu; maxpool2d k=3; flatten; dense out=5",
    "input c=1 h=12 w=12; conv2d out=16 k=3; relu; conv2d out=16 k=5 p=2; relu; "
    "maxpool2d k=3 s=2; flatten; dense out=3",
};

START_TEST(test_fast_vs_reference)
{
    foolc_net *net = with_random_stats(mknet(k_cmp[_i], 11));
    static const int32_t sizes[] = { 1, 3, 17, 3, 1, 17 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) compare_backends(net, sizes[i]);
    foolc_net_free(net);
}
END_TEST

/* More batch sizes than the plan cache holds, then back: results stay right. */
START_TEST(test_plan_cache)
{
    foolc_net *net = mknet(k_cmp[0], 2);
    const size_t d = in_size(net), k = 10;
    static float x[20 * 144], l1[20 * 10], l2[10];
    fill(x, 20 * d, 0, 1);
    for (int32_t n = 1; n <= 20; n++) {
        ck_ok(foolc_net_forward(net, x, n, l1));
        for (int32_t i = 0; i < n; i += 7) {
            ck_ok(foolc_net_forward(net, x + (size_t)i * d, 1, l2));
            assert_close(l1 + (size_t)i * k, l2, k, 1e-5, "logits of one image in a batch", n);
        }
    }
    /* n above the forward chunk size. */
    float *xb = malloc(300 * d * sizeof *xb), *lb = malloc(300 * k * sizeof *lb);
    fill(xb, 300 * d, 0, 1);
    ck_ok(foolc_net_forward(net, xb, 300, lb));
    ck_ok(foolc_net_forward(net, xb + 299 * d, 1, l2));
    assert_close(lb + 299 * k, l2, k, 1e-5, "logits past the chunk size", 300);
    free(xb), free(lb);
    foolc_net_free(net);
}
END_TEST

/* Random architectures (every layer kind, strides, paddings, odd channel counts, layers
 * in any order): FAST and REFERENCE agree on logits, dx and dparams, or the architecture
 * is rejected with a message. */
START_TEST(test_random_archs)
{
    uint64_t keep = g_rng;
    g_rng = 2024;
    int built = 0;
    for (int it = 0; it < 300; it++) {
        char a[1024];
        size_t len = (size_t)snprintf(a, sizeof a, "input c=%d h=%d w=%d", 1 + (int)(urand() * 4),
                                      1 + (int)(urand() * 12), 1 + (int)(urand() * 12));
        int L = 1 + (int)(urand() * 7);
        for (int i = 0; i < L && len < sizeof a - 64; i++) {
            int r1 = 1 + (int)(urand() * 20), r2 = 1 + (int)(urand() * 4);
            int r3 = 1 + (int)(urand() * 3), r4 = (int)(urand() * 3);
            char *e = a + len;
            size_t room = sizeof a - len;
            switch ((int)(urand() * 8)) {
            case 0: snprintf(e, room, "; conv2d out=%d k=%d s=%d p=%d", r1, r2, r3, r4); break;
            case 1: snprintf(e, room, "; flatten; dense out=%d", r1); break;
            case 2: snprintf(e, room, "; relu"); break;
            case 3: snprintf(e, room, "; maxpool2d k=%d s=%d p=%d", r2, r3, r4 % 2); break;
            case 4: snprintf(e, room, "; avgpool2d k=%d s=%d p=%d", r2, r3, r4 % 2); break;
            case 5: snprintf(e, room, "; flatten"); break;
            case 6: snprintf(e, room, "; batchnorm"); break;
            default: snprintf(e, room, "; flatten; softmax"); break;
            }
            len += strlen(e);
        }
        foolc_net *net = NULL;
        foolc_status st = foolc_net_new(a, (uint64_t)it, &net);
        if (st != FOOLC_OK) {
            ck_assert_msg(st == FOOLC_E_INVALID && !net &&
                              strncmp(foolc_errmsg(), "net: ", 5) == 0,
                          "%s: %d %s", a, (int)st, foolc_errmsg());
            continue;
        }
        built++;
        compare_backends(net, 1 + it % 3);
        foolc_net_free(net);
    }
    ck_assert_msg(built >= 100, "only %d of 300 random architectures were valid", built);
    g_rng = keep;
}
END_TEST

/* Once a batch size has been seen, forward and gradient calls allocate nothing. */
START_TEST(test_hot_path_no_alloc)
{
    foolc_net *net = mknet(k_cmp[_i], 2);
    const size_t d = in_size(net), k = (size_t)foolc_net_classes(net);
    const size_t P = (size_t)foolc_net_param_count(net);
    float *x = malloc(16 * d * sizeof *x), *dx = malloc(16 * d * sizeof *dx);
    float *dp = malloc(P * sizeof *dp), *lg = malloc(16 * k * sizeof *lg), *c = malloc(16 * k * 4);
    fill(x, 16 * d, 0, 1);
    fill(c, 16 * k, -1, 1);
    for (int b = 0; b < FOOLC_BACKEND_COUNT; b++) {
        ck_ok(foolc_net_set_backend(net, (foolc_backend)b));
        for (int rep = 0; rep < 2; rep++) {
            if (rep == 1) foolc__alloc_fail_at(0); /* resets the count */
            for (int32_t n = 1; n <= 16; n += 15) {
                lin_seed s = { .c = c };
                ck_ok(foolc_net_forward(net, x, n, lg));
                ck_ok(foolc_net_grad(net, x, n, seed_lin, &s, lg, dx, NULL));
                ck_ok(foolc_net_grad(net, x, n, seed_lin, &s, lg, dx, dp));
            }
        }
        ck_assert_uint_eq(foolc__alloc_fail_at(0), 0);
    }
    free(x), free(dx), free(dp), free(lg), free(c);
    foolc_net_free(net);
}
END_TEST

/* A child forked after the parent ran the net on oneDNN's OpenMP threads computes the same
 * logits and does not hang (libgomp's pool does not survive fork; such a child computes
 * with the reference backend). */
static void check_after_fork(const char *arch, const char *what)
{
    foolc_net *net = mknet(arch, 3);
    const size_t d = in_size(net), k = (size_t)foolc_net_classes(net);
    float *x = malloc(32 * d * sizeof *x), *z = malloc(32 * k * sizeof *z);
    float *c = malloc(32 * k * sizeof *c), *dx = malloc(32 * d * sizeof *dx);
    fill(x, 32 * d, 0, 1);
    fill(c, 32 * k, -1, 1);
    lin_seed sd = {c, 0, 0, {0}, 0, 0};
    ck_ok(foolc_net_forward(net, x, 32, z));
    ck_ok(foolc_net_grad(net, x, 32, seed_lin, &sd, NULL, dx, NULL));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        float *z2 = malloc(32 * k * sizeof *z2), *dx2 = malloc(32 * d * sizeof *dx2);
        int bad = !z2 || !dx2 || foolc_net_forward(net, x, 32, z2) != FOOLC_OK ||
                  foolc_net_grad(net, x, 32, seed_lin, &sd, NULL, dx2, NULL) != FOOLC_OK;
        for (size_t i = 0; !bad && i < 32 * k; i++)
            bad = fabsf(z2[i] - z[i]) > 1e-4f * (1 + fabsf(z[i]));
        for (size_t i = 0; !bad && i < 32 * d; i++)
            bad = 2 * (fabsf(dx2[i] - dx[i]) > 1e-4f * (1 + fabsf(dx[i])));
        /* Everything freed, so that a leak checker in the child (valgrind follows forks
         * under make memcheck) has nothing to report. */
        free(z2), free(dx2), free(x), free(z), free(c), free(dx);
        foolc_net_free(net);
        _exit(bad);
    }
    int status = 0;
    pid_t got = 0;
    for (int t = 0; t < 600 && got == 0; t++) {   /* up to 30 s */
        got = waitpid(pid, &status, WNOHANG);
        if (got == 0) nanosleep(&(struct timespec){ 0, 50000000L }, NULL);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        ck_abort_msg("forked child hung in %s", what);
    }
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked child: %s gave "
                  "wrong %s", what, WEXITSTATUS(status) == 2 ? "input gradients" : "logits");
    free(x), free(z), free(c), free(dx);
    foolc_net_free(net);
}

START_TEST(test_dense_after_fork)
{
    /* Big enough for oneDNN to split the products over its threads. */
    check_after_fork("input c=1 h=28 w=28; flatten; dense out=256; relu; dense out=5",
                     "a dense layer");
}
END_TEST

START_TEST(test_conv_after_fork)
{
    /* Average pooling: max pooling over ReLU's ties at zero may route gradients to another
     * (equal) input in each backend. */
    check_after_fork("input c=1 h=28 w=28; conv2d out=16 k=3 p=1; relu; avgpool2d k=2; "
                     "conv2d out=32 k=3 p=1; relu; avgpool2d k=2; flatten; dense out=10",
                     "a convolution");
}
END_TEST

/* ---- architecture text -------------------------------------------------------------- */

static const struct {
    const char *arch, *msg;
} k_bad[] = {
    { "conv2d out=3 k=3", "first layer must be 'input" },
    { "", "empty" },
    { " ; \n # only a comment", "empty" },
    { "input c=1 h=4 w=4", "no layers" },
    { "input c=1 h=4; relu", "input: missing option 'w'" },
    { "input c=0 h=4 w=4; relu", "input: option 'c' must be" },
    { "input c=1 h=4 w=4 d=2; relu", "input: unknown option 'd'" },
    { "input c=1 h=4 w=4; conv3d out=2", "layer 0: unknown layer 'conv3d'" },
    { "input c=1 h=4 w=4; relu; conv2d out=2 k=3 q=1", "layer 1 (conv2d): unknown option 'q'" },
    { "input c=1 h=4 w=4; conv2d k=3", "layer 0 (conv2d): missing option 'out'" },
    { "input c=1 h=4 w=4; conv2d out=0 k=3", "option 'out' must be an integer in [1" },
    { "input c=1 h=4 w=4; conv2d out=2 k=x", "option 'k' must be an integer" },
    { "input c=1 h=4 w=4; conv2d out=2 k=-3", "option 'k' must be an integer" },
    { "input c=1 h=4 w=4; conv2d out=2 k=3 k=3", "option 'k' given twice" },
    { "input c=1 h=4 w=4; conv2d out=2 k=7", "kernel k=7 is larger than the padded input 4x4" },
    { "input c=1 h=4 w=4; conv2d out=2 k=3 p=3", "padding p=3 must be smaller" },
    { "input c=1 h=4 w=4; maxpool2d k=5", "kernel k=5 is larger" },
    { "input c=1 h=4 w=4; avgpool2d k=2 p=2", "at most half the kernel" },
    { "input c=1 h=4 w=4; dense out=3", "layer 0 (dense): input is 1x4x4, not flat" },
    { "input c=1 h=4 w=4; softmax", "layer 0 (softmax): input is 1x4x4, not flat" },
    { "input c=1 h=4 w=4; relu; batchnorm eps=-1", "option 'eps' must be a positive number" },
    { "input c=1 h=4 w=4; relu; batchnorm eps=nan", "option 'eps' must be a positive number" },
    { "input c=1 h=4 w=4; flatten extra", "layer 0 (flatten): expected key=value, got 'extra'" },
    { "input c=1 h=4 w=4; relu; input c=1 h=1 w=1", "layer 1: 'input' may only be the first" },
    { "input c=1 h=4 w=4; maxpool2d k=2; maxpool2d k=2; maxpool2d k=2",
      "layer 2 (maxpool2d): kernel k=2 is larger than the padded input 1x1" },
    { "input c=1048576 h=1048576 w=1; relu", "too large" },
};

START_TEST(test_bad_arch)
{
    foolc_net *net = (foolc_net *)&net;
    ck_status(foolc_net_new(k_bad[_i].arch, 1, &net), FOOLC_E_INVALID);
    ck_assert_ptr_null(net);
    ck_assert_msg(strstr(foolc_errmsg(), k_bad[_i].msg) != NULL, "'%s': message '%s' lacks '%s'",
                  k_bad[_i].arch, foolc_errmsg(), k_bad[_i].msg);
    ck_assert_msg(strncmp(foolc_errmsg(), "net: ", 5) == 0, "message: %s", foolc_errmsg());
}
END_TEST

/* The presets: each builds, has the documented parameter count, input and classes; unknown
 * names and NULL give NULL. */
START_TEST(test_presets)
{
    static const struct { const char *name; int64_t params; int graph; } k[] = {
        {"cnn", 320 + 18496 + 401536 + 1290, 0},
        {"mlp", 200960 + 65792 + 2570, 0},
        {"resnet", 108010, 1},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const char *text = foolc_net_preset(k[i].name);
        ck_assert_msg(text != NULL, "%s", k[i].name);
        foolc_net *net = mknet(text, 3);
        ck_assert_int_eq(foolc_net_param_count(net), k[i].params);
        ck_assert_int_eq(foolc_net_classes(net), 10);
        foolc_shape s = foolc_net_input(net);
        ck_assert(s.c == 1 && s.h == 28 && s.w == 28);
        ck_assert_int_eq(strstr(foolc_net_arch(net), " = ") != NULL, k[i].graph);
        foolc_net_free(net);
    }
    ck_assert_ptr_null(foolc_net_preset("vgg"));
    ck_assert_ptr_null(foolc_net_preset("CNN"));
    ck_assert_ptr_null(foolc_net_preset(NULL));
}
END_TEST

START_TEST(test_arch_text)
{
    ck_status(foolc_net_new(NULL, 1, NULL), FOOLC_E_INVALID);
    foolc_net *net = NULL;
    ck_status(foolc_net_new(NULL, 1, &net), FOOLC_E_INVALID);
    net = mknet("  input c=1 h=4 w=4   # a comment; conv2d out=3\n\n"
                "flatten ;dense out=2# trailing\r\n;;", 1);
    ck_assert_str_eq(foolc_net_arch(net), "input c=1 h=4 w=4; flatten; dense out=2");
    foolc_net_free(net);
    net = mknet("input c=1 h=28 w=28; conv2d out=32 k=3 p=1; relu; maxpool2d k=2; "
                "conv2d out=64 k=3 p=1; relu; maxpool2d k=2; flatten; dense out=128; relu; "
                "dense out=10", 1);
    const char *canon = "input c=1 h=28 w=28; conv2d out=32 k=3 s=1 p=1; relu; "
                        "maxpool2d k=2 s=2 p=0; conv2d out=64 k=3 s=1 p=1; relu; "
                        "maxpool2d k=2 s=2 p=0; flatten; dense out=128; relu; dense out=10";
    ck_assert_str_eq(foolc_net_arch(net), canon);
    ck_assert_int_eq(foolc_net_classes(net), 10);
    ck_assert_int_eq(foolc_net_param_count(net), 320 + 18496 + 401536 + 1290);
    ck_assert(fabs(foolc_net_flops(net) - 8482304.0) < 0.5);
    foolc_shape s = foolc_net_input(net);
    ck_assert(s.n == 0 && s.c == 1 && s.h == 28 && s.w == 28);
    float lo = -1, hi = -1;
    foolc_net_bounds(net, &lo, &hi);
    ck_assert(lo == 0.0f && hi == 1.0f);
    foolc_net *again = mknet(foolc_net_arch(net), 1);
    ck_assert_str_eq(foolc_net_arch(again), canon);
    foolc_net_free(again);
    foolc_net_free(net);
    net = mknet("input c=2 h=5 w=5; batchnorm eps=0.001; relu; batchnorm", 1);
    ck_assert_str_eq(foolc_net_arch(net),
                     "input c=2 h=5 w=5; batchnorm eps=0.001; relu; batchnorm eps=1e-05");
    ck_assert_int_eq(foolc_net_classes(net), 50);
    foolc_net_free(net);
    foolc_net_free(NULL);
    ck_assert_str_eq(foolc_net_arch(NULL), "");
    ck_assert_int_eq(foolc_net_classes(NULL), 0);
}
END_TEST

/* Kaiming-uniform bounds 1/sqrt(fan_in), deterministic per seed. */
START_TEST(test_init)
{
    const char *arch = "input c=4 h=8 w=8; conv2d out=32 k=3; flatten; dense out=50";
    foolc_net *a = mknet(arch, 7), *b = mknet(arch, 7), *c = mknet(arch, 8);
    const size_t P = (size_t)foolc_net_param_count(a);
    float *pa = malloc(P * sizeof *pa), *pb = malloc(P * sizeof *pb), *pc = malloc(P * sizeof *pc);
    ck_ok(foolc_net_get_params(a, pa));
    ck_ok(foolc_net_get_params(b, pb));
    ck_ok(foolc_net_get_params(c, pc));
    ck_assert(memcmp(pa, pb, P * sizeof *pa) == 0);
    ck_assert(memcmp(pa, pc, P * sizeof *pa) != 0);
    const size_t nw0 = 32 * 4 * 9, nb0 = 32, nw1 = 50 * 32 * 36, nb1 = 50;
    ck_assert_uint_eq(P, nw0 + nb0 + nw1 + nb1);
    const double b0 = 1 / sqrt(36.0), b1 = 1 / sqrt(32.0 * 36);
    double s2 = 0;
    for (size_t i = 0; i < nw0 + nb0; i++) ck_assert(fabs(pa[i]) <= b0);
    for (size_t i = 0; i < nw0; i++) s2 += (double)pa[i] * pa[i];
    ck_assert(fabs(sqrt(s2 / nw0) - b0 / sqrt(3.0)) < 0.1 * b0);
    for (size_t i = nw0 + nb0; i < P; i++) ck_assert(fabs(pa[i]) <= b1);
    free(pa), free(pb), free(pc);
    foolc_net_free(a), foolc_net_free(b), foolc_net_free(c);
}
END_TEST

/* ---- model files -------------------------------------------------------------------- */

static void logits_of(foolc_net *net, const float *x, int32_t n, float *out)
{
    ck_ok(foolc_net_forward(net, x, n, out));
}

START_TEST(test_save_load)
{
    const char *arch = k_nets[2];
    foolc_net *net = with_random_stats(mknet(arch, 9));
    char path[256];
    tu_tmpname(path, sizeof path, "net.npz");
    ck_ok(foolc_net_save(net, path));
    foolc_net *back = NULL;
    ck_ok(foolc_net_load(path, &back));
    ck_assert_str_eq(foolc_net_arch(back), foolc_net_arch(net));
    const size_t P = (size_t)foolc_net_param_count(net);
    ck_assert_int_eq(foolc_net_param_count(back), (int64_t)P);
    float *p1 = malloc(P * sizeof *p1), *p2 = malloc(P * sizeof *p2);
    ck_ok(foolc_net_get_params(net, p1));
    ck_ok(foolc_net_get_params(back, p2));
    ck_assert(memcmp(p1, p2, P * sizeof *p1) == 0);
    const size_t d = in_size(net), k = (size_t)foolc_net_classes(net);
    float x[5 * 72], l1[5 * 4], l2[5 * 4];
    fill(x, 5 * d, 0, 1);
    for (int b = 0; b < FOOLC_BACKEND_COUNT; b++) {
        ck_ok(foolc_net_set_backend(net, (foolc_backend)b));
        ck_ok(foolc_net_set_backend(back, (foolc_backend)b));
        logits_of(net, x, 5, l1);
        logits_of(back, x, 5, l2);
        ck_assert(memcmp(l1, l2, 5 * k * sizeof *l1) == 0);
    }
    /* The file is what numpy would read: an "arch" uint8 array and float32 weights. */
    foolc_npz *z = NULL;
    ck_ok(foolc_npz_read(path, &z));
    const foolc_array *a = foolc_npz_get(z, "arch");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->dtype, FOOLC_U8);
    ck_assert_int_eq(a->shape[0], (int64_t)strlen(foolc_net_arch(net)));
    a = foolc_npz_get(z, "0.weight");
    ck_assert(a && a->dtype == FOOLC_F32 && a->ndim == 4 && a->shape[0] == 8 &&
              a->shape[1] == 2 && a->shape[2] == 3 && a->shape[3] == 3);
    a = foolc_npz_get(z, "5.weight");
    ck_assert(a && a->ndim == 2 && a->shape[0] == 4 && a->shape[1] == 32);
    ck_assert_ptr_nonnull(foolc_npz_get(z, "1.running_var"));
    foolc_npz_free(z);
    foolc_net_free(back);
    ck_status(foolc_net_load("/nonexistent/net.npz", &back), FOOLC_E_IO);
    ck_assert_ptr_null(back);
    ck_status(foolc_net_save(NULL, path), FOOLC_E_INVALID);
    unlink(path);
    free(p1), free(p2);
    foolc_net_free(net);
}
END_TEST

/* An archive holding net's members, for corrupting. */
static foolc_npz *npz_of(foolc_net *net)
{
    char path[256];
    tu_tmpname(path, sizeof path, "src.npz");
    ck_ok(foolc_net_save(net, path));
    foolc_npz *z = NULL;
    ck_ok(foolc_npz_read(path, &z));
    unlink(path);
    return z;
}

/* Copies z without the member skip (NULL: none). */
static foolc_npz *npz_without(const foolc_npz *z, const char *skip)
{
    foolc_npz *o = NULL;
    ck_ok(foolc_npz_new(&o));
    for (int32_t i = 0; i < foolc_npz_count(z); i++) {
        const char *name = foolc_npz_name(z, i);
        if (skip && strcmp(name, skip) == 0) continue;
        ck_ok(foolc_npz_add(o, name, foolc_npz_get(z, name)));
    }
    return o;
}

static void expect_npz_error(foolc_npz *z, foolc_status want, const char *msg)
{
    foolc_net *net = (foolc_net *)&net;
    ck_status(foolc_net_from_npz(z, &net), want);
    ck_assert_ptr_null(net);
    ck_assert_msg(strstr(foolc_errmsg(), msg) != NULL, "message '%s' lacks '%s'", foolc_errmsg(),
                  msg);
    foolc_npz_free(z);
}

START_TEST(test_bad_npz)
{
    foolc_net *net = mknet(k_nets[2], 4);
    foolc_npz *z = npz_of(net);
    float junk[1024];
    fill(junk, 1024, -1, 1);
    foolc_array a;

    expect_npz_error(npz_without(z, "0.weight"), FOOLC_E_FORMAT,
                     "member '0.weight' missing (conv2d layer 0 needs shape (8, 2, 3, 3))");
    expect_npz_error(npz_without(z, "1.running_mean"), FOOLC_E_FORMAT,
                     "member '1.running_mean' missing");
    expect_npz_error(npz_without(z, "arch"), FOOLC_E_FORMAT, "member 'arch'");

    foolc_npz *y = npz_without(z, NULL);
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_F32, a.ndim = 4, a.data = junk;
    a.shape[0] = 8, a.shape[1] = 2, a.shape[2] = 5, a.shape[3] = 5;
    ck_ok(foolc_npz_add(y, "0.weight", &a));
    expect_npz_error(y, FOOLC_E_FORMAT,
                     "member '0.weight' has shape (8, 2, 5, 5), expected (8, 2, 3, 3)");

    y = npz_without(z, NULL);
    a.ndim = 2, a.shape[0] = 4, a.shape[1] = 32;
    ck_ok(foolc_npz_add(y, "5.bias", &a));
    expect_npz_error(y, FOOLC_E_FORMAT, "member '5.bias' has shape (4, 32), expected (4,)");

    y = npz_without(z, NULL);
    a.ndim = 1, a.shape[0] = 3;
    ck_ok(foolc_npz_add(y, "extra", &a));
    expect_npz_error(y, FOOLC_E_FORMAT, "unexpected member 'extra'");

    y = npz_without(z, NULL);
    ck_ok(foolc_npz_add(y, "7.weight", &a));
    expect_npz_error(y, FOOLC_E_FORMAT, "unexpected member '7.weight'");

    y = npz_without(z, NULL);
    ck_ok(foolc_npz_add(y, "2.weight", &a)); /* relu has no weights */
    expect_npz_error(y, FOOLC_E_FORMAT, "unexpected member '2.weight'");

    y = npz_without(z, NULL);
    int32_t ib[8] = { 0 };
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_I32, a.ndim = 1, a.shape[0] = 8, a.data = ib;
    ck_ok(foolc_npz_add(y, "0.bias", &a));
    expect_npz_error(y, FOOLC_E_FORMAT, "member '0.bias' has dtype int32");

    y = npz_without(z, NULL);
    float neg[8] = { 1, 1, 1, -1, 1, 1, 1, 1 };
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_F32, a.ndim = 1, a.shape[0] = 8, a.data = neg;
    ck_ok(foolc_npz_add(y, "1.running_var", &a));
    expect_npz_error(y, FOOLC_E_FORMAT, "negative or non-finite variance");

    y = npz_without(z, NULL);
    float bad_bounds[2] = { 1, 0 };
    a.shape[0] = 2, a.data = bad_bounds;
    ck_ok(foolc_npz_add(y, "bounds", &a));
    expect_npz_error(y, FOOLC_E_FORMAT, "member 'bounds'");

    y = npz_without(z, NULL);
    const char *text = "input c=2 h=6 w=6; conv2d out=8 k=3 q=1";
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_U8, a.ndim = 1, a.shape[0] = (int64_t)strlen(text), a.data = (void *)text;
    ck_ok(foolc_npz_add(y, "arch", &a));
    expect_npz_error(y, FOOLC_E_FORMAT, "member 'arch': net: layer 0 (conv2d): unknown option");

    y = npz_without(z, NULL);
    float f[4] = { 0 };
    a.dtype = FOOLC_F32, a.shape[0] = 4, a.data = f;
    ck_ok(foolc_npz_add(y, "arch", &a));
    expect_npz_error(y, FOOLC_E_FORMAT, "member 'arch' has dtype float32");

    /* Accepted: a PyTorch BatchNorm counter, float64 weights, UCS-4 text, bounds. */
    y = npz_without(z, NULL);
    int64_t cnt = 12;
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_I64, a.ndim = 0, a.data = &cnt;
    ck_ok(foolc_npz_add(y, "1.num_batches_tracked", &a));
    const foolc_array *w4 = foolc_npz_get(z, "5.weight");
    double *w64 = malloc(128 * sizeof *w64);
    for (int i = 0; i < 128; i++) w64[i] = ((const float *)w4->data)[i];
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_F64, a.ndim = 2, a.shape[0] = 4, a.shape[1] = 32, a.data = w64;
    ck_ok(foolc_npz_add(y, "5.weight", &a));
    const char *arch = foolc_net_arch(net);
    uint32_t *ucs = malloc((strlen(arch) + 3) * sizeof *ucs);
    for (size_t i = 0; i < strlen(arch); i++) ucs[i] = (unsigned char)arch[i];
    ucs[strlen(arch)] = ucs[strlen(arch) + 1] = 0;
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_U32, a.ndim = 1, a.shape[0] = (int64_t)strlen(arch) + 2, a.data = ucs;
    ck_ok(foolc_npz_add(y, "arch", &a));
    float bounds[2] = { -1, 2 };
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_F32, a.ndim = 1, a.shape[0] = 2, a.data = bounds;
    ck_ok(foolc_npz_add(y, "bounds", &a));
    foolc_net *ok = NULL;
    ck_ok(foolc_net_from_npz(y, &ok));
    float lo, hi;
    foolc_net_bounds(ok, &lo, &hi);
    ck_assert(lo == -1.0f && hi == 2.0f);
    float x[72], l1[4], l2[4];
    fill(x, 72, 0, 1);
    logits_of(net, x, 1, l1);
    logits_of(ok, x, 1, l2);
    ck_assert(memcmp(l1, l2, sizeof l1) == 0);
    foolc_net_free(ok);
    free(w64), free(ucs);
    foolc_npz_free(y);

    ck_status(foolc_net_from_npz(NULL, &ok), FOOLC_E_INVALID);
    ck_status(foolc_net_from_npz(z, NULL), FOOLC_E_INVALID);
    foolc_npz_free(z);
    foolc_net_free(net);
}
END_TEST

/* ---- the gradient call and the oracle ----------------------------------------------- */

START_TEST(test_grad_seed)
{
    foolc_net *net = mknet(k_nets[0], 1);
    float x[4 * 64], c[4 * 5], lg[4 * 5], lf[4 * 5], dx[4 * 64], dx2[4 * 64];
    fill(x, 4 * 64, 0, 1);
    fill(c, 4 * 5, -1, 1);
    for (int b = 0; b < FOOLC_BACKEND_COUNT; b++) {
        ck_ok(foolc_net_set_backend(net, (foolc_backend)b));
        lin_seed s = { .c = c };
        ck_ok(foolc_net_forward(net, x, 4, lf));
        ck_ok(foolc_net_grad(net, x, 4, seed_lin, &s, lg, dx, NULL));
        ck_assert_int_eq(s.calls, 1);
        ck_assert(s.n == 4 && s.k == 5);
        ck_assert(memcmp(s.logits, lg, sizeof lg) == 0); /* the seed saw this pass's logits */
        ck_assert(memcmp(lf, lg, sizeof lg) == 0);
        /* No outputs wanted: the seed is still called once. */
        lin_seed s0 = { .c = c };
        ck_ok(foolc_net_grad(net, x, 4, seed_lin, &s0, NULL, NULL, NULL));
        ck_assert_int_eq(s0.calls, 1);
        /* A failing seed stops the call before the backward pass. */
        lin_seed s1 = { .c = c, .ret = 7 };
        memset(dx2, 0x7f, sizeof dx2);
        ck_status(foolc_net_grad(net, x, 4, seed_lin, &s1, lg, dx2, NULL), FOOLC_E_ORACLE);
        ck_assert_int_eq(s1.calls, 1);
        ck_assert(strstr(foolc_errmsg(), "seed") != NULL);
        for (size_t i = 0; i < 4 * 64; i++) ck_assert(dx2[i] != dx2[i] || dx2[i] > 1e30f);
    }
    ck_status(foolc_net_grad(net, x, 0, seed_lin, NULL, lg, dx, NULL), FOOLC_E_INVALID);
    ck_status(foolc_net_grad(net, NULL, 4, seed_lin, NULL, lg, dx, NULL), FOOLC_E_INVALID);
    ck_status(foolc_net_grad(net, x, 4, NULL, NULL, lg, dx, NULL), FOOLC_E_INVALID);
    ck_status(foolc_net_grad(NULL, x, 4, seed_lin, NULL, lg, dx, NULL), FOOLC_E_INVALID);
    ck_status(foolc_net_forward(net, x, -1, lg), FOOLC_E_INVALID);
    ck_status(foolc_net_forward(net, x, 1, NULL), FOOLC_E_INVALID);
    ck_status(foolc_net_set_backend(net, FOOLC_BACKEND_COUNT), FOOLC_E_INVALID);
    ck_status(foolc_net_get_params(net, NULL), FOOLC_E_INVALID);
    ck_status(foolc_net_set_params(NULL, x), FOOLC_E_INVALID);
    foolc_net_free(net);
}
END_TEST

START_TEST(test_oracle)
{
    foolc_net *net = mknet(k_nets[0], 1);
    foolc_oracle o;
    ck_ok(foolc_net_oracle(net, 32, &o));
    ck_assert_uint_eq(o.version, FOOLC_ORACLE_VERSION);
    ck_assert(o.input.n == 32 && o.input.c == 1 && o.input.h == 8 && o.input.w == 8);
    ck_assert_int_eq(o.n_classes, 5);
    ck_assert(o.lo == 0.0f && o.hi == 1.0f && o.user == net);
    ck_assert(o.scores && o.value_and_grad && !o.decision);
    float x[3 * 64], c[15], l1[15], l2[15], g1[3 * 64], g2[3 * 64];
    fill(x, 3 * 64, 0, 1);
    fill(c, 15, -1, 1);
    ck_assert_int_eq(o.scores(o.user, x, 3, l1), 0);
    ck_ok(foolc_net_forward(net, x, 3, l2));
    ck_assert(memcmp(l1, l2, sizeof l1) == 0);
    lin_seed s = { .c = c };
    ck_assert_int_eq(o.value_and_grad(o.user, x, 3, seed_lin, &s, l1, g1), 0);
    ck_ok(foolc_net_grad(net, x, 3, seed_lin, &s, l2, g2, NULL));
    ck_assert(memcmp(g1, g2, sizeof g1) == 0);
    lin_seed bad = { .c = c, .ret = 1 };
    ck_assert_int_ne(o.value_and_grad(o.user, x, 3, seed_lin, &bad, l1, g1), 0);
    ck_status(foolc_net_oracle(net, 0, &o), FOOLC_E_INVALID);
    foolc_net_free(net);
    net = mknet("input c=1 h=2 w=2; flatten; dense out=1", 1);
    ck_status(foolc_net_oracle(net, 4, &o), FOOLC_E_INVALID);
    foolc_net_free(net);
}
END_TEST

/* ---- training ----------------------------------------------------------------------- */

/* Three classes of 1x6x6 images: a class pattern plus noise. */
static void synth(foolc_data *d, int32_t n, uint64_t seed)
{
    uint64_t keep = g_rng;
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
    g_rng = keep;
}

typedef struct prog {
    int64_t calls, last, total, stop_at;
} prog;

static int on_progress(void *u, int64_t done, int64_t total)
{
    prog *p = u;
    ck_assert(done > p->last && done <= total);
    p->calls++;
    p->last = done;
    p->total = total;
    return p->stop_at && p->calls >= p->stop_at;
}

static const char *const k_train[] = {
    "input c=1 h=6 w=6; flatten; dense out=16; relu; dense out=3",
    "input c=1 h=6 w=6; conv2d out=8 k=3 p=1; relu; maxpool2d k=2; flatten; dense out=3",
};

START_TEST(test_train)
{
    foolc_data tr, te;
    synth(&tr, 300, 5);
    synth(&te, 200, 6);
    foolc_train_opts o;
    foolc_train_defaults(&o);
    ck_assert(o.epochs == 5 && o.batch == 128 && o.lr == 1e-3 && o.beta1 == 0.9 &&
              o.beta2 == 0.999 && o.eps == 1e-8 && o.weight_decay == 0);
    o.batch = 32;
    o.lr = 1e-2;
    o.seed = 3;
    o.epochs = 1;
    foolc_net *a = mknet(k_train[_i], 1), *b = mknet(k_train[_i], 1);
    double l1 = 0, l2 = 0, acc0 = 0, acc = 0;
    ck_ok(foolc_net_accuracy(a, te.x, te.y, 200, &acc0));
    prog p = { 0 };
    ck_ok(foolc_net_train(a, &tr, &o, on_progress, &p, &l1));
    ck_assert_int_eq(p.calls, 10); /* ceil(300 / 32) batches */
    ck_assert(p.last == 300 && p.total == 300);
    o.epochs = 15;
    ck_ok(foolc_net_train(a, &tr, &o, NULL, NULL, &l2));
    ck_ok(foolc_net_accuracy(a, te.x, te.y, 200, &acc));
    ck_assert_msg(l2 < 0.5 * l1 && l2 < 0.2, "loss %g after 1 epoch, %g after 16", l1, l2);
    ck_assert_msg(acc >= 0.95, "accuracy %g (was %g)", acc, acc0);
    /* Same seed, same options: the same weights, bit for bit. */
    o.epochs = 1;
    double lb = 0;
    ck_ok(foolc_net_train(b, &tr, &o, NULL, NULL, &lb));
    o.epochs = 15;
    ck_ok(foolc_net_train(b, &tr, &o, NULL, NULL, &lb));
    ck_assert(lb == l2);
    const size_t P = (size_t)foolc_net_param_count(a);
    float *pa = malloc(P * sizeof *pa), *pb = malloc(P * sizeof *pb);
    ck_ok(foolc_net_get_params(a, pa));
    ck_ok(foolc_net_get_params(b, pb));
    ck_assert(memcmp(pa, pb, P * sizeof *pa) == 0);
    /* Cancellation. */
    prog stop = { .stop_at = 2 };
    ck_status(foolc_net_train(b, &tr, &o, on_progress, &stop, NULL), FOOLC_E_CANCELLED);
    ck_assert_int_eq(stop.calls, 2);
    /* Bad arguments. */
    o.lr = -1;
    ck_status(foolc_net_train(b, &tr, &o, NULL, NULL, NULL), FOOLC_E_INVALID);
    foolc_train_defaults(&o);
    tr.y[7] = 3;
    ck_status(foolc_net_train(b, &tr, &o, NULL, NULL, NULL), FOOLC_E_INVALID);
    ck_assert(strstr(foolc_errmsg(), "sample 7") != NULL);
    tr.y[7] = 0;
    tr.shape.h = 5;
    ck_status(foolc_net_train(b, &tr, &o, NULL, NULL, NULL), FOOLC_E_INVALID);
    free(pa), free(pb);
    free(tr.x), free(tr.y), free(te.x), free(te.y);
    foolc_net_free(a), foolc_net_free(b);
}
END_TEST

START_TEST(test_accuracy)
{
    foolc_net *net = mknet(k_nets[1], 2);
    float x[10 * 16], lg[10 * 3];
    int32_t y[10];
    fill(x, 160, 0, 1);
    ck_ok(foolc_net_forward(net, x, 10, lg));
    for (int i = 0; i < 10; i++) {
        y[i] = 0;
        for (int j = 1; j < 3; j++)
            if (lg[i * 3 + j] > lg[i * 3 + y[i]]) y[i] = j;
    }
    double acc = 0;
    ck_ok(foolc_net_accuracy(net, x, y, 10, &acc));
    ck_assert(acc == 1.0);
    y[3] = (y[3] + 1) % 3;
    ck_ok(foolc_net_accuracy(net, x, y, 10, &acc));
    ck_assert(fabs(acc - 0.9) < 1e-12);
    y[3] = -1;
    ck_status(foolc_net_accuracy(net, x, y, 10, &acc), FOOLC_E_INVALID);
    foolc_net_free(net);
}
END_TEST

/* ---- non-finite weights and values -------------------------------------------------- */

/* "[i]" or "[i, j, k, l]": flat index j of an array of shape sh as numpy prints it. */
static void index_text(char *buf, size_t len, const foolc_array *a, int64_t j)
{
    int64_t idx[FOOLC_MAX_DIMS];
    for (int d = a->ndim - 1; d >= 0; d--) {
        idx[d] = j % a->shape[d];
        j /= a->shape[d];
    }
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < a->ndim; d++)
        k += (size_t)snprintf(buf + k, len - k, d ? ", %lld" : "%lld", (long long)idx[d]);
    snprintf(buf + k, len - k, "]");
}

/* NaN, +Inf and -Inf in each kind of member (conv, batchnorm and dense weights and biases,
 * running mean and variance) are refused at load, naming the member and the index; a
 * float64 value beyond float32's range too. */
START_TEST(test_nonfinite_load)
{
    foolc_net *net = mknet(k_nets[2], 4);
    foolc_npz *z = npz_of(net);
    const char *members[] = { "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                              "1.running_var", "5.weight", "5.bias" };
    const float bad[3] = { NAN, INFINITY, -INFINITY };
    const char *shown[3] = { "NaN", "inf", "-inf" };
    for (size_t m = 0; m < sizeof members / sizeof members[0]; m++)
        for (int v = 0; v < 3; v++) {
            const foolc_array *src = foolc_npz_get(z, members[m]);
            ck_assert_ptr_nonnull(src);
            int64_t cnt = foolc_array_count(src), j = (int64_t)(m * 7 + (size_t)v * 3) % cnt;
            float *data = malloc((size_t)cnt * sizeof *data);
            memcpy(data, src->data, (size_t)cnt * sizeof *data);
            data[j] = bad[v];
            foolc_array a = *src;
            a.data = data;
            foolc_npz *y = npz_without(z, NULL);
            ck_ok(foolc_npz_add(y, members[m], &a));
            char idx[64], want[128];
            index_text(idx, sizeof idx, src, j);
            snprintf(want, sizeof want, "%s%s is %s", members[m], idx, shown[v]);
            expect_npz_error(y, FOOLC_E_FORMAT, want);
            free(data);
        }
    /* float64: 1e300 is finite but not a float32. */
    const foolc_array *b = foolc_npz_get(z, "5.bias");
    double d64[4];
    for (int i = 0; i < 4; i++) d64[i] = ((const float *)b->data)[i];
    d64[2] = 1e300;
    foolc_array a;
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_F64, a.ndim = 1, a.shape[0] = 4, a.data = d64;
    foolc_npz *y = npz_without(z, NULL);
    ck_ok(foolc_npz_add(y, "5.bias", &a));
    expect_npz_error(y, FOOLC_E_FORMAT, "5.bias[2] is 1e+300, beyond float32");
    foolc_npz_free(z);

    /* set_params refuses them too and keeps the parameters it had. */
    const size_t P = (size_t)foolc_net_param_count(net);
    float *p = malloc(P * sizeof *p), *q = malloc(P * sizeof *q);
    ck_ok(foolc_net_get_params(net, p));
    memcpy(q, p, P * sizeof *p);
    q[P - 1] = NAN;
    ck_status(foolc_net_set_params(net, q), FOOLC_E_INVALID);
    ck_assert_msg(strstr(foolc_errmsg(), "5.bias[3] is NaN") != NULL, "%s", foolc_errmsg());
    ck_ok(foolc_net_get_params(net, q));
    ck_assert(memcmp(p, q, P * sizeof *p) == 0);
    free(p), free(q);
    foolc_net_free(net);
}
END_TEST

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* A step that makes a parameter non-finite (an absurd learning rate) fails naming the
 * parameter and leaves the net as it was before that step; a step whose forward pass
 * overflows fails naming the layer; either way the net's parameters stay finite. A learning
 * rate beyond float32's range is refused up front. */
START_TEST(test_nonfinite_train)
{
    foolc_data tr;
    synth(&tr, 64, 2);
    foolc_train_opts o;
    foolc_train_defaults(&o);
    o.epochs = 1;
    o.batch = 64;     /* one step per epoch */
    foolc_net *net = mknet(k_train[1], 1);
    const size_t P = (size_t)foolc_net_param_count(net);
    float *p0 = malloc(P * sizeof *p0), *p1 = malloc(P * sizeof *p1);
    ck_ok(foolc_net_get_params(net, p0));

    o.lr = 1e38;      /* lr / (1 - beta1) overflows float32 in the first step */
    ck_status(foolc_net_train(net, &tr, &o, NULL, NULL, NULL), FOOLC_E_NONFINITE);
    ck_assert_msg(strstr(foolc_errmsg(), "step 1") && strstr(foolc_errmsg(), "lr") &&
                  (strstr(foolc_errmsg(), ".weight[") || strstr(foolc_errmsg(), ".bias[")),
                  "%s", foolc_errmsg());
    ck_ok(foolc_net_get_params(net, p1));
    ck_assert(memcmp(p0, p1, P * sizeof *p0) == 0);

    o.lr = 1e30;      /* finite weights near 1e30 after one step; the second step overflows */
    o.epochs = 2;
    ck_status(foolc_net_train(net, &tr, &o, NULL, NULL, NULL), FOOLC_E_NONFINITE);
    ck_assert_msg(strstr(foolc_errmsg(), "layer") && strstr(foolc_errmsg(), "epoch 2"), "%s",
                  foolc_errmsg());
    ck_ok(foolc_net_get_params(net, p1));
    ck_assert(all_finite(p1, P));

    o.lr = 1e39;
    ck_status(foolc_net_train(net, &tr, &o, NULL, NULL, NULL), FOOLC_E_INVALID);
    ck_assert_msg(strstr(foolc_errmsg(), "lr") != NULL, "%s", foolc_errmsg());
    free(p0), free(p1);
    free(tr.x), free(tr.y);
    foolc_net_free(net);
}
END_TEST

/* Finite weights and inputs whose products overflow inside the net: what a fused relu or a
 * max pool would turn into finite logits (-inf -> 0; NaN dropped by the maximum) is
 * reported as FOOLC_E_NONFINITE naming the layer and the sample, with NaN logits for that
 * sample and the others' logits as computed alone; through the model wrapper it is
 * FOOLC_E_NONFINITE naming the sample. A large bound that does not overflow still works. */
static const struct {
    const char *arch;
    float w[2];       /* the first conv's two weights (k=1) */
    const char *where;
} k_overflow[] = {
    /* channel 1 is -1e40 -> -inf, which relu (fused on FAST) turns into 0 */
    { "input c=1 h=2 w=2; conv2d out=2 k=1; relu; flatten; dense out=3", { 1.0f, -1e30f },
      "layer 0 (conv2d)" },
    /* -2e40 -> -inf at one pixel, which the max pool drops */
    { "input c=2 h=2 w=2; conv2d out=1 k=1; maxpool2d k=2; flatten; dense out=3",
      { -1e30f, -1e30f }, "layer 0 (conv2d)" },
    /* the same one layer later, after a harmless first layer */
    { "input c=1 h=2 w=2; conv2d out=2 k=1; conv2d out=2 k=1; relu; flatten; dense out=3",
      { 1.0f, 1.0f }, "layer 1 (conv2d)" },
};

static int loss_sum(void *u, int32_t first, const float *logits, int32_t n, int32_t k,
                    float *d, float *loss)
{
    (void)u, (void)first, (void)logits;
    for (int32_t i = 0; i < n * k; i++) d[i] = 1.0f;
    (void)loss;
    return 0;
}

START_TEST(test_nonfinite_run)
{
    for (int b = 0; b < FOOLC_BACKEND_COUNT; b++) {
        foolc_net *net = mknet(k_overflow[_i].arch, 3);
        ck_ok(foolc_net_set_backend(net, (foolc_backend)b));
        const size_t P = (size_t)foolc_net_param_count(net), d = in_size(net);
        float *p = malloc(P * sizeof *p);
        ck_ok(foolc_net_get_params(net, p));
        p[0] = k_overflow[_i].w[0];
        p[1] = k_overflow[_i].w[1];
        if (_i == 2) {        /* layer 1's weights (2x2) after layer 0's 2 + 2 */
            p[4] = 1e-3f, p[5] = 1e-3f, p[6] = -1e30f, p[7] = -1e30f;
            p[0] = 1.0f, p[1] = 1.0f, p[2] = p[3] = 0.0f;
        }
        ck_ok(foolc_net_set_params(net, p));
        float x[3 * 8], lg[9], lone[3];
        fill(x, 3 * d, 0, 1);
        for (size_t j = 0; j < d; j++) x[d + j] = 1e10f;  /* sample 1 overflows */
        if (_i == 1) for (size_t j = 1; j < 4; j++) x[d + j] = 0.5f, x[d + 4 + j] = 0.0f;
        ck_status(foolc_net_forward(net, x, 3, lg), FOOLC_E_NONFINITE);
        ck_assert_msg(strstr(foolc_errmsg(), k_overflow[_i].where) &&
                      strstr(foolc_errmsg(), "sample 1"), "backend %d: %s", b, foolc_errmsg());
        ck_assert(!isfinite(lg[3]) && !isfinite(lg[4]) && !isfinite(lg[5]));
        for (int s = 0; s < 3; s += 2) {
            ck_ok(foolc_net_forward(net, x + (size_t)s * d, 1, lone));
            for (int j = 0; j < 3; j++)
                ck_assert_msg(fabsf(lone[j] - lg[s * 3 + j]) <= 1e-5f * (1 + fabsf(lone[j])),
                              "sample %d class %d: %g alone, %g in the batch", s, j,
                              (double)lone[j], (double)lg[s * 3 + j]);
        }
        /* The same through the model wrapper: forward and value_and_grad. */
        foolc_oracle o;
        ck_ok(foolc_net_oracle(net, 8, &o));
        foolc_model *m = NULL;
        ck_ok(foolc_model_new(&o, &m));
        ck_status(foolc_model_scores(m, x, 3, lg), FOOLC_E_NONFINITE);
        ck_assert_msg(strstr(foolc_errmsg(), "sample 1") != NULL, "%s", foolc_errmsg());
        float c[9], g[3 * 8];
        fill(c, 9, -1, 1);
        ck_status(foolc_model_value_and_grad(m, x, 3, loss_sum, NULL, lg, NULL, g),
                  FOOLC_E_NONFINITE);
        ck_assert_msg(strstr(foolc_errmsg(), "sample 1") != NULL, "%s", foolc_errmsg());
        lin_seed s = { .c = c };
        ck_status(foolc_net_grad(net, x, 3, seed_lin, &s, lg, g, NULL), FOOLC_E_NONFINITE);
        ck_assert_int_eq(s.calls, 1);
        ck_assert(!isfinite(lg[3]));
        foolc_model_free(m);
        /* A NaN input is reported the same way. */
        x[d + 1] = NAN;
        ck_status(foolc_net_forward(net, x + d, 1, lone), FOOLC_E_NONFINITE);
        ck_assert_msg(strstr(foolc_errmsg(), "input"), "%s", foolc_errmsg());
        free(p);
        foolc_net_free(net);
    }
}
END_TEST

/* Values whose worst case would overflow float32 but which cancel: no false alarm, and the
 * same logits on both backends. */
START_TEST(test_nonfinite_no_false_alarm)
{
    float lg[2][3];
    for (int b = 0; b < FOOLC_BACKEND_COUNT; b++) {
        foolc_net *net = mknet("input c=2 h=2 w=2; conv2d out=1 k=1; relu; maxpool2d k=2; "
                               "flatten; dense out=3", 3);
        ck_ok(foolc_net_set_backend(net, (foolc_backend)b));
        float p[2 + 1 + 3 + 3];   /* conv 1x2x1x1 + bias, dense 3x1 + bias */
        ck_assert_int_eq(foolc_net_param_count(net), (int64_t)(sizeof p / sizeof p[0]));
        ck_ok(foolc_net_get_params(net, p));
        p[0] = 1e30f, p[1] = -1e30f, p[2] = 0.25f;
        ck_ok(foolc_net_set_params(net, p));
        float x[8];
        for (int j = 0; j < 8; j++) x[j] = 3e8f;   /* 3e38 - 3e38 = 0, both in range */
        ck_ok(foolc_net_forward(net, x, 1, lg[b]));
        foolc_net_free(net);
    }
    for (int j = 0; j < 3; j++) ck_assert(isfinite(lg[0][j]) && lg[0][j] == lg[1][j]);
}
END_TEST

/* ---- injected allocation failures --------------------------------------------------- */

START_TEST(test_alloc_new)
{
    const char *arch = k_cmp[1];
    int ok = 0;
    for (uint64_t k = 1; k < 1000 && !ok; k++) {
        foolc_net *net = (foolc_net *)&net;
        foolc__alloc_fail_at(k);
        foolc_status st = foolc_net_new(arch, 1, &net);
        foolc__alloc_fail_at(0);
        if (st == FOOLC_OK) {
            ok = 1;
            foolc_net_free(net);
            break;
        }
        ck_assert_msg(st == FOOLC_E_NOMEM, "allocation %llu: %d (%s)", (unsigned long long)k,
                      (int)st, foolc_errmsg());
        ck_assert_ptr_null(net);
    }
    ck_assert(ok);
}
END_TEST

START_TEST(test_alloc_load)
{
    foolc_net *src = mknet(k_cmp[1], 1);
    foolc_npz *z = npz_of(src);
    char path[256];
    tu_tmpname(path, sizeof path, "alloc.npz");
    ck_ok(foolc_net_save(src, path));
    for (int mode = 0; mode < 2; mode++) {
        int ok = 0;
        for (uint64_t k = 1; k < 5000 && !ok; k++) {
            foolc_net *net = (foolc_net *)&net;
            foolc__alloc_fail_at(k);
            foolc_status st = mode ? foolc_net_load(path, &net) : foolc_net_from_npz(z, &net);
            foolc__alloc_fail_at(0);
            if (st == FOOLC_OK) {
                ok = 1;
                foolc_net_free(net);
                break;
            }
            ck_assert_msg(st == FOOLC_E_NOMEM, "mode %d allocation %llu: %d (%s)", mode,
                          (unsigned long long)k, (int)st, foolc_errmsg());
            ck_assert_ptr_null(net);
        }
        ck_assert(ok);
    }
    unlink(path);
    foolc_npz_free(z);
    foolc_net_free(src);
}
END_TEST

/* Plans, the arena and training buffers: every failure is clean and the net stays usable. */
START_TEST(test_alloc_run)
{
    foolc_net *net = mknet(k_cmp[1], 1), *ref = mknet(k_cmp[1], 1);
    const size_t d = in_size(net), k = 5, P = (size_t)foolc_net_param_count(net);
    float *x = malloc(6 * d * sizeof *x), *dx = malloc(6 * d * sizeof *dx);
    float *dx2 = malloc(6 * d * sizeof *dx2), *dp = malloc(P * sizeof *dp);
    float *dp2 = malloc(P * sizeof *dp2), c[30], lg[30], lg2[30];
    fill(x, 6 * d, 0, 1);
    fill(c, 30, -1, 1);
    for (int b = 0; b < FOOLC_BACKEND_COUNT; b++) {
        ck_ok(foolc_net_set_backend(net, (foolc_backend)b));
        ck_ok(foolc_net_set_backend(ref, (foolc_backend)b));
        int ok = 0;
        for (uint64_t f = 1; f < 1000 && !ok; f++) {
            lin_seed s = { .c = c };
            foolc__alloc_fail_at(f);
            foolc_status st = foolc_net_grad(net, x, 6, seed_lin, &s, lg, dx, dp);
            foolc__alloc_fail_at(0);
            if (st == FOOLC_OK) ok = 1;
            else ck_assert_msg(st == FOOLC_E_NOMEM, "allocation %llu: %d (%s)",
                               (unsigned long long)f, (int)st, foolc_errmsg());
        }
        ck_assert(ok);
        lin_seed s = { .c = c };
        ck_ok(foolc_net_grad(ref, x, 6, seed_lin, &s, lg2, dx2, dp2));
        ck_assert(memcmp(lg, lg2, sizeof lg) == 0);
        ck_assert(memcmp(dx, dx2, 6 * d * sizeof *dx) == 0);
        ck_assert(memcmp(dp, dp2, P * sizeof *dp) == 0);
    }
    (void)k;
    foolc_data tr;
    synth(&tr, 40, 1);
    foolc_net *t = mknet(k_train[1], 1);
    foolc_train_opts o;
    foolc_train_defaults(&o);
    o.epochs = 1;
    int ok = 0;
    for (uint64_t f = 1; f < 1000 && !ok; f++) {
        foolc__alloc_fail_at(f);
        foolc_status st = foolc_net_train(t, &tr, &o, NULL, NULL, NULL);
        foolc__alloc_fail_at(0);
        if (st == FOOLC_OK) ok = 1;
        else ck_assert_int_eq(st, FOOLC_E_NOMEM);
    }
    ck_assert(ok);
    free(tr.x), free(tr.y);
    free(x), free(dx), free(dx2), free(dp), free(dp2);
    foolc_net_free(t), foolc_net_free(net), foolc_net_free(ref);
}
END_TEST

Suite *foolc_suite_net(void);
Suite *foolc_suite_net(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("gradients");
    tcase_add_loop_test(tc, test_layer_fd, 0, (int)(sizeof k_layers / sizeof k_layers[0]));
    tcase_add_loop_test(tc, test_net_fd, 0, (int)(sizeof k_nets / sizeof k_nets[0]));
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("backends");
    tcase_add_loop_test(tc, test_fast_vs_reference, 0, (int)(sizeof k_cmp / sizeof k_cmp[0]));
    tcase_add_test(tc, test_plan_cache);
    tcase_add_test(tc, test_random_archs);
    tcase_add_loop_test(tc, test_hot_path_no_alloc, 0, (int)(sizeof k_cmp / sizeof k_cmp[0]));
    tcase_add_test(tc, test_dense_after_fork);
    tcase_add_test(tc, test_conv_after_fork);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("arch");
    tcase_add_loop_test(tc, test_bad_arch, 0, (int)(sizeof k_bad / sizeof k_bad[0]));
    tcase_add_test(tc, test_arch_text);
    tcase_add_test(tc, test_presets);
    tcase_add_test(tc, test_init);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_test(tc, test_save_load);
    tcase_add_test(tc, test_bad_npz);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_add_test(tc, test_grad_seed);
    tcase_add_test(tc, test_oracle);
    tcase_add_test(tc, test_accuracy);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("train");
    tcase_add_loop_test(tc, test_train, 0, (int)(sizeof k_train / sizeof k_train[0]));
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("nonfinite");
    tcase_add_test(tc, test_nonfinite_load);
    tcase_add_test(tc, test_nonfinite_train);
    tcase_add_loop_test(tc, test_nonfinite_run, 0,
                        (int)(sizeof k_overflow / sizeof k_overflow[0]));
    tcase_add_test(tc, test_nonfinite_no_false_alarm);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_add_test(tc, test_alloc_new);
    tcase_add_test(tc, test_alloc_load);
    tcase_add_test(tc, test_alloc_run);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
