/* dense (PyTorch nn.Linear, weights (out, in)): y = x W^T + b on a flat input. The FAST
 * rules are oneDNN's sgemm for batches (its AVX-512 kernels ran twice as fast as OpenBLAS's
 * Haswell ones here) and OpenBLAS sgemv/sger for one row; the reference rules are plain
 * loops with double accumulators. */
#include "nn/nn.h"

#include <cblas.h>
#include <math.h>

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
    .forward = dense_forward,
    .backward_data = dense_backward_data,
    .backward_weights = dense_backward_weights,
};
