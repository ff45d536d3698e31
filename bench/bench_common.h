/* Shared by the attack benchmarks (public API only): a monotonic clock and the process's CPU
 * clock, a shim that times every call into the model (optionally offering only decisions),
 * the first N test images a model classifies correctly, and a float comparison for medians. */
#ifndef FOOLC_BENCH_COMMON_H
#define FOOLC_BENCH_COMMON_H

#include <foolc.h>

#include <math.h>
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

/* CPU seconds used by the process so far (all threads). */
static inline double bench_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The timing shim: forwards each callback to the wrapped oracle and sums its wall time
 * (seconds) and the process's CPU time (cpu) spent in it. */
typedef struct bench_shim {
    foolc_oracle inner;
    double seconds, cpu;
} bench_shim;

static inline int bench_shim_scores(void *user, const float *x, int32_t n, float *logits)
{
    bench_shim *s = user;
    double t0 = bench_now(), c0 = bench_cpu();
    int rc = s->inner.scores(s->inner.user, x, n, logits);
    s->cpu += bench_cpu() - c0;
    s->seconds += bench_now() - t0;
    return rc;
}

static inline int bench_shim_vg(void *user, const float *x, int32_t n, foolc_seed_fn seed,
                                void *seed_user, float *logits, float *grad)
{
    bench_shim *s = user;
    double t0 = bench_now(), c0 = bench_cpu();
    int rc = s->inner.value_and_grad(s->inner.user, x, n, seed, seed_user, logits, grad);
    s->cpu += bench_cpu() - c0;
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

/* A decision-only view of the inner oracle, timed by s: labels are the argmax of the inner
 * scores (computed into `logits`, room for `cap` rows of n_classes); scores and
 * value_and_grad are hidden. */
typedef struct bench_dshim {
    bench_shim t;
    float *logits;
    int32_t cap;
} bench_dshim;

static inline int bench_dshim_decision(void *user, const float *x, int32_t n, int32_t *label)
{
    bench_dshim *s = user;
    int32_t k = s->t.inner.n_classes;
    if (n > s->cap) return 1;
    int rc = bench_shim_scores(&s->t, x, n, s->logits);
    if (rc) return rc;
    for (int32_t i = 0; i < n; i++) {
        const float *z = s->logits + (size_t)i * (size_t)k;
        int32_t b = 0;
        for (int32_t j = 1; j < k; j++) if (z[j] > z[b]) b = j;
        label[i] = b;
    }
    return 0;
}

/* Sets up s around `inner` (its max batch as the cap) and returns the decision-only oracle;
 * s->logits is malloc'ed (free it), NULL on failure. */
static inline foolc_oracle bench_dshim_oracle(bench_dshim *s, foolc_oracle inner)
{
    s->t.inner = inner;
    s->t.seconds = 0;
    s->t.cpu = 0;
    s->cap = inner.input.n;
    s->logits = malloc((size_t)s->cap * (size_t)inner.n_classes * sizeof(float));
    foolc_oracle o = inner;
    o.user = s;
    o.scores = NULL;
    o.value_and_grad = NULL;
    o.decision = bench_dshim_decision;
    return o;
}

static inline int bench_cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorted in place; NAN when n is 0). */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double bench_median_d(double *v, int n)
{
    if (n == 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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
