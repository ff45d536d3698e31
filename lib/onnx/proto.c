/* ONNX bytes to a ModelProto, with protobuf-c (C generated at build time from Debian's
 * onnx.proto), and the decoding of tensors. Hostile input is bounded three ways before and
 * during the parse: the nesting of messages is measured first (protobuf-c recurses once
 * per level and has no limit of its own), driven by the generated descriptors, which also
 * rejects malformed wire data early; protobuf-c allocates through the library's hook with
 * a cap; and every tensor's dims, counts and byte sizes are checked against each other. */
#include "onnx/onnx_impl.h"

#include <math.h>
#include <string.h>

/* ---- allocator: the library's hook, capped ---- */

typedef union ox_hdr {
    size_t size;
    max_align_t align;
} ox_hdr;

static void *pb_alloc(void *user, size_t size)
{
    ox_proto *p = user;
    if (size > p->cap || p->used > p->cap - size) {
        p->capped = 1;
        return NULL;
    }
    ox_hdr *h = foolc__malloc(sizeof(ox_hdr) + size);
    if (!h) {
        p->failed = 1;
        return NULL;
    }
    h->size = size;
    p->used += size;
    if (p->used > p->peak) p->peak = p->used;
    return h + 1;
}

static void pb_free(void *user, void *ptr)
{
    ox_proto *p = user;
    if (!ptr) return;
    ox_hdr *h = (ox_hdr *)ptr - 1;
    p->used -= h->size;
    foolc__free(h);
}

/* ---- the nesting of messages, before protobuf-c sees the bytes ---- */

static int varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end) return -1;
        uint8_t b = *p++;
        if (shift == 63 && b > 1) return -1;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* 0: fine; 1: malformed at *where; 2: nested deeper than FOOLC_ONNX_MAX_DEPTH. */
static int scan(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                int depth, const uint8_t **where)
{
    if (depth > FOOLC_ONNX_MAX_DEPTH) return 2;
    while (p < end) {
        *where = p;
        uint64_t key, len;
        if (varint(&p, end, &key)) return 1;
        unsigned wt = (unsigned)(key & 7);
        uint64_t id = key >> 3;
        if (id == 0 || id > 0x1fffffff) return 1;
        switch (wt) {
        case 0:
            if (varint(&p, end, &len)) return 1;
            break;
        case 1:
            if (end - p < 8) return 1;
            p += 8;
            break;
        case 5:
            if (end - p < 4) return 1;
            p += 4;
            break;
        case 2: {
            if (varint(&p, end, &len) || len > (uint64_t)(end - p)) return 1;
            const ProtobufCFieldDescriptor *f =
                d ? protobuf_c_message_descriptor_get_field(d, (unsigned)id) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int r = scan(f->descriptor, p, p + len, depth + 1, where);
                if (r) return r;
            }
            p += len;
            break;
        }
        default: /* groups (3, 4) are not in onnx.proto; 6, 7 do not exist */
            return 1;
        }
    }
    return 0;
}

