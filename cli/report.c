/* foolc report: a front-end on the evaluation API (include/foolc/eval.h). For the first N
 * test images a model classifies correctly it runs each attack (cheap ones first) in fixed
 * chunks of samples, appends each finished chunk to an optional resume file, checks the
 * model's gradients, and writes the report (report_out.c). foolc-mpi (mpi/foolc_mpi.c)
 * runs the same command with the chunks spread over MPI ranks (report_main's runner). */
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
           "  --model M       an NPZ model file or an ONNX model (docs/onnx.md)\n"
           "  --bounds LO,HI  the model's input range (default: the file's, else [0, 1])\n"
           "  --data D        fashion-mnist (default), an IDX directory or an .npz (x, y)\n"
           "  --attacks L     comma-separated attacks and sets: all, auto (default: per norm the\n"
           "                  ensemble measured to reach 99.5 %% of all's best at a fraction of\n"
           "                  its time; under --norm P auto-P), quick (fgsm, deepfool-linf,\n"
           "                  pgd-linf, deepfool-l2, pgd-l2: the earlier default); cheap first\n"
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
           "  --certify M     certified lower bounds beside the found distances (Linf, L2, L1;\n"
           "                  built-in nets): ibp, crown or exact (docs/certify.md)\n"
           "  --no-warm-start every attack from its own start (default: bb-* start each\n"
           "                  sample from the best point so far in their norm)\n"
           "  --no-time       leave wall seconds out (outputs comparable byte for byte)\n"
           "  --quiet         no progress on stderr\n"
           "--json, --csv or --svg '-' writes to standard output (the table then goes to\n"
           "stderr). Output files are checked before any work. Ctrl-C (SIGINT) or SIGTERM\n"
           "stops at once and keeps the chunks done (without --resume, in a new resume file\n"
           "under ~/.cache/foolc) and prints the command that continues.\n"
           "Distances are minimal perturbations: quantiles over all N samples with failures\n"
           "counted as infinite; the mean over the successful ones. Exit status: 0 ok, 1 an\n"
           "attack failed (results kept) or a certified radius is above a found\n"
           "adversarial (a bug: the sample, norm and both numbers are named), 2 usage, 3 bad\n"
           "input file, 130 interrupted.\n");
}

/* The attacks of a run, as --attacks and --norm name them (checked). */
typedef struct att_list {
    int n;
    const char *name[REP_MAX_ATTACKS];
} att_list;

/* The sets foolc_eval_attack_set names (to size the expanded list). */
static const char *const k_sets_cli[] = {"auto", "auto-l0", "auto-l1", "auto-l2",
                                         "auto-linf", "quick"};

/* Whether tok is a set's name: "all" or one of foolc_eval_attack_set's. */
static int is_set(const char *tok)
{
    return !strcmp(tok, "all") || foolc_eval_attack_set(tok) != NULL;
}

/* Parses --attacks (and --norm) into l. A token may name a set (all, auto, quick, auto-l2,
 * ...; the default is auto, under --norm P auto-P): its attacks, without repeats, and under
 * --norm only those of that norm (auto-P's all: it was measured in norm P). */
