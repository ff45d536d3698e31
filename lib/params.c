/* Parameter tables: defaults, range-checked setting and getting by name, shared by attacks
 * and criteria. */
#include "attack_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void foolc__params_defaults(const foolc__param *p, size_t n, void *config)
{
    for (size_t i = 0; i < n; i++) *(double *)((char *)config + p[i].offset) = p[i].dflt;
}

static const foolc__param *find(const foolc__param *p, size_t n, const char *key)
{
    for (size_t i = 0; key && i < n; i++)
        if (!strcmp(p[i].name, key)) return &p[i];
    return NULL;
}

static foolc_status unknown(const char *what, const foolc__param *p, size_t n, const char *key)
{
    char known[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof known; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                                 p[i].name);
    return foolc__error(FOOLC_E_INVALID, "%s: unknown key '%s' (known: %s)", what,
                        key ? key : "(null)", n ? known : "none");
}

foolc_status foolc__params_set(const char *what, const foolc__param *p, size_t n,
                               void *config, const char *key, double value)
{
    const foolc__param *q = find(p, n, key);
    if (!q) return unknown(what, p, n, key);
    if (!isfinite(value) || value < q->min || value > q->max)
        return foolc__error(FOOLC_E_INVALID, "%s: key '%s' must be in [%g, %g], got %g", what,
                            key, q->min, q->max, value);
    if (q->is_int && value != floor(value))
        return foolc__error(FOOLC_E_INVALID, "%s: key '%s' must be a whole number, got %g",
                            what, key, value);
    *(double *)((char *)config + q->offset) = value;
    return FOOLC_OK;
}

/* An enumerated parameter's help starts with its value names, "[name0|name1|...]", which
 * stand for min, min + 1, ...: that bracketed span (*len bytes), or NULL when it has none. */
static const char *names_of(const foolc__param *q, int *len)
{
    const char *h = q->is_int && q->help ? strchr(q->help, '[') : NULL;
    const char *e = h ? strchr(h, ']') : NULL;
    if (!e) return NULL;
    *len = (int)(e - h + 1);
    return h;
}

foolc_status foolc__params_set_text(const char *what, const foolc__param *p, size_t n,
                                    void *config, const char *key, const char *text)
{
    const foolc__param *q = find(p, n, key);
    if (!q) return unknown(what, p, n, key);
    if (!text) return foolc__error(FOOLC_E_INVALID, "%s: key '%s': NULL value", what, key);
    char *end;
    double v = strtod(text, &end);
    if (end != text && !*end) return foolc__params_set(what, p, n, config, key, v);
    int span = 0;
    const char *names = names_of(q, &span);
    if (!names)
        return foolc__error(FOOLC_E_INVALID, "%s: key '%s' takes a number, got '%s'", what, key,
                            text);
    size_t len = strlen(text);
    v = q->min;
    for (const char *c = names + 1; len && c < names + span - 1; v += 1) {
        size_t w = strcspn(c, "|]");
        if (w == len && !strncmp(c, text, w)) return foolc__params_set(what, p, n, config, key, v);
        c += w + (c[w] == '|');
    }
    return foolc__error(FOOLC_E_INVALID, "%s: key '%s' takes a number or one of %.*s, got '%s'",
                        what, key, span, names, text);
}

foolc_status foolc__params_get(const char *what, const foolc__param *p, size_t n,
                               const void *config, const char *key, double *value)
{
    const foolc__param *q = find(p, n, key);
    if (!q) return unknown(what, p, n, key);
    if (!value) return foolc__error(FOOLC_E_INVALID, "%s: NULL value", what);
    *value = *(const double *)((const char *)config + q->offset);
    return FOOLC_OK;
}
