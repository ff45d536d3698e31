/* Shared helpers of the foolc command: option parsing with clear usage errors, progress
 * reporting on stderr, and error printing with the library's detail message. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
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
        if (i + 1 < a->argc) {
            a->used[i + 1] = 1;
            return a->argv[i + 1];
        }
        return "";
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
        fprintf(stderr, "foolc: %s: expected a whole number in [%ld, %ld], got '%s'\n", name,
                lo, hi, v);
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
        fprintf(stderr, "foolc: %s: expected a number in [%g, %g], got '%s'\n", name, lo, hi, v);
        return CLI_USAGE;
    }
    *out = x;
    return 0;
}

int cli_args_leftover(cli_args *a, const char *cmd)
{
    for (int i = 1; i < a->argc; i++)
        if (!a->used[i]) {
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
