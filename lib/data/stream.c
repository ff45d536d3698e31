/* Byte sources and sinks of the data layer: memory or FILE input and output, plain or
 * through zlib (gzip or raw deflate) with every zlib allocation routed through
 * foolc__malloc, and reading a whole file into memory. */
#include "data_impl.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#define CHUNK ((size_t)65536)
#define ZMAX ((size_t)1 << 30) /* largest piece handed to zlib at once (fits uInt) */
#define GROW_FIRST ((size_t)1 << 20) /* first buffer of foolc__src_need_alloc */

static voidpf zalloc_fn(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return foolc__malloc(foolc__mul(items, size));
}

static void zfree_fn(voidpf opaque, voidpf p)
{
    (void)opaque;
    foolc__free(p);
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ---- sources ------------------------------------------------------------------------ */

void foolc__src_mem(foolc__src *s, const void *p, size_t len, int z)
{
    memset(s, 0, sizeof *s);
    s->in = p;
    s->in_len = len;
    s->z = z;
}

void foolc__src_file(foolc__src *s, FILE *fp, int z)
{
    memset(s, 0, sizeof *s);
    s->fp = fp;
    s->z = z;
}

static foolc_status ensure_buf(foolc__src *s)
{
    if (s->buf) return FOOLC_OK;
    s->buf = foolc__malloc(CHUNK);
    if (!s->buf) return foolc__nomem("a read buffer");
    s->in = s->buf;
    return FOOLC_OK;
}

static foolc_status read_error(void)
{
    return foolc__error(FOOLC_E_IO, "read failed: %s", strerror(errno));
}

/* Refills the buffer of a file source once it is used up; in_len is 0 at the end. */
static foolc_status fill(foolc__src *s)
{
    if (!s->fp || s->in_pos < s->in_len) return FOOLC_OK;
    FOOLC__CHECK(ensure_buf(s));
    s->in_pos = 0;
    s->in_len = fread(s->buf, 1, CHUNK, s->fp);
    if (s->in_len == 0 && ferror(s->fp)) return read_error();
    return FOOLC_OK;
}

foolc_status foolc__src_peek(foolc__src *s, void *dst, size_t n, size_t *got)
{
    if (s->fp) {
        if (n > CHUNK) n = CHUNK;
        FOOLC__CHECK(ensure_buf(s));
        while (s->in_len - s->in_pos < n) {
            if (s->in_pos > 0) { /* keep the unread bytes at the front */
                memmove(s->buf, s->buf + s->in_pos, s->in_len - s->in_pos);
                s->in_len -= s->in_pos;
                s->in_pos = 0;
            }
            size_t r = fread(s->buf + s->in_len, 1, n - s->in_len, s->fp);
            if (r == 0) {
                if (ferror(s->fp)) return read_error();
                break;
            }
            s->in_len += r;
        }
    }
    *got = min_size(n, s->in_len - s->in_pos);
    memcpy(dst, s->in + s->in_pos, *got);
    return FOOLC_OK;
}

static foolc_status read_plain(foolc__src *s, unsigned char *dst, size_t n, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        if (s->in_pos < s->in_len) {
            size_t k = min_size(n - done, s->in_len - s->in_pos);
            memcpy(dst + done, s->in + s->in_pos, k);
            s->in_pos += k;
            done += k;
            continue;
        }
        if (!s->fp) break;
        if (n - done >= CHUNK) { /* large reads bypass the buffer */
            size_t want = n - done, r = fread(dst + done, 1, want, s->fp);
            done += r;
            if (r < want) {
                if (ferror(s->fp)) return read_error();
                break;
            }
            continue;
        }
        FOOLC__CHECK(fill(s));
        if (s->in_len == 0) break;
    }
    *got = done;
    return FOOLC_OK;
}

