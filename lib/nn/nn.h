/* Internal types of the built-in network engine: layers (a kind with its options and a
 * vtable of forward, input-gradient and weight-gradient rules), per-batch-size plans with
 * their cached oneDNN primitives and arena offsets, and the net handle itself. */
#ifndef FOOLC_NN_H
#define FOOLC_NN_H

#include "internal.h"
#include "rng.h"

#include <math.h>
#include <oneapi/dnnl/dnnl.h>

/* The engine is written against oneDNN 2.x (Debian's libdnnl-dev); 3.x changed the API. */
#if !defined(DNNL_VERSION_MAJOR) || DNNL_VERSION_MAJOR != 2
#error "libfoolc: lib/nn needs oneDNN 2.x (Debian's libdnnl-dev 2.x), not this major version"
#endif

/* Limits that keep every size computation far from overflow. */
#define NN_MAX_LAYERS 256
#define NN_MAX_DIM (1 << 20)          /* any one extent: c, h, w, out, k, s, p */
#define NN_MAX_TENSOR (1LL << 28)     /* floats in one image's activation tensor */
#define NN_MAX_PARAMS (1LL << 30)     /* trainable parameters of a net */
#define NN_MAX_PLANS 8                /* plans (batch sizes) cached per net */
#define NN_FWD_CHUNK 256              /* foolc_net_forward works in chunks of this many */
#define NN_MAX_OPTS 4

typedef struct nn_dims {
    int32_t c, h, w;
} nn_dims;

static inline int64_t nn_numel(nn_dims d) { return (int64_t)d.c * d.h * d.w; }

typedef struct nn_layer nn_layer;
typedef struct nn_step nn_step;
typedef struct nn_kind nn_kind;

/* One layer of a net. Weights point into the net's flat parameter array. */
struct nn_layer {
    const nn_kind *kind;
    int32_t index;               /* 0-based after the input line, as in "3.weight" */
    int32_t out, k, s, p;        /* options (those the kind has) */
    double eps;                  /* batchnorm */
    nn_dims in, out_dims;
    float *w, *b;                /* trainable, in the net's params (NULL when none) */
    float *mean, *var;           /* batchnorm running statistics, in the net's stats */
    int64_t nw, nb;              /* element counts of w and b */
    int64_t woff, boff;          /* offsets of w and b in the flat parameter array */
    int64_t soff, ns;            /* offset and count of running statistics in stats */
    /* Overflow bound (plan.c): whenever every value of the input is at most B in magnitude,
     * every value the layer computes, partial sums included, is at most
     * (gain * B + shift) * slack, rounding included. Refreshed per parameter version. */
    double gain, shift, slack;
};

/* The pointers of one layer call. Buffers hold the layer's own format (plain NCHW in the
 * reference backend and for plain-C layers; oneDNN's chosen format for conv/pool). */
typedef struct nn_args {
    int32_t n;
    uint64_t pver;               /* parameter version, for cached reordered weights */
    const float *x;              /* layer input */
    float *y;                    /* layer output (read-only in backward rules) */
    const float *dy;             /* backward: d loss / d y */
    float *dx;                   /* backward_data: d loss / d x (overwritten) */
    float *dw, *db;              /* backward_weights: accumulated into (+=) */
    size_t ylen;                 /* floats in the y buffer, padding included */
    void *ws;                    /* workspace kept from forward to backward (max pool) */
    void *tmp;                   /* layer scratch of step->tmp_bytes */
    void *scratch;               /* oneDNN scratchpad of step->scratch_bytes */
} nn_args;

/* What a plan needs beyond the forward pass. NN_NEED_CHECK: a plan that fuses nothing, so
 * that every layer's output is in memory to be checked for NaN and Inf (plan.c). */
enum { NN_NEED_DATA = 1, NN_NEED_WEIGHTS = 2, NN_NEED_CHECK = 4 };

/* The oneDNN objects shared by every plan of one net (created on first FAST use). */
typedef struct nn_fast {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_attr_t attr;  /* user scratchpad mode */
} nn_fast;

