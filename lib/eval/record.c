/* Chunk records and the resume file (docs/eval.md): line 1 the format, line 2 the header
 * naming the run, then per chunk one "s" line per sample of an attack (or "v" line per
 * sample of a step) and a closing "c" line. Chunks are appended and synced as they are
 * recorded. On reading, only complete chunks count (a torn tail is cut off), and every
 * restored record is checked against this evaluation's inputs: its point inside the box,
 * its distances recomputed from the point and the clean image, its label asked of the model
 * again (one forward per record, batched by chunk as when it was written). */
#include "eval_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC "foolc-resume 2\n"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_b64(FILE *f, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len) v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        fputc(b64[v >> 18 & 63], f);
        fputc(b64[v >> 12 & 63], f);
        fputc(i + 1 < len ? b64[v >> 6 & 63] : '=', f);
        fputc(i + 2 < len ? b64[v & 63] : '=', f);
    }
}

static int get_b64(const char *s, unsigned char *out, size_t len)
{
    size_t k = 0;
    while (k < len) {
        unsigned v = 0;
        for (int j = 0; j < 4; j++) {
            const char *c = s[j] == '=' ? b64 : s[j] ? strchr(b64, s[j]) : NULL;
            if (!c) return -1;
            v = v << 6 | (unsigned)(c - b64);
        }
        for (int j = 0; j < 3 && k < len; j++) out[k++] = (unsigned char)(v >> (16 - 8 * j));
        s += 4;
    }
    return *s == '\n' || *s == '\0' ? 0 : -1;
}

static void write_sample(FILE *f, const foolc_eval *ev, const eval_task *a, int32_t i)
{
    if (a->step) {
        fprintf(f, "v %s %d", a->name, i);
        for (int32_t j = 0; j < a->ncols; j++)
            fprintf(f, " %a", a->val[(size_t)i * a->ncols + j]);
        fputc('\n', f);
        return;
    }
    fprintf(f, "s %s %d %d %d", a->name, i, a->ok[i], a->adv[i]);
    for (int p = 0; p < NC; p++) fprintf(f, " %a", (double)a->dist[(size_t)i * NC + p]);
    fprintf(f, " %llu %llu %llu ", (unsigned long long)a->q[i].forward,
            (unsigned long long)a->q[i].backward, (unsigned long long)a->q[i].decided);
    if (a->ok[i]) put_b64(f, (const unsigned char *)(a->xadv + (size_t)i * ev->d),
                          ev->d * sizeof(float));
    else fputc('-', f);
    fputc('\n', f);
}

void foolc__eval_write_chunk(FILE *f, const foolc_eval *ev, int32_t c)
{
    int t;
    int32_t b, m;
    foolc__eval_chunk_range(ev, c, &t, &b, &m);
    for (int32_t i = b; i < b + m; i++) write_sample(f, ev, &ev->t[t], i);
    fprintf(f, "c %s %d %d %d %a\n", ev->t[t].name, b, m, ev->meta[c].st, ev->meta[c].sec);
}

static int find_task(const foolc_eval *ev, const char *name)
{
    for (int t = 0; t < ev->n_task; t++)
        if (!strcmp(ev->t[t].name, name)) return t;
    return -1;
}

/* The records being read: where they come from (for messages) and the open chunk. */
typedef struct reader {
    foolc_eval *ev;
    const char *where; /* "line" or "chunk record line" */
    int check;         /* ask the model for the labels */
    int len, t;
    int32_t *i;        /* n entries: the samples of the open chunk */
    int *ln;           /* n entries: their lines */
    uint8_t *seen;     /* n entries */
    int32_t chunk;     /* the last chunk closed */
} reader;

