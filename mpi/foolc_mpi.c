/* foolc-mpi: `foolc report` spread over MPI ranks (docs/scale.md).
 *   mpirun -np K foolc-mpi report --model M.npz [the options of foolc report]
 * Every rank loads the model, the test split and the attacks. Rank 0 alone picks the samples
 * (labelling the whole split), reads the resume file and checks the gradients; each worker
 * then gets the picked sample ids from it and takes those images of its test split (the
 * same evaluation, without the labelling; the training split only when an attack may take
 * starting points). Rank 0 then hands out chunks one at a time to the workers as
 * they ask (one sample can cost 100x another) and records the chunk each worker returns (the
 * resume record format, include/foolc/eval.h: foolc_eval_chunk_save / _load), appending it
 * to --resume; it alone writes the report and its files, the same bytes as a single process
 * (--no-time). A chunk that needs others first (warm starts: foolc_eval_chunk_needs) is
 * handed out once they are recorded, preceded by their records (TAG_RECORD) where the
 * worker lacks them; a worker with nothing ready waits. With K = 1 it is foolc report.
 * Rank 0 computes nothing itself: run one rank
 * more than the cores (it sleeps while it waits).
 * Errors: a worker that cannot set up (a bad model file...) or whose evaluation fails sends
 * its message to rank 0, which prints it, stops every worker and exits non-zero. A rank that
 * dies takes the job down (mpirun); --resume then redoes the chunks that were in flight.
 * libfoolc knows nothing of MPI: this program is the CLI's report plus this file. */
#include "report.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { TAG_READY = 1, TAG_ERR, TAG_RESULT, TAG_ASSIGN, TAG_STOP, TAG_SAMPLES, TAG_RECORD };

/* Waits for a message (any tag) from source, sleeping between polls: a blocking receive in
 * OpenMPI spins, and a spinning rank steals the core a worker needs. */
static void wait_msg(int source, MPI_Status *st)
{
    int flag = 0;
    long ns = 20000;
    for (;;) {
        MPI_Iprobe(source, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, st);
        if (flag) return;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
        if (ns < 2000000) ns += ns / 4; /* up to 2 ms */
    }
}

