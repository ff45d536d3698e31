/* Evaluations: a list of attacks (with their parameters) run over a set of samples in
 * chunks, as `foolc report` does. Per sample and attack: every norm of the point found, the
 * model's label of it, the images spent, the point itself; per sample and norm, the best of
 * all attacks and which attack found it; robust-accuracy curves, summary statistics and the
 * gradient-masking diagnostics. Each chunk's results can be saved as text and loaded again
 * (in this process or another: the resume format of docs/eval.md, with its integrity
 * checks), so a run can be resumed after a kill or spread over processes (foolc-mpi).
 *
 * A sample's random draws are keyed by (seed, its id), the id being its index in the data
 * set (foolc_eval_select) or the id given (foolc_eval_set_samples): its result does not
 * depend on the chunk it runs in. See docs/eval.md.
 *
 * Thread safety: an evaluation and its model are used by one thread at a time; two
 * evaluations on two models may run in two threads at once. */
#ifndef FOOLC_EVAL_H
#define FOOLC_EVAL_H

#include "attack.h"
#include "common.h"
#include "data.h"
#include "distance.h"
#include "oracle.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct foolc_eval foolc_eval;

/* Options of an evaluation, fixed when it is created. foolc_eval_defaults fills them. The
 * struct may grow at its end: foolc_eval_defaults and foolc_eval_new are macros that pass
 * its size (like foolc_net_train), and fields a caller's older struct lacks keep their
 * defaults. */
typedef struct foolc_eval_opts {
    uint64_t seed;      /* attack seed (default 0) */
    int32_t chunk;      /* samples per attack call, per saved chunk (default 25, >= 1) */
    int32_t grad_check; /* non-zero (default): check the clean input gradients once */
    uint64_t budget;    /* images per sample of a chunk (forward + decided); 0: none */
    uint32_t norms;     /* bit p: norm p is reported (diagnostics); 0 (default): the norms
                         * of the attacks */
    int32_t keep_x_adv; /* non-zero (default): keep every attack's points (n*c*h*w floats
                         * per attack); without them chunks cannot be saved */
    int32_t warm_start; /* non-zero (default): the Brendel-Bethge attacks (bb-*) start
                         * each sample from its best point so far in their norm, among
                         * the attacks before them
                         * (foolc_attack_set_sample_starts; docs/eval.md, "Warm starts");
                         * needs keep_x_adv. 0: every attack from its own start */
} foolc_eval_opts;

FOOLC_API FOOLC_WUR foolc_status foolc_eval_defaults_sized(foolc_eval_opts *o, size_t size);
#define foolc_eval_defaults(o) foolc_eval_defaults_sized((o), sizeof(foolc_eval_opts))

/* A new evaluation of model (borrowed: it must outlive the evaluation) with options o (NULL:
 * the defaults). FOOLC_E_INVALID for bad options, FOOLC_E_VERSION for a struct smaller than
 * any this library knows. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_new_sized(foolc_model *model,
                                                      const foolc_eval_opts *o,
                                                      size_t o_size, foolc_eval **out);
#define foolc_eval_new(model, o, out)                                                        \
    foolc_eval_new_sized((model), (o), sizeof(foolc_eval_opts), (out))
FOOLC_API void foolc_eval_free(foolc_eval *ev);

/* --- Setting up (before the first chunk runs or is loaded; FOOLC_E_INVALID after). */

/* Adds a registered attack. Attacks are kept cheap first (single-step and closed-form,
 * then iterative gradient attacks, then optimisers and decision-based attacks; in the order
 * added within a class): attack index t below refers to that order once all are added.
 * FOOLC_E_INVALID for an unknown name or one added twice. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_add_attack(foolc_eval *ev, const char *name);
/* Named attack sets, as comma-separated lists of registered attacks (NULL for an unknown
 * name; "all", every registered attack, is foolc_attack_count / foolc_attack_name):
 * "auto" (foolc report's default: the union of the four below), "auto-l0", "auto-l1",
 * "auto-l2", "auto-linf" (per norm the ensemble measured to reach 99.5 % of the best of
 * "all" at a fraction of its time: docs/eval.md, "The auto set", with its caveats), "quick" (fgsm,
 * deepfool-linf, pgd-linf, deepfool-l2, pgd-l2: the earlier default). Add each with
 * foolc_eval_add_attack; the evaluation orders them cheap first. */
