/* The iterative gradient attacks, written once: the DLR and class-pair losses, step
 * directions (sign, L2-normalised, sparse L1), the batched projected-gradient loop with
 * per-sample epsilons, restarts, momentum and APGD's schedule, and the epsilon-search driver
 * that makes it minimising; at the end the registry entries of PGD, BIM, MI-FGSM and APGD. */
#include "arena.h"
#include "gradient.h"
#include "minnorm/minnorm.h"
#include "numeric.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- geometry ---- */

double foolc__box_diameter(const foolc__run *run, foolc_norm p)
{
    double w = (double)run->hi - run->lo;
    return p == FOOLC_L2 ? w * sqrt((double)run->d) : p == FOOLC_L1 ? w * (double)run->d : w;
}

/* dir = -g, with (when faces) the coordinates at a face of the box that it would push
 * outwards set to 0; returns the count of non-zero coordinates. In blocks (FOOLC__VEC). */
#define FACE_COORD(j, NZ)                                                                    \
    do {                                                                                     \
        float v_ = -g[j];                                                                    \
        int out_ = (x[j] <= lo && v_ < 0) | (x[j] >= hi && v_ > 0);                          \
        v_ = faces && out_ ? 0.0f : v_;                                                      \
        dir[j] = v_;                                                                         \
        NZ += v_ != 0;                                                                       \
    } while (0)

FOOLC__VEC
static size_t face_step(int faces, const float *restrict g, const float *restrict x, float lo,
                        float hi, size_t d, float *restrict dir)
{
    size_t nz = 0, j = 0;
    uint32_t cnt[FOOLC__BLOCK] = {0};
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) FACE_COORD(j + k, cnt[k]);
    for (; j < d; j++) FACE_COORD(j, nz);
    for (size_t k = 0; k < FOOLC__BLOCK; k++) nz += cnt[k];
    return nz;
}

/* APGD's mix: x' = first ? z : x + 0.75 (z - x) + 0.25 (x - x_prev), x_prev = x. */
#define MIX_COORD(j)                                                                         \
    do {                                                                                     \
        float nx_ = first ? z[j] : xc[j] + 0.75f * (z[j] - xc[j]) + 0.25f * (xc[j] - xp[j]); \
        xp[j] = xc[j];                                                                       \
        xc[j] = nx_;                                                                         \
    } while (0)

FOOLC__VEC
static void apgd_mix(int first, const float *restrict z, float *restrict xc,
                     float *restrict xp, size_t d)
{
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) MIX_COORD(j + k);
    for (; j < d; j++) MIX_COORD(j);
}

/* Linf's direction: the sign of dir, per coordinate. */
#define SIGN_COORD(j) dir[j] = dir[j] > 0 ? 1.0f : dir[j] < 0 ? -1.0f : 0.0f

FOOLC__VEC
static void sign_step(float *restrict dir, size_t d)
{
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) SIGN_COORD(j + k);
    for (; j < d; j++) SIGN_COORD(j);
}

/* The sparse L1 step: the coordinates with |dir_j| >= thr (non-zero) get sign(dir_j) / their
 * count, the others 0. */
#define TOP_COUNT(j, C) C += dir[j] != 0 && fabsf(dir[j]) >= thr
#define TOP_COORD(j) dir[j] = dir[j] != 0 && fabsf(dir[j]) >= thr ? (dir[j] > 0 ? w : -w) : 0.0f

FOOLC__VEC
static void top_step(float *restrict dir, size_t d, float thr)
{
    uint32_t cnt[FOOLC__BLOCK] = {0};
    size_t c = 0, j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) TOP_COUNT(j + k, cnt[k]);
    for (; j < d; j++) TOP_COUNT(j, c);
    for (size_t k = 0; k < FOOLC__BLOCK; k++) c += cnt[k];
    const float w = 1.0f / (float)c;
    for (j = 0; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t k = 0; k < FOOLC__BLOCK; k++) TOP_COORD(j + k);
    for (; j < d; j++) TOP_COORD(j);
}

