/* Gaussian blur (Foolbox's GaussianBlurAttack), minimising in L2: per sample the smallest
 * standard deviation (in pixels) at which the blurred input is adversarial, by a linear scan
 * over sigma and a bisection in the bracket found. The blur is separable, per channel, with
 * mirrored borders. */
#include "decision.h"
#include "numeric.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct blur_config {
    double max_sigma, steps, rtol, max_queries;
} blur_config;

static const foolc__param blur_params[] = {
    FOOLC__PARAM(blur_config, max_sigma, 0, 0, 1000, 0,
                 "largest standard deviation tried, in pixels; 0 means the image's larger side"),
    FOOLC__PARAM(blur_config, steps, 50, 1, 10000, 1,
                 "linear-scan steps over sigma in (0, max_sigma]"),
    FOOLC__PARAM(blur_config, rtol, 1e-3, 1e-9, 0.5, 0,
                 "relative tolerance of the bisection of sigma"),
    FOOLC__PARAM(blur_config, max_queries, 0, 0, 1e12, 1,
                 "model images per sample at most; 0 means no limit"),
};

/* Mirror an index into [0, n) the way scipy's 'reflect' mode does (d c b a | a b c d). */
static int32_t reflect(int64_t i, int32_t n)
{
    int64_t p = 2 * (int64_t)n;
    i %= p;
    if (i < 0) i += p;
    return (int32_t)(i < n ? i : p - 1 - i);
}

typedef struct blur_ctx {
    double *kern;      /* 2 * rmax + 1 weights of the current sigma */
    float *plane;      /* one channel (H rows of wp), the pass's source */
    float *ext;        /* one row, mirrored past its ends (wp + 2 * rmax) */
    int32_t *rows;     /* reflect(i - rmax, H) for i in [0, H + 2 * rmax) */
    int32_t *cols;     /* reflect(i - rmax, W) for i in [0, W + 2 * rmax) */
    double *mr, *mc;   /* folded kernels (H x H, W x W transposed), when fold is set */
    double sigma;      /* the kernel's sigma (0: none yet) */
    int32_t rmax, r, fold, wp;   /* wp: W rounded up to FOOLC__BLOCK */
} blur_ctx;

/* Blurs one H x W channel in place: along the columns, then along the rows. Each output is
 * the sum over the taps t = -r..r in that order of k[t] times the mirrored neighbour, in
 * double, rounded to float after each pass. With c->fold (a kernel longer than a side), the
 * taps that mirror onto the same value are added first (blur_fold), and each output sums
 * over the side's values in index order: min(2 r + 1, n) products instead of 2 r + 1. The
 * sums run over blocks of FOOLC__BLOCK neighbouring outputs held in registers (the same
 * order per output as one output at a time), on rows of wp = W rounded up to a block (the
 * lanes past W are computed and dropped). */
FOOLC__VEC
static void blur_plane(blur_ctx *c, float *img, int32_t H, int32_t W)
{
    int32_t r = c->r, Wp = c->wp, rm = c->rmax;
    const double *k = c->kern;
    if (H > 1) {
        for (int32_t y = 0; y < H; y++)
            memcpy(c->plane + (size_t)y * Wp, img + (size_t)y * W, (size_t)W * sizeof(float));
        for (int32_t y = 0; y < H; y++) {
            float *o = img + (size_t)y * W;
            const double *my = c->mr + (size_t)y * H;
            for (int32_t xb = 0; xb < Wp; xb += FOOLC__BLOCK) {
                double s[FOOLC__BLOCK] = {0};
                if (c->fold) {
                    for (int32_t j = 0; j < H; j++) {
                        if (my[j] == 0) continue;
                        const float *p = c->plane + (size_t)j * Wp + xb;
                        for (int32_t b = 0; b < FOOLC__BLOCK; b++) s[b] += my[j] * (double)p[b];
                    }
                } else {
                    for (int32_t t = -r; t <= r; t++) {
                        const float *p = c->plane + (size_t)c->rows[y + t + rm] * Wp + xb;
                        for (int32_t b = 0; b < FOOLC__BLOCK; b++)
                            s[b] += k[t + r] * (double)p[b];
                    }
                }
                for (int32_t b = 0; b < FOOLC__BLOCK; b++)
                    if (xb + b < W) o[xb + b] = (float)s[b];
            }
        }
    }
    if (W > 1)
        for (int32_t y = 0; y < H; y++) {
            float *o = img + (size_t)y * W;
            if (c->fold) memcpy(c->ext, o, (size_t)W * sizeof(float));
            else
                for (int32_t i = 0; i < W + 2 * r; i++) c->ext[i] = o[c->cols[i + rm - r]];
            for (int32_t xb = 0; xb < Wp; xb += FOOLC__BLOCK) {
                double s[FOOLC__BLOCK] = {0};
                if (c->fold) {
                    for (int32_t j = 0; j < W; j++) {
                        const double *w = c->mc + (size_t)j * Wp + xb;
                        double v = (double)c->ext[j];
                        for (int32_t b = 0; b < FOOLC__BLOCK; b++) s[b] += w[b] * v;
                    }
                } else {
                    for (int32_t t = -r; t <= r; t++) {
                        const float *p = c->ext + t + r + xb;
                        for (int32_t b = 0; b < FOOLC__BLOCK; b++)
                            s[b] += k[t + r] * (double)p[b];
                    }
                }
                for (int32_t b = 0; b < FOOLC__BLOCK; b++)
                    if (xb + b < W) o[xb + b] = (float)s[b];
            }
        }
}

