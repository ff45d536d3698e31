/* Blended uniform noise with a linear search (Foolbox's LinearSearchBlendedUniformNoise),
 * made minimising: per sample a uniform-noise image in the box that is adversarial, then
 * the smallest blend towards it by a linear scan and a bisection in the bracket found.
 * The same function (foolc__init_blended) is the default start of Boundary and HSJ. */
#include "decision.h"

#include <stddef.h>

typedef struct blended_config {
    double directions, steps, rtol, max_queries;
} blended_config;

static const foolc__param blended_params[] = {
    {"directions", 1000, 1, 100000, offsetof(blended_config, directions), 1,
     "uniform-noise images drawn per sample, at most, until one is adversarial"},
    {"steps", 100, 1, 10000, offsetof(blended_config, steps), 1,
     "blend factors of the linear scan from the clean input to the noise"},
    {"rtol", 1e-4, 1e-9, 0.5, offsetof(blended_config, rtol), 0,
     "relative tolerance of the bisection in the bracket the scan found"},
    {"max_queries", 0, 0, 1e12, offsetof(blended_config, max_queries), 1,
     "model images per sample at most; 0 means no limit"},
};

static foolc_status blended_run(foolc__run *run, const void *config)
{
    const blended_config *c = config;
    int32_t m = run->n_todo;
    float *xa = foolc__malloc(foolc__mul(foolc__mul((size_t)m, run->d), sizeof(float)));
    uint8_t *ok = foolc__malloc((size_t)m);
    foolc_status st = xa && ok ? FOOLC_OK : foolc__nomem("blended noise");
    if (st >= 0)
        st = foolc__init_blended(run, run->todo, m, (int32_t)c->directions, (int32_t)c->steps,
                                 c->rtol, c->max_queries, xa, ok);
    foolc__free(xa);
    foolc__free(ok);
    return st;
}

const foolc__attack_vt foolc__attack_blended_noise = {
    .name = "blended-noise",
    .summary = "blended uniform noise: smallest adversarial blend towards uniform noise (L2)",
    .norm = FOOLC_L2,
    .needs = FOOLC_NEEDS_DECISION,
    .params = blended_params,
    .n_params = sizeof blended_params / sizeof blended_params[0],
    .config_size = sizeof(blended_config),
    .run = blended_run,
};
