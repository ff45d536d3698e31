/* FMN, fast minimum-norm attacks (Pintor et al., arXiv:2102.12827) in L0, L1, L2 and Linf:
 * normalised gradient steps on the logit margin with cosine-annealed size, projected onto
 * an Lp ball whose radius epsilon shrinks by (1 - gamma) while adversarial, grows by
 * (1 + gamma) after a first success and, before one, jumps (1 + gamma) times the distance
 * to the linearised boundary (the paper jumps exactly onto it, where a model linear near
 * the input stays undecided). */
#include "minnorm.h"
#include "numeric.h"
#include "decision/decision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* Room of coordinate j in the direction that lowers the margin (gradient g). */
static double room(const foolc__run *run, float x0, float g)
{
    return g < 0 ? (double)run->hi - x0 : g > 0 ? (double)x0 - run->lo : 0;
}

/* L0 polish, two passes of a per-sample bisection over how many top-ranked coordinates
 * are changed. Pass 0 ranks every coordinate by the margin change it can make within its
 * box room, |g_j| * room_j (g: the gradient at x0), and pushes the top ones to the box:
 * exact for models linear in the input. Pass 1 prunes the best adversarial found, ranking
 * its changed coordinates by |g_j * delta_j| and keeping the top ones' values. */
static foolc_status l0_polish(foolc__run *run, const int32_t *sid, int32_t m, const float *g0,
                              float *xs, int pass)
{
    size_t d = run->d;
    foolc__mn_rank *tmp = foolc__malloc(foolc__mul(d, sizeof(foolc__mn_rank)) +
                                   foolc__mul((size_t)m, 3 * sizeof(int32_t) + 1) +
                                   foolc__mul(foolc__mul((size_t)m, d), sizeof(int32_t)));
    if (!tmp) return foolc__nomem("fmn-l0 polish");
    int32_t *lo = (int32_t *)(tmp + d), *hi = lo + m, *act = hi + m, *order = act + m;
    uint8_t *adv = (uint8_t *)(order + (size_t)m * d);
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)sid[a] * d, *g = g0 + (size_t)a * d;
        const float *xb = run->res->x_adv + (size_t)sid[a] * d;
        for (size_t j = 0; j < d; j++) {
            double dj = (double)xb[j] - x0[j];
            tmp[j].key = pass == 0 ? fabs((double)g[j]) * room(run, x0[j], g[j])
                         : dj != 0 ? fabs((double)g[j] * dj) + 1e-30 : 0;
            tmp[j].j = (int32_t)j;
        }
        qsort(tmp, d, sizeof *tmp, foolc__mn_cmp_rank);
        for (size_t j = 0; j < d; j++) order[(size_t)a * d + j] = tmp[j].j;
        lo[a] = 0;
        double best = run->res->distance[sid[a]];
        hi[a] = isfinite(best) && best < (double)d ? (int32_t)best : (int32_t)d;
        if (pass == 1 && !run->res->success[sid[a]]) hi[a] = 0;   /* nothing to prune */
    }
    int32_t *s2 = foolc__malloc(foolc__mul((size_t)m, sizeof(int32_t)));
    if (!s2) {
        foolc__free(tmp);
        return foolc__nomem("fmn-l0 polish");
    }
    foolc_status st = FOOLC_OK;
    for (;;) {
        int32_t na = 0;
        for (int32_t a = 0; a < m; a++) {
            if (hi[a] - lo[a] <= 1) continue;
            int32_t mid = lo[a] + (hi[a] - lo[a]) / 2;
            const float *x0 = run->x + (size_t)sid[a] * d, *g = g0 + (size_t)a * d;
            const float *xb = run->res->x_adv + (size_t)sid[a] * d;
            float *o = xs + (size_t)na * d;
            memcpy(o, x0, d * sizeof(float));
            for (int32_t r = 0; r < mid; r++) {
                int32_t j = order[(size_t)a * d + (size_t)r];
                if (pass == 1) o[j] = xb[j];
                else if (g[j] < 0) o[j] = run->hi;
                else if (g[j] > 0) o[j] = run->lo;
            }
            act[na] = a;
            s2[na++] = sid[a];
        }
        if (na == 0) break;
        if ((st = foolc__run_is_adv(run, xs, s2, na, adv, NULL)) < 0) break;
        for (int32_t q = 0; q < na; q++) {
            int32_t a = act[q], mid = lo[a] + (hi[a] - lo[a]) / 2;
            if (adv[q]) {
                foolc__run_offer(run, s2[q], xs + (size_t)q * d);
                hi[a] = mid;
            } else {
                lo[a] = mid;
            }
        }
    }
    foolc__free(s2);
    foolc__free(tmp);
    return st;
}

