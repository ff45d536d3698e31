/* dense (PyTorch nn.Linear, weights (out, in)): y = x W^T + b on a flat input. The FAST
 * rules for an image's output (forward, input gradient) are the engine's own vectorised
 * kernel, whose arithmetic does not depend on the batch (see "Batch invariance" below and in
 * docs/net.md); the weight gradients are oneDNN's sgemm for batches (its AVX-512 kernels ran
 * twice as fast as OpenBLAS's Haswell ones here) and OpenBLAS's sger for one row; the
 * reference rules are plain loops with double accumulators. */
#include "nn/nn.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Row-major C = A op(B) (+ C when acc); ta/tb: 'N' or 'T'. */
static foolc_status gemm(const nn_layer *l, char ta, char tb, int32_t M, int32_t N, int32_t K,
                         const float *A, int32_t lda, const float *B, int32_t ldb, int acc,
                         float *C, int32_t ldc)
{
    foolc__nn_omp_note();   /* a process forked after this plans on the reference backend */
    return foolc__dnnl(dnnl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, acc ? 1.0f : 0.0f, C,
                                  ldc),
                       "dnnl_sgemm", "dense", l->index);
}

/* Batch invariance. oneDNN's sgemm computes a row of x W^T with other arithmetic for other
 * batch sizes (gemv for one row, other K blockings for a few rows: up to 3e-6 apart on the
 * reference CNN), and a column-wise formulation (W x^T) that is invariant from two columns
 * on packs all of W per call, 2-3x slower for one image. So the FAST rules use the engine's
 * own kernel, whose arithmetic is fixed per output: out[r][j] = (sum over t in order of
 * in[r][t] * P[t][j], one fused multiply-add per term, in float) + bias[j], for every batch
 * size, position and thread count (it runs on the calling thread). P is W^T (forward) or W
 * (input gradient) packed once per parameter version in blocks of 16 outputs; tiles of 8, 4
 * or 1 rows by 32 outputs, every output by the same expression. foolc__nn_dense_rowmajor = 1 restores the old batch-dependent products
 * (oneDNN's sgemm, OpenBLAS's gemv for one row) for bench/bench_net.c's side-by-side
 * figures only. */
int foolc__nn_dense_rowmajor;

#define DK_B 16   /* outputs per packed block (one 16-float vector) */

/* As conv.c's thin rule: 16-float vectors, compiled for AVX-512, AVX2 and the baseline and
 * chosen at load time (not under ThreadSanitizer, whose runtime is not up when the ifunc
 * resolver runs), with fused multiply-adds. The clone is chosen once per process, so every
 * call computes the same way. */
#if defined(__GNUC__)
typedef float dk_v __attribute__((vector_size(DK_B * sizeof(float))));
#define DK_VEC 1
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DK_NO_CLONES 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define DK_NO_CLONES 1
#endif
#if defined(__x86_64__) && defined(__has_attribute) && !defined(DK_NO_CLONES)
#if __has_attribute(target_clones)
#define DK_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#endif
#endif
#if !defined(__clang__)
#define DK_CONTRACT __attribute__((optimize("fp-contract=fast")))
#endif
#endif
#ifndef DK_CLONES
#define DK_CLONES
#endif
#ifndef DK_CONTRACT
#define DK_CONTRACT
#endif

typedef struct dense_impl {
    float *pf, *pb;              /* packed W^T (forward) and W (input gradient), or NULL */
    uint64_t pf_ver, pb_ver;
} dense_impl;

static int32_t nblocks(int32_t J) { return (J + DK_B - 1) / DK_B; }

/* P[jb][t][i] = M[jb * 16 + i][t] (0 past J) for M given by its element (j, t) at
 * m[j * sj + t * st]. */
static void dk_pack(const float *m, size_t sj, size_t st, int32_t J, int32_t T, float *P)
{
    for (int32_t jb = 0; jb < nblocks(J); jb++)
        for (int32_t t = 0; t < T; t++)
            for (int32_t i = 0; i < DK_B; i++) {
                int32_t j = jb * DK_B + i;
                P[((size_t)jb * T + t) * DK_B + i] = j < J ? m[(size_t)j * sj + (size_t)t * st]
                                                           : 0.0f;
            }
}

#if defined(DK_VEC)
/* R rows (R <= 8, a constant after inlining) by 2 blocks from row pointer in (rows T
 * apart): acc[i][j] = sum over t in order of in[i][t] * p_j[t], one expression per output. */
