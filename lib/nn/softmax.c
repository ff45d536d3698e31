/* softmax over the features of a flat input (PyTorch nn.Softmax(dim=1)), computed with the
 * maximum subtracted; the input gradient is dx = y * (dy - sum(dy * y)). */
#include "nn/nn.h"

#include <math.h>

static foolc_status softmax_init(nn_layer *l, const double *o)
{
    (void)o;
    if (l->in.h != 1 || l->in.w != 1)
        return foolc__nn_lerr(FOOLC_E_INVALID, l,
                              "input is %dx%dx%d, not flat; put 'flatten' before it",
                              (int)l->in.c, (int)l->in.h, (int)l->in.w);
    l->out_dims = l->in;
    return FOOLC_OK;
}

/* Overflow bound: every value is in [0, 1] (the maximum is subtracted first). */
static int64_t softmax_bound(nn_layer *l)
{
    l->gain = 0;
    l->shift = 1;
    return l->in.c;
}

static double softmax_flops(const nn_layer *l)
{
    (void)l;
    return 0;
}

static foolc_status softmax_forward(const nn_layer *l, nn_step *st, const nn_args *a)
{
    (void)st;
    const int32_t C = l->in.c;
    for (int32_t r = 0; r < a->n; r++) {
        const float *x = a->x + (size_t)r * C;
        float *y = a->y + (size_t)r * C;
        float m = x[0];
        for (int32_t j = 1; j < C; j++)
            if (x[j] > m) m = x[j];
        double sum = 0;
        for (int32_t j = 0; j < C; j++) {
            y[j] = expf(x[j] - m);
            sum += y[j];
        }
        float inv = (float)(1.0 / sum);
        for (int32_t j = 0; j < C; j++) y[j] *= inv;
    }
    return FOOLC_OK;
}

static foolc_status softmax_backward_data(const nn_layer *l, nn_step *st, const nn_args *a)
{
    (void)st;
    const int32_t C = l->in.c;
    for (int32_t r = 0; r < a->n; r++) {
        const float *y = a->y + (size_t)r * C, *dy = a->dy + (size_t)r * C;
        float *dx = a->dx + (size_t)r * C;
        double dot = 0;
        for (int32_t j = 0; j < C; j++) dot += (double)dy[j] * y[j];
        for (int32_t j = 0; j < C; j++) dx[j] = (float)(y[j] * (dy[j] - dot));
    }
    return FOOLC_OK;
}

const nn_kind foolc__nn_softmax = {
    .name = "softmax",
    .real_key = -1,
    .init = softmax_init,
    .bound = softmax_bound,
    .flops = softmax_flops,
    .forward = softmax_forward,
    .backward_data = softmax_backward_data,
};
