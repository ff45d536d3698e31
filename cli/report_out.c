/* foolc report's outputs: summary statistics, robust-accuracy curves read from the
 * per-sample minima, gradient-masking diagnostics, and the text, JSON, CSV, SVG and PNG
 * writers. Everything here is a pure function of the results, so a resumed run prints the
 * same bytes as an uninterrupted one. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* The figures come from the evaluation (include/foolc/eval.h); t is an attack index or
 * FOOLC_EVAL_BEST. */
double rep_quantile(const rep *r, int t, int p, double q)
{
    return foolc_eval_quantile(r->ev, t, (foolc_norm)p, q);
}

double rep_mean(const rep *r, int t, int p) { return foolc_eval_mean(r->ev, t, (foolc_norm)p); }

double rep_robust(const rep *r, int t, int p, double eps)
{
    return foolc_eval_robust(r->ev, t, (foolc_norm)p, eps);
}

static int32_t count_finite(const float *v, int32_t n, size_t stride)
{
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) k += isfinite(v[(size_t)i * stride]) != 0;
    return k;
}

/* wide = 0: up to the largest finite best-of-all minimum (where the curve of the whole suite
 * reaches its floor); wide = 1: up to the largest finite minimum of any attack's curve. */
static int grid(const rep *r, int p, double *eps, int wide)
{
    return (int)foolc_eval_grid(r->ev, (foolc_norm)p, wide, eps, REP_MAX_GRID);
}

int rep_grid(const rep *r, int p, double *eps) { return grid(r, p, eps, 0); }

int rep_diagnostics(const rep *r, char lines[][320], int max)
{
    int n = (int)foolc_eval_diagnostics(r->ev);
    for (int k = 0; k < n && k < max; k++) {
        int warn;
        const char *text = foolc_eval_diagnostic(r->ev, k, &warn);
        snprintf(lines[k], 320, "%s %s", warn ? "WARN" : "ok  ", text);
    }
    return n < max ? n : max;
}

/* --- Certified lower bounds (--certify) */
double rep_cert(const rep *r, int32_t i, int p)
{
    int k = p == FOOLC_LINF ? 0 : p == FOOLC_L2 ? 1 : p == FOOLC_L1 ? 2 : -1;
    return r->cert && k >= 0 ? r->cert[(size_t)i * 3 + k] : NAN;
}

