/* relu: y = max(x, 0), and its input gradient dx = dy where y > 0, on any memory format.
 * FAST: oneDNN eltwise primitives (relu_use_dst_for_bwd, threaded) on large tensors, plain
 * loops on small ones; after a conv2d the relu is that convolution's post-op and its output
 * aliases its input, and before a maxpool its mask is applied by the pool to the smaller
 * pooled gradient. REFERENCE: the plain loops (NaN passes through the forward rule). */
#include "nn/nn.h"

#include <string.h>

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

/* Plain loops, written in blocks of 8 so that GCC vectorises them at -O2. */
static void relu_loop(const float *restrict x, float *restrict y, size_t n)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) y[j + k] = x[j + k] < 0.0f ? 0.0f : x[j + k];
    for (; j < n; j++) y[j] = x[j] < 0.0f ? 0.0f : x[j];
}

static void mask_inplace(const float *restrict y, float *restrict d, size_t n)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) d[j + k] = y[j + k] > 0.0f ? d[j + k] : 0.0f;
    for (; j < n; j++) d[j] = y[j] > 0.0f ? d[j] : 0.0f;
}

static void mask_copy(const float *restrict y, const float *restrict dy, float *restrict dx,
                      size_t n)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) {
            float g = dy[j + k];
            dx[j + k] = y[j + k] > 0.0f ? g : 0.0f;
        }
    for (; j < n; j++) dx[j] = y[j] > 0.0f ? dy[j] : 0.0f;
}

void foolc__nn_relu_mask(const float *y, const float *dy, float *dx, size_t n)
{
    if (dx == dy) mask_inplace(y, dx, n);
    else mask_copy(y, dy, dx, n);
}

void foolc__nn_relu_free(nn_relu_prims *r)
{
    if (r->fwd) dnnl_primitive_destroy(r->fwd);
    if (r->bwd) dnnl_primitive_destroy(r->bwd);
    dnnl_memory_t *mems[] = { &r->src, &r->dst, &r->ddst, &r->dsrc, &r->fscr, &r->bscr };
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++) foolc__nn_mem_free(mems[i]);
    memset(r, 0, sizeof *r);
}

foolc_status foolc__nn_relu_make(const nn_fast *fx, const dnnl_memory_desc_t *md, int bwd,
                                 int32_t layer, nn_relu_prims *r, size_t *scratch)
{
    const dnnl_alg_kind_t alg = dnnl_eltwise_relu_use_dst_for_bwd;
    dnnl_eltwise_desc_t d;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    memset(r, 0, sizeof *r);
    foolc_status st = foolc__dnnl(dnnl_eltwise_forward_desc_init(&d, dnnl_forward_training, alg,
                                                                 md, 0.0f, 0.0f),
                                  "dnnl_eltwise_forward_desc_init", "relu", layer);
    if (st == FOOLC_OK) st = foolc__nn_pd(fx, &d, NULL, &fpd, &r->fwd, "relu forward", layer);
    if (st == FOOLC_OK) st = foolc__nn_mem(fx, md, &r->src, layer);
    if (st == FOOLC_OK) st = foolc__nn_mem(fx, md, &r->dst, layer);
    if (st == FOOLC_OK) st = foolc__nn_scratch_mem(fx, fpd, &r->fscr, scratch, layer);
    if (st == FOOLC_OK && bwd) {
        st = foolc__dnnl(dnnl_eltwise_backward_desc_init(&d, alg, md, md, 0.0f, 0.0f),
                         "dnnl_eltwise_backward_desc_init", "relu", layer);
        if (st == FOOLC_OK) st = foolc__nn_pd(fx, &d, fpd, &bpd, &r->bwd, "relu backward", layer);
        if (st == FOOLC_OK) st = foolc__nn_mem(fx, md, &r->ddst, layer);
        if (st == FOOLC_OK) st = foolc__nn_mem(fx, md, &r->dsrc, layer);
        if (st == FOOLC_OK) st = foolc__nn_scratch_mem(fx, bpd, &r->bscr, scratch, layer);
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
    if (st != FOOLC_OK) foolc__nn_relu_free(r);
    return st;
}

foolc_status foolc__nn_relu_forward(const nn_fast *fx, nn_relu_prims *r, const float *x,
                                    float *y, void *scratch, int32_t layer)
{
    int arg[3] = { DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[3] = { r->src, r->dst, r->fscr };
    void *ptr[3] = { (void *)x, y, scratch };
    return foolc__nn_run_prim(fx, r->fwd, 3, arg, mem, ptr, "relu forward", layer);
}

foolc_status foolc__nn_relu_backward(const nn_fast *fx, nn_relu_prims *r, const float *y,
                                     const float *dy, float *dx, void *scratch, int32_t layer)
{
    int arg[4] = { DNNL_ARG_DST, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC, DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[4] = { r->dst, r->ddst, r->dsrc, r->bscr };
    void *ptr[4] = { (void *)y, (void *)dy, dx, scratch };
    return foolc__nn_run_prim(fx, r->bwd, 4, arg, mem, ptr, "relu backward", layer);
}

static void relu_plan_free(nn_step *st)
{
    if (!st->impl) return;
    foolc__nn_relu_free(st->impl);
    foolc__free(st->impl);
    st->impl = NULL;
}

static foolc_status relu_plan(const nn_layer *l, nn_step *st, const dnnl_memory_desc_t *prev)
{
    st->in_md = st->out_md = *prev;
    if (st->alias && st->skip_backward) return FOOLC_OK; /* nothing left to do */
    if (dnnl_memory_desc_get_size(prev) / sizeof(float) < NN_ELTWISE_MIN) return FOOLC_OK;
    nn_relu_prims *r = foolc__calloc(1, sizeof *r);
    if (!r) return foolc__nomem("a relu plan");
    st->impl = r;
    return foolc__nn_relu_make(st->fx, prev, (st->need & NN_NEED_DATA) != 0, l->index, r,
                               &st->scratch_bytes);
}

static foolc_status relu_forward(const nn_layer *l, nn_step *st, const nn_args *a)
{
    if (a->y == a->x) return FOOLC_OK; /* done by the convolution before it */
    if (st->impl) return foolc__nn_relu_forward(st->fx, st->impl, a->x, a->y, a->scratch,
                                                l->index);
    relu_loop(a->x, a->y, a->ylen);
    return FOOLC_OK;
}

static foolc_status relu_backward_data(const nn_layer *l, nn_step *st, const nn_args *a)
{
    if (st->impl) return foolc__nn_relu_backward(st->fx, st->impl, a->y, a->dy, a->dx,
                                                 a->scratch, l->index);
    foolc__nn_relu_mask(a->y, a->dy, a->dx, a->ylen);
    return FOOLC_OK;
}

const nn_kind foolc__nn_relu = {
    .name = "relu",
    .real_key = -1,
    .init = relu_init,
    .flops = relu_flops,
    .plan = relu_plan,
    .plan_free = relu_plan_free,
    .forward = relu_forward,
    .backward_data = relu_backward_data,
};
