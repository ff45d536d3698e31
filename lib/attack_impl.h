/* Internal contract between the core and the attack, criterion and distance modules:
 * parameter tables, module vtables, the run state an attack works on, and the shared
 * machinery every attack uses (queries attributed per sample, offering candidates,
 * progress, epsilon search, seeded randomness). */
#ifndef FOOLC_ATTACK_IMPL_H
#define FOOLC_ATTACK_IMPL_H

#include "internal.h"

#include <stddef.h>

/* A numeric parameter. Configs are structs of doubles; offset = offsetof(config, field).
 * An enumerated parameter (is_int) may name its values: its help then starts with
 * "[name0|name1|...]", the names of min, min + 1, ... (foolc_attack_set_text). */
typedef struct foolc__param {
    const char *name;
    double dflt, min, max;
    size_t offset;
    int is_int;          /* refuses fractional values */
    const char *help;
} foolc__param;

/* One entry of a parameter table: the parameter named like its field of the config struct
 * (a struct of doubles), default, range, integer or not, help. Every table is written with
 * it and counted with FOOLC__COUNT. */
#define FOOLC__PARAM(config, field, dflt, lo, hi, is_int, help) \
    {#field, dflt, lo, hi, offsetof(config, field), is_int, help}

/* Parameters of one attack or criterion at most: their configs live in arrays of this many
 * doubles; foolc_attack_new and foolc__params_defaults refuse a larger table. */
#define FOOLC__MAX_PARAMS 32

/* Applies defaults to config, or sets one key with range checks ("what" prefixes errors). */
void foolc__params_defaults(const foolc__param *p, size_t n, void *config);
foolc_status foolc__params_set(const char *what, const foolc__param *p, size_t n,
                               void *config, const char *key, double value);
/* Sets a key from text: a number, or the name of one of an enumerated parameter's values. */
foolc_status foolc__params_set_text(const char *what, const foolc__param *p, size_t n,
                                    void *config, const char *key, const char *text);
foolc_status foolc__params_get(const char *what, const foolc__param *p, size_t n,
                               const void *config, const char *key, double *value);

/* ---- distances (distances/) ---- */
typedef struct foolc__distance_vt {
    const char *name;
    foolc_norm norm;
    double (*eval)(const float *x0, const float *x, size_t len);
} foolc__distance_vt;
const foolc__distance_vt *foolc__distance_get(foolc_norm p);

/* ---- criteria (criteria/) ---- */
typedef struct foolc__criterion_vt {
    const char *name;
    int needs_targets;
    int label_only;                /* decidable from a predicted label alone */
    const foolc__param *params;
    size_t n_params;
    /* One row: margin (< 0 iff adversarial) and, when dmargin != NULL, d margin/d logits. */
    void (*eval)(const double *params, const float *z, int32_t k, int32_t label,
                 int32_t target, double *margin, float *dmargin);
    /* From a predicted label (label_only criteria). */
    int (*is_adv_label)(int32_t pred, int32_t label, int32_t target);
} foolc__criterion_vt;

struct foolc_criterion {
    const foolc__criterion_vt *vt;   /* NULL for a custom criterion */
    double params[FOOLC__MAX_PARAMS];
    foolc_criterion_fn fn;
    void *user;
};

/* ---- the run ---- */
typedef struct foolc__run foolc__run;

typedef struct foolc__attack_vt {
    const char *name;
    const char *summary;
    foolc_norm norm;
    unsigned needs;                  /* FOOLC_NEEDS_* */
    const foolc__param *params;
    size_t n_params, config_size;
    /* Works on run->todo[0 .. run->n_todo); offers adversarials with foolc__run_offer.
     * run->norm is the entry's norm, run->vt the entry: a family's one run function serves
     * all its entries. */
    foolc_status (*run)(foolc__run *run, const void *config);
    /* The entry's own constants for its family's run function (e.g. which noise), or NULL. */
    const void *variant;
} foolc__attack_vt;

#define FOOLC__COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* One registry entry, at the end of its family's file: the attack `id` of attacks/list.h
 * (foolc__attack_<id>), called `name`, in norm `norm`, needing `needs` (FOOLC_NEEDS_*),
 * with the parameter table `params` (an array, counted here) over the config struct
 * `config`, run by `fn` with the entry's `variant` (a pointer or NULL). */
#define FOOLC__ATTACK(id, name_, norm_, needs_, params_, config, fn, variant_, summary_) \
    const foolc__attack_vt foolc__attack_##id = {                                        \
        .name = name_,                                                                   \
        .summary = summary_,                                                             \
        .norm = norm_,                                                                   \
        .needs = needs_,                                                                 \
        .params = params_,                                                               \
        .n_params = FOOLC__COUNT(params_),                                               \
        .config_size = sizeof(config),                                                   \
        .run = fn,                                                                       \
        .variant = variant_,                                                             \
    }
