/* foolc report's resume file (--resume): line 1 the format, line 2 the header naming the run
 * (options, canonical paths, hashes of the model file, the attacked images and the starting
 * points), then per chunk one "s" line per sample and a closing "c" line. Chunks are
 * appended and flushed as they finish. On reading, only complete chunks count (a torn tail is
 * cut off), and every restored record is checked against this run's inputs: its distances
 * recomputed from its stored point and the clean image, its label asked of the model again
 * (one forward per record, batched by chunk as when it was written). */
#include "report.h"

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

static void write_sample(FILE *f, const rep *r, int t, int32_t i)
{
    const rep_att *a = &r->at[t];
    fprintf(f, "s %s %d %d %d", a->name, i, a->ok[i], a->adv[i]);
    for (int p = 0; p < NC; p++) fprintf(f, " %a", (double)a->dist[(size_t)i * NC + p]);
    fprintf(f, " %llu %llu %llu ", (unsigned long long)a->q[i].forward,
            (unsigned long long)a->q[i].backward, (unsigned long long)a->q[i].decided);
    if (a->ok[i]) put_b64(f, (const unsigned char *)(a->xadv + (size_t)i * r->d),
                          r->d * sizeof(float));
    else fputc('-', f);
    fputc('\n', f);
}

static void write_chunk(FILE *f, const rep *r, const rep_chunk *c)
{
    for (int32_t i = c->b; i < c->b + c->m; i++) write_sample(f, r, c->t, i);
    fprintf(f, "c %s %d %d %d %a\n", r->at[c->t].name, c->b, c->m, c->st, c->sec);
}

static int find_attack(const rep *r, const char *name)
{
    for (int t = 0; t < r->n_att; t++)
        if (!strcmp(r->at[t].name, name)) return t;
    return -1;
}

/* Parses one "s" line into the attack's arrays (not yet marked done). */
static int read_sample(rep *r, char *line, int *t_out, int32_t *i_out)
{
    char name[128];
    int i, ok, adv, off = 0;
    double dist[NC];
    unsigned long long fw, bw, dc;
    if (sscanf(line, "s %127s %d %d %d %la %la %la %la %la %llu %llu %llu %n", name, &i, &ok,
               &adv, &dist[0], &dist[1], &dist[2], &dist[3], &dist[4], &fw, &bw, &dc,
               &off) != 12 || !off)
        return -1;
    int t = find_attack(r, name);
    if (t < 0 || i < 0 || i >= r->n) return -1;
    rep_att *a = &r->at[t];
    a->ok[i] = (uint8_t)(ok != 0);
    a->adv[i] = adv;
    for (int p = 0; p < NC; p++) a->dist[(size_t)i * NC + p] = (float)dist[p];
    a->q[i] = (foolc_counts){fw, bw, dc};
    float *xa = a->xadv + (size_t)i * r->d;
    if (ok) {
        if (get_b64(line + off, (unsigned char *)xa, r->d * sizeof(float))) return -1;
    } else {
        if (line[off] != '-' || (line[off + 1] != '\n' && line[off + 1] != '\0')) return -1;
        memcpy(xa, r->x + (size_t)i * r->d, r->d * sizeof(float));
    }
    *t_out = t;
    *i_out = i;
    return 0;
}

static int refuse(const char *path, int ln, const char *what)
{
    fprintf(stderr, "foolc report: --resume '%s': line %d: %s; the file was edited or damaged: "
            "start afresh (remove it or use another --resume file)\n", path, ln, what);
    return CLI_INPUT;
}

/* A restored record against this run's inputs: its point inside the model's box, and each
 * distance the one its point has from the clean image (bit for bit, as computed when the
 * record was written; infinite where the attack failed). */
static int check_record(const rep *r, int t, int32_t i, const char *path, int ln)
{
    const rep_att *a = &r->at[t];
    const float *x = r->x + (size_t)i * r->d, *xa = a->xadv + (size_t)i * r->d;
    char why[320];
    for (size_t q = 0; q < r->d; q++)
        if (!(xa[q] >= r->lo && xa[q] <= r->hi)) {
            snprintf(why, sizeof why, "sample %d of %s: its point has %g at %zu, outside the "
                     "model's box [%g, %g]", i, a->name, (double)xa[q], q, (double)r->lo,
                     (double)r->hi);
            return refuse(path, ln, why);
        }
    for (int p = 0; p < NC; p++) {
        float got = a->dist[(size_t)i * NC + p];
        float want = a->ok[i] ? (float)foolc_distance((foolc_norm)p, x, xa, r->d) : INFINITY;
        if (got == want) continue;
        snprintf(why, sizeof why, "sample %d of %s: its %s distance is %.9g but its point is "
                 "at %.9g from the image", i, a->name, foolc_norm_name((foolc_norm)p),
                 (double)got, (double)want);
        return refuse(path, ln, why);
    }
    return 0;
}

