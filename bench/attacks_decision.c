/* Benchmark of the decision-based attacks (Boundary, HopSkipJump L2/Linf by default) on the
 * first N correctly classified Fashion-MNIST test images of a model file, through a
 * decision-only oracle (the model's scores are hidden): per attack and per-sample query
 * budget, the success rate, the median distance in the attack's norm (failures count as
 * infinite), queries per image, wall and CPU seconds and the seconds spent in the model.
 * Public API only. bench/foolbox_decision.py runs Foolbox 3 on the same model, images and
 * budgets.
 * Usage: attacks_decision [model.npz] [-n N] [-n25 N] [-a name,...] [-q b1,b2,...]
 *        [-b max_batch] [-p name=value,...] [-s seed]
 *        (-n25: images for budgets of 25000 and more, default 20; -p: attack parameters) */
#include "bench_common.h"

#include <math.h>

/* Sets the "name=value,..." parameters of list on a; returns non-zero on failure. */
static int set_params(foolc_attack *a, const char *list)
{
    char *l = strdup(list), *save = NULL;
    int rc = 0;
    for (char *p = strtok_r(l, ",", &save); p && !rc; p = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(p, '=');
        if (!eq) {
            rc = 1;
            break;
        }
        *eq = 0;
        rc = foolc_attack_set(a, p, atof(eq + 1)) < 0;
    }
    free(l);
    return rc;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *params = NULL;
    const char *list = "boundary,hsj-l2,hsj-linf", *budgets = "1000,5000,25000";
    int n_want = 100, n_big = 20, max_batch = 256;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n_want = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n25") && i + 1 < argc) n_big = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-a") && i + 1 < argc) list = argv[++i];
        else if (!strcmp(argv[i], "-q") && i + 1 < argc) budgets = argv[++i];
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) max_batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) params = argv[++i];
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else model_path = argv[i];
    }
    foolc_net *net;
    float *x;
    int32_t *y, n;
    if (bench_load("attacks_decision", model_path, n_want, &net, &x, &y, &n)) return 1;
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    foolc_oracle inner;
    if (foolc_net_oracle(net, max_batch, &inner) < 0) return 1;
    bench_dshim sh;
    foolc_oracle o = bench_dshim_oracle(&sh, inner);
    foolc_model *model;
    if (!sh.logits || foolc_model_new(&o, &model) < 0) return 1;

    float *xadv = malloc((size_t)n * d * sizeof(float)), *dist = malloc((size_t)n * sizeof(float));
    uint8_t *ok = malloc((size_t)n);
    foolc_counts *q = malloc((size_t)n * sizeof *q);
    printf("model %s, first %d correctly classified test images (%d for budgets >= 25000), "
           "decision-only oracle, max batch %d, seed %llu%s%s\n",
           model_path ? model_path : "~/.cache/foolc/cnn.npz", n, n_big < n ? n_big : n,
           max_batch, (unsigned long long)seed, params ? ", parameters " : "",
           params ? params : "");
    printf("%-20s %-5s %8s %6s %8s %10s %11s %8s %8s %8s\n", "attack", "norm", "budget",
           "images", "success", "median", "queries/img", "wall s", "cpu s", "model s");
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
            if (params && set_params(a, params)) {
                fprintf(stderr, "attacks_decision: bad -p %s: %s\n", params, foolc_errmsg());
                return 1;
            }
            foolc_result r = {xadv, dist, ok, q};
            foolc_shape s = {m, in.c, in.h, in.w};
            sh.t.seconds = 0;
            double t0 = bench_now(), c0 = bench_cpu();
            foolc_status st = foolc_attack_run(a, model, s, x, y, NULL, seed, &r);
            double wall = bench_now() - t0, cpu = bench_cpu() - c0;
            if (st < 0) fprintf(stderr, "attacks_decision: %s: %s\n", name, foolc_errmsg());
            int found = 0;
            double qs = 0;
            for (int32_t i = 0; i < m; i++) {
                found += ok[i];
                qs += (double)(q[i].forward + q[i].decided);
            }
            qsort(dist, (size_t)m, sizeof(float), bench_cmp_float);   /* failures are +inf */
            double med = m % 2 ? dist[m / 2] : 0.5 * ((double)dist[m / 2 - 1] + dist[m / 2]);
            printf("%-20s %-5s %8.0f %6d %7.1f%% %10.5f %11.0f %8.2f %8.2f %8.2f\n", name,
                   foolc_norm_name(norm), budget, m, 100.0 * found / m, med, qs / m, wall,
                   cpu, sh.t.seconds);
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
    free(sh.logits);
    foolc_model_free(model);
    foolc_net_free(net);
    return 0;
}