#define FOOLC__GRAD (FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES)
#define FOOLC__DECISION FOOLC_NEEDS_DECISION

const foolc__attack_vt *foolc__attack_find(const char *name);

struct foolc__run {
    foolc_model *model;
    const foolc_oracle *oracle;
    const foolc_criterion *crit;
    const foolc__attack_vt *vt;
    foolc_norm norm;
    foolc_shape shape;
    int32_t n, k;                    /* samples, classes */
    size_t d;                        /* floats per image */
    float lo, hi;
    const float *x;                  /* clean inputs, n*d */
    const int32_t *labels, *targets; /* targets NULL unless targeted */
    uint64_t seed;
    /* Sample ids that key the random draws: sample i draws as ids[i], or as first_id + i
     * when ids is NULL (foolc_attack_set_first_id; an init attack's run keeps its parent's
     * ids), so a sample's draws do not depend on the batch or chunk it runs in. */
    uint64_t first_id;
    const uint64_t *ids;
    const foolc_result *res;         /* best so far: x_adv, distance, success */
    foolc_counts *queries;           /* per sample, n */
    int32_t *todo;                   /* samples the attack must work on */
    int32_t n_todo;
    foolc_progress_fn progress;
    void *progress_user;
    int64_t prog_done, prog_total;   /* the last progress reported (total -1: none yet) */
    int uncounted;                   /* verifying: queries are not attributed */
    int nested;                      /* an init attack's run: its reports repeat the parent's
                                      * last progress (cancel checks only) */
    double *temp;                    /* per sample (n): the logits' temperature of the
                                      * tempered losses, fixed at the sample's first one, 0
                                      * before (lib/loss.c: foolc__run_temps); NULL until
                                      * an attack needs it */
    /* scratch owned by the run, grown on demand */
    float *s_logits;
    size_t s_logits_cap;
    int32_t *s_labels;
    size_t s_labels_cap;
    double *s_margin;
    size_t s_margin_cap;
    /* Starting points chosen by the caller (foolc_attack_set_init, foolc_attack_set_starts);
     * all borrowed, NULL/0 when not set (and in sub-attack runs). */
    const char *init_attack;         /* a registered attack's static name */
    const float *starts_x;           /* n_starts rows of d floats */
    const int32_t *starts_y;         /* their labels, or NULL */
    int32_t n_starts;
    /* Per-sample starts (foolc_attack_set_sample_starts): sample_k per sample, rows
     * i * sample_k .. i * sample_k + sample_k - 1 are sample i's (the first its main one),
     * of d floats, not yet checked (attacks/decision/common.c: foolc__dec_sample_starts). */
    const float *sample_x;
    int32_t sample_k;
    /* The pool's summary (below), owned by the attack with the pool; NULL in sub-attack
     * runs. */
    struct foolc__pool_sum *starts_sum;
};

/* A summary of the caller's pool (starts_x, n_starts rows) that foolc__dec_nearest
 * (attacks/decision/nearest.c) computes at the first run that needs it and reuses in the
 * later runs: the pool stays valid and unchanged until the last run (foolc_attack_set_starts),
 * so it lives in the attack until the pool is replaced or cleared, or the attack freed
 * (lib/attack.c: foolc__pool_sum_clear). Its layout is nearest.c's; empty: v NULL. */
typedef struct foolc__pool_sum {
    double *v;                       /* per-row statistics */
    size_t d;                        /* the row length they were computed for */
    int32_t n;                       /* rows */
    int32_t h, w;                    /* the image shape they were computed for */
} foolc__pool_sum;
void foolc__pool_sum_clear(foolc__pool_sum *s);

