/* A pass of a graph net: every node's output in its own plain NCHW buffer (the net's graph
 * scratch, grown and never shrunk, so calls at a size already seen allocate nothing), the
 * nodes in text order, each output checked for NaN and Inf (a graph fuses nothing, so the
 * first node and sample that reach one are named, as the sequential engine's checked plan
 * does), then the seed and the backward pass: each tensor's gradient is the sum of what its
 * consumers add into it, the input gradient lands in dx, weight gradients in dparams.
 *
 * The fast backend runs the images in chunks (a power of two images each, the remainder in
 * smaller powers of two), each chunk through every node while its tensors are in cache, the
 * chunks spread over OpenMP's threads: one parallel region for the forward pass and one for
 * the backward pass, each thread with its own scratch and its own convolution primitives
 * (graph_dnnl.c), everything inside an image on one thread (OpenMP's thread count set to 1
 * inside the region: oneDNN and sgemm split nothing). So an image's bits do not depend on
 * the batch, its chunk, its place or the thread count. With weight gradients (training) the
 * backward pass runs the chunks in order on the calling thread (the gradients are sums). */
#include "nn/graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define GRUN_MAX_SLOTS 64

static size_t al64(size_t v) { return (v + 63) & ~(size_t)63; }

static foolc_status buf_reserve(nn_graph *g, size_t bytes)
{
    if (bytes <= g->cap && g->buf) return FOOLC_OK;
    unsigned char *b = foolc__malloc(bytes + 64);
    if (!b) return foolc__nomem("the graph's activations");
    foolc__free(g->buf);
    g->buf = b;
    g->cap = bytes;
    return FOOLC_OK;
}

static unsigned char *buf_base(const nn_graph *g)
{
    return (unsigned char *)(((uintptr_t)g->buf + 63) & ~(uintptr_t)63);
}

/* Flags samples of v (n samples of stride floats) holding NaN or Inf; records the first. */
typedef struct gnf {
    unsigned char *bad;
    int32_t count, node, sample;
    int32_t chunk;               /* the chunk of the first record (-1: the input) */
    int32_t cur;                 /* the chunk being flagged */
    float value;
} gnf;

/* Whether v[0..len) holds a NaN or an infinity: (bits & 0x7fffffff) + 0x00800000 reaches the
 * sign bit exactly when the exponent is all ones; OR-ed over 16-lane vectors (AVX-512,
 * AVX2 or baseline clones chosen at load time, as conv.c's; integers: no rounding). */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__has_attribute) && \
    !defined(__SANITIZE_THREAD__)
#if __has_attribute(target_clones)
#define GR_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#endif
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#undef GR_CLONES
#endif
#endif
#ifndef GR_CLONES
#define GR_CLONES
#endif
#if defined(__GNUC__)
typedef uint32_t gr_v __attribute__((vector_size(64)));
#endif

GR_CLONES static int any_nonfinite(const float *v, size_t len)
{
    uint32_t a = 0;
    size_t j = 0;
#if defined(__GNUC__)
    gr_v acc = { 0 };
    for (; j + 16 <= len; j += 16) {
        gr_v b;
        memcpy(&b, v + j, sizeof b);
        acc |= (b & 0x7fffffffu) + 0x00800000u;
    }
    for (int k = 0; k < 16; k++) a |= acc[k];
#endif
    for (; j < len; j++) {
        uint32_t b;
        memcpy(&b, &v[j], sizeof b);
        a |= (b & 0x7fffffffu) + 0x00800000u;
    }
    return (a >> 31) != 0;
}

static void flag(gnf *nf, const float *v, int32_t s0, int32_t n, size_t stride, int32_t node)
{
    if (!any_nonfinite(v, (size_t)n * stride)) return;
    for (int32_t s = 0; s < n; s++) {
        if (nf->bad[s0 + s]) continue;
        const float *r = v + (size_t)s * stride;
        for (size_t q = 0; q < stride; q++)
            if (!isfinite(r[q])) {
                if (nf->count == 0) {
                    nf->chunk = nf->cur;
                    nf->node = node;
                    nf->sample = s0 + s;
                    nf->value = r[q];
                }
                nf->count++;
                nf->bad[s0 + s] = 1;
                break;
            }
    }
}

