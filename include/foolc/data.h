/* Data: IDX (plain or gzipped) and NPZ (stored or deflated members) readers and writers on
 * zlib, and data sets by name (Fashion-MNIST from Debian's dataset-fashion-mnist). */
#ifndef FOOLC_DATA_H
#define FOOLC_DATA_H

#include "common.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types of arrays in files. Values only grow. */
typedef enum foolc_dtype {
    FOOLC_U8 = 0, FOOLC_I8, FOOLC_I16, FOOLC_I32, FOOLC_I64, FOOLC_F32, FOOLC_F64,
    FOOLC_U16, FOOLC_U32, FOOLC_U64, FOOLC_BOOL,
    FOOLC_DTYPE_COUNT
} foolc_dtype;

#define FOOLC_MAX_DIMS 8

/* A dense, C-ordered (row-major), little-endian-in-memory array. Who owns data is said
 * by the function that hands the array out. ndim 0 is a scalar of one element.
 * Frozen layout: like struct iovec, this descriptor never grows (the library asserts its
 * layout at compile time, lib/abi.c); more about an array would come through new functions,
 * so programs built against any 0.x header and any 0.x library agree on it. */
typedef struct foolc_array {
    foolc_dtype dtype;
    int32_t ndim;
    int64_t shape[FOOLC_MAX_DIMS];
    void *data;
} foolc_array;

/* Bytes per element (0 for an invalid dtype) and elements in an array (product of the
 * shape; -1 on overflow or a negative extent). */
FOOLC_API size_t foolc_dtype_size(foolc_dtype t);
FOOLC_API int64_t foolc_array_count(const foolc_array *a);

/* Reads an IDX file (gzip detected by its magic bytes). On success out->data is allocated
 * by the library: release it with foolc_free. Errors: FOOLC_E_IO, FOOLC_E_FORMAT (bad
 * magic, unknown type code, truncated data, trailing bytes, absurd sizes), FOOLC_E_NOMEM. */
FOOLC_API FOOLC_WUR foolc_status foolc_idx_read(const char *path, foolc_array *out);
/* Writes an IDX file, gzipped when gzip is non-zero. dtype must be one IDX can hold
 * (U8, I8, I16, I32, F32, F64). */
FOOLC_API FOOLC_WUR foolc_status foolc_idx_write(const char *path, const foolc_array *a,
                                                 int gzip);

/* An NPZ archive held in memory: named arrays, in the order they were read or added. */
typedef struct foolc_npz foolc_npz;

FOOLC_API FOOLC_WUR foolc_status foolc_npz_new(foolc_npz **out);
/* Reads a .npz (zip of .npy members, stored or deflated; ".npy" is dropped from names).
 * Big-endian data comes back in the host's order, Fortran-order arrays in C order, and a
 * string array ('<U', '|S') holding one string as a 1-d FOOLC_U8 array of its UTF-8 bytes
 * (trailing NULs dropped; not NUL-terminated). Errors: FOOLC_E_IO, FOOLC_E_FORMAT (bad zip,
 * CRC or .npy header, unsupported dtype, duplicate names), FOOLC_E_NOMEM. */
FOOLC_API FOOLC_WUR foolc_status foolc_npz_read(const char *path, foolc_npz **out);
/* The same from a buffer in memory (len bytes; the buffer is not kept). */
FOOLC_API FOOLC_WUR foolc_status foolc_npz_read_mem(const void *buf, size_t len,
                                                    foolc_npz **out);
FOOLC_API void foolc_npz_free(foolc_npz *z);
FOOLC_API int32_t foolc_npz_count(const foolc_npz *z);
/* The i-th name, or NULL out of range; owned by z. */
FOOLC_API const char *foolc_npz_name(const foolc_npz *z, int32_t i);
/* The array named name, or NULL when absent; owned by z, valid until z is freed. */
FOOLC_API const foolc_array *foolc_npz_get(const foolc_npz *z, const char *name);
/* Adds (or replaces) a copy of a under name. */
FOOLC_API FOOLC_WUR foolc_status foolc_npz_add(foolc_npz *z, const char *name,
                                               const foolc_array *a);
/* Writes the archive; members deflated when compress is non-zero. numpy.load reads it. */
FOOLC_API FOOLC_WUR foolc_status foolc_npz_write(const foolc_npz *z, const char *path,
                                                 int compress);

/* A labelled image data set in memory: x holds shape.n*c*h*w floats scaled to [0, 1],
 * y holds shape.n labels in [0, n_classes). Frozen layout, like foolc_array. */
typedef struct foolc_data {
    foolc_shape shape;
    int32_t n_classes;
    float *x;
    int32_t *y;
} foolc_data;

/* Loads a data set. spec: NULL or "fashion-mnist" (the files of Debian's
 * dataset-fashion-mnist under /usr/share/datasets/fashion-mnist/, or the directory named by
 * the environment variable FOOLC_FASHION_MNIST_DIR), a directory holding the four
 * MNIST-style IDX files (plain or .gz), or an .npz file with arrays "x" (N,H,W or N,C,H,W;
 * uint8 scaled by 1/255, or float32 used as is) and "y" (integer labels).
 * split: "train" or "test" (NULL means "test"; ignored for .npz). Release with
 * foolc_data_free. See docs/data.md. */
FOOLC_API FOOLC_WUR foolc_status foolc_data_load(const char *spec, const char *split,
                                                 foolc_data *out);
/* Frees x and y and zeroes the struct; NULL is a no-op. */
FOOLC_API void foolc_data_free(foolc_data *d);

#ifdef __cplusplus
}
#endif
#endif
