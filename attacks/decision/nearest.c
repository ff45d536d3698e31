/* The pool images closest to each sample in L2 (dataset and the pool starting points,
 * foolc__dec_pool): per sample the k closest pool rows of another class, ordered by their
 * distance computed in double (ties: the lower row first), exactly the list a scan of every
 * row with exact distances gives, for a fraction of the arithmetic.
 *
 * One pass over the pool, in chunks that stay in cache: per row its norm, its sums over
 * segments (4 x 4 pixel tiles) and the norm of what the segment means leave out (for the
 * caller's pool once per pool, kept by the attack: near_summary); per sample and row a cheap
 * lower bound from these (vectorised over the chunk's rows), and only where it does not
 * exclude the row, |x|^2 + |p|^2 - 2 x.p with a float dot product and a
 * rigorous error bound (E below), so [a - E, a + E] holds the row's exact double distance.
 * The k smallest upper bounds bound the k-th distance from above (A); a row whose lower bound
 * exceeds the running bound can never be among the k closest. The rows left (the k closest
 * and the near ties, typically a few tens of 60,000) get their exact distance, and the list
 * is built from them as from every row. */
#include "decision.h"
#include "numeric.h"

#include <math.h>
#include <string.h>

#define NEAR_TILE 4       /* segments of the cheap bound: 4 x 4 pixel tiles per channel */
#define NEAR_SEG 16       /* or runs of 16 coordinates when the shape has no tiles */
#define NEAR_LANES 16     /* float partial sums per dot product */
#define NEAR_CHUNK 64     /* pool rows per chunk (200 KB at d = 784) */

/* x . p in float, NEAR_LANES partial sums. Any order of the sums, and fused multiply-adds
 * where the ISA has them, keep the error within the bound of foolc__dec_nearest: these values
 * only decide which rows get their exact distance, so the result is the same on every ISA. */
FOOLC__VEC __attribute__((optimize("fp-contract=fast")))
static float near_dot(const float *restrict x, const float *restrict p, size_t d)
{
    float s[NEAR_LANES] = {0};
    size_t j = 0;
    for (; j + NEAR_LANES <= d; j += NEAR_LANES)
        for (int b = 0; b < NEAR_LANES; b++) s[b] += x[j + b] * p[j + b];
    for (; j < d; j++) s[0] += x[j] * p[j];
    for (int w = NEAR_LANES / 2; w > 0; w /= 2)
        for (int b = 0; b < w; b++) s[b] += s[b + w];
    return s[0];
}

/* The segments of the cheap bound: per channel, tiles of NEAR_TILE x NEAR_TILE pixels (the
 * last of a row or column of tiles smaller), whose means follow an image far more closely
 * than runs of coordinates; runs of NEAR_SEG coordinates when the shape does not give d. At
 * most 16 coordinates per segment either way. */
typedef struct near_geo {
    size_t c, h, w, th, tw;          /* tiles: th x tw per channel; c 0: runs */
} near_geo;

/* The segments of shape sh (d coordinates) into g; returns their count, with inv_len[s]
 * 1 / segment s's size (inv_len: room for d entries). */
static size_t near_segments(foolc_shape sh, size_t d, near_geo *g, double *inv_len)
{
    memset(g, 0, sizeof *g);
    if (sh.c > 0 && sh.h > 0 && sh.w > 0 && (size_t)sh.c * (size_t)sh.h * (size_t)sh.w == d) {
        g->c = (size_t)sh.c;
        g->h = (size_t)sh.h;
        g->w = (size_t)sh.w;
        g->th = (g->h + NEAR_TILE - 1) / NEAR_TILE;
        g->tw = (g->w + NEAR_TILE - 1) / NEAR_TILE;
        size_t s = 0;
        for (size_t c = 0; c < g->c; c++)
            for (size_t ty = 0; ty < g->th; ty++)
                for (size_t tx = 0; tx < g->tw; tx++, s++) {
                    size_t ly = g->h - ty * NEAR_TILE, lx = g->w - tx * NEAR_TILE;
                    ly = ly < NEAR_TILE ? ly : NEAR_TILE;
                    lx = lx < NEAR_TILE ? lx : NEAR_TILE;
                    inv_len[s] = 1.0 / (double)(ly * lx);
                }
        return s;
    }
    size_t ns = (d + NEAR_SEG - 1) / NEAR_SEG;
    for (size_t s = 0; s < ns; s++) {
        size_t len = d - s * NEAR_SEG;
        inv_len[s] = 1.0 / (double)(len < NEAR_SEG ? len : NEAR_SEG);
    }
    return ns;
}

