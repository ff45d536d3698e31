/* Distances by norm (dispatching to the modules in distances/) and exact Euclidean
 * projections onto an L1, L2 or Linf ball around x0 intersected with the box [lo, hi]. */
#include "attack_impl.h"
#include "numeric.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#define X(name, norm) extern const foolc__distance_vt foolc__distance_##name;
#include "../distances/list.h"
#undef X

static const foolc__distance_vt *const k_distances[] = {
#define X(name, norm) [norm] = &foolc__distance_##name,
#include "../distances/list.h"
#undef X
};

const foolc__distance_vt *foolc__distance_get(foolc_norm p)
{
    if ((int)p < 0 || p >= FOOLC_NORM_COUNT) return NULL;
    return k_distances[p];
}

const char *foolc_norm_name(foolc_norm p)
{
    const foolc__distance_vt *vt = foolc__distance_get(p);
    return vt ? vt->name : NULL;
}

foolc_status foolc_norm_parse(const char *name, foolc_norm *out)
{
    foolc__error_clear();
    if (!name || !out) return foolc__error(FOOLC_E_INVALID, "norm: NULL argument");
    if (!strcasecmp(name, "inf") || !strcasecmp(name, "l-inf") || !strcasecmp(name, "linfinity")) {
        *out = FOOLC_LINF;
        return FOOLC_OK;
    }
    for (int i = 0; i < FOOLC_NORM_COUNT; i++)
        if (!strcasecmp(name, k_distances[i]->name)) {
            *out = (foolc_norm)i;
            return FOOLC_OK;
        }
    return foolc__error(FOOLC_E_INVALID, "norm: unknown name '%s' (l0, l1, l2, linf, mse)", name);
}

double foolc_distance(foolc_norm p, const float *x0, const float *x, size_t len)
{
    const foolc__distance_vt *vt = foolc__distance_get(p);
    if (!vt || (len && (!x0 || !x))) return NAN;
    return vt->eval(x0, x, len);
}

foolc_status foolc_project(foolc_norm p, const float *x0, const float *v, size_t len,
                           double eps, float lo, float hi, float *out)
{
    foolc__error_clear();
    if (!x0 || !v || !out) return foolc__error(FOOLC_E_INVALID, "project: NULL argument");
    if (!(eps >= 0) || !isfinite(eps))
        return foolc__error(FOOLC_E_INVALID, "project: eps must be finite and >= 0, got %g", eps);
    if (!(lo < hi)) return foolc__error(FOOLC_E_INVALID, "project: need lo < hi, got [%g, %g]",
                                        (double)lo, (double)hi);
    if (p != FOOLC_LINF && p != FOOLC_L2 && p != FOOLC_L1)
        return foolc__error(FOOLC_E_INVALID, "project: norm %d has no ball projection "
                            "(l1, l2, linf)", (int)p);
    if (len && out < x0 + len && x0 < out + len)
        return foolc__error(FOOLC_E_INVALID, "project: out overlaps x0");
    float *work = p == FOOLC_LINF ? NULL
                                  : foolc__malloc(foolc__mul(FOOLC__PROJECT_WORK(len) + 1,
                                                             sizeof(float)));
    if (p != FOOLC_LINF && !work) return foolc__nomem("project: work space");
    memmove(out, v, len * sizeof(float));
    foolc__project(p, x0, out, len, eps, lo, hi, work);
    foolc__free(work);
    return FOOLC_OK;
}
