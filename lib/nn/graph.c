/* The graph architecture text (docs/net.md, "Graph architecture text"): parsing
 * "input c=1 h=28 w=28; a = conv2d(x) out=16 k=3; ..." into nodes with checked options,
 * inputs and shapes, errors naming the line, the members of each node, the canonical text,
 * initial parameters and FLOPs. */
#include "nn/graph.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ops and their options ----------------------------------------------------------- */

enum {
    K_OUT, K_K, K_S, K_P, K_D, K_GROUPS, K_BIAS, K_CONST, K_VALUE, K_LEFT, K_ALPHA, K_BETA,
    K_MIN, K_MAX, K_EPS, K_SLOPES, K_COUNT_PAD, K_SHAPE, K_PERM, K_AXIS, K_PADS, K_NKEYS
};
static const char *const k_keys[K_NKEYS] = {
    "out", "k", "s", "p", "d", "groups", "bias", "const", "value", "left", "alpha", "beta",
    "min", "max", "eps", "slopes", "count_pad", "shape", "perm", "axis", "pads"
};
/* Value types: integer list (1..4), real, word. */
enum { T_INTS, T_REAL, T_WORD };
static const int k_type[K_NKEYS] = {
    T_INTS, T_INTS, T_INTS, T_INTS, T_INTS, T_INTS, T_INTS, T_WORD, T_REAL, T_INTS, T_REAL,
    T_REAL, T_REAL, T_REAL, T_REAL, T_WORD, T_INTS, T_INTS, T_INTS, T_INTS, T_INTS
};

#define B(k) (1u << (k))
typedef struct gop_info {
    const char *name;
    int nin;                     /* inputs: 1, 2, -1 (1 or 2: binary ops), -2 (2 or more) */
    unsigned keys, required;
} gop_info;

static const gop_info k_ops[G_COUNT] = {
    [G_CONV] = { "conv2d", 1, B(K_OUT) | B(K_K) | B(K_S) | B(K_P) | B(K_D) | B(K_GROUPS) |
                 B(K_BIAS), B(K_OUT) | B(K_K) },
    [G_DENSE] = { "dense", 1, B(K_OUT) | B(K_BIAS), B(K_OUT) },
    [G_ADD] = { "add", -1, B(K_CONST) | B(K_VALUE) | B(K_LEFT), 0 },
    [G_SUB] = { "sub", -1, B(K_CONST) | B(K_VALUE) | B(K_LEFT), 0 },
    [G_MUL] = { "mul", -1, B(K_CONST) | B(K_VALUE) | B(K_LEFT), 0 },
    [G_DIV] = { "div", -1, B(K_CONST) | B(K_VALUE) | B(K_LEFT), 0 },
    [G_RELU] = { "relu", 1, 0, 0 },
    [G_LEAKYRELU] = { "leakyrelu", 1, B(K_ALPHA), 0 },
    [G_PRELU] = { "prelu", 1, B(K_SLOPES), 0 },
    [G_SIGMOID] = { "sigmoid", 1, 0, 0 },
    [G_TANH] = { "tanh", 1, 0, 0 },
    [G_CLIP] = { "clip", 1, B(K_MIN) | B(K_MAX), 0 },
    [G_ELU] = { "elu", 1, B(K_ALPHA), 0 },
    [G_SOFTPLUS] = { "softplus", 1, 0, 0 },
    [G_ERF] = { "erf", 1, 0, 0 },
    [G_HARDSIGMOID] = { "hardsigmoid", 1, B(K_ALPHA) | B(K_BETA), 0 },
    [G_HARDSWISH] = { "hardswish", 1, 0, 0 },
    [G_IDENTITY] = { "identity", 1, 0, 0 },
    [G_BN] = { "batchnorm", 1, B(K_EPS), 0 },
    [G_MAXPOOL] = { "maxpool2d", 1, B(K_K) | B(K_S) | B(K_P), B(K_K) },
    [G_AVGPOOL] = { "avgpool2d", 1, B(K_K) | B(K_S) | B(K_P) | B(K_COUNT_PAD), B(K_K) },
    [G_GAP] = { "globalavgpool", 1, 0, 0 },
    [G_FLATTEN] = { "flatten", 1, 0, 0 },
    [G_RESHAPE] = { "reshape", 1, B(K_SHAPE), B(K_SHAPE) },
    [G_TRANSPOSE] = { "transpose", 1, B(K_PERM), B(K_PERM) },
    [G_CONCAT] = { "concat", -2, B(K_AXIS), 0 },
    [G_PAD] = { "pad", 1, B(K_PADS) | B(K_VALUE), B(K_PADS) },
    [G_SOFTMAX] = { "softmax", 1, 0, 0 },
    [G_LOGSOFTMAX] = { "logsoftmax", 1, 0, 0 },
};

/* The layers that mirror graph nodes have kinds of their own (name and nothing else), so
 * code written for sequential layers (lib/certify) never mistakes a node for one. */
#define GK(op) { .name = #op, .real_key = -1 }
static const nn_kind k_gkinds[G_COUNT] = {
    GK(conv2d), GK(dense), GK(add), GK(sub), GK(mul), GK(div), GK(relu), GK(leakyrelu),
    GK(prelu), GK(sigmoid), GK(tanh), GK(clip), GK(elu), GK(softplus), GK(erf),
    GK(hardsigmoid), GK(hardswish), GK(identity), GK(batchnorm), GK(maxpool2d), GK(avgpool2d),
    GK(globalavgpool), GK(flatten), GK(reshape), GK(transpose), GK(concat), GK(pad),
    GK(softmax), GK(logsoftmax),
};

const char *foolc__nn_gop_name(nn_gop op) { return (int)op >= 0 && op < G_COUNT ? k_ops[op].name : "?"; }

/* ---- text helpers -------------------------------------------------------------------- */

int foolc__nn_graph_is(const char *arch)
{
    const char *p = arch, *beg, *end;
    int first = 1;
    while (foolc__nn_next_segment(&p, &beg, &end)) {
        if (!first && memchr(beg, '(', (size_t)(end - beg))) return 1;
        first = 0;
    }
    return 0;
}

