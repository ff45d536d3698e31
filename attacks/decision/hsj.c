/* HopSkipJump (Chen, Jordan, Wainwright, arXiv:1904.02144) in L2 and Linf, for
 * hsj-l2 and hsj-linf (the registry entries at the end): boundary bisection, a gradient direction
 * estimated from the signs of random probes, and a geometric step search. Every phase is
 * batched over the samples still active, with per-sample thresholds and a per-sample cap on
 * every loop, so no sample can hold up the others. */
#include "decision.h"
#include "numeric.h"
#include "rng.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define CHUNK 256
/* Images per sample kept in reserve under max_queries for an iteration's step search and
 * bisection, when its gradient estimate is sized. */
#define HSJ_RESERVED 40
#define MAX_BISECT 64

/* The parameters (the registry table at the end). */
typedef struct hsj_config {
    double steps, init_evals, max_evals, gamma, max_queries, init, init_directions, init_steps,
        init_draws, max_halvings, refine;
} hsj_config;

typedef struct hsj {
    foolc__run *run;
    const hsj_config *c;
    int linf;
    int32_t m;
    size_t d;
    float *xadv, *upd, *chunk;     /* m*d, m*d, CHUNK*d */
    float *v;                      /* m*d offsets from the input, before the box (see project) */
    float *keep;                   /* 4*m*d: the refinement's start and best (xadv, v) */
    int virt;                      /* step_search keeps v outside the box (the refinement) */
    double *s1, *s0;               /* m*d sums of sign * probe and of probes */
    double *dist, *lo, *hi, *thr, *eps, *delta;
    int32_t *act, *sid, *pos, *evals, *npos, *left, *coord;
    uint8_t *adv, *alive;
    foolc__rng *rng;
} hsj;

static double distance(const hsj *h, const float *x0, const float *x)
{
    double r = 0;
    for (size_t j = 0; j < h->d; j++) {
        double v = fabs((double)x[j] - x0[j]);
        if (h->linf) r = v > r ? v : r;
        else r += v * v;
    }
    return h->linf ? r : sqrt(r);
}

/* Row a's point at t on the way from x0 to its xadv: the blend (L2) or xadv clipped to the
 * Linf ball of radius t around x0 (Linf); in the refinement (virt), x0 + t v clipped to the
 * box, v the offset kept outside it. */
/* Its forms, element-wise (the same bits in every clone); the refinement's is
 * foolc__dec_add_clip. */
FOOLC__VEC
static void point_linf(const float *restrict x0, const float *restrict x, double t,
                       float *restrict out, size_t d)
{
#define LINF_AT(j)                                                                             \
    do {                                                                                       \
        double y_ = x[j], b0_ = x0[j] - t, b1_ = x0[j] + t;                                    \
        out[j] = (float)(y_ < b0_ ? b0_ : y_ > b1_ ? b1_ : y_);                                \
    } while (0)
    FOOLC__BLOCKED(d, LINF_AT);
#undef LINF_AT
}

FOOLC__VEC
static void point_l2(const float *restrict x0, const float *restrict x, double t,
                     float *restrict out, size_t d)
{
#define L2_AT(j) out[j] = (float)((1.0 - t) * x0[j] + t * x[j])
    FOOLC__BLOCKED(d, L2_AT);
#undef L2_AT
}

static void project(const hsj *h, const float *x0, int32_t a, double t, float *out)
{
    const float *x = h->xadv + (size_t)a * h->d, *v = h->v + (size_t)a * h->d;
    if (h->virt) foolc__dec_add_clip(x0, v, t, h->run->lo, h->run->hi, out, h->d);
    else if (h->linf) point_linf(x0, x, t, out, h->d);
    else point_l2(x0, x, t, out, h->d);
}

static void hsj_point(void *ctx, const foolc__run *run, int32_t a, double t, float *out)
{
    const hsj *h = ctx;
    project(h, run->x + (size_t)run->todo[a] * h->d, a, t, out);
}

static int may(const hsj *h, int32_t a, uint64_t cost)
{
    return foolc__run_may(h->run, h->run->todo[a], h->c->max_queries, cost);
}

