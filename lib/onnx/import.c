/* ONNX graph to a graph net (docs/onnx.md). The nodes are visited in dependency order
 * (Kahn's algorithm: a cycle or an undefined input is an error, whatever order the file
 * lists them in). Every value is either constant (initializers, Constant nodes, and all
 * that is computed from them alone: the shape arithmetic PyTorch emits around Flatten and
 * Reshape is evaluated here, with the batch size kept as a symbol) or dynamic (computed from
 * the image input, with a known shape whose first dimension is the batch). Each node with
 * a dynamic input becomes a line of the graph text, or an alias of its input (Identity,
 * Dropout, a Reshape to the same shape); lines whose output the logits do not need are
 * dropped. The text and the members go into an in-memory NPZ archive, which the engine's
 * own constructor checks and builds. */
#include "onnx/onnx_impl.h"
#include "nn/nn.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define OX_MAX_LINES 1024
#define OX_MAX_DIM (1 << 20)
#define OX_NAME 48

/* The ops of the table, for the message that refuses any other. */
static const char k_supported[] =
    "Add, AveragePool, BatchNormalization, Cast, Clip, Concat, Constant, ConstantOfShape, "
    "Conv, Div, Dropout, Elu, Erf, Flatten, Gather, Gemm, GlobalAveragePool, HardSigmoid, "
    "HardSwish, Identity, LeakyRelu, LogSoftmax, MatMul, MaxPool, Mul, Pad, PRelu, "
    "ReduceMean (spatial), Relu, Reshape, Shape, Sigmoid, Slice, Softmax, Softplus, Squeeze, "
    "Sub, Tanh, Transpose, Unsqueeze (Shape, Gather, Slice, Cast, ConstantOfShape and Squeeze/Unsqueeze only on "
    "shapes and constants)";

/* Symbolic batch: an integer constant element may be the batch size (S_BATCH) or computed
 * from it (S_DERIVED). */
enum { S_NONE = 0, S_BATCH = 1, S_DERIVED = 2 };

typedef struct val {
    const char *name;            /* ONNX name */
    int defined, dyn, dead;      /* dead: an extra output the importer does not compute */
    int rank;
    int64_t dims[OX_MAX_RANK];   /* dynamic: dims[0] is the batch (0) */
    ox_tensor t;                 /* constant */
    unsigned char *sym;          /* constant integers: S_* per element (NULL: none) */
    int line;                    /* dynamic: the line computing it, -1 for the input */
    const char *node;            /* the node that defined it (for dead outputs) */
} val;

typedef struct member {
    const char *suffix;
    int nd;
    int64_t shape[4];
    float *data;                 /* owned */
} member;

typedef struct line {
    char name[OX_NAME];
    const char *op;
    int nin;
    int *in;                     /* value ids (dynamic) */
    char opts[256];
    int nm;
    member m[4];
    int live;
} line;

typedef struct ox {
    const char *src;
    const Onnx__GraphProto *g;
    int64_t opset;
    val *v;
    int nv, cv;
    int *hash;                   /* open addressing: value id + 1, 0 empty */
    size_t hcap;
    line *l;
    int nl, cl;
    int input, fixed_batch;      /* the input's value id; its batch size when fixed, else 0 */
    /* the node being converted */
    const Onnx__NodeProto *n;
    const char *nname;
} ox;

/* ---- errors ---- */

static foolc_status nerr(ox *c, foolc_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static foolc_status nerr(ox *c, foolc_status st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *op = c->n && c->n->op_type ? c->n->op_type : "?";
    if (st == FOOLC_E_UNSUPPORTED)
        return foolc__error(st, "onnx: %s: node '%s' (%s): %s; supported ops: %s", c->src,
                            c->nname, op, msg, k_supported);
    return foolc__error(st, "onnx: %s: node '%s' (%s): %s", c->src, c->nname, op, msg);
}

/* ---- values ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int find(const ox *c, const char *name)
{
    if (!name || !c->hcap) return -1;
    for (size_t k = hash_str(name) & (c->hcap - 1);; k = (k + 1) & (c->hcap - 1)) {
        int id = c->hash[k] - 1;
        if (id < 0) return -1;
        if (!strcmp(c->v[id].name, name)) return id;
    }
}

/* A new value named name; -1 with the error set when the name is taken. */
static int add_val(ox *c, const char *name, foolc_status *st)
{
    if (find(c, name) >= 0) {
        *st = foolc__error(FOOLC_E_FORMAT, "onnx: %s: the name '%s' is defined twice", c->src,
                           name);
        return -1;
    }
    if (c->nv == c->cv) {
        *st = foolc__error(FOOLC_E_INTERNAL, "onnx: value table full");
        return -1;
    }
    int id = c->nv++;
    memset(&c->v[id], 0, sizeof c->v[id]);
    c->v[id].name = name;
    c->v[id].line = -1;
    size_t k = hash_str(name) & (c->hcap - 1);
    while (c->hash[k]) k = (k + 1) & (c->hcap - 1);
    c->hash[k] = id + 1;
    return id;
}

/* The product of r dims (>= 0), saturating at INT64_MAX. */
static int64_t numel(const int64_t *d, int r)
{
    int64_t n = 1;
    for (int k = 0; k < r; k++) {
        if (d[k] <= 0) return 0;
        if (n > INT64_MAX / d[k]) return INT64_MAX;
        n *= d[k];
    }
    return n;
}

/* A constant output of the current node: the tensor given (taken over) and its symbols. */
static void set_const(val *o, ox_tensor *t, unsigned char *sym)
{
    o->defined = 1;
    o->dyn = 0;
    o->t = *t;
    o->rank = t->rank;
    memcpy(o->dims, t->dims, sizeof o->dims);
    o->sym = sym;
    memset(t, 0, sizeof *t);
}

/* The most values a constant computed at load time (or a constant expanded to a tensor's
 * shape) may have: a small file must not make the importer allocate gigabytes (a broadcast
 * of (16384, 1) against (1, 16384) is 2^28 values from a few bytes). Set per conversion
 * from the file's size. */
static _Thread_local int64_t t_max_fold;

static foolc_status new_tensor(ox_tensor *t, int isint, int rank, const int64_t *dims)
{
    memset(t, 0, sizeof *t);
    t->rank = rank;
    for (int k = 0; k < rank; k++) t->dims[k] = dims[k];
    t->count = numel(dims, rank);
    t->isint = isint;
    if (t->count > t_max_fold)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: a constant computed at load time would "
                            "hold %lld values (at most %lld for this file)",
                            (long long)t->count, (long long)t_max_fold);
    if (isint) t->i = foolc__malloc((size_t)t->count * sizeof(int64_t));
    else t->f = foolc__malloc((size_t)t->count * sizeof(float));
    if (!(isint ? (void *)t->i : (void *)t->f)) return foolc__nomem("a constant");
    return FOOLC_OK;
}

static double cget(const val *a, int64_t j) { return a->t.isint ? (double)a->t.i[j] : a->t.f[j]; }

/* ---- attributes ---- */

static const Onnx__AttributeProto *attr(const ox *c, const char *name)
{
    for (size_t k = 0; k < c->n->n_attribute; k++) {
        const Onnx__AttributeProto *a = c->n->attribute[k];
        if (a && a->name && !strcmp(a->name, name)) return a;
    }
    return NULL;
}

static foolc_status attr_int(ox *c, const char *name, int64_t def, int64_t *out)
{
    const Onnx__AttributeProto *a = attr(c, name);
    *out = def;
    if (!a) return FOOLC_OK;
    if (a->has_type ? a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT : !a->has_i)
        return nerr(c, FOOLC_E_FORMAT, "attribute '%s' is not an integer", name);
    *out = a->i;
    return FOOLC_OK;
}

static foolc_status attr_float(ox *c, const char *name, double def, double *out)
{
    const Onnx__AttributeProto *a = attr(c, name);
    *out = def;
    if (!a) return FOOLC_OK;
    if (a->has_type ? a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT : !a->has_f)
        return nerr(c, FOOLC_E_FORMAT, "attribute '%s' is not a float", name);
    *out = a->f;
    return FOOLC_OK;
}

/* ints attribute: *n values (at most max), -1 when absent. */
static foolc_status attr_ints(ox *c, const char *name, int64_t *out, int max, int *n)
{
    const Onnx__AttributeProto *a = attr(c, name);
    *n = -1;
    if (!a) return FOOLC_OK;
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return nerr(c, FOOLC_E_FORMAT, "attribute '%s' is not a list of integers", name);
    if (a->n_ints > (size_t)max)
        return nerr(c, FOOLC_E_UNSUPPORTED, "attribute '%s' has %zu values (at most %d)", name,
                    a->n_ints, max);
    for (size_t k = 0; k < a->n_ints; k++) out[k] = a->ints[k];
    *n = (int)a->n_ints;
    return FOOLC_OK;
}

/* string attribute into buf ("" default). */
static foolc_status attr_str(ox *c, const char *name, const char *def, char *buf, size_t len)
{
    const Onnx__AttributeProto *a = attr(c, name);
    snprintf(buf, len, "%s", def);
    if (!a) return FOOLC_OK;
    if (a->has_type ? a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING : !a->has_s)
        return nerr(c, FOOLC_E_FORMAT, "attribute '%s' is not a string", name);
    size_t k = a->s.len < len - 1 ? a->s.len : len - 1;
    for (size_t j = 0; j < k; j++) buf[j] = isprint(a->s.data[j]) ? (char)a->s.data[j] : '?';
    buf[k] = '\0';
    return FOOLC_OK;
}

/* ---- inputs of the current node ---- */

/* Input slot k: its value id, or -1 when absent (beyond n_input or the empty name). */
static int in_id(ox *c, int k)
{
    if (k < 0 || (size_t)k >= c->n->n_input) return -1;
    const char *s = c->n->input[k];
    if (!s || !*s) return -1;
    return find(c, s);
}

static foolc_status need_in(ox *c, int k, int *id)
{
    *id = in_id(c, k);
    if (*id < 0) return nerr(c, FOOLC_E_FORMAT, "input %d is missing", k + 1);
    return FOOLC_OK;
}

static foolc_status need_dyn(ox *c, int k, int *id)
{
    FOOLC__CHECK(need_in(c, k, id));
    if (!c->v[*id].dyn)
        return nerr(c, FOOLC_E_UNSUPPORTED, "input %d ('%s') is a constant where the op needs "
                    "the image's activations", k + 1, c->v[*id].name);
    return FOOLC_OK;
}

static foolc_status need_const(ox *c, int k, int *id, const char *what)
{
    FOOLC__CHECK(need_in(c, k, id));
    if (c->v[*id].dyn)
        return nerr(c, FOOLC_E_UNSUPPORTED, "input %d (%s, '%s') is computed from the image; "
                    "it must be a constant", k + 1, what, c->v[*id].name);
    return FOOLC_OK;
}

/* Integer list of a constant input (shapes, axes, pads): at most max values, no symbols
 * unless allow_sym (then sym receives them). */
static foolc_status const_ints(ox *c, int id, const char *what, int64_t *out, int max, int *n,
                               unsigned char *sym)
{
    const val *a = &c->v[id];
    if (a->t.count > max)
        return nerr(c, FOOLC_E_UNSUPPORTED, "%s has %lld values (at most %d)", what,
                    (long long)a->t.count, max);
    for (int64_t j = 0; j < a->t.count; j++) {
        if (a->t.isint) out[j] = a->t.i[j];
        else {
            double d = a->t.f[j];
            if (!(fabs(d) < 1e15)) return nerr(c, FOOLC_E_FORMAT, "%s holds %g", what, d);
            out[j] = (int64_t)d;
        }
        unsigned char s = a->sym ? a->sym[j] : S_NONE;
        if (sym) sym[j] = s;
        else if (s)
            return nerr(c, FOOLC_E_UNSUPPORTED, "%s depends on the batch size", what);
    }
    *n = (int)a->t.count;
    return FOOLC_OK;
}

/* Axes from attribute 'axes' (before opset since) or input k (from it on). */
static foolc_status get_axes(ox *c, int64_t since, int k, int64_t *axes, int *n)
{
    if (c->opset < since) return attr_ints(c, "axes", axes, OX_MAX_RANK, n);
    int id = in_id(c, k);
    *n = -1;
    if (id < 0) return FOOLC_OK;
    if (c->v[id].dyn) return nerr(c, FOOLC_E_UNSUPPORTED, "axes computed from the image");
    return const_ints(c, id, "axes", axes, OX_MAX_RANK, n, NULL);
}

static foolc_status norm_axis(ox *c, int64_t *a, int rank, const char *what)
{
    if (*a < -rank || *a >= rank)
        return nerr(c, FOOLC_E_FORMAT, "%s %lld is out of range for rank %d", what,
                    (long long)*a, rank);
    if (*a < 0) *a += rank;
    return FOOLC_OK;
}

