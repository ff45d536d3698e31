/* The attack registry (attacks/list.h, one line per attack), attack handles with their
 * parameters, and foolc_attack_run: argument checks, the clean pre-check, the attack
 * itself, and the verification of every adversarial it reports. */
#include "arena.h"
#include "attack_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define X(name) extern const foolc__attack_vt foolc__attack_##name;
#include "../attacks/list.h"
#undef X

static const foolc__attack_vt *const k_attacks[] = {
#define X(name) &foolc__attack_##name,
#include "../attacks/list.h"
#undef X
};
#define N_ATTACKS ((int32_t)(sizeof k_attacks / sizeof k_attacks[0]))

struct foolc_attack {
    const foolc__attack_vt *vt;
    double config[FOOLC__MAX_PARAMS];
    const foolc_criterion *crit;      /* borrowed; NULL: the default */
    foolc_criterion *dflt_crit;       /* owned misclassification */
    foolc_progress_fn progress;
    void *progress_user;
    const char *init_attack;          /* static registry name, or NULL */
    uint64_t first_id;                /* sample i of a run draws as first_id + i */
    const uint64_t *ids;              /* or as ids[i] (borrowed; n_ids of them), when set */
    int32_t n_ids;
    const float *starts_x;            /* borrowed starting-point pool, or NULL */
    const int32_t *starts_y;
    int32_t n_starts;
    const float *sample_x;            /* borrowed per-sample starts (n_sample rows), or NULL */
    int32_t n_sample;
    foolc__pool_sum starts_sum;       /* the pool's summary (lib/attack_impl.h), filled lazily */
};

void foolc__pool_sum_clear(foolc__pool_sum *s)
{
    foolc__free(s->v);
    s->v = NULL;
    s->d = 0;
    s->n = 0;
    s->h = s->w = 0;
}

int32_t foolc_attack_count(void) { return N_ATTACKS; }

const char *foolc_attack_name(int32_t i)
{
    return i >= 0 && i < N_ATTACKS ? k_attacks[i]->name : NULL;
}

const foolc__attack_vt *foolc__attack_find(const char *name)
{
    for (int32_t i = 0; name && i < N_ATTACKS; i++)
        if (!strcmp(k_attacks[i]->name, name)) return k_attacks[i];
    return NULL;
}

static foolc_status unknown_attack(const char *name)
{
    char known[1024] = "";
    size_t used = 0;
    for (int32_t i = 0; i < N_ATTACKS && used < sizeof known; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                                 k_attacks[i]->name);
    return foolc__error(FOOLC_E_INVALID, "attack: unknown name '%s' (known: %s)",
                        name ? name : "(null)", known);
}

foolc_status foolc_attack_describe(const char *name, foolc_norm *norm, unsigned *needs,
                                   int32_t *n_params, const char **summary)
{
    foolc__error_clear();
    const foolc__attack_vt *vt = foolc__attack_find(name);
    if (!vt) return unknown_attack(name);
    if (norm) *norm = vt->norm;
    if (needs) *needs = vt->needs;
    if (n_params) *n_params = (int32_t)vt->n_params;
    if (summary) *summary = vt->summary;
    return FOOLC_OK;
}

foolc_status foolc_attack_param(const char *name, int32_t p, const char **key, double *dflt,
                                double *min, double *max, const char **help)
{
    foolc__error_clear();
    const foolc__attack_vt *vt = foolc__attack_find(name);
    if (!vt) return unknown_attack(name);
    if (p < 0 || (size_t)p >= vt->n_params)
        return foolc__error(FOOLC_E_INVALID, "attack %s: parameter %d out of range [0, %zu)",
                            name, p, vt->n_params);
    const foolc__param *q = &vt->params[p];
    if (key) *key = q->name;
    if (dflt) *dflt = q->dflt;
    if (min) *min = q->min;
    if (max) *max = q->max;
    if (help) *help = q->help;
    return FOOLC_OK;
}

