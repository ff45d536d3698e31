/* method=exact: the minimal Linf or L1 perturbation of a small built-in ReLU net as a
 * mixed-integer linear program on GLPK (docs/certify.md, "Exact minima").
 *
 * Variables: the input x' (inside the ball of radius R around x and the box), for Linf a
 * scalar t >= |x'_i - x_i| (minimise t), for L1 x' = x + p - n with p, n >= 0 (minimise
 * sum p + n); one column per output of every affine layer (dense, conv2d as its sparse
 * rows, avgpool2d, batchnorm with its running statistics), tied to its inputs by an
 * equality row; flatten renames; a softmax last is dropped (it changes no argmax). A relu
 * with pre-activation bounds [l, u] is the identity when l >= 0, zero when u <= 0, else a
 * column z and a binary d with z >= a, z >= 0, z <= u d, z <= a - l (1 - d) (big-M). The
 * bounds hold over ball(R) ∩ box: interval bounds (for L1 the first affine layer also uses
 * |w . (x' - x)| <= R max|w|) met with CROWN's (foolc__cert_bounds), then tightened by the
 * LP relaxation of the layers before each relu layer. maxpool2d is refused
 * (FOOLC_E_UNSUPPORTED). R: the caller's hint, or the distance FMN finds.
 *
 * Misclassification is the union over j != label of logit_j - logit_label >= margin (a
 * float step past the boundary): one program per class, classes by their clean logit gap
 * with the attack's class first, each with the best verified distance so far as a cutoff
 * on the objective; a class no point of ball(R) can reach is skipped without an LP, and
 * the program is rebuilt with R = the best distance when that tightens the big-M
 * constants. Or (FOOLC__EXACT_SELECTOR) one program where binaries s_j (sum 1) choose the
 * class: logit_j - logit_label >= margin - M_j (1 - s_j). A target is the intersection
 * logit_t - logit_j >= margin for all j, one program.
 *
 * Every incumbent is re-evaluated with the net (foolc_net_forward) and must be adversarial,
 * nudged outwards along x' - x when the float rounding puts it on the wrong side; only a
 * verified point's distance is ever an upper end. The lower end is the least over classes
 * of the solver's optimum, its best node bound when the time limit stops it, the LP
 * relaxation of a class never branched on, or the cutoff a class was proved above.
 *
 * GLPK failures: glp_error_hook leaves by longjmp, the thread's GLPK environment is freed,
 * and the call returns FOOLC_E_BACKEND; GLPK 5 keeps its environment per thread
 * (glp_config("TLS")), so distinct threads may solve at once, each on its own net. */
#include "certify/exact.h"
#include "nn/nn.h"

#include <float.h>
#include <glpk.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the net as affine maps and relus ---------------------------------------------- */

/* The radius a program is built for, from an adversarial's distance: 1 % more, so that
 * the class rows' margin (a float step past the boundary) stays reachable inside it. */
#define RSLACK(r) ((r) * 1.01 + 1e-9)

static int is_affine(const nn_layer *l)
{
    return l->kind == &foolc__nn_dense || l->kind == &foolc__nn_conv2d ||
           l->kind == &foolc__nn_avgpool2d || l->kind == &foolc__nn_batchnorm;
}

static int64_t fan_in(const nn_layer *l)
{
    if (l->kind == &foolc__nn_dense) return l->in.c;
    if (l->kind == &foolc__nn_conv2d) return (int64_t)l->in.c * l->k * l->k;
    if (l->kind == &foolc__nn_avgpool2d) return (int64_t)l->k * l->k;
    return 1;
}

/* Output o of affine layer l as bias + sum w[e] * input[idx[e]]; returns the count. */
static int64_t aff_row(const nn_layer *l, int64_t o, int64_t *idx, double *w, double *bias)
{
    int64_t m = 0;
    if (l->kind == &foolc__nn_dense) {
        const float *wr = l->w + o * l->in.c;
        for (int64_t i = 0; i < l->in.c; i++) {
            idx[m] = i;
            w[m++] = wr[i];
        }
        *bias = l->b[o];
        return m;
    }
    const int64_t OW = l->out_dims.w, OH = l->out_dims.h, H = l->in.h, W = l->in.w;
    const int64_t ow = o % OW, oh = (o / OW) % OH, oc = o / (OW * OH);
    if (l->kind == &foolc__nn_conv2d) {
        const int64_t C = l->in.c, K = l->k;
        for (int64_t c = 0; c < C; c++)
            for (int64_t kh = 0; kh < K; kh++) {
                int64_t ih = oh * l->s - l->p + kh;
                if (ih < 0 || ih >= H) continue;
                for (int64_t kw = 0; kw < K; kw++) {
                    int64_t iw = ow * l->s - l->p + kw;
                    if (iw < 0 || iw >= W) continue;
                    idx[m] = (c * H + ih) * W + iw;
                    w[m++] = l->w[((oc * C + c) * K + kh) * K + kw];
                }
            }
        *bias = l->b[oc];
        return m;
    }
    if (l->kind == &foolc__nn_avgpool2d) {
        const double inv = 1.0 / ((double)l->k * l->k);
        for (int64_t kh = 0; kh < l->k; kh++) {
            int64_t ih = oh * l->s - l->p + kh;
            if (ih < 0 || ih >= H) continue;
            for (int64_t kw = 0; kw < l->k; kw++) {
                int64_t iw = ow * l->s - l->p + kw;
                if (iw < 0 || iw >= W) continue;
                idx[m] = (oc * H + ih) * W + iw;
                w[m++] = inv;
            }
        }
        *bias = 0;
        return m;
    }
    /* batchnorm: the float scale and shift of the forward rule */
    int64_t c = o / (H * W);
    double is = 1.0 / sqrt(l->var[c] + l->eps);
    idx[0] = o;
    w[0] = (float)(l->w[c] * is);
    *bias = (float)(l->b[c] - l->mean[c] * l->w[c] * is);
    return 1;
}