/* ---- lines ---- */

static void sanitize(const char *s, char *out, size_t len)
{
    size_t k = 0;
    int under = 1;
    for (; s && *s && k + 1 < len; s++) {
        char ch = (char)(isalnum((unsigned char)*s) ? *s : '_');
        if (ch == '_' && under) continue;
        under = ch == '_';
        out[k++] = ch;
    }
    while (k && out[k - 1] == '_') k--;
    out[k] = '\0';
    size_t sl = strlen("_output_0");
    if (k > sl && !strcmp(out + k - sl, "_output_0")) out[k - sl] = '\0';
}

static int name_taken(const ox *c, const char *name)
{
    if (!strcmp(name, "x") || !strcmp(name, "input")) return 1;
    for (int i = 0; i < c->nl; i++)
        if (!strcmp(c->l[i].name, name)) return 1;
    return 0;
}

/* A new line computing value out (a dynamic value of the given shape) with op. */
static foolc_status add_line(ox *c, int out, const char *op, int nin, const int *in,
                             line **lp)
{
    if (c->nl == c->cl) {
        int cl = c->cl ? 2 * c->cl : 64;
        line *nl = foolc__realloc(c->l, (size_t)cl * sizeof *nl);
        if (!nl) return foolc__nomem("the graph");
        c->l = nl;
        c->cl = cl;
    }
    line *l = &c->l[c->nl];
    memset(l, 0, sizeof *l);
    l->in = foolc__malloc((size_t)nin * sizeof(int));
    if (!l->in) return foolc__nomem("the graph");
    memcpy(l->in, in, (size_t)nin * sizeof(int));
    l->nin = nin;
    l->op = op;
    char base[OX_NAME - 8];
    sanitize(c->v[out].name, base, sizeof base);
    if (!base[0]) snprintf(base, sizeof base, "t");
    snprintf(l->name, sizeof l->name, "%s", base);
    /* base leaves room for "_" and six digits: the name is never cut. */
    for (int k = 2; name_taken(c, l->name) && k < 1000000; k++) {
        int w = snprintf(l->name, sizeof l->name, "%s_%d", base, k);
        if (w < 0 || (size_t)w >= sizeof l->name) break;
    }
    c->nl++;
    val *o = &c->v[out];
    o->defined = 1;
    o->dyn = 1;
    o->line = c->nl - 1;
    *lp = l;
    return FOOLC_OK;
}

static void opt(line *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void opt(line *l, const char *fmt, ...)
{
    size_t k = strlen(l->opts);
    if (k + 2 >= sizeof l->opts) return;
    if (k) l->opts[k++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->opts + k, sizeof l->opts - k, fmt, ap);
    va_end(ap);
}

/* A member of line l: takes a copy of n floats. */
static foolc_status add_member(line *l, const char *suffix, int nd, const int64_t *shape,
                               const float *data)
{
    member *m = &l->m[l->nm];
    int64_t n = numel(shape, nd);
    m->data = foolc__malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!m->data) return foolc__nomem("a weight");
    if (n) memcpy(m->data, data, (size_t)n * sizeof(float));
    m->suffix = suffix;
    m->nd = nd;
    for (int k = 0; k < nd; k++) m->shape[k] = shape[k];
    l->nm++;
    return FOOLC_OK;
}

/* The output value of the current node's slot 0 becomes an alias of value src. */
static void alias(ox *c, int out, int src)
{
    val *o = &c->v[out];
    o->defined = 1;
    o->dyn = 1;
    o->line = c->v[src].line;
    o->rank = c->v[src].rank;
    memcpy(o->dims, c->v[src].dims, sizeof o->dims);
}

static void set_dyn(ox *c, int out, int rank, const int64_t *dims)
{
    c->v[out].rank = rank;
    memcpy(c->v[out].dims, dims, (size_t)rank * sizeof(int64_t));
    c->v[out].dims[0] = 0;
}

static const char *fmtr(char *buf, double v)
{
    if (isinf(v)) snprintf(buf, 32, v > 0 ? "inf" : "-inf");
    else snprintf(buf, 32, "%.9g", v);
    return buf;
}

/* Per-sample 3-d shape of a dynamic value (trailing dims 1). */
static void chw(const val *a, int64_t d[3])
{
    d[0] = d[1] = d[2] = 1;
    for (int k = 1; k < a->rank && k < 4; k++) d[k - 1] = a->dims[k];
}

static foolc_status need_rank(ox *c, const val *a, int lo, int hi, const char *why)
{
    if (a->rank < lo || a->rank > hi)
        return nerr(c, FOOLC_E_UNSUPPORTED, "its input '%s' has rank %d; %s", a->name, a->rank,
                    why);
    return FOOLC_OK;
}

/* ---- constant folding ---- */

/* numpy broadcasting of two shapes; 0 when they do not broadcast. */
static int bcast(int ra, const int64_t *a, int rb, const int64_t *b, int *r, int64_t *d)
{
    *r = ra > rb ? ra : rb;
    for (int k = 0; k < *r; k++) {
        int64_t x = k - (*r - ra) >= 0 ? a[k - (*r - ra)] : 1;
        int64_t y = k - (*r - rb) >= 0 ? b[k - (*r - rb)] : 1;
        if (x != y && x != 1 && y != 1) return 0;
        d[k] = x == 1 ? y : x;
    }
    return 1;
}

/* Flat index into a (rank ra, dims a) of the output position idx (rank r). */
static int64_t bidx(const int64_t *idx, int r, int ra, const int64_t *a)
{
    int64_t j = 0;
    for (int k = 0; k < ra; k++) {
        int64_t i = idx[k + r - ra];
        j = j * a[k] + (a[k] == 1 ? 0 : i);
    }
    return j;
}

static void next_idx(int64_t *idx, int r, const int64_t *d)
{
    for (int k = r - 1; k >= 0; k--) {
        if (++idx[k] < d[k]) return;
        idx[k] = 0;
    }
}

static foolc_status fold_binary(ox *c, const char *op, int ia, int ib, int out)
{
    const val *a = &c->v[ia], *b = &c->v[ib];
    int r;
    int64_t d[OX_MAX_RANK];
    if (!bcast(a->rank, a->dims, b->rank, b->dims, &r, d))
        return nerr(c, FOOLC_E_FORMAT, "constant shapes do not broadcast");
    int isint = a->t.isint && b->t.isint;
    ox_tensor t;
    FOOLC__CHECK(new_tensor(&t, isint, r, d));
    unsigned char *sym = NULL;
    if (isint && (a->sym || b->sym)) {
        sym = foolc__calloc((size_t)(t.count ? t.count : 1), 1);
        if (!sym) {
            foolc__ox_tensor_free(&t);
            return foolc__nomem("a constant");
        }
    }
    int64_t idx[OX_MAX_RANK] = { 0 };
    for (int64_t j = 0; j < t.count; j++, next_idx(idx, r, d)) {
        int64_t ja = bidx(idx, r, a->rank, a->dims), jb = bidx(idx, r, b->rank, b->dims);
        if (isint) {
            int64_t x = a->t.i[ja], y = b->t.i[jb], z;
            unsigned char sa = a->sym ? a->sym[ja] : 0, sb = b->sym ? b->sym[jb] : 0;
            if (op[0] == 'A') z = x + y;
            else if (op[0] == 'S') z = x - y;
            else if (op[0] == 'M') z = x * y;
            else {
                if (y == 0) {
                    foolc__free(sym);
                    foolc__ox_tensor_free(&t);
                    return nerr(c, FOOLC_E_FORMAT, "integer division by zero");
                }
                z = x / y;
            }
            t.i[j] = z;
            if (sym) {
                /* x * 1, x / 1, x + 0, x - 0 keep the batch symbol; anything else derives */
                int keep_a = sa && !sb && ((op[0] == 'M' || op[0] == 'D') ? y == 1 : y == 0);
                int keep_b = sb && !sa && (op[0] == 'M' ? x == 1 : op[0] == 'A' && x == 0);
                sym[j] = keep_a ? sa : keep_b ? sb : (sa || sb) ? S_DERIVED : S_NONE;
            }
        } else {
            double x = cget(a, ja), y = cget(b, jb);
            t.f[j] = (float)(op[0] == 'A' ? x + y : op[0] == 'S' ? x - y : op[0] == 'M' ? x * y
                                                                           : x / y);
        }
    }
    set_const(&c->v[out], &t, sym);
    return FOOLC_OK;
}

/* Copies the constant in at the positions of a strided box: out[idx] = in[start + idx*step]
 * per axis. */
static foolc_status fold_box(ox *c, int iid, int out, const int64_t *start, const int64_t *step,
                             const int64_t *cnt)
{
    const val *a = &c->v[iid];
    int r = a->rank;
    ox_tensor t;
    FOOLC__CHECK(new_tensor(&t, a->t.isint, r, cnt));
    unsigned char *sym = NULL;
    if (a->sym && !(sym = foolc__calloc((size_t)(t.count ? t.count : 1), 1))) {
        foolc__ox_tensor_free(&t);
        return foolc__nomem("a constant");
    }
    int64_t idx[OX_MAX_RANK] = { 0 };
    for (int64_t j = 0; j < t.count; j++, next_idx(idx, r, cnt)) {
        int64_t s = 0;
        for (int k = 0; k < r; k++) s = s * a->dims[k] + start[k] + idx[k] * step[k];
        if (t.isint) t.i[j] = a->t.i[s];
        else t.f[j] = a->t.f[s];
        if (sym) sym[j] = a->sym[s];
    }
    set_const(&c->v[out], &t, sym);
    return FOOLC_OK;
}

/* A constant with new dims (same values). */
static foolc_status fold_reshape(ox *c, int iid, int out, int r, const int64_t *dims)
{
    const val *a = &c->v[iid];
    if (numel(dims, r) != a->t.count)
        return nerr(c, FOOLC_E_FORMAT, "reshaping %lld values to %lld", (long long)a->t.count,
                    (long long)numel(dims, r));
    ox_tensor t;
    FOOLC__CHECK(new_tensor(&t, a->t.isint, r, dims));
    if (t.count) {
        if (t.isint) memcpy(t.i, a->t.i, (size_t)t.count * sizeof(int64_t));
        else memcpy(t.f, a->t.f, (size_t)t.count * sizeof(float));
    }
    unsigned char *sym = NULL;
    if (a->sym) {
        sym = foolc__malloc((size_t)(t.count ? t.count : 1));
        if (!sym) {
            foolc__ox_tensor_free(&t);
            return foolc__nomem("a constant");
        }
        if (t.count) memcpy(sym, a->sym, (size_t)t.count);
    }
    set_const(&c->v[out], &t, sym);
    return FOOLC_OK;
}

/* ---- the ops ---- */

typedef foolc_status (*op_fn)(ox *c, int out);

static foolc_status op_unary(ox *c, int out, const char *gop)
{
    int a;
    FOOLC__CHECK(need_dyn(c, 0, &a));
    line *l;
    FOOLC__CHECK(add_line(c, out, gop, 1, &a, &l));
    set_dyn(c, out, c->v[a].rank, c->v[a].dims);
    return FOOLC_OK;
}

static foolc_status op_relu(ox *c, int out) { return op_unary(c, out, "relu"); }
static foolc_status op_sigmoid(ox *c, int out) { return op_unary(c, out, "sigmoid"); }
static foolc_status op_tanh(ox *c, int out) { return op_unary(c, out, "tanh"); }
static foolc_status op_softplus(ox *c, int out) { return op_unary(c, out, "softplus"); }
static foolc_status op_erf(ox *c, int out) { return op_unary(c, out, "erf"); }
static foolc_status op_hardswish(ox *c, int out) { return op_unary(c, out, "hardswish"); }

static foolc_status op_identity(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_in(c, 0, &a));
    if (!c->v[a].dyn) {
        int64_t d[OX_MAX_RANK];
        memcpy(d, c->v[a].dims, sizeof d);
        return fold_reshape(c, a, out, c->v[a].rank, d);
    }
    alias(c, out, a);
    return FOOLC_OK;
}

static foolc_status op_dropout(ox *c, int out)
{
    int64_t is_test = 1;
    FOOLC__CHECK(attr_int(c, "is_test", 1, &is_test));
    int tm = in_id(c, 2);
    if (tm >= 0 && (c->v[tm].dyn || (c->v[tm].t.count == 1 && cget(&c->v[tm], 0) != 0)))
        return nerr(c, FOOLC_E_UNSUPPORTED, "input 'training_mode' is true (only inference "
                    "dropout, the identity, is supported)");
    return op_identity(c, out);
}

static foolc_status op_alpha(ox *c, int out, const char *gop, double def)
{
    double alpha;
    FOOLC__CHECK(attr_float(c, "alpha", def, &alpha));
    FOOLC__CHECK(op_unary(c, out, gop));
    char b[32];
    opt(&c->l[c->nl - 1], "alpha=%s", fmtr(b, alpha));
    return FOOLC_OK;
}

