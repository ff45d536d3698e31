/* foolc report: for the first N test images a model classifies correctly, runs each attack
 * (cheap ones first) in fixed chunks of samples, appends each finished chunk to an optional
 * resume file, checks the model's gradients, and writes the report (report_out.c). */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: foolc report --model M.npz [options]\n"
           "  --data D        fashion-mnist (default), an IDX directory or an .npz (x, y)\n"
           "  --attacks L     comma-separated attacks, or 'all' (default: fgsm, deepfool-linf,\n"
           "                  pgd-linf, deepfool-l2, pgd-l2 as registered); they run cheap first\n"
           "  --norm P        only attacks of norm P (l0, l1, l2, linf) and only that norm\n"
           "  --set A.K=V,..  attack parameters, e.g. --set pgd-linf.steps=20,boundary.steps=5000\n"
           "  -n N            number of images (default 100)\n"
           "  --all           the first N images, not only correctly classified ones\n"
           "  --seed S        attack seed (default 0)\n"
           "  --batch B       samples per attack call and per resume chunk (default 25)\n"
           "  --budget Q      query budget, images per sample of a chunk (default none)\n"
           "  --pool N        training images offered as starting points (default all; 0 none)\n"
           "  --json FILE     every per-sample figure as JSON\n"
           "  --csv FILE      every per-sample figure as CSV\n"
           "  --svg FILE      robust accuracy against epsilon, one curve per attack and best\n"
           "  --png FILE      a grid of example adversarials: original | adversarial | delta\n"
           "  --png-n K       examples in the grid (default 8)\n"
           "  --png-norm P    the norm of the examples (default: the first reported norm)\n"
           "  --resume FILE   append results as chunks finish; rerun to continue after a kill\n"
           "  --no-time       leave wall seconds out (outputs comparable byte for byte)\n"
           "  --quiet         no progress on stderr\n"
           "--json, --csv or --svg '-' writes to standard output (the table then goes to\n"
           "stderr). Output files are checked before any work. Ctrl-C (SIGINT) or SIGTERM\n"
           "stops at once and keeps the chunks done (without --resume, in a new resume file\n"
           "under ~/.cache/foolc) and prints the command that continues.\n"
           "Distances are minimal perturbations: quantiles over all N samples with failures\n"
           "counted as infinite; the mean over the successful ones. Exit status: 0 ok, 1 an\n"
           "attack failed (results kept), 2 usage, 3 bad input file, 130 interrupted.\n");
}

/* Cost classes: cheap single-step and closed-form attacks first, then iterative gradient
 * attacks, then the expensive optimisers and the query-hungry decision-based attacks. */
static int cost_rank(const char *name, unsigned needs)
{
    static const struct { const char *prefix; int rank; } k[] = {
        {"fgsm", 0}, {"fgm-", 0}, {"deepfool", 1}, {"newtonfool", 1},
        {"inversion", 2}, {"contrast", 2}, {"binarization", 2}, {"blur", 2},
        {"blended-noise", 2}, {"dataset", 2}, {"uniform-noise", 3}, {"gaussian-noise", 3},
        {"bim-", 4}, {"mifgsm", 4}, {"pgd-", 4}, {"ddn", 4}, {"fmn-", 4},
        {"apgd", 5}, {"fab-", 5}, {"cw-", 6}, {"ead", 6}, {"bb-", 6},
        {"salt-and-pepper", 7}, {"pointwise", 7}, {"hsj-", 8}, {"boundary", 8},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strncmp(name, k[i].prefix, strlen(k[i].prefix))) return k[i].rank;
    return needs & FOOLC_NEEDS_GRAD ? 5 : 7;
}

static const char *const k_default = "fgsm,deepfool-linf,pgd-linf,deepfool-l2,pgd-l2";