/* Parses one "s" or "v" line into the task's arrays (not yet marked done). */
static int read_sample(foolc_eval *ev, char *line, int *t_out, int32_t *i_out)
{
    char name[128];
    int i, off = 0;
    if (line[0] == 'v') {
        if (sscanf(line, "v %127s %d %n", name, &i, &off) != 2 || !off) return -1;
        int t = find_task(ev, name);
        if (t < 0 || !ev->t[t].step || i < 0 || i >= ev->n) return -1;
        eval_task *a = &ev->t[t];
        char *p = line + off, *end;
        for (int32_t j = 0; j < a->ncols; j++) {
            double v = strtod(p, &end);
            if (end == p) return -1;
            a->val[(size_t)i * a->ncols + j] = v;
            p = end;
        }
        if (*p != '\n' && *p != '\0') return -1;
        *t_out = t;
        *i_out = i;
        return 0;
    }
    int ok, adv;
    double dist[NC];
    unsigned long long fw, bw, dc;
    if (sscanf(line, "s %127s %d %d %d %la %la %la %la %la %llu %llu %llu %n", name, &i, &ok,
               &adv, &dist[0], &dist[1], &dist[2], &dist[3], &dist[4], &fw, &bw, &dc,
               &off) != 12 || !off)
        return -1;
    int t = find_task(ev, name);
    if (t < 0 || ev->t[t].step || i < 0 || i >= ev->n) return -1;
    eval_task *a = &ev->t[t];
    ev->best_stale = 1;
    a->ok[i] = (uint8_t)(ok != 0);
    a->adv[i] = adv;
    for (int p = 0; p < NC; p++) a->dist[(size_t)i * NC + p] = (float)dist[p];
    a->q[i] = (foolc_counts){fw, bw, dc};
    float *xa = a->xadv + (size_t)i * ev->d;
    if (ok) {
        if (get_b64(line + off, (unsigned char *)xa, ev->d * sizeof(float))) return -1;
    } else {
        if (line[off] != '-' || (line[off + 1] != '\n' && line[off + 1] != '\0')) return -1;
        memcpy(xa, ev->x + (size_t)i * ev->d, ev->d * sizeof(float));
    }
    *t_out = t;
    *i_out = i;
    return 0;
}

static foolc_status refuse(const reader *r, int ln, const char *what)
{
    return foolc__error(FOOLC_E_FORMAT, "%s %d: %s; the file was edited or damaged: start "
                        "afresh (remove it or use another resume file)", r->where, ln, what);
}

/* A restored record against this run's inputs: its point inside the model's box, and each
 * distance the one its point has from the clean image (bit for bit, as computed when the
 * record was written; infinite where the attack failed). */
static foolc_status check_record(const reader *r, int t, int32_t i, int ln)
{
    const foolc_eval *ev = r->ev;
    const eval_task *a = &ev->t[t];
    if (a->step) return FOOLC_OK;
    const float *x = ev->x + (size_t)i * ev->d, *xa = a->xadv + (size_t)i * ev->d;
    char why[EVAL_MSG];
    for (size_t q = 0; q < ev->d; q++)
        if (!(xa[q] >= ev->lo && xa[q] <= ev->hi)) {
            snprintf(why, sizeof why, "sample %d of %s: its point has %g at %zu, outside the "
                     "model's box [%g, %g]", i, a->name, (double)xa[q], q, (double)ev->lo,
                     (double)ev->hi);
            return refuse(r, ln, why);
        }
    for (int p = 0; p < NC; p++) {
        float got = a->dist[(size_t)i * NC + p];
        float want = a->ok[i] ? (float)foolc_distance((foolc_norm)p, x, xa, ev->d) : INFINITY;
        if (got == want) continue;
        snprintf(why, sizeof why, "sample %d of %s: its %s distance is %.9g but its point is "
                 "at %.9g from the image", i, a->name, foolc_norm_name((foolc_norm)p),
                 (double)got, (double)want);
        return refuse(r, ln, why);
    }
    return FOOLC_OK;
}

/* The labels of a complete chunk: the model asked again about every stored point, in one
 * batch as when the chunk was written, must give the recorded label; a record marked
 * adversarial must not carry the true label. */