/* A layer inside one plan: the formats it reads and writes and its primitives. */
struct nn_step {
    const nn_kind *kind;
    int fast;                    /* FAST backend (oneDNN formats); 0 = reference */
    int alias;                   /* output is the input's memory (flatten, or a relu whose
                                    work the convolution before it does as a post-op) */
    int fuse_relu;               /* conv2d: apply the next layer's relu as a post-op */
    int skip_backward;           /* relu: its mask is applied by the next layer (maxpool) */
    int relu_mask;               /* maxpool: mask dy by y > 0 first (the previous relu's
                                    backward, done on the 4x smaller pooled gradient) */
    int32_t n;
    unsigned need;               /* NN_NEED_* the plan was built for */
    dnnl_memory_desc_t in_md, out_md;
    size_t ws_bytes, tmp_bytes, scratch_bytes;
    const nn_fast *fx;
    void *impl;                  /* kind-specific state, freed by kind->plan_free */
};

/* A kind of layer: its options, shape rule and vtable. The backward rules live in the same
 * file as the forward rule. */
struct nn_kind {
    const char *name;
    const char *keys[NN_MAX_OPTS];   /* option names; NULL-terminated when fewer */
    int real_key;                    /* index of a real-valued key (eps), or -1 */
    unsigned required;               /* bit i: keys[i] must be given */
    int key_min[NN_MAX_OPTS];        /* smallest value of each integer key */
    int alias;                       /* output is the input's memory (flatten) */
    /* Fills the layer's options (opts[i] < 0 when key i was not given) and output shape,
     * checks them, sets nw/nb. Errors name the layer. */
    foolc_status (*init)(nn_layer *l, const double *opts);
    /* Sets l->gain and l->shift (see nn_layer) from the weights and returns how many
     * roundings a value can go through (a fan-in); NULL: gain 1, shift 0 (relu, maxpool,
     * flatten: the output is some of the input). */
    int64_t (*bound)(nn_layer *l);
    /* Deterministic initial weights for the seed (may be NULL: no weights). */
    void (*init_params)(nn_layer *l, uint64_t seed);
    double (*flops)(const nn_layer *l);
    /* FAST backend: fill st->in_md/out_md given the previous tensor's format, create
     * primitives, set ws/tmp/scratch sizes. NULL = plain-C layer on plain NCHW. */
    foolc_status (*plan)(const nn_layer *l, nn_step *st, const dnnl_memory_desc_t *prev);
    void (*plan_free)(nn_step *st);
    /* The rules: y from x; dx (overwritten) from dy (with x and y at hand); the weight
     * gradients added into dw and db (NULL for kinds without weights). A layer owns no
     * memory of its own (weights live in the net), so there is no per-layer free. */
    foolc_status (*forward)(const nn_layer *l, nn_step *st, const nn_args *a);
    foolc_status (*backward_data)(const nn_layer *l, nn_step *st, const nn_args *a);
    foolc_status (*backward_weights)(const nn_layer *l, nn_step *st, const nn_args *a);
};

extern const nn_kind foolc__nn_conv2d, foolc__nn_dense, foolc__nn_relu, foolc__nn_maxpool2d,
    foolc__nn_avgpool2d, foolc__nn_flatten, foolc__nn_batchnorm, foolc__nn_softmax;
/* dense.c: 1 = the old batch-dependent dense products, for bench/bench_net.c only (never
 * set by the library; not thread-safe). */
extern int foolc__nn_dense_rowmajor;

/* A reorder between two formats, both ways (the way back serves gradients). */
typedef struct nn_reorder {
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t a, b;          /* the two sides */
    dnnl_memory_t sa, sb;        /* scratchpads of fwd and bwd (NULL when none) */
    size_t scratch_bytes;
} nn_reorder;

