/* The Boundary attack (Brendel, Rauber, Bethge, arXiv:1712.04248), L2: from an adversarial
 * starting point, random orthogonal (spherical) steps and steps towards the clean input,
 * with per-sample step sizes adapted from each sample's own successes (a success-rate rule
 * by default, Foolbox's statistics schedule on request) and directions biased by a memory of
 * the successful ones. Every step is one batched query over the active samples. */
#include "decision.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct boundary_config {
    double steps, spherical_step, source_step, convergence, adaptation, stats_every,
        max_queries, init, init_directions, init_steps, init_draws, bisect_steps, schedule,
        target, rate, memory;
} boundary_config;

static const foolc__param boundary_params[] = {
    {"steps", 25000, 1, 30000, offsetof(boundary_config, steps), 1,
     "iterations per sample at most (each costs 1 query; 2 on statistics steps of "
     "schedule 0)"},
    {"spherical_step", 1e-2, 1e-6, 1, offsetof(boundary_config, spherical_step), 0,
     "initial size of the orthogonal step, relative to the distance"},
    {"source_step", 1e-2, 1e-6, 1, offsetof(boundary_config, source_step), 0,
     "schedule 0: initial size of the step towards the clean input, relative to the "
     "distance"},
    {"convergence", 1e-7, 0, 0.1, offsetof(boundary_config, convergence), 0,
     "a sample stops when its source step falls below this"},
    {"adaptation", 1.5, 1.01, 10, offsetof(boundary_config, adaptation), 0,
     "schedule 0: factor by which step sizes grow or shrink from the success statistics"},
    {"stats_every", 10, 1, 1000, offsetof(boundary_config, stats_every), 1,
     "schedule 0: steps between checks of the spherical candidate and step-size updates"},
    {"max_queries", 0, 0, 1e12, offsetof(boundary_config, max_queries), 1,
     "model images per sample at most, starting point included; 0 means no limit"},
    {"init", 0, 0, 2, offsetof(boundary_config, init), 1,
     "starting point [noise|pool|attack]: 0 blended uniform noise, 1 the closest "
     "adversarial pool image "
     "(foolc_attack_set_starts; the batch itself without one), 2 the attack set by "
     "foolc_attack_set_init (default blended-noise)"},
    {"init_directions", 1000, 1, 100000, offsetof(boundary_config, init_directions), 1,
     "uniform-noise draws (init 0) or closest pool images (init 1) per sample"},
    {"init_steps", 10, 1, 10000, offsetof(boundary_config, init_steps), 1,
     "linear-scan steps of the blended-noise starting point"},
    {"init_draws", 4, 1, 100, offsetof(boundary_config, init_draws), 1,
     "noise images blended per sample (init 0); the closest start is kept"},
    {"bisect_steps", 10, 0, 60, offsetof(boundary_config, bisect_steps), 1,
     "final bisection steps towards the clean input"},
    {"schedule", 1, 0, 1, offsetof(boundary_config, schedule), 1,
     "step sizes: 1 success-rate rule on every step (source step = spherical step^2 / 2), "
     "0 Foolbox's schedule from success statistics"},
    {"target", 0.2, 0.01, 0.9, offsetof(boundary_config, target), 0,
     "schedule 1: success rate of the candidates the spherical step is adapted to"},
    {"rate", 0.3, 0.01, 5, offsetof(boundary_config, rate), 0,
     "schedule 1: the spherical step is multiplied by exp(rate * (success - target))"},
    {"memory", 0.1, 0, 10, offsetof(boundary_config, memory), 0,
     "weight of the memory of successful directions added to the unit random direction "
     "(0: none)"},
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
    int32_t steps, qs_next, qt_next;
    uint8_t qs[SPH_LEN], qt[STEP_LEN];   /* success history; EMPTY where unset */
} bstate;

