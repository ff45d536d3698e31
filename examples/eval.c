/* eval: an evaluation with the library API (include/foolc/eval.h, docs/eval.md). Two attacks
 * over 20 images in chunks of 8, with a step that adds a per-sample column (the clean logit
 * margin); prints each attack's success and median, the best of all and its robust-accuracy
 * curve; then saves every chunk as text and loads it into a second evaluation, which must
 * hold the same bytes (what a resume file or foolc-mpi does). Uses the reference MLP
 * (~/.cache/foolc/mlp.npz, `make demo` trains the CNN beside it) on the Fashion-MNIST test
 * split when both are there, else copes with an untrained MLP on random images.
 * Exits non-zero when a check fails. Uses only <foolc.h>. */
#include <foolc.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 20

static int fail(const char *what, foolc_status st)
{
    fprintf(stderr, "eval: %s failed: %s (%s)\n", what, foolc_status_str(st), foolc_errmsg());
    return 1;
}

/* The step: per sample, the clean margin z_y - max_{j != y} z_j (one column). */
static foolc_status margin_step(void *user, foolc_eval *ev, foolc_model *model, int32_t first,
                                int32_t count, const float *x, const int32_t *labels,
                                const uint64_t *ids, double *out)
{
    (void)user, (void)ev, (void)first, (void)ids;
    int32_t k = foolc_model_oracle(model)->n_classes;
    float *z = malloc((size_t)count * (size_t)k * sizeof *z);
    if (!z) return FOOLC_E_NOMEM;
    foolc_status st = foolc_model_scores(model, x, count, z);
    for (int32_t i = 0; st >= 0 && i < count; i++) {
        const float *zi = z + (size_t)i * k;
        float other = -INFINITY;
        for (int32_t j = 0; j < k; j++)
            if (j != labels[i] && zi[j] > other) other = zi[j];
        out[i] = (double)zi[labels[i]] - other;
    }
    free(z);
    return st;
}

/* The evaluation of the example: attacks, the step, samples. */
static foolc_status build(foolc_model *model, const foolc_data *d, foolc_eval **out)
{
    foolc_eval_opts o;
    foolc_status st = foolc_eval_defaults(&o);
    o.chunk = 8;
    o.seed = 1;
    const char *cols[] = {"margin"};
    foolc_eval *ev = NULL;
    if (st >= 0) st = foolc_eval_new(model, &o, &ev);
    if (st >= 0) st = foolc_eval_add_attack(ev, "deepfool-l2");
    if (st >= 0) st = foolc_eval_add_attack(ev, "fgsm");
    if (st >= 0) st = foolc_eval_set(ev, "deepfool-l2", "steps", "30");
    if (st >= 0) st = foolc_eval_add_step(ev, "clean", 1, cols, margin_step, NULL);
    if (st >= 0) st = foolc_eval_select(ev, d, N, 1); /* the first N, as they come */
    if (st < 0) foolc_eval_free(ev);
    else *out = ev;
    return st;
}