/* ---- losses (lib/loss.c): the one place where a loss becomes a gradient ---- */

/* Losses an attack descends: lower means more adversarial. The values are those of the
 * attacks' `loss` parameter ([ce|margin|dlr]). */
typedef enum foolc__loss {
    FOOLC__LOSS_CE = 0,      /* -CE(label) untargeted; CE(target) targeted (log-sum-exp) */
    FOOLC__LOSS_MARGIN = 1,  /* the criterion's margin (logit difference) */
    FOOLC__LOSS_DLR = 2      /* Croce & Hein's difference of logits ratio; the margin where
                              * the criterion or the class count leaves it undefined */
} foolc__loss;

/* The criteria some attacks treat specially (DLR, DeepFool's and FAB's class pairs). */
typedef enum foolc__crit_kind {
    FOOLC__CRIT_OTHER = 0,
    FOOLC__CRIT_MISCLASSIFICATION = 1,
    FOOLC__CRIT_TARGETED = 2           /* the targeted criterion, with targets */
} foolc__crit_kind;
foolc__crit_kind foolc__run_crit_kind(const foolc__run *run);

/* The temperature T of a row of logits z (k): their standard deviation over the classes
 * over that of a typical classifier (5), 1 for constant logits; the mean of z in *mean (may
 * be NULL). Losses of (z - mean) / T do not change when the logits are multiplied by any
 * positive factor (lib/loss.c). */
double foolc__logit_temp(const float *z, int32_t k, double *mean);
/* Makes run->temp ready (n zeros, once per run): every attack that evaluates a tempered
 * loss through its own row function calls it first (foolc__run_grad does). */
foolc_status foolc__run_temps(foolc__run *run);
/* Sample s's temperature: run->temp[s], set from the logits z (k) when still 0, which is
 * the sample's first tempered loss (the clean input for every attack that has one). A loss
 * of (z - mean z) / T with this T is a fixed function of the logits per sample, and does
 * not change when they are multiplied by a positive factor. */
double foolc__run_temp(const foolc__run *run, int32_t s, const float *z, int32_t k,
                       double *mean);

/* A loss on one row of logits z (k): row a of the call, for sample s; writes dloss/dlogits
 * (dz, k) and the loss. Returns 0, or non-zero to fail the model call. */
typedef int (*foolc__row_fn)(void *user, int32_t a, int32_t s, const float *z, int32_t k,
                             float *dz, double *loss);

/* One forward and one backward pass over m images xs of samples idx with a per-row loss:
 * grad (m*d); logits (m*k), loss_f (m, as float) and loss_d (m) may each be NULL. Checks
 * the images (foolc__run_check) and attributes the queries. */
foolc_status foolc__run_grad_rows(foolc__run *run, const float *xs, const int32_t *idx,
                                  int32_t m, foolc__row_fn fn, void *user, float *grad,
                                  float *logits, float *loss_f, double *loss_d);

/* z[pos[a]] - z[neg[a]] for row a (pos NULL: the sample's label): a foolc__row_fn whose user
 * is a foolc__pair. */
typedef struct foolc__pair {
    const foolc__run *run;
    const int32_t *pos, *neg;
} foolc__pair;
int foolc__pair_row(void *user, int32_t a, int32_t s, const float *z, int32_t k, float *dz,
                    double *loss);

/* The criterion's verdict (and margin, may be NULL) for m rows of logits of samples idx:
 * no model call. */
foolc_status foolc__run_logits_adv(const foolc__run *run, const float *logits,
                                   const int32_t *idx, int32_t m, uint8_t *adv,
                                   double *margin);

/* FOOLC_E_INTERNAL, naming the attack, sample and value, unless every value of the m images
 * is finite and inside the box: the run's query functions check every image before it
 * goes to the model (code that calls the model directly must call this first). */
foolc_status foolc__run_check(const foolc__run *run, const float *xs, const int32_t *idx,
                              int32_t m);
/* Logits for m images xs that belong to samples idx[0..m) (queries are attributed). */
foolc_status foolc__run_scores(foolc__run *run, const float *xs, const int32_t *idx,
                               int32_t m, float *logits);