static double l2(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        double v = (double)a[j] - b[j];
        s += v * v;
    }
    return sqrt(s);
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
    double norm = l2(x0, best, d), dot = 0, gd = 0;
    foolc__dec_normal(&s->rng, eta, d);
    for (size_t j = 0; j < d; j++) {
        double u = ((double)x0[j] - best[j]) / norm;
        dot += (double)eta[j] * u;
        gd += (double)g[j] * u;
    }
    double en = 0, gn = 0;
    for (size_t j = 0; j < d; j++) {
        double u = ((double)x0[j] - best[j]) / norm, v = eta[j] - dot * u,
               w = g[j] - gd * u;
        eta[j] = (float)v;
        en += v * v;
        gn += w * w;
    }
    en = sqrt(en);
    gn = sqrt(gn);
    for (size_t j = 0; j < d; j++) zout[j] = en > 0 ? (float)(eta[j] / en) : 0.0f;
    if (lam > 0 && gn > 0 && en > 0) {
        double e2 = 0;
        for (size_t j = 0; j < d; j++) {
            double u = ((double)x0[j] - best[j]) / norm;
            double v = zout[j] + lam * (g[j] - gd * u) / gn;
            eta[j] = (float)v;
            e2 += v * v;
        }
        en = sqrt(e2);
    }
    double scale = en > 0 ? s->sph * norm / en : 0, div = sqrt(s->sph * s->sph + 1);
    for (size_t j = 0; j < d; j++) {
        double v = x0[j] + (scale * eta[j] - ((double)x0[j] - best[j])) / div;
        sph_out[j] = v < run->lo ? run->lo : v > run->hi ? run->hi : (float)v;
    }
    double nn = l2(x0, sph_out, d);
    double len = s->src * norm + nn - norm;
    len = len > 0 && nn > 0 ? len / nn : 0;
    for (size_t j = 0; j < d; j++) {
        double v = sph_out[j] + len * ((double)x0[j] - sph_out[j]);
        cand[j] = v < run->lo ? run->lo : v > run->hi ? run->hi : (float)v;
    }
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

