/* The foolc_net handle: creation from an architecture text with seeded Kaiming-uniform
 * weights, accessors, parameters in one flat array, backend choice, forward and gradient
 * passes (argument checks, then a cached plan), and the oracle that wraps them. */
#include "nn/graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

foolc_net *foolc__nn_net_alloc(void)
{
    foolc_net *net = foolc__calloc(1, sizeof *net);
    if (!net) return NULL;
    net->lo = 0.0f;
    net->hi = 1.0f;
    net->backend = FOOLC_BACKEND_FAST;
    net->pver = 1;
    return net;
}

foolc_status foolc__nn_alloc_params(foolc_net *net)
{
    net->params = foolc__calloc((size_t)net->n_params + 1, sizeof(float));
    if (!net->params) return foolc__nomem("the parameters");
    net->stats = foolc__calloc((size_t)net->n_stats + 1, sizeof(float));
    if (!net->stats) return foolc__nomem("the running statistics");
    for (int32_t i = 0; i < net->L; i++) {
        nn_layer *l = &net->layers[i];
        l->w = l->nw ? net->params + l->woff : NULL;
        l->b = l->nb ? net->params + l->boff : NULL;
        l->mean = l->ns ? net->stats + l->soff : NULL;
        l->var = l->ns ? net->stats + l->soff + l->ns / 2 : NULL;
    }
    if (net->graph) foolc__nn_graph_bind(net);
    return FOOLC_OK;
}

static void init_params(foolc_net *net, uint64_t seed)
{
    if (net->graph) {
        foolc__nn_graph_init_params(net, seed);
        net->pver++;
        return;
    }
    for (int32_t i = 0; i < net->L; i++) {
        nn_layer *l = &net->layers[i];
        if (l->kind->init_params) l->kind->init_params(l, seed);
    }
    net->pver++;
}

foolc_status foolc_net_new(const char *arch, uint64_t seed, foolc_net **out)
{
    foolc__error_clear();
    if (!out) return foolc__error(FOOLC_E_INVALID, "net: out is NULL");
    *out = NULL;
    foolc_net *net = foolc__nn_net_alloc();
    if (!net) return foolc__nomem("a net");
    foolc_status st = foolc__nn_parse(arch, net);
    if (st == FOOLC_OK) st = foolc__nn_alloc_params(net);
    if (st != FOOLC_OK) {
        foolc_net_free(net);
        return st;
    }
    init_params(net, seed);
    *out = net;
    return FOOLC_OK;
}

void foolc_net_free(foolc_net *net)
{
    if (!net) return;
    foolc__nn_plans_clear(net);
    foolc__nn_fast_free(net->fast);
    foolc__free(net->arena_raw);
    foolc__free(net->params);
    foolc__free(net->stats);
    foolc__free(net->layers);
    foolc__free(net->arch);
    foolc__nn_graph_free(net->graph);
    foolc__free(net);
}

const char *foolc_net_arch(const foolc_net *net) { return net && net->arch ? net->arch : ""; }

const char *foolc_net_preset(const char *name)
{
    if (!name) return NULL;
    if (!strcmp(name, "cnn"))
        return "input c=1 h=28 w=28; conv2d out=32 k=3 p=1; relu; maxpool2d k=2; "
               "conv2d out=64 k=3 p=1; relu; maxpool2d k=2; flatten; dense out=128; relu; "
               "dense out=10";
    if (!strcmp(name, "mlp"))
        return "input c=1 h=28 w=28; flatten; dense out=256; relu; dense out=256; relu; "
               "dense out=10";
    if (!strcmp(name, "resnet")) /* docs/net.md, "Training" */
        return "input c=1 h=28 w=28; c1 = conv2d(x) out=32 k=3 p=1 bias=0; b1 = batchnorm(c1); "
               "r1 = relu(b1); m1 = maxpool2d(r1) k=2; "
               "a1 = conv2d(m1) out=32 k=3 p=1 bias=0; a1b = batchnorm(a1); a1r = relu(a1b); "
               "a2 = conv2d(a1r) out=32 k=3 p=1 bias=0; a2b = batchnorm(a2); s1 = add(a2b, m1); "
               "o1 = relu(s1); "
               "d1 = conv2d(o1) out=64 k=3 s=2 p=1 bias=0; d1b = batchnorm(d1); d1r = relu(d1b); "
               "d2 = conv2d(d1r) out=64 k=3 p=1 bias=0; d2b = batchnorm(d2); "
               "p2 = conv2d(o1) out=64 k=1 s=2 bias=0; p2b = batchnorm(p2); s2 = add(d2b, p2b); "
               "o2 = relu(s2); f = flatten(o2); logits = dense(f) out=10";
    return NULL;
}

