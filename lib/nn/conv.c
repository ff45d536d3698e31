/* conv2d: options, shape rule and initial weights; the FAST rules on oneDNN (forward,
 * backward data, backward weights, formats chosen by oneDNN, reordered weights cached per
 * parameter version) and the plain-C reference rules, weights OIHW as in PyTorch. */
#include "nn/nn.h"

#include <math.h>
#include <string.h>

typedef struct conv_impl {
    dnnl_memory_desc_t plain_w;                  /* OIHW */
    dnnl_primitive_desc_t fpd;
    dnnl_primitive_t fwd, bwd_d, bwd_w;
    /* forward */
    dnnl_memory_t f_src, f_wei, f_bias, f_dst, f_scr;
    float *wf;                                   /* weights in the forward format, or NULL */
    uint64_t wf_ver;
    nn_reorder wf_r;
    /* backward data */
    dnnl_memory_t d_dsrc, d_wei, d_ddst, d_scr;
    float *wd;                                   /* weights in the bwd-data format, or NULL */
    uint64_t wd_ver;
    int wd_is_wf;                                /* same format as the forward weights */
    nn_reorder wd_r, d_dy_r, d_dx_r;
    size_t t_ddy, t_ddx;                         /* tmp offsets for reordered dy / dx */
    /* backward weights */
    dnnl_memory_t w_src, w_dwei, w_dbias, w_ddst, w_scr;
    nn_reorder w_dy_r, w_x_r, w_acc;
    size_t t_wdy, t_wx, t_dw, t_db;
    /* backward data of a first layer (few plain input channels, stride 1) by thin_*: dy in
     * oneDNN's channel-blocked format, weights packed per input channel and block */
    int32_t blk, taps;                           /* channel block of dy; K*K rounded to 16 */
    float *wt;                                   /* packed weights (thin_pack); set: the
                                                    thin rule serves */
    uint64_t wt_ver;
    size_t t_z;                                  /* tmp offset: one image's tap sums */
} conv_impl;

static foolc_status conv_init(nn_layer *l, const double *o)
{
    l->out = (int32_t)o[0];
    l->k = (int32_t)o[1];
    l->s = o[2] < 0 ? 1 : (int32_t)o[2];
    l->p = o[3] < 0 ? 0 : (int32_t)o[3];
    if (l->p >= l->k)
        return foolc__nn_lerr(FOOLC_E_INVALID, l, "padding p=%d must be smaller than k=%d",
                              (int)l->p, (int)l->k);
    int64_t hp = (int64_t)l->in.h + 2 * l->p, wp = (int64_t)l->in.w + 2 * l->p;
    if (l->k > hp || l->k > wp)
        return foolc__nn_lerr(FOOLC_E_INVALID, l,
                              "kernel k=%d is larger than the padded input %lldx%lld",
                              (int)l->k, (long long)hp, (long long)wp);
    if ((double)l->out * l->in.c * l->k * l->k > (double)NN_MAX_PARAMS)
        return foolc__nn_lerr(FOOLC_E_INVALID, l, "too many weights");
    l->out_dims.c = l->out;
    l->out_dims.h = (int32_t)((hp - l->k) / l->s + 1);
    l->out_dims.w = (int32_t)((wp - l->k) / l->s + 1);
    l->nw = (int64_t)l->out * l->in.c * l->k * l->k;
    l->nb = l->out;
    return FOOLC_OK;
}

static void conv_init_params(nn_layer *l, uint64_t seed)
{
    nn_init_uniform(l, seed, (double)l->in.c * l->k * l->k);
}

static int64_t conv_bound(nn_layer *l)
{
    return foolc__nn_bound_affine(l, (int64_t)l->in.c * l->k * l->k);
}

static double conv_flops(const nn_layer *l)
{
    return 2.0 * l->out * l->out_dims.h * l->out_dims.w * (double)l->in.c * l->k * l->k;
}

/* ---- reference rules ---------------------------------------------------------------- */

static void ref_forward(const nn_layer *l, const nn_args *a)
{
    const int32_t C = l->in.c, H = l->in.h, W = l->in.w, O = l->out, K = l->k, S = l->s,
                  P = l->p, OH = l->out_dims.h, OW = l->out_dims.w;
    for (int32_t n = 0; n < a->n; n++)
        for (int32_t o = 0; o < O; o++)
            for (int32_t oh = 0; oh < OH; oh++)
                for (int32_t ow = 0; ow < OW; ow++) {
                    double acc = l->b[o];
                    for (int32_t c = 0; c < C; c++)
                        for (int32_t kh = 0; kh < K; kh++) {
                            int32_t ih = oh * S - P + kh;
                            if (ih < 0 || ih >= H) continue;
                            const float *xr = a->x + (((size_t)n * C + c) * H + ih) * W;
                            const float *wr = l->w + (((size_t)o * C + c) * K + kh) * K;
                            for (int32_t kw = 0; kw < K; kw++) {
                                int32_t iw = ow * S - P + kw;
                                if (iw >= 0 && iw < W) acc += (double)xr[iw] * wr[kw];
                            }
                        }
                    a->y[(((size_t)n * O + o) * OH + oh) * OW + ow] = (float)acc;
                }
}