/* Bisects each listed sample's xadv towards its clean input, keeping the adversarial side,
 * to the per-sample threshold; offers the result. */
static foolc_status bisect(hsj *h, const int32_t *list, int32_t n)
{
    foolc__run *run = h->run;
    size_t d = h->d;
    double dd = (double)d;
    double *hi0 = h->eps;
    for (int32_t q = 0; q < n; q++) {
        int32_t a = list[q];
        const float *x0 = run->x + (size_t)run->todo[a] * d;
        h->lo[a] = 0;
        h->hi[a] = h->linf ? distance(h, x0, h->xadv + (size_t)a * d) : 1;
        h->thr[a] = h->linf ? h->hi[a] * h->c->gamma / (dd * dd) : h->c->gamma / (dd * sqrt(dd));
        hi0[a] = h->hi[a];
    }
    foolc__bracket_opts o = {.path = hsj_point, .path_ctx = h, .steps = MAX_BISECT,
                             .width = h->thr, .max_q = h->c->max_queries, .chunk = CHUNK};
    foolc_status st = foolc__run_bracket(run, run->todo, list, n, h->lo, h->hi, NULL, NULL, &o);
    for (int32_t q = 0; q < n; q++) {
        int32_t a = list[q], i = run->todo[a];
        const float *x0 = run->x + (size_t)i * d;
        float *xa = h->xadv + (size_t)a * d;
        if (h->hi[a] < hi0[a]) {
            project(h, x0, a, h->hi[a], h->chunk);
            memcpy(xa, h->chunk, d * sizeof(float));
            if (h->virt)
                for (size_t j = 0; j < d; j++) h->v[(size_t)a * d + j] *= (float)h->hi[a];
        }
        h->dist[a] = distance(h, x0, xa);
        foolc__run_offer(run, i, xa);
    }
    return st;
}

/* sum of v_j^2 over FOOLC__BLOCK lanes in double (added in lane order): the same bits in
 * every clone. */
FOOLC__VEC
static double sum_sq(const float *restrict v, size_t d)
{
    double l[FOOLC__BLOCK] = {0}, t = 0;
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t b = 0; b < FOOLC__BLOCK; b++) l[b] += (double)v[j + b] * v[j + b];
    for (; j < d; j++) t += (double)v[j] * v[j];
    for (size_t b = 0; b < FOOLC__BLOCK; b++) t += l[b];
    return t;
}

/* p = clip(xa + f p) in place. Element-wise: the same bits in every clone. */
FOOLC__VEC
static void probe_at(const float *restrict xa, float *restrict p, double f, float lo, float hi,
                     size_t d)
{
#define PROBE_AT(j)                                                                            \
    do {                                                                                       \
        double v_ = xa[j] + f * p[j];                                                          \
        p[j] = v_ < lo ? lo : v_ > hi ? hi : (float)v_;                                        \
    } while (0)
    FOOLC__BLOCKED(d, PROBE_AT);
#undef PROBE_AT
}

/* s1 += sg u, s0 += u with u = (p - xa) inv, per coordinate. */
FOOLC__VEC
static void probe_sums(const float *restrict p, const float *restrict xa, double inv, double sg,
                       double *restrict s1, double *restrict s0, size_t d)
{
#define SUMS_AT(j)                                                                             \
    do {                                                                                       \
        double u_ = ((double)p[j] - xa[j]) * inv;                                              \
        s1[j] += sg * u_;                                                                      \
        s0[j] += u_;                                                                           \
    } while (0)
    FOOLC__BLOCKED(d, SUMS_AT);
#undef SUMS_AT
}

/* p = clip((x0 + v) + eps u) and p = clip(xa + eps u): the step search's candidates. */
FOOLC__VEC
static void step_virt(const float *restrict x0, const float *restrict v, const float *restrict u,
                      double eps, float lo, float hi, float *restrict p, size_t d)
{
#define SV_AT(j)                                                                               \
    do {                                                                                       \
        double y_ = (x0[j] + v[j]) + eps * u[j];                                               \
        p[j] = y_ < lo ? lo : y_ > hi ? hi : (float)y_;                                        \
    } while (0)
    FOOLC__BLOCKED(d, SV_AT);
#undef SV_AT
}