/* Whether node i's input gradient is wanted: always, but for a node reading only x when
 * the caller asked for no dx. */
static int dx_needed(const nn_graph *g, int32_t i, const float *dx)
{
    const nn_gnode *nd = &g->nodes[i];
    for (int32_t j = 0; j < nd->nin; j++)
        if (nd->in[j] != 0 || dx) return 1;
    return 0;
}

/* What the chunks of a pass share. */
typedef struct grun {
    nn_graph *g;
    const foolc_net *net;
    int fast;
    const float *x;
    float *dx, *dparams;
    unsigned char *A;
    const size_t *act_off, *grad_off;     /* persistent: in A; local: in the slot's region */
    const unsigned char *act_loc, *grad_loc;
    size_t slot_off, slot_stride;         /* the slots' regions: scratch, local tensors */
    const int32_t *fused, *c0s, *cms;
    const int32_t *clay;                  /* per convolution: its entries' layout key */
} grun;

/* Tensor t (its gradient when grad) of the chunk that starts at image c0, on slot: a local
 * tensor holds only the chunk's images, in the slot's region (reused chunk after chunk, so
 * it stays in cache); a persistent one holds every image. */
static float *tens(const grun *r, int grad, int32_t t, int32_t slot, int32_t c0)
{
    if (!grad && t == 0) return (float *)r->x + (size_t)c0 * (size_t)nn_numel(r->g->dims[0]);
    const size_t off = grad ? r->grad_off[t] : r->act_off[t];
    if (grad ? r->grad_loc[t] : r->act_loc[t])
        return (float *)(r->A + r->slot_off + (size_t)slot * r->slot_stride + off);
    return (float *)(r->A + off) + (size_t)c0 * (size_t)nn_numel(r->g->dims[t]);
}

/* Ops whose output is finite whenever their inputs are (already checked): not flagged. */
static int keeps_finite(nn_gop op)
{
    return op == G_RELU || op == G_CLIP || op == G_SIGMOID || op == G_TANH ||
           op == G_HARDSIGMOID || op == G_IDENTITY || op == G_FLATTEN || op == G_RESHAPE ||
           op == G_TRANSPOSE || op == G_CONCAT;
}

/* One thread's part: its status and message, its NaN/Inf record. */
typedef struct gslot {
    foolc_status st;
    gnf nf;
    char msg[512];
} gslot;

static foolc_status fwd_chunk(const grun *r, int32_t k, int32_t slot, gnf *nf)
{
    const nn_graph *g = r->g;
    const int32_t c0 = r->c0s[k], cm = r->cms[k];
    void *scratch = r->A + r->slot_off + (size_t)slot * r->slot_stride;
    const float *xs[NN_GRAPH_MAX_NODES];
    nf->cur = k;
    for (int32_t i = 0; i < g->N; i++) {
        const nn_gnode *nd = &g->nodes[i];
        if (r->fused[i] == -2) continue;
        for (int32_t j = 0; j < nd->nin; j++) xs[j] = tens(r, 0, nd->in[j], slot, c0);
        const int32_t out = r->fused[i] >= 0 ? r->fused[i] : i;
        const size_t osz = (size_t)nn_numel(g->nodes[out].od);
        float *y = tens(r, 0, out + 1, slot, c0);
        if (r->fast && (nd->op == G_CONV || nd->op == G_MAXPOOL || nd->op == G_AVGPOOL))
            FOOLC__CHECK(foolc__nn_gconv_forward(g, nd,
                                                 r->fused[i] >= 0 ? &g->nodes[r->fused[i]] : NULL,
                                                 g->impl[i], r->net->pver, cm, slot, r->clay[i],
                                                 xs[0], y, scratch));
        else
            FOOLC__CHECK(foolc__nn_gop_forward(g, nd, r->fast, cm, xs, y, scratch));
        if (!keeps_finite(g->nodes[out].op)) flag(nf, y, c0, cm, osz, out);
    }
    return FOOLC_OK;
}

