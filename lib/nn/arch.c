/* The architecture text: parsing "input c=1 h=28 w=28; conv2d out=32 k=3 p=1; ..." into
 * layers with checked options and inferred shapes, with errors that name the layer and
 * the option, and the canonical text that foolc_net_arch returns. */
#include "nn/graph.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const nn_kind *const k_kinds[] = {
    &foolc__nn_conv2d,  &foolc__nn_dense,   &foolc__nn_relu,      &foolc__nn_maxpool2d,
    &foolc__nn_avgpool2d, &foolc__nn_flatten, &foolc__nn_batchnorm, &foolc__nn_softmax,
};
#define N_KINDS (sizeof k_kinds / sizeof k_kinds[0])

foolc_status foolc__nn_lerr(foolc_status st, const nn_layer *l, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return foolc__error(st, "net: layer %d (%s): %s", (int)l->index, l->kind->name, msg);
}

int foolc__nn_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int foolc__nn_next_segment(const char **p, const char **beg, const char **end)
{
    const char *s = *p;
    for (;;) {
        while (*s == ';' || *s == '\n' || foolc__nn_is_space(*s)) s++;
        if (*s == '#') {
            while (*s && *s != '\n') s++;
            continue;
        }
        if (!*s) {
            *p = s;
            return 0;
        }
        *beg = s;
        while (*s && *s != ';' && *s != '\n' && *s != '#') s++;
        *end = s;
        while (*end > *beg && foolc__nn_is_space((*end)[-1])) (*end)--;
        *p = s;
        return 1;
    }
}

/* The next whitespace-separated token of [*p, end) into buf (truncated, NUL-terminated). */
static int next_token(const char **p, const char *end, char *buf, size_t len)
{
    const char *s = *p;
    while (s < end && foolc__nn_is_space(*s)) s++;
    if (s >= end) return 0;
    size_t k = 0;
    while (s < end && !foolc__nn_is_space(*s)) {
        if (k + 1 < len) buf[k++] = *s;
        s++;
    }
    buf[k] = '\0';
    *p = s;
    return 1;
}

/* Reads an option value: a decimal integer in [min, NN_MAX_DIM], or a positive finite real. */
static foolc_status parse_value(const nn_layer *l, const char *key, const char *val, int real,
                                int min, double *out)
{
    if (real) {
        char *e = NULL;
        double v = strtod(val, &e);
        if (!*val || *e || !isfinite(v) || !(v > 0))
            return foolc__nn_lerr(FOOLC_E_INVALID, l,
                                  "option '%s' must be a positive number, got '%s'", key, val);
        *out = v;
        return FOOLC_OK;
    }
    int64_t v = 0;
    size_t nd = 0;
    for (const char *s = val; *s; s++, nd++) {
        if (*s < '0' || *s > '9' || nd >= 9) {
            v = -1;
            break;
        }
        v = v * 10 + (*s - '0');
    }
    if (nd == 0 || v < min || v > NN_MAX_DIM) {
        if (min > 0)
            return foolc__nn_lerr(FOOLC_E_INVALID, l,
                                  "option '%s' must be an integer in [%d, %d], got '%s'", key,
                                  min, NN_MAX_DIM, val);
        return foolc__nn_lerr(FOOLC_E_INVALID, l,
                              "option '%s' must be an integer in [0, %d], got '%s'", key,
                              NN_MAX_DIM, val);
    }
    *out = (double)v;
    return FOOLC_OK;
}