FOOLC__VEC
static void probe_step(const float *restrict xa, const float *restrict u, double eps, float lo,
                       float hi, float *restrict p, size_t d)
{
#define PS_AT(j)                                                                               \
    do {                                                                                       \
        double y_ = xa[j] + eps * u[j];                                                        \
        p[j] = y_ < lo ? lo : y_ > hi ? hi : (float)y_;                                        \
    } while (0)
    FOOLC__BLOCKED(d, PS_AT);
#undef PS_AT
}

/* Sign-probe estimate of the boundary normal at xadv for the listed samples, batched in
 * chunks across samples; leaves the unit direction in upd. */
static foolc_status estimate(hsj *h, const int32_t *list, int32_t n)
{
    foolc__run *run = h->run;
    size_t d = h->d;
    float lo = run->lo, hi = run->hi;
    for (int32_t q = 0; q < n; q++) {
        int32_t a = list[q];
        memset(h->s1 + (size_t)a * d, 0, d * sizeof(double));
        memset(h->s0 + (size_t)a * d, 0, d * sizeof(double));
        h->npos[a] = 0;
    }
    int32_t q = 0, e = 0;
    while (q < n) {
        int32_t nc = 0;
        /* Fill one chunk with the next probes, sample by sample. */
        while (nc < CHUNK && q < n) {
            int32_t a = list[q];
            if (e >= h->evals[a]) {
                q++;
                e = 0;
                continue;
            }
            float *p = h->chunk + (size_t)nc * d;
            const float *xa = h->xadv + (size_t)a * d;
            double nr = 0;
            if (h->linf) {
                for (size_t j = 0; j < d; j++)
                    p[j] = (float)(2.0 * foolc__rng_uniform(&h->rng[a]) - 1.0);
                for (size_t j = 0; j < d; j++) nr += (double)p[j] * p[j];
            } else {
                /* Vectorised Gaussian draws and a lane sum (foolc__rng_fill_normal). */
                foolc__rng_fill_normal(&h->rng[a], p, d);
                nr = sum_sq(p, d);
            }
            probe_at(xa, p, h->delta[a] / (sqrt(nr) + 1e-12), lo, hi, d);
            h->sid[nc] = run->todo[a];
            h->pos[nc] = a;
            nc++;
            e++;
        }
        if (nc == 0) break;
        FOOLC__CHECK(foolc__run_is_adv(run, h->chunk, h->sid, nc, h->adv, NULL));
        for (int32_t r = 0; r < nc; r++) {
            int32_t a = h->pos[r];
            const float *p = h->chunk + (size_t)r * d, *xa = h->xadv + (size_t)a * d;
            double *s1 = h->s1 + (size_t)a * d, *s0 = h->s0 + (size_t)a * d;
            double sg = h->adv[r] ? 1.0 : -1.0, inv = 1.0 / (h->delta[a] + 1e-8);
            h->npos[a] += h->adv[r];
            probe_sums(p, xa, inv, sg, s1, s0, d);
        }
    }
    for (int32_t r = 0; r < n; r++) {
        int32_t a = list[r];
        double ne = h->evals[a], mean = (2.0 * h->npos[a] - ne) / ne;
        const double *s1 = h->s1 + (size_t)a * d, *s0 = h->s0 + (size_t)a * d;
        double *g = h->s1 + (size_t)a * d, nr = 0;
        int base = fabs(mean) < 1.0;   /* subtract the mean sign as a baseline */
        for (size_t j = 0; j < d; j++) {
            g[j] = (s1[j] - (base ? mean * s0[j] : 0.0)) / ne;
            nr += g[j] * g[j];
        }
        nr = sqrt(nr) + 1e-12;
        float *u = h->upd + (size_t)a * d;
        for (size_t j = 0; j < d; j++)
            u[j] = h->linf ? (float)(g[j] > 0 ? 1 : g[j] < 0 ? -1 : 0) : (float)(g[j] / nr);
    }
    return FOOLC_OK;
}

