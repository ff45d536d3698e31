/* DeepFool in L2 and Linf (Moosavi-Dezfooli et al., arXiv:1511.04599), batched: at each step
 * the closest linearised boundary among the top-`candidates` classes, all their gradients from
 * one forward+backward over the image replicated once per class; steps accumulate and are
 * applied with (1 + overshoot), trimmed at the end by a search along the same path. At the
 * end the registry entries of deepfool-l2 and deepfool-linf. */
#include "gradient.h"
#include "numeric.h"

#include <math.h>
#include <string.h>

typedef struct df_line {
    const float *p;     /* n*d accumulated perturbations, by sample */
} df_line;

/* clip(x0 + t p): the DeepFool point at overshoot factor t, for the final search. */
static foolc_status df_make(void *ctx, foolc__run *run, const int32_t *idx, const double *t,
                            int32_t m, float *out, uint8_t *adv)
{
    (void)adv;
    const df_line *c = ctx;
    size_t d = run->d;
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)idx[a] * d, *p = c->p + (size_t)idx[a] * d;
        float *o = out + (size_t)a * d;
        for (size_t j = 0; j < d; j++)
            o[j] = (float)foolc__clamp((double)x0[j] + t[a] * p[j], run->lo, run->hi);
    }
    return FOOLC_OK;
}

/* DeepFool on the m samples todo (one chunk). */
static foolc_status df_chunk(foolc__run *run, const foolc__deepfool_opts *o,
                            const int32_t *todo, int32_t m)
{
    size_t d = run->d, k = (size_t)run->k;
    int kind = foolc__crit_kind(run);
    /* Rows per image: the candidate classes other than the label (misclassification), or
     * one row descending the criterion's margin (targeted and other criteria). */
    int32_t rows = 1;
    if (kind == 1) {
        rows = o->candidates < run->k ? o->candidates - 1 : run->k - 1;
        if (rows < 1) rows = 1;
    }
    size_t mr = (size_t)m * (size_t)rows;
    size_t nf = foolc__mul((size_t)run->n, d) + foolc__mul((size_t)m, d) +
                2 * foolc__mul(mr, d) + mr * k + mr + (size_t)m * k;
    float *blk = foolc__malloc(foolc__mul(nf, sizeof(float)) +
                               foolc__mul(mr, 3 * sizeof(int32_t)) + 3 * (size_t)m + 16);
    if (!blk) return foolc__nomem("deepfool buffers");
    float *ptot = blk, *xc = ptot + (size_t)run->n * d, *bx = xc + (size_t)m * d;
    float *bg = bx + mr * d, *bz = bg + mr * d, *bf = bz + mr * k, *z0 = bf + mr;
    int32_t *pos = (int32_t *)(z0 + (size_t)m * k), *neg = pos + mr, *bid = neg + mr;
    uint8_t *found = (uint8_t *)(bid + mr), *badv = found + m, *act = badv + m;
    int32_t *cls = NULL;
    foolc_status st = FOOLC_OK;
    memset(ptot, 0, foolc__mul((size_t)run->n, d) * sizeof(float));
    for (int32_t a = 0; a < m; a++) {
        memcpy(xc + (size_t)a * d, run->x + (size_t)todo[a] * d, d * sizeof(float));
        found[a] = 0;
        act[a] = 1;
    }
    /* Candidates: the classes with the largest clean logits, label excluded. */
    cls = foolc__malloc(foolc__mul(mr, sizeof(int32_t)));
    if (!cls) {
        st = foolc__nomem("deepfool candidates");
        goto out;
    }
    if (kind == 1) {
        if ((st = foolc__run_scores(run, xc, todo, m, z0)) < 0) goto out;
        for (int32_t a = 0; a < m; a++) {
            const float *z = z0 + (size_t)a * k;
            int32_t y = run->labels[todo[a]];
            for (int32_t r = 0; r < rows; r++) {
                int32_t best = -1;
                for (int32_t j = 0; j < run->k; j++) {
                    if (j == y) continue;
                    int used = 0;
                    for (int32_t q = 0; q < r; q++) used |= cls[(size_t)a * rows + q] == j;
                    if (!used && (best < 0 || z[j] > z[best])) best = j;
                }
                cls[(size_t)a * rows + r] = best;
            }
        }
    }
    foolc__gloss gl = {kind == 1 ? FOOLC__GL_PAIR : FOOLC__GL_MARGIN, pos, neg};
    for (int32_t t = 0; t <= o->steps; t++) {
        /* One forward pass decides each new iterate before the replicated gradient call
         * (which would cost `rows` backward images to learn it). */
        if (t > 0) {
            int32_t q = 0;
            for (int32_t a = 0; a < m; a++)
                if (act[a]) {
                    memcpy(bx + (size_t)q * d, xc + (size_t)a * d, d * sizeof(float));
                    bid[q++] = todo[a];
                }
            if ((st = foolc__run_is_adv(run, bx, bid, q, badv, NULL)) < 0) goto out;
            q = 0;
            for (int32_t a = 0; a < m; a++)
                if (act[a] && badv[q++]) {
                    found[a] = 1;
                    act[a] = 0;
                }
        }
        if (t == o->steps) break;
        int32_t na = 0;
        size_t nr = 0;
        for (int32_t a = 0; a < m; a++) {
            if (!act[a]) continue;
            for (int32_t r = 0; r < rows; r++, nr++) {
                memcpy(bx + nr * d, xc + (size_t)a * d, d * sizeof(float));
                bid[nr] = todo[a];
                if (kind == 1) {
                    pos[nr] = run->labels[todo[a]];
                    neg[nr] = cls[(size_t)a * rows + r];
                }
            }
            na++;
        }
        if (na == 0) break;
        if ((st = foolc__run_grad_loss(run, bx, bid, (int32_t)nr, &gl, bg, bf, bz)) < 0)
            goto out;
        size_t r0 = 0;
        for (int32_t a = 0; a < m; a++) {
            if (!act[a]) continue;
            uint8_t isadv;
            if ((st = foolc__logits_adv(run, &bid[r0], 1, bz + r0 * k, &isadv)) < 0) goto out;
            if (isadv) {
                found[a] = 1;
                act[a] = 0;
                r0 += (size_t)rows;
                continue;
            }
            /* The closest linearised boundary among the candidates. (Leaving out the
             * coordinates at a face of the box, as the PGD steps do, makes DeepFool take
             * fewer steps but end farther away on Fashion-MNIST CNNs: not done.) */
            int32_t best = -1;
            double bestd = INFINITY, bestn = 0;
            for (int32_t r = 0; r < rows; r++) {
                const float *g = bg + (r0 + (size_t)r) * d;
                double nq = foolc__dual_norm(o->norm, g, d);
                double dist = nq > 0 ? fabs((double)bf[r0 + (size_t)r]) / nq : INFINITY;
                if (dist < bestd) {
                    bestd = dist;
                    best = r;
                    bestn = nq;
                }
            }
            if (best < 0) {
                act[a] = 0;   /* no usable gradient: give up on this sample */
                r0 += (size_t)rows;
                continue;
            }
            const float *g = bg + (r0 + (size_t)best) * d;
            double f = fabs((double)bf[r0 + (size_t)best]) + 1e-4;
            int32_t i = todo[a];
            float *p = ptot + (size_t)i * d;
            const float *x0 = run->x + (size_t)i * d;
            float *xw = xc + (size_t)a * d;
            double c = o->norm == FOOLC_L2 ? f / (bestn * bestn) : f / bestn;
            for (size_t j = 0; j < d; j++) {
                double step = o->norm == FOOLC_L2 ? -c * g[j] : g[j] > 0 ? -c : g[j] < 0 ? c : 0;
                p[j] += (float)step;
                xw[j] = (float)foolc__clamp((double)x0[j] + (1 + o->overshoot) * p[j], run->lo,
                                      run->hi);
            }
            r0 += (size_t)rows;
        }
    }
    /* Trim the overshoot: the smallest t in (0, 1 + overshoot] at which clip(x0 + t p) is
     * still adversarial, by bisection on t (the segment towards x0 where no coordinate is
     * clipped). */
    {
        int32_t nf2 = 0;
        for (int32_t a = 0; a < m; a++)
            if (found[a]) bid[nf2++] = todo[a];
        df_line line = {ptot};
        double tmax = 1 + o->overshoot;
        foolc__eps_opts eo = {.eps_init = tmax, .eps_max = tmax, .growth = 2, .rtol = o->rtol};
        st = foolc__eps_search(run, bid, nf2, &eo, df_make, &line);
    }
    /* At a fixed epsilon only the results within it count (robust accuracy). */
    for (int32_t a = 0; st >= 0 && o->epsilon > 0 && a < m; a++) {
        int32_t i = todo[a];
        if (!run->res->success[i] || run->res->distance[i] <= o->epsilon) continue;
        run->res->success[i] = 0;
        run->res->distance[i] = INFINITY;
        memcpy(run->res->x_adv + (size_t)i * d, run->x + (size_t)i * d, d * sizeof(float));
    }
out:
    foolc__free(cls);
    foolc__free(blk);
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
    foolc__deepfool_opts o = {run->norm, (int32_t)c.steps, (int32_t)c.candidates, c.overshoot,
                              c.rtol, c.epsilon};
    return foolc__deepfool_run(run, &o);
}

