/* NewtonFool (Jang et al., ACSAC 2017), L2: Newton steps that drive the softmax probability
 * of the label p_y towards 1/k, each of size min(eta ||x0|| ||grad p_y||, p_y - 1/k) along
 * -grad p_y / ||grad p_y||^2. Samples stop once adversarial; those still undecided at the
 * end are extrapolated along their path, and every success is bisected. Untargeted only. */
#include "minnorm.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct nf_config {
    double steps, stepsize, bisect, polish;
} nf_config;

static const foolc__param nf_params[] = {
    FOOLC__PARAM(nf_config, steps, 100, 1, 10000, 1, "Newton iterations"),
    FOOLC__PARAM(nf_config, stepsize, 0.01, 1e-6, 1, 0,
                 "eta: the step is at most eta * ||x0|| * ||grad p_y||"),
    FOOLC__PARAM(nf_config, bisect, 20, 0, 50, 1,
                 "final search towards the clean input, to a bracket 2^-bisect wide"),
    FOOLC__PARAM(nf_config, polish, 10, 0, 100, 1,
                 "final boundary steps, one linearised class pair per other class"),
};

typedef struct nf_ctx {
    const foolc__run *run;
    uint8_t *sat;   /* per row: the softmax has saturated (below) */
    double *temp;   /* per row: the logits' temperature T */
} nf_ctx;

/* Seed of p_y = softmax(u)[label], u = (z - mean z) / T the logits at the sample's
 * temperature (foolc__run_temp, fixed at the clean input), so that the steps do
 * not change when the logits are multiplied by any positive factor (the probabilities of a
 * net whose logits are multiplied by 1e3, or of a distilled one, are those of the plain
 * net): dp_y/dz_j = p_y (1[j = y] - p_j) / T (the seed leaves out the 1/T, 1e-30 for
 * logits of 1e30, which would take it towards float's underflow: the input gradient is
 * divided by T afterwards). Where p_y has rounded to (nearly) one,
 * 1 - p_y = S / (1 + S) with S = sum_{j != y} exp(u_j - u_y) < 1e-20 (possible with
 * hundreds of classes), that gradient underflows; such a row is marked saturated and seeds
 * the log-odds l = log(p_y / (1 - p_y)) instead, whose gradient has the same direction
 * (grad p_y = p_y (1 - p_y) grad l) and never underflows: dl/du_y = 1, dl/du_j = -softmax
 * of the other classes. */
static int prob_row(void *user, int32_t a, int32_t s, const float *z, int32_t k, float *dz,
                    double *loss)
{
    const nf_ctx *c = user;
    int32_t y = c->run->labels[s];
    double mean, t = foolc__run_temp(c->run, s, z, k, &mean), it = 1 / t;
    c->temp[a] = t;
#define U(j) (((double)z[j] - mean) * it)
    double umax = -INFINITY, sum = 0, om = -INFINITY, so = 0;
    for (int32_t j = 0; j < k; j++) umax = U(j) > umax ? U(j) : umax;
    for (int32_t j = 0; j < k; j++) sum += exp(U(j) - umax);
    for (int32_t j = 0; j < k; j++) if (j != y && U(j) > om) om = U(j);
    for (int32_t j = 0; j < k; j++) if (j != y) so += exp(U(j) - om);
    double py = exp(U(y) - umax) / sum;
    c->sat[a] = om + log(so) - U(y) < log(1e-20);
    for (int32_t j = 0; j < k; j++)
        dz[j] = (float)(c->sat[a] ? (j == y ? 1.0 : -exp(U(j) - om) / so)
                                  : py * ((j == y) - exp(U(j) - umax) / sum));
#undef U
    *loss = py;
    return 0;
}

