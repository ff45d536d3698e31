/* The ONNX importer (lib/onnx/, docs/onnx.md): the test models of tests/data/onnx/ (made by
 * make_models.py with PyTorch, committed with PyTorch's logits and input gradients on
 * fixed inputs) load, match PyTorch on both backends, survive an attack end to end and a
 * save/load round trip; refused models say why (op outside the table, external data, two
 * inputs, a cycle); truncated, corrupted, deeply nested bytes and failing allocations give
 * errors, never a crash. */
#include "testutil.h"

#include <math.h>

#include "internal.h"
#include "onnx/onnx.h"

static const char *const k_models[] = { "resnet", "normalize", "dwsep", "gelu_mlp", "concat",
                                         "nhwc" };

static const char *odata(const char *name, const char *ext)
{
    static char path[4][512];
    static int k;
    const char *dir = getenv("FOOLC_TEST_DATA");
    char *p = path[k++ & 3];
    snprintf(p, sizeof path[0], "%s/onnx/%s%s", dir && *dir ? dir : "tests/data", name, ext);
    return p;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s (run the tests from the repository root or set "
                  "FOOLC_TEST_DATA)", path);
    ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    ck_assert_int_ge(n, 0);
    rewind(fp);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static const float *member(const foolc_npz *z, const char *name, int64_t want)
{
    const foolc_array *a = foolc_npz_get(z, name);
    ck_assert_msg(a != NULL, "member %s missing", name);
    ck_assert_int_eq(a->dtype, FOOLC_F32);
    ck_assert_int_eq(foolc_array_count(a), want);
    return a->data;
}

/* max |a - b| <= tol * max(|b|_inf, 1e-3): relative to the array's scale. */
static void close_to(const float *a, const float *b, int64_t n, double tol, const char *what,
                     const char *model)
{
    double scale = 1e-3, err = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(a[i]), "%s %s[%lld] is not finite", model, what, (long long)i);
        double e = fabs((double)a[i] - b[i]);
        if (e > err) err = e, at = i;
    }
    ck_assert_msg(err <= tol * scale, "%s: %s differs from PyTorch by %g at %lld (%g vs %g; "
                  "scale %g)", model, what, err, (long long)at, (double)a[at], (double)b[at], scale);
}

typedef struct seedg {
    const float *g;
} seedg;

static int seed_fn(void *user, const float *logits, int32_t n, int32_t k, float *dl)
{
    (void)logits;
    memcpy(dl, ((seedg *)user)->g, (size_t)n * (size_t)k * sizeof(float));
    return 0;
}

/* Logits and input gradients against PyTorch's, on both backends. */
static void check_against_torch(foolc_net *net, const char *name)
{
    foolc_npz *z = NULL;
    ck_ok(foolc_npz_read(odata(name, ".npz"), &z));
    const foolc_array *ax = foolc_npz_get(z, "x");
    ck_assert_ptr_nonnull(ax);
    int32_t n = (int32_t)ax->shape[0], k = foolc_net_classes(net);
    foolc_shape in = foolc_net_input(net);
    int64_t d = (int64_t)in.c * in.h * in.w;
    ck_assert_int_eq(foolc_array_count(ax), n * d);
    ck_assert_int_eq(k, 10);
    const float *x = ax->data, *g = member(z, "g", (int64_t)n * k);
    const float *want_l = member(z, "logits", (int64_t)n * k), *want_dx = member(z, "dx", n * d);
    float *logits = calloc((size_t)n * (size_t)k, sizeof(float));
    float *dx = calloc((size_t)(n * d), sizeof(float));
    ck_assert(logits && dx);
    for (int b = 0; b < FOOLC_BACKEND_COUNT; b++) {
        ck_ok(foolc_net_set_backend(net, (foolc_backend)b));
        char what[64];
        ck_ok(foolc_net_forward(net, x, n, logits));
        snprintf(what, sizeof what, "logits (backend %d)", b);
        close_to(logits, want_l, (int64_t)n * k, 1e-4, what, name);
        seedg sg = { g };
        memset(logits, 0, (size_t)n * (size_t)k * sizeof(float));
        ck_ok(foolc_net_grad(net, x, n, seed_fn, &sg, logits, dx, NULL));
        close_to(logits, want_l, (int64_t)n * k, 1e-4, what, name);
        snprintf(what, sizeof what, "input gradient (backend %d)", b);
        close_to(dx, want_dx, n * d, 1e-4, what, name);
    }
    ck_ok(foolc_net_set_backend(net, FOOLC_BACKEND_FAST));
    free(logits);
    free(dx);
    foolc_npz_free(z);
}

