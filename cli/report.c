/* foolc report: for the first N test images a model classifies correctly, runs each listed
 * attack and reports, per attack and best-of-all per sample, success, median and mean
 * minimal distance, queries and time, robust accuracy against epsilon, as text, JSON, CSV. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: foolc report --model M.npz [options]\n"
           "  --data D       fashion-mnist (default), an IDX directory or an .npz (test split)\n"
           "  --attacks L    comma-separated attacks (default fgsm; see foolc attacks)\n"
           "  -n N           number of images (default 100)\n"
           "  --all          take the first N images, not only correctly classified ones\n"
           "  --seed S       attack seed (default 0)\n"
           "  --batch B      images per attack call (default 100)\n"
           "  --budget Q     query budget per attack run, in images (default none)\n"
           "  --json FILE    every per-sample figure as JSON\n"
           "  --csv FILE     every per-sample figure as CSV\n"
           "  --quiet        no progress on stderr\n"
           "Distances are minimal perturbations; median over all N samples, failures counted\n"
           "as infinite; mean over the successful ones.\n");
}

#define MAX_ATTACKS 32

typedef struct attack_res {
    const char *name;
    foolc_norm norm;
    float *dist;          /* n x FOOLC_NORM_COUNT: every norm of the returned point */
    uint8_t *ok;
    foolc_counts *q;
    double seconds;
    foolc_status st;
} attack_res;

typedef struct run_cb {
    cli_progress p;
    int32_t base, chunk;
} run_cb;

static int on_progress(void *user, int64_t done, int64_t total)
{
    run_cb *c = user;
    int64_t part = total > 0 ? done * c->chunk / total : 0;
    cli_progress_update(&c->p, c->base + part);
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Median over n values (inf counts as large), mean over the finite ones. */
static void stats(const float *v, int32_t n, size_t stride, double *median, double *mean)
{
    float *s = malloc((size_t)n * sizeof *s);
    double sum = 0;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        s[i] = v[(size_t)i * stride];
        if (isfinite(s[i])) { sum += s[i]; k++; }
    }
    qsort(s, (size_t)n, sizeof *s, cmp_float);
    *median = n == 0 ? NAN : n % 2 ? s[n / 2] : 0.5 * ((double)s[n / 2 - 1] + s[n / 2]);
    *mean = k ? sum / k : NAN;
    free(s);
}

static const double k_grid[FOOLC_NORM_COUNT][6] = {
    [FOOLC_L0] = {1, 2, 5, 10, 20, 50},
    [FOOLC_L1] = {0.5, 1, 2, 5, 10, 20},
    [FOOLC_L2] = {0.1, 0.25, 0.5, 1, 1.5, 2},
    [FOOLC_LINF] = {0.005, 0.01, 0.02, 0.03, 0.05, 0.1},
    [FOOLC_MSE] = {1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2},
};

static double robust_acc(const float *d, int32_t n, size_t stride, double eps)
{
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) k += !(d[(size_t)i * stride] <= eps);
    return n ? (double)k / n : NAN;
}

