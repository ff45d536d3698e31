/* Linear models and saturated logits (issue 18, items 1 and 2; docs/bench.md, "Linear models
 * and saturated logits"). Public API only, plus the linear fixture of tests/linear.h.
 *
 * Part 1 (default): every attack that searches a minimum on linear models with the box
 * active (64 and 784 inputs, 2 and 10 classes; inputs with many coordinates at the faces of
 * [0, 1]), its distance over the exact minimum (the smallest of the per-class half-space
 * problems within the box, tests/linear.h): median and max of the ratio per configuration.
 * Part 2 (--sat): every gradient attack on models whose logits are multiplied by 1e3 and
 * 1e30: the median distance over the unscaled median, on a 64-input 10-class linear model
 * and on the NET.npz given with --net (its first N correctly classified test images);
 * --distilled NET.npz: a net trained at softmax temperature T (-T, default 100) used as it
 * is, against the same net with its logits divided by T.
 *
 *   build/bench/linear_sat [-n N] [-a a1,a2,...] [-s key=value ...] [-c mask] [--sat]
 *                          [--net NET.npz] [--distilled NET.npz [-T T]]
 * (-s sets a parameter on every attack that has it; -c runs the configurations of the bits
 * set: 1 d=64 k=2, 2 d=64 k=10, 4 d=784 k=2, 8 d=784 k=10.)
 */
#include "bench_common.h"
#include "../tests/linear.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

static const char *const k_linear[] = {
    "cw-l2", "ead", "ddn", "newtonfool", "fmn-l0", "fmn-l1", "fmn-l2", "fmn-linf",
    "fab-l1", "fab-l2", "fab-linf", "pgd-linf", "pgd-l2", "pgd-l1", "bim-linf", "bim-l2",
    "bim-l1", "mifgsm-linf", "mifgsm-l2", "apgd-linf", "apgd-l2", "fgsm", "fgm-l2", "fgm-l1",
    "deepfool-l2", "deepfool-linf", "hsj-l2", "hsj-linf", "boundary", "pointwise", NULL};

/* Parameters set on every attack that has them (-s key=value), and the configurations run
 * (-c mask: bit c for configuration c of part 1). */
static const char *g_set[16];
static int g_nset, g_cfgs = 15;

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
    for (int i = 0; i < g_nset; i++) {
        char key[64];
        const char *eq = strchr(g_set[i], '=');
        double old;
        if (!eq || eq - g_set[i] >= (ptrdiff_t)sizeof key) continue;
        memcpy(key, g_set[i], (size_t)(eq - g_set[i]));
        key[eq - g_set[i]] = 0;
        if (foolc_attack_get(a, key, &old) == FOOLC_OK &&
            foolc_attack_set_text(a, key, eq + 1) != FOOLC_OK) {
            fprintf(stderr, "%s: %s\n", name, foolc_errmsg());
            exit(1);
        }
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
            if (!(g_cfgs >> c & 1)) {
                printf(" | %-18s", "-");
                continue;
            }
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
                     int n, const char *only, const double *scales, int ns)
{
    printf("%s, %d samples: median at scale %g, ratios of the medians at", title, n, scales[0]);
    for (int s = 1; s < ns; s++) printf(" %g", scales[s]);
    printf(" (failures)\n");
    double *dist = malloc(sizeof(double) * (size_t)n);
    for (int32_t a = 0; a < foolc_attack_count(); a++) {
        const char *name = foolc_attack_name(a);
        unsigned needs;
        foolc_norm norm;
        if (foolc_attack_describe(name, &norm, &needs, NULL, NULL)) continue;
        if (!(needs & FOOLC_NEEDS_GRAD) || !wanted(only, name)) continue;
        printf("%-14s", name);
        double base = 0;
        for (int s = 0; s < ns; s++) {
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
        printf("\n");
        fflush(stdout);
    }
    free(dist);
}

int main(int argc, char **argv)
{
    int n = 20, sat = 0;
    double temp = 100;
    const char *only = NULL, *netp = NULL, *distp = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-a") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--sat")) sat = 1;
        else if (!strcmp(argv[i], "-s") && i + 1 < argc && g_nset < 16) g_set[g_nset++] = argv[++i];
        else if (!strcmp(argv[i], "-c") && i + 1 < argc) g_cfgs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--net") && i + 1 < argc) netp = argv[++i];
        else if (!strcmp(argv[i], "--distilled") && i + 1 < argc) distp = argv[++i];
        else if (!strcmp(argv[i], "-T") && i + 1 < argc) temp = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-n N] [-a a1,a2,...] [-s key=value] [-c mask] [--sat] "
                    "[--net NET.npz] [--distilled NET.npz [-T T]]\n", argv[0]);
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
    static const double scales[] = {1, 1e3, 1e30};
    sat_rows("linear model d=64 k=10", &o, x, y, n, only, scales, 3);
    free(x);
    free(y);
    /* A net's logits scaled; a distilled net (trained at temperature T) as it is, against
     * the same net at temperature T (its logits / T), where its softmax is not saturated. */
    const char *paths[2] = {netp, distp};
    for (int p = 0; p < 2; p++) {
        if (!paths[p]) continue;
        foolc_net *net;
        float *xn;
        int32_t *yn, got;
        foolc_oracle no;
        if (bench_load(argv[0], paths[p], n, &net, &xn, &yn, &got)) return 1;
        if (foolc_net_oracle(net, 32, &no)) {
            fprintf(stderr, "%s\n", foolc_errmsg());
            return 1;
        }
        const double dscales[] = {1 / temp, 1};
        sat_rows(paths[p], &no, xn, yn, got, only, p ? dscales : scales, p ? 2 : 3);
        foolc_net_free(net);
        free(xn);
        free(yn);
    }
    return 0;
}