static foolc_status check_labels(const reader *r, int32_t b, int32_t m)
{
    const foolc_eval *ev = r->ev;
    const eval_task *a = &ev->t[r->t];
    if (a->step) return FOOLC_OK;
    int32_t *lab = foolc__malloc((size_t)m * sizeof *lab);
    if (!lab) return foolc__nomem("eval: resume");
    if (!r->check) {
        for (int32_t k = 0; k < m; k++) lab[k] = a->adv[b + k];
    } else if (foolc_model_decision(ev->model, a->xadv + (size_t)b * ev->d, m, lab) < 0) {
        for (int32_t k = 0; k < m; k++) lab[k] = -1;
    }
    foolc_status st = FOOLC_OK;
    char why[EVAL_MSG];
    for (int k = 0; k < r->len && st >= 0; k++) {
        int32_t i = r->i[k];
        if (lab[i - b] != a->adv[i]) {
            snprintf(why, sizeof why, "sample %d of %s: the file says the model labels its "
                     "point %d, the model says %d", i, a->name, a->adv[i], lab[i - b]);
            st = refuse(r, r->ln[k], why);
        } else if (a->ok[i] && a->adv[i] == ev->y[i]) {
            snprintf(why, sizeof why, "sample %d of %s: marked adversarial, but the model "
                     "gives its point the true label %d", i, a->name, ev->y[i]);
            st = refuse(r, r->ln[k], why);
        }
    }
    foolc__free(lab);
    return st;
}

/* One record line: 0 for an "s" or "v" line, 1 for the "c" line that closes the chunk (its
 * samples are then done, r->chunk its index), -1 when malformed, or an error status. */
static int feed(reader *r, char *line, int ln)
{
    foolc_eval *ev = r->ev;
    if (line[0] == 's' || line[0] == 'v') {
        int t;
        int32_t i;
        if (read_sample(ev, line, &t, &i) || (r->len && t != r->t) || r->len == ev->n)
            return -1;
        if (r->seen[i]) return -1;
        foolc_status st = check_record(r, t, i, ln);
        if (st < 0) return st;
        r->t = t;
        r->seen[i] = 1;
        r->ln[r->len] = ln;
        r->i[r->len++] = i;
        return 0;
    }
    char name[128];
    int b, m, st;
    double sec;
    if (line[0] != 'c' || sscanf(line, "c %127s %d %d %d %la", name, &b, &m, &st, &sec) != 5)
        return -1;
    int t = find_task(ev, name);
    if (t < 0 || b < 0 || m < 1 || m > ev->n - b || r->len != m || t != r->t ||
        b % ev->o.chunk || m != (ev->n - b < ev->o.chunk ? ev->n - b : ev->o.chunk))
        return -1;
    for (int k = 0; k < r->len; k++)
        if (r->i[k] < b || r->i[k] >= b + m) return -1;
    foolc_status cs = check_labels(r, b, m);
    if (cs < 0) return cs;
    eval_task *a = &ev->t[t];
    for (int k = 0; k < r->len; k++) {
        a->done[r->i[k]] = 1;
        r->seen[r->i[k]] = 0;
    }
    int32_t c = t * ev->per_task + b / ev->o.chunk;
    if (ev->cdone[c]) a->seconds -= ev->meta[c].sec;
    a->seconds += sec;
    if (st < 0 && a->st >= 0) a->st = (foolc_status)st;
    ev->meta[c].st = st < 0 ? st : 0;
    ev->meta[c].sec = sec;
    r->chunk = c;
    r->len = 0;
    return 1;
}

static void reader_free(reader *r)
{
    foolc__free(r->i);
    foolc__free(r->ln);
    foolc__free(r->seen);
    r->i = NULL;
    r->ln = NULL;
    r->seen = NULL;
}

static foolc_status reader_init(reader *r, foolc_eval *ev, const char *where, int check)
{
    memset(r, 0, sizeof *r);
    r->ev = ev;
    r->where = where;
    r->check = check;
    r->t = -1;
    r->chunk = -1;
    r->i = foolc__malloc((size_t)ev->n * sizeof *r->i);
    r->ln = foolc__malloc((size_t)ev->n * sizeof *r->ln);
    r->seen = foolc__calloc((size_t)ev->n, 1);
    if (r->i && r->ln && r->seen) return FOOLC_OK;
    reader_free(r);
    return foolc__nomem("eval: records");
}

