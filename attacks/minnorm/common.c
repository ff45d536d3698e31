/* Shared machinery of the minimum-norm attacks: custom per-row losses on logits with
 * queries attributed per sample, the criterion's verdict from logits, Lp-ball projections
 * and the exact minimal-Lp steps onto a hyperplane within the box (FAB's projections). */
#include "arena.h"
#include "minnorm.h"
#include "numeric.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* FP exceptions are never trapped here: telling gcc so lets it if-convert the clamps. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#define MN_B FOOLC__BLOCK

typedef struct margin_ctx {
    foolc__run *run;
    const double *scale;
    double kappa;
    double *margin;
    uint8_t *adv;
} margin_ctx;

static int margin_row(void *user, int32_t a, int32_t s, const float *z, int32_t k, float *dz,
                      double *loss)
{
    margin_ctx *c = user;
    foolc__run *run = c->run;
    uint8_t adv;
    double mg;
    const int32_t *t = run->targets ? &run->targets[s] : NULL;
    if (foolc_criterion_eval(run->crit, z, 1, k, &run->labels[s], t, &adv, &mg, dz) < 0)
        return 1;
    double sc = c->scale ? c->scale[a] : 1.0;
    if (!(mg > -c->kappa)) sc = 0;
    for (int32_t j = 0; j < k; j++) dz[j] = (float)(sc * dz[j]);
    *loss = sc * mg;
    if (c->margin) c->margin[a] = mg;
    if (c->adv) c->adv[a] = adv;
    return 0;
}

foolc_status foolc__mn_margin_grad(foolc__run *run, const float *xs, const int32_t *idx,
                                   int32_t m, const double *scale, double kappa, float *grad,
                                   double *margin, uint8_t *adv, float *logits)
{
    margin_ctx c = {run, scale, kappa, margin, adv};
    return foolc__run_grad_rows(run, xs, idx, m, margin_row, &c, grad, logits, NULL, NULL);
}

double foolc__mn_safe(const float *z, int32_t k)
{
    double m = 0;
    for (int32_t j = 0; j < k; j++) m = fmax(m, fabs((double)z[j]));
    return 2e-6 * (1 + m);
}

int foolc__mn_cmp_rank(const void *a, const void *b)
{
    const foolc__mn_rank *x = a, *y = b;
    return x->key > y->key ? -1 : x->key < y->key ? 1 : (x->j > y->j) - (x->j < y->j);
}

double foolc__mn_logit_scale(const float *z, int32_t k)
{
    double lo = z[0], hi = z[0];
    for (int32_t j = 1; j < k; j++) {
        lo = fmin(lo, (double)z[j]);
        hi = fmax(hi, (double)z[j]);
    }
    return fmax(1.0, (hi - lo) / 100);
}

FOOLC__VEC
void foolc__mn_axpy(float *restrict v, const float *restrict g, double s, size_t d)
{
    const float sf = (float)s;
    size_t j = 0;
    for (; j + MN_B <= d; j += MN_B)
        for (size_t k = 0; k < MN_B; k++) v[j + k] += sf * g[j + k];
    for (; j < d; j++) v[j] += sf * g[j];
}

FOOLC__VEC
void foolc__mn_scale(float *v, double f, size_t d)
{
    const float ff = (float)f;
    size_t j = 0;
    for (; j + MN_B <= d; j += MN_B)
        for (size_t k = 0; k < MN_B; k++) v[j + k] *= ff;
    for (; j < d; j++) v[j] *= ff;
}

FOOLC__VEC
void foolc__mn_box_grad(const float *restrict x, float *restrict g, size_t d, float lo,
                        float hi)
{
    size_t j = 0;
    for (; j + MN_B <= d; j += MN_B)
        for (size_t k = 0; k < MN_B; k++) {
            float v = x[j + k], gv = g[j + k];
            int out = (v <= lo && gv > 0.0f) | (v >= hi && gv < 0.0f);
            g[j + k] = out ? 0.0f : gv;
        }
    for (; j < d; j++)
        if ((x[j] <= lo && g[j] > 0) || (x[j] >= hi && g[j] < 0)) g[j] = 0;
}

