/* Training passes with batch statistics (docs/net.md, "Training"): batchnorm normalises
 * with the mean and variance of the minibatch over (N, H, W), its backward pass runs
 * through those statistics, and after each accepted step the running statistics move
 * towards them with momentum 0.1 (PyTorch's train() mode; inference keeps using the running
 * statistics). The pass runs a graph net node by node over the whole minibatch (batch
 * statistics need every image before any is normalised), with each op's own rule from
 * graph_ops.c but batchnorm's, which is here. A sequential net with batchnorm trains
 * through a graph twin: the same chain written as a graph (a layer's name is its index, so
 * parameters, statistics and their order agree), whose parameters are copied in before
 * each pass. Nets without batchnorm do not come here (lib/nn/train.c runs them through
 * foolc__nn_run as before).
 *
 * Determinism: batchnorm's sums run in one fixed order on the calling thread (double
 * accumulators); the other ops are graph_ops.c's, whose convolution and dense products are
 * per image. */
#include "nn/graph_train.h"

#include "nn/graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BN_MOMENTUM 0.1

struct nn_gtrain {
    foolc_net *net;              /* the net trained */
    foolc_net *twin;             /* sequential nets: the chain as a graph net; else NULL */
    foolc_net *gn;               /* the net whose graph runs: twin or net */
    int32_t cap;                 /* images per pass at most */
    unsigned char *raw, *base;   /* activations, gradients, node scratch */
    size_t *act, *grad;          /* N + 1 offsets each (tensor 0, the input, has none) */
    size_t tmp_off, bytes;
    int64_t *boff;               /* N: node i's channels in bmean/bvar (batchnorm only) */
    double *bmean, *bvar, *binv; /* the last pass's batch mean, biased variance, 1/std */
    int64_t *bcount;             /* N: values per channel in the last pass (N*H*W) */
    int fresh;                   /* the last pass computed batch statistics */
};

static size_t al64(size_t v) { return (v + 63) & ~(size_t)63; }

int foolc__nn_has_batchnorm(const foolc_net *net)
{
    if (net->graph) {
        for (int32_t i = 0; i < net->graph->N; i++)
            if (net->graph->nodes[i].op == G_BN) return 1;
        return 0;
    }
    for (int32_t i = 0; i < net->L; i++)
        if (net->layers[i].kind == &foolc__nn_batchnorm) return 1;
    return 0;
}

/* The graph text of a sequential net: line i is named by the layer's index. */
static foolc_status twin_text(const foolc_net *net, char **out)
{
    size_t cap = 64 + (size_t)net->L * 96, len = 0;
    char *t = foolc__malloc(cap);
    if (!t) return foolc__nomem("the training graph's text");
    len += (size_t)snprintf(t, cap, "input c=%d h=%d w=%d", (int)net->in.c, (int)net->in.h,
                            (int)net->in.w);
    for (int32_t i = 0; i < net->L; i++) {
        const nn_layer *l = &net->layers[i];
        const char *k = l->kind->name;
        char prev[16] = "x", opt[64] = "";
        if (i > 0) snprintf(prev, sizeof prev, "%d", (int)(i - 1));
        if (l->kind == &foolc__nn_conv2d)
            snprintf(opt, sizeof opt, " out=%d k=%d s=%d p=%d", (int)l->out, (int)l->k,
                     (int)l->s, (int)l->p);
        else if (l->kind == &foolc__nn_dense)
            snprintf(opt, sizeof opt, " out=%d", (int)l->out);
        else if (l->kind == &foolc__nn_maxpool2d || l->kind == &foolc__nn_avgpool2d)
            snprintf(opt, sizeof opt, " k=%d s=%d p=%d", (int)l->k, (int)l->s, (int)l->p);
        else if (l->kind == &foolc__nn_batchnorm) {
            char e[40];
            foolc__nn_fmt_real(e, sizeof e, l->eps);
            snprintf(opt, sizeof opt, " eps=%s", e);
        }
        len += (size_t)snprintf(t + len, cap - len, "; %d = %s(%s)%s", (int)i, k, prev, opt);
    }
    *out = t;
    return FOOLC_OK;
}