static foolc_status z_start(foolc__src *s)
{
    if (s->z_ready) return FOOLC_OK;
    s->zs.zalloc = zalloc_fn;
    s->zs.zfree = zfree_fn;
    s->zs.opaque = Z_NULL;
    s->zs.next_in = Z_NULL;
    s->zs.avail_in = 0;
    int r = inflateInit2(&s->zs, s->z == FOOLC__Z_GZIP ? 15 + 16 : -15);
    if (r == Z_MEM_ERROR) return foolc__nomem("the zlib inflate state");
    if (r != Z_OK) return foolc__error(FOOLC_E_BACKEND, "zlib inflateInit2 -> %d", r);
    s->z_ready = 1;
    return FOOLC_OK;
}

static foolc_status read_z(foolc__src *s, unsigned char *dst, size_t n, size_t *got)
{
    size_t done = 0;
    FOOLC__CHECK(z_start(s));
    while (done < n && !s->z_end) {
        FOOLC__CHECK(fill(s));
        size_t avail = s->in_len - s->in_pos;
        if (avail == 0) return foolc__error(FOOLC_E_FORMAT, "compressed data truncated");
        uInt ain = (uInt)min_size(avail, ZMAX), aout = (uInt)min_size(n - done, ZMAX);
        s->zs.next_in = s->in + s->in_pos;
        s->zs.avail_in = ain;
        s->zs.next_out = dst + done;
        s->zs.avail_out = aout;
        int r = inflate(&s->zs, Z_NO_FLUSH);
        size_t used = ain - s->zs.avail_in, made = aout - s->zs.avail_out;
        s->in_pos += used;
        done += made;
        if (r == Z_STREAM_END) {
            if (s->z == FOOLC__Z_GZIP) {
                FOOLC__CHECK(fill(s));
                if (s->in_pos < s->in_len) { /* another gzip member, or garbage */
                    if (s->in[s->in_pos] != 0x1f)
                        return foolc__error(FOOLC_E_FORMAT, "trailing bytes after the gzip "
                                            "stream");
                    if (inflateReset(&s->zs) != Z_OK)
                        return foolc__error(FOOLC_E_BACKEND, "zlib inflateReset failed");
                    continue;
                }
            } else if (s->in_pos < s->in_len || (s->fp && !feof(s->fp))) {
                return foolc__error(FOOLC_E_FORMAT, "%zu bytes after the end of the deflate "
                                    "stream", s->in_len - s->in_pos);
            }
            s->z_end = 1;
        } else if (r == Z_MEM_ERROR) {
            return foolc__nomem("zlib inflate buffers");
        } else if (r == Z_DATA_ERROR || r == Z_NEED_DICT) {
            return foolc__error(FOOLC_E_FORMAT, "corrupt compressed data (zlib: %s)",
                                s->zs.msg ? s->zs.msg : "need dictionary");
        } else if (r != Z_OK && !(r == Z_BUF_ERROR && (used || made))) {
            return foolc__error(FOOLC_E_FORMAT, "compressed data truncated (zlib %d)", r);
        }
    }
    *got = done;
    return FOOLC_OK;
}

foolc_status foolc__src_read(foolc__src *s, void *dst, size_t n, size_t *got)
{
    *got = 0;
    if (n == 0) return FOOLC_OK;
    FOOLC__CHECK(s->z ? read_z(s, dst, n, got) : read_plain(s, dst, n, got));
    if (s->want_crc) s->crc = foolc__crc32(s->crc, dst, *got);
    s->out += *got;
    return FOOLC_OK;
}

foolc_status foolc__src_need(foolc__src *s, void *dst, size_t n, const char *what)
{
    size_t got;
    foolc_status st = foolc__src_read(s, dst, n, &got);
    if (st == FOOLC_E_FORMAT) return foolc__error_prefix(st, "%s", what);
    if (st < 0) return st;
    if (got < n)
        return foolc__error(FOOLC_E_FORMAT, "truncated: %s needs %zu bytes, only %zu present",
                            what, n, got);
    return FOOLC_OK;
}

