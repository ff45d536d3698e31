/* PDPGD, primal-dual proximal gradient descent (Matyasko and Chau, arXiv:2106.01538), in
 * L0, L1, L2 and Linf: the Lagrangian lambda_0 ||delta|| + lambda_1 softplus(margin) of the
 * constrained problem min ||delta|| s.t. margin(x0 + delta) <= 0 is minimised in delta by
 * Adam on the classification term followed by proximal Adam (a few fixed-point steps of the
 * norm's proximal operator in Adam's metric, arXiv:1910.10094), and maximised in the dual:
 * log(lambda_1 / lambda_0) grows by a decaying step while the point is not adversarial and
 * shrinks while it is, the weights smoothed by a moving average. The primal step size decays
 * exponentially. The margin is the criterion's, divided by the temperature of the clean
 * logits (foolc__logit_temp), so that scaled or saturated logits give the same iterates. Every
 * adversarial iterate is offered; the attack ends with the class-pair boundary polish and
 * the final search of attacks/minnorm/common.c (L1, L2, Linf) or, in L0 (whose proximal
 * operator is by default the L2/3 quasi-norm's, as the reference implementation advises:
 * hard thresholding leaves a median of 50 coordinates on the reference MLP before the
 * polish, against 6), with an L0 polish
 * (per class pair, the fewest coordinates pushed to the box, ranked by the margin change
 * each can make, then a pruning of the best point), exact on models linear in the input. */
#include "arena.h"
#include "minnorm.h"
#include "numeric.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct pdpgd_config {
    double steps, primal_lr, primal_lr_decrease, dual_ratio_init, dual_lr, dual_lr_decrease,
        dual_ema, dual_min_ratio, proximal_steps, prox_tol, polish, bisect, l0_prox;
} pdpgd_config;

/* ---- the proximal operators of mu ||.|| (in place, d values) ---- */

/* The proximal operator of mu |t|^(2/3) at t (the closed form of the thresholding for
 * q = 2/3, Cao et al., IEEE TNNLS 2013): 0 below the threshold where the depressed cubic
 * has no real root, else |z| = (sqrt(b) + sqrt(2|t| / sqrt(b) - b))^3 / 8 with
 * b = 2 (cbrt(t^2/16 + a) + cbrt(t^2/16 - a)), a = sqrt(t^4/256 - 8 mu^3 / 729). */
/* The cube root of x (double, to ~1e-13 relative, far below a float's ulp; libm's cbrt
 * goes through frexp and scalbn): a guess from the exponent's bits divided by 3 (5-6 bits,
 * Kahan's), then two Halley steps (cubic convergence). Plain double arithmetic without
 * contraction: the same bits in every clone. 0, tiny and non-finite x go to cbrt. */
static inline double pd_cbrt(double x)
{
    double ax = fabs(x);
    if (!(ax >= 0x1p-900 && ax <= 0x1p900)) return cbrt(x);
    uint64_t bits;
    memcpy(&bits, &ax, sizeof bits);
    bits = bits / 3 + ((uint64_t)715094163 << 32);
    double y;
    memcpy(&y, &bits, sizeof y);
    for (int k = 0; k < 2; k++) {
        double y3 = y * y * y;
        y *= (y3 + 2 * ax) / (2 * y3 + ax);
    }
    return x < 0 ? -y : y;
}

static inline double prox_l23(double t, double mu)
{
    double a2 = t * t * t * t / 256 - 8 * mu * mu * mu / 729;
    if (!(a2 >= 0)) return 0;
    double a = sqrt(a2), q = t * t / 16;
    double b = 2 * (pd_cbrt(q + a) + pd_cbrt(q - a));
    if (!(b > 0)) return 0;
    double sb = sqrt(b), r = 2 * fabs(t) / sb - b;
    if (!(r >= 0)) return 0;
    double u = sb + sqrt(r);
    return copysign(u * u * u / 8, t);
}

/* The per-element loops below run in blocks of FOOLC__BLOCK (FOOLC__VEC; every element on
 * its own, so the same bits in every clone). */
#define PD_VEC FOOLC__VEC
#define PD_B FOOLC__BLOCK