/* The context of one sample. */
typedef struct ex {
    foolc_net *net;
    const foolc__exact_opts *o;
    const float *x;
    int32_t label, target, K;
    int32_t L;                   /* layers encoded (a softmax last is dropped) */
    int64_t d, maxfan;
    int64_t *size;               /* L+1 tensor sizes */
    double **lo, **hi;           /* L+1 interval bounds */
    int **col;                   /* L+1 GLPK column per element (0: the constant 0) */
    int64_t *idx;                /* maxfan */
    double *w;                   /* maxfan */
    int *ind;                    /* maxfan + 2 (GLPK's 1-based rows) */
    double *val;
    glp_prob *P;
    int tcol, cutrow, sumrow;    /* Linf t; L1 cutoff row; selector sum row */
    int pcol;                    /* L1: first p column (n follows, d each) */
    int *crow;                   /* K: class rows (0 for the label) */
    int *scol;                   /* K: selector binaries */
    double R;                    /* radius the program was built for */
    int32_t binaries;
    float *xa;                   /* d: candidate */
    float *logits;               /* K */
    double *xs;                  /* d: the solver's x' */
    double bound;                /* branch-and-bound's best node bound (callback) */
    int32_t adv_class;           /* the class of the attack's adversarial (-1: none) */
    double margin;               /* logit_j - logit_label >= margin: a float step past the
                                    boundary, so that the net agrees after rounding */
    double *xlb, *xub;           /* CROWN's bounds of every tensor (o->crown), or NULL */
    jmp_buf jb;
} ex;

static void ex_free_arrays(ex *e)
{
    for (int32_t t = 0; t <= e->L; t++) {
        if (e->lo) foolc__free(e->lo[t]);
        if (e->hi) foolc__free(e->hi[t]);
        if (e->col) foolc__free(e->col[t]);
    }
    foolc__free(e->lo);
    foolc__free(e->hi);
    foolc__free(e->col);
    foolc__free(e->size);
    foolc__free(e->idx);
    foolc__free(e->w);
    foolc__free(e->ind);
    foolc__free(e->val);
    foolc__free(e->crow);
    foolc__free(e->scol);
    foolc__free(e->xa);
    foolc__free(e->logits);
    foolc__free(e->xs);
    foolc__free(e->xlb);
    foolc__free(e->xub);
}

static foolc_status ex_alloc(ex *e)
{
    foolc_net *net = e->net;
    if (net->graph)
        return foolc__error(FOOLC_E_UNSUPPORTED, "certify exact: graph nets are not encoded "
                            "(sequential nets only)");
    e->L = net->L;
    if (e->L > 0 && net->layers[e->L - 1].kind == &foolc__nn_softmax) e->L--;
    for (int32_t i = 0; i < e->L; i++) {
        const nn_layer *l = &net->layers[i];
        if (l->kind == &foolc__nn_softmax)
            return foolc__error(FOOLC_E_UNSUPPORTED,
                                "certify exact: layer %d (softmax) is not the last layer",
                                (int)i);
        if (l->kind == &foolc__nn_maxpool2d)
            return foolc__error(FOOLC_E_UNSUPPORTED,
                                "certify exact: layer %d (maxpool2d) is not encoded (max "
                                "pooling needs binaries per window; use avgpool2d or CROWN)",
                                (int)i);
        if (is_affine(l) && fan_in(l) > e->maxfan) e->maxfan = fan_in(l);
    }
    e->d = nn_numel(net->in);
    if (e->maxfan < 2) e->maxfan = 2;
    size_t T = (size_t)e->L + 1;
    e->size = foolc__calloc(T, sizeof *e->size);
    e->lo = foolc__calloc(T, sizeof *e->lo);
    e->hi = foolc__calloc(T, sizeof *e->hi);
    e->col = foolc__calloc(T, sizeof *e->col);
    e->idx = foolc__calloc((size_t)e->maxfan, sizeof *e->idx);
    e->w = foolc__calloc((size_t)e->maxfan, sizeof *e->w);
    e->ind = foolc__calloc((size_t)e->maxfan + 4, sizeof *e->ind);
    e->val = foolc__calloc((size_t)e->maxfan + 4, sizeof *e->val);
    e->crow = foolc__calloc((size_t)e->K, sizeof *e->crow);
    e->scol = foolc__calloc((size_t)e->K, sizeof *e->scol);
    e->xa = foolc__calloc((size_t)e->d, sizeof *e->xa);
    e->logits = foolc__calloc((size_t)net->layers[net->L - 1].out_dims.c, sizeof *e->logits);
    e->xs = foolc__calloc((size_t)e->d, sizeof *e->xs);
    if (!e->size || !e->lo || !e->hi || !e->col || !e->idx || !e->w || !e->ind || !e->val ||
        !e->crow || !e->scol || !e->xa || !e->logits || !e->xs)
        return foolc__nomem("certify exact");
    for (int32_t t = 0; t <= e->L; t++) {
        e->size[t] = t == 0 ? e->d : nn_numel(net->layers[t - 1].out_dims);
        e->lo[t] = foolc__calloc((size_t)e->size[t], sizeof(double));
        e->hi[t] = foolc__calloc((size_t)e->size[t], sizeof(double));
        e->col[t] = foolc__calloc((size_t)e->size[t], sizeof(int));
        if (!e->lo[t] || !e->hi[t] || !e->col[t]) return foolc__nomem("certify exact");
    }
    return FOOLC_OK;
}

/* ---- bounds ------------------------------------------------------------------------- */

/* Tensor t's bounds intersected with CROWN's (both hold over ball(R) ∩ box). */
static void ex_meet(ex *e, int32_t t)
{
#if FOOLC__EXACT_USE_CROWN
    if (!e->xlb) return;
    const double *a = e->xlb + foolc__cert_offset(e->net, t), *b = e->xub + foolc__cert_offset(e->net, t);
    for (int64_t j = 0; j < e->size[t]; j++) {
        if (a[j] > e->lo[t][j]) e->lo[t][j] = a[j];
        if (b[j] < e->hi[t][j]) e->hi[t][j] = b[j];
        if (e->lo[t][j] > e->hi[t][j]) e->lo[t][j] = e->hi[t][j] = 0.5 * (a[j] + b[j]);
    }
#else
    (void)e, (void)t;
#endif
}