static foolc_status op_leakyrelu(ox *c, int out) { return op_alpha(c, out, "leakyrelu", 0.01); }
static foolc_status op_elu(ox *c, int out) { return op_alpha(c, out, "elu", 1.0); }

static foolc_status op_hardsigmoid(ox *c, int out)
{
    double alpha, beta;
    FOOLC__CHECK(attr_float(c, "alpha", 0.2, &alpha));
    FOOLC__CHECK(attr_float(c, "beta", 0.5, &beta));
    FOOLC__CHECK(op_unary(c, out, "hardsigmoid"));
    char b1[32], b2[32];
    opt(&c->l[c->nl - 1], "alpha=%s beta=%s", fmtr(b1, alpha), fmtr(b2, beta));
    return FOOLC_OK;
}

static foolc_status scalar_in(ox *c, int k, const char *what, double *v)
{
    int id = in_id(c, k);
    if (id < 0) return FOOLC_OK;
    if (c->v[id].dyn)
        return nerr(c, FOOLC_E_UNSUPPORTED, "input '%s' is computed from the image (only "
                    "constant bounds)", what);
    if (c->v[id].t.count != 1)
        return nerr(c, FOOLC_E_FORMAT, "input '%s' has %lld values, not 1", what,
                    (long long)c->v[id].t.count);
    *v = cget(&c->v[id], 0);
    return FOOLC_OK;
}

static foolc_status op_clip(ox *c, int out)
{
    double lo = -INFINITY, hi = INFINITY;
    if (c->opset < 11) {
        FOOLC__CHECK(attr_float(c, "min", -INFINITY, &lo));
        FOOLC__CHECK(attr_float(c, "max", INFINITY, &hi));
    } else {
        FOOLC__CHECK(scalar_in(c, 1, "min", &lo));
        FOOLC__CHECK(scalar_in(c, 2, "max", &hi));
    }
    if (isnan(lo) || isnan(hi)) return nerr(c, FOOLC_E_FORMAT, "a bound is NaN");
    FOOLC__CHECK(op_unary(c, out, "clip"));
    char b1[32], b2[32];
    line *l = &c->l[c->nl - 1];
    /* PyTorch's float32 extremes stand for "no bound" */
    if (lo > -3.4e38) opt(l, "min=%s", fmtr(b1, lo));
    if (hi < 3.4e38) opt(l, "max=%s", fmtr(b2, hi));
    return FOOLC_OK;
}

/* A constant operand c of a dynamic value a (per sample): mode 1 scalar, 2 per channel,
 * 3 full c x h x w; data expanded into a new array (count floats). 0: it would change the
 * dynamic value's shape (unsupported). */
static int const_layout(const val *a, const val *k, float **data, int64_t *count)
{
    *data = NULL;
    if (k->rank > a->rank) return 0;
    for (int j = 0; j < k->rank; j++) {
        int64_t kd = k->dims[j], ad = a->dims[j + a->rank - k->rank];
        if (j + a->rank - k->rank == 0) {
            if (kd != 1) return 0;
        } else if (kd != 1 && kd != ad)
            return 0;
    }
    int64_t d[3];
    chw(a, d);
    if (k->t.count == 1) {
        *data = foolc__malloc(sizeof(float));
        if (!*data) return -1;
        (*data)[0] = (float)cget(k, 0);
        *count = 1;
        return 1;
    }
    /* does it vary along h or w? per-sample dims of k aligned to a's */
    int64_t kd3[3] = { 1, 1, 1 };
    for (int j = 0; j < k->rank; j++) {
        int pos = j + a->rank - k->rank; /* position in a's dims */
        if (pos >= 1 && pos <= 3) kd3[pos - 1] = k->dims[j];
    }
    int per_c = kd3[1] == 1 && kd3[2] == 1;
    int64_t n = per_c ? d[0] : d[0] * d[1] * d[2];
    if (n > t_max_fold) return -2;
    float *o = foolc__malloc((size_t)n * sizeof(float));
    if (!o) return -1;
    for (int64_t ci = 0; ci < d[0]; ci++)
        for (int64_t hi = 0; hi < (per_c ? 1 : d[1]); hi++)
            for (int64_t wi = 0; wi < (per_c ? 1 : d[2]); wi++) {
                int64_t src = ((kd3[0] == 1 ? 0 : ci) * kd3[1] + (kd3[1] == 1 ? 0 : hi)) * kd3[2] +
                              (kd3[2] == 1 ? 0 : wi);
                o[(ci * (per_c ? 1 : d[1]) + hi) * (per_c ? 1 : d[2]) + wi] =
                    (float)cget(k, src);
            }
    *data = o;
    *count = n;
    return per_c ? 2 : 3;
}

static foolc_status op_binary(ox *c, int out)
{
    const char *t = c->n->op_type;
    const char *gop = t[0] == 'A' ? "add" : t[0] == 'S' ? "sub" : t[0] == 'M' ? "mul" : "div";
    int a, b;
    FOOLC__CHECK(need_in(c, 0, &a));
    FOOLC__CHECK(need_in(c, 1, &b));
    val *va = &c->v[a], *vb = &c->v[b];
    if (!va->dyn && !vb->dyn) return fold_binary(c, t, a, b, out);
    if (va->dyn && vb->dyn) {
        if (va->rank != vb->rank)
            return nerr(c, FOOLC_E_UNSUPPORTED, "operands of rank %d and %d (only equal ranks)",
                        va->rank, vb->rank);
        int r;
        int64_t d[OX_MAX_RANK];
        if (!bcast(va->rank, va->dims, vb->rank, vb->dims, &r, d))
            return nerr(c, FOOLC_E_FORMAT, "shapes do not broadcast");
        int in[2] = { a, b };
        line *l;
        FOOLC__CHECK(add_line(c, out, gop, 2, in, &l));
        set_dyn(c, out, r, d);
        return FOOLC_OK;
    }
    int left = !va->dyn, dy = left ? b : a, k = left ? a : b;
    float *data;
    int64_t count;
    int mode = const_layout(&c->v[dy], &c->v[k], &data, &count);
    if (mode == -2)
        return nerr(c, FOOLC_E_UNSUPPORTED, "the constant '%s' expanded to the tensor's shape "
                    "would hold more than %lld values", c->v[k].name, (long long)t_max_fold);
    if (mode < 0) return foolc__nomem("a constant");
    if (mode == 0)
        return nerr(c, FOOLC_E_UNSUPPORTED, "the constant '%s' would broadcast the image's "
                    "tensor '%s' to a larger shape", c->v[k].name, c->v[dy].name);
    line *l;
    foolc_status st = add_line(c, out, gop, 1, &dy, &l);
    if (st == FOOLC_OK) {
        set_dyn(c, out, c->v[dy].rank, c->v[dy].dims);
        int64_t d[3];
        chw(&c->v[dy], d);
        if (mode == 1) {
            char buf[32];
            if (isfinite(data[0])) opt(l, "value=%s", fmtr(buf, data[0]));
            else st = nerr(c, FOOLC_E_FORMAT, "the constant '%s' is not finite", c->v[k].name);
        } else if (mode == 2) {
            opt(l, "const=c");
            st = add_member(l, "const", 1, d, data);
        } else {
            opt(l, "const=chw");
            st = add_member(l, "const", 3, d, data);
        }
        if (left && (gop[0] == 's' || gop[0] == 'd')) opt(l, "left=1");
    }
    foolc__free(data);
    return st;
}

static foolc_status op_prelu(ox *c, int out)
{
    int a, s;
    FOOLC__CHECK(need_dyn(c, 0, &a));
    FOOLC__CHECK(need_const(c, 1, &s, "slope"));
    float *data;
    int64_t count;
    int mode = const_layout(&c->v[a], &c->v[s], &data, &count);
    if (mode == -1) return foolc__nomem("a constant");
    if (mode <= 0 || mode == 3) {
        foolc__free(data);
        return nerr(c, FOOLC_E_UNSUPPORTED, "slopes of shape other than one per channel or "
                    "one in all");
    }
    line *l;
    foolc_status st = add_line(c, out, "prelu", 1, &a, &l);
    if (st == FOOLC_OK) {
        set_dyn(c, out, c->v[a].rank, c->v[a].dims);
        opt(l, "slopes=%s", mode == 1 ? "1" : "c");
        st = add_member(l, "weight", 1, &count, data);
    }
    foolc__free(data);
    return st;
}

/* Spatial options shared by Conv and the pools: kernel kh, kw; strides, dilations, pads
 * (T, L, B, R) with auto_pad resolved; the output size. */
typedef struct spatial {
    int64_t k[2], s[2], d[2], p[4], o[2];
} spatial;

static foolc_status spatial_opts(ox *c, const val *a, spatial *sp, int pool, int dil_ok)
{
    int n;
    int64_t v[8];
    if (!pool) {
        /* kernel from the weight, already in sp->k */
    } else {
        FOOLC__CHECK(attr_ints(c, "kernel_shape", v, 8, &n));
        if (n != 2)
            return n < 0 ? nerr(c, FOOLC_E_FORMAT, "attribute 'kernel_shape' is missing")
                         : nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'kernel_shape' has %d "
                                "values (only 2-d pooling)", n);
        sp->k[0] = v[0];
        sp->k[1] = v[1];
    }
    if (!pool) {
        FOOLC__CHECK(attr_ints(c, "kernel_shape", v, 8, &n));
        if (n >= 0 && (n != 2 || v[0] != sp->k[0] || v[1] != sp->k[1]))
            return nerr(c, FOOLC_E_FORMAT, "attribute 'kernel_shape' disagrees with the weight");
    }
    sp->s[0] = sp->s[1] = sp->d[0] = sp->d[1] = 1;
    memset(sp->p, 0, sizeof sp->p);
    FOOLC__CHECK(attr_ints(c, "strides", v, 8, &n));
    if (n >= 0 && n != 2) return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'strides' has %d values", n);
    if (n == 2) sp->s[0] = v[0], sp->s[1] = v[1];
    FOOLC__CHECK(attr_ints(c, "dilations", v, 8, &n));
    if (n >= 0 && n != 2)
        return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'dilations' has %d values", n);
    if (n == 2) sp->d[0] = v[0], sp->d[1] = v[1];
    if (!dil_ok && (sp->d[0] != 1 || sp->d[1] != 1))
        return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'dilations' = %lld,%lld (only 1)",
                    (long long)sp->d[0], (long long)sp->d[1]);
    FOOLC__CHECK(attr_ints(c, "pads", v, 8, &n));
    if (n >= 0 && n != 4) return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'pads' has %d values", n);
    if (n == 4) sp->p[0] = v[0], sp->p[1] = v[1], sp->p[2] = v[2], sp->p[3] = v[3];
    for (int j = 0; j < 2; j++)
        if (sp->k[j] < 1 || sp->k[j] > OX_MAX_DIM || sp->s[j] < 1 || sp->s[j] > OX_MAX_DIM ||
            sp->d[j] < 1 || sp->d[j] > OX_MAX_DIM)
            return nerr(c, FOOLC_E_FORMAT, "kernel %lld, stride %lld or dilation %lld out of "
                        "range", (long long)sp->k[j], (long long)sp->s[j], (long long)sp->d[j]);
    for (int j = 0; j < 4; j++)
        if (sp->p[j] < 0 || sp->p[j] > OX_MAX_DIM)
            return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'pads' holds %lld", (long long)sp->p[j]);
    char ap[32];
    FOOLC__CHECK(attr_str(c, "auto_pad", "NOTSET", ap, sizeof ap));
    int64_t in[2] = { a->dims[2], a->dims[3] };
    if (!strcmp(ap, "VALID")) memset(sp->p, 0, sizeof sp->p);
    else if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        for (int j = 0; j < 2; j++) {
            int64_t o = (in[j] + sp->s[j] - 1) / sp->s[j];
            int64_t tot = (o - 1) * sp->s[j] + sp->d[j] * (sp->k[j] - 1) + 1 - in[j];
            if (tot < 0) tot = 0;
            int64_t small = tot / 2;
            sp->p[j] = ap[5] == 'U' ? small : tot - small;
            sp->p[j + 2] = tot - sp->p[j];
        }
    } else if (strcmp(ap, "NOTSET"))
        return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'auto_pad' = '%s'", ap);
    for (int j = 0; j < 2; j++) {
        int64_t span = in[j] + sp->p[j] + sp->p[j + 2] - sp->d[j] * (sp->k[j] - 1) - 1;
        if (span < 0)
            return nerr(c, FOOLC_E_FORMAT, "the kernel (%lld) is larger than the padded input "
                        "(%lld)", (long long)sp->k[j], (long long)(in[j] + sp->p[j] + sp->p[j + 2]));
        sp->o[j] = span / sp->s[j] + 1;
    }
    if (pool) {
        int64_t ceil_mode;
        FOOLC__CHECK(attr_int(c, "ceil_mode", 0, &ceil_mode));
        for (int j = 0; ceil_mode && j < 2; j++) {
            int64_t span = in[j] + sp->p[j] + sp->p[j + 2] - sp->d[j] * (sp->k[j] - 1) - 1;
            if (span % sp->s[j])
                return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'ceil_mode' = 1 changes the "
                            "output size here (only floor mode)");
        }
    }
    return FOOLC_OK;
}

