/* Brendel-Bethge L2 attack (arXiv:1907.01003): walks along the decision boundary towards
 * the input; each step solves min ||x + delta - x0||_2 s.t. b . delta = c, the box and
 * ||delta||_2 <= r with an active-set method (closed form on the free coordinates). */
#include "bb.h"

#include <math.h>
#include <stddef.h>

typedef foolc__bb_config bb_l2_config;

static const foolc__param bb_l2_params[] = {FOOLC__BB_PARAMS(1)};

/* On the free coordinates the problem without the box has a closed form: the component
 * along b is fixed by b . delta = c, the rest follows u = x0 - x as far as the radius
 * allows. Coordinates that leave the box are fixed at the bound and the rest re-solved. */
static void bb_l2_solve(foolc__bb_prob *p)
{
    size_t d = p->d;
    double *l = p->w, *h = l + d;
    unsigned char *fixed = (unsigned char *)(h + d);   /* d bytes inside w's third row */
    if (foolc__bb_unreachable(p, l, h)) return;
    const double *u = p->u, *b = p->b;
    double *dl = p->delta, cf = 0, nf = 0;
    for (size_t i = 0; i < d; i++) fixed[i] = 0;
    for (int it = 0; it < 100; it++) {
        double bb = 0, bu = 0, uu = 0;
        for (size_t i = 0; i < d; i++)
            if (!fixed[i]) {
                bb += b[i] * b[i];
                bu += b[i] * u[i];
                uu += u[i] * u[i];
            }
        double c = p->c - cf, r2 = p->r * p->r - nf;
        if (r2 < 0) r2 = 0;
        double pa, pp;   /* delta = pa * b + pp * u on the free coordinates */
        if (bb <= 1e-300) {
            pa = 0;
            pp = uu <= r2 ? 1 : sqrt(r2 / uu);
        } else {
            double t = (c - bu) / bb;
            if (uu + 2 * t * bu + t * t * bb <= r2) {
                pa = t;
                pp = 1;
            } else {
                double par2 = c * c / bb;
                if (par2 >= r2) {   /* only a step towards the boundary fits */
                    pa = copysign(sqrt(r2 / bb), c);
                    pp = 0;
                } else {
                    double perp2 = uu - bu * bu / bb;
                    double gam = perp2 > 1e-300 ? sqrt((r2 - par2) / perp2) : 0;
                    if (gam > 1) gam = 1;
                    pp = gam;
                    pa = c / bb - gam * bu / bb;
                }
            }
        }
        int changed = 0;
        for (size_t i = 0; i < d; i++) {
            if (fixed[i]) continue;
            double v = pa * b[i] + pp * u[i];
            if (v < l[i] || v > h[i]) {
                v = v < l[i] ? l[i] : h[i];
                fixed[i] = 1;
                cf += b[i] * v;
                nf += v * v;
                changed = 1;
            }
            dl[i] = v;
        }
        if (!changed) break;
    }
}

static foolc_status bb_l2_run(foolc__run *run, const void *config)
{
    return foolc__bb_run(run, config, bb_l2_solve);
}

FOOLC__ATTACK(bb_l2, "bb-l2", FOOLC_L2, FOOLC__GRAD, bb_l2_params, bb_l2_config, bb_l2_run, NULL,
              "Brendel-Bethge: walks the decision boundary towards the input (L2)");
