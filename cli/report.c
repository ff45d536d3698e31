/* foolc report: for the first N test images a model classifies correctly, runs each attack
 * (cheap ones first) in fixed chunks of samples, appends each finished chunk to an optional
 * resume file, checks the model's gradients, and writes the report (report_out.c). */
#include "report.h"

#include <math.h>
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
           "  --resume FILE   append results as chunks finish; rerun to continue after a kill\n"
           "  --no-time       leave wall seconds out (outputs comparable byte for byte)\n"
           "  --quiet         no progress on stderr\n"
           "Distances are minimal perturbations: quantiles over all N samples with failures\n"
           "counted as infinite; the mean over the successful ones. Exit status: 0 ok, 1 an\n"
           "attack failed (results kept), 2 usage, 3 bad input file.\n");
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

/* --- The resume file: a header with the options, then per chunk one "s" line per sample
 * and a closing "c" line. Only complete chunks count; a torn tail is cut off. */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_b64(FILE *f, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len) v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        fputc(b64[v >> 18 & 63], f);
        fputc(b64[v >> 12 & 63], f);
        fputc(i + 1 < len ? b64[v >> 6 & 63] : '=', f);
        fputc(i + 2 < len ? b64[v & 63] : '=', f);
    }
}

static int get_b64(const char *s, unsigned char *out, size_t len)
{
    size_t k = 0;
    while (k < len) {
        unsigned v = 0;
        for (int j = 0; j < 4; j++) {
            const char *c = s[j] == '=' ? b64 : s[j] ? strchr(b64, s[j]) : NULL;
            if (!c) return -1;
            v = v << 6 | (unsigned)(c - b64);
        }
        for (int j = 0; j < 3 && k < len; j++) out[k++] = (unsigned char)(v >> (16 - 8 * j));
        s += 4;
    }
    return *s == '\n' || *s == '\0' ? 0 : -1;
}

static void write_sample(FILE *f, const rep *r, int t, int32_t i)
{
    const rep_att *a = &r->at[t];
    fprintf(f, "s %s %d %d %d", a->name, i, a->ok[i], a->adv[i]);
    for (int p = 0; p < NC; p++) fprintf(f, " %a", (double)a->dist[(size_t)i * NC + p]);
    fprintf(f, " %llu %llu %llu ", (unsigned long long)a->q[i].forward,
            (unsigned long long)a->q[i].backward, (unsigned long long)a->q[i].decided);
    if (a->ok[i]) put_b64(f, (const unsigned char *)(a->xadv + (size_t)i * r->d),
                          r->d * sizeof(float));
    else fputc('-', f);
    fputc('\n', f);
}

static int find_attack(const rep *r, const char *name)
{
    for (int t = 0; t < r->n_att; t++)
        if (!strcmp(r->at[t].name, name)) return t;
    return -1;
}

/* Parses one "s" line into the attack's arrays (not yet marked done). */
static int read_sample(rep *r, char *line, int *t_out, int32_t *i_out)
{
    char name[128];
    int i, ok, adv, off = 0;
    double dist[NC];
    unsigned long long fw, bw, dc;
    if (sscanf(line, "s %127s %d %d %d %la %la %la %la %la %llu %llu %llu %n", name, &i, &ok,
               &adv, &dist[0], &dist[1], &dist[2], &dist[3], &dist[4], &fw, &bw, &dc,
               &off) != 12 || !off)
        return -1;
    int t = find_attack(r, name);
    if (t < 0 || i < 0 || i >= r->n) return -1;
    rep_att *a = &r->at[t];
    a->ok[i] = (uint8_t)(ok != 0);
    a->adv[i] = adv;
    for (int p = 0; p < NC; p++) a->dist[(size_t)i * NC + p] = (float)dist[p];
    a->q[i] = (foolc_counts){fw, bw, dc};
    float *xa = a->xadv + (size_t)i * r->d;
    if (ok) {
        if (get_b64(line + off, (unsigned char *)xa, r->d * sizeof(float))) return -1;
    } else {
        if (line[off] != '-') return -1;
        memcpy(xa, r->x + (size_t)i * r->d, r->d * sizeof(float));
    }
    *t_out = t;
    *i_out = i;
    return 0;
}

