/* Exact minima (foolc_certify, method EXACT) against the attacks: for a small built-in ReLU
 * net and the first n correctly classified Fashion-MNIST test images, per norm (Linf, L1)
 * every registered attack of that norm is run, then the exact MILP per sample (hinted by the
 * best distance found, as the report would); prints per sample the exact interval and the
 * seconds, then how many samples exact solved within the limit and, per attack family
 * (gradient, minimum-norm, Brendel-Bethge, decision-only) and for the best of all, how far
 * its best distance is above the exact minimum on the solved samples.
 *   build/bench/certify_exact model.npz [n] [seconds]   (n default 10, limit default 60)
 * By hand only (make bench builds it); never part of make check. docs/certify.md. */
#include "bench_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FAM_GRAD, FAM_MINNORM, FAM_BB, FAM_DECISION, FAM_ALL, FAM_COUNT };
static const char *const fam_name[FAM_COUNT] = { "gradient", "minimum-norm", "brendel-bethge",
                                                 "decision-only", "best of all" };

/* The family of an attack (its directory under attacks/) from its name. */
static int family(const char *name)
{
    static const char *const grad[] = { "deepfool", "fgsm", "fgm-", "pgd-", "bim-", "mifgsm-",
                                        "apgd-", NULL };
    static const char *const dec[] = { "gaussian-", "uniform-", "blended", "salt", "dataset",
                                       "boundary", "hsj-", "contrast", "inversion",
                                       "binarization", "blur", "pointwise", NULL };
    for (int i = 0; grad[i]; i++)
        if (!strncmp(name, grad[i], strlen(grad[i]))) return FAM_GRAD;
    for (int i = 0; dec[i]; i++)
        if (!strncmp(name, dec[i], strlen(dec[i]))) return FAM_DECISION;
    if (!strncmp(name, "bb-", 3)) return FAM_BB;
    return FAM_MINNORM;
}

/* fbest[f * n + i]: the best distance of family f on sample i (inf: none found). */
static int run_attacks(foolc_net *net, foolc_norm norm, const float *x, const int32_t *y,
                       int32_t n, double *fbest)
{
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * in.h * in.w;
    foolc_oracle o;
    foolc_model *m = NULL;
    if (foolc_net_oracle(net, 256, &o) < 0 || foolc_model_new(&o, &m) < 0) return 1;
    float *xa = malloc((size_t)n * d * sizeof *xa), *dist = malloc((size_t)n * sizeof *dist);
    uint8_t *ok = malloc((size_t)n);
    int rc = !xa || !dist || !ok;
    for (int32_t i = 0; i < FAM_COUNT * n; i++) fbest[i] = INFINITY;
    for (int32_t a = 0; !rc && a < foolc_attack_count(); a++) {
        const char *name = foolc_attack_name(a);
        foolc_norm an;
        foolc_attack *at = NULL;
        if (foolc_attack_describe(name, &an, NULL, NULL, NULL) < 0 || an != norm) continue;
        if (foolc_attack_new(name, &at) < 0) continue;
        foolc_result r = { xa, dist, ok, NULL };
        in.n = n;
        foolc_status st = foolc_attack_run(at, m, in, x, y, NULL, 1, &r);
        if (st < 0) fprintf(stderr, "bench certify_exact: %s: %s\n", name, foolc_errmsg());
        int f = family(name);
        for (int32_t i = 0; st >= 0 && i < n; i++)
            if (ok[i]) {
                if (dist[i] < fbest[f * n + i]) fbest[f * n + i] = dist[i];
                if (dist[i] < fbest[FAM_ALL * n + i]) fbest[FAM_ALL * n + i] = dist[i];
            }
        foolc_attack_free(at);
    }
    free(xa);
    free(dist);
    free(ok);
    foolc_model_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: certify_exact model.npz [n] [seconds]\n");
        return 2;
    }
    int n_want = argc > 2 ? atoi(argv[2]) : 10;
    double limit = argc > 3 ? atof(argv[3]) : 60;
    if (n_want < 1) n_want = 1;
    if (!(limit > 0)) limit = 60;
    foolc_net *net = NULL;
    float *x = NULL;
    int32_t *y = NULL, n = 0;
    if (bench_load("bench certify_exact", argv[1], n_want, &net, &x, &y, &n)) return 1;
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * in.h * in.w;
    double *fbest = malloc((size_t)FAM_COUNT * n * sizeof *fbest);
    double *lo = malloc((size_t)n * sizeof *lo), *up = malloc((size_t)n * sizeof *up);
    double *sec = malloc((size_t)n * sizeof *sec), *tmp = malloc((size_t)n * sizeof *tmp);
    int rc = !fbest || !lo || !up || !sec || !tmp;
    const foolc_norm norms[2] = { FOOLC_LINF, FOOLC_L1 };
    printf("certify_exact: %s, %d images, limit %g s per sample\n", argv[1], (int)n, limit);
    for (int k = 0; !rc && k < 2; k++) {
        const char *nn = foolc_norm_name(norms[k]);
        if (run_attacks(net, norms[k], x, y, n, fbest)) {
            rc = 1;
            break;
        }
        int solved = 0;
        printf("\n%s: sample, exact [lower, upper], solved, seconds (wall, cpu), best of all\n",
               nn);
        for (int32_t i = 0; i < n; i++) {
            foolc_certify_opts o;
            foolc_certify_defaults(&o);
            o.method = FOOLC_CERTIFY_EXACT;
            o.norm = norms[k];
            o.time_limit = limit;
            o.rtol = 1e-4;
            o.hint = &fbest[FAM_ALL * n + i];
            double t0 = bench_now(), c0 = bench_cpu();
            foolc_status st = foolc_certify(net, x + (size_t)i * d, &y[i], NULL, 1, &o, &lo[i],
                                            &up[i]);
            sec[i] = bench_now() - t0;
            if (st < 0) {
                fprintf(stderr, "bench certify_exact: %s\n", foolc_errmsg());
                rc = 1;
                break;
            }
            solved += st == FOOLC_OK;
            printf("  %3d [%.6g, %.6g] %s %.2f %.2f %.6g\n", (int)i, lo[i], up[i],
                   st == FOOLC_OK ? "solved" : "open  ", sec[i], bench_cpu() - c0,
                   fbest[FAM_ALL * n + i]);
            fflush(stdout);
        }
        if (rc) break;
        memcpy(tmp, sec, (size_t)n * sizeof *tmp);
        printf("%s: exact solved %d of %d within %g s; median %.3g s per sample\n", nn, solved,
               (int)n, limit, bench_median_d(tmp, n));
        printf("| %s family | found on solved | median found / exact | max | within 1%% |\n", nn);
        printf("| --- | --- | --- | --- | --- |\n");
        for (int f = 0; f < FAM_COUNT; f++) {
            int m = 0, hit = 0, cnt = 0;
            double mx = 0;
            for (int32_t i = 0; i < n; i++) {
                if (!(up[i] <= lo[i] * (1 + 1e-3) + 1e-6) || !(up[i] > 0)) continue;
                cnt++;
                double b = fbest[f * n + i];
                if (!isfinite(b)) continue;
                double r = b / up[i];
                tmp[m++] = r;
                if (r > mx) mx = r;
                hit += r <= 1.01;
            }
            printf("| %s | %d of %d | %.4g | %.4g | %d |\n", fam_name[f], m, cnt,
                   bench_median_d(tmp, m), mx, hit);
        }
    }
    free(fbest);
    free(lo);
    free(up);
    free(sec);
    free(tmp);
    free(x);
    free(y);
    foolc_net_free(net);
    return rc;
}
