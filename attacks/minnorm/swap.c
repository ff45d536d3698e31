/* polish-l0: a local search over the changed coordinates of each sample's best L0 point
 * (its given start: foolc_attack_set_sample_starts, the evaluation's best point so far; a
 * sample without one starts from the init attack's point, VFGA by default). Each round,
 * with g the gradient of the criterion's margin at the point a and the changed coordinates
 * ranked by |g_j (a_j - x_j)| (least weight first; ties by index):
 *  - each one set back to the clean value, in forward batches: the first adversarial row
 *    (in that order) is the next point, one coordinate fewer;
 *  - else each pair among the `pairs` of least weight set back, one gradient g' there, and in
 *    the pair's place one coordinate pushed to the box the way g' lowers the margin: the
 *    `candidates` of largest linear gain g'_j (b_j - bound), an unchanged one (added) or a
 *    changed one (moved, free in L0), one forward pass each; the first adversarial row is
 *    the next point (fewer coordinates);
 *  - else the same with each of those coordinates set back alone: a changed coordinate
 *    moved is one fewer; an unchanged one added keeps the count, and the adversarial such
 *    swap of smallest margin, where it is lower than the point's by 1e-4 of the logits'
 *    temperature (foolc__logit_temp: the same moves at every scale), is a plateau move (at
 *    most `plateau` per sample: more room for the next removal);
 *  - else the search ends; it ends too once the sample has used `budget` images (a forward
 *    pass one, a gradient two).
 * Every point taken is adversarial with the safety margin (foolc__mn_safe_adv) and offered.
 * The changed values of a sparse adversarial sit at the box mostly (on the adversarially
 * trained CNN 13 of 15, 30 of 32 on two images), so moving them by gradient steps on the
 * support (a repair, tried first) finds little; exchanging coordinates does
 * (docs/attacks-minnorm.md, "polish-l0"). */
#include "minnorm.h"
#include "decision/decision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct swap_config {
    double budget, pairs, candidates, plateau;
} swap_config;

static const foolc__param swap_params[] = {
    FOOLC__PARAM(swap_config, budget, 1500, 10, 1e7, 1,
                 "model images per sample (a forward pass one, a gradient two)"),
    FOOLC__PARAM(swap_config, pairs, 6, 2, 64, 1,
                 "changed coordinates of least weight whose pairs (and, on a plateau, each "
                 "alone) are set back"),
    FOOLC__PARAM(swap_config, candidates, 16, 1, 256, 1,
                 "coordinates of largest linear gain pushed to the box in place of what was set "
                 "back"),
    FOOLC__PARAM(swap_config, plateau, 10, 0, 1000, 1,
                 "moves per sample that keep the count and lower the margin"),
};

#define SWAP_BLOCK 64   /* rows per forward batch of single removals */

typedef struct swap_ws {
    foolc__run *run;
    const swap_config *cfg;
    int32_t i, rows_cap;
    const float *x;
    float *a, *b, *g, *rows, *logits, *best;
    double *f;
    uint8_t *adv;
    int32_t *rid;   /* the rows' sample: i, rows_cap times */
    foolc__mn_rank *rank;
    double used, fa, tol;   /* images so far; the point's safety-margin value; a plateau
                             * move's least gain (1e-4 of the point's logits' temperature) */
} swap_ws;

/* The gradient of the margin at p (into g), its value with the safety margin (*f) and
 * whether p is safely adversarial. */
static foolc_status grad_at(swap_ws *w, const float *p, float *g, double *f, uint8_t *adv)
{
    double mg;
    FOOLC__CHECK(foolc__mn_margin_grad(w->run, p, &w->i, 1, NULL, INFINITY, g, &mg, adv,
                                       w->logits));
    double safe = foolc__mn_safe(w->logits, w->run->k);
    *adv = *adv && mg < -safe;
    *f = mg + safe;
    w->used += 2;
    return FOOLC_OK;
}

/* The changed coordinates of a, least weight |g_j (a_j - x_j)| first: their count. */
static int32_t support(const swap_ws *w, int32_t *idx)
{
    size_t d = w->run->d;
    int32_t n = 0;
    for (size_t j = 0; j < d; j++)
        if (w->a[j] != w->x[j]) {
            w->rank[n].key = -fabs((double)w->g[j] * ((double)w->a[j] - w->x[j]));
            w->rank[n++].j = (int32_t)j;
        }
    qsort(w->rank, (size_t)n, sizeof *w->rank, foolc__mn_cmp_rank);
    for (int32_t r = 0; r < n; r++) idx[r] = w->rank[r].j;
    return n;
}

