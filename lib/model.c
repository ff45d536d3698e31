/* The model wrapper: every oracle call goes through here. It checks sizes, splits calls into
 * chunks the oracle accepts, counts images, enforces the query budget, and turns NaN/Inf
 * outputs and failing callbacks into errors that name the sample. */
#include "attack_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct foolc_model {
    foolc_oracle o;
    size_t d;                 /* floats per image */
    foolc_counts counts;
    uint64_t budget;          /* 0: none */
    int uncounted;            /* the library's verification: neither charged nor counted */
    float *scratch;           /* logits for decisions derived from scores */
    size_t scratch_cap;
};

foolc_status foolc_model_new(const foolc_oracle *o, foolc_model **out)
{
    foolc__error_clear();
    if (out) *out = NULL;
    if (!o || !out) return foolc__error(FOOLC_E_INVALID, "model: NULL %s", o ? "out" : "oracle");
    if (o->version == 0 || o->version > FOOLC_ORACLE_VERSION)
        return foolc__error(FOOLC_E_VERSION, "model: oracle version %u not supported (1..%u)",
                            o->version, FOOLC_ORACLE_VERSION);
    if (o->input.n < 1 || o->input.c < 1 || o->input.h < 1 || o->input.w < 1)
        return foolc__error(FOOLC_E_INVALID, "model: bad input shape n=%d c=%d h=%d w=%d "
                            "(all must be >= 1; n is the largest batch per call)",
                            o->input.n, o->input.c, o->input.h, o->input.w);
    if ((int64_t)o->input.c * o->input.h * o->input.w > ((int64_t)1 << 31))
        return foolc__error(FOOLC_E_INVALID, "model: image of %d*%d*%d values is too large",
                            o->input.c, o->input.h, o->input.w);
    if (o->n_classes < 2)
        return foolc__error(FOOLC_E_INVALID, "model: n_classes must be >= 2, got %d",
                            o->n_classes);
    if (!(isfinite(o->lo) && isfinite(o->hi) && o->lo < o->hi))
        return foolc__error(FOOLC_E_INVALID, "model: bounds must be finite with lo < hi, got "
                            "[%g, %g]", (double)o->lo, (double)o->hi);
    if (!o->scores && !o->value_and_grad && !o->decision)
        return foolc__error(FOOLC_E_INVALID, "model: the oracle has no callback at all");
    if (o->value_and_grad && !o->scores)
        return foolc__error(FOOLC_E_INVALID, "model: an oracle with value_and_grad must also "
                            "set scores (attacks check candidates with forward passes only)");
    foolc_model *m = foolc__calloc(1, sizeof *m);
    if (!m) return foolc__nomem("model");
    m->o = *o;
    m->d = (size_t)o->input.c * (size_t)o->input.h * (size_t)o->input.w;
    *out = m;
    return FOOLC_OK;
}

void foolc_model_free(foolc_model *m)
{
    if (!m) return;
    foolc__free(m->scratch);
    foolc__free(m);
}

const foolc_oracle *foolc_model_oracle(const foolc_model *m) { return m ? &m->o : NULL; }

unsigned foolc_model_caps(const foolc_model *m)
{
    if (!m) return 0;
    unsigned c = 0;
    if (m->o.scores) c |= FOOLC_NEEDS_SCORES | FOOLC_NEEDS_DECISION;
    if (m->o.decision) c |= FOOLC_NEEDS_DECISION;
    if (m->o.value_and_grad) c |= FOOLC_NEEDS_GRAD;
    return c;
}

foolc_status foolc_model_set_budget(foolc_model *m, uint64_t images)
{
    foolc__error_clear();
    if (!m) return foolc__error(FOOLC_E_INVALID, "model: NULL model");
    m->budget = images;
    return FOOLC_OK;
}

uint64_t foolc_model_budget(const foolc_model *m) { return m ? m->budget : 0; }

foolc_counts foolc_model_counts(const foolc_model *m)
{
    foolc_counts z = {0, 0, 0};
    return m ? m->counts : z;
}

void foolc_model_reset_counts(foolc_model *m)
{
    if (m) memset(&m->counts, 0, sizeof m->counts);
}

void foolc__model_set_uncounted(foolc_model *m, int on) { m->uncounted = on; }

static foolc_status check_call(foolc_model *m, const char *what, const float *x, int32_t n,
                               const void *out)
{
    if (!m) return foolc__error(FOOLC_E_INVALID, "model: NULL model");
    if (!x || !out) return foolc__error(FOOLC_E_INVALID, "model %s: NULL %s", what,
                                        x ? "output" : "input");
    if (n < 1) return foolc__error(FOOLC_E_INVALID, "model %s: n must be >= 1, got %d", what, n);
    uint64_t used = m->counts.forward + m->counts.decided;
    if (m->budget && !m->uncounted && used + (uint64_t)n > m->budget)
        return foolc__error(FOOLC_E_BUDGET, "model %s: query budget of %llu images exhausted "
                            "(%llu used, %d more requested)", what,
                            (unsigned long long)m->budget, (unsigned long long)used, n);
    return FOOLC_OK;
}

