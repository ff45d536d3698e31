/* batchnorm in inference mode (PyTorch BatchNorm1d/2d after eval()): per channel
 * y = (x - running_mean) / sqrt(running_var + eps) * weight + bias. Training keeps the
 * running statistics fixed and learns weight and bias (a per-channel affine layer). */
#include "nn/nn.h"

#include <math.h>

static foolc_status bn_init(nn_layer *l, const double *o)
{
    l->eps = o[0] < 0 ? 1e-5 : o[0];
    l->out_dims = l->in;
    l->nw = l->nb = l->in.c;
    l->ns = 2 * (int64_t)l->in.c;
    return FOOLC_OK;
}

static void bn_init_params(nn_layer *l, uint64_t seed)
{
    (void)seed;
    for (int32_t c = 0; c < l->in.c; c++) {
        l->w[c] = 1.0f;
        l->b[c] = 0.0f;
        l->mean[c] = 0.0f;
        l->var[c] = 1.0f;
    }
}

static double bn_flops(const nn_layer *l) { return 2.0 * (double)nn_numel(l->in); }

static double inv_std(const nn_layer *l, int32_t c) { return 1.0 / sqrt(l->var[c] + l->eps); }

/* The float scale and shift of channel c, as the forward rule computes them. */
static void bn_affine(const nn_layer *l, int32_t c, float *scale, float *shift)
{
    double is = inv_std(l, c);
    *scale = (float)(l->w[c] * is);
    *shift = (float)(l->b[c] - l->mean[c] * l->w[c] * is);
}

/* Overflow bound: |y| <= |scale| |x| + |shift| with two roundings; a scale or shift that is
 * itself not finite (a tiny variance and eps) gives no bound. */
static int64_t bn_bound(nn_layer *l)
{
    double g = 0, s = 0;
    for (int32_t c = 0; c < l->in.c; c++) {
        float scale, shift;
        bn_affine(l, c, &scale, &shift);
        if (!isfinite(scale) || !isfinite(shift)) g = INFINITY;
        if (fabsf(scale) > g) g = fabsf(scale);
        if (fabsf(shift) > s) s = fabsf(shift);
    }
    l->gain = g;
    l->shift = s;
    return 1;
}

static foolc_status bn_forward(const nn_layer *l, nn_step *st, const nn_args *a)
{
    (void)st;
    const int32_t C = l->in.c;
    const size_t hw = (size_t)l->in.h * l->in.w;
    for (int32_t c = 0; c < C; c++) {
        float scale, shift;
        bn_affine(l, c, &scale, &shift);
        for (int32_t r = 0; r < a->n; r++) {
            const float *restrict x = a->x + ((size_t)r * C + c) * hw;
            float *restrict y = a->y + ((size_t)r * C + c) * hw;
            for (size_t j = 0; j < hw; j++) y[j] = x[j] * scale + shift;
        }
    }
    return FOOLC_OK;
}

static foolc_status bn_backward_data(const nn_layer *l, nn_step *st, const nn_args *a)
{
    (void)st;
    const int32_t C = l->in.c;
    const size_t hw = (size_t)l->in.h * l->in.w;
    for (int32_t c = 0; c < C; c++) {
        float scale = (float)(l->w[c] * inv_std(l, c));
        for (int32_t r = 0; r < a->n; r++) {
            const float *restrict dy = a->dy + ((size_t)r * C + c) * hw;
            float *restrict dx = a->dx + ((size_t)r * C + c) * hw;
            for (size_t j = 0; j < hw; j++) dx[j] = dy[j] * scale;
        }
    }
    return FOOLC_OK;
}

static foolc_status bn_backward_weights(const nn_layer *l, nn_step *st, const nn_args *a)
{
    (void)st;
    const int32_t C = l->in.c;
    const size_t hw = (size_t)l->in.h * l->in.w;
    for (int32_t c = 0; c < C; c++) {
        double is = inv_std(l, c), sw = 0, sb = 0;
        for (int32_t r = 0; r < a->n; r++) {
            const float *dy = a->dy + ((size_t)r * C + c) * hw;
            const float *x = a->x + ((size_t)r * C + c) * hw;
            for (size_t j = 0; j < hw; j++) {
                sw += (double)dy[j] * ((x[j] - (double)l->mean[c]) * is);
                sb += dy[j];
            }
        }
        a->dw[c] += (float)sw;
        a->db[c] += (float)sb;
    }
    return FOOLC_OK;
}

const nn_kind foolc__nn_batchnorm = {
    .name = "batchnorm",
    .keys = { "eps" },
    .real_key = 0,
    .init = bn_init,
    .init_params = bn_init_params,
    .bound = bn_bound,
    .flops = bn_flops,
    .forward = bn_forward,
    .backward_data = bn_backward_data,
    .backward_weights = bn_backward_weights,
};
