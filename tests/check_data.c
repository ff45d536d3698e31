/* Check suite of the data layer: NPZ and IDX readers and writers against numpy-made
 * fixtures (tests/data/), malformed and mutated inputs, injected allocation failures, and
 * data sets (the installed Fashion-MNIST, a synthetic IDX directory, NPZ files). */
#include "testutil.h"

#include "data/data_impl.h"

#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------------------ */

static const char *fixture(const char *name)
{
    static char path[4][512];
    static int k;
    const char *dir = getenv("FOOLC_TEST_DATA");
    char *p = path[k++ & 3];
    snprintf(p, sizeof path[0], "%s/%s", dir && *dir ? dir : "tests/data", name);
    return p;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s (run the tests from the repository root or set "
                  "FOOLC_TEST_DATA)", path);
    unsigned char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            b = realloc(b, cap);
            ck_assert_ptr_nonnull(b);
        }
        size_t r = fread(b + n, 1, cap - n, fp);
        if (r == 0) break;
        n += r;
    }
    fclose(fp);
    *len = n;
    return b;
}

static void spit(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(p, 1, n, fp), n);
    ck_assert_int_eq(fclose(fp), 0);
}

#define ck_msg_has(sub) \
    ck_assert_msg(strstr(foolc_errmsg(), (sub)) != NULL, "message '%s' lacks '%s'", \
                  foolc_errmsg(), (sub))

static const foolc_array *must_get(const foolc_npz *z, const char *name, foolc_dtype t,
                                   int32_t ndim, const int64_t *shape)
{
    const foolc_array *a = foolc_npz_get(z, name);
    ck_assert_msg(a != NULL, "no member '%s'", name);
    ck_assert_int_eq(a->dtype, t);
    ck_assert_int_eq(a->ndim, ndim);
    for (int32_t i = 0; i < ndim; i++) ck_assert_int_eq(a->shape[i], shape[i]);
    ck_assert_ptr_nonnull(a->data);
    return a;
}

/* The values that make_fixtures.py stores, checked member by member. */
static void check_fixture_arrays(const foolc_npz *z)
{
    static const char *const order[] = { "f32", "f64", "u8", "i8", "i16", "u16", "i32", "u32",
                                         "i64", "u64", "b", "arch", "text", "be_i4", "be_f8",
                                         "scalar", "empty", "fort" };
    ck_assert_int_eq(foolc_npz_count(z), 18);
    for (int32_t i = 0; i < 18; i++) ck_assert_str_eq(foolc_npz_name(z, i), order[i]);
    ck_assert_ptr_null(foolc_npz_name(z, 18));
    ck_assert_ptr_null(foolc_npz_name(z, -1));
    ck_assert_ptr_null(foolc_npz_get(z, "nope"));
    ck_assert_ptr_null(foolc_npz_get(z, "f32.npy"));

    const float *f32 = must_get(z, "f32", FOOLC_F32, 2, (int64_t[]){ 2, 3 })->data;
    for (int i = 0; i < 6; i++) ck_assert_float_eq(f32[i], i / 4.0f);
    const double *f64 = must_get(z, "f64", FOOLC_F64, 1, (int64_t[]){ 2 })->data;
    ck_assert_double_eq(f64[0], 0.1);
    ck_assert_double_eq(f64[1], -1e300);
    const uint8_t *u8 = must_get(z, "u8", FOOLC_U8, 1, (int64_t[]){ 4 })->data;
    ck_assert(u8[0] == 0 && u8[1] == 1 && u8[2] == 127 && u8[3] == 255);
    const int8_t *i8 = must_get(z, "i8", FOOLC_I8, 1, (int64_t[]){ 2 })->data;
    ck_assert(i8[0] == -128 && i8[1] == 127);
    const int16_t *i16 = must_get(z, "i16", FOOLC_I16, 1, (int64_t[]){ 2 })->data;
    ck_assert(i16[0] == -32768 && i16[1] == 32767);
    const uint16_t *u16 = must_get(z, "u16", FOOLC_U16, 1, (int64_t[]){ 2 })->data;
    ck_assert(u16[0] == 0 && u16[1] == 65535);
    const int32_t *i32 = must_get(z, "i32", FOOLC_I32, 1, (int64_t[]){ 2 })->data;
    ck_assert(i32[0] == INT32_MIN && i32[1] == INT32_MAX);
    const uint32_t *u32 = must_get(z, "u32", FOOLC_U32, 1, (int64_t[]){ 2 })->data;
    ck_assert(u32[0] == 0 && u32[1] == UINT32_MAX);
    const int64_t *i64 = must_get(z, "i64", FOOLC_I64, 2, (int64_t[]){ 2, 2 })->data;
    ck_assert(i64[0] == -1 && i64[1] == ((int64_t)1 << 40) && i64[2] == 3 &&
              i64[3] == -((int64_t)1 << 62));
    const uint64_t *u64 = must_get(z, "u64", FOOLC_U64, 1, (int64_t[]){ 1 })->data;
    ck_assert(u64[0] == UINT64_MAX);
    const uint8_t *b = must_get(z, "b", FOOLC_BOOL, 1, (int64_t[]){ 3 })->data;
    ck_assert(b[0] == 1 && b[1] == 0 && b[2] == 1);
    /* '<U' and '|S' strings become uint8 arrays of UTF-8 bytes */
    static const char arch[] = "dense 784 10\nrelu \xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80";
    const foolc_array *s = must_get(z, "arch", FOOLC_U8, 1, (int64_t[]){ sizeof arch - 1 });
    ck_assert_mem_eq(s->data, arch, sizeof arch - 1);
    s = must_get(z, "text", FOOLC_U8, 1, (int64_t[]){ 5 });
    ck_assert_mem_eq(s->data, "hello", 5);
    /* big-endian in the file, native in memory */
    const int32_t *bi = must_get(z, "be_i4", FOOLC_I32, 1, (int64_t[]){ 3 })->data;
    ck_assert(bi[0] == 1 && bi[1] == -2 && bi[2] == 0x01020304);
    const double *bf = must_get(z, "be_f8", FOOLC_F64, 1, (int64_t[]){ 2 })->data;
    ck_assert(bf[0] == 1.5 && bf[1] == -0.25);
    const double *sc = must_get(z, "scalar", FOOLC_F64, 0, NULL)->data;
    ck_assert_double_eq(sc[0], 3.25);
    const foolc_array *e = must_get(z, "empty", FOOLC_F32, 2, (int64_t[]){ 0, 3 });
    ck_assert_int_eq(foolc_array_count(e), 0);
    /* Fortran order comes back in C order */
    const int16_t *f = must_get(z, "fort", FOOLC_I16, 3, (int64_t[]){ 2, 3, 4 })->data;
    for (int i = 0; i < 24; i++) ck_assert_int_eq(f[i], i);
}

/* Recomputes the CRC-32 of every stored member of an archive (after a test patched it). */
static void refresh_crcs(unsigned char *b, size_t len)
{
    size_t eocd = len - 22;
    ck_assert_uint_eq(b[eocd] | b[eocd + 1] << 8 | b[eocd + 2] << 16 | (uint32_t)b[eocd + 3] << 24,
                      0x06054b50u);
#define R16(p) ((uint32_t)(p)[0] | (uint32_t)(p)[1] << 8)
#define R32(p) (R16(p) | R16((p) + 2) << 16)
    uint32_t n = R16(b + eocd + 10), off = R32(b + eocd + 16);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char *c = b + off, *l = b + R32(c + 42);
        uint32_t size = R32(c + 20);
        unsigned char *data = l + 30 + R16(l + 26) + R16(l + 28);
        uint32_t crc = foolc__crc32(0, data, size);
        for (int k = 0; k < 4; k++) c[16 + k] = l[14 + k] = (unsigned char)(crc >> (8 * k));
        off += 46 + R16(c + 28) + R16(c + 30) + R16(c + 32);
    }
#undef R16
#undef R32
}

static unsigned char *memfind(unsigned char *b, size_t len, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(b + i, s, n) == 0) return b + i;
    return NULL;
}

/* An archive with float32 "a" (2,) and uint8 "b" (3,), written by us. */
static unsigned char *small_archive(int compress, size_t *len)
{
    foolc_npz *z;
    float a[2] = { 1.0f, 2.0f };
    uint8_t b[3] = { 7, 8, 9 };
    foolc_array fa = { FOOLC_F32, 1, { 2 }, a }, ub = { FOOLC_U8, 1, { 3 }, b };
    ck_ok(foolc_npz_new(&z));
    ck_ok(foolc_npz_add(z, "a", &fa));
    ck_ok(foolc_npz_add(z, "b", &ub));
    void *buf;
    ck_ok(foolc__npz_write_mem(z, compress, &buf, len));
    foolc_npz_free(z);
    return buf;
}

/* Builds a .npy file: magic, version, dict padded with '\n', then n data bytes. */
static size_t make_npy(unsigned char *buf, int major, const char *dict, const void *data,
                       size_t n)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict), hl = dl + 1;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t k = 0; k < pre - 8; k++) buf[8 + k] = (unsigned char)(hl >> (8 * k));
    memcpy(buf + pre, dict, dl);
    buf[pre + dl] = '\n';
    if (n) memcpy(buf + pre + hl, data, n);
    return pre + hl + n;
}

/* ---- basics ------------------------------------------------------------------------- */