/* Interval bounds of tensor t + 1 from tensor t's (met with CROWN's first). */
static void ex_ibp(ex *e, int32_t t, double R)
{
    const nn_layer *l = &e->net->layers[t];
    int is_input = 1;            /* tensor t is the input, up to flatten */
    for (int32_t k = 0; k < t; k++)
        if (e->net->layers[k].kind != &foolc__nn_flatten) is_input = 0;
    ex_meet(e, t);
    const double *li = e->lo[t], *hi = e->hi[t];
    double *lo_ = e->lo[t + 1], *ho = e->hi[t + 1];
    if (is_affine(l)) {
        for (int64_t j = 0; j < e->size[t + 1]; j++) {
            double b;
            int64_t m = aff_row(l, j, e->idx, e->w, &b);
            double a = b, c = b, mag = fabs(b), cx = b, wmax = 0;
            for (int64_t k = 0; k < m; k++) {
                double wk = e->w[k], L_ = li[e->idx[k]], H_ = hi[e->idx[k]];
                a += wk > 0 ? wk * L_ : wk * H_;
                c += wk > 0 ? wk * H_ : wk * L_;
                mag += fabs(wk) * fmax(fabs(L_), fabs(H_));
                if (is_input) cx += wk * e->x[e->idx[k]];
                if (fabs(wk) > wmax) wmax = fabs(wk);
            }
            if (is_input && e->o->norm == FOOLC_L1 && isfinite(R)) {
                a = fmax(a, cx - R * wmax);
                c = fmin(c, cx + R * wmax);
            }
            /* float roundings of the net: widen by a little more than they can move */
            double slack = 1e-6 * mag + 1e-9;
            lo_[j] = a - slack;
            ho[j] = c + slack;
        }
    } else if (l->kind == &foolc__nn_relu) {
        for (int64_t j = 0; j < e->size[t]; j++) {
            lo_[j] = fmax(0, li[j]);
            ho[j] = fmax(0, hi[j]);
        }
    } else { /* flatten */
        memcpy(lo_, li, (size_t)e->size[t] * sizeof *lo_);
        memcpy(ho, hi, (size_t)e->size[t] * sizeof *ho);
    }
}

/* Interval bounds of every tensor over ball(R) ∩ box, intersected with CROWN's when
 * o->crown (a CROWN failure keeps the interval bounds alone). */
static foolc_status ex_bounds(ex *e, double R)
{
    const foolc__exact_opts *o = e->o;
    foolc__free(e->xlb);
    foolc__free(e->xub);
    e->xlb = e->xub = NULL;
#if FOOLC__EXACT_USE_CROWN
    if (o->crown) {
        int64_t tot = foolc__cert_offset(e->net, e->net->L + 1);
        e->xlb = foolc__malloc((size_t)tot * sizeof(double));
        e->xub = foolc__malloc((size_t)tot * sizeof(double));
        if (!e->xlb || !e->xub) return foolc__nomem("certify exact");
        /* the whole box when no radius is known */
        double r = isfinite(R) ? R
                   : o->norm == FOOLC_LINF ? o->hi - o->lo : (o->hi - o->lo) * (double)e->d;
        foolc_status st = foolc__cert_bounds(e->net, e->x, o->norm, r, o->lo, o->hi,
                                             FOOLC_CERTIFY_CROWN, e->xlb, e->xub);
        if (st == FOOLC_E_NOMEM) return st;
        if (st < 0) {
            foolc__free(e->xlb);
            foolc__free(e->xub);
            e->xlb = e->xub = NULL;
            foolc__error_clear();
        }
    }
#endif
    for (int64_t i = 0; i < e->d; i++) {
        double xi = e->x[i];
        e->lo[0][i] = fmax(o->lo, xi - R);
        e->hi[0][i] = fmin(o->hi, xi + R);
    }
    for (int32_t t = 0; t < e->L; t++) ex_ibp(e, t, R);
    ex_meet(e, e->L);
    return FOOLC_OK;
}

/* ---- the program -------------------------------------------------------------------- */

static int add_col(ex *e, double lo, double hi, int kind)
{
    int j = glp_add_cols(e->P, 1);
    if (kind == GLP_BV) {
        glp_set_col_kind(e->P, j, GLP_BV);
        return j;
    }
    if (lo == -INFINITY && hi == INFINITY) glp_set_col_bnds(e->P, j, GLP_FR, 0, 0);
    else if (hi == INFINITY) glp_set_col_bnds(e->P, j, GLP_LO, lo, 0);
    else if (lo == -INFINITY) glp_set_col_bnds(e->P, j, GLP_UP, 0, hi);
    else if (lo >= hi) glp_set_col_bnds(e->P, j, GLP_FX, lo, lo);
    else glp_set_col_bnds(e->P, j, GLP_DB, lo, hi);
    return j;
}

/* A row of n entries (ind/val 1-based) with type and bounds. */
static int add_row(ex *e, int n, int type, double lo, double hi)
{
    int r = glp_add_rows(e->P, 1);
    if (n > 0) glp_set_mat_row(e->P, r, n, e->ind, e->val);
    glp_set_row_bnds(e->P, r, type, lo, hi);
    return r;
}

/* logit a - logit b as ind/val entries; returns the count. */
static int diff_entries(ex *e, int32_t a, int32_t b, int n)
{
    int ca = e->col[e->L][a], cb = e->col[e->L][b];
    if (ca) {
        e->ind[++n] = ca;
        e->val[n] = 1;
    }
    if (cb) {
        e->ind[++n] = cb;
        e->val[n] = -1;
    }
    return n;
}

static foolc_status ex_lp(ex *e, double deadline, int *res, double *obj);

/* The objective: t (Linf) or sum p + n (L1). */
static void ex_objective(ex *e)
{
    glp_set_obj_dir(e->P, GLP_MIN);
    if (e->o->norm == FOOLC_LINF) {
        glp_set_obj_coef(e->P, e->tcol, 1);
        return;
    }
    for (int64_t k = 0; k < 2 * e->d; k++) glp_set_obj_coef(e->P, e->pcol + (int)k, 1);
}

/* Tightens the bounds of relu input tensor t's unstable neurons by the LP relaxation of the
 * program built so far (the layers before t): max and min of each pre-activation. */