/* Parses the options of one segment into opts (-1 when not given). */
static foolc_status parse_opts(const nn_layer *l, const char *s, const char *end, double *opts)
{
    const nn_kind *k = l->kind;
    char tok[128];
    for (int i = 0; i < NN_MAX_OPTS; i++) opts[i] = -1;
    while (next_token(&s, end, tok, sizeof tok)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok)
            return foolc__nn_lerr(FOOLC_E_INVALID, l, "expected key=value, got '%s'", tok);
        *eq = '\0';
        int idx = -1;
        for (int i = 0; i < NN_MAX_OPTS && k->keys[i]; i++)
            if (strcmp(k->keys[i], tok) == 0) idx = i;
        if (idx < 0) return foolc__nn_lerr(FOOLC_E_INVALID, l, "unknown option '%s'", tok);
        if (opts[idx] >= 0)
            return foolc__nn_lerr(FOOLC_E_INVALID, l, "option '%s' given twice", tok);
        FOOLC__CHECK(parse_value(l, tok, eq + 1, idx == k->real_key, k->key_min[idx],
                                 &opts[idx]));
    }
    for (int i = 0; i < NN_MAX_OPTS && k->keys[i]; i++)
        if ((k->required >> i & 1u) && opts[i] < 0)
            return foolc__nn_lerr(FOOLC_E_INVALID, l, "missing option '%s'", k->keys[i]);
    return FOOLC_OK;
}

foolc_status foolc__nn_parse_input(const char *s, const char *end, nn_dims *in)
{
    static const char *const keys[3] = { "c", "h", "w" };
    int64_t v[3] = { -1, -1, -1 };
    char tok[128];
    while (next_token(&s, end, tok, sizeof tok)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok)
            return foolc__error(FOOLC_E_INVALID, "net: input: expected key=value, got '%s'",
                                tok);
        *eq = '\0';
        int idx = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(keys[i], tok) == 0) idx = i;
        if (idx < 0)
            return foolc__error(FOOLC_E_INVALID, "net: input: unknown option '%s'", tok);
        if (v[idx] >= 0)
            return foolc__error(FOOLC_E_INVALID, "net: input: option '%s' given twice", tok);
        const char *val = eq + 1;
        int64_t x = 0;
        size_t nd = 0;
        for (const char *q = val; *q; q++, nd++) {
            if (*q < '0' || *q > '9' || nd >= 9) {
                x = -1;
                break;
            }
            x = x * 10 + (*q - '0');
        }
        if (nd == 0 || x < 1 || x > NN_MAX_DIM)
            return foolc__error(FOOLC_E_INVALID,
                                "net: input: option '%s' must be an integer in [1, %d], "
                                "got '%s'", tok, NN_MAX_DIM, val);
        v[idx] = x;
    }
    for (int i = 0; i < 3; i++)
        if (v[i] < 0)
            return foolc__error(FOOLC_E_INVALID, "net: input: missing option '%s'", keys[i]);
    in->c = (int32_t)v[0];
    in->h = (int32_t)v[1];
    in->w = (int32_t)v[2];
    if (nn_numel(*in) > NN_MAX_TENSOR)
        return foolc__error(FOOLC_E_INVALID, "net: input: %dx%dx%d is too large", (int)in->c,
                            (int)in->h, (int)in->w);
    return FOOLC_OK;
}