static int direction(foolc_norm p, const float *g, const float *x, float lo, float hi,
                     size_t d, double quantile, float *dir, float *work)
{
    size_t nz = face_step(p != FOOLC_LINF, g, x, lo, hi, d, dir);
    if (nz == 0) return 0;
    if (p == FOOLC_LINF) {
        sign_step(dir, d);
        return 1;
    }
    if (p == FOOLC_L2) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)dir[j] * dir[j];
        float inv = (float)(1 / sqrt(s));
        for (size_t j = 0; j < d; j++) dir[j] *= inv;
        return 1;
    }
    size_t keep = (size_t)ceil((1 - quantile) * (double)d);
    if (keep < 1) keep = 1;
    if (keep > nz) keep = nz;
    /* The keep-th largest |dir_j|: the same value among all d as among the nz non-zero
     * ones (keep <= nz), by one scan when keep is small (the default quantile's), else by
     * quickselect on the non-zero magnitudes. */
    float thr;
    if (keep <= 32) {
        thr = (float)foolc__kth_magnitude(dir, d, keep, NULL);
    } else {
        size_t q = 0;
        for (size_t j = 0; j < d; j++)
            if (dir[j] != 0) work[q++] = fabsf(dir[j]);
        thr = foolc__kth_largest(work, nz, keep);
    }
    top_step(dir, d, thr);
    return 1;
}

/* A random start in the ball of radius eps around x0 (uniform in Linf; for L2 and L1 a
 * Gaussian / Laplace direction with radius eps * u^(1/d)), projected onto ball ∩ box. */
static void random_start(const foolc__run *run, foolc_norm p, int32_t sample,
                         uint64_t stream, double eps, const float *x0, float *out, float *work)
{
    foolc__rng r;
    foolc__rng_for(&r, run, sample, FOOLC__STREAM_RANDOM_START + stream);
    size_t d = run->d;
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        double v;
        if (p == FOOLC_LINF) {
            v = eps * (2 * foolc__rng_uniform(&r) - 1);
        } else if (p == FOOLC_L2) {
            v = foolc__rng_normal(&r);
            s += v * v;
        } else {
            v = -log(1 - foolc__rng_uniform(&r));
            if (foolc__rng_uniform(&r) < 0.5) v = -v;
            s += fabs(v);
        }
        out[j] = (float)v;
    }
    if (p != FOOLC_LINF) {
        double rad = eps * pow(foolc__rng_uniform(&r), 1.0 / (double)d);
        double f = s > 0 ? rad / (p == FOOLC_L2 ? sqrt(s) : s) : 0;
        for (size_t j = 0; j < d; j++) out[j] = (float)(f * out[j]);
    }
    for (size_t j = 0; j < d; j++) out[j] = (float)foolc__clamp((double)x0[j] + out[j], run->lo,
                                                           run->hi);
    foolc__project(p, x0, out, d, eps, run->lo, run->hi, work);
}

/* ---- the iterative loop ---- */

typedef struct iter_state {
    const foolc__iter_opts *o;
    double scale_max;          /* the largest epsilon (the box's diameter in the norm) */
    const double *scale;       /* per sample: epsilon unit of the search (NULL: absolute) */
    int32_t cap;
    size_t d, k;
    float *xc, *xp, *xb, *gb, *acc;    /* per position: current, previous, best, its grad, sum */
    float *bx, *bg, *bz, *bf;          /* batch: images, gradients, logits, losses */
    float *dir, *work, *pw;            /* d, d and 3 d: scratch */
    int32_t *act, *bid, *succ;
    uint8_t *badv, *done, *reduced;
    double *fprev, *fbest, *fbest_ck, *eta, *eps;
    foolc__arena mem;                  /* all of the above */
} iter_state;

static void state_free(iter_state *s) { foolc__arena_free(&s->mem); }

static foolc_status state_alloc(iter_state *s, const foolc__run *run, int32_t cap)
{
    size_t d = run->d, k = (size_t)run->k, c = (size_t)cap, cd = foolc__mul(c, d);
    foolc__arena *ar = &s->mem;
    s->cap = cap;
    s->d = d;
    s->k = k;
    for (int pass = 0; pass < 2; pass++) {
        s->xc = foolc__arena_take(ar, cd, sizeof(float));
        s->xp = foolc__arena_take(ar, cd, sizeof(float));
        s->xb = foolc__arena_take(ar, cd, sizeof(float));
        s->gb = foolc__arena_take(ar, cd, sizeof(float));
        s->acc = foolc__arena_take(ar, cd, sizeof(float));
        s->bx = foolc__arena_take(ar, cd, sizeof(float));
        s->bg = foolc__arena_take(ar, cd, sizeof(float));
        s->bz = foolc__arena_take(ar, c * k, sizeof(float));
        s->bf = foolc__arena_take(ar, c, sizeof(float));
        s->dir = foolc__arena_take(ar, d, sizeof(float));
        s->work = foolc__arena_take(ar, d, sizeof(float));
        s->pw = foolc__arena_take(ar, FOOLC__PROJECT_WORK(d), sizeof(float));
        s->fprev = foolc__arena_take(ar, c, sizeof(double));
        s->fbest = foolc__arena_take(ar, c, sizeof(double));
        s->fbest_ck = foolc__arena_take(ar, c, sizeof(double));
        s->eta = foolc__arena_take(ar, c, sizeof(double));
        s->eps = foolc__arena_take(ar, c, sizeof(double));
        s->act = foolc__arena_take(ar, c, sizeof(int32_t));
        s->bid = foolc__arena_take(ar, c, sizeof(int32_t));
        s->succ = foolc__arena_take(ar, c, sizeof(int32_t));
        s->badv = foolc__arena_take(ar, c, 1);
        s->done = foolc__arena_take(ar, c, 1);
        s->reduced = foolc__arena_take(ar, c, 1);
        if (pass == 0) FOOLC__CHECK(foolc__arena_alloc(ar, "iterative attack buffers"));
    }
    return FOOLC_OK;
}

