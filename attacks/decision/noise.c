/* The noise attacks, made minimising: additive Gaussian or uniform noise in L2 and Linf
 * (Foolbox's repeated additive-noise attacks: per sample repeated directions, each scaled to
 * the smallest adversarial size), blended uniform noise (the default starting point of the
 * boundary walkers) and salt-and-pepper noise in L0; the registry entries follow each. */
#include "decision.h"
#include "numeric.h"
#include "rng.h"

#include <math.h>
#include <stddef.h>

/* (double)(z >> 11), exactly, from two int32 conversions (which vectorise in every ISA,
 * unlike 64-bit ones): 31 high bits times 2^22 plus 22 low bits. */
#define U53(z) ((double)(int32_t)((z) >> 33) * 0x1.0p22 + (double)(int32_t)(((z) >> 11) & 0x3FFFFFu))

/* Draws come in chunks of this many 64-bit values (foolc__rng_fill_u64: the values of one
 * draw at a time). */
#define DRAW_CHUNK 256

/* ---- additive noise ---- */

static const foolc__param noise_params[] = {
    FOOLC__PARAM(foolc__noise_config, repeats, 100, 1, 10000, 1,
                 "noise directions drawn per sample"),
    FOOLC__PARAM(foolc__noise_config, eps_init, 1e-2, 1e-9, 1e3, 0,
                 "first scale tried, relative to the width of the model's box"),
    FOOLC__PARAM(foolc__noise_config, growth, 2, 1.01, 100, 0,
                 "factor by which the scale grows until the first adversarial"),
    FOOLC__PARAM(foolc__noise_config, rtol, 1e-3, 1e-9, 0.5, 0,
                 "relative tolerance of the bisection of the scale"),
    FOOLC__PARAM(foolc__noise_config, max_queries, 0, 0, 1e12, 1,
                 "model images per sample at most; 0 means no limit"),
};

/* Which noise an entry draws (its variant). */
typedef enum noise_kind { NOISE_UNIFORM, NOISE_GAUSSIAN } noise_kind;
static const noise_kind k_uniform = NOISE_UNIFORM, k_gaussian = NOISE_GAUSSIAN;

typedef struct noise_ctx {
    int gaussian, linf;
} noise_ctx;

/* dir[j] = 2 u - 1 with u = foolc__rng_uniform's value of z[j]. */
FOOLC__VEC
static void uniform_from(const uint64_t *restrict z, float *restrict dir, size_t n)
{
#define UNIFORM_AT(j) dir[j] = (float)(2.0 * (U53(z[j]) * 0x1.0p-53) - 1.0)
    FOOLC__BLOCKED(n, UNIFORM_AT);
#undef UNIFORM_AT
}

/* max |v_j| (any order gives the same value). */
FOOLC__VEC
static double max_abs(const float *restrict v, size_t d)
{
    double m[FOOLC__BLOCK] = {0}, r = 0;
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t b = 0; b < FOOLC__BLOCK; b++) {
            double a = fabs((double)v[j + b]);
            m[b] = a > m[b] ? a : m[b];
        }
    for (; j < d; j++) {
        double a = fabs((double)v[j]);
        r = a > r ? a : r;
    }
    for (size_t b = 0; b < FOOLC__BLOCK; b++) r = m[b] > r ? m[b] : r;
    return r;
}

FOOLC__VEC
static void div_by(float *restrict v, size_t d, double nr)
{
    size_t j = 0;
    for (; j + FOOLC__BLOCK <= d; j += FOOLC__BLOCK)
        for (size_t b = 0; b < FOOLC__BLOCK; b++) v[j + b] = (float)(v[j + b] / nr);
    for (; j < d; j++) v[j] = (float)(v[j] / nr);
}

static void noise_draw(void *ctx, const foolc__run *run, foolc__rng *r, float *dir)
{
    const noise_ctx *c = ctx;
    size_t d = run->d;
    if (c->gaussian) foolc__dec_normal(r, dir, d);
    else
        for (size_t j0 = 0; j0 < d; j0 += DRAW_CHUNK) {
            uint64_t z[DRAW_CHUNK];
            size_t nb = d - j0 < DRAW_CHUNK ? d - j0 : DRAW_CHUNK;
            foolc__rng_fill_u64(r, z, nb);
            uniform_from(z, dir + j0, nb);
        }
    double nr = 0;
    if (c->linf) nr = max_abs(dir, d);
    else {
        /* One sum in coordinate order (the same bits as before). */
        for (size_t j = 0; j < d; j++) nr += (double)dir[j] * dir[j];
        nr = sqrt(nr);
    }
    if (nr > 0) div_by(dir, d, nr);
}

