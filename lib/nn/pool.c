/* maxpool2d and avgpool2d (PyTorch semantics: floor mode, padding at most half the kernel,
 * average counting the padding): the FAST rules on oneDNN pooling (the max pool keeps its
 * workspace from forward to backward) and the plain-C reference rules. */
#include "nn/nn.h"

#include <float.h>
#include <string.h>

typedef struct pool_impl {
    dnnl_primitive_desc_t fpd;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t f_src, f_dst, f_ws, f_scr;
    dnnl_memory_t b_dsrc, b_ddst, b_ws, b_scr;
    nn_relu_prims mask;                  /* the previous relu's backward (relu_mask) */
} pool_impl;

static int is_max(const nn_layer *l) { return l->kind == &foolc__nn_maxpool2d; }

static foolc_status pool_init(nn_layer *l, const double *o)
{
    l->k = (int32_t)o[0];
    l->s = o[1] < 0 ? l->k : (int32_t)o[1];
    l->p = o[2] < 0 ? 0 : (int32_t)o[2];
    if (2 * l->p > l->k)
        return foolc__nn_lerr(FOOLC_E_INVALID, l,
                              "padding p=%d must be at most half the kernel k=%d", (int)l->p,
                              (int)l->k);
    int64_t hp = (int64_t)l->in.h + 2 * l->p, wp = (int64_t)l->in.w + 2 * l->p;
    if (l->k > hp || l->k > wp)
        return foolc__nn_lerr(FOOLC_E_INVALID, l,
                              "kernel k=%d is larger than the padded input %lldx%lld",
                              (int)l->k, (long long)hp, (long long)wp);
    l->out_dims.c = l->in.c;
    l->out_dims.h = (int32_t)((hp - l->k) / l->s + 1);
    l->out_dims.w = (int32_t)((wp - l->k) / l->s + 1);
    return FOOLC_OK;
}

static double pool_flops(const nn_layer *l)
{
    (void)l;
    return 0;
}

/* ---- reference rules ---------------------------------------------------------------- */

/* The window of output (oh, ow), clipped to the input. */
static void window(const nn_layer *l, int32_t oh, int32_t ow, int32_t *h0, int32_t *h1,
                   int32_t *w0, int32_t *w1)
{
    *h0 = oh * l->s - l->p;
    *w0 = ow * l->s - l->p;
    *h1 = *h0 + l->k;
    *w1 = *w0 + l->k;
    if (*h0 < 0) *h0 = 0;
    if (*w0 < 0) *w0 = 0;
    if (*h1 > l->in.h) *h1 = l->in.h;
    if (*w1 > l->in.w) *w1 = l->in.w;
}

/* Index of the first maximum in the window within one channel plane. */
static size_t argmax(const nn_layer *l, const float *plane, int32_t oh, int32_t ow)
{
    int32_t h0, h1, w0, w1;
    window(l, oh, ow, &h0, &h1, &w0, &w1);
    size_t best = (size_t)h0 * l->in.w + w0;
    for (int32_t h = h0; h < h1; h++)
        for (int32_t w = w0; w < w1; w++) {
            size_t j = (size_t)h * l->in.w + w;
            if (plane[j] > plane[best]) best = j;
        }
    return best;
}

static void ref_forward(const nn_layer *l, const nn_args *a)
{
    const size_t ip = (size_t)l->in.h * l->in.w, op = (size_t)l->out_dims.h * l->out_dims.w;
    const double area = (double)l->k * l->k;
    for (size_t pl = 0; pl < (size_t)a->n * l->in.c; pl++) {
        const float *x = a->x + pl * ip;
        float *y = a->y + pl * op;
        for (int32_t oh = 0; oh < l->out_dims.h; oh++)
            for (int32_t ow = 0; ow < l->out_dims.w; ow++) {
                float *yo = &y[(size_t)oh * l->out_dims.w + ow];
                if (is_max(l)) {
                    *yo = x[argmax(l, x, oh, ow)];
                    continue;
                }
                int32_t h0, h1, w0, w1;
                window(l, oh, ow, &h0, &h1, &w0, &w1);
                double acc = 0;
                for (int32_t h = h0; h < h1; h++)
                    for (int32_t w = w0; w < w1; w++) acc += x[(size_t)h * l->in.w + w];
                *yo = (float)(acc / area);
            }
    }
}