static void ref_backward_data(const nn_layer *l, const nn_args *a)
{
    const int32_t C = l->in.c, H = l->in.h, W = l->in.w, O = l->out, K = l->k, S = l->s,
                  P = l->p, OH = l->out_dims.h, OW = l->out_dims.w;
    for (int32_t n = 0; n < a->n; n++)
        for (int32_t c = 0; c < C; c++)
            for (int32_t ih = 0; ih < H; ih++)
                for (int32_t iw = 0; iw < W; iw++) {
                    double acc = 0;
                    for (int32_t o = 0; o < O; o++)
                        for (int32_t kh = 0; kh < K; kh++) {
                            int32_t th = ih + P - kh;
                            if (th < 0 || th % S) continue;
                            int32_t oh = th / S;
                            if (oh >= OH) continue;
                            for (int32_t kw = 0; kw < K; kw++) {
                                int32_t tw = iw + P - kw;
                                if (tw < 0 || tw % S) continue;
                                int32_t ow = tw / S;
                                if (ow >= OW) continue;
                                acc += (double)a->dy[(((size_t)n * O + o) * OH + oh) * OW + ow] *
                                       l->w[(((size_t)o * C + c) * K + kh) * K + kw];
                            }
                        }
                    a->dx[(((size_t)n * C + c) * H + ih) * W + iw] = (float)acc;
                }
}

static void ref_backward_weights(const nn_layer *l, const nn_args *a)
{
    const int32_t C = l->in.c, H = l->in.h, W = l->in.w, O = l->out, K = l->k, S = l->s,
                  P = l->p, OH = l->out_dims.h, OW = l->out_dims.w;
    for (int32_t o = 0; o < O; o++) {
        double db = 0;
        for (int32_t n = 0; n < a->n; n++)
            for (size_t j = 0; j < (size_t)OH * OW; j++)
                db += a->dy[((size_t)n * O + o) * OH * OW + j];
        a->db[o] += (float)db;
        for (int32_t c = 0; c < C; c++)
            for (int32_t kh = 0; kh < K; kh++)
                for (int32_t kw = 0; kw < K; kw++) {
                    double acc = 0;
                    for (int32_t n = 0; n < a->n; n++)
                        for (int32_t oh = 0; oh < OH; oh++) {
                            int32_t ih = oh * S - P + kh;
                            if (ih < 0 || ih >= H) continue;
                            const float *dyr = a->dy + (((size_t)n * O + o) * OH + oh) * OW;
                            const float *xr = a->x + (((size_t)n * C + c) * H + ih) * W;
                            for (int32_t ow = 0; ow < OW; ow++) {
                                int32_t iw = ow * S - P + kw;
                                if (iw >= 0 && iw < W) acc += (double)dyr[ow] * xr[iw];
                            }
                        }
                    a->dw[(((size_t)o * C + c) * K + kh) * K + kw] += (float)acc;
                }
    }
}

/* ---- FAST rules (oneDNN) ------------------------------------------------------------ */

static void conv_plan_free(nn_step *st)
{
    conv_impl *im = st->impl;
    if (!im) return;
    dnnl_primitive_t *prims[] = { &im->fwd, &im->bwd_d, &im->bwd_w };
    for (size_t i = 0; i < 3; i++)
        if (*prims[i]) dnnl_primitive_destroy(*prims[i]);
    if (im->fpd) dnnl_primitive_desc_destroy(im->fpd);
    dnnl_memory_t *mems[] = { &im->f_src, &im->f_wei, &im->f_bias, &im->f_dst, &im->f_scr,
                              &im->d_dsrc, &im->d_wei, &im->d_ddst, &im->d_scr, &im->w_src,
                              &im->w_dwei, &im->w_dbias, &im->w_ddst, &im->w_scr };
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++) foolc__nn_mem_free(mems[i]);
    nn_reorder *rs[] = { &im->wf_r, &im->wd_r, &im->d_dy_r, &im->d_dx_r, &im->w_dy_r,
                         &im->w_x_r, &im->w_acc };
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) foolc__nn_reorder_free(rs[i]);
    foolc__free(im->wf);
    foolc__free(im->wd);
    foolc__free(im->wt);
    foolc__free(im);
    st->impl = NULL;
}

static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

