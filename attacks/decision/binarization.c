/* Binarization refinement (Foolbox's BinarizationRefinementAttack), L2: for models that
 * binarize their input at a threshold, every value of a starting adversarial (blended
 * uniform noise) that binarizes like the clean value is reset to it, and every other one
 * is moved to the nearest value on its side of the threshold. The refined point is kept
 * when the model still finds it adversarial (always, for a binarizing model); the result is
 * then bisected towards the clean input. */
#include "decision.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct binarization_config {
    double threshold, upper, init, init_directions, init_steps, init_draws, bisect_steps;
} binarization_config;

static const foolc__param binarization_params[] = {
    FOOLC__PARAM(binarization_config, threshold, 0.5, 0, 1, 0,
                 "the model's binarization threshold, as a fraction of its box (0.5: the centre)"),
    FOOLC__PARAM(binarization_config, upper, 1, 0, 1, 1,
                 "[down|up] 1 if a value equal to the threshold binarizes up, 0 if down"),
    FOOLC__PARAM(binarization_config, init, 0, 0, 2, 1,
                 "starting point [noise|pool|attack]: 0 blended uniform noise, 1 the closest "
                 "adversarial pool image (foolc_attack_set_starts; the batch itself without one), "
                 "2 the attack set by foolc_attack_set_init (default blended-noise)"),
    FOOLC__PARAM(binarization_config, init_directions, 1000, 1, 100000, 1,
                 "uniform-noise draws (init 0) or closest pool images (init 1) per sample"),
    FOOLC__PARAM(binarization_config, init_steps, 10, 1, 10000, 1,
                 "linear-scan steps of the blended-noise starting point"),
    FOOLC__PARAM(binarization_config, init_draws, 4, 1, 100, 1,
                 "noise images blended per sample (init 0); the closest start is kept"),
    FOOLC__PARAM(binarization_config, bisect_steps, 10, 0, 60, 1,
                 "final bisection steps towards the clean input"),
};

static foolc_status binarization_run(foolc__run *run, const void *config)
{
    const binarization_config *c = config;
    int32_t m = run->n_todo;
    size_t d = run->d, md = foolc__mul((size_t)m, d);
    float *xa = foolc__malloc(foolc__mul(2 * md, sizeof(float)));
    int32_t *sid = foolc__malloc((size_t)m * sizeof(int32_t));
    uint8_t *ok = foolc__malloc((size_t)m * 2);
    foolc_status st = FOOLC_OK;
    if (!xa || !sid || !ok) {
        st = foolc__nomem("binarization");
        goto out;
    }
    float *ref = xa + md;
    uint8_t *adv = ok + m;
    st = foolc__dec_start(run, run->todo, m, (foolc__start)(int)c->init,
                          (int32_t)c->init_directions,
                          (int32_t)c->init_steps, (int32_t)c->init_draws, 0, xa, ok);
    if (st < 0 || (st = foolc__run_progress(run, 1, 3)) < 0) goto out;
    float t = (float)(run->lo + c->threshold * ((double)run->hi - run->lo));
    /* The values just on each side of the threshold. */
    float up = c->upper ? t : nextafterf(t, INFINITY);
    float down = c->upper ? nextafterf(t, -INFINITY) : t;
    up = up > run->hi ? run->hi : up;
    down = down < run->lo ? run->lo : down;
    int32_t na = 0;
    for (int32_t a = 0; a < m; a++) {
        if (!ok[a]) continue;
        const float *x0 = run->x + (size_t)run->todo[a] * d, *x = xa + (size_t)a * d;
        float *o = ref + (size_t)na * d;
        for (size_t j = 0; j < d; j++) {
            int b0 = c->upper ? x0[j] >= t : x0[j] > t, b1 = c->upper ? x[j] >= t : x[j] > t;
            o[j] = b0 == b1 ? x0[j] : b1 ? up : down;
        }
        if (na != a) memcpy(xa + (size_t)na * d, x, d * sizeof(float));
        sid[na++] = run->todo[a];
    }
    if ((st = foolc__run_is_adv(run, ref, sid, na, adv, NULL)) < 0) goto out;
    for (int32_t q = 0; q < na; q++)
        if (adv[q]) {
            memcpy(xa + (size_t)q * d, ref + (size_t)q * d, d * sizeof(float));
            foolc__run_offer(run, sid[q], xa + (size_t)q * d);
        }
    if ((st = foolc__run_progress(run, 2, 3)) < 0) goto out;
    if (c->bisect_steps > 0 &&
        (st = foolc__run_bisect(run, sid, na, xa, (int32_t)c->bisect_steps, NULL)) < 0)
        goto out;
    st = foolc__run_progress(run, 3, 3);
out:
    foolc__free(xa);
    foolc__free(sid);
    foolc__free(ok);
    return st;
}

FOOLC__ATTACK(binarization, "binarization", FOOLC_L2, FOOLC_NEEDS_DECISION, binarization_params,
              binarization_config, binarization_run, NULL,
              "binarization refinement of a blended-noise start, for binarizing models (L2)");