static void spatial_text(line *l, const spatial *sp, int dil)
{
    opt(l, "k=%lld,%lld s=%lld,%lld p=%lld,%lld,%lld,%lld", (long long)sp->k[0],
        (long long)sp->k[1], (long long)sp->s[0], (long long)sp->s[1], (long long)sp->p[0],
        (long long)sp->p[1], (long long)sp->p[2], (long long)sp->p[3]);
    if (dil) opt(l, "d=%lld,%lld", (long long)sp->d[0], (long long)sp->d[1]);
}

static foolc_status op_conv(ox *c, int out)
{
    int a, w, b = in_id(c, 2);
    FOOLC__CHECK(need_dyn(c, 0, &a));
    FOOLC__CHECK(need_const(c, 1, &w, "weight"));
    const val *va = &c->v[a], *vw = &c->v[w];
    FOOLC__CHECK(need_rank(c, va, 4, 4, "only 2-d convolutions (N, C, H, W)"));
    if (vw->rank != 4) return nerr(c, FOOLC_E_FORMAT, "the weight has rank %d, not 4", vw->rank);
    int64_t g;
    FOOLC__CHECK(attr_int(c, "group", 1, &g));
    int64_t M = vw->dims[0], C = va->dims[1];
    if (g < 1 || C % g || M % g || vw->dims[1] != C / g)
        return nerr(c, FOOLC_E_FORMAT, "weight (%lld, %lld, ...) does not fit %lld input "
                    "channels in %lld groups", (long long)M, (long long)vw->dims[1],
                    (long long)C, (long long)g);
    spatial sp;
    sp.k[0] = vw->dims[2];
    sp.k[1] = vw->dims[3];
    FOOLC__CHECK(spatial_opts(c, va, &sp, 0, 1));
    if (b >= 0) {
        if (c->v[b].dyn) return nerr(c, FOOLC_E_UNSUPPORTED, "the bias is computed from the image");
        if (c->v[b].t.count != M)
            return nerr(c, FOOLC_E_FORMAT, "the bias has %lld values for %lld outputs",
                        (long long)c->v[b].t.count, (long long)M);
    }
    line *l;
    FOOLC__CHECK(add_line(c, out, "conv2d", 1, &a, &l));
    int64_t d[4] = { 0, M, sp.o[0], sp.o[1] };
    set_dyn(c, out, 4, d);
    opt(l, "out=%lld", (long long)M);
    spatial_text(l, &sp, 1);
    opt(l, "groups=%lld bias=%d", (long long)g, b >= 0);
    FOOLC__CHECK(add_member(l, "weight", 4, vw->dims, vw->t.f));
    if (b >= 0) FOOLC__CHECK(add_member(l, "bias", 1, &M, c->v[b].t.f));
    return FOOLC_OK;
}

static foolc_status op_pool(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_dyn(c, 0, &a));
    const val *va = &c->v[a];
    FOOLC__CHECK(need_rank(c, va, 4, 4, "only 2-d pooling (N, C, H, W)"));
    int avg = c->n->op_type[0] == 'A';
    spatial sp;
    FOOLC__CHECK(spatial_opts(c, va, &sp, 1, 0));
    int64_t cip = 0;
    if (avg) FOOLC__CHECK(attr_int(c, "count_include_pad", 0, &cip));
    line *l;
    FOOLC__CHECK(add_line(c, out, avg ? "avgpool2d" : "maxpool2d", 1, &a, &l));
    int64_t d[4] = { 0, va->dims[1], sp.o[0], sp.o[1] };
    set_dyn(c, out, 4, d);
    spatial_text(l, &sp, 0);
    if (avg) opt(l, "count_pad=%d", cip != 0);
    return FOOLC_OK;
}

static foolc_status op_gap(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_dyn(c, 0, &a));
    FOOLC__CHECK(need_rank(c, &c->v[a], 4, 4, "only (N, C, H, W)"));
    line *l;
    FOOLC__CHECK(add_line(c, out, "globalavgpool", 1, &a, &l));
    int64_t d[4] = { 0, c->v[a].dims[1], 1, 1 };
    set_dyn(c, out, 4, d);
    return FOOLC_OK;
}

/* ReduceMean over the spatial axes (2, 3) of (N, C, H, W): x.mean((2, 3)) in PyTorch, a
 * global average pool (then a flatten without keepdims). Axes from opset 18 are an input. */
static foolc_status op_reducemean(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_dyn(c, 0, &a));
    const val *va = &c->v[a];
    FOOLC__CHECK(need_rank(c, va, 4, 4, "only (N, C, H, W)"));
    int64_t axes[OX_MAX_RANK], keep;
    int n;
    FOOLC__CHECK(get_axes(c, 18, 1, axes, &n));
    FOOLC__CHECK(attr_int(c, "keepdims", 1, &keep));
    unsigned mask = 0;
    for (int k = 0; k < n; k++) {
        FOOLC__CHECK(norm_axis(c, &axes[k], 4, "axis"));
        mask |= 1u << axes[k];
    }
    if (n < 0 || mask != 0xc)
        return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'axes' (only 2 and 3: the spatial "
                    "mean)");
    line *l;
    FOOLC__CHECK(add_line(c, out, "globalavgpool", 1, &a, &l));
    int64_t d[4] = { 0, va->dims[1], 1, 1 };
    set_dyn(c, out, 4, d);
    if (!keep) {
        c->v[out].rank = 2; /* (N, C): the same per-sample shape, c x 1 x 1 */
    }
    return FOOLC_OK;
}

static foolc_status op_bn(ox *c, int out)
{
    int a, p[4];
    FOOLC__CHECK(need_dyn(c, 0, &a));
    const val *va = &c->v[a];
    FOOLC__CHECK(need_rank(c, va, 2, 4, "only (N, C), (N, C, L) or (N, C, H, W)"));
    static const char *const names[4] = { "scale", "bias", "mean", "variance" };
    for (int k = 0; k < 4; k++) {
        FOOLC__CHECK(need_const(c, k + 1, &p[k], names[k]));
        if (c->v[p[k]].t.count != va->dims[1] || c->v[p[k]].t.isint)
            return nerr(c, FOOLC_E_FORMAT, "input '%s' has %lld values for %lld channels",
                        names[k], (long long)c->v[p[k]].t.count, (long long)va->dims[1]);
    }
    int64_t tm, spatial_attr;
    FOOLC__CHECK(attr_int(c, "training_mode", 0, &tm));
    FOOLC__CHECK(attr_int(c, "spatial", 1, &spatial_attr));
    if (tm) return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'training_mode' = 1 (only inference)");
    if (!spatial_attr) return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'spatial' = 0");
    double eps;
    FOOLC__CHECK(attr_float(c, "epsilon", 1e-5, &eps));
    if (!(eps > 0)) return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'epsilon' = %g", eps);
    line *l;
    FOOLC__CHECK(add_line(c, out, "batchnorm", 1, &a, &l));
    set_dyn(c, out, va->rank, va->dims);
    char buf[32];
    opt(l, "eps=%s", fmtr(buf, eps));
    static const char *const sfx[4] = { "weight", "bias", "running_mean", "running_var" };
    int64_t C = va->dims[1];
    for (int k = 0; k < 4; k++) FOOLC__CHECK(add_member(l, sfx[k], 1, &C, c->v[p[k]].t.f));
    return FOOLC_OK;
}

/* dense from a (N, K) value: weight (M, K) given row-major by w (transposed when tr). */
static foolc_status dense(ox *c, int out, int a, const val *vw, int tr, double alpha,
                          const float *bias, double beta)
{
    const val *va = &c->v[a];
    FOOLC__CHECK(need_rank(c, va, 2, 2, "only (N, K) inputs (put a Flatten before it)"));
    if (vw->rank != 2) return nerr(c, FOOLC_E_UNSUPPORTED, "a weight of rank %d (only 2)", vw->rank);
    int64_t K = va->dims[1], M = tr ? vw->dims[1] : vw->dims[0];
    if ((tr ? vw->dims[0] : vw->dims[1]) != K)
        return nerr(c, FOOLC_E_FORMAT, "the weight (%lld, %lld) does not fit %lld inputs",
                    (long long)vw->dims[0], (long long)vw->dims[1], (long long)K);
    float *wt = foolc__malloc((size_t)(M * K > 0 ? M * K : 1) * sizeof(float));
    float *bt = bias ? foolc__malloc((size_t)(M ? M : 1) * sizeof(float)) : NULL;
    if (!wt || (bias && !bt)) {
        foolc__free(wt);
        foolc__free(bt);
        return foolc__nomem("a weight");
    }
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++)
            wt[m * K + k] = (float)(alpha * (tr ? vw->t.f[k * M + m] : vw->t.f[m * K + k]));
    for (int64_t m = 0; bias && m < M; m++) bt[m] = (float)(beta * bias[m]);
    line *l;
    foolc_status st = add_line(c, out, "dense", 1, &a, &l);
    if (st == FOOLC_OK) {
        int64_t d[2] = { 0, M };
        set_dyn(c, out, 2, d);
        opt(l, "out=%lld bias=%d", (long long)M, bias != NULL);
        int64_t ws[2] = { M, K };
        st = add_member(l, "weight", 2, ws, wt);
        if (st == FOOLC_OK && bias) st = add_member(l, "bias", 1, &M, bt);
    }
    foolc__free(wt);
    foolc__free(bt);
    return st;
}

static foolc_status op_gemm(ox *c, int out)
{
    int a, w, b = in_id(c, 2);
    FOOLC__CHECK(need_dyn(c, 0, &a));
    FOOLC__CHECK(need_const(c, 1, &w, "B"));
    int64_t ta, tb;
    double alpha, beta;
    FOOLC__CHECK(attr_int(c, "transA", 0, &ta));
    FOOLC__CHECK(attr_int(c, "transB", 0, &tb));
    FOOLC__CHECK(attr_float(c, "alpha", 1.0, &alpha));
    FOOLC__CHECK(attr_float(c, "beta", 1.0, &beta));
    if (ta) return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'transA' = 1 (the batch would move)");
    const val *vw = &c->v[w];
    if (vw->rank != 2) return nerr(c, FOOLC_E_FORMAT, "B has rank %d", vw->rank);
    int64_t M = tb ? vw->dims[0] : vw->dims[1];
    float *bias = NULL;
    foolc_status st = FOOLC_OK;
    if (b >= 0) {
        const val *vb = &c->v[b];
        if (vb->dyn) return nerr(c, FOOLC_E_UNSUPPORTED, "input C is computed from the image");
        int ok = vb->t.count == 1 || (vb->t.count == M && (vb->rank == 1 ||
                                                           (vb->rank == 2 && vb->dims[0] == 1)));
        if (!ok) return nerr(c, FOOLC_E_UNSUPPORTED, "input C of %lld values (only one per "
                             "output or one in all)", (long long)vb->t.count);
        bias = foolc__malloc((size_t)(M ? M : 1) * sizeof(float));
        if (!bias) return foolc__nomem("a bias");
        for (int64_t m = 0; m < M; m++) bias[m] = (float)cget(vb, vb->t.count == 1 ? 0 : m);
    }
    st = dense(c, out, a, vw, !tb, alpha, bias, beta);
    foolc__free(bias);
    return st;
}

static foolc_status op_matmul(ox *c, int out)
{
    int a, w;
    FOOLC__CHECK(need_dyn(c, 0, &a));
    FOOLC__CHECK(need_const(c, 1, &w, "B"));
    return dense(c, out, a, &c->v[w], 1, 1.0, NULL, 1.0);
}

static foolc_status op_softmax(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_dyn(c, 0, &a));
    int64_t axis;
    FOOLC__CHECK(attr_int(c, "axis", c->opset < 13 ? 1 : -1, &axis));
    FOOLC__CHECK(need_rank(c, &c->v[a], 2, 2, "only (N, classes)"));
    FOOLC__CHECK(norm_axis(c, &axis, 2, "axis"));
    if (axis != 1) return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'axis' is the batch");
    return op_unary(c, out, c->n->op_type[0] == 'L' ? "logsoftmax" : "softmax");
}

/* A dynamic value to new per-sample dims nd (0 < nd <= 3 after the batch): an alias when
 * nothing changes, flatten when it becomes (N, K), else reshape. */