/* Reserves len bytes of the layer's tmp region; returns the offset. */
static size_t take_tmp(nn_step *st, size_t len)
{
    size_t off = st->tmp_bytes;
    st->tmp_bytes += align64(len);
    return off;
}

static void max_scratch(nn_step *st, size_t s)
{
    if (s > st->scratch_bytes) st->scratch_bytes = s;
}

/* A buffer of md's size for reordered weights, when md differs from plain OIHW. */
static foolc_status weights_buffer(const conv_impl *im, const dnnl_memory_desc_t *md,
                                   float **out)
{
    *out = NULL;
    if (foolc__nn_md_eq(md, &im->plain_w)) return FOOLC_OK;
    *out = foolc__malloc(dnnl_memory_desc_get_size(md));
    return *out ? FOOLC_OK : foolc__nomem("reordered convolution weights");
}

static foolc_status plan_forward(const nn_layer *l, nn_step *st, conv_impl *im,
                                 const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                                 const dnnl_memory_desc_t *bias, const dnnl_memory_desc_t *dst,
                                 const dnnl_dims_t strides, const dnnl_dims_t pad)
{
    const nn_fast *fx = st->fx;
    dnnl_convolution_desc_t cd;
    FOOLC__CHECK(foolc__dnnl(dnnl_convolution_forward_desc_init(
                                 &cd, dnnl_forward_training, dnnl_convolution_direct, src, wei,
                                 bias, dst, strides, pad, pad),
                             "dnnl_convolution_forward_desc_init", "conv2d", l->index));
    dnnl_primitive_attr_t attr = NULL;
    if (st->fuse_relu) FOOLC__CHECK(foolc__nn_attr_relu(fx, &attr, l->index));
    foolc_status s = foolc__nn_pd_attr(fx, attr ? attr : fx->attr, &cd, NULL, &im->fpd, &im->fwd,
                                       "conv2d forward", l->index);
    if (attr) dnnl_primitive_attr_destroy(attr);
    FOOLC__CHECK(s);
    st->in_md = *dnnl_primitive_desc_query_md(im->fpd, dnnl_query_src_md, 0);
    st->out_md = *dnnl_primitive_desc_query_md(im->fpd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *wmd =
        dnnl_primitive_desc_query_md(im->fpd, dnnl_query_weights_md, 0);
    FOOLC__CHECK(foolc__nn_mem(fx, &st->in_md, &im->f_src, l->index));
    FOOLC__CHECK(foolc__nn_mem(fx, wmd, &im->f_wei, l->index));
    FOOLC__CHECK(foolc__nn_mem(fx, bias, &im->f_bias, l->index));
    FOOLC__CHECK(foolc__nn_mem(fx, &st->out_md, &im->f_dst, l->index));
    FOOLC__CHECK(foolc__nn_scratch_mem(fx, im->fpd, &im->f_scr, &st->scratch_bytes, l->index));
    FOOLC__CHECK(weights_buffer(im, wmd, &im->wf));
    if (im->wf) {
        FOOLC__CHECK(foolc__nn_reorder_make(fx, &im->plain_w, wmd, 0, 0, l->index, &im->wf_r));
        max_scratch(st, im->wf_r.scratch_bytes);
    }
    return FOOLC_OK;
}

/* Whether oneDNN fell back to its slow reference implementation. */
static int is_ref(const_dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success ||
        !impl)
        return 0;
    return strncmp(impl, "ref", 3) == 0;
}

/* Creates a backward primitive, trying formats in order: the forward ones (no reorders),
 * then the forward diff_src/src with any diff_dst, then any for both. The first candidate
 * that oneDNN serves with a JIT (not reference) implementation wins; failing that, the
 * first that works at all. */