/* Parses --attacks (and --norm) into r->at, sorted cheap first (stable). */
static int pick_attacks(rep *r, const char *list, int have_norm, foolc_norm norm, char **buf)
{
    int every = list && !strcmp(list, "all"), dflt = !list;
    size_t cap = 64;
    for (int32_t i = 0; i < foolc_attack_count(); i++) cap += strlen(foolc_attack_name(i)) + 1;
    if (list) cap += strlen(list);
    char *s = malloc(cap);
    if (!s) return cli_fail("report", FOOLC_E_NOMEM);
    *buf = s;
    s[0] = '\0';
    if (every || dflt) {
        for (int32_t i = 0; i < foolc_attack_count(); i++) {
            const char *nm = foolc_attack_name(i);
            if (dflt) {
                size_t l = strlen(nm);
                const char *p = strstr(k_default, nm);
                if (!p || (p != k_default && p[-1] != ',') || (p[l] && p[l] != ',')) continue;
            }
            strcat(s, *s ? "," : "");
            strcat(s, nm);
        }
    } else {
        strcpy(s, list);
    }
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        foolc_norm p;
        unsigned needs;
        foolc_status st = foolc_attack_describe(tok, &p, &needs, NULL, NULL);
        if (st < 0) return cli_fail_opt("report", "--attacks", tok, st);
        if (have_norm && p != norm) {
            if (every || dflt) continue;
            fprintf(stderr, "foolc report: --attacks '%s': its norm is %s, not --norm %s\n",
                    tok, foolc_norm_name(p), foolc_norm_name(norm));
            return CLI_USAGE;
        }
        for (int t = 0; t < r->n_att; t++)
            if (!strcmp(r->at[t].name, tok)) {
                fprintf(stderr, "foolc report: --attacks: '%s' is listed twice\n", tok);
                return CLI_USAGE;
            }
        if (r->n_att == REP_MAX_ATTACKS) {
            fprintf(stderr, "foolc report: --attacks: at most %d attacks\n", REP_MAX_ATTACKS);
            return CLI_USAGE;
        }
        rep_att *a = &r->at[r->n_att++];
        a->name = tok;
        a->norm = p;
        a->needs = needs;
        a->rank = cost_rank(tok, needs);
    }
    if (r->n_att == 0 && have_norm && dflt) { /* no default attack of that norm: all */
        free(s);
        *buf = NULL;
        return pick_attacks(r, "all", have_norm, norm, buf);
    }
    if (r->n_att == 0) {
        fprintf(stderr, "foolc report: --attacks: no attack %s\n",
                have_norm ? "of that --norm" : "given");
        return CLI_USAGE;
    }
    for (int i = 1; i < r->n_att; i++) /* insertion sort: stable */
        for (int j = i; j > 0 && r->at[j].rank < r->at[j - 1].rank; j--) {
            rep_att tmp = r->at[j];
            r->at[j] = r->at[j - 1];
            r->at[j - 1] = tmp;
        }
    return 0;
}

/* --- The clean-gradient check: a margin loss z_y - max_{j != y} z_j. */
typedef struct margin_ctx { const int32_t *y; } margin_ctx;

static int margin_loss(void *user, int32_t first, const float *z, int32_t n, int32_t k,
                       float *dz, float *loss)
{
    const margin_ctx *c = user;
    for (int32_t i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * k;
        float *g = dz + (size_t)i * k;
        int32_t y = c->y[first + i], o = y == 0 ? 1 : 0;
        for (int32_t j = 0; j < k; j++) {
            g[j] = 0;
            if (j != y && zi[j] > zi[o]) o = j;
        }
        g[y] = 1;
        g[o] = -1;
        if (loss) loss[i] = zi[y] - zi[o];
    }
    return 0;
}

static void grad_check(rep *r, foolc_model *model)
{
    if (!(foolc_model_caps(model) & FOOLC_NEEDS_GRAD)) return;
    float *g = malloc(r->d * 64 * sizeof *g), *z = malloc((size_t)64 * r->n_classes * sizeof *z);
    if (!g || !z) goto out;
    r->grad_checked = 1;
    for (int32_t b = 0; b < r->n; b += 64) {
        int32_t m = r->n - b < 64 ? r->n - b : 64;
        margin_ctx c = {r->y + b};
        foolc_status st = foolc_model_value_and_grad(model, r->x + (size_t)b * r->d, m,
                                                     margin_loss, &c, z, NULL, g);
        if (st == FOOLC_E_NONFINITE) { /* count sample by sample */
            for (int32_t i = 0; i < m; i++) {
                margin_ctx c1 = {r->y + b + i};
                st = foolc_model_value_and_grad(model, r->x + (size_t)(b + i) * r->d, 1,
                                                margin_loss, &c1, z, NULL, g);
                if (st < 0) { r->grad_nonfinite++; continue; }
                double s = 0;
                for (size_t q = 0; q < r->d; q++) s += fabs(g[q]);
                r->grad_zero += s == 0;
            }
            continue;
        }
        if (st < 0) { r->grad_checked = 0; break; }
        for (int32_t i = 0; i < m; i++) {
            double s = 0;
            for (size_t q = 0; q < r->d; q++) s += fabs(g[(size_t)i * r->d + q]);
            r->grad_zero += s == 0;
            r->grad_nonfinite += !isfinite(s);
        }
    }
out:
    free(g);
    free(z);
}