FOOLC__VEC
void foolc__mn_box(const float *restrict x0, float *restrict delta, size_t d, float lo,
                   float hi)
{
    size_t j = 0;
    for (; j + MN_B <= d; j += MN_B)
        for (size_t k = 0; k < MN_B; k++) {
            float v = x0[j + k] + delta[j + k];
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            delta[j + k] = v - x0[j + k];
        }
    for (; j < d; j++) {
        float v = x0[j] + delta[j];
        v = v < lo ? lo : v > hi ? hi : v;
        delta[j] = v - x0[j];
    }
}


FOOLC__VEC
void foolc__mn_clip_step(const float *x0, const float *delta, size_t d, float lo, float hi,
                         float *out)
{
    size_t j = 0;
    for (; j + MN_B <= d; j += MN_B)
        for (size_t k = 0; k < MN_B; k++) {
            float v = x0[j + k] + delta[j + k];
            v = v < lo ? lo : v;
            out[j + k] = v > hi ? hi : v;
        }
    for (; j < d; j++) {
        float v = x0[j] + delta[j];
        out[j] = v < lo ? lo : v > hi ? hi : v;
    }
}

typedef struct keyed {
    double key;
    size_t i;
} keyed;

/* The order of the greedy walks below: by key, then by index (so keys are unique). */
static int key_lt(const keyed *x, const keyed *y)
{
    return x->key < y->key || (x->key == y->key && x->i < y->i);
}

size_t foolc__mn_plane_work(size_t d)
{
    return foolc__mul(d, 2 * sizeof(double) + sizeof(keyed));
}

/* The walks over the items in key order (the L1 greedy by decreasing |w|; for L2 and Linf
 * the breakpoints of h(lambda) = sum_j |w_j| min(lambda alpha_j, cap_j)) stop at the first
 * item q whose test passes; the test is monotone in q. Instead of sorting, a quickselect
 * narrows a range of candidates around a pivot, carrying the sums of the items known to be
 * before (full: sum |w| cap) and after (slope: sum |w| alpha) the range: O(n) expected. */
typedef struct walk {
    double full, slope;   /* at the item found: the sums before it and from it on */
    keyed at;
    int hit;
} walk;

static void plane_walk(foolc_norm norm, const float *w, const double *cap, keyed *ord, size_t n,
                       double need, walk *res)
{
    double full = 0, slope = 0;
    size_t lo = 0, hi = n;   /* candidates ord[lo, hi) */
    res->hit = 0;
    while (lo < hi) {
        keyed piv = ord[lo + (hi - lo) / 2];
        /* Three-way split of the range: [lo, a) before the pivot, a is it, (a, hi) after. */
        size_t a = lo;
        for (size_t q = lo; q < hi; q++)
            if (key_lt(&ord[q], &piv)) {
                keyed t = ord[a];
                ord[a++] = ord[q];
                ord[q] = t;
            }
        for (size_t q = a; q < hi; q++)
            if (ord[q].i == piv.i) {
                keyed t = ord[a];
                ord[a] = ord[q];
                ord[q] = t;
                break;
            }
        double f_before = 0, s_after = 0;
        for (size_t q = lo; q < a; q++) {
            size_t j = ord[q].i;
            f_before += fabs((double)w[j]) * cap[j];
        }
        for (size_t q = a + 1; q < hi; q++) {
            double aw = fabs((double)w[ord[q].i]);
            s_after += aw * (norm == FOOLC_L2 ? aw : 1.0);
        }
        double ap = fabs((double)w[piv.i]), alp = norm == FOOLC_L2 ? ap : 1.0;
        double fp = full + f_before, sp = slope + s_after + ap * alp;
        int pass = norm == FOOLC_L1 ? fp + ap * cap[piv.i] >= need : fp + piv.key * sp >= need;
        if (pass) {   /* the item sought is the pivot or before it */
            res->hit = 1;
            res->at = piv;
            res->full = fp;
            res->slope = sp;
            slope = sp;
            hi = a;
        } else {
            full = fp + ap * cap[piv.i];
            lo = a + 1;
        }
    }
}