void foolc__nn_gtrain_free(nn_gtrain *c)
{
    if (!c) return;
    foolc_net_free(c->twin);
    foolc__free(c->raw);
    foolc__free(c->act);
    foolc__free(c->grad);
    foolc__free(c->boff);
    foolc__free(c->bmean);
    foolc__free(c->bvar);
    foolc__free(c->binv);
    foolc__free(c->bcount);
    foolc__free(c);
}

foolc_status foolc__nn_gtrain_new(foolc_net *net, int32_t cap, nn_gtrain **out)
{
    *out = NULL;
    nn_gtrain *c = foolc__calloc(1, sizeof *c);
    if (!c) return foolc__nomem("the training pass");
    c->net = net;
    c->cap = cap;
    foolc_status st = FOOLC_OK;
    if (!net->graph) {
        char *text = NULL;
        st = twin_text(net, &text);
        if (st == FOOLC_OK) st = foolc_net_new(text, 0, &c->twin);
        if (st != FOOLC_OK)
            foolc__error_prefix(st, "net: train: batch statistics need the chain as a graph "
                                "(%s)", text ? text : "no text");
        foolc__free(text);
        if (st == FOOLC_OK) {
            c->twin->backend = net->backend;
            c->twin->lo = net->lo;
            c->twin->hi = net->hi;
        }
    }
    c->gn = c->twin ? c->twin : net;
    const nn_graph *g = st == FOOLC_OK ? c->gn->graph : NULL;
    if (g && (g->N != net->L || c->gn->n_params != net->n_params ||
              c->gn->n_stats != net->n_stats))
        st = foolc__error(FOOLC_E_INTERNAL, "net: train: the graph twin does not match the net");
    if (st == FOOLC_OK) {
        const int32_t N = g->N;
        c->act = foolc__calloc((size_t)N + 1, sizeof *c->act);
        c->grad = foolc__calloc((size_t)N + 1, sizeof *c->grad);
        c->boff = foolc__calloc((size_t)N + 1, sizeof *c->boff);
        c->bcount = foolc__calloc((size_t)N + 1, sizeof *c->bcount);
        if (!c->act || !c->grad || !c->boff || !c->bcount) st = foolc__nomem("the training pass");
    }
    if (st == FOOLC_OK) {
        const int32_t N = g->N;
        size_t off = 0, tmp = 0;
        for (int32_t t = 1; t <= N; t++) {
            c->act[t] = off;
            off += al64(foolc__mul((size_t)cap, (size_t)nn_numel(g->dims[t])) * sizeof(float));
        }
        for (int32_t t = 1; t <= N; t++) {
            c->grad[t] = off;
            off += al64(foolc__mul((size_t)cap, (size_t)nn_numel(g->dims[t])) * sizeof(float));
        }
        int64_t nb = 0;
        for (int32_t i = 0; i < N; i++) {
            const size_t b = foolc__nn_gop_tmp(g, &g->nodes[i], cap);
            tmp = b > tmp ? b : tmp;
            c->boff[i] = nb;
            if (g->nodes[i].op == G_BN) nb += g->nodes[i].ns;
        }
        c->tmp_off = off;
        off += al64(tmp);
        c->bytes = off;
        c->raw = foolc__malloc(off + 64);
        c->bmean = foolc__calloc((size_t)nb + 1, sizeof *c->bmean);
        c->bvar = foolc__calloc((size_t)nb + 1, sizeof *c->bvar);
        c->binv = foolc__calloc((size_t)nb + 1, sizeof *c->binv);
        if (!c->raw || !c->bmean || !c->bvar || !c->binv)
            st = foolc__nomem("the training pass's activations");
        else
            c->base = (unsigned char *)(((uintptr_t)c->raw + 63) & ~(uintptr_t)63);
    }
    if (st != FOOLC_OK) {
        foolc__nn_gtrain_free(c);
        return st;
    }
    *out = c;
    return FOOLC_OK;
}

/* ---- batchnorm with batch statistics ------------------------------------------------- */

/* Sums over the images of one channel in 8 double lanes (lane k takes the elements at
 * positions p = k mod 8 of each image's plane, the tail lane 0), added up in lane order: a
 * fixed order that GCC turns into SIMD. */