static foolc_status to_shape(ox *c, int out, int a, int r, const int64_t *dims)
{
    const val *va = &c->v[a];
    if (r < 2 || r > 4)
        return nerr(c, FOOLC_E_UNSUPPORTED, "a result of rank %d (only 2 to 4, the batch "
                    "first)", r);
    if (numel(dims + 1, r - 1) != numel(va->dims + 1, va->rank - 1))
        return nerr(c, FOOLC_E_FORMAT, "reshaping %lld values per sample to %lld",
                    (long long)numel(va->dims + 1, va->rank - 1),
                    (long long)numel(dims + 1, r - 1));
    int64_t d0[3], d1[3];
    chw(va, d0);
    val tmp = *va;
    tmp.rank = r;
    memcpy(tmp.dims, dims, (size_t)r * sizeof(int64_t));
    chw(&tmp, d1);
    if (d0[0] == d1[0] && d0[1] == d1[1] && d0[2] == d1[2]) {
        alias(c, out, a);
        set_dyn(c, out, r, dims);
        return FOOLC_OK;
    }
    line *l;
    FOOLC__CHECK(add_line(c, out, d1[1] == 1 && d1[2] == 1 ? "flatten" : "reshape", 1, &a, &l));
    set_dyn(c, out, r, dims);
    if (!(d1[1] == 1 && d1[2] == 1))
        opt(l, "shape=%lld,%lld,%lld", (long long)d1[0], (long long)d1[1], (long long)d1[2]);
    return FOOLC_OK;
}

static foolc_status op_flatten(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_in(c, 0, &a));
    int64_t axis;
    FOOLC__CHECK(attr_int(c, "axis", 1, &axis));
    const val *va = &c->v[a];
    if (axis < -va->rank || axis > va->rank)
        return nerr(c, FOOLC_E_FORMAT, "attribute 'axis' = %lld for rank %d", (long long)axis,
                    va->rank);
    if (axis < 0) axis += va->rank;
    int64_t d[2] = { numel(va->dims, (int)axis), numel(va->dims + axis, va->rank - (int)axis) };
    if (!va->dyn) return fold_reshape(c, a, out, 2, d);
    if (axis != 1)
        return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'axis' = %lld (only 1: the batch stays "
                    "apart)", (long long)axis);
    d[0] = 0;
    return to_shape(c, out, a, 2, d);
}

static foolc_status op_reshape(ox *c, int out)
{
    int a, s;
    FOOLC__CHECK(need_in(c, 0, &a));
    FOOLC__CHECK(need_const(c, 1, &s, "shape"));
    int64_t t[OX_MAX_RANK + 1];
    unsigned char sym[OX_MAX_RANK + 1];
    int n;
    FOOLC__CHECK(const_ints(c, s, "the shape", t, OX_MAX_RANK, &n, sym));
    int64_t allowzero;
    FOOLC__CHECK(attr_int(c, "allowzero", 0, &allowzero));
    const val *va = &c->v[a];
    int dyn = va->dyn;
    /* resolve 0 (copy) and the batch; then the one -1 */
    int64_t d[OX_MAX_RANK];
    int neg = -1;
    for (int k = 0; k < n; k++) {
        if (sym[k] == S_DERIVED)
            return nerr(c, FOOLC_E_UNSUPPORTED, "dimension %d of the shape is computed from the "
                        "batch size", k);
        if (sym[k] == S_BATCH) {
            if (!dyn || k != 0)
                return nerr(c, FOOLC_E_UNSUPPORTED, "the batch size moves to dimension %d", k);
            d[k] = 0;
        } else if (t[k] == 0 && !allowzero) {
            if (k >= va->rank) return nerr(c, FOOLC_E_FORMAT, "0 copies a missing dimension %d", k);
            d[k] = va->dims[k];
        } else if (t[k] == -1) {
            if (neg >= 0) return nerr(c, FOOLC_E_FORMAT, "two -1 in the shape");
            neg = k;
            d[k] = 1;
        } else if (t[k] < 0 || t[k] > FOOLC_ONNX_MAX_VALUES)
            return nerr(c, FOOLC_E_FORMAT, "shape value %lld", (long long)t[k]);
        else
            d[k] = t[k];
    }
    if (!dyn) {
        if (neg >= 0) {
            int64_t rest = numel(d, n);
            if (!rest || va->t.count % rest) return nerr(c, FOOLC_E_FORMAT, "-1 does not divide");
            d[neg] = va->t.count / rest;
        }
        return fold_reshape(c, a, out, n, d);
    }
    if (n < 1) return nerr(c, FOOLC_E_FORMAT, "an empty shape for the image's tensor");
    int64_t per = numel(va->dims + 1, va->rank - 1);
    /* dimension 0 must be the batch: the symbol, a 0 copying it, a -1, or the batch size the
     * model was exported with */
    if (d[0] != 0 && !(neg == 0) && !(c->fixed_batch && t[0] == c->fixed_batch))
        return nerr(c, FOOLC_E_UNSUPPORTED, "the shape's first dimension (%lld) is not the "
                    "batch", (long long)t[0]);
    if (neg > 0) {
        int64_t rest = numel(d + 1, n - 1);
        if (!rest || per % rest) return nerr(c, FOOLC_E_FORMAT, "-1 does not divide");
        d[neg] = per / rest;
    } else if (neg == 0 && numel(d + 1, n - 1) != per)
        return nerr(c, FOOLC_E_UNSUPPORTED, "the shape's -1 would mix the batch with the other "
                    "dimensions");
    d[0] = 0;
    return to_shape(c, out, a, n, d);
}

static foolc_status op_squeeze(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_in(c, 0, &a));
    int64_t axes[OX_MAX_RANK];
    int n;
    int unsq = c->n->op_type[0] == 'U';
    FOOLC__CHECK(get_axes(c, 13, 1, axes, &n));
    const val *va = &c->v[a];
    int64_t d[OX_MAX_RANK + 1];
    int r = 0;
    if (unsq) {
        if (n < 0) return nerr(c, FOOLC_E_FORMAT, "axes missing");
        int ro = va->rank + n;
        if (ro > OX_MAX_RANK) return nerr(c, FOOLC_E_UNSUPPORTED, "rank %d", ro);
        unsigned char ins[OX_MAX_RANK] = { 0 };
        for (int k = 0; k < n; k++) {
            FOOLC__CHECK(norm_axis(c, &axes[k], ro, "axis"));
            if (ins[axes[k]]) return nerr(c, FOOLC_E_FORMAT, "axis %lld twice", (long long)axes[k]);
            ins[axes[k]] = 1;
        }
        for (int k = 0, j = 0; k < ro; k++) d[r++] = ins[k] ? 1 : va->dims[j++];
    } else {
        unsigned char del[OX_MAX_RANK] = { 0 };
        for (int k = 0; k < n; k++) {
            FOOLC__CHECK(norm_axis(c, &axes[k], va->rank, "axis"));
            if (va->dims[axes[k]] != 1 && !(va->dyn && axes[k] == 0))
                return nerr(c, FOOLC_E_FORMAT, "squeezing dimension %lld of size %lld",
                            (long long)axes[k], (long long)va->dims[axes[k]]);
            del[axes[k]] = 1;
        }
        for (int k = 0; k < va->rank; k++)
            if (!(n < 0 ? (va->dims[k] == 1 && !(va->dyn && k == 0)) : del[k])) d[r++] = va->dims[k];
    }
    if (!va->dyn) return fold_reshape(c, a, out, r, d);
    if (d[0] != 0) return nerr(c, FOOLC_E_UNSUPPORTED, "the batch dimension moves");
    return to_shape(c, out, a, r, d);
}

static foolc_status op_transpose(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_in(c, 0, &a));
    const val *va = &c->v[a];
    int64_t perm[OX_MAX_RANK];
    int n;
    FOOLC__CHECK(attr_ints(c, "perm", perm, OX_MAX_RANK, &n));
    if (n < 0) {
        n = va->rank;
        for (int k = 0; k < n; k++) perm[k] = n - 1 - k;
    }
    if (n != va->rank) return nerr(c, FOOLC_E_FORMAT, "perm has %d values for rank %d", n, va->rank);
    unsigned seen = 0;
    for (int k = 0; k < n; k++) {
        if (perm[k] < 0 || perm[k] >= n || (seen >> perm[k] & 1))
            return nerr(c, FOOLC_E_FORMAT, "perm is not a permutation");
        seen |= 1u << perm[k];
    }
    int64_t d[OX_MAX_RANK];
    for (int k = 0; k < n; k++) d[k] = va->dims[perm[k]];
    if (!va->dyn) {
        /* out[idx] = in[idx permuted back] */
        ox_tensor t;
        FOOLC__CHECK(new_tensor(&t, va->t.isint, n, d));
        int64_t idx[OX_MAX_RANK] = { 0 }, st[OX_MAX_RANK];
        for (int k = n - 1, s = 1; k >= 0; k--) st[k] = s, s *= (int)va->dims[k];
        for (int64_t j = 0; j < t.count; j++, next_idx(idx, n, d)) {
            int64_t s = 0;
            for (int k = 0; k < n; k++) s += idx[k] * st[perm[k]];
            if (t.isint) t.i[j] = va->t.i[s];
            else t.f[j] = va->t.f[s];
        }
        set_const(&c->v[out], &t, NULL);
        return FOOLC_OK;
    }
    if (perm[0] != 0)
        return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'perm' moves the batch dimension");
    if (n < 2 || n > 4) return nerr(c, FOOLC_E_UNSUPPORTED, "rank %d", n);
    int p[3] = { 0, 1, 2 }, ident = 1;
    for (int k = 1; k < n; k++) {
        p[k - 1] = (int)perm[k] - 1;
        ident &= perm[k] == k;
    }
    if (ident) {
        alias(c, out, a);
        return FOOLC_OK;
    }
    line *l;
    FOOLC__CHECK(add_line(c, out, "transpose", 1, &a, &l));
    set_dyn(c, out, n, d);
    opt(l, "perm=%d,%d,%d", p[0], p[1], p[2]);
    return FOOLC_OK;
}

static foolc_status op_concat(ox *c, int out)
{
    int n = (int)c->n->n_input, ids[OX_MAX_LINES];
    if (n < 1 || n > OX_MAX_LINES) return nerr(c, FOOLC_E_FORMAT, "%d inputs", n);
    int ndyn = 0;
    for (int k = 0; k < n; k++) {
        FOOLC__CHECK(need_in(c, k, &ids[k]));
        ndyn += c->v[ids[k]].dyn;
    }
    int64_t axis;
    FOOLC__CHECK(attr_int(c, "axis", 0, &axis));
    const val *v0 = &c->v[ids[0]];
    int r = v0->rank;
    FOOLC__CHECK(norm_axis(c, &axis, r < 1 ? 1 : r, "axis"));
    int64_t d[OX_MAX_RANK];
    memcpy(d, v0->dims, sizeof d);
    d[axis] = 0;
    for (int k = 0; k < n; k++) {
        const val *vk = &c->v[ids[k]];
        if (vk->rank != r) return nerr(c, FOOLC_E_FORMAT, "inputs of rank %d and %d", r, vk->rank);
        for (int j = 0; j < r; j++)
            if (j != axis && vk->dims[j] != v0->dims[j])
                return nerr(c, FOOLC_E_FORMAT, "inputs disagree in dimension %d", j);
        d[axis] += vk->dims[axis];
    }
    if (ndyn == 0) {
        int isint = 1, anysym = 0;
        for (int k = 0; k < n; k++) {
            isint &= c->v[ids[k]].t.isint;
            anysym |= c->v[ids[k]].sym != NULL;
        }
        ox_tensor t;
        FOOLC__CHECK(new_tensor(&t, isint, r, d));
        unsigned char *sym = anysym ? foolc__calloc((size_t)(t.count ? t.count : 1), 1) : NULL;
        if (anysym && !sym) {
            foolc__ox_tensor_free(&t);
            return foolc__nomem("a constant");
        }
        int64_t outer = numel(d, (int)axis), inner = numel(d + axis + 1, r - (int)axis - 1);
        int64_t j = 0;
        for (int64_t o = 0; o < outer; o++)
            for (int k = 0; k < n; k++) {
                const val *vk = &c->v[ids[k]];
                int64_t len = vk->dims[axis] * inner;
                for (int64_t e = 0; e < len; e++, j++) {
                    int64_t s = o * len + e;
                    if (isint) t.i[j] = vk->t.i[s];
                    else t.f[j] = (float)cget(vk, s);
                    if (sym) sym[j] = vk->sym ? vk->sym[s] : 0;
                }
            }
        set_const(&c->v[out], &t, sym);
        return FOOLC_OK;
    }
    if (ndyn != n)
        return nerr(c, FOOLC_E_UNSUPPORTED, "constants concatenated with the image's tensors");
    if (axis == 0) return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'axis' is the batch");
    if (r > 4) return nerr(c, FOOLC_E_UNSUPPORTED, "rank %d", r);
    if (n == 1) {
        alias(c, out, ids[0]);
        return FOOLC_OK;
    }
    line *l;
    FOOLC__CHECK(add_line(c, out, "concat", n, ids, &l));
    d[0] = 0;
    set_dyn(c, out, r, d);
    opt(l, "axis=%lld", (long long)axis - 1);
    return FOOLC_OK;
}