static void ref_backward_data(const nn_layer *l, const nn_args *a)
{
    const size_t ip = (size_t)l->in.h * l->in.w, op = (size_t)l->out_dims.h * l->out_dims.w;
    const float inv = 1.0f / ((float)l->k * (float)l->k);
    memset(a->dx, 0, (size_t)a->n * l->in.c * ip * sizeof(float));
    for (size_t pl = 0; pl < (size_t)a->n * l->in.c; pl++) {
        const float *x = a->x + pl * ip, *dy = a->dy + pl * op;
        float *dx = a->dx + pl * ip;
        for (int32_t oh = 0; oh < l->out_dims.h; oh++)
            for (int32_t ow = 0; ow < l->out_dims.w; ow++) {
                float g = dy[(size_t)oh * l->out_dims.w + ow];
                if (is_max(l)) {
                    dx[argmax(l, x, oh, ow)] += g;
                    continue;
                }
                int32_t h0, h1, w0, w1;
                window(l, oh, ow, &h0, &h1, &w0, &w1);
                for (int32_t h = h0; h < h1; h++)
                    for (int32_t w = w0; w < w1; w++) dx[(size_t)h * l->in.w + w] += g * inv;
            }
    }
}

/* ---- FAST rules (oneDNN) ------------------------------------------------------------ */

static void pool_plan_free(nn_step *st)
{
    pool_impl *im = st->impl;
    if (!im) return;
    if (im->fwd) dnnl_primitive_destroy(im->fwd);
    if (im->bwd) dnnl_primitive_destroy(im->bwd);
    if (im->fpd) dnnl_primitive_desc_destroy(im->fpd);
    dnnl_memory_t *mems[] = { &im->f_src, &im->f_dst, &im->f_ws, &im->f_scr,
                              &im->b_dsrc, &im->b_ddst, &im->b_ws, &im->b_scr };
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++) foolc__nn_mem_free(mems[i]);
    foolc__nn_relu_free(&im->mask);
    foolc__free(im);
    st->impl = NULL;
}

static foolc_status pool_plan(const nn_layer *l, nn_step *st, const dnnl_memory_desc_t *prev)
{
    const nn_fast *fx = st->fx;
    pool_impl *im = foolc__calloc(1, sizeof *im);
    if (!im) return foolc__nomem("a pooling plan");
    st->impl = im;
    dnnl_alg_kind_t alg = is_max(l) ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
    dnnl_prop_kind_t prop = st->need ? dnnl_forward_training : dnnl_forward_inference;
    dnnl_dims_t dd = { st->n, l->out_dims.c, l->out_dims.h, l->out_dims.w };
    dnnl_dims_t strides = { l->s, l->s }, kernel = { l->k, l->k }, pad = { l->p, l->p };
    dnnl_memory_desc_t dst;
    FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32,
                                                          dnnl_format_tag_any),
                             "dnnl_memory_desc_init_by_tag", "pool dst", l->index));
    dnnl_pooling_desc_t d;
    FOOLC__CHECK(foolc__dnnl(dnnl_pooling_forward_desc_init(&d, prop, alg, prev, &dst, strides,
                                                            kernel, pad, pad),
                             "dnnl_pooling_forward_desc_init", l->kind->name, l->index));
    FOOLC__CHECK(foolc__nn_pd(fx, &d, NULL, &im->fpd, &im->fwd, "pool forward", l->index));
    st->in_md = *prev;
    st->out_md = *dnnl_primitive_desc_query_md(im->fpd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(im->fpd, dnnl_query_workspace_md,
                                                                0);
    st->ws_bytes = ws ? dnnl_memory_desc_get_size(ws) : 0;
    FOOLC__CHECK(foolc__nn_mem(fx, &st->in_md, &im->f_src, l->index));
    FOOLC__CHECK(foolc__nn_mem(fx, &st->out_md, &im->f_dst, l->index));
    if (st->ws_bytes) FOOLC__CHECK(foolc__nn_mem(fx, ws, &im->f_ws, l->index));
    FOOLC__CHECK(foolc__nn_scratch_mem(fx, im->fpd, &im->f_scr, &st->scratch_bytes, l->index));
    if (!(st->need & NN_NEED_DATA)) return FOOLC_OK;

    dnnl_pooling_desc_t bd;
    dnnl_primitive_desc_t bpd = NULL;
    FOOLC__CHECK(foolc__dnnl(dnnl_pooling_backward_desc_init(&bd, alg, &st->in_md, &st->out_md,
                                                             strides, kernel, pad, pad),
                             "dnnl_pooling_backward_desc_init", l->kind->name, l->index));
    FOOLC__CHECK(foolc__nn_pd(fx, &bd, im->fpd, &bpd, &im->bwd, "pool backward", l->index));
    foolc_status s = foolc__nn_mem(fx, &st->in_md, &im->b_dsrc, l->index);
    if (s == FOOLC_OK) s = foolc__nn_mem(fx, &st->out_md, &im->b_ddst, l->index);
    if (s == FOOLC_OK && st->ws_bytes) s = foolc__nn_mem(fx, ws, &im->b_ws, l->index);
    if (s == FOOLC_OK)
        s = foolc__nn_scratch_mem(fx, bpd, &im->b_scr, &st->scratch_bytes, l->index);
    if (s == FOOLC_OK && st->relu_mask &&
        dnnl_memory_desc_get_size(&st->out_md) / sizeof(float) >= NN_ELTWISE_MIN)
        s = foolc__nn_relu_make(fx, &st->out_md, 1, l->index, &im->mask, &st->scratch_bytes);
    dnnl_primitive_desc_destroy(bpd);
    return s;
}