enum { LANES = 8 };

static double lanes_total(const double *l)
{
    double s = 0;
    for (int k = 0; k < LANES; k++) s += l[k];
    return s;
}

/* sum x and, with a mean given, sum (x - mean)^2 over one plane. */
static void plane_sum(const float *restrict x, int64_t HW, double *restrict l)
{
    int64_t p = 0;
    for (; p + LANES <= HW; p += LANES)
        for (int k = 0; k < LANES; k++) l[k] += x[p + k];
    for (; p < HW; p++) l[0] += x[p];
}

static void plane_sq(const float *restrict x, int64_t HW, double mean, double *restrict l)
{
    int64_t p = 0;
    for (; p + LANES <= HW; p += LANES)
        for (int k = 0; k < LANES; k++) {
            const double d = (double)x[p + k] - mean;
            l[k] += d * d;
        }
    for (; p < HW; p++) {
        const double d = (double)x[p] - mean;
        l[0] += d * d;
    }
}

/* sum dy and sum dy (x - mean) over one plane. */
static void plane_dsum(const float *restrict x, const float *restrict dy, int64_t HW, double mean,
                       double *restrict ld, double *restrict lx)
{
    int64_t p = 0;
    for (; p + LANES <= HW; p += LANES)
        for (int k = 0; k < LANES; k++) {
            ld[k] += dy[p + k];
            lx[k] += (double)dy[p + k] * ((double)x[p + k] - mean);
        }
    for (; p < HW; p++) {
        ld[0] += dy[p];
        lx[0] += (double)dy[p] * ((double)x[p] - mean);
    }
}

/* Forward: mean and biased variance of each channel over the n images and H x W (two
 * passes, double, fixed order), then y = (x - mean) / sqrt(var + eps) * weight + bias. */
void foolc__nn_bn_train_forward(const nn_gnode *nd, nn_dims in, int fast, int32_t n,
                                const float *x, float *y, double *bmean, double *bvar,
                                double *binv)
{
    const int64_t HW = (int64_t)in.h * in.w;
    const size_t isz = (size_t)nn_numel(in);
    const double M = (double)n * (double)HW;
    for (int32_t c = 0; c < in.c; c++) {
        double l[LANES] = { 0 };
        for (int32_t r = 0; r < n; r++) plane_sum(x + (size_t)r * isz + (size_t)c * HW, HW, l);
        const double mean = lanes_total(l) / M;
        memset(l, 0, sizeof l);
        for (int32_t r = 0; r < n; r++)
            plane_sq(x + (size_t)r * isz + (size_t)c * HW, HW, mean, l);
        const double var = lanes_total(l) / M, is = 1.0 / sqrt(var + nd->eps);
        bmean[c] = mean;
        bvar[c] = var;
        binv[c] = is;
        const double w = nd->w[c], b = nd->b[c];
        const float fs = (float)(w * is), fh = (float)(b - mean * w * is);
        for (int32_t r = 0; r < n; r++) {
            const float *restrict xc = x + (size_t)r * isz + (size_t)c * HW;
            float *restrict yc = y + (size_t)r * isz + (size_t)c * HW;
            if (fast)
                for (int64_t p = 0; p < HW; p++) yc[p] = xc[p] * fs + fh;
            else
                for (int64_t p = 0; p < HW; p++)
                    yc[p] = (float)(((double)xc[p] - mean) * is * w + b);
        }
    }
}

/* Backward through the batch statistics, with xh = (x - mean) / std and M = n H W:
 * dweight += sum dy xh, dbias += sum dy,
 * dx += weight / std (dy - sum(dy) / M - xh sum(dy xh) / M). */