/* The first option that differs between two header lines, for the refusal message. */
static void header_diff(const char *a, const char *b, char *out, size_t len)
{
    const char *pa = a, *pb = b;
    while (*pa && *pb) {
        size_t la = strcspn(pa, " \n"), lb = strcspn(pb, " \n");
        if (la != lb || strncmp(pa, pb, la)) {
            snprintf(out, len, "file has '%.*s', this command '%.*s'", (int)la, pa, (int)lb, pb);
            return;
        }
        pa += la + (pa[la] == ' ');
        pb += lb + (pb[lb] == ' ');
        if (*pa == '\n' || *pb == '\n') break;
    }
    snprintf(out, len, "the options differ");
}

/* Reads one whole line into *line, grown as needed: 1, or 0 at the end of the file or at
 * a torn tail (a last line without its newline), -1 when out of memory. */
static int read_line(FILE *f, char **line, size_t *cap)
{
    if (!fgets(*line, (int)*cap, f)) return 0;
    size_t len = strlen(*line);
    while (len && (*line)[len - 1] != '\n' && len == *cap - 1) { /* a long line */
        char *grown = realloc(*line, *cap * 2);
        if (!grown) return -1;
        *line = grown;
        *cap *= 2;
        if (!fgets(grown + len, (int)(*cap - len), f)) break;
        len = strlen(grown);
    }
    return len && (*line)[len - 1] == '\n';
}

/* The first two lines: the format's name, then this command's header (else refused). */
static int check_header(int ln, const char *line, const char *path, const char *header)
{
    if (ln == 1 && strcmp(line, "foolc-resume 1\n")) {
        fprintf(stderr, "foolc report: --resume '%s': not a foolc resume file\n", path);
        return CLI_INPUT;
    }
    if (ln == 2 && strcmp(line, header)) {
        char why[512];
        header_diff(line, header, why, sizeof why);
        fprintf(stderr, "foolc report: --resume '%s': written by a different command "
                "line (%s); use another file or the same options\n", path, why);
        return CLI_USAGE;
    }
    return 0;
}

/* The chunk being read: its "s" lines so far (one attack, at most n samples). */
typedef struct resume_chunk {
    int len, t;
    int32_t *i; /* r->n entries */
} resume_chunk;

/* One line after the header: 0 for an "s" line, 1 for the "c" line that closes the chunk
 * (its samples are then done), -1 when malformed. */
static int resume_line(rep *r, resume_chunk *ch, char *line)
{
    if (line[0] == 's') {
        int t;
        int32_t i;
        if (read_sample(r, line, &t, &i) || (ch->len && t != ch->t) || ch->len == r->n)
            return -1;
        ch->t = t;
        ch->i[ch->len++] = i;
        return 0;
    }
    char name[128];
    int b, m, st;
    double sec;
    if (line[0] != 'c' || sscanf(line, "c %127s %d %d %d %la", name, &b, &m, &st, &sec) != 5)
        return -1;
    int t = find_attack(r, name);
    if (t < 0 || b < 0 || m < 1 || m > r->n - b || ch->len != m || t != ch->t)
        return -1;
    for (int k = 0; k < ch->len; k++)
        if (ch->i[k] < b || ch->i[k] >= b + m) return -1;
    for (int k = 0; k < ch->len; k++) r->at[t].done[ch->i[k]] = 1;
    r->at[t].seconds += sec;
    if (st < 0 && r->at[t].st >= 0) r->at[t].st = (foolc_status)st;
    ch->len = 0;
    return 1;
}

