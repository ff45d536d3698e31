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
           "  --model M      an NPZ model file or an ONNX model (docs/onnx.md)\n"
           "  --bounds LO,HI the model's input range (default: the file's, else [0, 1])\n"
           "  --data D       fashion-mnist (default), an IDX directory or an .npz (x, y)\n"
           "  --index I      test image (default 0)\n"
           "  --attack A     the attack (see foolc attacks)\n"
           "  --set A.K=V,.. attack parameters, e.g. --set pgd-linf.steps=20\n"
           "  --seed S       attack seed (default 0)\n"
           "  --pool N       training images offered as starting points (default all; 0 none)\n"
           "  --png FILE     image of original | adversarial | magnified perturbation\n"
           "                 (default foolc-ATTACK-INDEX.png; '-' for none)\n"
           "  --npz FILE     save the arrays x, x_adv and labels = [label, adversarial\n"
           "                 label (-1 when none was found)] as NPZ\n"
           "  --quiet        no progress on stderr\n");
}

static void softmax(const float *z, int32_t k, double *p)
{
    double m = z[0], s = 0;
    for (int32_t j = 1; j < k; j++) m = fmax(m, z[j]);
    for (int32_t j = 0; j < k; j++) s += p[j] = exp((double)z[j] - m);
    for (int32_t j = 0; j < k; j++) p[j] /= s;
}

/* The options of foolc attack as given (defaults where absent). */
typedef struct attack_opts {
    const char *model, *data, *name, *set, *png, *npz; /* NULL when absent */
    int quiet;                                         /* accepted; one run shows no progress */
    long index, seed, pool;
} attack_opts;

/* What a foolc attack run holds; attack_ctx_free releases it. */
typedef struct attack_ctx {
    attack_opts o;
    foolc_norm norm;         /* the attack's */
    foolc_net *net;
    foolc_model *model;
    foolc_attack *att;
    foolc_data data, pool;   /* test split; training split (--pool starting points) */
    foolc_shape s;           /* one image */
    size_t d;
    int32_t k, label;        /* classes; the image's label */
    const float *x;          /* the test image, inside data */
    float lo, hi;
    float *xadv;             /* the attack's point (x when none was found) */
    float dist;
    uint8_t ok;              /* a verified adversarial was found */
    foolc_counts q;
    double seconds;
    float *logits;           /* 2 x k: of x, then of xadv */
    double *p;               /* 2 x k: their softmax */
    int32_t pred, adv_label; /* the model's labels of x and xadv */
} attack_ctx;

static int parse_options(cli_args *a, attack_opts *o)
{
    *o = (attack_opts){.pool = -1};
    o->model = cli_opt(a, "--model", "-m");
    cli_bounds_opt(cli_opt(a, "--bounds", NULL));
    o->data = cli_opt(a, "--data", NULL);
    o->name = cli_opt(a, "--attack", NULL);
    o->set = cli_opt(a, "--set", NULL);
    o->png = cli_opt(a, "--png", NULL);
    o->npz = cli_opt(a, "--npz", NULL);
    o->quiet = cli_flag(a, "--quiet");
    int rc;
    if ((rc = cli_opt_long(a, "--index", "-i", 0, 2147483647L, &o->index)) ||
        (rc = cli_opt_long(a, "--seed", NULL, 0, 2147483647L, &o->seed)) ||
        (rc = cli_opt_long(a, "--pool", NULL, 0, 100000000L, &o->pool)) ||
        (rc = cli_args_leftover(a, "attack")))
        return rc;
    if (!o->name || !*o->name) {
        fprintf(stderr, "foolc attack: --attack NAME is required (see foolc attacks)\n");
        return CLI_USAGE;
    }
    return 0;
}

/* The output files, checked before any work: writable (nothing is left behind by the
 * check), not each other's and not the model's or the data's. --png - writes no image;
 * --npz - is refused (NPZ is binary). */
static int check_paths(const attack_opts *o)
{
    char png[512];
    const char *pngp = o->png;
    if (!pngp) {
        snprintf(png, sizeof png, "foolc-%s-%ld.png", o->name, o->index);
        pngp = png;
    }
    if (!strcmp(pngp, "-")) pngp = NULL;
    if (o->npz && !strcmp(o->npz, "-")) {
        fprintf(stderr, "foolc attack: --npz -: NPZ is not written to standard output; give a "
                "file\n");
        return CLI_USAGE;
    }
    int rc;
    if ((pngp && (rc = cli_check_output("attack", "--png", pngp, 0))) ||
        (o->npz && (rc = cli_check_output("attack", "--npz", o->npz, 0))))
        return rc;
    const char *data = o->data && strcmp(o->data, "fashion-mnist") ? o->data : NULL;
    cli_path p[] = {{"--png", pngp, 1}, {"--npz", o->npz, 1}, {"--model", o->model, 0},
                    {"--data", data, 0}};
    return cli_check_paths("attack", p, 4);
}