/* One FMN descent over the samples sid (m; a sample may appear more than once), each from
 * start row a (the clean input where start is NULL); g0 (may be NULL) receives the gradients
 * at the first iterates. With chain_d (m), start row a is replaced by every adversarial
 * iterate closer than chain_d[a], which follows. */
static foolc_status fmn_pass(foolc__run *run, const foolc__fmn_config *cfg, const int32_t *sid,
                             int32_t m, float *start, double *chain_d, float *g0)
{
    foolc_norm p = run->norm;
    size_t d = run->d;
    int32_t steps = (int32_t)cfg->steps;
    size_t md = foolc__mul((size_t)m, d);
    float *delta = foolc__malloc(foolc__mul(md, 3 * sizeof(float)));
    double *eps = foolc__malloc(foolc__mul((size_t)m, 4 * sizeof(double)) +
                                foolc__mul(d, sizeof(double)));
    uint8_t *adv = foolc__malloc(foolc__mul((size_t)m, 2));
    foolc_status st = FOOLC_OK;
    if (!delta || !eps || !adv) {
        st = foolc__nomem("fmn buffers");
        goto out;
    }
    float *xs = delta + md, *grad = xs + md;
    double *best = eps + m, *worst = best + m, *margin = worst + m, *work = margin + m;
    uint8_t *found = adv + m;
    for (int32_t a = 0; a < m; a++) {
        const float *x0 = run->x + (size_t)sid[a] * d;
        float *da = delta + (size_t)a * d;
        double w = 0;
        for (size_t j = 0; j < d; j++) {
            double r = fmax((double)x0[j] - run->lo, (double)run->hi - x0[j]);
            w = p == FOOLC_L1   ? w + r
                : p == FOOLC_L2 ? w + r * r
                : p == FOOLC_L0 ? w + 1
                                : fmax(w, r);
            da[j] = start ? start[(size_t)a * d + j] - x0[j] : 0;
        }
        worst[a] = p == FOOLC_L2 ? sqrt(w) : w;
        /* From a start, L0's radius is the start's count (the others' shrinks to the start's
         * norm at the first, adversarial, iterate). */
        eps[a] = p != FOOLC_L0 ? INFINITY : start ? fmax(foolc__norm(p, da, d), 1) : 1;
        best[a] = INFINITY;
        found[a] = 0;
    }
    double min_step = cfg->min_stepsize > 0 ? cfg->min_stepsize : cfg->max_stepsize / 100;
    for (int32_t it = 0; it < steps; it++) {
        double cosf = (1 + cos(FOOLC__PI * it / steps)) / 2;
        double step = min_step + (cfg->max_stepsize - min_step) * cosf;
        double gamma = 0.001 + (cfg->gamma - 0.001) * cosf;
        for (int32_t a = 0; a < m; a++)
            foolc__mn_clip_step(run->x + (size_t)sid[a] * d, delta + (size_t)a * d, d,
                                run->lo, run->hi, xs + (size_t)a * d);
        if ((st = foolc__mn_margin_grad(run, xs, sid, m, NULL, INFINITY, grad, margin, adv,
                                        NULL)) < 0)
            goto out;
        if (it == 0 && g0) memcpy(g0, grad, md * sizeof(float));
        for (int32_t a = 0; a < m; a++) {
            float *da = delta + (size_t)a * d, *g = grad + (size_t)a * d;
            const float *xa = xs + (size_t)a * d;
            /* Directions the box blocks (descent would leave it) do not count: they
             * would only make the step and the boundary estimate too optimistic (L0, L1,
             * L2; Linf measured better without it). */
            if (p != FOOLC_LINF) foolc__mn_box_grad(xa, g, d, run->lo, run->hi);
            double nd = foolc__norm(p, da, d);
            if (adv[a]) {
                found[a] = 1;
                foolc__run_offer(run, sid[a], xs + (size_t)a * d);
                if (nd < best[a]) best[a] = nd;
                if (chain_d && nd < chain_d[a]) {
                    chain_d[a] = nd;
                    memcpy(start + (size_t)a * d, xa, d * sizeof(float));
                }
            }
            if (p != FOOLC_L0) {
                double gd = foolc__dual_norm(p, g, d);
                double to_boundary = gd > 0 ? fabs(margin[a]) / gd : 0;
                eps[a] = adv[a] ? fmin(eps[a] * (1 - gamma), best[a])
                         : found[a] ? eps[a] * (1 + gamma) : nd + (1 + gamma) * to_boundary;
            } else if (adv[a]) {
                eps[a] = fmin(fmin(eps[a] - 1, floor(eps[a] * (1 - gamma))), best[a]);
                eps[a] = fmax(eps[a], 1);
            } else {
                eps[a] = fmax(fmax(eps[a] + 1, floor(eps[a] * (1 + gamma))), 1);
            }
            eps[a] = fmin(eps[a], worst[a]);
            /* Descend the margin along the L2-normalised gradient, then project. */
            double gn = foolc__norm(FOOLC_L2, g, d);
            if (gn > 0) foolc__mn_axpy(da, g, -step / gn, d);
            foolc__project_ball(p, da, d, eps[a], work);
            foolc__mn_box(run->x + (size_t)sid[a] * d, da, d, run->lo, run->hi);
        }
        if ((st = start ? foolc__run_heartbeat(run) : foolc__run_progress(run, it, steps)) < 0)
            goto out;
    }
out:
    foolc__free(delta);
    foolc__free(eps);
    foolc__free(adv);
    return st;
}

