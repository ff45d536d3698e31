/* IDX files (the MNIST format): a big-endian header and big-endian data, plain or gzipped
 * (detected by the 1f 8b magic), read into native-order arrays and written from them. */
#include "data_impl.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define DEFLATE_MAX_RATIO 1032u

static const struct {
    unsigned char code;
    foolc_dtype dtype;
} k_types[] = {
    { 0x08, FOOLC_U8 }, { 0x09, FOOLC_I8 }, { 0x0B, FOOLC_I16 },
    { 0x0C, FOOLC_I32 }, { 0x0D, FOOLC_F32 }, { 0x0E, FOOLC_F64 },
};

/* in_size: the bytes of input (compressed or not), or UINT64_MAX when unknown. head_only:
 * stop after the header and its size checks (out gets dtype and shape, data NULL). */
static foolc_status parse(foolc__src *s, uint64_t in_size, int head_only, foolc_array *out)
{
    unsigned char h[4 + 4 * FOOLC_MAX_DIMS];
    size_t got;
    FOOLC__CHECK(foolc__src_peek(s, h, 2, &got));
    int gz = got == 2 && h[0] == 0x1f && h[1] == 0x8b;
    s->z = gz ? FOOLC__Z_GZIP : FOOLC__Z_NONE;
    FOOLC__CHECK(foolc__src_need(s, h, 4, "the IDX magic"));
    if (h[0] != 0 || h[1] != 0)
        return foolc__error(FOOLC_E_FORMAT, "not an IDX file (magic %02x %02x, expected "
                            "00 00)", h[0], h[1]);
    foolc_array a;
    memset(&a, 0, sizeof a);
    size_t i, nt = sizeof k_types / sizeof k_types[0];
    for (i = 0; i < nt && k_types[i].code != h[2]; i++) continue;
    if (i == nt) return foolc__error(FOOLC_E_FORMAT, "unknown IDX type code 0x%02x", h[2]);
    a.dtype = k_types[i].dtype;
    a.ndim = h[3];
    if (a.ndim > FOOLC_MAX_DIMS)
        return foolc__error(FOOLC_E_FORMAT, "%d dimensions (at most %d are supported)",
                            (int)a.ndim, FOOLC_MAX_DIMS);
    FOOLC__CHECK(foolc__src_need(s, h + 4, 4 * (size_t)a.ndim, "the IDX dimensions"));
    for (int32_t k = 0; k < a.ndim; k++) {
        const unsigned char *p = h + 4 + 4 * k;
        a.shape[k] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                               (uint32_t)p[2] << 8 | p[3]);
    }
    int64_t nbytes = foolc__array_bytes(&a);
    uint64_t head = 4 + 4 * (uint64_t)a.ndim;
    if (nbytes < 0) return foolc__error(FOOLC_E_FORMAT, "shape too large");
    if (in_size != UINT64_MAX) { /* reject absurd sizes before allocating */
        if (!gz && head + (uint64_t)nbytes != in_size)
            return foolc__error(FOOLC_E_FORMAT, "the header promises %lld data bytes, the "
                                "file holds %llu (%s)", (long long)nbytes,
                                (unsigned long long)(in_size - head),
                                head + (uint64_t)nbytes > in_size ? "truncated"
                                                                  : "trailing bytes");
        if (gz && (uint64_t)nbytes / DEFLATE_MAX_RATIO > in_size + 64)
            return foolc__error(FOOLC_E_FORMAT, "the header promises %lld data bytes, more "
                                "than %llu gzipped bytes can hold", (long long)nbytes,
                                (unsigned long long)in_size);
    }
    if (head_only) {
        *out = a;
        return FOOLC_OK;
    }
    if ((uint64_t)nbytes >= SIZE_MAX) return foolc__nomem("IDX data");
    unsigned char *data = NULL; /* gzipped: grown with the data that actually arrives */
    foolc_status st = foolc__src_need_alloc(s, (size_t)nbytes, "the IDX data", &data);
    if (st == FOOLC_OK) st = foolc__src_expect_end(s, "the IDX data");
    if (st < 0) {
        foolc__free(data);
        return st;
    }
    a.data = data;
    if (foolc__host_le())
        foolc__swap(a.data, (size_t)foolc_array_count(&a), foolc_dtype_size(a.dtype));
    *out = a;
    return FOOLC_OK;
}

foolc_status foolc__idx_read_mem(const void *buf, size_t len, foolc_array *out)
{
    if (!out || (!buf && len)) return foolc__error(FOOLC_E_INVALID, "idx_read: NULL argument");
    memset(out, 0, sizeof *out);
    foolc__src s;
    foolc__src_mem(&s, buf ? buf : "", len, FOOLC__Z_NONE);
    foolc_status st = parse(&s, len, 0, out);
    foolc__src_close(&s);
    return st < 0 ? foolc__error_prefix(st, "idx '<memory>'") : st;
}