static foolc_status backward_pd(const nn_layer *l, nn_step *st, conv_impl *im, int weights,
                                const dnnl_memory_desc_t *any_w, const dnnl_memory_desc_t *bias,
                                const dnnl_memory_desc_t *any_src,
                                const dnnl_memory_desc_t *any_dst, const dnnl_dims_t strides,
                                const dnnl_dims_t pad, dnnl_primitive_desc_t *out)
{
    const char *what = weights ? "conv2d backward weights" : "conv2d backward data";
    const dnnl_memory_desc_t *srcs[3] = { &st->in_md, &st->in_md, any_src };
    const dnnl_memory_desc_t *dsts[3] = { &st->out_md, any_dst, any_dst };
    dnnl_primitive_desc_t best = NULL;
    foolc_status first_err = FOOLC_OK;
    *out = NULL;
    for (int c = 0; c < 3; c++) {
        dnnl_convolution_desc_t cd;
        dnnl_status_t ds = weights
            ? dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, srcs[c],
                                                          any_w, bias, dsts[c], strides, pad,
                                                          pad)
            : dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, srcs[c],
                                                       any_w, dsts[c], strides, pad, pad);
        foolc_status s = foolc__dnnl(ds, weights ? "dnnl_convolution_backward_weights_desc_init"
                                                 : "dnnl_convolution_backward_data_desc_init",
                                     "conv2d", l->index);
        dnnl_primitive_desc_t pd = NULL;
        if (s == FOOLC_OK) s = foolc__nn_pd(st->fx, &cd, im->fpd, &pd, NULL, what, l->index);
        if (s != FOOLC_OK) {
            if (first_err == FOOLC_OK) first_err = s;
            continue;
        }
        if (!is_ref(pd)) {
            if (best) dnnl_primitive_desc_destroy(best);
            best = pd;
            break;
        }
        if (!best) best = pd;
        else dnnl_primitive_desc_destroy(pd);
    }
    if (!best) return first_err;
    dnnl_primitive_t *prim = weights ? &im->bwd_w : &im->bwd_d;
    foolc_status s = foolc__dnnl(dnnl_primitive_create(prim, best), "dnnl_primitive_create",
                                 what, l->index);
    if (s != FOOLC_OK) {
        *prim = NULL;
        dnnl_primitive_desc_destroy(best);
        return s;
    }
    foolc__error_clear();
    *out = best;
    return FOOLC_OK;
}

static foolc_status plan_backward_data(const nn_layer *l, nn_step *st, conv_impl *im,
                                       const dnnl_memory_desc_t *any_w,
                                       const dnnl_memory_desc_t *any_src,
                                       const dnnl_memory_desc_t *any_dst,
                                       const dnnl_dims_t strides, const dnnl_dims_t pad)
{
    const nn_fast *fx = st->fx;
    dnnl_primitive_desc_t pd = NULL;
    FOOLC__CHECK(backward_pd(l, st, im, 0, any_w, NULL, any_src, any_dst, strides, pad, &pd));
    const dnnl_memory_desc_t *dsrc = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_src_md, 0);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *ddst = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0);
    foolc_status s = foolc__nn_mem(fx, dsrc, &im->d_dsrc, l->index);
    if (s == FOOLC_OK) s = foolc__nn_mem(fx, wmd, &im->d_wei, l->index);
    if (s == FOOLC_OK) s = foolc__nn_mem(fx, ddst, &im->d_ddst, l->index);
    if (s == FOOLC_OK)
        s = foolc__nn_scratch_mem(fx, pd, &im->d_scr, &st->scratch_bytes, l->index);
    const dnnl_memory_desc_t *fw =
        dnnl_primitive_desc_query_md(im->fpd, dnnl_query_weights_md, 0);
    if (s == FOOLC_OK) {
        im->wd_is_wf = foolc__nn_md_eq(wmd, fw);
        if (!im->wd_is_wf) {
            s = weights_buffer(im, wmd, &im->wd);
            if (s == FOOLC_OK && im->wd)
                s = foolc__nn_reorder_make(fx, &im->plain_w, wmd, 0, 0, l->index, &im->wd_r);
        }
    }
    if (s == FOOLC_OK && !foolc__nn_md_eq(ddst, &st->out_md)) {
        s = foolc__nn_reorder_make(fx, &st->out_md, ddst, 0, 0, l->index, &im->d_dy_r);
        im->t_ddy = take_tmp(st, dnnl_memory_desc_get_size(ddst));
    }
    if (s == FOOLC_OK && !foolc__nn_md_eq(dsrc, &st->in_md)) {
        s = foolc__nn_reorder_make(fx, dsrc, &st->in_md, 0, 0, l->index, &im->d_dx_r);
        im->t_ddx = take_tmp(st, dnnl_memory_desc_get_size(dsrc));
    }
    max_scratch(st, im->wd_r.scratch_bytes);
    max_scratch(st, im->d_dy_r.scratch_bytes);
    max_scratch(st, im->d_dx_r.scratch_bytes);
    dnnl_primitive_desc_destroy(pd);
    return s;
}

