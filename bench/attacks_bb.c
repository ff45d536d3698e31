/* Benchmark of the Brendel-Bethge attacks (bb-l0, bb-l1, bb-l2, bb-linf; any other attack
 * by -a for comparison) on the first N correctly classified Fashion-MNIST test images of a
 * model file: success, median and mean distance, queries per image, wall seconds and the
 * share of time spent outside the model. Public API only.
 * Usage: attacks_bb [model.npz] [-n N] [-a name,...] [-b max_batch] [-i init] [-I attack]
 *        [-s key=value]... [-v]   (-i 1: the training set is the starting-point pool; -v prints
 *        every distance) */
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

/* Forwards the model's callbacks and sums the time spent in them. */
typedef struct timer {
    foolc_oracle inner;
    double seconds;
} timer;

static int t_scores(void *user, const float *x, int32_t n, float *logits)
{
    timer *t = user;
    double t0 = now();
    int rc = t->inner.scores(t->inner.user, x, n, logits);
    t->seconds += now() - t0;
    return rc;
}

static int t_vg(void *user, const float *x, int32_t n, foolc_seed_fn seed, void *seed_user,
                float *logits, float *grad)
{
    timer *t = user;
    double t0 = now();
    int rc = t->inner.value_and_grad(t->inner.user, x, n, seed, seed_user, logits, grad);
    t->seconds += now() - t0;
    return rc;
}

static int by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *home = getenv("HOME"), *path = NULL, *list = "bb-l2,bb-linf,bb-l1,bb-l0";
    const char *init_attack = NULL, *sets[16];
    char dflt[1024];
    int n_want = 100, max_batch = 256, init = -1, n_sets = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n_want = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-a") && i + 1 < argc) list = argv[++i];
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) max_batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-i") && i + 1 < argc) init = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-v")) verbose = 1;
        else if (!strcmp(argv[i], "-I") && i + 1 < argc) init_attack = argv[++i];
        else if (!strcmp(argv[i], "-s") && i + 1 < argc && n_sets < 16) sets[n_sets++] = argv[++i];
        else path = argv[i];
    }
    if (!path) {
        snprintf(dflt, sizeof dflt, "%s/.cache/foolc/cnn.npz", home ? home : ".");
        path = dflt;
    }
    foolc_net *net;
    if (foolc_net_load(path, &net) < 0) {
        fprintf(stderr, "attacks_bb: %s\n", foolc_errmsg());
        return 1;
    }
    foolc_data test, train;
    memset(&train, 0, sizeof train);
    if (foolc_data_load("fashion-mnist", "test", &test) < 0 ||
        (init == 1 && foolc_data_load("fashion-mnist", "train", &train) < 0)) {
        fprintf(stderr, "attacks_bb: %s\n", foolc_errmsg());
        return 1;
    }
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    int32_t k = foolc_net_classes(net), n = 0;
    float *x = malloc((size_t)n_want * d * sizeof(float)), *z = malloc((size_t)k * sizeof(float));
    int32_t *y = malloc((size_t)n_want * sizeof(int32_t));
    for (int32_t i = 0; i < test.shape.n && n < n_want; i++) {
        if (foolc_net_forward(net, test.x + (size_t)i * d, 1, z) < 0) return 1;
        int32_t best = 0;
        for (int32_t j = 1; j < k; j++) if (z[j] > z[best]) best = j;
        if (best != test.y[i]) continue;
        memcpy(x + (size_t)n * d, test.x + (size_t)i * d, d * sizeof(float));
        y[n++] = best;
    }
    timer tm;
    if (foolc_net_oracle(net, max_batch, &tm.inner) < 0) return 1;
    foolc_oracle o = tm.inner;
    o.user = &tm;
    o.scores = t_scores;
    o.value_and_grad = t_vg;
    foolc_model *model;
    if (foolc_model_new(&o, &model) < 0) return 1;
    float *xadv = malloc((size_t)n * d * sizeof(float)), *dist = malloc((size_t)n * sizeof(float));
    uint8_t *ok = malloc((size_t)n);
    foolc_counts *q = malloc((size_t)n * sizeof *q);
    printf("model %s, %d images (first correctly classified test images), max batch %d, "
           "init %d%s%s\n", path, n, max_batch, init < 0 ? 3 : init, init_attack ? " " : "",
           init_attack ? init_attack : "");
    printf("%-12s %-5s %8s %10s %10s %9s %9s %8s %8s\n", "attack", "norm", "success",
           "median", "mean", "fwd/img", "bwd/img", "wall s", "outside");
    char *names = strdup(list), *save = NULL;
    for (const char *name = strtok_r(names, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        foolc_attack *a;
        foolc_norm norm;
        if (foolc_attack_new(name, &a) < 0 ||
            foolc_attack_describe(name, &norm, NULL, NULL, NULL) < 0) {
            fprintf(stderr, "attacks_bb: %s\n", foolc_errmsg());
            return 1;
        }
        if (!strncmp(name, "bb-", 3)) {
            if ((init >= 0 && foolc_attack_set(a, "init", init) < 0) ||
                (init_attack && foolc_attack_set_init(a, init_attack) < 0) ||
                (init == 1 && foolc_attack_set_starts(a, train.x, train.y, train.shape.n) < 0)) {
                fprintf(stderr, "attacks_bb: %s\n", foolc_errmsg());
                return 1;
            }
            for (int s = 0; s < n_sets; s++) {
                char key[64];
                const char *eq = strchr(sets[s], '=');
                if (!eq || (size_t)(eq - sets[s]) >= sizeof key) continue;
                memcpy(key, sets[s], (size_t)(eq - sets[s]));
                key[eq - sets[s]] = 0;
                if (foolc_attack_set(a, key, atof(eq + 1)) < 0)
                    fprintf(stderr, "attacks_bb: %s\n", foolc_errmsg());
            }
        }
        foolc_result r = {xadv, dist, ok, q};
        foolc_shape s = {n, in.c, in.h, in.w};
        tm.seconds = 0;
        double t0 = now();
        foolc_status st = foolc_attack_run(a, model, s, x, y, NULL, 1, &r);
        double wall = now() - t0;
        if (st != FOOLC_OK) fprintf(stderr, "attacks_bb: %s: %s\n", name, foolc_errmsg());
        int found = 0;
        double sum = 0, fw = 0, bw = 0;
        for (int32_t i = 0; i < n; i++) {
            found += ok[i];
            if (ok[i]) sum += dist[i];
            fw += (double)q[i].forward;
            bw += (double)q[i].backward;
        }
        if (verbose) {
            printf("%s distances:", name);
            for (int32_t i = 0; i < n; i++) printf(" %.4f", (double)dist[i]);
            printf("\n");
        }
        qsort(dist, (size_t)n, sizeof(float), by_value);   /* failures are +inf, last */
        double med = n % 2 ? dist[n / 2] : 0.5 * ((double)dist[n / 2 - 1] + dist[n / 2]);
        printf("%-12s %-5s %7.1f%% %10.5f %10.5f %9.1f %9.1f %8.2f %7.1f%%\n", name,
               foolc_norm_name(norm), 100.0 * found / n, med, found ? sum / found : NAN,
               fw / n, bw / n, wall, 100.0 * (wall - tm.seconds) / wall);
        fflush(stdout);
        foolc_attack_free(a);
    }
    free(names);
    free(xadv);
    free(dist);
    free(ok);
    free(q);
    free(x);
    free(y);
    free(z);
    foolc_model_free(model);
    foolc_net_free(net);
    foolc_data_free(&test);
    if (init == 1) foolc_data_free(&train);
    return 0;
}
