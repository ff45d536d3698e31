/* The pool images closest to each sample in L2 (dataset and the pool starting points,
 * foolc__dec_pool): per sample the k closest pool rows of another class, ordered by their
 * distance computed in double (ties: the lower row first), exactly the list a scan of every
 * row with exact distances gives, for a fraction of the arithmetic.
 *
 * Both ways below bound each row's distance from below cheaply, bound the k-th distance from
 * above (A: the k smallest upper bounds of [a - E, a + E], a = |x|^2 + |p|^2 - 2 x.p with a
 * float dot product and a rigorous error bound E), and give the rows whose lower bound does
 * not exceed A (the k closest and the near ties, typically a few tens of 60,000) their exact
 * distance; the list is built from them in row order, as from every row. A row whose lower
 * bound exceeds A is farther than k rows, so it can never be among the k closest.
 *
 * The caller's pool of images, kept by the attack (near_kept). Once per pool (the first run,
 * one pass over the pool: about 0.08 s for 60,000 Fashion-MNIST rows): each row's 136
 * low-frequency 2-D DCT coefficients per channel (an orthonormal basis up to a rounding
 * bounded at run time; computed in double on the folded rows, the even frequencies from the
 * sums of mirrored pixels and the odd ones from their differences) in float, the norm of
 * what they leave out; the pool ordered by median splits on the most spread of the first 16
 * coefficients (on compact 64-byte records of them) into chunks of 64 close rows, each
 * chunk's coefficients transposed and its box (the ranges of those 16 and of the left-out
 * norm). All in one block of up to 80 MB advised into 2 MB pages (near_summary: some 40
 * page faults instead of 20,000, which were half of the old 0.45 s). Each row's 8-bit
 * quantisation with its exact error the first time a search needs it (about 1 row in 5 for
 * 20 CNN images), its codes packed in that order.
 *
 * Per run: the box bounds of every (sample, chunk); the dot products of the rows of smallest
 * coefficient bound in each sample's 16 best chunks give A; one pass over the chunks, each
 * for the samples its box does not exclude (about half), the coefficient bound
 * |x - p|^2 >= |P(x - p)|^2 + (|Rx| - |Rp|)^2 vectorised over 64 rows (about 1 row in 40
 * stays under A); those through the 8-bit codes' bound (|x - p| >= |x - p^| - eps; about 1
 * in 100 stays) and the dot product (about 1 in 3,000), the 32 of smallest bound first, then
 * the others in pool order. About 8 ms for 20 CNN images instead of 35.
 *
 * Any other pool (the run's inputs, a flat shape, a sub-attack's run): one pass over the pool
 * (near_scan), in chunks that stay in cache: per row its norm, its sums over segments (4 x 4
 * pixel tiles, or runs) and the norm of what the segment means leave out (for the caller's
 * pool once per pool, kept by the attack: near_summary); per sample and row a lower bound
 * from these, and the dot product where it does not exclude the row against the running A. */
#include "decision.h"
#include "numeric.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
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

/* The caller's pool's summary (run->starts_sum, lib/attack_impl.h), kept by the attack with
 * the pool (the pool stays unchanged until it is replaced, which clears it): NEAR_HDR doubles
 * of header (the layout: NEAR_SEGS near_scan's segment statistics, NEAR_DCT near_kept's
 * coefficients; the channels; where the payload starts), then the layout's `doubles`.
 * Returns the payload, or NULL without a summary (the run's own inputs as the pool, a
 * sub-attack's run) or when its memory is not there: not an error, the statistics are then
 * computed on the way. *fill: a new (zeroed) summary for the caller to fill and mark with
 * near_summary_done (until then its d and n are 0: not usable).
 *
 * A payload of a huge page or more starts on one and is advised into them
 * (foolc__advise_huge): filling 80 MB in 4 KB pages costs some 20,000 page faults (about
 * 0.25 s on a virtual machine, half the build), in 2 MB pages 40. The allocation is one
 * calloc (foolc__pool_sum_clear frees it; calloc's pages come zeroed without a pass over
 * them) with room for the alignment. */
#define NEAR_HDR 4
enum { NEAR_SEGS = 1, NEAR_DCT = 2 };

