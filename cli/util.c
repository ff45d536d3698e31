/* Shared helpers of the foolc command: option parsing with clear usage errors, progress
 * reporting on stderr, and error printing with the library's detail message. */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    const char *text = foolc_net_preset(name);
    return text ? text : name;
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

int cli_check_settings_for(const char *cmd, const char *spec, const char *const *names, int n)
{
    for (const char *p = spec; p && *p;) {
        size_t len = strcspn(p, ",");
        char an[256], key[256], val[256];
        if (parse_setting(p, len, an, key, val)) return CLI_USAGE;
        int k = 0;
        while (k < n && strcmp(names[k], an)) k++;
        if (k == n) {
            fprintf(stderr, "foolc %s: --set '%.*s': %s is not %s", cmd, (int)len, p, an,
                    n == 1 ? "the attack run (" : "among the attacks run (");
            for (k = 0; k < n; k++) fprintf(stderr, "%s%s", k ? ", " : "", names[k]);
            fprintf(stderr, ")%s\n", n == 1 ? "" : "; add it to --attacks or drop the setting");
            return CLI_USAGE;
        }
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

uint64_t cli_hash(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

uint64_t cli_file_hash(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint64_t h = CLI_HASH_INIT;
    unsigned char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) h = cli_hash(h, buf, k);
    fclose(f);
    return h;
}

char *cli_canon(const char *path)
{
    char *full = realpath(path, NULL);
    if (full || errno != ENOENT) return full;
    /* Not there (yet): the directory's real path and the base name. */
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t cut = len;
    while (cut && path[cut - 1] != '/') cut--;
    const char *base = path + cut;
    size_t blen = len - cut;
    char *dir;
    if (cut == 0) dir = realpath(".", NULL);
    else {
        char *d = malloc(cut + 1);
        if (!d) return NULL;
        memcpy(d, path, cut);
        d[cut] = '\0';
        dir = realpath(d, NULL);
        free(d);
    }
    if (!dir) return NULL;
    size_t dl = strlen(dir), slash = dl && dir[dl - 1] != '/';
    char *out = malloc(dl + slash + blen + 1);
    if (out) {
        memcpy(out, dir, dl);
        if (slash) out[dl] = '/';
        memcpy(out + dl + slash, base, blen);
        out[dl + slash + blen] = '\0';
    }
    free(dir);
    return out;
}

int cli_check_output(const char *cmd, const char *flag, const char *path, int rw)
{
    struct stat sb;
    int fd, err;
    if (!*path) {
        fprintf(stderr, "foolc %s: %s: an empty file name\n", cmd, flag);
        return CLI_USAGE;
    }
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "foolc %s: %s '%s': is a directory, not a file\n", cmd, flag, path);
            return CLI_INPUT;
        }
        if (!S_ISREG(sb.st_mode)) return 0; /* a device or a pipe: opened when written */
        if ((fd = open(path, rw ? O_RDWR : O_WRONLY)) >= 0) return close(fd), 0;
        err = errno;
    } else if (errno != ENOENT) {
        err = errno;
    } else if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666)) >= 0) {
        close(fd);
        unlink(path);
        return 0;
    } else {
        err = errno;
        if (err == EEXIST) return 0; /* a dangling link or a race: left to the writer */
    }
    fprintf(stderr, "foolc %s: %s '%s': cannot write: %s\n", cmd, flag, path, strerror(err));
    return CLI_INPUT;
}

/* Same file: equal device and inode when both exist, else equal canonical paths. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char *ca = cli_canon(a), *cb = cli_canon(b);
    int same = ca && cb ? !strcmp(ca, cb) : !strcmp(a, b);
    free(ca);
    free(cb);
    return same;
}

int cli_check_paths(const char *cmd, const cli_path *p, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            const cli_path *a = &p[i], *b = &p[j];
            if (!a->path || !b->path || !(a->output || b->output)) continue;
            int std_a = a->output && !strcmp(a->path, "-");
            int std_b = b->output && !strcmp(b->path, "-");
            if (std_a && std_b) {
                fprintf(stderr, "foolc %s: %s - and %s -: only one output can go to standard "
                        "output\n", cmd, a->flag, b->flag);
                return CLI_USAGE;
            }
            if (std_a || std_b || !same_file(a->path, b->path)) continue;
            if (a->output && b->output)
                fprintf(stderr, "foolc %s: %s '%s' and %s '%s' are the same file (one would "
                        "overwrite the other)\n", cmd, a->flag, a->path, b->flag, b->path);
            else
                fprintf(stderr, "foolc %s: %s '%s' is the file of %s '%s' (it would be "
                        "overwritten)\n", cmd, a->output ? a->flag : b->flag,
                        a->output ? a->path : b->path, a->output ? b->flag : a->flag,
                        a->output ? b->path : a->path);
            return CLI_USAGE;
        }
    return 0;
}

static const char *g_bounds;

void cli_bounds_opt(const char *spec) { g_bounds = spec; }

/* --bounds LO,HI on a loaded net; CLI_USAGE with a message when malformed. */
static int apply_bounds(const char *cmd, foolc_net *net)
{
    if (!g_bounds) return 0;
    char *end = NULL;
    double lo = strtod(g_bounds, &end), hi = 0;
    int ok = end != g_bounds && *end == ',';
    if (ok) {
        const char *s = end + 1;
        hi = strtod(s, &end);
        ok = end != s && *end == '\0';
    }
    if (!ok || foolc_net_set_bounds(net, (float)lo, (float)hi) < 0) {
        fprintf(stderr, "foolc %s: --bounds: expected LO,HI (finite numbers, LO < HI), got "
                "'%s'\n", cmd, g_bounds);
        return CLI_USAGE;
    }
    return 0;
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
    int brc = apply_bounds(cmd, *net);
    if (brc) return brc;
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