/* One step of position a from xc with gradient g (descending). */
static foolc_status pgd_step(iter_state *s, const foolc__run *run, int32_t a, const float *x0,
                             const float *g, int first)
{
    const foolc__iter_opts *o = s->o;
    size_t d = s->d;
    float *xc = s->xc + (size_t)a * d, *xp = s->xp + (size_t)a * d;
    const float *gd = g;
    if (o->momentum > 0 && !o->apgd) {
        float *acc = s->acc + (size_t)a * d;
        double l1 = 0;
        for (size_t j = 0; j < d; j++) l1 += fabs((double)g[j]);
        float inv = l1 > 0 ? (float)(1 / l1) : 0.0f, mu = (float)o->momentum;
        for (size_t j = 0; j < d; j++) acc[j] = mu * acc[j] + inv * g[j];
        gd = acc;
    }
    if (!direction(o->norm, gd, xc, run->lo, run->hi, d, o->quantile, s->dir, s->work))
        return FOOLC_OK;
    double eps = s->eps[a];
    if (!o->apgd) {
        float step = (float)(o->rel_step * eps);
        for (size_t j = 0; j < d; j++) xc[j] += step * s->dir[j];
        foolc__project(o->norm, x0, xc, d, eps, run->lo, run->hi, s->pw);
        return FOOLC_OK;
    }
    /* APGD: z = P(x + eta dir); x' = P(x + 0.75 (z - x) + 0.25 (x - x_prev)). */
    float *z = s->work;
    float eta = (float)s->eta[a];
    for (size_t j = 0; j < d; j++) z[j] = xc[j] + eta * s->dir[j];
    foolc__project(o->norm, x0, z, d, eps, run->lo, run->hi, s->pw);
    apgd_mix(first, z, xc, xp, d);
    foolc__project(o->norm, x0, xc, d, eps, run->lo, run->hi, s->pw);
    return FOOLC_OK;
}

/* The loop for m samples sid at epsilons eps: out receives, per sample, the first
 * adversarial iterate (adv = 1) or the last (APGD: the best) iterate of the last start
 * (adv = 0, known from the model's logits there). */