static foolc_status plan_backward_weights(const nn_layer *l, nn_step *st, conv_impl *im,
                                          const dnnl_memory_desc_t *any_w,
                                          const dnnl_memory_desc_t *bias,
                                          const dnnl_memory_desc_t *any_src,
                                          const dnnl_memory_desc_t *any_dst,
                                          const dnnl_dims_t strides, const dnnl_dims_t pad)
{
    const nn_fast *fx = st->fx;
    dnnl_primitive_desc_t pd = NULL;
    FOOLC__CHECK(backward_pd(l, st, im, 1, any_w, bias, any_src, any_dst, strides, pad, &pd));
    const dnnl_memory_desc_t *src = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dw =
        dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0);
    const dnnl_memory_desc_t *ddst = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0);
    foolc_status s = foolc__nn_mem(fx, src, &im->w_src, l->index);
    if (s == FOOLC_OK) s = foolc__nn_mem(fx, dw, &im->w_dwei, l->index);
    if (s == FOOLC_OK) s = foolc__nn_mem(fx, bias, &im->w_dbias, l->index);
    if (s == FOOLC_OK) s = foolc__nn_mem(fx, ddst, &im->w_ddst, l->index);
    if (s == FOOLC_OK)
        s = foolc__nn_scratch_mem(fx, pd, &im->w_scr, &st->scratch_bytes, l->index);
    if (s == FOOLC_OK && !foolc__nn_md_eq(ddst, &st->out_md)) {
        s = foolc__nn_reorder_make(fx, &st->out_md, ddst, 0, 0, l->index, &im->w_dy_r);
        im->t_wdy = take_tmp(st, dnnl_memory_desc_get_size(ddst));
    }
    if (s == FOOLC_OK && !foolc__nn_md_eq(src, &st->in_md)) {
        s = foolc__nn_reorder_make(fx, &st->in_md, src, 0, 0, l->index, &im->w_x_r);
        im->t_wx = take_tmp(st, dnnl_memory_desc_get_size(src));
    }
    /* The weight gradient is accumulated into the caller's plain OIHW array. */
    if (s == FOOLC_OK)
        s = foolc__nn_reorder_make(fx, dw, &im->plain_w, 0, 1, l->index, &im->w_acc);
    im->t_dw = take_tmp(st, dnnl_memory_desc_get_size(dw));
    im->t_db = take_tmp(st, (size_t)l->out * sizeof(float));
    max_scratch(st, im->w_dy_r.scratch_bytes);
    max_scratch(st, im->w_x_r.scratch_bytes);
    max_scratch(st, im->w_acc.scratch_bytes);
    dnnl_primitive_desc_destroy(pd);
    return s;
}

/* ---- a first layer's input gradient ----------------------------------------------------
 * For a convolution with a few plain input channels (an image's), oneDNN computes the input
 * gradient by im2col GEMM on plain tensors, after reordering dy out of its channel-blocked
 * format: a third of the reference CNN's input-gradient time for 5 % of its FLOPs. Here,
 * per image and input channel c, the tap sums z[p][t] = sum_o dy[o][p] w[o][c][t] (p an
 * output pixel, t a kernel tap) are formed straight from the blocked dy, 16 taps at a
 * time in fixed-length loops the compiler vectorises, and dx[c][i] gathers z over the taps
 * that reach input pixel i (stride 1). */

#define THIN_MAX_C 4   /* input channels up to which the thin rule serves */
#define THIN_T 16      /* taps per vector group */
#define THIN_P 8       /* output pixels per group: independent accumulators */

/* gcc and clang: the tap sums on 16-float vectors, compiled for AVX-512, AVX2 and the
 * baseline, chosen at load time, with fused multiply-adds (-std=c11 turns contraction
 * off); other compilers: the same loops on arrays. */
#if defined(__GNUC__)
typedef float thin_v __attribute__((vector_size(THIN_T * sizeof(float))));
#define THIN_VEC 1
/* Not under ThreadSanitizer: the clones' resolver (an ifunc) runs while the dynamic loader
 * relocates, before TSan's runtime is up, and TSan's instrumentation of it crashes there. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define THIN_NO_CLONES 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define THIN_NO_CLONES 1
#endif
#if defined(__x86_64__) && defined(__has_attribute) && !defined(THIN_NO_CLONES)
#if __has_attribute(target_clones)
#define THIN_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#endif
#endif
#if !defined(__clang__)
#define THIN_CONTRACT __attribute__((optimize("fp-contract=fast")))
#endif
#endif
#ifndef THIN_CLONES
#define THIN_CLONES
#endif
#ifndef THIN_CONTRACT
#define THIN_CONTRACT
#endif

/* Whether the thin rule serves this layer in this plan; *blk: dy's channel block. */
static int thin_eligible(const nn_layer *l, const nn_step *st, int32_t *blk)
{
    if (l->s != 1 || l->in.c > THIN_MAX_C || foolc__nn_md_block(&st->in_md) != 1) return 0;
    *blk = foolc__nn_md_block(&st->out_md);
    return *blk == 16 || *blk == 8;
}

/* Packs OIHW weights as wt[c][o][t] with o padded to whole blocks and t to im->taps (the
 * padding zero). */
static void thin_pack(const nn_layer *l, conv_impl *im)
{
    const int32_t C = l->in.c, O = l->out, KK = l->k * l->k, T = im->taps;
    const int32_t OP = (O + im->blk - 1) / im->blk * im->blk;
    for (int32_t c = 0; c < C; c++)
        for (int32_t o = 0; o < OP; o++)
            for (int32_t t = 0; t < T; t++)
                im->wt[((size_t)c * OP + o) * T + t] =
                    o < O && t < KK ? l->w[((size_t)o * C + c) * KK + t] : 0.0f;
}