static void noise_apply(void *ctx, const foolc__run *run, int32_t sample, const float *dir,
                        double eps, float *out)
{
    (void)ctx;
    foolc__dec_add_clip(run->x + (size_t)sample * run->d, dir, eps, run->lo, run->hi, out,
                        run->d);
}

static foolc_status noise_run(foolc__run *run, const void *config)
{
    const foolc__noise_config *c = config;
    int linf = run->norm == FOOLC_LINF;
    noise_ctx nc = {*(const noise_kind *)run->vt->variant == NOISE_GAUSSIAN, linf};
    double w = (double)run->hi - run->lo;
    /* Past these scales every coordinate is clipped to a corner of the box. */
    double emax = linf ? w : w * sqrt((double)run->d);
    foolc__repeat_opts o = {.repeats = (int32_t)c->repeats, .eps_init = fmin(c->eps_init * w, emax),
                            .eps_max = emax, .growth = c->growth, .rtol = c->rtol,
                            .max_q = c->max_queries, .report = 1};
    return foolc__dec_repeat(run, run->todo, run->n_todo, &o, noise_draw, noise_apply, &nc);
}

FOOLC__ATTACK(gaussian_noise_l2, "gaussian-noise-l2", FOOLC_L2, FOOLC_NEEDS_DECISION, noise_params,
              foolc__noise_config, noise_run, &k_gaussian,
              "repeated additive Gaussian noise, smallest adversarial scale per draw (L2)");
FOOLC__ATTACK(gaussian_noise_linf, "gaussian-noise-linf", FOOLC_LINF, FOOLC_NEEDS_DECISION,
              noise_params, foolc__noise_config, noise_run, &k_gaussian,
              "repeated additive Gaussian noise, smallest adversarial scale per draw (Linf)");
FOOLC__ATTACK(uniform_noise_l2, "uniform-noise-l2", FOOLC_L2, FOOLC_NEEDS_DECISION, noise_params,
              foolc__noise_config, noise_run, &k_uniform,
              "repeated additive uniform noise, smallest adversarial scale per draw (L2)");
FOOLC__ATTACK(uniform_noise_linf, "uniform-noise-linf", FOOLC_LINF, FOOLC_NEEDS_DECISION,
              noise_params, foolc__noise_config, noise_run, &k_uniform,
              "repeated additive uniform noise, smallest adversarial scale per draw (Linf)");

/* ---- blended uniform noise (Foolbox's LinearSearchBlendedUniformNoise): per sample a
 * uniform-noise image in the box that is adversarial, then the smallest blend towards it
 * by a linear scan and a bisection in the bracket found (foolc__init_blended, the default
 * start of Boundary and HSJ) ---- */

typedef struct blended_config {
    double directions, steps, rtol, max_queries;
} blended_config;

static const foolc__param blended_params[] = {
    FOOLC__PARAM(blended_config, directions, 1000, 1, 100000, 1,
                 "uniform-noise images drawn per sample, at most, until one is adversarial"),
    FOOLC__PARAM(blended_config, steps, 100, 1, 10000, 1,
                 "blend factors of the linear scan from the clean input to the noise"),
    FOOLC__PARAM(blended_config, rtol, 1e-4, 1e-9, 0.5, 0,
                 "relative tolerance of the bisection in the bracket the scan found"),
    FOOLC__PARAM(blended_config, max_queries, 0, 0, 1e12, 1,
                 "model images per sample at most; 0 means no limit"),
};

static foolc_status blended_run(foolc__run *run, const void *config)
{
    const blended_config *c = config;
    int32_t m = run->n_todo;
    float *xa = foolc__malloc(foolc__mul(foolc__mul((size_t)m, run->d), sizeof(float)));
    uint8_t *ok = foolc__malloc((size_t)m);
    foolc_status st = xa && ok ? FOOLC_OK : foolc__nomem("blended noise");
    if (st >= 0)
        st = foolc__init_blended(run, run->todo, m, (int32_t)c->directions, (int32_t)c->steps,
                                 c->rtol, c->max_queries, xa, ok, FOOLC__STREAM_BLENDED);
    if (st >= 0) st = foolc__run_progress(run, 1, 1);
    foolc__free(xa);
    foolc__free(ok);
    return st;
}