static foolc_status ex_tighten(ex *e, int32_t t, double deadline)
{
    /* few unstable neurons make a cheap program as they are; the tightening takes at most
     * a quarter of the time left */
    int64_t unstable = 0;
    for (int64_t j = 0; j < e->size[t]; j++)
        unstable += e->col[t][j] && e->lo[t][j] < 0 && e->hi[t][j] > 0;
    if (unstable <= 8) return FOOLC_OK;
    if (isfinite(deadline)) deadline = now() + 0.25 * (deadline - now());
    const int nc = glp_get_num_cols(e->P);
    for (int j = 1; j <= nc; j++) glp_set_obj_coef(e->P, j, 0);
    glp_scale_prob(e->P, GLP_SF_AUTO);
    foolc_status st = FOOLC_OK;
    for (int64_t j = 0; j < e->size[t] && st >= 0; j++) {
        int c = e->col[t][j];
        if (!c) continue;
        for (int dir = 0; dir < 2; dir++) {
            double *lo = &e->lo[t][j], *hi = &e->hi[t][j];
            if (*lo >= 0 || *hi <= 0 || now() >= deadline) break;
            int res;
            double v = 0;
            glp_set_obj_dir(e->P, dir == 0 ? GLP_MAX : GLP_MIN);
            glp_set_obj_coef(e->P, c, 1);
            st = ex_lp(e, deadline, &res, &v);
            glp_set_obj_coef(e->P, c, 0);
            if (st < 0 || res != 1) break;
            double slack = 1e-6 * (1 + fabs(v));
            if (dir == 0 && v + slack < *hi) *hi = v + slack;
            if (dir == 1 && v - slack > *lo) *lo = v - slack;
            if (*lo > *hi) *lo = *hi;
        }
        if (e->lo[t][j] < e->hi[t][j])
            glp_set_col_bnds(e->P, c, GLP_DB, e->lo[t][j], e->hi[t][j]);
    }
    ex_objective(e);
    return st;
}

/* Builds the program for radius R (bounds must be current; they are tightened by LP at
 * every relu past the first under Linf, at every relu under L1, while time is left). */
static foolc_status ex_build(ex *e, double R, double deadline)
{
    const foolc__exact_opts *o = e->o;
    if (e->P) glp_delete_prob(e->P);
    e->P = glp_create_prob();
    e->R = R;
    e->binaries = 0;
    glp_set_obj_dir(e->P, GLP_MIN);
    const int64_t d = e->d;
    int relus = 0;
    for (int64_t i = 0; i < d; i++) e->col[0][i] = add_col(e, e->lo[0][i], e->hi[0][i], 0);
    if (o->norm == FOOLC_LINF) {
        e->tcol = add_col(e, 0, R, 0);
        glp_set_obj_coef(e->P, e->tcol, 1);
        for (int64_t i = 0; i < d; i++) {
            e->ind[1] = e->col[0][i];
            e->ind[2] = e->tcol;
            e->val[1] = 1;
            e->val[2] = -1;
            /* x' - t <= x (implied when x sits on the upper face), x' + t >= x (on the
             * lower face) */
            if (e->x[i] < o->hi) add_row(e, 2, GLP_UP, 0, e->x[i]);
            e->val[2] = 1;
            if (e->x[i] > o->lo) add_row(e, 2, GLP_LO, e->x[i], 0);
        }
        e->cutrow = 0;
    } else {
        e->pcol = glp_add_cols(e->P, (int)(2 * d));
        for (int64_t i = 0; i < d; i++) {
            double up = e->hi[0][i] - e->x[i], dn = e->x[i] - e->lo[0][i];
            int p = e->pcol + (int)i, n = e->pcol + (int)(d + i);
            glp_set_col_bnds(e->P, p, up > 0 ? GLP_DB : GLP_FX, 0, up > 0 ? up : 0);
            glp_set_col_bnds(e->P, n, dn > 0 ? GLP_DB : GLP_FX, 0, dn > 0 ? dn : 0);
            glp_set_obj_coef(e->P, p, 1);
            glp_set_obj_coef(e->P, n, 1);
            e->ind[1] = e->col[0][i];
            e->ind[2] = p;
            e->ind[3] = n;
            e->val[1] = 1;
            e->val[2] = -1;
            e->val[3] = 1;
            add_row(e, 3, GLP_FX, e->x[i], e->x[i]);
        }
        /* sum p + n <= cutoff (free until there is one) */
        e->cutrow = glp_add_rows(e->P, 1);
        {
            int *ind = foolc__malloc((size_t)(2 * d + 1) * sizeof *ind);
            double *val = foolc__malloc((size_t)(2 * d + 1) * sizeof *val);
            if (!ind || !val) {
                foolc__free(ind);
                foolc__free(val);
                return foolc__nomem("certify exact");
            }
            for (int k = 1; k <= 2 * d; k++) {
                ind[k] = e->pcol + k - 1;
                val[k] = 1;
            }
            glp_set_mat_row(e->P, e->cutrow, (int)(2 * d), ind, val);
            foolc__free(ind);
            foolc__free(val);
        }
        if (isfinite(R)) glp_set_row_bnds(e->P, e->cutrow, GLP_UP, 0, R);
        else glp_set_row_bnds(e->P, e->cutrow, GLP_FR, 0, 0);
    }
    for (int32_t t = 0; t < e->L; t++) {
        const nn_layer *l = &e->net->layers[t];
        const int *ci = e->col[t];
        int *co = e->col[t + 1];
        if (is_affine(l)) {
            for (int64_t j = 0; j < e->size[t + 1]; j++) {
                double b;
                int64_t m = aff_row(l, j, e->idx, e->w, &b);
                int y = add_col(e, e->lo[t + 1][j], e->hi[t + 1][j], 0);
                int n = 0;
                e->ind[++n] = y;
                e->val[n] = 1;
                for (int64_t k = 0; k < m; k++) {
                    int c = ci[e->idx[k]];
                    if (!c || e->w[k] == 0) continue;
                    e->ind[++n] = c;
                    e->val[n] = -e->w[k];
                }
                add_row(e, n, GLP_FX, b, b);
                co[j] = y;
            }
        } else if (l->kind == &foolc__nn_relu) {
            if (o->norm == FOOLC_L1 || relus++ > 0) {
                FOOLC__CHECK(ex_tighten(e, t, deadline));
                for (int32_t k = t; k < e->L; k++) ex_ibp(e, k, R);
                ex_meet(e, e->L);
            }
            for (int64_t j = 0; j < e->size[t]; j++) {
                double lj = e->lo[t][j], uj = e->hi[t][j];
                int a = ci[j];
                if (!a || uj <= 0) {
                    co[j] = 0;
                } else if (lj >= 0) {
                    co[j] = a;
                } else {
                    int z = add_col(e, 0, uj, 0), dl = add_col(e, 0, 1, GLP_BV);
                    e->binaries++;
                    e->ind[1] = z;
                    e->ind[2] = a;
                    e->val[1] = 1;
                    e->val[2] = -1;
                    add_row(e, 2, GLP_LO, 0, 0);             /* z >= a */
                    e->ind[2] = dl;
                    e->val[2] = -uj;
                    add_row(e, 2, GLP_UP, 0, 0);             /* z <= u d */
                    e->ind[2] = a;
                    e->val[2] = -1;
                    e->ind[3] = dl;
                    e->val[3] = -lj;
                    add_row(e, 3, GLP_UP, 0, -lj);           /* z <= a - l (1 - d) */
                    co[j] = z;
                }
            }
        } else {
            memcpy(co, ci, (size_t)e->size[t] * sizeof *co);
        }
    }
    /* the region */
    const int32_t K = e->K;
    memset(e->crow, 0, (size_t)K * sizeof *e->crow);
    memset(e->scol, 0, (size_t)K * sizeof *e->scol);
    e->sumrow = 0;
    const double *lz = e->lo[e->L], *hz = e->hi[e->L];
    double zmax = 0;
    for (int32_t j = 0; j < K; j++) zmax = fmax(zmax, fmax(fabs(lz[j]), fabs(hz[j])));
    e->margin = 1e-6 * (1 + fmin(zmax, 1e3));
    if (e->target >= 0) {
        for (int32_t j = 0; j < K; j++) {
            if (j == e->target) continue;
            int n = diff_entries(e, e->target, j, 0);
            e->crow[j] = add_row(e, n, GLP_LO, e->margin, 0);
        }
    } else if (o->mode == FOOLC__EXACT_SELECTOR) {
        int n = 0;
        for (int32_t j = 0; j < K; j++)
            if (j != e->label) {
                e->scol[j] = add_col(e, 0, 1, GLP_BV);
                e->binaries++;
            }
        for (int32_t j = 0; j < K; j++)
            if (j != e->label) {
                e->ind[++n] = e->scol[j];
                e->val[n] = 1;
            }
        e->sumrow = add_row(e, n, GLP_FX, 1, 1);
        for (int32_t j = 0; j < K; j++) {
            if (j == e->label) continue;
            double M = fmax(0, hz[e->label] - lz[j]) + 1e-6;
            int m = diff_entries(e, j, e->label, 0);
            e->ind[++m] = e->scol[j];
            e->val[m] = -M;
            e->crow[j] = add_row(e, m, GLP_LO, e->margin - M, 0);
        }
    } else {
        for (int32_t j = 0; j < K; j++) {
            if (j == e->label) continue;
            int n = diff_entries(e, j, e->label, 0);
            e->crow[j] = add_row(e, n, GLP_FR, 0, 0);
        }
    }
    glp_scale_prob(e->P, GLP_SF_AUTO);
    return FOOLC_OK;
}