foolc_status foolc_attack_new(const char *name, foolc_attack **out)
{
    foolc__error_clear();
    if (out) *out = NULL;
    if (!out) return foolc__error(FOOLC_E_INVALID, "attack: NULL out");
    const foolc__attack_vt *vt = foolc__attack_find(name);
    if (!vt) return unknown_attack(name);
    if (vt->n_params > FOOLC__MAX_PARAMS || vt->config_size > sizeof(double) * FOOLC__MAX_PARAMS)
        return foolc__error(FOOLC_E_INTERNAL, "attack %s: %zu parameters (%zu bytes), more "
                            "than the %d a config holds", vt->name, vt->n_params,
                            vt->config_size, FOOLC__MAX_PARAMS);
    foolc_attack *a = foolc__calloc(1, sizeof *a);
    if (!a) return foolc__nomem("attack");
    foolc_status st = foolc_criterion_new("misclassification", &a->dflt_crit);
    if (st < 0) {
        foolc__free(a);
        return st;
    }
    a->vt = vt;
    foolc__params_defaults(vt->params, vt->n_params, a->config);
    *out = a;
    return FOOLC_OK;
}

void foolc_attack_free(foolc_attack *a)
{
    if (!a) return;
    foolc_criterion_free(a->dflt_crit);
    foolc__pool_sum_clear(&a->starts_sum);
    foolc__free(a);
}

const char *foolc_attack_get_name(const foolc_attack *a) { return a ? a->vt->name : NULL; }

foolc_status foolc_attack_set(foolc_attack *a, const char *key, double value)
{
    foolc__error_clear();
    if (!a) return foolc__error(FOOLC_E_INVALID, "attack: NULL attack");
    return foolc__params_set(a->vt->name, a->vt->params, a->vt->n_params, a->config, key, value);
}

foolc_status foolc_attack_set_text(foolc_attack *a, const char *key, const char *value)
{
    foolc__error_clear();
    if (!a) return foolc__error(FOOLC_E_INVALID, "attack: NULL attack");
    return foolc__params_set_text(a->vt->name, a->vt->params, a->vt->n_params, a->config, key,
                                  value);
}

foolc_status foolc_attack_get(const foolc_attack *a, const char *key, double *value)
{
    foolc__error_clear();
    if (!a) return foolc__error(FOOLC_E_INVALID, "attack: NULL attack");
    return foolc__params_get(a->vt->name, a->vt->params, a->vt->n_params, a->config, key, value);
}

foolc_status foolc_attack_set_criterion(foolc_attack *a, const foolc_criterion *c)
{
    foolc__error_clear();
    if (!a) return foolc__error(FOOLC_E_INVALID, "attack: NULL attack");
    a->crit = c;
    return FOOLC_OK;
}

void foolc_attack_set_first_id(foolc_attack *a, uint64_t first)
{
    if (a) a->first_id = first;
}

/* The common check of the borrowed arrays (ids, pools, starts): n >= 0 and p non-NULL
 * when n > 0; sets the error (FOOLC_E_INVALID) and returns 0 otherwise. */
static int rows_ok(const foolc_attack *a, const void *p, int32_t n, const char *what,
                   const char *arg)
{
    if (n >= 0 && (n == 0 || p)) return 1;
    if (n < 0) foolc__error(FOOLC_E_INVALID, "%s: %s: negative count", a->vt->name, what);
    else foolc__error(FOOLC_E_INVALID, "%s: %s: NULL %s with n > 0", a->vt->name, what, arg);
    return 0;
}

foolc_status foolc_attack_set_ids(foolc_attack *a, const uint64_t *ids, int32_t n)
{
    foolc__error_clear();
    if (!a) return foolc__error(FOOLC_E_INVALID, "attack: NULL attack");
    if (!rows_ok(a, ids, n, "sample ids", "ids")) return FOOLC_E_INVALID;
    a->ids = n > 0 ? ids : NULL;
    a->n_ids = n;
    return FOOLC_OK;
}

void foolc_attack_set_progress(foolc_attack *a, foolc_progress_fn fn, void *user)
{
    if (!a) return;
    a->progress = fn;
    a->progress_user = user;
}