/* Whether norm p has certified radii. */
static int cert_has(const rep *r, int p)
{
    for (int32_t i = 0; i < r->n; i++)
        if (!isnan(rep_cert(r, i, p))) return 1;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Quantile q of the certified radii in norm p (NaN ones left out; linear interpolation). */
static double cert_quantile(const rep *r, int p, double q)
{
    double *v = malloc((size_t)r->n * sizeof *v), out = NAN;
    int32_t m = 0;
    for (int32_t i = 0; v && i < r->n; i++)
        if (!isnan(rep_cert(r, i, p))) v[m++] = rep_cert(r, i, p);
    if (m > 0) {
        qsort(v, (size_t)m, sizeof *v, cmp_double);
        double pos = q * (m - 1);
        int32_t lo = (int32_t)pos;
        out = lo + 1 < m ? v[lo] + (pos - lo) * (v[lo + 1] - v[lo]) : v[lo];
        if (lo + 1 < m && isinf(v[lo + 1])) out = pos > lo ? INFINITY : v[lo];
    }
    free(v);
    return out;
}

/* The median over samples of found / certified (both finite, certified > 0). */
static double cert_ratio(const rep *r, int p)
{
    double *v = malloc((size_t)r->n * sizeof *v), out = NAN;
    int32_t m = 0;
    for (int32_t i = 0; v && i < r->n; i++) {
        double c = rep_cert(r, i, p), b = r->best[(size_t)i * NC + p];
        if (c > 0 && isfinite(c) && isfinite(b)) v[m++] = b / c;
    }
    if (m > 0) {
        qsort(v, (size_t)m, sizeof *v, cmp_double);
        out = m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
    }
    free(v);
    return out;
}

/* Certified accuracy at eps: the fraction certified at eps, scaled as robust accuracy is
 * (its value at 0 over the fraction of samples correctly classified). */
static double cert_acc(const rep *r, int p, double eps)
{
    int32_t k = 0, ok0 = 0;
    for (int32_t i = 0; i < r->n; i++) {
        double c = rep_cert(r, i, p);
        k += c > 0 && c >= eps;
        ok0 += r->best[(size_t)i * NC + p] > 0;
    }
    double base = rep_robust(r, FOOLC_EVAL_BEST, p, 0);
    return ok0 ? base * k / ok0 : 0;
}

int rep_cert_check(const rep *r)
{
    int bad = 0;
    for (int p = 0; r->cert && p < NC; p++) {
        if (!r->norms[p]) continue;
        for (int32_t i = 0; i < r->n; i++) {
            double c = rep_cert(r, i, p), b = r->best[(size_t)i * NC + p];
            if (!(isfinite(b) && c > b * (1 + 1e-5) + 1e-6)) continue;
            int t = r->best_by[(size_t)i * NC + p];
            fprintf(stderr, "foolc report: sample %d (test index %d), %s: certified radius "
                    "%.9g (%s) is above the adversarial found at %.9g (%s): a bug in the "
                    "bounds, the engine or the attack\n", (int)i, r->index[i],
                    foolc_norm_name((foolc_norm)p), c, r->cert_method, b,
                    t >= 0 ? r->at[t].name : "?");
            bad++;
        }
    }
    return bad;
}

static void att_sums(const rep *r, const rep_att *a, double *fw, double *bw, double *dc)
{
    *fw = *bw = *dc = 0;
    for (int32_t i = 0; i < r->n; i++) {
        *fw += (double)a->q[i].forward;
        *bw += (double)a->q[i].backward;
        *dc += (double)a->q[i].decided;
    }
}

static const double k_q[] = {0.1, 0.25, 0.5, 0.75, 0.9};
static const char *const k_qname[] = {"q10", "q25", "median", "q75", "q90"};

static void row(const rep *r, FILE *f, const char *name, int t, int p, const float *v,
                double fw, double bw, double dc, double sec, const char *note)
{
    int32_t succ = count_finite(v, r->n, NC);
    fprintf(f, "%-19s %-4s %7.1f%%", name, foolc_norm_name((foolc_norm)p), 100.0 * succ / r->n);
    for (int q = 0; q < 5; q++) fprintf(f, " %9.4g", rep_quantile(r, t, p, k_q[q]));
    fprintf(f, " %9.4g %9.1f %9.1f %9.1f", rep_mean(r, t, p), fw / r->n, bw / r->n,
            dc / r->n);
    if (!r->no_time) fprintf(f, " %8.2f", sec);
    fprintf(f, "%s\n", note);
}

void rep_text(const rep *r, FILE *f)
{
    fprintf(f, "\nminimal perturbations: %s on %s, %d %s test images, seed %ld\n", r->model,
            r->data, r->n, r->all ? "first" : "correctly classified", r->seed);
    if (r->set) fprintf(f, "attack settings: %s\n", r->set);
    fprintf(f, "clean accuracy %.2f %% (%d of %d)\n\n", 100 * r->clean_acc, r->correct, r->total);
    fprintf(f, "%-19s %-4s %8s", "attack", "norm", "success");
    for (int q = 0; q < 5; q++) fprintf(f, " %9s", k_qname[q]);
    fprintf(f, " %9s %9s %9s %9s", "mean", "fwd/img", "bwd/img", "dec/img");
    if (!r->no_time) fprintf(f, " %8s", "seconds");
    fprintf(f, "\n");
    double tf = 0, tb = 0, td = 0, ts = 0;
    for (int t = 0; t < r->n_att; t++) {
        const rep_att *a = &r->at[t];
        double fw, bw, dc;
        att_sums(r, a, &fw, &bw, &dc);
        tf += fw, tb += bw, td += dc, ts += a->seconds;
        char note[96] = "";
        if (a->st < 0) snprintf(note, sizeof note, "  (stopped: %s)", foolc_status_str(a->st));
        row(r, f, a->name, t, a->norm, a->dist + a->norm, fw, bw, dc, a->seconds, note);
    }
    for (int p = 0; p < NC; p++)
        if (r->norms[p])
            row(r, f, "best-of-all", FOOLC_EVAL_BEST, p, r->best + p, tf, tb, td, ts, "");
    fprintf(f, "\nbest-of-all found by (samples per attack):\n");
    for (int p = 0; p < NC; p++) {
        if (!r->norms[p]) continue;
        fprintf(f, "  %-4s", foolc_norm_name((foolc_norm)p));
        int any = 0;
        for (int t = 0; t < r->n_att; t++) {
            int32_t c = 0;
            for (int32_t i = 0; i < r->n; i++) c += r->best_by[(size_t)i * NC + p] == t;
            if (c) fprintf(f, "%s %s %d", any++ ? "," : "", r->at[t].name, c);
        }
        int32_t none = r->n - count_finite(r->best + p, r->n, NC);
        if (none) fprintf(f, "%s none %d", any ? "," : "", none);
        fprintf(f, "\n");
    }
    for (int p = 0; p < NC; p++) {
        if (!r->norms[p]) continue;
        double eps[REP_MAX_GRID];
        int k = rep_grid(r, p, eps);
        fprintf(f, "\nrobust accuracy (%s) at epsilon:\n%-19s", foolc_norm_name((foolc_norm)p),
                "  epsilon");
        for (int e = 0; e < k; e++) fprintf(f, " %7.4g", eps[e]);
        fprintf(f, "\n");
        for (int t = 0; t <= r->n_att; t++) {
            int tc = t < r->n_att ? t : FOOLC_EVAL_BEST;
            if (t < r->n_att && (int)r->at[t].norm != p) continue;
            fprintf(f, "  %-17s", t < r->n_att ? r->at[t].name : "best-of-all");
            for (int e = 0; e < k; e++) fprintf(f, " %7.4f", rep_robust(r, tc, p, eps[e]));
            fprintf(f, "\n");
        }
        if (cert_has(r, p)) {
            char name[40];
            snprintf(name, sizeof name, "certified-%s", r->cert_method);
            fprintf(f, "  %-17s", name);
            for (int e = 0; e < k; e++) fprintf(f, " %7.4f", cert_acc(r, p, eps[e]));
            fprintf(f, "\n");
        }
    }
    if (r->cert) {
        fprintf(f, "\ncertified lower bounds (%s) beside the best found:\n%-19s %-4s",
                r->cert_method, "", "norm");
        for (int q = 0; q < 5; q++) fprintf(f, " %9s", k_qname[q]);
        fprintf(f, " %13s\n", "found/cert");
        for (int p = 0; p < NC; p++) {
            if (!r->norms[p] || !cert_has(r, p)) continue;
            fprintf(f, "%-19s %-4s", "certified", foolc_norm_name((foolc_norm)p));
            for (int q = 0; q < 5; q++) fprintf(f, " %9.4g", cert_quantile(r, p, k_q[q]));
            fprintf(f, " %13.4g\n", cert_ratio(r, p));
        }
    }
    char lines[2 * NC + 2][320];
    int nl = rep_diagnostics(r, lines, 2 * NC + 2);
    fprintf(f, "\ngradient-masking diagnostics (arXiv:1704.01547):\n");
    for (int i = 0; i < nl; i++) fprintf(f, "  %s\n", lines[i]);
}

/* --- JSON */
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

static void json_stats(FILE *f, const rep *r, int t, int p, const float *v)
{
    fprintf(f, "\"success_rate\": ");
    json_num(f, (double)count_finite(v, r->n, NC) / r->n);
    fprintf(f, ", \"distance\": {");
    for (int q = 0; q < 5; q++) {
        fprintf(f, "\"%s\": ", k_qname[q]);
        json_num(f, rep_quantile(r, t, p, k_q[q]));
        fprintf(f, ", ");
    }
    fprintf(f, "\"mean\": ");
    json_num(f, rep_mean(r, t, p));
    fprintf(f, "}");
}

/* An output file, or standard output for "-". */
static FILE *open_out(const char *flag, const char *path)
{
    if (!strcmp(path, "-")) return stdout;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "foolc report: %s '%s': cannot write: ", flag, path);
        perror(NULL);
    }
    return f;
}