static foolc_status bwd_chunk(const grun *r, int32_t k, int32_t slot)
{
    const nn_graph *g = r->g;
    const int32_t N = g->N, c0 = r->c0s[k], cm = r->cms[k];
    const size_t din = (size_t)nn_numel(g->dims[0]);
    void *scratch = r->A + r->slot_off + (size_t)slot * r->slot_stride;
    const float *xs[NN_GRAPH_MAX_NODES];
    float *dxs[NN_GRAPH_MAX_NODES];
    for (int32_t t = 1; t < N; t++)
        memset(tens(r, 1, t, slot, c0), 0, (size_t)cm * (size_t)nn_numel(g->dims[t]) * sizeof(float));
    if (r->dx) memset(r->dx + (size_t)c0 * din, 0, (size_t)cm * din * sizeof *r->dx);
    for (int32_t i = N - 1; i >= 0; i--) {
        const nn_gnode *nd = &g->nodes[i];
        if (r->fused[i] == -2) continue;
        for (int32_t j = 0; j < nd->nin; j++) {
            const int32_t t = nd->in[j];
            xs[j] = tens(r, 0, t, slot, c0);
            dxs[j] = t == 0 ? (r->dx ? r->dx + (size_t)c0 * din : NULL) : tens(r, 1, t, slot, c0);
        }
        const int32_t out = r->fused[i] >= 0 ? r->fused[i] : i;
        const float *yc = tens(r, 0, i + 1, slot, c0);
        const float *dyc = tens(r, 1, out + 1, slot, c0);
        float *dw = r->dparams && nd->nw ? r->dparams + nd->woff : NULL;
        float *db = r->dparams && nd->nb ? r->dparams + nd->boff : NULL;
        if (r->fast && nd->op == G_CONV) {
            /* Weight gradients by im2col and sgemm, the input gradient by oneDNN. */
            float *none[1] = { NULL };
            if (dw || db)
                FOOLC__CHECK(foolc__nn_gop_backward(g, nd, r->fast, cm, xs, NULL, dyc, none, dw,
                                                    db, scratch));
            if (dxs[0])
                FOOLC__CHECK(foolc__nn_gconv_backward_data(
                    g, nd, r->fused[i] >= 0 ? &g->nodes[r->fused[i]] : NULL, g->impl[i],
                    r->net->pver, cm, slot, r->clay[i], dyc, dxs[0], scratch));
            continue;
        }
        FOOLC__CHECK(foolc__nn_gop_backward(g, nd, r->fast, cm, xs, yc, dyc, dxs, dw, db,
                                            scratch));
    }
    return FOOLC_OK;
}

static void slot_fail(gslot *sl, foolc_status st)
{
    if (st == FOOLC_OK || sl->st != FOOLC_OK) return;
    sl->st = st;
    snprintf(sl->msg, sizeof sl->msg, "%s", foolc_errmsg());
}

/* Runs chunk k of nch for every k, on nt threads (1: still inside a region of one thread,
 * so that OpenMP's thread count is 1 for oneDNN and sgemm as it is on every thread). */
static foolc_status run_chunks(const grun *r, int back, int32_t nch, int32_t nt, gslot *sl)
{
    for (int32_t t = 0; t < nt; t++) sl[t].st = FOOLC_OK;
#ifdef _OPENMP
    foolc__nn_omp_note();
#pragma omp parallel num_threads(nt)
    {
        omp_set_num_threads(1);
        const int32_t slot = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int32_t k = 0; k < nch; k++)
            if (sl[slot].st == FOOLC_OK)
                slot_fail(&sl[slot], back ? bwd_chunk(r, k, slot)
                                          : fwd_chunk(r, k, slot, &sl[slot].nf));
    }
#else
    for (int32_t k = 0; k < nch && sl[0].st == FOOLC_OK; k++)
        slot_fail(&sl[0], back ? bwd_chunk(r, k, 0) : fwd_chunk(r, k, 0, &sl[0].nf));
#endif
    for (int32_t t = 0; t < nt; t++)
        if (sl[t].st != FOOLC_OK) return foolc__error(sl[t].st, "%s", sl[t].msg);
    return FOOLC_OK;
}

