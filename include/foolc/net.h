/* The built-in network engine: sequential networks on oneDNN (convolution, pooling) and
 * OpenBLAS (dense layers), with a plain-C reference path, input and weight gradients, NPZ
 * model files with PyTorch names and layouts, and Adam training. */
#ifndef FOOLC_NET_H
#define FOOLC_NET_H

#include "common.h"
#include "data.h"
#include "oracle.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct foolc_net foolc_net;

/* An architecture is a text of layers separated by ';' or newlines, each a name and
 * key=value options; the first is the input:
 *   "input c=1 h=28 w=28; conv2d out=32 k=3 s=1 p=1; relu; maxpool2d k=2 s=2;
 *    conv2d out=64 k=3 p=1; relu; maxpool2d k=2; flatten; dense out=128; relu; dense out=10"
 * Layers: conv2d (out, k, s=1, p=0), dense (out), relu, maxpool2d (k, s=k, p=0),
 * avgpool2d (k, s=k, p=0), flatten, batchnorm (eps=1e-5), softmax.
 * Layer i (counting from 0 after the input) keeps its weights under PyTorch's names for
 * nn.Sequential: "i.weight", "i.bias" (conv OIHW, dense (out, in)); batchnorm also
 * "i.running_mean", "i.running_var". */

/* The architecture text of a named preset, or NULL for an unknown name: "cnn" (the reference
 * CNN, two conv/pool stages and two dense layers), "mlp" (784-256-256-10) and "resnet" (a
 * graph net: a 32-channel stem and max pool, an identity residual block at 14x14, a block
 * down to 64 channels at 7x7 with a 1x1 projection shortcut, batchnorm after every
 * convolution, flatten, dense); all for 1x28x28 inputs and 10 classes. `foolc train --arch`
 * takes these names. The text is static: do not free it. */
FOOLC_API const char *foolc_net_preset(const char *name);

/* A new net with weights drawn for the seed (Kaiming-uniform, as PyTorch's defaults).
 * Errors: FOOLC_E_INVALID with the offending layer and option named, FOOLC_E_NOMEM. */
FOOLC_API FOOLC_WUR foolc_status foolc_net_new(const char *arch, uint64_t seed,
                                               foolc_net **out);
/* Loads an NPZ model: member "arch" (the architecture text as a uint8 array, or a numpy
 * string scalar), the weights by name, optional "bounds" (2 floats, default [0, 1]).
 * Errors: FOOLC_E_IO, FOOLC_E_FORMAT (missing or misshapen weight, bad arch), ... */
FOOLC_API FOOLC_WUR foolc_status foolc_net_load(const char *path, foolc_net **out);
FOOLC_API FOOLC_WUR foolc_status foolc_net_save(const foolc_net *net, const char *path);
/* Builds a net from an NPZ archive already in memory (same members as foolc_net_load). */
FOOLC_API FOOLC_WUR foolc_status foolc_net_from_npz(const foolc_npz *z, foolc_net **out);
FOOLC_API void foolc_net_free(foolc_net *net);

/* The canonical architecture text (owned by net), the input shape (n = 0) and classes. */
FOOLC_API const char *foolc_net_arch(const foolc_net *net);
FOOLC_API foolc_shape foolc_net_input(const foolc_net *net);
FOOLC_API int32_t foolc_net_classes(const foolc_net *net);
FOOLC_API void foolc_net_bounds(const foolc_net *net, float *lo, float *hi);
/* Sets the valid input range [lo, hi] (finite, lo < hi; else FOOLC_E_INVALID, the net
 * unchanged): for models whose file does not carry it (ONNX; docs/onnx.md). Oracles filled
 * before keep the bounds they were given. Saved with the net (NPZ member "bounds"). */
FOOLC_API FOOLC_WUR foolc_status foolc_net_set_bounds(foolc_net *net, float lo, float hi);
/* The layers after the input (sequential layers, or the lines of a graph text): their
 * number, and layer i's name (a graph line's output tensor; NULL for a sequential layer,
 * whose name is its index), op ("conv2d", ...) and output shape (n = 1). Pointers are owned
 * by net. FOOLC_E_INVALID for i out of range. */
FOOLC_API int32_t foolc_net_layer_count(const foolc_net *net);
FOOLC_API FOOLC_WUR foolc_status foolc_net_layer(const foolc_net *net, int32_t i,
                                                 const char **name, const char **op,
                                                 foolc_shape *out);
/* Multiply-adds of one forward pass of one image, times two (FLOPs). */
FOOLC_API double foolc_net_flops(const foolc_net *net);

/* Trainable parameters: their number, and a copy out of or into a flat array in layer
 * order (weight then bias, then running statistics are not included). set_params refuses
 * NaN or Inf (FOOLC_E_INVALID, the net unchanged). */
FOOLC_API int64_t foolc_net_param_count(const foolc_net *net);
FOOLC_API FOOLC_WUR foolc_status foolc_net_get_params(const foolc_net *net, float *out);
FOOLC_API FOOLC_WUR foolc_status foolc_net_set_params(foolc_net *net, const float *in);