static foolc_status iter_attack(iter_state *s, foolc__run *run, const int32_t *sid,
                                const double *eps, int32_t m, float *out, uint8_t *adv)
{
    const foolc__iter_opts *o = s->o;
    size_t d = s->d;
    foolc_status st = FOOLC_OK;
    for (int32_t a = 0; a < m; a++) {
        s->done[a] = 0;
        double e = eps[a];
        if (s->scale) e = fmin(e * s->scale[sid[a]], s->scale_max);
        s->eps[a] = e;
    }
    int32_t n_ap = o->steps;
    int32_t period0 = (int32_t)(0.22 * n_ap), dec = (int32_t)(0.03 * n_ap);
    int32_t minp = (int32_t)(0.06 * n_ap);
    period0 = period0 < 1 ? 1 : period0;
    dec = dec < 1 ? 1 : dec;
    minp = minp < 1 ? 1 : minp;
    for (int32_t r = 0; r < o->restarts; r++) {
        int32_t na = 0;
        for (int32_t a = 0; a < m; a++) {
            if (s->done[a]) continue;
            s->act[na++] = a;
            const float *x0 = run->x + (size_t)sid[a] * d;
            float *xc = s->xc + (size_t)a * d;
            if (r == 0 && !o->random_start) memcpy(xc, x0, d * sizeof(float));
            else random_start(run, o->norm, sid[a], (uint64_t)r, s->eps[a], x0, xc, s->pw);
            memcpy(s->xp + (size_t)a * d, xc, d * sizeof(float));
            memset(s->acc + (size_t)a * d, 0, d * sizeof(float));
            s->eta[a] = 2 * s->eps[a];
            s->fbest[a] = s->fbest_ck[a] = INFINITY;
            s->succ[a] = 0;
            s->reduced[a] = 0;
        }
        int32_t period = period0, cnt = 0;
        for (int32_t t = 0; t < o->steps && na > 0; t++) {
            for (int32_t q = 0; q < na; q++) {
                int32_t a = s->act[q];
                memcpy(s->bx + (size_t)q * d, s->xc + (size_t)a * d, d * sizeof(float));
                s->bid[q] = sid[a];
            }
            if ((st = foolc__run_grad(run, s->bx, s->bid, na, o->loss, s->bg, s->bf,
                                           s->bz)) < 0) return st;
            if ((st = foolc__run_logits_adv(run, s->bz, s->bid, na, s->badv, NULL)) < 0) return st;
            int check = 0;
            if (o->apgd && ++cnt == period) {
                check = 1;
                cnt = 0;
            }
            int32_t keep = 0;
            for (int32_t q = 0; q < na; q++) {
                int32_t a = s->act[q];
                float *xc = s->xc + (size_t)a * d, *g = s->bg + (size_t)q * d;
                if (s->badv[q]) {
                    memcpy(out + (size_t)a * d, xc, d * sizeof(float));
                    adv[a] = 1;
                    s->done[a] = 1;
                    continue;
                }
                s->act[keep++] = a;
                if (o->apgd) {
                    double f = s->bf[q];
                    if (t > 0 && f < s->fprev[a]) s->succ[a]++;
                    s->fprev[a] = f;
                    if (f < s->fbest[a]) {
                        s->fbest[a] = f;
                        memcpy(s->xb + (size_t)a * d, xc, d * sizeof(float));
                        memcpy(s->gb + (size_t)a * d, g, d * sizeof(float));
                    }
                    if (check) {
                        int osc = s->succ[a] < 0.75 * period;
                        int stall = !s->reduced[a] && s->fbest_ck[a] <= s->fbest[a];
                        s->reduced[a] = (uint8_t)(osc || stall);
                        if (osc || stall) {
                            s->eta[a] *= 0.5;
                            memcpy(xc, s->xb + (size_t)a * d, d * sizeof(float));
                            memcpy(s->xp + (size_t)a * d, xc, d * sizeof(float));
                            g = s->gb + (size_t)a * d;
                        }
                        s->succ[a] = 0;
                        s->fbest_ck[a] = s->fbest[a];
                    }
                }
                const float *x0 = run->x + (size_t)sid[a] * d;
                if ((st = pgd_step(s, run, a, x0, g, t == 0)) < 0) return st;
            }
            if (check) period = period - dec < minp ? minp : period - dec;
            na = keep;
        }
        /* The iterate after the last step: one forward pass decides it. */
        if (na > 0) {
            int32_t nb = 0;
            for (int32_t q = 0; q < na; q++) {
                int32_t a = s->act[q];
                memcpy(s->bx + (size_t)nb * d, s->xc + (size_t)a * d, d * sizeof(float));
                s->bid[nb++] = sid[a];
            }
            if ((st = foolc__run_is_adv(run, s->bx, s->bid, nb, s->badv, NULL)) < 0) return st;
            for (int32_t q = 0; q < na; q++) {
                int32_t a = s->act[q];
                const float *src = s->xc + (size_t)a * d;
                if (s->badv[q]) s->done[a] = 1;
                else if (o->apgd && isfinite(s->fbest[a])) src = s->xb + (size_t)a * d;
                memcpy(out + (size_t)a * d, src, d * sizeof(float));
                adv[a] = s->badv[q];
            }
        }
    }
    return st;
}

static foolc_status iter_make(void *ctx, foolc__run *run, const int32_t *idx,
                              const double *eps, int32_t m, float *out, uint8_t *adv)
{
    return iter_attack(ctx, run, idx, eps, m, out, adv);
}

/* Per sample of idx: margin / dual-norm(gradient of the margin) at the clean input, the
 * first-order estimate of the smallest adversarial epsilon (one gradient per sample). */
