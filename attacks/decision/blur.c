/* Gaussian blur (Foolbox's GaussianBlurAttack), minimising in L2: per sample the smallest
 * standard deviation (in pixels) at which the blurred input is adversarial, by a linear scan
 * over sigma and a bisection in the bracket found. The blur is separable, per channel, with
 * mirrored borders. */
#include "decision.h"

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
    double *kern;     /* 2 * radius_max + 1 weights */
    double *line;     /* one row or column */
    int32_t rmax;
} blur_ctx;

/* Blurs n values spaced `stride` apart in place along one axis. */
static void blur_line(float *v, int32_t n, size_t stride, const double *k, int32_t r,
                      double *tmp)
{
    for (int32_t i = 0; i < n; i++) tmp[i] = v[(size_t)i * stride];
    for (int32_t i = 0; i < n; i++) {
        double s = 0;
        for (int32_t t = -r; t <= r; t++) s += k[t + r] * tmp[reflect((int64_t)i + t, n)];
        v[(size_t)i * stride] = (float)s;
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
        int32_t r = (int32_t)ceil(4.0 * sg);
        r = r > c->rmax ? c->rmax : r;
        double sum = 0;
        for (int32_t t = -r; t <= r; t++) sum += c->kern[t + r] = exp(-0.5 * t * t / (sg * sg));
        for (int32_t t = -r; t <= r; t++) c->kern[t + r] /= sum;
        for (int32_t ch = 0; ch < C; ch++) {
            float *img = o + (size_t)ch * (size_t)H * (size_t)W;
            if (H > 1)
                for (int32_t x = 0; x < W; x++)
                    blur_line(img + x, H, (size_t)W, c->kern, r, c->line);
            if (W > 1)
                for (int32_t y = 0; y < H; y++)
                    blur_line(img + (size_t)y * W, W, 1, c->kern, r, c->line);
        }
        for (size_t j = 0; j < d; j++)
            o[j] = o[j] < run->lo ? run->lo : o[j] > run->hi ? run->hi : o[j];
    }
    return FOOLC_OK;
}

static foolc_status blur_run(foolc__run *run, const void *config)
{
    const blur_config *c = config;
    int32_t side = run->shape.h > run->shape.w ? run->shape.h : run->shape.w;
    double smax = c->max_sigma > 0 ? c->max_sigma : side;
    blur_ctx bc;
    /* Kernels reach at most four times the larger side: beyond that the mirrored image
     * repeats and the weights are negligible. */
    bc.rmax = (int32_t)fmin(ceil(4.0 * smax), 4.0 * side);
    bc.kern = foolc__malloc((2 * (size_t)bc.rmax + 1 + (size_t)side) * sizeof(double));
    if (!bc.kern) return foolc__nomem("blur kernel");
    bc.line = bc.kern + 2 * (size_t)bc.rmax + 1;
    foolc__scan_opts o = {.emax = smax, .steps = (int32_t)c->steps, .rtol = c->rtol,
                          .max_q = c->max_queries, .report = 1};
    foolc_status st = foolc__dec_scan(run, run->todo, run->n_todo, &o, blur_make, &bc, NULL,
                                      NULL);
    foolc__free(bc.kern);
    return st;
}

FOOLC__ATTACK(blur, "blur", FOOLC_L2, FOOLC_NEEDS_DECISION, blur_params, blur_config, blur_run,
              NULL, "Gaussian blur with the smallest adversarial standard deviation (L2)");