START_TEST(test_dtype_and_count)
{
    static const size_t sizes[FOOLC_DTYPE_COUNT] = { 1, 1, 2, 4, 8, 4, 8, 2, 4, 8, 1 };
    for (int t = 0; t < FOOLC_DTYPE_COUNT; t++)
        ck_assert_uint_eq(foolc_dtype_size((foolc_dtype)t), sizes[t]);
    ck_assert_uint_eq(foolc_dtype_size(FOOLC_DTYPE_COUNT), 0);
    ck_assert_uint_eq(foolc_dtype_size((foolc_dtype)-1), 0);
    foolc_array a = { FOOLC_F32, 0, { 0 }, NULL };
    ck_assert_int_eq(foolc_array_count(&a), 1);
    a.ndim = 3;
    a.shape[0] = 2, a.shape[1] = 3, a.shape[2] = 4;
    ck_assert_int_eq(foolc_array_count(&a), 24);
    a.shape[1] = 0;
    ck_assert_int_eq(foolc_array_count(&a), 0);
    a.shape[1] = -1;
    ck_assert_int_eq(foolc_array_count(&a), -1);
    a.shape[0] = a.shape[1] = a.shape[2] = (int64_t)1 << 30;
    ck_assert_int_eq(foolc_array_count(&a), -1);
    a.ndim = FOOLC_MAX_DIMS + 1;
    ck_assert_int_eq(foolc_array_count(&a), -1);
    a.ndim = -1;
    ck_assert_int_eq(foolc_array_count(&a), -1);
    ck_assert_int_eq(foolc_array_count(NULL), -1);
}
END_TEST

/* ---- NPZ reading -------------------------------------------------------------------- */

static const char *const k_fixture_npz[] = { "arrays.npz", "arrays_z.npz" };

START_TEST(test_npz_numpy_fixtures) /* savez (stored) and savez_compressed (deflate) */
{
    foolc_npz *z = NULL;
    ck_ok(foolc_npz_read(fixture(k_fixture_npz[_i]), &z));
    check_fixture_arrays(z);
    foolc_npz_free(z);
    size_t len;
    unsigned char *b = slurp(fixture(k_fixture_npz[_i]), &len);
    ck_ok(foolc_npz_read_mem(b, len, &z));
    check_fixture_arrays(z);
    foolc_npz_free(z);
    free(b);
}
END_TEST

START_TEST(test_npz_data_descriptors) /* numpy writing to a stream that cannot seek */
{
    foolc_npz *z;
    ck_ok(foolc_npz_read(fixture("descriptors.npz"), &z));
    ck_assert_int_eq(foolc_npz_count(z), 2);
    const float *w = must_get(z, "w", FOOLC_F32, 1, (int64_t[]){ 5 })->data;
    for (int i = 0; i < 5; i++) ck_assert_float_eq(w[i], (float)i);
    const int64_t *y = must_get(z, "y", FOOLC_I64, 1, (int64_t[]){ 2 })->data;
    ck_assert(y[0] == 1 && y[1] == 2);
    foolc_npz_free(z);
}
END_TEST

START_TEST(test_npz_prefixed_archive) /* bytes before the zip (self-extracting style) */
{
    size_t len;
    unsigned char *b = slurp(fixture("arrays_z.npz"), &len);
    unsigned char *p = malloc(len + 100);
    memset(p, 'x', 100);
    memcpy(p + 100, b, len);
    foolc_npz *z;
    ck_ok(foolc_npz_read_mem(p, len + 100, &z));
    check_fixture_arrays(z);
    foolc_npz_free(z);
    free(p);
    free(b);
}
END_TEST

START_TEST(test_npz_args)
{
    foolc_npz *z = (foolc_npz *)1;
    ck_status(foolc_npz_read_mem(NULL, 0, &z), FOOLC_E_FORMAT);
    ck_assert_ptr_null(z);
    ck_status(foolc_npz_read_mem("", 0, NULL), FOOLC_E_INVALID);
    ck_status(foolc_npz_read_mem(NULL, 5, &z), FOOLC_E_INVALID);
    ck_status(foolc_npz_read(NULL, &z), FOOLC_E_INVALID);
    ck_status(foolc_npz_read("/nonexistent/foolc.npz", &z), FOOLC_E_IO);
    ck_msg_has("/nonexistent/foolc.npz");
    ck_status(foolc_npz_read(fixture("i16.idx"), &z), FOOLC_E_FORMAT);
    ck_msg_has("not a zip archive");
    ck_status(foolc_npz_new(NULL), FOOLC_E_INVALID);
    foolc_npz_free(NULL);
    ck_assert_int_eq(foolc_npz_count(NULL), 0);
    ck_assert_ptr_null(foolc_npz_name(NULL, 0));
    ck_assert_ptr_null(foolc_npz_get(NULL, "x"));
    /* an empty archive is fine */
    ck_ok(foolc_npz_read_mem("PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22, &z));
    ck_assert_int_eq(foolc_npz_count(z), 0);
    foolc_npz_free(z);
}
END_TEST

START_TEST(test_npz_truncated) /* every proper prefix of a good archive is malformed */
{
    for (int compress = 0; compress < 2; compress++) {
        size_t len;
        unsigned char *b = slurp(fixture(k_fixture_npz[compress]), &len);
        for (size_t n = 0; n < len; n++) {
            foolc_npz *z = (foolc_npz *)1;
            foolc_status st = foolc_npz_read_mem(b, n, &z);
            ck_assert_msg(st == FOOLC_E_FORMAT, "prefix %zu/%zu -> %d: %s", n, len, (int)st,
                          foolc_errmsg());
            ck_assert_ptr_null(z);
        }
        free(b);
    }
}
END_TEST

START_TEST(test_npz_bad_crc)
{
    size_t len;
    unsigned char *b = small_archive(0, &len);
    unsigned char *p = memfind(b, len, "'fortran_order'");
    ck_assert_ptr_nonnull(p);
    p[1] ^= 0x20; /* 'Fortran_order' */
    foolc_npz *z;
    ck_status(foolc_npz_read_mem(b, len, &z), FOOLC_E_FORMAT);
    ck_msg_has("member 'a': bad CRC-32");
    ck_msg_has("npz '<memory>'");
    refresh_crcs(b, len); /* now the CRC matches and the header itself is wrong */
    ck_status(foolc_npz_read_mem(b, len, &z), FOOLC_E_FORMAT);
    ck_msg_has("member 'a': bad .npy header: unknown key 'Fortran_order'");
    free(b);

    /* deflated: a corrupt stream or a CRC mismatch, never a success */
    b = small_archive(1, &len);
    int fails = 0;
    for (size_t i = 40; i < 80; i++) {
        b[i] ^= 0x10;
        foolc_status st = foolc_npz_read_mem(b, len, &z);
        ck_assert_msg(st == FOOLC_E_FORMAT || st == FOOLC_OK, "st %d", (int)st);
        if (st == FOOLC_OK) foolc_npz_free(z);
        fails += st != FOOLC_OK;
        b[i] ^= 0x10;
    }
    ck_assert_int_gt(fails, 30);
    free(b);
}
END_TEST

START_TEST(test_npz_bad_members)
{
    size_t len;
    foolc_npz *z;
    unsigned char *b = small_archive(0, &len), *p;
    /* unknown dtype, named with the member */
    p = memfind(b, len, "'<f4'");
    memcpy(p, "'<c8'", 5);
    refresh_crcs(b, len);
    ck_status(foolc_npz_read_mem(b, len, &z), FOOLC_E_FORMAT);
    ck_msg_has("member 'a': dtype '<c8' is not supported");
    memcpy(p, "'|O' ", 5);
    refresh_crcs(b, len);
    ck_status(foolc_npz_read_mem(b, len, &z), FOOLC_E_FORMAT);
    ck_msg_has("object arrays");
    free(b);

    /* duplicate names: rename b.npy to a.npy in the local and central headers */
    b = small_archive(0, &len);
    for (int k = 0; k < 2; k++) {
        p = memfind(b, len, "b.npy");
        ck_assert_ptr_nonnull(p);
        p[0] = 'a';
    }
    ck_status(foolc_npz_read_mem(b, len, &z), FOOLC_E_FORMAT);
    ck_msg_has("member 'a' appears twice");
    free(b);

    /* local and central names disagree */
    b = small_archive(0, &len);
    memfind(b, len, "b.npy")[0] = 'c';
    ck_status(foolc_npz_read_mem(b, len, &z), FOOLC_E_FORMAT);
    ck_msg_has("does not match");
    free(b);

    /* compression method 12 (bzip2) and encryption, in the central directory */
    b = small_archive(0, &len);
    p = memfind(b, len, "PK\x01\x02");
    p[10] = 12;
    ck_status(foolc_npz_read_mem(b, len, &z), FOOLC_E_FORMAT);
    ck_msg_has("compression method 12");
    p[10] = 0;
    p[8] |= 1;
    ck_status(foolc_npz_read_mem(b, len, &z), FOOLC_E_FORMAT);
    ck_msg_has("encrypted");
    p[8] &= ~1;
    /* sizes that do not fit */
    p[20] = 0xF0; /* compressed size of 'a' */
    ck_status(foolc_npz_read_mem(b, len, &z), FOOLC_E_FORMAT);
    ck_msg_has("member 'a'");
    free(b);

    /* a header promising 10^12 elements in a tiny member: refused before allocating */
    b = small_archive(0, &len);
    p = memfind(b, len, "(2,), }");
    ck_assert_ptr_nonnull(p);
    memcpy(p, "(9999999999999,)}", 17); /* overwrites the padding only */
    refresh_crcs(b, len);
    foolc__alloc_fail_at(0);
    ck_status(foolc_npz_read_mem(b, len, &z), FOOLC_E_FORMAT);
    ck_msg_has("promises");
    ck_assert_uint_lt(foolc__alloc_fail_at(0), 10);
    free(b);
}
END_TEST

/* ---- .npy parser -------------------------------------------------------------------- */

static const struct {
    const char *dict;
    size_t nbytes;
    foolc_status want;
    const char *msg;
} k_npy_cases[] = {
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, FOOLC_OK, NULL },
    { "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,)}", 8, FOOLC_OK, NULL },
    { " { 'shape' : ( 2 , 1 ) , 'fortran_order' : True , 'descr' : '<f4' }  ", 8, FOOLC_OK,
      NULL },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }", 8, FOOLC_OK, NULL },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, FOOLC_OK, NULL },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", 0, FOOLC_OK, NULL },
    { "{'descr': '=i2', 'fortran_order': False, 'shape': (1,), }", 2, FOOLC_OK, NULL },
    { "{'descr': '|S0', 'fortran_order': False, 'shape': (), }", 0, FOOLC_OK, NULL },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8, FOOLC_E_FORMAT,
      "trailing comma" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, FOOLC_E_FORMAT,
      "unknown key 'x'" },
    { "{'descr': '<f4', 'shape': (2,), }", 8, FOOLC_E_FORMAT, "no 'fortran_order'" },
    { "{'descr': '<f4', 'fortran_order': False}", 8, FOOLC_E_FORMAT, "no 'shape'" },
    { "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8,
      FOOLC_E_FORMAT, "twice" },
    { "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16, FOOLC_E_FORMAT,
      "object arrays" },
    { "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, FOOLC_E_FORMAT,
      "dtype '<c8' is not supported" },
    { "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 4, FOOLC_E_FORMAT,
      "dtype '<f2' is not supported" },
    { "{'descr': '<M8[s]', 'fortran_order': False, 'shape': (1,), }", 8, FOOLC_E_FORMAT,
      "not supported" },
    { "{'descr': 'f4', 'fortran_order': False, 'shape': (2,), }", 8, FOOLC_E_FORMAT,
      "byte-order" },
    { "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8,
      FOOLC_E_FORMAT, "structured" },
    { "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", 24, FOOLC_E_FORMAT,
      "single string" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8, FOOLC_E_FORMAT,
      "promises 12 data bytes, the file holds 8" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 8, FOOLC_E_FORMAT,
      "promises 4 data bytes, the file holds 8" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }", 8,
      FOOLC_E_FORMAT, "promises" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4,
      FOOLC_E_FORMAT, "more than 8 dimensions" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 9), }", 0,
      FOOLC_E_FORMAT, "too large" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0,
      FOOLC_E_FORMAT, "too large" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, FOOLC_E_FORMAT,
      "non-negative" },
    { "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8, FOOLC_E_FORMAT,
      "True or False" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 8, FOOLC_E_FORMAT,
      "after the dictionary" },
    { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ", 8, FOOLC_E_FORMAT,
      "expected" },
    { "['descr']", 8, FOOLC_E_FORMAT, "expected '{'" },
    { "{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", 8, FOOLC_E_FORMAT,
      "bad .npy header" },
    { "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,), }", 8, FOOLC_E_FORMAT,
      "unsupported character" },
    { "", 8, FOOLC_E_FORMAT, "expected '{'" },
};

