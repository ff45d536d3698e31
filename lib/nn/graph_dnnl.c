/* oneDNN convolutions for graph nets (fast backend): forward and backward-data primitives
 * made for a minibatch of mb images (a chunk of a pass, graph_run.c) and kept per node in a
 * small cache keyed by (mb, thread slot), with the formats oneDNN prefers (blocked, JIT
 * kernels) and reorders from and to the plain NCHW tensors the other graph ops use; weights
 * reordered once per parameter version. Every entry has its own memory objects, stream and
 * reordered weights, so the threads of a pass (one slot each) share nothing. Entries are
 * made with OpenMP's thread count set to 1 (graph_run.c) and run on the calling thread: the
 * JIT kernels split nothing inside an image, and an image's bits are the same for every mb,
 * position and thread count (measured, and tested by tests/check_graph.c). The input
 * gradient is added into the tensor's gradient by a reorder with a sum post-op. When no
 * weight gradient is asked for, a batchnorm that alone reads a convolution's output is
 * folded into its weights and bias (graph_run.c).
 * Groups (depthwise included), dilation, stride and asymmetric pads are oneDNN's own. */
#include "nn/graph.h"

#include <math.h>
#include <string.h>

typedef struct gconv {
    int32_t mb, slot, lay;       /* the cache key: images per call, thread slot, layouts */
    dnnl_stream_t strm;          /* this entry's own stream */
    dnnl_primitive_desc_t fpd;
    dnnl_primitive_t fwd, bwd_d;
    dnnl_memory_t f_src, f_wei, f_bias, f_dst, f_scr, d_dsrc, d_wei, d_ddst, d_scr;
    dnnl_memory_desc_t plain_in, plain_out, plain_w, /* the tensors' own formats ("user") */ src_md, dst_md, dsrc_md, ddst_md;
    nn_reorder r_src, r_dst, r_ddy, r_dx, wf_r, wd_r;
    struct wcopy *wf, *wd;       /* reordered weights, shared by the node's entries (NULL:
                                    the plain weights serve) */
    float *zero_bias;            /* a zero bias for bias=0 */
    int has_bwd;
    size_t scratch, b_src, b_dst, b_ddy, b_dx;
} gconv;

static void gconv_free(gconv *c)
{
    if (!c) return;
    if (c->strm) dnnl_stream_destroy(c->strm);
    if (c->fpd) dnnl_primitive_desc_destroy(c->fpd);
    if (c->fwd) dnnl_primitive_destroy(c->fwd);
    if (c->bwd_d) dnnl_primitive_destroy(c->bwd_d);
    dnnl_memory_t *m[] = { &c->f_src, &c->f_wei, &c->f_bias, &c->f_dst, &c->f_scr,
                           &c->d_dsrc, &c->d_wei, &c->d_ddst, &c->d_scr };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) foolc__nn_mem_free(m[i]);
    nn_reorder *r[] = { &c->r_src, &c->r_dst, &c->r_ddy, &c->r_dx, &c->wf_r, &c->wd_r };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) foolc__nn_reorder_free(r[i]);
    foolc__free(c->zero_bias);
    foolc__free(c);
}

/* Weights in one of oneDNN's formats, for every entry that reads that format. */
typedef struct wcopy {
    dnnl_memory_desc_t md;
    float *buf;
    uint64_t ver;
    int tag;                     /* what buf was reordered from: 0 nothing, 1 plain, 2 folded */
} wcopy;

/* A node's entries, and what they share: the weights with the batchnorm folded in, the
 * reordered copies (made before a pass's threads start: graph_run.c's prepare). */
typedef struct gcache {
    int32_t count, cap;
    gconv **e;
    float *fold_w, *fold_b;      /* weights and bias with the next batchnorm folded in */
    uint64_t fold_ver;
    int fold_ok;                 /* fold_w / fold_b hold fold_ver's values */
    int32_t nw;
    wcopy w[8];
} gcache;