/* DeepFool in L2 (Moosavi-Dezfooli et al., arXiv:1511.04599): at each step the closest linearised
 * boundary among the top-`candidates` classes, all their gradients from one forward+backward over
 * the image replicated once per class; steps accumulate and are applied with (1 + overshoot), and
 * the overshoot is trimmed at the end by bisection along the same path. */
static const foolc__param deepfool_l2_params[] = {
    FOOLC__IP(epsilon, 0, 0, 1e9, 0,
              "0 minimises; > 0 keeps only results within this L2 distance"),
    FOOLC__IP(rtol, 1e-3, 1e-6, 0.5, 0, "relative tolerance of the final overshoot trim"),
    FOOLC__IP(steps, 50, 1, 1000, 1, "largest number of DeepFool steps"),
    FOOLC__IP(candidates, 10, 2, 1000, 1,
              "classes considered: the label and the top logits of the clean input"),
    FOOLC__IP(overshoot, 0.02, 0, 1, 0, "relative overshoot of the accumulated step"),
};

static const foolc__iter_config deepfool_l2_fixed = {.rtol = 1e-3, .steps = 50, .candidates = 10,
                                                  .overshoot = 0.02};
FOOLC__ATTACK(deepfool_l2, "deepfool-l2", FOOLC_L2, FOOLC__GRAD, deepfool_l2_params, foolc__iter_config,
              deepfool_entry_run, &deepfool_l2_fixed, "DeepFool, batched over candidate classes; naturally minimal in L2");

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
FOOLC__ATTACK(deepfool_linf, "deepfool-linf", FOOLC_LINF, FOOLC__GRAD, deepfool_linf_params, foolc__iter_config,
              deepfool_entry_run, &deepfool_linf_fixed, "DeepFool, batched over candidate classes; naturally minimal in Linf");