/* What a callback said about its failure, as " (detail)": a built-in net's message, or
 * that of any foolc call inside the callback that failed; "" when it left none. The
 * thread's message is set aside during the callback and put back after it, so a call that
 * succeeds leaves it as it was (attacks call the model while a note, e.g. on samples
 * without a starting point, waits to be returned). */
typedef struct detail {
    char saved[1024];
    char text[768];
} detail;

static void callback_begin(detail *d)
{
    d->saved[0] = '\0';
    if (!foolc_errmsg()[0]) return; /* the usual case: nothing to set aside */
    snprintf(d->saved, sizeof d->saved, "%s", foolc_errmsg());
    foolc__error_clear();
}

static void callback_end(detail *d)
{
    const char *m = foolc_errmsg();
    d->text[0] = '\0';
    if (!m[0] && !d->saved[0]) return;
    if (m[0]) snprintf(d->text, sizeof d->text, " (%s)", m);
    foolc__error(FOOLC_OK, "%s", d->saved);
}

/* The first non-finite value among rows of width w, or -1. */
static int64_t first_nonfinite(const float *v, int32_t rows, size_t w)
{
    size_t len = (size_t)rows * w;
    for (size_t i = 0; i < len; i++)
        if (!isfinite(v[i])) return (int64_t)(i / w);
    return -1;
}

foolc_status foolc_model_scores(foolc_model *m, const float *x, int32_t n, float *logits)
{
    FOOLC__CHECK(check_call(m, "scores", x, n, logits));
    const foolc_oracle *o = &m->o;
    if (!o->scores)
        return foolc__error(FOOLC_E_UNSUPPORTED, "model: scores requested but the oracle is "
                            "decision-only");
    size_t k = (size_t)o->n_classes;
    for (int32_t off = 0; off < n; off += o->input.n) {
        int32_t cn = n - off < o->input.n ? n - off : o->input.n;
        const float *xc = x + (size_t)off * m->d;
        float *lc = logits + (size_t)off * k;
        detail why;
        callback_begin(&why);
        int rc = o->scores(o->user, xc, cn, lc);
        callback_end(&why);
        m->counts.forward += m->uncounted ? 0 : (uint64_t)cn;
        if (rc != 0)
            return foolc__error(FOOLC_E_ORACLE, "model: scores callback returned %d "
                                "(samples %d..%d of the call)%s", rc, off, off + cn - 1,
                                why.text);
        int64_t bad = first_nonfinite(lc, cn, k);
        if (bad >= 0)
            return foolc__error(FOOLC_E_NONFINITE, "model: scores returned NaN or Inf for "
                                "sample %lld of the call%s", (long long)(off + bad),
                                why.text);
    }
    return FOOLC_OK;
}

static int argmax(const float *z, int32_t k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    return best;
}

foolc_status foolc_model_decision(foolc_model *m, const float *x, int32_t n, int32_t *labels)
{
    FOOLC__CHECK(check_call(m, "decision", x, n, labels));
    const foolc_oracle *o = &m->o;
    int32_t k = o->n_classes;
    if (!o->decision) {
        if (!o->scores)
            return foolc__error(FOOLC_E_UNSUPPORTED, "model: decisions need a decision or "
                                "scores callback");
        int32_t cn = n < o->input.n ? n : o->input.n;
        size_t need = (size_t)cn * (size_t)k;
        if (m->scratch_cap < need) {
            float *p = foolc__realloc(m->scratch, need * sizeof *p);
            if (!p) return foolc__nomem("model decision scratch");
            m->scratch = p;
            m->scratch_cap = need;
        }
    }
    for (int32_t off = 0; off < n; off += o->input.n) {
        int32_t cn = n - off < o->input.n ? n - off : o->input.n;
        const float *xc = x + (size_t)off * m->d;
        detail why;
        int rc;
        callback_begin(&why);
        if (o->decision) {
            rc = o->decision(o->user, xc, cn, labels + off);
            callback_end(&why);
        } else {
            rc = o->scores(o->user, xc, cn, m->scratch);
            callback_end(&why);
            if (rc == 0) {
                int64_t bad = first_nonfinite(m->scratch, cn, (size_t)k);
                if (bad >= 0) {
                    m->counts.decided += m->uncounted ? 0 : (uint64_t)cn;
                    return foolc__error(FOOLC_E_NONFINITE, "model: scores returned NaN or Inf "
                                        "for sample %lld of the call%s", (long long)(off + bad),
                                        why.text);
                }
                for (int32_t i = 0; i < cn; i++)
                    labels[off + i] = argmax(m->scratch + (size_t)i * (size_t)k, k);
            }
        }
        m->counts.decided += m->uncounted ? 0 : (uint64_t)cn;
        if (rc != 0)
            return foolc__error(FOOLC_E_ORACLE, "model: decision callback returned %d "
                                "(samples %d..%d of the call)%s", rc, off, off + cn - 1,
                                why.text);
        for (int32_t i = 0; i < cn; i++)
            if (labels[off + i] < 0 || labels[off + i] >= k)
                return foolc__error(FOOLC_E_ORACLE, "model: decision returned label %d for "
                                    "sample %d, outside [0, %d)", labels[off + i], off + i, k);
    }
    return FOOLC_OK;
}