void foolc__nn_gconv_free(void *impl)
{
    gcache *k = impl;
    if (!k) return;
    for (int32_t i = 0; i < k->count; i++) gconv_free(k->e[i]);
    for (int32_t i = 0; i < k->nw; i++) foolc__free(k->w[i].buf);
    foolc__free(k->e);
    foolc__free(k->fold_w);
    foolc__free(k->fold_b);
    foolc__free(k);
}

static gconv *find(const gcache *k, int32_t mb, int32_t slot, int32_t lay)
{
    for (int32_t i = 0; k && i < k->count; i++)
        if (k->e[i]->mb == mb && k->e[i]->slot == slot && k->e[i]->lay == lay) return k->e[i];
    return NULL;
}

/* The md of mb images of d: plain NCHW (block 0 or 1) or channel-blocked nChw16c / nChw8c. */
static void user_md(dnnl_memory_desc_t *md, int32_t mb, nn_dims d, int block)
{
    if (block == 16 || block == 8) {
        dnnl_dims_t dims = { mb, d.c, d.h, d.w };
        if (dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32,
                                         block == 16 ? dnnl_nChw16c : dnnl_nChw8c) ==
            dnnl_success)
            return;
    }
    foolc__nn_md_plain(md, mb, d);
}

int foolc__nn_gconv_dst_block(const void *impl)
{
    const gcache *k = impl;
    return k && k->count ? foolc__nn_md_block(&k->e[0]->dst_md) : 0;
}

/* A primitive of this entry on its own stream; the handles of mem set first. */
static foolc_status run_prim(const gconv *c, dnnl_primitive_t p, int nargs, const int *arg,
                             dnnl_memory_t *mem, void *const *ptr, const char *what, int32_t L)
{
    dnnl_exec_arg_t args[8];
    int k = 0;
    for (int i = 0; i < nargs && k < 8; i++) {
        if (!mem[i]) continue;
        FOOLC__CHECK(foolc__dnnl(dnnl_memory_set_data_handle(mem[i], ptr[i]),
                                 "dnnl_memory_set_data_handle", what, L));
        args[k].arg = arg[i];
        args[k].memory = mem[i];
        k++;
    }
    FOOLC__CHECK(foolc__dnnl(dnnl_primitive_execute(p, c->strm, k, args),
                             "dnnl_primitive_execute", what, L));
    return foolc__dnnl(dnnl_stream_wait(c->strm), "dnnl_stream_wait", what, L);
}

