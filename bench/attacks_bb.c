/* Benchmark of the Brendel-Bethge attacks (bb-l0, bb-l1, bb-l2, bb-linf; any other attack
 * by -a for comparison) on the first N correctly classified Fashion-MNIST test images of a
 * model file: success, median and mean distance, queries per image, wall seconds and the
 * share of time spent outside the model. Public API only.
 * Usage: attacks_bb [model.npz] [-n N] [-a name,...] [-b max_batch] [-i init] [-I attack]
 *        [-s key=value]... [-v]   (-i 1: the training set is the starting-point pool; -v prints
 *        every distance) */
#include <foolc.h>

#include "bench_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *path = NULL, *list = "bb-l2,bb-linf,bb-l1,bb-l0";
    const char *init_attack = NULL, *sets[16];
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
    foolc_net *net;
    float *x;
    int32_t *y, n;
    if (bench_load("attacks_bb", path, n_want, &net, &x, &y, &n)) return 1;
    foolc_data train;
    memset(&train, 0, sizeof train);
    if (init == 1 && foolc_data_load("fashion-mnist", "train", &train) < 0) {
        fprintf(stderr, "attacks_bb: %s\n", foolc_errmsg());
        return 1;
    }
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    bench_shim tm;
    if (foolc_net_oracle(net, max_batch, &tm.inner) < 0) return 1;
    foolc_oracle o = bench_shim_oracle(&tm);
    foolc_model *model;
    if (foolc_model_new(&o, &model) < 0) return 1;
    float *xadv = malloc((size_t)n * d * sizeof(float)), *dist = malloc((size_t)n * sizeof(float));
    uint8_t *ok = malloc((size_t)n);
    foolc_counts *q = malloc((size_t)n * sizeof *q);
    printf("model %s, %d images (first correctly classified test images), max batch %d, "
           "init %d%s%s\n", path ? path : "~/.cache/foolc/cnn.npz", n, max_batch,
           init < 0 ? 3 : init, init_attack ? " " : "", init_attack ? init_attack : "");
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
        double t0 = bench_now();
        foolc_status st = foolc_attack_run(a, model, s, x, y, NULL, 1, &r);
        double wall = bench_now() - t0;
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
        qsort(dist, (size_t)n, sizeof(float), bench_cmp_float);   /* failures are +inf, last */
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
    foolc_model_free(model);
    foolc_net_free(net);
    if (init == 1) foolc_data_free(&train);
    return 0;
}