/* The shortest decimal text that reads back as exactly v. */
void foolc__nn_fmt_real(char *buf, size_t len, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static foolc_status canonical(foolc_net *net)
{
    size_t cap = (size_t)(net->L + 1) * 128 + 64, len = 0;
    char *s = foolc__malloc(cap);
    if (!s) return foolc__nomem("the architecture text");
    len += (size_t)snprintf(s, cap, "input c=%d h=%d w=%d", (int)net->in.c, (int)net->in.h,
                            (int)net->in.w);
    for (int32_t i = 0; i < net->L; i++) {
        const nn_layer *l = &net->layers[i];
        const nn_kind *k = l->kind;
        len += (size_t)snprintf(s + len, cap - len, "; %s", k->name);
        for (int j = 0; j < NN_MAX_OPTS && k->keys[j]; j++) {
            const char *key = k->keys[j];
            char val[40];
            if (j == k->real_key) foolc__nn_fmt_real(val, sizeof val, l->eps);
            else {
                int32_t v = strcmp(key, "out") == 0 ? l->out : strcmp(key, "k") == 0 ? l->k
                          : strcmp(key, "s") == 0 ? l->s : l->p;
                snprintf(val, sizeof val, "%d", (int)v);
            }
            len += (size_t)snprintf(s + len, cap - len, " %s=%s", key, val);
        }
    }
    net->arch = s;
    return FOOLC_OK;
}

foolc_status foolc__nn_parse(const char *arch, foolc_net *net)
{
    if (!arch) return foolc__error(FOOLC_E_INVALID, "net: the architecture text is NULL");
    if (foolc__nn_graph_is(arch)) return foolc__nn_graph_parse(arch, net);
    const char *p = arch, *beg, *end;
    int32_t count = 0;
    while (foolc__nn_next_segment(&p, &beg, &end)) count++;
    if (count == 0) return foolc__error(FOOLC_E_INVALID, "net: the architecture text is empty");

    p = arch;
    foolc__nn_next_segment(&p, &beg, &end);
    char name[64];
    const char *q = beg;
    next_token(&q, end, name, sizeof name);
    if (strcmp(name, "input") != 0)
        return foolc__error(FOOLC_E_INVALID,
                            "net: the first layer must be 'input c=.. h=.. w=..', got '%s'",
                            name);
    FOOLC__CHECK(foolc__nn_parse_input(q, end, &net->in));
    if (count == 1)
        return foolc__error(FOOLC_E_INVALID, "net: no layers after the input");
    if (count - 1 > NN_MAX_LAYERS)
        return foolc__error(FOOLC_E_INVALID, "net: %d layers, at most %d are allowed",
                            (int)(count - 1), NN_MAX_LAYERS);

    net->L = count - 1;
    net->layers = foolc__calloc((size_t)net->L, sizeof *net->layers);
    if (!net->layers) return foolc__nomem("the layers");
    nn_dims cur = net->in;
    int64_t np = 0, ns = 0;
    for (int32_t i = 0; i < net->L; i++) {
        nn_layer *l = &net->layers[i];
        foolc__nn_next_segment(&p, &beg, &end);
        q = beg;
        next_token(&q, end, name, sizeof name);
        l->index = i;
        for (size_t k = 0; k < N_KINDS; k++)
            if (strcmp(k_kinds[k]->name, name) == 0) l->kind = k_kinds[k];
        if (!l->kind) {
            if (strcmp(name, "input") == 0)
                return foolc__error(FOOLC_E_INVALID,
                                    "net: layer %d: 'input' may only be the first line", (int)i);
            return foolc__error(FOOLC_E_INVALID,
                                "net: layer %d: unknown layer '%s' (known: conv2d, dense, relu, "
                                "maxpool2d, avgpool2d, flatten, batchnorm, softmax)", (int)i,
                                name);
        }
        double opts[NN_MAX_OPTS];
        FOOLC__CHECK(parse_opts(l, q, end, opts));
        l->in = cur;
        FOOLC__CHECK(l->kind->init(l, opts));
        if (l->out_dims.c < 1 || l->out_dims.h < 1 || l->out_dims.w < 1 ||
            nn_numel(l->out_dims) > NN_MAX_TENSOR)
            return foolc__nn_lerr(FOOLC_E_INVALID, l, "output %dx%dx%d is empty or too large",
                                  (int)l->out_dims.c, (int)l->out_dims.h, (int)l->out_dims.w);
        l->woff = np;
        np += l->nw;
        l->boff = np;
        np += l->nb;
        l->soff = ns;
        ns += l->ns;
        if (np > NN_MAX_PARAMS)
            return foolc__nn_lerr(FOOLC_E_INVALID, l, "more than %lld parameters in all",
                                  (long long)NN_MAX_PARAMS);
        cur = l->out_dims;
    }
    net->n_params = np;
    net->n_stats = ns;
    return canonical(net);
}