foolc_status foolc__ox_parse(const void *data, size_t size, const char *src, ox_proto *p)
{
    memset(p, 0, sizeof *p);
    if (!data && size) return foolc__error(FOOLC_E_INVALID, "onnx: %s: no data", src);
    if (size == 0) return foolc__error(FOOLC_E_FORMAT, "onnx: %s: the file is empty", src);
    if (size > FOOLC_ONNX_MAX_FILE)
        return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %zu bytes, more than the %zu a protobuf "
                            "message can hold", src, size, FOOLC_ONNX_MAX_FILE);
    const uint8_t *b = data, *where = b;
    int r = scan(&onnx__model_proto__descriptor, b, b + size, 0, &where);
    if (r == 1)
        return foolc__error(FOOLC_E_FORMAT, "onnx: %s: not a valid protobuf message (malformed "
                            "or truncated at byte %zu of %zu)", src, (size_t)(where - b), size);
    if (r == 2)
        return foolc__error(FOOLC_E_FORMAT, "onnx: %s: messages nested more than %d deep "
                            "(at byte %zu)", src, FOOLC_ONNX_MAX_DEPTH, (size_t)(where - b));
    /* protobuf-c's structs are bigger than the bytes they come from: a repeated field of
     * empty messages costs ~100 bytes of structs per 2 bytes of input. */
    p->cap = size > ((size_t)1 << 40) / 64 ? SIZE_MAX : ((size_t)64 << 20) + 64 * size;
    ProtobufCAllocator a = { pb_alloc, pb_free, p };
    p->model = onnx__model_proto__unpack(&a, size, b);
    if (!p->model) {
        if (p->failed) return foolc__nomem("the ONNX model");
        if (p->capped)
            return foolc__error(FOOLC_E_FORMAT, "onnx: %s: parsing would take more than %zu MB "
                                "for %zu bytes", src, p->cap >> 20, size);
        return foolc__error(FOOLC_E_FORMAT, "onnx: %s: not a valid ONNX model (protobuf-c "
                            "could not unpack a ModelProto from its %zu bytes)", src, size);
    }
    return FOOLC_OK;
}

void foolc__ox_proto_free(ox_proto *p)
{
    if (p->model) {
        ProtobufCAllocator a = { pb_alloc, pb_free, p };
        onnx__model_proto__free_unpacked(p->model, &a);
    }
    p->model = NULL;
}

/* ---- tensors ---- */