START_TEST(test_npy_headers)
{
    unsigned char buf[512], zeros[64] = { 0 };
    foolc_array a;
    size_t n = make_npy(buf, 1, k_npy_cases[_i].dict, zeros, k_npy_cases[_i].nbytes);
    foolc_status st = foolc__npy_read_mem(buf, n, &a);
    ck_assert_msg(st == k_npy_cases[_i].want, "%s -> %d (%s)", k_npy_cases[_i].dict, (int)st,
                  foolc_errmsg());
    if (st == FOOLC_OK) foolc__array_clear(&a);
    else ck_msg_has(k_npy_cases[_i].msg);
}
END_TEST

START_TEST(test_npy_conversions)
{
    unsigned char buf[512];
    foolc_array a;
    /* versions 2.0 and 3.0 use a 4-byte header length; 4.0 does not exist */
    for (int v = 1; v <= 4; v++) {
        float f[2] = { 1.5f, -2.0f };
        size_t n = make_npy(buf, v, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
                            f, 8);
        foolc_status st = foolc__npy_read_mem(buf, n, &a);
        if (v == 4) {
            ck_assert_int_eq(st, FOOLC_E_FORMAT);
            ck_msg_has("version 4.0");
            continue;
        }
        ck_ok(st);
        ck_assert(((float *)a.data)[0] == 1.5f && ((float *)a.data)[1] == -2.0f);
        foolc__array_clear(&a);
    }
    /* Fortran order: [[0,1,2],[3,4,5]] stored column by column */
    int16_t fo[6] = { 0, 3, 1, 4, 2, 5 };
    size_t n = make_npy(buf, 1, "{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3)}",
                        fo, 12);
    ck_ok(foolc__npy_read_mem(buf, n, &a));
    for (int i = 0; i < 6; i++) ck_assert_int_eq(((int16_t *)a.data)[i], i);
    foolc__array_clear(&a);
    /* big-endian unsigned 16 and 64 */
    unsigned char be[10] = { 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0x01, 0x00 };
    n = make_npy(buf, 1, "{'descr': '>u2', 'fortran_order': False, 'shape': (1,)}", be, 2);
    ck_ok(foolc__npy_read_mem(buf, n, &a));
    ck_assert_int_eq(((uint16_t *)a.data)[0], 0x0102);
    foolc__array_clear(&a);
    n = make_npy(buf, 1, "{'descr': '>u8', 'fortran_order': False, 'shape': (1,)}", be + 2, 8);
    ck_ok(foolc__npy_read_mem(buf, n, &a));
    ck_assert(((uint64_t *)a.data)[0] == 256);
    foolc__array_clear(&a);
    /* bools are normalised to 0/1 */
    unsigned char bo[3] = { 0, 2, 255 };
    n = make_npy(buf, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,)}", bo, 3);
    ck_ok(foolc__npy_read_mem(buf, n, &a));
    ck_assert(memcmp(a.data, "\0\1\1", 3) == 0);
    foolc__array_clear(&a);
    /* strings: trailing NULs dropped, inner NULs kept, big-endian UCS-4 */
    n = make_npy(buf, 1, "{'descr': '|S6', 'fortran_order': False, 'shape': (1,)}",
                 "a\0b\0\0\0", 6);
    ck_ok(foolc__npy_read_mem(buf, n, &a));
    ck_assert_int_eq(a.ndim, 1);
    ck_assert_int_eq(a.shape[0], 3);
    ck_assert_mem_eq(a.data, "a\0b", 3);
    foolc__array_clear(&a);
    unsigned char u[12] = { 0, 0, 0, 'h', 0, 0, 0x20, 0xAC, 0, 0, 0, 0 };
    n = make_npy(buf, 1, "{'descr': '>U3', 'fortran_order': False, 'shape': ()}", u, 12);
    ck_ok(foolc__npy_read_mem(buf, n, &a));
    ck_assert_int_eq(a.shape[0], 4);
    ck_assert_mem_eq(a.data, "h\xe2\x82\xac", 4);
    foolc__array_clear(&a);
    n = make_npy(buf, 1, "{'descr': '<U3', 'fortran_order': False, 'shape': (0,)}", NULL, 0);
    ck_ok(foolc__npy_read_mem(buf, n, &a));
    ck_assert_int_eq(a.dtype, FOOLC_U8);
    ck_assert_int_eq(a.shape[0], 0);
    foolc__array_clear(&a);
    uint32_t bad[1] = { 0x110000 };
    n = make_npy(buf, 1, "{'descr': '<U1', 'fortran_order': False, 'shape': ()}", bad, 4);
    ck_status(foolc__npy_read_mem(buf, n, &a), FOOLC_E_FORMAT);
    ck_msg_has("code point");
    /* bad magic, header longer than the file */
    n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", "abcd", 4);
    buf[1] = 'n';
    ck_status(foolc__npy_read_mem(buf, n, &a), FOOLC_E_FORMAT);
    ck_msg_has("bad magic");
    buf[1] = 'N';
    buf[9] = 0x7F;
    ck_status(foolc__npy_read_mem(buf, n, &a), FOOLC_E_FORMAT);
    ck_msg_has("header length");
    ck_status(foolc__npy_read_mem(buf, 5, &a), FOOLC_E_FORMAT);
}
END_TEST

/* ---- NPZ writing -------------------------------------------------------------------- */

/* One array of every dtype, plus a scalar and an empty array. */
static foolc_npz *every_dtype(void)
{
    static const float f32[6] = { 0, 0.25f, 0.5f, 0.75f, 1, 1.25f };
    static const double f64[2] = { 0.1, -1e300 };
    static const uint8_t u8[4] = { 0, 1, 127, 255 };
    static const int8_t i8[2] = { -128, 127 };
    static const int16_t i16[2] = { -32768, 32767 };
    static const uint16_t u16[2] = { 0, 65535 };
    static const int32_t i32[2] = { INT32_MIN, INT32_MAX };
    static const uint32_t u32[2] = { 0, UINT32_MAX };
    static const int64_t i64[4] = { -1, (int64_t)1 << 40, 3, -((int64_t)1 << 62) };
    static const uint64_t u64[1] = { UINT64_MAX };
    static const uint8_t b[3] = { 1, 0, 1 };
    static const double sc = 3.25;
    const foolc_array arrays[] = {
        { FOOLC_F32, 2, { 2, 3 }, (void *)f32 }, { FOOLC_F64, 1, { 2 }, (void *)f64 },
        { FOOLC_U8, 1, { 4 }, (void *)u8 },      { FOOLC_I8, 1, { 2 }, (void *)i8 },
        { FOOLC_I16, 1, { 2 }, (void *)i16 },    { FOOLC_U16, 1, { 2 }, (void *)u16 },
        { FOOLC_I32, 1, { 2 }, (void *)i32 },    { FOOLC_U32, 1, { 2 }, (void *)u32 },
        { FOOLC_I64, 2, { 2, 2 }, (void *)i64 }, { FOOLC_U64, 1, { 1 }, (void *)u64 },
        { FOOLC_BOOL, 1, { 3 }, (void *)b },     { FOOLC_F64, 0, { 0 }, (void *)&sc },
        { FOOLC_F32, 2, { 0, 3 }, NULL },
    };
    static const char *const names[] = { "f32", "f64", "u8", "i8", "i16", "u16", "i32",
                                         "u32", "i64", "u64", "b", "scalar", "empty" };
    foolc_npz *z;
    ck_ok(foolc_npz_new(&z));
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        ck_ok(foolc_npz_add(z, names[i], &arrays[i]));
    return z;
}