static foolc_status op_pad(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_dyn(c, 0, &a));
    const val *va = &c->v[a];
    char mode[32];
    FOOLC__CHECK(attr_str(c, "mode", "constant", mode, sizeof mode));
    if (strcmp(mode, "constant"))
        return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'mode' = '%s' (only constant)", mode);
    int64_t pads[2 * OX_MAX_RANK];
    int n;
    double value = 0;
    if (c->opset < 11) {
        FOOLC__CHECK(attr_ints(c, "pads", pads, 2 * OX_MAX_RANK, &n));
        FOOLC__CHECK(attr_float(c, "value", 0.0, &value));
    } else {
        int p;
        FOOLC__CHECK(need_const(c, 1, &p, "pads"));
        FOOLC__CHECK(const_ints(c, p, "pads", pads, 2 * OX_MAX_RANK, &n, NULL));
        FOOLC__CHECK(scalar_in(c, 2, "constant_value", &value));
        int ax = in_id(c, 3);
        if (ax >= 0) {
            int64_t axes[OX_MAX_RANK], full[2 * OX_MAX_RANK] = { 0 };
            int na;
            if (c->v[ax].dyn) return nerr(c, FOOLC_E_UNSUPPORTED, "axes computed from the image");
            FOOLC__CHECK(const_ints(c, ax, "axes", axes, OX_MAX_RANK, &na, NULL));
            if (n != 2 * na) return nerr(c, FOOLC_E_FORMAT, "%d pads for %d axes", n, na);
            for (int k = 0; k < na; k++) {
                FOOLC__CHECK(norm_axis(c, &axes[k], va->rank, "axis"));
                full[axes[k]] = pads[k];
                full[axes[k] + va->rank] = pads[k + na];
            }
            memcpy(pads, full, sizeof full);
            n = 2 * va->rank;
        }
    }
    if (n != 2 * va->rank) return nerr(c, FOOLC_E_FORMAT, "%d pads for rank %d", n, va->rank);
    FOOLC__CHECK(need_rank(c, va, 4, 4, "only (N, C, H, W)"));
    if (pads[0] || pads[1] || pads[4] || pads[5])
        return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'pads' pads the batch or the channels");
    for (int k = 0; k < 8; k++)
        if (pads[k] < 0 || pads[k] > OX_MAX_DIM)
            return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'pads' holds %lld (only padding, "
                        "no cropping)", (long long)pads[k]);
    if (!isfinite(value)) return nerr(c, FOOLC_E_UNSUPPORTED, "a padding value of %g", value);
    if (!pads[2] && !pads[3] && !pads[6] && !pads[7]) {
        alias(c, out, a);
        return FOOLC_OK;
    }
    line *l;
    FOOLC__CHECK(add_line(c, out, "pad", 1, &a, &l));
    int64_t d[4] = { 0, va->dims[1], va->dims[2] + pads[2] + pads[6], va->dims[3] + pads[3] + pads[7] };
    set_dyn(c, out, 4, d);
    char buf[32];
    opt(l, "pads=%lld,%lld,%lld,%lld value=%s", (long long)pads[2], (long long)pads[3],
        (long long)pads[6], (long long)pads[7], fmtr(buf, value));
    return FOOLC_OK;
}

static foolc_status op_constant(ox *c, int out)
{
    ox_tensor t;
    memset(&t, 0, sizeof t);
    const Onnx__AttributeProto *a;
    if ((a = attr(c, "value"))) {
        if (!a->t) return nerr(c, FOOLC_E_FORMAT, "attribute 'value' holds no tensor");
        char what[96];
        snprintf(what, sizeof what, "the value of node '%.60s'", c->nname);
        FOOLC__CHECK(foolc__ox_tensor(a->t, c->src, what, &t));
    } else if ((a = attr(c, "value_float")) || (a = attr(c, "value_int"))) {
        int isint = a->name[6] == 'i';
        FOOLC__CHECK(new_tensor(&t, isint, 0, NULL));
        if (isint) t.i[0] = a->i;
        else t.f[0] = a->f;
    } else if ((a = attr(c, "value_floats")) || (a = attr(c, "value_ints"))) {
        int isint = a->name[6] == 'i';
        int64_t n = isint ? (int64_t)a->n_ints : (int64_t)a->n_floats;
        FOOLC__CHECK(new_tensor(&t, isint, 1, &n));
        for (int64_t j = 0; j < n; j++) {
            if (isint) t.i[j] = a->ints[j];
            else t.f[j] = a->floats[j];
        }
    } else {
        const char *which = c->n->n_attribute && c->n->attribute[0] && c->n->attribute[0]->name
                                ? c->n->attribute[0]->name : "(none)";
        return nerr(c, FOOLC_E_UNSUPPORTED, "attribute '%s' (only value, value_float(s), "
                    "value_int(s))", which);
    }
    set_const(&c->v[out], &t, NULL);
    return FOOLC_OK;
}

static foolc_status op_constantofshape(ox *c, int out)
{
    int s;
    FOOLC__CHECK(need_const(c, 0, &s, "shape"));
    int64_t d[OX_MAX_RANK];
    int n;
    FOOLC__CHECK(const_ints(c, s, "the shape", d, OX_MAX_RANK, &n, NULL));
    for (int k = 0; k < n; k++)
        if (d[k] < 0 || d[k] > FOOLC_ONNX_MAX_VALUES)
            return nerr(c, FOOLC_E_FORMAT, "dimension %lld", (long long)d[k]);
    if (numel(d, n) > (1 << 24)) return nerr(c, FOOLC_E_UNSUPPORTED, "a constant of %lld values",
                                             (long long)numel(d, n));
    ox_tensor v;
    memset(&v, 0, sizeof v);
    int isint = 0;
    double fill = 0;
    const Onnx__AttributeProto *a = attr(c, "value");
    if (a && a->t) {
        FOOLC__CHECK(foolc__ox_tensor(a->t, c->src, "ConstantOfShape's value", &v));
        if (v.count != 1) {
            foolc__ox_tensor_free(&v);
            return nerr(c, FOOLC_E_FORMAT, "attribute 'value' has %lld values", (long long)v.count);
        }
        isint = v.isint;
        fill = isint ? (double)v.i[0] : v.f[0];
        foolc__ox_tensor_free(&v);
    }
    ox_tensor t;
    FOOLC__CHECK(new_tensor(&t, isint, n, d));
    for (int64_t j = 0; j < t.count; j++) {
        if (isint) t.i[j] = (int64_t)fill;
        else t.f[j] = (float)fill;
    }
    set_const(&c->v[out], &t, NULL);
    return FOOLC_OK;
}

static foolc_status op_shape(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_in(c, 0, &a));
    const val *va = &c->v[a];
    int64_t start, end;
    FOOLC__CHECK(attr_int(c, "start", 0, &start));
    FOOLC__CHECK(attr_int(c, "end", va->rank, &end));
    if (start < 0) start += va->rank;
    if (end < 0) end += va->rank;
    if (start < 0) start = 0;
    if (end > va->rank) end = va->rank;
    int64_t n = end > start ? end - start : 0;
    ox_tensor t;
    FOOLC__CHECK(new_tensor(&t, 1, 1, &n));
    unsigned char *sym = foolc__calloc((size_t)(n ? n : 1), 1);
    if (!sym) {
        foolc__ox_tensor_free(&t);
        return foolc__nomem("a shape");
    }
    for (int64_t j = 0; j < n; j++) {
        int64_t k = start + j;
        t.i[j] = va->dims[k];
        if (va->dyn && k == 0) {
            sym[j] = S_BATCH;
            t.i[j] = c->fixed_batch ? c->fixed_batch : 1;
        }
    }
    set_const(&c->v[out], &t, sym);
    return FOOLC_OK;
}

static foolc_status op_gather(ox *c, int out)
{
    int a, ix;
    FOOLC__CHECK(need_in(c, 0, &a));
    if (c->v[a].dyn)
        return nerr(c, FOOLC_E_UNSUPPORTED, "gathering from the image's tensor (only from "
                    "shapes and constants)");
    FOOLC__CHECK(need_const(c, 1, &ix, "indices"));
    const val *va = &c->v[a], *vi = &c->v[ix];
    int64_t axis;
    FOOLC__CHECK(attr_int(c, "axis", 0, &axis));
    if (va->rank < 1) return nerr(c, FOOLC_E_FORMAT, "gathering from a scalar");
    FOOLC__CHECK(norm_axis(c, &axis, va->rank, "axis"));
    if (!vi->t.isint) return nerr(c, FOOLC_E_FORMAT, "indices are not integers");
    int r = va->rank - 1 + vi->rank;
    if (r > OX_MAX_RANK) return nerr(c, FOOLC_E_UNSUPPORTED, "rank %d", r);
    int64_t d[OX_MAX_RANK];
    int k = 0;
    for (int j = 0; j < axis; j++) d[k++] = va->dims[j];
    for (int j = 0; j < vi->rank; j++) d[k++] = vi->dims[j];
    for (int j = (int)axis + 1; j < va->rank; j++) d[k++] = va->dims[j];
    ox_tensor t;
    FOOLC__CHECK(new_tensor(&t, va->t.isint, r, d));
    unsigned char *sym = va->sym ? foolc__calloc((size_t)(t.count ? t.count : 1), 1) : NULL;
    if (va->sym && !sym) {
        foolc__ox_tensor_free(&t);
        return foolc__nomem("a constant");
    }
    int64_t outer = numel(va->dims, (int)axis), inner = numel(va->dims + axis + 1,
                                                             va->rank - (int)axis - 1);
    int64_t len = va->dims[axis], j = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < vi->t.count; q++) {
            int64_t i = vi->t.i[q];
            if (i < 0) i += len;
            if (i < 0 || i >= len) {
                foolc__free(sym);
                foolc__ox_tensor_free(&t);
                return nerr(c, FOOLC_E_FORMAT, "index %lld out of range [0, %lld)",
                            (long long)vi->t.i[q], (long long)len);
            }
            for (int64_t e = 0; e < inner; e++, j++) {
                int64_t s = (o * len + i) * inner + e;
                if (t.isint) t.i[j] = va->t.i[s];
                else t.f[j] = va->t.f[s];
                if (sym) sym[j] = va->sym[s];
            }
        }
    set_const(&c->v[out], &t, sym);
    return FOOLC_OK;
}

static foolc_status op_slice(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_in(c, 0, &a));
    if (c->v[a].dyn)
        return nerr(c, FOOLC_E_UNSUPPORTED, "slicing the image's tensor (only shapes and "
                    "constants)");
    const val *va = &c->v[a];
    int64_t st[OX_MAX_RANK], en[OX_MAX_RANK], ax[OX_MAX_RANK], sp[OX_MAX_RANK];
    int ns, ne, na = -1, np = -1;
    if (c->opset < 10) {
        FOOLC__CHECK(attr_ints(c, "starts", st, OX_MAX_RANK, &ns));
        FOOLC__CHECK(attr_ints(c, "ends", en, OX_MAX_RANK, &ne));
        FOOLC__CHECK(attr_ints(c, "axes", ax, OX_MAX_RANK, &na));
    } else {
        int k;
        FOOLC__CHECK(need_const(c, 1, &k, "starts"));
        FOOLC__CHECK(const_ints(c, k, "starts", st, OX_MAX_RANK, &ns, NULL));
        FOOLC__CHECK(need_const(c, 2, &k, "ends"));
        FOOLC__CHECK(const_ints(c, k, "ends", en, OX_MAX_RANK, &ne, NULL));
        if ((k = in_id(c, 3)) >= 0) {
            if (c->v[k].dyn) return nerr(c, FOOLC_E_UNSUPPORTED, "computed axes");
            FOOLC__CHECK(const_ints(c, k, "axes", ax, OX_MAX_RANK, &na, NULL));
        }
        if ((k = in_id(c, 4)) >= 0) {
            if (c->v[k].dyn) return nerr(c, FOOLC_E_UNSUPPORTED, "computed steps");
            FOOLC__CHECK(const_ints(c, k, "steps", sp, OX_MAX_RANK, &np, NULL));
        }
    }
    if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (np >= 0 && np != ns))
        return nerr(c, FOOLC_E_FORMAT, "starts, ends, axes and steps disagree");
    int64_t start[OX_MAX_RANK] = { 0 }, step[OX_MAX_RANK], cnt[OX_MAX_RANK];
    for (int k = 0; k < va->rank; k++) step[k] = 1, cnt[k] = va->dims[k];
    for (int k = 0; k < ns; k++) {
        int64_t axis = na >= 0 ? ax[k] : k, s = np >= 0 ? sp[k] : 1;
        FOOLC__CHECK(norm_axis(c, &axis, va->rank, "axis"));
        int64_t L = va->dims[axis], b = st[k], e = en[k];
        if (s == 0) return nerr(c, FOOLC_E_FORMAT, "step 0");
        if (b < 0) b += L;
        if (e < 0) e += L;
        if (s > 0) {
            b = b < 0 ? 0 : b > L ? L : b;
            e = e < 0 ? 0 : e > L ? L : e;
            cnt[axis] = e > b ? (e - b + s - 1) / s : 0;
        } else {
            b = b < 0 ? -1 : b > L - 1 ? L - 1 : b;
            e = e < -1 ? -1 : e > L - 1 ? L - 1 : e;
            cnt[axis] = b > e ? (b - e + (-s) - 1) / (-s) : 0;
        }
        start[axis] = cnt[axis] ? b : 0;
        step[axis] = s;
    }
    return fold_box(c, a, out, start, step, cnt);
}

