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

static void flag(gnf *nf, const float *v, int32_t s0, int32_t n, size_t stride, int32_t node)
{
    /* The largest |v| as float bits: NaN and Inf are at or above 0x7f800000 (vectorises). */
    uint32_t m = 0, mk[16] = { 0 };
    const size_t len = (size_t)n * stride;
    size_t j = 0;
    for (; j + 16 <= len; j += 16)
        for (int k = 0; k < 16; k++) {
            uint32_t b;
            memcpy(&b, &v[j + k], sizeof b);
            b &= 0x7fffffffu;
            mk[k] = b > mk[k] ? b : mk[k];
        }
    for (; j < len; j++) {
        uint32_t b;
        memcpy(&b, &v[j], sizeof b);
        b &= 0x7fffffffu;
        m = b > m ? b : m;
    }
    for (int k = 0; k < 16; k++) m = mk[k] > m ? mk[k] : m;
    if (m < 0x7f800000u) return;
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
    const size_t *act_off, *grad_off;
    size_t tmp_off, tmp_stride;
    const int32_t *fused, *c0s, *cms;
} grun;

/* One thread's part: its status and message, its NaN/Inf record. */
typedef struct gslot {
    foolc_status st;
    gnf nf;
    char msg[512];
} gslot;

#define ACT(r, t) ((t) == 0 ? (r)->x : (const float *)((r)->A + (r)->act_off[t]))

static foolc_status fwd_chunk(const grun *r, int32_t k, int32_t slot, gnf *nf)
{
    const nn_graph *g = r->g;
    const int32_t c0 = r->c0s[k], cm = r->cms[k];
    void *scratch = r->A + r->tmp_off + (size_t)slot * r->tmp_stride;
    const float *xs[NN_GRAPH_MAX_NODES];
    nf->cur = k;
    for (int32_t i = 0; i < g->N; i++) {
        const nn_gnode *nd = &g->nodes[i];
        if (r->fused[i] == -2) continue;
        for (int32_t j = 0; j < nd->nin; j++)
            xs[j] = ACT(r, nd->in[j]) + (size_t)c0 * (size_t)nn_numel(g->dims[nd->in[j]]);
        const int32_t out = r->fused[i] >= 0 ? r->fused[i] : i;
        const size_t osz = (size_t)nn_numel(g->nodes[out].od);
        float *y = (float *)(r->A + r->act_off[out + 1]) + (size_t)c0 * osz;
        if (r->fast && nd->op == G_CONV)
            FOOLC__CHECK(foolc__nn_gconv_forward(g, nd,
                                                 r->fused[i] >= 0 ? &g->nodes[r->fused[i]] : NULL,
                                                 g->impl[i], r->net->pver, cm, slot, xs[0], y,
                                                 scratch));
        else
            FOOLC__CHECK(foolc__nn_gop_forward(g, nd, r->fast, cm, xs, y, scratch));
        flag(nf, y, c0, cm, osz, out);
    }
    return FOOLC_OK;
}

static foolc_status bwd_chunk(const grun *r, int32_t k, int32_t slot)
{
    const nn_graph *g = r->g;
    const int32_t N = g->N, c0 = r->c0s[k], cm = r->cms[k];
    const size_t din = (size_t)nn_numel(g->dims[0]);
    void *scratch = r->A + r->tmp_off + (size_t)slot * r->tmp_stride;
    const float *xs[NN_GRAPH_MAX_NODES];
    float *dxs[NN_GRAPH_MAX_NODES];
    for (int32_t t = 1; t < N; t++) {
        const size_t tsz = (size_t)nn_numel(g->dims[t]);
        memset((float *)(r->A + r->grad_off[t]) + (size_t)c0 * tsz, 0,
               (size_t)cm * tsz * sizeof(float));
    }
    if (r->dx) memset(r->dx + (size_t)c0 * din, 0, (size_t)cm * din * sizeof *r->dx);
    for (int32_t i = N - 1; i >= 0; i--) {
        const nn_gnode *nd = &g->nodes[i];
        if (r->fused[i] == -2) continue;
        for (int32_t j = 0; j < nd->nin; j++) {
            const size_t o = (size_t)c0 * (size_t)nn_numel(g->dims[nd->in[j]]);
            xs[j] = ACT(r, nd->in[j]) + o;
            dxs[j] = nd->in[j] == 0 ? (r->dx ? r->dx + o : NULL)
                                    : (float *)(r->A + r->grad_off[nd->in[j]]) + o;
        }
        const int32_t out = r->fused[i] >= 0 ? r->fused[i] : i;
        const size_t oo = (size_t)c0 * (size_t)nn_numel(nd->od);
        const float *yc = (const float *)(r->A + r->act_off[i + 1]) + oo;
        const float *dyc = (const float *)(r->A + r->grad_off[out + 1]) + oo;
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
                    r->net->pver, cm, slot, dyc, dxs[0], scratch));
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