/* Reads the chunks of an existing resume file into r. *lines: whole lines read; *good: the
 * offset after the header or after the last complete chunk. */
static int resume_read(rep *r, FILE *f, const char *path, const char *header, int *lines,
                       long *good)
{
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    resume_chunk ch = {0, -1, malloc((size_t)r->n * sizeof *ch.i)};
    int rc = line && ch.i ? 0 : cli_fail("report", FOOLC_E_NOMEM), got = 0;
    while (!rc && (got = read_line(f, &line, &cap)) != 0) {
        if (got < 0) {
            rc = cli_fail("report", FOOLC_E_NOMEM);
            break;
        }
        int ln = ++*lines, k = 1;
        if (ln <= 2) rc = check_header(ln, line, path, header);
        else if ((k = resume_line(r, &ch, line)) < 0) {
            fprintf(stderr, "foolc report: --resume '%s': line %d is malformed\n", path, ln);
            rc = CLI_INPUT;
        }
        if (!rc && ln >= 2 && k > 0) *good = ftell(f);
    }
    free(line);
    free(ch.i);
    return rc;
}

/* Opens --resume: reads the chunks done before, cuts a torn last chunk off, and leaves the
 * file positioned for appending (a new or empty file gets the header). */
static int resume_open(rep *r, const char *path, const char *header, FILE **out)
{
    FILE *f = fopen(path, "r+");
    if (!f) f = fopen(path, "w+");
    if (!f) {
        fprintf(stderr, "foolc report: --resume '%s': cannot open: ", path);
        perror(NULL);
        return CLI_INPUT;
    }
    int lines = 0;
    long good = 0;
    int rc = resume_read(r, f, path, header, &lines, &good);
    if (!rc && lines < 2) { /* new or empty: write the header */
        rewind(f);
        if (ftruncate(fileno(f), 0) || fprintf(f, "foolc-resume 1\n%s", header) < 0 ||
            fflush(f)) {
            fprintf(stderr, "foolc report: --resume '%s': cannot write\n", path);
            rc = CLI_INPUT;
        }
    } else if (!rc && (fflush(f) || ftruncate(fileno(f), good) || fseek(f, good, SEEK_SET))) {
        fprintf(stderr, "foolc report: --resume '%s': cannot truncate the torn tail\n", path);
        rc = CLI_INPUT;
    }
    if (rc) fclose(f);
    else *out = f;
    return rc;
}

/* --- A report run: its options and everything it holds. */
typedef struct report_opts {
    const char *model, *data, *attacks, *norm_name, *set; /* NULL when absent */
    const char *json, *csv, *svg, *png, *resume;          /* NULL when absent */
    int quiet, all, no_time;
    long n, seed, batch, budget, pool, png_n;
    foolc_norm norm; /* --norm, when norm_name is set */
} report_opts;

typedef struct report_ctx {
    report_opts o;
    rep *r;
    char *names;       /* the attack list that r->at[].name points into */
    foolc_net *net;
    foolc_model *model;
    foolc_data data;   /* the test split */
    foolc_data pool;   /* the training split: starting points (--pool) */
    FILE *resume;      /* --resume, open for appending chunks */
} report_ctx;

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
    return 0;
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

/* Appends samples b..b+m-1 of attack t and the chunk's closing "c" line to the resume
 * file, flushed to the disk. */
static int save_chunk(FILE *f, const rep *r, int t, int32_t b, int32_t m, foolc_status st,
                      double sec)
{
    for (int32_t i = b; i < b + m; i++) write_sample(f, r, t, i);
    fprintf(f, "c %s %d %d %d %a\n", r->at[t].name, b, m, st < 0 ? (int)st : 0, sec);
    if (fflush(f) || fsync(fileno(f))) {
        fprintf(stderr, "foolc report: --resume: write failed\n");
        return CLI_INPUT;
    }
    return 0;
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
    return c->resume ? save_chunk(c->resume, r, t, b, m, st, sec) : 0;
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
    return 0;
}

