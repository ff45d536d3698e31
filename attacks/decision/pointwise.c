/* The Pointwise attack (Schott et al., arXiv:1805.09190), minimising in L0, then refining:
 * from a salt-and-pepper starting point, each perturbed value is reset to the clean one in a
 * random order whenever the result stays adversarial, pass after pass until a pass changes
 * nothing; then (rank) every value's effect is measured just below the boundary and the
 * fewest values of largest effect set to a face of the box that stay adversarial replace the
 * point when they are fewer; the reset passes run again, and each value still perturbed is
 * bisected between its clean and adversarial values (same L0, smaller L2). The passes send
 * one candidate per sample per batched query, the ranking many. */
#include "decision.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct pointwise_config {
    double max_passes, bisect_steps, max_queries, rank;
} pointwise_config;

static const foolc__param pointwise_params[] = {
    FOOLC__PARAM(pointwise_config, max_passes, 10, 1, 100, 1,
                 "passes over the perturbed values that try to reset each one, at most"),
    FOOLC__PARAM(pointwise_config, bisect_steps, 10, 0, 30, 1,
                 "bisection steps per value still perturbed after the passes (0: none)"),
    FOOLC__PARAM(pointwise_config, max_queries, 0, 0, 1e12, 1,
                 "model images per sample at most, starting point included; 0 means no limit"),
    FOOLC__PARAM(pointwise_config, rank, 1, 0, 1, 1,
                 "after the first passes, rank the values by their measured effect and keep the "
                 "fewest of largest effect that stay adversarial (about 2 to 9 d images; 0: no)"),
};

enum { RESET, REFINE, DONE };

typedef struct pstate {
    foolc__rng rng;
    int32_t phase, n, cur, pass, changed, step;
    double lo, hi;        /* REFINE: the bracket of the current value, as a fraction */
} pstate;

/* Lists the values of xa that differ from x0, in a random order. */
static void list_perturbed(pstate *s, const float *x0, const float *xa, size_t d, int32_t *list)
{
    s->n = 0;
    for (size_t j = 0; j < d; j++)
        if (xa[j] != x0[j]) list[s->n++] = (int32_t)j;
    for (int32_t j = s->n - 1; j > 0; j--) {
        int32_t k = (int32_t)(foolc__rng_u64(&s->rng) % (uint64_t)(j + 1));
        int32_t t = list[j];
        list[j] = list[k];
        list[k] = t;
    }
    s->cur = 0;
    s->changed = 0;
}

/* The buffers of one run. */
typedef struct pw {
    foolc__run *run;
    const pointwise_config *c;
    int32_t m;
    size_t d;
    float *xa, *cand;     /* m*d each: the points, the candidates (the base points in rank) */
    int32_t *list, *act, *sid;
    pstate *s;
    uint8_t *ok, *adv;
} pw;

/* The reset passes over the samples with ok[a] (each from a fresh random order), then, with
 * refine, the bisection of every value still perturbed. */
