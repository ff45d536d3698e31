/* Machinery shared by the decision-based attacks: per-sample budgets, Gaussian draws, the
 * linear-then-bisection scan, repeated random directions with a per-direction smallest
 * scale, and the blended-uniform-noise starting point (foolc__init_blended). Every loop is
 * batched over the samples still active; a sample that is done costs no more queries. */
#include "decision.h"
#include "numeric.h"
#include "rng.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

FOOLC__VEC
void foolc__dec_add_clip(const float *restrict x0, const float *restrict v, double t, double lo,
                         double hi, float *restrict out, size_t d)
{
#define ADD_CLIP_AT(j)                                                                         \
    do {                                                                                       \
        double y_ = x0[j] + t * v[j];                                                          \
        out[j] = (float)(y_ < lo ? lo : y_ > hi ? hi : y_);                                    \
    } while (0)
    FOOLC__BLOCKED(d, ADD_CLIP_AT);
#undef ADD_CLIP_AT
}

int32_t foolc__dec_affordable(const foolc__run *run, const int32_t *idx, int32_t *act,
                              int32_t na, double max_q)
{
    int32_t nb = 0;
    for (int32_t q = 0; q < na; q++)
        if (foolc__run_may(run, idx[act[q]], max_q, 1)) act[nb++] = act[q];
    return nb;
}

/* The pairs (u, v) of NORMAL_BUF draws and u^2 + v^2, in blocks (exact in every clone:
 * 24-bit integers to float, and products and a sum of floats each rounded once). */
#define NORMAL_BUF 128
FOOLC__VEC
static void normal_pairs(const uint64_t *restrict z, float *restrict u, float *restrict v,
                         float *restrict s, size_t n)
{
#define PAIR_AT(j)                                                                             \
    do {                                                                                       \
        u[j] = (float)(int32_t)(z[j] >> 40) * 0x1.0p-23f - 1.0f;                               \
        v[j] = (float)(int32_t)((z[j] >> 16) & 0xFFFFFFu) * 0x1.0p-23f - 1.0f;                 \
        s[j] = u[j] * u[j] + v[j] * v[j];                                                      \
    } while (0)
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= n; j += FOOLC__BLOCK)
        for (size_t b = 0; b < FOOLC__BLOCK; b++) PAIR_AT(j + b);
    for (; j < n; j++) PAIR_AT(j);
#undef PAIR_AT
}

void foolc__dec_normal(foolc__rng *r, float *out, size_t n)
{
    /* Marsaglia's polar method on two 24-bit uniforms from one 64-bit draw: no
     * trigonometry, one logarithm per pair (directions need no more precision). The draws
     * come in blocks (foolc__rng_fill_u64) and the stream is set back past the last one
     * used, so the values and the stream's state are those of one draw at a time. */
    uint64_t z[NORMAL_BUF];
    float fu[NORMAL_BUF], fv[NORMAL_BUF], fs[NORMAL_BUF];
    size_t nb = 0, pos = 0;
    for (size_t j = 0; j < n; j += 2) {
        float u, v, s;
        do {
            if (pos == nb) {
                /* About 4/pi draws per pair: enough for the pairs left, within the buffer. */
                size_t want = (n - j + 1) / 2 * 4 / 3 + 8;
                nb = want < NORMAL_BUF ? want : NORMAL_BUF;
                foolc__rng_fill_u64(r, z, nb);
                normal_pairs(z, fu, fv, fs, nb);
                pos = 0;
            }
            u = fu[pos];
            v = fv[pos];
            s = fs[pos++];
        } while (s >= 1.0f || s == 0.0f);
        float f = sqrtf(-2.0f * logf(s) / s);
        out[j] = u * f;
        if (j + 1 < n) out[j + 1] = v * f;
    }
    r->ctr -= nb - pos;
}

/* ---- linear scan, then bisection ---- */

