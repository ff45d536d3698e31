/* DeepFool in L2 and Linf (Moosavi-Dezfooli et al., arXiv:1511.04599), batched: at each step
 * the closest linearised boundary among the top-`candidates` classes, all their gradients from
 * one forward+backward over the image replicated once per class; steps accumulate and are
 * applied with (1 + overshoot), trimmed at the end by a search along the same path. At the
 * end the registry entries of deepfool-l2 and deepfool-linf. */
#include "arena.h"
#include "gradient.h"
#include "minnorm/minnorm.h"
#include "numeric.h"

#include <math.h>
#include <string.h>

/* One chunk of DeepFool's samples and its buffers (one arena). */
typedef struct df_state {
    foolc__run *run;
    const foolc__deepfool_opts *o;
    const int32_t *todo;    /* the chunk's samples */
    int32_t m, rows;        /* samples; gradient rows per sample */
    int multi;              /* misclassification: one row per candidate class */
    float *ptot;            /* m*d accumulated perturbations, by position */
    float *xc;              /* m*d current iterates */
    float *bx, *bg, *bz, *bf;   /* the replicated batch: images, gradients, logits, losses */
    float *z0;              /* m*k clean logits */
    int32_t *pos, *neg, *bid, *cls, *at;  /* class pairs and samples per row; candidates;
                                             position of each sample (run->n) */
    uint8_t *found, *badv, *act;
    foolc__arena mem;
} df_state;

/* clip(x0 + t p): the DeepFool point at overshoot factor t, for the final search. */
static foolc_status df_make(void *ctx, foolc__run *run, const int32_t *idx, const double *t,
                            int32_t m, float *out, uint8_t *adv)
{
    (void)adv;
    const df_state *s = ctx;
    size_t d = run->d;
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)idx[a] * d;
        const float *p = s->ptot + (size_t)s->at[idx[a]] * d;
        float *o = out + (size_t)a * d;
        for (size_t j = 0; j < d; j++)
            o[j] = (float)foolc__clamp((double)x0[j] + t[a] * p[j], run->lo, run->hi);
    }
    return FOOLC_OK;
}

static foolc_status df_alloc(df_state *s)
{
    foolc__run *run = s->run;
    size_t d = run->d, k = (size_t)run->k, m = (size_t)s->m;
    size_t mr = m * (size_t)s->rows;
    foolc__arena *ar = &s->mem;
    for (int pass = 0; pass < 2; pass++) {
        s->ptot = foolc__arena_take(ar, foolc__mul(m, d), sizeof(float));
        s->xc = foolc__arena_take(ar, foolc__mul(m, d), sizeof(float));
        s->bx = foolc__arena_take(ar, foolc__mul(mr, d), sizeof(float));
        s->bg = foolc__arena_take(ar, foolc__mul(mr, d), sizeof(float));
        s->bz = foolc__arena_take(ar, foolc__mul(mr, k), sizeof(float));
        s->bf = foolc__arena_take(ar, mr, sizeof(float));
        s->z0 = foolc__arena_take(ar, foolc__mul(m, k), sizeof(float));
        s->pos = foolc__arena_take(ar, mr, sizeof(int32_t));
        s->neg = foolc__arena_take(ar, mr, sizeof(int32_t));
        s->bid = foolc__arena_take(ar, mr, sizeof(int32_t));
        s->cls = foolc__arena_take(ar, mr, sizeof(int32_t));
        s->at = foolc__arena_take(ar, (size_t)run->n, sizeof(int32_t));
        s->found = foolc__arena_take(ar, m, 1);
        s->badv = foolc__arena_take(ar, m, 1);
        s->act = foolc__arena_take(ar, m, 1);
        if (pass == 0) FOOLC__CHECK(foolc__arena_alloc(ar, "deepfool buffers"));
    }
    return FOOLC_OK;
}