int main(void)
{
    const char *home = getenv("HOME");
    char path[4096];
    snprintf(path, sizeof path, "%s/.cache/foolc/mlp.npz", home ? home : ".");
    foolc_net *net = NULL;
    foolc_data d = {0};
    int reference = foolc_net_load(path, &net) >= 0 && foolc_data_load(NULL, "test", &d) >= 0;
    if (!reference) { /* cope: an untrained MLP on random images */
        foolc_net_free(net);
        foolc_data_free(&d);
        foolc_status st = foolc_net_new("input c=1 h=28 w=28; flatten; dense out=32; relu; "
                                        "dense out=10", 7, &net);
        if (st < 0) return fail("net_new", st);
        d.shape = (foolc_shape){N, 1, 28, 28};
        d.n_classes = 10;
        d.x = malloc((size_t)N * 784 * sizeof *d.x);
        d.y = malloc((size_t)N * sizeof *d.y);
        if (!d.x || !d.y) return fail("malloc", FOOLC_E_NOMEM);
        uint64_t r = 3;
        for (size_t i = 0; i < (size_t)N * 784; i++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            d.x[i] = (float)(r >> 40) / (float)(1 << 24);
        }
        for (int32_t i = 0; i < N; i++) d.y[i] = i % 10;
    }
    printf("eval: %s\n", reference ? "the reference MLP on Fashion-MNIST"
                                   : "an untrained MLP on random images (no reference data)");
    foolc_oracle o;
    foolc_model *model = NULL;
    foolc_eval *ev = NULL, *ev2 = NULL;
    foolc_status st = foolc_net_oracle(net, 256, &o);
    if (st >= 0) st = foolc_model_new(&o, &model);
    if (st >= 0) st = build(model, &d, &ev);
    if (st >= 0) st = foolc_eval_run(ev); /* the gradient check, then every chunk */
    if (st < 0) return fail("evaluation", st);
    int32_t n = foolc_eval_samples(ev);
    for (int32_t t = 0; t < foolc_eval_attacks(ev); t++) {
        foolc_norm p = foolc_eval_attack_norm(ev, t);
        printf("  %-12s %-4s success %5.1f%%  median %.4g\n", foolc_eval_attack_name(ev, t),
               foolc_norm_name(p), 100 * foolc_eval_success_rate(ev, t, p),
               foolc_eval_quantile(ev, t, p, 0.5));
    }
    double eps[16];
    int32_t k = foolc_eval_grid(ev, FOOLC_L2, 0, eps, 16);
    printf("  best-of-all l2 robust accuracy:");
    for (int32_t e = 0; e < k; e++)
        printf(" %.3g@%.3g", foolc_eval_robust(ev, FOOLC_EVAL_BEST, FOOLC_L2, eps[e]), eps[e]);
    printf("\n  clean margin of sample 0: %.4g\n", foolc_eval_step_values(ev, 0)[0]);
    for (int32_t i = 0; i < foolc_eval_diagnostics(ev); i++) {
        int warn;
        const char *text = foolc_eval_diagnostic(ev, i, &warn);
        printf("  %s %s\n", warn ? "WARN" : "ok  ", text);
    }

    /* Every chunk as text into a second evaluation (checked against the model). */
    int bad = 0;
    st = build(model, &d, &ev2);
    for (int32_t c = 0; st >= 0 && c < foolc_eval_chunk_count(ev); c++) {
        char *text;
        size_t len;
        if ((st = foolc_eval_chunk_save(ev, c, &text, &len)) < 0) break;
        st = foolc_eval_chunk_load(ev2, text, len, 1, NULL);
        foolc_free(text);
    }
    if (st < 0) return fail("save and load", st);
    for (int32_t t = 0; t < foolc_eval_attacks(ev); t++)
        bad |= memcmp(foolc_eval_dist(ev, t), foolc_eval_dist(ev2, t),
                      (size_t)n * FOOLC_NORM_COUNT * sizeof(float)) != 0 ||
               memcmp(foolc_eval_x_adv(ev, t), foolc_eval_x_adv(ev2, t),
                      (size_t)n * 784 * sizeof(float)) != 0;
    bad |= memcmp(foolc_eval_best(ev), foolc_eval_best(ev2),
                  (size_t)n * FOOLC_NORM_COUNT * sizeof(float)) != 0;
    bad |= memcmp(foolc_eval_step_values(ev, 0), foolc_eval_step_values(ev2, 0),
                  (size_t)n * sizeof(double)) != 0;
    printf("eval: %d chunks saved and loaded: %s\n", foolc_eval_chunk_count(ev),
           bad ? "DIFFERENT" : "the same results");
    foolc_eval_free(ev);
    foolc_eval_free(ev2);
    foolc_model_free(model);
    foolc_net_free(net);
    foolc_data_free(&d);
    return bad;
}
