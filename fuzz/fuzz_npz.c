/* libFuzzer target: the NPZ reader (zip structure, deflate, npy headers) on arbitrary bytes.
 * Every member that loads must have a consistent shape and size. */
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    foolc_npz *z = NULL;
    if (foolc_npz_read_mem(data, size, &z) == FOOLC_OK) {
        for (int32_t i = 0; i < foolc_npz_count(z); i++) {
            const foolc_array *a = foolc_npz_get(z, foolc_npz_name(z, i));
            if (!a || foolc_array_count(a) < 0) __builtin_trap();
        }
        foolc_npz_free(z);
    } else if (z) {
        __builtin_trap();   /* a failed read must not hand out an archive */
    }
    return 0;
}
