/* NPZ archives: the in-memory container of named arrays, the zip reader (central
 * directory, zip64 records, stored and deflated members, CRC-32 and size checks) and the
 * zip writer that numpy.load reads (zip32 unless sizes need zip64). */
#include "data_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define U32_MAX 0xFFFFFFFFu
#define DEFLATE_MAX_RATIO 1032u /* deflate never expands data more than this */

typedef struct npz_entry {
    char *name;
    foolc_array a;
} npz_entry;

struct foolc_npz {
    npz_entry *e;
    int32_t n, cap;
};

int foolc__npz_force_zip64;

/* ---- the container ------------------------------------------------------------------ */

foolc_status foolc_npz_new(foolc_npz **out)
{
    foolc__error_clear();
    if (!out) return foolc__error(FOOLC_E_INVALID, "npz_new: out is NULL");
    *out = foolc__calloc(1, sizeof **out);
    if (!*out) return foolc__nomem("an npz archive");
    return FOOLC_OK;
}

void foolc_npz_free(foolc_npz *z)
{
    if (!z) return;
    for (int32_t i = 0; i < z->n; i++) {
        foolc__free(z->e[i].name);
        foolc__free(z->e[i].a.data);
    }
    foolc__free(z->e);
    foolc__free(z);
}

int32_t foolc_npz_count(const foolc_npz *z) { return z ? z->n : 0; }

const char *foolc_npz_name(const foolc_npz *z, int32_t i)
{
    return z && i >= 0 && i < z->n ? z->e[i].name : NULL;
}

static int32_t find(const foolc_npz *z, const char *name)
{
    for (int32_t i = 0; i < z->n; i++)
        if (strcmp(z->e[i].name, name) == 0) return i;
    return -1;
}

const foolc_array *foolc_npz_get(const foolc_npz *z, const char *name)
{
    if (!z || !name) return NULL;
    int32_t i = find(z, name);
    return i < 0 ? NULL : &z->e[i].a;
}

static foolc_status grow(foolc_npz *z, int64_t need)
{
    if (need <= z->cap) return FOOLC_OK;
    if (need > INT32_MAX / 2) return foolc__nomem("npz entries");
    int32_t cap = z->cap ? z->cap : 8;
    while (cap < need) cap *= 2;
    npz_entry *e = foolc__realloc(z->e, foolc__mul((size_t)cap, sizeof *e));
    if (!e) return foolc__nomem("npz entries");
    z->e = e;
    z->cap = cap;
    return FOOLC_OK;
}

