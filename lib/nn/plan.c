/* Plans and their execution. A plan serves one batch size and backend: each layer's step
 * (its formats and cached oneDNN primitives), the reorders between layers whose formats
 * differ, and the offsets of every buffer in the net's arena. Plans are cached per net
 * (least recently used goes first); the arena only grows, so the hot path never allocates. */
#include "nn/nn.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static size_t align64(size_t v) { return (v + 63) & ~(size_t)63; }

static void plan_free(nn_plan *p)
{
    if (!p) return;
    if (p->steps)
        for (int32_t i = 0; i < p->L; i++)
            if (p->steps[i].impl && p->steps[i].kind->plan_free)
                p->steps[i].kind->plan_free(&p->steps[i]);
    if (p->rin)
        for (int32_t i = 0; i < p->L; i++) foolc__nn_reorder_free(&p->rin[i]);
    foolc__nn_reorder_free(&p->rout);
    foolc__free(p->steps);
    foolc__free(p->t_md);
    foolc__free(p->t_bytes);
    foolc__free(p->t_off);
    foolc__free(p->rin);
    foolc__free(p->x_off);
    foolc__free(p->ws_off);
    foolc__free(p->dslot);
    foolc__free(p->tptr);
    foolc__free(p->xptr);
    foolc__free(p);
}

void foolc__nn_plans_clear(foolc_net *net)
{
    for (int i = 0; i < NN_MAX_PLANS; i++) {
        plan_free(net->plans[i]);
        net->plans[i] = NULL;
    }
}