static foolc_status passes(pw *p, int refine)
{
    foolc__run *run = p->run;
    const pointwise_config *c = p->c;
    size_t d = p->d;
    float *xa = p->xa, *cand = p->cand;
    int32_t *list = p->list, *act = p->act, *sid = p->sid;
    pstate *s = p->s;
    uint8_t *adv = p->adv;
    foolc_status st = FOOLC_OK;
    int32_t na = 0;
    for (int32_t a = 0; a < p->m; a++) {
        if (!p->ok[a]) continue;
        s[a].phase = RESET;
        s[a].pass = 0;
        list_perturbed(&s[a], run->x + (size_t)run->todo[a] * d, xa + (size_t)a * d, d,
                       list + (size_t)a * d);
        act[na++] = a;
    }
    const int32_t n0 = na;
    while (na > 0) {
        /* Advance each sample to its next candidate, or retire it. */
        int32_t nb = 0;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q], i = run->todo[a];
            pstate *z = &s[a];
            const float *x0 = run->x + (size_t)i * d;
            float *xr = xa + (size_t)a * d;
            int32_t *li = list + (size_t)a * d;
            for (;;) {
                if (z->phase == RESET && z->cur >= z->n) {
                    if (z->changed && ++z->pass < (int32_t)c->max_passes) {
                        list_perturbed(z, x0, xr, d, li);
                    } else {
                        list_perturbed(z, x0, xr, d, li);
                        z->phase = refine && c->bisect_steps > 0 ? REFINE : DONE;
                        z->step = 0;
                        z->lo = 0;
                        z->hi = 1;
                    }
                    continue;
                }
                if (z->phase == REFINE && z->step >= (int32_t)c->bisect_steps) {
                    z->cur++;
                    z->step = 0;
                    z->lo = 0;
                    z->hi = 1;
                }
                if (z->phase == REFINE && z->cur >= z->n) z->phase = DONE;
                break;
            }
            if (z->phase == DONE || !foolc__run_may(run, i, c->max_queries, 1)) continue;
            float *o = cand + (size_t)nb * d;
            memcpy(o, xr, d * sizeof(float));
            int32_t j = li[z->cur];
            if (z->phase == RESET) {
                o[j] = x0[j];
            } else {
                /* The bracket is in fractions of the current offset xr[j] - x0[j]. */
                double t = 0.5 * (z->lo + z->hi);
                o[j] = (float)(x0[j] + t * ((double)xr[j] - x0[j]));
            }
            sid[nb] = i;
            act[nb++] = a;
        }
        if ((na = nb) == 0) break;
        /* Progress: the samples retired so far. */
        if (refine && (st = foolc__run_progress(run, n0 - na, n0)) < 0) return st;
        if ((st = foolc__run_is_adv(run, cand, sid, na, adv, NULL)) < 0) return st;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q], i = run->todo[a];
            pstate *z = &s[a];
            float *xr = xa + (size_t)a * d;
            if (z->phase == RESET) {
                if (adv[q]) {
                    memcpy(xr, cand + (size_t)q * d, d * sizeof(float));
                    foolc__run_offer(run, i, xr);
                    z->changed = 1;
                }
                z->cur++;
            } else {
                /* The bracket is [lo, hi] as fractions of the current value's offset; on
                 * success the value moves to the midpoint, which becomes the new 1. */
                double t = 0.5 * (z->lo + z->hi);
                if (adv[q]) {
                    memcpy(xr, cand + (size_t)q * d, d * sizeof(float));
                    foolc__run_offer_tie(run, i, xr);
                    z->lo = z->lo / t;
                    z->hi = 1;
                } else {
                    z->lo = t;
                }
                z->step++;
            }
        }
    }
    return st;
}

/* The ranking: bisection steps of the base point, its distance below the boundary (as a
 * fraction of the way to it), bisection steps of each value's effect, the smallest fraction
 * of a value's way to its face searched (log2), reference values of the second measure,
 * candidates per batched query. */
#define BASE_STEPS 12
#define BASE_BELOW 0x1p-8
#define RANK_BITS 7
#define RANK_MIN_LOG2 (-10)
#define RANK_REFS 16
#define RANK_CHUNK 64

typedef struct ranked {
    float score;
    int32_t j;
} ranked;

static int by_score(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->score != b->score) return (a->score < b->score) - (a->score > b->score);
    return (a->j > b->j) - (a->j < b->j);   /* largest first, then by index */
}

static int cmp_float(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;
    return (a > b) - (a < b);
}

/* The work of the ranking (rank): per sample a row of d for each array. */
typedef struct rk {
    int8_t *dir, *dir2;      /* the face of each value that crosses: +1 upper, -1 lower, 0 none */
    float *lg, *sc, *sc2;    /* log2 u's bracket, then the gains (measures 1 and 2) */
    float *q1, *chunk;       /* the first prefix point; RANK_CHUNK rows */
    uint8_t *want;           /* the values the second measure takes */
    ranked *r;
    double *tl, *th;
    int32_t *klo, *khi, *np;
} rk;

/* Measures the gains of the values of each listed sample a (all, or those with want[a, j])
 * from x0: a base point B just below the boundary on the way from x0 to ends[a] (bisected,
 * then BASE_BELOW of the way below it, so with a margin m of about that fraction of the
 * clean input's); per value the face whose setting in B crosses the boundary (the upper one
 * tried first) and by a bisection of log2 u the smallest fraction u of its way there that
 * does. On a flat boundary its gain from x0 is then m (face - x0_j) / ((face - B_j) u),
 * into sc (0: no face crosses) with the face into dir. */