/* --- A report run: its options and everything it holds. */
typedef struct report_opts {
    const char *model, *data, *attacks, *norm_name, *set; /* NULL when absent */
    const char *json, *csv, *svg, *png, *resume;          /* NULL when absent */
    const char *png_norm_name;                            /* NULL when absent */
    int quiet, all, no_time;
    long n, seed, batch, budget, pool, png_n;
    foolc_norm norm;     /* --norm, when norm_name is set */
    foolc_norm png_norm; /* --png-norm, when png_norm_name is set */
} report_opts;

typedef struct report_ctx {
    report_opts o;
    int argc;          /* the command line, for the message after an interrupt */
    char **argv;
    rep *r;
    char *names;       /* the attack list that r->at[].name points into */
    foolc_net *net;
    foolc_model *model;
    foolc_data data;   /* the test split */
    foolc_data pool;   /* the training split: starting points (--pool) */
    FILE *resume;      /* --resume, open for appending chunks */
    rep_chunk *chunks; /* the chunks this process finished, in order */
    int n_chunks, cap_chunks;
} report_ctx;

/* --- Interrupts: SIGINT (Ctrl-C) and SIGTERM stop the running attack at its next model
 * call; the chunks finished so far are kept (in --resume, else in a new resume file) and
 * the command says how to continue. A second signal ends the process at once. */
static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
    g_signal = sig;
    signal(sig, SIG_DFL);
}

/* Installs the handler, except for a SIGINT ignored on entry (a background job of a
 * shell without job control keeps ignoring it, as the shell intends). */
static void catch_signals(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
        sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void release_signals(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler == on_signal)
        sigaction(SIGINT, &sa, NULL);
    if (sigaction(SIGTERM, NULL, &old) == 0 && old.sa_handler == on_signal)
        sigaction(SIGTERM, &sa, NULL);
}

/* The exit status of an interrupted run: 128 + the signal, as a shell reports it. */
#define CLI_INTERRUPTED(sig) (128 + (sig))

/* --- Running the attacks. */
typedef struct run_cb {
    cli_progress p;
    int64_t base, chunk;
} run_cb;

static int on_progress(void *user, int64_t done, int64_t total)
{
    run_cb *c = user;
    int64_t part = total > 0 ? done * c->chunk / total : 0;
    cli_progress_update(&c->p, c->base + (part < c->chunk ? part : c->chunk));
    return g_signal != 0; /* non-zero cancels the run */
}

/* A handle for attack t with the --set parameters and the --pool starting points. */
static int new_attack(const report_ctx *c, int t, foolc_attack **out)
{
    const char *name = c->r->at[t].name;
    foolc_attack *att;
    foolc_status st = foolc_attack_new(name, &att);
    if (st < 0) return cli_fail_opt("report", "--attacks", name, st);
    int rc = cli_apply_settings(c->o.set, name, att);
    if (!rc && c->pool.shape.n > 0 &&
        (st = foolc_attack_set_starts(att, c->pool.x, c->pool.y, c->pool.shape.n)) < 0)
        rc = cli_fail_opt("report", "--pool", name, st);
    if (rc) { foolc_attack_free(att); return rc; }
    *out = att;
    return 0;
}

/* A finished chunk: listed (for a resume file written after an interrupt) and appended to
 * --resume. */
static int save_chunk(report_ctx *c, const rep_chunk *ch)
{
    if (c->n_chunks == c->cap_chunks) {
        int cap = c->cap_chunks ? 2 * c->cap_chunks : 64;
        rep_chunk *grown = realloc(c->chunks, (size_t)cap * sizeof *grown);
        if (!grown) return cli_fail("report", FOOLC_E_NOMEM);
        c->chunks = grown;
        c->cap_chunks = cap;
    }
    c->chunks[c->n_chunks++] = *ch;
    return c->resume ? rep_resume_append(c->resume, c->r, ch) : 0;
}

/* Runs attack t on samples b..b+m-1 under the chunk's budget, then records the model's
 * label and every norm of each returned point. An attack error is reported and kept in the
 * attack's status; the return value is an error of the command itself. */
