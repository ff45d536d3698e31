/* The rules of the graph ops (graph.h): forward, input gradient (added into each input's
 * gradient) and weight gradient (added into dw, db), on plain NCHW tensors of n samples.
 * Two forms: the reference (double accumulators, plain loops: the definition of each op)
 * and the fast one, which differs only for convolutions and dense layers (oneDNN's sgemm:
 * one image per call, an im2col for convolutions, so an image's bits do not depend on its
 * batch; the weight gradients sum over the batch) and batchnorm (float scale and shift).
 * Element-wise ops compute in double in both forms and round once. */
#include "nn/graph.h"

#include <float.h>
#include <math.h>
#include <string.h>

static foolc_status sgemm(const nn_gnode *nd, char ta, char tb, int64_t M, int64_t N, int64_t K,
                          const float *A, int64_t lda, const float *Bm, int64_t ldb, float beta,
                          float *C, int64_t ldc)
{
    foolc__nn_omp_note();
    return foolc__dnnl(dnnl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, Bm, ldb, beta, C, ldc),
                       "dnnl_sgemm", foolc__nn_gop_name(nd->op), nd->line - 2);
}

/* ---- convolution --------------------------------------------------------------------- */

/* The column matrix of one image and group: rows (ci, ky, kx) of cg * kh * kw, columns the
 * oh * ow output pixels; taps in the padding are 0. */
static void im2col(const nn_gnode *nd, nn_dims in, const float *x, int32_t cg, float *col)
{
    const int32_t OH = nd->od.h, OW = nd->od.w;
    for (int32_t ci = 0; ci < cg; ci++)
        for (int32_t ky = 0; ky < nd->kh; ky++)
            for (int32_t kx = 0; kx < nd->kw; kx++) {
                float *row = col + (((size_t)ci * nd->kh + ky) * nd->kw + kx) * OH * OW;
                const float *xc = x + (size_t)ci * in.h * in.w;
                for (int32_t oy = 0; oy < OH; oy++) {
                    int32_t iy = oy * nd->sh - nd->pt + ky * nd->dh;
                    float *r = row + (size_t)oy * OW;
                    if (iy < 0 || iy >= in.h) {
                        memset(r, 0, (size_t)OW * sizeof *r);
                        continue;
                    }
                    const float *xr = xc + (size_t)iy * in.w;
                    for (int32_t ox = 0; ox < OW; ox++) {
                        int32_t ix = ox * nd->sw - nd->pl + kx * nd->dw;
                        r[ox] = ix >= 0 && ix < in.w ? xr[ix] : 0.0f;
                    }
                }
            }
}

static void col2im_add(const nn_gnode *nd, nn_dims in, const float *col, int32_t cg, float *dx)
{
    const int32_t OH = nd->od.h, OW = nd->od.w;
    for (int32_t ci = 0; ci < cg; ci++)
        for (int32_t ky = 0; ky < nd->kh; ky++)
            for (int32_t kx = 0; kx < nd->kw; kx++) {
                const float *row = col + (((size_t)ci * nd->kh + ky) * nd->kw + kx) * OH * OW;
                float *dc = dx + (size_t)ci * in.h * in.w;
                for (int32_t oy = 0; oy < OH; oy++) {
                    int32_t iy = oy * nd->sh - nd->pt + ky * nd->dh;
                    if (iy < 0 || iy >= in.h) continue;
                    for (int32_t ox = 0; ox < OW; ox++) {
                        int32_t ix = ox * nd->sw - nd->pl + kx * nd->dw;
                        if (ix >= 0 && ix < in.w) dc[(size_t)iy * in.w + ix] += row[(size_t)oy * OW + ox];
                    }
                }
            }
}

/* A 1x1 convolution with stride 1 and no padding needs no column matrix: it is x itself. */
static int conv_direct(const nn_gnode *nd)
{
    return nd->kh == 1 && nd->kw == 1 && nd->sh == 1 && nd->sw == 1 && nd->pt == 0 &&
           nd->pl == 0 && nd->pb == 0 && nd->pr == 0;
}

static size_t conv_tmp(const nn_gnode *nd, nn_dims in)
{
    const int32_t cg = in.c / nd->groups;
    return (size_t)cg * nd->kh * nd->kw * (size_t)nd->od.h * nd->od.w * sizeof(float);
}

static foolc_status conv_fwd_fast(const nn_gnode *nd, nn_dims in, int32_t n, const float *x,
                                  float *y, float *col)
{
    const int32_t G = nd->groups, cg = in.c / G, og = nd->out / G;
    const int64_t P = (int64_t)nd->od.h * nd->od.w, K = (int64_t)cg * nd->kh * nd->kw;
    const size_t isz = (size_t)nn_numel(in), osz = (size_t)nn_numel(nd->od);
    for (int32_t s = 0; s < n; s++)
        for (int32_t g = 0; g < G; g++) {
            const float *xs = x + s * isz + (size_t)g * cg * in.h * in.w;
            const float *B = xs;
            if (!conv_direct(nd)) {
                im2col(nd, in, xs, cg, col);
                B = col;
            }
            float *ys = y + s * osz + (size_t)g * og * P;
            FOOLC__CHECK(sgemm(nd, 'N', 'N', og, P, K, nd->w + (size_t)g * og * K, K, B, P, 0.0f,
                               ys, P));
            if (nd->b)
                for (int32_t o = 0; o < og; o++) {
                    const float bv = nd->b[g * og + o];
                    float *r = ys + (size_t)o * P;
                    for (int64_t p = 0; p < P; p++) r[p] += bv;
                }
        }
    return FOOLC_OK;
}

