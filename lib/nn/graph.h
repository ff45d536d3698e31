/* Graph nets (docs/net.md, "Graph architecture text"): a DAG of named per-sample tensors,
 * one node per line of the text, evaluated in text order. The parser (graph.c) builds the
 * nodes with their shapes and members; graph_ops.c holds each op's forward rule, input
 * gradient and weight gradient, in a reference form (double accumulators) and a fast form
 * (float loops; dense layers on oneDNN's sgemm, one image per call; convolutions on oneDNN
 * primitives in graph_dnnl.c); graph_run.c runs a pass in chunks of images, on OpenMP
 * threads, with the NaN/Inf checks. */
#ifndef FOOLC_NN_GRAPH_H
#define FOOLC_NN_GRAPH_H

#include "nn/nn.h"

#define NN_GRAPH_MAX_NODES 1024
#define NN_GRAPH_NAME 64
#define NN_GRAPH_CHUNK_BYTES (512u << 10) /* fast backend: images per chunk of a pass */
#define NN_GRAPH_CHUNK_MAX 64        /* ... and at most this many (a power of two) */

typedef enum nn_gop {
    G_CONV, G_DENSE, G_ADD, G_SUB, G_MUL, G_DIV, G_RELU, G_LEAKYRELU, G_PRELU, G_SIGMOID,
    G_TANH, G_CLIP, G_ELU, G_SOFTPLUS, G_ERF, G_HARDSIGMOID, G_HARDSWISH, G_IDENTITY, G_BN,
    G_MAXPOOL, G_AVGPOOL, G_GAP, G_FLATTEN, G_RESHAPE, G_TRANSPOSE, G_CONCAT, G_PAD,
    G_SOFTMAX, G_LOGSOFTMAX, G_COUNT
} nn_gop;

/* How a binary op (add, sub, mul, div) gets its second operand. */
enum { G_C_TENSOR, G_C_CHANNEL, G_C_SCALAR, G_C_FULL, G_C_VALUE };

/* One member of a node: <name>.<suffix>, its shape and where it lives. */
typedef struct nn_gmember {
    const char *suffix;          /* weight, bias, running_mean, running_var, const */
    int ndim;
    int64_t shape[4];
    float *data;
    int64_t count;
    int trainable;
    int variance;                /* must be >= 0 (running_var) */
} nn_gmember;

typedef struct nn_gnode {
    nn_gop op;
    char name[NN_GRAPH_NAME];
    int32_t line;                /* 1-based line of the text (the input line is 1) */
    int32_t nin;
    int32_t *in;                 /* tensor ids: 0 is x, i + 1 is node i's output */
    nn_dims od;                  /* output shape */
    int32_t out, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups, bias;
    double alpha, beta, vmin, vmax, eps, value;
    int cmode, left, count_pad, slopes, axis;
    int32_t perm[3], shape[3];
    int32_t uses;                /* how many input slots name this node's output */
    /* Members (pointers into the net's params and stats; NULL when absent). */
    float *w, *b, *mean, *var, *cst;
    int64_t nw, nb, ns, nc;      /* counts: weight, bias, each running statistic, const */
    int64_t woff, boff, soff;    /* offsets: weight and bias in params, statistics in stats */
} nn_gnode;

typedef struct nn_graph {
    int32_t N;
    nn_gnode *nodes;
    nn_dims *dims;               /* N + 1 tensor shapes (tensor 0 is the input) */
    void **impl;                 /* N: per-node fast-backend state (oneDNN convolutions) */
    /* Scratch of the last pass, grown as needed and never shrunk. */
    unsigned char *buf;
    size_t cap;
} nn_graph;

/* graph.c */
/* Whether arch is a graph text (a line after the input holds '('). */
int foolc__nn_graph_is(const char *arch);
/* Parses a graph text into net (graph, layers mirroring the nodes, sizes, canonical text). */
foolc_status foolc__nn_graph_parse(const char *arch, foolc_net *net);
/* Points each node's members into net->params / net->stats (after they are allocated). */
void foolc__nn_graph_bind(foolc_net *net);
void foolc__nn_graph_free(nn_graph *g);
void foolc__nn_graph_init_params(foolc_net *net, uint64_t seed);
double foolc__nn_graph_flops(const foolc_net *net);
/* The members of node i (at most 5) into m; returns their count. */
int foolc__nn_graph_members(const foolc_net *net, int32_t i, nn_gmember *m);
const char *foolc__nn_gop_name(nn_gop op);

/* graph_run.c: a pass (see foolc__nn_run). */
foolc_status foolc__nn_graph_run(foolc_net *net, const float *x, int32_t n, int32_t first,
                                 foolc_seed_fn seed, void *seed_user, float *logits,
                                 float *dx, float *dparams);

/* graph_ops.c: the rules. xs[j] is input j (n samples, plain NCHW of its dims), y the
 * output. Backward: dxs[j] (NULL: not needed) and dw/db (NULL: not needed) are added
 * into. fast selects the float/sgemm form; tmp is scratch of foolc__nn_gop_tmp bytes. */
size_t foolc__nn_gop_tmp(const nn_graph *g, const nn_gnode *nd, int32_t n);
foolc_status foolc__nn_gop_forward(const nn_graph *g, const nn_gnode *nd, int fast, int32_t n,
                                   const float *const *xs, float *y, void *tmp);
foolc_status foolc__nn_gop_backward(const nn_graph *g, const nn_gnode *nd, int fast, int32_t n,
                                    const float *const *xs, const float *y, const float *dy,
                                    float *const *dxs, float *dw, float *db, void *tmp);

/* graph_dnnl.c: oneDNN convolutions of mb images (see there), kept per node in a cache keyed
 * by (mb, slot, lay): slot is the thread of the pass that runs them (each has its own
 * entries); lay = (input block << 8) | output block gives the formats of the input and
 * output tensors (block 0: plain NCHW; 16 or 8: nChw16c / nChw8c, graph_run.c).
 * prepare makes the entry (with the backward-data primitive when bwd, room for folded
 * weights when foldable) and raises *tmp to the scratch a call needs; forward writes y,
 * backward_data adds into dx, both for exactly mb = n images of a prepared entry. */
foolc_status foolc__nn_gconv_prepare(const nn_fast *fx, const nn_graph *g, const nn_gnode *nd,
                                     int bwd, int foldable, int32_t mb, int32_t slot,
                                     int32_t lay, void **impl, size_t *tmp);
void foolc__nn_gconv_free(void *impl);
/* The channel block of the output format oneDNN chose for the node's first entry (16, 8;
 * 1 plain; 0 other or no entry). */
int foolc__nn_gconv_dst_block(const void *impl);
/* Makes the node's folded and reordered weights current for pver (before a pass's threads
 * start: the entries share them). bn (may be NULL): a batchnorm folded into the convolution
 * (forward: y is bn's output; backward: dy is bn's output gradient). */
foolc_status foolc__nn_gconv_weights(const nn_gnode *nd, const nn_gnode *bn, void *impl,
                                     uint64_t pver);
foolc_status foolc__nn_gconv_forward(const nn_graph *g, const nn_gnode *nd, const nn_gnode *bn,
                                     void *impl, uint64_t pver, int32_t n, int32_t slot,
                                     int32_t lay, const float *x, float *y, void *tmp);
foolc_status foolc__nn_gconv_backward_data(const nn_graph *g, const nn_gnode *nd,
                                           const nn_gnode *bn, void *impl, uint64_t pver,
                                           int32_t n, int32_t slot, int32_t lay, const float *dy,
                                           float *dx, void *tmp);

#endif
