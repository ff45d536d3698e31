/* bench_net: throughput of the built-in engine (forward, forward + input gradient, weight
 * gradients, Adam training) on the reference CNN and MLP, next to a large cblas_sgemm that
 * stands for the machine's practical peak. Uses only the public API; bench/run.sh puts the
 * rows next to PyTorch's (bench/torch_net.py prints the same table). */
#include <foolc.h>

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_BATCHES 16
#define MAX_ROWS 128
#define MIN_TRIALS 5
#define TRIAL_SPLIT 25

typedef struct row {
    char net[8], pass[16];
    int32_t batch;
    double sec_per_call;   /* median over trials */
    double best_per_call;  /* best trial */
    double flop_per_image; /* as counted in the docs (bench.md) */
    double others;         /* share of the machine other processes used meanwhile */
} row;

static row g_rows[MAX_ROWS];
static int g_nrows;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

/* CPU time of the whole machine (busy, in seconds) and of this process, and the number of
 * CPUs, to tell how much of the machine other processes took while a point ran. */
typedef struct cpu_snap {
    double t, busy, own;
    int ncpu;
} cpu_snap;

static cpu_snap cpu_now(void)
{
    cpu_snap c = { now(), 0.0, 0.0, 0 };
    FILE *f = fopen("/proc/stat", "r");
    char line[512];
    long hz = 100; /* USER_HZ is 100 on Linux */
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long v[8] = { 0 };
        if (!strncmp(line, "cpu ", 4) &&
            sscanf(line + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) >= 4)
            c.busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)hz;
        else if (!strncmp(line, "cpu", 3)) c.ncpu++;
    }
    if (f) fclose(f);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        c.own = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
                (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
    return c;
}

/* The share of all CPUs that other processes used between a and b (0 when unknown). */
static double others_share(cpu_snap a, cpu_snap b)
{
    double wall = b.t - a.t;
    if (a.ncpu < 1 || wall <= 0.0 || a.busy <= 0.0) return 0.0;
    double o = ((b.busy - a.busy) - (b.own - a.own)) / (wall * a.ncpu);
    return o < 0.0 ? 0.0 : o > 1.0 ? 1.0 : o;
}

static void die(const char *what, foolc_status st)
{
    fprintf(stderr, "bench_net: %s: %s (%s)\n", what, foolc_status_str(st), foolc_errmsg());
    exit(1);
}