static size_t take(size_t *off, size_t len)
{
    size_t at = *off;
    *off += align64(len);
    return at;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Formats, primitives and reorders of every layer. */
static foolc_status plan_layers(foolc_net *net, nn_plan *p)
{
    const int fast = p->backend == FOOLC_BACKEND_FAST;
    const int back = (p->need & NN_NEED_DATA) != 0;
    foolc__nn_md_plain(&p->t_md[0], p->n, net->in);
    p->t_bytes[0] = (size_t)p->n * (size_t)nn_numel(net->in) * sizeof(float);
    for (int32_t i = 0; i < p->L; i++) {
        const nn_layer *l = &net->layers[i];
        nn_step *st = &p->steps[i];
        st->kind = l->kind;
        st->fast = fast;
        st->alias = l->kind->alias;
        if (fast && l->kind == &foolc__nn_conv2d && i + 1 < p->L &&
            net->layers[i + 1].kind == &foolc__nn_relu && !(p->need & NN_NEED_CHECK))
            st->fuse_relu = 1;
        if (fast && l->kind == &foolc__nn_relu && i > 0 && p->steps[i - 1].fuse_relu)
            st->alias = 1;
        /* relu then maxpool: the gradient through max(relu(x)) reaches only window maxima,
         * where relu's mask is (pooled y > 0); apply it to the pooled gradient instead. */
        if (st->alias && l->kind == &foolc__nn_relu && i + 1 < p->L &&
            net->layers[i + 1].kind == &foolc__nn_maxpool2d)
            st->skip_backward = 1;
        if (fast && l->kind == &foolc__nn_maxpool2d && i > 0 && p->steps[i - 1].skip_backward)
            st->relu_mask = 1;
        st->n = p->n;
        st->need = p->need;
        st->fx = net->fast;
        if (fast && l->kind->plan) {
            FOOLC__CHECK(l->kind->plan(l, st, &p->t_md[i]));
        } else {
            foolc__nn_md_plain(&st->in_md, p->n, l->in);
            foolc__nn_md_plain(&st->out_md, p->n, l->out_dims);
        }
        if (fast && !foolc__nn_md_eq(&p->t_md[i], &st->in_md))
            FOOLC__CHECK(foolc__nn_reorder_make(net->fast, &p->t_md[i], &st->in_md, back, 0,
                                                l->index, &p->rin[i]));
        p->t_md[i + 1] = st->out_md;
        p->t_bytes[i + 1] = fast ? dnnl_memory_desc_get_size(&st->out_md)
                                 : (size_t)p->n * (size_t)nn_numel(l->out_dims) * sizeof(float);
    }
    if (fast) {
        dnnl_memory_desc_t plain;
        foolc__nn_md_plain(&plain, p->n, net->layers[p->L - 1].out_dims);
        if (!foolc__nn_md_eq(&p->t_md[p->L], &plain))
            FOOLC__CHECK(foolc__nn_reorder_make(net->fast, &p->t_md[p->L], &plain, back, 0,
                                                p->L - 1, &p->rout));
    }
    return FOOLC_OK;
}

/* Arena offsets: activations, reordered inputs, workspaces, logits, gradients, scratch. */
static void plan_layout(foolc_net *net, nn_plan *p)
{
    size_t off = 0, tmp = 0, scratch = 0, dbytes = 0, dtmp = 0;
    const size_t lbytes = (size_t)p->n * (size_t)nn_numel(net->layers[p->L - 1].out_dims) *
                          sizeof(float);
    for (int32_t i = 0; i < p->L; i++) {
        const nn_step *st = &p->steps[i];
        p->t_off[i + 1] = st->alias ? SIZE_MAX : take(&off, p->t_bytes[i + 1]);
        if (p->rin[i].fwd) {
            size_t xb = dnnl_memory_desc_get_size(&st->in_md);
            p->x_off[i] = take(&off, xb);
            dtmp = max_sz(dtmp, xb);
            scratch = max_sz(scratch, p->rin[i].scratch_bytes);
        }
        p->ws_off[i] = st->ws_bytes ? take(&off, st->ws_bytes) : 0;
        tmp = max_sz(tmp, st->tmp_bytes);
        scratch = max_sz(scratch, st->scratch_bytes);
        dbytes = max_sz(dbytes, p->t_bytes[i + 1]);
    }
    scratch = max_sz(scratch, p->rout.scratch_bytes);
    p->logits_off = take(&off, lbytes);
    p->dlogits_off = take(&off, lbytes);
    if (p->need) {
        /* Gradient buffers alternate between two slots (-1: the plain dlogits buffer). */
        p->dslot[p->L] = p->rout.fwd ? 0 : -1;
        for (int32_t i = p->L - 1; i >= 1; i--) {
            int nxt = p->dslot[i + 1];
            p->dslot[i] = (p->steps[i].alias && !p->rin[i].fwd) ? nxt : (nxt == 0 ? 1 : 0);
        }
        p->d_off[0] = take(&off, dbytes);
        p->d_off[1] = take(&off, dbytes);
        p->d_off[2] = take(&off, dtmp);
    }
    p->tmp_off = take(&off, tmp);
    p->scratch_off = take(&off, scratch);
    p->total = off;
}

/* The backend a plan uses: the net's, except in a process forked after OpenMP work, where
 * the fast backend's OpenMP regions could hang (fast.c) and the reference one serves. */
static int plan_backend(const foolc_net *net)
{
    if (net->backend == FOOLC_BACKEND_FAST && foolc__nn_omp_forked())
        return FOOLC_BACKEND_REFERENCE;
    return (int)net->backend;
}

static foolc_status plan_new(foolc_net *net, int32_t n, unsigned need, nn_plan **out)
{
    *out = NULL;
    int backend = plan_backend(net);
    if (backend == FOOLC_BACKEND_FAST) FOOLC__CHECK(foolc__nn_fast_init(net));
    nn_plan *p = foolc__calloc(1, sizeof *p);
    if (!p) return foolc__nomem("a plan");
    const size_t L = (size_t)net->L;
    p->n = n;
    p->backend = backend;
    p->need = need;
    p->L = net->L;
    p->steps = foolc__calloc(L, sizeof *p->steps);
    p->t_md = foolc__calloc(L + 1, sizeof *p->t_md);
    p->t_bytes = foolc__calloc(L + 1, sizeof *p->t_bytes);
    p->t_off = foolc__calloc(L + 1, sizeof *p->t_off);
    p->rin = foolc__calloc(L, sizeof *p->rin);
    p->x_off = foolc__calloc(L, sizeof *p->x_off);
    p->ws_off = foolc__calloc(L, sizeof *p->ws_off);
    p->dslot = foolc__calloc(L + 1, sizeof *p->dslot);
    p->tptr = foolc__calloc(L + 1, sizeof *p->tptr);
    p->xptr = foolc__calloc(L, sizeof *p->xptr);
    if (!p->steps || !p->t_md || !p->t_bytes || !p->t_off || !p->rin || !p->x_off ||
        !p->ws_off || !p->dslot || !p->tptr || !p->xptr) {
        plan_free(p);
        return foolc__nomem("a plan");
    }
    foolc_status st = plan_layers(net, p);
    if (st != FOOLC_OK) {
        plan_free(p);
        return st;
    }
    plan_layout(net, p);
    *out = p;
    return FOOLC_OK;
}

static foolc_status arena_reserve(foolc_net *net, size_t bytes)
{
    if (bytes <= net->arena_size && net->arena) return FOOLC_OK;
    if (bytes > SIZE_MAX - 128) return foolc__nomem("the activation arena");
    unsigned char *raw = foolc__malloc(bytes + 64);
    if (!raw) return foolc__nomem("the activation arena");
    foolc__free(net->arena_raw);
    net->arena_raw = raw;
    net->arena = (unsigned char *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    net->arena_size = bytes;
    return FOOLC_OK;
}

foolc_status foolc__nn_plan_get(foolc_net *net, int32_t n, unsigned need, nn_plan **out)
{
    int same = -1, empty = -1, lru = 0;
    for (int i = 0; i < NN_MAX_PLANS; i++) {
        nn_plan *p = net->plans[i];
        if (!p) {
            if (empty < 0) empty = i;
            continue;
        }
        if (p->n == n && p->backend == plan_backend(net) &&
            (p->need & NN_NEED_CHECK) == (need & NN_NEED_CHECK)) {
            if ((p->need & need) == need) {
                p->used = ++net->clock;
                FOOLC__CHECK(arena_reserve(net, p->total));
                *out = p;
                return FOOLC_OK;
            }
            same = i;
        }
        if (net->plans[lru] && p->used < net->plans[lru]->used) lru = i;
    }
    /* A plan for this size but with less in it is replaced by one that does both. */
    if (same >= 0) need |= net->plans[same]->need;
    nn_plan *p = NULL;
    FOOLC__CHECK(plan_new(net, n, need, &p));
    int slot = same >= 0 ? same : empty >= 0 ? empty : lru;
    plan_free(net->plans[slot]);
    net->plans[slot] = p;
    p->used = ++net->clock;
    FOOLC__CHECK(arena_reserve(net, p->total));
    *out = p;
    return FOOLC_OK;
}

static void args_base(const foolc_net *net, const nn_plan *p, int32_t i, nn_args *a)
{
    memset(a, 0, sizeof *a);
    a->n = p->n;
    a->pver = net->pver;
    a->ylen = p->t_bytes[i + 1] / sizeof(float);
    a->ws = net->arena + p->ws_off[i];
    a->tmp = net->arena + p->tmp_off;
    a->scratch = net->arena + p->scratch_off;
}

static float *slot_buf(const foolc_net *net, const nn_plan *p, int s)
{
    return (float *)(net->arena + (s < 0 ? p->dlogits_off : p->d_off[s]));
}

/* ---- NaN and Inf in the forward pass ---------------------------------------------------
 * A relu turns -inf into 0 and (oneDNN's, fused into a convolution) NaN too; a max pool
 * drops them unless they are the maximum. So an overflow inside the net (finite weights and
 * inputs whose products exceed float32) could give finite, wrong logits. Checking every
 * tensor would cost a pass over each; instead each layer has a bound (nn_layer: gain, shift,
 * slack) such that no value it computes exceeds (gain * B + shift) * slack when its input is
 * at most B. From the input's largest magnitude (one pass over the input, which also finds
 * NaN and Inf there) the bounds prove, layer by layer, that nothing reaches FLT_MAX; where a
 * bound does not suffice, the layer's actual input is measured (one pass over it); where
 * that does not suffice either, the pass is run again on a plan that fuses nothing and
 * checks every layer's output, which names the first layer and sample with NaN or Inf. */

/* The largest |v| over n floats as float bits; NaN and Inf compare above every finite value
 * (>= 0x7f800000), so one integer maximum finds both. */
static uint32_t absmax_bits(const float *v, size_t n)
{
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &v[i], sizeof b);
        b &= 0x7fffffffu;
        m = b > m ? b : m;
    }
    return m;
}