#if defined(__GNUC__) && !defined(__clang__)
#define DK_UNROLL _Pragma("GCC unroll 8")
#else
#define DK_UNROLL
#endif
static inline __attribute__((always_inline)) void dk_tile(const float *restrict in, int32_t T,
                                                          const float *restrict p0,
                                                          const float *restrict p1, int R,
                                                          float acc[][2][DK_B])
{
    dk_v a[8][2];
    DK_UNROLL
    for (int i = 0; i < R; i++) a[i][0] = a[i][1] = (dk_v){ 0 };
    for (int32_t t = 0; t < T; t++) {
        dk_v w0, w1;
        memcpy(&w0, p0 + (size_t)t * DK_B, sizeof w0);
        memcpy(&w1, p1 + (size_t)t * DK_B, sizeof w1);
        DK_UNROLL
        for (int i = 0; i < R; i++) {
            const float xv = in[(size_t)i * (size_t)T + (size_t)t];
            a[i][0] += xv * w0;
            a[i][1] += xv * w1;
        }
    }
    DK_UNROLL
    for (int i = 0; i < R; i++) {
        memcpy(acc[i][0], &a[i][0], sizeof a[i][0]);
        memcpy(acc[i][1], &a[i][1], sizeof a[i][1]);
    }
}
#endif

/* out (n x J) = in (n x T) times the packed P (T x J), plus bias (or NULL): tiles of 8
 * rows, then 4, then single rows, each by 2 blocks of 16 outputs (an odd last block is
 * computed twice); every output by the same expression. */
DK_CLONES DK_CONTRACT
static void dk_run(const float *restrict in, int32_t n, int32_t T, const float *restrict P,
                   int32_t J, const float *restrict bias, float *restrict out)
{
    const int32_t JB = nblocks(J);
    for (int32_t jb = 0; jb < JB; jb += 2) {
        const int32_t nj = jb + 1 < JB ? 2 : 1;
        const float *p0 = P + (size_t)jb * (size_t)T * DK_B;
        const float *p1 = nj == 2 ? p0 + (size_t)T * DK_B : p0;
        for (int32_t r = 0; r < n;) {
            const int32_t nr = n - r >= 8 ? 8 : n - r >= 4 ? 4 : 1;
            const float *x = in + (size_t)r * T;
            float acc[8][2][DK_B];
#if defined(DK_VEC)
            if (nr == 8) dk_tile(x, T, p0, p1, 8, acc);
            else if (nr == 4) dk_tile(x, T, p0, p1, 4, acc);
            else dk_tile(x, T, p0, p1, 1, acc);
#else
            memset(acc, 0, sizeof acc);
            for (int32_t t = 0; t < T; t++)
                for (int32_t i = 0; i < nr; i++)
                    for (int k = 0; k < DK_B; k++) {
                        acc[i][0][k] += x[(size_t)i * T + t] * p0[(size_t)t * DK_B + k];
                        acc[i][1][k] += x[(size_t)i * T + t] * p1[(size_t)t * DK_B + k];
                    }
#endif
            for (int32_t i = 0; i < nr; i++)
                for (int32_t j = 0; j < nj; j++) {
                    const int32_t c0 = (jb + j) * DK_B, m = J - c0 < DK_B ? J - c0 : DK_B;
                    float *o = out + (size_t)(r + i) * J + c0;
                    if (bias)
                        for (int32_t k = 0; k < m; k++) o[k] = acc[i][j][k] + bias[c0 + k];
                    else
                        memcpy(o, acc[i][j], (size_t)m * sizeof *o);
                }
            r += nr;
        }
    }
}

static void dense_plan_free(nn_step *st)
{
    dense_impl *im = st->impl;
    if (!im) return;
    foolc__free(im->pf);
    foolc__free(im->pb);
    foolc__free(im);
    st->impl = NULL;
}

static foolc_status dense_plan(const nn_layer *l, nn_step *st, const dnnl_memory_desc_t *prev)
{
    (void)prev;
    foolc__nn_md_plain(&st->in_md, st->n, l->in);
    foolc__nn_md_plain(&st->out_md, st->n, l->out_dims);
    dense_impl *im = foolc__calloc(1, sizeof *im);
    if (!im) return foolc__nomem("a dense plan");
    st->impl = im;
    const size_t f = sizeof(float) * DK_B;
    im->pf = foolc__malloc(foolc__mul(foolc__mul((size_t)nblocks(l->out), (size_t)l->in.c), f));
    if (!im->pf) return foolc__nomem("packed dense weights");
    if (st->need & NN_NEED_DATA) {
        im->pb = foolc__malloc(foolc__mul(foolc__mul((size_t)nblocks(l->in.c), (size_t)l->out),
                                          f));
        if (!im->pb) return foolc__nomem("packed dense weights");
    }
    return FOOLC_OK;
}

static foolc_status dense_init(nn_layer *l, const double *o)
{
    l->out = (int32_t)o[0];
    if (l->in.h != 1 || l->in.w != 1)
        return foolc__nn_lerr(FOOLC_E_INVALID, l,
                              "input is %dx%dx%d, not flat; put 'flatten' before it "
                              "(as nn.Flatten in PyTorch)", (int)l->in.c, (int)l->in.h,
                              (int)l->in.w);
    if ((double)l->out * l->in.c > (double)NN_MAX_PARAMS)
        return foolc__nn_lerr(FOOLC_E_INVALID, l, "too many weights");
    l->out_dims.c = l->out;
    l->out_dims.h = l->out_dims.w = 1;
    l->nw = (int64_t)l->out * l->in.c;
    l->nb = l->out;
    return FOOLC_OK;
}

