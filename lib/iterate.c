/* Shared machinery of the gradient attacks, written once: the DLR and class-pair losses, step
 * directions (sign, L2-normalised, sparse L1), the batched projected-gradient loop with
 * per-sample epsilons, restarts, momentum and APGD's schedule, the epsilon-search driver
 * that makes it minimising, FGM's exact line searches, and batched DeepFool. */
#include "iterate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double clampd(double v, double a, double b) { return v < a ? a : v > b ? b : v; }

int foolc__crit_kind(const foolc__run *run)
{
    const foolc__criterion_vt *vt = run->crit ? run->crit->vt : NULL;
    if (!vt) return 0;
    if (!strcmp(vt->name, "misclassification")) return 1;
    if (!strcmp(vt->name, "targeted") && run->targets) return 2;
    return 0;
}

foolc_status foolc__logits_adv(foolc__run *run, const int32_t *idx, int32_t m,
                               const float *logits, uint8_t *adv)
{
    for (int32_t a = 0; a < m; a++) {
        int32_t s = idx[a];
        FOOLC__CHECK(foolc_criterion_eval(run->crit, logits + (size_t)a * (size_t)run->k, 1,
                                          run->k, &run->labels[s],
                                          run->targets ? &run->targets[s] : NULL, &adv[a],
                                          NULL, NULL));
    }
    return FOOLC_OK;
}

/* ---- losses ---- */

typedef struct gloss_ctx {
    foolc__run *run;
    const int32_t *idx;
    const foolc__gloss *spec;
    int kind;          /* criterion kind, for DLR */
} gloss_ctx;

/* The DLR loss (Croce & Hein, arXiv:2003.01690), descended: untargeted
 * (z_y - max_{i != y} z_i) / (z_p1 - z_p3), targeted (max_{i != t} z_i - z_t) /
 * (z_p1 - (z_p3 + z_p4) / 2), with p the classes sorted by decreasing logit. The targeted
 * numerator is the targeted margin rather than the paper's z_y - z_t, so that its zero is
 * the criterion's boundary. */
static double dlr_row(const float *z, int32_t k, int32_t label, int32_t target, int targeted,
                      float *dz)
{
    int32_t top[4] = {-1, -1, -1, -1};
    for (int32_t j = 0; j < k; j++) {
        int32_t c = j;
        for (int r = 0; r < 4; r++) {
            if (top[r] < 0 || z[c] > z[top[r]]) {
                int32_t t = top[r];
                top[r] = c;
                c = t;
                if (c < 0) break;
            }
        }
    }
    int32_t a, b;   /* numerator z[a] - z[b] */
    if (!targeted) {
        a = label;
        b = top[0] == label ? top[1] : top[0];
    } else {
        a = top[0] == target ? top[1] : top[0];
        b = target;
    }
    double num = (double)z[a] - z[b], c3 = targeted ? 0.5 * ((double)z[top[2]] + z[top[3]])
                                                     : (double)z[top[2]];
    double den = (double)z[top[0]] - c3 + 1e-12;
    for (int32_t j = 0; j < k; j++) dz[j] = 0;
    dz[a] += (float)(1 / den);
    dz[b] -= (float)(1 / den);
    double q = num / (den * den);
    dz[top[0]] -= (float)q;
    if (targeted) {
        dz[top[2]] += (float)(0.5 * q);
        dz[top[3]] += (float)(0.5 * q);
    } else {
        dz[top[2]] += (float)q;
    }
    return num / den;
}

static int gloss_rows(void *user, int32_t first, const float *logits, int32_t n, int32_t k,
                      float *dlogits, float *loss)
{
    gloss_ctx *c = user;
    foolc__run *run = c->run;
    for (int32_t i = 0; i < n; i++) {
        int32_t r = first + i, s = c->idx[r];
        const float *z = logits + (size_t)i * (size_t)k;
        float *dz = dlogits + (size_t)i * (size_t)k;
        double l;
        if (c->spec->kind == FOOLC__GL_PAIR) {
            int32_t p = c->spec->pos[r], q = c->spec->neg[r];
            for (int32_t j = 0; j < k; j++) dz[j] = 0;
            dz[p] += 1;
            dz[q] -= 1;
            l = (double)z[p] - z[q];
        } else {
            l = dlr_row(z, k, run->labels[s], run->targets ? run->targets[s] : -1,
                        c->kind == 2, dz);
        }
        if (loss) loss[i] = (float)l;
    }
    return 0;
}