/* Objective cutoff: the program only looks for distances <= c. */
static void ex_cutoff(ex *e, double c)
{
    double R = fmin(c, e->R);
    if (e->o->norm == FOOLC_LINF) {
        if (isfinite(R)) glp_set_col_bnds(e->P, e->tcol, R > 0 ? GLP_DB : GLP_FX, 0, R);
        else glp_set_col_bnds(e->P, e->tcol, GLP_LO, 0, 0);
    } else {
        if (isfinite(R)) glp_set_row_bnds(e->P, e->cutrow, GLP_UP, 0, R);
        else glp_set_row_bnds(e->P, e->cutrow, GLP_FR, 0, 0);
    }
}

/* ---- verification ------------------------------------------------------------------- */

static int ex_is_adv(const ex *e)
{
    int32_t K = e->K, best = 0;
    for (int32_t j = 1; j < K; j++)
        if (e->logits[j] > e->logits[best]) best = j;
    return e->target >= 0 ? best == e->target : best != e->label;
}

static double ex_dist(const ex *e, const float *xa)
{
    double s = 0;
    for (int64_t i = 0; i < e->d; i++) {
        double v = fabs((double)xa[i] - (double)e->x[i]);
        if (e->o->norm == FOOLC_LINF) s = v > s ? v : s;
        else s += v;
    }
    return s;
}

/* Verifies e->xs (the solver's x'), nudged outwards along x' - x when needed; on success
 * e->xa holds the point and *dist its distance. */
static foolc_status ex_verify(ex *e, int *ok, double *dist)
{
    static const double nudge[] = {0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2};
    *ok = 0;
    for (size_t k = 0; k < sizeof nudge / sizeof *nudge; k++) {
        for (int64_t i = 0; i < e->d; i++) {
            double v = e->x[i] + (e->xs[i] - e->x[i]) * (1 + nudge[k]);
            if (k > 0) {
                /* a float step past the rounding in the direction of the move */
                float f = (float)v;
                if (e->xs[i] > e->x[i]) f = nextafterf(f, INFINITY);
                else if (e->xs[i] < e->x[i]) f = nextafterf(f, -INFINITY);
                v = f;
            }
            if (v < e->o->lo) v = e->o->lo;
            if (v > e->o->hi) v = e->o->hi;
            e->xa[i] = (float)v;
        }
        foolc_status st = foolc_net_forward(e->net, e->xa, 1, e->logits);
        if (st == FOOLC_E_NONFINITE) continue;
        FOOLC__CHECK(st);
        if (ex_is_adv(e)) {
            *ok = 1;
            *dist = ex_dist(e, e->xa);
            return FOOLC_OK;
        }
    }
    return FOOLC_OK;
}

/* ---- solving ------------------------------------------------------------------------ */

static void ex_cb(glp_tree *T, void *info)
{
    ex *e = info;
    int b = glp_ios_best_node(T);
    if (b) {
        double v = glp_ios_node_bound(T, b);
        if (v > e->bound) e->bound = v;
    }
}

static void ex_hook(void *info)
{
    ex *e = info;
    longjmp(e->jb, 1);
}

