/* The machinery every attack shares: model calls whose queries are attributed to samples,
 * adversarial checks through the criterion, the losses attacks descend, keeping the best
 * adversarial per sample, progress, and the per-sample epsilon search. */
#include "attack_impl.h"

#include <math.h>
#include <string.h>

static foolc_status grow(void **p, size_t *cap, size_t need, size_t elem, const char *what)
{
    if (*cap >= need) return FOOLC_OK;
    void *q = foolc__realloc(*p, foolc__mul(need, elem));
    if (!q) return foolc__nomem(what);
    *p = q;
    *cap = need;
    return FOOLC_OK;
}

static void attribute(foolc__run *run, const int32_t *idx, int32_t m, int fwd, int bwd, int dec)
{
    for (int32_t i = 0; i < m; i++) {
        foolc_counts *q = &run->queries[idx[i]];
        q->forward += (uint64_t)fwd;
        q->backward += (uint64_t)bwd;
        q->decided += (uint64_t)dec;
    }
}

/* The library's check on itself before any image goes to the model: an attack that built a
 * NaN, an Inf or a value outside the box has a bug, and the model must not be asked about
 * it (a model would answer something, and the answer would be wrong without a trace). */
foolc_status foolc__run_check(const foolc__run *run, const float *xs, const int32_t *idx,
                              int32_t m)
{
    size_t n = foolc__mul((size_t)m, run->d);
    float lo = run->lo, hi = run->hi;
    int bad = 0;
    for (size_t j = 0; j < n; j++) bad |= !(xs[j] >= lo && xs[j] <= hi);
    if (!bad) return FOOLC_OK;
    for (size_t j = 0; j < n; j++)
        if (!(xs[j] >= lo && xs[j] <= hi))
            return foolc__error(FOOLC_E_INTERNAL, "%s: built an image for sample %d with value "
                                "%g at %zu, outside [%g, %g] (a bug in the attack: please "
                                "report it)", run->vt->name, idx[j / run->d], (double)xs[j],
                                j % run->d, (double)lo, (double)hi);
    return FOOLC_OK;
}

foolc_status foolc__run_scores(foolc__run *run, const float *xs, const int32_t *idx,
                               int32_t m, float *logits)
{
    if (m == 0) return FOOLC_OK;
    FOOLC__CHECK(foolc__run_check(run, xs, idx, m));
    foolc_status st = foolc_model_scores(run->model, xs, m, logits);
    if (st != FOOLC_E_BUDGET) attribute(run, idx, m, 1, 0, 0);
    return st;
}

/* Gathers labels and targets of samples idx into the run's label scratch. */
static foolc_status gather_labels(foolc__run *run, const int32_t *idx, int32_t m,
                                  int32_t **labels, int32_t **targets, int32_t **pred)
{
    FOOLC__CHECK(grow((void **)&run->s_labels, &run->s_labels_cap, 3 * (size_t)m,
                      sizeof(int32_t), "run labels"));
    *labels = run->s_labels;
    *targets = run->targets ? run->s_labels + m : NULL;
    *pred = run->s_labels + 2 * (size_t)m;
    for (int32_t i = 0; i < m; i++) {
        (*labels)[i] = run->labels[idx[i]];
        if (run->targets) (*targets)[i] = run->targets[idx[i]];
    }
    return FOOLC_OK;
}

foolc_status foolc__run_is_adv(foolc__run *run, const float *xs, const int32_t *idx,
                               int32_t m, uint8_t *is_adv, double *margin)
{
    if (m == 0) return FOOLC_OK;
    int32_t *labels, *targets, *pred;
    FOOLC__CHECK(gather_labels(run, idx, m, &labels, &targets, &pred));
    if (foolc_model_caps(run->model) & FOOLC_NEEDS_SCORES) {
        FOOLC__CHECK(grow((void **)&run->s_logits, &run->s_logits_cap,
                          foolc__mul((size_t)m, (size_t)run->k), sizeof(float), "run logits"));
        FOOLC__CHECK(foolc__run_scores(run, xs, idx, m, run->s_logits));
        return foolc_criterion_eval(run->crit, run->s_logits, m, run->k, labels, targets,
                                    is_adv, margin, NULL);
    }
    FOOLC__CHECK(foolc__run_check(run, xs, idx, m));
    foolc_status st = foolc_model_decision(run->model, xs, m, pred);
    if (st != FOOLC_E_BUDGET) attribute(run, idx, m, 0, 0, 1);
    FOOLC__CHECK(st);
    FOOLC__CHECK(foolc_criterion_eval_labels(run->crit, pred, m, labels, targets, is_adv));
    if (margin)
        for (int32_t i = 0; i < m; i++) margin[i] = is_adv[i] ? -1.0 : 1.0;
    return FOOLC_OK;
}

typedef struct loss_ctx {
    foolc__run *run;
    const int32_t *idx;
    foolc__loss kind;
} loss_ctx;