foolc_status foolc__run_grad_loss(foolc__run *run, const float *xs, const int32_t *idx,
                                  int32_t m, const foolc__gloss *loss, float *grad,
                                  float *loss_out, float *logits)
{
    if (m == 0) return FOOLC_OK;
    int kind = foolc__crit_kind(run);
    foolc__gloss_kind lk = loss->kind;
    /* DLR needs the misclassification (3+ classes) or targeted (4+) criterion. */
    if (lk == FOOLC__GL_DLR && (kind == 0 || run->k < (kind == 2 ? 4 : 3)))
        lk = FOOLC__GL_MARGIN;
    if (lk == FOOLC__GL_CE || lk == FOOLC__GL_MARGIN)
        return foolc__run_grad(run, xs, idx, m, lk == FOOLC__GL_CE ? FOOLC__LOSS_CE :
                               FOOLC__LOSS_MARGIN, grad, loss_out, logits);
    FOOLC__CHECK(foolc__run_check(run, xs, idx, m));
    gloss_ctx c = {run, idx, loss, kind};
    foolc_status st = foolc_model_value_and_grad(run->model, xs, m, gloss_rows, &c, logits,
                                                 loss_out, grad);
    if (st != FOOLC_E_BUDGET)
        for (int32_t i = 0; i < m; i++) {
            run->queries[idx[i]].forward++;
            run->queries[idx[i]].backward++;
        }
    return st;
}

/* ---- geometry ---- */

double foolc__box_diameter(const foolc__run *run, foolc_norm p)
{
    double w = (double)run->hi - run->lo;
    return p == FOOLC_L2 ? w * sqrt((double)run->d) : p == FOOLC_L1 ? w * (double)run->d : w;
}

/* The dual norm of g for the ball norm p (Linf -> L1, L2 -> L2, L1 -> Linf). */
static double dual_norm(foolc_norm p, const float *g, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        double v = fabs((double)g[j]);
        if (p == FOOLC_LINF) s += v;
        else if (p == FOOLC_L2) s += v * v;
        else if (v > s) s = v;
    }
    return p == FOOLC_L2 ? sqrt(s) : s;
}

/* The k-th largest (k >= 1) of v[0..n) by quickselect; v is reordered. */
static float kth_largest(float *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float piv = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > piv) i++;
            while (v[j] < piv) j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    return v[want];
}

/* The step direction for descending a loss with gradient g at x: Linf sign(-g); L2 -g/|g|_2;
 * L1 the signs of -g on the coordinates above the quantile of |g|, scaled to L1 norm 1
 * (Tramèr & Boneh's SLIDE). For L1 and L2, coordinates at a face of the box that the step
 * would push outwards are left out. Returns 0 when the direction is zero. */
static int direction(foolc_norm p, const float *g, const float *x, float lo, float hi,
                     size_t d, double quantile, float *dir, float *work)
{
    size_t nz = 0;
    for (size_t j = 0; j < d; j++) {
        float v = -g[j];
        if (p != FOOLC_LINF && ((x[j] <= lo && v < 0) || (x[j] >= hi && v > 0))) v = 0;
        dir[j] = v;
        if (v != 0) work[nz++] = fabsf(v);
    }
    if (nz == 0) return 0;
    if (p == FOOLC_LINF) {
        for (size_t j = 0; j < d; j++) dir[j] = dir[j] > 0 ? 1.0f : dir[j] < 0 ? -1.0f : 0.0f;
        return 1;
    }
    if (p == FOOLC_L2) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)dir[j] * dir[j];
        float inv = (float)(1 / sqrt(s));
        for (size_t j = 0; j < d; j++) dir[j] *= inv;
        return 1;
    }
    size_t keep = (size_t)ceil((1 - quantile) * (double)d);
    if (keep < 1) keep = 1;
    if (keep > nz) keep = nz;
    float thr = kth_largest(work, nz, keep);
    size_t cnt = 0;
    for (size_t j = 0; j < d; j++) cnt += dir[j] != 0 && fabsf(dir[j]) >= thr;
    float w = 1.0f / (float)cnt;
    for (size_t j = 0; j < d; j++)
        dir[j] = dir[j] != 0 && fabsf(dir[j]) >= thr ? (dir[j] > 0 ? w : -w) : 0.0f;
    return 1;
}

static int cmp_float_asc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

typedef struct bp {
    float t, c2, u2;     /* saturation time cap/|u|, cap^2, u^2 of one coordinate */
} bp;

static int cmp_bp(const void *a, const void *b)
{
    return cmp_float_asc(&((const bp *)a)->t, &((const bp *)b)->t);
}

/* The exact projection of v onto {|u - x0|_p <= eps} ∩ [lo, hi]^d (p = L2 or L1) in place,
 * by sorting breakpoints instead of bisecting: with u = v - x0 and cap_j the room of
 * coordinate j in the direction of u_j, the L2 projection is clip(x0 + t u) where
 * sum_j min(t |u_j|, cap_j)^2 = eps^2, piecewise quadratic in t with breakpoints
 * cap_j / |u_j|; the L1 projection is x0 + sign(u) min(max(|u| - lam, 0), cap) where
 * sum_j min(max(|u_j| - lam, 0), cap_j) = eps, piecewise linear in lam with breakpoints
 * |u_j| and |u_j| - cap_j. When clip(v) already lies in the ball it is the answer. work
 * holds 3 d floats. */