/* Geometric step search: per sample, halve eps until xadv + eps * upd is adversarial (at
 * most max_halvings times; a sample that never succeeds keeps its point). */
static foolc_status step_search(hsj *h, const int32_t *list, int32_t n)
{
    foolc__run *run = h->run;
    size_t d = h->d;
    int32_t na = 0;
    for (int32_t q = 0; q < n; q++) {
        h->left[list[q]] = (int32_t)h->c->max_halvings + 1;
        h->act[na++] = list[q];
    }
    while (na > 0) {
        int32_t nb = 0;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = h->act[q];
            if (h->left[a] > 0 && may(h, a, 1)) h->act[nb++] = a;
        }
        if ((na = nb) == 0) break;
        int32_t keep = 0;
        for (int32_t q0 = 0; q0 < na; q0 += CHUNK) {
            int32_t nc = na - q0 < CHUNK ? na - q0 : CHUNK;
            for (int32_t q = 0; q < nc; q++) {
                int32_t a = h->act[q0 + q];
                const float *x0 = run->x + (size_t)run->todo[a] * d;
                const float *xa = h->xadv + (size_t)a * d, *v = h->v + (size_t)a * d;
                const float *u = h->upd + (size_t)a * d;
                float *p = h->chunk + (size_t)q * d;
                if (h->virt) step_virt(x0, v, u, h->eps[a], run->lo, run->hi, p, d);
                else probe_step(xa, u, h->eps[a], run->lo, run->hi, p, d);
                h->sid[q] = run->todo[a];
            }
            FOOLC__CHECK(foolc__run_is_adv(run, h->chunk, h->sid, nc, h->adv, NULL));
            for (int32_t q = 0; q < nc; q++) {
                int32_t a = h->act[q0 + q];
                if (h->adv[q]) {
                    float *v = h->v + (size_t)a * d;
                    const float *u = h->upd + (size_t)a * d;
                    if (h->virt)
                        for (size_t j = 0; j < d; j++) v[j] = (float)(v[j] + h->eps[a] * u[j]);
                    memcpy(h->xadv + (size_t)a * d, h->chunk + (size_t)q * d,
                           d * sizeof(float));
                    foolc__run_offer(run, run->todo[a], h->xadv + (size_t)a * d);
                } else {
                    h->eps[a] *= 0.5;
                    if (--h->left[a] > 0) h->act[keep++] = a;
                }
            }
        }
        na = keep;
    }
    return FOOLC_OK;
}

/* The final refinement's line searches: bisection steps per coordinate, the compensation's
 * range over its rough estimate; the steps along the refined normal tried (times the
 * distance; each from the same point, followed by a bisection, the closest result kept: the
 * longest is best on a flat boundary, the shorter ones on a curved one). */
#define REFINE_BITS 8
#define REFINE_RANGE 4.0
static const double k_refine_steps[] = {4.0, 1.0, 0.25};

/* The point (1 - c) x_b + c x0 with coordinate j moved by dj (clipped to the box) into p;
 * returns the move of coordinate j after clipping. */
static double refine_point(const hsj *h, const float *x0, const float *xb, double c, size_t j,
                           double dj, float *p)
{
    double lo = h->run->lo, hi = h->run->hi;
    for (size_t k = 0; k < h->d; k++) p[k] = (float)(xb[k] + c * ((double)x0[k] - xb[k]));
    double b = p[j], y = b + dj;
    p[j] = (float)(y < lo ? lo : y > hi ? hi : y);
    return (double)p[j] - b;
}

/* Line-search estimate of the boundary normal at each listed sample's point x_b (the `refine`
 * rounds after the iterations), far more exact per query than the sign probes: coordinate j
 * moves by s = |x_b - x0|_2 / sqrt(d) to the side with more room in the box (the other side
 * when that one leaves the adversarial region), and a bisection of REFINE_BITS steps finds
 * the compensation c towards the clean input, (1 - c) x_b + c x0 + s e_j on the boundary. On
 * a locally flat boundary every move's effect a_j s equals c times the common effect of the
 * segment towards x0, so a_j is proportional to c / s. A coordinate that can only move
 * towards the clean side (at a face of the box, the normal pointing out of it) gets the
 * outward sign and a unit component. Leaves the direction in upd (unit over the measured
 * coordinates in L2, the signs in Linf); uses s1 and s0 as scratch. */
