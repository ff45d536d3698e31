/* Internal interface between the two halves of the importer: proto.c (bytes to a checked
 * ModelProto through protobuf-c, tensors and attributes decoded with every count checked)
 * and import.c (the graph: folding, mapping to graph ops, the text and its members). */
#ifndef FOOLC_ONNX_IMPL_H
#define FOOLC_ONNX_IMPL_H

#include "onnx/onnx.h"

#include "onnx.pb-c.h"

#define OX_MAX_RANK 6

/* A decoded constant: float32 values (float, double, float16 and bfloat16 tensors) or
 * int64 values (integer and bool tensors). */
typedef struct ox_tensor {
    int rank;
    int64_t dims[OX_MAX_RANK];
    int64_t count;
    int isint;
    float *f;                    /* count floats when !isint */
    int64_t *i;                  /* count int64 when isint */
} ox_tensor;

/* A parsed model and the memory protobuf-c took for it. */
typedef struct ox_proto {
    Onnx__ModelProto *model;
    size_t used, cap, peak;      /* bytes protobuf-c holds, may hold, held at most */
    int capped, failed;          /* an allocation passed the cap / the hook failed */
} ox_proto;

/* Parses size bytes into p->model: the nesting of messages first (FOOLC_ONNX_MAX_DEPTH,
 * malformed wire data), then protobuf-c with an allocator through the library's hook,
 * capped. Errors: FOOLC_E_FORMAT, FOOLC_E_NOMEM. */
foolc_status foolc__ox_parse(const void *data, size_t size, const char *src, ox_proto *p);
void foolc__ox_proto_free(ox_proto *p);

/* Decodes t (an initializer or a Constant's value; what names it in messages) into out,
 * values allocated with foolc__malloc (freed by foolc__ox_tensor_free). External data is
 * FOOLC_E_UNSUPPORTED; a count, size or dtype that does not add up is FOOLC_E_FORMAT. */
foolc_status foolc__ox_tensor(const Onnx__TensorProto *t, const char *src, const char *what,
                              ox_tensor *out);
void foolc__ox_tensor_free(ox_tensor *t);
/* bfloat16 bit patterns to float (float16: onnx.h). */
float foolc__ox_bfloat(uint16_t h);
/* The name of an ONNX data type ("float16", ...). */
const char *foolc__ox_dtype_name(int32_t t);

#endif
