/* The Boundary attack (Brendel, Rauber, Bethge, arXiv:1712.04248), L2: from an adversarial
 * starting point, random orthogonal (spherical) steps and steps towards the clean input,
 * with per-sample step sizes adapted from each sample's own successes (a success-rate rule
 * by default, Foolbox's statistics schedule on request) and directions biased by a memory of
 * the successful ones. Every step is one batched query over the active samples. */
#include "arena.h"
#include "decision.h"
#include "numeric.h"
#include "rng.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct boundary_config {
    double steps, spherical_step, source_step, convergence, adaptation, stats_every,
        max_queries, init, init_directions, init_steps, init_draws, bisect_steps, schedule,
        target, rate, memory;
} boundary_config;

static const foolc__param boundary_params[] = {
    FOOLC__PARAM(boundary_config, steps, 25000, 1, 30000, 1,
                 "iterations per sample at most (each costs 1 query; 2 on statistics steps of "
                 "schedule 0)"),
    FOOLC__PARAM(boundary_config, spherical_step, 1e-2, 1e-6, 1, 0,
                 "initial size of the orthogonal step, relative to the distance"),
    FOOLC__PARAM(boundary_config, source_step, 1e-2, 1e-6, 1, 0,
                 "schedule 0: initial size of the step towards the clean input, relative to the "
                 "distance"),
    FOOLC__PARAM(boundary_config, convergence, 1e-7, 0, 0.1, 0,
                 "a sample stops when its source step falls below this"),
    FOOLC__PARAM(boundary_config, adaptation, 1.5, 1.01, 10, 0,
                 "schedule 0: factor by which step sizes grow or shrink from the success "
                 "statistics"),
    FOOLC__PARAM(boundary_config, stats_every, 10, 1, 1000, 1,
                 "schedule 0: steps between checks of the spherical candidate and step-size "
                 "updates"),
    FOOLC__PARAM(boundary_config, max_queries, 0, 0, 1e12, 1,
                 "model images per sample at most, starting point included; 0 means no limit"),
    FOOLC__PARAM(boundary_config, init, 0, 0, 2, 1,
                 "starting point [noise|pool|attack]: 0 blended uniform noise, 1 the closest "
                 "adversarial pool image (foolc_attack_set_starts; the batch itself without one), "
                 "2 the attack set by foolc_attack_set_init (default blended-noise)"),
    FOOLC__PARAM(boundary_config, init_directions, 1000, 1, 100000, 1,
                 "uniform-noise draws (init 0) or closest pool images (init 1) per sample"),
    FOOLC__PARAM(boundary_config, init_steps, 10, 1, 10000, 1,
                 "linear-scan steps of the blended-noise starting point"),
    FOOLC__PARAM(boundary_config, init_draws, 4, 1, 100, 1,
                 "noise images blended per sample (init 0); the closest start is kept"),
    FOOLC__PARAM(boundary_config, bisect_steps, 10, 0, 60, 1,
                 "final bisection steps towards the clean input"),
    FOOLC__PARAM(boundary_config, schedule, 1, 0, 1, 1,
                 "[statistics|rate] step sizes: 1 success-rate rule on every step (source step = "
                 "spherical step^2 / 2), 0 Foolbox's schedule from success statistics"),
    FOOLC__PARAM(boundary_config, target, 0.2, 0.01, 0.9, 0,
                 "schedule 1: success rate of the candidates the spherical step is adapted to"),
    FOOLC__PARAM(boundary_config, rate, 0.3, 0.01, 5, 0,
                 "schedule 1: the spherical step is multiplied by exp(rate * (success - target))"),
    FOOLC__PARAM(boundary_config, memory, 0.1, 0, 10, 0,
                 "weight of the memory of successful directions added to the unit random direction "
                 "(0: none)"),
};

/* Schedule 1: source step / spherical step^2 (see the success-rate rule below). */
#define SOURCE_RATIO 0.5
/* Decay of the direction memory per step (about the last 20 steps count). */
#define MEMORY_DECAY 0.95

#define SPH_LEN 100
#define STEP_LEN 30
#define EMPTY 0xFF

typedef struct bstate {
    foolc__rng rng;
    double sph, src;
    double dist;          /* |x0 - best| at the last proposal */
    int32_t steps, qs_next, qt_next;
    uint8_t qs[SPH_LEN], qt[STEP_LEN];   /* success history; EMPTY where unset */
} bstate;

/* Sums run over FOOLC__BLOCK lanes in double (one partial sum per lane, added in lane order
 * at the end): the same bits in every clone. */