static double *near_summary(const foolc__run *run, const float *px, int32_t np, int self,
                            int layout, size_t c, size_t doubles, int *fill)
{
    foolc__pool_sum *sum = run->starts_sum;
    *fill = 0;
    if (self || !sum || px != run->starts_x || np != run->n_starts) return NULL;
    if (sum->v && sum->d == run->d && sum->n == np && sum->h == run->shape.h &&
        sum->w == run->shape.w && sum->v[0] == layout && sum->v[1] == (double)c)
        return sum->v + (size_t)sum->v[2];
    foolc__pool_sum_clear(sum);
    size_t pad = FOOLC__HUGE_PAGE / sizeof(double), big = doubles >= pad;
    if (doubles > SIZE_MAX / sizeof(double) - NEAR_HDR - 2 * pad) return NULL;
    double *v = foolc__calloc(doubles + NEAR_HDR + (big ? 2 * pad : 0), sizeof(double));
    if (!v) return NULL;
    size_t off = NEAR_HDR;
    if (big) {   /* v is aligned for a double: so is the gap to the next multiple */
        size_t at = (size_t)((uintptr_t)(v + off) % FOOLC__HUGE_PAGE);
        off += (at ? FOOLC__HUGE_PAGE - at : 0) / sizeof(double);
        size_t hp = FOOLC__HUGE_PAGE;
        foolc__advise_huge(v + off, (doubles * sizeof(double) + hp - 1) / hp * hp);
    }
    v[0] = layout;
    v[1] = (double)c;
    v[2] = (double)off;
    sum->v = v;
    *fill = 1;
    return v + off;
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

/* A sample's rows left for the exact distances, with their lower bounds. */
typedef struct near_ent {
    double lb;
    int32_t row;
} near_ent;

typedef struct near_list {
    near_ent *e;
    int32_t n, cap;
} near_list;

static int list_add(near_list *l, int32_t row, double lb)
{
    if (l->n == l->cap) {
        int32_t cap = l->cap ? 2 * l->cap : 64;
        near_ent *e = foolc__realloc(l->e, (size_t)cap * sizeof *e);
        if (!e) return 0;
        l->e = e;
        l->cap = cap;
    }
    l->e[l->n].row = row;
    l->e[l->n++].lb = lb;
    return 1;
}

/* The error of a float dot product of length d is at most gamma_d |x||p| in any order of
 * its sums (gamma_d = d u / (1 - d u), u = 2^-24), and a = |x|^2 + |p|^2 - 2 x.p (the norms
 * in double) adds one more: at most gamma_d (|x| + |p|)^2; the exact scan's double sums and
 * this arithmetic's own rounding are far below the margin doubling it (gam = 2 gamma_d) and
 * 2^-40 adds. */
static double near_gamma(size_t d)
{
    double du = (double)d * 0x1.0p-24;
    return du < 0.5 ? 2.0 * du / (1.0 - du) : INFINITY;
}

/* Row p (xp, |xp|^2 = q) for a sample (x0, |x0|^2 = nx): the float dot product bounds the
 * exact distance to [lb, ub]; ub joins the heap h (nh of kh; full at k), and the row joins
 * the list unless lb exceeds the bound. 0: out of memory. */
static int near_consider(const float *x0, double nx, const float *xp, double q, size_t d,
                         double gam, double *h, int32_t *nh, int32_t k, int32_t kh,
                         near_list *l, int32_t p)
{
    float dot = near_dot(x0, xp, d);
    double dist = nx + q - 2.0 * (double)dot;
    double r = sqrt(nx) + sqrt(q);
    double e = gam * r * r + 0x1.0p-40 * (nx + q);
    double lb = dist - e, ub = dist + e;
    if (!isfinite(ub))
        lb = -INFINITY;   /* overflow: the exact scan decides */
    else
        heap_push(h, nh, kh, ub);
    double bound = *nh == k ? h[0] : INFINITY;
    return !(lb <= bound) || list_add(l, p, lb);
}

static int ent_row_cmp(const void *a, const void *b)
{
    int32_t x = ((const near_ent *)a)->row, y = ((const near_ent *)b)->row;
    return (x > y) - (x < y);
}

/* The exact distances of the rows left (l, in row order) whose lower bound is within bound,
 * into the ordered list ca (room for k); returns its length. */
static int32_t near_finish(const float *x0, const float *px, size_t d, const near_list *l,
                           double bound, int32_t k, foolc__pool_cand *ca)
{
    int32_t c = 0;
    for (int32_t q = 0; q < l->n; q++) {
        if (l->e[q].lb > bound) continue;
        int32_t p = l->e[q].row;
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
    return c;
}

/* Whether row p of the pool may be listed for sample i. */
static int near_eligible(const foolc__run *run, const int32_t *py, int self, int32_t i,
                         int32_t p)
{
    if (self && p == i) return 0;
    return !py || (run->targets ? py[p] == run->targets[i] : py[p] != run->labels[i]);
}

/* ---- the caller's pool of images: DCT coefficients kept with the pool ---- */

#define NEAR_K 136      /* coefficients per channel (u + v < 16 at 28 x 28) */
#define NEAR_GROUP 32   /* samples per pass over the summary */
#define NEAR_WILD 1e30  /* rows and samples with |v|^2 above (or not finite): never pruned */

/* The 2-D DCT-II coefficients of each channel (h x w pixels) with frequencies (u, v) in
 * zigzag order (u + v, then u), the first kc of them (k in all), computed as
 * c_u(y) c_v(x) with the orthonormal 1-D rows c_v(x) = sqrt((v ? 2 : 1) / w)
 * cos(pi (2x + 1) v / (2w)) in double, taken from the first half of each row and mirrored
 * (c_v(w - 1 - x) = (-1)^v c_v(x), 0 at an odd row's middle): so even rows see the sums
 * v_x + v_(w-1-x) and odd ones the differences (half the products), along w and then h. */
typedef struct near_dct {
    size_t c, h, w, kc, k, umax, vmax;
    size_t we, wo, he, ho;     /* folded lengths: (w + 1) / 2 sums, w / 2 differences */
    size_t ue, uo, vpe, vpo, vp;   /* even and odd u; even and odd v padded, vp = vpe + vpo */
    int32_t fu[NEAR_K], fv[NEAR_K], fo[NEAR_K];   /* fo: where dct_coefs' a holds each */
    double *cw;    /* the mirrored rows: cw[x * vmax + v], ch[u * h + y] (dct_basis' eta) */
    double *ch;
    double *cwe, *cwo;   /* cwe[x * vpe + i] = c_2i(x), x < we; cwo[x * vpo + i] = c_2i+1(x) */
    double *che, *cho;   /* che[i * he + y] = c_2i(y), y < he; cho[i * ho + y] = c_2i+1(y) */
} near_dct;

/* g's frequencies for shape sh (d coordinates); 0 when sh is not an image of d pixels. */
static int dct_geometry(foolc_shape sh, size_t d, near_dct *g)
{
    memset(g, 0, sizeof *g);
    if (!(sh.c > 0 && sh.h >= 4 && sh.w >= 4 &&
          (size_t)sh.c * (size_t)sh.h * (size_t)sh.w == d))
        return 0;
    g->c = (size_t)sh.c;
    g->h = (size_t)sh.h;
    g->w = (size_t)sh.w;
    size_t n = 0;
    for (size_t s = 0; n < NEAR_K && s + 1 < g->h + g->w; s++)
        for (size_t u = 0; u <= s && n < NEAR_K; u++) {
            size_t v = s - u;
            if (u >= g->h || v >= g->w) continue;
            g->fu[n] = (int32_t)u;
            g->fv[n++] = (int32_t)v;
            if (u + 1 > g->umax) g->umax = u + 1;
            if (v + 1 > g->vmax) g->vmax = v + 1;
        }
    g->kc = n;
    g->k = g->c * n;
    g->we = (g->w + 1) / 2;
    g->wo = g->w / 2;
    g->he = (g->h + 1) / 2;
    g->ho = g->h / 2;
    g->ue = (g->umax + 1) / 2;
    g->uo = g->umax / 2;
    g->vpe = ((g->vmax + 1) / 2 + FOOLC__BLOCK - 1) / FOOLC__BLOCK * FOOLC__BLOCK;
    g->vpo = (g->vmax / 2 + FOOLC__BLOCK - 1) / FOOLC__BLOCK * FOOLC__BLOCK;
    g->vp = g->vpe + g->vpo;
    for (size_t j = 0; j < n; j++) {
        size_t u = (size_t)g->fu[j], v = (size_t)g->fv[j];
        size_t col = v % 2 ? g->vpe + v / 2 : v / 2;
        g->fo[j] = (int32_t)((u % 2 ? g->ue * g->vp : 0) + u / 2 * g->vp + col);
    }
    return 1;
}

/* Doubles of basis (dct_basis) and of scratch with the output (dct_coefs) for g. */
static size_t dct_nbasis(const near_dct *g)
{
    return g->w * g->vmax + g->umax * g->h + g->we * g->vpe + g->wo * g->vpo +
           g->ue * g->he + g->uo * g->ho;
}

static size_t dct_nscratch(const near_dct *g)
{
    return g->h * g->w + (g->h + g->he + g->ho + g->ue + g->uo) * g->vp + g->k;
}

/* Element x of the mirrored 1-D row v of length w. */
static double dct_elem(size_t x, size_t v, size_t w)
{
    const double pi = 3.14159265358979323846;
    size_t m = x < w - 1 - x ? x : w - 1 - x;
    if (v % 2 && x == w - 1 - x) return 0;
    double c = sqrt((v ? 2.0 : 1.0) / (double)w) *
               cos(pi * (double)(2 * m + 1) * (double)v / (double)(2 * w));
    return v % 2 && x > m ? -c : c;
}

/* The 1-D rows (basis: dct_nbasis(g) doubles, into g's pointers) and a bound on |G - I|
 * (spectral norm) of the Gram matrix G of either set of the mirrored rows (the ones the
 * folded products compute with): its Frobenius norm, doubled, plus the rounding of computing
 * it. */
static double dct_basis(near_dct *g, double *basis)
{
    size_t h = g->h, w = g->w, vm = g->vmax;
    g->cw = basis;
    g->ch = g->cw + w * vm;
    g->cwe = g->ch + g->umax * h;
    g->cwo = g->cwe + g->we * g->vpe;
    g->che = g->cwo + g->wo * g->vpo;
    g->cho = g->che + g->ue * g->he;
    for (size_t x = 0; x < w; x++)
        for (size_t v = 0; v < vm; v++) g->cw[x * vm + v] = dct_elem(x, v, w);
    for (size_t u = 0; u < g->umax; u++)
        for (size_t y = 0; y < h; y++) g->ch[u * h + y] = dct_elem(y, u, h);
    for (size_t x = 0; x < g->we; x++)
        for (size_t i = 0; i < g->vpe; i++)
            g->cwe[x * g->vpe + i] = 2 * i < vm ? g->cw[x * vm + 2 * i] : 0;
    for (size_t x = 0; x < g->wo; x++)
        for (size_t i = 0; i < g->vpo; i++)
            g->cwo[x * g->vpo + i] = 2 * i + 1 < vm ? g->cw[x * vm + 2 * i + 1] : 0;
    for (size_t i = 0; i < g->ue; i++)
        for (size_t y = 0; y < g->he; y++) g->che[i * g->he + y] = g->ch[2 * i * h + y];
    for (size_t i = 0; i < g->uo; i++)
        for (size_t y = 0; y < g->ho; y++) g->cho[i * g->ho + y] = g->ch[(2 * i + 1) * h + y];
    double fw = 0, fh = 0;
    for (size_t a = 0; a < vm; a++)
        for (size_t b = 0; b < vm; b++) {
            double s = a == b ? -1.0 : 0.0;
            for (size_t x = 0; x < w; x++) s += g->cw[x * vm + a] * g->cw[x * vm + b];
            fw += s * s;
        }
    for (size_t a = 0; a < g->umax; a++)
        for (size_t b = 0; b < g->umax; b++) {
            double s = a == b ? -1.0 : 0.0;
            for (size_t y = 0; y < h; y++) s += g->ch[a * h + y] * g->ch[b * h + y];
            fh += s * s;
        }
    double f = sqrt(fw > fh ? fw : fh);
    return 2.0 * f + (double)(g->umax + vm) * (double)(h + w) * 0x1.0p-50;
}

/* c (m x n, rows ldc apart; n a multiple of FOOLC__BLOCK) = a (m x kk) b (kk x n), in
 * double: four rows of c at a time, their sums in registers. */
FOOLC__VEC __attribute__((optimize("fp-contract=fast")))
static void dct_mm(const double *restrict a, size_t m, size_t kk, const double *restrict b,
                   size_t n, double *restrict c, size_t ldc)
{
    size_t i = 0;
    for (; i + 4 <= m; i += 4)
        for (size_t j = 0; j < n; j += FOOLC__BLOCK) {
            double s0[FOOLC__BLOCK] = {0}, s1[FOOLC__BLOCK] = {0}, s2[FOOLC__BLOCK] = {0},
                   s3[FOOLC__BLOCK] = {0};
            const double *a0 = a + i * kk, *a1 = a0 + kk, *a2 = a1 + kk, *a3 = a2 + kk;
            for (size_t l = 0; l < kk; l++) {
                const double *bl = b + l * n + j;
                for (int t = 0; t < FOOLC__BLOCK; t++) {
                    s0[t] += a0[l] * bl[t];
                    s1[t] += a1[l] * bl[t];
                    s2[t] += a2[l] * bl[t];
                    s3[t] += a3[l] * bl[t];
                }
            }
            for (int t = 0; t < FOOLC__BLOCK; t++) {
                c[i * ldc + j + (size_t)t] = s0[t];
                c[(i + 1) * ldc + j + (size_t)t] = s1[t];
                c[(i + 2) * ldc + j + (size_t)t] = s2[t];
                c[(i + 3) * ldc + j + (size_t)t] = s3[t];
            }
        }
    for (; i < m; i++)
        for (size_t j = 0; j < n; j += FOOLC__BLOCK) {
            double s0[FOOLC__BLOCK] = {0};
            for (size_t l = 0; l < kk; l++)
                for (int t = 0; t < FOOLC__BLOCK; t++)
                    s0[t] += a[i * kk + l] * b[l * n + j + (size_t)t];
            for (int t = 0; t < FOOLC__BLOCK; t++) c[i * ldc + j + (size_t)t] = s0[t];
        }
}

/* One channel (h rows of w floats) folded row by row: each row's sums v_x + v_(w-1-x)
 * (x < we; the middle alone) into s (we per row), its differences (x < wo) into df (wo per
 * row); returns the channel's |.|^2 in double lanes (one call per channel: a call through
 * the clones' resolver per row cost more than the row). */
FOOLC__VEC
static double dct_fold(const float *restrict v, size_t h, size_t w, double *restrict s,
                       double *restrict df)
{
    size_t wo = w / 2, we = (w + 1) / 2;
    double q[FOOLC__BLOCK] = {0}, qt = 0;
    for (size_t y = 0; y < h; y++) {
        const float *r = v + y * w;
        double *sy = s + y * we, *dy = df + y * wo;
        size_t x = 0;
        for (; x + FOOLC__BLOCK <= wo; x += FOOLC__BLOCK) {
            const float *ra = r + x, *rb = r + (w - FOOLC__BLOCK - x);
            double *sa = sy + x, *da = dy + x;
            for (int b = 0; b < FOOLC__BLOCK; b++) {
                double p0 = ra[b], p1 = rb[FOOLC__BLOCK - 1 - b];
                sa[b] = p0 + p1;
                da[b] = p0 - p1;
                q[b] += p0 * p0 + p1 * p1;
            }
        }
        for (; x < wo; x++) {
            double p0 = r[x], p1 = r[w - 1 - x];
            sy[x] = p0 + p1;
            dy[x] = p0 - p1;
            qt += p0 * p0 + p1 * p1;
        }
        if (w % 2) {
            double p0 = r[wo];
            sy[wo] = p0;
            qt += p0 * p0;
        }
    }
    for (int b = 0; b < FOOLC__BLOCK; b++) qt += q[b];
    return qt;
}

/* The rows of t (h rows of n doubles) folded the same way along h: sums into fs (he rows),
 * differences into fd (ho rows). */
FOOLC__VEC
static void dct_fold_rows(const double *restrict t, size_t h, size_t n, double *restrict fs,
                          double *restrict fd)
{
    size_t ho = h / 2;
    for (size_t y = 0; y < ho; y++) {
        const double *a = t + y * n, *b = t + (h - 1 - y) * n;
        for (size_t j = 0; j < n; j += FOOLC__BLOCK)
            for (int l = 0; l < FOOLC__BLOCK; l++) {
                fs[y * n + j + (size_t)l] = a[j + (size_t)l] + b[j + (size_t)l];
                fd[y * n + j + (size_t)l] = a[j + (size_t)l] - b[j + (size_t)l];
            }
    }
    if (h % 2) memcpy(fs + ho * n, t + ho * n, n * sizeof *fs);
}

/* v's coefficients (g->k of them, channel by channel, into out) and |v|^2 (in double, any
 * order of the sums); t: dct_nscratch(g) doubles, out among them. Each coefficient is within
 * (h + w + 2) 2^-53 |v| of its exact value with the mirrored rows: a fold and a sum of
 * w / 2 + 1 products along w, then the same along h, each within gamma_(n+1) of the sum of
 * the absolute products over all x (or y). */
static double dct_coefs(const near_dct *g, const float *v, double *t, double *out)
{
    size_t h = g->h, w = g->w, vp = g->vp;
    double *s = t, *df = s + h * g->we, *tt = df + h * g->wo, *fs = tt + h * vp;
    double *fd = fs + g->he * vp, *a = fd + g->ho * vp;
    double qt = 0;
    for (size_t c = 0; c < g->c; c++) {
        const float *src = v + c * h * w;
        qt += dct_fold(src, h, w, s, df);
        dct_mm(s, h, g->we, g->cwe, g->vpe, tt, vp);
        if (g->vpo) dct_mm(df, h, g->wo, g->cwo, g->vpo, tt + g->vpe, vp);
        dct_fold_rows(tt, h, vp, fs, fd);
        dct_mm(g->che, g->ue, g->he, fs, vp, a, vp);
        if (g->uo) dct_mm(g->cho, g->uo, g->ho, fd, vp, a + g->ue * vp, vp);
        for (size_t j = 0; j < g->kc; j++) out[c * g->kc + j] = a[g->fo[j]];
    }
    return qt;
}

/* The float coefficients of one image (coefficients a, |v|^2 = q) into l (k of them), then
 * q, the norm of what they leave out and their |.|^2 (in double, of the floats; lanes of
 * sums, whose order no bound depends on). An image with |v|^2 above NEAR_WILD or not
 * finite: q NaN, which no bound prunes. */
FOOLC__VEC
static void dct_store(const near_dct *g, const double *restrict a, double q, float *restrict l)
{
    enum { B = FOOLC__BLOCK };
    size_t k = g->k, j = 0;
    if (!(q <= NEAR_WILD)) {
        for (j = 0; j < k + 3; j++) l[j] = 0;
        l[k] = NAN;
        return;
    }
    double s[B] = {0}, sf[B] = {0}, st = 0, sft = 0;
    for (; j + B <= k; j += B) {
        const double *aj = a + j;
        float *lj = l + j;
        for (int b = 0; b < B; b++) {
            float f = (float)aj[b];
            s[b] += aj[b] * aj[b];
            sf[b] += (double)f * f;
            lj[b] = f;
        }
    }
    for (; j < k; j++) {
        float f = (float)a[j];
        st += a[j] * a[j];
        sft += (double)f * f;
        l[j] = f;
    }
    for (int b = 0; b < B; b++) {
        st += s[b];
        sft += sf[b];
    }
    l[k] = (float)q;
    l[k + 1] = (float)sqrt(q - st > 0 ? q - st : 0);
    l[k + 2] = (float)sft;
}

/* The bound's margins (its float computation stays below the true value):
 *  - P the orthogonal projection onto the span of the coefficients' rows U, R = I - P:
 *    |x - p|^2 = |P(x - p)|^2 + |Rx - Rp|^2 >= |U(x - p)|^2 / (1 + eta)^2 + (|Rx| - |Rp|)^2,
 *    eta >= |G - I| (dct_basis; the 2-D rows' Gram matrix is a principal submatrix of the
 *    Kronecker product of the 1-D ones, its eigenvalues within [(1 - eta)^2, (1 + eta)^2]).
 *  - The coefficients are within E |v| of U v as a vector (E = sqrt(k) (h + w + 4) 2^-52,
 *    dct_coefs) and within Ef |v| once in float (Ef = E + 2^-23), so with the float
 *    coefficients x', p': |U(x - p)|^2 >= |x' - p'|^2 - 4.04 Ef (|x|^2 + |p|^2).
 *  - |x' - p'|^2 as |x'|^2 + |p'|^2 (summed in double, stored in float) - 2 x'.p' (a float
 *    dot product of k terms in any order, within gamma_k |x'||p'|) and the float arithmetic
 *    of the bound stay within (k + 16) 2^-23 (|x|^2 + |p|^2) of the exact value.
 *    So cabs = 8 Ef + (k + 16) 2^-23 is taken off per |x|^2 + |p|^2, and rel = (k + 32)
 *    2^-22 + 4 eta covers the division by (1 + eta)^2 and the rounding of the sum and
 *    products of the bound itself.
 *  - |Rv| = sqrt(|v|^2 - |Pv|^2) with |Pv|^2 within 4 eta + (k + d + 8) 2^-51 + 3 E
 *    (delta) of |a|^2 relative to |v|^2, a the computed coefficients; so the stored norm
 *    (float) is within rho |v|, rho = sqrt(delta) + 2^-22, and with the float subtraction
 *    ||Rx| - |Rp|| >= |rx - rp| - (rho + 2^-23) (|x| + |p|), where |x| + |p| <=
 *    (|x|^2 + |p|^2 + 2) / 2: gmh = 0.51 (rho + 2^-23). */
typedef struct near_marg {
    float rel, cabs, gmh;
} near_marg;

static near_marg dct_margins(const near_dct *g, double eta, size_t d)
{
    double e = sqrt((double)g->k) * (double)(g->h + g->w + 4) * 0x1.0p-52;
    double ef = e + 0x1.0p-23;
    double delta = 4 * eta + (double)(g->k + d + 8) * 0x1.0p-51 + 3 * e;
    double rho = sqrt(delta) + 0x1.0p-22;
    near_marg mg;
    mg.rel = (float)((double)(g->k + 32) * 0x1.0p-22 + 4 * eta);
    mg.cabs = (float)(8 * ef + (double)(g->k + 16) * 0x1.0p-23);
    mg.gmh = (float)(0.51 * (rho + 0x1.0p-23));
    return mg;
}

/* The dot products of one sample's coefficients x (k) with the rows of one chunk (blk: k
 * coefficients per row transposed) into dot (NEAR_CHUNK): 8 accumulators of NEAR_LANES
 * rows (two coefficients at a time), which stay in registers. */
FOOLC__VEC __attribute__((optimize("fp-contract=fast")))
static void dct_dot1(const float *restrict x, size_t k, const float *restrict blk,
                     float *restrict dot)
{
    enum { L = NEAR_LANES };
    float e0[L] = {0}, e1[L] = {0}, e2[L] = {0}, e3[L] = {0};
    float o0[L] = {0}, o1[L] = {0}, o2[L] = {0}, o3[L] = {0};
    size_t j = 0;
    for (; j + 2 <= k; j += 2) {
        float xe = x[j], xo = x[j + 1];
        const float *be = blk + j * NEAR_CHUNK, *bo = be + NEAR_CHUNK;
        for (int r = 0; r < L; r++) {
            e0[r] += xe * be[r];
            e1[r] += xe * be[L + r];
            e2[r] += xe * be[2 * L + r];
            e3[r] += xe * be[3 * L + r];
            o0[r] += xo * bo[r];
            o1[r] += xo * bo[L + r];
            o2[r] += xo * bo[2 * L + r];
            o3[r] += xo * bo[3 * L + r];
        }
    }
    for (; j < k; j++) {
        const float *be = blk + j * NEAR_CHUNK;
        for (int r = 0; r < L; r++) {
            e0[r] += x[j] * be[r];
            e1[r] += x[j] * be[L + r];
            e2[r] += x[j] * be[2 * L + r];
            e3[r] += x[j] * be[3 * L + r];
        }
    }
    for (int r = 0; r < L; r++) {
        dot[r] = e0[r] + o0[r];
        dot[L + r] = e1[r] + o1[r];
        dot[2 * L + r] = e2[r] + o2[r];
        dot[3 * L + r] = e3[r] + o3[r];
    }
}

/* The bounds of one sample (coefficients x, then |x|^2, the left-out norm and the float
 * coefficients' |.|^2) and the rows of one chunk (blk: k coefficients per row transposed,
 * then |p|^2, the left-out norms and the coefficients' |.|^2; dot: their dot products with
 * x) into lb (NEAR_CHUNK of them), |U(x - p)|^2 through the dot product; NaN (a wild row or
 * sample) becomes -inf, which prunes nothing, and the rows past len +inf. Returns the
 * blocks of NEAR_LANES rows with a bound within bf (bit b: rows b NEAR_LANES ...). */
FOOLC__VEC __attribute__((optimize("fp-contract=fast")))
static unsigned dct_lb(const float *restrict x, size_t k, const float *restrict blk,
                       const float *restrict dot, near_marg mg, size_t len, float bf,
                       float *restrict lb)
{
    enum { L = NEAR_LANES };
    const float *q = blk + k * NEAR_CHUNK, *rr = q + NEAR_CHUNK, *c2 = rr + NEAR_CHUNK;
    float xq = x[k], xr = x[k + 1], xc = x[k + 2];
    unsigned flags = 0;
    for (int b = 0; b < NEAR_CHUNK / L; b++) {
        int any = 0;
        for (int r = 0; r < L; r++) {
            int i = b * L + r;
            float gap = fabsf(xr - rr[i]) - mg.gmh * (xq + q[i] + 2);
            float rl = gap > 0 ? gap * gap : 0;
            float sq = xc + c2[i] - 2 * dot[i];
            float v = (sq + rl) * (1 - mg.rel) - mg.cabs * (xq + q[i]);
            v = v == v ? v : -INFINITY;
            v = i < (int)len ? v : INFINITY;
            lb[i] = v;
            any |= v <= bf;
        }
        flags |= (unsigned)(any != 0) << b;
    }
    return flags;
}

/* A max-heap of (bound, row) pairs: the k rows of smallest bound. */
static void seed_push(near_ent *h, int32_t *n, int32_t k, double lb, int32_t row)
{
    int32_t i;
    if (*n < k) {
        i = (*n)++;
        while (i > 0 && h[(i - 1) / 2].lb < lb) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
    } else {
        if (!(lb < h[0].lb)) return;
        i = 0;
        for (;;) {
            int32_t c = 2 * i + 1;
            if (c >= k) break;
            if (c + 1 < k && h[c + 1].lb > h[c].lb) c++;
            if (!(h[c].lb > lb)) break;
            h[i] = h[c];
            i = c;
        }
    }
    h[i].lb = lb;
    h[i].row = row;
}

/* The second level: each row p quantised to 8 bits, p^ = lo + scale c (c integers in
 * [0, 255]; s1 = sum c, s2 = sum c^2), with eps >= |p - p^| (computed in double, rounded
 * up). |x - p| >= |x - p^| - eps, and
 * |x - p^|^2 = |x|^2 - 2 lo sum x + d lo^2 - 2 scale (x.c - lo s1) + scale^2 s2,
 * in double, x.c through the sample's integer quantisation (q8_lb). */
typedef struct near_q8 {
    double s1, s2;   /* integers, exact in double for any d below 2^37 */
    float lo, scale, eps;
    int32_t slot;    /* where near_kept keeps the codes */
} near_q8;

/* The smallest and largest of p (d >= 1, finite). */
FOOLC__VEC
static void q8_range(const float *restrict p, size_t d, float *lo, float *hi)
{
    float a[FOOLC__BLOCK], b[FOOLC__BLOCK];
    for (int k = 0; k < FOOLC__BLOCK; k++) a[k] = b[k] = p[0];
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (int k = 0; k < FOOLC__BLOCK; k++) {
            a[k] = p[j + k] < a[k] ? p[j + k] : a[k];
            b[k] = p[j + k] > b[k] ? p[j + k] : b[k];
        }
    for (; j < d; j++) {
        a[0] = p[j] < a[0] ? p[j] : a[0];
        b[0] = p[j] > b[0] ? p[j] : b[0];
    }
    for (int k = 1; k < FOOLC__BLOCK; k++) {
        a[0] = a[k] < a[0] ? a[k] : a[0];
        b[0] = b[k] > b[0] ? b[k] : b[0];
    }
    *lo = a[0];
    *hi = b[0];
}

/* The codes of p, round((p_j - lo) inv) within [0, 255], into c and as floats into cf. */
FOOLC__VEC
static void q8_codes(const float *restrict p, size_t d, float lo, float inv,
                     uint8_t *restrict c, float *restrict cf)
{
    enum { L = NEAR_LANES };
    size_t j = 0;
    for (; j + L <= d; j += L) {   /* the block's own pointers: gcc vectorises these */
        const float *pj = p + j;
        float *fj = cf + j;
        uint8_t *cj = c + j;
        int32_t t[L];
        for (int b = 0; b < L; b++) {
            float v = (pj[b] - lo) * inv + 0.5f;
            v = v > 0 ? v : 0;
            v = v < 255 ? v : 255;
            t[b] = (int32_t)v;
        }
        for (int b = 0; b < L; b++) {
            fj[b] = (float)t[b];
            cj[b] = (uint8_t)t[b];
        }
    }
    for (; j < d; j++) {
        float v = (p[j] - lo) * inv + 0.5f;
        v = v > 0 ? v : 0;
        v = v < 255 ? v : 255;
        c[j] = (uint8_t)(int32_t)v;
        cf[j] = (float)c[j];
    }
}

/* |p - (lo + scale c)|^2 in double (each term exact but for the roundings of lo + scale c,
 * of the square and of the sum), with sum c and sum c^2 (exact) into s1, s2 (c: the codes
 * as floats). */
FOOLC__VEC
static double q8_err(const float *restrict p, const float *restrict c, size_t d, float lo,
                     float scale, double *s1, double *s2)
{
    enum { L = FOOLC__BLOCK };
    double e[L] = {0}, a1[L] = {0}, a2[L] = {0}, et = 0, t1 = 0, t2 = 0;
    double lod = lo, sc = scale;
    size_t j = 0;
    for (; j + L <= d; j += L) {
        const float *pj = p + j, *cj = c + j;
        for (int b = 0; b < L; b++) {
            double cd = cj[b], t = (double)pj[b] - (lod + sc * cd);
            e[b] += t * t;
            a1[b] += cd;
            a2[b] += cd * cd;
        }
    }
    for (; j < d; j++) {
        double cd = c[j], t = (double)p[j] - (lod + sc * cd);
        et += t * t;
        t1 += cd;
        t2 += cd * cd;
    }
    for (int b = 0; b < L; b++) {
        et += e[b];
        t1 += a1[b];
        t2 += a2[b];
    }
    *s1 = t1;
    *s2 = t2;
    return et;
}

/* eps >= |p - p^|: the computed error grown for the roundings of its square, sum and root
 * (relative: 2^-20), plus sqrt(d) times the rounding of lo + scale c (at most 2^-52 (|lo| +
 * 255 scale) per coordinate). */
static near_q8 q8_store(const float *p, size_t d, double q, uint8_t *c, float *cf)
{
    near_q8 z = {0, 0, 0, NAN, INFINITY, 0};
    if (!(q <= NEAR_WILD)) return z;   /* scale NaN: never pruned (eps not 0: built) */
    float lo, hi;
    q8_range(p, d, &lo, &hi);
    z.lo = lo;
    z.scale = (float)(((double)hi - lo) / 255.0);
    q8_codes(p, d, lo, z.scale > 0 ? 1 / z.scale : 0, c, cf);
    double e = q8_err(p, cf, d, lo, z.scale, &z.s1, &z.s2);
    double r = sqrt((double)d) * 0x1.0p-52 * (fabs((double)lo) + 255.0 * z.scale);
    z.eps = (float)((sqrt(e) + r) * (1 + 0x1.0p-20) + 0x1.0p-100);
    return z;
}

/* The sample side: x quantised to integers xq (|xq| <= Q, so that no partial sum of
 * d products with codes reaches 2^31), x^ = xs xq, ex >= |x - x^| (in double, rounded
 * up). */
typedef struct near_xq {
    int16_t *v;
    double xs, ex;
} near_xq;

static void xq_make(const float *x, size_t d, near_xq *q)
{
    double mx = 0, e = 0;
    for (size_t j = 0; j < d; j++) mx = fabs(x[j]) > mx ? fabs(x[j]) : mx;
    double lim = (double)INT32_MAX / (255.0 * (double)d);
    double qm = lim < 32767 ? floor(lim) : 32767;
    q->xs = mx > 0 && qm >= 1 ? mx / qm : 0;
    for (size_t j = 0; j < d; j++) {
        long r = q->xs > 0 ? lround(x[j] / q->xs) : 0;
        r = r > (long)qm ? (long)qm : r < -(long)qm ? -(long)qm : r;
        q->v[j] = (int16_t)r;
        double t = (double)x[j] - q->xs * (double)r;
        e += t * t;
    }
    q->ex = sqrt(e) * (1 + 0x1.0p-20) + 0x1.0p-100;
}

/* xq . c exactly, in integers: every partial sum stays within d Q 255 < 2^31. */
FOOLC__VEC
static int32_t q8_idot(const int16_t *restrict x, const uint8_t *restrict c, size_t d)
{
    int32_t t = 0;
    size_t j = 0;
    for (; j + 128 <= d; j += 128) {
        int32_t u = 0;
        for (int b = 0; b < 128; b++) u += (int32_t)x[j + b] * (int32_t)c[j + b];
        t += u;
    }
    for (; j + 16 <= d; j += 16) {
        int32_t u = 0;
        for (int b = 0; b < 16; b++) u += (int32_t)x[j + b] * (int32_t)c[j + b];
        t += u;
    }
    for (; j < d; j++) t += (int32_t)x[j] * (int32_t)c[j];
    return t;
}

/* The second level's lower bound on |x - p|^2 (x: |x|^2 nx, its coordinates' sum sx, its
 * quantisation xq): x.c within ex |c| of xs (xq . c), the double arithmetic within 2^-40
 * of the magnitudes summed; 0 (no pruning) when p is wild. */
static double q8_lb(double nx, double sx, const near_xq *xq, const uint8_t *c, size_t d,
                    near_q8 z)
{
    double dot = xq->xs * (double)q8_idot(xq->v, c, d), lo = z.lo, sc = z.scale;
    double a = nx - 2 * lo * sx + (double)d * lo * lo, b = 2 * sc * (dot - lo * z.s1);
    double e = sc * sc * z.s2, cn = sqrt((double)z.s2);
    double mag = nx + 2 * fabs(lo * sx) + (double)d * lo * lo +
                 2 * sc * (fabs(dot) + fabs(lo) * z.s1) + e;
    double err = 2 * sc * xq->ex * cn + 0x1.0p-40 * mag;
    double sq = a - b + e - err;
    double t = sq > 0 ? sqrt(sq) * (1 - 0x1.0p-50) : 0;
    return t > z.eps ? (t - z.eps) * (t - z.eps) * (1 - 0x1.0p-50) : t == t ? 0 : NAN;
}

#define NEAR_FALLBACK 1   /* near_kept: no summary, near_scan instead */
#define NEAR_RING 16      /* candidates looked at ahead to fetch their codes */
#define NEAR_FIRST 32     /* candidates taken by increasing bound before the others */
#define NEAR_KS 16        /* coefficients that order the pool and bound whole chunks */
#define NEAR_SEEDC 16     /* chunks of smallest bound that give a sample its seeds */

static int ent_lb_cmp(const void *a, const void *b)
{
    double x = ((const near_ent *)a)->lb, y = ((const near_ent *)b)->lb;
    return (x > y) - (x < y);
}

/* The float just above a (or a itself), so that lb <= it for every float lb <= a. */
static float near_up(double a)
{
    float f = (float)a;
    return (double)f < a ? nextafterf(f, INFINITY) : f;
}

/* A sample's state: the heap of its kh smallest upper bounds (nh of them), its rows left
 * (ls), its seeds in position order (sd, ns, the next one at si) and its candidates. */
typedef struct near_smp {
    double *heap, nx;
    near_ent *sd;
    int32_t nh, ns, si;
    near_list ls, cand;
} near_smp;

static double smp_bound(const near_smp *z, int32_t k)
{
    return z->nh == k ? z->heap[0] : INFINITY;
}

/* The order's keys: per position the first NEAR_KS coefficients of its row (one record of
 * 64 bytes, moved with the position's row). */
typedef struct near_key {
    float v[NEAR_KS];
} near_key;

/* The lows and highs of each key over the records k (n of them) into mn and mx. */
FOOLC__VEC
static void kd_range(const near_key *restrict k, size_t n, float *restrict mn,
                     float *restrict mx)
{
    float a[NEAR_KS], b[NEAR_KS];
    for (int j = 0; j < NEAR_KS; j++) {
        a[j] = INFINITY;
        b[j] = -INFINITY;
    }
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < NEAR_KS; j++) {
            float v = k[i].v[j];
            a[j] = v < a[j] ? v : a[j];
            b[j] = v > b[j] ? v : b[j];
        }
    for (int j = 0; j < NEAR_KS; j++) {
        mn[j] = a[j];
        mx[j] = b[j];
    }
}

/* Puts the records k and their rows p (n of them) in order of key j far enough that the
 * kth has the value it would have sorted, none before it larger, none after it smaller. */
static void kd_select(near_key *k, int32_t *p, size_t n, size_t kth, int j)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pv = k[lo + (hi - lo) / 2].v[j];
        size_t a = lo, b = hi;
        for (;;) {
            while (k[a].v[j] < pv) a++;
            while (k[b].v[j] > pv) b--;
            if (a >= b) break;
            near_key t = k[a];
            k[a] = k[b];
            k[b] = t;
            int32_t r = p[a];
            p[a] = p[b];
            p[b] = r;
            a++;
            b--;
        }
        if (kth <= b)
            hi = b;
        else
            lo = b + 1;
    }
}

