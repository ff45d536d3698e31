/* The evaluation's internals, shared by eval.c (set-up, running, figures) and record.c (the
 * chunk records and the resume file). */
#ifndef FOOLC_EVAL_IMPL_H
#define FOOLC_EVAL_IMPL_H

#include "internal.h"

#include <stdio.h>

#define NC FOOLC_NORM_COUNT
#define EVAL_MAX_DIAG (2 * NC + 2)
#define EVAL_MSG 320

/* A task: an attack (step == 0) or a step; one row of the chunk grid. */
typedef struct eval_task {
    char *name;
    int step;
    /* attack */
    foolc_attack *att;
    foolc_norm norm;
    unsigned needs;
    int rank;             /* cost class: cheap attacks first */
    float *dist;          /* n x NC: every norm of the returned point; inf on failure */
    uint8_t *ok;          /* verified adversarial found */
    int32_t *adv;         /* the model's label of the returned point */
    foolc_counts *q;      /* images per sample */
    float *xadv;          /* n x d, or NULL when not kept */
    /* step */
    int32_t ncols;
    char **cols;
    double *val;          /* n x ncols */
    foolc_eval_step_fn fn;
    void *user;
    /* both */
    uint8_t *done;        /* per sample */
    double seconds;
    foolc_status st;      /* first error of a chunk, else FOOLC_OK */
    char *msg;            /* its message */
} eval_task;

/* A recorded chunk's status and wall seconds (its "c" line). */
typedef struct eval_chunk_meta {
    int st;
    double sec;
} eval_chunk_meta;

struct foolc_eval {
    foolc_eval_opts o;
    foolc_model *model;
    foolc_shape s;        /* n = 1 */
    size_t d;
    int32_t n_classes;
    float lo, hi;
    int n_task, n_att, cap_task;
    eval_task *t;
    int frozen;           /* a chunk ran or was loaded: no more attacks or samples */
    /* the samples */
    int32_t n, total, correct;
    int all;
    double clean_acc;
    float *x;
    int32_t *y;
    uint64_t *ids;
    const float *pool_x;
    const int32_t *pool_y;
    int32_t pool_n;
    /* the chunk grid: per_task chunks per task; state per chunk */
    int32_t per_task;
    uint8_t *cdone;
    eval_chunk_meta *meta;
    int32_t *order;       /* chunks in the order recorded */
    int32_t n_order;
    /* figures */
    float *best;
    int32_t *best_by;
    int best_stale;       /* results changed since best was computed */
    int grad_checked, grad_done;
    int32_t grad_zero, grad_nonfinite;
    char diag[EVAL_MAX_DIAG][EVAL_MSG];
    int diag_warn[EVAL_MAX_DIAG];
    /* callbacks */
    foolc_progress_fn progress;
    void *progress_user;
    foolc_eval_chunk_fn hook;
    void *hook_user;
    /* the resume file */
    FILE *resume;
};

/* Allocates the per-sample arrays and the chunk grid once the samples are known. */
foolc_status foolc__eval_freeze(foolc_eval *ev);
/* Marks chunk c recorded (in order, calls the hook; appends it to the resume file). */
foolc_status foolc__eval_recorded(foolc_eval *ev, int32_t c, int newly);
/* Writes chunk c's record to f. */
void foolc__eval_write_chunk(FILE *f, const foolc_eval *ev, int32_t c);
/* The task and sample range of chunk c. */
void foolc__eval_chunk_range(const foolc_eval *ev, int32_t c, int *t, int32_t *b, int32_t *m);

#endif