#define LANES FOOLC__BLOCK

static double lane_total(const double *l)
{
    double t = 0;
    for (int b = 0; b < LANES; b++) t += l[b];
    return t;
}

/* |a - b|_2. */
FOOLC__VEC
static double l2(const float *restrict a, const float *restrict b, size_t d)
{
    double l[LANES] = {0}, t = 0;
    size_t j = 0;
    for (; j + LANES <= d; j += LANES)
        for (int k = 0; k < LANES; k++) {
            double v = (double)a[j + k] - b[j + k];
            l[k] += v * v;
        }
    for (; j < d; j++) {
        double v = (double)a[j] - b[j];
        t += v * v;
    }
    return sqrt(lane_total(l) + t);
}

/* With diff = x0 - best: out = (|diff|^2, eta . diff, g . diff). */
FOOLC__VEC
static void sums_diff(const float *restrict x0, const float *restrict best,
                      const float *restrict eta, const float *restrict g, size_t d, double *out)
{
    double l0[LANES] = {0}, l1[LANES] = {0}, l2s[LANES] = {0}, t0 = 0, t1 = 0, t2 = 0;
    size_t j = 0;
    for (; j + LANES <= d; j += LANES)
        for (int k = 0; k < LANES; k++) {
            double u = (double)x0[j + k] - best[j + k];
            l0[k] += u * u;
            l1[k] += eta[j + k] * u;
            l2s[k] += g[j + k] * u;
        }
    for (; j < d; j++) {
        double u = (double)x0[j] - best[j];
        t0 += u * u;
        t1 += eta[j] * u;
        t2 += g[j] * u;
    }
    out[0] = lane_total(l0) + t0;
    out[1] = lane_total(l1) + t1;
    out[2] = lane_total(l2s) + t2;
}

/* eta -= ce diff (the part orthogonal to diff, in place); with w = g - cg diff:
 * out = (|eta|^2, |w|^2, eta . w). */
FOOLC__VEC
static void orth(const float *restrict x0, const float *restrict best, float *restrict eta,
                 const float *restrict g, double ce, double cg, size_t d, double *out)
{
    double l0[LANES] = {0}, l1[LANES] = {0}, l2s[LANES] = {0}, t0 = 0, t1 = 0, t2 = 0;
    size_t j = 0;
    for (; j + LANES <= d; j += LANES)
        for (int k = 0; k < LANES; k++) {
            double u = (double)x0[j + k] - best[j + k];
            float v = (float)(eta[j + k] - ce * u);
            double w = g[j + k] - cg * u;
            eta[j + k] = v;
            l0[k] += (double)v * v;
            l1[k] += w * w;
            l2s[k] += v * w;
        }
    for (; j < d; j++) {
        double u = (double)x0[j] - best[j];
        float v = (float)(eta[j] - ce * u);
        double w = g[j] - cg * u;
        eta[j] = v;
        t0 += (double)v * v;
        t1 += w * w;
        t2 += v * w;
    }
    out[0] = lane_total(l0) + t0;
    out[1] = lane_total(l1) + t1;
    out[2] = lane_total(l2s) + t2;
}

/* The unit direction z = eta / en (into zout), the step direction z + gl (g - cg diff)
 * scaled by scale, and the spherical point sph = clip(x0 + (step - diff) / div); returns
 * |sph - x0|^2. */
FOOLC__VEC
static double spherical(const float *restrict x0, const float *restrict best,
                        const float *restrict eta, const float *restrict g, double inv_en,
                        double gl, double cg, double scale, double div, double lo, double hi,
                        float *restrict zout, float *restrict sph, size_t d)
{
    double l[LANES] = {0}, t = 0;
    size_t j = 0;
#define SPH_AT(j, acc)                                                                         \
    do {                                                                                       \
        double u_ = (double)x0[j] - best[j];                                                   \
        float z_ = (float)(eta[j] * inv_en);                                                   \
        double dir_ = z_ + gl * (g[j] - cg * u_);                                              \
        double v_ = x0[j] + (scale * dir_ - u_) / div;                                         \
        float o_ = (float)(v_ < lo ? lo : v_ > hi ? hi : v_);                                  \
        double e_ = (double)o_ - x0[j];                                                        \
        zout[j] = z_;                                                                          \
        sph[j] = o_;                                                                           \
        acc += e_ * e_;                                                                        \
    } while (0)
    for (; j + LANES <= d; j += LANES)
        for (int k = 0; k < LANES; k++) SPH_AT(j + k, l[k]);
    for (; j < d; j++) SPH_AT(j, t);
#undef SPH_AT
    return lane_total(l) + t;
}

