/* dense (PyTorch nn.Linear, weights (out, in)): y = x W^T + b on a flat input. The FAST
 * rules are oneDNN's sgemm (its AVX-512 kernels ran twice as fast as OpenBLAS's Haswell ones
 * here), batch-invariant: they compute the transposed products y^T = W x^T and
 * dx^T = W^T dy^T, with the batch as the columns of the result, and a batch of one padded
 * with a zero column (docs/net.md, "Batch invariance"); the reference rules are plain loops
 * with double accumulators. */
#include "nn/nn.h"

#include <cblas.h>
#include <math.h>
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
 * batch sizes (gemv for one row, another K blocking for a few rows: up to 3e-6 apart on the
 * reference CNN), but a column of W x^T the same way for any number of columns from 2 on
 * (the K order of a column depends on the shapes of W only; checked for 2..256 columns, one
 * and two threads, tests/check_net.c). So the FAST rules multiply with the batch as the
 * columns (nb = max(n, 2) of them, a lone row padded with a zero row) into the layer's tmp
 * and transpose. foolc__nn_dense_rowmajor = 1 restores the old batch-dependent products
 * (row-major, gemv for one row) for bench/bench_net.c's side-by-side figures only. */
int foolc__nn_dense_rowmajor;

static int32_t cols(int32_t n) { return n < 2 ? 2 : n; }

/* tmp layout of one call: the transposed result (rows x nb), then for n == 1 the input
 * padded to two rows (2 x inner). */
static size_t tmp_floats(int32_t rows, int32_t inner, int32_t n)
{
    return (size_t)rows * (size_t)cols(n) + (n == 1 ? 2 * (size_t)inner : 0);
}

/* The operand of the transposed product: v (n x inner), or for n == 1 v and a zero row. */
static const float *padded(const float *v, int32_t n, int32_t inner, float *t)
{
    if (n != 1) return v;
    memcpy(t, v, (size_t)inner * sizeof *t);
    memset(t + inner, 0, (size_t)inner * sizeof *t);
    return t;
}

/* out (n x rows) = the first n columns of t (rows x nb) transposed, plus bias (or NULL), in
 * 16 x 16 tiles. */
static void transpose_out(const float *restrict t, int32_t rows, int32_t n,
                          const float *restrict bias, float *restrict out)
{
    const size_t nb = (size_t)cols(n);
    for (int32_t r0 = 0; r0 < n; r0 += 16)
        for (int32_t i0 = 0; i0 < rows; i0 += 16) {
            int32_t r1 = r0 + 16 < n ? r0 + 16 : n, i1 = i0 + 16 < rows ? i0 + 16 : rows;
            for (int32_t r = r0; r < r1; r++)
                for (int32_t i = i0; i < i1; i++)
                    out[(size_t)r * rows + i] = t[(size_t)i * nb + r] + (bias ? bias[i] : 0.0f);
        }
}

static foolc_status dense_plan(const nn_layer *l, nn_step *st, const dnnl_memory_desc_t *prev)
{
    (void)prev;
    foolc__nn_md_plain(&st->in_md, st->n, l->in);
    foolc__nn_md_plain(&st->out_md, st->n, l->out_dims);
    size_t f = tmp_floats(l->out, l->in.c, st->n);
    if (st->need & NN_NEED_DATA) {
        size_t b = tmp_floats(l->in.c, l->out, st->n);
        if (b > f) f = b;
    }
    st->tmp_bytes = f * sizeof(float);
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
        float *t = a->tmp, *xt = t + (size_t)O * (size_t)cols(n);
        FOOLC__CHECK(gemm(l, 'N', 'T', O, cols(n), NI, l->w, NI, padded(a->x, n, NI, xt), NI, 0,
                          t, cols(n)));
        transpose_out(t, O, n, l->b, a->y);
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
        float *t = a->tmp, *dyt = t + (size_t)NI * (size_t)cols(n);
        FOOLC__CHECK(gemm(l, 'T', 'T', NI, cols(n), O, l->w, NI, padded(a->dy, n, O, dyt), O, 0,
                          t, cols(n)));
        transpose_out(t, NI, n, NULL, a->dx);
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
    .forward = dense_forward,
    .backward_data = dense_backward_data,
    .backward_weights = dense_backward_weights,
};
