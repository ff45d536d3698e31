/* Arrays of the data layer: element sizes and counts, validation, copies and byte-order
 * swaps shared by the IDX and NPZ code. */
#include "data_impl.h"

#include <string.h>

size_t foolc_dtype_size(foolc_dtype t)
{
    switch (t) {
    case FOOLC_U8: case FOOLC_I8: case FOOLC_BOOL: return 1;
    case FOOLC_I16: case FOOLC_U16: return 2;
    case FOOLC_I32: case FOOLC_U32: case FOOLC_F32: return 4;
    case FOOLC_I64: case FOOLC_U64: case FOOLC_F64: return 8;
    case FOOLC_DTYPE_COUNT: break;
    }
    return 0;
}

const char *foolc__dtype_name(foolc_dtype t)
{
    static const char *const names[FOOLC_DTYPE_COUNT] = {
        "uint8", "int8", "int16", "int32", "int64", "float32", "float64",
        "uint16", "uint32", "uint64", "bool",
    };
    return (unsigned)t < FOOLC_DTYPE_COUNT ? names[t] : "invalid";
}

int64_t foolc_array_count(const foolc_array *a)
{
    if (!a || a->ndim < 0 || a->ndim > FOOLC_MAX_DIMS) return -1;
    int64_t n = 1;
    for (int32_t i = 0; i < a->ndim; i++) {
        int64_t d = a->shape[i];
        if (d < 0) return -1;
        if (d != 0 && n > INT64_MAX / d) return -1;
        n *= d;
    }
    return n;
}

int64_t foolc__array_bytes(const foolc_array *a)
{
    if (!a) return -1;
    size_t es = foolc_dtype_size(a->dtype);
    int64_t n = foolc_array_count(a);
    if (es == 0 || n < 0 || n > INT64_MAX / (int64_t)es) return -1;
    return n * (int64_t)es;
}

int foolc__host_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

void foolc__swap(void *p, size_t count, size_t size)
{
    unsigned char *b = p;
    if (size < 2) return;
    for (size_t i = 0; i < count; i++, b += size)
        for (size_t lo = 0, hi = size - 1; lo < hi; lo++, hi--) {
            unsigned char t = b[lo];
            b[lo] = b[hi];
            b[hi] = t;
        }
}

void foolc__array_clear(foolc_array *a)
{
    if (!a) return;
    foolc__free(a->data);
    memset(a, 0, sizeof *a);
}

foolc_status foolc__array_copy(const foolc_array *a, foolc_array *out, const char *ctx)
{
    int64_t bytes = foolc__array_bytes(a);
    if (bytes < 0)
        return foolc__error(FOOLC_E_INVALID, "%s: invalid array (dtype %d, ndim %d, or a "
                            "negative or overflowing shape)", ctx, a ? (int)a->dtype : -1,
                            a ? (int)a->ndim : -1);
    if (bytes > 0 && !a->data)
        return foolc__error(FOOLC_E_INVALID, "%s: array data is NULL", ctx);
    if ((uint64_t)bytes >= SIZE_MAX) return foolc__nomem("an array copy");
    void *d = foolc__malloc((size_t)bytes);
    if (!d) return foolc__error(FOOLC_E_NOMEM, "%s: out of memory copying %lld bytes", ctx,
                                (long long)bytes);
    if (bytes > 0) memcpy(d, a->data, (size_t)bytes);
    memset(out, 0, sizeof *out);
    out->dtype = a->dtype;
    out->ndim = a->ndim;
    for (int32_t i = 0; i < a->ndim; i++) out->shape[i] = a->shape[i];
    out->data = d;
    return FOOLC_OK;
}