/* cand = clip(sph + len (x0 - sph)). */
FOOLC__VEC
static void toward(const float *restrict x0, const float *restrict sph, double len, double lo,
                   double hi, float *restrict cand, size_t d)
{
#define TOWARD_AT(j)                                                                           \
    do {                                                                                       \
        double v_ = sph[j] + len * ((double)x0[j] - sph[j]);                                   \
        cand[j] = (float)(v_ < lo ? lo : v_ > hi ? hi : v_);                                   \
    } while (0)
    FOOLC__BLOCKED(d, TOWARD_AT);
#undef TOWARD_AT
}

/* ma = decay ma + w zq. */
FOOLC__VEC
static void memory_update(float *restrict ma, const float *restrict zq, double w, size_t d)
{
    size_t j = 0;
    for (; j + LANES <= d; j += LANES)
        for (int k = 0; k < LANES; k++)
            ma[j + k] = (float)(MEMORY_DECAY * ma[j + k] + w * zq[j + k]);
    for (; j < d; j++) ma[j] = (float)(MEMORY_DECAY * ma[j] + w * zq[j]);
}

/* Mean of a history, or -1 when it is not full. */
static double hist_mean(const uint8_t *q, int len)
{
    int s = 0;
    for (int j = 0; j < len; j++) {
        if (q[j] == EMPTY) return -1;
        s += q[j];
    }
    return (double)s / len;
}

/* The spherical candidate and the full candidate for one sample (Foolbox's proposal
 * scheme): an orthogonal step of relative size sph on the sphere around x0 along a random
 * unit direction z orthogonal to x0 - best (stored in zout), plus lam times the unit
 * orthogonal part of the memory g (when lam > 0 and g is not zero), then a step of relative
 * size src towards x0. eta is d floats of scratch. */
static void propose(const foolc__run *run, bstate *s, const float *x0, const float *best,
                    const float *g, double lam, float *eta, float *zout, float *sph_out,
                    float *cand)
{
    size_t d = run->d;
    double r3[3];
    foolc__rng_fill_normal(&s->rng, eta, d);
    /* Four passes: the sums against diff = x0 - best, the orthogonal parts of eta and g
     * with their norms and product, the spherical point (the norm of the combined
     * direction is 1 + 2 lam (z . w) + lam^2 for the unit z and w), the candidate. */
    sums_diff(x0, best, eta, g, d, r3);
    double n2 = r3[0], norm = sqrt(n2);
    double ce = n2 > 0 ? r3[1] / n2 : 0, cg = n2 > 0 ? r3[2] / n2 : 0;
    orth(x0, best, eta, g, ce, cg, d, r3);
    double en = sqrt(r3[0]), gn = sqrt(r3[1]);
    double inv_en = en > 0 ? 1.0 / en : 0, gl = 0, dn = 1;
    if (lam > 0 && gn > 0 && en > 0) {
        gl = lam / gn;
        double e2 = 1 + 2 * lam * r3[2] / (en * gn) + lam * lam;
        dn = e2 > 0 ? sqrt(e2) : 0;
    }
    s->dist = norm;
    double scale = en > 0 && dn > 0 ? s->sph * norm / dn : 0, div = sqrt(s->sph * s->sph + 1);
    double nn = sqrt(spherical(x0, best, eta, g, inv_en, gl, cg, scale, div, run->lo, run->hi,
                               zout, sph_out, d));
    double len = s->src * norm + nn - norm;
    len = len > 0 && nn > 0 ? len / nn : 0;
    toward(x0, sph_out, len, run->lo, run->hi, cand, d);
}

static void stats_update(bstate *s, const boundary_config *c)
{
    double p = hist_mean(s->qs, SPH_LEN);
    if (p > 0.5 || (p >= 0 && p < 0.2)) {
        double f = p > 0.5 ? c->adaptation : 1 / c->adaptation;
        s->sph *= f;
        s->src *= f;
        memset(s->qs, EMPTY, sizeof s->qs);
    }
    p = hist_mean(s->qt, STEP_LEN);
    if (p > 0.25 || (p >= 0 && p < 0.1)) {
        s->src *= p > 0.25 ? c->adaptation : 1 / c->adaptation;
        memset(s->qt, EMPTY, sizeof s->qt);
    }
}

/* One run's state: per sample (position a of todo) its best adversarial, step sizes and
 * direction memory; per step the candidates (and statistics checks) of the active samples. */