void foolc__nn_bn_train_backward(const nn_gnode *nd, nn_dims in, int fast, int32_t n,
                                 const float *x, const float *dy, float *dx, float *dw,
                                 float *db, const double *bmean, const double *binv)
{
    const int64_t HW = (int64_t)in.h * in.w;
    const size_t isz = (size_t)nn_numel(in);
    const double M = (double)n * (double)HW;
    for (int32_t c = 0; c < in.c; c++) {
        const double mean = bmean[c], is = binv[c];
        double ld[LANES] = { 0 }, lx[LANES] = { 0 };
        for (int32_t r = 0; r < n; r++) {
            const size_t o = (size_t)r * isz + (size_t)c * HW;
            plane_dsum(x + o, dy + o, HW, mean, ld, lx);
        }
        const double sd = lanes_total(ld), sdx = lanes_total(lx) * is;
        if (dw) dw[c] += (float)sdx;
        if (db) db[c] += (float)sd;
        if (!dx) continue;
        const double k = nd->w[c] * is, md = sd / M, mx = sdx / M;
        /* dx = k dy + bx x + c0, with bx = -k mx is and c0 = -k md + k mx is mean. */
        const double bx = -k * mx * is, c0 = -k * md + k * mx * is * mean;
        const float fk = (float)k, fb = (float)bx, fc = (float)c0;
        for (int32_t r = 0; r < n; r++) {
            const size_t o = (size_t)r * isz + (size_t)c * HW;
            if (fast) {
                float *restrict d = dx + o;
                const float *restrict g = dy + o, *restrict xx = x + o;
                for (int64_t p = 0; p < HW; p++) d[p] += fk * g[p] + fb * xx[p] + fc;
            }
            else
                for (int64_t p = 0; p < HW; p++)
                    dx[o + p] += (float)(k * ((double)dy[o + p] - md -
                                              ((double)x[o + p] - mean) * is * mx));
        }
    }
}

/* ---- the pass ------------------------------------------------------------------------- */

/* The first non-finite value of v (n samples of stride floats): its sample, or -1. */
static int32_t first_bad(const float *v, int32_t n, size_t stride, float *val)
{
    for (int32_t s = 0; s < n; s++)
        for (size_t q = 0; q < stride; q++)
            if (!isfinite(v[(size_t)s * stride + q])) {
                *val = v[(size_t)s * stride + q];
                return s;
            }
    return -1;
}

static int any_bad(const float *v, size_t len)
{
    uint32_t m = 0, mk[16] = { 0 };
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
    return m >= 0x7f800000u;
}

static foolc_status nonfinite(const nn_gnode *nd, const float *v, int32_t n, size_t stride)
{
    float val = 0;
    const int32_t s = first_bad(v, n, stride, &val);
    const char *what = isnan(val) ? "NaN" : val > 0 ? "inf" : "-inf";
    if (!nd)
        return foolc__error(FOOLC_E_NONFINITE, "net: the input of sample %d holds %s", (int)s,
                            what);
    return foolc__error(FOOLC_E_NONFINITE, "net: line %d (%s = %s): sample %d reaches %s: an "
                        "overflow of float32 (weights or inputs too large)", (int)nd->line,
                        nd->name, foolc__nn_gop_name(nd->op), (int)s, what);
}

