/* foolc report: the results of a report run (per attack and per sample) and the writers
 * of its outputs (text table, JSON, CSV, SVG plot, PNG grid). */
#ifndef FOOLC_CLI_REPORT_H
#define FOOLC_CLI_REPORT_H

#include "cli.h"

#define REP_MAX_ATTACKS 64
#define NC FOOLC_NORM_COUNT
#define REP_MAX_GRID 16

typedef struct rep_att {
    const char *name;
    foolc_norm norm;
    unsigned needs;
    int rank;             /* cost class: cheap attacks run first */
    float *dist;          /* n x NC: every norm of the returned point; inf on failure */
    uint8_t *ok;          /* verified adversarial found */
    int32_t *adv;         /* the model's label of the returned point */
    foolc_counts *q;      /* images per sample */
    float *xadv;          /* n x d */
    uint8_t *done;        /* per sample: result present (run now or read from --resume) */
    double seconds;       /* wall seconds, summed over chunks */
    foolc_status st;      /* first error of a chunk, else FOOLC_OK */
} rep_att;

typedef struct rep {
    const char *model, *data, *set; /* set: --set, or NULL */
    int32_t n, total, correct, n_classes;
    int all, no_time;
    long seed;
    foolc_shape s;        /* n = 1 */
    size_t d;
    float lo, hi;
    float *x;             /* n x d */
    int32_t *y, *index;
    int n_att;
    rep_att at[REP_MAX_ATTACKS];
    int norms[NC];        /* norms reported (those of the attacks, or --norm) */
    float *best;          /* n x NC: smallest distance in each norm over all attacks */
    int *best_by;         /* n x NC: attack index, -1 when none succeeded */
    double clean_acc;     /* over the whole split */
    int grad_checked;     /* gradient check done (the model offers gradients) */
    int32_t grad_zero, grad_nonfinite;
} rep;

/* Robust accuracy at eps of the per-sample minima v[i * stride]. */
double rep_robust(const rep *r, const float *v, size_t stride, double eps);
/* The epsilon grid of norm p: 0 and nice steps up to the largest finite best-of-all
 * minimum (the SVG plot spans every attack's curve). */
int rep_grid(const rep *r, int p, double *eps);
/* Quantile q of the n values v[i * stride] (inf for failures), linear interpolation. */
double rep_quantile(const float *v, int32_t n, size_t stride, double q);
double rep_mean(const float *v, int32_t n, size_t stride);
/* Diagnostics as text lines ("WARN ..." / "ok ..."); returns the number of lines. */
int rep_diagnostics(const rep *r, char lines[][320], int max);

/* The writers; a path "-" is standard output (not for the PNG). */
void rep_text(const rep *r, FILE *f);
int rep_json(const rep *r, const char *path);
int rep_csv(const rep *r, const char *path);
int rep_svg(const rep *r, const char *path);
/* Up to count examples of the best adversarial in norm p, captioned; with none, an image
 * that says so and a warning on stderr (still 0). */
int rep_png(const rep *r, const char *path, int count, foolc_norm p);

/* --- The resume file (report_resume.c). A finished chunk: attack t, samples b..b+m-1. */
typedef struct rep_chunk {
    int t;
    int32_t b, m;
    int st;     /* the attack's status on the chunk when an error, else 0 */
    double sec; /* wall seconds */
} rep_chunk;

/* Opens path for this run (header: the line naming it, with its newline): reads and
 * checks the chunks done before into r (each record against r's images and the model),
 * cuts a torn tail off, locks the file and leaves it positioned for appending; a new or
 * empty file gets the header. 0, or the exit code with a message. */
int rep_resume_open(rep *r, foolc_model *model, const char *path, const char *header,
                    FILE **out);
/* Appends a finished chunk and flushes it to the disk. */
int rep_resume_append(FILE *f, const rep *r, const rep_chunk *c);
/* Creates path (never an existing file) holding the header and the n chunks; -1 with errno
 * set when it cannot. */
int rep_resume_write(const char *path, const char *header, const rep *r, const rep_chunk *c,
                     int n);

#endif