int foolc__mn_plane_proj(foolc_norm norm, const float *p, const float *w, double c, size_t d,
                         float lo, float hi, float *delta, void *work)
{
    double *dir = work, *cap = dir + d;
    keyed *ord = (keyed *)(cap + d);
    memset(delta, 0, d * sizeof *delta);
    if (c == 0) return 1;
    double sg = c > 0 ? 1 : -1, need = fabs(c), reach = 0, kmax = 0;
    size_t n = 0;
    for (size_t j = 0; j < d; j++) {
        double a = fabs((double)w[j]);
        dir[j] = w[j] == 0 ? 0 : (w[j] > 0 ? sg : -sg);
        cap[j] = dir[j] > 0 ? (double)hi - p[j] : dir[j] < 0 ? (double)p[j] - lo : 0;
        if (cap[j] < 0) cap[j] = 0;
        if (a == 0 || cap[j] == 0) continue;
        reach += a * cap[j];
        /* L1 takes coordinates by decreasing |w|; L2 and Linf sort breakpoints. */
        double alpha = norm == FOOLC_L2 ? a : 1.0;
        ord[n].key = norm == FOOLC_L1 ? -a : cap[j] / alpha;
        if (ord[n].key > kmax) kmax = ord[n].key;
        ord[n++].i = j;
    }
    if (reach < need) {
        for (size_t j = 0; j < d; j++) delta[j] = (float)(dir[j] * cap[j]);
        return 0;
    }
    walk res = {0, 0, {0, 0}, 0};
    plane_walk(norm, w, cap, ord, n, need, &res);
    if (norm == FOOLC_L1) {
        /* Items before the one found are taken whole, that one in part. */
        for (size_t q = 0; q < n; q++) {
            size_t j = ord[q].i;
            if (res.hit && key_lt(&ord[q], &res.at)) delta[j] = (float)(dir[j] * cap[j]);
        }
        if (!res.hit) {   /* rounding: reach >= need but no prefix got there; take all */
            for (size_t q = 0; q < n; q++) delta[ord[q].i] = (float)(dir[ord[q].i] * cap[ord[q].i]);
            return 1;
        }
        size_t j = res.at.i;
        double a = fabs((double)w[j]);
        delta[j] = (float)(dir[j] * fmin(cap[j], (need - res.full) / a));
        return 1;
    }
    double lam = res.hit && res.slope > 0 ? (need - res.full) / res.slope : kmax;
    for (size_t r = 0; r < n; r++) {
        size_t j = ord[r].i;
        double alpha = norm == FOOLC_L2 ? fabs((double)w[j]) : 1.0;
        delta[j] = (float)(dir[j] * fmin(lam * alpha, cap[j]));
    }
    return 1;
}

foolc_status foolc__mn_safe_adv(foolc__run *run, const float *xs, const int32_t *idx, int32_t m,
                                float *logits, uint8_t *adv, double *f)
{
    FOOLC__CHECK(foolc__run_scores(run, xs, idx, m, logits));
    for (int32_t a = 0; a < m; a++) {
        const float *z = logits + (size_t)a * (size_t)run->k;
        double mg, safe = foolc__mn_safe(z, run->k);
        FOOLC__CHECK(foolc__run_logits_adv(run, z, idx + a, 1, &adv[a], &mg));
        adv[a] = adv[a] && mg < -safe;
        if (f) f[a] = mg + safe;
    }
    return FOOLC_OK;
}

/* The point at t in [0, 1] between x0 (t = 0) and xe (t = 1) for the bisection: x0 +
 * t (xe - x0), except in Linf, where the perturbation is clipped to t ||xe - x0||_inf
 * instead of scaled (the same Linf distance, but the coordinates below the cap keep their
 * size: no worse than scaling, and the exact minimum along the path for a linear model). */
static void between(const foolc__run *run, const float *x0, const float *xe, double t,
                    float *o)
{
    size_t d = run->d;
    if (run->norm != FOOLC_LINF) {
        for (size_t j = 0; j < d; j++) o[j] = (float)(x0[j] + t * ((double)xe[j] - x0[j]));
        return;
    }
    double cap = 0;
    for (size_t j = 0; j < d; j++) cap = fmax(cap, fabs((double)xe[j] - x0[j]));
    cap *= t;
    for (size_t j = 0; j < d; j++) {
        double v = (double)xe[j] - x0[j];
        v = v > cap ? cap : v < -cap ? -cap : v;
        o[j] = (float)(x0[j] + v);
    }
}

/* The judge and path of the final search: the criterion with the safety margin, and the
 * segment from the clean input to xadv's row (between). */
static foolc_status safe_judge(void *ctx, foolc__run *run, const float *xs, const int32_t *sid,
                               int32_t m, uint8_t *adv, double *f)
{
    return foolc__mn_safe_adv(run, xs, sid, m, ctx, adv, f);
}

typedef struct seg_ctx {
    const int32_t *idx;
    const float *xadv;
} seg_ctx;