static void fill_uniform(float *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) { /* xorshift64*, top 24 bits -> [0, 1) */
        *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
        x[i] = (float)((*s * 0x2545F4914F6CDD1Dull) >> 40) * (1.0f / 16777216.0f);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One unit of work under test; returns a status. */
typedef foolc_status (*work_fn)(void *ctx);

/* Two warm-up calls (the first builds primitives for this batch size), then trials of m
 * calls each, with m chosen so that a trial lasts about min_time / TRIAL_SPLIT, until there
 * are MIN_TRIALS trials and min_time seconds. Gives the median and the best trial: short
 * trials let the best one catch a window in which other processes left the CPUs alone. */
static double measure(work_fn f, void *ctx, double min_time, double *med, double *best)
{
    foolc_status st;
    for (int i = 0; i < 2; i++)
        if ((st = f(ctx)) != FOOLC_OK) die("warm-up", st);
    double t0 = now();
    if ((st = f(ctx)) != FOOLC_OK) die("calibration", st);
    double t1 = now() - t0;
    long m = (long)ceil(min_time / TRIAL_SPLIT / (t1 > 1e-7 ? t1 : 1e-7));
    if (m < 1) m = 1;
    double trials[1024];
    int nt = 0;
    cpu_snap c0 = cpu_now();
    double start = c0.t;
    while (nt < (int)(sizeof trials / sizeof trials[0]) &&
           (nt < MIN_TRIALS || now() - start < min_time)) {
        double a = now();
        for (long i = 0; i < m; i++)
            if ((st = f(ctx)) != FOOLC_OK) die("timed call", st);
        trials[nt++] = (now() - a) / (double)m;
    }
    qsort(trials, (size_t)nt, sizeof trials[0], cmp_double);
    *best = trials[0];
    *med = nt % 2 ? trials[nt / 2] : 0.5 * (trials[nt / 2 - 1] + trials[nt / 2]);
    return others_share(c0, cpu_now());
}

/* Cross-entropy against label 0: dlogits = softmax(logits) - onehot(0). */
static int seed_ce(void *user, const float *logits, int32_t n, int32_t k, float *dl)
{
    (void)user;
    for (int32_t i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * (size_t)k;
        float *d = dl + (size_t)i * (size_t)k, mx = z[0], sum = 0.0f;
        for (int32_t j = 1; j < k; j++) mx = z[j] > mx ? z[j] : mx;
        for (int32_t j = 0; j < k; j++) sum += (d[j] = expf(z[j] - mx));
        for (int32_t j = 0; j < k; j++) d[j] /= sum;
        d[0] -= 1.0f;
    }
    return 0;
}

typedef struct job {
    foolc_net *net;
    const float *x;
    int32_t n;
    float *logits, *dx, *dparams;
} job;

static foolc_status do_forward(void *ctx)
{
    job *j = ctx;
    return foolc_net_forward(j->net, j->x, j->n, j->logits);
}

static foolc_status do_grad(void *ctx)
{
    job *j = ctx;
    return foolc_net_grad(j->net, j->x, j->n, seed_ce, NULL, j->logits, j->dx, j->dparams);
}

static void add_row(const char *net, const char *pass, int32_t batch, double med,
                    double best, double flop, double others)
{
    if (g_nrows == MAX_ROWS) return;
    row *r = &g_rows[g_nrows++];
    snprintf(r->net, sizeof r->net, "%s", net);
    snprintf(r->pass, sizeof r->pass, "%s", pass);
    r->batch = batch;
    r->sec_per_call = med;
    r->best_per_call = best;
    r->flop_per_image = flop;
    r->others = others;
}

/* FLOPs of the first conv2d or dense layer alone: a net cut after that layer. */
static double first_layer_flops(const char *arch)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", arch);
    char *p = buf;
    for (;;) {
        char *semi = strchr(p, ';');
        while (*p == ' ') p++;
        if (strncmp(p, "conv2d", 6) == 0 || strncmp(p, "dense", 5) == 0) {
            if (semi) *semi = '\0';
            break;
        }
        if (!semi) return 0.0;
        p = semi + 1;
    }
    foolc_net *net = NULL;
    foolc_status st = foolc_net_new(buf, 1, &net);
    if (st != FOOLC_OK) die("foolc_net_new (first layer)", st);
    double f = foolc_net_flops(net);
    foolc_net_free(net);
    return f;
}

static void bench_net(const char *name, const char *arch, const int32_t *batches, int nb,
                      int32_t train_batch, double min_time, int reference, double *rss)
{
    foolc_net *net = NULL;
    foolc_status st = foolc_net_new(arch, 42, &net);
    if (st != FOOLC_OK) die("foolc_net_new", st);
    if (reference && (st = foolc_net_set_backend(net, FOOLC_BACKEND_REFERENCE)) != FOOLC_OK)
        die("foolc_net_set_backend", st);
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    int32_t k = foolc_net_classes(net);
    int64_t np = foolc_net_param_count(net);
    double F = foolc_net_flops(net), F1 = first_layer_flops(arch);
    int32_t nmax = train_batch;
    for (int i = 0; i < nb; i++) nmax = batches[i] > nmax ? batches[i] : nmax;

    float *x = malloc(sizeof(float) * d * (size_t)nmax);
    float *dx = malloc(sizeof(float) * d * (size_t)nmax);
    float *logits = malloc(sizeof(float) * (size_t)k * (size_t)nmax);
    float *dparams = malloc(sizeof(float) * (size_t)np);
    if (!x || !dx || !logits || !dparams) die("malloc", FOOLC_E_NOMEM);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    fill_uniform(x, d * (size_t)nmax, &s);

    fprintf(stderr, "bench_net: %s (%lld params, %.3f MFLOP/image forward)\n", name,
            (long long)np, F * 1e-6);
    for (int i = 0; i < nb; i++) {
        job j = { net, x, batches[i], logits, NULL, NULL };
        double med, best, o;
        o = measure(do_forward, &j, min_time, &med, &best);
        add_row(name, "fwd", batches[i], med, best, F, o);
        j.dx = dx; /* input gradient only: backward-data of every layer */
        o = measure(do_grad, &j, min_time, &med, &best);
        add_row(name, "fwd+dx", batches[i], med, best, 2.0 * F, o);
    }
    /* Weight gradients without dx: forward, backward-data of all but the first layer,
     * backward-weights of every layer. */
    for (int i = 0; i < nb; i++) {
        if (batches[i] < 16) continue;
        job j = { net, x, batches[i], logits, NULL, dparams };
        double med, best;
        double o = measure(do_grad, &j, min_time, &med, &best);
        add_row(name, "fwd+dW", batches[i], med, best, 3.0 * F - F1, o);
    }

    /* Training: Adam over a fixed synthetic set of 16 batches, for as many epochs as last
     * about 2 * min_time; three such runs, median (and best) time per step. */
    {
        double med, best;
        job j = { net, x, train_batch, logits, NULL, dparams };
        measure(do_grad, &j, 0.1, &med, &best);
        const int32_t steps = 16;
        int32_t epochs = (int32_t)ceil(2.0 * min_time / (3.0 * med * steps));
        if (epochs < 1) epochs = 1;
        foolc_data data = { { steps * train_batch, in.c, in.h, in.w }, k, NULL, NULL };
        data.x = malloc(sizeof(float) * d * (size_t)data.shape.n);
        data.y = malloc(sizeof(int32_t) * (size_t)data.shape.n);
        if (!data.x || !data.y) die("malloc", FOOLC_E_NOMEM);
        fill_uniform(data.x, d * (size_t)data.shape.n, &s);
        for (int32_t i = 0; i < data.shape.n; i++) data.y[i] = (int32_t)((i * 7919) % k);
        foolc_train_opts o;
        foolc_train_defaults(&o);
        o.epochs = 1; /* warm-up: builds the training primitives */
        o.batch = train_batch;
        o.seed = 3;
        double loss = 0.0, times[3];
        if ((st = foolc_net_train(net, &data, &o, NULL, NULL, &loss)) != FOOLC_OK)
            die("foolc_net_train (warm-up)", st);
        o.epochs = epochs;
        cpu_snap c0 = cpu_now();
        for (int t = 0; t < 3; t++) {
            double a = now();
            if ((st = foolc_net_train(net, &data, &o, NULL, NULL, &loss)) != FOOLC_OK)
                die("foolc_net_train", st);
            times[t] = (now() - a) / ((double)epochs * steps);
        }
        qsort(times, 3, sizeof times[0], cmp_double);
        add_row(name, "train", train_batch, times[1], times[0], 3.0 * F - F1,
                others_share(c0, cpu_now()));
        free(data.x);
        free(data.y);
    }
    *rss = peak_rss_mib();
    free(x);
    free(dx);
    free(logits);
    free(dparams);
    foolc_net_free(net);
}

