/* The Pointwise attack (Schott et al., arXiv:1805.09190), minimising in L0, then refining:
 * from a salt-and-pepper starting point, each perturbed value is reset to the clean one in a
 * random order whenever the result stays adversarial, pass after pass until a pass changes
 * nothing; then each value still perturbed is bisected between its clean and adversarial
 * values (same L0, smaller L2). One batched query per round, one candidate per sample. */
#include "decision.h"

#include <stddef.h>
#include <string.h>

typedef struct pointwise_config {
    double max_passes, bisect_steps, max_queries;
} pointwise_config;

static const foolc__param pointwise_params[] = {
    FOOLC__PARAM(pointwise_config, max_passes, 10, 1, 100, 1,
                 "passes over the perturbed values that try to reset each one, at most"),
    FOOLC__PARAM(pointwise_config, bisect_steps, 10, 0, 30, 1,
                 "bisection steps per value still perturbed after the passes (0: none)"),
    FOOLC__PARAM(pointwise_config, max_queries, 0, 0, 1e12, 1,
                 "model images per sample at most, starting point included; 0 means no limit"),
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

static foolc_status pointwise_run(foolc__run *run, const void *config)
{
    const pointwise_config *c = config;
    int32_t m = run->n_todo;
    size_t d = run->d, md = foolc__mul((size_t)m, d);
    float *xa = foolc__malloc(foolc__mul(md, sizeof(float)));
    float *cand = foolc__malloc(foolc__mul(md, sizeof(float)));
    int32_t *list = foolc__malloc(foolc__mul(md, sizeof(int32_t)));
    int32_t *act = foolc__malloc((size_t)m * 2 * sizeof(int32_t));
    pstate *s = foolc__malloc((size_t)m * sizeof *s);
    uint8_t *ok = foolc__malloc((size_t)m * 2);
    foolc_status st = FOOLC_OK;
    if (!xa || !cand || !list || !act || !s || !ok) {
        st = foolc__nomem("pointwise");
        goto out;
    }
    int32_t *sid = act + m;
    uint8_t *adv = ok + m;
    if ((st = foolc__run_subattack(run, "salt-and-pepper", run->todo, m, xa, ok)) < 0) goto out;
    int32_t na = 0;
    for (int32_t a = 0; a < m; a++) {
        foolc__rng_for(&s[a].rng, run, run->todo[a], FOOLC__STREAM_POINTWISE);
        if (!ok[a]) continue;
        foolc__run_offer(run, run->todo[a], xa + (size_t)a * d);
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
                        z->phase = c->bisect_steps > 0 ? REFINE : DONE;
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
        if ((st = foolc__run_progress(run, n0 - na, n0)) < 0) goto out;
        if ((st = foolc__run_is_adv(run, cand, sid, na, adv, NULL)) < 0) goto out;
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
out:
    foolc__free(xa);
    foolc__free(cand);
    foolc__free(list);
    foolc__free(act);
    foolc__free(s);
    foolc__free(ok);
    return st;
}

FOOLC__ATTACK(pointwise, "pointwise", FOOLC_L0, FOOLC_NEEDS_DECISION, pointwise_params,
              pointwise_config, pointwise_run, NULL,
              "Pointwise: resets perturbed values while adversarial, then refines them (L0)");