static foolc_status op_cast(ox *c, int out)
{
    int a;
    FOOLC__CHECK(need_in(c, 0, &a));
    int64_t to;
    FOOLC__CHECK(attr_int(c, "to", 0, &to));
    int tofloat = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
                  to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
                  to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
                  to == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
    const val *va = &c->v[a];
    if (va->dyn) {
        if (to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return nerr(c, FOOLC_E_UNSUPPORTED, "attribute 'to' = %s on the image's tensor "
                        "(only float)", foolc__ox_dtype_name((int32_t)to));
        alias(c, out, a);
        return FOOLC_OK;
    }
    ox_tensor t;
    FOOLC__CHECK(new_tensor(&t, !tofloat, va->rank, va->dims));
    for (int64_t j = 0; j < t.count; j++) {
        double x = cget(va, j);
        if (tofloat) t.f[j] = (float)x;
        else if (to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL) t.i[j] = x != 0;
        else t.i[j] = fabs(x) < 9e18 ? (int64_t)x : 0;
    }
    unsigned char *sym = NULL;
    if (va->sym) {
        if (tofloat) {
            for (int64_t j = 0; j < va->t.count; j++)
                if (va->sym[j]) {
                    foolc__ox_tensor_free(&t);
                    return nerr(c, FOOLC_E_UNSUPPORTED, "the batch size used as a number");
                }
        } else if (!(sym = foolc__malloc((size_t)(t.count ? t.count : 1)))) {
            foolc__ox_tensor_free(&t);
            return foolc__nomem("a constant");
        } else if (t.count)
            memcpy(sym, va->sym, (size_t)t.count);
    }
    set_const(&c->v[out], &t, sym);
    return FOOLC_OK;
}

typedef struct op_entry {
    const char *name;
    op_fn fn;
} op_entry;

static const op_entry k_ops[] = {
    { "Add", op_binary }, { "AveragePool", op_pool }, { "BatchNormalization", op_bn },
    { "Cast", op_cast }, { "Clip", op_clip }, { "Concat", op_concat },
    { "Constant", op_constant }, { "ConstantOfShape", op_constantofshape }, { "Conv", op_conv },
    { "Div", op_binary }, { "Dropout", op_dropout }, { "Elu", op_elu }, { "Erf", op_erf },
    { "Flatten", op_flatten }, { "Gather", op_gather }, { "Gemm", op_gemm },
    { "GlobalAveragePool", op_gap }, { "HardSigmoid", op_hardsigmoid },
    { "HardSwish", op_hardswish }, { "Identity", op_identity }, { "LeakyRelu", op_leakyrelu },
    { "LogSoftmax", op_softmax }, { "MatMul", op_matmul }, { "MaxPool", op_pool },
    { "Mul", op_binary }, { "Pad", op_pad }, { "ReduceMean", op_reducemean }, { "PRelu", op_prelu }, { "Relu", op_relu },
    { "Reshape", op_reshape }, { "Shape", op_shape }, { "Sigmoid", op_sigmoid },
    { "Slice", op_slice }, { "Softmax", op_softmax }, { "Softplus", op_softplus },
    { "Squeeze", op_squeeze }, { "Sub", op_binary }, { "Tanh", op_tanh },
    { "Transpose", op_transpose }, { "Unsqueeze", op_squeeze },
};

/* ---- the model ---- */

static foolc_status check_model(ox *c, const Onnx__ModelProto *m)
{
    if (!m->graph) return foolc__error(FOOLC_E_FORMAT, "onnx: %s: the model has no graph", c->src);
    c->opset = -1;
    for (size_t k = 0; k < m->n_opset_import; k++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[k];
        if (o && (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")))
            c->opset = o->has_version ? o->version : 1;
    }
    if (c->opset < 0)
        return foolc__error(FOOLC_E_FORMAT, "onnx: %s: no opset of the default domain in "
                            "opset_import", c->src);
    if (c->opset < 9 || c->opset > 18)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: opset %lld; the importer reads "
                            "opsets 9 to 18 (re-export with torch.onnx.export(..., "
                            "opset_version=13) or convert with onnx.version_converter)",
                            c->src, (long long)c->opset);
    return FOOLC_OK;
}

/* The value a graph input or output declares: element type and dims (dim 0 free). */
static foolc_status declared(ox *c, const Onnx__ValueInfoProto *vi, const char *what, int *rank,
                             int64_t *dims, int *fixed)
{
    const char *nm = vi->name ? vi->name : "?";
    const Onnx__TypeProto *t = vi->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: %s '%s' is not a tensor", c->src,
                            what, nm);
    const Onnx__TypeProto__Tensor *tt = t->tensor_type;
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: %s '%s' is %s (only float)", c->src,
                            what, nm, foolc__ox_dtype_name(tt->elem_type));
    if (!tt->shape) {
        *rank = -1;
        return FOOLC_OK;
    }
    if (tt->shape->n_dim < 2 || tt->shape->n_dim > 4)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: %s '%s' has rank %zu (only (N, C, "
                            "H, W), (N, C, L) or (N, K), the batch first)", c->src, what, nm,
                            tt->shape->n_dim);
    *rank = (int)tt->shape->n_dim;
    *fixed = 0;
    for (int k = 0; k < *rank; k++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[k];
        int isval = d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        if (k == 0) {
            if (isval && (d->dim_value < 1 || d->dim_value > OX_MAX_DIM))
                return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %s '%s' has batch size %lld",
                                    c->src, what, nm, (long long)d->dim_value);
            *fixed = isval ? (int)d->dim_value : 0;
            dims[0] = 0;
            continue;
        }
        if (!isval)
            return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: %s '%s' has a symbolic "
                                "dimension %d ('%s'); only the batch may be symbolic: export "
                                "with a fixed image size", c->src, what, nm, k,
                                d && d->value_case ==
                                ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param
                                    ? d->dim_param : "?");
        if (d->dim_value < 1 || d->dim_value > OX_MAX_DIM)
            return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %s '%s' has dimension %d = %lld",
                                c->src, what, nm, k, (long long)d->dim_value);
        dims[k] = d->dim_value;
    }
    return FOOLC_OK;
}

/* The names of the graph: initializers, the one input, the node outputs. */
static foolc_status setup(ox *c)
{
    const Onnx__GraphProto *g = c->g;
    if (g->n_node > FOOLC_ONNX_MAX_NODES)
        return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %zu nodes (at most %d)", c->src, g->n_node,
                            FOOLC_ONNX_MAX_NODES);
    if (g->n_sparse_initializer)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: sparse initializers are not "
                            "supported", c->src);
    size_t nv = g->n_initializer + g->n_input + 1;
    for (size_t k = 0; k < g->n_node; k++)
        if (g->node[k]) nv += g->node[k]->n_output;
    if (nv > (size_t)4 * FOOLC_ONNX_MAX_NODES)
        return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %zu values (at most %d)", c->src, nv,
                            4 * FOOLC_ONNX_MAX_NODES);
    c->cv = (int)nv;
    c->v = foolc__calloc(nv, sizeof *c->v);
    c->hcap = 16;
    while (c->hcap < 2 * nv) c->hcap *= 2;
    c->hash = foolc__calloc(c->hcap, sizeof *c->hash);
    if (!c->v || !c->hash) return foolc__nomem("the graph");
    foolc_status st = FOOLC_OK;
    for (size_t k = 0; k < g->n_initializer; k++) {
        const Onnx__TensorProto *t = g->initializer[k];
        if (!t || !t->name || !t->name[0])
            return foolc__error(FOOLC_E_FORMAT, "onnx: %s: initializer %zu has no name", c->src, k);
        int id = add_val(c, t->name, &st);
        if (id < 0) return st;
        char what[96];
        snprintf(what, sizeof what, "initializer '%.60s'", t->name);
        ox_tensor ten;
        FOOLC__CHECK(foolc__ox_tensor(t, c->src, what, &ten));
        set_const(&c->v[id], &ten, NULL);
    }
    /* the image input: the graph inputs that no initializer gives a value to */
    int nin = 0;
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t k = 0; k < g->n_input; k++) {
        const Onnx__ValueInfoProto *vi = g->input[k];
        if (!vi || !vi->name || !vi->name[0])
            return foolc__error(FOOLC_E_FORMAT, "onnx: %s: input %zu has no name", c->src, k);
        if (find(c, vi->name) >= 0) continue;
        if (nin++ == 0) in = vi;
        else
            return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: the graph has several inputs "
                                "('%s', '%s', ...); only models of one image input are "
                                "supported", c->src, in->name, vi->name);
    }
    if (!in) return foolc__error(FOOLC_E_FORMAT, "onnx: %s: the graph has no input", c->src);
    int id = add_val(c, in->name, &st);
    if (id < 0) return st;
    val *x = &c->v[id];
    FOOLC__CHECK(declared(c, in, "input", &x->rank, x->dims, &c->fixed_batch));
    if (x->rank < 0)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: input '%s' has no shape", c->src,
                            in->name);
    if (numel(x->dims + 1, x->rank - 1) > FOOLC_ONNX_MAX_VALUES)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: input '%s' holds more than 2^28 "
                            "values per image", c->src, in->name);
    x->defined = x->dyn = 1;
    x->line = -1;
    c->input = id;
    if (g->n_output != 1)
        return foolc__error(g->n_output ? FOOLC_E_UNSUPPORTED : FOOLC_E_FORMAT,
                            "onnx: %s: the graph has %zu outputs; only models with one output "
                            "(the logits) are supported", c->src, g->n_output);
    if (!g->output[0] || !g->output[0]->name)
        return foolc__error(FOOLC_E_FORMAT, "onnx: %s: the output has no name", c->src);
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        if (!n || !n->op_type)
            return foolc__error(FOOLC_E_FORMAT, "onnx: %s: node %zu has no op type", c->src, k);
        for (size_t j = 0; j < n->n_output; j++) {
            if (!n->output[j] || !n->output[j][0]) continue;
            int o = add_val(c, n->output[j], &st);
            if (o < 0) return st;
            c->v[o].node = n->name && n->name[0] ? n->name : n->op_type;
        }
    }
    return FOOLC_OK;
}

static foolc_status convert_node(ox *c, const Onnx__NodeProto *n)
{
    c->n = n;
    c->nname = n->name && n->name[0] ? n->name : (n->n_output && n->output[0] ? n->output[0] : "?");
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
        return nerr(c, FOOLC_E_UNSUPPORTED, "domain '%s' (only the default ONNX domain)",
                    n->domain);
    for (size_t k = 0; k < n->n_input; k++) {
        if (!n->input[k] || !n->input[k][0]) continue;
        int id = find(c, n->input[k]);
        if (id >= 0 && c->v[id].dead)
            return nerr(c, FOOLC_E_UNSUPPORTED, "input '%s' is an extra output of node '%s' "
                        "(mask, indices or statistics), which the importer does not compute",
                        n->input[k], c->v[id].node);
    }
    const op_entry *e = NULL;
    for (size_t k = 0; k < sizeof k_ops / sizeof *k_ops; k++)
        if (!strcmp(k_ops[k].name, n->op_type)) e = &k_ops[k];
    if (!e) {
        /* name the attribute too, if any: the refusal names what the node asked for */
        return nerr(c, FOOLC_E_UNSUPPORTED, "op '%s' is outside the table%s%s%s", n->op_type,
                    n->n_attribute && n->attribute[0] && n->attribute[0]->name
                        ? " (its attribute '" : "",
                    n->n_attribute && n->attribute[0] && n->attribute[0]->name
                        ? n->attribute[0]->name : "",
                    n->n_attribute && n->attribute[0] && n->attribute[0]->name ? "')" : "");
    }
    if (n->n_output < 1 || !n->output[0] || !n->output[0][0])
        return nerr(c, FOOLC_E_FORMAT, "no output");
    int out = find(c, n->output[0]);
    for (size_t k = 1; k < n->n_output; k++) {
        int o = n->output[k] && n->output[k][0] ? find(c, n->output[k]) : -1;
        if (o >= 0) {
            c->v[o].defined = 1;
            c->v[o].dead = 1;
        }
    }
    FOOLC__CHECK(e->fn(c, out));
    if (c->v[out].dyn && numel(c->v[out].dims + 1, c->v[out].rank - 1) > FOOLC_ONNX_MAX_VALUES)
        return nerr(c, FOOLC_E_UNSUPPORTED, "its output holds more than 2^28 values per image");
    if (c->nl > OX_MAX_LINES)
        return nerr(c, FOOLC_E_UNSUPPORTED, "more than %d ops after folding", OX_MAX_LINES);
    if (!c->v[out].defined) return foolc__error(FOOLC_E_INTERNAL, "onnx: %s: op left its output "
                                                "undefined", n->op_type);
    return FOOLC_OK;
}