/* A row's sums over its segments (into seg[s * stride], ns of them; acc: g->w doubles of
 * scratch) and its |v|^2, in double lanes. Tiles: the NEAR_TILE image rows of a row of tiles
 * summed column by column (independent lanes), then NEAR_TILE columns per tile. */
FOOLC__VEC
static double near_stats(const float *restrict v, size_t d, const near_geo *g, size_t ns,
                         double *restrict acc, double *restrict seg, size_t stride)
{
    double q[FOOLC__BLOCK] = {0}, qt = 0;
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (int b = 0; b < FOOLC__BLOCK; b++) {
            double u = v[j + b];
            q[b] += u * u;
        }
    for (; j < d; j++) qt += (double)v[j] * v[j];
    for (int b = 0; b < FOOLC__BLOCK; b++) qt += q[b];
    if (!g->c) {
        for (size_t s = 0; s < ns; s++) {
            size_t j1 = d - s * NEAR_SEG < NEAR_SEG ? d : (s + 1) * NEAR_SEG;
            double t = 0;
            for (j = s * NEAR_SEG; j < j1; j++) t += v[j];
            seg[s * stride] = t;
        }
        return qt;
    }
    size_t s = 0;
    for (size_t c = 0; c < g->c; c++)
        for (size_t ty = 0; ty < g->th; ty++) {
            size_t y1 = (ty + 1) * NEAR_TILE < g->h ? (ty + 1) * NEAR_TILE : g->h;
            for (size_t x = 0; x < g->w; x++) acc[x] = 0;
            for (size_t y = ty * NEAR_TILE; y < y1; y++) {
                const float *row = v + (c * g->h + y) * g->w;
                for (size_t x = 0; x < g->w; x++) acc[x] += row[x];
            }
            for (size_t tx = 0; tx < g->tw; tx++, s++) {
                size_t x1 = (tx + 1) * NEAR_TILE < g->w ? (tx + 1) * NEAR_TILE : g->w;
                double t = 0;
                for (size_t x = tx * NEAR_TILE; x < x1; x++) t += acc[x];
                seg[s * stride] = t;
            }
        }
    return qt;
}

/* lb[r] = sum over the segments s of (sx[s] - sp[s][r])^2 / len_s for the rows r < NEAR_CHUNK
 * of a chunk (sp transposed: NEAR_CHUNK per segment): by Cauchy-Schwarz per segment, at most
 * |x - p_r|^2. */
FOOLC__VEC
static void near_seg_lb(const double *restrict sx, const double *restrict sp,
                        const double *restrict inv_len, size_t ns, double *restrict lb)
{
    for (int r = 0; r < NEAR_CHUNK; r++) lb[r] = 0;
    for (size_t s = 0; s < ns; s++)
        for (int r = 0; r < NEAR_CHUNK; r++) {
            double v = sx[s] - sp[s * NEAR_CHUNK + r];
            lb[r] += v * v * inv_len[s];
        }
}

/* |R v| = |v - P v|, P the orthogonal projection onto the vectors constant on each segment
 * (|P v|^2 = sum_s seg_s^2 / len_s), from |v|^2 and v's segment sums seg[s * stride]. */
static double near_resid(double q, const double *seg, size_t stride, const double *inv_len,
                         size_t ns)
{
    double pv = 0;
    for (size_t s = 0; s < ns; s++) pv += seg[s * stride] * seg[s * stride] * inv_len[s];
    return q - pv > 0 ? sqrt(q - pv) : 0;
}

/* The statistics of rows p0 .. p1 - 1 of the pool, one chunk (p0 a multiple of NEAR_CHUNK)
 * into blk: their segment sums transposed (blk[s * NEAR_CHUNK + r], ns segments), their
 * |p|^2 (blk[ns * NEAR_CHUNK + r]) and |R p| (blk[(ns + 1) * NEAR_CHUNK + r]). */
