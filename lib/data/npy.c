/* The .npy format, versions 1.0, 2.0 and 3.0: header parsing (a Python dict literal) and
 * formatting, dtype mapping, byte-order and Fortran-order conversion, and string arrays
 * ('<U', '|S') turned into one uint8 array of UTF-8 bytes. */
#include "data_impl.h"

#include <string.h>

#define NPY_MAX_HEADER ((uint32_t)1 << 20) /* numpy itself refuses more than 10000 bytes */
#define NPY_MAX_ITEM ((uint64_t)1 << 28)   /* bytes per element of a string dtype */

typedef struct npy_header {
    char descr[32];
    int have_descr, have_fortran, have_shape;
    int fortran;
    int32_t ndim;
    int64_t shape[FOOLC_MAX_DIMS];
} npy_header;

typedef struct npy_type {
    foolc_dtype dtype;
    char kind;   /* 0 for numbers, 'U' (UCS-4) or 'S' (bytes) for strings */
    size_t item; /* bytes per element in the file */
    int swap;    /* file byte order differs from the host's */
} npy_type;

typedef struct cursor {
    const char *p, *end;
} cursor;

static foolc_status bad(const char *what)
{
    return foolc__error(FOOLC_E_FORMAT, "bad .npy header: %s", what);
}

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int eat_word(cursor *c, const char *w)
{
    size_t n = strlen(w);
    skip_ws(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return 0;
    c->p += n;
    return 1;
}

static foolc_status parse_str(cursor *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return bad("expected a string");
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\0') return bad("unsupported character in a string");
        if (n + 1 >= cap) return bad("string too long");
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return bad("unterminated string");
    c->p++;
    out[n] = '\0';
    return FOOLC_OK;
}

static foolc_status parse_int(cursor *c, int64_t *v)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return bad("'shape' must hold non-negative integers");
    int64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int d = *c->p++ - '0';
        if (x > (INT64_MAX - d) / 10) return bad("dimension too large");
        x = x * 10 + d;
    }
    if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 long */
    *v = x;
    return FOOLC_OK;
}

static foolc_status parse_shape(cursor *c, npy_header *h)
{
    if (!eat(c, '(')) return bad("'shape' must be a tuple");
    h->ndim = 0;
    if (eat(c, ')')) return FOOLC_OK;
    for (;;) {
        int64_t v = 0;
        FOOLC__CHECK(parse_int(c, &v));
        if (h->ndim == FOOLC_MAX_DIMS)
            return foolc__error(FOOLC_E_FORMAT, "bad .npy header: more than %d dimensions",
                                FOOLC_MAX_DIMS);
        h->shape[h->ndim++] = v;
        if (eat(c, ')')) {
            if (h->ndim == 1) return bad("'shape' of one dimension needs a trailing comma");
            return FOOLC_OK;
        }
        if (!eat(c, ',')) return bad("expected ',' or ')' in 'shape'");
        if (eat(c, ')')) return FOOLC_OK;
    }
}

static foolc_status parse_header(const char *txt, size_t len, npy_header *h)
{
    cursor c = { txt, txt + len };
    memset(h, 0, sizeof *h);
    if (!eat(&c, '{')) return bad("expected '{'");
    while (!eat(&c, '}')) {
        char key[32];
        FOOLC__CHECK(parse_str(&c, key, sizeof key));
        if (!eat(&c, ':')) return bad("expected ':'");
        if (strcmp(key, "descr") == 0) {
            if (h->have_descr) return bad("'descr' given twice");
            if (eat(&c, '['))
                return foolc__error(FOOLC_E_FORMAT, "structured dtypes (records) are not "
                                    "supported");
            FOOLC__CHECK(parse_str(&c, h->descr, sizeof h->descr));
            h->have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (h->have_fortran) return bad("'fortran_order' given twice");
            if (eat_word(&c, "True")) h->fortran = 1;
            else if (eat_word(&c, "False")) h->fortran = 0;
            else return bad("'fortran_order' must be True or False");
            h->have_fortran = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (h->have_shape) return bad("'shape' given twice");
            FOOLC__CHECK(parse_shape(&c, h));
            h->have_shape = 1;
        } else {
            return foolc__error(FOOLC_E_FORMAT, "bad .npy header: unknown key '%s'", key);
        }
        if (eat(&c, ',')) continue;
        if (eat(&c, '}')) break;
        return bad("expected ',' or '}'");
    }
    skip_ws(&c);
    if (c.p != c.end) return bad("unexpected characters after the dictionary");
    if (!h->have_descr) return bad("no 'descr'");
    if (!h->have_fortran) return bad("no 'fortran_order'");
    if (!h->have_shape) return bad("no 'shape'");
    return FOOLC_OK;
}

