/* Bound propagation for foolc_certify: interval bounds (IBP) forward through the layers, and
 * CROWN's backward linear relaxation (adaptive lower ReLU slopes, CROWN-Ada) for the
 * pre-activation bounds of each ReLU and for the specification (the margins of the label's
 * logit over every other logit), all in double precision over the net's float weights.
 *
 * A backward pass carries R rows of coefficients A over one tensor and R constants c: the
 * row's function of the input is at least A . tensor + c. Each layer maps A over its output
 * to A over its input (dense and conv: products with the weights, through BLAS dgemm; relu
 * and max pooling: the relaxation chosen by the sign of each coefficient), and at the input
 * the ball ∩ box gives the lower bound (Linf: the box [max(lo, x - r), min(hi, x + r)],
 * exact; L2 and L1: the dual norm of the row, or that box when it gives more). */
#include "certify_impl.h"
#include "nn/graph.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

/* Doubles of one coefficient matrix of a CROWN pass over one image (64 MB). A ReLU input
 * whose pass would need more keeps its IBP bounds. */
#define CERT_BUDGET ((int64_t)1 << 23)
/* Relative widening of every bound: covers the float engine's rounding (its sums run in
 * float over fan-ins of thousands) with room to spare. */
#define CERT_RTOL 1e-5
#define CERT_ATOL 1e-6

enum { K_DENSE, K_CONV, K_RELU, K_MAXPOOL, K_AVGPOOL, K_BN, K_FLATTEN, K_SOFTMAX };

typedef struct cert_layer {
    const nn_layer *l;
    int kind;
    double *w, *b;               /* dense: out x in; conv: O x C*K*K; bn: scale, shift */
    double *wabs;                /* dense and conv: |w| (IBP) */
    double *rown;                /* dense and conv straight on the input: each row's dual
                                    norm (per output channel for conv, unclipped) */
} cert_layer;

typedef struct cert_ctx {
    const foolc_net *net;
    int32_t L, nl;               /* layers, layers bounded (L - 1 after a final softmax) */
    int64_t *off;                /* L + 2 */
    int64_t maxsize;
    cert_layer *cl;              /* L */
    double *A, *B, *G, *c;       /* CROWN scratch */
    size_t capA, capG, capc;
} cert_ctx;

static int64_t tsize(const foolc_net *net, int32_t t)
{
    return nn_numel(t == 0 ? net->in : net->layers[t - 1].out_dims);
}

static int kind_of(const nn_layer *l)
{
    const nn_kind *k = l->kind;
    if (k == &foolc__nn_dense) return K_DENSE;
    if (k == &foolc__nn_conv2d) return K_CONV;
    if (k == &foolc__nn_relu) return K_RELU;
    if (k == &foolc__nn_maxpool2d) return K_MAXPOOL;
    if (k == &foolc__nn_avgpool2d) return K_AVGPOOL;
    if (k == &foolc__nn_batchnorm) return K_BN;
    if (k == &foolc__nn_flatten) return K_FLATTEN;
    if (k == &foolc__nn_softmax) return K_SOFTMAX;
    return -1;
}

foolc_status foolc__cert_check_net(const foolc_net *net, const char *who)
{
    if (!net) return foolc__error(FOOLC_E_INVALID, "%s: NULL net", who);
    if (net->graph) {
        /* name the first node that joins tensors (add, concat, ...), else the first */
        const nn_graph *g = net->graph;
        int32_t k = 0;
        for (int32_t i = 0; i < g->N; i++)
            if (g->nodes[i].nin > 1) {
                k = i;
                break;
            }
        return foolc__error(FOOLC_E_UNSUPPORTED, "%s: graph nets are not supported yet "
                            "(line %d: %s = %s(...)); only sequential ones: dense, conv2d, "
                            "relu, maxpool2d, avgpool2d, batchnorm, flatten, a final softmax",
                            who, g->N ? (int)g->nodes[k].line : 0, g->N ? g->nodes[k].name : "",
                            g->N ? foolc__nn_gop_name(g->nodes[k].op) : "");
    }
    for (int32_t i = 0; i < net->L; i++) {
        const nn_layer *l = &net->layers[i];
        int k = kind_of(l);
        if (k < 0 || (k == K_SOFTMAX && i != net->L - 1))
            return foolc__error(FOOLC_E_UNSUPPORTED, "%s: layer %d (%s) is not supported%s",
                                who, (int)i, l->kind->name,
                                k == K_SOFTMAX ? " except as the last layer" : "");
    }
    if (net->L == 0 || (net->L == 1 && kind_of(&net->layers[0]) == K_SOFTMAX))
        return foolc__error(FOOLC_E_UNSUPPORTED, "%s: the net has no layer to bound", who);
    return FOOLC_OK;
}

