/* The machinery every attack shares: model calls whose queries are attributed to samples,
 * adversarial checks through the criterion (losses: lib/loss.c), keeping the best
 * adversarial per sample, progress, and the per-sample epsilon search. */
#include "arena.h"
#include "attack_impl.h"
#include "numeric.h"

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
    if (run->uncounted) return;
    for (int32_t i = 0; i < m; i++) {
        foolc_counts *q = &run->queries[idx[i]];
        q->forward += (uint64_t)fwd;
        q->backward += (uint64_t)bwd;
        q->decided += (uint64_t)dec;
    }
}

/* Whether any of the n values is NaN or outside [lo, hi] (in blocks: FOOLC__VEC). */
FOOLC__VEC
static int outside(size_t n, const float *restrict xs, float lo, float hi)
{
    int bad = 0;
#define OUTSIDE(j) bad |= !(xs[j] >= lo && xs[j] <= hi)
    FOOLC__BLOCKED(n, OUTSIDE);
#undef OUTSIDE
    return bad;
}

/* The library's check on itself before any image goes to the model: an attack that built a
 * NaN, an Inf or a value outside the box has a bug, and the model must not be asked about
 * it (a model would answer something, and the answer would be wrong without a trace). */
foolc_status foolc__run_check(const foolc__run *run, const float *xs, const int32_t *idx,
                              int32_t m)
{
    size_t n = foolc__mul((size_t)m, run->d);
    float lo = run->lo, hi = run->hi;
    if (!outside(n, xs, lo, hi)) return FOOLC_OK;
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
    FOOLC__CHECK(foolc__run_heartbeat(run));
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
    FOOLC__CHECK(foolc__run_heartbeat(run));
    foolc_status st = foolc_model_decision(run->model, xs, m, pred);
    if (st != FOOLC_E_BUDGET) attribute(run, idx, m, 0, 0, 1);
    FOOLC__CHECK(st);
    FOOLC__CHECK(foolc_criterion_eval_labels(run->crit, pred, m, labels, targets, is_adv));
    if (margin)
        for (int32_t i = 0; i < m; i++) margin[i] = is_adv[i] ? -1.0 : 1.0;
    return FOOLC_OK;
}

/* Keeps xadv as sample i's result when it is in the box and smaller in the run's norm than
 * the best so far (or, with ties, no larger). */
static int offer(foolc__run *run, int32_t i, const float *xadv, int ties)
{
    for (size_t j = 0; j < run->d; j++)
        if (!(xadv[j] >= run->lo && xadv[j] <= run->hi)) return 0;
    const float *x0 = run->x + (size_t)i * run->d;
    double dist = foolc_distance(run->norm, x0, xadv, run->d), best = run->res->distance[i];
    if (!(ties ? dist <= best : dist < best)) return 0;
    memcpy(run->res->x_adv + (size_t)i * run->d, xadv, run->d * sizeof(float));
    run->res->distance[i] = (float)dist;
    run->res->success[i] = 1;
    return 1;
}

int foolc__run_offer(foolc__run *run, int32_t i, const float *xadv)
{
    return offer(run, i, xadv, 0);
}

int foolc__run_offer_tie(foolc__run *run, int32_t i, const float *xadv)
{
    return offer(run, i, xadv, 1);
}

foolc_status foolc__run_heartbeat(foolc__run *run)
{
    return foolc__run_progress(run, run->prog_done, run->prog_total);
}

foolc_status foolc__run_progress(foolc__run *run, int64_t done, int64_t total)
{
    if (run->nested) {
        done = run->prog_done;
        total = run->prog_total;
    }
    run->prog_done = done;
    run->prog_total = total;
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
    foolc__arena ar = {0};
    double *lo, *hi, *cur, *eps;
    int32_t *act, *sid;
    uint8_t *adv;
    float *cand;
    for (int pass = 0; pass < 2; pass++) {
        lo = foolc__arena_take(&ar, (size_t)m, sizeof *lo);
        hi = foolc__arena_take(&ar, (size_t)m, sizeof *hi);
        cur = foolc__arena_take(&ar, (size_t)m, sizeof *cur);
        eps = foolc__arena_take(&ar, (size_t)m, sizeof *eps);
        act = foolc__arena_take(&ar, (size_t)m, sizeof *act);
        sid = foolc__arena_take(&ar, (size_t)m, sizeof *sid);
        adv = foolc__arena_take(&ar, (size_t)m, sizeof *adv);
        cand = foolc__arena_take(&ar, foolc__mul((size_t)m, d), sizeof *cand);
        if (pass == 0) FOOLC__CHECK(foolc__arena_alloc(&ar, "epsilon search"));
    }
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
    foolc__arena_free(&ar);
    return st;
}

