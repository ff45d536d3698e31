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

static void flag(gnf *nf, const float *v, int32_t n, size_t stride, int32_t node)
{
    /* The largest |v| as float bits: NaN and Inf are at or above 0x7f800000 (vectorises). */
    uint32_t m = 0;
    for (size_t j = 0; j < (size_t)n * stride; j++) {
        uint32_t b;
        memcpy(&b, &v[j], sizeof b);
        b &= 0x7fffffffu;
        m = b > m ? b : m;
    }
    if (m < 0x7f800000u) return;
    for (int32_t s = 0; s < n; s++) {
        if (nf->bad[s]) continue;
        const float *r = v + (size_t)s * stride;
        for (size_t j = 0; j < stride; j++)
            if (!isfinite(r[j])) {
                if (nf->count == 0) {
                    nf->node = node;
                    nf->sample = s;
                    nf->value = r[j];
                }
                nf->count++;
                nf->bad[s] = 1;
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
    gnf nf = { A + bad_off, 0, -1, 0, 0.0f };
    memset(nf.bad, 0, (size_t)n);
    flag(&nf, x, n, din, -1);
    const float *xs[NN_GRAPH_MAX_NODES];
    for (int32_t i = 0; i < N; i++) {
        const nn_gnode *nd = &g->nodes[i];
        for (int32_t j = 0; j < nd->nin; j++) xs[j] = ACT(nd->in[j]);
        float *y = (float *)(A + act_off[i + 1]);
        if (fast && nd->op == G_CONV)
            FOOLC__CHECK(foolc__nn_gconv_forward(net->fast, g, nd, g->impl[i], net->pver, n,
                                                 xs[0], y, scratch));
        else
            FOOLC__CHECK(foolc__nn_gop_forward(g, nd, fast, n, xs, y, scratch));
        flag(&nf, y, n, (size_t)nn_numel(nd->od), i);
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

    for (int32_t t = 1; t < N; t++)
        memset(A + grad_off[t], 0, (size_t)n * (size_t)nn_numel(g->dims[t]) * sizeof(float));
    if (dx) memset(dx, 0, (size_t)n * din * sizeof *dx);
    float *dxs[NN_GRAPH_MAX_NODES];
    for (int32_t i = N - 1; i >= 0; i--) {
        const nn_gnode *nd = &g->nodes[i];
        for (int32_t j = 0; j < nd->nin; j++) {
            xs[j] = ACT(nd->in[j]);
            dxs[j] = nd->in[j] == 0 ? dx : (float *)(A + grad_off[nd->in[j]]);
        }
        float *dw = dparams && nd->nw ? dparams + nd->woff : NULL;
        float *db = dparams && nd->nb ? dparams + nd->boff : NULL;
        if (fast && nd->op == G_CONV) {
            /* Weight gradients by im2col and sgemm, the input gradient by oneDNN. */
            float *none[1] = { NULL };
            const float *dyc = (const float *)(A + grad_off[i + 1]);
            if (dw || db)
                FOOLC__CHECK(foolc__nn_gop_backward(g, nd, fast, n, xs, NULL, dyc, none, dw, db,
                                                    scratch));
            if (dxs[0] && dx_needed(g, i, dx))
                FOOLC__CHECK(foolc__nn_gconv_backward_data(net->fast, g, nd, g->impl[i],
                                                           net->pver, n, dyc, dxs[0], scratch));
            continue;
        }
        FOOLC__CHECK(foolc__nn_gop_backward(g, nd, fast, n, xs, (const float *)(A + act_off[i + 1]),
                                            (const float *)(A + grad_off[i + 1]), dxs, dw, db,
                                            scratch));
    }
#undef ACT
    return FOOLC_OK;
}