static int run_chunk(report_ctx *c, int t, foolc_attack *att, const run_cb *cb, int32_t b,
                     int32_t m)
{
    rep *r = c->r;
    rep_att *a = &r->at[t];
    foolc_shape s = {m, r->s.c, r->s.h, r->s.w};
    float *dist = malloc((size_t)m * sizeof *dist);
    if (!dist) return cli_fail("report", FOOLC_E_NOMEM);
    foolc_result res = {a->xadv + (size_t)b * r->d, dist, a->ok + b, a->q + b};
    foolc_counts c0 = foolc_model_counts(c->model);
    uint64_t budget = (uint64_t)c->o.budget;
    foolc_model_set_budget(c->model, budget ? budget * (uint64_t)m + c0.forward + c0.decided : 0);
    double t0 = cli_now();
    foolc_status st = foolc_attack_run(att, c->model, s, r->x + (size_t)b * r->d, r->y + b,
                                       NULL, (uint64_t)r->seed, &res);
    double sec = cli_now() - t0;
    free(dist);
    foolc_model_set_budget(c->model, 0);
    if (g_signal) return CLI_INTERRUPTED(g_signal); /* the chunk is dropped, not kept */
    if (st < 0) {
        if (a->st >= 0) a->st = st;
        fprintf(stderr, "%sfoolc report: attack %s, samples %d-%d: %s: %s (results found "
                "so far are kept)\n", cb->p.tty && !c->o.quiet ? "\n" : "", a->name, b,
                b + m - 1, foolc_status_str(st), foolc_errmsg());
    }
    if (foolc_model_decision(c->model, a->xadv + (size_t)b * r->d, m, a->adv + b) < 0)
        for (int32_t i = b; i < b + m; i++) a->adv[i] = -1;
    for (int32_t i = b; i < b + m; i++) {
        for (int p = 0; p < NC; p++)
            a->dist[(size_t)i * NC + p] =
                a->ok[i] ? (float)foolc_distance((foolc_norm)p, r->x + (size_t)i * r->d,
                                                 a->xadv + (size_t)i * r->d, r->d)
                         : INFINITY;
        a->done[i] = 1;
    }
    a->seconds += sec;
    rep_chunk ch = {t, b, m, st < 0 ? (int)st : 0, sec};
    return save_chunk(c, &ch);
}

/* Runs attack t on every chunk of --batch samples not done before (--resume). */
static int run_attack(report_ctx *c, int t)
{
    rep *r = c->r;
    rep_att *a = &r->at[t];
    int32_t batch = (int32_t)c->o.batch;
    int64_t todo = 0;
    for (int32_t i = 0; i < r->n; i++) todo += !a->done[i];
    run_cb cb;
    cli_progress_start(&cb.p, a->name, todo, c->o.quiet);
    cb.base = 0;
    if (todo == 0) {
        if (!c->o.quiet) fprintf(stderr, "%s: done before (--resume)\n", a->name);
        return 0;
    }
    foolc_attack *att = NULL;
    int rc = new_attack(c, t, &att);
    if (rc) return rc;
    foolc_attack_set_progress(att, on_progress, &cb);
    for (int32_t b = 0; b < r->n; b += batch) {
        int32_t m = r->n - b < batch ? r->n - b : batch, k = 0;
        for (int32_t i = b; i < b + m; i++) k += a->done[i];
        if (k == m) continue;
        if (g_signal) { rc = CLI_INTERRUPTED(g_signal); break; }
        cb.chunk = m;
        if ((rc = run_chunk(c, t, att, &cb, b, m))) break;
        cb.base += m;
        cli_progress_update(&cb.p, cb.base);
    }
    foolc_attack_free(att);
    if (rc) return rc;
    int32_t succ = 0;
    for (int32_t i = 0; i < r->n; i++) succ += a->ok[i];
    char summary[160];
    snprintf(summary, sizeof summary, "%d/%d adversarial, median %s %.4g", succ, r->n,
             foolc_norm_name(a->norm), rep_quantile(a->dist + a->norm, r->n, NC, 0.5));
    cli_progress_end(&cb.p, summary);
    return 0;
}

/* --- The steps of foolc report, in order. */

static int parse_options(cli_args *a, report_opts *o)
{
    *o = (report_opts){.n = 100, .batch = 25, .pool = -1, .png_n = 8, .norm = FOOLC_L2};
    o->model = cli_opt(a, "--model", "-m");
    o->data = cli_opt(a, "--data", NULL);
    o->attacks = cli_opt(a, "--attacks", NULL);
    o->norm_name = cli_opt(a, "--norm", NULL);
    o->set = cli_opt(a, "--set", NULL);
    o->json = cli_opt(a, "--json", NULL);
    o->csv = cli_opt(a, "--csv", NULL);
    o->svg = cli_opt(a, "--svg", NULL);
    o->png = cli_opt(a, "--png", NULL);
    o->png_norm_name = cli_opt(a, "--png-norm", NULL);
    o->resume = cli_opt(a, "--resume", NULL);
    o->quiet = cli_flag(a, "--quiet");
    o->all = cli_flag(a, "--all");
    o->no_time = cli_flag(a, "--no-time");
    int rc;
    if ((rc = cli_opt_long(a, "-n", NULL, 1, 100000000L, &o->n)) ||
        (rc = cli_opt_long(a, "--seed", NULL, 0, 2147483647L, &o->seed)) ||
        (rc = cli_opt_long(a, "--batch", NULL, 1, 100000L, &o->batch)) ||
        (rc = cli_opt_long(a, "--budget", NULL, 0, 2147483647L, &o->budget)) ||
        (rc = cli_opt_long(a, "--pool", NULL, 0, 100000000L, &o->pool)) ||
        (rc = cli_opt_long(a, "--png-n", NULL, 1, 1000, &o->png_n)) ||
        (rc = cli_args_leftover(a, "report")))
        return rc;
    if (o->norm_name &&
        (foolc_norm_parse(o->norm_name, &o->norm) < 0 || o->norm == FOOLC_MSE)) {
        fprintf(stderr, "foolc report: --norm: expected l0, l1, l2 or linf, got '%s'\n",
                o->norm_name);
        return CLI_USAGE;
    }
    if (o->png_norm_name &&
        (foolc_norm_parse(o->png_norm_name, &o->png_norm) < 0 || o->png_norm == FOOLC_MSE)) {
        fprintf(stderr, "foolc report: --png-norm: expected l0, l1, l2 or linf, got '%s'\n",
                o->png_norm_name);
        return CLI_USAGE;
    }
    if ((o->png_norm_name || cli_opt(a, "--png-n", NULL)) && !o->png) {
        fprintf(stderr, "foolc report: --png-norm and --png-n need --png FILE\n");
        return CLI_USAGE;
    }
    return 0;
}

