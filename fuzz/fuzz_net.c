/* libFuzzer target: the model loader (architecture text, weight names and shapes) on an
 * arbitrary NPZ; a model that loads must run a forward pass with finite-or-not logits but
 * without crashing. Large models are skipped to keep executions fast. */
#include "internal.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    foolc_npz *z = NULL;
    if (foolc_npz_read_mem(data, size, &z) != FOOLC_OK) return 0;
    foolc_net *net = NULL;
    if (foolc_net_from_npz(z, &net) == FOOLC_OK) {
        foolc_shape in = foolc_net_input(net);
        size_t d = (size_t)in.c * (size_t)in.h * (size_t)in.w;
        int32_t k = foolc_net_classes(net);
        if (d <= 4096 && k <= 1024 && foolc_net_flops(net) < 1e7) {
            float *x = calloc(d, sizeof *x), *logits = calloc((size_t)k, sizeof *logits);
            if (x && logits) (void)foolc_net_forward(net, x, 1, logits);
            free(x);
            free(logits);
        }
        foolc_net_free(net);
    }
    foolc_npz_free(z);
    return 0;
}