static foolc_status measure(pw *p, rk *k, const int32_t *list, int32_t n, const float *ends,
                            const uint8_t *want, int8_t *dir, float *sc)
{
    foolc__run *run = p->run;
    size_t d = p->d;
    float lo = run->lo, hi = run->hi, *chunk = k->chunk;
    int32_t sid[RANK_CHUNK], pos[RANK_CHUNK], crd[RANK_CHUNK];
    uint8_t adv[RANK_CHUNK];
    for (int32_t q = 0; q < n; q++) {
        k->tl[list[q]] = 0;
        k->th[list[q]] = 1;
    }
    for (int step = 0; step < BASE_STEPS; step++) {
        for (int32_t q0 = 0; q0 < n; q0 += RANK_CHUNK) {
            int32_t nc = n - q0 < RANK_CHUNK ? n - q0 : RANK_CHUNK;
            for (int32_t q = 0; q < nc; q++) {
                int32_t a = list[q0 + q], i = run->todo[a];
                const float *x0 = run->x + (size_t)i * d, *x1 = ends + (size_t)a * d;
                double t = 0.5 * (k->tl[a] + k->th[a]);
                float *o = chunk + (size_t)q * d;
                for (size_t j = 0; j < d; j++)
                    o[j] = (float)(x0[j] + t * ((double)x1[j] - x0[j]));
                sid[q] = i;
            }
            FOOLC__CHECK(foolc__run_is_adv(run, chunk, sid, nc, adv, NULL));
            for (int32_t q = 0; q < nc; q++) {
                int32_t a = list[q0 + q];
                double t = 0.5 * (k->tl[a] + k->th[a]);
                if (adv[q]) k->th[a] = t;
                else k->tl[a] = t;
            }
        }
    }
    for (int32_t q = 0; q < n; q++) {
        int32_t a = list[q];
        const float *x0 = run->x + (size_t)run->todo[a] * d, *x1 = ends + (size_t)a * d;
        float *b = p->cand + (size_t)a * d;
        double t = k->tl[a] * (1 - BASE_BELOW);
        for (size_t j = 0; j < d; j++) b[j] = (float)(x0[j] + t * ((double)x1[j] - x0[j]));
        memset(dir + (size_t)a * d, 0, d);
    }
    /* Phase 0: the upper face; 1: the lower one where the upper did not cross; 2..: the
     * bisection of log2 u in [RANK_MIN_LOG2, 0] (its lower end in lg, width halving). */
    for (int phase = 0; phase < 2 + RANK_BITS; phase++) {
        double w = -RANK_MIN_LOG2 * ldexp(1.0, -(phase - 2));   /* phase >= 2: the width */
        int32_t q = 0;
        size_t j = 0;
        while (q < n) {
            int32_t nc = 0;
            while (nc < RANK_CHUNK && q < n) {
                int32_t a = list[q];
                if (j >= d) {
                    q++;
                    j = 0;
                    continue;
                }
                size_t at = (size_t)a * d + j;
                const float *b = p->cand + (size_t)a * d;
                float v;
                if (want && !want[at]) {
                    j++;
                    continue;
                } else if (phase == 0 && b[j] < hi) {
                    v = hi;
                } else if (phase == 1 && dir[at] == 0 && b[j] > lo) {
                    v = lo;
                } else if (phase >= 2 && dir[at] != 0) {
                    if (phase == 2) k->lg[at] = RANK_MIN_LOG2;
                    float f = dir[at] > 0 ? hi : lo;
                    v = (float)(b[j] + exp2(k->lg[at] + 0.5 * w) * ((double)f - b[j]));
                } else {
                    j++;
                    continue;
                }
                float *o = chunk + (size_t)nc * d;
                memcpy(o, b, d * sizeof(float));
                o[j] = v;
                sid[nc] = run->todo[a];
                pos[nc] = a;
                crd[nc] = (int32_t)j;
                nc++;
                j++;
            }
            if (nc == 0) break;
            FOOLC__CHECK(foolc__run_is_adv(run, chunk, sid, nc, adv, NULL));
            for (int32_t c = 0; c < nc; c++) {
                size_t at = (size_t)pos[c] * d + (size_t)crd[c];
                if (phase < 2) {
                    if (adv[c]) dir[at] = phase == 0 ? 1 : -1;
                } else if (!adv[c]) {
                    k->lg[at] += (float)(0.5 * w);
                }
            }
        }
    }
    double w = -RANK_MIN_LOG2 * ldexp(1.0, -RANK_BITS);
    for (int32_t q = 0; q < n; q++) {
        int32_t a = list[q];
        const float *x0 = run->x + (size_t)run->todo[a] * d, *b = p->cand + (size_t)a * d;
        for (size_t j = 0; j < d; j++) {
            size_t at = (size_t)a * d + j;
            sc[at] = 0;
            if (!dir[at]) continue;
            double f = dir[at] > 0 ? hi : lo, den = (f - b[j]) * exp2(k->lg[at] + 0.5 * w);
            if (den != 0) sc[at] = (float)((f - x0[j]) / den);
        }
    }
    return FOOLC_OK;
}

