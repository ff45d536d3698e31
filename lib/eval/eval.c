/* Evaluations (include/foolc/eval.h): set-up, the chunk grid, running chunks, best of all,
 * robust-accuracy curves, summary statistics, the clean-gradient check and the
 * gradient-masking diagnostics. record.c holds the chunk records and the resume file. */
#include "eval_impl.h"

#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#define OPTS_V1 (offsetof(foolc_eval_opts, keep_x_adv) + sizeof(int32_t))

static void defaults(foolc_eval_opts *o)
{
    memset(o, 0, sizeof *o);
    o->chunk = 25;
    o->grad_check = 1;
    o->keep_x_adv = 1;
    o->warm_start = 1;
}

foolc_status foolc_eval_defaults_sized(foolc_eval_opts *o, size_t size)
{
    foolc__error_clear();
    if (!o) return foolc__error(FOOLC_E_INVALID, "eval defaults: NULL options");
    if (size < OPTS_V1)
        return foolc__error(FOOLC_E_VERSION, "eval defaults: foolc_eval_opts of %zu bytes; "
                            "this library needs at least %zu", size, (size_t)OPTS_V1);
    foolc_eval_opts d;
    defaults(&d);
    memcpy(o, &d, size < sizeof d ? size : sizeof d);
    return FOOLC_OK;
}