static void project(foolc_norm p, const float *x0, float *v, size_t d, double eps, float lo,
                    float hi, float *work)
{
    if (p == FOOLC_LINF) {
        for (size_t j = 0; j < d; j++) {
            double a = fmax((double)lo, x0[j] - eps), b = fmin((double)hi, x0[j] + eps);
            v[j] = (float)clampd(v[j], a, b);
        }
        return;
    }
    double g0 = 0;   /* the norm of clip(v) - x0 */
    for (size_t j = 0; j < d; j++) {
        double e = clampd(v[j], lo, hi) - x0[j];
        g0 += p == FOOLC_L2 ? e * e : fabs(e);
    }
    if (g0 <= (p == FOOLC_L2 ? eps * eps : eps)) {
        for (size_t j = 0; j < d; j++) v[j] = (float)clampd(v[j], lo, hi);
        return;
    }
    if (p == FOOLC_L2) {
        bp *w = (bp *)work;
        size_t n = 0;
        double sfree = 0;
        for (size_t j = 0; j < d; j++) {
            double u = (double)v[j] - x0[j];
            if (u == 0) continue;
            double cap = u > 0 ? (double)hi - x0[j] : (double)x0[j] - lo;
            w[n].t = (float)(cap / fabs(u));
            w[n].c2 = (float)(cap * cap);
            w[n].u2 = (float)(u * u);
            sfree += u * u;
            n++;
        }
        qsort(w, n, sizeof *w, cmp_bp);
        /* Coordinates saturate in the order of their breakpoints; between two of them
         * F(t) = ssat + t^2 sfree. */
        double e2 = eps * eps, ssat = 0, t;
        size_t k = 0;
        for (; k < n; k++) {
            double tk = w[k].t;
            if (ssat + tk * tk * sfree >= e2) break;
            ssat += w[k].c2;
            sfree -= w[k].u2;
        }
        if (k < n && sfree > 0) t = sqrt(fmax(e2 - ssat, 0) / sfree);
        else t = n > 0 ? w[n - 1].t : 1;
        for (size_t j = 0; j < d; j++)
            v[j] = (float)clampd(x0[j] + t * ((double)v[j] - x0[j]), lo, hi);
        return;
    }
    /* L1: sweep lam downwards over the merged breakpoints. */
    float *a = work, *b = work + d;
    size_t n = 0;
    for (size_t j = 0; j < d; j++) {
        double u = fabs((double)v[j] - x0[j]);
        if (u == 0) continue;
        double cap = (double)v[j] > x0[j] ? (double)hi - x0[j] : (double)x0[j] - lo;
        a[n] = (float)u;
        b[n] = (float)(u - cap);
        n++;
    }
    qsort(a, n, sizeof(float), cmp_float_asc);
    qsort(b, n, sizeof(float), cmp_float_asc);
    size_t ia = n, ib = n;   /* next (largest remaining) breakpoint of each kind */
    double g = 0, lam = n ? a[n - 1] : 0, slope = 0;
    while (ia > 0 || ib > 0) {
        double next = ia > 0 && (ib == 0 || a[ia - 1] >= b[ib - 1]) ? a[ia - 1] : b[ib - 1];
        if (next < 0) next = 0;
        if (g + slope * (lam - next) >= eps) break;
        g += slope * (lam - next);
        lam = next;
        if (lam <= 0) break;
        if (ia > 0 && (ib == 0 || a[ia - 1] >= b[ib - 1])) {
            slope += 1;
            ia--;
        } else {
            slope -= 1;
            ib--;
        }
    }
    if (slope > 0 && g < eps) lam = fmax(lam - (eps - g) / slope, 0);
    for (size_t j = 0; j < d; j++) {
        double u = (double)v[j] - x0[j], m = fabs(u) - lam;
        double e = m > 0 ? (u > 0 ? m : -m) : 0;
        v[j] = (float)clampd(x0[j] + e, lo, hi);
    }
}

/* A random start in the ball of radius eps around x0 (uniform in Linf; for L2 and L1 a
 * Gaussian / Laplace direction with radius eps * u^(1/d)), projected onto ball ∩ box. */