static foolc_status nf_run(foolc__run *run, const void *config)
{
    const nf_config *cfg = config;
    if (run->targets)
        return foolc__error(FOOLC_E_UNSUPPORTED, "newtonfool: untargeted only; criterion %s "
                            "needs targets", foolc_criterion_name(run->crit));
    size_t d = run->d;
    int32_t m = run->n_todo, k = run->k;
    size_t md = foolc__mul((size_t)m, d);
    float *x = foolc__malloc(foolc__mul(md, 3 * sizeof(float)) +
                             foolc__mul((size_t)m, (size_t)k * sizeof(float)));
    double *py = foolc__malloc(foolc__mul((size_t)m, 3 * sizeof(double)));
    int32_t *act = foolc__malloc(foolc__mul((size_t)m, 3 * sizeof(int32_t) + 3));
    foolc_status st = FOOLC_OK;
    if (!x || !py || !act) {
        st = foolc__nomem("newtonfool buffers");
        goto out;
    }
    float *xs = x + md, *grad = xs + md, *logits = grad + md;
    double *x0n = py + m, *temp = x0n + m;
    int32_t *sid = act + m, *pos = sid + m;
    uint8_t *adv = (uint8_t *)(pos + m), *done = adv + m, *sat = done + m;
    nf_ctx ctx = {run, sat, temp};
    if ((st = foolc__run_temps(run)) < 0) goto out;
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)run->todo[a] * d;
        memcpy(x + (size_t)a * d, x0, d * sizeof(float));
        x0n[a] = foolc__norm(FOOLC_L2, x0, d);
        done[a] = 0;
    }
    for (int32_t it = 0; it < (int32_t)cfg->steps; it++) {
        int32_t na = 0;
        for (int32_t a = 0; a < m; a++) {
            if (done[a]) continue;
            memcpy(xs + (size_t)na * d, x + (size_t)a * d, d * sizeof(float));
            act[na] = a;
            sid[na++] = run->todo[a];
        }
        if (na == 0) break;
        if ((st = foolc__run_grad_rows(run, xs, sid, na, prob_row, &ctx, grad, logits, NULL,
                                       py)) < 0)
            goto out;
        if ((st = foolc__run_logits_adv(run, logits, sid, na, adv, NULL)) < 0) goto out;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q];
            float *xa = x + (size_t)a * d;
            float *g = grad + (size_t)q * d;
            if (adv[q]) {
                foolc__run_offer(run, sid[q], xs + (size_t)q * d);
                done[a] = 1;
                continue;
            }
            if (temp[q] != 1) foolc__mn_scale(g, 1 / temp[q], d);
            double gn = foolc__norm(FOOLC_L2, g, d);
            /* Saturated: g is grad l, and the step min(eta ||x0|| gn, p_y - 1/k) / gn along
             * -grad p_y is eta ||x0|| (gn of p_y underflows). */
            double del = sat[q] ? cfg->stepsize * x0n[a] * gn
                                : fmin(cfg->stepsize * x0n[a] * gn, py[q] - 1.0 / k);
            if (!(gn > 0) || !(del > 0)) {
                done[a] = 2;   /* stalled: extrapolated below */
                continue;
            }
            double f = del / (gn * gn);
            for (size_t j = 0; j < d; j++) {
                double v = (double)xa[j] - f * g[j];
                xa[j] = v < run->lo ? run->lo : v > run->hi ? run->hi : (float)v;
            }
        }
        if ((st = foolc__run_progress(run, it, (int64_t)cfg->steps)) < 0) goto out;
    }
    /* Undecided samples: push further along their path, 2 % at a time (up to 2x). */
    for (int32_t j = 1; j <= 36; j++) {
        int32_t na = 0;
        double f = pow(1.02, j);
        for (int32_t a = 0; a < m; a++) {
            if (done[a] == 1) continue;
            const float *x0 = run->x + (size_t)run->todo[a] * d, *xa = x + (size_t)a * d;
            float *o = xs + (size_t)na * d;
            for (size_t q = 0; q < d; q++) {
                double v = (double)x0[q] + f * ((double)xa[q] - x0[q]);
                o[q] = v < run->lo ? run->lo : v > run->hi ? run->hi : (float)v;
            }
            act[na] = a;
            sid[na++] = run->todo[a];
        }
        if (na == 0) break;
        if ((st = foolc__run_is_adv(run, xs, sid, na, adv, NULL)) < 0) goto out;
        for (int32_t q = 0; q < na; q++)
            if (adv[q]) {
                foolc__run_offer(run, sid[q], xs + (size_t)q * d);
                done[act[q]] = 1;
            }
    }
    st = foolc__mn_polish_classes(run, FOOLC_L2, (int32_t)cfg->polish,
                                  FOOLC__POLISH_MAX_CLASSES);
    if (st >= 0) st = foolc__mn_finish(run, (int32_t)cfg->bisect);
out:
    foolc__free(x);
    foolc__free(py);
    foolc__free(act);
    return st;
}

FOOLC__ATTACK(newtonfool, "newtonfool", FOOLC_L2, FOOLC__GRAD, nf_params, nf_config, nf_run, NULL,
              "NewtonFool (L2): Newton steps driving the label's probability to 1/k");
