/* oneDNN plumbing for the FAST backend: the engine and stream of a net, memory objects
 * without buffers (handles are set per call, from the arena or the caller's arrays),
 * reorders, primitive creation and execution, and the translation of every dnnl_status_t
 * into FOOLC_E_BACKEND with the call named. */
#include "nn/nn.h"

#include <oneapi/dnnl/dnnl_debug.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* libgomp is not fork-safe: in a child forked after the parent ran OpenMP regions (every
 * oneDNN primitive and dnnl_sgemm), the first region can wait forever for the parent's
 * pool threads. Such a child (Check's test cases, Python's multiprocessing, a server that
 * forks workers) plans every net on the reference backend instead (plan.c): slower,
 * never hung. g_forked is written only in the child, before any other
 * thread exists there, and is inherited by its own children. */
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
static atomic_int g_used_omp;
static int g_forked;

static void on_fork_child(void) { g_forked = atomic_load(&g_used_omp); }
static void register_atfork(void) { (void)pthread_atfork(NULL, NULL, on_fork_child); }

void foolc__nn_omp_note(void)
{
    (void)pthread_once(&g_atfork_once, register_atfork);
    atomic_store_explicit(&g_used_omp, 1, memory_order_relaxed);
}

int foolc__nn_omp_forked(void) { return g_forked; }

foolc_status foolc__dnnl(dnnl_status_t s, const char *call, const char *what, int32_t layer)
{
    if (s == dnnl_success) return FOOLC_OK;
    if (layer >= 0)
        return foolc__error(FOOLC_E_BACKEND, "net: %s(%s, layer %d) -> %s", call, what,
                            (int)layer, dnnl_status2str(s));
    return foolc__error(FOOLC_E_BACKEND, "net: %s(%s) -> %s", call, what, dnnl_status2str(s));
}

foolc_status foolc__nn_fast_init(foolc_net *net)
{
    if (net->fast) return FOOLC_OK;
    nn_fast *fx = foolc__calloc(1, sizeof *fx);
    if (!fx) return foolc__nomem("the oneDNN context");
    foolc_status st = foolc__dnnl(dnnl_engine_create(&fx->eng, dnnl_cpu, 0),
                                  "dnnl_engine_create", "cpu", -1);
    if (st == FOOLC_OK)
        st = foolc__dnnl(dnnl_stream_create(&fx->strm, fx->eng, dnnl_stream_default_flags),
                         "dnnl_stream_create", "cpu", -1);
    if (st == FOOLC_OK)
        st = foolc__dnnl(dnnl_primitive_attr_create(&fx->attr), "dnnl_primitive_attr_create",
                         "scratchpad", -1);
    if (st == FOOLC_OK)
        st = foolc__dnnl(dnnl_primitive_attr_set_scratchpad_mode(fx->attr,
                                                                 dnnl_scratchpad_mode_user),
                         "dnnl_primitive_attr_set_scratchpad_mode", "user", -1);
    if (st != FOOLC_OK) {
        foolc__nn_fast_free(fx);
        return st;
    }
    net->fast = fx;
    return FOOLC_OK;
}

void foolc__nn_fast_free(nn_fast *fx)
{
    if (!fx) return;
    if (fx->attr) dnnl_primitive_attr_destroy(fx->attr);
    if (fx->strm) dnnl_stream_destroy(fx->strm);
    if (fx->eng) dnnl_engine_destroy(fx->eng);
    foolc__free(fx);
}

void foolc__nn_md_plain(dnnl_memory_desc_t *md, int32_t n, nn_dims d)
{
    dnnl_dims_t dims = { n, d.c, d.h, d.w };
    /* Cannot fail for positive dims within the limits the parser enforces. */
    if (dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nchw) != dnnl_success)
        memset(md, 0, sizeof *md);
}

int foolc__nn_md_eq(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b)
{
    return dnnl_memory_desc_equal(a, b) != 0;
}

int foolc__nn_md_block(const dnnl_memory_desc_t *md)
{
    static const struct {
        dnnl_format_tag_t tag;
        int block;
    } k[] = { { dnnl_nchw, 1 }, { dnnl_aBcd16b, 16 }, { dnnl_aBcd8b, 8 } };
    if (md->ndims != 4 || md->data_type != dnnl_f32) return 0;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        dnnl_memory_desc_t b;
        if (dnnl_memory_desc_init_by_tag(&b, 4, md->dims, dnnl_f32, k[i].tag) == dnnl_success &&
            foolc__nn_md_eq(&b, md))
            return k[i].block;
    }
    return 0;
}