static foolc_status pool_forward(const nn_layer *l, nn_step *st, const nn_args *a)
{
    if (!st->fast) {
        ref_forward(l, a);
        return FOOLC_OK;
    }
    pool_impl *im = st->impl;
    int arg[4] = { DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE, DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[4] = { im->f_src, im->f_dst, im->f_ws, im->f_scr };
    void *ptr[4] = { (void *)a->x, a->y, a->ws, a->scratch };
    return foolc__nn_run_prim(st->fx, im->fwd, 4, arg, mem, ptr, "pool forward", l->index);
}

static foolc_status pool_backward_data(const nn_layer *l, nn_step *st, const nn_args *a)
{
    if (!st->fast) {
        ref_backward_data(l, a);
        return FOOLC_OK;
    }
    pool_impl *im = st->impl;
    if (st->relu_mask) { /* dy is the plan's own gradient buffer: masked in place */
        if (im->mask.bwd)
            FOOLC__CHECK(foolc__nn_relu_backward(st->fx, &im->mask, a->y, a->dy,
                                                 (float *)a->dy, a->scratch, l->index));
        else
            foolc__nn_relu_mask(a->y, a->dy, (float *)a->dy, a->ylen);
    }
    int arg[4] = { DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_WORKSPACE,
                   DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[4] = { im->b_dsrc, im->b_ddst, im->b_ws, im->b_scr };
    void *ptr[4] = { a->dx, (void *)a->dy, a->ws, a->scratch };
    return foolc__nn_run_prim(st->fx, im->bwd, 4, arg, mem, ptr, "pool backward", l->index);
}

/* Overflow bound: a max is one of its inputs; an average's partial sums reach k*k inputs. */
static int64_t pool_bound(nn_layer *l)
{
    l->gain = is_max(l) ? 1.0 : (double)l->k * l->k;
    l->shift = 0;
    return is_max(l) ? 0 : (int64_t)l->k * l->k;
}

/* The two pooling kinds differ only in their name (the layer's kind selects the algorithm). */
#define POOL_KIND(kind_name)                                                                \
    {                                                                                      \
        .name = kind_name, .keys = { "k", "s", "p" }, .real_key = -1, .required = 1u,      \
        .key_min = { 1, 1, 0 }, .init = pool_init, .bound = pool_bound,                    \
        .flops = pool_flops, .plan = pool_plan,                                            \
        .plan_free = pool_plan_free, .forward = pool_forward,                              \
        .backward_data = pool_backward_data,                                               \
    }

const nn_kind foolc__nn_maxpool2d = POOL_KIND("maxpool2d");
const nn_kind foolc__nn_avgpool2d = POOL_KIND("avgpool2d");