static int dims_eq(nn_dims a, nn_dims b) { return a.c == b.c && a.h == b.h && a.w == b.w; }

/* Ops that compute each element from the elements at the same place alone (and their
 * gradients likewise): they run on channel-blocked tensors as on plain ones. */
static int elementwise(const nn_graph *g, const nn_gnode *nd)
{
    switch (nd->op) {
    case G_RELU: case G_LEAKYRELU: case G_SIGMOID: case G_TANH: case G_CLIP: case G_ELU:
    case G_SOFTPLUS: case G_ERF: case G_HARDSIGMOID: case G_HARDSWISH: case G_IDENTITY:
        return 1;
    case G_ADD: case G_SUB: case G_MUL: case G_DIV:
        if (nd->cmode == G_C_VALUE || nd->cmode == G_C_SCALAR) return 1;
        if (nd->cmode != G_C_TENSOR || nd->nin != 2) return 0;
        return dims_eq(g->dims[nd->in[0]], nd->od) && dims_eq(g->dims[nd->in[1]], nd->od);
    default:
        return 0;
    }
}

/* Tensor formats (lay[t]: 0 plain NCHW, else the channel block of nChw16c / nChw8c): a
 * convolution's output keeps oneDNN's blocked format when every reader takes it — another
 * convolution (its reorder reads any format) or an element-wise op whose inputs and output
 * are all blocked alike; everything else (pools, batchnorm, dense, concat, the logits ...)
 * reads plain tensors. Saves the reorders to and from plain NCHW around each convolution. */
static void layouts(const nn_graph *g, const int32_t *fused, const int *cblock,
                    unsigned char *lay)
{
    const int32_t N = g->N;
    memset(lay, 0, (size_t)N + 1);
    for (int32_t i = 0; i < N; i++) {
        const nn_gnode *nd = &g->nodes[i];
        if (nd->op == G_CONV) {
            const int32_t o = (fused[i] >= 0 ? fused[i] : i) + 1;
            const int b = cblock[i];
            if (o < N && (b == 16 || b == 8) && g->dims[o].c % b == 0) lay[o] = (unsigned char)b;
        } else if (fused[i] != -2 && elementwise(g, nd)) {
            int b = 0;
            for (int32_t j = 0; j < nd->nin; j++) {
                const int lj = nd->in[j] ? lay[nd->in[j]] : 0;
                b = j == 0 ? lj : b == lj ? b : 0;
            }
            lay[i + 1] = (unsigned char)b;
        }
    }
    for (int changed = 1; changed;) {
        changed = 0;
        if (lay[N]) lay[N] = 0, changed = 1;
        for (int32_t i = 0; i < N; i++) {
            const nn_gnode *nd = &g->nodes[i];
            if (fused[i] == -2 || nd->op == G_CONV) continue;
            const int ew = elementwise(g, nd);
            int all = lay[i + 1] != 0;
            for (int32_t j = 0; j < nd->nin; j++)
                if (!nd->in[j] || lay[nd->in[j]] != lay[i + 1]) all = 0;
            if (ew && all) continue;
            /* Not element-wise, or mixed formats: everything plain around it. */
            if (lay[i + 1]) lay[i + 1] = 0, changed = 1;
            for (int32_t j = 0; j < nd->nin; j++)
                if (nd->in[j] && lay[nd->in[j]]) lay[nd->in[j]] = 0, changed = 1;
        }
    }
}

/* The convolutions' entries for every chunk size and slot, made with OpenMP's thread count
 * set to 1 (the primitives are then planned for the one thread that runs them); with
 * blocked (when allowed) the tensor formats first (a probe entry per convolution tells the
 * format oneDNN picks), clay[i] the layout key of convolution i. */