static void random_start(const foolc__run *run, foolc_norm p, int32_t sample,
                         uint64_t stream, double eps, const float *x0, float *out, float *work)
{
    foolc__rng r;
    foolc__rng_init(&r, run->seed, (uint64_t)sample, 0x9A7D0000u + stream);
    size_t d = run->d;
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        double v;
        if (p == FOOLC_LINF) {
            v = eps * (2 * foolc__rng_uniform(&r) - 1);
        } else if (p == FOOLC_L2) {
            v = foolc__rng_normal(&r);
            s += v * v;
        } else {
            v = -log(1 - foolc__rng_uniform(&r));
            if (foolc__rng_uniform(&r) < 0.5) v = -v;
            s += fabs(v);
        }
        out[j] = (float)v;
    }
    if (p != FOOLC_LINF) {
        double rad = eps * pow(foolc__rng_uniform(&r), 1.0 / (double)d);
        double f = s > 0 ? rad / (p == FOOLC_L2 ? sqrt(s) : s) : 0;
        for (size_t j = 0; j < d; j++) out[j] = (float)(f * out[j]);
    }
    for (size_t j = 0; j < d; j++) out[j] = (float)clampd((double)x0[j] + out[j], run->lo,
                                                           run->hi);
    project(p, x0, out, d, eps, run->lo, run->hi, work);
}

/* ---- the iterative loop ---- */

typedef struct iter_state {
    const foolc__iter_opts *o;
    double scale_max;          /* the largest epsilon (the box's diameter in the norm) */
    const double *scale;       /* per sample: epsilon unit of the search (NULL: absolute) */
    int32_t cap;
    size_t d, k;
    float *xc, *xp, *xb, *gb, *acc;    /* per position: current, previous, best, its grad, sum */
    float *bx, *bg, *bz, *bf;          /* batch: images, gradients, logits, losses */
    float *dir, *work, *pw;            /* d, d and 3 d: scratch */
    int32_t *act, *bid, *succ;
    uint8_t *badv, *done, *reduced;
    double *fprev, *fbest, *fbest_ck, *eta, *eps;
} iter_state;

static void state_free(iter_state *s) { foolc__free(s->xc); }

static foolc_status state_alloc(iter_state *s, const foolc__run *run, int32_t cap)
{
    size_t d = run->d, k = (size_t)run->k, c = (size_t)cap;
    size_t nf = foolc__mul(c, foolc__mul(d, 7)) + c * k + c + 5 * d;
    size_t bytes = foolc__mul(nf, sizeof(float)) + c * (5 * sizeof(double) +
                   3 * sizeof(int32_t) + 3) + 64;
    float *blk = foolc__malloc(bytes);
    if (!blk) return foolc__nomem("iterative attack buffers");
    s->cap = cap;
    s->d = d;
    s->k = k;
    s->xc = blk;
    s->xp = s->xc + c * d;
    s->xb = s->xp + c * d;
    s->gb = s->xb + c * d;
    s->acc = s->gb + c * d;
    s->bx = s->acc + c * d;
    s->bg = s->bx + c * d;
    s->bz = s->bg + c * d;
    s->bf = s->bz + c * k;
    s->dir = s->bf + c;
    s->work = s->dir + d;
    s->pw = s->work + d;
    double *db = (double *)(((uintptr_t)(s->pw + 3 * d) + 7) & ~(uintptr_t)7);
    s->fprev = db;
    s->fbest = db + c;
    s->fbest_ck = db + 2 * c;
    s->eta = db + 3 * c;
    s->eps = db + 4 * c;
    s->act = (int32_t *)(db + 5 * c);
    s->bid = s->act + c;
    s->succ = s->bid + c;
    s->badv = (uint8_t *)(s->succ + c);
    s->done = s->badv + c;
    s->reduced = s->done + c;
    return FOOLC_OK;
}

/* One step of position a from xc with gradient g (descending). */
static foolc_status pgd_step(iter_state *s, const foolc__run *run, int32_t a, const float *x0,
                             const float *g, int first)
{
    const foolc__iter_opts *o = s->o;
    size_t d = s->d;
    float *xc = s->xc + (size_t)a * d, *xp = s->xp + (size_t)a * d;
    const float *gd = g;
    if (o->momentum > 0 && !o->apgd) {
        float *acc = s->acc + (size_t)a * d;
        double l1 = 0;
        for (size_t j = 0; j < d; j++) l1 += fabs((double)g[j]);
        float inv = l1 > 0 ? (float)(1 / l1) : 0.0f, mu = (float)o->momentum;
        for (size_t j = 0; j < d; j++) acc[j] = mu * acc[j] + inv * g[j];
        gd = acc;
    }
    if (!direction(o->norm, gd, xc, run->lo, run->hi, d, o->quantile, s->dir, s->work))
        return FOOLC_OK;
    double eps = s->eps[a];
    if (!o->apgd) {
        float step = (float)(o->rel_step * eps);
        for (size_t j = 0; j < d; j++) xc[j] += step * s->dir[j];
        project(o->norm, x0, xc, d, eps, run->lo, run->hi, s->pw);
        return FOOLC_OK;
    }
    /* APGD: z = P(x + eta dir); x' = P(x + 0.75 (z - x) + 0.25 (x - x_prev)). */
    float *z = s->work;
    float eta = (float)s->eta[a];
    for (size_t j = 0; j < d; j++) z[j] = xc[j] + eta * s->dir[j];
    project(o->norm, x0, z, d, eps, run->lo, run->hi, s->pw);
    for (size_t j = 0; j < d; j++) {
        float nx = first ? z[j] : xc[j] + 0.75f * (z[j] - xc[j]) + 0.25f * (xc[j] - xp[j]);
        xp[j] = xc[j];
        xc[j] = nx;
    }
    project(o->norm, x0, xc, d, eps, run->lo, run->hi, s->pw);
    return FOOLC_OK;
}