static int pick_attacks(att_list *l, const char *list, int have_norm, foolc_norm norm,
                        char **buf)
{
    char autop[16];
    if (!list) {
        snprintf(autop, sizeof autop, "auto%s%s", have_norm ? "-" : "",
                 have_norm ? foolc_norm_name(norm) : "");
        list = autop;
    }
    /* Room for every token to be "all" or a set (each name with its mark and comma). */
    size_t every = 0, toks = 1;
    for (int32_t i = 0; i < foolc_attack_count(); i++) every += strlen(foolc_attack_name(i)) + 2;
    for (size_t i = 0; i < sizeof k_sets_cli / sizeof *k_sets_cli; i++) {
        const char *m = foolc_eval_attack_set(k_sets_cli[i]);
        if (m && 2 * strlen(m) + 2 > every) every = 2 * strlen(m) + 2;
    }
    for (const char *q = list; *q; q++) toks += *q == ',';
    size_t cap = 64 + strlen(list) + toks * every;
    char *s = malloc(cap), *in = strdup(list);
    if (!s || !in) {
        free(s);
        free(in);
        return cli_fail("report", FOOLC_E_NOMEM);
    }
    *buf = s;
    /* The list with every set expanded; sets' attacks marked by a leading '+'. */
    s[0] = '\0';
    for (char *save = NULL, *tok = strtok_r(in, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "all")) {
            for (int32_t i = 0; i < foolc_attack_count(); i++) {
                strcat(s, *s ? ",+" : "+");
                strcat(s, foolc_attack_name(i));
            }
        } else if (is_set(tok)) {
            const char *m = foolc_eval_attack_set(tok);
            int keep = have_norm && !strncmp(tok, "auto-", 5) &&
                       !strcmp(tok + 5, foolc_norm_name(norm));
            for (const char *q = m; *q;) {
                size_t len = strcspn(q, ",");
                strcat(s, *s ? (keep ? ",*" : ",+") : (keep ? "*" : "+"));
                strncat(s, q, len);
                q += len + (q[len] == ',');
            }
        } else {
            strcat(s, *s ? "," : "");
            strcat(s, tok);
        }
    }
    free(in);
    unsigned char listed_by_set[REP_MAX_ATTACKS];
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int from_set = *tok == '+' || *tok == '*', any_norm = *tok == '*';
        if (from_set) tok++;
        foolc_norm p;
        unsigned needs;
        foolc_status st = foolc_attack_describe(tok, &p, &needs, NULL, NULL);
        if (st < 0) return cli_fail_opt("report", "--attacks", tok, st);
        if (have_norm && p != norm && !any_norm) {
            if (from_set) continue;
            fprintf(stderr, "foolc report: --attacks '%s': its norm is %s, not --norm %s\n",
                    tok, foolc_norm_name(p), foolc_norm_name(norm));
            return CLI_USAGE;
        }
        int dup = 0, dup_set = 0;
        for (int t = 0; t < l->n; t++)
            if (!strcmp(l->name[t], tok)) {
                dup = 1;
                dup_set = listed_by_set[t];
            }
        if (dup && (from_set || dup_set)) continue; /* a set may repeat any attack */
        if (dup) {
            fprintf(stderr, "foolc report: --attacks: '%s' is listed twice\n", tok);
            return CLI_USAGE;
        }
        if (l->n == REP_MAX_ATTACKS) {
            fprintf(stderr, "foolc report: --attacks: at most %d attacks\n", REP_MAX_ATTACKS);
            return CLI_USAGE;
        }
        listed_by_set[l->n] = (unsigned char)from_set;
        l->name[l->n++] = tok;
    }
    if (l->n == 0) {
        fprintf(stderr, "foolc report: --attacks: no attack %s\n",
                have_norm ? "of that --norm" : "given");
        return CLI_USAGE;
    }
    return 0;
}

/* --- A report run: its options and everything it holds. */
typedef struct report_opts {
    const char *model, *data, *attacks, *norm_name, *set; /* NULL when absent */
    const char *json, *csv, *svg, *png, *resume;          /* NULL when absent */
    const char *png_norm_name;                            /* NULL when absent */
    int quiet, all, no_time, no_warm;
    long n, seed, batch, budget, pool, png_n;
    foolc_norm norm;     /* --norm, when norm_name is set */
    foolc_norm png_norm; /* --png-norm, when png_norm_name is set */
    const char *certify;      /* --certify, NULL when absent */
    foolc_certify_opts cert;  /* its options (the evaluation's certify step borrows them) */
} report_opts;