static void trim(const char **b, const char **e)
{
    while (*b < *e && foolc__nn_is_space(**b)) (*b)++;
    while (*e > *b && foolc__nn_is_space((*e)[-1])) (*e)--;
}

static int valid_name(const char *b, const char *e)
{
    if (e <= b || e - b >= NN_GRAPH_NAME) return 0;
    for (const char *s = b; s < e; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* ---- parsing state ------------------------------------------------------------------- */

typedef struct gline {
    const char *beg, *end;       /* the segment */
    char name[NN_GRAPH_NAME];    /* the output name ("" when malformed) */
    char op[32];
    const char *ins, *ins_end;   /* inside the parentheses */
    const char *opts;            /* after ')' */
} gline;

typedef struct gparse {
    gline *lines;                /* lines[0] is the input */
    int32_t count;
    const gline *cur;
    int32_t cur_line;
} gparse;

static foolc_status gerr(const gparse *gp, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static foolc_status gerr(const gparse *gp, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const gline *l = gp->cur;
    if (l->name[0] && l->op[0])
        return foolc__error(FOOLC_E_INVALID, "net: line %d (%s = %s): %s", (int)gp->cur_line,
                            l->name, l->op, msg);
    return foolc__error(FOOLC_E_INVALID, "net: line %d: %s", (int)gp->cur_line, msg);
}

/* Splits line i into name, op, inputs and options (syntax only). */
static foolc_status split_line(gparse *gp, int32_t i)
{
    gline *l = &gp->lines[i];
    gp->cur = l;
    gp->cur_line = i + 1;
    const char *eq = memchr(l->beg, '=', (size_t)(l->end - l->beg));
    const char *lp = memchr(l->beg, '(', (size_t)(l->end - l->beg));
    if (!lp) {
        char first[64];
        size_t k = 0;
        for (const char *s = l->beg; s < l->end && !foolc__nn_is_space(*s) && k + 1 < sizeof first; s++)
            first[k++] = *s;
        first[k] = '\0';
        if (strcmp(first, "input") == 0) return gerr(gp, "'input' may only be the first line");
        return gerr(gp, "expected 'name = op(inputs) options' (a graph text cannot mix in "
                        "sequential lines such as '%s')", first);
    }
    if (!eq || eq > lp) return gerr(gp, "expected 'name = op(inputs) options'");
    const char *nb = l->beg, *ne = eq;
    trim(&nb, &ne);
    if (!valid_name(nb, ne))
        return gerr(gp, "bad output name '%.*s' (1 to %d characters of A-Z, a-z, 0-9, _)",
                    (int)(ne - nb > 80 ? 80 : ne - nb), nb, NN_GRAPH_NAME - 1);
    memcpy(l->name, nb, (size_t)(ne - nb));
    l->name[ne - nb] = '\0';
    const char *ob = eq + 1, *oe = lp;
    trim(&ob, &oe);
    if (oe <= ob || oe - ob >= (ptrdiff_t)sizeof l->op || !valid_name(ob, oe))
        return gerr(gp, "bad op name '%.*s'", (int)(oe - ob > 40 ? 40 : oe - ob), ob);
    memcpy(l->op, ob, (size_t)(oe - ob));
    l->op[oe - ob] = '\0';
    const char *rp = memchr(lp, ')', (size_t)(l->end - lp));
    if (!rp) return gerr(gp, "missing ')' after the inputs");
    l->ins = lp + 1;
    l->ins_end = rp;
    l->opts = rp + 1;
    return FOOLC_OK;
}

static int32_t find_line(const gparse *gp, const char *name, size_t len)
{
    for (int32_t j = 1; j < gp->count; j++)
        if (strlen(gp->lines[j].name) == len && memcmp(gp->lines[j].name, name, len) == 0)
            return j;
    return -1;
}

/* Whether line `from` reaches line `target` through its inputs (a cycle check). */
static int reaches(const gparse *gp, int32_t from, int32_t target, unsigned char *seen)
{
    if (from == target) return 1;
    if (seen[from]) return 0;
    seen[from] = 1;
    const gline *l = &gp->lines[from];
    if (!l->ins) return 0;
    const char *s = l->ins;
    while (s < l->ins_end) {
        const char *c = memchr(s, ',', (size_t)(l->ins_end - s));
        const char *e = c ? c : l->ins_end;
        const char *b = s;
        trim(&b, &e);
        int32_t j = find_line(gp, b, (size_t)(e - b));
        if (j > 0 && reaches(gp, j, target, seen)) return 1;
        s = c ? c + 1 : l->ins_end;
    }
    return 0;
}

/* ---- options ------------------------------------------------------------------------- */

typedef struct gopts {
    unsigned given;
    int nv[K_NKEYS];
    int64_t iv[K_NKEYS][4];
    double rv[K_NKEYS];
    char wv[K_NKEYS][8];
} gopts;

static foolc_status parse_opts(const gparse *gp, const gop_info *oi, gopts *o)
{
    memset(o, 0, sizeof *o);
    const char *s = gp->cur->opts, *end = gp->cur->end;
    char tok[160];
    for (;;) {
        while (s < end && foolc__nn_is_space(*s)) s++;
        if (s >= end) break;
        size_t k = 0;
        while (s < end && !foolc__nn_is_space(*s)) {
            if (k + 1 < sizeof tok) tok[k++] = *s;
            s++;
        }
        tok[k] = '\0';
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok) return gerr(gp, "expected key=value, got '%s'", tok);
        *eq = '\0';
        const char *val = eq + 1;
        int key = -1;
        for (int i = 0; i < K_NKEYS; i++)
            if (strcmp(k_keys[i], tok) == 0) key = i;
        if (key < 0 || !(oi->keys & B(key))) return gerr(gp, "unknown option '%s'", tok);
        if (o->given & B(key)) return gerr(gp, "option '%s' given twice", tok);
        o->given |= B(key);
        if (k_type[key] == T_REAL) {
            char *e = NULL;
            double v = strtod(val, &e);
            int inf_ok = key == K_MIN || key == K_MAX;
            if (!*val || *e || isnan(v) || (!inf_ok && !isfinite(v)))
                return gerr(gp, "option '%s' must be a %snumber, got '%s'", tok,
                            inf_ok ? "" : "finite ", val);
            if (key == K_EPS && !(v > 0))
                return gerr(gp, "option 'eps' must be a positive number, got '%s'", val);
            o->rv[key] = v;
        } else if (k_type[key] == T_WORD) {
            if (strlen(val) >= sizeof o->wv[key] || !*val)
                return gerr(gp, "option '%s' has a bad value '%s'", tok, val);
            strcpy(o->wv[key], val);
        } else {
            int n = 0;
            const char *q = val;
            for (;;) {
                int64_t v = 0;
                size_t nd = 0;
                while (*q >= '0' && *q <= '9' && nd < 9) {
                    v = v * 10 + (*q - '0');
                    q++;
                    nd++;
                }
                if (nd == 0 || (*q && *q != ',') || n == 4 || v > NN_MAX_DIM)
                    return gerr(gp, "option '%s' must be 1 to 4 comma-separated integers in "
                                    "[0, %d], got '%s'", tok, NN_MAX_DIM, val);
                o->iv[key][n++] = v;
                if (!*q) break;
                q++;
            }
            o->nv[key] = n;
        }
    }
    for (int i = 0; i < K_NKEYS; i++)
        if ((oi->required & B(i)) && !(o->given & B(i)))
            return gerr(gp, "missing option '%s'", k_keys[i]);
    return FOOLC_OK;
}

/* An integer option with 1 value (or allowed counts in mask: bit c for c values). */
static foolc_status opt_ints(const gparse *gp, const gopts *o, int key, unsigned counts,
                             int64_t lo, int64_t hi, int64_t *v, int *n)
{
    if (!(o->given & B(key))) return FOOLC_OK;
    if (!(counts & (1u << o->nv[key])))
        return gerr(gp, "option '%s' has %d values, expected %s", k_keys[key], o->nv[key],
                    counts == 2u ? "1" : counts == 6u ? "1 or 2" : counts == 18u ? "1 or 4"
                    : counts == 16u ? "4" : counts == 8u ? "3" : "1 to 3");
    for (int i = 0; i < o->nv[key]; i++)
        if (o->iv[key][i] < lo || o->iv[key][i] > hi)
            return gerr(gp, "option '%s' must be in [%lld, %lld], got %lld", k_keys[key],
                        (long long)lo, (long long)hi, (long long)o->iv[key][i]);
    for (int i = 0; i < o->nv[key]; i++) v[i] = o->iv[key][i];
    if (n) *n = o->nv[key];
    return FOOLC_OK;
}

/* Kernel-like option: 1 value (square) or 2 (h, w). */
static foolc_status opt_hw(const gparse *gp, const gopts *o, int key, int64_t lo, int32_t def,
                           int32_t *h, int32_t *w)
{
    int64_t v[4] = { def, def, 0, 0 };
    int n = 1;
    FOOLC__CHECK(opt_ints(gp, o, key, 6u, lo, NN_MAX_DIM, v, &n));
    *h = (int32_t)v[0];
    *w = (int32_t)(n == 2 ? v[1] : v[0]);
    return FOOLC_OK;
}

/* Pads: 1 value (all four) or 4 (t, l, b, r). */
static foolc_status opt_pads(const gparse *gp, const gopts *o, int key, nn_gnode *nd)
{
    int64_t v[4] = { 0, 0, 0, 0 };
    int n = 1;
    FOOLC__CHECK(opt_ints(gp, o, key, 18u, 0, NN_MAX_DIM, v, &n));
    if (n == 1) v[1] = v[2] = v[3] = v[0];
    nd->pt = (int32_t)v[0];
    nd->pl = (int32_t)v[1];
    nd->pb = (int32_t)v[2];
    nd->pr = (int32_t)v[3];
    return FOOLC_OK;
}

static foolc_status opt_flag(const gparse *gp, const gopts *o, int key, int def, int *out)
{
    int64_t v = def;
    FOOLC__CHECK(opt_ints(gp, o, key, 2u, 0, 1, &v, NULL));
    *out = (int)v;
    return FOOLC_OK;
}

static double opt_real(const gopts *o, int key, double def)
{
    return (o->given & B(key)) ? o->rv[key] : def;
}

/* ---- node semantics ------------------------------------------------------------------ */

static foolc_status window(const gparse *gp, nn_gnode *nd, nn_dims in, int pool)
{
    int64_t ekh = (int64_t)nd->dh * (nd->kh - 1) + 1, ekw = (int64_t)nd->dw * (nd->kw - 1) + 1;
    int64_t ph = (int64_t)in.h + nd->pt + nd->pb, pw = (int64_t)in.w + nd->pl + nd->pr;
    if (ekh > ph || ekw > pw)
        return gerr(gp, "kernel %lldx%lld is larger than the padded input %lldx%lld",
                    (long long)ekh, (long long)ekw, (long long)ph, (long long)pw);
    if (pool && (nd->pt >= nd->kh || nd->pb >= nd->kh || nd->pl >= nd->kw || nd->pr >= nd->kw))
        return gerr(gp, "pads %d,%d,%d,%d: each must be smaller than the kernel %dx%d",
                    (int)nd->pt, (int)nd->pl, (int)nd->pb, (int)nd->pr, (int)nd->kh,
                    (int)nd->kw);
    nd->od.c = pool ? in.c : nd->out;
    nd->od.h = (int32_t)((ph - ekh) / nd->sh + 1);
    nd->od.w = (int32_t)((pw - ekw) / nd->sw + 1);
    return FOOLC_OK;
}

static int flat(nn_dims d) { return d.h == 1 && d.w == 1; }

static foolc_status node_init(gparse *gp, nn_gnode *nd, const nn_dims *td, int last)
{
    const gop_info *oi = &k_ops[nd->op];
    gopts o;
    FOOLC__CHECK(parse_opts(gp, oi, &o));
    const nn_dims in = td[nd->in[0]];
    nd->od = in;
    switch (nd->op) {
    case G_CONV: {
        int64_t v = 0;
        FOOLC__CHECK(opt_ints(gp, &o, K_OUT, 2u, 1, NN_MAX_DIM, &v, NULL));
        nd->out = (int32_t)v;
        FOOLC__CHECK(opt_hw(gp, &o, K_K, 1, 1, &nd->kh, &nd->kw));
        FOOLC__CHECK(opt_hw(gp, &o, K_S, 1, 1, &nd->sh, &nd->sw));
        FOOLC__CHECK(opt_hw(gp, &o, K_D, 1, 1, &nd->dh, &nd->dw));
        FOOLC__CHECK(opt_pads(gp, &o, K_P, nd));
        v = 1;
        FOOLC__CHECK(opt_ints(gp, &o, K_GROUPS, 2u, 1, NN_MAX_DIM, &v, NULL));
        nd->groups = (int32_t)v;
        FOOLC__CHECK(opt_flag(gp, &o, K_BIAS, 1, &nd->bias));
        if (in.c % nd->groups || nd->out % nd->groups)
            return gerr(gp, "groups=%d must divide the input channels %d and out=%d",
                        (int)nd->groups, (int)in.c, (int)nd->out);
        FOOLC__CHECK(window(gp, nd, in, 0));
        nd->nw = (int64_t)nd->out * (in.c / nd->groups) * nd->kh * nd->kw;
        nd->nb = nd->bias ? nd->out : 0;
        break;
    }
    case G_DENSE: {
        int64_t v = 0;
        FOOLC__CHECK(opt_ints(gp, &o, K_OUT, 2u, 1, NN_MAX_DIM, &v, NULL));
        nd->out = (int32_t)v;
        FOOLC__CHECK(opt_flag(gp, &o, K_BIAS, 1, &nd->bias));
        if (!flat(in))
            return gerr(gp, "input is %dx%dx%d, not flat; put 'flatten' before it", (int)in.c,
                        (int)in.h, (int)in.w);
        nd->od.c = nd->out;
        nd->nw = (int64_t)nd->out * in.c;
        nd->nb = nd->bias ? nd->out : 0;
        break;
    }
    case G_ADD: case G_SUB: case G_MUL: case G_DIV: {
        FOOLC__CHECK(opt_flag(gp, &o, K_LEFT, 0, &nd->left));
        int hc = (o.given & B(K_CONST)) != 0, hv = (o.given & B(K_VALUE)) != 0;
        if (nd->nin == 2) {
            if (hc || hv || (o.given & B(K_LEFT)))
                return gerr(gp, "options const, value and left are for one input and a "
                                "constant, not two inputs");
            nd->cmode = G_C_TENSOR;
            const nn_dims a = td[nd->in[0]], b = td[nd->in[1]];
            if ((a.c != b.c && a.c != 1 && b.c != 1) || (a.h != b.h && a.h != 1 && b.h != 1) ||
                (a.w != b.w && a.w != 1 && b.w != 1))
                return gerr(gp, "shapes %dx%dx%d and %dx%dx%d do not broadcast", (int)a.c,
                            (int)a.h, (int)a.w, (int)b.c, (int)b.h, (int)b.w);
            nd->od.c = a.c > b.c ? a.c : b.c;
            nd->od.h = a.h > b.h ? a.h : b.h;
            nd->od.w = a.w > b.w ? a.w : b.w;
            break;
        }
        if (hc == hv) return gerr(gp, "one input needs a constant: give const=c|1|chw or value=R");
        if (hv) {
            nd->cmode = G_C_VALUE;
            nd->value = o.rv[K_VALUE];
            if ((nd->op == G_DIV && !nd->left) && nd->value == 0)
                return gerr(gp, "division by value=0");
        } else {
            const char *w = o.wv[K_CONST];
            if (strcmp(w, "c") == 0) {
                nd->cmode = G_C_CHANNEL;
                nd->nc = in.c;
            } else if (strcmp(w, "1") == 0) {
                nd->cmode = G_C_SCALAR;
                nd->nc = 1;
            } else if (strcmp(w, "chw") == 0) {
                nd->cmode = G_C_FULL;
                nd->nc = nn_numel(in);
            } else {
                return gerr(gp, "option 'const' must be c, 1 or chw, got '%s'", w);
            }
        }
        break;
    }
    case G_LEAKYRELU: nd->alpha = opt_real(&o, K_ALPHA, 0.01); break;
    case G_ELU: nd->alpha = opt_real(&o, K_ALPHA, 1.0); break;
    case G_PRELU: {
        const char *w = (o.given & B(K_SLOPES)) ? o.wv[K_SLOPES] : "c";
        if (strcmp(w, "c") == 0) nd->slopes = in.c;
        else if (strcmp(w, "1") == 0) nd->slopes = 1;
        else return gerr(gp, "option 'slopes' must be c or 1, got '%s'", w);
        nd->nw = nd->slopes;
        break;
    }
    case G_CLIP:
        nd->vmin = opt_real(&o, K_MIN, -INFINITY);
        nd->vmax = opt_real(&o, K_MAX, INFINITY);
        if (!(nd->vmin <= nd->vmax)) return gerr(gp, "min=%g is above max=%g", nd->vmin, nd->vmax);
        break;
    case G_HARDSIGMOID:
        nd->alpha = opt_real(&o, K_ALPHA, 0.2);
        nd->beta = opt_real(&o, K_BETA, 0.5);
        break;
    case G_BN:
        nd->eps = opt_real(&o, K_EPS, 1e-5);
        nd->nw = nd->nb = nd->ns = in.c;
        break;
    case G_MAXPOOL: case G_AVGPOOL:
        FOOLC__CHECK(opt_hw(gp, &o, K_K, 1, 1, &nd->kh, &nd->kw));
        FOOLC__CHECK(opt_hw(gp, &o, K_S, 1, 0, &nd->sh, &nd->sw));
        if (!(o.given & B(K_S))) {
            nd->sh = nd->kh;
            nd->sw = nd->kw;
        }
        nd->dh = nd->dw = 1;
        FOOLC__CHECK(opt_pads(gp, &o, K_P, nd));
        FOOLC__CHECK(opt_flag(gp, &o, K_COUNT_PAD, 1, &nd->count_pad));
        FOOLC__CHECK(window(gp, nd, in, 1));
        break;
    case G_GAP: nd->od.h = nd->od.w = 1; break;
    case G_FLATTEN:
        nd->od.c = (int32_t)nn_numel(in);
        nd->od.h = nd->od.w = 1;
        break;
    case G_RESHAPE: {
        int64_t v[4] = { 1, 1, 1, 1 };
        int n = 0;
        FOOLC__CHECK(opt_ints(gp, &o, K_SHAPE, 14u, 1, NN_MAX_TENSOR, v, &n));
        if (v[0] * v[1] * v[2] != nn_numel(in))
            return gerr(gp, "shape %lldx%lldx%lld has %lld values, the input %dx%dx%d has %lld",
                        (long long)v[0], (long long)v[1], (long long)v[2],
                        (long long)(v[0] * v[1] * v[2]), (int)in.c, (int)in.h, (int)in.w,
                        (long long)nn_numel(in));
        nd->shape[0] = nd->od.c = (int32_t)v[0];
        nd->shape[1] = nd->od.h = (int32_t)v[1];
        nd->shape[2] = nd->od.w = (int32_t)v[2];
        break;
    }
    case G_TRANSPOSE: {
        int64_t v[4] = { 0, 0, 0, 0 };
        FOOLC__CHECK(opt_ints(gp, &o, K_PERM, 8u, 0, 2, v, NULL));
        if (v[0] == v[1] || v[0] == v[2] || v[1] == v[2])
            return gerr(gp, "perm=%d,%d,%d is not a permutation of 0,1,2", (int)v[0], (int)v[1],
                        (int)v[2]);
        const int32_t d[3] = { in.c, in.h, in.w };
        for (int i = 0; i < 3; i++) nd->perm[i] = (int32_t)v[i];
        nd->od.c = d[v[0]];
        nd->od.h = d[v[1]];
        nd->od.w = d[v[2]];
        break;
    }
    case G_CONCAT: {
        int64_t ax = 0;
        FOOLC__CHECK(opt_ints(gp, &o, K_AXIS, 2u, 0, 2, &ax, NULL));
        nd->axis = (int)ax;
        int32_t d0[3] = { in.c, in.h, in.w };
        int64_t sum = 0;
        for (int32_t j = 0; j < nd->nin; j++) {
            const nn_dims b = td[nd->in[j]];
            const int32_t d[3] = { b.c, b.h, b.w };
            for (int k = 0; k < 3; k++)
                if (k != nd->axis && d[k] != d0[k])
                    return gerr(gp, "input %d is %dx%dx%d, input 0 is %dx%dx%d: they differ "
                                    "off axis %d", (int)j, (int)b.c, (int)b.h, (int)b.w,
                                (int)in.c, (int)in.h, (int)in.w, nd->axis);
            sum += d[nd->axis];
        }
        if (sum > NN_MAX_DIM) return gerr(gp, "the concatenated axis is too long");
        d0[nd->axis] = (int32_t)sum;
        nd->od.c = d0[0];
        nd->od.h = d0[1];
        nd->od.w = d0[2];
        break;
    }
    case G_PAD: {
        int64_t v[4] = { 0, 0, 0, 0 };
        FOOLC__CHECK(opt_ints(gp, &o, K_PADS, 16u, 0, NN_MAX_DIM, v, NULL));
        nd->pt = (int32_t)v[0];
        nd->pl = (int32_t)v[1];
        nd->pb = (int32_t)v[2];
        nd->pr = (int32_t)v[3];
        nd->value = opt_real(&o, K_VALUE, 0.0);
        if ((int64_t)in.h + v[0] + v[2] > NN_MAX_DIM || (int64_t)in.w + v[1] + v[3] > NN_MAX_DIM)
            return gerr(gp, "the padded input is too large");
        nd->od.h = in.h + nd->pt + nd->pb;
        nd->od.w = in.w + nd->pl + nd->pr;
        break;
    }
    case G_SOFTMAX: case G_LOGSOFTMAX:
        if (!flat(in))
            return gerr(gp, "input is %dx%dx%d, not flat; put 'flatten' before it", (int)in.c,
                        (int)in.h, (int)in.w);
        if (!last) return gerr(gp, "%s may only be the last line", oi->name);
        break;
    default: break;
    }
    if (nd->od.c < 1 || nd->od.h < 1 || nd->od.w < 1 || nn_numel(nd->od) > NN_MAX_TENSOR)
        return gerr(gp, "output %dx%dx%d is empty or too large", (int)nd->od.c, (int)nd->od.h,
                    (int)nd->od.w);
    return FOOLC_OK;
}

/* Resolves the inputs of the current line (ids: 0 = x, j = line j's node j - 1). */
static foolc_status node_inputs(gparse *gp, int32_t i, nn_gnode *nd, nn_gnode *nodes)
{
    const gline *l = &gp->lines[i];
    int32_t cap = 1;
    for (const char *s = l->ins; s < l->ins_end; s++) cap += *s == ',';
    nd->in = foolc__calloc((size_t)cap, sizeof *nd->in);
    if (!nd->in) return foolc__nomem("the graph");
    const char *s = l->ins;
    nd->nin = 0;
    while (s <= l->ins_end) {
        const char *c = memchr(s, ',', (size_t)(l->ins_end - s));
        const char *e = c ? c : l->ins_end;
        const char *b = s;
        trim(&b, &e);
        if (b == e) {
            if (!c && nd->nin == 0) return gerr(gp, "no inputs");
            return gerr(gp, "an empty input name");
        }
        size_t len = (size_t)(e - b);
        int32_t id = -1;
        if (len == 1 && *b == 'x') id = 0;
        for (int32_t j = 1; j < i && id < 0; j++)
            if (strlen(gp->lines[j].name) == len && memcmp(gp->lines[j].name, b, len) == 0)
                id = j;
        if (id < 0) {
            int32_t later = find_line(gp, b, len);
            if (later == i) return gerr(gp, "input '%.*s' is this line's own output (a cycle)",
                                        (int)len, b);
            if (later > i) {
                unsigned char *seen = foolc__calloc((size_t)gp->count, 1);
                if (!seen) return foolc__nomem("the graph");
                int cyc = reaches(gp, later, i, seen);
                foolc__free(seen);
                return gerr(gp, "input '%.*s' is defined below, at line %d; %s", (int)len, b,
                            (int)later + 1, cyc ? "it depends on this line: a cycle"
                                                : "lines must come after their inputs");
            }
            return gerr(gp, "unknown input '%.*s'", (int)(len > 80 ? 80 : len), b);
        }
        nd->in[nd->nin++] = id;
        if (id > 0) nodes[id - 1].uses++;
        if (!c) break;
        s = c + 1;
    }
    const int want = k_ops[nd->op].nin;
    if ((want > 0 && nd->nin != want) || (want == -1 && nd->nin > 2) ||
        (want == -2 && nd->nin < 2))
        return gerr(gp, "%d inputs, %s takes %s", (int)nd->nin, k_ops[nd->op].name,
                    want == 1 ? "1" : want == -1 ? "1 (and a constant) or 2" : "2 or more");
    return FOOLC_OK;
}

void foolc__nn_graph_free(nn_graph *g)
{
    if (!g) return;
    if (g->nodes)
        for (int32_t i = 0; i < g->N; i++) foolc__free(g->nodes[i].in);
    if (g->impl)
        for (int32_t i = 0; i < g->N; i++) foolc__nn_gconv_free(g->impl[i]);
    foolc__free(g->impl);
    foolc__free(g->nodes);
    foolc__free(g->dims);
    foolc__free(g->buf);
    foolc__free(g);
}

/* ---- canonical text ------------------------------------------------------------------ */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int fail;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->fail) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->fail = 1;
            return;
        }
        if ((size_t)k < b->cap - b->len) {
            b->len += (size_t)k;
            return;
        }
        size_t nc = b->cap * 2 + (size_t)k + 64;
        char *ns = foolc__malloc(nc);
        if (!ns) {
            b->fail = 1;
            return;
        }
        memcpy(ns, b->s, b->len + 1);
        foolc__free(b->s);
        b->s = ns;
        b->cap = nc;
    }
}