int64_t foolc__nn_md_sample_stride(const dnnl_memory_desc_t *md)
{
    if (md->format_kind != dnnl_blocked || md->ndims < 1 || md->padded_dims[0] != md->dims[0])
        return 0;
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    for (int i = 0; i < b->inner_nblks; i++)
        if (b->inner_idxs[i] == 0) return 0;
    int64_t span = 1;   /* floats in one sample: inner blocks times the other dims */
    for (int i = 0; i < b->inner_nblks; i++) span *= b->inner_blks[i];
    for (int d = 1; d < md->ndims; d++) {
        int64_t blk = 1;
        for (int i = 0; i < b->inner_nblks; i++)
            if (b->inner_idxs[i] == d) blk *= b->inner_blks[i];
        span *= md->padded_dims[d] / blk;
    }
    return b->strides[0] == span ? span : 0;
}

foolc_status foolc__nn_mem(const nn_fast *fx, const dnnl_memory_desc_t *md, dnnl_memory_t *m,
                           int32_t layer)
{
    return foolc__dnnl(dnnl_memory_create(m, md, fx->eng, DNNL_MEMORY_NONE),
                       "dnnl_memory_create", "tensor", layer);
}

void foolc__nn_mem_free(dnnl_memory_t *m)
{
    if (*m) dnnl_memory_destroy(*m);
    *m = NULL;
}

foolc_status foolc__nn_scratch_mem(const nn_fast *fx, const_dnnl_primitive_desc_t pd,
                                   dnnl_memory_t *m, size_t *bytes, int32_t layer)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t s = md ? dnnl_memory_desc_get_size(md) : 0;
    *m = NULL;
    if (s == 0) return FOOLC_OK;
    if (s > *bytes) *bytes = s;
    return foolc__dnnl(dnnl_memory_create(m, md, fx->eng, DNNL_MEMORY_NONE),
                       "dnnl_memory_create", "scratchpad", layer);
}

foolc_status foolc__nn_pd(const nn_fast *fx, const void *op_desc,
                          const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd,
                          dnnl_primitive_t *prim, const char *what, int32_t layer)
{
    return foolc__nn_pd_attr(fx, fx->attr, op_desc, hint, pd, prim, what, layer);
}

foolc_status foolc__nn_attr_relu(const nn_fast *fx, dnnl_primitive_attr_t *attr, int32_t layer)
{
    dnnl_post_ops_t po = NULL;
    *attr = NULL;
    foolc_status st = foolc__dnnl(dnnl_primitive_attr_clone(attr, fx->attr),
                                  "dnnl_primitive_attr_clone", "conv2d+relu", layer);
    if (st == FOOLC_OK)
        st = foolc__dnnl(dnnl_post_ops_create(&po), "dnnl_post_ops_create", "conv2d+relu", layer);
    if (st == FOOLC_OK)
        st = foolc__dnnl(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f),
                         "dnnl_post_ops_append_eltwise", "conv2d+relu", layer);
    if (st == FOOLC_OK)
        st = foolc__dnnl(dnnl_primitive_attr_set_post_ops(*attr, po),
                         "dnnl_primitive_attr_set_post_ops", "conv2d+relu", layer);
    if (po) dnnl_post_ops_destroy(po);
    if (st != FOOLC_OK && *attr) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
    }
    return st;
}

foolc_status foolc__nn_pd_attr(const nn_fast *fx, const_dnnl_primitive_attr_t attr,
                               const void *op_desc, const_dnnl_primitive_desc_t hint,
                               dnnl_primitive_desc_t *pd, dnnl_primitive_t *prim,
                               const char *what, int32_t layer)
{
    *pd = NULL;
    foolc_status st = foolc__dnnl(dnnl_primitive_desc_create(pd, op_desc, attr, fx->eng, hint),
                                  "dnnl_primitive_desc_create", what, layer);
    if (st != FOOLC_OK) {
        *pd = NULL;
        return st;
    }
    if (!prim) return FOOLC_OK;
    st = foolc__dnnl(dnnl_primitive_create(prim, *pd), "dnnl_primitive_create", what, layer);
    if (st != FOOLC_OK) {
        *prim = NULL;
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
    }
    return st;
}