static foolc_status reorder_run(const gconv *c, const nn_reorder *r, const void *src, void *dst,
                                void *scratch, int32_t L)
{
    int arg[3] = { DNNL_ARG_FROM, DNNL_ARG_TO, DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[3] = { r->a, r->b, r->sa };
    void *ptr[3] = { (void *)src, dst, scratch };
    return run_prim(c, r->fwd, 3, arg, mem, ptr, "reorder", L);
}

static size_t msz(const dnnl_memory_desc_t *md) { return dnnl_memory_desc_get_size(md); }

/* The node's copy of the weights in format md (made on first use); NULL when the plain
 * weights serve. */
static foolc_status wbuf(gcache *k, const gconv *c, const dnnl_memory_desc_t *md, wcopy **out)
{
    *out = NULL;
    if (foolc__nn_md_eq(md, &c->plain_w)) return FOOLC_OK;
    for (int32_t i = 0; i < k->nw; i++)
        if (foolc__nn_md_eq(md, &k->w[i].md)) {
            *out = &k->w[i];
            return FOOLC_OK;
        }
    if (k->nw == (int32_t)(sizeof k->w / sizeof k->w[0]))
        return foolc__error(FOOLC_E_INTERNAL, "net: too many weight formats for a convolution");
    wcopy *w = &k->w[k->nw];
    w->buf = foolc__malloc(msz(md));
    if (!w->buf) return foolc__nomem("reordered convolution weights");
    w->md = *md;
    w->ver = 0;
    w->tag = 0;
    k->nw++;
    *out = w;
    return FOOLC_OK;
}

static void upd(size_t *a, size_t b)
{
    if (b > *a) *a = b;
}

static foolc_status build(const nn_fast *fx, const nn_graph *g, const nn_gnode *nd, int bwd,
                          gcache *k, gconv *c)
{
    const nn_dims in = g->dims[nd->in[0]];
    const int32_t L = nd->line - 2, G = nd->groups, mb = c->mb;
    const char *what = "conv2d (graph)";
    FOOLC__CHECK(foolc__dnnl(dnnl_stream_create(&c->strm, fx->eng, dnnl_stream_default_flags),
                             "dnnl_stream_create", what, L));
    user_md(&c->plain_in, mb, in, c->lay >> 8);
    user_md(&c->plain_out, mb, nd->od, c->lay & 255);
    dnnl_memory_desc_t any_src, any_dst, any_w, bias;
    dnnl_dims_t sd = { mb, in.c, in.h, in.w }, dd = { mb, nd->out, nd->od.h, nd->od.w };
    dnnl_dims_t bd = { nd->out };
    FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&any_src, 4, sd, dnnl_f32,
                                                          dnnl_format_tag_any),
                             "dnnl_memory_desc_init_by_tag", what, L));
    FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&any_dst, 4, dd, dnnl_f32,
                                                          dnnl_format_tag_any),
                             "dnnl_memory_desc_init_by_tag", what, L));
    FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_a),
                             "dnnl_memory_desc_init_by_tag", what, L));
    if (G == 1) {
        dnnl_dims_t wd = { nd->out, in.c, nd->kh, nd->kw };
        FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&c->plain_w, 4, wd, dnnl_f32,
                                                              dnnl_oihw),
                                 "dnnl_memory_desc_init_by_tag", what, L));
        FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&any_w, 4, wd, dnnl_f32,
                                                              dnnl_format_tag_any),
                                 "dnnl_memory_desc_init_by_tag", what, L));
    } else {
        dnnl_dims_t wd = { G, nd->out / G, in.c / G, nd->kh, nd->kw };
        FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&c->plain_w, 5, wd, dnnl_f32,
                                                              dnnl_goihw),
                                 "dnnl_memory_desc_init_by_tag", what, L));
        FOOLC__CHECK(foolc__dnnl(dnnl_memory_desc_init_by_tag(&any_w, 5, wd, dnnl_f32,
                                                              dnnl_format_tag_any),
                                 "dnnl_memory_desc_init_by_tag", what, L));
    }
    dnnl_dims_t strides = { nd->sh, nd->sw }, dil = { nd->dh - 1, nd->dw - 1 };
    dnnl_dims_t pl = { nd->pt, nd->pl }, pr = { nd->pb, nd->pr };
    dnnl_convolution_desc_t cd;
    FOOLC__CHECK(foolc__dnnl(dnnl_dilated_convolution_forward_desc_init(
                                 &cd, dnnl_forward_training, dnnl_convolution_direct, &any_src,
                                 &any_w, &bias, &any_dst, strides, dil, pl, pr),
                             "dnnl_dilated_convolution_forward_desc_init", what, L));
    FOOLC__CHECK(foolc__nn_pd(fx, &cd, NULL, &c->fpd, &c->fwd, what, L));
    c->src_md = *dnnl_primitive_desc_query_md(c->fpd, dnnl_query_src_md, 0);
    c->dst_md = *dnnl_primitive_desc_query_md(c->fpd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(c->fpd, dnnl_query_weights_md, 0);
    FOOLC__CHECK(foolc__nn_mem(fx, &c->src_md, &c->f_src, L));
    FOOLC__CHECK(foolc__nn_mem(fx, wmd, &c->f_wei, L));
    FOOLC__CHECK(foolc__nn_mem(fx, &bias, &c->f_bias, L));
    FOOLC__CHECK(foolc__nn_mem(fx, &c->dst_md, &c->f_dst, L));
    FOOLC__CHECK(foolc__nn_scratch_mem(fx, c->fpd, &c->f_scr, &c->scratch, L));
    FOOLC__CHECK(wbuf(k, c, wmd, &c->wf));
    if (c->wf) {
        FOOLC__CHECK(foolc__nn_reorder_make(fx, &c->plain_w, wmd, 0, 0, L, &c->wf_r));
        upd(&c->scratch, c->wf_r.scratch_bytes);
    }
    FOOLC__CHECK(foolc__nn_reorder_make(fx, &c->plain_in, &c->src_md, 0, 0, L, &c->r_src));
    FOOLC__CHECK(foolc__nn_reorder_make(fx, &c->dst_md, &c->plain_out, 0, 0, L, &c->r_dst));
    upd(&c->scratch, c->r_src.scratch_bytes);
    upd(&c->scratch, c->r_dst.scratch_bytes);
    c->b_src = c->r_src.fwd ? msz(&c->src_md) : 0;
    c->b_dst = c->r_dst.fwd ? msz(&c->dst_md) : 0;
    if (!nd->b) {
        c->zero_bias = foolc__calloc((size_t)nd->out, sizeof(float));
        if (!c->zero_bias) return foolc__nomem("a convolution's zero bias");
    }
    if (!bwd) return FOOLC_OK;
    dnnl_convolution_desc_t bdsc;
    FOOLC__CHECK(foolc__dnnl(dnnl_dilated_convolution_backward_data_desc_init(
                                 &bdsc, dnnl_convolution_direct, &any_src, &any_w, &any_dst,
                                 strides, dil, pl, pr),
                             "dnnl_dilated_convolution_backward_data_desc_init", what, L));
    dnnl_primitive_desc_t bpd = NULL;
    FOOLC__CHECK(foolc__nn_pd(fx, &bdsc, c->fpd, &bpd, &c->bwd_d, what, L));
    c->dsrc_md = *dnnl_primitive_desc_query_md(bpd, dnnl_query_diff_src_md, 0);
    c->ddst_md = *dnnl_primitive_desc_query_md(bpd, dnnl_query_diff_dst_md, 0);
    const dnnl_memory_desc_t *bw = dnnl_primitive_desc_query_md(bpd, dnnl_query_weights_md, 0);
    foolc_status s = foolc__nn_mem(fx, &c->dsrc_md, &c->d_dsrc, L);
    if (s == FOOLC_OK) s = foolc__nn_mem(fx, bw, &c->d_wei, L);
    if (s == FOOLC_OK) s = foolc__nn_mem(fx, &c->ddst_md, &c->d_ddst, L);
    if (s == FOOLC_OK) s = foolc__nn_scratch_mem(fx, bpd, &c->d_scr, &c->scratch, L);
    if (s == FOOLC_OK) s = wbuf(k, c, bw, &c->wd);
    if (s == FOOLC_OK && c->wd) s = foolc__nn_reorder_make(fx, &c->plain_w, bw, 0, 0, L, &c->wd_r);
    dnnl_primitive_desc_destroy(bpd);
    FOOLC__CHECK(s);
    upd(&c->scratch, c->wd_r.scratch_bytes);
    FOOLC__CHECK(foolc__nn_reorder_make(fx, &c->plain_out, &c->ddst_md, 0, 0, L, &c->r_ddy));
    FOOLC__CHECK(foolc__nn_reorder_make(fx, &c->dsrc_md, &c->plain_in, 0, 1, L, &c->r_dx));
    upd(&c->scratch, c->r_ddy.scratch_bytes);
    upd(&c->scratch, c->r_dx.scratch_bytes);
    c->b_ddy = c->r_ddy.fwd ? msz(&c->ddst_md) : 0;
    c->b_dx = msz(&c->dsrc_md);
    c->has_bwd = 1;
    return FOOLC_OK;
}