static foolc_status refine_normal(hsj *h, const int32_t *list, int32_t n)
{
    foolc__run *run = h->run;
    size_t d = h->d;
    double sq = sqrt((double)d);
    /* Per sample: the move s (in eps) and the compensation's range (in thr), from the
     * last sign-probe estimate still in s1. */
    for (int32_t q = 0; q < n; q++) {
        int32_t a = list[q];
        const float *x0 = run->x + (size_t)run->todo[a] * d, *xb = h->xadv + (size_t)a * d;
        const double *g = h->s1 + (size_t)a * d;
        double r = 0, nr = 0, gm = 0;
        for (size_t j = 0; j < d; j++) {
            double e = (double)xb[j] - x0[j];
            r += e * e;
            nr += g[j] * g[j];
            gm = fabs(g[j]) > gm ? fabs(g[j]) : gm;
        }
        h->eps[a] = sqrt(r) / sq;
        h->thr[a] = nr > 0 ? fmin(1.0, REFINE_RANGE * gm / sqrt(nr) / sq) : 1.0;
    }
    /* Phase 0: the side of each coordinate (its move into s0, 0 when it has none, the
     * outward sign then in s1); phases 1..REFINE_BITS: the bisection of c (its lower end
     * in s1, the bracket's width thr / 2^(phase - 1) shared by the sample's coordinates). */
    for (int phase = 0; phase <= REFINE_BITS; phase++) {
        int32_t q = 0;
        size_t j = 0;
        while (q < n) {
            int32_t nc = 0;
            while (nc < CHUNK && q < n) {
                int32_t a = list[q];
                if (j >= d) {
                    q++;
                    j = 0;
                    continue;
                }
                const float *x0 = run->x + (size_t)run->todo[a] * d;
                const float *xb = h->xadv + (size_t)a * d;
                float *p = h->chunk + (size_t)nc * d;
                double *dj = h->s0 + (size_t)a * d + j, *lo = h->s1 + (size_t)a * d + j;
                if (phase == 0) {
                    double up = run->hi - (double)xb[j], dn = (double)xb[j] - run->lo;
                    *dj = up >= dn ? fmin(h->eps[a], up) : -fmin(h->eps[a], dn);
                    refine_point(h, x0, xb, 0, j, *dj, p);
                } else {
                    if (*dj == 0) {
                        j++;
                        continue;
                    }
                    if (phase == 1) *lo = 0;
                    double w = ldexp(h->thr[a], -(phase - 1));
                    refine_point(h, x0, xb, *lo + 0.5 * w, j, *dj, p);
                }
                h->sid[nc] = run->todo[a];
                h->pos[nc] = a;
                h->coord[nc] = (int32_t)j;
                nc++;
                j++;
            }
            if (nc == 0) break;
            FOOLC__CHECK(foolc__run_is_adv(run, h->chunk, h->sid, nc, h->adv, NULL));
            for (int32_t r = 0; r < nc; r++) {
                int32_t a = h->pos[r];
                size_t k = (size_t)h->coord[r];
                const float *xb = h->xadv + (size_t)a * d;
                double *dj = h->s0 + (size_t)a * d + k, *lo = h->s1 + (size_t)a * d + k;
                if (phase == 0) {
                    if (h->adv[r]) continue;
                    /* The other side, or none (then the outward sign). */
                    double up = run->hi - (double)xb[k], dn = (double)xb[k] - run->lo;
                    double o = *dj > 0 ? -fmin(h->eps[a], dn) : fmin(h->eps[a], up);
                    if (fabs(o) > 1e-3 * h->eps[a]) {
                        *dj = o;
                    } else {
                        *lo = *dj > 0 ? -1.0 : 1.0;
                        *dj = 0;
                    }
                } else if (h->adv[r]) {
                    *lo += 0.5 * ldexp(h->thr[a], -(phase - 1));
                }
            }
        }
    }
    /* The normal: c / (the move after clipping) per measured coordinate. */
    for (int32_t q = 0; q < n; q++) {
        int32_t a = list[q];
        const float *x0 = run->x + (size_t)run->todo[a] * d, *xb = h->xadv + (size_t)a * d;
        double *g = h->s1 + (size_t)a * d, *dj = h->s0 + (size_t)a * d, nr = 0;
        double w = ldexp(h->thr[a], -REFINE_BITS);
        float *u = h->upd + (size_t)a * d;
        for (size_t j = 0; j < d; j++) {
            if (dj[j] == 0) continue;
            double c = g[j] + 0.5 * w, y = (double)xb[j] + c * ((double)x0[j] - xb[j]);
            double z = y + dj[j];
            z = z < run->lo ? run->lo : z > run->hi ? run->hi : z;
            double mv = (double)(float)z - (double)(float)y;
            g[j] = mv != 0 ? c / mv : 0;
            nr += g[j] * g[j];
        }
        nr = sqrt(nr) + 1e-300;
        for (size_t j = 0; j < d; j++) {
            if (dj[j] == 0) u[j] = (float)g[j];
            else if (h->linf) u[j] = (float)(g[j] > 0 ? 1 : g[j] < 0 ? -1 : 0);
            else u[j] = (float)(g[j] / nr);
        }
    }
    return FOOLC_OK;
}