/* Whether each of m images is adversarial for its sample (scores or decisions, as the
 * criterion and model allow). margin may be NULL; without scores it is -1/+1. */
foolc_status foolc__run_is_adv(foolc__run *run, const float *xs, const int32_t *idx,
                               int32_t m, uint8_t *is_adv, double *margin);
/* Gradient of a loss for m images: grad (m*d), loss (m, may be NULL), logits (m*k, may
 * be NULL) (lib/loss.c). */
foolc_status foolc__run_grad(foolc__run *run, const float *xs, const int32_t *idx,
                             int32_t m, foolc__loss loss, float *grad, float *loss_out,
                             float *logits);
/* Offers xadv, known adversarial, as a result for sample i: kept when it is in the box and
 * smaller in the run's norm than the best so far. Returns 1 when kept. */
int foolc__run_offer(foolc__run *run, int32_t i, const float *xadv);
/* The same, where a tie replaces the best so far (refinements that keep the norm, such as
 * pointwise's L2 phase). */
int foolc__run_offer_tie(foolc__run *run, int32_t i, const float *xadv);
/* Reports progress; FOOLC_E_CANCELLED when the callback asks to stop. */
foolc_status foolc__run_progress(foolc__run *run, int64_t done, int64_t total);
/* Reports the last progress again (done 0, total -1 before any): every model call of the
 * run's query functions does, so that every attack honours a cancel between two of its
 * model calls, whatever its own progress reports. */
foolc_status foolc__run_heartbeat(foolc__run *run);

/* Per-sample epsilon search shared by fixed-epsilon attacks. make() writes, for m samples
 * idx[0..m) and their epsilons eps[0..m), the candidate images (m*d); where it already
 * knows from the model's logits at that very point whether a candidate is adversarial it
 * sets adv[a] to 0 or 1 (adv arrives filled with FOOLC__ADV_UNKNOWN), and the search
 * evaluates only the unknown ones. The search grows epsilon geometrically from eps_init
 * until success or eps_max, then bisects to rtol (relative), offering every adversarial
 * candidate; a solved sample costs no more queries. With fixed > 0 it evaluates
 * epsilon = fixed once. */
#define FOOLC__ADV_UNKNOWN 0xFF
typedef foolc_status (*foolc__make_fn)(void *ctx, foolc__run *run, const int32_t *idx,
                                       const double *eps, int32_t m, float *out,
                                       uint8_t *adv);
typedef struct foolc__eps_opts {
    double eps_init, eps_max, growth, rtol, fixed;
} foolc__eps_opts;
foolc_status foolc__eps_search(foolc__run *run, const int32_t *idx, int32_t m,
                               const foolc__eps_opts *o, foolc__make_fn make, void *ctx);

/* ---- searches on a path (lib/run.c): the one bracket search every attack uses ---- */

/* The point at t in [0, 1] of row a's path from its clean input (t = 0) to its adversarial
 * end (t = 1), written to out (d floats). */
typedef void (*foolc__path_fn)(void *ctx, const foolc__run *run, int32_t a, double t,
                               float *out);
/* Whether each of m images of samples sid is adversarial, and (f, may be NULL) a margin
 * that is < 0 on the adversarial side, for regula falsi. */
typedef foolc_status (*foolc__judge_fn)(void *ctx, foolc__run *run, const float *xs,
                                        const int32_t *sid, int32_t m, uint8_t *adv,
                                        double *f);

typedef struct foolc__bracket_opts {
    foolc__path_fn path;
    void *path_ctx;
    foolc__judge_fn judge;   /* NULL: foolc__run_is_adv, no margins */
    void *judge_ctx;
    int32_t steps;           /* evaluations per row at most */
    double tol;              /* a row stops once hi - lo <= tol (0: only steps) */
    const double *width;     /* per row, instead of tol (NULL: tol) */
    double max_q;            /* per-sample image budget (0: none) */
    int32_t chunk;           /* rows per model call (0: all at once) */
    int regula;              /* Illinois regula falsi on the judge's margins (flo, fhi) */
} foolc__bracket_opts;