/* Pooling (forward only; the input gradient stays the C rule of graph_ops.c, which finds
 * the first maximum of each window in x): oneDNN's pooling on plain NCHW tensors of mb
 * images, max or average with or without the padding counted. Where oneDNN offers no
 * primitive for the window the entry has none and the C rule runs. */
static foolc_status build_pool(const nn_fast *fx, const nn_graph *g, const nn_gnode *nd,
                               gconv *c)
{
    const nn_dims in = g->dims[nd->in[0]];
    const int32_t L = nd->line - 2;
    const char *what = "pooling (graph)";
    FOOLC__CHECK(foolc__dnnl(dnnl_stream_create(&c->strm, fx->eng, dnnl_stream_default_flags),
                             "dnnl_stream_create", what, L));
    foolc__nn_md_plain(&c->plain_in, c->mb, in);
    foolc__nn_md_plain(&c->plain_out, c->mb, nd->od);
    dnnl_dims_t k = { nd->kh, nd->kw }, st = { nd->sh, nd->sw }, dil = { 0, 0 };
    dnnl_dims_t pl = { nd->pt, nd->pl }, pr = { nd->pb, nd->pr };
    const dnnl_alg_kind_t alg = nd->op == G_MAXPOOL ? dnnl_pooling_max
                                : nd->count_pad ? dnnl_pooling_avg_include_padding
                                                : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_v2_desc_t pd;
    if (dnnl_pooling_v2_forward_desc_init(&pd, dnnl_forward_inference, alg, &c->plain_in,
                                          &c->plain_out, st, k, dil, pl, pr) != dnnl_success ||
        dnnl_primitive_desc_create(&c->fpd, &pd, fx->attr, fx->eng, NULL) != dnnl_success) {
        c->fpd = NULL;
        return FOOLC_OK;
    }
    FOOLC__CHECK(foolc__dnnl(dnnl_primitive_create(&c->fwd, c->fpd), "dnnl_primitive_create",
                             what, L));
    FOOLC__CHECK(foolc__nn_mem(fx, &c->plain_in, &c->f_src, L));
    FOOLC__CHECK(foolc__nn_mem(fx, &c->plain_out, &c->f_dst, L));
    return foolc__nn_scratch_mem(fx, c->fpd, &c->f_scr, &c->scratch, L);
}