/* --invariance: the engine's batch-invariant dense products against the old batch-dependent
 * ones (row-major, gemv for one row), which the library keeps behind an internal switch for
 * this bench only (lib/nn/nn.h; this program links the static library). Trials alternate
 * between the two, so both see the same load; the ratio is the median of the per-trial
 * ratios (new time / old time: above 1 is slower), of wall-clock time and of this process's
 * CPU time (on an oversubscribed machine the wall clock mostly measures the others). */
extern int foolc__nn_dense_rowmajor;

static void bench_invariance(const char *name, const char *arch, const int32_t *batches,
                             int nb, double min_time)
{
    foolc_net *net = NULL;
    foolc_status st = foolc_net_new(arch, 42, &net);
    if (st != FOOLC_OK) die("foolc_net_new", st);
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    int32_t k = foolc_net_classes(net), nmax = 1;
    for (int i = 0; i < nb; i++) nmax = batches[i] > nmax ? batches[i] : nmax;
    float *x = malloc(sizeof(float) * d * (size_t)nmax);
    float *dx = malloc(sizeof(float) * d * (size_t)nmax);
    float *logits = malloc(sizeof(float) * (size_t)k * (size_t)nmax);
    if (!x || !dx || !logits) die("malloc", FOOLC_E_NOMEM);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    fill_uniform(x, d * (size_t)nmax, &s);
    for (int i = 0; i < nb; i++)
        for (int pass = 0; pass < 2; pass++) {
            job j = { net, x, batches[i], logits, pass ? dx : NULL, NULL };
            work_fn f = pass ? do_grad : do_forward;
            for (int v = 0; v < 2; v++) { /* warm-up: plans for both */
                foolc__nn_dense_rowmajor = v;
                for (int w = 0; w < 2; w++)
                    if ((st = f(&j)) != FOOLC_OK) die("warm-up", st);
            }
            double t0 = now();
            if ((st = f(&j)) != FOOLC_OK) die("calibration", st);
            double t1 = now() - t0;
            long m = (long)ceil(min_time / TRIAL_SPLIT / (t1 > 1e-7 ? t1 : 1e-7));
            if (m < 1) m = 1;
            static double tt[2][512], ratio[512], cratio[512];
            int nt = 0;
            cpu_snap c0 = cpu_now();
            while (nt < 512 && (nt < MIN_TRIALS || now() - c0.t < 2.0 * min_time)) {
                double cpu[2];
                for (int v = 0; v < 2; v++) {
                    foolc__nn_dense_rowmajor = 1 - v; /* old first, then new */
                    double a = now(), c = cpu_now().own;
                    for (long r = 0; r < m; r++)
                        if ((st = f(&j)) != FOOLC_OK) die("timed call", st);
                    tt[v][nt] = (now() - a) / (double)m;
                    cpu[v] = cpu_now().own - c;
                }
                ratio[nt] = tt[1][nt] / tt[0][nt];
                cratio[nt] = cpu[0] > 0.0 ? cpu[1] / cpu[0] : 1.0;
                nt++;
            }
            foolc__nn_dense_rowmajor = 0;
            double o = others_share(c0, cpu_now()), med[2], best[2];
            for (int v = 0; v < 2; v++) {
                qsort(tt[v], (size_t)nt, sizeof tt[v][0], cmp_double);
                med[v] = nt % 2 ? tt[v][nt / 2] : 0.5 * (tt[v][nt / 2 - 1] + tt[v][nt / 2]);
                best[v] = tt[v][0];
            }
            qsort(ratio, (size_t)nt, sizeof ratio[0], cmp_double);
            double rm = nt % 2 ? ratio[nt / 2] : 0.5 * (ratio[nt / 2 - 1] + ratio[nt / 2]);
            qsort(cratio, (size_t)nt, sizeof cratio[0], cmp_double);
            double cm = nt % 2 ? cratio[nt / 2] : 0.5 * (cratio[nt / 2 - 1] + cratio[nt / 2]);
            printf("%-4s %-7s %6d %11.1f %11.1f %11.1f %11.1f %7.3f %7.3f %6d %6.0f%%\n", name,
                   pass ? "fwd+dx" : "fwd", (int)batches[i], batches[i] / med[0],
                   batches[i] / med[1], batches[i] / best[0], batches[i] / best[1], rm, cm, nt,
                   100.0 * o);
            fflush(stdout);
        }
    free(x);
    free(dx);
    free(logits);
    foolc_net_free(net);
}