static void sb_real(sbuf *b, const char *key, double v)
{
    char t[48];
    if (isinf(v)) snprintf(t, sizeof t, v > 0 ? "inf" : "-inf");
    else foolc__nn_fmt_real(t, sizeof t, v);
    sb_printf(b, " %s=%s", key, t);
}

static void sb_hw(sbuf *b, const char *key, int32_t h, int32_t w)
{
    if (h == w) sb_printf(b, " %s=%d", key, (int)h);
    else sb_printf(b, " %s=%d,%d", key, (int)h, (int)w);
}

static void sb_pads(sbuf *b, const char *key, const nn_gnode *nd)
{
    if (nd->pt == nd->pl && nd->pt == nd->pb && nd->pt == nd->pr)
        sb_printf(b, " %s=%d", key, (int)nd->pt);
    else
        sb_printf(b, " %s=%d,%d,%d,%d", key, (int)nd->pt, (int)nd->pl, (int)nd->pb, (int)nd->pr);
}

static foolc_status canonical(foolc_net *net)
{
    const nn_graph *g = net->graph;
    sbuf b = { NULL, 0, 256, 0 };
    b.s = foolc__malloc(b.cap);
    if (!b.s) return foolc__nomem("the architecture text");
    b.s[0] = '\0';
    sb_printf(&b, "input c=%d h=%d w=%d", (int)net->in.c, (int)net->in.h, (int)net->in.w);
    for (int32_t i = 0; i < g->N; i++) {
        const nn_gnode *nd = &g->nodes[i];
        sb_printf(&b, "; %s = %s(", nd->name, k_ops[nd->op].name);
        for (int32_t j = 0; j < nd->nin; j++)
            sb_printf(&b, "%s%s", j ? ", " : "", nd->in[j] ? g->nodes[nd->in[j] - 1].name : "x");
        sb_printf(&b, ")");
        switch (nd->op) {
        case G_CONV:
            sb_printf(&b, " out=%d", (int)nd->out);
            sb_hw(&b, "k", nd->kh, nd->kw);
            sb_hw(&b, "s", nd->sh, nd->sw);
            sb_pads(&b, "p", nd);
            sb_hw(&b, "d", nd->dh, nd->dw);
            sb_printf(&b, " groups=%d bias=%d", (int)nd->groups, nd->bias);
            break;
        case G_DENSE: sb_printf(&b, " out=%d bias=%d", (int)nd->out, nd->bias); break;
        case G_ADD: case G_SUB: case G_MUL: case G_DIV:
            if (nd->cmode == G_C_TENSOR) break;
            if (nd->cmode == G_C_VALUE) sb_real(&b, "value", nd->value);
            else sb_printf(&b, " const=%s", nd->cmode == G_C_CHANNEL ? "c"
                                            : nd->cmode == G_C_SCALAR ? "1" : "chw");
            sb_printf(&b, " left=%d", nd->left);
            break;
        case G_LEAKYRELU: case G_ELU: sb_real(&b, "alpha", nd->alpha); break;
        case G_PRELU: sb_printf(&b, " slopes=%s", nd->slopes == 1 ? "1" : "c"); break;
        case G_CLIP:
            sb_real(&b, "min", nd->vmin);
            sb_real(&b, "max", nd->vmax);
            break;
        case G_HARDSIGMOID:
            sb_real(&b, "alpha", nd->alpha);
            sb_real(&b, "beta", nd->beta);
            break;
        case G_BN: sb_real(&b, "eps", nd->eps); break;
        case G_MAXPOOL: case G_AVGPOOL:
            sb_hw(&b, "k", nd->kh, nd->kw);
            sb_hw(&b, "s", nd->sh, nd->sw);
            sb_pads(&b, "p", nd);
            if (nd->op == G_AVGPOOL) sb_printf(&b, " count_pad=%d", nd->count_pad);
            break;
        case G_RESHAPE:
            sb_printf(&b, " shape=%d,%d,%d", (int)nd->shape[0], (int)nd->shape[1],
                      (int)nd->shape[2]);
            break;
        case G_TRANSPOSE:
            sb_printf(&b, " perm=%d,%d,%d", (int)nd->perm[0], (int)nd->perm[1], (int)nd->perm[2]);
            break;
        case G_CONCAT: sb_printf(&b, " axis=%d", nd->axis); break;
        case G_PAD:
            sb_printf(&b, " pads=%d,%d,%d,%d", (int)nd->pt, (int)nd->pl, (int)nd->pb, (int)nd->pr);
            sb_real(&b, "value", nd->value);
            break;
        default: break;
        }
    }
    if (b.fail) {
        foolc__free(b.s);
        return foolc__nomem("the architecture text");
    }
    net->arch = b.s;
    return FOOLC_OK;
}