foolc_status foolc__nn_gconv_prepare(const nn_fast *fx, const nn_graph *g, const nn_gnode *nd,
                                     int bwd, int foldable, int32_t mb, int32_t slot,
                                     int32_t lay, void **impl, size_t *tmp)
{
    gcache *k = *impl;
    if (!k) {
        k = foolc__calloc(1, sizeof *k);
        if (!k) return foolc__nomem("a convolution");
        *impl = k;
    }
    gconv *c = find(k, mb, slot, lay);
    if (c && bwd && !c->has_bwd) {
        int32_t at = 0;
        while (k->e[at] != c) at++;
        gconv_free(c);
        k->e[at] = k->e[--k->count];
        c = NULL;
    }
    if (foldable && !k->fold_w) {
        k->fold_w = foolc__malloc((size_t)nd->nw * sizeof(float));
        k->fold_b = foolc__malloc((size_t)nd->out * sizeof(float));
        if (!k->fold_w || !k->fold_b) return foolc__nomem("folded convolution weights");
        k->fold_ok = 0;
    }
    if (!c) {
        if (k->count == k->cap) {
            const int32_t cap = k->cap ? 2 * k->cap : 8;
            gconv **e = foolc__realloc(k->e, (size_t)cap * sizeof *e);
            if (!e) return foolc__nomem("a convolution");
            k->e = e;
            k->cap = cap;
        }
        c = foolc__calloc(1, sizeof *c);
        if (!c) return foolc__nomem("a convolution");
        c->mb = mb;
        c->slot = slot;
        c->lay = lay;
        foolc_status s = nd->op == G_CONV ? build(fx, g, nd, bwd, k, c)
                                          : build_pool(fx, g, nd, c);
        if (s != FOOLC_OK) {
            gconv_free(c);
            return s;
        }
        k->e[k->count++] = c;
    }
    size_t need = 64 + ((c->scratch + 63) & ~(size_t)63) + ((c->b_src + 63) & ~(size_t)63) +
                  ((c->b_dst + 63) & ~(size_t)63) + ((c->b_ddy + 63) & ~(size_t)63) +
                  ((c->b_dx + 63) & ~(size_t)63);
    if (need > *tmp) *tmp = need;
    return FOOLC_OK;
}