static foolc_status reorder_one(const nn_fast *fx, const dnnl_memory_desc_t *src,
                                const dnnl_memory_desc_t *dst, int accumulate, int32_t layer,
                                dnnl_primitive_t *prim, dnnl_memory_t *smem, size_t *scratch)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    foolc_status st = foolc__dnnl(dnnl_primitive_attr_clone(&attr, fx->attr),
                                  "dnnl_primitive_attr_clone", "reorder", layer);
    if (st == FOOLC_OK && accumulate) {
        st = foolc__dnnl(dnnl_post_ops_create(&po), "dnnl_post_ops_create", "reorder", layer);
        if (st == FOOLC_OK)
            st = foolc__dnnl(dnnl_post_ops_append_sum(po, 1.0f), "dnnl_post_ops_append_sum",
                             "reorder", layer);
        if (st == FOOLC_OK)
            st = foolc__dnnl(dnnl_primitive_attr_set_post_ops(attr, po),
                             "dnnl_primitive_attr_set_post_ops", "reorder", layer);
    }
    if (st == FOOLC_OK)
        st = foolc__dnnl(dnnl_reorder_primitive_desc_create(&pd, src, fx->eng, dst, fx->eng,
                                                            attr),
                         "dnnl_reorder_primitive_desc_create", "reorder", layer);
    if (st == FOOLC_OK) {
        st = foolc__nn_scratch_mem(fx, pd, smem, scratch, layer);
        if (st == FOOLC_OK)
            st = foolc__dnnl(dnnl_primitive_create(prim, pd), "dnnl_primitive_create",
                             "reorder", layer);
        if (st != FOOLC_OK) *prim = NULL;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

foolc_status foolc__nn_reorder_make(const nn_fast *fx, const dnnl_memory_desc_t *a,
                                    const dnnl_memory_desc_t *b, int back, int accumulate,
                                    int32_t layer, nn_reorder *r)
{
    memset(r, 0, sizeof *r);
    if (!accumulate && foolc__nn_md_eq(a, b)) return FOOLC_OK;
    foolc_status st = foolc__nn_mem(fx, a, &r->a, layer);
    if (st == FOOLC_OK) st = foolc__nn_mem(fx, b, &r->b, layer);
    if (st == FOOLC_OK) st = reorder_one(fx, a, b, accumulate, layer, &r->fwd, &r->sa,
                                          &r->scratch_bytes);
    if (st == FOOLC_OK && back)
        st = reorder_one(fx, b, a, 0, layer, &r->bwd, &r->sb, &r->scratch_bytes);
    if (st != FOOLC_OK) foolc__nn_reorder_free(r);
    return st;
}

void foolc__nn_reorder_free(nn_reorder *r)
{
    if (r->fwd) dnnl_primitive_destroy(r->fwd);
    if (r->bwd) dnnl_primitive_destroy(r->bwd);
    foolc__nn_mem_free(&r->a);
    foolc__nn_mem_free(&r->b);
    foolc__nn_mem_free(&r->sa);
    foolc__nn_mem_free(&r->sb);
    memset(r, 0, sizeof *r);
}

foolc_status foolc__nn_reorder_run(const nn_fast *fx, nn_reorder *r, int dir, const void *src,
                                   void *dst, void *scratch, int32_t layer)
{
    dnnl_primitive_t p = dir ? r->bwd : r->fwd;
    int arg[3] = { DNNL_ARG_FROM, DNNL_ARG_TO, DNNL_ARG_SCRATCHPAD };
    dnnl_memory_t mem[3] = { dir ? r->b : r->a, dir ? r->a : r->b, dir ? r->sb : r->sa };
    void *ptr[3] = { (void *)src, dst, scratch };
    return foolc__nn_run_prim(fx, p, 3, arg, mem, ptr, "reorder", layer);
}

foolc_status foolc__nn_run_prim(const nn_fast *fx, dnnl_primitive_t p, int nargs,
                                const int *arg, dnnl_memory_t *mem, void *const *ptr,
                                const char *what, int32_t layer)
{
    dnnl_exec_arg_t args[10];
    int k = 0;
    for (int i = 0; i < nargs && k < 10; i++) {
        if (!mem[i]) continue;
        foolc_status st = foolc__dnnl(dnnl_memory_set_data_handle(mem[i], ptr[i]),
                                      "dnnl_memory_set_data_handle", what, layer);
        if (st != FOOLC_OK) return st;
        args[k].arg = arg[i];
        args[k].memory = mem[i];
        k++;
    }
    foolc__nn_omp_note();
    FOOLC__CHECK(foolc__dnnl(dnnl_primitive_execute(p, fx->strm, k, args),
                             "dnnl_primitive_execute", what, layer));
    return foolc__dnnl(dnnl_stream_wait(fx->strm), "dnnl_stream_wait", what, layer);
}