typedef enum foolc_backend {
    FOOLC_BACKEND_FAST = 0,      /* oneDNN for conv/pool, OpenBLAS sgemm for dense */
    FOOLC_BACKEND_REFERENCE = 1, /* plain C loops, for tests */
    FOOLC_BACKEND_COUNT
} foolc_backend;
FOOLC_API FOOLC_WUR foolc_status foolc_net_set_backend(foolc_net *net, foolc_backend b);

/* Logits for n images (any n >= 1). A NaN/Inf input or an overflow anywhere in the net is
 * FOOLC_E_NONFINITE naming the layer and sample (its logits NaN), never finite garbage. */
FOOLC_API FOOLC_WUR foolc_status foolc_net_forward(foolc_net *net, const float *x, int32_t n,
                                                   float *logits);
/* One forward and one backward pass: logits (may be NULL), then seed(logits) as
 * d(loss)/d(logits), and the input gradient dx (n*c*h*w, may be NULL) and the parameter
 * gradient dparams (param_count floats, summed over the batch, may be NULL). */
FOOLC_API FOOLC_WUR foolc_status foolc_net_grad(foolc_net *net, const float *x, int32_t n,
                                                foolc_seed_fn seed, void *seed_user,
                                                float *logits, float *dx, float *dparams);

/* Fills an oracle whose user is net (borrowed): scores and value_and_grad, decision NULL
 * (derived), the net's input shape with n = max_batch, its classes and bounds. */
FOOLC_API FOOLC_WUR foolc_status foolc_net_oracle(foolc_net *net, int32_t max_batch,
                                                  foolc_oracle *out);

/* Training options; foolc_train_defaults fills sensible values. */
typedef struct foolc_train_opts {
    int32_t epochs;        /* default 5 */
    int32_t batch;         /* default 128 */
    double lr;             /* Adam learning rate, default 1e-3 */
    double beta1, beta2;   /* default 0.9, 0.999 */
    double eps;            /* default 1e-8 */
    double weight_decay;   /* L2 on weights, default 0 */
    uint64_t seed;         /* shuffling; the same seed gives the same weights */
    double temperature;    /* the loss is the cross-entropy of softmax(logits / T), default
                            * 1; a net trained at T = 100 and used as it is (T = 1) is
                            * defensive distillation's, whose softmax saturates */
    /* PGD adversarial training (Madry et al., arXiv:1706.06083), Linf: with adv_eps > 0
     * every minibatch is replaced by PGD points within adv_eps of its images (in the
     * net's bounds): a uniform random start keyed by (seed, epoch, image index), then
     * adv_steps signed-gradient steps of adv_step on the training loss, each projected. */
    double adv_eps;        /* default 0: plain training */
    int32_t adv_steps;     /* default 7 */
    double adv_step;       /* default 0: 2.5 * adv_eps / adv_steps */
} foolc_train_opts;
FOOLC_API void foolc_train_defaults(foolc_train_opts *o);
/* foolc_train_defaults and foolc_net_train are macros that pass sizeof(foolc_train_opts)
 * to their _sized forms (as zlib's deflateInit passes sizeof(z_stream)): options that a
 * later version adds keep their defaults for programs built against this header, and a
 * library older than the header refuses the call (FOOLC_E_VERSION) instead of reading past
 * the caller's struct. The plain functions (for other languages) take this header's
 * struct. */
FOOLC_API foolc_status foolc_train_defaults_sized(foolc_train_opts *o, size_t size);
#define foolc_train_defaults(o) ((void)foolc_train_defaults_sized((o), sizeof(foolc_train_opts)))

/* Trains with Adam on softmax cross-entropy over the data set (its shape must match the
 * net's input). progress (may be NULL) is called with images done and images in all;
 * non-zero stops with FOOLC_E_CANCELLED. loss_out (may be NULL): last epoch's mean loss. */
FOOLC_API FOOLC_WUR foolc_status foolc_net_train(foolc_net *net, const foolc_data *train,
                                                 const foolc_train_opts *o,
                                                 foolc_progress_fn progress, void *user,
                                                 double *loss_out);
FOOLC_API FOOLC_WUR foolc_status foolc_net_train_sized(foolc_net *net, const foolc_data *train,
                                                       const foolc_train_opts *o, size_t o_size,
                                                       foolc_progress_fn progress, void *user,
                                                       double *loss_out);
#define foolc_net_train(net, train, o, progress, user, loss_out)                              \
    foolc_net_train_sized((net), (train), (o), sizeof(foolc_train_opts), (progress), (user), \
                          (loss_out))
/* The fraction of the n images whose argmax logit equals the label. */
FOOLC_API FOOLC_WUR foolc_status foolc_net_accuracy(foolc_net *net, const float *x,
                                                    const int32_t *y, int32_t n,
                                                    double *acc);

#ifdef __cplusplus
}
#endif
#endif