/* Kahn's order: a node runs when every input it names is defined. */
static foolc_status run_nodes(ox *c)
{
    const Onnx__GraphProto *g = c->g;
    size_t N = g->n_node;
    if (!N) return FOOLC_OK;
    int *wait = foolc__calloc(N, sizeof *wait);
    int *queue = foolc__malloc(N * sizeof *queue);
    /* consumers: for each value, the nodes waiting for it (CSR) */
    int *cnt = foolc__calloc((size_t)c->nv + 1, sizeof *cnt);
    size_t total = 0;
    for (size_t k = 0; k < N; k++) total += g->node[k]->n_input;
    int *adj = foolc__malloc((total ? total : 1) * sizeof *adj);
    foolc_status st = FOOLC_OK;
    if (!wait || !queue || !cnt || !adj) {
        st = foolc__nomem("the graph");
        goto done;
    }
    for (size_t k = 0; k < N; k++) {
        const Onnx__NodeProto *n = g->node[k];
        for (size_t j = 0; j < n->n_input; j++) {
            if (!n->input[j] || !n->input[j][0]) continue;
            int id = find(c, n->input[j]);
            if (id < 0) {
                st = foolc__error(FOOLC_E_FORMAT, "onnx: %s: node '%s' (%s): input '%s' is not "
                                  "defined anywhere in the graph", c->src,
                                  n->name ? n->name : "?", n->op_type, n->input[j]);
                goto done;
            }
            if (!c->v[id].defined) cnt[id + 1]++;
        }
    }
    for (int k = 0; k < c->nv; k++) cnt[k + 1] += cnt[k];
    {
        int *fill = foolc__malloc(((size_t)c->nv + 1) * sizeof *fill);
        if (!fill) {
            st = foolc__nomem("the graph");
            goto done;
        }
        memcpy(fill, cnt, ((size_t)c->nv + 1) * sizeof *fill);
        for (size_t k = 0; k < N; k++) {
            const Onnx__NodeProto *n = g->node[k];
            for (size_t j = 0; j < n->n_input; j++) {
                if (!n->input[j] || !n->input[j][0]) continue;
                int id = find(c, n->input[j]);
                if (!c->v[id].defined) {
                    adj[fill[id]++] = (int)k;
                    wait[k]++;
                }
            }
        }
        foolc__free(fill);
    }
    size_t qh = 0, qt = 0;
    for (size_t k = 0; k < N; k++)
        if (!wait[k]) queue[qt++] = (int)k;
    while (qh < qt && st == FOOLC_OK) {
        const Onnx__NodeProto *n = g->node[queue[qh++]];
        st = convert_node(c, n);
        for (size_t j = 0; st == FOOLC_OK && j < n->n_output; j++) {
            int o = n->output[j] && n->output[j][0] ? find(c, n->output[j]) : -1;
            if (o < 0) continue;
            for (int e = cnt[o]; e < cnt[o + 1]; e++)
                if (--wait[adj[e]] == 0) queue[qt++] = adj[e];
        }
    }
    if (st == FOOLC_OK && qt < N) {
        const Onnx__NodeProto *n = NULL;
        for (size_t k = 0; k < N && !n; k++)
            if (wait[k]) n = g->node[k];
        st = foolc__error(FOOLC_E_FORMAT, "onnx: %s: the graph has a cycle (node '%s' (%s) "
                          "depends on its own output)", c->src, n && n->name ? n->name : "?",
                          n ? n->op_type : "?");
    }
done:
    foolc__free(wait);
    foolc__free(queue);
    foolc__free(cnt);
    foolc__free(adj);
    return st;
}

static foolc_status append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap ? 2 * *cap : 4096);
        while (nc < *len + n + 1) nc *= 2;
        char *nb = foolc__realloc(*buf, nc);
        if (!nb) return foolc__nomem("the graph text");
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
    return FOOLC_OK;
}

/* The graph text of the live lines, and the archive with it and their members. */
static foolc_status emit(ox *c, int outv, char **text, foolc_npz **zout)
{
    const val *y = &c->v[outv];
    if (!y->defined || !y->dyn)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: the output '%s' does not depend "
                            "on the input", c->src, y->name);
    if (y->line < 0)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: the output '%s' is the input",
                            c->src, y->name);
    if (y->rank != 2)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: the output '%s' has rank %d; the "
                            "logits must be (N, classes)", c->src, y->name, y->rank);
    /* the last line computes the logits: mark what it needs, from the end */
    c->l[y->line].live = 1;
    for (int i = y->line; i >= 0; i--)
        if (c->l[i].live)
            for (int k = 0; k < c->l[i].nin; k++)
                if (c->v[c->l[i].in[k]].line >= 0) c->l[c->v[c->l[i].in[k]].line].live = 1;
    /* the output line is named after the graph's output */
    char oname[OX_NAME];
    sanitize(y->name, oname, sizeof oname);
    if (oname[0] && strcmp(oname, c->l[y->line].name)) {
        char keep[OX_NAME];
        snprintf(keep, sizeof keep, "%s", c->l[y->line].name);
        c->l[y->line].name[0] = '\0';
        if (!name_taken(c, oname)) snprintf(c->l[y->line].name, OX_NAME, "%s", oname);
        else snprintf(c->l[y->line].name, OX_NAME, "%s", keep);
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char tmp[512];
    const val *x = &c->v[c->input];
    int64_t d[3];
    chw(x, d);
    snprintf(tmp, sizeof tmp, "input c=%lld h=%lld w=%lld\n", (long long)d[0], (long long)d[1],
             (long long)d[2]);
    foolc_status st = append(&buf, &len, &cap, tmp);
    for (int i = 0; i <= y->line && st == FOOLC_OK; i++) {
        const line *l = &c->l[i];
        if (!l->live) continue;
        snprintf(tmp, sizeof tmp, "%s = %s(", l->name, l->op);
        st = append(&buf, &len, &cap, tmp);
        for (int k = 0; k < l->nin && st == FOOLC_OK; k++) {
            int src = c->v[l->in[k]].line;
            snprintf(tmp, sizeof tmp, "%s%s", k ? ", " : "", src < 0 ? "x" : c->l[src].name);
            st = append(&buf, &len, &cap, tmp);
        }
        snprintf(tmp, sizeof tmp, ")%s%s\n", l->opts[0] ? " " : "", l->opts);
        if (st == FOOLC_OK) st = append(&buf, &len, &cap, tmp);
    }
    foolc_npz *z = NULL;
    if (st == FOOLC_OK && zout) {
        st = foolc_npz_new(&z);
        foolc_array a;
        if (st == FOOLC_OK) {
            memset(&a, 0, sizeof a);
            a.dtype = FOOLC_U8;
            a.ndim = 1;
            a.shape[0] = (int64_t)len;
            a.data = buf;
            st = foolc_npz_add(z, "arch", &a);
        }
        for (int i = 0; i <= y->line && st == FOOLC_OK; i++) {
            const line *l = &c->l[i];
            if (!l->live) continue;
            for (int k = 0; k < l->nm && st == FOOLC_OK; k++) {
                char name[128];
                snprintf(name, sizeof name, "%s.%s", l->name, l->m[k].suffix);
                memset(&a, 0, sizeof a);
                a.dtype = FOOLC_F32;
                a.ndim = l->m[k].nd;
                for (int j = 0; j < a.ndim; j++) a.shape[j] = l->m[k].shape[j];
                a.data = l->m[k].data;
                st = foolc_npz_add(z, name, &a);
            }
        }
    }
    if (st != FOOLC_OK) {
        foolc__free(buf);
        foolc_npz_free(z);
        return st;
    }
    if (text) *text = buf;
    else foolc__free(buf);
    if (zout) *zout = z;
    return FOOLC_OK;
}

static void ox_free(ox *c)
{
    for (int i = 0; i < c->nv; i++) {
        foolc__ox_tensor_free(&c->v[i].t);
        foolc__free(c->v[i].sym);
    }
    for (int i = 0; i < c->nl; i++) {
        foolc__free(c->l[i].in);
        for (int k = 0; k < c->l[i].nm; k++) foolc__free(c->l[i].m[k].data);
    }
    foolc__free(c->v);
    foolc__free(c->hash);
    foolc__free(c->l);
}

foolc_status foolc__onnx_convert(const void *data, size_t size, const char *src, char **arch,
                                 foolc_npz **z)
{
    if (arch) *arch = NULL;
    if (z) *z = NULL;
    if (!src) src = "onnx";
    ox_proto p;
    FOOLC__CHECK(foolc__ox_parse(data, size, src, &p));
    ox c;
    memset(&c, 0, sizeof c);
    c.src = src;
    t_max_fold = (int64_t)(size > ((size_t)1 << 22) ? size : ((size_t)1 << 22));
    foolc_status st = check_model(&c, p.model);
    if (st == FOOLC_OK) {
        c.g = p.model->graph;
        st = setup(&c);
    }
    if (st == FOOLC_OK) st = run_nodes(&c);
    if (st == FOOLC_OK) {
        int o = find(&c, c.g->output[0]->name);
        if (o < 0 || !c.v[o].defined)
            st = foolc__error(FOOLC_E_FORMAT, "onnx: %s: no node computes the output '%s'", src,
                              c.g->output[0]->name);
        else
            st = emit(&c, o, arch, z);
    }
    ox_free(&c);
    foolc__ox_proto_free(&p);
    return st;
}

foolc_status foolc__onnx_load_mem(const void *data, size_t size, const char *src,
                                  foolc_net **out)
{
    if (!out) return foolc__error(FOOLC_E_INVALID, "net: out is NULL");
    *out = NULL;
    if (!src) src = "onnx";
    foolc_npz *z = NULL;
    FOOLC__CHECK(foolc__onnx_convert(data, size, src, NULL, &z));
    /* the engine's own constructor, with the file's name in its messages */
    foolc_status st = foolc__nn_from_npz_src(z, src, out);
    foolc_npz_free(z);
    return st;
}

int foolc__onnx_sniff(const char *path)
{
    if (!path) return 0;
    size_t n = strlen(path);
    if (n >= 5) {
        const char *e = path + n - 5;
        if (e[0] == '.' && tolower((unsigned char)e[1]) == 'o' && tolower((unsigned char)e[2]) == 'n' &&
            tolower((unsigned char)e[3]) == 'n' && tolower((unsigned char)e[4]) == 'x')
            return 1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char b[2] = { 0, 0 };
    size_t got = fread(b, 1, 2, f);
    fclose(f);
    return got == 2 && b[0] == 0x08 && b[1] != 'K';
}

foolc_status foolc__onnx_load(const char *path, foolc_net **out)
{
    if (!out) return foolc__error(FOOLC_E_INVALID, "net: out is NULL");
    *out = NULL;
    if (!path) return foolc__error(FOOLC_E_INVALID, "net: load: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return foolc__error(FOOLC_E_IO, "onnx: %s: cannot open", path);
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0) sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return foolc__error(FOOLC_E_IO, "onnx: %s: cannot read its size", path);
    }
    if ((unsigned long)sz > FOOLC_ONNX_MAX_FILE) {
        fclose(f);
        return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %ld bytes, more than a protobuf message "
                            "can hold (2 GB)", path, sz);
    }
    unsigned char *buf = foolc__malloc((size_t)sz ? (size_t)sz : 1);
    if (!buf) {
        fclose(f);
        return foolc__nomem("the ONNX file");
    }
    size_t got = fread(buf, 1, (size_t)sz, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != (size_t)sz) {
        foolc__free(buf);
        return foolc__error(FOOLC_E_IO, "onnx: %s: read %zu of %ld bytes", path, got, sz);
    }
    foolc_status st = foolc__onnx_load_mem(buf, got, path, out);
    foolc__free(buf);
    return st;
}
