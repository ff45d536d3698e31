/* Training and evaluation: Adam on the mean softmax cross-entropy (log-sum-exp, so large
 * logits do not overflow) over minibatches drawn from a seeded shuffle, with progress and
 * cancellation; and the accuracy of a net on labelled images. */
#include "nn/graph_train.h"
#include "nn/nn.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#undef foolc_train_defaults
#undef foolc_net_train

/* The options of this version as the first v1 bytes of a caller's struct: the size of the
 * struct as the first header defined it. */
#define TRAIN_OPTS_V1 (offsetof(foolc_train_opts, seed) + sizeof(uint64_t))

static void train_defaults(foolc_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 5;
    o->batch = 128;
    o->lr = 1e-3;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->weight_decay = 0.0;
    o->seed = 0;
    o->temperature = 1.0;
    o->adv_eps = 0.0;
    o->adv_steps = 7;
    o->adv_step = 0.0;
}

foolc_status foolc_train_defaults_sized(foolc_train_opts *o, size_t size)
{
    if (!o) return foolc__error(FOOLC_E_INVALID, "train defaults: NULL options");
    if (size < TRAIN_OPTS_V1)
        return foolc__error(FOOLC_E_VERSION, "train defaults: foolc_train_opts of %zu bytes; "
                            "this library needs at least %zu", size, (size_t)TRAIN_OPTS_V1);
    foolc_train_opts d;
    train_defaults(&d);
    memcpy(o, &d, size < sizeof d ? size : sizeof d);
    return FOOLC_OK;
}

void foolc_train_defaults(foolc_train_opts *o)
{
    if (o) train_defaults(o);
}

typedef struct xent {
    const int32_t *y;
    double loss;                 /* summed over the samples of the batch */
    double inv_t;                /* 1 / temperature */
} xent;

/* d(mean cross-entropy of softmax(logits / T))/d(logits) = (softmax - onehot) / (n T). */
static int xent_seed(void *user, const float *logits, int32_t n, int32_t k, float *d)
{
    xent *c = user;
    const double it = c->inv_t;
    for (int32_t r = 0; r < n; r++) {
        const float *l = logits + (size_t)r * k;
        float *g = d + (size_t)r * k;
        float m = l[0];
        for (int32_t j = 1; j < k; j++)
            if (l[j] > m) m = l[j];
        double s = 0;
        for (int32_t j = 0; j < k; j++) s += exp(((double)l[j] - m) * it);
        double lse = m * it + log(s);
        c->loss += lse - l[c->y[r]] * it;
        for (int32_t j = 0; j < k; j++)
            g[j] = (float)((exp((double)l[j] * it - lse) - (j == c->y[r])) * it / n);
    }
    return 0;
}

static foolc_status check_opts(const foolc_train_opts *o)
{
    if (o->epochs < 1)
        return foolc__error(FOOLC_E_INVALID, "net: train: epochs must be >= 1, got %d",
                            (int)o->epochs);
    if (o->batch < 1)
        return foolc__error(FOOLC_E_INVALID, "net: train: batch must be >= 1, got %d",
                            (int)o->batch);
    if (!isfinite(o->lr) || !(o->lr > 0) || o->lr > FLT_MAX)
        return foolc__error(FOOLC_E_INVALID, "net: train: lr must be > 0 and a float32 (at "
                            "most %g), got %g", (double)FLT_MAX, o->lr);
    if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1))
        return foolc__error(FOOLC_E_INVALID, "net: train: beta1 and beta2 must be in [0, 1), "
                            "got %g and %g", o->beta1, o->beta2);
    if (!isfinite(o->eps) || !(o->eps > 0))
        return foolc__error(FOOLC_E_INVALID, "net: train: eps must be > 0, got %g", o->eps);
    if (!isfinite(o->weight_decay) || !(o->weight_decay >= 0))
        return foolc__error(FOOLC_E_INVALID, "net: train: weight_decay must be >= 0, got %g",
                            o->weight_decay);
    if (!(o->temperature >= 1e-3 && o->temperature <= 1e6))
        return foolc__error(FOOLC_E_INVALID, "net: train: temperature must be in [0.001, "
                            "1e6], got %g", o->temperature);
    if (!(o->adv_eps >= 0 && o->adv_eps <= 1e30))
        return foolc__error(FOOLC_E_INVALID, "net: train: adv_eps must be >= 0 and finite, "
                            "got %g", o->adv_eps);
    if (o->adv_eps > 0 && (o->adv_steps < 1 || o->adv_steps > 10000))
        return foolc__error(FOOLC_E_INVALID, "net: train: adv_steps must be in [1, 10000], "
                            "got %d", (int)o->adv_steps);
    if (!(o->adv_step >= 0 && o->adv_step <= 1e30))
        return foolc__error(FOOLC_E_INVALID, "net: train: adv_step must be >= 0 and finite "
                            "(0: 2.5 * adv_eps / adv_steps), got %g", o->adv_step);
    return FOOLC_OK;
}