/* The polish attacks' rounds (polish-l1, polish-l2, polish-linf): round r descends from
 * each sample's best point so far with gamma and max_stepsize from row r % 4. Descents from
 * a point near a local minimum end in another one when their radius schedule differs: on
 * the reference CNN (50 images, from the best of five attacks, 100 steps a round) the first
 * round reaches the best known Linf point on 82 % of them, four rounds 96 % (L1 84 -> 96 %,
 * L2 96 -> 94-96 %); the same settings twice gain nothing (docs/attacks.md, "Polish"). */
static const double k_rounds[4][2] = {{0.05, 1}, {0.2, 1}, {0.05, 3}, {0.01, 1}};

/* The polish's noise starts (parameter noise): up to this many uniform-noise images per
 * sample until one is adversarial, then this many steps of the blend's linear scan (bb-*'s
 * init_steps default). */
#define NOISE_DIRECTIONS 100
#define NOISE_STEPS 10

/* The first start row whose chains race (the side starts; the noise chains after them). */
#define SIDE_ROW 2

/* Chains from the m rows just written at cx + nc d (one per sample, row a sample a's), for
 * the samples with ok[a] (any[a] set where any): compacted, each with its sample, start row
 * j and distance. Returns the new chain count. */
static int32_t take_rows(const foolc__run *run, float *cx, int32_t *cid, int32_t *cj, double *cd,
                         int32_t nc, const uint8_t *ok, uint8_t *any, int32_t j)
{
    size_t d = run->d;
    const float *xs = cx + (size_t)nc * d;
    for (int32_t a = 0, n0 = nc; a < run->n_todo; a++) {
        if (!ok[a]) continue;
        if (any) any[a] = 1;
        float *row = cx + (size_t)nc * d;
        if (nc - n0 != a) memcpy(row, xs + (size_t)a * d, d * sizeof(float));
        cid[nc] = run->todo[a];
        cj[nc] = j;
        cd[nc++] = foolc_distance(run->norm, run->x + (size_t)run->todo[a] * d, row, d);
    }
    return nc;
}