/* The practical peak: the best of reps square sgemms of size n (2 n^3 FLOPs each). */
static double sgemm_peak(int n, int reps, double *others)
{
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(sizeof(float) * nn), *b = malloc(sizeof(float) * nn),
          *c = malloc(sizeof(float) * nn);
    if (!a || !b || !c) die("malloc", FOOLC_E_NOMEM);
    uint64_t s = 12345;
    fill_uniform(a, nn, &s);
    fill_uniform(b, nn, &s);
    double best = 1e30;
    cpu_snap c0 = cpu_now();
    for (int r = 0; r < reps + 1; r++) { /* the first is a warm-up */
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                    0.0f, c, n);
        t = now() - t;
        if (r > 0 && t < best) best = t;
    }
    *others = others_share(c0, cpu_now());
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)n * (double)n * (double)n / best * 1e-9;
}

static const char *env_or(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : "unset";
}

static int parse_list(const char *s, int32_t *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 1 << 20) return -1;
        out[n++] = (int32_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_net [-t SECONDS] [-b 1,16,128,1024] [-n cnn,mlp] [-T TRAIN_BATCH]\n"
            "                 [-s SGEMM_N] [--reference | --invariance]\n"
            "  -t  minimum seconds per point (default 0.5, or $FOOLC_BENCH_TIME)\n"
            "  -b  batch sizes; -n nets; -T training batch (default 128)\n"
            "  -s  size of the square sgemm that sets the peak (default 2048)\n"
            "  --reference  time the plain-C reference backend instead of oneDNN/OpenBLAS\n"
            "  --invariance  the batch-invariant dense products against the old ones,\n"
            "                forward and forward + dx, trials interleaved, and their ratio\n"
            "Thread counts come from OMP_NUM_THREADS (oneDNN) and OPENBLAS_NUM_THREADS.\n");
}

