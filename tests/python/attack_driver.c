/* Used by test_net.py and bench/python_overhead.py: runs an attack through the C API alone
 * and writes its raw outputs, so that they can be compared byte for byte with the Python
 * bindings' result, and prints the best wall time of the runs.
 *   attack_driver MODEL.npz INPUT.bin OUTPUT.bin ATTACK SEED N RTOL [REPEATS [MAX_BATCH]]
 * INPUT.bin: N*d float32 images then N int32 labels. OUTPUT.bin: x_adv, distance, success,
 * queries (foolc_counts) of the N samples, in that order. RTOL <= 0 keeps the default.
 * With REPEATS > 1 the first run is a warm-up and is not timed. */
#define _POSIX_C_SOURCE 200809L
#include <foolc.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 8 || argc > 10) return 2;
    int n = atoi(argv[6]), repeats = argc > 8 ? atoi(argv[8]) : 1;
    int max_batch = argc > 9 ? atoi(argv[9]) : 256;
    foolc_net *net = NULL;
    foolc_model *model = NULL;
    foolc_attack *attack = NULL;
    foolc_oracle o;
    foolc_status st;
    if ((st = foolc_net_load(argv[1], &net)) < 0 || (st = foolc_net_oracle(net, max_batch, &o)) < 0 ||
        (st = foolc_model_new(&o, &model)) < 0 || (st = foolc_attack_new(argv[4], &attack)) < 0 ||
        (atof(argv[7]) > 0 && (st = foolc_attack_set(attack, "rtol", atof(argv[7]))) < 0)) {
        fprintf(stderr, "%s\n", foolc_errmsg());
        return 1;
    }
    foolc_shape s = foolc_net_input(net);
    s.n = n;
    size_t d = (size_t)s.c * s.h * s.w;
    float *x = malloc(n * d * sizeof *x), *xa = malloc(n * d * sizeof *xa);
    float *dist = malloc(n * sizeof *dist);
    int32_t *y = malloc(n * sizeof *y);
    uint8_t *ok = malloc(n);
    foolc_counts *q = malloc(n * sizeof *q);
    FILE *f = fopen(argv[2], "rb");
    if (!f || fread(x, sizeof *x, n * d, f) != n * d || fread(y, sizeof *y, n, f) != (size_t)n)
        return 3;
    fclose(f);
    foolc_result r = {xa, dist, ok, q};
    double best = 1e30;
    for (int rep = 0; rep < (repeats > 0 ? repeats : 1); rep++) {
        double t0 = now();
        st = foolc_attack_run(attack, model, s, x, y, NULL, strtoull(argv[5], NULL, 10), &r);
        double t = now() - t0;
        if (st < 0) {
            fprintf(stderr, "%s\n", foolc_errmsg());
            return 1;
        }
        if ((rep > 0 || repeats <= 1) && t < best) best = t;   /* run 0 warms up */
    }
    printf("seconds %.6f\n", best);
    f = fopen(argv[3], "wb");
    if (!f) return 3;
    fwrite(xa, sizeof *xa, n * d, f);
    fwrite(dist, sizeof *dist, n, f);
    fwrite(ok, 1, n, f);
    fwrite(q, sizeof *q, n, f);
    fclose(f);
    foolc_attack_free(attack);
    foolc_model_free(model);
    foolc_net_free(net);
    free(x), free(xa), free(dist), free(y), free(ok), free(q);
    return 0;
}