static void conv_fwd_ref(const nn_gnode *nd, nn_dims in, int32_t n, const float *x, float *y)
{
    const int32_t G = nd->groups, cg = in.c / G, og = nd->out / G;
    const int32_t OH = nd->od.h, OW = nd->od.w;
    for (int32_t s = 0; s < n; s++)
        for (int32_t o = 0; o < nd->out; o++) {
            const int32_t g = o / og;
            for (int32_t oy = 0; oy < OH; oy++)
                for (int32_t ox = 0; ox < OW; ox++) {
                    double acc = nd->b ? nd->b[o] : 0.0;
                    for (int32_t ci = 0; ci < cg; ci++) {
                        const float *xc = x + ((size_t)s * in.c + (size_t)g * cg + ci) * in.h * in.w;
                        const float *wc = nd->w + (((size_t)o * cg + ci) * nd->kh) * nd->kw;
                        for (int32_t ky = 0; ky < nd->kh; ky++) {
                            int32_t iy = oy * nd->sh - nd->pt + ky * nd->dh;
                            if (iy < 0 || iy >= in.h) continue;
                            for (int32_t kx = 0; kx < nd->kw; kx++) {
                                int32_t ix = ox * nd->sw - nd->pl + kx * nd->dw;
                                if (ix < 0 || ix >= in.w) continue;
                                acc += (double)wc[ky * nd->kw + kx] * xc[(size_t)iy * in.w + ix];
                            }
                        }
                    }
                    y[(((size_t)s * nd->out + o) * OH + oy) * OW + ox] = (float)acc;
                }
        }
}

static foolc_status conv_bwd_fast(const nn_gnode *nd, nn_dims in, int32_t n, const float *x,
                                  const float *dy, float *dx, float *dw, float *db, float *col)
{
    const int32_t G = nd->groups, cg = in.c / G, og = nd->out / G;
    const int64_t P = (int64_t)nd->od.h * nd->od.w, K = (int64_t)cg * nd->kh * nd->kw;
    const size_t isz = (size_t)nn_numel(in), osz = (size_t)nn_numel(nd->od);
    const int direct = conv_direct(nd);
    for (int32_t s = 0; s < n; s++)
        for (int32_t g = 0; g < G; g++) {
            const float *dys = dy + s * osz + (size_t)g * og * P;
            const float *wg = nd->w + (size_t)g * og * K;
            const size_t xo = s * isz + (size_t)g * cg * in.h * in.w;
            if (dw) {
                const float *B = x + xo;
                if (!direct) {
                    im2col(nd, in, x + xo, cg, col);
                    B = col;
                }
                FOOLC__CHECK(sgemm(nd, 'N', 'T', og, K, P, dys, P, B, P, 1.0f,
                                   dw + (size_t)g * og * K, K));
            }
            if (db)
                for (int32_t o = 0; o < og; o++) {
                    double acc = 0;
                    for (int64_t p = 0; p < P; p++) acc += dys[(size_t)o * P + p];
                    db[g * og + o] += (float)acc;
                }
            if (dx) {
                if (direct) {
                    FOOLC__CHECK(sgemm(nd, 'T', 'N', K, P, og, wg, K, dys, P, 1.0f, dx + xo, P));
                } else {
                    FOOLC__CHECK(sgemm(nd, 'T', 'N', K, P, og, wg, K, dys, P, 0.0f, col, P));
                    col2im_add(nd, in, col, cg, dx + xo);
                }
            }
        }
    return FOOLC_OK;
}

static void conv_bwd_ref(const nn_gnode *nd, nn_dims in, int32_t n, const float *x,
                         const float *dy, float *dx, float *dw, float *db)
{
    const int32_t G = nd->groups, cg = in.c / G, og = nd->out / G;
    const int32_t OH = nd->od.h, OW = nd->od.w;
    if (db)
        for (int32_t o = 0; o < nd->out; o++) {
            double acc = 0;
            for (int32_t s = 0; s < n; s++)
                for (int64_t p = 0; p < (int64_t)OH * OW; p++)
                    acc += dy[((size_t)s * nd->out + o) * OH * OW + p];
            db[o] += (float)acc;
        }
    if (dw)
        for (int32_t o = 0; o < nd->out; o++) {
            const int32_t g = o / og;
            for (int32_t ci = 0; ci < cg; ci++)
                for (int32_t ky = 0; ky < nd->kh; ky++)
                    for (int32_t kx = 0; kx < nd->kw; kx++) {
                        double acc = 0;
                        for (int32_t s = 0; s < n; s++) {
                            const float *xc = x + ((size_t)s * in.c + (size_t)g * cg + ci) *
                                                      in.h * in.w;
                            const float *d = dy + ((size_t)s * nd->out + o) * OH * OW;
                            for (int32_t oy = 0; oy < OH; oy++) {
                                int32_t iy = oy * nd->sh - nd->pt + ky * nd->dh;
                                if (iy < 0 || iy >= in.h) continue;
                                for (int32_t ox = 0; ox < OW; ox++) {
                                    int32_t ix = ox * nd->sw - nd->pl + kx * nd->dw;
                                    if (ix < 0 || ix >= in.w) continue;
                                    acc += (double)d[oy * OW + ox] * xc[(size_t)iy * in.w + ix];
                                }
                            }
                        }
                        dw[(((size_t)o * cg + ci) * nd->kh + ky) * nd->kw + kx] += (float)acc;
                    }
        }
    if (dx)
        for (int32_t s = 0; s < n; s++)
            for (int32_t c = 0; c < in.c; c++) {
                const int32_t g = c / cg, ci = c % cg;
                for (int32_t iy = 0; iy < in.h; iy++)
                    for (int32_t ix = 0; ix < in.w; ix++) {
                        double acc = 0;
                        for (int32_t ky = 0; ky < nd->kh; ky++) {
                            int32_t ty = iy + nd->pt - ky * nd->dh;
                            if (ty < 0 || ty % nd->sh) continue;
                            int32_t oy = ty / nd->sh;
                            if (oy >= OH) continue;
                            for (int32_t kx = 0; kx < nd->kw; kx++) {
                                int32_t tx = ix + nd->pl - kx * nd->dw;
                                if (tx < 0 || tx % nd->sw) continue;
                                int32_t ox = tx / nd->sw;
                                if (ox >= OW) continue;
                                for (int32_t oo = 0; oo < og; oo++) {
                                    int32_t o = g * og + oo;
                                    acc += (double)nd->w[(((size_t)o * cg + ci) * nd->kh + ky) *
                                                         nd->kw + kx] *
                                           dy[(((size_t)s * nd->out + o) * OH + oy) * OW + ox];
                                }
                            }
                        }
                        dx[(((size_t)s * in.c + c) * in.h + iy) * in.w + ix] += (float)acc;
                    }
            }
}