foolc_status foolc__dec_scan(foolc__run *run, const int32_t *idx, int32_t m,
                             const foolc__scan_opts *o, foolc__make_fn make, void *ctx,
                             float *best, uint8_t *ok)
{
    if (m == 0) return FOOLC_OK;
    size_t d = run->d;
    double *lo = foolc__malloc((size_t)m * 4 * sizeof(double));
    int32_t *act = foolc__malloc((size_t)m * 4 * sizeof(int32_t));
    uint8_t *adv = foolc__malloc((size_t)m * 2);
    float *cand = foolc__malloc(foolc__mul(foolc__mul((size_t)m, d), sizeof(float)));
    foolc_status st = FOOLC_OK;
    if (!lo || !act || !adv || !cand) {
        st = foolc__nomem("scan");
        goto out;
    }
    double *hi = lo + m, *eps = hi + m, *cur = eps + m;
    int32_t *sid = act + m, *k = sid + m, *pos = k + m;
    uint8_t *bis = adv + m;
    int32_t steps = o->steps < 1 ? 1 : o->steps, na = 0;
    for (int32_t a = 0; a < m; a++) {
        lo[a] = 0;
        hi[a] = INFINITY;
        k[a] = 1;
        bis[a] = 0;
        cur[a] = o->emax / steps;
        if (ok) ok[a] = 0;
        act[na++] = a;
    }
    while (na > 0) {
        if ((na = foolc__dec_affordable(run, idx, act, na, o->max_q)) == 0) break;
        for (int32_t q = 0; q < na; q++) {
            sid[q] = idx[act[q]];
            eps[q] = cur[act[q]];
            pos[q] = act[q];
        }
        memset(adv, FOOLC__ADV_UNKNOWN, (size_t)na);
        if ((st = make(ctx, run, sid, eps, na, cand, adv)) < 0) break;
        if ((st = foolc__run_is_adv(run, cand, sid, na, adv, NULL)) < 0) break;
        int32_t keep = 0;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = pos[q];
            int done = 0;
            if (adv[q]) {
                hi[a] = cur[a];
                bis[a] = 1;
                foolc__run_offer(run, sid[q], cand + (size_t)q * d);
                if (best) memcpy(best + (size_t)a * d, cand + (size_t)q * d, d * sizeof(float));
                if (ok) ok[a] = 1;
            } else {
                lo[a] = cur[a];
            }
            if (!bis[a]) {
                if (k[a] >= steps) done = 1;
                else cur[a] = o->emax * (double)++k[a] / steps;
            } else if (hi[a] - lo[a] <= o->rtol * hi[a]) {
                done = 1;
            } else {
                cur[a] = 0.5 * (lo[a] + hi[a]);
            }
            if (!done) act[keep++] = a;
        }
        na = keep;
        if (o->report && (st = foolc__run_progress(run, m - na, m)) < 0) break;
    }
out:
    foolc__free(lo);
    foolc__free(act);
    foolc__free(adv);
    foolc__free(cand);
    return st;
}

/* ---- repeated random directions ---- */

enum { PH_GROW, PH_TEST, PH_BISECT, PH_DONE };