/* Sorts sample a's values with a gain (sc > 0, face in dir) into r, largest first; returns
 * how many. */
static int32_t sort_gains(const rk *k, size_t d, int32_t a, const int8_t *dir, const float *sc)
{
    ranked *r = k->r + (size_t)a * d;
    int32_t n = 0;
    for (size_t j = 0; j < d; j++) {
        size_t at = (size_t)a * d + j;
        if (dir[at] && sc[at] > 0) {
            r[n].score = sc[at];
            r[n].j = (int32_t)j;
            n++;
        }
    }
    qsort(r, (size_t)n, sizeof *r, by_score);
    return n;
}

/* Per listed sample a, the smallest k in [1, khi[a]] whose first k sorted values (k->r) at
 * their faces (dir) in x0 are adversarial: khi[a] first (none when it is not), then a
 * bisection (assuming monotony). The point goes to out[a] and k to khi[a]; klo[a] = -1 when
 * there is none. */
static foolc_status prefix_search(pw *p, rk *k, int32_t *list, int32_t n, const int8_t *dir,
                                  float *out)
{
    foolc__run *run = p->run;
    size_t d = p->d;
    int32_t sid[RANK_CHUNK];
    uint8_t adv[RANK_CHUNK];
    for (int32_t q = 0; q < n; q++) k->klo[list[q]] = 0;
    for (int first = 1; n > 0; first = 0) {
        int32_t nb = 0;
        for (int32_t q0 = 0; q0 < n; q0 += RANK_CHUNK) {
            int32_t nc = n - q0 < RANK_CHUNK ? n - q0 : RANK_CHUNK;
            for (int32_t q = 0; q < nc; q++) {
                int32_t a = list[q0 + q], i = run->todo[a];
                int32_t kk = first ? k->khi[a] : (k->klo[a] + k->khi[a]) / 2;
                const ranked *r = k->r + (size_t)a * d;
                float *o = k->chunk + (size_t)q * d;
                memcpy(o, run->x + (size_t)i * d, d * sizeof(float));
                for (int32_t c = 0; c < kk; c++)
                    o[r[c].j] = dir[(size_t)a * d + (size_t)r[c].j] > 0 ? run->hi : run->lo;
                sid[q] = i;
            }
            FOOLC__CHECK(foolc__run_is_adv(run, k->chunk, sid, nc, adv, NULL));
            for (int32_t q = 0; q < nc; q++) {
                int32_t a = list[q0 + q];
                int32_t kk = first ? k->khi[a] : (k->klo[a] + k->khi[a]) / 2;
                if (first && !adv[q]) {
                    k->klo[a] = -1;   /* none */
                    continue;
                }
                if (adv[q]) {
                    k->khi[a] = kk;
                    memcpy(out + (size_t)a * d, k->chunk + (size_t)q * d, d * sizeof(float));
                } else {
                    k->klo[a] = kk;
                }
                if (k->khi[a] - k->klo[a] > 1) list[nb++] = a;
            }
        }
        n = nb;
    }
    return FOOLC_OK;
}

/* The ranking (rank = 1), for the samples with ok[a] and the budget for it. On a flat
 * boundary (a linear model), setting value j from x0_j to a face gains a_j (face - x0_j),
 * and the fewest values that reach the boundary, those of largest gain, are the exact L0
 * minimum. The gains are measured (measure) on the way to the current point S; the values
 * of S itself are poorly measured there (B is near S), so the values of largest gain found
 * make a second point Q (the fewest that are adversarial, prefix_search), on the way to which
 * the values of S not in Q are measured again with RANK_REFS values measured in both (the
 * next ones by gain outside S and Q) to bring the second measure to the first's scale (the
 * median ratio). The fewest values of largest gain in the merged ranking that are adversarial
 * replace S when they are fewer than its perturbed values. */
