/* NPZ model files: "arch" (the architecture text as uint8 bytes, or a numpy string array),
 * optional "bounds" (2 floats), and the weights under PyTorch's nn.Sequential names and
 * layouts. Every member is checked: missing, misshapen, mistyped and unexpected members
 * are errors that name the member. */
#include "nn/graph.h"
#include "onnx/onnx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_WEIGHT, M_BIAS, M_MEAN, M_VAR, M_COUNT };
static const char *const k_suffix[M_COUNT] = { "weight", "bias", "running_mean",
                                                "running_var" };

/* The expected shape of member m of layer l; returns its ndim, 0 when l has no such member. */
static int member_shape(const nn_layer *l, int m, int64_t *shape)
{
    if (m == M_WEIGHT && l->nw) {
        if (l->kind == &foolc__nn_conv2d) {
            shape[0] = l->out;
            shape[1] = l->in.c;
            shape[2] = shape[3] = l->k;
            return 4;
        }
        if (l->kind == &foolc__nn_dense) {
            shape[0] = l->out;
            shape[1] = l->in.c;
            return 2;
        }
        shape[0] = l->nw;
        return 1;
    }
    if (m == M_BIAS && l->nb) {
        shape[0] = l->nb;
        return 1;
    }
    if ((m == M_MEAN || m == M_VAR) && l->ns) {
        shape[0] = l->ns / 2;
        return 1;
    }
    return 0;
}

static float *member_data(const nn_layer *l, int m)
{
    return m == M_WEIGHT ? l->w : m == M_BIAS ? l->b : m == M_MEAN ? l->mean : l->var;
}

static void fmt_shape(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < len) snprintf(buf + k, len - k, ndim == 1 ? ",)" : ")");
}

static const char *dtype_name(foolc_dtype t)
{
    static const char *const names[] = { "uint8", "int8", "int16", "int32", "int64", "float32",
                                         "float64", "uint16", "uint32", "uint64", "bool" };
    return (int)t >= 0 && t < FOOLC_DTYPE_COUNT ? names[t] : "unknown";
}

/* The architecture text of member "arch": uint8/int8 bytes (numpy uint8 array or '|S'), or
 * uint32/int32 code points ('<U'); stops at the first NUL. */
static foolc_status arch_text(const foolc_array *a, const char *src, char **out)
{
    *out = NULL;
    int64_t cnt = foolc_array_count(a);
    size_t es = foolc_dtype_size(a->dtype);
    int bytes = a->dtype == FOOLC_U8 || a->dtype == FOOLC_I8;
    int wide = a->dtype == FOOLC_U32 || a->dtype == FOOLC_I32;
    if (!bytes && !wide)
        return foolc__error(FOOLC_E_FORMAT,
                            "net: %s: member 'arch' has dtype %s, expected uint8 text or a "
                            "numpy string", src, dtype_name(a->dtype));
    if (cnt < 0 || cnt > (1 << 24) || (cnt > 0 && !a->data))
        return foolc__error(FOOLC_E_FORMAT, "net: %s: member 'arch' is malformed", src);
    char *s = foolc__malloc((size_t)cnt + 1);
    if (!s) return foolc__nomem("the architecture text");
    size_t k = 0;
    for (int64_t i = 0; i < cnt; i++) {
        uint32_t c;
        const unsigned char *p = (const unsigned char *)a->data + (size_t)i * es;
        if (bytes) c = p[0];
        else memcpy(&c, p, 4);
        if (c == 0) break;
        if (c > 127) {
            foolc__free(s);
            return foolc__error(FOOLC_E_FORMAT,
                                "net: %s: member 'arch' holds a non-ASCII character", src);
        }
        s[k++] = (char)c;
    }
    s[k] = '\0';
    *out = s;
    return FOOLC_OK;
}

/* "[i]" or "[i, j, k, l]": flat index j of an array of shape (shape[0], ..., shape[nd-1]) as
 * numpy prints it. */
static void index_text(char *buf, size_t len, int nd, const int64_t *shape, int64_t j)
{
    int64_t idx[FOOLC_MAX_DIMS];
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = shape[d] > 0 ? j % shape[d] : 0;
        j = shape[d] > 0 ? j / shape[d] : 0;
    }
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < nd && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, d ? ", %lld" : "%lld", (long long)idx[d]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