/* Everything one batch size needs: layer steps, tensor formats and arena offsets. */
typedef struct nn_plan {
    int32_t n;
    int backend;
    unsigned need;
    uint64_t used;               /* LRU stamp */
    int32_t L;
    nn_step *steps;              /* L */
    dnnl_memory_desc_t *t_md;    /* L+1 tensor formats (tensor i is layer i's input) */
    size_t *t_bytes, *t_off;     /* L+1 */
    nn_reorder *rin;             /* L: tensor i -> layer i's format (fwd NULL when none) */
    size_t *x_off, *ws_off;      /* L */
    int *dslot;                  /* L+1: which gradient buffer holds d tensor i */
    nn_reorder rout;             /* last tensor -> plain logits, when not plain */
    size_t logits_off, dlogits_off, d_off[3], tmp_off, scratch_off, total;
    const float **tptr;          /* L+1 scratch: tensor pointers of the current call */
    const float **xptr;          /* L: layer input pointers of the current call */
} nn_plan;

struct foolc_net {
    char *arch;                  /* canonical text */
    nn_dims in;
    int32_t L;
    nn_layer *layers;
    float *params, *stats;
    int64_t n_params, n_stats;
    uint64_t pver;               /* bumped whenever params change */
    uint64_t bver;               /* pver of the layers' overflow bounds */
    float lo, hi;
    foolc_backend backend;
    nn_fast *fast;
    nn_plan *plans[NN_MAX_PLANS];
    uint64_t clock;
    unsigned char *arena_raw, *arena;
    size_t arena_size;
    struct nn_graph *graph;      /* a graph net (lib/nn/graph.h); NULL for a sequential one,
                                    whose layers run through the plans above */
};

/* "net: layer i (name): ..." as this thread's error; returns st. */
/* The architecture text's lexing, shared by the sequential (arch.c) and graph (graph.c)
 * parsers: blanks other than newline, and the next non-blank segment [*beg, *end) ending at
 * ';', '\n', '#' (a comment to the end of the line) or the end of the text (0: none left). */
