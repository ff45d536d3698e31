/* The oracle: how libfoolc talks to any model (C callbacks, the built-in engine, Python).
 * A model is a versioned struct of optional callbacks plus a user pointer; foolc_model
 * wraps it so every call is counted, budgeted, chunked and checked for NaN/Inf. */
#ifndef FOOLC_ORACLE_H
#define FOOLC_ORACLE_H

#include "common.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FOOLC_ORACLE_VERSION 1u

/* Supplied by the library to value_and_grad: writes the seed d(loss)/d(logits) for the
 * n rows of logits the model has just computed in this same forward pass. The model
 * must call it exactly once per value_and_grad call, after its forward pass and before
 * its backward pass; if it returns non-zero the model must stop and return non-zero. */
typedef int (*foolc_seed_fn)(void *seed_user, const float *logits, int32_t n,
                             int32_t n_classes, float *dlogits /* n*n_classes */);

typedef struct foolc_oracle {
    uint32_t version;    /* FOOLC_ORACLE_VERSION; fields are only ever appended */
    foolc_shape input;   /* c, h, w of one image; n = the largest batch one call accepts */
    int32_t n_classes;   /* number of logits per image, >= 2 */
    float lo, hi;        /* the valid input box [lo, hi], lo < hi, e.g. 0 and 1 */
    void *user;          /* passed back unchanged; must outlive every use of the oracle */
    /* Each callback returns 0 on success; anything else stops the caller with
     * FOOLC_E_ORACLE. A NULL callback is a missing capability. x holds n*c*h*w floats. */
    int (*scores)(void *user, const float *x, int32_t n, float *logits /* n*n_classes */);
    /* One forward and one backward pass: logits, then grad = J(x)^T * seed(logits).
     * An oracle that sets value_and_grad must set scores too. */
    int (*value_and_grad)(void *user, const float *x, int32_t n, foolc_seed_fn seed,
                          void *seed_user, float *logits /* n*n_classes */,
                          float *grad /* n*c*h*w */);
    /* Labels only. When NULL and scores is set, decisions are the argmax of the logits
     * (lowest index on ties). */
    int (*decision)(void *user, const float *x, int32_t n, int32_t *label /* n */);
} foolc_oracle;

/* What a model offers or an attack needs. */
enum {
    FOOLC_NEEDS_DECISION = 1u,
    FOOLC_NEEDS_SCORES = 2u,
    FOOLC_NEEDS_GRAD = 4u
};

/* Images a model has evaluated: forward (scores, including the forward half of a
 * gradient call), backward (input gradients) and decided (label-only calls). */
typedef struct foolc_counts {
    uint64_t forward, backward, decided;
} foolc_counts;

typedef struct foolc_model foolc_model;

/* Wraps an oracle. The struct is copied; o->user is borrowed and must outlive the model.
 * Errors: FOOLC_E_INVALID (NULL, bad shape, lo >= hi, no callback at all),
 * FOOLC_E_VERSION (o->version is 0 or newer than FOOLC_ORACLE_VERSION), FOOLC_E_NOMEM. */
FOOLC_API FOOLC_WUR foolc_status foolc_model_new(const foolc_oracle *o, foolc_model **out);
/* foolc_model_free(NULL) is a no-op. */
FOOLC_API void foolc_model_free(foolc_model *m);

/* The oracle the model wraps (the library's copy); never NULL for a valid model. */
FOOLC_API const foolc_oracle *foolc_model_oracle(const foolc_model *m);
/* FOOLC_NEEDS_* bits this model can serve (decision is derived from scores). */
FOOLC_API unsigned foolc_model_caps(const foolc_model *m);

/* A budget on the images evaluated, counted as forward + decided (a gradient call costs
 * its forward images; backward passes are not counted again). 0 means no budget.
 * A call that would go past the budget is refused whole with FOOLC_E_BUDGET; results an
 * attack found before that are kept. The library's verification of what an attack reports
 * is neither counted nor charged, so the counts never pass the budget. */
FOOLC_API foolc_status foolc_model_set_budget(foolc_model *m, uint64_t images);
FOOLC_API uint64_t foolc_model_budget(const foolc_model *m);
/* The images counted since creation or the last reset. */
FOOLC_API foolc_counts foolc_model_counts(const foolc_model *m);
FOOLC_API void foolc_model_reset_counts(foolc_model *m);

/* Logits for n images (any n >= 1: the call is split into chunks of at most input.n).
 * FOOLC_E_NONFINITE names the first sample with a NaN or Inf logit. */
FOOLC_API FOOLC_WUR foolc_status foolc_model_scores(foolc_model *m, const float *x, int32_t n,
                                                    float *logits);
/* Labels for n images, from the decision callback or the argmax of the logits. */
FOOLC_API FOOLC_WUR foolc_status foolc_model_decision(foolc_model *m, const float *x,
                                                      int32_t n, int32_t *labels);

/* A loss on logits for foolc_model_value_and_grad: for rows [first, first+n) of the whole
 * call, writes dloss/dlogits (n*n_classes) and, when loss is not NULL, the n losses.
 * Returns 0, or non-zero to stop the call with FOOLC_E_ORACLE. */
typedef int (*foolc_loss_fn)(void *user, int32_t first, const float *logits, int32_t n,
                             int32_t n_classes, float *dlogits, float *loss);

/* One forward and one backward pass over n images: logits (may be NULL), loss (n, may be
 * NULL) and grad = d(loss)/dx (n*c*h*w). FOOLC_E_UNSUPPORTED without value_and_grad. */
FOOLC_API FOOLC_WUR foolc_status foolc_model_value_and_grad(foolc_model *m, const float *x,
                                                            int32_t n, foolc_loss_fn loss_fn,
                                                            void *loss_user, float *logits,
                                                            float *loss, float *grad);

#ifdef __cplusplus
}
#endif
#endif
