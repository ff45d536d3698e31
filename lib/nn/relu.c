/* relu: y = max(x, 0) (NaN passes through), and its input gradient dx = dy where y > 0.
 * It works on any memory format (oneDNN's blocked ones included: their padding holds
 * zeros, which stay zeros), so in the FAST backend it keeps the previous layer's format;
 * after a conv2d it is that convolution's post-op and its output aliases its input. */
#include "nn/nn.h"

static foolc_status relu_init(nn_layer *l, const double *o)
{
    (void)o;
    l->out_dims = l->in;
    return FOOLC_OK;
}

static double relu_flops(const nn_layer *l)
{
    (void)l;
    return 0;
}

static foolc_status relu_plan(const nn_layer *l, nn_step *st, const dnnl_memory_desc_t *prev)
{
    (void)l;
    st->in_md = st->out_md = *prev;
    return FOOLC_OK;
}

static foolc_status relu_forward(const nn_layer *l, nn_step *st, const nn_args *a)
{
    (void)l;
    (void)st;
    if (a->y == a->x) return FOOLC_OK; /* done by the convolution before it */
    const float *x = a->x;
    float *y = a->y;
    for (size_t j = 0; j < a->ylen; j++) y[j] = x[j] < 0.0f ? 0.0f : x[j];
    return FOOLC_OK;
}

static foolc_status relu_backward_data(const nn_layer *l, nn_step *st, const nn_args *a)
{
    (void)l;
    (void)st;
    const float *y = a->y, *dy = a->dy; /* dx may be dy: the gradient is updated in place */
    float *dx = a->dx;
    for (size_t j = 0; j < a->ylen; j++) dx[j] = y[j] > 0.0f ? dy[j] : 0.0f;
    return FOOLC_OK;
}

const nn_kind foolc__nn_relu = {
    .name = "relu",
    .real_key = -1,
    .init = relu_init,
    .flops = relu_flops,
    .plan = relu_plan,
    .forward = relu_forward,
    .backward_data = relu_backward_data,
};
