/* The ONNX importer (lib/onnx/, docs/onnx.md): an ONNX ModelProto, parsed by protobuf-c
 * against Debian's onnx.proto, becomes a graph architecture text plus named float arrays
 * (docs/net.md, "Graph architecture text"), built into a net by the engine's own NPZ
 * constructor. Never installed. */
#ifndef FOOLC_ONNX_H
#define FOOLC_ONNX_H

#include "internal.h"

/* Size caps: the file, the memory protobuf-c may take for it (on top of a fixed allowance,
 * a multiple of the file's size), the nesting of messages, the graph. */
#define FOOLC_ONNX_MAX_FILE ((size_t)1 << 31)
#define FOOLC_ONNX_MAX_DEPTH 32
#define FOOLC_ONNX_MAX_NODES 65536
#define FOOLC_ONNX_MAX_VALUES (1LL << 28) /* elements of one constant tensor */

/* Whether the file at path is to be read as ONNX: its name ends in ".onnx" (any case), or
 * it does not start like a zip archive and does start like a ModelProto (field 1,
 * ir_version). Never fails: an unreadable file is left to the NPZ reader's message. */
int foolc__onnx_sniff(const char *path);

/* Reads path as an ONNX model (FOOLC_E_IO, _FORMAT, _UNSUPPORTED, _NOMEM, or the engine's
 * errors); src names it in messages. */
foolc_status foolc__onnx_load(const char *path, foolc_net **out);

/* The same from bytes in memory (what the fuzz target and the tests call). */
foolc_status foolc__onnx_load_mem(const void *data, size_t size, const char *src,
                                  foolc_net **out);

/* The graph text and the members the importer made (for tests): arch is a new string,
 * z a new archive holding "arch" and every member; either may be NULL if not wanted. */
foolc_status foolc__onnx_convert(const void *data, size_t size, const char *src, char **arch,
                                 foolc_npz **z);

/* A float16 bit pattern as a float (proto.c; tested on its own). */
float foolc__ox_half(uint16_t h);

#endif