/* The attack's norm (--attack and --set checked), the model and the test image. */
static int load_inputs(attack_ctx *c)
{
    const attack_opts *o = &c->o;
    foolc_status st = foolc_attack_describe(o->name, &c->norm, NULL, NULL, NULL);
    if (st < 0) return cli_fail_opt("attack", "--attack", o->name, st);
    int rc;
    if ((o->set && ((rc = cli_check_settings(o->set)) ||
                    (rc = cli_check_settings_for("attack", o->set, &o->name, 1)))) ||
        (rc = cli_load_model("attack", o->model, &c->net, &c->model)) ||
        (rc = cli_load_data("attack", o->data, "test", c->net, &c->data)))
        return rc;
    if (o->index >= c->data.shape.n) {
        fprintf(stderr, "foolc attack: --index: expected a whole number in [0, %d], got '%ld'\n",
                c->data.shape.n - 1, o->index);
        return CLI_USAGE;
    }
    c->s = foolc_net_input(c->net);
    c->s.n = 1;
    c->d = (size_t)c->s.c * c->s.h * c->s.w;
    c->k = foolc_net_classes(c->net);
    c->label = c->data.y[o->index];
    c->x = c->data.x + (size_t)o->index * c->d;
    foolc_net_bounds(c->net, &c->lo, &c->hi);
    return 0;
}

/* The attack's handle with the --set parameters and the --pool starting points. */
static int new_attack(attack_ctx *c)
{
    const attack_opts *o = &c->o;
    c->xadv = malloc(c->d * sizeof *c->xadv);
    c->logits = malloc((size_t)2 * c->k * sizeof *c->logits);
    if (!c->xadv || !c->logits) return cli_fail("attack", FOOLC_E_NOMEM);
    foolc_status st = foolc_attack_new(o->name, &c->att);
    if (st < 0) return cli_fail_opt("attack", "--attack", o->name, st);
    int rc;
    if (o->set && (rc = cli_apply_settings(o->set, o->name, c->att))) return rc;
    if (o->pool == 0) return 0;
    if ((rc = cli_load_data("attack", o->data, "train", c->net, &c->pool))) return rc;
    if (o->pool > 0 && o->pool < c->pool.shape.n) c->pool.shape.n = (int32_t)o->pool;
    if ((st = foolc_attack_set_starts(c->att, c->pool.x, c->pool.y, c->pool.shape.n)) < 0)
        return cli_fail("attack: --pool", st);
    return 0;
}

/* Runs the attack; CLI_FAIL with a message when it stopped on an error (its result, found
 * before the stop or not, is still printed). */
static int run_attack(attack_ctx *c)
{
    foolc_result res = {c->xadv, &c->dist, &c->ok, &c->q};
    double t0 = cli_now();
    foolc_status st = foolc_attack_run(c->att, c->model, c->s, c->x, &c->label, NULL,
                                       (uint64_t)c->o.seed, &res);
    c->seconds = cli_now() - t0;
    if (st >= 0) return CLI_OK;
    fprintf(stderr, "foolc attack: --attack '%s': %s: %s%s\n", c->o.name, foolc_status_str(st),
            foolc_errmsg(), c->ok ? " (an adversarial was found before the stop)" : "");
    return CLI_FAIL;
}

/* The model's logits, probabilities and labels of the image and of the attack's point. */
static int score(attack_ctx *c)
{
    int32_t k = c->k;
    foolc_status st;
    if ((st = foolc_model_scores(c->model, c->x, 1, c->logits)) < 0 ||
        (st = foolc_model_scores(c->model, c->xadv, 1, c->logits + k)) < 0)
        return cli_fail("attack: model", st);
    c->p = malloc((size_t)2 * k * sizeof *c->p);
    if (!c->p) return cli_fail("attack", FOOLC_E_NOMEM);
    softmax(c->logits, k, c->p);
    softmax(c->logits + k, k, c->p + k);
    c->pred = 0;
    c->adv_label = 0;
    for (int32_t j = 1; j < k; j++) {
        if (c->logits[j] > c->logits[c->pred]) c->pred = j;
        if (c->logits[k + j] > c->logits[k + c->adv_label]) c->adv_label = j;
    }
    return 0;
}