static void near_chunk_stats(const float *px, size_t d, const near_geo *g,
                             const double *inv_len, size_t ns, int32_t p0, int32_t p1,
                             double *acc, double *blk)
{
    for (int32_t p = p0; p < p1; p++) {
        size_t r = (size_t)(p - p0);
        double q = near_stats(px + (size_t)p * d, d, g, ns, acc, blk + r, NEAR_CHUNK);
        blk[ns * NEAR_CHUNK + r] = q;
        blk[(ns + 1) * NEAR_CHUNK + r] = near_resid(q, blk + r, NEAR_CHUNK, inv_len, ns);
    }
}

/* The caller's pool's summary (run->starts_sum, lib/attack_impl.h): every chunk's
 * statistics, (ns + 2) NEAR_CHUNK doubles per chunk, rows past the pool's end 0; filled by
 * the first run that needs it, chunk by chunk as its pass reaches them (*fill set: the pool
 * is read once, as without a summary), and kept by the attack with the pool (the pool stays
 * unchanged until it is replaced, which clears it; near_summary_done marks it complete).
 * NULL without a summary (the run's own inputs as the pool, a sub-attack's run) or when its
 * memory is not there: then each chunk's statistics are computed on the way, the same
 * values. */
static double *near_summary(const foolc__run *run, const float *px, int32_t np, int self,
                            size_t ns, int *fill)
{
    foolc__pool_sum *sum = run->starts_sum;
    *fill = 0;
    if (self || !sum || px != run->starts_x || np != run->n_starts) return NULL;
    if (sum->v && sum->d == run->d && sum->n == np && sum->h == run->shape.h &&
        sum->w == run->shape.w)
        return sum->v;
    foolc__pool_sum_clear(sum);
    size_t nc = ((size_t)np + NEAR_CHUNK - 1) / NEAR_CHUNK;
    double *v = foolc__calloc(nc, foolc__mul((ns + 2) * NEAR_CHUNK, sizeof(double)));
    if (!v) return NULL;   /* not an error: the pass computes them itself */
    sum->v = v;            /* d, n 0: not usable until near_summary_done */
    *fill = 1;
    return v;
}