FOOLC_API const char *foolc_eval_attack_set(const char *name);
/* The parameters a named set runs its attacks with, in foolc report's --set syntax
 * ("attack.key=value,...", "" for none; NULL for an unknown name): "auto" and "auto-l2"
 * run boundary with steps=10000. Set them (foolc_eval_set) on the set's attacks that were
 * added, before settings of your own, which then take precedence. */
FOOLC_API const char *foolc_eval_attack_set_params(const char *name);
/* Sets a parameter of an added attack from text (as foolc_attack_set_text: a number, or
 * one of the names of an enumerated parameter). Checked now. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_set(foolc_eval *ev, const char *attack,
                                                const char *key, const char *value);
/* Starting points offered to every attack (foolc_attack_set_starts; borrowed until the
 * evaluation is freed). */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_set_starts(foolc_eval *ev, const float *x,
                                                       const int32_t *y, int32_t n);

/* The samples, either given (copied): n images in the model's input shape, their true
 * labels, and their ids (NULL: 0 .. n-1); robust accuracy is then the fraction of these
 * samples left unbroken. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_set_samples(foolc_eval *ev, const float *x,
                                                        const int32_t *labels,
                                                        const uint64_t *ids, int32_t n);
/* Or picked from a data set: the model labels the whole set (its clean accuracy), and the
 * first n images it classifies correctly (all non-zero: the first n images) are copied,
 * each with its index in the set as its id. Robust accuracy is then a fraction of the whole
 * set (the clean accuracy times the fraction of samples left unbroken), or with all of the
 * first n. FOOLC_NOT_FOUND when the model classifies no image correctly. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_select(foolc_eval *ev, const foolc_data *d,
                                                   int32_t n, int all);

/* Progress of later runs: per chunk, done and total in samples of the call (one chunk for
 * foolc_eval_run_chunk, every pending chunk for foolc_eval_run). A non-zero return cancels:
 * the running chunk is dropped (not recorded) and the call returns FOOLC_E_CANCELLED. */
FOOLC_API void foolc_eval_set_progress(foolc_eval *ev, foolc_progress_fn fn, void *user);

/* --- Extension points (docs/eval.md, "Extending").
 * A step: a per-sample computation other than an attack that runs in chunks like one, after
 * the attacks, and fills ncols numbers per sample (named col_names[j]); its chunks are
 * saved, loaded and resumed like the attacks' (a "v" line per sample), so it spreads over
 * processes too. fn gets the chunk's samples (count images x in the model's shape, labels,
 * ids, their first index), the model and the evaluation (the results recorded so far in
 * this process), and writes out[i * ncols + j]; a negative status stops the chunk, which is
 * then recorded with the status and NaN columns (as an attack error is). */
typedef foolc_status (*foolc_eval_step_fn)(void *user, foolc_eval *ev, foolc_model *model,
                                           int32_t first, int32_t count, const float *x,
                                           const int32_t *labels, const uint64_t *ids,
                                           double *out);
FOOLC_API FOOLC_WUR foolc_status foolc_eval_add_step(foolc_eval *ev, const char *name,
                                                     int32_t ncols,
                                                     const char *const *col_names,
                                                     foolc_eval_step_fn fn, void *user);
/* A hook called after each chunk is recorded (run here or loaded), e.g. to print or to save
 * elsewhere; it must not run or load chunks itself. */
typedef void (*foolc_eval_chunk_fn)(void *user, foolc_eval *ev, int32_t chunk);
FOOLC_API void foolc_eval_set_chunk_hook(foolc_eval *ev, foolc_eval_chunk_fn fn, void *user);

/* Ends the set-up and allocates the results (every sample not done; x_adv = x): done by the
 * first chunk run or loaded, foolc_eval_resume, or here. FOOLC_E_INVALID without samples or
 * attacks. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_start(foolc_eval *ev);

/* --- Running. The work is a grid of chunks: task (attack 0 .. attacks-1, then the steps)
 * by samples first .. first + count - 1, chunk c = task * per_task + first / chunk size. */
FOOLC_API int32_t foolc_eval_chunk_count(const foolc_eval *ev);
/* Chunk c's task, first sample, sample count and whether it is recorded (any out pointer
 * may be NULL). FOOLC_E_INVALID out of range. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_chunk_info(const foolc_eval *ev, int32_t c,
                                                       int32_t *task, int32_t *first,
                                                       int32_t *count, int *done);
/* The chunks that must be recorded before chunk c runs (with warm starts, an attack that
 * takes them needs the earlier attacks' chunks of the same samples): writes up to cap of
 * them to needs (may be NULL with cap 0) and returns how many there are (0 for none or a
 * chunk out of range). foolc_eval_run_chunk refuses (FOOLC_E_INVALID) a chunk whose needs
 * are not all recorded; foolc_eval_run runs the chunks in an order that meets them. */