/* Remaining milliseconds for GLPK (at least 1), INT_MAX when there is no limit. */
static int ms_left(double deadline)
{
    if (!isfinite(deadline)) return INT_MAX;
    double left = (deadline - now()) * 1e3;
    if (left < 1) return 1;
    if (left > 1e9) return INT_MAX;
    return (int)left;
}

/* The LP relaxation (basis warm when possible). Returns 1 with *obj when optimal, 0 when
 * infeasible, -1 when the time ran out; an error for a solver failure. */
static foolc_status ex_lp(ex *e, double deadline, int *res, double *obj)
{
    glp_smcp sp;
    glp_init_smcp(&sp);
    sp.msg_lev = GLP_MSG_OFF;
    sp.presolve = GLP_OFF;
    sp.meth = GLP_DUALP;         /* row bounds change between solves: the basis stays dual
                                    feasible (GLPK falls back to the primal otherwise) */
    sp.tm_lim = ms_left(deadline);
    int rc = glp_simplex(e->P, &sp);
    if (rc != 0 && rc != GLP_ETMLIM) {
        glp_adv_basis(e->P, 0);
        rc = glp_simplex(e->P, &sp);
    }
    if (rc == GLP_ETMLIM) {
        *res = -1;
        return FOOLC_OK;
    }
    if (rc != 0)
        return foolc__error(FOOLC_E_BACKEND, "certify exact: GLPK's simplex failed (code %d)",
                            rc);
    int s = glp_get_status(e->P);
    if (s == GLP_OPT) {
        *res = 1;
        *obj = glp_get_obj_val(e->P);
    } else if (s == GLP_NOFEAS) {
        *res = 0;
    } else {
        return foolc__error(FOOLC_E_BACKEND,
                            "certify exact: GLPK's simplex ended with status %d", s);
    }
    return FOOLC_OK;
}

/* Branch and bound on the current program (an optimal LP basis at hand). *lower: a lower
 * bound of its optimum (+inf when infeasible); a verified incumbent improves *best. */
static foolc_status ex_mip(ex *e, double deadline, double lp, double cutoff, double *lower,
                           double *best, float *x_adv, int64_t *milps)
{
    glp_iocp ip;
    glp_init_iocp(&ip);
    ip.msg_lev = GLP_MSG_OFF;
    ip.presolve = GLP_OFF;
    ip.tm_lim = ms_left(deadline);
    ip.cb_func = ex_cb;
    ip.cb_info = e;
    ip.br_tech = GLP_BR_DTH;
    ip.bt_tech = GLP_BT_BLB;
    ip.mip_gap = e->o->rtol * 0.25;
    e->bound = lp;
    (*milps)++;
    int rc = glp_intopt(e->P, &ip);
    if (rc != 0 && rc != GLP_ETMLIM && rc != GLP_EMIPGAP)
        return foolc__error(FOOLC_E_BACKEND,
                            "certify exact: GLPK's branch and bound failed (code %d)", rc);
    int s = glp_mip_status(e->P);
    if (s == GLP_NOFEAS) {
        *lower = cutoff;           /* nothing at or below the cutoff */
        return FOOLC_OK;
    }
    if (rc == 0 && s == GLP_OPT) {
        *lower = glp_mip_obj_val(e->P);
    } else if (rc == GLP_EMIPGAP && (s == GLP_OPT || s == GLP_FEAS)) {
        *lower = glp_mip_obj_val(e->P) / (1 + ip.mip_gap);
    } else {
        *lower = e->bound;
        if (*lower > cutoff) *lower = cutoff;
    }
    if (s == GLP_OPT || s == GLP_FEAS) {
        for (int64_t i = 0; i < e->d; i++) e->xs[i] = glp_mip_col_val(e->P, e->col[0][i]);
        int ok;
        double dist;
        FOOLC__CHECK(ex_verify(e, &ok, &dist));
        if (ok && dist < *best) {
            *best = dist;
            if (x_adv) memcpy(x_adv, e->xa, (size_t)e->d * sizeof *x_adv);
        }
    }
    return FOOLC_OK;
}

typedef struct cls {
    int32_t j;
    double key;       /* the order of the search */
    double lower;     /* lower bound on this class's minimum */
    int done;
} cls;

static int cls_cmp(const void *a, const void *b)
{
    const cls *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key ? 1 : (x->j > y->j) - (x->j < y->j);
}

/* An upper bound of logit_j - logit_label over ball(R) ∩ box from the bounds of the last
 * dense layer's input (tighter than the logits' own intervals); +inf when the last layer
 * is not dense. */
static double ex_gap_ub(ex *e, int32_t j)
{
    const nn_layer *l = &e->net->layers[e->L - 1];
    if (l->kind != &foolc__nn_dense) return INFINITY;
    const int64_t n = l->in.c;
    const double *lo = e->lo[e->L - 1], *hi = e->hi[e->L - 1];
    const float *wj = l->w + (size_t)j * n, *wy = l->w + (size_t)e->label * n;
    double ub = (double)l->b[j] - l->b[e->label], mag = fabs(ub);
    for (int64_t i = 0; i < n; i++) {
        double w = (double)wj[i] - wy[i];
        ub += w > 0 ? w * hi[i] : w * lo[i];
        mag += fabs(w) * fmax(fabs(lo[i]), fabs(hi[i]));
    }
    return ub + 1e-6 * mag + 1e-9;
}

/* Sets row j of the per-class program active (the others free). */
static void ex_only(ex *e, int32_t j)
{
    for (int32_t k = 0; k < e->K; k++)
        if (e->crow[k])
            glp_set_row_bnds(e->P, e->crow[k], k == j ? GLP_LO : GLP_FR, e->margin, 0);
}

static foolc_status ex_rebuild(ex *e, double R, double deadline)
{
    FOOLC__CHECK(ex_bounds(e, R));
    return ex_build(e, R, deadline);
}

/* One program: the target's, or the selector's. */
static foolc_status ex_single(ex *e, double deadline, foolc__exact_out *out, float *x_adv,
                              double *best)
{
    int res;
    double lp = 0, lower;
    ex_cutoff(e, *best);
    FOOLC__CHECK(ex_lp(e, deadline, &res, &lp));
    if (res == 0) {
        out->lower = fmin(*best, e->R);
        return FOOLC_OK;
    }
    if (res < 0) {
        out->lower = 0;
        return FOOLC_OK;
    }
    FOOLC__CHECK(ex_mip(e, deadline, lp, fmin(*best, e->R), &lower, best, x_adv, &out->milps));
    out->lower = fmin(lower, *best);
    return FOOLC_OK;
}