/* z[p][t] for hw output pixels of one image: dy in blocks of blk channels ([ob][p][j]),
 * nb blocks, the last with last_j channels that count; wt as packed for one channel.
 * THIN_P pixels at a time (np of them at the end), so that each weight row loaded serves
 * THIN_P accumulators that stay in registers. */
THIN_CLONES THIN_CONTRACT
static void thin_taps(const float *restrict dy, const float *restrict wt, int32_t nb,
                      int32_t blk, int32_t last_j, size_t hw, int32_t taps, float *restrict z)
{
    const size_t sb = hw * (size_t)blk, sblk = (size_t)blk;
    for (int32_t g = 0; g < taps; g += THIN_T) {
        size_t p = 0;
        for (; p + THIN_P <= hw; p += THIN_P) {
#if defined(THIN_VEC)
            thin_v a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 }, a4 = { 0 }, a5 = { 0 },
                   a6 = { 0 }, a7 = { 0 };
#else
            float a[THIN_P][THIN_T] = { { 0 } };
#endif
            for (int32_t ob = 0; ob < nb; ob++) {
                const float *v = dy + (size_t)ob * sb + p * sblk;
                const float *w = wt + (size_t)ob * sblk * (size_t)taps + (size_t)g;
                const int32_t nj = ob == nb - 1 ? last_j : blk;
                for (int32_t j = 0; j < nj; j++, w += taps, v++) {
#if defined(THIN_VEC)
                    thin_v wv;
                    memcpy(&wv, w, sizeof wv);
                    a0 += v[0] * wv;
                    a1 += v[sblk] * wv;
                    a2 += v[2 * sblk] * wv;
                    a3 += v[3 * sblk] * wv;
                    a4 += v[4 * sblk] * wv;
                    a5 += v[5 * sblk] * wv;
                    a6 += v[6 * sblk] * wv;
                    a7 += v[7 * sblk] * wv;
#else
                    for (size_t q = 0; q < THIN_P; q++)
                        for (int32_t k = 0; k < THIN_T; k++) a[q][k] += v[q * sblk] * w[k];
#endif
                }
            }
            float *o = z + p * (size_t)taps + (size_t)g;
#if defined(THIN_VEC)
            const thin_v *acc[THIN_P] = { &a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7 };
            for (size_t q = 0; q < THIN_P; q++)
                memcpy(o + q * (size_t)taps, acc[q], THIN_T * sizeof(float));
#else
            for (size_t q = 0; q < THIN_P; q++)
                memcpy(o + q * (size_t)taps, a[q], THIN_T * sizeof(float));
#endif
        }
        for (; p < hw; p++) {
            float a[THIN_T] = { 0 };
            for (int32_t ob = 0; ob < nb; ob++) {
                const float *v = dy + (size_t)ob * sb + p * sblk;
                const float *w = wt + (size_t)ob * sblk * (size_t)taps + (size_t)g;
                const int32_t nj = ob == nb - 1 ? last_j : blk;
                for (int32_t j = 0; j < nj; j++, w += taps)
                    for (int32_t k = 0; k < THIN_T; k++) a[k] += v[j] * w[k];
            }
            memcpy(z + p * (size_t)taps + (size_t)g, a, sizeof a);
        }
    }
}

/* dx[i] = sum over the taps (kh, kw) that reach input pixel i of z[its output pixel][tap]:
 * per input row, each tap adds a strided run of z to a contiguous run of dx. */
static void thin_gather(const nn_layer *l, const float *restrict z, int32_t taps,
                        float *restrict dx)
{
    const int32_t H = l->in.h, W = l->in.w, K = l->k, P = l->p, OH = l->out_dims.h,
                  OW = l->out_dims.w;
    for (int32_t ih = 0; ih < H; ih++) {
        float *restrict row = dx + (size_t)ih * W;
        memset(row, 0, (size_t)W * sizeof *row);
        for (int32_t kh = 0; kh < K; kh++) {
            int32_t oh = ih + P - kh;
            if (oh < 0 || oh >= OH) continue;
            for (int32_t kw = 0; kw < K; kw++) {
                /* iw + P - kw = ow in [0, OW) and iw in [0, W) */
                int32_t lo = kw - P > 0 ? kw - P : 0, hi = OW + kw - P < W ? OW + kw - P : W;
                const float *zr = z + ((size_t)oh * OW + (size_t)(P - kw + lo)) * (size_t)taps +
                                  (size_t)(kh * K + kw);
                for (int32_t iw = lo; iw < hi; iw++, zr += taps) row[iw] += *zr;
            }
        }
    }
}