/* Descents from the per-sample starts (foolc_attack_set_sample_starts), one chain from each
 * usable start (fmn-*: one descent, after theirs from the clean input, so a start only
 * adds). polish-* run `rounds` descents per chain, round r with the settings of row r % 4
 * of k_rounds, each from the chain's closest point so far: a start in another region (a
 * decision-based attack's, from the evaluation) is refined there, not abandoned for the
 * sample's best. A sample without a usable start (or a run without starts) gets one chain
 * from the clean input. The chains from the third start on (the side starts of polish-l1 and
 * polish-linf, from the evaluation) and the noise chains (parameter noise: each from a
 * blended-noise point of its own, far from the input) race: after each round one continues
 * only while its closest point is the sample's best (ties too); with race_decision the
 * second start's (the decision-based attacks' point) too. The winners lead after the
 * first round: on the reference CNN (50 images), one round of 100 steps gains 7-15 % on the
 * three images where four rounds of 300 gain most; letting those within 1 % go on cost
 * polish-l1 19 % more time for 0.1 %. */
static foolc_status warm_descents(foolc__run *run, const foolc__fmn_config *cfg, int32_t rounds)
{
    if (!run->sample_x && !rounds) return FOOLC_OK;
    size_t d = run->d;
    int32_t m = run->n_todo, k = run->sample_x ? run->sample_k : 0, nc = 0;
    int32_t noise = rounds ? (int32_t)cfg->noise : 0;
    size_t cap = foolc__mul((size_t)m, (size_t)(k > 1 ? k : 1) + (size_t)noise);
    float *cx = foolc__malloc(foolc__mul(foolc__mul(cap, d), sizeof(float)));
    double *cd = foolc__malloc(foolc__mul(cap, sizeof(double)));
    int32_t *cid = foolc__malloc(foolc__mul(cap, 2 * sizeof(int32_t)));
    int32_t *cj = cid ? cid + cap : NULL;   /* each chain's start row */
    uint8_t *ok = foolc__calloc((size_t)m, 2), *any = ok ? ok + m : NULL;
    foolc_status st = cx && cd && cid && ok ? FOOLC_OK : foolc__nomem("fmn warm starts");
    for (int32_t j = 0; st >= 0 && j < k; j++) {
        memset(ok, 0, (size_t)m);
        float *xs = cx + (size_t)nc * d;   /* room for m rows from here */
        st = foolc__dec_sample_starts_at(run, run->todo, m, 0, j, xs, ok);
        if (st >= 0) nc = take_rows(run, cx, cid, cj, cd, nc, ok, any, j);
    }
    for (int32_t a = 0; st >= 0 && rounds && a < m; a++) {
        if (any[a]) continue;
        memcpy(cx + (size_t)nc * d, run->x + (size_t)run->todo[a] * d, d * sizeof(float));
        cid[nc] = run->todo[a];
        cj[nc] = 0;
        cd[nc++] = INFINITY;
    }
    /* The noise starts: blended uniform noise, a new draw each, side chains that race. */
    for (int32_t r = 0; st >= 0 && r < noise; r++) {
        st = foolc__init_blended(run, run->todo, m, NOISE_DIRECTIONS, NOISE_STEPS,
                                 FOOLC__BLEND_RTOL, 0, cx + (size_t)nc * d, ok,
                                 FOOLC__STREAM_POLISH + 0x1000u * (uint64_t)r);
        if (st >= 0) nc = take_rows(run, cx, cid, cj, cd, nc, ok, NULL,
                                    (k > SIDE_ROW ? k : SIDE_ROW) + r);
    }
    int32_t race = cfg->race_decision > 0 ? 1 : SIDE_ROW;   /* the first start row that races */
    for (int32_t r = 0; st >= 0 && nc > 0 && r < (rounds > 0 ? rounds : 1); r++) {
        foolc__fmn_config c = *cfg;
        if (rounds > 0) {   /* a polish: its last steps 10 times finer than FMN's */
            c.gamma = k_rounds[r % 4][0];
            c.max_stepsize = k_rounds[r % 4][1];
            if (!(cfg->min_stepsize > 0)) c.min_stepsize = c.max_stepsize / 1000;
        }
        st = fmn_pass(run, &c, cid, nc, cx, cd, NULL);
        if (st >= 0 && rounds > 0) st = foolc__run_progress(run, r + 1, rounds);
        if (st < 0 || r + 1 >= rounds) continue;
        int32_t kept = 0;   /* the race before the next round */
        for (int32_t q = 0; q < nc; q++) {
            if (cj[q] >= race && !(cd[q] <= run->res->distance[cid[q]]))
                continue;   /* a racing chain behind */
            if (kept != q) memcpy(cx + (size_t)kept * d, cx + (size_t)q * d, d * sizeof(float));
            cid[kept] = cid[q];
            cj[kept] = cj[q];
            cd[kept++] = cd[q];
        }
        nc = kept;
    }
    foolc__free(cx);
    foolc__free(cd);
    foolc__free(cid);
    foolc__free(ok);
    return st;
}