int64_t foolc__cert_offset(const foolc_net *net, int32_t t)
{
    int64_t o = 0;
    for (int32_t i = 0; i < t && i <= net->L; i++) o += tsize(net, i);
    return o;
}

static double dual_norm(foolc_norm norm, const double *a, int64_t n, int64_t stride)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = fabs(a[i * stride]);
        if (norm == FOOLC_LINF) s += v;          /* dual of Linf: L1 */
        else if (norm == FOOLC_L2) s += v * v;
        else if (v > s) s = v;                   /* dual of L1: Linf */
    }
    return norm == FOOLC_L2 ? sqrt(s) : s;
}

static void ctx_free(cert_ctx *c)
{
    if (c->cl)
        for (int32_t i = 0; i < c->L; i++) {
            foolc__free(c->cl[i].w);
            foolc__free(c->cl[i].b);
            foolc__free(c->cl[i].wabs);
            foolc__free(c->cl[i].rown);
        }
    foolc__free(c->cl);
    foolc__free(c->off);
    foolc__free(c->A);
    foolc__free(c->B);
    foolc__free(c->G);
    foolc__free(c->c);
    memset(c, 0, sizeof *c);
}

static int first_affine(const cert_ctx *c, int32_t i)
{
    for (int32_t j = 0; j < i; j++)
        if (c->cl[j].kind != K_FLATTEN) return 0;
    return c->cl[i].kind == K_DENSE || c->cl[i].kind == K_CONV;
}

/* The double weights of every layer; row norms of a first affine layer for norm. */
static foolc_status ctx_init(cert_ctx *c, const foolc_net *net, foolc_norm norm)
{
    memset(c, 0, sizeof *c);
    c->net = net;
    c->L = net->L;
    c->nl = kind_of(&net->layers[net->L - 1]) == K_SOFTMAX ? net->L - 1 : net->L;
    c->off = foolc__calloc((size_t)net->L + 2, sizeof *c->off);
    c->cl = foolc__calloc((size_t)net->L, sizeof *c->cl);
    if (!c->off || !c->cl) return ctx_free(c), foolc__nomem("certify: bounds");
    for (int32_t t = 0; t <= net->L + 1; t++) c->off[t] = foolc__cert_offset(net, t);
    for (int32_t t = 0; t <= net->L; t++)
        if (tsize(net, t) > c->maxsize) c->maxsize = tsize(net, t);
    for (int32_t i = 0; i < net->L; i++) {
        cert_layer *q = &c->cl[i];
        const nn_layer *l = &net->layers[i];
        q->l = l;
        q->kind = kind_of(l);
        if (q->kind == K_DENSE || q->kind == K_CONV) {
            size_t nw = (size_t)l->nw, nb = (size_t)l->nb;
            q->w = foolc__calloc(nw, sizeof(double));
            q->wabs = foolc__calloc(nw, sizeof(double));
            q->b = foolc__calloc(nb, sizeof(double));
            if (!q->w || !q->wabs || !q->b) return ctx_free(c), foolc__nomem("certify: weights");
            for (size_t j = 0; j < nw; j++) {
                q->w[j] = l->w[j];
                q->wabs[j] = fabs(q->w[j]);
            }
            for (size_t j = 0; j < nb; j++) q->b[j] = l->b[j];
            if (first_affine(c, i) && norm != FOOLC_LINF) {
                int32_t rows = l->out;
                int64_t cols = (int64_t)l->nw / rows;
                q->rown = foolc__calloc((size_t)rows, sizeof(double));
                if (!q->rown) return ctx_free(c), foolc__nomem("certify: weights");
                for (int32_t o = 0; o < rows; o++)
                    q->rown[o] = dual_norm(norm, q->w + (size_t)o * cols, cols, 1);
            }
        } else if (q->kind == K_BN) {
            int32_t C = l->in.c;
            q->w = foolc__calloc((size_t)C, sizeof(double));
            q->b = foolc__calloc((size_t)C, sizeof(double));
            if (!q->w || !q->b) return ctx_free(c), foolc__nomem("certify: weights");
            for (int32_t ch = 0; ch < C; ch++) {
                double is = 1.0 / sqrt((double)l->var[ch] + l->eps);
                q->w[ch] = (double)l->w[ch] * is;
                q->b[ch] = (double)l->b[ch] - (double)l->mean[ch] * l->w[ch] * is;
            }
        }
    }
    return FOOLC_OK;
}