/* ---- the parser ---------------------------------------------------------------------- */

foolc_status foolc__nn_graph_parse(const char *arch, foolc_net *net)
{
    gparse gp;
    memset(&gp, 0, sizeof gp);
    const char *p = arch, *beg, *end;
    int32_t count = 0;
    while (foolc__nn_next_segment(&p, &beg, &end)) count++;
    if (count - 1 > NN_GRAPH_MAX_NODES)
        return foolc__error(FOOLC_E_INVALID, "net: %d lines after the input, at most %d are "
                            "allowed", (int)(count - 1), NN_GRAPH_MAX_NODES);
    gp.count = count;
    gp.lines = foolc__calloc((size_t)count, sizeof *gp.lines);
    nn_graph *g = foolc__calloc(1, sizeof *g);
    if (!gp.lines || !g) {
        foolc__free(gp.lines);
        foolc__free(g);
        return foolc__nomem("the graph");
    }
    net->graph = g;
    p = arch;
    for (int32_t i = 0; i < count; i++) {
        foolc__nn_next_segment(&p, &beg, &end);
        gp.lines[i].beg = beg;
        gp.lines[i].end = end;
    }
    foolc_status st = FOOLC_OK;
    {
        const char *q = gp.lines[0].beg;
        char name[16];
        size_t k = 0;
        while (q < gp.lines[0].end && !foolc__nn_is_space(*q) && k + 1 < sizeof name) name[k++] = *q++;
        name[k] = '\0';
        if (strcmp(name, "input") != 0 || (q < gp.lines[0].end && !foolc__nn_is_space(*q)))
            st = foolc__error(FOOLC_E_INVALID, "net: the first line must be 'input c=.. h=.. "
                              "w=..', got '%s'", name);
        else
            st = foolc__nn_parse_input(q, gp.lines[0].end, &net->in);
    }
    for (int32_t i = 1; st == FOOLC_OK && i < count; i++) st = split_line(&gp, i);
    g->N = count - 1;
    g->nodes = foolc__calloc((size_t)g->N + 1, sizeof *g->nodes);
    g->dims = foolc__calloc((size_t)g->N + 1, sizeof *g->dims);
    g->impl = foolc__calloc((size_t)g->N + 1, sizeof *g->impl);
    net->layers = foolc__calloc((size_t)g->N + 1, sizeof *net->layers);
    if (st == FOOLC_OK && (!g->nodes || !g->dims || !g->impl || !net->layers))
        st = foolc__nomem("the graph");
    if (st == FOOLC_OK) g->dims[0] = net->in;
    int64_t np = 0, ns = 0;
    for (int32_t i = 1; st == FOOLC_OK && i < count; i++) {
        nn_gnode *nd = &g->nodes[i - 1];
        gline *l = &gp.lines[i];
        gp.cur = l;
        gp.cur_line = i + 1;
        nd->line = i + 1;
        strcpy(nd->name, l->name);
        if (strcmp(l->name, "x") == 0) {
            st = gerr(&gp, "'x' is the input; give the output another name");
            break;
        }
        for (int32_t j = 1; j < i && st == FOOLC_OK; j++)
            if (strcmp(gp.lines[j].name, l->name) == 0)
                st = gerr(&gp, "'%s' is already defined at line %d", l->name, (int)j + 1);
        if (st != FOOLC_OK) break;
        int op = -1;
        for (int k = 0; k < G_COUNT; k++)
            if (strcmp(k_ops[k].name, l->op) == 0) op = k;
        if (op < 0) {
            st = gerr(&gp, "unknown op '%s' (known: conv2d, dense, add, sub, mul, div, relu, "
                      "leakyrelu, prelu, sigmoid, tanh, clip, elu, softplus, erf, hardsigmoid, "
                      "hardswish, identity, batchnorm, maxpool2d, avgpool2d, globalavgpool, "
                      "flatten, reshape, transpose, concat, pad, softmax, logsoftmax)", l->op);
            break;
        }
        nd->op = (nn_gop)op;
        st = node_inputs(&gp, i, nd, g->nodes);
        if (st == FOOLC_OK) st = node_init(&gp, nd, g->dims, i == count - 1);
        if (st != FOOLC_OK) break;
        g->dims[i] = nd->od;
        nd->woff = np;
        np += nd->nw;
        nd->boff = np;
        np += nd->nb;
        nd->soff = ns;
        ns += 2 * nd->ns + nd->nc;
        if (np > NN_MAX_PARAMS || ns > NN_MAX_PARAMS) {
            st = gerr(&gp, "more than %lld parameters in all", (long long)NN_MAX_PARAMS);
            break;
        }
        nn_layer *ly = &net->layers[i - 1];
        ly->kind = &k_gkinds[nd->op];
        ly->index = i - 1;
        ly->in = g->dims[nd->in[0]];
        ly->out_dims = nd->od;
        ly->out = nd->out;
        ly->eps = nd->eps;
        ly->nw = nd->nw;
        ly->nb = nd->nb;
        ly->woff = nd->woff;
        ly->boff = nd->boff;
    }
    if (st == FOOLC_OK && count == 1)
        st = foolc__error(FOOLC_E_INVALID, "net: no lines after the input");
    if (st == FOOLC_OK) {
        int x_used = 0;
        for (int32_t i = 0; i < g->N; i++)
            for (int32_t j = 0; j < g->nodes[i].nin; j++) x_used |= g->nodes[i].in[j] == 0;
        for (int32_t i = 0; st == FOOLC_OK && i + 1 < g->N; i++)
            if (!g->nodes[i].uses) {
                gp.cur = &gp.lines[i + 1];
                gp.cur_line = i + 2;
                st = gerr(&gp, "'%s' is never used (only the last line's output, the logits, "
                          "may be left unused)", g->nodes[i].name);
            }
        if (st == FOOLC_OK && !x_used)
            st = foolc__error(FOOLC_E_INVALID, "net: the input 'x' is never used");
    }
    foolc__free(gp.lines);
    if (st != FOOLC_OK) return st;
    net->L = g->N;
    net->n_params = np;
    net->n_stats = ns;
    return canonical(net);
}