foolc_status foolc__src_need_alloc(foolc__src *s, size_t n, const char *what,
                                   unsigned char **out)
{
    *out = NULL;
    if (!s->z) { /* plain: the caller checked n against the bytes present */
        unsigned char *b = foolc__malloc(n);
        if (!b) return foolc__nomem(what);
        foolc_status st = foolc__src_need(s, b, n, what);
        if (st < 0) foolc__free(b);
        else *out = b;
        return st;
    }
    /* Compressed: a size the stream does not hold is found before it is allocated. */
    size_t cap = min_size(n, GROW_FIRST), done = 0;
    unsigned char *b = foolc__malloc(cap);
    if (!b) return foolc__nomem(what);
    for (;;) {
        foolc_status st = foolc__src_need(s, b + done, cap - done, what);
        if (st < 0) {
            foolc__free(b);
            return st;
        }
        done = cap;
        if (done == n) break;
        size_t ncap = cap > n / 2 ? n : cap * 2;
        unsigned char *nb = foolc__realloc(b, ncap);
        if (!nb) {
            foolc__free(b);
            return foolc__nomem(what);
        }
        b = nb;
        cap = ncap;
    }
    *out = b;
    return FOOLC_OK;
}

foolc_status foolc__src_expect_end(foolc__src *s, const char *what)
{
    unsigned char c;
    size_t got;
    FOOLC__CHECK(foolc__src_read(s, &c, 1, &got));
    if (got) return foolc__error(FOOLC_E_FORMAT, "trailing bytes after %s", what);
    return FOOLC_OK;
}

void foolc__src_close(foolc__src *s)
{
    if (s->z_ready) inflateEnd(&s->zs);
    s->z_ready = 0;
    foolc__free(s->buf);
    s->buf = NULL;
}

/* ---- sinks -------------------------------------------------------------------------- */

foolc_status foolc__sink_init(foolc__sink *k, FILE *fp, int z)
{
    memset(k, 0, sizeof *k);
    k->fp = fp;
    k->z = z;
    if (!z) return FOOLC_OK;
    k->zs.zalloc = zalloc_fn;
    k->zs.zfree = zfree_fn;
    k->zs.opaque = Z_NULL;
    int r = deflateInit2(&k->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                         z == FOOLC__Z_GZIP ? 15 + 16 : -15, 8, Z_DEFAULT_STRATEGY);
    if (r == Z_MEM_ERROR) return foolc__nomem("the zlib deflate state");
    if (r != Z_OK) return foolc__error(FOOLC_E_BACKEND, "zlib deflateInit2 -> %d", r);
    k->z_ready = 1;
    if (fp) {
        k->buf = foolc__malloc(CHUNK);
        if (!k->buf) return foolc__nomem("a write buffer");
    }
    return FOOLC_OK;
}

static foolc_status reserve(foolc__sink *k, size_t need)
{
    if (k->cap - k->len >= need) return FOOLC_OK;
    if (need > SIZE_MAX / 2 - k->len) return foolc__nomem("an output buffer");
    size_t cap = k->cap ? k->cap : 4096;
    while (cap - k->len < need) cap *= 2;
    unsigned char *m = foolc__realloc(k->mem, cap);
    if (!m) return foolc__nomem("an output buffer");
    k->mem = m;
    k->cap = cap;
    return FOOLC_OK;
}

static foolc_status put(foolc__sink *k, const void *p, size_t n)
{
    if (n == 0) return FOOLC_OK;
    if (k->fp) {
        if (fwrite(p, 1, n, k->fp) != n)
            return foolc__error(FOOLC_E_IO, "write failed: %s", strerror(errno));
    } else {
        FOOLC__CHECK(reserve(k, n));
        memcpy(k->mem + k->len, p, n);
        k->len += n;
    }
    k->out += n;
    return FOOLC_OK;
}