foolc_status foolc__dec_repeat(foolc__run *run, const int32_t *idx, int32_t m,
                               const foolc__repeat_opts *o, foolc__draw_fn draw,
                               foolc__apply_fn apply, void *ctx)
{
    if (m == 0) return FOOLC_OK;
    size_t d = run->d, md = foolc__mul((size_t)m, d);
    double *lo = foolc__malloc((size_t)m * 4 * sizeof(double));
    int32_t *act = foolc__malloc((size_t)m * 4 * sizeof(int32_t));
    uint8_t *adv = foolc__malloc((size_t)m * 2);
    foolc__rng *rng = foolc__malloc((size_t)m * sizeof *rng);
    float *dir = foolc__malloc(foolc__mul(md, sizeof(float)));
    float *cand = foolc__malloc(foolc__mul(md, sizeof(float)));
    foolc_status st = FOOLC_OK;
    if (!lo || !act || !adv || !rng || !dir || !cand) {
        st = foolc__nomem("repeated directions");
        goto out;
    }
    double *hi = lo + m, *cur = hi + m, *bst = cur + m;
    int32_t *sid = act + m, *r = sid + m, *pos = r + m;
    uint8_t *ph = adv + m;
    int32_t na = 0;
    for (int32_t a = 0; a < m; a++) {
        foolc__rng_for(&rng[a], run, idx[a], FOOLC__STREAM_REPEAT);
        draw(ctx, run, &rng[a], dir + (size_t)a * d);
        r[a] = 0;
        ph[a] = o->repeats > 0 ? PH_GROW : PH_DONE;
        lo[a] = 0;
        hi[a] = INFINITY;
        cur[a] = o->eps_init;
        bst[a] = INFINITY;
        if (ph[a] != PH_DONE) act[na++] = a;
    }
    while (na > 0) {
        if ((na = foolc__dec_affordable(run, idx, act, na, o->max_q)) == 0) break;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q];
            sid[q] = idx[a];
            pos[q] = a;
            apply(ctx, run, idx[a], dir + (size_t)a * d, cur[a], cand + (size_t)q * d);
        }
        if ((st = foolc__run_is_adv(run, cand, sid, na, adv, NULL)) < 0) break;
        int32_t keep = 0;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = pos[q];
            int next = 0;
            if (adv[q]) foolc__run_offer(run, sid[q], cand + (size_t)q * d);
            if (ph[a] == PH_GROW) {
                if (adv[q]) {
                    hi[a] = cur[a];
                    lo[a] = cur[a] > o->eps_init ? cur[a] / o->growth : 0;
                    ph[a] = PH_BISECT;
                } else if (cur[a] >= o->eps_max) {
                    next = 1;
                } else {
                    cur[a] = fmin(cur[a] * o->growth, o->eps_max);
                }
            } else if (ph[a] == PH_TEST) {
                if (adv[q]) {
                    hi[a] = cur[a];
                    lo[a] = 0;
                    ph[a] = PH_BISECT;
                } else {
                    next = 1;
                }
            } else if (adv[q]) {
                hi[a] = cur[a];
            } else {
                lo[a] = cur[a];
            }
            if (ph[a] == PH_BISECT) {
                if (hi[a] - lo[a] <= o->rtol * hi[a]) {
                    bst[a] = fmin(bst[a], hi[a]);
                    next = 1;
                } else {
                    cur[a] = 0.5 * (lo[a] + hi[a]);
                }
            }
            if (next) {
                if (++r[a] >= o->repeats) {
                    ph[a] = PH_DONE;
                } else {
                    draw(ctx, run, &rng[a], dir + (size_t)a * d);
                    ph[a] = isinf(bst[a]) ? PH_GROW : PH_TEST;
                    cur[a] = isinf(bst[a]) ? o->eps_init : bst[a];
                }
            }
            if (ph[a] != PH_DONE) act[keep++] = a;
        }
        na = keep;
        if (o->report && (st = foolc__run_progress(run, m - na, m)) < 0) break;
    }
out:
    foolc__free(lo);
    foolc__free(act);
    foolc__free(adv);
    foolc__free(rng);
    foolc__free(dir);
    foolc__free(cand);
    return st;
}

/* ---- blended uniform noise ---- */

typedef struct blend_ctx {
    const float *noise;    /* m*d, rows by position */
    const int32_t *pos;    /* sample -> row */
} blend_ctx;

static foolc_status blend_make(void *ctx, foolc__run *run, const int32_t *idx,
                               const double *eps, int32_t m, float *out, uint8_t *adv)
{
    (void)adv;
    blend_ctx *c = ctx;
    size_t d = run->d;
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)idx[a] * d;
        const float *z = c->noise + (size_t)c->pos[idx[a]] * d;
        float *o = out + (size_t)a * d;
        double t = eps[a];
        for (size_t j = 0; j < d; j++) {
            float v = (float)((1.0 - t) * x0[j] + t * z[j]);
            o[j] = v < run->lo ? run->lo : v > run->hi ? run->hi : v;
        }
    }
    return FOOLC_OK;
}