FOOLC_API int32_t foolc_eval_chunk_needs(const foolc_eval *ev, int32_t c, int32_t *needs,
                                         int32_t cap);
/* The check of the clean input gradients (a margin loss): how many samples have an
 * all-zero or a non-finite gradient. Skipped (not an error) when the model offers no
 * gradients. foolc_eval_run does it once when the options ask for it. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_grad_check(foolc_eval *ev);
/* Runs chunk c (again, when done: its results are replaced) and records it. Returns the
 * task's status on the chunk: FOOLC_OK, FOOLC_NOT_FOUND, or an error of the attack
 * (FOOLC_E_BUDGET, _ORACLE, ...: the results found are kept, the chunk is recorded with the
 * status, foolc_errmsg has the detail); FOOLC_E_CANCELLED (progress) or an error of the
 * evaluation itself leave the chunk unrecorded (foolc_eval_chunk_info tells). */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_run_chunk(foolc_eval *ev, int32_t c);
/* The gradient check (once, if asked), then every chunk not yet recorded, in order.
 * FOOLC_OK, FOOLC_NOT_FOUND (some sample unbroken by any attack), the first attack error
 * (every chunk still ran), or FOOLC_E_CANCELLED / an error of the evaluation (stopped). */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_run(foolc_eval *ev);

/* --- Saving and loading chunks (the resume format, docs/eval.md).
 * foolc_eval_chunk_save: recorded chunk c as text ("s"/"v" lines, then its "c" line),
 * malloc'd (release with foolc_free), len bytes plus a NUL.
 * foolc_eval_chunk_load: records the chunk held in text (len bytes) as if it had run here.
 * Each record is checked: its point inside the box, its distances recomputed from it, and
 * (check non-zero) the model's label of its point asked again; FOOLC_E_FORMAT with the line
 * in the message when malformed or refused. *chunk (may be NULL) gets its index. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_chunk_save(const foolc_eval *ev, int32_t c,
                                                       char **text, size_t *len);
FOOLC_API FOOLC_WUR foolc_status foolc_eval_chunk_load(foolc_eval *ev, const char *text,
                                                       size_t len, int check, int32_t *chunk);
/* A resume file: reads and checks (with the model) the chunks an earlier run recorded in
 * path, cuts off a torn tail, locks the file, and from then on appends (and syncs) every
 * chunk recorded. header: one line (no newline inside) naming what decides the results;
 * a file whose header differs is refused (FOOLC_E_INVALID naming the first field that
 * differs, as "key=value" fields separated by spaces; FOOLC_E_INVALID too when another
 * process holds the file). FOOLC_E_VERSION for another format, FOOLC_E_FORMAT for a
 * damaged record (the file is left as it was), FOOLC_E_IO. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_resume(foolc_eval *ev, const char *path,
                                                   const char *header);
/* Writes every chunk recorded so far, in the order recorded, to a new file (never over an
 * existing one: FOOLC_E_IO with errno EEXIST) that foolc_eval_resume continues. */
FOOLC_API FOOLC_WUR foolc_status foolc_eval_resume_write(const foolc_eval *ev,
                                                         const char *path,
                                                         const char *header);

/* --- Results. Pointers are owned by the evaluation, valid until it is freed; arrays have
 * one entry per sample (dist: FOOLC_NORM_COUNT per sample; x_adv: c*h*w floats). A
 * sample's entries mean something once its chunk is recorded (done). */
FOOLC_API int32_t foolc_eval_samples(const foolc_eval *ev);
FOOLC_API const float *foolc_eval_x(const foolc_eval *ev);
FOOLC_API const int32_t *foolc_eval_labels(const foolc_eval *ev);
FOOLC_API const uint64_t *foolc_eval_ids(const foolc_eval *ev);
/* The data set picked from (foolc_eval_select): its size and how many the model classifies
 * correctly; both n after foolc_eval_set_samples. */