static foolc_status unsupported(const char *descr, const char *why)
{
    return foolc__error(FOOLC_E_FORMAT, "dtype '%s' is not supported%s%s", descr,
                        why ? ": " : "", why ? why : "");
}

static foolc_status parse_descr(const char *d, npy_type *t)
{
    memset(t, 0, sizeof *t);
    char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return unsupported(d, "no byte-order character");
    char kind = d[1];
    if (kind == 'O') return unsupported(d, "object arrays (pickled Python objects)");
    if (kind == 'V') return unsupported(d, "void or structured dtypes");
    const char *q = d + 2;
    uint64_t n = 0;
    if (kind == '\0' || *q == '\0') return unsupported(d, NULL);
    for (; *q; q++) {
        if (*q < '0' || *q > '9') return unsupported(d, NULL);
        n = n * 10 + (uint64_t)(*q - '0');
        if (n > NPY_MAX_ITEM) return unsupported(d, "element too large");
    }
    int host_le = foolc__host_le();
    int file_le = order == '<' || (order == '=' && host_le);
    if (order == '|') file_le = host_le;
    t->item = (size_t)n;
    switch (kind) {
    case 'b':
        if (n == 1) t->dtype = FOOLC_BOOL;
        else return unsupported(d, NULL);
        break;
    case 'i':
        if (n == 1) t->dtype = FOOLC_I8;
        else if (n == 2) t->dtype = FOOLC_I16;
        else if (n == 4) t->dtype = FOOLC_I32;
        else if (n == 8) t->dtype = FOOLC_I64;
        else return unsupported(d, NULL);
        break;
    case 'u':
        if (n == 1) t->dtype = FOOLC_U8;
        else if (n == 2) t->dtype = FOOLC_U16;
        else if (n == 4) t->dtype = FOOLC_U32;
        else if (n == 8) t->dtype = FOOLC_U64;
        else return unsupported(d, NULL);
        break;
    case 'f':
        if (n == 4) t->dtype = FOOLC_F32;
        else if (n == 8) t->dtype = FOOLC_F64;
        else return unsupported(d, "only float32 and float64");
        break;
    case 'U':
        t->kind = 'U';
        t->dtype = FOOLC_U8;
        t->item = (size_t)n * 4;
        break;
    case 'S':
    case 'a':
        t->kind = 'S';
        t->dtype = FOOLC_U8;
        break;
    default:
        return unsupported(d, NULL);
    }
    t->swap = file_le != host_le && (t->kind == 'U' || (t->kind == 0 && t->item > 1));
    return FOOLC_OK;
}

/* Copies a Fortran-ordered (column-major) array into C order. */
static void fortran_to_c(const unsigned char *src, unsigned char *dst, const int64_t *shape,
                         int32_t nd, size_t item, int64_t count)
{
    int64_t idx[FOOLC_MAX_DIMS] = { 0 }, stride[FOOLC_MAX_DIMS];
    stride[0] = 1;
    for (int32_t k = 1; k < nd; k++) stride[k] = stride[k - 1] * shape[k - 1];
    int64_t off = 0;
    for (int64_t i = 0; i < count; i++) {
        memcpy(dst + (size_t)i * item, src + (size_t)off * item, item);
        for (int32_t k = nd - 1; k >= 0; k--) {
            if (++idx[k] < shape[k]) {
                off += stride[k];
                break;
            }
            off -= stride[k] * (shape[k] - 1);
            idx[k] = 0;
        }
    }
}