static foolc_status hsj_run(foolc__run *run, const void *config)
{
    const hsj_config *c = config;
    int linf = run->norm == FOOLC_LINF;
    int32_t m = run->n_todo;
    size_t d = run->d, md = foolc__mul((size_t)m, d);
    hsj h = {0};
    h.run = run;
    h.c = c;
    h.linf = linf;
    h.m = m;
    h.d = d;
    size_t nint = (size_t)m * 6 + CHUNK * 3;
    h.xadv = foolc__malloc(foolc__mul(md, sizeof(float)));
    h.upd = foolc__malloc(foolc__mul(md, sizeof(float)));
    h.v = foolc__malloc(foolc__mul(md, sizeof(float)));
    h.chunk = foolc__malloc(foolc__mul(foolc__mul(CHUNK, d), sizeof(float)));
    h.s1 = foolc__malloc(foolc__mul(2 * md, sizeof(double)));
    h.dist = foolc__malloc((size_t)m * 7 * sizeof(double));
    h.keep = c->refine > 0 ? foolc__malloc(foolc__mul(4 * md, sizeof(float))) : NULL;
    h.act = foolc__malloc((nint + (size_t)m) * sizeof(int32_t));
    h.adv = foolc__malloc((size_t)m * 2 + CHUNK);
    h.rng = foolc__malloc((size_t)m * sizeof *h.rng);
    foolc_status st = FOOLC_OK;
    if ((c->refine > 0 && !h.keep) || !h.xadv || !h.upd || !h.v || !h.chunk || !h.s1 || !h.dist || !h.act || !h.adv || !h.rng) {
        st = foolc__nomem("hopskipjump");
        goto out;
    }
    h.s0 = h.s1 + md;
    h.lo = h.dist + m;
    h.hi = h.lo + m;
    h.thr = h.hi + m;
    h.eps = h.thr + m;
    h.delta = h.eps + m;
    /* act: m, sid: CHUNK, pos: max(m, CHUNK), evals, npos, left: m each; list: m. */
    h.sid = h.act + m;
    h.pos = h.sid + CHUNK;
    h.evals = h.pos + (m > CHUNK ? m : CHUNK);
    h.npos = h.evals + m;
    h.left = h.npos + m;
    memset(h.evals, 0, (size_t)m * sizeof(int32_t));
    int32_t *list = h.left + m;
    h.coord = list + m;
    h.alive = h.adv + CHUNK;
    uint8_t *ok = h.alive + m;

    st = foolc__dec_start(run, run->todo, m, (foolc__start)(int)c->init,
                          (int32_t)c->init_directions,
                          (int32_t)c->init_steps, (int32_t)c->init_draws, c->max_queries,
                          h.xadv, ok);
    if (st < 0) goto out;
    int32_t n = 0;
    for (int32_t a = 0; a < m; a++) {
        foolc__rng_for(&h.rng[a], run, run->todo[a], FOOLC__STREAM_HSJ);
        h.alive[a] = ok[a];
        if (ok[a]) list[n++] = a;
    }
    if ((st = bisect(&h, list, n)) < 0) goto out;
    double dd = (double)d, w = (double)run->hi - run->lo;
    for (int32_t t = 0; t < (int32_t)c->steps; t++) {
        /* Who goes on this iteration, and with how many probes (within its budget, keeping
         * room for the step search and the bisection). */
        n = 0;
        for (int32_t a = 0; a < m; a++) {
            if (!h.alive[a]) continue;
            double ev = fmin(c->init_evals * sqrt(t + 1.0), c->max_evals);
            if (c->max_queries > 0) {
                double room = c->max_queries - (double)foolc__run_used(run, run->todo[a]) -
                              HSJ_RESERVED;
                ev = fmin(ev, room);
                if (ev < 1 || ev < fmin(c->init_evals, 20)) {
                    h.alive[a] = 0;
                    continue;
                }
            }
            h.evals[a] = (int32_t)ev;
            h.delta[a] = t == 0 ? 0.1 * w : c->gamma / dd * h.dist[a];
            if (!(h.delta[a] > 0)) {
                h.alive[a] = 0;
                continue;
            }
            list[n++] = a;
        }
        if (n == 0) break;
        if ((st = estimate(&h, list, n)) < 0) goto out;
        for (int32_t q = 0; q < n; q++) h.eps[list[q]] = h.dist[list[q]] / sqrt(t + 1.0);
        if ((st = step_search(&h, list, n)) < 0) goto out;
        if ((st = bisect(&h, list, n)) < 0) goto out;
        if ((st = foolc__run_progress(run, t + 1, (int64_t)c->steps)) < 0) goto out;
    }
    /* The refinement: line-search normals, each followed by a long step and a bisection,
     * for the samples that had an estimate and whose budget allows it. */
    for (int32_t r = 0; r < (int32_t)c->refine; r++) {
        n = 0;
        for (int32_t a = 0; a < m; a++) {
            if (!ok[a] || h.evals[a] == 0 || !(h.dist[a] > 0)) continue;
            if (c->max_queries > 0 &&
                c->max_queries - (double)foolc__run_used(run, run->todo[a]) <
                    (REFINE_BITS + 1.0) * dd + HSJ_RESERVED)
                continue;
            list[n++] = a;
        }
        if (n == 0) break;
        if ((st = refine_normal(&h, list, n)) < 0) goto out;
        /* In L2 the offset goes on outside the box: a coordinate at a face whose normal points
         * out of it stays there when the bisection scales the offset, as at the minimum of a
         * flat boundary, where the offset is min(lambda a_j, room_j) per coordinate. */
        h.virt = !linf;
        for (int32_t q = 0; q < n; q++) {
            int32_t a = list[q];
            const float *x0 = run->x + (size_t)run->todo[a] * d, *xa = h.xadv + (size_t)a * d;
            for (size_t j = 0; j < d; j++) h.v[(size_t)a * d + j] = xa[j] - x0[j];
        }
        float *sx = h.keep, *sv = sx + md, *bx = sv + md, *bv = bx + md;
        double *sd = h.delta, *bd = h.lo + 5 * (size_t)m;   /* delta is free; bd: see below */
        for (int32_t q = 0; q < n; q++) {
            size_t o = (size_t)list[q] * d;
            memcpy(sx + o, h.xadv + o, d * sizeof(float));
            memcpy(sv + o, h.v + o, d * sizeof(float));
            memcpy(bx + o, h.xadv + o, d * sizeof(float));
            memcpy(bv + o, h.v + o, d * sizeof(float));
            sd[list[q]] = bd[list[q]] = h.dist[list[q]];
        }
        for (size_t f = 0; f < sizeof k_refine_steps / sizeof *k_refine_steps; f++) {
            for (int32_t q = 0; q < n; q++) {
                int32_t a = list[q];
                size_t o = (size_t)a * d;
                memcpy(h.xadv + o, sx + o, d * sizeof(float));
                memcpy(h.v + o, sv + o, d * sizeof(float));
                h.eps[a] = k_refine_steps[f] * sd[a];
            }
            if ((st = step_search(&h, list, n)) < 0) goto out;
            if ((st = bisect(&h, list, n)) < 0) goto out;
            for (int32_t q = 0; q < n; q++) {
                int32_t a = list[q];
                size_t o = (size_t)a * d;
                if (!(h.dist[a] < bd[a])) continue;
                bd[a] = h.dist[a];
                memcpy(bx + o, h.xadv + o, d * sizeof(float));
                memcpy(bv + o, h.v + o, d * sizeof(float));
            }
        }
        for (int32_t q = 0; q < n; q++) {
            int32_t a = list[q];
            size_t o = (size_t)a * d;
            memcpy(h.xadv + o, bx + o, d * sizeof(float));
            memcpy(h.v + o, bv + o, d * sizeof(float));
            h.dist[a] = bd[a];
        }
    }
out:
    foolc__free(h.xadv);
    foolc__free(h.upd);
    foolc__free(h.v);
    foolc__free(h.keep);
    foolc__free(h.chunk);
    foolc__free(h.s1);
    foolc__free(h.dist);
    foolc__free(h.act);
    foolc__free(h.adv);
    foolc__free(h.rng);
    return st;
}