/* "0.weight[3, 0, 1, 2] is NaN": element j of member m of layer l, with its value. */
void foolc__nn_member_text(const nn_layer *l, int m, int64_t j, double v, char *buf, size_t len)
{
    int64_t shape[4] = { 0, 0, 0, 0 };
    int nd = member_shape(l, m, shape);
    char idx[96];
    index_text(idx, sizeof idx, nd, shape, j);
    snprintf(buf, len, "%d.%s%s is %s", (int)l->index, k_suffix[m], idx,
             isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf");
}

/* "a.weight[3, 0, 1, 2] is NaN": element j of member mb of graph node nd. */
static void graph_member_text(const nn_gnode *nd, const nn_gmember *mb, int64_t j, double v,
                              char *buf, size_t len)
{
    char idx[96];
    index_text(idx, sizeof idx, mb->ndim, mb->shape, j);
    snprintf(buf, len, "%s.%s%s is %s", nd->name, mb->suffix, idx,
             isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf");
}

const nn_layer *foolc__nn_find_nonfinite(const foolc_net *net, const float *params, char *text,
                                         size_t len)
{
    if (net->graph) {
        for (int32_t i = 0; i < net->L; i++) {
            nn_gmember mb[5];
            int k = foolc__nn_graph_members(net, i, mb);
            for (int m = 0; m < k; m++) {
                if (!mb[m].trainable) continue;
                const float *v = params + (mb[m].data - net->params);
                for (int64_t j = 0; j < mb[m].count; j++)
                    if (!isfinite(v[j])) {
                        graph_member_text(&net->graph->nodes[i], &mb[m], j, v[j], text, len);
                        return &net->layers[i];
                    }
            }
        }
        return NULL;
    }
    for (int32_t i = 0; i < net->L; i++) {
        const nn_layer *l = &net->layers[i];
        const int64_t off[2] = { l->woff, l->boff }, cnt[2] = { l->nw, l->nb };
        for (int m = 0; m < 2; m++)
            for (int64_t j = 0; j < cnt[m]; j++)
                if (!isfinite(params[off[m] + j])) {
                    foolc__nn_member_text(l, m, j, params[off[m] + j], text, len);
                    return l;
                }
    }
    return NULL;
}

foolc_status foolc__nn_check_params(const foolc_net *net, const float *params, foolc_status st,
                                    const char *what)
{
    char text[160];
    const nn_layer *l = foolc__nn_find_nonfinite(net, params, text, sizeof text);
    if (!l) return FOOLC_OK;
    return foolc__error(st, "net: %s: %s (%s layer %d); weights and biases must be finite",
                        what, text, l->kind->name, (int)l->index);
}

static foolc_status copy_floats(const foolc_array *a, float *dst, int64_t cnt, const char *src,
                                const char *name)
{
    if (a->dtype == FOOLC_F32) memcpy(dst, a->data, (size_t)cnt * sizeof(float));
    else if (a->dtype == FOOLC_F64)
        for (int64_t i = 0; i < cnt; i++) {
            double v;
            memcpy(&v, (const unsigned char *)a->data + (size_t)i * 8, 8);
            dst[i] = (float)v;
        }
    else
        return foolc__error(FOOLC_E_FORMAT, "net: %s: member '%s' has dtype %s, expected "
                            "float32", src, name, dtype_name(a->dtype));
    return FOOLC_OK;
}

static foolc_status load_member(foolc_net *net, const foolc_npz *z, const nn_layer *l, int m,
                                const char *src)
{
    int64_t shape[4];
    int nd = member_shape(l, m, shape);
    if (!nd) return FOOLC_OK;
    char name[64], want[96], got[160];
    snprintf(name, sizeof name, "%d.%s", (int)l->index, k_suffix[m]);
    fmt_shape(want, sizeof want, nd, shape);
    const foolc_array *a = foolc_npz_get(z, name);
    if (!a)
        return foolc__error(FOOLC_E_FORMAT, "net: %s: member '%s' missing (%s layer %d needs "
                            "shape %s)", src, name, l->kind->name, (int)l->index, want);
    int same = a->ndim == nd;
    for (int i = 0; same && i < nd; i++) same = a->shape[i] == shape[i];
    if (!same) {
        int gnd = a->ndim < 0 ? 0 : a->ndim > FOOLC_MAX_DIMS ? FOOLC_MAX_DIMS : a->ndim;
        fmt_shape(got, sizeof got, gnd, a->shape);
        return foolc__error(FOOLC_E_FORMAT, "net: %s: member '%s' has shape %s, expected %s "
                            "(%s layer %d)", src, name, got, want, l->kind->name,
                            (int)l->index);
    }
    float *dst = member_data(l, m);
    int64_t cnt = 1;
    for (int i = 0; i < nd; i++) cnt *= shape[i];
    FOOLC__CHECK(copy_floats(a, dst, cnt, src, name));
    /* NaN and Inf weights, biases or statistics would poison every logit they reach, or be
     * hidden by a relu or a max pool (oneDNN turns a NaN bias into finite logits). */
    for (int64_t i = 0; i < cnt; i++) {
        if (isfinite(dst[i])) continue;
        char text[160];
        foolc__nn_member_text(l, m, i, dst[i], text, sizeof text);
        if (a->dtype == FOOLC_F64) {
            double v;
            memcpy(&v, (const unsigned char *)a->data + (size_t)i * 8, 8);
            if (isfinite(v)) {
                /* "0.bias[3] is inf" -> "0.bias[3] is 1e+300, beyond float32's range" */
                char *is = strstr(text, " is ");
                if (is) snprintf(is, sizeof text - (size_t)(is - text),
                                 " is %g, beyond float32's range", v);
            }
        }
        return foolc__error(FOOLC_E_FORMAT, "net: %s: %s (%s layer %d); weights, biases and "
                            "running statistics must be finite", src, text, l->kind->name,
                            (int)l->index);
    }
    if (m == M_VAR)
        for (int64_t i = 0; i < cnt; i++)
            if (!(dst[i] >= 0.0f) || !isfinite(dst[i]))
                return foolc__error(FOOLC_E_FORMAT, "net: %s: member '%s' holds a negative or "
                                    "non-finite variance at %lld", src, name, (long long)i);
    (void)net;
    return FOOLC_OK;
}

/* Whether name is a member this net expects (or tolerates). */
static int expected(const foolc_net *net, const char *name)
{
    if (strcmp(name, "arch") == 0 || strcmp(name, "bounds") == 0) return 1;
    char *end = NULL;
    if (name[0] < '0' || name[0] > '9') return 0;
    long idx = strtol(name, &end, 10);
    if (!end || *end != '.' || idx < 0 || idx >= net->L) return 0;
    const nn_layer *l = &net->layers[idx];
    int64_t shape[4];
    for (int m = 0; m < M_COUNT; m++)
        if (strcmp(end + 1, k_suffix[m]) == 0) return member_shape(l, m, shape) != 0;
    /* PyTorch's BatchNorm state_dict also holds a counter the engine does not need. */
    return l->kind == &foolc__nn_batchnorm && strcmp(end + 1, "num_batches_tracked") == 0;
}

static foolc_status load_bounds(foolc_net *net, const foolc_npz *z, const char *src)
{
    const foolc_array *a = foolc_npz_get(z, "bounds");
    if (!a) return FOOLC_OK;
    if (foolc_array_count(a) != 2 || a->ndim != 1)
        return foolc__error(FOOLC_E_FORMAT, "net: %s: member 'bounds' must hold 2 floats [lo, "
                            "hi]", src);
    float b[2] = { 0.0f, 0.0f };
    FOOLC__CHECK(copy_floats(a, b, 2, src, "bounds"));
    if (!isfinite(b[0]) || !isfinite(b[1]) || !(b[0] < b[1]))
        return foolc__error(FOOLC_E_FORMAT, "net: %s: member 'bounds' is [%g, %g], need lo < hi",
                            src, (double)b[0], (double)b[1]);
    net->lo = b[0];
    net->hi = b[1];
    return FOOLC_OK;
}

/* A graph node's member: present, of its shape, finite (and >= 0 for a variance). */
static foolc_status graph_load_member(const foolc_npz *z, const nn_gnode *nd,
                                      const nn_gmember *mb, const char *src)
{
    char name[NN_GRAPH_NAME + 24], want[96], got[160];
    snprintf(name, sizeof name, "%s.%s", nd->name, mb->suffix);
    fmt_shape(want, sizeof want, mb->ndim, mb->shape);
    const char *op = foolc__nn_gop_name(nd->op);
    const foolc_array *a = foolc_npz_get(z, name);
    if (!a)
        return foolc__error(FOOLC_E_FORMAT, "net: %s: member '%s' missing (%s at line %d needs "
                            "shape %s)", src, name, op, (int)nd->line, want);
    int same = a->ndim == mb->ndim;
    for (int i = 0; same && i < mb->ndim; i++) same = a->shape[i] == mb->shape[i];
    if (!same) {
        int gnd = a->ndim < 0 ? 0 : a->ndim > FOOLC_MAX_DIMS ? FOOLC_MAX_DIMS : a->ndim;
        fmt_shape(got, sizeof got, gnd, a->shape);
        return foolc__error(FOOLC_E_FORMAT, "net: %s: member '%s' has shape %s, expected %s "
                            "(%s at line %d)", src, name, got, want, op, (int)nd->line);
    }
    FOOLC__CHECK(copy_floats(a, mb->data, mb->count, src, name));
    for (int64_t i = 0; i < mb->count; i++) {
        if (isfinite(mb->data[i]) && !(mb->variance && mb->data[i] < 0.0f)) continue;
        if (mb->variance && isfinite(mb->data[i]))
            return foolc__error(FOOLC_E_FORMAT, "net: %s: member '%s' holds a negative or "
                                "non-finite variance at %lld", src, name, (long long)i);
        char text[200];
        graph_member_text(nd, mb, i, mb->data[i], text, sizeof text);
        if (a->dtype == FOOLC_F64) {
            double v;
            memcpy(&v, (const unsigned char *)a->data + (size_t)i * 8, 8);
            if (isfinite(v)) {
                char *is = strstr(text, " is ");
                if (is) snprintf(is, sizeof text - (size_t)(is - text),
                                 " is %g, beyond float32's range", v);
            }
        }
        return foolc__error(FOOLC_E_FORMAT, "net: %s: %s (%s at line %d); weights, biases, "
                            "constants and running statistics must be finite", src, text, op,
                            (int)nd->line);
    }
    return FOOLC_OK;
}

/* Whether name is a member of graph net (or a tolerated BatchNorm counter). */
static int graph_expected(const foolc_net *net, const char *name)
{
    if (strcmp(name, "arch") == 0 || strcmp(name, "bounds") == 0) return 1;
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    size_t len = (size_t)(dot - name);
    for (int32_t i = 0; i < net->L; i++) {
        const nn_gnode *nd = &net->graph->nodes[i];
        if (strlen(nd->name) != len || memcmp(nd->name, name, len) != 0) continue;
        nn_gmember mb[5];
        int k = foolc__nn_graph_members(net, i, mb);
        for (int m = 0; m < k; m++)
            if (strcmp(dot + 1, mb[m].suffix) == 0) return 1;
        return nd->op == G_BN && strcmp(dot + 1, "num_batches_tracked") == 0;
    }
    return 0;
}

static foolc_status from_npz(const foolc_npz *z, const char *src, foolc_net **out)
{
    if (!out) return foolc__error(FOOLC_E_INVALID, "net: out is NULL");
    *out = NULL;
    if (!z) return foolc__error(FOOLC_E_INVALID, "net: the archive is NULL");
    const foolc_array *aa = foolc_npz_get(z, "arch");
    if (!aa)
        return foolc__error(FOOLC_E_FORMAT, "net: %s: member 'arch' (the architecture text) "
                            "missing", src);
    char *text = NULL;
    FOOLC__CHECK(arch_text(aa, src, &text));
    foolc_net *net = foolc__nn_net_alloc();
    if (!net) {
        foolc__free(text);
        return foolc__nomem("a net");
    }
    foolc_status st = foolc__nn_parse(text, net);
    foolc__free(text);
    if (st == FOOLC_E_INVALID) {
        foolc__error_prefix(st, "%s: member 'arch'", src);
        st = FOOLC_E_FORMAT;
    }
    if (st == FOOLC_OK) st = foolc__nn_alloc_params(net);
    for (int32_t i = 0; st == FOOLC_OK && i < net->L; i++) {
        if (net->graph) {
            nn_gmember mb[5];
            int k = foolc__nn_graph_members(net, i, mb);
            for (int m = 0; st == FOOLC_OK && m < k; m++)
                st = graph_load_member(z, &net->graph->nodes[i], &mb[m], src);
            continue;
        }
        for (int m = 0; st == FOOLC_OK && m < M_COUNT; m++)
            st = load_member(net, z, &net->layers[i], m, src);
    }
    for (int32_t i = 0; st == FOOLC_OK && i < foolc_npz_count(z); i++) {
        const char *name = foolc_npz_name(z, i);
        if (name && !(net->graph ? graph_expected(net, name) : expected(net, name)))
            st = foolc__error(FOOLC_E_FORMAT, "net: %s: unexpected member '%s' (not a weight "
                              "of this architecture: %s)", src, name, net->arch);
    }
    if (st == FOOLC_OK) st = load_bounds(net, z, src);
    if (st != FOOLC_OK) {
        foolc_net_free(net);
        return st;
    }
    net->pver++;
    *out = net;
    return FOOLC_OK;
}

foolc_status foolc_net_from_npz(const foolc_npz *z, foolc_net **out)
{
    foolc__error_clear();
    return from_npz(z, "npz", out);
}

foolc_status foolc__nn_from_npz_src(const foolc_npz *z, const char *src, foolc_net **out)
{
    return from_npz(z, src ? src : "npz", out);
}

foolc_status foolc_net_load(const char *path, foolc_net **out)
{
    foolc__error_clear();
    if (!out) return foolc__error(FOOLC_E_INVALID, "net: out is NULL");
    *out = NULL;
    if (!path) return foolc__error(FOOLC_E_INVALID, "net: load: path is NULL");
    /* ONNX files (by extension or magic) go to the importer (lib/onnx/, docs/onnx.md) */
    if (foolc__onnx_sniff(path)) return foolc__onnx_load(path, out);
    foolc_npz *z = NULL;
    FOOLC__CHECK(foolc_npz_read(path, &z));
    foolc_status st = from_npz(z, path, out);
    foolc_npz_free(z);
    return st;
}

static foolc_status add_f32(foolc_npz *z, const char *name, int nd, const int64_t *shape,
                            const float *data)
{
    foolc_array a;
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_F32;
    a.ndim = nd;
    for (int i = 0; i < nd; i++) a.shape[i] = shape[i];
    a.data = (void *)data;
    return foolc_npz_add(z, name, &a);
}

foolc_status foolc_net_save(const foolc_net *net, const char *path)
{
    foolc__error_clear();
    if (!net || !path) return foolc__error(FOOLC_E_INVALID, "net: save: NULL argument");
    FOOLC__CHECK(foolc__nn_check_params(net, net->params, FOOLC_E_INVALID, "save"));
    foolc_npz *z = NULL;
    FOOLC__CHECK(foolc_npz_new(&z));
    foolc_array a;
    memset(&a, 0, sizeof a);
    a.dtype = FOOLC_U8;
    a.ndim = 1;
    a.shape[0] = (int64_t)strlen(net->arch);
    a.data = net->arch;
    foolc_status st = foolc_npz_add(z, "arch", &a);
    float bounds[2] = { net->lo, net->hi };
    int64_t two = 2;
    if (st == FOOLC_OK) st = add_f32(z, "bounds", 1, &two, bounds);
    for (int32_t i = 0; st == FOOLC_OK && net->graph && i < net->L; i++) {
        nn_gmember mb[5];
        int k = foolc__nn_graph_members(net, i, mb);
        for (int m = 0; st == FOOLC_OK && m < k; m++) {
            char name[NN_GRAPH_NAME + 24];
            snprintf(name, sizeof name, "%s.%s", net->graph->nodes[i].name, mb[m].suffix);
            st = add_f32(z, name, mb[m].ndim, mb[m].shape, mb[m].data);
        }
    }
    for (int32_t i = 0; st == FOOLC_OK && !net->graph && i < net->L; i++)
        for (int m = 0; st == FOOLC_OK && m < M_COUNT; m++) {
            const nn_layer *l = &net->layers[i];
            int64_t shape[4];
            int nd = member_shape(l, m, shape);
            if (!nd) continue;
            char name[64];
            snprintf(name, sizeof name, "%d.%s", (int)l->index, k_suffix[m]);
            st = add_f32(z, name, nd, shape, member_data(l, m));
        }
    if (st == FOOLC_OK) st = foolc_npz_write(z, path, 1);
    foolc_npz_free(z);
    return st;
}