/* Candidates: per sample the `rows` classes with the largest clean logits, label excluded. */
static foolc_status df_candidates(df_state *s)
{
    foolc__run *run = s->run;
    size_t k = (size_t)run->k;
    FOOLC__CHECK(foolc__run_scores(run, s->xc, s->todo, s->m, s->z0));
    for (int32_t a = 0; a < s->m; a++) {
        const float *z = s->z0 + (size_t)a * k;
        int32_t y = run->labels[s->todo[a]], *cls = s->cls + (size_t)a * s->rows;
        for (int32_t r = 0; r < s->rows; r++) {
            int32_t best = -1;
            for (int32_t j = 0; j < run->k; j++) {
                if (j == y) continue;
                int used = 0;
                for (int32_t q = 0; q < r; q++) used |= cls[q] == j;
                if (!used && (best < 0 || z[j] > z[best])) best = j;
            }
            cls[r] = best;
        }
    }
    return FOOLC_OK;
}

/* One forward pass decides each new iterate before the replicated gradient call (which
 * would cost `rows` backward images to learn it). */
static foolc_status df_decide(df_state *s)
{
    size_t d = s->run->d;
    int32_t q = 0;
    for (int32_t a = 0; a < s->m; a++)
        if (s->act[a]) {
            memcpy(s->bx + (size_t)q * d, s->xc + (size_t)a * d, d * sizeof(float));
            s->bid[q++] = s->todo[a];
        }
    FOOLC__CHECK(foolc__run_is_adv(s->run, s->bx, s->bid, q, s->badv, NULL));
    q = 0;
    for (int32_t a = 0; a < s->m; a++)
        if (s->act[a] && s->badv[q++]) {
            s->found[a] = 1;
            s->act[a] = 0;
        }
    return FOOLC_OK;
}

/* The step of the sample at position a from its rows' gradients g (rows*d) and losses f:
 * towards the closest linearised boundary among the candidates. (Leaving out the
 * coordinates at a face of the box, as the PGD steps do, makes DeepFool take fewer steps
 * but end farther away on Fashion-MNIST CNNs: not done.) Returns 0 when no gradient is
 * usable. */
static int df_move(df_state *s, int32_t a, const float *g, const float *f, const float *z)
{
    foolc__run *run = s->run;
    const foolc__deepfool_opts *o = s->o;
    size_t d = run->d;
    int32_t best = -1;
    double bestd = INFINITY, bestn = 0;
    for (int32_t r = 0; r < s->rows; r++) {
        double nq = foolc__dual_norm(o->norm, g + (size_t)r * d, d);
        double dist = nq > 0 ? fabs((double)f[r]) / nq : INFINITY;
        if (dist < bestd) {
            bestd = dist;
            best = r;
            bestn = nq;
        }
    }
    if (best < 0) return 0;
    const float *gb = g + (size_t)best * d;
    /* Foolbox's 1e-4 beyond the linearised boundary, in units of the logits' scale: a
     * model whose logits are scaled up would otherwise creep towards a boundary the box
     * keeps it from reaching (each step clipped a little short). */
    double fb = fabs((double)f[best]) + 1e-4 * foolc__mn_logit_scale(z, run->k);
    float *p = s->ptot + (size_t)a * d, *xw = s->xc + (size_t)a * d;
    const float *x0 = run->x + (size_t)s->todo[a] * d;
    double c = o->norm == FOOLC_L2 ? fb / (bestn * bestn) : fb / bestn;
    for (size_t j = 0; j < d; j++) {
        double step = o->norm == FOOLC_L2 ? -c * gb[j] : gb[j] > 0 ? -c : gb[j] < 0 ? c : 0;
        p[j] += (float)step;
        xw[j] = (float)foolc__clamp((double)x0[j] + (1 + o->overshoot) * p[j], run->lo, run->hi);
    }
    return 1;
}

/* One DeepFool step for every active sample: the image replicated once per row, one
 * gradient call for all rows, then each sample's move. Sets *any when a row was computed. */