/* The loop for m samples sid at epsilons eps: out receives, per sample, the first
 * adversarial iterate (adv = 1) or the last (APGD: the best) iterate of the last start
 * (adv = 0, known from the model's logits there). */
static foolc_status iter_attack(iter_state *s, foolc__run *run, const int32_t *sid,
                                const double *eps, int32_t m, float *out, uint8_t *adv)
{
    const foolc__iter_opts *o = s->o;
    size_t d = s->d;
    foolc__gloss gl = {o->loss, NULL, NULL};
    foolc_status st = FOOLC_OK;
    for (int32_t a = 0; a < m; a++) {
        s->done[a] = 0;
        double e = eps[a];
        if (s->scale) e = fmin(e * s->scale[sid[a]], s->scale_max);
        s->eps[a] = e;
    }
    int32_t n_ap = o->steps;
    int32_t period0 = (int32_t)(0.22 * n_ap), dec = (int32_t)(0.03 * n_ap);
    int32_t minp = (int32_t)(0.06 * n_ap);
    period0 = period0 < 1 ? 1 : period0;
    dec = dec < 1 ? 1 : dec;
    minp = minp < 1 ? 1 : minp;
    for (int32_t r = 0; r < o->restarts; r++) {
        int32_t na = 0;
        for (int32_t a = 0; a < m; a++) {
            if (s->done[a]) continue;
            s->act[na++] = a;
            const float *x0 = run->x + (size_t)sid[a] * d;
            float *xc = s->xc + (size_t)a * d;
            if (r == 0 && !o->random_start) memcpy(xc, x0, d * sizeof(float));
            else random_start(run, o->norm, sid[a], (uint64_t)r, s->eps[a], x0, xc, s->pw);
            memcpy(s->xp + (size_t)a * d, xc, d * sizeof(float));
            memset(s->acc + (size_t)a * d, 0, d * sizeof(float));
            s->eta[a] = 2 * s->eps[a];
            s->fbest[a] = s->fbest_ck[a] = INFINITY;
            s->succ[a] = 0;
            s->reduced[a] = 0;
        }
        int32_t period = period0, cnt = 0;
        for (int32_t t = 0; t < o->steps && na > 0; t++) {
            for (int32_t q = 0; q < na; q++) {
                int32_t a = s->act[q];
                memcpy(s->bx + (size_t)q * d, s->xc + (size_t)a * d, d * sizeof(float));
                s->bid[q] = sid[a];
            }
            if ((st = foolc__run_grad_loss(run, s->bx, s->bid, na, &gl, s->bg, s->bf,
                                           s->bz)) < 0) return st;
            if ((st = foolc__logits_adv(run, s->bid, na, s->bz, s->badv)) < 0) return st;
            int check = 0;
            if (o->apgd && ++cnt == period) {
                check = 1;
                cnt = 0;
            }
            int32_t keep = 0;
            for (int32_t q = 0; q < na; q++) {
                int32_t a = s->act[q];
                float *xc = s->xc + (size_t)a * d, *g = s->bg + (size_t)q * d;
                if (s->badv[q]) {
                    memcpy(out + (size_t)a * d, xc, d * sizeof(float));
                    adv[a] = 1;
                    s->done[a] = 1;
                    continue;
                }
                s->act[keep++] = a;
                if (o->apgd) {
                    double f = s->bf[q];
                    if (t > 0 && f < s->fprev[a]) s->succ[a]++;
                    s->fprev[a] = f;
                    if (f < s->fbest[a]) {
                        s->fbest[a] = f;
                        memcpy(s->xb + (size_t)a * d, xc, d * sizeof(float));
                        memcpy(s->gb + (size_t)a * d, g, d * sizeof(float));
                    }
                    if (check) {
                        int osc = s->succ[a] < 0.75 * period;
                        int stall = !s->reduced[a] && s->fbest_ck[a] <= s->fbest[a];
                        s->reduced[a] = (uint8_t)(osc || stall);
                        if (osc || stall) {
                            s->eta[a] *= 0.5;
                            memcpy(xc, s->xb + (size_t)a * d, d * sizeof(float));
                            memcpy(s->xp + (size_t)a * d, xc, d * sizeof(float));
                            g = s->gb + (size_t)a * d;
                        }
                        s->succ[a] = 0;
                        s->fbest_ck[a] = s->fbest[a];
                    }
                }
                const float *x0 = run->x + (size_t)sid[a] * d;
                if ((st = pgd_step(s, run, a, x0, g, t == 0)) < 0) return st;
            }
            if (check) period = period - dec < minp ? minp : period - dec;
            na = keep;
        }
        /* The iterate after the last step: one forward pass decides it. */
        if (na > 0) {
            int32_t nb = 0;
            for (int32_t q = 0; q < na; q++) {
                int32_t a = s->act[q];
                memcpy(s->bx + (size_t)nb * d, s->xc + (size_t)a * d, d * sizeof(float));
                s->bid[nb++] = sid[a];
            }
            if ((st = foolc__run_is_adv(run, s->bx, s->bid, nb, s->badv, NULL)) < 0) return st;
            for (int32_t q = 0; q < na; q++) {
                int32_t a = s->act[q];
                const float *src = s->xc + (size_t)a * d;
                if (s->badv[q]) s->done[a] = 1;
                else if (o->apgd && isfinite(s->fbest[a])) src = s->xb + (size_t)a * d;
                memcpy(out + (size_t)a * d, src, d * sizeof(float));
                adv[a] = s->badv[q];
            }
        }
    }
    return st;
}