void foolc__nn_graph_bind(foolc_net *net)
{
    nn_graph *g = net->graph;
    for (int32_t i = 0; i < g->N; i++) {
        nn_gnode *nd = &g->nodes[i];
        nn_layer *l = &net->layers[i];
        nd->w = nd->nw ? net->params + nd->woff : NULL;
        nd->b = nd->nb ? net->params + nd->boff : NULL;
        nd->mean = nd->ns ? net->stats + nd->soff : NULL;
        nd->var = nd->ns ? net->stats + nd->soff + nd->ns : NULL;
        nd->cst = nd->nc ? net->stats + nd->soff + 2 * nd->ns : NULL;
        l->w = nd->w;
        l->b = nd->b;
        l->mean = nd->mean;
        l->var = nd->var;
    }
}

void foolc__nn_graph_init_params(foolc_net *net, uint64_t seed)
{
    nn_graph *g = net->graph;
    for (int32_t i = 0; i < g->N; i++) {
        nn_gnode *nd = &g->nodes[i];
        nn_layer *l = &net->layers[i];
        const nn_dims in = g->dims[nd->in[0]];
        switch (nd->op) {
        case G_CONV:
            nn_init_uniform(l, seed, (double)(in.c / nd->groups) * nd->kh * nd->kw);
            break;
        case G_DENSE: nn_init_uniform(l, seed, (double)in.c); break;
        case G_PRELU:
            for (int64_t j = 0; j < nd->nw; j++) nd->w[j] = 0.25f;
            break;
        case G_BN:
            for (int64_t j = 0; j < nd->ns; j++) {
                nd->w[j] = 1.0f;
                nd->b[j] = 0.0f;
                nd->mean[j] = 0.0f;
                nd->var[j] = 1.0f;
            }
            break;
        default:
            for (int64_t j = 0; j < nd->nc; j++)
                nd->cst[j] = nd->op == G_MUL || nd->op == G_DIV ? 1.0f : 0.0f;
            break;
        }
    }
}