static foolc_status rank(pw *p)
{
    foolc__run *run = p->run;
    const pointwise_config *c = p->c;
    size_t d = p->d, md = foolc__mul((size_t)p->m, d);
    int32_t m = p->m, n = 0, nq;
    rk k = {0};
    k.dir = foolc__malloc(foolc__mul(md, 2));
    k.lg = foolc__malloc(foolc__mul(md, 3 * sizeof(float)));
    k.q1 = foolc__malloc(foolc__mul(md, sizeof(float)));
    k.chunk = foolc__malloc(foolc__mul(RANK_CHUNK, d) * sizeof(float));
    k.want = foolc__malloc(md);
    k.r = foolc__malloc(foolc__mul(md, sizeof(ranked)));
    k.tl = foolc__malloc((size_t)m * 2 * sizeof(double));
    k.klo = foolc__malloc((size_t)m * 7 * sizeof(int32_t));
    foolc_status st = FOOLC_OK;
    if (!k.dir || !k.lg || !k.q1 || !k.chunk || !k.want || !k.r || !k.tl || !k.klo) {
        st = foolc__nomem("pointwise");
        goto out;
    }
    k.dir2 = k.dir + md;
    k.sc = k.lg + md;
    k.sc2 = k.sc + md;
    k.th = k.tl + m;
    k.khi = k.klo + m;
    k.np = k.khi + m;
    int32_t *list = k.np + m, *keep = list + m, *kq1 = keep + m, *kq2 = kq1 + m;
    float *q2 = p->cand;   /* free after the second measure */
    /* Who: a point, and the budget for the worst case of both measures. */
    for (int32_t a = 0; a < m; a++) {
        kq1[a] = kq2[a] = -1;
        k.np[a] = k.klo[a] = k.khi[a] = 0;
        if (p->ok[a] && foolc__run_may(run, run->todo[a], c->max_queries,
                                       (uint64_t)(2 * (BASE_STEPS + (RANK_BITS + 2) * (double)d) +
                                                  64)))
            keep[n++] = a;
    }
    if ((st = measure(p, &k, keep, n, p->xa, NULL, k.dir, k.sc)) < 0) goto out;
    /* Q: the fewest values of largest gain that are adversarial. */
    nq = 0;
    for (int32_t q = 0; q < n; q++) {
        int32_t a = keep[q];
        const float *x0 = run->x + (size_t)run->todo[a] * d, *s = p->xa + (size_t)a * d;
        k.np[a] = 0;
        for (size_t j = 0; j < d; j++) k.np[a] += s[j] != x0[j];
        k.khi[a] = sort_gains(&k, d, a, k.dir, k.sc);
        if (k.khi[a] >= 1) list[nq++] = a;
    }
    if ((st = prefix_search(p, &k, list, nq, k.dir, k.q1)) < 0) goto out;
    /* The second measure: the values of S outside Q, and the references. */
    int32_t n2 = 0;
    for (int32_t q = 0; q < n; q++) {
        int32_t a = keep[q];
        if (k.khi[a] < 1 || k.klo[a] < 0) continue;   /* no Q */
        kq1[a] = k.khi[a];
        const float *x0 = run->x + (size_t)run->todo[a] * d, *s = p->xa + (size_t)a * d;
        const float *q1 = k.q1 + (size_t)a * d;
        uint8_t *w = k.want + (size_t)a * d;
        int32_t refs = 0, any = 0, nr = sort_gains(&k, d, a, k.dir, k.sc);
        for (size_t j = 0; j < d; j++) {
            w[j] = s[j] != x0[j] && q1[j] == x0[j];
            any |= w[j];
        }
        const ranked *r = k.r + (size_t)a * d;
        for (int32_t t = 0; t < nr && refs < RANK_REFS; t++) {
            size_t j = (size_t)r[t].j;
            if (s[j] == x0[j] && q1[j] == x0[j]) {
                w[j] = 2;
                refs++;
            }
        }
        if (any && refs > 0) keep[n2++] = a;
    }
    if ((st = measure(p, &k, keep, n2, k.q1, k.want, k.dir2, k.sc2)) < 0) goto out;
    /* Merge: the second measure's values at the first's scale (the median ratio over the
     * references); then the final prefix search, at most one value fewer than S has. */
    nq = 0;
    for (int32_t q = 0; q < n2; q++) {
        int32_t a = keep[q];
        const uint8_t *w = k.want + (size_t)a * d;
        float *rat = k.lg + (size_t)a * d;   /* the bracket is spent: scratch */
        int32_t nr = 0;
        for (size_t j = 0; j < d; j++) {
            size_t at = (size_t)a * d + j;
            if (w[j] == 2 && k.sc[at] > 0 && k.sc2[at] > 0) rat[nr++] = k.sc[at] / k.sc2[at];
        }
        if (nr == 0) continue;
        qsort(rat, (size_t)nr, sizeof *rat, cmp_float);
        double scale = nr % 2 ? rat[nr / 2] : 0.5 * ((double)rat[nr / 2 - 1] + rat[nr / 2]);
        for (size_t j = 0; j < d; j++) {
            size_t at = (size_t)a * d + j;
            if (w[j] == 1) {
                k.dir[at] = k.dir2[at];
                k.sc[at] = (float)(k.sc2[at] * scale);
            }
        }
        int32_t ng = sort_gains(&k, d, a, k.dir, k.sc);
        k.khi[a] = ng < k.np[a] - 1 ? ng : k.np[a] - 1;
        if (k.khi[a] >= 1) list[nq++] = a;
    }
    for (int32_t q = 0; q < nq; q++) kq2[list[q]] = 0;
    if ((st = prefix_search(p, &k, list, nq, k.dir, q2)) < 0) goto out;
    /* The fewest values of S, Q and the final point replace S. */
    for (int32_t a = 0; a < m; a++) {
        if (kq2[a] == 0) kq2[a] = k.klo[a] < 0 ? -1 : k.khi[a];
        int32_t best = p->ok[a] ? k.np[a] : 0;
        const float *from = NULL;
        if (kq1[a] >= 1 && kq1[a] < best) {
            best = kq1[a];
            from = k.q1 + (size_t)a * d;
        }
        if (kq2[a] >= 1 && kq2[a] < best) from = q2 + (size_t)a * d;
        if (!from) continue;
        memcpy(p->xa + (size_t)a * d, from, d * sizeof(float));
        foolc__run_offer(run, run->todo[a], p->xa + (size_t)a * d);
    }
out:
    foolc__free(k.dir);
    foolc__free(k.lg);
    foolc__free(k.q1);
    foolc__free(k.chunk);
    foolc__free(k.want);
    foolc__free(k.r);
    foolc__free(k.tl);
    foolc__free(k.klo);
    return st;
}