static foolc_status linear_estimate(foolc__run *run, foolc_norm p, const int32_t *idx,
                                    int32_t m, float *xs, float *grad, float *loss,
                                    double *scale)
{
    size_t d = run->d;
    double diam = foolc__box_diameter(run, p);
    for (int32_t a = 0; a < m; a++)
        memcpy(xs + (size_t)a * d, run->x + (size_t)idx[a] * d, d * sizeof(float));
    FOOLC__CHECK(foolc__run_grad(run, xs, idx, m, FOOLC__LOSS_MARGIN, grad, loss, NULL));
    for (int32_t a = 0; a < m; a++) {
        double g = foolc__dual_norm(p, grad + (size_t)a * d, d);
        double e = g > 0 ? fabs((double)loss[a]) / g : NAN;
        if (!(e > 1e-6 * diam)) e = isnan(e) ? 1e-3 * diam : 1e-6 * diam;
        scale[idx[a]] = e < diam ? e : diam;
    }
    return FOOLC_OK;
}

/* Bisection towards the clean input of every result found for samples idx. */
static foolc_status trim_results(foolc__run *run, const int32_t *idx, int32_t m, int32_t steps,
                                 float *buf, int32_t *ids)
{
    if (steps <= 0) return FOOLC_OK;
    size_t d = run->d;
    int32_t nb = 0;
    for (int32_t a = 0; a < m; a++) {
        int32_t i = idx[a];
        if (!run->res->success[i] || run->res->distance[i] == 0) continue;
        memcpy(buf + (size_t)nb * d, run->res->x_adv + (size_t)i * d, d * sizeof(float));
        ids[nb++] = i;
    }
    return foolc__run_bisect(run, ids, nb, buf, steps, NULL);
}

/* Samples per chunk of the iterative attacks (their state is 7 images per sample). */
#define ITER_CHUNK 512

foolc_status foolc__iter_run(foolc__run *run, const foolc__iter_opts *o,
                             const foolc__search_opts *so)
{
    int32_t cap = run->n_todo < ITER_CHUNK ? run->n_todo : ITER_CHUNK;
    iter_state s;
    memset(&s, 0, sizeof s);
    s.o = o;
    FOOLC__CHECK(state_alloc(&s, run, cap));
    double *scale = foolc__malloc(foolc__mul((size_t)run->n, sizeof(double)));
    foolc_status st = FOOLC_OK;
    if (!scale) {
        state_free(&s);
        return foolc__nomem("epsilon estimates");
    }
    double diam = foolc__box_diameter(run, o->norm);
    for (int32_t c0 = 0; st >= 0 && c0 < run->n_todo; c0 += cap) {
        const int32_t *idx = run->todo + c0;
        int32_t m = run->n_todo - c0 < cap ? run->n_todo - c0 : cap;
        foolc__eps_opts eo = {.eps_init = so->eps_init, .growth = so->growth, .rtol = so->rtol,
                              .fixed = so->epsilon};
        if (so->epsilon > 0) {
            s.scale = NULL;
            eo.eps_max = so->epsilon;
        } else {
            /* The epsilon search runs in units of each sample's linear estimate, capped at
             * the box's diameter in the make step. */
            if ((st = linear_estimate(run, o->norm, idx, m, s.bx, s.bg, s.bf, scale)) < 0)
                break;
            double smin = diam;
            for (int32_t a = 0; a < m; a++) smin = fmin(smin, scale[idx[a]]);
            s.scale = scale;
            s.scale_max = diam;
            eo.eps_max = diam / smin;
        }
        st = foolc__eps_search(run, idx, m, &eo, iter_make, &s);
        if (st >= 0 && so->epsilon == 0) st = trim_results(run, idx, m, so->trim, s.xp, s.bid);
    }
    foolc__free(scale);
    state_free(&s);
    /* The search's result heads for the class its loss favoured, cross-entropy's often not
     * the nearest boundary's: linearise every class pair at the result and step onto the
     * nearest (exact on a linear model, with the box). */
    if (st >= 0 && so->epsilon == 0)
        st = foolc__mn_polish_classes(run, o->norm, so->polish, FOOLC__POLISH_MAX_CLASSES);
    return st;
}

void foolc__iter_config_get(const foolc__param *params, size_t n, const void *config,
                            const foolc__iter_config *dflt, foolc__iter_config *out)
{
    *out = *dflt;
    for (size_t i = 0; i < n; i++)
        memcpy((char *)out + params[i].offset, (const char *)config + params[i].offset,
               sizeof(double));
}

foolc_status foolc__iter_config_run(foolc__run *run, foolc_norm p, const foolc__iter_config *c)
{
    foolc__iter_opts o = {.norm = p, .steps = (int32_t)c->steps,
                          .restarts = (int32_t)c->restarts, .rel_step = c->rel_stepsize,
                          .random_start = c->random_start != 0,
                          .loss = (foolc__loss)(int)c->loss, .momentum = c->momentum,
                          .quantile = c->quantile, .apgd = c->apgd != 0};
    foolc__search_opts s = {.epsilon = c->epsilon, .rtol = c->rtol, .growth = c->growth,
                            .eps_init = c->eps_init, .trim = (int32_t)c->trim,
                            .polish = (int32_t)c->polish};
    return foolc__iter_run(run, &o, &s);
}

