/* Certified radii against found adversarials: for a reference net (default
 * ~/.cache/foolc/mlp.npz) and the first n correctly classified Fashion-MNIST test images,
 * per norm (Linf, L2, L1) the best distance of a few strong minimum-norm attacks and, per
 * method (IBP, CROWN), the seconds per sample and the median ratio found / certified.
 *   build/bench/certify [model.npz] [n]   (n default 20; FOOLC_CERT_METHODS=ibp,crown)
 * By hand only (make bench builds it); never part of make check. */
#include "bench_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The attacks whose best distance per sample is "found", per norm. */
static const char *const attacks_linf[] = { "fmn-linf", "fab-linf", "apgd-linf", NULL };
static const char *const attacks_l2[] = { "fmn-l2", "ddn", "fab-l2", "cw-l2", NULL };
static const char *const attacks_l1[] = { "fmn-l1", "ead", "fab-l1", NULL };

/* best[i] = the smallest distance any of the attacks found for sample i (inf: none). */
static int found(foolc_net *net, const char *const *names, const float *x, const int32_t *y,
                 int32_t n, double *best)
{
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * in.h * in.w;
    foolc_oracle o;
    foolc_model *m = NULL;
    if (foolc_net_oracle(net, 256, &o) < 0 || foolc_model_new(&o, &m) < 0) return 1;
    float *xa = malloc((size_t)n * d * sizeof *xa), *dist = malloc((size_t)n * sizeof *dist);
    uint8_t *ok = malloc((size_t)n);
    int rc = !xa || !dist || !ok;
    for (int32_t i = 0; i < n; i++) best[i] = INFINITY;
    for (int a = 0; !rc && names[a]; a++) {
        foolc_attack *at = NULL;
        if (foolc_attack_new(names[a], &at) < 0) {
            fprintf(stderr, "bench certify: %s\n", foolc_errmsg());
            rc = 1;
            break;
        }
        foolc_result r = { xa, dist, ok, NULL };
        in.n = n;
        foolc_status st = foolc_attack_run(at, m, in, x, y, NULL, 1, &r);
        if (st < 0) fprintf(stderr, "bench certify: %s: %s\n", names[a], foolc_errmsg());
        for (int32_t i = 0; st >= 0 && i < n; i++)
            if (ok[i] && dist[i] < best[i]) best[i] = dist[i];
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
    const char *path = argc > 1 ? argv[1] : NULL;
    char dflt[1024];
    if (!path) {
        const char *home = getenv("HOME");
        snprintf(dflt, sizeof dflt, "%s/.cache/foolc/mlp.npz", home ? home : ".");
        path = dflt;
    }
    int n_want = argc > 2 ? atoi(argv[2]) : 20;
    if (n_want < 1) n_want = 1;
    const char *methods = getenv("FOOLC_CERT_METHODS");
    if (!methods) methods = "ibp,crown";
    foolc_net *net = NULL;
    float *x = NULL;
    int32_t *y = NULL, n = 0;
    if (bench_load("bench certify", path, n_want, &net, &x, &y, &n)) return 1;
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * in.h * in.w;
    const foolc_norm norms[3] = { FOOLC_LINF, FOOLC_L2, FOOLC_L1 };
    const char *const *atk[3] = { attacks_linf, attacks_l2, attacks_l1 };
    double *best = malloc((size_t)n * sizeof *best), *rad = malloc((size_t)n * sizeof *rad);
    double *ratio = malloc((size_t)n * sizeof *ratio), *tmp = malloc((size_t)n * sizeof *tmp);
    int rc = !best || !rad || !ratio || !tmp;
    printf("certify: %s, %d images\n", path, (int)n);
    printf("| norm | method | s / sample | median certified | median found | median found / certified | certified > found |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    for (int k = 0; !rc && k < 3; k++) {
        if (found(net, atk[k], x, y, n, best)) {
            fprintf(stderr, "bench certify: %s\n", foolc_errmsg());
            rc = 1;
            break;
        }
        for (int me = 0; me < FOOLC_CERTIFY_METHOD_COUNT; me++) {
            const char *mn = foolc_certify_method_name((foolc_certify_method)me);
            if (!strstr(methods, mn)) continue;
            foolc_certify_opts o;
            foolc_certify_defaults(&o);
            o.method = (foolc_certify_method)me;
            o.norm = norms[k];
            o.hint = best;
            double t0 = bench_now();
            foolc_status st = foolc_certify(net, x, y, NULL, n, &o, rad, NULL);
            double t = (bench_now() - t0) / n;
            if (st < 0) {
                fprintf(stderr, "bench certify: %s\n", foolc_errmsg());
                rc = 1;
                break;
            }
            int m = 0, bad = 0;
            for (int32_t i = 0; i < n; i++) {
                if (isfinite(best[i]) && rad[i] > 0) ratio[m++] = best[i] / rad[i];
                if (rad[i] > best[i] * (1 + 1e-5) + 1e-6) bad++;
            }
            double mr = bench_median_d(ratio, m);
            memcpy(tmp, rad, (size_t)n * sizeof *tmp);
            double mc = bench_median_d(tmp, n);
            memcpy(tmp, best, (size_t)n * sizeof *tmp);
            double mf = bench_median_d(tmp, n);
            printf("| %s | %s | %.3g | %.4g | %.4g | %.3g | %d |\n", foolc_norm_name(norms[k]),
                   mn, t, mc, mf, mr, bad);
            fflush(stdout);
            (void)d;
        }
    }
    free(best);
    free(rad);
    free(ratio);
    free(tmp);
    free(x);
    free(y);
    foolc_net_free(net);
    return rc;
}