static void seg_point(void *ctx, const foolc__run *run, int32_t a, double t, float *out)
{
    const seg_ctx *c = ctx;
    between(run, run->x + (size_t)c->idx[a] * run->d, c->xadv + (size_t)a * run->d, t, out);
}

foolc_status foolc__mn_bisect(foolc__run *run, const int32_t *idx, int32_t m, float *xadv,
                              int32_t steps)
{
    if (m == 0) return FOOLC_OK;
    size_t d = run->d;
    foolc__arena ar = {0};
    float *xs, *logits;
    double *lo, *hi, *flo, *fhi, *f;
    int32_t *rows, *sid;
    uint8_t *good, *adv0;
    for (int pass = 0; pass < 2; pass++) {
        xs = foolc__arena_take(&ar, foolc__mul((size_t)m, d), sizeof *xs);
        logits = foolc__arena_take(&ar, foolc__mul((size_t)m, (size_t)run->k), sizeof *logits);
        lo = foolc__arena_take(&ar, (size_t)m, sizeof *lo);
        hi = foolc__arena_take(&ar, (size_t)m, sizeof *hi);
        flo = foolc__arena_take(&ar, (size_t)m, sizeof *flo);
        fhi = foolc__arena_take(&ar, (size_t)m, sizeof *fhi);
        f = foolc__arena_take(&ar, (size_t)m, sizeof *f);
        rows = foolc__arena_take(&ar, (size_t)m, sizeof *rows);
        sid = foolc__arena_take(&ar, (size_t)m, sizeof *sid);
        good = foolc__arena_take(&ar, (size_t)m, 1);
        adv0 = foolc__arena_take(&ar, (size_t)m, 1);
        if (pass == 0) FOOLC__CHECK(foolc__arena_alloc(&ar, "bisection"));
    }
    /* The bracket [0, 1] on the segment from the clean input, with the margins at both
     * ends, narrowed by Illinois regula falsi (foolc__run_bracket) until it is 2^-steps
     * wide, as fine as `steps` halvings, usually after a third as many queries. */
    foolc_status st = foolc__mn_safe_adv(run, xadv, idx, m, logits, good, fhi);
    int32_t na = 0;
    for (int32_t a = 0; a < m; a++) {
        lo[a] = 0;
        hi[a] = 1;
        if (st >= 0 && good[a]) {
            rows[na] = a;
            sid[na] = idx[a];
            memcpy(xs + (size_t)na * d, run->x + (size_t)idx[a] * d, d * sizeof(float));
            na++;
        }
    }
    if (st >= 0 && na > 0 && steps > 0)
        st = foolc__mn_safe_adv(run, xs, sid, na, logits, adv0, f);
    for (int32_t q = 0; st >= 0 && steps > 0 && q < na; q++) flo[rows[q]] = f[q];
    seg_ctx seg = {idx, xadv};
    foolc__bracket_opts o = {.path = seg_point, .path_ctx = &seg, .judge = safe_judge,
                             .judge_ctx = logits, .steps = steps,
                             .tol = ldexp(1.0, -(steps < 60 ? steps : 60)), .regula = 1};
    if (st >= 0) st = foolc__run_bracket(run, idx, rows, na, lo, hi, flo, fhi, &o);
    for (int32_t a = 0; a < m; a++) {
        if (!(st >= 0 && good[a])) continue;
        float *xe = xadv + (size_t)a * d;
        if (hi[a] < 1) {
            seg_point(&seg, run, a, hi[a], xs);
            memcpy(xe, xs, d * sizeof(float));
        }
        foolc__run_offer(run, idx[a], xe);
    }
    foolc__arena_free(&ar);
    return st;
}

int32_t foolc__mn_successes(const foolc__run *run, float *xs, int32_t *sid)
{
    int32_t nb = 0;
    for (int32_t a = 0; a < run->n_todo; a++) {
        int32_t s = run->todo[a];
        if (!run->res->success[s]) continue;
        if (xs)
            memcpy(xs + (size_t)nb * run->d, run->res->x_adv + (size_t)s * run->d,
                   run->d * sizeof(float));
        if (sid) sid[nb] = s;
        nb++;
    }
    return nb;
}