double foolc__nn_graph_flops(const foolc_net *net)
{
    const nn_graph *g = net->graph;
    double f = 0;
    for (int32_t i = 0; i < g->N; i++) {
        const nn_gnode *nd = &g->nodes[i];
        const nn_dims in = g->dims[nd->in[0]];
        if (nd->op == G_CONV)
            f += 2.0 * (double)nn_numel(nd->od) * (in.c / nd->groups) * nd->kh * nd->kw;
        else if (nd->op == G_DENSE)
            f += 2.0 * (double)nd->out * in.c;
        else if (nd->op == G_BN)
            f += 2.0 * (double)nn_numel(in);
    }
    return f;
}

int foolc__nn_graph_members(const foolc_net *net, int32_t i, nn_gmember *m)
{
    const nn_graph *g = net->graph;
    const nn_gnode *nd = &g->nodes[i];
    const nn_dims in = g->dims[nd->in[0]];
    int k = 0;
    memset(m, 0, 5 * sizeof *m);
    if (nd->nw) {
        m[k].suffix = "weight";
        m[k].data = nd->w;
        m[k].count = nd->nw;
        m[k].trainable = 1;
        if (nd->op == G_CONV) {
            m[k].ndim = 4;
            m[k].shape[0] = nd->out;
            m[k].shape[1] = in.c / nd->groups;
            m[k].shape[2] = nd->kh;
            m[k].shape[3] = nd->kw;
        } else if (nd->op == G_DENSE) {
            m[k].ndim = 2;
            m[k].shape[0] = nd->out;
            m[k].shape[1] = in.c;
        } else {
            m[k].ndim = 1;
            m[k].shape[0] = nd->nw;
        }
        k++;
    }
    if (nd->nb) {
        m[k].suffix = "bias";
        m[k].data = nd->b;
        m[k].count = nd->nb;
        m[k].trainable = 1;
        m[k].ndim = 1;
        m[k].shape[0] = nd->nb;
        k++;
    }
    if (nd->ns) {
        m[k].suffix = "running_mean";
        m[k].data = nd->mean;
        m[k].count = nd->ns;
        m[k].ndim = 1;
        m[k].shape[0] = nd->ns;
        k++;
        m[k].suffix = "running_var";
        m[k].data = nd->var;
        m[k].count = nd->ns;
        m[k].ndim = 1;
        m[k].shape[0] = nd->ns;
        m[k].variance = 1;
        k++;
    }
    if (nd->nc) {
        m[k].suffix = "const";
        m[k].data = nd->cst;
        m[k].count = nd->nc;
        if (nd->cmode == G_C_FULL) {
            m[k].ndim = 3;
            m[k].shape[0] = in.c;
            m[k].shape[1] = in.h;
            m[k].shape[2] = in.w;
        } else {
            m[k].ndim = 1;
            m[k].shape[0] = nd->nc;
        }
        k++;
    }
    return k;
}