/* ---- dense --------------------------------------------------------------------------- */

static foolc_status dense_fwd(const nn_gnode *nd, int fast, int32_t n, int32_t I,
                              const float *x, float *y)
{
    const int32_t O = nd->out;
    if (fast) {
        /* One image per call: an image's bits do not depend on its batch. */
        for (int32_t s = 0; s < n; s++)
            FOOLC__CHECK(sgemm(nd, 'N', 'T', 1, O, I, x + (size_t)s * I, I, nd->w, I, 0.0f,
                               y + (size_t)s * O, O));
        if (nd->b)
            for (int32_t s = 0; s < n; s++)
                for (int32_t o = 0; o < O; o++) y[(size_t)s * O + o] += nd->b[o];
        return FOOLC_OK;
    }
    for (int32_t s = 0; s < n; s++)
        for (int32_t o = 0; o < O; o++) {
            double acc = nd->b ? nd->b[o] : 0.0;
            const float *w = nd->w + (size_t)o * I, *xs = x + (size_t)s * I;
            for (int32_t i = 0; i < I; i++) acc += (double)w[i] * xs[i];
            y[(size_t)s * O + o] = (float)acc;
        }
    return FOOLC_OK;
}

static foolc_status dense_bwd(const nn_gnode *nd, int fast, int32_t n, int32_t I,
                              const float *x, const float *dy, float *dx, float *dw, float *db)
{
    const int32_t O = nd->out;
    if (db)
        for (int32_t o = 0; o < O; o++) {
            double acc = 0;
            for (int32_t s = 0; s < n; s++) acc += dy[(size_t)s * O + o];
            db[o] += (float)acc;
        }
    if (fast) {
        for (int32_t s = 0; dx && s < n; s++)
            FOOLC__CHECK(sgemm(nd, 'N', 'N', 1, I, O, dy + (size_t)s * O, O, nd->w, I, 1.0f,
                               dx + (size_t)s * I, I));
        if (dw) FOOLC__CHECK(sgemm(nd, 'T', 'N', O, I, n, dy, O, x, I, 1.0f, dw, I));
        return FOOLC_OK;
    }
    if (dx)
        for (int32_t s = 0; s < n; s++)
            for (int32_t i = 0; i < I; i++) {
                double acc = 0;
                for (int32_t o = 0; o < O; o++)
                    acc += (double)dy[(size_t)s * O + o] * nd->w[(size_t)o * I + i];
                dx[(size_t)s * I + i] += (float)acc;
            }
    if (dw)
        for (int32_t o = 0; o < O; o++)
            for (int32_t i = 0; i < I; i++) {
                double acc = 0;
                for (int32_t s = 0; s < n; s++)
                    acc += (double)dy[(size_t)s * O + o] * x[(size_t)s * I + i];
                dw[(size_t)o * I + i] += (float)acc;
            }
    return FOOLC_OK;
}

/* ---- element-wise -------------------------------------------------------------------- */

static double unary(const nn_gnode *nd, double v)
{
    switch (nd->op) {
    case G_RELU: return v > 0 ? v : 0;
    case G_LEAKYRELU: return v > 0 ? v : nd->alpha * v;
    case G_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case G_TANH: return tanh(v);
    case G_CLIP: return v < nd->vmin ? nd->vmin : v > nd->vmax ? nd->vmax : v;
    case G_ELU: return v > 0 ? v : nd->alpha * expm1(v);
    case G_SOFTPLUS: return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v));
    case G_ERF: return erf(v);
    case G_HARDSIGMOID: {
        double t = nd->alpha * v + nd->beta;
        return t < 0 ? 0 : t > 1 ? 1 : t;
    }
    case G_HARDSWISH: {
        double t = v + 3;
        t = t < 0 ? 0 : t > 6 ? 6 : t;
        return v * t / 6;
    }
    default: return v;
    }
}