static foolc_status grow(double **p, size_t *cap, size_t need)
{
    if (need <= *cap) return FOOLC_OK;
    double *q = foolc__realloc(*p, foolc__mul(need, sizeof(double)));
    if (!q) return foolc__nomem("certify: bound matrices");
    *p = q;
    *cap = need;
    return FOOLC_OK;
}

static void widen(double *lb, double *ub, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double m = fabs(lb[i]) > fabs(ub[i]) ? fabs(lb[i]) : fabs(ub[i]);
        double e = CERT_RTOL * m + CERT_ATOL;
        lb[i] -= e;
        ub[i] += e;
    }
}

/* Max-pool window of output (oh, ow), clipped to the input. */
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

/* ---- IBP ---------------------------------------------------------------------------- */

/* Interval of tensor i + 1 from tensor i through layer i (center and radius form for the
 * affine layers). x, r, norm: the input ball, for the row-norm bound of a first affine
 * layer (intersected with the interval). */
static void ibp_layer(const cert_ctx *c, int32_t i, double *lb, double *ub, const float *x,
                      foolc_norm norm, double r)
{
    const cert_layer *q = &c->cl[i];
    const nn_layer *l = q->l;
    const int64_t ni = tsize(c->net, i), no = tsize(c->net, i + 1);
    const double *il = lb + c->off[i], *iu = ub + c->off[i];
    double *ol = lb + c->off[i + 1], *ou = ub + c->off[i + 1];
    switch (q->kind) {
    case K_DENSE: {
        const int32_t NI = l->in.c, O = l->out;
        for (int32_t o = 0; o < O; o++) {
            const double *w = q->w + (size_t)o * NI;
            double m = q->b[o], rad = 0, cx = q->b[o];
            for (int32_t j = 0; j < NI; j++) {
                double mid = 0.5 * (il[j] + iu[j]), hr = 0.5 * (iu[j] - il[j]);
                m += w[j] * mid;
                rad += fabs(w[j]) * hr;
                if (q->rown) cx += w[j] * x[j];
            }
            ol[o] = m - rad;
            ou[o] = m + rad;
            if (q->rown) {
                double rr = r * q->rown[o];
                if (cx - rr > ol[o]) ol[o] = cx - rr;
                if (cx + rr < ou[o]) ou[o] = cx + rr;
            }
        }
        break;
    }
    case K_CONV: {
        const int32_t C = l->in.c, H = l->in.h, W = l->in.w, O = l->out, K = l->k, S = l->s,
                      P = l->p, OH = l->out_dims.h, OW = l->out_dims.w;
        for (int32_t o = 0; o < O; o++)
            for (int32_t oh = 0; oh < OH; oh++)
                for (int32_t ow = 0; ow < OW; ow++) {
                    double m = q->b[o], rad = 0, cx = q->b[o], s2 = 0, s1 = 0;
                    for (int32_t ch = 0; ch < C; ch++)
                        for (int32_t kh = 0; kh < K; kh++) {
                            int32_t ih = oh * S - P + kh;
                            if (ih < 0 || ih >= H) continue;
                            for (int32_t kw = 0; kw < K; kw++) {
                                int32_t iw = ow * S - P + kw;
                                if (iw < 0 || iw >= W) continue;
                                size_t j = ((size_t)ch * H + ih) * W + iw;
                                double w = q->w[(((size_t)o * C + ch) * K + kh) * K + kw];
                                m += w * 0.5 * (il[j] + iu[j]);
                                rad += fabs(w) * 0.5 * (iu[j] - il[j]);
                                if (q->rown) {
                                    cx += w * x[j];
                                    if (norm == FOOLC_L2) s2 += w * w;
                                    else if (fabs(w) > s1) s1 = fabs(w);
                                }
                            }
                        }
                    size_t y = ((size_t)o * OH + oh) * OW + ow;
                    ol[y] = m - rad;
                    ou[y] = m + rad;
                    if (q->rown) {
                        double rr = r * (norm == FOOLC_L2 ? sqrt(s2) : s1);
                        if (cx - rr > ol[y]) ol[y] = cx - rr;
                        if (cx + rr < ou[y]) ou[y] = cx + rr;
                    }
                }
        break;
    }
    case K_RELU:
        for (int64_t j = 0; j < no; j++) {
            ol[j] = il[j] > 0 ? il[j] : 0;
            ou[j] = iu[j] > 0 ? iu[j] : 0;
        }
        break;
    case K_MAXPOOL:
    case K_AVGPOOL: {
        const int32_t C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out_dims.h,
                      OW = l->out_dims.w;
        const double area = (double)l->k * l->k;
        for (int32_t ch = 0; ch < C; ch++)
            for (int32_t oh = 0; oh < OH; oh++)
                for (int32_t ow = 0; ow < OW; ow++) {
                    int32_t h0, h1, w0, w1;
                    window(l, oh, ow, &h0, &h1, &w0, &w1);
                    double a = q->kind == K_MAXPOOL ? -INFINITY : 0, b = a;
                    for (int32_t h = h0; h < h1; h++)
                        for (int32_t w = w0; w < w1; w++) {
                            size_t j = ((size_t)ch * H + h) * W + w;
                            if (q->kind == K_MAXPOOL) {
                                if (il[j] > a) a = il[j];
                                if (iu[j] > b) b = iu[j];
                            } else {
                                a += il[j];
                                b += iu[j];
                            }
                        }
                    size_t y = ((size_t)ch * OH + oh) * OW + ow;
                    ol[y] = q->kind == K_MAXPOOL ? a : a / area;
                    ou[y] = q->kind == K_MAXPOOL ? b : b / area;
                }
        break;
    }
    case K_BN: {
        const int64_t plane = (int64_t)l->in.h * l->in.w;
        for (int64_t j = 0; j < no; j++) {
            double s = q->w[j / plane], t = q->b[j / plane];
            double a = s * il[j] + t, b = s * iu[j] + t;
            ol[j] = a < b ? a : b;
            ou[j] = a < b ? b : a;
        }
        break;
    }
    case K_FLATTEN:
        memcpy(ol, il, (size_t)ni * sizeof *ol);
        memcpy(ou, iu, (size_t)ni * sizeof *ou);
        return;
    default: /* softmax (last): probabilities */
        for (int64_t j = 0; j < no; j++) {
            ol[j] = 0;
            ou[j] = 1;
        }
        return;
    }
    widen(ol, ou, no);
}

