/* Losses on logits and their gradients, written once: cross-entropy (of the logits at the
 * sample's temperature, with a stable log-sum-exp), the criterion's margin, DLR and class
 * pairs as per-row functions, the logits' temperature, and the one routine
 * that turns a per-row loss into input gradients with the queries attributed per sample.
 * Every attack's gradient goes through foolc__run_grad_rows. */
#include "attack_impl.h"

#include <math.h>
#include <string.h>

foolc__crit_kind foolc__run_crit_kind(const foolc__run *run)
{
    const foolc__criterion_vt *vt = run->crit ? run->crit->vt : NULL;
    if (!vt) return FOOLC__CRIT_OTHER;
    if (!strcmp(vt->name, "misclassification")) return FOOLC__CRIT_MISCLASSIFICATION;
    if (!strcmp(vt->name, "targeted") && run->targets) return FOOLC__CRIT_TARGETED;
    return FOOLC__CRIT_OTHER;
}

foolc_status foolc__run_logits_adv(const foolc__run *run, const float *logits,
                                   const int32_t *idx, int32_t m, uint8_t *adv, double *margin)
{
    for (int32_t a = 0; a < m; a++) {
        int32_t s = idx[a];
        const int32_t *t = run->targets ? &run->targets[s] : NULL;
        FOOLC__CHECK(foolc_criterion_eval(run->crit, logits + (size_t)a * (size_t)run->k, 1,
                                          run->k, &run->labels[s], t, &adv[a],
                                          margin ? &margin[a] : NULL, NULL));
    }
    return FOOLC_OK;
}

/* ---- the per-row losses ---- */

static int margin_row(void *user, int32_t a, int32_t s, const float *z, int32_t k, float *dz,
                      double *loss)
{
    (void)a;
    const foolc__run *run = user;
    const int32_t *t = run->targets ? &run->targets[s] : NULL;
    return foolc_criterion_eval(run->crit, z, 1, k, &run->labels[s], t, NULL, loss, dz) < 0;
}

/* The logits' temperature: their standard deviation over the classes divided by
 * FOOLC__LOGIT_STD, the spread of a typical trained classifier's logits (the reference
 * Fashion-MNIST CNN and MLP: 4.9 at their test images). The cross-entropy and NewtonFool's
 * probability are taken of the logits over it, (z - mean z) / T, whose spread is
 * FOOLC__LOGIT_STD where T was taken (per sample: foolc__run_temp): multiplying a model's logits by any c > 0 (1e3, 1e30, a net distilled at
 * temperature 100 and used at 1) multiplies T by c and leaves these losses, their
 * directions and so every path through them as they were (up to rounding). Constant logits
 * (no spread) keep T = 1. */
#define FOOLC__LOGIT_STD 5.0

double foolc__logit_temp(const float *z, int32_t k, double *mean)
{
    double m = 0, v = 0;
    for (int32_t j = 0; j < k; j++) m += z[j];
    m /= k;
    for (int32_t j = 0; j < k; j++) v += ((double)z[j] - m) * ((double)z[j] - m);
    double t = sqrt(v / k) / FOOLC__LOGIT_STD;
    if (mean) *mean = m;
    return t > 0 && isfinite(t) ? t : 1;
}

foolc_status foolc__run_temps(foolc__run *run)
{
    if (run->temp) return FOOLC_OK;
    run->temp = foolc__calloc((size_t)run->n, sizeof *run->temp);
    return run->temp ? FOOLC_OK : foolc__nomem("logit temperatures");
}

/* Fixed per sample (at its first tempered loss, the clean input for every attack here)
 * rather than taken at each point: with two classes the spread at a point is the margin
 * itself, and a cross-entropy tempered by it would be constant on each side of the
 * boundary. */
double foolc__run_temp(const foolc__run *run, int32_t s, const float *z, int32_t k,
                       double *mean)
{
    double t = foolc__logit_temp(z, k, mean);
    if (!(run->temp[s] > 0)) run->temp[s] = t;
    return run->temp[s];
}