/* The convolutions' entries for every chunk size and slot, made with OpenMP's thread count
 * set to 1 (the primitives are then planned for the one thread that runs them). */
static foolc_status prepare(foolc_net *net, const int32_t *fused, int back, const float *dx,
                            const int32_t *sizes, int nsizes, int32_t nt, size_t *tmp)
{
    nn_graph *g = net->graph;
#ifdef _OPENMP
    const int save = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    foolc_status st = FOOLC_OK;
    for (int32_t i = 0; st == FOOLC_OK && i < g->N; i++) {
        if (g->nodes[i].op != G_CONV) continue;
        const int bwd = back && dx_needed(g, i, dx);
        for (int z = 0; st == FOOLC_OK && z < nsizes; z++)
            for (int32_t t = 0; st == FOOLC_OK && t < nt; t++)
                st = foolc__nn_gconv_prepare(net->fast, g, &g->nodes[i], bwd, fused[i] >= 0,
                                             sizes[z], t, &g->impl[i], tmp);
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

foolc_status foolc__nn_graph_run(foolc_net *net, const float *x, int32_t n, int32_t first,
                                 foolc_seed_fn seed, void *seed_user, float *logits,
                                 float *dx, float *dparams)
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
    int32_t fused[NN_GRAPH_MAX_NODES], nofuse[NN_GRAPH_MAX_NODES];
    int any_fused = 0;
    for (int32_t i = 0; i < N; i++) fused[i] = nofuse[i] = -1;
    for (int32_t j = 0; fast && !dparams && j < N; j++) {
        const nn_gnode *bn = &g->nodes[j];
        const int32_t src = bn->in[0] - 1;
        if (bn->op != G_BN || src < 0 || g->nodes[src].op != G_CONV || g->nodes[src].uses != 1)
            continue;
        fused[src] = j;
        fused[j] = -2;
        any_fused = 1;
    }
    /* Layout: activations of tensors 1..N, gradients of 1..N, node scratch per thread,
     * chunk offsets and sizes, flags. */
    size_t off = 0, tmp = 0;
    size_t act_off[NN_GRAPH_MAX_NODES + 1], grad_off[NN_GRAPH_MAX_NODES + 1];
    for (int32_t t = 1; t <= N; t++) {
        act_off[t] = off;
        off += al64((size_t)n * (size_t)nn_numel(g->dims[t]) * sizeof(float));
    }
    if (back)
        for (int32_t t = 1; t <= N; t++) {
            grad_off[t] = off;
            off += al64((size_t)n * (size_t)nn_numel(g->dims[t]) * sizeof(float));
        }
    if (fast) FOOLC__CHECK(foolc__nn_fast_init(net));
    for (int32_t i = 0; i < N; i++) {
        size_t b = foolc__nn_gop_tmp(g, &g->nodes[i], m);
        tmp = b > tmp ? b : tmp;
    }
    if (fast) FOOLC__CHECK(prepare(net, fused, back, dx, sizes, nsizes, nt, &tmp));
    const size_t tmp_off = off, tmp_stride = al64(tmp);
    off += (size_t)nt * tmp_stride;
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
    grun r = { g, net, fast, x, dx, dparams, A, act_off, grad_off, tmp_off, tmp_stride,
               fused, c0s, cms };
    gslot sl[GRUN_MAX_SLOTS];
    gnf nf;
again:
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
    if (nf.count && any_fused) {
        /* Name the node that overflowed exactly: again without folding. */
        any_fused = 0;
        r.fused = nofuse;
        goto again;
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