foolc_status foolc__nn_gtrain_pass(nn_gtrain *c, const float *x, int32_t n, foolc_seed_fn seed,
                                   void *seed_user, float *dparams)
{
    foolc_net *net = c->gn;
    const nn_graph *g = net->graph;
    const int32_t N = g->N;
    if (n < 1 || n > c->cap)
        return foolc__error(FOOLC_E_INTERNAL, "net: train: a pass of %d images (at most %d)",
                            (int)n, (int)c->cap);
    if (c->twin) {
        /* The twin runs on the trained net's current parameters and statistics. */
        memcpy(net->params, c->net->params, (size_t)net->n_params * sizeof(float));
        memcpy(net->stats, c->net->stats, (size_t)net->n_stats * sizeof(float));
        net->pver++;
        net->backend = c->net->backend;
    }
    const int fast = net->backend == FOOLC_BACKEND_FAST && !foolc__nn_omp_forked();
    unsigned char *A = c->base;
    void *tmp = A + c->tmp_off;
    const size_t din = (size_t)nn_numel(net->in);
    c->fresh = 0;
    if (any_bad(x, (size_t)n * din)) return nonfinite(NULL, x, n, din);
#define ACT(t) ((t) == 0 ? x : (const float *)(A + c->act[t]))
    const float *xs[NN_GRAPH_MAX_NODES];
    float *dxs[NN_GRAPH_MAX_NODES];
    for (int32_t i = 0; i < N; i++) {
        const nn_gnode *nd = &g->nodes[i];
        for (int32_t j = 0; j < nd->nin; j++) xs[j] = ACT(nd->in[j]);
        float *y = (float *)(A + c->act[i + 1]);
        if (nd->op == G_BN) {
            const int64_t o = c->boff[i];
            foolc__nn_bn_train_forward(nd, g->dims[nd->in[0]], fast, n, xs[0], y, c->bmean + o,
                                       c->bvar + o, c->binv + o);
            c->bcount[i] = (int64_t)n * g->dims[nd->in[0]].h * g->dims[nd->in[0]].w;
        } else {
            FOOLC__CHECK(foolc__nn_gop_forward(g, nd, fast, n, xs, y, tmp));
        }
        const size_t osz = (size_t)nn_numel(nd->od);
        if (any_bad(y, (size_t)n * osz)) return nonfinite(nd, y, n, osz);
    }
    const int32_t classes = (int32_t)nn_numel(g->dims[N]);
    const float *lg = (const float *)(A + c->act[N]);
    float *dl = (float *)(A + c->grad[N]);
    memset(dl, 0, (size_t)n * (size_t)classes * sizeof *dl);
    const int rc = seed(seed_user, lg, n, classes, dl);
    if (rc != 0) return foolc__error(FOOLC_E_ORACLE, "net: the seed callback returned %d", rc);
    for (int32_t t = 1; t < N; t++)
        memset(A + c->grad[t], 0, (size_t)n * (size_t)nn_numel(g->dims[t]) * sizeof(float));
    for (int32_t i = N - 1; i >= 0; i--) {
        const nn_gnode *nd = &g->nodes[i];
        int any = 0;
        for (int32_t j = 0; j < nd->nin; j++) {
            xs[j] = ACT(nd->in[j]);
            dxs[j] = nd->in[j] == 0 ? NULL : (float *)(A + c->grad[nd->in[j]]);
            any |= dxs[j] != NULL;
        }
        float *dw = nd->nw ? dparams + nd->woff : NULL;
        float *db = nd->nb ? dparams + nd->boff : NULL;
        if (!any && !dw && !db) continue;
        const float *y = (const float *)(A + c->act[i + 1]);
        const float *dy = (const float *)(A + c->grad[i + 1]);
        if (nd->op == G_BN) {
            const int64_t o = c->boff[i];
            foolc__nn_bn_train_backward(nd, g->dims[nd->in[0]], fast, n, xs[0], dy, dxs[0], dw,
                                        db, c->bmean + o, c->binv + o);
        } else {
            FOOLC__CHECK(foolc__nn_gop_backward(g, nd, fast, n, xs, y, dy, dxs, dw, db, tmp));
        }
    }
#undef ACT
    c->fresh = 1;
    return FOOLC_OK;
}

const float *foolc__nn_gtrain_logits(const nn_gtrain *c)
{
    return (const float *)(c->base + c->act[c->gn->graph->N]);
}

/* running = (1 - m) running + m batch, the variance unbiased (M / (M - 1)), as PyTorch;
 * a channel seen once (M = 1) has no variance to add and keeps its statistics. */
void foolc__nn_gtrain_commit(nn_gtrain *c)
{
    if (!c->fresh) return;
    const nn_graph *g = c->gn->graph;
    for (int32_t i = 0; i < g->N; i++) {
        const nn_gnode *nd = &g->nodes[i];
        if (nd->op != G_BN || c->bcount[i] < 2) continue;
        /* The trained net's own statistics (the twin's are copied from them per pass). */
        float *mean = c->twin ? c->net->layers[i].mean : nd->mean;
        float *var = c->twin ? c->net->layers[i].var : nd->var;
        const double M = (double)c->bcount[i];
        for (int64_t k = 0; k < nd->ns; k++) {
            const int64_t o = c->boff[i] + k;
            mean[k] = (float)((1 - BN_MOMENTUM) * mean[k] + BN_MOMENTUM * c->bmean[o]);
            var[k] = (float)((1 - BN_MOMENTUM) * var[k] +
                             BN_MOMENTUM * c->bvar[o] * M / (M - 1));
        }
    }
    c->fresh = 0;
}