static foolc_status check_labels(const int32_t *y, int32_t n, int32_t k, const char *fn)
{
    for (int32_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= k)
            return foolc__error(FOOLC_E_INVALID, "net: %s: label %d of sample %d is outside "
                                "[0, %d)", fn, (int)y[i], (int)i, (int)k);
    return FOOLC_OK;
}

/* One Adam step (PyTorch's form; weight decay added to the gradient, as torch.optim.Adam). */
static void adam(float *p, const float *g, float *m, float *v, int64_t count,
                 const foolc_train_opts *o, int64_t t)
{
    const float b1 = (float)o->beta1, b2 = (float)o->beta2, wd = (float)o->weight_decay;
    const float c1 = (float)(1.0 - pow(o->beta1, (double)t));
    const float c2 = (float)(1.0 - pow(o->beta2, (double)t));
    const float step = (float)o->lr / c1, isc2 = 1.0f / sqrtf(c2), eps = (float)o->eps;
    for (int64_t j = 0; j < count; j++) {
        float gj = g[j] + wd * p[j];
        m[j] = b1 * m[j] + (1.0f - b1) * gj;
        v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
        p[j] -= step * m[j] / (sqrtf(v[j]) * isc2 + eps);
    }
}

/* PGD adversarial training: replaces the nb images of xb (clean copies in x0, of data set
 * indices idx) by Linf PGD points within o->adv_eps of them and the bounds [lo, hi]: a
 * uniform start keyed by (seed, epoch, index), then adv_steps signed steps on the training
 * loss (the input gradient dx), each projected. The weights are not touched. */
static foolc_status adv_batch(foolc_net *net, const foolc_train_opts *o, int32_t epoch,
                              const int32_t *idx, const int32_t *yb, int32_t nb, size_t d,
                              float *xb, const float *x0, float *dx)
{
    float lo, hi;
    foolc_net_bounds(net, &lo, &hi);
    const float eps = (float)o->adv_eps;
    const float step = (float)(o->adv_step > 0 ? o->adv_step
                                               : 2.5 * o->adv_eps / o->adv_steps);
    const uint64_t key = foolc__rng_key(o->seed ^ 0xAD5E75A1D0C0FFEEull, (uint64_t)epoch);
    for (int32_t r = 0; r < nb; r++) {
        const uint64_t base = (uint64_t)idx[r] * (uint64_t)d;
        float *x = xb + (size_t)r * d;
        const float *c = x0 + (size_t)r * d;
        for (size_t j = 0; j < d; j++) {
            float u = (float)(2.0 * foolc__rng_at_uniform(key, base + j) - 1.0);
            float v = c[j] + eps * u;
            x[j] = v < lo ? lo : v > hi ? hi : v;
        }
    }
    for (int32_t s = 0; s < o->adv_steps; s++) {
        xent c = { yb, 0.0, 1.0 / o->temperature };
        FOOLC__CHECK(foolc__nn_run(net, xb, nb, 0, xent_seed, &c, NULL, dx, NULL));
        for (size_t j = 0; j < (size_t)nb * d; j++) {
            float v = xb[j] + (dx[j] > 0 ? step : dx[j] < 0 ? -step : 0.0f);
            float a = x0[j] - eps, b = x0[j] + eps;
            v = v < a ? a : v > b ? b : v;
            xb[j] = v < lo ? lo : v > hi ? hi : v;
        }
    }
    return FOOLC_OK;
}

foolc_status foolc_net_train(foolc_net *net, const foolc_data *train, const foolc_train_opts *o,
                             foolc_progress_fn progress, void *user, double *loss_out)
{
    return foolc_net_train_sized(net, train, o, sizeof *o, progress, user, loss_out);
}