FOOLC__ATTACK(blended_noise, "blended-noise", FOOLC_L2, FOOLC_NEEDS_DECISION, blended_params,
              blended_config, blended_run, NULL,
              "blended uniform noise: smallest adversarial blend towards uniform noise (L2)");

/* ---- salt-and-pepper noise (Foolbox's SaltAndPepperNoiseAttack), minimising in L0: per
 * sample repeated draws of a random order of the input's values and a salt/pepper choice for
 * each; for each draw the smallest fraction p of values set to the box's ends that is
 * adversarial (foolc__dec_repeat) ---- */

typedef struct sp_config {
    double repeats, rtol, max_queries;
} sp_config;

static const foolc__param sp_params[] = {
    FOOLC__PARAM(sp_config, repeats, 10, 1, 10000, 1, "noise patterns drawn per sample"),
    FOOLC__PARAM(sp_config, rtol, 1e-2, 1e-9, 0.5, 0,
                 "relative tolerance of the bisection of the noise probability"),
    FOOLC__PARAM(sp_config, max_queries, 0, 0, 1e12, 1,
                 "model images per sample at most; 0 means no limit"),
};

/* dir[j] = +(1 + u) for salt, -(1 + u) for pepper, u uniform in [0, 1): value j is set at
 * probability p when u < p. */
FOOLC__VEC
static void sp_from(const uint64_t *restrict z, float *restrict dir, size_t n)
{
#define SP_AT(j)                                                                               \
    do {                                                                                       \
        double u_ = U53(z[j]) * 0x1.0p-53;                                                     \
        dir[j] = (float)((z[j] & 1) ? 1.0 + u_ : -1.0 - u_);                                   \
    } while (0)
    FOOLC__BLOCKED(n, SP_AT);
#undef SP_AT
}

static void sp_draw(void *ctx, const foolc__run *run, foolc__rng *r, float *dir)
{
    (void)ctx;
    for (size_t j0 = 0; j0 < run->d; j0 += DRAW_CHUNK) {
        uint64_t z[DRAW_CHUNK];
        size_t nb = run->d - j0 < DRAW_CHUNK ? run->d - j0 : DRAW_CHUNK;
        foolc__rng_fill_u64(r, z, nb);
        sp_from(z, dir + j0, nb);
    }
}

/* out[j] = the box's end of dir[j]'s sign where |dir[j]| - 1 < p, else x0[j]. */
FOOLC__VEC
static void sp_set(const float *restrict x0, const float *restrict dr, double p, float lo,
                   float hi, float *restrict o, size_t d)
{
#define SPA_AT(j)                                                                              \
    do {                                                                                       \
        float e_ = dr[j] > 0 ? hi : lo;                                                        \
        o[j] = fabs((double)dr[j]) - 1.0 < p ? e_ : x0[j];                                     \
    } while (0)
    FOOLC__BLOCKED(d, SPA_AT);
#undef SPA_AT
}

static void sp_apply(void *ctx, const foolc__run *run, int32_t sample, const float *dir,
                     double p, float *out)
{
    (void)ctx;
    sp_set(run->x + (size_t)sample * run->d, dir, p, run->lo, run->hi, out, run->d);
}

static foolc_status sp_run(foolc__run *run, const void *config)
{
    const sp_config *c = config;
    foolc__repeat_opts o = {.repeats = (int32_t)c->repeats, .eps_init = 1.0 / (double)run->d,
                            .eps_max = 1.0, .growth = 2.0, .rtol = c->rtol,
                            .max_q = c->max_queries, .report = 1};
    return foolc__dec_repeat(run, run->todo, run->n_todo, &o, sp_draw, sp_apply, NULL);
}

FOOLC__ATTACK(salt_and_pepper, "salt-and-pepper", FOOLC_L0, FOOLC_NEEDS_DECISION, sp_params,
              sp_config, sp_run, NULL,
              "salt-and-pepper noise with the smallest adversarial probability (L0)");
