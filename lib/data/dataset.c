/* Data sets by name: Fashion-MNIST (Debian's dataset-fashion-mnist, or any directory of
 * MNIST-style IDX files) and NPZ files holding "x" and "y", turned into float32 NCHW images
 * in [0, 1] and int32 labels. */
#include "data_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define MAX_CLASSES ((int64_t)1 << 20)

void foolc_data_free(foolc_data *d)
{
    if (!d) return;
    foolc__free(d->x);
    foolc__free(d->y);
    memset(d, 0, sizeof *d);
}

static int is_int_dtype(foolc_dtype t)
{
    return t == FOOLC_U8 || t == FOOLC_I8 || t == FOOLC_I16 || t == FOOLC_I32 ||
           t == FOOLC_I64 || t == FOOLC_U16 || t == FOOLC_U32 || t == FOOLC_U64;
}

static int64_t label_at(const foolc_array *y, int64_t i)
{
    const void *p = y->data;
    switch (y->dtype) {
    case FOOLC_U8: return ((const uint8_t *)p)[i];
    case FOOLC_I8: return ((const int8_t *)p)[i];
    case FOOLC_I16: return ((const int16_t *)p)[i];
    case FOOLC_I32: return ((const int32_t *)p)[i];
    case FOOLC_I64: return ((const int64_t *)p)[i];
    case FOOLC_U16: return ((const uint16_t *)p)[i];
    case FOOLC_U32: return ((const uint32_t *)p)[i];
    case FOOLC_U64: {
        uint64_t v = ((const uint64_t *)p)[i];
        return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
    }
    default: return -1;
    }
}

/* The checks of x and y that need only their dtypes and shapes (made before either is
 * read, so that "200000 images but 50 labels" costs no inflating of 200000 images). */
static foolc_status check_shapes(const foolc_array *x, const foolc_array *y, const char *src)
{
    if (x->ndim != 3 && x->ndim != 4)
        return foolc__error(FOOLC_E_FORMAT, "data '%s': images must be (N,H,W) or "
                            "(N,C,H,W), got %d dimensions", src, (int)x->ndim);
    if (x->dtype != FOOLC_U8 && x->dtype != FOOLC_F32)
        return foolc__error(FOOLC_E_FORMAT, "data '%s': images must be uint8 or float32, "
                            "got %s", src, foolc__dtype_name(x->dtype));
    int64_t n = x->shape[0], c = x->ndim == 4 ? x->shape[1] : 1;
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    if (n < 1 || c < 1 || h < 1 || w < 1 || n > INT32_MAX || c > INT32_MAX ||
        h > INT32_MAX / c || w > INT32_MAX / (c * h))
        return foolc__error(FOOLC_E_FORMAT, "data '%s': bad image shape (%lld, %lld, %lld, "
                            "%lld)", src, (long long)n, (long long)c, (long long)h,
                            (long long)w);
    if (!is_int_dtype(y->dtype) || y->ndim != 1)
        return foolc__error(FOOLC_E_FORMAT, "data '%s': labels must be a 1-d integer array, "
                            "got %d-d %s", src, (int)y->ndim, foolc__dtype_name(y->dtype));
    if (y->shape[0] != n)
        return foolc__error(FOOLC_E_FORMAT, "data '%s': %lld images but %lld labels", src,
                            (long long)n, (long long)y->shape[0]);
    return FOOLC_OK;
}

/* Checks x and y and converts them into out. src names the data in messages. */
static foolc_status convert(const foolc_array *x, const foolc_array *y, const char *src,
                            foolc_data *out)
{
    FOOLC__CHECK(check_shapes(x, y, src));
    int64_t n = x->shape[0], c = x->ndim == 4 ? x->shape[1] : 1;
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    int64_t maxl = 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t l = label_at(y, i);
        if (l < 0 || l >= MAX_CLASSES)
            return foolc__error(FOOLC_E_FORMAT, "data '%s': label %lld of sample %lld is "
                                "outside [0, %lld)", src, (long long)l, (long long)i,
                                (long long)MAX_CLASSES);
        if (l > maxl) maxl = l;
    }
    size_t d = (size_t)(c * h * w), count = foolc__mul((size_t)n, d);
    if (x->dtype == FOOLC_F32) {
        const float *v = x->data;
        for (size_t i = 0; i < count; i++)
            if (!(v[i] >= 0.0f && v[i] <= 1.0f))
                return foolc__error(FOOLC_E_FORMAT, "data '%s': float image value %g of "
                                    "sample %zu is outside [0, 1]", src, (double)v[i], i / d);
    }
    float *fx = foolc__malloc_big(foolc__mul(count, sizeof *fx));
    int32_t *iy = foolc__malloc(foolc__mul((size_t)n, sizeof *iy));
    if (!fx || !iy) {
        foolc__free(fx);
        foolc__free(iy);
        return foolc__error(FOOLC_E_NOMEM, "data '%s': out of memory for %lld images", src,
                            (long long)n);
    }
    if (x->dtype == FOOLC_U8) {
        const uint8_t *v = x->data;
        float lut[256]; /* the same values as v / 255.0f, without a division each */
        for (int k = 0; k < 256; k++) lut[k] = (float)k / 255.0f;
        for (size_t i = 0; i < count; i++) fx[i] = lut[v[i]];
    } else {
        memcpy(fx, x->data, count * sizeof *fx);
    }
    for (int64_t i = 0; i < n; i++) iy[i] = (int32_t)label_at(y, i);
    out->shape.n = (int32_t)n;
    out->shape.c = (int32_t)c;
    out->shape.h = (int32_t)h;
    out->shape.w = (int32_t)w;
    out->n_classes = (int32_t)(maxl + 1);
    out->x = fx;
    out->y = iy;
    return FOOLC_OK;
}

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Finds <dir>/<prefix>-<kind>-ubyte with '-' or '.' before <kind>'s "idxN", plain or .gz. */
static foolc_status find_idx(const char *dir, const char *prefix, const char *kind,
                             const char *src, char *path, size_t cap)
{
    static const char *const forms[] = { "%s/%s-%s-%s-ubyte", "%s/%s-%s-%s-ubyte.gz",
                                         "%s/%s-%s.%s-ubyte", "%s/%s-%s.%s-ubyte.gz" };
    const char *what = strcmp(kind, "images") == 0 ? "idx3" : "idx1";
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        int k = snprintf(path, cap, forms[i], dir, prefix, kind, what);
        if (k < 0 || (size_t)k >= cap)
            return foolc__error(FOOLC_E_INVALID, "data '%s': directory name too long", src);
        if (is_file(path)) return FOOLC_OK;
    }
    return foolc__error(FOOLC_E_IO, "data '%s': no %s-%s-%s-ubyte[.gz] in '%s'%s", src,
                        prefix, kind, what, dir,
                        strcmp(src, "fashion-mnist") == 0
                            ? " (install Debian's dataset-fashion-mnist or set "
                              "FOOLC_FASHION_MNIST_DIR)" : "");
}