static foolc_status thin_plan(const nn_layer *l, nn_step *st, conv_impl *im, int32_t blk)
{
    im->blk = blk;
    im->taps = (l->k * l->k + THIN_T - 1) / THIN_T * THIN_T;
    size_t op = (size_t)((l->out + blk - 1) / blk * blk);
    im->wt = foolc__malloc(foolc__mul(foolc__mul((size_t)l->in.c * op, (size_t)im->taps),
                                      sizeof(float)));
    if (!im->wt) return foolc__nomem("packed convolution weights");
    im->t_z = take_tmp(st, foolc__mul((size_t)l->out_dims.h * (size_t)l->out_dims.w,
                                      (size_t)im->taps * sizeof(float)));
    return FOOLC_OK;
}

static void thin_backward_data(const nn_layer *l, conv_impl *im, const nn_args *a)
{
    if (im->wt_ver != a->pver) {
        thin_pack(l, im);
        im->wt_ver = a->pver;
    }
    const int32_t C = l->in.c, blk = im->blk, nb = (l->out + blk - 1) / blk;
    const int32_t last_j = l->out - (nb - 1) * blk;
    const size_t hw = (size_t)l->out_dims.h * (size_t)l->out_dims.w;
    const size_t in_hw = (size_t)l->in.h * (size_t)l->in.w;
    const size_t wt_c = (size_t)nb * (size_t)blk * (size_t)im->taps;
    float *z = (float *)((unsigned char *)a->tmp + im->t_z);
    for (int32_t n = 0; n < a->n; n++) {
        const float *dy = a->dy + (size_t)n * (size_t)nb * hw * (size_t)blk;
        for (int32_t c = 0; c < C; c++) {
            thin_taps(dy, im->wt + (size_t)c * wt_c, nb, blk, last_j, hw, im->taps, z);
            thin_gather(l, z, im->taps, a->dx + ((size_t)n * C + c) * in_hw);
        }
    }
}

static foolc_status conv_plan(const nn_layer *l, nn_step *st, const dnnl_memory_desc_t *prev)
{
    (void)prev;
    conv_impl *im = foolc__calloc(1, sizeof *im);
    if (!im) return foolc__nomem("a convolution plan");
    st->impl = im;
    dnnl_dims_t sd = { st->n, l->in.c, l->in.h, l->in.w };
    dnnl_dims_t dd = { st->n, l->out, l->out_dims.h, l->out_dims.w };
    dnnl_dims_t wd = { l->out, l->in.c, l->k, l->k }, bd = { l->out };
    dnnl_dims_t strides = { l->s, l->s }, pad = { l->p, l->p };
    dnnl_memory_desc_t src, dst, wei, bias;
    FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32,
                                                          dnnl_format_tag_any),
                             "dnnl_memory_desc_init_by_tag", "conv2d src", l->index));
    FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32,
                                                          dnnl_format_tag_any),
                             "dnnl_memory_desc_init_by_tag", "conv2d dst", l->index));
    FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_f32,
                                                          dnnl_format_tag_any),
                             "dnnl_memory_desc_init_by_tag", "conv2d weights", l->index));
    FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_x),
                             "dnnl_memory_desc_init_by_tag", "conv2d bias", l->index));
    FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&im->plain_w, 4, wd, dnnl_f32,
                                                          dnnl_oihw),
                             "dnnl_memory_desc_init_by_tag", "conv2d weights", l->index));
    FOOLC__CHECK(plan_forward(l, st, im, &src, &wei, &bias, &dst, strides, pad));
    int32_t blk = 0;
    if (st->need & NN_NEED_DATA) {
        if (thin_eligible(l, st, &blk)) FOOLC__CHECK(thin_plan(l, st, im, blk));
        else FOOLC__CHECK(plan_backward_data(l, st, im, &wei, &src, &dst, strides, pad));
    }
    if (st->need & NN_NEED_WEIGHTS)
        FOOLC__CHECK(plan_backward_weights(l, st, im, &wei, &bias, &src, &dst, strides, pad));
    return FOOLC_OK;
}

/* Brings a cached reordered copy of the weights up to the parameter version. */
static foolc_status refresh(const nn_layer *l, nn_step *st, nn_reorder *r, float *buf,
                            uint64_t *ver, const nn_args *a)
{
    if (!buf || *ver == a->pver) return FOOLC_OK;
    FOOLC__CHECK(foolc__nn_reorder_run(st->fx, r, 0, l->w, buf, a->scratch, l->index));
    *ver = a->pver;
    return FOOLC_OK;
}