/* This thread's CPU seconds (rank 0's own cost, whatever else the machine runs). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Receives the message probed in st (payload malloc'd, NUL-terminated; *len its bytes). */
static char *recv_msg(const MPI_Status *st, int *len)
{
    int n = 0;
    MPI_Get_count(st, MPI_CHAR, &n);
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fprintf(stderr, "foolc-mpi: out of memory receiving %d bytes\n", n);
        MPI_Abort(MPI_COMM_WORLD, CLI_FAIL);
        exit(CLI_FAIL);   /* MPI_Abort does not return; the compiler cannot know */
    }
    MPI_Recv(buf, n, MPI_CHAR, st->MPI_SOURCE, st->MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* An error message for rank 0: "<exit code> <text>". */
static void send_err(int rc, const char *text)
{
    size_t len = strlen(text) + 16;
    char *m = malloc(len);
    if (!m) {
        MPI_Abort(MPI_COMM_WORLD, CLI_FAIL);
        exit(CLI_FAIL);   /* MPI_Abort does not return; the compiler cannot know */
    }
    snprintf(m, len, "%d %s", rc, text);
    MPI_Send(m, (int)strlen(m), MPI_CHAR, 0, TAG_ERR, MPI_COMM_WORLD);
    free(m);
}

/* A worker after an error or at the end: waits for rank 0's stop. */
static void wait_stop(void)
{
    for (;;) {
        MPI_Status st;
        wait_msg(0, &st);
        int len;
        free(recv_msg(&st, &len));
        if (st.MPI_TAG == TAG_STOP) return;
    }
}

typedef struct mpi_ctx {
    int rank, size;
    double cpu0;      /* the process's CPU seconds when report_main was called */
    int entered;      /* the runner was called */
    int saved_stderr; /* a worker's stderr while it sets up (its messages are captured) */
    FILE *captured;
} mpi_ctx;

/* The process's CPU seconds (the set-up's cost: FOOLC_MPI_TIMING). */
static double cpu_process(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* With FOOLC_MPI_TIMING set (non-empty, not 0): the CPU seconds of this rank's set-up, from
 * report_main's start to its first chunk (docs/scale.md). */
static void print_setup(const mpi_ctx *m)
{
    const char *e = getenv("FOOLC_MPI_TIMING");
    if (e && *e && strcmp(e, "0"))
        fprintf(stderr, "foolc-mpi: rank %d: set-up %.3f s CPU\n", m->rank,
                cpu_process() - m->cpu0);
}

/* A worker's stderr goes to a file while it sets up: a failure is sent to rank 0, which
 * prints it once (else every rank would print the same message). */
static void capture_stderr(mpi_ctx *m)
{
    fflush(stderr);
    m->captured = tmpfile();
    m->saved_stderr = m->captured ? dup(2) : -1;
    if (m->saved_stderr >= 0) dup2(fileno(m->captured), 2);
}

/* Restores stderr; returns what was captured (malloc'd) or NULL. */
static char *release_stderr(mpi_ctx *m)
{
    if (m->saved_stderr < 0) return NULL;
    fflush(stderr);
    dup2(m->saved_stderr, 2);
    close(m->saved_stderr);
    m->saved_stderr = -1;
    long n = ftell(m->captured);
    char *text = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (text) {
        rewind(m->captured);
        size_t got = fread(text, 1, (size_t)n, m->captured);
        text[got] = '\0';
        while (got && text[got - 1] == '\n') text[--got] = '\0';
    }
    fclose(m->captured);
    m->captured = NULL;
    return text;
}

/* A worker, its model, test split and attacks loaded: asks rank 0 for the sample ids (the
 * first TAG_READY; the answer is TAG_SAMPLES, or a stop), takes those samples, then says it
 * is ready (a second TAG_READY) and runs each chunk assigned and returns its record, until
 * stopped. A failure to set up returns its exit code with stderr still captured: main sends
 * the message to rank 0. */
static int worker_run(void *user, report_ctx *c)
{
    mpi_ctx *m = user;
    MPI_Send(NULL, 0, MPI_CHAR, 0, TAG_READY, MPI_COMM_WORLD);
    MPI_Status st0;
    wait_msg(0, &st0);
    int len0;
    char *ids_text = recv_msg(&st0, &len0);
    if (st0.MPI_TAG == TAG_STOP) {
        free(ids_text);
        m->entered = 1;
        free(release_stderr(m));
        return 0;
    }
    int32_t nid = 0;
    for (const char *p = ids_text; *p; p++) nid += *p == ' ';
    uint64_t *ids = malloc(((size_t)nid + 1) * sizeof *ids);
    if (!ids) {
        free(ids_text);
        return report_fail("foolc-mpi", FOOLC_E_NOMEM);
    }
    nid = 0;
    for (char *p = ids_text, *end; *p; p = end) { /* "id id ... id " */
        ids[nid] = strtoull(p, &end, 10);
        if (end == p || *end != ' ') break;
        nid++;
        end++;
    }
    free(ids_text);
    int src = report_worker_samples(c, ids, nid);
    free(ids);
    if (src) return src;
    m->entered = 1;
    free(release_stderr(m));
    print_setup(m);
    foolc_eval *ev = report_eval(c);
    MPI_Send(NULL, 0, MPI_CHAR, 0, TAG_READY, MPI_COMM_WORLD);
    for (;;) {
        MPI_Status st;
        wait_msg(0, &st);
        int len;
        char *msg = recv_msg(&st, &len);
        if (st.MPI_TAG == TAG_RECORD) { /* a chunk the next one needs (warm starts) */
            foolc_status ls = foolc_eval_chunk_load(ev, msg, (size_t)len, 0, NULL);
            free(msg);
            if (ls < 0) {
                char text[600];
                snprintf(text, sizeof text, "loading a needed chunk: %s: %s",
                         foolc_status_str(ls), foolc_errmsg());
                send_err(CLI_FAIL, text);
                wait_stop();
                return CLI_FAIL;
            }
            continue;
        }
        int chunk = atoi(msg);
        free(msg);
        if (st.MPI_TAG == TAG_STOP) return 0;
        int32_t task, b, n;
        int done = 0;
        foolc_status rs = foolc_eval_run_chunk(ev, chunk);
        if (foolc_eval_chunk_info(ev, chunk, &task, &b, &n, &done) < 0 || !done) {
            char text[600];
            int rc = report_signalled() ? 130 : CLI_FAIL;
            snprintf(text, sizeof text, "chunk %d: %s: %s", chunk, foolc_status_str(rs),
                     foolc_errmsg());
            send_err(rc, text);
            wait_stop();
            return rc;
        }
        if (rs < 0)
            fprintf(stderr, "foolc report: attack %s, samples %d-%d: %s: %s (results found "
                    "so far are kept)\n", foolc_eval_attack_name(ev, task), b, b + n - 1,
                    foolc_status_str(rs), foolc_errmsg());
        char *text;
        size_t tlen;
        foolc_status ss = foolc_eval_chunk_save(ev, chunk, &text, &tlen);
        if (ss < 0 || tlen > (size_t)0x7fffffff) {
            char e[600];
            snprintf(e, sizeof e, "chunk %d: saving its record: %s: %s", chunk,
                     foolc_status_str(ss), foolc_errmsg());
            if (ss >= 0) foolc_free(text);
            send_err(CLI_FAIL, e);
            wait_stop();
            return CLI_FAIL;
        }
        MPI_Send(text, (int)tlen, MPI_CHAR, 0, TAG_RESULT, MPI_COMM_WORLD);
        foolc_free(text);
    }
}

/* The first chunk from `from` on that is neither recorded nor in flight and whose needs
 * are recorded: *ready gets it (-1: none ready); returns whether any chunk is left to hand
 * out at all. */
static int next_chunk(foolc_eval *ev, int32_t nc, int32_t from, const int *flight, int size,
                      int32_t *needs, int32_t *ready)
{
    int left = 0;
    *ready = -1;
    for (int32_t k = from; k < nc; k++) {
        int d = 1, busy = 0;
        if (foolc_eval_chunk_info(ev, k, NULL, NULL, NULL, &d) < 0 || d) continue;
        for (int w = 0; w < size; w++) busy |= flight[w] == k;
        if (busy) continue;
        left = 1;
        int32_t nn = foolc_eval_chunk_needs(ev, k, needs, nc), ok = 1;
        for (int32_t j = 0; j < nn && ok; j++)
            if (foolc_eval_chunk_info(ev, needs[j], NULL, NULL, NULL, &ok) < 0) ok = 0;
        if (ok) {
            *ready = k;
            return 1;
        }
    }
    return left;
}

/* Sends worker w the records of the chunks chunk k needs that it lacks (has: nc flags per
 * worker), then k. Returns 0, or an exit code when a record cannot be saved. */
static int assign(foolc_eval *ev, int w, int32_t k, int32_t nc, int32_t *needs, char *has)
{
    int32_t nn = foolc_eval_chunk_needs(ev, k, needs, nc);
    for (int32_t j = 0; j < nn; j++) {
        char *w_has = has + (size_t)w * (size_t)nc + (size_t)needs[j];
        if (*w_has) continue;
        char *text;
        size_t tlen;
        foolc_status ss = foolc_eval_chunk_save(ev, needs[j], &text, &tlen);
        if (ss < 0 || tlen > (size_t)0x7fffffff) {
            fprintf(stderr, "foolc-mpi: chunk %d: saving its record: %s: %s\n", needs[j],
                    foolc_status_str(ss), foolc_errmsg());
            if (ss >= 0) foolc_free(text);
            return CLI_FAIL;
        }
        MPI_Send(text, (int)tlen, MPI_CHAR, w, TAG_RECORD, MPI_COMM_WORLD);
        foolc_free(text);
        *w_has = 1;
    }
    char num[16];
    snprintf(num, sizeof num, "%d", k);
    MPI_Send(num, (int)strlen(num), MPI_CHAR, w, TAG_ASSIGN, MPI_COMM_WORLD);
    return 0;
}

/* Rank 0: hands out the chunks not recorded, in order, to whichever worker asks; records
 * the results. Stops handing out at the first worker error (or a signal) and ends once
 * every worker has been stopped. */
static int master_run(void *user, report_ctx *c)
{
    mpi_ctx *m = user;
    m->entered = 1;
    print_setup(m);
    foolc_eval *ev = report_eval(c);
    int32_t nc = foolc_eval_chunk_count(ev), next = 0, todo = 0, got = 0;
    int *flight = malloc((size_t)m->size * sizeof *flight);
    char *given = calloc((size_t)m->size, 2); /* the worker has its samples; waits */
    char *has = calloc((size_t)m->size * (size_t)nc + 1, 1); /* chunks each worker holds */
    int32_t *needs = malloc(((size_t)nc + 1) * sizeof *needs);
    /* the samples' ids, "id id ... id ", for each worker's first message */
    int32_t ns = foolc_eval_samples(ev);
    const uint64_t *sid = foolc_eval_ids(ev);
    size_t cap = (size_t)ns * 21 + 1, used = 0;
    char *ids = malloc(cap);
    if (!flight || !given || !ids || !has || !needs) {
        free(flight);
        free(given);
        free(ids);
        free(has);
        free(needs);
        return report_fail("foolc-mpi", FOOLC_E_NOMEM);
    }
    ids[0] = '\0';
    for (int32_t i = 0; i < ns; i++)
        used += (size_t)snprintf(ids + used, cap - used, "%llu ", (unsigned long long)sid[i]);
    if (used > 0x7fffffff) used = 0; /* never: 2^31 bytes of ids */
    for (int w = 0; w < m->size; w++) flight[w] = -1;
    for (int32_t k = 0; k < nc; k++) {
        int d = 0;
        if (foolc_eval_chunk_info(ev, k, NULL, NULL, NULL, &d) >= 0) todo += !d;
    }
    int stopped = 0, rc = 0, quiet = report_quiet(c);
    double busy = 0, cpu = 0; /* rank 0's own work: receiving, checking, recording, replying */
    long long bytes = 0, samples = 0;
    if (!quiet)
        fprintf(stderr, "foolc-mpi: %d chunks to run on %d workers\n", todo, m->size - 1);
    while (stopped < m->size - 1) {
        MPI_Status st;
        wait_msg(MPI_ANY_SOURCE, &st);
        int w = st.MPI_SOURCE, len;
        double t0 = MPI_Wtime(), c0 = cpu_now();
        char *msg = recv_msg(&st, &len);
        if (st.MPI_TAG == TAG_RESULT) {
            int32_t chunk = -1, cnt = 0;
            foolc_status ls = foolc_eval_chunk_load(ev, msg, (size_t)len, 0, &chunk);
            if (ls >= 0 && foolc_eval_chunk_info(ev, chunk, NULL, NULL, &cnt, NULL) >= 0)
                samples += cnt;
            bytes += len;
            if (ls < 0 || chunk != flight[w]) {
                fprintf(stderr, "foolc-mpi: the record of chunk %d from rank %d: %s: %s\n",
                        flight[w], w, foolc_status_str(ls < 0 ? ls : FOOLC_E_INTERNAL),
                        ls < 0 ? foolc_errmsg() : "another chunk than the one handed out");
                if (!rc) rc = ls == FOOLC_E_IO ? CLI_INPUT : CLI_FAIL;
            }
            if (flight[w] >= 0) has[(size_t)w * (size_t)nc + (size_t)flight[w]] = 1;
            flight[w] = -1;
            got++;
            if (!quiet) fprintf(stderr, "foolc-mpi: %d of %d chunks\n", got, todo);
        } else if (st.MPI_TAG == TAG_ERR) {
            int wrc = atoi(msg);
            const char *text = strchr(msg, ' ');
            fprintf(stderr, "foolc-mpi: rank %d failed (exit status %d): %s\n", w, wrc,
                    text ? text + 1 : "");
            if (!rc) rc = wrc ? wrc : CLI_FAIL;
            flight[w] = -1;
        }
        free(msg);
        while (next < nc) {
            int d = 1;
            if (foolc_eval_chunk_info(ev, next, NULL, NULL, NULL, &d) >= 0 && !d) break;
            next++;
        }
        int32_t ready;
        int left = next_chunk(ev, nc, next, flight, m->size, needs, &ready);
        char *waits = given + m->size;
        if (st.MPI_TAG == TAG_READY && !given[w] && !rc && !report_signalled() && left) {
            MPI_Send(ids, (int)used, MPI_CHAR, w, TAG_SAMPLES, MPI_COMM_WORLD);
            given[w] = 1;
        } else if (rc || report_signalled() || !left || st.MPI_TAG == TAG_ERR) {
            MPI_Send(NULL, 0, MPI_CHAR, w, TAG_STOP, MPI_COMM_WORLD);
            stopped++;
        } else if (ready < 0) {
            waits[w] = 1; /* nothing ready: answered when a chunk it may need arrives */
        } else {
            int arc = assign(ev, w, ready, nc, needs, has);
            if (arc && !rc) rc = arc;
            flight[w] = arc ? -1 : ready;
            if (arc) {
                MPI_Send(NULL, 0, MPI_CHAR, w, TAG_STOP, MPI_COMM_WORLD);
                stopped++;
            }
        }
        /* The waiting workers: a chunk may be ready now, or there is nothing left. */
        for (int v = 1; v < m->size; v++) {
            if (!waits[v]) continue;
            left = next_chunk(ev, nc, next, flight, m->size, needs, &ready);
            if (rc || report_signalled() || !left) {
                MPI_Send(NULL, 0, MPI_CHAR, v, TAG_STOP, MPI_COMM_WORLD);
                stopped++;
                waits[v] = 0;
            } else if (ready >= 0) {
                int arc = assign(ev, v, ready, nc, needs, has);
                if (arc && !rc) rc = arc;
                flight[v] = arc ? -1 : ready;
                waits[v] = 0;
                if (arc) {
                    MPI_Send(NULL, 0, MPI_CHAR, v, TAG_STOP, MPI_COMM_WORLD);
                    stopped++;
                }
            }
        }
        busy += MPI_Wtime() - t0;
        cpu += cpu_now() - c0;
    }
    free(flight);
    free(given);
    free(ids);
    free(has);
    free(needs);
    /* rank 0's cost per sample record (docs/scale.md): wall time of its own work and the
     * bytes it received, per sample of the chunks recorded */
    if (!quiet && samples)
        fprintf(stderr, "foolc-mpi: rank 0: %lld sample records, %.1f bytes, %.1f us wall and "
                "%.1f us CPU each (receive, check, record, reply)\n", samples,
                (double)bytes / samples, 1e6 * busy / samples, 1e6 * cpu / samples);
    return rc;
}

/* Rank 0 when it could not set up: every worker's first message answered with a stop. */
static void drain(const mpi_ctx *m)
{
    for (int k = 1; k < m->size; k++) {
        MPI_Status st;
        wait_msg(MPI_ANY_SOURCE, &st);
        int len;
        free(recv_msg(&st, &len));
        MPI_Send(NULL, 0, MPI_CHAR, st.MPI_SOURCE, TAG_STOP, MPI_COMM_WORLD);
    }
}

static void usage(void)
{
    printf("usage: mpirun -np K foolc-mpi report --model M.npz [options of foolc report]\n"
           "  rank 0 hands out the chunks (--batch samples of one attack) to ranks 1..K-1\n"
           "  and alone writes the report, its files and --resume; the same bytes as\n"
           "  foolc report (with --no-time). K = 1 is foolc report. docs/scale.md.\n");
}

int main(int argc, char **argv)
{
    int help = argc < 2 || strcmp(argv[1], "report");
    for (int i = 1; i < argc; i++)
        help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    MPI_Init(&argc, &argv);
    mpi_ctx m = {0, 1, 0, 0, -1, NULL};
    MPI_Comm_rank(MPI_COMM_WORLD, &m.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &m.size);
    m.cpu0 = cpu_process();
    int rc = 0;
    if (help) { /* rank 0 prints the usage; no work */
        int report = argc >= 2 && !strcmp(argv[1], "report");
        if (m.rank == 0 && report) rc = report_main(argc - 1, argv + 1, NULL);
        else if (m.rank == 0) usage();
        if (!report) rc = argc >= 2 && !strcmp(argv[1], "--help") ? 0 : CLI_USAGE;
        if (m.rank) rc = 0;
    } else if (m.size == 1) {
        rc = report_main(argc - 1, argv + 1, NULL);
    } else if (m.rank == 0) {
        report_runner r = {0, master_run, &m};
        rc = report_main(argc - 1, argv + 1, &r);
        if (!m.entered) drain(&m);
    } else {
        report_runner r = {1, worker_run, &m};
        capture_stderr(&m);
        rc = report_main(argc - 1, argv + 1, &r);
        if (!m.entered) {
            char *text = release_stderr(&m);
            send_err(rc ? rc : CLI_FAIL, text && *text ? text : "could not set up");
            free(text);
            wait_stop();
        }
        rc = 0; /* rank 0 reports the job's status */
    }
    fflush(stdout);
    fflush(stderr);
    MPI_Finalize();
    return rc;
}