/* ---- CROWN -------------------------------------------------------------------------- */

/* A (R x size of tensor i + 1) over layer i's output -> B (R x size of tensor i) over its
 * input, constants into cc. lb, ub: bounds of tensor i (the relaxations read them). */
static foolc_status back_layer(cert_ctx *c, int32_t i, int64_t R, const double *A, double *B,
                               double *cc, const double *lb, const double *ub)
{
    const cert_layer *q = &c->cl[i];
    const nn_layer *l = q->l;
    const int64_t ni = tsize(c->net, i), no = tsize(c->net, i + 1);
    const double *il = lb + c->off[i], *iu = ub + c->off[i];
    switch (q->kind) {
    case K_DENSE: {
        const int32_t NI = l->in.c, O = l->out;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, NI, O, 1.0, A, O, q->w,
                    NI, 0.0, B, NI);
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)R, O, 1.0, A, O, q->b, 1, 1.0, cc, 1);
        break;
    }
    case K_CONV: {
        const int32_t C = l->in.c, H = l->in.h, W = l->in.w, O = l->out, K = l->k, S = l->s,
                      P = l->p, OH = l->out_dims.h, OW = l->out_dims.w;
        const int64_t P2 = (int64_t)OH * OW, CKK = (int64_t)C * K * K;
        FOOLC__CHECK(grow(&c->G, &c->capG, (size_t)(P2 * CKK)));
        memset(B, 0, (size_t)(R * ni) * sizeof *B);
        for (int64_t r = 0; r < R; r++) {
            const double *a = A + r * no;
            double *bo = B + r * ni;
            /* G (CKK x P2) = Wm^T (CKK x O) . a (O x P2) */
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)CKK, (int)P2, O, 1.0,
                        q->w, (int)CKK, a, (int)P2, 0.0, c->G, (int)P2);
            for (int32_t o = 0; o < O; o++) {
                double s = 0;
                for (int64_t p = 0; p < P2; p++) s += a[o * P2 + p];
                cc[r] += s * q->b[o];
            }
            for (int32_t ch = 0; ch < C; ch++)
                for (int32_t kh = 0; kh < K; kh++)
                    for (int32_t kw = 0; kw < K; kw++) {
                        const double *g = c->G + (((int64_t)ch * K + kh) * K + kw) * P2;
                        for (int32_t oh = 0; oh < OH; oh++) {
                            int32_t ih = oh * S - P + kh;
                            if (ih < 0 || ih >= H) continue;
                            double *brow = bo + ((size_t)ch * H + ih) * W;
                            for (int32_t ow = 0; ow < OW; ow++) {
                                int32_t iw = ow * S - P + kw;
                                if (iw >= 0 && iw < W) brow[iw] += g[oh * OW + ow];
                            }
                        }
                    }
        }
        break;
    }
    case K_RELU: {
        /* per input: slope for positive coefficients, slope and intercept for negative */
        FOOLC__CHECK(grow(&c->G, &c->capG, (size_t)(3 * ni)));
        double *sp = c->G, *sn = c->G + ni, *in = c->G + 2 * ni;
        for (int64_t j = 0; j < ni; j++) {
            double lo = il[j], hi = iu[j];
            if (hi <= 0) sp[j] = sn[j] = in[j] = 0;
            else if (lo >= 0) {
                sp[j] = sn[j] = 1;
                in[j] = 0;
            } else {
                sn[j] = hi / (hi - lo);
                in[j] = -sn[j] * lo;
                sp[j] = hi > -lo ? 1.0 : 0.0;
            }
        }
        for (int64_t r = 0; r < R; r++) {
            const double *a = A + r * no;
            double *b = B + r * ni, s = 0;
            for (int64_t j = 0; j < ni; j++) {
                if (a[j] >= 0) b[j] = a[j] * sp[j];
                else {
                    b[j] = a[j] * sn[j];
                    s += a[j] * in[j];
                }
            }
            cc[r] += s;
        }
        break;
    }
    case K_AVGPOOL: {
        const int32_t C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out_dims.h,
                      OW = l->out_dims.w;
        const double inv = 1.0 / ((double)l->k * l->k);
        memset(B, 0, (size_t)(R * ni) * sizeof *B);
        for (int64_t r = 0; r < R; r++) {
            const double *a = A + r * no;
            double *b = B + r * ni;
            for (int32_t ch = 0; ch < C; ch++)
                for (int32_t oh = 0; oh < OH; oh++)
                    for (int32_t ow = 0; ow < OW; ow++) {
                        int32_t h0, h1, w0, w1;
                        window(l, oh, ow, &h0, &h1, &w0, &w1);
                        double v = a[((size_t)ch * OH + oh) * OW + ow] * inv;
                        for (int32_t h = h0; h < h1; h++)
                            for (int32_t w = w0; w < w1; w++)
                                b[((size_t)ch * H + h) * W + w] += v;
                    }
        }
        break;
    }
    case K_MAXPOOL: {
        /* y >= x_best (the input of the largest lower bound); y <= the largest upper
         * bound, or y = x_best when that input dominates the window. */
        const int32_t C = l->in.c, H = l->in.h, W = l->in.w, OH = l->out_dims.h,
                      OW = l->out_dims.w;
        FOOLC__CHECK(grow(&c->G, &c->capG, (size_t)(3 * no)));
        double *best = c->G, *dom = c->G + no, *umx = c->G + 2 * no;
        for (int32_t ch = 0; ch < C; ch++)
            for (int32_t oh = 0; oh < OH; oh++)
                for (int32_t ow = 0; ow < OW; ow++) {
                    int32_t h0, h1, w0, w1;
                    window(l, oh, ow, &h0, &h1, &w0, &w1);
                    size_t y = ((size_t)ch * OH + oh) * OW + ow;
                    size_t bj = ((size_t)ch * H + h0) * W + w0;
                    double umax = -INFINITY, uother = -INFINITY;
                    for (int32_t h = h0; h < h1; h++)
                        for (int32_t w = w0; w < w1; w++) {
                            size_t j = ((size_t)ch * H + h) * W + w;
                            if (il[j] > il[bj]) bj = j;
                            if (iu[j] > umax) umax = iu[j];
                        }
                    for (int32_t h = h0; h < h1; h++)
                        for (int32_t w = w0; w < w1; w++) {
                            size_t j = ((size_t)ch * H + h) * W + w;
                            if (j != bj && iu[j] > uother) uother = iu[j];
                        }
                    best[y] = (double)bj;
                    dom[y] = il[bj] >= uother;
                    umx[y] = umax;
                }
        memset(B, 0, (size_t)(R * ni) * sizeof *B);
        for (int64_t r = 0; r < R; r++) {
            const double *a = A + r * no;
            double *b = B + r * ni, s = 0;
            for (int64_t y = 0; y < no; y++) {
                if (a[y] >= 0 || dom[y] != 0) b[(int64_t)best[y]] += a[y];
                else s += a[y] * umx[y];
            }
            cc[r] += s;
        }
        break;
    }
    case K_BN: {
        const int64_t plane = (int64_t)l->in.h * l->in.w;
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < ni; j++) {
                double a = A[r * no + j];
                B[r * ni + j] = a * q->w[j / plane];
                cc[r] += a * q->b[j / plane];
            }
        break;
    }
    case K_FLATTEN:
        memcpy(B, A, (size_t)(R * ni) * sizeof *B);
        break;
    default:
        return foolc__error(FOOLC_E_INTERNAL, "certify: layer %d has no backward bound",
                            (int)i);
    }
    return FOOLC_OK;
}

