/* Internal contract between the core and the attack, criterion and distance modules:
 * parameter tables, module vtables, the run state an attack works on, and the shared
 * machinery every attack uses (queries attributed per sample, offering candidates,
 * progress, epsilon search, seeded randomness). */
#ifndef FOOLC_ATTACK_IMPL_H
#define FOOLC_ATTACK_IMPL_H

#include "internal.h"

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
    const foolc_result *res;         /* best so far: x_adv, distance, success */
    foolc_counts *queries;           /* per sample, n */
    int32_t *todo;                   /* samples the attack must work on */
    int32_t n_todo;
    foolc_progress_fn progress;
    void *progress_user;
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
};

/* Losses an attack descends: lower means more adversarial. */
typedef enum foolc__loss {
    FOOLC__LOSS_MARGIN = 0,  /* the criterion's margin (logit difference) */
    FOOLC__LOSS_CE = 1       /* -CE(label) untargeted; CE(target) targeted */
} foolc__loss;

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
 * be NULL). */
foolc_status foolc__run_grad(foolc__run *run, const float *xs, const int32_t *idx,
                             int32_t m, foolc__loss loss, float *grad, float *loss_out,
                             float *logits);
/* Offers xadv, known adversarial, as a result for sample i: kept when it is in the box and
 * smaller in the run's norm than the best so far. Returns 1 when kept. */
int foolc__run_offer(foolc__run *run, int32_t i, const float *xadv);
/* Reports progress; FOOLC_E_CANCELLED when the callback asks to stop. */
foolc_status foolc__run_progress(foolc__run *run, int64_t done, int64_t total);

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

/* Binary search on the segment from each sample's clean input to an adversarial point
 * xadv (m*d, rows for samples idx): after `steps` halvings xadv holds the adversarial end
 * of the final bracket, closest to the clean input, and is offered. Samples whose xadv is
 * not adversarial are left as they are (ok[a] = 0). ok may be NULL. */
foolc_status foolc__run_bisect(foolc__run *run, const int32_t *idx, int32_t m, float *xadv,
                               int32_t steps, uint8_t *ok);

/* Runs another registered attack (with its default parameters and this run's criterion,
 * seed and targets) on samples idx[0..m), attributing its queries to them: xadv (m*d)
 * receives each sample's best adversarial and ok[a] whether one was found. Used for
 * starting points ("init attacks"). */
foolc_status foolc__run_subattack(foolc__run *run, const char *name, const int32_t *idx,
                                  int32_t m, float *xadv, uint8_t *ok);

/* Counter-based random stream keyed by (seed, sample, stream): a sample's draws do not
 * depend on the batch it runs in. */
typedef struct foolc__rng {
    uint64_t key, ctr;
} foolc__rng;
void foolc__rng_init(foolc__rng *r, uint64_t seed, uint64_t sample, uint64_t stream);
uint64_t foolc__rng_u64(foolc__rng *r);
double foolc__rng_uniform(foolc__rng *r);  /* [0, 1) */
double foolc__rng_normal(foolc__rng *r);

/* Verification bypass: queries made while set are counted but not refused by the budget. */
void foolc__model_set_unbudgeted(foolc_model *m, int on);

#endif
