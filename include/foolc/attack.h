/* Attacks: created by name from the one registry, configured by named numeric parameters
 * (range-checked), run on a batch against a foolc_model. Every attack minimises: per
 * sample it returns the smallest verified adversarial it found in its norm. */
#ifndef FOOLC_ATTACK_H
#define FOOLC_ATTACK_H

#include "common.h"
#include "criterion.h"
#include "distance.h"
#include "oracle.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct foolc_attack foolc_attack;

/* The registry: attacks are numbered 0 .. foolc_attack_count()-1 in alphabetical order. */
FOOLC_API int32_t foolc_attack_count(void);
/* The i-th attack's name ("fgsm", ...), or NULL when i is out of range. */
FOOLC_API const char *foolc_attack_name(int32_t i);

/* Describes an attack by name, for --help texts, bindings and docs. Any out pointer may be
 * NULL. summary is static text. */
FOOLC_API FOOLC_WUR foolc_status foolc_attack_describe(const char *name, foolc_norm *norm,
                                                       unsigned *needs, int32_t *n_params,
                                                       const char **summary);
/* The p-th parameter of an attack: its name, default, valid range [min, max] and a one-line
 * help text (all static). */
FOOLC_API FOOLC_WUR foolc_status foolc_attack_param(const char *name, int32_t p,
                                                    const char **key, double *dflt,
                                                    double *min, double *max,
                                                    const char **help);

/* Errors: FOOLC_E_INVALID for an unknown name (the message lists the known ones). */
FOOLC_API FOOLC_WUR foolc_status foolc_attack_new(const char *name, foolc_attack **out);
FOOLC_API void foolc_attack_free(foolc_attack *a);
FOOLC_API const char *foolc_attack_get_name(const foolc_attack *a);
/* Sets a parameter; FOOLC_E_INVALID for an unknown key or a value outside its range or
 * not finite (integer parameters also refuse fractions). */
FOOLC_API FOOLC_WUR foolc_status foolc_attack_set(foolc_attack *a, const char *key,
                                                  double value);
/* Sets a parameter from text: a number (as foolc_attack_set), or for a parameter whose
 * values have names (its help text starts with "[name0|name1|...]", the names of min,
 * min + 1, ...) one of those names, e.g. foolc_attack_set_text(a, "init", "pool").
 * FOOLC_E_INVALID for an unknown key, NULL text, or text that is neither (the message
 * lists the names). */
FOOLC_API FOOLC_WUR foolc_status foolc_attack_set_text(foolc_attack *a, const char *key,
                                                       const char *value);
FOOLC_API FOOLC_WUR foolc_status foolc_attack_get(const foolc_attack *a, const char *key,
                                                  double *value);
/* The criterion for later runs; borrowed (it must outlive the runs). NULL restores the
 * default, misclassification. */
FOOLC_API FOOLC_WUR foolc_status foolc_attack_set_criterion(foolc_attack *a,
                                                            const foolc_criterion *c);

/* Starting points, for the attacks that walk from an adversarial point towards the input.
 * Which start an attack uses, and its default, is the attack's parameter `init`: see its
 * help text (foolc_attack_param) and its docs page (docs/attacks-bb.md, -decision.md).
 * foolc_attack_set_init: the registered attack whose results start the run (run with its
 * default parameters, this run's criterion, seed and targets; its queries are counted);
 * the name is checked now and may not be the attack itself; NULL restores the attack's
 * default. FOOLC_E_INVALID for an unknown name.
 * foolc_attack_set_starts: a pool of n candidate starting points, x (n*c*h*w floats in the
 * model's input shape) and their labels y (n, may be NULL). Per sample, pool images with
 * the sample's label are skipped (when targeted: those without its target label); with
 * y = NULL none is. Both arrays are borrowed: they must stay valid and unchanged until the
 * last run that uses them; n = 0 (or x = NULL with n = 0) clears the pool.
 * FOOLC_E_INVALID for n < 0 or NULL x with n > 0. */
FOOLC_API FOOLC_WUR foolc_status foolc_attack_set_init(foolc_attack *a,
                                                       const char *attack_name);
FOOLC_API FOOLC_WUR foolc_status foolc_attack_set_starts(foolc_attack *a, const float *x,
                                                         const int32_t *y, int32_t n);
/* Per-sample starting points (warm starts), for the same attacks: row i of x (n*c*h*w
 * floats in the model's input shape) is sample i's starting point in later runs, which must
 * then have n samples, or k of them per sample: n = k * samples, rows i*k .. i*k + k - 1
 * sample i's (FOOLC_E_INVALID from the run for another n). Only fmn-* and polish-* use more
 * than the first of each sample's rows. A row is used only where
 * it is a usable start for its sample, decided per sample when the run starts: finite,
 * inside the model's box, and adversarial under the run's criterion (one model evaluation
 * per usable-looking row, counted as the sample's query); any other row (e.g. all NaN for
 * "none") is ignored and that sample gets the attack's own start (its `init`). Where a row
 * is used it is offered as a result, so the sample's result is at least as close as its
 * start; docs/attacks-bb.md and docs/attacks-decision.md say which of the attack's own
 * starts it replaces. fmn-* also take them (one more descent from each usable row) and
 * polish-* work from them (docs/attacks-minnorm.md). x is borrowed until the last run that
 * uses it or until cleared with x = NULL, n = 0. FOOLC_E_INVALID for a NULL attack, n < 0,
 * or NULL x with n > 0. */
