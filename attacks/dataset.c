/* Dataset starting points (Foolbox's DatasetAttack), minimising in L2: per sample the pool
 * images closest to it whose label differs from its own (equals the target when targeted),
 * queried in order of distance; every adversarial one is then bisected towards the clean
 * input and the smallest result kept. The pool is the caller's (foolc_attack_set_starts);
 * without one, the run's own inputs serve as the pool. */
#include "decision.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct dataset_config {
    double candidates, bisect_steps;
} dataset_config;

static const foolc__param dataset_params[] = {
    {"candidates", 10, 1, 1000, offsetof(dataset_config, candidates), 1,
     "closest pool images queried per sample"},
    {"bisect_steps", 10, 0, 60, offsetof(dataset_config, bisect_steps), 1,
     "bisection steps towards the clean input for each adversarial pool image"},
};

typedef struct cand {
    double dist;
    int32_t row;
} cand;

static foolc_status dataset_run(foolc__run *run, const void *config)
{
    const dataset_config *c = config;
    int32_t m = run->n_todo, k = (int32_t)c->candidates;
    size_t d = run->d;
    int own = !run->starts_x || run->n_starts <= 0;
    const float *px = own ? run->x : run->starts_x;
    const int32_t *py = own ? run->labels : run->starts_y;
    int32_t np = own ? run->n : run->n_starts;
    size_t mk = foolc__mul((size_t)m, (size_t)k);
    cand *cs = foolc__malloc(foolc__mul(mk, sizeof *cs));
    int32_t *cnt = foolc__malloc((foolc__mul(mk, 1) + 2 * (size_t)m) * sizeof(int32_t));
    float *xs = foolc__malloc(foolc__mul(foolc__mul(mk, d), sizeof(float)));
    uint8_t *adv = foolc__malloc((size_t)m);
    foolc_status st = FOOLC_OK;
    if (!cs || !cnt || !xs || !adv) {
        st = foolc__nomem("dataset");
        goto out;
    }
    int32_t *sid = cnt + m, *found = sid + m;
    for (int32_t a = 0; a < m; a++) {
        int32_t i = run->todo[a], n = 0;
        const float *x0 = run->x + (size_t)i * d;
        cand *ca = cs + (size_t)a * (size_t)k;
        for (int32_t p = 0; p < np; p++) {
            if (own && p == i) continue;
            if (py && (run->targets ? py[p] != run->targets[i] : py[p] == run->labels[i]))
                continue;
            double worst = n == k ? ca[n - 1].dist : INFINITY, s = 0;
            const float *xp = px + (size_t)p * d;
            size_t j = 0;
            for (; j < d && s < worst; j++) {
                double v = (double)xp[j] - x0[j];
                s += v * v;
            }
            if (j < d || !(s < worst)) continue;
            int32_t q = n < k ? n++ : k - 1;
            while (q > 0 && ca[q - 1].dist > s) {
                ca[q] = ca[q - 1];
                q--;
            }
            ca[q].dist = s;
            ca[q].row = p;
        }
        cnt[a] = n;
    }
    /* Query the t-th closest of every sample at once; keep the adversarial ones. */
    int32_t nf = 0;
    float *buf = xs + foolc__mul(mk, d) - foolc__mul((size_t)m, d);
    for (int32_t t = 0; t < k; t++) {
        int32_t na = 0;
        for (int32_t a = 0; a < m; a++) {
            if (t >= cnt[a]) continue;
            const float *xp = px + (size_t)cs[(size_t)a * (size_t)k + (size_t)t].row * d;
            float *o = buf + (size_t)na * d;
            for (size_t j = 0; j < d; j++)
                o[j] = xp[j] < run->lo ? run->lo : xp[j] > run->hi ? run->hi : xp[j];
            sid[na++] = run->todo[a];
        }
        if (na == 0) break;
        if ((st = foolc__run_is_adv(run, buf, sid, na, adv, NULL)) < 0) goto out;
        for (int32_t q = 0; q < na; q++)
            if (adv[q]) {
                memmove(xs + (size_t)nf * d, buf + (size_t)q * d, d * sizeof(float));
                found[nf++] = sid[q];
            }
    }
    st = foolc__run_bisect(run, found, nf, xs, (int32_t)c->bisect_steps, NULL);
    {
        int32_t missing = 0;
        for (int32_t a = 0; a < m; a++) missing += !run->res->success[run->todo[a]];
        if (missing && st >= 0)
            foolc__error(FOOLC_NOT_FOUND, "dataset: %d sample%s without an adversarial among "
                         "the %d closest pool images of another class%s", missing,
                         missing > 1 ? "s" : "", k, own ? " (the pool is the run's inputs; "
                         "set one with foolc_attack_set_starts)" : "");
    }
out:
    foolc__free(cs);
    foolc__free(cnt);
    foolc__free(xs);
    foolc__free(adv);
    return st;
}

const foolc__attack_vt foolc__attack_dataset = {
    .name = "dataset",
    .summary = "closest pool images of another class, bisected towards the input (L2)",
    .norm = FOOLC_L2,
    .needs = FOOLC_NEEDS_DECISION,
    .params = dataset_params,
    .n_params = sizeof dataset_params / sizeof dataset_params[0],
    .config_size = sizeof(dataset_config),
    .run = dataset_run,
};