static void same_npz(const foolc_npz *a, const foolc_npz *b)
{
    ck_assert_int_eq(foolc_npz_count(a), foolc_npz_count(b));
    for (int32_t i = 0; i < foolc_npz_count(a); i++) {
        ck_assert_str_eq(foolc_npz_name(a, i), foolc_npz_name(b, i));
        const foolc_array *x = foolc_npz_get(a, foolc_npz_name(a, i));
        const foolc_array *y = foolc_npz_get(b, foolc_npz_name(b, i));
        ck_assert_int_eq(x->dtype, y->dtype);
        ck_assert_int_eq(x->ndim, y->ndim);
        for (int32_t k = 0; k < x->ndim; k++) ck_assert_int_eq(x->shape[k], y->shape[k]);
        size_t nb = (size_t)foolc_array_count(x) * foolc_dtype_size(x->dtype);
        if (nb) ck_assert_mem_eq(x->data, y->data, nb);
    }
}

/* _i: bit 0 compress, bit 1 force zip64 records */
START_TEST(test_npz_roundtrip)
{
    int compress = _i & 1;
    char path[256];
    tu_tmpname(path, sizeof path, "rt.npz");
    foolc_npz *z = every_dtype(), *r;
    foolc__npz_force_zip64 = (_i & 2) != 0;
    ck_ok(foolc_npz_write(z, path, compress));
    void *mem;
    size_t mlen, flen;
    ck_ok(foolc__npz_write_mem(z, compress, &mem, &mlen));
    foolc__npz_force_zip64 = 0;
    unsigned char *file = slurp(path, &flen);
    ck_assert_uint_eq(flen, mlen); /* the output is reproducible */
    ck_assert_mem_eq(file, mem, flen);
    ck_ok(foolc_npz_read(path, &r));
    same_npz(z, r);
    foolc_npz_free(r);
    ck_ok(foolc_npz_read_mem(mem, mlen, &r));
    same_npz(z, r);
    foolc_npz_free(r);
    /* the fixture's arrays survive a write and a read */
    ck_ok(foolc_npz_read(fixture("arrays.npz"), &r));
    ck_ok(foolc_npz_write(r, path, compress));
    foolc_npz_free(r);
    ck_ok(foolc_npz_read(path, &r));
    ck_assert_int_eq(foolc_npz_count(r), 18);
    foolc_npz_free(r);
    remove(path);
    free(file);
    foolc_free(mem);
    foolc_npz_free(z);
}
END_TEST

START_TEST(test_npz_add)
{
    foolc_npz *z;
    ck_ok(foolc_npz_new(&z));
    int32_t v1[2] = { 1, 2 }, v2[3] = { 3, 4, 5 };
    foolc_array a = { FOOLC_I32, 1, { 2 }, v1 };
    ck_ok(foolc_npz_add(z, "w", &a));
    v1[0] = 9; /* the archive holds a copy */
    ck_assert_int_eq(((int32_t *)foolc_npz_get(z, "w")->data)[0], 1);
    foolc_array b = { FOOLC_I32, 1, { 3 }, v2 };
    ck_ok(foolc_npz_add(z, "w", &b)); /* replaces */
    ck_assert_int_eq(foolc_npz_count(z), 1);
    ck_assert_int_eq(foolc_npz_get(z, "w")->shape[0], 3);
    ck_assert_int_eq(((int32_t *)foolc_npz_get(z, "w")->data)[2], 5);
    foolc_array bad = { FOOLC_DTYPE_COUNT, 1, { 1 }, v1 };
    ck_status(foolc_npz_add(z, "x", &bad), FOOLC_E_INVALID);
    bad.dtype = FOOLC_F32;
    bad.shape[0] = -1;
    ck_status(foolc_npz_add(z, "x", &bad), FOOLC_E_INVALID);
    bad.shape[0] = 2;
    bad.data = NULL;
    ck_status(foolc_npz_add(z, "x", &bad), FOOLC_E_INVALID);
    bad.ndim = 9;
    ck_status(foolc_npz_add(z, "x", &bad), FOOLC_E_INVALID);
    ck_status(foolc_npz_add(z, "", &a), FOOLC_E_INVALID);
    ck_status(foolc_npz_add(z, NULL, &a), FOOLC_E_INVALID);
    ck_status(foolc_npz_add(NULL, "x", &a), FOOLC_E_INVALID);
    ck_status(foolc_npz_add(z, "x", NULL), FOOLC_E_INVALID);
    ck_assert_int_eq(foolc_npz_count(z), 1);
    ck_status(foolc_npz_write(z, "/nonexistent/dir/x.npz", 0), FOOLC_E_IO);
    ck_msg_has("/nonexistent/dir/x.npz");
    ck_status(foolc_npz_write(NULL, "x.npz", 0), FOOLC_E_INVALID);
    foolc_npz_free(z);
}
END_TEST

/* numpy reads what we write: runs /usr/bin/python3 when it has numpy, else skips. */
START_TEST(test_npz_numpy_reads_ours)
{
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
        FOOLC_SKIP("/usr/bin/python3 with numpy not found (Debian: python3-numpy)");
    static const char script[] =
        "import sys, numpy as np\n"
        "for f in sys.argv[1:]:\n"
        " d = np.load(f)\n"
        " assert list(d.keys()) == ['f32', 'f64', 'u8', 'i8', 'i16', 'u16', 'i32', 'u32',"
        " 'i64', 'u64', 'b', 'scalar', 'empty'], list(d.keys())\n"
        " assert d['f32'].dtype == np.float32 and d['f32'].tolist() == [[0, .25, .5], "
        "[.75, 1, 1.25]]\n"
        " assert d['f64'].tolist() == [0.1, -1e300]\n"
        " assert d['u8'].dtype == np.uint8 and d['u8'].tolist() == [0, 1, 127, 255]\n"
        " assert d['i8'].tolist() == [-128, 127] and d['i16'].tolist() == [-32768, 32767]\n"
        " assert d['u16'].tolist() == [0, 65535] and d['u32'].tolist() == [0, 2**32 - 1]\n"
        " assert d['i32'].tolist() == [-2**31, 2**31 - 1]\n"
        " assert d['i64'].tolist() == [[-1, 2**40], [3, -2**62]]\n"
        " assert d['u64'].dtype == np.uint64 and d['u64'].tolist() == [2**64 - 1]\n"
        " assert d['b'].dtype == np.bool_ and d['b'].tolist() == [True, False, True]\n"
        " assert d['scalar'].shape == () and d['scalar'] == 3.25\n"
        " assert d['empty'].shape == (0, 3) and d['empty'].dtype == np.float32\n";
    char py[256], cmd[1024];
    tu_tmpname(py, sizeof py, "check.py");
    spit(py, script, sizeof script - 1);
    foolc_npz *z = every_dtype();
    char path[4][256];
    int n = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s", py);
    for (int mode = 0; mode < 4; mode++) { /* stored, deflated; zip32, forced zip64 */
        tu_tmpname(path[mode], sizeof path[mode], "numpy.npz");
        foolc__npz_force_zip64 = mode >> 1;
        ck_ok(foolc_npz_write(z, path[mode], mode & 1));
        foolc__npz_force_zip64 = 0;
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %s", path[mode]);
    }
    ck_assert_msg(system(cmd) == 0, "numpy could not read what we wrote: %s", cmd);
    for (int mode = 0; mode < 4; mode++) remove(path[mode]);
    foolc_npz_free(z);
    remove(py);
}
END_TEST

/* ---- IDX ---------------------------------------------------------------------------- */

START_TEST(test_idx_fixtures)
{
    static const char *const files[] = { "img-idx3-ubyte", "img-idx3-ubyte.gz" };
    for (int k = 0; k < 2; k++) {
        foolc_array a;
        ck_ok(foolc_idx_read(fixture(files[k]), &a));
        ck_assert_int_eq(a.dtype, FOOLC_U8);
        ck_assert_int_eq(a.ndim, 3);
        ck_assert(a.shape[0] == 3 && a.shape[1] == 2 && a.shape[2] == 2);
        for (int i = 0; i < 12; i++) ck_assert_int_eq(((uint8_t *)a.data)[i], 20 * i);
        foolc_free(a.data);
    }
    foolc_array a;
    ck_ok(foolc_idx_read(fixture("i16.idx"), &a));
    ck_assert(a.dtype == FOOLC_I16 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3);
    static const int16_t want[6] = { -3, -2, -1, 0, 1, 300 };
    ck_assert_mem_eq(a.data, want, sizeof want);
    foolc_free(a.data);
    ck_status(foolc_idx_read("/nonexistent/x-idx3-ubyte", &a), FOOLC_E_IO);
    ck_msg_has("/nonexistent/x-idx3-ubyte");
    ck_status(foolc_idx_read(NULL, &a), FOOLC_E_INVALID);
}
END_TEST

START_TEST(test_idx_roundtrip) /* _i: gzip or not */
{
    static const foolc_dtype types[] = { FOOLC_U8, FOOLC_I8, FOOLC_I16, FOOLC_I32, FOOLC_F32,
                                         FOOLC_F64 };
    unsigned char data[2 * 3 * 5 * 8];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 37 + 11);
    char path[256];
    tu_tmpname(path, sizeof path, _i ? "rt.idx.gz" : "rt.idx");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (int32_t nd = 0; nd <= 3; nd++) {
            foolc_array a = { types[t], nd, { 2, 3, 5 }, data }, r;
            ck_ok(foolc_idx_write(path, &a, (int)_i));
            ck_ok(foolc_idx_read(path, &r));
            ck_assert_int_eq(r.dtype, a.dtype);
            ck_assert_int_eq(r.ndim, nd);
            for (int32_t k = 0; k < nd; k++) ck_assert_int_eq(r.shape[k], a.shape[k]);
            size_t nb = (size_t)foolc_array_count(&a) * foolc_dtype_size(a.dtype);
            ck_assert_mem_eq(r.data, data, nb);
            foolc_free(r.data);
        }
    }
    size_t len;
    unsigned char *b = slurp(path, &len);
    ck_assert(_i ? (b[0] == 0x1f && b[1] == 0x8b) : (b[0] == 0 && b[2] == 0x0E));
    free(b);
    foolc_array bad = { FOOLC_I64, 1, { 2 }, data };
    ck_status(foolc_idx_write(path, &bad, (int)_i), FOOLC_E_INVALID);
    ck_msg_has("int64 cannot be stored in IDX");
    bad.dtype = FOOLC_U8;
    bad.shape[0] = (int64_t)1 << 33;
    ck_status(foolc_idx_write(path, &bad, (int)_i), FOOLC_E_INVALID);
    bad.shape[0] = 2;
    bad.data = NULL;
    ck_status(foolc_idx_write(path, &bad, (int)_i), FOOLC_E_INVALID);
    bad.data = data;
    ck_status(foolc_idx_write("/nonexistent/dir/x.idx", &bad, (int)_i), FOOLC_E_IO);
    ck_msg_has("/nonexistent/dir/x.idx");
    remove(path);
}
END_TEST