/* Every file the command will write, checked before any work: writable (nothing is left
 * behind by the check), no two outputs on one file, none on the model, the data or the
 * resume file, at most one on standard output ("-"; not the PNG or the resume file). */
static int check_paths(const report_opts *o)
{
    const char *const flags[] = {"--json", "--csv", "--svg", "--png", "--resume"};
    const char *const paths[] = {o->json, o->csv, o->svg, o->png, o->resume};
    for (int k = 0; k < 5; k++) {
        if (!paths[k]) continue;
        if (!strcmp(paths[k], "-")) {
            if (k < 3) continue;
            fprintf(stderr, "foolc report: %s -: standard output takes --json, --csv or "
                    "--svg only; give a file\n", flags[k]);
            return CLI_USAGE;
        }
        int rc = cli_check_output("report", flags[k], paths[k], k == 4);
        if (rc) return rc;
    }
    const char *data = o->data && strcmp(o->data, "fashion-mnist") ? o->data : NULL;
    cli_path p[] = {{"--json", o->json, 1}, {"--csv", o->csv, 1}, {"--svg", o->svg, 1},
                    {"--png", o->png, 1}, {"--resume", o->resume, 1},
                    {"--model", o->model, 0}, {"--data", data, 0}};
    return cli_check_paths("report", p, (int)(sizeof p / sizeof p[0]));
}

/* The attacks (--attacks, --norm; --set checked), the model and the test split. */
static int load_inputs(report_ctx *c)
{
    const report_opts *o = &c->o;
    rep *r = c->r;
    int rc;
    const char *names[REP_MAX_ATTACKS];
    if ((rc = pick_attacks(r, o->attacks, o->norm_name != NULL, o->norm, &c->names)))
        return rc;
    for (int t = 0; t < r->n_att; t++) names[t] = r->at[t].name;
    if ((o->set && ((rc = cli_check_settings(o->set)) ||
                    (rc = cli_check_settings_for("report", o->set, names, r->n_att)))) ||
        (rc = cli_load_model("report", o->model, &c->net, &c->model)) ||
        (rc = cli_load_data("report", o->data, "test", c->net, &c->data)))
        return rc;
    r->model = o->model;
    r->data = o->data ? o->data : "fashion-mnist";
    r->set = o->set;
    r->all = o->all;
    r->no_time = o->no_time;
    r->seed = o->seed;
    r->s = foolc_net_input(c->net);
    r->s.n = 1;
    r->d = (size_t)r->s.c * r->s.h * r->s.w;
    r->n_classes = foolc_net_classes(c->net);
    foolc_net_bounds(c->net, &r->lo, &r->hi);
    for (int t = 0; t < r->n_att; t++) r->norms[o->norm_name ? o->norm : r->at[t].norm] = 1;
    return 0;
}

/* The clean accuracy over the whole test split, and the samples to attack: the first -n
 * the model classifies correctly (--all: the first -n), copied into r->x and r->y. */
