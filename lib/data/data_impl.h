/* Internal interface of the data layer (lib/data/): byte sources and sinks over memory or a
 * FILE, optionally through zlib (gzip or raw deflate), array helpers, and the in-memory
 * parsers that the tests feed with mutated bytes. Never installed. */
#ifndef FOOLC_DATA_IMPL_H
#define FOOLC_DATA_IMPL_H

#include "internal.h"

#include <stdio.h>
#define ZLIB_CONST
#include <zlib.h>

/* Compression of a source or sink. */
enum { FOOLC__Z_NONE = 0, FOOLC__Z_GZIP = 1, FOOLC__Z_RAW = 2 };

/* A byte source: memory or a FILE, plain or inflated. Errors set the thread's message
 * without context (callers prefix the file and member). */
typedef struct foolc__src {
    FILE *fp;                 /* input file, or NULL when reading memory */
    const unsigned char *in;  /* input bytes: the memory buffer, or buf for a file */
    size_t in_len, in_pos;
    unsigned char *buf;       /* read buffer of a file source */
    int z, z_ready, z_end;    /* FOOLC__Z_*, inflate initialised, stream ended */
    int want_crc;
    z_stream zs;
    uint32_t crc;             /* CRC-32 of the bytes handed out (when want_crc) */
    uint64_t out;             /* bytes handed out */
} foolc__src;

void foolc__src_mem(foolc__src *s, const void *p, size_t len, int z);
void foolc__src_file(foolc__src *s, FILE *fp, int z);
/* Copies up to n input bytes (before decompression) into dst without consuming them;
 * only before the first read and for n <= 64 KiB. Raw-deflate sources read memory only. */
foolc_status foolc__src_peek(foolc__src *s, void *dst, size_t n, size_t *got);
/* Reads up to n bytes; *got < n only at the end of the data. A truncated or corrupt
 * compressed stream is FOOLC_E_FORMAT. */
foolc_status foolc__src_read(foolc__src *s, void *dst, size_t n, size_t *got);
/* Reads exactly n bytes or fails with FOOLC_E_FORMAT "truncated". */
foolc_status foolc__src_need(foolc__src *s, void *dst, size_t n, const char *what);
/* Reads exactly n bytes into a new buffer (*out, foolc__free it). From a compressed source
 * the buffer grows with the data that actually arrives (doubling from 1 MiB), so a size
 * the stream does not hold fails as truncated before it is allocated; from a plain one
 * (whose size the caller checked against the bytes present) it is allocated at once. */
foolc_status foolc__src_need_alloc(foolc__src *s, size_t n, const char *what,
                                   unsigned char **out);
/* FOOLC_OK when no byte is left, else FOOLC_E_FORMAT "trailing bytes after <what>". */
foolc_status foolc__src_expect_end(foolc__src *s, const char *what);
void foolc__src_close(foolc__src *s);

/* A byte sink: memory (grown as needed) or a FILE, plain or deflated. */
typedef struct foolc__sink {
    FILE *fp;                 /* output file, or NULL to collect in mem */
    unsigned char *mem;       /* memory output; the caller may take it (set to NULL) */
    size_t len, cap;
    unsigned char *buf;       /* deflate output chunk of a file sink */
    int z, z_ready;
    z_stream zs;
    uint64_t out;             /* bytes written out (after compression) */
} foolc__sink;

foolc_status foolc__sink_init(foolc__sink *k, FILE *fp, int z);
foolc_status foolc__sink_write(foolc__sink *k, const void *p, size_t n);
/* Ends the compressed stream (no-op when plain). */
foolc_status foolc__sink_finish(foolc__sink *k);
void foolc__sink_close(foolc__sink *k);

/* Reads a whole file. what names the kind of file in messages ("npz", "idx"). */
foolc_status foolc__read_file(const char *path, const char *what, unsigned char **buf,
                              size_t *len);
/* CRC-32 over any length. */
uint32_t foolc__crc32(uint32_t crc, const void *p, size_t n);

/* Non-zero on a little-endian host. */
int foolc__host_le(void);
/* Reverses the bytes of each of count elements of size bytes. */
void foolc__swap(void *p, size_t count, size_t size);
/* The byte count of a valid array (dtype, ndim and shape checked), or -1. */
int64_t foolc__array_bytes(const foolc_array *a);
/* Frees a->data and zeroes *a. */
void foolc__array_clear(foolc_array *a);
/* Copies a (validated) into out with freshly allocated data. */
foolc_status foolc__array_copy(const foolc_array *a, foolc_array *out, const char *ctx);
const char *foolc__dtype_name(foolc_dtype t);

/* Decodes one .npy file from s. size: its exact length in bytes, checked against the
 * header before anything is allocated. Messages carry no file name (callers prefix it). */
foolc_status foolc__npy_read(foolc__src *s, uint64_t size, foolc_array *out);
/* Reads only the magic and header of a .npy file of size bytes from s, with the same checks
 * (the data bytes it promises are exactly those present): out gets its dtype and shape,
 * data NULL (a string array: uint8 with the declared shape). Allocates nothing large. */
foolc_status foolc__npy_read_header(foolc__src *s, uint64_t size, foolc_array *out);
/* Formats the .npy header (magic to the '\n', padded to 64 bytes) of a into hdr. */
foolc_status foolc__npy_header(const foolc_array *a, char *hdr, size_t cap, size_t *len);
/* The .npy parser on a buffer (for tests and fuzzing). */
foolc_status foolc__npy_read_mem(const void *buf, size_t len, foolc_array *out);
/* Reads only the header of an IDX file, with the same checks against the file's size:
 * out gets dtype and shape, data NULL. */
foolc_status foolc__idx_read_header(const char *path, foolc_array *out);
/* The IDX parser on a buffer, plain or gzipped (for tests and fuzzing). */
foolc_status foolc__idx_read_mem(const void *buf, size_t len, foolc_array *out);
/* foolc_npz_read with a look before anything is inflated: once the directory and every
 * member's .npy header have passed their checks, check(user, z) sees z holding each
 * member's dtype and shape (data NULL) and may refuse (its status is returned); only then
 * are the members decoded. */
typedef foolc_status (*foolc__npz_check)(void *user, const foolc_npz *z);
foolc_status foolc__npz_read_checked(const char *path, foolc__npz_check check, void *user,
                                     foolc_npz **out);
/* Writes an archive into a buffer (release with foolc_free). */
foolc_status foolc__npz_write_mem(const foolc_npz *z, int compress, void **buf, size_t *len);
/* Test hook: non-zero makes the writer use zip64 records for every member. */
extern int foolc__npz_force_zip64;

#endif