foolc_status foolc__mn_finish(foolc__run *run, int32_t steps)
{
    if (steps <= 0) return FOOLC_OK;
    size_t d = run->d;
    int32_t nb = foolc__mn_successes(run, NULL, NULL);
    if (nb == 0) return FOOLC_OK;
    float *xs = foolc__malloc(foolc__mul(foolc__mul((size_t)nb, d), sizeof(float)) +
                              (size_t)nb * sizeof(int32_t));
    if (!xs) return foolc__nomem("final bisection");
    int32_t *sid = (int32_t *)(xs + (size_t)nb * d);
    foolc__mn_successes(run, xs, sid);
    foolc_status st = foolc__mn_bisect(run, sid, nb, xs, steps);
    foolc__free(xs);
    return st;
}

foolc_status foolc__mn_polish(foolc__run *run, foolc_norm norm, int32_t steps)
{
    return foolc__mn_polish_classes(run, norm, steps, 0);
}

/* The c other classes (not label) with the largest logits z (k), by decreasing logit. */
static void top_classes(const float *z, int32_t k, int32_t label, int32_t c, int32_t *cls)
{
    int32_t n = 0;
    for (int32_t j = 0; j < k; j++) {
        if (j == label || (n == c && !(z[j] > z[cls[c - 1]]))) continue;
        int32_t q = n < c ? n++ : c - 1;
        cls[q] = j;
        for (; q > 0 && z[cls[q]] > z[cls[q - 1]]; q--) {
            int32_t t = cls[q];
            cls[q] = cls[q - 1];
            cls[q - 1] = t;
        }
    }
}

/* Samples per block of the polish (its buffers are 4 images per candidate). */
#define POLISH_BLOCK 64

