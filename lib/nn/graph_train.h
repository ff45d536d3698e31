/* Training passes with batch statistics (graph_train.c): what lib/nn/train.c runs for a
 * net with batchnorm. */
#ifndef FOOLC_NN_GRAPH_TRAIN_H
#define FOOLC_NN_GRAPH_TRAIN_H

#include "nn/nn.h"

struct nn_gnode;
typedef struct nn_gtrain nn_gtrain;

/* Whether net (graph or sequential) has a batchnorm. */
int foolc__nn_has_batchnorm(const foolc_net *net);
/* The state of passes of at most cap images on net (a sequential net gets its graph twin). */
foolc_status foolc__nn_gtrain_new(foolc_net *net, int32_t cap, nn_gtrain **out);
void foolc__nn_gtrain_free(nn_gtrain *c);
/* One training pass on n images: forward with batch statistics (a NaN or Inf reached is
 * FOOLC_E_NONFINITE naming the line and the sample), seed (called once), backward into
 * dparams (accumulated; the net's flat parameter layout). Running statistics are not
 * touched. */
foolc_status foolc__nn_gtrain_pass(nn_gtrain *c, const float *x, int32_t n, foolc_seed_fn seed,
                                   void *seed_user, float *dparams);
/* The last pass's logits (n x classes). */
const float *foolc__nn_gtrain_logits(const nn_gtrain *c);
/* After an accepted step: each batchnorm's running mean and variance move towards the last
 * pass's batch statistics (momentum 0.1, the variance unbiased); the caller bumps pver. */
void foolc__nn_gtrain_commit(nn_gtrain *c);

/* The batchnorm rules with batch statistics (node nd, input shape in, n images): forward
 * writes y and the per-channel batch mean, biased variance and 1/sqrt(var + eps); backward
 * adds into dx (may be NULL), dw and db (may be NULL). fast: float per element; else double. */
void foolc__nn_bn_train_forward(const struct nn_gnode *nd, nn_dims in, int fast, int32_t n,
                                const float *x, float *y, double *bmean, double *bvar,
                                double *binv);
void foolc__nn_bn_train_backward(const struct nn_gnode *nd, nn_dims in, int fast, int32_t n,
                                 const float *x, const float *dy, float *dx, float *dw,
                                 float *db, const double *bmean, const double *binv);

#endif