static foolc_status load_dir(const char *dir, const char *prefix, const char *src,
                             foolc_data *out)
{
    char px[4096], py[4096];
    FOOLC__CHECK(find_idx(dir, prefix, "images", src, px, sizeof px));
    FOOLC__CHECK(find_idx(dir, prefix, "labels", src, py, sizeof py));
    foolc_array x, y;
    /* Both headers first: shapes that disagree are refused before any data is read. */
    foolc_status st = foolc__idx_read_header(px, &x);
    if (st == FOOLC_OK) st = foolc__idx_read_header(py, &y);
    if (st < 0) return foolc__error_prefix(st, "data '%s'", src);
    FOOLC__CHECK(check_shapes(&x, &y, src));
    st = foolc_idx_read(px, &x);
    if (st < 0) return foolc__error_prefix(st, "data '%s'", src);
    st = foolc_idx_read(py, &y);
    if (st < 0) {
        foolc__array_clear(&x);
        return foolc__error_prefix(st, "data '%s'", src);
    }
    st = convert(&x, &y, src, out);
    foolc__array_clear(&x);
    foolc__array_clear(&y);
    return st;
}

/* The archive's members x and y, checked by their headers before anything is inflated. */
typedef struct npz_look {
    const char *path;
    int refused;              /* the message is already the data set's */
} npz_look;

static foolc_status npz_shapes(void *user, const foolc_npz *z)
{
    npz_look *k = user;
    const foolc_array *x = foolc_npz_get(z, "x"), *y = foolc_npz_get(z, "y");
    foolc_status st = !x || !y ? foolc__error(FOOLC_E_FORMAT, "data '%s': the archive has no "
                                              "array '%s'", k->path, x ? "y" : "x")
                               : check_shapes(x, y, k->path);
    k->refused = st < 0;
    return st;
}

static foolc_status load_npz(const char *path, foolc_data *out)
{
    foolc_npz *z;
    npz_look look = { path, 0 };
    foolc_status st = foolc__npz_read_checked(path, npz_shapes, &look, &z);
    if (st < 0) return look.refused ? st : foolc__error_prefix(st, "data '%s'", path);
    st = convert(foolc_npz_get(z, "x"), foolc_npz_get(z, "y"), path, out);
    foolc_npz_free(z);
    return st;
}

static foolc_status bad_split(const char *src, const char *split)
{
    return foolc__error(FOOLC_E_INVALID, "data '%s': split must be \"train\" or \"test\", "
                        "got \"%s\"", src, split);
}

foolc_status foolc_data_load(const char *spec, const char *split, foolc_data *out)
{
    foolc__error_clear();
    if (!out) return foolc__error(FOOLC_E_INVALID, "data_load: out is NULL");
    memset(out, 0, sizeof *out);
    const char *prefix = NULL; /* of the IDX file names; NULL for a bad split */
    if (!split || strcmp(split, "test") == 0 || strcmp(split, "t10k") == 0) prefix = "t10k";
    else if (strcmp(split, "train") == 0) prefix = "train";
    if (!spec || strcmp(spec, "fashion-mnist") == 0) {
        const char *dir = getenv("FOOLC_FASHION_MNIST_DIR");
        if (!prefix) return bad_split("fashion-mnist", split);
        return load_dir(dir && *dir ? dir : DEFAULT_DIR, prefix, "fashion-mnist", out);
    }
    struct stat sb;
    if (stat(spec, &sb) != 0) {
        int e = errno;
        if (e == ENOENT && !strchr(spec, '/') && !strchr(spec, '.'))
            return foolc__error(FOOLC_E_INVALID, "data '%s': not a known data set "
                                "(fashion-mnist), a directory or an .npz file", spec);
        return foolc__error(FOOLC_E_IO, "data '%s': %s", spec, strerror(e));
    }
    if (S_ISDIR(sb.st_mode))
        return prefix ? load_dir(spec, prefix, spec, out) : bad_split(spec, split);
    return load_npz(spec, out);
}