/* A small IDX image file in memory, plain or gzipped, made by our writer. */
static unsigned char *idx_bytes(int gz, size_t *len)
{
    char path[256];
    tu_tmpname(path, sizeof path, "m.idx");
    uint8_t px[2 * 3 * 4];
    for (int i = 0; i < 24; i++) px[i] = (uint8_t)i;
    foolc_array a = { FOOLC_U8, 3, { 2, 3, 4 }, px };
    ck_ok(foolc_idx_write(path, &a, gz));
    unsigned char *b = slurp(path, len);
    remove(path);
    return b;
}

/* gzip of p[0..n) as one member, appended to *out. */
static void gz_append(unsigned char **out, size_t *len, const void *p, size_t n)
{
    foolc__sink k;
    ck_ok(foolc__sink_init(&k, NULL, FOOLC__Z_GZIP));
    ck_ok(foolc__sink_write(&k, p, n));
    ck_ok(foolc__sink_finish(&k));
    *out = realloc(*out, *len + k.len);
    memcpy(*out + *len, k.mem, k.len);
    *len += k.len;
    foolc__sink_close(&k);
}

START_TEST(test_idx_malformed)
{
    foolc_array a;
    size_t len;
    unsigned char *b = idx_bytes(0, &len);
    ck_ok(foolc__idx_read_mem(b, len, &a));
    foolc_free(a.data);
    for (size_t n = 0; n < len; n++) {
        foolc_status st = foolc__idx_read_mem(b, n, &a);
        ck_assert_msg(st == FOOLC_E_FORMAT, "prefix %zu -> %d %s", n, (int)st, foolc_errmsg());
        ck_assert_ptr_null(a.data);
    }
    unsigned char *t = malloc(len + 1);
    memcpy(t, b, len);
    t[len] = 0;
    ck_status(foolc__idx_read_mem(t, len + 1, &a), FOOLC_E_FORMAT);
    ck_msg_has("trailing bytes");
    b[0] = 1;
    ck_status(foolc__idx_read_mem(b, len, &a), FOOLC_E_FORMAT);
    ck_msg_has("not an IDX file");
    b[0] = 0;
    b[2] = 0x0A;
    ck_status(foolc__idx_read_mem(b, len, &a), FOOLC_E_FORMAT);
    ck_msg_has("unknown IDX type code 0x0a");
    b[2] = 0x08;
    b[3] = 9;
    ck_status(foolc__idx_read_mem(b, len, &a), FOOLC_E_FORMAT);
    ck_msg_has("9 dimensions");
    b[3] = 3;
    /* a huge claim in a tiny file is refused before allocating */
    unsigned char huge[16] = { 0, 0, 0x08, 3, 0, 0, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF,
                               0, 0, 0, 0xFF };
    foolc__alloc_fail_at(0);
    ck_status(foolc__idx_read_mem(huge, sizeof huge, &a), FOOLC_E_FORMAT);
    ck_msg_has("promises 1095183237375 data bytes, the file holds 0 (truncated)");
    ck_assert_uint_lt(foolc__alloc_fail_at(0), 3);
    huge[5] = huge[9] = huge[13] = 0xFF; /* 2^72 bytes */
    ck_status(foolc__idx_read_mem(huge, sizeof huge, &a), FOOLC_E_FORMAT);
    ck_msg_has("shape too large");
    /* the same through files */
    char path[256];
    tu_tmpname(path, sizeof path, "bad-idx");
    spit(path, b, len - 1);
    ck_status(foolc_idx_read(path, &a), FOOLC_E_FORMAT);
    ck_msg_has(path);
    ck_msg_has("truncated");
    spit(path, t, len + 1);
    ck_status(foolc_idx_read(path, &a), FOOLC_E_FORMAT);
    ck_msg_has("trailing bytes");
    free(t);
    free(b);

    /* gzipped */
    b = idx_bytes(1, &len);
    ck_ok(foolc__idx_read_mem(b, len, &a));
    foolc_free(a.data);
    for (size_t n = 0; n < len; n++) {
        foolc_status st = foolc__idx_read_mem(b, n, &a);
        ck_assert_msg(st == FOOLC_E_FORMAT, "gz prefix %zu -> %d %s", n, (int)st,
                      foolc_errmsg());
    }
    spit(path, b, len - 5);
    ck_status(foolc_idx_read(path, &a), FOOLC_E_FORMAT);
    ck_msg_has(path);
    t = malloc(len + 3);
    memcpy(t, b, len);
    memcpy(t + len, "xyz", 3);
    ck_status(foolc__idx_read_mem(t, len + 3, &a), FOOLC_E_FORMAT);
    ck_msg_has("trailing bytes after the gzip stream");
    spit(path, t, len + 3);
    ck_status(foolc_idx_read(path, &a), FOOLC_E_FORMAT);
    ck_msg_has("trailing bytes after the gzip stream");
    free(t);
    b[len / 2] ^= 0x55;
    ck_status(foolc__idx_read_mem(b, len, &a), FOOLC_E_FORMAT);
    free(b);

    /* several gzip members make one stream; extra data after the IDX data is an error */
    unsigned char hdr[16] = { 0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4 }, px[25];
    for (int i = 0; i < 25; i++) px[i] = (unsigned char)(100 + i);
    unsigned char *m = NULL;
    size_t mlen = 0;
    gz_append(&m, &mlen, hdr, sizeof hdr);
    gz_append(&m, &mlen, px, 24);
    ck_ok(foolc__idx_read_mem(m, mlen, &a));
    ck_assert_int_eq(((uint8_t *)a.data)[23], 123);
    foolc_free(a.data);
    spit(path, m, mlen);
    ck_ok(foolc_idx_read(path, &a));
    foolc_free(a.data);
    gz_append(&m, &mlen, px + 24, 1);
    ck_status(foolc__idx_read_mem(m, mlen, &a), FOOLC_E_FORMAT);
    ck_msg_has("trailing bytes after the IDX data");
    free(m);
    /* a gzipped header claiming 2^40 bytes */
    m = NULL;
    mlen = 0;
    hdr[6] = hdr[10] = hdr[14] = 0xFF; /* about 2^48 bytes */
    gz_append(&m, &mlen, hdr, sizeof hdr);
    ck_status(foolc__idx_read_mem(m, mlen, &a), FOOLC_E_FORMAT);
    ck_msg_has("gzipped bytes can hold");
    free(m);
    remove(path);
}
END_TEST

/* ---- data sets ---------------------------------------------------------------------- */

static void make_tmpdir(char *dir, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, cap, "%s/foolc_test_XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm_files(const char *dir, const char *const *names, size_t n)
{
    char p[512];
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        remove(p);
    }
    rmdir(dir);
}

static const char *const k_set_files[] = {
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte", "t10k-images.idx3-ubyte",
    "t10k-labels.idx1-ubyte.gz",
};

/* Writes one array of a synthetic set. */
static void put_idx(const char *dir, const char *name, foolc_array a)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    size_t n = strlen(name);
    ck_ok(foolc_idx_write(p, &a, n > 3 && strcmp(name + n - 3, ".gz") == 0));
}

/* A set of 5 training and 3 test images of 2x3 pixels, file names in both MNIST styles. */
static void make_set(const char *dir, uint8_t *px, uint8_t *ytr, uint8_t *yte)
{
    for (int i = 0; i < 30; i++) px[i] = (uint8_t)(i * 8 + 1);
    put_idx(dir, k_set_files[0], (foolc_array){ FOOLC_U8, 3, { 5, 2, 3 }, px });
    put_idx(dir, k_set_files[1], (foolc_array){ FOOLC_U8, 1, { 5 }, ytr });
    put_idx(dir, k_set_files[2], (foolc_array){ FOOLC_U8, 3, { 3, 2, 3 }, px });
    put_idx(dir, k_set_files[3], (foolc_array){ FOOLC_U8, 1, { 3 }, yte });
}