foolc_status foolc__mn_polish_classes(foolc__run *run, foolc_norm norm, int32_t steps,
                                      int32_t classes)
{
    if (steps <= 0) return FOOLC_OK;
    size_t d = run->d;
    int32_t k = run->k, m = foolc__mn_successes(run, NULL, NULL);
    if (m == 0) return FOOLC_OK;
    /* Candidates per sample: one (the criterion's margin) or one per class pair. */
    int pairs = classes > 0 && k > 2 && foolc__run_crit_kind(run) == FOOLC__CRIT_MISCLASSIFICATION;
    int32_t nc = !pairs ? 1 : classes < k - 1 ? classes : k - 1;
    if (nc > FOOLC__POLISH_MAX_CLASSES) nc = FOOLC__POLISH_MAX_CLASSES;
    int32_t bs = m < POLISH_BLOCK ? m : POLISH_BLOCK, mc = bs * nc;
    size_t md = foolc__mul((size_t)mc, d);
    foolc__arena ar = {0};
    float *xs, *grad, *xb, *zb, *logits, *delta;
    void *work;
    int32_t *all, *sid, *slot, *cls;   /* slot: the row of xb, zb and mu of candidate q */
    double *margin, *pm, *mu;
    uint8_t *adv;
    foolc_status st = FOOLC_OK;
    for (int pass = 0; pass < 2; pass++) {
        xs = foolc__arena_take(&ar, md, sizeof(float));
        grad = foolc__arena_take(&ar, md, sizeof(float));
        xb = foolc__arena_take(&ar, md, sizeof(float));
        zb = foolc__arena_take(&ar, md, sizeof(float));
        logits = foolc__arena_take(&ar, foolc__mul((size_t)mc, (size_t)k), sizeof(float));
        delta = foolc__arena_take(&ar, d, sizeof(float));
        work = foolc__arena_take(&ar, foolc__mn_plane_work(d), 1);
        all = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        sid = foolc__arena_take(&ar, (size_t)mc, sizeof(int32_t));
        slot = foolc__arena_take(&ar, (size_t)mc, sizeof(int32_t));
        cls = foolc__arena_take(&ar, (size_t)mc, sizeof(int32_t));
        margin = foolc__arena_take(&ar, (size_t)mc, sizeof(double));
        pm = foolc__arena_take(&ar, (size_t)mc, sizeof(double));
        mu = foolc__arena_take(&ar, (size_t)mc, sizeof(double));
        adv = foolc__arena_take(&ar, (size_t)mc, 1);
        if (pass == 0 && (st = foolc__arena_alloc(&ar, "boundary polish")) < 0) return st;
    }
    foolc__mn_successes(run, NULL, all);
    foolc__pair pc = {run, NULL, cls};
    for (int32_t b0 = 0; b0 < m; b0 += bs) {
        int32_t na = m - b0 < bs ? m - b0 : bs;
        for (int32_t a = 0; a < na; a++) {
            sid[a] = all[b0 + a];
            memcpy(xs + (size_t)a * d, run->res->x_adv + (size_t)sid[a] * d, d * sizeof(float));
        }
        if (pairs) {
            /* The classes to try: every other one, or those with the largest logits at the
             * best point (one forward pass). Candidate a * nc + q: sample a, class q. */
            if (nc < k - 1 && (st = foolc__run_scores(run, xs, sid, na, logits)) < 0) goto out;
            for (int32_t a = na - 1; a >= 0; a--) {
                int32_t c[FOOLC__POLISH_MAX_CLASSES], y = run->labels[sid[a]];
                if (nc < k - 1) top_classes(logits + (size_t)a * (size_t)k, k, y, nc, c);
                else for (int32_t q = 0; q < nc; q++) c[q] = q < y ? q : q + 1;
                for (int32_t q = nc - 1; q >= 0; q--) {
                    int32_t r = a * nc + q;
                    if (r != a) memcpy(xs + (size_t)r * d, xs + (size_t)a * d, d * sizeof(float));
                    sid[r] = sid[a];
                    cls[r] = c[q];
                }
            }
            na *= nc;
        }
        for (int32_t q = 0; q < na; q++) {
            slot[q] = q;
            mu[q] = 1;
        }
        for (int32_t it = 0; it < steps && na > 0; it++) {
            if (pairs) {
                if ((st = foolc__run_grad_rows(run, xs, sid, na, foolc__pair_row, &pc, grad,
                                               logits, NULL, pm)) < 0 ||
                    (st = foolc__run_logits_adv(run, logits, sid, na, adv, margin)) < 0)
                    goto out;
            } else if ((st = foolc__mn_margin_grad(run, xs, sid, na, NULL, INFINITY, grad,
                                                   margin, adv, logits)) < 0) {
                goto out;
            }
            int32_t keep = 0;
            for (int32_t q = 0; q < na; q++) {
                int32_t r = slot[q];
                const float *x0 = run->x + (size_t)sid[q] * d, *g = grad + (size_t)q * d;
                float *xq = xs + (size_t)q * d, *xr = xb + (size_t)r * d, *zr = zb + (size_t)r * d;
                double safe = foolc__mn_safe(logits + (size_t)q * (size_t)k, k);
                if (it == 0 || (adv[q] && margin[q] < -safe && foolc__run_offer(run, sid[q], xq))) {
                    /* A new best: linearise the margin there, m(z) = m + g.(z - xq); the
                     * smallest delta (in the box) with m(x0 + delta) = -2 safe is the target. */
                    memcpy(xr, xq, d * sizeof(float));
                    double c = -2 * safe - (pairs ? pm[q] : margin[q]);
                    for (size_t j = 0; j < d; j++) c -= (double)g[j] * ((double)x0[j] - xq[j]);
                    if (!foolc__mn_plane_proj(norm, x0, g, c, d, run->lo, run->hi, delta, work))
                        continue;   /* the boundary is out of the box's reach: stop */
                    foolc__mn_clip_step(x0, delta, d, run->lo, run->hi, zr);
                    if (it > 0) mu[r] = fmin(1, 2 * mu[r]);
                } else {
                    mu[r] *= 0.25;   /* curvature: a shorter step towards the same target */
                }
                for (size_t j = 0; j < d; j++) delta[j] = zr[j] - x0[j];
                if (mu[r] < 1.0 / 256 ||
                    !(foolc__norm(norm, delta, d) < (double)run->res->distance[sid[q]]))
                    continue;   /* the target is no better than the best: stop */
                float *o = xs + (size_t)keep * d;
                for (size_t j = 0; j < d; j++)
                    o[j] = (float)(xr[j] + mu[r] * ((double)zr[j] - xr[j]));
                sid[keep] = sid[q];
                cls[keep] = cls[q];
                slot[keep++] = r;
            }
            na = keep;
        }
        if (na > 0) {   /* the last candidates, unchecked so far */
            if ((st = foolc__mn_safe_adv(run, xs, sid, na, logits, adv, NULL)) < 0) goto out;
            for (int32_t q = 0; q < na; q++)
                if (adv[q]) foolc__run_offer(run, sid[q], xs + (size_t)q * d);
        }
    }
out:
    foolc__arena_free(&ar);
    return st;
}