/* v_j = sign(v_j) max(|v_j| - mu, 0), soft thresholding (L1's proximal operator). */
#define PD_SOFT(j)                                                                          \
    do {                                                                                    \
        double a_ = fabs((double)v[j]) - mu;                                                \
        float m_ = (float)a_;                                                               \
        v[j] = a_ > 0 ? (v[j] > 0 ? m_ : -m_) : 0.0f;                                       \
    } while (0)

/* Hard thresholding (L0's) at t; the L2/3 operator's cheap first test: 0 where the cubic
 * has no real root (a2 < 0, the same expression as prox_l23's, so the survivors are the
 * ones prox_l23 computes). */
#define PD_HARD(j) v[j] = fabs((double)v[j]) >= t ? v[j] : 0.0f
#define PD_L23_TEST(j)                                                                      \
    do {                                                                                    \
        double t_ = v[j];                                                                   \
        v[j] = t_ * t_ * t_ * t_ / 256 - c >= 0 ? v[j] : 0.0f;                              \
    } while (0)

PD_VEC static void prox_soft(float *restrict v, size_t d, double mu)
{
    size_t j = 0;
    for (; j + PD_B <= d; j += PD_B)
        for (size_t k = 0; k < PD_B; k++) PD_SOFT(j + k);
    for (; j < d; j++) PD_SOFT(j);
}

PD_VEC static void prox_hard(float *restrict v, size_t d, double t)
{
    size_t j = 0;
    for (; j + PD_B <= d; j += PD_B)
        for (size_t k = 0; k < PD_B; k++) PD_HARD(j + k);
    for (; j < d; j++) PD_HARD(j);
}

/* Zeroes the coordinates below the L2/3 threshold (c = 8 mu^3 / 729), then runs prox_l23 on
 * the rest, listed first without a branch (idx: d entries) so that the out-of-order core
 * overlaps their chains of square roots and divisions. */
PD_VEC static void prox_l23_all(float *restrict v, size_t d, double mu, int32_t *restrict idx)
{
    const double c = 8 * mu * mu * mu / 729;
    size_t j = 0, n = 0;
    for (; j + PD_B <= d; j += PD_B)
        for (size_t k = 0; k < PD_B; k++) PD_L23_TEST(j + k);
    for (; j < d; j++) PD_L23_TEST(j);
    for (j = 0; j < d; j++) {
        idx[n] = (int32_t)j;
        n += v[j] != 0.0f;
    }
    size_t i = 0;
    for (; i + PD_B <= n; i += PD_B) {   /* prox_l23's arithmetic in PD_B lanes, selects */
        double out[PD_B];
        int rare = 0;
        for (size_t k = 0; k < PD_B; k++) {
            double t = v[idx[i + k]];
            double a2 = t * t * t * t / 256 - 8 * mu * mu * mu / 729;
            double a = sqrt(a2 >= 0 ? a2 : 0), q = t * t / 16;
            double x1 = q + a, x2 = q - a, y1, y2, ax1 = fabs(x1), ax2 = fabs(x2);
            rare |= !(ax1 >= 0x1p-900 && ax1 <= 0x1p900 && ax2 >= 0x1p-900 && ax2 <= 0x1p900);
            uint64_t b1, b2;
            memcpy(&b1, &ax1, sizeof b1);
            memcpy(&b2, &ax2, sizeof b2);
            b1 = b1 / 3 + ((uint64_t)715094163 << 32);
            b2 = b2 / 3 + ((uint64_t)715094163 << 32);
            memcpy(&y1, &b1, sizeof y1);
            memcpy(&y2, &b2, sizeof y2);
            for (int h = 0; h < 2; h++) {
                double c1 = y1 * y1 * y1, c2 = y2 * y2 * y2;
                y1 *= (c1 + 2 * ax1) / (2 * c1 + ax1);
                y2 *= (c2 + 2 * ax2) / (2 * c2 + ax2);
            }
            double bb = 2 * ((x1 < 0 ? -y1 : y1) + (x2 < 0 ? -y2 : y2));
            double sb = sqrt(bb > 0 ? bb : 0), r = 2 * fabs(t) / sb - bb;
            double u = sb + sqrt(r >= 0 ? r : 0), z = u * u * u / 8;
            out[k] = a2 >= 0 && bb > 0 && r >= 0 ? (t < 0 ? -z : z) : 0;
        }
        if (rare)   /* 0, tiny or huge cube root arguments: prox_l23 (libm's cbrt there) */
            for (size_t k = 0; k < PD_B; k++) out[k] = prox_l23(v[idx[i + k]], mu);
        for (size_t k = 0; k < PD_B; k++) v[idx[i + k]] = (float)out[k];
    }
    for (; i < n; i++) v[idx[i]] = (float)prox_l23(v[idx[i]], mu);
}