static foolc_status ex_per_class(ex *e, double deadline, foolc__exact_out *out, float *x_adv,
                                 double *best)
{
    const int32_t K = e->K;
    cls *c = foolc__calloc((size_t)K, sizeof *c);
    if (!c) return foolc__nomem("certify exact");
    /* classes by their clean logit gap, the attack's class first: a good cutoff early */
    memcpy(e->xa, e->x, (size_t)e->d * sizeof *e->xa);
    foolc_status st = foolc_net_forward(e->net, e->xa, 1, e->logits);
    int32_t m = 0;
    for (int32_t j = 0; j < K && st >= 0; j++) {
        if (j == e->label) continue;
        c[m].j = j;
        c[m].key = j == e->adv_class ? -INFINITY : (double)e->logits[e->label] - e->logits[j];
        c[m].lower = 0;
        m++;
    }
    if (st >= 0) qsort(c, (size_t)m, sizeof *c, cls_cmp);
    for (int32_t k = 0; k < m && st >= 0; k++) {
        if (c[k].done) continue;
        if (now() >= deadline) break;
        /* a better distance than the program was built for: tighter big-M constants */
        if (*best < 0.8 * e->R) st = ex_rebuild(e, RSLACK(*best), deadline);
        if (st < 0) break;
        /* no point of ball(R) reaches the class: its minimum is above R */
        if (ex_gap_ub(e, c[k].j) < 0) {
            c[k].lower = e->R;
            c[k].done = 1;
            continue;
        }
        double cut = *best * (1 - 0.5 * e->o->rtol);
        int res;
        double lp = 0, lower;
        ex_only(e, c[k].j);
        ex_cutoff(e, cut);
        st = ex_lp(e, deadline, &res, &lp);
        if (st < 0) break;
        if (res == 0) {
            c[k].lower = fmin(cut, e->R);
            c[k].done = 1;
            continue;
        }
        if (res < 0) break;
        if (lp >= cut) {                 /* the relaxation alone proves it */
            c[k].lower = lp;
            c[k].done = 1;
            continue;
        }
        st = ex_mip(e, deadline, lp, fmin(cut, e->R), &lower, best, x_adv, &out->milps);
        if (st < 0) break;
        c[k].lower = fmax(lower, lp);
        c[k].done = 1;
    }
    /* the time ran out: the classes not reached get their LP relaxation as a lower bound,
     * within a grace of a tenth of the limit */
    double grace = deadline + 0.1 * e->o->time_limit;
    for (int32_t k = 0; k < m && st >= 0; k++) {
        if (c[k].done || now() >= grace) continue;
        int res;
        double lp = 0, cut = fmin(*best * (1 - 0.5 * e->o->rtol), e->R);
        ex_only(e, c[k].j);
        ex_cutoff(e, cut);
        st = ex_lp(e, grace, &res, &lp);
        if (st >= 0 && res >= 0) c[k].lower = fmax(c[k].lower, res == 1 ? lp : cut);
    }
    double lo = *best;
    for (int32_t k = 0; k < m; k++)
        if (c[k].lower < lo) lo = c[k].lower;
    out->lower = lo;
    foolc__free(c);
    return st;
}

/* An upper bound to start from: FMN in the norm (misclassification or the target), its
 * point verified here once more. Any failure of the attack only leaves *best alone. */
static foolc_status ex_attack(ex *e, double *best, float *x_adv)
{
    const char *name = e->o->norm == FOOLC_LINF ? "fmn-linf" : "fmn-l1";
    foolc_oracle orc;
    foolc_model *m = NULL;
    foolc_attack *a = NULL;
    foolc_criterion *crit = NULL;
    float dist = INFINITY;
    uint8_t ok = 0;
    foolc_result r = {e->xa, &dist, &ok, NULL};
    foolc_shape s = foolc_net_input(e->net);
    s.n = 1;
    foolc_status st = foolc_net_oracle(e->net, 1, &orc);
    if (st >= 0) st = foolc_model_new(&orc, &m);
    if (st >= 0) st = foolc_attack_new(name, &a);
    if (st >= 0 && e->target >= 0) st = foolc_criterion_new("targeted", &crit);
    if (st >= 0 && crit) st = foolc_attack_set_criterion(a, crit);
    if (st >= 0)
        st = foolc_attack_run(a, m, s, e->x, &e->label, e->target >= 0 ? &e->target : NULL,
                              1, &r);
    if (st >= 0 && ok) {
        st = foolc_net_forward(e->net, e->xa, 1, e->logits);
        if (st >= 0 && ex_is_adv(e) && ex_dist(e, e->xa) < *best) {
            e->adv_class = 0;
            for (int32_t j = 1; j < e->K; j++)
                if (e->logits[j] > e->logits[e->adv_class]) e->adv_class = j;
            *best = ex_dist(e, e->xa);
            if (x_adv) memcpy(x_adv, e->xa, (size_t)e->d * sizeof *x_adv);
        }
    }
    foolc_attack_free(a);
    foolc_criterion_free(crit);
    foolc_model_free(m);
    if (st == FOOLC_E_NOMEM) return st;
    foolc__error_clear();
    return FOOLC_OK;
}

/* Everything GLPK is called from, under its error hook. */
static foolc_status ex_run(ex *e, foolc__exact_out *out, float *x_adv, double t0)
{
    const foolc__exact_opts *o = e->o;
    double deadline = isfinite(o->time_limit) ? t0 + o->time_limit : INFINITY;
    double best = INFINITY;
    double R = isfinite(o->radius) && o->radius > 0 ? RSLACK(o->radius) : INFINITY;
    /* FMN's point: a verified upper end from the start (a hint is only a distance) and,
     * when smaller than the hint or without one, the radius */
    if (!o->no_attack) {
        FOOLC__CHECK(ex_attack(e, &best, x_adv));
        if (isfinite(best) && !(RSLACK(best) >= R)) R = RSLACK(best);
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        FOOLC__CHECK(ex_rebuild(e, R, deadline));
        out->binaries = e->binaries;
        if (e->target >= 0 || o->mode == FOOLC__EXACT_SELECTOR)
            FOOLC__CHECK(ex_single(e, deadline, out, x_adv, &best));
        else
            FOOLC__CHECK(ex_per_class(e, deadline, out, x_adv, &best));
        /* nothing within the caller's radius (a wrong hint): once more over the box */
        if (isfinite(best) || !isfinite(R) || now() >= deadline) break;
        R = INFINITY;
    }
    out->upper = best;
    if (out->lower > best) out->lower = best;
    if (!isfinite(best) && !isfinite(R) && out->lower == INFINITY) out->upper = INFINITY;
    return FOOLC_OK;
}