static foolc_status fmn_run(foolc__run *run, const void *config)
{
    const foolc__fmn_config *cfg = config;
    foolc_norm p = run->norm;
    size_t d = run->d;
    int32_t m = run->n_todo;
    size_t md = foolc__mul((size_t)m, d);
    /* polish-* (variant: their rounds) start from the per-sample starts; the first
     * iterates' gradients (g0) and the L0 polish's rows (xs) are fmn-*'s only. */
    int32_t rounds = run->vt->variant ? (int32_t)cfg->rounds : 0;
    float *g0 = rounds ? NULL : foolc__malloc(foolc__mul(md, 2 * sizeof(float)));
    int32_t *sid = foolc__malloc(foolc__mul((size_t)m, sizeof(int32_t)));
    double *margin = foolc__malloc(foolc__mul((size_t)m, sizeof(double)));
    uint8_t *adv = foolc__malloc((size_t)m);
    foolc_status st = FOOLC_OK;
    if ((!rounds && !g0) || !sid || !margin || !adv) {
        st = foolc__nomem("fmn buffers");
        goto out;
    }
    float *xs = g0 ? g0 + md : NULL;
    memcpy(sid, run->todo, (size_t)m * sizeof *sid);
    if (!rounds && (st = fmn_pass(run, cfg, sid, m, NULL, NULL, g0)) < 0) goto out;
    if ((st = warm_descents(run, cfg, rounds)) < 0) goto out;
    if (p == FOOLC_L0 && !rounds && cfg->polish > 0) {
        if ((st = l0_polish(run, sid, m, g0, xs, 0)) < 0) goto out;
        /* Prune with the gradient at each sample's best adversarial (rows of g0). */
        int32_t nb = foolc__mn_successes(run, xs, sid);
        if ((st = foolc__mn_margin_grad(run, xs, sid, nb, NULL, INFINITY, g0, margin, adv,
                                        NULL)) < 0)
            goto out;
        if ((st = l0_polish(run, sid, nb, g0, xs, 1)) < 0) goto out;
    }
    if (p != FOOLC_L0 && (st = foolc__mn_polish(run, p, (int32_t)cfg->polish)) < 0) goto out;
    if (p != FOOLC_L0) st = foolc__mn_finish(run, (int32_t)cfg->bisect);
out:
    foolc__free(g0);
    foolc__free(sid);
    foolc__free(margin);
    foolc__free(adv);
    return st;
}

/* ---- registry entries ---- */

/* The parameters every norm shares. */
#define FMN_PARAMS                                                                           \
    FOOLC__PARAM(foolc__fmn_config, steps, 100, 1, 10000, 1, "iterations"),                  \
    FOOLC__PARAM(foolc__fmn_config, max_stepsize, 1, 1e-6, 1e3, 0,                          \
                 "first step size (L2-normalised gradient); cosine-annealed"),               \
    FOOLC__PARAM(foolc__fmn_config, min_stepsize, 0, 0, 1e3, 0,                             \
                 "last step size; 0 means max_stepsize / 100"),                              \
    FOOLC__PARAM(foolc__fmn_config, gamma, 0.05, 1e-4, 0.9, 0,                              \
                 "first relative change of epsilon per step; cosine-annealed to 0.001"),     \
    FOOLC__PARAM(foolc__fmn_config, bisect, 20, 0, 50, 1,                                   \
                 "final search towards the clean input, to a bracket 2^-bisect wide (not "   \
                 "used by L0)")

static const foolc__param fmn_params[] = {
    FMN_PARAMS,
    FOOLC__PARAM(foolc__fmn_config, polish, 10, 0, 100, 1,
                 "final boundary steps from the best adversarial (minimal step onto the linearised "
                 "boundary from the clean input); 0 = none"),
};