static foolc_status prepare(foolc_net *net, const int32_t *fused, int blocked, int back,
                            const float *dx, const int32_t *sizes, int nsizes, int32_t nt,
                            size_t *tmp, int32_t *clay)
{
    nn_graph *g = net->graph;
#ifdef _OPENMP
    const int save = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    foolc_status st = FOOLC_OK;
    int cblock[NN_GRAPH_MAX_NODES];
    unsigned char lay[NN_GRAPH_MAX_NODES + 1];
    for (int32_t i = 0; st == FOOLC_OK && i < g->N; i++) {
        cblock[i] = 0;
        if (g->nodes[i].op != G_CONV || !blocked) continue;
        if (foolc__nn_gconv_dst_block(g->impl[i]) == 0) {
            size_t probe = 0;
            st = foolc__nn_gconv_prepare(net->fast, g, &g->nodes[i], 0, 0, sizes[0], 0, 0,
                                         &g->impl[i], &probe);
        }
        cblock[i] = foolc__nn_gconv_dst_block(g->impl[i]);
    }
    if (st == FOOLC_OK) layouts(g, fused, cblock, lay);
    for (int32_t i = 0; st == FOOLC_OK && i < g->N; i++) {
        if (g->nodes[i].op == G_MAXPOOL || g->nodes[i].op == G_AVGPOOL) {
            for (int z = 0; st == FOOLC_OK && z < nsizes; z++)
                for (int32_t t = 0; st == FOOLC_OK && t < nt; t++)
                    st = foolc__nn_gconv_prepare(net->fast, g, &g->nodes[i], 0, 0, sizes[z], t,
                                                 0, &g->impl[i], tmp);
            continue;
        }
        if (g->nodes[i].op != G_CONV) continue;
        const int bwd = back && dx_needed(g, i, dx);
        const int32_t o = (fused[i] >= 0 ? fused[i] : i) + 1;
        clay[i] = g->nodes[i].in[0] ? (int32_t)lay[g->nodes[i].in[0]] << 8 | lay[o] : lay[o];
        for (int z = 0; st == FOOLC_OK && z < nsizes; z++)
            for (int32_t t = 0; st == FOOLC_OK && t < nt; t++)
                st = foolc__nn_gconv_prepare(net->fast, g, &g->nodes[i], bwd, fused[i] >= 0,
                                             sizes[z], t, clay[i], &g->impl[i], tmp);
        if (st == FOOLC_OK)
            st = foolc__nn_gconv_weights(&g->nodes[i], fused[i] >= 0 ? &g->nodes[fused[i]] : NULL,
                                         g->impl[i], net->pver);
    }
#ifdef _OPENMP
    omp_set_num_threads(save);
#endif
    return st;
}

/* Images per chunk: the power of two at most NN_GRAPH_CHUNK_BYTES of tensors allow, no
 * more than an even share of the threads. */
static int32_t chunk_images(const nn_graph *g, int back, int32_t n, int32_t T)
{
    int64_t per_image = 0;
    for (int32_t t = 1; t <= g->N; t++) per_image += nn_numel(g->dims[t]) * (back ? 8 : 4);
    int64_t m = (int64_t)NN_GRAPH_CHUNK_BYTES / (per_image ? per_image : 1);
    const int64_t share = (n + T - 1) / T;
    if (m > share) m = share;
    if (m > NN_GRAPH_CHUNK_MAX) m = NN_GRAPH_CHUNK_MAX;
    int32_t p = 1;
    while ((int64_t)p * 2 <= m) p *= 2;
    return p;
}

/* A pass; plain: no folding and no blocked formats (the run again that names the node that
 * overflowed exactly: *retry set instead of the error when a folded pass met one). */