static foolc_status zpump(foolc__sink *k, int flush)
{
    for (;;) {
        unsigned char *o;
        size_t cap;
        if (k->fp) {
            o = k->buf;
            cap = CHUNK;
        } else {
            FOOLC__CHECK(reserve(k, CHUNK));
            o = k->mem + k->len;
            cap = min_size(k->cap - k->len, ZMAX);
        }
        k->zs.next_out = o;
        k->zs.avail_out = (uInt)cap;
        int r = deflate(&k->zs, flush);
        if (r == Z_STREAM_ERROR) return foolc__error(FOOLC_E_BACKEND, "zlib deflate failed");
        size_t made = cap - k->zs.avail_out;
        if (k->fp) {
            FOOLC__CHECK(put(k, o, made));
        } else {
            k->len += made;
            k->out += made;
        }
        if (flush == Z_FINISH) {
            if (r == Z_STREAM_END) return FOOLC_OK;
        } else if (k->zs.avail_out != 0) {
            return FOOLC_OK; /* all input consumed */
        }
    }
}

foolc_status foolc__sink_write(foolc__sink *k, const void *p, size_t n)
{
    if (!k->z) return put(k, p, n);
    const unsigned char *b = p;
    while (n > 0) {
        size_t c = min_size(n, ZMAX);
        k->zs.next_in = b;
        k->zs.avail_in = (uInt)c;
        FOOLC__CHECK(zpump(k, Z_NO_FLUSH));
        b += c;
        n -= c;
    }
    return FOOLC_OK;
}

foolc_status foolc__sink_finish(foolc__sink *k)
{
    if (!k->z) return FOOLC_OK;
    k->zs.next_in = Z_NULL;
    k->zs.avail_in = 0;
    return zpump(k, Z_FINISH);
}

void foolc__sink_close(foolc__sink *k)
{
    if (k->z_ready) deflateEnd(&k->zs);
    k->z_ready = 0;
    foolc__free(k->buf);
    foolc__free(k->mem);
    k->buf = k->mem = NULL;
}

/* ---- files and checksums ------------------------------------------------------------ */

foolc_status foolc__read_file(const char *path, const char *what, unsigned char **buf,
                              size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return foolc__error(FOOLC_E_IO, "%s '%s': cannot open: %s", what, path,
                                 strerror(errno));
    foolc_status st = FOOLC_OK;
    unsigned char *b = NULL;
    size_t n = 0, cap = 0;
    struct stat sb;
    if (fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= 0) {
        if ((uint64_t)sb.st_size >= SIZE_MAX) {
            st = foolc__error(FOOLC_E_NOMEM, "%s '%s': too large to read", what, path);
            goto done;
        }
        cap = (size_t)sb.st_size + 1; /* one spare byte: reaching EOF needs no growth */
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : CHUNK;
            if (cap > SIZE_MAX / 2) ncap = SIZE_MAX;
            unsigned char *nb = foolc__realloc(b, ncap);
            if (!nb) {
                st = foolc__error(FOOLC_E_NOMEM, "%s '%s': out of memory reading the file",
                                  what, path);
                goto done;
            }
            b = nb;
            cap = ncap;
        }
        if (!b) { /* a regular file: one buffer of its size plus one */
            b = foolc__malloc(cap);
            if (!b) {
                st = foolc__nomem("a file buffer");
                goto done;
            }
        }
        size_t r = fread(b + n, 1, cap - n, fp);
        n += r;
        if (r == 0) {
            if (ferror(fp))
                st = foolc__error(FOOLC_E_IO, "%s '%s': read failed: %s", what, path,
                                  strerror(errno));
            break;
        }
    }
done:
    fclose(fp);
    if (st < 0) {
        foolc__free(b);
        return st;
    }
    *buf = b;
    *len = n;
    return FOOLC_OK;
}

uint32_t foolc__crc32(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    uLong c = crc;
    while (n > 0) {
        size_t k = min_size(n, ZMAX);
        c = crc32(c, b, (uInt)k);
        b += k;
        n -= k;
    }
    return (uint32_t)c;
}
