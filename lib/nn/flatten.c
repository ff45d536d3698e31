/* flatten (PyTorch nn.Flatten): C x H x W becomes C*H*W x 1 x 1 in the same NCHW order.
 * Its output is its input's memory (the plan aliases them), so it costs nothing unless the
 * input must first be reordered from a blocked format to plain NCHW. */
#include "nn/nn.h"

#include <string.h>

static foolc_status flatten_init(nn_layer *l, const double *o)
{
    (void)o;
    l->out_dims.c = (int32_t)nn_numel(l->in);
    l->out_dims.h = l->out_dims.w = 1;
    return FOOLC_OK;
}

static double flatten_flops(const nn_layer *l)
{
    (void)l;
    return 0;
}

static foolc_status flatten_forward(const nn_layer *l, nn_step *st, const nn_args *a)
{
    (void)st;
    if (a->y != a->x) memcpy(a->y, a->x, (size_t)a->n * nn_numel(l->in) * sizeof(float));
    return FOOLC_OK;
}

static foolc_status flatten_backward_data(const nn_layer *l, nn_step *st, const nn_args *a)
{
    (void)st;
    if (a->dx != a->dy) memcpy(a->dx, a->dy, (size_t)a->n * nn_numel(l->in) * sizeof(float));
    return FOOLC_OK;
}

const nn_kind foolc__nn_flatten = {
    .name = "flatten",
    .real_key = -1,
    .alias = 1,
    .init = flatten_init,
    .flops = flatten_flops,
    .forward = flatten_forward,
    .backward_data = flatten_backward_data,
};