static int pick_samples(report_ctx *c)
{
    rep *r = c->r;
    const foolc_data *data = &c->data;
    r->total = data->shape.n;
    int32_t *pred = malloc((size_t)r->total * sizeof *pred);
    r->index = malloc((size_t)r->total * sizeof *r->index);
    if (!pred || !r->index) { free(pred); return cli_fail("report", FOOLC_E_NOMEM); }
    foolc_status st = foolc_model_decision(c->model, data->x, r->total, pred);
    if (st < 0) { free(pred); return cli_fail_opt("report", "--model", c->o.model, st); }
    int32_t n = 0;
    for (int32_t i = 0; i < r->total; i++) {
        int ok = pred[i] == data->y[i];
        r->correct += ok;
        if ((ok || r->all) && n < c->o.n) r->index[n++] = i;
    }
    free(pred);
    r->clean_acc = (double)r->correct / r->total;
    r->n = n;
    if (n == 0) {
        fprintf(stderr, "foolc report: --data '%s': the model classifies no image correctly\n",
                r->data);
        return CLI_INPUT;
    }
    r->x = malloc(r->d * n * sizeof *r->x);
    r->y = malloc((size_t)n * sizeof *r->y);
    if (!r->x || !r->y) return cli_fail("report", FOOLC_E_NOMEM);
    for (int32_t i = 0; i < n; i++) {
        memcpy(r->x + (size_t)i * r->d, data->x + (size_t)r->index[i] * r->d,
               r->d * sizeof *r->x);
        r->y[i] = data->y[r->index[i]];
    }
    return 0;
}

/* Every attack's per-sample results, initialised to "not done" with x_adv = x. */
static int alloc_results(rep *r)
{
    size_t n = (size_t)r->n;
    for (int t = 0; t < r->n_att; t++) {
        rep_att *at = &r->at[t];
        at->dist = malloc(n * NC * sizeof *at->dist);
        at->ok = calloc(n, 1);
        at->done = calloc(n, 1);
        at->adv = malloc(n * sizeof *at->adv);
        at->q = calloc(n, sizeof *at->q);
        at->xadv = malloc(r->d * n * sizeof *at->xadv);
        if (!at->dist || !at->ok || !at->done || !at->adv || !at->q || !at->xadv)
            return cli_fail("report", FOOLC_E_NOMEM);
        memcpy(at->xadv, r->x, r->d * n * sizeof *r->x);
    }
    return 0;
}

/* The options that decide the results, as the resume file's header line. */
static void put_field(char *h, size_t cap, const char *key, const char *v)
{
    size_t l = strlen(h);
    snprintf(h + l, cap - l, "%s%s=", l ? " " : "", key);
    for (l = strlen(h); v && *v && l + 4 < cap; v++) {
        unsigned char c = (unsigned char)*v;
        if (c <= ' ' || c == '%' || c >= 127) l += (size_t)snprintf(h + l, cap - l, "%%%02X", c);
        else h[l++] = (char)c, h[l] = '\0';
    }
}

static void put_number(char *h, size_t cap, const char *key, long v)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", v);
    put_field(h, cap, key, num);
}

/* A path in its canonical form (./d.npz and d.npz are one file), or as given when it
 * names no file (fashion-mnist). */
static void put_path(char *h, size_t cap, const char *key, const char *path)
{
    char *canon = path && strcmp(path, "fashion-mnist") ? cli_canon(path) : NULL;
    put_field(h, cap, key, canon ? canon : path);
    free(canon);
}

static void put_hash(char *h, size_t cap, const char *key, uint64_t v)
{
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)v);
    put_field(h, cap, key, hex);
}

/* The header naming a run: what decides its results. Beside the options, the model file's
 * hash, a hash of the attacked images, their labels and test-split indices, and one of the
 * starting points (--pool), so that a resume file is never read against other inputs. */
static void resume_header(const report_ctx *c, char *h, size_t cap)
{
    const report_opts *o = &c->o;
    const rep *r = c->r;
    char names[4096] = "";
    h[0] = '\0';
    put_path(h, cap, "model", o->model);
    put_hash(h, cap, "model_hash", cli_file_hash(o->model));
    put_path(h, cap, "data", r->data);
    uint64_t dh = cli_hash(CLI_HASH_INIT, r->x, (size_t)r->n * r->d * sizeof *r->x);
    dh = cli_hash(dh, r->y, (size_t)r->n * sizeof *r->y);
    put_hash(h, cap, "data_hash", cli_hash(dh, r->index, (size_t)r->n * sizeof *r->index));
    const foolc_data *pl = &c->pool;
    uint64_t ph = cli_hash(CLI_HASH_INIT, pl->x, (size_t)pl->shape.n * r->d * sizeof *pl->x);
    put_hash(h, cap, "pool_hash", cli_hash(ph, pl->y, (size_t)pl->shape.n * sizeof *pl->y));
    for (int t = 0; t < r->n_att; t++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", t ? "," : "",
                 r->at[t].name);
    put_field(h, cap, "attacks", names);
    put_field(h, cap, "norm", o->norm_name ? foolc_norm_name(o->norm) : "");
    put_field(h, cap, "set", o->set ? o->set : "");
    put_number(h, cap, "n", r->n);
    put_field(h, cap, "all", r->all ? "1" : "0");
    put_number(h, cap, "seed", o->seed);
    put_number(h, cap, "batch", o->batch);
    put_number(h, cap, "budget", o->budget);
    put_number(h, cap, "pool", o->pool);
    strcat(h, "\n");
}