/* Linf's operator by Moreau's identity, v - P(v) with P the projection onto the L1 ball
 * of radius mu: P(v) is v itself when inside (inside: v - v), else the soft threshold at
 * theta (foolc__l1_ball_theta_lanes: its sums in lanes, a few passes over v, no serial
 * index-order sums; started from the sample's last theta), subtracted in the same pass. */
#define PD_MOREAU(j)                                                                        \
    do {                                                                                    \
        double a_ = fabs((double)v[j]) - theta;                                             \
        float m_ = (float)a_;                                                               \
        float u_ = inside ? v[j] : a_ > 0 ? (v[j] > 0 ? m_ : -m_) : 0.0f;                   \
        v[j] -= u_;                                                                         \
    } while (0)

PD_VEC static void pd_moreau(float *restrict v, size_t d, int inside, double theta)
{
    size_t j = 0;
    for (; j + PD_B <= d; j += PD_B)
        for (size_t k = 0; k < PD_B; k++) PD_MOREAU(j + k);
    for (; j < d; j++) PD_MOREAU(j);
}

static void prox(foolc_norm p, int l23, float *v, size_t d, double mu, double *work,
                 double *last)
{
    if (p == FOOLC_L0 && l23) {   /* the L2/3 quasi-norm's, a smoother stand-in for L0 */
        prox_l23_all(v, d, mu, (int32_t *)work);
    } else if (p == FOOLC_L0) {   /* hard thresholding at sqrt(2 mu) */
        prox_hard(v, d, sqrt(2 * mu));
    } else if (p == FOOLC_L1) {   /* soft thresholding */
        prox_soft(v, d, mu);
    } else if (p == FOOLC_L2) {   /* block soft thresholding */
        double n = foolc__norm(FOOLC_L2, v, d);
        foolc__mn_scale(v, n > mu ? 1 - mu / n : 0, d);
    } else {                      /* Moreau: v - (projection of v onto the L1 ball of radius mu) */
        double theta = 0;
        int inside = !foolc__l1_ball_theta_lanes(v, d, mu, *last, work, &theta);
        if (!inside) *last = theta;
        pd_moreau(v, d, inside, theta);
    }
}

/* Adam's step on the classification term (gradient w * g) in three passes: the moments m
 * and v (kept in double in tm, tv), their square roots (a scalar loop: gcc vectorises no
 * sqrt that may set errno, and no optimize attribute lifts that), then the denominator
 * h = sqrt(v) / bc2 + 1e-8 and delta -= step * m / h; returns max h. */
#define PD_MOMENTS(j)                                                                       \
    do {                                                                                    \
        double gj = w * g[j];                                                               \
        double mm = 0.9 * mq[j] + (1 - 0.9) * gj, vv = 0.999 * vq[j] + (1 - 0.999) * gj * gj; \
        mq[j] = (float)mm;                                                                  \
        vq[j] = (float)vv;                                                                  \
        tm[j] = mm;                                                                         \
        tv[j] = vv;                                                                         \
    } while (0)
#define PD_ADAM(j, mx)                                                                      \
    do {                                                                                    \
        double den = tv[j] / bc2 + 1e-8;                                                    \
        hq[j] = (float)den;                                                                 \
        mx = den > mx ? den : mx;                                                           \
        da[j] = (float)(da[j] - step * tm[j] / den);                                        \
    } while (0)

PD_VEC static void moments(float *restrict mq, float *restrict vq, double *restrict tm,
                           double *restrict tv, const float *restrict g, size_t d, double w)
{
    size_t j = 0;
    for (; j + PD_B <= d; j += PD_B)
        for (size_t k = 0; k < PD_B; k++) PD_MOMENTS(j + k);
    for (; j < d; j++) PD_MOMENTS(j);
}