/* deepfool-l2 end to end on the model's oracle: labels are its own predictions, every
 * reported adversarial is re-checked here. */
static void attack_it(foolc_net *net, const char *name)
{
    foolc_npz *z = NULL;
    ck_ok(foolc_npz_read(odata(name, ".npz"), &z));
    const foolc_array *ax = foolc_npz_get(z, "x");
    int32_t n = (int32_t)ax->shape[0], k = foolc_net_classes(net);
    foolc_shape s = foolc_net_input(net);
    s.n = n;
    size_t d = (size_t)s.c * (size_t)s.h * (size_t)s.w;
    float *logits = calloc((size_t)n * (size_t)k, sizeof(float));
    float *xadv = calloc((size_t)n * d, sizeof(float)), *dist = calloc((size_t)n, sizeof(float));
    int32_t *labels = calloc((size_t)n, sizeof(int32_t));
    uint8_t *succ = calloc((size_t)n, 1);
    ck_assert(logits && xadv && dist && labels && succ);
    ck_ok(foolc_net_forward(net, ax->data, n, logits));
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 1; j < k; j++)
            if (logits[i * k + j] > logits[i * k + labels[i]]) labels[i] = j;
    foolc_oracle o;
    ck_ok(foolc_net_oracle(net, 8, &o));
    foolc_model *m = NULL;
    foolc_attack *a = NULL;
    ck_ok(foolc_model_new(&o, &m));
    /* deepfool-l2 first; a model it cannot fool in the box (saturated units) gets the
     * projected gradient too */
    static const char *const attacks[] = { "deepfool-l2", "pgd-linf" };
    int found = 0;
    for (int t = 0; t < 2 && !found; t++) {
        foolc_attack_free(a);
        ck_ok(foolc_attack_new(attacks[t], &a));
        foolc_result r = { xadv, dist, succ, NULL };
        foolc_status st = foolc_attack_run(a, m, s, ax->data, labels, NULL, 1, &r);
        ck_assert_msg(st == FOOLC_OK || st == FOOLC_NOT_FOUND, "%s: %s: %d %s", name,
                      attacks[t], st, foolc_errmsg());
        for (int32_t i = 0; i < n; i++) found += succ[i];
    }
    found = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!succ[i]) continue;
        found++;
        ck_assert_msg(isfinite(dist[i]) && dist[i] > 0, "%s: sample %d distance %g", name, i,
                      (double)dist[i]);
        ck_ok(foolc_net_forward(net, xadv + (size_t)i * d, 1, logits));
        int32_t best = 0;
        for (int32_t j = 1; j < k; j++)
            if (logits[j] > logits[best]) best = j;
        ck_assert_msg(best != labels[i], "%s: sample %d still classified %d", name, i, best);
    }
    ck_assert_msg(found > 0, "%s: no adversarial among %d samples", name, n);
    foolc_attack_free(a);
    foolc_model_free(m);
    free(logits);
    free(xadv);
    free(dist);
    free(labels);
    free(succ);
    foolc_npz_free(z);
}

/* Save as NPZ (the graph text and the members), load back: the same text and parameters,
 * the same logits bit for bit, and a second save writes the same bytes. */