static foolc_status iter_make(void *ctx, foolc__run *run, const int32_t *idx,
                              const double *eps, int32_t m, float *out, uint8_t *adv)
{
    return iter_attack(ctx, run, idx, eps, m, out, adv);
}

/* Per sample of idx: margin / dual-norm(gradient of the margin) at the clean input, the
 * first-order estimate of the smallest adversarial epsilon (one gradient per sample). */
static foolc_status linear_estimate(foolc__run *run, foolc_norm p, const int32_t *idx,
                                    int32_t m, float *xs, float *grad, float *loss,
                                    double *scale)
{
    size_t d = run->d;
    double diam = foolc__box_diameter(run, p);
    for (int32_t a = 0; a < m; a++)
        memcpy(xs + (size_t)a * d, run->x + (size_t)idx[a] * d, d * sizeof(float));
    FOOLC__CHECK(foolc__run_grad(run, xs, idx, m, FOOLC__LOSS_MARGIN, grad, loss, NULL));
    for (int32_t a = 0; a < m; a++) {
        double g = dual_norm(p, grad + (size_t)a * d, d);
        double e = g > 0 ? fabs((double)loss[a]) / g : NAN;
        if (!(e > 1e-6 * diam)) e = isnan(e) ? 1e-3 * diam : 1e-6 * diam;
        scale[idx[a]] = e < diam ? e : diam;
    }
    return FOOLC_OK;
}

/* Bisection towards the clean input of every result found for samples idx. */
static foolc_status trim_results(foolc__run *run, const int32_t *idx, int32_t m, int32_t steps,
                                 float *buf, int32_t *ids)
{
    if (steps <= 0) return FOOLC_OK;
    size_t d = run->d;
    int32_t nb = 0;
    for (int32_t a = 0; a < m; a++) {
        int32_t i = idx[a];
        if (!run->res->success[i] || run->res->distance[i] == 0) continue;
        memcpy(buf + (size_t)nb * d, run->res->x_adv + (size_t)i * d, d * sizeof(float));
        ids[nb++] = i;
    }
    return foolc__run_bisect(run, ids, nb, buf, steps, NULL);
}

/* Samples per chunk of the iterative attacks (their state is 7 images per sample). */
#define ITER_CHUNK 512