#define HEADER_CAP 16384

/* The training split, whose first --pool images are the attacks' starting points (bb-*,
 * dataset, boundary...); none with --pool 0. */
static int load_pool(report_ctx *c)
{
    if (c->o.pool == 0) return 0;
    int rc = cli_load_data("report", c->o.data, "train", c->net, &c->pool);
    if (!rc && c->o.pool > 0 && c->o.pool < c->pool.shape.n) c->pool.shape.n = (int32_t)c->o.pool;
    return rc;
}

/* --resume: reads and checks the chunks done before and opens the file for the next ones. */
static int open_resume(report_ctx *c)
{
    if (!c->o.resume) return 0;
    char *header = malloc(HEADER_CAP);
    if (!header) return cli_fail("report", FOOLC_E_NOMEM);
    resume_header(c, header, HEADER_CAP);
    int rc = rep_resume_open(c->r, c->model, c->o.resume, header, &c->resume);
    free(header);
    return rc;
}

/* The clean-gradient check, then every attack, cheap first. */
static int run_attacks(report_ctx *c)
{
    rep *r = c->r;
    if (!c->o.quiet)
        fprintf(stderr, "report: %s on %d %s images of %s (clean accuracy %.4f)\n", r->model,
                r->n, r->all ? "first" : "correctly classified", r->data, r->clean_acc);
    catch_signals();
    grad_check(r, c->model);
    int rc = 0;
    for (int t = 0; t < r->n_att && !rc; t++) rc = run_attack(c, t);
    if (!rc && g_signal) rc = CLI_INTERRUPTED(g_signal);
    release_signals();
    return rc;
}

/* The resume file kept after an interrupt without --resume: in $XDG_CACHE_HOME/foolc (else
 * ~/.cache/foolc), named by the run's header, never over an existing file. The path in
 * path, or -1 with a message. */
static int keep_chunks(const report_ctx *c, char *path, size_t cap)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[4096];
    if (xdg && xdg[0] == '/') snprintf(dir, sizeof dir, "%s", xdg);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache", home);
    else snprintf(dir, sizeof dir, ".");
    mkdir(dir, 0777);
    size_t l = strlen(dir);
    snprintf(dir + l, sizeof dir - l, "/foolc");
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "foolc report: cannot create '%s': %s\n", dir, strerror(errno));
        return -1;
    }
    char *header = malloc(HEADER_CAP);
    if (!header) return cli_fail("report", FOOLC_E_NOMEM), -1;
    resume_header(c, header, HEADER_CAP);
    uint64_t h = cli_hash(CLI_HASH_INIT, header, strlen(header));
    int rc = -1;
    for (int k = 1; k < 100 && rc; k++) {
        char suffix[16] = "";
        if (k > 1) snprintf(suffix, sizeof suffix, "-%d", k);
        snprintf(path, cap, "%s/report-%016llx%s.resume", dir, (unsigned long long)h, suffix);
        rc = rep_resume_write(path, header, c->r, c->chunks, c->n_chunks);
        if (rc && errno != EEXIST) break;
    }
    if (rc) fprintf(stderr, "foolc report: cannot write '%s': %s\n", path, strerror(errno));
    free(header);
    return rc;
}

/* An argument as the shell reads it back. */
static void put_arg(FILE *f, const char *s)
{
    if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                        "_-+=.,/:@%") == strlen(s)) {
        fprintf(f, " %s", s);
        return;
    }
    fputs(" '", f);
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

/* After SIGINT or SIGTERM (exit status rc = 128 + the signal): what was finished, where it
 * is kept, and the command that continues. */
static int interrupted(const report_ctx *c, int rc)
{
    const rep *r = c->r;
    int32_t batch = (int32_t)c->o.batch;
    int done = 0, total = 0;
    for (int t = 0; t < r->n_att && r->at[t].done; t++)
        for (int32_t b = 0; b < r->n; b += batch, total++) {
            int32_t m = r->n - b < batch ? r->n - b : batch, k = 0;
            for (int32_t i = b; i < b + m; i++) k += r->at[t].done[i];
            done += k == m;
        }
    fprintf(stderr, "\nfoolc report: interrupted (%s) with %d of %d chunks done\n",
            rc == CLI_INTERRUPTED(SIGINT) ? "SIGINT" : "SIGTERM", done, total);
    if (c->resume) {
        fprintf(stderr, "foolc report: the chunks done are in --resume '%s'; run the same "
                "command again to continue\n", c->o.resume);
        return rc;
    }
    char path[4200];
    if (c->n_chunks == 0 || keep_chunks(c, path, sizeof path)) {
        if (c->n_chunks == 0) fprintf(stderr, "foolc report: nothing to keep\n");
        return rc;
    }
    fprintf(stderr, "foolc report: the chunks done are kept in '%s'; to continue:\n  foolc",
            path);
    for (int i = 0; i < c->argc; i++) put_arg(stderr, c->argv[i]);
    put_arg(stderr, "--resume");
    put_arg(stderr, path);
    fputc('\n', stderr);
    return rc;
}