static char *dup_str(const char *s)
{
    size_t l = strlen(s) + 1;
    char *p = foolc__malloc(l);
    if (p) memcpy(p, s, l);
    return p;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

foolc_status foolc_eval_new_sized(foolc_model *model, const foolc_eval_opts *o_in,
                                  size_t o_size, foolc_eval **out)
{
    foolc__error_clear();
    if (!out) return foolc__error(FOOLC_E_INVALID, "eval: NULL out");
    *out = NULL;
    if (!model) return foolc__error(FOOLC_E_INVALID, "eval: NULL model");
    foolc_eval_opts o;
    defaults(&o);
    if (o_in) {
        if (o_size < OPTS_V1)
            return foolc__error(FOOLC_E_VERSION, "eval: foolc_eval_opts of %zu bytes; this "
                                "library needs at least %zu (a program built against another "
                                "foolc.h?)", o_size, (size_t)OPTS_V1);
        memcpy(&o, o_in, o_size < sizeof o ? o_size : sizeof o);
    }
    if (o.chunk < 1)
        return foolc__error(FOOLC_E_INVALID, "eval: chunk must be at least 1, got %d",
                            (int)o.chunk);
    if (o.norms >> NC)
        return foolc__error(FOOLC_E_INVALID, "eval: norms 0x%x names no norm (bits 0 to %d)",
                            (unsigned)o.norms, NC - 1);
    foolc_eval *ev = foolc__calloc(1, sizeof *ev);
    if (!ev) return foolc__nomem("eval");
    const foolc_oracle *or = foolc_model_oracle(model);
    ev->o = o;
    ev->model = model;
    ev->s = or->input;
    ev->s.n = 1;
    ev->d = (size_t)ev->s.c * (size_t)ev->s.h * (size_t)ev->s.w;
    ev->n_classes = or->n_classes;
    ev->lo = or->lo;
    ev->hi = or->hi;
    *out = ev;
    return FOOLC_OK;
}

static void task_free(eval_task *t)
{
    foolc__free(t->name);
    foolc_attack_free(t->att);
    foolc__free(t->dist);
    foolc__free(t->ok);
    foolc__free(t->adv);
    foolc__free(t->q);
    foolc__free(t->xadv);
    for (int32_t j = 0; j < t->ncols && t->cols; j++) foolc__free(t->cols[j]);
    foolc__free(t->cols);
    foolc__free(t->val);
    foolc__free(t->done);
    foolc__free(t->msg);
}

void foolc_eval_free(foolc_eval *ev)
{
    if (!ev) return;
    if (ev->resume) fclose(ev->resume);
    for (int k = 0; k < ev->n_task; k++) task_free(&ev->t[k]);
    foolc__free(ev->t);
    foolc__free(ev->x);
    foolc__free(ev->y);
    foolc__free(ev->ids);
    foolc__free(ev->cdone);
    foolc__free(ev->meta);
    foolc__free(ev->order);
    foolc__free(ev->best);
    foolc__free(ev->best_by);
    foolc__free(ev);
}

/* --- Set-up. */

static foolc_status not_frozen(const foolc_eval *ev, const char *what)
{
    if (!ev) return foolc__error(FOOLC_E_INVALID, "eval: %s: NULL evaluation", what);
    if (ev->frozen)
        return foolc__error(FOOLC_E_INVALID, "eval: %s: the evaluation has started (a chunk "
                            "ran or was loaded)", what);
    return FOOLC_OK;
}

/* Cost classes: cheap single-step and closed-form attacks first, then iterative gradient
 * attacks, then the expensive optimisers and the query-hungry decision-based attacks, last
 * the polish attacks (they start from the best point of all the others), polish-l0 after
 * them (from the best L0 point of every other attack, polish-l1's sparse ones included). */
static int cost_rank(const char *name, unsigned needs)
{
    static const struct { const char *prefix; int rank; } k[] = {
        {"fgsm", 0}, {"fgm-", 0}, {"deepfool", 1}, {"newtonfool", 1},
        {"inversion", 2}, {"contrast", 2}, {"binarization", 2}, {"blur", 2},
        {"blended-noise", 2}, {"dataset", 2}, {"uniform-noise", 3}, {"gaussian-noise", 3},
        {"bim-", 4}, {"mifgsm", 4}, {"pgd-", 4}, {"ddn", 4}, {"fmn-", 4},
        {"apgd", 5}, {"fab-", 5}, {"cw-", 6}, {"ead", 6}, {"bb-", 6},
        {"salt-and-pepper", 7}, {"pointwise", 7}, {"hsj-", 8}, {"boundary", 8},
        {"polish-l0", 10}, {"polish-", 9},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strncmp(name, k[i].prefix, strlen(k[i].prefix))) return k[i].rank;
    return needs & FOOLC_NEEDS_GRAD ? 5 : 7;
}

/* Named sets (include/foolc/eval.h). The auto-* lists are measured (docs/eval.md, "The auto
 * set": bench/auto_pick.py on `foolc report --attacks all` of the reference CNN and MLP
 * and an adversarially trained CNN); "auto" is their union. */
static const struct { const char *name, *list, *params; } k_sets[] = {
    {"quick", "fgsm,deepfool-linf,pgd-linf,deepfool-l2,pgd-l2", NULL},
    {"auto-l0", "vfga,bim-l1,sigma-zero,bb-l0,bb-l1,polish-l0",
     "sigma-zero.restarts=3,sigma-zero.steps=667"},
    {"auto-l1", "bim-l1,bb-l0,bb-l1,fmn-l1,pdpgd-l1,salt-and-pepper,polish-l1",
     "polish-l1.rounds=3,polish-l1.steps=250,polish-l1.noise=2"},
    {"auto-l2", "bb-l2,alma-l2,apgd-l2,mifgsm-l2,boundary,polish-l2",
     "boundary.steps=1000,polish-l2.steps=100"},
    {"auto-linf", "apgd-linf,fab-linf,bb-linf,polish-linf",
     "fab-linf.steps=30,polish-linf.steps=140,polish-linf.race_decision=1"},
    {"auto", "vfga,bim-l1,apgd-linf,bb-l0,sigma-zero,bb-l2,alma-l2,bb-l1,bb-linf,apgd-l2,"
             "mifgsm-l2,fmn-l1,pdpgd-l1,fab-linf,salt-and-pepper,boundary,polish-l1,polish-l2,"
             "polish-linf,polish-l0",
     "sigma-zero.restarts=3,sigma-zero.steps=667,boundary.steps=1000,fab-linf.steps=30,"
     "polish-l1.rounds=3,polish-l1.steps=250,polish-l1.noise=2,polish-l2.steps=100,"
     "polish-linf.steps=140,polish-linf.race_decision=1"},
};

const char *foolc_eval_attack_set(const char *name)
{
    for (size_t i = 0; name && i < sizeof k_sets / sizeof k_sets[0]; i++)
        if (!strcmp(name, k_sets[i].name)) return k_sets[i].list;
    return NULL;
}

const char *foolc_eval_attack_set_params(const char *name)
{
    for (size_t i = 0; name && i < sizeof k_sets / sizeof k_sets[0]; i++)
        if (!strcmp(name, k_sets[i].name)) return k_sets[i].params ? k_sets[i].params : "";
    return NULL;
}

static int find_task(const foolc_eval *ev, const char *name)
{
    for (int k = 0; k < ev->n_task; k++)
        if (!strcmp(ev->t[k].name, name)) return k;
    return -1;
}

/* Room for one more task at position pos (the ones after it move up). */
static foolc_status insert_task(foolc_eval *ev, int pos)
{
    if (ev->n_task == ev->cap_task) {
        int cap = ev->cap_task ? 2 * ev->cap_task : 16;
        eval_task *g = foolc__realloc(ev->t, (size_t)cap * sizeof *g);
        if (!g) return foolc__nomem("eval");
        ev->t = g;
        ev->cap_task = cap;
    }
    memmove(ev->t + pos + 1, ev->t + pos, (size_t)(ev->n_task - pos) * sizeof *ev->t);
    memset(&ev->t[pos], 0, sizeof ev->t[pos]);
    ev->n_task++;
    return FOOLC_OK;
}

foolc_status foolc_eval_add_attack(foolc_eval *ev, const char *name)
{
    foolc__error_clear();
    FOOLC__CHECK(not_frozen(ev, "add attack"));
    if (!name) return foolc__error(FOOLC_E_INVALID, "eval: add attack: NULL name");
    if (find_task(ev, name) >= 0)
        return foolc__error(FOOLC_E_INVALID, "eval: attack '%s' is added twice", name);
    foolc_attack *att;
    FOOLC__CHECK(foolc_attack_new(name, &att));
    foolc_norm p;
    unsigned needs;
    foolc_status st = foolc_attack_describe(name, &p, &needs, NULL, NULL);
    char *nm = st < 0 ? NULL : dup_str(name);
    if (st >= 0 && !nm) st = foolc__nomem("eval");
    if (st >= 0 && ev->pool_n > 0) st = foolc_attack_set_starts(att, ev->pool_x, ev->pool_y,
                                                                ev->pool_n);
    int rank = cost_rank(name, needs), pos = ev->n_att;
    while (pos > 0 && ev->t[pos - 1].rank > rank) pos--; /* stable: after equal ranks */
    if (st >= 0) st = insert_task(ev, pos);
    if (st < 0) {
        foolc_attack_free(att);
        foolc__free(nm);
        return st;
    }
    eval_task *t = &ev->t[pos];
    t->name = nm;
    t->att = att;
    t->norm = p;
    t->needs = needs;
    t->rank = rank;
    ev->n_att++;
    return FOOLC_OK;
}

foolc_status foolc_eval_set(foolc_eval *ev, const char *attack, const char *key,
                            const char *value)
{
    foolc__error_clear();
    FOOLC__CHECK(not_frozen(ev, "set"));
    if (!attack) return foolc__error(FOOLC_E_INVALID, "eval: set: NULL attack name");
    int k = find_task(ev, attack);
    if (k < 0 || ev->t[k].step)
        return foolc__error(FOOLC_E_INVALID, "eval: set: '%s' is not an attack of this "
                            "evaluation", attack);
    return foolc_attack_set_text(ev->t[k].att, key, value);
}

foolc_status foolc_eval_set_starts(foolc_eval *ev, const float *x, const int32_t *y,
                                   int32_t n)
{
    foolc__error_clear();
    FOOLC__CHECK(not_frozen(ev, "set starts"));
    for (int k = 0; k < ev->n_att; k++) FOOLC__CHECK(foolc_attack_set_starts(ev->t[k].att, x, y, n));
    ev->pool_x = x;
    ev->pool_y = y;
    ev->pool_n = n;
    return FOOLC_OK;
}

foolc_status foolc_eval_add_step(foolc_eval *ev, const char *name, int32_t ncols,
                                 const char *const *col_names, foolc_eval_step_fn fn,
                                 void *user)
{
    foolc__error_clear();
    FOOLC__CHECK(not_frozen(ev, "add step"));
    if (!name || !*name || strcspn(name, " \t\n") != strlen(name) || !fn || ncols < 1 ||
        ncols > 64 || !col_names)
        return foolc__error(FOOLC_E_INVALID, "eval: add step: a name without spaces, a "
                            "function and 1 to 64 named columns are needed");
    if (find_task(ev, name) >= 0)
        return foolc__error(FOOLC_E_INVALID, "eval: add step: '%s' is taken", name);
    for (int32_t j = 0; j < ncols; j++)
        if (!col_names[j]) return foolc__error(FOOLC_E_INVALID, "eval: add step: NULL column");
    FOOLC__CHECK(insert_task(ev, ev->n_task));
    eval_task *t = &ev->t[ev->n_task - 1];
    t->step = 1;
    t->fn = fn;
    t->user = user;
    t->name = dup_str(name);
    t->cols = foolc__calloc((size_t)ncols, sizeof *t->cols);
    if (t->cols) t->ncols = ncols;
    for (int32_t j = 0; t->cols && j < ncols; j++)
        if (!(t->cols[j] = dup_str(col_names[j]))) break;
    if (!t->name || !t->cols || !t->cols[ncols - 1]) {
        task_free(t);
        ev->n_task--;
        return foolc__nomem("eval");
    }
    return FOOLC_OK;
}

void foolc_eval_set_progress(foolc_eval *ev, foolc_progress_fn fn, void *user)
{
    if (!ev) return;
    ev->progress = fn;
    ev->progress_user = user;
}

void foolc_eval_set_chunk_hook(foolc_eval *ev, foolc_eval_chunk_fn fn, void *user)
{
    if (!ev) return;
    ev->hook = fn;
    ev->hook_user = user;
}

static foolc_status take_samples(foolc_eval *ev, int32_t n)
{
    foolc__free(ev->x);
    foolc__free(ev->y);
    foolc__free(ev->ids);
    ev->x = foolc__calloc(foolc__mul((size_t)n, ev->d), sizeof *ev->x);
    ev->y = foolc__calloc((size_t)n, sizeof *ev->y);
    ev->ids = foolc__calloc((size_t)n, sizeof *ev->ids);
    ev->n = 0;
    if (!ev->x || !ev->y || !ev->ids) return foolc__nomem("eval: samples");
    ev->n = n;
    return FOOLC_OK;
}

foolc_status foolc_eval_set_samples(foolc_eval *ev, const float *x, const int32_t *labels,
                                    const uint64_t *ids, int32_t n)
{
    foolc__error_clear();
    FOOLC__CHECK(not_frozen(ev, "set samples"));
    if (n < 1 || !x || !labels)
        return foolc__error(FOOLC_E_INVALID, "eval: set samples: n >= 1 images and labels "
                            "are needed");
    for (int32_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= ev->n_classes)
            return foolc__error(FOOLC_E_INVALID, "eval: set samples: label %d of sample %d "
                                "is outside [0, %d)", (int)labels[i], (int)i,
                                (int)ev->n_classes);
    FOOLC__CHECK(take_samples(ev, n));
    memcpy(ev->x, x, (size_t)n * ev->d * sizeof *x);
    memcpy(ev->y, labels, (size_t)n * sizeof *labels);
    for (int32_t i = 0; i < n; i++) ev->ids[i] = ids ? ids[i] : (uint64_t)i;
    ev->total = ev->correct = n;
    ev->all = 1;
    ev->clean_acc = 1;
    return FOOLC_OK;
}

foolc_status foolc_eval_select(foolc_eval *ev, const foolc_data *d, int32_t n, int all)
{
    foolc__error_clear();
    FOOLC__CHECK(not_frozen(ev, "select"));
    if (!d || !d->x || !d->y || d->shape.n < 1 || n < 1)
        return foolc__error(FOOLC_E_INVALID, "eval: select: an empty data set or n < 1");
    if (d->shape.c != ev->s.c || d->shape.h != ev->s.h || d->shape.w != ev->s.w)
        return foolc__error(FOOLC_E_INVALID, "eval: select: the data are %dx%dx%d, the model "
                            "takes %dx%dx%d", (int)d->shape.c, (int)d->shape.h,
                            (int)d->shape.w, (int)ev->s.c, (int)ev->s.h, (int)ev->s.w);
    int32_t total = d->shape.n;
    int32_t *pred = foolc__malloc((size_t)total * sizeof *pred);
    int32_t *index = foolc__malloc((size_t)total * sizeof *index);
    foolc_status st = pred && index ? FOOLC_OK : foolc__nomem("eval: select");
    if (st >= 0) st = foolc_model_decision(ev->model, d->x, total, pred);
    int32_t k = 0, correct = 0;
    for (int32_t i = 0; st >= 0 && i < total; i++) {
        int ok = pred[i] == d->y[i];
        correct += ok;
        if ((ok || all) && k < n) index[k++] = i;
    }
    if (st >= 0 && k == 0)
        st = foolc__error(FOOLC_NOT_FOUND, "eval: select: the model classifies no image "
                          "correctly");
    if (st == FOOLC_OK) st = take_samples(ev, k);
    if (st == FOOLC_OK) {
        for (int32_t i = 0; i < k; i++) {
            memcpy(ev->x + (size_t)i * ev->d, d->x + (size_t)index[i] * ev->d,
                   ev->d * sizeof *ev->x);
            ev->y[i] = d->y[index[i]];
            ev->ids[i] = (uint64_t)index[i];
        }
        ev->total = total;
        ev->correct = correct;
        ev->all = all != 0;
        ev->clean_acc = (double)correct / total;
    }
    foolc__free(pred);
    foolc__free(index);
    return st;
}

/* --- The chunk grid. */

foolc_status foolc__eval_freeze(foolc_eval *ev)
{
    if (ev->frozen) return FOOLC_OK;
    if (ev->n < 1)
        return foolc__error(FOOLC_E_INVALID, "eval: no samples (foolc_eval_set_samples or "
                            "foolc_eval_select first)");
    if (ev->n_task < 1) return foolc__error(FOOLC_E_INVALID, "eval: no attack added");
    size_t n = (size_t)ev->n;
    for (int k = 0; k < ev->n_task; k++) {
        eval_task *t = &ev->t[k];
        t->done = foolc__calloc(n, 1);
        if (!t->done) return foolc__nomem("eval");
        if (t->step) {
            t->val = foolc__malloc(foolc__mul(n, (size_t)t->ncols * sizeof *t->val));
            if (!t->val) return foolc__nomem("eval");
            for (size_t i = 0; i < n * (size_t)t->ncols; i++) t->val[i] = NAN;
            continue;
        }
        t->dist = foolc__malloc(foolc__mul(n, NC * sizeof *t->dist));
        t->ok = foolc__calloc(n, 1);
        t->adv = foolc__malloc(n * sizeof *t->adv);
        t->q = foolc__calloc(n, sizeof *t->q);
        if (ev->o.keep_x_adv) t->xadv = foolc__malloc(foolc__mul(n, ev->d * sizeof *t->xadv));
        if (!t->dist || !t->ok || !t->adv || !t->q || (ev->o.keep_x_adv && !t->xadv))
            return foolc__nomem("eval");
        for (size_t i = 0; i < n * NC; i++) t->dist[i] = INFINITY;
        for (size_t i = 0; i < n; i++) t->adv[i] = -1;
        if (t->xadv) memcpy(t->xadv, ev->x, n * ev->d * sizeof *ev->x);
    }
    ev->per_task = (ev->n + ev->o.chunk - 1) / ev->o.chunk;
    size_t chunks = (size_t)ev->per_task * (size_t)ev->n_task;
    ev->cdone = foolc__calloc(chunks, 1);
    ev->meta = foolc__calloc(chunks, sizeof *ev->meta);
    ev->order = foolc__calloc(chunks, sizeof *ev->order);
    ev->best = foolc__malloc(foolc__mul(n, NC * sizeof *ev->best));
    ev->best_by = foolc__malloc(foolc__mul(n, NC * sizeof *ev->best_by));
    if (!ev->cdone || !ev->meta || !ev->order || !ev->best || !ev->best_by)
        return foolc__nomem("eval");
    ev->frozen = 1;
    ev->best_stale = 1;
    return FOOLC_OK;
}

foolc_status foolc_eval_start(foolc_eval *ev)
{
    foolc__error_clear();
    if (!ev) return foolc__error(FOOLC_E_INVALID, "eval: start: NULL evaluation");
    return foolc__eval_freeze(ev);
}

void foolc__eval_chunk_range(const foolc_eval *ev, int32_t c, int *t, int32_t *b, int32_t *m)
{
    *t = c / ev->per_task;
    *b = (c % ev->per_task) * ev->o.chunk;
    *m = ev->n - *b < ev->o.chunk ? ev->n - *b : ev->o.chunk;
}

int32_t foolc_eval_chunk_count(const foolc_eval *ev)
{
    if (!ev || ev->n < 1) return 0;
    return ev->n_task * ((ev->n + ev->o.chunk - 1) / ev->o.chunk);
}

foolc_status foolc_eval_chunk_info(const foolc_eval *ev, int32_t c, int32_t *task,
                                   int32_t *first, int32_t *count, int *done)
{
    if (!ev || c < 0 || c >= foolc_eval_chunk_count(ev))
        return foolc__error(FOOLC_E_INVALID, "eval: chunk %d is out of range", (int)c);
    int32_t per = (ev->n + ev->o.chunk - 1) / ev->o.chunk, b = (c % per) * ev->o.chunk;
    if (task) *task = c / per;
    if (first) *first = b;
    if (count) *count = ev->n - b < ev->o.chunk ? ev->n - b : ev->o.chunk;
    if (done) *done = ev->cdone ? ev->cdone[c] : 0;
    return FOOLC_OK;
}

/* --- Running. */

/* The attacks that take warm starts (foolc_attack_set_sample_starts): the Brendel-Bethge
 * walks, which refine the point they start from, and the polish attacks, which exist for
 * it (they run last: cost rank 9, from the best point of every attack). Boundary and
 * HopSkipJump are worth their cost for the other boundary regions their walks from noise
 * reach: from the best point so far they stall within a few hundred queries and find
 * nothing closer (adversarially trained CNN, 30 images: docs/eval.md, "Warm starts"), so
 * they keep their own start. */
static int takes_warm(const eval_task *t)
{
    return !t->step && (!strncmp(t->name, "bb-", 3) || !strncmp(t->name, "polish-", 7));
}

static int warm_on(const foolc_eval *ev, int k)
{
    return ev->o.warm_start && ev->o.keep_x_adv && k > 0 && k < ev->n_att &&
           takes_warm(&ev->t[k]);
}

int32_t foolc_eval_chunk_needs(const foolc_eval *ev, int32_t c, int32_t *needs, int32_t cap)
{
    if (!ev || c < 0 || c >= foolc_eval_chunk_count(ev)) return 0;
    int32_t per = (ev->n + ev->o.chunk - 1) / ev->o.chunk;
    int k = (int)(c / per);
    if (!warm_on(ev, k)) return 0;
    for (int j = 0; j < k && needs; j++)
        if (j < cap) needs[j] = j * per + c % per;
    return k;
}

/* Side starts, whose chains race (fmn.c, warm_descents). polish-l1 also starts from the point
 * of every L0 attack before it (sparse starts): the smallest L1 perturbation often changes
 * few values, in a region the L1 attacks' descents do not reach: on the reference CNN (50
 * images), polish-l1 from sigma-zero's or bb-l0's points alone lowers the best L1 of every
 * attack of `all` on 7 images each, by up to 15 % (docs/eval.md, "Warm starts").
 * polish-linf also starts from the point of every gradient Linf attack before it: on the
 * adversarially trained CNN (30 images) the best Linf point of `all` comes from polish-linf
 * run from bb-linf's, apgd-linf's, fmn-linf's or fab-linf's point, each on some images, not
 * only from the closest one. */
static int side_source(const foolc_eval *ev, int k, int j)
{
    const eval_task *t = &ev->t[k], *u = &ev->t[j];
    if (u->step) return 0;
    if (!strcmp(t->name, "polish-l1")) return u->norm == FOOLC_L0;
    if (!strcmp(t->name, "polish-linf"))
        return u->norm == FOOLC_LINF && (u->needs & FOOLC_NEEDS_GRAD);
    return 0;
}

/* The starts per sample attack k takes: for the polish attacks the best point so far and the
 * best of the decision-based attacks (then the side starts), one for bb-*. */
static int32_t warm_rows(const foolc_eval *ev, int k)
{
    if (strncmp(ev->t[k].name, "polish-", 7)) return 1;
    int32_t r = 2;
    for (int j = 0; j < k; j++) r += side_source(ev, k, j);
    return r;
}

/* The closest point to sample i in norm p among the attacks j < k (when `decision`, only the
 * decision-based walks of the other norms: pointwise's and salt-and-pepper's sparse points,
 * closer in L1 than boundary's on most images, would take the row whose point in another
 * region is what it is for; they are polish-l1's side starts): its attack, or -1 where
 * none broke the sample. */
static int closest(const foolc_eval *ev, int k, int32_t i, foolc_norm p, int decision)
{
    float best = INFINITY;
    int src = -1;
    for (int j = 0; j < k; j++) {
        const eval_task *u = &ev->t[j];
        float v = u->dist[(size_t)i * NC + p];
        if (decision && ((u->needs & FOOLC_NEEDS_GRAD) || u->norm == FOOLC_L0)) continue;
        if (u->ok[i] && v < best) {
            best = v;
            src = j;
        }
    }
    return src;
}

/* Attack k's warm starts for samples b..b+m-1 (*rows per sample, warm_rows): per sample,
 * the point of the attacks before it (in the evaluation's order) closest in its norm (the
 * first on ties); for the polish attacks then the closest of the decision-based attacks
 * before it, which explore regions the gradient attacks miss (where that is another
 * attack's point), and for polish-l1 and polish-linf the point of each side source before it
 * (side_source: L0 attacks, gradient Linf attacks; where that attack broke the sample and its
 * point is not already a row); NaN rows where there is none; *out NULL when the attack takes
 * none.
 * Every earlier attack's chunk of these samples must be recorded: their records hold the
 * points, so the starts are the same after a resume, over processes and whatever the chunk
 * size. */
static foolc_status warm_starts(foolc_eval *ev, int k, int32_t b, int32_t m, float **out,
                                int32_t *rows)
{
    *out = NULL;
    *rows = 0;
    if (!warm_on(ev, k)) return FOOLC_OK;
    eval_task *t = &ev->t[k];
    for (int j = 0; j < k; j++)
        for (int32_t i = b; i < b + m; i++)
            if (!ev->t[j].done[i])
                return foolc__error(FOOLC_E_INVALID, "eval: attack %s on samples %d-%d: its "
                                    "warm starts need attack %s's results for sample %d "
                                    "first (chunk %d; foolc_eval_chunk_needs), or warm_start "
                                    "0", t->name, (int)b, (int)(b + m - 1), ev->t[j].name,
                                    (int)i, (int)(j * ev->per_task + i / ev->o.chunk));
    size_t d = ev->d;
    int32_t r = warm_rows(ev, k);
    float *ws = foolc__malloc(foolc__mul(foolc__mul((size_t)m * (size_t)r, d), sizeof *ws));
    if (!ws) return foolc__nomem("eval: warm starts");
    int any = 0;
    for (int32_t i = b; i < b + m; i++) {
        int first = closest(ev, k, i, t->norm, 0);
        int dec = r > 1 ? closest(ev, k, i, t->norm, 1) : -1;
        for (int32_t q = 0, sj = 0; q < r; q++) {
            int src = q == 0 ? first : q == 1 && dec != first ? dec : -1;
            if (q >= 2) {   /* the next side source, unless its point is already a row */
                while (!side_source(ev, k, sj)) sj++;
                src = ev->t[sj].ok[i] && sj != first && sj != dec ? sj : -1;
                sj++;
            }
            float *row = ws + ((size_t)(i - b) * (size_t)r + (size_t)q) * d;
            if (src >= 0) {
                memcpy(row, ev->t[src].xadv + (size_t)i * d, d * sizeof *row);
                any = 1;
            } else {
                for (size_t j = 0; j < d; j++) row[j] = NAN;
            }
        }
    }
    if (any) {
        *out = ws;
        *rows = r;
    } else {
        foolc__free(ws);
    }
    return FOOLC_OK;
}

typedef struct chunk_cb {
    foolc_eval *ev;
    int64_t base, chunk, total;
    int cancelled;
} chunk_cb;

static int on_progress(void *user, int64_t done, int64_t total)
{
    chunk_cb *c = user;
    if (!c->ev->progress) return 0;
    int64_t part = total > 0 ? done * c->chunk / total : 0;
    if (c->ev->progress(c->ev->progress_user, c->base + (part < c->chunk ? part : c->chunk),
                        c->total))
        c->cancelled = 1;
    return c->cancelled;
}

static void keep_error(eval_task *t, foolc_status st, const char *msg)
{
    if (st >= 0 || t->st < 0) return;
    t->st = st;
    t->msg = dup_str(msg);
}

/* Attack t on samples b..b+m-1 under the chunk's budget; then the model's label and every
 * norm of each returned point. Returns the evaluation's own status (an error: nothing to
 * record); the attack's status in *ast and its message in *msg (malloc'd). */
static foolc_status run_attack_chunk(foolc_eval *ev, eval_task *t, int32_t b, int32_t m,
                                     chunk_cb *cb, double *sec, foolc_status *ast, char **msg)
{
    foolc_shape s = {m, ev->s.c, ev->s.h, ev->s.w};
    float *dist = foolc__malloc((size_t)m * sizeof *dist);
    float *xa = foolc__malloc((size_t)m * ev->d * sizeof *xa);
    uint8_t *ok = foolc__malloc((size_t)m);
    foolc_counts *q = foolc__calloc((size_t)m, sizeof *q);
    float *ws = NULL;
    int32_t rows = 0;
    foolc_status st = dist && xa && ok && q ? FOOLC_OK : foolc__nomem("eval: chunk");
    if (st >= 0) st = warm_starts(ev, (int)(t - ev->t), b, m, &ws, &rows);
    if (st >= 0) st = foolc_attack_set_ids(t->att, ev->ids + b, m);
    if (st >= 0 && ws) st = foolc_attack_set_sample_starts(t->att, ws, m * rows);
    if (st >= 0) {
        foolc_attack_set_progress(t->att, on_progress, cb);
        foolc_result res = {xa, dist, ok, q};
        foolc_counts c0 = foolc_model_counts(ev->model);
        uint64_t budget = ev->o.budget;
        (void)foolc_model_set_budget(ev->model, budget ? budget * (uint64_t)m + c0.forward +
                                                         c0.decided : 0);
        double t0 = now();
        *ast = foolc_attack_run(t->att, ev->model, s, ev->x + (size_t)b * ev->d, ev->y + b,
                                NULL, ev->o.seed, &res);
        *sec = now() - t0;
        if (*ast < 0) *msg = dup_str(foolc_errmsg());
        (void)foolc_model_set_budget(ev->model, 0);
        foolc_attack_set_progress(t->att, NULL, NULL);
        if (foolc_attack_set_ids(t->att, NULL, 0) < 0 ||
            foolc_attack_set_sample_starts(t->att, NULL, 0) < 0)
            st = FOOLC_E_INTERNAL;
        if (cb->cancelled) st = foolc__error(FOOLC_E_CANCELLED, "eval: cancelled");
    }
    if (st >= 0) {
        ev->best_stale = 1;
        if (foolc_model_decision(ev->model, xa, m, t->adv + b) < 0)
            for (int32_t i = b; i < b + m; i++) t->adv[i] = -1;
        if (t->xadv) memcpy(t->xadv + (size_t)b * ev->d, xa, (size_t)m * ev->d * sizeof *xa);
        for (int32_t i = b; i < b + m; i++) {
            const float *xi = xa + (size_t)(i - b) * ev->d;
            t->ok[i] = ok[i - b];
            t->q[i] = q[i - b];
            for (int p = 0; p < NC; p++)
                t->dist[(size_t)i * NC + p] =
                    t->ok[i] ? (float)foolc_distance((foolc_norm)p, ev->x + (size_t)i * ev->d,
                                                     xi, ev->d)
                             : INFINITY;
        }
    }
    foolc__free(ws);
    foolc__free(dist);
    foolc__free(xa);
    foolc__free(ok);
    foolc__free(q);
    return st;
}

static foolc_status run_step_chunk(foolc_eval *ev, eval_task *t, int32_t b, int32_t m,
                                   double *sec, foolc_status *ast, char **msg)
{
    double *out = foolc__malloc(foolc__mul((size_t)m, (size_t)t->ncols * sizeof *out));
    if (!out) return foolc__nomem("eval: step");
    for (size_t i = 0; i < (size_t)m * (size_t)t->ncols; i++) out[i] = NAN;
    double t0 = now();
    *ast = t->fn(t->user, ev, ev->model, b, m, ev->x + (size_t)b * ev->d, ev->y + b,
                 ev->ids + b, out);
    *sec = now() - t0;
    if (*ast == FOOLC_E_CANCELLED) {
        foolc__free(out);
        return foolc__error(FOOLC_E_CANCELLED, "eval: step %s: cancelled", t->name);
    }
    if (*ast < 0) {
        *msg = dup_str(foolc_errmsg());
        for (size_t i = 0; i < (size_t)m * (size_t)t->ncols; i++) out[i] = NAN;
    }
    memcpy(t->val + (size_t)b * t->ncols, out, (size_t)m * t->ncols * sizeof *out);
    foolc__free(out);
    return FOOLC_OK;
}

static foolc_status run_chunk(foolc_eval *ev, int32_t c, chunk_cb *cb)
{
    foolc__error_clear();
    if (!ev) return foolc__error(FOOLC_E_INVALID, "eval: NULL evaluation");
    FOOLC__CHECK(foolc__eval_freeze(ev));
    if (c < 0 || c >= ev->per_task * ev->n_task)
        return foolc__error(FOOLC_E_INVALID, "eval: chunk %d is out of range", (int)c);
    int k;
    int32_t b, m;
    foolc__eval_chunk_range(ev, c, &k, &b, &m);
    eval_task *t = &ev->t[k];
    double sec = 0;
    foolc_status ast = FOOLC_OK;
    char *msg = NULL;
    cb->chunk = m;
    foolc_status st = t->step ? run_step_chunk(ev, t, b, m, &sec, &ast, &msg)
                              : run_attack_chunk(ev, t, b, m, cb, &sec, &ast, &msg);
    if (st < 0) {
        foolc__free(msg);
        return st;
    }
    keep_error(t, ast, msg ? msg : "");
    for (int32_t i = b; i < b + m; i++) t->done[i] = 1;
    int newly = !ev->cdone[c];
    if (!newly) t->seconds -= ev->meta[c].sec;
    t->seconds += sec;
    ev->meta[c].st = ast < 0 ? (int)ast : 0;
    ev->meta[c].sec = sec;
    st = foolc__eval_recorded(ev, c, newly);
    if (st >= 0 && ast < 0) st = foolc__error(ast, "%s", msg ? msg : "");
    else if (st >= 0) st = ast;
    foolc__free(msg);
    return st;
}

foolc_status foolc_eval_run_chunk(foolc_eval *ev, int32_t c)
{
    chunk_cb cb = {ev, 0, 0, 0, 0};
    if (ev && c >= 0 && c < foolc_eval_chunk_count(ev)) {
        int32_t m = 0;
        if (foolc_eval_chunk_info(ev, c, NULL, NULL, &m, NULL) >= 0) cb.total = m;
    }
    return run_chunk(ev, c, &cb);
}

foolc_status foolc_eval_run(foolc_eval *ev)
{
    foolc__error_clear();
    if (!ev) return foolc__error(FOOLC_E_INVALID, "eval: NULL evaluation");
    FOOLC__CHECK(foolc__eval_freeze(ev));
    if (ev->o.grad_check && !ev->grad_done) FOOLC__CHECK(foolc_eval_grad_check(ev));
    int32_t chunks = ev->per_task * ev->n_task;
    chunk_cb cb = {ev, 0, 0, 0, 0};
    for (int32_t c = 0; c < chunks; c++) {
        int k;
        int32_t b, m;
        foolc__eval_chunk_range(ev, c, &k, &b, &m);
        if (!ev->cdone[c]) cb.total += m;
    }
    foolc_status first = FOOLC_OK;
    for (int32_t c = 0; c < chunks; c++) {
        if (ev->cdone[c]) continue;
        foolc_status st = run_chunk(ev, c, &cb);
        if (st == FOOLC_E_CANCELLED || !ev->cdone[c]) return st < 0 ? st : FOOLC_E_INTERNAL;
        if (st < 0 && first >= 0) first = st;
        cb.base += cb.chunk;
    }
    if (first < 0) {
        for (int k = 0; k < ev->n_task; k++)
            if (ev->t[k].st == first) return foolc__error(first, "%s: %s", ev->t[k].name,
                                                          ev->t[k].msg ? ev->t[k].msg : "");
        return first;
    }
    foolc__error_clear();
    const float *best = foolc_eval_best(ev);
    uint32_t norms = foolc_eval_norms(ev);
    for (int32_t i = 0; i < ev->n * NC; i++)
        if (norms >> (i % NC) & 1 && !isfinite(best[i])) return FOOLC_NOT_FOUND;
    return FOOLC_OK;
}

/* --- The clean-gradient check: a margin loss z_y - max_{j != y} z_j. */
typedef struct margin_ctx { const int32_t *y; } margin_ctx;

static int margin_loss(void *user, int32_t first, const float *z, int32_t n, int32_t k,
                       float *dz, float *loss)
{
    const margin_ctx *c = user;
    for (int32_t i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * k;
        float *g = dz + (size_t)i * k;
        int32_t y = c->y[first + i], o = y == 0 ? 1 : 0;
        for (int32_t j = 0; j < k; j++) {
            g[j] = 0;
            if (j != y && zi[j] > zi[o]) o = j;
        }
        g[y] = 1;
        g[o] = -1;
        if (loss) loss[i] = zi[y] - zi[o];
    }
    return 0;
}

foolc_status foolc_eval_grad_check(foolc_eval *ev)
{
    foolc__error_clear();
    if (!ev) return foolc__error(FOOLC_E_INVALID, "eval: NULL evaluation");
    if (ev->n < 1) return foolc__error(FOOLC_E_INVALID, "eval: grad check: no samples");
    ev->grad_done = 1;
    ev->grad_checked = 0;
    ev->grad_zero = ev->grad_nonfinite = 0;
    if (!(foolc_model_caps(ev->model) & FOOLC_NEEDS_GRAD)) return FOOLC_OK;
    float *g = foolc__malloc(ev->d * 64 * sizeof *g);
    float *z = foolc__malloc((size_t)64 * ev->n_classes * sizeof *z);
    foolc_status rs = g && z ? FOOLC_OK : foolc__nomem("eval: grad check");
    if (rs < 0) goto out;
    ev->grad_checked = 1;
    for (int32_t b = 0; b < ev->n; b += 64) {
        int32_t m = ev->n - b < 64 ? ev->n - b : 64;
        margin_ctx c = {ev->y + b};
        foolc_status st = foolc_model_value_and_grad(ev->model, ev->x + (size_t)b * ev->d, m,
                                                     margin_loss, &c, z, NULL, g);
        if (st == FOOLC_E_NONFINITE) { /* count sample by sample */
            for (int32_t i = 0; i < m; i++) {
                margin_ctx c1 = {ev->y + b + i};
                st = foolc_model_value_and_grad(ev->model, ev->x + (size_t)(b + i) * ev->d, 1,
                                                margin_loss, &c1, z, NULL, g);
                if (st < 0) { ev->grad_nonfinite++; continue; }
                double s = 0;
                for (size_t q = 0; q < ev->d; q++) s += fabs(g[q]);
                ev->grad_zero += s == 0;
            }
            continue;
        }
        if (st < 0) { ev->grad_checked = 0; break; }
        for (int32_t i = 0; i < m; i++) {
            double s = 0;
            for (size_t q = 0; q < ev->d; q++) s += fabs(g[(size_t)i * ev->d + q]);
            ev->grad_zero += s == 0;
            ev->grad_nonfinite += !isfinite(s);
        }
    }
    foolc__error_clear();
out:
    foolc__free(g);
    foolc__free(z);
    return rs;
}

/* --- Results. */

int32_t foolc_eval_samples(const foolc_eval *ev) { return ev ? ev->n : 0; }
const float *foolc_eval_x(const foolc_eval *ev) { return ev ? ev->x : NULL; }
const int32_t *foolc_eval_labels(const foolc_eval *ev) { return ev ? ev->y : NULL; }
const uint64_t *foolc_eval_ids(const foolc_eval *ev) { return ev ? ev->ids : NULL; }

void foolc_eval_clean(const foolc_eval *ev, int32_t *total, int32_t *correct)
{
    if (total) *total = ev ? ev->total : 0;
    if (correct) *correct = ev ? ev->correct : 0;
}

int32_t foolc_eval_attacks(const foolc_eval *ev) { return ev ? ev->n_att : 0; }

static const eval_task *attack(const foolc_eval *ev, int32_t t)
{
    return ev && t >= 0 && t < ev->n_att ? &ev->t[t] : NULL;
}

const char *foolc_eval_attack_name(const foolc_eval *ev, int32_t t)
{
    const eval_task *a = attack(ev, t);
    return a ? a->name : NULL;
}

foolc_norm foolc_eval_attack_norm(const foolc_eval *ev, int32_t t)
{
    const eval_task *a = attack(ev, t);
    return a ? a->norm : FOOLC_NORM_COUNT;
}

unsigned foolc_eval_attack_needs(const foolc_eval *ev, int32_t t)
{
    const eval_task *a = attack(ev, t);
    return a ? a->needs : 0;
}

foolc_status foolc_eval_attack_status(const foolc_eval *ev, int32_t t, const char **message)
{
    const eval_task *a = attack(ev, t);
    if (message) *message = a && a->msg ? a->msg : "";
    return a ? a->st : FOOLC_E_INVALID;
}

double foolc_eval_attack_seconds(const foolc_eval *ev, int32_t t)
{
    const eval_task *a = attack(ev, t);
    return a ? a->seconds : NAN;
}

#define ACCESSOR(type, fname, field)                                                         \
    const type *fname(const foolc_eval *ev, int32_t t)                                     \
    {                                                                                        \
        const eval_task *a = attack(ev, t);                                                \
        return a ? a->field : NULL;                                                          \
    }
ACCESSOR(float, foolc_eval_dist, dist)
ACCESSOR(uint8_t, foolc_eval_success, ok)
ACCESSOR(int32_t, foolc_eval_adv_label, adv)
ACCESSOR(foolc_counts, foolc_eval_queries, q)
ACCESSOR(float, foolc_eval_x_adv, xadv)
ACCESSOR(uint8_t, foolc_eval_done, done)
#undef ACCESSOR

static void update_best(foolc_eval *ev)
{
    if (!ev->best || !ev->best_stale) return;
    ev->best_stale = 0;
    size_t len = (size_t)ev->n * NC;
    for (size_t i = 0; i < len; i++) {
        ev->best[i] = INFINITY;
        ev->best_by[i] = -1;
        for (int t = 0; t < ev->n_att; t++)
            if (ev->t[t].dist[i] < ev->best[i]) {
                ev->best[i] = ev->t[t].dist[i];
                ev->best_by[i] = t;
            }
    }
}

const float *foolc_eval_best(foolc_eval *ev)
{
    if (!ev || (!ev->frozen && foolc__eval_freeze(ev) < 0)) return NULL;
    update_best(ev);
    return ev->best;
}

const int32_t *foolc_eval_best_by(foolc_eval *ev)
{
    if (!ev || (!ev->frozen && foolc__eval_freeze(ev) < 0)) return NULL;
    update_best(ev);
    return ev->best_by;
}

uint32_t foolc_eval_norms(const foolc_eval *ev)
{
    if (!ev) return 0;
    if (ev->o.norms) return ev->o.norms;
    uint32_t m = 0;
    for (int t = 0; t < ev->n_att; t++) m |= 1u << ev->t[t].norm;
    return m;
}

/* The distances of curve t in norm p (stride NC), or NULL. */
static const float *curve(foolc_eval *ev, int32_t t, foolc_norm p)
{
    if (!ev || (int)p < 0 || p >= FOOLC_NORM_COUNT) return NULL;
    if (t == FOOLC_EVAL_BEST) {
        const float *b = foolc_eval_best(ev);
        return b ? b + p : NULL;
    }
    const eval_task *a = attack(ev, t);
    return a && a->dist ? a->dist + p : NULL;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static double quantile(const float *v, int32_t n, size_t stride, double q)
{
    if (n <= 0) return NAN;
    float *s = foolc__malloc((size_t)n * sizeof *s);
    if (!s) return NAN;
    for (int32_t i = 0; i < n; i++) s[i] = v[(size_t)i * stride];
    qsort(s, (size_t)n, sizeof *s, cmp_float);
    double pos = q * (n - 1), lo = floor(pos), f = pos - lo;
    double a = s[(int32_t)lo], b = s[(int32_t)lo + (f > 0 && lo + 1 < n)];
    foolc__free(s);
    if (f == 0 || a == b) return a;
    if (isinf(b)) return INFINITY;
    return a + f * (b - a);
}

static int32_t count_finite(const float *v, int32_t n, size_t stride)
{
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) k += isfinite(v[(size_t)i * stride]) != 0;
    return k;
}

static double robust(const foolc_eval *ev, const float *v, double eps)
{
    int32_t k = 0;
    for (int32_t i = 0; i < ev->n; i++) k += !(v[(size_t)i * NC] <= eps);
    double frac = (double)k / ev->n;
    return ev->all ? frac : ev->clean_acc * frac;
}

double foolc_eval_robust(foolc_eval *ev, int32_t t, foolc_norm p, double eps)
{
    const float *v = curve(ev, t, p);
    return v ? robust(ev, v, eps) : NAN;
}

double foolc_eval_quantile(foolc_eval *ev, int32_t t, foolc_norm p, double q)
{
    const float *v = curve(ev, t, p);
    return v && q >= 0 && q <= 1 ? quantile(v, ev->n, NC, q) : NAN;
}

double foolc_eval_mean(foolc_eval *ev, int32_t t, foolc_norm p)
{
    const float *v = curve(ev, t, p);
    if (!v) return NAN;
    double sum = 0;
    int32_t k = 0;
    for (int32_t i = 0; i < ev->n; i++)
        if (isfinite(v[(size_t)i * NC])) { sum += v[(size_t)i * NC]; k++; }
    return k ? sum / k : NAN;
}

double foolc_eval_success_rate(foolc_eval *ev, int32_t t, foolc_norm p)
{
    const float *v = curve(ev, t, p);
    return v ? (double)count_finite(v, ev->n, NC) / ev->n : NAN;
}

static double nice_step(double x)
{
    double e = pow(10, floor(log10(x))), f = x / e;
    return e * (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10);
}

int32_t foolc_eval_grid(foolc_eval *ev, foolc_norm norm, int wide, double *eps, int32_t cap)
{
    const float *best = curve(ev, FOOLC_EVAL_BEST, norm);
    if (!best || !eps || cap < 1) return 0;
    int p = (int)norm;
    double hi = 0;
    for (int32_t i = 0; i < ev->n; i++) {
        float b = best[(size_t)i * NC];
        if (isfinite(b) && b > hi) hi = b;
        for (int t = 0; t < ev->n_att && wide; t++) {
            float v = ev->t[t].dist[(size_t)i * NC + p];
            if ((int)ev->t[t].norm == p && isfinite(v) && v > hi) hi = v;
        }
    }
    if (!(hi > 0)) hi = ev->hi - ev->lo;
    double s = nice_step(hi / 8);
    int32_t k = 0;
    for (; k < cap; k++) {
        eps[k] = s * k;
        if (eps[k] >= hi * (1 - 1e-9)) { k++; break; }
    }
    return k;
}

void foolc_eval_grad_info(const foolc_eval *ev, int *checked, int32_t *zero,
                          int32_t *nonfinite)
{
    if (checked) *checked = ev ? ev->grad_checked : 0;
    if (zero) *zero = ev ? ev->grad_zero : 0;
    if (nonfinite) *nonfinite = ev ? ev->grad_nonfinite : 0;
}

static int is_decision_only(unsigned needs)
{
    return !(needs & (FOOLC_NEEDS_GRAD | FOOLC_NEEDS_SCORES));
}

static int diag_line(foolc_eval *ev, int k, int warn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int diag_line(foolc_eval *ev, int k, int warn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->diag[k], EVAL_MSG, fmt, ap);
    va_end(ap);
    ev->diag_warn[k] = warn;
    return k + 1;
}

int32_t foolc_eval_diagnostics(foolc_eval *ev)
{
    const float *best = ev ? foolc_eval_best(ev) : NULL;
    if (!best) return 0;
    int k = 0, max = EVAL_MAX_DIAG;
    uint32_t norms = foolc_eval_norms(ev);
    int32_t n = ev->n;
    if (ev->grad_checked) {
        int32_t bad = ev->grad_zero + ev->grad_nonfinite;
        int warn = bad * 10 >= n && bad;
        k = diag_line(ev, k, warn, "gradients: %d of %d clean samples have an all-zero input "
                      "gradient of the logit margin, %d a non-finite one%s", ev->grad_zero,
                      n, ev->grad_nonfinite,
                      warn ? ": gradient attacks cannot be trusted here" : "");
    } else {
        k = diag_line(ev, k, 0, "gradients: not checked (the model offers none)");
    }
    for (int p = 0; p < NC && k < max; p++) {
        if (!(norms >> p & 1)) continue;
        int ng = 0, nd = 0;
        for (int t = 0; t < ev->n_att; t++)
            if ((int)ev->t[t].norm == p) {
                ng += (ev->t[t].needs & FOOLC_NEEDS_GRAD) != 0;
                nd += is_decision_only(ev->t[t].needs);
            }
        if (ng && nd) {
            int32_t much = 0;
            for (int32_t i = 0; i < n; i++) {
                double g = INFINITY, d = INFINITY;
                for (int t = 0; t < ev->n_att; t++) {
                    const eval_task *a = &ev->t[t];
                    double v = a->dist[(size_t)i * NC + p];
                    if ((int)a->norm != p) continue;
                    if (a->needs & FOOLC_NEEDS_GRAD) g = fmin(g, v);
                    else if (is_decision_only(a->needs)) d = fmin(d, v);
                }
                much += d < 0.5 * g;
            }
            int warn = much * 10 > n;
            k = diag_line(ev, k, warn, "%s: decision-based attacks found less than half the "
                          "gradient attacks' perturbation on %d of %d samples%s",
                          foolc_norm_name((foolc_norm)p), much, n,
                          warn ? ": the gradients may be masked or the gradient attacks too "
                                 "weak" : "");
        }
        if (k >= max) break;
        int32_t unbroken = n - count_finite(best + p, n, NC);
        if (unbroken)
            k = diag_line(ev, k, 1, "%s: robust accuracy stays at %.4f with epsilon the whole "
                          "box: no attack broke %d of %d samples (an unbounded attack should)",
                          foolc_norm_name((foolc_norm)p), robust(ev, best + p, INFINITY),
                          unbroken, n);
        else
            k = diag_line(ev, k, 0, "%s: robust accuracy reaches 0 (every sample broken)",
                          foolc_norm_name((foolc_norm)p));
    }
    return k;
}

const char *foolc_eval_diagnostic(foolc_eval *ev, int32_t k, int *warn)
{
    if (warn) *warn = 0;
    if (!ev || k < 0 || k >= EVAL_MAX_DIAG) return NULL;
    if (warn) *warn = ev->diag_warn[k];
    return ev->diag[k];
}

/* --- Steps. */

int32_t foolc_eval_steps(const foolc_eval *ev) { return ev ? ev->n_task - ev->n_att : 0; }

static const eval_task *step(const foolc_eval *ev, int32_t s)
{
    return ev && s >= 0 && s < ev->n_task - ev->n_att ? &ev->t[ev->n_att + s] : NULL;
}

const char *foolc_eval_step_name(const foolc_eval *ev, int32_t s)
{
    const eval_task *t = step(ev, s);
    return t ? t->name : NULL;
}

int32_t foolc_eval_step_columns(const foolc_eval *ev, int32_t s)
{
    const eval_task *t = step(ev, s);
    return t ? t->ncols : 0;
}

const char *foolc_eval_step_column(const foolc_eval *ev, int32_t s, int32_t j)
{
    const eval_task *t = step(ev, s);
    return t && j >= 0 && j < t->ncols ? t->cols[j] : NULL;
}

const double *foolc_eval_step_values(const foolc_eval *ev, int32_t s)
{
    const eval_task *t = step(ev, s);
    return t ? t->val : NULL;
}

const uint8_t *foolc_eval_step_done(const foolc_eval *ev, int32_t s)
{
    const eval_task *t = step(ev, s);
    return t ? t->done : NULL;
}