FOOLC_API FOOLC_WUR foolc_status foolc_attack_set_sample_starts(foolc_attack *a,
                                                                const float *x, int32_t n);

/* Random draws are keyed by (seed, sample id): sample i of later runs has the id first + i
 * (default 0), and an init attack keeps its parent's ids. Give a chunk that starts at
 * sample b of a data set first = b, and each sample draws the same numbers whatever the
 * chunk or batch it lands in. */
FOOLC_API void foolc_attack_set_first_id(foolc_attack *a, uint64_t first);
/* Or any id per sample: later runs, which must then have n samples, key sample i's draws
 * by ids[i] (borrowed until the last run or until cleared with ids NULL, n 0). */
FOOLC_API FOOLC_WUR foolc_status foolc_attack_set_ids(foolc_attack *a, const uint64_t *ids,
                                                      int32_t n);

/* Progress of later runs (foolc_progress_fn, in common.h; units chosen by the attack; fn
 * NULL for none). A non-zero return stops the run with FOOLC_E_CANCELLED; results found up
 * to then are kept and verified. */
FOOLC_API void foolc_attack_set_progress(foolc_attack *a, foolc_progress_fn fn, void *user);

/* Per-sample outputs, all caller-allocated, n entries each (x_adv: n*c*h*w floats).
 * queries may be NULL. */
typedef struct foolc_result {
    float *x_adv;          /* the best adversarial, or a copy of x where none was found */
    float *distance;       /* in the attack's norm; INFINITY where none was found */
    uint8_t *success;      /* 1 where a verified adversarial was found */
    foolc_counts *queries; /* images the attack spent on this sample (the library's
                            * verification is not counted: docs/attacks.md) */
} foolc_result;

/* Runs the attack on n = s.n images x (never written) with true labels (in [0, n_classes))
 * and, for targeted criteria, targets (else NULL). The same seed, inputs and model give
 * the same bytes, whatever the batch size the model accepts.
 * Every reported adversarial has been re-evaluated by the model after the attack, lies in
 * the box, satisfies the criterion, and its distance is recomputed from the returned point.
 * The outputs in res must not share memory with x, labels, targets or each other
 * (FOOLC_E_INVALID before anything is written).
 * Returns FOOLC_OK when every sample succeeded, FOOLC_NOT_FOUND when some did not;
 * FOOLC_E_INVALID (bad arguments, aliased buffers), FOOLC_E_UNSUPPORTED (the model lacks
 * what the attack or criterion needs), FOOLC_E_ORACLE, FOOLC_E_NONFINITE, FOOLC_E_BUDGET,
 * FOOLC_E_CANCELLED, FOOLC_E_NOMEM, FOOLC_E_VERSION (res is smaller than any foolc_result
 * this library knows). On FOOLC_E_BUDGET, _CANCELLED, _ORACLE and _NONFINITE, res still
 * holds every result found and verified before the stop. Not thread-safe per attack or
 * model.
 * foolc_attack_run is a macro that passes sizeof(foolc_result) to foolc_attack_run_sized,
 * the way zlib's deflateInit passes sizeof(z_stream): a program compiled against this
 * header keeps working with a later library whose foolc_result has grown (the fields it
 * does not have are taken as NULL), and an older library refuses a result it cannot fill. The function
 * foolc_attack_run (call it as (foolc_attack_run)(...), or from other languages) takes the
 * result as this header defines it. */
FOOLC_API FOOLC_WUR foolc_status foolc_attack_run_sized(foolc_attack *a, foolc_model *model,
                                                        foolc_shape s, const float *x,
                                                        const int32_t *labels,
                                                        const int32_t *targets, uint64_t seed,
                                                        const foolc_result *res,
                                                        size_t res_size);
FOOLC_API FOOLC_WUR foolc_status foolc_attack_run(foolc_attack *a, foolc_model *model,
                                                  foolc_shape s, const float *x,
                                                  const int32_t *labels,
                                                  const int32_t *targets, uint64_t seed,
                                                  const foolc_result *res);
#define foolc_attack_run(a, model, s, x, labels, targets, seed, res)                          \
    foolc_attack_run_sized((a), (model), (s), (x), (labels), (targets), (seed), (res),       \
                           sizeof(foolc_result))

#ifdef __cplusplus
}
#endif
#endif
