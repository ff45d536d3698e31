/* bench_graph: forward and forward + input gradient of a net (an NPZ model file, or a net
 * made from an architecture text or preset with seed 42) at several batch sizes, best and
 * median img/s over repeated trials. bench/graph_torch.py runs it next to PyTorch on the
 * same weights (docs/bench.md).
 *   bench_graph [-t SECONDS] [-b 1,128] [-s SAVE.npz] MODEL.npz|resnet|cnn|"input ..."   */
#include "foolc.h"
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int seed_first(void *u, const float *logits, int32_t n, int32_t k, float *dl)
{
    (void)u;
    (void)logits;
    for (int32_t i = 0; i < n; i++) dl[(size_t)i * k] = 1.0f;
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void call(foolc_net *net, const float *x, int32_t n, int grad, float *lg, float *dx)
{
    foolc_status st = grad ? foolc_net_grad(net, x, n, seed_first, NULL, lg, dx, NULL)
                           : foolc_net_forward(net, x, n, lg);
    if (st != FOOLC_OK) {
        fprintf(stderr, "bench_graph: %s\n", foolc_errmsg());
        exit(1);
    }
}

/* Seconds per call: best and median over trials of at least min_time / 10 each. */
static void measure(foolc_net *net, const float *x, int32_t n, int grad, float *lg, float *dx,
                    double min_time, double *best, double *med)
{
    double t[64];
    int nt = 0;
    double start = bench_now();
    call(net, x, n, grad, lg, dx);
    while (nt < 64 && (nt < 5 || bench_now() - start < min_time)) {
        int reps = 0;
        double t0 = bench_now();
        do {
            call(net, x, n, grad, lg, dx);
            reps++;
        } while (bench_now() - t0 < min_time / 10);
        t[nt++] = (bench_now() - t0) / reps;
    }
    qsort(t, (size_t)nt, sizeof *t, cmp_d);
    *best = t[0];
    *med = t[nt / 2];
}

int main(int argc, char **argv)
{
    double min_time = 2.0;
    int32_t batches[8] = { 1, 128 };
    int nb = 2;
    const char *save = NULL, *model = "resnet";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) save = argv[++i];
        else if (!strcmp(argv[i], "-b") && i + 1 < argc) {
            nb = 0;
            for (char *p = strtok(argv[++i], ","); p && nb < 8; p = strtok(NULL, ","))
                batches[nb++] = atoi(p);
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: bench_graph [-t SECONDS] [-b 1,128] [-s SAVE.npz] "
                            "MODEL.npz|resnet|cnn|ARCH\n");
            return 2;
        } else model = argv[i];
    }
    foolc_net *net = NULL;
    foolc_status st;
    size_t ml = strlen(model);
    if (ml > 4 && !strcmp(model + ml - 4, ".npz")) st = foolc_net_load(model, &net);
    else st = foolc_net_new(foolc_net_preset(model) ? foolc_net_preset(model)
                            : model, 42, &net);
    if (st != FOOLC_OK) {
        fprintf(stderr, "bench_graph: %s: %s\n", model, foolc_errmsg());
        return 1;
    }
    if (save && foolc_net_save(net, save) != FOOLC_OK) {
        fprintf(stderr, "bench_graph: %s\n", foolc_errmsg());
        return 1;
    }
    foolc_shape in = foolc_net_input(net);
    const size_t d = (size_t)in.c * in.h * in.w, k = (size_t)foolc_net_classes(net);
    printf("net %s: %.2f MFLOP per image, %lld parameters\n", model,
           foolc_net_flops(net) / 1e6, (long long)foolc_net_param_count(net));
    printf("%-6s %6s %14s %14s\n", "pass", "batch", "best img/s", "median img/s");
    for (int b = 0; b < nb; b++) {
        const int32_t n = batches[b];
        float *x = malloc((size_t)n * d * sizeof *x), *lg = malloc((size_t)n * k * sizeof *lg);
        float *dx = malloc((size_t)n * d * sizeof *dx);
        for (size_t j = 0; j < (size_t)n * d; j++) x[j] = (float)((j * 2654435761u) % 1000) / 1000.0f;
        for (int grad = 0; grad < 2; grad++) {
            double best, med;
            measure(net, x, n, grad, lg, dx, min_time, &best, &med);
            printf("%-6s %6d %14.0f %14.0f\n", grad ? "fwd+dx" : "fwd", (int)n, n / best,
                   n / med);
            fflush(stdout);
        }
        free(x);
        free(lg);
        free(dx);
    }
    foolc_net_free(net);
    return 0;
}