foolc_status foolc_attack_set_init(foolc_attack *a, const char *attack_name)
{
    foolc__error_clear();
    if (!a) return foolc__error(FOOLC_E_INVALID, "attack: NULL attack");
    if (!attack_name) {
        a->init_attack = NULL;
        return FOOLC_OK;
    }
    const foolc__attack_vt *vt = foolc__attack_find(attack_name);
    if (!vt) return unknown_attack(attack_name);
    if (vt == a->vt)
        return foolc__error(FOOLC_E_INVALID, "%s: cannot start from itself", a->vt->name);
    a->init_attack = vt->name;
    return FOOLC_OK;
}

foolc_status foolc_attack_set_starts(foolc_attack *a, const float *x, const int32_t *y,
                                     int32_t n)
{
    foolc__error_clear();
    if (!a) return foolc__error(FOOLC_E_INVALID, "attack: NULL attack");
    if (!rows_ok(a, x, n, "starting points", "x")) return FOOLC_E_INVALID;
    a->starts_x = n > 0 ? x : NULL;
    a->starts_y = n > 0 ? y : NULL;
    a->n_starts = n;
    foolc__pool_sum_clear(&a->starts_sum);   /* a new pool (or new contents): recomputed */
    return FOOLC_OK;
}

foolc_status foolc_attack_set_sample_starts(foolc_attack *a, const float *x, int32_t n)
{
    foolc__error_clear();
    if (!a) return foolc__error(FOOLC_E_INVALID, "attack: NULL attack");
    if (!rows_ok(a, x, n, "per-sample starts", "x")) return FOOLC_E_INVALID;
    a->sample_x = n > 0 ? x : NULL;
    a->n_sample = n;
    return FOOLC_OK;
}

static void caps_text(unsigned caps, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", caps & FOOLC_NEEDS_GRAD ? "gradients " : "",
             caps & FOOLC_NEEDS_SCORES ? "scores " : "",
             caps & FOOLC_NEEDS_DECISION ? "decisions" : "");
}

/* A caller's array: its bytes and its name in messages. */
typedef struct span {
    const void *p;
    size_t bytes;
    const char *name;
} span;

static int overlap(const span *u, const span *v)
{
    if (!u->p || !v->p || !u->bytes || !v->bytes) return 0;
    const char *a = u->p, *b = v->p;
    return a < b + v->bytes && b < a + u->bytes;
}

/* The outputs are written while the inputs are read: no output may share memory with an
 * input or with another output. */
static foolc_status check_overlaps(const char *an, size_t n, size_t d, const float *x,
                                   const int32_t *labels, const int32_t *targets,
                                   const foolc_result *res)
{
    const span in[3] = {{x, n * d * sizeof *x, "x"},
                        {labels, n * sizeof *labels, "labels"},
                        {targets, n * sizeof *targets, "targets"}};
    const span out[4] = {{res->x_adv, n * d * sizeof *res->x_adv, "result x_adv"},
                         {res->distance, n * sizeof *res->distance, "result distance"},
                         {res->success, n * sizeof *res->success, "result success"},
                         {res->queries, n * sizeof *res->queries, "result queries"}};
    for (int o = 0; o < 4; o++) {
        for (int i = 0; i < 3; i++)
            if (overlap(&out[o], &in[i]))
                return foolc__error(FOOLC_E_INVALID, "%s: %s overlaps the input %s (outputs "
                                    "must not alias inputs)", an, out[o].name, in[i].name);
        for (int p = 0; p < o; p++)
            if (overlap(&out[o], &out[p]))
                return foolc__error(FOOLC_E_INVALID, "%s: %s overlaps %s", an, out[o].name,
                                    out[p].name);
    }
    return FOOLC_OK;
}