static size_t put_utf8(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Turns the (at most one) string of raw into a 1-d uint8 array of its bytes, UTF-8 for
 * 'U', as stored for 'S'; trailing NULs are dropped. */
static foolc_status string_to_bytes(const npy_type *t, const unsigned char *raw,
                                    int64_t count, foolc_array *out)
{
    size_t n = count ? t->item : 0, len = 0;
    unsigned char *b;
    if (t->kind == 'S') {
        while (n > 0 && raw[n - 1] == 0) n--;
        b = foolc__malloc(n);
        if (!b) return foolc__nomem("a string");
        memcpy(b, raw, n);
        len = n;
    } else {
        size_t m = n / 4;
        uint32_t cp;
        while (m > 0) {
            memcpy(&cp, raw + (m - 1) * 4, 4);
            if (cp != 0) break;
            m--;
        }
        b = foolc__malloc(m * 4);
        if (!b) return foolc__nomem("a string");
        for (size_t i = 0; i < m; i++) {
            memcpy(&cp, raw + i * 4, 4);
            if (t->swap) foolc__swap(&cp, 1, 4);
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                foolc__free(b);
                return foolc__error(FOOLC_E_FORMAT, "string holds an invalid code point "
                                    "0x%lx", (unsigned long)cp);
            }
            len += put_utf8(b + len, cp);
        }
    }
    memset(out, 0, sizeof *out);
    out->dtype = FOOLC_U8;
    out->ndim = 1;
    out->shape[0] = (int64_t)len;
    out->data = b;
    return FOOLC_OK;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads and checks the magic and header of a .npy file of size bytes: its dtype and shape
 * (with data NULL) in *shape, its element type, header and count, and that the data bytes
 * the header promises are exactly those the file holds. Nothing large is allocated. */
static foolc_status read_head(foolc__src *s, uint64_t size, foolc_array *shape, npy_type *t,
                              npy_header *h, int64_t *count_out, uint64_t *nbytes_out)
{
    unsigned char pre[12];
    memset(shape, 0, sizeof *shape);
    if (size < 10)
        return foolc__error(FOOLC_E_FORMAT, "not a .npy file (%llu bytes)",
                            (unsigned long long)size);
    FOOLC__CHECK(foolc__src_need(s, pre, 8, "the .npy magic"));
    if (memcmp(pre, "\x93NUMPY", 6) != 0)
        return foolc__error(FOOLC_E_FORMAT, "not a .npy file (bad magic)");
    uint32_t hlen, pre_len;
    if (pre[6] == 1 && pre[7] == 0) {
        FOOLC__CHECK(foolc__src_need(s, pre + 8, 2, "the .npy header length"));
        hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
        pre_len = 10;
    } else if ((pre[6] == 2 || pre[6] == 3) && pre[7] == 0) {
        FOOLC__CHECK(foolc__src_need(s, pre + 8, 4, "the .npy header length"));
        hlen = le32(pre + 8);
        pre_len = 12;
    } else {
        return foolc__error(FOOLC_E_FORMAT, "unsupported .npy version %u.%u", pre[6], pre[7]);
    }
    if (hlen > NPY_MAX_HEADER || pre_len + (uint64_t)hlen > size)
        return foolc__error(FOOLC_E_FORMAT, "bad .npy header length %lu (the file holds "
                            "%llu bytes)", (unsigned long)hlen, (unsigned long long)size);
    char *txt = foolc__malloc(hlen);
    if (!txt) return foolc__nomem("a .npy header");
    foolc_status st = foolc__src_need(s, txt, hlen, "the .npy header");
    if (st == FOOLC_OK) st = parse_header(txt, hlen, h);
    foolc__free(txt);
    FOOLC__CHECK(st);

    FOOLC__CHECK(parse_descr(h->descr, t));
    shape->dtype = t->dtype;
    shape->ndim = h->ndim;
    memcpy(shape->shape, h->shape, sizeof h->shape);
    int64_t count = foolc_array_count(shape);
    if (count < 0 || (t->item && (uint64_t)count > UINT64_MAX / t->item))
        return foolc__error(FOOLC_E_FORMAT, "shape too large");
    uint64_t nbytes = (uint64_t)count * t->item, have = size - pre_len - hlen;
    if (nbytes != have)
        return foolc__error(FOOLC_E_FORMAT, "the header promises %llu data bytes, the file "
                            "holds %llu", (unsigned long long)nbytes,
                            (unsigned long long)have);
    if (t->kind && count > 1)
        return foolc__error(FOOLC_E_FORMAT, "string arrays must hold a single string; this "
                            "one holds %lld", (long long)count);
    *count_out = count;
    *nbytes_out = nbytes;
    return FOOLC_OK;
}

foolc_status foolc__npy_read_header(foolc__src *s, uint64_t size, foolc_array *out)
{
    npy_type t;
    npy_header h;
    int64_t count;
    uint64_t nbytes;
    return read_head(s, size, out, &t, &h, &count, &nbytes);
}

foolc_status foolc__npy_read(foolc__src *s, uint64_t size, foolc_array *out)
{
    npy_type t;
    npy_header h;
    int64_t count;
    uint64_t nbytes = 0;   /* set by read_head (gcc -O3 cannot see it) */
    foolc_array shape;
    memset(out, 0, sizeof *out);
    FOOLC__CHECK(read_head(s, size, &shape, &t, &h, &count, &nbytes));
    if (nbytes >= SIZE_MAX) return foolc__nomem("array data");
    unsigned char *raw = NULL;
    foolc_status st = foolc__src_need_alloc(s, (size_t)nbytes, "the array data", &raw);
    if (st == FOOLC_OK) st = foolc__src_expect_end(s, "the array data");
    if (st == FOOLC_OK && t.kind) {
        st = string_to_bytes(&t, raw, count, out);
        foolc__free(raw);
        return st;
    }
    if (st == FOOLC_OK && h.fortran) {
        int32_t big = 0;
        for (int32_t k = 0; k < h.ndim; k++) big += h.shape[k] > 1;
        if (big > 1) {
            unsigned char *c = foolc__malloc((size_t)nbytes);
            if (!c) {
                st = foolc__nomem("a Fortran-order transpose");
            } else {
                fortran_to_c(raw, c, h.shape, h.ndim, t.item, count);
                foolc__free(raw);
                raw = c;
            }
        }
    }
    if (st < 0) {
        foolc__free(raw);
        return st;
    }
    if (t.swap) foolc__swap(raw, (size_t)count, t.item);
    if (t.dtype == FOOLC_BOOL)
        for (int64_t i = 0; i < count; i++) raw[i] = raw[i] != 0;
    *out = shape;
    out->data = raw;
    return FOOLC_OK;
}

foolc_status foolc__npy_read_mem(const void *buf, size_t len, foolc_array *out)
{
    foolc__src s;
    foolc__src_mem(&s, buf, len, FOOLC__Z_NONE);
    foolc_status st = foolc__npy_read(&s, len, out);
    foolc__src_close(&s);
    return st;
}

static const char *descr_of(foolc_dtype t)
{
    static const char *const le[FOOLC_DTYPE_COUNT] = {
        "|u1", "|i1", "<i2", "<i4", "<i8", "<f4", "<f8", "<u2", "<u4", "<u8", "|b1",
    };
    static const char *const be[FOOLC_DTYPE_COUNT] = {
        "|u1", "|i1", ">i2", ">i4", ">i8", ">f4", ">f8", ">u2", ">u4", ">u8", "|b1",
    };
    if ((unsigned)t >= FOOLC_DTYPE_COUNT) return NULL;
    return foolc__host_le() ? le[t] : be[t];
}

foolc_status foolc__npy_header(const foolc_array *a, char *hdr, size_t cap, size_t *len)
{
    const char *descr = descr_of(a->dtype);
    char shape[FOOLC_MAX_DIMS * 24 + 4];
    size_t n = 0;
    if (!descr || a->ndim < 0 || a->ndim > FOOLC_MAX_DIMS || cap < 256)
        return foolc__error(FOOLC_E_INVALID, "npy: invalid array");
    shape[n++] = '(';
    for (int32_t i = 0; i < a->ndim; i++)
        n += (size_t)snprintf(shape + n, sizeof shape - n, i ? ", %lld" : "%lld",
                              (long long)a->shape[i]);
    if (a->ndim == 1) shape[n++] = ',';
    shape[n++] = ')';
    shape[n] = '\0';
    int k = snprintf(hdr + 10, cap - 10, "{'descr': '%s', 'fortran_order': False, "
                     "'shape': %s, }", descr, shape);
    if (k < 0 || (size_t)k + 11 > cap) return foolc__error(FOOLC_E_INVALID, "npy: header");
    size_t total = 10 + (size_t)k + 1;
    total = (total + 63) / 64 * 64; /* numpy aligns the data to 64 bytes */
    if (total > cap) return foolc__error(FOOLC_E_INVALID, "npy: header too long");
    memset(hdr + 10 + k, ' ', total - 10 - (size_t)k - 1);
    hdr[total - 1] = '\n';
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)((total - 10) & 0xFF);
    hdr[9] = (char)((total - 10) >> 8);
    *len = total;
    return FOOLC_OK;
}
