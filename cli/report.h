/* foolc report: a view of the evaluation's results (include/foolc/eval.h) and the writers
 * of its outputs (text table, JSON, CSV, SVG plot, PNG grid); the command itself, which
 * foolc-mpi runs too. */
#ifndef FOOLC_CLI_REPORT_H
#define FOOLC_CLI_REPORT_H

#include "cli.h"

#define REP_MAX_ATTACKS 64
#define NC FOOLC_NORM_COUNT
#define REP_MAX_GRID 16

/* A view of one attack's results in the evaluation (include/foolc/eval.h). */
typedef struct rep_att {
    const char *name;
    foolc_norm norm;
    unsigned needs;
    const float *dist;        /* n x NC: every norm of the returned point; inf on failure */
    const uint8_t *ok;        /* verified adversarial found */
    const int32_t *adv;       /* the model's label of the returned point */
    const foolc_counts *q;    /* images per sample */
    const float *xadv;        /* n x d */
    const uint8_t *done;      /* per sample: result present (run now or read from --resume) */
    double seconds;           /* wall seconds, summed over chunks */
    foolc_status st;          /* first error of a chunk, else FOOLC_OK */
} rep_att;

/* What the writers print: the evaluation and a view of it. */
typedef struct rep {
    foolc_eval *ev;
    const char *model, *data, *set; /* set: --set, or NULL */
    int32_t n, total, correct;
    int all, no_time;
    long seed;
    foolc_shape s;        /* n = 1 */
    size_t d;
    float lo, hi;
    const float *x;       /* n x d */
    const int32_t *y;
    int32_t *index;       /* the samples' indices in the test split (their ids) */
    int n_att;
    rep_att at[REP_MAX_ATTACKS];
    int norms[NC];        /* norms reported (those of the attacks, or --norm) */
    const float *best;    /* n x NC: smallest distance in each norm over all attacks */
    const int32_t *best_by; /* n x NC: attack index, -1 when none succeeded */
    double clean_acc;     /* over the whole split */
    int grad_checked;     /* gradient check done (the model offers gradients) */
    int32_t grad_zero, grad_nonfinite;
    const double *cert;   /* --certify: n x 3 certified radii (linf, l2, l1; NaN where not
                             computed), else NULL */
    const char *cert_method;
} rep;

/* Fills r's view from r->ev (after the run). */
void rep_view(rep *r);
/* The figures of attack t (or FOOLC_EVAL_BEST) in norm p, from the evaluation. */
double rep_robust(const rep *r, int t, int p, double eps);
int rep_grid(const rep *r, int p, double *eps);
double rep_quantile(const rep *r, int t, int p, double q);
double rep_mean(const rep *r, int t, int p);
/* Diagnostics as text lines ("WARN ..." / "ok ..."); returns the number of lines. */
int rep_diagnostics(const rep *r, char lines[][320], int max);

/* --certify: the certified radius of sample i in norm p (NaN when none), and the check
 * that none is above a found adversarial's distance beyond float tolerance (each such
 * sample named on stderr with the norm and both numbers; returns how many). */
double rep_cert(const rep *r, int32_t i, int p);
int rep_cert_check(const rep *r);

/* The writers; a path "-" is standard output (not for the PNG). */
void rep_text(const rep *r, FILE *f);
int rep_json(const rep *r, const char *path);
int rep_csv(const rep *r, const char *path);
int rep_svg(const rep *r, const char *path);
/* Up to count examples of the best adversarial in norm p, captioned; with none, an image
 * that says so and a warning on stderr (still 0). */
int rep_png(const rep *r, const char *path, int count, foolc_norm p);

/* --- The command, shared by foolc report and foolc-mpi (mpi/foolc_mpi.c). */
typedef struct report_ctx report_ctx;
/* Who runs the chunks. The default (no runner) runs them here, in order, with progress. A
 * runner's run is called once the evaluation is set up (on rank 0: after the samples were
 * picked, --resume read and the gradient check) and returns 0 or an exit code (its message
 * printed). On a worker, which writes nothing and opens no resume file, run is called once
 * the model, the test split and the attacks are loaded, before any sample is picked: it gets
 * rank 0's sample ids and gives them to report_worker_samples. */
typedef struct report_runner {
    int worker;
    int (*run)(void *user, report_ctx *c);
    void *user;
} report_runner;
/* foolc report with the chunks run by runner (NULL: in this process). */
int report_main(int argc, char **argv, const report_runner *runner);
/* For a runner: the evaluation, the options' --quiet, whether a signal arrived, the exit
 * code of an evaluation error. */
foolc_eval *report_eval(report_ctx *c);
int report_quiet(const report_ctx *c);
int report_signalled(void);
int report_fail(const char *what, foolc_status st);
/* A worker's samples: the test images of these ids (rank 0's foolc_eval_ids, in order),
 * with no labelling of the split; the training split is loaded (--pool) only when an attack
 * may take starting points; then the evaluation is started. 0 or an exit code (its message
 * printed). */
int report_worker_samples(report_ctx *c, const uint64_t *ids, int32_t n);

#endif