int main(int argc, char **argv)
{
    double min_time = 0.5;
    int32_t batches[MAX_BATCHES] = { 1, 16, 128, 1024 };
    int nb = 4, reference = 0, invariance = 0, sgemm_n = 2048;
    int32_t train_batch = 128;
    const char *nets = "cnn,mlp";
    const char *e = getenv("FOOLC_BENCH_TIME");
    if (e && *e) min_time = atof(e);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-t") && v) { min_time = atof(v); i++; }
        else if (!strcmp(a, "-b") && v) {
            if ((nb = parse_list(v, batches, MAX_BATCHES)) <= 0) { usage(); return 2; }
            i++;
        } else if (!strcmp(a, "-n") && v) { nets = v; i++; }
        else if (!strcmp(a, "-T") && v) { train_batch = (int32_t)atoi(v); i++; }
        else if (!strcmp(a, "-s") && v) { sgemm_n = atoi(v); i++; }
        else if (!strcmp(a, "--reference")) reference = 1;
        else if (!strcmp(a, "--invariance")) invariance = 1;
        else { usage(); return !strcmp(a, "-h") || !strcmp(a, "--help") ? 0 : 2; }
    }
    if (!(min_time > 0.0) || train_batch < 1 || sgemm_n < 64) { usage(); return 2; }

    double rss[2] = { 0, 0 };
    const char *names[2] = { "cnn", "mlp" }, *archs[2] = { foolc_net_preset("cnn"), foolc_net_preset("mlp") };
    if (invariance) {
        printf("libfoolc bench_net --invariance: img/s of the old (batch-dependent) and the "
               "batch-invariant dense products,\nmedian and best trial, >= %.2f s per point "
               "each, trials interleaved; ratio = median of new time / old time (wall clock;\n"
               "cpu: this process's CPU time, steadier on a loaded machine)\n",
               min_time);
        printf("threads: OMP_NUM_THREADS=%s OPENBLAS_NUM_THREADS=%s OMP_WAIT_POLICY=%s\n\n",
               env_or("OMP_NUM_THREADS"), env_or("OPENBLAS_NUM_THREADS"),
               env_or("OMP_WAIT_POLICY"));
        printf("%-4s %-7s %6s %11s %11s %11s %11s %7s %7s %6s %7s\n", "net", "pass", "batch",
               "old img/s", "new img/s", "old best", "new best", "ratio", "cpu", "trials",
               "others");
        for (int i = 0; i < 2; i++)
            if (strstr(nets, names[i]))
                bench_invariance(names[i], archs[i], batches, nb, min_time);
        return 0;
    }
    for (int i = 0; i < 2; i++)
        if (strstr(nets, names[i]))
            bench_net(names[i], archs[i], batches, nb, train_batch, min_time, reference,
                      &rss[i]);
    double rss_nets = peak_rss_mib();
    fprintf(stderr, "bench_net: sgemm %d^3\n", sgemm_n);
    double peak_others = 0.0, peak = sgemm_peak(sgemm_n, 5, &peak_others);

    printf("libfoolc bench_net: %s backend; median of >= %d trials and >= %.2f s per point\n",
           reference ? "reference" : "fast", MIN_TRIALS, min_time);
    printf("threads: OMP_NUM_THREADS=%s OPENBLAS_NUM_THREADS=%s OMP_WAIT_POLICY=%s "
           "OPENBLAS_THREAD_TIMEOUT=%s; OpenBLAS %d threads, core %s\n",
           env_or("OMP_NUM_THREADS"), env_or("OPENBLAS_NUM_THREADS"),
           env_or("OMP_WAIT_POLICY"), env_or("OPENBLAS_THREAD_TIMEOUT"),
           openblas_get_num_threads(), openblas_get_corename());
    printf("peak: cblas_sgemm %d^3 = %.1f GFLOP/s (best of 5; others %.0f%%)\n", sgemm_n,
           peak, 100.0 * peak_others);
    printf("others: share of the machine's CPUs that other processes used during the point "
           "(/proc/stat)\n\n");
    printf("%-4s %-7s %6s %10s %11s %11s %8s %7s %7s\n", "net", "pass", "batch", "ms/call",
           "img/s", "best img/s", "GFLOP/s", "%peak", "others");
    for (int i = 0; i < g_nrows; i++) {
        const row *r = &g_rows[i];
        double ips = r->batch / r->sec_per_call;
        double gf = r->flop_per_image * ips * 1e-9;
        printf("%-4s %-7s %6d %10.3f %11.1f %11.1f %8.2f %6.1f%% %6.0f%%\n", r->net,
               r->pass, (int)r->batch, r->sec_per_call * 1e3, ips, r->batch / r->best_per_call,
               gf, 100.0 * gf / peak, 100.0 * r->others);
    }
    printf("\npeak RSS (getrusage):");
    for (int i = 0; i < 2; i++)
        if (rss[i] > 0.0) printf(" %.1f MiB after %s,", rss[i], names[i]);
    printf(" %.1f MiB at the end (before the sgemm buffers)\n", rss_nets);
    return 0;
}