/* L0: the polish is a bisection over the top-ranked coordinates. */
static const foolc__param fmn_l0_params[] = {
    FMN_PARAMS,
    FOOLC__PARAM(foolc__fmn_config, polish, 1, 0, 1, 1,
                 "1 ends with a bisection over how many top-ranked coordinates go to the box"),
};

FOOLC__ATTACK(fmn_l0, "fmn-l0", FOOLC_L0, FOOLC__GRAD, fmn_l0_params, foolc__fmn_config, fmn_run,
              NULL,
              "fast minimum-norm attack (L0): margin steps, adaptive epsilon-ball projection");
FOOLC__ATTACK(fmn_l1, "fmn-l1", FOOLC_L1, FOOLC__GRAD, fmn_params, foolc__fmn_config, fmn_run, NULL,
              "fast minimum-norm attack (L1): margin steps, adaptive epsilon-ball projection");
FOOLC__ATTACK(fmn_l2, "fmn-l2", FOOLC_L2, FOOLC__GRAD, fmn_params, foolc__fmn_config, fmn_run, NULL,
              "fast minimum-norm attack (L2): margin steps, adaptive epsilon-ball projection");
FOOLC__ATTACK(fmn_linf, "fmn-linf", FOOLC_LINF, FOOLC__GRAD, fmn_params, foolc__fmn_config, fmn_run,
              NULL,
              "fast minimum-norm attack (Linf): margin steps, adaptive epsilon-ball projection");

/* The polish attacks: FMN's descents from each sample's given start
 * (foolc_attack_set_sample_starts; without one, from FMN's own descent), in rounds; the
 * evaluation runs them last, from the best point of every attack before (lib/eval/eval.c,
 * warm starts). */
#define POLISH_PARAMS(noise_default)                                                         \
    FOOLC__PARAM(foolc__fmn_config, steps, 300, 1, 10000, 1, "iterations of each round"),    \
    FOOLC__PARAM(foolc__fmn_config, rounds, 4, 1, 100, 1,                                    \
                 "descents, each from the best point so far, their epsilon and step "        \
                 "schedules cycling through four measured settings"),                        \
    FOOLC__PARAM(foolc__fmn_config, min_stepsize, 0, 0, 1e3, 0,                              \
                 "last step size; 0 means the round's first step size / 1000"),              \
    FOOLC__PARAM(foolc__fmn_config, bisect, 20, 0, 50, 1,                                    \
                 "final search towards the clean input, to a bracket 2^-bisect wide"),       \
    FOOLC__PARAM(foolc__fmn_config, polish, 10, 0, 100, 1,                                   \
                 "final boundary steps from the best adversarial; 0 = none"),                \
    FOOLC__PARAM(foolc__fmn_config, noise, noise_default, 0, 16, 1,                          \
                 "more chains per sample, each from a new blended-uniform-noise point, "     \
                 "racing like the side starts"),                                            \
    FOOLC__PARAM(foolc__fmn_config, race_decision, 0, 0, 1, 1,                               \
                 "1: the decision-based attack's start races too (its chain continues after "\
                 "a round only while it holds the sample's best point)")

/* polish-l1 runs one noise chain by default: on the reference CNN it lowers `all`'s L1 by
 * 0.55 % (docs/attacks-minnorm.md, "Noise chains"); polish-l2 and polish-linf none. */
static const foolc__param polish_l1_params[] = {POLISH_PARAMS(1)};
static const foolc__param polish_params[] = {POLISH_PARAMS(0)};
static const int polish_variant = 1;

FOOLC__ATTACK(polish_l1, "polish-l1", FOOLC_L1, FOOLC__GRAD, polish_l1_params, foolc__fmn_config,
              fmn_run, &polish_variant,
              "FMN descents (L1) in rounds from each sample's given start: a final polish");
FOOLC__ATTACK(polish_l2, "polish-l2", FOOLC_L2, FOOLC__GRAD, polish_params, foolc__fmn_config,
              fmn_run, &polish_variant,
              "FMN descents (L2) in rounds from each sample's given start: a final polish");
FOOLC__ATTACK(polish_linf, "polish-linf", FOOLC_LINF, FOOLC__GRAD, polish_params,
              foolc__fmn_config, fmn_run, &polish_variant,
              "FMN descents (Linf) in rounds from each sample's given start: a final polish");