PD_VEC static double adam_step(float *restrict da, float *restrict hq, const double *restrict tm,
                               const double *restrict tv, size_t d, double bc2, double step)
{
    double mx[PD_B] = {0}, psi = 0;
    size_t j = 0;
    for (; j + PD_B <= d; j += PD_B)
        for (size_t k = 0; k < PD_B; k++) PD_ADAM(j + k, mx[k]);
    for (; j < d; j++) PD_ADAM(j, psi);
    for (size_t k = 0; k < PD_B; k++) psi = mx[k] > psi ? mx[k] : psi;
    return psi;
}

static double adam(float *da, float *mq, float *vq, float *hq, const float *g, size_t d,
                   double w, double bc2, double step, double *tm, double *tv)
{
    moments(mq, vq, tm, tv, g, d, w);
    for (size_t j = 0; j < d; j++) tv[j] = sqrt(tv[j]);
    return adam_step(da, hq, tm, tv, d, bc2, step);
}

/* h /= psi. */
PD_VEC static void pd_div(float *restrict h, size_t d, double psi)
{
    size_t j = 0;
    for (; j + PD_B <= d; j += PD_B)
        for (size_t k = 0; k < PD_B; k++) h[j + k] = (float)(h[j + k] / psi);
    for (; j < d; j++) h[j] = (float)(h[j] / psi);
}

/* The fixed point's next point zn = z - h (z - delta). */
PD_VEC static void pd_point(float *restrict zn, const float *restrict z, const float *restrict h,
                            const float *restrict da, size_t d)
{
    size_t j = 0;
    for (; j + PD_B <= d; j += PD_B)
        for (size_t k = 0; k < PD_B; k++) zn[j + k] = z[j + k] - h[j + k] * (z[j + k] - da[j + k]);
    for (; j < d; j++) zn[j] = z[j] - h[j] * (z[j] - da[j]);
}

/* zn = clip(x0 + zn, lo, hi) - x0 (foolc__mn_box's arithmetic), then whether zn moved from
 * z by more than tol relative to its L2 norm (sums per lane), in one pass. */
#define PD_BOX_MOVED(j, CA, NA)                                                             \
    do {                                                                                    \
        float v_ = x0[j] + zn[j];                                                           \
        v_ = v_ < lo ? lo : v_;                                                             \
        v_ = v_ > hi ? hi : v_;                                                             \
        zn[j] = v_ - x0[j];                                                                 \
        double e_ = (double)zn[j] - z[j];                                                   \
        CA += e_ * e_;                                                                      \
        NA += (double)zn[j] * zn[j];                                                        \
    } while (0)

PD_VEC static int pd_box_moved(const float *restrict x0, float *restrict zn,
                               const float *restrict z, size_t d, float lo, float hi, double tol)
{
    double ca[PD_B] = {0}, na[PD_B] = {0}, ch = 0, nz = 0;
    size_t j = 0;
    for (; j + PD_B <= d; j += PD_B)
        for (size_t k = 0; k < PD_B; k++) PD_BOX_MOVED(j + k, ca[k], na[k]);
    for (; j < d; j++) PD_BOX_MOVED(j, ch, nz);
    for (size_t k = 0; k < PD_B; k++) {
        ch += ca[k];
        nz += na[k];
    }
    return ch > tol * tol * nz;
}

/* ---- the L0 polish ---- */

/* Samples per block of the L0 polish. */
#define L0_BLOCK 32