typedef struct bnd {
    foolc__run *run;
    const boundary_config *c;
    int rule;              /* the success-rate rule (schedule 1) */
    int32_t m, every;      /* samples; steps between statistics checks */
    float *best;           /* m*d */
    float *imgs;           /* 2*m*d: candidates, then the checks' spherical points */
    float *tmp;            /* 2*d scratch */
    float *mem;            /* m*d direction memory */
    float *zb;             /* m*d this step's directions */
    bstate *s;             /* m */
    int32_t *act, *chk, *sid;   /* m, m, 2m */
    uint8_t *ok, *adv;     /* m, 2m */
    foolc__arena arena;
} bnd;

static foolc_status bnd_alloc(bnd *b)
{
    size_t m = (size_t)b->m, md = foolc__mul(m, b->run->d);
    for (int pass = 0; pass < 2; pass++) {
        b->best = foolc__arena_take(&b->arena, md, sizeof(float));
        b->imgs = foolc__arena_take(&b->arena, foolc__mul(2, md), sizeof(float));
        b->tmp = foolc__arena_take(&b->arena, 2 * b->run->d, sizeof(float));
        b->mem = foolc__arena_take(&b->arena, md, sizeof(float));
        b->zb = foolc__arena_take(&b->arena, md, sizeof(float));
        b->s = foolc__arena_take(&b->arena, m, sizeof(bstate));
        b->act = foolc__arena_take(&b->arena, m, sizeof(int32_t));
        b->chk = foolc__arena_take(&b->arena, m, sizeof(int32_t));
        b->sid = foolc__arena_take(&b->arena, 2 * m, sizeof(int32_t));
        b->ok = foolc__arena_take(&b->arena, m, 1);
        b->adv = foolc__arena_take(&b->arena, 2 * m, 1);
        if (pass == 0) FOOLC__CHECK(foolc__arena_alloc(&b->arena, "boundary"));
    }
    memset(b->mem, 0, md * sizeof(float));
    return FOOLC_OK;
}

/* Starting points and each sample's state; returns the number of samples with a start
 * (listed in act) through *na. */
static foolc_status bnd_start(bnd *b, int32_t *na)
{
    foolc__run *run = b->run;
    const boundary_config *c = b->c;
    FOOLC__CHECK(foolc__dec_start(run, run->todo, b->m, (foolc__start)(int)c->init,
                                  (int32_t)c->init_directions, (int32_t)c->init_steps,
                                  (int32_t)c->init_draws, c->max_queries, b->best, b->ok));
    *na = 0;
    for (int32_t a = 0; a < b->m; a++) {
        bstate *s = &b->s[a];
        foolc__rng_for(&s->rng, run, run->todo[a], FOOLC__STREAM_BOUNDARY);
        s->sph = c->spherical_step;
        s->src = b->rule ? SOURCE_RATIO * c->spherical_step * c->spherical_step
                         : c->source_step;
        s->steps = 0;
        s->qs_next = s->qt_next = 0;
        memset(s->qs, EMPTY, sizeof s->qs);
        memset(s->qt, EMPTY, sizeof s->qt);
        if (b->ok[a]) b->act[(*na)++] = a;
    }
    return FOOLC_OK;
}

/* Who goes on: not converged, steps and budget left (keeping the final bisection's queries
 * in reserve). Returns the new count of act. */
static int32_t bnd_active(bnd *b, int32_t na)
{
    foolc__run *run = b->run;
    const boundary_config *c = b->c;
    uint64_t reserve = (uint64_t)c->bisect_steps + 1;
    int32_t nb = 0;
    for (int32_t q = 0; q < na; q++) {
        int32_t a = b->act[q];
        const bstate *s = &b->s[a];
        int check = !b->rule && (s->steps + 1) % b->every == 0;
        /* A sample at distance 0 (a start at the input itself, which a model whose answers
         * change between calls can call adversarial; every start and every improvement is
         * offered) has nothing left to gain and no direction to walk. */
        if (s->steps < (int32_t)c->steps && s->src >= c->convergence &&
            run->res->distance[run->todo[a]] > 0 &&
            foolc__run_may(run, run->todo[a], c->max_queries,
                           1u + (unsigned)check + (c->max_queries > 0 ? reserve : 0)))
            b->act[nb++] = a;
    }
    return nb;
}

/* One candidate per active sample (images 0..na) and, on statistics steps, the spherical
 * point to check (images na..na+nc); returns nc. */