START_TEST(test_data_dir)
{
    char dir[256];
    make_tmpdir(dir, sizeof dir);
    uint8_t px[30], ytr[5] = { 0, 1, 2, 1, 0 }, yte[3] = { 0, 0, 0 };
    make_set(dir, px, ytr, yte);
    foolc_data d;
    ck_ok(foolc_data_load(dir, "train", &d));
    ck_assert(d.shape.n == 5 && d.shape.c == 1 && d.shape.h == 2 && d.shape.w == 3);
    ck_assert_int_eq(d.n_classes, 3);
    for (int i = 0; i < 30; i++) ck_assert_float_eq(d.x[i], px[i] / 255.0f);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(d.y[i], ytr[i]);
    foolc_data_free(&d);
    ck_assert_ptr_null(d.x);
    ck_assert_int_eq(d.shape.n, 0);
    foolc_data_free(NULL);
    ck_ok(foolc_data_load(dir, NULL, &d)); /* NULL split is "test" */
    ck_assert_int_eq(d.shape.n, 3);
    ck_assert_int_eq(d.n_classes, 2); /* all labels 0: still two classes */
    foolc_data_free(&d);
    /* the Fashion-MNIST directory can be moved with FOOLC_FASHION_MNIST_DIR */
    const char *old = getenv("FOOLC_FASHION_MNIST_DIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("FOOLC_FASHION_MNIST_DIR", dir, 1);
    ck_ok(foolc_data_load("fashion-mnist", "train", &d));
    ck_assert_int_eq(d.shape.n, 5);
    foolc_data_free(&d);
    ck_ok(foolc_data_load(NULL, "t10k", &d));
    ck_assert_int_eq(d.shape.n, 3);
    foolc_data_free(&d);
    if (saved) setenv("FOOLC_FASHION_MNIST_DIR", saved, 1);
    else unsetenv("FOOLC_FASHION_MNIST_DIR");
    free(saved);
    ck_status(foolc_data_load(dir, "val", &d), FOOLC_E_INVALID);
    ck_status(foolc_data_load(dir, "train", NULL), FOOLC_E_INVALID);

    /* broken sets */
    put_idx(dir, k_set_files[3], (foolc_array){ FOOLC_U8, 1, { 2 }, yte });
    ck_status(foolc_data_load(dir, "test", &d), FOOLC_E_FORMAT);
    ck_msg_has("3 images but 2 labels");
    ck_assert_ptr_null(d.x);
    int8_t neg[3] = { 0, -1, 2 };
    put_idx(dir, k_set_files[3], (foolc_array){ FOOLC_I8, 1, { 3 }, neg });
    ck_status(foolc_data_load(dir, "test", &d), FOOLC_E_FORMAT);
    ck_msg_has("label -1 of sample 1");
    put_idx(dir, k_set_files[3], (foolc_array){ FOOLC_F32, 1, { 3 }, px });
    ck_status(foolc_data_load(dir, "test", &d), FOOLC_E_FORMAT);
    ck_msg_has("integer");
    put_idx(dir, k_set_files[2], (foolc_array){ FOOLC_U8, 2, { 3, 6 }, px });
    ck_status(foolc_data_load(dir, "test", &d), FOOLC_E_FORMAT);
    ck_msg_has("(N,H,W)");
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, k_set_files[0]);
    spit(p, "\x1f\x8b\x08", 3);
    ck_status(foolc_data_load(dir, "train", &d), FOOLC_E_FORMAT);
    ck_msg_has(p);
    remove(p);
    ck_status(foolc_data_load(dir, "train", &d), FOOLC_E_IO);
    ck_msg_has("no train-images-idx3-ubyte[.gz]");
    rm_files(dir, k_set_files, 4);
}
END_TEST

static void put_npz(const char *path, const foolc_array *x, const foolc_array *y)
{
    foolc_npz *z;
    ck_ok(foolc_npz_new(&z));
    if (x) ck_ok(foolc_npz_add(z, "x", x));
    if (y) ck_ok(foolc_npz_add(z, "y", y));
    ck_ok(foolc_npz_write(z, path, 1));
    foolc_npz_free(z);
}

START_TEST(test_data_npz)
{
    char path[256];
    tu_tmpname(path, sizeof path, "set.npz");
    float xf[8] = { 0, 0.5f, 1, 0.25f, 0.125f, 0, 1, 1 };
    int64_t y[2] = { 3, 1 };
    foolc_array x4 = { FOOLC_F32, 4, { 2, 1, 2, 2 }, xf }, ya = { FOOLC_I64, 1, { 2 }, y };
    put_npz(path, &x4, &ya);
    foolc_data d;
    ck_ok(foolc_data_load(path, "ignored", &d));
    ck_assert(d.shape.n == 2 && d.shape.c == 1 && d.shape.h == 2 && d.shape.w == 2);
    ck_assert_int_eq(d.n_classes, 4);
    ck_assert_mem_eq(d.x, xf, sizeof xf);
    ck_assert(d.y[0] == 3 && d.y[1] == 1);
    foolc_data_free(&d);
    uint8_t xu[12] = { 0, 255, 51, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    foolc_array x3 = { FOOLC_U8, 3, { 2, 3, 2 }, xu };
    put_npz(path, &x3, &ya);
    ck_ok(foolc_data_load(path, NULL, &d));
    ck_assert(d.shape.n == 2 && d.shape.c == 1 && d.shape.h == 3 && d.shape.w == 2);
    ck_assert(d.x[0] == 0.0f && d.x[1] == 1.0f && d.x[2] == 0.2f);
    foolc_data_free(&d);
    put_npz(path, &x3, NULL);
    ck_status(foolc_data_load(path, NULL, &d), FOOLC_E_FORMAT);
    ck_msg_has("no array 'y'");
    xf[3] = 1.5f;
    put_npz(path, &x4, &ya);
    ck_status(foolc_data_load(path, NULL, &d), FOOLC_E_FORMAT);
    ck_msg_has("outside [0, 1]");
    xf[3] = NAN;
    put_npz(path, &x4, &ya);
    ck_status(foolc_data_load(path, NULL, &d), FOOLC_E_FORMAT);
    xf[3] = 0;
    foolc_array y2 = { FOOLC_I64, 2, { 2, 1 }, y };
    put_npz(path, &x4, &y2);
    ck_status(foolc_data_load(path, NULL, &d), FOOLC_E_FORMAT);
    ck_msg_has("1-d integer");
    double xdv[8] = { 0 };
    foolc_array xd = { FOOLC_F64, 4, { 2, 1, 2, 2 }, xdv };
    put_npz(path, &xd, &ya);
    ck_status(foolc_data_load(path, NULL, &d), FOOLC_E_FORMAT);
    ck_msg_has("uint8 or float32");
    remove(path);
    ck_status(foolc_data_load(path, NULL, &d), FOOLC_E_IO);
    ck_status(foolc_data_load("no-such-set", NULL, &d), FOOLC_E_INVALID);
    ck_msg_has("not a known data set");
    ck_status(foolc_data_load("/nonexistent/set.npz", NULL, &d), FOOLC_E_IO);
    ck_status(foolc_data_load(fixture("arrays.npz"), NULL, &d), FOOLC_E_FORMAT);
}
END_TEST

/* ---- memory before checks ------------------------------------------------------------ */

static long peak_rss_kib(void)
{
    struct rusage r;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &r), 0);
    return r.ru_maxrss; /* KiB on Linux */
}

/* head followed by zeros zero bytes, deflated (raw, or gzip when gz) at level 9; the CRC-32
 * and size of the uncompressed bytes in *crc and *usize. */
static unsigned char *deflate_zeros(const void *head, size_t hlen, uint64_t zeros, int gz,
                                    size_t *clen, uint32_t *crc, uint64_t *usize)
{
    static const unsigned char zero[1 << 16];
    z_stream s;
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(deflateInit2(&s, 9, Z_DEFLATED, gz ? 31 : -15, 9, Z_DEFAULT_STRATEGY),
                     Z_OK);
    size_t cap = 1 << 20, len = 0;
    unsigned char *out = malloc(cap);
    uint32_t c = (uint32_t)crc32(0, head, (uInt)hlen);
    s.next_in = head;
    s.avail_in = (uInt)hlen;
    uint64_t left = zeros;
    for (int fin = 0; !fin;) {
        if (s.avail_in == 0 && left > 0) {
            size_t k = left < sizeof zero ? (size_t)left : sizeof zero;
            s.next_in = zero;
            s.avail_in = (uInt)k;
            c = (uint32_t)crc32(c, zero, (uInt)k);
            left -= k;
        }
        int flush = s.avail_in == 0 && left == 0 ? Z_FINISH : Z_NO_FLUSH;
        do {
            if (len == cap) out = realloc(out, cap *= 2);
            s.next_out = out + len;
            s.avail_out = (uInt)(cap - len);
            int r = deflate(&s, flush);
            ck_assert(r == Z_OK || r == Z_STREAM_END || r == Z_BUF_ERROR);
            len = cap - s.avail_out;
            fin = r == Z_STREAM_END;
        } while (s.avail_out == 0);
    }
    deflateEnd(&s);
    *clen = len;
    *crc = c;
    *usize = hlen + zeros;
    return out;
}

/* One member of mk_zip: its name, stored bytes or deflated ones (method 8), and what the
 * directory says of it. */
typedef struct zip_part {
    const char *name;
    const unsigned char *data;
    size_t clen;
    uint64_t usize;
    uint32_t crc, method;
} zip_part;

static void put16(FILE *fp, uint32_t v)
{
    unsigned char b[2] = { (unsigned char)v, (unsigned char)(v >> 8) };
    ck_assert_uint_eq(fwrite(b, 1, 2, fp), 2);
}

static void put32(FILE *fp, uint64_t v)
{
    put16(fp, (uint32_t)(v & 0xFFFF));
    put16(fp, (uint32_t)((v >> 16) & 0xFFFF));
}

/* A zip32 archive of the parts (sizes below 4 GiB). */
static void mk_zip(const char *path, const zip_part *p, int n)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    uint32_t off[8];
    for (int i = 0; i < n; i++) {
        off[i] = (uint32_t)ftell(fp);
        put32(fp, 0x04034b50u);
        put16(fp, 20), put16(fp, 0), put16(fp, p[i].method), put16(fp, 0), put16(fp, 0x21);
        put32(fp, p[i].crc), put32(fp, p[i].clen), put32(fp, p[i].usize);
        put16(fp, (uint32_t)strlen(p[i].name)), put16(fp, 0);
        fputs(p[i].name, fp);
        ck_assert_uint_eq(fwrite(p[i].data, 1, p[i].clen, fp), p[i].clen);
    }
    uint32_t cd = (uint32_t)ftell(fp);
    for (int i = 0; i < n; i++) {
        put32(fp, 0x02014b50u);
        put16(fp, 20), put16(fp, 20), put16(fp, 0), put16(fp, p[i].method), put16(fp, 0);
        put16(fp, 0x21), put32(fp, p[i].crc), put32(fp, p[i].clen), put32(fp, p[i].usize);
        put16(fp, (uint32_t)strlen(p[i].name)), put16(fp, 0), put16(fp, 0), put16(fp, 0);
        put16(fp, 0), put32(fp, 0), put32(fp, off[i]);
        fputs(p[i].name, fp);
    }
    uint32_t end = (uint32_t)ftell(fp);
    put32(fp, 0x06054b50u);
    put16(fp, 0), put16(fp, 0), put16(fp, (uint32_t)n), put16(fp, (uint32_t)n);
    put32(fp, end - cd), put32(fp, cd), put16(fp, 0);
    ck_assert_int_eq(fclose(fp), 0);
}