foolc_status foolc_net_train_sized(foolc_net *net, const foolc_data *train,
                                   const foolc_train_opts *o_in, size_t o_size,
                                   foolc_progress_fn progress, void *user, double *loss_out)
{
    foolc_train_opts opts;
    const foolc_train_opts *o = NULL;
    if (o_in) {
        if (o_size < TRAIN_OPTS_V1)
            return foolc__error(FOOLC_E_VERSION, "net: train: foolc_train_opts of %zu bytes; "
                                "this library needs at least %zu (a program built against "
                                "another foolc.h?)", o_size, (size_t)TRAIN_OPTS_V1);
        train_defaults(&opts);   /* fields the caller's struct lacks keep their defaults */
        memcpy(&opts, o_in, o_size < sizeof opts ? o_size : sizeof opts);
        o = &opts;
    }
    foolc__error_clear();
    if (!net || !train || !o) return foolc__error(FOOLC_E_INVALID, "net: train: NULL argument");
    FOOLC__CHECK(check_opts(o));
    const foolc_shape s = train->shape;
    if (s.c != net->in.c || s.h != net->in.h || s.w != net->in.w)
        return foolc__error(FOOLC_E_INVALID, "net: train: data is %dx%dx%d, the net takes "
                            "%dx%dx%d", (int)s.c, (int)s.h, (int)s.w, (int)net->in.c,
                            (int)net->in.h, (int)net->in.w);
    if (s.n < 1 || !train->x || !train->y)
        return foolc__error(FOOLC_E_INVALID, "net: train: the data set is empty");
    const int32_t k = foolc_net_classes(net);
    FOOLC__CHECK(check_labels(train->y, s.n, k, "train"));

    const int32_t N = s.n, B = o->batch < N ? o->batch : N;
    const size_t d = (size_t)nn_numel(net->in), P = (size_t)net->n_params;
    int32_t *perm = foolc__calloc((size_t)N, sizeof *perm);
    int32_t *yb = foolc__calloc((size_t)B, sizeof *yb);
    float *xb = foolc__calloc(foolc__mul((size_t)B, d), sizeof *xb);
    float *g = foolc__calloc(P + 1, sizeof *g), *m = foolc__calloc(P + 1, sizeof *m);
    float *v = foolc__calloc(P + 1, sizeof *v), *prev = foolc__calloc(P + 1, sizeof *prev);
    const int adv = o->adv_eps > 0;
    float *x0 = adv ? foolc__calloc(foolc__mul((size_t)B, d), sizeof *x0) : NULL;
    float *dx = adv ? foolc__calloc(foolc__mul((size_t)B, d), sizeof *dx) : NULL;
    foolc_status st = FOOLC_OK;
    if (!perm || !yb || !xb || !g || !m || !v || !prev || (adv && (!x0 || !dx)))
        st = foolc__nomem("training buffers");
    /* A net with batchnorm trains with batch statistics (graph_train.c). */
    nn_gtrain *gt = NULL;
    if (st == FOOLC_OK && foolc__nn_has_batchnorm(net)) st = foolc__nn_gtrain_new(net, B, &gt);

    const int64_t total = (int64_t)o->epochs * N;
    int64_t done = 0, t = 0;
    double epoch_loss = 0;
    for (int32_t e = 0; st == FOOLC_OK && e < o->epochs; e++) {
        const uint64_t key = foolc__rng_key(o->seed, (uint64_t)e);
        for (int32_t i = 0; i < N; i++) perm[i] = i;
        for (int32_t i = N - 1; i > 0; i--) {
            uint64_t r = foolc__rng_at(key, (uint64_t)i) >> 32;
            uint32_t j = (uint32_t)((r * (uint64_t)(i + 1)) >> 32);
            int32_t tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        double loss = 0;
        for (int32_t b0 = 0; st == FOOLC_OK && b0 < N; b0 += B) {
            const int32_t nb = N - b0 < B ? N - b0 : B;
            for (int32_t r = 0; r < nb; r++) {
                memcpy(xb + (size_t)r * d, train->x + (size_t)perm[b0 + r] * d,
                       d * sizeof(float));
                yb[r] = train->y[perm[b0 + r]];
            }
            if (adv) {
                memcpy(x0, xb, (size_t)nb * d * sizeof *x0);
                st = adv_batch(net, o, e, perm + b0, yb, nb, d, xb, x0, dx);
                if (st != FOOLC_OK) {
                    foolc__error_prefix(st, "net: train: epoch %d, PGD before step %lld",
                                        (int)e + 1, (long long)t + 1);
                    break;
                }
            }
            xent c = { yb, 0.0, 1.0 / o->temperature };
            memset(g, 0, P * sizeof *g);
            t++;
            st = gt ? foolc__nn_gtrain_pass(gt, xb, nb, xent_seed, &c, g)
                    : foolc__nn_run(net, xb, nb, 0, xent_seed, &c, NULL, NULL, g);
            if (st != FOOLC_OK) {
                foolc__error_prefix(st, "net: train: epoch %d, step %lld", (int)e + 1,
                                    (long long)t);
                break;
            }
            if (!isfinite(c.loss)) {
                st = foolc__error(FOOLC_E_NONFINITE, "net: train: the loss became %g in epoch "
                                  "%d, step %lld (try a smaller lr)", c.loss, (int)e + 1,
                                  (long long)t);
                break;
            }
            /* A step that makes a parameter NaN or Inf fails, naming it, and the net keeps
             * the parameters it had before that step (never a silently broken model). */
            memcpy(prev, net->params, P * sizeof *prev);
            adam(net->params, g, m, v, (int64_t)P, o, t);
            net->pver++;
            char text[160];
            const nn_layer *bad = foolc__nn_find_nonfinite(net, net->params, text, sizeof text);
            if (bad) {
                memcpy(net->params, prev, P * sizeof *prev);
                net->pver++;
                st = foolc__error(FOOLC_E_NONFINITE, "net: train: step %lld (epoch %d): after "
                                  "the update %s (%s layer %d); try a smaller lr (the net "
                                  "keeps its parameters from before that step)", (long long)t,
                                  (int)e + 1, text, bad->kind->name, (int)bad->index);
                break;
            }
            if (gt) {
                foolc__nn_gtrain_commit(gt);
                net->pver++;
            }
            loss += c.loss;
            done += nb;
            if (progress && progress(user, done, total) != 0)
                st = foolc__error(FOOLC_E_CANCELLED, "net: train: cancelled after %lld of %lld "
                                  "images", (long long)done, (long long)total);
        }
        epoch_loss = loss / N;
    }
    if (st == FOOLC_OK && loss_out) *loss_out = epoch_loss;
    foolc__free(perm);
    foolc__free(yb);
    foolc__free(xb);
    foolc__free(g);
    foolc__free(m);
    foolc__free(v);
    foolc__free(prev);
    foolc__nn_gtrain_free(gt);
    foolc__free(x0);
    foolc__free(dx);
    return st;
}

foolc_status foolc_net_accuracy(foolc_net *net, const float *x, const int32_t *y, int32_t n,
                                double *acc)
{
    foolc__error_clear();
    if (!net || !x || !y || !acc)
        return foolc__error(FOOLC_E_INVALID, "net: accuracy: NULL argument");
    if (n < 1)
        return foolc__error(FOOLC_E_INVALID, "net: accuracy: n must be >= 1, got %d", (int)n);
    const int32_t k = foolc_net_classes(net);
    FOOLC__CHECK(check_labels(y, n, k, "accuracy"));
    const size_t d = (size_t)nn_numel(net->in);
    float *lg = foolc__malloc((size_t)NN_FWD_CHUNK * (size_t)k * sizeof *lg);
    if (!lg) return foolc__nomem("logits");
    int64_t correct = 0;
    foolc_status st = FOOLC_OK;
    for (int32_t i = 0; st == FOOLC_OK && i < n; i += NN_FWD_CHUNK) {
        const int32_t m = n - i < NN_FWD_CHUNK ? n - i : NN_FWD_CHUNK;
        st = foolc_net_forward(net, x + (size_t)i * d, m, lg);
        for (int32_t r = 0; st == FOOLC_OK && r < m; r++) {
            const float *l = lg + (size_t)r * k;
            int32_t best = 0;
            for (int32_t j = 1; j < k; j++)
                if (l[j] > l[best]) best = j;
            correct += best == y[i + r];
        }
    }
    foolc__free(lg);
    if (st == FOOLC_OK) *acc = (double)correct / n;
    return st;
}
