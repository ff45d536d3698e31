/* The pool images closest to each sample in L2 (dataset and the pool starting points,
 * foolc__dec_pool): per sample the k closest pool rows of another class, ordered by their
 * distance computed in double (ties: the lower row first), exactly the list a scan of every
 * row with exact distances gives, at the cost of float dot products.
 *
 * One pass over the pool, in chunks that stay in cache while groups of four samples run over
 * them: each (sample, row) gets |x|^2 + |p|^2 - 2 x.p in float with a rigorous error bound
 * (E below), so [a - E, a + E] holds the row's exact double distance. The k smallest upper
 * bounds bound the k-th distance from above (A); a row whose lower bound exceeds the running
 * bound can never be among the k closest. The rows left (the k closest and the near ties,
 * typically a few tens of 60,000) get their exact distance, and the list is built from them
 * as from every row. */
#include "decision.h"
#include "numeric.h"

#include <math.h>
#include <string.h>

#define NEAR_GROUP 4      /* samples per pass over a chunk */
#define NEAR_LANES 16     /* float partial sums per dot product */
#define NEAR_CHUNK 64     /* pool rows per chunk (200 KB at d = 784) */

/* g[a] = x_a . p (a < NEAR_GROUP = 4) and *pp = p . p in float, NEAR_LANES partial sums
 * each, held in registers. Any order of the sums, and fused multiply-adds where the ISA has
 * them, keep the error within the bound of foolc__dec_nearest: these values only decide
 * which rows get their exact distance, so the result is the same on every ISA. */
FOOLC__VEC __attribute__((optimize("fp-contract=fast")))
static void near_dots(const float *const *x, const float *restrict p, size_t d, float *g,
                      float *pp)
{
    const float *restrict x0 = x[0], *restrict x1 = x[1], *restrict x2 = x[2],
                *restrict x3 = x[3];
    float s0[NEAR_LANES] = {0}, s1[NEAR_LANES] = {0}, s2[NEAR_LANES] = {0},
          s3[NEAR_LANES] = {0}, q[NEAR_LANES] = {0};
    size_t j = 0;
    for (; j + NEAR_LANES <= d; j += NEAR_LANES)
        for (int b = 0; b < NEAR_LANES; b++) {
            float v = p[j + b];
            q[b] += v * v;
            s0[b] += x0[j + b] * v;
            s1[b] += x1[j + b] * v;
            s2[b] += x2[j + b] * v;
            s3[b] += x3[j + b] * v;
        }
    for (; j < d; j++) {
        float v = p[j];
        q[0] += v * v;
        s0[0] += x0[j] * v;
        s1[0] += x1[j] * v;
        s2[0] += x2[j] * v;
        s3[0] += x3[j] * v;
    }
    float t[5] = {0};
    for (int b = 0; b < NEAR_LANES; b++) {
        t[0] += s0[b];
        t[1] += s1[b];
        t[2] += s2[b];
        t[3] += s3[b];
        t[4] += q[b];
    }
    for (int a = 0; a < NEAR_GROUP; a++) g[a] = t[a];
    *pp = t[4];
}

/* The exact double distance of the original scan, stopping once it reaches worst. */
static double near_exact(const float *x0, const float *xp, size_t d, double worst, int *full)
{
    double s = 0;
    size_t j = 0;
    for (; j < d && s < worst; j++) {
        double v = (double)xp[j] - x0[j];
        s += v * v;
    }
    *full = j == d;
    return s;
}