static foolc_status need_records(foolc_eval *ev, const char *what)
{
    if (!ev) return foolc__error(FOOLC_E_INVALID, "eval: %s: NULL evaluation", what);
    FOOLC__CHECK(foolc__eval_freeze(ev));
    if (!ev->o.keep_x_adv)
        return foolc__error(FOOLC_E_INVALID, "eval: %s: records need the points "
                            "(keep_x_adv)", what);
    return FOOLC_OK;
}

foolc_status foolc__eval_recorded(foolc_eval *ev, int32_t c, int newly)
{
    ev->cdone[c] = 1;
    if (newly) ev->order[ev->n_order++] = c;
    if (ev->hook) ev->hook(ev->hook_user, ev, c);
    if (!ev->resume) return FOOLC_OK;
    foolc__eval_write_chunk(ev->resume, ev, c);
    if (fflush(ev->resume) || fsync(fileno(ev->resume)))
        return foolc__error(FOOLC_E_IO, "resume file: write failed: %s", strerror(errno));
    return FOOLC_OK;
}

foolc_status foolc_eval_chunk_save(const foolc_eval *ev, int32_t c, char **text, size_t *len)
{
    foolc__error_clear();
    if (!ev || !text) return foolc__error(FOOLC_E_INVALID, "eval: chunk save: NULL argument");
    *text = NULL;
    if (len) *len = 0;
    if (!ev->frozen || c < 0 || c >= ev->per_task * ev->n_task || !ev->cdone[c])
        return foolc__error(FOOLC_E_INVALID, "eval: chunk save: chunk %d is not recorded",
                            (int)c);
    if (!ev->o.keep_x_adv)
        return foolc__error(FOOLC_E_INVALID, "eval: chunk save: records need the points "
                            "(keep_x_adv)");
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) return foolc__nomem("eval: chunk save");
    foolc__eval_write_chunk(f, ev, c);
    if (fclose(f) || !buf) {
        free(buf);
        return foolc__nomem("eval: chunk save");
    }
    /* handed out for foolc_free, which frees what foolc__malloc gave: copy it over */
    char *out = foolc__malloc(size + 1);
    if (out) memcpy(out, buf, size + 1);
    free(buf);
    if (!out) return foolc__nomem("eval: chunk save");
    *text = out;
    if (len) *len = size;
    return FOOLC_OK;
}

