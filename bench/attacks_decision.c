/* Benchmark of the decision-based attacks (Boundary, HopSkipJump L2/Linf by default) on the
 * first N correctly classified Fashion-MNIST test images of a model file, through a
 * decision-only oracle (the model's scores are hidden): per attack and per-sample query
 * budget, the success rate, the median distance in the attack's norm (failures count as
 * infinite), queries per image and wall seconds. Public API only. bench/foolbox_decision.py
 * runs Foolbox 3 on the same model, images and budgets.
 * Usage: attacks_decision [model.npz] [-n N] [-n25 N] [-a name,...] [-q b1,b2,...]
 *        [-b max_batch]   (-n25: images for budgets of 25000 and more, default 20) */
#include <foolc.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The decision-only shim: labels from the wrapped oracle's scores; nothing else offered. */
typedef struct shim {
    foolc_oracle inner;
    float *logits;
    int32_t cap;
    double seconds;     /* time spent in the model */
} shim;

static int shim_decision(void *user, const float *x, int32_t n, int32_t *label)
{
    shim *s = user;
    int32_t k = s->inner.n_classes;
    if (n > s->cap) return 1;
    double t0 = now();
    int rc = s->inner.scores(s->inner.user, x, n, s->logits);
    s->seconds += now() - t0;
    if (rc) return rc;
    for (int32_t i = 0; i < n; i++) {
        const float *z = s->logits + (size_t)i * (size_t)k;
        int32_t b = 0;
        for (int32_t j = 1; j < k; j++) if (z[j] > z[b]) b = j;
        label[i] = b;
    }
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *home = getenv("HOME"), *model_path = NULL;
    const char *list = "boundary,hsj-l2,hsj-linf", *budgets = "1000,5000,25000";
    char dflt_path[1024];
    int n_want = 100, n_big = 20, max_batch = 256;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n_want = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n25") && i + 1 < argc) n_big = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-a") && i + 1 < argc) list = argv[++i];
        else if (!strcmp(argv[i], "-q") && i + 1 < argc) budgets = argv[++i];
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) max_batch = atoi(argv[++i]);
        else model_path = argv[i];
    }
    if (!model_path) {
        snprintf(dflt_path, sizeof dflt_path, "%s/.cache/foolc/cnn.npz", home ? home : ".");
        model_path = dflt_path;
    }
    foolc_net *net;
    if (foolc_net_load(model_path, &net) < 0) {
        fprintf(stderr, "attacks_decision: %s (train it with: foolc train --arch cnn "
                "--epochs 4 --out %s)\n", foolc_errmsg(), model_path);
        return 1;
    }
    foolc_data test;
    if (foolc_data_load("fashion-mnist", "test", &test) < 0) {
        fprintf(stderr, "attacks_decision: %s\n", foolc_errmsg());
        return 1;
    }
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    float *x = malloc((size_t)n_want * d * sizeof(float));
    int32_t *y = malloc((size_t)n_want * sizeof(int32_t));
    int32_t k = foolc_net_classes(net), n = 0;
    float *z = malloc((size_t)k * sizeof(float));
    for (int32_t i = 0; i < test.shape.n && n < n_want; i++) {
        if (foolc_net_forward(net, test.x + (size_t)i * d, 1, z) < 0) return 1;
        int32_t best = 0;
        for (int32_t j = 1; j < k; j++) if (z[j] > z[best]) best = j;
        if (best != test.y[i]) continue;
        memcpy(x + (size_t)n * d, test.x + (size_t)i * d, d * sizeof(float));
        y[n++] = best;
    }
    shim sh;
    if (foolc_net_oracle(net, max_batch, &sh.inner) < 0) return 1;
    sh.cap = sh.inner.input.n;
    sh.logits = malloc((size_t)sh.cap * (size_t)k * sizeof(float));
    foolc_oracle o = sh.inner;
    o.user = &sh;
    o.scores = NULL;
    o.value_and_grad = NULL;
    o.decision = shim_decision;
    foolc_model *model;
    if (foolc_model_new(&o, &model) < 0) return 1;

    float *xadv = malloc((size_t)n * d * sizeof(float)), *dist = malloc((size_t)n * sizeof(float));
    uint8_t *ok = malloc((size_t)n);
    foolc_counts *q = malloc((size_t)n * sizeof *q);
    printf("model %s, first %d correctly classified test images (%d for budgets >= 25000), "
           "decision-only oracle, max batch %d\n", model_path, n, n_big < n ? n_big : n,
           max_batch);
    printf("%-20s %-5s %8s %6s %8s %10s %11s %8s %8s\n", "attack", "norm", "budget", "images",
           "success", "median", "queries/img", "wall s", "model s");
    char *names = strdup(list), *save = NULL;
    for (const char *name = strtok_r(names, ",", &save); name;
         name = strtok_r(NULL, ",", &save)) {
        char *bl = strdup(budgets), *save2 = NULL;
        for (const char *bs = strtok_r(bl, ",", &save2); bs; bs = strtok_r(NULL, ",", &save2)) {
            double budget = atof(bs);
            foolc_attack *a;
            foolc_norm norm;
            if (foolc_attack_new(name, &a) < 0 ||
                foolc_attack_describe(name, &norm, NULL, NULL, NULL) < 0) {
                fprintf(stderr, "attacks_decision: %s\n", foolc_errmsg());
                return 1;
            }
            int32_t m = budget >= 25000 && n_big < n ? n_big : n;
            if (budget > 0 && foolc_attack_set(a, "max_queries", budget) < 0) {
                fprintf(stderr, "attacks_decision: %s\n", foolc_errmsg());
                return 1;
            }
            /* Enough iterations that the query budget, not the step count, ends the run. */
            if (!strcmp(name, "boundary") && foolc_attack_set(a, "steps", 30000) < 0) return 1;
            if (!strncmp(name, "hsj", 3) && foolc_attack_set(a, "steps", 100) < 0) return 1;
            foolc_result r = {xadv, dist, ok, q};
            foolc_shape s = {m, in.c, in.h, in.w};
            sh.seconds = 0;
            double t0 = now();
            foolc_status st = foolc_attack_run(a, model, s, x, y, NULL, 1, &r);
            double wall = now() - t0;
            if (st < 0) fprintf(stderr, "attacks_decision: %s: %s\n", name, foolc_errmsg());
            int found = 0;
            double qs = 0;
            for (int32_t i = 0; i < m; i++) {
                found += ok[i];
                qs += (double)(q[i].forward + q[i].decided);
            }
            qsort(dist, (size_t)m, sizeof(float), cmp_float);   /* failures are +inf */
            double med = m % 2 ? dist[m / 2] : 0.5 * ((double)dist[m / 2 - 1] + dist[m / 2]);
            printf("%-20s %-5s %8.0f %6d %7.1f%% %10.5f %11.0f %8.2f %8.2f\n", name,
                   foolc_norm_name(norm), budget, m, 100.0 * found / m, med, qs / m, wall,
                   sh.seconds);
            fflush(stdout);
            foolc_attack_free(a);
        }
        free(bl);
    }
    free(names);
    free(xadv);
    free(dist);
    free(ok);
    free(q);
    free(x);
    free(y);
    free(z);
    free(sh.logits);
    foolc_model_free(model);
    foolc_net_free(net);
    foolc_data_free(&test);
    return 0;
}