static foolc_status boundary_run(foolc__run *run, const void *config)
{
    const boundary_config *c = config;
    int32_t m = run->n_todo;
    size_t d = run->d, md = foolc__mul((size_t)m, d);
    float *best = foolc__malloc(foolc__mul(md, sizeof(float)));
    float *imgs = foolc__malloc(foolc__mul(2 * md, sizeof(float)));
    float *tmp = foolc__malloc(foolc__mul(2 * d, sizeof(float)));
    float *mem = foolc__calloc(md, sizeof(float));        /* per-sample direction memory */
    float *zb = foolc__malloc(foolc__mul(md, sizeof(float)));    /* this step's directions */
    bstate *s = foolc__malloc((size_t)m * sizeof *s);
    int32_t *act = foolc__malloc((size_t)m * 4 * sizeof(int32_t));  /* act, chk, sid (2m) */
    uint8_t *ok = foolc__malloc((size_t)m * 3);
    foolc_status st = FOOLC_OK;
    int rule = c->schedule > 0;
    if (!best || !imgs || !tmp || !mem || !zb || !s || !act || !ok) {
        st = foolc__nomem("boundary");
        goto out;
    }
    int32_t *chk = act + m, *sid = chk + m;
    uint8_t *adv = ok + m;
    uint64_t reserve = (uint64_t)c->bisect_steps + 1;
    st = foolc__dec_start(run, run->todo, m, (int)c->init, (int32_t)c->init_directions,
                          (int32_t)c->init_steps, (int32_t)c->init_draws, c->max_queries,
                          best, ok);
    if (st < 0) goto out;
    int32_t na = 0;
    for (int32_t a = 0; a < m; a++) {
        foolc__rng_init(&s[a].rng, run->seed, (uint64_t)run->todo[a], FOOLC__STREAM_BOUNDARY);
        s[a].sph = c->spherical_step;
        s[a].src = rule ? SOURCE_RATIO * c->spherical_step * c->spherical_step
                        : c->source_step;
        s[a].steps = 0;
        s[a].qs_next = s[a].qt_next = 0;
        memset(s[a].qs, EMPTY, sizeof s[a].qs);
        memset(s[a].qt, EMPTY, sizeof s[a].qt);
        if (ok[a]) act[na++] = a;
    }
    /* The success-rate rule needs no spherical checks. */
    int32_t every = rule ? INT32_MAX : (int32_t)c->stats_every;
    int64_t total = (int64_t)c->steps, step = 0;
    while (na > 0) {
        /* Who goes on: not converged, steps and budget left (keeping the final bisection's
         * queries in reserve). */
        int32_t nb = 0;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q];
            int check = !rule && (s[a].steps + 1) % every == 0;
            /* A sample at distance 0 (a start at the input itself, which a model whose
             * answers change between calls can call adversarial; every start and every
             * improvement is offered) has nothing left to gain and no direction to walk. */
            if (s[a].steps < (int32_t)c->steps && s[a].src >= c->convergence &&
                run->res->distance[run->todo[a]] > 0 &&
                foolc__dec_may(run, run->todo[a], c->max_queries, 1u + (unsigned)check +
                               (c->max_queries > 0 ? reserve : 0)))
                act[nb++] = a;
        }
        if ((na = nb) == 0) break;
        int32_t nc = 0;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q], i = run->todo[a];
            const float *x0 = run->x + (size_t)i * d;
            s[a].steps++;
            int check = !rule && s[a].steps % every == 0;
            propose(run, &s[a], x0, best + (size_t)a * d, mem + (size_t)a * d, c->memory,
                    tmp, zb + (size_t)q * d, tmp + d, imgs + (size_t)q * d);
            sid[q] = i;
            if (check) {
                chk[nc] = q;
                memcpy(imgs + (size_t)(na + nc) * d, tmp + d, d * sizeof(float));
                sid[na + nc] = i;
                nc++;
            }
        }
        if ((st = foolc__run_is_adv(run, imgs, sid, na + nc, adv, NULL)) < 0) break;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q], i = run->todo[a];
            const float *x0 = run->x + (size_t)i * d, *cq = imgs + (size_t)q * d;
            float *b = best + (size_t)a * d;
            if (adv[q] && l2(x0, cq, d) < l2(x0, b, d)) {
                memcpy(b, cq, d * sizeof(float));
                foolc__run_offer(run, i, b);
            }
            /* Success-rate rule: for a locally flat boundary, progress per step is
             * largest when the source step is about half the square of the spherical step
             * and about 1 candidate in 8 to 5 succeeds. */
            double w = (adv[q] ? 1.0 : 0.0) - c->target;
            if (rule) {
                s[a].sph = fmin(s[a].sph * exp(c->rate * w), 1.0);
                s[a].src = SOURCE_RATIO * s[a].sph * s[a].sph;
            }
            /* The memory: random directions weighted by success minus the target rate. */
            if (c->memory > 0) {
                float *ma = mem + (size_t)a * d;
                const float *zq = zb + (size_t)q * d;
                for (size_t j = 0; j < d; j++)
                    ma[j] = (float)(MEMORY_DECAY * ma[j] + w * zq[j]);
            }
        }
        for (int32_t r = 0; r < nc; r++) {
            int32_t a = act[chk[r]];
            bstate *z = &s[a];
            z->qs[z->qs_next] = adv[na + r];
            z->qs_next = (z->qs_next + 1) % SPH_LEN;
            z->qt[z->qt_next] = adv[chk[r]];
            z->qt_next = (z->qt_next + 1) % STEP_LEN;
            stats_update(z, c);
        }
        if ((st = foolc__run_progress(run, ++step, total)) < 0) break;
    }
    /* A final bisection towards the clean inputs. */
    if (st >= 0 && c->bisect_steps > 0) {
        na = 0;
        for (int32_t a = 0; a < m; a++)
            if (ok[a]) {
                if (na != a)
                    memcpy(best + (size_t)na * d, best + (size_t)a * d, d * sizeof(float));
                act[na++] = run->todo[a];
            }
        st = foolc__run_bisect(run, act, na, best, (int32_t)c->bisect_steps, NULL);
    }
out:
    foolc__free(best);
    foolc__free(imgs);
    foolc__free(tmp);
    foolc__free(mem);
    foolc__free(zb);
    foolc__free(s);
    foolc__free(act);
    foolc__free(ok);
    return st;
}

FOOLC__ATTACK(boundary, "boundary", FOOLC_L2, FOOLC_NEEDS_DECISION, boundary_params, boundary_config, boundary_run, NULL,
              "Boundary attack: random walk along the decision boundary towards the input (L2)");