static int32_t bnd_propose(bnd *b, int32_t na)
{
    foolc__run *run = b->run;
    size_t d = run->d;
    int32_t nc = 0;
    for (int32_t q = 0; q < na; q++) {
        int32_t a = b->act[q], i = run->todo[a];
        bstate *s = &b->s[a];
        s->steps++;
        int check = !b->rule && s->steps % b->every == 0;
        propose(run, s, run->x + (size_t)i * d, b->best + (size_t)a * d,
                b->mem + (size_t)a * d, b->c->memory, b->tmp, b->zb + (size_t)q * d,
                b->tmp + d, b->imgs + (size_t)q * d);
        b->sid[q] = i;
        if (check) {
            b->chk[nc] = q;
            memcpy(b->imgs + (size_t)(na + nc) * d, b->tmp + d, d * sizeof(float));
            b->sid[na + nc] = i;
            nc++;
        }
    }
    return nc;
}

/* After the verdicts: better candidates kept and offered, step sizes and direction memory
 * updated, statistics recorded. */
static void bnd_update(bnd *b, int32_t na, int32_t nc)
{
    foolc__run *run = b->run;
    const boundary_config *c = b->c;
    size_t d = run->d;
    for (int32_t q = 0; q < na; q++) {
        int32_t a = b->act[q], i = run->todo[a];
        const float *x0 = run->x + (size_t)i * d, *cq = b->imgs + (size_t)q * d;
        float *best = b->best + (size_t)a * d;
        bstate *s = &b->s[a];
        if (b->adv[q] && l2(x0, cq, d) < s->dist) {
            memcpy(best, cq, d * sizeof(float));
            foolc__run_offer(run, i, best);
        }
        /* Success-rate rule: for a locally flat boundary, progress per step is largest
         * when the source step is about half the square of the spherical step and about 1
         * candidate in 8 to 5 succeeds. */
        double w = (b->adv[q] ? 1.0 : 0.0) - c->target;
        if (b->rule) {
            s->sph = fmin(s->sph * exp(c->rate * w), 1.0);
            s->src = SOURCE_RATIO * s->sph * s->sph;
        }
        /* The memory: random directions weighted by success minus the target rate. */
        if (c->memory > 0) {
            memory_update(b->mem + (size_t)a * d, b->zb + (size_t)q * d, w, d);
        }
    }
    for (int32_t r = 0; r < nc; r++) {
        bstate *z = &b->s[b->act[b->chk[r]]];
        z->qs[z->qs_next] = b->adv[na + r];
        z->qs_next = (z->qs_next + 1) % SPH_LEN;
        z->qt[z->qt_next] = b->adv[b->chk[r]];
        z->qt_next = (z->qt_next + 1) % STEP_LEN;
        stats_update(z, c);
    }
}

/* A final bisection towards the clean inputs. */
static foolc_status bnd_finish(bnd *b)
{
    foolc__run *run = b->run;
    size_t d = run->d;
    int32_t na = 0;
    for (int32_t a = 0; a < b->m; a++)
        if (b->ok[a]) {
            if (na != a)
                memcpy(b->best + (size_t)na * d, b->best + (size_t)a * d, d * sizeof(float));
            b->act[na++] = run->todo[a];
        }
    return foolc__run_bisect(run, b->act, na, b->best, (int32_t)b->c->bisect_steps, NULL);
}

static foolc_status boundary_run(foolc__run *run, const void *config)
{
    const boundary_config *c = config;
    bnd b = {.run = run, .c = c, .rule = c->schedule > 0, .m = run->n_todo};
    /* The success-rate rule needs no spherical checks. */
    b.every = b.rule ? INT32_MAX : (int32_t)c->stats_every;
    int32_t na = 0;
    foolc_status st = bnd_alloc(&b);
    if (st >= 0) st = bnd_start(&b, &na);
    for (int64_t step = 0; st >= 0 && (na = bnd_active(&b, na)) > 0;) {
        int32_t nc = bnd_propose(&b, na);
        if ((st = foolc__run_is_adv(run, b.imgs, b.sid, na + nc, b.adv, NULL)) < 0) break;
        bnd_update(&b, na, nc);
        st = foolc__run_progress(run, ++step, (int64_t)c->steps);
    }
    if (st >= 0 && c->bisect_steps > 0) st = bnd_finish(&b);
    foolc__arena_free(&b.arena);
    return st;
}

FOOLC__ATTACK(boundary, "boundary", FOOLC_L2, FOOLC_NEEDS_DECISION, boundary_params,
              boundary_config, boundary_run, NULL,
              "Boundary attack: random walk along the decision boundary towards the input (L2)");