/* d unary / d v at input v (output y). */
static double unary_grad(const nn_gnode *nd, double v, double y)
{
    switch (nd->op) {
    case G_RELU: return v > 0 ? 1 : 0;
    case G_LEAKYRELU: return v > 0 ? 1 : nd->alpha;
    case G_SIGMOID: return y * (1 - y);
    case G_TANH: return 1 - y * y;
    case G_CLIP: return v >= nd->vmin && v <= nd->vmax ? 1 : 0;
    case G_ELU: return v > 0 ? 1 : nd->alpha * exp(v);
    case G_SOFTPLUS: return 1.0 / (1.0 + exp(-v));
    case G_ERF: return 1.1283791670955126 * exp(-v * v);
    case G_HARDSIGMOID: {
        double t = nd->alpha * v + nd->beta;
        return t > 0 && t < 1 ? nd->alpha : 0;
    }
    case G_HARDSWISH: return v < -3 ? 0 : v > 3 ? 1 : (2 * v + 3) / 6;
    default: return 1;
    }
}

/* Strides of a broadcast operand of dims a inside the output dims o (0 where a is 1). */
static void bstrides(nn_dims a, nn_dims o, int64_t *sc, int64_t *sh, int64_t *sw)
{
    *sc = a.c == 1 && o.c != 1 ? 0 : (int64_t)a.h * a.w;
    *sh = a.h == 1 && o.h != 1 ? 0 : a.w;
    *sw = a.w == 1 && o.w != 1 ? 0 : 1;
}

static double binop(nn_gop op, double a, double b)
{
    switch (op) {
    case G_ADD: return a + b;
    case G_SUB: return a - b;
    case G_MUL: return a * b;
    default: return a / b;
    }
}

/* d(a op b)/da and /db. */
static void binop_grad(nn_gop op, double a, double b, double *ga, double *gb)
{
    switch (op) {
    case G_ADD: *ga = 1; *gb = 1; break;
    case G_SUB: *ga = 1; *gb = -1; break;
    case G_MUL: *ga = b; *gb = a; break;
    default: *ga = 1 / b; *gb = -a / (b * b); break;
    }
}

/* The constant operand at element (c, p) of a one-input binary op (p: h * w offset). */
static double cval(const nn_gnode *nd, nn_dims d, int32_t c, int64_t p)
{
    switch (nd->cmode) {
    case G_C_CHANNEL: return nd->cst[c];
    case G_C_SCALAR: return nd->cst[0];
    case G_C_FULL: return nd->cst[(size_t)c * d.h * d.w + (size_t)p];
    default: return nd->value;
    }
}

/* ---- pooling ------------------------------------------------------------------------- */

static void pool_fwd(const nn_gnode *nd, nn_dims in, int32_t n, const float *x, float *y)
{
    const int32_t OH = nd->od.h, OW = nd->od.w;
    for (int32_t sc = 0; sc < n * in.c; sc++) {
        const float *xc = x + (size_t)sc * in.h * in.w;
        float *yc = y + (size_t)sc * OH * OW;
        for (int32_t oy = 0; oy < OH; oy++)
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t y0 = oy * nd->sh - nd->pt, x0 = ox * nd->sw - nd->pl;
                double acc = nd->op == G_MAXPOOL ? -INFINITY : 0.0;
                int32_t cnt = 0;
                for (int32_t ky = 0; ky < nd->kh; ky++) {
                    int32_t iy = y0 + ky;
                    if (iy < 0 || iy >= in.h) continue;
                    for (int32_t kx = 0; kx < nd->kw; kx++) {
                        int32_t ix = x0 + kx;
                        if (ix < 0 || ix >= in.w) continue;
                        double v = xc[(size_t)iy * in.w + ix];
                        if (nd->op == G_MAXPOOL) {
                            if (v > acc || isnan(v)) acc = v;
                        } else {
                            acc += v;
                        }
                        cnt++;
                    }
                }
                if (nd->op == G_AVGPOOL) acc /= nd->count_pad ? nd->kh * nd->kw : cnt;
                yc[oy * OW + ox] = (float)acc;
            }
    }
}

static void pool_bwd(const nn_gnode *nd, nn_dims in, int32_t n, const float *x,
                     const float *dy, float *dx)
{
    const int32_t OH = nd->od.h, OW = nd->od.w;
    for (int32_t sc = 0; sc < n * in.c; sc++) {
        const float *xc = x + (size_t)sc * in.h * in.w;
        const float *dc = dy + (size_t)sc * OH * OW;
        float *gc = dx + (size_t)sc * in.h * in.w;
        for (int32_t oy = 0; oy < OH; oy++)
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t y0 = oy * nd->sh - nd->pt, x0 = ox * nd->sw - nd->pl;
                const float d = dc[oy * OW + ox];
                if (nd->op == G_MAXPOOL) {
                    int64_t best = -1;
                    float bv = -INFINITY;
                    for (int32_t ky = 0; ky < nd->kh; ky++) {
                        int32_t iy = y0 + ky;
                        if (iy < 0 || iy >= in.h) continue;
                        for (int32_t kx = 0; kx < nd->kw; kx++) {
                            int32_t ix = x0 + kx;
                            if (ix < 0 || ix >= in.w) continue;
                            int64_t j = (int64_t)iy * in.w + ix;
                            if (best < 0 || xc[j] > bv) {
                                best = j;
                                bv = xc[j];
                            }
                        }
                    }
                    if (best >= 0) gc[best] += d;
                    continue;
                }
                int32_t cnt = 0;
                for (int32_t ky = 0; ky < nd->kh; ky++)
                    for (int32_t kx = 0; kx < nd->kw; kx++)
                        cnt += y0 + ky >= 0 && y0 + ky < in.h && x0 + kx >= 0 && x0 + kx < in.w;
                const float g = (float)((double)d / (nd->count_pad ? nd->kh * nd->kw : cnt));
                for (int32_t ky = 0; ky < nd->kh; ky++) {
                    int32_t iy = y0 + ky;
                    if (iy < 0 || iy >= in.h) continue;
                    for (int32_t kx = 0; kx < nd->kw; kx++) {
                        int32_t ix = x0 + kx;
                        if (ix >= 0 && ix < in.w) gc[(size_t)iy * in.w + ix] += g;
                    }
                }
            }
    }
}