static foolc_status check_args(const foolc_attack *a, foolc_model *model, foolc_shape s,
                               const float *x, const int32_t *labels, const int32_t *targets,
                               const foolc_result *res, const foolc_criterion *crit)
{
    const char *an = a->vt->name;
    if (!model || !res || !res->x_adv || !res->distance || !res->success)
        return foolc__error(FOOLC_E_INVALID, "%s: NULL %s", an, !model ? "model" : !res ?
                            "result" : !res->x_adv ? "result x_adv" : !res->distance ?
                            "result distance" : "result success");
    const foolc_oracle *o = foolc_model_oracle(model);
    if (s.n < 0) return foolc__error(FOOLC_E_INVALID, "%s: batch size %d < 0", an, s.n);
    if (s.c != o->input.c || s.h != o->input.h || s.w != o->input.w)
        return foolc__error(FOOLC_E_INVALID, "%s: input shape %dx%dx%d does not match the "
                            "model's %dx%dx%d", an, s.c, s.h, s.w, o->input.c, o->input.h,
                            o->input.w);
    if (s.n > 0 && (!x || !labels))
        return foolc__error(FOOLC_E_INVALID, "%s: NULL %s", an, x ? "labels" : "x");
    unsigned caps = foolc_model_caps(model);
    if ((a->vt->needs & caps) != a->vt->needs) {
        char need[64], have[64];
        caps_text(a->vt->needs, need, sizeof need);
        caps_text(caps, have, sizeof have);
        return foolc__error(FOOLC_E_UNSUPPORTED, "%s: needs %s; the model offers %s", an,
                            need, have);
    }
    if (!(caps & FOOLC_NEEDS_SCORES) && !foolc_criterion_label_only(crit))
        return foolc__error(FOOLC_E_UNSUPPORTED, "%s: criterion %s needs scores; the model "
                            "is decision-only", an, foolc_criterion_name(crit));
    if (foolc_criterion_needs_targets(crit) && s.n > 0 && !targets)
        return foolc__error(FOOLC_E_INVALID, "%s: criterion %s needs targets", an,
                            foolc_criterion_name(crit));
    size_t d = (size_t)s.c * (size_t)s.h * (size_t)s.w;
    FOOLC__CHECK(check_overlaps(an, (size_t)s.n, d, x, labels, targets, res));
    for (int32_t i = 0; i < s.n; i++) {
        if (labels[i] < 0 || labels[i] >= o->n_classes)
            return foolc__error(FOOLC_E_INVALID, "%s: label %d of sample %d outside [0, %d)",
                                an, labels[i], i, o->n_classes);
        if (targets && (targets[i] < 0 || targets[i] >= o->n_classes))
            return foolc__error(FOOLC_E_INVALID, "%s: target %d of sample %d outside [0, %d)",
                                an, targets[i], i, o->n_classes);
        const float *xi = x + (size_t)i * d;
        for (size_t j = 0; j < d; j++)
            if (!(xi[j] >= o->lo && xi[j] <= o->hi))
                return foolc__error(FOOLC_E_INVALID, "%s: sample %d value %g at %zu is outside "
                                    "the model's box [%g, %g]", an, i, (double)xi[j], j,
                                    (double)o->lo, (double)o->hi);
    }
    return FOOLC_OK;
}

/* Re-evaluates every reported adversarial with the model (not limited by the budget) and
 * keeps only those in the box that satisfy the criterion, with distances recomputed.
 * A model may round differently in another batch composition, so a point found right on the
 * boundary can flip when re-evaluated: such a point is moved outwards from the clean input
 * by a relative 1e-4, 1e-3, then 1e-2 and re-checked before the sample is given up. */