static void near_summary_done(const foolc__run *run, int32_t np)
{
    foolc__pool_sum *sum = run->starts_sum;
    sum->d = run->d;
    sum->h = run->shape.h;
    sum->w = run->shape.w;
    sum->n = np;
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
    double *inv_len = foolc__malloc(foolc__mul(foolc__mul(d, 2), sizeof(double)));
    if (!inv_len) return foolc__nomem("nearest pool images");
    near_geo geo;
    size_t ns = near_segments(run->shape, d, &geo, inv_len);
    double *acc = inv_len + d;   /* near_stats' scratch */
    double *heap = foolc__malloc(foolc__mul(foolc__mul((size_t)m, (size_t)kh), sizeof(double)));
    double *nx = foolc__malloc((size_t)m * 2 * sizeof(double));
    double *sx = foolc__malloc(foolc__mul(foolc__mul((size_t)m, ns), sizeof(double)));
    int fill;
    double *summ = near_summary(run, px, np, self, ns, &fill);
    double *sp = summ ? NULL
                      : foolc__malloc(foolc__mul(foolc__mul(ns + 2, NEAR_CHUNK), sizeof(double)));
    int32_t *nh = foolc__calloc((size_t)m, sizeof(int32_t));
    near_list *ls = foolc__calloc((size_t)m, sizeof *ls);
    foolc_status st = FOOLC_OK;
    if (!heap || !nx || !sx || (!sp && !summ) || !nh || !ls) {
        st = foolc__nomem("nearest pool images");
        goto out;
    }
    double lbv[NEAR_CHUNK];
    /* The error of a float dot product of length d is at most gamma_d |x||p| in any order of
     * its sums (gamma_d = d u / (1 - d u), u = 2^-24), and a = |x|^2 + |p|^2 - 2 x.p (the
     * norms in double) adds one more: at most gamma_d (|x| + |p|)^2; the exact scan's double
     * sums and this arithmetic's own rounding are far below the margin doubling it (and
     * 2^-40) adds. The segments' bound is the distance of the images' segment means (per
     * segment, sum_j (x_j - p_j)^2 >= (sum_j (x_j - p_j))^2 / len); its double rounding is
     * far below its margin (a relative 1e-9 and 1e-9 (|x|^2 + |p|^2 + 1)). Plus the rest:
     * with P the projection onto the segment-constant vectors and R = I - P,
     * |x - p|^2 = |P(x - p)|^2 + |Rx - Rp|^2 >= the segments' bound + (|Rx| - |Rp|)^2;
     * |Rv| = sqrt(|v|^2 - |Pv|^2) in double is within 1e-7 (|v| + 1) of the exact value
     * (cancellation under the square root), below the 1e-6 (|x|^2 + |p|^2 + 3) taken off
     * (at least 1e-6 (|x| + |p| + 1): no square roots per row). */
    double du = (double)d * 0x1.0p-24, gam = du < 0.5 ? 2.0 * du / (1.0 - du) : INFINITY;
    double *rx = nx + m;
    for (int32_t a = 0; a < m; a++) {
        nx[a] = near_stats(run->x + (size_t)idx[a] * d, d, &geo, ns, acc, sx + (size_t)a * ns, 1);
        rx[a] = near_resid(nx[a], sx + (size_t)a * ns, 1, inv_len, ns);
    }
    if (sp)
        for (size_t r = 0; r < (ns + 2) * NEAR_CHUNK; r++) sp[r] = 0;
    for (int32_t p0 = 0; p0 < np; p0 += NEAR_CHUNK) {
        int32_t p1 = np - p0 < NEAR_CHUNK ? np : p0 + NEAR_CHUNK;
        /* The chunk's statistics: the summary's, or computed here. */
        double *blk = summ ? summ + (size_t)(p0 / NEAR_CHUNK) * (ns + 2) * NEAR_CHUNK : sp;
        if (!summ || fill) near_chunk_stats(px, d, &geo, inv_len, ns, p0, p1, acc, blk);
        const double *pp = blk + ns * NEAR_CHUNK, *rp = pp + NEAR_CHUNK;
        for (int32_t a = 0; a < m; a++) {
            int32_t i = idx[a];
            const float *x0 = run->x + (size_t)i * d;
            near_seg_lb(sx + (size_t)a * ns, blk, inv_len, ns, lbv);
            for (int32_t p = p0; p < p1; p++) {
                if (self && p == i) continue;
                if (py && (run->targets ? py[p] != run->targets[i] : py[p] == run->labels[i]))
                    continue;
                double bound = nh[a] == k ? heap[(size_t)a * (size_t)kh] : INFINITY;
                double q = pp[p - p0], sl = lbv[p - p0];
                double gap = fabs(rx[a] - rp[p - p0]) - 1e-6 * (nx[a] + q + 3);
                double rl = gap > 0 ? gap * gap : 0;
                if (sl * (1 - 1e-9) - 1e-9 * (nx[a] + q + 1) + rl > bound) continue;
                float dot = near_dot(x0, px + (size_t)p * d, d);
                double dist = nx[a] + q - 2.0 * (double)dot;
                double r = sqrt(nx[a]) + sqrt(q);
                double e = gam * r * r + 0x1.0p-40 * (nx[a] + q);
                double lb = dist - e, ub = dist + e;
                if (!isfinite(ub))
                    lb = -INFINITY;   /* overflow: the exact scan decides */
                else
                    heap_push(heap + (size_t)a * (size_t)kh, &nh[a], kh, ub);
                bound = nh[a] == k ? heap[(size_t)a * (size_t)kh] : INFINITY;
                if (!(lb <= bound)) continue;
                if (!list_add(&ls[a], p, lb)) {
                    st = foolc__nomem("nearest pool images");
                    goto out;
                }
            }
        }
    }
    if (fill) near_summary_done(run, np);   /* every chunk filled */
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
    foolc__free(sx);
    foolc__free(sp);
    foolc__free(inv_len);
    foolc__free(nh);
    return st;
}