static int loss_rows(void *user, int32_t first, const float *logits, int32_t n, int32_t k,
                     float *dlogits, float *loss)
{
    loss_ctx *c = user;
    foolc__run *run = c->run;
    for (int32_t i = 0; i < n; i++) {
        int32_t s = c->idx[first + i];
        const float *z = logits + (size_t)i * (size_t)k;
        float *dz = dlogits + (size_t)i * (size_t)k;
        double l;
        if (c->kind == FOOLC__LOSS_MARGIN) {
            const int32_t *t = run->targets ? &run->targets[s] : NULL;
            if (foolc_criterion_eval(run->crit, z, 1, k, &run->labels[s], t, NULL, &l, dz) < 0)
                return 1;
        } else {
            /* Cross-entropy with a stable log-sum-exp; descend -CE(label) or CE(target). */
            int targeted = run->targets && foolc_criterion_needs_targets(run->crit);
            int32_t cls = targeted ? run->targets[s] : run->labels[s];
            double sign = targeted ? 1.0 : -1.0, zmax = z[0], sum = 0;
            for (int32_t j = 1; j < k; j++) zmax = z[j] > zmax ? z[j] : zmax;
            for (int32_t j = 0; j < k; j++) sum += exp((double)z[j] - zmax);
            double lse = zmax + log(sum);
            for (int32_t j = 0; j < k; j++)
                dz[j] = (float)(sign * (exp((double)z[j] - lse) - (j == cls)));
            l = sign * (lse - (double)z[cls]);
        }
        if (loss) loss[i] = (float)l;
    }
    return 0;
}

foolc_status foolc__run_grad(foolc__run *run, const float *xs, const int32_t *idx, int32_t m,
                             foolc__loss loss, float *grad, float *loss_out, float *logits)
{
    if (m == 0) return FOOLC_OK;
    FOOLC__CHECK(foolc__run_check(run, xs, idx, m));
    loss_ctx c = {run, idx, loss};
    foolc_status st = foolc_model_value_and_grad(run->model, xs, m, loss_rows, &c, logits,
                                                 loss_out, grad);
    if (st != FOOLC_E_BUDGET) attribute(run, idx, m, 1, 1, 0);
    return st;
}

int foolc__run_offer(foolc__run *run, int32_t i, const float *xadv)
{
    for (size_t j = 0; j < run->d; j++)
        if (!(xadv[j] >= run->lo && xadv[j] <= run->hi)) return 0;
    const float *x0 = run->x + (size_t)i * run->d;
    double dist = foolc_distance(run->norm, x0, xadv, run->d);
    if (!(dist < (double)run->res->distance[i])) return 0;
    memcpy(run->res->x_adv + (size_t)i * run->d, xadv, run->d * sizeof(float));
    run->res->distance[i] = (float)dist;
    run->res->success[i] = 1;
    return 1;
}

foolc_status foolc__run_progress(foolc__run *run, int64_t done, int64_t total)
{
    if (run->progress && run->progress(run->progress_user, done, total))
        return foolc__error(FOOLC_E_CANCELLED, "%s: cancelled by the progress callback at "
                            "%lld of %lld", run->vt->name, (long long)done, (long long)total);
    return FOOLC_OK;
}

/* Evaluates the candidates whose adv flag is FOOLC__ADV_UNKNOWN, in one batch. */
static foolc_status check_unknown(foolc__run *run, const int32_t *sid, int32_t na,
                                  const float *cand, uint8_t *adv)
{
    size_t d = run->d;
    int32_t nu = 0;
    for (int32_t a = 0; a < na; a++) nu += adv[a] == FOOLC__ADV_UNKNOWN;
    if (nu == 0) return FOOLC_OK;
    if (nu == na) return foolc__run_is_adv(run, cand, sid, na, adv, NULL);
    size_t bytes = foolc__mul(foolc__mul((size_t)nu, d), sizeof(float));
    float *xs = foolc__malloc(bytes + (size_t)nu * (sizeof(int32_t) + 1));
    if (!xs) return foolc__nomem("candidate check");
    int32_t *ids = (int32_t *)(xs + (size_t)nu * d);
    uint8_t *res = (uint8_t *)(ids + nu);
    int32_t u = 0;
    for (int32_t a = 0; a < na; a++)
        if (adv[a] == FOOLC__ADV_UNKNOWN) {
            memcpy(xs + (size_t)u * d, cand + (size_t)a * d, d * sizeof(float));
            ids[u++] = sid[a];
        }
    foolc_status st = foolc__run_is_adv(run, xs, ids, nu, res, NULL);
    u = 0;
    for (int32_t a = 0; st >= 0 && a < na; a++)
        if (adv[a] == FOOLC__ADV_UNKNOWN) adv[a] = res[u++];
    foolc__free(xs);
    return st;
}

