/* Machinery shared by the decision-based attacks (attacks that see only "adversarial or
 * not"): per-sample query accounting, fast seeded Gaussian draws, a linear-then-bisection
 * scan along a one-parameter family, repeated random directions with the smallest
 * adversarial scale per direction, and the blended-uniform-noise starting point. */
#ifndef FOOLC_DECISION_H
#define FOOLC_DECISION_H

#include "attack_impl.h"

/* Starting points of the attacks that walk along the boundary: the values of their `init`
 * parameter ([noise|pool|attack|best]). */
typedef enum foolc__start {
    FOOLC__START_NOISE = 0,   /* blended uniform noise (pool images where none is adversarial) */
    FOOLC__START_POOL = 1,    /* the closest adversarial pool image */
    FOOLC__START_ATTACK = 2,  /* the attack named by foolc_attack_set_init */
    FOOLC__START_BEST = 3     /* Brendel-Bethge only: walks from ATTACK and from NOISE */
} foolc__start;

/* The relative tolerance of the blended-noise starting points' bisection. */
#define FOOLC__BLEND_RTOL 1e-3

/* Keeps, in order, the entries a of act[0..na) whose sample idx[a] may spend one more image
 * under max_q; returns how many. */
int32_t foolc__dec_affordable(const foolc__run *run, const int32_t *idx, int32_t *act,
                              int32_t na, double max_q);

/* out = clip(x0 + t v, lo, hi) per coordinate, in double (d floats each; element-wise, the
 * same bits in every ISA clone): noise's step and HopSkipJump's refinement points. */
void foolc__dec_add_clip(const float *restrict x0, const float *restrict v, double t, double lo,
                         double hi, float *restrict out, size_t d);

/* n standard normal draws (Marsaglia's polar method, both values of each pair used). */
void foolc__dec_normal(foolc__rng *r, float *out, size_t n);

/* Linear scan then bisection over a scalar eps in (0, emax]: make(eps) gives a candidate
 * per sample (eps = emax * k / steps for k = 1, 2, ...). The first adversarial candidate
 * brackets the smallest eps, bisected to relative tolerance rtol; every adversarial
 * candidate is offered. best (m*d, may be NULL) receives each sample's adversarial
 * candidate at its smallest eps, ok[a] (may be NULL) whether it found one. max_q is a
 * per-sample query budget (0: none). make's adv flags are ignored. */
typedef struct foolc__scan_opts {
    double emax;
    int32_t steps;
    double rtol;
    double max_q;
    int report;          /* report progress (samples finished of m): the attack's own loop */
} foolc__scan_opts;
foolc_status foolc__dec_scan(foolc__run *run, const int32_t *idx, int32_t m,
                             const foolc__scan_opts *o, foolc__make_fn make, void *ctx,
                             float *best, uint8_t *ok);

/* Repeated random directions: per sample, `repeats` directions drawn by draw() from the
 * sample's own stream; for each, the smallest scale eps at which apply(dir, eps) is
 * adversarial is searched (grow from eps_init by growth up to eps_max, then bisect to rtol)
 * while no adversarial is known, and afterwards a new direction is tested at the best scale
 * so far and bisected only when it beats it. Every adversarial candidate is offered. */
typedef void (*foolc__draw_fn)(void *ctx, const foolc__run *run, foolc__rng *r, float *dir);
typedef void (*foolc__apply_fn)(void *ctx, const foolc__run *run, int32_t sample,
                                const float *dir, double eps, float *out);
typedef struct foolc__repeat_opts {
    int32_t repeats;
    double eps_init, eps_max, growth, rtol, max_q;
    int report;          /* report progress (samples finished of m): the attack's own loop */
} foolc__repeat_opts;
foolc_status foolc__dec_repeat(foolc__run *run, const int32_t *idx, int32_t m,
                               const foolc__repeat_opts *o, foolc__draw_fn draw,
                               foolc__apply_fn apply, void *ctx);

/* Blended uniform noise (the default starting point of Boundary, HopSkipJump and
 * Brendel-Bethge): per sample, up to `directions` uniform-noise images in the box until one
 * is adversarial, then the smallest blend (1 - t) x + t noise that is adversarial, by a
 * linear scan of `steps` values of t and bisection to rtol, the noise drawn from the given
 * stream (FOOLC__STREAM_BLENDED for the attacks' starts). xadv (m*d) receives each sample's
 * point (the clean input where none was found), ok[a] whether one was found; found points
 * are offered. */
foolc_status foolc__init_blended(foolc__run *run, const int32_t *idx, int32_t m,
                                 int32_t directions, int32_t steps, double rtol, double max_q,
                                 float *xadv, uint8_t *ok, uint64_t stream);

/* Starting points for attacks that walk along the boundary, by mode: NOISE blended uniform
 * noise (foolc__init_blended with the given settings, repeated for `draws` noise images,
 * the closest start kept), and for samples where no noise image
 * is adversarial the closest adversarial one of the 100 closest pool (or batch) images of
 * another class; POOL the closest adversarial pool image
 * (foolc__dec_pool over `directions` candidates); ATTACK the attack named by
 * foolc_attack_set_init (default blended-noise). Samples without one are listed in the
 * run's message (status FOOLC_NOT_FOUND recorded, not an error); the caller goes on with
 * the others. */