/* Best of all attacks per sample, in every norm. */
static int best_of_all(rep *r)
{
    size_t len = (size_t)r->n * NC;
    r->best = malloc(len * sizeof *r->best);
    r->best_by = malloc(len * sizeof *r->best_by);
    if (!r->best || !r->best_by) return cli_fail("report", FOOLC_E_NOMEM);
    for (size_t i = 0; i < len; i++) {
        r->best[i] = INFINITY;
        r->best_by[i] = -1;
        for (int t = 0; t < r->n_att; t++)
            if (r->at[t].dist[i] < r->best[i]) {
                r->best[i] = r->at[t].dist[i];
                r->best_by[i] = t;
            }
    }
    return 0;
}

/* The text table on stdout (on stderr when --json, --csv or --svg is "-") and the files
 * asked for. Exit status: the last failed write's, else CLI_FAIL when an attack stopped on
 * an error other than the budget, else CLI_OK. */
static int write_outputs(const report_ctx *c)
{
    const report_opts *o = &c->o;
    const rep *r = c->r;
    int rc = CLI_OK, rc2, to_stdout = 0;
    const char *outs[] = {o->json, o->csv, o->svg};
    for (int k = 0; k < 3; k++) to_stdout |= outs[k] && !strcmp(outs[k], "-");
    rep_text(r, to_stdout ? stderr : stdout);
    fflush(to_stdout ? stderr : stdout);
    int png_norm = o->png_norm_name ? (int)o->png_norm : 0; /* else the first reported */
    while (!o->png_norm_name && png_norm < NC - 1 && !r->norms[png_norm]) png_norm++;
    if (o->json && (rc2 = rep_json(r, o->json))) rc = rc2;
    if (o->csv && (rc2 = rep_csv(r, o->csv))) rc = rc2;
    if (o->svg && (rc2 = rep_svg(r, o->svg))) rc = rc2;
    if (o->png && (rc2 = rep_png(r, o->png, (int)o->png_n, (foolc_norm)png_norm))) rc = rc2;
    for (int t = 0; t < r->n_att; t++)
        if (r->at[t].st < 0 && r->at[t].st != FOOLC_E_BUDGET && rc == CLI_OK) rc = CLI_FAIL;
    return rc;
}

static void report_free(report_ctx *c)
{
    if (c->resume) fclose(c->resume);
    rep *r = c->r;
    if (r) {
        for (int t = 0; t < REP_MAX_ATTACKS; t++) {
            free(r->at[t].dist);
            free(r->at[t].ok);
            free(r->at[t].done);
            free(r->at[t].adv);
            free(r->at[t].q);
            free(r->at[t].xadv);
        }
        free(r->best);
        free(r->best_by);
        free(r->x);
        free(r->y);
        free(r->index);
        free(r);
    }
    free(c->names);
    free(c->chunks);
    foolc_model_free(c->model);
    foolc_net_free(c->net);
    foolc_data_free(&c->data);
    foolc_data_free(&c->pool);
}

int cmd_report(int argc, char **argv)
{
    cli_args a;
    if (cli_args_init(&a, argc, argv)) return CLI_FAIL;
    report_ctx c = {.argc = argc, .argv = argv};
    int rc = CLI_OK;
    if (!(c.r = calloc(1, sizeof *c.r)))
        rc = CLI_FAIL;
    else if (cli_flag(&a, "--help") || cli_flag(&a, "-h"))
        help();
    else if (!(rc = parse_options(&a, &c.o)) && !(rc = check_paths(&c.o)) &&
             !(rc = load_inputs(&c)) && !(rc = pick_samples(&c)) &&
             !(rc = alloc_results(c.r)) && !(rc = load_pool(&c)) && !(rc = open_resume(&c)) &&
             !(rc = run_attacks(&c)) && !(rc = best_of_all(c.r)))
        rc = write_outputs(&c);
    if (rc >= 128) rc = interrupted(&c, rc);
    report_free(&c);
    cli_args_free(&a);
    return rc;
}