static foolc_status run(foolc_net *net, const float *x, int32_t n, int32_t first,
                        foolc_seed_fn seed, void *seed_user, float *logits, float *dx,
                        float *dparams, int plain, int *retry)
{
    nn_graph *g = net->graph;
    const int32_t N = g->N;
    const int fast = net->backend == FOOLC_BACKEND_FAST && !foolc__nn_omp_forked();
    const int back = seed && (dx || dparams);
    const size_t din = (size_t)nn_numel(net->in);
    const int32_t classes = (int32_t)nn_numel(g->dims[N]);
    int32_t T = 1;
#ifdef _OPENMP
    if (fast) T = omp_get_max_threads();
#endif
    T = T < 1 ? 1 : T > GRUN_MAX_SLOTS ? GRUN_MAX_SLOTS : T;
    /* The chunks: m images each (the reference backend: the whole batch), the remainder in
     * smaller powers of two. */
    const int32_t m = fast ? chunk_images(g, back, n, T) : n;
    int32_t sizes[32], nsizes = 0, nch = 0;
    sizes[nsizes++] = m;
    for (int32_t b = m / 2, rem = n % m; b >= 1; b /= 2)
        if (rem & b) sizes[nsizes++] = b;
    const int32_t nfull = n / m;
    nch = nfull + nsizes - 1;
    const int32_t nt = T < nch ? T : nch;
    /* Without weight gradients (the attack path) a batchnorm that alone reads a convolution's
     * output is folded into the convolution: fused[i] is that batchnorm's node for conv i,
     * and for the batchnorm j, fused[j] = -2 (skipped). */
    int32_t fused[NN_GRAPH_MAX_NODES], clay[NN_GRAPH_MAX_NODES];
    int any_fused = 0;
    for (int32_t i = 0; i < N; i++) fused[i] = -1, clay[i] = 0;
    for (int32_t j = 0; fast && !dparams && !plain && j < N; j++) {
        const nn_gnode *bn = &g->nodes[j];
        const int32_t src = bn->in[0] - 1;
        if (bn->op != G_BN || src < 0 || g->nodes[src].op != G_CONV || g->nodes[src].uses != 1)
            continue;
        fused[src] = j;
        fused[j] = -2;
        any_fused = 1;
    }
    /* Layout: the persistent tensors (every image), then one region per slot (thread): node
     * scratch and the local tensors (the chunk's images). Without a backward pass only the
     * logits persist; with one, every activation persists (the backward pass reads them)
     * and every gradient but the logits' is local (a chunk's backward pass is its own). */
    if (fast) FOOLC__CHECK(foolc__nn_fast_init(net));
    size_t tmp = 0;
    for (int32_t i = 0; i < N; i++) {
        size_t b = foolc__nn_gop_tmp(g, &g->nodes[i], m);
        tmp = b > tmp ? b : tmp;
    }
    if (fast)
        FOOLC__CHECK(prepare(net, fused, !dparams && !plain, back, dx, sizes, nsizes, nt, &tmp,
                             clay));
    size_t off = 0, loc = al64(tmp);
    size_t act_off[NN_GRAPH_MAX_NODES + 1], grad_off[NN_GRAPH_MAX_NODES + 1];
    unsigned char act_loc[NN_GRAPH_MAX_NODES + 1], grad_loc[NN_GRAPH_MAX_NODES + 1];
    for (int32_t t = 1; t <= N; t++) {
        const size_t per = (size_t)nn_numel(g->dims[t]) * sizeof(float);
        act_loc[t] = !back && t < N;
        act_off[t] = act_loc[t] ? loc : off;
        *(act_loc[t] ? &loc : &off) += al64((act_loc[t] ? (size_t)m : (size_t)n) * per);
        grad_loc[t] = t < N;
        grad_off[t] = grad_loc[t] ? loc : off;
        if (back) *(grad_loc[t] ? &loc : &off) += al64((grad_loc[t] ? (size_t)m : (size_t)n) * per);
    }
    const size_t slot_off = off, slot_stride = al64(loc);
    off += (size_t)nt * slot_stride;
    const size_t chunk_off = off;
    off += al64(2 * (size_t)nch * sizeof(int32_t));
    const size_t bad_off = off;
    off += al64((size_t)n);
    FOOLC__CHECK(buf_reserve(g, off));
    unsigned char *A = buf_base(g);
    int32_t *c0s = (int32_t *)(A + chunk_off), *cms = c0s + nch;
    for (int32_t k = 0, c0 = 0; k < nch; k++) {
        cms[k] = k < nfull ? m : sizes[k - nfull + 1];
        c0s[k] = c0;
        c0 += cms[k];
    }
    grun r = { g, net, fast, x, dx, dparams, A, act_off, grad_off, act_loc, grad_loc,
               slot_off, slot_stride, fused, c0s, cms, clay };
    gslot sl[GRUN_MAX_SLOTS];
    gnf nf;
    memset(A + bad_off, 0, (size_t)n);
    for (int32_t t = 0; t < nt; t++) {
        memset(&sl[t].nf, 0, sizeof sl[t].nf);
        sl[t].nf.bad = A + bad_off;
        sl[t].nf.node = -1;
    }
    sl[0].nf.cur = -1;
    flag(&sl[0].nf, x, 0, n, din, -1);
    FOOLC__CHECK(run_chunks(&r, 0, nch, nt, sl));
    /* The first record in chunk order (then node order, as one thread would meet them). */
    nf = sl[0].nf;
    nf.count = 0;
    for (int32_t t = 0; t < nt; t++) {
        if (sl[t].nf.count && (nf.count == 0 || sl[t].nf.chunk < nf.chunk)) {
            const int32_t c = nf.count;
            nf = sl[t].nf;
            nf.count = c;
        }
        nf.count += sl[t].nf.count;
    }
    if (nf.count && (any_fused || !plain) && fast) {
        /* Name the node that overflowed exactly: again without folding. */
        *retry = 1;
        return FOOLC_OK;
    }
    float *lg = (float *)(A + act_off[N]);
    const size_t lbytes = (size_t)n * (size_t)classes * sizeof(float);
    if (nf.count) {
        for (int32_t s = 0; s < n; s++)
            if (nf.bad[s])
                for (int32_t j = 0; j < classes; j++) lg[(size_t)s * classes + j] = NAN;
        if (logits) memcpy(logits, lg, lbytes);
        if (seed && back) {
            float *dl = (float *)(A + grad_off[N]);
            memset(dl, 0, lbytes);
            (void)seed(seed_user, lg, n, classes, dl);
        } else if (seed) {
            float *dl = foolc__calloc((size_t)n * (size_t)classes + 1, sizeof(float));
            if (dl) (void)seed(seed_user, lg, n, classes, dl);
            foolc__free(dl);
        }
        const char *v = isnan(nf.value) ? "NaN" : nf.value > 0 ? "inf" : "-inf";
        char more[64] = "";
        if (nf.count > 1)
            snprintf(more, sizeof more, " (and %d more samples)", (int)nf.count - 1);
        if (nf.node < 0)
            return foolc__error(FOOLC_E_NONFINITE, "net: the input of sample %d holds %s%s",
                                (int)(first + nf.sample), v, more);
        const nn_gnode *nd = &g->nodes[nf.node];
        return foolc__error(FOOLC_E_NONFINITE, "net: line %d (%s = %s): sample %d reaches %s%s: "
                            "an overflow of float32 (weights or inputs too large)",
                            (int)nd->line, nd->name, foolc__nn_gop_name(nd->op),
                            (int)(first + nf.sample), v, more);
    }
    if (logits) memcpy(logits, lg, lbytes);
    if (!seed) return FOOLC_OK;
    float *dl;
    float *own = NULL;
    if (back) {
        dl = (float *)(A + grad_off[N]);
    } else {
        own = foolc__calloc((size_t)n * (size_t)classes + 1, sizeof(float));
        if (!own) return foolc__nomem("the logits' gradient");
        dl = own;
    }
    memset(dl, 0, lbytes);
    int rc = seed(seed_user, lg, n, classes, dl);
    foolc__free(own);
    if (rc != 0) return foolc__error(FOOLC_E_ORACLE, "net: the seed callback returned %d", rc);
    if (!back) return FOOLC_OK;

    if (dparams) {
        /* Weight gradients are sums over the batch: the chunks in order, on this thread. */
        for (int32_t k = 0; k < nch; k++) FOOLC__CHECK(bwd_chunk(&r, k, 0));
        return FOOLC_OK;
    }
    return run_chunks(&r, 1, nch, nt, sl);
}

foolc_status foolc__nn_graph_run(foolc_net *net, const float *x, int32_t n, int32_t first,
                                 foolc_seed_fn seed, void *seed_user, float *logits,
                                 float *dx, float *dparams)
{
    int retry = 0;
    foolc_status st = run(net, x, n, first, seed, seed_user, logits, dx, dparams, 0, &retry);
    if (st == FOOLC_OK && retry)
        st = run(net, x, n, first, seed, seed_user, logits, dx, dparams, 1, &retry);
    return st;
}