static void print_result(const attack_ctx *c)
{
    const attack_opts *o = &c->o;
    const double *p = c->p, *p_adv = c->p + c->k;
    printf("attack    %s (%s) on test image %ld of %s, seed %ld\n", o->name,
           foolc_norm_name(c->norm), o->index, o->data ? o->data : "fashion-mnist", o->seed);
    printf("label     %d; the model says %d (p = %.4f)%s\n", c->label, c->pred, p[c->pred],
           c->pred != c->label ? "  (already misclassified)" : "");
    if (c->ok) {
        printf("result    adversarial: label %d -> %d (p = %.4f; true label p = %.4f)\n",
               c->label, c->adv_label, p_adv[c->adv_label], p_adv[c->label]);
        printf("distance ");
        for (int n = 0; n < FOOLC_NORM_COUNT; n++)
            printf(" %s %.6g", foolc_norm_name((foolc_norm)n),
                   foolc_distance((foolc_norm)n, c->x, c->xadv, c->d));
        printf("\n");
    } else {
        printf("result    no adversarial found\n");
    }
    printf("queries   forward %llu, backward %llu, decided %llu; %.2f s\n",
           (unsigned long long)c->q.forward, (unsigned long long)c->q.backward,
           (unsigned long long)c->q.decided, c->seconds);
}

/* --png: original | adversarial | magnified perturbation (default foolc-ATTACK-INDEX.png). */
static int write_png(const attack_ctx *c)
{
    char path_buf[512];
    const char *path = c->o.png;
    if (!path) {
        snprintf(path_buf, sizeof path_buf, "foolc-%s-%ld.png", c->o.name, c->o.index);
        path = path_buf;
    }
    if (!strcmp(path, "-")) return 0;
    foolc_shape s = c->s;
    int side = s.h > s.w ? s.h : s.w, scale = side >= 128 ? 1 : 128 / side, pad = 6;
    cli_canvas cv;
    if (cli_canvas_new(&cv, 3 * s.w * scale + 4 * pad, s.h * scale + 2 * pad))
        return cli_fail("attack", FOOLC_E_NOMEM);
    cli_canvas_image(&cv, pad, pad, c->x, s, c->lo, c->hi, scale);
    cli_canvas_image(&cv, 2 * pad + s.w * scale, pad, c->xadv, s, c->lo, c->hi, scale);
    cli_canvas_delta(&cv, 3 * pad + 2 * s.w * scale, pad, c->x, c->xadv, s, scale);
    int rc = cli_canvas_png(&cv, "attack", "--png", path);
    cli_canvas_free(&cv);
    if (rc) return rc;
    printf("image     %s (original | adversarial | perturbation magnified, red +, blue -)\n",
           path);
    return 0;
}

/* --npz: x, x_adv and labels = [label, adversarial label or -1]. */
static int write_npz(const attack_ctx *c)
{
    const char *path = c->o.npz;
    if (!path) return 0;
    foolc_shape s = c->s;
    foolc_array ax = {FOOLC_F32, 4, {1, s.c, s.h, s.w}, (void *)c->x};
    foolc_array aa = {FOOLC_F32, 4, {1, s.c, s.h, s.w}, c->xadv};
    int32_t labs[2] = {c->label, c->ok ? c->adv_label : -1};
    foolc_array al = {FOOLC_I32, 1, {2}, labs};
    foolc_npz *z = NULL;
    foolc_status st;
    if ((st = foolc_npz_new(&z)) < 0 || (st = foolc_npz_add(z, "x", &ax)) < 0 ||
        (st = foolc_npz_add(z, "x_adv", &aa)) < 0 ||
        (st = foolc_npz_add(z, "labels", &al)) < 0 || (st = foolc_npz_write(z, path, 1)) < 0) {
        foolc_npz_free(z);
        return cli_fail_opt("attack", "--npz", path, st);
    }
    foolc_npz_free(z);
    printf("arrays    %s (x, x_adv, labels = [label, adversarial label])\n", path);
    return 0;
}

static void attack_ctx_free(attack_ctx *c)
{
    free(c->xadv);
    free(c->logits);
    free(c->p);
    foolc_attack_free(c->att);
    foolc_model_free(c->model);
    foolc_net_free(c->net);
    foolc_data_free(&c->data);
    foolc_data_free(&c->pool);
}

int cmd_attack(int argc, char **argv)
{
    cli_args a;
    if (cli_args_init(&a, argc, argv)) return CLI_FAIL;
    attack_ctx c = {0};
    int rc = CLI_OK, rc2;
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
        help();
    } else if (!(rc = parse_options(&a, &c.o)) && !(rc = check_paths(&c.o)) &&
               !(rc = load_inputs(&c)) && !(rc = new_attack(&c))) {
        rc = run_attack(&c); /* an attack error still prints and writes what was found */
        if ((rc2 = score(&c))) {
            rc = rc2;
        } else {
            print_result(&c);
            if ((rc2 = write_png(&c)) || (rc2 = write_npz(&c))) rc = rc2;
        }
    }
    attack_ctx_free(&c);
    cli_args_free(&a);
    return rc;
}