/* Below this cross-entropy the softmax has (nearly) rounded to one-hot: its gradient
 * softmax - onehot would be 1 - p_cls, which underflows (to exactly zero in float for a
 * logit gap of about 100, in double for 750). Where T was taken the tempered gap is at most
 * FOOLC__LOGIT_STD sqrt(k): this needs hundreds of classes, or a point whose logits have
 * spread far more than the clean input's. */
#define CE_TINY 1e-20

/* Cross-entropy of the tempered logits u = (z - mean z) / T (T the sample's temperature,
 * foolc__run_temp), with a stable log-sum-exp; descends -CE(label) or CE(target). The seed is
 * d CE / du = softmax(u) - onehot, T times the gradient with T held constant: the
 * cross-entropy's direction at temperature T, in the logits' own units (as the margin's),
 * so that no factor 1/T (1e-30 for logits of 1e30) takes it towards float's underflow; the
 * attacks' steps use directions only. Where CE < CE_TINY (cls's tempered logit above every
 * other by more than 46), the loss is continued by CE_TINY (1 + log(CE / CE_TINY)), monotone in CE with the same
 * gradient direction and a continuous gradient, computed in log space:
 * log CE = log sum_{j != cls} exp(u_j - u_cls) to within CE, and d log CE / du_j = the
 * softmax over the classes j != cls (minus one at cls), which never underflows. */
static int ce_row(void *user, int32_t a, int32_t s, const float *z, int32_t k, float *dz,
                  double *loss)
{
    (void)a;
    const foolc__run *run = user;
    int targeted = run->targets && foolc_criterion_needs_targets(run->crit);
    int32_t cls = targeted ? run->targets[s] : run->labels[s];
    double mean, it = 1 / foolc__run_temp(run, s, z, k, &mean);
    double sign = targeted ? 1.0 : -1.0, umax = -INFINITY, sum = 0;
#define U(j) (((double)z[j] - mean) * it)
    for (int32_t j = 0; j < k; j++) umax = U(j) > umax ? U(j) : umax;
    for (int32_t j = 0; j < k; j++) sum += exp(U(j) - umax);
    double lse = umax + log(sum), ce = lse - U(cls);
    if (!(ce < CE_TINY)) {
        for (int32_t j = 0; j < k; j++)
            dz[j] = (float)(sign * (exp(U(j) - lse) - (j == cls)));
        *loss = sign * ce;
        return 0;
    }
    double om = -INFINITY, so = 0;   /* the log-sum-exp of the other classes */
    for (int32_t j = 0; j < k; j++) if (j != cls && U(j) > om) om = U(j);
    for (int32_t j = 0; j < k; j++) if (j != cls) so += exp(U(j) - om);
    double log_ce = om + log(so) - U(cls);
    for (int32_t j = 0; j < k; j++)
        dz[j] = (float)(sign * CE_TINY * (j == cls ? -1.0 : exp(U(j) - om) / so));
#undef U
    *loss = sign * CE_TINY * (1 + log_ce - log(CE_TINY));
    return 0;
}

/* The DLR loss (Croce & Hein, arXiv:2003.01690), descended: untargeted
 * (z_y - max_{i != y} z_i) / (z_p1 - z_p3), targeted (max_{i != t} z_i - z_t) /
 * (z_p1 - (z_p3 + z_p4) / 2), with p the classes sorted by decreasing logit. The targeted
 * numerator is the targeted margin rather than the paper's z_y - z_t, so that its zero is
 * the criterion's boundary. */