/* The lower bound of row (a, cst) over the input set; *mag: the magnitude of its terms
 * (for the rounding tolerance). */
static double input_lower(const double *a, double cst, int64_t d, const float *x,
                          foolc_norm norm, double r, double lo, double hi, double *mag)
{
    double box = cst, ctr = cst, m = fabs(cst);
    for (int64_t j = 0; j < d; j++) {
        double xl = (double)x[j] - r, xu = (double)x[j] + r;
        if (xl < lo) xl = lo;
        if (xu > hi) xu = hi;
        box += a[j] >= 0 ? a[j] * xl : a[j] * xu;
        ctr += a[j] * x[j];
        m += fabs(a[j]) * (fabs(xl) > fabs(xu) ? fabs(xl) : fabs(xu));
    }
    *mag = m;
    if (norm == FOOLC_LINF) return box;
    double ball = ctr - r * dual_norm(norm, a, d, 1);
    return ball > box ? ball : box;
}

/* Lower bounds out[R] of the R rows A (over tensor s, in c->A) with constants cc, back
 * through layers s-1 .. 0; mag[R] (may be NULL): term magnitudes. */
static foolc_status crown_back(cert_ctx *c, int32_t s, int64_t R, double *cc, const double *lb,
                               const double *ub, const float *x, foolc_norm norm, double r,
                               double lo, double hi, double *out, double *mag)
{
    for (int32_t i = s - 1; i >= 0; i--) {
        FOOLC__CHECK(back_layer(c, i, R, c->A, c->B, cc, lb, ub));
        double *t = c->A;
        c->A = c->B;
        c->B = t;
    }
    const int64_t d = tsize(c->net, 0);
    for (int64_t k = 0; k < R; k++) {
        double m;
        out[k] = input_lower(c->A + k * d, cc[k], d, x, norm, r, lo, hi, &m);
        if (mag) mag[k] = m;
    }
    return FOOLC_OK;
}