/* ---- vectorisable loops of the fast form (blocks of 16 the compiler unrolls into SIMD) -- */

/* Compiled for AVX-512, AVX2 and the baseline, chosen at load time (as conv.c's clones; not
 * under ThreadSanitizer). -std=c11 turns contraction off, so every clone rounds the same
 * IEEE operations alike: the same bits on every ISA. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__has_attribute) && \
    !defined(__SANITIZE_THREAD__)
#if __has_attribute(target_clones)
#define V_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#endif
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#undef V_CLONES
#endif
#endif
#ifndef V_CLONES
#define V_CLONES
#endif

#define VB 16
V_CLONES static void v_relu(float *restrict y, const float *restrict x, size_t n)
{
    size_t j = 0;
    for (; j + VB <= n; j += VB)
        for (int k = 0; k < VB; k++) y[j + k] = x[j + k] > 0.0f ? x[j + k] : 0.0f;
    for (; j < n; j++) y[j] = x[j] > 0.0f ? x[j] : 0.0f;
}

V_CLONES static void v_relu_back(float *restrict dx, const float *restrict x, const float *restrict dy,
                        size_t n)
{
    size_t j = 0;
    for (; j + VB <= n; j += VB)
        for (int k = 0; k < VB; k++) dx[j + k] += x[j + k] > 0.0f ? dy[j + k] : 0.0f;
    for (; j < n; j++) dx[j] += x[j] > 0.0f ? dy[j] : 0.0f;
}

/* y = x * a + b */
V_CLONES static void v_affine(float *restrict y, const float *restrict x, size_t n, float a, float b)
{
    size_t j = 0;
    for (; j + VB <= n; j += VB)
        for (int k = 0; k < VB; k++) y[j + k] = x[j + k] * a + b;
    for (; j < n; j++) y[j] = x[j] * a + b;
}

/* dx += dy * a */
V_CLONES static void v_axpy(float *restrict dx, const float *restrict dy, size_t n, float a)
{
    size_t j = 0;
    for (; j + VB <= n; j += VB)
        for (int k = 0; k < VB; k++) dx[j + k] += dy[j + k] * a;
    for (; j < n; j++) dx[j] += dy[j] * a;
}

/* y = a op b, op 0 add, 1 sub, 2 mul */
V_CLONES static void v_binop(float *restrict y, const float *restrict a, const float *restrict b,
                    size_t n, int op)
{
    size_t j = 0;
    if (op == 0) {
        for (; j + VB <= n; j += VB)
            for (int k = 0; k < VB; k++) y[j + k] = a[j + k] + b[j + k];
        for (; j < n; j++) y[j] = a[j] + b[j];
    } else if (op == 1) {
        for (; j + VB <= n; j += VB)
            for (int k = 0; k < VB; k++) y[j + k] = a[j + k] - b[j + k];
        for (; j < n; j++) y[j] = a[j] - b[j];
    } else {
        for (; j + VB <= n; j += VB)
            for (int k = 0; k < VB; k++) y[j + k] = a[j + k] * b[j + k];
        for (; j < n; j++) y[j] = a[j] * b[j];
    }
}

/* ---- the dispatch -------------------------------------------------------------------- */

size_t foolc__nn_gop_tmp(const nn_graph *g, const nn_gnode *nd, int32_t n)
{
    (void)n;
    if (nd->op == G_CONV) return conv_tmp(nd, g->dims[nd->in[0]]);
    return 0;
}

/* The source index in x of transpose's output element (c, h, w). */
static size_t tr_src(const nn_gnode *nd, nn_dims in, int32_t c, int32_t h, int32_t w)
{
    int32_t idx[3] = { 0, 0, 0 };
    idx[nd->perm[0]] = c;
    idx[nd->perm[1]] = h;
    idx[nd->perm[2]] = w;
    return ((size_t)idx[0] * in.h + idx[1]) * in.w + idx[2];
}