static foolc_status verify(foolc__run *run)
{
    static const double k_push[3] = {1e-4, 1e-3, 1e-2};
    const foolc_result *res = run->res;
    int32_t m = 0;
    for (int32_t i = 0; i < run->n; i++)
        if (res->success[i]) run->todo[m++] = i;
    if (m == 0) return FOOLC_OK;
    size_t d = run->d;
    foolc__arena ar = {0};
    float *xs;
    int32_t *ids;
    uint8_t *adv;
    for (int pass = 0; pass < 2; pass++) {
        xs = foolc__arena_take(&ar, foolc__mul((size_t)m, d), sizeof *xs);
        ids = foolc__arena_take(&ar, (size_t)m, sizeof *ids);
        adv = foolc__arena_take(&ar, (size_t)m, sizeof *adv);
        if (pass == 0) FOOLC__CHECK(foolc__arena_alloc(&ar, "verification"));
    }
    for (int32_t a = 0; a < m; a++) {
        memcpy(xs + (size_t)a * d, res->x_adv + (size_t)run->todo[a] * d, d * sizeof(float));
        ids[a] = run->todo[a];
    }
    foolc__model_set_uncounted(run->model, 1);
    run->uncounted = 1;
    foolc_status st = foolc__run_is_adv(run, xs, ids, m, adv, NULL);
    int32_t nf = m, flipped = 0;
    for (int r = 0; st >= 0 && r <= 3; r++) {
        /* Accept what passed; compact the failures to the front for another push. */
        int32_t keep = 0;
        for (int32_t a = 0; a < nf; a++) {
            int32_t i = ids[a];
            const float *xa = xs + (size_t)a * d, *x0 = run->x + (size_t)i * d;
            int ok = adv[a];
            for (size_t j = 0; ok && j < d; j++) ok = xa[j] >= run->lo && xa[j] <= run->hi;
            if (ok) {
                memcpy(res->x_adv + (size_t)i * d, xa, d * sizeof(float));
                res->distance[i] = (float)foolc_distance(run->norm, x0, xa, d);
                res->success[i] = 2;   /* verified */
            } else {
                ids[keep++] = i;
            }
        }
        nf = keep;
        if (r == 0) flipped = nf;
        if (nf == 0 || r == 3) break;
        for (int32_t a = 0; a < nf; a++) {
            const float *x0 = run->x + (size_t)ids[a] * d;
            const float *xb = res->x_adv + (size_t)ids[a] * d;
            float *o = xs + (size_t)a * d;
            for (size_t j = 0; j < d; j++) {
                double v = x0[j] + (1 + k_push[r]) * ((double)xb[j] - x0[j]);
                o[j] = v < run->lo ? run->lo : v > run->hi ? run->hi : (float)v;
            }
        }
        st = foolc__run_is_adv(run, xs, ids, nf, adv, NULL);
    }
    foolc__model_set_uncounted(run->model, 0);
    run->uncounted = 0;
    /* Whatever is not verified (also after an error) is reported as not found. */
    nf = 0;
    for (int32_t i = 0; i < run->n; i++) {
        if (res->success[i] == 2) {
            res->success[i] = 1;
        } else if (res->success[i]) {
            nf++;
            res->success[i] = 0;
            res->distance[i] = INFINITY;
            memcpy(res->x_adv + (size_t)i * d, run->x + (size_t)i * d, d * sizeof(float));
        }
    }
    if (st >= 0 && nf > 0)
        foolc__error(FOOLC_NOT_FOUND, "%s: %d of %d adversarials no longer adversarial when "
                     "re-evaluated (%d flipped, %d recovered by pushing outwards)",
                     run->vt->name, nf, m, flipped, flipped - nf);
    foolc__arena_free(&ar);
    return st < 0 ? foolc__error_prefix(st, "%s: verification", run->vt->name) : FOOLC_OK;
}

/* Fills a run for n = s.n samples; run.todo has room for n indices plus n bytes. */
static foolc_status run_setup(foolc__run *run, const foolc__attack_vt *vt, foolc_model *model,
                              const foolc_criterion *crit, foolc_shape s, const float *x,
                              const int32_t *labels, const int32_t *targets, uint64_t seed,
                              const foolc_result *res)
{
    const foolc_oracle *o = foolc_model_oracle(model);
    memset(run, 0, sizeof *run);
    run->model = model;
    run->oracle = o;
    run->crit = crit;
    run->vt = vt;
    run->norm = vt->norm;
    run->shape = s;
    run->n = s.n;
    run->k = o->n_classes;
    run->d = (size_t)s.c * (size_t)s.h * (size_t)s.w;
    run->lo = o->lo;
    run->hi = o->hi;
    run->x = x;
    run->labels = labels;
    run->targets = foolc_criterion_needs_targets(crit) ? targets : NULL;
    run->seed = seed;
    run->res = res;
    run->queries = foolc__calloc((size_t)s.n, sizeof *run->queries);
    run->todo = foolc__malloc(foolc__mul((size_t)s.n, sizeof *run->todo) + (size_t)s.n);
    if (!run->queries || !run->todo) {
        foolc__free(run->queries);
        foolc__free(run->todo);
        return foolc__nomem("attack run");
    }
    return FOOLC_OK;
}

static void run_free(foolc__run *run)
{
    foolc__free(run->queries);
    foolc__free(run->todo);
    foolc__free(run->s_logits);
    foolc__free(run->s_labels);
    foolc__free(run->s_margin);
    foolc__free(run->temp);
}

