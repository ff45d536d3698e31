/* The share of its time each attack spends outside the model (issue 18, item 5: at most
 * 10 % on the reference CNN). Every registered attack (or those of -a) runs on the first N
 * correctly classified Fashion-MNIST test images of a model file, with the training set as
 * its starting-point pool (as `foolc report` offers it), through a shim that sums the CPU
 * time spent in the model's callbacks. The share is (CPU of the run - CPU in the model) /
 * CPU of the run: CPU time, not wall time, so that other processes on a shared machine do
 * not count (run it with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1: with more threads the
 * model's idle threads spin on the process's CPU clock). -r R runs each attack R times, the
 * runs of all attacks interleaved, and reports the smallest share. Public API only.
 * Usage: attacks_share [model.npz] [-n N] [-a name,...] [-b max_batch] [-r R] [-l limit%]
 *        [-s attack.key=value]... [--pool N] [--strict]
 * Every row is marked PASS or OVER the limit (default 10 %); the exit status is 0 unless
 * --strict is given and some attack is over. */
#include "bench_common.h"

#include <math.h>

typedef struct row {
    const char *name;
    foolc_attack *a;
    foolc_norm norm;
    double cpu, model, wall, share, found, med, fwd, bwd;
    int runs;
} row;

int main(int argc, char **argv)
{
    const char *path = NULL, *list = NULL, *sets[32];
    int n_want = 20, max_batch = 256, reps = 1, n_sets = 0, pool = -1, strict = 0;
    double limit = 10.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n_want = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-a") && i + 1 < argc) list = argv[++i];
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) max_batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-l") && i + 1 < argc) limit = atof(argv[++i]);
        else if (!strcmp(argv[i], "--pool") && i + 1 < argc) pool = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--strict")) strict = 1;
        else if (!strcmp(argv[i], "-s") && i + 1 < argc && n_sets < 32) sets[n_sets++] = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: attacks_share [model.npz] [-n N] [-a name,...] [-b max_batch] "
                            "[-r R] [-l limit%%] [-s attack.key=value]... [--pool N] [--strict]\n");
            return 2;
        } else path = argv[i];
    }
    if (reps < 1) reps = 1;
    foolc_net *net;
    float *x;
    int32_t *y, n;
    if (bench_load("attacks_share", path, n_want, &net, &x, &y, &n)) return 1;
    foolc_data train;
    memset(&train, 0, sizeof train);
    if (pool != 0 && foolc_data_load("fashion-mnist", "train", &train) < 0) {
        fprintf(stderr, "attacks_share: %s\n", foolc_errmsg());
        return 1;
    }
    int32_t pool_n = pool < 0 || pool > train.shape.n ? train.shape.n : pool;
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    bench_shim sh = {0};
    if (foolc_net_oracle(net, max_batch, &sh.inner) < 0) return 1;
    foolc_oracle o = bench_shim_oracle(&sh);
    foolc_model *model;
    if (foolc_model_new(&o, &model) < 0) return 1;

    /* The attacks: -a's list or the whole registry. */
    int32_t n_att = 0, cap = foolc_attack_count() + 64;
    row *rows = calloc((size_t)cap, sizeof *rows);
    char *names = NULL;
    if (list) {
        names = strdup(list);
        char *save = NULL;
        for (char *t = strtok_r(names, ",", &save); t && n_att < cap; t = strtok_r(NULL, ",", &save))
            rows[n_att++].name = t;
    } else {
        for (int32_t i = 0; i < foolc_attack_count(); i++) rows[n_att++].name = foolc_attack_name(i);
    }
    for (int32_t t = 0; t < n_att; t++) {
        row *r = &rows[t];
        if (foolc_attack_new(r->name, &r->a) < 0 ||
            foolc_attack_describe(r->name, &r->norm, NULL, NULL, NULL) < 0 ||
            (pool_n > 0 && foolc_attack_set_starts(r->a, train.x, train.y, pool_n) < 0)) {
            fprintf(stderr, "attacks_share: %s\n", foolc_errmsg());
            return 1;
        }
        for (int s = 0; s < n_sets; s++) {   /* attack.key=value */
            const char *dot = strchr(sets[s], '.'), *eq = strchr(sets[s], '=');
            char key[64];
            if (!dot || !eq || eq < dot || (size_t)(eq - dot) > sizeof key) continue;
            if (strlen(r->name) != (size_t)(dot - sets[s]) ||
                strncmp(r->name, sets[s], (size_t)(dot - sets[s])))
                continue;
            memcpy(key, dot + 1, (size_t)(eq - dot - 1));
            key[eq - dot - 1] = 0;
            if (foolc_attack_set_text(r->a, key, eq + 1) < 0) {
                fprintf(stderr, "attacks_share: -s %s: %s\n", sets[s], foolc_errmsg());
                return 1;
            }
        }
        r->share = INFINITY;
    }

    float *xadv = malloc((size_t)n * d * sizeof(float)), *dist = malloc((size_t)n * sizeof(float));
    uint8_t *ok = malloc((size_t)n);
    foolc_counts *q = malloc((size_t)n * sizeof *q);
    printf("model %s, %d images (first correctly classified test images), max batch %d, "
           "pool %d, %d run%s per attack; share = CPU outside the model / CPU of the run\n",
           path ? path : "~/.cache/foolc/cnn.npz", n, max_batch, pool_n, reps,
           reps > 1 ? "s (interleaved), smallest share" : "");
    printf("%-19s %-5s %8s %10s %9s %9s %8s %8s %8s %8s\n", "attack", "norm", "success",
           "median", "fwd/img", "bwd/img", "cpu s", "model s", "outside", "");
    fflush(stdout);
    for (int rep = 0; rep < reps; rep++) {
        for (int32_t t = 0; t < n_att; t++) {
            row *r = &rows[t];
            foolc_result res = {xadv, dist, ok, q};
            foolc_shape s = {n, in.c, in.h, in.w};
            sh.seconds = sh.cpu = 0;
            double t0 = bench_now(), c0 = bench_cpu();
            foolc_status st = foolc_attack_run(r->a, model, s, x, y, NULL, 1, &res);
            double wall = bench_now() - t0, cpu = bench_cpu() - c0;
            if (st < 0) fprintf(stderr, "attacks_share: %s: %s\n", r->name, foolc_errmsg());
            double share = cpu > 0 ? 100.0 * (cpu - sh.cpu) / cpu : 0;
            r->runs++;
            if (share < r->share) {
                r->share = share;
                r->cpu = cpu;
                r->model = sh.cpu;
                r->wall = wall;
            }
            if (rep > 0) continue;
            r->found = r->fwd = r->bwd = 0;
            for (int32_t i = 0; i < n; i++) {
                r->found += ok[i];
                r->fwd += (double)q[i].forward;
                r->bwd += (double)q[i].backward;
            }
            qsort(dist, (size_t)n, sizeof(float), bench_cmp_float);   /* failures are +inf */
            r->med = n % 2 ? dist[n / 2] : 0.5 * ((double)dist[n / 2 - 1] + dist[n / 2]);
            if (reps == 1) {
                printf("%-19s %-5s %7.1f%% %10.5g %9.1f %9.1f %8.2f %8.2f %7.1f%% %8s\n",
                       r->name, foolc_norm_name(r->norm), 100.0 * r->found / n, r->med,
                       r->fwd / n, r->bwd / n, r->cpu, r->model, r->share,
                       r->share <= limit ? "PASS" : "OVER");
                fflush(stdout);
            } else {
                fprintf(stderr, "  %s: %.1f%%\n", r->name, share);
            }
        }
    }
    int over = 0;
    for (int32_t t = 0; t < n_att; t++) {
        row *r = &rows[t];
        over += r->share > limit;
        if (reps > 1)
            printf("%-19s %-5s %7.1f%% %10.5g %9.1f %9.1f %8.2f %8.2f %7.1f%% %8s\n", r->name,
                   foolc_norm_name(r->norm), 100.0 * r->found / n, r->med, r->fwd / n,
                   r->bwd / n, r->cpu, r->model, r->share, r->share <= limit ? "PASS" : "OVER");
        foolc_attack_free(r->a);
    }
    printf("%d of %d attacks over %.0f %%\n", over, n_att, limit);
    free(names);
    free(rows);
    free(xadv);
    free(dist);
    free(ok);
    free(q);
    free(x);
    free(y);
    foolc_model_free(model);
    foolc_net_free(net);
    if (pool != 0) foolc_data_free(&train);
    return strict && over ? 3 : 0;
}