foolc_status foolc__nn_gop_forward(const nn_graph *g, const nn_gnode *nd, int fast, int32_t n,
                                   const float *const *xs, float *y, void *tmp)
{
    const nn_dims in = g->dims[nd->in[0]], od = nd->od;
    const size_t isz = (size_t)nn_numel(in), osz = (size_t)nn_numel(od);
    const float *x = xs[0];
    switch (nd->op) {
    case G_CONV:
        if (fast) return conv_fwd_fast(nd, in, n, x, y, tmp);
        conv_fwd_ref(nd, in, n, x, y);
        return FOOLC_OK;
    case G_DENSE: return dense_fwd(nd, fast, n, in.c, x, y);
    case G_ADD: case G_SUB: case G_MUL: case G_DIV: {
        const int64_t HW = (int64_t)od.h * od.w;
        if (nd->cmode != G_C_TENSOR) {
            for (int32_t s = 0; s < n; s++)
                for (int32_t c = 0; c < od.c; c++)
                    for (int64_t p = 0; p < HW; p++) {
                        size_t j = (size_t)s * osz + (size_t)c * HW + (size_t)p;
                        double k = cval(nd, in, c, p);
                        y[j] = (float)(nd->left ? binop(nd->op, k, x[j]) : binop(nd->op, x[j], k));
                    }
            return FOOLC_OK;
        }
        const nn_dims bd = g->dims[nd->in[1]];
        const size_t bsz = (size_t)nn_numel(bd);
        if (fast && bsz == osz && isz == osz && nd->op != G_DIV) {
            v_binop(y, x, xs[1], (size_t)n * osz,
                    nd->op == G_ADD ? 0 : nd->op == G_SUB ? 1 : 2);
            return FOOLC_OK;
        }
        int64_t ac, ah, aw, bc, bh, bw;
        bstrides(in, od, &ac, &ah, &aw);
        bstrides(bd, od, &bc, &bh, &bw);
        for (int32_t s = 0; s < n; s++) {
            const float *a = x + s * isz, *b = xs[1] + s * bsz;
            float *ys = y + s * osz;
            for (int32_t c = 0; c < od.c; c++)
                for (int32_t h = 0; h < od.h; h++)
                    for (int32_t w = 0; w < od.w; w++)
                        *ys++ = (float)binop(nd->op, a[c * ac + h * ah + w * aw],
                                             b[c * bc + h * bh + w * bw]);
        }
        return FOOLC_OK;
    }
    case G_PRELU: {
        const int64_t HW = (int64_t)in.h * in.w;
        for (int32_t s = 0; s < n; s++)
            for (int32_t c = 0; c < in.c; c++) {
                const double a = nd->w[nd->slopes == 1 ? 0 : c];
                for (int64_t p = 0; p < HW; p++) {
                    size_t j = (size_t)s * isz + (size_t)c * HW + (size_t)p;
                    y[j] = (float)(x[j] > 0 ? (double)x[j] : a * x[j]);
                }
            }
        return FOOLC_OK;
    }
    case G_BN: {
        const int64_t HW = (int64_t)in.h * in.w;
        for (int32_t c = 0; c < in.c; c++) {
            const double is = 1.0 / sqrt((double)nd->var[c] + nd->eps);
            const double sc = nd->w[c] * is, sh = nd->b[c] - nd->mean[c] * sc;
            const float fs = (float)sc, fh = (float)sh;
            for (int32_t s = 0; s < n; s++) {
                const float *xc = x + (size_t)s * isz + (size_t)c * HW;
                float *yc = y + (size_t)s * isz + (size_t)c * HW;
                if (fast)
                    v_affine(yc, xc, (size_t)HW, fs, fh);
                else
                    for (int64_t p = 0; p < HW; p++)
                        yc[p] = (float)(((double)xc[p] - nd->mean[c]) * is * nd->w[c] + nd->b[c]);
            }
        }
        return FOOLC_OK;
    }
    case G_MAXPOOL: case G_AVGPOOL: pool_fwd(nd, in, n, x, y); return FOOLC_OK;
    case G_GAP: {
        const int64_t HW = (int64_t)in.h * in.w;
        for (int64_t sc = 0; sc < (int64_t)n * in.c; sc++) {
            double acc = 0;
            for (int64_t p = 0; p < HW; p++) acc += x[(size_t)sc * HW + p];
            y[sc] = (float)(acc / (double)HW);
        }
        return FOOLC_OK;
    }
    case G_FLATTEN: case G_RESHAPE: case G_IDENTITY:
        if (y != x) memcpy(y, x, (size_t)n * isz * sizeof *y);
        return FOOLC_OK;
    case G_TRANSPOSE:
        for (int32_t s = 0; s < n; s++) {
            const float *xs0 = x + s * isz;
            float *ys = y + s * osz;
            for (int32_t c = 0; c < od.c; c++)
                for (int32_t h = 0; h < od.h; h++)
                    for (int32_t w = 0; w < od.w; w++) *ys++ = xs0[tr_src(nd, in, c, h, w)];
        }
        return FOOLC_OK;
    case G_CONCAT: {
        /* Per sample: outer blocks (dims before axis), each the inputs' slices in turn. */
        const int32_t od3[3] = { od.c, od.h, od.w };
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < nd->axis; k++) outer *= od3[k];
        for (int k = nd->axis + 1; k < 3; k++) inner *= od3[k];
        for (int32_t s = 0; s < n; s++) {
            float *ys = y + s * osz;
            for (int64_t o = 0; o < outer; o++)
                for (int32_t j = 0; j < nd->nin; j++) {
                    const nn_dims d = g->dims[nd->in[j]];
                    const int32_t d3[3] = { d.c, d.h, d.w };
                    const size_t len = (size_t)d3[nd->axis] * (size_t)inner;
                    memcpy(ys, xs[j] + (size_t)s * (size_t)nn_numel(d) + (size_t)o * len,
                           len * sizeof *ys);
                    ys += len;
                }
        }
        return FOOLC_OK;
    }
    case G_PAD:
        for (int32_t sc = 0; sc < n * in.c; sc++) {
            float *yc = y + (size_t)sc * od.h * od.w;
            for (int64_t p = 0; p < (int64_t)od.h * od.w; p++) yc[p] = (float)nd->value;
            for (int32_t h = 0; h < in.h; h++)
                memcpy(yc + (size_t)(h + nd->pt) * od.w + nd->pl,
                       x + (size_t)sc * in.h * in.w + (size_t)h * in.w, (size_t)in.w * sizeof *y);
        }
        return FOOLC_OK;
    case G_SOFTMAX: case G_LOGSOFTMAX:
        for (int32_t s = 0; s < n; s++) {
            const float *xs0 = x + (size_t)s * in.c;
            float *ys = y + (size_t)s * in.c;
            double m = -INFINITY, sum = 0;
            for (int32_t c = 0; c < in.c; c++) m = xs0[c] > m ? xs0[c] : m;
            for (int32_t c = 0; c < in.c; c++) sum += exp((double)xs0[c] - m);
            for (int32_t c = 0; c < in.c; c++)
                ys[c] = nd->op == G_SOFTMAX ? (float)(exp((double)xs0[c] - m) / sum)
                                            : (float)((double)xs0[c] - m - log(sum));
        }
        return FOOLC_OK;
    default:
        if (fast && nd->op == G_RELU) {
            v_relu(y, x, (size_t)n * isz);
            return FOOLC_OK;
        }
        for (size_t j = 0; j < (size_t)n * isz; j++) y[j] = (float)unary(nd, x[j]);
        return FOOLC_OK;
    }
}