foolc_status foolc_eval_chunk_load(foolc_eval *ev, const char *text, size_t len, int check,
                                   int32_t *chunk)
{
    foolc__error_clear();
    FOOLC__CHECK(need_records(ev, "chunk load"));
    if (!text) return foolc__error(FOOLC_E_INVALID, "eval: chunk load: NULL text");
    char *buf = foolc__malloc(len + 1);
    reader r;
    foolc_status st = buf ? reader_init(&r, ev, "chunk record line", check)
                          : foolc__nomem("eval: chunk load");
    if (st < 0) {
        foolc__free(buf);
        return st;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    int closed = 0, ln = 0;
    for (char *line = buf; *line && st >= 0 && !closed; ln++) {
        char *nl = strchr(line, '\n');
        if (!nl) {
            st = foolc__error(FOOLC_E_FORMAT, "chunk record line %d: no newline", ln + 1);
            break;
        }
        *nl = '\0';
        int k = feed(&r, line, ln + 1);
        if (k == -1) st = foolc__error(FOOLC_E_FORMAT, "chunk record line %d is malformed",
                                       ln + 1);
        else if (k < -1) st = k;
        closed = k == 1;
        line = nl + 1;
        if (closed && *line) st = foolc__error(FOOLC_E_FORMAT, "chunk record: text after "
                                               "its 'c' line");
    }
    if (st >= 0 && !closed) st = foolc__error(FOOLC_E_FORMAT, "chunk record: no 'c' line");
    if (st >= 0) {
        int32_t c = r.chunk;
        int t = c / ev->per_task;
        if (ev->meta[c].st < 0 && ev->t[t].st == (foolc_status)ev->meta[c].st &&
            !ev->t[t].msg) {
            char m[64];
            snprintf(m, sizeof m, "%s (on another process)",
                     foolc_status_str((foolc_status)ev->meta[c].st));
            ev->t[t].msg = foolc__malloc(strlen(m) + 1);
            if (ev->t[t].msg) memcpy(ev->t[t].msg, m, strlen(m) + 1);
        }
        st = foolc__eval_recorded(ev, c, !ev->cdone[c]);
        if (chunk) *chunk = c;
    }
    reader_free(&r);
    foolc__free(buf);
    return st;
}

/* --- The resume file. */

/* The first field that differs between two header lines, for the refusal message. */
static void header_diff(const char *a, const char *b, char *out, size_t len)
{
    const char *pa = a, *pb = b;
    while (*pa && *pb) {
        size_t la = strcspn(pa, " \n"), lb = strcspn(pb, " \n");
        if (la != lb || strncmp(pa, pb, la)) {
            const char *what = !strncmp(pb, "model_hash=", 11) ? "the model file changed: "
                               : !strncmp(pb, "data_hash=", 10) ? "other images or labels: "
                               : !strncmp(pb, "pool_hash=", 10) ? "other starting points: "
                                                                : "";
            snprintf(out, len, "%sfile has '%.*s', this run '%.*s'", what, (int)la, pa,
                     (int)lb, pb);
            return;
        }
        pa += la + (pa[la] == ' ');
        pb += lb + (pb[lb] == ' ');
        if (*pa == '\n' || *pb == '\n') break;
    }
    snprintf(out, len, "the options differ");
}

/* Reads one whole line into *line, grown as needed: 1, or 0 at the end of the file or at
 * a torn tail (a last line without its newline), -1 when out of memory. */
static int read_line(FILE *f, char **line, size_t *cap)
{
    if (!fgets(*line, (int)*cap, f)) return 0;
    size_t len = strlen(*line);
    while (len && (*line)[len - 1] != '\n' && len == *cap - 1) { /* a long line */
        char *grown = foolc__realloc(*line, *cap * 2);
        if (!grown) return -1;
        *line = grown;
        *cap *= 2;
        if (!fgets(grown + len, (int)(*cap - len), f)) break;
        len = strlen(grown);
    }
    return len && (*line)[len - 1] == '\n';
}

/* The first two lines: the format, then this run's header (else refused). */
static foolc_status check_header(int ln, const char *line, const char *header)
{
    int version;
    if (ln == 1 && strcmp(line, MAGIC)) {
        if (sscanf(line, "foolc-resume %d", &version) == 1 && version < 2)
            return foolc__error(FOOLC_E_VERSION, "written by an older foolc (resume format "
                                "%d, which does not identify the attacked images, so its "
                                "records cannot be checked); start afresh: remove it or use "
                                "another resume file", version);
        if (sscanf(line, "foolc-resume %d", &version) == 1)
            return foolc__error(FOOLC_E_VERSION, "written by a newer foolc (resume format %d);"
                                " use that version or another resume file", version);
        return foolc__error(FOOLC_E_FORMAT, "not a foolc resume file");
    }
    if (ln == 2 && (strncmp(line, header, strlen(header)) || line[strlen(header)] != '\n')) {
        char why[640], *want = foolc__malloc(strlen(header) + 2);
        if (!want) return foolc__nomem("eval: resume");
        snprintf(want, strlen(header) + 2, "%s\n", header);
        header_diff(line, want, why, sizeof why);
        foolc__free(want);
        return foolc__error(FOOLC_E_INVALID, "written by a different run (%s); use another "
                            "file or the same options and inputs", why);
    }
    return FOOLC_OK;
}

/* Reads the chunks of an existing resume file. *lines: whole lines read; *good: the offset
 * after the header or after the last complete chunk. */
static foolc_status resume_read(foolc_eval *ev, FILE *f, const char *header, int *lines,
                                long *good)
{
    size_t cap = 1 << 16;
    char *line = foolc__malloc(cap);
    reader r;
    foolc_status st = line ? reader_init(&r, ev, "line", 1) : foolc__nomem("eval: resume");
    if (st < 0) {
        foolc__free(line);
        return st;
    }
    int got;
    while (st >= 0 && (got = read_line(f, &line, &cap)) != 0) {
        if (got < 0) {
            st = foolc__nomem("eval: resume");
            break;
        }
        int ln = ++*lines, k = 1;
        if (ln <= 2) st = check_header(ln, line, header);
        else if ((k = feed(&r, line, ln)) == -1)
            st = foolc__error(FOOLC_E_FORMAT, "line %d is malformed", ln);
        else if (k < -1)
            st = k;
        else if (k == 1 && !ev->cdone[r.chunk]) {
            ev->cdone[r.chunk] = 1;
            ev->order[ev->n_order++] = r.chunk;
            if (ev->hook) ev->hook(ev->hook_user, ev, r.chunk);
        }
        if (st >= 0 && ln >= 2 && k > 0) *good = ftell(f);
    }
    foolc__free(line);
    reader_free(&r);
    return st;
}

foolc_status foolc_eval_resume(foolc_eval *ev, const char *path, const char *header)
{
    foolc__error_clear();
    FOOLC__CHECK(need_records(ev, "resume"));
    if (!path || !header || strchr(header, '\n'))
        return foolc__error(FOOLC_E_INVALID, "eval: resume: a path and a one-line header "
                            "are needed");
    if (ev->resume) return foolc__error(FOOLC_E_INVALID, "eval: resume: a file is open");
    FILE *f = fopen(path, "r+");
    if (!f) f = fopen(path, "w+");
    if (!f) return foolc__error(FOOLC_E_IO, "cannot open: %s", strerror(errno));
    int lines = 0;
    long good = 0;
    struct flock lk;
    memset(&lk, 0, sizeof lk);
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    foolc_status st = FOOLC_OK;
    if (fcntl(fileno(f), F_SETLK, &lk))
        st = foolc__error(FOOLC_E_INVALID, "in use by another process");
    if (st >= 0) st = resume_read(ev, f, header, &lines, &good);
    if (st >= 0 && lines < 2) { /* new or empty: write the header */
        rewind(f);
        if (ftruncate(fileno(f), 0) || fprintf(f, "%s%s\n", MAGIC, header) < 0 || fflush(f))
            st = foolc__error(FOOLC_E_IO, "cannot write: %s", strerror(errno));
    } else if (st >= 0 && (fflush(f) || ftruncate(fileno(f), good) ||
                           fseek(f, good, SEEK_SET))) {
        st = foolc__error(FOOLC_E_IO, "cannot truncate the torn tail: %s", strerror(errno));
    }
    if (st < 0) fclose(f);
    else ev->resume = f;
    return st;
}

foolc_status foolc_eval_resume_write(const foolc_eval *ev, const char *path,
                                     const char *header)
{
    foolc__error_clear();
    if (!ev || !path || !header || strchr(header, '\n'))
        return foolc__error(FOOLC_E_INVALID, "eval: resume write: a path and a one-line "
                            "header are needed");
    if (!ev->o.keep_x_adv)
        return foolc__error(FOOLC_E_INVALID, "eval: resume write: records need the points "
                            "(keep_x_adv)");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) close(fd);
        errno = e;
        return foolc__error(FOOLC_E_IO, "cannot create '%s': %s", path, strerror(e));
    }
    fprintf(f, "%s%s\n", MAGIC, header);
    for (int32_t k = 0; k < ev->n_order; k++) foolc__eval_write_chunk(f, ev, ev->order[k]);
    int bad = fflush(f) != 0;
    bad |= fsync(fd) != 0;
    bad |= ferror(f) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    if (bad) {
        unlink(path);
        errno = e;
        return foolc__error(FOOLC_E_IO, "cannot write '%s': %s", path, strerror(e));
    }
    return FOOLC_OK;
}
