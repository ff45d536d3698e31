/* Criteria: what counts as adversarial. Each criterion answers per sample from the logits
 * (or from a label, for decision-only models) and gives a signed margin that is < 0 when
 * the sample is adversarial, with its gradient with respect to the logits. */
#ifndef FOOLC_CRITERION_H
#define FOOLC_CRITERION_H

#include "common.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct foolc_criterion foolc_criterion;

/* A user criterion: from one row of logits, the label and the target (-1 when the run has
 * no targets), write the margin (< 0 means adversarial) and, when dmargin is not NULL,
 * its gradient with respect to the n_classes logits. Return 0, or non-zero on failure. */
typedef int (*foolc_criterion_fn)(void *user, const float *logits, int32_t n_classes,
                                  int32_t label, int32_t target, double *margin,
                                  float *dmargin);

/* By name: "misclassification" (default), "targeted" (needs targets), "top-k" (parameter
 * "k", default 5: adversarial when the label is not among the k largest logits),
 * "confidence" (parameter "p", default 0.9: misclassified with softmax probability >= p).
 * Errors: FOOLC_E_INVALID for an unknown name, FOOLC_E_NOMEM. */
FOOLC_API FOOLC_WUR foolc_status foolc_criterion_new(const char *name, foolc_criterion **out);
/* A criterion from a callback; user is borrowed and must outlive the criterion. */
FOOLC_API FOOLC_WUR foolc_status foolc_criterion_custom(foolc_criterion_fn fn, void *user,
                                                        foolc_criterion **out);
FOOLC_API void foolc_criterion_free(foolc_criterion *c);
/* Sets a numeric parameter, range-checked ("k" in [1, 1e6], "p" in (0, 1)). */
FOOLC_API FOOLC_WUR foolc_status foolc_criterion_set(foolc_criterion *c, const char *key,
                                                     double value);
FOOLC_API const char *foolc_criterion_name(const foolc_criterion *c);
/* Non-zero when the criterion needs per-sample targets (the "targeted" criterion). */
FOOLC_API int foolc_criterion_needs_targets(const foolc_criterion *c);
/* Non-zero when the criterion can be decided from a label alone (misclassification and
 * targeted), so decision-only models can be attacked with it. */
FOOLC_API int foolc_criterion_label_only(const foolc_criterion *c);

/* Evaluates n rows of logits. labels: n; targets: n or NULL; is_adv, margin (n) and
 * dmargin (n*n_classes) are outputs, each may be NULL. margin < 0 implies is_adv, and
 * is_adv implies margin <= 0. */
FOOLC_API FOOLC_WUR foolc_status foolc_criterion_eval(const foolc_criterion *c,
                                                      const float *logits, int32_t n,
                                                      int32_t n_classes, const int32_t *labels,
                                                      const int32_t *targets, uint8_t *is_adv,
                                                      double *margin, float *dmargin);
/* Evaluates from predicted labels only (label-only criteria); else FOOLC_E_UNSUPPORTED. */
FOOLC_API FOOLC_WUR foolc_status foolc_criterion_eval_labels(const foolc_criterion *c,
                                                             const int32_t *predicted,
                                                             int32_t n, const int32_t *labels,
                                                             const int32_t *targets,
                                                             uint8_t *is_adv);

#ifdef __cplusplus
}
#endif
#endif