static foolc_status df_step(df_state *s, int *any)
{
    foolc__run *run = s->run;
    size_t d = run->d, k = (size_t)run->k;
    size_t nr = 0;
    for (int32_t a = 0; a < s->m; a++) {
        if (!s->act[a]) continue;
        for (int32_t r = 0; r < s->rows; r++, nr++) {
            memcpy(s->bx + nr * d, s->xc + (size_t)a * d, d * sizeof(float));
            s->bid[nr] = s->todo[a];
            if (s->multi) {
                s->pos[nr] = run->labels[s->todo[a]];
                s->neg[nr] = s->cls[(size_t)a * s->rows + r];
            }
        }
    }
    *any = nr > 0;
    if (nr == 0) return FOOLC_OK;
    foolc__pair pair = {run, s->pos, s->neg};
    FOOLC__CHECK(s->multi ? foolc__run_grad_rows(run, s->bx, s->bid, (int32_t)nr,
                                                 foolc__pair_row, &pair, s->bg, s->bz, s->bf,
                                                 NULL)
                          : foolc__run_grad(run, s->bx, s->bid, (int32_t)nr, FOOLC__LOSS_MARGIN,
                                            s->bg, s->bf, s->bz));
    size_t r0 = 0;   /* the sample's first row */
    for (int32_t a = 0; a < s->m; a++) {
        if (!s->act[a]) continue;
        uint8_t isadv;
        FOOLC__CHECK(foolc__run_logits_adv(run, s->bz + r0 * k, &s->bid[r0], 1, &isadv, NULL));
        if (isadv) {
            s->found[a] = 1;
            s->act[a] = 0;
        } else if (!df_move(s, a, s->bg + r0 * d, s->bf + r0, s->bz + r0 * k)) {
            s->act[a] = 0;   /* no usable gradient: give up on this sample */
        }
        r0 += (size_t)s->rows;
    }
    return FOOLC_OK;
}

/* Trims the overshoot: the smallest t in (0, 1 + overshoot] at which clip(x0 + t p) is
 * still adversarial (the epsilon search on t); at a fixed epsilon only the results within
 * it count (robust accuracy). */
static foolc_status df_finish(df_state *s)
{
    foolc__run *run = s->run;
    const foolc__deepfool_opts *o = s->o;
    size_t d = run->d;
    int32_t nf = 0;
    for (int32_t a = 0; a < s->m; a++)
        if (s->found[a]) s->bid[nf++] = s->todo[a];
    double tmax = 1 + o->overshoot;
    foolc__eps_opts eo = {.eps_init = tmax, .eps_max = tmax, .growth = 2, .rtol = o->rtol};
    FOOLC__CHECK(foolc__eps_search(run, s->bid, nf, &eo, df_make, s));
    for (int32_t a = 0; o->epsilon > 0 && a < s->m; a++) {
        int32_t i = s->todo[a];
        if (!run->res->success[i] || run->res->distance[i] <= o->epsilon) continue;
        run->res->success[i] = 0;
        run->res->distance[i] = INFINITY;
        memcpy(run->res->x_adv + (size_t)i * d, run->x + (size_t)i * d, d * sizeof(float));
    }
    return FOOLC_OK;
}

/* DeepFool on the m samples todo (one chunk). */
static foolc_status df_chunk(foolc__run *run, const foolc__deepfool_opts *o,
                            const int32_t *todo, int32_t m)
{
    df_state s = {.run = run, .o = o, .todo = todo, .m = m, .rows = 1};
    s.multi = foolc__run_crit_kind(run) == FOOLC__CRIT_MISCLASSIFICATION;
    /* Rows per image: the candidate classes other than the label (misclassification), or
     * one row descending the criterion's margin (targeted and other criteria). */
    if (s.multi) {
        s.rows = o->candidates < run->k ? o->candidates - 1 : run->k - 1;
        if (s.rows < 1) s.rows = 1;
    }
    foolc_status st = df_alloc(&s);
    if (st < 0) goto out;
    size_t d = run->d;
    memset(s.ptot, 0, foolc__mul((size_t)m, d) * sizeof(float));
    for (int32_t a = 0; a < m; a++) {
        memcpy(s.xc + (size_t)a * d, run->x + (size_t)todo[a] * d, d * sizeof(float));
        s.found[a] = 0;
        s.act[a] = 1;
        s.at[todo[a]] = a;
    }
    if (s.multi && (st = df_candidates(&s)) < 0) goto out;
    for (int32_t t = 0; t <= o->steps; t++) {
        if (t > 0 && (st = df_decide(&s)) < 0) goto out;
        if (t == o->steps) break;
        int any;
        if ((st = df_step(&s, &any)) < 0) goto out;
        if (!any) break;
    }
    st = df_finish(&s);
out:
    foolc__arena_free(&s.mem);
    return st;
}

