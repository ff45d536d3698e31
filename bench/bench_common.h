/* Shared by the attack benchmarks (public API only): a monotonic clock, a shim that times
 * every call into the model, the first N test images a model classifies correctly, and a
 * float comparison for medians. */
#ifndef FOOLC_BENCH_COMMON_H
#define FOOLC_BENCH_COMMON_H

#include <foolc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The timing shim: forwards each callback to the wrapped oracle and sums its time. */
typedef struct bench_shim {
    foolc_oracle inner;
    double seconds;
} bench_shim;

static inline int bench_shim_scores(void *user, const float *x, int32_t n, float *logits)
{
    bench_shim *s = user;
    double t0 = bench_now();
    int rc = s->inner.scores(s->inner.user, x, n, logits);
    s->seconds += bench_now() - t0;
    return rc;
}

static inline int bench_shim_vg(void *user, const float *x, int32_t n, foolc_seed_fn seed,
                                void *seed_user, float *logits, float *grad)
{
    bench_shim *s = user;
    double t0 = bench_now();
    int rc = s->inner.value_and_grad(s->inner.user, x, n, seed, seed_user, logits, grad);
    s->seconds += bench_now() - t0;
    return rc;
}

/* The inner oracle with its scores and value_and_grad timed by s. */
static inline foolc_oracle bench_shim_oracle(bench_shim *s)
{
    foolc_oracle o = s->inner;
    o.user = s;
    o.scores = bench_shim_scores;
    o.value_and_grad = bench_shim_vg;
    return o;
}

static inline int bench_cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Loads the model (default ~/.cache/foolc/cnn.npz) and the first n_want Fashion-MNIST test
 * images it classifies correctly into freshly allocated x, y (n of them). Prints what went
 * wrong and returns non-zero on failure. */
static inline int bench_load(const char *prog, const char *model_path, int n_want,
                             foolc_net **net, float **x, int32_t **y, int32_t *n)
{
    char dflt[1024];
    const char *home = getenv("HOME");
    if (!model_path) {
        snprintf(dflt, sizeof dflt, "%s/.cache/foolc/cnn.npz", home ? home : ".");
        model_path = dflt;
    }
    if (foolc_net_load(model_path, net) < 0) {
        fprintf(stderr, "%s: %s (train it with: foolc train --arch cnn --epochs 4 --out %s)\n",
                prog, foolc_errmsg(), model_path);
        return 1;
    }
    foolc_data test;
    if (foolc_data_load("fashion-mnist", "test", &test) < 0) {
        fprintf(stderr, "%s: %s\n", prog, foolc_errmsg());
        return 1;
    }
    foolc_shape in = foolc_net_input(*net);
    size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    int32_t k = foolc_net_classes(*net);
    *x = malloc((size_t)n_want * d * sizeof(float));
    *y = malloc((size_t)n_want * sizeof(int32_t));
    float *z = malloc((size_t)k * sizeof(float));
    *n = 0;
    int rc = !*x || !*y || !z;
    for (int32_t i = 0; !rc && i < test.shape.n && *n < n_want; i++) {
        if (foolc_net_forward(*net, test.x + (size_t)i * d, 1, z) < 0) {
            fprintf(stderr, "%s: %s\n", prog, foolc_errmsg());
            rc = 1;
            break;
        }
        int32_t best = 0;
        for (int32_t j = 1; j < k; j++) if (z[j] > z[best]) best = j;
        if (best != test.y[i]) continue;
        memcpy(*x + (size_t)*n * d, test.x + (size_t)i * d, d * sizeof(float));
        (*y)[(*n)++] = best;
    }
    free(z);
    foolc_data_free(&test);
    return rc;
}

#endif