uint64_t foolc__run_used(const foolc__run *run, int32_t i)
{
    return run->queries[i].forward + run->queries[i].decided;
}

int foolc__run_may(const foolc__run *run, int32_t i, double max_q, uint64_t cost)
{
    return max_q <= 0 || (double)(foolc__run_used(run, i) + cost) <= max_q;
}

/* The next point of a bracket [lo, hi] (margins flo > 0 > fhi): regula falsi on the
 * margin, or the midpoint when the margins do not bracket a root or when bisect is set. */
static double bracket_next(double lo, double hi, double flo, double fhi, int bisect)
{
    double mid = 0.5 * (lo + hi);
    if (bisect || !(flo > 0) || !(fhi < 0) || !isfinite(flo) || !isfinite(fhi)) return mid;
    double t = hi - fhi * (hi - lo) / (fhi - flo);
    return t > lo && t < hi ? t : mid;
}

foolc_status foolc__run_bracket(foolc__run *run, const int32_t *idx, const int32_t *rows,
                                int32_t n, double *lo, double *hi, double *flo, double *fhi,
                                const foolc__bracket_opts *o)
{
    if (n <= 0 || o->steps <= 0) return FOOLC_OK;
    size_t d = run->d;
    int32_t chunk = o->chunk > 0 && o->chunk < n ? o->chunk : n;
    /* Per-row state is indexed by the caller's row numbers, up to the largest. */
    int32_t rmax = 0;
    for (int32_t q = 0; q < n; q++) rmax = rows[q] > rmax ? rows[q] : rmax;
    size_t nr = (size_t)rmax + 1;
    /* Per row: evaluations left, the side kept last and the last two bracket widths
     * (regula); per chunk: the points, their samples, verdicts, margins and points t. */
    foolc__arena ar = {0};
    int32_t *act, *left, *side, *sid;
    double *wa, *wb, *f, *tq;
    float *xs;
    uint8_t *adv;
    for (int pass = 0; pass < 2; pass++) {
        act = foolc__arena_take(&ar, (size_t)n, sizeof *act);
        left = foolc__arena_take(&ar, nr, sizeof *left);
        side = foolc__arena_take(&ar, nr, sizeof *side);
        wa = foolc__arena_take(&ar, nr, sizeof *wa);
        wb = foolc__arena_take(&ar, nr, sizeof *wb);
        sid = foolc__arena_take(&ar, (size_t)chunk, sizeof *sid);
        f = foolc__arena_take(&ar, (size_t)chunk, sizeof *f);
        tq = foolc__arena_take(&ar, (size_t)chunk, sizeof *tq);
        xs = foolc__arena_take(&ar, foolc__mul((size_t)chunk, d), sizeof *xs);
        adv = foolc__arena_take(&ar, (size_t)chunk, sizeof *adv);
        if (pass == 0) FOOLC__CHECK(foolc__arena_alloc(&ar, "bracket search"));
    }
    foolc_status st = FOOLC_OK;
    int32_t na = 0;
    for (int32_t q = 0; q < n; q++) {
        int32_t a = rows[q];
        act[na++] = a;
        left[a] = o->steps;
        side[a] = 0;
        wa[a] = wb[a] = INFINITY;
    }
    while (na > 0) {
        int32_t nb = 0;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q];
            double tol = o->width ? o->width[a] : o->tol;
            if (left[a] > 0 && hi[a] - lo[a] > tol && foolc__run_may(run, idx[a], o->max_q, 1))
                act[nb++] = a;
        }
        if ((na = nb) == 0) break;
        for (int32_t q0 = 0; q0 < na; q0 += chunk) {
            int32_t nc = na - q0 < chunk ? na - q0 : chunk;
            for (int32_t q = 0; q < nc; q++) {
                int32_t a = act[q0 + q];
                tq[q] = o->regula ? bracket_next(lo[a], hi[a], flo[a], fhi[a],
                                                 hi[a] - lo[a] > 0.5 * wb[a])
                                  : 0.5 * (lo[a] + hi[a]);
                o->path(o->path_ctx, run, a, tq[q], xs + (size_t)q * d);
                sid[q] = idx[a];
            }
            st = o->judge ? o->judge(o->judge_ctx, run, xs, sid, nc, adv, f)
                          : foolc__run_is_adv(run, xs, sid, nc, adv, NULL);
            if (st < 0) goto out;
            for (int32_t q = 0; q < nc; q++) {
                int32_t a = act[q0 + q];
                double t = tq[q];
                if (t == lo[a] || t == hi[a]) left[a] = 0;   /* no room left in doubles */
                wb[a] = wa[a];
                wa[a] = hi[a] - lo[a];
                if (adv[q]) {
                    hi[a] = t;
                    if (o->regula) {
                        fhi[a] = f[q] < 0 ? f[q] : -0.0;
                        if (side[a] < 0) flo[a] *= 0.5;
                    }
                    side[a] = -1;
                } else {
                    lo[a] = t;
                    if (o->regula) {
                        flo[a] = f[q] > 0 ? f[q] : 0.0;
                        if (side[a] > 0) fhi[a] *= 0.5;
                    }
                    side[a] = 1;
                }
                left[a]--;
            }
        }
    }
