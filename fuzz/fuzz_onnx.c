/* libFuzzer target: the ONNX importer (lib/onnx/) on arbitrary bytes: protobuf-c's parse
 * under the importer's caps, tensor decoding, folding, the mapping to graph ops and the
 * engine's constructor. A model that loads must run a forward pass and an input gradient
 * without crashing (finite or not). Large models are skipped to keep executions fast.
 * Seeds: fuzz/corpus/onnx/ (the test models of tests/data/onnx/). */
#include "internal.h"
#include "onnx/onnx.h"

#include <stdlib.h>

static int seed(void *user, const float *logits, int32_t n, int32_t k, float *dl)
{
    (void)user;
    (void)logits;
    for (int64_t i = 0; i < (int64_t)n * k; i++) dl[i] = (float)(i % 3) - 1.0f;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    foolc_net *net = NULL;
    if (foolc__onnx_load_mem(data, size, "fuzz.onnx", &net) != FOOLC_OK) return 0;
    foolc_shape in = foolc_net_input(net);
    size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    int32_t k = foolc_net_classes(net);
    if (d <= 4096 && k <= 1024 && foolc_net_flops(net) < 1e7) {
        float *x = calloc(2 * d, sizeof *x), *dx = calloc(2 * d, sizeof *dx);
        float *logits = calloc(2 * (size_t)k, sizeof *logits);
        if (x && dx && logits) {
            for (size_t i = 0; i < 2 * d; i++) x[i] = (float)(i % 7) / 7.0f;
            (void)foolc_net_forward(net, x, 2, logits);
            (void)foolc_net_grad(net, x, 2, seed, NULL, logits, dx, NULL);
        }
        free(x);
        free(dx);
        free(logits);
    }
    foolc_net_free(net);
    return 0;
}