static unsigned char *carve(unsigned char **p, size_t bytes)
{
    unsigned char *at = *p;
    *p += (bytes + 63) & ~(size_t)63;
    return at;
}

static foolc_status refresh(const gconv *c, const nn_gnode *nd, const nn_reorder *r, wcopy *w,
                            const float *src, int want, uint64_t pver)
{
    if (!w || (w->ver == pver && w->tag == want)) return FOOLC_OK;
    void *scratch = NULL;
    if (r->scratch_bytes && !(scratch = foolc__malloc(r->scratch_bytes)))
        return foolc__nomem("a weight reorder's scratchpad");
    foolc_status st = reorder_run(c, r, src, w->buf, scratch, nd->line - 2);
    foolc__free(scratch);
    FOOLC__CHECK(st);
    w->ver = pver;
    w->tag = want;
    return FOOLC_OK;
}

/* Folds batchnorm bn (which reads this convolution's output and nothing else does) into the
 * weights and bias: w' = w s, b' = (b - mean) s + beta with s = gamma / sqrt(var + eps). */
static foolc_status fold(gcache *k, const nn_gnode *nd, const nn_gnode *bn, uint64_t pver)
{
    if (!k->fold_w) return foolc__error(FOOLC_E_INTERNAL, "net: line %d: no folded weights",
                                        (int)nd->line);
    if (k->fold_ok && k->fold_ver == pver) return FOOLC_OK;
    const int64_t per = nd->nw / nd->out;
    for (int32_t o = 0; o < nd->out; o++) {
        const double sc = (double)bn->w[o] / sqrt((double)bn->var[o] + bn->eps);
        for (int64_t j = 0; j < per; j++)
            k->fold_w[o * per + j] = (float)((double)nd->w[o * per + j] * sc);
        k->fold_b[o] = (float)(((nd->b ? (double)nd->b[o] : 0.0) - bn->mean[o]) * sc + bn->b[o]);
    }
    k->fold_ok = 1;
    k->fold_ver = pver;
    return FOOLC_OK;
}

foolc_status foolc__nn_gconv_weights(const nn_gnode *nd, const nn_gnode *bn, void *impl,
                                     uint64_t pver)
{
    gcache *k = impl;
    if (!k || nd->op != G_CONV) return FOOLC_OK;
    if (bn) FOOLC__CHECK(fold(k, nd, bn, pver));
    const float *wsrc = bn ? k->fold_w : nd->w;
    for (int32_t i = 0; i < k->count; i++) {
        gconv *c = k->e[i];
        FOOLC__CHECK(refresh(c, nd, &c->wf_r, c->wf, wsrc, bn ? 2 : 1, pver));
        if (c->has_bwd) FOOLC__CHECK(refresh(c, nd, &c->wd_r, c->wd, wsrc, bn ? 2 : 1, pver));
    }
    return FOOLC_OK;
}

/* The weights an entry reads (checked to be this pass's: foolc__nn_gconv_weights ran). */
static foolc_status weights(const gcache *k, const nn_gnode *nd, const nn_gnode *bn,
                            const wcopy *w, uint64_t pver, const float **out)
{
    const float *wsrc = bn ? k->fold_w : nd->w;
    if (bn && !(k->fold_ok && k->fold_ver == pver)) wsrc = NULL;
    if (w) wsrc = w->ver == pver && w->tag == (bn ? 2 : 1) ? w->buf : NULL;
    if (!wsrc)
        return foolc__error(FOOLC_E_INTERNAL, "net: line %d: convolution weights not prepared",
                            (int)nd->line);
    *out = wsrc;
    return FOOLC_OK;
}

