/* Benchmark of the minimum-norm attacks (C&W L2, EAD, DDN, FMN L0/L1/L2/Linf, FAB, NewtonFool)
 * on the first N correctly classified Fashion-MNIST test images of a model file: success
 * rate, median and mean distance in each attack's norm (plus the L2 median of every attack),
 * queries per sample, wall seconds, and the share of wall time spent outside the model.
 * Public API only. Usage: attacks_minnorm [model.npz] [-n N] [-a name,name,...] [-b batch]
 * [-s key=value,...] (parameters applied to every attack that has them). With
 * FOOLC_BENCH_DUMP=PREFIX set, each attack's per-image distances (inf: not found) go to
 * PREFIX-<attack>.txt, one a line, as bench/foolbox_minnorm.py --dump writes them. */
#include <foolc.h>

#include "bench_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const k_default[] = {
    "cw-l2", "ead", "ddn", "fmn-l0", "fmn-l1", "fmn-l2", "fmn-linf", "fab-linf", "fab-l2",
    "fab-l1", "newtonfool"};

int main(int argc, char **argv)
{
    const char *home = getenv("HOME"), *model_path = NULL, *list = NULL, *sets = NULL;
    char dflt_path[1024];
    int n_want = 100, max_batch = 256;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n_want = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-a") && i + 1 < argc) list = argv[++i];
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) max_batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) sets = argv[++i];
        else model_path = argv[i];
    }
    if (!model_path) {
        snprintf(dflt_path, sizeof dflt_path, "%s/.cache/foolc/cnn.npz", home ? home : ".");
        model_path = dflt_path;
    }
    foolc_net *net;
    float *x;
    int32_t *y, n;
    if (bench_load("attacks_minnorm", model_path, n_want, &net, &x, &y, &n)) return 1;
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    bench_shim sh = {0};
    if (foolc_net_oracle(net, max_batch, &sh.inner) < 0) return 1;
    foolc_oracle o = bench_shim_oracle(&sh);
    foolc_model *model;
    if (foolc_model_new(&o, &model) < 0) return 1;

    float *xadv = malloc((size_t)n * d * sizeof(float)), *dist = malloc((size_t)n * sizeof(float));
    float *l2 = malloc((size_t)n * sizeof(float));
    uint8_t *ok = malloc((size_t)n);
    foolc_counts *q = malloc((size_t)n * sizeof *q);
    printf("model %s, %d images (first correctly classified of the test set), max batch %d\n",
           model_path, n, max_batch);
    printf("%-12s %-5s %8s %10s %10s %9s %9s %9s %8s %8s %8s\n", "attack", "norm", "success",
           "median", "mean", "L2 med", "fwd/img", "bwd/img", "wall s", "cpu s", "outside");
    size_t n_att = sizeof k_default / sizeof k_default[0];
    char *names = list ? strdup(list) : NULL, *save = NULL;
    const char *name = names ? strtok_r(names, ",", &save) : k_default[0];
    for (size_t ai = 0; name; ai++) {
        foolc_attack *a;
        foolc_norm norm;
        if (foolc_attack_new(name, &a) < 0 || foolc_attack_describe(name, &norm, NULL, NULL,
                                                                   NULL) < 0) {
            fprintf(stderr, "attacks_minnorm: %s\n", foolc_errmsg());
            return 1;
        }
        if (sets) {   /* key=value pairs; keys an attack lacks are skipped */
            char *sv = strdup(sets), *s2 = NULL;
            for (char *kv = strtok_r(sv, ",", &s2); kv; kv = strtok_r(NULL, ",", &s2)) {
                char *eq = strchr(kv, '=');
                double got;
                if (!eq) continue;
                *eq = 0;
                if (foolc_attack_get(a, kv, &got) == FOOLC_OK &&
                    foolc_attack_set(a, kv, atof(eq + 1)) < 0)
                    fprintf(stderr, "attacks_minnorm: %s\n", foolc_errmsg());
            }
            free(sv);
        }
        foolc_result r = {xadv, dist, ok, q};
        foolc_shape s = {n, in.c, in.h, in.w};
        sh.seconds = 0;
        double t0 = bench_now();
        clock_t c0 = clock();
        foolc_status st = foolc_attack_run(a, model, s, x, y, NULL, 1, &r);
        double wall = bench_now() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
        if (st < 0) fprintf(stderr, "attacks_minnorm: %s: %s\n", name, foolc_errmsg());
        int found = 0;
        double sum = 0, fw = 0, bw = 0;
        for (int32_t i = 0; i < n; i++) {
            found += ok[i];
            if (ok[i]) sum += dist[i];
            fw += (double)q[i].forward;
            bw += (double)q[i].backward;
        }
        for (int32_t i = 0; i < n && getenv("FOOLC_BENCH_VERBOSE"); i++)
            if (!ok[i]) fprintf(stderr, "%s: sample %d (label %d) not found\n", name, i, y[i]);
        for (int32_t i = 0; i < n; i++)   /* L2 of every result, for comparison */
            l2[i] = ok[i] ? (float)foolc_distance(FOOLC_L2, x + (size_t)i * d,
                                                  xadv + (size_t)i * d, d) : INFINITY;
        const char *dump = getenv("FOOLC_BENCH_DUMP");
        if (dump) {
            char path[1200];
            snprintf(path, sizeof path, "%s-%s.txt", dump, name);
            FILE *f = fopen(path, "w");
            for (int32_t i = 0; f && i < n; i++)
                fprintf(f, "%.9g\n", ok[i] ? (double)dist[i] : INFINITY);
            if (f) fclose(f);
        }
        qsort(dist, (size_t)n, sizeof(float), bench_cmp_float);   /* failures are +inf */
        qsort(l2, (size_t)n, sizeof(float), bench_cmp_float);
        double med = n % 2 ? dist[n / 2] : 0.5 * ((double)dist[n / 2 - 1] + dist[n / 2]);
        double med2 = n % 2 ? l2[n / 2] : 0.5 * ((double)l2[n / 2 - 1] + l2[n / 2]);
        printf("%-12s %-5s %7.1f%% %10.5f %10.5f %9.5f %9.1f %9.1f %8.2f %8.2f %7.1f%%\n",
               name, foolc_norm_name(norm), 100.0 * found / n, med, found ? sum / found : NAN,
               med2, fw / n, bw / n, wall, cpu, 100.0 * (wall - sh.seconds) / wall);
        fflush(stdout);
        foolc_attack_free(a);
        name = names ? strtok_r(NULL, ",", &save) : ai + 1 < n_att ? k_default[ai + 1] : NULL;
    }
    free(names);
    free(xadv);
    free(dist);
    free(l2);
    free(ok);
    free(q);
    free(x);
    free(y);
    foolc_model_free(model);
    foolc_net_free(net);
    return 0;
}