foolc_status foolc__exact_sample(foolc_net *net, const float *x, int32_t label, int32_t target,
                                 const foolc__exact_opts *o, foolc__exact_out *out,
                                 float *x_adv)
{
    if (!net || !x || !o || !out)
        return foolc__error(FOOLC_E_INVALID, "certify exact: NULL argument");
    memset(out, 0, sizeof *out);
    out->upper = INFINITY;
    if (o->norm != FOOLC_LINF && o->norm != FOOLC_L1)
        return foolc__error(FOOLC_E_UNSUPPORTED,
                            "certify exact: only the Linf and L1 norms (a linear objective), "
                            "not %s", foolc_norm_name(o->norm) ? foolc_norm_name(o->norm) : "?");
    if (!(o->lo < o->hi) || !(o->time_limit > 0) || !(o->rtol >= 0))
        return foolc__error(FOOLC_E_INVALID, "certify exact: bad box, time limit or rtol");
    double t0 = now();
    ex *e = foolc__calloc(1, sizeof *e);
    if (!e) return foolc__nomem("certify exact");
    e->net = net;
    e->o = o;
    e->x = x;
    e->label = label;
    e->target = target;
    e->K = foolc_net_classes(net);
    e->adv_class = -1;
    foolc_status st = ex_alloc(e);
    if (st >= 0 && (label < 0 || label >= e->K || target >= e->K))
        st = foolc__error(FOOLC_E_INVALID, "certify exact: label %d or target %d out of range",
                          (int)label, (int)target);
    if (st >= 0) {
        /* already adversarial: distance 0 */
        memcpy(e->xa, x, (size_t)e->d * sizeof *x);
        st = foolc_net_forward(net, e->xa, 1, e->logits);
        if (st >= 0 && ex_is_adv(e)) {
            out->lower = out->upper = 0;
            out->solved = 1;
            if (x_adv) memcpy(x_adv, x, (size_t)e->d * sizeof *x);
            goto done;
        }
    }
    if (st >= 0) {
        glp_term_out(GLP_OFF);
        glp_error_hook(ex_hook, e);
        if (setjmp(e->jb) == 0) {
            st = ex_run(e, out, x_adv, t0);
            glp_error_hook(NULL, NULL);
            if (e->P) glp_delete_prob(e->P);
            e->P = NULL;
        } else {
            /* GLPK's state is unusable after its error: free this thread's environment */
            glp_error_hook(NULL, NULL);
            e->P = NULL;
            glp_free_env();
            st = foolc__error(FOOLC_E_BACKEND, "certify exact: GLPK reported an internal error");
        }
    }
    if (st >= 0) {
        /* the margin and the nudges of the verification move the point by float steps */
        double tol = 1e-6 + 1e-5 * out->lower;
        out->solved = out->upper <= out->lower * (1 + o->rtol) + tol ||
                      (out->lower == INFINITY && out->upper == INFINITY);
    }
done:
    out->seconds = now() - t0;
    ex_free_arrays(e);
    foolc__free(e);
    return st;
}

/* ---- foolc_certify's entry ---------------------------------------------------------- */

foolc_status foolc__certify_exact(foolc_net *net, const float *x, const int32_t *labels,
                                  const int32_t *targets, int32_t n,
                                  const foolc_certify_opts *o, double *radius, double *upper)
{
    if (o->norm != FOOLC_LINF && o->norm != FOOLC_L1)
        return foolc__error(FOOLC_E_UNSUPPORTED,
                            "certify: method 'exact' solves Linf and L1 (a linear objective), "
                            "not %s", foolc_norm_name(o->norm) ? foolc_norm_name(o->norm) : "?");
    foolc__exact_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.norm = o->norm;
    eo.lo = o->lo;
    eo.hi = o->hi;
    eo.rtol = o->rtol;
    eo.time_limit = o->time_limit;
    eo.mode = FOOLC__EXACT_PER_CLASS;
    eo.crown = FOOLC__EXACT_USE_CROWN;
    const int64_t d = nn_numel(net->in);
    int open = 0;
    for (int32_t i = 0; i < n; i++) {
        foolc__exact_out out;
        eo.radius = o->hint && o->hint[i] > 0 ? o->hint[i] : INFINITY;
        foolc_status st = foolc__exact_sample(net, x + (size_t)i * d, labels[i],
                                              targets ? targets[i] : -1, &eo, &out, NULL);
        if (st < 0) return foolc__error_prefix(st, "sample %d", (int)i);
        radius[i] = out.lower;
        if (upper) upper[i] = out.upper;
        if (!out.solved) {
            open++;
#if FOOLC__EXACT_USE_CROWN
            /* the limit hit: CROWN's certified radius may be the better lower end */
            foolc_certify_opts co = *o;
            double r;
            co.method = FOOLC_CERTIFY_CROWN;
            st = foolc__cert_radius(net, x + (size_t)i * d, labels[i], targets ? targets[i] : -1,
                                    &co, out.upper, &r);
            if (st == FOOLC_E_NOMEM) return st;
            if (st >= 0 && r > radius[i]) radius[i] = fmin(r, out.upper);
            foolc__error_clear();
#endif
        }
    }
    if (open) {
        foolc__error(FOOLC_NOT_FOUND, "certify: method 'exact' hit its time limit on %d of %d "
                     "samples (each [radius, upper] stays open: the larger of the solver's bound and "
                     "CROWN's radius, and the best verified adversarial)", open, (int)n);
        return FOOLC_NOT_FOUND;
    }
    return FOOLC_OK;
}