static foolc_status conv_forward(const nn_layer *l, nn_step *st, const nn_args *a)
{
    if (!st->fast) {
        ref_forward(l, a);
        return FOOLC_OK;
    }
    conv_impl *im = st->impl;
    FOOLC__CHECK(refresh(l, st, &im->wf_r, im->wf, &im->wf_ver, a));
    int arg[5] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST,
                   DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[5] = { im->f_src, im->f_wei, im->f_bias, im->f_dst, im->f_scr };
    void *ptr[5] = { (void *)a->x, im->wf ? im->wf : l->w, l->b, a->y, a->scratch };
    return foolc__nn_run_prim(st->fx, im->fwd, 5, arg, mem, ptr, "conv2d forward", l->index);
}

static foolc_status conv_backward_data(const nn_layer *l, nn_step *st, const nn_args *a)
{
    if (!st->fast) {
        ref_backward_data(l, a);
        return FOOLC_OK;
    }
    conv_impl *im = st->impl;
    if (im->wt) {
        thin_backward_data(l, im, a);
        return FOOLC_OK;
    }
    unsigned char *tmp = a->tmp;
    float *w;
    if (im->wd_is_wf) {
        FOOLC__CHECK(refresh(l, st, &im->wf_r, im->wf, &im->wf_ver, a));
        w = im->wf ? im->wf : l->w;
    } else {
        FOOLC__CHECK(refresh(l, st, &im->wd_r, im->wd, &im->wd_ver, a));
        w = im->wd ? im->wd : l->w;
    }
    const void *dy = a->dy;
    if (im->d_dy_r.fwd) {
        FOOLC__CHECK(foolc__nn_reorder_run(st->fx, &im->d_dy_r, 0, dy, tmp + im->t_ddy,
                                           a->scratch, l->index));
        dy = tmp + im->t_ddy;
    }
    void *dx = im->d_dx_r.fwd ? (void *)(tmp + im->t_ddx) : (void *)a->dx;
    int arg[4] = { DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST, DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[4] = { im->d_dsrc, im->d_wei, im->d_ddst, im->d_scr };
    void *ptr[4] = { dx, w, (void *)dy, a->scratch };
    FOOLC__CHECK(foolc__nn_run_prim(st->fx, im->bwd_d, 4, arg, mem, ptr, "conv2d backward data",
                                    l->index));
    if (im->d_dx_r.fwd)
        FOOLC__CHECK(foolc__nn_reorder_run(st->fx, &im->d_dx_r, 0, dx, a->dx, a->scratch,
                                           l->index));
    return FOOLC_OK;
}

static foolc_status conv_backward_weights(const nn_layer *l, nn_step *st, const nn_args *a)
{
    if (!st->fast) {
        ref_backward_weights(l, a);
        return FOOLC_OK;
    }
    conv_impl *im = st->impl;
    unsigned char *tmp = a->tmp;
    const void *dy = a->dy, *x = a->x;
    if (im->w_dy_r.fwd) {
        FOOLC__CHECK(foolc__nn_reorder_run(st->fx, &im->w_dy_r, 0, dy, tmp + im->t_wdy,
                                           a->scratch, l->index));
        dy = tmp + im->t_wdy;
    }
    if (im->w_x_r.fwd) {
        FOOLC__CHECK(foolc__nn_reorder_run(st->fx, &im->w_x_r, 0, x, tmp + im->t_wx,
                                           a->scratch, l->index));
        x = tmp + im->t_wx;
    }
    float *dw = (float *)(tmp + im->t_dw), *db = (float *)(tmp + im->t_db);
    int arg[5] = { DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS, DNNL_ARG_DIFF_DST,
                   DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[5] = { im->w_src, im->w_dwei, im->w_dbias, im->w_ddst, im->w_scr };
    void *ptr[5] = { (void *)x, dw, db, (void *)dy, a->scratch };
    FOOLC__CHECK(foolc__nn_run_prim(st->fx, im->bwd_w, 5, arg, mem, ptr,
                                    "conv2d backward weights", l->index));
    FOOLC__CHECK(foolc__nn_reorder_run(st->fx, &im->w_acc, 0, dw, a->dw, a->scratch, l->index));
    for (int32_t o = 0; o < l->out; o++) a->db[o] += db[o];
    return FOOLC_OK;
}

const nn_kind foolc__nn_conv2d = {
    .name = "conv2d",
    .keys = { "out", "k", "s", "p" },
    .real_key = -1,
    .required = 3u,
    .key_min = { 1, 1, 1, 0 },
    .init = conv_init,
    .init_params = conv_init_params,
    .bound = conv_bound,
    .flops = conv_flops,
    .plan = conv_plan,
    .plan_free = conv_plan_free,
    .forward = conv_forward,
    .backward_data = conv_backward_data,
    .backward_weights = conv_backward_weights,
};
