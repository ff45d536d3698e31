/* A pass of a graph net: every node's output in its own plain NCHW buffer (the net's graph
 * scratch, grown and never shrunk, so calls at a size already seen allocate nothing), the
 * nodes in text order, each output checked for NaN and Inf (a graph fuses nothing, so the
 * first node and sample that reach one are named, as the sequential engine's checked plan
 * does), then the seed and the backward pass: each tensor's gradient is the sum of what its
 * consumers add into it, the input gradient lands in dx, weight gradients in dparams. */
#include "nn/graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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
    /* Layout: activations of tensors 1..N, gradients of 1..N, node scratch, pointers, flags. */
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
        size_t b = foolc__nn_gop_tmp(g, &g->nodes[i], n);
        tmp = b > tmp ? b : tmp;
        if (fast && g->nodes[i].op == G_CONV)
            FOOLC__CHECK(foolc__nn_gconv_prepare(net->fast, g, &g->nodes[i], back && dx_needed(g, i, dx),
                                                 &g->impl[i], &tmp));
    }
    const size_t tmp_off = off;
    off += al64(tmp);
    const size_t bad_off = off;
    off += al64((size_t)n);
    FOOLC__CHECK(buf_reserve(g, off));
    unsigned char *A = buf_base(g);
    void *scratch = A + tmp_off;
#define ACT(t) ((t) == 0 ? x : (const float *)(A + act_off[t]))
    /* Without weight gradients (the attack path) a batchnorm that alone reads a convolution's
     * output is folded into the convolution: fused[i] is that batchnorm's node for conv i,
     * and for the batchnorm j, fused[j] = -2 (skipped). */
    int32_t fused[NN_GRAPH_MAX_NODES];
    int any_fused = 0;
    for (int32_t i = 0; i < N; i++) fused[i] = -1;
    for (int32_t j = 0; fast && !dparams && j < N; j++) {
        const nn_gnode *bn = &g->nodes[j];
        const int32_t src = bn->in[0] - 1;
        if (bn->op != G_BN || src < 0 || g->nodes[src].op != G_CONV || g->nodes[src].uses != 1 ||
            !g->impl[src])
            continue;
        fused[src] = j;
        fused[j] = -2;
        any_fused = 1;
    }
    gnf nf = { A + bad_off, 0, -1, 0, 0.0f };
again:
    memset(nf.bad, 0, (size_t)n);
    nf.count = 0;
    nf.node = -1;
    flag(&nf, x, 0, n, din, -1);
    /* The fast backend runs the graph on chunks of images small enough for their tensors to
     * stay in cache from one node to the next (every op computes each image on its own). */
    int64_t per_image = 0;
    for (int32_t t = 1; t <= N; t++) per_image += nn_numel(g->dims[t]) * (back ? 8 : 4);
    int32_t m = fast ? (int32_t)(NN_GRAPH_CHUNK_BYTES / (per_image ? per_image : 1)) : n;
    m = m < 1 ? 1 : m > n ? n : m;
    const float *xs[NN_GRAPH_MAX_NODES];
    for (int32_t c0 = 0; c0 < n; c0 += m) {
        const int32_t cm = n - c0 < m ? n - c0 : m;
        for (int32_t i = 0; i < N; i++) {
            const nn_gnode *nd = &g->nodes[i];
            for (int32_t j = 0; j < nd->nin; j++)
                xs[j] = ACT(nd->in[j]) + (size_t)c0 * (size_t)nn_numel(g->dims[nd->in[j]]);
            if (fused[i] == -2) continue;
            const int32_t out = fused[i] >= 0 ? fused[i] : i;
            const size_t osz = (size_t)nn_numel(g->nodes[out].od);
            float *y = (float *)(A + act_off[out + 1]) + (size_t)c0 * osz;
            if (fast && nd->op == G_CONV)
                FOOLC__CHECK(foolc__nn_gconv_forward(net->fast, g, nd,
                                                     fused[i] >= 0 ? &g->nodes[fused[i]] : NULL,
                                                     g->impl[i], net->pver, cm, xs[0], y,
                                                     scratch));
            else
                FOOLC__CHECK(foolc__nn_gop_forward(g, nd, fast, cm, xs, y, scratch));
            flag(&nf, y, c0, cm, osz, out);
        }
    }
    if (nf.count && any_fused) {
        /* Name the node that overflowed exactly: again without folding. */
        any_fused = 0;
        for (int32_t i = 0; i < N; i++) fused[i] = -1;
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

    float *dxs[NN_GRAPH_MAX_NODES];
    for (int32_t c0 = 0; c0 < n; c0 += m) {
        const int32_t cm = n - c0 < m ? n - c0 : m;
        for (int32_t t = 1; t < N; t++) {
            const size_t tsz = (size_t)nn_numel(g->dims[t]);
            memset((float *)(A + grad_off[t]) + (size_t)c0 * tsz, 0, (size_t)cm * tsz * sizeof(float));
        }
        if (dx) memset(dx + (size_t)c0 * din, 0, (size_t)cm * din * sizeof *dx);
        for (int32_t i = N - 1; i >= 0; i--) {
            const nn_gnode *nd = &g->nodes[i];
            for (int32_t j = 0; j < nd->nin; j++) {
                const size_t o = (size_t)c0 * (size_t)nn_numel(g->dims[nd->in[j]]);
                xs[j] = ACT(nd->in[j]) + o;
                dxs[j] = nd->in[j] == 0 ? (dx ? dx + o : NULL)
                                        : (float *)(A + grad_off[nd->in[j]]) + o;
            }
            if (fused[i] == -2) continue;
            const int32_t out = fused[i] >= 0 ? fused[i] : i;
            const size_t oo = (size_t)c0 * (size_t)nn_numel(nd->od);
            const float *yc = (const float *)(A + act_off[i + 1]) + oo;
            const float *dyc = (const float *)(A + grad_off[out + 1]) + oo;
            float *dw = dparams && nd->nw ? dparams + nd->woff : NULL;
            float *db = dparams && nd->nb ? dparams + nd->boff : NULL;
            if (fast && nd->op == G_CONV) {
                /* Weight gradients by im2col and sgemm, the input gradient by oneDNN. */
                float *none[1] = { NULL };
                if (dw || db)
                    FOOLC__CHECK(foolc__nn_gop_backward(g, nd, fast, cm, xs, NULL, dyc, none, dw,
                                                        db, scratch));
                if (dxs[0])
                    FOOLC__CHECK(foolc__nn_gconv_backward_data(
                        net->fast, g, nd, fused[i] >= 0 ? &g->nodes[fused[i]] : NULL, g->impl[i],
                        net->pver, cm, dyc, dxs[0], scratch));
                continue;
            }
            FOOLC__CHECK(foolc__nn_gop_backward(g, nd, fast, cm, xs, yc, dyc, dxs, dw, db,
                                                scratch));
        }
    }
#undef ACT
    return FOOLC_OK;
}