static foolc_status blended_impl(foolc__run *run, const int32_t *idx, int32_t m,
                                 int32_t directions, int32_t steps, double rtol, double max_q,
                                 float *xadv, uint8_t *ok, uint64_t stream)
{
    if (m == 0) return FOOLC_OK;
    size_t d = run->d, md = foolc__mul((size_t)m, d);
    float *noise = foolc__malloc(foolc__mul(md, sizeof(float)));
    float *cand = foolc__malloc(foolc__mul(md, sizeof(float)));
    foolc__rng *rng = foolc__malloc((size_t)m * sizeof *rng);
    int32_t *act = foolc__malloc(((size_t)3 * m + (size_t)run->n) * sizeof(int32_t));
    uint8_t *adv = foolc__malloc((size_t)m);
    foolc_status st = FOOLC_OK;
    if (!noise || !cand || !rng || !act || !adv) {
        st = foolc__nomem("blended noise");
        goto out;
    }
    int32_t *sid = act + m, *tries = sid + m, *pos = tries + m;
    int32_t na = 0;
    double w = (double)run->hi - run->lo;
    for (int32_t a = 0; a < m; a++) {
        foolc__rng_for(&rng[a], run, idx[a], stream);
        ok[a] = 0;
        tries[a] = 0;
        pos[idx[a]] = a;
        memcpy(xadv + (size_t)a * d, run->x + (size_t)idx[a] * d, d * sizeof(float));
        if (directions > 0) act[na++] = a;
    }
    /* Uniform noise in the box until each sample has an adversarial one. */
    while (na > 0) {
        if ((na = foolc__dec_affordable(run, idx, act, na, max_q)) == 0) break;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q];
            float *z = cand + (size_t)q * d;
            for (size_t j = 0; j < d; j++) {
                float v = (float)(run->lo + w * foolc__rng_uniform(&rng[a]));
                z[j] = v > run->hi ? run->hi : v;
            }
            sid[q] = idx[a];
            tries[a]++;
        }
        if ((st = foolc__run_is_adv(run, cand, sid, na, adv, NULL)) < 0) goto out;
        int32_t keep = 0;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q];
            if (adv[q]) {
                ok[a] = 1;
                memcpy(noise + (size_t)a * d, cand + (size_t)q * d, d * sizeof(float));
                foolc__run_offer(run, idx[a], cand + (size_t)q * d);
            } else if (tries[a] < directions) {
                act[keep++] = a;
            }
        }
        na = keep;
    }
    /* The smallest adversarial blend, per sample that has a noise image. */
    na = 0;
    for (int32_t a = 0; a < m; a++)
        if (ok[a]) {
            sid[na] = idx[a];
            act[na++] = a;
        }
    if (na == 0) goto out;
    /* Rows of noise by position in sid: compact the found ones to the front. */
    for (int32_t q = 0; q < na; q++) {
        if (act[q] != q)
            memcpy(noise + (size_t)q * d, noise + (size_t)act[q] * d, d * sizeof(float));
        pos[sid[q]] = q;
    }
    blend_ctx bc = {noise, pos};
    foolc__scan_opts so = {.emax = 1.0, .steps = steps, .rtol = rtol, .max_q = max_q};
    uint8_t *fok = adv;
    if ((st = foolc__dec_scan(run, sid, na, &so, blend_make, &bc, cand, fok)) < 0) goto out;
    for (int32_t q = 0; q < na; q++) {
        float *xa = xadv + (size_t)act[q] * d;
        /* A scan cut short by the budget leaves the noise image itself as the point. */
        memcpy(xa, fok[q] ? cand + (size_t)q * d : noise + (size_t)q * d, d * sizeof(float));
    }
out:
    foolc__free(noise);
    foolc__free(cand);
    foolc__free(rng);
    foolc__free(act);
    foolc__free(adv);
    return st;
}

typedef foolc__pool_cand pool_cand;

