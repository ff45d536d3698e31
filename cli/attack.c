/* foolc attack: one attack on one input. Prints the label change and the distance of the
 * adversarial in every norm, and writes an image of original | adversarial | magnified
 * perturbation (PNG) and, on request, the arrays as NPZ. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: foolc attack --model M.npz --attack A [options]\n"
           "  --data D       fashion-mnist (default), an IDX directory or an .npz (x, y)\n"
           "  --index I      test image (default 0)\n"
           "  --attack A     the attack (see foolc attacks)\n"
           "  --set A.K=V,.. attack parameters, e.g. --set pgd-linf.steps=20\n"
           "  --seed S       attack seed (default 0)\n"
           "  --pool N       training images offered as starting points (default all; 0 none)\n"
           "  --png FILE     image of original | adversarial | magnified perturbation\n"
           "                 (default foolc-ATTACK-INDEX.png; '-' for none)\n"
           "  --npz FILE     save x, x_adv, label, adv_label as NPZ\n"
           "  --quiet        no progress on stderr\n");
}

static void softmax(const float *z, int32_t k, double *p)
{
    double m = z[0], s = 0;
    for (int32_t j = 1; j < k; j++) m = fmax(m, z[j]);
    for (int32_t j = 0; j < k; j++) s += p[j] = exp((double)z[j] - m);
    for (int32_t j = 0; j < k; j++) p[j] /= s;
}

int cmd_attack(int argc, char **argv)
{
    cli_args a;
    if (cli_args_init(&a, argc, argv)) return CLI_FAIL;
    int rc = CLI_OK;
    foolc_net *net = NULL;
    foolc_model *model = NULL;
    foolc_attack *att = NULL;
    foolc_data data = {0}, pool = {0};
    foolc_npz *z = NULL;
    float *xadv = NULL, *logits = NULL;
    char png_buf[512];
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
        help();
        goto out;
    }
    const char *model_path = cli_opt(&a, "--model", "-m");
    const char *data_spec = cli_opt(&a, "--data", NULL);
    const char *name = cli_opt(&a, "--attack", NULL), *set = cli_opt(&a, "--set", NULL);
    const char *png = cli_opt(&a, "--png", NULL), *npz = cli_opt(&a, "--npz", NULL);
    int quiet = cli_flag(&a, "--quiet");
    long index = 0, seed = 0, pool_n = -1;
    if ((rc = cli_opt_long(&a, "--index", "-i", 0, 2147483647L, &index)) ||
        (rc = cli_opt_long(&a, "--seed", NULL, 0, 2147483647L, &seed)) ||
        (rc = cli_opt_long(&a, "--pool", NULL, 0, 100000000L, &pool_n)) ||
        (rc = cli_args_leftover(&a, "attack")))
        goto out;
    if (!name || !*name) {
        fprintf(stderr, "foolc attack: --attack NAME is required (see foolc attacks)\n");
        rc = CLI_USAGE;
        goto out;
    }
    foolc_status st;
    foolc_norm norm;
    if ((st = foolc_attack_describe(name, &norm, NULL, NULL, NULL)) < 0) {
        rc = cli_fail_opt("attack", "--attack", name, st);
        goto out;
    }
    if (set && (rc = cli_check_settings(set))) goto out;
    if ((rc = cli_load_model("attack", model_path, &net, &model))) goto out;
    if ((rc = cli_load_data("attack", data_spec, "test", net, &data))) goto out;
    if (index >= data.shape.n) {
        fprintf(stderr, "foolc attack: --index: expected a whole number in [0, %d], got '%ld'\n",
                data.shape.n - 1, index);
        rc = CLI_USAGE;
        goto out;
    }
    foolc_shape s = foolc_net_input(net);
    s.n = 1;
    size_t d = (size_t)s.c * s.h * s.w;
    int32_t k = foolc_net_classes(net), label = data.y[index], adv_label = -1, pred;
    const float *x = data.x + (size_t)index * d;
    float lo, hi;
    foolc_net_bounds(net, &lo, &hi);
    xadv = malloc(d * sizeof *xadv);
    logits = malloc((size_t)2 * k * sizeof *logits);
    if (!xadv || !logits) { rc = cli_fail("attack", FOOLC_E_NOMEM); goto out; }
    if ((st = foolc_attack_new(name, &att)) < 0) {
        rc = cli_fail_opt("attack", "--attack", name, st);
        goto out;
    }
    if (set && (rc = cli_apply_settings(set, name, att))) goto out;
    if (pool_n != 0) {
        if ((rc = cli_load_data("attack", data_spec, "train", net, &pool))) goto out;
        if (pool_n > 0 && pool_n < pool.shape.n) pool.shape.n = (int32_t)pool_n;
        if ((st = foolc_attack_set_starts(att, pool.x, pool.y, pool.shape.n)) < 0) {
            rc = cli_fail("attack: --pool", st);
            goto out;
        }
    }
    float dist;
    uint8_t ok = 0;
    foolc_counts q = {0, 0, 0};
    foolc_result res = {xadv, &dist, &ok, &q};
    double t0 = cli_now();
    st = foolc_attack_run(att, model, s, x, &label, NULL, (uint64_t)seed, &res);
    double sec = cli_now() - t0;
    if (st < 0) {
        fprintf(stderr, "foolc attack: --attack '%s': %s: %s%s\n", name, foolc_status_str(st),
                foolc_errmsg(), ok ? " (an adversarial was found before the stop)" : "");
        rc = CLI_FAIL;
    }
    if ((st = foolc_model_scores(model, x, 1, logits)) < 0 ||
        (st = foolc_model_scores(model, xadv, 1, logits + k)) < 0) {
        rc = cli_fail("attack: model", st);
        goto out;
    }
    double *p0 = malloc((size_t)2 * k * sizeof *p0);
    if (!p0) { rc = cli_fail("attack", FOOLC_E_NOMEM); goto out; }
    softmax(logits, k, p0);
    softmax(logits + k, k, p0 + k);
    pred = 0;
    adv_label = 0;
    for (int32_t j = 1; j < k; j++) {
        if (logits[j] > logits[pred]) pred = j;
        if (logits[k + j] > logits[k + adv_label]) adv_label = j;
    }
    printf("attack    %s (%s) on test image %ld of %s, seed %ld\n", name, foolc_norm_name(norm),
           index, data_spec ? data_spec : "fashion-mnist", seed);
    printf("label     %d; the model says %d (p = %.4f)%s\n", label, pred, p0[pred],
           pred != label ? "  (already misclassified)" : "");
    if (ok) {
        printf("result    adversarial: label %d -> %d (p = %.4f; true label p = %.4f)\n", label,
               adv_label, p0[k + adv_label], p0[k + label]);
        printf("distance ");
        for (int p = 0; p < FOOLC_NORM_COUNT; p++)
            printf(" %s %.6g", foolc_norm_name((foolc_norm)p),
                   foolc_distance((foolc_norm)p, x, xadv, d));
        printf("\n");
    } else {
        printf("result    no adversarial found\n");
    }
    printf("queries   forward %llu, backward %llu, decided %llu; %.2f s\n",
           (unsigned long long)q.forward, (unsigned long long)q.backward,
           (unsigned long long)q.decided, sec);
    free(p0);
    if (!png) {
        snprintf(png_buf, sizeof png_buf, "foolc-%s-%ld.png", name, index);
        png = png_buf;
    }
    if (strcmp(png, "-")) {
        int side = s.h > s.w ? s.h : s.w, scale = side >= 128 ? 1 : 128 / side, pad = 6;
        cli_canvas cv;
        if (cli_canvas_new(&cv, 3 * s.w * scale + 4 * pad, s.h * scale + 2 * pad)) {
            rc = cli_fail("attack", FOOLC_E_NOMEM);
            goto out;
        }
        cli_canvas_image(&cv, pad, pad, x, s, lo, hi, scale);
        cli_canvas_image(&cv, 2 * pad + s.w * scale, pad, xadv, s, lo, hi, scale);
        cli_canvas_delta(&cv, 3 * pad + 2 * s.w * scale, pad, x, xadv, s, scale);
        int r2 = cli_canvas_png(&cv, "attack", "--png", png);
        cli_canvas_free(&cv);
        if (r2) { rc = r2; goto out; }
        printf("image     %s (original | adversarial | perturbation magnified, red +, blue -)\n",
               png);
    }
    if (npz) {
        foolc_array ax = {FOOLC_F32, 4, {1, s.c, s.h, s.w}, (void *)x};
        foolc_array aa = {FOOLC_F32, 4, {1, s.c, s.h, s.w}, xadv};
        int32_t labs[2] = {label, ok ? adv_label : -1};
        foolc_array al = {FOOLC_I32, 1, {2}, labs};
        if ((st = foolc_npz_new(&z)) < 0 || (st = foolc_npz_add(z, "x", &ax)) < 0 ||
            (st = foolc_npz_add(z, "x_adv", &aa)) < 0 ||
            (st = foolc_npz_add(z, "labels", &al)) < 0 ||
            (st = foolc_npz_write(z, npz, 1)) < 0) {
            rc = cli_fail_opt("attack", "--npz", npz, st);
            goto out;
        }
        printf("arrays    %s (x, x_adv, labels = [label, adversarial label])\n", npz);
    }
    (void)quiet;
out:
    foolc_npz_free(z);
    free(xadv);
    free(logits);
    foolc_attack_free(att);
    foolc_model_free(model);
    foolc_net_free(net);
    foolc_data_free(&data);
    foolc_data_free(&pool);
    cli_args_free(&a);
    return rc;
}