/* The seed handed to the oracle: checks the logits, then asks the caller's loss. */
typedef struct seed_ctx {
    foolc_loss_fn fn;
    void *user;
    float *loss;
    int32_t first, expect_n;
    int calls;
    int64_t nonfinite;       /* sample of the chunk with NaN/Inf logits, or -1 */
    int loss_failed;
} seed_ctx;

static int seed_trampoline(void *user, const float *logits, int32_t n, int32_t k,
                           float *dlogits)
{
    seed_ctx *s = user;
    s->calls++;
    if (n != s->expect_n || !logits || !dlogits) return -1;
    s->nonfinite = first_nonfinite(logits, n, (size_t)k);
    if (s->nonfinite >= 0) return 1;
    if (s->fn(s->user, s->first, logits, n, k, dlogits, s->loss ? s->loss + s->first : NULL)) {
        s->loss_failed = 1;
        return 1;
    }
    return 0;
}

foolc_status foolc_model_value_and_grad(foolc_model *m, const float *x, int32_t n,
                                        foolc_loss_fn loss_fn, void *loss_user, float *logits,
                                        float *loss, float *grad)
{
    FOOLC__CHECK(check_call(m, "value_and_grad", x, n, grad));
    const foolc_oracle *o = &m->o;
    if (!o->value_and_grad)
        return foolc__error(FOOLC_E_UNSUPPORTED, "model: gradients requested but the oracle "
                            "has no value_and_grad callback");
    if (!loss_fn) return foolc__error(FOOLC_E_INVALID, "model value_and_grad: NULL loss");
    size_t k = (size_t)o->n_classes;
    if (!logits) {
        size_t need = (size_t)(n < o->input.n ? n : o->input.n) * k;
        if (m->scratch_cap < need) {
            float *p = foolc__realloc(m->scratch, need * sizeof *p);
            if (!p) return foolc__nomem("model logits scratch");
            m->scratch = p;
            m->scratch_cap = need;
        }
    }
    for (int32_t off = 0; off < n; off += o->input.n) {
        int32_t cn = n - off < o->input.n ? n - off : o->input.n;
        seed_ctx s = {loss_fn, loss_user, loss, off, cn, 0, -1, 0};
        float *lc = logits ? logits + (size_t)off * k : m->scratch;
        float *gc = grad + (size_t)off * m->d;
        detail why;
        callback_begin(&why);
        int rc = o->value_and_grad(o->user, x + (size_t)off * m->d, cn, seed_trampoline, &s,
                                   lc, gc);
        callback_end(&why);
        m->counts.forward += m->uncounted ? 0 : (uint64_t)cn;
        m->counts.backward += m->uncounted ? 0 : (uint64_t)cn;
        if (s.nonfinite >= 0)
            return foolc__error(FOOLC_E_NONFINITE, "model: value_and_grad returned NaN or Inf "
                                "logits for sample %lld of the call%s",
                                (long long)(off + s.nonfinite), why.text);
        if (s.loss_failed)
            return foolc__error(FOOLC_E_ORACLE, "model: the loss on the logits failed "
                                "(samples %d..%d of the call)", off, off + cn - 1);
        if (rc != 0)
            return foolc__error(FOOLC_E_ORACLE, "model: value_and_grad callback returned %d "
                                "(samples %d..%d of the call)%s", rc, off, off + cn - 1,
                                why.text);
        if (s.calls != 1)
            return foolc__error(FOOLC_E_ORACLE, "model: value_and_grad called the seed %d "
                                "times (must be exactly once)", s.calls);
        int64_t bad = first_nonfinite(gc, cn, m->d);
        if (bad >= 0)
            return foolc__error(FOOLC_E_NONFINITE, "model: value_and_grad returned a NaN or "
                                "Inf gradient for sample %lld of the call",
                                (long long)(off + bad));
    }
    return FOOLC_OK;
}