static foolc_status read_path(const char *path, int head_only, foolc_array *out)
{
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp) return foolc__error(FOOLC_E_IO, "idx '%s': cannot open: %s", path,
                                 strerror(errno));
    struct stat sb;
    uint64_t size = UINT64_MAX;
    if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= 0)
        size = (uint64_t)sb.st_size;
    foolc__src s;
    foolc__src_file(&s, fp, FOOLC__Z_NONE);
    foolc_status st = parse(&s, size, head_only, out);
    foolc__src_close(&s);
    fclose(fp);
    return st < 0 ? foolc__error_prefix(st, "idx '%s'", path) : st;
}

foolc_status foolc_idx_read(const char *path, foolc_array *out)
{
    foolc__error_clear();
    if (!path || !out) return foolc__error(FOOLC_E_INVALID, "idx_read: NULL argument");
    return read_path(path, 0, out);
}

foolc_status foolc__idx_read_header(const char *path, foolc_array *out)
{
    return read_path(path, 1, out);
}

static foolc_status write_all(foolc__sink *k, const foolc_array *a, unsigned char code)
{
    unsigned char h[4 + 4 * FOOLC_MAX_DIMS], buf[8192];
    h[0] = h[1] = 0;
    h[2] = code;
    h[3] = (unsigned char)a->ndim;
    for (int32_t i = 0; i < a->ndim; i++) {
        uint32_t d = (uint32_t)a->shape[i];
        unsigned char *p = h + 4 + 4 * i;
        p[0] = (unsigned char)(d >> 24);
        p[1] = (unsigned char)(d >> 16);
        p[2] = (unsigned char)(d >> 8);
        p[3] = (unsigned char)d;
    }
    FOOLC__CHECK(foolc__sink_write(k, h, 4 + 4 * (size_t)a->ndim));
    size_t es = foolc_dtype_size(a->dtype), left = (size_t)foolc__array_bytes(a);
    const unsigned char *src = a->data;
    while (left > 0) {
        size_t n = left < sizeof buf ? left : sizeof buf;
        memcpy(buf, src, n);
        if (foolc__host_le()) foolc__swap(buf, n / es, es);
        FOOLC__CHECK(foolc__sink_write(k, buf, n));
        src += n;
        left -= n;
    }
    return foolc__sink_finish(k);
}

foolc_status foolc_idx_write(const char *path, const foolc_array *a, int gzip)
{
    foolc__error_clear();
    if (!path || !a) return foolc__error(FOOLC_E_INVALID, "idx_write: NULL argument");
    size_t i, nt = sizeof k_types / sizeof k_types[0];
    for (i = 0; i < nt && k_types[i].dtype != a->dtype; i++) continue;
    if (i == nt)
        return foolc__error(FOOLC_E_INVALID, "idx '%s': dtype %s cannot be stored in IDX "
                            "(uint8, int8, int16, int32, float32, float64)", path,
                            foolc__dtype_name(a->dtype));
    int64_t nbytes = foolc__array_bytes(a);
    if (nbytes < 0)
        return foolc__error(FOOLC_E_INVALID, "idx '%s': invalid ndim or shape", path);
    for (int32_t k = 0; k < a->ndim; k++)
        if (a->shape[k] > (int64_t)UINT32_MAX)
            return foolc__error(FOOLC_E_INVALID, "idx '%s': dimension %d is %lld, IDX holds "
                                "at most 2^32-1", path, (int)k, (long long)a->shape[k]);
    if (nbytes > 0 && !a->data)
        return foolc__error(FOOLC_E_INVALID, "idx '%s': array data is NULL", path);
    if ((uint64_t)nbytes >= SIZE_MAX) return foolc__nomem("IDX data");
    FILE *fp = fopen(path, "wb");
    if (!fp) return foolc__error(FOOLC_E_IO, "idx '%s': cannot create: %s", path,
                                 strerror(errno));
    foolc__sink k;
    foolc_status st = foolc__sink_init(&k, fp, gzip ? FOOLC__Z_GZIP : FOOLC__Z_NONE);
    if (st == FOOLC_OK) st = write_all(&k, a, k_types[i].code);
    foolc__sink_close(&k);
    if (fclose(fp) != 0 && st == FOOLC_OK)
        st = foolc__error(FOOLC_E_IO, "write failed: %s", strerror(errno));
    if (st < 0) {
        remove(path);
        return foolc__error_prefix(st, "idx '%s'", path);
    }
    return FOOLC_OK;
}