/* ---- registry entries: each attack's parameter table, the values of the fields it does
 * not expose (its entry's variant), and one FOOLC__ATTACK line ---- */

/* Runs the entry's attack: its fixed settings, overridden by the fields its table exposes. */
static foolc_status iter_entry_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(run->vt->params, run->vt->n_params, config, run->vt->variant, &c);
    return foolc__iter_config_run(run, run->norm, &c);
}

/* Projected gradient descent in L1 with sparse steps (SLIDE-style, arXiv:1904.13000): each step
 * moves the coordinates above the `quantile` of |grad| by their sign, then the exact projection
 * onto the L1 ball ∩ box; dense L1 steps (Foolbox's L1PGD) are known to be weak. Minimising
 * through the epsilon search above. */
static const foolc__param pgd_l1_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 50, 1, 1000, 1, "gradient steps per start"),
    FOOLC__IP(rel_stepsize, 0.05, 0.0001, 10, 0, "step size relative to epsilon"),
    FOOLC__IP(quantile, 0.99, 0, 0.999, 0, "coordinates above this quantile of |grad| move"),
    FOOLC__IP(random_start, 0, 0, 1, 1,
              "1: the first start is random in the ball (later ones always are)"),
    FOOLC__IP(restarts, 1, 1, 20, 1, "starts per epsilon (best kept)"),
    FOOLC__IP(loss, 0, 0, 1, 1, "[ce|margin] 0 cross-entropy, 1 the criterion's logit margin"),
};

static const foolc__iter_config pgd_l1_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .polish = 10,
    .steps = 50, .rel_stepsize = 0.05,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 0};
FOOLC__ATTACK(pgd_l1, "pgd-l1", FOOLC_L1, FOOLC__GRAD, pgd_l1_params, foolc__iter_config,
              iter_entry_run, &pgd_l1_fixed,
              "sparse-step L1 PGD with restarts; searches the smallest L1 epsilon per sample");

/* Projected gradient descent in L2: random start in the ball, L2-normalised gradient steps
 * projected exactly onto the L2 ball ∩ box, random restarts; Foolbox's defaults (50 steps of
 * 0.025 * epsilon). Minimising through the epsilon search above. */
static const foolc__param pgd_l2_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 50, 1, 1000, 1, "gradient steps per start"),
    FOOLC__IP(rel_stepsize, 0.025, 0.0001, 10, 0, "step size relative to epsilon"),
    FOOLC__IP(random_start, 0, 0, 1, 1,
              "1: the first start is random in the ball (later ones always are)"),
    FOOLC__IP(restarts, 1, 1, 20, 1, "starts per epsilon (best kept)"),
    FOOLC__IP(loss, 0, 0, 1, 1, "[ce|margin] 0 cross-entropy, 1 the criterion's logit margin"),
};

static const foolc__iter_config pgd_l2_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .polish = 10,
    .steps = 50, .rel_stepsize = 0.025,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 0};
FOOLC__ATTACK(pgd_l2, "pgd-l2", FOOLC_L2, FOOLC__GRAD, pgd_l2_params, foolc__iter_config,
              iter_entry_run, &pgd_l2_fixed,
              "PGD with random starts; searches the smallest L2 epsilon per sample");

/* Projected gradient descent in Linf (Madry et al., arXiv:1706.06083): random start in the ball,
 * signed gradient steps projected onto the Linf ball ∩ box, random restarts; Foolbox's defaults
 * (40 steps of 0.01/0.3 * epsilon). Minimising through the epsilon search above. */
static const foolc__param pgd_linf_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 40, 1, 1000, 1, "gradient steps per start"),
    FOOLC__IP(rel_stepsize, 0.01 / 0.3, 0.0001, 10, 0, "step size relative to epsilon"),
    FOOLC__IP(random_start, 0, 0, 1, 1,
              "1: the first start is random in the ball (later ones always are)"),
    FOOLC__IP(restarts, 1, 1, 20, 1, "starts per epsilon (best kept)"),
    FOOLC__IP(loss, 0, 0, 1, 1, "[ce|margin] 0 cross-entropy, 1 the criterion's logit margin"),
};

static const foolc__iter_config pgd_linf_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .polish = 10,
    .steps = 40,
    .rel_stepsize = 0.01 / 0.3, .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99,
    .momentum = 0};