foolc_status foolc__eps_search(foolc__run *run, const int32_t *idx, int32_t m,
                               const foolc__eps_opts *o, foolc__make_fn make, void *ctx)
{
    if (m == 0) return FOOLC_OK;
    size_t d = run->d;
    /* One block: lo, hi, cur (doubles), act, sid (ints), adv (bytes), candidates. */
    size_t n_dbl = 4 * (size_t)m, n_int = 2 * (size_t)m;
    size_t bytes = n_dbl * sizeof(double) + n_int * sizeof(int32_t) + (size_t)m +
                   foolc__mul(foolc__mul((size_t)m, d), sizeof(float)) + 16;
    char *block = foolc__malloc(bytes);
    if (!block) return foolc__nomem("epsilon search");
    double *lo = (double *)block, *hi = lo + m, *cur = hi + m, *eps = cur + m;
    int32_t *act = (int32_t *)(eps + m), *sid = act + m;
    uint8_t *adv = (uint8_t *)(sid + m);
    float *cand = (float *)(((uintptr_t)(adv + m) + 15) & ~(uintptr_t)15);
    int32_t na = m, finished = 0;
    for (int32_t j = 0; j < m; j++) {
        lo[j] = 0;
        hi[j] = INFINITY;
        cur[j] = o->fixed > 0 ? o->fixed : o->eps_init;
        act[j] = j;
    }
    foolc_status st = FOOLC_OK;
    while (na > 0) {
        for (int32_t a = 0; a < na; a++) {
            sid[a] = idx[act[a]];
            eps[a] = cur[act[a]];
        }
        memset(adv, FOOLC__ADV_UNKNOWN, (size_t)na);
        if ((st = make(ctx, run, sid, eps, na, cand, adv)) < 0) break;
        if ((st = check_unknown(run, sid, na, cand, adv)) < 0) break;
        int32_t keep = 0;
        for (int32_t a = 0; a < na; a++) {
            int32_t j = act[a];
            int done = 0;
            if (adv[a]) {
                hi[j] = cur[j];
                foolc__run_offer(run, sid[a], cand + (size_t)a * d);
            } else {
                lo[j] = cur[j];
            }
            if (o->fixed > 0) {
                done = 1;
            } else if (isinf(hi[j])) {
                if (cur[j] >= o->eps_max) done = 1;
                else cur[j] = fmin(cur[j] * o->growth, o->eps_max);
            } else if (hi[j] - lo[j] <= o->rtol * hi[j]) {
                done = 1;
            } else {
                cur[j] = 0.5 * (lo[j] + hi[j]);
            }
            if (done) finished++;
            else act[keep++] = j;
        }
        na = keep;
        if ((st = foolc__run_progress(run, finished, m)) < 0) break;
    }
    foolc__free(block);
    return st;
}

foolc_status foolc__run_bisect(foolc__run *run, const int32_t *idx, int32_t m, float *xadv,
                               int32_t steps, uint8_t *ok)
{
    if (m == 0) return FOOLC_OK;
    size_t d = run->d;
    size_t bytes = foolc__mul(foolc__mul((size_t)m, d), sizeof(float));
    double *lo = foolc__malloc(bytes + (size_t)m * (2 * sizeof(double) + 2 * sizeof(int32_t) + 2));
    if (!lo) return foolc__nomem("bisection");
    double *hi = lo + m;
    float *xs = (float *)(hi + m);
    int32_t *act = (int32_t *)(xs + (size_t)m * d), *sid = act + m;
    uint8_t *adv = (uint8_t *)(sid + m), *good = adv + m;
    /* Check the end points first: only adversarial ones are bisected. */
    foolc_status st = foolc__run_is_adv(run, xadv, idx, m, good, NULL);
    int32_t na = 0;
    for (int32_t a = 0; a < m; a++) {
        lo[a] = 0;   /* fraction of the way from x0 to xadv: lo not adversarial, hi is */
        hi[a] = 1;
        if (st >= 0 && good[a]) act[na++] = a;
    }
    for (int32_t it = 0; st >= 0 && it < steps && na > 0; it++) {
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q];
            const float *x0 = run->x + (size_t)idx[a] * d, *xe = xadv + (size_t)a * d;
            float *o = xs + (size_t)q * d;
            double t = 0.5 * (lo[a] + hi[a]);
            for (size_t j = 0; j < d; j++) o[j] = (float)(x0[j] + t * ((double)xe[j] - x0[j]));
            sid[q] = idx[a];
        }
        if ((st = foolc__run_is_adv(run, xs, sid, na, adv, NULL)) < 0) break;
        for (int32_t q = 0; q < na; q++) {
            double t = 0.5 * (lo[act[q]] + hi[act[q]]);
            if (adv[q]) hi[act[q]] = t; else lo[act[q]] = t;
        }
    }
    for (int32_t a = 0; a < m; a++) {
        if (ok) ok[a] = st >= 0 && good[a];
        if (!(st >= 0 && good[a]) || hi[a] >= 1) {
            if (st >= 0 && good[a]) foolc__run_offer(run, idx[a], xadv + (size_t)a * d);
            continue;
        }
        /* Rebuild the adversarial end of the bracket exactly as it was evaluated. */
        const float *x0 = run->x + (size_t)idx[a] * d;
        float *xe = xadv + (size_t)a * d;
        for (size_t j = 0; j < d; j++) xe[j] = (float)(x0[j] + hi[a] * ((double)xe[j] - x0[j]));
        foolc__run_offer(run, idx[a], xe);
    }
    foolc__free(lo);
    return st;
}