static char *dup_str(const char *s, size_t n)
{
    char *d = foolc__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

foolc_status foolc_npz_add(foolc_npz *z, const char *name, const foolc_array *a)
{
    foolc__error_clear();
    if (!z || !name || !a) return foolc__error(FOOLC_E_INVALID, "npz_add: NULL argument");
    size_t len = strlen(name);
    if (len == 0 || len > 0xFFFF - 4)
        return foolc__error(FOOLC_E_INVALID, "npz_add: name must hold 1 to 65531 bytes");
    foolc_array copy;
    char ctx[96];
    snprintf(ctx, sizeof ctx, "npz_add '%.64s'", name);
    FOOLC__CHECK(foolc__array_copy(a, &copy, ctx));
    int32_t i = find(z, name);
    if (i >= 0) {
        foolc__free(z->e[i].a.data);
        z->e[i].a = copy;
        return FOOLC_OK;
    }
    char *nm = dup_str(name, len);
    foolc_status st = nm ? grow(z, (int64_t)z->n + 1) : foolc__nomem("an npz name");
    if (st < 0) {
        foolc__free(nm);
        foolc__free(copy.data);
        return st;
    }
    z->e[z->n].name = nm;
    z->e[z->n].a = copy;
    z->n++;
    return FOOLC_OK;
}

/* ---- reading ------------------------------------------------------------------------ */

static uint32_t rd16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

static uint32_t rd32(const unsigned char *p) { return rd16(p) | rd16(p + 2) << 16; }

static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

typedef struct zip_dir {
    uint64_t n, cd_start, cd_size;
    uint64_t shift; /* bytes prepended to the archive: add to every recorded offset */
} zip_dir;

static foolc_status find_directory(const unsigned char *b, size_t len, zip_dir *d)
{
    if (len < 22)
        return foolc__error(FOOLC_E_FORMAT, "not a zip archive (only %zu bytes)", len);
    size_t pos = len - 22, stop = pos > 0xFFFF ? pos - 0xFFFF : 0;
    for (;; pos--) {
        if (rd32(b + pos) == SIG_EOCD && pos + 22 + rd16(b + pos + 20) <= len) break;
        if (pos == stop)
            return foolc__error(FOOLC_E_FORMAT, "not a zip archive (no end of central "
                                "directory record)");
    }
    const unsigned char *e = b + pos;
    uint64_t disk = rd16(e + 4), cd_disk = rd16(e + 6), n_disk = rd16(e + 8);
    uint64_t n = rd16(e + 10), cd_size = rd32(e + 12), cd_off = rd32(e + 16);
    size_t end = pos; /* where the central directory (and any zip64 record) ends */
    if (pos >= 20 && rd32(e - 20) == SIG_LOC64) {
        uint64_t at = rd64(e - 12);
        size_t loc = pos - 20;
        if (rd32(e - 16) != 0 || rd32(e - 4) > 1)
            return foolc__error(FOOLC_E_FORMAT, "multi-disk zip archives are not supported");
        /* The record is where the locator says, or (archive with a prefix) just before it. */
        if (!(at <= loc && loc - at >= 56 && rd32(b + at) == SIG_EOCD64)) {
            if (loc < 56 || rd32(b + loc - 56) != SIG_EOCD64)
                return foolc__error(FOOLC_E_FORMAT, "zip64 end of central directory record "
                                    "not found");
            at = loc - 56;
        }
        const unsigned char *r = b + at;
        disk = rd32(r + 16);
        cd_disk = rd32(r + 20);
        n_disk = rd64(r + 24);
        n = rd64(r + 32);
        cd_size = rd64(r + 40);
        cd_off = rd64(r + 48);
        end = (size_t)at;
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n)
        return foolc__error(FOOLC_E_FORMAT, "multi-disk zip archives are not supported");
    if (cd_size > end || cd_off > end - cd_size)
        return foolc__error(FOOLC_E_FORMAT, "central directory out of bounds (truncated?)");
    if (n > cd_size / 46)
        return foolc__error(FOOLC_E_FORMAT, "central directory too small for %llu entries",
                            (unsigned long long)n);
    d->n = n;
    d->cd_size = cd_size;
    d->cd_start = end - cd_size;
    d->shift = d->cd_start - cd_off;
    return FOOLC_OK;
}

typedef struct zip_member {
    uint32_t flags, method, crc, name_len;
    uint64_t csize, usize, lho;
    const unsigned char *name;
    size_t entry_len;
} zip_member;

static foolc_status central_entry(const unsigned char *p, size_t room, zip_member *m)
{
    if (room < 46 || rd32(p) != SIG_CENTRAL)
        return foolc__error(FOOLC_E_FORMAT, "bad central directory entry");
    m->flags = rd16(p + 8);
    m->method = rd16(p + 10);
    m->crc = rd32(p + 16);
    m->csize = rd32(p + 20);
    m->usize = rd32(p + 24);
    m->name_len = rd16(p + 28);
    uint32_t xlen = rd16(p + 30), clen = rd16(p + 32), disk = rd16(p + 34);
    m->lho = rd32(p + 42);
    m->entry_len = 46 + (size_t)m->name_len + xlen + clen;
    if (m->entry_len > room)
        return foolc__error(FOOLC_E_FORMAT, "central directory entry overruns the directory");
    m->name = p + 46;
    const unsigned char *x = p + 46 + m->name_len, *xend = x + xlen;
    while (xend - x >= 4) {
        uint32_t id = rd16(x), sz = rd16(x + 2);
        const unsigned char *f = x + 4;
        if ((size_t)(xend - f) < sz)
            return foolc__error(FOOLC_E_FORMAT, "bad extra field in the central directory");
        if (id == 1) { /* zip64: the 64-bit values of the fields that are saturated */
            const unsigned char *fe = f + sz;
            uint64_t *vals[3] = { &m->usize, &m->csize, &m->lho };
            for (int i = 0; i < 3; i++) {
                if (*vals[i] != U32_MAX) continue;
                if (fe - f < 8) return foolc__error(FOOLC_E_FORMAT, "bad zip64 extra field");
                *vals[i] = rd64(f);
                f += 8;
            }
            if (disk == 0xFFFF && fe - f >= 4) disk = rd32(f);
        }
        x += 4 + sz;
    }
    if (disk != 0)
        return foolc__error(FOOLC_E_FORMAT, "multi-disk zip archives are not supported");
    return FOOLC_OK;
}

/* Decodes one member into e's array; head_only: only its .npy header (dtype and shape, data
 * NULL), inflating no more than the header's bytes. */
static foolc_status read_member(const unsigned char *b, const zip_dir *d, const zip_member *m,
                                npz_entry *e, int head_only)
{
    if (m->flags & 1) return foolc__error(FOOLC_E_FORMAT, "encrypted members are not supported");
    if (m->method != 0 && m->method != 8)
        return foolc__error(FOOLC_E_FORMAT, "compression method %u is not supported (only "
                            "stored and deflate)", (unsigned)m->method);
    uint64_t at = m->lho + d->shift; /* no overflow: lho <= cd_start - shift */
    if (m->lho > d->cd_start - d->shift || d->cd_start - at < 30 || rd32(b + at) != SIG_LOCAL)
        return foolc__error(FOOLC_E_FORMAT, "bad local header offset or signature");
    const unsigned char *l = b + at;
    uint64_t lname = rd16(l + 26), lextra = rd16(l + 28);
    uint64_t data = at + 30 + lname + lextra;
    if (lname != m->name_len || data > d->cd_start || memcmp(l + 30, m->name, lname) != 0)
        return foolc__error(FOOLC_E_FORMAT, "local header does not match the central "
                            "directory");
    if (m->csize > d->cd_start - data)
        return foolc__error(FOOLC_E_FORMAT, "member data (%llu bytes) runs past the end "
                            "(truncated?)", (unsigned long long)m->csize);
    if (m->method == 0 && m->csize != m->usize)
        return foolc__error(FOOLC_E_FORMAT, "stored member with compressed size %llu != "
                            "size %llu", (unsigned long long)m->csize,
                            (unsigned long long)m->usize);
    if (m->method == 8 && m->usize / DEFLATE_MAX_RATIO > m->csize + 64)
        return foolc__error(FOOLC_E_FORMAT, "claims %llu bytes from %llu compressed bytes",
                            (unsigned long long)m->usize, (unsigned long long)m->csize);
    if (m->method == 0 && head_only) { /* stored bytes first: a flipped bit is a bad CRC */
        uint32_t crc = foolc__crc32(0, b + data, (size_t)m->csize);
        if (crc != m->crc)
            return foolc__error(FOOLC_E_FORMAT, "bad CRC-32 (0x%08lx, expected 0x%08lx)",
                                (unsigned long)crc, (unsigned long)m->crc);
    }
    foolc__src s;
    foolc__src_mem(&s, b + data, (size_t)m->csize, m->method == 8 ? FOOLC__Z_RAW : 0);
    s.want_crc = m->method == 8;
    s.crc = m->method == 8 ? 0 : m->crc;
    if (head_only) {
        foolc_status st = foolc__npy_read_header(&s, m->usize, &e->a);
        foolc__src_close(&s);
        return st;
    }
    foolc_status st = foolc__npy_read(&s, m->usize, &e->a);
    foolc__src_close(&s);
    if (st == FOOLC_OK && (s.out != m->usize || s.crc != m->crc)) {
        foolc__array_clear(&e->a);
        if (s.out != m->usize)
            return foolc__error(FOOLC_E_FORMAT, "size %llu differs from the directory's %llu",
                                (unsigned long long)s.out, (unsigned long long)m->usize);
        return foolc__error(FOOLC_E_FORMAT, "bad CRC-32 (0x%08lx, expected 0x%08lx)",
                            (unsigned long)s.crc, (unsigned long)m->crc);
    }
    return st;
}

static int cmp_entry_name(const void *x, const void *y)
{
    const npz_entry *const *a = x, *const *b = y;
    return strcmp((*a)->name, (*b)->name);
}

static foolc_status check_duplicates(const foolc_npz *z, const char *file)
{
    if (z->n < 2) return FOOLC_OK;
    const npz_entry **v = foolc__malloc(foolc__mul((size_t)z->n, sizeof *v));
    if (!v) return foolc__nomem("a name index");
    for (int32_t i = 0; i < z->n; i++) v[i] = &z->e[i];
    qsort(v, (size_t)z->n, sizeof *v, cmp_entry_name);
    foolc_status st = FOOLC_OK;
    for (int32_t i = 1; i < z->n && st == FOOLC_OK; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            st = foolc__error(FOOLC_E_FORMAT, "npz '%s': member '%s' appears twice", file,
                              v[i]->name);
    foolc__free(v);
    return st;
}

/* Two passes: first the directory, every member's local header, sizes and .npy header
 * (nothing inflated beyond the headers, nothing allocated beyond them), duplicate names,
 * then check (when set) on z holding those headers; only then every member is decoded.
 * So a malformed member, or an archive the caller refuses, costs no inflating of the
 * members before it. */
static foolc_status read_archive(const unsigned char *b, size_t len, const char *file,
                                 foolc__npz_check check, void *user, foolc_npz *z)
{
    zip_dir d = { 0, 0, 0, 0 };
    foolc_status st = find_directory(b, len, &d);
    if (st < 0) return foolc__error_prefix(st, "npz '%s'", file);
    FOOLC__CHECK(grow(z, (int64_t)d.n));
    /* d.n <= the directory's size / 46: bounded by the file */
    zip_member *ms = foolc__malloc(foolc__mul(d.n ? (size_t)d.n : 1, sizeof *ms));
    if (!ms) return foolc__nomem("the member list");
    size_t off = 0;
    for (uint64_t i = 0; i < d.n; i++) {
        zip_member m;
        st = central_entry(b + d.cd_start + off, (size_t)(d.cd_size - off), &m);
        if (st < 0) {
            foolc__error_prefix(st, "npz '%s': entry %llu", file, (unsigned long long)i);
            goto out;
        }
        off += m.entry_len;
        size_t nl = m.name_len;
        if (nl > 0 && m.name[nl - 1] == '/' && m.usize == 0) continue; /* a directory */
        if (nl == 0 || memchr(m.name, '\0', nl)) {
            st = foolc__error(FOOLC_E_FORMAT, "npz '%s': entry %llu: bad member name", file,
                              (unsigned long long)i);
            goto out;
        }
        if (nl > 4 && memcmp(m.name + nl - 4, ".npy", 4) == 0) nl -= 4;
        npz_entry *e = &z->e[z->n];
        memset(e, 0, sizeof *e);
        e->name = dup_str((const char *)m.name, nl);
        if (!e->name) {
            st = foolc__nomem("an npz member name");
            goto out;
        }
        st = read_member(b, &d, &m, e, 1);
        if (st < 0) {
            foolc__error_prefix(st, "npz '%s': member '%s'", file, e->name);
            foolc__free(e->name);
            goto out;
        }
        ms[z->n++] = m;
    }
    st = check_duplicates(z, file);
    if (st == FOOLC_OK && check) st = check(user, z);
    for (int32_t i = 0; st == FOOLC_OK && i < z->n; i++) {
        npz_entry *e = &z->e[i];
        st = read_member(b, &d, &ms[i], e, 0);
        if (st < 0) foolc__error_prefix(st, "npz '%s': member '%s'", file, e->name);
    }
out:
    foolc__free(ms);
    return st;
}

foolc_status foolc_npz_read_mem(const void *buf, size_t len, foolc_npz **out)
{
    foolc__error_clear();
    if (!out || (!buf && len))
        return foolc__error(FOOLC_E_INVALID, "npz_read_mem: NULL argument");
    *out = NULL;
    foolc_npz *z;
    FOOLC__CHECK(foolc_npz_new(&z));
    foolc_status st = read_archive(buf ? buf : "", len, "<memory>", NULL, NULL, z);
    if (st < 0) {
        foolc_npz_free(z);
        return st;
    }
    *out = z;
    return FOOLC_OK;
}

foolc_status foolc__npz_read_checked(const char *path, foolc__npz_check check, void *user,
                                     foolc_npz **out)
{
    *out = NULL;
    unsigned char *b;
    size_t len;
    FOOLC__CHECK(foolc__read_file(path, "npz", &b, &len));
    foolc_npz *z;
    foolc_status st = foolc_npz_new(&z);
    if (st == FOOLC_OK) {
        st = read_archive(b, len, path, check, user, z);
        if (st < 0) foolc_npz_free(z);
        else *out = z;
    }
    foolc__free(b);
    return st;
}

foolc_status foolc_npz_read(const char *path, foolc_npz **out)
{
    foolc__error_clear();
    if (!path || !out) return foolc__error(FOOLC_E_INVALID, "npz_read: NULL argument");
    return foolc__npz_read_checked(path, NULL, NULL, out);
}

/* ---- writing ------------------------------------------------------------------------ */

static void wr16(unsigned char *p, uint64_t v)
{
    p[0] = (unsigned char)(v & 0xFF);
    p[1] = (unsigned char)((v >> 8) & 0xFF);
}

static void wr32(unsigned char *p, uint64_t v)
{
    wr16(p, v & 0xFFFF);
    wr16(p + 2, (v >> 16) & 0xFFFF);
}

static void wr64(unsigned char *p, uint64_t v)
{
    wr32(p, v & U32_MAX);
    wr32(p + 4, v >> 32);
}

static uint64_t sat32(uint64_t v) { return v >= U32_MAX ? U32_MAX : v; }

typedef struct member_info {
    uint32_t crc, method, flags;
    uint64_t csize, usize, lho;
    int z64;
} member_info;

static uint32_t name_flags(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p >= 0x80) return 0x0800; /* the name is UTF-8 */
    return 0;
}

static foolc_status write_member(foolc__sink *out, const npz_entry *e, int compress,
                                 member_info *mi)
{
    char hdr[512];
    size_t hlen, nl = strlen(e->name) + 4;
    if (nl > 0xFFFF) return foolc__error(FOOLC_E_INVALID, "member name too long");
    int64_t nbytes = foolc__array_bytes(&e->a);
    if (nbytes < 0 || (uint64_t)nbytes >= SIZE_MAX - 1024)
        return foolc__error(FOOLC_E_INVALID, "invalid array");
    FOOLC__CHECK(foolc__npy_header(&e->a, hdr, sizeof hdr, &hlen));
    const void *data = e->a.data;
    mi->crc = foolc__crc32(foolc__crc32(0, hdr, hlen), data, (size_t)nbytes);
    mi->usize = hlen + (uint64_t)nbytes;
    mi->lho = out->out;
    mi->method = compress ? 8 : 0;
    mi->flags = name_flags(e->name);
    foolc__sink zk;
    foolc_status st = FOOLC_OK;
    if (compress) {
        st = foolc__sink_init(&zk, NULL, FOOLC__Z_RAW);
        if (st == FOOLC_OK) st = foolc__sink_write(&zk, hdr, hlen);
        if (st == FOOLC_OK) st = foolc__sink_write(&zk, data, (size_t)nbytes);
        if (st == FOOLC_OK) st = foolc__sink_finish(&zk);
        mi->csize = zk.len;
    } else {
        mi->csize = mi->usize;
    }
    mi->z64 = foolc__npz_force_zip64 || mi->usize >= U32_MAX || mi->csize >= U32_MAX;
    unsigned char lh[30 + 20];
    wr32(lh, SIG_LOCAL);
    wr16(lh + 4, mi->z64 ? 45 : 20);
    wr16(lh + 6, mi->flags);
    wr16(lh + 8, mi->method);
    wr16(lh + 10, 0);    /* time 00:00:00 */
    wr16(lh + 12, 0x21); /* date 1980-01-01: output is reproducible */
    wr32(lh + 14, mi->crc);
    wr32(lh + 18, mi->z64 ? U32_MAX : mi->csize);
    wr32(lh + 22, mi->z64 ? U32_MAX : mi->usize);
    wr16(lh + 26, nl);
    wr16(lh + 28, mi->z64 ? 20 : 0);
    if (st == FOOLC_OK) st = foolc__sink_write(out, lh, 30);
    if (st == FOOLC_OK) st = foolc__sink_write(out, e->name, nl - 4);
    if (st == FOOLC_OK) st = foolc__sink_write(out, ".npy", 4);
    if (st == FOOLC_OK && mi->z64) {
        wr16(lh + 30, 1);
        wr16(lh + 32, 16);
        wr64(lh + 34, mi->usize);
        wr64(lh + 42, mi->csize);
        st = foolc__sink_write(out, lh + 30, 20);
    }
    if (compress) {
        if (st == FOOLC_OK) st = foolc__sink_write(out, zk.mem, zk.len);
        foolc__sink_close(&zk);
    } else {
        if (st == FOOLC_OK) st = foolc__sink_write(out, hdr, hlen);
        if (st == FOOLC_OK) st = foolc__sink_write(out, data, (size_t)nbytes);
    }
    return st;
}

static foolc_status write_central(foolc__sink *out, const npz_entry *e, const member_info *mi)
{
    unsigned char c[46 + 28];
    size_t nl = strlen(e->name) + 4, x = 46;
    int big_off = foolc__npz_force_zip64 || mi->lho >= U32_MAX;
    wr32(c, SIG_CENTRAL);
    wr16(c + 4, (3u << 8) | 45); /* made by: Unix, zip 4.5 */
    wr16(c + 6, mi->z64 || big_off ? 45 : 20);
    wr16(c + 8, mi->flags);
    wr16(c + 10, mi->method);
    wr16(c + 12, 0);
    wr16(c + 14, 0x21);
    wr32(c + 16, mi->crc);
    wr32(c + 20, mi->z64 ? U32_MAX : mi->csize);
    wr32(c + 24, mi->z64 ? U32_MAX : mi->usize);
    wr16(c + 28, nl);
    wr16(c + 32, 0);                       /* comment */
    wr16(c + 34, 0);                       /* disk */
    wr16(c + 36, 0);                       /* internal attributes */
    wr32(c + 38, (uint64_t)0100644 << 16); /* a regular file, rw-r--r-- */
    wr32(c + 42, big_off ? U32_MAX : mi->lho);
    if (mi->z64 || big_off) {
        x += 4;
        if (mi->z64) {
            wr64(c + x, mi->usize);
            wr64(c + x + 8, mi->csize);
            x += 16;
        }
        if (big_off) {
            wr64(c + x, mi->lho);
            x += 8;
        }
        wr16(c + 46, 1);
        wr16(c + 48, x - 50);
    }
    wr16(c + 30, x - 46);
    FOOLC__CHECK(foolc__sink_write(out, c, 46));
    FOOLC__CHECK(foolc__sink_write(out, e->name, nl - 4));
    FOOLC__CHECK(foolc__sink_write(out, ".npy", 4));
    return foolc__sink_write(out, c + 46, x - 46);
}

static foolc_status write_end(foolc__sink *out, uint64_t n, uint64_t cd_off)
{
    unsigned char r[56 + 20 + 22];
    uint64_t cd_size = out->out - cd_off, at = out->out;
    size_t len = 0;
    if (foolc__npz_force_zip64 || n >= 0xFFFF || cd_size >= U32_MAX || cd_off >= U32_MAX) {
        wr32(r, SIG_EOCD64);
        wr64(r + 4, 44);
        wr16(r + 12, (3u << 8) | 45);
        wr16(r + 14, 45);
        wr32(r + 16, 0);
        wr32(r + 20, 0);
        wr64(r + 24, n);
        wr64(r + 32, n);
        wr64(r + 40, cd_size);
        wr64(r + 48, cd_off);
        wr32(r + 56, SIG_LOC64);
        wr32(r + 60, 0);
        wr64(r + 64, at);
        wr32(r + 72, 1);
        len = 76;
    }
    unsigned char *e = r + len;
    wr32(e, SIG_EOCD);
    wr16(e + 4, 0);
    wr16(e + 6, 0);
    wr16(e + 8, n >= 0xFFFF ? 0xFFFF : n);
    wr16(e + 10, n >= 0xFFFF ? 0xFFFF : n);
    wr32(e + 12, sat32(cd_size));
    wr32(e + 16, sat32(cd_off));
    wr16(e + 20, 0);
    return foolc__sink_write(out, r, len + 22);
}

static foolc_status write_archive(const foolc_npz *z, int compress, foolc__sink *out)
{
    member_info *mi = foolc__calloc(z->n ? (size_t)z->n : 1, sizeof *mi);
    if (!mi) return foolc__nomem("the member table");
    foolc_status st = FOOLC_OK;
    for (int32_t i = 0; i < z->n && st == FOOLC_OK; i++) {
        st = write_member(out, &z->e[i], compress, &mi[i]);
        if (st < 0) foolc__error_prefix(st, "member '%s'", z->e[i].name);
    }
    uint64_t cd_off = out->out;
    for (int32_t i = 0; i < z->n && st == FOOLC_OK; i++)
        st = write_central(out, &z->e[i], &mi[i]);
    if (st == FOOLC_OK) st = write_end(out, (uint64_t)z->n, cd_off);
    foolc__free(mi);
    return st;
}

foolc_status foolc__npz_write_mem(const foolc_npz *z, int compress, void **buf, size_t *len)
{
    if (!z || !buf || !len) return foolc__error(FOOLC_E_INVALID, "npz_write: NULL argument");
    foolc__sink out;
    foolc_status st = foolc__sink_init(&out, NULL, FOOLC__Z_NONE);
    if (st == FOOLC_OK) st = write_archive(z, compress, &out);
    if (st == FOOLC_OK) {
        *buf = out.mem;
        *len = out.len;
        out.mem = NULL;
    }
    foolc__sink_close(&out);
    return st < 0 ? foolc__error_prefix(st, "npz '<memory>'") : st;
}

foolc_status foolc_npz_write(const foolc_npz *z, const char *path, int compress)
{
    foolc__error_clear();
    if (!z || !path) return foolc__error(FOOLC_E_INVALID, "npz_write: NULL argument");
    FILE *fp = fopen(path, "wb");
    if (!fp) return foolc__error(FOOLC_E_IO, "npz '%s': cannot create: %s", path,
                                 strerror(errno));
    foolc__sink out;
    foolc_status st = foolc__sink_init(&out, fp, FOOLC__Z_NONE);
    if (st == FOOLC_OK) st = write_archive(z, compress, &out);
    foolc__sink_close(&out);
    if (fclose(fp) != 0 && st == FOOLC_OK)
        st = foolc__error(FOOLC_E_IO, "write failed: %s", strerror(errno));
    if (st < 0) {
        remove(path);
        return foolc__error_prefix(st, "npz '%s'", path);
    }
    return FOOLC_OK;
}