foolc_status foolc__dec_pool(foolc__run *run, const int32_t *idx, int32_t m, int32_t k,
                             int first_only, double max_q, float *xs, int32_t *pos,
                             int32_t *nf, int *own)
{
    size_t d = run->d;
    int self = !run->starts_x || run->n_starts <= 0;
    const float *px = self ? run->x : run->starts_x;
    const int32_t *py = self ? run->labels : run->starts_y;
    int32_t np = self ? run->n : run->n_starts;
    size_t mk = foolc__mul((size_t)m, (size_t)k);
    *nf = 0;
    if (own) *own = self;
    if (m == 0) return FOOLC_OK;
    pool_cand *cs = foolc__malloc(foolc__mul(mk, sizeof *cs));
    int32_t *cnt = foolc__malloc((size_t)m * 3 * sizeof(int32_t));
    uint8_t *adv = foolc__malloc((size_t)m * 2);
    foolc_status st = FOOLC_OK;
    if (!cs || !cnt || !adv) {
        st = foolc__nomem("starting-point pool");
        goto out;
    }
    int32_t *sid = cnt + m, *act = sid + m;
    uint8_t *done = adv + m;
    /* The k closest rows of another class per sample (nearest.c). */
    if ((st = foolc__dec_nearest(run, idx, m, k, px, py, np, self, cs, cnt)) < 0) goto out;
    for (int32_t a = 0; a < m; a++) done[a] = 0;
    /* The t-th closest of every sample in one query; the rows go straight into xs after
     * the ones found so far (found rows never overtake the rows still to be checked). */
    for (int32_t t = 0; t < k; t++) {
        int32_t na = 0;
        float *buf = xs + foolc__mul((size_t)*nf, d);
        for (int32_t a = 0; a < m; a++) {
            if (t >= cnt[a] || done[a] || !foolc__run_may(run, idx[a], max_q, 1)) continue;
            const float *xp = px + (size_t)cs[(size_t)a * (size_t)k + (size_t)t].row * d;
            float *o = buf + (size_t)na * d;
            for (size_t j = 0; j < d; j++)
                o[j] = xp[j] < run->lo ? run->lo : xp[j] > run->hi ? run->hi : xp[j];
            sid[na] = idx[a];
            act[na++] = a;
        }
        if (na == 0) break;
        if ((st = foolc__run_is_adv(run, buf, sid, na, adv, NULL)) < 0) goto out;
        for (int32_t q = 0; q < na; q++)
            if (adv[q]) {
                if (xs + (size_t)*nf * d != buf + (size_t)q * d)
                    memmove(xs + (size_t)*nf * d, buf + (size_t)q * d, d * sizeof(float));
                pos[(*nf)++] = act[q];
                if (first_only) done[act[q]] = 1;
            }
    }
out:
    foolc__free(cs);
    foolc__free(cnt);
    foolc__free(adv);
    return st;
}

foolc_status foolc__dec_start_pool(foolc__run *run, const int32_t *idx, int32_t m, int32_t k,
                               double max_q, float *xadv, uint8_t *ok, int *own)
{
    size_t d = run->d;
    float *xs = foolc__malloc(foolc__mul(foolc__mul(2, (size_t)m), d * sizeof(float)));
    int32_t *pos = foolc__malloc((size_t)m * 2 * sizeof(int32_t));
    foolc_status st = xs && pos ? FOOLC_OK : foolc__nomem("starting-point pool");
    int32_t nm = 0, nf = 0, *sid = pos + m;
    for (int32_t a = 0; st >= 0 && a < m; a++)
        if (!ok[a]) sid[nm++] = idx[a];
    if (st >= 0) st = foolc__dec_pool(run, sid, nm, k, 1, max_q, xs, pos, &nf, own);
    for (int32_t f = 0; st >= 0 && f < nf; f++) {
        int32_t i = sid[pos[f]], a = 0;
        while (idx[a] != i) a++;
        ok[a] = 1;
        memcpy(xadv + (size_t)a * d, xs + (size_t)f * d, d * sizeof(float));
        foolc__run_offer(run, i, xs + (size_t)f * d);
    }
    foolc__free(xs);
    foolc__free(pos);
    return st;
}

#define FALLBACK_POOL 100

foolc_status foolc__init_blended(foolc__run *run, const int32_t *idx, int32_t m,
                                 int32_t directions, int32_t steps, double rtol, double max_q,
                                 float *xadv, uint8_t *ok, uint64_t stream)
{
    return blended_impl(run, idx, m, directions, steps, rtol, max_q, xadv, ok, stream);
}

foolc_status foolc__dec_sample_starts(foolc__run *run, const int32_t *idx, int32_t m,
                                      double max_q, float *xadv, uint8_t *ok)
{
    return foolc__dec_sample_starts_at(run, idx, m, max_q, 0, xadv, ok);
}