/* The pool's order (perm: position -> row, from the records k of the rows in row order,
 * which it reorders with them): ranges split in two at a multiple of NEAR_CHUNK by the key
 * that spreads most, until a range fits a chunk; so a chunk holds rows close in those
 * coefficients, and its box bounds them all. */
static int kd_order(int32_t *perm, near_key *k, size_t n)
{
    size_t cap = 64, top = 0;
    size_t *st = foolc__malloc(cap * 2 * sizeof(size_t));
    if (!st) return 0;
    for (size_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    st[top++] = 0;
    st[top++] = n;
    while (top) {
        size_t hi = st[--top], lo = st[--top];
        if (hi - lo <= NEAR_CHUNK) continue;
        float mn[NEAR_KS], mx[NEAR_KS], wb = -1;
        int jb = 0;
        kd_range(k + lo, hi - lo, mn, mx);
        for (int j = 0; j < NEAR_KS; j++)
            if (mx[j] - mn[j] > wb) {
                wb = mx[j] - mn[j];
                jb = j;
            }
        size_t nch = (hi - lo + NEAR_CHUNK - 1) / NEAR_CHUNK;
        size_t mid = lo + (nch + 1) / 2 * NEAR_CHUNK;
        kd_select(k + lo, perm + lo, hi - lo, mid - lo, jb);
        if (top + 4 > cap * 2) {
            size_t *t = foolc__realloc(st, cap * 4 * sizeof(size_t));
            if (!t) {
                foolc__free(st);
                return 0;
            }
            st = t;
            cap *= 2;
        }
        st[top++] = lo;
        st[top++] = mid;
        st[top++] = mid;
        st[top++] = hi;
    }
    foolc__free(st);
    return 1;
}

/* The chunks' boxes (box: per coefficient j < ks its lows (nc), then highs (nc); then the
 * lows and highs of the norms the ks leave out, then the largest |p|^2, NaN with a wild
 * row) and one sample's bounds over each (x: its coefficients, |x|^2, xr: the norm its ks
 * leave out) into cb (nc): every row of the chunk is at least that far. */
FOOLC__VEC
static void box_lb(const float *restrict x, float xq, float xr, size_t ks, const float *box,
                   size_t nc, near_marg mg, float *restrict cb)
{
    enum { L = NEAR_LANES };
    const float *rlo = box + 2 * ks * nc, *rhi = rlo + nc, *qm = rhi + nc;
    size_t c0 = 0;
    for (; c0 + L <= nc; c0 += L) {   /* blocks of chunks (the block's own pointers) */
        float acc[L] = {0};
        for (size_t j = 0; j < ks; j++) {
            const float *lo = box + 2 * j * nc + c0, *hi = lo + nc;
            float xv = x[j];
            for (int b = 0; b < L; b++) {
                float t = (lo[b] > xv ? lo[b] - xv : 0) + (xv > hi[b] ? xv - hi[b] : 0);
                acc[b] += t * t;
            }
        }
        const float *rl0 = rlo + c0, *rh0 = rhi + c0, *qm0 = qm + c0;
        float *cb0 = cb + c0;
        for (int b = 0; b < L; b++) {
            float gap = (rl0[b] > xr ? rl0[b] - xr : 0) + (xr > rh0[b] ? xr - rh0[b] : 0) -
                        mg.gmh * (xq + qm0[b] + 2);
            float rl = gap > 0 ? gap * gap : 0;
            float v = (acc[b] + rl) * (1 - mg.rel) - mg.cabs * (xq + qm0[b]);
            cb0[b] = v == v ? v : -INFINITY;
        }
    }
    for (size_t ci = c0; ci < nc; ci++) {
        float acc = 0;
        for (size_t j = 0; j < ks; j++) {
            float lo = box[2 * j * nc + ci], hi = box[(2 * j + 1) * nc + ci], xv = x[j];
            float t = (lo > xv ? lo - xv : 0) + (xv > hi ? xv - hi : 0);
            acc += t * t;
        }
        float gap = (rlo[ci] > xr ? rlo[ci] - xr : 0) + (xr > rhi[ci] ? xr - rhi[ci] : 0) -
                    mg.gmh * (xq + qm[ci] + 2);
        float rl = gap > 0 ? gap * gap : 0;
        float v = (acc + rl) * (1 - mg.rel) - mg.cabs * (xq + qm[ci]);
        cb[ci] = v == v ? v : -INFINITY;
    }
}

/* Moves the rows of a (n rows of sz bytes) so that row pos holds what row perm[pos] held,
 * cycle by cycle (buf: sz bytes, done: n zeroed bytes of scratch). */
static void permute_rows(unsigned char *a, size_t sz, const int32_t *perm, size_t n,
                         unsigned char *buf, unsigned char *done)
{
    for (size_t s = 0; s < n; s++) {
        if (done[s]) continue;
        memcpy(buf, a + s * sz, sz);
        for (size_t pos = s;;) {
            size_t src = (size_t)perm[pos];
            done[pos] = 1;
            if (src == s) {
                memcpy(a + pos * sz, buf, sz);
                break;
            }
            memcpy(a + pos * sz, a + src * sz, sz);
            pos = src;
        }
    }
}

/* The norm the first ks coefficients a leave out of |v|^2 = q. */
static double near_rest(const double *a, size_t ks, double q)
{
    double s = 0;
    for (size_t j = 0; j < ks; j++) s += a[j] * a[j];
    return sqrt(q - s > 0 ? q - s : 0);
}

/* foolc__dec_nearest on the caller's pool (px = run->starts_x, np rows) of images (g), from
 * the summary (filled by the first run: the pool ordered so that chunks hold close rows,
 * their coefficients and boxes, and the rows' 8-bit codes): per group of samples,
 *  - per sample its chunks' box bounds, and in the NEAR_SEEDC chunks of smallest bound the
 *    kh eligible rows of smallest bound (seeds), whose dot products give a first bound A;
 *  - one pass over the chunks, each for the samples whose box bound is within their A: the
 *    eligible rows within A are the sample's candidates;
 *  - per sample, the candidates still within A (which falls as rows come in; the
 *    NEAR_FIRST of smallest bound first, by increasing bound, then the others in pool
 *    order): the 8-bit codes' bound, and where that is within A the dot product; then the
 *    exact distances of the rows left, in row order.
 * NEAR_FALLBACK without the summary. */
static foolc_status near_kept(const foolc__run *run, near_dct *g, const int32_t *idx, int32_t m,
                              int32_t k, const float *px, const int32_t *py, int32_t np,
                              foolc__pool_cand *cs, int32_t *cnt)
{
    size_t d = run->d, kk = g->k, n = (size_t)np, xsz = kk + 3;
    size_t ks = kk < NEAR_KS ? kk : NEAR_KS;
    size_t nc = (n + NEAR_CHUNK - 1) / NEAR_CHUNK, bs = xsz * NEAR_CHUNK, nbx = 2 * ks + 3;
    /* The summary: |p|^2 in double by row (n), the count of rows with codes; the 8-bit
     * quantisation by position (near_q8, n; eps 0: not built yet); then floats: per chunk
     * (bs) its rows' coefficients transposed, |p|^2, left-out norms and the coefficients'
     * |.|^2, then the chunks' boxes (nbx nc); the build's scratch (the norms the first ks
     * coefficients leave out, n; bs floats; the order's keys, near_key n); the order (perm:
     * position -> row, n), n bytes of scratch, then room for n rows of d codes, filled in
     * the order they are built (near_q8's slot): the pages of the rows no search needed
     * are never touched. */
    int fill;
    size_t per_row = sizeof(double) + sizeof(near_q8) + sizeof(near_key) + sizeof(float) +
                     sizeof(int32_t) + 1;
    size_t bytes = sizeof(double) + foolc__mul(n, per_row) +
                   foolc__mul(foolc__mul(nc, bs + nbx) + bs, sizeof(float)) + foolc__mul(n, d);
    double *qd = bytes >= SIZE_MAX / 2 ? NULL
                 : near_summary(run, px, np, 0, NEAR_DCT, g->c,
                                bytes / sizeof(double) + 1, &fill);
    if (!qd) return NEAR_FALLBACK;
    double *ncode = qd + n;
    near_q8 *zq = (near_q8 *)(void *)(ncode + 1);
    float *l = (float *)(void *)(zq + n), *box = l + nc * bs, *rk = box + nc * nbx;
    float *scr = rk + n;
    near_key *kx = (near_key *)(void *)(scr + bs);
    int32_t *perm = (int32_t *)(void *)(kx + n);
    unsigned char *done = (unsigned char *)(perm + n);
    uint8_t *code = done + n;
    int32_t kh = k < np ? k : np, gmax = m < NEAR_GROUP ? m : NEAR_GROUP;
    size_t gm = (size_t)gmax, nbas = dct_nbasis(g), nscr = dct_nscratch(g);
    double *bas = foolc__malloc(foolc__mul(nbas + nscr, sizeof(double)));
    float *xf = foolc__malloc(foolc__mul(foolc__mul(gm, xsz + 1), sizeof(float)));
    float *cbs = foolc__malloc(foolc__mul(foolc__mul(gm, nc), sizeof(float)));
    double *heaps = foolc__malloc(foolc__mul(foolc__mul(gm, (size_t)kh), sizeof(double)));
    near_ent *seeds = foolc__malloc(foolc__mul(foolc__mul(gm, (size_t)kh), sizeof(near_ent)));
    near_smp *sm = foolc__calloc(gm, sizeof *sm);
    int16_t *xqv = foolc__malloc(foolc__mul(d, sizeof(int16_t)));
    float *cfs = foolc__malloc(foolc__mul(d, sizeof(float)));
    foolc_status st = FOOLC_OK;
    if (!bas || !xf || !cbs || !heaps || !seeds || !sm || !xqv || !cfs) {
        st = foolc__nomem("nearest pool images");
        goto out;
    }
    double *t = bas + nbas, *a = t + nscr - kk;   /* dct_coefs' scratch, its output last */
    near_marg mg = dct_margins(g, dct_basis(g, bas), d);
    if (fill) {   /* once per pool: coefficients, order, chunks, boxes */
        /* The pool read once, in row order: each row's |p|^2, coefficients (by rows in the
         * chunks' room, xsz floats each), keys and left-out norm; then the order, the
         * coefficients' rows put in it, and each chunk transposed in place with its box. The
         * codes come later, each row's the first time a search needs them (about 1 row in
         * 5 for 20 CNN images). */
        for (size_t p = 0; p < n; p++) {
            float *lp = l + p * xsz;
            qd[p] = dct_coefs(g, px + p * d, t, a);
            dct_store(g, a, qd[p], lp);
            for (size_t j = 0; j < NEAR_KS; j++) kx[p].v[j] = j < ks ? lp[j] : 0;
            rk[p] = (float)near_rest(a, ks, qd[p]);
        }
        if (!kd_order(perm, kx, n)) {
            st = foolc__nomem("nearest pool images");
            goto out;
        }
        memset(done, 0, n);
        permute_rows((unsigned char *)l, xsz * sizeof(float), perm, n,
                     (unsigned char *)scr, done);
        for (size_t ci = 0; ci < nc; ci++) {
            float *blk = l + ci * bs, *bx = box + ci;
            size_t p0 = ci * NEAR_CHUNK, len = n - p0 < NEAR_CHUNK ? n - p0 : NEAR_CHUNK;
            memcpy(scr, blk, len * xsz * sizeof(float));   /* its rows, by rows */
            for (size_t j = 0; j < xsz; j++)
                for (size_t r = 0; r < NEAR_CHUNK; r++)
                    blk[j * NEAR_CHUNK + r] = r < len ? scr[r * xsz + j] : 0;
            for (size_t j = 0; j < ks; j++) {
                bx[2 * j * nc] = INFINITY;
                bx[(2 * j + 1) * nc] = -INFINITY;
            }
            bx[2 * ks * nc] = INFINITY;
            bx[(2 * ks + 1) * nc] = -INFINITY;
            bx[(2 * ks + 2) * nc] = 0;
            for (size_t r = 0; r < len; r++) {
                size_t row = (size_t)perm[p0 + r];
                const float *tr = scr + r * xsz;
                for (size_t j = 0; j < ks; j++) {
                    float *lo = bx + 2 * j * nc, *hi = lo + nc;
                    *lo = tr[j] < *lo ? tr[j] : *lo;
                    *hi = tr[j] > *hi ? tr[j] : *hi;
                }
                float *rlo = bx + 2 * ks * nc, *rhi = rlo + nc, *qm = rhi + nc;
                *rlo = rk[row] < *rlo ? rk[row] : *rlo;
                *rhi = rk[row] > *rhi ? rk[row] : *rhi;
                *qm = tr[kk] > *qm || tr[kk] != tr[kk] ? tr[kk] : *qm;   /* NaN sticks */
            }
        }
        near_summary_done(run, np);
    }
    double gam = near_gamma(d);
    float lbv[NEAR_CHUNK], dots[NEAR_CHUNK];
    for (int32_t a0 = 0; a0 < m; a0 += gmax) {
        int32_t gn = m - a0 < gmax ? m - a0 : gmax;
        for (int32_t s = 0; s < gn; s++) {   /* the samples' coefficients and box bounds */
            near_smp *z = &sm[s];
            float *xs = xf + (size_t)s * (xsz + 1);
            z->nx = dct_coefs(g, run->x + (size_t)idx[a0 + s] * d, t, a);
            dct_store(g, a, z->nx, xs);
            xs[xsz] = (float)near_rest(a, ks, z->nx);
            box_lb(xs, xs[kk], xs[xsz], ks, box, nc, mg, cbs + (size_t)s * nc);
            z->heap = heaps + (size_t)s * (size_t)kh;
            z->sd = seeds + (size_t)s * (size_t)kh;
            z->nh = z->ns = z->si = 0;
            z->ls.n = z->cand.n = 0;
        }
        /* The seeds: in each sample's NEAR_SEEDC chunks of smallest box bound, its kh
         * eligible rows of smallest bound; their dot products give the first bound. */
        for (int32_t s = 0; s < gn; s++) {
            near_smp *z = &sm[s];
            const float *xs = xf + (size_t)s * (xsz + 1), *cb = cbs + (size_t)s * nc;
            const float *x0 = run->x + (size_t)idx[a0 + s] * d;
            size_t best[NEAR_SEEDC];
            int nbest = 0;
            for (size_t ci = 0; ci < nc; ci++) {   /* the NEAR_SEEDC smallest, in order */
                int b = nbest < NEAR_SEEDC ? nbest++ : NEAR_SEEDC;
                if (b == NEAR_SEEDC && !(cb[ci] < cb[best[NEAR_SEEDC - 1]])) continue;
                if (b == NEAR_SEEDC) b--;
                while (b > 0 && cb[best[b - 1]] > cb[ci]) {
                    best[b] = best[b - 1];
                    b--;
                }
                best[b] = ci;
            }
            for (int bi = 0; bi < nbest; bi++) {
                size_t ci = best[bi], p0 = ci * NEAR_CHUNK;
                size_t len = n - p0 < NEAR_CHUNK ? n - p0 : NEAR_CHUNK;
                const float *blk = l + ci * bs;
                dct_dot1(xs, kk, blk, dots);
                dct_lb(xs, kk, blk, dots, mg, len, INFINITY, lbv);
                for (size_t r = 0; r < len; r++)
                    if ((z->ns < kh || lbv[r] < z->sd[0].lb) &&
                        near_eligible(run, py, 0, idx[a0 + s], perm[p0 + r]))
                        seed_push(z->sd, &z->ns, kh, lbv[r], (int32_t)(p0 + r));
            }
            qsort(z->sd, (size_t)z->ns, sizeof *z->sd, ent_row_cmp);
            for (int32_t q = 0; q < z->ns; q++) {
                int32_t pos = z->sd[q].row, row = perm[pos];
                if (!near_consider(x0, z->nx, px + (size_t)row * d, qd[row], d, gam, z->heap,
                                   &z->nh, k, kh, &z->ls, row)) {
                    st = foolc__nomem("nearest pool images");
                    goto out;
                }
            }
        }
        /* Every chunk, for the samples whose box bound is within theirs: the candidates,
         * the eligible rows (seeds aside) within it. */
        for (size_t ci = 0; ci < nc; ci++) {
            const float *blk = l + ci * bs;
            size_t p0 = ci * NEAR_CHUNK, len = n - p0 < NEAR_CHUNK ? n - p0 : NEAR_CHUNK;
            for (int32_t s = 0; s < gn; s++) {
                near_smp *z = &sm[s];
                double bound = smp_bound(z, k);
                if (cbs[(size_t)s * nc + ci] > bound) continue;
                const float *xs = xf + (size_t)s * (xsz + 1);
                dct_dot1(xs, kk, blk, dots);
                unsigned fl = dct_lb(xs, kk, blk, dots, mg, len, near_up(bound), lbv);
                for (; fl; fl &= fl - 1) {   /* the blocks with a row within */
                    size_t r0 = 0;
                    while (!(fl >> r0 & 1)) r0++;
                    for (size_t r = r0 * NEAR_LANES; r < (r0 + 1) * NEAR_LANES && r < len; r++) {
                        int32_t pos = (int32_t)(p0 + r);
                        if (!(lbv[r] <= bound) ||
                            !near_eligible(run, py, 0, idx[a0 + s], perm[pos]))
                            continue;
                        while (z->si < z->ns && z->sd[z->si].row < pos) z->si++;
                        if (z->si < z->ns && z->sd[z->si].row == pos) continue;   /* a seed */
                        if (!list_add(&z->cand, pos, lbv[r])) {
                            st = foolc__nomem("nearest pool images");
                            goto out;
                        }
                    }
                }
            }
        }
        for (int32_t s = 0; s < gn; s++) {
            near_smp *z = &sm[s];
            int32_t ai = a0 + s;
            const float *x0 = run->x + (size_t)idx[ai] * d;
            double bound = smp_bound(z, k);
            int wild = !(z->nx <= NEAR_WILD);
            double sx = 0;
            for (size_t j = 0; j < d; j++) sx += x0[j];
            near_xq xq = {xqv, 0, 0};
            if (!wild) xq_make(x0, d, &xq);
            /* The candidates' codes' bound and, where that is within A, the dot product:
             * first the NEAR_FIRST of smallest bound by increasing bound (A falls to about
             * its last value), then the others still within A in pool order (close rows
             * together), the next ones' codes fetched ahead. */
            near_ent *ce = z->cand.e, first[NEAR_FIRST];
            int32_t nc1 = 0, pf = 0;   /* pf: the next candidate whose codes to fetch */
            for (int32_t c = 0; c < z->cand.n; c++)
                if (nc1 < NEAR_FIRST || ce[c].lb < first[0].lb)
                    seed_push(first, &nc1, NEAR_FIRST, ce[c].lb, c);
            qsort(first, (size_t)nc1, sizeof *first, ent_lb_cmp);
            for (int32_t c = 0; c <= nc1 + z->cand.n; c++) {
                int32_t ci = c < nc1 ? first[c].row : c - nc1 - 1;
                if (c == nc1) continue;   /* between the parts */
                for (; c > nc1 && pf < z->cand.n && pf < ci + NEAR_RING; pf++) {
                    if (!(ce[pf].lb <= bound)) continue;
                    int32_t pp = ce[pf].row;   /* its codes, or its row to build them */
                    int built = zq[pp].eps != 0;
                    const char *f = built ? (const char *)(code + (size_t)zq[pp].slot * d)
                                          : (const char *)(px + (size_t)perm[pp] * d);
                    size_t len = built ? d : d * sizeof(float);
                    for (size_t o = 0; o < len; o += 64) __builtin_prefetch(f + o);
                }
                if (!(ce[ci].lb <= bound)) {
                    if (c < nc1) c = nc1 - 1;   /* the rest of the first part too */
                    continue;
                }
                int32_t pos = ce[ci].row, row = perm[pos];
                ce[ci].lb = NAN;   /* taken: within no bound, infinite ones included */
                if (!wild) {
                    if (zq[pos].eps == 0) {   /* the row's codes, built once, in the next slot */
                        int32_t sl = (int32_t)*ncode;
                        zq[pos] = q8_store(px + (size_t)row * d, d, qd[row],
                                           code + (size_t)sl * d, cfs);
                        zq[pos].slot = sl;
                        *ncode += 1;
                    }
                    const uint8_t *cp = code + (size_t)zq[pos].slot * d;
                    if (q8_lb(z->nx, sx, &xq, cp, d, zq[pos]) > bound) continue;
                }   /* a wild row (its bound 0) goes on */
                if (!near_consider(x0, z->nx, px + (size_t)row * d, qd[row], d, gam, z->heap,
                                   &z->nh, k, kh, &z->ls, row)) {
                    st = foolc__nomem("nearest pool images");
                    goto out;
                }
                bound = smp_bound(z, k);
            }
            qsort(z->ls.e, (size_t)z->ls.n, sizeof *z->ls.e, ent_row_cmp);
            cnt[ai] = near_finish(x0, px, d, &z->ls, bound, k, cs + (size_t)ai * (size_t)k);
        }
    }
out:
    for (size_t s = 0; sm && s < gm; s++) {
        foolc__free(sm[s].ls.e);
        foolc__free(sm[s].cand.e);
    }
    foolc__free(xqv);
    foolc__free(cfs);
    foolc__free(sm);
    foolc__free(bas);
    foolc__free(xf);
    foolc__free(cbs);
    foolc__free(heaps);
    foolc__free(seeds);
    return st;
}

/* ---- any other pool: one pass with segment statistics ---- */

/* foolc__dec_nearest in one pass over the pool, chunk by chunk: the segments' bound of each
 * (sample, row) against the running bound of the sample, then the dot product. */
static foolc_status near_scan(const foolc__run *run, const int32_t *idx, int32_t m, int32_t k,
                              const float *px, const int32_t *py, int32_t np, int self,
                              foolc__pool_cand *cs, int32_t *cnt)
{
    size_t d = run->d;
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
    size_t nc = ((size_t)np + NEAR_CHUNK - 1) / NEAR_CHUNK;
    int fill;
    double *summ = near_summary(run, px, np, self, NEAR_SEGS, 0,
                                foolc__mul(nc, (ns + 2) * NEAR_CHUNK), &fill);
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
    /* The segments' bound is the distance of the images' segment means (per segment,
     * sum_j (x_j - p_j)^2 >= (sum_j (x_j - p_j))^2 / len); its double rounding is far below
     * its margin (a relative 1e-9 and 1e-9 (|x|^2 + |p|^2 + 1)). Plus the rest: with P the
     * projection onto the segment-constant vectors and R = I - P,
     * |x - p|^2 = |P(x - p)|^2 + |Rx - Rp|^2 >= the segments' bound + (|Rx| - |Rp|)^2;
     * |Rv| = sqrt(|v|^2 - |Pv|^2) in double is within 1e-7 (|v| + 1) of the exact value
     * (cancellation under the square root), below the 1e-6 (|x|^2 + |p|^2 + 3) taken off
     * (at least 1e-6 (|x| + |p| + 1): no square roots per row). */
    double gam = near_gamma(d);
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
                if (!near_eligible(run, py, self, i, p)) continue;
                double bound = nh[a] == k ? heap[(size_t)a * (size_t)kh] : INFINITY;
                double q = pp[p - p0], sl = lbv[p - p0];
                double gap = fabs(rx[a] - rp[p - p0]) - 1e-6 * (nx[a] + q + 3);
                double rl = gap > 0 ? gap * gap : 0;
                if (sl * (1 - 1e-9) - 1e-9 * (nx[a] + q + 1) + rl > bound) continue;
                if (!near_consider(x0, nx[a], px + (size_t)p * d, q, d, gam,
                                   heap + (size_t)a * (size_t)kh, &nh[a], k, kh, &ls[a], p)) {
                    st = foolc__nomem("nearest pool images");
                    goto out;
                }
            }
        }
    }
    if (fill) near_summary_done(run, np);   /* every chunk filled */
    /* The exact distances of the rows left (listed in row order). */
    for (int32_t a = 0; a < m; a++) {
        double bound = nh[a] == k ? heap[(size_t)a * (size_t)kh] : INFINITY;
        cnt[a] = near_finish(run->x + (size_t)idx[a] * d, px, d, &ls[a], bound, k,
                             cs + (size_t)a * (size_t)k);
    }
out:
    for (int32_t a = 0; ls && a < m; a++) foolc__free(ls[a].e);
    foolc__free(ls);
    foolc__free(heap);
    foolc__free(nx);
    foolc__free(sx);
    foolc__free(sp);
    foolc__free(inv_len);
    foolc__free(nh);
    return st;
}

foolc_status foolc__dec_nearest(const foolc__run *run, const int32_t *idx, int32_t m, int32_t k,
                                const float *px, const int32_t *py, int32_t np, int self,
                                foolc__pool_cand *cs, int32_t *cnt)
{
    if (m <= 0) return FOOLC_OK;
    near_dct g;
    if (!self && np > 0 && run->starts_sum && px == run->starts_x && np == run->n_starts &&
        dct_geometry(run->shape, run->d, &g)) {
        foolc_status st = near_kept(run, &g, idx, m, k, px, py, np, cs, cnt);
        if (st != NEAR_FALLBACK) return st;
    }
    return near_scan(run, idx, m, k, px, py, np, self, cs, cnt);
}
