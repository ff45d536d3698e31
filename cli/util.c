/* Shared helpers of the foolc command: option parsing with clear usage errors, progress
 * reporting on stderr, and error printing with the library's detail message. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_args_init(cli_args *a, int argc, char **argv)
{
    a->argc = argc;
    a->argv = argv;
    a->used = calloc((size_t)argc + 1, 1);
    a->cmd = argc > 0 ? argv[0] : "";
    a->bad = 0;
    return a->used ? 0 : -1;
}

void cli_args_free(cli_args *a) { free(a->used); }

static int matches(const char *arg, const char *name, const char **val)
{
    size_t k = strlen(name);
    if (strncmp(arg, name, k)) return 0;
    if (arg[k] == '=') { *val = arg + k + 1; return 2; }
    if (arg[k] == '\0') { *val = NULL; return 1; }
    return 0;
}

const char *cli_opt(cli_args *a, const char *name, const char *alias)
{
    for (int i = 1; i < a->argc; i++) {
        const char *val;
        int m = matches(a->argv[i], name, &val);
        if (!m && alias) m = matches(a->argv[i], alias, &val);
        if (!m) continue;
        a->used[i] = 1;
        if (m == 2) return val;
        const char *nx = i + 1 < a->argc ? a->argv[i + 1] : NULL;
        if (nx && !(nx[0] == '-' && nx[1] == '-' && nx[2])) {
            a->used[i + 1] = 1;
            return nx;
        }
        if (!a->bad)
            fprintf(stderr, "foolc %s: %s needs a value (see foolc %s --help)\n", a->cmd,
                    a->argv[i], a->cmd);
        a->bad = 1;
        return NULL;
    }
    return NULL;
}

int cli_flag(cli_args *a, const char *name)
{
    for (int i = 1; i < a->argc; i++)
        if (!strcmp(a->argv[i], name)) {
            a->used[i] = 1;
            return 1;
        }
    return 0;
}

int cli_opt_long(cli_args *a, const char *name, const char *alias, long lo, long hi, long *out)
{
    const char *v = cli_opt(a, name, alias);
    if (!v) return 0;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "foolc %s: %s: expected a whole number in [%ld, %ld], got '%s'\n",
                a->cmd, name, lo, hi, v);
        return CLI_USAGE;
    }
    *out = x;
    return 0;
}

int cli_opt_double(cli_args *a, const char *name, double lo, double hi, double *out)
{
    const char *v = cli_opt(a, name, NULL);
    if (!v) return 0;
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !isfinite(x) || x < lo || x > hi) {
        fprintf(stderr, "foolc %s: %s: expected a number in [%g, %g], got '%s'\n", a->cmd,
                name, lo, hi, v);
        return CLI_USAGE;
    }
    *out = x;
    return 0;
}

int cli_args_leftover(cli_args *a, const char *cmd)
{
    if (a->bad) return CLI_USAGE;
    for (int i = 1; i < a->argc; i++)
        if (!a->used[i]) {
            size_t k = strcspn(a->argv[i], "=");
            for (int j = 1; j < i && a->argv[i][0] == '-'; j++)
                if (a->used[j] && !strncmp(a->argv[j], a->argv[i], k) &&
                    (a->argv[j][k] == '\0' || a->argv[j][k] == '=')) {
                    fprintf(stderr, "foolc %s: %.*s given more than once\n", cmd, (int)k,
                            a->argv[i]);
                    return CLI_USAGE;
                }
            fprintf(stderr, "foolc %s: unknown argument '%s' (see foolc %s --help)\n", cmd,
                    a->argv[i], cmd);
            return CLI_USAGE;
        }
    return 0;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_start(cli_progress *p, const char *label, int64_t total, int quiet)
{
    p->label = label;
    p->tty = isatty(STDERR_FILENO);
    p->quiet = quiet;
    p->t0 = p->last = cli_now();
    p->total = total;
}

void cli_progress_update(cli_progress *p, int64_t done)
{
    if (p->quiet || !p->tty) return;
    double now = cli_now();
    if (now - p->last < 0.1 && done < p->total) return;
    p->last = now;
    double el = now - p->t0, rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(p->total - done) / rate : 0;
    int width = 30, fill = p->total > 0 ? (int)(width * done / p->total) : 0;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r%-14s [%s] %lld/%lld  %.1f/s  ETA %.0fs ", p->label, bar,
            (long long)done, (long long)p->total, rate, eta);
    fflush(stderr);
}

void cli_progress_end(cli_progress *p, const char *summary)
{
    if (p->quiet) return;
    if (p->tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "%s: %s (%.1f s)\n", p->label, summary, cli_now() - p->t0);
}

int cli_fail(const char *what, foolc_status st)
{
    const char *msg = foolc_errmsg();
    fprintf(stderr, "foolc: %s: %s%s%s\n", what, foolc_status_str(st), *msg ? ": " : "", msg);
    return st == FOOLC_E_IO || st == FOOLC_E_FORMAT ? CLI_INPUT
           : st == FOOLC_E_INVALID                  ? CLI_USAGE
                                                    : CLI_FAIL;
}

const char *cli_arch(const char *name)
{
    if (!strcmp(name, "cnn"))
        return "input c=1 h=28 w=28; conv2d out=32 k=3 p=1; relu; maxpool2d k=2; "
               "conv2d out=64 k=3 p=1; relu; maxpool2d k=2; flatten; dense out=128; relu; "
               "dense out=10";
    if (!strcmp(name, "mlp"))
        return "input c=1 h=28 w=28; flatten; dense out=256; relu; dense out=256; relu; "
               "dense out=10";
    return name;
}

int cli_fail_opt(const char *cmd, const char *flag, const char *value, foolc_status st)
{
    const char *msg = foolc_errmsg();
    fprintf(stderr, "foolc%s%s: %s '%s': %s%s%s\n", *cmd ? " " : "", cmd, flag, value,
            foolc_status_str(st), *msg ? ": " : "", msg);
    return st == FOOLC_E_IO || st == FOOLC_E_FORMAT ? CLI_INPUT
           : st == FOOLC_E_INVALID                  ? CLI_USAGE
                                                    : CLI_FAIL;
}

/* One "attack.key=value" entry of --set: splits it, or prints why it cannot. */
static int parse_setting(const char *ent, size_t len, char *att, char *key, char *val)
{
    char buf[256];
    if (len == 0 || len >= sizeof buf) goto bad;
    memcpy(buf, ent, len);
    buf[len] = '\0';
    char *eq = strchr(buf, '='), *dot;
    if (!eq) goto bad;
    *eq = '\0';
    dot = strrchr(buf, '.');
    if (!dot || dot == buf || !dot[1]) goto bad;
    *dot = '\0';
    if (!eq[1]) goto bad;
    strcpy(att, buf);
    strcpy(key, dot + 1);
    strcpy(val, eq + 1);
    return 0;
bad:
    fprintf(stderr, "foolc: --set: expected ATTACK.KEY=VALUE (a number or a value's name), "
            "got '%.*s'\n", (int)len, ent);
    return CLI_USAGE;
}