static void round_trip(foolc_net *net, const char *name)
{
    char p1[512], p2[512];
    tu_tmpname(p1, sizeof p1, "onnx1.npz");
    tu_tmpname(p2, sizeof p2, "onnx2.npz");
    ck_ok(foolc_net_save(net, p1));
    foolc_net *back = NULL;
    ck_ok(foolc_net_load(p1, &back));
    ck_assert_str_eq(foolc_net_arch(back), foolc_net_arch(net));
    int64_t np = foolc_net_param_count(net);
    ck_assert_int_eq(foolc_net_param_count(back), np);
    float *a = calloc((size_t)np + 1, sizeof(float)), *b = calloc((size_t)np + 1, sizeof(float));
    ck_assert(a && b);
    ck_ok(foolc_net_get_params(net, a));
    ck_ok(foolc_net_get_params(back, b));
    ck_assert_msg(!memcmp(a, b, (size_t)np * sizeof(float)), "%s: parameters differ", name);
    foolc_npz *z = NULL;
    ck_ok(foolc_npz_read(odata(name, ".npz"), &z));
    const foolc_array *ax = foolc_npz_get(z, "x");
    int32_t n = (int32_t)ax->shape[0], k = foolc_net_classes(net);
    float *l1 = calloc((size_t)n * (size_t)k, sizeof(float));
    float *l2 = calloc((size_t)n * (size_t)k, sizeof(float));
    ck_ok(foolc_net_forward(net, ax->data, n, l1));
    ck_ok(foolc_net_forward(back, ax->data, n, l2));
    ck_assert_msg(!memcmp(l1, l2, (size_t)n * (size_t)k * sizeof(float)), "%s: logits differ "
                  "after the round trip", name);
    ck_ok(foolc_net_save(back, p2));
    size_t n1, n2;
    unsigned char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    ck_assert_msg(n1 == n2 && !memcmp(b1, b2, n1), "%s: the saved files differ", name);
    free(b1);
    free(b2);
    free(l1);
    free(l2);
    free(a);
    free(b);
    foolc_npz_free(z);
    foolc_net_free(back);
    remove(p1);
    remove(p2);
}

START_TEST(test_model)
{
    const char *name = k_models[_i];
    foolc_net *net = NULL;
    /* through foolc_net_load, which dispatches .onnx to the importer */
    ck_ok(foolc_net_load(odata(name, ".onnx"), &net));
    ck_assert_msg(strchr(foolc_net_arch(net), '('), "%s: not a graph text: %s", name,
                  foolc_net_arch(net));
    check_against_torch(net, name);
    attack_it(net, name);
    round_trip(net, name);
    foolc_net_free(net);
}
END_TEST

/* The same bytes from memory give the same net; the magic is enough without the
 * extension. */