foolc_status foolc__nn_gconv_forward(const nn_graph *g, const nn_gnode *nd, const nn_gnode *bn,
                                     void *impl, uint64_t pver, int32_t n, int32_t slot,
                                     int32_t lay, const float *x, float *y, void *tmp)
{
    gconv *c = find(impl, n, slot, lay);
    const int32_t L = nd->line - 2;
    if (!c)
        return foolc__error(FOOLC_E_INTERNAL, "net: line %d: no convolution for %d images",
                            (int)nd->line, (int)n);
    unsigned char *p = (unsigned char *)(((uintptr_t)tmp + 63) & ~(uintptr_t)63);
    void *scratch = carve(&p, c->scratch);
    if (nd->op != G_CONV) {
        if (!c->fwd) return foolc__nn_gop_forward(g, nd, 1, n, &x, y, tmp);
        int parg[3] = { DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD };
        dnnl_memory_t pmem[3] = { c->f_src, c->f_dst, c->f_scr };
        void *pptr[3] = { (void *)x, y, scratch };
        return run_prim(c, c->fwd, 3, parg, pmem, pptr, "pooling (graph) forward", L);
    }
    unsigned char *bs = carve(&p, c->b_src), *bd = carve(&p, c->b_dst);
    const gcache *k = impl;
    const float *wts;
    FOOLC__CHECK(weights(k, nd, bn, c->wf, pver, &wts));
    const float *bsrc = bn ? k->fold_b : nd->b ? nd->b : c->zero_bias;
    int arg[5] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST,
                   DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[5] = { c->f_src, c->f_wei, c->f_bias, c->f_dst, c->f_scr };
    const void *src = x;
    if (c->r_src.fwd) {
        FOOLC__CHECK(reorder_run(c, &c->r_src, src, bs, scratch, L));
        src = bs;
    }
    void *dst = c->r_dst.fwd ? (void *)bd : (void *)y;
    void *ptr[5] = { (void *)src, (void *)wts, (void *)bsrc, dst, scratch };
    FOOLC__CHECK(run_prim(c, c->fwd, 5, arg, mem, ptr, "conv2d (graph) forward", L));
    if (c->r_dst.fwd) FOOLC__CHECK(reorder_run(c, &c->r_dst, bd, y, scratch, L));
    return FOOLC_OK;
}

foolc_status foolc__nn_gconv_backward_data(const nn_graph *g, const nn_gnode *nd,
                                           const nn_gnode *bn, void *impl, uint64_t pver,
                                           int32_t n, int32_t slot, int32_t lay, const float *dy,
                                           float *dx, void *tmp)
{
    gconv *c = find(impl, n, slot, lay);
    const int32_t L = nd->line - 2;
    if (!c || !c->has_bwd)
        return foolc__error(FOOLC_E_INTERNAL, "net: line %d: no convolution gradient for %d "
                            "images", (int)nd->line, (int)n);
    (void)g;
    unsigned char *p = (unsigned char *)(((uintptr_t)tmp + 63) & ~(uintptr_t)63);
    void *scratch = carve(&p, c->scratch);
    (void)carve(&p, c->b_src);
    (void)carve(&p, c->b_dst);
    unsigned char *by = carve(&p, c->b_ddy), *bx = carve(&p, c->b_dx);
    const float *wts;
    FOOLC__CHECK(weights(impl, nd, bn, c->wd, pver, &wts));
    int arg[4] = { DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST, DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[4] = { c->d_dsrc, c->d_wei, c->d_ddst, c->d_scr };
    const void *d = dy;
    if (c->r_ddy.fwd) {
        FOOLC__CHECK(reorder_run(c, &c->r_ddy, d, by, scratch, L));
        d = by;
    }
    void *ptr[4] = { bx, (void *)wts, (void *)d, scratch };
    FOOLC__CHECK(run_prim(c, c->bwd_d, 4, arg, mem, ptr, "conv2d (graph) backward data", L));
    return reorder_run(c, &c->r_dx, bx, dx, scratch, L);
}