foolc_status foolc__dec_start(foolc__run *run, const int32_t *idx, int32_t m, foolc__start mode,
                              int32_t directions, int32_t steps, int32_t draws, double max_q,
                              float *xadv, uint8_t *ok);



/* The caller's per-sample starts (foolc_attack_set_sample_starts, run->sample_x): for the
 * samples idx[a] with ok[a] == 0 whose row is finite, inside the box, not the clean input
 * and may spend one more image under max_q (0: no limit), one batched query; the
 * adversarial rows are copied to xadv row a, flagged in ok and offered. Nothing without
 * per-sample starts. */
foolc_status foolc__dec_sample_starts(foolc__run *run, const int32_t *idx, int32_t m,
                                      double max_q, float *xadv, uint8_t *ok);
/* The same with each sample's start j (0 .. run->sample_k - 1; nothing for another j). */
foolc_status foolc__dec_sample_starts_at(foolc__run *run, const int32_t *idx, int32_t m,
                                         double max_q, int32_t j, float *xadv, uint8_t *ok);
/* An attack's own start for samples idx (m): fills xadv rows and ok flags (the clean input
 * and 0 where it found none). */
typedef foolc_status (*foolc__own_start_fn)(void *ctx, foolc__run *run, const int32_t *idx,
                                            int32_t m, float *xadv, uint8_t *ok);
/* The init attack's points (foolc_attack_set_init; `fallback` without one) for samples idx
 * (m), each adversarial one offered: an own() start. */
foolc_status foolc__dec_init_attack(foolc__run *run, const int32_t *idx, int32_t m,
                                    const char *fallback, float *xadv, uint8_t *ok);
/* Starts with the per-sample starts first: the samples whose row is usable
 * (foolc__dec_sample_starts) start there, own() runs on the others only (all of them
 * without per-sample starts); xadv and ok as own() fills them. */
foolc_status foolc__dec_with_sample_starts(foolc__run *run, const int32_t *idx, int32_t m,
                                           double max_q, float *xadv, uint8_t *ok,
                                           foolc__own_start_fn own, void *ctx);

/* HopSkipJump's (hsj.c) and the additive noise attacks' (noise.c) configs. */
typedef struct foolc__hsj_config {
    double steps, init_evals, max_evals, gamma, max_queries, init, init_directions, init_steps,
        init_draws, max_halvings;
} foolc__hsj_config;
typedef struct foolc__noise_config {
    double repeats, eps_init, growth, rtol, max_queries;
} foolc__noise_config;

/* Pool images as starting points: the caller's pool (foolc_attack_set_starts) or, without
 * one, the run's own inputs. Per sample idx[a], the k pool images closest to it in L2 whose
 * label differs from its own (equals its target when targeted; every image when the pool
 * has no labels) are queried in order of distance, one batched query per rank; with
 * first_only a sample stops at its first adversarial one; max_q is a per-sample budget.
 * The adversarial images go to xs (room for m*k rows, or 2*m with first_only) with their
 * samples' positions a in pos (room for m*k, or m); *nf receives their count, *own whether
 * the run's inputs served as the pool. */
foolc_status foolc__dec_pool(foolc__run *run, const int32_t *idx, int32_t m, int32_t k,
                             int first_only, double max_q, float *xs, int32_t *pos,
                             int32_t *nf, int *own);
/* A pool image ranked for a sample: its row and squared L2 distance (in double). */
typedef struct foolc__pool_cand {
    double dist;
    int32_t row;
} foolc__pool_cand;
/* nearest.c: per sample idx[a], the k rows of the pool px (np rows; labels py or NULL) closest
 * to it in L2 whose label differs from its own (equals its target when targeted; with self
 * the pool is the run's inputs and row idx[a] is skipped), by increasing squared distance
 * summed in double over the coordinates in order (ties: the lower row first), into
 * cs[a * k ...] with their count in cnt[a]. Float dot products with an error bound prune
 * the rows; the exact sums of the rest give the list a scan of every row gives. When px is
 * the caller's pool (run->starts_x, not self), its rows' statistics come from the attack's
 * summary run->starts_sum, computed at the first run that needs it. */
foolc_status foolc__dec_nearest(const foolc__run *run, const int32_t *idx, int32_t m, int32_t k,
                                const float *px, const int32_t *py, int32_t np, int self,
                                foolc__pool_cand *cs, int32_t *cnt);
/* Records FOOLC_NOT_FOUND with the samples idx[a] whose ok[a] is 0 (the first 16) and why,
 * when there are any; the status stays the caller's to return. */
void foolc__dec_missing(const foolc__run *run, const int32_t *idx, int32_t m,
                        const uint8_t *ok, const char *why);
/* The closest adversarial pool image (foolc__dec_pool, first_only) for the samples idx[a]
 * with ok[a] == 0, among their k closest: found ones are written to xadv (m rows), flagged
 * and offered; *own as there. */
foolc_status foolc__dec_start_pool(foolc__run *run, const int32_t *idx, int32_t m, int32_t k,
                                   double max_q, float *xadv, uint8_t *ok, int *own);

#endif
