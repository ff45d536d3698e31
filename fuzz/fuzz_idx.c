/* libFuzzer target: the IDX parser (plain or gzipped) on arbitrary bytes. */
#include "internal.h"
#include "data/data_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    foolc_array a;
    if (foolc__idx_read_mem(data, size, &a) == FOOLC_OK) {
        if (foolc_array_count(&a) < 0) __builtin_trap();
        foolc_free(a.data);
    }
    return 0;
}