FOOLC_API void foolc_eval_clean(const foolc_eval *ev, int32_t *total, int32_t *correct);
FOOLC_API int32_t foolc_eval_attacks(const foolc_eval *ev);
FOOLC_API const char *foolc_eval_attack_name(const foolc_eval *ev, int32_t t);
FOOLC_API foolc_norm foolc_eval_attack_norm(const foolc_eval *ev, int32_t t);
FOOLC_API unsigned foolc_eval_attack_needs(const foolc_eval *ev, int32_t t);
/* The first error of attack t over its chunks (FOOLC_OK when none) and its message. */
FOOLC_API foolc_status foolc_eval_attack_status(const foolc_eval *ev, int32_t t,
                                                const char **message);
/* Wall seconds of attack t, summed over its recorded chunks. */
FOOLC_API double foolc_eval_attack_seconds(const foolc_eval *ev, int32_t t);
FOOLC_API const float *foolc_eval_dist(const foolc_eval *ev, int32_t t);
FOOLC_API const uint8_t *foolc_eval_success(const foolc_eval *ev, int32_t t);
FOOLC_API const int32_t *foolc_eval_adv_label(const foolc_eval *ev, int32_t t);
FOOLC_API const foolc_counts *foolc_eval_queries(const foolc_eval *ev, int32_t t);
FOOLC_API const float *foolc_eval_x_adv(const foolc_eval *ev, int32_t t); /* NULL: not kept */
FOOLC_API const uint8_t *foolc_eval_done(const foolc_eval *ev, int32_t t);
/* Best of all attacks per sample and norm (n * FOOLC_NORM_COUNT each): the smallest
 * distance (INFINITY when none) and the attack index that found it (the first on ties; -1
 * when none). Computed from the attacks' current results at each call. */
FOOLC_API const float *foolc_eval_best(foolc_eval *ev);
FOOLC_API const int32_t *foolc_eval_best_by(foolc_eval *ev);
/* The norms reported (bit p for norm p). */
FOOLC_API uint32_t foolc_eval_norms(const foolc_eval *ev);

/* Figures of one curve: attack t in norm p, or t = FOOLC_EVAL_BEST for the best of all.
 * Robust accuracy at eps: the fraction not broken within eps (times the clean accuracy
 * after foolc_eval_select without all). Quantile q of the distances (failures infinite,
 * linear interpolation), the mean of the finite ones (NaN when none), the success rate. */
#define FOOLC_EVAL_BEST (-1)
FOOLC_API double foolc_eval_robust(foolc_eval *ev, int32_t t, foolc_norm p, double eps);
FOOLC_API double foolc_eval_quantile(foolc_eval *ev, int32_t t, foolc_norm p, double q);
FOOLC_API double foolc_eval_mean(foolc_eval *ev, int32_t t, foolc_norm p);
FOOLC_API double foolc_eval_success_rate(foolc_eval *ev, int32_t t, foolc_norm p);
/* The epsilon grid of norm p (at most cap values into eps; returns the count): 0 and nice
 * steps up to the largest finite best-of-all distance (wide: up to the largest of any
 * attack of norm p). */
FOOLC_API int32_t foolc_eval_grid(foolc_eval *ev, foolc_norm p, int wide, double *eps,
                                  int32_t cap);
/* The gradient check: done (the model offers gradients), all-zero and non-finite counts. */
FOOLC_API void foolc_eval_grad_info(const foolc_eval *ev, int *checked, int32_t *zero,
                                    int32_t *nonfinite);
/* Gradient-masking diagnostics (arXiv:1704.01547), as text lines: their count, and line k's
 * text (owned by the evaluation until the next call) with *warn set for a warning. */
FOOLC_API int32_t foolc_eval_diagnostics(foolc_eval *ev);
FOOLC_API const char *foolc_eval_diagnostic(foolc_eval *ev, int32_t k, int *warn);

/* Steps (foolc_eval_add_step): their count, name, columns; step s's values (n * ncols
 * doubles; NaN where not recorded) and status. */
FOOLC_API int32_t foolc_eval_steps(const foolc_eval *ev);
FOOLC_API const char *foolc_eval_step_name(const foolc_eval *ev, int32_t s);
FOOLC_API int32_t foolc_eval_step_columns(const foolc_eval *ev, int32_t s);
FOOLC_API const char *foolc_eval_step_column(const foolc_eval *ev, int32_t s, int32_t j);
FOOLC_API const double *foolc_eval_step_values(const foolc_eval *ev, int32_t s);
FOOLC_API const uint8_t *foolc_eval_step_done(const foolc_eval *ev, int32_t s);

#ifdef __cplusplus
}
#endif
#endif