foolc_status foolc__nn_gop_backward(const nn_graph *g, const nn_gnode *nd, int fast, int32_t n,
                                    const float *const *xs, const float *y, const float *dy,
                                    float *const *dxs, float *dw, float *db, void *tmp)
{
    const nn_dims in = g->dims[nd->in[0]], od = nd->od;
    const size_t isz = (size_t)nn_numel(in), osz = (size_t)nn_numel(od);
    const float *x = xs[0];
    float *dx = dxs[0];
    switch (nd->op) {
    case G_CONV:
        if (fast) return conv_bwd_fast(nd, in, n, x, dy, dx, dw, db, tmp);
        conv_bwd_ref(nd, in, n, x, dy, dx, dw, db);
        return FOOLC_OK;
    case G_DENSE: return dense_bwd(nd, fast, n, in.c, x, dy, dx, dw, db);
    case G_ADD: case G_SUB: case G_MUL: case G_DIV: {
        const int64_t HW = (int64_t)od.h * od.w;
        if (nd->cmode != G_C_TENSOR) {
            if (!dx) return FOOLC_OK;
            for (int32_t s = 0; s < n; s++)
                for (int32_t c = 0; c < od.c; c++)
                    for (int64_t p = 0; p < HW; p++) {
                        size_t j = (size_t)s * osz + (size_t)c * HW + (size_t)p;
                        double k = cval(nd, in, c, p), ga, gb;
                        if (nd->left) binop_grad(nd->op, k, x[j], &gb, &ga);
                        else binop_grad(nd->op, x[j], k, &ga, &gb);
                        dx[j] += (float)(dy[j] * ga);
                    }
            return FOOLC_OK;
        }
        const nn_dims bd = g->dims[nd->in[1]];
        const size_t bsz = (size_t)nn_numel(bd);
        float *db2 = dxs[1];
        if (fast && bsz == osz && isz == osz && (nd->op == G_ADD || nd->op == G_SUB)) {
            const size_t m = (size_t)n * osz;
            if (dx) v_axpy(dx, dy, m, 1.0f);
            if (db2) v_axpy(db2, dy, m, nd->op == G_ADD ? 1.0f : -1.0f);
            return FOOLC_OK;
        }
        int64_t ac, ah, aw, bc, bh, bw;
        bstrides(in, od, &ac, &ah, &aw);
        bstrides(bd, od, &bc, &bh, &bw);
        for (int32_t s = 0; s < n; s++) {
            const float *a = x + s * isz, *b = xs[1] + s * bsz, *d = dy + s * osz;
            float *da = dx ? dx + s * isz : NULL, *dbb = db2 ? db2 + s * bsz : NULL;
            for (int32_t c = 0; c < od.c; c++)
                for (int32_t h = 0; h < od.h; h++)
                    for (int32_t w = 0; w < od.w; w++) {
                        const int64_t ja = c * ac + h * ah + w * aw, jb = c * bc + h * bh + w * bw;
                        double ga, gb;
                        binop_grad(nd->op, a[ja], b[jb], &ga, &gb);
                        if (da) da[ja] += (float)(*d * ga);
                        if (dbb) dbb[jb] += (float)(*d * gb);
                        d++;
                    }
        }
        return FOOLC_OK;
    }
    case G_PRELU: {
        const int64_t HW = (int64_t)in.h * in.w;
        for (int32_t c = 0; c < in.c; c++) {
            const int32_t k = nd->slopes == 1 ? 0 : c;
            const double a = nd->w[k];
            double acc = 0;
            for (int32_t s = 0; s < n; s++)
                for (int64_t p = 0; p < HW; p++) {
                    size_t j = (size_t)s * isz + (size_t)c * HW + (size_t)p;
                    if (x[j] > 0) {
                        if (dx) dx[j] += dy[j];
                    } else {
                        if (dx) dx[j] += (float)(a * dy[j]);
                        acc += (double)dy[j] * x[j];
                    }
                }
            if (dw) dw[k] += (float)acc;
        }
        return FOOLC_OK;
    }
    case G_BN: {
        const int64_t HW = (int64_t)in.h * in.w;
        for (int32_t c = 0; c < in.c; c++) {
            const double is = 1.0 / sqrt((double)nd->var[c] + nd->eps);
            const float fs = (float)(nd->w[c] * is);
            double aw = 0, ab = 0;
            if (fast && !dw && !db) {
                for (int32_t s = 0; dx && s < n; s++) {
                    const size_t o = (size_t)s * isz + (size_t)c * HW;
                    v_axpy(dx + o, dy + o, (size_t)HW, fs);
                }
                continue;
            }
            for (int32_t s = 0; s < n; s++) {
                const size_t o = (size_t)s * isz + (size_t)c * HW;
                for (int64_t p = 0; p < HW; p++) {
                    if (dx) dx[o + p] += fast ? dy[o + p] * fs
                                              : (float)((double)dy[o + p] * nd->w[c] * is);
                    aw += (double)dy[o + p] * (((double)x[o + p] - nd->mean[c]) * is);
                    ab += dy[o + p];
                }
            }
            if (dw) dw[c] += (float)aw;
            if (db) db[c] += (float)ab;
        }
        return FOOLC_OK;
    }
    case G_MAXPOOL: case G_AVGPOOL:
        if (dx) pool_bwd(nd, in, n, x, dy, dx);
        return FOOLC_OK;
    case G_GAP: {
        const int64_t HW = (int64_t)in.h * in.w;
        if (dx)
            for (int64_t sc = 0; sc < (int64_t)n * in.c; sc++) {
                const float gv = (float)((double)dy[sc] / (double)HW);
                for (int64_t p = 0; p < HW; p++) dx[(size_t)sc * HW + p] += gv;
            }
        return FOOLC_OK;
    }
    case G_FLATTEN: case G_RESHAPE: case G_IDENTITY:
        if (dx)
            for (size_t j = 0; j < (size_t)n * isz; j++) dx[j] += dy[j];
        return FOOLC_OK;
    case G_TRANSPOSE:
        if (dx)
            for (int32_t s = 0; s < n; s++) {
                const float *d = dy + s * osz;
                float *gs = dx + s * isz;
                for (int32_t c = 0; c < od.c; c++)
                    for (int32_t h = 0; h < od.h; h++)
                        for (int32_t w = 0; w < od.w; w++) gs[tr_src(nd, in, c, h, w)] += *d++;
            }
        return FOOLC_OK;
    case G_CONCAT: {
        const int32_t od3[3] = { od.c, od.h, od.w };
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < nd->axis; k++) outer *= od3[k];
        for (int k = nd->axis + 1; k < 3; k++) inner *= od3[k];
        for (int32_t s = 0; s < n; s++) {
            const float *d = dy + s * osz;
            for (int64_t o = 0; o < outer; o++)
                for (int32_t j = 0; j < nd->nin; j++) {
                    const nn_dims dd = g->dims[nd->in[j]];
                    const int32_t d3[3] = { dd.c, dd.h, dd.w };
                    const size_t len = (size_t)d3[nd->axis] * (size_t)inner;
                    if (dxs[j]) {
                        float *gx = dxs[j] + (size_t)s * (size_t)nn_numel(dd) + (size_t)o * len;
                        for (size_t q = 0; q < len; q++) gx[q] += d[q];
                    }
                    d += len;
                }
        }
        return FOOLC_OK;
    }
    case G_PAD:
        if (dx)
            for (int32_t sc = 0; sc < n * in.c; sc++)
                for (int32_t h = 0; h < in.h; h++) {
                    const float *d = dy + (size_t)sc * od.h * od.w + (size_t)(h + nd->pt) * od.w +
                                     nd->pl;
                    float *gx = dx + (size_t)sc * in.h * in.w + (size_t)h * in.w;
                    for (int32_t w = 0; w < in.w; w++) gx[w] += d[w];
                }
        return FOOLC_OK;
    case G_SOFTMAX: case G_LOGSOFTMAX:
        if (dx)
            for (int32_t s = 0; s < n; s++) {
                const float *ys = y + (size_t)s * in.c, *d = dy + (size_t)s * in.c;
                float *gx = dx + (size_t)s * in.c;
                double dot = 0;
                if (nd->op == G_SOFTMAX) {
                    for (int32_t c = 0; c < in.c; c++) dot += (double)d[c] * ys[c];
                    for (int32_t c = 0; c < in.c; c++)
                        gx[c] += (float)((double)ys[c] * ((double)d[c] - dot));
                } else {
                    for (int32_t c = 0; c < in.c; c++) dot += d[c];
                    for (int32_t c = 0; c < in.c; c++)
                        gx[c] += (float)((double)d[c] - exp((double)ys[c]) * dot);
                }
            }
        return FOOLC_OK;
    default:
        if (dx && fast && nd->op == G_RELU) {
            v_relu_back(dx, x, dy, (size_t)n * isz);
            return FOOLC_OK;
        }
        if (dx)
            for (size_t j = 0; j < (size_t)n * isz; j++)
                dx[j] += (float)(dy[j] * unary_grad(nd, x[j], y[j]));
        return FOOLC_OK;
    }
}