static void dense_init_params(nn_layer *l, uint64_t seed)
{
    nn_init_uniform(l, seed, (double)l->in.c);
}

static int64_t dense_bound(nn_layer *l) { return foolc__nn_bound_affine(l, l->in.c); }

static double dense_flops(const nn_layer *l) { return 2.0 * l->out * (double)l->in.c; }

static foolc_status dense_forward(const nn_layer *l, nn_step *st, const nn_args *a)
{
    const int32_t NI = l->in.c, O = l->out, n = a->n;
    if (!st->fast) {
        for (int32_t r = 0; r < n; r++)
            for (int32_t o = 0; o < O; o++) {
                double acc = l->b[o];
                const float *x = a->x + (size_t)r * NI, *w = l->w + (size_t)o * NI;
                for (int32_t i = 0; i < NI; i++) acc += (double)x[i] * w[i];
                a->y[(size_t)r * O + o] = (float)acc;
            }
        return FOOLC_OK;
    }
    if (!foolc__nn_dense_rowmajor) {
        dense_impl *im = st->impl;
        if (im->pf_ver != a->pver) {
            dk_pack(l->w, (size_t)NI, 1, O, NI, im->pf);
            im->pf_ver = a->pver;
        }
        dk_run(a->x, n, NI, im->pf, O, l->b, a->y);
        return FOOLC_OK;
    }
    for (int32_t r = 0; r < n; r++)
        for (int32_t o = 0; o < O; o++) a->y[(size_t)r * O + o] = l->b[o];
    if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, O, NI, 1.0f, l->w, NI, a->x, 1, 1.0f, a->y, 1);
    else
        return gemm(l, 'N', 'T', n, O, NI, a->x, NI, l->w, NI, 1, a->y, O);
    return FOOLC_OK;
}

static foolc_status dense_backward_data(const nn_layer *l, nn_step *st, const nn_args *a)
{
    const int32_t NI = l->in.c, O = l->out, n = a->n;
    if (!st->fast) {
        for (int32_t r = 0; r < n; r++)
            for (int32_t i = 0; i < NI; i++) {
                double acc = 0;
                for (int32_t o = 0; o < O; o++)
                    acc += (double)a->dy[(size_t)r * O + o] * l->w[(size_t)o * NI + i];
                a->dx[(size_t)r * NI + i] = (float)acc;
            }
        return FOOLC_OK;
    }
    if (!foolc__nn_dense_rowmajor) {
        dense_impl *im = st->impl;
        if (im->pb_ver != a->pver) {
            dk_pack(l->w, 1, (size_t)NI, NI, O, im->pb);
            im->pb_ver = a->pver;
        }
        dk_run(a->dy, n, O, im->pb, NI, NULL, a->dx);
        return FOOLC_OK;
    }
    if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, O, NI, 1.0f, l->w, NI, a->dy, 1, 0.0f, a->dx, 1);
    else
        return gemm(l, 'N', 'N', n, NI, O, a->dy, O, l->w, NI, 0, a->dx, NI);
    return FOOLC_OK;
}

static foolc_status dense_backward_weights(const nn_layer *l, nn_step *st, const nn_args *a)
{
    const int32_t NI = l->in.c, O = l->out, n = a->n;
    for (int32_t o = 0; o < O; o++) {
        double acc = 0;
        for (int32_t r = 0; r < n; r++) acc += a->dy[(size_t)r * O + o];
        a->db[o] += (float)acc;
    }
    if (!st->fast) {
        for (int32_t o = 0; o < O; o++)
            for (int32_t i = 0; i < NI; i++) {
                double acc = 0;
                for (int32_t r = 0; r < n; r++)
                    acc += (double)a->dy[(size_t)r * O + o] * a->x[(size_t)r * NI + i];
                a->dw[(size_t)o * NI + i] += (float)acc;
            }
        return FOOLC_OK;
    }
    if (n == 1)
        cblas_sger(CblasRowMajor, O, NI, 1.0f, a->dy, 1, a->x, 1, a->dw, NI);
    else
        return gemm(l, 'T', 'N', O, NI, n, a->dy, O, a->x, NI, 1, a->dw, NI);
    return FOOLC_OK;
}

const nn_kind foolc__nn_dense = {
    .name = "dense",
    .keys = { "out" },
    .real_key = -1,
    .required = 1u,
    .key_min = { 1 },
    .init = dense_init,
    .init_params = dense_init_params,
    .bound = dense_bound,
    .flops = dense_flops,
    .plan = dense_plan,
    .plan_free = dense_plan_free,
    .forward = dense_forward,
    .backward_data = dense_backward_data,
    .backward_weights = dense_backward_weights,
};
