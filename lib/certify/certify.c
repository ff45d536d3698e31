/* foolc_certify: argument checks, options, and the per-sample radius search (IBP and CROWN
 * in bounds.c; EXACT in exact.c). */
#include "certify_impl.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* The first version of foolc_certify_opts ends with hint. */
#define CERT_OPTS_V1 (offsetof(foolc_certify_opts, hint) + sizeof(const double *))

static const char *const method_names[FOOLC_CERTIFY_METHOD_COUNT] = { "ibp", "crown", "exact" };

const char *foolc_certify_method_name(foolc_certify_method m)
{
    return (unsigned)m < FOOLC_CERTIFY_METHOD_COUNT ? method_names[m] : NULL;
}

foolc_status foolc_certify_method_parse(const char *name, foolc_certify_method *out)
{
    foolc__error_clear();
    if (!name || !out) return foolc__error(FOOLC_E_INVALID, "certify: NULL method name");
    for (int m = 0; m < FOOLC_CERTIFY_METHOD_COUNT; m++)
        if (!strcasecmp(name, method_names[m])) {
            *out = (foolc_certify_method)m;
            return FOOLC_OK;
        }
    return foolc__error(FOOLC_E_INVALID, "certify: unknown method '%s' (ibp, crown, exact)",
                        name);
}

static void defaults(foolc_certify_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method = FOOLC_CERTIFY_CROWN;
    o->norm = FOOLC_LINF;
    o->rtol = 1e-3;
    o->lo = o->hi = NAN;
    o->time_limit = 60;
    o->hint = NULL;
}

foolc_status foolc_certify_defaults_sized(foolc_certify_opts *o, size_t size)
{
    foolc__error_clear();
    if (!o) return foolc__error(FOOLC_E_INVALID, "certify defaults: NULL options");
    if (size < CERT_OPTS_V1)
        return foolc__error(FOOLC_E_VERSION, "certify defaults: foolc_certify_opts of %zu "
                            "bytes; this library needs at least %zu", size,
                            (size_t)CERT_OPTS_V1);
    foolc_certify_opts d;
    defaults(&d);
    memcpy(o, &d, size < sizeof d ? size : sizeof d);
    return FOOLC_OK;
}

static int overlaps(const void *a, size_t na, const void *b, size_t nb)
{
    if (!a || !b || !na || !nb) return 0;
    const char *p = a, *q = b;
    return p < q + nb && q < p + na;
}

/* Checks everything and resolves the options into *o (box from lo, hi when NaN). */
static foolc_status check(const foolc_net *net, float lo, float hi, const float *x,
                          const int32_t *labels, const int32_t *targets, int32_t n,
                          const foolc_certify_opts *in, size_t o_size, const double *radius,
                          const double *upper, foolc_certify_opts *o)
{
    if (in && o_size < CERT_OPTS_V1)
        return foolc__error(FOOLC_E_VERSION, "certify: foolc_certify_opts of %zu bytes; this "
                            "library needs at least %zu (a program built against another "
                            "foolc.h?)", o_size, (size_t)CERT_OPTS_V1);
    defaults(o);
    if (in) memcpy(o, in, o_size < sizeof *o ? o_size : sizeof *o);
    if (n < 0) return foolc__error(FOOLC_E_INVALID, "certify: n must be >= 0, got %d", (int)n);
    if (n > 0 && (!x || !labels || !radius))
        return foolc__error(FOOLC_E_INVALID, "certify: NULL %s",
                            !x ? "x" : !labels ? "labels" : "radius");
    if ((unsigned)o->method >= FOOLC_CERTIFY_METHOD_COUNT)
        return foolc__error(FOOLC_E_INVALID, "certify: method %d is not ibp (0), crown (1) or "
                            "exact (2)", (int)o->method);
    if (o->norm != FOOLC_L1 && o->norm != FOOLC_L2 && o->norm != FOOLC_LINF)
        return foolc__error(FOOLC_E_INVALID, "certify: norm %s is not l1, l2 or linf",
                            foolc_norm_name(o->norm) ? foolc_norm_name(o->norm) : "(unknown)");
    if (!(o->rtol > 0 && o->rtol < 1))
        return foolc__error(FOOLC_E_INVALID, "certify: rtol must be in (0, 1), got %g", o->rtol);
    if (!(o->time_limit > 0))
        return foolc__error(FOOLC_E_INVALID, "certify: time_limit must be > 0 seconds, got %g",
                            o->time_limit);
    if (isnan(o->lo)) o->lo = lo;
    if (isnan(o->hi)) o->hi = hi;
    if (!isfinite(o->lo) || !isfinite(o->hi) || !(o->lo < o->hi))
        return foolc__error(FOOLC_E_INVALID, "certify: the box [%g, %g] must be finite with "
                            "lo < hi", o->lo, o->hi);
    FOOLC__CHECK(foolc__cert_check_net(net, "certify"));
    const int32_t k = foolc_net_classes(net);
    if (k < 2)
        return foolc__error(FOOLC_E_INVALID, "certify: the net has %d output; certifying "
                            "needs >= 2 classes", (int)k);
    const size_t d = (size_t)nn_numel(net->in);
    if (n == 0) return FOOLC_OK;
    const size_t nd = (size_t)n * sizeof(double);
    const void *ins[3] = { x, labels, targets };
    const size_t insz[3] = { foolc__mul((size_t)n * d, sizeof *x), (size_t)n * sizeof *labels,
                             (size_t)n * sizeof *labels };
    for (int i = 0; i < 3; i++)
        if (overlaps(radius, nd, ins[i], insz[i]) || overlaps(upper, nd, ins[i], insz[i]) ||
            (o->hint && (overlaps(radius, nd, o->hint, nd) || overlaps(upper, nd, o->hint, nd))))
            return foolc__error(FOOLC_E_INVALID, "certify: radius and upper must not overlap "
                                "the inputs");
    if (overlaps(radius, nd, upper, nd))
        return foolc__error(FOOLC_E_INVALID, "certify: radius and upper overlap");
    for (int32_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= k)
            return foolc__error(FOOLC_E_INVALID, "certify: sample %d: label %d is not in "
                                "[0, %d)", (int)i, (int)labels[i], (int)k);
        if (targets && (targets[i] < 0 || targets[i] >= k))
            return foolc__error(FOOLC_E_INVALID, "certify: sample %d: target %d is not in "
                                "[0, %d)", (int)i, (int)targets[i], (int)k);
        const float *xi = x + (size_t)i * d;
        for (size_t j = 0; j < d; j++) {
            if (!isfinite(xi[j]))
                return foolc__error(FOOLC_E_INVALID, "certify: sample %d: x[%zu] is %s",
                                    (int)i, j, isnan(xi[j]) ? "NaN" : "infinite");
            if (xi[j] < o->lo || xi[j] > o->hi)
                return foolc__error(FOOLC_E_INVALID, "certify: sample %d: x[%zu] = %g is "
                                    "outside the box [%g, %g]", (int)i, j, (double)xi[j],
                                    o->lo, o->hi);
        }
    }
    return FOOLC_OK;
}