/* The folded kernel of one side n: m[o * ld + j] (m[j * ld + o] with trans) = the sum over
 * the taps t = -r..r, in that order, of k[t] where the mirror of o + t is j. */
static void blur_fold(const blur_ctx *c, double *m, int32_t n, int32_t ld, const int32_t *mirror,
                      int trans)
{
    memset(m, 0, (size_t)n * (size_t)ld * sizeof(double));
    for (int32_t o = 0; o < n; o++)
        for (int32_t t = -c->r; t <= c->r; t++) {
            int32_t j = mirror[o + t + c->rmax];
            m[trans ? (size_t)j * ld + o : (size_t)o * ld + j] += c->kern[t + c->r];
        }
}

static foolc_status blur_make(void *ctx, foolc__run *run, const int32_t *idx,
                              const double *eps, int32_t m, float *out, uint8_t *adv)
{
    (void)adv;
    blur_ctx *c = ctx;
    size_t d = run->d;
    int32_t C = run->shape.c, H = run->shape.h, W = run->shape.w;
    for (int32_t a = 0; a < m; a++) {
        float *o = out + (size_t)a * d;
        memcpy(o, run->x + (size_t)idx[a] * d, d * sizeof(float));
        double sg = eps[a];
        if (sg != c->sigma) {
            /* The scan offers every sample the same sigmas: the kernel of the last is kept. */
            int32_t r = (int32_t)ceil(4.0 * sg);
            r = r > c->rmax ? c->rmax : r;
            double sum = 0;
            for (int32_t t = -r; t <= r; t++)
                sum += c->kern[t + r] = exp(-0.5 * t * t / (sg * sg));
            for (int32_t t = -r; t <= r; t++) c->kern[t + r] /= sum;
            c->r = r;
            c->sigma = sg;
            c->fold = 2 * r + 1 > (H > W ? H : W);
            if (c->fold) {
                blur_fold(c, c->mr, H, H, c->rows, 0);
                blur_fold(c, c->mc, W, c->wp, c->cols, 1);
            }
        }
        for (int32_t ch = 0; ch < C; ch++)
            blur_plane(c, o + (size_t)ch * (size_t)H * (size_t)W, H, W);
        foolc__clip_box(o, d, run->lo, run->hi);
    }
    return FOOLC_OK;
}

static foolc_status blur_run(foolc__run *run, const void *config)
{
    const blur_config *c = config;
    int32_t side = run->shape.h > run->shape.w ? run->shape.h : run->shape.w;
    double smax = c->max_sigma > 0 ? c->max_sigma : side;
    int32_t H = run->shape.h, W = run->shape.w;
    blur_ctx bc = {.sigma = 0};
    /* Kernels reach at most four times the larger side: beyond that the mirrored image
     * repeats and the weights are negligible. */
    bc.rmax = (int32_t)fmin(ceil(4.0 * smax), 4.0 * side);
    bc.wp = (W + FOOLC__BLOCK - 1) / FOOLC__BLOCK * FOOLC__BLOCK;
    size_t nr = (size_t)H + 2 * (size_t)bc.rmax, nc = (size_t)W + 2 * (size_t)bc.rmax;
    size_t wp = (size_t)bc.wp, ne = wp + 2 * (size_t)bc.rmax;
    bc.kern = foolc__malloc((2 * (size_t)bc.rmax + 1) * sizeof(double));
    bc.plane = foolc__malloc(foolc__mul(foolc__mul((size_t)H, wp) + ne, sizeof(float)));
    bc.rows = foolc__malloc((nr + nc) * sizeof(int32_t));
    bc.mr = foolc__malloc(((size_t)H * H + (size_t)W * wp) * sizeof(double));
    if (!bc.kern || !bc.plane || !bc.rows || !bc.mr) {
        foolc__free(bc.kern);
        foolc__free(bc.plane);
        foolc__free(bc.rows);
        foolc__free(bc.mr);
        return foolc__nomem("blur kernel");
    }
    bc.ext = bc.plane + (size_t)H * wp;
    /* The pad lanes read zeros (their sums are dropped). */
    memset(bc.plane, 0, (foolc__mul((size_t)H, wp) + ne) * sizeof(float));
    bc.cols = bc.rows + nr;
    bc.mc = bc.mr + (size_t)H * H;
    for (size_t i = 0; i < nr; i++) bc.rows[i] = reflect((int64_t)i - bc.rmax, H);
    for (size_t i = 0; i < nc; i++) bc.cols[i] = reflect((int64_t)i - bc.rmax, W);
    foolc__scan_opts o = {.emax = smax, .steps = (int32_t)c->steps, .rtol = c->rtol,
                          .max_q = c->max_queries, .report = 1};
    foolc_status st = foolc__dec_scan(run, run->todo, run->n_todo, &o, blur_make, &bc, NULL,
                                      NULL);
    foolc__free(bc.kern);
    foolc__free(bc.plane);
    foolc__free(bc.rows);
    foolc__free(bc.mr);
    return st;
}

FOOLC__ATTACK(blur, "blur", FOOLC_L2, FOOLC_NEEDS_DECISION, blur_params, blur_config, blur_run,
              NULL, "Gaussian blur with the smallest adversarial standard deviation (L2)");
