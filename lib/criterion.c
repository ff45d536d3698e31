/* Criterion handles: built-in criteria by name (criteria/list.h), user callbacks, numeric
 * parameters, and evaluation of rows of logits or of predicted labels. */
#include "attack_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define X(id) extern const foolc__criterion_vt foolc__criterion_##id;
#include "../criteria/list.h"
#undef X

static const foolc__criterion_vt *const k_criteria[] = {
#define X(id) &foolc__criterion_##id,
#include "../criteria/list.h"
#undef X
};
#define N_CRITERIA (sizeof k_criteria / sizeof k_criteria[0])

foolc_status foolc_criterion_new(const char *name, foolc_criterion **out)
{
    foolc__error_clear();
    if (out) *out = NULL;
    if (!out) return foolc__error(FOOLC_E_INVALID, "criterion: NULL out");
    const foolc__criterion_vt *vt = NULL;
    for (size_t i = 0; name && i < N_CRITERIA; i++)
        if (!strcmp(name, k_criteria[i]->name)) vt = k_criteria[i];
    if (!vt)
        return foolc__error(FOOLC_E_INVALID, "criterion: unknown name '%s' (misclassification, "
                            "targeted, top-k, confidence)", name ? name : "(null)");
    foolc_criterion *c = foolc__calloc(1, sizeof *c);
    if (!c) return foolc__nomem("criterion");
    c->vt = vt;
    /* Criterion params are doubles at offsets 0, 8, ... of c->params. */
    foolc__params_defaults(vt->params, vt->n_params, c->params);
    *out = c;
    return FOOLC_OK;
}

foolc_status foolc_criterion_custom(foolc_criterion_fn fn, void *user, foolc_criterion **out)
{
    foolc__error_clear();
    if (out) *out = NULL;
    if (!fn || !out)
        return foolc__error(FOOLC_E_INVALID, "criterion: NULL %s", fn ? "out" : "callback");
    foolc_criterion *c = foolc__calloc(1, sizeof *c);
    if (!c) return foolc__nomem("criterion");
    c->fn = fn;
    c->user = user;
    *out = c;
    return FOOLC_OK;
}

void foolc_criterion_free(foolc_criterion *c) { foolc__free(c); }

foolc_status foolc_criterion_set(foolc_criterion *c, const char *key, double value)
{
    foolc__error_clear();
    if (!c) return foolc__error(FOOLC_E_INVALID, "criterion: NULL criterion");
    if (!c->vt) return foolc__error(FOOLC_E_INVALID, "criterion custom: no parameters");
    char what[64];
    snprintf(what, sizeof what, "criterion %s", c->vt->name);
    return foolc__params_set(what, c->vt->params, c->vt->n_params, c->params, key, value);
}

const char *foolc_criterion_name(const foolc_criterion *c)
{
    return !c ? NULL : c->vt ? c->vt->name : "custom";
}

int foolc_criterion_needs_targets(const foolc_criterion *c)
{
    return c && c->vt && c->vt->needs_targets;
}

int foolc_criterion_label_only(const foolc_criterion *c)
{
    return c && c->vt && c->vt->label_only;
}

foolc_status foolc_criterion_eval(const foolc_criterion *c, const float *logits, int32_t n,
                                  int32_t n_classes, const int32_t *labels,
                                  const int32_t *targets, uint8_t *is_adv, double *margin,
                                  float *dmargin)
{
    if (!c || !logits || !labels)
        return foolc__error(FOOLC_E_INVALID, "criterion eval: NULL %s",
                            !c ? "criterion" : !logits ? "logits" : "labels");
    if (n < 0 || n_classes < 2)
        return foolc__error(FOOLC_E_INVALID, "criterion eval: bad sizes n=%d n_classes=%d", n,
                            n_classes);
    if (foolc_criterion_needs_targets(c) && !targets)
        return foolc__error(FOOLC_E_INVALID, "criterion %s: needs targets", c->vt->name);
    for (int32_t i = 0; i < n; i++) {
        int32_t y = labels[i], t = targets ? targets[i] : -1;
        if (y < 0 || y >= n_classes || (targets && (t < 0 || t >= n_classes)))
            return foolc__error(FOOLC_E_INVALID, "criterion: sample %d: label %d or target %d "
                                "outside [0, %d)", i, y, t, n_classes);
        const float *z = logits + (size_t)i * (size_t)n_classes;
        float *dz = dmargin ? dmargin + (size_t)i * (size_t)n_classes : NULL;
        double m;
        if (c->vt) {
            c->vt->eval(c->params, z, n_classes, y, t, &m, dz);
        } else {
            m = NAN;
            int rc = c->fn(c->user, z, n_classes, y, t, &m, dz);
            if (rc != 0)
                return foolc__error(FOOLC_E_ORACLE, "criterion custom: callback returned %d "
                                    "for sample %d", rc, i);
            if (isnan(m))
                return foolc__error(FOOLC_E_NONFINITE, "criterion custom: NaN margin for "
                                    "sample %d", i);
        }
        if (margin) margin[i] = m;
        if (is_adv) is_adv[i] = m < 0;
    }
    return FOOLC_OK;
}

foolc_status foolc_criterion_eval_labels(const foolc_criterion *c, const int32_t *predicted,
                                         int32_t n, const int32_t *labels,
                                         const int32_t *targets, uint8_t *is_adv)
{
    if (!c || !predicted || !labels || !is_adv)
        return foolc__error(FOOLC_E_INVALID, "criterion eval_labels: NULL argument");
    if (!foolc_criterion_label_only(c))
        return foolc__error(FOOLC_E_UNSUPPORTED, "criterion %s: needs scores, not labels only",
                            foolc_criterion_name(c));
    if (c->vt->needs_targets && !targets)
        return foolc__error(FOOLC_E_INVALID, "criterion %s: needs targets", c->vt->name);
    for (int32_t i = 0; i < n; i++)
        is_adv[i] = (uint8_t)c->vt->is_adv_label(predicted[i], labels[i],
                                                 targets ? targets[i] : -1);
    return FOOLC_OK;
}