/* The L0 polish (minnorm.h; also sigma-zero's and VFGA's end). */
foolc_status foolc__mn_l0_polish(foolc__run *run)
{
    size_t d = run->d;
    int32_t k = run->k, m = foolc__mn_successes(run, NULL, NULL);
    if (m == 0) return FOOLC_OK;
    int pairs = k > 2 && foolc__run_crit_kind(run) == FOOLC__CRIT_MISCLASSIFICATION;
    int32_t nc = pairs ? k - 1 : 1;
    if (nc > FOOLC__POLISH_MAX_CLASSES) nc = FOOLC__POLISH_MAX_CLASSES;
    int32_t bs = m < L0_BLOCK ? m : L0_BLOCK, mc = bs * nc;
    size_t md = foolc__mul((size_t)mc, d);
    foolc__arena ar = {0};
    float *xs, *grad, *logits, *xb;
    foolc__mn_rank *tmp;
    int32_t *all, *sid, *cls, *order, *lo, *hi, *row;
    uint8_t *adv;
    foolc_status st = FOOLC_OK;
    for (int pass = 0; pass < 2; pass++) {
        xs = foolc__arena_take(&ar, md, sizeof(float));
        grad = foolc__arena_take(&ar, md, sizeof(float));
        xb = foolc__arena_take(&ar, foolc__mul((size_t)bs, d), sizeof(float));
        logits = foolc__arena_take(&ar, foolc__mul((size_t)mc, (size_t)k), sizeof(float));
        tmp = foolc__arena_take(&ar, d, sizeof(foolc__mn_rank));
        order = foolc__arena_take(&ar, md, sizeof(int32_t));
        all = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        sid = foolc__arena_take(&ar, (size_t)mc, sizeof(int32_t));
        cls = foolc__arena_take(&ar, (size_t)mc, sizeof(int32_t));
        lo = foolc__arena_take(&ar, (size_t)mc, sizeof(int32_t));
        hi = foolc__arena_take(&ar, (size_t)mc, sizeof(int32_t));
        row = foolc__arena_take(&ar, (size_t)mc, sizeof(int32_t));
        adv = foolc__arena_take(&ar, (size_t)mc, 1);
        if (pass == 0 && (st = foolc__arena_alloc(&ar, "pdpgd-l0 polish")) < 0) return st;
    }
    foolc__mn_successes(run, NULL, all);
    foolc__pair pc = {run, NULL, cls};
    for (int32_t b0 = 0; b0 < m && st >= 0; b0 += bs) {
        int32_t na = m - b0 < bs ? m - b0 : bs;
        for (int32_t step = 0; step < 2 && st >= 0; step++) {
            int32_t rows = step == 0 ? na * nc : na;
            int32_t ncand = step == 0 ? nc : 1;
            int top = step == 0 && pairs && nc < k - 1;   /* rank the classes first */
            for (int32_t a = 0; a < na; a++) {
                sid[a] = all[b0 + a];
                memcpy(xb + (size_t)a * d, run->res->x_adv + (size_t)sid[a] * d,
                       d * sizeof(float));
            }
            if (top && (st = foolc__run_scores(run, xb, sid, na, logits)) < 0) break;
            for (int32_t a = na - 1; a >= 0; a--) {
                int32_t s = all[b0 + a], y = run->labels[s];
                const float *z = logits + (size_t)a * (size_t)k;
                for (int32_t q = 0; q < ncand; q++) {
                    int32_t r = a * ncand + q, c = q < y ? q : q + 1;
                    if (top) {   /* the q-th largest logit but y's, ties to the lower index */
                        c = -1;
                        for (int32_t j = 0; j < k; j++) {
                            if (j == y) continue;
                            int used = 0;
                            for (int32_t t = a * ncand; t < r; t++) used |= cls[t] == j;
                            if (!used && (c < 0 || z[j] > z[c])) c = j;
                        }
                    }
                    cls[r] = c;
                }
            }
            for (int32_t r = rows - 1; r >= 0; r--) {
                int32_t a = r / ncand;
                sid[r] = all[b0 + a];
                memcpy(xs + (size_t)r * d, xb + (size_t)a * d, d * sizeof(float));
            }
            if (step == 0 && pairs)
                st = foolc__run_grad_rows(run, xs, sid, rows, foolc__pair_row, &pc, grad, logits,
                                          NULL, NULL);
            else
                st = foolc__mn_margin_grad(run, xs, sid, rows, NULL, INFINITY, grad, NULL, NULL,
                                           logits);
            if (st < 0) break;
            for (int32_t r = 0; r < rows; r++) {
                int32_t a = r / ncand;
                const float *x0 = run->x + (size_t)sid[r] * d, *g = grad + (size_t)r * d;
                const float *xa = xb + (size_t)a * d;
                for (size_t j = 0; j < d; j++) {
                    double gj = g[j], room = gj < 0 ? (double)run->hi - x0[j]
                                             : gj > 0 ? (double)x0[j] - run->lo : 0;
                    double dj = (double)xa[j] - x0[j];
                    tmp[j].key = step == 0 ? fabs(gj) * room
                                           : dj != 0 ? fabs(gj * dj) + 1e-30 : 0;
                    tmp[j].j = (int32_t)j;
                }
                qsort(tmp, d, sizeof *tmp, foolc__mn_cmp_rank);
                for (size_t j = 0; j < d; j++) order[(size_t)r * d + j] = tmp[j].j;
                double best = run->res->distance[sid[r]];
                lo[r] = 0;
                hi[r] = best < (double)d ? (int32_t)best : (int32_t)d;
            }
            for (;;) {
                int32_t nt = 0;
                for (int32_t r = 0; r < rows; r++) {
                    /* A candidate's bracket shrinks to the sample's best as others succeed. */
                    double best = run->res->distance[sid[r]];
                    if (best < hi[r]) hi[r] = (int32_t)best;
                    if (hi[r] - lo[r] <= 1) continue;
                    int32_t mid = lo[r] + (hi[r] - lo[r]) / 2, a = r / ncand;
                    const float *x0 = run->x + (size_t)sid[r] * d, *g = grad + (size_t)r * d;
                    const float *xa = xb + (size_t)a * d;
                    float *o = xs + (size_t)nt * d;
                    memcpy(o, x0, d * sizeof(float));
                    for (int32_t t = 0; t < mid; t++) {
                        int32_t j = order[(size_t)r * d + (size_t)t];
                        if (step == 1) o[j] = xa[j];
                        else if (g[j] < 0) o[j] = run->hi;
                        else if (g[j] > 0) o[j] = run->lo;
                    }
                    row[nt] = r;
                    cls[nt++] = sid[r];   /* cls is free here: the ids of the tested rows */
                }
                if (nt == 0) break;
                if ((st = foolc__run_is_adv(run, xs, cls, nt, adv, NULL)) < 0) break;
                for (int32_t t = 0; t < nt; t++) {
                    int32_t r = row[t], mid = lo[r] + (hi[r] - lo[r]) / 2;
                    if (adv[t]) {
                        foolc__run_offer(run, cls[t], xs + (size_t)t * d);
                        hi[r] = mid;
                    } else {
                        lo[r] = mid;
                    }
                }
            }
        }
    }
    foolc__arena_free(&ar);
    return st;
}