static foolc_status pointwise_run(foolc__run *run, const void *config)
{
    const pointwise_config *c = config;
    int32_t m = run->n_todo;
    size_t d = run->d, md = foolc__mul((size_t)m, d);
    pw p = {run, c, m, d, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    p.xa = foolc__malloc(foolc__mul(md, sizeof(float)));
    p.cand = foolc__malloc(foolc__mul(md, sizeof(float)));
    p.list = foolc__malloc(foolc__mul(md, sizeof(int32_t)));
    p.act = foolc__malloc((size_t)m * 2 * sizeof(int32_t));
    p.s = foolc__malloc((size_t)m * sizeof *p.s);
    p.ok = foolc__malloc((size_t)m * 2);
    foolc_status st = FOOLC_OK;
    if (!p.xa || !p.cand || !p.list || !p.act || !p.s || !p.ok) {
        st = foolc__nomem("pointwise");
        goto out;
    }
    p.sid = p.act + m;
    p.adv = p.ok + m;
    if ((st = foolc__run_subattack(run, "salt-and-pepper", run->todo, m, p.xa, p.ok)) < 0)
        goto out;
    for (int32_t a = 0; a < m; a++) {
        foolc__rng_for(&p.s[a].rng, run, run->todo[a], FOOLC__STREAM_POINTWISE);
        if (p.ok[a]) foolc__run_offer(run, run->todo[a], p.xa + (size_t)a * d);
    }
    if (c->rank) {
        if ((st = passes(&p, 0)) < 0 || (st = rank(&p)) < 0) goto out;
    }
    st = passes(&p, 1);
out:
    foolc__free(p.xa);
    foolc__free(p.cand);
    foolc__free(p.list);
    foolc__free(p.act);
    foolc__free(p.s);
    foolc__free(p.ok);
    return st;
}

FOOLC__ATTACK(pointwise, "pointwise", FOOLC_L0, FOOLC_NEEDS_DECISION, pointwise_params,
              pointwise_config, pointwise_run, NULL,
              "Pointwise: resets perturbed values while adversarial, then refines them (L0)");