START_TEST(test_sniff)
{
    size_t n;
    unsigned char *b = slurp(odata("resnet", ".onnx"), &n);
    char tmp[512];
    tu_tmpname(tmp, sizeof tmp, "model.bin");
    FILE *f = fopen(tmp, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
    foolc_net *a = NULL, *c = NULL;
    ck_ok(foolc_net_load(tmp, &a));
    ck_ok(foolc__onnx_load_mem(b, n, "resnet.onnx", &c));
    ck_assert_str_eq(foolc_net_arch(a), foolc_net_arch(c));
    ck_assert(foolc__onnx_sniff(tmp));
    ck_assert(!foolc__onnx_sniff("tests/data/arrays.npz"));
    foolc_net_free(a);
    foolc_net_free(c);
    remove(tmp);
    free(b);
}
END_TEST

static void refused(const char *name, foolc_status want, const char *const *words)
{
    foolc_net *net = NULL;
    foolc_status st = foolc_net_load(odata(name, ".onnx"), &net);
    ck_assert_msg(st == want, "%s: %d (%s), want %d", name, st, foolc_errmsg(), want);
    ck_assert_ptr_null(net);
    for (; *words; words++)
        ck_assert_msg(strstr(foolc_errmsg(), *words), "%s: '%s' not in: %s", name, *words,
                      foolc_errmsg());
}

START_TEST(test_refusals)
{
    static const char *const op[] = { "my_lrn", "(LRN)", "supported ops: Add", "Conv", NULL };
    static const char *const ext[] = { "'w'", "external", "weights.bin", NULL };
    static const char *const inputs[] = { "several inputs", "'x2'", NULL };
    static const char *const cyc[] = { "cycle", NULL };
    refused("refuse_op", FOOLC_E_UNSUPPORTED, op);
    refused("refuse_external", FOOLC_E_UNSUPPORTED, ext);
    refused("refuse_inputs", FOOLC_E_UNSUPPORTED, inputs);
    refused("refuse_cycle", FOOLC_E_FORMAT, cyc);
    static const char *const none[] = { "cannot open", NULL };
    refused("no_such_model", FOOLC_E_IO, none);
}
END_TEST

/* Every proper prefix of a model is FOOLC_E_FORMAT (truncated wire data, or a model whose
 * graph or opset is cut off). */
START_TEST(test_truncated)
{
    size_t n;
    unsigned char *b = slurp(odata(k_models[_i], ".onnx"), &n);
    for (size_t len = 0; len < n; len += (len < 256 ? 1 : 97)) {
        foolc_net *net = NULL;
        foolc_status st = foolc__onnx_load_mem(b, len, "cut.onnx", &net);
        ck_assert_msg(st == FOOLC_E_FORMAT, "%s cut at %zu of %zu: %d (%s)", k_models[_i], len,
                      n, st, foolc_errmsg());
        ck_assert_ptr_null(net);
    }
    free(b);
}
END_TEST

/* Random byte changes: any status, a message for every error, never a crash (ASan runs
 * this in make check-asan). */
START_TEST(test_corrupted)
{
    size_t n;
    unsigned char *orig = slurp(odata(k_models[_i], ".onnx"), &n);
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    uint64_t s = 0x9e3779b97f4a7c15ULL * (uint64_t)(_i + 1);
    int errors = 0;
    for (int t = 0; t < 300; t++) {
        memcpy(b, orig, n);
        int flips = 1 + t % 4;
        for (int f = 0; f < flips; f++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(s >> 33) % n;
            b[at] = (unsigned char)(t % 3 == 0 ? b[at] ^ (1u << (s >> 29 & 7))
                                               : t % 3 == 1 ? 0xff : (s >> 40));
        }
        foolc_net *net = NULL;
        foolc_status st = foolc__onnx_load_mem(b, n, "bad.onnx", &net);
        if (st == FOOLC_OK) {
            ck_assert_ptr_nonnull(net);
            foolc_net_free(net);
            continue;
        }
        errors++;
        ck_assert_msg(st == FOOLC_E_FORMAT || st == FOOLC_E_UNSUPPORTED, "status %d (%s)", st,
                      foolc_errmsg());
        ck_assert_msg(foolc_errmsg()[0], "no message for status %d", st);
        ck_assert_ptr_null(net);
    }
    ck_assert_int_gt(errors, 0);
    free(b);
    free(orig);
}
END_TEST

/* Wire bytes: tag (field, type 2) + length + body. */
static size_t wrap(unsigned char *out, unsigned field, const unsigned char *body, size_t len)
{
    size_t k = 0;
    out[k++] = (unsigned char)(field << 3 | 2);
    for (size_t v = len;; v >>= 7) {
        out[k++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f) break;
    }
    memmove(out + k, body, len);
    return k + len;
}

/* Messages nested without end (a graph in an attribute of a node of a graph ...) are
 * refused before protobuf-c recurses into them; a length past the end is malformed. */
START_TEST(test_hostile)
{
    enum { LEVELS = 5000 };
    unsigned char *buf = malloc(16 * LEVELS), *tmp = malloc(16 * LEVELS);
    ck_assert(buf && tmp);
    size_t len = 0;
    for (int i = 0; i < LEVELS; i++) {
        /* GraphProto.node (1) > NodeProto.attribute (5) > AttributeProto.g (6) */
        len = wrap(tmp, 6, buf, len);
        len = wrap(buf, 5, tmp, len);
        len = wrap(tmp, 1, buf, len);
        memcpy(buf, tmp, len);
    }
    len = wrap(tmp, 7, buf, len); /* ModelProto.graph */
    foolc_net *net = NULL;
    ck_status(foolc__onnx_load_mem(tmp, len, "deep.onnx", &net), FOOLC_E_FORMAT);
    ck_assert_msg(strstr(foolc_errmsg(), "nested"), "%s", foolc_errmsg());
    const unsigned char past[] = { 0x08, 0x07, 0x3a, 0xff, 0xff, 0x03, 0x0a };
    ck_status(foolc__onnx_load_mem(past, sizeof past, "past.onnx", &net), FOOLC_E_FORMAT);
    ck_status(foolc__onnx_load_mem(past, 0, "empty.onnx", &net), FOOLC_E_FORMAT);
    /* a huge varint count of packed dims: capped, malformed, never a giant allocation */
    const unsigned char dims[] = { 0x3a, 0x0c, 0x2a, 0x0a, 0x0a, 0x08, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0x7f };
    ck_assert_int_lt(foolc__onnx_load_mem(dims, sizeof dims, "dims.onnx", &net), 0);
    ck_assert_ptr_null(net);
    free(buf);
    free(tmp);
}
END_TEST

/* Every allocation failing in turn: FOOLC_E_NOMEM (or success once none fails), no leak
 * (ASan), no crash. */
START_TEST(test_alloc_failures)
{
    size_t n;
    unsigned char *b = slurp(odata("resnet", ".onnx"), &n);
    int ok = 0;
    for (uint64_t k = 1; k < 100000 && !ok; k += (k < 400 ? 1 : 37)) {
        foolc__alloc_fail_at(k);
        foolc_net *net = NULL;
        foolc_status st = foolc__onnx_load_mem(b, n, "resnet.onnx", &net);
        foolc__alloc_fail_at(0);
        if (st == FOOLC_OK) {
            ok = 1;
            foolc_net_free(net);
            break;
        }
        ck_assert_msg(st == FOOLC_E_NOMEM, "allocation %llu failing: %d (%s)",
                      (unsigned long long)k, st, foolc_errmsg());
        ck_assert_ptr_null(net);
    }
    ck_assert(ok);
    free(b);
}
END_TEST

/* float16, bfloat16 and the converter's edge cases. */
START_TEST(test_halfs)
{
    ck_assert_float_eq(foolc__ox_half(0x3c00), 1.0f);
    ck_assert_float_eq(foolc__ox_half(0xc000), -2.0f);
    ck_assert_float_eq(foolc__ox_half(0x0001), ldexpf(1.0f, -24));
    ck_assert_float_eq(foolc__ox_half(0x7bff), 65504.0f);
    ck_assert(isinf(foolc__ox_half(0x7c00)));
    ck_assert(isnan(foolc__ox_half(0x7e00)));
}
END_TEST

Suite *foolc_suite_onnx(void);
Suite *foolc_suite_onnx(void)
{
    Suite *s = suite_create("onnx");
    int nm = (int)(sizeof k_models / sizeof *k_models);
    TCase *tc = tcase_create("models");
    tcase_add_loop_test(tc, test_model, 0, nm);
    tcase_add_test(tc, test_sniff);
    tcase_add_test(tc, test_refusals);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_loop_test(tc, test_truncated, 0, nm);
    tcase_add_loop_test(tc, test_corrupted, 0, nm);
    tcase_add_test(tc, test_hostile);
    tcase_add_test(tc, test_alloc_failures);
    tcase_add_test(tc, test_halfs);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    return s;
}