/* Samples per DeepFool chunk: the replicated batch holds (candidates - 1) rows per sample,
 * so memory stays bounded for large runs. */
#define DF_CHUNK 256

foolc_status foolc__deepfool_run(foolc__run *run, const foolc__deepfool_opts *o)
{
    for (int32_t c0 = 0; c0 < run->n_todo; c0 += DF_CHUNK) {
        int32_t mm = run->n_todo - c0 < DF_CHUNK ? run->n_todo - c0 : DF_CHUNK;
        FOOLC__CHECK(df_chunk(run, o, run->todo + c0, mm));
    }
    return FOOLC_OK;
}

/* ---- registry entries ---- */

static foolc_status deepfool_entry_run(foolc__run *run, const void *config)
{
    foolc__iter_config c;
    foolc__iter_config_get(run->vt->params, run->vt->n_params, config, run->vt->variant, &c);
    foolc__deepfool_opts o = {.norm = run->norm, .steps = (int32_t)c.steps,
                              .candidates = (int32_t)c.candidates, .overshoot = c.overshoot,
                              .rtol = c.rtol, .epsilon = c.epsilon};
    return foolc__deepfool_run(run, &o);
}

/* DeepFool in L2 (Moosavi-Dezfooli et al., arXiv:1511.04599): at each step the closest linearised
 * boundary among the top-`candidates` classes, all their gradients from one forward+backward over
 * the image replicated once per class; steps accumulate and are applied with (1 + overshoot), and
 * the overshoot is trimmed at the end by bisection along the same path. */
static const foolc__param deepfool_l2_params[] = {
    FOOLC__IP(epsilon, 0, 0, 1e9, 0, "0 minimises; > 0 keeps only results within this L2 distance"),
    FOOLC__IP(rtol, 1e-3, 1e-6, 0.5, 0, "relative tolerance of the final overshoot trim"),
    FOOLC__IP(steps, 50, 1, 1000, 1, "largest number of DeepFool steps"),
    FOOLC__IP(candidates, 10, 2, 1000, 1,
              "classes considered: the label and the top logits of the clean input"),
    FOOLC__IP(overshoot, 0.02, 0, 1, 0, "relative overshoot of the accumulated step"),
};

static const foolc__iter_config deepfool_l2_fixed = {.rtol = 1e-3, .steps = 50, .candidates = 10,
                                                  .overshoot = 0.02};
FOOLC__ATTACK(deepfool_l2, "deepfool-l2", FOOLC_L2, FOOLC__GRAD, deepfool_l2_params,
              foolc__iter_config, deepfool_entry_run, &deepfool_l2_fixed,
              "DeepFool, batched over candidate classes; naturally minimal in L2");

/* DeepFool in Linf (Moosavi-Dezfooli et al., arXiv:1511.04599): at each step the closest
 * linearised boundary in Linf (|f| / |grad f|_1) among the top-`candidates` classes, all their
 * gradients from one forward+backward over the image replicated once per class; steps along
 * sign(grad) accumulate with (1 + overshoot), trimmed at the end by bisection along the path. */
static const foolc__param deepfool_linf_params[] = {
    FOOLC__IP(epsilon, 0, 0, 1e9, 0,
              "0 minimises; > 0 keeps only results within this Linf distance"),
    FOOLC__IP(rtol, 1e-3, 1e-6, 0.5, 0, "relative tolerance of the final overshoot trim"),
    FOOLC__IP(steps, 50, 1, 1000, 1, "largest number of DeepFool steps"),
    FOOLC__IP(candidates, 10, 2, 1000, 1,
              "classes considered: the label and the top logits of the clean input"),
    FOOLC__IP(overshoot, 0.02, 0, 1, 0, "relative overshoot of the accumulated step"),
};

static const foolc__iter_config deepfool_linf_fixed = {.rtol = 1e-3, .steps = 50, .candidates = 10,
                                                  .overshoot = 0.02};
FOOLC__ATTACK(deepfool_linf, "deepfool-linf", FOOLC_LINF, FOOLC__GRAD, deepfool_linf_params,
              foolc__iter_config, deepfool_entry_run, &deepfool_linf_fixed,
              "DeepFool, batched over candidate classes; naturally minimal in Linf");