out:
    foolc__arena_free(&ar);
    return st;
}

/* The straight segment from the clean input to xadv's row. */
typedef struct segment {
    const int32_t *idx;
    const float *xadv;
} segment;

static void segment_point(void *ctx, const foolc__run *run, int32_t a, double t, float *o)
{
    const segment *c = ctx;
    size_t d = run->d;
    const float *x0 = run->x + (size_t)c->idx[a] * d, *xe = c->xadv + (size_t)a * d;
    for (size_t j = 0; j < d; j++) o[j] = (float)(x0[j] + t * ((double)xe[j] - x0[j]));
}

foolc_status foolc__run_bisect(foolc__run *run, const int32_t *idx, int32_t m, float *xadv,
                               int32_t steps, uint8_t *ok)
{
    if (m == 0) return FOOLC_OK;
    size_t d = run->d;
    foolc__arena ar = {0};
    double *lo, *hi;
    int32_t *rows;
    uint8_t *good;
    for (int pass = 0; pass < 2; pass++) {
        lo = foolc__arena_take(&ar, (size_t)m, sizeof *lo);
        hi = foolc__arena_take(&ar, (size_t)m, sizeof *hi);
        rows = foolc__arena_take(&ar, (size_t)m, sizeof *rows);
        good = foolc__arena_take(&ar, (size_t)m, sizeof *good);
        if (pass == 0) FOOLC__CHECK(foolc__arena_alloc(&ar, "bisection"));
    }
    /* Check the end points first: only adversarial ones are bisected. */
    foolc_status st = foolc__run_is_adv(run, xadv, idx, m, good, NULL);
    int32_t na = 0;
    for (int32_t a = 0; a < m; a++) {
        lo[a] = 0;   /* fraction of the way from x0 to xadv: lo not adversarial, hi is */
        hi[a] = 1;
        if (st >= 0 && good[a]) rows[na++] = a;
    }
    segment seg = {idx, xadv};
    foolc__bracket_opts o = {.path = segment_point, .path_ctx = &seg, .steps = steps};
    if (st >= 0) st = foolc__run_bracket(run, idx, rows, na, lo, hi, NULL, NULL, &o);
    for (int32_t a = 0; a < m; a++) {
        if (ok) ok[a] = st >= 0 && good[a];
        if (!(st >= 0 && good[a]) || hi[a] >= 1) {
            if (st >= 0 && good[a]) foolc__run_offer(run, idx[a], xadv + (size_t)a * d);
            continue;
        }
        /* Rebuild the adversarial end of the bracket exactly as it was evaluated. */
        float *xe = xadv + (size_t)a * d;
        segment_point(&seg, run, a, hi[a], xe);
        foolc__run_offer(run, idx[a], xe);
    }
    foolc__arena_free(&ar);
    return st;
}