static int settings(const char *spec, const char *name, foolc_attack *att)
{
    for (const char *p = spec; p && *p;) {
        size_t len = strcspn(p, ",");
        char an[256], key[256], val[256];
        if (parse_setting(p, len, an, key, val)) return CLI_USAGE;
        if (!name) {
            foolc_attack *tmp;
            foolc_status st = foolc_attack_new(an, &tmp);
            if (st < 0) return cli_fail_opt("", "--set", an, st);
            st = foolc_attack_set_text(tmp, key, val);
            foolc_attack_free(tmp);
            if (st < 0) return cli_fail_opt("", "--set", an, st);
        } else if (!strcmp(an, name)) {
            foolc_status st = foolc_attack_set_text(att, key, val);
            if (st < 0) return cli_fail_opt("", "--set", an, st);
        }
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

int cli_apply_settings(const char *spec, const char *name, foolc_attack *att)
{
    return settings(spec, name, att);
}

int cli_check_settings(const char *spec) { return settings(spec, NULL, NULL); }

uint64_t cli_file_hash(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint64_t h = 1469598103934665603ull;
    unsigned char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < k; i++) h = (h ^ buf[i]) * 1099511628211ull;
    fclose(f);
    return h;
}

int cli_load_model(const char *cmd, const char *path, foolc_net **net, foolc_model **model)
{
    if (!path || !*path) {
        fprintf(stderr, "foolc %s: --model FILE is required\n", cmd);
        return CLI_USAGE;
    }
    foolc_status st = foolc_net_load(path, net);
    if (st < 0) {
        int rc = cli_fail_opt(cmd, "--model", path, st);
        return rc == CLI_USAGE ? CLI_INPUT : rc;
    }
    foolc_oracle o;
    if ((st = foolc_net_oracle(*net, 256, &o)) < 0 || (st = foolc_model_new(&o, model)) < 0)
        return cli_fail_opt(cmd, "--model", path, st);
    return 0;
}

int cli_load_data(const char *cmd, const char *spec, const char *split, const foolc_net *net,
                  foolc_data *out)
{
    const char *name = spec ? spec : "fashion-mnist";
    foolc_status st = foolc_data_load(spec, split, out);
    if (st < 0) {
        int rc = cli_fail_opt(cmd, "--data", name, st);
        return rc == CLI_USAGE ? CLI_INPUT : rc;
    }
    foolc_shape in = foolc_net_input(net);
    if (out->shape.c != in.c || out->shape.h != in.h || out->shape.w != in.w) {
        fprintf(stderr, "foolc %s: --data '%s': images are %dx%dx%d but the model takes "
                "%dx%dx%d\n", cmd, name, out->shape.c, out->shape.h, out->shape.w, in.c,
                in.h, in.w);
        return CLI_INPUT;
    }
    int32_t k = foolc_net_classes(net);
    for (int32_t i = 0; i < out->shape.n; i++)
        if (out->y[i] < 0 || out->y[i] >= k) {
            fprintf(stderr, "foolc %s: --data '%s': label %d of image %d is not one of the "
                    "model's %d classes\n", cmd, name, out->y[i], i, k);
            return CLI_INPUT;
        }
    if (out->shape.n == 0) {
        fprintf(stderr, "foolc %s: --data '%s': no images in the %s split\n", cmd, name,
                split);
        return CLI_INPUT;
    }
    return 0;
}