static int close_out(FILE *f, const char *flag, const char *path)
{
    if (f == stdout) {
        if (!fflush(f) && !ferror(f)) return 0;
        fprintf(stderr, "foolc report: %s -: write to standard output failed\n", flag);
        return CLI_INPUT;
    }
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "foolc report: %s '%s': write failed\n", flag, path);
        return CLI_INPUT;
    }
    return 0;
}

int rep_json(const rep *r, const char *path)
{
    FILE *f = open_out("--json", path);
    if (!f) return CLI_INPUT;
    fprintf(f, "{\"foolc_report\": 1, \"model\": ");
    json_str(f, r->model);
    fprintf(f, ", \"data\": ");
    json_str(f, r->data);
    fprintf(f, ", \"set\": ");
    json_str(f, r->set ? r->set : "");
    fprintf(f, ", \"n\": %d, \"all\": %s, \"seed\": %ld,\n \"clean_accuracy\": %.9g, "
            "\"clean_correct\": %d, \"clean_total\": %d,\n \"norms\": [",
            r->n, r->all ? "true" : "false", r->seed, r->clean_acc, r->correct, r->total);
    for (int p = 0, c = 0; p < NC; p++)
        if (r->norms[p]) fprintf(f, "%s\"%s\"", c++ ? ", " : "", foolc_norm_name((foolc_norm)p));
    fprintf(f, "],\n \"gradient_check\": {\"checked\": %s, \"zero\": %d, \"nonfinite\": %d},\n"
            " \"attacks\": [", r->grad_checked ? "true" : "false", r->grad_zero,
            r->grad_nonfinite);
    for (int t = 0; t < r->n_att; t++) {
        const rep_att *a = &r->at[t];
        double fw, bw, dc;
        att_sums(r, a, &fw, &bw, &dc);
        fprintf(f, "%s\n  {\"name\": \"%s\", \"norm\": \"%s\", \"needs\": [", t ? "," : "",
                a->name, foolc_norm_name(a->norm));
        int c = 0;
        if (a->needs & FOOLC_NEEDS_GRAD) fprintf(f, "%s\"gradients\"", c++ ? ", " : "");
        if (a->needs & FOOLC_NEEDS_SCORES) fprintf(f, "%s\"scores\"", c++ ? ", " : "");
        if (a->needs & FOOLC_NEEDS_DECISION) fprintf(f, "%s\"decisions\"", c++ ? ", " : "");
        fprintf(f, "], \"status\": \"%s\", \"seconds\": ",
                a->st < 0 ? foolc_status_str(a->st) : "ok");
        json_num(f, r->no_time ? NAN : a->seconds);
        fprintf(f, ",\n   ");
        json_stats(f, r, t, a->norm, a->dist + a->norm);
        fprintf(f, ",\n   \"queries_per_sample\": {\"forward\": %.9g, \"backward\": %.9g, "
                "\"decided\": %.9g},\n   \"samples\": [", fw / r->n, bw / r->n, dc / r->n);
        for (int32_t i = 0; i < r->n; i++) {
            fprintf(f, "%s\n    {\"index\": %d, \"label\": %d, \"success\": %s, \"adv_label\": %d",
                    i ? "," : "", r->index[i], r->y[i], a->ok[i] ? "true" : "false", a->adv[i]);
            for (int p = 0; p < NC; p++) {
                fprintf(f, ", \"%s\": ", foolc_norm_name((foolc_norm)p));
                json_num(f, a->dist[(size_t)i * NC + p]);
            }
            fprintf(f, ", \"forward\": %llu, \"backward\": %llu, \"decided\": %llu}",
                    (unsigned long long)a->q[i].forward, (unsigned long long)a->q[i].backward,
                    (unsigned long long)a->q[i].decided);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "],\n \"best_of_all\": {");
    for (int p = 0, c = 0; p < NC; p++) {
        if (!r->norms[p]) continue;
        fprintf(f, "%s\n  \"%s\": {", c++ ? "," : "", foolc_norm_name((foolc_norm)p));
        json_stats(f, r, FOOLC_EVAL_BEST, p, r->best + p);
        fprintf(f, ", \"found_by\": {");
        for (int t = 0, cc = 0; t < r->n_att; t++) {
            int32_t k = 0;
            for (int32_t i = 0; i < r->n; i++) k += r->best_by[(size_t)i * NC + p] == t;
            if (k) fprintf(f, "%s\"%s\": %d", cc++ ? ", " : "", r->at[t].name, k);
        }
        fprintf(f, "}}");
    }
    fprintf(f, "},\n \"best\": [");
    for (int32_t i = 0; i < r->n; i++) {
        fprintf(f, "%s\n  {\"index\": %d, \"label\": %d", i ? "," : "", r->index[i], r->y[i]);
        for (int p = 0; p < NC; p++) {
            if (!r->norms[p]) continue;
            size_t q = (size_t)i * NC + p;
            fprintf(f, ", \"%s\": ", foolc_norm_name((foolc_norm)p));
            json_num(f, r->best[q]);
            fprintf(f, ", \"%s_attack\": ", foolc_norm_name((foolc_norm)p));
            if (r->best_by[q] >= 0) fprintf(f, "\"%s\"", r->at[r->best_by[q]].name);
            else fprintf(f, "null");
            if (r->cert && cert_has(r, p)) {
                fprintf(f, ", \"%s_certified\": ", foolc_norm_name((foolc_norm)p));
                json_num(f, rep_cert(r, i, p));
            }
        }
        fprintf(f, "}");
    }
    fprintf(f, "],\n \"robust_accuracy\": {");
    for (int p = 0, c = 0; p < NC; p++) {
        if (!r->norms[p]) continue;
        double eps[REP_MAX_GRID];
        int k = rep_grid(r, p, eps);
        fprintf(f, "%s\n  \"%s\": {\"epsilon\": [", c++ ? "," : "", foolc_norm_name((foolc_norm)p));
        for (int e = 0; e < k; e++) fprintf(f, "%s%.9g", e ? ", " : "", eps[e]);
        fprintf(f, "]");
        for (int t = 0; t <= r->n_att; t++) {
            if (t < r->n_att && (int)r->at[t].norm != p) continue;
            int tc = t < r->n_att ? t : FOOLC_EVAL_BEST;
            fprintf(f, ",\n   \"%s\": [", t < r->n_att ? r->at[t].name : "best-of-all");
            for (int e = 0; e < k; e++)
                fprintf(f, "%s%.9g", e ? ", " : "", rep_robust(r, tc, p, eps[e]));
            fprintf(f, "]");
        }
        fprintf(f, "}");
    }
    if (r->cert) {
        fprintf(f, "},\n \"certified\": {\"method\": \"%s\"", r->cert_method);
        for (int p = 0; p < NC; p++) {
            if (!r->norms[p] || !cert_has(r, p)) continue;
            double eps[REP_MAX_GRID];
            int k = rep_grid(r, p, eps);
            fprintf(f, ",\n  \"%s\": {\"radius\": {", foolc_norm_name((foolc_norm)p));
            for (int q = 0; q < 5; q++) {
                fprintf(f, "%s\"%s\": ", q ? ", " : "", k_qname[q]);
                json_num(f, cert_quantile(r, p, k_q[q]));
            }
            fprintf(f, "}, \"median_found_over_certified\": ");
            json_num(f, cert_ratio(r, p));
            fprintf(f, ", \"accuracy\": [");
            for (int e = 0; e < k; e++) fprintf(f, "%s%.9g", e ? ", " : "", cert_acc(r, p, eps[e]));
            fprintf(f, "]}");
        }
    }
    fprintf(f, "},\n \"diagnostics\": [");
    char lines[2 * NC + 2][320];
    int nl = rep_diagnostics(r, lines, 2 * NC + 2);
    for (int i = 0; i < nl; i++) {
        fprintf(f, "%s\n  {\"level\": \"%s\", \"text\": ", i ? "," : "",
                strncmp(lines[i], "WARN", 4) ? "ok" : "warn");
        json_str(f, lines[i] + 5);
        fprintf(f, "}");
    }
    fprintf(f, "]}\n");
    return close_out(f, "--json", path);
}

/* --- CSV: one row per attack and sample, then one "best-of-all" row per norm and sample
 * holding the point that is smallest in that norm (found_by names its attack). */
static void csv_row(FILE *f, const rep *r, const char *name, int p, int32_t i, const rep_att *a,
                    const char *by)
{
    fprintf(f, "%s,%s,%d,%d,%d,%d", name, foolc_norm_name((foolc_norm)p), r->index[i], r->y[i],
            a ? a->ok[i] : 0, a ? a->adv[i] : -1);
    for (int q = 0; q < NC; q++)
        fprintf(f, ",%.9g", a ? (double)a->dist[(size_t)i * NC + q] : INFINITY);
    if (a)
        fprintf(f, ",%llu,%llu,%llu,%s", (unsigned long long)a->q[i].forward,
                (unsigned long long)a->q[i].backward, (unsigned long long)a->q[i].decided, by);
    else
        fprintf(f, ",0,0,0,%s", by);
    if (r->cert) fprintf(f, ",%.9g", rep_cert(r, i, p));
    fprintf(f, "\n");
}

int rep_csv(const rep *r, const char *path)
{
    FILE *f = open_out("--csv", path);
    if (!f) return CLI_INPUT;
    fprintf(f, "attack,norm,index,label,success,adv_label,l0,l1,l2,linf,mse,forward,backward,"
            "decided,found_by%s\n", r->cert ? ",certified" : "");
    for (int t = 0; t < r->n_att; t++)
        for (int32_t i = 0; i < r->n; i++)
            csv_row(f, r, r->at[t].name, r->at[t].norm, i, &r->at[t], "");
    for (int p = 0; p < NC; p++) {
        if (!r->norms[p]) continue;
        for (int32_t i = 0; i < r->n; i++) {
            int t = r->best_by[(size_t)i * NC + p];
            csv_row(f, r, "best-of-all", p, i, t >= 0 ? &r->at[t] : NULL,
                    t >= 0 ? r->at[t].name : "");
        }
    }
    return close_out(f, "--csv", path);
}

/* --- SVG: one panel per norm, robust accuracy against epsilon as step curves. */
static const char *const k_colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

int rep_svg(const rep *r, const char *path)
{
    FILE *f = open_out("--svg", path);
    if (!f) return CLI_INPUT;
    int np = 0;
    for (int p = 0; p < NC; p++) np += r->norms[p];
    const double W = 460, H = 340, ml = 60, mr = 20, mt = 36, mb = 50;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%g\" height=\"%g\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W * np, H);
    float *s = malloc((size_t)r->n * sizeof *s);
    if (!s) { fclose(f); return cli_fail("report", FOOLC_E_NOMEM); }
    for (int p = 0, panel = 0; p < NC; p++) {
        if (!r->norms[p]) continue;
        double eps[REP_MAX_GRID];
        int k = grid(r, p, eps, 1);
        double x0 = panel++ * W + ml, x1 = x0 + W - ml - mr, y0 = mt, y1 = H - mb;
        double xmax = eps[k - 1] > 0 ? eps[k - 1] : 1;
#define X(e) (x0 + (x1 - x0) * ((e) < xmax ? (e) : xmax) / xmax)
#define Y(a) (y1 - (y1 - y0) * (a))
        fprintf(f, "<text x=\"%g\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">robust "
                "accuracy (%s), %d images</text>\n", (x0 + x1) / 2,
                foolc_norm_name((foolc_norm)p), r->n);
        fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
                "stroke=\"black\"/>\n", x0, y0, x1 - x0, y1 - y0);
        for (int e = 0; e < k; e++)
            fprintf(f, "<line x1=\"%.2f\" y1=\"%g\" x2=\"%.2f\" y2=\"%g\" stroke=\"#ddd\"/>"
                    "<text x=\"%.2f\" y=\"%g\" text-anchor=\"middle\">%g</text>\n", X(eps[e]),
                    y0, X(eps[e]), y1, X(eps[e]), y1 + 16, eps[e]);
        for (int a = 0; a <= 4; a++)
            fprintf(f, "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"#ddd\"/>"
                    "<text x=\"%g\" y=\"%.2f\" text-anchor=\"end\">%.2f</text>\n", x0, Y(a / 4.0),
                    x1, Y(a / 4.0), x0 - 6, Y(a / 4.0) + 4, a / 4.0);
        fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">epsilon (%s distance)</text>\n",
                (x0 + x1) / 2, H - 12, foolc_norm_name((foolc_norm)p));
        fprintf(f, "<text transform=\"translate(%g,%g) rotate(-90)\" text-anchor=\"middle\">"
                "robust accuracy</text>\n", x0 - 42, (y0 + y1) / 2);
        int c = 0, legend = 0;
        for (int t = 0; t <= r->n_att; t++) {
            if (t < r->n_att && (int)r->at[t].norm != p) continue;
            const float *v = t < r->n_att ? r->at[t].dist + p : r->best + p;
            int tc = t < r->n_att ? t : FOOLC_EVAL_BEST;
            const char *col = t < r->n_att ? k_colors[c++ % 10] : "black";
            for (int32_t i = 0; i < r->n; i++) s[i] = v[(size_t)i * NC];
            qsort(s, (size_t)r->n, sizeof *s, cmp_float);
            fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s d=\"M%.2f %.2f",
                    col, t < r->n_att ? "1.5" : "2.5",
                    t < r->n_att ? "" : " stroke-dasharray=\"6 3\"", X(0.0),
                    Y(rep_robust(r, tc, p, 0)));
            for (int32_t i = 0; i < r->n; i++) {
                if (!isfinite(s[i]) || s[i] > xmax) break;
                if (i + 1 < r->n && s[i + 1] == s[i]) continue;
                fprintf(f, " H%.2f V%.2f", X((double)s[i]), Y(rep_robust(r, tc, p, s[i])));
            }
            fprintf(f, " H%.2f\"/>\n", X(xmax));
            double ly = y0 + 16 + 16 * legend++;
            fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
                    "stroke-width=\"2\"%s/><text x=\"%g\" y=\"%g\">%s</text>\n", x1 - 150,
                    ly - 4, x1 - 126, ly - 4, col, t < r->n_att ? "" : " stroke-dasharray=\"6 3\"",
                    x1 - 120, ly, t < r->n_att ? r->at[t].name : "best-of-all");
        }
        if (cert_has(r, p)) {
            /* the certified-accuracy curve under the robust-accuracy curves, the band
             * between it and best-of-all shaded (the truth lies inside) */
            const int G = 240;
            fprintf(f, "<path fill=\"#888\" fill-opacity=\"0.25\" stroke=\"none\" d=\"M%.2f %.2f",
                    X(0.0), Y(rep_robust(r, FOOLC_EVAL_BEST, p, 0)));
            for (int g = 0; g <= G; g++)
                fprintf(f, " L%.2f %.2f", X(xmax * g / G), Y(rep_robust(r, FOOLC_EVAL_BEST, p, xmax * g / G)));
            for (int g = G; g >= 0; g--)
                fprintf(f, " L%.2f %.2f", X(xmax * g / G), Y(cert_acc(r, p, xmax * g / G)));
            fprintf(f, " Z\"/>\n<path fill=\"none\" stroke=\"#444\" stroke-width=\"2\" "
                    "stroke-dasharray=\"2 2\" d=\"M%.2f %.2f", X(0.0), Y(cert_acc(r, p, 0)));
            for (int g = 1; g <= G; g++)
                fprintf(f, " H%.2f V%.2f", X(xmax * g / G), Y(cert_acc(r, p, xmax * g / G)));
            double ly = y0 + 16 + 16 * legend++;
            fprintf(f, "\"/>\n<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#444\" "
                    "stroke-width=\"2\" stroke-dasharray=\"2 2\"/><text x=\"%g\" y=\"%g\">"
                    "certified (%s)</text>\n", x1 - 150, ly - 4, x1 - 126, ly - 4, x1 - 120, ly,
                    r->cert_method);
        }