/* Both scratch buffers hold R rows over any tensor up to s. */
static foolc_status crown_alloc(cert_ctx *c, int32_t s, int64_t R)
{
    int64_t m = 0;
    for (int32_t i = 0; i <= s; i++)
        if (tsize(c->net, i) > m) m = tsize(c->net, i);
    size_t need = (size_t)(R * m);
    if (c->capA < need) {
        foolc__free(c->A);
        foolc__free(c->B);
        c->A = foolc__calloc(need, sizeof(double));
        c->B = foolc__calloc(need, sizeof(double));
        c->capA = need;
        if (!c->A || !c->B) {
            c->capA = 0;
            return foolc__nomem("certify: bound matrices");
        }
    }
    return grow(&c->c, &c->capc, (size_t)R);
}

static int64_t crown_cost(const cert_ctx *c, int32_t s, int64_t R)
{
    int64_t m = 0;
    for (int32_t i = 0; i <= s; i++)
        if (tsize(c->net, i) > m) m = tsize(c->net, i);
    return R * m;
}

/* CROWN bounds of tensor s (a ReLU's input), intersected into lb, ub. */
static foolc_status crown_tensor(cert_ctx *c, int32_t s, double *lb, double *ub,
                                 const float *x, foolc_norm norm, double r, double lo,
                                 double hi)
{
    const int64_t n = tsize(c->net, s), R = 2 * n;
    FOOLC__CHECK(crown_alloc(c, s, R));
    memset(c->A, 0, (size_t)(R * n) * sizeof *c->A);
    for (int64_t j = 0; j < n; j++) {
        c->A[j * n + j] = 1;
        c->A[(n + j) * n + j] = -1;
    }
    memset(c->c, 0, (size_t)R * sizeof *c->c);
    double *res = foolc__calloc((size_t)(2 * R), sizeof *res);
    if (!res) return foolc__nomem("certify: bounds");
    foolc_status st = crown_back(c, s, R, c->c, lb, ub, x, norm, r, lo, hi, res, res + R);
    if (st >= 0) {
        double *tl = lb + c->off[s], *tu = ub + c->off[s];
        for (int64_t j = 0; j < n; j++) {
            double a = res[j] - (CERT_RTOL * res[R + j] + CERT_ATOL);
            double b = -res[n + j] + (CERT_RTOL * res[R + n + j] + CERT_ATOL);
            if (a > tl[j]) tl[j] = a;
            if (b < tu[j]) tu[j] = b;
            if (tl[j] > tu[j]) tl[j] = tu[j] = 0.5 * (tl[j] + tu[j]);
        }
    }
    foolc__free(res);
    return st;
}