int foolc__nn_is_space(char c);
int foolc__nn_next_segment(const char **p, const char **beg, const char **end);
foolc_status foolc__nn_lerr(foolc_status st, const nn_layer *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* io.c: "0.weight[3, 0, 1, 2] is NaN" for element j (value v) of layer l's member m
 * (0 weight, 1 bias, 2 running mean, 3 running variance). */
void foolc__nn_member_text(const nn_layer *l, int m, int64_t j, double v, char *buf,
                           size_t len);
/* io.c: the layer of the first non-finite value of params (a flat parameter array of net),
 * described in text as by foolc__nn_member_text; NULL when all are finite. */
const nn_layer *foolc__nn_find_nonfinite(const foolc_net *net, const float *params, char *text,
                                         size_t len);
/* io.c: st naming the first non-finite value of params (a flat parameter array of net,
 * "net: what: 0.bias[3] is NaN (conv2d layer 0); ..."), or FOOLC_OK. */
foolc_status foolc__nn_check_params(const foolc_net *net, const float *params, foolc_status st,
                                    const char *what);

/* arch.c: parses arch into a net skeleton (layers, shapes, param/stat sizes, canonical
 * text); params are not allocated. A graph text (docs/net.md) goes to graph.c. */
foolc_status foolc__nn_parse(const char *arch, foolc_net *net);
/* arch.c: the options of an input line ("c=1 h=28 w=28" in [s, end)); the shortest decimal
 * text that reads back as exactly v. */
foolc_status foolc__nn_parse_input(const char *s, const char *end, nn_dims *in);
void foolc__nn_fmt_real(char *buf, size_t len, double v);
/* io.c: foolc_net_from_npz with src (e.g. the ONNX file's name) in the messages instead of
 * "npz": what an importer calls on the in-memory archive it built (arch + members). */
foolc_status foolc__nn_from_npz_src(const foolc_npz *z, const char *src, foolc_net **out);
/* net.c: an empty net (bounds [0, 1], FAST backend); the parameter and statistics arrays
 * of a parsed net, with every layer's pointers into them. */
foolc_net *foolc__nn_net_alloc(void);
foolc_status foolc__nn_alloc_params(foolc_net *net);
/* net.c: the net behind an oracle that foolc_net_oracle filled, or NULL for any other. */
foolc_net *foolc__nn_oracle_net(const foolc_oracle *o);
/* One pass: forward (logits may be NULL), then, when seed is set, the seed and the
 * backward pass for dx and/or dparams (accumulated into; NULL skips). A NaN or Inf that
 * the forward pass reaches (a non-finite input, an overflow) gives FOOLC_E_NONFINITE naming
 * the layer and the sample (counted from first), with NaN logits for the samples concerned;
 * the seed is still called once, the backward pass is not run. */
foolc_status foolc__nn_run(foolc_net *net, const float *x, int32_t n, int32_t first,
                           foolc_seed_fn seed, void *seed_user, float *logits, float *dx,
                           float *dparams);
/* Sets l->gain, l->shift for an affine layer: fan_in weights per output row, one bias per
 * output (dense, conv2d); returns fan_in + 1. */
int64_t foolc__nn_bound_affine(nn_layer *l, int64_t fan_in);

/* plan.c */
foolc_status foolc__nn_plan_get(foolc_net *net, int32_t n, unsigned need, nn_plan **out);
void foolc__nn_plans_clear(foolc_net *net);
/* Runs plan p (see foolc__nn_run). Without NN_NEED_CHECK in p->need it proves from the
 * layers' bounds and the largest input value that nothing can overflow, measuring a layer's
 * actual input where the bound does not suffice; when even that fails it sets *recheck and
 * returns, and the caller runs a plan with NN_NEED_CHECK, which checks every output. */
foolc_status foolc__nn_exec(foolc_net *net, nn_plan *p, const float *x, int32_t first,
                            foolc_seed_fn seed, void *seed_user, float *logits, float *dx,
                            float *dparams, int *recheck);

/* fast.c: oneDNN helpers. Every dnnl_status_t goes through foolc__dnnl. */
/* Called before any OpenMP work (oneDNN primitives, dnnl_sgemm); foolc__nn_omp_forked is 1
 * in a process forked after such work, where OpenMP regions may hang (see fast.c). */
void foolc__nn_omp_note(void);
int foolc__nn_omp_forked(void);
foolc_status foolc__dnnl(dnnl_status_t s, const char *call, const char *what, int32_t layer);
foolc_status foolc__nn_fast_init(foolc_net *net);
void foolc__nn_fast_free(nn_fast *fx);
void foolc__nn_md_plain(dnnl_memory_desc_t *md, int32_t n, nn_dims d);
int foolc__nn_md_eq(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b);
/* The channel block of a 4-d f32 md: 16 or 8 for oneDNN's aBcd16b / aBcd8b (nChw16c /
 * nChw8c), 1 for plain NCHW, 0 for any other format. */
int foolc__nn_md_block(const dnnl_memory_desc_t *md);
/* Floats per sample of a tensor whose samples are its outermost dimension (NCHW, nChw16c,
 * nhwc, ...), or 0 for any other layout. */
int64_t foolc__nn_md_sample_stride(const dnnl_memory_desc_t *md);
foolc_status foolc__nn_mem(const nn_fast *fx, const dnnl_memory_desc_t *md, dnnl_memory_t *m,
                           int32_t layer);
void foolc__nn_mem_free(dnnl_memory_t *m);
/* Creates the reorder a -> b (and b -> a when back is set); a no-op pair when equal.
 * accumulate: the forward reorder adds into b (sum post-op). */
foolc_status foolc__nn_reorder_make(const nn_fast *fx, const dnnl_memory_desc_t *a,
                                    const dnnl_memory_desc_t *b, int back, int accumulate,
                                    int32_t layer, nn_reorder *r);
void foolc__nn_reorder_free(nn_reorder *r);
/* Runs the reorder a -> b (dir 0) or b -> a (dir 1) on the given buffers. */
foolc_status foolc__nn_reorder_run(const nn_fast *fx, nn_reorder *r, int dir, const void *src,
                                   void *dst, void *scratch, int32_t layer);
/* Creates a primitive descriptor with the net's attributes; the primitive when prim. */
foolc_status foolc__nn_pd(const nn_fast *fx, const void *op_desc, const_dnnl_primitive_desc_t hint,
                          dnnl_primitive_desc_t *pd, dnnl_primitive_t *prim, const char *what,
                          int32_t layer);
/* The same with other attributes (which must keep the user scratchpad mode). */
foolc_status foolc__nn_pd_attr(const nn_fast *fx, const_dnnl_primitive_attr_t attr,
                               const void *op_desc, const_dnnl_primitive_desc_t hint,
                               dnnl_primitive_desc_t *pd, dnnl_primitive_t *prim,
                               const char *what, int32_t layer);
/* Attributes of fx with a ReLU post-op (for a convolution followed by relu). */
foolc_status foolc__nn_attr_relu(const nn_fast *fx, dnnl_primitive_attr_t *attr, int32_t layer);
/* A memory object for pd's scratchpad (NULL when it needs none); *bytes = max(*bytes, its
 * size). The buffer is the plan's shared scratchpad region, set per call. */
foolc_status foolc__nn_scratch_mem(const nn_fast *fx, const_dnnl_primitive_desc_t pd,
                                   dnnl_memory_t *m, size_t *bytes, int32_t layer);
/* Sets each memory's handle and runs the primitive. */
foolc_status foolc__nn_run_prim(const nn_fast *fx, dnnl_primitive_t p, int nargs,
                                const int *arg, dnnl_memory_t *mem, void *const *ptr,
                                const char *what, int32_t layer);

/* relu.c: oneDNN relu (relu_use_dst_for_bwd) on one memory format, forward and, when bwd
 * is set, backward (dx = dy where y > 0; dx may be dy). Tensors smaller than
 * NN_ELTWISE_MIN floats use plain loops instead (a threaded primitive costs more there). */
#define NN_ELTWISE_MIN (1u << 16)
void foolc__nn_relu_mask(const float *y, const float *dy, float *dx, size_t n);
typedef struct nn_relu_prims {
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t src, dst, ddst, dsrc, fscr, bscr;
} nn_relu_prims;
foolc_status foolc__nn_relu_make(const nn_fast *fx, const dnnl_memory_desc_t *md, int bwd,
                                 int32_t layer, nn_relu_prims *r, size_t *scratch);
void foolc__nn_relu_free(nn_relu_prims *r);
foolc_status foolc__nn_relu_forward(const nn_fast *fx, nn_relu_prims *r, const float *x,
                                    float *y, void *scratch, int32_t layer);
foolc_status foolc__nn_relu_backward(const nn_fast *fx, nn_relu_prims *r, const float *y,
                                     const float *dy, float *dx, void *scratch, int32_t layer);

/* PyTorch's default initialisation of conv2d and dense layers: weights and bias uniform in
 * [-1/sqrt(fan_in), 1/sqrt(fan_in)], from streams keyed by the seed and the layer index. */
static inline void nn_init_uniform(nn_layer *l, uint64_t seed, double fan_in)
{
    double bound = 1.0 / sqrt(fan_in);
    uint64_t kw = foolc__rng_key(seed, 2 * (uint64_t)l->index);
    uint64_t kb = foolc__rng_key(seed, 2 * (uint64_t)l->index + 1);
    for (int64_t j = 0; j < l->nw; j++)
        l->w[j] = (float)((2.0 * foolc__rng_at_uniform(kw, (uint64_t)j) - 1.0) * bound);
    for (int64_t j = 0; j < l->nb; j++)
        l->b[j] = (float)((2.0 * foolc__rng_at_uniform(kb, (uint64_t)j) - 1.0) * bound);
}

#endif