#undef X
#undef Y
    }
    free(s);
    fprintf(f, "</svg>\n");
    return close_out(f, "--svg", path);
}

/* --- PNG: examples of the smallest adversarial per sample in one norm, captioned. */
static const unsigned char k_ink[3] = {0, 0, 0}, k_grey[3] = {96, 96, 96};

/* Column titles over one example: original | adversarial | perturbation. */
static void png_titles(cli_canvas *cv, int ox, int oy, int tw, int pad)
{
    const char *const longer[] = {"original", "adversarial", "perturbation"};
    const char *const shorter[] = {"orig", "adv", "delta"};
    for (int j = 0; j < 3; j++) {
        const char *s = cli_text_width(longer[j]) <= tw ? longer[j] : shorter[j];
        cli_canvas_text(cv, ox + j * (tw + pad) + (tw - cli_text_width(s)) / 2, oy, s,
                        k_grey);
    }
}

/* Two caption lines under an example: the image's index and the attack, then the label
 * change and the distance. */
static void png_caption(cli_canvas *cv, int ox, int oy, const rep *r, int32_t i, int t, int p)
{
    const rep_att *a = &r->at[t];
    char line[160];
    snprintf(line, sizeof line, "#%d %s", r->index[i], a->name);
    cli_canvas_text(cv, ox, oy, line, k_ink);
    snprintf(line, sizeof line, "label %d -> %d, %s %.4g", r->y[i], a->adv[i],
             foolc_norm_name((foolc_norm)p), (double)a->dist[(size_t)i * NC + p]);
    cli_canvas_text(cv, ox, oy + CLI_LINE_HEIGHT, line, k_ink);
}