FOOLC__ATTACK(pgd_linf, "pgd-linf", FOOLC_LINF, FOOLC__GRAD, pgd_linf_params, foolc__iter_config,
              iter_entry_run, &pgd_linf_fixed,
              "PGD with random starts; searches the smallest Linf epsilon per sample");

/* Basic iterative method in L1 with sparse steps (SLIDE, Tramèr & Boneh, arXiv:1904.13000): each
 * step moves the coordinates above the `quantile` of |grad| by their sign, projected onto the L1
 * ball ∩ box; Foolbox's SparseL1DescentAttack defaults (10 steps of 0.2 * epsilon, q = 0.99).
 * Minimising through the epsilon search above. */
static const foolc__param bim_l1_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 10, 1, 1000, 1, "gradient steps per epsilon"),
    FOOLC__IP(rel_stepsize, 0.2, 0.0001, 10, 0, "step size relative to epsilon"),
    FOOLC__IP(quantile, 0.99, 0, 0.999, 0, "coordinates above this quantile of |grad| move"),
    FOOLC__IP(loss, 0, 0, 1, 1, "[ce|margin] 0 cross-entropy, 1 the criterion's logit margin"),
};

static const foolc__iter_config bim_l1_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .polish = 10,
    .steps = 10, .rel_stepsize = 0.2,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 0};
FOOLC__ATTACK(bim_l1, "bim-l1", FOOLC_L1, FOOLC__GRAD, bim_l1_params, foolc__iter_config,
              iter_entry_run, &bim_l1_fixed,
              "sparse L1 descent (SLIDE); searches the smallest L1 epsilon per sample");

/* Basic iterative method in L2: iterated L2-normalised gradient steps from the clean input,
 * projected onto the L2 ball ∩ box; Foolbox's defaults (10 steps of 0.2 * epsilon). Minimising
 * through the epsilon search above. */
static const foolc__param bim_l2_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 10, 1, 1000, 1, "gradient steps per epsilon"),
    FOOLC__IP(rel_stepsize, 0.2, 0.0001, 10, 0, "step size relative to epsilon"),
    FOOLC__IP(loss, 0, 0, 1, 1, "[ce|margin] 0 cross-entropy, 1 the criterion's logit margin"),
};

static const foolc__iter_config bim_l2_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .polish = 10,
    .steps = 10, .rel_stepsize = 0.2,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 0};
FOOLC__ATTACK(bim_l2, "bim-l2", FOOLC_L2, FOOLC__GRAD, bim_l2_params, foolc__iter_config,
              iter_entry_run, &bim_l2_fixed,
              "iterative FGM in L2; searches the smallest L2 epsilon per sample");

/* Basic iterative method in Linf (Kurakin et al., arXiv:1607.02533): iterated FGSM steps from the
 * clean input, projected onto the Linf ball ∩ box; Foolbox's defaults (10 steps of 0.2 *
 * epsilon). Minimising through the epsilon search above. */
static const foolc__param bim_linf_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 10, 1, 1000, 1, "gradient steps per epsilon"),
    FOOLC__IP(rel_stepsize, 0.2, 0.0001, 10, 0, "step size relative to epsilon"),
    FOOLC__IP(loss, 0, 0, 1, 1, "[ce|margin] 0 cross-entropy, 1 the criterion's logit margin"),
};

static const foolc__iter_config bim_linf_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .polish = 10,
    .steps = 10, .rel_stepsize = 0.2,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 0};
FOOLC__ATTACK(bim_linf, "bim-linf", FOOLC_LINF, FOOLC__GRAD, bim_linf_params, foolc__iter_config,
              iter_entry_run, &bim_linf_fixed,
              "iterative FGSM; searches the smallest Linf epsilon per sample");

/* Momentum iterative FGM in L2 (Dong et al., arXiv:1710.06081): g <- mu g + grad/|grad|_1, steps
 * along g/|g|_2 projected onto the L2 ball ∩ box; Foolbox's defaults (10 steps of 0.2 * epsilon,
 * mu = 1). Minimising through the epsilon search above. */
static const foolc__param mifgsm_l2_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 10, 1, 1000, 1, "gradient steps per epsilon"),
    FOOLC__IP(rel_stepsize, 0.2, 0.0001, 10, 0, "step size relative to epsilon"),
    FOOLC__IP(momentum, 1, 0, 10, 0, "decay of the accumulated L1-normalised gradient"),
    FOOLC__IP(loss, 0, 0, 1, 1, "[ce|margin] 0 cross-entropy, 1 the criterion's logit margin"),
};