foolc_status foolc__run_subattack(foolc__run *run, const char *name, const int32_t *idx,
                                  int32_t m, float *xadv, uint8_t *ok)
{
    const foolc__attack_vt *vt = foolc__attack_find(name);
    if (!vt) return unknown_attack(name);
    if (vt == run->vt)
        return foolc__error(FOOLC_E_INVALID, "%s: cannot start from itself", run->vt->name);
    if ((vt->needs & foolc_model_caps(run->model)) != vt->needs)
        return foolc__error(FOOLC_E_UNSUPPORTED, "%s: init attack %s needs more than the "
                            "model offers", run->vt->name, name);
    if (m == 0) return FOOLC_OK;
    size_t d = run->d;
    size_t nd = foolc__mul((size_t)m, d);
    foolc__arena ar = {0};
    float *xs, *dist;
    int32_t *lab, *tgt;
    uint64_t *ids;
    for (int pass = 0; pass < 2; pass++) {
        xs = foolc__arena_take(&ar, nd, sizeof *xs);
        dist = foolc__arena_take(&ar, (size_t)m, sizeof *dist);
        lab = foolc__arena_take(&ar, (size_t)m, sizeof *lab);
        tgt = foolc__arena_take(&ar, (size_t)m, sizeof *tgt);
        ids = foolc__arena_take(&ar, (size_t)m, sizeof *ids);
        if (pass == 0) FOOLC__CHECK(foolc__arena_alloc(&ar, "init attack"));
    }
    for (int32_t a = 0; a < m; a++) {
        memcpy(xs + (size_t)a * d, run->x + (size_t)idx[a] * d, d * sizeof(float));
        lab[a] = run->labels[idx[a]];
        tgt[a] = run->targets ? run->targets[idx[a]] : -1;
        ids[a] = foolc__run_id(run, idx[a]);
    }
    foolc_result res = {xadv, dist, ok, NULL};
    foolc_shape s = run->shape;
    s.n = m;
    foolc__run sub;
    foolc_status st = run_setup(&sub, vt, run->model, run->crit, s, xs, lab,
                                run->targets ? tgt : NULL, run->seed, &res);
    if (st < 0) {
        foolc__arena_free(&ar);
        return st;
    }
    /* The init attack honours the caller's cancel; its progress shows as the parent's. */
    sub.progress = run->progress;
    sub.progress_user = run->progress_user;
    sub.prog_done = run->prog_done;
    sub.prog_total = run->prog_total;
    sub.nested = 1;
    sub.ids = ids;   /* the samples keep their own random draws */
    double config[FOOLC__MAX_PARAMS];
    foolc__params_defaults(vt->params, vt->n_params, config);
    for (int32_t a = 0; a < m; a++) {
        memcpy(xadv + (size_t)a * d, xs + (size_t)a * d, d * sizeof(float));
        dist[a] = INFINITY;
        ok[a] = 0;
        sub.todo[a] = a;
    }
    sub.n_todo = m;
    st = vt->run(&sub, config);
    for (int32_t a = 0; a < m; a++) {
        foolc_counts *q = &run->queries[idx[a]];
        q->forward += sub.queries[a].forward;
        q->backward += sub.queries[a].backward;
        q->decided += sub.queries[a].decided;
    }
    run_free(&sub);
    foolc__arena_free(&ar);
    return st < 0 ? foolc__error_prefix(st, "%s: init attack %s", run->vt->name, name) : st;
}

#undef foolc_attack_run

foolc_status foolc_attack_run(foolc_attack *a, foolc_model *model, foolc_shape s,
                              const float *x, const int32_t *labels, const int32_t *targets,
                              uint64_t seed, const foolc_result *res)
{
    return foolc_attack_run_sized(a, model, s, x, labels, targets, seed, res,
                                  sizeof(foolc_result));
}

