/* Linear models and saturated logits (issue 18, items 1 and 2; docs/bench.md, "Linear models
 * and saturated logits"). Public API only, plus the linear fixture of tests/linear.h.
 *
 * Part 1 (default): every attack that searches a minimum on linear models with the box
 * active (64 and 784 inputs, 2 and 10 classes; inputs with many coordinates at the faces of
 * [0, 1]), its distance over the exact minimum (the smallest of the per-class half-space
 * problems within the box, tests/linear.h): median and max of the ratio per configuration.
 * Part 2 (--sat): every gradient attack on models whose logits are multiplied by 1e3 and
 * 1e30: the median distance over the unscaled median, on a 64-input 10-class linear model
 * and on each NET.npz given with --net (its first N correctly classified test images;
 * --distilled NET.npz adds a net trained at a softmax temperature, evaluated at 1, compared
 * with --net's first net).
 *
 *   build/bench/linear_sat [-n N] [-a a1,a2,...] [--sat] [--net NET.npz] [--distilled NET.npz]
 */
#include "bench_common.h"
#include "../tests/linear.h"

#include <math.h>
#include <stdlib.h>

static const char *const k_linear[] = {
    "cw-l2", "ead", "ddn", "newtonfool", "fmn-l0", "fmn-l1", "fmn-l2", "fmn-linf",
    "fab-l1", "fab-l2", "fab-linf", "pgd-linf", "pgd-l2", "pgd-l1", "bim-linf", "bim-l2",
    "bim-l1", "mifgsm-linf", "mifgsm-l2", "apgd-linf", "apgd-l2", "fgsm", "fgm-l2", "fgm-l1",
    "deepfool-l2", "deepfool-linf", "hsj-l2", "hsj-linf", "boundary", "pointwise", NULL};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int wanted(const char *list, const char *name)
{
    if (!list) return 1;
    size_t l = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += l)
        if ((p == list || p[-1] == ',') && (p[l] == ',' || p[l] == 0)) return 1;
    return 0;
}

/* Runs attack `name` on model o; distances into dist (INFINITY on failure). */
static double run_attack(const foolc_oracle *o, const char *name, const float *x,
                         const int32_t *y, int n, double *dist)
{
    foolc_model *m;
    foolc_attack *a;
    if (foolc_model_new(o, &m) || foolc_attack_new(name, &a)) {
        fprintf(stderr, "%s: %s\n", name, foolc_errmsg());
        exit(1);
    }
    size_t d = (size_t)o->input.c * o->input.h * o->input.w;
    float *xa = malloc(sizeof(float) * d * (size_t)n), *ds = malloc(sizeof(float) * (size_t)n);
    uint8_t *ok = malloc((size_t)n);
    foolc_counts *q = malloc(sizeof *q * (size_t)n);
    foolc_result r = {xa, ds, ok, q};
    foolc_shape s = {n, o->input.c, o->input.h, o->input.w};
    double t0 = bench_now();
    foolc_status st = foolc_attack_run(a, m, s, x, y, NULL, 1, &r);
    double sec = bench_now() - t0;
    if (st != FOOLC_OK && st != FOOLC_NOT_FOUND) {
        fprintf(stderr, "%s: %s (%s)\n", name, foolc_status_str(st), foolc_errmsg());
        exit(1);
    }
    for (int i = 0; i < n; i++) dist[i] = ok[i] ? ds[i] : INFINITY;
    free(xa);
    free(ds);
    free(ok);
    free(q);
    foolc_attack_free(a);
    foolc_model_free(m);
    return sec;
}

static void part_linear(int n, const char *only)
{
    static const int32_t cfg[4][2] = {{64, 2}, {64, 10}, {784, 2}, {784, 10}};
    static lin_model lm[4];
    float *x[4];
    int32_t *y[4];
    double *want[4][4];   /* [config][norm] */
    for (int c = 0; c < 4; c++) {
        x[c] = malloc(sizeof(float) * (size_t)(n * cfg[c][0]));
        y[c] = malloc(sizeof(int32_t) * (size_t)n);
        lin_box_config(&lm[c], cfg[c][0], cfg[c][1], n, x[c], y[c]);
        for (int p = 0; p < 4; p++) {
            want[c][p] = malloc(sizeof(double) * (size_t)n);
            for (int i = 0; i < n; i++)
                want[c][p][i] = lin_box_min(&lm[c], x[c] + (size_t)i * cfg[c][0], y[c][i],
                                            (foolc_norm)p);
        }
    }
    printf("linear models, box active, %d samples: ratio to the exact minimum, median / max "
           "(failures)\n", n);
    printf("%-14s | %-18s | %-18s | %-18s | %-18s | s\n", "attack", "d=64 k=2", "d=64 k=10",
           "d=784 k=2", "d=784 k=10");
    double *dist = malloc(sizeof(double) * (size_t)n), *ratio = malloc(sizeof(double) * (size_t)n);
    for (int a = 0; k_linear[a]; a++) {
        if (!wanted(only, k_linear[a])) continue;
        foolc_norm norm;
        foolc_status st = foolc_attack_describe(k_linear[a], &norm, NULL, NULL, NULL);
        if (st) {
            fprintf(stderr, "%s: %s\n", k_linear[a], foolc_errmsg());
            exit(1);
        }
        printf("%-14s", k_linear[a]);
        double sec = 0;
        for (int c = 0; c < 4; c++) {
            foolc_oracle o = lin_oracle(&lm[c], 256, 0);
            sec += run_attack(&o, k_linear[a], x[c], y[c], n, dist);
            int fail = 0;
            double mx = 0;
            for (int i = 0; i < n; i++) {
                ratio[i] = dist[i] / want[c][norm][i];
                if (!isfinite(ratio[i])) fail++;
                if (ratio[i] > mx) mx = ratio[i];
            }
            double med = median(ratio, n);
            char cell[64];
            if (fail) snprintf(cell, sizeof cell, "%.4f / %.4f (%d)", med, mx, fail);
            else snprintf(cell, sizeof cell, "%.4f / %.4f", med, mx);
            printf(" | %-18s", cell);
        }
        printf(" | %.1f\n", sec);
        fflush(stdout);
    }
    free(dist);
    free(ratio);
}