int rep_png(const rep *r, const char *path, int count, foolc_norm norm)
{
    int p = (int)norm;
    int32_t *pick = malloc((size_t)count * sizeof *pick);
    if (!pick) return cli_fail("report", FOOLC_E_NOMEM);
    int k = 0;
    for (int32_t i = 0; i < r->n && k < count; i++)
        if (r->best_by[(size_t)i * NC + p] >= 0) pick[k++] = i;
    int side = r->s.h > r->s.w ? r->s.h : r->s.w;
    int scale = side >= 96 ? 1 : 96 / side, pad = 4, lh = CLI_LINE_HEIGHT;
    int tw = r->s.w * scale, th = r->s.h * scale, cols = k >= 4 ? 2 : 1;
    int rows = k ? (k + cols - 1) / cols : 1;
    int cw = 3 * tw + 2 * pad + 3 * pad;  /* one triple plus a wider gap */
    int rh = lh + th + pad + 2 * lh + pad; /* titles, tiles, two caption lines */
    int top = pad + 2 * lh;                /* two title lines */
    char title[2][160];
    snprintf(title[0], sizeof title[0], "best %s adversarial per image, %d of %d",
             foolc_norm_name(norm), k, r->n);
    snprintf(title[1], sizeof title[1], "perturbation: red +, blue -, scaled to its max");
    if (k == 0) {
        snprintf(title[0], sizeof title[0], "no %s adversarial found", foolc_norm_name(norm));
        snprintf(title[1], sizeof title[1], "in %d images", r->n);
        fprintf(stderr, "foolc report: --png '%s': no attack found an adversarial to show in "
                "%s; the image says so\n", path, foolc_norm_name(norm));
    }
    int width = cols * cw + pad;
    for (int j = 0; j < 2; j++)
        if (cli_text_width(title[j]) + 2 * pad > width) width = cli_text_width(title[j]) + 2 * pad;
    cli_canvas cv;
    if (cli_canvas_new(&cv, width, top + (k ? rows * rh : 0) + pad)) {
        free(pick);
        return cli_fail("report", FOOLC_E_NOMEM);
    }
    for (int j = 0; j < 2; j++) cli_canvas_text(&cv, pad, pad + j * lh, title[j], k_ink);
    foolc_shape s1 = r->s;
    for (int j = 0; j < k; j++) {
        int32_t i = pick[j];
        int t = r->best_by[(size_t)i * NC + p];
        const rep_att *a = &r->at[t];
        const float *x = r->x + (size_t)i * r->d, *xa = a->xadv + (size_t)i * r->d;
        int ox = pad + (j % cols) * cw, oy = top + (j / cols) * rh;
        png_titles(&cv, ox, oy, tw, pad);
        oy += lh;
        cli_canvas_image(&cv, ox, oy, x, s1, r->lo, r->hi, scale);
        cli_canvas_image(&cv, ox + tw + pad, oy, xa, s1, r->lo, r->hi, scale);
        cli_canvas_delta(&cv, ox + 2 * (tw + pad), oy, x, xa, s1, scale);
        png_caption(&cv, ox, oy + th + pad, r, i, t, p);
    }
    free(pick);
    int rc = cli_canvas_png(&cv, "report", "--png", path);
    cli_canvas_free(&cv);
    return rc;
}