foolc_shape foolc_net_input(const foolc_net *net)
{
    foolc_shape s = { 0, 0, 0, 0 };
    if (net) {
        s.c = net->in.c;
        s.h = net->in.h;
        s.w = net->in.w;
    }
    return s;
}

int32_t foolc_net_classes(const foolc_net *net)
{
    return net && net->L > 0 ? (int32_t)nn_numel(net->layers[net->L - 1].out_dims) : 0;
}

void foolc_net_bounds(const foolc_net *net, float *lo, float *hi)
{
    if (lo) *lo = net ? net->lo : 0.0f;
    if (hi) *hi = net ? net->hi : 0.0f;
}

foolc_status foolc_net_set_bounds(foolc_net *net, float lo, float hi)
{
    foolc__error_clear();
    if (!net) return foolc__error(FOOLC_E_INVALID, "net: set_bounds: net is NULL");
    if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
        return foolc__error(FOOLC_E_INVALID, "net: set_bounds: [%g, %g]: need finite lo < hi",
                            (double)lo, (double)hi);
    net->lo = lo;
    net->hi = hi;
    return FOOLC_OK;
}

double foolc_net_flops(const foolc_net *net)
{
    double f = 0;
    if (!net) return 0;
    if (net->graph) return foolc__nn_graph_flops(net);
    for (int32_t i = 0; i < net->L; i++) f += net->layers[i].kind->flops(&net->layers[i]);
    return f;
}

int64_t foolc_net_param_count(const foolc_net *net) { return net ? net->n_params : 0; }

foolc_status foolc_net_get_params(const foolc_net *net, float *out)
{
    foolc__error_clear();
    if (!net || !out) return foolc__error(FOOLC_E_INVALID, "net: get_params: NULL argument");
    memcpy(out, net->params, (size_t)net->n_params * sizeof(float));
    return FOOLC_OK;
}

foolc_status foolc_net_set_params(foolc_net *net, const float *in)
{
    foolc__error_clear();
    if (!net || !in) return foolc__error(FOOLC_E_INVALID, "net: set_params: NULL argument");
    FOOLC__CHECK(foolc__nn_check_params(net, in, FOOLC_E_INVALID, "set_params"));
    memmove(net->params, in, (size_t)net->n_params * sizeof(float));
    net->pver++;
    return FOOLC_OK;
}

foolc_status foolc_net_set_backend(foolc_net *net, foolc_backend b)
{
    foolc__error_clear();
    if (!net) return foolc__error(FOOLC_E_INVALID, "net: set_backend: net is NULL");
    if ((int)b < 0 || b >= FOOLC_BACKEND_COUNT)
        return foolc__error(FOOLC_E_INVALID, "net: unknown backend %d", (int)b);
    net->backend = b;
    return FOOLC_OK;
}

int64_t foolc__nn_bound_affine(nn_layer *l, int64_t fan_in)
{
    double gain = 0, shift = 0;
    for (int64_t o = 0; o < l->out; o++) {
        const float *w = l->w + o * fan_in;
        double sum = 0;
        for (int64_t j = 0; j < fan_in; j++) sum += fabs((double)w[j]);
        if (sum > gain) gain = sum;
        if (fabs((double)l->b[o]) > shift) shift = fabs((double)l->b[o]);
    }
    /* NaN weights or biases (never accepted, but never trusted either): no bound. */
    l->gain = isfinite(gain) ? gain : INFINITY;
    l->shift = isfinite(shift) ? shift : INFINITY;
    return fan_in + 1;
}

foolc_status foolc__nn_run(foolc_net *net, const float *x, int32_t n, int32_t first,
                           foolc_seed_fn seed, void *seed_user, float *logits, float *dx,
                           float *dparams)
{
    if (net->graph)
        return foolc__nn_graph_run(net, x, n, first, seed, seed_user, logits, dx, dparams);
    unsigned need = 0;
    if (seed && (dx || dparams)) need = NN_NEED_DATA | (dparams ? NN_NEED_WEIGHTS : 0u);
    nn_plan *p = NULL;
    int recheck = 0;
    FOOLC__CHECK(foolc__nn_plan_get(net, n, need, &p));
    foolc_status st = foolc__nn_exec(net, p, x, first, seed, seed_user, logits, dx, dparams,
                                     &recheck);
    if (st != FOOLC_OK || !recheck) return st;
    /* Something might overflow: again on a plan that checks every layer's output. */
    FOOLC__CHECK(foolc__nn_plan_get(net, n, need | NN_NEED_CHECK, &p));
    return foolc__nn_exec(net, p, x, first, seed, seed_user, logits, dx, dparams, &recheck);
}