foolc_status foolc__iter_run(foolc__run *run, const foolc__iter_opts *o,
                             const foolc__search_opts *so)
{
    int32_t cap = run->n_todo < ITER_CHUNK ? run->n_todo : ITER_CHUNK;
    iter_state s;
    memset(&s, 0, sizeof s);
    s.o = o;
    FOOLC__CHECK(state_alloc(&s, run, cap));
    double *scale = foolc__malloc(foolc__mul((size_t)run->n, sizeof(double)));
    foolc_status st = FOOLC_OK;
    if (!scale) {
        state_free(&s);
        return foolc__nomem("epsilon estimates");
    }
    double diam = foolc__box_diameter(run, o->norm);
    for (int32_t c0 = 0; st >= 0 && c0 < run->n_todo; c0 += cap) {
        const int32_t *idx = run->todo + c0;
        int32_t m = run->n_todo - c0 < cap ? run->n_todo - c0 : cap;
        foolc__eps_opts eo = {so->eps_init, 0, so->growth, so->rtol, so->epsilon};
        if (so->epsilon > 0) {
            s.scale = NULL;
            eo.eps_max = so->epsilon;
        } else {
            /* The epsilon search runs in units of each sample's linear estimate, capped at
             * the box's diameter in the make step. */
            if ((st = linear_estimate(run, o->norm, idx, m, s.bx, s.bg, s.bf, scale)) < 0)
                break;
            double smin = diam;
            for (int32_t a = 0; a < m; a++) smin = fmin(smin, scale[idx[a]]);
            s.scale = scale;
            s.scale_max = diam;
            eo.eps_max = diam / smin;
        }
        st = foolc__eps_search(run, idx, m, &eo, iter_make, &s);
        if (st >= 0 && so->epsilon == 0) st = trim_results(run, idx, m, so->trim, s.xp, s.bid);
    }
    foolc__free(scale);
    state_free(&s);
    return st;
}

void foolc__iter_config_get(const foolc__param *params, size_t n, const void *config,
                            const foolc__iter_config *dflt, foolc__iter_config *out)
{
    *out = *dflt;
    for (size_t i = 0; i < n; i++)
        memcpy((char *)out + params[i].offset, (const char *)config + params[i].offset,
               sizeof(double));
}

foolc_status foolc__iter_config_run(foolc__run *run, foolc_norm p, const foolc__iter_config *c,
                                    int apgd)
{
    foolc__iter_opts o = {p, (int32_t)c->steps, (int32_t)c->restarts, c->rel_stepsize,
                          c->random_start != 0, (foolc__gloss_kind)(int)c->loss, c->momentum,
                          c->quantile, apgd};
    foolc__search_opts s = {c->epsilon, c->rtol, c->growth, c->eps_init, (int32_t)c->trim};
    return foolc__iter_run(run, &o, &s);
}

/* ---- FGM ---- */

typedef struct fgm_ctx {
    foolc_norm norm;
    float *dir;        /* n*d: unit descent direction (L2), signs (Linf), -grad (L1) */
    int32_t *order;    /* n*d: L1 coordinates by decreasing |grad| */
    int dense;         /* L1: the dense path clip(x0 + t u / |u|_1) instead of the greedy */
} fgm_ctx;

static foolc_status fgm_make(void *ctx, foolc__run *run, const int32_t *idx, const double *eps,
                             int32_t m, float *out, uint8_t *adv)
{
    (void)adv;
    fgm_ctx *c = ctx;
    size_t d = run->d;
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)idx[a] * d, *u = c->dir + (size_t)idx[a] * d;
        float *o = out + (size_t)a * d;
        if (c->norm != FOOLC_L1 || c->dense) {
            /* clip(x0 + eps u): the exact maximiser of the linearised loss over the Linf
             * ball ∩ box, and for L2 the water-filling path of the ball ∩ box. */
            double sc = 1;
            if (c->norm == FOOLC_L1) {
                double l1 = 0;
                for (size_t j = 0; j < d; j++) l1 += fabs((double)u[j]);
                sc = l1 > 0 ? 1 / l1 : 0;
            }
            for (size_t j = 0; j < d; j++)
                o[j] = (float)clampd((double)x0[j] + eps[a] * sc * u[j], run->lo, run->hi);
            continue;
        }
        /* L1: spend the budget on the coordinates by decreasing |grad|, each up to the box. */
        memcpy(o, x0, d * sizeof(float));
        const int32_t *ord = c->order + (size_t)idx[a] * d;
        double left = eps[a];
        for (size_t q = 0; q < d && left > 0; q++) {
            int32_t j = ord[q];
            if (u[j] == 0) break;
            double cap = u[j] > 0 ? (double)run->hi - x0[j] : (double)x0[j] - run->lo;
            double amt = cap < left ? cap : left;
            o[j] = (float)clampd((double)x0[j] + (u[j] > 0 ? amt : -amt), run->lo, run->hi);
            left -= amt;
        }
    }
    return FOOLC_OK;
}