struct report_ctx {
    report_opts o;
    int argc;          /* the command line, for the message after an interrupt */
    char **argv;
    const report_runner *runner; /* NULL: the chunks run here */
    rep *r;
    att_list att;      /* --attacks */
    char *names;       /* the attack list that att.name points into */
    char *set_params;  /* the named sets' parameters applied (foolc_eval_attack_set_params) */
    foolc_net *net;
    foolc_model *model;
    foolc_eval *ev;
    foolc_data data;   /* the test split */
    foolc_data pool;   /* the training split: starting points (--pool) */
    int resumed;       /* --resume is open */
    int cert_failed;   /* the certify step stopped on an error (exit status 1) */
};

foolc_eval *report_eval(report_ctx *c) { return c->ev; }
int report_quiet(const report_ctx *c) { return c->o.quiet; }

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

int report_signalled(void) { return g_signal != 0; }

int report_fail(const char *what, foolc_status st) { return cli_fail(what, st); }

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

/* The line that closes an attack's progress. */
static void attack_summary(const rep *r, int t, char *out, size_t cap)
{
    const rep_att *a = &r->at[t];
    int32_t succ = 0;
    for (int32_t i = 0; i < r->n; i++) succ += a->ok[i];
    snprintf(out, cap, "%d/%d adversarial, median %s %.4g", succ, r->n,
             foolc_norm_name(a->norm), rep_quantile(r, t, a->norm, 0.5));
}

/* Runs task t of the evaluation (an attack, or a step after the attacks) on every chunk not
 * done before (--resume), with its progress line under name. A chunk's error is printed
 * (what, its samples, the status, then note) and counted in *errors, and the other chunks
 * go on; the return value is an error of the command itself (a signal, a chunk left
 * undone). */
static int run_task(report_ctx *c, int32_t t, const char *name, int64_t todo, const char *what,
                    const char *note, run_cb *cb, int *errors)
{
    *errors = 0;
    cli_progress_start(&cb->p, name, todo, c->o.quiet);
    cb->base = 0;
    if (todo == 0) {
        if (!c->o.quiet) fprintf(stderr, "%s: done before (--resume)\n", name);
        return 0;
    }
    foolc_eval_set_progress(c->ev, on_progress, cb);
    int rc = 0;
    for (int32_t k = 0, nc = foolc_eval_chunk_count(c->ev); k < nc; k++) {
        int32_t task, b, m;
        int done;
        if (foolc_eval_chunk_info(c->ev, k, &task, &b, &m, &done) < 0 || task != t || done)
            continue;
        if (g_signal) { rc = CLI_INTERRUPTED(g_signal); break; }
        cb->chunk = m;
        foolc_status st = foolc_eval_run_chunk(c->ev, k);
        if (g_signal) { rc = CLI_INTERRUPTED(g_signal); break; } /* the chunk is dropped */
        if (foolc_eval_chunk_info(c->ev, k, NULL, NULL, NULL, &done) < 0 || !done) {
            rc = cli_fail("report", st);
            break;
        }
        if (st < 0) {
            fprintf(stderr, "%sfoolc report: %s, samples %d-%d: %s: %s%s\n",
                    cb->p.tty && !c->o.quiet ? "\n" : "", what, b, b + m - 1,
                    foolc_status_str(st), foolc_errmsg(), note);
            ++*errors;
        }
        cb->base += m;
        cli_progress_update(&cb->p, cb->base);
    }
    foolc_eval_set_progress(c->ev, NULL, NULL);
    return rc;
}

/* Runs attack t on every chunk of --batch samples not done before (--resume). An attack
 * error is reported and kept in the attack's status; the return value is an error of the
 * command itself. */
static int run_attack(report_ctx *c, int t)
{
    rep *r = c->r;
    rep_att *a = &r->at[t];
    int64_t todo = 0;
    for (int32_t i = 0; i < r->n; i++) todo += !a->done[i];
    char what[96];
    snprintf(what, sizeof what, "attack %s", a->name);
    run_cb cb;
    int errors, rc = run_task(c, t, a->name, todo, what, " (results found so far are kept)",
                              &cb, &errors);
    if (rc || todo == 0) return rc;
    char summary[160];
    attack_summary(r, t, summary, sizeof summary);
    cli_progress_end(&cb.p, summary);
    return 0;
}