/* Narrows each row's bracket [lo[a], hi[a]] on its path (lo not adversarial, hi
 * adversarial) for the rows rows[0..n) of samples idx[a]: each step evaluates, for every
 * row still going, the midpoint, or with o->regula the regula falsi point from the margins
 * flo[a] > 0 > fhi[a] (Illinois: the end kept twice in a row has its margin halved; a
 * midpoint whenever the bracket has not halved in two steps). A row stops after o->steps
 * evaluations, when its bracket is no wider than its tolerance, when the point is no longer
 * inside it, or when its sample may not spend one more image. flo and fhi may be NULL
 * without regula. The brackets are left in lo and hi. */
foolc_status foolc__run_bracket(foolc__run *run, const int32_t *idx, const int32_t *rows,
                                int32_t n, double *lo, double *hi, double *flo, double *fhi,
                                const foolc__bracket_opts *o);

/* Binary search on the segment from each sample's clean input to an adversarial point
 * xadv (m*d, rows for samples idx): after `steps` halvings xadv holds the adversarial end
 * of the final bracket, closest to the clean input, and is offered. Samples whose xadv is
 * not adversarial are left as they are (ok[a] = 0). ok may be NULL. */
foolc_status foolc__run_bisect(foolc__run *run, const int32_t *idx, int32_t m, float *xadv,
                               int32_t steps, uint8_t *ok);

/* Images sample i has cost the model so far (forward + decided), and whether it may spend
 * `cost` more under a per-sample budget max_q (0: no budget). */
uint64_t foolc__run_used(const foolc__run *run, int32_t i);
int foolc__run_may(const foolc__run *run, int32_t i, double max_q, uint64_t cost);

/* Runs another registered attack (with its default parameters and this run's criterion,
 * seed and targets) on samples idx[0..m), attributing its queries to them: xadv (m*d)
 * receives each sample's best adversarial and ok[a] whether one was found. Used for
 * starting points ("init attacks"). */
foolc_status foolc__run_subattack(foolc__run *run, const char *name, const int32_t *idx,
                                  int32_t m, float *xadv, uint8_t *ok);

/* Counter-based random stream keyed by (seed, sample, stream): a sample's draws do not
 * depend on the batch it runs in. Each attack draws from streams of its own, so that one
 * sample's draws for two attacks never overlap. */
enum foolc__stream {
    FOOLC__STREAM_HSJ = 0x45A,
    FOOLC__STREAM_POINTWISE = 0x9017,
    FOOLC__STREAM_BOUNDARY = 0xB0DA,
    FOOLC__STREAM_FAB = 0xFAB0,              /* + the restart */
    FOOLC__STREAM_BLENDED = 0xB1E7D,         /* + 0x1000 * the draw */
    FOOLC__STREAM_REPEAT = 0x4E9EA7,
    FOOLC__STREAM_ALMA = 0xA1A0,             /* ALMA's random start */
    FOOLC__STREAM_POLISH = 0x9015E           /* + 0x1000 * the draw (the polish's noise starts) */
};
#define FOOLC__STREAM_RANDOM_START 0x9A7D0000u   /* + the restart (PGD-like random starts) */
#define FOOLC__STREAM_VFGA 0xF6A00000u           /* + the step (VFGA's draws) */
typedef struct foolc__rng {
    uint64_t key, ctr;
} foolc__rng;
void foolc__rng_init(foolc__rng *r, uint64_t seed, uint64_t sample, uint64_t stream);
/* Sample i's id (foolc__run.ids), and its stream under the run's seed. */
static inline uint64_t foolc__run_id(const foolc__run *run, int32_t i)
{
    return run->ids ? run->ids[i] : run->first_id + (uint64_t)i;
}
void foolc__rng_for(foolc__rng *r, const foolc__run *run, int32_t i, uint64_t stream);
uint64_t foolc__rng_u64(foolc__rng *r);
double foolc__rng_uniform(foolc__rng *r);  /* [0, 1) */
double foolc__rng_normal(foolc__rng *r);

/* The library's own verification of what an attack reports: while set, model calls are
 * neither refused by the budget nor counted (in the model's totals or, with run->uncounted,
 * a sample's queries): counts and budgets are the attack's work. */
void foolc__model_set_uncounted(foolc_model *m, int on);

#endif