/* Sorts ord (indices into key) by decreasing key: a heap sort, no allocation. */
static void sort_desc(int32_t *ord, const float *key, size_t n)
{
    for (size_t q = 0; q < n; q++) ord[q] = (int32_t)q;
    if (n < 2) return;
    /* Min-heap on key, then extracting the minimum to the end gives decreasing order. */
    for (size_t start = n / 2; start-- > 0;) {
        size_t r = start;
        for (;;) {
            size_t c = 2 * r + 1;
            if (c >= n) break;
            if (c + 1 < n && key[ord[c + 1]] < key[ord[c]]) c++;
            if (key[ord[c]] < key[ord[r]]) {
                int32_t t = ord[c]; ord[c] = ord[r]; ord[r] = t;
                r = c;
            } else break;
        }
    }
    for (size_t end = n - 1; end > 0; end--) {
        int32_t t = ord[0]; ord[0] = ord[end]; ord[end] = t;
        size_t r = 0;
        for (;;) {
            size_t c = 2 * r + 1;
            if (c >= end) break;
            if (c + 1 < end && key[ord[c + 1]] < key[ord[c]]) c++;
            if (key[ord[c]] < key[ord[r]]) {
                int32_t t2 = ord[c]; ord[c] = ord[r]; ord[r] = t2;
                r = c;
            } else break;
        }
    }
}

foolc_status foolc__fgm_run(foolc__run *run, foolc_norm norm, int loss_mode,
                            const foolc__search_opts *so)
{
    size_t d = run->d, nd = foolc__mul((size_t)run->n, d);
    int32_t m = run->n_todo;
    size_t md = foolc__mul((size_t)m, d);
    float *dir = foolc__malloc(foolc__mul(nd, sizeof(float)));
    float *grad = foolc__malloc(foolc__mul(md, sizeof(float)));
    float *xs = foolc__malloc(foolc__mul(md, sizeof(float)));
    float *key = foolc__malloc(foolc__mul(d, sizeof(float)));
    int32_t *order = norm == FOOLC_L1 ? foolc__malloc(foolc__mul(nd, sizeof(int32_t))) : NULL;
    foolc_status st = FOOLC_OK;
    if (!dir || !grad || !xs || !key || (norm == FOOLC_L1 && !order)) {
        st = foolc__nomem("fgm buffers");
        goto out;
    }
    double diam = foolc__box_diameter(run, norm);
    foolc__eps_opts eo = {so->eps_init, diam, so->growth, so->rtol, so->epsilon};
    fgm_ctx ctx = {norm, dir, order, 0};
    for (int pass = 0; pass < 2; pass++) {
        if (loss_mode != 2 && loss_mode != pass) continue;
        foolc__loss loss = pass == 0 ? FOOLC__LOSS_CE : FOOLC__LOSS_MARGIN;
        for (int32_t a = 0; a < m; a++)
            memcpy(xs + (size_t)a * d, run->x + (size_t)run->todo[a] * d, d * sizeof(float));
        if ((st = foolc__run_grad(run, xs, run->todo, m, loss, grad, NULL, NULL)) < 0) goto out;
        for (int32_t a = 0; a < m; a++) {
            int32_t i = run->todo[a];
            const float *g = grad + (size_t)a * d, *x0 = run->x + (size_t)i * d;
            float *u = dir + (size_t)i * d;
            double s2 = 0;
            for (size_t j = 0; j < d; j++) {
                float v = -g[j];
                /* Coordinates that cannot move in their direction carry no budget. */
                if ((x0[j] <= run->lo && v < 0) || (x0[j] >= run->hi && v > 0)) v = 0;
                u[j] = v;
                s2 += (double)v * v;
            }
            if (norm == FOOLC_LINF) {
                for (size_t j = 0; j < d; j++) u[j] = u[j] > 0 ? 1.0f : u[j] < 0 ? -1.0f : 0.0f;
            } else if (norm == FOOLC_L2) {
                float inv = s2 > 0 ? (float)(1 / sqrt(s2)) : 0.0f;
                for (size_t j = 0; j < d; j++) u[j] *= inv;
            } else {
                for (size_t j = 0; j < d; j++) key[j] = fabsf(u[j]);
                sort_desc(order + (size_t)i * d, key, d);
            }
        }
        ctx.dense = 0;
        if ((st = foolc__eps_search(run, run->todo, m, &eo, fgm_make, &ctx)) < 0) goto out;
        /* L1: the greedy path is exact for linear models but concentrates the budget on few
         * pixels, where a network's linearisation is poor; the dense path (Foolbox's L1
         * FGM) is searched too, the smaller result kept. */
        ctx.dense = 1;
        if (norm == FOOLC_L1 &&
            (st = foolc__eps_search(run, run->todo, m, &eo, fgm_make, &ctx)) < 0) goto out;
    }
out:
    foolc__free(dir);
    foolc__free(grad);
    foolc__free(xs);
    foolc__free(key);
    foolc__free(order);
    return st;
}

/* ---- DeepFool ---- */

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
            o[j] = (float)clampd((double)x0[j] + t[a] * p[j], run->lo, run->hi);
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
                double nq = dual_norm(o->norm, g, d);
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
                xw[j] = (float)clampd((double)x0[j] + (1 + o->overshoot) * p[j], run->lo,
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
        foolc__eps_opts eo = {tmax, tmax, 2, o->rtol, 0};
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