/* Row r: src with coordinate j set to v. */
static void put_row(swap_ws *w, int32_t r, const float *src, int32_t j, float v)
{
    float *row = w->rows + (size_t)r * w->run->d;
    memcpy(row, src, w->run->d * sizeof *row);
    row[j] = v;
}

/* Rows: b with one coordinate (not skip1, skip2) pushed to the box the way the gradient gb
 * at b lowers the margin, the `candidates` of largest linear gain gb_j (b_j - t_j), t_j its
 * bound: an unchanged coordinate added, or a changed one moved (free in L0); their count.
 * w->rank keeps the rows' coordinates. */
static int32_t swaps(swap_ws *w, const float *gb, int32_t skip1, int32_t skip2)
{
    const foolc__run *run = w->run;
    size_t d = run->d;
    int32_t n = 0, want = (int32_t)w->cfg->candidates;
    for (size_t j = 0; j < d; j++) {
        if ((int32_t)j == skip1 || (int32_t)j == skip2) continue;
        double gain = (double)gb[j] * ((double)w->b[j] - (gb[j] > 0 ? run->lo : run->hi));
        if (!(gain > 0)) continue;
        w->rank[n].key = gain;
        w->rank[n++].j = (int32_t)j;
    }
    qsort(w->rank, (size_t)n, sizeof *w->rank, foolc__mn_cmp_rank);
    if (n > want) n = want;
    if (n > w->rows_cap) n = w->rows_cap;
    for (int32_t r = 0; r < n; r++) {
        int32_t j = w->rank[r].j;
        put_row(w, r, w->b, j, gb[j] > 0 ? run->lo : run->hi);
    }
    return n;
}

/* The first *n rows, as far as the budget lets (*n: how many): the first safely
 * adversarial one, or -1. */
static foolc_status first_adv(swap_ws *w, int32_t *n, int32_t *hit)
{
    *hit = -1;
    double left = w->cfg->budget - w->used;
    if (*n > left) *n = left > 0 ? (int32_t)left : 0;
    if (*n <= 0) return FOOLC_OK;
    FOOLC__CHECK(foolc__mn_safe_adv(w->run, w->rows, w->rid, *n, w->logits, w->adv, w->f));
    w->used += *n;
    for (int32_t r = 0; r < *n; r++)
        if (w->adv[r]) {
            *hit = r;
            break;
        }
    return FOOLC_OK;
}

/* One round from w->a: 1 when a moved (fewer coordinates, or a plateau move), 0 at the end. */
static foolc_status round_once(swap_ws *w, int32_t *idx, int32_t *plateau, int *moved)
{
    size_t d = w->run->d;
    *moved = 0;
    int32_t k = support(w, idx), hit;
    if (k <= 1) return FOOLC_OK;
    /* Single coordinates set back. */
    for (int32_t s0 = 0; s0 < k; s0 += SWAP_BLOCK) {
        int32_t n = k - s0 < SWAP_BLOCK ? k - s0 : SWAP_BLOCK;
        for (int32_t r = 0; r < n; r++) put_row(w, r, w->a, idx[s0 + r], w->x[idx[s0 + r]]);
        FOOLC__CHECK(first_adv(w, &n, &hit));
        if (hit >= 0) {
            memcpy(w->a, w->rows + (size_t)hit * d, d * sizeof *w->a);
            *moved = 1;
            return FOOLC_OK;
        }
        if (w->used >= w->cfg->budget) return FOOLC_OK;
    }
    /* Pairs set back (pass 0), then single ones (pass 1), one coordinate pushed in their
     * place: fewer coordinates where it was changed already or a pair went (the first such
     * row, in gain order, is the next point); a plateau move (pass 1, one added for one set
     * back) where none is. */
    int32_t np = k < (int32_t)w->cfg->pairs ? k : (int32_t)w->cfg->pairs;
    double bestf = w->fa - w->tol;
    int have = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int32_t q = pass ? 0 : 1; q < np; q++)
            for (int32_t p = 0; p < (pass ? 1 : q); p++) {
                int32_t j1 = idx[q], j2 = pass ? -1 : idx[p];
                if (w->used + 2 > w->cfg->budget) goto plateau;
                memcpy(w->b, w->a, d * sizeof *w->b);
                w->b[j1] = w->x[j1];
                if (j2 >= 0) w->b[j2] = w->x[j2];
                double fb;
                uint8_t advb;
                FOOLC__CHECK(grad_at(w, w->b, w->g + d, &fb, &advb));   /* g' */
                if (advb) {
                    memcpy(w->a, w->b, d * sizeof *w->a);
                    *moved = 1;
                    return FOOLC_OK;
                }
                int32_t n = swaps(w, w->g + d, j1, j2);
                FOOLC__CHECK(first_adv(w, &n, &hit));
                for (int32_t r = hit < 0 ? n : hit; r < n; r++) {
                    if (!w->adv[r]) continue;
                    int32_t j = w->rank[r].j;
                    if (!pass || w->b[j] != w->x[j]) {   /* fewer coordinates */
                        memcpy(w->a, w->rows + (size_t)r * d, d * sizeof *w->a);
                        *moved = 1;
                        return FOOLC_OK;
                    }
                    if (*plateau > 0 && w->f[r] < bestf) {
                        bestf = w->f[r];
                        memcpy(w->best, w->rows + (size_t)r * d, d * sizeof *w->best);
                        have = 1;
                    }
                }
            }