/* Runs step s of the evaluation (--certify) on every chunk not done before, after the
 * attacks (whose best distances its searches start from). A chunk's error marks the
 * certification failed (c->cert_failed) without ending the command. */
static int run_step(report_ctx *c, int s)
{
    const int32_t t = foolc_eval_attacks(c->ev) + s;
    const uint8_t *sd = foolc_eval_step_done(c->ev, s);
    char name[64];
    snprintf(name, sizeof name, "%s-%s", foolc_eval_step_name(c->ev, s),
             c->r->cert_method ? c->r->cert_method : "");
    int64_t todo = 0;
    for (int32_t i = 0; i < c->r->n; i++) todo += !sd[i];
    run_cb cb;
    int errors, rc = run_task(c, t, name, todo, name, "", &cb, &errors);
    if (todo == 0) return rc;
    if (errors) c->cert_failed = 1;
    cli_progress_end(&cb.p, rc ? "" : "done");
    return rc;
}

/* --- The steps of foolc report, in order. */

static int parse_options(cli_args *a, report_opts *o)
{
    *o = (report_opts){.n = 100, .batch = 25, .pool = -1, .png_n = 8, .norm = FOOLC_L2};
    o->model = cli_opt(a, "--model", "-m");
    cli_bounds_opt(cli_opt(a, "--bounds", NULL));
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
    o->no_warm = cli_flag(a, "--no-warm-start");
    o->certify = cli_opt(a, "--certify", NULL);
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
    if (o->certify) {
        foolc_certify_defaults(&o->cert);
        if (foolc_certify_method_parse(o->certify, &o->cert.method) < 0) {
            fprintf(stderr, "foolc report: --certify: expected ibp, crown or exact, got '%s'\n",
                    o->certify);
            return CLI_USAGE;
        }
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

/* Applies --set (checked before) to the evaluation's attacks. */
/* The parameters of the named sets in --attacks (default auto, or auto-P under --norm)
 * for the attacks that run, set before --set's (which take precedence); c->set_params
 * keeps them for the resume header. */
static int apply_set_params(report_ctx *c)
{
    const report_opts *o = &c->o;
    char dflt[16];
    snprintf(dflt, sizeof dflt, "auto%s%s", o->norm_name ? "-" : "",
             o->norm_name ? foolc_norm_name(o->norm) : "");
    const char *list = o->attacks ? o->attacks : dflt;
    char *in = strdup(list);
    size_t cap = 1, used = 0;
    for (char *save = NULL, *tok = in ? strtok_r(in, ",", &save) : NULL; tok;
         tok = strtok_r(NULL, ",", &save)) {
        const char *sp = foolc_eval_attack_set_params(tok);
        cap += (sp ? strlen(sp) : 0) + 1;
    }
    free(in);
    in = strdup(list);
    c->set_params = calloc(cap, 1);
    if (!in || !c->set_params) {
        free(in);
        return cli_fail("report", FOOLC_E_NOMEM);
    }
    for (char *save = NULL, *tok = strtok_r(in, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        const char *sp = foolc_eval_attack_set_params(tok);
        for (const char *p = sp; p && *p;) {
            size_t len = strcspn(p, ",");
            char ent[256], *eq, *dot;
            snprintf(ent, sizeof ent, "%.*s", (int)len, p);
            p += len + (p[len] == ',');
            if (!(eq = strchr(ent, '=')) || (*eq = '\0', !(dot = strrchr(ent, '.')))) continue;
            *dot = '\0';
            int here = 0;
            for (int t = 0; t < foolc_eval_attacks(c->ev); t++)
                here |= !strcmp(foolc_eval_attack_name(c->ev, t), ent);
            if (!here) continue;
            foolc_status st = foolc_eval_set(c->ev, ent, dot + 1, eq + 1);
            if (st < 0) {
                free(in);
                return cli_fail_opt("report", "--attacks", tok, st);
            }
            int w = snprintf(c->set_params + used, cap - used, "%s%s.%s=%s",
                             used ? "," : "", ent, dot + 1, eq + 1);
            if (w > 0) used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
        }
    }
    free(in);
    return 0;
}

static int apply_settings(report_ctx *c)
{
    const char *spec = c->o.set;
    for (const char *p = spec; p && *p;) {
        size_t len = strcspn(p, ",");
        char ent[256], *eq, *dot;
        snprintf(ent, sizeof ent, "%.*s", (int)len, p);
        if ((eq = strchr(ent, '=')) && (*eq = '\0', dot = strrchr(ent, '.'))) {
            *dot = '\0';
            foolc_status st = foolc_eval_set(c->ev, ent, dot + 1, eq + 1);
            if (st < 0) return cli_fail_opt("report", "--set", ent, st);
        }
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

/* The attacks (--attacks, --norm; --set checked), the model and the test split; the
 * evaluation with its attacks and their settings. */
static int load_inputs(report_ctx *c)
{
    const report_opts *o = &c->o;
    rep *r = c->r;
    int rc;
    if ((rc = pick_attacks(&c->att, o->attacks, o->norm_name != NULL, o->norm, &c->names)))
        return rc;
    if ((o->set && ((rc = cli_check_settings(o->set)) ||
                    (rc = cli_check_settings_for("report", o->set, c->att.name,
                                                 c->att.n)))) ||
        (rc = cli_load_model("report", o->model, &c->net, &c->model)) ||
        (rc = cli_load_data("report", o->data, "test", c->net, &c->data)))
        return rc;
    foolc_eval_opts eo;
    foolc_status st = foolc_eval_defaults(&eo);
    eo.seed = (uint64_t)o->seed;
    eo.chunk = (int32_t)o->batch;
    eo.budget = (uint64_t)o->budget;
    eo.warm_start = !o->no_warm;
    if (o->norm_name) eo.norms = 1u << o->norm;
    if (st >= 0) st = foolc_eval_new(c->model, &eo, &c->ev);
    for (int t = 0; st >= 0 && t < c->att.n; t++) st = foolc_eval_add_attack(c->ev, c->att.name[t]);
    if (st < 0) return cli_fail("report", st);
    if ((rc = apply_set_params(c)) || (rc = apply_settings(c))) return rc;
    if (o->certify) {
        /* the model and the options checked now; the step borrows c->o.cert */
        st = foolc_certify_oracle(foolc_model_oracle(c->model), NULL, NULL, NULL, 0,
                                  &c->o.cert, NULL, NULL);
        if (st >= 0) st = foolc_certify_eval_add(c->ev, &c->o.cert);
        if (st < 0) return cli_fail_opt("report", "--certify", o->certify, st);
        r->cert_method = foolc_certify_method_name(c->o.cert.method);
    }
    r->ev = c->ev;
    r->model = o->model;
    r->data = o->data ? o->data : "fashion-mnist";
    r->set = o->set;
    r->all = o->all;
    r->no_time = o->no_time;
    r->seed = o->seed;
    r->s = foolc_net_input(c->net);
    r->s.n = 1;
    r->d = (size_t)r->s.c * r->s.h * r->s.w;
    foolc_net_bounds(c->net, &r->lo, &r->hi);
    return 0;
}

/* The clean accuracy over the whole test split, and the samples to attack: the first -n
 * the model classifies correctly (--all: the first -n); their ids are their indices in the
 * split. */
static int pick_samples(report_ctx *c)
{
    rep *r = c->r;
    foolc_status st = foolc_eval_select(c->ev, &c->data, (int32_t)c->o.n, c->o.all);
    if (st == FOOLC_NOT_FOUND) {
        fprintf(stderr, "foolc report: --data '%s': the model classifies no image correctly\n",
                r->data);
        return CLI_INPUT;
    }
    if (st < 0) return cli_fail_opt("report", "--model", c->o.model, st);
    r->n = foolc_eval_samples(c->ev);
    foolc_eval_clean(c->ev, &r->total, &r->correct);
    r->clean_acc = (double)r->correct / r->total;
    r->x = foolc_eval_x(c->ev);
    r->y = foolc_eval_labels(c->ev);
    r->index = malloc((size_t)r->n * sizeof *r->index);
    if (!r->index) return cli_fail("report", FOOLC_E_NOMEM);
    const uint64_t *ids = foolc_eval_ids(c->ev);
    for (int32_t i = 0; i < r->n; i++) r->index[i] = (int32_t)ids[i];
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
    for (int t = 0; t < foolc_eval_attacks(c->ev); t++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", t ? "," : "",
                 foolc_eval_attack_name(c->ev, t));
    put_field(h, cap, "attacks", names);
    put_field(h, cap, "norm", o->norm_name ? foolc_norm_name(o->norm) : "");
    put_field(h, cap, "set", o->set ? o->set : "");
    put_number(h, cap, "n", r->n);
    put_field(h, cap, "all", r->all ? "1" : "0");
    put_number(h, cap, "seed", o->seed);
    put_number(h, cap, "batch", o->batch);
    put_number(h, cap, "budget", o->budget);
    put_number(h, cap, "pool", o->pool);
    put_field(h, cap, "warm", o->no_warm ? "0" : "1");
    put_field(h, cap, "set_params", c->set_params ? c->set_params : "");
    if (o->certify) put_field(h, cap, "certify", foolc_certify_method_name(o->cert.method));
}

#define HEADER_CAP 16384

/* The training split, whose first --pool images are the attacks' starting points (bb-*,
 * dataset, boundary...); none with --pool 0. */
static int load_pool(report_ctx *c)
{
    if (c->o.pool == 0) return 0;
    int rc = cli_load_data("report", c->o.data, "train", c->net, &c->pool);
    if (!rc && c->o.pool > 0 && c->o.pool < c->pool.shape.n) c->pool.shape.n = (int32_t)c->o.pool;
    foolc_status st;
    if (!rc && (st = foolc_eval_set_starts(c->ev, c->pool.x, c->pool.y, c->pool.shape.n)) < 0)
        rc = cli_fail_opt("report", "--pool", c->o.data ? c->o.data : "fashion-mnist", st);
    return rc;
}

/* Whether attack `name` may take starting points (foolc_eval_set_starts): every attack
 * outside the gradient and minimal-norm families may (decision-based attacks and the bb-*
 * family draw their initial adversarials from the pool, directly or through an init attack);
 * these never do. */
static int takes_starts(const char *name)
{
    static const char *const never[] = {
        "fgsm", "fgm-l1", "fgm-l2", "deepfool-l2", "deepfool-linf", "pgd-l1", "pgd-l2",
        "pgd-linf", "bim-l1", "bim-l2", "bim-linf", "mifgsm-l2", "mifgsm-linf", "apgd-l2",
        "apgd-linf", "alma-l1", "alma-l2", "cw-l2", "ddn", "ead", "fab-l1", "fab-l2",
        "fab-linf", "fmn-l0", "fmn-l1", "fmn-l2", "fmn-linf", "newtonfool", "sdf",
        "sigma-zero", "vfga"};
    for (size_t k = 0; k < sizeof never / sizeof *never; k++)
        if (!strcmp(name, never[k])) return 0;
    return 1;
}

int report_worker_samples(report_ctx *c, const uint64_t *ids, int32_t n)
{
    const foolc_data *d = &c->data;
    size_t dim = (size_t)d->shape.c * d->shape.h * d->shape.w;
    if (n < 1 || !ids) return cli_fail("report", FOOLC_E_INVALID);
    for (int32_t i = 0; i < n; i++)
        if (ids[i] >= (uint64_t)d->shape.n) {
            fprintf(stderr, "foolc report: sample id %llu is outside the test split (%d "
                    "images)\n", (unsigned long long)ids[i], (int)d->shape.n);
            return CLI_INPUT;
        }
    float *x = malloc((size_t)n * dim * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    foolc_status st = x && y ? FOOLC_OK : FOOLC_E_NOMEM;
    for (int32_t i = 0; st >= 0 && i < n; i++) {
        memcpy(x + (size_t)i * dim, d->x + (size_t)ids[i] * dim, dim * sizeof *x);
        y[i] = d->y[ids[i]];
    }
    if (st >= 0) st = foolc_eval_set_samples(c->ev, x, y, ids, n);
    free(x);
    free(y);
    if (st < 0) return cli_fail("report", st);
    int pool = 0, rc;
    for (int t = 0; t < c->att.n; t++) pool |= takes_starts(c->att.name[t]);
    if (pool && (rc = load_pool(c))) return rc;
    if ((st = foolc_eval_start(c->ev)) < 0) return cli_fail("report", st);
    return 0;
}

/* --resume: reads and checks the chunks done before and opens the file for the next ones. */
static int open_resume(report_ctx *c)
{
    if (!c->o.resume) return 0;
    char *header = malloc(HEADER_CAP);
    if (!header) return cli_fail("report", FOOLC_E_NOMEM);
    resume_header(c, header, HEADER_CAP);
    foolc_status st = foolc_eval_resume(c->ev, c->o.resume, header);
    free(header);
    if (st < 0) {
        fprintf(stderr, "foolc report: --resume '%s': %s\n", c->o.resume, foolc_errmsg());
        return st == FOOLC_E_INVALID ? CLI_USAGE : st == FOOLC_E_NOMEM ? CLI_FAIL : CLI_INPUT;
    }
    c->resumed = 1;
    return 0;
}

/* The clean-gradient check, then every attack, cheap first (or as the runner does). */
static int run_attacks(report_ctx *c)
{
    rep *r = c->r;
    if (!c->o.quiet)
        fprintf(stderr, "report: %s on %d %s images of %s (clean accuracy %.4f)\n", r->model,
                r->n, r->all ? "first" : "correctly classified", r->data, r->clean_acc);
    catch_signals();
    foolc_status st = foolc_eval_start(c->ev);
    if (st >= 0) st = foolc_eval_grad_check(c->ev);
    int rc = st < 0 ? cli_fail("report", st) : 0;
    rep_view(r);
    if (!rc && c->runner) rc = c->runner->run(c->runner->user, c);
    for (int t = 0; t < r->n_att && !rc && !c->runner; t++) rc = run_attack(c, t);
    for (int s = 0; s < foolc_eval_steps(c->ev) && !rc && !c->runner; s++) rc = run_step(c, s);
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
        rc = foolc_eval_resume_write(c->ev, path, header) < 0 ? -1 : 0;
        if (rc && errno != EEXIST) break;
    }
    if (rc) fprintf(stderr, "foolc report: %s\n", foolc_errmsg());
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
    int done = 0, total = 0, recorded = 0;
    for (int32_t k = 0, nc = foolc_eval_chunk_count(c->ev); k < nc; k++, total++) {
        int32_t task;
        int d = 0;
        if (foolc_eval_chunk_info(c->ev, k, &task, NULL, NULL, &d) >= 0 &&
            task < foolc_eval_attacks(c->ev))
            done += d;
    }
    recorded = done;
    fprintf(stderr, "\nfoolc report: interrupted (%s) with %d of %d chunks done\n",
            rc == CLI_INTERRUPTED(SIGINT) ? "SIGINT" : "SIGTERM", done, total);
    if (c->resumed) {
        fprintf(stderr, "foolc report: the chunks done are in --resume '%s'; run the same "
                "command again to continue\n", c->o.resume);
        return rc;
    }
    char path[4200];
    if (recorded == 0 || keep_chunks(c, path, sizeof path)) {
        if (recorded == 0) fprintf(stderr, "foolc report: nothing to keep\n");
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

/* The view of the evaluation the writers read: its attacks (cheap first) and their
 * results, the best of all, the gradient check. */
void rep_view(rep *r)
{
    foolc_eval *ev = r->ev;
    r->n_att = (int)foolc_eval_attacks(ev);
    for (int t = 0; t < r->n_att; t++) {
        rep_att *a = &r->at[t];
        a->name = foolc_eval_attack_name(ev, t);
        a->norm = foolc_eval_attack_norm(ev, t);
        a->needs = foolc_eval_attack_needs(ev, t);
        a->dist = foolc_eval_dist(ev, t);
        a->ok = foolc_eval_success(ev, t);
        a->adv = foolc_eval_adv_label(ev, t);
        a->q = foolc_eval_queries(ev, t);
        a->xadv = foolc_eval_x_adv(ev, t);
        a->done = foolc_eval_done(ev, t);
        a->seconds = foolc_eval_attack_seconds(ev, t);
        a->st = foolc_eval_attack_status(ev, t, NULL);
    }
    uint32_t norms = foolc_eval_norms(ev);
    for (int p = 0; p < NC; p++) r->norms[p] = norms >> p & 1;
    r->best = foolc_eval_best(ev);
    r->best_by = foolc_eval_best_by(ev);
    r->cert = NULL;
    for (int s = 0; s < foolc_eval_steps(ev); s++)
        if (!strcmp(foolc_eval_step_name(ev, s), "certify")) r->cert = foolc_eval_step_values(ev, s);
    foolc_eval_grad_info(ev, &r->grad_checked, &r->grad_zero, &r->grad_nonfinite);
}

/* The text table on stdout (on stderr when --json, --csv or --svg is "-") and the files
 * asked for. Exit status: the last failed write's, else CLI_FAIL when an attack stopped on
 * an error other than the budget, else CLI_OK. */
static int write_outputs(const report_ctx *c)
{
    const report_opts *o = &c->o;
    rep_view(c->r);
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
    if (rep_cert_check(r) && rc == CLI_OK) rc = CLI_FAIL;
    if (c->cert_failed && rc == CLI_OK) rc = CLI_FAIL;
    return rc;
}

static void report_free(report_ctx *c)
{
    if (c->r) free(c->r->index);
    free(c->r);
    foolc_eval_free(c->ev);
    free(c->names);
    free(c->set_params);
    foolc_model_free(c->model);
    foolc_net_free(c->net);
    foolc_data_free(&c->data);
    foolc_data_free(&c->pool);
}

int report_main(int argc, char **argv, const report_runner *runner)
{
    cli_args a;
    if (cli_args_init(&a, argc, argv)) return CLI_FAIL;
    report_ctx c = {.argc = argc, .argv = argv, .runner = runner};
    int worker = runner && runner->worker, rc = CLI_OK;
    if (!(c.r = calloc(1, sizeof *c.r)))
        rc = CLI_FAIL;
    else if (cli_flag(&a, "--help") || cli_flag(&a, "-h"))
        help();
    else if (worker) { /* the samples come from rank 0: report_worker_samples */
        if (!(rc = parse_options(&a, &c.o)) && !(rc = load_inputs(&c)))
            rc = runner->run(runner->user, &c);
    } else if (!(rc = parse_options(&a, &c.o)) && !(rc = check_paths(&c.o)) &&
               !(rc = load_inputs(&c)) && !(rc = pick_samples(&c)) && !(rc = load_pool(&c)) &&
               !(rc = open_resume(&c))) {
        foolc_status st = foolc_eval_start(c.ev);
        if (st < 0) rc = cli_fail("report", st);
        else if (!(rc = run_attacks(&c))) rc = write_outputs(&c);
    }
    if (rc >= 128 && !worker) rc = interrupted(&c, rc);
    report_free(&c);
    cli_args_free(&a);
    return rc;
}

int cmd_report(int argc, char **argv) { return report_main(argc, argv, NULL); }