static foolc_status all_bounds(cert_ctx *c, const float *x, foolc_norm norm, double r,
                               double lo, double hi, foolc_certify_method method, double *lb,
                               double *ub)
{
    const int64_t d = tsize(c->net, 0);
    for (int64_t j = 0; j < d; j++) {
        double a = (double)x[j] - r, b = (double)x[j] + r;
        lb[j] = a < lo ? lo : a;
        ub[j] = b > hi ? hi : b;
    }
    for (int32_t i = 0; i < c->L; i++) {
        ibp_layer(c, i, lb, ub, x, norm, r);
        if (method == FOOLC_CERTIFY_CROWN && i + 1 < c->L && c->cl[i + 1].kind == K_RELU &&
            !first_affine(c, i) && crown_cost(c, i + 1, 2 * tsize(c->net, i + 1)) <= CERT_BUDGET)
            FOOLC__CHECK(crown_tensor(c, i + 1, lb, ub, x, norm, r, lo, hi));
    }
    return FOOLC_OK;
}

foolc_status foolc__cert_bounds(const foolc_net *net, const float *x, foolc_norm norm,
                                double r, double lo, double hi, foolc_certify_method method,
                                double *lb, double *ub)
{
    if (!net || !x || !lb || !ub)
        return foolc__error(FOOLC_E_INVALID, "certify: bounds: NULL argument");
    if (norm != FOOLC_L1 && norm != FOOLC_L2 && norm != FOOLC_LINF)
        return foolc__error(FOOLC_E_INVALID, "certify: bounds: norm must be l1, l2 or linf");
    if (method != FOOLC_CERTIFY_IBP && method != FOOLC_CERTIFY_CROWN)
        return foolc__error(FOOLC_E_INVALID, "certify: bounds: method must be ibp or crown");
    if (!(r >= 0) || !(lo < hi))
        return foolc__error(FOOLC_E_INVALID, "certify: bounds: bad radius or box");
    FOOLC__CHECK(foolc__cert_check_net(net, "certify"));
    cert_ctx c;
    FOOLC__CHECK(ctx_init(&c, net, norm));
    foolc_status st = all_bounds(&c, x, norm, r, lo, hi, method, lb, ub);
    ctx_free(&c);
    return st;
}

/* ---- the radius --------------------------------------------------------------------- */