/* The attacks (--attacks, --norm; --set checked), the model and the test split. */
static int load_inputs(report_ctx *c)
{
    const report_opts *o = &c->o;
    rep *r = c->r;
    int rc;
    if ((rc = pick_attacks(r, o->attacks, o->norm_name != NULL, o->norm, &c->names)) ||
        (o->set && (rc = cli_check_settings(o->set))) ||
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

static void resume_header(const report_ctx *c, char *h, size_t cap)
{
    const report_opts *o = &c->o;
    const rep *r = c->r;
    char hash[32], names[4096] = "";
    h[0] = '\0';
    put_field(h, cap, "model", o->model);
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)cli_file_hash(o->model));
    put_field(h, cap, "model_hash", hash);
    put_field(h, cap, "data", r->data);
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

/* --resume: reads the chunks done before and opens the file for the next ones. */
static int open_resume(report_ctx *c)
{
    if (!c->o.resume) return 0;
    char header[8192];
    resume_header(c, header, sizeof header);
    return resume_open(c->r, c->o.resume, header, &c->resume);
}

/* The training split, whose first --pool images are the attacks' starting points (bb-*,
 * dataset, boundary...); none with --pool 0. */
static int load_pool(report_ctx *c)
{
    if (c->o.pool == 0) return 0;
    int rc = cli_load_data("report", c->o.data, "train", c->net, &c->pool);
    if (!rc && c->o.pool > 0 && c->o.pool < c->pool.shape.n) c->pool.shape.n = (int32_t)c->o.pool;
    return rc;
}

/* The clean-gradient check, then every attack, cheap first. */
static int run_attacks(report_ctx *c)
{
    rep *r = c->r;
    if (!c->o.quiet)
        fprintf(stderr, "report: %s on %d %s images of %s (clean accuracy %.4f)\n", r->model,
                r->n, r->all ? "first" : "correctly classified", r->data, r->clean_acc);
    grad_check(r, c->model);
    int rc = 0;
    for (int t = 0; t < r->n_att && !rc; t++) rc = run_attack(c, t);
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

/* The text table on stdout and the files asked for. Exit status: the last failed write's,
 * else CLI_FAIL when an attack stopped on an error other than the budget, else CLI_OK. */
static int write_outputs(const report_ctx *c)
{
    const report_opts *o = &c->o;
    const rep *r = c->r;
    int rc = CLI_OK, rc2;
    rep_text(r, stdout);
    fflush(stdout);
    if (o->json && (rc2 = rep_json(r, o->json))) rc = rc2;
    if (o->csv && (rc2 = rep_csv(r, o->csv))) rc = rc2;
    if (o->svg && (rc2 = rep_svg(r, o->svg))) rc = rc2;
    if (o->png && (rc2 = rep_png(r, o->png, (int)o->png_n))) rc = rc2;
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
    foolc_model_free(c->model);
    foolc_net_free(c->net);
    foolc_data_free(&c->data);
    foolc_data_free(&c->pool);
}

int cmd_report(int argc, char **argv)
{
    cli_args a;
    if (cli_args_init(&a, argc, argv)) return CLI_FAIL;
    report_ctx c = {0};
    int rc = CLI_OK;
    if (!(c.r = calloc(1, sizeof *c.r)))
        rc = CLI_FAIL;
    else if (cli_flag(&a, "--help") || cli_flag(&a, "-h"))
        help();
    else if (!(rc = parse_options(&a, &c.o)) && !(rc = load_inputs(&c)) &&
             !(rc = pick_samples(&c)) && !(rc = alloc_results(c.r)) &&
             !(rc = open_resume(&c)) && !(rc = load_pool(&c)) && !(rc = run_attacks(&c)) &&
             !(rc = best_of_all(c.r)))
        rc = write_outputs(&c);
    report_free(&c);
    cli_args_free(&a);
    return rc;
}