static double bits_value(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static void bounds_refresh(foolc_net *net)
{
    if (net->bver == net->pver) return;
    for (int32_t i = 0; i < net->L; i++) {
        nn_layer *l = &net->layers[i];
        int64_t terms = 0;
        l->gain = 1;
        l->shift = 0;
        if (l->kind->bound) terms = l->kind->bound(l);
        /* Each rounding of a sum or product grows a magnitude by at most 1 + 2^-24; a value
         * of terms + 2 roundings is below (1 + 2^-24)^(terms + 2) <= exp((terms + 2) 2^-23)
         * times its exact bound, the bound's own double arithmetic inside 1e-6. */
        l->slack = exp(ldexp((double)terms + 2, -23)) * (1 + 1e-6);
    }
    net->bver = net->pver;
}

/* Per-sample flags of a checked pass: samples whose values went NaN or Inf, the first of
 * them (layer, sample, value) for the message. */
typedef struct nf_state {
    unsigned char *bad;          /* n flags */
    int32_t count, layer, sample;
    float value;
} nf_state;

/* Flags the samples of tensor v (len floats, samples spaced by stride floats, 0: unknown
 * layout, then every sample) that hold NaN or Inf. */
static void nf_flag(nf_state *nf, const float *v, size_t len, int32_t n, int64_t stride,
                    int32_t layer)
{
    if (absmax_bits(v, len) < 0x7f800000u) return;
    for (int32_t s = 0; s < n; s++) {
        const float *row = stride ? v + (size_t)s * (size_t)stride : v;
        size_t rl = stride ? (size_t)stride : len;
        for (size_t j = 0; j < rl; j++)
            if (!isfinite(row[j])) {
                if (!nf->bad[s]) nf->count++;
                if (nf->count == 1 && !nf->bad[s]) {
                    nf->layer = layer;
                    nf->sample = s;
                    nf->value = row[j];
                }
                nf->bad[s] = 1;
                break;
            }
    }
}

static foolc_status nf_report(const foolc_net *net, const nf_state *nf, int32_t first)
{
    const char *v = isnan(nf->value) ? "NaN" : nf->value > 0 ? "inf" : "-inf";
    char more[64] = "";
    if (nf->count > 1) snprintf(more, sizeof more, " (and %d more samples)", (int)nf->count - 1);
    if (nf->layer < 0)
        return foolc__error(FOOLC_E_NONFINITE, "net: the input of sample %d holds %s%s",
                            (int)(first + nf->sample), v, more);
    return foolc__nn_lerr(FOOLC_E_NONFINITE, &net->layers[nf->layer],
                          "sample %d reaches %s%s: an overflow of float32 (weights or inputs "
                          "too large)", (int)(first + nf->sample), v, more);
}

foolc_status foolc__nn_exec(foolc_net *net, nn_plan *p, const float *x, int32_t first,
                            foolc_seed_fn seed, void *seed_user, float *logits, float *dx,
                            float *dparams, int *recheck)
{
    unsigned char *A = net->arena;
    void *scratch = A + p->scratch_off;
    const nn_fast *fx = net->fast;
    const int checked = (p->need & NN_NEED_CHECK) != 0;
    const size_t din = (size_t)p->n * (size_t)nn_numel(net->in);
    nf_state nf = { NULL, 0, -1, 0, 0.0f };
    nn_args a;
    double B = 0;
    *recheck = 0;
    bounds_refresh(net);
    if (checked) {
        nf.bad = foolc__calloc((size_t)p->n, 1);
        if (!nf.bad) return foolc__nomem("the checked forward pass");
        nf_flag(&nf, x, din, p->n, (int64_t)nn_numel(net->in), -1);
    } else {
        uint32_t m = absmax_bits(x, din);
        if (m >= 0x7f800000u) {
            *recheck = 1;
            return FOOLC_OK;
        }
        B = bits_value(m);
    }
    foolc_status rs = FOOLC_OK;
    p->tptr[0] = x;
    for (int32_t i = 0; rs == FOOLC_OK && i < p->L; i++) {
        nn_layer *l = &net->layers[i];
        const float *xin = p->tptr[i];
        if (!checked) {
            double peak = (l->gain * B + l->shift) * l->slack;
            if (!(peak <= FLT_MAX) && i > 0) {
                /* The bound from the layers before is not enough: measure this input. */
                B = bits_value(absmax_bits(xin, p->t_bytes[i] / sizeof(float)));
                peak = (l->gain * B + l->shift) * l->slack;
            }
            if (!(peak <= FLT_MAX)) {
                *recheck = 1;
                return FOOLC_OK;
            }
            B = peak;
        }
        if (p->rin[i].fwd) {
            rs = foolc__nn_reorder_run(fx, &p->rin[i], 0, xin, A + p->x_off[i], scratch,
                                       l->index);
            xin = (const float *)(A + p->x_off[i]);
        }
        p->xptr[i] = xin;
        args_base(net, p, i, &a);
        a.x = xin;
        a.y = p->steps[i].alias ? (float *)xin : (float *)(A + p->t_off[i + 1]);
        if (rs == FOOLC_OK) rs = l->kind->forward(l, &p->steps[i], &a);
        p->tptr[i + 1] = a.y;
        if (rs == FOOLC_OK && checked && !p->steps[i].alias)
            nf_flag(&nf, a.y, a.ylen, p->n, foolc__nn_md_sample_stride(&p->t_md[i + 1]), i);
    }
    if (rs != FOOLC_OK) {
        foolc__free(nf.bad);
        return rs;
    }
    const int32_t classes = (int32_t)nn_numel(net->layers[p->L - 1].out_dims);
    const size_t lbytes = (size_t)p->n * (size_t)classes * sizeof(float);
    float *lg = (float *)p->tptr[p->L];
    if (p->rout.fwd) {
        rs = foolc__nn_reorder_run(fx, &p->rout, 0, lg, A + p->logits_off, scratch, p->L - 1);
        lg = (float *)(A + p->logits_off);
    }
    if (rs == FOOLC_OK && nf.count) {
        /* NaN logits for the samples concerned; the seed still sees them once (a model
         * wrapper's seed reports them); no backward pass. */
        for (int32_t s = 0; s < p->n; s++)
            if (nf.bad[s])
                for (int32_t j = 0; j < classes; j++) lg[(size_t)s * classes + j] = NAN;
        if (logits) memcpy(logits, lg, lbytes);
        if (seed) {
            float *dl = (float *)(A + p->dlogits_off);
            memset(dl, 0, lbytes);
            (void)seed(seed_user, lg, p->n, classes, dl);
        }
        rs = nf_report(net, &nf, first);
    }
    foolc__free(nf.bad);
    if (rs != FOOLC_OK || nf.count) return rs;
    if (logits) memcpy(logits, lg, lbytes);
    if (!seed) return FOOLC_OK;

    float *dl = (float *)(A + p->dlogits_off);
    memset(dl, 0, lbytes);
    int rc = seed(seed_user, lg, p->n, classes, dl);
    if (rc != 0)
        return foolc__error(FOOLC_E_ORACLE, "net: the seed callback returned %d", rc);
    if (!dx && !dparams) return FOOLC_OK;

    const float *dcur = dl;
    if (p->rout.fwd) {
        float *t = slot_buf(net, p, p->dslot[p->L]);
        FOOLC__CHECK(foolc__nn_reorder_run(fx, &p->rout, 1, dl, t, scratch, p->L - 1));
        dcur = t;
    }
    for (int32_t i = p->L - 1; i >= 0; i--) {
        const nn_layer *l = &net->layers[i];
        nn_step *st = &p->steps[i];
        args_base(net, p, i, &a);
        a.x = p->xptr[i];
        a.y = (float *)p->tptr[i + 1];
        a.dy = dcur;
        if (dparams && l->kind->backward_weights) {
            a.dw = dparams + l->woff;
            a.db = dparams + l->boff;
            FOOLC__CHECK(l->kind->backward_weights(l, st, &a));
        }
        if (i == 0 && !dx) break;
        float *target = i == 0 ? dx : slot_buf(net, p, p->dslot[i]);
        float *dxbuf;
        if (st->alias && p->rin[i].fwd) {
            dxbuf = (float *)dcur;  /* the same bytes in the layer's (plain) format */
        } else if (st->skip_backward) {
            dxbuf = target;         /* an aliased relu: target is dcur, already masked */
        } else {
            dxbuf = p->rin[i].fwd ? (float *)(A + p->d_off[2]) : target;
            a.dx = dxbuf;
            FOOLC__CHECK(l->kind->backward_data(l, st, &a));
        }
        if (p->rin[i].fwd)
            FOOLC__CHECK(foolc__nn_reorder_run(fx, &p->rin[i], 1, dxbuf, target, scratch,
                                               l->index));
        dcur = target;
    }
    return FOOLC_OK;
}
