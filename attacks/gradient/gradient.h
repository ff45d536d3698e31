/* The gradient family (attacks/gradient/): extra losses (DLR, per-row class pairs), the
 * batched projected-gradient loop (BIM, PGD, MI-FGSM, APGD) with per-sample epsilons and the
 * epsilon search around it (iterate.c), FGM with FGSM as its Linf case (fgm.c), and batched
 * DeepFool (deepfool.c). */
#ifndef FOOLC_GRADIENT_H
#define FOOLC_GRADIENT_H

#include "attack_impl.h"

/* The iterative loop's settings. */
typedef struct foolc__iter_opts {
    foolc_norm norm;            /* ball of the projection and geometry of the steps */
    int32_t steps, restarts;    /* gradient steps per start; starts per epsilon */
    double rel_step;            /* step = rel_step * epsilon (APGD: initial 2 * epsilon) */
    int random_start;           /* first start uniform in the ball (later ones always are) */
    foolc__loss loss;           /* CE, MARGIN or DLR */
    double momentum;            /* MI-FGSM decay of the L1-normalised gradient sum; 0 off */
    double quantile;            /* L1 steps move the coordinates above this |grad| quantile */
    int apgd;                   /* APGD: step-size halving at checkpoints, momentum 0.75 */
} foolc__iter_opts;

/* Settings of the epsilon search that makes an attack minimising. */
typedef struct foolc__search_opts {
    double epsilon;     /* > 0: one run at this epsilon; 0: per-sample search */
    double eps_max;     /* FGM: largest radius tried (0: the box's diameter) */
    double rtol;        /* relative tolerance of the bisection */
    double growth;      /* growth factor until the first success */
    double eps_init;    /* first epsilon, relative to the sample's linear estimate */
    int32_t trim;       /* bisection steps towards the clean input at the end (0: none) */
    int32_t polish;     /* then boundary polish steps, one candidate per class (0: none) */
} foolc__search_opts;

/* Runs the iterative attack o on run->todo: at the fixed epsilon, or minimising with the
 * shared epsilon search warm-started from margin / dual-norm(gradient) at the input. */
foolc_status foolc__iter_run(foolc__run *run, const foolc__iter_opts *o,
                             const foolc__search_opts *s);

/* FGM in o->norm (L2, L1 or Linf): one gradient per loss (loss_mode 0 CE, 1 margin, 2
 * both) and the smallest adversarial along the exact maximiser of the linearised loss over
 * ball ∩ box, whose radius the search finds (eps_init absolute). */
foolc_status foolc__fgm_run(foolc__run *run, foolc_norm norm, int loss_mode,
                            const foolc__search_opts *s);

/* DeepFool in L2 or Linf (Moosavi-Dezfooli et al., arXiv:1511.04599). */
typedef struct foolc__deepfool_opts {
    foolc_norm norm;
    int32_t steps, candidates;
    double overshoot, rtol;
    double epsilon;     /* > 0: results farther than this are dropped (robust accuracy) */
} foolc__deepfool_opts;
foolc_status foolc__deepfool_run(foolc__run *run, const foolc__deepfool_opts *o);

/* The one config struct of every attack built on this file (configs are structs of
 * doubles); each attack lists the fields it exposes in its parameter table. */
typedef struct foolc__iter_config {
    double epsilon, rtol, growth, eps_init, eps_max, trim;
    double steps, rel_stepsize, random_start, restarts, loss, quantile, momentum;
    double candidates, overshoot;
    double apgd;        /* 1: APGD's step-size schedule (never exposed) */
    double polish;      /* boundary polish steps after the search (foolc__mn_polish_classes) */
} foolc__iter_config;

#define FOOLC__IP(field, dflt, lo, hi, is_int, help) \
    {#field, dflt, lo, hi, offsetof(foolc__iter_config, field), is_int, help}

/* The epsilon-search parameters every iterative attack exposes. */
#define FOOLC__IP_SEARCH(rtol_dflt)                                                         \
    FOOLC__IP(epsilon, 0, 0, 1e9, 0, "fixed epsilon; 0 searches the smallest per sample"), \
    FOOLC__IP(rtol, rtol_dflt, 1e-6, 0.5, 0, "relative tolerance of the epsilon bisection"), \
    FOOLC__IP(growth, 1.5, 1.05, 100, 0, "growth factor of epsilon until the first success"), \
    FOOLC__IP(eps_init, 1, 1e-3, 1e3, 0,                                                   \
              "first epsilon, as a multiple of the linear estimate margin/|grad|_dual"),    \
    FOOLC__IP(trim, 10, 0, 40, 1, "bisection steps towards the input after the search"), \
    FOOLC__IP(polish, 10, 0, 100, 1,                                                       \
              "final boundary steps, one linearised class pair per other class")

/* out = dflt, then every field listed in params taken from config. */
void foolc__iter_config_get(const foolc__param *params, size_t n, const void *config,
                            const foolc__iter_config *dflt, foolc__iter_config *out);

/* Runs the iterative attack in norm p from a config. */
foolc_status foolc__iter_config_run(foolc__run *run, foolc_norm p, const foolc__iter_config *c);

/* Largest distance between two points of the box in norm p over d coordinates. */
double foolc__box_diameter(const foolc__run *run, foolc_norm p);

#endif