/* ---- the attack ---- */

static foolc_status pdpgd_run(foolc__run *run, const void *config)
{
    const pdpgd_config *cfg = config;
    foolc_norm p = run->norm;
    size_t d = run->d;
    int32_t m = run->n_todo, steps = (int32_t)cfg->steps, psteps = (int32_t)cfg->proximal_steps;
    size_t md = foolc__mul((size_t)m, d);
    foolc__arena ar = {0};
    float *delta, *xs, *grad, *ma, *va, *z, *zn, *logits, *hq;
    double *work, *margin, *lscale, *lam, *lam0, *lam1, *last;
    int32_t *sid;
    uint8_t *adv;
    foolc_status st;
    for (int pass = 0; pass < 2; pass++) {
        delta = foolc__arena_take(&ar, md, sizeof(float));
        xs = foolc__arena_take(&ar, md, sizeof(float));
        grad = foolc__arena_take(&ar, md, sizeof(float));
        ma = foolc__arena_take(&ar, md, sizeof(float));
        va = foolc__arena_take(&ar, md, sizeof(float));
        z = foolc__arena_take(&ar, d, sizeof(float));
        zn = foolc__arena_take(&ar, d, sizeof(float));
        hq = foolc__arena_take(&ar, d, sizeof(float));
        logits = foolc__arena_take(&ar, foolc__mul((size_t)m, (size_t)run->k), sizeof(float));
        work = foolc__arena_take(&ar, 2 * d, sizeof(double));   /* Adam's m, v; L1 ball */
        margin = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        lscale = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        lam = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        lam0 = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        lam1 = foolc__arena_take(&ar, (size_t)m, sizeof(double));
        last = foolc__arena_take(&ar, (size_t)m, sizeof(double));   /* Linf: last theta */
        sid = foolc__arena_take(&ar, (size_t)m, sizeof(int32_t));
        adv = foolc__arena_take(&ar, (size_t)m, 1);
        if (pass == 0 && (st = foolc__arena_alloc(&ar, "pdpgd buffers")) < 0) return st;
    }
    memset(delta, 0, md * sizeof(float));
    memset(ma, 0, md * sizeof(float));
    memset(va, 0, md * sizeof(float));
    /* The dual variables: lambda = (0, lam) in log space, their softmax (lam0, lam1)
     * smoothed by the moving average; lam starts at -log(dual_ratio_init). */
    const double lmax = -log(cfg->dual_min_ratio);
    for (int32_t a = 0; a < m; a++) {
        sid[a] = run->todo[a];
        lam[a] = -log(cfg->dual_ratio_init);
        lam0[a] = 1 / (1 + exp(lam[a]));
        lam1[a] = 1 - lam0[a];
        lscale[a] = 1;
        last[a] = 0;
    }
    const double b1 = 0.9, b2 = 0.999;   /* Adam's, also in PD_ADAM */
    for (int32_t it = 0; it < steps; it++) {
        for (int32_t a = 0; a < m; a++)
            foolc__mn_clip_step(run->x + (size_t)sid[a] * d, delta + (size_t)a * d, d,
                                run->lo, run->hi, xs + (size_t)a * d);
        if ((st = foolc__mn_margin_grad(run, xs, sid, m, NULL, INFINITY, grad, margin, adv,
                                        logits)) < 0)
            goto out;
        double bc1 = 1 - pow(b1, it + 1), bc2 = sqrt(1 - pow(b2, it + 1));
        double lr = cfg->primal_lr * pow(cfg->primal_lr_decrease, (double)it / steps);
        double frac = steps > 1 ? (double)(steps - 1 - it) / (steps - 1) : 0;
        double theta = cfg->dual_lr * (frac * (1 - cfg->dual_lr_decrease) + cfg->dual_lr_decrease);
        for (int32_t a = 0; a < m; a++) {
            float *da = delta + (size_t)a * d, *mq = ma + (size_t)a * d, *vq = va + (size_t)a * d;
            const float *ga = grad + (size_t)a * d, *x0 = run->x + (size_t)sid[a] * d;
            if (it == 0) lscale[a] = foolc__logit_temp(logits + (size_t)a * run->k, run->k, NULL);
            if (adv[a]) foolc__run_offer(run, sid[a], xs + (size_t)a * d);
            /* d softplus(margin / scale) / d delta = sigmoid(margin / scale) / scale * grad. */
            double u = margin[a] / lscale[a];
            double w = (u >= 0 ? 1 / (1 + exp(-u)) : exp(u) / (1 + exp(u))) / lscale[a];
            /* Adam on the classification term, then back into the box. */
            double psi = adam(da, mq, vq, hq, ga, d, w, bc2, lr / bc1, work, work + d);
            foolc__mn_box(x0, da, d, run->lo, run->hi);
            /* Proximal Adam: z <- prox_{mu ||.||}(z - H (z - delta)) with H = den / max den
             * and mu the dual ratio times lr / max den, a few times or until z moves by less
             * than prox_tol (relative, L2). The first point is delta itself. */
            double mu = lam0[a] / lam1[a] * lr / psi;
            pd_div(hq, d, psi);
            float *zc = z, *zx = zn;
            memcpy(zc, da, d * sizeof(float));
            for (int32_t t = 0; t < psteps; t++) {
                if (t == 0) memcpy(zx, da, d * sizeof(float));
                else pd_point(zx, zc, hq, da, d);
                prox(p, cfg->l0_prox > 0, zx, d, mu, work, last + a);
                int moved = pd_box_moved(x0, zx, zc, d, run->lo, run->hi, cfg->prox_tol);
                float *sw = zc;
                zc = zx;
                zx = sw;
                if (!moved) break;
            }
            memcpy(da, zc, d * sizeof(float));
            /* Dual ascent on log(lambda_1 / lambda_0), then the moving average. */
            double sg = margin[a] > 0 ? 1 : margin[a] < 0 ? -1 : 0;
            lam[a] = foolc__clamp(lam[a] + theta * sg, -lmax, lmax);
            double s0 = 1 / (1 + exp(lam[a]));
            lam0[a] = cfg->dual_ema * lam0[a] + (1 - cfg->dual_ema) * s0;
            lam1[a] = cfg->dual_ema * lam1[a] + (1 - cfg->dual_ema) * (1 - s0);
        }
        if ((st = foolc__run_progress(run, it, steps)) < 0) goto out;
    }
    if (p == FOOLC_L0) {
        st = cfg->polish > 0 ? foolc__mn_l0_polish(run) : FOOLC_OK;
    } else {
        st = foolc__mn_polish_classes(run, p, (int32_t)cfg->polish, FOOLC__POLISH_MAX_CLASSES);
        if (st >= 0) st = foolc__mn_finish(run, (int32_t)cfg->bisect);
    }
out:
    foolc__arena_free(&ar);
    return st;
}

