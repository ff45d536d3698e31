/* Salt-and-pepper noise (Foolbox's SaltAndPepperNoiseAttack), minimising in L0: per sample
 * repeated draws of a random order of the input's values and a salt/pepper choice for each;
 * for each draw the smallest fraction p of values set to the box's ends that is adversarial
 * (grow, then bisect; later draws are tested at the best p so far and bisected only when
 * they beat it). The search lives in lib/decision.c (foolc__dec_repeat). */
#include "decision.h"

#include <math.h>
#include <stddef.h>

typedef struct sp_config {
    double repeats, rtol, max_queries;
} sp_config;

static const foolc__param sp_params[] = {
    {"repeats", 10, 1, 10000, offsetof(sp_config, repeats), 1,
     "noise patterns drawn per sample"},
    {"rtol", 1e-2, 1e-9, 0.5, offsetof(sp_config, rtol), 0,
     "relative tolerance of the bisection of the noise probability"},
    {"max_queries", 0, 0, 1e12, offsetof(sp_config, max_queries), 1,
     "model images per sample at most; 0 means no limit"},
};

/* dir[j] = +(1 + u) for salt, -(1 + u) for pepper, u uniform in [0, 1): value j is set at
 * probability p when u < p. */
static void sp_draw(void *ctx, const foolc__run *run, foolc__rng *r, float *dir)
{
    (void)ctx;
    for (size_t j = 0; j < run->d; j++) {
        uint64_t z = foolc__rng_u64(r);
        double u = (double)(z >> 11) * 0x1.0p-53;
        dir[j] = (float)((z & 1) ? 1.0 + u : -1.0 - u);
    }
}

static void sp_apply(void *ctx, const foolc__run *run, int32_t sample, const float *dir,
                     double p, float *out)
{
    (void)ctx;
    const float *x0 = run->x + (size_t)sample * run->d;
    for (size_t j = 0; j < run->d; j++) {
        double u = fabs((double)dir[j]) - 1.0;
        out[j] = u < p ? (dir[j] > 0 ? run->hi : run->lo) : x0[j];
    }
}

static foolc_status sp_run(foolc__run *run, const void *config)
{
    const sp_config *c = config;
    foolc__repeat_opts o = {(int32_t)c->repeats, 1.0 / (double)run->d, 1.0, 2.0, c->rtol,
                            c->max_queries};
    return foolc__dec_repeat(run, run->todo, run->n_todo, &o, sp_draw, sp_apply, NULL);
}

const foolc__attack_vt foolc__attack_salt_and_pepper = {
    .name = "salt-and-pepper",
    .summary = "salt-and-pepper noise with the smallest adversarial probability (L0)",
    .norm = FOOLC_L0,
    .needs = FOOLC_NEEDS_DECISION,
    .params = sp_params,
    .n_params = sizeof sp_params / sizeof sp_params[0],
    .config_size = sizeof(sp_config),
    .run = sp_run,
};