/* The result as the caller's header defines it: the fields it has, the rest NULL. */
static foolc_status result_from(const char *an, const foolc_result *res, size_t size,
                                foolc_result *out)
{
    memset(out, 0, sizeof *out);
    if (!res) return FOOLC_OK;
    size_t v1 = offsetof(foolc_result, queries) + sizeof res->queries;
    if (size < v1)
        return foolc__error(FOOLC_E_VERSION, "%s: a foolc_result of %zu bytes; this library "
                            "needs at least %zu (a program built against another foolc.h?)",
                            an, size, v1);
    memcpy(out, res, size < sizeof *out ? size : sizeof *out);
    return FOOLC_OK;
}

foolc_status foolc_attack_run_sized(foolc_attack *a, foolc_model *model, foolc_shape s,
                                    const float *x, const int32_t *labels,
                                    const int32_t *targets, uint64_t seed,
                                    const foolc_result *res_in, size_t res_size)
{
    if (!a) return foolc__error(FOOLC_E_INVALID, "attack: NULL attack");
    foolc_result res_copy;
    FOOLC__CHECK(result_from(a->vt->name, res_in, res_size, &res_copy));
    const foolc_result *res = res_in ? &res_copy : NULL;
    const foolc_criterion *crit = a->crit ? a->crit : a->dflt_crit;
    FOOLC__CHECK(check_args(a, model, s, x, labels, targets, res, crit));
    if (a->ids && a->n_ids != s.n)
        return foolc__error(FOOLC_E_INVALID, "%s: %d sample ids set for a run of %d samples",
                            a->vt->name, a->n_ids, s.n);
    if (a->sample_x && (s.n < 1 || a->n_sample % s.n != 0))
        return foolc__error(FOOLC_E_INVALID, "%s: %d per-sample starts set for a run of %d "
                            "samples (a multiple of them expected)", a->vt->name,
                            a->n_sample, s.n);
    foolc__error_clear();
    size_t d = (size_t)s.c * (size_t)s.h * (size_t)s.w;
    int32_t n = s.n;
    for (int32_t i = 0; i < n; i++) {
        memcpy(res->x_adv + (size_t)i * d, x + (size_t)i * d, d * sizeof(float));
        res->distance[i] = INFINITY;
        res->success[i] = 0;
        if (res->queries) memset(&res->queries[i], 0, sizeof res->queries[i]);
    }
    if (n == 0) return FOOLC_OK;

    foolc__run run;
    FOOLC__CHECK(run_setup(&run, a->vt, model, crit, s, x, labels, targets, seed, res));
    run.progress = a->progress;
    run.progress_user = a->progress_user;
    run.prog_total = -1;
    run.init_attack = a->init_attack;
    run.first_id = a->first_id;
    run.ids = a->ids;
    run.starts_x = a->starts_x;
    run.starts_y = a->starts_y;
    run.n_starts = a->n_starts;
    run.starts_sum = &a->starts_sum;
    run.sample_x = a->sample_x;
    run.sample_k = a->sample_x ? a->n_sample / n : 0;
    uint8_t *adv0 = (uint8_t *)(run.todo + n);

    /* Samples already adversarial at x cost nothing more: distance 0. */
    for (int32_t i = 0; i < n; i++) run.todo[i] = i;
    foolc_status st = foolc__run_is_adv(&run, x, run.todo, n, adv0, NULL);
    if (st >= 0) {
        run.n_todo = 0;
        for (int32_t i = 0; i < n; i++) {
            if (adv0[i]) foolc__run_offer(&run, i, x + (size_t)i * d);
            else run.todo[run.n_todo++] = i;
        }
        if (run.n_todo > 0) st = a->vt->run(&run, a->config);
    }
    /* Verify whatever was found, even after an error: nothing found is lost, nothing
     * unverified is reported. The attack's error stays the one returned. */
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", foolc_errmsg());
    run.progress = NULL;   /* a cancel stops the attack, never the verification */
    foolc_status vst = verify(&run);
    if (st >= 0 && vst < 0) st = vst;
    else if (st < 0) foolc__error(st, "%s", saved);
    if (res->queries) memcpy(res->queries, run.queries, (size_t)n * sizeof *run.queries);
    run_free(&run);
    if (st < 0) return st;
    for (int32_t i = 0; i < n; i++)
        if (!res->success[i]) return FOOLC_NOT_FOUND;
    return FOOLC_OK;
}