static int dlr_row(void *user, int32_t a_row, int32_t s, const float *z, int32_t k, float *dz,
                   double *loss)
{
    (void)a_row;
    const foolc__run *run = user;
    int targeted = foolc__run_crit_kind(run) == FOOLC__CRIT_TARGETED;
    int32_t label = run->labels[s], target = run->targets ? run->targets[s] : -1;
    int32_t top[4] = {-1, -1, -1, -1};
    for (int32_t j = 0; j < k; j++) {
        int32_t c = j;
        for (int r = 0; r < 4; r++) {
            if (top[r] < 0 || z[c] > z[top[r]]) {
                int32_t t = top[r];
                top[r] = c;
                c = t;
                if (c < 0) break;
            }
        }
    }
    int32_t a, b;   /* numerator z[a] - z[b] */
    if (!targeted) {
        a = label;
        b = top[0] == label ? top[1] : top[0];
    } else {
        a = top[0] == target ? top[1] : top[0];
        b = target;
    }
    double num = (double)z[a] - z[b], c3 = targeted ? 0.5 * ((double)z[top[2]] + z[top[3]])
                                                     : (double)z[top[2]];
    double den = (double)z[top[0]] - c3 + 1e-12;
    for (int32_t j = 0; j < k; j++) dz[j] = 0;
    dz[a] += (float)(1 / den);
    dz[b] -= (float)(1 / den);
    double q = num / (den * den);
    dz[top[0]] -= (float)q;
    if (targeted) {
        dz[top[2]] += (float)(0.5 * q);
        dz[top[3]] += (float)(0.5 * q);
    } else {
        dz[top[2]] += (float)q;
    }
    *loss = num / den;
    return 0;
}

int foolc__pair_row(void *user, int32_t a, int32_t s, const float *z, int32_t k, float *dz,
                    double *loss)
{
    const foolc__pair *c = user;
    int32_t p = c->pos ? c->pos[a] : c->run->labels[s], q = c->neg[a];
    for (int32_t j = 0; j < k; j++) dz[j] = 0;
    dz[p] += 1;
    dz[q] -= 1;
    *loss = (double)z[p] - z[q];
    return 0;
}

/* ---- gradients ---- */

typedef struct rows_ctx {
    const int32_t *idx;
    foolc__row_fn fn;
    void *user;
    double *loss_d;
} rows_ctx;

static int rows_seed(void *user, int32_t first, const float *logits, int32_t n, int32_t k,
                     float *dlogits, float *loss)
{
    rows_ctx *c = user;
    for (int32_t i = 0; i < n; i++) {
        int32_t a = first + i;
        double l = 0;
        if (c->fn(c->user, a, c->idx[a], logits + (size_t)i * (size_t)k, k,
                  dlogits + (size_t)i * (size_t)k, &l))
            return 1;
        if (loss) loss[i] = (float)l;
        if (c->loss_d) c->loss_d[a] = l;
    }
    return 0;
}

foolc_status foolc__run_grad_rows(foolc__run *run, const float *xs, const int32_t *idx,
                                  int32_t m, foolc__row_fn fn, void *user, float *grad,
                                  float *logits, float *loss_f, double *loss_d)
{
    if (m == 0) return FOOLC_OK;
    FOOLC__CHECK(foolc__run_check(run, xs, idx, m));
    FOOLC__CHECK(foolc__run_heartbeat(run));
    rows_ctx c = {idx, fn, user, loss_d};
    foolc_status st = foolc_model_value_and_grad(run->model, xs, m, rows_seed, &c, logits,
                                                 loss_f, grad);
    if (st != FOOLC_E_BUDGET && !run->uncounted)
        for (int32_t a = 0; a < m; a++) {
            run->queries[idx[a]].forward++;
            run->queries[idx[a]].backward++;
        }
    return st;
}

foolc_status foolc__run_grad(foolc__run *run, const float *xs, const int32_t *idx, int32_t m,
                             foolc__loss loss, float *grad, float *loss_out, float *logits)
{
    foolc__row_fn fn = loss == FOOLC__LOSS_CE ? ce_row : margin_row;
    if (loss == FOOLC__LOSS_DLR) {
        /* DLR needs the misclassification (3+ classes) or targeted (4+) criterion. */
        foolc__crit_kind kind = foolc__run_crit_kind(run);
        if (kind != FOOLC__CRIT_OTHER &&
            run->k >= (kind == FOOLC__CRIT_TARGETED ? 4 : 3))
            fn = dlr_row;
    }
    if (fn == ce_row) FOOLC__CHECK(foolc__run_temps(run));
    return foolc__run_grad_rows(run, xs, idx, m, fn, run, grad, logits, loss_out, NULL);
}