static foolc_status run(foolc_net *net, float lo, float hi, const float *x,
                        const int32_t *labels, const int32_t *targets, int32_t n,
                        const foolc_certify_opts *in, size_t o_size, double *radius,
                        double *upper)
{
    foolc_certify_opts o;
    FOOLC__CHECK(check(net, lo, hi, x, labels, targets, n, in, o_size, radius, upper, &o));
    if (n == 0) return FOOLC_OK;
    if (o.method == FOOLC_CERTIFY_EXACT)
        return foolc__certify_exact(net, x, labels, targets, n, &o, radius, upper);
    const size_t d = (size_t)nn_numel(net->in);
    for (int32_t i = 0; i < n; i++) {
        double h = o.hint && isfinite(o.hint[i]) ? o.hint[i] : 0;
        foolc_status st = foolc__cert_radius(net, x + (size_t)i * d, labels[i],
                                             targets ? targets[i] : -1, &o, h, &radius[i]);
        if (st < 0) return foolc__error_prefix(st, "sample %d", (int)i);
        if (upper) upper[i] = INFINITY;
    }
    return FOOLC_OK;
}

foolc_status foolc_certify_sized(foolc_net *net, const float *x, const int32_t *labels,
                                 const int32_t *targets, int32_t n,
                                 const foolc_certify_opts *o, size_t o_size, double *radius,
                                 double *upper)
{
    foolc__error_clear();
    if (!net) return foolc__error(FOOLC_E_INVALID, "certify: NULL net");
    return run(net, net->lo, net->hi, x, labels, targets, n, o, o_size, radius, upper);
}

foolc_status foolc_certify_oracle_sized(const foolc_oracle *model, const float *x,
                                        const int32_t *labels, const int32_t *targets,
                                        int32_t n, const foolc_certify_opts *o, size_t o_size,
                                        double *radius, double *upper)
{
    foolc__error_clear();
    if (!model) return foolc__error(FOOLC_E_INVALID, "certify: NULL model");
    foolc_net *net = foolc__nn_oracle_net(model);
    if (!net)
        return foolc__error(FOOLC_E_UNSUPPORTED, "certify: the model is not a built-in net "
                            "(callbacks give no weights to bound; load or build the net with "
                            "foolc/net.h and use foolc_net_oracle)");
    if (model->input.c != net->in.c || model->input.h != net->in.h ||
        model->input.w != net->in.w)
        return foolc__error(FOOLC_E_INVALID, "certify: the oracle's input shape is not its "
                            "net's");
    return run(net, model->lo, model->hi, x, labels, targets, n, o, o_size, radius, upper);
}