/* The chunk being read: its "s" lines so far (one attack, at most n samples). */
typedef struct resume_chunk {
    int len, t;
    int32_t *i;    /* r->n entries: the samples */
    int *ln;       /* r->n entries: their lines */
    uint8_t *seen; /* r->n entries: 1 for the samples of the chunk */
} resume_chunk;

/* The labels of a complete chunk: the model asked again about every stored point, in one
 * batch as when the chunk was written, must give the recorded label; a record marked
 * adversarial must not carry the true label. */
static int check_labels(const rep *r, foolc_model *model, const resume_chunk *ch, int32_t b,
                        int32_t m, const char *path)
{
    const rep_att *a = &r->at[ch->t];
    int32_t *lab = malloc((size_t)m * sizeof *lab);
    if (!lab) return cli_fail("report", FOOLC_E_NOMEM);
    if (foolc_model_decision(model, a->xadv + (size_t)b * r->d, m, lab) < 0)
        for (int32_t k = 0; k < m; k++) lab[k] = -1;
    int rc = 0;
    char why[320];
    for (int k = 0; k < ch->len && !rc; k++) {
        int32_t i = ch->i[k];
        if (lab[i - b] != a->adv[i]) {
            snprintf(why, sizeof why, "sample %d of %s: the file says the model labels its "
                     "point %d, the model says %d", i, a->name, a->adv[i], lab[i - b]);
            rc = refuse(path, ch->ln[k], why);
        } else if (a->ok[i] && a->adv[i] == r->y[i]) {
            snprintf(why, sizeof why, "sample %d of %s: marked adversarial, but the model "
                     "gives its point the true label %d", i, a->name, r->y[i]);
            rc = refuse(path, ch->ln[k], why);
        }
    }
    free(lab);
    return rc;
}

/* One line after the header: 0 for an "s" line, 1 for the "c" line that closes the chunk
 * (its samples are then done), -1 when malformed, -2 when a record is refused (or memory
 * ran out): the message printed, the exit code in *code. */
static int resume_line(rep *r, foolc_model *model, resume_chunk *ch, char *line,
                       const char *path, int ln, int *code)
{
    if (line[0] == 's') {
        int t;
        int32_t i;
        if (read_sample(r, line, &t, &i) || (ch->len && t != ch->t) || ch->len == r->n)
            return -1;
        if (ch->seen[i]) return -1;
        if ((*code = check_record(r, t, i, path, ln))) return -2;
        ch->t = t;
        ch->seen[i] = 1;
        ch->ln[ch->len] = ln;
        ch->i[ch->len++] = i;
        return 0;
    }
    char name[128];
    int b, m, st;
    double sec;
    if (line[0] != 'c' || sscanf(line, "c %127s %d %d %d %la", name, &b, &m, &st, &sec) != 5)
        return -1;
    int t = find_attack(r, name);
    if (t < 0 || b < 0 || m < 1 || m > r->n - b || ch->len != m || t != ch->t)
        return -1;
    for (int k = 0; k < ch->len; k++)
        if (ch->i[k] < b || ch->i[k] >= b + m) return -1;
    if ((*code = check_labels(r, model, ch, b, m, path))) return -2;
    for (int k = 0; k < ch->len; k++) {
        r->at[t].done[ch->i[k]] = 1;
        ch->seen[ch->i[k]] = 0;
    }
    r->at[t].seconds += sec;
    if (st < 0 && r->at[t].st >= 0) r->at[t].st = (foolc_status)st;
    ch->len = 0;
    return 1;
}

/* The first option that differs between two header lines, for the refusal message. */
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
            snprintf(out, len, "%sfile has '%.*s', this command '%.*s'", what, (int)la, pa,
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
        char *grown = realloc(*line, *cap * 2);
        if (!grown) return -1;
        *line = grown;
        *cap *= 2;
        if (!fgets(grown + len, (int)(*cap - len), f)) break;
        len = strlen(grown);
    }
    return len && (*line)[len - 1] == '\n';
}