static foolc_status check_batch(const foolc_net *net, const float *x, int32_t n,
                                const char *fn)
{
    if (!net) return foolc__error(FOOLC_E_INVALID, "net: %s: net is NULL", fn);
    if (!x) return foolc__error(FOOLC_E_INVALID, "net: %s: x is NULL", fn);
    if (n < 1) return foolc__error(FOOLC_E_INVALID, "net: %s: n must be >= 1, got %d", fn, (int)n);
    return FOOLC_OK;
}

foolc_status foolc_net_forward(foolc_net *net, const float *x, int32_t n, float *logits)
{
    foolc__error_clear();
    FOOLC__CHECK(check_batch(net, x, n, "forward"));
    if (!logits) return foolc__error(FOOLC_E_INVALID, "net: forward: logits is NULL");
    const size_t d = (size_t)nn_numel(net->in), k = (size_t)foolc_net_classes(net);
    /* A chunk that reaches NaN or Inf has NaN logits for the samples concerned; the others
     * are still computed, and the first chunk's message is the one kept. */
    char msg[1024] = "";
    for (int32_t i = 0; i < n; i += NN_FWD_CHUNK) {
        int32_t m = n - i < NN_FWD_CHUNK ? n - i : NN_FWD_CHUNK;
        foolc_status st = foolc__nn_run(net, x + (size_t)i * d, m, i, NULL, NULL,
                                        logits + (size_t)i * k, NULL, NULL);
        if (st == FOOLC_E_NONFINITE && !msg[0]) snprintf(msg, sizeof msg, "%s", foolc_errmsg());
        else if (st != FOOLC_OK && st != FOOLC_E_NONFINITE) return st;
    }
    return msg[0] ? foolc__error(FOOLC_E_NONFINITE, "%s", msg) : FOOLC_OK;
}

foolc_status foolc_net_grad(foolc_net *net, const float *x, int32_t n, foolc_seed_fn seed,
                            void *seed_user, float *logits, float *dx, float *dparams)
{
    foolc__error_clear();
    FOOLC__CHECK(check_batch(net, x, n, "grad"));
    if (!seed) return foolc__error(FOOLC_E_INVALID, "net: grad: seed is NULL");
    if (dparams) memset(dparams, 0, (size_t)net->n_params * sizeof(float));
    return foolc__nn_run(net, x, n, 0, seed, seed_user, logits, dx, dparams);
}

/* The oracle's callbacks: a NaN or Inf reached inside the net leaves NaN logits for the
 * samples concerned, which the model wrapper reports as FOOLC_E_NONFINITE naming the sample
 * (with the net's message as the detail). */
static int oracle_scores(void *user, const float *x, int32_t n, float *logits)
{
    foolc_status st = foolc_net_forward(user, x, n, logits);
    return st == FOOLC_OK || st == FOOLC_E_NONFINITE ? 0 : 1;
}

static int oracle_value_and_grad(void *user, const float *x, int32_t n, foolc_seed_fn seed,
                                 void *seed_user, float *logits, float *grad)
{
    foolc_status st = foolc_net_grad(user, x, n, seed, seed_user, logits, grad, NULL);
    return st == FOOLC_OK || st == FOOLC_E_NONFINITE ? 0 : 1;
}

foolc_net *foolc__nn_oracle_net(const foolc_oracle *o)
{
    return o && o->scores == oracle_scores ? o->user : NULL;
}

foolc_status foolc_net_oracle(foolc_net *net, int32_t max_batch, foolc_oracle *out)
{
    foolc__error_clear();
    if (!net || !out) return foolc__error(FOOLC_E_INVALID, "net: oracle: NULL argument");
    if (max_batch < 1)
        return foolc__error(FOOLC_E_INVALID, "net: oracle: max_batch must be >= 1, got %d",
                            (int)max_batch);
    if (foolc_net_classes(net) < 2)
        return foolc__error(FOOLC_E_INVALID,
                            "net: oracle: the net has %d output, an oracle needs >= 2 classes",
                            (int)foolc_net_classes(net));
    memset(out, 0, sizeof *out);
    out->version = FOOLC_ORACLE_VERSION;
    out->input.n = max_batch;
    out->input.c = net->in.c;
    out->input.h = net->in.h;
    out->input.w = net->in.w;
    out->n_classes = foolc_net_classes(net);
    out->lo = net->lo;
    out->hi = net->hi;
    out->user = net;
    out->scores = oracle_scores;
    out->value_and_grad = oracle_value_and_grad;
    out->decision = NULL;
    return FOOLC_OK;
}