/* A max-heap of the k smallest upper bounds of a sample. */
static void heap_push(double *h, int32_t *n, int32_t k, double v)
{
    int32_t i;
    if (*n < k) {
        i = (*n)++;
        while (i > 0 && h[(i - 1) / 2] < v) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = v;
        return;
    }
    if (!(v < h[0])) return;
    i = 0;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= k) break;
        if (c + 1 < k && h[c + 1] > h[c]) c++;
        if (!(h[c] > v)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

typedef struct near_list {
    int32_t *row;
    double *lb;
    int32_t n, cap;
} near_list;

static int list_add(near_list *l, int32_t row, double lb)
{
    if (l->n == l->cap) {
        int32_t cap = l->cap ? 2 * l->cap : 64;
        int32_t *r = foolc__realloc(l->row, (size_t)cap * sizeof(int32_t));
        if (!r) return 0;
        l->row = r;
        double *b = foolc__realloc(l->lb, (size_t)cap * sizeof(double));
        if (!b) return 0;
        l->lb = b;
        l->cap = cap;
    }
    l->row[l->n] = row;
    l->lb[l->n++] = lb;
    return 1;
}

foolc_status foolc__dec_nearest(const foolc__run *run, const int32_t *idx, int32_t m, int32_t k,
                                const float *px, const int32_t *py, int32_t np, int self,
                                foolc__pool_cand *cs, int32_t *cnt)
{
    size_t d = run->d;
    if (m <= 0) return FOOLC_OK;
    /* kh: the heap's size (the bound needs k rows; a pool of fewer never fills it). */
    int32_t kh = k < np ? k : np > 0 ? np : 1;
    double *heap = foolc__malloc(foolc__mul(foolc__mul((size_t)m, (size_t)kh), sizeof(double)));
    double *nx = foolc__malloc((size_t)m * sizeof(double));
    int32_t *nh = foolc__calloc((size_t)m, sizeof(int32_t));
    near_list *ls = foolc__calloc((size_t)m, sizeof *ls);
    foolc_status st = FOOLC_OK;
    if (!heap || !nx || !nh || !ls) {
        st = foolc__nomem("nearest pool images");
        goto out;
    }
    /* The error of a float dot product of length d is at most gamma_d |x||p| in any order of
     * its sums (gamma_d = d u / (1 - d u), u = 2^-24), and a = |x|^2 + |p|^2 - 2 x.p adds
     * three: at most gamma_d (|x| + |p|)^2; the exact scan's double sums and this
     * arithmetic's own rounding are far below the margin doubling it (and 2^-40) adds. */
    double du = (double)d * 0x1.0p-24, gam = du < 0.5 ? 2.0 * du / (1.0 - du) : INFINITY;
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)idx[a] * d;
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)x0[j] * x0[j];
        nx[a] = s;
    }
    for (int32_t p0 = 0; p0 < np; p0 += NEAR_CHUNK) {
        int32_t p1 = np - p0 < NEAR_CHUNK ? np : p0 + NEAR_CHUNK;
        for (int32_t a0 = 0; a0 < m; a0 += NEAR_GROUP) {
            int32_t ng = m - a0 < NEAR_GROUP ? m - a0 : NEAR_GROUP;
            const float *xg[NEAR_GROUP];
            for (int32_t g = 0; g < NEAR_GROUP; g++)
                xg[g] = run->x + (size_t)idx[a0 + (g < ng ? g : 0)] * d;
            for (int32_t p = p0; p < p1; p++) {
                float dot[NEAR_GROUP], pp;
                near_dots(xg, px + (size_t)p * d, d, dot, &pp);
                for (int32_t g = 0; g < ng; g++) {
                    int32_t a = a0 + g, i = idx[a];
                    if (self && p == i) continue;
                    if (py && (run->targets ? py[p] != run->targets[i] : py[p] == run->labels[i]))
                        continue;
                    double dist = nx[a] + (double)pp - 2.0 * (double)dot[g];
                    double r = sqrt(nx[a]) + sqrt(fabs((double)pp));
                    double e = gam * r * r + 0x1.0p-40 * (nx[a] + fabs((double)pp));
                    double lb = dist - e, ub = dist + e;
                    if (!isfinite(ub)) lb = -INFINITY;   /* float overflow: the exact scan decides */
                    else heap_push(heap + (size_t)a * (size_t)kh, &nh[a], kh, ub);
                    double bound = nh[a] == k ? heap[(size_t)a * (size_t)kh] : INFINITY;
                    if (!(lb <= bound)) continue;
                    if (!list_add(&ls[a], p, lb)) {
                        st = foolc__nomem("nearest pool images");
                        goto out;
                    }
                }
            }
        }
    }
    /* The exact distances of the rows left, in row order, into the ordered list. */
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)idx[a] * d;
        foolc__pool_cand *ca = cs + (size_t)a * (size_t)k;
        double bound = nh[a] == k ? heap[(size_t)a * (size_t)kh] : INFINITY;
        int32_t c = 0;
        for (int32_t q = 0; q < ls[a].n; q++) {
            if (ls[a].lb[q] > bound) continue;
            int32_t p = ls[a].row[q];
            double worst = c == k ? ca[c - 1].dist : INFINITY;
            int full;
            double s = near_exact(x0, px + (size_t)p * d, d, worst, &full);
            if (!full || !(s < worst)) continue;
            int32_t t = c < k ? c++ : k - 1;
            while (t > 0 && ca[t - 1].dist > s) {
                ca[t] = ca[t - 1];
                t--;
            }
            ca[t].dist = s;
            ca[t].row = p;
        }
        cnt[a] = c;
    }
out:
    for (int32_t a = 0; ls && a < m; a++) {
        foolc__free(ls[a].row);
        foolc__free(ls[a].lb);
    }
    foolc__free(ls);
    foolc__free(heap);
    foolc__free(nx);
    foolc__free(nh);
    return st;
}