/* The first two lines: the format, then this run's header (else refused). */
static int check_header(int ln, const char *line, const char *path, const char *header)
{
    int version;
    if (ln == 1 && strcmp(line, MAGIC)) {
        if (sscanf(line, "foolc-resume %d", &version) == 1 && version < 2)
            fprintf(stderr, "foolc report: --resume '%s': written by an older foolc (resume "
                    "format %d, which does not identify the attacked images, so its records "
                    "cannot be checked); start afresh: remove it or use another --resume "
                    "file\n", path, version);
        else if (sscanf(line, "foolc-resume %d", &version) == 1)
            fprintf(stderr, "foolc report: --resume '%s': written by a newer foolc (resume "
                    "format %d); use that version or another --resume file\n", path, version);
        else
            fprintf(stderr, "foolc report: --resume '%s': not a foolc resume file\n", path);
        return CLI_INPUT;
    }
    if (ln == 2 && strcmp(line, header)) {
        char why[640];
        header_diff(line, header, why, sizeof why);
        fprintf(stderr, "foolc report: --resume '%s': written by a different run (%s); use "
                "another file or the same options and inputs\n", path, why);
        return CLI_USAGE;
    }
    return 0;
}

/* Reads the chunks of an existing resume file into r. *lines: whole lines read; *good: the
 * offset after the header or after the last complete chunk. */
static int resume_read(rep *r, foolc_model *model, FILE *f, const char *path,
                       const char *header, int *lines, long *good)
{
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    resume_chunk ch = {0, -1, malloc((size_t)r->n * sizeof *ch.i),
                       malloc((size_t)r->n * sizeof *ch.ln), calloc((size_t)r->n, 1)};
    int rc = line && ch.i && ch.ln && ch.seen ? 0 : cli_fail("report", FOOLC_E_NOMEM), got = 0;
    while (!rc && (got = read_line(f, &line, &cap)) != 0) {
        if (got < 0) {
            rc = cli_fail("report", FOOLC_E_NOMEM);
            break;
        }
        int ln = ++*lines, k = 1, code = 0;
        if (ln <= 2) rc = check_header(ln, line, path, header);
        else if ((k = resume_line(r, model, &ch, line, path, ln, &code)) == -1) {
            fprintf(stderr, "foolc report: --resume '%s': line %d is malformed\n", path, ln);
            rc = CLI_INPUT;
        } else if (k == -2) {
            rc = code;
        }
        if (!rc && ln >= 2 && k > 0) *good = ftell(f);
    }
    free(line);
    free(ch.i);
    free(ch.ln);
    free(ch.seen);
    return rc;
}

/* An exclusive lock on the open file, so that two runs never append to one file. */
static int lock_file(FILE *f, const char *path)
{
    struct flock lk;
    memset(&lk, 0, sizeof lk);
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    if (fcntl(fileno(f), F_SETLK, &lk) == 0) return 0;
    fprintf(stderr, "foolc report: --resume '%s': in use by another foolc report\n", path);
    return CLI_USAGE;
}

int rep_resume_open(rep *r, foolc_model *model, const char *path, const char *header,
                    FILE **out)
{
    FILE *f = fopen(path, "r+");
    if (!f) f = fopen(path, "w+");
    if (!f) {
        fprintf(stderr, "foolc report: --resume '%s': cannot open: ", path);
        perror(NULL);
        return CLI_INPUT;
    }
    int lines = 0;
    long good = 0;
    int rc = lock_file(f, path);
    if (!rc) rc = resume_read(r, model, f, path, header, &lines, &good);
    if (!rc && lines < 2) { /* new or empty: write the header */
        rewind(f);
        if (ftruncate(fileno(f), 0) || fprintf(f, "%s%s", MAGIC, header) < 0 || fflush(f)) {
            fprintf(stderr, "foolc report: --resume '%s': cannot write\n", path);
            rc = CLI_INPUT;
        }
    } else if (!rc && (fflush(f) || ftruncate(fileno(f), good) || fseek(f, good, SEEK_SET))) {
        fprintf(stderr, "foolc report: --resume '%s': cannot truncate the torn tail\n", path);
        rc = CLI_INPUT;
    }
    if (rc) fclose(f);
    else *out = f;
    return rc;
}

int rep_resume_append(FILE *f, const rep *r, const rep_chunk *c)
{
    write_chunk(f, r, c);
    if (fflush(f) || fsync(fileno(f))) {
        fprintf(stderr, "foolc report: --resume: write failed\n");
        return CLI_INPUT;
    }
    return 0;
}

int rep_resume_write(const char *path, const char *header, const rep *r, const rep_chunk *c,
                     int n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return -1;
    }
    fprintf(f, "%s%s", MAGIC, header);
    for (int k = 0; k < n; k++) write_chunk(f, r, &c[k]);
    int bad = fflush(f) != 0;
    bad |= fsync(fd) != 0;
    bad |= ferror(f) != 0;
    bad |= fclose(f) != 0;
    if (bad) unlink(path);
    return bad ? -1 : 0;
}