/* Is every point of the ball of radius r (∩ box) certified? */
static foolc_status certified(cert_ctx *c, const float *x, int32_t label, int32_t target,
                              const foolc_certify_opts *o, double r, double *lb, double *ub,
                              int *ok)
{
    FOOLC__CHECK(all_bounds(c, x, o->norm, r, o->lo, o->hi, o->method, lb, ub));
    const int32_t k = (int32_t)tsize(c->net, c->nl);
    const double *zl = lb + c->off[c->nl], *zu = ub + c->off[c->nl];
    /* Rows: untargeted z_label - z_j (all must be > 0); targeted z_j - z_target (one must
     * be > 0). */
    const int32_t base = target >= 0 ? target : label;
    double best = target >= 0 ? -INFINITY : INFINITY;
    if (o->method == FOOLC_CERTIFY_IBP) {
        for (int32_t j = 0; j < k; j++) {
            if (j == base) continue;
            double v = target >= 0 ? zl[j] - zu[target] : zl[label] - zu[j];
            if (target >= 0 ? v > best : v < best) best = v;
        }
    } else {
        /* the k - 1 rows in blocks whose coefficient matrices stay within the budget (a
         * net of many classes over a large input) */
        const int64_t n = k, Rb = crown_cost(c, c->nl, 1) * (k - 1) <= CERT_BUDGET ? k - 1
                                  : (CERT_BUDGET / crown_cost(c, c->nl, 1) > 0
                                         ? CERT_BUDGET / crown_cost(c, c->nl, 1) : 1);
        FOOLC__CHECK(crown_alloc(c, c->nl, Rb));
        double *rp = foolc__calloc((size_t)(2 * Rb), sizeof *rp);
        int32_t *cls = foolc__calloc((size_t)Rb, sizeof *cls);
        foolc_status st = rp && cls ? FOOLC_OK : foolc__nomem("certify: bounds");
        for (int32_t j0 = 0; st >= 0 && j0 < k;) {
            int64_t R = 0;
            for (; j0 < k && R < Rb; j0++)
                if (j0 != base) cls[R++] = j0;
            if (R == 0) break;
            memset(c->A, 0, (size_t)(R * n) * sizeof *c->A);
            memset(c->c, 0, (size_t)R * sizeof *c->c);
            for (int64_t q = 0; q < R; q++) {
                c->A[q * n + base] = target >= 0 ? -1 : 1;
                c->A[q * n + cls[q]] = target >= 0 ? 1 : -1;
            }
            st = crown_back(c, c->nl, R, c->c, lb, ub, x, o->norm, r, o->lo, o->hi, rp, rp + R);
            for (int64_t q = 0; st >= 0 && q < R; q++) {
                const int32_t j = cls[q];
                /* CROWN's row, or IBP's when that is better */
                double v = rp[q] - (CERT_RTOL * rp[R + q] + CERT_ATOL);
                double vi = target >= 0 ? zl[j] - zu[target] : zl[label] - zu[j];
                if (vi > v) v = vi;
                if (target >= 0 ? v > best : v < best) best = v;
            }
        }
        foolc__free(rp);
        foolc__free(cls);
        FOOLC__CHECK(st);
    }
    *ok = best > 0;
    return FOOLC_OK;
}

static double diameter(const foolc_net *net, foolc_norm norm, double lo, double hi)
{
    double d = (double)tsize(net, 0);
    return norm == FOOLC_LINF ? hi - lo : norm == FOOLC_L2 ? (hi - lo) * sqrt(d) : (hi - lo) * d;
}

static foolc_status radius_ctx(cert_ctx *c, const float *x, int32_t label, int32_t target,
                               const foolc_certify_opts *o, double hint, double *lb,
                               double *ub, double *radius)
{
    int ok;
    *radius = 0;
    FOOLC__CHECK(certified(c, x, label, target, o, 0, lb, ub, &ok));
    if (!ok) return FOOLC_OK;
    const double diam = diameter(c->net, o->norm, o->lo, o->hi);
    FOOLC__CHECK(certified(c, x, label, target, o, diam, lb, ub, &ok));
    if (ok) {
        *radius = INFINITY;
        return FOOLC_OK;
    }
    double good = 0, bad = diam;
    double r = hint > 0 && hint < diam ? hint
             : (o->hi - o->lo) * (o->norm == FOOLC_LINF ? 1.0 / 256 : o->norm == FOOLC_L2 ? 0.0625 : 0.25);
    if (r >= diam) r = 0.5 * diam;
    /* bracket: grow or shrink by 4 until a certified radius and a failed one are known */
    int failed = 0;
    for (;;) {
        FOOLC__CHECK(certified(c, x, label, target, o, r, lb, ub, &ok));
        if (ok) {
            good = r;
            if (failed || r * 4 >= diam) break;
            r *= 4;
        } else {
            bad = r;
            failed = 1;
            if (good > 0) break;
            if (r < 1e-9 * diam) return FOOLC_OK;   /* radius 0 within the tolerance */
            r /= 4;
        }
    }
    while (bad - good > o->rtol * good && good > 0) {
        r = 0.5 * (good + bad);
        FOOLC__CHECK(certified(c, x, label, target, o, r, lb, ub, &ok));
        if (ok) good = r;
        else bad = r;
    }
    *radius = good;
    return FOOLC_OK;
}

foolc_status foolc__cert_radius(const foolc_net *net, const float *x, int32_t label,
                                int32_t target, const foolc_certify_opts *o, double hint,
                                double *radius)
{
    FOOLC__CHECK(foolc__cert_check_net(net, "certify"));
    cert_ctx c;
    FOOLC__CHECK(ctx_init(&c, net, o->norm));
    double *lb = foolc__calloc((size_t)c.off[net->L + 1], sizeof *lb);
    double *ub = foolc__calloc((size_t)c.off[net->L + 1], sizeof *ub);
    foolc_status st = lb && ub ? radius_ctx(&c, x, label, target, o, hint, lb, ub, radius)
                               : foolc__nomem("certify: bounds");
    foolc__free(lb);
    foolc__free(ub);
    ctx_free(&c);
    return st;
}