/* Median distance of each gradient attack on oracle o at the scales, printed as the median
 * at scale 1 and each other scale's median over it. */
static void sat_rows(const char *title, const foolc_oracle *o, const float *x, const int32_t *y,
                     int n, const char *only, const foolc_oracle *distilled,
                     const float *xd, const int32_t *yd)
{
    static const double scales[] = {1, 1e3, 1e30};
    printf("%s, %d samples: median at scale 1, ratios of the medians at 1e3, 1e30%s "
           "(failures)\n", title, n, distilled ? ", distilled" : "");
    double *dist = malloc(sizeof(double) * (size_t)n);
    for (int32_t a = 0; a < foolc_attack_count(); a++) {
        const char *name = foolc_attack_name(a);
        unsigned needs;
        foolc_norm norm;
        if (foolc_attack_describe(name, &norm, &needs, NULL, NULL)) continue;
        if (!(needs & FOOLC_NEEDS_GRAD) || !wanted(only, name)) continue;
        printf("%-14s", name);
        double base = 0;
        for (int s = 0; s < 3; s++) {
            lin_scaled w = {*o, scales[s], NULL, NULL, NULL};
            w.buf = malloc(sizeof(float) * (size_t)o->input.n * (size_t)o->n_classes);
            foolc_oracle so = lin_scaled_oracle(&w);
            run_attack(&so, name, x, y, n, dist);
            free(w.buf);
            int fail = 0;
            for (int i = 0; i < n; i++) fail += !isfinite(dist[i]);
            double med = median(dist, n);
            if (s == 0) {
                base = med;
                printf(" | %-10.5g", med);
            } else {
                printf(" | %-8.4f", med / base);
            }
            if (fail) printf("(%d)", fail);
        }
        if (distilled) {
            run_attack(distilled, name, xd, yd, n, dist);
            int fail = 0;
            for (int i = 0; i < n; i++) fail += !isfinite(dist[i]);
            printf(" | %-8.4f", median(dist, n) / base);
            if (fail) printf("(%d)", fail);
        }
        printf("\n");
        fflush(stdout);
    }
    free(dist);
}

int main(int argc, char **argv)
{
    int n = 20, sat = 0;
    const char *only = NULL, *netp = NULL, *distp = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-a") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--sat")) sat = 1;
        else if (!strcmp(argv[i], "--net") && i + 1 < argc) netp = argv[++i];
        else if (!strcmp(argv[i], "--distilled") && i + 1 < argc) distp = argv[++i];
        else {
            fprintf(stderr, "usage: %s [-n N] [-a a1,a2,...] [--sat] [--net NET.npz] "
                    "[--distilled NET.npz]\n", argv[0]);
            return 2;
        }
    }
    if (n < 1 || n > 256) n = 20;
    if (!sat) {
        part_linear(n, only);
        return 0;
    }
    static lin_model lm;
    float *x = malloc(sizeof(float) * (size_t)(n * 64));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    lin_box_config(&lm, 64, 10, n, x, y);
    foolc_oracle o = lin_oracle(&lm, 256, 0);
    sat_rows("linear model d=64 k=10", &o, x, y, n, only, NULL, NULL, NULL);
    free(x);
    free(y);
    if (netp) {
        foolc_net *net, *dnet = NULL;
        float *xn, *xd = NULL;
        int32_t *yn, *yd = NULL, got, gotd = 0;
        if (bench_load(argv[0], netp, n, &net, &xn, &yn, &got) ||
            (distp && bench_load(argv[0], distp, n, &dnet, &xd, &yd, &gotd)))
            return 1;
        foolc_oracle no, dno;
        if (foolc_net_oracle(net, 32, &no) || (dnet && foolc_net_oracle(dnet, 32, &dno))) {
            fprintf(stderr, "%s\n", foolc_errmsg());
            return 1;
        }
        sat_rows(netp, &no, xn, yn, dnet && gotd < got ? gotd : got, only, dnet ? &dno : NULL,
                 xd, yd);
        foolc_net_free(net);
        foolc_net_free(dnet);
        free(xn);
        free(xd);
        free(yn);
        free(yd);
    }
    return 0;
}