foolc_status foolc__dec_sample_starts_at(foolc__run *run, const int32_t *idx, int32_t m,
                                         double max_q, int32_t j, float *xadv, uint8_t *ok)
{
    if (!run->sample_x || m == 0 || j < 0 || j >= run->sample_k) return FOOLC_OK;
    size_t d = run->d;
    float *xs = foolc__malloc(foolc__mul(foolc__mul((size_t)m, d), sizeof(float)));
    int32_t *sid = foolc__malloc((size_t)m * 2 * sizeof(int32_t));
    uint8_t *adv = foolc__malloc((size_t)m);
    foolc_status st = xs && sid && adv ? FOOLC_OK : foolc__nomem("per-sample starts");
    int32_t *pos = sid + m, nc = 0;
    for (int32_t a = 0; st >= 0 && a < m; a++) {
        int32_t i = idx[a];
        const float *r = run->sample_x + ((size_t)i * (size_t)run->sample_k + (size_t)j) * d;
        const float *x0 = run->x + (size_t)i * d;
        if (ok[a] || !foolc__run_may(run, i, max_q, 1)) continue;
        int usable = 1, moved = 0;
        for (size_t q = 0; usable && q < d; q++) {
            usable = r[q] >= run->lo && r[q] <= run->hi; /* NaN fails too */
            moved |= r[q] != x0[q];
        }
        if (!usable || !moved) continue;
        memcpy(xs + (size_t)nc * d, r, d * sizeof(float));
        sid[nc] = i;
        pos[nc++] = a;
    }
    if (st >= 0 && nc > 0) st = foolc__run_is_adv(run, xs, sid, nc, adv, NULL);
    for (int32_t q = 0; st >= 0 && q < nc; q++) {
        if (!adv[q]) continue;
        ok[pos[q]] = 1;
        memcpy(xadv + (size_t)pos[q] * d, xs + (size_t)q * d, d * sizeof(float));
        foolc__run_offer(run, sid[q], xs + (size_t)q * d);
    }
    foolc__free(xs);
    foolc__free(sid);
    foolc__free(adv);
    return st;
}

foolc_status foolc__dec_with_sample_starts(foolc__run *run, const int32_t *idx, int32_t m,
                                           double max_q, float *xadv, uint8_t *ok,
                                           foolc__own_start_fn own, void *ctx)
{
    if (!run->sample_x) return own(ctx, run, idx, m, xadv, ok);
    size_t d = run->d;
    for (int32_t a = 0; a < m; a++) {
        ok[a] = 0;
        memcpy(xadv + (size_t)a * d, run->x + (size_t)idx[a] * d, d * sizeof(float));
    }
    FOOLC__CHECK(foolc__dec_sample_starts(run, idx, m, max_q, xadv, ok));
    int32_t nr = 0;
    for (int32_t a = 0; a < m; a++) nr += !ok[a];
    if (nr == 0) return FOOLC_OK;
    if (nr == m) return own(ctx, run, idx, m, xadv, ok);
    /* The others, compacted, then scattered back. */
    int32_t *rid = foolc__malloc((size_t)nr * sizeof(int32_t));
    float *rx = foolc__malloc(foolc__mul(foolc__mul((size_t)nr, d), sizeof(float)));
    uint8_t *rok = foolc__malloc((size_t)nr);
    foolc_status st = rid && rx && rok ? FOOLC_OK : foolc__nomem("own starts");
    nr = 0;
    for (int32_t a = 0; st >= 0 && a < m; a++)
        if (!ok[a]) rid[nr++] = idx[a];
    if (st >= 0) st = own(ctx, run, rid, nr, rx, rok);
    for (int32_t a = 0, q = 0; st >= 0 && a < m; a++) {
        if (ok[a]) continue;
        ok[a] = rok[q];
        memcpy(xadv + (size_t)a * d, rx + (size_t)q * d, d * sizeof(float));
        q++;
    }
    foolc__free(rid);
    foolc__free(rx);
    foolc__free(rok);
    return st;
}

foolc_status foolc__dec_init_attack(foolc__run *run, const int32_t *idx, int32_t m,
                                    const char *fallback, float *xadv, uint8_t *ok)
{
    FOOLC__CHECK(foolc__run_subattack(run, run->init_attack ? run->init_attack : fallback, idx,
                                      m, xadv, ok));
    for (int32_t a = 0; a < m; a++)
        if (ok[a]) foolc__run_offer(run, idx[a], xadv + (size_t)a * run->d);
    return FOOLC_OK;
}

typedef struct dec_own_ctx {
    foolc__start mode;
    int32_t directions, steps, draws;
    double max_q;
} dec_own_ctx;