/* ---- registry entries ---- */

/* The reference implementation's settings (adversarial-library's pdpgd defaults). */
#define PDPGD_PARAMS                                                                         \
    FOOLC__PARAM(pdpgd_config, steps, 500, 1, 100000, 1,                                     \
                 "iterations (one forward+backward each)"),                                  \
    FOOLC__PARAM(pdpgd_config, primal_lr, 0.1, 1e-6, 100, 0, "first primal step size (Adam)"), \
    FOOLC__PARAM(pdpgd_config, primal_lr_decrease, 0.01, 1e-6, 1, 0,                         \
                 "the primal step size decays exponentially to this fraction"),              \
    FOOLC__PARAM(pdpgd_config, dual_ratio_init, 0.01, 1e-6, 1, 0,                            \
                 "first ratio lambda_0 / lambda_1 (smaller: more weight on the margin)"),    \
    FOOLC__PARAM(pdpgd_config, dual_lr, 0.1, 0, 10, 0, "first dual step size"),              \
    FOOLC__PARAM(pdpgd_config, dual_lr_decrease, 0.1, 0, 1, 0,                               \
                 "the dual step size falls linearly to this fraction"),                      \
    FOOLC__PARAM(pdpgd_config, dual_ema, 0.9, 0, 0.9999, 0,                                  \
                 "weight of the dual variables' moving average"),                            \
    FOOLC__PARAM(pdpgd_config, dual_min_ratio, 1e-6, 1e-12, 0.5, 0,                          \
                 "bound on lambda_0 / lambda_1 and its inverse"),                            \
    FOOLC__PARAM(pdpgd_config, proximal_steps, 5, 1, 100, 1,                                 \
                 "proximal Adam's fixed-point steps per iteration at most"),                 \
    FOOLC__PARAM(pdpgd_config, prox_tol, 0.01, 0, 1, 0,                                      \
                 "proximal steps stop when they move by less (relative, L2)"),               \
    FOOLC__PARAM(pdpgd_config, polish, 10, 0, 100, 1,                                        \
                 "final boundary steps from the best adversarial (L0: the L0 polish on/off); " \
                 "0 = none"),                                                                 \
    FOOLC__PARAM(pdpgd_config, bisect, 20, 0, 50, 1,                                         \
                 "final search towards the clean input, to a bracket 2^-bisect wide")