float foolc__ox_half(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0) v = ldexpf((float)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(m | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

float foolc__ox_bfloat(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

const char *foolc__ox_dtype_name(int32_t t)
{
    static const char *const names[] = { "undefined", "float", "uint8", "int8", "uint16",
                                         "int16", "int32", "int64", "string", "bool",
                                         "float16", "double", "uint32", "uint64", "complex64",
                                         "complex128", "bfloat16" };
    return t >= 0 && t < (int32_t)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

void foolc__ox_tensor_free(ox_tensor *t)
{
    foolc__free(t->f);
    foolc__free(t->i);
    t->f = NULL;
    t->i = NULL;
}

/* Bytes per element in raw_data, 0 for types the importer does not read. */
static size_t raw_size(int32_t t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
        return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return 1;
    default: return 0;
    }
}

static int is_float_type(int32_t t)
{
    return t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || t == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ||
           t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 ||
           t == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
}

/* Element j of raw little-endian data of type t, as a double (floats) or int64. */
static void raw_at(const uint8_t *p, int32_t t, double *d, int64_t *i)
{
    uint64_t u = 0;
    size_t es = raw_size(t);
    for (size_t k = 0; k < es; k++) u |= (uint64_t)p[k] << (8 * k);
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        *d = f;
        break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: memcpy(d, &u, 8); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: *d = foolc__ox_half((uint16_t)u); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: *d = foolc__ox_bfloat((uint16_t)u); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: *i = (int32_t)(uint32_t)u; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: *i = (int16_t)(uint16_t)u; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: *i = (int8_t)(uint8_t)u; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: *i = u > INT64_MAX ? INT64_MAX : (int64_t)u; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: *i = u != 0; break;
    default: memcpy(i, &u, 8); break; /* int64, uint32, uint16, uint8: u holds the value */
    }
}

foolc_status foolc__ox_tensor(const Onnx__TensorProto *t, const char *src, const char *what,
                              ox_tensor *out)
{
    memset(out, 0, sizeof *out);
    if (!t) return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %s: no tensor", src, what);
    if ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
        t->n_external_data) {
        const char *loc = "?";
        for (size_t k = 0; k < t->n_external_data; k++)
            if (t->external_data[k] && t->external_data[k]->key &&
                !strcmp(t->external_data[k]->key, "location") && t->external_data[k]->value)
                loc = t->external_data[k]->value;
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: %s keeps its data in an external "
                            "file ('%s'); external data is not supported: save the model with "
                            "its weights inside (onnx.save(model, path, "
                            "save_as_external_data=False), under 2 GB)", src, what, loc);
    }
    if (t->segment)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: %s is a segment of a tensor; "
                            "segments are not supported", src, what);
    if (t->n_dims > OX_MAX_RANK)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: %s has %zu dimensions (at most %d)",
                            src, what, t->n_dims, OX_MAX_RANK);
    int64_t count = 1;
    for (size_t k = 0; k < t->n_dims; k++) {
        if (t->dims[k] < 0 || t->dims[k] > FOOLC_ONNX_MAX_VALUES)
            return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %s has dimension %zu = %lld", src,
                                what, k, (long long)t->dims[k]);
        count *= t->dims[k];
        if (count > FOOLC_ONNX_MAX_VALUES)
            return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %s has more than 2^28 values", src,
                                what);
        out->dims[k] = t->dims[k];
    }
    out->rank = (int)t->n_dims;
    out->count = count;
    int32_t dt = t->has_data_type ? t->data_type : 0;
    size_t es = raw_size(dt);
    if (!es)
        return foolc__error(FOOLC_E_UNSUPPORTED, "onnx: %s: %s has data type %s (%d); the "
                            "importer reads float, double, float16, bfloat16 and integer "
                            "tensors", src, what, foolc__ox_dtype_name(dt), (int)dt);
    out->isint = !is_float_type(dt);
    size_t n = (size_t)count;
    if (out->isint) out->i = foolc__malloc(n * sizeof(int64_t));
    else out->f = foolc__malloc(n * sizeof(float));
    if (!(out->isint ? (void *)out->i : (void *)out->f)) return foolc__nomem("a tensor");
    /* Where the values are: raw_data, or the typed field of this data type. */
    size_t have;
    const char *field;
    if (t->has_raw_data && t->raw_data.len) {
        have = t->raw_data.len;
        field = "raw_data";
        if (have != n * es) goto bad_size;
        for (size_t j = 0; j < n; j++) {
            double d = 0;
            int64_t v = 0;
            raw_at(t->raw_data.data + j * es, dt, &d, &v);
            if (out->isint) out->i[j] = v;
            else out->f[j] = (float)d;
        }
        return FOOLC_OK;
    }
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        have = t->n_float_data, field = "float_data";
        if (have != n) goto bad_count;
        if (n) memcpy(out->f, t->float_data, n * sizeof(float));
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        have = t->n_double_data, field = "double_data";
        if (have != n) goto bad_count;
        for (size_t j = 0; j < n; j++) out->f[j] = (float)t->double_data[j];
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        have = t->n_int64_data, field = "int64_data";
        if (have != n) goto bad_count;
        if (n) memcpy(out->i, t->int64_data, n * sizeof(int64_t));
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        have = t->n_uint64_data, field = "uint64_data";
        if (have != n) goto bad_count;
        for (size_t j = 0; j < n; j++)
            out->i[j] = t->uint64_data[j] > INT64_MAX ? INT64_MAX : (int64_t)t->uint64_data[j];
        break;
    default: /* float16, bfloat16 (bit patterns), and the small integers: int32_data */
        have = t->n_int32_data, field = "int32_data";
        if (have != n) goto bad_count;
        for (size_t j = 0; j < n; j++) {
            int32_t v = t->int32_data[j];
            if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16)
                out->f[j] = foolc__ox_half((uint16_t)v);
            else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16)
                out->f[j] = foolc__ox_bfloat((uint16_t)v);
            else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL)
                out->i[j] = v != 0;
            else
                out->i[j] = v;
        }
        break;
    }
    return FOOLC_OK;
bad_size:
    foolc__ox_tensor_free(out);
    return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %s: %s holds %zu bytes, its %lld %s values "
                        "need %zu", src, what, field, have, (long long)count,
                        foolc__ox_dtype_name(dt), n * es);
bad_count:
    foolc__ox_tensor_free(out);
    return foolc__error(FOOLC_E_FORMAT, "onnx: %s: %s: %s holds %zu values, its shape needs "
                        "%lld", src, what, field, have, (long long)count);
}