static foolc_status dec_own_start(void *ctx, foolc__run *run, const int32_t *idx, int32_t m,
                                  float *xadv, uint8_t *ok)
{
    const dec_own_ctx *c = ctx;
    foolc__start mode = c->mode;
    int32_t directions = c->directions, steps = c->steps, draws = c->draws;
    double max_q = c->max_q;
    char why[200];
    size_t d = run->d;
    int own = 0;
    if (mode == FOOLC__START_ATTACK) {
        const char *name = run->init_attack ? run->init_attack : "blended-noise";
        snprintf(why, sizeof why, "the init attack %s found no adversarial", name);
        FOOLC__CHECK(foolc__dec_init_attack(run, idx, m, name, xadv, ok));
    } else if (mode == FOOLC__START_POOL) {
        for (int32_t a = 0; a < m; a++) {
            ok[a] = 0;
            memcpy(xadv + (size_t)a * d, run->x + (size_t)idx[a] * d, d * sizeof(float));
        }
        FOOLC__CHECK(foolc__dec_start_pool(run, idx, m, directions, max_q, xadv, ok, &own));
        snprintf(why, sizeof why, "none of the %d closest %s images of another class is "
                 "adversarial", directions, own ? "batch (no pool set)" : "pool");
    } else {
        /* Blended noise; where no noise image is adversarial (inputs of the class the model
         * gives to noise), the closest adversarial pool (or batch) image instead. */
        FOOLC__CHECK(blended_impl(run, idx, m, directions, steps, FOOLC__BLEND_RTOL, max_q,
                                  xadv, ok,
                                  FOOLC__STREAM_BLENDED));
        /* More noise images, each blended to its smallest adversarial mix; the closest
         * start per sample is kept. */
        for (int32_t r = 1; r < draws; r++) {
            float *xb = foolc__malloc(foolc__mul(foolc__mul((size_t)m, d), sizeof(float)));
            uint8_t *ob = foolc__malloc((size_t)m);
            if (!xb || !ob) {
                foolc__free(xb);
                foolc__free(ob);
                return foolc__nomem("blended starting points");
            }
            foolc_status st = blended_impl(run, idx, m, directions, steps, FOOLC__BLEND_RTOL,
                                           max_q, xb, ob,
                                           FOOLC__STREAM_BLENDED + 0x1000u * (uint64_t)r);
            for (int32_t a = 0; st >= 0 && a < m; a++) {
                if (!ob[a]) continue;
                const float *x0 = run->x + (size_t)idx[a] * d;
                if (!ok[a] || foolc_distance(run->norm, x0, xb + (size_t)a * d, d) <
                    foolc_distance(run->norm, x0, xadv + (size_t)a * d, d)) {
                    memcpy(xadv + (size_t)a * d, xb + (size_t)a * d, d * sizeof(float));
                    ok[a] = 1;
                }
            }
            foolc__free(xb);
            foolc__free(ob);
            FOOLC__CHECK(st);
        }
        FOOLC__CHECK(foolc__dec_start_pool(run, idx, m, FALLBACK_POOL, max_q, xadv, ok, &own));
        snprintf(why, sizeof why, "no adversarial among %d uniform-noise draws nor among the "
                 "%d closest %s images of another class, or the query budget ran out",
                 directions, FALLBACK_POOL, own ? "batch (no pool set)" : "pool");
    }
    foolc__dec_missing(run, idx, m, ok, why);
    return FOOLC_OK;
}

/* The per-sample starts where usable, the mode's own start for the other samples. */
foolc_status foolc__dec_start(foolc__run *run, const int32_t *idx, int32_t m, foolc__start mode,
                              int32_t directions, int32_t steps, int32_t draws, double max_q,
                              float *xadv, uint8_t *ok)
{
    dec_own_ctx c = {mode, directions, steps, draws, max_q};
    return foolc__dec_with_sample_starts(run, idx, m, max_q, xadv, ok, dec_own_start, &c);
}

void foolc__dec_missing(const foolc__run *run, const int32_t *idx, int32_t m,
                        const uint8_t *ok, const char *why)
{
    char list[256] = "";
    size_t used = 0;
    int32_t missing = 0;
    for (int32_t a = 0; a < m; a++) {
        if (ok[a]) continue;
        if (missing++ < 16 && used < sizeof list)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%d",
                                     used ? ", " : "", idx[a]);
    }
    if (missing)
        foolc__error(FOOLC_NOT_FOUND, "%s: no starting point for %d sample%s (%s%s): %s",
                     run->vt->name, missing, missing > 1 ? "s" : "", list,
                     missing > 16 ? ", ..." : "", why);
}