/* A stored .npy member of an int64 vector of n zeros. */
static unsigned char *npy_labels(int64_t n, size_t *len)
{
    char dict[128];
    snprintf(dict, sizeof dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (%lld,), }",
             (long long)n);
    unsigned char *b = calloc(1, 256 + (size_t)n * 8);
    *len = make_npy(b, 1, dict, NULL, 0) + (size_t)n * 8;
    return b;
}

static zip_part stored(const char *name, const unsigned char *b, size_t len)
{
    zip_part p = { name, b, len, len, (uint32_t)crc32(0, b, (uInt)len), 0 };
    return p;
}

/* Runs fn with every allocation above 16 MiB failing; the status and message it must give,
 * and the growth of the peak resident memory it may cause (KiB). */
#define LIMITED(call, want, msg)                                                           \
    do {                                                                                   \
        long rss0_ = peak_rss_kib();                                                       \
        foolc__alloc_limit((uint64_t)16 << 20);                                            \
        foolc_status st_ = (call);                                                         \
        foolc__alloc_limit(0);                                                             \
        long grew_ = peak_rss_kib() - rss0_;                                               \
        ck_assert_msg(st_ == (want), "%s -> %d (%s) want %d; msg: %s", #call, (int)st_,    \
                      foolc_status_str(st_), (int)(want), foolc_errmsg());                 \
        ck_msg_has(msg);                                                                   \
        ck_assert_msg(grew_ < 32 * 1024, "%s: peak RSS grew by %ld KiB", #call, grew_);    \
    } while (0)

/* Declared sizes are checked against each other and against the file before anything is
 * allocated or inflated: the 610 KB archive whose x declares 200,000 images (627 MB of
 * deflated zeros) and whose y holds 50 labels fails at once, as does the same as an IDX
 * directory; a deflated member that declares more than its stream holds never gets its
 * declared size; a member whose header disagrees with its size, and a broken member after
 * a huge valid one, fail before the huge one is inflated. Each with allocations above
 * 16 MiB failing and the peak resident memory growing by less than 32 MiB. */
START_TEST(test_memory_before_checks)
{
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (200000, 28, 28), }";
    unsigned char head[256];
    size_t hlen = make_npy(head, 1, dict, NULL, 0), clen, ylen;
    uint32_t crc;
    uint64_t usize, zeros = (uint64_t)200000 * 28 * 28 * 4;
    unsigned char *xz = deflate_zeros(head, hlen, zeros, 0, &clen, &crc, &usize);
    ck_assert_msg(clen < 700 * 1000, "%zu compressed bytes", clen);
    unsigned char *y50 = npy_labels(50, &ylen);
    zip_part x = { "x.npy", xz, clen, usize, crc, 8 };
    foolc_data d;
    foolc_npz *z = NULL;

    /* x and y disagree: 200000 images, 50 labels. */
    snprintf(path, sizeof path, "%s/counts.npz", dir);
    zip_part parts[2] = { x, stored("y.npy", y50, ylen) };
    mk_zip(path, parts, 2);
    LIMITED(foolc_data_load(path, NULL, &d), FOOLC_E_FORMAT, "200000 images but 50 labels");

    /* The same as an IDX directory: gzipped images, 50 labels. */
    unsigned char ih[16] = { 0, 0, 8, 3, 0, 3, 0x0d, 0x40, 0, 0, 0, 28, 0, 0, 0, 28 };
    size_t glen;
    uint64_t gsize;
    uint32_t gcrc;
    unsigned char *gz = deflate_zeros(ih, 16, (uint64_t)200000 * 784, 1, &glen, &gcrc, &gsize);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    spit(path, gz, glen);
    unsigned char lab[8 + 50] = { 0, 0, 8, 1, 0, 0, 0, 50 };
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    spit(path, lab, sizeof lab);
    LIMITED(foolc_data_load(dir, "train", &d), FOOLC_E_FORMAT, "200000 images but 50 labels");

    /* A deflated member that declares 627 MB (consistent with its header and, by the
     * deflate ratio, with its compressed size) but whose stream ends after 1 KiB. */
    size_t slen;
    uint64_t ssize;
    uint32_t scrc;
    unsigned char *shortz = deflate_zeros(head, hlen, 1024, 0, &slen, &scrc, &ssize);
    unsigned char *padded = calloc(1, clen);
    memcpy(padded, shortz, slen);
    unsigned char *y200k = npy_labels(200000, &ylen);
    zip_part lie[2] = { { "x.npy", padded, clen, usize, crc, 8 }, stored("y.npy", y200k, ylen) };
    snprintf(path, sizeof path, "%s/short.npz", dir);
    mk_zip(path, lie, 2);
    LIMITED(foolc_data_load(path, NULL, &d), FOOLC_E_FORMAT, "member 'x'");
    LIMITED(foolc_npz_read(path, &z), FOOLC_E_FORMAT, "member 'x'");

    /* A stored member whose header declares 200000 images but which holds 1 KiB. */
    unsigned char *small = calloc(1, hlen + 1024);
    memcpy(small, head, hlen);
    zip_part mis[2] = { stored("x.npy", small, hlen + 1024), stored("y.npy", y200k, ylen) };
    snprintf(path, sizeof path, "%s/size.npz", dir);
    mk_zip(path, mis, 2);
    LIMITED(foolc_data_load(path, NULL, &d), FOOLC_E_FORMAT, "promises");

    /* A broken member after the huge valid one: found before x is inflated. */
    unsigned char bad[64];
    size_t blen = make_npy(bad, 1, "{'descr': '<f4', 'fortran_order': False, }", NULL, 0);
    zip_part broken[2] = { x, stored("b.npy", bad, blen) };
    snprintf(path, sizeof path, "%s/broken.npz", dir);
    mk_zip(path, broken, 2);
    LIMITED(foolc_npz_read(path, &z), FOOLC_E_FORMAT, "member 'b'");
    LIMITED(foolc_data_load(path, NULL, &d), FOOLC_E_FORMAT, "member 'b'");

    const char *files[] = { "counts.npz", "train-images-idx3-ubyte.gz",
                            "train-labels-idx1-ubyte", "short.npz", "size.npz", "broken.npz" };
    rm_files(dir, files, sizeof files / sizeof files[0]);
    free(xz), free(y50), free(gz), free(shortz), free(padded), free(y200k), free(small);
}
END_TEST

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

START_TEST(test_data_fashion_mnist) /* _i: 0 test, 1 train; the installed files */
{
    const char *env = getenv("FOOLC_FASHION_MNIST_DIR");
    if (!(env && *env) && access(FASHION_DIR "/t10k-images-idx3-ubyte.gz", R_OK) != 0)
        FOOLC_SKIP("Fashion-MNIST is not installed (Debian: dataset-fashion-mnist)");
    foolc_data d;
    ck_ok(foolc_data_load(_i ? "fashion-mnist" : NULL, _i ? "train" : "test", &d));
    int32_t n = _i ? 60000 : 10000;
    ck_assert(d.shape.n == n && d.shape.c == 1 && d.shape.h == 28 && d.shape.w == 28);
    ck_assert_int_eq(d.n_classes, 10);
    int32_t counts[10] = { 0 };
    for (int32_t i = 0; i < n; i++) {
        ck_assert(d.y[i] >= 0 && d.y[i] < 10);
        counts[d.y[i]]++;
    }
    for (int k = 0; k < 10; k++) ck_assert_int_eq(counts[k], n / 10);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < (size_t)n * 784; i++) {
        lo = d.x[i] < lo ? d.x[i] : lo;
        hi = d.x[i] > hi ? d.x[i] : hi;
    }
    ck_assert(lo == 0.0f && hi == 1.0f);
    foolc_data_free(&d);
}
END_TEST

/* ---- injected allocation failures --------------------------------------------------- */

typedef struct fail_ctx {
    const unsigned char *buf;
    size_t len;
    const char *path;
    const char *path2;
    int flag;
} fail_ctx;

static foolc_status f_npz_mem(const fail_ctx *c)
{
    foolc_npz *z;
    foolc_status st = foolc_npz_read_mem(c->buf, c->len, &z);
    if (st == FOOLC_OK) foolc_npz_free(z);
    return st;
}

static foolc_status f_npz_file(const fail_ctx *c)
{
    foolc_npz *z;
    foolc_status st = foolc_npz_read(c->path, &z);
    if (st == FOOLC_OK) foolc_npz_free(z);
    return st;
}

static foolc_status f_npz_write(const fail_ctx *c)
{
    foolc_npz *z;
    foolc_status st = foolc_npz_new(&z);
    float v[3] = { 1, 2, 3 };
    foolc_array a = { FOOLC_F32, 1, { 3 }, v };
    if (st == FOOLC_OK) st = foolc_npz_add(z, "a", &a);
    if (st == FOOLC_OK) st = foolc_npz_add(z, "b", &a);
    if (st == FOOLC_OK) st = foolc_npz_add(z, "a", &a);
    if (st == FOOLC_OK) st = foolc_npz_write(z, c->path, c->flag);
    if (st == FOOLC_OK) {
        void *m;
        size_t n;
        st = foolc__npz_write_mem(z, c->flag, &m, &n);
        if (st == FOOLC_OK) foolc_free(m);
    }
    foolc_npz_free(z);
    return st;
}

static foolc_status f_idx_file(const fail_ctx *c)
{
    foolc_array a;
    foolc_status st = foolc_idx_read(c->path, &a);
    if (st == FOOLC_OK) foolc_free(a.data);
    return st;
}

static foolc_status f_idx_write(const fail_ctx *c)
{
    uint8_t px[6] = { 1, 2, 3, 4, 5, 6 };
    foolc_array a = { FOOLC_U8, 2, { 2, 3 }, px };
    return foolc_idx_write(c->path, &a, c->flag);
}

static foolc_status f_data(const fail_ctx *c)
{
    foolc_data d;
    foolc_status st = foolc_data_load(c->path, "train", &d);
    if (st == FOOLC_OK) foolc_data_free(&d);
    return st;
}

