/* The certify step of an evaluation (foolc_certify_eval_add): certified radii beside the
 * attacks' best distances, per sample and norm, in the evaluation's chunks. */
#include "certify_impl.h"

#include <math.h>

#define CERT_OPTS_V1 (offsetof(foolc_certify_opts, hint) + sizeof(const double *))

static const foolc_norm step_norms[3] = { FOOLC_LINF, FOOLC_L2, FOOLC_L1 };

static foolc_status certify_step(void *user, foolc_eval *ev, foolc_model *model,
                                 int32_t first, int32_t count, const float *x,
                                 const int32_t *labels, const uint64_t *ids, double *out)
{
    (void)ids;
    const foolc_certify_opts *uo = user;
    const foolc_oracle *orc = foolc_model_oracle(model);
    const uint32_t norms = foolc_eval_norms(ev);
    const float *best = foolc_eval_best(ev);
    double *hint = foolc__calloc((size_t)count + 1, sizeof *hint);
    double *rad = foolc__calloc((size_t)count + 1, sizeof *rad);
    foolc_status st = hint && rad ? FOOLC_OK : foolc__nomem("certify step");
    for (int k = 0; st >= 0 && k < 3; k++) {
        const foolc_norm p = step_norms[k];
        if (!(norms >> p & 1)) {
            for (int32_t i = 0; i < count; i++) out[(size_t)i * 3 + k] = NAN;
            continue;
        }
        foolc_certify_opts o = *uo;
        o.norm = p;
        for (int32_t i = 0; i < count; i++)
            hint[i] = best ? best[(size_t)(first + i) * FOOLC_NORM_COUNT + p] : INFINITY;
        o.hint = hint;
        st = foolc_certify_oracle(orc, x, labels, NULL, count, &o, rad, NULL);
        for (int32_t i = 0; i < count; i++) out[(size_t)i * 3 + k] = st >= 0 ? rad[i] : NAN;
        /* a norm the exact method does not solve: no bound in that norm (NaN), not an
         * error of the step */
        if (st == FOOLC_E_UNSUPPORTED && uo->method == FOOLC_CERTIFY_EXACT) {
            foolc__error_clear();
            st = FOOLC_OK;
        }
        if (st < 0) st = foolc__error_prefix(st, "%s", foolc_norm_name(p));
    }
    foolc__free(hint);
    foolc__free(rad);
    return st < 0 ? st : FOOLC_OK;
}

foolc_status foolc_certify_eval_add_sized(foolc_eval *ev, const foolc_certify_opts *o,
                                          size_t o_size)
{
    foolc__error_clear();
    if (!ev || !o) return foolc__error(FOOLC_E_INVALID, "certify: eval step: NULL argument");
    if (o_size < CERT_OPTS_V1)
        return foolc__error(FOOLC_E_VERSION, "certify: eval step: foolc_certify_opts of %zu "
                            "bytes; this library needs at least %zu", o_size,
                            (size_t)CERT_OPTS_V1);
    if ((unsigned)o->method >= FOOLC_CERTIFY_METHOD_COUNT)
        return foolc__error(FOOLC_E_INVALID, "certify: eval step: bad method %d",
                            (int)o->method);
    static const char *const cols[3] = { "linf", "l2", "l1" };
    return foolc_eval_add_step(ev, "certify", 3, cols, certify_step, (void *)(uintptr_t)o);
}