static const foolc__iter_config mifgsm_l2_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .polish = 10,
    .steps = 10, .rel_stepsize = 0.2,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 1};
FOOLC__ATTACK(mifgsm_l2, "mifgsm-l2", FOOLC_L2, FOOLC__GRAD, mifgsm_l2_params, foolc__iter_config,
              iter_entry_run, &mifgsm_l2_fixed,
              "momentum iterative FGM in L2; searches the smallest L2 epsilon per sample");

/* Momentum iterative FGSM (Dong et al., arXiv:1710.06081): g <- mu g + grad/|grad|_1, steps along
 * sign(g) projected onto the Linf ball ∩ box; Foolbox's defaults (10 steps
 * of 0.2 * epsilon, mu = 1). Minimising through the epsilon search above. */
static const foolc__param mifgsm_linf_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 10, 1, 1000, 1, "gradient steps per epsilon"),
    FOOLC__IP(rel_stepsize, 0.2, 0.0001, 10, 0, "step size relative to epsilon"),
    FOOLC__IP(momentum, 1, 0, 10, 0, "decay of the accumulated L1-normalised gradient"),
    FOOLC__IP(loss, 0, 0, 1, 1, "[ce|margin] 0 cross-entropy, 1 the criterion's logit margin"),
};

static const foolc__iter_config mifgsm_linf_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .polish = 10,
    .steps = 10, .rel_stepsize = 0.2,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 1};
FOOLC__ATTACK(mifgsm_linf, "mifgsm-linf", FOOLC_LINF, FOOLC__GRAD, mifgsm_linf_params,
              foolc__iter_config, iter_entry_run, &mifgsm_linf_fixed,
              "momentum iterative FGSM; searches the smallest Linf epsilon per sample");

/* Auto-PGD in L2 (Croce & Hein, arXiv:2003.01690): L2-normalised steps of size 2 * epsilon halved
 * at checkpoints when progress stalls (restarting from the best point), momentum 0.75, CE or DLR.
 * Minimising through the epsilon search above. */
static const foolc__param apgd_l2_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 50, 1, 1000, 1,
              "iterations per start (AutoAttack uses 100 at a fixed epsilon)"),
    FOOLC__IP(random_start, 0, 0, 1, 1,
              "1: the first start is random in the ball (later ones always are)"),
    FOOLC__IP(restarts, 1, 1, 20, 1, "starts per epsilon (best kept)"),
    FOOLC__IP(loss, 0, 0, 2, 1,
              "[ce|margin|dlr] 0 cross-entropy, 1 the criterion's logit margin, 2 DLR"),
};

static const foolc__iter_config apgd_l2_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .polish = 10,
    .steps = 50, .rel_stepsize = 2,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 0, .apgd = 1};
FOOLC__ATTACK(apgd_l2, "apgd-l2", FOOLC_L2, FOOLC__GRAD, apgd_l2_params, foolc__iter_config,
              iter_entry_run, &apgd_l2_fixed,
              "step-size-free PGD (AutoAttack); searches the smallest L2 epsilon per sample");

/* Auto-PGD in Linf (Croce & Hein, arXiv:2003.01690): step size 2 * epsilon halved at checkpoints
 * when progress stalls (restarting from the best point), momentum 0.75, CE or DLR loss.
 * Minimising through the epsilon search above. */
static const foolc__param apgd_linf_params[] = {
    FOOLC__IP_SEARCH(0.01),
    FOOLC__IP(steps, 50, 1, 1000, 1,
              "iterations per start (AutoAttack uses 100 at a fixed epsilon)"),
    FOOLC__IP(random_start, 0, 0, 1, 1,
              "1: the first start is random in the ball (later ones always are)"),
    FOOLC__IP(restarts, 1, 1, 20, 1, "starts per epsilon (best kept)"),
    FOOLC__IP(loss, 0, 0, 2, 1,
              "[ce|margin|dlr] 0 cross-entropy, 1 the criterion's logit margin, 2 DLR"),
};

static const foolc__iter_config apgd_linf_fixed = {
    .rtol = 0.01, .growth = 1.5, .eps_init = 1, .trim = 10, .polish = 10,
    .steps = 50, .rel_stepsize = 2,
    .random_start = 0, .restarts = 1, .loss = 0, .quantile = 0.99, .momentum = 0, .apgd = 1};
FOOLC__ATTACK(apgd_linf, "apgd-linf", FOOLC_LINF, FOOLC__GRAD, apgd_linf_params, foolc__iter_config,
              iter_entry_run, &apgd_linf_fixed,
              "step-size-free PGD (AutoAttack); searches the smallest Linf epsilon per sample");
