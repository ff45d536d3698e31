/* Dataset starting points (Foolbox's DatasetAttack), minimising in L2: per sample the pool
 * images closest to it whose label differs from its own (equals the target when targeted),
 * queried in order of distance; every adversarial one is then bisected towards the clean
 * input and the smallest result kept. The pool is the caller's (foolc_attack_set_starts);
 * without one, the run's own inputs serve as the pool. */
#include "decision.h"

#include <stddef.h>

typedef struct dataset_config {
    double candidates, bisect_steps;
} dataset_config;

static const foolc__param dataset_params[] = {
    FOOLC__PARAM(dataset_config, candidates, 10, 1, 1000, 1,
                 "closest pool images queried per sample"),
    FOOLC__PARAM(dataset_config, bisect_steps, 10, 0, 60, 1,
                 "bisection steps towards the clean input for each adversarial pool image"),
};

static foolc_status dataset_run(foolc__run *run, const void *config)
{
    const dataset_config *c = config;
    int32_t m = run->n_todo, k = (int32_t)c->candidates, nf = 0;
    size_t d = run->d, mk = foolc__mul((size_t)m, (size_t)k);
    float *xs = foolc__malloc(foolc__mul(foolc__mul(mk, d), sizeof(float)));
    int32_t *pos = foolc__malloc(foolc__mul(mk, sizeof(int32_t)));
    int own = 0;
    foolc_status st = xs && pos ? FOOLC_OK : foolc__nomem("dataset");
    if (st >= 0) st = foolc__dec_pool(run, run->todo, m, k, 0, 0, xs, pos, &nf, &own);
    if (st >= 0) st = foolc__run_progress(run, 1, 2);
    /* Every adversarial pool image, bisected towards its sample's input (the smallest kept). */
    for (int32_t f = 0; st >= 0 && f < nf; f++) pos[f] = run->todo[pos[f]];
    if (st >= 0) st = foolc__run_bisect(run, pos, nf, xs, (int32_t)c->bisect_steps, NULL);
    if (st >= 0) st = foolc__run_progress(run, 2, 2);
    int32_t missing = 0;
    for (int32_t a = 0; a < m; a++) missing += !run->res->success[run->todo[a]];
    if (missing && st >= 0)
        foolc__error(FOOLC_NOT_FOUND, "dataset: %d sample%s without an adversarial among the "
                     "%d closest pool images of another class%s", missing,
                     missing > 1 ? "s" : "", k, own ? " (the pool is the run's inputs; set "
                     "one with foolc_attack_set_starts)" : "");
    foolc__free(xs);
    foolc__free(pos);
    return st;
}

FOOLC__ATTACK(dataset, "dataset", FOOLC_L2, FOOLC_NEEDS_DECISION, dataset_params, dataset_config,
              dataset_run, NULL,
              "closest pool images of another class, bisected towards the input (L2)");