/* Fails allocation 1, 2, ... of fn until it succeeds; each failure must be a clean NOMEM. */
static void fail_each(const char *what, foolc_status (*fn)(const fail_ctx *), const fail_ctx *c)
{
    for (uint64_t n = 1;; n++) {
        ck_assert_msg(n < 100000, "%s: never succeeds", what);
        foolc__alloc_fail_at(n);
        foolc_status st = fn(c);
        uint64_t made = foolc__alloc_fail_at(0);
        if (st == FOOLC_OK) {
            ck_assert_msg(made < n, "%s: allocation %llu failed but the call succeeded", what,
                          (unsigned long long)n);
            return;
        }
        ck_assert_msg(st == FOOLC_E_NOMEM, "%s: failing allocation %llu -> %d (%s)", what,
                      (unsigned long long)n, (int)st, foolc_errmsg());
    }
}

START_TEST(test_alloc_failures)
{
    for (int k = 0; k < 3; k++) {
        static const char *const f[] = { "arrays.npz", "arrays_z.npz", "descriptors.npz" };
        size_t len;
        unsigned char *b = slurp(fixture(f[k]), &len);
        fail_ctx c = { b, len, fixture(f[k]), NULL, 0 };
        fail_each(f[k], f_npz_mem, &c);
        fail_each(f[k], f_npz_file, &c);
        free(b);
    }
    char path[256];
    tu_tmpname(path, sizeof path, "fail.out");
    for (int flag = 0; flag < 2; flag++) {
        fail_ctx c = { NULL, 0, path, NULL, flag };
        fail_each("npz write", f_npz_write, &c);
        fail_each("idx write", f_idx_write, &c);
        fail_each("idx read", f_idx_file, &c);
    }
    remove(path);
    fail_ctx c = { NULL, 0, fixture("img-idx3-ubyte.gz"), NULL, 0 };
    fail_each("idx gz", f_idx_file, &c);
    char dir[256];
    make_tmpdir(dir, sizeof dir);
    uint8_t px[30], ytr[5] = { 0, 1, 2, 1, 0 }, yte[3] = { 0, 0, 0 };
    make_set(dir, px, ytr, yte);
    c.path = dir;
    fail_each("data dir", f_data, &c);
    rm_files(dir, k_set_files, 4);
    tu_tmpname(path, sizeof path, "fail.npz");
    float xf[8] = { 0 };
    int64_t y[2] = { 3, 1 };
    put_npz(path, &(foolc_array){ FOOLC_F32, 4, { 2, 1, 2, 2 }, xf },
            &(foolc_array){ FOOLC_I64, 1, { 2 }, y });
    c.path = path;
    fail_each("data npz", f_data, &c);
    remove(path);
}
END_TEST

/* ---- random mutations --------------------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A random mutation of src into dst (capacity len + 64): flips, byte and word pokes,
 * truncation, insertion, deletion and copies. */
static size_t mutate(uint64_t *s, const unsigned char *src, size_t len, unsigned char *dst)
{
    static const uint32_t words[] = { 0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                                      0xFFFFFFFF, 0xFFFFFFFE, 46, 22 };
    size_t n = len;
    memcpy(dst, src, len);
    for (int ops = 1 + (int)(rnd(s) % 4); ops > 0 && n > 0; ops--) {
        size_t at = rnd(s) % n;
        switch (rnd(s) % 7) {
        case 0: dst[at] ^= (unsigned char)(1u << (rnd(s) % 8)); break;
        case 1: dst[at] = (unsigned char)rnd(s); break;
        case 2:
            if (at + 4 <= n) {
                uint32_t w = words[rnd(s) % (sizeof words / sizeof words[0])];
                memcpy(dst + at, &w, 4);
            }
            break;
        case 3: n = at; break;
        case 4: {
            size_t k = 1 + rnd(s) % 8;
            if (n + k > len + 64) break;
            memmove(dst + at + k, dst + at, n - at);
            for (size_t i = 0; i < k; i++) dst[at + i] = (unsigned char)rnd(s);
            n += k;
            break;
        }
        case 5: {
            size_t k = 1 + rnd(s) % 16;
            if (at + k > n) k = n - at;
            memmove(dst + at, dst + at + k, n - at - k);
            n -= k;
            break;
        }
        default: {
            size_t from = rnd(s) % n, k = 1 + rnd(s) % 32;
            if (from + k > n) k = n - from;
            if (at + k > n) k = n - at;
            memmove(dst + at, dst + from, k);
        }
        }
    }
    return n;
}

static foolc_status p_npz(const unsigned char *b, size_t n)
{
    foolc_npz *z;
    foolc_status st = foolc_npz_read_mem(b, n, &z);
    if (st == FOOLC_OK) foolc_npz_free(z);
    return st;
}

static foolc_status p_npy(const unsigned char *b, size_t n)
{
    foolc_array a;
    foolc_status st = foolc__npy_read_mem(b, n, &a);
    if (st == FOOLC_OK) foolc__array_clear(&a);
    return st;
}

static foolc_status p_idx(const unsigned char *b, size_t n)
{
    foolc_array a;
    foolc_status st = foolc__idx_read_mem(b, n, &a);
    if (st == FOOLC_OK) foolc_free(a.data);
    return st;
}

/* Mutated archives, .npy files and IDX files: only OK or FOOLC_E_FORMAT, never a crash
 * (run under -fsanitize=address,undefined by hand; FOOLC_FUZZ_SECONDS sets the budget). */
START_TEST(test_fuzz_mutations)
{
    const char *env = getenv("FOOLC_FUZZ_SECONDS");
    double budget = env ? atof(env) : 1.0;
    struct {
        unsigned char *b;
        size_t len;
        foolc_status (*parse)(const unsigned char *, size_t);
    } seeds[8];
    int ns = 0;
    seeds[ns].b = slurp(fixture("arrays.npz"), &seeds[ns].len), seeds[ns++].parse = p_npz;
    seeds[ns].b = slurp(fixture("arrays_z.npz"), &seeds[ns].len), seeds[ns++].parse = p_npz;
    seeds[ns].b = slurp(fixture("descriptors.npz"), &seeds[ns].len), seeds[ns++].parse = p_npz;
    foolc_npz *z = every_dtype();
    void *m;
    foolc__npz_force_zip64 = 1;
    ck_ok(foolc__npz_write_mem(z, 1, &m, &seeds[ns].len));
    foolc__npz_force_zip64 = 0;
    seeds[ns].b = malloc(seeds[ns].len);
    memcpy(seeds[ns].b, m, seeds[ns].len);
    seeds[ns++].parse = p_npz;
    foolc_free(m);
    foolc_npz_free(z);
    seeds[ns].b = malloc(256);
    int16_t fo[6] = { 0, 3, 1, 4, 2, 5 };
    seeds[ns].len = make_npy(seeds[ns].b, 1, "{'descr': '>i2', 'fortran_order': True, "
                             "'shape': (2, 3), }", fo, 12);
    seeds[ns++].parse = p_npy;
    seeds[ns].b = malloc(256);
    seeds[ns].len = make_npy(seeds[ns].b, 2, "{'descr': '<U3', 'fortran_order': False, "
                             "'shape': (), }", "a\0\0\0b\0\0\0\0\0\0\0", 12);
    seeds[ns++].parse = p_npy;
    seeds[ns].b = idx_bytes(0, &seeds[ns].len), seeds[ns++].parse = p_idx;
    seeds[ns].b = idx_bytes(1, &seeds[ns].len), seeds[ns++].parse = p_idx;
    uint64_t state = 0x9E3779B97F4A7C15ull, runs = 0;
    for (int k = 0; k < ns; k++) {
        unsigned char *dst = malloc(seeds[k].len + 64);
        ck_assert_int_eq(seeds[k].parse(seeds[k].b, seeds[k].len), FOOLC_OK);
        double end = now_s() + budget / ns;
        for (uint64_t it = 0;; it++) {
            if ((it & 63) == 0 && now_s() > end) break;
            size_t n = mutate(&state, seeds[k].b, seeds[k].len, dst);
            foolc_status st = seeds[k].parse(dst, n);
            ck_assert_msg(st == FOOLC_OK || st == FOOLC_E_FORMAT, "seed %d run %llu -> %d "
                          "(%s)", k, (unsigned long long)it, (int)st, foolc_errmsg());
            runs++;
        }
        free(dst);
        free(seeds[k].b);
    }
    if (env) fprintf(stderr, "fuzz: %llu mutated inputs in %.0f s\n", (unsigned long long)runs,
                     budget);
    ck_assert_uint_gt(runs, 1000);
}
END_TEST

Suite *foolc_suite_data(void);

Suite *foolc_suite_data(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("npz");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_dtype_and_count);
    tcase_add_loop_test(tc, test_npz_numpy_fixtures, 0, 2);
    tcase_add_test(tc, test_npz_data_descriptors);
    tcase_add_test(tc, test_npz_prefixed_archive);
    tcase_add_test(tc, test_npz_args);
    tcase_add_test(tc, test_npz_truncated);
    tcase_add_test(tc, test_npz_bad_crc);
    tcase_add_test(tc, test_npz_bad_members);
    tcase_add_loop_test(tc, test_npy_headers, 0,
                        (int)(sizeof k_npy_cases / sizeof k_npy_cases[0]));
    tcase_add_test(tc, test_npy_conversions);
    tcase_add_loop_test(tc, test_npz_roundtrip, 0, 4);
    tcase_add_test(tc, test_npz_add);
    tcase_add_test(tc, test_npz_numpy_reads_ours);
    suite_add_tcase(s, tc);

    tc = tcase_create("idx");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_idx_fixtures);
    tcase_add_loop_test(tc, test_idx_roundtrip, 0, 2);
    tcase_add_test(tc, test_idx_malformed);
    suite_add_tcase(s, tc);

    tc = tcase_create("dataset");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_data_dir);
    tcase_add_test(tc, test_data_npz);
    tcase_add_loop_test(tc, test_data_fashion_mnist, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_memory_before_checks);
    suite_add_tcase(s, tc);

    tc = tcase_create("robustness");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_alloc_failures);
    tcase_add_test(tc, test_fuzz_mutations);
    suite_add_tcase(s, tc);
    return s;
}