/* A JSON string with quotes, backslashes and control characters escaped. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fprintf(f, "null");
}

int cmd_report(int argc, char **argv)
{
    cli_args a;
    if (cli_args_init(&a, argc, argv)) return CLI_FAIL;
    int rc = CLI_OK;
    foolc_net *net = NULL;
    foolc_model *model = NULL;
    foolc_data data = {0};
    attack_res ar[MAX_ATTACKS];
    int n_att = 0;
    float *x = NULL, *xadv = NULL, *dist = NULL, *logits = NULL;
    int32_t *y = NULL, *index = NULL;
    char *list = NULL;
    memset(ar, 0, sizeof ar);
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
        help();
        goto out;
    }
    const char *model_path = cli_opt(&a, "--model", "-m");
    const char *data_spec = cli_opt(&a, "--data", NULL);
    const char *attacks = cli_opt(&a, "--attacks", NULL);
    const char *json = cli_opt(&a, "--json", NULL), *csv = cli_opt(&a, "--csv", NULL);
    int quiet = cli_flag(&a, "--quiet"), all = cli_flag(&a, "--all");
    long n_want = 100, seed = 0, batch = 100, budget = 0;
    if ((rc = cli_opt_long(&a, "-n", NULL, 1, 100000000L, &n_want)) ||
        (rc = cli_opt_long(&a, "--seed", NULL, 0, 2147483647L, &seed)) ||
        (rc = cli_opt_long(&a, "--batch", NULL, 1, 100000L, &batch)) ||
        (rc = cli_opt_long(&a, "--budget", NULL, 0, 2147483647L, &budget)) ||
        (rc = cli_args_leftover(&a, "report")))
        goto out;
    if (!model_path || !*model_path) {
        fprintf(stderr, "foolc report: --model FILE is required\n");
        rc = CLI_USAGE;
        goto out;
    }
    foolc_status st;
    if ((st = foolc_net_load(model_path, &net)) < 0) {
        rc = cli_fail(model_path, st);
        goto out;
    }
    if ((st = foolc_data_load(data_spec, "test", &data)) < 0) {
        rc = cli_fail(data_spec ? data_spec : "fashion-mnist", st);
        goto out;
    }
    foolc_shape in = foolc_net_input(net);
    if (data.shape.c != in.c || data.shape.h != in.h || data.shape.w != in.w) {
        fprintf(stderr, "foolc report: --data images are %dx%dx%d but the model takes %dx%dx%d\n",
                data.shape.c, data.shape.h, data.shape.w, in.c, in.h, in.w);
        rc = CLI_INPUT;
        goto out;
    }
    foolc_oracle o;
    if ((st = foolc_net_oracle(net, 256, &o)) < 0 || (st = foolc_model_new(&o, &model)) < 0) {
        rc = cli_fail("model", st);
        goto out;
    }
    size_t d = (size_t)in.c * in.h * in.w;
    int32_t k = foolc_net_classes(net), total = data.shape.n;
    for (int32_t i = 0; i < total; i++)
        if (data.y[i] >= k) {
            fprintf(stderr, "foolc report: label %d of image %d is not a class of the model\n",
                    data.y[i], i);
            rc = CLI_INPUT;
            goto out;
        }
    /* Clean accuracy over the whole split, and the samples to attack. */
    logits = malloc((size_t)total * k * sizeof *logits);
    index = malloc((size_t)total * sizeof *index);
    if (!logits || !index) { rc = cli_fail("report", FOOLC_E_NOMEM); goto out; }
    if ((st = foolc_model_scores(model, data.x, total, logits)) < 0) {
        rc = cli_fail("clean accuracy", st);
        goto out;
    }
    int32_t correct = 0, n = 0;
    for (int32_t i = 0; i < total; i++) {
        const float *z = logits + (size_t)i * k;
        int32_t best = 0;
        for (int32_t j = 1; j < k; j++) if (z[j] > z[best]) best = j;
        int ok = best == data.y[i];
        correct += ok;
        if ((ok || all) && n < n_want) index[n++] = i;
    }
    double clean_acc = (double)correct / total;
    x = malloc(d * n * sizeof *x);
    xadv = malloc(d * n * sizeof *xadv);
    dist = malloc((size_t)n * sizeof *dist);
    y = malloc((size_t)n * sizeof *y);
    if (!x || !xadv || !dist || !y) { rc = cli_fail("report", FOOLC_E_NOMEM); goto out; }
    for (int32_t i = 0; i < n; i++) {
        memcpy(x + (size_t)i * d, data.x + (size_t)index[i] * d, d * sizeof *x);
        y[i] = data.y[index[i]];
    }
    list = strdup(attacks && *attacks ? attacks : "fgsm");
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n_att == MAX_ATTACKS) {
            fprintf(stderr, "foolc report: at most %d attacks\n", MAX_ATTACKS);
            rc = CLI_USAGE;
            goto out;
        }
        if ((st = foolc_attack_describe(tok, &ar[n_att].norm, NULL, NULL, NULL)) < 0) {
            rc = cli_fail("--attacks", st);
            goto out;
        }
        ar[n_att++].name = tok;
    }
    if (!quiet)
        fprintf(stderr, "report: %s on %d %s test images of %s (clean accuracy %.4f)\n",
                model_path, n, all ? "first" : "correctly classified",
                data_spec ? data_spec : "fashion-mnist", clean_acc);
    for (int t = 0; t < n_att; t++) {
        attack_res *r = &ar[t];
        r->dist = malloc((size_t)n * FOOLC_NORM_COUNT * sizeof *r->dist);
        r->ok = malloc((size_t)n);
        r->q = malloc((size_t)n * sizeof *r->q);
        if (!r->dist || !r->ok || !r->q) { rc = cli_fail("report", FOOLC_E_NOMEM); goto out; }
        foolc_attack *att;
        if ((st = foolc_attack_new(r->name, &att)) < 0) { rc = cli_fail(r->name, st); goto out; }
        run_cb cb;
        cli_progress_start(&cb.p, r->name, n, quiet);
        foolc_attack_set_progress(att, on_progress, &cb);
        double t0 = cli_now();
        r->st = FOOLC_OK;
        for (int32_t b = 0; b < n; b += (int32_t)batch) {
            int32_t m = n - b < batch ? n - b : (int32_t)batch;
            cb.base = b;
            cb.chunk = m;
            foolc_shape s = {m, in.c, in.h, in.w};
            foolc_result res = {xadv + (size_t)b * d, dist + b, r->ok + b, r->q + b};
            foolc_model_set_budget(model, budget ? (uint64_t)budget +
                                   foolc_model_counts(model).forward +
                                   foolc_model_counts(model).decided : 0);
            st = foolc_attack_run(att, model, s, x + (size_t)b * d, y + b, NULL,
                                  (uint64_t)seed, &res);
            if (st < 0 && r->st >= 0) {
                r->st = st;
                fprintf(stderr, "%sfoolc: %s: %s: %s (results found so far are kept)\n",
                        cb.p.tty && !quiet ? "\n" : "", r->name, foolc_status_str(st),
                        foolc_errmsg());
            }
            cli_progress_update(&cb.p, b + m);
        }
        r->seconds = cli_now() - t0;
        foolc_attack_free(att);
        int32_t succ = 0;
        for (int32_t i = 0; i < n; i++) {
            succ += r->ok[i];
            for (int p = 0; p < FOOLC_NORM_COUNT; p++)
                r->dist[(size_t)i * FOOLC_NORM_COUNT + p] =
                    r->ok[i] ? (float)foolc_distance((foolc_norm)p, x + (size_t)i * d,
                                                     xadv + (size_t)i * d, d)
                             : INFINITY;
        }
        char summary[160];
        double med, mean;
        stats(r->dist + r->norm, n, FOOLC_NORM_COUNT, &med, &mean);
        snprintf(summary, sizeof summary, "%d/%d adversarial, median %s %.4g", succ, n,
                 foolc_norm_name(r->norm), med);
        cli_progress_end(&cb.p, summary);
    }

    /* Best of all attacks per sample, in each attack norm used. */
    int used[FOOLC_NORM_COUNT] = {0};
    for (int t = 0; t < n_att; t++) used[ar[t].norm] = 1;
    float *best = malloc((size_t)n * FOOLC_NORM_COUNT * sizeof *best);
    int *best_by = malloc((size_t)n * FOOLC_NORM_COUNT * sizeof *best_by);
    if (!best || !best_by) { free(best); free(best_by); rc = cli_fail("report", FOOLC_E_NOMEM); goto out; }
    for (size_t i = 0; i < (size_t)n * FOOLC_NORM_COUNT; i++) {
        best[i] = INFINITY;
        best_by[i] = -1;
        for (int t = 0; t < n_att; t++)
            if (ar[t].dist[i] < best[i]) { best[i] = ar[t].dist[i]; best_by[i] = t; }
    }

    printf("\nminimal perturbations: %s, %d images, clean accuracy %.2f %%\n", model_path, n,
           100 * clean_acc);
    printf("%-14s %-5s %8s %10s %10s %9s %9s %9s\n", "attack", "norm", "success", "median",
           "mean", "fwd/img", "bwd/img", "seconds");
    for (int t = 0; t < n_att; t++) {
        attack_res *r = &ar[t];
        double med, mean, fw = 0, bw = 0;
        int32_t succ = 0;
        stats(r->dist + r->norm, n, FOOLC_NORM_COUNT, &med, &mean);
        for (int32_t i = 0; i < n; i++) {
            succ += r->ok[i];
            fw += (double)r->q[i].forward + (double)r->q[i].decided;
            bw += (double)r->q[i].backward;
        }
        printf("%-14s %-5s %7.1f%% %10.4g %10.4g %9.1f %9.1f %9.2f%s\n", r->name,
               foolc_norm_name(r->norm), 100.0 * succ / n, med, mean, fw / n, bw / n,
               r->seconds, r->st < 0 ? "  (stopped early)" : "");
    }
    for (int p = 0; p < FOOLC_NORM_COUNT; p++) {
        if (!used[p]) continue;
        double med, mean;
        int32_t succ = 0;
        stats(best + p, n, FOOLC_NORM_COUNT, &med, &mean);
        for (int32_t i = 0; i < n; i++) succ += isfinite(best[(size_t)i * FOOLC_NORM_COUNT + p]);
        printf("%-14s %-5s %7.1f%% %10.4g %10.4g\n", "best-of-all", foolc_norm_name((foolc_norm)p),
               100.0 * succ / n, med, mean);
    }
    for (int p = 0; p < FOOLC_NORM_COUNT; p++) {
        if (!used[p]) continue;
        printf("robust accuracy (%s):", foolc_norm_name((foolc_norm)p));
        for (int e = 0; e < 6; e++)
            printf("  %g: %.2f", k_grid[p][e],
                   clean_acc * robust_acc(best + p, n, FOOLC_NORM_COUNT, k_grid[p][e]));
        printf("\n");
    }

    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) { perror(json); rc = CLI_INPUT; goto out_best; }
        fprintf(f, "{\"model\": ");
        json_str(f, model_path);
        fprintf(f, ", \"clean_accuracy\": %.6f, \"n\": %d, \"seed\": %ld,\n \"attacks\": [",
                clean_acc, n, seed);
        for (int t = 0; t < n_att; t++) {
            attack_res *r = &ar[t];
            fprintf(f, "%s\n  {\"name\": \"%s\", \"norm\": \"%s\", \"seconds\": %.4f, "
                    "\"status\": \"%s\", \"samples\": [", t ? "," : "", r->name,
                    foolc_norm_name(r->norm), r->seconds, foolc_status_str(r->st));
            for (int32_t i = 0; i < n; i++) {
                fprintf(f, "%s\n   {\"index\": %d, \"label\": %d, \"success\": %s, ",
                        i ? "," : "", index[i], y[i], r->ok[i] ? "true" : "false");
                for (int p = 0; p < FOOLC_NORM_COUNT; p++) {
                    fprintf(f, "\"%s\": ", foolc_norm_name((foolc_norm)p));
                    json_num(f, r->dist[(size_t)i * FOOLC_NORM_COUNT + p]);
                    fprintf(f, ", ");
                }
                fprintf(f, "\"forward\": %llu, \"backward\": %llu, \"decided\": %llu}",
                        (unsigned long long)r->q[i].forward,
                        (unsigned long long)r->q[i].backward,
                        (unsigned long long)r->q[i].decided);
            }
            fprintf(f, "]}");
        }
        fprintf(f, "],\n \"best\": [");
        for (int32_t i = 0; i < n; i++) {
            fprintf(f, "%s\n  {\"index\": %d", i ? "," : "", index[i]);
            for (int p = 0; p < FOOLC_NORM_COUNT; p++) {
                if (!used[p]) continue;
                size_t q = (size_t)i * FOOLC_NORM_COUNT + p;
                fprintf(f, ", \"%s\": ", foolc_norm_name((foolc_norm)p));
                json_num(f, best[q]);
                fprintf(f, ", \"%s_attack\": ", foolc_norm_name((foolc_norm)p));
                if (best_by[q] >= 0) fprintf(f, "\"%s\"", ar[best_by[q]].name);
                else fprintf(f, "null");
            }
            fprintf(f, "}");
        }
        fprintf(f, "]}\n");
        if (fclose(f)) { perror(json); rc = CLI_INPUT; }
    }
    if (csv) {
        FILE *f = fopen(csv, "w");
        if (!f) { perror(csv); rc = CLI_INPUT; goto out_best; }
        fprintf(f, "attack,index,label,success,l0,l1,l2,linf,mse,forward,backward,decided\n");
        for (int t = 0; t < n_att; t++)
            for (int32_t i = 0; i < n; i++) {
                attack_res *r = &ar[t];
                fprintf(f, "%s,%d,%d,%d", r->name, index[i], y[i], r->ok[i]);
                for (int p = 0; p < FOOLC_NORM_COUNT; p++)
                    fprintf(f, ",%.9g", (double)r->dist[(size_t)i * FOOLC_NORM_COUNT + p]);
                fprintf(f, ",%llu,%llu,%llu\n", (unsigned long long)r->q[i].forward,
                        (unsigned long long)r->q[i].backward,
                        (unsigned long long)r->q[i].decided);
            }
        if (fclose(f)) { perror(csv); rc = CLI_INPUT; }
    }
    for (int t = 0; t < n_att; t++)
        if (ar[t].st < 0 && rc == CLI_OK) rc = CLI_FAIL;
out_best:
    free(best);
    free(best_by);
out:
    for (int t = 0; t < MAX_ATTACKS; t++) {
        free(ar[t].dist);
        free(ar[t].ok);
        free(ar[t].q);
    }
    free(list);
    free(x);
    free(xadv);
    free(dist);
    free(y);
    free(index);
    free(logits);
    foolc_model_free(model);
    foolc_net_free(net);
    foolc_data_free(&data);
    cli_args_free(&a);
    return rc;
}