plateau:
    if (have) {
        memcpy(w->a, w->best, d * sizeof *w->a);
        *plateau -= 1;
        *moved = 1;
    }
    return FOOLC_OK;
}

/* The start of the samples without a usable given one: the init attack's point (VFGA by
 * default), offered. */
static foolc_status init_start(void *ctx, foolc__run *run, const int32_t *idx, int32_t m,
                               float *xadv, uint8_t *ok)
{
    (void)ctx;
    return foolc__dec_init_attack(run, idx, m, "vfga", xadv, ok);
}

static foolc_status swap_run(foolc__run *run, const void *config)
{
    const swap_config *cfg = config;
    size_t d = run->d;
    int32_t m = run->n_todo, cap = (int32_t)cfg->candidates;
    if (cap < SWAP_BLOCK) cap = SWAP_BLOCK;
    float *xs = foolc__malloc(foolc__mul(foolc__mul((size_t)m, d), sizeof(float)));
    float *buf = foolc__malloc(foolc__mul(foolc__mul((size_t)cap + 6, d), sizeof(float)));
    float *logits = foolc__malloc(foolc__mul((size_t)cap, (size_t)run->k * sizeof(float)));
    double *f = foolc__malloc((size_t)cap * sizeof(double));
    uint8_t *ok = foolc__malloc((size_t)m + (size_t)cap);
    int32_t *rid = foolc__malloc(foolc__mul((size_t)cap + d, sizeof(int32_t)));
    foolc__mn_rank *rank = foolc__malloc(foolc__mul(d, sizeof(foolc__mn_rank)));
    foolc_status st = xs && buf && logits && f && ok && rid && rank
                          ? FOOLC_OK : foolc__nomem("polish-l0");
    /* Each sample's given start (its best point so far in an evaluation), else the init
     * attack's. */
    if (st >= 0)
        st = foolc__dec_with_sample_starts(run, run->todo, m, 0, xs, ok, init_start, NULL);
    swap_ws w = {.run = run, .cfg = cfg, .rows_cap = cap, .rows = buf,
                 .a = buf + (size_t)cap * d, .logits = logits, .f = f, .adv = ok + m,
                 .rid = rid, .rank = rank};
    w.b = w.a + d;
    w.g = w.b + d;   /* g, then the gradient at b */
    w.best = w.g + 2 * d;
    int32_t *idx = rid + cap;   /* the changed coordinates, ranked */
    for (int32_t a = 0; st >= 0 && a < m; a++) {
        if (!ok[a]) continue;
        w.i = run->todo[a];
        w.x = run->x + (size_t)w.i * d;
        w.used = 0;
        for (int32_t r = 0; r < cap; r++) rid[r] = w.i;
        memcpy(w.a, xs + (size_t)a * d, d * sizeof *w.a);
        int32_t plateau = (int32_t)cfg->plateau;
        int moved = 1;
        while (st >= 0 && moved && w.used + 2 <= cfg->budget) {
            uint8_t adv;
            if ((st = grad_at(&w, w.a, w.g, &w.fa, &adv)) < 0) break;
            w.tol = 1e-4 * foolc__logit_temp(w.logits, run->k, NULL);
            if ((st = round_once(&w, idx, &plateau, &moved)) < 0) break;
            if (moved) foolc__run_offer(run, w.i, w.a);
        }
        if (st >= 0) st = foolc__run_progress(run, a + 1, m);
    }
    foolc__free(xs);
    foolc__free(buf);
    foolc__free(logits);
    foolc__free(f);
    foolc__free(ok);
    foolc__free(rid);
    foolc__free(rank);
    return st;
}

FOOLC__ATTACK(polish_l0, "polish-l0", FOOLC_L0, FOOLC__GRAD, swap_params, swap_config, swap_run,
              NULL, "swaps of changed coordinates from each sample's given start: an L0 polish");