static const foolc__param pdpgd_params[] = {PDPGD_PARAMS};

static const foolc__param pdpgd_l0_params[] = {
    PDPGD_PARAMS,
    FOOLC__PARAM(pdpgd_config, l0_prox, 1, 0, 1, 1,
                 "[l0|l23] the proximal operator: L0's hard thresholding, or the L2/3 "
                 "quasi-norm's (the reference implementation's advice for L0)"),
};

FOOLC__ATTACK(pdpgd_l0, "pdpgd-l0", FOOLC_L0, FOOLC__GRAD, pdpgd_l0_params, pdpgd_config,
              pdpgd_run, NULL, "primal-dual proximal gradient descent (L0): hard thresholding");
FOOLC__ATTACK(pdpgd_l1, "pdpgd-l1", FOOLC_L1, FOOLC__GRAD, pdpgd_params, pdpgd_config,
              pdpgd_run, NULL, "primal-dual proximal gradient descent (L1): soft thresholding");
FOOLC__ATTACK(pdpgd_l2, "pdpgd-l2", FOOLC_L2, FOOLC__GRAD, pdpgd_params, pdpgd_config,
              pdpgd_run, NULL, "primal-dual proximal gradient descent (L2)");
FOOLC__ATTACK(pdpgd_linf, "pdpgd-linf", FOOLC_LINF, FOOLC__GRAD, pdpgd_params, pdpgd_config,
              pdpgd_run, NULL, "primal-dual proximal gradient descent (Linf)");