/* ---- registry entries ---- */

static const foolc__param hsj_params[] = {
    FOOLC__PARAM(hsj_config, steps, 64, 1, 100, 1,
                 "iterations (gradient estimate, step, bisection) per sample"),
    FOOLC__PARAM(hsj_config, init_evals, 100, 1, 200, 1,
                 "probes of the first gradient estimate; iteration t uses init_evals * sqrt(t + "
                 "1)"),
    FOOLC__PARAM(hsj_config, max_evals, 10000, 1, 100000, 1,
                 "probes of one gradient estimate at most"),
    FOOLC__PARAM(hsj_config, gamma, 1, 1e-3, 1000, 0,
                 "bisection threshold and probe radius factor (theta = gamma / d^1.5 in L2, gamma "
                 "/ d^2 in Linf)"),
    FOOLC__PARAM(hsj_config, max_queries, 0, 0, 1e12, 1,
                 "model images per sample at most, starting point included; 0 means no limit"),
    FOOLC__PARAM(hsj_config, init, 0, 0, 2, 1,
                 "starting point [noise|pool|attack]: 0 blended uniform noise, 1 the closest "
                 "adversarial pool image (foolc_attack_set_starts; the batch itself without one), "
                 "2 the attack set by foolc_attack_set_init (default blended-noise)"),
    FOOLC__PARAM(hsj_config, init_directions, 1000, 1, 100000, 1,
                 "uniform-noise draws (init 0) or closest pool images (init 1) per sample"),
    FOOLC__PARAM(hsj_config, init_steps, 10, 1, 10000, 1,
                 "linear-scan steps of the blended-noise starting point"),
    FOOLC__PARAM(hsj_config, init_draws, 4, 1, 100, 1,
                 "noise images blended per sample (init 0); the closest start is kept"),
    FOOLC__PARAM(hsj_config, max_halvings, 30, 1, 60, 1,
                 "halvings of the geometric step search per sample before the step is skipped"),
    FOOLC__PARAM(hsj_config, refine, 1, 0, 10, 1,
                 "final rounds of line-search normal estimates (about 9 d images each), each "
                 "followed by a step and a bisection, when the budget allows (0: none)"),
};

FOOLC__ATTACK(hsj_l2, "hsj-l2", FOOLC_L2, FOOLC_NEEDS_DECISION, hsj_params, hsj_config,
              hsj_run, NULL,
              "HopSkipJump: boundary search with sign-probe gradient estimates (L2)");
FOOLC__ATTACK(hsj_linf, "hsj-linf", FOOLC_LINF, FOOLC_NEEDS_DECISION, hsj_params, hsj_config,
              hsj_run, NULL,
              "HopSkipJump: boundary search with sign-probe gradient estimates (Linf)");
